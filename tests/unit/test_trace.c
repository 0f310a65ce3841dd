/*
 * tests/unit/test_trace.c - the trace format (lib/trace/): writer/reader
 * round trips of every record kind and edge values, hostile input (every
 * truncation, random bytes, absurd lengths, bad headers and versions), the
 * file reader's block refills, the replay image's cap, and recorder+replay
 * reproducing a live engine's events on a hand-made x86 scenario.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <antfarm/trace.h>

#include "harness.h"
#include "trace/trace_format.h"

/* ---- helpers ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* A value of a random magnitude, often an edge. */
static uint64_t rnd_val(void)
{
	switch (rnd() % 8) {
	case 0: return 0;
	case 1: return UINT64_MAX - rnd() % 3;
	case 2: return rnd() % 256;
	case 3: return 1ull << (rnd() % 64);
	case 4: return (1ull << 56) - 1 + rnd() % 3;
	default: return rnd() >> (rnd() % 64);
	}
}

static struct af_trace_info x86_info(unsigned n_vcpus, uint64_t phys)
{
	struct af_trace_info in;
	memset(&in, 0, sizeof in);
	in.mmu = AF_MMU_X86;
	in.n_vcpus = (uint16_t)n_vcpus;
	in.phys_bytes = phys;
	strcpy(in.guest, "unit test");
	return in;
}

/* An in-memory trace being written. */
struct mtrace {
	FILE *f;                  /* open_memstream stream */
	char *buf;                /* its bytes after mt_close */
	size_t len;               /* their count */
	struct af_trace_writer *w; /* writer on f */
};

static void mt_open(struct mtrace *m, const struct af_trace_info *in)
{
	memset(m, 0, sizeof *m);
	m->f = open_memstream(&m->buf, &m->len);
	CHECK(m->f);
	CHECK_EQ(af_trace_writer_fdopen(m->f, in, &m->w), 0);
}

static void mt_close(struct mtrace *m)
{
	CHECK_EQ(af_trace_writer_close(m->w), 0);
	m->w = NULL;
	CHECK_EQ(fclose(m->f), 0);
}

static int same_obs(const struct af_obs *a, const struct af_obs *b)
{
	return a->kind == b->kind && a->width == b->width &&
	       a->vcpu == b->vcpu && a->aux == b->aux &&
	       a->time_ns == b->time_ns && a->icount == b->icount &&
	       a->addr == b->addr && a->value == b->value;
}

static int same_truth(const struct af_truth *a, const struct af_truth *b)
{
	return a->kind == b->kind && a->vcpu == b->vcpu && a->pid == b->pid &&
	       a->ppid == b->ppid && a->time_ns == b->time_ns &&
	       a->asid == b->asid;
}

/* Reads the whole of buf; returns the final af_trace_next result (0 clean,
 * negative error) and the number of records in *n. */
static int read_all(const void *buf, size_t len, uint64_t *n,
		    char *msg, size_t msglen)
{
	struct af_trace_reader *r = NULL;
	struct af_record rec;
	int rc = af_trace_reader_open_mem(buf, len, &r);

	*n = 0;
	if (rc == 0)
		while ((rc = af_trace_next(r, &rec)) > 0)
			(*n)++;
	if (msg)
		snprintf(msg, msglen, "%s", r ? af_trace_reader_error(r) : "");
	af_trace_reader_free(r);
	return rc;
}

/* ---- round trips ---- */

#define N_RAND 20000

struct rec_copy {
	struct af_record r; /* as written (mem data points into membuf) */
};

static uint8_t membuf[1 << 20];
static uint8_t sparsebuf[1 << 20]; /* mostly zero words, some runs */

/* Fills sparsebuf: zero words, lone non-zero words, runs, a few zero
 * bytes inside non-zero words. */
static void fill_sparsebuf(void)
{
	memset(sparsebuf, 0, sizeof sparsebuf);
	for (size_t w = 0; w < sizeof sparsebuf / 8; w++) {
		unsigned k = (unsigned)(rnd() % 64);
		if (k < 3) { /* a run of up to 40 words */
			size_t n = 1 + rnd() % 40;
			for (; n && w < sizeof sparsebuf / 8; n--, w++) {
				uint64_t v = rnd() | 1;
				memcpy(sparsebuf + 8 * w, &v, 8);
			}
		} else if (k < 6) {
			sparsebuf[8 * w + rnd() % 8] = (uint8_t)(1 + rnd() % 255);
		}
	}
}

/* Writes a random mix of every record kind with edge values, reads it back
 * through reader rd_open (memory or file) and compares every field. */
static void random_roundtrip(int via_file)
{
	static struct rec_copy recs[N_RAND];
	struct af_trace_info in = x86_info(AF_MAX_VCPUS, AF_TRACE_MAX_PHYS);
	struct mtrace m;
	struct af_trace_reader *r;
	struct af_record got;
	size_t memoff = 0;
	int n = 0, rc;

	for (size_t i = 0; i < sizeof membuf; i++)
		membuf[i] = (uint8_t)rnd();
	fill_sparsebuf();
	mt_open(&m, &in);
	for (n = 0; n < N_RAND; n++) {
		struct af_record *x = &recs[n].r;
		unsigned pick = (unsigned)(rnd() % 16);

		memset(x, 0, sizeof *x);
		if (pick < 11) {
			x->type = AF_REC_OBS;
			x->u.obs.kind = (uint8_t)(rnd() % 4 ? 1 + rnd() % 7 : rnd());
			x->u.obs.width = (uint8_t)(rnd() % 2 ? rnd() % 9 : rnd());
			x->u.obs.vcpu = (uint16_t)(rnd() % 3 ? rnd() % 2 : rnd() % AF_MAX_VCPUS);
			x->u.obs.aux = (uint32_t)(rnd() % 4 ? 0 : rnd_val());
			x->u.obs.time_ns = rnd() % 4 ? (n ? recs[n - 1].r.u.obs.time_ns : 0) + rnd() % 5000 : rnd_val();
			x->u.obs.icount = rnd_val();
			x->u.obs.addr = rnd_val();
			x->u.obs.value = rnd_val();
			CHECK_EQ(af_trace_write_obs(m.w, &x->u.obs), 0);
		} else if (pick < 13) {
			x->type = AF_REC_TRUTH;
			x->u.truth.kind = (uint8_t)rnd();
			x->u.truth.vcpu = (uint16_t)(rnd() % AF_MAX_VCPUS);
			x->u.truth.pid = (uint32_t)rnd_val();
			x->u.truth.ppid = (uint32_t)rnd_val();
			x->u.truth.time_ns = rnd_val();
			x->u.truth.asid = rnd() % 3 ? rnd_val() : AF_ASID_NONE;
			CHECK_EQ(af_trace_write_truth(m.w, &x->u.truth), 0);
		} else {
			uint32_t len = (uint32_t)(rnd() % 8 ? 1 + rnd() % 4096 : AF_TRACE_MAX_MEM - rnd() % 2);
			/* random bytes (raw form) or mostly zero words (sparse
			 * form, if the length is a multiple of 8) */
			const uint8_t *src = rnd() % 2 ? sparsebuf : membuf;
			uint64_t gpa;

			if (src == sparsebuf && rnd() % 4)
				len = len < 8 ? 8 : len & ~7u;
			gpa = rnd() % 4 ? rnd_val() : UINT64_MAX - len + 1;
			if (len - 1 > UINT64_MAX - gpa)
				gpa = 0;
			if (memoff + len > sizeof membuf)
				memoff = 0;
			x->type = pick == 13 ? AF_REC_MEM_FAIL : AF_REC_MEM;
			x->u.mem.gpa = gpa;
			x->u.mem.len = len;
			if (x->type == AF_REC_MEM) {
				x->u.mem.data = src + memoff;
				memoff += len;
				CHECK_EQ(af_trace_write_mem(m.w, gpa, x->u.mem.data, len), 0);
			} else {
				CHECK_EQ(af_trace_write_mem_fail(m.w, gpa, len), 0);
			}
		}
	}
	mt_close(&m);

	if (via_file) {
		char path[] = "/tmp/af_test_trace_XXXXXX";
		int fd = mkstemp(path);
		CHECK(fd >= 0);
		CHECK_EQ(write(fd, m.buf, m.len), m.len);
		close(fd);
		rc = af_trace_reader_open(path, &r);
		unlink(path);
	} else {
		rc = af_trace_reader_open_mem(m.buf, m.len, &r);
	}
	CHECK_EQ(rc, 0);
	CHECK_EQ(af_trace_reader_info(r)->version, AF_TRACE_VERSION);
	CHECK_EQ(af_trace_reader_info(r)->n_vcpus, AF_MAX_VCPUS);
	CHECK_EQ(af_trace_reader_info(r)->phys_bytes, AF_TRACE_MAX_PHYS);
	for (int i = 0; i < n; i++) {
		const struct af_record *x = &recs[i].r;
		rc = af_trace_next(r, &got);
		if (rc != 1)
			fprintf(stderr, "record %d: %s\n", i, af_trace_reader_error(r));
		CHECK_EQ(rc, 1);
		CHECK_EQ(got.type, x->type);
		if (x->type == AF_REC_OBS) {
			CHECK(same_obs(&got.u.obs, &x->u.obs));
		} else if (x->type == AF_REC_TRUTH) {
			CHECK(same_truth(&got.u.truth, &x->u.truth));
		} else {
			CHECK_EQ(got.u.mem.gpa, x->u.mem.gpa);
			CHECK_EQ(got.u.mem.len, x->u.mem.len);
			if (x->type == AF_REC_MEM)
				CHECK(!memcmp(got.u.mem.data, x->u.mem.data, x->u.mem.len));
			else
				CHECK(got.u.mem.data == NULL);
		}
	}
	CHECK_EQ(af_trace_next(r, &got), 0);
	CHECK_EQ(af_trace_next(r, &got), 0);
	CHECK_EQ(af_trace_reader_offset(r), m.len);
	CHECK_EQ(af_trace_reader_error(r)[0], 0);
	af_trace_reader_free(r);
	free(m.buf);
}

