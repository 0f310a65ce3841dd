/*
 * lib/engine/x86.c - the page-table technique (Antfarm paper 4.1),
 * generalised to every x86 paging mode (32-bit two-level with 4 MiB pages,
 * PAE, 4-level, 5-level; huge pages at every level), KPTI and PCID.
 *
 * ASID: the physical address of the root loaded into CR3.
 * Create: a root never seen, or one seen again after its space died.
 * Switch: a root load that changes the vCPU's address space.
 * Exit: the space's count of user mappings has fallen to zero (after having
 *   been above it), it is loaded on no vCPU, and every vCPU that may hold TLB
 *   entries of it has flushed them since (with PCIDs, only under
 *   AF_ENGINE_STRICT_PCID; see engine.h). With PCIDs the OS may reuse a
 *   drained root before flushing the old PCID; a drained space that runs
 *   nowhere and gains mappings or is loaded again is then taken as gone (its
 *   ASID is being reused, the paper's own signal of deallocation).
 *
 * A user mapping is a present leaf reached through entries that all have U/S
 * set: architectural, no OS knowledge. The engine learns which frames are page
 * tables by walking from each new root (reading guest memory through the
 * VMM's callback) and then follows stores to those frames; each frame keeps
 * one bit per entry (is it a counted user leaf) and a count of the user leaves
 * below it, which propagates along the edge that first linked the frame.
 *
 * Sharing: a table linked from several places is walked once. If a newly
 * seen root shares tables holding user mappings with exactly one other
 * address space and owns none itself, it is another root of that space (KPTI
 * gives every process a kernel and a user root whose user halves point at the
 * same tables). A table linked from three or more places is common (the
 * kernel half): its user leaves count for nobody. Recursive entries, level
 * conflicts and addresses outside RAM are counted and ignored.
 *
 * TLB: each (space, vCPU) remembers up to AF_TAGS PCIDs it ran under and the
 * vCPU's flush epochs when it stopped running; a later flush of all PCIDs or
 * of that PCID clears the footprint.
 *
 * Cost: most observations are whole-entry stores to leaf tables (a page
 * mapped or unmapped); af_x86_store() handles them in a small function that
 * flips the entry's bit and moves the counts up the first-link chain, and
 * hands everything else to the general path.
 */
#include "engine_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PTE_P 0x1ull
#define PTE_US 0x4ull
#define PTE_PS 0x80ull
#define ADDR64 0x000ffffffffff000ull
#define ADDR32 0xfffff000ull
#define CR3_NOFLUSH (1ull << 63)

enum { E_NONE, E_LEAF, E_LINK };

/* Two 64-bit lanes (GCC/Clang vector extension): table scans. */
typedef uint64_t af_v2 __attribute__((vector_size(16)));

/* ---- small open-addressing hash (linear probing, backward-shift delete) */

/* Fibonacci hashing: one multiply; bits 32 and up of the product depend on
 * every key bit below them (no table here has 2^32 slots). */
static uint64_t mix(uint64_t k)
{
	return (k * 0x9e3779b97f4a7c15ull) >> 32;
}

/* The slot where a key's probe starts. Keys that differ only in their low 4
 * bits (after the +1 of link_key) start side by side: the links of entries
 * 16i..16i+15 of one table share a cache line or two of the table, and the
 * links a walk records touch a handful of the (lazily zeroed) table's pages,
 * not one page each. A group is at most 16 keys, so runs stay short. */
static uint64_t home(uint64_t key, uint64_t mask)
{
	uint64_t k = key - 1;

	return ((mix(k >> 4) << 4) | (k & 15)) & mask;
}

static uint32_t h_get(const struct af_link *t, uint64_t mask, uint64_t key)
{
	for (uint64_t i = home(key, mask);; i = (i + 1) & mask) {
		if (t[i].key == key)
			return t[i].child;
		if (t[i].key == 0)
			return AF_NIL;
	}
}

/* Inserts or replaces; -ENOSPC if the table is at its load limit. */
static int h_put(struct af_link *t, uint64_t mask, uint64_t *n, uint64_t key,
		 uint32_t child)
{
	uint64_t i = home(key, mask);

	for (;; i = (i + 1) & mask) {
		if (t[i].key == key) {
			t[i].child = child;
			return 0;
		}
		if (t[i].key == 0)
			break;
	}
	if (*n + 1 > (mask + 1) / 2)
		return -ENOSPC;
	t[i].key = key;
	t[i].child = child;
	(*n)++;
	return 0;
}

static uint32_t h_del(struct af_link *t, uint64_t mask, uint64_t *n,
		      uint64_t key)
{
	uint64_t i = home(key, mask), j;
	uint32_t child;

	for (;; i = (i + 1) & mask) {
		if (t[i].key == key)
			break;
		if (t[i].key == 0)
			return AF_NIL;
	}
	child = t[i].child;
	(*n)--;
	/* shift later members of the cluster back over the hole */
	for (j = (i + 1) & mask; t[j].key; j = (j + 1) & mask) {
		uint64_t h = home(t[j].key, mask);
		if (((j - h) & mask) >= ((j - i) & mask)) {
			t[i] = t[j];
			i = j;
		}
	}
	t[i].key = 0;
	return child;
}

