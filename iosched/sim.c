/*
 * iosched/sim.c - the discrete-event simulation of sim.h: readers, guest
 * elevators, the block server's scheduler and the disk model, driven by a
 * time-ordered event heap (ties broken by insertion order, so runs are
 * deterministic).
 */
#include "iosched/sim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const guest_names[IOS_GUEST_COUNT] = {
	[IOS_GUEST_NONE] = "none",
	[IOS_GUEST_MQ_DEADLINE] = "mq-deadline",
	[IOS_GUEST_BFQ] = "bfq",
};

const char *ios_guest_name(enum ios_guest_elv g)
{
	return (unsigned)g < IOS_GUEST_COUNT ? guest_names[g] : NULL;
}

int ios_guest_parse(const char *name, enum ios_guest_elv *out)
{
	for (unsigned i = 0; i < IOS_GUEST_COUNT; i++)
		if (!strcmp(name, guest_names[i])) {
			*out = (enum ios_guest_elv)i;
			return 0;
		}
	return -1;
}

void ios_sim_params_default(struct ios_sim_params *p)
{
	memset(p, 0, sizeof(*p));
	p->vms = 1;
	p->procs = 2;
	p->sched = IOS_SCHED_DEADLINE;
	p->guest = IOS_GUEST_NONE;
	p->bytes_per_proc = 200000000;   /* paper: a 200 MB segment */
	p->file_stride_bytes = 1ull << 30; /* paper: of a private 1 GB file */
	p->base_bytes = 0;
	p->request_bytes = 128 * 1024;   /* Linux's default read-ahead */
	p->think_min_ns = 100000;
	p->think_max_ns = 500000;
	p->assoc_error = 0;
	p->seed = 1;
	p->guest_idle_ns = 8000000;      /* bfq slice_idle: HZ/125 */
	p->guest_slice_ns = 125000000;   /* bfq timeout_sync: HZ/8 */
	p->queue_slots = 256;
	ios_disk_params_default(&p->disk);
}

/* ---- events ---- */

enum ev_type {
	EV_ISSUE = 1,       /* a reader issues its next request */
	EV_DISK_DONE = 2,   /* the disk finished its request */
	EV_SCHED_TIMER = 3, /* the scheduler's timer */
	EV_GUEST_TIMER = 4, /* a guest's idle timer */
};

/* One pending event. */
struct event {
	uint64_t t;    /* when */
	uint64_t seq;  /* insertion order, breaks ties */
	int type;      /* enum ev_type */
	uint32_t who;  /* reader or VM index */
	uint64_t gen;  /* timer generation (stale timers are ignored) */
};

/* A reader. */
struct reader {
	unsigned vm, idx;      /* where it runs */
	uint32_t pid;          /* its guest process id */
	uint64_t next_sector;  /* next to read */
	uint64_t to_issue;     /* bytes not yet requested */
	uint64_t done_bytes;   /* bytes completed */
	uint32_t cur_count;    /* sectors of the outstanding request */
	uint32_t cur_bytes;    /* bytes of it the reader wants */
	uint64_t finish_ns;    /* when it finished */
	int pending;           /* bfq: request held in the guest */
};

/* A guest's bfq state. */
struct guest {
	int in_service;        /* reader index in the VM, or -1 */
	uint64_t slice_start;  /* when it got the disk */
	int idling;            /* waiting for the in-service reader */
	uint64_t idle_gen;     /* generation of the idle timer */
};

struct sim {
	const struct ios_sim_params *p;
	struct ios_disk disk;
	struct ios_disk_state ds;
	struct ios_sched *sched;
	struct reader *r;
	unsigned nr;
	struct guest g[IOS_SIM_MAX_VMS];
	struct event *heap;
	size_t nheap, capheap;
	uint64_t seq;
	struct ios_rq *busy;      /* request at the disk */
	uint64_t timer_at;        /* scheduler timer pending, or NO_TIMER */
	uint64_t rng;
	uint64_t requests, mistagged;
	int err;
};

static uint64_t rng_next(struct sim *s)
{
	/* xorshift64* */
	uint64_t x = s->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	s->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, 1). */
