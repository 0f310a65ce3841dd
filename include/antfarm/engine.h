/*
 * antfarm/engine.h - the process-inference engine.
 *
 * A virtual machine monitor feeds the engine what it sees the guest do to its
 * MMU (observations); the engine infers address-space (process) creation,
 * exit and context switch from them, without any knowledge of the guest OS,
 * following Antfarm (Jones et al., USENIX ATC 2006, section 4, Table 1):
 *
 *   x86 (page-table MMUs)        context-id MMUs (SPARC, ARM64 ASID, RISC-V)
 *   ASID    root (CR3) address   context id
 *   create  a root never seen    an id not live
 *   exit    no user mappings     context demap
 *           and TLB flushed
 *   switch  root load changes AS context-id load changes
 *
 * Ownership: the engine owns everything it allocates; observations passed in
 * are copied; events passed to the callback are valid only during the call.
 *
 * Threads: an af_engine is not internally synchronised. The caller serialises
 * every call on one engine (the QEMU plugin does so), except
 * af_engine_is_page_table(), which may be called concurrently with anything
 * and never blocks.
 *
 * Errors are negative errno values. Nothing the guest does is an error: bad
 * page-table entries, roots outside RAM and the like are counted in
 * struct af_counters and otherwise ignored.
 */
#ifndef ANTFARM_ENGINE_H
#define ANTFARM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(AF_STATIC_BUILD)
#define AF_API __attribute__((visibility("default")))
#else
#define AF_API
#endif

/* Most vCPUs one engine tracks. */
#define AF_MAX_VCPUS 64
/* "No address space" (vCPU running with no root loaded yet, or unknown). */
#define AF_ASID_NONE UINT64_MAX

/* Which MMU technique the engine applies. */
enum af_mmu {
	AF_MMU_X86 = 1,        /* hardware-walked page tables, CR3 roots */
	AF_MMU_CONTEXT_ID = 2, /* software TLB tagged with a context id */
};

/* x86 paging mode of one vCPU (architectural, from CR0/CR4/EFER). */
enum af_paging {
	AF_PAGING_OFF = 0,    /* CR0.PG clear: root loads are ignored */
	AF_PAGING_32 = 1,     /* two-level 32-bit, 4 MiB pages if PSE */
	AF_PAGING_PAE = 2,    /* three-level PAE, 32-byte aligned root */
	AF_PAGING_4LEVEL = 3, /* IA-32e 4-level */
	AF_PAGING_5LEVEL = 4, /* IA-32e 5-level (CR4.LA57) */
};

/* Flags carried with AF_OBS_PAGING in af_obs.aux. */
#define AF_PAGING_F_PSE   0x1u /* CR4.PSE: 4 MiB pages in 32-bit paging */
#define AF_PAGING_F_PCIDE 0x2u /* CR4.PCIDE: CR3 bits 0-11 are a PCID */

/* Kinds of observation. */
enum af_obs_kind {
	AF_OBS_ROOT_LOAD = 1, /* x86 CR3 write; value = the CR3 value written */
	AF_OBS_PT_STORE = 2,  /* guest store: addr = guest-physical address,
	                         width = 1/2/4/8 bytes, value = bytes stored */
	AF_OBS_TLB_FLUSH = 3, /* width = enum af_flush; value = PCID/ASID
	                         (AF_FLUSH_ASID*), addr = virtual address
	                         (AF_FLUSH_PAGE, AF_FLUSH_ASID_PAGE) */
	AF_OBS_CTX_LOAD = 4,  /* context-id register write; value = id */
	AF_OBS_CTX_DEMAP = 5, /* demap of a whole context; value = id */
	AF_OBS_PAGING = 6,    /* paging-mode change; value = enum af_paging,
	                         aux = AF_PAGING_F_* */
	AF_OBS_TIME = 7,      /* time passes; nothing else */
};

