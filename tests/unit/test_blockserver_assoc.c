/*
 * tests/unit/test_blockserver_assoc.c - the context-association file
 * (antfarm/assoc.h, lib/assoc/): layout, creation by rename, publish and
 * read, validation of damaged or foreign files, bounded reads and writes
 * against a stuck slot, and seqlock consistency under concurrent writers
 * and readers.
 */
#include "harness.h"

#include <antfarm/assoc.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A fresh directory per case; the file is DIR/assoc. */
struct tdir {
	char dir[64];   /* the directory */
	char path[96];  /* DIR/assoc */
};

static void tdir_make(struct tdir *t)
{
	strcpy(t->dir, "/tmp/af_test_assoc_XXXXXX");
	CHECK(mkdtemp(t->dir) != NULL);
	snprintf(t->path, sizeof(t->path), "%s/assoc", t->dir);
}

static unsigned tdir_entries(const struct tdir *t)
{
	DIR *d = opendir(t->dir);
	unsigned n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	if (d)
		closedir(d);
	return n;
}

static void tdir_clean(struct tdir *t)
{
	DIR *d = opendir(t->dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char p[400];
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", t->dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(t->dir);
}

/* Overwrites len bytes at off of the file (a foreign writer). */
static void poke(const char *path, size_t off, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, buf, len, (off_t)off) == (ssize_t)len);
	close(fd);
}

TEST(layout_is_fixed)
{
	CHECK_EQ(sizeof(struct af_assoc_hdr), 64);
	CHECK_EQ(sizeof(struct af_assoc_slot), AF_ASSOC_SLOT_BYTES);
	CHECK_EQ(offsetof(struct af_assoc_slot, seq), 0);
	CHECK_EQ(offsetof(struct af_assoc_slot, asid), 8);
	CHECK_EQ(offsetof(struct af_assoc_slot, serial), 16);
	CHECK_EQ(offsetof(struct af_assoc_slot, time_ns), 24);
	CHECK_EQ(offsetof(struct af_assoc_slot, count), 32);
	CHECK_EQ(offsetof(struct af_assoc_slot, vcpu), 40);
	CHECK_EQ(offsetof(struct af_assoc_hdr, n_vcpus), 20);
	CHECK(AF_ASSOC_VCPU_OFF + AF_ASSOC_MAX_VCPUS * AF_ASSOC_SLOT_BYTES <=
	      AF_ASSOC_FILE_BYTES);
}

TEST(create_map_publish_read)
{
	struct tdir t;
	tdir_make(&t);
	struct af_assoc *w, *r;
	CHECK_EQ(af_assoc_create(t.path, 4, &w), 0);
	struct stat st;
	CHECK(stat(t.path, &st) == 0);
	CHECK_EQ(st.st_size, AF_ASSOC_FILE_BYTES);
	CHECK_EQ(st.st_mode & 0777, 0644);
	CHECK_EQ(tdir_entries(&t), 1); /* no temporary left behind */

	CHECK_EQ(af_assoc_map(t.path, &r), 0);
	CHECK_EQ(af_assoc_vcpus(r), 4);
	struct af_assoc_entry e;
	CHECK_EQ(af_assoc_read_notify(r, &e), -ENOENT);
	for (unsigned v = 0; v < 4; v++)
		CHECK_EQ(af_assoc_read_vcpu(r, v, &e), -ENOENT);
	CHECK_EQ(af_assoc_read_vcpu(r, 4, &e), -EINVAL);

	CHECK_EQ(af_assoc_publish_vcpu(w, 2, 0x1234000, 17, 1000), 0);
	CHECK_EQ(af_assoc_read_vcpu(r, 2, &e), 0);
	CHECK_EQ(e.asid, 0x1234000);
	CHECK_EQ(e.serial, 17);
	CHECK_EQ(e.time_ns, 1000);
	CHECK_EQ(e.count, 1);
	CHECK_EQ(e.vcpu, 2);
	CHECK_EQ(af_assoc_publish_vcpu(w, 2, 0x5000, 18, 2000), 0);
	CHECK_EQ(af_assoc_read_vcpu(r, 2, &e), 0);
	CHECK_EQ(e.serial, 18);
	CHECK_EQ(e.count, 2);

	/* A notification copies the notifying vCPU's current space. */
	CHECK_EQ(af_assoc_publish_notify(w, 2, 3000), 0);
	CHECK_EQ(af_assoc_read_notify(r, &e), 0);
	CHECK_EQ(e.asid, 0x5000);
	CHECK_EQ(e.serial, 18);
	CHECK_EQ(e.time_ns, 3000);
	CHECK_EQ(e.vcpu, 2);
	CHECK_EQ(e.count, 1);
	/* From a vCPU with nothing published: "none", and -ENOENT. */
	CHECK_EQ(af_assoc_publish_notify(w, 1, 4000), -ENOENT);
	CHECK_EQ(af_assoc_read_notify(r, &e), 0);
	CHECK_EQ(e.asid, AF_ASID_NONE);
	CHECK_EQ(e.serial, 0);
	CHECK_EQ(e.vcpu, 1);
	CHECK_EQ(e.count, 2);
	CHECK_EQ(af_assoc_publish_notify_as(w, 3, 0x9000, 99, 5000), 0);
	CHECK_EQ(af_assoc_read_notify(r, &e), 0);
	CHECK_EQ(e.serial, 99);
	CHECK_EQ(e.vcpu, 3);

	/* Arguments. */
	CHECK_EQ(af_assoc_publish_vcpu(w, 4, 1, 1, 1), -EINVAL);
	CHECK_EQ(af_assoc_publish_notify(w, 64, 1), -EINVAL);
	CHECK_EQ(af_assoc_publish_notify_as(w, 4, 1, 1, 1), -EINVAL);
	CHECK_EQ(af_assoc_publish_vcpu(r, 0, 1, 1, 1), -EPERM);
	CHECK_EQ(af_assoc_publish_notify(r, 0, 1), -EPERM);

	/* A second writer attaches to the same file. */
	struct af_assoc *w2;
	CHECK_EQ(af_assoc_attach(t.path, &w2), 0);
	CHECK_EQ(af_assoc_publish_vcpu(w2, 0, 0x7000, 7, 6000), 0);
	CHECK_EQ(af_assoc_read_vcpu(r, 0, &e), 0);
	CHECK_EQ(e.serial, 7);
	af_assoc_free(w2);

	CHECK(af_assoc_now_ns() > 0);
	af_assoc_free(w);
	af_assoc_free(r);
	af_assoc_free(NULL);
	tdir_clean(&t);
}

