/*
 * cli/iosched_live.c - the live Fig. 7 experiment of `antfarm iosched`
 * (contract in iosched_live.h): for each cell it starts the block server
 * (antfarm-blockserver, or nbdkit + nbdkit-antfarm-plugin.so) on sparse
 * image files and V QEMU
 * guests with the antfarm plugin, waits until every guest has booted and
 * set its elevator, tells them all at once (a byte on each guest's second
 * serial port) to start their readers, times the readers from that moment
 * to each one's completion line on the console, stops everything, and
 * reads the server's counters and request log to count seeks,
 * anticipation and how often a request's process tag was wrong.
 *
 * Everything a cell makes lives in one private directory (and the guests'
 * RAM and association files in ANTFARM_SHM_DIR); all of it, and every
 * child, is removed on every way out, SIGINT/SIGTERM/SIGHUP included.
 * Children die with us (PR_SET_PDEATHSIG) if we are killed outright, and
 * the image files, sockets and RAM files lose their names as soon as
 * everything has them open.
 */
#include "iosched_live.h"

#include "cli.h"
#include "run_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STOP_GRACE_MS 3000      /* SIGTERM to SIGKILL for QEMU */
#define SERVER_GRACE_MS 20000   /* ... for the server (writes its log) */
#define SERVER_START_MS 20000   /* the server must be listening by then */
#define END_GRACE_MS 60000      /* guests must power off after the run */
#define START_LIMIT_MS 30000    /* readers must have started by then */
#define LINE_KEEP 240           /* bytes kept of a remembered line */
#define MAX_TAGS 32             /* distinct tags counted per region */

/* The readers of one guest (run by the guest's /init with sh). Its
 * parameters come from the kernel command line: afio.procs, afio.count
 * (blocks per reader), afio.bs (KiB per block, also the read-ahead),
 * afio.stride (MiB between regions), afio.elv (elevator), afio.direct
 * (1: O_DIRECT reads, one synchronous request at a time; 0: through the
 * page cache and its read-ahead), afio.bfqlat (bfq's low_latency, when the
 * elevator is bfq). Console lines for the host start with "afio: ". */
const char iol_guest_script[] =
	"# antfarm iosched live: the readers of one guest\n"
	"c=\" $(cat /proc/cmdline) \"\n"
	"opt() { v=${c#* afio.$1=}; [ \"$v\" = \"$c\" ] && v=; "
	"echo \"${v%% *}\"; }\n"
	"procs=$(opt procs); count=$(opt count); bs=$(opt bs)\n"
	"stride=$(opt stride); elv=$(opt elv); direct=$(opt direct)\n"
	"bfqlat=$(opt bfqlat)\n"
	"flag=; [ \"$direct\" = 1 ] && flag=iflag=direct\n"
	"q=/sys/block/vda/queue\n"
	"if [ ! -e $q/scheduler ]; then\n"
	"\techo \"afio: error the guest has no virtio disk /dev/vda\"; "
	"exit 1\n"
	"fi\n"
	"echo \"$elv\" >$q/scheduler 2>/dev/null\n"
	"case $(cat $q/scheduler) in\n"
	"*\"[$elv]\"*) ;;\n"
	"*) echo \"afio: error elevator $elv not available: "
	"$(cat $q/scheduler)\"; exit 1 ;;\n"
	"esac\n"
	"if [ \"$elv\" = bfq ] && ! echo \"$bfqlat\" >$q/iosched/low_latency; then\n"
	"\techo \"afio: error cannot set bfq's low_latency to $bfqlat\"; exit 1\n"
	"fi\n"
	"if ! echo \"$bs\" >$q/read_ahead_kb; then\n"
	"\techo \"afio: error cannot set read_ahead_kb to $bs\"; exit 1\n"
	"fi\n"
	"# The readers, forked now and each waiting on its own FIFO, so that\n"
	"# the start costs them only the fork of dd.\n"
	"p=0\n"
	"while [ \"$p\" -lt \"$procs\" ]; do\n"
	"\tmkfifo /tmp/go$p || { echo \"afio: error mkfifo\"; exit 1; }\n"
	"\t(\n"
	"\tread -r x </tmp/go$p\n"
	"\tif dd if=/dev/vda of=/dev/null bs=${bs}k "
	"skip=$((p * stride * 1024 / bs)) count=$count $flag 2>/tmp/dd$p; "
	"then\n"
	"\t\techo \"afio: done $p\"\n"
	"\telse\n"
	"\t\techo \"afio: error reader $p: $(tail -n 1 /tmp/dd$p)\"\n"
	"\tfi\n"
	"\t) &\n"
	"\tp=$((p + 1))\n"
	"done\n"
	"# Kept open from here: a byte that arrives while the port is closed\n"
	"# is lost when it is opened again.\n"
	"exec 3</dev/ttyS1\n"
	"stty -F /dev/ttyS1 clocal -echo -icanon 2>/dev/null\n"
	"echo \"afio: ready elevator=$elv read_ahead_kb=$(cat "
	"$q/read_ahead_kb) max_sectors_kb=$(cat $q/max_sectors_kb) "
	"rotational=$(cat $q/rotational) direct=$direct"
	"$([ \"$elv\" = bfq ] && echo \" low_latency=$(cat $q/iosched/low_latency)\")\"\n"
	"if ! head -c 1 <&3 >/dev/null; then\n"
	"\techo \"afio: error no start signal on /dev/ttyS1\"; exit 1\n"
	"fi\n"
	"read -r x u n s i w h r t rest </proc/stat\n"
	"b0=$((u + n + s + h + r + t)); i0=$((i + w))\n"
	"p=0\n"
	"while [ \"$p\" -lt \"$procs\" ]; do\n"
	"\techo go >/tmp/go$p\n"
	"\tp=$((p + 1))\n"
	"done\n"
	"exec 3<&-\n"
	"echo \"afio: started\"\n"
	"wait\n"
	"read -r x u n s i w h r t rest </proc/stat\n"
	"echo \"afio: cpu busy=$((u + n + s + h + r + t - b0)) "
	"idle=$((i + w - i0))\"\n";

