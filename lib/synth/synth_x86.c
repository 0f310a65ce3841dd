/*
 * lib/synth/synth_x86.c - x86 page tables in the architecture's own format
 * (32-bit two-level with 4 MiB pages, PAE, 4-level, 5-level), built and
 * changed the way Linux and Windows do it, with every page-table store
 * emitted as an observation:
 *
 *   - a shared kernel half, built at boot and copied into the top level of
 *     every new root (Linux pgd_ctor); on Linux some kernel upper entries
 *     have U/S set while every kernel leaf is supervisor (as on Debian);
 *     Windows roots map themselves (the self-map entry) and a per-process
 *     hyperspace table, both supervisor;
 *   - new tables are linked first, then filled (Linux __pte_alloc);
 *   - PAE: 32-byte roots from a slab (several roots share a frame), user
 *     PMDs preallocated, leaf PTEs written as two 4-byte stores (high half
 *     first when setting, low half first when clearing), as Linux does;
 *   - KPTI: an 8 KiB root pair, the user root 4 KiB above the kernel one;
 *     top-level user entries are written to the user root, then to the
 *     kernel root with NX (pti_set_user_pgtbl);
 *   - PCID: Linux's six dynamic slots per vCPU, CR3 bit 63 (no flush) when
 *     the slot still holds this mm at its current TLB generation; under KPTI
 *     a flush of a kernel PCID leaves the user PCID to be flushed at the next
 *     return to user mode.
 */
#include "synth_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* model time each MMU action takes */
#define COST_STORE 40
#define COST_CR3 150
#define COST_INVLPG 60

/* ---- formats ---- */

static void fmt_init(struct sy *s)
{
	struct sy_fmt *f = &s->f;
	enum af_paging m = s->o.paging;

	memset(f, 0, sizeof(*f));
	f->mode = m;
	f->upper = SY_P | SY_RW | SY_US | SY_A | SY_D;
	if (m == AF_PAGING_32) {
		f->levels = 2;
		f->esize = 4;
		f->shift[1] = 12;
		f->shift[2] = 22;
		f->nent[1] = f->nent[2] = 1024;
		f->amask = 0xfffff000ull;
		f->user_top = s->windows ? 512 : 768;
		f->huge_size = 4ull << 20;
		return;
	}
	f->esize = 8;
	f->amask = 0x000ffffffffff000ull;
	f->nx = 1;
	f->huge_size = 2ull << 20;
	for (unsigned l = 1; l <= 5; l++) {
		f->shift[l] = 12 + 9 * (l - 1);
		f->nent[l] = 512;
	}
	if (m == AF_PAGING_PAE) {
		f->levels = 3;
		f->nent[3] = 4;
		f->user_top = s->windows ? 2 : 3;
		f->split_leaf = !s->windows;
	} else {
		f->levels = m == AF_PAGING_5LEVEL ? 5 : 4;
		f->user_top = 256;
	}
}

static unsigned idx(const struct sy_fmt *f, unsigned level, uint64_t va)
{
	return (unsigned)((va >> f->shift[level]) & (f->nent[level] - 1));
}

static uint64_t ent_pa(const struct sy_fmt *f, uint64_t table, unsigned level,
		       uint64_t va)
{
	return table + (uint64_t)idx(f, level, va) * f->esize;
}

/* ---- stores ---- */

static void st(struct sy *s, uint64_t pa, unsigned width, uint64_t val)
{
	int rc;

	if (s->err)
		return;
	rc = sy_wr(&s->mem, pa, width, val);
	if (rc) {
		s->err = rc;
		return;
	}
	sy_obs(s, AF_OBS_PT_STORE, width, pa, val, 0, COST_STORE);
}

