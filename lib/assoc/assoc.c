/*
 * lib/assoc/assoc.c - the context-association file (antfarm/assoc.h):
 * creation by rename, read-only mapping with validation, and the seqlock
 * publish/read of its slots.
 */
#include <antfarm/assoc.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(struct af_assoc_hdr) == 64, "header is 64 bytes");
_Static_assert(sizeof(struct af_assoc_slot) == AF_ASSOC_SLOT_BYTES,
	       "slot is 64 bytes");
_Static_assert(AF_ASSOC_VCPU_OFF + AF_ASSOC_MAX_VCPUS * AF_ASSOC_SLOT_BYTES <=
		       AF_ASSOC_FILE_BYTES,
	       "slots fit the file");
_Static_assert(AF_ASSOC_MAX_VCPUS == AF_MAX_VCPUS, "one slot per vCPU");

/* A writer gives up claiming a slot after this many tries (a writer in the
 * same process died mid-write, or memory is corrupt); a reader after this
 * many inconsistent copies. */
#define WRITE_SPINS (1u << 22)
#define READ_TRIES 4096u

struct af_assoc {
	unsigned char *base; /* the mapping, AF_ASSOC_FILE_BYTES */
	unsigned n_vcpus;    /* vCPU slots (validated) */
	int writable;        /* created by af_assoc_create */
	dev_t dev;           /* the mapped file's device... */
	ino_t ino;           /* ...and inode (af_assoc_same_file) */
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static struct af_assoc_slot *slot_at(const struct af_assoc *a, size_t off)
{
	return (struct af_assoc_slot *)(void *)(a->base + off);
}

static struct af_assoc_slot *vcpu_slot(const struct af_assoc *a, unsigned v)
{
	return slot_at(a, AF_ASSOC_VCPU_OFF + (size_t)v * AF_ASSOC_SLOT_BYTES);
}

static struct af_assoc_slot *notify_slot(const struct af_assoc *a)
{
	return slot_at(a, AF_ASSOC_NOTIFY_OFF);
}

uint64_t af_assoc_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The header check shared by map and read. */
static int header_ok(const struct af_assoc_hdr *h)
{
	return h->magic == AF_ASSOC_MAGIC && h->version == AF_ASSOC_VERSION &&
	       h->file_bytes == AF_ASSOC_FILE_BYTES &&
	       h->slot_bytes == AF_ASSOC_SLOT_BYTES &&
	       h->notify_off == AF_ASSOC_NOTIFY_OFF &&
	       h->vcpu_off == AF_ASSOC_VCPU_OFF && h->n_vcpus >= 1 &&
	       h->n_vcpus <= AF_ASSOC_MAX_VCPUS;
}

int af_assoc_create(const char *path, unsigned n_vcpus, struct af_assoc **out)
{
	*out = NULL;
	if (!path || !*path || n_vcpus < 1 || n_vcpus > AF_ASSOC_MAX_VCPUS)
		return -EINVAL;
	static unsigned counter; /* distinct temporary names in one process */
	unsigned n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	size_t len = strlen(path) + 48;
	char *tmp = malloc(len);
	struct af_assoc *a = calloc(1, sizeof(*a));
	if (!tmp || !a) {
		free(tmp);
		free(a);
		return -ENOMEM;
	}
	snprintf(tmp, len, "%s.tmp.%ld.%u", path, (long)getpid(), n);
	int rc = 0;
	int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	struct stat st;
	if (fchmod(fd, 0644) || ftruncate(fd, AF_ASSOC_FILE_BYTES) ||
	    fstat(fd, &st)) {
		rc = -errno;
		goto fail_unlink;
	}
	void *m = mmap(NULL, AF_ASSOC_FILE_BYTES, PROT_READ | PROT_WRITE,
		       MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		rc = -errno;
		goto fail_unlink;
	}
	a->base = m;
	a->n_vcpus = n_vcpus;
	a->writable = 1;
	a->dev = st.st_dev;
	a->ino = st.st_ino;
	/* ftruncate zeroed the file: every slot is "never written". */
	struct af_assoc_hdr h;
	memset(&h, 0, sizeof(h));
	h.magic = AF_ASSOC_MAGIC;
	h.version = AF_ASSOC_VERSION;
	h.file_bytes = AF_ASSOC_FILE_BYTES;
	h.slot_bytes = AF_ASSOC_SLOT_BYTES;
	h.n_vcpus = n_vcpus;
	h.notify_off = AF_ASSOC_NOTIFY_OFF;
	h.vcpu_off = AF_ASSOC_VCPU_OFF;
	h.writer_pid = (uint64_t)getpid();
	h.created_ns = af_assoc_now_ns();
	memcpy(a->base, &h, sizeof(h));
	for (unsigned v = 0; v < n_vcpus; v++)
		vcpu_slot(a, v)->vcpu = v;
	/* The header is complete before the file has its name. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (rename(tmp, path)) {
		rc = -errno;
		munmap(m, AF_ASSOC_FILE_BYTES);
		goto fail_unlink;
	}
	close(fd);
	free(tmp);
	*out = a;
	return 0;

fail_unlink:
	unlink(tmp);
	close(fd);
fail:
	free(tmp);
	free(a);
	return rc;
}

/* Maps an existing file after checking its size and header. */
static int map_existing(const char *path, int writable, struct af_assoc **out)
{
	*out = NULL;
	if (!path || !*path)
		return -EINVAL;
	int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC |
				    O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st)) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)AF_ASSOC_FILE_BYTES) {
		close(fd);
		return -EBADMSG;
	}
	void *m = mmap(NULL, AF_ASSOC_FILE_BYTES,
		       writable ? PROT_READ | PROT_WRITE : PROT_READ,
		       MAP_SHARED, fd, 0);
	int rc = m == MAP_FAILED ? -errno : 0;
	close(fd);
	if (rc)
		return rc;
	struct af_assoc_hdr h;
	memcpy(&h, m, sizeof(h));
	if (!header_ok(&h)) {
		munmap(m, AF_ASSOC_FILE_BYTES);
		return -EBADMSG;
	}
	struct af_assoc *a = calloc(1, sizeof(*a));
	if (!a) {
		munmap(m, AF_ASSOC_FILE_BYTES);
		return -ENOMEM;
	}
	a->base = m;
	a->n_vcpus = h.n_vcpus;
	a->writable = writable;
	a->dev = st.st_dev;
	a->ino = st.st_ino;
	*out = a;
	return 0;
}