/* What a TLB flush covers (x86 names; other MMUs map onto them). */
enum af_flush {
	AF_FLUSH_ALL = 1,       /* everything, global entries too (CR4.PGE
	                           toggle, INVPCID type 2) */
	AF_FLUSH_NONGLOBAL = 2, /* all non-global entries of every PCID
	                           (INVPCID type 3; CR3 write without PCIDE) */
	AF_FLUSH_ASID = 3,      /* non-global entries of one PCID/ASID (INVPCID
	                           type 1) */
	AF_FLUSH_PAGE = 4,      /* one page, current PCID (INVLPG) */
	AF_FLUSH_ASID_PAGE = 5, /* one page of one PCID (INVPCID type 0) */
};

/* One observation. Times are ns on a clock shared by all vCPUs and must not
 * go backwards by more than the caller can tolerate in lag figures; icount is
 * the observing vCPU's instruction count (0 if unknown). */
struct af_obs {
	uint8_t kind;     /* enum af_obs_kind */
	uint8_t width;    /* store width in bytes, or enum af_flush */
	uint16_t vcpu;    /* observing vCPU, < n_vcpus */
	uint32_t aux;     /* per-kind extra (AF_PAGING_F_*) */
	uint64_t time_ns; /* when it happened */
	uint64_t icount;  /* vCPU instruction count when it happened */
	uint64_t addr;    /* guest-physical or virtual address, per kind */
	uint64_t value;   /* value written, id, PCID, per kind */
};

/* Kinds of inferred event. */
enum af_event_kind {
	AF_EV_CREATE = 1, /* a new address space (process) first ran */
	AF_EV_EXIT = 2,   /* an address space is gone */
	AF_EV_SWITCH = 3, /* a vCPU switched address space */
};

/* One inferred event. */
struct af_event {
	uint8_t kind;       /* enum af_event_kind */
	uint16_t vcpu;      /* vCPU whose observation produced it */
	uint64_t time_ns;   /* time of that observation */
	uint64_t icount;    /* its instruction count */
	uint64_t asid;      /* root physical address, or context id */
	uint64_t prev_asid; /* AF_EV_SWITCH: address space switched away from,
	                       AF_ASID_NONE if none */
	uint64_t serial;    /* inferred process number: 1, 2, ... in creation
	                       order, never reused (ASIDs are) */
};

/* Reads len bytes of guest-physical memory at gpa into buf. Returns 0, or a
 * negative errno (the engine then treats the memory as absent). Called only
 * from inside af_engine_observe(). */
typedef int (*af_read_phys_fn)(void *ctx, uint64_t gpa, void *buf, size_t len);

/* Optional: a pointer to len bytes of guest-physical memory at gpa that
 * stays valid until af_engine_observe() returns, or NULL (the engine then
 * uses read_phys). Lets the engine scan tables without copying them. */
typedef const void *(*af_view_phys_fn)(void *ctx, uint64_t gpa, size_t len);

/* Receives each inferred event, from inside af_engine_observe(). */
typedef void (*af_event_fn)(void *ctx, const struct af_event *ev);

struct af_engine_config {
	enum af_mmu mmu;           /* technique */
	unsigned n_vcpus;          /* 1 .. AF_MAX_VCPUS */
	uint64_t phys_bytes;       /* top of guest RAM (highest guest-physical
	                              address + 1); page tables above it are
	                              never tracked. x86 only. */
	unsigned ctx_bits;         /* context-id width, 1..16. Context-id only. */
	unsigned max_spaces;       /* most live address spaces tracked; 0 picks
	                              a default from phys_bytes / ctx_bits */
	unsigned flags;            /* AF_ENGINE_* */
	af_read_phys_fn read_phys; /* guest-physical reader; x86 only */
	void *read_ctx;            /* passed to read_phys and view_phys */
	af_view_phys_fn view_phys; /* optional zero-copy reader; may be NULL */
	af_event_fn on_event;      /* may be NULL */
	void *event_ctx;           /* passed to on_event */
};

