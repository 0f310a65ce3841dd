/*
 * antfarm/trace.h - the antfarm trace format: writing, reading, recording
 * and replaying.
 *
 * A trace holds everything needed to re-run inference offline: the MMU
 * observations, the guest memory the engine read while it ran, and the
 * guest's own account of its processes (ground truth), all timestamped on one
 * clock. The byte layout is specified in docs/trace-format.md.
 *
 * Readers treat a file as hostile: every length is checked against the file
 * and against fixed limits before anything is allocated; a bad file gives a
 * negative errno and a one-line message from af_trace_reader_error().
 *
 * Ownership: a writer owns its FILE only if it opened it; a reader owns its
 * FILE only if it opened it. Records returned by af_trace_next() point into
 * the reader's buffer and are valid until the next call.
 */
#ifndef ANTFARM_TRACE_H
#define ANTFARM_TRACE_H

#include <stdio.h>
#include <antfarm/engine.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AF_TRACE_VERSION 2 /* format version this library writes (reads 1..2) */
#define AF_TRACE_MAX_MEM 65536u /* most bytes in one memory record */
#define AF_TRACE_MAX_PHYS (1ull << 40) /* largest phys_bytes accepted (1 TiB) */

/* Kinds of ground-truth event, as the guest reports them. */
enum af_truth_kind {
	AF_TRUTH_FORK = 1,       /* process created (fork/clone with new mm,
	                            CreateProcess); asid = its address space */
	AF_TRUTH_EXEC = 2,       /* process replaced its image; asid = new AS */
	AF_TRUTH_EXIT = 3,       /* process exit started; asid = its AS */
	AF_TRUTH_AS_CREATE = 4,  /* address space created; asid = its root */
	AF_TRUTH_AS_DESTROY = 5, /* address space destroyed */
	AF_TRUTH_SWITCH = 6,     /* address-space switch on vcpu to asid */
	AF_TRUTH_BEGIN = 7,      /* measurement window opens */
	AF_TRUTH_END = 8,        /* measurement window closes */
	AF_TRUTH_VFORK = 9,      /* process created sharing its parent's AS
	                            (vfork, CLONE_VM without threads' tgid) */
};

struct af_truth {
	uint8_t kind;     /* enum af_truth_kind */
	uint16_t vcpu;    /* vCPU it happened on */
	uint32_t pid;     /* process id (0 if not applicable) */
	uint32_t ppid;    /* parent process id (0 if not applicable) */
	uint64_t time_ns; /* same clock as observations */
	uint64_t asid;    /* page-table root physical address or context id,
	                     AF_ASID_NONE if none */
};

/* Trace-wide facts, written once at the start. */
struct af_trace_info {
	uint32_t version;    /* format version (filled in by the reader) */
	uint8_t mmu;         /* enum af_mmu */
	uint16_t n_vcpus;    /* 1 .. AF_MAX_VCPUS */
	uint8_t ctx_bits;    /* context-id width (context-id MMUs) */
	uint64_t phys_bytes; /* top of guest RAM */
	char guest[64];      /* free-form description, NUL-terminated */
};

enum af_rec_type {
	AF_REC_OBS = 1,   /* an observation */
	AF_REC_MEM = 2,   /* guest-physical memory as the engine read it */
	AF_REC_TRUTH = 3, /* a ground-truth event */
	AF_REC_MEM_FAIL = 4, /* a memory read the engine made failed: u.mem
	                        with data NULL (replay fails the same read) */
};

struct af_record {
	uint8_t type; /* enum af_rec_type */
	union {
		struct af_obs obs;
		struct af_truth truth;
		struct {
			uint64_t gpa;        /* where */
			uint32_t len;        /* 1 .. AF_TRACE_MAX_MEM */
			const uint8_t *data; /* len bytes, owned by reader;
			                        NULL for AF_REC_MEM_FAIL */
		} mem;
	} u;
};

/* ---- writing ---- */
struct af_trace_writer;

/* Opens path for writing ("-" is stdout) and writes the header. */
AF_API int af_trace_writer_open(const char *path,
				const struct af_trace_info *info,
				struct af_trace_writer **out);
/* Writes to an already-open stream the caller keeps owning. */
AF_API int af_trace_writer_fdopen(FILE *f, const struct af_trace_info *info,
				  struct af_trace_writer **out);
/* Each write returns 0 or a negative errno (-EINVAL: a vcpu >= n_vcpus or a
 * bad length; an I/O error is also kept and returned again by close). */
