/*
 * tests/fuzz/fuzz_trace.c - libFuzzer harness for the trace reader and
 * replay: opens the input with af_trace_reader_open_mem(), reads every record
 * (checking the reader's own promises), then replays the same input, which
 * also feeds the engine hostile observations and page tables (and sparse
 * memory records, expanded by the reader and, in replay, straight into the
 * memory image). Seeds are in
 * tests/fuzz/corpus/trace/ (made by tests/fuzz/make_corpus.c).
 *
 * Replay is skipped for traces claiming more than REPLAY_MAX_PHYS of guest
 * RAM: the engine sizes its tables from phys_bytes (gigabytes at the 1 TiB
 * the format allows), which would make every such input an "out of memory"
 * report and the fuzzer crawl. The reader is fuzzed for every input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <antfarm/trace.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_PHYS (64ull << 20)

static void sink_event(void *ctx, const struct af_event *ev)
{
	(*(uint64_t *)ctx) += ev->kind;
}

static void sink_truth(void *ctx, const struct af_truth *t)
{
	(*(uint64_t *)ctx) += t->kind;
}

/* A broken promise is a crash libFuzzer reports. */
#define PROMISE(c)                                                          \
	do {                                                                \
		if (!(c))                                                   \
			abort();                                            \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct af_trace_reader *r = NULL;
	struct af_record rec;
	struct af_counters c;
	uint64_t acc = 0, n = 0, last_off = 0;
	struct af_replay_sink sink = { sink_event, sink_truth, &acc };
	int rc;

	rc = af_trace_reader_open_mem(data, size, &r);
	if (rc == 0) {
		const struct af_trace_info *in = af_trace_reader_info(r);
		PROMISE(in->n_vcpus >= 1 && in->n_vcpus <= AF_MAX_VCPUS);
		PROMISE(in->phys_bytes <= AF_TRACE_MAX_PHYS);
		PROMISE(memchr(in->guest, 0, sizeof in->guest) != NULL);
		while ((rc = af_trace_next(r, &rec)) > 0) {
			uint64_t off = af_trace_reader_offset(r);
			PROMISE(off > last_off && off <= size);
			last_off = off;
			n++;
			switch (rec.type) {
			case AF_REC_OBS:
				PROMISE(rec.u.obs.vcpu < in->n_vcpus);
				acc += rec.u.obs.addr ^ rec.u.obs.value;
				break;
			case AF_REC_TRUTH:
				PROMISE(rec.u.truth.vcpu < in->n_vcpus);
				break;
			case AF_REC_MEM:
				PROMISE(rec.u.mem.len >= 1 &&
					rec.u.mem.len <= AF_TRACE_MAX_MEM);
				/* raw records point into the input; sparse
				 * ones into the reader's buffer (ASan checks
				 * that all len bytes are there) */
				PROMISE(rec.u.mem.data != NULL);
				if (rec.u.mem.data >= data &&
				    rec.u.mem.data < data + size)
					PROMISE(rec.u.mem.data + rec.u.mem.len <=
						data + size);
				acc += rec.u.mem.data[0] +
				       rec.u.mem.data[rec.u.mem.len - 1];
				break;
			case AF_REC_MEM_FAIL:
				PROMISE(rec.u.mem.data == NULL);
				PROMISE(rec.u.mem.len >= 1 &&
					rec.u.mem.len <= AF_TRACE_MAX_MEM);
				break;
			default:
				PROMISE(0);
			}
		}
		PROMISE(n <= size);
	}
	if (rc < 0) {
		const char *msg = af_trace_reader_error(r);
		PROMISE(msg && msg[0] && !strchr(msg, '\n'));
		PROMISE(af_trace_next(r, &rec) == rc); /* sticky */
	}
	af_trace_reader_free(r);

	r = NULL;
	if (af_trace_reader_open_mem(data, size, &r) == 0 &&
	    af_trace_reader_info(r)->phys_bytes <= REPLAY_MAX_PHYS) {
		rc = af_replay(r, &sink, &c);
		PROMISE(rc <= 0);
		if (rc < 0)
			PROMISE(af_trace_reader_error(r)[0] != 0);
		else
			PROMISE(c.observations <= size);
	}
	af_trace_reader_free(r);
	return 0;
}