/* One guest of a cell. */
struct vmst {
	struct run_child qemu;   /* its QEMU */
	struct run_lines con;    /* console (QEMU's stdout) */
	struct run_lines err;    /* QEMU's stderr */
	char img[PATH_MAX];      /* its disk image, "" once unlinked */
	char ram[PATH_MAX];      /* its RAM file, "" once unlinked */
	char assoc[PATH_MAX];    /* its association file, "" if none */
	char go[PATH_MAX];       /* its start socket, "" once unlinked */
	int go_fd;               /* connected to it, -1 */
	int ready;               /* "afio: ready" seen */
	int started;             /* "afio: started" seen */
	int ended;               /* "antfarm: end" seen */
	int end_status;          /* its status */
	int have_cpu;            /* "afio: cpu" seen */
	uint64_t cpu_busy;       /* guest jiffies busy during the run */
	uint64_t cpu_idle;       /* ... idle */
	uint64_t qemu_ticks0;    /* QEMU's CPU ticks at the start */
	uint64_t qemu_ticks1;    /* ... when its last reader finished */
	uint64_t last_ns;        /* when its last reader finished, 0 */
	uint64_t done_ns[IOL_MAX_PROCS]; /* each reader's completion, 0 */
	char fail[LINE_KEEP];    /* "afio: error"/panic text, "" */
	char last[LINE_KEEP];    /* last console line */
	char qerr[LINE_KEEP];    /* first error-looking QEMU stderr line */
	char qlast[LINE_KEEP];   /* last QEMU stderr line */
};

/* Everything a cell has made (static: the signal path cleans it up). */
struct cellst {
	char dir[PATH_MAX];      /* private directory, "" if none */
	char sock[PATH_MAX];     /* the server's socket, "" once unlinked */
	char pidfile[PATH_MAX];  /* its pid file */
	char stats[PATH_MAX];    /* its stats file */
	char log[PATH_MAX];      /* its request log */
	struct run_child srv;    /* the block server */
	struct run_lines srv_err;/* its stderr */
	char srv_last[LINE_KEEP];/* its last stderr line */
	unsigned nvm;            /* guests */
	unsigned procs;          /* readers per guest */
	struct vmst vm[IOL_MAX_VMS]; /* them */
	int verbose;             /* echo output */
};

static struct cellst C = { .srv = { .out_fd = -1, .err_fd = -1 } };

static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void unlink_name(char *path)
{
	if (path[0])
		unlink(path);
	path[0] = '\0';
}

/* Stops every child and removes every file of the cell (idempotent). */
static void cell_cleanup(void)
{
	/* SIGTERM to all first, so that the waits overlap. */
	for (unsigned v = 0; v < C.nvm; v++)
		run_kill(&C.vm[v].qemu, SIGTERM);
	for (unsigned v = 0; v < C.nvm; v++) {
		struct vmst *m = &C.vm[v];
		run_stop(&m->qemu, STOP_GRACE_MS);
		run_child_close(&m->qemu);
		if (m->go_fd >= 0)
			close(m->go_fd);
		m->go_fd = -1;
		unlink_name(m->img);
		unlink_name(m->ram);
		unlink_name(m->assoc);
		unlink_name(m->go);
	}
	run_stop(&C.srv, STOP_GRACE_MS);
	run_child_close(&C.srv);
	unlink_name(C.sock);
	unlink_name(C.pidfile);
	unlink_name(C.stats);
	unlink_name(C.log);
	if (C.dir[0])
		rmdir(C.dir);
	C.dir[0] = '\0';
	C.nvm = 0;
}

int iol_die_of_signal(void)
{
	int sig = run_signal_caught();

	cell_cleanup();
	if (!sig)
		sig = SIGINT;
	cli_error("iosched: interrupted by signal %d; guests and block server "
		  "stopped", sig);
	fflush(stdout);
	run_signals_reset();
	raise(sig);
	return 128 + sig;
}

/* ---- preparing ---- */

/* dir of /proc/self/exe + "/" + name, or from the environment. */
static int beside_exe(char *out, size_t cap, const char *env,
		      const char *name)
{
	const char *e = getenv(env);
	if (e && *e) {
		if (strlen(e) >= cap)
			return -1;
		strcpy(out, e);
		return 0;
	}
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		strcpy(exe, "./antfarm");
	else
		exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	else
		strcpy(exe, ".");
	if (snprintf(out, cap, "%s/%s", exe, name) >= (int)cap)
		return -1;
	return 0;
}

/* Runs argv to completion, discarding its output; its exit status, 127 if
 * it could not run, or RUN_INTERRUPTED. */
static int run_quiet(char *const argv[], int64_t limit_ms)
{
	struct run_child c;
	if (run_spawn(&c, argv, 1))
		return 127;
	int64_t until = run_now_ms() + limit_ms;
	char buf[4096];
	while (c.out_fd >= 0 || c.err_fd >= 0) {
		struct pollfd pf[3] = { { run_signal_fd(), POLLIN, 0 },
					{ c.out_fd, POLLIN, 0 },
					{ c.err_fd, POLLIN, 0 } };
		if (run_signal_caught() || run_now_ms() > until)
			break;
		if (poll(pf, 3, 200) <= 0)
			continue;
		for (int i = 1; i < 3; i++) {
			int *fd = i == 1 ? &c.out_fd : &c.err_fd;
			if (!pf[i].revents || *fd < 0)
				continue;
			ssize_t r = read(*fd, buf, sizeof(buf));
			if (r == 0 || (r < 0 && errno != EAGAIN &&
				       errno != EINTR)) {
				close(*fd);
				*fd = -1;
			}
		}
	}
	if (c.out_fd >= 0 || c.err_fd >= 0) {
		run_stop(&c, 1000);
		run_child_close(&c);
		return run_signal_caught() ? RUN_INTERRUPTED : 127;
	}
	run_reap(&c, 1);
	if (WIFEXITED(c.status))
		return WEXITSTATUS(c.status);
	return 127;
}

