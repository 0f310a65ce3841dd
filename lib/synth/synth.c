/*
 * lib/synth/synth.c - the public face of the synthetic kernel models
 * (antfarm/synth.h): option parsing and checking, the trace info a run
 * writes, and running a model into a trace writer through a recorder.
 */
#include "synth_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEC 1000000000ull

static const struct {
	const char *name;
	enum af_synth_os os;
} os_names[] = {
	{ "linux2.4", AF_SYNTH_LINUX24 },
	{ "linux2.6", AF_SYNTH_LINUX26 },
	{ "windows", AF_SYNTH_WINDOWS },
	{ "sparc-linux", AF_SYNTH_SPARC_LINUX },
};

static const struct {
	const char *name;
	enum af_synth_workload wl;
} wl_names[] = {
	{ "fork", AF_SYNTH_FORK },
	{ "forkexec", AF_SYNTH_FORKEXEC },
	{ "vforkexec", AF_SYNTH_VFORKEXEC },
	{ "compile", AF_SYNTH_COMPILE },
};

int af_synth_parse_os(const char *name, enum af_synth_os *os)
{
	if (!name || !os)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(os_names) / sizeof(os_names[0]); i++) {
		if (!strcmp(name, os_names[i].name)) {
			*os = os_names[i].os;
			return 0;
		}
	}
	return -EINVAL;
}

int af_synth_parse_workload(const char *name, enum af_synth_workload *wl)
{
	if (!name || !wl)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(wl_names) / sizeof(wl_names[0]); i++) {
		if (!strcmp(name, wl_names[i].name)) {
			*wl = wl_names[i].wl;
			return 0;
		}
	}
	return -EINVAL;
}

static const char *os_name(enum af_synth_os os)
{
	for (size_t i = 0; i < sizeof(os_names) / sizeof(os_names[0]); i++)
		if (os_names[i].os == os)
			return os_names[i].name;
	return "?";
}

static const char *wl_name(enum af_synth_workload wl)
{
	for (size_t i = 0; i < sizeof(wl_names) / sizeof(wl_names[0]); i++)
		if (wl_names[i].wl == wl)
			return wl_names[i].name;
	return "?";
}

/* Checks o and fills n with every default applied. */
static int normalise(const struct af_synth_opts *o, struct af_synth_opts *n)
{
	uint64_t max_phys;
	int sparc, windows;

	if (!o)
		return -EINVAL;
	*n = *o;
	if (n->os < AF_SYNTH_LINUX24 || n->os > AF_SYNTH_SPARC_LINUX)
		return -EINVAL;
	if (n->workload < AF_SYNTH_FORK || n->workload > AF_SYNTH_COMPILE)
		return -EINVAL;
	sparc = n->os == AF_SYNTH_SPARC_LINUX;
	windows = n->os == AF_SYNTH_WINDOWS;
	if (n->n == 0 || n->n > SY_MAX_N)
		return -EINVAL;
	if (n->n_vcpus == 0)
		n->n_vcpus = 1;
	if (n->n_vcpus > AF_MAX_VCPUS)
		return -EINVAL;
	if (n->kpti < 0 || n->kpti > 1 || n->pcid < 0 || n->pcid > 1 ||
	    n->lazy_tlb < 0 || n->lazy_tlb > 1)
		return -EINVAL;
	if (!n->lifetime_ns)
		n->lifetime_ns = 10 * SEC;
	if (!n->interval_ns)
		n->interval_ns = SEC / 10;
	if (!n->phys_bytes)
		n->phys_bytes = 128ull << 20;
	if (n->lifetime_ns < 1000000ull || n->lifetime_ns > 1000000 * SEC ||
	    n->interval_ns < 10000ull || n->interval_ns > 1000000 * SEC ||
	    n->interval_ns > (1ull << 62) / n->n)
		return -EINVAL; /* keeps every model time below 2^63 ns */
	if (windows && (n->workload == AF_SYNTH_FORK ||
			n->workload == AF_SYNTH_VFORKEXEC))
		return -EINVAL; /* Windows has no fork */
	if (windows && (n->kpti || n->pcid))
		return -EINVAL; /* the model is NT's, which had neither */
	if (sparc) {
		if (n->kpti || n->pcid || n->paging != AF_PAGING_OFF)
			return -EINVAL; /* x86 only */
		max_phys = 64ull << 30;
	} else {
		if (n->paging == AF_PAGING_OFF) {
			if (n->os == AF_SYNTH_LINUX26 || n->kpti || n->pcid)
				n->paging = AF_PAGING_4LEVEL;
			else
				n->paging = AF_PAGING_32;
		}
		if (n->paging < AF_PAGING_32 || n->paging > AF_PAGING_5LEVEL)
			return -EINVAL;
		if (n->kpti && n->paging == AF_PAGING_32)
			return -EINVAL; /* Linux PTI needs PAE or long mode */
		if (n->pcid && n->paging < AF_PAGING_4LEVEL)
			return -EINVAL; /* CR4.PCIDE needs IA-32e mode */
		max_phys = n->paging <= AF_PAGING_PAE ? 4ull << 30
						      : 64ull << 30;
	}
	if (n->phys_bytes < (32ull << 20) || n->phys_bytes > max_phys ||
	    n->phys_bytes % SY_PAGE)
		return -EINVAL;
	return 0;
}

