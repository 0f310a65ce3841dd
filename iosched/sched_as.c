/*
 * iosched/sched_as.c - anticipatory scheduling (Iyer & Druschel, SOSP 2001)
 * with the semantics of Linux 2.6's block/as-iosched.c, in three variants
 * that differ only in what a "stream" (Linux: an io_context, a process) is:
 *   as-single   every request is one stream (the paper's Xen back end, which
 *               submitted all guests' I/O from one task);
 *   as-vm       one stream per export (guest disk);
 *   as-process  one stream per (export, guest process id) (the paper's VMAS;
 *               an unknown process id is one more stream per export).
 *
 * What is kept from as-iosched:
 *   - per direction a sector-sorted list and a FIFO (read_expire 125 ms,
 *     write_expire 250 ms, the FIFO looked at no more than once per expire
 *     interval); the next request is chosen as a one-way elevator that also
 *     takes backward seeks of up to MAXBACK sectors at twice their cost;
 *   - read and write batches (read_batch_expire 500 ms, write_batch_expire
 *     125 ms; while there are no writes a read batch never ends);
 *   - per stream, decayed averages (fixed point, 1.0 = 256, new sample
 *     weight 1/8) of think time (from the completion of its last read to
 *     its next read, counted only if it had nothing else in flight, capped
 *     at 20 ms) and of seek distance (from the end of its previous read,
 *     clamped against outliers), and the scheduler-wide means for streams
 *     without samples;
 *   - after dispatching a read, the scheduler anticipates that stream: when
 *     the read completes the timer starts (antic_expire, 6 ms), and until
 *     it fires only a request that "breaks" the anticipation is dispatched:
 *     one from the same stream; any request if that stream has others
 *     queued; a "close" read - within a window of 8192 sectors around the
 *     head that doubles with each ms waited (anything once 20 ms or
 *     antic_expire have passed), or nearer the head than the awaited
 *     stream's mean seek distance - which then also counts in the awaited
 *     stream's history, as a cooperating process's would; or any request
 *     if the awaited stream's mean think time exceeds antic_expire.
 * These follow as-iosched as read in a Linux 2.6.17-era source (Xen 3.0's
 * driver domains, the paper's setting, ran 2.6.12-2.6.16; not compared line
 * by line). There a process's nr_dispatched counts requests handed to the
 * driver but not yet started; the device here starts what it is handed at
 * once, so that count is always zero and is not kept.
 * Left out: request merging; the adaptive write batch size (fixed at
 * write_batch_expire/10 requests); the heuristics for processes that exit
 * while awaited (streams here never exit, and for running processes those
 * heuristics never fire). A stream slot is reused, least recently used
 * first, only when all are taken.
 */
#include "iosched/sched.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { RD = 0, WR = 1 };
enum { ANTIC_OFF = 0, ANTIC_WAIT_REQ, ANTIC_WAIT_NEXT, ANTIC_FINISHED };

#define MAXBACK (1024u * 1024u)     /* sectors: 512 MiB of backward seek */
#define BACK_PENALTY 2u
#define MAX_THINKTIME_US 20000u     /* HZ/50 */
#define NO_STREAM UINT32_MAX
#define MS 1000000ull

/* One stream's history (Linux: struct as_io_context). */
struct as_stream {
	uint64_t key;              /* stream identity */
	int used;                  /* slot in use */
	uint32_t hnext;            /* next slot in its hash chain */
	uint64_t lru;              /* last use */
	unsigned nr_queued;        /* its requests waiting */
	unsigned nr_in_device;     /* its requests at the device */
	int iorunning;             /* a read of it has completed */
	int iostarted;             /* it has issued a read */
	uint64_t last_end_request; /* completion of its last read (ns) */
	uint64_t last_request_pos; /* end sector of its last read */
	uint64_t ttime_total;      /* decayed think time sum (us * 256) */
	uint64_t ttime_samples;    /* decayed sample count (* 256) */
	uint64_t ttime_mean;       /* mean think time (us) */
	uint64_t seek_total;       /* decayed seek distance sum (* 256) */
	uint64_t seek_samples;     /* decayed sample count (* 256) */
	uint64_t seek_mean;        /* mean seek distance (sectors) */
};

