/*
 * cli/cmd_run.c - `antfarm run`: boots a guest under QEMU with the antfarm
 * plugin, prints the processes the plugin infers as they happen, and at the
 * end scores the recorded trace against the guest's ground truth and prints
 * the same summary as `antfarm eval` (cli/report.c).
 *
 * Steps: install what is missing (scripts/deps.sh), build or find the cached
 * guest (guest/build-guest.sh) and, for the compile workload, its root
 * filesystem on a disk image (guest/build-rootfs.sh), check QEMU, make the
 * shared guest-RAM file
 * (removed as soon as QEMU and the plugin have it open, and on every other
 * exit path), listen on a Unix socket for the plugin's event lines, start
 * QEMU in its own process group (it dies with us), relay events to stdout
 * and keep the serial console aside, stop QEMU after --timeout, then replay
 * the trace (af_replay + af_eval) and cross-check it against the live events
 * and the guest module's own counts.
 */
#include "cli.h"
#include "report.h"
#include "run_host.h"
#include "run_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* Which live lines are printed. */
#define EVM_CREATE 0x1u
#define EVM_EXIT 0x2u
#define EVM_SWITCH 0x4u
#define EVM_TRUTH 0x8u

#define MAX_ADDS 64         /* --add files */
#define MAX_PLUGIN_OPTS 16  /* --plugin-opt values */
#define TAIL_LINES 25       /* console lines kept for error reports */
#define TAIL_LEN 240        /* bytes kept of each */
#define STOP_GRACE_MS 10000 /* SIGTERM to SIGKILL when stopping QEMU */
#define COMPILE_TIMEOUT_S 7200 /* default --timeout of the compile workload */
#define COMPILE_MEM_MB 1024    /* default --mem of the compile workload */

/* The command line. */
struct opts {
	const char *arch;       /* x86_64, i386, i386-pae */
	const char *cpu;        /* -cpu MODEL, NULL: QEMU's default */
	unsigned smp;           /* vCPUs */
	unsigned mem_mb;        /* guest RAM */
	const char *workload;   /* --workload as given, NULL: default */
	const char *exec;       /* --exec command, NULL: none */
	const char *adds[MAX_ADDS]; /* --add files */
	size_t n_adds;          /* how many */
	const char *record;     /* --record path, NULL: temporary trace */
	const char *console;    /* --console path, NULL: none */
	enum cli_format format; /* live lines: text or jsonl */
	enum cli_format summary; /* summary: text, json or csv */
	unsigned events;        /* EVM_* printed live */
	unsigned timeout_s;     /* QEMU is stopped after this long */
	int timeout_set;        /* --timeout was given */
	int mem_set;            /* --mem was given */
	double rate, life;      /* fork workloads; < 0: default */
	const char *plugin_opts[MAX_PLUGIN_OPTS]; /* extra plugin key=value */
	size_t n_plugin_opts;   /* how many */
	int verbose;            /* show console and helper progress */
	int no_install;         /* do not run scripts/deps.sh */
	int backports;          /* kernel from bookworm-backports */
};

/* Everything that must be undone on the way out. */
struct state {
	char tmpdir[PATH_MAX];  /* private directory, "" if none */
	char sock[PATH_MAX];    /* event socket path, "" if gone */
	char ram[PATH_MAX];     /* guest RAM file, "" if gone */
	char trace[PATH_MAX];   /* trace path */
	int trace_is_temp;      /* trace lives in tmpdir */
	int trace_fd;           /* temporary trace held open once unlinked */
	const char *record;     /* --record path, NULL if none */
	int record_made;        /* this run created it (removed if empty) */
	int listen_fd;          /* listening socket, -1 */
	int ev_fd;              /* accepted plugin connection, -1 */
	struct run_child qemu;  /* QEMU */
	FILE *console;          /* --console file, NULL */
};

/* What a QEMU run showed. */
struct seen {
	/* live event lines */
	uint64_t live_create, live_exit, live_switch, live_truth;
	int summary_seen;          /* the plugin's summary line came */
	uint64_t events_dropped;   /* from that line */
	char plugin_summary[2048]; /* that line (verbose) */
	/* the guest console */
	int begun;                 /* "antfarm: begin" */
	int end_status;            /* "antfarm: end status=N", -1 none */
	char guest_error[TAIL_LEN];  /* first "antfarm: error ..." */
	char module_counts[1024];  /* "antfarm: truth ..." payload */
	char panic[TAIL_LEN];      /* a "Kernel panic" line */
	char tail[TAIL_LINES][TAIL_LEN]; /* last console lines */
	unsigned tail_n;           /* lines ever seen (ring index) */
	/* QEMU's stderr */
	char qemu_err[TAIL_LEN];   /* first error-looking line */
	char qemu_last[TAIL_LEN];  /* last non-empty line */
	/* the output stream */
	const struct opts *o;      /* options */
	int stdout_broken;         /* a write to stdout failed */
};

static struct state S = {
	.listen_fd = -1,
	.ev_fd = -1,
	.trace_fd = -1,
	.qemu = { .out_fd = -1, .err_fd = -1 },
};

static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Removes everything this run made (idempotent). */
static void cleanup(void)
{
	if (S.qemu.pid && !S.qemu.reaped)
		run_stop(&S.qemu, 3000);
	run_child_close(&S.qemu);
	if (S.ev_fd >= 0)
		close(S.ev_fd);
	if (S.listen_fd >= 0)
		close(S.listen_fd);
	S.ev_fd = S.listen_fd = -1;
	if (S.ram[0])
		unlink(S.ram);
	S.ram[0] = '\0';
	if (S.sock[0])
		unlink(S.sock);
	S.sock[0] = '\0';
	if (S.trace_is_temp && S.trace[0])
		unlink(S.trace);
	S.trace_is_temp = 0;
	if (S.trace_fd >= 0)
		close(S.trace_fd);
	S.trace_fd = -1;
	if (S.record && S.record_made) {
		/* Nothing was recorded (the run failed before QEMU): do not
		 * leave an empty file behind. */
		struct stat st;
		if (stat(S.record, &st) == 0 && st.st_size == 0)
			unlink(S.record);
	}
	S.record = NULL;
	if (S.tmpdir[0])
		rmdir(S.tmpdir);
	S.tmpdir[0] = '\0';
	if (S.console)
		fclose(S.console);
	S.console = NULL;
}

