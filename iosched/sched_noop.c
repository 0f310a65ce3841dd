/*
 * iosched/sched_noop.c - the noop scheduler: requests go to the device in
 * the order they arrived (Linux's noop elevator, without its merging).
 */
#include "iosched/sched.h"

#include <errno.h>
#include <stdlib.h>

/* noop's state: one FIFO of every queued request. */
struct noop_data {
	struct ios_link fifo; /* queued requests, oldest first */
};

static int noop_init(struct ios_sched *s)
{
	struct noop_data *nd = calloc(1, sizeof(*nd));
	if (!nd)
		return -ENOMEM;
	ios_list_init(&nd->fifo);
	s->priv = nd;
	return 0;
}

static void noop_add(struct ios_sched *s, struct ios_rq *rq, uint64_t now)
{
	(void)now;
	struct noop_data *nd = s->priv;
	ios_list_add_tail(&nd->fifo, &rq->fifo);
}

static struct ios_rq *noop_dispatch(struct ios_sched *s, uint64_t now)
{
	(void)now;
	struct noop_data *nd = s->priv;
	if (ios_list_empty(&nd->fifo))
		return NULL;
	struct ios_link *l = nd->fifo.next;
	ios_list_del(l);
	return ios_rq_of_fifo(l);
}

static void noop_complete(struct ios_sched *s, struct ios_rq *rq, uint64_t now)
{
	(void)s;
	(void)rq;
	(void)now;
}

static uint64_t noop_next_timer(const struct ios_sched *s)
{
	(void)s;
	return IOS_NO_TIMER;
}

static void noop_free(struct ios_sched *s)
{
	free(s->priv);
	s->priv = NULL;
}

const struct ios_sched_ops ios_noop_ops = {
	.name = "noop",
	.init = noop_init,
	.add_request = noop_add,
	.dispatch = noop_dispatch,
	.complete = noop_complete,
	.next_timer = noop_next_timer,
	.free = noop_free,
};