static uint64_t link_key(uint32_t parent, unsigned idx)
{
	return (((uint64_t)parent << 11) | idx) + 1;
}

static uint64_t root_key(uint64_t addr, unsigned mode)
{
	return addr | mode; /* roots are 32-byte aligned, mode < 8 */
}

static uint64_t pow2_at_least(uint64_t n)
{
	uint64_t p = 1;
	while (p < n)
		p <<= 1;
	return p;
}

/* ---- geometry of tables ---- */

static unsigned top_level(unsigned mode)
{
	static const unsigned top[] = { 0, 2, 3, 4, 5 };
	return top[mode];
}

static unsigned entry_size(unsigned mode)
{
	return mode == AF_PAGING_32 ? 4 : 8;
}

static unsigned n_entries(const struct af_frame *f)
{
	if (f->flags & AF_FR_PAE_ROOT)
		return 4;
	return 4096 / entry_size(f->mode);
}

/* Classifies entry ent at level of a table read under mode. */
static int classify(unsigned mode, unsigned level, unsigned pse, uint64_t ent,
		    uint64_t *child)
{
	if (!(ent & PTE_P))
		return E_NONE;
	if (mode == AF_PAGING_PAE && level == 3) {
		/* PAE PDPTEs carry no U/S: rights come from below */
		*child = ent & ADDR64;
		return E_LINK;
	}
	if (!(ent & PTE_US))
		return E_NONE;
	if (level == 1)
		return E_LEAF;
	if (ent & PTE_PS) {
		if (mode != AF_PAGING_32) {
			if (level == 2 || level == 3)
				return E_LEAF; /* 2 MiB, 1 GiB */
			return E_NONE; /* reserved at PML4/PML5: faults */
		}
		if (pse)
			return E_LEAF; /* 4 MiB; without PSE, PS is ignored */
	}
	*child = ent & (mode == AF_PAGING_32 ? ADDR32 : ADDR64);
	return E_LINK;
}

/* Counted in n_two: linked from exactly two entries, not common. */
static unsigned two_links(const struct af_frame *f)
{
	return f->nlinks == 2 && !(f->flags & AF_FR_COMMON);
}

/* Sets f's link count, keeping n_two. */
static void set_nlinks(struct af_engine *e, struct af_frame *f, unsigned n)
{
	e->n_two -= two_links(f);
	f->nlinks = (uint16_t)n;
	e->n_two += two_links(f);
}

static bool bit(const struct af_frame *f, unsigned i)
{
	return f->user[i >> 6] >> (i & 63) & 1;
}

static void set_bit(struct af_frame *f, unsigned i, bool on)
{
	if (on)
		f->user[i >> 6] |= 1ull << (i & 63);
	else
		f->user[i >> 6] &= ~(1ull << (i & 63));
}

/* ---- frames ---- */

static uint32_t frame_alloc(struct af_engine *e, uint64_t addr, unsigned level,
			    unsigned mode, unsigned flags)
{
	uint32_t slot = e->free_frame;
	struct af_frame *f;

	if (slot != AF_NIL) {
		e->free_frame = e->frames[slot].parent;
	} else if (e->fresh_frame < e->max_frames) {
		slot = e->fresh_frame++;
	} else {
		e->cnt.table_full++;
		return AF_NIL;
	}
	f = &e->frames[slot];
	memset(f, 0, sizeof(*f));
	f->addr = addr;
	f->parent = AF_NIL;
	f->space = AF_NIL;
	f->level = (uint8_t)level;
	f->mode = (uint8_t)mode;
	f->flags = (uint8_t)flags;
	f->live = 1;
	if (!(flags & AF_FR_PAE_ROOT))
		__atomic_store_n(&e->frame_of[addr >> 12], slot + 1,
				 __ATOMIC_RELAXED);
	e->cnt.frames_tracked++;
	return slot;
}

static uint32_t frame_at(const struct af_engine *e, uint64_t addr)
{
	uint64_t gfn = addr >> 12;
	if (gfn >= e->phys_pages)
		return AF_NIL;
	return e->frame_of[gfn] - 1; /* 0 - 1 == AF_NIL */
}

/* The address space whose count a frame's leaves go to, or AF_NIL. */
static uint32_t owner(const struct af_engine *e, uint32_t slot)
{
	for (int depth = 0; depth <= AF_MAX_LEVELS; depth++) {
		const struct af_frame *f = &e->frames[slot];
		if (f->flags & AF_FR_COMMON)
			return AF_NIL;
		if (f->parent == AF_NIL)
			return (f->flags & AF_FR_ROOT) ? f->space : AF_NIL;
		slot = f->parent;
	}
	return AF_NIL;
}

static void try_exit(struct af_engine *e, uint32_t s);
static void check_pending(struct af_engine *e);
static void exit_space(struct af_engine *e, uint32_t s);