static double rng_unit(struct sim *s)
{
	return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

static int ev_before(const struct event *a, const struct event *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void push(struct sim *s, uint64_t t, int type, uint32_t who,
		 uint64_t gen)
{
	if (s->nheap == s->capheap) {
		size_t nc = s->capheap * 2;
		struct event *nh = realloc(s->heap, nc * sizeof(*nh));
		if (!nh) {
			s->err = -ENOMEM;
			return;
		}
		s->heap = nh;
		s->capheap = nc;
	}
	struct event e = { t, s->seq++, type, who, gen };
	size_t i = s->nheap++;
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (!ev_before(&e, &s->heap[up]))
			break;
		s->heap[i] = s->heap[up];
		i = up;
	}
	s->heap[i] = e;
}

static struct event pop(struct sim *s)
{
	struct event top = s->heap[0], last = s->heap[--s->nheap];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->nheap)
			break;
		if (c + 1 < s->nheap && ev_before(&s->heap[c + 1], &s->heap[c]))
			c++;
		if (!ev_before(&s->heap[c], &last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (s->nheap)
		s->heap[i] = last;
	return top;
}

/* ---- the block server ---- */

/* Gives the disk the next request if it is idle. */
static void kick(struct sim *s, uint64_t now)
{
	if (s->busy)
		return;
	struct ios_rq *rq = ios_sched_dispatch(s->sched, now);
	if (rq) {
		struct ios_disk_io io = { rq->d.sector, rq->d.count,
					  rq->d.write };
		struct ios_disk_result res;
		if (ios_disk_access(&s->disk, &s->ds, &io, now, &res)) {
			s->err = -EIO; /* cannot happen: files fit the disk */
			return;
		}
		s->busy = rq;
		push(s, res.done_ns, EV_DISK_DONE, 0, 0);
		return;
	}
	uint64_t t = ios_sched_next_timer(s->sched);
	if (t != IOS_NO_TIMER && t != s->timer_at) {
		s->timer_at = t;
		push(s, t > now ? t : now, EV_SCHED_TIMER, 0, t);
	}
}

/* The request of reader i reaches the block server. */
static void server_submit(struct sim *s, unsigned i, uint64_t now)
{
	const struct ios_sim_params *p = s->p;
	struct reader *r = &s->r[i];
	uint32_t tag = r->pid;
	if (p->assoc_error > 0 && rng_unit(s) < p->assoc_error) {
		/* Simple context association got it wrong: the process that
		 * happened to be running was another one. */
		if (p->procs > 1) {
			unsigned other = (unsigned)(rng_next(s) % (p->procs - 1));
			if (other >= r->idx)
				other++;
			tag = s->r[r->vm * p->procs + other].pid;
		} else {
			tag = 1; /* a kernel thread's context */
		}
		s->mistagged++;
	}
	struct ios_req_desc d = { .export_id = r->vm, .pid = tag,
				  .sector = r->next_sector,
				  .count = r->cur_count, .write = 0,
				  .cookie = i };
	if (ios_sched_add(s->sched, &d, now, NULL)) {
		s->err = -EIO; /* cannot happen: more slots than readers */
		return;
	}
	s->requests++;
	kick(s, now);
}

/* ---- guests ---- */

static void guest_send(struct sim *s, unsigned i, uint64_t now)
{
	s->r[i].pending = 0;
	server_submit(s, i, now);
}

/* bfq: the next waiting reader of vm after the one in service. */
static int bfq_next_waiting(struct sim *s, unsigned vm)
{
	unsigned P = s->p->procs;
	int cur = s->g[vm].in_service;
	for (unsigned k = 1; k <= P; k++) {
		unsigned j = (unsigned)((cur < 0 ? 0 : cur) + k) % P;
		if (s->r[vm * P + j].pending)
			return (int)j;
	}
	return -1;
}

static void bfq_switch(struct sim *s, unsigned vm, uint64_t now)
{
	struct guest *g = &s->g[vm];
	int j = bfq_next_waiting(s, vm);
	g->idling = 0;
	g->idle_gen++;
	g->in_service = j;
	if (j >= 0) {
		g->slice_start = now;
		guest_send(s, vm * s->p->procs + (unsigned)j, now);
	}
}

/* Reader i has a request for its guest's elevator. */
static void guest_submit(struct sim *s, unsigned i, uint64_t now)
{
	struct reader *r = &s->r[i];
	if (s->p->guest != IOS_GUEST_BFQ) {
		guest_send(s, i, now);
		return;
	}
	struct guest *g = &s->g[r->vm];
	r->pending = 1;
	if (g->in_service < 0) {
		g->in_service = (int)r->idx;
		g->slice_start = now;
		guest_send(s, i, now);
	} else if (g->in_service == (int)r->idx) {
		g->idling = 0;
		g->idle_gen++;
		guest_send(s, i, now);
	}
}

/* Reader i's request completed (seen by its guest at now). */
static void guest_complete(struct sim *s, unsigned i, uint64_t now)
{
	const struct ios_sim_params *p = s->p;
	struct reader *r = &s->r[i];
	r->done_bytes += r->cur_bytes;
	r->next_sector += r->cur_count;
	if (r->to_issue > 0) {
		uint64_t span = p->think_max_ns - p->think_min_ns;
		uint64_t think = p->think_min_ns +
				 (span ? (uint64_t)(rng_unit(s) * (double)(span + 1)) : 0);
		push(s, now + think, EV_ISSUE, i, 0);
	} else {
		r->finish_ns = now;
	}
	if (p->guest != IOS_GUEST_BFQ)
		return;
	struct guest *g = &s->g[r->vm];
	if (now - g->slice_start >= p->guest_slice_ns &&
	    bfq_next_waiting(s, r->vm) >= 0) {
		bfq_switch(s, r->vm, now);
		return;
	}
	g->idling = 1;
	g->idle_gen++;
	push(s, now + p->guest_idle_ns, EV_GUEST_TIMER, r->vm, g->idle_gen);
}

/* ---- run ---- */

static void reader_issue(struct sim *s, unsigned i, uint64_t now)
{
	struct reader *r = &s->r[i];
	uint64_t n = r->to_issue < s->p->request_bytes ? r->to_issue :
							 s->p->request_bytes;
	r->cur_bytes = (uint32_t)n;
	r->cur_count = (uint32_t)((n + IOS_SECTOR_BYTES - 1) / IOS_SECTOR_BYTES);
	r->to_issue -= n;
	guest_submit(s, i, now);
}

static int check_params(const struct ios_sim_params *p, const struct ios_disk *d)
{
	if (p->vms < 1 || p->vms > IOS_SIM_MAX_VMS || p->procs < 1 ||
	    p->procs > IOS_SIM_MAX_PROCS)
		return -EINVAL;
	if (!ios_sched_name(p->sched) || !ios_guest_name(p->guest))
		return -EINVAL;
	if (p->request_bytes < IOS_SECTOR_BYTES ||
	    p->request_bytes > (16u << 20) ||
	    p->request_bytes % IOS_SECTOR_BYTES)
		return -EINVAL;
	if (p->bytes_per_proc < 1 || p->bytes_per_proc > p->file_stride_bytes ||
	    p->file_stride_bytes % IOS_SECTOR_BYTES ||
	    p->base_bytes % IOS_SECTOR_BYTES)
		return -EINVAL;
	if (p->think_min_ns > p->think_max_ns || p->think_max_ns > 1000000000ull)
		return -EINVAL;
	if (!(p->assoc_error >= 0 && p->assoc_error <= 1))
		return -EINVAL;
	if (p->guest_idle_ns > 1000000000ull || p->guest_slice_ns < 1 ||
	    p->guest_slice_ns > 100000000000ull)
		return -EINVAL;
	if (p->queue_slots < p->vms * p->procs || p->queue_slots > 65536)
		return -EINVAL;
	/* Every file must fit on the disk. */
	uint64_t n = (uint64_t)p->vms * p->procs;
	uint64_t cap = d->p.capacity_sectors * IOS_SECTOR_BYTES;
	if (p->file_stride_bytes > cap || p->base_bytes > cap ||
	    (n - 1) > (cap - p->base_bytes) / p->file_stride_bytes)
		return -EINVAL;
	uint64_t last = p->base_bytes + (n - 1) * p->file_stride_bytes;
	if (p->bytes_per_proc + p->request_bytes > cap - last)
		return -EINVAL;
	/* Bound the work: at most 2^24 requests in all. */
	if (n * (p->bytes_per_proc / p->request_bytes + 1) > (1u << 24))
		return -EINVAL;
	return 0;
}

int ios_sim_run(const struct ios_sim_params *p, struct ios_sim_result *out)
{
	memset(out, 0, sizeof(*out));
	struct sim s;
	memset(&s, 0, sizeof(s));
	s.p = p;
	int rc = ios_disk_init(&s.disk, &p->disk);
	if (rc)
		return rc;
	rc = check_params(p, &s.disk);
	if (rc)
		return rc;
	rc = ios_sched_new(p->sched, p->queue_slots,
			   p->have_tunables ? &p->tun : NULL, &s.sched);
	if (rc)
		return rc;
	ios_disk_state_init(&s.ds);
	s.nr = p->vms * p->procs;
	s.r = calloc(s.nr, sizeof(*s.r));
	s.capheap = 4 * (size_t)s.nr + 64;
	s.heap = malloc(s.capheap * sizeof(*s.heap));
	if (!s.r || !s.heap) {
		rc = -ENOMEM;
		goto out;
	}
	s.timer_at = IOS_NO_TIMER;
	s.rng = p->seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
	if (!s.rng)
		s.rng = 1;
	for (unsigned v = 0; v < p->vms; v++) {
		s.g[v].in_service = -1;
		for (unsigned j = 0; j < p->procs; j++) {
			unsigned i = v * p->procs + j;
			struct reader *r = &s.r[i];
			r->vm = v;
			r->idx = j;
			r->pid = 1000 + j; /* guests number alike: the export
			                      tells them apart */
			r->next_sector = (p->base_bytes +
					  (uint64_t)i * p->file_stride_bytes) /
					 IOS_SECTOR_BYTES;
			r->to_issue = p->bytes_per_proc;
			/* Start a little apart, in a fixed order. */
			push(&s, (uint64_t)i * 1000, EV_ISSUE, i, 0);
		}
	}

	uint64_t now = 0;
	while (s.nheap && !s.err) {
		struct event e = pop(&s);
		now = e.t;
		switch (e.type) {
		case EV_ISSUE:
			reader_issue(&s, e.who, now);
			break;
		case EV_DISK_DONE: {
			struct ios_rq *rq = s.busy;
			unsigned i = (unsigned)rq->d.cookie;
			s.busy = NULL;
			ios_sched_complete(s.sched, rq, now);
			guest_complete(&s, i, now);
			kick(&s, now);
			break;
		}
		case EV_SCHED_TIMER:
			if (e.gen == s.timer_at) {
				s.timer_at = IOS_NO_TIMER;
				kick(&s, now);
			}
			break;
		case EV_GUEST_TIMER: {
			struct guest *g = &s.g[e.who];
			if (g->idling && e.gen == g->idle_gen)
				bfq_switch(&s, e.who, now);
			break;
		}
		}
	}
	if (s.err) {
		rc = s.err;
		goto out;
	}

	out->nprocs = s.nr;
	for (unsigned i = 0; i < s.nr; i++) {
		struct reader *r = &s.r[i];
		struct ios_sim_proc *o = &out->proc[i];
		o->vm = r->vm;
		o->proc = r->idx;
		o->bytes = r->done_bytes;
		o->finish_ns = r->finish_ns;
		o->mb_s = r->finish_ns ? (double)r->done_bytes /
						 ((double)r->finish_ns / 1e9) / 1e6 :
					 0;
		out->bytes += r->done_bytes;
		if (r->finish_ns > out->elapsed_ns)
			out->elapsed_ns = r->finish_ns;
		if (r->done_bytes != p->bytes_per_proc) {
			rc = -EIO; /* a reader starved: cannot happen */
			goto out;
		}
	}
	out->aggregate_mb_s = out->elapsed_ns ?
				      (double)out->bytes /
					      ((double)out->elapsed_ns / 1e9) / 1e6 :
				      0;
	out->requests = s.requests;
	out->mistagged = s.mistagged;
	out->disk = s.ds.st;
	ios_sched_get_stats(s.sched, &out->sched);
	rc = 0;
out:
	ios_sched_free(s.sched);
	free(s.r);
	free(s.heap);
	return rc;
}
