/*
 * blockserver/nbd-server.c - antfarm-blockserver: a small NBD server on a
 * Unix socket in front of the block server's core (bs.h), taking the same
 * KEY=VALUE settings as the nbdkit plugin (bs_config_set), without nbdkit.
 *
 *   antfarm-blockserver -U SOCKET [--threads N] [--stats FILE] KEY=VALUE...
 *
 * Why: nbdkit 1.32.5 (Debian 12) aborts the whole server when a client dies
 * with several replies of its connection pending (docs/blockserver.md).
 * Here a connection is one reader thread plus up to --threads worker
 * threads: the reader takes requests off the socket (the protocol is in
 * nbd-proto.c) and queues them; each worker serves one through the core
 * (bs_read/bs_write/bs_flush block until the modelled completion, so a
 * connection has up to N requests in the scheduler at once) and sends its
 * reply under the connection's send lock. When a send fails or the client
 * hangs up, the connection is marked dead: requests already queued still
 * complete in the core, their replies are dropped, and the reader closes
 * the socket only after the last one is done. Nothing else is shared
 * between connections except the core.
 *
 * Bounds: at most --max-clients connections (more are closed at once);
 * a handshake must finish within --handshake-timeout seconds; per
 * connection at most --threads requests and CONN_BYTES payload bytes are
 * held at once (the reader stops reading until there is room), and request
 * buffers larger than RETAIN_BYTES are released after use.
 *
 * SIGINT/SIGTERM: stop accepting, stop reading requests (shutdown(SHUT_RD)
 * of every connection), let requests already read finish and be answered,
 * then stop the core (which writes the stats file) and exit 0. Replies
 * that cannot be sent within STOP_GRACE_S seconds are dropped.
 */
#include "blockserver/bs.h"
#include "blockserver/nbd-proto.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PROG "antfarm-blockserver"
#define DEFAULT_THREADS 16u
#define MAX_THREADS 256u
#define DEFAULT_MAX_CLIENTS 64u
#define MAX_MAX_CLIENTS 4096u
#define DEFAULT_HS_TIMEOUT 30u
#define CONN_BYTES (64ull << 20)  /* payload bytes held per connection */
#define RETAIN_BYTES (4u << 20)   /* larger request buffers are freed */
#define STOP_GRACE_S 30           /* wait for stuck replies at stop */
#define THREAD_STACK (512u << 10) /* stack of connection threads */
#define SKIP_CHUNK 16384u         /* refused payload is read in pieces */

/* Command-line settings. */
struct opts {
	const char *sock;        /* -U: Unix socket path */
	const char *pidfile;     /* -P: written once listening, or NULL */
	unsigned threads;        /* requests in flight per connection */
	unsigned max_clients;    /* connections at once */
	unsigned hs_timeout;     /* seconds for a handshake */
	int readonly;            /* -r: refuse writes on every export */
	int verbose;             /* -v: log connections and protocol errors */
	int exit_with_parent;    /* stop when the parent process exits */
};

struct conn;

/* One request of a connection: queued, being served, or free. */
struct slot {
	struct conn *c;          /* its connection */
	struct slot *next;       /* in the free list or the queue */
	enum nbd_action act;     /* NBD_ACT_READ, _WRITE or _FLUSH */
	uint64_t handle;         /* echoed in the reply */
	uint64_t offset;         /* bytes */
	uint32_t length;         /* bytes */
	int fua;                 /* write with FUA */
	void *buf;               /* payload (read or write), cap bytes */
	size_t cap;              /* allocated size of buf */
};

/* One client connection. */
struct conn {
	int fd;                  /* the socket */
	unsigned idx;            /* export (after the handshake) */
	uint16_t tflags;         /* its transmission flags */
	unsigned table_pos;      /* index in the server's table */
	pthread_mutex_t mu;      /* guards the fields below up to send_mu */
	pthread_cond_t cv_work;  /* workers: work queued or closing */
	pthread_cond_t cv_free;  /* reader: a slot came back */
	struct slot *slots;      /* --threads slots */
	struct slot *free_list;  /* unused slots */
	struct slot *q_head;     /* queued, oldest first */
	struct slot *q_tail;     /* last queued */
	unsigned q_len;          /* queued, not yet taken by a worker */
	unsigned in_flight;      /* slots not free */
	uint64_t in_bytes;       /* payload bytes of those */
	unsigned n_workers;      /* worker threads started */
	unsigned idle_workers;   /* waiting for work */
	pthread_t *workers;      /* their ids (--threads entries) */
	int closing;             /* reader done: workers exit when idle */
	pthread_mutex_t send_mu; /* one reply on the socket at a time */
	atomic_int dead;         /* a send failed: drop further replies */
};

