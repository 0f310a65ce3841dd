/*
 * tests/unit/test_synth.c - the synthetic kernel models (lib/synth): each
 * model is run (with its internal self-checks on), its trace replayed and
 * scored, and the counts compared with the Antfarm paper's Tables 2 and 3
 * (section 6.1.1, 6.3.1): OS process creates, OS address-space creates,
 * inferred creates and exits, no false negatives, inferred switches equal
 * to OS switches; the same under KPTI, lazy TLB, every paging mode and
 * several vCPUs; the shape of the traces (root reuse, KPTI pairs, PCIDs,
 * huge pages, PAE slab roots, Windows self-maps, SPARC demaps); exit lag
 * with lazy TLB; determinism; and option checking.
 */
#include "harness.h"

#include <antfarm/antfarm.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "synth/synth_int.h"

/* A trace in memory. */
struct mbuf {
	char *p;  /* bytes (malloc'd by open_memstream) */
	size_t n; /* length */
};

static struct af_synth_opts opts(enum af_synth_os os,
				 enum af_synth_workload wl, unsigned n)
{
	struct af_synth_opts o;

	memset(&o, 0, sizeof(o));
	o.os = os;
	o.workload = wl;
	o.n = n;
	o.seed = 42;
	return o;
}

/* Runs the model (self-checking) into memory; the run's status. */
static int synth_mem(const struct af_synth_opts *o, struct mbuf *b)
{
	struct af_trace_info info;
	struct af_trace_writer *w = NULL;
	FILE *f;
	int rc, rc2;

	b->p = NULL;
	b->n = 0;
	rc = af_synth_info(o, &info);
	if (rc)
		return rc;
	f = open_memstream(&b->p, &b->n);
	CHECK(f != NULL);
	rc = af_trace_writer_fdopen(f, &info, &w);
	CHECK_EQ(rc, 0);
	rc = sy_synth_run(o, w, 1);
	rc2 = af_trace_writer_close(w);
	fclose(f);
	return rc ? rc : rc2;
}

static void eval_mem(const struct mbuf *b, struct af_eval_result *r)
{
	struct af_trace_reader *rd = NULL;
	int rc = af_trace_reader_open_mem(b->p, b->n, &rd);

	CHECK_EQ(rc, 0);
	memset(r, 0, sizeof(*r));
	rc = af_eval_trace(rd, r);
	if (rc)
		fprintf(stderr, "eval: %s / %s\n", af_trace_reader_error(rd),
			af_replay_error());
	af_trace_reader_free(rd);
	CHECK_EQ(rc, 0);
}

static void run_eval(const struct af_synth_opts *o, struct af_eval_result *r)
{
	struct mbuf b;
	int rc = synth_mem(o, &b);

	if (rc)
		fprintf(stderr, "synth os %d wl %d n %u: %s\n", o->os,
			o->workload, o->n, strerror(-rc));
	CHECK_EQ(rc, 0);
	eval_mem(&b, r);
	free(b.p);
}

static void show(const char *what, const struct af_eval_result *r)
{
	fprintf(stderr,
		"%s: os pc %" PRIu64 " asc %" PRIu64 " pe %" PRIu64
		" ase %" PRIu64 " sw %" PRIu64 " | inferred c %" PRIu64
		" e %" PRIu64 " sw %" PRIu64 " | fn %" PRIu64 "/%" PRIu64
		" fp %" PRIu64 "/%" PRIu64 " asfn %" PRIu64 "/%" PRIu64
		" asfp %" PRIu64 "/%" PRIu64 "\n",
		what, r->os_process_create, r->os_as_create, r->os_process_exit,
		r->os_as_exit, r->os_switch, r->inferred_create,
		r->inferred_exit, r->inferred_switch, r->fn_create, r->fn_exit,
		r->fp_create, r->fp_exit, r->as_fn_create, r->as_fn_exit,
		r->as_fp_create, r->as_fp_exit);
}

/* One row of Table 2 or 3: n processes, asc address spaces, ic inferred
 * creates (and as many exits); never a false negative; inferred switches
 * equal the OS's. On x86 every inferred event is an address-space event. */
