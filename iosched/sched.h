/*
 * iosched/sched.h - pluggable disk schedulers for the block server: the
 * request slots, the public calls, and the operations table each scheduler
 * (iosched/sched_*.c) fills in, kvmtool style.
 *
 * Schedulers:
 *   noop        first come, first served
 *   deadline    Linux 2.6 deadline-iosched: per-direction sector-sorted
 *               lists served as a one-way elevator in batches of fifo_batch,
 *               read and write FIFOs with expiry times, reads preferred but
 *               writes not starved for more than writes_starved batches
 *   as-single   Linux 2.6 as-iosched (anticipatory), with every request in
 *               one stream: what the paper's Xen back end presented (all
 *               I/O submitted by one back-end task)
 *   as-vm       the same, one stream per export (guest disk)
 *   as-process  the same, one stream per (export, guest process id): the
 *               paper's VMAS
 *
 * Use: ios_sched_add() a request when it arrives; whenever the device can
 * take a request (after an add, a completion, or at the time
 * ios_sched_next_timer() names), call ios_sched_dispatch(); hand what it
 * returns to the device and ios_sched_complete() it when done. Request slots
 * are preallocated by ios_sched_new(): add, dispatch and complete never
 * allocate, and a full queue is reported (-EAGAIN) for the caller to apply
 * back-pressure. Not thread-safe: one caller at a time.
 *
 * Time is in ns on the caller's clock; it must not go backwards.
 */
#ifndef IOSCHED_SCHED_H
#define IOSCHED_SCHED_H

#include <stddef.h>
#include <stdint.h>

#define IOS_PID_UNKNOWN UINT32_MAX /* process not known */
#define IOS_NO_TIMER UINT64_MAX    /* no timer wanted */

enum ios_sched_kind {
	IOS_SCHED_NOOP = 0,
	IOS_SCHED_DEADLINE = 1,
	IOS_SCHED_AS_SINGLE = 2,
	IOS_SCHED_AS_VM = 3,
	IOS_SCHED_AS_PROCESS = 4,
};
#define IOS_SCHED_COUNT 5

/* "noop", "deadline", "as-single", "as-vm", "as-process"; NULL if bad. */
const char *ios_sched_name(enum ios_sched_kind k);
/* Parses one of those names; 0 or -1. */
int ios_sched_parse(const char *name, enum ios_sched_kind *out);

/* A request as the caller describes it. */
struct ios_req_desc {
	uint32_t export_id; /* guest disk (VM) */
	uint32_t pid;       /* guest process id (ASID), or IOS_PID_UNKNOWN */
	uint64_t sector;    /* first 512-byte sector */
	uint32_t count;     /* sectors, >= 1 */
	int write;          /* 0 read, 1 write */
	uint64_t cookie;    /* the caller's, returned untouched */
};

/* Intrusive doubly linked list node (a list head is a node too). */
struct ios_link {
	struct ios_link *prev; /* previous node */
	struct ios_link *next; /* next node */
};

/* A request slot. The caller may read everything; only the scheduler
 * writes it. */
struct ios_rq {
	struct ios_req_desc d;  /* as added */
	uint64_t arrival_ns;    /* when it was added */
	uint64_t expire_ns;     /* FIFO deadline (deadline, as-*) */
	uint32_t stream;        /* stream slot (as-*) */
	int state;              /* free, queued, dispatched */
	struct ios_link fifo;   /* position in its FIFO (or the free list) */
	struct ios_link sort;   /* position in its sector-sorted list */
};

/* Tunables; ios_sched_tunables_default() gives Linux's defaults. Times in
 * ns. Only the ones a scheduler uses matter to it. */
struct ios_sched_tunables {
	uint64_t read_expire_ns;        /* deadline 500 ms, as 125 ms */
	uint64_t write_expire_ns;       /* deadline 5 s, as 250 ms */
	unsigned fifo_batch;            /* deadline: 16 */
	unsigned writes_starved;        /* deadline: 2 */
	uint64_t antic_expire_ns;       /* as: 6 ms (HZ/150 at HZ=1000) */
	uint64_t read_batch_expire_ns;  /* as: 500 ms */
	uint64_t write_batch_expire_ns; /* as: 125 ms */
	unsigned max_streams;           /* as: stream slots (1..65536) */
};

/* Defaults for kind k (deadline and as differ in their expiry times). */
void ios_sched_tunables_default(enum ios_sched_kind k,
				struct ios_sched_tunables *t);

/* Counters. */
struct ios_sched_stats {
	uint64_t added;            /* requests accepted */
	uint64_t rejected;         /* refused: queue full */
	uint64_t dispatched;       /* handed to the device */
	uint64_t completed;        /* completed */
	uint64_t fifo_expired;     /* dispatched because a FIFO expired */
	uint64_t antic_started;    /* anticipation waits begun */
	uint64_t antic_hits;       /* ended by the awaited stream's request */
	uint64_t antic_broken;     /* ended by another stream's request */
	uint64_t antic_timeouts;   /* ended by the timer */
	uint64_t stream_evictions; /* stream slots reused for a new stream */
};

