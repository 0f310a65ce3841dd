/*
 * cli/iosched_live.h - the live Fig. 7 experiment of `antfarm iosched`
 * (cli/iosched_live.c) and the bar chart of either mode
 * (cli/iosched_plot.c).
 *
 * A live cell: the block server (nbdkit with nbdkit-antfarm-plugin.so, one
 * export per guest on a sparse image file, the chosen scheduler, the
 * modelled disk, a request log) and V QEMU guests (x86_64, TCG, the antfarm
 * QEMU plugin publishing each guest's association file) whose P readers
 * each read their own region of the guest's virtio disk with busybox dd
 * (O_DIRECT, or through the page cache),
 * started together once every guest has booted. The result is written in
 * the simulation's terms (struct ios_sim_result) so that both modes print
 * alike, plus what only a live run has (struct iol_extra).
 *
 * Every function reports its own failure as one "antfarm: iosched: ..."
 * line; none prints anything else except with verbose (stderr).
 */
#ifndef ANTFARM_CLI_IOSCHED_LIVE_H
#define ANTFARM_CLI_IOSCHED_LIVE_H

#include <limits.h>
#include <stdint.h>

#include "iosched/sim.h"
#include "run_host.h"

#define IOL_MAX_VMS 8u     /* guests at once */
#define IOL_MAX_PROCS 16u  /* readers per guest */

/* What is the same for every cell of a run. */
struct iol_env {
	struct run_paths paths;       /* plugin, guest builder, shm dir, ... */
	struct run_guest guest;       /* kernel, initramfs with the readers */
	int use_nbdkit;               /* 1: nbdkit + the plugin; 0: our
	                                 antfarm-blockserver (default) */
	char server[PATH_MAX];        /* antfarm-blockserver, or the
	                                 nbdkit-antfarm-plugin.so for nbdkit */
	const char *qemu;             /* QEMU binary */
	unsigned mem_mb;              /* guest RAM */
	unsigned timeout_s;           /* limit per cell */
	int assoc;                    /* pass assoc= to the QEMU plugin */
	int verbose;                  /* consoles and progress on stderr */
};

/* One cell to run. */
struct iol_params {
	unsigned vms, procs;          /* guests, readers per guest */
	enum ios_sched_kind sched;    /* the server's scheduler */
	enum ios_guest_elv guest;     /* the guests' elevator */
	uint64_t mb;                  /* MB (10^6 bytes) per reader, rounded
	                                 up to whole requests */
	uint64_t request_kb;          /* dd block size = guest read-ahead */
	uint64_t stride_mb;           /* region spacing, MiB */
	int readahead;                /* the modelled drive's read-ahead */
	int buffered;                 /* readers read through the guest's
	                                 page cache (its read-ahead keeps two
	                                 requests in flight); 0: O_DIRECT,
	                                 one synchronous request at a time */
	int bfq_low_latency;          /* guest bfq keeps its low_latency
	                                 heuristics (Linux's default); 0: set
	                                 for throughput */
};

/* Per guest: how busy its CPU was while the readers ran. */
struct iol_vm {
	double guest_busy;   /* guest /proc/stat: non-idle share, 0..1 */
	double qemu_cpu;     /* QEMU's host CPU seconds per second */
};

/* Per reader, beyond struct ios_sim_proc. */
struct iol_reader {
	uint64_t requests;   /* its region's reads (server log) */
	uint32_t tag;        /* the dominant process tag, IOS_PID_UNKNOWN */
	double tag_share;    /* share of its requests carrying that tag */
};

/* What only a live cell measures. */
struct iol_extra {
	double assoc_error;     /* mistagged / requests (see docs) */
	uint64_t untagged;      /* requests without a process tag */
	double disk_mb_s;       /* bytes / (last completion - first arrival)
	                           at the server */
	double mean_request_kb; /* mean read size at the server */
	double host_busy;       /* host CPUs' non-idle share, 0..1 */
	double load1;           /* host 1-minute load average at the start */
	double late_ms_max;     /* worst completion after the model's time */
	double boot_s;          /* start of QEMU to every guest ready */
	struct iol_vm vm[IOL_MAX_VMS];  /* per guest */
	struct iol_reader rd[IOL_MAX_VMS * IOL_MAX_PROCS]; /* per reader */
};

/* The guest's reader script (for run_build_guest's --exec). */
extern const char iol_guest_script[];

/* Finds the pieces, builds (or finds cached) the guest, checks QEMU and
 * the block server, installs the signal handlers. env->mem_mb, timeout_s,
 * assoc, use_nbdkit and verbose must be set. Returns 0, CLI_EXIT_INPUT after reporting, or
 * RUN_INTERRUPTED. */
int iol_prepare(struct iol_env *env);

/* Runs one cell. Returns 0 with r and x filled, CLI_EXIT_INPUT after
 * reporting, or RUN_INTERRUPTED (everything started has been stopped and
 * removed in every case). */
int iol_run_cell(const struct iol_env *env, const struct iol_params *p,
		 struct ios_sim_result *r, struct iol_extra *x);

/* After RUN_INTERRUPTED: reports it and dies of the signal (or returns
 * 128 + signal). */
int iol_die_of_signal(void);

/* The bar chart (Fig. 7 style): a group per row label, a bar per series.
 * values[row * nseries + s]; lone < 0: no lone-reader line. Runs gnuplot;
 * 0 or CLI_EXIT_INPUT after reporting. */
int iol_plot(const char *png, const char *title, const char *const *rows,
	     unsigned nrows, const char *const *series, unsigned nseries,
	     const double *values, double lone);

#endif
