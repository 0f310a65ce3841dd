/*
 * tests/fuzz/make_corpus.c - writes the seed corpus of fuzz_trace into a
 * directory (tests/fuzz/corpus/trace/): small valid traces made with the
 * writer and the recorder (x86 4-level and 32-bit page tables, context ids,
 * every record kind and edge values, raw and sparse memory records, an
 * extension record) and a few corrupt ones, among them bad sparse records.
 * Deterministic for a given engine (the recorded seeds hold what the
 * engine read). Seeds have no ".trace" suffix: .gitignore ignores *.trace.
 * Rebuild the seeds with:
 *   make BUILD=build && cc -Iinclude -o build/make_corpus \
 *     tests/fuzz/make_corpus.c build/libantfarm.a -lm &&
 *   build/make_corpus tests/fuzz/corpus/trace
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* open_memstream */
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <antfarm/trace.h>

#define MEM_BYTES (256u << 10) /* fake guest RAM that reads succeed on */

static uint8_t guest[MEM_BYTES]; /* the fake guest's memory */
static const char *dir;          /* output directory */

static void die(const char *what, int rc)
{
	fprintf(stderr, "make_corpus: %s: %s\n", what, strerror(-rc));
	exit(1);
}

static int guest_read(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	(void)ctx;
	if (gpa >= MEM_BYTES || len > MEM_BYTES - gpa)
		return -EFAULT;
	memcpy(buf, guest + gpa, len);
	return 0;
}

static void put64(uint64_t gpa, uint64_t v)
{
	memcpy(guest + gpa, &v, 8);
}

static void put32(uint64_t gpa, uint32_t v)
{
	memcpy(guest + gpa, &v, 4);
}

/* An in-memory trace. */
struct buf {
	char *p;    /* bytes */
	size_t n;   /* count */
	FILE *f;    /* open_memstream on p */
};

static struct af_trace_writer *open_buf(struct buf *b,
					const struct af_trace_info *in)
{
	struct af_trace_writer *w;
	int rc;

	b->f = open_memstream(&b->p, &b->n);
	if (!b->f)
		die("open_memstream", -errno);
	rc = af_trace_writer_fdopen(b->f, in, &w);
	if (rc)
		die("writer", rc);
	return w;
}

static void close_buf(struct buf *b, struct af_trace_writer *w)
{
	int rc = af_trace_writer_close(w);
	if (rc)
		die("close", rc);
	fclose(b->f);
}

static void save(const char *name, const void *p, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f))
		die(path, -EIO);
	printf("%s: %zu bytes\n", path, n);
}

static struct af_obs obs(unsigned kind, unsigned vcpu, unsigned width,
			 uint64_t addr, uint64_t value, uint64_t t)
{
	struct af_obs o;
	memset(&o, 0, sizeof o);
	o.kind = (uint8_t)kind;
	o.vcpu = (uint16_t)vcpu;
	o.width = (uint8_t)width;
	o.addr = addr;
	o.value = value;
	o.time_ns = t;
	o.icount = t / 2;
	return o;
}

static struct af_trace_info info(unsigned mmu, unsigned n_vcpus,
				 uint64_t phys, const char *guest_name)
{
	struct af_trace_info in;
	memset(&in, 0, sizeof in);
	in.mmu = (uint8_t)mmu;
	in.n_vcpus = (uint16_t)n_vcpus;
	in.phys_bytes = phys;
	in.ctx_bits = mmu == AF_MMU_CONTEXT_ID ? 13 : 0;
	snprintf(in.guest, sizeof in.guest, "%s", guest_name);
	return in;
}

/* Records observations through an engine so the memory it reads is kept. */
struct rec {
	struct buf b;                /* the trace */
	struct af_trace_writer *w;   /* its writer */
	struct af_recorder *r;       /* the recorder */
	uint64_t t;                  /* clock */
};

static void rec_open(struct rec *x, const struct af_trace_info *in)
{
	struct af_engine_config cfg;
	int rc;

	memset(x, 0, sizeof *x);
	x->w = open_buf(&x->b, in);
	memset(&cfg, 0, sizeof cfg);
	cfg.mmu = (enum af_mmu)in->mmu;
	cfg.n_vcpus = in->n_vcpus;
	cfg.phys_bytes = in->phys_bytes;
	cfg.ctx_bits = in->ctx_bits;
	cfg.read_phys = guest_read;
	rc = af_recorder_new(&cfg, x->w, &x->r);
	if (rc)
		die("recorder", rc);
}

