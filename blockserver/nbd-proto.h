/*
 * blockserver/nbd-proto.h - the NBD protocol as antfarm-blockserver speaks
 * it, without sockets or the block-server core: the fixed-newstyle
 * handshake (run over two byte-stream callbacks), decoding and checking of
 * transmission requests, and encoding of simple replies. nbd-server.c puts
 * it on Unix sockets; tests/fuzz/fuzz_nbd.c drives it from a memory buffer.
 *
 * What is spoken (the public NBD specification, doc/proto.md of the NBD
 * project):
 *   handshake: fixed newstyle with NBD_FLAG_FIXED_NEWSTYLE | NO_ZEROES;
 *     options EXPORT_NAME, GO, INFO (NBD_INFO_EXPORT, BLOCK_SIZE, and NAME
 *     and DESCRIPTION when asked), LIST, ABORT; every other option gets
 *     NBD_REP_ERR_UNSUP (so no TLS, no structured replies, no metadata
 *     contexts: clients fall back to simple replies);
 *   transmission: READ, WRITE (FUA honoured), FLUSH, DISC; simple replies.
 * Everything the client sends is bounded: option data up to
 * NBD_MAX_OPT_DATA bytes is read, longer option data up to
 * NBD_MAX_OPT_SKIP is skipped with an error reply, anything longer ends the
 * session, as do more than NBD_MAX_OPTIONS options. A write whose length
 * exceeds the advertised maximum is skipped and refused up to
 * NBD_MAX_SKIP_PAYLOAD bytes, above that the session ends.
 * Errors in replies: EINVAL for a request over the maximum block size (as
 * the nbdkit plugin answers), for unknown commands and command flags and
 * a flush with an offset or length; EPERM for a write to a read-only
 * export; range errors come from the core (EINVAL for reads, ENOSPC for
 * writes past the end, EINVAL for zero length).
 *
 * Nothing here allocates, prints or keeps global state; all functions are
 * safe to call from several threads on different connections.
 */
#ifndef BLOCKSERVER_NBD_PROTO_H
#define BLOCKSERVER_NBD_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Magic numbers. */
#define NBD_MAGIC_INIT 0x4e42444d41474943ull      /* "NBDMAGIC" */
#define NBD_MAGIC_OPT 0x49484156454f5054ull       /* "IHAVEOPT" */
#define NBD_MAGIC_OPT_REPLY 0x0003e889045565a9ull /* option replies */
#define NBD_MAGIC_REQUEST 0x25609513u             /* transmission request */
#define NBD_MAGIC_SIMPLE_REPLY 0x67446698u        /* simple reply */

/* Handshake flags (server) and client flags. */
#define NBD_FLAG_FIXED_NEWSTYLE 0x0001u
#define NBD_FLAG_NO_ZEROES 0x0002u
#define NBD_FLAG_C_FIXED_NEWSTYLE 0x00000001u
#define NBD_FLAG_C_NO_ZEROES 0x00000002u

/* Transmission flags. */
#define NBD_FLAG_HAS_FLAGS 0x0001u
#define NBD_FLAG_READ_ONLY 0x0002u
#define NBD_FLAG_SEND_FLUSH 0x0004u
#define NBD_FLAG_SEND_FUA 0x0008u
#define NBD_FLAG_ROTATIONAL 0x0010u
#define NBD_FLAG_CAN_MULTI_CONN 0x0100u

/* Options. */
#define NBD_OPT_EXPORT_NAME 1u
#define NBD_OPT_ABORT 2u
#define NBD_OPT_LIST 3u
#define NBD_OPT_STARTTLS 5u
#define NBD_OPT_INFO 6u
#define NBD_OPT_GO 7u
#define NBD_OPT_STRUCTURED_REPLY 8u

/* Option reply types. */
#define NBD_REP_ACK 1u
#define NBD_REP_SERVER 2u
#define NBD_REP_INFO 3u
#define NBD_REP_ERR_UNSUP 0x80000001u
#define NBD_REP_ERR_POLICY 0x80000002u
#define NBD_REP_ERR_INVALID 0x80000003u
#define NBD_REP_ERR_UNKNOWN 0x80000006u
#define NBD_REP_ERR_SHUTDOWN 0x80000007u
#define NBD_REP_ERR_TOO_BIG 0x80000009u

/* Information types (NBD_OPT_INFO / NBD_OPT_GO). */
#define NBD_INFO_EXPORT 0u
#define NBD_INFO_NAME 1u
#define NBD_INFO_DESCRIPTION 2u
#define NBD_INFO_BLOCK_SIZE 3u

/* Commands and command flags. */
#define NBD_CMD_READ 0u
#define NBD_CMD_WRITE 1u
#define NBD_CMD_DISC 2u
#define NBD_CMD_FLUSH 3u
#define NBD_CMD_FLAG_FUA 0x0001u