/* A leaf entry; PAE Linux writes it as two 32-bit halves. */
static void st_leaf(struct sy *s, uint64_t pa, uint64_t val)
{
	if (!s->f.split_leaf) {
		st(s, pa, s->f.esize, val);
	} else if (val) {
		st(s, pa + 4, 4, val >> 32);
		st(s, pa, 4, val & 0xffffffffull);
	} else {
		st(s, pa, 4, 0);
		st(s, pa + 4, 4, 0);
	}
}

/* A top-level user entry: under KPTI the user root first, then the kernel
 * root (with NX on user-accessible entries where NX exists). */
static void set_top(struct sy *s, struct sy_mm *mm, unsigned i, uint64_t val)
{
	uint64_t off = (uint64_t)i * s->f.esize;
	uint64_t kval = val;

	if (mm->uroot) {
		st(s, mm->uroot + off, s->f.esize, val);
		if (s->f.nx && (val & (SY_P | SY_US)) == (SY_P | SY_US))
			kval |= SY_NX;
	}
	st(s, mm->root + off, s->f.esize, kval);
}

static void gather(struct sy *s, uint64_t pa, unsigned order)
{
	if (sy_vec_push(&s->gather, pa | order))
		s->err = -ENOMEM;
}

/* ---- building the kernel half at boot (no observations) ---- */

static int kalloc(struct sy *s, uint64_t *pa)
{
	int rc = sy_alloc0(&s->mem, pa);
	if (rc)
		s->err = rc;
	return rc;
}

/* Maps [va, va + n * size) to pa.. in the tables under root, creating
 * tables whose upper entries have U/S iff us; leaves get lflags. */
static int kmap(struct sy *s, uint64_t root, uint64_t va, uint64_t pa,
		unsigned n, unsigned leaf_level, int us, uint64_t lflags)
{
	const struct sy_fmt *f = &s->f;
	uint64_t size = 1ull << f->shift[leaf_level];

	for (unsigned k = 0; k < n; k++, va += size, pa += size) {
		uint64_t table = root;
		for (unsigned l = f->levels; l > leaf_level; l--) {
			uint64_t e = ent_pa(f, table, l, va);
			uint64_t v = sy_rd(&s->mem, e, f->esize);
			if (!(v & SY_P)) {
				uint64_t t;
				if (kalloc(s, &t))
					return s->err;
				v = t | SY_P;
				if (!(f->mode == AF_PAGING_PAE && l == 3))
					v |= SY_RW | SY_A | SY_D |
					     (us ? SY_US : 0);
				if (sy_wr(&s->mem, e, f->esize, v))
					return s->err = -ENOMEM;
			}
			table = v & f->amask;
		}
		if (sy_wr(&s->mem, ent_pa(f, table, leaf_level, va), f->esize,
			  pa | lflags | (leaf_level > 1 ? SY_PS : 0)))
			return s->err = -ENOMEM;
	}
	return 0;
}

/* The kernel half of every root, and under KPTI the few kernel mappings a
 * user root keeps (entry code, CPU entry area). Kernel leaves point into the
 * first 16 MiB (firmware and kernel image) or map RAM. */
