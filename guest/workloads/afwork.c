/*
 * guest/workloads/afwork.c - the guest workloads of the antfarm evaluation,
 * one static multi-call program.
 *
 *   afwork fork      [-n N] [-r R] [-t T] [-b]   fork only             (6.1.1)
 *   afwork forkexec  [-n N] [-r R] [-t T] [-b]   fork, then exec       (6.1.1)
 *   afwork vforkexec [-n N] [-r R] [-t T] [-b]   vfork, then exec      (6.1.1)
 *       N processes, created R per second, each living T seconds (asleep,
 *       or spinning with -b). The paper used N=1000, R=10, T=10.
 *   afwork lag [-k K] [-n N] [-i I] [-s S] [-c fork|forkexec|vforkexec]
 *       K CPU-bound processes, then N test processes I seconds apart, each
 *       sleeping S seconds (6.1.2; the paper: K = 0, 1, 10, 50; N=100,
 *       I=0.01, S=1).
 *   afwork pagetouch [-m MB] [-n N] [-f]
 *       N runs of a process that maps MB MiB, writes every page once and
 *       exits (6.2; the paper: 100 MB, 100 runs). Each run is fork+exec of
 *       "afwork touch", or only a fork with -f.
 *   afwork touch [-m MB]    one such run, in this process
 *   afwork sleep T | spin | true    helpers (exec targets)
 *
 * Every command prints one summary line on stdout and exits 0 when every
 * child it made exited with status 0, 1 when not, 2 on bad usage.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 10000000L /* bound on every count option */

static const char *self_path = "/proc/self/exe"; /* what exec runs */

static void die_usage(const char *msg, const char *arg)
{
	fprintf(stderr, "afwork: %s%s%s (afwork help)\n", msg, arg ? ": " : "",
		arg ? arg : "");
	exit(2);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps until the monotonic clock reads t (seconds). */
static void sleep_until(double t)
{
	struct timespec ts;

	if (t <= 0)
		return;
	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void spin_until(double t)
{
	volatile unsigned long x = 0;

	while (now() < t)
		for (int i = 0; i < 10000; i++)
			x++;
}

static double parse_num(const char *s, double lo, double hi, const char *what)
{
	char *end;
	double v;

	if (!s)
		die_usage("missing value for", what);
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi))
		die_usage("bad value for", what);
	return v;
}

/* ---- children ---- */

static struct {
	long made;    /* children created */
	long failed;  /* fork/vfork failures */
	long ok;      /* children that exited 0 */
	long bad;     /* children that exited otherwise */
	long waiting; /* created and not yet reaped */
} st;

static void account(int status)
{
	st.waiting--;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		st.ok++;
	else
		st.bad++;
}

/* Reaps children that have exited; with block, waits for all of them. */
static void reap(int block)
{
	int status;
	pid_t p;

	while (st.waiting > 0) {
		p = waitpid(-1, &status, block ? 0 : WNOHANG);
		if (p > 0)
			account(status);
		else if (p == 0 || errno != EINTR)
			break;
	}
}

enum how { HOW_FORK, HOW_FORKEXEC, HOW_VFORKEXEC };

static char life_arg[32]; /* T as text, for the exec'd "afwork sleep T" */

/* Makes one process that lives `life` seconds; returns its pid or -1. */
static pid_t spawn(enum how how, double life, int busy)
{
	char *argv[] = { "afwork", busy ? "busy" : "sleep", life_arg, NULL };
	char *envp[] = { NULL };
	pid_t p;

	if (how == HOW_VFORKEXEC) {
		p = vfork();
		if (p == 0) {
			execve(self_path, argv, envp);
			_exit(127);
		}
	} else {
		p = fork();
		if (p == 0) {
			if (how == HOW_FORKEXEC) {
				execve(self_path, argv, envp);
				_exit(127);
			}
			if (busy)
				spin_until(now() + life);
			else
				sleep_until(now() + life);
			_exit(0);
		}
	}
	if (p < 0) {
		st.failed++;
		return -1;
	}
	st.made++;
	st.waiting++;
	return p;
}