int iol_prepare(struct iol_env *env)
{
	run_host_command("iosched");
	int rc = run_find_paths(&env->paths);
	if (rc)
		return rc;
	if (env->use_nbdkit ?
		    beside_exe(env->server, sizeof(env->server),
			       "ANTFARM_NBDKIT_PLUGIN",
			       "nbdkit-antfarm-plugin.so") :
		    beside_exe(env->server, sizeof(env->server),
			       "ANTFARM_BLOCKSERVER", "antfarm-blockserver")) {
		cli_error("iosched: a path is too long");
		return CLI_EXIT_INPUT;
	}
	if (access(env->paths.plugin, R_OK) != 0) {
		cli_error("iosched: no antfarm QEMU plugin at %s (make builds "
			  "it; it needs libglib2.0-dev) - set ANTFARM_PLUGIN",
			  env->paths.plugin);
		return CLI_EXIT_INPUT;
	}
	if (env->use_nbdkit && access(env->server, R_OK) != 0) {
		cli_error("iosched: no block server at %s (make builds it when "
			  "nbdkit-plugin-dev is installed) - set "
			  "ANTFARM_NBDKIT_PLUGIN", env->server);
		return CLI_EXIT_INPUT;
	}
	if (!env->use_nbdkit && access(env->server, X_OK) != 0) {
		cli_error("iosched: no block server at %s (make builds it) - "
			  "set ANTFARM_BLOCKSERVER", env->server);
		return CLI_EXIT_INPUT;
	}
	rc = run_signals_init();
	if (rc) {
		cli_error("iosched: cannot set up signal handling: %s",
			  strerror(-rc));
		return CLI_EXIT_INPUT;
	}
	if (env->use_nbdkit) {
		char *nv[] = { "nbdkit", "--version", NULL };
		rc = run_quiet(nv, 20000);
		if (rc == RUN_INTERRUPTED)
			return rc;
		if (rc != 0) {
			cli_error("iosched: nbdkit does not run (apt-get "
				  "install nbdkit)");
			return CLI_EXIT_INPUT;
		}
	}
	struct run_guest_req rq = { "x86_64", NULL, 0, iol_guest_script, 0 };
	rc = run_build_guest(&env->paths, &rq, env->verbose, &env->guest);
	if (rc)
		return rc;
	env->qemu = env->paths.qemu[0] ? env->paths.qemu : env->guest.qemu;
	return run_check_qemu(env->qemu, env->verbose);
}

/* ---- a cell: helpers ---- */

/* path = dir + "/" + name; -1 if too long (for a socket: its limit). */
static int in_dir(char *path, size_t cap, const char *name)
{
	char d[PATH_MAX];
	copy_str(d, sizeof(d), C.dir); /* (the compiler fears overlap) */
	return snprintf(path, cap, "%s/%s", d, name) >= (int)cap ? -1 : 0;
}

/* A sparse file of size bytes. */
static int make_sparse(const char *path, uint64_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int rc = ftruncate(fd, (off_t)size) ? -errno : 0;
	close(fd);
	return rc;
}

/* utime + stime of a process, in clock ticks; 0 if unreadable. */
static uint64_t proc_ticks(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* Fields after the command: state is field 3; utime 14, stime 15. */
	unsigned field = 2;
	uint64_t ut = 0, st = 0;
	for (char *save = NULL, *t = strtok_r(p + 1, " ", &save); t;
	     t = strtok_r(NULL, " ", &save)) {
		field++;
		if (field == 14)
			ut = strtoull(t, NULL, 10);
		else if (field == 15) {
			st = strtoull(t, NULL, 10);
			break;
		}
	}
	return ut + st;
}

/* The host's CPU counters from /proc/stat: busy and total ticks. */
static void host_ticks(uint64_t *busy, uint64_t *total)
{
	*busy = *total = 0;
	FILE *f = fopen("/proc/stat", "re");
	if (!f)
		return;
	unsigned long long v[10] = { 0 };
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
		   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
		for (int i = 0; i < 8; i++)
			*total += v[i];
		*busy = *total - v[3] - v[4];
	}
	fclose(f);
}

static double load1(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "re");
	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

/* ---- output of the children ---- */

static void on_srv_err(void *ctx, char *line)
{
	(void)ctx;
	if (C.verbose)
		fprintf(stderr, "server| %s\n", line);
	if (*line)
		copy_str(C.srv_last, sizeof(C.srv_last), line);
}

/* Context of a guest's line callbacks. */
struct vmctx {
	unsigned v;       /* which guest */
	int go_sent;      /* the readers were started */
};

static void on_console(void *ctx, char *line)
{
	struct vmctx *x = ctx;
	struct vmst *m = &C.vm[x->v];
	const char *p;
	uint64_t t = now_ns();

	if (C.verbose)
		fprintf(stderr, "vm%u| %s\n", x->v, line);
	if (*line)
		copy_str(m->last, sizeof(m->last), line);
	if (strstr(line, "afio: ready")) {
		m->ready = 1;
	} else if (strstr(line, "afio: started")) {
		m->started = 1;
	} else if ((p = strstr(line, "afio: done ")) != NULL) {
		char *end;
		unsigned long r = strtoul(p + 11, &end, 10);
		if (end != p + 11 && r < C.procs && !m->done_ns[r] &&
		    x->go_sent) {
			m->done_ns[r] = t;
			unsigned n = 0;
			for (unsigned i = 0; i < C.procs; i++)
				n += m->done_ns[i] != 0;
			if (n == C.procs) {
				/* Its QEMU's CPU time while it read (it may
				 * power off before the others finish). */
				m->last_ns = t;
				m->qemu_ticks1 = proc_ticks(m->qemu.pid);
			}
		}
	} else if ((p = strstr(line, "afio: cpu busy=")) != NULL) {
		unsigned long long b, i;
		if (sscanf(p, "afio: cpu busy=%llu idle=%llu", &b, &i) == 2) {
			m->cpu_busy = b;
			m->cpu_idle = i;
			m->have_cpu = 1;
		}
	} else if ((p = strstr(line, "afio: error ")) != NULL) {
		if (!m->fail[0])
			copy_str(m->fail, sizeof(m->fail), p + 12);
	} else if ((p = strstr(line, "antfarm: error ")) != NULL) {
		if (!m->fail[0])
			copy_str(m->fail, sizeof(m->fail), p + 15);
	} else if (strstr(line, "Kernel panic")) {
		if (!m->fail[0])
			copy_str(m->fail, sizeof(m->fail), line);
	} else if ((p = strstr(line, "antfarm: end status=")) != NULL) {
		m->ended = 1;
		m->end_status = atoi(p + 20);
	}
}

static void on_qemu_err(void *ctx, char *line)
{
	struct vmctx *x = ctx;
	struct vmst *m = &C.vm[x->v];

	if (C.verbose)
		fprintf(stderr, "vm%u! %s\n", x->v, line);
	if (!*line)
		return;
	copy_str(m->qlast, sizeof(m->qlast), line);
	if (!m->qerr[0] && (strstr(line, "qemu-system-") ||
			    strstr(line, "antfarm-qemu:") ||
			    strstr(line, "rror")))
		copy_str(m->qerr, sizeof(m->qerr), line);
}

/* Reads what a child has written; closes a pipe at its end. */
static void drain(int *fd, struct run_lines *l, void (*fn)(void *, char *),
		  void *ctx)
{
	if (*fd < 0)
		return;
	if (run_lines_read(l, *fd, fn, ctx) != 0) {
		close(*fd);
		*fd = -1;
	}
}