TEST(roundtrip_random_mem)
{
	random_roundtrip(0);
}

TEST(roundtrip_random_file)
{
	random_roundtrip(1); /* > 1 MiB: crosses the reader's block refills */
}

TEST(roundtrip_edges)
{
	struct af_trace_info in = x86_info(3, 4096);
	static const uint64_t v[] = { 0, 1, 127, 128, 16383, 16384,
				      (1ull << 56) - 1, 1ull << 56,
				      (1ull << 63) - 1, 1ull << 63,
				      UINT64_MAX - 1, UINT64_MAX };
	enum { NV = sizeof v / sizeof v[0] };
	struct af_obs o[NV * NV];
	struct mtrace m;
	struct af_trace_reader *r;
	struct af_record got;
	int n = 0;

	memset(in.guest, 'g', sizeof in.guest); /* not terminated: cut at 63 */
	mt_open(&m, &in);
	for (int i = 0; i < NV; i++)
		for (int j = 0; j < NV; j++, n++) {
			memset(&o[n], 0, sizeof o[n]);
			o[n].kind = (uint8_t)v[(i + j) % NV];
			o[n].width = (uint8_t)v[j];
			o[n].vcpu = (uint16_t)(j % 3);
			o[n].aux = (uint32_t)v[i] | (uint32_t)(v[j] >> 32);
			o[n].time_ns = v[j];
			o[n].icount = v[(i * 7 + j) % NV];
			o[n].addr = v[i];
			o[n].value = v[(j + 3) % NV];
			CHECK_EQ(af_trace_write_obs(m.w, &o[n]), 0);
		}
	mt_close(&m);
	CHECK_EQ(af_trace_reader_open_mem(m.buf, m.len, &r), 0);
	CHECK_EQ(strlen(af_trace_reader_info(r)->guest), 63);
	CHECK_EQ(af_trace_reader_info(r)->mmu, AF_MMU_X86);
	for (int i = 0; i < n; i++) {
		CHECK_EQ(af_trace_next(r, &got), 1);
		CHECK_EQ(got.type, AF_REC_OBS);
		CHECK(same_obs(&got.u.obs, &o[i]));
	}
	CHECK_EQ(af_trace_next(r, &got), 0);
	af_trace_reader_free(r);
	free(m.buf);
}

TEST(roundtrip_mem_split_and_limits)
{
	struct af_trace_info in = x86_info(1, 1ull << 30);
	static uint8_t big[3 * AF_TRACE_MAX_MEM + 5];
	struct mtrace m;
	struct af_trace_reader *r;
	struct af_record got;
	uint64_t total = 0, n;

	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 7 + 1);
	mt_open(&m, &in);
	CHECK_EQ(af_trace_write_mem(m.w, 0x1000, big, sizeof big), 0);
	CHECK_EQ(af_trace_write_mem(m.w, 0, big, 0), -EINVAL);
	CHECK_EQ(af_trace_write_mem(m.w, 0, NULL, 1), -EINVAL);
	CHECK_EQ(af_trace_write_mem(m.w, UINT64_MAX, big, 2), -EINVAL);
	CHECK_EQ(af_trace_write_mem(m.w, UINT64_MAX, big, 1), 0);
	CHECK_EQ(af_trace_write_mem_fail(m.w, UINT64_MAX - 9, 10), 0);
	CHECK_EQ(af_trace_write_mem_fail(m.w, 5, 0), -EINVAL);
	mt_close(&m);
	CHECK_EQ(af_trace_reader_open_mem(m.buf, m.len, &r), 0);
	for (n = 0; n < 4; n++) {
		CHECK_EQ(af_trace_next(r, &got), 1);
		CHECK_EQ(got.type, AF_REC_MEM);
		CHECK_EQ(got.u.mem.gpa, 0x1000 + total);
		CHECK_EQ(got.u.mem.len, n < 3 ? AF_TRACE_MAX_MEM : 5);
		CHECK(!memcmp(got.u.mem.data, big + total, got.u.mem.len));
		total += got.u.mem.len;
	}
	CHECK_EQ(af_trace_next(r, &got), 1);
	CHECK_EQ(got.u.mem.gpa, UINT64_MAX);
	CHECK_EQ(got.u.mem.len, 1);
	CHECK_EQ(af_trace_next(r, &got), 1);
	CHECK_EQ(got.type, AF_REC_MEM_FAIL);
	CHECK_EQ(got.u.mem.gpa, UINT64_MAX - 9);
	CHECK_EQ(got.u.mem.len, 10);
	CHECK_EQ(af_trace_next(r, &got), 0);
	af_trace_reader_free(r);
	free(m.buf);
}

TEST(writer_rejects_bad_info_and_records)
{
	struct af_trace_info in;
	struct af_trace_writer *w = (struct af_trace_writer *)&w;
	struct mtrace m;
	struct af_obs o;
	struct af_truth t;
	FILE *f = tmpfile();

	CHECK(f);
	in = x86_info(0, 1 << 20);
	CHECK_EQ(af_trace_writer_fdopen(f, &in, &w), -EINVAL);
	CHECK(w == NULL);
	in = x86_info(AF_MAX_VCPUS + 1, 1 << 20);
	CHECK_EQ(af_trace_writer_fdopen(f, &in, &w), -EINVAL);
	in = x86_info(1, AF_TRACE_MAX_PHYS + 1);
	CHECK_EQ(af_trace_writer_fdopen(f, &in, &w), -EINVAL);
	in = x86_info(1, 4095);
	CHECK_EQ(af_trace_writer_fdopen(f, &in, &w), -EINVAL);
	in = x86_info(1, 1 << 20);
	in.mmu = 3;
	CHECK_EQ(af_trace_writer_fdopen(f, &in, &w), -EINVAL);
	in.mmu = AF_MMU_CONTEXT_ID;
	in.ctx_bits = 0;
	CHECK_EQ(af_trace_writer_fdopen(f, &in, &w), -EINVAL);
	in.ctx_bits = 17;
	CHECK_EQ(af_trace_writer_fdopen(f, &in, &w), -EINVAL);
	in.ctx_bits = 13;
	in.phys_bytes = 0; /* fine for context ids */
	CHECK_EQ(af_trace_writer_fdopen(f, &in, &w), 0);
	CHECK_EQ(af_trace_writer_close(w), 0);
	fclose(f);
	CHECK_EQ(af_trace_writer_close(NULL), 0);
	CHECK(af_trace_writer_open("/nonexistent-dir/x.trace", &in, &w) < 0);

	in = x86_info(2, 1 << 20);
	mt_open(&m, &in);
	memset(&o, 0, sizeof o);
	o.vcpu = 2;
	CHECK_EQ(af_trace_write_obs(m.w, &o), -EINVAL);
	memset(&t, 0, sizeof t);
	t.vcpu = 2;
	CHECK_EQ(af_trace_write_truth(m.w, &t), -EINVAL);
	o.vcpu = 1;
	CHECK_EQ(af_trace_write_obs(m.w, &o), 0); /* not sticky */
	mt_close(&m);
	free(m.buf);

	/* I/O errors are kept and returned by flush, later writes and close. */
	if (access("/dev/full", W_OK) == 0) {
		CHECK_EQ(af_trace_writer_open("/dev/full", &in, &w), 0);
		CHECK_EQ(af_trace_write_obs(w, &o), 0); /* buffered */
		CHECK_EQ(af_trace_writer_flush(w), -ENOSPC);
		CHECK_EQ(af_trace_write_obs(w, &o), -ENOSPC);
		CHECK_EQ(af_trace_writer_close(w), -ENOSPC);
	}
}

/* ---- hostile input ---- */

