/*
 * lib/trace/replay.c - re-runs inference from a trace: keeps a bounded image
 * of guest-physical memory (bytes from memory records and page-table
 * stores, each byte known or not), serves the engine's reads from it, and
 * feeds every observation to an engine configured from the trace info.
 *
 * The image: a two-level index (2 MiB of guest per leaf) of pages handed out
 * in order from chunks of up to 2 MiB, mapped once and asked for transparent
 * huge pages, so the replay loop neither allocates nor takes a page fault
 * per guest page. A page whose bytes are all known (the usual case: memory
 * records are whole page-table frames) carries no per-byte state; only a
 * partly known page has a bitmap, from a small pool. Sparse memory records
 * covering one whole page are expanded straight into it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "trace_format.h"

#define PAGE 4096u
#define LEAF_PAGES 512u              /* pages per leaf: 2 MiB of guest */
#define CHUNK_PAGES 512u             /* most pages mapped at once: 2 MiB */
#define CHUNK_ALIGN (2ul << 20)      /* for transparent huge pages */
#define KNOWN_WORDS (PAGE / 64)      /* bitmap words: a bit per byte */
#define BITMAPS_PER_BLOCK 8u         /* bitmaps allocated at once */
#define PART ((uintptr_t)1)          /* page entry bit: some bytes unknown */

/* Most bytes of image memory (pages, bitmaps, leaves): 1 GiB; tests lower
 * it. */
uint64_t aft_replay_image_cap = 1ull << 30;
#define IMAGE_CAP aft_replay_image_cap

struct img_leaf {
	uintptr_t pg[LEAF_PAGES];    /* page data address (4 KiB aligned), |
	                                PART if some bytes are unknown; 0: no
	                                byte of that page was ever filled */
	uint64_t *known[LEAF_PAGES]; /* for PART pages: bit per byte known */
};

struct img_chunk {
	struct img_chunk *next; /* older chunks */
	void *map;              /* page storage, mmap'd */
	size_t len;             /* its bytes */
};

struct img_bitmaps {
	struct img_bitmaps *next;                     /* older blocks */
	uint64_t bm[BITMAPS_PER_BLOCK][KNOWN_WORDS];  /* handed out in order */
};

