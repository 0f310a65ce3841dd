/*
 * tests/unit/test_eval.c - unit tests for lib/eval: matching OS-reported
 * process and address-space events to inferred ones (include/antfarm/eval.h)
 * on hand-made event lists, and scoring a small trace end to end.
 */
#include "harness.h"

#include <antfarm/antfarm.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Shorthands: a ground-truth record and an inferred event. */
static void T(struct af_eval *ev, unsigned kind, uint32_t pid, uint64_t t,
	      uint64_t asid)
{
	struct af_truth tr = { .kind = (uint8_t)kind, .pid = pid,
			       .time_ns = t, .asid = asid };
	CHECK_EQ(af_eval_add_truth(ev, &tr), 0);
}

static void I(struct af_eval *ev, unsigned kind, uint64_t t, uint64_t asid)
{
	struct af_event e = { .kind = (uint8_t)kind, .time_ns = t,
			      .asid = asid, .prev_asid = AF_ASID_NONE };
	CHECK_EQ(af_eval_add_event(ev, &e), 0);
}

static struct af_eval *mk(void)
{
	struct af_eval *ev = NULL;
	CHECK_EQ(af_eval_new(&ev), 0);
	CHECK(ev != NULL);
	return ev;
}

static struct af_eval_result fin(struct af_eval *ev)
{
	struct af_eval_result r;
	memset(&r, 0xa5, sizeof(r));
	CHECK_EQ(af_eval_finish(ev, &r), 0);
	return r;
}

/* Doubles computed from integer ns: compare to 1 ns. */
#define CHECK_US(a, b) CHECK(fabs((double)(a) - (double)(b)) < 0.001)

TEST(empty)
{
	struct af_eval *ev = mk();
	struct af_eval_result r = fin(ev);
	CHECK_EQ(r.os_process_create, 0);
	CHECK_EQ(r.inferred_create, 0);
	CHECK_EQ(r.fn_create + r.fn_exit + r.fp_create + r.fp_exit, 0);
	CHECK_EQ(r.lag_create.n, 0);
	CHECK_US(r.lag_create.mean_us, 0);
	CHECK_EQ(r.window_begin_ns, 0);
	CHECK_EQ(r.window_end_ns, UINT64_MAX);
	af_eval_free(ev);
	af_eval_free(NULL);
}

TEST(bad_args)
{
	struct af_eval_result r;
	struct af_truth t = { .kind = AF_TRUTH_FORK };
	struct af_event e = { .kind = AF_EV_CREATE };
	CHECK_EQ(af_eval_new(NULL), -EINVAL);
	CHECK_EQ(af_eval_finish(NULL, &r), -EINVAL);
	CHECK_EQ(af_eval_add_truth(NULL, &t), -EINVAL);
	CHECK_EQ(af_eval_add_event(NULL, &e), -EINVAL);
	CHECK_EQ(af_eval_trace(NULL, &r), -EINVAL);
}

TEST(exact_matches)
{
	struct af_eval *ev = mk();
	/* Three processes, distinct ASIDs, fed out of order. */
	I(ev, AF_EV_EXIT, 9300, 0x3000);
	T(ev, AF_TRUTH_FORK, 1, 1000, 0x1000);
	T(ev, AF_TRUTH_FORK, 2, 2000, 0x2000);
	T(ev, AF_TRUTH_FORK, 3, 3000, 0x3000);
	I(ev, AF_EV_CREATE, 1100, 0x1000);
	I(ev, AF_EV_CREATE, 2200, 0x2000);
	I(ev, AF_EV_CREATE, 3300, 0x3000);
	T(ev, AF_TRUTH_EXIT, 1, 7000, 0x1000);
	T(ev, AF_TRUTH_EXIT, 2, 8000, 0x2000);
	T(ev, AF_TRUTH_EXIT, 3, 9000, 0x3000);
	I(ev, AF_EV_EXIT, 7100, 0x1000);
	I(ev, AF_EV_EXIT, 8200, 0x2000);
	struct af_eval_result r = fin(ev);
	CHECK_EQ(r.os_process_create, 3);
	CHECK_EQ(r.os_process_exit, 3);
	CHECK_EQ(r.inferred_create, 3);
	CHECK_EQ(r.inferred_exit, 3);
	CHECK_EQ(r.fn_create, 0);
	CHECK_EQ(r.fn_exit, 0);
	CHECK_EQ(r.fp_create, 0);
	CHECK_EQ(r.fp_exit, 0);
	CHECK_EQ(r.lag_create.n, 3);
	CHECK_US(r.lag_create.min_us, 0.1);
	CHECK_US(r.lag_create.median_us, 0.2);
	CHECK_US(r.lag_create.max_us, 0.3);
	CHECK_US(r.lag_create.mean_us, 0.2);
	CHECK_EQ(r.lag_exit.n, 3);
	CHECK_US(r.lag_exit.max_us, 0.3);
	/* No AS events were reported: every inferred event is an AS FP. */
	CHECK_EQ(r.os_as_create, 0);
	CHECK_EQ(r.as_fp_create, 3);
	CHECK_EQ(r.as_fp_exit, 3);
	CHECK_EQ(r.as_fn_create, 0);
	af_eval_free(ev);
}

