/*
 * blockserver/server.c - the block server's core (bs.h): exports on
 * backing files, one scheduler and one disk model for all of them, the
 * dispatcher thread, request tagging from the association files, and the
 * counters.
 */
#include "blockserver/bs.h"

#include <antfarm/assoc.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000ull
#define ASSOC_RETRY_NS (100 * MS)  /* map a missing file again after */
#define ASSOC_RECHECK_NS (1000 * MS) /* look for a replaced file every */

/* An association file, shared by the exports that name it. */
struct bs_assoc_src {
	char *path;             /* as configured (owned) */
	struct af_assoc *a;     /* mapped, or NULL */
	uint64_t next_try_ns;   /* server clock: next map attempt */
	uint64_t next_check_ns; /* server clock: next replaced-file check */
};

/* One export. */
struct bs_export {
	char *name;                 /* export name (owned) */
	char *file;                 /* backing file (owned) */
	int fd;                     /* open on it */
	int writable;               /* opened read-write */
	uint64_t size;              /* bytes */
	uint32_t vm;                /* VM id */
	uint64_t base;              /* byte offset on the modelled disk */
	struct bs_assoc_src *assoc; /* its VM's association, or NULL */
	struct bs_export_stats st;  /* counters (under the mutex) */
};

/* A request in flight, on its caller's stack. */
struct bs_req {
	pthread_cond_t cv;     /* signalled when dispatched */
	int go;                /* dispatched: do the I/O */
	uint64_t done_ns;      /* the model's completion time */
	struct ios_rq *rq;     /* its scheduler slot */
	uint32_t log_idx;      /* its request-log entry, or NO_LOG */
};

#define NO_LOG UINT32_MAX

/* One request of the request log (log=). */
struct bs_log_entry {
	uint64_t arrive_ns;  /* CLOCK_MONOTONIC at arrival */
	uint64_t done_ns;    /* CLOCK_MONOTONIC at completion */
	uint64_t offset;     /* bytes into the export */
	uint32_t length;     /* bytes */
	uint32_t vm;         /* VM id */
	uint32_t pid;        /* process tag, IOS_PID_UNKNOWN if none */
	uint16_t export_idx; /* export index */
	uint8_t write;       /* 1 for a write */
};

struct bs_server {
	struct bs_export ex[BS_MAX_EXPORTS];      /* exports */
	unsigned n_ex;                            /* how many */
	struct bs_assoc_src srcs[BS_MAX_EXPORTS]; /* association files */
	unsigned n_srcs;                          /* how many */
	struct ios_sched *sched;                  /* the one scheduler */
	struct ios_disk disk;                     /* the one disk model */
	struct ios_disk_state dstate;             /* and its state */
	unsigned depth;                           /* device queue depth */
	uint32_t max_request;                     /* bytes */
	enum bs_assoc_use assoc_use;              /* tag source */
	char *stats_path;                         /* or NULL (owned) */
	char *log_path;                           /* request log, or NULL
	                                             (owned) */
	struct bs_log_entry *log;                 /* log_max entries, or NULL */
	uint32_t log_max;                         /* entries in log */
	uint32_t log_n;                           /* entries used */