/* Adds delta user mappings to space s. */
static void space_add(struct af_engine *e, uint32_t s, int64_t delta)
{
	struct af_space *sp = &e->spaces[s];

	if (sp->ucount && (delta > 0 || (uint64_t)-delta < sp->ucount)) {
		/* stays above zero, the common case: only the count moves
		 * (a space with user mappings is never pending, and had_user
		 * is already set) */
		sp->ucount += (uint64_t)delta;
		return;
	}
	if (delta < 0 && (uint64_t)-delta > sp->ucount) {
		e->cnt.bad_entries++; /* cannot happen; never go negative */
		delta = -(int64_t)sp->ucount;
	}
	if (delta > 0 && !sp->ucount && sp->had_user && !sp->loaded &&
	    !e->walking) {
		/* A drained address space that runs nowhere gains mappings:
		 * the OS is building a new one in its root (with PCID the old
		 * one may still wait for a flush of its PCID). The old one is
		 * gone; the new one is created when its root is loaded. */
		exit_space(e, s);
		return;
	}
	sp->ucount += (uint64_t)delta;
	if (sp->ucount > 0) {
		sp->had_user = 1;
		af_pending_del(e, s);
	} else if (delta < 0) {
		try_exit(e, s);
	}
}

/* Adds delta to slot's subtree count and up the first-link chain. */
static void propagate(struct af_engine *e, uint32_t slot, int64_t delta)
{
	for (int depth = 0; depth <= AF_MAX_LEVELS && slot != AF_NIL; depth++) {
		struct af_frame *f = &e->frames[slot];
		f->ucount = (uint32_t)((int64_t)f->ucount + delta);
		if (f->flags & AF_FR_COMMON)
			return;
		if (f->parent == AF_NIL) {
			if ((f->flags & AF_FR_ROOT) && f->space != AF_NIL)
				space_add(e, f->space, delta);
			return;
		}
		slot = f->parent;
	}
}

static void make_common(struct af_engine *e, uint32_t c)
{
	struct af_frame *f = &e->frames[c];

	if (f->flags & AF_FR_COMMON)
		return;
	if (f->parent != AF_NIL && f->ucount)
		propagate(e, f->parent, -(int64_t)f->ucount);
	e->n_two -= two_links(f);
	f->flags |= AF_FR_COMMON;
}

static void frame_free(struct af_engine *e, uint32_t slot);

/* Removes the link at (p, i). Returns the user leaves that stop counting
 * for p's subtree. */
static uint32_t unlink_entry(struct af_engine *e, uint32_t p, unsigned i)
{
	uint32_t c = h_del(e->links, e->link_mask, &e->n_links,
			   link_key(p, i));
	struct af_frame *f;
	uint32_t removed = 0;

	if (c == AF_NIL)
		return 0;
	set_bit(&e->frames[p], i, false);
	f = &e->frames[c];
	if (f->nlinks)
		set_nlinks(e, f, f->nlinks - 1u);
	if (f->parent == p && f->pidx == i) {
		if (!(f->flags & AF_FR_COMMON))
			removed = f->ucount;
		f->parent = AF_NIL; /* orphan until someone links it again */
	}
	if (f->nlinks == 0 && !(f->flags & (AF_FR_ROOT | AF_FR_COMMON)))
		frame_free(e, c);
	return removed;
}

/* Stops tracking a table and everything only it links. */
static void frame_free(struct af_engine *e, uint32_t slot)
{
	struct af_frame *f = &e->frames[slot];
	unsigned words = (n_entries(f) + 63) / 64;

	/* only entries whose bit is set can be links */
	if (f->level > 1) {
		for (unsigned w = 0; w < words; w++) {
			while (e->frames[slot].user[w]) {
				unsigned b = (unsigned)__builtin_ctzll(
					e->frames[slot].user[w]);
				e->frames[slot].user[w] &= ~(1ull << b);
				unlink_entry(e, slot, w * 64 + b);
			}
		}
	}
	f = &e->frames[slot];
	e->n_two -= two_links(f); /* 0: only unlinked frames are freed */
	if (!(f->flags & AF_FR_PAE_ROOT))
		__atomic_store_n(&e->frame_of[f->addr >> 12], 0,
				 __ATOMIC_RELAXED);
	f->live = 0;
	f->parent = e->free_frame;
	e->free_frame = slot;
	e->cnt.frames_tracked--;
}

static uint32_t walk(struct af_engine *e, uint32_t slot, unsigned depth);

/* Links table child_addr at entry i of table p (one level below p). Returns
 * the user leaves this adds to p's subtree (not propagated above p). */
