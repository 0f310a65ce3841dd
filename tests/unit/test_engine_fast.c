/*
 * tests/unit/test_engine_fast.c - the engine's fast paths against the rules
 * they shortcut: whole-entry stores to leaf tables (flip one bit, count one
 * leaf), the grouped link hash, the lazily used slot pools, and late_join's
 * "no table linked from exactly two places" early return. Each test drives
 * the public API and checks the user-mapping counts against an independent
 * walk of the fake guest's tables, or the KPTI join against its rule.
 */
#include "harness.h"

#include <antfarm/engine.h>
#include <engine/engine_impl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RAM (16u << 20)
#define P 0x1ull
#define RW 0x2ull
#define US 0x4ull
#define PS 0x80ull
#define ADDR 0x000ffffffffff000ull

#include "fake_guest.h"

static void poke(struct guest *g, uint64_t gpa, uint64_t v, unsigned w)
{
	memcpy(g->ram + gpa, &v, w); /* little-endian host, as the guest */
}

/* The guest stores w bytes and the VMM sees it. */
static void store(struct guest *g, uint64_t gpa, uint64_t v, unsigned w)
{
	poke(g, gpa, v, w);
	obs(g, AF_OBS_PT_STORE, 0, w, gpa, v, 0);
}

static uint64_t peek8(const struct guest *g, uint64_t gpa)
{
	uint64_t v;
	memcpy(&v, g->ram + gpa, 8);
	return v;
}

static uint64_t user_pages(struct guest *g, uint64_t asid)
{
	struct af_process ps[16];
	size_t n = af_engine_processes(g->e, ps, 16);
	for (size_t i = 0; i < n && i < 16; i++)
		if (ps[i].asid == asid)
			return ps[i].user_pages;
	return UINT64_MAX; /* no such process */
}

static uint64_t counter_pt_stores(struct guest *g)
{
	struct af_counters c;
	af_engine_counters(g->e, &c);
	return c.pt_stores;
}

/* n_two is kept incrementally; recount it from the frame pool. */
static uint32_t recount_two(const struct af_engine *e)
{
	uint32_t n = 0;
	for (uint32_t s = 0; s < e->fresh_frame; s++) {
		const struct af_frame *f = &e->frames[s];
		if (f->live && f->nlinks == 2 && !(f->flags & AF_FR_COMMON))
			n++;
	}
	return n;
}

TEST(leaf_stores_count_only_present_user_entries)
{
	struct guest *g = guest_new(1);
	uint64_t pml4 = frame(g), pdpt = frame(g), pd = frame(g);
	uint64_t pt = frame(g), pt_sup = frame(g), n0;

	poke(g, pml4, pdpt | P | RW | US, 8);
	poke(g, pdpt, pd | P | RW | US, 8);
	poke(g, pd, pt | P | RW | US, 8);
	poke(g, pd + 8, pt_sup | P | RW, 8); /* supervisor: not followed */
	poke(g, pt, 0x800000 | P | US, 8);
	obs(g, AF_OBS_PAGING, 0, 0, 0, AF_PAGING_4LEVEL, 0);
	obs(g, AF_OBS_ROOT_LOAD, 0, 0, 0, pml4, 0);
	CHECK_EQ(g->n_create, 1);
	CHECK_EQ(user_pages(g, pml4), 1);
	CHECK(af_engine_is_page_table(g->e, pt));
	CHECK(!af_engine_is_page_table(g->e, pt_sup));
	n0 = counter_pt_stores(g);

	store(g, pt + 8, 0x801000 | P | RW | US, 8); /* new user leaf */
	CHECK_EQ(user_pages(g, pml4), 2);
	store(g, pt + 8, 0x9ff000 | P | US, 8); /* remapped: still one */
	CHECK_EQ(user_pages(g, pml4), 2);
	store(g, pt + 8, 0x9ff000 | P | RW, 8); /* made supervisor */
	CHECK_EQ(user_pages(g, pml4), 1);
	store(g, pt + 16, 0x802000 | US, 8); /* not present */
	CHECK_EQ(user_pages(g, pml4), 1);
	store(g, pt + 16, 0x802000 | US | P, 8); /* now present */
	CHECK_EQ(user_pages(g, pml4), 2);
	store(g, pt + 8 * 511, 0x803000 | P | US | PS, 8); /* PS: still 4K */
	CHECK_EQ(user_pages(g, pml4), 3);
	store(g, pt + 8 * 511, 0, 8);
	store(g, pt + 16, 0, 8);
	store(g, pt + 16, 0, 8); /* cleared twice */
	CHECK_EQ(user_pages(g, pml4), 1);
	CHECK_EQ(counter_pt_stores(g) - n0, 9);
	store(g, pt_sup, 0x804000 | P | US, 8); /* untracked table */
	CHECK_EQ(counter_pt_stores(g) - n0, 9);
	CHECK_EQ(user_pages(g, pml4), 1);

	/* the last leaf goes while loaded: pending; a flush ends it */
	store(g, pt, 0, 8);
	CHECK_EQ(user_pages(g, pml4), 0);
	CHECK_EQ(g->n_exit, 0);
	{
		uint64_t other = frame(g);
		obs(g, AF_OBS_ROOT_LOAD, 0, 0, 0, other, 0);
	}
	CHECK_EQ(g->n_exit, 1);
	CHECK(!af_engine_is_page_table(g->e, pt));
	guest_free(g);
}

