/*
 * lib/trace/trace_format.h - internal constants and helpers of the antfarm
 * trace format (docs/trace-format.md is the specification): the header
 * layout, record tags, limits, LEB128 varints and zigzag deltas, and the
 * reader's structure (shared by reader.c and replay.c).
 */
#ifndef AF_TRACE_FORMAT_H
#define AF_TRACE_FORMAT_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <antfarm/trace.h>

/* ---- header ---- */
#define AFT_MAGIC "\x89" "AFT\r\n\x1a\n" /* 8 bytes, PNG-style */
#define AFT_MAGIC_LEN 8
#define AFT_HEADER_V1 88u      /* bytes of the version-1 header */
#define AFT_HEADER_MAX 4096u   /* largest header_size a reader accepts */
#define AFT_GUEST_LEN 64u      /* bytes of the guest description field */
#define AFT_MAX_CTX_BITS 16u   /* largest ctx_bits accepted */

/* ---- record tags ---- */
#define AFT_TAG_OBS 0x01u      /* observation */
#define AFT_TAG_MEM 0x02u      /* memory contents */
#define AFT_TAG_TRUTH 0x03u    /* ground-truth event */
#define AFT_TAG_MEM_FAIL 0x04u /* a memory read that failed */
#define AFT_TAG_END 0x05u      /* end of trace, with the record count */
#define AFT_TAG_MEM_SPARSE 0x06u /* memory contents, zero words left out
                                    (version 2 on) */
#define AFT_TAG_EXT_MIN 0x80u  /* 0x80..0xff: length-prefixed, skippable */
#define AFT_EXT_MAX_LEN 0xffffffffu /* longest extension payload */

/* ---- observations ----
 * tag, kind, a 24-bit little-endian layout word holding a 3-bit length code
 * per field (field f in bits 3f..3f+2), then each field's bytes, little-endian,
 * in field order. Code c means c bytes for c <= 6 and 8 bytes for c = 7. */
enum aft_obs_field {
	AFT_F_WIDTH = 0,  /* width; at most 1 byte */
	AFT_F_VCPU = 1,   /* vcpu; 0 bytes: previous observation's; <= 2 */
	AFT_F_AUX = 2,    /* aux; at most 4 bytes */
	AFT_F_TIME = 3,   /* zigzag time delta */
	AFT_F_ICOUNT = 4, /* zigzag icount delta against the same vCPU's last */
	AFT_F_ADDR = 5,   /* zigzag addr delta; 0 bytes: addr is 0 */
	AFT_F_VALUE = 6,  /* value */
	AFT_F_RESERVED = 7, /* must have code 0 in version 1 */
};
#define AFT_OBS_FIXED 5u /* tag, kind, layout word */
#define AFT_OBS_MAX (AFT_OBS_FIXED + 1 + 2 + 4 + 4 * 8) /* 44 bytes */

static inline unsigned aft_code_len(unsigned code)
{
	return code == 7 ? 8 : code;
}

/* ---- sparse memory records (tag 0x06) ----
 * tag, gpa varint, len varint (a multiple of 8), size varint (<= len), then
 * size bytes of runs: skip count, word count (each a varint of 1 or 2 bytes),
 * that many 8-byte words. Words no run covers are zero. */
#define AFT_SPARSE_WORD 8u       /* bytes per word */

/* Internal record type: a sparse memory record handed to replay unexpanded
 * (u.mem.data is its runs, af_trace_reader.sparse_size their length). Only
 * returned while af_trace_reader.raw_sparse is set. */
#define AFT_REC_MEM_SPARSE 0x40u

/* Bytes a decoder may look at from a record's start (everything but memory
 * data): the longest observation plus an 8-byte over-read, and any record
 * made of a tag, a byte and five 10-byte varints. */
#define AFT_MAX_HEAD 64u
#define AFT_VARINT_MAX 10u

static inline uint64_t aft_zigzag(uint64_t now, uint64_t before)
{
	uint64_t d = now - before; /* two's complement difference */
	return (d << 1) ^ (uint64_t)-(int64_t)(d >> 63);
}

static inline uint64_t aft_unzigzag(uint64_t base, uint64_t zz)
{
	return base + ((zz >> 1) ^ (uint64_t)-(int64_t)(zz & 1));
}

/* Writes v as LEB128 at p (room for AFT_VARINT_MAX); returns the new end. */
static inline uint8_t *aft_put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static inline void aft_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void aft_put_le64(uint8_t *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	memcpy(p, &v, 8);
}

