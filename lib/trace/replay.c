/*
 * lib/trace/replay.c - re-runs inference from a trace: keeps a bounded sparse
 * image of guest-physical memory (bytes from memory records and page-table
 * stores, each byte marked valid or not), serves the engine's reads from it,
 * and feeds every observation to an engine configured from the trace info.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace_format.h"

#define PAGE 4096u
#define LEAF_PAGES 512u                 /* pages per leaf: 2 MiB of guest */
#define CHUNK_PAGES 32u                 /* pages allocated at once */

/* Most bytes of image memory (pages and leaves): 1 GiB; tests lower it. */
uint64_t aft_replay_image_cap = 1ull << 30;
#define IMAGE_CAP aft_replay_image_cap

struct img_page {
	uint8_t data[PAGE];        /* guest bytes */
	uint64_t valid[PAGE / 64]; /* bit per byte: known content */
};

struct img_leaf {
	struct img_page *pg[LEAF_PAGES]; /* NULL: no byte of that page known */
};

struct img_chunk {
	struct img_chunk *next;          /* list of chunks, for freeing */
	struct img_page pages[CHUNK_PAGES]; /* handed out in order */
};

struct aft_image {
	uint64_t phys;            /* bytes at or above are never kept */
	size_t n_top;             /* leaves needed to cover phys */
	struct img_leaf **top;    /* n_top leaf pointers */
	uint64_t bytes;           /* pages and leaves in use, bytes */
	struct img_chunk *chunks; /* page storage */
	unsigned chunk_used;      /* pages used in chunks (the newest) */
};

struct replay {
	struct aft_image img;           /* the guest memory image */
	const struct af_replay_sink *sink; /* the caller's sink, or NULL */
};

static _Thread_local char replay_msg[192];

const char *af_replay_error(void)
{
	return replay_msg;
}

static int image_init(struct aft_image *img, uint64_t phys)
{
	memset(img, 0, sizeof *img);
	img->phys = phys;
	img->n_top = (size_t)((phys + (uint64_t)PAGE * LEAF_PAGES - 1) /
			      ((uint64_t)PAGE * LEAF_PAGES));
	img->chunk_used = CHUNK_PAGES;
	if (!img->n_top)
		return 0;
	img->top = calloc(img->n_top, sizeof *img->top);
	if (!img->top) {
		img->n_top = 0;
		return -ENOMEM;
	}
	return 0;
}

static void image_free(struct aft_image *img)
{
	for (size_t i = 0; i < img->n_top; i++)
		free(img->top[i]);
	free(img->top);
	while (img->chunks) {
		struct img_chunk *c = img->chunks;
		img->chunks = c->next;
		free(c);
	}
}

int aft_image_new(uint64_t phys, struct aft_image **out)
{
	struct aft_image *img = malloc(sizeof *img);
	int rc;

	*out = NULL;
	if (!img)
		return -ENOMEM;
	rc = image_init(img, phys);
	if (rc) {
		free(img);
		return rc;
	}
	*out = img;
	return 0;
}

void aft_image_free(struct aft_image *img)
{
	if (!img)
		return;
	image_free(img);
	free(img);
}

uint64_t aft_image_bytes(const struct aft_image *img)
{
	return img->bytes;
}

/* The page holding page number pn (pn < phys pages), or NULL. */
static inline struct img_page *page_get(const struct aft_image *img, uint64_t pn)
{
	const struct img_leaf *l = img->top[pn / LEAF_PAGES];
	return l ? l->pg[pn % LEAF_PAGES] : NULL;
}

static int page_make(struct aft_image *img, uint64_t pn, struct img_page **out)
{
	struct img_leaf **lp = &img->top[pn / LEAF_PAGES];
	struct img_page *pg;

	if (!*lp) {
		if (img->bytes + sizeof(struct img_leaf) > IMAGE_CAP)
			return -EFBIG;
		*lp = calloc(1, sizeof **lp);
		if (!*lp)
			return -ENOMEM;
		img->bytes += sizeof(struct img_leaf);
	}
	pg = (*lp)->pg[pn % LEAF_PAGES];
	if (!pg) {
		if (img->bytes + sizeof(struct img_page) > IMAGE_CAP)
			return -EFBIG;
		if (img->chunk_used == CHUNK_PAGES) {
			struct img_chunk *c = malloc(sizeof *c);
			if (!c)
				return -ENOMEM;
			c->next = img->chunks;
			img->chunks = c;
			img->chunk_used = 0;
		}
		pg = &img->chunks->pages[img->chunk_used++];
		memset(pg->valid, 0, sizeof pg->valid);
		(*lp)->pg[pn % LEAF_PAGES] = pg;
		img->bytes += sizeof(struct img_page);
	}
	*out = pg;
	return 0;
}