static void expect_row(const struct af_synth_opts *o, uint64_t asc,
		       uint64_t ic)
{
	struct af_eval_result r;
	int x86 = o->os != AF_SYNTH_SPARC_LINUX;

	run_eval(o, &r);
	show("row", &r);
	CHECK_EQ(r.os_process_create, o->n);
	CHECK_EQ(r.os_process_exit, o->n);
	CHECK_EQ(r.os_as_create, asc);
	CHECK_EQ(r.os_as_exit, asc);
	CHECK_EQ(r.inferred_create, ic);
	CHECK_EQ(r.inferred_exit, ic);
	CHECK_EQ(r.fn_create, 0);
	CHECK_EQ(r.fn_exit, 0);
	CHECK_EQ(r.fp_create, ic - o->n);
	CHECK_EQ(r.fp_exit, ic - o->n);
	CHECK_EQ(r.as_fn_create, 0);
	CHECK_EQ(r.as_fn_exit, 0);
	if (x86) {
		CHECK_EQ(r.as_fp_create, 0);
		CHECK_EQ(r.as_fp_exit, 0);
	}
	CHECK(r.os_switch > 2 * o->n);
	CHECK_EQ(r.inferred_switch, r.os_switch);
	CHECK_EQ(r.lag_create.n, o->n);
	CHECK_EQ(r.lag_exit.n, o->n);
	CHECK(r.lag_create.min_us >= 0);
	CHECK(r.lag_exit.min_us >= 0);
}

/* ---- the paper's tables, n = 1000 ---- */

TEST(table2_linux24)
{
	struct af_synth_opts o = opts(AF_SYNTH_LINUX24, AF_SYNTH_FORK, 1000);
	expect_row(&o, 1000, 1000);
	o.workload = AF_SYNTH_FORKEXEC;
	expect_row(&o, 1000, 1000);
	o.workload = AF_SYNTH_VFORKEXEC;
	expect_row(&o, 1000, 1000);
}

TEST(table2_linux26)
{
	struct af_synth_opts o = opts(AF_SYNTH_LINUX26, AF_SYNTH_FORK, 1000);
	expect_row(&o, 1000, 1000);
	o.workload = AF_SYNTH_FORKEXEC;
	expect_row(&o, 2000, 2000);
	o.workload = AF_SYNTH_VFORKEXEC;
	expect_row(&o, 1000, 1000);
}

TEST(table2_windows)
{
	struct af_synth_opts o = opts(AF_SYNTH_WINDOWS, AF_SYNTH_FORKEXEC, 1000);
	expect_row(&o, 1000, 1000);
}

TEST(table3_sparc)
{
	struct af_synth_opts o =
		opts(AF_SYNTH_SPARC_LINUX, AF_SYNTH_FORK, 1000);
	expect_row(&o, 1000, 2000);
	o.workload = AF_SYNTH_FORKEXEC;
	expect_row(&o, 1000, 3000);
	o.workload = AF_SYNTH_VFORKEXEC;
	expect_row(&o, 1000, 1000);
}

TEST(smaller_n)
{
	static const unsigned ns[] = { 1, 2, 7, 60 };
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		unsigned n = ns[i];
		struct af_synth_opts o =
			opts(AF_SYNTH_LINUX26, AF_SYNTH_FORKEXEC, n);
		expect_row(&o, 2 * n, 2 * n);
		o = opts(AF_SYNTH_LINUX24, AF_SYNTH_VFORKEXEC, n);
		expect_row(&o, n, n);
		o = opts(AF_SYNTH_WINDOWS, AF_SYNTH_FORKEXEC, n);
		expect_row(&o, n, n);
		o = opts(AF_SYNTH_SPARC_LINUX, AF_SYNTH_FORKEXEC, n);
		expect_row(&o, n, 3 * n);
		o = opts(AF_SYNTH_SPARC_LINUX, AF_SYNTH_FORK, n);
		expect_row(&o, n, 2 * n);
	}
}

/* ---- compile (make -j): no exact counts in the paper's sense, but the
 * same rules: x86 inference is exact on address spaces, never misses ---- */