/* The scheduler's state (Linux: struct as_data). */
struct as_data {
	struct ios_link sort[2];        /* queued, by sector */
	struct ios_link fifo[2];        /* queued, by arrival */
	struct ios_rq *next_rq[2];      /* elevator's choice per direction */
	uint64_t last_sector[2];        /* end of last dispatched, per dir */
	uint64_t last_check_fifo[2];    /* last FIFO look (ns) */
	int batch_dir;                  /* current batch: RD or WR */
	int changed_batch;              /* switching, waiting for drain */
	int new_batch;                  /* first request of a read batch */
	uint64_t batch_expires;         /* end of the current batch (ns) */
	unsigned write_batch_count;     /* writes per write batch */
	unsigned current_write_count;   /* writes left in this batch */
	unsigned nr_dispatched;         /* at the device */
	int antic_status;               /* ANTIC_* */
	uint64_t antic_start;           /* when the awaited read completed */
	uint32_t io_stream;             /* stream anticipated, or NO_STREAM */
	int ioc_finished;               /* its last read has completed */
	uint64_t new_ttime_total;       /* think time of new streams (*256) */
	uint64_t new_ttime_mean;        /* ... mean (us) */
	uint64_t new_seek_total;        /* seek of new streams (*256) */
	uint64_t new_seek_mean;         /* ... mean (sectors) */
	struct as_stream *streams;      /* stream slots */
	uint32_t nstreams;              /* number of slots */
	uint32_t *buckets;              /* hash heads (slot or NO_STREAM) */
	uint32_t nbuckets;              /* power of two */
	uint32_t used_streams;          /* slots in use */
	uint64_t lru_clock;             /* for stream replacement */
};

/* ---- streams ---- */

static uint64_t stream_key(const struct ios_sched *s, const struct ios_rq *rq)
{
	switch (s->kind) {
	case IOS_SCHED_AS_VM:
		return rq->d.export_id;
	case IOS_SCHED_AS_PROCESS:
		return (uint64_t)rq->d.export_id << 32 | rq->d.pid;
	default:
		return 0;
	}
}

static uint32_t hash_key(uint64_t k, uint32_t nb)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (uint32_t)k & (nb - 1);
}

static void stream_unhash(struct as_data *ad, uint32_t i)
{
	uint32_t *pp = &ad->buckets[hash_key(ad->streams[i].key, ad->nbuckets)];
	while (*pp != NO_STREAM) {
		if (*pp == i) {
			*pp = ad->streams[i].hnext;
			return;
		}
		pp = &ad->streams[*pp].hnext;
	}
}

/* The stream slot for key, made (or reused) if there is none. */
static uint32_t stream_get(struct ios_sched *s, struct as_data *ad,
			   uint64_t key)
{
	uint32_t b = hash_key(key, ad->nbuckets);
	for (uint32_t i = ad->buckets[b]; i != NO_STREAM;
	     i = ad->streams[i].hnext)
		if (ad->streams[i].key == key) {
			ad->streams[i].lru = ++ad->lru_clock;
			return i;
		}
	uint32_t slot;
	if (ad->used_streams < ad->nstreams) {
		slot = ad->used_streams++;
	} else {
		/* Reuse the least recently used idle stream. There always
		 * is one: there are more slots than requests. */
		slot = NO_STREAM;
		for (uint32_t i = 0; i < ad->nstreams; i++) {
			const struct as_stream *st = &ad->streams[i];
			if (st->nr_queued || st->nr_in_device ||
			    i == ad->io_stream)
				continue;
			if (slot == NO_STREAM || st->lru < ad->streams[slot].lru)
				slot = i;
		}
		stream_unhash(ad, slot);
		s->st.stream_evictions++;
	}
	struct as_stream *st = &ad->streams[slot];
	memset(st, 0, sizeof(*st));
	st->used = 1;
	st->key = key;
	st->lru = ++ad->lru_clock;
	st->hnext = ad->buckets[b];
	ad->buckets[b] = slot;
	return slot;
}

/* ---- history (as_update_iohist) ---- */

static void update_thinktime(struct as_data *ad, struct as_stream *st,
			     uint64_t ttime_us)
{
	if (st->ttime_samples == 0) {
		ad->new_ttime_total = (7 * ad->new_ttime_total + 256 * ttime_us) / 8;
		ad->new_ttime_mean = ad->new_ttime_total / 256;
	}
	st->ttime_samples = (7 * st->ttime_samples + 256) / 8;
	st->ttime_total = (7 * st->ttime_total + 256 * ttime_us) / 8;
	st->ttime_mean = (st->ttime_total + 128) / st->ttime_samples;
}

