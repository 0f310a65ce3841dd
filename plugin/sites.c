/*
 * plugin/sites.c - the table of instrumented store instructions and the
 * page-table writers among them (see sites.h).
 */
#include "sites.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int af_sites_init(struct af_sites *s, unsigned log2)
{
	memset(s, 0, sizeof(*s));
	if (log2 < 4 || log2 > 24)
		return -EINVAL;
	s->mask = (1u << log2) - 1;
	s->limit = (s->mask + 1) / 4 * 3;
	s->index = calloc((size_t)s->mask + 1, sizeof(*s->index));
	s->hot = calloc(s->limit, sizeof(*s->hot));
	s->info = calloc(s->limit, sizeof(*s->info));
	if (!s->index || !s->hot || !s->info) {
		af_sites_free(s);
		return -ENOMEM;
	}
	return 0;
}

void af_sites_free(struct af_sites *s)
{
	free(s->index);
	free(s->hot);
	free(s->info);
	memset(s, 0, sizeof(*s));
}

static uint64_t code_key(const uint8_t *code, size_t len)
{
	uint64_t k = 0;

	if (len > 8)
		len = 8;
	if (code && len)
		memcpy(&k, code, len); /* the key only needs to be stable */
	return k;
}

static uint32_t slot_of(uint64_t va, uint64_t code)
{
	uint64_t h = va * 0x9e3779b97f4a7c15ull ^ code * 0xc2b2ae3d27d4eb4full;

	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return (uint32_t)h;
}

/* Site number of (va, code), or UINT32_MAX; *free_slot: the index slot
 * where it would go. */
static uint32_t lookup(const struct af_sites *s, uint64_t va, uint64_t code,
		       uint32_t *free_slot)
{
	uint32_t i = slot_of(va, code) & s->mask;

	*free_slot = UINT32_MAX;
	for (uint32_t n = 0; n <= s->mask; n++, i = (i + 1) & s->mask) {
		uint32_t id = s->index[i];
		if (!id) {
			*free_slot = i;
			return UINT32_MAX;
		}
		if (s->info[id - 1].va == va && s->info[id - 1].code == code)
			return id - 1;
	}
	return UINT32_MAX; /* cannot happen below the limit */
}

struct af_site *af_sites_find(const struct af_sites *s, uint64_t va,
			      const uint8_t *code, size_t len)
{
	uint32_t fs, id;

	if (!s->index)
		return NULL;
	id = lookup(s, va, code_key(code, len), &fs);
	return id == UINT32_MAX ? NULL : &s->hot[id];
}

struct af_site *af_sites_get(struct af_sites *s, uint64_t va,
			     const uint8_t *code, size_t len)
{
	uint64_t k = code_key(code, len);
	uint32_t fs, id;
	struct af_site *t;
	struct af_site_info *in;

	if (!s->index)
		return NULL;
	id = lookup(s, va, k, &fs);
	if (id != UINT32_MAX)
		return &s->hot[id];
	if (s->n >= s->limit || fs == UINT32_MAX) {
		s->full++;
		return NULL;
	}
	id = s->n++;
	t = &s->hot[id];
	in = &s->info[id];
	in->va = va;
	in->code = k;
	in->len = (uint32_t)len;
	atomic_init(&in->hits, 0);
	atomic_init(&in->learned_ns, 0);
	atomic_init(&t->flags, 0);
	atomic_init(&t->calls, 0);
	atomic_init(&t->epoch, UINT32_MAX);
	atomic_init(&t->epochs, 0);
	s->index[fs] = id + 1;
	return t;
}

int af_site_mark_writer(struct af_site *site, struct af_site_info *info,
			uint64_t now_ns)
{
	unsigned old;

	if (!site || (atomic_load_explicit(&site->flags, memory_order_relaxed) &
		      AF_SITE_WRITER))
		return 0;
	old = atomic_fetch_or_explicit(&site->flags, AF_SITE_WRITER,
				       memory_order_relaxed);
	if (old & AF_SITE_WRITER)
		return 0;
	atomic_fetch_and_explicit(&site->flags, ~AF_SITE_DEMOTED,
				  memory_order_relaxed);
	if (info)
		atomic_store_explicit(&info->learned_ns, now_ns ? now_ns : 1,
				      memory_order_relaxed);
	return (old & AF_SITE_DEMOTED) ? 2 : 1;
}

int af_site_demote(struct af_site *site)
{
	unsigned old = atomic_load_explicit(&site->flags, memory_order_relaxed);

	while (!(old & (AF_SITE_WRITER | AF_SITE_DEMOTED))) {
		if (atomic_compare_exchange_weak_explicit(
			    &site->flags, &old, old | AF_SITE_DEMOTED,
			    memory_order_relaxed, memory_order_relaxed))
			return 1;
	}
	return 0;
}

uint64_t af_sites_undemote_all(struct af_sites *s)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < s->n; i++) {
		struct af_site *t = &s->hot[i];
		if (atomic_fetch_and_explicit(&t->flags, ~AF_SITE_DEMOTED,
					      memory_order_relaxed) &
		    AF_SITE_DEMOTED)
			n++;
		atomic_store_explicit(&t->calls, 0, memory_order_relaxed);
		atomic_store_explicit(&t->epochs, 0, memory_order_relaxed);
	}
	return n;
}

void af_sites_zero_calls(struct af_sites *s)
{
	for (uint32_t i = 0; i < s->n; i++) {
		atomic_store_explicit(&s->hot[i].calls, 0, memory_order_relaxed);
		atomic_store_explicit(&s->hot[i].epochs, 0,
				      memory_order_relaxed);
	}
}

void af_sites_each(const struct af_sites *s,
		   void (*fn)(void *ctx, const struct af_site *site,
			      const struct af_site_info *info),
		   void *ctx)
{
	for (uint32_t i = 0; i < s->n; i++)
		fn(ctx, &s->hot[i], &s->info[i]);
}

int af_flush_due(uint64_t waste, uint64_t tb, uint64_t min_waste,
		 uint64_t per_tb)
{
	uint64_t need = min_waste;

	if (per_tb) {
		uint64_t t = tb > UINT64_MAX / per_tb ? UINT64_MAX : tb * per_tb;
		if (t > need)
			need = t;
	}
	return waste >= need;
}