TEST(false_negatives_and_positives)
{
	struct af_eval *ev = mk();
	T(ev, AF_TRUTH_FORK, 1, 1000, 0x1000);
	T(ev, AF_TRUTH_EXIT, 1, 5000, 0x1000);
	/* Nothing inferred for pid 1: one FN each. */
	/* An inferred process the OS never reported: one FP each. */
	I(ev, AF_EV_CREATE, 1500, 0x9000);
	I(ev, AF_EV_EXIT, 2500, 0x9000);
	/* Same ASID but wrong side of the OS event's window: the exit of
	 * 0x1000 inferred before the process was even created. */
	I(ev, AF_EV_EXIT, 900, 0x1000);
	struct af_eval_result r = fin(ev);
	CHECK_EQ(r.fn_create, 1);
	CHECK_EQ(r.fn_exit, 1);
	CHECK_EQ(r.fp_create, 1);
	CHECK_EQ(r.fp_exit, 2);
	CHECK_EQ(r.inferred_exit, 2);
	CHECK_EQ(r.lag_create.n, 0);
	CHECK_EQ(r.lag_exit.n, 0);
	af_eval_free(ev);
}

TEST(one_to_one)
{
	/* Two inferred creates for one OS create: one is a false positive,
	 * and the earlier one at or after the OS time is the match. */
	struct af_eval *ev = mk();
	T(ev, AF_TRUTH_FORK, 1, 1000, 0x1000);
	I(ev, AF_EV_CREATE, 1700, 0x1000);
	I(ev, AF_EV_CREATE, 1200, 0x1000);
	struct af_eval_result r = fin(ev);
	CHECK_EQ(r.fn_create, 0);
	CHECK_EQ(r.fp_create, 1);
	CHECK_EQ(r.lag_create.n, 1);
	CHECK_US(r.lag_create.max_us, 0.2);
	af_eval_free(ev);

	/* Two OS creates (different pids, same ASID at the same instant) and
	 * one inferred: one FN. */
	ev = mk();
	T(ev, AF_TRUTH_FORK, 1, 1000, 0x1000);
	T(ev, AF_TRUTH_FORK, 2, 1000, 0x1000);
	I(ev, AF_EV_CREATE, 1200, 0x1000);
	r = fin(ev);
	CHECK_EQ(r.os_process_create, 2);
	CHECK_EQ(r.fn_create, 1);
	CHECK_EQ(r.fp_create, 0);
	af_eval_free(ev);
}

TEST(asid_reuse)
{
	/* Two processes with the same root, one after the other. */
	struct af_eval *ev = mk();
	const uint64_t R = 0x7000;
	I(ev, AF_EV_EXIT, 9200, R);
	I(ev, AF_EV_CREATE, 6050, R);
	T(ev, AF_TRUTH_EXIT, 2, 9000, R);
	T(ev, AF_TRUTH_FORK, 2, 6000, R);
	T(ev, AF_TRUTH_FORK, 1, 1000, R);
	T(ev, AF_TRUTH_EXIT, 1, 5000, R);
	I(ev, AF_EV_CREATE, 1100, R);
	I(ev, AF_EV_EXIT, 5100, R);
	struct af_eval_result r = fin(ev);
	CHECK_EQ(r.fn_create + r.fn_exit + r.fp_create + r.fp_exit, 0);
	CHECK_EQ(r.lag_create.n, 2);
	CHECK_US(r.lag_create.min_us, 0.05);
	CHECK_US(r.lag_create.max_us, 0.1);
	CHECK_US(r.lag_exit.min_us, 0.1);
	CHECK_US(r.lag_exit.max_us, 0.2);
	af_eval_free(ev);

	/* The first process's inferred exit and the second one's inferred
	 * create are missing: each OS event must stay unmatched rather than
	 * take the other process's inferred event. */
	ev = mk();
	T(ev, AF_TRUTH_FORK, 1, 1000, R);
	T(ev, AF_TRUTH_EXIT, 1, 5000, R);
	T(ev, AF_TRUTH_FORK, 2, 6000, R);
	T(ev, AF_TRUTH_EXIT, 2, 9000, R);
	I(ev, AF_EV_CREATE, 1100, R);
	I(ev, AF_EV_EXIT, 9200, R);
	r = fin(ev);
	CHECK_EQ(r.fn_create, 1);
	CHECK_EQ(r.fn_exit, 1);
	CHECK_EQ(r.fp_create, 0);
	CHECK_EQ(r.fp_exit, 0);
	CHECK_US(r.lag_create.max_us, 0.1);
	CHECK_US(r.lag_exit.max_us, 0.2);
	CHECK_EQ(r.lag_exit.n, 1);
	af_eval_free(ev);

	/* The other way round: the first process's create is missing and the
	 * second's exit is missing. */
	ev = mk();
	T(ev, AF_TRUTH_FORK, 1, 1000, R);
	T(ev, AF_TRUTH_EXIT, 1, 5000, R);
	T(ev, AF_TRUTH_FORK, 2, 6000, R);
	T(ev, AF_TRUTH_EXIT, 2, 9000, R);
	I(ev, AF_EV_EXIT, 5100, R);
	I(ev, AF_EV_CREATE, 6050, R);
	r = fin(ev);
	CHECK_EQ(r.fn_create, 1);
	CHECK_EQ(r.fn_exit, 1);
	CHECK_EQ(r.fp_create + r.fp_exit, 0);
	CHECK_US(r.lag_create.max_us, 0.05);
	CHECK_US(r.lag_exit.max_us, 0.1);
	af_eval_free(ev);
}

