/*
 * tests/unit/test_blockserver_core.c - the block server's core
 * (blockserver/bs.h) without nbdkit: settings, export layout, data
 * integrity under concurrent readers and writers with every scheduler,
 * range checks, back-pressure, request tagging from association files, the
 * disk model's timing in real time, and the stats file.
 */
#include "harness.h"

#include "blockserver/bs.h"

#include <antfarm/assoc.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MiB (1u << 20)

/* Scratch files for one case. */
struct scratch {
	char dir[64];        /* temporary directory */
	char img[4][96];     /* DIR/img0.. */
	char assoc[2][96];   /* DIR/assoc0.. */
	char stats[96];      /* DIR/stats.json */
};

static void scratch_make(struct scratch *t, unsigned nimg, uint64_t size)
{
	strcpy(t->dir, "/tmp/af_test_bs_XXXXXX");
	CHECK(mkdtemp(t->dir) != NULL);
	for (unsigned i = 0; i < 4; i++)
		snprintf(t->img[i], sizeof(t->img[i]), "%s/img%u", t->dir, i);
	for (unsigned i = 0; i < 2; i++)
		snprintf(t->assoc[i], sizeof(t->assoc[i]), "%s/assoc%u", t->dir,
			 i);
	snprintf(t->stats, sizeof(t->stats), "%s/stats.json", t->dir);
	for (unsigned i = 0; i < nimg; i++) {
		int fd = open(t->img[i], O_RDWR | O_CREAT | O_TRUNC, 0644);
		CHECK(fd >= 0);
		CHECK(ftruncate(fd, (off_t)size) == 0);
		close(fd);
	}
}

static void scratch_clean(struct scratch *t)
{
	for (unsigned i = 0; i < 4; i++)
		unlink(t->img[i]);
	for (unsigned i = 0; i < 2; i++)
		unlink(t->assoc[i]);
	unlink(t->stats);
	rmdir(t->dir);
}

static void set(struct bs_config *c, const char *k, const char *v)
{
	char err[256] = "";
	int rc = bs_config_set(c, k, v, err, sizeof(err));
	if (rc)
		af_test_fail(__FILE__, __LINE__, "%s=%s: %s", k, v, err);
}

/* A server on nimg images of size bytes with the given extra settings
 * (NULL-terminated key, value pairs). */
static struct bs_server *serve(struct scratch *t, unsigned nimg,
			       const char *const *kv)
{
	struct bs_config c;
	bs_config_init(&c);
	for (unsigned i = 0; i < nimg; i++) {
		char name[16];
		snprintf(name, sizeof(name), "d%u", i);
		set(&c, "export", name);
		set(&c, "file", t->img[i]);
	}
	for (; kv && kv[0]; kv += 2)
		set(&c, kv[0], kv[1]);
	struct bs_server *s;
	char err[256] = "";
	int rc = bs_server_new(&c, &s, err, sizeof(err));
	bs_config_free(&c);
	if (rc)
		af_test_fail(__FILE__, __LINE__, "bs_server_new: %s", err);
	CHECK_EQ(bs_server_start(s), 0);
	return s;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Deterministic pattern: byte i of block b of writer w. */
static void fill(unsigned char *buf, size_t n, unsigned w, unsigned b,
		 unsigned round)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (w + 1) + 0x1234567ull * b +
		     round * 0x51ull;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
}

