/*
 * lib/synth/synth_int.h - internals of the synthetic kernel models (synth.h):
 * the simulated guest-physical memory and frame allocator (synth_mem.c), the
 * x86 page-table formats and address-space operations (synth_x86.c), the
 * operating-system behaviours shared by every MMU (synth_os.c), and the
 * scheduler and workloads (synth_sched.c). Not installed.
 *
 * Everything here is deterministic: no clocks, no addresses of host objects
 * in any decision, one PRNG seeded from the options.
 */
#ifndef AF_SYNTH_INT_H
#define AF_SYNTH_INT_H

#include <antfarm/synth.h>
#include <stddef.h>
#include <stdint.h>

#define SY_PAGE 4096ull
#define SY_CHUNK 1024u     /* frames per chunk of the frame directory */
#define SY_NSLOTS 6u       /* Linux TLB_NR_DYN_ASIDS: PCID slots per vCPU */
#define SY_CTX_BITS 10u    /* context-id width modelled for sparc-linux */
#define SY_MAX_N 1000000u  /* most processes one run may create */

/* x86 entry bits */
#define SY_P 0x1ull
#define SY_RW 0x2ull
#define SY_US 0x4ull
#define SY_A 0x20ull
#define SY_D 0x40ull
#define SY_PS 0x80ull
#define SY_G 0x100ull
#define SY_NX (1ull << 63)
#define SY_NOFLUSH (1ull << 63) /* CR3 bit 63 with PCIDE */
#define SY_PCID_USER 0x800ull   /* Linux KPTI: user PCID = kernel | 2048 */

/* ---- growable vector of u64 ---- */
struct sy_vec {
	uint64_t *v; /* elements */
	size_t n;    /* used */
	size_t cap;  /* allocated */
};
int sy_vec_push(struct sy_vec *a, uint64_t x);
void sy_vec_free(struct sy_vec *a);

/* ---- simulated guest-physical memory ---- */

/* What the model knows of one frame. */
struct sy_frame {
	uint8_t *data; /* 4 KiB of contents, NULL: all zero */
	uint32_t refs; /* users: mappings, tables, page cache */
};

/* Up to SY_CHUNK consecutive frames, allocated when first touched. */
struct sy_chunk {
	struct sy_frame f[SY_CHUNK]; /* indexed by pfn % SY_CHUNK */
};

struct sy_mem {
	uint64_t phys_bytes;   /* top of RAM */
	uint64_t npfn;         /* frames of RAM */
	struct sy_chunk **dir; /* [ndir] chunks, NULL until touched */
	size_t ndir;           /* entries of dir */
	uint64_t bump;         /* next frame never handed out */
	uint64_t bump_end;     /* end of the general pool (frame number) */
	struct sy_vec free0;   /* freed single frames, LIFO (pfn) */
	struct sy_vec free1;   /* freed 8 KiB blocks, LIFO (first pfn) */
	struct sy_vec hfree;   /* free huge pages, LIFO (physical address) */
	uint64_t huge_size;    /* bytes of one huge page, 0: none */
	uint64_t used;         /* frames handed out now */
	uint64_t peak;         /* most frames handed out at once */
};

int sy_mem_init(struct sy_mem *m, uint64_t phys_bytes, uint64_t huge_size);
void sy_mem_free(struct sy_mem *m);
/* Frame record of pa's frame (creating its chunk), NULL if outside RAM or
 * out of host memory. */
struct sy_frame *sy_frame(struct sy_mem *m, uint64_t pa);
/* Allocators: 0 and *pa set, or -ENOMEM. New frames read as zero. */
int sy_alloc0(struct sy_mem *m, uint64_t *pa);
int sy_alloc1(struct sy_mem *m, uint64_t *pa);
void sy_free0(struct sy_mem *m, uint64_t pa);
void sy_free1(struct sy_mem *m, uint64_t pa);
int sy_huge_alloc(struct sy_mem *m, uint64_t *pa);
void sy_huge_free(struct sy_mem *m, uint64_t pa);
/* Reads/writes up to 8 bytes at pa (little-endian). Writes allocate the
 * frame's contents; -ENOMEM if the host is out of memory. */
uint64_t sy_rd(struct sy_mem *m, uint64_t pa, unsigned width);
int sy_wr(struct sy_mem *m, uint64_t pa, unsigned width, uint64_t val);
/* Zeroes a frame's contents without a trace (clear_page on allocation). */
void sy_zero(struct sy_mem *m, uint64_t pa, size_t len);
/* af_read_phys_fn over this memory. */
int sy_read_phys(void *ctx, uint64_t gpa, void *buf, size_t len);