TEST(asid_reused_by_exec)
{
	/* Linux 2.6: A execs into R2 and exits (its inferred exit is
	 * missing); B then execs into the freed R2 and exits. B's inferred
	 * exit is B's, not A's. */
	struct af_eval *ev = mk();
	const uint64_t R1 = 0x1000, R2 = 0x2000, R3 = 0x3000;
	T(ev, AF_TRUTH_FORK, 1, 0, R1);
	T(ev, AF_TRUTH_EXEC, 1, 100, R2);
	T(ev, AF_TRUTH_EXIT, 1, 1000, R2);
	T(ev, AF_TRUTH_FORK, 2, 1100, R3);
	T(ev, AF_TRUTH_EXEC, 2, 1200, R2);
	T(ev, AF_TRUTH_EXIT, 2, 2000, R2);
	I(ev, AF_EV_EXIT, 2050, R2);
	struct af_eval_result r = fin(ev);
	CHECK_EQ(r.os_process_exit, 2);
	CHECK_EQ(r.fn_exit, 1);
	CHECK_EQ(r.fp_exit, 0);
	CHECK_EQ(r.lag_exit.n, 1);
	CHECK_US(r.lag_exit.max_us, 0.05);
	af_eval_free(ev);
}

TEST(many_reuses_of_few_asids)
{
	/* Like Linux reusing a handful of page directories: 200000 processes
	 * over 7 roots, overlapping, each inferred 1..5 us late. */
	struct af_eval *ev = mk();
	const unsigned N = 200000, K = 7;
	for (unsigned i = 0; i < N; i++) {
		uint64_t asid = 0x100000 + (uint64_t)(i % K) * 0x1000;
		uint64_t t0 = (uint64_t)i * 10000;      /* 10 us apart */
		uint64_t t1 = t0 + K * 10000 - 8000;    /* before reuse */
		uint64_t l = 1000 * (1 + i % 5);
		T(ev, AF_TRUTH_FORK, i + 1, t0, asid);
		T(ev, AF_TRUTH_EXIT, i + 1, t1, asid);
		I(ev, AF_EV_CREATE, t0 + l, asid);
		I(ev, AF_EV_EXIT, t1 + l, asid);
	}
	/* The same fed in a shuffled order must give the same result. */
	struct af_eval *ev2 = mk();
	uint32_t *perm = malloc(N * sizeof(*perm));
	CHECK(perm != NULL);
	for (unsigned i = 0; i < N; i++)
		perm[i] = i;
	uint64_t x = 88172645463325252ull;
	for (unsigned i = N - 1; i > 0; i--) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		unsigned j = (unsigned)(x % (i + 1));
		uint32_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	for (unsigned k = 0; k < N; k++) {
		unsigned i = perm[k];
		uint64_t asid = 0x100000 + (uint64_t)(i % K) * 0x1000;
		uint64_t t0 = (uint64_t)i * 10000;
		uint64_t t1 = t0 + K * 10000 - 8000;
		uint64_t l = 1000 * (1 + i % 5);
		I(ev2, AF_EV_EXIT, t1 + l, asid);
		T(ev2, AF_TRUTH_EXIT, i + 1, t1, asid);
		I(ev2, AF_EV_CREATE, t0 + l, asid);
		T(ev2, AF_TRUTH_FORK, i + 1, t0, asid);
	}
	free(perm);
	struct af_eval_result r = fin(ev), r2 = fin(ev2);
	CHECK(memcmp(&r, &r2, sizeof(r)) == 0);
	af_eval_free(ev2);
	CHECK_EQ(r.os_process_create, N);
	CHECK_EQ(r.os_process_exit, N);
	CHECK_EQ(r.fn_create + r.fn_exit + r.fp_create + r.fp_exit, 0);
	CHECK_EQ(r.lag_create.n, N);
	CHECK_US(r.lag_create.min_us, 1);
	CHECK_US(r.lag_create.max_us, 5);
	CHECK_US(r.lag_create.mean_us, 3);
	CHECK_US(r.lag_exit.median_us, 3);
	af_eval_free(ev);
}

