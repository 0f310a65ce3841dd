/*
 * blockserver/bs.h - the block server's core, independent of nbdkit: the
 * configuration (exports, scheduler, disk model), and a server object that
 * serves reads, writes and flushes on the exports' backing files through
 * ONE scheduler (iosched/sched.h) and ONE disk model (iosched/disk.h) shared
 * by every export, with a dispatcher thread.
 *
 * How a request flows (bs_read / bs_write):
 *   1. the caller's thread checks the range, looks up the process id in the
 *      export's association file (antfarm/assoc.h) and queues the request
 *      with ios_sched_add() (waiting for a free slot if the queue is full);
 *   2. the dispatcher thread calls ios_sched_dispatch() whenever the device
 *      has room (fewer than `depth` requests on it) and at the scheduler's
 *      timers, asks the disk model when the request will complete, and
 *      hands it back to the caller's thread;
 *   3. the caller's thread does the real pread/pwrite on the backing file,
 *      sleeps until the model's completion time (no sleep with disk=none),
 *      and completes the request (ios_sched_complete()).
 * A write returns only after pwrite() (and fdatasync() for FUA) succeeded;
 * bs_flush() is fdatasync() of the export's file.
 *
 * Threads: bs_read/bs_write/bs_flush may be called from any number of
 * threads at once between bs_server_start() and bs_server_stop().
 * Configuration and new/start/stop/free are single-threaded.
 *
 * Nothing here prints; errors come back as negative errno values, with a
 * message in the caller's buffer where one helps.
 */
#ifndef BLOCKSERVER_BS_H
#define BLOCKSERVER_BS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "iosched/disk.h"
#include "iosched/sched.h"

#define BS_MAX_EXPORTS 64u         /* exports per server */
#define BS_MAX_TAGS 256u           /* (vm, pid) pairs counted in the stats */
#define BS_DEFAULT_STRIDE (1ull << 30) /* export spacing on the model */
#define BS_DEFAULT_QUEUE 1024u     /* scheduler request slots */
#define BS_DEFAULT_MAX_REQUEST (32u << 20) /* largest request, bytes */
#define BS_MAX_VM_ID 0xfffffffeu   /* VM ids 0..this */
#define BS_DEFAULT_LOG_MAX (1u << 20) /* request log entries (log=) */
#define BS_MAX_LOG_MAX (1u << 24)  /* at most this many */

/* One export as configured. */
struct bs_export_cfg {
	char *name;    /* export name the client asks for (owned) */
	char *file;    /* backing image file or block device (owned) */
	uint32_t vm;   /* VM id: the requests' export id for the scheduler */
	int have_vm;   /* vm= given (else the export's index) */
	char *assoc;   /* association file of its VM, or NULL (owned) */
	uint64_t at;   /* byte offset of the export on the modelled disk */
	int have_at;   /* at= given (else index * stride) */
};

/* Where the process id of a request comes from. */
enum bs_assoc_use {
	BS_ASSOC_NOTIFY = 1, /* notify slot; a 1-vCPU VM's vCPU 0 if none */
	BS_ASSOC_VCPU0 = 2,  /* always vCPU 0's current address space */
};

/* The whole configuration. bs_config_init() gives the defaults. */
struct bs_config {
	struct bs_export_cfg exports[BS_MAX_EXPORTS]; /* in command-line order */
	unsigned n_exports;              /* exports given */
	enum ios_sched_kind sched;       /* scheduler (default deadline) */
	struct ios_sched_tunables tun;   /* its tunables (defaults per kind) */
	unsigned tun_set;                /* bits: tunables given explicitly */
	struct ios_disk_params disk;     /* disk model (default rotational) */
	uint64_t stride;                 /* export spacing; 0 = automatic */
	unsigned queue;                  /* scheduler slots */
	unsigned depth;                  /* requests on the device at once */
	uint32_t max_request;            /* largest request in bytes */
	enum bs_assoc_use assoc_use;     /* see above */
	char *stats;                     /* stats file written at stop, or NULL */
	char *log;                       /* request log written at stop, or NULL */
	unsigned log_max;                /* requests the log keeps */
};

/* Defaults: no exports, deadline, rotational disk (docs/iosched.md),
 * automatic stride, BS_DEFAULT_QUEUE slots, depth 1,
 * BS_DEFAULT_MAX_REQUEST. */
void bs_config_init(struct bs_config *c);
/* Applies one key=value setting (see docs/blockserver.md; export= starts
 * a new export, file=/vm=/assoc=/at= apply to the last one). Returns 0, or
 * -EINVAL / -ENOMEM with a one-line message in err. */
int bs_config_set(struct bs_config *c, const char *key, const char *value,
		  char *err, size_t errlen);
/* Releases the strings. */
void bs_config_free(struct bs_config *c);
/* Help text for the settings (BS_CONFIG_HELP below). */
const char *bs_config_help(void);