static uint32_t link_child(struct af_engine *e, uint32_t p, unsigned i,
			   uint64_t child_addr, unsigned depth)
{
	struct af_frame *pf = &e->frames[p];
	unsigned level = pf->level - 1u, mode = pf->mode;
	uint32_t c;
	struct af_frame *f;

	if (child_addr + 4096 > e->cfg.phys_bytes || level < 1) {
		e->cnt.bad_entries++;
		return 0;
	}
	c = frame_at(e, child_addr);
	if (c == AF_NIL) {
		c = frame_alloc(e, child_addr, level, mode, 0);
		if (c == AF_NIL)
			return 0;
		if (h_put(e->links, e->link_mask, &e->n_links, link_key(p, i),
			  c)) {
			e->cnt.table_full++;
			frame_free(e, c);
			return 0;
		}
		set_bit(&e->frames[p], i, true);
		f = &e->frames[c];
		f->parent = p;
		f->pidx = (uint16_t)i;
		set_nlinks(e, f, 1);
		return walk(e, c, depth + 1);
	}
	f = &e->frames[c];
	if (f->level != level || f->mode != mode || (f->flags & AF_FR_ROOT)) {
		e->cnt.bad_entries++; /* recursive entry, conflict, garbage */
		return 0;
	}
	/* Common tables (the kernel half, linked from every root) count
	 * for nobody and live as long as the engine: links to them are not
	 * recorded, so every new root costs nothing for them. */
	if (f->flags & AF_FR_COMMON)
		return 0;
	if (f->nlinks >= 2 && f->parent != AF_NIL) {
		/* a third place links it: shared kernel tables */
		make_common(e, c);
		return 0;
	}
	if (h_put(e->links, e->link_mask, &e->n_links, link_key(p, i), c)) {
		e->cnt.table_full++;
		return 0;
	}
	set_bit(&e->frames[p], i, true);
	set_nlinks(e, f, f->nlinks + 1u);
	if (f->parent == AF_NIL) {
		/* an orphan (its first linker let go): adopt it */
		f->parent = p;
		f->pidx = (uint16_t)i;
		return f->ucount;
	}
	if (e->in_root_walk) {
		if (e->n_colinks < AF_MAX_COLINKS)
			e->colinks[e->n_colinks++] = c;
		return 0;
	}
	return 0; /* second link: counts go along the first */
}

/* Reads table slot and links/counts every entry. Returns its user leaves. */
static uint32_t walk(struct af_engine *e, uint32_t slot, unsigned depth)
{
	struct af_frame *f = &e->frames[slot];
	unsigned n = n_entries(f), mode = f->mode, level = f->level;
	unsigned es = entry_size(mode);
	unsigned pse = !!(e->vcpu[e->now_vcpu].flags & AF_PAGING_F_PSE);
	size_t bytes = (size_t)n * es;
	const uint8_t *src = NULL;
	uint32_t count = 0;

	if (depth > AF_MAX_LEVELS)
		return 0;
	e->cnt.frames_walked++;
	if (e->cfg.view_phys)
		src = e->cfg.view_phys(e->cfg.read_ctx, f->addr, bytes);
	if (!src) {
		uint8_t *buf = e->buf + (size_t)depth * 4096;
		if (e->cfg.read_phys(e->cfg.read_ctx, f->addr, buf, bytes)) {
			e->cnt.bad_entries++;
			return 0;
		}
		src = buf;
	}
	e->walking++;
	/* 64 bytes at a time: most of most tables is zeros */
	for (size_t off = 0; off < bytes; off += 64) {
		size_t blk = bytes - off < 64 ? bytes - off : 64;
		uint64_t any = 0;
		if (blk == 64) {
			/* fixed size: four 16-byte loads, no loop, no spill */
			af_v2 a, b, c, d, x;
			memcpy(&a, src + off, 16);
			memcpy(&b, src + off + 16, 16);
			memcpy(&c, src + off + 32, 16);
			memcpy(&d, src + off + 48, 16);
			x = (a | b) | (c | d);
			any = x[0] | x[1];
		} else {
			for (size_t k = 0; k < blk; k += 8) {
				uint64_t w;
				memcpy(&w, src + off + k, 8);
				any |= w;
			}
		}
		if (!any)
			continue;
		for (size_t k = off; k < off + blk; k += es) {
			unsigned i = (unsigned)(k / es);
			uint64_t child = 0, ent = 0;
			int kind;
			if (es == 4) {
				uint32_t v32;
				memcpy(&v32, src + k, 4);
				ent = v32;
			} else {
				memcpy(&ent, src + k, 8);
			}
			if (!(ent & PTE_P))
				continue;
			kind = classify(mode, level, pse, ent, &child);
			if (kind == E_LEAF) {
				set_bit(f, i, true);
				count++;
			} else if (kind == E_LINK) {
				count += link_child(e, slot, i, child, depth);
				f = &e->frames[slot];
			}
		}
	}
	f->ucount += count;
	e->walking--;
	return count;
}

