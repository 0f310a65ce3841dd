/*
 * plugin/output.h - the QEMU plugin's event stream: inferred events and
 * ground-truth events, one per line, as JSON lines or plain text, written to
 * a file, to stderr, or to a Unix stream socket someone listens on.
 *
 * Line formats (see plugin/README.md):
 *   jsonl  {"event":"create","vcpu":0,"time_ns":N,"icount":N,"asid":"0x..",
 *           "prev_asid":"0x.."|null,"serial":N}
 *          {"truth":"fork","vcpu":0,"time_ns":N,"pid":N,"ppid":N,"asid":"0x.."|null}
 *          {"summary":{"name":N,...}}
 *   text   create vcpu=0 time_ns=N icount=N asid=0x.. prev_asid=0x..|none serial=N
 *          truth fork vcpu=0 time_ns=N pid=N ppid=N asid=0x..|none
 *          summary name=N ...
 *
 * Never blocks on a socket: lines are buffered (fixed buffer, no allocation)
 * and written without waiting; when the reader is too slow and the buffer is
 * full, whole lines are dropped and counted. Files are written with ordinary
 * blocking writes. Not thread-safe: the plugin calls it under its lock.
 */
#ifndef AF_PLUGIN_OUTPUT_H
#define AF_PLUGIN_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include <antfarm/engine.h>
#include <antfarm/trace.h>

#define AF_OUT_BUF 65536 /* bytes buffered before a write */

enum af_out_format {
	AF_OUT_JSONL = 0, /* one JSON object per line */
	AF_OUT_TEXT = 1,  /* key=value words */
};

struct af_out {
	int fd;              /* -1: closed or never opened */
	int is_socket;       /* non-blocking socket: drop instead of wait */
	int own_fd;          /* close fd at the end */
	int dead;            /* a write failed for good: discard everything */
	int format;          /* enum af_out_format */
	size_t used;         /* bytes waiting in buf */
	uint64_t lines;      /* lines accepted */
	uint64_t dropped;    /* lines dropped (slow reader, dead stream) */
	char buf[AF_OUT_BUF]; /* pending bytes */
};

/* Opens spec: "unix:PATH" connects to a listening stream socket, "stderr"
 * uses fd 2, anything else is a file created/truncated. Returns 0 or -errno
 * with *why a static reason. */
int af_out_open(struct af_out *o, const char *spec, int format,
		const char **why);

/* One inferred event / one ground-truth event. */
void af_out_event(struct af_out *o, const struct af_event *ev);
void af_out_truth(struct af_out *o, const struct af_truth *t);

/* A summary line from parallel arrays of names and values. */
void af_out_summary(struct af_out *o, const char *const *names,
		    const uint64_t *values, size_t n);

/* Tries to write out what is buffered (sockets: without waiting). */
void af_out_flush(struct af_out *o);

/* Flushes (sockets: waits up to about a second), closes. Safe to repeat. */
void af_out_close(struct af_out *o);

/* Short name of a ground-truth kind ("fork", ...), "unknown" otherwise. */
const char *af_truth_name(unsigned kind);

#endif