int af_synth_info(const struct af_synth_opts *o, struct af_trace_info *info)
{
	struct af_synth_opts n;
	int rc;

	if (!info)
		return -EINVAL;
	rc = normalise(o, &n);
	if (rc)
		return rc;
	memset(info, 0, sizeof(*info));
	info->version = AF_TRACE_VERSION;
	info->n_vcpus = (uint16_t)n.n_vcpus;
	info->phys_bytes = n.phys_bytes;
	if (n.os == AF_SYNTH_SPARC_LINUX) {
		info->mmu = AF_MMU_CONTEXT_ID;
		info->ctx_bits = SY_CTX_BITS;
	} else {
		info->mmu = AF_MMU_X86;
	}
	snprintf(info->guest, sizeof(info->guest),
		 "synth %s %s n=%u %s%s%s%s vcpus=%u", os_name(n.os),
		 wl_name(n.workload), n.n,
		 n.os == AF_SYNTH_SPARC_LINUX ? "ctx10" : af_paging_name(n.paging),
		 n.kpti ? " kpti" : "", n.pcid ? " pcid" : "",
		 n.lazy_tlb ? " lazy" : "", n.n_vcpus);
	return 0;
}

static void cleanup(struct sy *s)
{
	for (struct sy_proc *p = s->procs, *nx; p; p = nx) {
		nx = p->next_all;
		free(p);
	}
	for (struct sy_mm *m = s->mms, *nx; m; m = nx) {
		nx = m->next;
		free(m->pg);
		free(m);
	}
	for (size_t i = 0; i < sizeof(s->cache) / sizeof(s->cache[0]); i++)
		sy_vec_free(&s->cache[i]);
	sy_vec_free(&s->gather);
	sy_vec_free(&s->pae_slots);
	free(s->heap);
	af_recorder_free(s->rec);
	sy_mem_free(&s->mem);
	free(s);
}

/* The model's invariants over every address space still alive. */
static int check_all(struct sy *s)
{
	if (s->sparc)
		return 0;
	for (struct sy_mm *m = s->mms; m; m = m->next)
		if (!m->dead && sy_x86_check(s, m, 0))
			return -EPROTO;
	return 0;
}

int af_synth_run(const struct af_synth_opts *o, struct af_trace_writer *w)
{
	return sy_synth_run(o, w, 0);
}

int sy_synth_run(const struct af_synth_opts *o, struct af_trace_writer *w,
		 int check)
{
	struct af_engine_config cfg;
	struct sy *s;
	uint64_t huge;
	int rc;

	if (!w)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	rc = normalise(o, &s->o);
	if (rc) {
		free(s);
		return rc;
	}
	s->w = w;
	s->check = check;
	s->rng = s->o.seed ^ 0x616e746661726d31ull; /* "antfarm1" */
	s->sparc = s->o.os == AF_SYNTH_SPARC_LINUX;
	s->windows = s->o.os == AF_SYNTH_WINDOWS;
	s->linux26 = s->o.os == AF_SYNTH_LINUX26;
	s->kpti = s->o.kpti;
	s->pcid = s->o.pcid;
	s->lazy = s->o.lazy_tlb || s->sparc;
	s->nv = s->o.n_vcpus;
	huge = s->sparc ? 0 : s->o.paging == AF_PAGING_32 ? 4ull << 20
							   : 2ull << 20;
	rc = sy_mem_init(&s->mem, s->o.phys_bytes, huge);
	if (rc)
		goto out;

	memset(&cfg, 0, sizeof(cfg));
	cfg.mmu = s->sparc ? AF_MMU_CONTEXT_ID : AF_MMU_X86;
	cfg.n_vcpus = s->nv;
	cfg.phys_bytes = s->o.phys_bytes;
	cfg.ctx_bits = s->sparc ? SY_CTX_BITS : 0;
	cfg.read_phys = s->sparc ? NULL : sy_read_phys;
	cfg.read_ctx = &s->mem;
	rc = af_recorder_new(&cfg, w, &s->rec);
	if (rc)
		goto out;
	rc = sy_run(s);
	if (!rc && check)
		rc = check_all(s);
	if (!rc)
		rc = af_trace_writer_flush(w);
out:
	cleanup(s);
	return rc;
}