TEST(window_edges)
{
	struct af_eval *ev = mk();
	T(ev, AF_TRUTH_BEGIN, 0, 100000, AF_ASID_NONE);
	T(ev, AF_TRUTH_END, 0, 200000, AF_ASID_NONE);
	/* A later BEGIN/END do not move the window. */
	T(ev, AF_TRUTH_BEGIN, 0, 150000, AF_ASID_NONE);
	T(ev, AF_TRUTH_END, 0, 300000, AF_ASID_NONE);

	/* OS create just before the window, inferred inside: neither the OS
	 * event nor the (matched) inferred one is an error. */
	T(ev, AF_TRUTH_FORK, 1, 99999, 0x1000);
	I(ev, AF_EV_CREATE, 100500, 0x1000);
	/* Exactly at the window's edges: inside. */
	T(ev, AF_TRUTH_FORK, 2, 100000, 0x2000);
	I(ev, AF_EV_CREATE, 100000, 0x2000);
	T(ev, AF_TRUTH_FORK, 3, 200000, 0x3000);
	/* ... inferred after the window, within the grace period: matches,
	 * but is not counted as an inferred event of the window. */
	I(ev, AF_EV_CREATE, 200000 + AF_EVAL_GRACE_NS, 0x3000);
	/* Inferred beyond the grace period: ignored, so this is an FN. */
	T(ev, AF_TRUTH_FORK, 4, 150000, 0x4000);
	I(ev, AF_EV_CREATE, 200001 + AF_EVAL_GRACE_NS, 0x4000);
	/* Unmatched inferred after the window: not an FP. */
	I(ev, AF_EV_CREATE, 250000, 0x5000);
	/* Unmatched inferred before the window: not an FP either. */
	I(ev, AF_EV_CREATE, 50000, 0x6000);
	/* Unmatched inferred inside: FP. */
	I(ev, AF_EV_CREATE, 199999, 0x6000);
	/* Switches: two inside, two outside. */
	struct af_truth sw = { .kind = AF_TRUTH_SWITCH, .time_ns = 99999 };
	CHECK_EQ(af_eval_add_truth(ev, &sw), 0);
	sw.time_ns = 100000;
	CHECK_EQ(af_eval_add_truth(ev, &sw), 0);
	sw.time_ns = 200000;
	CHECK_EQ(af_eval_add_truth(ev, &sw), 0);
	sw.time_ns = 200001;
	CHECK_EQ(af_eval_add_truth(ev, &sw), 0);
	I(ev, AF_EV_SWITCH, 150000, 1);
	I(ev, AF_EV_SWITCH, 250000, 1);

	struct af_eval_result r = fin(ev);
	CHECK_EQ(r.window_begin_ns, 100000);
	CHECK_EQ(r.window_end_ns, 200000);
	CHECK_EQ(r.os_process_create, 3);
	CHECK_EQ(r.inferred_create, 3); /* 100500, 100000, 199999 */
	CHECK_EQ(r.fn_create, 1);
	CHECK_EQ(r.fp_create, 1);
	CHECK_EQ(r.lag_create.n, 2);
	CHECK_US(r.lag_create.min_us, 0);
	CHECK_US(r.lag_create.max_us, AF_EVAL_GRACE_NS / 1000.0);
	CHECK_EQ(r.os_switch, 2);
	CHECK_EQ(r.inferred_switch, 1);
	af_eval_free(ev);

	/* END before BEGIN: an empty window. */
	ev = mk();
	T(ev, AF_TRUTH_BEGIN, 0, 5000, AF_ASID_NONE);
	T(ev, AF_TRUTH_END, 0, 4000, AF_ASID_NONE);
	T(ev, AF_TRUTH_FORK, 1, 4500, 0x1000);
	I(ev, AF_EV_CREATE, 4600, 0x9000);
	r = fin(ev);
	CHECK_EQ(r.os_process_create + r.inferred_create + r.fn_create +
			 r.fp_create, 0);
	af_eval_free(ev);
}

TEST(vfork)
{
	struct af_eval *ev = mk();
	const uint64_t P = 0x1000, C = 0x2000;
	/* Parent (outside the trace's creates) vforks pid 5, which execs
	 * into its own AS C and exits. */
	T(ev, AF_TRUTH_VFORK, 5, 1000, P);
	T(ev, AF_TRUTH_EXEC, 5, 1500, C);
	T(ev, AF_TRUTH_EXIT, 5, 3000, C);
	I(ev, AF_EV_CREATE, 1600, C);
	I(ev, AF_EV_EXIT, 3100, C);
	/* pid 6 is vforked and exits without exec: never visible through
	 * the MMU, so a create and an exit FN; it must not take the parent's
	 * exit. */
	T(ev, AF_TRUTH_VFORK, 6, 4000, P);
	T(ev, AF_TRUTH_EXIT, 6, 4500, P);
	T(ev, AF_TRUTH_EXIT, 1, 5000, P);
	I(ev, AF_EV_EXIT, 5100, P);
	/* pid 6 is reused later by a forked process that execs: the old
	 * vfork must not borrow this exec's AS. */
	T(ev, AF_TRUTH_FORK, 6, 6000, 0x3000);
	T(ev, AF_TRUTH_EXEC, 6, 6100, 0x3000);
	I(ev, AF_EV_CREATE, 6050, 0x3000);
	struct af_eval_result r = fin(ev);
	CHECK_EQ(r.os_process_create, 3);
	CHECK_EQ(r.os_process_exit, 3);
	CHECK_EQ(r.fn_create, 1);
	CHECK_EQ(r.fn_exit, 1);
	CHECK_EQ(r.fp_create, 0);
	CHECK_EQ(r.fp_exit, 0);
	CHECK_EQ(r.lag_create.n, 2);
	CHECK_US(r.lag_create.max_us, 0.6); /* vfork at 1000, seen at 1600 */
	CHECK_US(r.lag_create.min_us, 0.05);
	CHECK_EQ(r.lag_exit.n, 2);
	CHECK_US(r.lag_exit.min_us, 0.1);
	CHECK_US(r.lag_exit.max_us, 0.1);
	af_eval_free(ev);
}

