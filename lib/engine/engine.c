/*
 * lib/engine/engine.c - the engine object: configuration, the pool of
 * inferred address spaces (the process table), events, counters, and the
 * dispatch of observations to the technique for the guest's MMU (x86.c for
 * page-table MMUs, ctxid.c for context-id MMUs).
 */
#include "engine_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- address spaces ---- */

struct af_tag *af_space_tags(struct af_engine *e, uint32_t s, unsigned v)
{
	return &e->tags[((size_t)s * e->cfg.n_vcpus + v) * AF_TAGS];
}

/* Takes a space from the pool and emits nothing yet; AF_NIL if full. */
uint32_t af_space_new(struct af_engine *e, uint64_t asid)
{
	uint32_t s = e->free_space;
	struct af_space *sp;

	if (s != AF_NIL) {
		e->free_space = e->spaces[s].next;
	} else if (e->fresh_space < e->max_spaces) {
		s = e->fresh_space++; /* same order as a list of all slots */
	} else {
		e->cnt.table_full++;
		return AF_NIL;
	}
	sp = &e->spaces[s];
	memset(sp, 0, sizeof(*sp));
	memset(af_space_tags(e, s, 0), 0,
	       sizeof(struct af_tag) * AF_TAGS * e->cfg.n_vcpus);
	for (int i = 0; i < AF_MAX_ROOTS; i++)
		sp->roots[i] = AF_NIL;
	sp->asid = asid;
	sp->serial = ++e->serial;
	sp->created_ns = e->now_ns;
	sp->last_run_ns = e->now_ns;
	sp->live = 1;
	sp->pprev = sp->pnext = AF_NIL;
	sp->prev = e->live_tail;
	sp->next = AF_NIL;
	if (e->live_tail != AF_NIL)
		e->spaces[e->live_tail].next = s;
	else
		e->live_head = s;
	e->live_tail = s;
	e->n_live++;
	af_space_emit(e, AF_EV_CREATE, s, AF_ASID_NONE);
	return s;
}

void af_space_emit(struct af_engine *e, unsigned kind, uint32_t s,
		   uint64_t prev_asid)
{
	struct af_event ev = {
		.kind = (uint8_t)kind,
		.vcpu = e->now_vcpu,
		.time_ns = e->now_ns,
		.icount = e->now_icount,
		.asid = e->spaces[s].asid,
		.prev_asid = prev_asid,
		.serial = e->spaces[s].serial,
	};

	if (kind == AF_EV_CREATE)
		e->cnt.creates++;
	else if (kind == AF_EV_EXIT)
		e->cnt.exits++;
	else
		e->cnt.switches++;
	if (e->cfg.on_event)
		e->cfg.on_event(e->cfg.event_ctx, &ev);
}

void af_pending_add(struct af_engine *e, uint32_t s)
{
	struct af_space *sp = &e->spaces[s];

	if (sp->pending)
		return;
	sp->pending = 1;
	sp->pprev = AF_NIL;
	sp->pnext = e->pend_head;
	if (e->pend_head != AF_NIL)
		e->spaces[e->pend_head].pprev = s;
	e->pend_head = s;
}

void af_pending_del(struct af_engine *e, uint32_t s)
{
	struct af_space *sp = &e->spaces[s];

	if (!sp->pending)
		return;
	if (sp->pprev != AF_NIL)
		e->spaces[sp->pprev].pnext = sp->pnext;
	else
		e->pend_head = sp->pnext;
	if (sp->pnext != AF_NIL)
		e->spaces[sp->pnext].pprev = sp->pprev;
	sp->pending = 0;
	sp->pprev = sp->pnext = AF_NIL;
}

/* Emits the exit and returns the space to the pool. The technique has already
 * let go of whatever it held (roots, context id). */
void af_space_release(struct af_engine *e, uint32_t s)
{
	struct af_space *sp = &e->spaces[s];

	af_pending_del(e, s);
	af_space_emit(e, AF_EV_EXIT, s, AF_ASID_NONE);
	for (unsigned v = 0; v < e->cfg.n_vcpus; v++)
		if (e->vcpu[v].cur == s)
			e->vcpu[v].cur = AF_NIL;
	if (sp->prev != AF_NIL)
		e->spaces[sp->prev].next = sp->next;
	else
		e->live_head = sp->next;
	if (sp->next != AF_NIL)
		e->spaces[sp->next].prev = sp->prev;
	else
		e->live_tail = sp->prev;
	e->n_live--;
	sp->live = 0;
	sp->next = e->free_space;
	e->free_space = s;
}