/* Mask of bits [b, b + k) of a 64-bit word, 1 <= k <= 64 - b. */
static inline uint64_t bits(unsigned b, unsigned k)
{
	return (k == 64 ? ~0ull : ((1ull << k) - 1)) << b;
}

static void valid_set(uint64_t *v, unsigned o, unsigned n, int on)
{
	while (n) {
		unsigned b = o % 64, k = 64 - b < n ? 64 - b : n;
		if (on)
			v[o / 64] |= bits(b, k);
		else
			v[o / 64] &= ~bits(b, k);
		o += k;
		n -= k;
	}
}

static int valid_all(const uint64_t *v, unsigned o, unsigned n)
{
	while (n) {
		unsigned b = o % 64, k = 64 - b < n ? 64 - b : n;
		uint64_t m = bits(b, k);
		if ((v[o / 64] & m) != m)
			return 0;
		o += k;
		n -= k;
	}
	return 1;
}

/* Bytes of [gpa, gpa + len) below phys (len >= 1, no wrap). */
static uint64_t clamp(const struct aft_image *img, uint64_t gpa, uint64_t len)
{
	if (gpa >= img->phys)
		return 0;
	return len < img->phys - gpa ? len : img->phys - gpa;
}

/* A memory record: the bytes become known (data) or unknown (data NULL). */
int aft_image_fill(struct aft_image *img, uint64_t gpa, const uint8_t *data,
		      uint64_t len)
{
	len = clamp(img, gpa, len);
	while (len) {
		unsigned o = (unsigned)(gpa % PAGE);
		unsigned n = PAGE - o < len ? PAGE - o : (unsigned)len;
		struct img_page *pg;

		if (data) {
			int rc = page_make(img, gpa / PAGE, &pg);
			if (rc)
				return rc;
			memcpy(pg->data + o, data, n);
			valid_set(pg->valid, o, n, 1);
			data += n;
		} else if ((pg = page_get(img, gpa / PAGE))) {
			valid_set(pg->valid, o, n, 0);
		}
		gpa += n;
		len -= n;
	}
	return 0;
}

/* A page-table store: applied to pages already in the image. */
void aft_image_store(struct aft_image *img, uint64_t addr, unsigned width,
			uint64_t value)
{
	struct img_page *pg;

	if (width != 1 && width != 2 && width != 4 && width != 8)
		return;
	if (addr % PAGE + width <= PAGE && addr < img->phys &&
	    width <= img->phys - addr) {
		unsigned o = (unsigned)(addr % PAGE);
		uint8_t le[8];

		pg = page_get(img, addr / PAGE);
		if (!pg)
			return;
		aft_put_le64(le, value);
		switch (width) { /* fixed sizes: no memcpy call */
		case 8: memcpy(pg->data + o, le, 8); break;
		case 4: memcpy(pg->data + o, le, 4); break;
		case 2: memcpy(pg->data + o, le, 2); break;
		default: pg->data[o] = le[0]; break;
		}
		if (o % 64 + width <= 64)
			pg->valid[o / 64] |= bits(o % 64, width);
		else
			valid_set(pg->valid, o, width, 1);
		return;
	}
	for (unsigned i = 0; i < width; i++) { /* crosses a page or phys */
		uint64_t a = addr + i;
		if (a < addr || a >= img->phys)
			return;
		pg = page_get(img, a / PAGE);
		if (pg) {
			pg->data[a % PAGE] = (uint8_t)(value >> (8 * i));
			valid_set(pg->valid, (unsigned)(a % PAGE), 1, 1);
		}
	}
}