/* Applies the new value of entry i of table slot. */
static void update_entry(struct af_engine *e, uint32_t slot, unsigned i,
			 uint64_t ent)
{
	struct af_frame *f = &e->frames[slot];
	unsigned pse = !!(e->vcpu[e->now_vcpu].flags & AF_PAGING_F_PSE);
	uint64_t child = 0;
	int k = classify(f->mode, f->level, pse, ent, &child);
	int64_t delta = 0;
	uint32_t old_child = AF_NIL;
	bool was = bit(f, i), old_leaf;

	/* a set bit is a counted leaf or, above level 1, maybe a link */
	if (was && f->level > 1)
		old_child = h_get(e->links, e->link_mask, link_key(slot, i));
	old_leaf = was && old_child == AF_NIL;
	if (old_leaf && k != E_LEAF) {
		set_bit(f, i, false);
		delta--;
	}
	if (old_child != AF_NIL &&
	    (k != E_LINK || e->frames[old_child].addr != child)) {
		delta -= unlink_entry(e, slot, i);
		old_child = AF_NIL;
	}
	f = &e->frames[slot];
	if (k == E_LEAF && !old_leaf) {
		set_bit(f, i, true);
		delta++;
	}
	if (k == E_LINK && old_child == AF_NIL)
		delta += link_child(e, slot, i, child, 0);
	if (delta)
		propagate(e, slot, delta);
}

/* A store that is not a whole entry of a leaf table: a directory entry, or a
 * partial or spanning store. */
static __attribute__((noinline)) void pt_store_slow(struct af_engine *e,
						     uint32_t slot,
						     const struct af_obs *o)
{
	struct af_frame *f = &e->frames[slot];
	unsigned es, sh, first, last;
	uint64_t off;

	es = entry_size(f->mode);
	sh = es == 8 ? 3 : 2;
	off = o->addr & 4095;
	first = (unsigned)(off >> sh);
	last = (unsigned)((off + o->width - 1) >> sh);
	if (last >= 4096u >> sh)
		last = (4096u >> sh) - 1;
	if (first == last && o->width == es && !(off & (es - 1))) {
		update_entry(e, slot, first, o->value);
		goto out;
	}
	/* partial or spanning store: the entries are whatever memory now says */
	for (unsigned i = first; i <= last; i++) {
		uint64_t ent = 0;
		if (e->cfg.read_phys(e->cfg.read_ctx, f->addr + (uint64_t)i * es,
				     &ent, es)) {
			e->cnt.bad_entries++;
			continue;
		}
		update_entry(e, slot, i, ent);
		if (!e->frames[slot].live)
			break;
	}
out:
	if (e->deferred) {
		e->deferred = false;
		check_pending(e);
	}
}

/* The hot path: kept small (no spills of the big observe function). */
int af_x86_store(struct af_engine *e, const struct af_obs *o)
{
	unsigned w = o->width, es, i;
	uint32_t slot;
	struct af_frame *f;
	uint64_t off;

	if (w > 8 || !((0x116u >> w) & 1)) /* 1, 2, 4 or 8 bytes */
		return -EINVAL;
	slot = frame_at(e, o->addr);
	if (slot == AF_NIL) {
		e->cnt.stray_stores++;
		return 0;
	}
	e->cnt.pt_stores++;
	f = &e->frames[slot];
	es = f->mode == AF_PAGING_32 ? 4 : 8;
	off = o->addr & 4095;
	if (f->level == 1 && w == es && !(off & (es - 1))) {
		/* A whole entry of a leaf table, most stores (every page
		 * mapped or unmapped): an entry there is a counted user leaf
		 * or nothing (classify(); links need a level below), so flip
		 * its bit if that changed and count it. A store that changes
		 * nothing the rules look at (a PTE rewritten with other bits,
		 * a kernel or absent entry cleared) costs no more. */
		uint64_t *word, m;
		bool leaf = (o->value & (PTE_P | PTE_US)) == (PTE_P | PTE_US);

		i = (unsigned)(off >> (es == 8 ? 3 : 2)); /* no division */
		word = &f->user[i >> 6];
		m = 1ull << (i & 63);
		if (leaf != !!(*word & m)) {
			*word ^= m;
			propagate(e, slot, leaf ? 1 : -1);
		}
		if (e->deferred) { /* (never set outside a walk) */
			e->deferred = false;
			check_pending(e);
		}
		return 0;
	}
	pt_store_slow(e, slot, o);
	return 0;
}

/* ---- TLB footprints and exits ---- */

static bool tag_clean(const struct af_engine *e, unsigned v,
		      const struct af_tag *t)
{
	if (!t->valid)
		return true;
	if (t->active)
		return false;
	if ((e->vcpu[v].flags & AF_PAGING_F_PCIDE) &&
	    !(e->cfg.flags & AF_ENGINE_STRICT_PCID))
		return true; /* see AF_ENGINE_STRICT_PCID */
	return e->vcpu[v].epoch_all != t->stamp_all ||
	       e->vcpu[v].epoch_pcid[t->pcid] != t->stamp_pcid;
}

/* The space current on v stops accumulating TLB entries under its PCID. */
static void tag_stop(struct af_engine *e, unsigned v)
{
	struct af_vcpu *vc = &e->vcpu[v];
	struct af_tag *t;

	if (vc->cur == AF_NIL)
		return;
	t = af_space_tags(e, vc->cur, v);
	for (int k = 0; k < AF_TAGS; k++) {
		if (t[k].valid && t[k].active && t[k].pcid == vc->cur_pcid) {
			t[k].active = 0;
			t[k].stamp_all = vc->epoch_all;
			t[k].stamp_pcid = vc->epoch_pcid[t[k].pcid];
		}
	}
}

