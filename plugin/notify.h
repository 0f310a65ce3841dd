/*
 * plugin/notify.h - what a guest's disk notification ("kick") looks like to
 * the QEMU plugin, for the simple context association (assoc=, paper
 * section 7.2; include/antfarm/assoc.h).
 *
 * A virtio-blk guest tells its disk that requests are queued by writing the
 * queue index to a notify register: with modern virtio-pci (QEMU's default)
 * a 16-bit MMIO store into the device's notify window, with legacy
 * virtio-pci a 16-bit `out` to I/O port BAR0 + 0x10. The plugin sees both
 * from the machine side only (no guest OS knowledge): a memory callback on
 * kernel 16-bit stores tells an I/O access by its guest-physical address and
 * by the name QEMU gives the memory region it lands in; an instruction
 * callback on kernel 16-bit `out`s reads the port from the registers.
 *
 * Which of those accesses are notifications is configured by specs
 * (assoc-notify=, repeatable):
 *   virtio-blk      I/O stores into a region whose QEMU name starts with
 *                   "virtio-pci-notify-virtio-blk" (every modern
 *                   virtio-blk-pci disk's notify window; the default)
 *   name:PREFIX     I/O stores into a region whose name starts with PREFIX
 *   any             every 16-bit I/O store by kernel code
 *   ADDR[+LEN]      I/O stores into guest-physical [ADDR, ADDR+LEN)
 *                   (LEN default 2)
 *   io:PORT[+LEN]   16-bit `out`s to ports [PORT, PORT+LEN) (LEN default 2)
 *
 * Learned state: the guest-virtual pages (kernel mappings, shared by every
 * address space) where notifications were seen, so that an instruction
 * callback placed before a known notifying store can publish before the
 * device (and through it the disk server) sees the request.
 *
 * Threads: parsing happens at install. af_notify_page_known() is lock-free;
 * af_notify_page_add() and af_notify_target() must be serialised by the
 * caller. No allocation after af_notify_parse().
 */
#ifndef AF_PLUGIN_NOTIFY_H
#define AF_PLUGIN_NOTIFY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define AF_NT_MAX_SPECS 8     /* assoc-notify= options at most */
#define AF_NT_NAME_MAX 64     /* longest name prefix */
#define AF_NT_MAX_PAGES 16    /* notify pages learned at most */
#define AF_NT_MAX_TARGETS 64  /* distinct targets kept for diagnostics */

/* The default name prefix: modern virtio-blk-pci notify windows. */
#define AF_NT_VIRTIO_BLK "virtio-pci-notify-virtio-blk"

/* Kinds of spec. */
enum af_nt_kind {
	AF_NT_NAME = 1, /* region name prefix */
	AF_NT_ANY = 2,  /* any I/O store */
	AF_NT_MMIO = 3, /* guest-physical range */
	AF_NT_PORT = 4, /* I/O-port range */
};

/* One assoc-notify= spec. */
struct af_nt_spec {
	uint8_t kind;               /* enum af_nt_kind */
	char name[AF_NT_NAME_MAX];  /* AF_NT_NAME: prefix (NUL-terminated) */
	uint64_t lo;                /* MMIO/PORT: first address */
	uint64_t hi;                /* MMIO/PORT: one past the last */
};

/* One distinct I/O target seen by a candidate store or out, and for a
 * notification the process it was charged to (diagnostics). */
struct af_nt_target {
	uint64_t addr;       /* guest-physical address or port */
	uint64_t serial;     /* notification: the process serial, 0 none */
	const char *name;    /* QEMU's region name (interned by QEMU), or NULL */
	uint64_t count;      /* accesses */
	uint8_t is_port;     /* 1: an I/O port */
	uint8_t match;       /* 1: counted as a notification */
};

struct af_notify {
	struct af_nt_spec spec[AF_NT_MAX_SPECS]; /* the specs */
	unsigned n_spec;                         /* how many */
	int have_mmio;          /* some spec matches I/O stores */
	int have_port;          /* some spec matches ports */
	atomic_uint_least64_t page[AF_NT_MAX_PAGES]; /* learned VA pages + 1 */
	atomic_uint n_page;     /* pages learned */
	uint64_t pages_full;    /* pages not learned: no room */
	struct af_nt_target target[AF_NT_MAX_TARGETS]; /* distinct targets */
	unsigned n_target;      /* how many */
	uint64_t targets_full;  /* accesses to targets not kept */
};

/* Adds one spec from an assoc-notify= value. Returns 0, or -EINVAL with
 * *why set (bad syntax, too many specs). */
int af_notify_parse(struct af_notify *nt, const char *value, const char **why);

/* After parsing: if no spec was given, the default (virtio-blk). */
void af_notify_default(struct af_notify *nt);

/* Is an I/O store at guest-physical pa, into the region named name (may be
 * NULL), a notification? */
int af_notify_match_mmio(const struct af_notify *nt, uint64_t pa,
			 const char *name);

/* Is a 16-bit out to port a notification? */
int af_notify_match_port(const struct af_notify *nt, uint64_t port);

/* Is va in a page where a notification was seen? Lock-free. */
int af_notify_page_known(const struct af_notify *nt, uint64_t va);

/* Learns va's page; returns 1 if new, 0 if known, -1 if no room. Caller
 * serialises. */
int af_notify_page_add(struct af_notify *nt, uint64_t va);

/* Counts an access to a target (diagnostics); serial: the process a
 * notification was charged to (0 for other accesses). Caller serialises. */
void af_notify_target(struct af_notify *nt, uint64_t addr, const char *name,
		      int is_port, int match, uint64_t serial);

#endif
