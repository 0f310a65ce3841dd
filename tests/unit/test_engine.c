/*
 * tests/unit/test_engine.c - the inference engine on hand-built page tables
 * and context-id streams: every rule of Table 1, each paging mode, KPTI,
 * PCID, lazy TLB, several vCPUs, sharing and hostile tables.
 */
#include "harness.h"

#include <antfarm/engine.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RAM (16u << 20)
#define P 0x1ull
#define RW 0x2ull
#define US 0x4ull
#define PS 0x80ull

/* A fake guest: flat RAM, a bump allocator, and the events seen. */
#include "fake_guest.h"

static void mode(struct guest *g, unsigned vcpu, unsigned m, uint32_t flags)
{
	obs(g, AF_OBS_PAGING, vcpu, 0, 0, m, flags);
}

static void load(struct guest *g, unsigned vcpu, uint64_t cr3)
{
	obs(g, AF_OBS_ROOT_LOAD, vcpu, 0, 0, cr3, 0);
}

/* The guest writes an entry and the VMM sees the store. */
static void store8(struct guest *g, uint64_t gpa, uint64_t v)
{
	memcpy(g->ram + gpa, &v, 8);
	obs(g, AF_OBS_PT_STORE, 0, 8, gpa, v, 0);
}

static void store4(struct guest *g, uint64_t gpa, uint32_t v)
{
	memcpy(g->ram + gpa, &v, 4);
	obs(g, AF_OBS_PT_STORE, 0, 4, gpa, v, 0);
}

/* Writes an entry without the VMM noticing (table not yet known). */
static void poke8(struct guest *g, uint64_t gpa, uint64_t v)
{
	memcpy(g->ram + gpa, &v, 8);
}

/* A shared 4-level kernel half: one PML4 entry with U/S set (as Debian's
 * kernels have) over supervisor 2 MiB pages, one without U/S. */
struct khalf {
	uint64_t pdpt_us, pdpt_sup; /* kernel tables */
};

static struct khalf kernel_half(struct guest *g)
{
	struct khalf k = { frame(g), frame(g) };
	uint64_t pd = frame(g);
	poke8(g, k.pdpt_us, pd | P | RW | US);
	for (int i = 0; i < 8; i++)
		poke8(g, pd + 8 * i, ((uint64_t)i << 21) | P | RW | PS);
	poke8(g, k.pdpt_sup, 0x40000000 | P | RW | PS);
	return k;
}

/* A 4-level root with the kernel half and n user pages at 4 KiB. Returns
 * the root; *pt gets the page table holding the user PTEs. */
static uint64_t root4(struct guest *g, const struct khalf *k, int n,
		      uint64_t *pt)
{
	uint64_t pml4 = frame(g), pdpt = frame(g), pd = frame(g);
	*pt = frame(g);
	poke8(g, pml4 + 8 * 0, pdpt | P | RW | US);
	poke8(g, pml4 + 8 * 300, k->pdpt_us | P | RW | US);
	poke8(g, pml4 + 8 * 511, k->pdpt_sup | P | RW);
	poke8(g, pdpt, pd | P | RW | US);
	poke8(g, pd, *pt | P | RW | US);
	for (int i = 0; i < n; i++)
		poke8(g, *pt + 8 * i, (0x800000 + 4096ull * i) | P | RW | US);
	return pml4;
}

static void zap(struct guest *g, uint64_t pt, int n)
{
	for (int i = 0; i < n; i++)
		store8(g, pt + 8 * i, 0);
}

static struct af_process proc_of(struct guest *g, uint64_t asid)
{
	struct af_process ps[64];
	size_t n = af_engine_processes(g->e, ps, 64);
	for (size_t i = 0; i < n && i < 64; i++)
		if (ps[i].asid == asid)
			return ps[i];
	return (struct af_process){ .serial = 0 };
}

