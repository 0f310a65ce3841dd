/*
 * cli/run_host.c - getting the host ready for `antfarm run` and the live
 * `antfarm iosched` (contract in run_host.h): finding the plugin and scripts, running scripts/deps.sh and
 * guest/build-guest.sh with their progress shown only when they take a
 * while, and checking the QEMU version.
 */
#include "run_host.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "run_proc.h"

#define HELD_MAX 64    /* progress lines kept before they are shown */
#define HELD_LEN 300   /* bytes kept of each */
#define OUT_MAX 65536  /* most stdout captured from a helper */

/* The command whose name starts every message (run_host_command()). */
static const char *host_cmd = "run";

/* One "antfarm: CMD: ..." error line. */
#define host_error(fmt, ...) cli_error("%s: " fmt, host_cmd, ##__VA_ARGS__)

/* A helper script being run. */
struct helper {
	const char *heading;      /* said once when progress starts to show */
	int64_t show_after_ms;    /* progress shows after this long; -1 never */
	int verbose;              /* show progress at once */
	int showing;              /* progress is being shown */
	int64_t start_ms;         /* when it started */
	char out[OUT_MAX];        /* its stdout */
	size_t out_n;             /* bytes in out */
	char last[512];           /* its last non-empty stderr line */
	char held[HELD_MAX][HELD_LEN]; /* stderr lines not shown yet */
	unsigned n_held;          /* how many */
	int status;               /* wait status once done */
};

static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void start_showing(struct helper *h)
{
	if (h->showing)
		return;
	h->showing = 1;
	if (h->heading)
		fprintf(stderr, "antfarm: %s: %s\n", host_cmd, h->heading);
	for (unsigned i = 0; i < h->n_held; i++)
		fprintf(stderr, "%s\n", h->held[i]);
	h->n_held = 0;
	fflush(stderr);
}

static void on_err_line(void *ctx, char *line)
{
	struct helper *h = ctx;

	if (!*line)
		return;
	copy_str(h->last, sizeof(h->last), line);
	if (h->showing) {
		fprintf(stderr, "%s\n", line);
		fflush(stderr);
	} else if (h->n_held < HELD_MAX) {
		copy_str(h->held[h->n_held++], HELD_LEN, line);
	}
}

static void on_out_line(void *ctx, char *line)
{
	struct helper *h = ctx;
	size_t n = strlen(line);

	if (h->out_n + n + 2 > sizeof(h->out))
		return; /* more than any helper prints: ignored */
	memcpy(h->out + h->out_n, line, n);
	h->out_n += n;
	h->out[h->out_n++] = '\n';
	h->out[h->out_n] = '\0';
}

/* Runs argv to completion. Returns 0 (h->status set), RUN_INTERRUPTED, or
 * a negative errno if it could not be started. */
static int run_helper(char *const argv[], struct helper *h)
{
	struct run_child c;
	struct run_lines lo, le;
	int rc;

	h->out_n = 0;
	h->out[0] = '\0';
	h->last[0] = '\0';
	h->n_held = 0;
	h->showing = 0;
	h->start_ms = run_now_ms();
	lo.n = le.n = 0;
	if (h->verbose)
		start_showing(h);
	rc = run_spawn(&c, argv, 1);
	if (rc)
		return rc;
	while (c.out_fd >= 0 || c.err_fd >= 0) {
		struct pollfd pf[3] = {
			{ run_signal_fd(), POLLIN, 0 },
			{ c.out_fd, POLLIN, 0 },
			{ c.err_fd, POLLIN, 0 },
		};
		if (run_signal_caught()) {
			run_stop(&c, 3000);
			run_child_close(&c);
			return RUN_INTERRUPTED;
		}
		if (!h->showing && h->show_after_ms >= 0 &&
		    run_now_ms() - h->start_ms >= h->show_after_ms)
			start_showing(h);
		int n = poll(pf, 3, 250);
		if (n < 0 && errno != EINTR) {
			rc = -errno;
			run_stop(&c, 3000);
			run_child_close(&c);
			return rc;
		}
		if (n <= 0)
			continue;
		if (pf[1].revents && run_lines_read(&lo, c.out_fd,
						    on_out_line, h) != 0) {
			close(c.out_fd);
			c.out_fd = -1;
		}
		if (pf[2].revents && run_lines_read(&le, c.err_fd,
						    on_err_line, h) != 0) {
			close(c.err_fd);
			c.err_fd = -1;
		}
	}
	for (;;) {
		rc = run_reap(&c, 0);
		if (rc)
			break;
		if (run_signal_caught()) {
			run_stop(&c, 3000);
			return RUN_INTERRUPTED;
		}
		struct pollfd pf = { run_signal_fd(), POLLIN, 0 };
		poll(&pf, 1, 50);
	}
	if (rc < 0)
		return rc;
	h->status = c.status;
	return 0;
}