#define BS_CONFIG_HELP \
"export=NAME            start an export (one per guest disk); these apply\n" \
"                       to the last export=:\n" \
"  file=PATH            its backing image file or block device (required)\n" \
"  vm=N                 its VM id (default: the export's position, 0, 1, ..)\n" \
"  assoc=PATH           its VM's association file (antfarm/assoc.h)\n" \
"  at=SIZE              where it starts on the modelled disk (default\n" \
"                       position * stride)\n" \
"sched=NAME             noop, deadline (default), as-single, as-vm,\n" \
"                       as-process\n" \
"disk=rotational|none   modelled 2005 7200 RPM disk (default), or no delay\n" \
"stride=SIZE            export spacing on the modelled disk (default 1G,\n" \
"                       or the largest export rounded up to 1G)\n" \
"readahead=on|off       the modelled drive's read-ahead (default on)\n" \
"queue=N                scheduler request slots (default 1024)\n" \
"depth=N                requests on the device at once (default 1)\n" \
"max-request=SIZE       largest request served (default 32M)\n" \
"assoc-use=notify|vcpu0 which address space tags a request (default notify)\n" \
"stats=PATH             write counters as JSON here at exit\n" \
"log=PATH               write one line per request here at exit\n" \
"log-max=N              requests the log keeps (default 1048576)\n" \
"disk-capacity=SIZE disk-heads=N disk-rpm=X disk-seek-track-ms=X\n" \
"disk-seek-avg-ms=X disk-seek-full-ms=X disk-media-outer-mb-s=X\n" \
"disk-media-inner-mb-s=X disk-overhead-miss-ms=X disk-overhead-hit-ms=X\n" \
"disk-bus-mb-s=X disk-cache=SIZE disk-cache-segments=N\n" \
"                       disk model parameters\n" \
"read-expire-ms=X write-expire-ms=X antic-expire-ms=X\n" \
"read-batch-expire-ms=X write-batch-expire-ms=X fifo-batch=N\n" \
"writes-starved=N max-streams=N\n" \
"                       scheduler tunables (defaults: Linux 2.6's)"

/* Per-export counters. */
struct bs_export_stats {
	uint64_t reads, writes, flushes;    /* requests served */
	uint64_t read_bytes, write_bytes;   /* payload */
	uint64_t errors;                    /* refused or failed */
};

/* One (vm, pid) tag and how many requests carried it. */
struct bs_tag_count {
	uint32_t vm;        /* VM id */
	uint32_t pid;       /* process id, IOS_PID_UNKNOWN if none */
	uint64_t requests;  /* requests tagged so */
};

/* Server-wide counters. */
struct bs_stats {
	struct ios_sched_stats sched;  /* the scheduler's */
	struct ios_disk_stats disk;    /* the disk model's */
	uint64_t assoc_maps;           /* association files mapped */
	uint64_t assoc_unknown;        /* requests without a process id */
	uint64_t assoc_errors;         /* unreadable/invalid association data */
	uint64_t queue_waits;          /* requests that waited for a slot */
	uint64_t late_ns_max;          /* worst completion after model time */
	uint64_t log_entries;          /* requests in the request log */
	uint64_t log_dropped;          /* requests past log-max, not logged */
	unsigned n_tags;               /* entries in tags */
	uint64_t tags_overflow;        /* requests whose tag did not fit */
	struct bs_tag_count tags[BS_MAX_TAGS]; /* per (vm, pid) */
};

struct bs_server;

/* Opens every export's file and builds the scheduler and disk model.
 * Takes over c's strings (c is left empty: free it anyway). Returns 0 and
 * *out, or a negative errno with a message in err. */
int bs_server_new(struct bs_config *c, struct bs_server **out, char *err,
		  size_t errlen);
/* Starts the dispatcher thread; the model's clock starts now. */
int bs_server_start(struct bs_server *s);
/* Lets queued requests finish, stops the dispatcher, and writes the stats
 * file and the request log if configured (returns the errno of the first
 * that failed).
 *
 * The request log (log=PATH): a first line starting "#" naming the
 * columns, then one line per read or write that reached the scheduler, in
 * arrival order (the first log-max of them; the rest are counted in the
 * stats as log_dropped), fields separated by one space:
 *   arrive_ns done_ns export vm pid rw offset length
 * arrive_ns, done_ns: CLOCK_MONOTONIC nanoseconds when the request reached
 * the server and when it was completed (its reply handed back); export:
 * the export's index; vm: its VM id; pid: the process tag, "-" for none;
 * rw: R or W; offset, length: bytes within the export. All decimal. */
int bs_server_stop(struct bs_server *s);
void bs_server_free(struct bs_server *s);

/* Export lookup: index of the export called name ("" is the first one),
 * or -ENOENT. */
int bs_find_export(const struct bs_server *s, const char *name);
unsigned bs_export_count(const struct bs_server *s);
const char *bs_export_name(const struct bs_server *s, unsigned idx);
uint32_t bs_export_vm(const struct bs_server *s, unsigned idx);
uint64_t bs_export_size(const struct bs_server *s, unsigned idx);
int bs_export_writable(const struct bs_server *s, unsigned idx);
int bs_disk_rotational(const struct bs_server *s);
uint32_t bs_max_request(const struct bs_server *s);

/* Serves count bytes at offset of export idx. Return 0, or -EINVAL (out
 * of range, too large), -ENOSPC (write past the end), -EROFS, -ESHUTDOWN
 * (not running), or the errno of a failed pread/pwrite/fdatasync. */
int bs_read(struct bs_server *s, unsigned idx, void *buf, uint32_t count,
	    uint64_t offset);
int bs_write(struct bs_server *s, unsigned idx, const void *buf,
	     uint32_t count, uint64_t offset, int fua);
int bs_flush(struct bs_server *s, unsigned idx);

/* Copies of the counters. */
void bs_get_stats(struct bs_server *s, struct bs_stats *out);
void bs_get_export_stats(struct bs_server *s, unsigned idx,
			 struct bs_export_stats *out);
/* Writes every counter as one JSON object and a newline to f. */
void bs_write_stats_json(struct bs_server *s, FILE *f);

/* Parses a size: a decimal number with an optional K, M, G or T suffix
 * (powers of 1024). 0 or -1. */
int bs_parse_size(const char *s, uint64_t *out);

/* The process id the server gives a request from an association entry's
 * serial: 1..0xfffffffe, or IOS_PID_UNKNOWN for serial 0. */
uint32_t bs_pid_of_serial(uint64_t serial);

#endif
