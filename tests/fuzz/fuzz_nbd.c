/*
 * tests/fuzz/fuzz_nbd.c - libFuzzer harness for antfarm-blockserver's NBD
 * protocol code (blockserver/nbd-proto.c), without sockets: the input is
 * what a client sends. Its first byte picks the server's side (maximum
 * block size, a read-only export, shutting down); the rest is the client's
 * byte stream, fed to nbd_handshake() and then, if the client reached
 * transmission, to the same request loop as nbd-server.c's reader
 * (decode, check, skip refused payload, read write payload, encode the
 * reply), with the server's output checked for well-formed framing.
 *
 * Seeds (tests/fuzz/corpus/nbd/) are written by this harness when run with
 * the single argument "--make-seeds DIR".
 */
#include "blockserver/nbd-proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A broken promise is a crash libFuzzer reports. */
#define PROMISE(c)                                                          \
	do {                                                                \
		if (!(c))                                                   \
			abort();                                            \
	} while (0)

/* The client's side: input bytes to read, output counted. */
struct stream {
	const uint8_t *p;   /* next input byte */
	size_t left;        /* input bytes left */
	size_t written;     /* bytes the server sent */
	size_t writes;      /* write calls */
};

static int mem_read(void *ctx, void *buf, size_t n)
{
	struct stream *s = ctx;
	if (n > s->left) {
		s->left = 0;
		return -ECONNRESET;
	}
	memcpy(buf, s->p, n);
	s->p += n;
	s->left -= n;
	return 0;
}

static int mem_write(void *ctx, const void *buf, size_t n)
{
	struct stream *s = ctx;
	/* Everything the server sends is small and bounded. */
	PROMISE(n <= NBD_MAX_NAME + 64 || n == 0);
	volatile const uint8_t *b = buf; /* touch it: ASan checks bounds */
	if (n)
		(void)b[n - 1];
	s->written += n;
	s->writes++;
	return 0;
}

static const struct nbd_export exports[2] = {
	{ "a", "first disk", 1u << 20,
	  NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA },
	{ "disk-b", NULL, 12345,
	  NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_READ_ONLY },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t cfg = data[0];
	struct stream s = { data + 1, size - 1, 0, 0 };
	struct nbd_io io = { &s, mem_read, mem_write };
	static const uint32_t maxes[4] = { 512, 4096, 1u << 20, 64u << 20 };
	struct nbd_offer offer = {
		.exports = exports,
		.n_exports = (cfg & 4) ? 2 : 1,
		.max_block = maxes[cfg & 3],
		.shutting_down = (cfg & 8) != 0,
	};
	struct nbd_hs_result res;
	enum nbd_hs_status st = nbd_handshake(&io, &offer, &res);
	PROMISE(res.why != NULL);
	PROMISE(res.options <= NBD_MAX_OPTIONS + 1);
	/* greeting plus, per option, a bounded number of bounded replies */
	PROMISE(s.written <= 18 + (size_t)(res.options + 1) *
				    (offer.n_exports + 4) * (NBD_MAX_NAME + 64));
	if (st != NBD_HS_TRANSMISSION)
		return 0;
	PROMISE(!offer.shutting_down);
	PROMISE(res.index < offer.n_exports);
	uint16_t tflags = exports[res.index].tflags;

	static uint8_t payload[1 << 16];
	for (;;) {
		uint8_t hb[NBD_REQUEST_BYTES];
		if (mem_read(&s, hb, sizeof(hb)))
			break;
		struct nbd_request r;
		struct nbd_decision d;
		nbd_decode_request(hb, &r);
		nbd_check_request(&r, tflags, offer.max_block, &d);
		uint8_t reply[NBD_REPLY_BYTES];
		switch (d.act) {
		case NBD_ACT_HANGUP:
			PROMISE(d.why != NULL);
			return 0;
		case NBD_ACT_DISC:
			return 0;
		case NBD_ACT_REFUSE:
			PROMISE(d.error != 0);
			PROMISE(d.skip <= NBD_MAX_SKIP_PAYLOAD);
			PROMISE(d.skip == 0 || r.type == NBD_CMD_WRITE);
			if (d.skip > s.left)
				return 0;
			s.p += d.skip;
			s.left -= d.skip;
			nbd_encode_reply(reply, r.handle, d.error);
			break;
		case NBD_ACT_READ:
		case NBD_ACT_WRITE:
			PROMISE(r.length <= offer.max_block);
			PROMISE(d.act == NBD_ACT_READ ||
				!(tflags & NBD_FLAG_READ_ONLY));
			if (d.act == NBD_ACT_WRITE) {
				uint32_t n = r.length;
				while (n) {
					uint32_t k = n < sizeof(payload)
							     ? n
							     : (uint32_t)sizeof(payload);
					if (mem_read(&s, payload, k))
						return 0;
					n -= k;
				}
			}
			/* what the core would answer for the range */
			{
				uint64_t sz = exports[res.index].size;
				int bad = r.length == 0 || r.offset > sz ||
					  r.length > sz - r.offset;
				nbd_encode_reply(reply, r.handle,
						 bad ? nbd_error_of_errno(
							       d.act == NBD_ACT_WRITE
								       ? -ENOSPC
								       : -EINVAL)
						     : 0);
			}
			break;
		case NBD_ACT_FLUSH:
			PROMISE(r.offset == 0 && r.length == 0);
			nbd_encode_reply(reply, r.handle, 0);
			break;
		default:
			abort();
		}
		PROMISE(mem_write(&s, reply, sizeof(reply)) == 0);
	}
	(void)nbd_error_of_errno((int)(size * 2654435761u));
	return 0;
}

