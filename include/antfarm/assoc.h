/*
 * antfarm/assoc.h - per-VM "context association" in shared memory: the
 * guest address space (process) current on each vCPU, and the one that was
 * current when the guest last notified its disk. The QEMU plugin writes it;
 * the block server (blockserver/) maps it read-only and tags each disk
 * request with the process found there: the paper's simple context
 * association (section 7.2).
 *
 * One file per VM (normally in /dev/shm), fixed size AF_ASSOC_FILE_BYTES,
 * native byte order (writer and reader are on the same host):
 *
 *   offset   size  what
 *   0        64    struct af_assoc_hdr
 *   64       64    notify slot: the address space current on the vCPU that
 *                  made the guest's most recent disk notification
 *   128+64v  64    vCPU slot v (v < n_vcpus <= AF_ASSOC_MAX_VCPUS): the
 *                  address space current on vCPU v
 *   ...            zero up to AF_ASSOC_FILE_BYTES
 *
 * Every slot is a seqlock: the writer makes `seq` odd (compare-and-swap
 * from an even value, so several writer threads exclude each other),
 * stores the fields, then makes it even again (release); a reader copies
 * the fields between two reads of `seq` and keeps the copy only if both
 * reads are the same even value. seq 0 means "never written". No locks,
 * no allocation, no system calls on publish or read.
 *
 * The file is created under a temporary name and renamed into place, so a
 * reader never maps a half-initialised file, and a new writer (a restarted
 * QEMU) replaces the file instead of truncating it under a reader.
 *
 * Trust: only our plugin writes the file (the guest cannot), but the reader
 * validates everything anyway: the header must match this version's layout
 * exactly, the file must be at least AF_ASSOC_FILE_BYTES long when mapped,
 * reads give up after a bounded number of retries, and a slot whose vCPU
 * field is out of range is refused. asid and serial are opaque tags to the
 * reader; any value is safe.
 *
 * Threads: publishers may run concurrently (any slot); readers may run
 * concurrently with anything. A handle itself must not be freed while in
 * use.
 *
 * Errors are negative errno values.
 */
#ifndef ANTFARM_ASSOC_H
#define ANTFARM_ASSOC_H

#include <stdint.h>

#include <antfarm/engine.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AF_ASSOC_MAGIC 0x31434f5353414641ull /* "AFASSOC1" little-endian */
#define AF_ASSOC_VERSION 1u
#define AF_ASSOC_MAX_VCPUS 64u   /* vCPU slots at most (= AF_MAX_VCPUS) */
#define AF_ASSOC_SLOT_BYTES 64u  /* one slot, one cache line */
#define AF_ASSOC_NOTIFY_OFF 64u  /* offset of the notify slot */
#define AF_ASSOC_VCPU_OFF 128u   /* offset of vCPU slot 0 */
#define AF_ASSOC_FILE_BYTES 8192u /* whole file */

/* The header (written once, before the file gets its name). */
struct af_assoc_hdr {
	uint64_t magic;       /* AF_ASSOC_MAGIC */
	uint32_t version;     /* AF_ASSOC_VERSION */
	uint32_t file_bytes;  /* AF_ASSOC_FILE_BYTES */
	uint32_t slot_bytes;  /* AF_ASSOC_SLOT_BYTES */
	uint32_t n_vcpus;     /* vCPU slots in use, 1..AF_ASSOC_MAX_VCPUS */
	uint32_t notify_off;  /* AF_ASSOC_NOTIFY_OFF */
	uint32_t vcpu_off;    /* AF_ASSOC_VCPU_OFF */
	uint64_t writer_pid;  /* process that created the file (informational) */
	uint64_t created_ns;  /* CLOCK_MONOTONIC at creation */
	uint64_t reserved[2]; /* zero */
};

/* One slot as laid out in the file. Access only through the functions
 * below (they use atomic loads and stores). */
struct af_assoc_slot {
	uint64_t seq;         /* seqlock; odd while written; 0 never written */
	uint64_t asid;        /* address space (x86: CR3 root), AF_ASID_NONE */
	uint64_t serial;      /* antfarm's process serial (af_event.serial), 0 none */
	uint64_t time_ns;     /* CLOCK_MONOTONIC ns when published */
	uint64_t count;       /* publishes to this slot so far */
	uint32_t vcpu;        /* vCPU concerned (notify: the notifying one) */
	uint32_t flags;       /* zero (reserved) */
	uint64_t reserved[2]; /* zero */
};

