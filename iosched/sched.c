/*
 * iosched/sched.c - the scheduler core: names, default tunables, request
 * slots (allocated once), the calls that wrap each scheduler's operations,
 * and the sorted-list helper they share.
 */
#include "iosched/sched.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[IOS_SCHED_COUNT] = {
	[IOS_SCHED_NOOP] = "noop",
	[IOS_SCHED_DEADLINE] = "deadline",
	[IOS_SCHED_AS_SINGLE] = "as-single",
	[IOS_SCHED_AS_VM] = "as-vm",
	[IOS_SCHED_AS_PROCESS] = "as-process",
};

const char *ios_sched_name(enum ios_sched_kind k)
{
	return (unsigned)k < IOS_SCHED_COUNT ? names[k] : NULL;
}

int ios_sched_parse(const char *name, enum ios_sched_kind *out)
{
	for (unsigned i = 0; i < IOS_SCHED_COUNT; i++)
		if (!strcmp(name, names[i])) {
			*out = (enum ios_sched_kind)i;
			return 0;
		}
	return -1;
}

#define MS 1000000ull

void ios_sched_tunables_default(enum ios_sched_kind k,
				struct ios_sched_tunables *t)
{
	memset(t, 0, sizeof(*t));
	if (k == IOS_SCHED_DEADLINE) {
		/* block/deadline-iosched.c: read_expire HZ/2, write_expire
		 * 5*HZ, writes_starved 2, fifo_batch 16. */
		t->read_expire_ns = 500 * MS;
		t->write_expire_ns = 5000 * MS;
	} else {
		/* block/as-iosched.c: read_expire HZ/8, write_expire HZ/4. */
		t->read_expire_ns = 125 * MS;
		t->write_expire_ns = 250 * MS;
	}
	t->fifo_batch = 16;
	t->writes_starved = 2;
	/* as-iosched: antic_expire HZ/150 (6 jiffies at HZ=1000),
	 * read_batch_expire HZ/2, write_batch_expire HZ/8. */
	t->antic_expire_ns = 6 * MS;
	t->read_batch_expire_ns = 500 * MS;
	t->write_batch_expire_ns = 125 * MS;
	t->max_streams = 1024;
}

static const struct ios_sched_ops *ops_for(enum ios_sched_kind k)
{
	switch (k) {
	case IOS_SCHED_NOOP:
		return &ios_noop_ops;
	case IOS_SCHED_DEADLINE:
		return &ios_deadline_ops;
	case IOS_SCHED_AS_SINGLE:
	case IOS_SCHED_AS_VM:
	case IOS_SCHED_AS_PROCESS:
		return &ios_as_ops;
	}
	return NULL;
}

int ios_sched_new(enum ios_sched_kind k, unsigned max_requests,
		  const struct ios_sched_tunables *t, struct ios_sched **out)
{
	*out = NULL;
	const struct ios_sched_ops *ops = ops_for(k);
	if (!ops || max_requests < 1 || max_requests > (1u << 20))
		return -EINVAL;
	struct ios_sched_tunables tun;
	if (t)
		tun = *t;
	else
		ios_sched_tunables_default(k, &tun);
	if (tun.fifo_batch < 1 || tun.max_streams < 1 ||
	    tun.max_streams > 65536 || tun.read_expire_ns == 0 ||
	    tun.write_expire_ns == 0)
		return -EINVAL;

	struct ios_sched *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->slots = calloc(max_requests, sizeof(*s->slots));
	if (!s->slots) {
		free(s);
		return -ENOMEM;
	}
	s->kind = k;
	s->ops = ops;
	s->t = tun;
	s->max_requests = max_requests;
	ios_list_init(&s->free_list);
	for (unsigned i = 0; i < max_requests; i++) {
		ios_list_init(&s->slots[i].sort);
		ios_list_add_tail(&s->free_list, &s->slots[i].fifo);
	}
	int rc = ops->init(s);
	if (rc) {
		free(s->slots);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void ios_sched_free(struct ios_sched *s)
{
	if (!s)
		return;
	s->ops->free(s);
	free(s->slots);
	free(s);
}

int ios_sched_add(struct ios_sched *s, const struct ios_req_desc *d,
		  uint64_t now, struct ios_rq **out)
{
	if (out)
		*out = NULL;
	if (d->count == 0 || d->sector + d->count < d->sector)
		return -EINVAL;
	if (ios_list_empty(&s->free_list)) {
		s->st.rejected++;
		return -EAGAIN;
	}
	struct ios_link *l = s->free_list.next;
	ios_list_del(l);
	struct ios_rq *rq = ios_rq_of_fifo(l);
	rq->d = *d;
	rq->d.write = d->write ? 1 : 0;
	rq->arrival_ns = now;
	rq->expire_ns = 0;
	rq->stream = 0;
	rq->state = IOS_RQ_QUEUED;
	ios_list_init(&rq->sort);
	s->queued++;
	s->st.added++;
	s->ops->add_request(s, rq, now);
	if (out)
		*out = rq;
	return 0;
}

struct ios_rq *ios_sched_dispatch(struct ios_sched *s, uint64_t now)
{
	struct ios_rq *rq = s->ops->dispatch(s, now);
	if (!rq)
		return NULL;
	rq->state = IOS_RQ_DISPATCHED;
	s->queued--;
	s->in_flight++;
	s->st.dispatched++;
	return rq;
}

void ios_sched_complete(struct ios_sched *s, struct ios_rq *rq, uint64_t now)
{
	if (!rq || rq->state != IOS_RQ_DISPATCHED)
		return;
	s->ops->complete(s, rq, now);
	rq->state = IOS_RQ_FREE;
	s->in_flight--;
	s->st.completed++;
	ios_list_add_tail(&s->free_list, &rq->fifo);
}

uint64_t ios_sched_next_timer(const struct ios_sched *s)
{
	return s->ops->next_timer(s);
}

unsigned ios_sched_queued(const struct ios_sched *s)
{
	return s->queued;
}

unsigned ios_sched_in_flight(const struct ios_sched *s)
{
	return s->in_flight;
}

enum ios_sched_kind ios_sched_kind_of(const struct ios_sched *s)
{
	return s->kind;
}

void ios_sched_get_stats(const struct ios_sched *s, struct ios_sched_stats *out)
{
	*out = s->st;
}

void ios_sort_insert(struct ios_link *head, struct ios_rq *rq)
{
	/* From the tail: the first request not after rq. */
	struct ios_link *pos = head->prev;
	while (pos != head && ios_rq_of_sort(pos)->d.sector > rq->d.sector)
		pos = pos->prev;
	ios_list_add_after(pos, &rq->sort);
}