TEST(config_parsing)
{
	struct bs_config c;
	char err[256];
	bs_config_init(&c);
	CHECK_EQ(c.sched, IOS_SCHED_DEADLINE);
	CHECK_EQ(c.disk.kind, IOS_DISK_ROTATIONAL);
	CHECK_EQ(c.depth, 1);
	/* Per-export keys need an export first. */
	CHECK_EQ(bs_config_set(&c, "file", "/x", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "export") != NULL);
	CHECK_EQ(bs_config_set(&c, "export", "a", err, sizeof(err)), 0);
	CHECK_EQ(bs_config_set(&c, "export", "a", err, sizeof(err)), -EINVAL);
	CHECK_EQ(bs_config_set(&c, "export", "", err, sizeof(err)), -EINVAL);
	CHECK_EQ(bs_config_set(&c, "export", "has space", err, sizeof(err)),
		 -EINVAL);
	CHECK_EQ(bs_config_set(&c, "file", "", err, sizeof(err)), -EINVAL);
	CHECK_EQ(bs_config_set(&c, "vm", "12", err, sizeof(err)), 0);
	CHECK_EQ(c.exports[0].vm, 12);
	CHECK_EQ(bs_config_set(&c, "vm", "-1", err, sizeof(err)), -EINVAL);
	CHECK_EQ(bs_config_set(&c, "vm", "4294967295", err, sizeof(err)),
		 -EINVAL);
	CHECK_EQ(bs_config_set(&c, "at", "3G", err, sizeof(err)), 0);
	CHECK_EQ(c.exports[0].at, 3ull << 30);
	CHECK_EQ(bs_config_set(&c, "at", "100", err, sizeof(err)), -EINVAL);
	CHECK_EQ(bs_config_set(&c, "sched", "as-process", err, sizeof(err)), 0);
	CHECK_EQ(c.sched, IOS_SCHED_AS_PROCESS);
	CHECK_EQ(c.tun.read_expire_ns, 125000000ull);
	CHECK_EQ(bs_config_set(&c, "read-expire-ms", "40", err, sizeof(err)),
		 0);
	CHECK_EQ(bs_config_set(&c, "antic-expire-ms", "0", err, sizeof(err)),
		 0);
	CHECK_EQ(bs_config_set(&c, "read-expire-ms", "0", err, sizeof(err)),
		 -EINVAL);
	/* A later sched= keeps explicit settings, resets the others. */
	CHECK_EQ(bs_config_set(&c, "sched", "deadline", err, sizeof(err)), 0);
	CHECK_EQ(c.tun.read_expire_ns, 40000000ull);
	CHECK_EQ(c.tun.write_expire_ns, 5000000000ull);
	CHECK_EQ(c.tun.antic_expire_ns, 0);
	CHECK_EQ(bs_config_set(&c, "sched", "cfq", err, sizeof(err)), -EINVAL);
	CHECK_EQ(bs_config_set(&c, "disk", "none", err, sizeof(err)), 0);
	CHECK_EQ(c.disk.kind, IOS_DISK_NONE);
	CHECK_EQ(bs_config_set(&c, "disk", "ssd", err, sizeof(err)), -EINVAL);
	CHECK_EQ(bs_config_set(&c, "disk-rpm", "5400", err, sizeof(err)), 0);
	CHECK(c.disk.rpm == 5400.0);
	CHECK_EQ(bs_config_set(&c, "disk-rpm", "5e3", err, sizeof(err)),
		 -EINVAL);
	CHECK_EQ(bs_config_set(&c, "disk-seek-avg-ms", "9.5", err, sizeof(err)),
		 0);
	CHECK(c.disk.seek_avg_ms == 9.5);
	CHECK_EQ(bs_config_set(&c, "readahead", "off", err, sizeof(err)), 0);
	CHECK_EQ(c.disk.readahead, 0);
	CHECK_EQ(bs_config_set(&c, "depth", "0", err, sizeof(err)), -EINVAL);
	CHECK_EQ(bs_config_set(&c, "depth", "65", err, sizeof(err)), -EINVAL);
	CHECK_EQ(bs_config_set(&c, "queue", "8", err, sizeof(err)), 0);
	CHECK_EQ(bs_config_set(&c, "max-request", "128M", err, sizeof(err)),
		 -EINVAL);
	CHECK_EQ(bs_config_set(&c, "max-request", "1M", err, sizeof(err)), 0);
	CHECK_EQ(c.max_request, MiB);
	CHECK_EQ(bs_config_set(&c, "stride", "0", err, sizeof(err)), -EINVAL);
	CHECK_EQ(bs_config_set(&c, "assoc-use", "vcpu0", err, sizeof(err)), 0);
	CHECK_EQ(bs_config_set(&c, "bogus", "1", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "bogus") != NULL);
	bs_config_free(&c);
	bs_config_free(&c); /* twice is harmless */
	CHECK(strstr(bs_config_help(), "export=NAME") != NULL);
}