/* The value of key=... in a helper's stdout, copied to dst. 0 or -1. */
static int kv_get(const char *out, const char *key, char *dst, size_t cap)
{
	size_t kl = strlen(key);
	const char *p = out;

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len > kl && !strncmp(p, key, kl) && p[kl] == '=') {
			size_t vl = len - kl - 1;
			if (vl >= cap)
				return -1;
			memcpy(dst, p + kl + 1, vl);
			dst[vl] = '\0';
			return 0;
		}
		p += len + (nl ? 1 : 0);
	}
	return -1;
}

/* "build-guest: error: x" -> "x"; "antfarm: x" -> "x". */
static const char *strip_prefix(const char *s)
{
	static const char *const pre[] = { "build-guest: error: ",
					   "build-guest: ",
					   "build-rootfs: error: ",
					   "build-rootfs: ", "antfarm: " };
	for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]); i++)
		if (!strncmp(s, pre[i], strlen(pre[i])))
			return s + strlen(pre[i]);
	return s;
}

/* Describes a child's wait status: "exited with status 3", "died of
 * signal 9". */
void run_describe_status(int st, char *buf, size_t cap)
{
	if (WIFEXITED(st))
		snprintf(buf, cap, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, cap, "died of signal %d", WTERMSIG(st));
	else
		snprintf(buf, cap, "ended (status 0x%x)", (unsigned)st);
}

void run_host_command(const char *name)
{
	host_cmd = name;
}

/* Sets dst to env var name if set, else to dflt. 0, or -1 if too long. */
static int from_env(char *dst, size_t cap, const char *name, const char *dflt)
{
	const char *v = getenv(name);
	if (!v)
		v = dflt;
	if (strlen(v) >= cap)
		return -1;
	strcpy(dst, v);
	return 0;
}

