/*
 * lib/eval/eval.c - scoring inferred events against the guest's ground truth
 * (Antfarm paper section 6.1; the contract is in include/antfarm/eval.h).
 *
 * Everything fed is kept in flat arrays (24 bytes per create/exit/exec/AS
 * event, 8 bytes per switch); af_eval_finish() does the matching in
 * O(n log n) time and O(n) extra memory, and may be called again after more
 * events are fed.
 *
 * Matching, per category (process create, process exit, address-space
 * create, address-space destroy), per ASID, in time order:
 *
 *   - Each OS event gets a plausible window (lo, hi):
 *       process create  lo = latest OS process exit with that ASID strictly
 *                       before it; hi = next OS process create with that
 *                       ASID strictly after it
 *       process exit    lo = latest OS process create or exec with that ASID
 *                       at or before it (the start of the use it ends);
 *                       hi = next OS process create or exec with that ASID
 *                       (an exec can take over a freed address space: Linux
 *                       2.6 reuses page directories at once)
 *       AS create       lo = latest AS destroy before; hi = next AS create
 *       AS destroy      lo = latest AS create at or before; hi = next create
 *     ("none" means unbounded on that side.)
 *   - Pass 1 (forward): OS events in time order each take the earliest
 *     unmatched inferred event of the same kind and ASID at or after the OS
 *     time and before hi. This is the ordinary case (lag >= 0). An exit
 *     is not taken from beyond the next inferred create with that ASID
 *     (at the same time is fine): such an exit ends that later inferred
 *     space, whose OS create may lie outside what was reported.
 *   - Pass 2 (backward): OS events still unmatched, in reverse time order,
 *     each take the latest unmatched inferred event strictly after lo and
 *     strictly before the OS time (negative lag: inferred before the OS
 *     reported it, e.g. clocks or tracepoints that fire late).
 *   Every pairing is one-to-one. All OS events take part, even those outside
 *   the measurement window, so an inferred event caused by a process created
 *   just before the window opens is not called a false positive; only OS
 *   events inside the window are counted (as OS events, false negatives and
 *   lag samples), and only inferred events inside the window are counted (as
 *   inferred events and false positives). Inferred events later than the
 *   window's end plus AF_EVAL_GRACE_NS are ignored altogether.
 *
 * The window is [first BEGIN, first END], both ends inclusive, "first"
 * meaning earliest in time (events may be fed in any order). Without BEGIN it
 * starts at 0; without END it never closes (window_end_ns = UINT64_MAX). An
 * END earlier than the BEGIN gives an empty window.
 *
 * Process identity:
 *   - OS process create = AF_TRUTH_FORK or AF_TRUTH_VFORK; AF_TRUTH_EXEC is
 *     not a create (but it starts a new use of its ASID, see exit windows).
 *   - A vfork child shares its parent's address space until it execs, so a
 *     VFORK is matched against the ASID of the same pid's next EXEC (at or
 *     after the VFORK, before that pid's next FORK/VFORK/EXIT). A vfork child
 *     that never execs has no address space of its own: its create, and its
 *     exit, can never be observed through the MMU, so both are deliberately
 *     left unmatched and counted as false negatives (they also bound nothing).
 *     An EXIT is treated so when the same pid's previous FORK/VFORK/EXEC/EXIT
 *     record is a VFORK.
 *   - Same-time ties are broken by feeding order.
 */
#include <antfarm/eval.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One stored create/exit/exec/AS event (ground truth or inferred). */
struct rec {
	uint64_t time; /* ns */
	uint64_t asid; /* as reported; for VFORK resolved at finish */
	uint32_t pid;  /* truth: process id; inferred: unused */
	uint32_t ppid; /* truth: parent's process id; inferred: unused */
	uint8_t kind;  /* enum af_truth_kind, or enum af_event_kind */
	uint8_t skip;  /* set at finish: vfork child without an AS of its own */
};

/* A growable array of recs. */
struct recvec {
	struct rec *v; /* elements */
	size_t n;      /* used */
	size_t cap;    /* allocated */
};

/* A growable array of times (switches). */
struct timevec {
	uint64_t *v; /* elements */
	size_t n;    /* used */
	size_t cap;  /* allocated */
};