static void update_seekdist(struct as_data *ad, struct as_stream *st,
			    uint64_t sdist)
{
	if (st->seek_samples == 0) {
		ad->new_seek_total = (7 * ad->new_seek_total + 256 * sdist) / 8;
		ad->new_seek_mean = ad->new_seek_total / 256;
	}
	/* Keep the odd far jump from swamping the mean. */
	uint64_t cap = st->seek_samples <= 60 ?
			       st->seek_mean * 4 + 2 * 1024 * 1024 :
			       st->seek_mean * 4 + 2 * 1024 * 64;
	if (sdist > cap)
		sdist = cap;
	st->seek_samples = (7 * st->seek_samples + 256) / 8;
	st->seek_total = (7 * st->seek_total + 256 * sdist) / 8;
	st->seek_mean = (st->seek_total + st->seek_samples / 2) /
			st->seek_samples;
}

static uint64_t dist(uint64_t a, uint64_t b)
{
	return a > b ? a - b : b - a;
}

static void update_iohist(struct as_data *ad, struct as_stream *st,
			  const struct ios_rq *rq, uint64_t now)
{
	if (rq->d.write)
		return;
	if (st->iorunning || st->iostarted) {
		uint64_t ttime = 0;
		/* Linux counts queued requests and those handed to the
		 * driver but not yet started; here the device starts what
		 * it is handed at once, so only the queued ones count. */
		if (st->iorunning && st->nr_queued == 0) {
			ttime = (now - st->last_end_request) / 1000;
			if (ttime > MAX_THINKTIME_US - 1)
				ttime = MAX_THINKTIME_US - 1;
		}
		update_thinktime(ad, st, ttime);
		update_seekdist(ad, st, dist(st->last_request_pos, rq->d.sector));
	}
	st->last_request_pos = rq->d.sector + rq->d.count;
	st->iostarted = 1;
}

/* ---- elevator ---- */

/* The better of two requests of one direction from where the head is. */
static struct ios_rq *choose_req(struct as_data *ad, struct ios_rq *r1,
				 struct ios_rq *r2)
{
	if (!r1 || r1 == r2)
		return r2;
	if (!r2)
		return r1;
	uint64_t last = ad->last_sector[r1->d.write ? WR : RD];
	uint64_t s1 = r1->d.sector, s2 = r2->d.sector, d1 = 0, d2 = 0;
	int w1 = 0, w2 = 0;
	if (s1 >= last)
		d1 = s1 - last;
	else if (s1 + MAXBACK >= last)
		d1 = (last - s1) * BACK_PENALTY;
	else
		w1 = 1;
	if (s2 >= last)
		d2 = s2 - last;
	else if (s2 + MAXBACK >= last)
		d2 = (last - s2) * BACK_PENALTY;
	else
		w2 = 1;
	if (!w1 && w2)
		return r1;
	if (!w2 && w1)
		return r2;
	if (w1 && w2)
		return s1 <= s2 ? r1 : r2; /* both behind: the lowest */
	if (d1 < d2)
		return r1;
	if (d2 < d1)
		return r2;
	return s1 >= s2 ? r1 : r2;
}

/* The request to serve after rq (which is about to leave). */
static struct ios_rq *find_next_rq(struct as_data *ad, struct ios_rq *rq)
{
	struct ios_link *head = &ad->sort[rq->d.write ? WR : RD];
	struct ios_rq *next = NULL, *prev = NULL;
	if (rq->sort.prev != head)
		prev = ios_rq_of_sort(rq->sort.prev);
	if (rq->sort.next != head)
		next = ios_rq_of_sort(rq->sort.next);
	else if (head->next != &rq->sort)
		next = ios_rq_of_sort(head->next); /* wrap to the lowest */
	return choose_req(ad, next, prev);
}

/* ---- anticipation ---- */

static int antic_expired(const struct ios_sched *s, const struct as_data *ad,
			 uint64_t now)
{
	return now - ad->antic_start >= s->t.antic_expire_ns;
}