int run_find_paths(struct run_paths *p)
{
	char exe[PATH_MAX], dir[PATH_MAX], root[PATH_MAX], t[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	memset(p, 0, sizeof(*p));
	if (n <= 0) {
		/* No /proc: the current directory stands in for build/. */
		strcpy(exe, "./antfarm");
		n = (ssize_t)strlen(exe);
	}
	exe[n] = '\0';
	copy_str(dir, sizeof(dir), exe);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	if (snprintf(root, sizeof(root), "%s/..", dir) >= (int)sizeof(root))
		goto too_long;

	if (snprintf(t, sizeof(t), "%s/antfarm-qemu.so", dir) >= (int)sizeof(t) ||
	    from_env(p->plugin, sizeof(p->plugin), "ANTFARM_PLUGIN", t))
		goto too_long;
	if (snprintf(t, sizeof(t), "%s/guest/build-guest.sh", root) >=
		    (int)sizeof(t) ||
	    from_env(p->build_guest, sizeof(p->build_guest),
		     "ANTFARM_BUILD_GUEST", t))
		goto too_long;
	if (snprintf(t, sizeof(t), "%s/scripts/deps.sh", root) >= (int)sizeof(t) ||
	    from_env(p->deps, sizeof(p->deps), "ANTFARM_DEPS", t))
		goto too_long;
	if (!strcmp(p->deps, "none"))
		p->deps[0] = '\0';
	if (from_env(p->shm_dir, sizeof(p->shm_dir), "ANTFARM_SHM_DIR",
		     "/dev/shm") ||
	    from_env(p->qemu, sizeof(p->qemu), "ANTFARM_QEMU", "") ||
	    from_env(p->kernel, sizeof(p->kernel), "ANTFARM_GUEST_KERNEL", "") ||
	    from_env(p->initrd, sizeof(p->initrd), "ANTFARM_GUEST_INITRD", ""))
		goto too_long;
	if (!!p->kernel[0] != !!p->initrd[0]) {
		host_error("ANTFARM_GUEST_KERNEL and ANTFARM_GUEST_INITRD "
			  "go together");
		return CLI_EXIT_INPUT;
	}
	return 0;
too_long:
	host_error("a path is too long");
	return CLI_EXIT_INPUT;
}

/* Major version of qemu from `qemu --version`, 0 if it does not run or says
 * something else, or RUN_INTERRUPTED. Below 10, why gets the reason. */
static int qemu_major(const char *qemu, char *why, size_t cap)
{
	static struct helper h;
	char *argv[] = { (char *)qemu, "--version", NULL };

	memset(&h, 0, sizeof(h));
	h.show_after_ms = -1;
	int rc = run_helper(argv, &h);
	if (rc == RUN_INTERRUPTED)
		return rc;
	if (rc) {
		snprintf(why, cap, "cannot run %s (%s)", qemu, strerror(-rc));
		return 0;
	}
	if (WIFEXITED(h.status) && WEXITSTATUS(h.status) == 127) {
		snprintf(why, cap, "%s is not installed", qemu);
		return 0;
	}
	const char *v = strstr(h.out, "version ");
	if (!WIFEXITED(h.status) || WEXITSTATUS(h.status) != 0 || !v ||
	    v[8] < '0' || v[8] > '9') {
		snprintf(why, cap, "%s --version did not say its version (%.200s)",
			 qemu, h.last[0] ? h.last : "no output");
		return 0;
	}
	int major = atoi(v + 8);
	if (major < 0)
		major = 0;
	if (major < 10) {
		int l = (int)strcspn(v + 8, " \n(");
		snprintf(why, cap, "%s is QEMU %.*s, older than the 10.0 the "
			 "plugin needs", qemu, l, v + 8);
	}
	return major;
}

int run_check_qemu(const char *qemu, int verbose)
{
	char why[512];
	int major = qemu_major(qemu, why, sizeof(why));

	if (major == RUN_INTERRUPTED)
		return major;
	if (major >= 10) {
		if (verbose)
			fprintf(stderr, "antfarm: %s: %s is QEMU %d\n", host_cmd, qemu,
				major);
		return 0;
	}
	host_error("%s (scripts/deps.sh run installs QEMU 10 from "
		  "bookworm-backports; that needs root)", why);
	return CLI_EXIT_INPUT;
}

int run_install_deps(const struct run_paths *p, const char *qemu, int verbose)
{
	static struct helper h;
	char *argv[] = { "sh", (char *)p->deps, "run", NULL };
	char st[64], why[512];

	if (!p->deps[0])
		return 0;
	if (access(p->deps, R_OK) != 0) {
		host_error("%s: %s (set ANTFARM_DEPS=none to skip "
			  "installing packages)", p->deps, strerror(errno));
		return CLI_EXIT_INPUT;
	}
	memset(&h, 0, sizeof(h));
	h.heading = "installing the Debian packages antfarm needs "
		    "(scripts/deps.sh run)";
	h.show_after_ms = 1500;
	h.verbose = verbose;
	if (verbose)
		fprintf(stderr, "antfarm: %s: checking host packages: sh %s "
			"test\n", host_cmd, p->deps);
	int rc = run_helper(argv, &h);
	if (rc == RUN_INTERRUPTED)
		return rc;
	if (rc) {
		host_error("cannot run %s: %s", p->deps, strerror(-rc));
		return CLI_EXIT_INPUT;
	}
	if (WIFEXITED(h.status) && WEXITSTATUS(h.status) == 0)
		return 0;
	/* Something is missing and could not be installed; a run needs only
	 * QEMU 10 (the guest builder asks for its own tools). */
	int major = qemu_major(qemu, why, sizeof(why));
	if (major == RUN_INTERRUPTED)
		return major;
	run_describe_status(h.status, st, sizeof(st));
	if (major >= 10) {
		if (verbose)
			fprintf(stderr, "antfarm: %s: %s failed (%s), but "
				"%s is QEMU %d: carrying on\n", host_cmd, p->deps,
				h.last[0] ? strip_prefix(h.last) : st, qemu,
				major);
		return 0;
	}
	host_error("cannot get QEMU 10 installed: %s",
		  h.last[0] ? strip_prefix(h.last) : st);
	return CLI_EXIT_INPUT;
}

/* Reads the guest kernel's config (file "config" beside the kernel) for
 * CONFIG_FRAME_POINTER=y. */
static int has_frame_pointer(const char *kernel)
{
	char path[PATH_MAX], line[256];
	int yes = 0;

	copy_str(path, sizeof(path), kernel);
	char *slash = strrchr(path, '/');
	if (slash)
		slash[1] = '\0';
	else
		path[0] = '\0';
	if (strlen(path) + sizeof("config") > sizeof(path))
		return 0;
	strcat(path, "config");
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strcmp(line, "CONFIG_FRAME_POINTER=y\n"))
			yes = 1;
	fclose(f);
	return yes;
}