/* The server. */
static struct {
	struct opts o;                          /* settings */
	struct bs_server *bs;                   /* the core */
	struct nbd_export ex[BS_MAX_EXPORTS];   /* exports as offered */
	char desc[BS_MAX_EXPORTS][64];          /* their descriptions */
	struct nbd_offer offer;                 /* what the handshake offers */
	pthread_attr_t tattr;                   /* small-stack threads */
	pthread_mutex_t mu;                     /* guards the fields below */
	pthread_cond_t cv;                      /* a connection thread ended */
	struct conn **table;                    /* live connections */
	unsigned n_conns;                       /* entries in table in use */
	unsigned n_threads;                     /* connection threads alive */
	int stopping;                           /* SIGINT/SIGTERM seen */
	uint64_t accepted, refused;             /* connections */
	uint64_t protocol_errors, dead_clients; /* how they ended */
} S;

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, PROG ": %s\n", line);
}

/* ---- socket I/O ---- */

static int sock_read(void *ctx, void *buf, size_t n)
{
	struct conn *c = ctx;
	char *p = buf;
	while (n) {
		ssize_t k = recv(c->fd, p, n, 0);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK
				       ? -ETIMEDOUT
				       : -errno;
		}
		if (k == 0)
			return -ECONNRESET;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Sends two pieces as one message (header and payload). */
static int sock_send2(int fd, const void *a, size_t alen, const void *b,
		      size_t blen)
{
	struct iovec iov[2] = { { (void *)a, alen }, { (void *)b, blen } };
	struct msghdr m;
	memset(&m, 0, sizeof(m));
	m.msg_iov = iov;
	m.msg_iovlen = blen ? 2 : 1;
	while (iov[0].iov_len || iov[1].iov_len) {
		ssize_t k = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK
				       ? -ETIMEDOUT
				       : -errno;
		}
		if (k == 0)
			return -EIO;
		size_t left = (size_t)k;
		for (int i = 0; i < 2; i++) {
			size_t t = left < iov[i].iov_len ? left
							 : iov[i].iov_len;
			iov[i].iov_base = (char *)iov[i].iov_base + t;
			iov[i].iov_len -= t;
			left -= t;
		}
		if (iov[0].iov_len == 0) {
			m.msg_iov = &iov[1];
			m.msg_iovlen = 1;
		}
	}
	return 0;
}

static int sock_write(void *ctx, const void *buf, size_t n)
{
	struct conn *c = ctx;
	return sock_send2(c->fd, buf, n, NULL, 0);
}

