/*
 * lib/trace/writer.c - the trace writer: encodes the header and records of
 * docs/trace-format.md into a large buffer and hands full buffers to stdio.
 * Memory records use the sparse form (zero words left out) when it is
 * shorter. No allocation and no stdio call per record.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace_format.h"

#define WRITER_BUF (1u << 20) /* bytes buffered before a write */

struct af_trace_writer {
	FILE *f;              /* destination stream */
	int own_f;            /* we opened f and close it */
	int err;              /* first I/O error (negative errno), sticky */
	uint8_t *buf;         /* encoded bytes not yet written */
	size_t len;           /* bytes used in buf */
	struct af_trace_info info; /* as given at open */
	uint16_t n_vcpus;     /* from the info, to check records */
	uint16_t last_vcpu;   /* vcpu of the previous observation */
	uint64_t last_time;   /* time of the previous obs/truth record */
	uint64_t last_addr;   /* addr of the previous obs with an addr */
	uint64_t n_records;   /* records written, for the end record */
	uint64_t icount[AF_MAX_VCPUS]; /* last icount per vCPU */
};

int aft_check_info(const struct af_trace_info *info, char *why, size_t n,
		   unsigned *field_off)
{
	const char *what = NULL;
	unsigned off = 0;
	char tmp[96];

	if (info->mmu != AF_MMU_X86 && info->mmu != AF_MMU_CONTEXT_ID) {
		snprintf(tmp, sizeof tmp, "unknown mmu %u", info->mmu);
		what = tmp;
		off = 12;
	} else if (info->n_vcpus < 1 || info->n_vcpus > AF_MAX_VCPUS) {
		snprintf(tmp, sizeof tmp, "n_vcpus %u is not in 1..%u",
			 info->n_vcpus, AF_MAX_VCPUS);
		what = tmp;
		off = 14;
	} else if (info->phys_bytes > AF_TRACE_MAX_PHYS) {
		snprintf(tmp, sizeof tmp,
			 "phys_bytes %llu exceeds the limit %llu (1 TiB)",
			 (unsigned long long)info->phys_bytes,
			 (unsigned long long)AF_TRACE_MAX_PHYS);
		what = tmp;
		off = 16;
	} else if (info->mmu == AF_MMU_X86 && info->phys_bytes < 4096) {
		snprintf(tmp, sizeof tmp,
			 "phys_bytes %llu is below one page on an x86 trace",
			 (unsigned long long)info->phys_bytes);
		what = tmp;
		off = 16;
	} else if (info->ctx_bits > AFT_MAX_CTX_BITS ||
		   (info->mmu == AF_MMU_CONTEXT_ID && info->ctx_bits < 1)) {
		snprintf(tmp, sizeof tmp, "ctx_bits %u is not in %u..%u",
			 info->ctx_bits, info->mmu == AF_MMU_CONTEXT_ID ? 1u : 0u,
			 AFT_MAX_CTX_BITS);
		what = tmp;
		off = 13;
	}
	if (!what)
		return 0;
	if (why && n)
		snprintf(why, n, "%s", what);
	if (field_off)
		*field_off = off;
	return -EINVAL;
}

/* Writes the buffer out; keeps the first error. */
static int flush_buf(struct af_trace_writer *w)
{
	if (w->err)
		return w->err;
	errno = 0;
	if (w->len && fwrite(w->buf, 1, w->len, w->f) != w->len)
		w->err = errno ? -errno : -EIO;
	w->len = 0;
	return w->err;
}

/* Makes room for n bytes (n <= WRITER_BUF). */
static inline int room(struct af_trace_writer *w, size_t n)
{
	if (w->err)
		return w->err;
	if (WRITER_BUF - w->len < n)
		return flush_buf(w);
	return 0;
}

int af_trace_writer_fdopen(FILE *f, const struct af_trace_info *info,
			   struct af_trace_writer **out)
{
	struct af_trace_writer *w;
	uint8_t *h;
	size_t glen;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!f || !info || aft_check_info(info, NULL, 0, NULL))
		return -EINVAL;
	w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->buf = malloc(WRITER_BUF);
	if (!w->buf) {
		free(w);
		return -ENOMEM;
	}
	w->f = f;
	w->info = *info;
	w->info.version = AF_TRACE_VERSION;
	w->n_vcpus = info->n_vcpus;

	h = w->buf;
	memset(h, 0, AFT_HEADER_V1);
	memcpy(h, AFT_MAGIC, AFT_MAGIC_LEN);
	aft_put_le16(h + 8, AF_TRACE_VERSION);
	aft_put_le16(h + 10, AFT_HEADER_V1);
	h[12] = info->mmu;
	h[13] = info->ctx_bits;
	aft_put_le16(h + 14, info->n_vcpus);
	aft_put_le64(h + 16, info->phys_bytes);
	glen = strnlen(info->guest, AFT_GUEST_LEN - 1);
	memcpy(h + 24, info->guest, glen);
	w->len = AFT_HEADER_V1;
	*out = w;
	return 0;
}