TEST(create_switch_exit_4level)
{
	struct guest *g = guest_new(1);
	struct khalf k = kernel_half(g);
	uint64_t pta, ptb;
	uint64_t a = root4(g, &k, 5, &pta), b = root4(g, &k, 3, &ptb);

	mode(g, 0, AF_PAGING_4LEVEL, 0);
	load(g, 0, a);
	CHECK_EQ(g->n_create, 1);
	CHECK_EQ(g->n_switch, 1);
	CHECK_EQ(proc_of(g, a).user_pages, 5);
	CHECK_EQ(af_engine_current(g->e, 0), a);
	CHECK(af_engine_is_page_table(g->e, pta + 16));
	CHECK(!af_engine_is_page_table(g->e, 0x800000));

	load(g, 0, b);
	CHECK_EQ(g->n_create, 2);
	CHECK_EQ(g->n_switch, 2);
	CHECK_EQ(g->ev[g->n_ev - 1].prev_asid, a);
	load(g, 0, a); /* known: no create */
	CHECK_EQ(g->n_create, 2);

	/* a maps one more page, then exits: zap while loaded: no exit yet */
	store8(g, pta + 8 * 10, 0x900000 | P | US);
	CHECK_EQ(proc_of(g, a).user_pages, 6);
	zap(g, pta, 5);
	store8(g, pta + 8 * 10, 0);
	CHECK_EQ(g->n_exit, 0);
	CHECK(proc_of(g, a).exiting);
	/* the switch away flushes: exit */
	load(g, 0, b);
	CHECK_EQ(g->n_exit, 1);
	CHECK_EQ(g->ev[g->n_ev - 1].kind, AF_EV_EXIT);
	CHECK_EQ(g->ev[g->n_ev - 1].asid, a);
	CHECK(!af_engine_is_page_table(g->e, pta));
	/* the root comes back as a new process */
	store8(g, a, 0); /* (store to an untracked frame: ignored) */
	poke8(g, pta, 0x800000 | P | US);
	poke8(g, a, 0); /* root rebuilt by the OS */
	{
		uint64_t pt2;
		uint64_t a2 = root4(g, &k, 2, &pt2);
		(void)a2;
	}
	load(g, 0, a);
	CHECK_EQ(g->n_create, 3);
	guest_free(g);
}

TEST(linux26_exec_builds_new_space)
{
	/* fork child c runs, execs into n: n is loaded first (nothing mapped
	 * yet), then c is torn down while not loaded: exit at once */
	struct guest *g = guest_new(1);
	struct khalf k = kernel_half(g);
	uint64_t ptp, ptc, ptn;
	uint64_t parent = root4(g, &k, 4, &ptp);
	uint64_t child = root4(g, &k, 4, &ptc);
	uint64_t n = root4(g, &k, 0, &ptn);

	mode(g, 0, AF_PAGING_4LEVEL, 0);
	load(g, 0, parent);
	load(g, 0, child);
	CHECK_EQ(g->n_create, 2);
	load(g, 0, n);
	CHECK_EQ(g->n_create, 3);
	CHECK_EQ(proc_of(g, n).user_pages, 0);
	zap(g, ptc, 4);
	CHECK_EQ(g->n_exit, 1);
	CHECK_EQ(g->ev[g->n_ev - 1].asid, child);
	/* n gets mappings; an empty space never exits */
	store8(g, ptn, 0x700000 | P | US);
	CHECK_EQ(proc_of(g, n).user_pages, 1);
	guest_free(g);
}

TEST(linux24_exec_reuses_space)
{
	/* exec clears the mappings and flushes by reloading the same root:
	 * still the same process */
	struct guest *g = guest_new(1);
	struct khalf k = kernel_half(g);
	uint64_t pt;
	uint64_t a = root4(g, &k, 4, &pt);

	mode(g, 0, AF_PAGING_4LEVEL, 0);
	load(g, 0, a);
	zap(g, pt, 4);
	load(g, 0, a);
	CHECK_EQ(g->n_exit, 0);
	store8(g, pt, 0x600000 | P | US);
	load(g, 0, a);
	CHECK_EQ(g->n_exit, 0);
	CHECK_EQ(g->n_create, 1);
	guest_free(g);
}