/* Reports why guest v failed. */
static void report_vm(unsigned v, const char *what)
{
	struct vmst *m = &C.vm[v];
	const char *why = m->fail[0] ? m->fail :
			  m->qerr[0] ? m->qerr :
			  m->qlast[0] ? m->qlast :
			  m->last[0] ? m->last : NULL;
	if (why && strstr(why, "unknown option 'assoc'"))
		cli_error("iosched: vm%u: the antfarm QEMU plugin has no assoc= "
			  "option (rebuild it, or use --no-assoc): %s", v, why);
	else if (why)
		cli_error("iosched: vm%u: %s: %s", v, what, why);
	else
		cli_error("iosched: vm%u: %s", v, what);
}

/* ---- starting ---- */

/* Starts the block server and waits until it listens. 0 or
 * CLI_EXIT_INPUT / RUN_INTERRUPTED. */
static int start_server(const struct iol_env *env, const struct iol_params *p)
{
	struct run_argv a = { .n = 0 };
	uint64_t disk = p->procs * (p->stride_mb << 20);

	/* Both take the same settings (blockserver/config.c). */
	run_argv_add(&a, "%s", env->use_nbdkit ? "nbdkit" : env->server);
	run_argv_add(&a, "-f");
	run_argv_add(&a, "-U");
	run_argv_add(&a, "%s", C.sock);
	run_argv_add(&a, "-P");
	run_argv_add(&a, "%s", C.pidfile);
	if (env->use_nbdkit)
		run_argv_add(&a, "%s", env->server);
	for (unsigned v = 0; v < p->vms; v++) {
		run_argv_add(&a, "export=vm%u", v);
		run_argv_add(&a, "file=%s", C.vm[v].img);
		run_argv_add(&a, "vm=%u", v);
		if (C.vm[v].assoc[0])
			run_argv_add(&a, "assoc=%s", C.vm[v].assoc);
	}
	run_argv_add(&a, "stride=%" PRIu64, disk);
	run_argv_add(&a, "sched=%s", ios_sched_name(p->sched));
	run_argv_add(&a, "readahead=%s", p->readahead ? "on" : "off");
	run_argv_add(&a, "stats=%s", C.stats);
	run_argv_add(&a, "log=%s", C.log);
	if (a.oom) {
		run_argv_free(&a);
		cli_error("iosched: out of memory");
		return CLI_EXIT_INPUT;
	}
	if (env->verbose) {
		fputs("antfarm: iosched:", stderr);
		for (size_t i = 0; i < a.n; i++)
			fprintf(stderr, " %s", a.v[i]);
		fputc('\n', stderr);
	}
	int rc = run_spawn(&C.srv, a.v, 1);
	run_argv_free(&a);
	if (rc) {
		cli_error("iosched: cannot start the block server: %s",
			  strerror(-rc));
		return CLI_EXIT_INPUT;
	}
	int64_t until = run_now_ms() + SERVER_START_MS;
	for (;;) {
		struct stat st;
		if (stat(C.pidfile, &st) == 0 && st.st_size > 0)
			return 0;
		if (run_signal_caught())
			return RUN_INTERRUPTED;
		drain(&C.srv.err_fd, &C.srv_err, on_srv_err, NULL);
		if (run_reap(&C.srv, 0) != 0) {
			drain(&C.srv.err_fd, &C.srv_err, on_srv_err, NULL);
			cli_error("iosched: the block server did not start: %s",
				  C.srv_last[0] ? C.srv_last : "no message");
			return CLI_EXIT_INPUT;
		}
		if (run_now_ms() > until) {
			cli_error("iosched: the block server did not start "
				  "listening within %d s", SERVER_START_MS / 1000);
			return CLI_EXIT_INPUT;
		}
		struct pollfd pf = { run_signal_fd(), POLLIN, 0 };
		poll(&pf, 1, 20);
	}
}

/* Starts guest v's QEMU. 0 or CLI_EXIT_INPUT. */
static int start_guest(const struct iol_env *env, const struct iol_params *p,
		       unsigned v, uint64_t count)
{
	struct vmst *m = &C.vm[v];
	struct run_argv a = { .n = 0 };
	char *e_ram = run_qemu_escape(m->ram), *e_go = run_qemu_escape(m->go),
	     *e_sock = run_qemu_escape(C.sock), *e_plugin = run_qemu_escape(env->paths.plugin),
	     *e_assoc = run_qemu_escape(m->assoc);
	const char *g = p->guest == IOS_GUEST_NONE ? "none" :
			p->guest == IOS_GUEST_BFQ ? "bfq" : "mq-deadline";

	if (!e_ram || !e_go || !e_sock || !e_plugin || !e_assoc)
		a.oom = 1;
	run_argv_add(&a, "%s", env->qemu);
	run_argv_add(&a, "-M");
	run_argv_add(&a, "pc");
	run_argv_add(&a, "-accel");
	run_argv_add(&a, "tcg");
	run_argv_add(&a, "-m");
	run_argv_add(&a, "%u", env->mem_mb);
	run_argv_add(&a, "-nodefaults");
	run_argv_add(&a, "-display");
	run_argv_add(&a, "none");
	run_argv_add(&a, "-no-reboot");
	run_argv_add(&a, "-serial");
	run_argv_add(&a, "stdio");
	run_argv_add(&a, "-serial");
	run_argv_add(&a, "unix:%s,server=on,wait=off", e_go ? e_go : "");
	run_argv_add(&a, "-kernel");
	run_argv_add(&a, "%s", env->guest.kernel);
	run_argv_add(&a, "-initrd");
	run_argv_add(&a, "%s", env->guest.initrd);
	run_argv_add(&a, "-append");
	run_argv_add(&a, "%s antfarm.truth=0 antfarm.modules=virtio_pci,virtio_blk%s "
		"afio.vm=%u afio.procs=%u afio.count=%" PRIu64
		" afio.bs=%" PRIu64 " afio.stride=%" PRIu64 " afio.elv=%s"
		" afio.direct=%d afio.bfqlat=%d",
		env->guest.append, p->guest == IOS_GUEST_BFQ ? ",bfq" : "", v,
		p->procs, count, p->request_kb, p->stride_mb, g, !p->buffered,
		p->bfq_low_latency);
	run_argv_add(&a, "-object");
	run_argv_add(&a, "memory-backend-file,id=ram0,size=%uM,mem-path=%s,share=on",
		env->mem_mb, e_ram ? e_ram : "");
	run_argv_add(&a, "-machine");
	run_argv_add(&a, "memory-backend=ram0");
	run_argv_add(&a, "-plugin");
	run_argv_add(&a, "%s,ram=%s,ramsize=%uM,quiet=on%s%s%s",
		e_plugin ? e_plugin : "", e_ram ? e_ram : "", env->mem_mb,
		env->guest.frame_pointer ? ",framepointer=on" : "",
		m->assoc[0] ? ",assoc=" : "", e_assoc ? e_assoc : "");
	run_argv_add(&a, "-blockdev");
	run_argv_add(&a, "driver=nbd,node-name=d0,export=vm%u,server.type=unix,"
		"server.path=%s", v, e_sock ? e_sock : "");
	run_argv_add(&a, "-device");
	run_argv_add(&a, "virtio-blk-pci,drive=d0");
	free(e_ram);
	free(e_go);
	free(e_sock);
	free(e_plugin);
	free(e_assoc);
	if (a.oom) {
		run_argv_free(&a);
		cli_error("iosched: out of memory");
		return CLI_EXIT_INPUT;
	}
	if (env->verbose) {
		fprintf(stderr, "antfarm: iosched: vm%u:", v);
		for (size_t i = 0; i < a.n; i++)
			fprintf(stderr, " '%s'", a.v[i]);
		fputc('\n', stderr);
	}
	int rc = run_spawn(&m->qemu, a.v, 1);
	run_argv_free(&a);
	if (rc) {
		cli_error("iosched: cannot start %s: %s", env->qemu,
			  strerror(-rc));
		return CLI_EXIT_INPUT;
	}
	return 0;
}

