/*
 * lib/engine/engine_impl.h - the engine's internal state, shared by engine.c
 * (configuration, address spaces, events), x86.c (page-table technique) and
 * ctxid.c (context-id technique). Not installed.
 *
 * Everything is allocated once in af_engine_new(), sized from the guest's RAM
 * (or context-id width), and indexed by 32-bit slots; AF_NIL is "no slot".
 * Observations never allocate.
 */
#ifndef AF_ENGINE_IMPL_H
#define AF_ENGINE_IMPL_H

#include <antfarm/engine.h>
#include <stdbool.h>

#define AF_NIL UINT32_MAX
#define AF_MAX_ROOTS 4      /* roots one address space may have (KPTI: 2) */
#define AF_TAGS 2           /* PCIDs remembered per (space, vCPU) */
#define AF_NPCID 4096       /* x86 PCIDs */
#define AF_MAX_LEVELS 5     /* deepest x86 paging */
#define AF_MAX_COLINKS 1024 /* shared frames remembered during one root walk */

/* Frame flags. */
#define AF_FR_ROOT 0x1     /* the root (top level) of some address space */
#define AF_FR_COMMON 0x2   /* shared by several address spaces (kernel):
                              its user leaves count for nobody */
#define AF_FR_PAE_ROOT 0x4 /* a 32-byte PAE PDPT, not a whole frame */

/* TLB footprint of one address space on one vCPU under one PCID. */
struct af_tag {
	uint16_t pcid;        /* PCID the space was loaded with */
	uint8_t valid;        /* may hold TLB entries */
	uint8_t active;       /* loaded right now under this PCID */
	uint32_t stamp_all;   /* vCPU's all-PCID flush epoch when it stopped */
	uint32_t stamp_pcid;  /* vCPU's flush epoch for pcid when it stopped */
};

/* One inferred address space (process). */
struct af_space {
	uint64_t asid;        /* identifier: first root's address or context id */
	uint64_t serial;      /* inferred process number */
	uint64_t created_ns;  /* time of the create event */
	uint64_t last_run_ns; /* last load on any vCPU */
	uint64_t ucount;      /* user mappings counted (x86) */
	uint64_t loaded;      /* bit v: current on vCPU v */
	uint32_t roots[AF_MAX_ROOTS]; /* its root frames (x86) */
	uint32_t prev, next;  /* live list in creation order, or free list */
	uint32_t pprev, pnext; /* pending-exit list */
	uint8_t n_roots;      /* roots in use */
	uint8_t live;         /* in use */
	uint8_t had_user;     /* ucount has been > 0 */
	uint8_t pending;      /* on the pending-exit list */
};

/* One tracked page-table frame (or PAE PDPT). */
struct af_frame {
	uint64_t addr;        /* guest-physical address of the table */
	uint32_t parent;      /* table whose entry first linked this one (the
	                         edge counts propagate along), AF_NIL if none */
	uint32_t space;       /* roots only: the address space */
	uint32_t ucount;      /* user leaves in the subtree along first links */
	uint16_t pidx;        /* index of that entry in parent */
	uint16_t nlinks;      /* entries linking this table (all parents) */
	uint8_t level;        /* 1 = page table ... 5 = PML5 */
	uint8_t mode;         /* enum af_paging it was read under */
	uint8_t flags;        /* AF_FR_* */
	uint8_t live;         /* in use */
	uint64_t user[16];    /* bit i: entry i is a counted user leaf, or
	                         (above level 1) a link to a tracked table */
};

/* A link: entry idx of table parent points at table child. */
struct af_link {
	uint64_t key;         /* (parent slot << 11 | idx) + 1; 0 = empty */
	uint32_t child;       /* linked table */
};

