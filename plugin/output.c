/*
 * plugin/output.c - the QEMU plugin's event stream (see output.h): a small
 * line formatter (no stdio, no allocation) over a fixed buffer, and writers
 * for files and non-blocking Unix sockets.
 */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* One line being built; too long a line is cut (never happens with the
 * fixed shapes we print). */
struct line {
	char b[1024]; /* text */
	size_t n;     /* length */
};

static void put(struct line *l, const char *s)
{
	while (*s && l->n < sizeof(l->b) - 1)
		l->b[l->n++] = *s++;
}

static void put_u64(struct line *l, uint64_t v)
{
	char t[24];
	size_t k = 0;

	do {
		t[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (k && l->n < sizeof(l->b) - 1)
		l->b[l->n++] = t[--k];
}

static void put_hex(struct line *l, uint64_t v)
{
	static const char dig[] = "0123456789abcdef";
	char t[20];
	size_t k = 0;

	do {
		t[k++] = dig[v & 15];
		v >>= 4;
	} while (v);
	put(l, "0x");
	while (k && l->n < sizeof(l->b) - 1)
		l->b[l->n++] = t[--k];
}

/* An address-space id: hex, or null/none for AF_ASID_NONE. */
static void put_asid(struct line *l, int json, uint64_t a)
{
	if (a == AF_ASID_NONE) {
		put(l, json ? "null" : "none");
		return;
	}
	if (json)
		put(l, "\"");
	put_hex(l, a);
	if (json)
		put(l, "\"");
}

/* ", key": in JSON, " key=" in text. */
static void key(struct line *l, int json, const char *k)
{
	put(l, json ? ",\"" : " ");
	put(l, k);
	put(l, json ? "\":" : "=");
}

static int write_all_blocking(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Writes what it can of the buffer without waiting (sockets), or all of it
 * (files). */
static void drain(struct af_out *o)
{
	size_t off = 0;

	if (o->fd < 0 || o->dead || !o->used)
		return;
	if (!o->is_socket) {
		if (write_all_blocking(o->fd, o->buf, o->used) < 0)
			o->dead = 1;
		o->used = 0;
		return;
	}
	while (off < o->used) {
		ssize_t w = send(o->fd, o->buf + off, o->used - off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w <= 0) {
			o->dead = 1;
			o->used = 0;
			return;
		}
		off += (size_t)w;
	}
	memmove(o->buf, o->buf + off, o->used - off);
	o->used -= off;
}

static void emit(struct af_out *o, struct line *l)
{
	if (o->fd < 0)
		return;
	l->b[l->n++] = '\n';
	if (o->dead) {
		o->dropped++;
		return;
	}
	if (o->used + l->n > sizeof(o->buf))
		drain(o);
	if (o->used + l->n > sizeof(o->buf)) {
		o->dropped++; /* slow socket reader: drop the whole line */
		return;
	}
	memcpy(o->buf + o->used, l->b, l->n);
	o->used += l->n;
	o->lines++;
	/* Sockets are live views: push each line out at once. */
	if (o->is_socket)
		drain(o);
}

int af_out_open(struct af_out *o, const char *spec, int format,
		const char **why)
{
	memset(o, 0, offsetof(struct af_out, buf));
	o->fd = -1;
	o->format = format;
	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un sa;
		const char *path = spec + 5;
		int fd;

		if (strlen(path) >= sizeof(sa.sun_path) || !*path) {
			*why = "unix socket path empty or too long";
			return -EINVAL;
		}
		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		memcpy(sa.sun_path, path, strlen(path));
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			*why = "cannot create a unix socket";
			return -errno;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			int e = errno;
			close(fd);
			*why = "cannot connect to the unix socket (is a reader "
			       "listening?)";
			return -e;
		}
		o->fd = fd;
		o->is_socket = 1;
		o->own_fd = 1;
		return 0;
	}
	if (strcmp(spec, "stderr") == 0) {
		o->fd = 2;
		return 0;
	}
	o->fd = open(spec, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (o->fd < 0) {
		*why = "cannot create the events file";
		return -errno;
	}
	o->own_fd = 1;
	return 0;
}

const char *af_truth_name(unsigned kind)
{
	static const char *const n[] = {
		NULL, "fork", "exec", "exit", "as_create", "as_destroy",
		"switch", "begin", "end", "vfork",
	};
	if (kind < sizeof(n) / sizeof(n[0]) && n[kind])
		return n[kind];
	return "unknown";
}

void af_out_event(struct af_out *o, const struct af_event *ev)
{
	struct line l = { .n = 0 };
	int json = o->format == AF_OUT_JSONL;

	if (o->fd < 0)
		return;
	if (json) {
		put(&l, "{\"event\":\"");
		put(&l, af_event_kind_name(ev->kind));
		put(&l, "\"");
	} else {
		put(&l, af_event_kind_name(ev->kind));
	}
	key(&l, json, "vcpu");
	put_u64(&l, ev->vcpu);
	key(&l, json, "time_ns");
	put_u64(&l, ev->time_ns);
	key(&l, json, "icount");
	put_u64(&l, ev->icount);
	key(&l, json, "asid");
	put_asid(&l, json, ev->asid);
	if (ev->kind == AF_EV_SWITCH) {
		key(&l, json, "prev_asid");
		put_asid(&l, json, ev->prev_asid);
	}
	key(&l, json, "serial");
	put_u64(&l, ev->serial);
	if (json)
		put(&l, "}");
	emit(o, &l);
}

void af_out_truth(struct af_out *o, const struct af_truth *t)
{
	struct line l = { .n = 0 };
	int json = o->format == AF_OUT_JSONL;

	if (o->fd < 0)
		return;
	if (json) {
		put(&l, "{\"truth\":\"");
		put(&l, af_truth_name(t->kind));
		put(&l, "\"");
	} else {
		put(&l, "truth ");
		put(&l, af_truth_name(t->kind));
	}
	key(&l, json, "vcpu");
	put_u64(&l, t->vcpu);
	key(&l, json, "time_ns");
	put_u64(&l, t->time_ns);
	key(&l, json, "pid");
	put_u64(&l, t->pid);
	key(&l, json, "ppid");
	put_u64(&l, t->ppid);
	key(&l, json, "asid");
	put_asid(&l, json, t->asid);
	if (json)
		put(&l, "}");
	emit(o, &l);
}

void af_out_summary(struct af_out *o, const char *const *names,
		    const uint64_t *values, size_t n)
{
	struct line l = { .n = 0 };
	int json = o->format == AF_OUT_JSONL;

	if (o->fd < 0)
		return;
	put(&l, json ? "{\"summary\":{" : "summary");
	for (size_t i = 0; i < n; i++) {
		if (json) {
			put(&l, i ? ",\"" : "\"");
			put(&l, names[i]);
			put(&l, "\":");
		} else {
			put(&l, " ");
			put(&l, names[i]);
			put(&l, "=");
		}
		put_u64(&l, values[i]);
	}
	if (json)
		put(&l, "}}");
	emit(o, &l);
}

void af_out_flush(struct af_out *o)
{
	drain(o);
}

void af_out_close(struct af_out *o)
{
	if (o->fd < 0)
		return;
	if (o->is_socket) {
		/* give a slow reader up to ~1 s to take the rest */
		for (int i = 0; i < 100 && o->used && !o->dead; i++) {
			struct pollfd p = { .fd = o->fd, .events = POLLOUT };
			poll(&p, 1, 10);
			drain(o);
		}
		o->dropped += o->used ? 1 : 0;
		o->used = 0;
	} else {
		drain(o);
	}
	if (o->own_fd)
		close(o->fd);
	o->fd = -1;
}