TEST(compile)
{
	static const enum af_synth_os oss[] = { AF_SYNTH_LINUX24,
						AF_SYNTH_LINUX26,
						AF_SYNTH_WINDOWS,
						AF_SYNTH_SPARC_LINUX };
	for (size_t i = 0; i < 4; i++) {
		struct af_synth_opts o = opts(oss[i], AF_SYNTH_COMPILE, 300);
		struct af_eval_result r;
		o.n_vcpus = i == 1 ? 2 : 1;
		run_eval(&o, &r);
		show("compile", &r);
		CHECK_EQ(r.os_process_create, 300);
		CHECK_EQ(r.os_process_exit, 300);
		CHECK_EQ(r.fn_create, 0);
		CHECK_EQ(r.fn_exit, 0);
		CHECK_EQ(r.as_fn_create, 0);
		CHECK_EQ(r.as_fn_exit, 0);
		CHECK_EQ(r.inferred_switch, r.os_switch);
		if (oss[i] == AF_SYNTH_SPARC_LINUX) {
			/* shells fork (and exec): demaps; gcc's vforks do not */
			CHECK(r.inferred_create > r.os_process_create);
			CHECK(r.inferred_create < 3 * r.os_process_create);
			continue;
		}
		CHECK_EQ(r.inferred_create, r.os_as_create);
		CHECK_EQ(r.inferred_exit, r.os_as_exit);
		CHECK_EQ(r.as_fp_create, 0);
		CHECK_EQ(r.as_fp_exit, 0);
		if (oss[i] == AF_SYNTH_LINUX26) /* make's fork+exec of sh */
			CHECK(r.os_as_create > r.os_process_create);
		else
			CHECK_EQ(r.os_as_create, r.os_process_create);
	}
}

/* ---- x86 options: the counts do not change ---- */

static void x86_variants(void (*tweak)(struct af_synth_opts *), unsigned n)
{
	static const enum af_synth_os oss[] = { AF_SYNTH_LINUX24,
						AF_SYNTH_LINUX26 };
	static const enum af_synth_workload wls[] = { AF_SYNTH_FORK,
						      AF_SYNTH_FORKEXEC,
						      AF_SYNTH_VFORKEXEC };
	for (size_t i = 0; i < 2; i++) {
		for (size_t k = 0; k < 3; k++) {
			struct af_synth_opts o = opts(oss[i], wls[k], n);
			unsigned as = oss[i] == AF_SYNTH_LINUX26 &&
					      wls[k] == AF_SYNTH_FORKEXEC
				      ? 2 * n
				      : n;
			tweak(&o);
			fprintf(stderr, "os %d wl %d paging %d kpti %d pcid %d "
					"lazy %d vcpus %u\n",
				o.os, o.workload, o.paging, o.kpti, o.pcid,
				o.lazy_tlb, o.n_vcpus);
			expect_row(&o, as, as);
		}
	}
	/* Windows where the option applies */
	struct af_synth_opts w = opts(AF_SYNTH_WINDOWS, AF_SYNTH_FORKEXEC, n);
	tweak(&w);
	if (!w.kpti && !w.pcid)
		expect_row(&w, n, n);
}

static void t_kpti(struct af_synth_opts *o) { o->kpti = 1; }
static void t_lazy(struct af_synth_opts *o) { o->lazy_tlb = 1; }
static void t_5level(struct af_synth_opts *o) { o->paging = AF_PAGING_5LEVEL; }
static void t_pae(struct af_synth_opts *o) { o->paging = AF_PAGING_PAE; }
static void t_32(struct af_synth_opts *o) { o->paging = AF_PAGING_32; }
static void t_4level(struct af_synth_opts *o) { o->paging = AF_PAGING_4LEVEL; }
static void t_vcpus2(struct af_synth_opts *o) { o->n_vcpus = 2; }
static void t_vcpus4_lazy(struct af_synth_opts *o)
{
	o->n_vcpus = 4;
	o->lazy_tlb = 1;
}
static void t_pae_kpti_vcpus3(struct af_synth_opts *o)
{
	o->paging = AF_PAGING_PAE;
	o->kpti = 1;
	o->n_vcpus = 3;
}
static void t_all_but_pcid(struct af_synth_opts *o)
{
	o->paging = AF_PAGING_5LEVEL;
	o->kpti = 1;
	o->lazy_tlb = 1;
	o->n_vcpus = 3;
	o->seed = 7;
}

TEST(option_kpti) { x86_variants(t_kpti, 200); }
TEST(option_lazy_tlb) { x86_variants(t_lazy, 200); }
TEST(option_paging_5level) { x86_variants(t_5level, 200); }
TEST(option_paging_pae) { x86_variants(t_pae, 200); }
TEST(option_paging_32) { x86_variants(t_32, 200); }
TEST(option_paging_4level) { x86_variants(t_4level, 100); }
TEST(option_vcpus2) { x86_variants(t_vcpus2, 200); }
TEST(option_vcpus4_lazy) { x86_variants(t_vcpus4_lazy, 200); }
TEST(option_pae_kpti_vcpus3) { x86_variants(t_pae_kpti_vcpus3, 150); }
TEST(option_combined) { x86_variants(t_all_but_pcid, 200); }

