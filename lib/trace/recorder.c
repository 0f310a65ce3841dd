/*
 * lib/trace/recorder.c - an engine whose guest-memory reads and observations
 * are written to a trace: every read the engine makes becomes a memory record
 * (or a failed-read record) before the observation that caused it.
 */
#include <errno.h>
#include <stdlib.h>

#include "trace_format.h"

struct af_recorder {
	struct af_engine *engine;     /* the engine being recorded */
	struct af_trace_writer *w;    /* the caller's writer */
	af_read_phys_fn read_phys;    /* the caller's real reader */
	void *read_ctx;               /* its context */
	int err;                      /* first write error, sticky */
};

/* The engine's read_phys: the real read, then a record of what it gave. */
static int rec_read_phys(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	struct af_recorder *r = ctx;
	int rc, wrc;

	if (!r->read_phys)
		return -EFAULT;
	rc = r->read_phys(r->read_ctx, gpa, buf, len);
	if (len == 0)
		return rc;
	if (rc == 0)
		wrc = af_trace_write_mem(r->w, gpa, buf, len);
	else
		wrc = af_trace_write_mem_fail(r->w, gpa, len);
	if (wrc && !r->err)
		r->err = wrc;
	return rc;
}

int af_recorder_new(const struct af_engine_config *cfg,
		    struct af_trace_writer *w, struct af_recorder **out)
{
	const struct af_trace_info *info;
	struct af_engine_config c;
	struct af_recorder *r;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!cfg || !w)
		return -EINVAL;
	/* Replay configures its engine from the trace info: it must be the
	 * configuration recorded, or replay would not see what we saw. */
	info = aft_writer_info(w);
	if ((unsigned)cfg->mmu != info->mmu || cfg->n_vcpus != info->n_vcpus ||
	    (cfg->mmu == AF_MMU_X86 && cfg->phys_bytes != info->phys_bytes) ||
	    (cfg->mmu == AF_MMU_CONTEXT_ID && cfg->ctx_bits != info->ctx_bits))
		return -EINVAL;
	r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->w = w;
	r->read_phys = cfg->read_phys;
	r->read_ctx = cfg->read_ctx;
	c = *cfg;
	c.read_phys = rec_read_phys;
	c.view_phys = NULL; /* every read must pass through the recorder */
	c.read_ctx = r;
	rc = af_engine_new(&c, &r->engine);
	if (rc) {
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int af_recorder_observe(struct af_recorder *r, const struct af_obs *o)
{
	int rc;

	if (!r || !o)
		return -EINVAL;
	rc = af_engine_observe(r->engine, o);
	if (rc)
		return rc; /* rejected: nothing happened, nothing to replay */
	rc = af_trace_write_obs(r->w, o);
	if (rc && !r->err)
		r->err = rc;
	return r->err;
}

struct af_engine *af_recorder_engine(struct af_recorder *r)
{
	return r ? r->engine : NULL;
}

void af_recorder_free(struct af_recorder *r)
{
	if (!r)
		return;
	af_engine_free(r->engine);
	free(r);
}
