/*
 * tests/fuzz/fuzz_assoc.c - libFuzzer harness for the association-file
 * reader (include/antfarm/assoc.h): the block server maps files written by
 * QEMU plugins and must survive any content. Each input becomes the file's
 * bytes; the harness maps it and reads every slot.
 *
 * The seed corpus (tests/fuzz/corpus/assoc/) is made by this harness itself
 * when run with the single argument "--make-seeds DIR".
 */
#include <antfarm/assoc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char path[64];

static void read_all(const char *p)
{
	struct af_assoc *a = NULL;
	struct af_assoc_entry ent;

	if (af_assoc_map(p, &a))
		return;
	for (unsigned v = 0; v < af_assoc_vcpus(a) + 2; v++)
		(void)af_assoc_read_vcpu(a, v, &ent);
	(void)af_assoc_read_notify(a, &ent);
	af_assoc_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "wb");

	if (!f)
		return 0;
	if (size)
		fwrite(data, 1, size, f);
	fclose(f);
	read_all(path);
	return 0;
}

/* Writes valid files as seeds: an empty one, and one with every slot. */
static int make_seeds(const char *dir)
{
	char p[512];
	struct af_assoc *a;

	snprintf(p, sizeof p, "%s/empty-4vcpu", dir);
	if (af_assoc_create(p, 4, &a))
		return 1;
	af_assoc_free(a);
	snprintf(p, sizeof p, "%s/written-2vcpu", dir);
	if (af_assoc_create(p, 2, &a))
		return 1;
	af_assoc_publish_vcpu(a, 0, 0x1234000, 7, 1000);
	af_assoc_publish_vcpu(a, 1, 0x5678000, 9, 2000);
	af_assoc_publish_notify(a, 1, 3000);
	af_assoc_free(a);
	return 0;
}

static void cleanup(void)
{
	unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (*argc == 3 && !strcmp((*argv)[1], "--make-seeds"))
		exit(make_seeds((*argv)[2]));
	snprintf(path, sizeof path, "/tmp/afassoc-fuzz-%ld", (long)getpid());
	atexit(cleanup);
	return 0;
}