static int build_kernel(struct sy *s)
{
	const struct sy_fmt *f = &s->f;
	uint64_t nx = f->nx ? SY_NX : 0;
	uint64_t kl = SY_P | SY_RW | SY_A | SY_D | SY_G; /* supervisor leaf */
	uint64_t ram = s->mem.phys_bytes;
	int five = f->mode == AF_PAGING_5LEVEL;

	if (kalloc(s, &s->ktpl))
		return s->err;
	if (s->kpti && kalloc(s, &s->ptitpl))
		return s->err;

	if (f->mode == AF_PAGING_4LEVEL || five) {
		uint64_t dm = five ? 0xff11000000000000ull : 0xffff888000000000ull;
		uint64_t vm = five ? 0xffa0000000000000ull : 0xffffc90000000000ull;
		uint64_t mm = five ? 0xffd4000000000000ull : 0xffffea0000000000ull;
		uint64_t n2 = ram < (4ull << 30) ? ram >> 21 : 2048;
		if (s->windows) {
			/* kernel image, pool, HAL: all supervisor */
			kmap(s, s->ktpl, 0xfffff80000000000ull, 0, 8, 2, 0,
			     kl | nx);
			kmap(s, s->ktpl, 0xfffff8a000000000ull, 0x200000, 4, 1,
			     0, kl | nx);
			kmap(s, s->ktpl, 0xffffffffffd00000ull, 0x300000, 4, 1,
			     0, kl | nx);
			return s->err;
		}
		/* direct map of RAM: 2 MiB pages, supervisor all the way */
		kmap(s, s->ktpl, dm, 0, (unsigned)n2, 2, 0, kl | nx);
		if (ram > (4ull << 30))
			kmap(s, s->ktpl, dm + (4ull << 30), 4ull << 30,
			     (unsigned)((ram - (4ull << 30)) >> 30), 3, 0,
			     kl | nx);
		/* vmalloc, vmemmap, CPU entry area, kernel text, fixmap:
		 * upper entries with U/S (_PAGE_TABLE), supervisor leaves */
		kmap(s, s->ktpl, vm, 0x100000, 8, 1, 1, kl | nx);
		kmap(s, s->ktpl, mm, 0x400000, 2, 2, 1, kl | nx);
		kmap(s, s->ktpl, 0xfffffe0000000000ull, 0x180000, 4, 1, 1,
		     kl | nx);
		kmap(s, s->ktpl, 0xffffffff80000000ull, 0, 8, 2, 1, kl);
		kmap(s, s->ktpl, 0xffffffffff5fd000ull, 0x1fd000, 3, 1, 1,
		     kl | nx);
		if (s->kpti) {
			kmap(s, s->ptitpl, 0xfffffe0000000000ull, 0x180000, 4,
			     1, 1, kl | nx);
			kmap(s, s->ptitpl, 0xffffffff81e00000ull, 0x1e00000 -
			     0x1000000, 2, 1, 1, kl);
		}
		return s->err;
	}

	if (f->mode == AF_PAGING_PAE) {
		uint64_t low = ram < (896ull << 20) ? ram : 896ull << 20;
		if (s->windows) {
			kmap(s, s->ktpl, 0x80000000ull, 0, 8, 2, 0, kl);
			kmap(s, s->ktpl, 0xe1000000ull, 0x200000, 4, 1, 0,
			     kl | nx);
			kmap(s, s->ktpl, 0xffc00000ull, 0x300000, 4, 1, 0,
			     kl | nx);
		} else {
			kmap(s, s->ktpl, 0xc0000000ull, 0, (unsigned)(low >> 21),
			     2, 0, kl | nx);
			kmap(s, s->ktpl, 0xf8000000ull, 0x100000, 4, 1, 1,
			     kl | nx);
			kmap(s, s->ktpl, 0xffe00000ull, 0x1fd000, 3, 1, 1,
			     kl | nx);
		}
		if (s->kpti)
			kmap(s, s->ptitpl, 0xffc00000ull, 0x180000, 4, 1, 1,
			     kl | nx);
		return s->err;
	}

	/* 32-bit two-level */
	if (s->windows) {
		kmap(s, s->ktpl, 0x80000000ull, 0, 4, 2, 0, kl);
		kmap(s, s->ktpl, 0xe1000000ull, 0x200000, 4, 1, 0, kl);
		kmap(s, s->ktpl, 0xffc00000ull, 0x300000, 4, 1, 0, kl);
	} else {
		uint64_t low = ram < (896ull << 20) ? ram : 896ull << 20;
		kmap(s, s->ktpl, 0xc0000000ull, 0, (unsigned)(low >> 22), 2, 0,
		     kl);
		kmap(s, s->ktpl, 0xf8800000ull, 0x100000, 4, 1, 0, kl);
		/* fixmap: the PDE has U/S (i386 _PAGE_TABLE), leaves not */
		kmap(s, s->ktpl, 0xffc00000ull, 0x1fd000, 3, 1, 1, kl);
	}
	return s->err;
}