/* After cleanup: dies of the signal that interrupted us. */
static int die_of_signal(void)
{
	int sig = run_signal_caught();

	cleanup();
	cli_error("run: interrupted by signal %d; QEMU stopped", sig);
	fflush(stdout);
	run_signals_reset();
	raise(sig);
	return 128 + sig;
}

/* ---- options ---- */

static int parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

static int parse_events(const char *s, unsigned *mask)
{
	char buf[128];
	unsigned m = 0;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (char *save = NULL, *w = strtok_r(buf, ",", &save); w;
	     w = strtok_r(NULL, ",", &save)) {
		if (!strcmp(w, "create"))
			m |= EVM_CREATE;
		else if (!strcmp(w, "exit"))
			m |= EVM_EXIT;
		else if (!strcmp(w, "switch"))
			m |= EVM_SWITCH;
		else if (!strcmp(w, "truth"))
			m |= EVM_TRUTH;
		else if (!strcmp(w, "all"))
			m |= EVM_CREATE | EVM_EXIT | EVM_SWITCH | EVM_TRUTH;
		else if (!strcmp(w, "none"))
			;
		else
			return -1;
	}
	*mask = m;
	return 0;
}

/* The compile workload: which source tree (on the disk image made by
 * guest/build-rootfs.sh, configured there) for --workload compile:WHAT. */
static const char *compile_tree(const char *what)
{
	if (!what || !strcmp(what, "bash"))
		return "bash";
	if (!strcmp(what, "quick") || !strcmp(what, "dash"))
		return "dash";
	return NULL;
}

/* Turns --workload (and --rate/--life) into the guest command and the
 * summary label's workload part; *disk is set to 1 for workloads that need
 * the compile guest's disk. Returns 0 or CLI_EXIT_USAGE. */
