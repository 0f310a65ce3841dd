/*
 * lib/synth/synth_mem.c - the synthetic models' guest-physical memory: a
 * sparse directory of 4 KiB frames (contents kept only for frames written,
 * that is page tables), a frame allocator that hands freed frames out again
 * at once (LIFO, as Linux's per-order free lists and per-CPU page lists do),
 * a pool of huge pages at the top of RAM, and the PRNG.
 *
 * Layout of RAM: the first 16 MiB are the firmware and kernel image (never
 * handed out); the general pool follows; the huge-page pool (at most 1/4 of
 * RAM, at most 16 pages) sits at the top.
 */
#include "synth_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LOW_RESERVED (16ull << 20)

int sy_vec_push(struct sy_vec *a, uint64_t x)
{
	if (a->n == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 64;
		uint64_t *nv = realloc(a->v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		a->v = nv;
		a->cap = ncap;
	}
	a->v[a->n++] = x;
	return 0;
}

void sy_vec_free(struct sy_vec *a)
{
	free(a->v);
	memset(a, 0, sizeof(*a));
}

int sy_mem_init(struct sy_mem *m, uint64_t phys_bytes, uint64_t huge_size)
{
	uint64_t top, nh = 0;

	memset(m, 0, sizeof(*m));
	m->phys_bytes = phys_bytes;
	m->npfn = phys_bytes / SY_PAGE;
	m->ndir = (size_t)((m->npfn + SY_CHUNK - 1) / SY_CHUNK);
	m->dir = calloc(m->ndir, sizeof(*m->dir));
	if (!m->dir)
		return -ENOMEM;
	top = phys_bytes;
	if (huge_size) {
		nh = phys_bytes / 4 / huge_size;
		if (nh > 16)
			nh = 16;
		top = (phys_bytes - nh * huge_size) & ~(huge_size - 1);
		if (top < LOW_RESERVED * 2) {
			nh = 0;
			top = phys_bytes;
		}
	}
	m->huge_size = nh ? huge_size : 0;
	/* the first huge page handed out is the lowest one */
	for (uint64_t i = nh; i > 0; i--)
		if (sy_vec_push(&m->hfree, top + (i - 1) * huge_size))
			return -ENOMEM;
	m->bump = LOW_RESERVED / SY_PAGE;
	m->bump_end = top / SY_PAGE;
	return 0;
}

void sy_mem_free(struct sy_mem *m)
{
	if (m->dir) {
		for (size_t i = 0; i < m->ndir; i++) {
			struct sy_chunk *c = m->dir[i];
			if (!c)
				continue;
			for (unsigned k = 0; k < SY_CHUNK; k++)
				free(c->f[k].data);
			free(c);
		}
		free(m->dir);
	}
	sy_vec_free(&m->free0);
	sy_vec_free(&m->free1);
	sy_vec_free(&m->hfree);
	memset(m, 0, sizeof(*m));
}

struct sy_frame *sy_frame(struct sy_mem *m, uint64_t pa)
{
	uint64_t pfn = pa / SY_PAGE;
	size_t d;

	if (pfn >= m->npfn)
		return NULL;
	d = (size_t)(pfn / SY_CHUNK);
	if (!m->dir[d]) {
		m->dir[d] = calloc(1, sizeof(struct sy_chunk));
		if (!m->dir[d])
			return NULL;
	}
	return &m->dir[d]->f[pfn % SY_CHUNK];
}

/* A frame as handed out: contents zero (the kernel clears page-table pages
 * with string stores a VMM does not see as page-table stores). */
static int fresh(struct sy_mem *m, uint64_t pfn, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct sy_frame *f = sy_frame(m, (pfn + i) * SY_PAGE);
		if (!f)
			return -ENOMEM;
		if (f->data)
			memset(f->data, 0, SY_PAGE);
		f->refs = 1;
	}
	m->used += n;
	if (m->used > m->peak)
		m->peak = m->used;
	return 0;
}

int sy_alloc0(struct sy_mem *m, uint64_t *pa)
{
	uint64_t pfn;

	if (m->free0.n) {
		pfn = m->free0.v[--m->free0.n];
	} else if (m->free1.n) {
		/* split a free 8 KiB block: hand out its first half */
		pfn = m->free1.v[--m->free1.n];
		if (sy_vec_push(&m->free0, pfn + 1))
			return -ENOMEM;
	} else if (m->bump < m->bump_end) {
		pfn = m->bump++;
	} else {
		return -ENOMEM;
	}
	*pa = pfn * SY_PAGE;
	return fresh(m, pfn, 1);
}