static void tag_start(struct af_engine *e, uint32_t s, unsigned v,
		      uint16_t pcid)
{
	struct af_tag *t = af_space_tags(e, s, v);
	int use = -1;

	for (int k = 0; k < AF_TAGS; k++) {
		if (t[k].valid && t[k].pcid == pcid) {
			use = k;
			break;
		}
		if (use < 0 && tag_clean(e, v, &t[k]))
			use = k;
	}
	if (use < 0)
		use = 0; /* more PCIDs than remembered: forget the oldest */
	t[use] = (struct af_tag){ .pcid = pcid, .valid = 1, .active = 1 };
	e->vcpu[v].cur_pcid = pcid;
}

static bool space_tlb_clean(const struct af_engine *e, uint32_t s)
{
	for (unsigned v = 0; v < e->cfg.n_vcpus; v++) {
		const struct af_tag *t =
			&e->tags[((size_t)s * e->cfg.n_vcpus + v) * AF_TAGS];
		for (int k = 0; k < AF_TAGS; k++)
			if (!tag_clean(e, v, &t[k]))
				return false;
	}
	return true;
}

static void exit_space(struct af_engine *e, uint32_t s)
{
	af_x86_drop_space(e, s);
	af_space_release(e, s);
}

/* Exits s if the rule holds now; else keeps it pending while drained. */
static void try_exit(struct af_engine *e, uint32_t s)
{
	struct af_space *sp = &e->spaces[s];

	if (sp->ucount || !sp->had_user) {
		af_pending_del(e, s);
		return;
	}
	if (e->walking) {
		/* never free tables in the middle of a walk */
		af_pending_add(e, s);
		e->deferred = true;
		return;
	}
	if (!sp->loaded && space_tlb_clean(e, s))
		exit_space(e, s);
	else
		af_pending_add(e, s);
}

static void check_pending(struct af_engine *e)
{
	uint32_t s = e->pend_head, next;

	for (; s != AF_NIL; s = next) {
		next = e->spaces[s].pnext;
		try_exit(e, s);
	}
}

/* Lets go of the space's roots and every table only they link. */
void af_x86_drop_space(struct af_engine *e, uint32_t s)
{
	struct af_space *sp = &e->spaces[s];

	if (!e->frames)
		return;
	for (int k = 0; k < sp->n_roots; k++) {
		uint32_t r = sp->roots[k];
		struct af_frame *f = &e->frames[r];
		h_del(e->roots, e->root_mask, &e->n_rootkeys,
		      root_key(f->addr, f->mode));
		for (unsigned v = 0; v < e->cfg.n_vcpus; v++)
			if (e->vcpu[v].cur_root == r)
				e->vcpu[v].cur_root = AF_NIL;
		f->flags &= (uint8_t)~AF_FR_ROOT;
		f->space = AF_NIL;
		frame_free(e, r);
		sp->roots[k] = AF_NIL;
	}
	sp->n_roots = 0;
}

/* Moves every root of space b into space a and drops b (an exit event). */
static void merge_into(struct af_engine *e, uint32_t a, uint32_t b)
{
	struct af_space *sa = &e->spaces[a], *sb = &e->spaces[b];

	for (int k = 0; k < sb->n_roots; k++) {
		uint32_t r = sb->roots[k];
		sa->roots[sa->n_roots++] = r;
		e->frames[r].space = a;
	}
	sb->n_roots = 0;
	sa->loaded |= sb->loaded;
	for (unsigned v = 0; v < e->cfg.n_vcpus; v++) {
		if (e->vcpu[v].cur == b) {
			e->vcpu[v].cur = a;
			tag_start(e, a, v, e->vcpu[v].cur_pcid);
		}
	}
	sb->loaded = 0;
	e->cnt.joins++;
	space_add(e, a, (int64_t)sb->ucount);
	sb->ucount = 0;
	af_space_release(e, b);
}

/* A space whose roots own no user mappings yet may be the second root of
 * another space whose tables filled in after we first saw it: look. */
static void late_join(struct af_engine *e, uint32_t r)
{
	struct af_frame *rf = &e->frames[r];
	uint32_t s = rf->space;
	unsigned n = n_entries(rf);

	if (s == AF_NIL || e->spaces[s].had_user || e->spaces[s].n_roots != 1)
		return;
	/* a candidate is linked from exactly two places and not common; with
	 * none anywhere (no KPTI, no table shared right now) nothing to scan */
	if (!e->n_two)
		return;
	/* only entries whose bit is set can be links: visit those, in
	 * ascending order (a root with no user half, loaded at every switch
	 * to a kernel thread, costs a few words, not 512 entries) */
	for (unsigned w = 0; w < (n + 63) / 64; w++) {
		uint64_t bits = rf->user[w];
		while (bits) {
			unsigned i = w * 64 + (unsigned)__builtin_ctzll(bits);
			uint32_t c = h_get(e->links, e->link_mask,
					   link_key(r, i));
			uint32_t t;
			bits &= bits - 1;
			if (c == AF_NIL || e->frames[c].parent == r ||
			    (e->frames[c].flags & AF_FR_COMMON) ||
			    e->frames[c].nlinks != 2 || !e->frames[c].ucount)
				continue;
			t = owner(e, c);
			if (t != AF_NIL && t != s &&
			    e->spaces[t].n_roots < AF_MAX_ROOTS) {
				merge_into(e, t, s);
				return;
			}
		}
	}
}