struct aft_image {
	uint64_t phys;              /* bytes at or above are never kept */
	uint64_t n_pages;           /* pages below phys (last one partial) */
	size_t n_top;               /* leaves needed to cover phys */
	struct img_leaf **top;      /* n_top leaf pointers */
	uint64_t bytes;             /* pages, bitmaps and leaves allocated */
	uint8_t *next_page;         /* next unused page of the newest chunk */
	uint64_t left;              /* unused pages in it */
	uint64_t mapped;            /* pages in all chunks (<= n_pages) */
	struct img_chunk *chunks;   /* page storage, for freeing */
	struct img_bitmaps *blocks; /* bitmap storage, for freeing */
	unsigned block_used;        /* bitmaps used in the newest block */
	uint64_t *free_known;       /* released bitmaps (first word links) */
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
	img->n_pages = (phys + PAGE - 1) / PAGE;
	img->n_top = (size_t)((img->n_pages + LEAF_PAGES - 1) / LEAF_PAGES);
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
		munmap(c->map, c->len);
		free(c);
	}
	while (img->blocks) {
		struct img_bitmaps *b = img->blocks;
		img->blocks = b->next;
		free(b);
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

/* Maps the next chunk of page storage: up to 2 MiB, never more pages than
 * phys has in all, and within the cap. */
static int chunk_new(struct aft_image *img)
{
	uint64_t want = img->n_pages - img->mapped, fit;
	struct img_chunk *c;
	size_t len, map_len;
	uint8_t *m;

	if (want > CHUNK_PAGES)
		want = CHUNK_PAGES;
	fit = img->bytes < IMAGE_CAP ? (IMAGE_CAP - img->bytes) / PAGE : 0;
	if (want > fit)
		want = fit;
	if (!want)
		return -EFBIG;
	len = (size_t)want * PAGE;
	/* A whole chunk is placed on a 2 MiB boundary so that the kernel can
	 * back it with one huge page: one fault instead of 512. */
	map_len = len == CHUNK_ALIGN ? len + CHUNK_ALIGN : len;
	c = malloc(sizeof *c);
	if (!c)
		return -ENOMEM;
	m = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED && map_len != len) { /* tight address space */
		map_len = len;
		m = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	if (m == MAP_FAILED) {
		free(c);
		return -ENOMEM;
	}
	if (map_len != len) {
		uintptr_t a = ((uintptr_t)m + CHUNK_ALIGN - 1) & ~(CHUNK_ALIGN - 1);
		size_t head = (size_t)(a - (uintptr_t)m);

		if (head)
			munmap(m, head);
		if (map_len - head > len)
			munmap((uint8_t *)a + len, map_len - head - len);
		m = (uint8_t *)a;
#ifdef MADV_HUGEPAGE
		(void)madvise(m, len, MADV_HUGEPAGE); /* a hint; may fail */
#endif
	}
	c->map = m;
	c->len = len;
	c->next = img->chunks;
	img->chunks = c;
	img->next_page = m;
	img->left = want;
	img->mapped += want;
	img->bytes += len;
	return 0;
}

/* A bitmap for a partly known page: every bit set if all, else clear. */
static int known_get(struct aft_image *img, int all, uint64_t **out)
{
	uint64_t *b = img->free_known;

	if (b) {
		memcpy(&img->free_known, b, sizeof img->free_known);
	} else {
		if (!img->blocks || img->block_used == BITMAPS_PER_BLOCK) {
			struct img_bitmaps *k;

			if (img->bytes + sizeof *k > IMAGE_CAP)
				return -EFBIG;
			k = malloc(sizeof *k);
			if (!k)
				return -ENOMEM;
			k->next = img->blocks;
			img->blocks = k;
			img->block_used = 0;
			img->bytes += sizeof *k;
		}
		b = img->blocks->bm[img->block_used++];
	}
	memset(b, all ? 0xff : 0, KNOWN_WORDS * sizeof *b);
	*out = b;
	return 0;
}

static void known_put(struct aft_image *img, uint64_t *b)
{
	memcpy(b, &img->free_known, sizeof img->free_known);
	img->free_known = b;
}

/* Page i of leaf l becomes wholly known. */
static inline void set_full(struct aft_image *img, struct img_leaf *l,
			    unsigned i)
{
	if (l->pg[i] & PART) {
		known_put(img, l->known[i]);
		l->known[i] = NULL;
		l->pg[i] &= ~PART;
	}
}

/* The page of page number pn (< n_pages), made if absent: a new page is
 * wholly known if whole (the caller writes every byte of it), else has no
 * byte known. */
static int page_make(struct aft_image *img, uint64_t pn, int whole,
		     struct img_leaf **lp, uint8_t **data)
{
	struct img_leaf **tl = &img->top[pn / LEAF_PAGES], *l = *tl;
	unsigned i = (unsigned)(pn % LEAF_PAGES);
	int rc;

	if (!l) {
		if (img->bytes + sizeof *l > IMAGE_CAP)
			return -EFBIG;
		l = calloc(1, sizeof *l);
		if (!l)
			return -ENOMEM;
		*tl = l;
		img->bytes += sizeof *l;
	}
	if (!l->pg[i]) {
		uintptr_t e;

		if (!img->left && (rc = chunk_new(img)))
			return rc;
		e = (uintptr_t)img->next_page;
		if (!whole) {
			rc = known_get(img, 0, &l->known[i]);
			if (rc)
				return rc;
			e |= PART;
		}
		img->next_page += PAGE;
		img->left--;
		l->pg[i] = e;
	}
	*lp = l;
	*data = (uint8_t *)(l->pg[i] & ~PART);
	return 0;
}

/* Mask of bits [b, b + k) of a 64-bit word, 1 <= k <= 64 - b. */
static inline uint64_t bits(unsigned b, unsigned k)
{
	return (k == 64 ? ~0ull : ((1ull << k) - 1)) << b;
}

static void known_set(uint64_t *v, unsigned o, unsigned n, int on)
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

static int known_all(const uint64_t *v, unsigned o, unsigned n)
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
		unsigned i = (unsigned)(gpa / PAGE % LEAF_PAGES);
		struct img_leaf *l;
		uint8_t *pd;
		int rc;

		if (data) {
			rc = page_make(img, gpa / PAGE, n == PAGE, &l, &pd);
			if (rc)
				return rc;
			memcpy(pd + o, data, n);
			data += n;
			if (n == PAGE) {
				set_full(img, l, i);
			} else if (l->pg[i] & PART) {
				known_set(l->known[i], o, n, 1);
				if (known_all(l->known[i], 0, PAGE))
					set_full(img, l, i);
			}
		} else if ((l = img->top[gpa / PAGE / LEAF_PAGES]) && l->pg[i]) {
			if (!(l->pg[i] & PART)) {
				rc = known_get(img, 1, &l->known[i]);
				if (rc)
					return rc;
				l->pg[i] |= PART;
			}
			known_set(l->known[i], o, n, 0);
		}
		gpa += n;
		len -= n;
	}
	return 0;
}

