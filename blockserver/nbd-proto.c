/*
 * blockserver/nbd-proto.c - the NBD protocol of antfarm-blockserver
 * (nbd-proto.h): the fixed-newstyle handshake over byte-stream callbacks,
 * request decoding and checking, simple-reply encoding, error mapping.
 * Written from the public NBD specification; no sockets, no allocation.
 */
#include "blockserver/nbd-proto.h"

#include <errno.h>
#include <string.h>

/* ---- big-endian fields ---- */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* ---- handshake ---- */

/* Per-handshake state. */
struct hs {
	const struct nbd_io *io;       /* the streams */
	const struct nbd_offer *offer; /* what is served */
	int no_zeroes;                 /* client set NBD_FLAG_C_NO_ZEROES */
	uint8_t buf[NBD_MAX_OPT_DATA]; /* option data */
};

/* Sends one option reply: header and up to two pieces of data. */
static int opt_reply(struct hs *h, uint32_t opt, uint32_t type,
		     const void *a, uint32_t alen, const void *b,
		     uint32_t blen)
{
	uint8_t hdr[20];
	put64(hdr, NBD_MAGIC_OPT_REPLY);
	put32(hdr + 8, opt);
	put32(hdr + 12, type);
	put32(hdr + 16, alen + blen);
	int rc = h->io->write(h->io->ctx, hdr, sizeof(hdr));
	if (!rc && alen)
		rc = h->io->write(h->io->ctx, a, alen);
	if (!rc && blen)
		rc = h->io->write(h->io->ctx, b, blen);
	return rc;
}

/* An error reply with a message for humans. */
static int opt_error(struct hs *h, uint32_t opt, uint32_t type,
		     const char *msg)
{
	return opt_reply(h, opt, type, msg, (uint32_t)strlen(msg), NULL, 0);
}

/* Reads and drops n bytes. */
static int skip_bytes(struct hs *h, uint32_t n)
{
	while (n) {
		uint32_t k = n < sizeof(h->buf) ? n : (uint32_t)sizeof(h->buf);
		int rc = h->io->read(h->io->ctx, h->buf, k);
		if (rc)
			return rc;
		n -= k;
	}
	return 0;
}

/* The export called name[0..len), or -1. "" is the first export. */
static int find_export(const struct nbd_offer *o, const uint8_t *name,
		       uint32_t len)
{
	if (len == 0)
		return o->n_exports ? 0 : -1;
	for (unsigned i = 0; i < o->n_exports; i++) {
		const char *n = o->exports[i].name;
		if (strlen(n) == len && memcmp(n, name, len) == 0)
			return (int)i;
	}
	return -1;
}

/* NBD_OPT_LIST. */
static int do_list(struct hs *h, uint32_t len)
{
	if (len != 0)
		return opt_error(h, NBD_OPT_LIST, NBD_REP_ERR_INVALID,
				 "NBD_OPT_LIST takes no data");
	for (unsigned i = 0; i < h->offer->n_exports; i++) {
		const struct nbd_export *e = &h->offer->exports[i];
		uint32_t nlen = (uint32_t)strlen(e->name);
		uint32_t dlen = e->desc ? (uint32_t)strlen(e->desc) : 0;
		if (nlen > NBD_MAX_NAME)
			nlen = NBD_MAX_NAME;
		if (dlen > NBD_MAX_NAME)
			dlen = NBD_MAX_NAME;
		uint8_t hdr[24];
		put64(hdr, NBD_MAGIC_OPT_REPLY);
		put32(hdr + 8, NBD_OPT_LIST);
		put32(hdr + 12, NBD_REP_SERVER);
		put32(hdr + 16, 4 + nlen + dlen);
		put32(hdr + 20, nlen);
		int rc = h->io->write(h->io->ctx, hdr, sizeof(hdr));
		if (!rc)
			rc = h->io->write(h->io->ctx, e->name, nlen);
		if (!rc && dlen)
			rc = h->io->write(h->io->ctx, e->desc, dlen);
		if (rc)
			return rc;
	}
	return opt_reply(h, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0, NULL, 0);
}