	pthread_mutex_t mu;       /* guards everything below and the above
	                             scheduler, model and counters */
	pthread_cond_t cv_disp;   /* wakes the dispatcher (CLOCK_MONOTONIC) */
	pthread_cond_t cv_slot;   /* a scheduler slot became free */
	pthread_t thr;            /* the dispatcher */
	int thread_started;       /* thr is valid */
	int running;              /* accepting requests */
	int stop;                 /* the dispatcher should finish */
	unsigned in_device;       /* dispatched, not yet completed */
	unsigned slot_waiters;    /* callers waiting on cv_slot */
	uint64_t t0;              /* CLOCK_MONOTONIC ns at start */
	uint64_t last_now;        /* latest server time handed out */
	struct bs_stats st;       /* counters (sched/disk filled on read) */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Server time (ns since start), never going backwards. Under mu. */
static uint64_t now_locked(struct bs_server *s)
{
	uint64_t m = mono_ns();
	uint64_t t = m > s->t0 ? m - s->t0 : 0;
	if (t < s->last_now)
		t = s->last_now;
	s->last_now = t;
	return t;
}

static struct timespec abs_ts(uint64_t mono)
{
	struct timespec ts;
	ts.tv_sec = (time_t)(mono / 1000000000ull);
	ts.tv_nsec = (long)(mono % 1000000000ull);
	return ts;
}

uint32_t bs_pid_of_serial(uint64_t serial)
{
	if (serial == 0)
		return IOS_PID_UNKNOWN;
	return (uint32_t)((serial - 1) % 0xfffffffeull) + 1;
}

static int errmsg(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int errmsg(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Opens an export's file: read-write if allowed, else read-only. */
static int open_export(struct bs_export *e, char *err, size_t errlen)
{
	e->fd = open(e->file, O_RDWR | O_CLOEXEC | O_NOCTTY);
	e->writable = 1;
	if (e->fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM)) {
		e->fd = open(e->file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		e->writable = 0;
	}
	if (e->fd < 0)
		return errmsg(err, errlen, -errno, "export %s: %s: %s",
			      e->name, e->file, strerror(errno));
	struct stat st;
	if (fstat(e->fd, &st))
		return errmsg(err, errlen, -errno, "export %s: %s: %s",
			      e->name, e->file, strerror(errno));
	if (S_ISREG(st.st_mode)) {
		e->size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		uint64_t sz = 0;
		if (ioctl(e->fd, BLKGETSIZE64, &sz))
			return errmsg(err, errlen, -errno,
				      "export %s: %s: size: %s", e->name,
				      e->file, strerror(errno));
		e->size = sz;
	} else {
		return errmsg(err, errlen, -EINVAL,
			      "export %s: %s: not a regular file or block "
			      "device", e->name, e->file);
	}
	if (e->size == 0)
		return errmsg(err, errlen, -EINVAL, "export %s: %s is empty",
			      e->name, e->file);
	return 0;
}

void bs_server_free(struct bs_server *s)
{
	if (!s)
		return;
	if (s->thread_started)
		bs_server_stop(s);
	for (unsigned i = 0; i < s->n_ex; i++) {
		if (s->ex[i].fd >= 0)
			close(s->ex[i].fd);
		free(s->ex[i].name);
		free(s->ex[i].file);
	}
	for (unsigned i = 0; i < s->n_srcs; i++) {
		af_assoc_free(s->srcs[i].a);
		free(s->srcs[i].path);
	}
	ios_sched_free(s->sched);
	free(s->stats_path);
	free(s->log_path);
	free(s->log);
	pthread_cond_destroy(&s->cv_disp);
	pthread_cond_destroy(&s->cv_slot);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int bs_server_new(struct bs_config *c, struct bs_server **out, char *err,
		  size_t errlen)
{
	*out = NULL;
	if (c->n_exports == 0)
		return errmsg(err, errlen, -EINVAL,
			      "no exports: give export=NAME file=PATH");
	for (unsigned i = 0; i < c->n_exports; i++)
		if (!c->exports[i].file)
			return errmsg(err, errlen, -EINVAL,
				      "export %s: no file=", c->exports[i].name);

	struct bs_server *s = calloc(1, sizeof(*s));
	if (!s)
		return errmsg(err, errlen, -ENOMEM, "out of memory");
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv_disp, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&s->cv_slot, NULL);
	s->depth = c->depth;
	s->max_request = c->max_request;
	s->assoc_use = c->assoc_use;
	s->stats_path = c->stats;
	c->stats = NULL;
	if (c->log) {
		/* Allocated once here: the request path only fills it. */
		s->log = calloc(c->log_max, sizeof(*s->log));
		if (!s->log) {
			bs_server_free(s);
			return errmsg(err, errlen, -ENOMEM,
				      "log-max=%u: out of memory", c->log_max);
		}
		s->log_max = c->log_max;
		s->log_path = c->log;
		c->log = NULL;
	}

	/* Exports: take the strings over. */
	int rc = 0;
	for (unsigned i = 0; i < c->n_exports; i++) {
		struct bs_export_cfg *ec = &c->exports[i];
		struct bs_export *e = &s->ex[i];
		e->fd = -1;
		e->name = ec->name;
		e->file = ec->file;
		ec->name = ec->file = NULL;
		e->vm = ec->have_vm ? ec->vm : i;
		s->n_ex = i + 1;
		if (ec->assoc) {
			unsigned j;
			for (j = 0; j < s->n_srcs; j++)
				if (!strcmp(s->srcs[j].path, ec->assoc))
					break;
			if (j == s->n_srcs) {
				s->srcs[j].path = ec->assoc;
				ec->assoc = NULL;
				s->n_srcs++;
			}
			e->assoc = &s->srcs[j];
		}
		rc = open_export(e, err, errlen);
		if (rc)
			goto fail;
	}

	/* Layout on the modelled disk. */
	uint64_t stride = c->stride;
	if (!stride) {
		stride = BS_DEFAULT_STRIDE;
		for (unsigned i = 0; i < s->n_ex; i++) {
			uint64_t r = (s->ex[i].size + BS_DEFAULT_STRIDE - 1) /
				     BS_DEFAULT_STRIDE * BS_DEFAULT_STRIDE;
			if (r > stride)
				stride = r;
		}
	}
	uint64_t top = 0;
	for (unsigned i = 0; i < s->n_ex; i++) {
		struct bs_export *e = &s->ex[i];
		if (c->exports[i].have_at) {
			e->base = c->exports[i].at;
		} else if (stride > UINT64_MAX / BS_MAX_EXPORTS) {
			rc = errmsg(err, errlen, -EINVAL, "stride too large");
			goto fail;
		} else {
			e->base = (uint64_t)i * stride;
		}
		if (e->base > UINT64_MAX - e->size - IOS_SECTOR_BYTES) {
			rc = errmsg(err, errlen, -EINVAL,
				    "export %s: at= too large", e->name);
			goto fail;
		}
		uint64_t end = e->base + e->size;
		if (end > top)
			top = end;
	}
	struct ios_disk_params dp = c->disk;
	uint64_t top_sectors = (top + IOS_SECTOR_BYTES - 1) / IOS_SECTOR_BYTES;
	if (dp.kind == IOS_DISK_NONE) {
		if (dp.capacity_sectors < top_sectors)
			dp.capacity_sectors = top_sectors;
	} else if (top_sectors > dp.capacity_sectors) {
		rc = errmsg(err, errlen, -EINVAL,
			    "the exports need %" PRIu64 " bytes of the modelled "
			    "disk, which has %" PRIu64 " (use a smaller "
			    "stride=, at=, or a larger disk-capacity=)",
			    top, dp.capacity_sectors * IOS_SECTOR_BYTES);
		goto fail;
	}
	rc = ios_disk_init(&s->disk, &dp);
	if (rc) {
		rc = errmsg(err, errlen, rc,
			    "the disk model's parameters are inconsistent "
			    "(seek times: track <= average <= full stroke, "
			    "and an average a two-piece curve can meet)");
		goto fail;
	}
	ios_disk_state_init(&s->dstate);

	/* c->tun holds the defaults of the chosen kind with the explicit
	 * settings over them (bs_config_set keeps it so). */
	rc = ios_sched_new(c->sched, c->queue, &c->tun, &s->sched);
	if (rc) {
		rc = errmsg(err, errlen, rc, "scheduler: bad parameters");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	bs_server_free(s);
	return rc;
}

/* ---- the dispatcher ---- */

static void *dispatcher(void *arg)
{
	struct bs_server *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		uint64_t now = now_locked(s);
		while (s->in_device < s->depth) {
			struct ios_rq *rq = ios_sched_dispatch(s->sched, now);
			if (!rq)
				break;
			struct bs_req *r = (struct bs_req *)(uintptr_t)rq->d.cookie;
			struct ios_disk_io io = { .sector = rq->d.sector,
						  .count = rq->d.count,
						  .write = rq->d.write };
			struct ios_disk_result res;
			if (ios_disk_access(&s->disk, &s->dstate, &io, now,
					    &res))
				res.done_ns = now; /* not reached: ranges
						      are checked on entry */
			r->done_ns = res.done_ns;
			r->go = 1;
			s->in_device++;
			pthread_cond_signal(&r->cv);
		}
		if (s->stop && ios_sched_queued(s->sched) == 0 &&
		    s->in_device == 0 && s->slot_waiters == 0)
			break;
		uint64_t t = ios_sched_next_timer(s->sched);
		if (t == IOS_NO_TIMER) {
			pthread_cond_wait(&s->cv_disp, &s->mu);
		} else {
			struct timespec ts = abs_ts(s->t0 + t);
			pthread_cond_timedwait(&s->cv_disp, &s->mu, &ts);
		}
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int bs_server_start(struct bs_server *s)
{
	pthread_mutex_lock(&s->mu);
	s->t0 = mono_ns();
	s->last_now = 0;
	s->stop = 0;
	int rc = pthread_create(&s->thr, NULL, dispatcher, s);
	if (rc == 0) {
		s->thread_started = 1;
		s->running = 1;
	}
	pthread_mutex_unlock(&s->mu);
	return -rc;
}

/* Writes the request log (format in bs.h). 0 or a negative errno. */
static int write_log(struct bs_server *s)
{
	FILE *f = fopen(s->log_path, "we");
	if (!f)
		return -errno;
	fputs("# arrive_ns done_ns export vm pid rw offset length\n", f);
	for (uint32_t i = 0; i < s->log_n; i++) {
		const struct bs_log_entry *l = &s->log[i];
		fprintf(f, "%" PRIu64 " %" PRIu64 " %u %" PRIu32 " ",
			l->arrive_ns, l->done_ns, (unsigned)l->export_idx,
			l->vm);
		if (l->pid == IOS_PID_UNKNOWN)
			fputc('-', f);
		else
			fprintf(f, "%" PRIu32, l->pid);
		fprintf(f, " %c %" PRIu64 " %" PRIu32 "\n",
			l->write ? 'W' : 'R', l->offset, l->length);
	}
	int rc = ferror(f) ? -EIO : 0;
	if (fclose(f) && !rc)
		rc = -errno;
	return rc;
}

int bs_server_stop(struct bs_server *s)
{
	if (!s->thread_started)
		return 0;
	pthread_mutex_lock(&s->mu);
	s->running = 0;
	s->stop = 1;
	pthread_cond_signal(&s->cv_disp);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thr, NULL);
	s->thread_started = 0;
	int rc = 0;
	if (s->stats_path) {
		FILE *f = fopen(s->stats_path, "we");
		if (!f) {
			rc = -errno;
		} else {
			bs_write_stats_json(s, f);
			if (fclose(f))
				rc = -errno;
		}
	}
	if (s->log_path) {
		int lrc = write_log(s);
		if (!rc)
			rc = lrc;
	}
	return rc;
}

/* ---- tagging ---- */

/* The process id for a request of export e at server time now. Under mu. */
static uint32_t lookup_pid(struct bs_server *s, struct bs_export *e,
			   uint64_t now)
{
	struct bs_assoc_src *src = e->assoc;
	if (!src)
		return IOS_PID_UNKNOWN;
	if (src->a && now >= src->next_check_ns) {
		src->next_check_ns = now + ASSOC_RECHECK_NS;
		if (!af_assoc_same_file(src->a, src->path)) {
			/* The writer (a new QEMU) replaced it. */
			af_assoc_free(src->a);
			src->a = NULL;
			src->next_try_ns = now;
		}
	}
	if (!src->a) {
		if (now < src->next_try_ns)
			return IOS_PID_UNKNOWN;
		if (af_assoc_map(src->path, &src->a)) {
			src->a = NULL;
			src->next_try_ns = now + ASSOC_RETRY_NS;
			return IOS_PID_UNKNOWN;
		}
		s->st.assoc_maps++;
		src->next_check_ns = now + ASSOC_RECHECK_NS;
	}
	struct af_assoc_entry en;
	int rc;
	if (s->assoc_use == BS_ASSOC_VCPU0) {
		rc = af_assoc_read_vcpu(src->a, 0, &en);
	} else {
		rc = af_assoc_read_notify(src->a, &en);
		if (rc == -ENOENT && af_assoc_vcpus(src->a) == 1)
			rc = af_assoc_read_vcpu(src->a, 0, &en);
	}
	if (rc) {
		if (rc != -ENOENT)
			s->st.assoc_errors++;
		return IOS_PID_UNKNOWN;
	}
	if (en.asid == AF_ASID_NONE)
		return IOS_PID_UNKNOWN;
	return bs_pid_of_serial(en.serial);
}

static void count_tag(struct bs_server *s, uint32_t vm, uint32_t pid)
{
	if (pid == IOS_PID_UNKNOWN)
		s->st.assoc_unknown++;
	for (unsigned i = 0; i < s->st.n_tags; i++)
		if (s->st.tags[i].vm == vm && s->st.tags[i].pid == pid) {
			s->st.tags[i].requests++;
			return;
		}
	if (s->st.n_tags == BS_MAX_TAGS) {
		s->st.tags_overflow++;
		return;
	}
	struct bs_tag_count *t = &s->st.tags[s->st.n_tags++];
	t->vm = vm;
	t->pid = pid;
	t->requests = 1;
}

/* ---- requests ---- */

/* Checks a request; 0 or the errno to return. */
static int check(struct bs_server *s, unsigned idx, uint32_t count,
		 uint64_t offset, int write)
{
	if (idx >= s->n_ex)
		return -EINVAL;
	const struct bs_export *e = &s->ex[idx];
	if (count == 0 || count > s->max_request)
		return -EINVAL;
	if (offset > e->size || count > e->size - offset)
		return write ? -ENOSPC : -EINVAL;
	if (write && !e->writable)
		return -EROFS;
	return 0;
}

/* Queues the request and waits until it is dispatched. 0, or -ESHUTDOWN. */
static int submit(struct bs_server *s, struct bs_export *e, struct bs_req *r,
		  uint32_t count, uint64_t offset, int write)
{
	uint64_t abs = e->base + offset;
	uint64_t first = abs / IOS_SECTOR_BYTES;
	uint64_t end = (abs + count + IOS_SECTOR_BYTES - 1) / IOS_SECTOR_BYTES;
	pthread_cond_init(&r->cv, NULL);
	r->go = 0;
	r->rq = NULL;
	r->log_idx = NO_LOG;

	pthread_mutex_lock(&s->mu);
	if (!s->running) {
		pthread_mutex_unlock(&s->mu);
		pthread_cond_destroy(&r->cv);
		return -ESHUTDOWN;
	}
	uint64_t now = now_locked(s);
	uint64_t arrived = now;
	struct ios_req_desc d = {
		.export_id = e->vm,
		.pid = lookup_pid(s, e, now),
		.sector = first,
		.count = (uint32_t)(end - first),
		.write = write,
		.cookie = (uint64_t)(uintptr_t)r,
	};
	int waited = 0;
	int rc;
	while ((rc = ios_sched_add(s->sched, &d, now, &r->rq)) == -EAGAIN) {
		waited = 1;
		s->slot_waiters++;
		pthread_cond_wait(&s->cv_slot, &s->mu);
		s->slot_waiters--;
		now = now_locked(s);
	}
	if (waited)
		s->st.queue_waits++;
	/* rc is 0: d is never empty. */
	count_tag(s, d.export_id, d.pid);
	if (s->log) {
		if (s->log_n < s->log_max) {
			struct bs_log_entry *l = &s->log[s->log_n];
			r->log_idx = s->log_n++;
			l->arrive_ns = s->t0 + arrived;
			l->done_ns = 0;
			l->offset = offset;
			l->length = count;
			l->vm = e->vm;
			l->pid = d.pid;
			l->export_idx = (uint16_t)(e - s->ex);
			l->write = (uint8_t)(write != 0);
		} else {
			s->st.log_dropped++;
		}
	}
	pthread_cond_signal(&s->cv_disp);
	while (!r->go)
		pthread_cond_wait(&r->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	pthread_cond_destroy(&r->cv);
	return rc;
}

/* Waits for the model's completion time and completes the request. */
static void finish(struct bs_server *s, struct bs_req *r)
{
	uint64_t due = s->t0 + r->done_ns;
	struct timespec ts = abs_ts(due);
	while (mono_ns() < due &&
	       clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
		       EINTR)
		;
	pthread_mutex_lock(&s->mu);
	uint64_t now = now_locked(s);
	if (now > r->done_ns && now - r->done_ns > s->st.late_ns_max)
		s->st.late_ns_max = now - r->done_ns;
	ios_sched_complete(s->sched, r->rq, now);
	if (r->log_idx != NO_LOG)
		s->log[r->log_idx].done_ns = s->t0 + now;
	s->in_device--;
	pthread_cond_signal(&s->cv_disp);
	if (s->slot_waiters)
		pthread_cond_signal(&s->cv_slot);
	pthread_mutex_unlock(&s->mu);
}

static void count_result(struct bs_server *s, struct bs_export *e, int rc,
			 int write, uint32_t count)
{
	pthread_mutex_lock(&s->mu);
	if (rc) {
		e->st.errors++;
	} else if (write) {
		e->st.writes++;
		e->st.write_bytes += count;
	} else {
		e->st.reads++;
		e->st.read_bytes += count;
	}
	pthread_mutex_unlock(&s->mu);
}

static int full_pread(int fd, void *buf, uint32_t count, uint64_t off)
{
	char *p = buf;
	while (count) {
		ssize_t n = pread(fd, p, count, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* the file shrank under us */
		p += n;
		count -= (uint32_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int full_pwrite(int fd, const void *buf, uint32_t count, uint64_t off)
{
	const char *p = buf;
	while (count) {
		ssize_t n = pwrite(fd, p, count, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		count -= (uint32_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int bs_read(struct bs_server *s, unsigned idx, void *buf, uint32_t count,
	    uint64_t offset)
{
	int rc = check(s, idx, count, offset, 0);
	if (rc) {
		if (idx < s->n_ex)
			count_result(s, &s->ex[idx], rc, 0, count);
		return rc;
	}
	struct bs_export *e = &s->ex[idx];
	struct bs_req r;
	rc = submit(s, e, &r, count, offset, 0);
	if (rc)
		return rc;
	rc = full_pread(e->fd, buf, count, offset);
	finish(s, &r);
	count_result(s, e, rc, 0, count);
	return rc;
}

int bs_write(struct bs_server *s, unsigned idx, const void *buf,
	     uint32_t count, uint64_t offset, int fua)
{
	int rc = check(s, idx, count, offset, 1);
	if (rc) {
		if (idx < s->n_ex)
			count_result(s, &s->ex[idx], rc, 1, count);
		return rc;
	}
	struct bs_export *e = &s->ex[idx];
	struct bs_req r;
	rc = submit(s, e, &r, count, offset, 1);
	if (rc)
		return rc;
	rc = full_pwrite(e->fd, buf, count, offset);
	if (!rc && fua && fdatasync(e->fd))
		rc = -errno;
	finish(s, &r);
	count_result(s, e, rc, 1, count);
	return rc;
}

int bs_flush(struct bs_server *s, unsigned idx)
{
	if (idx >= s->n_ex)
		return -EINVAL;
	struct bs_export *e = &s->ex[idx];
	int rc = fdatasync(e->fd) ? -errno : 0;
	pthread_mutex_lock(&s->mu);
	if (rc)
		e->st.errors++;
	else
		e->st.flushes++;
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- lookups and counters ---- */

int bs_find_export(const struct bs_server *s, const char *name)
{
	if (!*name)
		return s->n_ex ? 0 : -ENOENT;
	for (unsigned i = 0; i < s->n_ex; i++)
		if (!strcmp(s->ex[i].name, name))
			return (int)i;
	return -ENOENT;
}

unsigned bs_export_count(const struct bs_server *s)
{
	return s->n_ex;
}

const char *bs_export_name(const struct bs_server *s, unsigned idx)
{
	return idx < s->n_ex ? s->ex[idx].name : NULL;
}

uint32_t bs_export_vm(const struct bs_server *s, unsigned idx)
{
	return idx < s->n_ex ? s->ex[idx].vm : 0;
}

uint64_t bs_export_size(const struct bs_server *s, unsigned idx)
{
	return idx < s->n_ex ? s->ex[idx].size : 0;
}

int bs_export_writable(const struct bs_server *s, unsigned idx)
{
	return idx < s->n_ex ? s->ex[idx].writable : 0;
}

int bs_disk_rotational(const struct bs_server *s)
{
	return s->disk.p.kind == IOS_DISK_ROTATIONAL;
}

uint32_t bs_max_request(const struct bs_server *s)
{
	return s->max_request;
}

void bs_get_stats(struct bs_server *s, struct bs_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->st;
	out->log_entries = s->log_n;
	ios_sched_get_stats(s->sched, &out->sched);
	out->disk = s->dstate.st;
	pthread_mutex_unlock(&s->mu);
}

void bs_get_export_stats(struct bs_server *s, unsigned idx,
			 struct bs_export_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (idx >= s->n_ex)
		return;
	pthread_mutex_lock(&s->mu);
	*out = s->ex[idx].st;
	pthread_mutex_unlock(&s->mu);
}

/* A JSON string of printable ASCII (export names and paths; anything
 * else is escaped). */
static void json_str(FILE *f, const char *v)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

void bs_write_stats_json(struct bs_server *s, FILE *f)
{
	struct bs_stats st;
	bs_get_stats(s, &st);
	fprintf(f, "{\"sched\":\"%s\",\"disk\":\"%s\",\"depth\":%u,",
		ios_sched_name(ios_sched_kind_of(s->sched)),
		bs_disk_rotational(s) ? "rotational" : "none", s->depth);
	fprintf(f, "\"exports\":[");
	for (unsigned i = 0; i < s->n_ex; i++) {
		struct bs_export_stats es;
		bs_get_export_stats(s, i, &es);
		fprintf(f, "%s{\"name\":", i ? "," : "");
		json_str(f, s->ex[i].name);
		fprintf(f, ",\"vm\":%" PRIu32 ",\"size\":%" PRIu64
			   ",\"at\":%" PRIu64 ",\"reads\":%" PRIu64
			   ",\"writes\":%" PRIu64 ",\"flushes\":%" PRIu64
			   ",\"read_bytes\":%" PRIu64
			   ",\"write_bytes\":%" PRIu64 ",\"errors\":%" PRIu64
			   "}",
			s->ex[i].vm, s->ex[i].size, s->ex[i].base, es.reads,
			es.writes, es.flushes, es.read_bytes, es.write_bytes,
			es.errors);
	}
	fprintf(f, "],\"tags\":[");
	for (unsigned i = 0; i < st.n_tags; i++) {
		fprintf(f, "%s{\"vm\":%" PRIu32 ",\"pid\":", i ? "," : "",
			st.tags[i].vm);
		if (st.tags[i].pid == IOS_PID_UNKNOWN)
			fprintf(f, "null");
		else
			fprintf(f, "%" PRIu32, st.tags[i].pid);
		fprintf(f, ",\"requests\":%" PRIu64 "}", st.tags[i].requests);
	}
	fprintf(f, "],\"tags_overflow\":%" PRIu64 ",\"assoc_maps\":%" PRIu64
		   ",\"assoc_unknown\":%" PRIu64 ",\"assoc_errors\":%" PRIu64
		   ",\"queue_waits\":%" PRIu64 ",\"late_ns_max\":%" PRIu64
		   ",\"log_entries\":%" PRIu64 ",\"log_dropped\":%" PRIu64 ",",
		st.tags_overflow, st.assoc_maps, st.assoc_unknown,
		st.assoc_errors, st.queue_waits, st.late_ns_max,
		st.log_entries, st.log_dropped);
	const struct ios_sched_stats *q = &st.sched;
	fprintf(f, "\"sched_stats\":{\"added\":%" PRIu64 ",\"rejected\":%" PRIu64
		   ",\"dispatched\":%" PRIu64 ",\"completed\":%" PRIu64
		   ",\"fifo_expired\":%" PRIu64 ",\"antic_started\":%" PRIu64
		   ",\"antic_hits\":%" PRIu64 ",\"antic_broken\":%" PRIu64
		   ",\"antic_timeouts\":%" PRIu64
		   ",\"stream_evictions\":%" PRIu64 "},",
		q->added, q->rejected, q->dispatched, q->completed,
		q->fifo_expired, q->antic_started, q->antic_hits,
		q->antic_broken, q->antic_timeouts, q->stream_evictions);
	const struct ios_disk_stats *d = &st.disk;
	fprintf(f, "\"disk_stats\":{\"reads\":%" PRIu64 ",\"writes\":%" PRIu64
		   ",\"cache_hits\":%" PRIu64 ",\"stream_hits\":%" PRIu64
		   ",\"misses\":%" PRIu64 ",\"seeks\":%" PRIu64
		   ",\"seek_ns\":%" PRIu64 ",\"rot_ns\":%" PRIu64
		   ",\"sectors\":%" PRIu64 "}}\n",
		d->reads, d->writes, d->cache_hits, d->stream_hits, d->misses,
		d->seeks, d->seek_ns, d->rot_ns, d->sectors);
}