/* PCID: Linux gives a dead mm's stale TLB slots no flush and reuses its
 * root at once (slots are tagged by mm, not by root), so this holds only if
 * the engine infers such exits without waiting for those slots. */
static void t_pcid(struct af_synth_opts *o) { o->pcid = 1; }
static void t_pcid_kpti_smp(struct af_synth_opts *o)
{
	o->pcid = 1;
	o->kpti = 1;
	o->lazy_tlb = 1;
	o->n_vcpus = 2;
	o->paging = AF_PAGING_5LEVEL;
}
TEST(option_pcid) { x86_variants(t_pcid, 200); }
TEST(option_pcid_kpti_smp) { x86_variants(t_pcid_kpti_smp, 200); }

/* ---- the shape of the traces ---- */

/* What a trace shows, engine aside. */
struct shape {
	uint64_t records;           /* records of any type */
	uint64_t obs;               /* observations */
	uint64_t truths;            /* ground-truth events */
	uint64_t mems;              /* memory the engine read */
	uint64_t root_loads;        /* CR3 writes */
	uint64_t distinct_roots;    /* different root addresses loaded */
	uint64_t user_root_loads;   /* KPTI: user root of a pair */
	uint64_t bad_user_roots;    /* ... whose kernel root never loaded */
	uint64_t noflush_loads;     /* PCID no-flush bit */
	uint64_t bad_pcids;         /* PCID outside Linux's 1..6 (|0x800) */
	uint64_t stores;            /* page-table stores */
	uint64_t stores4;           /* ... of 4 bytes */
	uint64_t user_huge_stores;  /* P|US|PS leaves written */
	uint64_t unaligned_roots;   /* roots not 4 KiB aligned (PAE slab) */
	uint64_t self_maps;         /* stores of a frame's own address */
	uint64_t demaps;            /* SPARC context demaps */
	uint64_t ctx_loads;         /* SPARC context loads */
	uint64_t max_ctx;           /* largest context id loaded */
	uint64_t forks_in_window;   /* FORK/VFORK truths in the window */
	uint64_t begins, ends;      /* BEGIN and END truths */
	uint64_t as_creates;        /* AS_CREATE truths, all */
	uint64_t backwards;         /* records earlier than the one before */
};