/* A root seen for the first time: walk it and decide whose it is. */
static uint32_t root_new(struct af_engine *e, uint64_t addr, unsigned mode)
{
	unsigned level = top_level(mode);
	uint32_t r, s = AF_NIL, own;
	unsigned flags = AF_FR_ROOT;

	if (mode == AF_PAGING_PAE) {
		if (addr + 32 > e->cfg.phys_bytes) {
			e->cnt.bad_roots++;
			return AF_NIL;
		}
		flags |= AF_FR_PAE_ROOT;
	} else {
		uint32_t old;
		if (addr + 4096 > e->cfg.phys_bytes) {
			e->cnt.bad_roots++;
			return AF_NIL;
		}
		old = frame_at(e, addr);
		if (old != AF_NIL) {
			/* still a table of another space (or of another paging
			 * mode), or garbage: not something we can follow */
			e->cnt.bad_roots++;
			return AF_NIL;
		}
	}
	r = frame_alloc(e, addr, level, mode, flags);
	if (r == AF_NIL)
		return AF_NIL;
	e->in_root_walk = true;
	e->n_colinks = 0;
	own = walk(e, r, 0);
	e->in_root_walk = false;

	/* another root of an existing space (KPTI)? */
	if (own == 0) {
		for (uint32_t k = 0; k < e->n_colinks; k++) {
			uint32_t c = e->colinks[k], t;
			if (!e->frames[c].ucount ||
			    (e->frames[c].flags & AF_FR_COMMON))
				continue;
			t = owner(e, c);
			if (t != AF_NIL && e->spaces[t].n_roots < AF_MAX_ROOTS) {
				s = t;
				e->cnt.joins++;
				break;
			}
		}
	}
	if (s == AF_NIL) {
		s = af_space_new(e, addr);
		if (s == AF_NIL) {
			e->frames[r].flags &= (uint8_t)~AF_FR_ROOT;
			frame_free(e, r);
			return AF_NIL;
		}
	}
	if (h_put(e->roots, e->root_mask, &e->n_rootkeys, root_key(addr, mode),
		  r)) {
		/* cannot happen: the root table is sized for every space */
		e->cnt.table_full++;
	}
	e->frames[r].space = s;
	e->spaces[s].roots[e->spaces[s].n_roots++] = r;
	if (own)
		space_add(e, s, own);
	return r;
}

/* PAE: the four PDPTEs are loaded into the CPU at each CR3 load; re-read. */
static void pae_refresh(struct af_engine *e, uint32_t r)
{
	struct af_frame *f = &e->frames[r];
	uint64_t pdpte[4];
	int64_t delta = 0;

	if (e->cfg.read_phys(e->cfg.read_ctx, f->addr, pdpte, sizeof(pdpte))) {
		e->cnt.bad_entries++;
		return;
	}
	for (unsigned i = 0; i < 4; i++) {
		uint32_t c = h_get(e->links, e->link_mask, link_key(r, i));
		uint64_t want = (pdpte[i] & PTE_P) ? pdpte[i] & ADDR64 : 1;
		if (c != AF_NIL && e->frames[c].addr == want)
			continue;
		if (c != AF_NIL)
			delta -= unlink_entry(e, r, i);
		if (want != 1)
			delta += link_child(e, r, i, want, 0);
	}
	if (delta)
		propagate(e, r, delta);
}