int af_assoc_map(const char *path, struct af_assoc **out)
{
	return map_existing(path, 0, out);
}

int af_assoc_attach(const char *path, struct af_assoc **out)
{
	return map_existing(path, 1, out);
}

void af_assoc_free(struct af_assoc *a)
{
	if (!a)
		return;
	munmap(a->base, AF_ASSOC_FILE_BYTES);
	free(a);
}

unsigned af_assoc_vcpus(const struct af_assoc *a)
{
	return a->n_vcpus;
}

int af_assoc_same_file(const struct af_assoc *a, const char *path)
{
	struct stat st;
	if (stat(path, &st))
		return 0;
	return st.st_dev == a->dev && st.st_ino == a->ino;
}

/* ---- seqlock ---- */

/* Claims slot s for writing: its seq goes from even q to odd q + 1. */
static int slot_begin(struct af_assoc_slot *s, uint64_t *seq)
{
	for (unsigned i = 0; i < WRITE_SPINS; i++) {
		uint64_t q = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
		if (!(q & 1) &&
		    __atomic_compare_exchange_n(&s->seq, &q, q + 1, 0,
						__ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED)) {
			/* The odd seq is ordered before the field stores. */
			__atomic_thread_fence(__ATOMIC_RELEASE);
			*seq = q + 1;
			return 0;
		}
		cpu_relax();
	}
	return -EBUSY;
}

static void slot_end(struct af_assoc_slot *s, uint64_t seq)
{
	__atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELEASE);
}

static void slot_store(struct af_assoc_slot *s, unsigned vcpu, uint64_t asid,
		       uint64_t serial, uint64_t time_ns)
{
	uint64_t c = __atomic_load_n(&s->count, __ATOMIC_RELAXED);
	__atomic_store_n(&s->asid, asid, __ATOMIC_RELAXED);
	__atomic_store_n(&s->serial, serial, __ATOMIC_RELAXED);
	__atomic_store_n(&s->time_ns, time_ns, __ATOMIC_RELAXED);
	__atomic_store_n(&s->count, c + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&s->vcpu, vcpu, __ATOMIC_RELAXED);
}