TEST(lazy_tlb_delays_exit)
{
	/* the idle thread keeps the dead process's root loaded */
	struct guest *g = guest_new(1);
	struct khalf k = kernel_half(g);
	uint64_t pta, ptb;
	uint64_t a = root4(g, &k, 2, &pta), b = root4(g, &k, 2, &ptb);

	mode(g, 0, AF_PAGING_4LEVEL, 0);
	load(g, 0, b);
	load(g, 0, a);
	zap(g, pta, 2);
	obs(g, AF_OBS_TLB_FLUSH, 0, AF_FLUSH_PAGE, 0x1000, 0, 0);
	obs(g, AF_OBS_TIME, 0, 0, 0, 0, 0);
	CHECK_EQ(g->n_exit, 0);
	load(g, 0, b);
	CHECK_EQ(g->n_exit, 1);
	guest_free(g);
}

TEST(two_vcpus_need_both_flushed)
{
	struct guest *g = guest_new(2);
	struct khalf k = kernel_half(g);
	uint64_t pta, ptb, ptc;
	uint64_t a = root4(g, &k, 2, &pta), b = root4(g, &k, 2, &ptb);
	uint64_t c = root4(g, &k, 2, &ptc);

	mode(g, 0, AF_PAGING_4LEVEL, 0);
	mode(g, 1, AF_PAGING_4LEVEL, 0);
	load(g, 0, a);
	load(g, 1, a);
	CHECK_EQ(g->n_create, 1);
	CHECK_EQ(proc_of(g, a).running_on, 3);
	load(g, 1, b);
	zap(g, pta, 2);
	CHECK_EQ(g->n_exit, 0);
	load(g, 0, c);
	CHECK_EQ(g->n_exit, 1);
	guest_free(g);
}

TEST(kpti_pair_is_one_process)
{
	/* kernel root K and user root K+4096 share the user-half tables */
	struct guest *g = guest_new(1);
	struct khalf k = kernel_half(g);
	uint64_t pt2, other = root4(g, &k, 1, &pt2);
	uint64_t kr, ur, pdpt, pd, pt;

	g->next_frame = 0x400000; /* an 8 KiB allocation */
	kr = frame(g);
	ur = frame(g);
	pdpt = frame(g);
	pd = frame(g);
	pt = frame(g);
	poke8(g, kr, pdpt | P | RW | US);
	poke8(g, ur, pdpt | P | RW | US);
	poke8(g, kr + 8 * 300, k.pdpt_us | P | RW | US);
	poke8(g, kr + 8 * 511, k.pdpt_sup | P | RW);
	poke8(g, ur + 8 * 511, k.pdpt_sup | P | RW); /* entry trampoline */
	poke8(g, pdpt, pd | P | RW | US);
	poke8(g, pd, pt | P | RW | US);
	for (int i = 0; i < 3; i++)
		poke8(g, pt + 8 * i, (0x800000 + 4096ull * i) | P | US);

	mode(g, 0, AF_PAGING_4LEVEL, 0);
	load(g, 0, other);
	load(g, 0, kr);
	load(g, 0, ur);
	CHECK_EQ(g->n_create, 2);
	{
		struct af_counters c;
		af_engine_counters(g->e, &c);
		CHECK_EQ(c.joins, 1);
	}
	CHECK_EQ(af_engine_current(g->e, 0), kr);
	CHECK_EQ(proc_of(g, kr).n_roots, 2);
	CHECK_EQ(proc_of(g, kr).user_pages, 3);
	load(g, 0, kr); /* syscall entry: same process, no switch */
	CHECK_EQ(g->n_switch, 2);
	/* a new user-half table linked in the kernel root and mirrored */
	{
		uint64_t pdpt2 = frame(g);
		poke8(g, pdpt2, 0x40000000 | P | US | PS);
		store8(g, kr + 8, pdpt2 | P | RW | US);
		store8(g, ur + 8, pdpt2 | P | RW | US);
		CHECK_EQ(proc_of(g, kr).user_pages, 4);
		store8(g, pdpt2, 0);
	}
	zap(g, pt, 3);
	load(g, 0, other);
	CHECK_EQ(g->n_exit, 1);
	CHECK_EQ(g->ev[g->n_ev - 1].asid, kr);
	CHECK(!af_engine_is_page_table(g->e, pt));
	guest_free(g);
}

