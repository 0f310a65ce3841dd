/*
 * lib/trace/reader.c - the trace reader: checks the header and decodes
 * records (docs/trace-format.md) from memory, either the caller's buffer or
 * a large block buffer refilled from a stream. Every length and value is
 * checked before use; the first problem becomes a sticky negative errno and a
 * one-line message naming the byte offset. Sparse memory records are
 * expanded into a buffer of the reader's (or, for replay, handed over as
 * runs). No allocation and no stdio call per record.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "trace_format.h"

#define READER_BUF (1u << 20) /* block size; > AFT_MAX_HEAD + AF_TRACE_MAX_MEM */

typedef unsigned long long ull;

int aft_reader_fail(struct af_trace_reader *r, int rc, const char *fmt, ...)
{
	va_list ap;

	if (r->err)
		return r->err;
	r->err = rc;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
	return rc;
}

/* File mode: moves the unread bytes to the front of the buffer and reads
 * until it is full or the stream ends. */
static int refill(struct af_trace_reader *r)
{
	size_t keep, got, want;

	if (r->eof || !r->f || r->err)
		return r->err;
	keep = (size_t)(r->end - r->p);
	r->base_off = aft_off(r, r->p);
	memmove(r->buf, r->p, keep);
	r->base = r->p = r->buf;
	r->end = r->buf + keep;
	want = r->cap - keep;
	got = fread(r->buf + keep, 1, want, r->f);
	r->end += got;
	if (got < want) {
		if (ferror(r->f))
			return aft_reader_fail(r, -EIO,
					       "read error at byte %llu",
					       (ull)aft_off(r, r->end));
		r->eof = 1;
	}
	return 0;
}

/* Makes n bytes available at p if the input has them; returns how many are
 * available (may be fewer than n only at the end of the input). */
static inline size_t avail(struct af_trace_reader *r, size_t n)
{
	if ((size_t)(r->end - r->p) < n && !r->eof)
		refill(r);
	return (size_t)(r->end - r->p);
}

/* Decodes a LEB128 varint of at most 10 bytes from q (10 bytes must be
 * readable). Returns the byte after it, or NULL if it does not fit 64 bits. */
static inline const uint8_t *get_varint(const uint8_t *q, uint64_t *v)
{
	uint64_t x, b = *q++;
	unsigned shift = 7;

	if (b < 0x80) {
		*v = b;
		return q;
	}
	x = b & 0x7f;
	for (int i = 1; i < (int)AFT_VARINT_MAX; i++, shift += 7) {
		b = *q++;
		x |= (b & 0x7f) << shift;
		if (b < 0x80) {
			if (i == AFT_VARINT_MAX - 1 && b > 1)
				return NULL;
			*v = x;
			return q;
		}
	}
	return NULL;
}

static int bad_varint(struct af_trace_reader *r, const char *what)
{
	return aft_reader_fail(r, -EBADMSG,
			       "%s of the record at byte %llu is not a valid "
			       "varint (over 64 bits)",
			       what, (ull)r->rec_off);
}

static int truncated(struct af_trace_reader *r, const char *what)
{
	return aft_reader_fail(r, -EBADMSG,
			       "truncated %s record at byte %llu (input ends at "
			       "byte %llu)",
			       what, (ull)r->rec_off, (ull)aft_off(r, r->end));
}

#define VARINT(q, v, what)                                                  \
	do {                                                                \
		(q) = get_varint((q), &(v));                                \
		if (!(q))                                                   \
			return bad_varint(r, (what));                       \
	} while (0)

static int decode_truth(struct af_trace_reader *r, const uint8_t *q,
			struct af_truth *t, const uint8_t **after)
{
	uint64_t v;

