/*
 * bench/replay_bench.c - how fast the engine re-infers from a trace.
 *
 * Usage: replay_bench TRACE [REPEATS]
 * Loads the trace into memory once (so disk speed is not measured), then
 * replays it REPEATS times (default 5) through af_replay with a sink that
 * only counts, and prints one JSON line: observations, records, the median
 * and best observations per second and ns per observation, and the peak
 * resident memory of the process (which includes the trace held in memory,
 * reported separately).
 */
#include <antfarm/antfarm.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct counts {
	uint64_t events; /* inferred events */
	uint64_t truth;  /* ground-truth records */
};

static void on_event(void *ctx, const struct af_event *ev)
{
	(void)ev;
	((struct counts *)ctx)->events++;
}

static void on_truth(void *ctx, const struct af_truth *t)
{
	(void)t;
	((struct counts *)ctx)->truth++;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	FILE *f;
	uint8_t *buf;
	long size;
	int reps = argc > 2 ? atoi(argv[2]) : 5;
	double secs[64];
	struct af_counters c = { 0 };
	struct counts n = { 0 };
	struct rusage ru;

	if (argc < 2 || reps < 1 || reps > 64) {
		fprintf(stderr, "usage: replay_bench TRACE [REPEATS<=64]\n");
		return 2;
	}
	f = fopen(argv[1], "rb");
	if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET)) {
		fprintf(stderr, "replay_bench: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	buf = malloc((size_t)size + 1);
	if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
		fprintf(stderr, "replay_bench: cannot read %s\n", argv[1]);
		return 1;
	}
	fclose(f);

	for (int i = 0; i < reps; i++) {
		struct af_trace_reader *r = NULL;
		struct af_replay_sink sink = { on_event, on_truth, &n };
		double t0;
		int rc = af_trace_reader_open_mem(buf, (size_t)size, &r);
		if (rc == 0) {
			n = (struct counts){ 0 };
			t0 = now_s();
			rc = af_replay(r, &sink, &c);
			secs[i] = now_s() - t0;
		}
		if (rc) {
			fprintf(stderr, "replay_bench: %s: %s\n", argv[1],
				r ? af_trace_reader_error(r) : strerror(-rc));
			return 1;
		}
		af_trace_reader_free(r);
	}
	qsort(secs, (size_t)reps, sizeof(secs[0]), cmp_d);
	getrusage(RUSAGE_SELF, &ru);
	{
		double med = secs[reps / 2], best = secs[0];
		double obs = (double)c.observations;
		printf("{\"trace\":\"%s\",\"trace_bytes\":%ld,\"observations\":%" PRIu64
		       ",\"events\":%" PRIu64 ",\"truth\":%" PRIu64
		       ",\"repeats\":%d,\"median_s\":%.4f,\"best_s\":%.4f"
		       ",\"obs_per_s_median\":%.0f,\"obs_per_s_best\":%.0f"
		       ",\"ns_per_obs_median\":%.2f,\"peak_rss_kib\":%ld"
		       ",\"trace_in_memory_kib\":%ld}\n",
		       argv[1], size, c.observations, n.events, n.truth, reps,
		       med, best, obs / med, obs / best, med * 1e9 / obs,
		       ru.ru_maxrss, size / 1024);
	}
	free(buf);
	return 0;
}