TEST(leaf_stores_in_32bit_and_pae_tables)
{
	struct guest *g = guest_new(1);
	uint64_t pd = frame(g), pt = frame(g);
	uint64_t pdpt, pd2, pt2;

	/* 32-bit: 4-byte entries, PSE off */
	poke(g, pd + 4 * 3, pt | P | RW | US, 4);
	poke(g, pt + 4 * 7, 0x500000 | P | US, 4);
	obs(g, AF_OBS_PAGING, 0, 0, 0, AF_PAGING_32, 0);
	obs(g, AF_OBS_ROOT_LOAD, 0, 0, 0, pd, 0);
	CHECK_EQ(user_pages(g, pd), 1);
	store(g, pt + 4 * 1023, 0x501000 | P | US, 4); /* last entry */
	store(g, pt + 4 * 8, 0x502000 | P, 4);
	CHECK_EQ(user_pages(g, pd), 2);
	store(g, pt + 4 * 7, 0, 4);
	CHECK_EQ(user_pages(g, pd), 1);
	/* a 2-byte store over the low half of an entry: read back */
	store(g, pt + 4 * 8, P | US, 2);
	CHECK_EQ(user_pages(g, pd), 2);
	store(g, pt + 4 * 8 + 1, 0, 1); /* bits 8-15: no change */
	CHECK_EQ(user_pages(g, pd), 2);
	store(g, pt + 4 * 8, 0, 1); /* P and U/S cleared */
	CHECK_EQ(user_pages(g, pd), 1);

	/* PAE: 32-byte root in a shared page, 8-byte leaves */
	pdpt = frame(g) + 64;
	pd2 = frame(g);
	pt2 = frame(g);
	poke(g, pdpt, pd2 | P, 8);
	poke(g, pd2 + 8 * 2, pt2 | P | RW | US, 8);
	poke(g, pt2, 0x600000 | P | US, 8);
	obs(g, AF_OBS_PAGING, 0, 0, 0, AF_PAGING_PAE, 0);
	obs(g, AF_OBS_ROOT_LOAD, 0, 0, 0, pdpt, 0);
	CHECK_EQ(g->n_create, 2);
	CHECK_EQ(user_pages(g, pdpt), 1);
	store(g, pt2 + 8 * 5, 0x601000 | P | US | RW, 8);
	CHECK_EQ(user_pages(g, pdpt), 2);
	/* a 4-byte store to the high half (NX, address bits): no change */
	store(g, pt2 + 8 * 5 + 4, 0x80000000u, 4);
	CHECK_EQ(user_pages(g, pdpt), 2);
	/* to the low half: entry now supervisor */
	store(g, pt2 + 8 * 5, 0x601000 | P, 4);
	CHECK_EQ(user_pages(g, pdpt), 1);
	guest_free(g);
}

/* The model: user leaves reachable from a 4-level root through entries that
 * all have P and U/S (2 MiB and 1 GiB pages are leaves). */