struct ios_sched;

/* Creates a scheduler of kind k with max_requests slots (1..1048576);
 * t NULL means the defaults. Returns 0 or -EINVAL / -ENOMEM; the caller
 * owns *out (ios_sched_free). */
int ios_sched_new(enum ios_sched_kind k, unsigned max_requests,
		  const struct ios_sched_tunables *t, struct ios_sched **out);
void ios_sched_free(struct ios_sched *s);

/* Queues a request arriving at now. Returns 0 (and the slot in *out if out
 * is not NULL), -EAGAIN if every slot is in use, -EINVAL if d is empty. */
int ios_sched_add(struct ios_sched *s, const struct ios_req_desc *d,
		  uint64_t now, struct ios_rq **out);
/* The next request for the device, or NULL (nothing queued, or the
 * scheduler is deliberately waiting: see ios_sched_next_timer). The slot
 * stays the scheduler's; the caller must ios_sched_complete() it. */
struct ios_rq *ios_sched_dispatch(struct ios_sched *s, uint64_t now);
/* The device finished rq at now; its slot is free again afterwards. */
void ios_sched_complete(struct ios_sched *s, struct ios_rq *rq, uint64_t now);
/* When the scheduler wants ios_sched_dispatch() called even if nothing
 * else happens (an anticipation timeout), or IOS_NO_TIMER. */
uint64_t ios_sched_next_timer(const struct ios_sched *s);

unsigned ios_sched_queued(const struct ios_sched *s);     /* waiting */
unsigned ios_sched_in_flight(const struct ios_sched *s);  /* dispatched */
enum ios_sched_kind ios_sched_kind_of(const struct ios_sched *s);
void ios_sched_get_stats(const struct ios_sched *s, struct ios_sched_stats *out);

/* ---- for scheduler implementations (iosched/sched_*.c) ---- */

/* The operations of one scheduler. The core keeps the slots, the counters
 * and the free list; a scheduler keeps its queues in priv. */
struct ios_sched_ops {
	const char *name;
	/* Sets up s->priv (may allocate: called once, from ios_sched_new). */
	int (*init)(struct ios_sched *s);
	/* rq (fields d, arrival_ns filled in) joins the queues. */
	void (*add_request)(struct ios_sched *s, struct ios_rq *rq,
			    uint64_t now);
	/* Picks, unlinks and returns the next request, or NULL. */
	struct ios_rq *(*dispatch)(struct ios_sched *s, uint64_t now);
	/* A dispatched request completed (before its slot is freed). */
	void (*complete)(struct ios_sched *s, struct ios_rq *rq, uint64_t now);
	/* See ios_sched_next_timer(). */
	uint64_t (*next_timer)(const struct ios_sched *s);
	/* Releases priv. */
	void (*free)(struct ios_sched *s);
};

/* The scheduler object (its fields are for implementations). */
struct ios_sched {
	enum ios_sched_kind kind;        /* which scheduler */
	const struct ios_sched_ops *ops; /* its operations */
	struct ios_sched_tunables t;     /* tunables in force */
	struct ios_rq *slots;            /* max_requests slots */
	unsigned max_requests;           /* number of slots */
	unsigned queued;                 /* slots waiting */
	unsigned in_flight;              /* slots dispatched */
	struct ios_link free_list;       /* free slots (through rq->fifo) */
	struct ios_sched_stats st;       /* counters */
	void *priv;                      /* the scheduler's own state */
};

extern const struct ios_sched_ops ios_noop_ops;
extern const struct ios_sched_ops ios_deadline_ops;
extern const struct ios_sched_ops ios_as_ops;

/* Request states. */
enum { IOS_RQ_FREE = 0, IOS_RQ_QUEUED = 1, IOS_RQ_DISPATCHED = 2 };

/* List helpers. */
static inline void ios_list_init(struct ios_link *h)
{
	h->prev = h->next = h;
}
static inline int ios_list_empty(const struct ios_link *h)
{
	return h->next == h;
}
/* Inserts n after pos. */
static inline void ios_list_add_after(struct ios_link *pos, struct ios_link *n)
{
	n->prev = pos;
	n->next = pos->next;
	pos->next->prev = n;
	pos->next = n;
}
static inline void ios_list_add_tail(struct ios_link *h, struct ios_link *n)
{
	ios_list_add_after(h->prev, n);
}
static inline void ios_list_del(struct ios_link *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}
#define ios_rq_of_fifo(l)                                                    \
	((struct ios_rq *)(void *)((char *)(l) - offsetof(struct ios_rq, fifo)))
#define ios_rq_of_sort(l)                                                    \
	((struct ios_rq *)(void *)((char *)(l) - offsetof(struct ios_rq, sort)))

/* Inserts rq into a list sorted by sector (equal sectors keep arrival
 * order) through rq->sort. O(queue length). */
void ios_sort_insert(struct ios_link *head, struct ios_rq *rq);

#endif
