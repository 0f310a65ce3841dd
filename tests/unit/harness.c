/*
 * tests/unit/harness.c - main() for unit-test binaries: runs the registered
 * cases, each to its first failed check, and prints a line per case.
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CASES 512

struct tcase {
	const char *file; /* source file, for the report */
	const char *name; /* case name */
	af_test_fn fn;    /* the case */
};

static struct tcase cases[MAX_CASES];
static int n_cases;
static jmp_buf case_jmp;
static int case_status; /* 0 pass, 1 fail, 2 skip */

void af_test_register(const char *file, const char *name, af_test_fn fn)
{
	if (n_cases == MAX_CASES) {
		fprintf(stderr, "harness: too many cases\n");
		exit(2);
	}
	cases[n_cases++] = (struct tcase){ file, name, fn };
}

void af_test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s:%d: check failed: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	case_status = 1;
	longjmp(case_jmp, 1);
}

void af_test_skip(const char *why)
{
	fprintf(stderr, "skipped: %s\n", why);
	case_status = 2;
	longjmp(case_jmp, 1);
}

static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

int main(int argc, char **argv)
{
	volatile int failed = 0;

	for (volatile int i = 0; i < n_cases; i++) {
		int wanted = argc < 2;
		for (int a = 1; a < argc; a++)
			wanted |= !strcmp(argv[a], cases[i].name);
		if (!wanted)
			continue;
		case_status = 0;
		if (!setjmp(case_jmp))
			cases[i].fn();
		printf("%s: %s/%s\n",
		       case_status == 0 ? "PASS" : case_status == 1 ? "FAIL" : "SKIP",
		       base(cases[i].file), cases[i].name);
		fflush(stdout);
		failed |= case_status == 1;
	}
	return failed;
}