TEST(sizes_and_pids)
{
	uint64_t v;
	CHECK(bs_parse_size("0", &v) == 0 && v == 0);
	CHECK(bs_parse_size("512", &v) == 0 && v == 512);
	CHECK(bs_parse_size("4k", &v) == 0 && v == 4096);
	CHECK(bs_parse_size("2G", &v) == 0 && v == 2ull << 30);
	CHECK(bs_parse_size("1T", &v) == 0 && v == 1ull << 40);
	CHECK(bs_parse_size("", &v) == -1);
	CHECK(bs_parse_size("G", &v) == -1);
	CHECK(bs_parse_size("1GB", &v) == -1);
	CHECK(bs_parse_size("-1", &v) == -1);
	CHECK(bs_parse_size("99999999999999999999", &v) == -1);
	CHECK(bs_parse_size("17179869184G", &v) == -1);
	CHECK_EQ(bs_pid_of_serial(0), IOS_PID_UNKNOWN);
	CHECK_EQ(bs_pid_of_serial(1), 1);
	CHECK_EQ(bs_pid_of_serial(0xfffffffe), 0xfffffffe);
	CHECK_EQ(bs_pid_of_serial(0xffffffff), 1);
	CHECK(bs_pid_of_serial(UINT64_MAX) != IOS_PID_UNKNOWN);
	CHECK(bs_pid_of_serial(UINT64_MAX) != 0);
}

TEST(server_setup_errors)
{
	struct scratch t;
	scratch_make(&t, 1, MiB);
	struct bs_config c;
	struct bs_server *s;
	char err[256];

	bs_config_init(&c);
	CHECK_EQ(bs_server_new(&c, &s, err, sizeof(err)), -EINVAL);
	set(&c, "export", "a");
	CHECK_EQ(bs_server_new(&c, &s, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "file") != NULL);
	set(&c, "file", "/nonexistent/img");
	CHECK_EQ(bs_server_new(&c, &s, err, sizeof(err)), -ENOENT);
	bs_config_free(&c);

	/* An empty image, a directory. */
	bs_config_init(&c);
	set(&c, "export", "a");
	set(&c, "file", t.img[1]);
	int fd = open(t.img[1], O_RDWR | O_CREAT, 0644);
	close(fd);
	CHECK_EQ(bs_server_new(&c, &s, err, sizeof(err)), -EINVAL);
	bs_config_free(&c);
	bs_config_init(&c);
	set(&c, "export", "a");
	set(&c, "file", t.dir);
	CHECK(bs_server_new(&c, &s, err, sizeof(err)) < 0);
	bs_config_free(&c);

	/* Past the end of the modelled disk. */
	bs_config_init(&c);
	set(&c, "export", "a");
	set(&c, "file", t.img[0]);
	set(&c, "at", "159G");
	set(&c, "disk-capacity", "159G");
	CHECK_EQ(bs_server_new(&c, &s, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "disk") != NULL);
	bs_config_free(&c);

	/* Inconsistent seek figures. */
	bs_config_init(&c);
	set(&c, "export", "a");
	set(&c, "file", t.img[0]);
	set(&c, "disk-seek-avg-ms", "30");
	CHECK_EQ(bs_server_new(&c, &s, err, sizeof(err)), -EINVAL);
	bs_config_free(&c);
	scratch_clean(&t);
}