struct af_eval {
	struct recvec truth;    /* FORK, VFORK, EXEC, EXIT, AS_CREATE/DESTROY */
	struct recvec inf;      /* inferred CREATE and EXIT */
	struct timevec os_sw;   /* times of OS switches */
	struct timevec inf_sw;  /* times of inferred switches */
	uint64_t begin;         /* earliest BEGIN */
	uint64_t end;           /* earliest END */
	int has_begin;          /* a BEGIN was fed */
	int has_end;            /* an END was fed */
};

/* Flags of a matching entry. */
#define F_TARGET  0x01u /* an OS event to be matched */
#define F_LO      0x02u /* bounds later targets from below */
#define F_HI      0x04u /* bounds earlier targets from above */
#define F_INF     0x08u /* an inferred event, a candidate */
#define F_NOMATCH 0x10u /* target that may never match */
#define F_NOLO    0x20u /* target without a lower bound */
#define F_MATCHED 0x40u /* paired */
#define F_IHI     0x80u /* an inferred create: bounds the forward search of
                           earlier exit targets (an inferred exit after it
                           ends the space it began, not an earlier one) */

/* One entry of a matching run: a target, a bound or a candidate. */
struct ent {
	uint64_t asid;  /* sort key 1 */
	uint64_t time;  /* sort key 2 */
	uint64_t lo;    /* target: exclusive lower bound (unless F_NOLO); once
	                   F_MATCHED, the time of the inferred event matched */
	uint64_t hi;    /* target: exclusive upper bound (UINT64_MAX: none) */
	uint64_t ihi;   /* target: forward pass takes no candidate later than
	                   the next inferred create (UINT64_MAX: none) */
	uint64_t bt;    /* target: its window's upper bound is the first bound
	                   after bt (> time: a vfork child, whose address
	                   space begins at its exec); others: unused */
	uint32_t seq;   /* sort key 3: feeding order (truth before inferred) */
	uint32_t flags; /* F_* */
};

/* Per-category outcome. */
struct outcome {
	uint64_t os;       /* targets inside the window */
	uint64_t fn;       /* ... of them unmatched */
	uint64_t fp;       /* candidates inside the window unmatched */
	int64_t *lags;     /* lag samples (ns) of matched in-window targets */
	size_t n_lags;     /* samples */
	struct af_eval_pair *pairs; /* NULL, or room for every target */
	size_t n_pairs;    /* pairs appended so far (not reset per category) */
};