/* Tries to connect to guest v's start socket (QEMU listens on it). */
static void try_connect_go(struct vmst *m)
{
	struct sockaddr_un sa;
	if (m->go_fd >= 0)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	copy_str(sa.sun_path, sizeof(sa.sun_path), m->go);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		m->go_fd = fd;
		unlink_name(m->go);
	} else {
		close(fd);
	}
}

/* Size of a file, -1 if it is not there. */
static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) ? -1 : st.st_size;
}

/* Stops the server, which writes its stats and log as it goes. nbdkit
 * 1.32.5 with a sanitizer runtime preloaded can hang in exit() after that
 * (docs/blockserver.md): once both files have stopped growing for a
 * second, it is killed. */
static void stop_server(void)
{
	run_kill(&C.srv, SIGTERM);
	int64_t until = run_now_ms() + SERVER_GRACE_MS, stable_since = 0;
	off_t last = -2;
	while (run_reap(&C.srv, 0) == 0 && run_now_ms() < until &&
	       !run_signal_caught()) {
		off_t a = file_size(C.stats), b = file_size(C.log);
		off_t sum = a > 0 && b > 0 ? a + b : -1;
		if (sum < 0 || sum != last) {
			last = sum;
			stable_since = run_now_ms();
		} else if (run_now_ms() - stable_since > 1000) {
			break;
		}
		drain(&C.srv.err_fd, &C.srv_err, on_srv_err, NULL);
		struct pollfd pf = { run_signal_fd(), POLLIN, 0 };
		poll(&pf, 1, 20);
	}
	run_stop(&C.srv, 0);
}

/* ---- reading the server's files ---- */

/* The number after "key": in a JSON text (our stats file: keys unique). */
static int json_u64(const char *text, const char *key, uint64_t *out)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(text, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	if (*p < '0' || *p > '9')
		return -1;
	*out = strtoull(p, NULL, 10);
	return 0;
}

static char *read_small_file(const char *path, size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char *buf = malloc(max + 1);
	size_t n = 0;
	if (buf) {
		ssize_t r;
		while (n < max && (r = read(fd, buf + n, max - n)) > 0)
			n += (size_t)r;
		buf[n] = '\0';
	}
	close(fd);
	return buf;
}

/* Counters from the stats file into r and x. 0 or -1. */
static int read_stats(struct ios_sim_result *r, struct iol_extra *x)
{
	char *s = read_small_file(C.stats, 1 << 20);
	if (!s)
		return -1;
	uint64_t late = 0;
	int bad = 0;
	bad |= json_u64(s, "fifo_expired", &r->sched.fifo_expired);
	bad |= json_u64(s, "antic_started", &r->sched.antic_started);
	bad |= json_u64(s, "antic_hits", &r->sched.antic_hits);
	bad |= json_u64(s, "antic_broken", &r->sched.antic_broken);
	bad |= json_u64(s, "antic_timeouts", &r->sched.antic_timeouts);
	bad |= json_u64(s, "dispatched", &r->sched.dispatched);
	bad |= json_u64(s, "seeks", &r->disk.seeks);
	bad |= json_u64(s, "cache_hits", &r->disk.cache_hits);
	bad |= json_u64(s, "stream_hits", &r->disk.stream_hits);
	bad |= json_u64(s, "misses", &r->disk.misses);
	bad |= json_u64(s, "late_ns_max", &late);
	free(s);
	x->late_ms_max = (double)late / 1e6;
	return bad ? -1 : 0;
}

/* One reader's region, as the server saw it. */
struct region {
	uint64_t requests;                /* reads in the window */
	uint64_t bytes;                   /* their bytes */
	uint32_t tag[MAX_TAGS];           /* distinct tags seen */
	uint64_t tag_n[MAX_TAGS];         /* requests of each */
	unsigned ntags;                   /* entries used */
	uint32_t dom;                     /* dominant tag */
	uint64_t dom_n;                   /* its requests */
};

static void region_add(struct region *g, uint32_t pid, uint64_t len)
{
	g->requests++;
	g->bytes += len;
	for (unsigned i = 0; i < g->ntags; i++)
		if (g->tag[i] == pid) {
			g->tag_n[i]++;
			return;
		}
	if (g->ntags < MAX_TAGS) {
		g->tag[g->ntags] = pid;
		g->tag_n[g->ntags++] = 1;
	}
	/* More distinct tags than that: counted as requests, never the
	 * dominant tag (they are all wrong anyway). */
}

/* Parses a decimal field; advances *p past it and one space. */
static int field_u64(char **p, uint64_t *out)
{
	char *end;
	if (**p < '0' || **p > '9')
		return -1;
	errno = 0;
	*out = strtoull(*p, &end, 10);
	if (errno || (*end != ' ' && *end != '\n' && *end != '\0'))
		return -1;
	*p = *end == ' ' ? end + 1 : end;
	return 0;
}