/* ---- deterministic PRNG (splitmix64) ---- */
uint64_t sy_rand(uint64_t *state);
/* Uniform in [lo, hi] (inclusive). */
uint64_t sy_range(uint64_t *state, uint64_t lo, uint64_t hi);

/* ---- x86 page-table format ---- */
struct sy_fmt {
	enum af_paging mode; /* paging mode */
	unsigned levels;     /* 2 .. 5 */
	unsigned esize;      /* bytes per entry: 4 or 8 */
	unsigned shift[6];   /* virtual-address shift of level l's index */
	unsigned nent[6];    /* entries of a table at level l */
	uint64_t amask;      /* address bits of an entry */
	unsigned user_top;   /* top-level indices [0, user_top) are user */
	uint64_t huge_size;  /* user huge page (leaf at level 2) */
	int nx;              /* entries have an NX bit */
	int split_leaf;      /* leaf PTEs written as two 4-byte stores */
	uint64_t upper;      /* flags of an upper-level user entry */
};

/* ---- programs (what a process image maps) ---- */
enum sy_kind {
	SYK_TEXT = 1,  /* file text: page-cache frames, read-only */
	SYK_DATA = 2,  /* private writable (data, bss, heap, stack) */
	SYK_SHARED = 3, /* one frame shared by everyone (vdso, SharedUserData) */
	SYK_HUGE = 4,  /* one huge page, private writable */
};

/* Programs a process image can be. */
enum sy_prog {
	P_INIT, P_DAEMON, P_SH, P_CHILD, P_MAKE, P_GCC, P_CC1, P_AS, P_LD,
	P_COLLECT2, P_EPI, P_NPROG
};
#define SY_FILE_LIB1 16 /* page-cache file of libc (Windows: ntdll) */
#define SY_FILE_LIB2 17 /* ld.so (Windows: kernel32) */

/* One mapped user page (or huge page) of an address space. */
struct sy_page {
	uint64_t va;    /* virtual address */
	uint64_t pa;    /* physical address */
	uint8_t kind;   /* enum sy_kind */
	uint8_t rw;     /* writable now (0 for COW-shared private pages) */
	uint8_t huge;   /* a huge-page leaf at level 2 */
};

/* ---- address spaces ---- */
struct sy_mm {
	uint64_t root;     /* x86: root (kernel root under KPTI) */
	uint64_t uroot;    /* x86 KPTI: user root, else 0 */
	uint64_t asid;     /* ground-truth identifier: root or context id */
	uint64_t id;       /* unique number (Linux ctx_id, for PCID slots) */
	uint64_t gen;      /* TLB generation: bumps when mappings go away */
	uint64_t loaded;   /* bit v: loaded on vCPU v */
	uint64_t pmd[4];   /* PAE: preallocated user PMDs */
	uint64_t hyper[4]; /* Windows: per-process hyperspace tables */
	unsigned ctx;      /* sparc-linux: context id */
	unsigned users;    /* processes using it (vfork shares) */
	int dead;          /* torn down: released once loaded nowhere */
	int kernel;        /* the kernel's own (idle) address space */
	struct sy_page *pg; /* user mappings */
	size_t npg, cappg;  /* used, allocated */
	struct sy_mm *next; /* every mm, for cleanup */
};

/* ---- processes ---- */
enum sy_role {
	R_INIT = 1,   /* pid 1: starts the daemons and the driver */
	R_DAEMON,     /* wakes now and then, forever */
	R_DRIVER,     /* the workload's shell */
	R_CHILD,      /* synthetic workload process */
	R_MAKE,       /* compile: make -j */
	R_JOBSH,      /* compile: sh -c "..." started by make */
	R_SUBSH,      /* compile: a subshell (fork without exec) */
	R_GCC,        /* compile: the gcc driver */
	R_COLLECT2,   /* compile: collect2 (link) */
	R_TOOL,       /* compile: cc1, as, ld: CPU-bound, then exit */
	R_EPILOGUE,   /* after the window: short commands (see synth_sched.c) */
};

enum sy_state { S_NEW, S_RUNNABLE, S_RUNNING, S_SLEEPING, S_BLOCKED, S_DEAD };

/* What happens when the current burst ends. */
enum sy_next { N_SLEEP, N_EXIT, N_YIELD, N_BLOCK, N_CONT };

/* How a process is created. */
enum sy_how { H_FORK, H_FORKEXEC, H_VFORKEXEC, H_CREATE };