static const char *how_name(enum how h)
{
	return h == HOW_FORK ? "fork" : h == HOW_FORKEXEC ? "forkexec" : "vforkexec";
}

static int parse_how(const char *s)
{
	if (!strcmp(s, "fork"))
		return HOW_FORK;
	if (!strcmp(s, "forkexec"))
		return HOW_FORKEXEC;
	if (!strcmp(s, "vforkexec"))
		return HOW_VFORKEXEC;
	die_usage("unknown creation method", s);
	return -1;
}

static int finish(const char *name, double t0, const char *extra)
{
	printf("afwork %s: created %ld exited-ok %ld exited-bad %ld fork-failed %ld"
	       " elapsed %.3f s%s\n",
	       name, st.made, st.ok, st.bad, st.failed, now() - t0, extra);
	fflush(stdout);
	return st.bad || st.failed ? 1 : 0;
}

/* ---- commands ---- */

static int cmd_create(enum how how, int argc, char **argv)
{
	long n = 200;
	double rate = 50, life = 0.1, t0;
	int busy = 0, i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n"))
			n = (long)parse_num(argv[++i], 0, MAX_PROCS, "-n");
		else if (!strcmp(argv[i], "-r"))
			rate = parse_num(argv[++i], 1e-3, 1e6, "-r");
		else if (!strcmp(argv[i], "-t"))
			life = parse_num(argv[++i], 0, 1e6, "-t");
		else if (!strcmp(argv[i], "-b"))
			busy = 1;
		else
			die_usage("unknown option", argv[i]);
	}
	snprintf(life_arg, sizeof life_arg, "%.9g", life);
	t0 = now();
	for (long k = 0; k < n; k++) {
		sleep_until(t0 + (double)k / rate);
		reap(0);
		spawn(how, life, busy);
	}
	reap(1);
	return finish(how_name(how), t0, "");
}

static int cmd_lag(int argc, char **argv)
{
	long k = 0, n = 100;
	double gap = 0.01, life = 1, t0;
	enum how how = HOW_FORK;
	pid_t *spinners;
	char extra[64];
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-k"))
			k = (long)parse_num(argv[++i], 0, 100000, "-k");
		else if (!strcmp(argv[i], "-n"))
			n = (long)parse_num(argv[++i], 0, MAX_PROCS, "-n");
		else if (!strcmp(argv[i], "-i"))
			gap = parse_num(argv[++i], 0, 1e6, "-i");
		else if (!strcmp(argv[i], "-s"))
			life = parse_num(argv[++i], 0, 1e6, "-s");
		else if (!strcmp(argv[i], "-c"))
			how = (enum how)parse_how(argv[++i] ? argv[i] : "");
		else
			die_usage("unknown option", argv[i]);
	}
	spinners = calloc((size_t)k + 1, sizeof *spinners);
	if (!spinners)
		die_usage("out of memory", NULL);
	for (long j = 0; j < k; j++) {
		spinners[j] = fork();
		if (spinners[j] == 0) {
			volatile unsigned long x = 0;

			for (;;)
				x++;
		}
		if (spinners[j] < 0) {
			perror("afwork lag: fork");
			for (long m = 0; m < j; m++)
				kill(spinners[m], SIGKILL);
			while (wait(NULL) > 0)
				;
			return 1;
		}
	}
	snprintf(life_arg, sizeof life_arg, "%.9g", life);
	t0 = now();
	for (long j = 0; j < n; j++) {
		sleep_until(t0 + (double)j * gap);
		reap(0);
		spawn(how, life, 0);
	}
	reap(1);
	/* The spinners never exit by themselves: reap(1) waited only for tests. */
	for (long j = 0; j < k; j++)
		kill(spinners[j], SIGKILL);
	for (long j = 0; j < k; j++)
		waitpid(spinners[j], NULL, 0);
	free(spinners);
	snprintf(extra, sizeof extra, " load %ld", k);
	return finish("lag", t0, extra);
}

/* Maps mb MiB, writes one byte in every page, unmaps. 0 or -1. */
static int touch_pages(long mb)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t len = (size_t)mb << 20;
	volatile char *p;

	if (page <= 0)
		page = 4096;
	if (len == 0)
		return 0;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	for (size_t off = 0; off < len; off += (size_t)page)
		p[off] = 1;
	return munmap((void *)p, len);
}