/* A small trace with every record kind. */
static void small_trace(struct mtrace *m)
{
	struct af_trace_info in = x86_info(2, 1 << 20);
	struct af_obs o;
	struct af_truth t;
	uint8_t page[40], zpage[256];

	for (unsigned i = 0; i < sizeof page; i++)
		page[i] = (uint8_t)(0xa0 + i);
	mt_open(m, &in);
	memset(&o, 0, sizeof o);
	o.kind = AF_OBS_PAGING;
	o.value = AF_PAGING_4LEVEL;
	o.time_ns = 100;
	CHECK_EQ(af_trace_write_obs(m->w, &o), 0);
	CHECK_EQ(af_trace_write_mem(m->w, 0x5000, page, sizeof page), 0);
	memset(zpage, 0, sizeof zpage);
	zpage[9] = 0x11;
	zpage[200] = 0x22;
	CHECK_EQ(af_trace_write_mem(m->w, 0x6000, zpage, sizeof zpage), 0);
	CHECK_EQ(af_trace_write_mem_fail(m->w, 0x9000, 8), 0);
	o.kind = AF_OBS_ROOT_LOAD;
	o.value = 0x5000;
	o.vcpu = 1;
	o.icount = 123456;
	o.time_ns = 250;
	CHECK_EQ(af_trace_write_obs(m->w, &o), 0);
	o.kind = AF_OBS_PT_STORE;
	o.width = 8;
	o.addr = 0x5008;
	o.value = 0x8000000000001067ull;
	o.aux = 7;
	CHECK_EQ(af_trace_write_obs(m->w, &o), 0);
	memset(&t, 0, sizeof t);
	t.kind = AF_TRUTH_FORK;
	t.vcpu = 1;
	t.pid = 42;
	t.ppid = 1;
	t.time_ns = 300;
	t.asid = 0x5000;
	CHECK_EQ(af_trace_write_truth(m->w, &t), 0);
	mt_close(m);
}

TEST(truncation_at_every_offset)
{
	struct mtrace m;
	uint64_t n, full;
	char msg[256];

	small_trace(&m);
	CHECK_EQ(read_all(m.buf, m.len, &full, msg, sizeof msg), 0);
	CHECK_EQ(full, 7);
	for (size_t len = 0; len < m.len; len++) {
		int rc = read_all(m.buf, len, &n, msg, sizeof msg);
		if (rc >= 0)
			fprintf(stderr, "length %zu read cleanly\n", len);
		CHECK(rc < 0);
		CHECK(strstr(msg, "byte") != NULL);
		CHECK(strchr(msg, '\n') == NULL);
		CHECK(n <= full);
	}
	/* The same through the stream reader. */
	for (size_t len = 0; len < m.len; len += 7) {
		char path[] = "/tmp/af_test_trunc_XXXXXX";
		struct af_trace_reader *r;
		struct af_record rec;
		int fd = mkstemp(path), rc;

		CHECK(fd >= 0);
		CHECK_EQ(write(fd, m.buf, len), len);
		close(fd);
		rc = af_trace_reader_open(path, &r);
		unlink(path);
		if (rc == 0)
			while ((rc = af_trace_next(r, &rec)) > 0)
				;
		CHECK(rc < 0);
		CHECK(strstr(af_trace_reader_error(r), "byte") != NULL);
		af_trace_reader_free(r);
	}
	free(m.buf);
}

TEST(random_bytes)
{
	static uint8_t buf[4096];
	struct mtrace m;
	uint64_t n;
	char msg[256];
	int clean = 0;

	small_trace(&m);
	for (int iter = 0; iter < 20000; iter++) {
		size_t len = (size_t)(rnd() % sizeof buf);
		size_t keep = 0;

		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rnd();
		if (iter % 2) { /* a valid header, then garbage */
			keep = AFT_HEADER_V1 < len ? AFT_HEADER_V1 : len;
			memcpy(buf, m.buf, keep);
		} else if (iter % 4 == 2 && len >= m.len) { /* a few flipped bytes */
			memcpy(buf, m.buf, m.len);
			len = m.len;
			for (int k = 0; k < 3; k++)
				buf[rnd() % len] ^= (uint8_t)(1 + rnd() % 255);
		}
		int rc = read_all(buf, len, &n, msg, sizeof msg);
		if (rc < 0)
			CHECK(msg[0] != 0);
		else
			clean++;
	}
	CHECK(clean < 20000);
	free(m.buf);
}

/* Builds a header (version, header size, mmu, vcpus, phys) plus body. */
static size_t hdr(uint8_t *b, unsigned version, unsigned hsize, unsigned mmu,
		  unsigned ctx_bits, unsigned n_vcpus, uint64_t phys)
{
	memset(b, 0, hsize);
	memcpy(b, AFT_MAGIC, AFT_MAGIC_LEN);
	aft_put_le16(b + 8, (uint16_t)version);
	aft_put_le16(b + 10, (uint16_t)hsize);
	b[12] = (uint8_t)mmu;
	b[13] = (uint8_t)ctx_bits;
	aft_put_le16(b + 14, (uint16_t)n_vcpus);
	aft_put_le64(b + 16, phys);
	strcpy((char *)b + 24, "hand-made");
	return hsize;
}

/* Expects buf to fail with rc and a message containing want. */
static void expect_bad(const uint8_t *buf, size_t len, int rc_want,
		       const char *want)
{
	uint64_t n;
	char msg[256];
	int rc = read_all(buf, len, &n, msg, sizeof msg);

	if (rc != rc_want || !strstr(msg, want))
		fprintf(stderr, "got %d \"%s\", wanted %d \"%s\"\n", rc, msg,
			rc_want, want);
	CHECK_EQ(rc, rc_want);
	CHECK(strstr(msg, want) != NULL);
}

TEST(bad_headers)
{
	uint8_t b[8192];
	size_t n;

	n = hdr(b, 1, 88, AF_MMU_X86, 0, 1, 1 << 20);
	b[n++] = AFT_TAG_END;
	b[n++] = 0;
	expect_bad(b, n, 0, "");
	b[0] = 'X';
	expect_bad(b, n, -EBADMSG, "bad magic at byte 0");
	expect_bad((const uint8_t *)"hello world, not a trace", 24, -EBADMSG, "bad magic");
	expect_bad(b, 0, -EBADMSG, "truncated header");
	hdr(b, 0, 88, AF_MMU_X86, 0, 1, 1 << 20);
	expect_bad(b, n, -ENOTSUP, "version 0 at byte 8");
	hdr(b, AF_TRACE_VERSION + 1, 88, AF_MMU_X86, 0, 1, 1 << 20);
	expect_bad(b, n, -ENOTSUP, "unsupported trace format version");
	hdr(b, 0xffff, 88, AF_MMU_X86, 0, 1, 1 << 20);
	expect_bad(b, n, -ENOTSUP, "version 65535");
	hdr(b, 1, 87, AF_MMU_X86, 0, 1, 1 << 20);
	expect_bad(b, n, -EBADMSG, "header size 87 at byte 10");
	hdr(b, 1, 88, AF_MMU_X86, 0, 1, 1 << 20);
	aft_put_le16(b + 10, 4097);
	expect_bad(b, n, -EBADMSG, "header size 4097");
	hdr(b, 1, 88, AF_MMU_X86, 0, 0, 1 << 20);
	expect_bad(b, n, -EBADMSG, "n_vcpus 0 is not in 1..64 at byte 14");
	hdr(b, 1, 88, AF_MMU_X86, 0, 65, 1 << 20);
	expect_bad(b, n, -EBADMSG, "n_vcpus 65");
	hdr(b, 1, 88, AF_MMU_X86, 0, 1, AF_TRACE_MAX_PHYS + 1);
	expect_bad(b, n, -EBADMSG, "phys_bytes 1099511627777 exceeds");
	hdr(b, 1, 88, AF_MMU_X86, 0, 1, UINT64_MAX);
	expect_bad(b, n, -EBADMSG, "at byte 16");
	hdr(b, 1, 88, AF_MMU_X86, 0, 1, 0);
	expect_bad(b, n, -EBADMSG, "below one page");
	hdr(b, 1, 88, 0, 0, 1, 1 << 20);
	expect_bad(b, n, -EBADMSG, "unknown mmu 0 at byte 12");
	hdr(b, 1, 88, AF_MMU_CONTEXT_ID, 0, 1, 0);
	expect_bad(b, n, -EBADMSG, "ctx_bits 0 is not in 1..16 at byte 13");
	hdr(b, 1, 88, AF_MMU_CONTEXT_ID, 200, 1, 0);
	expect_bad(b, n, -EBADMSG, "ctx_bits 200");
	hdr(b, 1, 88, AF_MMU_X86, 0, 1, 1 << 20);
	memset(b + 24, 'x', 64);
	expect_bad(b, n, -EBADMSG, "not NUL-terminated");
	/* A longer header (a later minor addition) is skipped. */
	n = hdr(b, 1, 4096, AF_MMU_CONTEXT_ID, 16, 64, 0);
	memset(b + 88, 0xee, 4096 - 88);
	b[n++] = AFT_TAG_END;
	b[n++] = 0;
	expect_bad(b, n, 0, "");
	expect_bad(b, n - 3, -EBADMSG, "truncated header");
}