/* Error values of replies (the protocol's, not the host's errno). */
#define NBD_EPERM 1u
#define NBD_EIO 5u
#define NBD_ENOMEM 12u
#define NBD_EINVAL 22u
#define NBD_ENOSPC 28u
#define NBD_EOVERFLOW 75u
#define NBD_ENOTSUP 95u
#define NBD_ESHUTDOWN 108u

/* Bounds on what a client can make the server read or hold. */
#define NBD_MAX_OPT_DATA 8192u          /* option data read and parsed */
#define NBD_MAX_OPT_SKIP 65536u         /* option data skipped (TOO_BIG) */
#define NBD_MAX_OPTIONS 1024u           /* options per session */
#define NBD_MAX_NAME 4096u              /* strings, per the specification */
#define NBD_MAX_SKIP_PAYLOAD (64u << 20) /* refused write payload skipped */

#define NBD_REQUEST_BYTES 28u /* request header */
#define NBD_REPLY_BYTES 16u   /* simple reply header */

/* Byte streams of one connection. Both return 0 when all n bytes were
 * transferred, or a negative errno (-ECONNRESET for end of file). */
struct nbd_io {
	void *ctx;                                               /* theirs */
	int (*read)(void *ctx, void *buf, size_t n);             /* exactly n */
	int (*write)(void *ctx, const void *buf, size_t n);      /* all n */
};

/* One export as the handshake shows it. */
struct nbd_export {
	const char *name;  /* its name (non-empty; "" asks for exports[0]) */
	const char *desc;  /* a description for humans, or NULL */
	uint64_t size;     /* bytes */
	uint16_t tflags;   /* transmission flags (NBD_FLAG_HAS_FLAGS ...) */
};

/* What the server offers. */
struct nbd_offer {
	const struct nbd_export *exports; /* the exports */
	unsigned n_exports;               /* how many (at least 1) */
	uint32_t max_block;               /* largest request (>= 512) */
	int shutting_down;                /* answer NBD_REP_ERR_SHUTDOWN */
};

/* How a handshake ended. */
enum nbd_hs_status {
	NBD_HS_TRANSMISSION = 1, /* go on with requests on export `index` */
	NBD_HS_CLOSED = 0,       /* the client ended it (ABORT, EOF) */
	NBD_HS_IO = -1,          /* a read or write failed */
	NBD_HS_PROTOCOL = -2,    /* the client broke the protocol: hang up */
};

/* The handshake's result. */
struct nbd_hs_result {
	unsigned index;     /* export chosen (NBD_HS_TRANSMISSION) */
	unsigned options;   /* options the client sent */
	const char *why;    /* for logs: what ended it (static string) */
};

/* Runs the whole handshake: greeting, client flags, options. */
enum nbd_hs_status nbd_handshake(const struct nbd_io *io,
				 const struct nbd_offer *offer,
				 struct nbd_hs_result *res);

/* A decoded transmission request. */
struct nbd_request {
	uint32_t magic;   /* as sent */
	uint16_t flags;   /* command flags */
	uint16_t type;    /* command */
	uint64_t handle;  /* echoed in the reply */
	uint64_t offset;  /* bytes */
	uint32_t length;  /* bytes */
};

/* Decodes the 28-byte request header. */
void nbd_decode_request(const uint8_t b[NBD_REQUEST_BYTES],
			struct nbd_request *r);

/* What to do with a request. */
enum nbd_action {
	NBD_ACT_READ = 1,   /* serve a read of length bytes */
	NBD_ACT_WRITE,      /* read length payload bytes, serve the write */
	NBD_ACT_FLUSH,      /* serve a flush */
	NBD_ACT_DISC,       /* the client disconnects: finish, then close */
	NBD_ACT_REFUSE,     /* skip `skip` payload bytes, reply with error */
	NBD_ACT_HANGUP,     /* protocol violation: hard disconnect */
};

/* The decision about one request. */
struct nbd_decision {
	enum nbd_action act; /* what to do */
	uint32_t error;      /* NBD_E* for NBD_ACT_REFUSE */
	uint32_t skip;       /* payload bytes to read and drop (REFUSE) */
	int fua;             /* NBD_CMD_FLAG_FUA on a write */
	const char *why;     /* for logs (REFUSE, HANGUP) */
};

/* Checks a request against the export's transmission flags and the
 * maximum block size. Range checks against the export's size are left to
 * the core (which tells reads from writes: EINVAL / ENOSPC). */
void nbd_check_request(const struct nbd_request *r, uint16_t tflags,
		       uint32_t max_block, struct nbd_decision *d);

/* Encodes a simple reply header. */
void nbd_encode_reply(uint8_t out[NBD_REPLY_BYTES], uint64_t handle,
		      uint32_t error);

/* The protocol's error value for a (positive or negative) errno. */
uint32_t nbd_error_of_errno(int e);

/* Preferred block size advertised for a maximum (a power of two, at most
 * 4096 and at most max_block). */
uint32_t nbd_preferred_block(uint32_t max_block);

#endif