int run_find_rootfs(const struct run_paths *p, const char *arch, int verbose,
		    char *image, size_t cap)
{
	static struct helper h;
	char script[PATH_MAX];
	const char *env = getenv("ANTFARM_BUILD_ROOTFS");

	if (env && *env) {
		if (strlen(env) >= sizeof(script)) {
			host_error("ANTFARM_BUILD_ROOTFS is too long");
			return CLI_EXIT_INPUT;
		}
		strcpy(script, env);
	} else {
		copy_str(script, sizeof(script), p->build_guest);
		char *slash = strrchr(script, '/');
		size_t at = slash ? (size_t)(slash + 1 - script) : 0;
		if (at + sizeof("build-rootfs.sh") > sizeof(script)) {
			host_error("a path is too long");
			return CLI_EXIT_INPUT;
		}
		strcpy(script + at, "build-rootfs.sh");
	}
	if (access(script, X_OK) != 0) {
		host_error("%s: %s (set ANTFARM_BUILD_ROOTFS)", script,
			  strerror(errno));
		return CLI_EXIT_INPUT;
	}
	char *check[] = { script, "--arch", (char *)arch, "--check", NULL };
	memset(&h, 0, sizeof(h));
	h.show_after_ms = -1;
	h.verbose = verbose;
	int rc = run_helper(check, &h);
	if (rc == 0 && WIFEXITED(h.status) && WEXITSTATUS(h.status) == 3) {
		char *build[] = { script, "--arch", (char *)arch, NULL };
		memset(&h, 0, sizeof(h));
		h.heading = "building the compile guest's root filesystem "
			    "(first use only, a few minutes; needs root): "
			    "Debian with gcc, make and libc6-dev by "
			    "debootstrap, the bash and dash source packages "
			    "configured in it, an ext4 image; cached in "
			    "~/.cache/antfarm/rootfs";
		h.show_after_ms = 0;
		h.verbose = 1;
		rc = run_helper(build, &h);
	}
	if (rc == RUN_INTERRUPTED)
		return rc;
	if (rc) {
		host_error("cannot run %s: %s", script, strerror(-rc));
		return CLI_EXIT_INPUT;
	}
	if (!WIFEXITED(h.status) || WEXITSTATUS(h.status) != 0) {
		char st[64];
		run_describe_status(h.status, st, sizeof(st));
		host_error("cannot build the compile root filesystem: %s",
			  h.last[0] ? strip_prefix(h.last) : st);
		return CLI_EXIT_INPUT;
	}
	if (kv_get(h.out, "image", image, cap) || access(image, R_OK) != 0) {
		host_error("%s named no readable disk image", script);
		return CLI_EXIT_INPUT;
	}
	return 0;
}