static void root_load(struct af_engine *e, const struct af_obs *o)
{
	unsigned v = o->vcpu;
	struct af_vcpu *vc = &e->vcpu[v];
	unsigned mode = vc->mode;
	bool pcide = vc->flags & AF_PAGING_F_PCIDE;
	uint64_t addr, cr3 = o->value;
	uint16_t pcid = 0;
	uint32_t r, s;

	e->cnt.root_loads++;
	if (mode == AF_PAGING_OFF)
		return;
	if (mode == AF_PAGING_32)
		addr = cr3 & ADDR32;
	else if (mode == AF_PAGING_PAE)
		addr = cr3 & 0xffffffe0ull;
	else
		addr = cr3 & ADDR64;
	if (pcide)
		pcid = (uint16_t)(cr3 & 0xfff);

	/* the old address space stops; the write flushes what it flushes */
	tag_stop(e, v);
	if (!pcide)
		vc->epoch_all++;
	else if (!(cr3 & CR3_NOFLUSH))
		vc->epoch_pcid[pcid]++;
	e->cnt.flushes++;

	r = h_get(e->roots, e->root_mask, root_key(addr, mode));
	if (r != AF_NIL) {
		struct af_space *sp = &e->spaces[e->frames[r].space];
		if (!sp->ucount && sp->had_user && !sp->loaded) {
			/* a drained root, loaded nowhere, loaded again: the
			 * old space is gone and this is a new one (ASID reuse
			 * before every stale PCID was flushed). Reloading the
			 * root that is current (a flush) is the same space. */
			exit_space(e, e->frames[r].space);
			r = AF_NIL;
		} else if (mode == AF_PAGING_PAE) {
			pae_refresh(e, r);
		}
	}
	if (r == AF_NIL)
		r = root_new(e, addr, mode);
	if (r == AF_NIL) {
		/* untracked: the vCPU runs something we cannot follow */
		if (vc->cur != AF_NIL)
			e->spaces[vc->cur].loaded &= ~(1ull << v);
		vc->cur = AF_NIL;
		vc->cur_root = AF_NIL;
		check_pending(e);
		return;
	}
	e->deferred = false;
	late_join(e, r);
	s = e->frames[r].space;
	af_space_switch_to(e, v, s);
	vc->cur_root = r;
	tag_start(e, s, v, pcid);
	check_pending(e);
}

static void tlb_flush(struct af_engine *e, const struct af_obs *o)
{
	struct af_vcpu *vc = &e->vcpu[o->vcpu];

	e->cnt.flushes++;
	switch (o->width) {
	case AF_FLUSH_ALL:
	case AF_FLUSH_NONGLOBAL:
		vc->epoch_all++;
		break;
	case AF_FLUSH_ASID:
		vc->epoch_pcid[o->value & 0xfff]++;
		break;
	default:
		return; /* one page: no address space is gone */
	}
	check_pending(e);
}

static void paging(struct af_engine *e, const struct af_obs *o)
{
	struct af_vcpu *vc = &e->vcpu[o->vcpu];
	uint8_t mode = o->value <= AF_PAGING_5LEVEL ? (uint8_t)o->value : 0;
	uint8_t flags = (uint8_t)(o->aux & (AF_PAGING_F_PSE | AF_PAGING_F_PCIDE));

	if (mode == vc->mode && flags == vc->flags)
		return;
	/* changing paging mode or PCIDE flushes the TLB */
	if (mode != vc->mode ||
	    ((flags ^ vc->flags) & AF_PAGING_F_PCIDE)) {
		tag_stop(e, o->vcpu);
		vc->epoch_all++;
		if (vc->cur != AF_NIL)
			tag_start(e, vc->cur, o->vcpu, 0);
	}
	vc->mode = mode;
	vc->flags = flags;
	check_pending(e);
}

int af_x86_observe(struct af_engine *e, const struct af_obs *o)
{
	switch (o->kind) {
	case AF_OBS_ROOT_LOAD:
		root_load(e, o);
		return 0;
	case AF_OBS_PT_STORE:
		return af_x86_store(e, o);
	case AF_OBS_TLB_FLUSH:
		if (o->width < AF_FLUSH_ALL || o->width > AF_FLUSH_ASID_PAGE)
			return -EINVAL;
		tlb_flush(e, o);
		return 0;
	case AF_OBS_PAGING:
		paging(e, o);
		return 0;
	case AF_OBS_CTX_LOAD:
	case AF_OBS_CTX_DEMAP:
		return 0; /* not this MMU's */
	default:
		return -EINVAL;
	}
}

int af_x86_init(struct af_engine *e)
{
	uint64_t pages = e->cfg.phys_bytes >> 12;
	uint64_t frames = pages / 8; /* page tables in 1/8 of RAM: plenty */

	if (frames < 4096)
		frames = 4096;
	if (frames > (1u << 21))
		frames = 1u << 21;
	e->phys_pages = pages;
	e->max_frames = (uint32_t)frames;
	e->frame_of = calloc(pages, sizeof(*e->frame_of));
	e->frames = calloc(frames, sizeof(*e->frames));
	/* first links, plus a few second links per space (KPTI pairs) */
	e->link_mask = pow2_at_least(2 * (frames + (uint64_t)e->max_spaces * 8)) - 1;
	e->links = calloc(e->link_mask + 1, sizeof(*e->links));
	e->root_mask = pow2_at_least(4 * (uint64_t)e->max_spaces * AF_MAX_ROOTS) - 1;
	e->roots = calloc(e->root_mask + 1, sizeof(*e->roots));
	e->buf = malloc((AF_MAX_LEVELS + 1) * 4096);
	if (!e->frame_of || !e->frames || !e->links || !e->roots || !e->buf)
		return -ENOMEM;
	e->free_frame = AF_NIL; /* then fresh slots from 0 up: see fresh_frame */
	e->fresh_frame = 0;
	return 0;
}

void af_x86_free(struct af_engine *e)
{
	free(e->frame_of);
	free(e->frames);
	free(e->links);
	free(e->roots);
	free(e->buf);
	e->frame_of = NULL;
	e->frames = NULL;
}
