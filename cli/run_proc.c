/*
 * cli/run_proc.c - process plumbing for `antfarm run`: spawning children in
 * their own process group with piped output, the signal self-pipe, stopping
 * children, and splitting streams into lines (contract in run_proc.h).
 */
#include "run_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int sig_pipe[2] = { -1, -1 };     /* self-pipe: read, write end */
static volatile sig_atomic_t sig_caught; /* first signal caught */

static const int handled[] = { SIGINT, SIGTERM, SIGHUP };

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;

	if (!sig_caught)
		sig_caught = sig;
	if (sig_pipe[1] >= 0)
		(void)!write(sig_pipe[1], &b, 1);
	errno = saved;
}

int run_signals_init(void)
{
	struct sigaction sa;

	if (sig_pipe[0] < 0 && pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: waits return EINTR */
	for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
		if (sigaction(handled[i], &sa, NULL) < 0)
			return -errno;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int run_signal_fd(void)
{
	return sig_pipe[0];
}

int run_signal_caught(void)
{
	return sig_caught;
}

void run_signals_reset(void)
{
	for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
		signal(handled[i], SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
}

char *run_qemu_escape(const char *s)
{
	size_t n = strlen(s), k = 0;
	for (size_t i = 0; i < n; i++)
		k += s[i] == ',';
	char *r = malloc(n + k + 1);
	if (!r)
		return NULL;
	for (size_t i = 0, j = 0; i <= n; i++) {
		r[j++] = s[i];
		if (s[i] == ',')
			r[j++] = ',';
	}
	return r;
}

int64_t run_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* In the child: writes a message without stdio. */
static void child_say(const char *a, const char *b)
{
	(void)!write(2, a, strlen(a));
	(void)!write(2, b, strlen(b));
	(void)!write(2, "\n", 1);
}

int run_spawn(struct run_child *c, char *const argv[], int die_with_parent)
{
	int po[2], pe[2];
	pid_t parent = getpid();

	memset(c, 0, sizeof(*c));
	c->out_fd = c->err_fd = -1;
	if (pipe2(po, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		int e = errno;
		close(po[0]);
		close(po[1]);
		return -e;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		return -e;
	}
	if (pid == 0) {
		sigset_t all;

		setpgid(0, 0);
		if (die_with_parent) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(127);
		}
		for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
			signal(handled[i], SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		int nul = open("/dev/null", O_RDONLY);
		if (nul < 0 || dup2(nul, 0) < 0 || dup2(po[1], 1) < 0 ||
		    dup2(pe[1], 2) < 0)
			_exit(127);
		execvp(argv[0], argv);
		child_say("cannot execute ", argv[0]);
		_exit(127);
	}
	setpgid(pid, pid); /* also here: no race with a kill of the group */
	close(po[1]);
	close(pe[1]);
	fcntl(po[0], F_SETFL, fcntl(po[0], F_GETFL) | O_NONBLOCK);
	fcntl(pe[0], F_SETFL, fcntl(pe[0], F_GETFL) | O_NONBLOCK);
	c->pid = pid;
	c->out_fd = po[0];
	c->err_fd = pe[0];
	return 0;
}

int run_reap(struct run_child *c, int block)
{
	if (!c->pid || c->reaped)
		return 1;
	for (;;) {
		pid_t r = waitpid(c->pid, &c->status, block ? 0 : WNOHANG);
		if (r == c->pid) {
			c->reaped = 1;
			return 1;
		}
		if (r == 0)
			return 0;
		if (errno == EINTR) {
			if (!block)
				return 0;
			continue;
		}
		return -errno;
	}
}

void run_kill(struct run_child *c, int sig)
{
	if (c->pid && !c->reaped)
		kill(-c->pid, sig);
}

void run_stop(struct run_child *c, int grace_ms)
{
	if (!c->pid || c->reaped)
		return;
	run_kill(c, SIGTERM);
	int64_t until = run_now_ms() + grace_ms;
	while (run_now_ms() < until) {
		if (run_reap(c, 0) != 0)
			return;
		struct timespec ts = { 0, 20 * 1000000 };
		nanosleep(&ts, NULL);
	}
	run_kill(c, SIGKILL);
	run_reap(c, 1);
}

void run_child_close(struct run_child *c)
{
	if (c->out_fd >= 0)
		close(c->out_fd);
	if (c->err_fd >= 0)
		close(c->err_fd);
	c->out_fd = c->err_fd = -1;
}

/* Passes buf[0..n) on as one line. */
static void give(char *s, size_t n, void (*fn)(void *, char *), void *ctx)
{
	if (n && s[n - 1] == '\r')
		n--;
	s[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0')
			s[i] = ' ';
	fn(ctx, s);
}

int run_lines_read(struct run_lines *l, int fd,
		   void (*fn)(void *ctx, char *line), void *ctx)
{
	for (;;) {
		/* One byte stays free for the terminating NUL. */
		size_t room = sizeof(l->buf) - 1 - l->n;
		ssize_t r = read(fd, l->buf + l->n, room);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		if (r == 0) {
			if (l->n)
				give(l->buf, l->n, fn, ctx);
			l->n = 0;
			return 1;
		}
		l->n += (size_t)r;
		size_t start = 0;
		for (size_t i = 0; i < l->n; i++) {
			if (l->buf[i] != '\n')
				continue;
			give(l->buf + start, i - start, fn, ctx);
			start = i + 1;
		}
		if (start == 0 && l->n == sizeof(l->buf) - 1) {
			/* No newline in a full buffer: pass it on in a piece. */
			give(l->buf, l->n, fn, ctx);
			l->n = 0;
			continue;
		}
		memmove(l->buf, l->buf + start, l->n - start);
		l->n -= start;
	}
}

void run_argv_add(struct run_argv *a, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s || a->n + 1 >= sizeof(a->v) / sizeof(a->v[0])) {
		free(s);
		a->oom = 1;
		return;
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

void run_argv_free(struct run_argv *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	a->n = 0;
	a->v[0] = NULL;
}