int run_build_guest(const struct run_paths *p, const struct run_guest_req *rq,
		    int verbose, struct run_guest *g)
{
	static struct helper h;
	const char *argv[8 + 2 * 64 + 4];
	size_t n = 0;
	char st[64];

	memset(g, 0, sizeof(*g));
	if (p->kernel[0]) {
		/* A ready guest from the environment. */
		if (rq->n_adds || rq->exec) {
			host_error("--add and --exec need guest/build-guest.sh"
				  " (unset ANTFARM_GUEST_KERNEL)");
			return CLI_EXIT_INPUT;
		}
		copy_str(g->kernel, sizeof(g->kernel), p->kernel);
		copy_str(g->initrd, sizeof(g->initrd), p->initrd);
		strcpy(g->append, "console=ttyS0 panic=-1 quiet");
		strcpy(g->kver, "unknown");
		strcpy(g->qemu, strcmp(rq->arch, "x86_64") ?
			       "qemu-system-i386" : "qemu-system-x86_64");
		g->frame_pointer = has_frame_pointer(g->kernel);
		return 0;
	}
	if (rq->n_adds > 64) {
		host_error("at most 64 --add files");
		return CLI_EXIT_INPUT;
	}
	if (access(p->build_guest, X_OK) != 0) {
		host_error("%s: %s (set ANTFARM_BUILD_GUEST)",
			  p->build_guest, strerror(errno));
		return CLI_EXIT_INPUT;
	}
	argv[n++] = p->build_guest;
	argv[n++] = "--arch";
	argv[n++] = rq->arch;
	for (size_t i = 0; i < rq->n_adds; i++) {
		argv[n++] = "--add";
		argv[n++] = rq->adds[i];
	}
	if (rq->exec) {
		argv[n++] = "--exec";
		argv[n++] = rq->exec;
	}
	if (rq->backports)
		argv[n++] = "--backports";
	argv[n] = NULL;

	memset(&h, 0, sizeof(h));
	h.heading = "preparing the guest: on first use this downloads about "
		    "85 MB of Debian packages and builds the ground-truth "
		    "module (cached in ~/.cache/antfarm)";
	h.show_after_ms = 1500;
	h.verbose = verbose;
	int rc = run_helper((char *const *)argv, &h);
	if (rc == RUN_INTERRUPTED)
		return rc;
	if (rc) {
		host_error("cannot run %s: %s", p->build_guest,
			  strerror(-rc));
		return CLI_EXIT_INPUT;
	}
	if (!WIFEXITED(h.status) || WEXITSTATUS(h.status) != 0) {
		run_describe_status(h.status, st, sizeof(st));
		host_error("cannot build the guest: %s",
			  h.last[0] ? strip_prefix(h.last) : st);
		return CLI_EXIT_INPUT;
	}
	if (kv_get(h.out, "kernel", g->kernel, sizeof(g->kernel)) ||
	    kv_get(h.out, "initrd", g->initrd, sizeof(g->initrd)) ||
	    kv_get(h.out, "append", g->append, sizeof(g->append))) {
		host_error("%s did not name a kernel, initrd and command "
			  "line", p->build_guest);
		return CLI_EXIT_INPUT;
	}
	if (kv_get(h.out, "kver", g->kver, sizeof(g->kver)))
		strcpy(g->kver, "unknown");
	if (kv_get(h.out, "qemu", g->qemu, sizeof(g->qemu)))
		strcpy(g->qemu, strcmp(rq->arch, "x86_64") ?
				       "qemu-system-i386" :
				       "qemu-system-x86_64");
	g->frame_pointer = has_frame_pointer(g->kernel);
	return 0;
}