TEST(linux26_exec_pseudo_processes)
{
	/* Linux 2.6 fork+exec: the child's forked AS R1 is dropped at exec
	 * for a new AS R2. Antfarm sees two address spaces: one create and
	 * one exit are false positives against processes, none against
	 * address spaces (paper, Table 2). The freed R1 is then reused by
	 * the next fork. */
	struct af_eval *ev = mk();
	const uint64_t R1 = 0x1000, R2 = 0x2000;
	T(ev, AF_TRUTH_BEGIN, 0, 10, AF_ASID_NONE);
	T(ev, AF_TRUTH_FORK, 1, 100, R1);
	T(ev, AF_TRUTH_AS_CREATE, 1, 100, R1);
	I(ev, AF_EV_CREATE, 150, R1);
	T(ev, AF_TRUTH_AS_CREATE, 1, 200, R2);
	T(ev, AF_TRUTH_EXEC, 1, 200, R2);
	T(ev, AF_TRUTH_AS_DESTROY, 1, 210, R1);
	I(ev, AF_EV_EXIT, 220, R1);
	I(ev, AF_EV_CREATE, 230, R2);
	T(ev, AF_TRUTH_FORK, 2, 300, R1);
	T(ev, AF_TRUTH_AS_CREATE, 2, 300, R1);
	I(ev, AF_EV_CREATE, 320, R1);
	T(ev, AF_TRUTH_EXIT, 1, 1000, R2);
	T(ev, AF_TRUTH_AS_DESTROY, 1, 1001, R2);
	I(ev, AF_EV_EXIT, 1010, R2);
	T(ev, AF_TRUTH_EXIT, 2, 2000, R1);
	T(ev, AF_TRUTH_AS_DESTROY, 2, 2001, R1);
	I(ev, AF_EV_EXIT, 2010, R1);
	T(ev, AF_TRUTH_END, 0, 5000, AF_ASID_NONE);
	struct af_eval_result r = fin(ev);
	CHECK_EQ(r.os_process_create, 2);
	CHECK_EQ(r.os_as_create, 3);
	CHECK_EQ(r.inferred_create, 3);
	CHECK_EQ(r.os_process_exit, 2);
	CHECK_EQ(r.os_as_exit, 3);
	CHECK_EQ(r.inferred_exit, 3);
	CHECK_EQ(r.fn_create + r.fn_exit, 0);
	CHECK_EQ(r.fp_create, 1);
	CHECK_EQ(r.fp_exit, 1);
	CHECK_EQ(r.as_fn_create + r.as_fn_exit + r.as_fp_create +
			 r.as_fp_exit, 0);
	CHECK_US(r.lag_create.min_us, 0.02);
	CHECK_US(r.lag_create.max_us, 0.05);
	CHECK_US(r.lag_exit.min_us, 0.01);
	CHECK_US(r.lag_exit.max_us, 0.01);
	af_eval_free(ev);
}

TEST(negative_lag)
{
	/* The guest reported the fork after the child already ran (late
	 * tracepoint): matched with a negative lag, but never across the
	 * previous exit of the same ASID. */
	struct af_eval *ev = mk();
	T(ev, AF_TRUTH_FORK, 1, 1000, 0x1000);
	T(ev, AF_TRUTH_EXIT, 1, 2000, 0x1000);
	I(ev, AF_EV_CREATE, 1050, 0x1000);
	I(ev, AF_EV_EXIT, 2050, 0x1000);
	T(ev, AF_TRUTH_FORK, 2, 3000, 0x1000);
	I(ev, AF_EV_CREATE, 2990, 0x1000);
	/* Inferred 10 ns before the OS create, after the previous exit of
	 * that ASID: plausible. With no earlier exit at all (0x2000), any
	 * earlier time is. */
	T(ev, AF_TRUTH_FORK, 3, 5000, 0x2000);
	I(ev, AF_EV_CREATE, 4000, 0x2000);
	/* Not plausible: before the previous exit of that ASID. */
	T(ev, AF_TRUTH_EXIT, 4, 6000, 0x3000);
	I(ev, AF_EV_CREATE, 5900, 0x3000);
	T(ev, AF_TRUTH_FORK, 5, 7000, 0x3000);
	struct af_eval_result r = fin(ev);
	CHECK_EQ(r.os_process_create, 4);
	CHECK_EQ(r.fn_create, 1);
	CHECK_EQ(r.fp_create, 1);
	CHECK_EQ(r.lag_create.n, 3);
	CHECK_US(r.lag_create.min_us, -1.0);
	CHECK_US(r.lag_create.max_us, 0.05);
	CHECK_US(r.lag_create.median_us, -0.01);
	/* pid 4's exit has no create; nothing inferred for it. */
	CHECK_EQ(r.fn_exit, 1);
	af_eval_free(ev);
}