/* af_engine_config.flags */
/* With PCIDs, wait for a flush of the dead space's PCID on every vCPU that
 * ran it before inferring its exit. Off (the default), a drained space that
 * is loaded nowhere has exited, as without PCIDs, where every root load
 * flushes. Linux retags a dead process's PCID slot only when it needs the
 * slot again, often after it has reused the root for a new process, so the
 * strict rule gives late exits that the paper's matching counts as missed;
 * see docs/engine.md. */
#define AF_ENGINE_STRICT_PCID 0x1u

/* Counters, for diagnostics and the CLI's summaries. */
struct af_counters {
	uint64_t observations;     /* af_engine_observe() calls accepted */
	uint64_t creates;          /* AF_EV_CREATE emitted */
	uint64_t exits;            /* AF_EV_EXIT emitted */
	uint64_t switches;         /* AF_EV_SWITCH emitted */
	uint64_t root_loads;       /* root or context-id loads */
	uint64_t pt_stores;        /* stores that hit a tracked page table */
	uint64_t stray_stores;     /* stores to untracked memory (ignored) */
	uint64_t flushes;          /* TLB flushes and demaps */
	uint64_t frames_tracked;   /* page-table frames tracked now */
	uint64_t frames_walked;    /* frames read and walked, cumulative */
	uint64_t joins;            /* roots found to share user tables with an
	                              existing address space (e.g. KPTI) */
	uint64_t bad_roots;        /* roots outside RAM or unreadable */
	uint64_t bad_entries;      /* entries pointing outside RAM, level
	                              conflicts, loops (ignored) */
	uint64_t table_full;       /* a fixed table was full: tracking degraded */
};

/* One live inferred process (address space). */
struct af_process {
	uint64_t serial;        /* as in af_event.serial */
	uint64_t asid;          /* identifier */
	uint64_t created_ns;    /* time of the create event */
	uint64_t last_run_ns;   /* last time it was loaded on a vCPU */
	uint64_t user_pages;    /* user mappings counted now (x86) */
	uint64_t running_on;    /* bit v set: current on vCPU v */
	unsigned n_roots;       /* roots (x86: 2 with KPTI) */
	int exiting;            /* no user mappings left, waiting for flushes */
};

struct af_engine;

/* Creates an engine; all tables are sized here. Returns 0 and sets *out, or
 * -EINVAL (bad config) or -ENOMEM. */
AF_API int af_engine_new(const struct af_engine_config *cfg,
			 struct af_engine **out);

/* Frees the engine and everything it owns. NULL is accepted. */
AF_API void af_engine_free(struct af_engine *e);

/* Feeds one observation. O(1) except when a root or table is seen for the
 * first time (then each new table frame is read once). Returns 0, or -EINVAL
 * if the observation itself is malformed (unknown kind, vCPU out of range,
 * bad width). */
AF_API int af_engine_observe(struct af_engine *e, const struct af_obs *o);

/* The address space current on a vCPU, or AF_ASID_NONE. */
AF_API uint64_t af_engine_current(const struct af_engine *e, unsigned vcpu);

/* Copies up to max live processes (in creation order) into out; returns how
 * many are live in all. */
AF_API size_t af_engine_processes(const struct af_engine *e,
				  struct af_process *out, size_t max);

/* Copies the counters. */
AF_API void af_engine_counters(const struct af_engine *e,
			       struct af_counters *out);

/* Nonzero if the guest-physical page holding gpa is a tracked page table, so
 * a store there must be passed to af_engine_observe(). Lock-free; may be
 * called from any thread at any time. */
AF_API int af_engine_is_page_table(const struct af_engine *e, uint64_t gpa);

/* x86 helper: the paging mode and AF_PAGING_F_* flags architecturally
 * selected by these control-register values. */
AF_API enum af_paging af_x86_paging_mode(uint64_t cr0, uint64_t cr4,
					 uint64_t efer, uint32_t *flags);

/* Short stable names for enums ("create", "root_load", ...). */
AF_API const char *af_event_kind_name(unsigned kind);
AF_API const char *af_obs_kind_name(unsigned kind);
AF_API const char *af_flush_name(unsigned kind);
AF_API const char *af_paging_name(unsigned mode);

#ifdef __cplusplus
}
#endif
#endif
