/*
 * tests/unit/test_iosched.c - the block server's scheduling core: the disk
 * model's numbers (media rate, seek curve, rotation, read-ahead cache), the
 * schedulers' rules (deadline's elevator and FIFO expiry, anticipation that
 * waits, hits, gives up, and is broken by close requests or by streams that
 * think too long), back-pressure, and the simulated Fig. 7 experiment
 * (process-aware anticipation against deadline, the single-stream back end,
 * guest bfq, association error).
 */
#include "harness.h"

#include "iosched/disk.h"
#include "iosched/sched.h"
#include "iosched/sim.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define MS 1000000ull
#define US 1000ull

/* Checks lo <= v <= hi for a double, printing v if not. */
#define CHECK_RANGE(v, lo, hi)                                              \
	do {                                                                \
		double v_ = (v);                                            \
		if (!(v_ >= (lo) && v_ <= (hi)))                            \
			af_test_fail(__FILE__, __LINE__,                    \
				     "%s = %.4f not in [%.4f, %.4f]", #v, v_, \
				     (double)(lo), (double)(hi));           \
	} while (0)

static void default_disk(struct ios_disk *d)
{
	struct ios_disk_params p;
	ios_disk_params_default(&p);
	CHECK_EQ(ios_disk_init(d, &p), 0);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* ---- disk model ---- */

TEST(disk_defaults_and_seek_curve)
{
	struct ios_disk d;
	default_disk(&d);
	/* The fit meets the three datasheet figures. */
	CHECK_RANGE(ios_disk_seek_ns(&d, 1) / 1e6, 0.999, 1.001);
	CHECK_RANGE(ios_disk_seek_ns(&d, d.cylinders - 1) / 1e6, 19.999, 20.001);
	CHECK_RANGE(ios_disk_mean_seek_ms(&d), 8.49, 8.51);
	CHECK(ios_disk_seek_ns(&d, 0) == 0);
	/* Monotone and continuous across the boundary. */
	double prev = 0;
	for (uint32_t c = 1; c < d.cylinders; c += 97) {
		double t = ios_disk_seek_ns(&d, c);
		CHECK(t >= prev);
		prev = t;
	}
	uint32_t b = (uint32_t)(d.seek_x0 * (d.cylinders - 1));
	CHECK_RANGE(ios_disk_seek_ns(&d, b + 1) - ios_disk_seek_ns(&d, b), 0,
		    2000);
	/* 7200 RPM, zoned media rate from 61.4 to 29.7 MB/s. */
	CHECK_RANGE(d.rot_ns, 8333333, 8333334);
	CHECK_RANGE(ios_disk_media_rate(&d, 0) / 1e6, 61.3, 61.5);
	CHECK_RANGE(ios_disk_media_rate(&d, d.p.capacity_sectors - 1) / 1e6,
		    29.6, 29.9);
	CHECK_RANGE(d.cylinders, 80000, 140000);
	CHECK_EQ(ios_disk_cyl(&d, 0), 0);
	CHECK_EQ(ios_disk_cyl(&d, d.p.capacity_sectors - 1), d.cylinders - 1);
}

/* A reader alone: 128 KiB synchronous reads with 0.1-0.5 ms between a
 * completion and the next request. Returns MB/s. */
static double lone_reader(const struct ios_disk *d, uint64_t start,
			  unsigned n, struct ios_disk_state *s)
{
	ios_disk_state_init(s);
	uint64_t t = 0, sec = start;
	struct ios_disk_result r;
	for (unsigned i = 0; i < n; i++) {
		struct ios_disk_io io = { sec, 256, 0 };
		CHECK_EQ(ios_disk_access(d, s, &io, t, &r), 0);
		t = r.done_ns + 100 * US + rnd() % (400 * US);
		sec += 256;
	}
	return (double)(sec - start) * 512 / ((double)t / 1e9) / 1e6;
}

TEST(disk_lone_sequential_reader_at_media_rate)
{
	struct ios_disk d;
	struct ios_disk_state s;
	default_disk(&d);
	/* Outer zone, and the middle of the disk. */
	uint64_t starts[2] = { 0, d.p.capacity_sectors / 2 };
	for (int k = 0; k < 2; k++) {
		double media = ios_disk_media_rate(&d, starts[k]) / 1e6;
		double got = lone_reader(&d, starts[k], 800, &s);
		CHECK_RANGE(got, 0.97 * media, 1.0 * media);
		/* Served from the prefetch, never by moving the head. */
		CHECK_EQ(s.st.misses, 1);
		CHECK_EQ(s.st.stream_hits, 799);
	}
}

TEST(disk_without_readahead_loses_a_revolution_per_request)
{
	struct ios_disk_params p;
	ios_disk_params_default(&p);
	p.readahead = 0;
	struct ios_disk d;
	struct ios_disk_state s;
	CHECK_EQ(ios_disk_init(&d, &p), 0);
	double got = lone_reader(&d, 0, 400, &s);
	/* Each request waits for the platter to come round: about
	 * 2.1 ms transfer + (8.33 - gap) ms, so 12-14 MB/s. */
	CHECK_RANGE(got, 10, 16);
	CHECK_EQ(s.st.misses, 400);
}

TEST(disk_random_reads_cost_average_seek_plus_half_turn)
{
	struct ios_disk d;
	struct ios_disk_state s;
	default_disk(&d);
	ios_disk_state_init(&s);
	const unsigned n = 40000;
	uint64_t t = 0;
	double seek = 0, rot = 0;
	struct ios_disk_result r;
	for (unsigned i = 0; i < n; i++) {
		struct ios_disk_io io = { rnd() % (d.p.capacity_sectors - 1), 1,
					  0 };
		CHECK_EQ(ios_disk_access(&d, &s, &io, t, &r), 0);
		seek += (double)r.seek_ns;
		rot += (double)r.rot_ns;
		t = r.done_ns;
	}
	/* Datasheet: 8.5 ms average seek, 4.17 ms average latency. */
	CHECK_RANGE(seek / n / 1e6, 8.5 * 0.97, 8.5 * 1.03);
	CHECK_RANGE(rot / n / 1e6, 4.17 * 0.96, 4.17 * 1.04);
	/* Whole access: overhead + seek + latency + one sector. */
	CHECK_RANGE((double)t / n / 1e6, 12.6, 13.6);
}

TEST(disk_cache_hit_and_write_invalidation)
{
	struct ios_disk d;
	struct ios_disk_state s;
	default_disk(&d);
	ios_disk_state_init(&s);
	struct ios_disk_result r;
	struct ios_disk_io a = { 1000000, 256, 0 }, far = { 50000000, 8, 0 };
	CHECK_EQ(ios_disk_access(&d, &s, &a, 0, &r), 0);
	CHECK_EQ(r.how, IOS_DISK_MEDIA);
	CHECK_EQ(ios_disk_access(&d, &s, &far, r.done_ns, &r), 0);
	CHECK_EQ(r.how, IOS_DISK_MEDIA);
	/* a is still in its segment: no head movement, bus speed. */
	uint64_t t = r.done_ns;
	CHECK_EQ(ios_disk_access(&d, &s, &a, t, &r), 0);
	CHECK_EQ(r.how, IOS_DISK_HIT);
	CHECK_RANGE((double)(r.done_ns - t) / 1e6, 1.3, 1.4); /* 128 KiB at 100 MB/s */
	/* A write over it drops it. */
	struct ios_disk_io w = { 1000100, 8, 1 };
	CHECK_EQ(ios_disk_access(&d, &s, &w, r.done_ns, &r), 0);
	CHECK_EQ(r.how, IOS_DISK_MEDIA);
	CHECK_EQ(ios_disk_access(&d, &s, &a, r.done_ns, &r), 0);
	CHECK_EQ(r.how, IOS_DISK_MEDIA);
}

TEST(disk_busy_drive_queues_and_none_model_is_instant)
{
	struct ios_disk d;
	struct ios_disk_state s;
	default_disk(&d);
	ios_disk_state_init(&s);
	struct ios_disk_result r1, r2;
	struct ios_disk_io io = { 5000000, 8, 0 };
	CHECK_EQ(ios_disk_access(&d, &s, &io, 0, &r1), 0);
	io.sector = 9000000;
	CHECK_EQ(ios_disk_access(&d, &s, &io, 0, &r2), 0);
	CHECK_EQ(r2.start_ns, r1.done_ns);

	struct ios_disk_params p;
	ios_disk_params_default(&p);
	p.kind = IOS_DISK_NONE;
	CHECK_EQ(ios_disk_init(&d, &p), 0);
	ios_disk_state_init(&s);
	CHECK_EQ(ios_disk_access(&d, &s, &io, 12345, &r1), 0);
	CHECK_EQ(r1.done_ns, 12345);
	CHECK_EQ(r1.how, IOS_DISK_NOWAIT);
}

TEST(disk_rejects_bad_input)
{
	struct ios_disk d;
	struct ios_disk_state s;
	default_disk(&d);
	ios_disk_state_init(&s);
	struct ios_disk_result r;
	struct ios_disk_io io = { d.p.capacity_sectors - 4, 8, 0 };
	CHECK_EQ(ios_disk_access(&d, &s, &io, 0, &r), -EINVAL);
	io.sector = UINT64_MAX - 2;
	CHECK_EQ(ios_disk_access(&d, &s, &io, 0, &r), -EINVAL);
	io.sector = 0;
	io.count = 0;
	CHECK_EQ(ios_disk_access(&d, &s, &io, 0, &r), -EINVAL);
	CHECK_EQ(s.busy_until, 0);

	struct ios_disk_params p;
	ios_disk_params_default(&p);
	p.seek_avg_ms = 19.5; /* no two-piece curve averages that */
	CHECK_EQ(ios_disk_init(&d, &p), -EINVAL);
	ios_disk_params_default(&p);
	p.media_inner_mb_s = 70; /* faster inside than outside */
	CHECK_EQ(ios_disk_init(&d, &p), -EINVAL);
	ios_disk_params_default(&p);
	p.rpm = NAN;
	CHECK_EQ(ios_disk_init(&d, &p), -EINVAL);
	ios_disk_params_default(&p);
	p.cache_segments = 0;
	CHECK_EQ(ios_disk_init(&d, &p), -EINVAL);
}

/* ---- schedulers ---- */

static struct ios_rq *add(struct ios_sched *s, uint32_t exp, uint32_t pid,
			  uint64_t sector, uint64_t now)
{
	struct ios_req_desc d = { .export_id = exp, .pid = pid,
				  .sector = sector, .count = 256 };
	struct ios_rq *rq = NULL;
	CHECK_EQ(ios_sched_add(s, &d, now, &rq), 0);
	return rq;
}

TEST(sched_names)
{
	for (unsigned k = 0; k < IOS_SCHED_COUNT; k++) {
		enum ios_sched_kind got;
		const char *n = ios_sched_name((enum ios_sched_kind)k);
		CHECK(n != NULL);
		CHECK_EQ(ios_sched_parse(n, &got), 0);
		CHECK_EQ(got, k);
	}
	enum ios_sched_kind got;
	CHECK_EQ(ios_sched_parse("cfq", &got), -1);
	CHECK(ios_sched_name((enum ios_sched_kind)99) == NULL);
	struct ios_sched *s;
	CHECK_EQ(ios_sched_new((enum ios_sched_kind)99, 4, NULL, &s), -EINVAL);
	CHECK_EQ(ios_sched_new(IOS_SCHED_NOOP, 0, NULL, &s), -EINVAL);
}

TEST(sched_full_queue_is_backpressure)
{
	for (unsigned k = 0; k < IOS_SCHED_COUNT; k++) {
		struct ios_sched *s;
		CHECK_EQ(ios_sched_new((enum ios_sched_kind)k, 4, NULL, &s), 0);
		for (unsigned i = 0; i < 4; i++)
			add(s, 0, i, 1000 * i, 0);
		struct ios_req_desc d = { .sector = 9, .count = 8 };
		CHECK_EQ(ios_sched_add(s, &d, 0, NULL), -EAGAIN);
		d.count = 0;
		CHECK_EQ(ios_sched_add(s, &d, 0, NULL), -EINVAL);
		CHECK_EQ(ios_sched_queued(s), 4);
		/* Drain; the timer (anticipation) may have to run out. */
		uint64_t now = 0;
		for (unsigned i = 0; i < 4; i++) {
			struct ios_rq *rq = ios_sched_dispatch(s, now);
			if (!rq) {
				uint64_t t = ios_sched_next_timer(s);
				CHECK(t != IOS_NO_TIMER);
				now = t;
				rq = ios_sched_dispatch(s, now);
			}
			CHECK(rq != NULL);
			CHECK_EQ(ios_sched_in_flight(s), 1);
			now += MS;
			ios_sched_complete(s, rq, now);
		}
		CHECK_EQ(ios_sched_queued(s), 0);
		CHECK_EQ(ios_sched_in_flight(s), 0);
		d.count = 8;
		CHECK_EQ(ios_sched_add(s, &d, now, NULL), 0);
		struct ios_sched_stats st;
		ios_sched_get_stats(s, &st);
		CHECK_EQ(st.rejected, 1);
		CHECK_EQ(st.completed, 4);
		ios_sched_free(s);
	}
}

TEST(noop_serves_in_arrival_order)
{
	struct ios_sched *s;
	CHECK_EQ(ios_sched_new(IOS_SCHED_NOOP, 8, NULL, &s), 0);
	uint64_t secs[4] = { 500, 100, 900, 300 };
	for (int i = 0; i < 4; i++)
		add(s, 0, 1, secs[i], 0);
	for (int i = 0; i < 4; i++) {
		struct ios_rq *rq = ios_sched_dispatch(s, 0);
		CHECK(rq != NULL);
		CHECK_EQ(rq->d.sector, secs[i]);
		ios_sched_complete(s, rq, 0);
	}
	CHECK(ios_sched_dispatch(s, 0) == NULL);
	ios_sched_free(s);
}

TEST(deadline_batches_follow_sector_order)
{
	struct ios_sched *s;
	CHECK_EQ(ios_sched_new(IOS_SCHED_DEADLINE, 8, NULL, &s), 0);
	add(s, 0, 1, 100, 0);
	add(s, 0, 1, 300, 0);
	add(s, 0, 1, 200, 0);
	uint64_t want[3] = { 100, 200, 300 }; /* not the FIFO's 100,300,200 */
	for (int i = 0; i < 3; i++) {
		struct ios_rq *rq = ios_sched_dispatch(s, 0);
		CHECK(rq != NULL);
		CHECK_EQ(rq->d.sector, want[i]);
		ios_sched_complete(s, rq, 0);
	}
	/* Reads before writes. */
	struct ios_req_desc w = { .sector = 50, .count = 8, .write = 1 };
	CHECK_EQ(ios_sched_add(s, &w, 0, NULL), 0);
	add(s, 0, 1, 60, 0);
	struct ios_rq *rq = ios_sched_dispatch(s, 0);
	CHECK_EQ(rq->d.write, 0);
	ios_sched_complete(s, rq, 0);
	ios_sched_free(s);
}

TEST(deadline_read_fifo_expiry)
{
	struct ios_sched *s;
	CHECK_EQ(ios_sched_new(IOS_SCHED_DEADLINE, 16, NULL, &s), 0);
	/* An elevator that always has a request further up, and one
	 * request (X, at sector 0) behind the head. */
	uint64_t next = 1000000;
	add(s, 0, 1, next, 0);
	add(s, 0, 1, next + 1000, 0);
	struct ios_rq *x = add(s, 0, 2, 0, 1 * MS);
	uint64_t now = 1 * MS, served_x = 0;
	for (int i = 0; i < 200 && !served_x; i++) {
		struct ios_rq *rq = ios_sched_dispatch(s, now);
		CHECK(rq != NULL);
		if (rq == x)
			served_x = now;
		now += 10 * MS; /* each request takes 10 ms */
		ios_sched_complete(s, rq, now);
		next += 1000;
		add(s, 0, 1, next + 1000, now);
	}
	/* X waited out its 500 ms, then went at the next batch start:
	 * batches of 16 requests of 10 ms start at 1, 161, 321, 481 and
	 * 641 ms. */
	CHECK_EQ(served_x, 641 * MS);
	struct ios_sched_stats st;
	ios_sched_get_stats(s, &st);
	CHECK_EQ(st.fifo_expired, 1);
	ios_sched_free(s);
}

TEST(as_elevator_prefers_short_seeks_and_short_backward_ones)
{
	/* One stream (as-single) so that nothing is awaited: the order is
	 * the elevator's alone. */
	struct ios_sched *s;
	CHECK_EQ(ios_sched_new(IOS_SCHED_AS_SINGLE, 16, NULL, &s), 0);
	add(s, 0, 1, 10000000, 0);
	struct ios_rq *rq = ios_sched_dispatch(s, 0);
	CHECK_EQ(rq->d.sector, 10000000);
	ios_sched_complete(s, rq, MS);
	/* Head at 10000256: ahead 1999744 and 99744; behind by 10256
	 * (costed twice: 20512); behind by more than 512 MiB (last). */
	add(s, 0, 1, 12000000, MS);
	add(s, 0, 1, 10100000, MS);
	add(s, 0, 1, 9990000, MS);
	add(s, 0, 1, 100, MS);
	uint64_t want[4] = { 9990000, 10100000, 12000000, 100 };
	for (int i = 0; i < 4; i++) {
		rq = ios_sched_dispatch(s, MS);
		CHECK(rq != NULL);
		CHECK_EQ(rq->d.sector, want[i]);
		ios_sched_complete(s, rq, MS);
	}
	ios_sched_free(s);
}

TEST(as_read_fifo_expiry_bounds_the_wait)
{
	/* A streams without pause (2 ms per request, 0.2 ms think), so
	 * anticipation keeps the disk on A; B's one request must still go
	 * once it is older than read_expire (125 ms), looked at no more
	 * than once per 125 ms. */
	struct ios_sched *s;
	CHECK_EQ(ios_sched_new(IOS_SCHED_AS_PROCESS, 16, NULL, &s), 0);
	add(s, 0, 1, 0, 0);
	struct ios_rq *b = add(s, 0, 2, 50000000, 0);
	uint64_t now = 0, sec = 256, served_b = 0;
	struct ios_rq *rq = ios_sched_dispatch(s, now);
	for (int i = 0; i < 1000; i++) {
		CHECK(rq != NULL && rq != b);
		now += 2 * MS;
		ios_sched_complete(s, rq, now);
		rq = ios_sched_dispatch(s, now);
		if (rq == b) {
			served_b = now;
			break;
		}
		CHECK(rq == NULL); /* waiting for A */
		now += 200 * US;
		add(s, 0, 1, sec, now);
		sec += 256;
		rq = ios_sched_dispatch(s, now);
	}
	CHECK(served_b > 125 * MS);
	CHECK(served_b <= 252 * MS);
	struct ios_sched_stats st;
	ios_sched_get_stats(s, &st);
	CHECK_EQ(st.fifo_expired, 1);
	ios_sched_free(s);
}

/* as-process: A (pid 1) reads at 0, B (pid 2) far away. */
TEST(as_anticipation_waits_hits_and_gives_up)
{
	struct ios_sched *s;
	CHECK_EQ(ios_sched_new(IOS_SCHED_AS_PROCESS, 16, NULL, &s), 0);
	add(s, 0, 1, 0, 0);
	struct ios_rq *b = add(s, 0, 2, 4000000, 0);
	struct ios_rq *rq = ios_sched_dispatch(s, 0);
	CHECK_EQ(rq->d.pid, 1);
	ios_sched_complete(s, rq, 2 * MS);
	/* B is queued, but A may come back: wait. */
	CHECK(ios_sched_dispatch(s, 2 * MS) == NULL);
	CHECK_EQ(ios_sched_next_timer(s), 8 * MS); /* 6 ms from completion */
	/* A's next request arrives in time and goes first. */
	add(s, 0, 1, 256, 2 * MS + 300 * US);
	rq = ios_sched_dispatch(s, 2 * MS + 300 * US);
	CHECK(rq != NULL && rq != b);
	CHECK_EQ(rq->d.sector, 256);
	ios_sched_complete(s, rq, 4 * MS);
	/* A does not come back: the wait runs out and B goes. */
	CHECK(ios_sched_dispatch(s, 4 * MS) == NULL);
	CHECK_EQ(ios_sched_next_timer(s), 10 * MS);
	CHECK(ios_sched_dispatch(s, 10 * MS - 1) == NULL);
	rq = ios_sched_dispatch(s, 10 * MS);
	CHECK(rq == b);
	ios_sched_complete(s, rq, 12 * MS);
	struct ios_sched_stats st;
	ios_sched_get_stats(s, &st);
	CHECK_EQ(st.antic_started, 2);
	CHECK_EQ(st.antic_hits, 1);
	CHECK_EQ(st.antic_timeouts, 1);
	ios_sched_free(s);
}

TEST(as_single_never_waits_for_the_other_reader)
{
	/* The paper's Xen back end: one stream, so the other reader's
	 * request always "belongs" to the awaited stream. */
	struct ios_sched *s;
	CHECK_EQ(ios_sched_new(IOS_SCHED_AS_SINGLE, 16, NULL, &s), 0);
	add(s, 0, 1, 0, 0);
	struct ios_rq *b = add(s, 1, 2, 4000000, 0);
	struct ios_rq *rq = ios_sched_dispatch(s, 0);
	ios_sched_complete(s, rq, 2 * MS);
	CHECK(ios_sched_dispatch(s, 2 * MS) == b);
	ios_sched_complete(s, b, 4 * MS);
	ios_sched_free(s);

	/* as-vm: same export is one stream, another export is not. */
	CHECK_EQ(ios_sched_new(IOS_SCHED_AS_VM, 16, NULL, &s), 0);
	add(s, 0, 1, 0, 0);
	struct ios_rq *same = add(s, 0, 2, 4000000, 0);
	rq = ios_sched_dispatch(s, 0);
	CHECK_EQ(rq->d.pid, 1);
	ios_sched_complete(s, rq, 2 * MS);
	CHECK(ios_sched_dispatch(s, 2 * MS) == same);
	ios_sched_complete(s, same, 4 * MS);
	add(s, 1, 2, 8000000, 4 * MS);
	/* The stream of export 0 is anticipated; export 1 waits. */
	CHECK(ios_sched_dispatch(s, 4 * MS) == NULL);
	ios_sched_free(s);
}

TEST(as_close_request_breaks_anticipation)
{
	struct ios_sched *s;
	CHECK_EQ(ios_sched_new(IOS_SCHED_AS_PROCESS, 16, NULL, &s), 0);
	add(s, 0, 1, 1000, 0);
	struct ios_rq *rq = ios_sched_dispatch(s, 0);
	ios_sched_complete(s, rq, 2 * MS);
	CHECK(ios_sched_dispatch(s, 2 * MS) == NULL); /* nothing queued */
	/* Another process's read right where the head is (sector 1256):
	 * as good as A's own, so it goes at once. */
	struct ios_rq *c = add(s, 0, 3, 1256 + 16, 2 * MS + 100 * US);
	CHECK(ios_sched_dispatch(s, 2 * MS + 100 * US) == c);
	ios_sched_complete(s, c, 3 * MS);
	struct ios_sched_stats st;
	ios_sched_get_stats(s, &st);
	CHECK_EQ(st.antic_broken, 0); /* it was not waiting yet */
	/* Now waiting on pid 3; a far request from pid 1 does not break
	 * it, a close one from pid 1 does. */
	CHECK(ios_sched_dispatch(s, 3 * MS) == NULL);
	struct ios_rq *far = add(s, 0, 1, 9000000, 3 * MS + 100 * US);
	CHECK(ios_sched_dispatch(s, 3 * MS + 100 * US) == NULL);
	struct ios_rq *near = add(s, 0, 1, 1256 + 272 + 8, 3 * MS + 200 * US);
	rq = ios_sched_dispatch(s, 3 * MS + 200 * US);
	CHECK(rq == near);
	ios_sched_get_stats(s, &st);
	CHECK_EQ(st.antic_broken, 1);
	ios_sched_complete(s, rq, 4 * MS);
	(void)far;
	ios_sched_free(s);
}

TEST(as_does_not_wait_for_a_stream_that_thinks_too_long)
{
	struct ios_sched *s;
	CHECK_EQ(ios_sched_new(IOS_SCHED_AS_PROCESS, 16, NULL, &s), 0);
	/* A reads alone, thinking 15 ms after each completion. */
	uint64_t now = 0, sec = 0;
	for (int i = 0; i < 8; i++) {
		add(s, 0, 1, sec, now);
		struct ios_rq *rq = ios_sched_dispatch(s, now);
		CHECK(rq != NULL);
		now += 2 * MS;
		ios_sched_complete(s, rq, now);
		/* nothing else queued: the wait (if any) just runs out */
		CHECK(ios_sched_dispatch(s, now) == NULL);
		now += 15 * MS;
		sec += 256;
	}
	/* Mean think time is now above antic_expire: B goes at once. */
	add(s, 0, 1, sec, now);
	struct ios_rq *rq = ios_sched_dispatch(s, now);
	struct ios_rq *b = add(s, 0, 2, 9000000, now);
	now += 2 * MS;
	ios_sched_complete(s, rq, now);
	CHECK(ios_sched_dispatch(s, now) == b);
	ios_sched_complete(s, b, now + 2 * MS);
	ios_sched_free(s);
}

TEST(as_reuses_stream_slots_without_allocating)
{
	struct ios_sched_tunables t;
	ios_sched_tunables_default(IOS_SCHED_AS_PROCESS, &t);
	t.max_streams = 1; /* raised to slots + 2 = 4 */
	struct ios_sched *s;
	CHECK_EQ(ios_sched_new(IOS_SCHED_AS_PROCESS, 2, &t, &s), 0);
	uint64_t now = 0;
	for (uint32_t pid = 0; pid < 50; pid++) {
		add(s, pid % 3, pid, pid * 10000, now);
		struct ios_rq *rq = ios_sched_dispatch(s, now);
		if (!rq) {
			now = ios_sched_next_timer(s);
			rq = ios_sched_dispatch(s, now);
		}
		CHECK(rq != NULL);
		now += MS;
		ios_sched_complete(s, rq, now);
	}
	struct ios_sched_stats st;
	ios_sched_get_stats(s, &st);
	CHECK_EQ(st.completed, 50);
	CHECK(st.stream_evictions >= 45);
	ios_sched_free(s);
}

/* ---- the simulated Fig. 7 experiment ---- */

static double sim(unsigned vms, unsigned procs, enum ios_sched_kind k,
		  enum ios_guest_elv g, double assoc_error,
		  struct ios_sim_result *res)
{
	struct ios_sim_params p;
	ios_sim_params_default(&p);
	p.vms = vms;
	p.procs = procs;
	p.sched = k;
	p.guest = g;
	p.assoc_error = assoc_error;
	struct ios_sim_result local;
	if (!res)
		res = &local;
	CHECK_EQ(ios_sim_run(&p, res), 0);
	CHECK_EQ(res->bytes, (uint64_t)vms * procs * p.bytes_per_proc);
	return res->aggregate_mb_s;
}

static const unsigned fig7[3][2] = { { 1, 2 }, { 2, 1 }, { 2, 2 } };

TEST(sim_fig7_process_awareness)
{
	double lone = sim(1, 1, IOS_SCHED_DEADLINE, IOS_GUEST_NONE, 0, NULL);
	for (int c = 0; c < 3; c++) {
		unsigned v = fig7[c][0], pr = fig7[c][1];
		double dl = sim(v, pr, IOS_SCHED_DEADLINE, IOS_GUEST_NONE, 0, NULL);
		double single = sim(v, pr, IOS_SCHED_AS_SINGLE, IOS_GUEST_NONE,
				    0, NULL);
		double vmas = sim(v, pr, IOS_SCHED_AS_PROCESS, IOS_GUEST_NONE,
				  0, NULL);
		/* The goals. */
		CHECK_RANGE(vmas / dl, 2.5, 100);
		CHECK_RANGE(vmas / lone, 0.90, 1.0);
		CHECK_RANGE(single / dl, 0, 1.1);
		/* as-vm helps exactly when each VM has one reader. */
		double asvm = sim(v, pr, IOS_SCHED_AS_VM, IOS_GUEST_NONE, 0, NULL);
		if (pr == 1)
			CHECK_RANGE(asvm / vmas, 0.95, 1.05);
		else
			CHECK_RANGE(asvm / dl, 0, 1.1);
	}
}

TEST(sim_lone_reader_and_deadline_pair_match_the_disk_model)
{
	struct ios_sim_params p;
	ios_sim_params_default(&p);
	struct ios_disk d;
	CHECK_EQ(ios_disk_init(&d, &p.disk), 0);
	/* Alone: the outer zone's media rate. */
	double lone = sim(1, 1, IOS_SCHED_DEADLINE, IOS_GUEST_NONE, 0, NULL);
	CHECK_RANGE(lone, 0.98 * 61.4, 61.4);
	/* Two readers under deadline alternate, one request each; every
	 * request pays command overhead, the seek between the files (1 GiB
	 * apart), half a turn on average and its own transfer. */
	struct ios_sim_result r;
	double dl = sim(1, 2, IOS_SCHED_DEADLINE, IOS_GUEST_NONE, 0, &r);
	uint32_t dcyl = ios_disk_cyl(&d, (1ull << 30) / 512);
	double per_req_ms = p.disk.overhead_miss_ms +
			    ios_disk_seek_ns(&d, dcyl) / 1e6 +
			    d.rot_ns / 2e6 +
			    p.request_bytes / (ios_disk_media_rate(&d, 0) / 1e3);
	double expect = p.request_bytes / per_req_ms / 1e3;
	CHECK_RANGE(dl, 0.9 * expect, 1.1 * expect);
	/* That is about 15 MB/s; the paper measured about 8 on its own
	 * (unknown) disk and layout: see docs/iosched.md. */
	CHECK_RANGE(dl, 12, 18);
	/* Nearly every request moved the head. */
	CHECK_RANGE((double)r.disk.seeks / (double)r.requests, 0.98, 1.0);
}

TEST(sim_guest_bfq_helps_only_one_vm_two_procs)
{
	for (int c = 0; c < 3; c++) {
		unsigned v = fig7[c][0], pr = fig7[c][1];
		double dl = sim(v, pr, IOS_SCHED_DEADLINE, IOS_GUEST_NONE, 0, NULL);
		double mq = sim(v, pr, IOS_SCHED_DEADLINE, IOS_GUEST_MQ_DEADLINE,
				0, NULL);
		double bfq = sim(v, pr, IOS_SCHED_DEADLINE, IOS_GUEST_BFQ, 0, NULL);
		CHECK_RANGE(mq / dl, 0.999, 1.001);
		if (v == 1)
			CHECK_RANGE(bfq / dl, 2.5, 100);
		else
			CHECK_RANGE(bfq / dl, 0.85, 1.15);
	}
}

TEST(sim_association_error_costs_throughput)
{
	double dl = sim(1, 2, IOS_SCHED_DEADLINE, IOS_GUEST_NONE, 0, NULL);
	double clean = sim(1, 2, IOS_SCHED_AS_PROCESS, IOS_GUEST_NONE, 0, NULL);
	struct ios_sim_result r;
	double some = sim(1, 2, IOS_SCHED_AS_PROCESS, IOS_GUEST_NONE, 0.2, &r);
	double half = sim(1, 2, IOS_SCHED_AS_PROCESS, IOS_GUEST_NONE, 0.5, NULL);
	CHECK(r.mistagged > 0);
	CHECK_RANGE((double)r.mistagged / (double)r.requests, 0.17, 0.23);
	CHECK(some < clean);
	CHECK(half < some);
	CHECK(half > dl); /* still better than no anticipation */
}

TEST(sim_is_deterministic)
{
	struct ios_sim_result a, b;
	sim(2, 2, IOS_SCHED_AS_PROCESS, IOS_GUEST_BFQ, 0.1, &a);
	sim(2, 2, IOS_SCHED_AS_PROCESS, IOS_GUEST_BFQ, 0.1, &b);
	CHECK_EQ(a.elapsed_ns, b.elapsed_ns);
	CHECK_EQ(a.disk.seeks, b.disk.seeks);
	CHECK_EQ(a.sched.antic_hits, b.sched.antic_hits);
	for (unsigned i = 0; i < a.nprocs; i++)
		CHECK_EQ(a.proc[i].finish_ns, b.proc[i].finish_ns);
}

TEST(sim_rejects_bad_parameters)
{
	struct ios_sim_params p;
	struct ios_sim_result r;
	ios_sim_params_default(&p);
	p.vms = 0;
	CHECK_EQ(ios_sim_run(&p, &r), -EINVAL);
	ios_sim_params_default(&p);
	p.procs = IOS_SIM_MAX_PROCS + 1;
	CHECK_EQ(ios_sim_run(&p, &r), -EINVAL);
	ios_sim_params_default(&p);
	p.vms = 16;
	p.procs = 16; /* 256 files of 1 GiB on a 160 GB disk */
	CHECK_EQ(ios_sim_run(&p, &r), -EINVAL);
	ios_sim_params_default(&p);
	p.bytes_per_proc = 2ull << 30; /* longer than its file */
	CHECK_EQ(ios_sim_run(&p, &r), -EINVAL);
	ios_sim_params_default(&p);
	p.request_bytes = 1000; /* not whole sectors */
	CHECK_EQ(ios_sim_run(&p, &r), -EINVAL);
	ios_sim_params_default(&p);
	p.assoc_error = 1.5;
	CHECK_EQ(ios_sim_run(&p, &r), -EINVAL);
	ios_sim_params_default(&p);
	p.think_min_ns = 2 * MS;
	p.think_max_ns = 1 * MS;
	CHECK_EQ(ios_sim_run(&p, &r), -EINVAL);
	ios_sim_params_default(&p);
	p.disk.rpm = 0;
	CHECK_EQ(ios_sim_run(&p, &r), -EINVAL);
}

/* Random reads and writes from several exports and processes against a
 * depth-1 device: every request completes, none waits without bound, and
 * a full queue only ever refuses. */
TEST(sched_random_mix_completes_without_starvation)
{
	for (unsigned k = 0; k < IOS_SCHED_COUNT; k++) {
		struct ios_sched *s;
		CHECK_EQ(ios_sched_new((enum ios_sched_kind)k, 32, NULL, &s), 0);
		uint64_t now = 0, busy_until = 0, next_arrival = 0;
		uint64_t max_wait[2] = { 0, 0 };
		struct ios_rq *busy = NULL;
		unsigned added = 0;
		for (int step = 0; step < 400000; step++) {
			if (busy && now >= busy_until) {
				ios_sched_complete(s, busy, now);
				busy = NULL;
			}
			if (now >= next_arrival && added < 20000) {
				struct ios_req_desc d = {
					.export_id = (uint32_t)(rnd() % 3),
					.pid = rnd() % 8 ? (uint32_t)(rnd() % 6) :
							   IOS_PID_UNKNOWN,
					.sector = rnd() % 100000000,
					.count = 1 + (uint32_t)(rnd() % 256),
					.write = rnd() % 10 < 3,
				};
				int rc = ios_sched_add(s, &d, now, NULL);
				CHECK(rc == 0 || rc == -EAGAIN);
				added += rc == 0;
				next_arrival = now + rnd() % (4 * MS);
			}
			if (!busy) {
				busy = ios_sched_dispatch(s, now);
				if (busy) {
					uint64_t w = now - busy->arrival_ns;
					if (w > max_wait[busy->d.write])
						max_wait[busy->d.write] = w;
					busy_until = now + 100 * US + rnd() % (8 * MS);
				}
			}
			/* Advance to the next thing that can happen. */
			uint64_t t = added < 20000 ? next_arrival : UINT64_MAX;
			if (busy && busy_until < t)
				t = busy_until;
			uint64_t tm = ios_sched_next_timer(s);
			if (!busy && tm != IOS_NO_TIMER && tm < t)
				t = tm;
			if (t == UINT64_MAX)
				break;
			now = t > now ? t : now;
		}
		CHECK(busy == NULL);
		CHECK_EQ(ios_sched_queued(s), 0);
		struct ios_sched_stats st;
		ios_sched_get_stats(s, &st);
		CHECK_EQ(st.added, added);
		CHECK_EQ(st.completed, added);
		CHECK(added > 10000);
		/* The device is overloaded (4.1 ms per request against 2 ms
		 * between arrivals), so the queue stays full; expiry times
		 * still bound every wait (measured: reads at most 0.62 s,
		 * writes 1.1 s under deadline and 2.0 s under as, whose write
		 * batches are short and checked for expiry once per 250 ms).
		 * The bounds catch starvation, not small changes. */
		CHECK_RANGE(max_wait[0] / 1e9, 0, 2.0);
		CHECK_RANGE(max_wait[1] / 1e9, 0, k == IOS_SCHED_DEADLINE ? 8.0 : 4.0);
		ios_sched_free(s);
	}
}