int sy_alloc1(struct sy_mem *m, uint64_t *pa)
{
	uint64_t pfn;

	if (m->free1.n) {
		pfn = m->free1.v[--m->free1.n];
	} else {
		if (m->bump & 1) {
			if (m->bump >= m->bump_end)
				return -ENOMEM;
			if (sy_vec_push(&m->free0, m->bump))
				return -ENOMEM;
			m->bump++;
		}
		if (m->bump + 2 > m->bump_end)
			return -ENOMEM;
		pfn = m->bump;
		m->bump += 2;
	}
	*pa = pfn * SY_PAGE;
	return fresh(m, pfn, 2);
}

void sy_free0(struct sy_mem *m, uint64_t pa)
{
	struct sy_frame *f = sy_frame(m, pa);

	if (f)
		f->refs = 0;
	m->used--;
	/* cannot fail for want of memory more often than the push before it:
	 * the vector only grows past its high-water mark */
	(void)sy_vec_push(&m->free0, pa / SY_PAGE);
}

void sy_free1(struct sy_mem *m, uint64_t pa)
{
	for (unsigned i = 0; i < 2; i++) {
		struct sy_frame *f = sy_frame(m, pa + i * SY_PAGE);
		if (f)
			f->refs = 0;
	}
	m->used -= 2;
	(void)sy_vec_push(&m->free1, pa / SY_PAGE);
}

int sy_huge_alloc(struct sy_mem *m, uint64_t *pa)
{
	struct sy_frame *f;

	if (!m->hfree.n)
		return -ENOMEM;
	*pa = m->hfree.v[--m->hfree.n];
	f = sy_frame(m, *pa);
	if (!f)
		return -ENOMEM;
	f->refs = 1;
	return 0;
}

void sy_huge_free(struct sy_mem *m, uint64_t pa)
{
	(void)sy_vec_push(&m->hfree, pa);
}

uint64_t sy_rd(struct sy_mem *m, uint64_t pa, unsigned width)
{
	struct sy_frame *f = sy_frame(m, pa);
	uint64_t v = 0;

	if (f && f->data)
		memcpy(&v, f->data + (pa & (SY_PAGE - 1)), width);
	return v;
}

int sy_wr(struct sy_mem *m, uint64_t pa, unsigned width, uint64_t val)
{
	struct sy_frame *f = sy_frame(m, pa);

	if (!f)
		return -ENOMEM;
	if (!f->data) {
		if (!val)
			return 0;
		f->data = calloc(1, SY_PAGE);
		if (!f->data)
			return -ENOMEM;
	}
	memcpy(f->data + (pa & (SY_PAGE - 1)), &val, width);
	return 0;
}

void sy_zero(struct sy_mem *m, uint64_t pa, size_t len)
{
	struct sy_frame *f = sy_frame(m, pa);

	if (f && f->data)
		memset(f->data + (pa & (SY_PAGE - 1)), 0, len);
}

int sy_read_phys(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	struct sy_mem *m = ctx;
	uint8_t *out = buf;

	if (gpa >= m->phys_bytes || len > m->phys_bytes - gpa)
		return -EFAULT;
	while (len) {
		size_t off = (size_t)(gpa & (SY_PAGE - 1));
		size_t n = SY_PAGE - off;
		uint64_t pfn = gpa / SY_PAGE;
		const struct sy_chunk *c = m->dir[pfn / SY_CHUNK];
		const uint8_t *d = c ? c->f[pfn % SY_CHUNK].data : NULL;

		if (n > len)
			n = len;
		if (d)
			memcpy(out, d + off, n);
		else
			memset(out, 0, n);
		out += n;
		gpa += n;
		len -= n;
	}
	return 0;
}

uint64_t sy_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t sy_range(uint64_t *state, uint64_t lo, uint64_t hi)
{
	if (hi <= lo)
		return lo;
	if (hi - lo == UINT64_MAX)
		return sy_rand(state);
	return lo + sy_rand(state) % (hi - lo + 1);
}
