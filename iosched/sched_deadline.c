/*
 * iosched/sched_deadline.c - the deadline scheduler, with the semantics of
 * Linux 2.6's block/deadline-iosched.c: per direction a sector-sorted list
 * and a FIFO whose entries expire read_expire / write_expire after arrival.
 * Requests go out in batches of up to fifo_batch that follow sector order
 * upwards from the last one (a one-way elevator); a batch ends early when
 * there is no higher-sectored request in its direction. A new batch serves
 * reads unless writes have waited writes_starved read batches, and starts
 * from the oldest request if that one has expired (or the elevator ran off
 * the end), else from where the last batch stopped. Linux's request
 * merging is not modelled (the block server hands whole requests over).
 */
#include "iosched/sched.h"

#include <errno.h>
#include <stdlib.h>

enum { RD = 0, WR = 1 };

/* deadline's state. */
struct dl_data {
	struct ios_link sort[2];   /* queued, by sector, per direction */
	struct ios_link fifo[2];   /* queued, by arrival, per direction */
	struct ios_rq *next_rq[2]; /* where the elevator continues */
	unsigned batching;         /* requests in the current batch */
	unsigned starved;          /* read batches while writes waited */
};

static int dl_init(struct ios_sched *s)
{
	struct dl_data *dd = calloc(1, sizeof(*dd));
	if (!dd)
		return -ENOMEM;
	for (int i = 0; i < 2; i++) {
		ios_list_init(&dd->sort[i]);
		ios_list_init(&dd->fifo[i]);
	}
	s->priv = dd;
	return 0;
}

static void dl_add(struct ios_sched *s, struct ios_rq *rq, uint64_t now)
{
	struct dl_data *dd = s->priv;
	int dir = rq->d.write ? WR : RD;
	rq->expire_ns = now + (dir == WR ? s->t.write_expire_ns :
					   s->t.read_expire_ns);
	ios_sort_insert(&dd->sort[dir], rq);
	ios_list_add_tail(&dd->fifo[dir], &rq->fifo);
}

/* The request after rq in sector order, or NULL. */
static struct ios_rq *latter(struct dl_data *dd, struct ios_rq *rq)
{
	int dir = rq->d.write ? WR : RD;
	struct ios_link *n = rq->sort.next;
	return n == &dd->sort[dir] ? NULL : ios_rq_of_sort(n);
}

/* Has the oldest request of dir expired? */
static int fifo_expired(struct dl_data *dd, int dir, uint64_t now)
{
	if (ios_list_empty(&dd->fifo[dir]))
		return 0;
	return now >= ios_rq_of_fifo(dd->fifo[dir].next)->expire_ns;
}

static struct ios_rq *dl_dispatch(struct ios_sched *s, uint64_t now)
{
	struct dl_data *dd = s->priv;
	const int reads = !ios_list_empty(&dd->fifo[RD]);
	const int writes = !ios_list_empty(&dd->fifo[WR]);
	struct ios_rq *rq = dd->next_rq[WR] ? dd->next_rq[WR] : dd->next_rq[RD];
	int dir;

	if (rq && dd->batching < s->t.fifo_batch)
		goto dispatch; /* the batch goes on */

	if (reads) {
		if (writes && dd->starved++ >= s->t.writes_starved)
			goto dispatch_writes;
		dir = RD;
		goto find;
	}
	if (writes) {
	dispatch_writes:
		dd->starved = 0;
		dir = WR;
		goto find;
	}
	return NULL;

find:
	/* A new batch: from the oldest request if it expired or the
	 * elevator has nothing further up, else from where it was. */
	if (fifo_expired(dd, dir, now) || !dd->next_rq[dir]) {
		if (dd->next_rq[dir])
			s->st.fifo_expired++; /* not just the elevator's end */
		rq = ios_rq_of_fifo(dd->fifo[dir].next);
	} else {
		rq = dd->next_rq[dir];
	}
	dd->batching = 0;

dispatch:
	dd->batching++;
	dd->next_rq[RD] = dd->next_rq[WR] = NULL;
	dd->next_rq[rq->d.write ? WR : RD] = latter(dd, rq);
	ios_list_del(&rq->sort);
	ios_list_del(&rq->fifo);
	return rq;
}

static void dl_complete(struct ios_sched *s, struct ios_rq *rq, uint64_t now)
{
	(void)s;
	(void)rq;
	(void)now;
}

static uint64_t dl_next_timer(const struct ios_sched *s)
{
	(void)s;
	return IOS_NO_TIMER;
}

static void dl_free(struct ios_sched *s)
{
	free(s->priv);
	s->priv = NULL;
}

const struct ios_sched_ops ios_deadline_ops = {
	.name = "deadline",
	.init = dl_init,
	.add_request = dl_add,
	.dispatch = dl_dispatch,
	.complete = dl_complete,
	.next_timer = dl_next_timer,
	.free = dl_free,
};