TEST(create_rejects_bad_arguments)
{
	struct tdir t;
	tdir_make(&t);
	struct af_assoc *a = (struct af_assoc *)1;
	CHECK_EQ(af_assoc_create(t.path, 0, &a), -EINVAL);
	CHECK(a == NULL);
	CHECK_EQ(af_assoc_create(t.path, AF_ASSOC_MAX_VCPUS + 1, &a), -EINVAL);
	CHECK_EQ(af_assoc_create("", 1, &a), -EINVAL);
	CHECK_EQ(af_assoc_create("/nonexistent-dir/x/assoc", 1, &a), -ENOENT);
	CHECK_EQ(af_assoc_create(t.path, AF_ASSOC_MAX_VCPUS, &a), 0);
	CHECK_EQ(af_assoc_publish_vcpu(a, AF_ASSOC_MAX_VCPUS - 1, 1, 1, 1), 0);
	af_assoc_free(a);
	CHECK_EQ(tdir_entries(&t), 1);
	tdir_clean(&t);
}

TEST(replaced_file_is_noticed)
{
	struct tdir t;
	tdir_make(&t);
	struct af_assoc *w1, *w2, *r1, *r2;
	CHECK_EQ(af_assoc_create(t.path, 1, &w1), 0);
	CHECK_EQ(af_assoc_publish_vcpu(w1, 0, 0x1000, 1, 1), 0);
	CHECK_EQ(af_assoc_map(t.path, &r1), 0);
	CHECK_EQ(af_assoc_same_file(r1, t.path), 1);
	/* A restarted writer replaces the file; the old mapping stays
	 * valid (and keeps the old data) but is no longer the file. */
	CHECK_EQ(af_assoc_create(t.path, 2, &w2), 0);
	CHECK_EQ(af_assoc_same_file(r1, t.path), 0);
	struct af_assoc_entry e;
	CHECK_EQ(af_assoc_read_vcpu(r1, 0, &e), 0);
	CHECK_EQ(e.serial, 1);
	CHECK_EQ(af_assoc_map(t.path, &r2), 0);
	CHECK_EQ(af_assoc_vcpus(r2), 2);
	CHECK_EQ(af_assoc_read_vcpu(r2, 0, &e), -ENOENT);
	unlink(t.path);
	CHECK_EQ(af_assoc_same_file(r2, t.path), 0);
	af_assoc_free(w1);
	af_assoc_free(w2);
	af_assoc_free(r1);
	af_assoc_free(r2);
	tdir_clean(&t);
}