	t->kind = q[1];
	q += 2;
	VARINT(q, v, "truth vcpu");
	if (v >= r->info.n_vcpus)
		return aft_reader_fail(r, -EBADMSG,
				       "truth record at byte %llu has vcpu "
				       "%llu, trace has %u",
				       (ull)r->rec_off, (ull)v, r->info.n_vcpus);
	t->vcpu = (uint16_t)v;
	VARINT(q, v, "truth pid");
	if (v > UINT32_MAX)
		return aft_reader_fail(r, -EBADMSG,
				       "truth record at byte %llu has pid %llu "
				       "over 32 bits",
				       (ull)r->rec_off, (ull)v);
	t->pid = (uint32_t)v;
	VARINT(q, v, "truth ppid");
	if (v > UINT32_MAX)
		return aft_reader_fail(r, -EBADMSG,
				       "truth record at byte %llu has ppid "
				       "%llu over 32 bits",
				       (ull)r->rec_off, (ull)v);
	t->ppid = (uint32_t)v;
	VARINT(q, v, "truth time");
	r->last_time = aft_unzigzag(r->last_time, v);
	t->time_ns = r->last_time;
	VARINT(q, v, "truth asid");
	t->asid = v - 1; /* 0 encodes AF_ASID_NONE */
	*after = q;
	return 0;
}

/* gpa and len of a memory or failed-read record. */
static int decode_mem_head(struct af_trace_reader *r, const uint8_t *q,
			   uint64_t *gpa, uint64_t *len, const uint8_t **after)
{
	q++;
	VARINT(q, *gpa, "memory gpa");
	VARINT(q, *len, "memory length");
	*after = q;
	return 0;
}

static int check_mem(struct af_trace_reader *r, uint64_t gpa, uint64_t len)
{
	if (len < 1 || len > AF_TRACE_MAX_MEM)
		return aft_reader_fail(r, -EBADMSG,
				       "memory record at byte %llu has length "
				       "%llu, not in 1..%u",
				       (ull)r->rec_off, (ull)len,
				       AF_TRACE_MAX_MEM);
	if (len - 1 > UINT64_MAX - gpa)
		return aft_reader_fail(r, -EBADMSG,
				       "memory record at byte %llu: gpa 0x%llx "
				       "+ length %llu wraps around",
				       (ull)r->rec_off, (ull)gpa, (ull)len);
	return 0;
}

/* A run count of a sparse record: a varint of 1 or 2 bytes before end.
 * Returns the byte after it, or NULL if it is cut off or longer. */
static inline const uint8_t *get_count(const uint8_t *q, const uint8_t *end,
				       uint32_t *v)
{
	uint32_t b;

	if (q >= end)
		return NULL;
	b = *q++;
	if (b < 0x80) {
		*v = b;
		return q;
	}
	if (q >= end || *q >= 0x80)
		return NULL;
	*v = (b & 0x7f) | (uint32_t)*q++ << 7;
	return q;
}

int aft_sparse_expand(struct af_trace_reader *r, const uint8_t *q,
		      size_t size, uint8_t *dst, uint32_t len)
{
	const uint8_t *end = q + size;
	uint32_t words = len / AFT_SPARSE_WORD, at = 0, skip, n;

	while (q < end) {
		const uint8_t *run = q;

		q = get_count(q, end, &skip);
		if (q)
			q = get_count(q, end, &n);
		if (!q)
			return aft_reader_fail(r, -EBADMSG,
					       "sparse memory record at byte "
					       "%llu: bad run count at run "
					       "offset %llu (cut off, or over 2 "
					       "bytes)",
					       (ull)r->rec_off,
					       (ull)(run - (end - size)));
		if (n == 0 || skip > words - at || n > words - at - skip)
			return aft_reader_fail(r, -EBADMSG,
					       "sparse memory record at byte "
					       "%llu: run of %u words after %u "
					       "zero words at word %u passes its "
					       "%u words",
					       (ull)r->rec_off, n, skip, at,
					       words);
		if ((size_t)(end - q) / AFT_SPARSE_WORD < n)
			return aft_reader_fail(r, -EBADMSG,
					       "sparse memory record at byte "
					       "%llu: run of %u words has only "
					       "%llu bytes left",
					       (ull)r->rec_off, n,
					       (ull)(end - q));
		memset(dst + (size_t)at * AFT_SPARSE_WORD, 0,
		       (size_t)skip * AFT_SPARSE_WORD);
		at += skip;
		memcpy(dst + (size_t)at * AFT_SPARSE_WORD, q,
		       (size_t)n * AFT_SPARSE_WORD);
		at += n;
		q += (size_t)n * AFT_SPARSE_WORD;
	}
	memset(dst + (size_t)at * AFT_SPARSE_WORD, 0,
	       (size_t)(words - at) * AFT_SPARSE_WORD);
	return 0;
}