TEST(lag_statistics)
{
	struct af_eval *ev = mk();
	/* 20 processes with create lags 1..20 us, fed in reverse. */
	for (unsigned i = 20; i >= 1; i--) {
		uint64_t asid = 0x1000 * i;
		T(ev, AF_TRUTH_FORK, i, 1000000 * i, asid);
		I(ev, AF_EV_CREATE, 1000000 * i + 1000 * i, asid);
	}
	/* Exit lags: 7 us for all but one of 2 ms. */
	for (unsigned i = 1; i <= 20; i++) {
		uint64_t asid = 0x1000 * i;
		uint64_t t = 100000000 + 1000000 * i;
		T(ev, AF_TRUTH_EXIT, i, t, asid);
		I(ev, AF_EV_EXIT, t + (i == 3 ? 2000000 : 7000), asid);
	}
	struct af_eval_result r = fin(ev);
	CHECK_EQ(r.lag_create.n, 20);
	CHECK_US(r.lag_create.mean_us, 10.5);
	CHECK_US(r.lag_create.median_us, 10.5);
	CHECK_US(r.lag_create.p95_us, 19); /* ceil(0.95 * 20) = 19th */
	CHECK_US(r.lag_create.max_us, 20);
	CHECK_US(r.lag_create.min_us, 1);
	CHECK_EQ(r.lag_exit.n, 20);
	CHECK_US(r.lag_exit.mean_us, (19 * 7.0 + 2000) / 20);
	CHECK_US(r.lag_exit.median_us, 7);
	CHECK_US(r.lag_exit.p95_us, 7);
	CHECK_US(r.lag_exit.max_us, 2000);
	CHECK_US(r.lag_exit.min_us, 7);
	af_eval_free(ev);

	/* Odd count, p95 of 21 samples is the 20th. */
	ev = mk();
	for (unsigned i = 1; i <= 21; i++) {
		T(ev, AF_TRUTH_FORK, i, 10000 * i, i);
		I(ev, AF_EV_CREATE, 10000 * i + 100 * i, i);
	}
	r = fin(ev);
	CHECK_US(r.lag_create.median_us, 1.1);
	CHECK_US(r.lag_create.p95_us, 2.0);
	af_eval_free(ev);
}

TEST(finish_is_repeatable)
{
	struct af_eval *ev = mk();
	T(ev, AF_TRUTH_FORK, 1, 1000, 0x1000);
	I(ev, AF_EV_CREATE, 1200, 0x1000);
	T(ev, AF_TRUTH_VFORK, 2, 1000, 0x1000);
	struct af_eval_result a = fin(ev), b = fin(ev);
	CHECK(memcmp(&a, &b, sizeof(a)) == 0);
	CHECK_EQ(a.fn_create, 1);
	/* The vfork child execs after all: fed later, now it matches. */
	T(ev, AF_TRUTH_EXEC, 2, 1100, 0x2000);
	I(ev, AF_EV_CREATE, 1300, 0x2000);
	b = fin(ev);
	CHECK_EQ(b.fn_create, 0);
	CHECK_EQ(b.lag_create.n, 2);
	CHECK_US(b.lag_create.max_us, 0.3);
	af_eval_free(ev);
}

/* ---- end to end through a trace (needs lib/trace and lib/engine) ---- */

static void wobs(struct af_trace_writer *w, unsigned kind, uint64_t t,
		 uint64_t value)
{
	struct af_obs o = { .kind = (uint8_t)kind, .time_ns = t,
			    .value = value };
	CHECK_EQ(af_trace_write_obs(w, &o), 0);
}

static void wtruth(struct af_trace_writer *w, unsigned kind, uint32_t pid,
		   uint64_t t, uint64_t asid)
{
	struct af_truth tr = { .kind = (uint8_t)kind, .pid = pid,
			       .time_ns = t, .asid = asid };
	CHECK_EQ(af_trace_write_truth(w, &tr), 0);
}