static long parse_mb(int argc, char **argv, int *i)
{
	(void)argc;
	return (long)parse_num(argv[++*i], 0, 1 << 20, "-m");
}

static int cmd_touch(int argc, char **argv)
{
	long mb = 100;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-m"))
			mb = parse_mb(argc, argv, &i);
		else
			die_usage("unknown option", argv[i]);
	}
	if (touch_pages(mb)) {
		perror("afwork touch: mmap");
		return 1;
	}
	return 0;
}

static int cmd_pagetouch(int argc, char **argv)
{
	long mb = 100, n = 10;
	int fork_only = 0;
	char mbarg[32], extra[64];
	double t0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-m"))
			mb = parse_mb(argc, argv, &i);
		else if (!strcmp(argv[i], "-n"))
			n = (long)parse_num(argv[++i], 0, MAX_PROCS, "-n");
		else if (!strcmp(argv[i], "-f"))
			fork_only = 1;
		else
			die_usage("unknown option", argv[i]);
	}
	snprintf(mbarg, sizeof mbarg, "%ld", mb);
	t0 = now();
	for (long j = 0; j < n; j++) {
		int status;
		pid_t p = fork();

		if (p == 0) {
			if (fork_only)
				_exit(touch_pages(mb) ? 1 : 0);
			char *args[] = { "afwork", "touch", "-m", mbarg, NULL };
			char *envp[] = { NULL };

			execve(self_path, args, envp);
			_exit(127);
		}
		if (p < 0) {
			st.failed++;
			continue;
		}
		st.made++;
		st.waiting++;
		while (waitpid(p, &status, 0) < 0 && errno == EINTR)
			;
		account(status);
	}
	snprintf(extra, sizeof extra, " mb %ld per-run %.3f s", mb,
		 n ? (now() - t0) / (double)n : 0.0);
	return finish("pagetouch", t0, extra);
}

static void usage(FILE *f)
{
	fputs("usage: afwork COMMAND [options]\n"
	      "  fork|forkexec|vforkexec [-n N=200] [-r PER_S=50] [-t LIFE_S=0.1] [-b]\n"
	      "  lag [-k CPU_BOUND=0] [-n N=100] [-i GAP_S=0.01] [-s SLEEP_S=1]\n"
	      "      [-c fork|forkexec|vforkexec]\n"
	      "  pagetouch [-m MB=100] [-n RUNS=10] [-f]\n"
	      "  touch [-m MB=100] | sleep SECONDS | busy SECONDS | spin | true\n",
	      f);
}

int main(int argc, char **argv)
{
	const char *cmd;

	if (access(self_path, X_OK) != 0 && argv[0] && strchr(argv[0], '/'))
		self_path = argv[0];
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	argc--;
	argv++;
	if (!strcmp(cmd, "fork"))
		return cmd_create(HOW_FORK, argc, argv);
	if (!strcmp(cmd, "forkexec"))
		return cmd_create(HOW_FORKEXEC, argc, argv);
	if (!strcmp(cmd, "vforkexec"))
		return cmd_create(HOW_VFORKEXEC, argc, argv);
	if (!strcmp(cmd, "lag"))
		return cmd_lag(argc, argv);
	if (!strcmp(cmd, "pagetouch"))
		return cmd_pagetouch(argc, argv);
	if (!strcmp(cmd, "touch"))
		return cmd_touch(argc, argv);
	if (!strcmp(cmd, "sleep") || !strcmp(cmd, "busy")) {
		double t = parse_num(argc > 1 ? argv[1] : NULL, 0, 1e9, cmd);

		if (cmd[0] == 'b')
			spin_until(now() + t);
		else
			sleep_until(now() + t);
		return 0;
	}
	if (!strcmp(cmd, "spin")) {
		volatile unsigned long x = 0;

		for (;;)
			x++;
	}
	if (!strcmp(cmd, "true"))
		return 0;
	if (!strcmp(cmd, "help") || !strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		usage(stdout);
		return 0;
	}
	die_usage("unknown command", cmd);
	return 2;
}