TEST(map_validates_the_file)
{
	struct tdir t;
	tdir_make(&t);
	struct af_assoc *a = (struct af_assoc *)1, *w;
	CHECK_EQ(af_assoc_map(t.path, &a), -ENOENT);
	CHECK(a == NULL);
	CHECK_EQ(af_assoc_map(t.dir, &a), -EBADMSG); /* a directory */
	CHECK_EQ(af_assoc_map("", &a), -EINVAL);

	/* Too short, all zero, random. */
	int fd = open(t.path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, AF_ASSOC_FILE_BYTES - 1) == 0);
	CHECK_EQ(af_assoc_map(t.path, &a), -EBADMSG);
	CHECK(ftruncate(fd, AF_ASSOC_FILE_BYTES) == 0);
	CHECK_EQ(af_assoc_map(t.path, &a), -EBADMSG);
	unsigned char junk[AF_ASSOC_FILE_BYTES];
	srand(7);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)rand();
	CHECK(pwrite(fd, junk, sizeof(junk), 0) == (ssize_t)sizeof(junk));
	CHECK_EQ(af_assoc_map(t.path, &a), -EBADMSG);
	CHECK_EQ(af_assoc_attach(t.path, &a), -EBADMSG);
	close(fd);

	/* A good header with one field wrong at a time. */
	static const struct {
		size_t off;    /* field offset */
		uint32_t val;  /* bad value */
	} bad[] = {
		{ offsetof(struct af_assoc_hdr, version), 2 },
		{ offsetof(struct af_assoc_hdr, file_bytes), 4096 },
		{ offsetof(struct af_assoc_hdr, slot_bytes), 32 },
		{ offsetof(struct af_assoc_hdr, n_vcpus), 0 },
		{ offsetof(struct af_assoc_hdr, n_vcpus), 65 },
		{ offsetof(struct af_assoc_hdr, n_vcpus), 0xffffffff },
		{ offsetof(struct af_assoc_hdr, notify_off), 128 },
		{ offsetof(struct af_assoc_hdr, vcpu_off), 64 },
		{ offsetof(struct af_assoc_hdr, magic), 0 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(af_assoc_create(t.path, 2, &w), 0);
		af_assoc_free(w);
		poke(t.path, bad[i].off, &bad[i].val, 4);
		CHECK_EQ(af_assoc_map(t.path, &a), -EBADMSG);
	}
	tdir_clean(&t);
}

TEST(reader_refuses_bad_slots)
{
	struct tdir t;
	tdir_make(&t);
	struct af_assoc *w, *r;
	struct af_assoc_entry e;
	CHECK_EQ(af_assoc_create(t.path, 2, &w), 0);
	CHECK_EQ(af_assoc_map(t.path, &r), 0);
	CHECK_EQ(af_assoc_publish_vcpu(w, 1, 0x2000, 2, 1), 0);
	CHECK_EQ(af_assoc_publish_notify(w, 1, 2), 0);

	/* A vCPU field that does not match the slot / is out of range. */
	uint32_t v = 0;
	poke(t.path, AF_ASSOC_VCPU_OFF + AF_ASSOC_SLOT_BYTES +
			     offsetof(struct af_assoc_slot, vcpu), &v, 4);
	CHECK_EQ(af_assoc_read_vcpu(r, 1, &e), -EBADMSG);
	v = 2;
	poke(t.path, AF_ASSOC_NOTIFY_OFF + offsetof(struct af_assoc_slot, vcpu),
	     &v, 4);
	CHECK_EQ(af_assoc_read_notify(r, &e), -EBADMSG);
	v = 0xffffffff;
	poke(t.path, AF_ASSOC_NOTIFY_OFF + offsetof(struct af_assoc_slot, vcpu),
	     &v, 4);
	CHECK_EQ(af_assoc_read_notify(r, &e), -EBADMSG);

	/* A slot stuck mid-write: reads give up, writers give up. */
	uint64_t odd = 5;
	poke(t.path, AF_ASSOC_VCPU_OFF, &odd, 8);
	CHECK_EQ(af_assoc_read_vcpu(r, 0, &e), -EAGAIN);
	CHECK_EQ(af_assoc_publish_vcpu(w, 0, 1, 1, 1), -EBUSY);
	CHECK_EQ(af_assoc_publish_notify(w, 0, 1), -EAGAIN);

	/* A header changed after mapping: nothing is trusted. */
	uint32_t n = 3;
	poke(t.path, offsetof(struct af_assoc_hdr, n_vcpus), &n, 4);
	CHECK_EQ(af_assoc_read_vcpu(r, 1, &e), -EBADMSG);
	CHECK_EQ(af_assoc_read_notify(r, &e), -EBADMSG);
	af_assoc_free(w);
	af_assoc_free(r);
	tdir_clean(&t);
}