TEST(pcid_unloaded_is_enough_by_default)
{
	struct guest *g = guest_new(1);
	struct khalf k = kernel_half(g);
	uint64_t pta, ptb;
	uint64_t a = root4(g, &k, 2, &pta), b = root4(g, &k, 2, &ptb);

	mode(g, 0, AF_PAGING_4LEVEL, AF_PAGING_F_PCIDE);
	load(g, 0, a | 1);
	zap(g, pta, 2);
	CHECK_EQ(g->n_exit, 0); /* still loaded */
	load(g, 0, b | 2 | (1ull << 63));
	CHECK_EQ(g->n_exit, 1);
	guest_free(g);
}

TEST(pcid_exit_needs_flush_of_that_pcid)
{
	struct guest *g = guest_new_flags(1, AF_ENGINE_STRICT_PCID);
	struct khalf k = kernel_half(g);
	uint64_t pta, ptb;
	uint64_t a = root4(g, &k, 2, &pta), b = root4(g, &k, 2, &ptb);
	const uint64_t NF = 1ull << 63;

	mode(g, 0, AF_PAGING_4LEVEL, AF_PAGING_F_PCIDE);
	load(g, 0, a | 1);
	load(g, 0, b | 2);
	load(g, 0, a | 1 | NF); /* back to a without flushing */
	CHECK_EQ(g->n_create, 2);
	load(g, 0, b | 2 | NF);
	zap(g, pta, 2);
	CHECK_EQ(g->n_exit, 0); /* PCID 1 still holds a's entries */
	obs(g, AF_OBS_TLB_FLUSH, 0, AF_FLUSH_ASID, 0, 3, 0);
	CHECK_EQ(g->n_exit, 0); /* another PCID */
	obs(g, AF_OBS_TLB_FLUSH, 0, AF_FLUSH_ASID, 0, 1, 0);
	CHECK_EQ(g->n_exit, 1);
	guest_free(g);
}

TEST(pcid_reused_root_is_new_process)
{
	struct guest *g = guest_new_flags(1, AF_ENGINE_STRICT_PCID);
	struct khalf k = kernel_half(g);
	uint64_t pta, ptb;
	uint64_t a = root4(g, &k, 2, &pta), b = root4(g, &k, 2, &ptb);
	const uint64_t NF = 1ull << 63;

	mode(g, 0, AF_PAGING_4LEVEL, AF_PAGING_F_PCIDE);
	load(g, 0, a | 1);
	load(g, 0, b | 2 | NF);
	zap(g, pta, 2);
	CHECK_EQ(g->n_exit, 0);
	/* the OS reuses a's root for a new process (under PCID 3) */
	poke8(g, pta, 0x500000 | P | US);
	load(g, 0, a | 3);
	CHECK_EQ(g->n_exit, 1);
	CHECK_EQ(g->n_create, 3);
	CHECK_EQ(proc_of(g, a).user_pages, 1);
	guest_free(g);
}

