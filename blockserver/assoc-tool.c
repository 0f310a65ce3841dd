/*
 * blockserver/assoc-tool.c - antfarm-assoc: creates, writes and shows
 * context-association files (antfarm/assoc.h) by hand: for trying the
 * block server without the QEMU plugin, for tests, and for looking at what
 * a running plugin publishes.
 *
 *   antfarm-assoc create FILE [VCPUS]           new file (default 1 vCPU)
 *   antfarm-assoc vcpu FILE VCPU SERIAL [ASID]  vCPU VCPU runs process SERIAL
 *   antfarm-assoc notify FILE VCPU [SERIAL [ASID]]
 *                                               disk notification from VCPU
 *                                               (its current process, or the
 *                                               one given)
 *   antfarm-assoc show FILE                     key=value lines
 *
 * SERIAL 0 means "no process". ASID defaults to SERIAL * 4096. Numbers are
 * decimal or 0x-hex. Exit 0, 1 on failure, 2 on a bad command line (one
 * line on stderr either way); --help prints the usage.
 */
#include <antfarm/assoc.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"usage: antfarm-assoc create FILE [VCPUS]\n"
	"       antfarm-assoc vcpu FILE VCPU SERIAL [ASID]\n"
	"       antfarm-assoc notify FILE VCPU [SERIAL [ASID]]\n"
	"       antfarm-assoc show FILE\n";

static int bad_usage(const char *why)
{
	fprintf(stderr, "antfarm-assoc: %s (see antfarm-assoc --help)\n", why);
	return 2;
}

static int fail(const char *what, const char *path, int rc)
{
	fprintf(stderr, "antfarm-assoc: %s %s: %s\n", what, path,
		rc == -EBADMSG ? "not a valid association file" : strerror(-rc));
	return 1;
}

/* A whole number, decimal or 0x-hex. */
static int num(const char *s, uint64_t *out)
{
	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	int hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	if (hex && !s[2])
		return -1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(hex ? s + 2 : s, &end, hex ? 16 : 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

static void show_entry(const char *prefix, int rc,
		       const struct af_assoc_entry *e)
{
	if (rc == -ENOENT) {
		printf("%s=none\n", prefix);
		return;
	}
	if (rc) {
		printf("%s=error %s\n", prefix, strerror(-rc));
		return;
	}
	if (e->asid == AF_ASID_NONE)
		printf("%s.asid=none\n", prefix);
	else
		printf("%s.asid=0x%" PRIx64 "\n", prefix, e->asid);
	printf("%s.serial=%" PRIu64 "\n%s.vcpu=%" PRIu32 "\n%s.count=%" PRIu64
	       "\n%s.time_ns=%" PRIu64 "\n",
	       prefix, e->serial, prefix, e->vcpu, prefix, e->count, prefix,
	       e->time_ns);
}

int main(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage, stdout);
		return fflush(stdout) ? 1 : 0;
	}
	if (argc < 3)
		return bad_usage("missing arguments");
	const char *cmd = argv[1], *path = argv[2];
	struct af_assoc *a = NULL;
	uint64_t v[3] = { 0, 0, 0 };
	int rc;

	if (!strcmp(cmd, "create")) {
		if (argc > 4)
			return bad_usage("too many arguments");
		uint64_t n = 1;
		if (argc == 4 && (num(argv[3], &n) || n < 1 ||
				  n > AF_ASSOC_MAX_VCPUS))
			return bad_usage("VCPUS must be 1..64");
		rc = af_assoc_create(path, (unsigned)n, &a);
		if (rc)
			return fail("create", path, rc);
		af_assoc_free(a);
		return 0;
	}
	if (!strcmp(cmd, "show")) {
		if (argc != 3)
			return bad_usage("too many arguments");
		rc = af_assoc_map(path, &a);
		if (rc)
			return fail("map", path, rc);
		struct af_assoc_entry e;
		unsigned n = af_assoc_vcpus(a);
		printf("vcpus=%u\n", n);
		rc = af_assoc_read_notify(a, &e);
		show_entry("notify", rc, &e);
		for (unsigned i = 0; i < n; i++) {
			char p[32];
			snprintf(p, sizeof(p), "vcpu%u", i);
			rc = af_assoc_read_vcpu(a, i, &e);
			show_entry(p, rc, &e);
		}
		af_assoc_free(a);
		return fflush(stdout) ? 1 : 0;
	}
	int is_vcpu = !strcmp(cmd, "vcpu"), is_notify = !strcmp(cmd, "notify");
	if (!is_vcpu && !is_notify)
		return bad_usage("unknown command");
	int min = is_vcpu ? 5 : 4;
	if (argc < min || argc > 6)
		return bad_usage("wrong number of arguments");
	for (int i = 3; i < argc; i++)
		if (num(argv[i], &v[i - 3]))
			return bad_usage("not a number");
	if (v[0] >= AF_ASSOC_MAX_VCPUS)
		return bad_usage("VCPU out of range");
	int explicit_asid = argc == 6;
	uint64_t serial = v[1];
	uint64_t asid = explicit_asid ? v[2]
				      : serial ? serial * 4096 : AF_ASID_NONE;
	rc = af_assoc_attach(path, &a);
	if (rc)
		return fail("attach", path, rc);
	uint64_t t = af_assoc_now_ns();
	if (is_vcpu)
		rc = af_assoc_publish_vcpu(a, (unsigned)v[0], asid, serial, t);
	else if (argc == 4)
		rc = af_assoc_publish_notify(a, (unsigned)v[0], t);
	else
		rc = af_assoc_publish_notify_as(a, (unsigned)v[0], asid, serial,
						t);
	af_assoc_free(a);
	if (rc)
		return fail(cmd, path, rc);
	return 0;
}