TEST(bad_records)
{
	uint8_t b[512], *p;
	size_t h = hdr(b, 1, 88, AF_MMU_X86, 0, 2, 1 << 20);

#define BODY(...)                                                           \
	do {                                                                \
		static const uint8_t body_[] = { __VA_ARGS__ };              \
		memcpy(b + h, body_, sizeof body_);                         \
		p = b + h + sizeof body_;                                   \
	} while (0)

	BODY(AFT_TAG_END, 0);
	expect_bad(b, (size_t)(p - b), 0, "");
	BODY(AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "counts 1 records, 0 precede");
	BODY(AFT_TAG_END, 0, 0);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "data after the end record at byte 90");
	BODY(0x00);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "unknown record tag 0x00 at byte 88");
	BODY(0x06, 0);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "unknown record tag 0x06");
	BODY(0x7f, 0);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "unknown record tag 0x7f");
	/* observations: vcpu beyond n_vcpus, fields too long, reserved field */
	BODY(AFT_TAG_OBS, 1, 1 << 3, 0, 0, 2, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "observation at byte 88 has vcpu 2, trace has 2");
	BODY(AFT_TAG_OBS, 1, 2 << 3, 0, 0, 0xff, 0xff, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "vcpu 65535");
	BODY(AFT_TAG_OBS, 1, 3 << 3, 0, 0, 1, 0, 0, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "bad layout word 0x000018");
	BODY(AFT_TAG_OBS, 1, 2, 0, 0, 1, 0, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "bad layout word 0x000002");
	BODY(AFT_TAG_OBS, 1, 0x40, 0x01, 0, 1, 2, 3, 4, 5, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "bad layout word 0x000140");
	BODY(AFT_TAG_OBS, 1, 0, 0, 0x20, 9, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "bad layout word 0x200000");
	/* the longest observation there is, then one cut short */
	BODY(AFT_TAG_OBS, 1, (1 | 2 << 3 | 4 << 6) & 0xff, ((4 << 6 | 7 << 9 | 7 << 12 | 7 << 15) >> 8) & 0xff,
	     ((7 << 15 | 7 << 18) >> 16) & 0xff,
	     8, 1, 0, 0xff, 0xff, 0xff, 0xff,
	     1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
	     1, 2, 3, 4, 5, 6, 7, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	     AFT_TAG_END, 1);
	CHECK_EQ(p - b, 88 + AFT_OBS_MAX + 2);
	expect_bad(b, (size_t)(p - b), 0, "");
	expect_bad(b, (size_t)(p - b) - 3, -EBADMSG, "truncated observation record at byte 88");
	/* varints: 11 bytes, and a 10th byte over 1 */
	BODY(AFT_TAG_TRUTH, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "truth time of the record at byte 88 is not a valid varint");
	BODY(AFT_TAG_TRUTH, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "not a valid varint");
	BODY(AFT_TAG_TRUTH, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), 0, ""); /* 2^64 - 1: fine */
	/* memory records: length 0, over the limit, absurd, wrapping, short */
	BODY(AFT_TAG_MEM, 0, 0, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "length 0, not in 1..65536");
	BODY(AFT_TAG_MEM, 0, 0x81, 0x80, 0x04, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "length 65537");
	BODY(AFT_TAG_MEM_FAIL, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "length 18446744073709551615");
	BODY(AFT_TAG_MEM_FAIL, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 2, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "wraps around");
	BODY(AFT_TAG_MEM, 0x80, 0x20, 0x80, 0x20, 1, 2, 3);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "truncated memory record at byte 88: 4096 data bytes, input has 3");
	/* truth: vcpu, pid */
	BODY(AFT_TAG_TRUTH, 1, 5, 0, 0, 0, 0, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "truth record at byte 88 has vcpu 5");
	BODY(AFT_TAG_TRUTH, 1, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "pid 4294967296");
	/* extension records are skipped and counted; absurd lengths fail */
	BODY(0x80, 3, 9, 9, 9, 0xff, 0, AFT_TAG_END, 2);
	expect_bad(b, (size_t)(p - b), 0, "");
	BODY(0x90, 0x80, 0x80, 0x80, 0x80, 0x10, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "length 4294967296 over the limit");
	BODY(0x90, 0xff, 0xff, 0xff, 0xff, 0x0f, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "truncated extension record at byte 88");
	/* no end record */
	BODY(AFT_TAG_OBS, 1, 0, 0, 0);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "trace ends at byte 93 without an end record");
#undef BODY
}

TEST(error_is_sticky_and_reader_apis_accept_null)
{
	uint8_t b[128];
	size_t h = hdr(b, 1, 88, AF_MMU_X86, 0, 1, 1 << 20);
	struct af_trace_reader *r;
	struct af_record rec;

	b[h] = 0x00;
	CHECK_EQ(af_trace_reader_open_mem(b, h + 1, &r), 0);
	CHECK_EQ(af_trace_next(r, &rec), -EBADMSG);
	CHECK_EQ(af_trace_next(r, &rec), -EBADMSG);
	CHECK(strstr(af_trace_reader_error(r), "0x00") != NULL);
	af_trace_reader_free(r);
	af_trace_reader_free(NULL);
	CHECK_EQ(af_trace_reader_open_mem(NULL, 5, &r), -EINVAL);
	CHECK_EQ(af_trace_reader_open("/nonexistent/none.trace", &r), -ENOENT);
	CHECK(r != NULL);
	CHECK(strstr(af_trace_reader_error(r), "cannot open /nonexistent/none.trace") != NULL);
	af_trace_reader_free(r);
	CHECK_EQ(af_replay(NULL, NULL, NULL), -EINVAL);
}

/* ---- recording and replay ---- */

#define MEM_BYTES (1u << 20)  /* the fake guest's readable memory */
#define PHYS (2u << 20)       /* its phys_bytes: reads above MEM_BYTES fail */

struct fake_guest {
	uint8_t mem[MEM_BYTES]; /* guest-physical memory */
	unsigned reads;         /* read_phys calls */
	unsigned failed;        /* of which failed */
};

static int guest_read(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	struct fake_guest *g = ctx;

	g->reads++;
	if (gpa >= MEM_BYTES || len > MEM_BYTES - gpa) {
		g->failed++;
		return -EFAULT;
	}
	memcpy(buf, g->mem + gpa, len);
	return 0;
}

static void put64(struct fake_guest *g, uint64_t gpa, uint64_t v)
{
	memcpy(g->mem + gpa, &v, 8);
}

#define MAX_EVENTS 256
struct ev_log {
	struct af_event ev[MAX_EVENTS]; /* events in order */
	unsigned n;                    /* count */
	struct af_truth truth[16];     /* truth records (replay) */
	unsigned n_truth;              /* count */
};

static void log_event(void *ctx, const struct af_event *ev)
{
	struct ev_log *l = ctx;
	if (l->n < MAX_EVENTS)
		l->ev[l->n] = *ev;
	l->n++;
}

static void log_truth(void *ctx, const struct af_truth *t)
{
	struct ev_log *l = ctx;
	if (l->n_truth < 16)
		l->truth[l->n_truth] = *t;
	l->n_truth++;
}

/* A 4-level address space at root with n user pages mapped from pt. */
static void build_space(struct fake_guest *g, uint64_t root, uint64_t pdpt,
			uint64_t pd, uint64_t pt, unsigned n,
			uint64_t kernel_pdpt)
{
	put64(g, root + 0 * 8, pdpt | 0x7);
	put64(g, root + 256 * 8, kernel_pdpt | 0x3); /* shared kernel half */
	put64(g, pdpt, pd | 0x7);
	put64(g, pd, pt | 0x7);
	for (unsigned i = 0; i < n; i++)
		put64(g, pt + 8 * i, (0x80000 + 0x1000 * i) | 0x8000000000000007ull);
}

/* Feeds one observation to the recorder, applying a store to guest memory
 * first (the VMM sees a store after it happened). */
static void feed(struct af_recorder *rec, struct fake_guest *g,
		 struct af_obs *o, uint64_t *clock)
{
	*clock += 1000;
	o->time_ns = *clock;
	o->icount = *clock / 3 + o->vcpu;
	if (o->kind == AF_OBS_PT_STORE)
		memcpy(g->mem + o->addr, &o->value, o->width);
	CHECK_EQ(af_recorder_observe(rec, o), 0);
}

static struct af_obs obs(unsigned kind, unsigned vcpu, unsigned width,
			 uint64_t addr, uint64_t value)
{
	struct af_obs o;
	memset(&o, 0, sizeof o);
	o.kind = (uint8_t)kind;
	o.vcpu = (uint16_t)vcpu;
	o.width = (uint8_t)width;
	o.addr = addr;
	o.value = value;
	return o;
}