static int vec_push(struct recvec *vec, const struct rec *r)
{
	if (vec->n == vec->cap) {
		size_t ncap = vec->cap ? vec->cap * 2 : 256;
		if (ncap < vec->cap || ncap > SIZE_MAX / sizeof(*vec->v))
			return -ENOMEM;
		struct rec *nv = realloc(vec->v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		vec->v = nv;
		vec->cap = ncap;
	}
	vec->v[vec->n++] = *r;
	return 0;
}

static int tvec_push(struct timevec *vec, uint64_t t)
{
	if (vec->n == vec->cap) {
		size_t ncap = vec->cap ? vec->cap * 2 : 256;
		if (ncap < vec->cap || ncap > SIZE_MAX / sizeof(*vec->v))
			return -ENOMEM;
		uint64_t *nv = realloc(vec->v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		vec->v = nv;
		vec->cap = ncap;
	}
	vec->v[vec->n++] = t;
	return 0;
}

AF_API int af_eval_new(struct af_eval **out)
{
	if (!out)
		return -EINVAL;
	struct af_eval *ev = calloc(1, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	*out = ev;
	return 0;
}

AF_API void af_eval_free(struct af_eval *ev)
{
	if (!ev)
		return;
	free(ev->truth.v);
	free(ev->inf.v);
	free(ev->os_sw.v);
	free(ev->inf_sw.v);
	free(ev);
}

AF_API int af_eval_add_truth(struct af_eval *ev, const struct af_truth *t)
{
	if (!ev || !t)
		return -EINVAL;
	switch (t->kind) {
	case AF_TRUTH_FORK:
	case AF_TRUTH_VFORK:
	case AF_TRUTH_EXEC:
	case AF_TRUTH_EXIT:
	case AF_TRUTH_AS_CREATE:
	case AF_TRUTH_AS_DESTROY: {
		struct rec r = { .time = t->time_ns, .asid = t->asid,
				 .pid = t->pid, .ppid = t->ppid,
				 .kind = t->kind };
		return vec_push(&ev->truth, &r);
	}
	case AF_TRUTH_SWITCH:
		return tvec_push(&ev->os_sw, t->time_ns);
	case AF_TRUTH_BEGIN:
		if (!ev->has_begin || t->time_ns < ev->begin)
			ev->begin = t->time_ns;
		ev->has_begin = 1;
		return 0;
	case AF_TRUTH_END:
		if (!ev->has_end || t->time_ns < ev->end)
			ev->end = t->time_ns;
		ev->has_end = 1;
		return 0;
	default:
		return 0; /* unknown kinds carry nothing we score */
	}
}

AF_API int af_eval_add_event(struct af_eval *ev, const struct af_event *e)
{
	if (!ev || !e)
		return -EINVAL;
	switch (e->kind) {
	case AF_EV_CREATE:
	case AF_EV_EXIT: {
		struct rec r = { .time = e->time_ns, .asid = e->asid,
				 .kind = e->kind };
		return vec_push(&ev->inf, &r);
	}
	case AF_EV_SWITCH:
		return tvec_push(&ev->inf_sw, e->time_ns);
	default:
		return 0;
	}
}

/* ---- vfork resolution ---- */

/* A truth record's place in pid order. */
struct pidkey {
	uint32_t pid;  /* key 1 */
	uint64_t time; /* key 2 */
	size_t idx;    /* key 3, and the record's index */
};

static int cmp_pidkey(const void *a, const void *b)
{
	const struct pidkey *x = a, *y = b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Fills in, for every truth record, the ASID used for matching (VFORK: the
 * next EXEC's), the time from which it bounds other events' windows (VFORK:
 * that EXEC's, when the child's address space begins; others: their own)
 * and whether it is a vfork child without an address space. asids and
 * btimes receive them (the stored records are not changed, so finish can
 * run again). */
static int resolve_vfork(const struct af_eval *ev, uint64_t *asids,
			 uint64_t *btimes, uint8_t *skip)
{
	const struct rec *t = ev->truth.v;
	size_t n = ev->truth.n, m = 0;

	for (size_t i = 0; i < n; i++) {
		asids[i] = t[i].asid;
		btimes[i] = t[i].time;
		skip[i] = 0;
		switch (t[i].kind) {
		case AF_TRUTH_FORK:
		case AF_TRUTH_VFORK:
		case AF_TRUTH_EXEC:
		case AF_TRUTH_EXIT:
			m++;
			break;
		}
	}
	if (!m)
		return 0;
	struct pidkey *k = malloc(m * sizeof(*k));
	if (!k)
		return -ENOMEM;
	m = 0;
	for (size_t i = 0; i < n; i++) {
		switch (t[i].kind) {
		case AF_TRUTH_FORK:
		case AF_TRUTH_VFORK:
		case AF_TRUTH_EXEC:
		case AF_TRUTH_EXIT:
			k[m++] = (struct pidkey){ t[i].pid, t[i].time, i };
			break;
		}
	}
	qsort(k, m, sizeof(*k), cmp_pidkey);
	for (size_t j = 0; j < m; j++) {
		const struct rec *r = &t[k[j].idx];
		int same_next = j + 1 < m && k[j + 1].pid == k[j].pid;
		int same_prev = j > 0 && k[j - 1].pid == k[j].pid;
		if (r->kind == AF_TRUTH_VFORK) {
			const struct rec *nx = same_next ? &t[k[j + 1].idx] : NULL;
			if (nx && nx->kind == AF_TRUTH_EXEC) {
				asids[k[j].idx] = nx->asid;
				btimes[k[j].idx] = nx->time;
			} else
				skip[k[j].idx] = 1;
		} else if (r->kind == AF_TRUTH_EXIT && same_prev &&
			   t[k[j - 1].idx].kind == AF_TRUTH_VFORK) {
			skip[k[j].idx] = 1;
		}
	}
	free(k);
	return 0;
}

/* ---- matching ---- */

/* Sorting entries by (asid, time, seq): an introsort with the comparison
 * inlined (qsort's indirect calls and scratch copies cost several times
 * more on millions of entries). Keys are unique, so order is total. */
static inline int ent_less(const struct ent *x, const struct ent *y)
{
	if (x->asid != y->asid)
		return x->asid < y->asid;
	if (x->time != y->time)
		return x->time < y->time;
	return x->seq < y->seq;
}

static inline void ent_swap(struct ent *a, struct ent *b)
{
	struct ent t = *a;
	*a = *b;
	*b = t;
}

static void ent_insertion(struct ent *e, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct ent v = e[i];
		size_t j = i;
		while (j > 0 && ent_less(&v, &e[j - 1])) {
			e[j] = e[j - 1];
			j--;
		}
		e[j] = v;
	}
}

static void ent_sift(struct ent *e, size_t i, size_t n)
{
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			return;
		if (c + 1 < n && ent_less(&e[c], &e[c + 1]))
			c++;
		if (!ent_less(&e[i], &e[c]))
			return;
		ent_swap(&e[i], &e[c]);
		i = c;
	}
}

static void ent_heapsort(struct ent *e, size_t n)
{
	for (size_t i = n / 2; i > 0; i--)
		ent_sift(e, i - 1, n);
	for (size_t k = n; k > 1; k--) {
		ent_swap(&e[0], &e[k - 1]);
		ent_sift(e, 0, k - 1);
	}
}

static void ent_sort_depth(struct ent *e, size_t n, unsigned depth)
{
	while (n > 16) {
		if (depth-- == 0) {
			ent_heapsort(e, n);
			return;
		}
		/* Median of three as the pivot value; with unique keys it is
		 * never the largest, so Hoare's partition leaves both sides
		 * non-empty. */
		const struct ent *a = &e[0], *b = &e[n / 2], *c = &e[n - 1];
		const struct ent *m;
		if (ent_less(a, b))
			m = ent_less(b, c) ? b : ent_less(a, c) ? c : a;
		else
			m = ent_less(a, c) ? a : ent_less(b, c) ? c : b;
		struct ent p = *m;
		size_t i = 0, j = n - 1;
		for (;;) {
			while (ent_less(&e[i], &p))
				i++;
			while (ent_less(&p, &e[j]))
				j--;
			if (i >= j)
				break;
			ent_swap(&e[i], &e[j]);
			i++;
			j--;
		}
		/* [0, j] and [j + 1, n): recurse into the smaller. */
		size_t left = j + 1;
		if (left < n - left) {
			ent_sort_depth(e, left, depth);
			e += left;
			n -= left;
		} else {
			ent_sort_depth(e + left, n - left, depth);
			n = left;
		}
	}
	ent_insertion(e, n);
}

static void ent_sort(struct ent *e, size_t n)
{
	unsigned depth = 0;
	for (size_t k = n; k > 1; k >>= 1)
		depth += 2;
	ent_sort_depth(e, n, depth);
}

static int64_t lag_ns(uint64_t inferred, uint64_t os)
{
	/* Differences beyond +-2^63 ns (292 years) saturate. */
	if (inferred >= os) {
		uint64_t d = inferred - os;
		return d > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)d;
	}
	uint64_t d = os - inferred;
	return d > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)d;
}

/* Computes lo/hi for the targets of one ASID group e[0..n) (sorted by
 * time). lo_incl: a bound at the same time as the target counts. */
static void bound_group(struct ent *e, size_t n, int lo_incl)
{
	int have_lo = 0;
	uint64_t cur_lo = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		int run_lo = 0;
		while (j < n && e[j].time == e[i].time) {
			run_lo |= !!(e[j].flags & F_LO);
			j++;
		}
		for (size_t k = i; k < j; k++) {
			if (!(e[k].flags & F_TARGET))
				continue;
			if (lo_incl && run_lo) {
				e[k].lo = e[i].time;
				e[k].flags &= ~F_NOLO;
			} else if (have_lo) {
				e[k].lo = cur_lo;
				e[k].flags &= ~F_NOLO;
			} else {
				e[k].flags |= F_NOLO;
			}
		}
		if (run_lo) {
			have_lo = 1;
			cur_lo = e[i].time;
		}
		i = j;
	}
	uint64_t cur_hi = UINT64_MAX, cur_ihi = UINT64_MAX;
	for (size_t j = n; j > 0;) {
		size_t i = j;
		int run_hi = 0, run_ihi = 0;
		while (i > 0 && e[i - 1].time == e[j - 1].time) {
			run_hi |= !!(e[i - 1].flags & F_HI);
			run_ihi |= !!(e[i - 1].flags & F_IHI);
			i--;
		}
		for (size_t k = i; k < j; k++) {
			/* non-targets keep the next bound too (for below) */
			e[k].hi = cur_hi;
			if (e[k].flags & F_TARGET)
				e[k].ihi = cur_ihi;
		}
		if (run_hi)
			cur_hi = e[i].time;
		if (run_ihi)
			cur_ihi = e[i].time;
		j = i;
	}
	/* A target bounded from a later time: the first bound after bt, found
	 * as the next-bound of the last entry at or before bt. */
	for (size_t k = 0; k < n; k++) {
		if (!(e[k].flags & F_TARGET) || e[k].bt <= e[k].time)
			continue;
		size_t lo = k, hi = n; /* last entry with time <= bt */
		while (hi - lo > 1) {
			size_t mid = lo + (hi - lo) / 2;
			if (e[mid].time <= e[k].bt)
				lo = mid;
			else
				hi = mid;
		}
		e[k].hi = e[lo].hi;
	}
}