AF_API int af_trace_write_obs(struct af_trace_writer *w,
			      const struct af_obs *o);
/* len > AF_TRACE_MAX_MEM is split into several records; len 0 is -EINVAL. */
AF_API int af_trace_write_mem(struct af_trace_writer *w, uint64_t gpa,
			      const void *data, size_t len);
/* Records that a read of len bytes at gpa failed (AF_REC_MEM_FAIL); split
 * like af_trace_write_mem(). */
AF_API int af_trace_write_mem_fail(struct af_trace_writer *w, uint64_t gpa,
				   size_t len);
AF_API int af_trace_write_truth(struct af_trace_writer *w,
				const struct af_truth *t);
/* Flushes buffered records to the stream. */
AF_API int af_trace_writer_flush(struct af_trace_writer *w);
/* Flushes, closes (if opened by af_trace_writer_open) and frees. Returns the
 * first error seen over the writer's life, or 0. NULL is accepted. */
AF_API int af_trace_writer_close(struct af_trace_writer *w);

/* ---- reading ---- */
struct af_trace_reader;

/* Opens path ("-" is stdin) and reads the header. On failure *out may still
 * be set so that af_trace_reader_error() can explain; free it either way. */
AF_API int af_trace_reader_open(const char *path,
				struct af_trace_reader **out);
/* Reads from memory (the caller keeps buf alive while reading). */
AF_API int af_trace_reader_open_mem(const void *buf, size_t len,
				    struct af_trace_reader **out);
AF_API const struct af_trace_info *
af_trace_reader_info(const struct af_trace_reader *r);
/* Next record: 1 and *rec filled, 0 at a clean end, negative errno on a bad
 * or truncated file. */
AF_API int af_trace_next(struct af_trace_reader *r, struct af_record *rec);
/* One line (no newline) saying what is wrong and where, or "" if nothing. */
AF_API const char *af_trace_reader_error(const struct af_trace_reader *r);
/* Byte offset of the next record. */
AF_API uint64_t af_trace_reader_offset(const struct af_trace_reader *r);
AF_API void af_trace_reader_free(struct af_trace_reader *r);

/* ---- recording: an engine whose memory reads go into a trace ---- */
struct af_recorder;

/* Creates an engine from cfg (cfg->read_phys reads the real guest) that also
 * writes every observation, and every memory read the engine makes, to w.
 * Memory records precede the observation that caused them; a failed read
 * becomes an AF_REC_MEM_FAIL record. w stays the caller's. -EINVAL if cfg's
 * mmu, n_vcpus, phys_bytes (x86) or ctx_bits (context ids) differ from w's
 * trace info, since replay configures its engine from that info. */
AF_API int af_recorder_new(const struct af_engine_config *cfg,
			   struct af_trace_writer *w, struct af_recorder **out);
/* Feeds o to the engine, then records it (so the memory records of the reads
 * it caused come first). An observation the engine rejects (-EINVAL) is not
 * recorded. Returns the engine's result or the first write error. */
AF_API int af_recorder_observe(struct af_recorder *r, const struct af_obs *o);
AF_API struct af_engine *af_recorder_engine(struct af_recorder *r);
AF_API void af_recorder_free(struct af_recorder *r);

/* ---- replay: re-run inference from a trace ---- */

/* Called for each inferred event and each ground-truth record met. */
struct af_replay_sink {
	void (*event)(void *ctx, const struct af_event *ev);
	void (*truth)(void *ctx, const struct af_truth *t);
	void *ctx;
};

/* Reads r to the end, keeping a bounded sparse image of guest memory from its
 * memory records and page-table stores, and feeds every observation to a new
 * engine configured from the trace info. If counters is not NULL it receives
 * the engine's counters at the end. Returns 0, or a negative errno with
 * af_trace_reader_error(r) (or a message of its own, see below) saying why. */
AF_API int af_replay(struct af_trace_reader *r,
		     const struct af_replay_sink *sink,
		     struct af_counters *counters);
/* The same with AF_ENGINE_* flags for the engine (af_engine_config.flags),
 * e.g. AF_ENGINE_STRICT_PCID; af_replay() is this with flags 0. Unknown
 * flag bits give -EINVAL. */
AF_API int af_replay_flags(struct af_trace_reader *r,
			   const struct af_replay_sink *sink,
			   unsigned engine_flags,
			   struct af_counters *counters);
/* The message for the last af_replay() failure that was not a read error. */
AF_API const char *af_replay_error(void);

#ifdef __cplusplus
}
#endif
#endif
