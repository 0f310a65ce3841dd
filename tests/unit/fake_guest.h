/*
 * tests/unit/fake_guest.h - a fake x86 guest for the engine's unit tests
 * (test_engine.c, test_engine_fast.c): flat guest-physical RAM the engine
 * reads, a bump allocator of page frames, the events seen, a clock, and
 * obs() to feed one observation. Needs harness.h and <antfarm/engine.h>
 * first, and RAM (bytes of guest memory) defined.
 */
#ifndef ANTFARM_TESTS_FAKE_GUEST_H
#define ANTFARM_TESTS_FAKE_GUEST_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct guest {
	uint8_t *ram;            /* RAM bytes of guest-physical memory */
	uint64_t next_frame;     /* bump allocator */
	struct af_engine *e;     /* engine under test */
	struct af_event ev[256]; /* events, last 256 */
	unsigned n_ev;           /* events seen */
	unsigned n_create, n_exit, n_switch;
	uint64_t t;              /* clock */
	int fail_reads;          /* make read_phys fail */
};

static inline int rd(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	struct guest *g = ctx;
	if (g->fail_reads || gpa + len > RAM)
		return -EFAULT;
	memcpy(buf, g->ram + gpa, len);
	return 0;
}

static inline void on_ev(void *ctx, const struct af_event *ev)
{
	struct guest *g = ctx;
	g->ev[g->n_ev++ % 256] = *ev;
	g->n_create += ev->kind == AF_EV_CREATE;
	g->n_exit += ev->kind == AF_EV_EXIT;
	g->n_switch += ev->kind == AF_EV_SWITCH;
}

static inline struct guest *guest_new_flags(unsigned n_vcpus, unsigned flags)
{
	struct guest *g = calloc(1, sizeof(*g));
	struct af_engine_config cfg = {
		.mmu = AF_MMU_X86, .n_vcpus = n_vcpus, .phys_bytes = RAM,
		.read_phys = rd, .read_ctx = g, .on_event = on_ev,
		.event_ctx = g, .flags = flags,
	};
	g->ram = calloc(1, RAM);
	g->next_frame = 0x100000;
	CHECK_EQ(af_engine_new(&cfg, &g->e), 0);
	return g;
}

static inline struct guest *guest_new(unsigned n_vcpus)
{
	return guest_new_flags(n_vcpus, 0);
}

static inline void guest_free(struct guest *g)
{
	af_engine_free(g->e);
	free(g->ram);
	free(g);
}

static inline uint64_t frame(struct guest *g)
{
	uint64_t f = g->next_frame;
	g->next_frame += 4096;
	memset(g->ram + f, 0, 4096);
	return f;
}

static inline void obs(struct guest *g, unsigned kind, unsigned vcpu, unsigned width,
		uint64_t addr, uint64_t value, uint32_t aux)
{
	struct af_obs o = { .kind = (uint8_t)kind, .width = (uint8_t)width,
			    .vcpu = (uint16_t)vcpu, .aux = aux,
			    .time_ns = g->t += 1000, .addr = addr,
			    .value = value };
	CHECK_EQ(af_engine_observe(g->e, &o), 0);
}

#endif