int af_trace_writer_open(const char *path, const struct af_trace_info *info,
			 struct af_trace_writer **out)
{
	FILE *f;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!path || !info || aft_check_info(info, NULL, 0, NULL))
		return -EINVAL;
	if (!strcmp(path, "-"))
		return af_trace_writer_fdopen(stdout, info, out);
	f = fopen(path, "wb");
	if (!f)
		return errno ? -errno : -EIO;
	rc = af_trace_writer_fdopen(f, info, out);
	if (rc) {
		fclose(f);
		return rc;
	}
	(*out)->own_f = 1;
	return 0;
}

const struct af_trace_info *aft_writer_info(const struct af_trace_writer *w)
{
	return &w->info;
}

/* Stores v (8 bytes written, room guaranteed) as the fewest bytes that hold
 * it, at least min; returns the length code. */
static inline unsigned put_field(uint8_t **pp, uint64_t v, unsigned min)
{
	unsigned n = v ? (unsigned)(71 - __builtin_clzll(v)) / 8 : 0;
	uint8_t *p = *pp;

	if (n < min)
		n = min;
	aft_put_le64(p, v);
	if (n == 7)
		n = 8;
	*pp = p + n;
	return n == 8 ? 7 : n;
}

int af_trace_write_obs(struct af_trace_writer *w, const struct af_obs *o)
{
	uint8_t *p, *layout;
	uint32_t lw = 0;
	int rc;

	if (!w || !o || o->vcpu >= w->n_vcpus)
		return -EINVAL;
	rc = room(w, AFT_MAX_HEAD);
	if (rc)
		return rc;
	p = w->buf + w->len;
	p[0] = AFT_TAG_OBS;
	p[1] = o->kind;
	layout = p + 2;
	p += AFT_OBS_FIXED;
	lw |= put_field(&p, o->width, 0) << (3 * AFT_F_WIDTH);
	if (o->vcpu != w->last_vcpu) {
		lw |= put_field(&p, o->vcpu, 1) << (3 * AFT_F_VCPU);
		w->last_vcpu = o->vcpu;
	}
	lw |= put_field(&p, o->aux, 0) << (3 * AFT_F_AUX);
	lw |= put_field(&p, aft_zigzag(o->time_ns, w->last_time), 0)
	      << (3 * AFT_F_TIME);
	w->last_time = o->time_ns;
	lw |= put_field(&p, aft_zigzag(o->icount, w->icount[o->vcpu]), 0)
	      << (3 * AFT_F_ICOUNT);
	w->icount[o->vcpu] = o->icount;
	if (o->addr) {
		lw |= put_field(&p, aft_zigzag(o->addr, w->last_addr), 1)
		      << (3 * AFT_F_ADDR);
		w->last_addr = o->addr;
	}
	lw |= put_field(&p, o->value, 0) << (3 * AFT_F_VALUE);
	layout[0] = (uint8_t)lw;
	layout[1] = (uint8_t)(lw >> 8);
	layout[2] = (uint8_t)(lw >> 16);
	w->len = (size_t)(p - w->buf);
	w->n_records++;
	return 0;
}

int af_trace_write_truth(struct af_trace_writer *w, const struct af_truth *t)
{
	uint8_t *p;
	int rc;

	if (!w || !t || t->vcpu >= w->n_vcpus)
		return -EINVAL;
	rc = room(w, AFT_MAX_HEAD);
	if (rc)
		return rc;
	p = w->buf + w->len;
	*p++ = AFT_TAG_TRUTH;
	*p++ = t->kind;
	p = aft_put_varint(p, t->vcpu);
	p = aft_put_varint(p, t->pid);
	p = aft_put_varint(p, t->ppid);
	p = aft_put_varint(p, aft_zigzag(t->time_ns, w->last_time));
	w->last_time = t->time_ns;
	p = aft_put_varint(p, t->asid + 1); /* AF_ASID_NONE -> 0 */
	w->len = (size_t)(p - w->buf);
	w->n_records++;
	return 0;
}