/* Makes s current on vCPU v, emitting a switch if that changes anything. */
void af_space_switch_to(struct af_engine *e, unsigned v, uint32_t s)
{
	uint32_t prev = e->vcpu[v].cur;

	e->spaces[s].last_run_ns = e->now_ns;
	if (prev == s)
		return;
	if (prev != AF_NIL)
		e->spaces[prev].loaded &= ~(1ull << v);
	e->spaces[s].loaded |= 1ull << v;
	e->vcpu[v].cur = s;
	af_space_emit(e, AF_EV_SWITCH, s,
		      prev == AF_NIL ? AF_ASID_NONE : e->spaces[prev].asid);
}

/* ---- the engine ---- */

static void free_all(struct af_engine *e)
{
	af_x86_free(e);
	af_ctx_free(e);
	for (unsigned v = 0; v < AF_MAX_VCPUS; v++)
		free(e->vcpu[v].epoch_pcid);
	free(e->spaces);
	free(e->tags);
	free(e);
}

int af_engine_new(const struct af_engine_config *cfg, struct af_engine **out)
{
	struct af_engine *e;
	int rc;

	*out = NULL;
	if (!cfg || cfg->n_vcpus < 1 || cfg->n_vcpus > AF_MAX_VCPUS)
		return -EINVAL;
	if (cfg->mmu == AF_MMU_X86) {
		if (!cfg->read_phys || cfg->phys_bytes < 4096 ||
		    cfg->phys_bytes > (1ull << 52))
			return -EINVAL;
	} else if (cfg->mmu == AF_MMU_CONTEXT_ID) {
		if (cfg->ctx_bits < 1 || cfg->ctx_bits > 16)
			return -EINVAL;
	} else {
		return -EINVAL;
	}

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->cfg = *cfg;
	e->pend_head = e->live_head = e->live_tail = AF_NIL;
	for (unsigned v = 0; v < AF_MAX_VCPUS; v++) {
		e->vcpu[v].cur = e->vcpu[v].cur_root = AF_NIL;
		e->vcpu[v].ctx = AF_ASID_NONE;
	}

	if (cfg->mmu == AF_MMU_X86) {
		uint64_t pages = cfg->phys_bytes >> 12;
		uint64_t dflt = pages / 8;
		if (dflt < 1024)
			dflt = 1024;
		if (dflt > 65536)
			dflt = 65536;
		e->max_spaces = cfg->max_spaces ? cfg->max_spaces : (uint32_t)dflt;
	} else {
		e->max_spaces = cfg->max_spaces ? cfg->max_spaces
						: 1u << cfg->ctx_bits;
	}
	if (e->max_spaces > (1u << 24))
		e->max_spaces = 1u << 24;

	rc = -ENOMEM;
	e->spaces = calloc(e->max_spaces, sizeof(*e->spaces));
	e->tags = calloc((size_t)e->max_spaces * cfg->n_vcpus * AF_TAGS,
			 sizeof(*e->tags));
	if (!e->spaces || !e->tags)
		goto fail;
	/* slots are handed out from fresh_space upwards once the free list
	 * is empty: nothing to write here (calloc's pages stay untouched) */
	e->free_space = AF_NIL;
	e->fresh_space = 0;

	if (cfg->mmu == AF_MMU_X86) {
		for (unsigned v = 0; v < cfg->n_vcpus; v++) {
			e->vcpu[v].epoch_pcid =
				calloc(AF_NPCID, sizeof(uint32_t));
			if (!e->vcpu[v].epoch_pcid)
				goto fail;
		}
		rc = af_x86_init(e);
	} else {
		rc = af_ctx_init(e);
	}
	if (rc)
		goto fail;
	*out = e;
	return 0;
fail:
	free_all(e);
	return rc;
}

void af_engine_free(struct af_engine *e)
{
	if (e)
		free_all(e);
}