uint32_t nbd_preferred_block(uint32_t max_block)
{
	uint32_t p = 4096;
	while (p > 1 && p > max_block)
		p >>= 1;
	return p;
}

/* NBD_OPT_INFO and NBD_OPT_GO. Returns 1 if GO succeeded (*index set),
 * 0 to go on with options, or a negative errno (I/O). */
static int do_info(struct hs *h, uint32_t opt, uint32_t len, unsigned *index)
{
	const uint8_t *d = h->buf;
	if (len < 6)
		return opt_error(h, opt, NBD_REP_ERR_INVALID,
				 "option data too short");
	uint32_t nlen = get32(d);
	if (nlen > NBD_MAX_NAME || nlen > len - 6)
		return opt_error(h, opt, NBD_REP_ERR_INVALID,
				 "export name length inconsistent");
	uint32_t nreq = get16(d + 4 + nlen);
	if (len != 6 + nlen + 2 * nreq)
		return opt_error(h, opt, NBD_REP_ERR_INVALID,
				 "information request count inconsistent");
	int want_name = 0, want_desc = 0;
	for (uint32_t i = 0; i < nreq; i++) {
		uint16_t t = get16(d + 6 + nlen + 2 * i);
		if (t == NBD_INFO_NAME)
			want_name = 1;
		else if (t == NBD_INFO_DESCRIPTION)
			want_desc = 1;
	}
	if (h->offer->shutting_down)
		return opt_error(h, opt, NBD_REP_ERR_SHUTDOWN,
				 "server shutting down");
	int idx = find_export(h->offer, d + 4, nlen);
	if (idx < 0)
		return opt_error(h, opt, NBD_REP_ERR_UNKNOWN,
				 "no such export");
	const struct nbd_export *e = &h->offer->exports[idx];
	uint8_t info[14];
	put16(info, NBD_INFO_EXPORT);
	put64(info + 2, e->size);
	put16(info + 10, e->tflags);
	int rc = opt_reply(h, opt, NBD_REP_INFO, info, 12, NULL, 0);
	if (!rc && want_name) {
		uint32_t n = (uint32_t)strlen(e->name);
		put16(info, NBD_INFO_NAME);
		rc = opt_reply(h, opt, NBD_REP_INFO, info, 2, e->name,
			       n > NBD_MAX_NAME ? NBD_MAX_NAME : n);
	}
	if (!rc && want_desc && e->desc) {
		uint32_t n = (uint32_t)strlen(e->desc);
		put16(info, NBD_INFO_DESCRIPTION);
		rc = opt_reply(h, opt, NBD_REP_INFO, info, 2, e->desc,
			       n > NBD_MAX_NAME ? NBD_MAX_NAME : n);
	}
	if (!rc) {
		/* Always sent: minimum 1 (any alignment works), a preferred
		 * size, and the maximum request the core accepts. */
		put16(info, NBD_INFO_BLOCK_SIZE);
		put32(info + 2, 1);
		put32(info + 6, nbd_preferred_block(h->offer->max_block));
		put32(info + 10, h->offer->max_block);
		rc = opt_reply(h, opt, NBD_REP_INFO, info, 14, NULL, 0);
	}
	if (!rc)
		rc = opt_reply(h, opt, NBD_REP_ACK, NULL, 0, NULL, 0);
	if (rc)
		return rc;
	if (opt == NBD_OPT_GO) {
		*index = (unsigned)idx;
		return 1;
	}
	return 0;
}

/* NBD_OPT_EXPORT_NAME: 1 (transmission) or a negative errno; a name
 * that matches no export ends the session (the option cannot fail). */
