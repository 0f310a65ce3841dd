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
	enum af_synth_os os;
	enum af_synth_workload workload;
	unsigned n;            /* processes the workload creates (> 0) */
	uint64_t seed;         /* any value; same seed, same trace */
	unsigned n_vcpus;      /* 1 .. AF_MAX_VCPUS; 0 means 1 */
	enum af_paging paging; /* x86 only; 0 picks 4-level (linux2.6) or
	                          32-bit (linux2.4, windows) */
	int kpti;              /* x86: two roots per address space */
	int pcid;              /* x86: PCIDs, switches without flushing */
	int lazy_tlb;          /* idle/kernel threads borrow the last AS */
	uint64_t lifetime_ns;  /* how long each process lives; 0: 10 s */
	uint64_t interval_ns;  /* between creations; 0: 100 ms (10/s) */
	uint64_t phys_bytes;   /* guest RAM; 0: 128 MiB */
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
 * been opened with af_synth_info()'s info. Returns 0 or a negative errno. */
AF_API int af_synth_run(const struct af_synth_opts *o,
			struct af_trace_writer *w);

#ifdef __cplusplus
}
#endif
#endif
