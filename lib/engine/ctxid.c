/*
 * lib/engine/ctxid.c - the context-id technique (Antfarm paper 4.2): for
 * MMUs whose TLB entries are tagged with a context id the OS installs
 * (SPARC, and the ASIDs of ARM64 and RISC-V).
 *
 *   create  a context id is loaded that is not live
 *   switch  the id loaded on a vCPU changes
 *   exit    a live id is demapped (every TLB entry of it flushed), which
 *           is what an OS must do before it may reuse the id
 *
 * The id space is bounded (ctx_bits); ids are masked into it, and a table of
 * 2^ctx_bits slots maps each id to its live address space.
 */
#include "engine_impl.h"

#include <errno.h>
#include <stdlib.h>

int af_ctx_init(struct af_engine *e)
{
	size_t n = (size_t)1 << e->cfg.ctx_bits;

	e->ctx_space = malloc(n * sizeof(*e->ctx_space));
	if (!e->ctx_space)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		e->ctx_space[i] = AF_NIL;
	return 0;
}

void af_ctx_free(struct af_engine *e)
{
	free(e->ctx_space);
	e->ctx_space = NULL;
}

static uint64_t ctx_id(struct af_engine *e, uint64_t value)
{
	uint64_t mask = (1ull << e->cfg.ctx_bits) - 1;

	if (value & ~mask)
		e->cnt.bad_entries++;
	return value & mask;
}

int af_ctx_observe(struct af_engine *e, const struct af_obs *o)
{
	unsigned v = o->vcpu;
	uint64_t id;
	uint32_t s;

	switch (o->kind) {
	case AF_OBS_CTX_LOAD:
		e->cnt.root_loads++;
		id = ctx_id(e, o->value);
		e->vcpu[v].ctx = id;
		s = e->ctx_space[id];
		if (s == AF_NIL) {
			s = af_space_new(e, id);
			if (s == AF_NIL) {
				/* pool full: the vCPU runs something untracked */
				if (e->vcpu[v].cur != AF_NIL)
					e->spaces[e->vcpu[v].cur].loaded &=
						~(1ull << v);
				e->vcpu[v].cur = AF_NIL;
				return 0;
			}
			e->ctx_space[id] = s;
		}
		af_space_switch_to(e, v, s);
		return 0;
	case AF_OBS_CTX_DEMAP:
		e->cnt.flushes++;
		id = ctx_id(e, o->value);
		s = e->ctx_space[id];
		if (s != AF_NIL) {
			e->ctx_space[id] = AF_NIL;
			af_space_release(e, s);
		}
		return 0;
	case AF_OBS_TLB_FLUSH:
		/* a flush of one context id is a demap of it; flushes of
		 * everything or of single pages are not taken as demaps
		 * (the paper's rule watches context demaps only) */
		e->cnt.flushes++;
		if (o->width == AF_FLUSH_ASID) {
			struct af_obs d = *o;
			d.kind = AF_OBS_CTX_DEMAP;
			e->cnt.flushes--;
			return af_ctx_observe(e, &d);
		}
		return 0;
	case AF_OBS_ROOT_LOAD:
	case AF_OBS_PT_STORE:
	case AF_OBS_PAGING:
		/* not meaningful for this MMU: ignored, as a VMM would */
		return 0;
	default:
		return -EINVAL;
	}
}
