/*
 * cli/run_proc.h - process plumbing for `antfarm run` (cli/cmd_run.c):
 * children started in their own process group with their output on pipes,
 * a signal self-pipe so that a poll() loop wakes on SIGINT/SIGTERM/SIGHUP,
 * and a line splitter for pipes and sockets.
 *
 * Nothing here prints; errors are negative errno values.
 */
#ifndef ANTFARM_CLI_RUN_PROC_H
#define ANTFARM_CLI_RUN_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A child process. */
struct run_child {
	pid_t pid;   /* its pid, also its process-group id; 0: none */
	int out_fd;  /* read end of its stdout pipe, -1 once closed */
	int err_fd;  /* read end of its stderr pipe, -1 once closed */
	int status;  /* wait status, valid once reaped */
	int reaped;  /* 1 once waitpid() has returned it */
};

/* Installs handlers for SIGINT, SIGTERM and SIGHUP that only record the
 * signal and write a byte to a self-pipe, and ignores SIGPIPE. Returns 0 or
 * a negative errno. */
int run_signals_init(void);
/* The self-pipe's read end (poll it for POLLIN), or -1 before init. */
int run_signal_fd(void);
/* The first of those signals caught so far, or 0. */
int run_signal_caught(void);
/* Restores the default actions (before re-raising a caught signal). */
void run_signals_reset(void);

/* A command line being built: malloc'd strings, NULL-terminated. */
struct run_argv {
	char *v[96]; /* arguments, NULL after the last */
	size_t n;    /* how many */
	int oom;     /* an allocation failed or it overflowed */
};

/* Appends one printf-formatted argument (on failure sets a->oom). */
void run_argv_add(struct run_argv *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Frees the arguments; a is empty again. */
void run_argv_free(struct run_argv *a);

/* Starts argv[0] (searched in PATH) with stdin from /dev/null and stdout and
 * stderr on pipes (c->out_fd, c->err_fd; non-blocking, close-on-exec), in a
 * process group of its own. With die_with_parent the child gets SIGKILL if
 * this process dies. Returns 0, or a negative errno (the child could not be
 * created; a failed exec shows as exit status 127 with a message on its
 * stderr). */
int run_spawn(struct run_child *c, char *const argv[], int die_with_parent);

/* Reaps c if it has exited (block: wait for it). Returns 1 if reaped (now
 * or before), 0 if still running, negative errno on error. */
int run_reap(struct run_child *c, int block);

/* Sends sig to c's whole process group (nothing if reaped). */
void run_kill(struct run_child *c, int sig);

/* SIGTERM to the group, waits up to grace_ms, then SIGKILL and reaps. */
void run_stop(struct run_child *c, int grace_ms);

/* Closes c's pipes (if open). */
void run_child_close(struct run_child *c);

/* s with every ',' doubled (QEMU's option syntax), malloc'd (caller frees),
 * or NULL when out of memory. */
char *run_qemu_escape(const char *s);

/* Monotonic clock in milliseconds. */
int64_t run_now_ms(void);

/* Splits a byte stream into lines. */
struct run_lines {
	char buf[8192]; /* bytes not yet returned */
	size_t n;       /* how many */
};

/* Reads what is available from fd (non-blocking) into l and calls
 * fn(ctx, line) for every complete line (the '\n' removed, a trailing '\r'
 * too; NUL bytes become spaces). A line longer than the buffer is passed on
 * in pieces. Returns 1 at end of file (after passing on a last unterminated
 * line), 0 if the stream is still open, negative errno on a read error. */
int run_lines_read(struct run_lines *l, int fd,
		   void (*fn)(void *ctx, char *line), void *ctx);

#endif
