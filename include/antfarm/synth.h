/*
 * antfarm/synth.h - deterministic models of how real kernels drive the MMU,
 * producing traces with ground truth for tests and benchmarks.
 *
 * A model keeps a simulated guest-physical memory with real page tables in
 * the architecture's format, an allocator that reuses freed frames at once
 * (as Linux reuses page directories), a shared kernel half, and processes
 * that map, touch and unmap user pages; it emits the observations a VMM would
 * see (root loads, page-table stores, flushes, context-id loads and demaps),
 * runs them through an af_recorder so the trace also holds the memory the
 * engine read, and emits the OS's own events as ground truth.
 *
 * Operating-system behaviours modelled (Antfarm paper, sections 6.1, 6.3):
 *   linux2.4     exec clears and reuses the address space
 *   linux2.6     exec builds a new address space and drops the old one
 *   windows      CreateProcess builds one address space; no fork
 *   sparc-linux  context ids; copy-on-write fork demaps the parent's
 *                context, exec demaps the caller's, vfork demaps nothing
 * and, as options, lazy-TLB kernel threads that keep the last address space
 * loaded, KPTI root pairs, and PCID switches without flushes.
 *
 * The same options and seed always give the same trace, byte for byte.
 *
 * What a trace holds: boot (the kernel's own tables loaded on every vCPU,
 * init, two daemons that wake now and then throughout, the workload's
 * driver shell), then a BEGIN truth, the workload, and an END truth once
 * the last workload process has exited and its vCPU has switched again.
 * Ground truth: FORK (VFORK for vfork, with the parent's asid), EXEC, EXIT,
 * AS_CREATE, AS_DESTROY, and a SWITCH for every change of loaded address
 * space on a vCPU (to the kernel's tables too), each stamped when the OS
 * acts, before the MMU shows it. With PCID, dead address spaces leave stale
 * TLB slots that only slot reuse flushes (Linux tags slots by mm, not by
 * root), so after END the driver runs seven short commands per vCPU; what
 * they cause is outside the window.
 *
 * Model details worth knowing:
 *   - idle vCPUs load the kernel's tables, or with lazy_tlb keep the last
 *     address space; an exiting process's vCPU then keeps it until another
 *     process runs (the paper's exit lag), other vCPUs holding it lazily
 *     leave it for the kernel's tables at the exit's TLB flush (SMP);
 *   - sparc-linux kernel threads always borrow the last context, so
 *     lazy_tlb changes nothing there; a context id is handed out at fork;
 *   - compile runs "make -j20"; its processes live as long as their work,
 *     so lifetime_ns and interval_ns do not apply to it.
 */
#ifndef ANTFARM_SYNTH_H
#define ANTFARM_SYNTH_H

#include <antfarm/trace.h>

#ifdef __cplusplus
extern "C" {
#endif

enum af_synth_os {
	AF_SYNTH_LINUX24 = 1,
	AF_SYNTH_LINUX26 = 2,
	AF_SYNTH_WINDOWS = 3,
	AF_SYNTH_SPARC_LINUX = 4,
};

enum af_synth_workload {
	AF_SYNTH_FORK = 1,      /* fork only; the child runs, then exits */
	AF_SYNTH_FORKEXEC = 2,  /* fork, then exec in the child */
	AF_SYNTH_VFORKEXEC = 3, /* vfork, then exec in the child */
	AF_SYNTH_COMPILE = 4,   /* make -j: shells, compilers, overlapping */
};

struct af_synth_opts {
	enum af_synth_os os;             /* kernel modelled */
	enum af_synth_workload workload; /* what it runs */
	unsigned n;            /* processes the workload creates
	                          (1 .. 1000000) */
	uint64_t seed;         /* any value; same seed, same trace */
	unsigned n_vcpus;      /* 1 .. AF_MAX_VCPUS; 0 means 1 */
	enum af_paging paging; /* x86 only; 0 picks 4-level (linux2.6, or
	                          with kpti or pcid) or 32-bit (linux2.4,
	                          windows); kpti needs PAE or more, pcid
	                          4-level or more */
	int kpti;              /* 0/1, x86 Linux: two roots per address space */
	int pcid;              /* 0/1, x86 Linux: PCIDs, switches without
	                          flushing */
	int lazy_tlb;          /* 0/1: idle threads borrow the last AS */
	uint64_t lifetime_ns;  /* how long each process lives; 0: 10 s;
	                          at least 1 ms */
	uint64_t interval_ns;  /* between creations; 0: 100 ms (10/s); at
	                          least 10 us; n * interval below 2^62 ns */
	uint64_t phys_bytes;   /* guest RAM, whole pages; 0: 128 MiB; at
	                          least 32 MiB, at most 4 GiB with 32-bit or
	                          PAE paging, else 64 GiB */
};

/* Parses "linux2.6" etc.; returns 0 and sets *os, or -EINVAL. */
AF_API int af_synth_parse_os(const char *name, enum af_synth_os *os);
AF_API int af_synth_parse_workload(const char *name,
				   enum af_synth_workload *wl);

/* The trace info a run with these options will write (for opening the
 * writer). Returns 0 or -EINVAL for impossible options (e.g. windows fork,
 * sparc-linux with kpti). */
AF_API int af_synth_info(const struct af_synth_opts *o,
			 struct af_trace_info *info);

/* Runs the model and writes the whole trace (observations, memory, ground
 * truth inside a BEGIN/END window around the workload) to w, which must have
 * been opened with af_synth_info()'s info (else -EINVAL), and flushes it;
 * w stays the caller's. Returns 0 or a negative errno: -EINVAL as
 * af_synth_info(); -ENOMEM when the modelled RAM cannot hold the processes
 * alive at once (or the host is out of memory); -ENOSPC on sparc-linux when
 * more than 1023 address spaces are alive at once; the writer's errors. On
 * error the trace is incomplete. */
AF_API int af_synth_run(const struct af_synth_opts *o,
			struct af_trace_writer *w);

#ifdef __cplusplus
}
#endif
#endif