/* Matches the targets and candidates of one ASID group (both passes). */
static void match_group(struct ent *e, size_t n)
{
	/* Pass 1: forward, lag >= 0. Every candidate before p is matched or
	 * earlier than the current target. */
	size_t p = 0;
	for (size_t i = 0; i < n; i++) {
		if ((e[i].flags & (F_TARGET | F_NOMATCH)) != F_TARGET)
			continue;
		while (p < n && (!(e[p].flags & F_INF) || e[p].time < e[i].time))
			p++;
		/* an exit inferred at the same time as a create (a root
		 * reloaded: old space out, new one in) is the old one's */
		if (p < n && e[p].time < e[i].hi && e[p].time <= e[i].ihi) {
			e[p].flags |= F_MATCHED;
			e[i].flags |= F_MATCHED;
			e[i].lo = e[p].time;
			p++;
		}
	}
	/* Pass 2: backward, lag < 0. Every candidate after q is matched or
	 * not earlier than the current target. */
	size_t q = n;
	for (size_t i = n; i > 0; i--) {
		struct ent *t = &e[i - 1];
		if ((t->flags & (F_TARGET | F_NOMATCH | F_MATCHED)) != F_TARGET)
			continue;
		while (q > 0 && (!(e[q - 1].flags & F_INF) ||
				 (e[q - 1].flags & F_MATCHED) ||
				 e[q - 1].time >= t->time))
			q--;
		if (q > 0 && ((t->flags & F_NOLO) || e[q - 1].time > t->lo)) {
			e[q - 1].flags |= F_MATCHED;
			t->flags |= F_MATCHED;
			t->lo = e[q - 1].time;
			q--;
		}
	}
}