static void feed(struct rec *x, unsigned kind, unsigned vcpu, unsigned width,
		 uint64_t addr, uint64_t value)
{
	struct af_obs o;

	x->t += 500;
	o = obs(kind, vcpu, width, addr, value, x->t);
	if (kind == AF_OBS_PT_STORE && addr + width <= MEM_BYTES)
		memcpy(guest + addr, &value, width);
	(void)af_recorder_observe(x->r, &o);
}

static void truth(struct rec *x, unsigned kind, unsigned pid, uint64_t asid)
{
	struct af_truth t;
	int rc;

	memset(&t, 0, sizeof t);
	t.kind = (uint8_t)kind;
	t.pid = pid;
	t.ppid = 1;
	t.time_ns = x->t;
	t.asid = asid;
	rc = af_trace_write_truth(x->w, &t);
	if (rc)
		die("truth", rc);
}

static void rec_close(struct rec *x, const char *name)
{
	af_recorder_free(x->r);
	close_buf(&x->b, x->w);
	save(name, x->b.p, x->b.n);
}

/* x86 4-level: two processes, a switch, an exit by clearing, a reuse. */
static struct buf x86_4level(void)
{
	struct af_trace_info in = info(AF_MMU_X86, 2, MEM_BYTES * 2,
				       "seed: x86 4-level");
	struct rec x;
	struct buf keep;

	memset(guest, 0, sizeof guest);
	put64(0x1000, 0x2000 | 7);          /* A: PML4[0] -> PDPT */
	put64(0x1000 + 256 * 8, 0x8000 | 3); /* kernel half */
	put64(0x2000, 0x3000 | 7);          /* PDPT -> PD */
	put64(0x3000, 0x4000 | 7);          /* PD -> PT */
	put64(0x3008, 0x200000 | 0x87);     /* a 2 MiB page */
	put64(0x4000, 0x10000 | 7);
	put64(0x4008, 0x11000 | 0x8000000000000007ull);
	put64(0x5000, 0x2000 | 7);          /* B shares A's PDPT (like KPTI) */
	put64(0x5000 + 256 * 8, 0x8000 | 3);
	rec_open(&x, &in);
	truth(&x, AF_TRUTH_BEGIN, 0, AF_ASID_NONE);
	feed(&x, AF_OBS_PAGING, 0, 0, 0, AF_PAGING_4LEVEL);
	feed(&x, AF_OBS_PAGING, 1, 0, 0, AF_PAGING_4LEVEL);
	truth(&x, AF_TRUTH_FORK, 2, 0x1000);
	feed(&x, AF_OBS_ROOT_LOAD, 0, 0, 0, 0x1000);
	feed(&x, AF_OBS_ROOT_LOAD, 1, 0, 0, 0x5000);
	feed(&x, AF_OBS_ROOT_LOAD, 1, 0, 0, 0x1000);
	feed(&x, AF_OBS_ROOT_LOAD, 0, 0, 0, 0x7f000); /* unreadable root */
	feed(&x, AF_OBS_PT_STORE, 1, 8, 0x4000, 0);
	feed(&x, AF_OBS_PT_STORE, 1, 8, 0x4008, 0);
	feed(&x, AF_OBS_PT_STORE, 1, 8, 0x3008, 0);
	feed(&x, AF_OBS_TLB_FLUSH, 1, AF_FLUSH_PAGE, 0x10000, 0);
	feed(&x, AF_OBS_TLB_FLUSH, 1, AF_FLUSH_NONGLOBAL, 0, 0);
	truth(&x, AF_TRUTH_EXIT, 2, 0x1000);
	feed(&x, AF_OBS_ROOT_LOAD, 0, 0, 0, 0x5000 | 0x18);
	feed(&x, AF_OBS_PT_STORE, 0, 8, 0x4000, 0x12000 | 7);
	feed(&x, AF_OBS_ROOT_LOAD, 1, 0, 0, 0x1000);
	feed(&x, AF_OBS_TLB_FLUSH, 0, AF_FLUSH_ALL, 0, 0);
	feed(&x, AF_OBS_TIME, 0, 0, 0, 0);
	truth(&x, AF_TRUTH_END, 0, AF_ASID_NONE);
	rec_close(&x, "x86_4level");
	keep = x.b;
	return keep;
}