/* What a read returns. */
struct af_assoc_entry {
	uint64_t asid;    /* address space, AF_ASID_NONE if none */
	uint64_t serial;  /* process serial, 0 if none */
	uint64_t time_ns; /* CLOCK_MONOTONIC ns when it was published */
	uint64_t count;   /* publishes to this slot so far (1, 2, ...) */
	uint32_t vcpu;    /* the vCPU it concerns */
};

/* An open association file (writer or reader). */
struct af_assoc;

/* Writer: creates (or atomically replaces) the file at path with n_vcpus
 * vCPU slots (1..AF_ASSOC_MAX_VCPUS), all slots unwritten, mode 0644, and
 * maps it read-write. Returns 0 and *out (free with af_assoc_free), or
 * -EINVAL, -ENOMEM, or the errno of a failed file operation. */
AF_API int af_assoc_create(const char *path, unsigned n_vcpus,
			   struct af_assoc **out);

/* Reader: maps an existing file read-only after checking its size and
 * header. Returns 0 and *out, -ENOENT (no file), -EBADMSG (not a valid
 * version-1 association file), or another negative errno. */
AF_API int af_assoc_map(const char *path, struct af_assoc **out);

/* Writer: maps an existing file read-write after the same checks as
 * af_assoc_map (tools, tests, a second writing process). Same returns. */
AF_API int af_assoc_attach(const char *path, struct af_assoc **out);

/* Unmaps and frees (NULL is fine). The file stays; the writer removes it
 * with unlink() if it wants to. */
AF_API void af_assoc_free(struct af_assoc *a);

/* vCPU slots of the file. */
AF_API unsigned af_assoc_vcpus(const struct af_assoc *a);

/* 1 if path still names the mapped file (same device and inode), 0 if it
 * was replaced or removed: a reader then maps it again. */
AF_API int af_assoc_same_file(const struct af_assoc *a, const char *path);

/* CLOCK_MONOTONIC in ns (the clock of time_ns). */
AF_API uint64_t af_assoc_now_ns(void);

/* Writer: vCPU vcpu now runs address space asid (process serial); call on
 * every switch and create the engine reports for that vCPU, and with
 * AF_ASID_NONE / 0 when nothing is known. Returns 0, -EINVAL (bad vcpu),
 * -EPERM (a read-only handle) or -EBUSY (a writer appears stuck). */
AF_API int af_assoc_publish_vcpu(struct af_assoc *a, unsigned vcpu,
				 uint64_t asid, uint64_t serial,
				 uint64_t time_ns);

/* Writer: vCPU vcpu has just notified the guest's disk (for virtio-blk, a
 * write to the queue-notify register): copies that vCPU's slot into the
 * notify slot, stamped time_ns. Same returns, and -ENOENT if the vCPU's
 * slot was never written (the notify slot is then set to "none"). */
AF_API int af_assoc_publish_notify(struct af_assoc *a, unsigned vcpu,
				   uint64_t time_ns);

/* Writer: sets the notify slot explicitly (tools and tests). */
AF_API int af_assoc_publish_notify_as(struct af_assoc *a, unsigned vcpu,
				      uint64_t asid, uint64_t serial,
				      uint64_t time_ns);

/* Reader: one consistent copy of vCPU slot vcpu / of the notify slot.
 * Returns 0, -ENOENT (never written), -EINVAL (bad vcpu), -EAGAIN (no
 * consistent copy after a bounded number of tries: a writer is busy or
 * died mid-write) or -EBADMSG (inconsistent content, such as a vCPU field
 * out of range, or a header that changed). */
AF_API int af_assoc_read_vcpu(const struct af_assoc *a, unsigned vcpu,
			      struct af_assoc_entry *out);
AF_API int af_assoc_read_notify(const struct af_assoc *a,
				struct af_assoc_entry *out);

#ifdef __cplusplus
}
#endif

#endif