static inline uint16_t aft_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint64_t aft_get_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* ---- the reader ---- */
struct af_trace_reader {
	const uint8_t *p;      /* next unread byte */
	const uint8_t *end;    /* end of the bytes available in the window */
	const uint8_t *base;   /* start of the window (buf or caller memory) */
	uint64_t base_off;     /* file offset of base */
	uint8_t *buf;          /* owned block buffer (file mode), or NULL */
	size_t cap;            /* size of buf */
	FILE *f;               /* stream (file mode), or NULL */
	int own_f;             /* we opened f and must close it */
	int eof;               /* no bytes exist beyond end */
	int done;              /* the end record has been read */
	int err;               /* sticky negative errno, 0 if fine */
	uint64_t rec_off;      /* offset of the record last returned/started */
	uint64_t n_records;    /* records read so far (END excluded) */
	uint64_t last_time;    /* time of the previous obs/truth record */
	uint64_t last_addr;    /* addr of the previous obs with an addr */
	uint16_t last_vcpu;    /* vcpu of the previous observation */
	uint64_t icount[AF_MAX_VCPUS]; /* last icount per vCPU */
	int raw_sparse;        /* return sparse records unexpanded (replay) */
	uint32_t sparse_size;  /* bytes of runs of the last such record */
	uint8_t *expand;       /* AF_TRACE_MAX_MEM bytes: sparse records
	                          expanded for af_trace_next()'s callers */
	struct af_trace_info info; /* header contents */
	uint8_t scratch[2 * AFT_MAX_HEAD]; /* zero-padded copy of a short tail */
	char msg[192];         /* last error, one line */
};

/* Sets the reader's sticky error (if none is set yet) and its message; returns
 * rc. Used by replay.c too, so replay failures land in the reader's slot. */