int af_engine_observe(struct af_engine *e, const struct af_obs *o)
{
	if (!e || !o || o->vcpu >= e->cfg.n_vcpus)
		return -EINVAL;
	if (o->kind < AF_OBS_ROOT_LOAD || o->kind > AF_OBS_TIME)
		return -EINVAL;
	e->now_ns = o->time_ns;
	e->now_icount = o->icount;
	e->now_vcpu = o->vcpu;
	e->cnt.observations++;
	if (o->kind == AF_OBS_TIME)
		return 0;
	if (e->cfg.mmu == AF_MMU_X86) {
		/* most observations: straight to the small store path */
		if (o->kind == AF_OBS_PT_STORE)
			return af_x86_store(e, o);
		return af_x86_observe(e, o);
	}
	return af_ctx_observe(e, o);
}

uint64_t af_engine_current(const struct af_engine *e, unsigned vcpu)
{
	if (!e || vcpu >= e->cfg.n_vcpus || e->vcpu[vcpu].cur == AF_NIL)
		return AF_ASID_NONE;
	return e->spaces[e->vcpu[vcpu].cur].asid;
}

size_t af_engine_processes(const struct af_engine *e, struct af_process *out,
			   size_t max)
{
	size_t i = 0;

	for (uint32_t s = e->live_head; s != AF_NIL; s = e->spaces[s].next) {
		const struct af_space *sp = &e->spaces[s];
		if (i < max && out) {
			out[i] = (struct af_process){
				.serial = sp->serial,
				.asid = sp->asid,
				.created_ns = sp->created_ns,
				.last_run_ns = sp->last_run_ns,
				.user_pages = sp->ucount,
				.running_on = sp->loaded,
				.n_roots = sp->n_roots,
				.exiting = sp->pending,
			};
		}
		i++;
	}
	return i;
}

void af_engine_counters(const struct af_engine *e, struct af_counters *out)
{
	*out = e->cnt;
}

int af_engine_is_page_table(const struct af_engine *e, uint64_t gpa)
{
	uint64_t gfn = gpa >> 12;

	if (!e || !e->frame_of || gfn >= e->phys_pages)
		return 0;
	return __atomic_load_n(&e->frame_of[gfn], __ATOMIC_RELAXED) != 0;
}

enum af_paging af_x86_paging_mode(uint64_t cr0, uint64_t cr4, uint64_t efer,
				  uint32_t *flags)
{
	uint32_t f = 0;
	enum af_paging m;

	if (!(cr0 & (1ull << 31)))
		m = AF_PAGING_OFF;
	else if (efer & (1ull << 10))
		m = (cr4 & (1ull << 12)) ? AF_PAGING_5LEVEL : AF_PAGING_4LEVEL;
	else if (cr4 & (1ull << 5))
		m = AF_PAGING_PAE;
	else
		m = AF_PAGING_32;
	if (cr4 & (1ull << 4))
		f |= AF_PAGING_F_PSE;
	if ((cr4 & (1ull << 17)) && (m == AF_PAGING_4LEVEL || m == AF_PAGING_5LEVEL))
		f |= AF_PAGING_F_PCIDE;
	if (flags)
		*flags = f;
	return m;
}

static const char *pick(const char *const *names, size_t n, unsigned i)
{
	return i < n && names[i] ? names[i] : "unknown";
}

#define NAMES(a) a, sizeof(a) / sizeof(a[0])

const char *af_event_kind_name(unsigned kind)
{
	static const char *const n[] = { NULL, "create", "exit", "switch" };
	return pick(NAMES(n), kind);
}

const char *af_obs_kind_name(unsigned kind)
{
	static const char *const n[] = { NULL,	    "root_load", "pt_store",
					 "tlb_flush", "ctx_load",  "ctx_demap",
					 "paging",    "time" };
	return pick(NAMES(n), kind);
}

const char *af_flush_name(unsigned kind)
{
	static const char *const n[] = { NULL,	 "all",	 "nonglobal",
					 "asid", "page", "asid_page" };
	return pick(NAMES(n), kind);
}

const char *af_paging_name(unsigned mode)
{
	static const char *const n[] = { "off", "32bit", "pae", "4level",
					 "5level" };
	return pick(NAMES(n), mode);
}