TEST(eval_trace_context_ids)
{
	/* A context-id guest: process 1 gets context 5, runs, exits (the
	 * kernel demaps 5). */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	CHECK(f != NULL);
	struct af_trace_info info = { .mmu = AF_MMU_CONTEXT_ID, .n_vcpus = 1,
				      .ctx_bits = 13,
				      .phys_bytes = 64u << 20 };
	strcpy(info.guest, "test_eval");
	struct af_trace_writer *w = NULL;
	CHECK_EQ(af_trace_writer_fdopen(f, &info, &w), 0);
	wtruth(w, AF_TRUTH_BEGIN, 0, 10, AF_ASID_NONE);
	wobs(w, AF_OBS_CTX_LOAD, 20, 1);
	wtruth(w, AF_TRUTH_FORK, 1, 100, 5);
	wtruth(w, AF_TRUTH_SWITCH, 0, 140, 5);
	wobs(w, AF_OBS_CTX_LOAD, 150, 5);
	wtruth(w, AF_TRUTH_EXIT, 1, 300, 5);
	wobs(w, AF_OBS_CTX_LOAD, 310, 1);
	wobs(w, AF_OBS_CTX_DEMAP, 320, 5);
	wtruth(w, AF_TRUTH_END, 0, 1000, AF_ASID_NONE);
	CHECK_EQ(af_trace_writer_close(w), 0);
	CHECK_EQ(fclose(f), 0);

	struct af_trace_reader *r = NULL;
	CHECK_EQ(af_trace_reader_open_mem(buf, len, &r), 0);
	struct af_eval_result res;
	CHECK_EQ(af_eval_trace(r, &res), 0);
	af_trace_reader_free(r);
	free(buf);
	CHECK_EQ(res.window_begin_ns, 10);
	CHECK_EQ(res.window_end_ns, 1000);
	CHECK_EQ(res.os_process_create, 1);
	CHECK_EQ(res.os_process_exit, 1);
	CHECK_EQ(res.os_switch, 1);
	CHECK_EQ(res.fn_create, 0);
	CHECK_EQ(res.fn_exit, 0);
	CHECK_EQ(res.lag_create.n, 1);
	CHECK_US(res.lag_create.mean_us, 0.05);
	CHECK_EQ(res.lag_exit.n, 1);
	CHECK_US(res.lag_exit.mean_us, 0.02);
	/* Context 1 (the first one loaded) is a process the OS did not
	 * report in the window: an inferred create, and an FP. */
	CHECK_EQ(res.inferred_create, 2);
	CHECK_EQ(res.fp_create, 1);
	CHECK(res.inferred_switch >= 2);
}

TEST(eval_trace_truncated)
{
	/* A trace cut inside a record: af_eval_trace fails cleanly. */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	CHECK(f != NULL);
	struct af_trace_info info = { .mmu = AF_MMU_CONTEXT_ID, .n_vcpus = 1,
				      .ctx_bits = 13,
				      .phys_bytes = 64u << 20 };
	struct af_trace_writer *w = NULL;
	CHECK_EQ(af_trace_writer_fdopen(f, &info, &w), 0);
	wobs(w, AF_OBS_CTX_LOAD, 20, 1);
	wtruth(w, AF_TRUTH_FORK, 1, 100, 5);
	CHECK_EQ(af_trace_writer_close(w), 0);
	CHECK_EQ(fclose(f), 0);
	CHECK(len > 3);

	struct af_trace_reader *r = NULL;
	int rc = af_trace_reader_open_mem(buf, len - 3, &r);
	if (rc == 0) {
		struct af_eval_result res;
		rc = af_eval_trace(r, &res);
	}
	CHECK(rc < 0);
	af_trace_reader_free(r);
	free(buf);
}

TEST(exit_not_taken_beyond_next_inferred_create)
{
	/* the guest reports an address space's destroy just after antfarm
	 * inferred its exit; the root is reused after the window closed
	 * (no OS create for it) and that later space exits in the grace
	 * period: the in-window exit must match the destroy */
	struct af_eval *ev = mk();
	T(ev, AF_TRUTH_BEGIN, 0, 10, AF_ASID_NONE);
	T(ev, AF_TRUTH_AS_CREATE, 5, 100, 0xa000);
	I(ev, AF_EV_CREATE, 110, 0xa000);
	I(ev, AF_EV_EXIT, 990, 0xa000);
	T(ev, AF_TRUTH_AS_DESTROY, 5, 1000, 0xa000);
	T(ev, AF_TRUTH_END, 0, 1200, AF_ASID_NONE);
	I(ev, AF_EV_CREATE, 1500, 0xa000);
	I(ev, AF_EV_EXIT, 2000, 0xa000);
	struct af_eval_result r = fin(ev);
	CHECK_EQ(r.os_as_exit, 1);
	CHECK_EQ(r.as_fn_exit, 0);
	CHECK_EQ(r.as_fp_exit, 0);
	af_eval_free(ev);
}

/* af_eval_pairs collector: copies every pair it is given. */
struct pair_list {
	struct af_eval_pair p[64]; /* the pairs, in call order */
	unsigned n;                /* how many */
};

static void collect_pair(void *ctx, const struct af_eval_pair *p)
{
	struct pair_list *l = ctx;
	if (l->n < 64)
		l->p[l->n] = *p;
	l->n++;
}