static int workload_cmd(const struct opts *o, char *cmd, size_t cap,
			char *what, size_t wcap, int *disk)
{
	const char *w = o->workload ? o->workload : "forkexec";
	char name[32];
	const char *colon = strchr(w, ':');
	size_t nl = colon ? (size_t)(colon - w) : strlen(w);
	uint64_t n = 0;
	int has_n = colon != NULL;

	*disk = 0;
	if (nl >= sizeof(name))
		return cli_usage_error("run", "unknown workload '%s'", w);
	memcpy(name, w, nl);
	name[nl] = '\0';
	if (!strcmp(name, "compile")) {
		const char *tree = compile_tree(colon ? colon + 1 : NULL);
		if (!tree)
			return cli_usage_error("run", "compile takes :bash "
					       "(default) or :quick");
		if (o->rate >= 0 || o->life >= 0)
			return cli_usage_error("run", "--rate and --life apply "
					       "to fork, forkexec and "
					       "vforkexec");
		/* /init mounted the disk on /disk (antfarm.disk=vda). */
		snprintf(cmd, cap, "chroot /disk /antfarm/compile -j %u %s",
			 o->smp, tree);
		snprintf(what, wcap, "compile:%s",
			 strcmp(tree, "bash") ? "quick" : "bash");
		*disk = 1;
		return 0;
	}
	if (has_n && cli_parse_u64(colon + 1, 1000000, &n))
		return cli_usage_error("run", "bad count in workload '%s'", w);
	int forky = !strcmp(name, "fork") || !strcmp(name, "forkexec") ||
		    !strcmp(name, "vforkexec");
	if (!forky && (o->rate >= 0 || o->life >= 0))
		return cli_usage_error("run", "--rate and --life apply to fork, "
				       "forkexec and vforkexec");
	if (forky) {
		if (!has_n)
			n = 200;
		if (n == 0)
			return cli_usage_error("run", "workload '%s' makes no "
					       "processes", w);
		double r = o->rate >= 0 ? o->rate : 50;
		double t = o->life >= 0 ? o->life : 0.1;
		snprintf(cmd, cap, "afwork %s -n %" PRIu64 " -r %g -t %g", name,
			 n, r, t);
		snprintf(what, wcap, "%s:%" PRIu64, name, n);
	} else if (!strcmp(name, "load")) {
		if (!has_n)
			n = 10;
		if (n > 1000)
			return cli_usage_error("run", "load: at most 1000 "
					       "CPU-bound processes");
		snprintf(cmd, cap, "afwork lag -k %" PRIu64
			 " -n 100 -i 0.01 -s 1", n);
		snprintf(what, wcap, "load:%" PRIu64, n);
	} else if (!strcmp(name, "pagetouch")) {
		if (!has_n)
			n = 10;
		if (n == 0)
			return cli_usage_error("run", "pagetouch: at least one "
					       "run");
		snprintf(cmd, cap, "afwork pagetouch -m 100 -n %" PRIu64, n);
		snprintf(what, wcap, "pagetouch:%" PRIu64, n);
	} else {
		return cli_usage_error("run", "unknown workload '%s' (fork, "
				       "forkexec, vforkexec, load, pagetouch, "
				       "compile)", w);
	}
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	enum { O_RATE = 256, O_LIFE, O_EVENTS, O_CONSOLE, O_PLUGIN_OPT,
	       O_NO_INSTALL, O_BACKPORTS, O_TIMEOUT };
	static const struct option longopts[] = {
		{ "arch", required_argument, NULL, 'a' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "smp", required_argument, NULL, 's' },
		{ "mem", required_argument, NULL, 'm' },
		{ "workload", required_argument, NULL, 'w' },
		{ "exec", required_argument, NULL, 'e' },
		{ "add", required_argument, NULL, 'A' },
		{ "record", required_argument, NULL, 'r' },
		{ "format", required_argument, NULL, 'f' },
		{ "summary", required_argument, NULL, 'S' },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "verbose", no_argument, NULL, 'v' },
		{ "rate", required_argument, NULL, O_RATE },
		{ "life", required_argument, NULL, O_LIFE },
		{ "events", required_argument, NULL, O_EVENTS },
		{ "console", required_argument, NULL, O_CONSOLE },
		{ "plugin-opt", required_argument, NULL, O_PLUGIN_OPT },
		{ "no-install", no_argument, NULL, O_NO_INSTALL },
		{ "backports", no_argument, NULL, O_BACKPORTS },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->arch = "x86_64";
	o->smp = 1;
	o->mem_mb = 512;
	o->format = CLI_FMT_TEXT;
	o->summary = CLI_FMT_TEXT;
	o->events = EVM_CREATE | EVM_EXIT;
	o->timeout_s = 600;
	o->rate = o->life = -1;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":a:c:s:m:w:e:A:r:f:S:v", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'a':
			if (strcmp(optarg, "x86_64") && strcmp(optarg, "i386") &&
			    strcmp(optarg, "i386-pae"))
				return cli_usage_error("run", "unknown arch '%s' "
						       "(x86_64, i386, "
						       "i386-pae)", optarg);
			o->arch = optarg;
			break;
		case 'c':
			if (!*optarg || strchr(optarg, ' '))
				return cli_usage_error("run", "bad CPU model "
						       "'%s'", optarg);
			o->cpu = optarg;
			break;
		case 's':
			if (cli_parse_u64(optarg, AF_MAX_VCPUS, &v) || !v)
				return cli_usage_error("run", "--smp must be 1 to "
						       "%d", AF_MAX_VCPUS);
			o->smp = (unsigned)v;
			break;
		case 'm':
			if (cli_parse_u64(optarg, 1u << 20, &v) || v < 64)
				return cli_usage_error("run", "--mem must be a "
						       "number of MB, 64 or "
						       "more");
			o->mem_mb = (unsigned)v;
			o->mem_set = 1;
			break;
		case 'w':
			o->workload = optarg;
			break;
		case 'e':
			if (!*optarg)
				return cli_usage_error("run", "--exec needs a "
						       "command");
			o->exec = optarg;
			break;
		case 'A':
			if (o->n_adds == MAX_ADDS)
				return cli_usage_error("run", "at most %d --add "
						       "files", MAX_ADDS);
			o->adds[o->n_adds++] = optarg;
			break;
		case 'r':
			if (!*optarg)
				return cli_usage_error("run", "--record needs a "
						       "file");
			o->record = optarg;
			break;
		case 'f':
			if (cli_parse_format(optarg,
					     1u << CLI_FMT_TEXT |
						     1u << CLI_FMT_JSONL,
					     &o->format))
				return cli_usage_error("run", "unknown format "
						       "'%s' (text, jsonl)",
						       optarg);
			break;
		case 'S':
			if (cli_parse_format(optarg,
					     1u << CLI_FMT_TEXT |
						     1u << CLI_FMT_JSON |
						     1u << CLI_FMT_CSV,
					     &o->summary))
				return cli_usage_error("run", "unknown summary "
						       "format '%s' (text, "
						       "json, csv)", optarg);
			break;
		case O_TIMEOUT:
			if (cli_parse_u64(optarg, 86400 * 7, &v) || !v)
				return cli_usage_error("run", "--timeout must be "
						       "a number of seconds");
			o->timeout_s = (unsigned)v;
			o->timeout_set = 1;
			break;
		case 'v':
			o->verbose = 1;
			break;
		case O_RATE:
			if (parse_double(optarg, 0.001, 100000, &o->rate))
				return cli_usage_error("run", "--rate must be "
						       "processes per second "
						       "(0.001 to 100000)");
			break;
		case O_LIFE:
			if (parse_double(optarg, 0, 86400, &o->life))
				return cli_usage_error("run", "--life must be "
						       "seconds (0 to 86400)");
			break;
		case O_EVENTS:
			if (parse_events(optarg, &o->events))
				return cli_usage_error("run", "--events takes "
						       "create,exit,switch,"
						       "truth, all or none");
			break;
		case O_CONSOLE:
			o->console = optarg;
			break;
		case O_PLUGIN_OPT:
			if (!strchr(optarg, '=') || strchr(optarg, ','))
				return cli_usage_error("run", "--plugin-opt "
						       "takes one KEY=VALUE");
			if (o->n_plugin_opts == MAX_PLUGIN_OPTS)
				return cli_usage_error("run", "at most %d "
						       "--plugin-opt",
						       MAX_PLUGIN_OPTS);
			o->plugin_opts[o->n_plugin_opts++] = optarg;
			break;
		case O_NO_INSTALL:
			o->no_install = 1;
			break;
		case O_BACKPORTS:
			o->backports = 1;
			break;
		default:
			return cli_bad_option("run", c, argv);
		}
	}
	if (optind != argc)
		return cli_usage_error("run", "unexpected argument '%s'",
				       argv[optind]);
	if (o->exec && o->workload)
		return cli_usage_error("run", "--exec replaces --workload: give "
				       "one (run afwork from --exec for both)");
	if (o->exec && (o->rate >= 0 || o->life >= 0))
		return cli_usage_error("run", "--rate and --life apply to "
				       "--workload");
	for (size_t i = 0; i < o->n_adds; i++) {
		struct stat st;
		if (stat(o->adds[i], &st) != 0 || !S_ISREG(st.st_mode))
			return cli_usage_error("run", "--add: '%s' is not a "
					       "file", o->adds[i]);
	}
	return 0;
}

/* ---- live lines ---- */

/* What kind of line the plugin sent: EVM_*, 0x100 summary, 0 other. */
static unsigned line_kind(const char *l)
{
	static const struct {
		const char *pre; /* prefix */
		unsigned kind;   /* what it is */
	} tab[] = {
		{ "{\"event\":\"create\"", EVM_CREATE },
		{ "{\"event\":\"exit\"", EVM_EXIT },
		{ "{\"event\":\"switch\"", EVM_SWITCH },
		{ "{\"truth\":", EVM_TRUTH },
		{ "{\"summary\":", 0x100 },
		{ "create ", EVM_CREATE },
		{ "exit ", EVM_EXIT },
		{ "switch ", EVM_SWITCH },
		{ "truth ", EVM_TRUTH },
		{ "summary ", 0x100 },
	};
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (!strncmp(l, tab[i].pre, strlen(tab[i].pre)))
			return tab[i].kind;
	return 0;
}

/* The number after key (e.g. "events_dropped") in a summary line, either
 * format; 0 if absent. */
static uint64_t summary_value(const char *l, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = strstr(l, key); p; p = strstr(p + 1, key)) {
		const char *q = p + kl;
		if (*q == '"')
			q++;
		if (*q != ':' && *q != '=')
			continue;
		return strtoull(q + 1, NULL, 10);
	}
	return 0;
}