/* One consistent copy of s, or -ENOENT / -EAGAIN. */
static int slot_read(const struct af_assoc_slot *s, struct af_assoc_entry *e)
{
	for (unsigned i = 0; i < READ_TRIES; i++) {
		uint64_t q1 = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
		if (q1 & 1) {
			cpu_relax();
			continue;
		}
		e->asid = __atomic_load_n(&s->asid, __ATOMIC_RELAXED);
		e->serial = __atomic_load_n(&s->serial, __ATOMIC_RELAXED);
		e->time_ns = __atomic_load_n(&s->time_ns, __ATOMIC_RELAXED);
		e->count = __atomic_load_n(&s->count, __ATOMIC_RELAXED);
		e->vcpu = __atomic_load_n(&s->vcpu, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		uint64_t q2 = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
		if (q1 == q2)
			return q1 == 0 ? -ENOENT : 0;
		cpu_relax();
	}
	return -EAGAIN;
}

static int publish(struct af_assoc_slot *s, unsigned vcpu, uint64_t asid,
		   uint64_t serial, uint64_t time_ns)
{
	uint64_t seq;
	int rc = slot_begin(s, &seq);
	if (rc)
		return rc;
	slot_store(s, vcpu, asid, serial, time_ns);
	slot_end(s, seq);
	return 0;
}

int af_assoc_publish_vcpu(struct af_assoc *a, unsigned vcpu, uint64_t asid,
			  uint64_t serial, uint64_t time_ns)
{
	if (!a->writable)
		return -EPERM;
	if (vcpu >= a->n_vcpus)
		return -EINVAL;
	return publish(vcpu_slot(a, vcpu), vcpu, asid, serial, time_ns);
}

int af_assoc_publish_notify_as(struct af_assoc *a, unsigned vcpu,
			       uint64_t asid, uint64_t serial,
			       uint64_t time_ns)
{
	if (!a->writable)
		return -EPERM;
	if (vcpu >= a->n_vcpus)
		return -EINVAL;
	return publish(notify_slot(a), vcpu, asid, serial, time_ns);
}

int af_assoc_publish_notify(struct af_assoc *a, unsigned vcpu,
			    uint64_t time_ns)
{
	if (!a->writable)
		return -EPERM;
	if (vcpu >= a->n_vcpus)
		return -EINVAL;
	struct af_assoc_entry e;
	int rc = slot_read(vcpu_slot(a, vcpu), &e);
	if (rc == -ENOENT) {
		rc = publish(notify_slot(a), vcpu, AF_ASID_NONE, 0, time_ns);
		return rc ? rc : -ENOENT;
	}
	if (rc)
		return rc;
	return publish(notify_slot(a), vcpu, e.asid, e.serial, time_ns);
}

/* The header may not change after creation; a reader that finds it
 * changed refuses to trust the slots. */
static int header_still_ok(const struct af_assoc *a)
{
	const struct af_assoc_hdr *h = (const void *)a->base;
	return __atomic_load_n(&h->magic, __ATOMIC_RELAXED) == AF_ASSOC_MAGIC &&
	       __atomic_load_n(&h->version, __ATOMIC_RELAXED) ==
		       AF_ASSOC_VERSION &&
	       __atomic_load_n(&h->n_vcpus, __ATOMIC_RELAXED) == a->n_vcpus;
}

int af_assoc_read_vcpu(const struct af_assoc *a, unsigned vcpu,
		       struct af_assoc_entry *out)
{
	if (vcpu >= a->n_vcpus)
		return -EINVAL;
	if (!header_still_ok(a))
		return -EBADMSG;
	struct af_assoc_entry e;
	int rc = slot_read(vcpu_slot(a, vcpu), &e);
	if (rc)
		return rc;
	if (e.vcpu != vcpu)
		return -EBADMSG;
	*out = e;
	return 0;
}

int af_assoc_read_notify(const struct af_assoc *a, struct af_assoc_entry *out)
{
	if (!header_still_ok(a))
		return -EBADMSG;
	struct af_assoc_entry e;
	int rc = slot_read(notify_slot(a), &e);
	if (rc)
		return rc;
	if (e.vcpu >= a->n_vcpus)
		return -EBADMSG;
	*out = e;
	return 0;
}