/* The timer (checked whenever the scheduler is called). */
static void antic_check_timer(struct ios_sched *s, struct as_data *ad,
			      uint64_t now)
{
	if (ad->antic_status == ANTIC_WAIT_NEXT &&
	    now >= ad->antic_start + s->t.antic_expire_ns) {
		ad->antic_status = ANTIC_FINISHED;
		s->st.antic_timeouts++;
	}
}

static void antic_waitnext(struct ios_sched *s, struct as_data *ad)
{
	ad->antic_status = ANTIC_WAIT_NEXT;
	s->st.antic_started++;
}

static void antic_waitreq(struct ios_sched *s, struct as_data *ad)
{
	if (ad->antic_status == ANTIC_OFF) {
		if (ad->ioc_finished)
			antic_waitnext(s, ad);
		else
			ad->antic_status = ANTIC_WAIT_REQ;
	}
}

/* Ends a wait (the caller then dispatches). */
static void antic_stop(struct as_data *ad)
{
	if (ad->antic_status == ANTIC_WAIT_REQ ||
	    ad->antic_status == ANTIC_WAIT_NEXT)
		ad->antic_status = ANTIC_FINISHED;
}

/* Is rq (a read) "close": near where the head is (a window of 8192
 * sectors that doubles with each ms waited; anything after 20 ms or
 * antic_expire), or nearer than the awaited stream's mean seek? */
static int close_req(const struct ios_sched *s, const struct as_data *ad,
		     const struct as_stream *st, const struct ios_rq *rq,
		     uint64_t now)
{
	uint64_t delay_ms = 0;
	if (ad->antic_status != ANTIC_OFF && ad->ioc_finished)
		delay_ms = (now - ad->antic_start) / MS;
	uint64_t delta;
	if (delay_ms == 0)
		delta = 8192;
	else if (delay_ms <= 20 && delay_ms * MS <= s->t.antic_expire_ns)
		delta = 8192ull << delay_ms;
	else
		return 1;
	uint64_t last = ad->last_sector[ad->batch_dir];
	uint64_t next = rq->d.sector;
	if (last <= next + delta / 2 && next <= last + delta)
		return 1;
	uint64_t d = dist(last, next);
	if (st->seek_samples == 0)
		return ad->new_seek_mean > d; /* a new stream: use the mean */
	return st->seek_mean > d; /* better than what we expect of it */
}

/* Should anticipation of ad->io_stream stop for rq (which may be NULL:
 * nothing queued in the batch direction)? */
static int can_break(struct ios_sched *s, struct as_data *ad,
		     const struct ios_rq *rq, uint64_t now)
{
	struct as_stream *st = &ad->streams[ad->io_stream];
	if (rq && rq->stream == ad->io_stream)
		return 1; /* the awaited stream's own request */
	if (ad->ioc_finished && antic_expired(s, ad, now))
		return 1; /* the timer is due */
	if (st->nr_queued > 0)
		return 1; /* it has more work queued: nothing to wait for */
	if (rq && !rq->d.write && close_req(s, ad, st, rq, now)) {
		/* A close request from someone else: as good as ours. It
		 * counts in our history, as a cooperating process's would. */
		update_iohist(ad, st, rq, now);
		return 1;
	}
	uint64_t antic_us = s->t.antic_expire_ns / 1000;
	if (st->ttime_samples == 0) {
		if (ad->new_ttime_mean > antic_us)
			return 1;
	} else if (st->ttime_mean > antic_us) {
		return 1; /* it thinks too long between requests */
	}
	return 0;
}

static int can_anticipate(struct ios_sched *s, struct as_data *ad,
			  const struct ios_rq *rq, uint64_t now)
{
	if (ad->io_stream == NO_STREAM)
		return 0; /* the last request was a write */
	if (ad->antic_status == ANTIC_FINISHED)
		return 0; /* just finished waiting: run the next one */
	if (can_break(s, ad, rq, now))
		return 0;
	return 1;
}

/* ---- operations ---- */

static void as_free(struct ios_sched *s)
{
	struct as_data *ad = s->priv;
	if (ad) {
		free(ad->streams);
		free(ad->buckets);
		free(ad);
	}
	s->priv = NULL;
}