static void shape_of(const struct af_synth_opts *o, struct shape *sh)
{
	struct mbuf b;
	struct af_trace_reader *rd = NULL;
	struct af_record rec;
	uint64_t last = 0, roots[4096], nroots = 0;
	uint64_t kroots[4096], nk = 0;
	int in_window = 0, rc;
	uint64_t amask = o->paging == AF_PAGING_PAE ? 0xffffffe0ull
			 : o->paging == AF_PAGING_32 ? 0xfffff000ull
						    : 0x000ffffffffff000ull;

	memset(sh, 0, sizeof(*sh));
	CHECK_EQ(synth_mem(o, &b), 0);
	CHECK_EQ(af_trace_reader_open_mem(b.p, b.n, &rd), 0);
	while ((rc = af_trace_next(rd, &rec)) == 1) {
		uint64_t t = 0;
		sh->records++;
		if (rec.type == AF_REC_MEM) {
			sh->mems++;
			continue;
		}
		if (rec.type == AF_REC_TRUTH) {
			const struct af_truth *tr = &rec.u.truth;
			t = tr->time_ns;
			sh->truths++;
			if (tr->kind == AF_TRUTH_BEGIN) {
				sh->begins++;
				in_window = 1;
			} else if (tr->kind == AF_TRUTH_END) {
				sh->ends++;
				in_window = 0;
			} else if (tr->kind == AF_TRUTH_AS_CREATE) {
				sh->as_creates++;
			} else if (in_window && (tr->kind == AF_TRUTH_FORK ||
						 tr->kind == AF_TRUTH_VFORK)) {
				sh->forks_in_window++;
			}
		} else {
			const struct af_obs *ob = &rec.u.obs;
			t = ob->time_ns;
			sh->obs++;
			if (ob->kind == AF_OBS_ROOT_LOAD) {
				uint64_t a = ob->value & amask, pcid =
								ob->value & 0xfff;
				int user = o->kpti && (a & 4096);
				sh->root_loads++;
				if (a & 4095)
					sh->unaligned_roots++;
				if (ob->value >> 63)
					sh->noflush_loads++;
				if (o->pcid && ((pcid & 0x7ff) < 1 ||
						(pcid & 0x7ff) > 6 ||
						(!!(pcid & 0x800)) != user))
					sh->bad_pcids++;
				if (user) {
					int found = 0;
					sh->user_root_loads++;
					for (uint64_t i = 0; i < nk; i++)
						found |= kroots[i] == a - 4096;
					sh->bad_user_roots += !found;
				} else if (nk < 4096) {
					int seen = 0;
					for (uint64_t i = 0; i < nk; i++)
						seen |= kroots[i] == a;
					if (!seen)
						kroots[nk++] = a;
				}
				int seen = 0;
				for (uint64_t i = 0; i < nroots; i++)
					seen |= roots[i] == a;
				if (!seen && nroots < 4096)
					roots[nroots++] = a;
			} else if (ob->kind == AF_OBS_PT_STORE) {
				sh->stores++;
				sh->stores4 += ob->width == 4;
				if ((ob->value & 0x85) == 0x85)
					sh->user_huge_stores++;
				if ((ob->value & 1) && ob->width >= 4 &&
				    ((ob->value & amask & ~0xfffull) ==
				     (ob->addr & ~0xfffull)))
					sh->self_maps++;
			} else if (ob->kind == AF_OBS_CTX_DEMAP) {
				sh->demaps++;
			} else if (ob->kind == AF_OBS_CTX_LOAD) {
				sh->ctx_loads++;
				if (ob->value > sh->max_ctx)
					sh->max_ctx = ob->value;
			}
		}
		if (t < last)
			sh->backwards++;
		last = t;
	}
	CHECK_EQ(rc, 0);
	sh->distinct_roots = nroots;
	af_trace_reader_free(rd);
	free(b.p);
}

TEST(shape_common)
{
	struct af_synth_opts o = opts(AF_SYNTH_LINUX26, AF_SYNTH_FORKEXEC, 200);
	struct shape sh;

	shape_of(&o, &sh);
	CHECK_EQ(sh.backwards, 0);
	CHECK_EQ(sh.begins, 1);
	CHECK_EQ(sh.ends, 1);
	CHECK_EQ(sh.forks_in_window, 200);
	CHECK(sh.mems > 0);
	CHECK(sh.stores > 1000);
	/* Linux reuses freed page directories: fewer roots than address
	 * spaces even with ~100 processes alive and faulting */
	CHECK(sh.as_creates > 400);
	CHECK(sh.distinct_roots < sh.as_creates);
	CHECK(sh.distinct_roots > 100);
	CHECK(sh.user_huge_stores > 0); /* 2 MiB pages, 4-level */
	CHECK_EQ(sh.unaligned_roots, 0);
	CHECK_EQ(sh.noflush_loads, 0);

	/* one process at a time (FACTS: 200 fork+exec, ~7 roots): a handful
	 * of roots for hundreds of address spaces */
	o.lifetime_ns = 2000000ull;
	shape_of(&o, &sh);
	CHECK(sh.as_creates > 400);
	CHECK(sh.distinct_roots < 40);
	expect_row(&o, 400, 400);
}

TEST(shape_kpti_pcid)
{
	struct af_synth_opts o = opts(AF_SYNTH_LINUX26, AF_SYNTH_FORKEXEC, 100);
	struct shape sh;

	o.kpti = 1;
	o.pcid = 1;
	o.n_vcpus = 2;
	shape_of(&o, &sh);
	CHECK_EQ(sh.backwards, 0);
	CHECK(sh.user_root_loads > 200);
	CHECK_EQ(sh.bad_user_roots, 0);
	CHECK(sh.noflush_loads > sh.root_loads / 4);
	CHECK(sh.noflush_loads < sh.root_loads);
	CHECK_EQ(sh.bad_pcids, 0);
}