int sy_x86_setup(struct sy *s)
{
	fmt_init(s);
	return build_kernel(s);
}

/* ---- address spaces ---- */

static unsigned top_entries(const struct sy_fmt *f)
{
	return f->nent[f->levels];
}

/* Windows: the root maps itself, supervisor (32-bit PDE 0x300, x64 PML4
 * 0x1ed). */
static unsigned win_self_index(const struct sy_fmt *f)
{
	return f->mode == AF_PAGING_32 ? 0x300 : 0x1ed;
}

/* Windows hyperspace: a per-process supervisor table in the kernel half
 * (32-bit PDE 0x301; x64 PML4 0x1ee), holding the working-set list page. */
static void win_hyperspace(struct sy *s, struct sy_mm *mm)
{
	const struct sy_fmt *f = &s->f;
	uint64_t va = f->mode == AF_PAGING_32 ? 0xc0400000ull
					      : 0xfffff70000000000ull;
	uint64_t table = mm->root, leaf;
	unsigned k = 0;

	for (unsigned l = f->levels; l > 1; l--) {
		uint64_t t;
		if (sy_alloc0(&s->mem, &t)) {
			s->err = -ENOMEM;
			return;
		}
		mm->hyper[k++] = t;
		st(s, ent_pa(f, table, l, va), f->esize,
		   t | SY_P | SY_RW | SY_A | SY_D);
		table = t;
	}
	if (sy_alloc0(&s->mem, &leaf)) {
		s->err = -ENOMEM;
		return;
	}
	mm->hyper[k] = leaf;
	st(s, ent_pa(f, table, 1, va), f->esize,
	   leaf | SY_P | SY_RW | SY_A | SY_D);
}

static int pae_root(struct sy *s, uint64_t *pa)
{
	if (!s->pae_slots.n) {
		uint64_t fr;
		if (sy_alloc0(&s->mem, &fr))
			return -ENOMEM;
		for (unsigned i = SY_PAGE / 32; i > 0; i--)
			if (sy_vec_push(&s->pae_slots, fr + (i - 1) * 32))
				return -ENOMEM;
	}
	*pa = s->pae_slots.v[--s->pae_slots.n];
	sy_zero(&s->mem, *pa, 32);
	return 0;
}

/* Picks the root (Linux pgd_alloc: a 32-byte PAE slot, an 8 KiB KPTI pair
 * or one frame); nothing is written yet. */
int sy_x86_mm_alloc(struct sy *s, struct sy_mm *mm)
{
	int rc;

	if (mm->kernel) {
		mm->root = s->ktpl;
		return 0;
	}
	if (s->kpti)
		rc = sy_alloc1(&s->mem, &mm->root);
	else if (s->f.mode == AF_PAGING_PAE)
		rc = pae_root(s, &mm->root);
	else
		rc = sy_alloc0(&s->mem, &mm->root);
	if (rc)
		return s->err = rc;
	mm->uroot = s->kpti ? mm->root + SY_PAGE : 0;
	return 0;
}

/* pgd_ctor and friends: the kernel half copied in, PAE PMDs preallocated,
 * Windows self-map and hyperspace. */
void sy_x86_mm_init(struct sy *s, struct sy_mm *mm)
{
	const struct sy_fmt *f = &s->f;
	unsigned es = f->esize, top = top_entries(f);
	int pae = f->mode == AF_PAGING_PAE;

	if (mm->kernel || s->err)
		return;
	for (unsigned i = f->user_top; i < top; i++) {
		uint64_t e = sy_rd(&s->mem, s->ktpl + (uint64_t)i * es, es);
		if (e)
			st(s, mm->root + (uint64_t)i * es, es, e);
		if (mm->uroot) {
			e = sy_rd(&s->mem, s->ptitpl + (uint64_t)i * es, es);
			if (e)
				st(s, mm->uroot + (uint64_t)i * es, es, e);
		}
	}
	if (pae) {
		for (unsigned i = 0; i < f->user_top; i++) {
			if (sy_alloc0(&s->mem, &mm->pmd[i])) {
				s->err = -ENOMEM;
				return;
			}
			set_top(s, mm, i, mm->pmd[i] | SY_P);
		}
	} else if (s->windows) {
		st(s, mm->root + (uint64_t)win_self_index(f) * es, es,
		   mm->root | SY_P | SY_RW | SY_A | SY_D);
		if (f->mode != AF_PAGING_5LEVEL)
			win_hyperspace(s, mm);
	}
}