/* Skips n payload bytes after a header of h bytes (extension records). */
static int skip(struct af_trace_reader *r, size_t h, uint64_t n)
{
	r->p += h;
	for (;;) {
		size_t have = (size_t)(r->end - r->p);
		if (n <= have) {
			r->p += n;
			return 0;
		}
		n -= have;
		r->p = r->end;
		if (r->eof)
			return truncated(r, "extension");
		if (refill(r))
			return r->err;
	}
}

int af_trace_next(struct af_trace_reader *r, struct af_record *rec)
{
	const uint8_t *s, *after = NULL;
	size_t have;
	int tail, rc;
	unsigned tag;

	if (!r || !rec)
		return -EINVAL;
	rc = aft_next_obs(r, rec);
	if (rc)
		return rc;
again:
	if (r->err)
		return r->err;
	if (r->done)
		return 0;
	have = avail(r, AFT_MAX_HEAD);
	if (r->err)
		return r->err;
	r->rec_off = aft_off(r, r->p);
	if (have == 0)
		return aft_reader_fail(r, -EBADMSG,
				       "trace ends at byte %llu without an end "
				       "record (truncated?)",
				       (ull)r->rec_off);
	/* The decoders may read AFT_MAX_HEAD bytes; near the end of the input
	 * they read a zero-padded copy and the length is checked after. */
	s = r->p;
	tail = have < AFT_MAX_HEAD;
	if (tail) {
		memcpy(r->scratch, r->p, have);
		memset(r->scratch + have, 0, sizeof r->scratch - have);
		s = r->scratch;
	}
	tag = s[0];
	switch (tag) {
	case AFT_TAG_OBS:
		rc = aft_decode_obs(r, s, &rec->u.obs, &after);
		if (rc)
			return rc;
		if ((size_t)(after - s) > have)
			return truncated(r, "observation");
		rec->type = AF_REC_OBS;
		r->p += after - s;
		break;
	case AFT_TAG_TRUTH:
		rc = decode_truth(r, s, &rec->u.truth, &after);
		if (rc)
			return rc;
		if ((size_t)(after - s) > have)
			return truncated(r, "truth");
		rec->type = AF_REC_TRUTH;
		r->p += after - s;
		break;
	case AFT_TAG_MEM:
	case AFT_TAG_MEM_FAIL: {
		uint64_t gpa = 0, len = 0;
		size_t h;

		rc = decode_mem_head(r, s, &gpa, &len, &after);
		if (rc)
			return rc;
		h = (size_t)(after - s);
		if (h > have)
			return truncated(r, "memory");
		rc = check_mem(r, gpa, len);
		if (rc)
			return rc;
		rec->u.mem.gpa = gpa;
		rec->u.mem.len = (uint32_t)len;
		rec->u.mem.data = NULL;
		rec->type = AF_REC_MEM_FAIL;
		if (tag == AFT_TAG_MEM) {
			if (avail(r, h + len) < h + len) {
				if (r->err)
					return r->err;
				return aft_reader_fail(
					r, -EBADMSG,
					"truncated memory record at byte %llu: "
					"%llu data bytes, input has %llu",
					(ull)r->rec_off, (ull)len,
					(ull)(r->end - r->p - (ptrdiff_t)h));
			}
			rec->u.mem.data = r->p + h;
			rec->type = AF_REC_MEM;
			h += len;
		}
		r->p += h;
		break;
	}
	case AFT_TAG_MEM_SPARSE: {
		uint64_t gpa = 0, len = 0, size = 0;
		const uint8_t *q;
		size_t h;

		if (r->info.version < 2)
			return aft_reader_fail(r, -EBADMSG,
					       "unknown record tag 0x%02x at "
					       "byte %llu (sparse memory "
					       "records begin with version 2, "
					       "the trace is version %u)",
					       tag, (ull)r->rec_off,
					       (unsigned)r->info.version);
		rc = decode_mem_head(r, s, &gpa, &len, &after);
		if (rc)
			return rc;
		q = after;
		VARINT(q, size, "sparse memory size");
		h = (size_t)(q - s);
		if (h > have)
			return truncated(r, "sparse memory");
		rc = check_mem(r, gpa, len);
		if (rc)
			return rc;
		if (len % AFT_SPARSE_WORD)
			return aft_reader_fail(r, -EBADMSG,
					       "sparse memory record at byte "
					       "%llu has length %llu, not a "
					       "multiple of %u",
					       (ull)r->rec_off, (ull)len,
					       AFT_SPARSE_WORD);
		if (size > len)
			return aft_reader_fail(r, -EBADMSG,
					       "sparse memory record at byte "
					       "%llu has %llu bytes of runs for "
					       "%llu bytes of memory",
					       (ull)r->rec_off, (ull)size,
					       (ull)len);
		if (avail(r, h + size) < h + size) {
			if (r->err)
				return r->err;
			return aft_reader_fail(
				r, -EBADMSG,
				"truncated sparse memory record at byte %llu: "
				"%llu bytes of runs, input has %llu",
				(ull)r->rec_off, (ull)size,
				(ull)(r->end - r->p - (ptrdiff_t)h));
		}
		rec->u.mem.gpa = gpa;
		rec->u.mem.len = (uint32_t)len;
		if (r->raw_sparse) {
			rec->u.mem.data = r->p + h;
			r->sparse_size = (uint32_t)size;
			rec->type = AFT_REC_MEM_SPARSE;
		} else {
			rc = aft_sparse_expand(r, r->p + h, (size_t)size,
					       r->expand, (uint32_t)len);
			if (rc)
				return rc;
			rec->u.mem.data = r->expand;
			rec->type = AF_REC_MEM;
		}
		r->p += h + size;
		break;
	}
	case AFT_TAG_END: {
		uint64_t n;
		const uint8_t *q = s + 1;

		VARINT(q, n, "end record count");
		if ((size_t)(q - s) > have)
			return truncated(r, "end");
		if (n != r->n_records)
			return aft_reader_fail(r, -EBADMSG,
					       "end record at byte %llu counts "
					       "%llu records, %llu precede it",
					       (ull)r->rec_off, (ull)n,
					       (ull)r->n_records);
		r->p += q - s;
		if (avail(r, 1)) {
			if (r->err)
				return r->err;
			return aft_reader_fail(r, -EBADMSG,
					       "data after the end record at "
					       "byte %llu",
					       (ull)aft_off(r, r->p));
		}
		if (r->err)
			return r->err;
		r->done = 1;
		return 0;
	}
	default:
		if (tag >= AFT_TAG_EXT_MIN) {
			const uint8_t *q = s + 1;
			uint64_t n;

			VARINT(q, n, "extension length");
			if ((size_t)(q - s) > have)
				return truncated(r, "extension");
			if (n > AFT_EXT_MAX_LEN)
				return aft_reader_fail(
					r, -EBADMSG,
					"extension record 0x%02x at byte %llu "
					"has length %llu over the limit %u",
					tag, (ull)r->rec_off, (ull)n,
					AFT_EXT_MAX_LEN);
			if (skip(r, (size_t)(q - s), n))
				return r->err;
			r->n_records++;
			goto again;
		}
		return aft_reader_fail(r, -EBADMSG,
				       "unknown record tag 0x%02x at byte %llu",
				       tag, (ull)r->rec_off);
	}
	r->n_records++;
	return 1;
}

