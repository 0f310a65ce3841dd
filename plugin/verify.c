/*
 * plugin/verify.c - shadows of what the engine was told about each table
 * frame, compared with guest RAM to find missed page-table stores (see
 * verify.h).
 */
#include "verify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define P_BIT 0x1ull
#define US_BIT 0x4ull
/* What the engine looks at in a present user entry: P, U/S, PS and the
 * frame address (bits 12-51; 12-31 with 4-byte entries). */
#define MASK8 0x000ffffffffff085ull
#define MASK4 0xfffff085ull
#define NIL UINT32_MAX

uint16_t af_verify_hash(uint64_t ent, unsigned es)
{
	uint64_t k;

	/* not present, or supervisor-only: the engine counts nothing
	 * below it (PAE's PDPTEs, which have no U/S, live in 32-byte roots
	 * that are never shadowed: the engine re-reads them at each load) */
	if ((ent & (P_BIT | US_BIT)) != (P_BIT | US_BIT))
		return 0;
	k = ent & (es == 4 ? MASK4 : MASK8);
	k *= 0x9e3779b97f4a7c15ull;
	k ^= k >> 31;
	k *= 0xbf58476d1ce4e5b9ull;
	k ^= k >> 29;
	/* 0 means "not present": a present entry never hashes to it */
	return (uint16_t)(k >> 48) | 1;
}

int af_verify_init(struct af_verify *v, uint32_t cap)
{
	uint32_t n = 1;

	memset(v, 0, sizeof(*v));
	if (cap < 1 || cap > (1u << 22))
		return -EINVAL;
	while (n < 2 * cap)
		n <<= 1;
	v->pool = calloc(cap, sizeof(*v->pool));
	v->index = calloc(n, sizeof(*v->index));
	v->free_list = calloc(cap, sizeof(*v->free_list));
	if (!v->pool || !v->index || !v->free_list) {
		af_verify_free(v);
		return -ENOMEM;
	}
	v->cap = cap;
	v->mask = n - 1;
	for (uint32_t i = 0; i < cap; i++) {
		v->pool[i].gfn = UINT64_MAX;
		v->free_list[i] = cap - 1 - i;
	}
	v->n_free = cap;
	return 0;
}

void af_verify_free(struct af_verify *v)
{
	free(v->pool);
	free(v->index);
	free(v->free_list);
	memset(v, 0, sizeof(*v));
}

static uint32_t home(const struct af_verify *v, uint64_t gfn)
{
	uint64_t h = gfn * 0x9e3779b97f4a7c15ull;

	return (uint32_t)(h >> 32) & v->mask;
}

/* Index position holding gfn, or NIL. */
static uint32_t find_pos(const struct af_verify *v, uint64_t gfn)
{
	uint32_t i = home(v, gfn);

	for (uint32_t n = 0; n <= v->mask; n++, i = (i + 1) & v->mask) {
		uint32_t s = v->index[i];
		if (!s)
			return NIL;
		if (v->pool[s - 1].gfn == gfn)
			return i;
	}
	return NIL;
}

static struct af_shadow *find(const struct af_verify *v, uint64_t gfn)
{
	uint32_t i;

	if (!v->pool)
		return NULL;
	i = find_pos(v, gfn);
	return i == NIL ? NULL : &v->pool[v->index[i] - 1];
}

static struct af_shadow *add(struct af_verify *v, uint64_t gfn)
{
	uint32_t slot, i;

	if (!v->n_free) {
		v->full++;
		return NULL;
	}
	slot = v->free_list[--v->n_free];
	v->pool[slot].gfn = gfn;
	i = home(v, gfn);
	while (v->index[i])
		i = (i + 1) & v->mask; /* the index is at most half full */
	v->index[i] = slot + 1;
	return &v->pool[slot];
}

/* Removes the index entry at position i (backward-shift deletion). */
static void del_pos(struct af_verify *v, uint32_t i)
{
	uint32_t slot = v->index[i] - 1, j = i;

	v->pool[slot].gfn = UINT64_MAX;
	v->free_list[v->n_free++] = slot;
	v->index[i] = 0;
	for (;;) {
		uint32_t s, h;
		j = (j + 1) & v->mask;
		s = v->index[j];
		if (!s)
			return;
		h = home(v, v->pool[s - 1].gfn);
		/* can the entry at j move to the hole at i? */
		if (((j - h) & v->mask) >= ((j - i) & v->mask)) {
			v->index[i] = s;
			v->index[j] = 0;
			i = j;
		}
	}
}