TEST(layout_and_lookup)
{
	struct scratch t;
	scratch_make(&t, 3, 3 * MiB);
	struct bs_config c;
	bs_config_init(&c);
	set(&c, "export", "first");
	set(&c, "file", t.img[0]);
	set(&c, "export", "second");
	set(&c, "file", t.img[1]);
	set(&c, "vm", "7");
	set(&c, "export", "third");
	set(&c, "file", t.img[2]);
	set(&c, "at", "100G");
	set(&c, "stats", t.stats);
	struct bs_server *s;
	char err[256];
	CHECK_EQ(bs_server_new(&c, &s, err, sizeof(err)), 0);
	bs_config_free(&c);
	CHECK_EQ(bs_export_count(s), 3);
	CHECK_EQ(bs_find_export(s, "second"), 1);
	CHECK_EQ(bs_find_export(s, ""), 0);
	CHECK_EQ(bs_find_export(s, "fourth"), -ENOENT);
	CHECK_EQ(bs_export_vm(s, 0), 0);
	CHECK_EQ(bs_export_vm(s, 1), 7);
	CHECK_EQ(bs_export_vm(s, 2), 2);
	CHECK_EQ(bs_export_size(s, 2), 3 * MiB);
	CHECK(bs_export_writable(s, 0));
	CHECK(bs_disk_rotational(s));
	CHECK_EQ(bs_max_request(s), BS_DEFAULT_MAX_REQUEST);
	/* Not started: requests are refused. */
	char b[512];
	CHECK_EQ(bs_read(s, 0, b, sizeof(b), 0), -ESHUTDOWN);
	CHECK_EQ(bs_server_start(s), 0);
	CHECK_EQ(bs_read(s, 2, b, sizeof(b), 0), 0);
	CHECK_EQ(bs_server_stop(s), 0);
	CHECK_EQ(bs_read(s, 2, b, sizeof(b), 0), -ESHUTDOWN);
	/* Placement: position * 1 GiB, or at=. */
	char js[4096] = "";
	FILE *f = fopen(t.stats, "r");
	CHECK(f != NULL);
	size_t n = fread(js, 1, sizeof(js) - 1, f);
	fclose(f);
	js[n] = 0;
	CHECK(strstr(js, "\"name\":\"second\",\"vm\":7,\"size\":3145728,"
			 "\"at\":1073741824,") != NULL);
	CHECK(strstr(js, "\"name\":\"third\",\"vm\":2,\"size\":3145728,"
			 "\"at\":107374182400,\"reads\":1,") != NULL);
	CHECK(strstr(js, "\"tags\":[{\"vm\":2,\"pid\":null,\"requests\":1}]") !=
	      NULL);
	CHECK(js[n - 1] == '\n');
	bs_server_free(s);
	scratch_clean(&t);
}

TEST(range_checks)
{
	struct scratch t;
	scratch_make(&t, 1, MiB);
	static const char *const kv[] = { "disk", "none", "max-request", "64K",
					  NULL };
	struct bs_server *s = serve(&t, 1, kv);
	static unsigned char b[128 * 1024];
	CHECK_EQ(bs_read(s, 0, b, 512, MiB - 512), 0);
	CHECK_EQ(bs_read(s, 0, b, 1, MiB - 1), 0);
	CHECK_EQ(bs_read(s, 0, b, 512, MiB - 511), -EINVAL);
	CHECK_EQ(bs_read(s, 0, b, 512, MiB), -EINVAL);
	CHECK_EQ(bs_read(s, 0, b, 512, UINT64_MAX - 100), -EINVAL);
	CHECK_EQ(bs_write(s, 0, b, 512, MiB - 256, 0), -ENOSPC);
	CHECK_EQ(bs_write(s, 0, b, 512, UINT64_MAX, 0), -ENOSPC);
	CHECK_EQ(bs_read(s, 0, b, 0, 0), -EINVAL);
	CHECK_EQ(bs_read(s, 0, b, 64 * 1024, 0), 0);
	CHECK_EQ(bs_read(s, 0, b, 64 * 1024 + 1, 0), -EINVAL);
	CHECK_EQ(bs_write(s, 0, b, 64 * 1024 + 1, 0, 0), -EINVAL);
	CHECK_EQ(bs_read(s, 1, b, 512, 0), -EINVAL);
	CHECK_EQ(bs_flush(s, 1), -EINVAL);
	CHECK_EQ(bs_flush(s, 0), 0);
	struct bs_export_stats es;
	bs_get_export_stats(s, 0, &es);
	CHECK_EQ(es.errors, 8);
	CHECK_EQ(es.reads, 3);
	CHECK_EQ(es.flushes, 1);
	bs_server_free(s);
	scratch_clean(&t);
}