/* Per-vCPU state. */
struct af_vcpu {
	uint32_t cur;         /* current space slot, AF_NIL if none */
	uint32_t cur_root;    /* current root frame slot, AF_NIL if none */
	uint16_t cur_pcid;    /* PCID of the current root */
	uint8_t mode;         /* enum af_paging */
	uint8_t flags;        /* AF_PAGING_F_* */
	uint32_t epoch_all;   /* bumps on every flush of all PCIDs */
	uint32_t *epoch_pcid; /* [AF_NPCID] bumps on a flush of that PCID */
	uint64_t ctx;         /* context-id MMUs: current id, AF_ASID_NONE */
};

struct af_engine {
	struct af_engine_config cfg;    /* as given */
	struct af_counters cnt;         /* counters */
	uint64_t serial;                /* last serial handed out */
	uint64_t now_ns;                /* time of the observation in hand */
	uint64_t now_icount;            /* its instruction count */
	uint16_t now_vcpu;              /* its vCPU */
	struct af_vcpu vcpu[AF_MAX_VCPUS]; /* per vCPU */

	/* address spaces */
	struct af_space *spaces;        /* [max_spaces] */
	struct af_tag *tags;            /* [max_spaces][n_vcpus][AF_TAGS] */
	uint32_t max_spaces;            /* pool size */
	uint32_t free_space;            /* free list head (released slots) */
	uint32_t fresh_space;           /* slots [fresh_space, max_spaces)
	                                   never used yet (not on the list,
	                                   so their memory is not touched) */
	uint32_t live_head, live_tail;  /* live list, creation order */
	uint32_t n_live;                /* live spaces */
	uint32_t pend_head;             /* pending-exit list */

	/* x86 page tables */
	uint64_t phys_pages;            /* frames of guest RAM */
	uint32_t *frame_of;             /* [phys_pages] slot + 1, 0 = none */
	struct af_frame *frames;        /* [max_frames] */
	uint32_t max_frames;            /* pool size */
	uint32_t free_frame;            /* free list (through parent) */
	uint32_t fresh_frame;           /* slots [fresh_frame, max_frames)
	                                   never used yet */
	uint32_t n_two;                 /* live frames linked from exactly two
	                                   entries and not common: the only
	                                   tables late_join() can act on */
	struct af_link *links;          /* [link_cap] open addressing */
	uint64_t link_mask;             /* link_cap - 1 */
	uint64_t n_links;               /* in use */
	struct af_link *roots;          /* [root_cap] root address -> frame */
	uint64_t root_mask;             /* root_cap - 1 */
	uint64_t n_rootkeys;            /* roots in the root table */
	unsigned walking;               /* walk() nesting: exits deferred */
	bool deferred;                  /* an exit was deferred */
	uint8_t *buf;                   /* [AF_MAX_LEVELS + 1][4096] walk */
	uint32_t colinks[AF_MAX_COLINKS]; /* shared tables met in a root walk */
	uint32_t n_colinks;             /* entries used */
	bool in_root_walk;              /* collecting colinks */

	/* context ids */
	uint32_t *ctx_space;            /* [1 << ctx_bits] space slot or AF_NIL */
};

/* engine.c */
uint32_t af_space_new(struct af_engine *e, uint64_t asid);
void af_space_emit(struct af_engine *e, unsigned kind, uint32_t s,
		   uint64_t prev_asid);
void af_space_release(struct af_engine *e, uint32_t s);
void af_space_switch_to(struct af_engine *e, unsigned v, uint32_t s);
struct af_tag *af_space_tags(struct af_engine *e, uint32_t s, unsigned v);
void af_pending_add(struct af_engine *e, uint32_t s);
void af_pending_del(struct af_engine *e, uint32_t s);

/* x86.c */
int af_x86_init(struct af_engine *e);
void af_x86_free(struct af_engine *e);
int af_x86_observe(struct af_engine *e, const struct af_obs *o);
int af_x86_store(struct af_engine *e, const struct af_obs *o); /* PT_STORE */
void af_x86_drop_space(struct af_engine *e, uint32_t s);

/* ctxid.c */
int af_ctx_init(struct af_engine *e);
void af_ctx_free(struct af_engine *e);
int af_ctx_observe(struct af_engine *e, const struct af_obs *o);

#endif