/* A sparse memory record. One whole page is expanded straight into the
 * image; anything else through the reader's buffer. */
int aft_image_fill_sparse(struct aft_image *img, struct af_trace_reader *r,
			  uint64_t gpa, const uint8_t *runs, size_t size,
			  uint32_t len)
{
	int rc;

	if (gpa % PAGE == 0 && len == PAGE && gpa < img->phys &&
	    PAGE <= img->phys - gpa) {
		struct img_leaf *l;
		uint8_t *pd;

		rc = page_make(img, gpa / PAGE, 1, &l, &pd);
		if (rc)
			return rc;
		rc = aft_sparse_expand(r, runs, size, pd, PAGE);
		if (rc)
			return rc;
		set_full(img, l, (unsigned)(gpa / PAGE % LEAF_PAGES));
		return 0;
	}
	rc = aft_sparse_expand(r, runs, size, r->expand, len);
	if (rc)
		return rc;
	return aft_image_fill(img, gpa, r->expand, len);
}

/* A page-table store: applied to pages already in the image. */
static inline void image_store(struct aft_image *img, uint64_t addr,
			       unsigned width, uint64_t value)
{
	struct img_leaf *l;
	uintptr_t e;

	if (width != 1 && width != 2 && width != 4 && width != 8)
		return;
	if (addr % PAGE + width <= PAGE && addr < img->phys &&
	    width <= img->phys - addr) {
		unsigned o = (unsigned)(addr % PAGE);
		unsigned i = (unsigned)(addr / PAGE % LEAF_PAGES);
		uint8_t le[8], *pd;

		l = img->top[addr / PAGE / LEAF_PAGES];
		if (!l || !(e = l->pg[i]))
			return;
		pd = (uint8_t *)(e & ~PART) + o;
		aft_put_le64(le, value);
		switch (width) { /* fixed sizes: no memcpy call */
		case 8: memcpy(pd, le, 8); break;
		case 4: memcpy(pd, le, 4); break;
		case 2: memcpy(pd, le, 2); break;
		default: *pd = le[0]; break;
		}
		if (e & PART)
			known_set(l->known[i], o, width, 1);
		return;
	}
	for (unsigned k = 0; k < width; k++) { /* crosses a page or phys */
		uint64_t a = addr + k;
		unsigned i = (unsigned)(a / PAGE % LEAF_PAGES);

		if (a < addr || a >= img->phys)
			return;
		l = img->top[a / PAGE / LEAF_PAGES];
		if (l && (e = l->pg[i])) {
			((uint8_t *)(e & ~PART))[a % PAGE] =
				(uint8_t)(value >> (8 * k));
			if (e & PART)
				known_set(l->known[i], (unsigned)(a % PAGE), 1,
					  1);
		}
	}
}