/* The engine's read_phys: whole range known -> copy, else -EFAULT. */
int aft_image_read(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	const struct aft_image *img = ctx;
	uint8_t *out = buf;

	if (len == 0)
		return 0;
	if (gpa >= img->phys || len > img->phys - gpa)
		return -EFAULT;
	while (len) {
		unsigned o = (unsigned)(gpa % PAGE);
		unsigned n = PAGE - o < len ? PAGE - o : (unsigned)len;
		const struct img_page *pg = page_get(img, gpa / PAGE);

		if (!pg || !valid_all(pg->valid, o, n))
			return -EFAULT;
		memcpy(out, pg->data + o, n);
		out += n;
		gpa += n;
		len -= n;
	}
	return 0;
}

static void on_event(void *ctx, const struct af_event *ev)
{
	const struct af_replay_sink *sink = ((struct replay *)ctx)->sink;
	sink->event(sink->ctx, ev);
}

int af_replay(struct af_trace_reader *r, const struct af_replay_sink *sink,
	      struct af_counters *counters)
{
	const struct af_trace_info *info;
	struct af_engine_config cfg;
	struct af_engine *e = NULL;
	struct replay rp;
	struct af_record rec;
	int rc;

	replay_msg[0] = 0;
	if (counters)
		memset(counters, 0, sizeof *counters);
	if (!r)
		return -EINVAL;
	if (r->err)
		return r->err;
	info = &r->info;
	rp.sink = sink;
	rc = image_init(&rp.img, info->phys_bytes);
	if (rc) {
		snprintf(replay_msg, sizeof replay_msg,
			 "replay: out of memory for the memory image");
		aft_reader_fail(r, rc, "%s", replay_msg);
		goto out;
	}
	memset(&cfg, 0, sizeof cfg);
	cfg.mmu = (enum af_mmu)info->mmu;
	cfg.n_vcpus = info->n_vcpus;
	cfg.phys_bytes = info->phys_bytes;
	cfg.ctx_bits = info->ctx_bits;
	cfg.read_phys = aft_image_read;
	cfg.read_ctx = &rp.img;
	if (sink && sink->event) {
		cfg.on_event = on_event;
		cfg.event_ctx = &rp;
	}
	rc = af_engine_new(&cfg, &e);
	if (rc) {
		snprintf(replay_msg, sizeof replay_msg,
			 "replay: the engine refused the trace's configuration "
			 "(mmu %u, %u vcpus, phys_bytes %llu, ctx_bits %u): "
			 "error %d",
			 info->mmu, info->n_vcpus,
			 (unsigned long long)info->phys_bytes, info->ctx_bits,
			 rc);
		aft_reader_fail(r, rc, "%s", replay_msg);
		e = NULL;
		goto out;
	}
	while ((rc = aft_next(r, &rec)) > 0) {
		switch (rec.type) {
		case AF_REC_OBS:
			if (rec.u.obs.kind == AF_OBS_PT_STORE)
				aft_image_store(&rp.img, rec.u.obs.addr,
					    rec.u.obs.width, rec.u.obs.value);
			/* A rejected observation was rejected live too (the
			 * recorder does not record those) or comes from a
			 * newer format: either way it changes nothing. */
			(void)af_engine_observe(e, &rec.u.obs);
			break;
		case AF_REC_MEM:
		case AF_REC_MEM_FAIL:
			rc = aft_image_fill(&rp.img, rec.u.mem.gpa, rec.u.mem.data,
					rec.u.mem.len);
			if (rc) {
				if (rc == -EFBIG)
					snprintf(replay_msg, sizeof replay_msg,
						 "replay: memory record at byte "
						 "%llu: memory image would "
						 "exceed its cap of %llu KiB",
						 (unsigned long long)r->rec_off,
						 (unsigned long long)(IMAGE_CAP >> 10));
				else
					snprintf(replay_msg, sizeof replay_msg,
						 "replay: memory record at byte "
						 "%llu: out of memory",
						 (unsigned long long)r->rec_off);
				aft_reader_fail(r, rc, "%s", replay_msg);
				goto out;
			}
			break;
		case AF_REC_TRUTH:
			if (sink && sink->truth)
				sink->truth(sink->ctx, &rec.u.truth);
			break;
		}
	}
out:
	if (e && counters)
		af_engine_counters(e, counters);
	af_engine_free(e);
	image_free(&rp.img);
	return rc;
}