TEST(pairs_agree_with_finish)
{
	/* The negative_lag case plus a window: pairs list every in-window OS
	 * event once, matched ones with the inferred time, in time order. */
	struct af_eval *ev = mk();
	T(ev, AF_TRUTH_BEGIN, 0, 500, 0);
	struct af_truth f1 = { .kind = AF_TRUTH_FORK, .pid = 1, .ppid = 9,
			       .time_ns = 1000, .asid = 0x1000 };
	CHECK_EQ(af_eval_add_truth(ev, &f1), 0);
	T(ev, AF_TRUTH_EXIT, 1, 2000, 0x1000);
	I(ev, AF_EV_CREATE, 1050, 0x1000);
	I(ev, AF_EV_EXIT, 2050, 0x1000);
	T(ev, AF_TRUTH_FORK, 2, 3000, 0x1000);
	I(ev, AF_EV_CREATE, 2990, 0x1000);
	T(ev, AF_TRUTH_EXIT, 4, 6000, 0x3000);
	I(ev, AF_EV_CREATE, 5900, 0x3000);
	T(ev, AF_TRUTH_FORK, 5, 7000, 0x3000);
	T(ev, AF_TRUTH_END, 0, 8000, 0);
	T(ev, AF_TRUTH_FORK, 6, 9000, 0x4000); /* outside the window */
	struct af_eval_result r = fin(ev);
	struct pair_list l = { .n = 0 };
	CHECK_EQ(af_eval_pairs(ev, collect_pair, &l), 0);
	CHECK_EQ(l.n, r.os_process_create + r.os_process_exit +
			      r.os_as_create + r.os_as_exit);
	CHECK_EQ(l.n, 5);
	uint64_t created = 0, fn = 0;
	double sum_us = 0;
	for (unsigned i = 0; i < l.n; i++) {
		const struct af_eval_pair *p = &l.p[i];
		if (i)
			CHECK(p->os_time_ns >= l.p[i - 1].os_time_ns);
		if (p->category != AF_EVAL_PROCESS_CREATE)
			continue;
		created++;
		if (!p->matched) {
			fn++;
			CHECK_EQ(p->inferred_time_ns, 0);
			continue;
		}
		sum_us += ((double)p->inferred_time_ns -
			   (double)p->os_time_ns) / 1000.0;
	}
	CHECK_EQ(created, r.os_process_create);
	CHECK_EQ(fn, r.fn_create);
	CHECK_US(sum_us / (double)r.lag_create.n, r.lag_create.mean_us);
	/* The first pair is pid 1's fork with its parent and match. */
	CHECK_EQ(l.p[0].pid, 1);
	CHECK_EQ(l.p[0].ppid, 9);
	CHECK_EQ(l.p[0].category, AF_EVAL_PROCESS_CREATE);
	CHECK_EQ(l.p[0].matched, 1);
	CHECK_EQ(l.p[0].inferred_time_ns, 1050);
	CHECK_EQ(l.p[0].asid, 0x1000);
	CHECK_EQ(af_eval_pairs(NULL, collect_pair, &l), -EINVAL);
	CHECK_EQ(af_eval_pairs(ev, NULL, &l), -EINVAL);
	/* Finishing again still gives the same result. */
	struct af_eval_result r2 = fin(ev);
	CHECK(!memcmp(&r, &r2, sizeof(r)));
	af_eval_free(ev);
}

TEST(vfork_window_starts_at_exec)
{
	/* make vforks pid 1 and, before pid 1's exec'd address space is
	 * first seen, pid 2; pid 2's exec later gets the same root after
	 * pid 1 has exited. Pid 2's vfork must not close pid 1's window:
	 * a vfork child's address space begins at its exec (a bash compile
	 * on 2 vCPUs did this). */
	struct af_eval *ev = mk();
	T(ev, AF_TRUTH_VFORK, 1, 1000, 0x9000);  /* parent's root */
	T(ev, AF_TRUTH_EXEC, 1, 1500, 0x5000);
	T(ev, AF_TRUTH_VFORK, 2, 1600, 0x9000);
	I(ev, AF_EV_CREATE, 1700, 0x5000);       /* pid 1 first runs */
	T(ev, AF_TRUTH_EXIT, 1, 3000, 0x5000);
	I(ev, AF_EV_EXIT, 3100, 0x5000);
	T(ev, AF_TRUTH_EXEC, 2, 4000, 0x5000);   /* root reused */
	I(ev, AF_EV_CREATE, 4100, 0x5000);
	T(ev, AF_TRUTH_EXIT, 2, 5000, 0x5000);
	I(ev, AF_EV_EXIT, 5100, 0x5000);
	struct af_eval_result r = fin(ev);
	CHECK_EQ(r.os_process_create, 2);
	CHECK_EQ(r.fn_create, 0);
	CHECK_EQ(r.fp_create, 0);
	CHECK_EQ(r.fn_exit, 0);
	CHECK_EQ(r.fp_exit, 0);
	CHECK_EQ(r.lag_create.n, 2);
	CHECK_US(r.lag_create.max_us, 2.5); /* pid 2: 4100 - 1600 */
	CHECK_US(r.lag_create.min_us, 0.7); /* pid 1: 1700 - 1000 */
	af_eval_free(ev);

	/* But a create inferred after the next holder's exec is not pid
	 * 1's: its window still ends where pid 2's address space begins. */
	ev = mk();
	T(ev, AF_TRUTH_VFORK, 1, 1000, 0x9000);
	T(ev, AF_TRUTH_EXEC, 1, 1500, 0x5000);
	T(ev, AF_TRUTH_EXIT, 1, 1800, 0x5000);
	T(ev, AF_TRUTH_VFORK, 2, 1900, 0x9000);
	T(ev, AF_TRUTH_EXEC, 2, 2000, 0x5000);
	I(ev, AF_EV_CREATE, 2100, 0x5000);
	r = fin(ev);
	CHECK_EQ(r.os_process_create, 2);
	CHECK_EQ(r.fn_create, 1);
	af_eval_free(ev);
}