static int as_init(struct ios_sched *s)
{
	struct as_data *ad = calloc(1, sizeof(*ad));
	if (!ad)
		return -ENOMEM;
	s->priv = ad;
	for (int i = 0; i < 2; i++) {
		ios_list_init(&ad->sort[i]);
		ios_list_init(&ad->fifo[i]);
	}
	/* More stream slots than requests, so an idle one can be reused. */
	uint64_t n = s->t.max_streams;
	if (n < (uint64_t)s->max_requests + 2)
		n = (uint64_t)s->max_requests + 2;
	ad->nstreams = (uint32_t)n;
	ad->nbuckets = 1;
	while (ad->nbuckets < ad->nstreams)
		ad->nbuckets <<= 1;
	ad->streams = calloc(ad->nstreams, sizeof(*ad->streams));
	ad->buckets = malloc(ad->nbuckets * sizeof(*ad->buckets));
	if (!ad->streams || !ad->buckets) {
		as_free(s);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < ad->nbuckets; i++)
		ad->buckets[i] = NO_STREAM;
	ad->io_stream = NO_STREAM;
	ad->batch_dir = RD;
	ad->batch_expires = s->t.read_batch_expire_ns;
	ad->write_batch_count = (unsigned)(s->t.write_batch_expire_ns / MS / 10);
	if (ad->write_batch_count < 2)
		ad->write_batch_count = 2;
	return 0;
}

static void as_add(struct ios_sched *s, struct ios_rq *rq, uint64_t now)
{
	struct as_data *ad = s->priv;
	int dir = rq->d.write ? WR : RD;
	antic_check_timer(s, ad, now);
	rq->stream = stream_get(s, ad, stream_key(s, rq));
	struct as_stream *st = &ad->streams[rq->stream];
	update_iohist(ad, st, rq, now);
	st->nr_queued++;
	rq->expire_ns = now + (dir == WR ? s->t.write_expire_ns :
					   s->t.read_expire_ns);
	ios_sort_insert(&ad->sort[dir], rq);
	ios_list_add_tail(&ad->fifo[dir], &rq->fifo);

	/* as_update_rq: keep the elevator's choice, and see whether this is
	 * what we are waiting for. */
	ad->next_rq[dir] = choose_req(ad, rq, ad->next_rq[dir]);
	if ((ad->antic_status == ANTIC_WAIT_REQ ||
	     ad->antic_status == ANTIC_WAIT_NEXT) &&
	    can_break(s, ad, rq, now)) {
		if (rq->stream == ad->io_stream)
			s->st.antic_hits++;
		else
			s->st.antic_broken++;
		antic_stop(ad);
	}
}

/* Has the oldest request of dir passed its deadline? Looked at no more
 * than once per expire interval, as in Linux. */
static int fifo_expired(struct ios_sched *s, struct as_data *ad, int dir,
			uint64_t now)
{
	uint64_t expire = dir == WR ? s->t.write_expire_ns :
				      s->t.read_expire_ns;
	uint64_t delta = dist(now, ad->last_check_fifo[dir]);
	if (delta < expire)
		return 0;
	ad->last_check_fifo[dir] = now;
	if (ios_list_empty(&ad->fifo[dir]))
		return 0;
	return now > ios_rq_of_fifo(ad->fifo[dir].next)->expire_ns;
}

static int batch_expired(const struct as_data *ad, uint64_t now)
{
	if (ad->changed_batch || ad->new_batch)
		return 0;
	if (ad->batch_dir == RD)
		return now > ad->batch_expires;
	return now > ad->batch_expires || ad->current_write_count == 0;
}

static void move_to_dispatch(struct ios_sched *s, struct as_data *ad,
			     struct ios_rq *rq)
{
	int dir = rq->d.write ? WR : RD;
	(void)s;
	antic_stop(ad);
	ad->antic_status = ANTIC_OFF;
	ad->last_sector[dir] = rq->d.sector + rq->d.count;
	if (dir == RD) {
		ad->io_stream = rq->stream; /* in case we anticipate next */
	} else {
		ad->io_stream = NO_STREAM;
		if (ad->current_write_count)
			ad->current_write_count--;
	}
	ad->ioc_finished = 0;
	ad->next_rq[dir] = find_next_rq(ad, rq);
	ios_list_del(&rq->sort);
	ios_list_del(&rq->fifo);
	struct as_stream *st = &ad->streams[rq->stream];
	st->nr_queued--;
	st->nr_in_device++;
	ad->nr_dispatched++;
}