struct sy_proc {
	uint32_t pid, ppid;    /* ids */
	struct sy_proc *parent; /* NULL for init */
	struct sy_mm *mm;      /* address space in use */
	int role;              /* enum sy_role */
	int pc;                /* step in its role */
	int state;             /* enum sy_state */
	int next;              /* enum sy_next, set by its step */
	unsigned vcpu;         /* vCPU it runs on or last ran on */
	int exec_prog;         /* program to exec at first run, -1: none */
	int prog;              /* program its image is */
	int job;               /* compile: job kind */
	uint64_t burst;        /* ns of the current burst */
	uint64_t wake_at;      /* sleeping: when to wake */
	uint64_t death;        /* synthetic: when to exit */
	uint64_t cpu_left;     /* CPU-bound tools: work left */
	unsigned children;     /* live children */
	int wait_any;          /* blocked until a child exits */
	int wait_all;          /* blocked until every child exited */
	int vfork_wait;        /* blocked until the vfork child execs/exits */
	int vfork_child;       /* it is a vfork child that has not exec'd */
	int pin;               /* vCPU it must wake on, -1: any */
	int wake_hint;         /* vCPU its pending wake-up prefers, -1: any */
	int wake_pending;      /* woken while still running */
	unsigned pokes;        /* explicit wake-up events queued for it */
	unsigned slide[3];     /* ASLR: executable, mmap base, stack */
	unsigned faulted;      /* image pages mapped so far */
	unsigned extra;        /* heap pages mapped beyond the image */
	struct sy_proc *rq_next; /* run-queue link */
	struct sy_proc *prev_all, *next_all; /* processes not yet freed */
};

/* ---- vCPUs ---- */
struct sy_vcpu {
	struct sy_proc *cur;     /* running process, NULL: idle */
	struct sy_mm *mm;        /* address space loaded, NULL: none yet */
	int user;                /* KPTI: the user root is loaded */
	struct sy_proc *rq_head, *rq_tail; /* runnable, FIFO */
	uint64_t icount;         /* instructions retired (model) */
	uint64_t last_t;         /* time icount was last advanced */
	uint64_t slot_id[SY_NSLOTS];  /* PCID slots: mm id, 0 none */
	uint64_t slot_gen[SY_NSLOTS]; /* generation the slot is valid for */
	unsigned next_slot;      /* round-robin slot allocator */
	unsigned cur_slot;       /* slot of the loaded mm */
	unsigned user_flush;     /* bit s: user PCID of slot s is stale */
	int busy;                /* a burst is in flight */
};

/* ---- events ---- */
enum sy_evtype { EV_WAKE = 1, EV_END = 2, EV_KICK = 3, EV_POKE = 4 };
struct sy_ev {
	uint64_t t;   /* when */
	uint64_t seq; /* tie-break: order of scheduling */
	int type;     /* enum sy_evtype */
	unsigned v;   /* EV_END: vCPU */
	struct sy_proc *p; /* process */
};

/* ---- the model ---- */
struct sy {
	struct af_synth_opts o;       /* normalised options */
	struct af_trace_writer *w;    /* output */
	struct af_recorder *rec;      /* engine + recorder */
	int err;                      /* first error, sticky */
	int check;                    /* verify the model's own invariants */
	uint64_t rng;                 /* PRNG state */
	uint64_t now;                 /* model clock, ns */

	/* OS and MMU */
	int sparc, windows, linux26;  /* which OS */
	int kpti, pcid, lazy;         /* options in force */
	struct sy_fmt f;              /* x86 format */
	struct sy_mem mem;            /* guest RAM */
	uint64_t ktpl;                /* x86: root holding the kernel half */
	uint64_t ptitpl;              /* KPTI: user-root kernel half template */
	uint64_t shared_pa;           /* vdso / SharedUserData frame */
	struct sy_vec pae_slots;      /* PAE: free 32-byte root slots, LIFO */
	struct sy_mm *kmm;            /* kernel (idle) address space */
	struct sy_mm *mms;            /* every mm */
	uint64_t next_mm_id;          /* for sy_mm.id */
	struct sy_vec gather;         /* frames to free after the flush:
	                                 pa | 1 (8 KiB) or | 2 (huge page) */
	uint8_t ctx_used[1u << SY_CTX_BITS]; /* sparc: live contexts */
	unsigned ctx_last;            /* sparc: last context handed out */

	/* programs: page cache per program file */
	struct sy_vec cache[32];      /* [file] pfn per page, 0: not cached */