static void on_event_line(void *ctx, char *line)
{
	struct seen *s = ctx;
	unsigned k = line_kind(line);

	switch (k) {
	case EVM_CREATE: s->live_create++; break;
	case EVM_EXIT: s->live_exit++; break;
	case EVM_SWITCH: s->live_switch++; break;
	case EVM_TRUTH: s->live_truth++; break;
	case 0x100:
		s->summary_seen = 1;
		s->events_dropped = summary_value(line, "events_dropped");
		copy_str(s->plugin_summary, sizeof(s->plugin_summary), line);
		return;
	default:
		return;
	}
	if (!(s->o->events & k) || s->stdout_broken)
		return;
	if (fputs(line, stdout) == EOF || fputc('\n', stdout) == EOF)
		s->stdout_broken = 1;
}

static void on_console_line(void *ctx, char *line)
{
	struct seen *s = ctx;
	const char *p;

	if (S.console)
		fprintf(S.console, "%s\n", line);
	if (s->o->verbose)
		fprintf(stderr, "%s\n", line);
	copy_str(s->tail[s->tail_n++ % TAIL_LINES], TAIL_LEN, line);
	if (strstr(line, "antfarm: begin"))
		s->begun = 1;
	if ((p = strstr(line, "antfarm: end status=")) != NULL)
		s->end_status = atoi(p + strlen("antfarm: end status="));
	if ((p = strstr(line, "antfarm: error ")) != NULL && !s->guest_error[0])
		copy_str(s->guest_error, sizeof(s->guest_error),
			 p + strlen("antfarm: error "));
	if ((p = strstr(line, "antfarm: truth ")) != NULL)
		copy_str(s->module_counts, sizeof(s->module_counts),
			 p + strlen("antfarm: truth "));
	if (strstr(line, "Kernel panic") && !s->panic[0])
		copy_str(s->panic, sizeof(s->panic), line);
}

static void on_qemu_err_line(void *ctx, char *line)
{
	struct seen *s = ctx;

	if (s->o->verbose)
		fprintf(stderr, "%s\n", line);
	if (!*line)
		return;
	copy_str(s->qemu_last, sizeof(s->qemu_last), line);
	/* QEMU's own errors name the binary; the plugin's start with
	 * "antfarm-qemu:". The plugin's exit summary is not an error. */
	if (!s->qemu_err[0] && !strstr(line, "antfarm-qemu: summary") &&
	    (strstr(line, "qemu-system-") || strstr(line, "antfarm-qemu:") ||
	     strstr(line, "rror")))
		copy_str(s->qemu_err, sizeof(s->qemu_err), line);
}

/* Prints the console's last lines to stderr (on failure). */
static void show_console_tail(const struct seen *s)
{
	unsigned n = s->tail_n < TAIL_LINES ? s->tail_n : TAIL_LINES;
	if (!n || s->o->verbose)
		return;
	fprintf(stderr, "antfarm: run: the guest console's last %u lines:\n",
		n);
	for (unsigned i = s->tail_n - n; i < s->tail_n; i++)
		fprintf(stderr, "  | %s\n", s->tail[i % TAIL_LINES]);
}

/* ---- running QEMU ---- */

/* Makes the socket the plugin connects to. 0 or CLI_EXIT_INPUT. */
static int make_socket(void)
{
	struct sockaddr_un sa;

	if (snprintf(S.sock, sizeof(S.sock), "%s/events.sock", S.tmpdir) >=
		    (int)sizeof(sa.sun_path)) {
		S.sock[0] = '\0';
		cli_error("run: the temporary directory's path is too long for "
			  "a socket (set TMPDIR)");
		return CLI_EXIT_INPUT;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, S.sock);
	S.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			     0);
	if (S.listen_fd < 0 ||
	    bind(S.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(S.listen_fd, 1) < 0) {
		cli_error("run: cannot listen on %s: %s", S.sock,
			  strerror(errno));
		return CLI_EXIT_INPUT;
	}
	return 0;
}

/* Creates the guest RAM file (mem_mb MiB will be used). 0 or
 * CLI_EXIT_INPUT. */
static int make_ram(const char *dir, unsigned mem_mb)
{
	struct statvfs vs;

	/* QEMU only extends the file; a tmpfs too small for the guest would
	 * kill it with SIGBUS halfway through the run. */
	if (statvfs(dir, &vs) == 0) {
		uint64_t avail = (uint64_t)vs.f_bavail * vs.f_frsize;
		if (avail < (uint64_t)mem_mb << 20) {
			cli_error("run: %s has %" PRIu64 " MB free, the guest "
				  "needs %u MB (use --mem or set "
				  "ANTFARM_SHM_DIR)", dir, avail >> 20, mem_mb);
			return CLI_EXIT_INPUT;
		}
	}
	if (snprintf(S.ram, sizeof(S.ram), "%s/antfarm-run.%ld.XXXXXX", dir,
		     (long)getpid()) >= (int)sizeof(S.ram)) {
		S.ram[0] = '\0';
		cli_error("run: ANTFARM_SHM_DIR is too long");
		return CLI_EXIT_INPUT;
	}
	int fd = mkostemp(S.ram, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		S.ram[0] = '\0';
		cli_error("run: cannot create the guest RAM file in %s: %s "
			  "(set ANTFARM_SHM_DIR to a tmpfs)", dir, strerror(e));
		return CLI_EXIT_INPUT;
	}
	close(fd);
	return 0;
}

/* Once the plugin has created the temporary trace (it has when its first
 * line arrives), keeps it open by descriptor and removes its name and the
 * private directory: a run killed with SIGKILL then leaves nothing behind
 * (QEMU dies with us; the RAM file's name is gone already). */