/* ---- seeds ---- */

/* A growing byte buffer for building seeds. */
struct seed {
	uint8_t b[4096]; /* bytes */
	size_t n;        /* used */
};

static void be(struct seed *s, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--)
		s->b[s->n++] = (uint8_t)(v >> (8 * i));
}

static void opt(struct seed *s, uint32_t o, const void *d, uint32_t len)
{
	be(s, NBD_MAGIC_OPT, 8);
	be(s, o, 4);
	be(s, len, 4);
	if (len)
		memcpy(s->b + s->n, d, len);
	s->n += len;
}

static void go(struct seed *s, uint32_t o, const char *name, int nreq)
{
	uint8_t d[64];
	size_t l = strlen(name), k = 0;
	d[k++] = 0, d[k++] = 0, d[k++] = 0, d[k++] = (uint8_t)l;
	memcpy(d + k, name, l);
	k += l;
	d[k++] = 0, d[k++] = (uint8_t)nreq;
	for (int i = 0; i < nreq; i++)
		d[k++] = 0, d[k++] = (uint8_t)(3 - i);
	opt(s, o, d, (uint32_t)k);
}

static void req(struct seed *s, uint16_t flags, uint16_t type, uint64_t off,
		uint32_t len)
{
	be(s, NBD_MAGIC_REQUEST, 4);
	be(s, flags, 2);
	be(s, type, 2);
	be(s, 0x1122334455667788ull, 8);
	be(s, off, 8);
	be(s, len, 4);
}

static int save(const char *dir, const char *name, const struct seed *s)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "wb");
	if (!f)
		return 1;
	fwrite(s->b, 1, s->n, f);
	return fclose(f) != 0;
}

static int make_seeds(const char *dir)
{
	struct seed s;
	int rc = 0;

	/* list, info, go with block size, then requests */
	s.n = 0;
	be(&s, 6, 1); /* cfg: 1 MiB max, two exports */
	be(&s, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES, 4);
	opt(&s, NBD_OPT_LIST, NULL, 0);
	opt(&s, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	go(&s, NBD_OPT_INFO, "disk-b", 3);
	go(&s, NBD_OPT_GO, "a", 1);
	req(&s, 0, NBD_CMD_READ, 0, 4096);
	req(&s, NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 512, 8);
	be(&s, 0x0123456789abcdefull, 8);
	req(&s, 0, NBD_CMD_FLUSH, 0, 0);
	req(&s, 0, NBD_CMD_READ, 1u << 20, 1);
	req(&s, 0, 4, 0, 4096); /* trim: unsupported */
	req(&s, 0, NBD_CMD_DISC, 0, 0);
	rc |= save(dir, "go-requests", &s);

	/* old client: export name, zeroes */
	s.n = 0;
	be(&s, 0, 1); /* cfg: 512 max */
	be(&s, 0, 4);
	opt(&s, NBD_OPT_EXPORT_NAME, "a", 1);
	req(&s, 0, NBD_CMD_READ, 0, 512);
	req(&s, 0, NBD_CMD_WRITE, 0, 600); /* larger than 512: skipped */
	memset(s.b + s.n, 0x5a, 600);
	s.n += 600;
	rc |= save(dir, "export-name", &s);

	/* read-only export, bad flags, then bad magic */
	s.n = 0;
	be(&s, 7, 1);
	be(&s, NBD_FLAG_C_FIXED_NEWSTYLE, 4);
	go(&s, NBD_OPT_GO, "disk-b", 0);
	req(&s, 0, NBD_CMD_WRITE, 0, 4);
	be(&s, 0, 4);
	req(&s, 0x20, NBD_CMD_READ, 0, 4);
	req(&s, 0, NBD_CMD_FLUSH, 1, 0);
	be(&s, 0xdeadbeef, 4);
	rc |= save(dir, "readonly-badmagic", &s);

	/* unknown export, abort */
	s.n = 0;
	be(&s, 0, 1);
	be(&s, NBD_FLAG_C_FIXED_NEWSTYLE, 4);
	go(&s, NBD_OPT_INFO, "nosuch", 0);
	opt(&s, NBD_OPT_ABORT, NULL, 0);
	rc |= save(dir, "unknown-abort", &s);
	return rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (*argc == 3 && !strcmp((*argv)[1], "--make-seeds"))
		exit(make_seeds((*argv)[2]));
	return 0;
}