/* ---- concurrency ---- */

#define WRITERS 2
#define READERS 2
#define PUBLISHES 200000u

/* Shared by the threads of the concurrency case. */
struct race {
	struct af_assoc *w;       /* writer handle */
	struct af_assoc *r;       /* reader handle */
	int done;                 /* writers finished */
	unsigned bad;             /* inconsistent copies seen */
	unsigned good;            /* consistent copies seen */
	unsigned backwards;       /* count went down */
	unsigned write_errors;    /* publish failures */
};

struct writer_arg {
	struct race *race; /* shared state */
	unsigned id;       /* 0..WRITERS-1 */
};

/* Each publish is self-checking: asid = serial * 4096 + id, time =
 * serial * 3; vCPU slot id and the shared notify slot. */
static void *writer(void *p)
{
	struct writer_arg *a = p;
	for (uint64_t k = 1; k <= PUBLISHES; k++) {
		uint64_t serial = k * WRITERS + a->id;
		if (af_assoc_publish_vcpu(a->race->w, a->id,
					  serial * 4096 + a->id, serial,
					  serial * 3) ||
		    af_assoc_publish_notify(a->race->w, a->id, serial * 3))
			__atomic_add_fetch(&a->race->write_errors, 1,
					   __ATOMIC_RELAXED);
	}
	return NULL;
}

static int consistent(const struct af_assoc_entry *e)
{
	return e->asid == e->serial * 4096 + e->vcpu &&
	       e->time_ns == e->serial * 3 && e->serial % WRITERS == e->vcpu;
}

static void *reader(void *p)
{
	struct race *r = p;
	uint64_t last_count = 0;
	while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE)) {
		struct af_assoc_entry e;
		int rc = af_assoc_read_notify(r->r, &e);
		if (rc == -ENOENT || rc == -EAGAIN)
			continue;
		if (rc || !consistent(&e)) {
			r->bad++;
			continue;
		}
		if (e.count < last_count)
			r->backwards++;
		last_count = e.count;
		rc = af_assoc_read_vcpu(r->r, (unsigned)(e.serial % WRITERS),
					&e);
		if (rc == 0 && !consistent(&e))
			r->bad++;
		r->good++;
	}
	return NULL;
}

TEST(seqlock_under_concurrency)
{
	struct tdir t;
	tdir_make(&t);
	struct race race;
	memset(&race, 0, sizeof(race));
	CHECK_EQ(af_assoc_create(t.path, WRITERS, &race.w), 0);
	CHECK_EQ(af_assoc_map(t.path, &race.r), 0);
	pthread_t wt[WRITERS], rt[READERS];
	struct writer_arg wa[WRITERS];
	struct race rr[READERS];
	for (unsigned i = 0; i < READERS; i++) {
		rr[i] = race;
		CHECK(pthread_create(&rt[i], NULL, reader, &rr[i]) == 0);
	}
	for (unsigned i = 0; i < WRITERS; i++) {
		wa[i].race = &race;
		wa[i].id = i;
		CHECK(pthread_create(&wt[i], NULL, writer, &wa[i]) == 0);
	}
	for (unsigned i = 0; i < WRITERS; i++)
		pthread_join(wt[i], NULL);
	for (unsigned i = 0; i < READERS; i++) {
		__atomic_store_n(&rr[i].done, 1, __ATOMIC_RELEASE);
		pthread_join(rt[i], NULL);
	}
	CHECK_EQ(race.write_errors, 0);
	unsigned good = 0;
	for (unsigned i = 0; i < READERS; i++) {
		CHECK_EQ(rr[i].bad, 0);
		CHECK_EQ(rr[i].backwards, 0);
		good += rr[i].good;
	}
	CHECK(good > 0);
	/* Writers excluded each other: no publish was lost. */
	struct af_assoc_entry e;
	CHECK_EQ(af_assoc_read_notify(race.r, &e), 0);
	CHECK_EQ(e.count, (uint64_t)WRITERS * PUBLISHES);
	for (unsigned i = 0; i < WRITERS; i++) {
		CHECK_EQ(af_assoc_read_vcpu(race.r, i, &e), 0);
		CHECK_EQ(e.count, PUBLISHES);
		CHECK_EQ(e.serial, (uint64_t)PUBLISHES * WRITERS + i);
	}
	af_assoc_free(race.w);
	af_assoc_free(race.r);
	tdir_clean(&t);
}