/* The entry mapping va at leaf level (1, or 2 for huge pages), creating
 * tables on the way; 0 on failure. */
static uint64_t walk_create(struct sy *s, struct sy_mm *mm, uint64_t va,
			    unsigned leaf_level)
{
	const struct sy_fmt *f = &s->f;
	uint64_t table = mm->root;

	for (unsigned l = f->levels; l > leaf_level; l--) {
		uint64_t e = ent_pa(f, table, l, va);
		uint64_t v = sy_rd(&s->mem, e, f->esize);
		if (!(v & SY_P)) {
			uint64_t t;
			if (sy_alloc0(&s->mem, &t)) {
				s->err = -ENOMEM;
				return 0;
			}
			if (l == f->levels)
				set_top(s, mm, idx(f, l, va), t | f->upper);
			else
				st(s, e, f->esize, t | f->upper);
			table = t;
		} else {
			table = v & f->amask;
		}
		if (s->err)
			return 0;
	}
	return ent_pa(f, table, leaf_level, va);
}

/* The entry mapping va at leaf level, without creating anything; 0 if a
 * table on the way is missing. */
static uint64_t walk_find(struct sy *s, const struct sy_mm *mm, uint64_t va,
			  unsigned leaf_level)
{
	const struct sy_fmt *f = &s->f;
	uint64_t table = mm->root;

	for (unsigned l = f->levels; l > leaf_level; l--) {
		uint64_t v = sy_rd(&s->mem, ent_pa(f, table, l, va), f->esize);
		if (!(v & SY_P))
			return 0;
		table = v & f->amask;
	}
	return ent_pa(f, table, leaf_level, va);
}

static uint64_t leaf_val(const struct sy *s, const struct sy_page *pg)
{
	uint64_t v = pg->pa | SY_P | SY_US | SY_A;

	if (pg->kind == SYK_DATA || pg->kind == SYK_HUGE) {
		if (s->f.nx)
			v |= SY_NX;
		if (pg->rw)
			v |= SY_RW | SY_D;
	}
	if (pg->huge)
		v |= SY_PS;
	return v;
}

static int add_page(struct sy_mm *mm, const struct sy_page *pg)
{
	if (mm->npg == mm->cappg) {
		size_t ncap = mm->cappg ? mm->cappg * 2 : 32;
		struct sy_page *np = realloc(mm->pg, ncap * sizeof(*np));
		if (!np)
			return -ENOMEM;
		mm->pg = np;
		mm->cappg = ncap;
	}
	mm->pg[mm->npg++] = *pg;
	return 0;
}

int sy_x86_map(struct sy *s, struct sy_mm *mm, uint64_t va, uint64_t pa,
	       int kind, int huge)
{
	struct sy_page pg = {
		.va = va,
		.pa = pa,
		.kind = (uint8_t)kind,
		.rw = kind == SYK_DATA || kind == SYK_HUGE,
		.huge = (uint8_t)!!huge,
	};
	uint64_t e = walk_create(s, mm, va, huge ? 2 : 1);

	if (!e)
		return s->err ? s->err : -EINVAL;
	if (sy_rd(&s->mem, e, s->f.esize) & SY_P)
		return s->err = -EPROTO; /* two pages at one address */
	st_leaf(s, e, leaf_val(s, &pg));
	if (add_page(mm, &pg))
		return s->err = -ENOMEM;
	return s->err;
}