static uint64_t walk_count(const struct guest *g, uint64_t table, int level)
{
	uint64_t n = 0;

	for (int i = 0; i < 512; i++) {
		uint64_t ent = peek8(g, table + 8 * (uint64_t)i);
		if ((ent & (P | US)) != (P | US))
			continue;
		if (level == 1 || ((ent & PS) && (level == 2 || level == 3)))
			n++;
		else if (!(ent & PS))
			n += walk_count(g, ent & ADDR, level - 1);
	}
	return n;
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* A random leaf-table entry value. */
static uint64_t rnd_pte(void)
{
	static const uint64_t flags[] = { 0, P | US, P | US | RW, P, US,
					  P | RW, P | US | PS };
	return (0x800000 + (rnd() % 256) * 4096) | flags[rnd() % 7];
}

TEST(random_stores_match_a_walk)
{
	/* One address space; a pool of page tables, each linked from at most
	 * one directory entry at a time (no sharing, so every leaf counts):
	 * random whole-entry and partial stores to linked and unlinked
	 * leaf tables, directory entries linking, unlinking, swapping tables
	 * and mapping 2 MiB pages. After every store the engine's count must
	 * equal a walk of the guest's memory. */
	enum { NPD = 4, NPT = 48, STEPS = 20000 };
	struct guest *g = guest_new(1);
	uint64_t pml4 = frame(g), pdpt = frame(g), pd[NPD], pt[NPT];
	int pt_at[NPT];       /* directory slot linking pt[i], -1 if none */
	int slot_pt[NPD * 8]; /* pt linked at directory slot, -1 if none */

	for (int i = 0; i < NPD; i++) {
		pd[i] = frame(g);
		poke(g, pdpt + 8 * (uint64_t)i, pd[i] | P | RW | US, 8);
	}
	poke(g, pml4, pdpt | P | RW | US, 8);
	for (int i = 0; i < NPT; i++) {
		pt[i] = frame(g);
		pt_at[i] = -1;
		for (int k = 0; k < 512; k += 1 + (int)(rnd() % 64))
			poke(g, pt[i] + 8 * (uint64_t)k, rnd_pte(), 8);
	}
	/* directory slot s is entry 8*(s%8) of pd[s/8] */
	for (int s = 0; s < NPD * 8; s++) {
		slot_pt[s] = -1;
		if (s % 3 == 0) {
			int i = s / 3;
			poke(g, pd[s / 8] + 64 * (uint64_t)(s % 8),
			     pt[i] | P | RW | US, 8);
			slot_pt[s] = i;
			pt_at[i] = s;
		}
	}
	obs(g, AF_OBS_PAGING, 0, 0, 0, AF_PAGING_4LEVEL, 0);
	obs(g, AF_OBS_ROOT_LOAD, 0, 0, 0, pml4, 0);
	CHECK_EQ(g->n_create, 1);
	CHECK_EQ(user_pages(g, pml4), walk_count(g, pml4, 4));

	for (int step = 0; step < STEPS; step++) {
		unsigned what = (unsigned)(rnd() % 16);
		int s = (int)(rnd() % (NPD * 8));
		uint64_t ent = pd[s / 8] + 64 * (uint64_t)(s % 8);

		if (what < 10) {
			/* a leaf-table store (linked or not), mostly to a few
			 * entries (spread over every bitmap word) so that
			 * entries are written again and again */
			uint64_t k = rnd() % 4 ? (rnd() % 24) * 22 : rnd() % 512;
			uint64_t a = pt[rnd() % NPT] + 8 * k;
			unsigned w = what < 8 ? 8 : (what == 8 ? 4 : 1);
			uint64_t v = rnd_pte();
			if (w == 4 && rnd() % 2)
				a += 4, v >>= 32;
			store(g, a, v, w);
		} else if (what < 13) {
			/* unlink whatever is at slot s, maybe link another */
			int old = slot_pt[s], i = (int)(rnd() % NPT);
			if (old >= 0) {
				pt_at[old] = -1;
				slot_pt[s] = -1;
			}
			if (pt_at[i] < 0 && what != 12) {
				store(g, ent, pt[i] | P | RW | US, 8);
				pt_at[i] = s;
				slot_pt[s] = i;
			} else if (what == 12) {
				store(g, ent, (rnd() % 64) << 21 | P | US | PS,
				      8); /* a 2 MiB page */
			} else {
				store(g, ent, 0, 8);
			}
		} else if (what == 13 && slot_pt[s] >= 0) {
			/* the same link rewritten: supervisor, then back */
			int i = slot_pt[s];
			store(g, ent, pt[i] | P | RW, 8);
			CHECK_EQ(user_pages(g, pml4), walk_count(g, pml4, 4));
			store(g, ent, pt[i] | P | RW | US, 8);
		} else if (what == 14) {
			/* a whole directory unlinked and linked back */
			int d = (int)(rnd() % NPD);
			store(g, pdpt + 8 * (uint64_t)d, 0, 8);
			CHECK_EQ(user_pages(g, pml4), walk_count(g, pml4, 4));
			store(g, pdpt + 8 * (uint64_t)d, pd[d] | P | RW | US,
			      8);
		} else {
			/* a root reload (a flush; the space stays) */
			obs(g, AF_OBS_ROOT_LOAD, 0, 0, 0, pml4, 0);
		}
		CHECK_EQ(user_pages(g, pml4), walk_count(g, pml4, 4));
		if (step % 256 == 0)
			CHECK_EQ(g->e->n_two, recount_two(g->e));
	}
	CHECK_EQ(g->n_create, 1);
	CHECK_EQ(g->n_exit, 0);
	CHECK_EQ(g->e->n_two, recount_two(g->e));
	guest_free(g);
}

TEST(kpti_roots_seen_empty_join_later)
{
	/* Both roots of a KPTI pair are loaded before the process has any
	 * user table (two spaces, as the rule must assume). The user half is
	 * then built in the kernel root and mirrored into the user root: the
	 * table is now linked from exactly two places, so the next load of
	 * the user root must join it to the kernel root's process. */
	struct guest *g = guest_new(1);
	uint64_t kr = frame(g), ur = frame(g), pdpt = frame(g), pd = frame(g);
	uint64_t pt = frame(g);
	struct af_counters c;

	obs(g, AF_OBS_PAGING, 0, 0, 0, AF_PAGING_4LEVEL, 0);
	obs(g, AF_OBS_ROOT_LOAD, 0, 0, 0, kr, 0);
	obs(g, AF_OBS_ROOT_LOAD, 0, 0, 0, ur, 0);
	CHECK_EQ(g->n_create, 2);
	CHECK_EQ(g->e->n_two, 0);
	/* nothing shared yet: reloading the user root joins nothing */
	obs(g, AF_OBS_ROOT_LOAD, 0, 0, 0, ur, 0);
	af_engine_counters(g->e, &c);
	CHECK_EQ(c.joins, 0);

	poke(g, pd, pt | P | RW | US, 8);
	poke(g, pt, 0x800000 | P | US, 8);
	poke(g, pdpt, pd | P | RW | US, 8);
	store(g, kr, pdpt | P | RW | US, 8);
	store(g, ur, pdpt | P | RW | US, 8);
	CHECK_EQ(g->e->n_two, 1);
	CHECK_EQ(g->e->n_two, recount_two(g->e));
	CHECK_EQ(user_pages(g, kr), 1);
	obs(g, AF_OBS_ROOT_LOAD, 0, 0, 0, kr, 0);
	obs(g, AF_OBS_ROOT_LOAD, 0, 0, 0, ur, 0);
	af_engine_counters(g->e, &c);
	CHECK_EQ(c.joins, 1);
	CHECK_EQ(g->n_exit, 1); /* the user root's own space was merged */
	CHECK_EQ(af_engine_current(g->e, 0), kr);

	/* a third linker makes the table common: no longer a candidate */
	{
		uint64_t r3 = frame(g);
		poke(g, r3, pdpt | P | RW | US, 8);
		obs(g, AF_OBS_ROOT_LOAD, 0, 0, 0, r3, 0);
		CHECK_EQ(g->e->n_two, recount_two(g->e));
	}
	guest_free(g);
}

TEST(slot_pools_reuse_in_order)
{
	/* Frames and spaces come from never-used slots only when nothing
	 * was released: a table freed and a new one tracked reuse the slot,
	 * and a long fork/exit churn never runs out of slots. */
	struct guest *g = guest_new(1);
	struct af_counters c;
	uint64_t roots[8], pts[8];

	obs(g, AF_OBS_PAGING, 0, 0, 0, AF_PAGING_4LEVEL, 0);
	for (int i = 0; i < 8; i++) {
		uint64_t pdpt = frame(g), pd = frame(g);
		roots[i] = frame(g);
		pts[i] = frame(g);
		poke(g, roots[i], pdpt | P | RW | US, 8);
		poke(g, pdpt, pd | P | RW | US, 8);
		poke(g, pd, pts[i] | P | RW | US, 8);
		poke(g, pts[i], 0x800000 | P | US, 8);
	}
	for (int round = 0; round < 2000; round++) {
		int i = round % 8;
		/* the root is rebuilt each time it is reused */
		poke(g, pts[i], 0x800000 | P | US, 8);
		obs(g, AF_OBS_ROOT_LOAD, 0, 0, 0, roots[i], 0);
		store(g, pts[i], 0, 8); /* the process unmaps everything */
	}
	af_engine_counters(g->e, &c);
	CHECK_EQ(c.creates, 2000);
	CHECK_EQ(c.exits, 1999); /* the last is still loaded */
	CHECK_EQ(c.table_full, 0);
	CHECK(g->e->fresh_space <= 2);
	CHECK(g->e->fresh_frame <= 8);
	guest_free(g);
}
