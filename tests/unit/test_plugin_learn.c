/*
 * tests/unit/test_plugin_learn.c - unit tests of the QEMU plugin's
 * page-table-writer learning: the store-site table (plugin/sites.c: keys,
 * writer and demotion flags, epochs, a full table, when a translation flush
 * is due) and the verification
 * shadows that find missed page-table stores (plugin/verify.c: what counts
 * as a change, reads, stores, checks against a fake RAM, dropping frames
 * that are no longer tables, a full pool). Both files are compiled in here;
 * they need neither QEMU nor glib.
 */
#include "harness.h"
#include "../../plugin/sites.c"
#include "../../plugin/verify.c"

#include <stdlib.h>

/* ---- sites ---- */

static const uint8_t code_a[] = { 0x48, 0x89, 0x37 };       /* mov %rsi,(%rdi) */
static const uint8_t code_b[] = { 0x48, 0x87, 0x03 };       /* xchg %rax,(%rbx) */

TEST(sites_keys)
{
	struct af_sites s;
	struct af_site *a, *b, *c;

	CHECK_EQ(af_sites_init(&s, 3), -EINVAL);
	CHECK_EQ(af_sites_init(&s, 25), -EINVAL);
	CHECK_EQ(af_sites_init(&s, 8), 0);
	a = af_sites_get(&s, 0xffffffff81000000ull, code_a, sizeof(code_a));
	CHECK(a != NULL);
	CHECK_EQ(s.n, 1);
	/* the same instruction again: the same site */
	CHECK(af_sites_get(&s, 0xffffffff81000000ull, code_a, 3) == a);
	CHECK(af_sites_find(&s, 0xffffffff81000000ull, code_a, 3) == a);
	/* other code at the same address (a module loaded later): another */
	b = af_sites_get(&s, 0xffffffff81000000ull, code_b, 3);
	CHECK(b != NULL && b != a);
	/* the same code elsewhere: another */
	c = af_sites_get(&s, 0xffffffff81000010ull, code_a, 3);
	CHECK(c != NULL && c != a && c != b);
	CHECK_EQ(s.n, 3);
	CHECK(af_sites_find(&s, 0x1234, code_a, 3) == NULL);
	CHECK_EQ(s.n, 3);
	/* only the first 8 bytes count */
	{
		uint8_t l1[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
		uint8_t l2[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 10 };
		struct af_site *x = af_sites_get(&s, 0x5000, l1, 12);
		CHECK(af_sites_get(&s, 0x5000, l2, 12) == x);
		CHECK_EQ(af_site_info(&s, x)->len, 12);
		CHECK_EQ(af_site_info(&s, x)->va, 0x5000);
	}
	/* sites are stored densely, in insertion order */
	CHECK(b == a + 1 && c == a + 2);
	af_sites_free(&s);
	af_sites_free(&s); /* twice is fine */
}

TEST(sites_flags)
{
	struct af_sites s;
	struct af_site *a, *b;

	CHECK_EQ(af_sites_init(&s, 6), 0);
	a = af_sites_get(&s, 0x1000, code_a, 3);
	b = af_sites_get(&s, 0x2000, code_b, 3);
	CHECK(!af_site_is_writer(a));
	CHECK(af_site_is_writer(NULL)); /* unknown: instrument always */
	CHECK_EQ(af_site_mark_writer(a, af_site_info(&s, a), 77), 1);
	CHECK_EQ(af_site_mark_writer(a, af_site_info(&s, a), 78), 0);
	CHECK(af_site_is_writer(a));
	CHECK_EQ(atomic_load(&af_site_info(&s, a)->learned_ns), 77);
	/* writers are never demoted */
	CHECK_EQ(af_site_demote(a), 0);
	CHECK(!(atomic_load(&a->flags) & AF_SITE_DEMOTED));
	/* a demoted site that turns out to write tables */
	CHECK_EQ(af_site_demote(b), 1);
	CHECK_EQ(af_site_demote(b), 0);
	CHECK(atomic_load(&b->flags) & AF_SITE_DEMOTED);
	CHECK_EQ(af_site_mark_writer(b, af_site_info(&s, b), 0), 2);
	CHECK_EQ(atomic_load(&b->flags), AF_SITE_WRITER);
	CHECK(atomic_load(&af_site_info(&s, b)->learned_ns) != 0);
	CHECK_EQ(af_site_mark_writer(NULL, NULL, 1), 0);
	af_sites_free(&s);
}

TEST(sites_counts_epochs_undemote)
{
	struct af_sites s;
	struct af_site *a, *b;

	CHECK_EQ(af_sites_init(&s, 6), 0);
	a = af_sites_get(&s, 0x1000, code_a, 3);
	b = af_sites_get(&s, 0x2000, code_b, 3);
	CHECK_EQ(af_site_count32(&a->calls), 1);
	CHECK_EQ(af_site_count32(&a->calls), 2);
	atomic_store(&b->calls, UINT32_MAX - 1);
	CHECK_EQ(af_site_count32(&b->calls), UINT32_MAX);
	CHECK_EQ(af_site_count32(&b->calls), UINT32_MAX); /* saturates */
	/* consecutive calls in one epoch count once */
	CHECK_EQ(af_site_epoch(a, 5), 1);
	CHECK_EQ(af_site_epoch(a, 5), 1);
	CHECK_EQ(af_site_epoch(a, 6), 2);
	CHECK_EQ(af_site_epoch(a, 5), 3);
	CHECK_EQ(af_site_epoch(b, 0), 1); /* epoch 0 is an epoch too */
	af_sites_zero_calls(&s);
	CHECK_EQ(atomic_load(&a->calls), 0);
	CHECK_EQ(atomic_load(&a->epochs), 0);
	CHECK_EQ(af_site_demote(a), 1);
	CHECK_EQ(af_site_demote(b), 1);
	af_site_count32(&b->calls);
	CHECK_EQ(af_sites_undemote_all(&s), 2);
	CHECK(!(atomic_load(&a->flags) & AF_SITE_DEMOTED));
	CHECK_EQ(atomic_load(&b->calls), 0);
	CHECK_EQ(af_sites_undemote_all(&s), 0);
	af_sites_free(&s);
}

static void count_site(void *ctx, const struct af_site *site,
		       const struct af_site_info *info)
{
	(void)site;
	CHECK(info->va >= 0x1000 && info->va < 0x1000 + 40);
	(*(unsigned *)ctx)++;
}

TEST(sites_full)
{
	struct af_sites s;
	unsigned n = 0, seen = 0;

	CHECK_EQ(af_sites_init(&s, 4), 0); /* 16 slots, 12 usable */
	for (uint64_t va = 0; va < 40; va++) {
		if (af_sites_get(&s, 0x1000 + va, code_a, 3))
			n++;
	}
	CHECK_EQ(n, 12);
	CHECK_EQ(s.n, 12);
	CHECK_EQ(s.full, 28);
	/* stored ones are still found */
	CHECK(af_sites_find(&s, 0x1000, code_a, 3) != NULL);
	CHECK(af_sites_get(&s, 0x1000, code_a, 3) != NULL);
	CHECK_EQ(s.full, 28);
	af_sites_each(&s, count_site, &seen);
	CHECK_EQ(seen, 12);
	af_sites_free(&s);
	/* a table never set up answers NULL */
	CHECK(af_sites_get(&s, 1, code_a, 3) == NULL);
	CHECK(af_sites_find(&s, 1, code_a, 3) == NULL);
}

TEST(sites_flush_rule)
{
	/* below flush_waste: never, whatever was translated */
	CHECK(!af_flush_due(1999, 0, 2000, 64));
	CHECK(!af_flush_due(1999, 0, 2000, 0));
	/* small translated working set: flush_waste decides */
	CHECK(af_flush_due(2000, 10, 2000, 64));
	CHECK(af_flush_due(2000, 31, 2000, 64));
	/* large one: 64 wasted callbacks per block translated since */
	CHECK(!af_flush_due(2000, 32, 2000, 64));
	CHECK(!af_flush_due(6399, 100, 2000, 64));
	CHECK(af_flush_due(6400, 100, 2000, 64));
	/* per_tb 0: flush_waste alone, as before */
	CHECK(af_flush_due(2000, 1000000, 2000, 0));
	/* no overflow: a huge bound is never reached */
	CHECK(!af_flush_due(UINT64_MAX - 1, UINT64_MAX / 2, 2000, 64));
	CHECK(af_flush_due(UINT64_MAX, UINT64_MAX / 2, 2000, 64));
}

/* ---- verify ---- */

#define P 0x1ull
#define RW 0x2ull
#define US 0x4ull
#define A 0x20ull
#define D 0x40ull
#define PS 0x80ull
#define NX 0x8000000000000000ull

TEST(verify_hash)
{
	uint64_t e = 0x1234000ull | P | US;

	CHECK_EQ(af_verify_hash(0, 8), 0);
	CHECK_EQ(af_verify_hash(0x1234000ull | US, 8), 0); /* not present */
	CHECK_EQ(af_verify_hash(0x1234000ull | P | RW, 8), 0); /* kernel */
	CHECK(af_verify_hash(e, 8) != 0);
	/* bits the engine never looks at */
	CHECK_EQ(af_verify_hash(e | A | D | RW | NX, 8), af_verify_hash(e, 8));
	CHECK_EQ(af_verify_hash(e | 0xe00, 8), af_verify_hash(e, 8));
	/* bits it does */
	CHECK(af_verify_hash(e | PS, 8) != af_verify_hash(e, 8));
	CHECK(af_verify_hash(e + 0x1000, 8) != af_verify_hash(e, 8));
	/* 4-byte entries: only the low 32 bits exist */
	CHECK_EQ(af_verify_hash(0x1234000ull | P | US | A, 4),
		 af_verify_hash(0x1234000ull | P | US, 4));
	CHECK(af_verify_hash(0x1235000ull | P | US, 4) !=
	      af_verify_hash(0x1234000ull | P | US, 4));
}

/* A fake guest: 64 frames of RAM and a set of tracked frames. */
struct fake {
	uint8_t ram[64 * 4096];
	uint8_t tracked[64];
	/* what miss() saw */
	unsigned n;
	uint64_t gpa[64], value[64];
	unsigned es[64];
	int table[64];
};

static int fk_tracked(void *ctx, uint64_t gpa)
{
	struct fake *f = ctx;
	return gpa >> 12 < 64 && f->tracked[gpa >> 12];
}

static int fk_read(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	struct fake *f = ctx;
	if (gpa + len > sizeof(f->ram))
		return -EFAULT;
	memcpy(buf, f->ram + gpa, len);
	return 0;
}

static void fk_miss(void *ctx, uint64_t gpa, unsigned es, uint64_t value,
		    int table)
{
	struct fake *f = ctx;
	if (f->n < 64) {
		f->gpa[f->n] = gpa;
		f->value[f->n] = value;
		f->es[f->n] = es;
		f->table[f->n] = table;
	}
	f->n++;
}

static void put8(struct fake *f, uint64_t gpa, uint64_t v)
{
	memcpy(f->ram + gpa, &v, 8);
}

static void put4(struct fake *f, uint64_t gpa, uint32_t v)
{
	memcpy(f->ram + gpa, &v, 4);
}

/* The engine walks frame fr: the plugin's read_phys sees a 4 KiB read. */
static void walk(struct af_verify *v, struct fake *f, unsigned fr,
		 unsigned es)
{
	f->tracked[fr] = 1;
	af_verify_read(v, (uint64_t)fr << 12, f->ram + ((size_t)fr << 12), 4096,
		       es);
}

static uint64_t check(struct af_verify *v, struct fake *f)
{
	f->n = 0;
	return af_verify_check(v, fk_tracked, fk_read, fk_miss, f,
			       sizeof(f->ram));
}

TEST(verify_finds_unreported_stores)
{
	struct af_verify v;
	struct fake *f = calloc(1, sizeof(*f));

	CHECK(f != NULL);
	CHECK_EQ(af_verify_init(&v, 0), -EINVAL);
	CHECK_EQ(af_verify_init(&v, 16), 0);
	put8(f, 0x3000 + 8, 0x5000 | P | US | RW);
	walk(&v, f, 3, 8);
	CHECK_EQ(af_verify_count(&v), 1);
	CHECK_EQ(check(&v, f), 0);
	CHECK_EQ(f->n, 0);
	/* the CPU sets A/D, the guest flips RW: nothing the engine cares */
	put8(f, 0x3000 + 8, 0x5000 | P | US | A | D);
	CHECK_EQ(check(&v, f), 0);
	/* a reported store: the shadow follows it */
	put8(f, 0x3000 + 16, 0x6000 | P | US);
	af_verify_store(&v, 0x3000 + 16, 8, 0x6000 | P | US);
	CHECK_EQ(check(&v, f), 0);
	/* unreported: a new mapping and a cleared one */
	put8(f, 0x3000 + 24, 0x7000 | P | US);
	put8(f, 0x3000 + 8, 0);
	CHECK_EQ(check(&v, f), 2);
	CHECK_EQ(f->n, 2);
	CHECK_EQ(f->gpa[0], 0x3008);
	CHECK_EQ(f->value[0], 0);
	CHECK_EQ(f->gpa[1], 0x3018);
	CHECK_EQ(f->value[1], 0x7000 | P | US);
	CHECK_EQ(f->es[1], 8);
	CHECK(f->table[0] && f->table[1]);
	CHECK_EQ(v.mismatches, 2);
	/* the shadow now holds RAM: nothing again */
	CHECK_EQ(check(&v, f), 0);
	af_verify_free(&v);
	free(f);
}

TEST(verify_reads_and_partial_stores)
{
	struct af_verify v;
	struct fake *f = calloc(1, sizeof(*f));

	CHECK_EQ(af_verify_init(&v, 16), 0);
	walk(&v, f, 5, 8);
	/* the engine re-reads two entries (a partial store): shadow follows */
	put8(f, 0x5000 + 0x40, 0x9000 | P | US);
	put8(f, 0x5000 + 0x48, 0xa000 | P | US);
	af_verify_read(&v, 0x5040, f->ram + 0x5040, 16, 8);
	CHECK_EQ(check(&v, f), 0);
	/* a partial store alone is left to the engine's read */
	put8(f, 0x5000 + 0x50, 0xb000 | P | US);
	af_verify_store(&v, 0x5050, 4, 0xb000 | P | US);
	CHECK_EQ(check(&v, f), 1);
	/* reads of frames without a shadow create nothing */
	af_verify_read(&v, 0x7040, f->ram + 0x7040, 16, 8);
	CHECK_EQ(af_verify_count(&v), 1);
	/* nor do reads with an odd entry size */
	af_verify_read(&v, 0x8000, f->ram + 0x8000, 4096, 2);
	CHECK_EQ(af_verify_count(&v), 1);
	af_verify_free(&v);
	free(f);
}

TEST(verify_32bit_entries)
{
	struct af_verify v;
	struct fake *f = calloc(1, sizeof(*f));

	CHECK_EQ(af_verify_init(&v, 16), 0);
	put4(f, 0x2000 + 4 * 700, 0x3000 | P | US);
	walk(&v, f, 2, 4);
	CHECK_EQ(check(&v, f), 0);
	/* entry 1023 (beyond the first 512) is checked too */
	put4(f, 0x2000 + 4 * 1023, 0x4000 | P | US);
	CHECK_EQ(check(&v, f), 1);
	CHECK_EQ(f->gpa[0], 0x2000 + 4 * 1023);
	CHECK_EQ(f->es[0], 4);
	/* an 8-byte store (cmpxchg8b) covers two 4-byte entries */
	put4(f, 0x2000 + 8, 0x5000 | P | US);
	put4(f, 0x2000 + 12, 0x6000 | P | US);
	af_verify_store(&v, 0x2008, 8,
			(uint64_t)(0x6000 | P | US) << 32 | (0x5000 | P | US));
	CHECK_EQ(check(&v, f), 0);
	af_verify_free(&v);
	free(f);
}

TEST(verify_drops_and_judges_frames)
{
	struct af_verify v;
	struct fake *f = calloc(1, sizeof(*f));

	CHECK_EQ(af_verify_init(&v, 64), 0);
	for (unsigned fr = 1; fr < 40; fr++)
		walk(&v, f, fr, 8);
	CHECK_EQ(af_verify_count(&v), 39);
	/* frames that stop being tables are dropped, the rest kept */
	for (unsigned fr = 1; fr < 40; fr += 3)
		f->tracked[fr] = 0;
	CHECK_EQ(check(&v, f), 0);
	CHECK_EQ(af_verify_count(&v), 26);
	CHECK_EQ(v.dropped, 13);
	for (unsigned fr = 1; fr < 40; fr++) {
		int want = fr % 3 != 1;
		CHECK_EQ(find(&v, fr) != NULL, want);
	}
	/* a frame reused for data: a change is reported, and the frame is
	 * judged no table (a present entry points beyond RAM) */
	put8(f, (2 << 12) + 8, 0xffff888004f7a17full);
	put8(f, (2 << 12) + 16, 0x1000 | P | US);
	CHECK_EQ(check(&v, f), 2);
	CHECK_EQ(f->table[0], 0);
	CHECK_EQ(f->table[1], 0);
	/* a frame that still looks like one */
	put8(f, (3 << 12) + 16, 0x1000 | P | US);
	CHECK_EQ(check(&v, f), 1);
	CHECK_EQ(f->table[0], 1);
	af_verify_free(&v);
	free(f);
}

TEST(verify_pool_full)
{
	struct af_verify v;
	struct fake *f = calloc(1, sizeof(*f));

	CHECK_EQ(af_verify_init(&v, 4), 0);
	for (unsigned fr = 0; fr < 6; fr++)
		walk(&v, f, fr, 8);
	CHECK_EQ(af_verify_count(&v), 4);
	CHECK_EQ(v.full, 2);
	/* a walk of a shadowed frame refreshes it, no new slot */
	walk(&v, f, 1, 8);
	CHECK_EQ(v.full, 2);
	/* freed slots are reused */
	f->tracked[0] = 0;
	check(&v, f);
	CHECK_EQ(af_verify_count(&v), 3);
	walk(&v, f, 5, 8);
	CHECK_EQ(af_verify_count(&v), 4);
	CHECK(find(&v, 5) != NULL);
	af_verify_free(&v);
	/* a freed (or never set up) verifier does nothing */
	af_verify_read(&v, 0, f->ram, 4096, 8);
	af_verify_store(&v, 0, 8, 1);
	CHECK_EQ(af_verify_check(&v, fk_tracked, fk_read, fk_miss, f, 1), 0);
	free(f);
}
