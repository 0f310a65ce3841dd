/*
 * plugin/sites.h - the table of store instructions ("sites") the QEMU plugin
 * has instrumented, and which of them have been seen writing a page table.
 *
 * Page-table entries are written by a small set of kernel instructions
 * (Linux: set_pte, ptep_get_and_clear, pmd_populate, ... a few hundred at
 * most), while candidate stores number tens of thousands and run tens of
 * millions of times. The plugin learns the writers: while it learns, every
 * candidate store has a memory callback and a store that hits a tracked page
 * table marks its site as a writer; afterwards only writers are
 * instrumented (see plugin/README.md, "Learning the page-table writers").
 *
 * A site is keyed by its guest-virtual address and its first 8 bytes of
 * code, so code loaded later at the same address (a module) is a different
 * site. The table is a fixed open-addressed hash index over dense arrays:
 * no deletion, no growth; when it is 3/4 full af_sites_get() returns NULL
 * and the caller must treat the store as a writer (always instrument it).
 *
 * Threads: af_sites_get() must be serialised by the caller (translation
 * happens on several vCPU threads; the plugin holds a lock). Flags and
 * counters of a site are accessed with atomics and may be touched by any
 * thread at any time; the counters are statistics (relaxed, may lose
 * increments under contention).
 */
#ifndef AF_PLUGIN_SITES_H
#define AF_PLUGIN_SITES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* af_site.flags */
#define AF_SITE_WRITER 0x1u  /* has written a tracked page table */
#define AF_SITE_DEMOTED 0x2u /* ran often, never wrote one: dropped at the
				next translation (unless it becomes a writer) */

/* What a memory callback touches of its site, 16 bytes: sites are stored
 * densely in insertion order so that the few hundred hot ones stay in the
 * host's cache (a callback that missed it cost more than all the rest of
 * the callback). */
struct af_site {
	atomic_uint flags;  /* AF_SITE_* */
	atomic_uint calls;  /* callbacks (saturates at UINT32_MAX) */
	atomic_uint epoch;  /* last epoch (root-load count) it ran in */
	atomic_uint epochs; /* distinct epochs it ran in */
};

/* The rest of a site, for translation and diagnostics. */
struct af_site_info {
	uint64_t va;                      /* instruction's guest-virtual address */
	uint64_t code;                    /* its first bytes (up to 8), zero-padded */
	uint32_t len;                     /* instruction length in bytes */
	atomic_uint_least64_t hits;       /* page-table hits (statistics) */
	atomic_uint_least64_t learned_ns; /* when it became a writer, 0 never */
};

struct af_sites {
	struct af_site *hot;        /* limit sites, in insertion order */
	struct af_site_info *info;  /* limit, same order */
	uint32_t *index;            /* 2^log2 slots: site number + 1, 0 empty */
	uint32_t mask;              /* index slots - 1 */
	uint32_t n;                 /* sites stored */
	uint32_t limit;             /* most sites stored (3/4 of the slots) */
	uint64_t full;              /* lookups refused: the table was full */
};

/* Allocates 2^log2 index slots (4 <= log2 <= 24). Returns 0 or
 * -ENOMEM/-EINVAL. */
int af_sites_init(struct af_sites *s, unsigned log2);

/* Frees the table (safe on a zeroed struct). */
void af_sites_free(struct af_sites *s);

/* The site of the instruction at va whose first bytes are code[0..len)
 * (only the first 8 count), inserted if new; NULL if the table is full.
 * Caller serialises. */
struct af_site *af_sites_get(struct af_sites *s, uint64_t va,
			     const uint8_t *code, size_t len);

/* The site if present, else NULL (no insertion). Caller serialises. */
struct af_site *af_sites_find(const struct af_sites *s, uint64_t va,
			      const uint8_t *code, size_t len);

/* The cold half of a site of s. */
static inline struct af_site_info *af_site_info(const struct af_sites *s,
						const struct af_site *site)
{
	return &s->info[site - s->hot];
}

/* Is the site a writer (or NULL: unknown, so treated as one)? */
static inline int af_site_is_writer(struct af_site *site)
{
	return !site || (atomic_load_explicit(&site->flags,
					      memory_order_relaxed) &
			 AF_SITE_WRITER) != 0;
}

/* Marks a site a writer (and no longer demoted); returns 0 if it was a
 * writer already, 1 if it was not, 2 if it had been demoted. info (may be
 * NULL) gets learned_ns. */
int af_site_mark_writer(struct af_site *site, struct af_site_info *info,
			uint64_t now_ns);

/* Demotes a site unless it is a writer; returns 1 if this demoted it. */
int af_site_demote(struct af_site *site);

/* Clears every site's demotion and call count (after a missed page-table
 * store: the culprit may be among them). Caller serialises with
 * af_sites_get(). Returns how many were demoted. */
uint64_t af_sites_undemote_all(struct af_sites *s);

/* Zeroes every site's call and epoch counts (they count toward demotion
 * from now). Caller serialises with af_sites_get(). */
void af_sites_zero_calls(struct af_sites *s);

/* Adds one to a statistics counter and returns the new value (relaxed load
 * + store: may lose counts when two threads race, never tears). */
static inline uint64_t af_site_count(atomic_uint_least64_t *c)
{
	uint64_t v = atomic_load_explicit(c, memory_order_relaxed) + 1;

	atomic_store_explicit(c, v, memory_order_relaxed);
	return v;
}

/* The same for a 32-bit counter, saturating. */
static inline uint32_t af_site_count32(atomic_uint *c)
{
	uint32_t v = atomic_load_explicit(c, memory_order_relaxed);

	if (v != UINT32_MAX)
		atomic_store_explicit(c, ++v, memory_order_relaxed);
	return v;
}

/* Notes that the site ran in epoch e (epochs are numbered by the caller,
 * e.g. by counting root loads); returns the number of distinct epochs it
 * has run in (consecutive calls in one epoch count once). Relaxed, lossy
 * under races like af_site_count(). */
static inline uint32_t af_site_epoch(struct af_site *site, uint32_t e)
{
	uint32_t n = atomic_load_explicit(&site->epochs, memory_order_relaxed);

	if (atomic_load_explicit(&site->epoch, memory_order_relaxed) != e) {
		atomic_store_explicit(&site->epoch, e, memory_order_relaxed);
		atomic_store_explicit(&site->epochs, ++n, memory_order_relaxed);
	}
	return n;
}

/* learn=demote: is a translation flush worth it now? waste: callbacks of
 * demoted sites (in blocks translated before their demotion) since the last
 * flush; tb: blocks translated since then, which the flush throws away and
 * the guest translates again as far as it still runs them. Due once waste
 * reaches min_waste and per_tb per block of tb (per_tb 0: no such bound): a
 * wasted callback costs some 40 ns, translating a block again some 10 us
 * (docs/overhead.md, measured on the compile), so with a large translated
 * working set (a compile) a trickle of waste is cheaper than a flush.
 * Saturates instead of overflowing. */
int af_flush_due(uint64_t waste, uint64_t tb, uint64_t min_waste,
		 uint64_t per_tb);

/* Calls fn for every stored site, in insertion order. */
void af_sites_each(const struct af_sites *s,
		   void (*fn)(void *ctx, const struct af_site *site,
			      const struct af_site_info *info),
		   void *ctx);

#endif