static uint64_t entry_at(const uint8_t *p, unsigned es)
{
	uint64_t e = 0;

	memcpy(&e, p, es);
	return e;
}

void af_verify_read(struct af_verify *v, uint64_t gpa, const void *buf,
		    size_t len, unsigned es)
{
	const uint8_t *b = buf;
	struct af_shadow *s;
	uint64_t off = gpa & 4095;

	if (!v->pool || (es != 4 && es != 8) || !len)
		return;
	if (off == 0 && len == 4096) {
		s = find(v, gpa >> 12);
		if (!s && !(s = add(v, gpa >> 12)))
			return;
		s->es = (uint8_t)es;
		for (unsigned i = 0; i < 4096 / es; i++)
			s->h[i] = af_verify_hash(entry_at(b + i * es, es), es);
		return;
	}
	s = find(v, gpa >> 12);
	if (!s || off + len > 4096)
		return;
	/* whole entries inside the read */
	for (uint64_t o = (off + s->es - 1) / s->es * s->es;
	     o + s->es <= off + len; o += s->es)
		s->h[o / s->es] = af_verify_hash(
			entry_at(b + (o - off), s->es), s->es);
}

void af_verify_store(struct af_verify *v, uint64_t gpa, unsigned width,
		     uint64_t value)
{
	struct af_shadow *s = find(v, gpa >> 12);
	uint64_t off = gpa & 4095;

	if (!s || width == 0 || width > 8 || off + width > 4096)
		return;
	if (width == s->es && off % s->es == 0) {
		s->h[off / s->es] = af_verify_hash(value, s->es);
	} else if (width == 8 && s->es == 4 && off % 4 == 0) {
		s->h[off / 4] = af_verify_hash(value & 0xffffffffull, 4);
		s->h[off / 4 + 1] = af_verify_hash(value >> 32, 4);
	}
	/* partial entries: the engine re-reads them (af_verify_read) */
}

/* Does the frame look like a page table: every present entry points below
 * the top of RAM? */
static int looks_like_table(const uint8_t *buf, unsigned es, uint64_t top)
{
	for (unsigned k = 0; k < 4096 / es; k++) {
		uint64_t e = entry_at(buf + k * es, es);
		uint64_t a = e & (es == 4 ? 0xfffff000ull : 0x000ffffffffff000ull);
		if ((e & P_BIT) && a >= top)
			return 0;
	}
	return 1;
}

uint64_t af_verify_check(struct af_verify *v, af_verify_tracked_fn tracked,
			 af_verify_read_fn rd, af_verify_miss_fn miss,
			 void *ctx, uint64_t phys_top)
{
	uint8_t buf[4096];
	uint16_t diff[1024];
	uint64_t found = 0;

	if (!v->pool)
		return 0;
	for (uint32_t i = 0; i <= v->mask; i++) {
		struct af_shadow *s;
		uint64_t gpa;
		unsigned es, nd = 0;
		int table;

		if (!v->index[i])
			continue;
		s = &v->pool[v->index[i] - 1];
		gpa = s->gfn << 12;
		if (!tracked(ctx, gpa) || rd(ctx, gpa, buf, sizeof(buf))) {
			/* deletion may shift a later entry into i: look
			 * at i again */
			del_pos(v, i);
			v->dropped++;
			i--;
			continue;
		}
		v->checked++;
		es = s->es;
		for (unsigned k = 0; k < 4096 / es; k++) {
			uint16_t h = af_verify_hash(entry_at(buf + k * es, es),
						    es);
			if (h == s->h[k])
				continue;
			s->h[k] = h;
			diff[nd++] = (uint16_t)k;
		}
		if (!nd)
			continue;
		found += nd;
		v->mismatches += nd;
		if (!miss)
			continue;
		table = looks_like_table(buf, es, phys_top);
		/* miss() may feed the engine, which may read or store into
		 * any shadow (this one included): buf stays as read */
		for (unsigned d = 0; d < nd; d++)
			miss(ctx, gpa + (uint64_t)diff[d] * es, es,
			     entry_at(buf + diff[d] * es, es), table);
	}
	return found;
}

uint32_t af_verify_count(const struct af_verify *v)
{
	return v->cap - v->n_free;
}