/* The categories. */
enum cat { CAT_PCREATE, CAT_PEXIT, CAT_ASCREATE, CAT_ASEXIT };

/* Role of a truth record of this kind in category c (0: none). */
static uint32_t truth_role(enum cat c, unsigned kind)
{
	switch (c) {
	case CAT_PCREATE:
		if (kind == AF_TRUTH_FORK || kind == AF_TRUTH_VFORK)
			return F_TARGET | F_HI;
		if (kind == AF_TRUTH_EXIT)
			return F_LO;
		return 0;
	case CAT_PEXIT:
		if (kind == AF_TRUTH_EXIT)
			return F_TARGET;
		if (kind == AF_TRUTH_FORK || kind == AF_TRUTH_VFORK)
			return F_LO | F_HI;
		if (kind == AF_TRUTH_EXEC)
			return F_LO | F_HI;
		return 0;
	case CAT_ASCREATE:
		if (kind == AF_TRUTH_AS_CREATE)
			return F_TARGET | F_HI;
		if (kind == AF_TRUTH_AS_DESTROY)
			return F_LO;
		return 0;
	case CAT_ASEXIT:
		if (kind == AF_TRUTH_AS_DESTROY)
			return F_TARGET;
		if (kind == AF_TRUTH_AS_CREATE)
			return F_LO | F_HI;
		return 0;
	}
	return 0;
}

/* The inferred kind a category matches. */
static unsigned cat_inf_kind(enum cat c)
{
	return c == CAT_PCREATE || c == CAT_ASCREATE ? AF_EV_CREATE :
						       AF_EV_EXIT;
}