/* Rewrites pg's leaf from its record: present or cleared. only_low: a
 * bit change in the low half (ptep_set_wrprotect: one locked op). */
void sy_x86_set_leaf(struct sy *s, struct sy_mm *mm, struct sy_page *pg,
		     int present, int only_low)
{
	uint64_t e = walk_find(s, mm, pg->va, pg->huge ? 2 : 1);
	uint64_t v = present ? leaf_val(s, pg) : 0;

	if (!e) {
		s->err = -EINVAL; /* the model lost track of its own tables */
		return;
	}
	if (only_low && s->f.esize == 8 && s->f.split_leaf)
		st(s, e, 4, v & 0xffffffffull);
	else
		st_leaf(s, e, v);
}

static void page_ref(struct sy *s, const struct sy_page *pg)
{
	struct sy_frame *fr = sy_frame(&s->mem, pg->pa);
	if (fr)
		fr->refs++;
}

/* Drops one reference; private frames go to the gather list at zero. */
static void page_unref(struct sy *s, const struct sy_page *pg)
{
	struct sy_frame *fr = sy_frame(&s->mem, pg->pa);

	if (!fr || !fr->refs)
		return;
	if (--fr->refs)
		return;
	if (pg->kind == SYK_HUGE)
		gather(s, pg->pa | 2, 0);
	else if (pg->kind == SYK_DATA)
		gather(s, pg->pa, 0);
	/* page cache and shared frames keep a reference of their own */
}

static int cmp_va(const void *a, const void *b)
{
	const struct sy_page *x = a, *y = b;
	return x->va < y->va ? -1 : x->va > y->va;
}

/* fork (copy_page_range): every mapping of from is installed in to; private
 * writable pages become copy-on-write in both (parent's PTE write-protected
 * first, then the child's written). */
int sy_x86_copy(struct sy *s, struct sy_mm *from, struct sy_mm *to)
{
	qsort(from->pg, from->npg, sizeof(*from->pg), cmp_va);
	for (size_t i = 0; i < from->npg && !s->err; i++) {
		struct sy_page *pg = &from->pg[i];
		struct sy_page c;
		uint64_t e;

		if (pg->rw) {
			pg->rw = 0;
			sy_x86_set_leaf(s, from, pg, 1, 1);
		}
		c = *pg;
		e = walk_create(s, to, c.va, c.huge ? 2 : 1);
		if (!e)
			break;
		st_leaf(s, e, leaf_val(s, &c));
		if (add_page(to, &c))
			return s->err = -ENOMEM;
		page_ref(s, &c);
	}
	return s->err;
}

/* Clears mm's mappings [first, first + n) (after sorting, when n covers
 * them all: unmap_vmas goes in address order) and gathers the frames. */
void sy_x86_zap(struct sy *s, struct sy_mm *mm, size_t first, size_t n)
{
	if (first == 0 && n == mm->npg)
		qsort(mm->pg, mm->npg, sizeof(*mm->pg), cmp_va);
	for (size_t i = first; i < first + n && !s->err; i++) {
		sy_x86_set_leaf(s, mm, &mm->pg[i], 0, 0);
		page_unref(s, &mm->pg[i]);
	}
	memmove(&mm->pg[first], &mm->pg[first + n],
		(mm->npg - first - n) * sizeof(*mm->pg));
	mm->npg -= n;
}

/* free_pgtables: depth first, each table's link cleared (a store) before
 * the table goes to the gather list. PAE top-level entries stay: their PMDs
 * live as long as the root. */