	/* vCPUs and processes */
	unsigned nv;                  /* vCPUs */
	struct sy_vcpu v[AF_MAX_VCPUS];
	unsigned cv;                  /* vCPU acting now */
	struct sy_proc *procs;        /* processes not yet freed */
	uint32_t next_pid;            /* next pid */
	struct sy_proc *driver;       /* the workload's shell */

	/* events */
	struct sy_ev *heap;           /* binary heap */
	size_t nheap, capheap;        /* used, allocated */
	uint64_t evseq;               /* next tie-break */

	/* workload progress */
	uint64_t next_spawn;          /* synthetic: next creation time */
	unsigned spawned;             /* workload processes created */
	unsigned budget;              /* compile: processes still to create */
	unsigned running_jobs;        /* compile: jobs make has running */
	unsigned jobs_max;            /* compile: -j */
	int done;                     /* stop the simulation */
	unsigned epilogue_left;       /* post-window commands still to run */
};

/* ---- emission (synth_os.c) ---- */
void sy_obs(struct sy *s, unsigned kind, unsigned width, uint64_t addr,
	    uint64_t value, uint32_t aux, uint64_t cost);
void sy_truth(struct sy *s, unsigned kind, const struct sy_proc *p,
	      uint64_t asid);
void sy_advance(struct sy *s, uint64_t ns);

/* ---- x86 (synth_x86.c) ---- */
int sy_x86_setup(struct sy *s);
int sy_x86_mm_alloc(struct sy *s, struct sy_mm *mm);
void sy_x86_mm_init(struct sy *s, struct sy_mm *mm);
int sy_x86_map(struct sy *s, struct sy_mm *mm, uint64_t va, uint64_t pa,
	       int kind, int huge);
void sy_x86_set_leaf(struct sy *s, struct sy_mm *mm, struct sy_page *pg,
		     int present, int only_low);
int sy_x86_copy(struct sy *s, struct sy_mm *from, struct sy_mm *to);
void sy_x86_zap(struct sy *s, struct sy_mm *mm, size_t first, size_t n);
void sy_x86_free_tables(struct sy *s, struct sy_mm *mm);
void sy_x86_release_root(struct sy *s, struct sy_mm *mm);
void sy_x86_switch(struct sy *s, unsigned v, struct sy_mm *next);
void sy_x86_local_flush(struct sy *s, unsigned v);
void sy_x86_flush_page(struct sy *s, unsigned v, uint64_t va);
void sy_x86_to_user(struct sy *s, unsigned v);
void sy_x86_to_kernel(struct sy *s, unsigned v);
/* Counts the user mappings of mm by walking the model's own tables (for
 * self-checks): present leaves reached through user entries. */
uint64_t sy_x86_count_user(struct sy *s, const struct sy_mm *mm);

/* ---- OS behaviours (synth_os.c) ---- */
struct sy_mm *sy_mm_new(struct sy *s, int kernel);
void sy_switch(struct sy *s, unsigned v, struct sy_mm *next);
void sy_enter_kernel(struct sy *s);
void sy_return_user(struct sy *s);
struct sy_proc *sy_spawn(struct sy *s, struct sy_proc *parent, int how,
			 int role, int prog);
void sy_exec(struct sy *s, struct sy_proc *p, int prog);
void sy_exit(struct sy *s, struct sy_proc *p);
void sy_proc_free(struct sy *s, struct sy_proc *p);
void sy_fault_in(struct sy *s, struct sy_proc *p, unsigned max_pages);
void sy_map_huge(struct sy *s, struct sy_proc *p);
void sy_touch(struct sy *s, struct sy_proc *p, unsigned cow_breaks,
	      unsigned new_pages, unsigned unmaps);
int sy_boot(struct sy *s);

/* Checks mm's tables against its page list (and, under KPTI, the user
 * root against the kernel root): -EPROTO on a mismatch. empty: every user
 * table must be gone too. */
int sy_x86_check(struct sy *s, const struct sy_mm *mm, int empty);

/* af_synth_run(), optionally verifying the model's invariants as it goes
 * (for tests): a violation ends the run with -EPROTO. */
int sy_synth_run(const struct af_synth_opts *o, struct af_trace_writer *w,
		 int check);

/* ---- scheduler (synth_sched.c) ---- */
int sy_run(struct sy *s);
void sy_wake(struct sy *s, struct sy_proc *p, uint64_t t, int hint_vcpu);
void sy_enqueue(struct sy *s, struct sy_proc *p, unsigned v, int front);

#endif