void aft_image_store(struct aft_image *img, uint64_t addr, unsigned width,
		     uint64_t value)
{
	image_store(img, addr, width, value);
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
	for (;;) {
		unsigned o = (unsigned)(gpa % PAGE);
		unsigned n = PAGE - o < len ? PAGE - o : (unsigned)len;
		unsigned i = (unsigned)(gpa / PAGE % LEAF_PAGES);
		const struct img_leaf *l = img->top[gpa / PAGE / LEAF_PAGES];
		uintptr_t e;

		if (!l || !(e = l->pg[i]))
			return -EFAULT;
		if ((e & PART) && !known_all(l->known[i], o, n))
			return -EFAULT;
		memcpy(out, (const uint8_t *)(e & ~PART) + o, n);
		len -= n;
		if (!len)
			return 0;
		out += n;
		gpa += n;
	}
}

/* The engine's view_phys: a range inside one fully known page is served in
 * place (image pages never move while a replay runs); else NULL, and the
 * engine falls back to aft_image_read. */
static const void *image_view(void *ctx, uint64_t gpa, size_t len)
{
	const struct aft_image *img = ctx;
	unsigned o = (unsigned)(gpa % PAGE), i;
	const struct img_leaf *l;
	uintptr_t e;

	if (gpa >= img->phys || len > img->phys - gpa || o + len > PAGE)
		return NULL;
	i = (unsigned)(gpa / PAGE % LEAF_PAGES);
	l = img->top[gpa / PAGE / LEAF_PAGES];
	if (!l || !(e = l->pg[i]))
		return NULL;
	if ((e & PART) && !known_all(l->known[i], o, (unsigned)len))
		return NULL;
	return (const uint8_t *)(e & ~PART) + o;
}

static void on_event(void *ctx, const struct af_event *ev)
{
	const struct af_replay_sink *sink = ((struct replay *)ctx)->sink;
	sink->event(sink->ctx, ev);
}

int af_replay(struct af_trace_reader *r, const struct af_replay_sink *sink,
	      struct af_counters *counters)
{
	return af_replay_flags(r, sink, 0, counters);
}

int af_replay_flags(struct af_trace_reader *r,
		    const struct af_replay_sink *sink, unsigned engine_flags,
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
	if (!r || (engine_flags & ~AF_ENGINE_STRICT_PCID))
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
	cfg.flags = engine_flags;
	cfg.read_phys = aft_image_read;
	cfg.view_phys = image_view;
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
	r->raw_sparse = 1; /* sparse records come as runs, expanded in place */
	while ((rc = aft_next(r, &rec)) > 0) {
		switch (rec.type) {
		case AF_REC_OBS:
			if (rec.u.obs.kind == AF_OBS_PT_STORE)
				image_store(&rp.img, rec.u.obs.addr,
					    rec.u.obs.width, rec.u.obs.value);
			/* A rejected observation was rejected live too (the
			 * recorder does not record those) or comes from a
			 * newer format: either way it changes nothing. */
			(void)af_engine_observe(e, &rec.u.obs);
			break;
		case AF_REC_MEM:
		case AF_REC_MEM_FAIL:
		case AFT_REC_MEM_SPARSE:
			if (rec.type == AFT_REC_MEM_SPARSE)
				rc = aft_image_fill_sparse(
					&rp.img, r, rec.u.mem.gpa,
					rec.u.mem.data, r->sparse_size,
					rec.u.mem.len);
			else
				rc = aft_image_fill(&rp.img, rec.u.mem.gpa,
						    rec.u.mem.data,
						    rec.u.mem.len);
			if (rc && r->err) /* the reader's: the runs were bad */
				goto out;
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
	r->raw_sparse = 0;
	if (e && counters)
		af_engine_counters(e, counters);
	af_engine_free(e);
	image_free(&rp.img);
	return rc;
}