/* ---- integrity under concurrency ---- */

#define THREADS 6
#define BLOCKS 24
#define BLOCK (16 * 1024)

/* One worker of the integrity case. */
struct worker {
	struct bs_server *s;  /* server */
	unsigned id;          /* 0..THREADS-1 */
	unsigned export_idx;  /* its export */
	uint64_t base;        /* its region in the export */
	unsigned bad;         /* mismatches and failures */
};

/* Each worker owns a region: writes a round of blocks (odd sizes and
 * unaligned offsets included), reads them back in another order, and
 * checks; three rounds. */
static void *work(void *p)
{
	struct worker *w = p;
	static __thread unsigned char buf[BLOCK + 1000], chk[BLOCK + 1000];
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned b = 0; b < BLOCKS; b++) {
			uint32_t len = BLOCK - (b % 3) * 333;
			uint64_t off = w->base + (uint64_t)b * (BLOCK + 1000) +
				       (b % 5) * 7;
			fill(buf, len, w->id, b, round);
			if (bs_write(w->s, w->export_idx, buf, len, off,
				     b % 4 == 0))
				w->bad++;
		}
		if (bs_flush(w->s, w->export_idx))
			w->bad++;
		for (unsigned k = 0; k < BLOCKS; k++) {
			unsigned b = (k * 7 + round) % BLOCKS;
			uint32_t len = BLOCK - (b % 3) * 333;
			uint64_t off = w->base + (uint64_t)b * (BLOCK + 1000) +
				       (b % 5) * 7;
			fill(buf, len, w->id, b, round);
			if (bs_read(w->s, w->export_idx, chk, len, off) ||
			    memcmp(buf, chk, len))
				w->bad++;
		}
	}
	return NULL;
}

static void integrity_with(enum ios_sched_kind k, const char *disk)
{
	struct scratch t;
	scratch_make(&t, 2, 4 * MiB);
	const char *kv[] = { "sched", ios_sched_name(k), "disk", disk,
			     "queue", "4", NULL };
	struct bs_server *s = serve(&t, 2, kv);
	pthread_t th[THREADS];
	struct worker w[THREADS];
	for (unsigned i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .s = s, .id = i, .export_idx = i % 2,
					.base = (uint64_t)(i / 2) * MiB };
		CHECK(pthread_create(&th[i], NULL, work, &w[i]) == 0);
	}
	for (unsigned i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (unsigned i = 0; i < THREADS; i++)
		CHECK_EQ(w[i].bad, 0);
	struct bs_stats st;
	bs_get_stats(s, &st);
	CHECK_EQ(st.sched.added, st.sched.completed);
	CHECK_EQ(st.sched.added, (uint64_t)THREADS * 3 * 2 * BLOCKS);
	CHECK(st.queue_waits > 0); /* 6 threads, 4 slots */
	bs_server_free(s);

	/* The data is in the image files themselves. */
	for (unsigned i = 0; i < THREADS; i++) {
		int fd = open(t.img[i % 2], O_RDONLY);
		CHECK(fd >= 0);
		static unsigned char buf[BLOCK], chk[BLOCK];
		for (unsigned b = 0; b < BLOCKS; b++) {
			uint32_t len = BLOCK - (b % 3) * 333;
			uint64_t off = (uint64_t)(i / 2) * MiB +
				       (uint64_t)b * (BLOCK + 1000) + (b % 5) * 7;
			fill(buf, len, i, b, 2);
			CHECK(pread(fd, chk, len, (off_t)off) == (ssize_t)len);
			CHECK(memcmp(buf, chk, len) == 0);
		}
		close(fd);
	}
	scratch_clean(&t);
}