static struct ios_rq *as_dispatch(struct ios_sched *s, uint64_t now)
{
	struct as_data *ad = s->priv;
	antic_check_timer(s, ad, now);
	const int reads = !ios_list_empty(&ad->fifo[RD]);
	const int writes = !ios_list_empty(&ad->fifo[WR]);
	struct ios_rq *rq;

	if (!(reads || writes) || ad->antic_status == ANTIC_WAIT_REQ ||
	    ad->antic_status == ANTIC_WAIT_NEXT || ad->changed_batch)
		return NULL;

	if (!(reads && writes && batch_expired(ad, now))) {
		/* The batch goes on (or only one direction has work). */
		rq = ad->next_rq[ad->batch_dir];
		if (ad->batch_dir == RD && s->t.antic_expire_ns) {
			if (fifo_expired(s, ad, RD, now))
				goto expired;
			if (can_anticipate(s, ad, rq, now)) {
				antic_waitreq(s, ad);
				return NULL;
			}
		}
		if (rq) {
			if (reads && !writes)
				ad->batch_expires =
					now + s->t.read_batch_expire_ns;
			goto dispatch_request;
		}
	}

	/* Not running a batch: choose a direction. */
	if (reads) {
		if (writes && ad->batch_dir == RD)
			goto dispatch_writes; /* a read batch ended */
		if (ad->batch_dir == WR)
			ad->changed_batch = 1;
		ad->batch_dir = RD;
		rq = ios_rq_of_fifo(ad->fifo[RD].next);
		ad->last_check_fifo[RD] = now;
		goto dispatch_request;
	}
	if (writes) {
	dispatch_writes:
		if (ad->batch_dir == RD) {
			ad->changed_batch = 1;
			ad->new_batch = 0;
		}
		ad->batch_dir = WR;
		ad->current_write_count = ad->write_batch_count;
		rq = ad->next_rq[WR];
		if (!rq) /* not expected: next_rq follows every add */
			rq = ios_rq_of_fifo(ad->fifo[WR].next);
		goto dispatch_request;
	}
	return NULL;

dispatch_request:
	if (fifo_expired(s, ad, ad->batch_dir, now)) {
	expired:
		rq = ios_rq_of_fifo(ad->fifo[ad->batch_dir].next);
		s->st.fifo_expired++;
	}
	if (ad->changed_batch) {
		if (ad->nr_dispatched)
			return NULL; /* drain the other direction first */
		if (ad->batch_dir == WR)
			ad->batch_expires = now + s->t.write_batch_expire_ns;
		else
			ad->new_batch = 1;
		ad->changed_batch = 0;
	}
	move_to_dispatch(s, ad, rq);
	return rq;
}

static void as_complete(struct ios_sched *s, struct ios_rq *rq, uint64_t now)
{
	struct as_data *ad = s->priv;
	int dir = rq->d.write ? WR : RD;
	antic_check_timer(s, ad, now);
	if (ad->changed_batch && ad->nr_dispatched == 1) {
		ad->changed_batch = 0;
		if (ad->batch_dir == RD)
			ad->new_batch = 1;
	}
	if (ad->nr_dispatched)
		ad->nr_dispatched--;
	/* A batch counts from when its first request is served. */
	if (ad->new_batch && ad->batch_dir == dir) {
		ad->batch_expires = now + s->t.read_batch_expire_ns;
		ad->new_batch = 0;
	}
	if (ad->io_stream != NO_STREAM && rq->stream == ad->io_stream) {
		/* The awaited stream's read is done: the timer starts. */
		ad->antic_start = now;
		ad->ioc_finished = 1;
		if (ad->antic_status == ANTIC_WAIT_REQ)
			antic_waitnext(s, ad);
	}
	struct as_stream *st = &ad->streams[rq->stream];
	if (st->nr_in_device)
		st->nr_in_device--;
	if (dir == RD) {
		st->iorunning = 1;
		st->last_end_request = now;
	}
}

static uint64_t as_next_timer(const struct ios_sched *s)
{
	const struct as_data *ad = s->priv;
	if (ad->antic_status == ANTIC_WAIT_NEXT)
		return ad->antic_start + s->t.antic_expire_ns;
	return IOS_NO_TIMER;
}

const struct ios_sched_ops ios_as_ops = {
	.name = "as",
	.init = as_init,
	.add_request = as_add,
	.dispatch = as_dispatch,
	.complete = as_complete,
	.next_timer = as_next_timer,
	.free = as_free,
};