static void set_timeouts(int fd, unsigned seconds)
{
	struct timeval tv = { .tv_sec = (time_t)seconds, .tv_usec = 0 };
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Marks the connection dead (replies dropped from now on) and wakes its
 * reader. Under send_mu or not: only ever goes from 0 to 1. */
static void mark_dead(struct conn *c)
{
	if (atomic_exchange(&c->dead, 1) == 0) {
		shutdown(c->fd, SHUT_RDWR);
		pthread_mutex_lock(&S.mu);
		S.dead_clients++;
		pthread_mutex_unlock(&S.mu);
	}
}

/* Sends a simple reply (and a read's data), unless the connection is
 * dead. Any thread of the connection. */
static void send_reply(struct conn *c, uint64_t handle, uint32_t error,
		       const void *data, uint32_t len)
{
	uint8_t hdr[NBD_REPLY_BYTES];
	nbd_encode_reply(hdr, handle, error);
	pthread_mutex_lock(&c->send_mu);
	if (!atomic_load(&c->dead) &&
	    sock_send2(c->fd, hdr, sizeof(hdr), data, data ? len : 0))
		mark_dead(c);
	pthread_mutex_unlock(&c->send_mu);
}

/* ---- workers ---- */

/* Serves one request through the core and answers it. */
static void serve_one(struct slot *s)
{
	struct conn *c = s->c;
	int rc;
	switch (s->act) {
	case NBD_ACT_READ:
		rc = bs_read(S.bs, c->idx, s->buf, s->length, s->offset);
		break;
	case NBD_ACT_WRITE:
		rc = bs_write(S.bs, c->idx, s->buf, s->length, s->offset,
			      s->fua);
		break;
	default:
		rc = bs_flush(S.bs, c->idx);
		break;
	}
	uint32_t err = nbd_error_of_errno(rc);
	send_reply(c, s->handle, err,
		   s->act == NBD_ACT_READ && !err ? s->buf : NULL, s->length);
}

/* Gives a slot back. Under c->mu. */
static void put_slot(struct conn *c, struct slot *s)
{
	c->in_flight--;
	c->in_bytes -= s->act == NBD_ACT_FLUSH ? 0 : s->length;
	if (s->cap > RETAIN_BYTES) {
		free(s->buf);
		s->buf = NULL;
		s->cap = 0;
	}
	s->next = c->free_list;
	c->free_list = s;
	pthread_cond_signal(&c->cv_free);
}

static void *worker_main(void *arg)
{
	struct conn *c = arg;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		c->idle_workers++;
		while (!c->q_head && !c->closing)
			pthread_cond_wait(&c->cv_work, &c->mu);
		c->idle_workers--;
		struct slot *s = c->q_head;
		if (!s)
			break; /* closing, nothing left */
		c->q_head = s->next;
		if (!c->q_head)
			c->q_tail = NULL;
		c->q_len--;
		pthread_mutex_unlock(&c->mu);
		serve_one(s);
		pthread_mutex_lock(&c->mu);
		put_slot(c, s);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* Queues a filled slot, starting a worker if none is free. Returns 0, or
 * -1 if no worker exists to serve it (then the slot is given back). */
static int enqueue(struct conn *c, struct slot *s)
{
	pthread_mutex_lock(&c->mu);
	s->next = NULL;
	if (c->q_tail)
		c->q_tail->next = s;
	else
		c->q_head = s;
	c->q_tail = s;
	c->q_len++;
	if (c->q_len > c->idle_workers && c->n_workers < S.o.threads &&
	    pthread_create(&c->workers[c->n_workers], &S.tattr, worker_main,
			   c) == 0)
		c->n_workers++;
	if (c->n_workers == 0) {
		/* Not even one worker: undo. */
		c->q_head = c->q_tail = NULL;
		c->q_len = 0;
		put_slot(c, s);
		pthread_mutex_unlock(&c->mu);
		return -1;
	}
	pthread_cond_signal(&c->cv_work);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

/* Waits for a free slot with room for `bytes` more payload (a request
 * is always let in when nothing else is in flight). */
static struct slot *take_slot(struct conn *c, uint32_t bytes)
{
	pthread_mutex_lock(&c->mu);
	while (!c->free_list ||
	       (c->in_flight && c->in_bytes + bytes > CONN_BYTES))
		pthread_cond_wait(&c->cv_free, &c->mu);
	struct slot *s = c->free_list;
	c->free_list = s->next;
	c->in_flight++;
	c->in_bytes += bytes;
	pthread_mutex_unlock(&c->mu);
	return s;
}

/* ---- the reader: one connection ---- */

/* Reads and drops n payload bytes. */
static int skip_payload(struct conn *c, uint32_t n)
{
	uint8_t junk[SKIP_CHUNK];
	while (n) {
		uint32_t k = n < sizeof(junk) ? n : (uint32_t)sizeof(junk);
		int rc = sock_read(c, junk, k);
		if (rc)
			return rc;
		n -= k;
	}
	return 0;
}

/* The transmission phase: read requests until the client disconnects,
 * breaks the protocol, or the server stops; then wait for the requests
 * in flight and the workers. */
static void transmission(struct conn *c)
{
	uint32_t max_block = S.offer.max_block;
	for (;;) {
		uint8_t hb[NBD_REQUEST_BYTES];
		if (sock_read(c, hb, sizeof(hb)))
			break; /* EOF, error, or shut down */
		struct nbd_request r;
		struct nbd_decision d;
		nbd_decode_request(hb, &r);
		nbd_check_request(&r, c->tflags, max_block, &d);
		if (d.act == NBD_ACT_DISC)
			break;
		if (d.act == NBD_ACT_HANGUP) {
			pthread_mutex_lock(&S.mu);
			S.protocol_errors++;
			pthread_mutex_unlock(&S.mu);
			if (S.o.verbose)
				logmsg("export %s: %s: disconnecting",
				       S.ex[c->idx].name, d.why);
			mark_dead(c);
			break;
		}
		if (d.act == NBD_ACT_REFUSE) {
			if (d.skip && skip_payload(c, d.skip))
				break;
			if (S.o.verbose)
				logmsg("export %s: refused: %s",
				       S.ex[c->idx].name, d.why);
			send_reply(c, r.handle, d.error, NULL, 0);
			continue;
		}
		uint32_t bytes = d.act == NBD_ACT_FLUSH ? 0 : r.length;
		struct slot *s = take_slot(c, bytes);
		s->act = d.act;
		s->handle = r.handle;
		s->offset = r.offset;
		s->length = r.length;
		s->fua = d.fua;
		if (bytes > s->cap) {
			free(s->buf);
			s->buf = malloc(bytes);
			s->cap = s->buf ? bytes : 0;
		}
		if (bytes && !s->buf) {
			pthread_mutex_lock(&c->mu);
			put_slot(c, s);
			pthread_mutex_unlock(&c->mu);
			if (d.act == NBD_ACT_WRITE && skip_payload(c, bytes))
				break;
			send_reply(c, r.handle, NBD_ENOMEM, NULL, 0);
			continue;
		}
		if (d.act == NBD_ACT_WRITE && sock_read(c, s->buf, bytes)) {
			pthread_mutex_lock(&c->mu);
			put_slot(c, s);
			pthread_mutex_unlock(&c->mu);
			break;
		}
		if (enqueue(c, s)) {
			logmsg("cannot start a worker thread");
			break;
		}
	}
	/* No more requests: the queued ones still run (their replies go out
	 * unless the connection is dead); then the workers end. */
	pthread_mutex_lock(&c->mu);
	c->closing = 1;
	pthread_cond_broadcast(&c->cv_work);
	while (c->in_flight)
		pthread_cond_wait(&c->cv_free, &c->mu);
	pthread_mutex_unlock(&c->mu);
	for (unsigned i = 0; i < c->n_workers; i++)
		pthread_join(c->workers[i], NULL);
}

static void conn_free(struct conn *c)
{
	if (!c)
		return;
	if (c->slots)
		for (unsigned i = 0; i < S.o.threads; i++)
			free(c->slots[i].buf);
	free(c->slots);
	free(c->workers);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->send_mu);
	pthread_cond_destroy(&c->cv_work);
	pthread_cond_destroy(&c->cv_free);
	free(c);
}

static struct conn *conn_new(int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = fd;
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->send_mu, NULL);
	pthread_cond_init(&c->cv_work, NULL);
	pthread_cond_init(&c->cv_free, NULL);
	atomic_init(&c->dead, 0);
	c->slots = calloc(S.o.threads, sizeof(*c->slots));
	c->workers = calloc(S.o.threads, sizeof(*c->workers));
	if (!c->slots || !c->workers) {
		conn_free(c);
		return NULL;
	}
	for (unsigned i = 0; i < S.o.threads; i++) {
		c->slots[i].c = c;
		c->slots[i].next = c->free_list;
		c->free_list = &c->slots[i];
	}
	return c;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct nbd_io io = { .ctx = c, .read = sock_read, .write = sock_write };
	struct nbd_offer offer = S.offer;
	struct nbd_hs_result res;

	pthread_mutex_lock(&S.mu);
	offer.shutting_down = S.stopping;
	pthread_mutex_unlock(&S.mu);
	set_timeouts(c->fd, S.o.hs_timeout);
	enum nbd_hs_status st = nbd_handshake(&io, &offer, &res);
	if (st == NBD_HS_TRANSMISSION) {
		set_timeouts(c->fd, 0);
		c->idx = res.index;
		c->tflags = S.ex[c->idx].tflags;
		if (S.o.verbose)
			logmsg("client on export %s", S.ex[c->idx].name);
		transmission(c);
	} else {
		if (st == NBD_HS_PROTOCOL) {
			pthread_mutex_lock(&S.mu);
			S.protocol_errors++;
			pthread_mutex_unlock(&S.mu);
		}
		if (S.o.verbose)
			logmsg("handshake ended: %s", res.why);
	}

	pthread_mutex_lock(&S.mu);
	S.table[c->table_pos] = S.table[--S.n_conns];
	S.table[c->table_pos]->table_pos = c->table_pos;
	pthread_mutex_unlock(&S.mu);
	close(c->fd);
	conn_free(c);
	pthread_mutex_lock(&S.mu);
	S.n_threads--;
	pthread_cond_broadcast(&S.cv);
	pthread_mutex_unlock(&S.mu);
	return NULL;
}

/* ---- listening, signals, shutdown ---- */

/* Binds and listens on path; a stale socket (nobody accepting) is
 * replaced, a live one or any other file is an error. */
static int listen_unix(const char *path)
{
	struct sockaddr_un a;
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a.sun_path)) {
		logmsg("-U %s: path too long (at most %zu bytes)", path,
		       sizeof(a.sun_path) - 1);
		return -1;
	}
	strcpy(a.sun_path, path);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			logmsg("-U %s: exists and is not a socket", path);
			return -1;
		}
		int t = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (t >= 0 && connect(t, (struct sockaddr *)&a, sizeof(a)) == 0) {
			close(t);
			logmsg("-U %s: a server is already listening there",
			       path);
			return -1;
		}
		if (t >= 0)
			close(t);
		unlink(path);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		logmsg("socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(fd, 64)) {
		logmsg("-U %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int write_pidfile(const char *path)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp))
		return -1;
	FILE *f = fopen(tmp, "we");
	if (!f)
		return -1;
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) || rename(tmp, path)) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Accepts one connection and starts its thread (or refuses it). */
static void accept_one(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		/* Out of descriptors: the connection stays queued; do not
		 * spin on it. Anything else (ECONNABORTED...): next one. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			struct timespec ts = { 0, 100 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		return;
	}
	pthread_mutex_lock(&S.mu);
	if (S.stopping || S.n_conns >= S.o.max_clients) {
		S.refused++;
		pthread_mutex_unlock(&S.mu);
		if (S.o.verbose)
			logmsg("connection refused: %u clients already",
			       S.o.max_clients);
		close(fd);
		return;
	}
	pthread_mutex_unlock(&S.mu);
	struct conn *c = conn_new(fd);
	if (!c) {
		logmsg("out of memory for a connection");
		close(fd);
		return;
	}
	pthread_mutex_lock(&S.mu);
	c->table_pos = S.n_conns;
	S.table[S.n_conns++] = c;
	S.n_threads++;
	S.accepted++;
	pthread_t t;
	if (pthread_create(&t, &S.tattr, conn_main, c)) {
		S.table[c->table_pos] = S.table[--S.n_conns];
		S.table[c->table_pos]->table_pos = c->table_pos;
		S.n_threads--;
		pthread_mutex_unlock(&S.mu);
		logmsg("cannot start a connection thread");
		close(fd);
		conn_free(c);
		return;
	}
	pthread_detach(t);
	pthread_mutex_unlock(&S.mu);
}

/* Waits until every connection thread has ended, or until deadline
 * (CLOCK_REALTIME seconds; 0: no limit). 0 if all ended. */
static int wait_threads(time_t deadline)
{
	pthread_mutex_lock(&S.mu);
	while (S.n_threads) {
		if (deadline) {
			struct timespec ts = { .tv_sec = deadline, .tv_nsec = 0 };
			if (pthread_cond_timedwait(&S.cv, &S.mu, &ts) ==
			    ETIMEDOUT)
				break;
		} else {
			pthread_cond_wait(&S.cv, &S.mu);
		}
	}
	int left = S.n_threads != 0;
	pthread_mutex_unlock(&S.mu);
	return left;
}

/* Stops reading on every connection (SHUT_RD, or SHUT_RDWR when
 * `hard`): readers see end of file, finish their requests and close. */
static void shutdown_all(int hard)
{
	pthread_mutex_lock(&S.mu);
	S.stopping = 1;
	for (unsigned i = 0; i < S.n_conns; i++)
		shutdown(S.table[i]->fd, hard ? SHUT_RDWR : SHUT_RD);
	pthread_mutex_unlock(&S.mu);
}

/* ---- command line ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " -U SOCKET [OPTIONS] KEY=VALUE...\n"
		"NBD server (Unix socket) for guest disks: every export's\n"
		"requests go through one disk scheduler and one modelled disk.\n"
		"Same settings as the nbdkit plugin (nbdkit-antfarm-plugin.so).\n"
		"\n"
		"options:\n"
		"  -U, --unix SOCKET          listen on this Unix socket "
		"(required)\n"
		"  -t, --threads N            requests served at once per "
		"connection\n"
		"                             (default %u, 1..%u)\n"
		"      --stats FILE           same as stats=FILE\n"
		"      --max-clients N        connections at once (default %u);"
		" more\n"
		"                             are closed at once\n"
		"      --handshake-timeout S  seconds a client has for the "
		"handshake\n"
		"                             (default %u)\n"
		"  -r, --read-only            refuse writes (EPERM) on every "
		"export\n"
		"  -P, --pid-file FILE        write the process id here once "
		"listening\n"
		"      --exit-with-parent     stop when the parent process exits\n"
		"  -v, --verbose              log connections and protocol "
		"errors\n"
		"  -f, --foreground           accepted for nbdkit's sake (always"
		" so)\n"
		"  -h, --help                 this help\n"
		"SIGINT or SIGTERM: finish the requests read so far, write the\n"
		"stats, exit 0.\n"
		"\n"
		"settings (KEY=VALUE):\n%s\n",
		DEFAULT_THREADS, MAX_THREADS, DEFAULT_MAX_CLIENTS,
		DEFAULT_HS_TIMEOUT, bs_config_help());
}

static int parse_count(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || errno || *s == '-' || v < lo || v > hi)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, PROG ": %s (try --help)\n", line);
	return 2;
}

enum { OPT_STATS = 256, OPT_MAX_CLIENTS, OPT_HS_TIMEOUT, OPT_EXIT_PARENT };

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "unix", required_argument, NULL, 'U' },
		{ "threads", required_argument, NULL, 't' },
		{ "stats", required_argument, NULL, OPT_STATS },
		{ "max-clients", required_argument, NULL, OPT_MAX_CLIENTS },
		{ "handshake-timeout", required_argument, NULL, OPT_HS_TIMEOUT },
		{ "read-only", no_argument, NULL, 'r' },
		{ "pid-file", required_argument, NULL, 'P' },
		{ "exit-with-parent", no_argument, NULL, OPT_EXIT_PARENT },
		{ "verbose", no_argument, NULL, 'v' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct bs_config cfg;
	char err[512];
	int rc;

	S.o.threads = DEFAULT_THREADS;
	S.o.max_clients = DEFAULT_MAX_CLIENTS;
	S.o.hs_timeout = DEFAULT_HS_TIMEOUT;
	bs_config_init(&cfg);
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":U:t:rP:vfh", lo, NULL)) != -1) {
		switch (c) {
		case 'U':
			S.o.sock = optarg;
			break;
		case 't':
			if (parse_count(optarg, 1, MAX_THREADS, &S.o.threads))
				return usage_error("--threads %s: 1..%u", optarg,
						   MAX_THREADS);
			break;
		case OPT_STATS:
			if (bs_config_set(&cfg, "stats", optarg, err,
					  sizeof(err)))
				return usage_error("--stats: %s", err);
			break;
		case OPT_MAX_CLIENTS:
			if (parse_count(optarg, 1, MAX_MAX_CLIENTS,
					&S.o.max_clients))
				return usage_error("--max-clients %s: 1..%u",
						   optarg, MAX_MAX_CLIENTS);
			break;
		case OPT_HS_TIMEOUT:
			if (parse_count(optarg, 1, 3600, &S.o.hs_timeout))
				return usage_error(
					"--handshake-timeout %s: 1..3600 "
					"seconds", optarg);
			break;
		case 'r':
			S.o.readonly = 1;
			break;
		case 'P':
			S.o.pidfile = optarg;
			break;
		case OPT_EXIT_PARENT:
			S.o.exit_with_parent = 1;
			break;
		case 'v':
			S.o.verbose = 1;
			break;
		case 'f':
			break; /* always in the foreground (as nbdkit -f) */
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			return usage_error("%s needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (!S.o.sock)
		return usage_error("give -U SOCKET");
	for (int i = optind; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq || eq == argv[i])
			return usage_error("'%s': settings are KEY=VALUE",
					   argv[i]);
		*eq = '\0';
		rc = bs_config_set(&cfg, argv[i], eq + 1, err, sizeof(err));
		*eq = '=';
		if (rc) {
			fprintf(stderr, PROG ": %s\n", err);
			bs_config_free(&cfg);
			return 2;
		}
	}
	if (bs_server_new(&cfg, &S.bs, err, sizeof(err))) {
		fprintf(stderr, PROG ": %s\n", err);
		bs_config_free(&cfg);
		return 1;
	}
	bs_config_free(&cfg);

	/* What the handshake offers. */
	unsigned n = bs_export_count(S.bs);
	for (unsigned i = 0; i < n; i++) {
		uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
			     NBD_FLAG_SEND_FUA | NBD_FLAG_CAN_MULTI_CONN;
		if (bs_disk_rotational(S.bs))
			f |= NBD_FLAG_ROTATIONAL;
		if (S.o.readonly || !bs_export_writable(S.bs, i))
			f |= NBD_FLAG_READ_ONLY;
		snprintf(S.desc[i], sizeof(S.desc[i]),
			 "antfarm guest disk, vm %u",
			 (unsigned)bs_export_vm(S.bs, i));
		S.ex[i].name = bs_export_name(S.bs, i);
		S.ex[i].desc = S.desc[i];
		S.ex[i].size = bs_export_size(S.bs, i);
		S.ex[i].tflags = f;
	}
	S.offer.exports = S.ex;
	S.offer.n_exports = n;
	S.offer.max_block = bs_max_request(S.bs);

	/* Signals: SIGINT/SIGTERM through a signalfd in this thread only
	 * (blocked before any thread starts); SIGPIPE never (MSG_NOSIGNAL,
	 * and ignored in case). */
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &ss, SFD_CLOEXEC);
	if (sfd < 0) {
		logmsg("signalfd: %s", strerror(errno));
		bs_server_free(S.bs);
		return 1;
	}
	if (S.o.exit_with_parent) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			kill(getpid(), SIGTERM);
	}

	pthread_mutex_init(&S.mu, NULL);
	pthread_cond_init(&S.cv, NULL);
	pthread_attr_init(&S.tattr);
	pthread_attr_setstacksize(&S.tattr, THREAD_STACK);
	S.table = calloc(S.o.max_clients, sizeof(*S.table));
	int lfd = S.table ? listen_unix(S.o.sock) : -1;
	if (lfd < 0) {
		bs_server_free(S.bs);
		return 1;
	}
	rc = bs_server_start(S.bs);
	if (rc) {
		logmsg("cannot start the dispatcher: %s", strerror(-rc));
		close(lfd);
		unlink(S.o.sock);
		bs_server_free(S.bs);
		return 1;
	}
	if (S.o.pidfile && write_pidfile(S.o.pidfile)) {
		logmsg("-P %s: %s", S.o.pidfile, strerror(errno));
		close(lfd);
		unlink(S.o.sock);
		bs_server_free(S.bs);
		return 1;
	}
	if (S.o.verbose)
		logmsg("listening on %s: %u export(s), %u threads per client",
		       S.o.sock, n, S.o.threads);

	for (;;) {
		struct pollfd p[2] = { { .fd = lfd, .events = POLLIN },
				       { .fd = sfd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			logmsg("poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si) &&
			    S.o.verbose)
				logmsg("signal %u: stopping", si.ssi_signo);
			break;
		}
		if (p[0].revents)
			accept_one(lfd);
	}

	/* Stop: no new clients, no new requests; requests read so far
	 * finish and are answered (within STOP_GRACE_S), then the core. */
	close(lfd);
	unlink(S.o.sock);
	shutdown_all(0);
	if (wait_threads(time(NULL) + STOP_GRACE_S)) {
		logmsg("replies still pending after %d s: dropping them",
		       STOP_GRACE_S);
		shutdown_all(1);
		wait_threads(0);
	}
	rc = bs_server_stop(S.bs);
	int status = 0;
	if (rc) {
		logmsg("stats file: %s", strerror(-rc));
		status = 1;
	}
	if (S.o.verbose)
		logmsg("stopped: %llu connections, %llu refused, %llu "
		       "protocol errors, %llu dead clients",
		       (unsigned long long)S.accepted,
		       (unsigned long long)S.refused,
		       (unsigned long long)S.protocol_errors,
		       (unsigned long long)S.dead_clients);
	bs_server_free(S.bs);
	free(S.table);
	close(sfd);
	if (S.o.pidfile)
		unlink(S.o.pidfile);
	return status;
}