static int read_header(struct af_trace_reader *r)
{
	struct af_trace_info *in = &r->info;
	size_t have = avail(r, AFT_HEADER_V1);
	const uint8_t *h = r->p;
	unsigned version, hsize, field;
	char why[128];

	if (r->err)
		return r->err;
	if (memcmp(h, AFT_MAGIC, have < AFT_MAGIC_LEN ? have : AFT_MAGIC_LEN))
		return aft_reader_fail(r, -EBADMSG,
				       "bad magic at byte 0: not an antfarm "
				       "trace");
	if (have < 12)
		return aft_reader_fail(r, -EBADMSG,
				       "truncated header: input has %llu bytes, "
				       "a header needs %u",
				       (ull)have, AFT_HEADER_V1);
	version = aft_get_le16(h + 8);
	hsize = aft_get_le16(h + 10);
	if (version < 1 || version > AF_TRACE_VERSION)
		return aft_reader_fail(r, -ENOTSUP,
				       "unsupported trace format version %u at "
				       "byte 8 (this reader knows 1..%d)",
				       version, AF_TRACE_VERSION);
	if (hsize < AFT_HEADER_V1 || hsize > AFT_HEADER_MAX)
		return aft_reader_fail(r, -EBADMSG,
				       "bad header size %u at byte 10 (must be "
				       "%u..%u)",
				       hsize, AFT_HEADER_V1, AFT_HEADER_MAX);
	have = avail(r, hsize);
	h = r->p;
	if (r->err)
		return r->err;
	if (have < hsize)
		return aft_reader_fail(r, -EBADMSG,
				       "truncated header: input has %llu bytes, "
				       "the header has %u",
				       (ull)have, hsize);
	in->version = version;
	in->mmu = h[12];
	in->ctx_bits = h[13];
	in->n_vcpus = aft_get_le16(h + 14);
	in->phys_bytes = aft_get_le64(h + 16);
	if (!memchr(h + 24, 0, AFT_GUEST_LEN))
		return aft_reader_fail(r, -EBADMSG,
				       "guest description at byte 24 is not "
				       "NUL-terminated");
	memcpy(in->guest, h + 24, AFT_GUEST_LEN);
	if (aft_check_info(in, why, sizeof why, &field))
		return aft_reader_fail(r, -EBADMSG, "bad header: %s at byte %u",
				       why, field);
	r->p += hsize;
	r->rec_off = hsize;
	return 0;
}

