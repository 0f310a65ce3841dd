/*
 * blockserver/config.c - the block server's settings: defaults, parsing of
 * key=value pairs (as nbdkit passes them), sizes, and the help text.
 */
#include "blockserver/bs.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Bits of bs_config.tun_set. */
enum {
	TUN_READ_EXPIRE = 1u << 0,
	TUN_WRITE_EXPIRE = 1u << 1,
	TUN_FIFO_BATCH = 1u << 2,
	TUN_WRITES_STARVED = 1u << 3,
	TUN_ANTIC_EXPIRE = 1u << 4,
	TUN_READ_BATCH = 1u << 5,
	TUN_WRITE_BATCH = 1u << 6,
	TUN_MAX_STREAMS = 1u << 7,
};

void bs_config_init(struct bs_config *c)
{
	memset(c, 0, sizeof(*c));
	c->sched = IOS_SCHED_DEADLINE;
	ios_sched_tunables_default(c->sched, &c->tun);
	ios_disk_params_default(&c->disk);
	c->queue = BS_DEFAULT_QUEUE;
	c->depth = 1;
	c->max_request = BS_DEFAULT_MAX_REQUEST;
	c->assoc_use = BS_ASSOC_NOTIFY;
	c->log_max = BS_DEFAULT_LOG_MAX;
}