/* Reads the request log: the reads of every region between t0 and t1,
 * and the association error. 0 or CLI_EXIT_INPUT after reporting. */
static int read_log(const struct iol_params *p, uint64_t t0, uint64_t t1,
		    struct ios_sim_result *r, struct iol_extra *x)
{
	FILE *f = fopen(C.log, "re");
	if (!f) {
		cli_error("iosched: the block server wrote no request log: %s",
			  strerror(errno));
		return CLI_EXIT_INPUT;
	}
	static struct region reg[IOL_MAX_VMS * IOL_MAX_PROCS];
	unsigned nreg = p->vms * p->procs;
	uint64_t stride = p->stride_mb << 20;
	uint64_t first = UINT64_MAX, last = 0, nlines = 0;
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;

	memset(reg, 0, sizeof(reg));
	while (getline(&line, &cap, f) > 0) {
		nlines++;
		if (line[0] == '#')
			continue;
		char *q = line;
		uint64_t arr, done, ex, vm, pid = IOS_PID_UNKNOWN, off, len;
		int wr;
		if (field_u64(&q, &arr) || field_u64(&q, &done) ||
		    field_u64(&q, &ex) || field_u64(&q, &vm)) {
			rc = -1;
			break;
		}
		if (q[0] == '-' && q[1] == ' ')
			q += 2;
		else if (field_u64(&q, &pid) || pid > UINT32_MAX) {
			rc = -1;
			break;
		}
		if ((q[0] != 'R' && q[0] != 'W') || q[1] != ' ') {
			rc = -1;
			break;
		}
		wr = q[0] == 'W';
		q += 2;
		if (field_u64(&q, &off) || field_u64(&q, &len)) {
			rc = -1;
			break;
		}
		if (wr || arr < t0 || arr > t1 || ex >= p->vms ||
		    off / stride >= p->procs)
			continue;
		struct region *g = &reg[ex * p->procs + off / stride];
		region_add(g, (uint32_t)pid, len);
		if (arr < first)
			first = arr;
		if (done > last)
			last = done;
		if (pid == IOS_PID_UNKNOWN)
			x->untagged++;
	}
	free(line);
	fclose(f);
	if (rc) {
		cli_error("iosched: the block server's request log is damaged "
			  "(line %" PRIu64 ")", nlines);
		return CLI_EXIT_INPUT;
	}

	/* Dominant tags; a request is right only if it carries its region's
	 * dominant tag, that tag is a process, and no other region of the
	 * guest has it as its dominant tag. */
	uint64_t requests = 0, right = 0, bytes = 0;
	for (unsigned i = 0; i < nreg; i++) {
		struct region *g = &reg[i];
		g->dom = IOS_PID_UNKNOWN;
		for (unsigned k = 0; k < g->ntags; k++)
			if (g->tag_n[k] > g->dom_n) {
				g->dom = g->tag[k];
				g->dom_n = g->tag_n[k];
			}
		requests += g->requests;
		bytes += g->bytes;
	}
	for (unsigned i = 0; i < nreg; i++) {
		struct region *g = &reg[i];
		int shared = 0;
		unsigned vm = i / p->procs;
		for (unsigned j = vm * p->procs; j < (vm + 1) * p->procs; j++)
			if (j != i && reg[j].requests && reg[j].dom == g->dom)
				shared = 1;
		if (g->dom != IOS_PID_UNKNOWN && !shared)
			right += g->dom_n;
		x->rd[i].requests = g->requests;
		x->rd[i].tag = g->dom;
		x->rd[i].tag_share = g->requests ?
					     (double)g->dom_n / (double)g->requests :
					     0;
	}
	r->requests = requests;
	r->mistagged = requests - right;
	x->assoc_error = requests ? (double)r->mistagged / (double)requests : 0;
	x->mean_request_kb = requests ? (double)bytes / requests / 1024 : 0;
	x->disk_mb_s = last > first ? (double)bytes / 1e6 /
					      ((double)(last - first) / 1e9) :
				      0;
	if (requests == 0) {
		cli_error("iosched: the block server saw none of the readers' "
			  "requests");
		return CLI_EXIT_INPUT;
	}
	return 0;
}

/* With ANTFARM_IOSCHED_KEEP=DIR, moves the server's stats and request
 * log there as VxP-SCHED-GUEST.{stats.json,log}, with the start time
 * (CLOCK_MONOTONIC ns) as the log's first line (for looking into a run). */
static void keep_files(const struct iol_params *p, uint64_t t0)
{
	const char *dir = getenv("ANTFARM_IOSCHED_KEEP");
	char a[PATH_MAX], b[PATH_MAX];
	if (!dir || !*dir)
		return;
	const char *g = ios_guest_name(p->guest);
	if (snprintf(a, sizeof(a), "%s/%ux%u-%s-%s.stats.json", dir, p->vms,
		     p->procs, ios_sched_name(p->sched), g) >= (int)sizeof(a) ||
	    snprintf(b, sizeof(b), "%s/%ux%u-%s-%s.log", dir, p->vms, p->procs,
		     ios_sched_name(p->sched), g) >= (int)sizeof(b))
		return;
	if (rename(C.stats, a) == 0)
		C.stats[0] = '\0';
	FILE *in = fopen(C.log, "re"), *out = fopen(b, "we");
	if (in && out) {
		char buf[8192];
		size_t n;
		fprintf(out, "# start_ns %" PRIu64 "\n", t0);
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
			fwrite(buf, 1, n, out);
	}
	if (in)
		fclose(in);
	if (out)
		fclose(out);
}

/* ---- a cell ---- */