TEST(pcid_root_rebuilt_before_load)
{
	/* the OS builds a new process in a drained root (fork copying into
	 * it) before the old PCID was flushed: exit at the first new mapping,
	 * create at the load */
	struct guest *g = guest_new_flags(1, AF_ENGINE_STRICT_PCID);
	struct khalf k = kernel_half(g);
	uint64_t pta, ptb;
	uint64_t a = root4(g, &k, 2, &pta), b = root4(g, &k, 2, &ptb);

	mode(g, 0, AF_PAGING_4LEVEL, AF_PAGING_F_PCIDE);
	load(g, 0, a | 1);
	load(g, 0, b | 2 | (1ull << 63));
	zap(g, pta, 2);
	CHECK_EQ(g->n_exit, 0);
	store8(g, pta + 8 * 7, 0x500000 | P | US);
	CHECK_EQ(g->n_exit, 1);
	CHECK(!af_engine_is_page_table(g->e, pta));
	load(g, 0, a | 3);
	CHECK_EQ(g->n_create, 3);
	CHECK_EQ(proc_of(g, a).user_pages, 1);
	guest_free(g);
}

TEST(paging_32bit_with_4m_pages)
{
	struct guest *g = guest_new(1);
	uint64_t pd = frame(g), pt = frame(g), pd2 = frame(g);

	store4(g, 0, 0); /* nothing tracked yet */
	memcpy(g->ram + pd + 4 * 0, &(uint32_t){ (uint32_t)pt | 7 }, 4);
	memcpy(g->ram + pd + 4 * 1, &(uint32_t){ 0x400000 | 0x87 }, 4);
	memcpy(g->ram + pd + 4 * 768, &(uint32_t){ 0x000000 | 0x83 }, 4);
	memcpy(g->ram + pt + 4 * 5, &(uint32_t){ 0x123000 | 7 }, 4);
	memcpy(g->ram + pd2 + 4 * 768, &(uint32_t){ 0x000000 | 0x83 }, 4);

	mode(g, 0, AF_PAGING_32, AF_PAGING_F_PSE);
	load(g, 0, pd | 0x18); /* PWT/PCD bits are not part of the ASID */
	CHECK_EQ(proc_of(g, pd).user_pages, 2);
	store4(g, pt + 4 * 6, 0x124000 | 7);
	CHECK_EQ(proc_of(g, pd).user_pages, 3);
	store4(g, pd + 4 * 1, 0);
	CHECK_EQ(proc_of(g, pd).user_pages, 2);
	store4(g, pd + 4 * 0, 0); /* unlinks the page table */
	CHECK_EQ(proc_of(g, pd).user_pages, 0);
	CHECK(!af_engine_is_page_table(g->e, pt));
	load(g, 0, pd2);
	CHECK_EQ(g->n_exit, 1);
	guest_free(g);
}

TEST(paging_pae_root_in_shared_page)
{
	/* two PAE PDPTs 32 bytes apart in one page */
	struct guest *g = guest_new(1);
	uint64_t page = frame(g), pd1 = frame(g), pd2 = frame(g);
	uint64_t pt = frame(g), kpd = frame(g);

	poke8(g, page + 0, pd1 | P);
	poke8(g, page + 24, kpd | P);
	poke8(g, page + 32, pd2 | P);
	poke8(g, page + 56, kpd | P);
	poke8(g, pd1, pt | P | RW | US);
	poke8(g, pd1 + 8, 0x200000 | P | US | PS); /* 2 MiB page */
	poke8(g, pt, 0x1000 | P | US);
	poke8(g, kpd, 0x0 | P | PS);
	poke8(g, pd2 + 8, 0x400000 | P | US | PS);

	mode(g, 0, AF_PAGING_PAE, 0);
	load(g, 0, page);
	load(g, 0, page + 32);
	CHECK_EQ(g->n_create, 2);
	CHECK_EQ(proc_of(g, page).user_pages, 2);
	CHECK_EQ(proc_of(g, page + 32).user_pages, 1);
	store8(g, pt, 0);
	store8(g, pd1 + 8, 0);
	CHECK_EQ(g->n_exit, 1);
	CHECK_EQ(g->ev[g->n_ev - 1].asid, page);
	guest_free(g);
}

