/*
 * iosched/sim.h - a deterministic discrete-event simulation of the paper's
 * Fig. 7 experiment: V guests (VMs) with P reader processes each, every
 * process reading its own file sequentially, one synchronous request at a
 * time; a guest elevator per VM; the block server's scheduler (sched.h);
 * and the disk model (disk.h).
 *
 * The model:
 *   - process g (g = vm * P + proc) reads bytes_per_proc bytes from its
 *     private file, which starts at base_bytes + g * file_stride_bytes on
 *     the disk (files laid out one per stride, as the paper's 1 GB files
 *     would be), in requests of request_bytes (the guest's read-ahead
 *     window); after each completion it thinks for a time drawn uniformly
 *     from [think_min_ns, think_max_ns] and issues the next;
 *   - each request carries its VM as the export id and its process id as
 *     the guest ASID; with probability assoc_error the id is wrong (another
 *     process of the same VM, or a kernel context if it has only one), as
 *     the paper's simple context association can get it;
 *   - guest elevators: "none" and "mq-deadline" pass requests on at once
 *     (with one outstanding request per process there is nothing for
 *     mq-deadline to sort or merge); "bfq" idles per process: it serves one
 *     process of the VM at a time, after that process's request completes
 *     waits up to guest_idle_ns (bfq's slice_idle, 8 ms) for its next one,
 *     and moves to the next waiting process (round robin) when the wait
 *     runs out or the process has had guest_slice_ns (bfq's timeout_sync,
 *     125 ms); it only sees its own VM's processes;
 *   - the disk takes one request at a time (an ATA disk without command
 *     queueing).
 * Same parameters, same result, on every machine.
 */
#ifndef IOSCHED_SIM_H
#define IOSCHED_SIM_H

#include "iosched/disk.h"
#include "iosched/sched.h"

#define IOS_SIM_MAX_VMS 16u
#define IOS_SIM_MAX_PROCS 16u /* per VM */

enum ios_guest_elv {
	IOS_GUEST_NONE = 0,
	IOS_GUEST_MQ_DEADLINE = 1,
	IOS_GUEST_BFQ = 2,
};
#define IOS_GUEST_COUNT 3

/* "none", "mq-deadline", "bfq"; NULL if bad. */
const char *ios_guest_name(enum ios_guest_elv g);
/* Parses one of those; 0 or -1. */
int ios_guest_parse(const char *name, enum ios_guest_elv *out);

/* What to simulate. ios_sim_params_default() gives the paper's setup. */
struct ios_sim_params {
	unsigned vms;                /* guests, 1..16 */
	unsigned procs;              /* readers per guest, 1..16 */
	enum ios_sched_kind sched;   /* the block server's scheduler */
	enum ios_guest_elv guest;    /* every guest's elevator */
	uint64_t bytes_per_proc;     /* each reader's segment (200 MB) */
	uint64_t file_stride_bytes;  /* file spacing on the disk (1 GiB) */
	uint64_t base_bytes;         /* where the first file starts (0) */
	uint32_t request_bytes;      /* per request (128 KiB) */
	uint64_t think_min_ns;       /* reader think time, low (100 us) */
	uint64_t think_max_ns;       /* reader think time, high (500 us) */
	double assoc_error;          /* fraction of mistagged requests */
	uint64_t seed;               /* think times and mistagging */
	uint64_t guest_idle_ns;      /* bfq slice_idle (8 ms) */
	uint64_t guest_slice_ns;     /* bfq per-process slice (125 ms) */
	unsigned queue_slots;        /* scheduler request slots (256) */
	struct ios_disk_params disk; /* the drive */
	int have_tunables;           /* 1: use tun below, 0: defaults */
	struct ios_sched_tunables tun; /* scheduler tunables */
};

void ios_sim_params_default(struct ios_sim_params *p);

/* One reader's outcome. */
struct ios_sim_proc {
	unsigned vm;          /* its guest */
	unsigned proc;        /* its index in the guest */
	uint64_t bytes;       /* read */
	uint64_t finish_ns;   /* when its last request completed */
	double mb_s;          /* bytes / finish time, MB = 10^6 bytes */
};

/* The outcome. */
struct ios_sim_result {
	double aggregate_mb_s;      /* all bytes / time the last one ended */
	uint64_t elapsed_ns;        /* time the last reader finished */
	uint64_t bytes;             /* all bytes read */
	uint64_t requests;          /* requests issued */
	uint64_t mistagged;         /* of them with a wrong process id */
	unsigned nprocs;            /* entries in proc[] */
	struct ios_sim_proc proc[IOS_SIM_MAX_VMS * IOS_SIM_MAX_PROCS];
	struct ios_disk_stats disk; /* the drive's counters */
	struct ios_sched_stats sched; /* the scheduler's counters */
};

/* Runs the simulation. Returns 0, -EINVAL for bad parameters (a file past
 * the end of the disk, a segment longer than the stride, ...), -ENOMEM,
 * or -EIO if the model broke an invariant (a bug). */
int ios_sim_run(const struct ios_sim_params *p, struct ios_sim_result *out);

#endif