/* x86 32-bit paging with PSE and PCIDE flags seen, two roots. */
static void x86_32bit(void)
{
	struct af_trace_info in = info(AF_MMU_X86, 1, MEM_BYTES,
				       "seed: x86 32-bit");
	struct rec x;

	memset(guest, 0, sizeof guest);
	put32(0x1000, 0x2000 | 7);          /* PDE 0 -> PT */
	put32(0x1004, 0x400000 | 0x87);     /* PDE 1: 4 MiB page */
	put32(0x1000 + 768 * 4, 0x3000 | 3); /* kernel */
	put32(0x2000, 0x10000 | 7);
	put32(0x2004, 0x11000 | 7);
	put32(0x6000, 0x2000 | 7);
	rec_open(&x, &in);
	feed(&x, AF_OBS_PAGING, 0, 0, 0, AF_PAGING_32);
	x.t += 1;
	{
		struct af_obs o = obs(AF_OBS_PAGING, 0, 0, 0, AF_PAGING_32,
				      x.t);
		o.aux = AF_PAGING_F_PSE;
		(void)af_recorder_observe(x.r, &o);
	}
	feed(&x, AF_OBS_ROOT_LOAD, 0, 0, 0, 0x1000);
	feed(&x, AF_OBS_ROOT_LOAD, 0, 0, 0, 0x6000);
	feed(&x, AF_OBS_PT_STORE, 0, 4, 0x2000, 0);
	feed(&x, AF_OBS_PT_STORE, 0, 4, 0x2004, 0);
	feed(&x, AF_OBS_PT_STORE, 0, 4, 0x1004, 0);
	feed(&x, AF_OBS_ROOT_LOAD, 0, 0, 0, 0x1000);
	feed(&x, AF_OBS_TLB_FLUSH, 0, AF_FLUSH_NONGLOBAL, 0, 0);
	rec_close(&x, "x86_32bit");
	free(x.b.p);
}