/* Most entries category c can need. */
static size_t cat_size(const struct af_eval *ev, enum cat c)
{
	size_t n = 0;
	for (size_t i = 0; i < ev->truth.n; i++) {
		uint32_t role = truth_role(c, ev->truth.v[i].kind);
		/* a vfork child's create can take two entries (run_cat) */
		n += role ? 1 + ((role & F_TARGET) &&
				 ev->truth.v[i].kind == AF_TRUTH_VFORK) : 0;
	}
	for (size_t i = 0; i < ev->inf.n; i++)
		n += ev->inf.v[i].kind == cat_inf_kind(c) ||
		     (cat_inf_kind(c) == AF_EV_EXIT &&
		      ev->inf.v[i].kind == AF_EV_CREATE);
	return n;
}

/* Everything finish needs while it runs. */
struct work {
	const struct af_eval *ev; /* input */
	const uint64_t *asids;    /* resolved truth ASIDs */
	const uint64_t *btimes;   /* truth times as bounds (vfork: exec's) */
	const uint8_t *skip;      /* vfork children without an AS */
	struct ent *ents;         /* scratch, room for any category */
	uint64_t wb, we;          /* window, inclusive */
	uint64_t inf_limit;       /* inferred later than this are ignored */
};

static int in_window(const struct work *w, uint64_t t)
{
	return t >= w->wb && t <= w->we;
}

