/*
 * antfarm/eval.h - scoring inferred events against the guest's ground truth,
 * the way the Antfarm paper's section 6.1 does.
 *
 * Completeness (6.1.1): every OS-reported process create (exit) is matched
 * one-to-one to an inferred create (exit) with the same ASID that lies inside
 * the event's plausible window: for a create, after the previous OS-reported
 * process exit with that ASID and before the next OS-reported process create
 * with that ASID; for an exit, after the OS-reported create it ends and before
 * the next OS-reported create with that ASID. Unmatched OS events are false
 * negatives; unmatched inferred events are false positives. The same is done
 * for OS address-space creates/destroys (to tell process/address-space
 * mismatch from inference error).
 *
 * Details (lib/eval/eval.c has them all): an exit's window also ends at the
 * next OS exec with that ASID (Linux reuses a freed root for another exec at
 * once), and an OS exit is never paired with an inferred exit that lies past
 * the next inferred create of that ASID. A vfork child shares its parent's
 * address space until it execs, so its create is matched against the ASID of
 * its first exec and bounds other events' windows only from that exec; one
 * that never execs can never be seen through the MMU and
 * counts as a false negative.
 *
 * Lag (6.1.2): inferred time minus OS time of each matched pair.
 *
 * Window: only events inside the measurement window count; the window opens
 * at the first AF_TRUTH_BEGIN (or the start) and closes at the first
 * AF_TRUTH_END (or the end). Inferred events after the window closes are still
 * used to match OS events inside it, up to AF_EVAL_GRACE_NS later.
 *
 * Ownership: an af_eval copies what it is given; results are plain values.
 */
#ifndef ANTFARM_EVAL_H
#define ANTFARM_EVAL_H

#include <antfarm/engine.h>
#include <antfarm/trace.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How long after the window closes inferred events may still match. */
#define AF_EVAL_GRACE_NS 2000000000ull

struct af_lag {
	uint64_t n;       /* matched pairs */
	double mean_us;   /* mean lag, microseconds */
	double median_us; /* median */
	double p95_us;    /* 95th percentile (nearest rank) */
	double max_us;    /* largest */
	double min_us;    /* smallest (negative: inferred before OS) */
};

struct af_eval_result {
	/* OS-reported counts inside the window */
	uint64_t os_process_create, os_process_exit;
	uint64_t os_as_create, os_as_exit, os_switch;
	/* inferred counts inside the window */
	uint64_t inferred_create, inferred_exit, inferred_switch;
	/* against OS process events */
	uint64_t fn_create, fn_exit, fp_create, fp_exit;
	/* against OS address-space events */
	uint64_t as_fn_create, as_fn_exit, as_fp_create, as_fp_exit;
	struct af_lag lag_create, lag_exit; /* process events */
	uint64_t window_begin_ns, window_end_ns; /* UINT64_MAX end: open */
};

struct af_eval;

AF_API int af_eval_new(struct af_eval **out);
AF_API void af_eval_free(struct af_eval *ev);
/* Feed events in any order; memory grows with the number of events. Returns
 * 0 or -ENOMEM. */
AF_API int af_eval_add_truth(struct af_eval *ev, const struct af_truth *t);
AF_API int af_eval_add_event(struct af_eval *ev, const struct af_event *e);
/* Computes the result from everything fed so far. Returns 0 or -ENOMEM. */
AF_API int af_eval_finish(struct af_eval *ev, struct af_eval_result *out);

/* One OS-reported event inside the window and what it was matched to. */
enum af_eval_category {
	AF_EVAL_PROCESS_CREATE = 0, /* a fork/vfork/clone of a process */
	AF_EVAL_PROCESS_EXIT = 1,   /* a process exit */
	AF_EVAL_AS_CREATE = 2,      /* an address-space create */
	AF_EVAL_AS_EXIT = 3,        /* an address-space destroy */
};
struct af_eval_pair {
	uint8_t category;          /* enum af_eval_category */
	uint8_t matched;           /* 1: paired; 0: a false negative */
	uint32_t pid;              /* the guest's process id */
	uint32_t ppid;             /* its parent's (0 if not reported) */
	uint64_t asid;             /* ASID it was matched by (vfork: resolved) */
	uint64_t os_time_ns;       /* when the guest reported it */
	uint64_t inferred_time_ns; /* the inferred event's time (0 unmatched) */
};
/* Does the matching of af_eval_finish() and calls fn once for every
 * OS-reported event inside the window (all four categories), in order of
 * os_time_ns (ties: category order). Lag = inferred_time_ns - os_time_ns
 * of a matched pair; af_eval_finish()'s lag figures are exactly these for
 * the two process categories. The pair is valid during the call only.
 * Returns 0, -EINVAL or -ENOMEM. */
AF_API int af_eval_pairs(struct af_eval *ev,
			 void (*fn)(void *ctx, const struct af_eval_pair *p),
			 void *ctx);

/* Replays a whole trace and scores it. Errors as af_replay(). */
AF_API int af_eval_trace(struct af_trace_reader *r,
			 struct af_eval_result *out);
/* The same, replaying with AF_ENGINE_* flags (see af_replay_flags()). */
AF_API int af_eval_trace_flags(struct af_trace_reader *r,
			       unsigned engine_flags,
			       struct af_eval_result *out);

#ifdef __cplusplus
}
#endif
#endif