void bs_config_free(struct bs_config *c)
{
	for (unsigned i = 0; i < c->n_exports; i++) {
		free(c->exports[i].name);
		free(c->exports[i].file);
		free(c->exports[i].assoc);
	}
	c->n_exports = 0;
	free(c->stats);
	c->stats = NULL;
	free(c->log);
	c->log = NULL;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int bs_parse_size(const char *s, uint64_t *out)
{
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	uint64_t v = 0;
	const char *p = s;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	unsigned shift = 0;
	switch (*p) {
	case '\0':
		break;
	case 'k': case 'K': shift = 10; p++; break;
	case 'm': case 'M': shift = 20; p++; break;
	case 'g': case 'G': shift = 30; p++; break;
	case 't': case 'T': shift = 40; p++; break;
	default:
		return -1;
	}
	if (*p)
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = v << shift;
	return 0;
}

/* A whole decimal number in [lo, hi]. */
static int parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	uint64_t v = 0;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* A plain decimal (digits and at most one point) in [lo, hi]. */
static int parse_real(const char *s, double lo, double hi, double *out)
{
	if (!s || !*s || strspn(s, "0123456789.") != strlen(s) ||
	    strchr(s, '.') != strrchr(s, '.') || !strcmp(s, "."))
		return -1;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_bool(const char *s, int *out)
{
	if (!strcmp(s, "on") || !strcmp(s, "1") || !strcmp(s, "yes") ||
	    !strcmp(s, "true")) {
		*out = 1;
		return 0;
	}
	if (!strcmp(s, "off") || !strcmp(s, "0") || !strcmp(s, "no") ||
	    !strcmp(s, "false")) {
		*out = 0;
		return 0;
	}
	return -1;
}

/* Disk-model parameters settable as disk-NAME=VALUE (doubles). */
struct real_param {
	const char *key;  /* setting name */
	size_t off;       /* offset in struct ios_disk_params */
	double lo, hi;    /* accepted range */
};
#define DP(f) offsetof(struct ios_disk_params, f)
static const struct real_param disk_reals[] = {
	{ "disk-rpm", DP(rpm), 1000, 30000 },
	{ "disk-seek-track-ms", DP(seek_track_ms), 0.01, 100 },
	{ "disk-seek-avg-ms", DP(seek_avg_ms), 0.01, 200 },
	{ "disk-seek-full-ms", DP(seek_full_ms), 0.01, 500 },
	{ "disk-media-outer-mb-s", DP(media_outer_mb_s), 0.1, 100000 },
	{ "disk-media-inner-mb-s", DP(media_inner_mb_s), 0.1, 100000 },
	{ "disk-overhead-miss-ms", DP(overhead_miss_ms), 0, 100 },
	{ "disk-overhead-hit-ms", DP(overhead_hit_ms), 0, 100 },
	{ "disk-bus-mb-s", DP(bus_mb_s), 0.1, 100000 },
};

/* Scheduler times settable as NAME-ms=VALUE. */
struct tun_param {
	const char *key; /* setting name */
	size_t off;      /* offset of a uint64_t ns field */
	unsigned bit;    /* TUN_* */
};
#define TP(f) offsetof(struct ios_sched_tunables, f)
static const struct tun_param tun_times[] = {
	{ "read-expire-ms", TP(read_expire_ns), TUN_READ_EXPIRE },
	{ "write-expire-ms", TP(write_expire_ns), TUN_WRITE_EXPIRE },
	{ "antic-expire-ms", TP(antic_expire_ns), TUN_ANTIC_EXPIRE },
	{ "read-batch-expire-ms", TP(read_batch_expire_ns), TUN_READ_BATCH },
	{ "write-batch-expire-ms", TP(write_batch_expire_ns), TUN_WRITE_BATCH },
};

static struct bs_export_cfg *last_export(struct bs_config *c)
{
	return c->n_exports ? &c->exports[c->n_exports - 1] : NULL;
}

/* Replaces *slot with a copy of value. */
static int set_string(char **slot, const char *value, char *err,
		      size_t errlen)
{
	char *d = strdup(value);
	if (!d) {
		fail(err, errlen, "out of memory");
		return -ENOMEM;
	}
	free(*slot);
	*slot = d;
	return 0;
}

/* Export names: printable ASCII without spaces, at most 255 bytes
 * (NBD allows more; we keep them easy to pass around). */
static int valid_export_name(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > 255)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (v[i] <= ' ' || v[i] > '~')
			return 0;
	return 1;
}

int bs_config_set(struct bs_config *c, const char *key, const char *value,
		  char *err, size_t errlen)
{
	uint64_t u;
	double d;
	int b;

	if (!strcmp(key, "export")) {
		if (!valid_export_name(value))
			return fail(err, errlen,
				    "export=%s: names are 1-255 printable "
				    "characters without spaces", value);
		for (unsigned i = 0; i < c->n_exports; i++)
			if (!strcmp(c->exports[i].name, value))
				return fail(err, errlen,
					    "export=%s: given twice", value);
		if (c->n_exports >= BS_MAX_EXPORTS)
			return fail(err, errlen, "more than %u exports",
				    BS_MAX_EXPORTS);
		struct bs_export_cfg *e = &c->exports[c->n_exports];
		memset(e, 0, sizeof(*e));
		if (set_string(&e->name, value, err, errlen))
			return -ENOMEM;
		c->n_exports++;
		return 0;
	}
	if (!strcmp(key, "file") || !strcmp(key, "vm") ||
	    !strcmp(key, "assoc") || !strcmp(key, "at")) {
		struct bs_export_cfg *e = last_export(c);
		if (!e)
			return fail(err, errlen, "%s=: give export=NAME first",
				    key);
		if (!strcmp(key, "file")) {
			if (!*value)
				return fail(err, errlen, "file=: empty path");
			return set_string(&e->file, value, err, errlen);
		}
		if (!strcmp(key, "assoc")) {
			if (!*value)
				return fail(err, errlen, "assoc=: empty path");
			return set_string(&e->assoc, value, err, errlen);
		}
		if (!strcmp(key, "vm")) {
			if (parse_uint(value, 0, BS_MAX_VM_ID, &u))
				return fail(err, errlen,
					    "vm=%s: not a number 0..%u", value,
					    BS_MAX_VM_ID);
			e->vm = (uint32_t)u;
			e->have_vm = 1;
			return 0;
		}
		if (bs_parse_size(value, &u) || u % IOS_SECTOR_BYTES)
			return fail(err, errlen,
				    "at=%s: not a size that is a multiple of "
				    "512", value);
		e->at = u;
		e->have_at = 1;
		return 0;
	}
	if (!strcmp(key, "sched")) {
		enum ios_sched_kind k;
		if (ios_sched_parse(value, &k))
			return fail(err, errlen,
				    "sched=%s: one of noop, deadline, "
				    "as-single, as-vm, as-process", value);
		c->sched = k;
		/* Defaults follow the kind; explicit settings stay. */
		struct ios_sched_tunables t;
		ios_sched_tunables_default(k, &t);
		for (size_t i = 0; i < sizeof(tun_times) / sizeof(tun_times[0]);
		     i++)
			if (!(c->tun_set & tun_times[i].bit))
				memcpy((char *)&c->tun + tun_times[i].off,
				       (char *)&t + tun_times[i].off,
				       sizeof(uint64_t));
		return 0;
	}
	if (!strcmp(key, "disk")) {
		if (!strcmp(value, "rotational"))
			c->disk.kind = IOS_DISK_ROTATIONAL;
		else if (!strcmp(value, "none"))
			c->disk.kind = IOS_DISK_NONE;
		else
			return fail(err, errlen,
				    "disk=%s: rotational or none", value);
		return 0;
	}
	if (!strcmp(key, "stride")) {
		if (bs_parse_size(value, &u) || u == 0 ||
		    u % IOS_SECTOR_BYTES)
			return fail(err, errlen,
				    "stride=%s: not a size that is a non-zero "
				    "multiple of 512", value);
		c->stride = u;
		return 0;
	}
	if (!strcmp(key, "queue")) {
		if (parse_uint(value, 1, 1u << 16, &u))
			return fail(err, errlen, "queue=%s: 1..65536", value);
		c->queue = (unsigned)u;
		return 0;
	}
	if (!strcmp(key, "depth")) {
		if (parse_uint(value, 1, 64, &u))
			return fail(err, errlen, "depth=%s: 1..64", value);
		c->depth = (unsigned)u;
		return 0;
	}
	if (!strcmp(key, "max-request")) {
		if (bs_parse_size(value, &u) || u < IOS_SECTOR_BYTES ||
		    u > (64u << 20))
			return fail(err, errlen,
				    "max-request=%s: a size from 512 to 64M",
				    value);
		c->max_request = (uint32_t)u;
		return 0;
	}
	if (!strcmp(key, "assoc-use")) {
		if (!strcmp(value, "notify"))
			c->assoc_use = BS_ASSOC_NOTIFY;
		else if (!strcmp(value, "vcpu0"))
			c->assoc_use = BS_ASSOC_VCPU0;
		else
			return fail(err, errlen,
				    "assoc-use=%s: notify or vcpu0", value);
		return 0;
	}
	if (!strcmp(key, "stats")) {
		if (!*value)
			return fail(err, errlen, "stats=: empty path");
		return set_string(&c->stats, value, err, errlen);
	}
	if (!strcmp(key, "log")) {
		if (!*value)
			return fail(err, errlen, "log=: empty path");
		return set_string(&c->log, value, err, errlen);
	}
	if (!strcmp(key, "log-max")) {
		if (parse_uint(value, 1, BS_MAX_LOG_MAX, &u))
			return fail(err, errlen, "log-max=%s: 1..%u", value,
				    BS_MAX_LOG_MAX);
		c->log_max = (unsigned)u;
		return 0;
	}
	if (!strcmp(key, "readahead")) {
		if (parse_bool(value, &b))
			return fail(err, errlen, "readahead=%s: on or off",
				    value);
		c->disk.readahead = b;
		return 0;
	}
	if (!strcmp(key, "disk-capacity")) {
		if (bs_parse_size(value, &u) || u < (1u << 20) ||
		    u > (1ull << 50))
			return fail(err, errlen,
				    "disk-capacity=%s: a size from 1M to 1P",
				    value);
		c->disk.capacity_sectors = u / IOS_SECTOR_BYTES;
		return 0;
	}
	if (!strcmp(key, "disk-heads")) {
		if (parse_uint(value, 1, 64, &u))
			return fail(err, errlen, "disk-heads=%s: 1..64", value);
		c->disk.heads = (unsigned)u;
		return 0;
	}
	if (!strcmp(key, "disk-cache")) {
		if (bs_parse_size(value, &u) || u > (1ull << 32))
			return fail(err, errlen, "disk-cache=%s: a size up to 4G",
				    value);
		c->disk.cache_bytes = u;
		return 0;
	}
	if (!strcmp(key, "disk-cache-segments")) {
		if (parse_uint(value, 1, IOS_DISK_MAX_SEGMENTS, &u))
			return fail(err, errlen, "disk-cache-segments=%s: 1..%u",
				    value, IOS_DISK_MAX_SEGMENTS);
		c->disk.cache_segments = (unsigned)u;
		return 0;
	}
	for (size_t i = 0; i < sizeof(disk_reals) / sizeof(disk_reals[0]); i++)
		if (!strcmp(key, disk_reals[i].key)) {
			if (parse_real(value, disk_reals[i].lo,
				       disk_reals[i].hi, &d))
				return fail(err, errlen,
					    "%s=%s: a decimal from %g to %g",
					    key, value, disk_reals[i].lo,
					    disk_reals[i].hi);
			memcpy((char *)&c->disk + disk_reals[i].off, &d,
			       sizeof(d));
			return 0;
		}
	for (size_t i = 0; i < sizeof(tun_times) / sizeof(tun_times[0]); i++)
		if (!strcmp(key, tun_times[i].key)) {
			/* antic-expire-ms may be 0 (no anticipation). */
			double lo = tun_times[i].bit == TUN_ANTIC_EXPIRE ? 0
									 : 0.001;
			if (parse_real(value, lo, 600000, &d))
				return fail(err, errlen,
					    "%s=%s: milliseconds, %g to 600000",
					    key, value, lo);
			uint64_t ns = (uint64_t)llround(d * 1e6);
			memcpy((char *)&c->tun + tun_times[i].off, &ns,
			       sizeof(ns));
			c->tun_set |= tun_times[i].bit;
			return 0;
		}
	if (!strcmp(key, "fifo-batch") || !strcmp(key, "writes-starved")) {
		if (parse_uint(value, 1, 1024, &u))
			return fail(err, errlen, "%s=%s: 1..1024", key, value);
		if (key[0] == 'f') {
			c->tun.fifo_batch = (unsigned)u;
			c->tun_set |= TUN_FIFO_BATCH;
		} else {
			c->tun.writes_starved = (unsigned)u;
			c->tun_set |= TUN_WRITES_STARVED;
		}
		return 0;
	}
	if (!strcmp(key, "max-streams")) {
		if (parse_uint(value, 1, 65536, &u))
			return fail(err, errlen, "max-streams=%s: 1..65536",
				    value);
		c->tun.max_streams = (unsigned)u;
		c->tun_set |= TUN_MAX_STREAMS;
		return 0;
	}
	return fail(err, errlen, "unknown setting '%s'", key);
}

const char *bs_config_help(void)
{
	return BS_CONFIG_HELP;
}