static void free_level(struct sy *s, struct sy_mm *mm, uint64_t table,
		       unsigned level, unsigned n)
{
	const struct sy_fmt *f = &s->f;

	for (unsigned i = 0; i < n && !s->err; i++) {
		uint64_t e = table + (uint64_t)i * f->esize;
		uint64_t v = sy_rd(&s->mem, e, f->esize), child;

		if (!(v & SY_P))
			continue;
		if (level == 1 || (v & SY_PS)) {
			s->err = -EINVAL; /* a leaf survived the zap */
			return;
		}
		child = v & f->amask;
		if (level - 1 > 1)
			free_level(s, mm, child, level - 1,
				   f->nent[level - 1]);
		if (level == f->levels) {
			if (f->mode == AF_PAGING_PAE)
				continue;
			set_top(s, mm, i, 0);
		} else {
			st(s, e, f->esize, 0);
		}
		gather(s, child, 0);
	}
}

void sy_x86_free_tables(struct sy *s, struct sy_mm *mm)
{
	free_level(s, mm, mm->root, s->f.levels, s->f.user_top);
}

/* pgd_free: PAE PMDs unlinked and freed, then the root itself; Windows
 * frees the hyperspace pages with the directory. Nothing is loaded. */
void sy_x86_release_root(struct sy *s, struct sy_mm *mm)
{
	const struct sy_fmt *f = &s->f;

	if (mm->kernel)
		return;
	if (f->mode == AF_PAGING_PAE) {
		for (unsigned i = 0; i < f->user_top; i++) {
			st(s, mm->root + (uint64_t)i * 8, 8, 0);
			if (mm->uroot)
				st(s, mm->uroot + (uint64_t)i * 8, 8, 0);
			if (mm->pmd[i])
				sy_free0(&s->mem, mm->pmd[i]);
			mm->pmd[i] = 0;
		}
		if (!s->kpti) {
			if (sy_vec_push(&s->pae_slots, mm->root))
				s->err = -ENOMEM;
			return;
		}
	}
	for (unsigned k = 0; k < 4; k++)
		if (mm->hyper[k])
			sy_free0(&s->mem, mm->hyper[k]);
	if (s->kpti)
		sy_free1(&s->mem, mm->root);
	else
		sy_free0(&s->mem, mm->root);
}

/* ---- CR3 ---- */

static void load_cr3(struct sy *s, unsigned v, uint64_t cr3)
{
	unsigned save = s->cv;

	s->cv = v;
	sy_obs(s, AF_OBS_ROOT_LOAD, 0, 0, cr3, 0, COST_CR3);
	s->cv = save;
}

/* Linux choose_new_asid(). */
static void choose_slot(struct sy_vcpu *c, const struct sy_mm *mm,
			unsigned *slot, int *flush)
{
	for (unsigned i = 0; i < SY_NSLOTS; i++) {
		if (c->slot_id[i] != mm->id)
			continue;
		*slot = i;
		*flush = c->slot_gen[i] < mm->gen;
		return;
	}
	*slot = c->next_slot++;
	if (*slot >= SY_NSLOTS) {
		*slot = 0;
		c->next_slot = 1;
	}
	*flush = 1;
}

void sy_x86_switch(struct sy *s, unsigned v, struct sy_mm *next)
{
	struct sy_vcpu *c = &s->v[v];
	uint64_t cr3 = next->root;

	if (s->pcid) {
		unsigned slot;
		int flush;
		choose_slot(c, next, &slot, &flush);
		if (flush) {
			c->slot_id[slot] = next->id;
			c->slot_gen[slot] = next->gen;
			if (s->kpti)
				c->user_flush |= 1u << slot;
		}
		c->cur_slot = slot;
		cr3 |= slot + 1;
		if (!flush)
			cr3 |= SY_NOFLUSH;
	}
	c->user = 0;
	load_cr3(s, v, cr3);
}

/* Rewrites CR3 with its own value (no no-flush bit): flushes the current
 * PCID, or everything non-global without PCIDs. Kernel mode. */