/* Makes the cell's directory and files. 0 or CLI_EXIT_INPUT. */
static int make_files(const struct iol_env *env, const struct iol_params *p)
{
	const char *td = getenv("TMPDIR");
	if (!td || !*td)
		td = "/tmp";
	if (snprintf(C.dir, sizeof(C.dir), "%s/antfarm-iosched.XXXXXX", td) >=
		    (int)sizeof(C.dir) ||
	    !mkdtemp(C.dir)) {
		C.dir[0] = '\0';
		cli_error("iosched: cannot create a temporary directory in %s",
			  td);
		return CLI_EXIT_INPUT;
	}
	struct sockaddr_un sa;
	if (in_dir(C.sock, sizeof(sa.sun_path), "nbd.sock") ||
	    in_dir(C.pidfile, sizeof(C.pidfile), "server.pid") ||
	    in_dir(C.stats, sizeof(C.stats), "stats.json") ||
	    in_dir(C.log, sizeof(C.log), "requests.log")) {
		C.sock[0] = '\0';
		cli_error("iosched: the temporary directory's path is too long "
			  "(set TMPDIR)");
		return CLI_EXIT_INPUT;
	}
	uint64_t disk = p->procs * (p->stride_mb << 20);
	for (unsigned v = 0; v < p->vms; v++) {
		struct vmst *m = &C.vm[v];
		char name[32];
		snprintf(name, sizeof(name), "vm%u.img", v);
		if (in_dir(m->img, sizeof(m->img), name)) {
			m->img[0] = '\0';
			cli_error("iosched: TMPDIR is too long");
			return CLI_EXIT_INPUT;
		}
		int rc = make_sparse(m->img, disk);
		if (rc) {
			cli_error("iosched: cannot create %s: %s", m->img,
				  strerror(-rc));
			m->img[0] = '\0';
			return CLI_EXIT_INPUT;
		}
		snprintf(name, sizeof(name), "go%u.sock", v);
		if (in_dir(m->go, sizeof(sa.sun_path), name)) {
			m->go[0] = '\0';
			cli_error("iosched: the temporary directory's path is "
				  "too long for a socket (set TMPDIR)");
			return CLI_EXIT_INPUT;
		}
		if (snprintf(m->ram, sizeof(m->ram),
			     "%s/antfarm-iosched.%ld.vm%u.XXXXXX",
			     env->paths.shm_dir, (long)getpid(), v) >=
		    (int)sizeof(m->ram)) {
			m->ram[0] = '\0';
			cli_error("iosched: ANTFARM_SHM_DIR is too long");
			return CLI_EXIT_INPUT;
		}
		int fd = mkostemp(m->ram, O_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			m->ram[0] = '\0';
			cli_error("iosched: cannot create a guest RAM file in %s:"
				  " %s (set ANTFARM_SHM_DIR to a tmpfs)",
				  env->paths.shm_dir, strerror(e));
			return CLI_EXIT_INPUT;
		}
		close(fd);
		char ram[PATH_MAX];
		copy_str(ram, sizeof(ram), m->ram);
		if (env->assoc &&
		    snprintf(m->assoc, sizeof(m->assoc), "%s.assoc", ram) >=
			    (int)sizeof(m->assoc)) {
			m->assoc[0] = '\0';
			cli_error("iosched: ANTFARM_SHM_DIR is too long");
			return CLI_EXIT_INPUT;
		}
	}
	return 0;
}

/* Drives the guests from boot to power-off. On success t0/t1 are the
 * start and the last reader's completion. 0, CLI_EXIT_INPUT after
 * reporting, or RUN_INTERRUPTED. */
static int drive(const struct iol_env *env, const struct iol_params *p,
		 uint64_t *t0_out, uint64_t *t1_out, struct iol_extra *x)
{
	static struct vmctx ctx[IOL_MAX_VMS];
	int64_t start_ms = run_now_ms();
	int64_t deadline = start_ms + (int64_t)env->timeout_s * 1000;
	int64_t end_deadline = 0;
	uint64_t t0 = 0, t1 = 0, hb0 = 0, ht0 = 0;
	int go_sent = 0;
	int64_t go_ms = 0;

	for (unsigned v = 0; v < p->vms; v++) {
		ctx[v].v = v;
		ctx[v].go_sent = 0;
	}
	for (;;) {
		int64_t now = run_now_ms();
		if (run_signal_caught())
			return RUN_INTERRUPTED;
		if (now >= deadline) {
			cli_error("iosched: the cell did not finish within %u s "
				  "(--timeout sets the limit); %s",
				  env->timeout_s,
				  !go_sent ? "the guests did not all boot" :
				  !t1 ? "the readers did not all finish" :
					"the guests did not power off");
			return CLI_EXIT_INPUT;
		}
		if (end_deadline && now >= end_deadline)
			break; /* measured; QEMUs are stopped by cleanup */

		/* Start sockets and, once every guest is ready, the go. */
		int connecting = 0, all_ready = 1;
		for (unsigned v = 0; v < p->vms; v++) {
			try_connect_go(&C.vm[v]);
			connecting |= C.vm[v].go_fd < 0;
			all_ready &= C.vm[v].ready && C.vm[v].go_fd >= 0;
		}
		if (!go_sent && all_ready) {
			/* Every QEMU and plugin has its RAM file mapped. */
			for (unsigned v = 0; v < p->vms; v++)
				unlink_name(C.vm[v].ram);
			x->load1 = load1();
			x->boot_s = (double)(now - start_ms) / 1000;
			host_ticks(&hb0, &ht0);
			for (unsigned v = 0; v < p->vms; v++)
				C.vm[v].qemu_ticks0 = proc_ticks(C.vm[v].qemu.pid);
			t0 = now_ns();
			for (unsigned v = 0; v < p->vms; v++) {
				ctx[v].go_sent = 1;
				if (write(C.vm[v].go_fd, "g", 1) != 1) {
					cli_error("iosched: vm%u: cannot start "
						  "the readers: %s", v,
						  strerror(errno));
					return CLI_EXIT_INPUT;
				}
			}
			go_sent = 1;
			go_ms = run_now_ms();
			if (env->verbose)
				fprintf(stderr, "antfarm: iosched: guests ready "
					"after %.1f s; readers started\n",
					x->boot_s);
		}

		/* Poll the children. */
		struct pollfd pf[2 + 2 * IOL_MAX_VMS];
		unsigned n = 0;
		pf[n++] = (struct pollfd){ run_signal_fd(), POLLIN, 0 };
		pf[n++] = (struct pollfd){ C.srv.err_fd, POLLIN, 0 };
		for (unsigned v = 0; v < p->vms; v++) {
			pf[n++] = (struct pollfd){ C.vm[v].qemu.out_fd, POLLIN, 0 };
			pf[n++] = (struct pollfd){ C.vm[v].qemu.err_fd, POLLIN, 0 };
		}
		int wait = connecting ? 20 : 500;
		int rc = poll(pf, n, wait);
		if (rc < 0 && errno != EINTR) {
			cli_error("iosched: poll: %s", strerror(errno));
			return CLI_EXIT_INPUT;
		}
		if (rc > 0 && pf[0].revents) {
			char b[16];
			(void)!read(run_signal_fd(), b, sizeof(b));
		}
		drain(&C.srv.err_fd, &C.srv_err, on_srv_err, NULL);
		for (unsigned v = 0; v < p->vms; v++) {
			struct vmst *m = &C.vm[v];
			drain(&m->qemu.out_fd, &m->con, on_console, &ctx[v]);
			drain(&m->qemu.err_fd, &m->err, on_qemu_err, &ctx[v]);
		}

		/* Failures. */
		if (run_reap(&C.srv, 0) != 0) {
			char st[64];
			drain(&C.srv.err_fd, &C.srv_err, on_srv_err, NULL);
			run_describe_status(C.srv.status, st, sizeof(st));
			cli_error("iosched: the block server %s%s%s", st,
				  C.srv_last[0] ? ": " : "", C.srv_last);
			return CLI_EXIT_INPUT;
		}
		int all_gone = 1;
		for (unsigned v = 0; v < p->vms; v++) {
			struct vmst *m = &C.vm[v];
			if (m->fail[0]) {
				report_vm(v, "the guest failed");
				return CLI_EXIT_INPUT;
			}
			int gone = m->qemu.out_fd < 0 && m->qemu.err_fd < 0 &&
				   run_reap(&m->qemu, 0) != 0;
			all_gone &= gone;
			if (gone && !(m->ended && m->end_status == 0)) {
				char st[64], what[160];
				run_describe_status(m->qemu.status, st, sizeof(st));
				snprintf(what, sizeof(what), "QEMU %s%s", st,
					 m->ended ? "" :
					 " before the readers finished");
				if (m->ended)
					cli_error("iosched: vm%u: the readers' "
						  "script exited with status %d: "
						  "%s", v, m->end_status,
						  m->last);
				else
					report_vm(v, what);
				return CLI_EXIT_INPUT;
			}
		}

		/* Progress: did every guest get the start signal? */
		if (go_sent && run_now_ms() - go_ms > START_LIMIT_MS)
			for (unsigned v = 0; v < p->vms; v++)
				if (!C.vm[v].started) {
					cli_error("iosched: vm%u: the readers did "
						  "not start within %d s of the "
						  "start signal", v,
						  START_LIMIT_MS / 1000);
					return CLI_EXIT_INPUT;
				}

		/* Progress: all readers done? */
		if (go_sent && !t1) {
			unsigned done = 0;
			uint64_t last = 0;
			for (unsigned v = 0; v < p->vms; v++)
				for (unsigned r = 0; r < p->procs; r++)
					if (C.vm[v].done_ns[r]) {
						done++;
						if (C.vm[v].done_ns[r] > last)
							last = C.vm[v].done_ns[r];
					}
			if (done == p->vms * p->procs) {
				t1 = last;
				uint64_t hb1, ht1;
				host_ticks(&hb1, &ht1);
				x->host_busy = ht1 > ht0 ? (double)(hb1 - hb0) /
								   (double)(ht1 - ht0) :
							   0;
				end_deadline = run_now_ms() + END_GRACE_MS;
			}
		}
		if (t1 && all_gone)
			break;
	}
	*t0_out = t0;
	*t1_out = t1;
	return 0;
}

