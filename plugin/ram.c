/*
 * plugin/ram.c - read-only mapping of the guest's shared RAM file and the PC
 * machine's guest-physical layout (see ram.h).
 */
#include "ram.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

uint64_t af_ram_default_lowmem(uint64_t size)
{
	/* pc-i440fx: RAM of 3.5 GiB or more is split at 3 GiB (gigabyte
	 * alignment); below that it all fits under the hole. */
	if (size >= 0xe0000000ull)
		return 0xc0000000ull;
	return size;
}

int af_ram_open(struct af_ram *r, const char *path, uint64_t want_size,
		uint64_t lowmem, const char **why)
{
	struct stat st;
	void *p;
	int fd;

	memset(r, 0, sizeof(*r));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*why = "cannot open the RAM file";
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
		close(fd);
		*why = "the RAM file is not a non-empty regular file";
		return -EINVAL;
	}
	if (want_size == 0)
		want_size = (uint64_t)st.st_size;
	if (want_size > (uint64_t)st.st_size) {
		close(fd);
		*why = "ramsize is larger than the RAM file";
		return -EINVAL;
	}
	if (lowmem == 0 || lowmem > want_size)
		lowmem = lowmem ? want_size : af_ram_default_lowmem(want_size);
	if (lowmem > AF_RAM_4G) {
		close(fd);
		*why = "lowmem is above 4 GiB";
		return -EINVAL;
	}
	p = mmap(NULL, (size_t)want_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		*why = "cannot map the RAM file";
		return -errno;
	}
	r->base = p;
	r->size = want_size;
	r->lowmem = lowmem;
	return 0;
}

void af_ram_close(struct af_ram *r)
{
	if (r->base)
		munmap((void *)r->base, (size_t)r->size);
	memset(r, 0, sizeof(*r));
}

uint64_t af_ram_phys_top(const struct af_ram *r)
{
	if (r->size > r->lowmem)
		return AF_RAM_4G + (r->size - r->lowmem);
	return r->size;
}

const uint8_t *af_ram_ptr(const struct af_ram *r, uint64_t gpa, size_t len)
{
	uint64_t off;

	if (!r->base || len == 0 || len > r->size)
		return NULL;
	if (gpa < r->lowmem) {
		if (len > r->lowmem - gpa)
			return NULL;
		off = gpa;
	} else if (gpa >= AF_RAM_4G && gpa - AF_RAM_4G < r->size - r->lowmem) {
		if (len > r->size - r->lowmem - (gpa - AF_RAM_4G))
			return NULL;
		off = r->lowmem + (gpa - AF_RAM_4G);
	} else {
		return NULL;
	}
	return r->base + off;
}

int af_ram_read(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	const uint8_t *p = af_ram_ptr(ctx, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(buf, p, len);
	return 0;
}