TEST(record_and_replay_x86)
{
	static struct fake_guest g;
	static struct ev_log live, again;
	struct af_trace_info in = x86_info(2, PHYS);
	struct af_engine_config cfg;
	struct af_counters c_live, c_replay;
	struct af_recorder *rec;
	struct af_trace_reader *r;
	struct af_replay_sink sink = { log_event, log_truth, &again };
	struct af_truth t;
	struct af_obs o;
	struct mtrace m;
	uint64_t clock = 0;
	const uint64_t A = 0x10000, B = 0x30000, K = 0x20000;

	memset(&g, 0, sizeof g);
	memset(&live, 0, sizeof live);
	memset(&again, 0, sizeof again);
	build_space(&g, A, 0x11000, 0x12000, 0x13000, 4, K);
	build_space(&g, B, 0x31000, 0x32000, 0x33000, 2, K);
	put64(&g, K, 0x21000 | 0x3);

	memset(&cfg, 0, sizeof cfg);
	cfg.mmu = AF_MMU_X86;
	cfg.n_vcpus = 2;
	cfg.phys_bytes = PHYS;
	cfg.read_phys = guest_read;
	cfg.read_ctx = &g;
	cfg.on_event = log_event;
	cfg.event_ctx = &live;
	mt_open(&m, &in);
	cfg.n_vcpus = 1;
	CHECK_EQ(af_recorder_new(&cfg, m.w, &rec), -EINVAL); /* info differs */
	cfg.n_vcpus = 2;
	CHECK_EQ(af_recorder_new(&cfg, m.w, &rec), 0);
	CHECK(af_recorder_engine(rec) != NULL);

	memset(&t, 0, sizeof t);
	t.kind = AF_TRUTH_BEGIN;
	t.asid = AF_ASID_NONE;
	CHECK_EQ(af_trace_write_truth(m.w, &t), 0);
	for (unsigned v = 0; v < 2; v++) {
		o = obs(AF_OBS_PAGING, v, 0, 0, AF_PAGING_4LEVEL);
		feed(rec, &g, &o, &clock);
	}
	o = obs(AF_OBS_ROOT_LOAD, 0, 0, 0, A);
	feed(rec, &g, &o, &clock);
	t.kind = AF_TRUTH_FORK;
	t.pid = 2;
	t.ppid = 1;
	t.asid = B;
	t.vcpu = 1;
	t.time_ns = clock;
	CHECK_EQ(af_trace_write_truth(m.w, &t), 0);
	o = obs(AF_OBS_ROOT_LOAD, 1, 0, 0, B);
	feed(rec, &g, &o, &clock);
	o = obs(AF_OBS_ROOT_LOAD, 1, 0, 0, A); /* a switch */
	feed(rec, &g, &o, &clock);
	o = obs(AF_OBS_ROOT_LOAD, 0, 0, 0, 0x0fc000); /* beyond readable RAM */
	feed(rec, &g, &o, &clock);
	o = obs(AF_OBS_ROOT_LOAD, 0, 0, 0, 0x180000); /* read fails */
	feed(rec, &g, &o, &clock);
	o = obs(AF_OBS_ROOT_LOAD, 0, 0, 0, B);
	feed(rec, &g, &o, &clock);
	for (unsigned i = 0; i < 4; i++) { /* A's process exits */
		o = obs(AF_OBS_PT_STORE, 1, 8, 0x13000 + 8 * i, 0);
		feed(rec, &g, &o, &clock);
	}
	o = obs(AF_OBS_PT_STORE, 1, 8, 0x12000, 0); /* and its PD entry */
	feed(rec, &g, &o, &clock);
	o = obs(AF_OBS_ROOT_LOAD, 1, 0, 0, B);
	feed(rec, &g, &o, &clock);
	o = obs(AF_OBS_TLB_FLUSH, 1, AF_FLUSH_NONGLOBAL, 0, 0);
	feed(rec, &g, &o, &clock);
	/* A's root is reused for a new process */
	build_space(&g, A, 0x11000, 0x12000, 0x14000, 3, K);
	o = obs(AF_OBS_PT_STORE, 0, 8, 0x12000, 0x14007);
	feed(rec, &g, &o, &clock);
	o = obs(AF_OBS_ROOT_LOAD, 0, 0, 0, A);
	feed(rec, &g, &o, &clock);
	o = obs(AF_OBS_TLB_FLUSH, 0, AF_FLUSH_ALL, 0, 0);
	feed(rec, &g, &o, &clock);
	o = obs(AF_OBS_TLB_FLUSH, 7, AF_FLUSH_ALL, 0, 0); /* rejected */
	CHECK_EQ(af_recorder_observe(rec, &o), -EINVAL);
	t.kind = AF_TRUTH_END;
	t.asid = AF_ASID_NONE;
	CHECK_EQ(af_trace_write_truth(m.w, &t), 0);
	af_engine_counters(af_recorder_engine(rec), &c_live);
	af_recorder_free(rec);
	mt_close(&m);

	CHECK(live.n > 0);          /* the scenario made the engine infer */
	CHECK(live.n <= MAX_EVENTS);
	CHECK(g.reads > 0);         /* and read guest memory */
	CHECK(g.failed > 0);        /* some of it failing */

	/* Replay from the trace alone: the guest memory is gone. */
	memset(&g, 0xdb, sizeof g);
	CHECK_EQ(af_trace_reader_open_mem(m.buf, m.len, &r), 0);
	CHECK_EQ(af_replay(r, &sink, &c_replay), 0);
	CHECK_EQ(af_trace_reader_error(r)[0], 0);
	CHECK_EQ(af_replay_error()[0], 0);
	af_trace_reader_free(r);

	CHECK_EQ(again.n, live.n);
	for (unsigned i = 0; i < live.n; i++) {
		const struct af_event *a = &live.ev[i], *b = &again.ev[i];
		CHECK_EQ(b->kind, a->kind);
		CHECK_EQ(b->vcpu, a->vcpu);
		CHECK_EQ(b->time_ns, a->time_ns);
		CHECK_EQ(b->icount, a->icount);
		CHECK_EQ(b->asid, a->asid);
		CHECK_EQ(b->prev_asid, a->prev_asid);
		CHECK_EQ(b->serial, a->serial);
	}
	CHECK(!memcmp(&c_live, &c_replay, sizeof c_live));
	CHECK_EQ(again.n_truth, 3);
	CHECK_EQ(again.truth[1].kind, AF_TRUTH_FORK);
	CHECK_EQ(again.truth[1].asid, B);
	CHECK_EQ(again.truth[2].asid, AF_ASID_NONE);

	/* The same trace cut short: replay reports the reader's error. */
	CHECK_EQ(af_trace_reader_open_mem(m.buf, m.len - 1, &r), 0);
	memset(&again, 0, sizeof again);
	CHECK_EQ(af_replay(r, &sink, NULL), -EBADMSG);
	CHECK(strstr(af_trace_reader_error(r), "truncated") != NULL);
	af_trace_reader_free(r);
	free(m.buf);
}

TEST(replay_image_is_bounded)
{
	const uint64_t phys = 8ull << 30;
	struct af_trace_info in = x86_info(1, phys);
	static uint8_t page[4096];
	struct af_trace_reader *r;
	struct mtrace m;
	uint64_t saved = aft_replay_image_cap;
	struct af_counters c;

	/* Memory records far apart (one leaf each) and above phys_bytes. */
	mt_open(&m, &in);
	for (uint64_t i = 0; i < 64; i++)
		CHECK_EQ(af_trace_write_mem(m.w, i << 27, page, sizeof page), 0);
	CHECK_EQ(af_trace_write_mem(m.w, phys - 8, page, 4096), 0);
	for (int i = 0; i < 100; i++)
		CHECK_EQ(af_trace_write_mem(m.w, UINT64_MAX - 4095, page, 4096), 0);
	mt_close(&m);

	CHECK_EQ(af_trace_reader_open_mem(m.buf, m.len, &r), 0);
	CHECK_EQ(af_replay(r, NULL, &c), 0);
	af_trace_reader_free(r);

	aft_replay_image_cap = 64 * 1024;
	CHECK_EQ(af_trace_reader_open_mem(m.buf, m.len, &r), 0);
	CHECK_EQ(af_replay(r, NULL, &c), -EFBIG);
	aft_replay_image_cap = saved;
	CHECK(strstr(af_trace_reader_error(r), "cap of 64 KiB") != NULL);
	CHECK(strstr(af_trace_reader_error(r), "at byte") != NULL);
	CHECK(strstr(af_replay_error(), "cap") != NULL);
	af_trace_reader_free(r);
	free(m.buf);
}

