/*
 * plugin/ram.h - read-only view of guest RAM for the QEMU plugin.
 *
 * The guest is started with a shared file memory backend; the plugin maps the
 * same file read-only and serves the engine's guest-physical reads from it.
 *
 * PC layout: QEMU's pc/q35 machines put the first `lowmem` bytes of the
 * backend at guest-physical 0 and the rest at 4 GiB (above the PCI hole):
 *   gpa [0, lowmem)            -> file offset gpa
 *   gpa [4G, 4G + size-lowmem) -> file offset lowmem + (gpa - 4G)
 * Everything else (the hole, beyond RAM) is absent. lowmem is given by the
 * user or defaults to what pc-i440fx picks (all of RAM below 3.5 GiB, else
 * 3 GiB). The VGA/BIOS window below 1 MiB is served from the file like any
 * RAM (page tables are never there).
 */
#ifndef AF_PLUGIN_RAM_H
#define AF_PLUGIN_RAM_H

#include <stddef.h>
#include <stdint.h>

struct af_ram {
	const uint8_t *base; /* mapping, NULL if none */
	uint64_t size;       /* bytes mapped (RAM size) */
	uint64_t lowmem;     /* bytes of RAM below the 4 GiB hole */
};

#define AF_RAM_4G 0x100000000ull

/* The lowmem default for size bytes of RAM on a pc-i440fx machine. */
uint64_t af_ram_default_lowmem(uint64_t size);

/* Maps path read-only. want_size: 0 = the file's size, else that many bytes
 * (must not exceed the file). lowmem: 0 = default. Returns 0 or -errno; on
 * error *why gets a static one-line reason. */
int af_ram_open(struct af_ram *r, const char *path, uint64_t want_size,
		uint64_t lowmem, const char **why);

/* Unmaps (safe on a zeroed or closed struct). */
void af_ram_close(struct af_ram *r);

/* Highest guest-physical address of RAM + 1. */
uint64_t af_ram_phys_top(const struct af_ram *r);

/* Translates [gpa, gpa+len) to a pointer into the mapping, or NULL if any
 * byte of it is not RAM (or len is 0). */
const uint8_t *af_ram_ptr(const struct af_ram *r, uint64_t gpa, size_t len);

/* af_read_phys_fn for the engine: ctx is a struct af_ram. */
int af_ram_read(void *ctx, uint64_t gpa, void *buf, size_t len);

#endif