void sy_x86_local_flush(struct sy *s, unsigned v)
{
	struct sy_vcpu *c = &s->v[v];
	uint64_t cr3;

	if (!c->mm)
		return;
	sy_x86_to_kernel(s, v);
	cr3 = c->mm->root;
	if (s->pcid) {
		cr3 |= c->cur_slot + 1;
		c->slot_gen[c->cur_slot] = c->mm->gen;
		if (s->kpti)
			c->user_flush |= 1u << c->cur_slot;
	}
	load_cr3(s, v, cr3);
}

void sy_x86_flush_page(struct sy *s, unsigned v, uint64_t va)
{
	unsigned save = s->cv;

	if (s->pcid && s->kpti)
		s->v[v].user_flush |= 1u << s->v[v].cur_slot;
	s->cv = v;
	sy_obs(s, AF_OBS_TLB_FLUSH, AF_FLUSH_PAGE, va, 0, 0, COST_INVLPG);
	s->cv = save;
}

void sy_x86_to_user(struct sy *s, unsigned v)
{
	struct sy_vcpu *c = &s->v[v];
	uint64_t cr3;

	if (!s->kpti || c->user || !c->mm || c->mm->kernel)
		return;
	cr3 = c->mm->uroot;
	if (s->pcid) {
		cr3 |= (c->cur_slot + 1) | SY_PCID_USER;
		if (c->user_flush & (1u << c->cur_slot))
			c->user_flush &= ~(1u << c->cur_slot);
		else
			cr3 |= SY_NOFLUSH;
	}
	c->user = 1;
	load_cr3(s, v, cr3);
}

void sy_x86_to_kernel(struct sy *s, unsigned v)
{
	struct sy_vcpu *c = &s->v[v];
	uint64_t cr3;

	if (!s->kpti || !c->user)
		return;
	cr3 = c->mm->root;
	if (s->pcid)
		cr3 |= (c->cur_slot + 1) | SY_NOFLUSH;
	c->user = 0;
	load_cr3(s, v, cr3);
}

/* ---- self-check ---- */

static uint64_t count_level(struct sy *s, uint64_t table, unsigned level,
			    unsigned n)
{
	const struct sy_fmt *f = &s->f;
	uint64_t c = 0;

	for (unsigned i = 0; i < n; i++) {
		uint64_t v = sy_rd(&s->mem, table + (uint64_t)i * f->esize,
				   f->esize);
		int pae_top = f->mode == AF_PAGING_PAE && level == 3;
		if (!(v & SY_P) || (!pae_top && !(v & SY_US)))
			continue;
		if (level == 1 || (level == 2 && (v & SY_PS)))
			c++;
		else
			c += count_level(s, v & f->amask, level - 1,
					 f->nent[level - 1]);
	}
	return c;
}

uint64_t sy_x86_count_user(struct sy *s, const struct sy_mm *mm)
{
	return count_level(s, mm->root, s->f.levels, s->f.user_top);
}

int sy_x86_check(struct sy *s, const struct sy_mm *mm, int empty)
{
	const struct sy_fmt *f = &s->f;
	unsigned es = f->esize;

	if (mm->kernel)
		return 0;
	if (sy_x86_count_user(s, mm) != (empty ? 0 : mm->npg))
		return -EPROTO;
	for (unsigned i = 0; i < f->user_top; i++) {
		uint64_t k = sy_rd(&s->mem, mm->root + (uint64_t)i * es, es);
		if (mm->uroot) {
			uint64_t u = sy_rd(&s->mem, mm->uroot + (uint64_t)i * es,
					   es);
			if ((k & ~SY_NX) != (u & ~SY_NX))
				return -EPROTO; /* KPTI halves disagree */
		}
		if (!empty)
			continue;
		if (f->mode == AF_PAGING_PAE) {
			/* the PMDs stay; everything in them must be gone */
			for (unsigned j = 0; j < f->nent[2]; j++)
				if (sy_rd(&s->mem, mm->pmd[i] + (uint64_t)j * 8, 8))
					return -EPROTO;
		} else if (k) {
			return -EPROTO;
		}
	}
	return 0;
}