TEST(replay_context_id)
{
	struct af_trace_info in;
	struct af_trace_reader *r;
	struct af_counters c;
	struct ev_log l;
	struct af_replay_sink sink = { log_event, log_truth, &l };
	struct mtrace m;
	struct af_obs o;

	memset(&in, 0, sizeof in);
	in.mmu = AF_MMU_CONTEXT_ID;
	in.n_vcpus = 1;
	in.ctx_bits = 13;
	mt_open(&m, &in);
	o = obs(AF_OBS_CTX_LOAD, 0, 0, 0, 5);
	o.time_ns = 10;
	CHECK_EQ(af_trace_write_obs(m.w, &o), 0);
	o = obs(AF_OBS_CTX_LOAD, 0, 0, 0, 6);
	o.time_ns = 20;
	CHECK_EQ(af_trace_write_obs(m.w, &o), 0);
	o = obs(AF_OBS_CTX_DEMAP, 0, 0, 0, 5);
	o.time_ns = 30;
	CHECK_EQ(af_trace_write_obs(m.w, &o), 0);
	mt_close(&m);
	memset(&l, 0, sizeof l);
	CHECK_EQ(af_trace_reader_open_mem(m.buf, m.len, &r), 0);
	CHECK_EQ(af_replay(r, &sink, &c), 0);
	CHECK_EQ(c.observations, 3);
	CHECK(l.n > 0);
	CHECK_EQ(l.n, c.creates + c.exits + c.switches);
	af_trace_reader_free(r);
	free(m.buf);
}

TEST(replay_image_semantics)
{
	const uint64_t phys = 0x10000 + 0x800; /* not a page multiple */
	struct aft_image *img;
	uint8_t d[64], out[64];
	uint64_t v;

	for (unsigned i = 0; i < sizeof d; i++)
		d[i] = (uint8_t)(0x40 + i);
	CHECK_EQ(aft_image_new(phys, &img), 0);
	CHECK_EQ(aft_image_read(img, 0x1000, out, 8), -EFAULT);
	CHECK_EQ(aft_image_read(img, 0x1000, out, 0), 0);

	/* Known bytes read back; a range with an unknown byte fails. */
	CHECK_EQ(aft_image_fill(img, 0x1008, d, 16), 0);
	CHECK_EQ(aft_image_read(img, 0x1008, out, 16), 0);
	CHECK(!memcmp(out, d, 16));
	CHECK_EQ(aft_image_read(img, 0x100c, out, 4), 0);
	CHECK_EQ(out[0], d[4]);
	CHECK_EQ(aft_image_read(img, 0x1000, out, 16), -EFAULT);
	CHECK_EQ(aft_image_read(img, 0x1010, out, 16), -EFAULT);

	/* A store lands on a present page, little-endian, and becomes known;
	 * a store to an absent page or of a bad width is dropped. */
	aft_image_store(img, 0x1010, 8, 0x1122334455667788ull);
	CHECK_EQ(aft_image_read(img, 0x1010, &v, 8), 0);
	CHECK_EQ(v, 0x1122334455667788ull);
	aft_image_store(img, 0x1018, 8, 0xabcdull); /* unknown before */
	CHECK_EQ(aft_image_read(img, 0x1008, out, 24), 0);
	CHECK_EQ(out[16], 0xcd);
	CHECK_EQ(out[17], 0xab);
	CHECK_EQ(out[18], 0);
	aft_image_store(img, 0x1008, 2, 0xffff);
	CHECK_EQ(aft_image_read(img, 0x1008, out, 4), 0);
	CHECK_EQ(out[0], 0xff);
	CHECK_EQ(out[1], 0xff);
	CHECK_EQ(out[2], d[2]);
	aft_image_store(img, 0x1008, 3, 0); /* width 3: not a store */
	CHECK_EQ(aft_image_read(img, 0x1008, out, 1), 0);
	CHECK_EQ(out[0], 0xff);
	aft_image_store(img, 0x5000, 8, 1); /* no page there */
	CHECK_EQ(aft_image_read(img, 0x5000, out, 8), -EFAULT);

	/* A failed read makes its bytes unknown again. */
	CHECK_EQ(aft_image_fill(img, 0x1010, NULL, 8), 0);
	CHECK_EQ(aft_image_read(img, 0x1010, out, 8), -EFAULT);
	CHECK_EQ(aft_image_read(img, 0x1008, out, 8), 0);
	CHECK_EQ(aft_image_fill(img, 0x7000, NULL, 8), 0); /* absent: fine */

	/* Ranges across pages, and a store straddling two pages of which
	 * only the first is present. */
	CHECK_EQ(aft_image_fill(img, 0x2ff8, d, 16), 0);
	CHECK_EQ(aft_image_read(img, 0x2ff8, out, 16), 0);
	CHECK(!memcmp(out, d, 16));
	aft_image_store(img, 0x3ffc, 8, 0x0102030405060708ull);
	CHECK_EQ(aft_image_fill(img, 0x3ff8, d, 4), 0);
	aft_image_store(img, 0x3ffc, 8, 0x0102030405060708ull);
	CHECK_EQ(aft_image_read(img, 0x3ff8, out, 8), 0);
	CHECK_EQ(out[4], 0x08);
	CHECK_EQ(out[7], 0x05);
	CHECK_EQ(aft_image_read(img, 0x4000, out, 1), -EFAULT);

	/* Nothing at or above phys_bytes is kept or served. */
	CHECK_EQ(aft_image_fill(img, phys - 4, d, 8), 0);
	CHECK_EQ(aft_image_read(img, phys - 4, out, 4), 0);
	CHECK(!memcmp(out, d, 4));
	CHECK_EQ(aft_image_read(img, phys - 4, out, 8), -EFAULT);
	CHECK_EQ(aft_image_fill(img, phys, d, 8), 0);
	CHECK_EQ(aft_image_read(img, phys, out, 1), -EFAULT);
	CHECK_EQ(aft_image_fill(img, UINT64_MAX - 7, d, 8), 0);
	CHECK_EQ(aft_image_read(img, UINT64_MAX - 7, out, 8), -EFAULT);
	aft_image_store(img, UINT64_MAX - 3, 8, 1); /* wraps: dropped */

	/* Every page the image holds is below phys: bounded by phys / 4096
	 * pages, a leaf of index and a bitmap per partly known page. */
	for (uint64_t a = 0; a < phys + 0x3000; a += 0x800)
		CHECK_EQ(aft_image_fill(img, a, d, 64), 0);
	CHECK(aft_image_bytes(img) <= 17 * (4096 + 512) + 16384);
	aft_image_free(img);
	aft_image_free(NULL);
}

/* Reads [gpa, gpa + len) of img byte by byte into out; unknown bytes
 * become 0x5a and are counted in *unknown. */
static void image_bytes(struct aft_image *img, uint64_t gpa, uint8_t *out,
			size_t len, size_t *unknown)
{
	*unknown = 0;
	for (size_t i = 0; i < len; i++)
		if (aft_image_read(img, gpa + i, out + i, 1)) {
			out[i] = 0x5a;
			(*unknown)++;
		}
}

TEST(replay_image_whole_and_partial_pages)
{
	const uint64_t phys = 64 * 4096;
	static uint8_t d[3 * 4096], out[3 * 4096];
	struct aft_image *img;
	uint64_t bytes = 0;
	size_t unk;

	for (unsigned i = 0; i < sizeof d; i++)
		d[i] = (uint8_t)(i * 13 + 1);
	CHECK_EQ(aft_image_new(phys, &img), 0);

	/* A whole page, then a failed read in its middle, then the bytes
	 * known again piece by piece: the page goes from wholly known to
	 * partly known and back, many times, without growing the image. */
	CHECK_EQ(aft_image_fill(img, 0x3000, d, 4096), 0);
	CHECK_EQ(aft_image_read(img, 0x3000, out, 4096), 0);
	CHECK(!memcmp(out, d, 4096));
	for (int round = 0; round < 50; round++) {
		CHECK_EQ(aft_image_fill(img, 0x3100, NULL, 0x20), 0);
		CHECK_EQ(aft_image_read(img, 0x3000, out, 4096), -EFAULT);
		image_bytes(img, 0x3000, out, 4096, &unk);
		CHECK_EQ(unk, 0x20);
		CHECK_EQ(aft_image_read(img, 0x30ff, out, 1), 0);
		CHECK_EQ(aft_image_read(img, 0x3120, out, 1), 0);
		/* a store into the unknown part makes just its bytes known */
		aft_image_store(img, 0x3108, 4, 0xaabbccdd);
		image_bytes(img, 0x3000, out, 4096, &unk);
		CHECK_EQ(unk, 0x1c);
		CHECK_EQ(out[0x108], 0xdd);
		CHECK_EQ(out[0x10b], 0xaa);
		CHECK_EQ(aft_image_fill(img, 0x3100, d + 0x100, 8), 0);
		CHECK_EQ(aft_image_fill(img, 0x310c, d + 0x10c, 0x14), 0);
		CHECK_EQ(aft_image_read(img, 0x3000, out, 4096), 0);
		CHECK_EQ(out[0x108], 0xdd);
		if (round == 0)
			bytes = aft_image_bytes(img);
		CHECK_EQ(aft_image_bytes(img), bytes);
	}
	/* A whole-page fill over a partly known page makes it whole. */
	CHECK_EQ(aft_image_fill(img, 0x3000, NULL, 4096), 0);
	CHECK_EQ(aft_image_read(img, 0x3000, out, 1), -EFAULT);
	aft_image_store(img, 0x3ff8, 8, 7); /* the page is still there */
	CHECK_EQ(aft_image_read(img, 0x3ff8, out, 8), 0);
	CHECK_EQ(aft_image_fill(img, 0x3000, d, 4096), 0);
	CHECK_EQ(aft_image_read(img, 0x3000, out, 4096), 0);
	CHECK(!memcmp(out, d, 4096));

	/* A range over three pages, not aligned: the middle one whole, the
	 * outer ones partly known. */
	CHECK_EQ(aft_image_fill(img, 0x10800, d, 2 * 4096), 0);
	CHECK_EQ(aft_image_read(img, 0x10800, out, 2 * 4096), 0);
	CHECK(!memcmp(out, d, 2 * 4096));
	CHECK_EQ(aft_image_read(img, 0x107ff, out, 2), -EFAULT);
	CHECK_EQ(aft_image_read(img, 0x127ff, out, 2), -EFAULT);
	aft_image_store(img, 0x127fe, 4, 0x01020304); /* straddles known */
	CHECK_EQ(aft_image_read(img, 0x127fe, out, 4), 0);
	CHECK_EQ(out[0], 0x04);
	CHECK_EQ(out[3], 0x01);
	aft_image_free(img);
}