static struct af_trace_reader *reader_alloc(void)
{
	struct af_trace_reader *r = calloc(1, sizeof *r);

	if (r) {
		r->expand = malloc(AF_TRACE_MAX_MEM);
		if (!r->expand) {
			free(r);
			r = NULL;
		}
	}
	return r;
}

int af_trace_reader_open_mem(const void *buf, size_t len,
			     struct af_trace_reader **out)
{
	struct af_trace_reader *r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!buf && len)
		return -EINVAL;
	r = reader_alloc();
	if (!r)
		return -ENOMEM;
	r->base = r->p = buf ? buf : (const uint8_t *)"";
	r->end = r->p + len;
	r->eof = 1;
	*out = r;
	return read_header(r);
}

int af_trace_reader_open(const char *path, struct af_trace_reader **out)
{
	struct af_trace_reader *r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!path)
		return -EINVAL;
	r = reader_alloc();
	if (!r)
		return -ENOMEM;
	*out = r;
	r->buf = malloc(READER_BUF);
	if (!r->buf)
		return aft_reader_fail(r, -ENOMEM, "out of memory");
	r->cap = READER_BUF;
	r->base = r->p = r->end = r->buf;
	if (!strcmp(path, "-")) {
		r->f = stdin;
	} else {
		r->f = fopen(path, "rb");
		if (!r->f) {
			int e = errno ? errno : EIO;
			return aft_reader_fail(r, -e, "cannot open %s: %s",
					       path, strerror(e));
		}
		r->own_f = 1;
	}
	return read_header(r);
}

const struct af_trace_info *af_trace_reader_info(const struct af_trace_reader *r)
{
	return r ? &r->info : NULL;
}

const char *af_trace_reader_error(const struct af_trace_reader *r)
{
	return r ? r->msg : "";
}

uint64_t af_trace_reader_offset(const struct af_trace_reader *r)
{
	return r ? aft_off(r, r->p) : 0;
}

void af_trace_reader_free(struct af_trace_reader *r)
{
	if (!r)
		return;
	if (r->own_f)
		fclose(r->f);
	free(r->buf);
	free(r->expand);
	free(r);
}