TEST(paging_5level_1g_page_and_partial_store)
{
	struct guest *g = guest_new(1);
	uint64_t pml5 = frame(g), pml4 = frame(g), pdpt = frame(g);
	uint64_t other = frame(g);

	poke8(g, pml5, pml4 | P | US);
	poke8(g, pml4 + 8, pdpt | P | US);
	poke8(g, pdpt + 16, 0x40000000 | P | US | PS);
	poke8(g, pml5 + 8 * 400, pml5 | P | US); /* recursive: ignored */
	poke8(g, pml5 + 8 * 401, (1ull << 40) | P | US); /* outside RAM */

	mode(g, 0, AF_PAGING_5LEVEL, 0);
	load(g, 0, pml5);
	CHECK_EQ(proc_of(g, pml5).user_pages, 1);
	{
		struct af_counters c;
		af_engine_counters(g->e, &c);
		CHECK(c.bad_entries >= 2);
	}
	/* a 32-bit guest writing a 64-bit entry in two halves */
	{
		uint64_t v = 0x80000000ull | P | US | PS;
		memcpy(g->ram + pdpt + 24, &v, 4);
		obs(g, AF_OBS_PT_STORE, 0, 4, pdpt + 24, (uint32_t)v, 0);
		memcpy(g->ram + pdpt + 28, (uint8_t *)&v + 4, 4);
		obs(g, AF_OBS_PT_STORE, 0, 4, pdpt + 28, v >> 32, 0);
	}
	CHECK_EQ(proc_of(g, pml5).user_pages, 2);
	poke8(g, pdpt + 16, 0);
	poke8(g, pdpt + 24, 0);
	obs(g, AF_OBS_PT_STORE, 0, 8, pdpt + 20, 0, 0); /* spans two entries */
	CHECK_EQ(proc_of(g, pml5).user_pages, 0);
	load(g, 0, other);
	CHECK_EQ(g->n_exit, 1);
	guest_free(g);
}

TEST(kernel_tables_shared_by_all_count_for_nobody)
{
	/* a user leaf inside the shared kernel half (like an emulated
	 * vsyscall page) must not keep processes alive */
	struct guest *g = guest_new(1);
	struct khalf k = kernel_half(g);
	uint64_t pd = frame(g), pt[4], r[4];

	poke8(g, k.pdpt_us + 8, pd | P | US);
	poke8(g, pd, 0x3000 | P | US | PS);
	mode(g, 0, AF_PAGING_4LEVEL, 0);
	for (int i = 0; i < 4; i++)
		r[i] = root4(g, &k, 1, &pt[i]);
	for (int i = 0; i < 4; i++)
		load(g, 0, r[i]);
	CHECK_EQ(g->n_create, 4);
	zap(g, pt[3], 1);
	load(g, 0, r[0]);
	CHECK_EQ(g->n_exit, 1);
	CHECK_EQ(proc_of(g, r[2]).user_pages, 1);
	guest_free(g);
}

TEST(garbage_tables_do_not_crash)
{
	struct guest *g = guest_new(2);
	uint64_t s = 12345;

	for (uint64_t a = 0x100000; a < 0x100000 + 64 * 4096; a += 8) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t v = s;
		if ((s >> 60) < 8) /* many entries point into a small area */
			v = (v & 0xfff) | (0x100000 + ((s >> 20) % 64) * 4096);
		memcpy(g->ram + a, &v, 8);
	}
	for (int m = AF_PAGING_32; m <= AF_PAGING_5LEVEL; m++) {
		mode(g, 0, (unsigned)m, AF_PAGING_F_PSE);
		mode(g, 1, (unsigned)m, AF_PAGING_F_PSE);
		for (int i = 0; i < 64; i++) {
			load(g, (unsigned)i & 1, 0x100000 + 4096ull * i);
			s = s * 6364136223846793005ull + 1442695040888963407ull;
			store8(g, 0x100000 + (s >> 40) % (64 * 4096 - 8),
			       s);
		}
		load(g, 0, ~0ull);
		load(g, 1, RAM - 8);
	}
	g->fail_reads = 1;
	load(g, 0, 0x300000);
	CHECK(g->n_create > 0);
	guest_free(g);
}