/* A trace with one memory record of len bytes of data at gpa; returns the
 * tag of that record and checks the reader gives the bytes back. */
static unsigned one_mem_record(uint64_t gpa, const uint8_t *data, size_t len,
			       size_t *rec_len)
{
	struct af_trace_info in = x86_info(1, 1ull << 30);
	struct af_trace_reader *r;
	struct af_record got;
	struct mtrace m;
	unsigned tag;

	mt_open(&m, &in);
	CHECK_EQ(af_trace_write_mem(m.w, gpa, data, len), 0);
	mt_close(&m);
	CHECK_EQ(af_trace_reader_open_mem(m.buf, m.len, &r), 0);
	CHECK_EQ(af_trace_reader_info(r)->version, 2);
	CHECK_EQ(af_trace_next(r, &got), 1);
	CHECK_EQ(got.type, AF_REC_MEM);
	CHECK_EQ(got.u.mem.gpa, gpa);
	CHECK_EQ(got.u.mem.len, len);
	CHECK(!memcmp(got.u.mem.data, data, len));
	*rec_len = (size_t)af_trace_reader_offset(r) - AFT_HEADER_V1;
	CHECK_EQ(af_trace_next(r, &got), 0);
	af_trace_reader_free(r);
	tag = (uint8_t)m.buf[AFT_HEADER_V1];
	free(m.buf);
	return tag;
}

TEST(sparse_form_chosen_when_shorter)
{
	static uint8_t b[AF_TRACE_MAX_MEM];
	size_t n;

	/* all zero: tag, gpa, len (2 bytes), size 0 */
	memset(b, 0, sizeof b);
	CHECK_EQ(one_mem_record(0x1000, b, 4096, &n), AFT_TAG_MEM_SPARSE);
	CHECK_EQ(n, 1 + 2 + 2 + 1);
	CHECK_EQ(one_mem_record(0x1000, b, 8, &n), AFT_TAG_MEM_SPARSE);
	CHECK_EQ(n, 1 + 2 + 1 + 1);
	/* not a multiple of 8: raw */
	CHECK_EQ(one_mem_record(0x1000, b, 12, &n), AFT_TAG_MEM);
	CHECK_EQ(one_mem_record(0x1000, b, 1, &n), AFT_TAG_MEM);
	/* one word (a page-table entry) at word 5: a run (skip 5, count 1) */
	b[40] = 0x67;
	b[46] = 0x80;
	CHECK_EQ(one_mem_record(0x1000, b, 4096, &n), AFT_TAG_MEM_SPARSE);
	CHECK_EQ(n, 1 + 2 + 2 + 1 + 2 + 8);
	/* first and last words too: three runs */
	b[0] = 1;
	b[4095] = 0xff;
	CHECK_EQ(one_mem_record(0x1000, b, 4096, &n), AFT_TAG_MEM_SPARSE);
	CHECK_EQ(n, 1 + 2 + 2 + 1 + 2 + 2 + 3 + 3 * 8); /* skip 505: 2 bytes */
	/* one word at the end of the longest record: a 2-byte skip */
	memset(b, 0, sizeof b);
	b[sizeof b - 1] = 9;
	CHECK_EQ(one_mem_record(0, b, sizeof b, &n), AFT_TAG_MEM_SPARSE);
	CHECK_EQ(n, 1 + 1 + 3 + 1 + 2 + 1 + 8);
	/* every other word: 256 runs of one word, still shorter */
	for (unsigned w = 0; w < 512; w += 2)
		b[8 * w + w % 8] = (uint8_t)(w | 1);
	CHECK_EQ(one_mem_record(0x2000, b, 4096, &n), AFT_TAG_MEM_SPARSE);
	CHECK_EQ(n, 1 + 2 + 2 + 2 + 256 * (2 + 8));
	/* 16 bytes: one word and a zero one is shorter sparse (11 < 16), two
	 * words are not (18 > 16); a lone 8-byte word is not either */
	memset(b, 0, sizeof b);
	b[3] = 3;
	CHECK_EQ(one_mem_record(0x2000, b, 16, &n), AFT_TAG_MEM_SPARSE);
	b[12] = 4;
	CHECK_EQ(one_mem_record(0x2000, b, 16, &n), AFT_TAG_MEM);
	CHECK_EQ(one_mem_record(0x2000, b, 8, &n), AFT_TAG_MEM);
	/* random bytes: raw */
	for (size_t i = 0; i < 4096; i++)
		b[i] = (uint8_t)(rnd() | 1);
	CHECK_EQ(one_mem_record(0x3000, b, 4096, &n), AFT_TAG_MEM);
	CHECK_EQ(n, 1 + 2 + 2 + 4096);
	/* nearly dense: sparse only when strictly shorter. One zero word in
	 * the middle saves 8 bytes for 6 of run counts and 2 of size: a tie,
	 * so raw; a second one makes it shorter. */
	memset(b, 0xee, 4096);
	CHECK_EQ(one_mem_record(0x3000, b, 4096, &n), AFT_TAG_MEM);
	memset(b + 2400, 0, 8);
	CHECK_EQ(one_mem_record(0x3000, b, 4096, &n), AFT_TAG_MEM);
	CHECK_EQ(n, 1 + 2 + 2 + 4096);
	memset(b + 2408, 0, 8);
	CHECK_EQ(one_mem_record(0x3000, b, 4096, &n), AFT_TAG_MEM_SPARSE);
	CHECK_EQ(n, 1 + 2 + 2 + 2 + 3 + 3 + 510 * 8);
}