int aft_reader_fail(struct af_trace_reader *r, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Validates trace info as both writer and reader require it; on failure
 * writes a reason to why (if not NULL), the header offset of the bad field to
 * *field_off (if not NULL), and returns -EINVAL. */
int aft_check_info(const struct af_trace_info *info, char *why, size_t n,
		   unsigned *field_off);

/* Hard cap on replay's memory image, bytes (1 GiB; unit tests lower it). */
extern uint64_t aft_replay_image_cap;

/* Replay's sparse image of guest memory (replay.c), exposed for unit tests.
 * Bytes at or above phys are never kept. */
struct aft_image;
int aft_image_new(uint64_t phys, struct aft_image **out);
void aft_image_free(struct aft_image *img);
/* A memory record (data) or failed-read record (data NULL): the bytes become
 * known or unknown. -EFBIG past the cap, -ENOMEM. */
int aft_image_fill(struct aft_image *img, uint64_t gpa, const uint8_t *data,
		   uint64_t len);
/* A sparse memory record (size bytes of runs, len bytes of memory, as the
 * reader checked them): like aft_image_fill() with the expanded bytes. Bad
 * runs give -EBADMSG with r's error set; r->expand is used as scratch. */
int aft_image_fill_sparse(struct aft_image *img, struct af_trace_reader *r,
			  uint64_t gpa, const uint8_t *runs, size_t size,
			  uint32_t len);
/* A page-table store, applied only to pages already present. */
void aft_image_store(struct aft_image *img, uint64_t addr, unsigned width,
		     uint64_t value);
/* read_phys for the engine (ctx is the image): 0 if every byte is known,
 * else -EFAULT. */
int aft_image_read(void *ctx, uint64_t gpa, void *buf, size_t len);
/* Bytes of memory the image has allocated (pages, bitmaps, leaves), as
 * counted for the cap. */
uint64_t aft_image_bytes(const struct aft_image *img);

/* Expands the runs of a sparse memory record (size bytes at q, all
 * readable) into len bytes at dst (len a multiple of 8, at most
 * AF_TRACE_MAX_MEM), checking every count against len and size. Returns 0,
 * or -EBADMSG with the reader's error set (naming r->rec_off); dst may then
 * be partly written. */
int aft_sparse_expand(struct af_trace_reader *r, const uint8_t *q,
		      size_t size, uint8_t *dst, uint32_t len);

static inline uint64_t aft_off(const struct af_trace_reader *r,
			      const uint8_t *p)
{
	return r->base_off + (uint64_t)(p - r->base);
}

/* Length code of field f in layout word lw. */
#define FCODE(lw, f) (((lw) >> (3 * (f))) & 7)

/* Field with length code c at *q (8 bytes readable); advances *q. Tables,
 * not branches: field lengths vary from record to record. */
static inline uint64_t field(const uint8_t **q, unsigned c)
{
	static const uint8_t len[8] = { 0, 1, 2, 3, 4, 5, 6, 8 };
	static const uint64_t mask[8] = {
		0, 0xff, 0xffff, 0xffffff, 0xffffffff, 0xffffffffffull,
		0xffffffffffffull, ~0ull
	};
	uint64_t v = aft_get_le64(*q) & mask[c];

	*q += len[c];
	return v;
}

/* An observation; AFT_MAX_HEAD bytes must be readable at q. Free of
 * data-dependent branches but for the error check. */
static inline __attribute__((always_inline)) int
aft_decode_obs(struct af_trace_reader *r, const uint8_t *q,
		      struct af_obs *o, const uint8_t **after)
{
	uint32_t lw = q[2] | (uint32_t)q[3] << 8 | (uint32_t)q[4] << 16;
	unsigned cv = FCODE(lw, AFT_F_VCPU);
	uint64_t vcpu, aux, dt, di, da, has_addr, has_vcpu;

	o->kind = q[1];
	q += AFT_OBS_FIXED;
	o->width = (uint8_t)field(&q, FCODE(lw, AFT_F_WIDTH));
	vcpu = field(&q, cv);
	aux = field(&q, FCODE(lw, AFT_F_AUX));
	dt = field(&q, FCODE(lw, AFT_F_TIME));
	di = field(&q, FCODE(lw, AFT_F_ICOUNT));
	da = field(&q, FCODE(lw, AFT_F_ADDR));
	o->value = field(&q, FCODE(lw, AFT_F_VALUE));
	has_vcpu = -(uint64_t)(cv != 0);
	vcpu = (vcpu & has_vcpu) | (r->last_vcpu & ~has_vcpu);
	if (__builtin_expect(FCODE(lw, AFT_F_WIDTH) > 1 || cv > 2 ||
			     FCODE(lw, AFT_F_AUX) > 4 ||
			     FCODE(lw, AFT_F_RESERVED) != 0 ||
			     vcpu >= r->info.n_vcpus, 0)) {
		r->rec_off = aft_off(r, r->p);
		if (vcpu >= r->info.n_vcpus && cv <= 2)
			return aft_reader_fail(r, -EBADMSG,
					       "observation at byte %llu has "
					       "vcpu %llu, trace has %u",
					       (unsigned long long)r->rec_off, (unsigned long long)vcpu,
					       r->info.n_vcpus);
		return aft_reader_fail(r, -EBADMSG,
				       "observation at byte %llu has a bad "
				       "layout word 0x%06x (a field too long "
				       "or the reserved field used)",
				       (unsigned long long)r->rec_off, (unsigned)lw);
	}
	o->vcpu = r->last_vcpu = (uint16_t)vcpu;
	o->aux = (uint32_t)aux;
	o->time_ns = r->last_time = aft_unzigzag(r->last_time, dt);
	o->icount = r->icount[vcpu] = aft_unzigzag(r->icount[vcpu], di);
	r->last_addr = aft_unzigzag(r->last_addr, da);
	has_addr = -(uint64_t)(FCODE(lw, AFT_F_ADDR) != 0);
	o->addr = r->last_addr & has_addr;
	*after = q;
	return 0;
}

/* The common case of af_trace_next(), inline for replay: an observation with
 * plenty of input left. Returns 1 (rec filled), a negative errno, or 0 if
 * af_trace_next() must handle the record. */
static inline __attribute__((always_inline)) int
aft_next_obs(struct af_trace_reader *r, struct af_record *rec)
{
	const uint8_t *after = NULL;
	int rc;

	if (__builtin_expect((size_t)(r->end - r->p) < AFT_MAX_HEAD ||
			     r->p[0] != AFT_TAG_OBS || r->err, 0))
		return 0;
	rc = aft_decode_obs(r, r->p, &rec->u.obs, &after);
	if (rc)
		return rc;
	rec->type = AF_REC_OBS;
	r->p = after;
	r->n_records++;
	return 1;
}

/* af_trace_next() with its common case inline. */
static inline int aft_next(struct af_trace_reader *r, struct af_record *rec)
{
	int rc = aft_next_obs(r, rec);
	return rc ? rc : af_trace_next(r, rec);
}

/* The info a writer was opened with (for the recorder's checks). */
const struct af_trace_info *aft_writer_info(const struct af_trace_writer *w);

#endif