TEST(bad_observations_rejected)
{
	struct guest *g = guest_new(1);
	struct af_obs o = { .kind = AF_OBS_ROOT_LOAD, .vcpu = 1 };
	struct af_engine *e;
	struct af_engine_config bad = { .mmu = AF_MMU_X86, .n_vcpus = 0 };

	CHECK_EQ(af_engine_observe(g->e, &o), -EINVAL);
	o.vcpu = 0;
	o.kind = 99;
	CHECK_EQ(af_engine_observe(g->e, &o), -EINVAL);
	o.kind = AF_OBS_PT_STORE;
	o.width = 3;
	CHECK_EQ(af_engine_observe(g->e, &o), -EINVAL);
	CHECK_EQ(af_engine_new(&bad, &e), -EINVAL);
	bad.n_vcpus = 1;
	CHECK_EQ(af_engine_new(&bad, &e), -EINVAL); /* no reader */
	guest_free(g);
}

TEST(context_ids)
{
	struct af_engine *e;
	struct guest g0 = { 0 };
	struct af_engine_config cfg = { .mmu = AF_MMU_CONTEXT_ID,
					.n_vcpus = 2, .ctx_bits = 10,
					.on_event = on_ev, .event_ctx = &g0 };
	struct af_obs o = { .kind = AF_OBS_CTX_LOAD, .value = 5 };

	CHECK_EQ(af_engine_new(&cfg, &e), 0);
	CHECK_EQ(af_engine_observe(e, &o), 0);
	o.value = 6;
	CHECK_EQ(af_engine_observe(e, &o), 0);
	o.value = 5;
	CHECK_EQ(af_engine_observe(e, &o), 0);
	CHECK_EQ(g0.n_create, 2);
	CHECK_EQ(g0.n_switch, 3);
	/* copy-on-write fork demaps the running parent: exit; when it is
	 * loaded again, a new process (the paper's SPARC false positive) */
	o.kind = AF_OBS_CTX_DEMAP;
	CHECK_EQ(af_engine_observe(e, &o), 0);
	CHECK_EQ(g0.n_exit, 1);
	o.kind = AF_OBS_CTX_LOAD;
	CHECK_EQ(af_engine_observe(e, &o), 0);
	CHECK_EQ(g0.n_create, 3);
	o.value = 5 + 1024; /* outside 10 bits: masked, counted */
	o.vcpu = 1;
	CHECK_EQ(af_engine_observe(e, &o), 0);
	CHECK_EQ(g0.n_create, 3);
	CHECK_EQ(af_engine_current(e, 1), 5);
	CHECK_EQ(af_engine_processes(e, NULL, 0), 2);
	af_engine_free(e);
}

TEST(paging_mode_helper)
{
	uint32_t f;
	CHECK_EQ(af_x86_paging_mode(0, 0, 0, &f), AF_PAGING_OFF);
	CHECK_EQ(af_x86_paging_mode(1u << 31, 0x10, 0, &f), AF_PAGING_32);
	CHECK_EQ(f, AF_PAGING_F_PSE);
	CHECK_EQ(af_x86_paging_mode(1u << 31, 0x20, 0, &f), AF_PAGING_PAE);
	CHECK_EQ(af_x86_paging_mode(1u << 31, 0x20 | (1u << 17), 1u << 10, &f),
		 AF_PAGING_4LEVEL);
	CHECK_EQ(f, AF_PAGING_F_PCIDE);
	CHECK_EQ(af_x86_paging_mode(1u << 31, 0x20 | (1u << 12), 1u << 10, &f),
		 AF_PAGING_5LEVEL);
}