TEST(integrity_every_scheduler_no_delay)
{
	for (unsigned k = 0; k < IOS_SCHED_COUNT; k++)
		integrity_with((enum ios_sched_kind)k, "none");
}

TEST(integrity_rotational_anticipatory)
{
	integrity_with(IOS_SCHED_AS_PROCESS, "rotational");
}

/* ---- tagging ---- */

TEST(requests_are_tagged_from_the_association_file)
{
	struct scratch t;
	scratch_make(&t, 2, MiB);
	struct af_assoc *a0, *a1;
	CHECK_EQ(af_assoc_create(t.assoc[0], 2, &a0), 0);
	struct bs_config c;
	bs_config_init(&c);
	set(&c, "export", "d0");
	set(&c, "file", t.img[0]);
	set(&c, "vm", "3");
	set(&c, "assoc", t.assoc[0]);
	set(&c, "export", "d1");
	set(&c, "file", t.img[1]);
	set(&c, "vm", "4");
	set(&c, "assoc", t.assoc[1]); /* does not exist yet */
	set(&c, "disk", "none");
	struct bs_server *s;
	char err[256];
	CHECK_EQ(bs_server_new(&c, &s, err, sizeof(err)), 0);
	bs_config_free(&c);
	CHECK_EQ(bs_server_start(s), 0);
	char b[512];

	/* Nothing published, two vCPUs: unknown. */
	CHECK_EQ(bs_read(s, 0, b, 512, 0), 0);
	/* A vCPU's current space alone does not tag with 2 vCPUs... */
	CHECK_EQ(af_assoc_publish_vcpu(a0, 1, 0x5000, 5, 1), 0);
	CHECK_EQ(bs_read(s, 0, b, 512, 0), 0);
	/* ...a notification does. */
	CHECK_EQ(af_assoc_publish_notify(a0, 1, 2), 0);
	CHECK_EQ(bs_read(s, 0, b, 512, 0), 0);
	CHECK_EQ(bs_read(s, 0, b, 512, 0), 0);
	CHECK_EQ(af_assoc_publish_vcpu(a0, 0, 0x9000, 9, 3), 0);
	CHECK_EQ(af_assoc_publish_notify(a0, 0, 4), 0);
	CHECK_EQ(bs_write(s, 0, b, 512, 0, 0), 0);
	/* A notification from a vCPU in no address space: unknown. */
	CHECK_EQ(af_assoc_publish_notify_as(a0, 0, AF_ASID_NONE, 0, 5), 0);
	CHECK_EQ(bs_read(s, 0, b, 512, 0), 0);

	/* The other VM's file appears (1 vCPU: its current space counts
	 * without a notification); it is mapped on a later request, at
	 * most 100 ms after the last attempt. */
	CHECK_EQ(bs_read(s, 1, b, 512, 0), 0);
	CHECK_EQ(af_assoc_create(t.assoc[1], 1, &a1), 0);
	CHECK_EQ(af_assoc_publish_vcpu(a1, 0, 0x11000, 11, 1), 0);
	usleep(150 * 1000);
	CHECK_EQ(bs_read(s, 1, b, 512, 0), 0);

	struct bs_stats st;
	bs_get_stats(s, &st);
	CHECK_EQ(st.assoc_maps, 2);
	CHECK_EQ(st.assoc_errors, 0);
	CHECK_EQ(st.assoc_unknown, 4);
	unsigned seen = 0;
	for (unsigned i = 0; i < st.n_tags; i++) {
		const struct bs_tag_count *g = &st.tags[i];
		if (g->vm == 3 && g->pid == IOS_PID_UNKNOWN) {
			CHECK_EQ(g->requests, 3);
			seen |= 1;
		} else if (g->vm == 3 && g->pid == 5) {
			CHECK_EQ(g->requests, 2);
			seen |= 2;
		} else if (g->vm == 3 && g->pid == 9) {
			CHECK_EQ(g->requests, 1);
			seen |= 4;
		} else if (g->vm == 4 && g->pid == IOS_PID_UNKNOWN) {
			CHECK_EQ(g->requests, 1);
			seen |= 8;
		} else if (g->vm == 4 && g->pid == 11) {
			CHECK_EQ(g->requests, 1);
			seen |= 16;
		} else {
			af_test_fail(__FILE__, __LINE__, "unexpected tag %u/%u",
				     g->vm, g->pid);
		}
	}
	CHECK_EQ(seen, 31);

	/* A damaged file (here: a slot stuck mid-write) is counted, the
	 * request still served, untagged. */
	int fd = open(t.assoc[0], O_WRONLY);
	uint64_t odd = 3;
	CHECK(pwrite(fd, &odd, 8, AF_ASSOC_NOTIFY_OFF) == 8);
	close(fd);
	CHECK_EQ(bs_read(s, 0, b, 512, 0), 0);
	bs_get_stats(s, &st);
	CHECK_EQ(st.assoc_errors, 1);
	CHECK_EQ(st.assoc_unknown, 5);
	af_assoc_free(a0);
	af_assoc_free(a1);
	bs_server_free(s);
	scratch_clean(&t);
}