/* Runs one category; out->lags must have room for every target. */
static void run_cat(const struct work *w, enum cat c, struct outcome *out)
{
	const struct af_eval *ev = w->ev;
	unsigned inf_kind = cat_inf_kind(c);
	struct ent *e = w->ents;
	size_t n = 0;

	for (size_t i = 0; i < ev->truth.n; i++) {
		uint32_t role = truth_role(c, ev->truth.v[i].kind);
		if (!role)
			continue;
		if (w->skip[i]) {
			/* A vfork child without its own AS: a target that
			 * cannot match, and no bound. */
			if (!(role & F_TARGET))
				continue;
			role = F_TARGET | F_NOMATCH;
		}
		uint64_t t = ev->truth.v[i].time, bt = w->btimes[i];
		if (bt != t && (role & F_TARGET)) {
			/* A vfork child's create: the target at the vfork, its
			 * bound from its exec (when its address space begins),
			 * and its own window closes at the first bound after
			 * that. */
			e[n++] = (struct ent){ .asid = w->asids[i], .time = t,
					       .bt = bt, .seq = (uint32_t)i,
					       .flags = role & ~(F_LO | F_HI) };
			if (role & (F_LO | F_HI))
				e[n++] = (struct ent){
					.asid = w->asids[i], .time = bt,
					.seq = (uint32_t)(ev->truth.n +
							  ev->inf.n + i),
					.flags = role & (F_LO | F_HI) };
			continue;
		}
		e[n++] = (struct ent){ .asid = w->asids[i], .time = bt,
				       .bt = bt, .seq = (uint32_t)i,
				       .flags = role };
	}
	for (size_t i = 0; i < ev->inf.n; i++) {
		const struct rec *r = &ev->inf.v[i];
		if (r->kind != inf_kind || r->time > w->inf_limit)
			continue;
		e[n++] = (struct ent){ .asid = r->asid, .time = r->time,
				       .seq = (uint32_t)(ev->truth.n + i),
				       .flags = F_INF };
	}
	if (inf_kind == AF_EV_EXIT) {
		for (size_t i = 0; i < ev->inf.n; i++) {
			const struct rec *r = &ev->inf.v[i];
			if (r->kind != AF_EV_CREATE || r->time > w->inf_limit)
				continue;
			e[n++] = (struct ent){ .asid = r->asid, .time = r->time,
					       .seq = (uint32_t)(ev->truth.n + i),
					       .flags = F_IHI };
		}
	}
	ent_sort(e, n);

	int lo_incl = (c == CAT_PEXIT || c == CAT_ASEXIT);
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && e[j].asid == e[i].asid)
			j++;
		bound_group(e + i, j - i, lo_incl);
		match_group(e + i, j - i);
		i = j;
	}

	out->os = out->fn = out->fp = 0;
	out->n_lags = 0;
	for (size_t i = 0; i < n; i++) {
		if (!in_window(w, e[i].time))
			continue;
		if (e[i].flags & F_TARGET) {
			out->os++;
			if (out->pairs) {
				const struct rec *t = &ev->truth.v[e[i].seq];
				int m = !!(e[i].flags & F_MATCHED);
				out->pairs[out->n_pairs++] = (struct af_eval_pair){
					.category = (uint8_t)c,
					.matched = (uint8_t)m,
					.pid = t->pid,
					.ppid = t->ppid,
					.asid = e[i].asid,
					.os_time_ns = e[i].time,
					.inferred_time_ns = m ? e[i].lo : 0,
				};
			}
			if (!(e[i].flags & F_MATCHED))
				out->fn++;
			else if (out->lags)
				out->lags[out->n_lags++] =
					lag_ns(e[i].lo, e[i].time);
		} else if (e[i].flags & F_INF) {
			if (!(e[i].flags & F_MATCHED))
				out->fp++;
		}
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Statistics of n lag samples (sorted in place). */
static void lag_stats(int64_t *v, size_t n, struct af_lag *out)
{
	memset(out, 0, sizeof(*out));
	out->n = n;
	if (!n)
		return;
	qsort(v, n, sizeof(*v), cmp_i64);
	long double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += v[i];
	out->mean_us = (double)(sum / n / 1000.0L);
	if (n % 2)
		out->median_us = (double)v[n / 2] / 1000.0;
	else
		out->median_us = ((double)v[n / 2 - 1] + (double)v[n / 2]) /
				 2000.0;
	/* Nearest rank: the ceil(0.95 n)-th smallest. */
	size_t rank = n - n / 20; /* n - floor(0.05 n) = ceil(0.95 n) */
	out->p95_us = (double)v[rank - 1] / 1000.0;
	out->max_us = (double)v[n - 1] / 1000.0;
	out->min_us = (double)v[0] / 1000.0;
}

static uint64_t count_in(const struct timevec *tv, const struct work *w)
{
	uint64_t c = 0;
	for (size_t i = 0; i < tv->n; i++)
		c += in_window(w, tv->v[i]);
	return c;
}

/* af_eval_finish(), and with pairs (room for 4 per truth record) the
 * af_eval_pairs() list, *n_pairs entries. */
static int evaluate(struct af_eval *ev, struct af_eval_result *out,
		    struct af_eval_pair *pairs, size_t *n_pairs)
{
	struct work w = { .ev = ev };
	size_t nt = ev->truth.n, ni = ev->inf.n;
	int rc = -ENOMEM;

	w.wb = ev->has_begin ? ev->begin : 0;
	w.we = ev->has_end ? ev->end : UINT64_MAX;
	w.inf_limit = w.we > UINT64_MAX - AF_EVAL_GRACE_NS ?
			      UINT64_MAX : w.we + AF_EVAL_GRACE_NS;

	uint64_t *asids = NULL, *btimes = NULL;
	uint8_t *skip = NULL;
	struct ent *ents = NULL;
	int64_t *lags = NULL;
	/* Entries carry 32-bit sequence numbers (up to 2 nt + ni). */
	if (nt > UINT32_MAX || ni > UINT32_MAX ||
	    2 * nt + ni > UINT32_MAX)
		return -ENOMEM;
	size_t ne = 1;
	for (enum cat c = CAT_PCREATE; c <= CAT_ASEXIT; c++) {
		size_t k = cat_size(ev, c);
		ne = k > ne ? k : ne;
	}
	asids = malloc((nt ? nt : 1) * sizeof(*asids));
	btimes = malloc((nt ? nt : 1) * sizeof(*btimes));
	skip = malloc(nt ? nt : 1);
	ents = malloc(ne * sizeof(*ents));
	lags = malloc((nt ? nt : 1) * sizeof(*lags));
	if (!asids || !btimes || !skip || !ents || !lags)
		goto out;
	rc = resolve_vfork(ev, asids, btimes, skip);
	if (rc)
		goto out;
	w.asids = asids;
	w.btimes = btimes;
	w.skip = skip;
	w.ents = ents;

	memset(out, 0, sizeof(*out));
	out->window_begin_ns = w.wb;
	out->window_end_ns = ev->has_end ? w.we : UINT64_MAX;

	struct outcome o = { .lags = lags, .pairs = pairs };
	run_cat(&w, CAT_PCREATE, &o);
	out->os_process_create = o.os;
	out->fn_create = o.fn;
	out->fp_create = o.fp;
	lag_stats(o.lags, o.n_lags, &out->lag_create);

	run_cat(&w, CAT_PEXIT, &o);
	out->os_process_exit = o.os;
	out->fn_exit = o.fn;
	out->fp_exit = o.fp;
	lag_stats(o.lags, o.n_lags, &out->lag_exit);

	o.lags = NULL; /* no lag figures for address spaces */
	run_cat(&w, CAT_ASCREATE, &o);
	out->os_as_create = o.os;
	out->as_fn_create = o.fn;
	out->as_fp_create = o.fp;

	run_cat(&w, CAT_ASEXIT, &o);
	out->os_as_exit = o.os;
	out->as_fn_exit = o.fn;
	out->as_fp_exit = o.fp;

	for (size_t i = 0; i < ni; i++) {
		if (!in_window(&w, ev->inf.v[i].time))
			continue;
		if (ev->inf.v[i].kind == AF_EV_CREATE)
			out->inferred_create++;
		else
			out->inferred_exit++;
	}
	out->os_switch = count_in(&ev->os_sw, &w);
	out->inferred_switch = count_in(&ev->inf_sw, &w);
	if (n_pairs)
		*n_pairs = o.n_pairs;
	rc = 0;
out:
	free(asids);
	free(btimes);
	free(skip);
	free(ents);
	free(lags);
	return rc;
}

AF_API int af_eval_finish(struct af_eval *ev, struct af_eval_result *out)
{
	if (!ev || !out)
		return -EINVAL;
	return evaluate(ev, out, NULL, NULL);
}

static int cmp_pair(const void *a, const void *b)
{
	const struct af_eval_pair *x = a, *y = b;
	if (x->os_time_ns != y->os_time_ns)
		return x->os_time_ns < y->os_time_ns ? -1 : 1;
	return (x->category > y->category) - (x->category < y->category);
}

AF_API int af_eval_pairs(struct af_eval *ev,
			 void (*fn)(void *ctx, const struct af_eval_pair *p),
			 void *ctx)
{
	if (!ev || !fn)
		return -EINVAL;
	/* Each truth record is a target of at most one category per
	 * category pass: 4 per record bounds the list. */
	size_t nt = ev->truth.n ? ev->truth.n : 1;
	if (nt > SIZE_MAX / 4 / sizeof(struct af_eval_pair))
		return -ENOMEM;
	struct af_eval_pair *pairs = malloc(4 * nt * sizeof(*pairs));
	if (!pairs)
		return -ENOMEM;
	struct af_eval_result res;
	size_t n = 0;
	int rc = evaluate(ev, &res, pairs, &n);
	if (!rc) {
		qsort(pairs, n, sizeof(*pairs), cmp_pair);
		for (size_t i = 0; i < n; i++)
			fn(ctx, &pairs[i]);
	}
	free(pairs);
	return rc;
}

/* ---- whole traces ---- */

/* Replay sink state: the eval and the first error met. */
struct trace_ctx {
	struct af_eval *ev; /* where events go */
	int err;            /* first af_eval_add_* failure */
};

static void sink_event(void *ctx, const struct af_event *e)
{
	struct trace_ctx *c = ctx;
	int rc = af_eval_add_event(c->ev, e);
	if (rc && !c->err)
		c->err = rc;
}

static void sink_truth(void *ctx, const struct af_truth *t)
{
	struct trace_ctx *c = ctx;
	int rc = af_eval_add_truth(c->ev, t);
	if (rc && !c->err)
		c->err = rc;
}

AF_API int af_eval_trace(struct af_trace_reader *r, struct af_eval_result *out)
{
	return af_eval_trace_flags(r, 0, out);
}

AF_API int af_eval_trace_flags(struct af_trace_reader *r,
			       unsigned engine_flags,
			       struct af_eval_result *out)
{
	if (!r || !out)
		return -EINVAL;
	struct trace_ctx c = { 0 };
	int rc = af_eval_new(&c.ev);
	if (rc)
		return rc;
	struct af_replay_sink sink = { sink_event, sink_truth, &c };
	rc = af_replay_flags(r, &sink, engine_flags, NULL);
	if (!rc)
		rc = c.err;
	if (!rc)
		rc = af_eval_finish(c.ev, out);
	af_eval_free(c.ev);
	return rc;
}
