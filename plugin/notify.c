/*
 * plugin/notify.c - which I/O accesses are guest disk notifications, and
 * where they were seen (see notify.h).
 */
#include "notify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_MASK (~(uint64_t)0xfff)

/* Parses "N" or "N+LEN" (numbers in C syntax) into [lo, hi). */
static int parse_range(const char *s, uint64_t deflen, uint64_t *lo,
		       uint64_t *hi)
{
	char *end;
	unsigned long long a, n = deflen;

	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	a = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	if (*end == '+') {
		const char *l = end + 1;
		if (!*l || *l == '-')
			return -1;
		n = strtoull(l, &end, 0);
		if (errno || end == l || !n)
			return -1;
	}
	if (*end || a > UINT64_MAX - n)
		return -1;
	*lo = a;
	*hi = a + n;
	return 0;
}

int af_notify_parse(struct af_notify *nt, const char *v, const char **why)
{
	struct af_nt_spec sp;

	memset(&sp, 0, sizeof(sp));
	if (nt->n_spec >= AF_NT_MAX_SPECS) {
		*why = "too many assoc-notify= options";
		return -EINVAL;
	}
	if (!strcmp(v, "virtio-blk")) {
		sp.kind = AF_NT_NAME;
		strcpy(sp.name, AF_NT_VIRTIO_BLK);
	} else if (!strncmp(v, "name:", 5)) {
		size_t n = strlen(v + 5);
		if (n == 0 || n >= sizeof(sp.name)) {
			*why = "name: needs a region name prefix of 1-63 "
			       "characters";
			return -EINVAL;
		}
		sp.kind = AF_NT_NAME;
		memcpy(sp.name, v + 5, n + 1);
	} else if (!strcmp(v, "any")) {
		sp.kind = AF_NT_ANY;
	} else if (!strncmp(v, "io:", 3)) {
		sp.kind = AF_NT_PORT;
		if (parse_range(v + 3, 2, &sp.lo, &sp.hi) || sp.hi > 0x10000) {
			*why = "io: needs PORT[+LEN] within 0..0xffff";
			return -EINVAL;
		}
	} else {
		sp.kind = AF_NT_MMIO;
		if (parse_range(v, 2, &sp.lo, &sp.hi)) {
			*why = "expected virtio-blk, name:PREFIX, any, "
			       "ADDR[+LEN] or io:PORT[+LEN]";
			return -EINVAL;
		}
	}
	if (sp.kind == AF_NT_PORT)
		nt->have_port = 1;
	else
		nt->have_mmio = 1;
	nt->spec[nt->n_spec++] = sp;
	return 0;
}

void af_notify_default(struct af_notify *nt)
{
	const char *why;

	if (nt->n_spec == 0)
		(void)af_notify_parse(nt, "virtio-blk", &why);
}

int af_notify_match_mmio(const struct af_notify *nt, uint64_t pa,
			 const char *name)
{
	for (unsigned i = 0; i < nt->n_spec; i++) {
		const struct af_nt_spec *s = &nt->spec[i];
		switch (s->kind) {
		case AF_NT_ANY:
			return 1;
		case AF_NT_NAME:
			if (name && !strncmp(name, s->name, strlen(s->name)))
				return 1;
			break;
		case AF_NT_MMIO:
			if (pa >= s->lo && pa < s->hi)
				return 1;
			break;
		default:
			break;
		}
	}
	return 0;
}

int af_notify_match_port(const struct af_notify *nt, uint64_t port)
{
	for (unsigned i = 0; i < nt->n_spec; i++) {
		const struct af_nt_spec *s = &nt->spec[i];
		if (s->kind == AF_NT_PORT && port >= s->lo && port < s->hi)
			return 1;
	}
	return 0;
}

int af_notify_page_known(const struct af_notify *nt, uint64_t va)
{
	unsigned n = atomic_load_explicit(&nt->n_page, memory_order_acquire);
	uint64_t key = (va & PAGE_MASK) + 1;

	if (n > AF_NT_MAX_PAGES)
		n = AF_NT_MAX_PAGES;
	for (unsigned i = 0; i < n; i++)
		if (atomic_load_explicit(&nt->page[i], memory_order_relaxed) ==
		    key)
			return 1;
	return 0;
}

int af_notify_page_add(struct af_notify *nt, uint64_t va)
{
	unsigned n = atomic_load_explicit(&nt->n_page, memory_order_relaxed);

	if (af_notify_page_known(nt, va))
		return 0;
	if (n >= AF_NT_MAX_PAGES) {
		nt->pages_full++;
		return -1;
	}
	atomic_store_explicit(&nt->page[n], (va & PAGE_MASK) + 1,
			      memory_order_relaxed);
	/* the page is stored before the count that publishes it */
	atomic_store_explicit(&nt->n_page, n + 1, memory_order_release);
	return 1;
}

void af_notify_target(struct af_notify *nt, uint64_t addr, const char *name,
		      int is_port, int match, uint64_t serial)
{
	for (unsigned i = 0; i < nt->n_target; i++) {
		struct af_nt_target *t = &nt->target[i];
		if (t->addr == addr && t->is_port == is_port &&
		    t->name == name && t->match == match &&
		    t->serial == serial) {
			t->count++;
			return;
		}
	}
	if (nt->n_target >= AF_NT_MAX_TARGETS) {
		nt->targets_full++;
		return;
	}
	nt->target[nt->n_target++] = (struct af_nt_target){
		.addr = addr, .serial = serial, .name = name, .count = 1,
		.is_port = (uint8_t)is_port, .match = (uint8_t)match,
	};
}