TEST(shape_paging_modes)
{
	struct af_synth_opts o = opts(AF_SYNTH_LINUX24, AF_SYNTH_FORKEXEC, 100);
	struct shape sh;

	/* two-level: 4-byte entries, a 4 MiB user page somewhere */
	shape_of(&o, &sh);
	CHECK_EQ(sh.stores4, sh.stores);
	CHECK(sh.user_huge_stores > 0);
	/* PAE: 32-byte roots from a slab, leaves as 4-byte halves */
	o.paging = AF_PAGING_PAE;
	shape_of(&o, &sh);
	CHECK(sh.unaligned_roots > 0);
	CHECK(sh.stores4 > 0 && sh.stores4 < sh.stores);
	CHECK(sh.user_huge_stores > 0);
	/* 5-level, 2 MiB user pages */
	o.paging = AF_PAGING_5LEVEL;
	shape_of(&o, &sh);
	CHECK_EQ(sh.stores4, 0);
	CHECK(sh.user_huge_stores > 0);
	CHECK_EQ(sh.self_maps, 0);
}

TEST(shape_windows)
{
	struct af_synth_opts o = opts(AF_SYNTH_WINDOWS, AF_SYNTH_FORKEXEC, 50);
	struct shape sh;

	shape_of(&o, &sh);
	CHECK(sh.self_maps >= 50); /* every page directory maps itself */
	o.paging = AF_PAGING_4LEVEL;
	shape_of(&o, &sh);
	CHECK(sh.self_maps >= 50);
	expect_row(&o, 50, 50);
	o.paging = AF_PAGING_PAE;
	expect_row(&o, 50, 50);
	o.paging = AF_PAGING_5LEVEL;
	o.n_vcpus = 2;
	expect_row(&o, 50, 50);
}

TEST(shape_sparc)
{
	struct af_synth_opts o =
		opts(AF_SYNTH_SPARC_LINUX, AF_SYNTH_FORKEXEC, 100);
	struct shape sh;

	shape_of(&o, &sh);
	CHECK_EQ(sh.backwards, 0);
	CHECK_EQ(sh.root_loads, 0);
	CHECK_EQ(sh.stores, 0);
	CHECK_EQ(sh.mems, 0);
	/* fork demaps the parent, exec the child, exit the child */
	CHECK(sh.demaps >= 300);
	CHECK(sh.max_ctx < 1024);
	/* vfork demaps nothing: only exits */
	o.workload = AF_SYNTH_VFORKEXEC;
	shape_of(&o, &sh);
	CHECK(sh.demaps < 150);
	/* ids are recycled */
	o = opts(AF_SYNTH_SPARC_LINUX, AF_SYNTH_FORK, 2500);
	o.lifetime_ns = 50000000ull;
	o.interval_ns = 1000000ull;
	expect_row(&o, 2500, 5000);
}

/* The paper's exit lag (6.1.2): with lazy TLB the idle thread keeps the
 * dead address space loaded until another process runs. */
TEST(lazy_tlb_exit_lag)
{
	struct af_synth_opts o = opts(AF_SYNTH_LINUX26, AF_SYNTH_FORK, 100);
	struct af_eval_result eager, lazy;

	run_eval(&o, &eager);
	o.lazy_tlb = 1;
	run_eval(&o, &lazy);
	fprintf(stderr, "exit lag: eager %.1f us, lazy %.1f us\n",
		eager.lag_exit.mean_us, lazy.lag_exit.mean_us);
	CHECK_EQ(lazy.fn_exit, 0);
	CHECK(lazy.lag_exit.mean_us > 20 * eager.lag_exit.mean_us);
	CHECK(lazy.lag_exit.max_us > 1000.0);
	CHECK(eager.lag_exit.max_us < 1000.0);
	/* idle does not switch to the kernel's tables */
	CHECK(lazy.os_switch < eager.os_switch);
}

/* ---- determinism, options ---- */