static inline unsigned varint_len(uint64_t v)
{
	unsigned n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static inline uint64_t word_at(const uint8_t *d, size_t i)
{
	uint64_t v;

	memcpy(&v, d + i * AFT_SPARSE_WORD, AFT_SPARSE_WORD);
	return v;
}

/* Encodes n bytes of data (n a multiple of 8) as the runs of a sparse
 * record at out, which has room for n bytes. Returns their length, or
 * SIZE_MAX if they would not be shorter than limit bytes. */
static size_t sparse_runs(uint8_t *out, const uint8_t *data, size_t n,
			  size_t limit)
{
	size_t words = n / AFT_SPARSE_WORD, i = 0, done = 0, size = 0;

	while (i < words) {
		size_t start, cnt, skip, need;

		if (!word_at(data, i)) {
			i++;
			continue;
		}
		start = i;
		while (i < words && word_at(data, i))
			i++;
		skip = start - done;
		cnt = i - start;
		need = varint_len(skip) + varint_len(cnt) +
		       cnt * AFT_SPARSE_WORD;
		if (size + need >= limit)
			return SIZE_MAX;
		out = aft_put_varint(out, skip);
		out = aft_put_varint(out, cnt);
		memcpy(out, data + start * AFT_SPARSE_WORD,
		       cnt * AFT_SPARSE_WORD);
		out += cnt * AFT_SPARSE_WORD;
		size += need;
		done = i;
	}
	return size;
}

/* A memory record with its bytes, or (data NULL) a failed-read record, at
 * p; returns the end. */
static uint8_t *put_raw(uint8_t *p, uint64_t gpa, const uint8_t *data,
			size_t n)
{
	*p++ = data ? AFT_TAG_MEM : AFT_TAG_MEM_FAIL;
	p = aft_put_varint(p, gpa);
	p = aft_put_varint(p, n);
	if (data) {
		memcpy(p, data, n);
		p += n;
	}
	return p;
}

/* Memory (data != NULL) or failed-read (data == NULL) records. A memory
 * record whose length is a multiple of 8 is written in the sparse form when
 * that is shorter. */
static int write_mem(struct af_trace_writer *w, uint64_t gpa,
		     const uint8_t *data, size_t len)
{
	if (!w || len == 0 || len - 1 > UINT64_MAX - gpa)
		return -EINVAL;
	while (len) {
		size_t n = len < AF_TRACE_MAX_MEM ? len : AF_TRACE_MAX_MEM;
		uint8_t *p;
		/* tag, gpa, len, size (< 2^21: 3 bytes), data or runs */
		const size_t head = 1 + 2 * AFT_VARINT_MAX + 3;
		int rc = room(w, head + (data ? n : 0));

		if (rc)
			return rc;
		p = w->buf + w->len;
		if (data && n % AFT_SPARSE_WORD == 0) {
			/* Runs go after the longest head, then move up to
			 * follow the real one; they must save more than the
			 * size field costs. */
			size_t size = sparse_runs(p + head, data, n, n - 1);

			if (size != SIZE_MAX && size + varint_len(size) < n) {
				*p++ = AFT_TAG_MEM_SPARSE;
				p = aft_put_varint(p, gpa);
				p = aft_put_varint(p, n);
				p = aft_put_varint(p, size);
				memmove(p, w->buf + w->len + head, size);
				p += size;
			} else {
				p = put_raw(p, gpa, data, n);
			}
		} else {
			p = put_raw(p, gpa, data, n);
		}
		if (data)
			data += n;
		w->len = (size_t)(p - w->buf);
		w->n_records++;
		gpa += n;
		len -= n;
	}
	return 0;
}

int af_trace_write_mem(struct af_trace_writer *w, uint64_t gpa,
		       const void *data, size_t len)
{
	if (!data)
		return -EINVAL;
	return write_mem(w, gpa, data, len);
}

int af_trace_write_mem_fail(struct af_trace_writer *w, uint64_t gpa,
			    size_t len)
{
	return write_mem(w, gpa, NULL, len);
}

int af_trace_writer_flush(struct af_trace_writer *w)
{
	if (!w)
		return -EINVAL;
	if (flush_buf(w))
		return w->err;
	errno = 0;
	if (fflush(w->f))
		w->err = errno ? -errno : -EIO;
	return w->err;
}

int af_trace_writer_close(struct af_trace_writer *w)
{
	int rc;

	if (!w)
		return 0;
	if (!room(w, 1 + AFT_VARINT_MAX)) {
		uint8_t *p = w->buf + w->len;
		*p++ = AFT_TAG_END;
		p = aft_put_varint(p, w->n_records);
		w->len = (size_t)(p - w->buf);
	}
	af_trace_writer_flush(w);
	errno = 0;
	if (w->own_f && fclose(w->f) && !w->err)
		w->err = errno ? -errno : -EIO;
	rc = w->err;
	free(w->buf);
	free(w);
	return rc;
}