static void hold_trace(void)
{
	if (!S.trace_is_temp || S.trace_fd >= 0 || S.sock[0])
		return;
	int fd = open(S.trace, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	unlink(S.trace);
	S.trace_is_temp = 0;
	S.trace_fd = fd;
	snprintf(S.trace, sizeof(S.trace), "/proc/self/fd/%d", fd);
	if (rmdir(S.tmpdir) == 0)
		S.tmpdir[0] = '\0';
}

/* Runs QEMU to the end. Returns 0 when it is gone (status in S.qemu;
 * *timed_out set if it was stopped at the timeout), RUN_INTERRUPTED, or
 * CLI_EXIT_INPUT after reporting. */
static int drive_qemu(char *const argv[], const struct opts *o, struct seen *s,
		      int *timed_out_out)
{
	struct run_lines ev = { .n = 0 }, con = { .n = 0 }, err = { .n = 0 };
	int64_t deadline = run_now_ms() + (int64_t)o->timeout_s * 1000;
	int64_t kill_at = 0;
	int timed_out = 0;

	int rc = run_spawn(&S.qemu, argv, 1);
	if (rc) {
		cli_error("run: cannot start %s: %s", argv[0], strerror(-rc));
		return CLI_EXIT_INPUT;
	}
	while (S.qemu.out_fd >= 0 || S.qemu.err_fd >= 0 || S.ev_fd >= 0) {
		int64_t now = run_now_ms();

		if (run_signal_caught() && !kill_at) {
			run_kill(&S.qemu, SIGTERM);
			kill_at = now + 3000;
		}
		if (!timed_out && !kill_at && now >= deadline) {
			timed_out = 1;
			run_kill(&S.qemu, SIGTERM);
			kill_at = now + STOP_GRACE_MS;
		}
		if (kill_at && now >= kill_at) {
			run_kill(&S.qemu, SIGKILL);
			kill_at = INT64_MAX; /* once */
		}
		int64_t wait = 1000;
		if (!kill_at && deadline - now < wait)
			wait = deadline - now;
		if (kill_at && kill_at != INT64_MAX && kill_at - now < wait)
			wait = kill_at - now;
		if (wait < 0)
			wait = 0;

		struct pollfd pf[4] = {
			{ run_signal_fd(), POLLIN, 0 },
			{ S.listen_fd >= 0 ? S.listen_fd : S.ev_fd, POLLIN, 0 },
			{ S.qemu.out_fd, POLLIN, 0 },
			{ S.qemu.err_fd, POLLIN, 0 },
		};
		int n = poll(pf, 4, (int)wait);
		if (n < 0 && errno != EINTR) {
			cli_error("run: poll: %s", strerror(errno));
			return CLI_EXIT_INPUT;
		}
		if (n <= 0)
			continue;
		if (pf[0].revents) {
			char b[16];
			(void)!read(run_signal_fd(), b, sizeof(b));
		}
		if (pf[1].revents && S.listen_fd >= 0) {
			int fd = accept4(S.listen_fd, NULL, NULL,
					 SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (fd >= 0) {
				/* The plugin has mapped the RAM file and QEMU
				 * has it open: its name is no longer needed,
				 * so nothing is left behind whatever happens
				 * from now on. */
				close(S.listen_fd);
				S.listen_fd = -1;
				S.ev_fd = fd;
				if (S.ram[0])
					unlink(S.ram);
				S.ram[0] = '\0';
				unlink(S.sock);
				S.sock[0] = '\0';
			}
		} else if (pf[1].revents && S.ev_fd >= 0) {
			if (run_lines_read(&ev, S.ev_fd, on_event_line, s)) {
				close(S.ev_fd);
				S.ev_fd = -1;
			}
			if (s->live_create || s->live_switch || s->summary_seen)
				hold_trace();
			if (!s->stdout_broken && fflush(stdout) == EOF)
				s->stdout_broken = 1;
		}
		if (pf[2].revents &&
		    run_lines_read(&con, S.qemu.out_fd, on_console_line, s)) {
			close(S.qemu.out_fd);
			S.qemu.out_fd = -1;
		}
		if (pf[3].revents &&
		    run_lines_read(&err, S.qemu.err_fd, on_qemu_err_line, s)) {
			close(S.qemu.err_fd);
			S.qemu.err_fd = -1;
		}
		/* QEMU is gone when its output pipes close; a plugin socket
		 * that never connected is not waited for. */
		if (S.qemu.out_fd < 0 && S.qemu.err_fd < 0 && S.listen_fd >= 0)
			break;
	}
	while (run_reap(&S.qemu, 0) == 0) {
		if (run_signal_caught() || timed_out) {
			run_stop(&S.qemu, 3000);
			break;
		}
		struct pollfd pf = { run_signal_fd(), POLLIN, 0 };
		poll(&pf, 1, 50);
	}
	if (run_signal_caught())
		return RUN_INTERRUPTED;
	*timed_out_out = timed_out;
	return 0;
}

/* ---- evaluation ---- */

/* Replay sink: scoring plus counts. */
struct eval_ctx {
	struct af_eval *ev;     /* the scorer */
	int err;                /* first af_eval_add_* error */
	uint64_t truth[16];     /* truth records by kind */
};

static void ev_event(void *ctx, const struct af_event *e)
{
	struct eval_ctx *c = ctx;
	int rc = af_eval_add_event(c->ev, e);
	if (rc && !c->err)
		c->err = rc;
}

static void ev_truth(void *ctx, const struct af_truth *t)
{
	struct eval_ctx *c = ctx;
	int rc = af_eval_add_truth(c->ev, t);
	if (rc && !c->err)
		c->err = rc;
	if (t->kind < 16)
		c->truth[t->kind]++;
}

/* Compares the guest module's own counts ("fork=N exec=N ...") with the
 * truth records in the trace. Returns 0 if they agree, else -1 with a
 * description in why. */
static int check_truth_counts(const char *counts, const uint64_t *truth,
			      char *why, size_t cap)
{
	for (unsigned k = 1; k < 16; k++) {
		const char *name = cli_truth_name(k);
		char key[32];
		if (!name)
			continue;
		snprintf(key, sizeof(key), "%s=", name);
		const char *p = counts;
		while ((p = strstr(p, key)) != NULL &&
		       !(p == counts || p[-1] == ' '))
			p++;
		if (!p)
			continue; /* the module does not count this kind */
		uint64_t want = strtoull(p + strlen(key), NULL, 10);
		if (want != truth[k]) {
			snprintf(why, cap, "the guest module sent %" PRIu64
				 " %s reports, the trace holds %" PRIu64,
				 want, name, truth[k]);
			return -1;
		}
	}
	return 0;
}

/* Replays the trace and prints the summary. Returns 0, or CLI_EXIT_INPUT
 * after reporting (the summary is printed whenever scoring worked). */
static int evaluate(const struct opts *o, const struct seen *s,
		    const char *label, const char *short_label)
{
	struct af_trace_reader *r;
	struct eval_ctx c;
	struct af_counters cnt;
	struct af_eval_result res;
	char why[256];
	int status = 0;

	memset(&c, 0, sizeof(c));
	int rc = cli_open_trace(S.trace, &r);
	if (rc)
		return rc;
	rc = af_eval_new(&c.ev);
	if (rc) {
		af_trace_reader_free(r);
		cli_error("run: %s", strerror(-rc));
		return CLI_EXIT_INPUT;
	}
	struct af_replay_sink sink = { ev_event, ev_truth, &c };
	rc = af_replay(r, &sink, &cnt);
	if (rc < 0) {
		rc = cli_trace_error(S.trace, r, rc);
		af_trace_reader_free(r);
		af_eval_free(c.ev);
		return rc;
	}
	af_trace_reader_free(r);
	rc = c.err ? c.err : af_eval_finish(c.ev, &res);
	af_eval_free(c.ev);
	if (rc) {
		cli_error("run: scoring the trace: %s", strerror(-rc));
		return CLI_EXIT_INPUT;
	}

	/* The trace must hold every report the guest module sent. */
	if (s->module_counts[0] &&
	    check_truth_counts(s->module_counts, c.truth, why, sizeof(why))) {
		cli_error("run: ground truth incomplete: %s", why);
		status = CLI_EXIT_INPUT;
	}
	/* The live events and the replay must agree (the replay is what is
	 * scored). */
	if (s->events_dropped)
		fprintf(stderr, "antfarm: run: warning: %" PRIu64 " live event "
			"lines were dropped (output too slow); the summary is "
			"from the full trace\n", s->events_dropped);
	else if (s->summary_seen &&
		 (s->live_create != cnt.creates || s->live_exit != cnt.exits ||
		  s->live_switch != cnt.switches))
		fprintf(stderr, "antfarm: run: warning: the live run inferred "
			"%" PRIu64 "/%" PRIu64 "/%" PRIu64 " creates/exits/"
			"switches, the trace's replay %" PRIu64 "/%" PRIu64
			"/%" PRIu64 "\n", s->live_create, s->live_exit,
			s->live_switch, cnt.creates, cnt.exits, cnt.switches);
	if (o->verbose)
		fprintf(stderr, "antfarm: run: replay: %" PRIu64 " observations, "
			"%" PRIu64 " creates, %" PRIu64 " exits, %" PRIu64
			" switches, %" PRIu64 " joins, %" PRIu64 " bad roots, %"
			PRIu64 " bad entries, %" PRIu64 " table full\n",
			cnt.observations, cnt.creates, cnt.exits, cnt.switches,
			cnt.joins, cnt.bad_roots, cnt.bad_entries,
			cnt.table_full);
	if (o->summary == CLI_FMT_TEXT) {
		/* The table's row label is short (the workload); the whole
		 * configuration goes on a line of its own. */
		printf("run: %s\n", label);
		af_report_eval(stdout, &res, o->summary, short_label);
	} else {
		af_report_eval(stdout, &res, o->summary, label);
	}
	return status;
}

/* ---- the command ---- */

static int run_run(int argc, char **argv)
{
	struct opts o;
	struct run_paths paths;
	static struct run_guest guest;
	static struct seen seen;
	struct run_argv qa = { .n = 0 };
	char gcmd[512] = "", what[64] = "exec", label[160], desc[64];
	static char disk[PATH_MAX];
	int rc, use_disk = 0;

	rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc;
	if (!o.exec) {
		rc = workload_cmd(&o, gcmd, sizeof(gcmd), what, sizeof(what),
				  &use_disk);
		if (rc)
			return rc;
	}
	if (use_disk) {
		/* A compile takes minutes under TCG, and gcc wants memory. */
		if (!o.timeout_set)
			o.timeout_s = COMPILE_TIMEOUT_S;
		if (!o.mem_set)
			o.mem_mb = COMPILE_MEM_MB;
	}
	snprintf(label, sizeof(label), "%s%s%s smp=%u %s", o.arch,
		 o.cpu ? " cpu=" : "", o.cpu ? o.cpu : "", o.smp, what);
	rc = run_find_paths(&paths);
	if (rc)
		return rc;
	if (access(paths.plugin, R_OK) != 0) {
		cli_error("run: no plugin at %s (make builds it; it needs "
			  "libglib2.0-dev) - set ANTFARM_PLUGIN", paths.plugin);
		return CLI_EXIT_INPUT;
	}
	/* --record must be writable before a guest is booted for it. */
	if (o.record) {
		struct stat st;
		S.record_made = stat(o.record, &st) != 0;
		int fd = open(o.record, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0) {
			cli_error("run: --record %s: %s", o.record,
				  strerror(errno));
			return CLI_EXIT_INPUT;
		}
		close(fd);
		S.record = o.record;
	}
	rc = run_signals_init();
	if (rc) {
		cli_error("run: cannot set up signal handling: %s",
			  strerror(-rc));
		return CLI_EXIT_INPUT;
	}
	memset(&seen, 0, sizeof(seen));
	seen.o = &o;
	seen.end_status = -1;

	/* 1. the host */
	const char *qemu_guess = paths.qemu[0] ? paths.qemu :
				 strcmp(o.arch, "x86_64") ? "qemu-system-i386" :
				 "qemu-system-x86_64";
	if (!o.no_install) {
		rc = run_install_deps(&paths, qemu_guess, o.verbose);
		if (rc)
			goto out;
	}
	/* 2. the guest */
	struct run_guest_req rq = { o.arch, o.adds, o.n_adds, o.exec,
				    o.backports };
	rc = run_build_guest(&paths, &rq, o.verbose, &guest);
	if (rc)
		goto out;
	if (use_disk) {
		rc = run_find_rootfs(&paths, o.arch, o.verbose, disk, sizeof(disk));
		if (rc)
			goto out;
	}
	const char *qemu = paths.qemu[0] ? paths.qemu : guest.qemu;
	rc = run_check_qemu(qemu, o.verbose);
	if (rc)
		goto out;

	/* 3. the files of this run */
	const char *td = getenv("TMPDIR");
	if (!td || !*td)
		td = "/tmp";
	if (snprintf(S.tmpdir, sizeof(S.tmpdir), "%s/antfarm-run.XXXXXX", td) >=
		    (int)sizeof(S.tmpdir) ||
	    !mkdtemp(S.tmpdir)) {
		S.tmpdir[0] = '\0';
		cli_error("run: cannot create a temporary directory in %s", td);
		rc = CLI_EXIT_INPUT;
		goto out;
	}
	if (o.record) {
		copy_str(S.trace, sizeof(S.trace), o.record);
	} else {
		if (snprintf(S.trace, sizeof(S.trace), "%s/trace.aft",
			     S.tmpdir) >= (int)sizeof(S.trace)) {
			cli_error("run: TMPDIR is too long");
			rc = CLI_EXIT_INPUT;
			goto out;
		}
		S.trace_is_temp = 1;
	}
	if (o.console) {
		S.console = fopen(o.console, "w");
		if (!S.console) {
			cli_error("run: --console %s: %s", o.console,
				  strerror(errno));
			rc = CLI_EXIT_INPUT;
			goto out;
		}
	}
	rc = make_socket();
	if (rc)
		goto out;
	rc = make_ram(paths.shm_dir, o.mem_mb);
	if (rc)
		goto out;

	/* 4. QEMU */
	char *e_ram = run_qemu_escape(S.ram), *e_trace = run_qemu_escape(S.trace),
	     *e_sock = run_qemu_escape(S.sock), *e_plugin = run_qemu_escape(paths.plugin);
	{
		/* The trace header keeps 63 bytes of it. */
		char longdesc[512];
		snprintf(longdesc, sizeof(longdesc), "%s %s%s%s smp=%u %s",
			 o.arch, guest.kver, o.cpu ? " cpu=" : "",
			 o.cpu ? o.cpu : "", o.smp, what);
		copy_str(desc, sizeof(desc), longdesc);
	}
	char *e_desc = run_qemu_escape(desc);
	char *e_disk = use_disk ? run_qemu_escape(disk) : NULL;
	if (!e_ram || !e_trace || !e_sock || !e_plugin || !e_desc ||
	    (use_disk && !e_disk))
		qa.oom = 1;
	run_argv_add(&qa, "%s", qemu);
	run_argv_add(&qa, "-M");
	run_argv_add(&qa, "pc");
	run_argv_add(&qa, "-accel");
	run_argv_add(&qa, "tcg");
	if (o.cpu) {
		run_argv_add(&qa, "-cpu");
		run_argv_add(&qa, "%s", o.cpu);
	}
	run_argv_add(&qa, "-smp");
	run_argv_add(&qa, "%u", o.smp);
	run_argv_add(&qa, "-m");
	run_argv_add(&qa, "%u", o.mem_mb);
	run_argv_add(&qa, "-nodefaults");
	run_argv_add(&qa, "-display");
	run_argv_add(&qa, "none");
	run_argv_add(&qa, "-serial");
	run_argv_add(&qa, "stdio");
	run_argv_add(&qa, "-no-reboot");
	run_argv_add(&qa, "-kernel");
	run_argv_add(&qa, "%s", guest.kernel);
	run_argv_add(&qa, "-initrd");
	run_argv_add(&qa, "%s", guest.initrd);
	run_argv_add(&qa, "-append");
	if (o.exec)
		run_argv_add(&qa, "%s", guest.append);
	else
		run_argv_add(&qa, "%s%s antfarm.cmd=\"%s\"", guest.append,
			use_disk ? " antfarm.disk=vda" : "", gcmd);
	if (use_disk) {
		/* The cached image stays as built: the guest's writes go to a
		 * temporary overlay that QEMU drops at exit. */
		run_argv_add(&qa, "-drive");
		run_argv_add(&qa, "file=%s,if=virtio,format=raw,snapshot=on,"
			"cache=unsafe", e_disk ? e_disk : "");
	}
	run_argv_add(&qa, "-object");
	run_argv_add(&qa, "memory-backend-file,id=ram0,size=%uM,mem-path=%s,share=on",
		o.mem_mb, e_ram ? e_ram : "");
	run_argv_add(&qa, "-machine");
	run_argv_add(&qa, "memory-backend=ram0");
	run_argv_add(&qa, "-plugin");
	{
		char extra[1024] = "";
		size_t off = 0;
		if (guest.frame_pointer)
			off += (size_t)snprintf(extra + off, sizeof(extra) - off,
						",framepointer=on");
		for (size_t i = 0; i < o.n_plugin_opts && off < sizeof(extra);
		     i++)
			off += (size_t)snprintf(extra + off, sizeof(extra) - off,
						",%s", o.plugin_opts[i]);
		run_argv_add(&qa, "%s,ram=%s,ramsize=%uM,events=unix:%s,format=%s,"
			"truth=%s,trace=%s,quiet=%s,guest=%s%s",
			e_plugin ? e_plugin : "", e_ram ? e_ram : "", o.mem_mb,
			e_sock ? e_sock : "",
			o.format == CLI_FMT_JSONL ? "jsonl" : "text",
			o.events & EVM_TRUTH ? "on" : "off",
			e_trace ? e_trace : "", o.verbose ? "off" : "on",
			e_desc ? e_desc : "", extra);
	}
	free(e_ram);
	free(e_trace);
	free(e_sock);
	free(e_plugin);
	free(e_desc);
	free(e_disk);
	if (qa.oom) {
		cli_error("run: out of memory");
		rc = CLI_EXIT_INPUT;
		goto out;
	}
	if (o.verbose) {
		fputs("antfarm: run:", stderr);
		for (size_t i = 0; i < qa.n; i++)
			fprintf(stderr, " '%s'", qa.v[i]);
		fputc('\n', stderr);
	}
	fflush(stdout);
	int64_t t0 = run_now_ms();
	int timed_out = 0;
	rc = drive_qemu(qa.v, &o, &seen, &timed_out);
	if (rc)
		goto out;
	int st = S.qemu.status;
	if (o.verbose)
		fprintf(stderr, "antfarm: run: QEMU ran %.1f s\n",
			(double)(run_now_ms() - t0) / 1000.0);
	if (o.verbose && seen.plugin_summary[0])
		fprintf(stderr, "antfarm: run: plugin %s\n",
			seen.plugin_summary);

	/* 5. how it ended */
	if (timed_out) {
		show_console_tail(&seen);
		cli_error("run: the guest did not finish within %u s; QEMU was "
			  "stopped (--timeout sets the limit)", o.timeout_s);
		rc = CLI_EXIT_INPUT;
		goto out;
	}
	if (S.ev_fd < 0 && S.listen_fd >= 0 &&
	    !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
		/* It never got as far as loading the plugin. */
		cli_error("run: QEMU failed to start: %s",
			  seen.qemu_err[0] ? seen.qemu_err :
			  seen.qemu_last[0] ? seen.qemu_last : "no message");
		rc = CLI_EXIT_INPUT;
		goto out;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		show_console_tail(&seen);
		if (WIFSIGNALED(st))
			cli_error("run: QEMU died of signal %d%s%s",
				  WTERMSIG(st), seen.qemu_last[0] ? ": " : "",
				  seen.qemu_last);
		else
			cli_error("run: QEMU exited with status %d%s%s",
				  WEXITSTATUS(st),
				  seen.qemu_err[0] || seen.qemu_last[0] ? ": " :
									  "",
				  seen.qemu_err[0] ? seen.qemu_err :
						     seen.qemu_last);
		rc = CLI_EXIT_INPUT;
		goto out;
	}
	if (S.listen_fd >= 0) {
		cli_error("run: the antfarm plugin never connected (%s)",
			  seen.qemu_err[0] ? seen.qemu_err : "no message");
		rc = CLI_EXIT_INPUT;
		goto out;
	}
	if (seen.end_status < 0 || seen.guest_error[0]) {
		show_console_tail(&seen);
		if (seen.guest_error[0])
			cli_error("run: the guest reported an error: %s",
				  seen.guest_error);
		else if (seen.panic[0])
			cli_error("run: the guest kernel panicked: %s",
				  seen.panic);
		else if (!seen.begun)
			cli_error("run: the guest stopped before its command "
				  "started (no 'antfarm: begin' line)");
		else
			cli_error("run: the guest stopped before its command "
				  "finished (no 'antfarm: end' line)");
		rc = CLI_EXIT_INPUT;
		goto out;
	}

	/* 6. the score */
	rc = evaluate(&o, &seen, label, what);
	if (rc == 0 && seen.end_status != 0) {
		show_console_tail(&seen);
		cli_error("run: the guest command exited with status %d",
			  seen.end_status);
		rc = CLI_EXIT_INPUT;
	}
	if (cli_finish_output() != CLI_EXIT_OK)
		rc = CLI_EXIT_INPUT;
out:
	run_argv_free(&qa);
	if (rc == RUN_INTERRUPTED || run_signal_caught())
		return die_of_signal();
	cleanup();
	return rc;
}

const struct cli_cmd cli_cmd_run = {
	.name = "run",
	.summary = "boot a guest under QEMU, infer its processes live, score",
	.usage =
		"usage: antfarm run [--arch x86_64|i386|i386-pae] [--cpu MODEL]\n"
		"           [--smp N] [--mem MB] [--workload W | --exec CMD]\n"
		"           [--add FILE]... [--record TRACE] [--format text|jsonl]\n"
		"           [--summary text|json|csv] [--events LIST]\n"
		"           [--timeout S] [--verbose] [more options below]\n"
		"\n"
		"Boots a Debian guest under QEMU (TCG) with the antfarm plugin,\n"
		"runs a workload once the guest's ground-truth module is armed,\n"
		"prints the processes antfarm infers from the guest's MMU as\n"
		"they happen, and at the end scores the run against the guest's\n"
		"own account (as 'antfarm eval' does: a row like the paper's\n"
		"Table 2, false negatives and positives, lag). The first run\n"
		"installs what is missing (QEMU 10 from bookworm-backports, build\n"
		"tools; needs root) and builds the guest from Debian packages\n"
		"(cached in ~/.cache/antfarm).\n"
		"\n"
		"  -a, --arch A       x86_64 (default; 4-level paging, 5-level\n"
		"                     with --cpu max), i386 (two-level paging),\n"
		"                     i386-pae (three-level)\n"
		"  -c, --cpu MODEL    QEMU CPU model, e.g. max (5-level paging),\n"
		"                     max,vendor=GenuineIntel (5-level with KPTI)\n"
		"  -s, --smp N        vCPUs (default 1); also make -j N for\n"
		"                     --workload compile\n"
		"  -m, --mem MB       guest RAM (default 512; compile 1024)\n"
		"  -w, --workload W   fork[:N], forkexec[:N], vforkexec[:N]: N\n"
		"                     processes (default 200) made --rate per\n"
		"                     second (default 50), each living --life\n"
		"                     seconds (default 0.1); load[:K]: the lag\n"
		"                     workload with K CPU-bound processes (default\n"
		"                     10); pagetouch[:N]: N runs touching 100 MB\n"
		"                     (default 10); compile[:bash|:quick]: make\n"
		"                     -j N (N = --smp) of bash (default; the\n"
		"                     paper's compile) or, quick, of dash, from\n"
		"                     Debian's source packages configured when\n"
		"                     the compile guest's disk was built (first\n"
		"                     use builds it: debootstrap, a few minutes,\n"
		"                     root). Default forkexec:200\n"
		"  -e, --exec CMD     run CMD (sh syntax) in the guest instead\n"
		"  -A, --add FILE     copy FILE into the guest's /bin (repeatable)\n"
		"  -r, --record TRACE keep the trace (for antfarm replay/eval/dump)\n"
		"  -f, --format F     live lines: text (default) or jsonl\n"
		"  -S, --summary F    text (default); json: one object alone on\n"
		"                     the last line of stdout; csv\n"
		"      --events LIST  live lines shown: create,exit,switch,truth,\n"
		"                     all or none (default create,exit)\n"
		"      --timeout S    stop QEMU after S seconds (default 600;\n"
		"                     compile 7200)\n"
		"  -v, --verbose      show the guest console, QEMU's messages and\n"
		"                     progress on stderr\n"
		"      --console FILE write the guest console to FILE\n"
		"      --rate R, --life T   see --workload\n"
		"      --plugin-opt K=V     extra plugin option (plugin/README.md)\n"
		"      --backports    guest kernel from bookworm-backports (6.12)\n"
		"      --no-install   do not run scripts/deps.sh\n"
		"\n"
		"Environment: ANTFARM_PLUGIN, ANTFARM_BUILD_GUEST, ANTFARM_DEPS\n"
		"('none' skips it), ANTFARM_BUILD_ROOTFS, ANTFARM_QEMU,\n"
		"ANTFARM_SHM_DIR (default\n"
		"/dev/shm), ANTFARM_GUEST_KERNEL + ANTFARM_GUEST_INITRD (a ready\n"
		"guest). The console is shown on failure; exit status 0 when the\n"
		"guest's command succeeded and the run was scored, 1 otherwise,\n"
		"2 for a bad command line.\n",
	.run = run_run,
};