TEST(determinism)
{
	static const enum af_synth_os oss[] = { AF_SYNTH_LINUX26,
						AF_SYNTH_SPARC_LINUX,
						AF_SYNTH_WINDOWS };
	for (size_t i = 0; i < 3; i++) {
		struct af_synth_opts o = opts(oss[i], AF_SYNTH_COMPILE, 60);
		struct mbuf a, b, c;
		o.n_vcpus = 3;
		o.lazy_tlb = 1;
		CHECK_EQ(synth_mem(&o, &a), 0);
		CHECK_EQ(synth_mem(&o, &b), 0);
		CHECK_EQ(a.n, b.n);
		CHECK(memcmp(a.p, b.p, a.n) == 0);
		o.seed++;
		CHECK_EQ(synth_mem(&o, &c), 0);
		CHECK(c.n != a.n || memcmp(a.p, c.p, a.n) != 0);
		free(a.p);
		free(b.p);
		free(c.p);
	}
	/* and through the public entry point, without self-checks */
	struct af_synth_opts o = opts(AF_SYNTH_LINUX24, AF_SYNTH_FORKEXEC, 30);
	struct af_trace_info info;
	struct mbuf a, b;
	struct af_trace_writer *w;
	FILE *f;
	CHECK_EQ(af_synth_info(&o, &info), 0);
	CHECK_EQ(synth_mem(&o, &a), 0);
	f = open_memstream(&b.p, &b.n);
	CHECK_EQ(af_trace_writer_fdopen(f, &info, &w), 0);
	CHECK_EQ(af_synth_run(&o, w), 0);
	CHECK_EQ(af_trace_writer_close(w), 0);
	fclose(f);
	CHECK_EQ(a.n, b.n);
	CHECK(memcmp(a.p, b.p, a.n) == 0);
	free(a.p);
	free(b.p);
}

static int info_rc(const struct af_synth_opts *o)
{
	struct af_trace_info info;
	return af_synth_info(o, &info);
}

TEST(bad_options)
{
	struct af_synth_opts o;
	struct af_trace_info info;

	CHECK_EQ(af_synth_info(NULL, &info), -EINVAL);
	o = opts(AF_SYNTH_LINUX26, AF_SYNTH_FORKEXEC, 10);
	CHECK_EQ(af_synth_info(&o, NULL), -EINVAL);
	CHECK_EQ(af_synth_run(&o, NULL), -EINVAL);
	CHECK_EQ(af_synth_run(NULL, NULL), -EINVAL);
	CHECK_EQ(info_rc(&o), 0);

#define BAD(field, value)                                                   \
	do {                                                                \
		struct af_synth_opts b_ = o;                                \
		b_.field = value;                                           \
		CHECK_EQ(info_rc(&b_), -EINVAL);                            \
	} while (0)
	BAD(n, 0);
	BAD(n, SY_MAX_N + 1);
	BAD(os, 0);
	BAD(os, 5);
	BAD(workload, 0);
	BAD(workload, 5);
	BAD(n_vcpus, AF_MAX_VCPUS + 1);
	BAD(paging, 5);
	BAD(kpti, 2);
	BAD(lifetime_ns, 1000);
	BAD(interval_ns, 1);
	BAD(phys_bytes, 1ull << 20);     /* too small */
	BAD(phys_bytes, (64ull << 20) + 1); /* not whole pages */
	BAD(phys_bytes, 65ull << 30);    /* too big */
#undef BAD

	/* Windows has no fork, no vfork; the model has no KPTI/PCID */
	o = opts(AF_SYNTH_WINDOWS, AF_SYNTH_FORK, 10);
	CHECK_EQ(info_rc(&o), -EINVAL);
	o.workload = AF_SYNTH_VFORKEXEC;
	CHECK_EQ(info_rc(&o), -EINVAL);
	o.workload = AF_SYNTH_COMPILE;
	CHECK_EQ(info_rc(&o), 0);
	o.workload = AF_SYNTH_FORKEXEC;
	CHECK_EQ(info_rc(&o), 0);
	o.kpti = 1;
	CHECK_EQ(info_rc(&o), -EINVAL);
	o.kpti = 0;
	o.pcid = 1;
	CHECK_EQ(info_rc(&o), -EINVAL);

	/* SPARC: no x86 options */
	o = opts(AF_SYNTH_SPARC_LINUX, AF_SYNTH_FORK, 10);
	CHECK_EQ(info_rc(&o), 0);
	o.kpti = 1;
	CHECK_EQ(info_rc(&o), -EINVAL);
	o.kpti = 0;
	o.pcid = 1;
	CHECK_EQ(info_rc(&o), -EINVAL);
	o.pcid = 0;
	o.paging = AF_PAGING_4LEVEL;
	CHECK_EQ(info_rc(&o), -EINVAL);

	/* what the hardware cannot do */
	o = opts(AF_SYNTH_LINUX24, AF_SYNTH_FORK, 10);
	o.paging = AF_PAGING_32;
	o.kpti = 1;
	CHECK_EQ(info_rc(&o), -EINVAL);
	o.kpti = 0;
	o.pcid = 1;
	CHECK_EQ(info_rc(&o), -EINVAL);
	o.paging = AF_PAGING_PAE;
	CHECK_EQ(info_rc(&o), -EINVAL);
	o.paging = AF_PAGING_PAE;
	o.pcid = 0;
	o.phys_bytes = 8ull << 30; /* beyond what the model gives PAE */
	CHECK_EQ(info_rc(&o), -EINVAL);

	/* a run refuses what info refuses, and writes nothing */
	{
		struct af_trace_info ok;
		struct af_trace_writer *w;
		struct mbuf m;
		FILE *f;
		struct af_synth_opts good =
			opts(AF_SYNTH_LINUX26, AF_SYNTH_FORK, 5);
		CHECK_EQ(af_synth_info(&good, &ok), 0);
		f = open_memstream(&m.p, &m.n);
		CHECK_EQ(af_trace_writer_fdopen(f, &ok, &w), 0);
		o = opts(AF_SYNTH_WINDOWS, AF_SYNTH_FORK, 10);
		CHECK_EQ(af_synth_run(&o, w), -EINVAL);
		af_trace_writer_close(w);
		fclose(f);
		free(m.p);
	}

	/* more live address spaces than RAM or context ids: errors */
	o = opts(AF_SYNTH_LINUX26, AF_SYNTH_FORK, 2000);
	o.lifetime_ns = 100000000000ull;
	o.interval_ns = 1000000ull;
	{
		struct mbuf m;
		CHECK_EQ(synth_mem(&o, &m), -ENOMEM);
		free(m.p);
	}
	o.os = AF_SYNTH_SPARC_LINUX;
	{
		struct mbuf m;
		CHECK_EQ(synth_mem(&o, &m), -ENOSPC);
		free(m.p);
	}
}