/* ---- the disk model in real time ---- */

TEST(lone_sequential_reader_runs_near_the_media_rate)
{
	struct scratch t;
	scratch_make(&t, 1, 32 * MiB);
	struct bs_server *s = serve(&t, 1, NULL);
	static unsigned char b[128 * 1024];
	/* Warm the host's page cache so that only the model delays. */
	int fd = open(t.img[0], O_RDONLY);
	for (unsigned i = 0; i < 32 * MiB / sizeof(b); i++)
		CHECK(pread(fd, b, sizeof(b), (off_t)i * sizeof(b)) > 0);
	close(fd);
	double t0 = now_s();
	for (unsigned i = 0; i < 16 * MiB / sizeof(b); i++)
		CHECK_EQ(bs_read(s, 0, b, sizeof(b), (uint64_t)i * sizeof(b)),
			 0);
	double mb_s = 16.0 * MiB / (now_s() - t0) / 1e6;
	struct ios_disk disk;
	struct ios_disk_params p;
	ios_disk_params_default(&p);
	CHECK_EQ(ios_disk_init(&disk, &p), 0);
	double media = ios_disk_media_rate(&disk, 0) / 1e6;
	fprintf(stderr, "lone reader %.1f MB/s, media rate %.1f MB/s\n", mb_s,
		media);
	CHECK(mb_s <= media * 1.02);
	CHECK(mb_s >= media * 0.6);
	bs_server_free(s);

	/* Random one-sector reads pay seek and rotation: about 13 ms each
	 * on average over the whole disk; here within 32 MiB, so short
	 * seeks: at least a quarter turn on average. */
	s = serve(&t, 1, NULL);
	srand(3);
	t0 = now_s();
	for (unsigned i = 0; i < 40; i++)
		CHECK_EQ(bs_read(s, 0, b, 512,
				 (uint64_t)(rand() % (32 * 2048)) * 512),
			 0);
	double per = (now_s() - t0) / 40 * 1e3;
	fprintf(stderr, "random 512-byte reads: %.2f ms each\n", per);
	CHECK(per >= 2.5);
	CHECK(per <= 30);
	bs_server_free(s);

	/* disk=none: the model adds nothing. */
	static const char *const none[] = { "disk", "none", NULL };
	s = serve(&t, 1, none);
	t0 = now_s();
	for (unsigned i = 0; i < 16 * MiB / sizeof(b); i++)
		CHECK_EQ(bs_read(s, 0, b, sizeof(b), (uint64_t)i * sizeof(b)),
			 0);
	double fast = 16.0 * MiB / (now_s() - t0) / 1e6;
	fprintf(stderr, "disk=none: %.1f MB/s\n", fast);
	CHECK(fast > 2 * media);
	bs_server_free(s);
	scratch_clean(&t);
}