static int do_export_name(struct hs *h, uint32_t len, unsigned *index,
			  struct nbd_hs_result *res)
{
	int idx = h->offer->shutting_down ? -1
					  : find_export(h->offer, h->buf, len);
	if (idx < 0) {
		res->why = h->offer->shutting_down
				   ? "NBD_OPT_EXPORT_NAME while shutting down"
				   : "NBD_OPT_EXPORT_NAME: no such export";
		return -ENOENT;
	}
	const struct nbd_export *e = &h->offer->exports[idx];
	uint8_t r[10 + 124];
	memset(r, 0, sizeof(r));
	put64(r, e->size);
	put16(r + 8, e->tflags);
	int rc = h->io->write(h->io->ctx, r, h->no_zeroes ? 10 : sizeof(r));
	if (rc)
		return rc;
	*index = (unsigned)idx;
	return 1;
}

enum nbd_hs_status nbd_handshake(const struct nbd_io *io,
				 const struct nbd_offer *offer,
				 struct nbd_hs_result *res)
{
	struct hs h;
	h.io = io;
	h.offer = offer;
	h.no_zeroes = 0;
	res->index = 0;
	res->options = 0;
	res->why = "";

	uint8_t g[18];
	put64(g, NBD_MAGIC_INIT);
	put64(g + 8, NBD_MAGIC_OPT);
	put16(g + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	if (io->write(io->ctx, g, sizeof(g))) {
		res->why = "cannot send the greeting";
		return NBD_HS_IO;
	}
	uint8_t cf[4];
	if (io->read(io->ctx, cf, sizeof(cf))) {
		res->why = "no client flags";
		return NBD_HS_CLOSED;
	}
	uint32_t cflags = get32(cf);
	if (cflags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
		res->why = "unknown client flags";
		return NBD_HS_PROTOCOL;
	}
	h.no_zeroes = (cflags & NBD_FLAG_C_NO_ZEROES) != 0;

	for (;;) {
		uint8_t oh[16];
		if (io->read(io->ctx, oh, sizeof(oh))) {
			res->why = "client left during option haggling";
			return NBD_HS_CLOSED;
		}
		if (get64(oh) != NBD_MAGIC_OPT) {
			res->why = "bad option magic";
			return NBD_HS_PROTOCOL;
		}
		uint32_t opt = get32(oh + 8), len = get32(oh + 12);
		if (++res->options > NBD_MAX_OPTIONS) {
			res->why = "too many options";
			return NBD_HS_PROTOCOL;
		}
		if (len > NBD_MAX_OPT_DATA) {
			if (opt == NBD_OPT_EXPORT_NAME ||
			    len > NBD_MAX_OPT_SKIP) {
				res->why = "option data too long";
				return NBD_HS_PROTOCOL;
			}
			if (skip_bytes(&h, len) ||
			    opt_error(&h, opt, NBD_REP_ERR_TOO_BIG,
				      "option data too long")) {
				res->why = "I/O error in option haggling";
				return NBD_HS_IO;
			}
			continue;
		}
		if (len && io->read(io->ctx, h.buf, len)) {
			res->why = "client left during option data";
			return NBD_HS_CLOSED;
		}
		int rc;
		unsigned idx = 0;
		switch (opt) {
		case NBD_OPT_EXPORT_NAME:
			rc = do_export_name(&h, len, &idx, res);
			if (rc == -ENOENT)
				return NBD_HS_PROTOCOL;
			break;
		case NBD_OPT_ABORT:
			/* The client may already be gone: ignore errors. */
			(void)opt_reply(&h, opt, NBD_REP_ACK, NULL, 0, NULL, 0);
			res->why = "client aborted";
			return NBD_HS_CLOSED;
		case NBD_OPT_LIST:
			rc = offer->shutting_down
				     ? opt_error(&h, opt, NBD_REP_ERR_SHUTDOWN,
						 "server shutting down")
				     : do_list(&h, len);
			break;
		case NBD_OPT_INFO:
		case NBD_OPT_GO:
			rc = do_info(&h, opt, len, &idx);
			break;
		default:
			rc = opt_error(&h, opt, NBD_REP_ERR_UNSUP,
				       "option not supported");
			break;
		}
		if (rc < 0) {
			res->why = "I/O error in option haggling";
			return NBD_HS_IO;
		}
		if (rc == 1) {
			res->index = idx;
			res->why = "transmission";
			return NBD_HS_TRANSMISSION;
		}
	}
}

/* ---- transmission ---- */

void nbd_decode_request(const uint8_t b[NBD_REQUEST_BYTES],
			struct nbd_request *r)
{
	r->magic = get32(b);
	r->flags = get16(b + 4);
	r->type = get16(b + 6);
	r->handle = get64(b + 8);
	r->offset = get64(b + 16);
	r->length = get32(b + 24);
}

/* Refuse, skipping a write's payload if it is not too long to skip. */
static void refuse(struct nbd_decision *d, uint32_t error, uint32_t skip,
		   const char *why)
{
	if (skip > NBD_MAX_SKIP_PAYLOAD) {
		d->act = NBD_ACT_HANGUP;
		d->why = "write payload too long to skip";
		return;
	}
	d->act = NBD_ACT_REFUSE;
	d->error = error;
	d->skip = skip;
	d->why = why;
}

void nbd_check_request(const struct nbd_request *r, uint16_t tflags,
		       uint32_t max_block, struct nbd_decision *d)
{
	memset(d, 0, sizeof(*d));
	if (r->magic != NBD_MAGIC_REQUEST) {
		d->act = NBD_ACT_HANGUP;
		d->why = "bad request magic";
		return;
	}
	/* FUA is accepted (and ignored where nothing is written) on every
	 * command, as the specification asks once SEND_FUA is offered. */
	int bad_flags = (r->flags & ~NBD_CMD_FLAG_FUA) != 0;
	switch (r->type) {
	case NBD_CMD_READ:
		if (bad_flags)
			refuse(d, NBD_EINVAL, 0, "unsupported command flags");
		else if (r->length > max_block)
			refuse(d, NBD_EINVAL, 0, "read larger than the maximum");
		else
			d->act = NBD_ACT_READ;
		return;
	case NBD_CMD_WRITE:
		if (r->length > max_block)
			refuse(d, NBD_EINVAL, r->length,
			       "write larger than the maximum");
		else if (bad_flags)
			refuse(d, NBD_EINVAL, r->length,
			       "unsupported command flags");
		else if (tflags & NBD_FLAG_READ_ONLY)
			refuse(d, NBD_EPERM, r->length, "read-only export");
		else {
			d->act = NBD_ACT_WRITE;
			d->fua = (r->flags & NBD_CMD_FLAG_FUA) != 0;
		}
		return;
	case NBD_CMD_FLUSH:
		if (bad_flags)
			refuse(d, NBD_EINVAL, 0, "unsupported command flags");
		else if (r->offset || r->length)
			refuse(d, NBD_EINVAL, 0,
			       "flush with offset or length");
		else
			d->act = NBD_ACT_FLUSH;
		return;
	case NBD_CMD_DISC:
		d->act = NBD_ACT_DISC;
		return;
	default:
		refuse(d, NBD_EINVAL, 0, "unsupported command");
		return;
	}
}

void nbd_encode_reply(uint8_t out[NBD_REPLY_BYTES], uint64_t handle,
		      uint32_t error)
{
	put32(out, NBD_MAGIC_SIMPLE_REPLY);
	put32(out + 4, error);
	put64(out + 8, handle);
}

uint32_t nbd_error_of_errno(int e)
{
	if (e < 0)
		e = -e;
	switch (e) {
	case 0:
		return 0;
	case EPERM:
	case EROFS:
	case EACCES:
		return NBD_EPERM;
	case ENOMEM:
		return NBD_ENOMEM;
	case EINVAL:
		return NBD_EINVAL;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return NBD_ENOSPC;
	case EOVERFLOW:
		return NBD_EOVERFLOW;
	case ENOTSUP:
		return NBD_ENOTSUP;
	case ESHUTDOWN:
		return NBD_ESHUTDOWN;
	default:
		return NBD_EIO;
	}
}