TEST(parse_and_info)
{
	enum af_synth_os os;
	enum af_synth_workload wl;
	struct af_trace_info info;
	struct af_synth_opts o;

	CHECK_EQ(af_synth_parse_os("linux2.4", &os), 0);
	CHECK_EQ(os, AF_SYNTH_LINUX24);
	CHECK_EQ(af_synth_parse_os("linux2.6", &os), 0);
	CHECK_EQ(os, AF_SYNTH_LINUX26);
	CHECK_EQ(af_synth_parse_os("windows", &os), 0);
	CHECK_EQ(os, AF_SYNTH_WINDOWS);
	CHECK_EQ(af_synth_parse_os("sparc-linux", &os), 0);
	CHECK_EQ(os, AF_SYNTH_SPARC_LINUX);
	CHECK_EQ(af_synth_parse_os("linux", &os), -EINVAL);
	CHECK_EQ(af_synth_parse_os(NULL, &os), -EINVAL);
	CHECK_EQ(af_synth_parse_workload("fork", &wl), 0);
	CHECK_EQ(wl, AF_SYNTH_FORK);
	CHECK_EQ(af_synth_parse_workload("forkexec", &wl), 0);
	CHECK_EQ(wl, AF_SYNTH_FORKEXEC);
	CHECK_EQ(af_synth_parse_workload("vforkexec", &wl), 0);
	CHECK_EQ(wl, AF_SYNTH_VFORKEXEC);
	CHECK_EQ(af_synth_parse_workload("compile", &wl), 0);
	CHECK_EQ(wl, AF_SYNTH_COMPILE);
	CHECK_EQ(af_synth_parse_workload("Fork", &wl), -EINVAL);

	o = opts(AF_SYNTH_SPARC_LINUX, AF_SYNTH_FORK, 3);
	CHECK_EQ(af_synth_info(&o, &info), 0);
	CHECK_EQ(info.mmu, AF_MMU_CONTEXT_ID);
	CHECK_EQ(info.ctx_bits, 10);
	CHECK_EQ(info.n_vcpus, 1);
	o = opts(AF_SYNTH_LINUX26, AF_SYNTH_FORK, 3);
	o.n_vcpus = 4;
	o.phys_bytes = 256ull << 20;
	CHECK_EQ(af_synth_info(&o, &info), 0);
	CHECK_EQ(info.mmu, AF_MMU_X86);
	CHECK_EQ(info.n_vcpus, 4);
	CHECK_EQ(info.phys_bytes, 256ull << 20);
	CHECK(strstr(info.guest, "linux2.6") != NULL);
	CHECK(strstr(info.guest, "4level") != NULL);
	o.phys_bytes = 0;
	CHECK_EQ(af_synth_info(&o, &info), 0);
	CHECK_EQ(info.phys_bytes, 128ull << 20);
}