TEST(sparse_records_hostile)
{
	uint8_t b[512], *p;
	size_t h = hdr(b, 2, 88, AF_MMU_X86, 0, 1, 1 << 20);
	struct af_trace_reader *r;
	struct af_record rec;

#define BODY(...)                                                           \
	do {                                                                \
		static const uint8_t body_[] = { __VA_ARGS__ };              \
		memcpy(b + h, body_, sizeof body_);                         \
		p = b + h + sizeof body_;                                   \
	} while (0)
#define W8 1, 2, 3, 4, 5, 6, 7, 8

	/* valid: skip 1, one word; a zero size; a zero word stored and a
	 * later run with skip 0 (not what the writer makes, but valid) */
	BODY(AFT_TAG_MEM_SPARSE, 0x10, 24, 10, 1, 1, W8, AFT_TAG_END, 1);
	CHECK_EQ(af_trace_reader_open_mem(b, (size_t)(p - b), &r), 0);
	CHECK_EQ(af_trace_next(r, &rec), 1);
	CHECK_EQ(rec.type, AF_REC_MEM);
	CHECK_EQ(rec.u.mem.gpa, 0x10);
	CHECK_EQ(rec.u.mem.len, 24);
	{
		static const uint8_t want[24] = { 0, 0, 0, 0, 0, 0, 0, 0, W8 };
		CHECK(!memcmp(rec.u.mem.data, want, 24));
	}
	CHECK_EQ(af_trace_next(r, &rec), 0);
	af_trace_reader_free(r);
	BODY(AFT_TAG_MEM_SPARSE, 0, 0x80, 0x20, 0, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), 0, "");
	BODY(AFT_TAG_MEM_SPARSE, 0, 32, 20, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
	     W8, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), 0, "");

	/* lengths */
	BODY(AFT_TAG_MEM_SPARSE, 0, 0, 0, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "length 0, not in 1..65536");
	BODY(AFT_TAG_MEM_SPARSE, 0, 0x88, 0x80, 0x04, 0, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "length 65544");
	BODY(AFT_TAG_MEM_SPARSE, 0, 12, 0, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "length 12, not a multiple of 8");
	BODY(AFT_TAG_MEM_SPARSE, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 8, 0, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "wraps around");
	BODY(AFT_TAG_MEM_SPARSE, 0, 8, 9, 0, 1, W8, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "9 bytes of runs for 8 bytes of memory");
	BODY(AFT_TAG_MEM_SPARSE, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "sparse memory size of the record at byte 88 is not a valid varint");
	BODY(AFT_TAG_MEM_SPARSE, 0, 0x80, 0x20, 40, 0, 1, 1, 2, 3);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "truncated sparse memory record at byte 88: 40 bytes of runs, input has 5");
	BODY(AFT_TAG_MEM_SPARSE, 0, 0x80);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "truncated sparse memory record at byte 88");

	/* runs */
	BODY(AFT_TAG_MEM_SPARSE, 0, 0x80, 0x20, 1, 0x80, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "bad run count at run offset 0");
	BODY(AFT_TAG_MEM_SPARSE, 0, 0x80, 0x20, 3, 0x80, 0x80, 0x01, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "bad run count");
	BODY(AFT_TAG_MEM_SPARSE, 0, 0x80, 0x20, 1, 0, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "bad run count");
	BODY(AFT_TAG_MEM_SPARSE, 0, 0x80, 0x20, 2, 0, 0, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "run of 0 words after 0 zero words at word 0");
	BODY(AFT_TAG_MEM_SPARSE, 0, 16, 10, 2, 1, W8, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "run of 1 words after 2 zero words at word 0 passes its 2 words");
	BODY(AFT_TAG_MEM_SPARSE, 0, 16, 12, 1, 1, W8, 0, 1, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "run of 1 words after 0 zero words at word 2 passes");
	BODY(AFT_TAG_MEM_SPARSE, 0, 0x80, 0x20, 9, 0, 2, W8, 0, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "run of 2 words has only 7 bytes left");
	BODY(AFT_TAG_MEM_SPARSE, 0, 0x80, 0x20, 6, 0, 1, 1, 2, 3, 4, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "sparse memory record at byte 88: run of 1 words has only 4 bytes left");

	/* version 1 has no sparse records */
	hdr(b, 1, 88, AF_MMU_X86, 0, 1, 1 << 20);
	BODY(AFT_TAG_MEM_SPARSE, 0, 8, 0, AFT_TAG_END, 1);
	expect_bad(b, (size_t)(p - b), -EBADMSG, "sparse memory records begin with version 2");

	/* Replay reports bad runs as the reader's error, whether the record
	 * would go straight into a page or through the buffer. */
	hdr(b, 2, 88, AF_MMU_X86, 0, 1, 1 << 20);
	for (int whole = 0; whole < 2; whole++) {
		if (whole)
			BODY(AFT_TAG_MEM_SPARSE, 0x80, 0x20, 0x80, 0x20, 4, 0, 1, 1, 2, AFT_TAG_END, 1);
		else
			BODY(AFT_TAG_MEM_SPARSE, 0x80, 0x20, 0x80, 0x40, 4, 0, 1, 1, 2, AFT_TAG_END, 1);
		CHECK_EQ(af_trace_reader_open_mem(b, (size_t)(p - b), &r), 0);
		CHECK_EQ(af_replay(r, NULL, NULL), -EBADMSG);
		CHECK(strstr(af_trace_reader_error(r), "sparse memory record at byte 88: run of 1 words has only 2 bytes left") != NULL);
		CHECK_EQ(af_replay_error()[0], 0);
		af_trace_reader_free(r);
	}
#undef W8
#undef BODY
}

TEST(sparse_fill_matches_raw_fill)
{
	const uint64_t phys = 40 * 4096 + 0x100; /* not a page multiple */
	static uint8_t d[3 * 4096], a[3 * 4096], c[3 * 4096];
	struct aft_image *raw, *sp;
	struct af_trace_reader *r;
	struct af_record rec;
	struct mtrace m;
	struct af_trace_info in = x86_info(1, phys);
	static const struct { uint64_t gpa; uint32_t len; } cases[] = {
		{ 0x1000, 4096 },    /* one whole page: straight in */
		{ 0x2000, 8192 },    /* two whole pages */
		{ 0x3008, 4096 },    /* unaligned: three pages */
		{ 0x5ff8, 16 },      /* across a page boundary */
		{ 0x7000, 8 },
		{ 39 * 4096, 4096 }, /* the last whole page */
		{ 40 * 4096, 4096 }, /* crosses phys */
		{ 41 * 4096, 4096 }, /* above phys */
		{ 0x1000, 4096 },    /* again, over known bytes */
	};
	size_t unk_a, unk_c;

	CHECK_EQ(aft_image_new(phys, &raw), 0);
	CHECK_EQ(aft_image_new(phys, &sp), 0);
	mt_open(&m, &in);
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		memset(d, 0, sizeof d);
		for (unsigned w = (unsigned)k; w < cases[k].len / 8; w += 7 + (unsigned)k)
			d[8 * w + k % 8] = (uint8_t)(w + 1);
		CHECK_EQ(af_trace_write_mem(m.w, cases[k].gpa, d, cases[k].len), 0);
		CHECK_EQ(aft_image_fill(raw, cases[k].gpa, d, cases[k].len), 0);
	}
	mt_close(&m);
	/* the images differ only in how they were filled: from the raw bytes,
	 * or from the runs of the records just written */
	CHECK_EQ(af_trace_reader_open_mem(m.buf, m.len, &r), 0);
	r->raw_sparse = 1;
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		CHECK_EQ(af_trace_next(r, &rec), 1);
		CHECK_EQ(rec.type, AFT_REC_MEM_SPARSE);
		CHECK_EQ(aft_image_fill_sparse(sp, r, rec.u.mem.gpa, rec.u.mem.data,
					       r->sparse_size, rec.u.mem.len), 0);
	}
	CHECK_EQ(af_trace_next(r, &rec), 0);
	af_trace_reader_free(r);
	for (uint64_t gpa = 0; gpa < phys + 4096; gpa += sizeof a) {
		image_bytes(raw, gpa, a, sizeof a, &unk_a);
		image_bytes(sp, gpa, c, sizeof c, &unk_c);
		CHECK_EQ(unk_a, unk_c);
		CHECK(!memcmp(a, c, sizeof a));
	}
	image_bytes(sp, 0x1000, c, 4096, &unk_c);
	CHECK_EQ(unk_c, 0);
	CHECK(aft_image_bytes(sp) <= aft_image_bytes(raw));
	aft_image_free(raw);
	aft_image_free(sp);
	free(m.buf);
}

TEST(version_1_traces_still_read)
{
	struct af_trace_info in = x86_info(2, 1 << 20);
	struct af_trace_reader *r;
	struct af_record got;
	struct af_counters c1, c2;
	struct mtrace m;
	struct af_obs o;
	uint8_t page[4096];

	/* A trace without sparse records is a version-1 trace but for the
	 * version field: make one and read it both ways. */
	for (unsigned i = 0; i < sizeof page; i++)
		page[i] = (uint8_t)(i * 7 + 1);
	mt_open(&m, &in);
	memset(&o, 0, sizeof o);
	o.kind = AF_OBS_PAGING;
	o.value = AF_PAGING_4LEVEL;
	CHECK_EQ(af_trace_write_obs(m.w, &o), 0);
	CHECK_EQ(af_trace_write_mem(m.w, 0x5000, page, sizeof page), 0);
	o.kind = AF_OBS_ROOT_LOAD;
	o.value = 0x5000;
	o.time_ns = 10;
	CHECK_EQ(af_trace_write_obs(m.w, &o), 0);
	mt_close(&m);
	CHECK_EQ((uint8_t)m.buf[8], 2);
	CHECK_EQ(af_trace_reader_open_mem(m.buf, m.len, &r), 0);
	CHECK_EQ(af_replay(r, NULL, &c2), 0);
	af_trace_reader_free(r);
	m.buf[8] = 1;
	CHECK_EQ(af_trace_reader_open_mem(m.buf, m.len, &r), 0);
	CHECK_EQ(af_trace_reader_info(r)->version, 1);
	CHECK_EQ(af_trace_next(r, &got), 1);
	CHECK_EQ(af_trace_next(r, &got), 1);
	CHECK_EQ(got.type, AF_REC_MEM);
	CHECK(!memcmp(got.u.mem.data, page, sizeof page));
	CHECK_EQ(af_trace_next(r, &got), 1);
	CHECK_EQ(af_trace_next(r, &got), 0);
	af_trace_reader_free(r);
	CHECK_EQ(af_trace_reader_open_mem(m.buf, m.len, &r), 0);
	CHECK_EQ(af_replay(r, NULL, &c1), 0);
	af_trace_reader_free(r);
	CHECK(!memcmp(&c1, &c2, sizeof c1));
	CHECK_EQ(c1.observations, 2);
	CHECK(c1.frames_walked > 0);
	free(m.buf);
}