int iol_run_cell(const struct iol_env *env, const struct iol_params *p,
		 struct ios_sim_result *r, struct iol_extra *x)
{
	memset(&C, 0, sizeof(C));
	memset(r, 0, sizeof(*r));
	memset(x, 0, sizeof(*x));
	C.srv.out_fd = C.srv.err_fd = -1;
	C.nvm = p->vms;
	C.procs = p->procs;
	C.verbose = env->verbose;
	for (unsigned v = 0; v < p->vms; v++) {
		C.vm[v].go_fd = -1;
		C.vm[v].qemu.out_fd = C.vm[v].qemu.err_fd = -1;
	}

	uint64_t bs = p->request_kb * 1024;
	uint64_t count = (p->mb * 1000000u + bs - 1) / bs;
	int rc = make_files(env, p);
	if (!rc)
		rc = start_server(env, p);
	if (!rc) {
		/* The server has the images open: their names can go. */
		for (unsigned v = 0; v < p->vms; v++)
			unlink_name(C.vm[v].img);
		for (unsigned v = 0; v < p->vms && !rc; v++)
			rc = start_guest(env, p, v, count);
	}
	uint64_t t0 = 0, t1 = 0;
	if (!rc)
		rc = drive(env, p, &t0, &t1, x);
	if (rc) {
		if (rc != RUN_INTERRUPTED)
			cell_cleanup();
		return rc;
	}

	/* Every reader is done and the guests are off: the server writes
	 * its counters and log when it stops. */
	for (unsigned v = 0; v < p->vms; v++)
		run_stop(&C.vm[v].qemu, STOP_GRACE_MS);
	stop_server();
	if (run_signal_caught())
		return RUN_INTERRUPTED;
	if (read_stats(r, x)) {
		cli_error("iosched: the block server wrote no usable statistics "
			  "(%s)", C.srv_last[0] ? C.srv_last : "no message");
		cell_cleanup();
		return CLI_EXIT_INPUT;
	}
	rc = read_log(p, t0, t1, r, x);
	keep_files(p, t0);
	if (rc) {
		cell_cleanup();
		return rc;
	}

	/* The readers' times. */
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0)
		hz = 100;
	double span = (double)(t1 - t0) / 1e9;
	r->elapsed_ns = t1 - t0;
	r->nprocs = p->vms * p->procs;
	for (unsigned v = 0; v < p->vms; v++) {
		struct vmst *m = &C.vm[v];
		for (unsigned q = 0; q < p->procs; q++) {
			struct ios_sim_proc *pr = &r->proc[v * p->procs + q];
			pr->vm = v;
			pr->proc = q;
			pr->bytes = count * bs;
			pr->finish_ns = m->done_ns[q] - t0;
			pr->mb_s = pr->finish_ns ? (double)pr->bytes / 1e6 /
							   ((double)pr->finish_ns / 1e9) :
						   0;
			r->bytes += pr->bytes;
		}
		uint64_t tot = m->cpu_busy + m->cpu_idle;
		x->vm[v].guest_busy = m->have_cpu && tot ?
					      (double)m->cpu_busy / (double)tot :
					      -1;
		double own = m->last_ns > t0 ? (double)(m->last_ns - t0) / 1e9
					     : 0;
		x->vm[v].qemu_cpu =
			m->qemu_ticks1 >= m->qemu_ticks0 && m->qemu_ticks0 &&
					own > 0 ?
				(double)(m->qemu_ticks1 - m->qemu_ticks0) /
					(double)hz / own :
				-1;
	}
	r->aggregate_mb_s = span > 0 ? (double)r->bytes / 1e6 / span : 0;
	cell_cleanup();
	return 0;
}
