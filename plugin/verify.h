/*
 * plugin/verify.h - detects page-table stores the QEMU plugin missed.
 *
 * The plugin instruments only the stores it has learned to be page-table
 * writers (plugin/sites.h). If a writer was never learned, the engine's
 * picture of some table goes stale without anyone noticing. This module
 * keeps, for every table frame the engine has read, a shadow of what the
 * engine was told about it: the frame as the engine read it (its walks go
 * through the plugin's read_phys) and every store fed to it since. A check
 * compares each shadow with guest RAM; an entry that differs in a way the
 * engine cares about is a store nobody reported.
 *
 * What the engine cares about in an entry: whether it is present and
 * user-accessible (P and U/S) and, if so, PS and the frame address (x86:
 * the rest, A/D bits that the CPU sets itself, RW, NX, caching and software
 * bits, never changes what it counts). Entries that are not present, or
 * supervisor-only, compare equal whatever they hold. Each
 * shadow entry is a 16-bit hash of that: a changed entry goes unnoticed
 * with probability 2^-16. A shadow costs about 1 KiB (2 KiB with 4-byte
 * entries); the pool is fixed at creation.
 *
 * Not thread-safe: the plugin calls everything under its lock. Pure code
 * (no QEMU), unit-tested in tests/unit/test_plugin_verify.c.
 */
#ifndef AF_PLUGIN_VERIFY_H
#define AF_PLUGIN_VERIFY_H

#include <stddef.h>
#include <stdint.h>

/* One shadowed table frame. */
struct af_shadow {
	uint64_t gfn;       /* guest frame number; UINT64_MAX if free */
	uint8_t es;         /* entry size when read: 4 or 8 */
	uint16_t h[1024];   /* per-entry hashes (es 8 uses the first 512) */
};

struct af_verify {
	struct af_shadow *pool; /* cap shadows */
	uint32_t *index;        /* open-addressed gfn -> pool slot + 1 */
	uint32_t *free_list;    /* free pool slots */
	uint32_t cap;           /* pool size */
	uint32_t n_free;        /* free slots */
	uint32_t mask;          /* index size - 1 */
	/* statistics */
	uint64_t full;          /* frames not shadowed: pool full */
	uint64_t checked;       /* frames compared, cumulative */
	uint64_t mismatches;    /* entries found to differ, cumulative */
	uint64_t dropped;       /* shadows dropped (frame no longer a table) */
};

/* Tells whether a guest-physical page is a table the engine tracks. */
typedef int (*af_verify_tracked_fn)(void *ctx, uint64_t gpa);
/* Reads guest RAM; 0 or negative errno. */
typedef int (*af_verify_read_fn)(void *ctx, uint64_t gpa, void *buf,
				 size_t len);
/* One entry that differs: gpa of the entry, its size, its value in RAM;
 * table: whether the frame as a whole still looks like a page table (every
 * present entry points below phys_top; a frame the guest has freed and
 * reused for data usually does not). Called during af_verify_check(); may
 * feed the engine, which may read (af_verify_read()) or store
 * (af_verify_store()) into the shadows. */
typedef void (*af_verify_miss_fn)(void *ctx, uint64_t gpa, unsigned es,
				  uint64_t value, int table);

/* Sets up a pool of cap shadows (1 .. 2^22). 0 or -ENOMEM/-EINVAL. */
int af_verify_init(struct af_verify *v, uint32_t cap);
void af_verify_free(struct af_verify *v);

/* The engine read len bytes at gpa (es: entry size of the vCPU's paging
 * mode, 4 or 8). A read of a whole page-aligned frame (a walk) creates or
 * refreshes that frame's shadow; a smaller read updates the entries it
 * covers in an existing shadow. */
void af_verify_read(struct af_verify *v, uint64_t gpa, const void *buf,
		    size_t len, unsigned es);

/* The engine was fed a store of width bytes of value at gpa: the entries
 * it covers in an existing shadow now hold that (a partial entry is left
 * to the engine's read of it, which comes through af_verify_read()). */
void af_verify_store(struct af_verify *v, uint64_t gpa, unsigned width,
		     uint64_t value);

/* Compares every shadow with RAM. Shadows of frames that are no longer
 * tracked are dropped. The differing entries of a frame are first fixed in
 * the shadow, then passed to miss() one by one. Returns the number of
 * differing entries. phys_top: top of guest RAM (for miss()'s table). */
uint64_t af_verify_check(struct af_verify *v, af_verify_tracked_fn tracked,
			 af_verify_read_fn rd, af_verify_miss_fn miss,
			 void *ctx, uint64_t phys_top);

/* Shadows in use. */
uint32_t af_verify_count(const struct af_verify *v);

/* The hash kept for an entry (exposed for tests). */
uint16_t af_verify_hash(uint64_t ent, unsigned es);

#endif