/* Context ids: loads, a demap, reuse. */
static void context_id(void)
{
	struct af_trace_info in = info(AF_MMU_CONTEXT_ID, 2, 0,
				       "seed: context ids");
	struct rec x;

	rec_open(&x, &in);
	truth(&x, AF_TRUTH_BEGIN, 0, AF_ASID_NONE);
	feed(&x, AF_OBS_CTX_LOAD, 0, 0, 0, 1);
	feed(&x, AF_OBS_CTX_LOAD, 1, 0, 0, 2);
	feed(&x, AF_OBS_CTX_LOAD, 0, 0, 0, 2);
	feed(&x, AF_OBS_CTX_DEMAP, 0, 0, 0, 1);
	truth(&x, AF_TRUTH_EXIT, 5, 1);
	feed(&x, AF_OBS_CTX_LOAD, 1, 0, 0, 1);
	feed(&x, AF_OBS_CTX_LOAD, 1, 0, 0, 8191);
	feed(&x, AF_OBS_CTX_DEMAP, 1, 0, 0, 8191);
	truth(&x, AF_TRUTH_END, 0, AF_ASID_NONE);
	rec_close(&x, "context_id");
	free(x.b.p);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Every record kind with edge values, plus an extension record. */
static void all_records(void)
{
	struct af_trace_info in = info(AF_MMU_X86, AF_MAX_VCPUS, 1ull << 40,
				       "seed: every record kind");
	struct af_trace_writer *w;
	struct buf b;
	struct af_obs o;
	struct af_truth t;
	uint8_t data[64], page[4096];
	char *out;
	size_t n;

	for (unsigned i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 37);
	w = open_buf(&b, &in);
	o = obs(AF_OBS_PT_STORE, 63, 8, UINT64_MAX - 7, UINT64_MAX,
		UINT64_MAX);
	o.icount = UINT64_MAX;
	o.aux = UINT32_MAX;
	af_trace_write_obs(w, &o);
	o = obs(AF_OBS_TIME, 0, 0, 0, 0, 0); /* time going backwards */
	af_trace_write_obs(w, &o);
	o = obs(200, 1, 255, 1, 1ull << 56, 12345);
	af_trace_write_obs(w, &o);
	af_trace_write_mem(w, 0x1000, data, sizeof data);
	af_trace_write_mem(w, (1ull << 40) - 8, data, 16);
	/* sparse records: a page with a few entries, an all-zero page, and
	 * one that is not page-aligned */
	memset(page, 0, sizeof page);
	put_le64(page + 8, 0x2067);
	put_le64(page + 16, 0x3067);
	put_le64(page + 4088, 0x8000000000004067ull);
	af_trace_write_mem(w, 0x2000, page, sizeof page);
	memset(page, 0, sizeof page);
	af_trace_write_mem(w, 0x3000, page, sizeof page);
	page[100] = 1;
	af_trace_write_mem(w, 0x4010, page, 256);
	af_trace_write_mem_fail(w, 0x2000, 4096);
	memset(&t, 0, sizeof t);
	t.kind = AF_TRUTH_VFORK;
	t.vcpu = 63;
	t.pid = UINT32_MAX;
	t.ppid = UINT32_MAX;
	t.time_ns = 1;
	t.asid = AF_ASID_NONE;
	af_trace_write_truth(w, &t);
	close_buf(&b, w);
	save("all_records", b.p, b.n);

	/* Insert a 3-byte extension record before the end record (tag, count
	 * 7 as one byte) and count it. */
	out = malloc(b.n + 5);
	if (!out || b.n < 2 || (uint8_t)b.p[b.n - 2] != 0x05)
		die("extension seed", -EINVAL);
	n = b.n - 2;
	memcpy(out, b.p, n);
	out[n++] = (char)0x80;
	out[n++] = 3;
	out[n++] = 'e';
	out[n++] = 'x';
	out[n++] = 't';
	out[n++] = 0x05;
	out[n++] = (char)(b.p[b.n - 1] + 1);
	save("extension", out, n);
	free(out);
	free(b.p);
}

/* Offset of the first sparse memory record of a trace made by this
 * program (found by walking the records with the reader), or 0. */
static size_t first_sparse(const struct buf *b)
{
	struct af_trace_reader *r;
	struct af_record rec;
	size_t off = 0, at;

	if (af_trace_reader_open_mem(b->p, b->n, &r))
		die("reader", -EINVAL);
	for (;;) {
		at = (size_t)af_trace_reader_offset(r);
		if (af_trace_next(r, &rec) <= 0)
			break;
		if ((uint8_t)b->p[at] == 0x06) {
			off = at;
			break;
		}
	}
	af_trace_reader_free(r);
	return off;
}

/* A valid trace whose first sparse memory record has a run longer than
 * the bytes left in it, and the same trace cut inside that record. */
static void bad_sparse(const struct buf *good)
{
	size_t at = first_sparse(good), q;
	char *c = malloc(good->n);

	if (!c || !at)
		die("bad_sparse seed", -EINVAL);
	/* tag, gpa, len, size varints, then the first run's skip count */
	q = at + 1;
	for (int v = 0; v < 3; v++)
		while ((uint8_t)good->p[q++] & 0x80)
			;
	memcpy(c, good->p, good->n);
	c[q] = 0x7f; /* skip 127 words, then 127 words: more than are there */
	c[q + 1] = 0x7f;
	save("bad_sparse_run", c, good->n);
	memcpy(c, good->p, good->n);
	save("bad_sparse_cut", c, q + 3);
	free(c);
}

/* Corrupt variants of a valid trace. */
static void corrupt(const struct buf *good)
{
	char *c = malloc(good->n);

	if (!c)
		die("malloc", -ENOMEM);
	save("bad_truncated", good->p, good->n - good->n / 3);
	save("bad_header_only", good->p, 88);
	memcpy(c, good->p, good->n);
	c[8] = AF_TRACE_VERSION + 1; /* a version from the future */
	save("bad_version", c, good->n);
	memcpy(c, good->p, good->n);
	c[14] = 0; /* n_vcpus 0 */
	c[15] = 0;
	save("bad_vcpus", c, good->n);
	memcpy(c, good->p, good->n);
	c[16 + 5] = 0x7f; /* phys_bytes absurd */
	save("bad_phys", c, good->n);
	memcpy(c, good->p, good->n);
	/* first record after the header: make it a memory record of length
	 * 65537 */
	c[88] = 0x02;
	c[89] = 0;
	c[90] = (char)0x81;
	c[91] = (char)0x80;
	c[92] = 0x04;
	save("bad_mem_length", c, good->n);
	memcpy(c, good->p, good->n);
	save("bad_no_end", c, good->n - 2);
	bad_sparse(good);
	free(c);
}

int main(int argc, char **argv)
{
	struct buf b;

	if (argc != 2) {
		fprintf(stderr, "usage: make_corpus DIR\n");
		return 2;
	}
	dir = argv[1];
	b = x86_4level();
	x86_32bit();
	context_id();
	all_records();
	corrupt(&b);
	free(b.p);
	return 0;
}
