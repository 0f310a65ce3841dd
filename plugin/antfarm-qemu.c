/*
 * plugin/antfarm-qemu.c - antfarm as a QEMU TCG plugin (plugin API level 4,
 * QEMU 10.0; qemu-system-x86_64 and qemu-system-i386, full-system TCG).
 *
 * It watches an unmodified guest drive its MMU and feeds the antfarm engine
 * (include/antfarm/engine.h) live, so the engine infers process creation,
 * exit and context switches; it also picks up the guest module's
 * ground-truth reports (CPUID channel, include/antfarm/channel.h).
 *
 * Usage:
 *   qemu-system-x86_64 ... \
 *     -object memory-backend-file,id=ram0,size=512M,mem-path=/dev/shm/g,share=on \
 *     -machine memory-backend=ram0 \
 *     -plugin build/antfarm-qemu.so,ram=/dev/shm/g,events=ev.jsonl
 *
 * Options (plugin arguments, key=value):
 *   ram=PATH       the guest RAM file (the backend's mem-path, share=on);
 *                  without it page tables cannot be read and nothing is
 *                  inferred (root loads are still counted)
 *   ramsize=SIZE   RAM size (default: the file's size); K/M/G/T suffixes
 *   lowmem=SIZE    RAM below the 4 GiB PCI hole (default: all of RAM if it
 *                  is under 3.5 GiB, else 3 GiB as pc-i440fx does; q35 with
 *                  2.75 GiB or more needs lowmem=2G)
 *   trace=FILE     record a trace (observations, memory the engine read,
 *                  ground truth) for offline replay
 *   events=SPEC    write inferred events and ground truth as lines to SPEC:
 *                  a file, "stderr", or unix:PATH (a listening stream socket;
 *                  never blocks QEMU, drops lines if the reader lags)
 *   format=jsonl|text   line format of events= (default jsonl)
 *   truth=on|off   include ground-truth lines in events= (default on)
 *   summary=FILE   also write the exit summary (one line) to FILE
 *   quiet=on|off   no summary on stderr (default off)
 *   stores=narrow|wide|off  which kernel stores are candidates for a
 *                  memory callback (default narrow: mov/xchg/cmpxchg/or/and/
 *                  bt* of the page-table entry size, not stack-relative, no
 *                  string ops; wide: every kernel store of 4 or 8 bytes; off:
 *                  none, the engine only sees root loads and flushes)
 *   learn=demote|window|off  how candidates are narrowed down to the
 *                  page-table writers (default demote; off: every candidate
 *                  gets a callback); see plugin/README.md
 *   demote=N, demote_epochs=N, flush_waste=N  learn=demote: a candidate that
 *                  ran N times over N epochs without writing a table is
 *                  dropped (default 256, 2); flush when dropped sites have
 *                  wasted N callbacks (default 2000000) since the last
 *                  flush, and flush_tb=K per block translated since then
 *                  (default 256; 0: no such bound)
 *   learn_quiet=MS, learn_min=MS, learn_hits=N, relearn=MS  learn=window
 *   batch=on|off   buffer page-table stores per vCPU (default on)
 *   verify=MS      compare what the engine knows of each table with RAM this
 *                  often; feed and count what nobody reported, relearn
 *                  (default 1000, 0 off); relearn_misses=N (default 16)
 *   sites=FILE     dump the store-site table at exit (diagnostics)
 *   verbose=on|off a line per translation flush and relearning
 *   lowstores=on|off  also instrument stores of 64-bit kernel code in the
 *                  lower half of the address space (boot code such as
 *                  Linux's decompressor; default off)
 *   framepointer=on|off  the kernel keeps a frame pointer (Linux i386 with
 *                  CONFIG_FRAME_POINTER): stores addressed by %ebp/%rbp
 *                  (no index) are stack stores and get no callback
 *                  (default off)
 *   icount=on|off  per-vCPU instruction counts from an inline counter
 *                  (default off: it costs ~5 % CPU)
 *   kernel=cpl|va  how kernel code is recognised at translation time: from
 *                  the CPL (CS.RPL, CR0.PE, EFLAGS.VM; default) or from the
 *                  code address (upper half)
 *   vcpus=N        vCPUs the engine tracks (default: QEMU's max_vcpus)
 *   guest=TEXT     free-form guest description stored in the trace
 *   assoc=PATH     publish the simple context association (paper 7.2) in
 *                  the association file PATH (include/antfarm/assoc.h):
 *                  the address space current on each vCPU, and the one
 *                  current on the vCPU that last notified the guest's disk;
 *                  created at install, removed at exit
 *   assoc-notify=SPEC  which I/O accesses are disk notifications
 *                  (repeatable; plugin/notify.h): virtio-blk (default),
 *                  name:PREFIX, any, ADDR[+LEN], io:PORT[+LEN]
 *   assoc-early=on|off  publish a notification before the store of a
 *                  site that has notified (default on; off: after it, from
 *                  the memory callback: racing with the device)
 *   assoc-demote=N a 16-bit store site that stored to RAM N times and
 *                  never to I/O is dropped (default 16, 0 never)
 *
 * How it works: at translation time each instruction of kernel-mode code is
 * decoded (plugin/x86.c). Writes to CR0/CR3/CR4, INVLPG, INVPCID and CPUID
 * get an instruction callback that reads registers (it runs before the
 * instruction: the source GPR holds the value about to be written). Store
 * candidates that are (or may be) page-table writers get a memory-write
 * callback (plugin/sites.c: learned at run time, see learn=); it turns the
 * access into a guest-physical address and, if the engine tracks that page
 * as a page table (a lock-free check) or the store is a known writer's,
 * passes AF_OBS_PT_STORE with the entry as it now is in guest RAM (batch=on:
 * through a per-vCPU buffer fed before the next other observation).
 * verify= (plugin/verify.c) catches stores nobody reported. Every engine
 * call is serialised by one mutex. Time is CLOCK_MONOTONIC ns since the
 * plugin started, shared by all vCPUs; icount is the vCPU's instruction
 * count (TB granularity).
 *
 * Kernel code is told at translation time: QEMU keys each translation block
 * by the CPU mode (CPL, code size, ...), so registers read while translating
 * describe every later execution of the block.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <antfarm/assoc.h>
#include <antfarm/channel.h>
#include <antfarm/engine.h>
#include <antfarm/trace.h>

#include "notify.h"
#include "output.h"
#include "qemu-api.h"
#include "ram.h"
#include "sites.h"
#include "verify.h"
#include "x86.h"

AF_QEMU_EXPORT int qemu_plugin_version = AF_QEMU_PLUGIN_LEVEL;

/* Architectural bits. */
#define CR0_PE (1ull << 0)
#define CR0_PG (1ull << 31)
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_PGE (1ull << 7)
#define CR4_LA57 (1ull << 12)
#define CR4_PCIDE (1ull << 17)
#define CR4_SMEP (1ull << 20)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFLAGS_VM (1ull << 17)

enum store_policy { ST_OFF = 0, ST_NARROW = 1, ST_WIDE = 2 };

/* How the candidate stores are narrowed down to page-table writers. */
enum learn_mode {
	LEARN_OFF = 0,    /* every candidate store has a callback */
	LEARN_DEMOTE = 1, /* hot candidates that never hit a table are dropped */
	LEARN_WINDOW = 2, /* learn in windows, then only writers */
};

/* Counters kept per vCPU (written only by that vCPU's thread). */
enum vcounter {
	VC_CR3,          /* CR3 writes seen */
	VC_CR0,          /* CR0 writes */
	VC_CR4,          /* CR4 writes */
	VC_INVLPG,       /* INVLPG executed */
	VC_INVPCID,      /* INVPCID executed */
	VC_CPUID,        /* CPUID in kernel mode, any leaf */
	VC_TRUTH,        /* ground-truth reports */
	VC_STORE_CB,     /* store callbacks to RAM */
	VC_STORE_PT,     /* ... that hit a tracked page table */
	VC_EA_FAIL,      /* INVLPG/INVPCID address not computable */
	VC_REG_FAIL,     /* register reads that failed */
	VC_KICK_CB,      /* assoc: callbacks of candidate 16-bit stores */
	VC_KICK_IO,      /* ... that were I/O accesses */
	VC_KICK,         /* disk notifications (stores and outs) */
	VC_KICK_EARLY,   /* ... published before the access */
	VC_OUT_CB,       /* assoc: callbacks of candidate 16-bit outs */
	VC_N
};

static const char *const vc_names[VC_N] = {
	"cr3_writes", "cr0_writes", "cr4_writes", "invlpg", "invpcid",
	"cpuid_kernel", "truth_events", "store_callbacks", "store_pt_hits",
	"flush_addr_unknown", "reg_read_failures", "assoc_store_callbacks",
	"assoc_io_stores", "assoc_notifies", "assoc_notifies_early",
	"assoc_out_callbacks",
};

/* A page-table store waiting to be fed (batch=on). */
struct ptrec {
	uint64_t gpa;   /* guest-physical address stored to */
	uint64_t value; /* the bytes there just after the store */
	uint32_t width; /* bytes stored, 1..8 */
};

/* Page-table stores buffered per vCPU before they are fed (batch=on). */
#define PT_RING 256

/* Per-vCPU state, one cache line apart. */
struct vcpu {
	_Alignas(64) uint64_t c[VC_N]; /* counters */
	uint32_t paging;     /* last mode|flags<<8 fed, UINT32_MAX none */
	const void *kick_pre; /* assoc: the store site whose notification
				 was published before it ran (see
				 on_kick_pre), NULL none */
	atomic_uint_least64_t waste; /* callbacks of sites already demoted
					(read by other threads) */
	/* batch=on: a single-producer ring (this vCPU's thread) drained
	 * under the lock by whichever thread feeds an observation next */
	_Alignas(64) atomic_uint head; /* next slot to fill (producer) */
	_Alignas(64) atomic_uint tail; /* next slot to feed (under lock) */
	struct ptrec ring[PT_RING];    /* the stores */
};

/* Global counters touched from several threads (relaxed atomics). */
struct gcounters {
	atomic_uint_fast64_t tb_trans;      /* blocks translated */
	atomic_uint_fast64_t tb_kernel;     /* ... of kernel code */
	atomic_uint_fast64_t sites_cr;      /* instrumented CR writes */
	atomic_uint_fast64_t sites_flush;   /* instrumented INVLPG/INVPCID */
	atomic_uint_fast64_t sites_cpuid;   /* instrumented CPUID */
	atomic_uint_fast64_t sites_store;   /* instrumented stores */
	atomic_uint_fast64_t sites_skipped; /* candidates left out (not writers) */
	atomic_uint_fast64_t demoted;       /* sites demoted */
	atomic_uint_fast64_t rechecks;      /* batch: drains to look again */
	atomic_uint_fast64_t mode_fallback; /* blocks classified by address */
	atomic_uint_fast64_t bad_vcpu;      /* callbacks from untracked vCPUs */
	atomic_uint_fast64_t obs_errors;    /* observations the engine refused */
	atomic_uint_fast64_t sites_kick;    /* assoc: 16-bit stores instrumented */
	atomic_uint_fast64_t sites_kick_pre; /* ... with a callback before */
	atomic_uint_fast64_t sites_out;     /* assoc: outs instrumented */
	atomic_uint_fast64_t sites_kick_skipped; /* ... 16-bit stores left out
						    (demoted) */
	atomic_uint_fast64_t kick_demoted;  /* assoc: 16-bit store sites
					       demoted */
};

/* Register handles (the same for every vCPU of a machine). */
struct regs {
	struct qemu_plugin_register *gpr[AF_X86_NGPR]; /* by encoding */
	struct qemu_plugin_register *cr0, *cr4, *efer; /* control */
	struct qemu_plugin_register *cs, *eflags;     /* mode */
	struct qemu_plugin_register *fs_base, *gs_base; /* segment bases */
	int ready;                                     /* looked up */
};

static struct {
	/* configuration */
	int is64;                 /* qemu-system-x86_64 (else i386) */
	unsigned n_vcpus;         /* vCPUs the engine tracks */
	int policy;               /* enum store_policy */
	int kernel_by_va;         /* kernel=va */
	int low_stores;           /* lowstores=on */
	int frame_pointer;        /* framepointer=on */
	int fence;                /* several vCPUs: order stores and checks */
	int use_icount;           /* icount=on */
	int truth_lines;          /* truth=on */
	int quiet;                /* quiet=on */
	int verbose;              /* verbose=on: a line per flush */
	const char *summary_path; /* summary=FILE */
	int learn;                /* enum learn_mode */
	int batch;                /* batch=on: page-table stores are buffered
				     per vCPU and fed before the next other
				     observation (or when the buffer fills) */
	uint64_t demote_calls;    /* demote: calls without a hit that demote */
	uint64_t demote_epochs;   /* ... spread over this many epochs (root
				     loads), so that a burst (a kernel-table
				     update, say) demotes nothing */
	uint64_t flush_waste;     /* demote: flush once demoted sites have run
				     this many callbacks since the last one */
	uint64_t flush_tb;        /* demote: ... and at least this many per
				     block translated since that flush (what
				     the flush throws away; 0: no such bound) */
	uint64_t learn_quiet_ns;  /* window: end a learning window after this
				     long without a new writer ... */
	uint64_t learn_min_ns;    /* ... once it has lasted this long ... */
	uint64_t learn_min_hits;  /* ... and seen this many page-table hits */
	uint64_t relearn_ns;      /* window: open a learning window this often
				     (0 never) */
	const char *sites_path;   /* sites=FILE: dump the site table at exit */
	qemu_plugin_id_t id;      /* ours, for qemu_plugin_reset() */

	/* engine and outputs, all used under lock */
	pthread_mutex_t lock;             /* serialises everything below */
	int closed;                       /* atexit ran: ignore callbacks */
	struct af_engine *eng;            /* the engine (maybe recorder's) */
	struct af_recorder *rec;          /* set when recording a trace */
	struct af_trace_writer *tw;       /* the trace, or NULL */
	struct af_out out;                /* events=, fd -1 if none */
	int have_out;                     /* events= given */
	struct af_ram ram;                /* guest RAM view */
	struct timespec t0;               /* plugin start */
	uint64_t truth_by_kind[16];       /* ground truth counted by kind */

	/* learning the page-table writers (state under lock) */
	atomic_int filtering;             /* window: 1 = only writers */
	atomic_int armed;                 /* demote: a second address space
					     exists: stores are instrumented
					     and calls count toward demotion */
	atomic_int reset_pending;         /* a qemu_plugin_reset is under way */
	atomic_uint_least64_t waste_at_flush; /* demote: wasted calls at the
					     last flush */
	atomic_uint_least64_t tb_at_flush; /* blocks translated at the last
					     flush (tb_translated then) */
	atomic_uint_least64_t flush_waits; /* demote: waste checks past
					     flush_waste that flush_tb held off */
	uint64_t armed_ns;                /* demote: when armed */
	atomic_uint_least32_t epoch;      /* demote: root loads seen (epochs) */
	atomic_uint_least64_t n_undemoted; /* demote: ... that hit a table later */
	uint64_t window_start_ns;         /* current mode entered */
	uint64_t last_writer_ns;          /* window: newest writer seen at */
	uint64_t writers_seen;            /* window: n_writers then */
	uint64_t window_hits;             /* page-table hits in this window */
	atomic_uint_least64_t n_writers;  /* sites learned as writers */
	uint64_t n_windows;               /* learning windows opened */
	atomic_uint_least64_t n_resets;   /* translation flushes asked for */
	uint64_t learn_ns;                /* time spent learning, closed windows */
	pthread_mutex_t site_lock;        /* serialises the site table */
	unsigned feed_es;                 /* entry size of the vCPU being fed */
	uint64_t verify_ns;               /* verify=: check shadows this often
					     (0: never) */
	struct af_verify verify;          /* shadows of what the engine knows */
	uint64_t last_verify_ns;          /* last check */
	uint64_t missed;                  /* entries found changed unseen */
	uint64_t missed_stale;            /* ... in frames that are no table */
	uint64_t missed_at_relearn;       /* missed when relearning last */
	uint64_t relearn_misses;          /* misses that make it relearn */
	uint64_t verify_passes;           /* checks run */
	uint64_t relearns;                /* relearning caused by misses */
	uint64_t relearn_gap_ns;          /* least time between relearns */
	uint64_t last_relearn_ns;         /* last relearn */
	struct af_sites sites;            /* instrumented store sites */

	/* context association (assoc=); the file's slots are written under
	 * lock, the learned state is atomics */
	const char *assoc_path;           /* assoc=PATH, NULL: off */
	int assoc_on;                     /* assoc= given (set at install) */
	int assoc_early;                  /* assoc-early=on: publish before
					     the stores of learned sites */
	uint64_t assoc_demote;            /* assoc-demote=N: RAM stores that
					     drop a 16-bit store site */
	struct af_assoc *assoc;           /* the file, NULL when off/closed */
	struct af_notify nt;              /* what a notification is */
	struct af_sites kick_sites;       /* 16-bit store sites; flag
					     AF_SITE_WRITER: it has notified */
	uint64_t assoc_cur[AF_MAX_VCPUS]; /* serial published per vCPU */
	uint64_t assoc_vcpu_pubs;         /* vCPU slot publishes */
	uint64_t assoc_none;              /* notifications with no process
					     current on the vCPU */
	uint64_t assoc_errors;            /* publishes that failed */
	atomic_uint_least64_t assoc_false_pre; /* published early, but the
					     store was no notification */
	atomic_uint_least64_t assoc_kick_sites; /* sites learned */
	struct af_kick {
		struct af_site *site;     /* its entry in kick_sites */
		uint64_t desc;            /* its packed memory operand */
	} kicks[64];                      /* notifying sites with a callback
					     before them (under site_lock) */
	unsigned n_kicks;                 /* kicks[] used */

	/* vCPU side */
	struct regs r;                    /* register handles */
	struct qemu_plugin_scoreboard *sb; /* icount scoreboard */
	qemu_plugin_u64 icount;           /* its counter */
	struct vcpu v[AF_MAX_VCPUS];      /* per vCPU */
	struct gcounters gc;              /* shared counters */
} g = { .lock = PTHREAD_MUTEX_INITIALIZER,
	.site_lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- small helpers ---- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char b[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	fprintf(stderr, "antfarm-qemu: %s\n", b);
}

static void gc_inc(atomic_uint_fast64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)(t.tv_sec - g.t0.tv_sec) * 1000000000ull +
	       (uint64_t)t.tv_nsec - (uint64_t)g.t0.tv_nsec;
}

static uint64_t icount_of(unsigned vcpu)
{
	return g.use_icount ? qemu_plugin_u64_get(g.icount, vcpu) : 0;
}

/* Register reads use a buffer per thread (vCPU threads never share one);
 * it is allocated once, on the thread's first read. */
static __thread GByteArray *tls_buf;

static int reg_read(struct qemu_plugin_register *h, uint64_t *out)
{
	int n;
	uint64_t v = 0;

	if (!h)
		return -1;
	if (!tls_buf)
		tls_buf = g_byte_array_sized_new(64);
	g_byte_array_set_size(tls_buf, 0);
	n = qemu_plugin_read_register(h, tls_buf);
	if (n <= 0 || tls_buf->len < (guint)n)
		return -1;
	memcpy(&v, tls_buf->data, n < 8 ? (size_t)n : 8); /* little-endian */
	*out = v;
	return 0;
}

/* Reads a register a callback needs; counts failures against vcpu. */
static int need(struct vcpu *vs, struct qemu_plugin_register *h, uint64_t *out)
{
	if (reg_read(h, out) == 0)
		return 0;
	vs->c[VC_REG_FAIL]++;
	return -1;
}

static void learn_tick(uint64_t now);

/* Entry size (4 or 8) of the paging mode last fed for a vCPU. */
static unsigned entry_size_of(unsigned vcpu)
{
	uint32_t p = vcpu < AF_MAX_VCPUS ? g.v[vcpu].paging : UINT32_MAX;

	return (p & 0xff) == AF_PAGING_32 ? 4 : 8;
}

/* Feeds one observation stamped t; caller holds the lock. */
static void feed_now(struct af_obs *o, uint64_t t)
{
	int rc;

	o->time_ns = t;
	o->icount = icount_of(o->vcpu);
	g.feed_es = entry_size_of(o->vcpu); /* for read_phys() */
	rc = g.rec ? af_recorder_observe(g.rec, o) : af_engine_observe(g.eng, o);
	if (rc)
		gc_inc(&g.gc.obs_errors);
	else if (o->kind == AF_OBS_PT_STORE && g.verify_ns)
		af_verify_store(&g.verify, o->addr, o->width, o->value);
}

/* batch=on: feeds every buffered page-table store of every vCPU, in each
 * vCPU's order, stamped now. Caller holds the lock. */
static void drain(void)
{
	uint64_t t = 0;
	int any = 0;

	for (unsigned v = 0; v < g.n_vcpus; v++) {
		struct vcpu *vs = &g.v[v];
		unsigned h = atomic_load_explicit(&vs->head,
						  memory_order_acquire);
		unsigned i = atomic_load_explicit(&vs->tail,
						  memory_order_relaxed);
		if (i == h)
			continue;
		if (!any) {
			t = now_ns();
			any = 1;
		}
		for (; i != h; i++) {
			const struct ptrec *r = &vs->ring[i % PT_RING];
			struct af_obs o = {
				.kind = AF_OBS_PT_STORE,
				.width = (uint8_t)r->width,
				.vcpu = (uint16_t)v, .addr = r->gpa,
				.value = r->value,
			};
			feed_now(&o, t);
			g.window_hits++;
		}
		atomic_store_explicit(&vs->tail, h, memory_order_release);
	}
	if (any && g.learn != LEARN_OFF)
		learn_tick(t);
}

/* Feeds one observation; caller holds the lock. Stamps time and icount.
 * Buffered page-table stores go first. */
static void feed(struct af_obs *o)
{
	if (g.batch)
		drain();
	feed_now(o, now_ns());
}

/* Feeds AF_OBS_PAGING if the vCPU's mode differs from what was fed last.
 * Caller holds the lock. */
static void sync_paging(unsigned vcpu, uint64_t cr0, uint64_t cr4,
			uint64_t efer)
{
	uint32_t flags = 0, key;
	enum af_paging m = af_x86_paging_mode(cr0, cr4, efer, &flags);
	struct af_obs o = { .kind = AF_OBS_PAGING, .vcpu = (uint16_t)vcpu };

	key = (uint32_t)m | flags << 8;
	if (g.v[vcpu].paging == key)
		return;
	g.v[vcpu].paging = key;
	o.value = m;
	o.aux = flags;
	feed(&o);
}

static void flush_obs(unsigned vcpu, unsigned kind, uint64_t value,
		      uint64_t addr)
{
	struct af_obs o = {
		.kind = AF_OBS_TLB_FLUSH, .width = (uint8_t)kind,
		.vcpu = (uint16_t)vcpu, .value = value, .addr = addr,
	};
	feed(&o);
}

/* Takes the lock unless the plugin is shutting down; 0 if taken. */
static int enter(void)
{
	pthread_mutex_lock(&g.lock);
	if (g.closed) {
		pthread_mutex_unlock(&g.lock);
		return -1;
	}
	return 0;
}

static void leave(void)
{
	pthread_mutex_unlock(&g.lock);
}

/* ---- learning the page-table writers ---- */

static void after_reset(qemu_plugin_id_t id);

static uint64_t waste_now(void)
{
	uint64_t w = 0;

	for (unsigned v = 0; v < g.n_vcpus; v++)
		w += atomic_load_explicit(&g.v[v].waste,
					  memory_order_relaxed);
	return w;
}

/* Asks QEMU to drop every callback and flush the translated code, so that
 * every block is translated again under the current site flags (until the
 * flush has happened old blocks keep their callbacks: harmless both ways).
 * Any thread, lock held or not; one request at a time. Returns 1 if asked. */
static int request_flush(void)
{
	if (atomic_exchange_explicit(&g.reset_pending, 1, memory_order_acq_rel))
		return 0;
	atomic_fetch_add_explicit(&g.n_resets, 1, memory_order_relaxed);
	if (g.verbose)
		say("flush at %.3f s: %" PRIu64 " sites demoted, %" PRIu64
		    " writers, %" PRIu64 " wasted callbacks, %" PRIu64
		    " blocks translated (%" PRIu64 " since the last flush)",
		    now_ns() / 1e9, (uint64_t)atomic_load(&g.gc.demoted),
		    (uint64_t)atomic_load(&g.n_writers), waste_now(),
		    (uint64_t)atomic_load(&g.gc.tb_trans),
		    (uint64_t)(atomic_load(&g.gc.tb_trans) -
			       atomic_load(&g.tb_at_flush)));
	qemu_plugin_reset(g.id, after_reset);
	return 1;
}

/* learn=window: enters filtering (filter = 1: only learned writers get a
 * memory callback) or learning (every candidate store does). */
static void learn_switch(int filter, uint64_t now)
{
	if (filter)
		g.learn_ns += now - g.window_start_ns;
	else
		g.n_windows++;
	atomic_store_explicit(&g.filtering, filter, memory_order_relaxed);
	g.window_start_ns = now;
	g.last_writer_ns = now;
	g.writers_seen = atomic_load(&g.n_writers);
	g.window_hits = 0;
	request_flush();
}

/* learn=demote: flushes once the sites already demoted have wasted
 * flush_waste callbacks since the last flush. Any thread, no lock: called
 * from ticks and every 4096th wasted callback of a vCPU (a long kernel
 * computation, module signature checks say, runs with neither root loads
 * nor page-table stores). */
static void waste_check(void)
{
	uint64_t w = waste_now();
	uint64_t last = atomic_load_explicit(&g.waste_at_flush,
					     memory_order_relaxed);
	uint64_t tb;

	if (w - last < g.flush_waste ||
	    atomic_load_explicit(&g.reset_pending, memory_order_relaxed))
		return;
	/* a flush throws away every block translated since the last one, and
	 * the workload translates again those it still runs: with a large
	 * working set (a compile: cc1, make, the shell) that costs far more
	 * than flush_waste wasted callbacks */
	tb = atomic_load_explicit(&g.gc.tb_trans, memory_order_relaxed) -
	     atomic_load_explicit(&g.tb_at_flush, memory_order_relaxed);
	if (!af_flush_due(w - last, tb, g.flush_waste, g.flush_tb)) {
		atomic_fetch_add_explicit(&g.flush_waits, 1,
					  memory_order_relaxed);
		return;
	}
	if (atomic_compare_exchange_strong_explicit(&g.waste_at_flush, &last, w,
						    memory_order_relaxed,
						    memory_order_relaxed))
		request_flush();
}

/* Called under the lock at each CR3 write (frequent, cheap).
 * learn=demote: once the sites already demoted have wasted flush_waste
 * callbacks since the last flush, flush (the cost of the waste then
 * matches the cost of translating the working set again: the ski-rental
 * rule, at most twice the best choice made in hindsight).
 * learn=window: ends a learning window once no new writer has turned up for
 * learn_quiet_ns (and the window has lasted learn_min_ns and seen
 * learn_min_hits page-table stores), or opens a periodic one. */
static void learn_tick(uint64_t now)
{
	if (atomic_load_explicit(&g.reset_pending, memory_order_relaxed) ||
	    g.closed)
		return;
	if (g.learn == LEARN_DEMOTE) {
		waste_check();
		return;
	}
	if (atomic_load(&g.n_writers) != g.writers_seen) {
		g.writers_seen = atomic_load(&g.n_writers);
		g.last_writer_ns = now;
	}
	if (!atomic_load_explicit(&g.filtering, memory_order_relaxed)) {
		if (now - g.window_start_ns >= g.learn_min_ns &&
		    now - g.last_writer_ns >= g.learn_quiet_ns &&
		    g.window_hits >= g.learn_min_hits)
			learn_switch(1, now);
	} else if (g.relearn_ns && now - g.window_start_ns >= g.relearn_ns) {
		learn_switch(0, now);
	}
}

/* ---- verification: stores nobody reported ---- */

static int vf_tracked(void *ctx, uint64_t gpa)
{
	(void)ctx;
	return af_engine_is_page_table(g.eng, gpa);
}

static int vf_read(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	(void)ctx;
	return af_ram_read(&g.ram, gpa, buf, len);
}

/* An entry changed without a store being seen: feed it as a store now (the
 * engine catches up), and count it. A frame that no longer looks like a
 * page table at all (pointers, text: a table the guest freed without the
 * engine seeing it unlinked, and reused) is counted apart: no writer was
 * missed there, and relearning would not help. */
static void vf_miss(void *ctx, uint64_t gpa, unsigned es, uint64_t value,
		    int table)
{
	const uint64_t *t = ctx;
	struct af_obs o = {
		.kind = AF_OBS_PT_STORE, .width = (uint8_t)es,
		.vcpu = (uint16_t)t[1], .addr = gpa, .value = value,
	};

	if (table)
		g.missed++;
	else
		g.missed_stale++;
	if (g.verbose && g.missed + g.missed_stale <= 20)
		say("missed store: gpa 0x%" PRIx64 " (%u bytes) is now 0x%016"
		    PRIx64 "%s", gpa, es, value,
		    table ? "" : " (frame is no table now)");
	feed_now(&o, t[0]);
}

/* Stores were missed: every site is a candidate again (learn=demote: all
 * demotions undone, and a site must now run twice as often without a hit
 * to be demoted; learn=window: a learning window opens), so the writer
 * that was missed is learned. At most once per relearn_gap_ns, which
 * doubles each time (misses the learning cannot cure, a store of a kind
 * that is never instrumented say, do not make it flush over and over).
 * Caller holds the lock. */
static void relearn(uint64_t now)
{
	if (g.learn == LEARN_OFF ||
	    (g.relearns && now - g.last_relearn_ns < g.relearn_gap_ns))
		return;
	if (g.relearns)
		g.relearn_gap_ns *= 2;
	g.last_relearn_ns = now;
	g.relearns++;
	if (g.verbose)
		say("missed page-table stores found at %.3f s: relearning",
		    now / 1e9);
	if (g.learn == LEARN_DEMOTE) {
		pthread_mutex_lock(&g.site_lock);
		af_sites_undemote_all(&g.sites);
		pthread_mutex_unlock(&g.site_lock);
		if (g.demote_calls < (1ull << 24))
			g.demote_calls *= 2;
		atomic_store(&g.waste_at_flush, waste_now());
		request_flush();
	} else if (atomic_load(&g.filtering) &&
		   !atomic_load(&g.reset_pending)) {
		learn_switch(0, now);
	}
}

/* verify=: every verify_ns (checked at root loads), compares the shadows
 * with RAM; misses are repaired and trigger relearning. Caller holds the
 * lock. */
static void verify_tick(unsigned vcpu, uint64_t now)
{
	uint64_t ctx[2] = { now, vcpu };

	if (!g.verify_ns || now - g.last_verify_ns < g.verify_ns)
		return;
	g.last_verify_ns = now;
	if (g.batch)
		drain();
	af_verify_check(&g.verify, vf_tracked, vf_read, vf_miss, ctx,
			af_ram_phys_top(&g.ram));
	g.verify_passes++;
	/* a few misses happen whatever is instrumented (a freed table
	 * poisoned or cleared by a string store, which is never a
	 * candidate); a writer that was wrongly dropped misses far more */
	if (g.missed - g.missed_at_relearn >= g.relearn_misses) {
		g.missed_at_relearn = g.missed;
		relearn(now);
	}
}

/* Should a candidate store at this site get a memory callback now? */
static int site_wanted(struct af_site *site)
{
	unsigned f;

	if (!site)
		return g.learn != LEARN_DEMOTE ||
		       atomic_load_explicit(&g.armed, memory_order_relaxed);
	f = atomic_load_explicit(&site->flags, memory_order_relaxed);
	switch (g.learn) {
	case LEARN_DEMOTE:
		if (!atomic_load_explicit(&g.armed, memory_order_relaxed))
			return 0;
		return (f & AF_SITE_WRITER) || !(f & AF_SITE_DEMOTED);
	case LEARN_WINDOW:
		return (f & AF_SITE_WRITER) ||
		       !atomic_load_explicit(&g.filtering,
					     memory_order_relaxed);
	default:
		return 1;
	}
}

/* ---- instruction descriptors packed into the callback's userdata ----
 * bits 0-2 kind, 3-4 mode (1=16, 2=32, 3=64), 5-8 cr, 9-12 gpr,
 * 13-17 base (16 = none), 18-22 index, 23-24 log2 scale, 25-26 seg,
 * 27-28 address size (1=2, 2=4, 3=8), 29 address not computable,
 * 32-63 displacement. */
static void *pack(const struct af_x86_insn *in, enum af_x86_mode mode)
{
	uint64_t d = in->kind & 7;
	unsigned m = mode == AF_X86_MODE64 ? 3 : mode == AF_X86_MODE32 ? 2 : 1;
	unsigned base = in->mem.base < 16 ? in->mem.base : 16;
	unsigned index = in->mem.index < 16 ? in->mem.index : 16;
	unsigned sc = in->mem.scale == 8 ? 3 : in->mem.scale == 4 ? 2
		    : in->mem.scale == 2 ? 1 : 0;
	unsigned as = in->mem.asize == 8 ? 3 : in->mem.asize == 4 ? 2 : 1;

	d |= (uint64_t)m << 3;
	d |= (uint64_t)(in->cr & 15) << 5;
	d |= (uint64_t)(in->gpr & 15) << 9;
	d |= (uint64_t)base << 13;
	d |= (uint64_t)index << 18;
	d |= (uint64_t)sc << 23;
	d |= (uint64_t)(in->mem.seg & 3) << 25;
	d |= (uint64_t)as << 27;
	/* rip-relative and 16-bit addressing never occur in the flush paths
	 * of the kernels we know; they are counted, not computed */
	if (in->mem.rip_rel || in->mem.asize == 2)
		d |= 1ull << 29;
	d |= (uint64_t)(uint32_t)in->mem.disp << 32;
	return (void *)(uintptr_t)d;
}

#define UD_KIND(d) ((unsigned)((d) & 7))
#define UD_MODE64(d) ((((d) >> 3) & 3) == 3)
#define UD_CR(d) ((unsigned)(((d) >> 5) & 15))
#define UD_GPR(d) ((unsigned)(((d) >> 9) & 15))

/* Effective (linear) address of the packed memory operand, from the current
 * registers. */
static int eff_addr(struct vcpu *vs, uint64_t d, uint64_t *out)
{
	unsigned base = (d >> 13) & 31, index = (d >> 18) & 31;
	unsigned sc = (d >> 23) & 3, seg = (d >> 25) & 3, as = (d >> 27) & 3;
	uint64_t a = (uint64_t)(int64_t)(int32_t)(uint32_t)(d >> 32), v;

	if (d & (1ull << 29))
		return -1;
	if (base < 16) {
		if (need(vs, g.r.gpr[base], &v))
			return -1;
		a += v;
	}
	if (index < 16) {
		if (need(vs, g.r.gpr[index], &v))
			return -1;
		a += v << sc;
	}
	if (as == 2)
		a &= 0xffffffffull;
	if (seg == AF_X86_SEG_FS || seg == AF_X86_SEG_GS) {
		if (need(vs, seg == AF_X86_SEG_FS ? g.r.fs_base : g.r.gs_base,
			 &v))
			return -1;
		a += v;
	}
	if (!UD_MODE64(d))
		a &= 0xffffffffull;
	*out = a;
	return 0;
}

/* ---- execution-time callbacks ---- */

static struct vcpu *vcpu_of(unsigned vcpu)
{
	if (vcpu >= g.n_vcpus) {
		gc_inc(&g.gc.bad_vcpu);
		return NULL;
	}
	return &g.v[vcpu];
}

/* mov %gpr,%cr0/%cr3/%cr4, just before it executes. */
static void on_cr_write(unsigned vcpu, void *ud)
{
	uint64_t d = (uintptr_t)ud, val, cr0, cr4, efer = 0;
	struct vcpu *vs = vcpu_of(vcpu);
	unsigned cr = UD_CR(d);

	if (!vs || need(vs, g.r.gpr[UD_GPR(d)], &val) ||
	    need(vs, g.r.cr0, &cr0) || need(vs, g.r.cr4, &cr4))
		return;
	if (g.r.efer && need(vs, g.r.efer, &efer))
		return;
	if (!UD_MODE64(d))
		val &= 0xffffffffull;
	if (cr == 3) {
		struct af_obs o = { .kind = AF_OBS_ROOT_LOAD,
				    .vcpu = (uint16_t)vcpu, .value = val };
		vs->c[VC_CR3]++;
		if (enter())
			return;
		sync_paging(vcpu, cr0, cr4, efer); /* catches EFER, resets */
		feed(&o);
		if (g.learn != LEARN_OFF) {
			atomic_store_explicit(
				&g.epoch,
				atomic_load_explicit(&g.epoch,
						     memory_order_relaxed) + 1,
				memory_order_relaxed);
			learn_tick(o.time_ns);
		}
		verify_tick(vcpu, o.time_ns);
		leave();
	} else if (cr == 4) {
		uint64_t ch = cr4 ^ val;
		int all = (ch & (CR4_PGE | CR4_PAE | CR4_PSE | CR4_LA57 |
				 CR4_SMEP)) ||
			  ((cr4 & CR4_PCIDE) && !(val & CR4_PCIDE));
		vs->c[VC_CR4]++;
		if (enter())
			return;
		sync_paging(vcpu, cr0, val, efer);
		if (all)
			flush_obs(vcpu, AF_FLUSH_ALL, 0, 0);
		leave();
	} else if (cr == 0) {
		/* EFER.LMA follows CR0.PG when EFER.LME is set */
		uint64_t e2 = efer & ~EFER_LMA;
		if ((val & CR0_PG) && (efer & EFER_LME))
			e2 |= EFER_LMA;
		vs->c[VC_CR0]++;
		if (enter())
			return;
		sync_paging(vcpu, val, cr4, e2);
		if ((cr0 ^ val) & CR0_PG)
			flush_obs(vcpu, AF_FLUSH_ALL, 0, 0);
		leave();
	}
}

static void on_invlpg(unsigned vcpu, void *ud)
{
	uint64_t d = (uintptr_t)ud, va;
	struct vcpu *vs = vcpu_of(vcpu);

	if (!vs)
		return;
	vs->c[VC_INVLPG]++;
	if (eff_addr(vs, d, &va)) {
		vs->c[VC_EA_FAIL]++;
		return;
	}
	if (enter())
		return;
	flush_obs(vcpu, AF_FLUSH_PAGE, 0, va);
	leave();
}

static void on_invpcid(unsigned vcpu, void *ud)
{
	uint64_t d = (uintptr_t)ud, type, ea, pcid = 0, la = 0;
	struct vcpu *vs = vcpu_of(vcpu);
	unsigned kind;

	if (!vs || need(vs, g.r.gpr[UD_GPR(d)], &type))
		return;
	vs->c[VC_INVPCID]++;
	if (!UD_MODE64(d))
		type &= 0xffffffffull;
	if (type == 2 || type == 3) {
		kind = type == 2 ? AF_FLUSH_ALL : AF_FLUSH_NONGLOBAL;
	} else if (type <= 1) {
		/* 16-byte descriptor: PCID in bits 0-11, then the address */
		if (eff_addr(vs, d, &ea)) {
			vs->c[VC_EA_FAIL]++;
			return;
		}
		g_byte_array_set_size(tls_buf, 0); /* set by the reads above */
		if (!qemu_plugin_read_memory_vaddr(ea, tls_buf, 16) ||
		    tls_buf->len < 16) {
			vs->c[VC_EA_FAIL]++;
			return;
		}
		memcpy(&pcid, tls_buf->data, 8);
		memcpy(&la, tls_buf->data + 8, 8);
		pcid &= 0xfff;
		kind = type == 0 ? AF_FLUSH_ASID_PAGE : AF_FLUSH_ASID;
	} else {
		return; /* #GP: nothing happens */
	}
	if (enter())
		return;
	flush_obs(vcpu, kind, pcid, la);
	leave();
}

static void on_cpuid(unsigned vcpu, void *ud)
{
	struct vcpu *vs = vcpu_of(vcpu);
	uint64_t eax, ebx, ecx, edx, esi, edi;
	struct af_truth t;

	(void)ud;
	if (!vs || need(vs, g.r.gpr[AF_X86_RAX], &eax))
		return;
	vs->c[VC_CPUID]++;
	if ((uint32_t)eax != AF_CHAN_MAGIC)
		return;
	if (need(vs, g.r.gpr[AF_X86_RBX], &ebx) ||
	    need(vs, g.r.gpr[AF_X86_RCX], &ecx) ||
	    need(vs, g.r.gpr[AF_X86_RDX], &edx) ||
	    need(vs, g.r.gpr[AF_X86_RSI], &esi) ||
	    need(vs, g.r.gpr[AF_X86_RDI], &edi))
		return;
	vs->c[VC_TRUTH]++;
	memset(&t, 0, sizeof(t));
	t.kind = (uint8_t)(uint32_t)ebx;
	t.vcpu = (uint16_t)vcpu;
	t.pid = (uint32_t)ecx;
	t.ppid = (uint32_t)edx;
	if ((uint32_t)esi == AF_CHAN_NONE && (uint32_t)edi == AF_CHAN_NONE)
		t.asid = AF_ASID_NONE;
	else
		t.asid = (uint64_t)(uint32_t)edi << 32 | (uint32_t)esi;
	if (enter())
		return;
	if (g.batch)
		drain(); /* the trace keeps observations and truth in order */
	t.time_ns = now_ns();
	g.truth_by_kind[t.kind < 16 ? t.kind : 0]++;
	if (g.tw)
		af_trace_write_truth(g.tw, &t);
	if (g.have_out && g.truth_lines)
		af_out_truth(&g.out, &t);
	leave();
}

/* The value of the entry just stored, as it is in guest RAM now: with
 * several vCPUs storing to one entry, the last callback to run then leaves
 * the engine with what memory holds, whatever order the callbacks ran in;
 * and a cmpxchg that failed (QEMU reports its new value as stored) changes
 * nothing. Without a RAM view, the value QEMU says was stored. */
static uint64_t stored_value(qemu_plugin_meminfo_t info, uint64_t gpa,
			     unsigned width)
{
	const uint8_t *p = af_ram_ptr(&g.ram, gpa, width);
	uint64_t value = 0;
	qemu_plugin_mem_value mv;

	if (p) {
		memcpy(&value, p, width);
		return value;
	}
	mv = qemu_plugin_mem_get_value(info);
	switch (mv.type) {
	case QEMU_PLUGIN_MEM_VALUE_U8: return mv.data.u8;
	case QEMU_PLUGIN_MEM_VALUE_U16: return mv.data.u16;
	case QEMU_PLUGIN_MEM_VALUE_U32: return mv.data.u32;
	case QEMU_PLUGIN_MEM_VALUE_U64: return mv.data.u64;
	default: return mv.data.u128.low;
	}
}

/* Notes a store that landed in a tracked page table: the site is a
 * writer. */
static void site_hit(struct af_site *site)
{
	if (!site)
		return;
	if (g.sites_path)
		af_site_count(&af_site_info(&g.sites, site)->hits);
	if (af_site_is_writer(site))
		return;
	switch (af_site_mark_writer(site, af_site_info(&g.sites, site),
				    now_ns())) {
	case 2:
		atomic_fetch_add(&g.n_undemoted, 1);
		/* fall through */
	case 1:
		atomic_fetch_add(&g.n_writers, 1);
		break;
	}
}

/* learn=demote bookkeeping of a site that is no writer and not demoted:
 * count the call, demote the site once it has run demote_calls times over
 * demote_epochs epochs without a hit (armed). */
static void site_call(struct af_site *site)
{
	uint64_t calls = af_site_count32(&site->calls);

	if (calls >= g.demote_calls &&
	    af_site_epoch(site, atomic_load_explicit(&g.epoch,
						     memory_order_relaxed)) >=
		    g.demote_epochs &&
	    atomic_load_explicit(&g.armed, memory_order_relaxed) &&
	    af_site_demote(site))
		gc_inc(&g.gc.demoted);
}

/* A candidate store has happened (memory callbacks run after the access).
 * ud is its site (NULL: learn=off, or the site table was full). */
static void on_store(unsigned vcpu, qemu_plugin_meminfo_t info, uint64_t va,
		     void *ud)
{
	struct qemu_plugin_hwaddr *hw;
	unsigned width = 1u << qemu_plugin_mem_size_shift(info);
	struct af_site *site = ud;
	unsigned f = site ? atomic_load_explicit(&site->flags,
						 memory_order_relaxed) : 0;
	struct vcpu *vs = vcpu_of(vcpu);
	uint64_t gpa, value;
	int buffered;

	if (!vs)
		return;
	if (site) {
		if (f & AF_SITE_WRITER) {
			if (g.sites_path)
				af_site_count32(&site->calls);
		} else if (f & AF_SITE_DEMOTED) {
			/* still in blocks translated before the demotion:
			 * waste, until the next flush */
			if (g.sites_path)
				af_site_count32(&site->calls);
			if (!(af_site_count(&vs->waste) & 4095))
				waste_check();
			return;
		} else if (g.learn == LEARN_DEMOTE) {
			site_call(site);
		}
	}
	if (width > 8)
		return;
	hw = qemu_plugin_get_hwaddr(info, va);
	if (!hw || qemu_plugin_hwaddr_is_io(hw))
		return;
	gpa = qemu_plugin_hwaddr_phys_addr(hw);
	/* epochs (learn=demote) also pass with callback volume, so that a
	 * long kernel computation with no root load in it (module signature
	 * checks, a page-table dump at boot) can demote its stores */
	if (!(++vs->c[VC_STORE_CB] & 0xffff))
		atomic_fetch_add_explicit(&g.epoch, 1, memory_order_relaxed);

	/* batch=on: every store of a learned writer is buffered, tracked
	 * table or not: one that lands in a table whose link is still in the
	 * buffer must not be lost (fed in order, the engine sees the entry
	 * come and go even if both happened before the drain; stores to
	 * frames that are no table by then are counted as stray and
	 * ignored). Any other store only if it hits a tracked table. */
	buffered = g.batch && site && (f & AF_SITE_WRITER);
	/* sites=: a buffered writer's hits are counted here (the table may
	 * be linked only by a store still in the buffer: a lower bound) */
	if (buffered && g.sites_path && af_engine_is_page_table(g.eng, gpa))
		af_site_count(&af_site_info(&g.sites, site)->hits);
	if (!buffered) {
		/* With several vCPU threads: the guest's store must be
		 * visible before we look at the page-table set, pairing with
		 * the fence in read_phys(): either the engine's read of a
		 * newly tracked table sees this store, or this check sees the
		 * table tracked. */
		if (g.fence)
			atomic_thread_fence(memory_order_seq_cst);
		if (!af_engine_is_page_table(g.eng, gpa)) {
			/* batch=on: the table may be linked by a store still
			 * in the buffer; a site still being learned must see
			 * the engine up to date, or it would never become a
			 * writer. Drain and look again. */
			if (!g.batch || !site || (f & AF_SITE_DEMOTED) ||
			    atomic_load_explicit(&vs->head,
						 memory_order_relaxed) ==
				    atomic_load_explicit(&vs->tail,
							 memory_order_relaxed))
				return;
			if (enter())
				return;
			gc_inc(&g.gc.rechecks);
			drain();
			if (!af_engine_is_page_table(g.eng, gpa)) {
				leave();
				return;
			}
			leave();
		}
		site_hit(site);
	}
	value = stored_value(info, gpa, width);
	vs->c[VC_STORE_PT]++;
	if (g.batch) {
		unsigned h = atomic_load_explicit(&vs->head,
						  memory_order_relaxed);
		struct ptrec *r;

		if (h - atomic_load_explicit(&vs->tail, memory_order_acquire) >=
		    PT_RING) {
			if (enter())
				return;
			drain();
			leave();
		}
		r = &vs->ring[h % PT_RING];
		r->gpa = gpa;
		r->value = value;
		r->width = width;
		atomic_store_explicit(&vs->head, h + 1, memory_order_release);
		return;
	}
	if (enter())
		return;
	{
		struct af_obs o = {
			.kind = AF_OBS_PT_STORE, .width = (uint8_t)width,
			.vcpu = (uint16_t)vcpu, .addr = gpa, .value = value,
		};
		feed(&o);
		g.window_hits++;
		if (g.learn != LEARN_OFF && !(g.window_hits & 63))
			learn_tick(o.time_ns);
	}
	leave();
}

/* ---- context association (assoc=) ---- */

/* Publishes what vCPU v now runs. Caller holds the lock. */
static void assoc_vcpu(unsigned v, uint64_t asid, uint64_t serial)
{
	if (af_assoc_publish_vcpu(g.assoc, v, asid, serial,
				  af_assoc_now_ns()))
		g.assoc_errors++;
	else
		g.assoc_vcpu_pubs++;
	g.assoc_cur[v] = serial;
}

/* The vCPU slots follow the engine's view: a switch (or a create: the
 * switch to it follows at once and publishes nothing new) makes a space
 * current on the vCPU of the event; an exit leaves nothing current where
 * the space was. Caller holds the lock (inside an observation). */
static void assoc_event(const struct af_event *ev)
{
	if (ev->kind == AF_EV_SWITCH || ev->kind == AF_EV_CREATE) {
		if (ev->vcpu < g.n_vcpus && g.assoc_cur[ev->vcpu] != ev->serial)
			assoc_vcpu(ev->vcpu, ev->asid, ev->serial);
	} else if (ev->kind == AF_EV_EXIT) {
		for (unsigned v = 0; v < g.n_vcpus; v++)
			if (g.assoc_cur[v] == ev->serial)
				assoc_vcpu(v, AF_ASID_NONE, 0);
	}
}

/* vCPU v has notified the disk: its current space goes to the notify slot.
 * Caller holds the lock. */
static void assoc_notify(unsigned v)
{
	int rc = af_assoc_publish_notify(g.assoc, v, af_assoc_now_ns());

	if (rc == -ENOENT || (!rc && !g.assoc_cur[v]))
		g.assoc_none++;
	else if (rc)
		g.assoc_errors++;
}

/* ---- disk notifications (assoc=) ---- */

/* A candidate notification store has happened (16-bit mov by kernel code;
 * memory callbacks run after the access). ud is its site in kick_sites
 * (NULL: the table was full). An I/O store that the specs call a
 * notification publishes the notifying vCPU's space, unless on_kick_pre
 * already did so before the store; its site and page are learned, and the
 * code is flushed once so that the site gets on_kick_pre: QEMU without
 * ioeventfd (TCG) runs the device, and so sends the disk request, inside
 * the store, before this callback. */
static void on_kick_store(unsigned vcpu, qemu_plugin_meminfo_t info,
			  uint64_t va, void *ud)
{
	struct af_site *site = ud;
	struct vcpu *vs = vcpu_of(vcpu);
	struct qemu_plugin_hwaddr *hw;
	const char *name;
	int early, match, flush = 0;
	uint64_t pa;

	if (!vs)
		return;
	early = site && vs->kick_pre == site;
	vs->kick_pre = NULL;
	if (site && (atomic_load_explicit(&site->flags, memory_order_relaxed) &
		     AF_SITE_DEMOTED)) {
		/* in a block translated before the demotion: waste until
		 * the next flush */
		if (!(af_site_count(&vs->waste) & 4095))
			waste_check();
		return;
	}
	vs->c[VC_KICK_CB]++;
	hw = qemu_plugin_get_hwaddr(info, va);
	if (!hw || !qemu_plugin_hwaddr_is_io(hw)) {
		if (early)
			atomic_fetch_add(&g.assoc_false_pre, 1);
		/* device registers are written by their own accessors: a
		 * site that keeps storing to RAM and never did I/O is
		 * dropped at the next translation */
		if (site && g.assoc_demote && !af_site_is_writer(site) &&
		    af_site_count32(&site->calls) >= g.assoc_demote &&
		    af_site_demote(site))
			gc_inc(&g.gc.kick_demoted);
		return;
	}
	vs->c[VC_KICK_IO]++;
	pa = qemu_plugin_hwaddr_phys_addr(hw);
	name = qemu_plugin_hwaddr_device_name(hw);
	match = af_notify_match_mmio(&g.nt, pa, name);
	if (enter())
		return;
	af_notify_target(&g.nt, pa, name, 0, match,
			 match ? g.assoc_cur[vcpu] : 0);
	if (match) {
		vs->c[VC_KICK]++;
		if (early)
			vs->c[VC_KICK_EARLY]++;
		else
			assoc_notify(vcpu);
		if (af_notify_page_add(&g.nt, va) == 1)
			flush = 1;
		if (site && af_site_mark_writer(site,
						af_site_info(&g.kick_sites, site),
						now_ns())) {
			atomic_fetch_add(&g.assoc_kick_sites, 1);
			flush = 1;
		}
	} else if (early) {
		atomic_fetch_add(&g.assoc_false_pre, 1);
	}
	leave();
	if (flush)
		request_flush();
}

/* Before a store of a site that has notified: if it is about to write to
 * a page where notifications were seen, publish now (the store's callback
 * confirms, and counts it as early). ud: its struct af_kick. */
static void on_kick_pre(unsigned vcpu, void *ud)
{
	const struct af_kick *k = ud;
	struct vcpu *vs = vcpu_of(vcpu);
	uint64_t ea;

	if (!vs)
		return;
	vs->kick_pre = NULL;
	if (eff_addr(vs, k->desc, &ea)) {
		vs->c[VC_EA_FAIL]++;
		return;
	}
	if (!af_notify_page_known(&g.nt, ea))
		return;
	if (enter())
		return;
	assoc_notify(vcpu);
	leave();
	vs->kick_pre = k->site;
}

/* A 16-bit out by kernel code, before it runs (legacy virtio-pci notifies
 * with one). ud: the immediate port, or 0x10000 for %dx. */
static void on_kick_out(unsigned vcpu, void *ud)
{
	uint64_t port = (uintptr_t)ud;
	struct vcpu *vs = vcpu_of(vcpu);
	int match;

	if (!vs)
		return;
	vs->c[VC_OUT_CB]++;
	if (port > 0xffff) {
		if (need(vs, g.r.gpr[AF_X86_RDX], &port))
			return;
		port &= 0xffff;
	}
	match = af_notify_match_port(&g.nt, port);
	if (enter())
		return;
	af_notify_target(&g.nt, port, NULL, 1, match,
			 match ? g.assoc_cur[vcpu] : 0);
	if (match) {
		vs->c[VC_KICK]++;
		vs->c[VC_KICK_EARLY]++;
		assoc_notify(vcpu);
	}
	leave();
}

/* The kick entry of a notifying site (created now); NULL if the table is
 * full. Caller holds site_lock. */
static struct af_kick *kick_entry(struct af_site *site, uint64_t desc)
{
	for (unsigned i = 0; i < g.n_kicks; i++)
		if (g.kicks[i].site == site)
			return &g.kicks[i];
	if (g.n_kicks >= sizeof(g.kicks) / sizeof(g.kicks[0]))
		return NULL;
	g.kicks[g.n_kicks] = (struct af_kick){ .site = site, .desc = desc };
	return &g.kicks[g.n_kicks++];
}

/* assoc=: instruments a kernel 16-bit mov store, a candidate notification:
 * a memory callback, and, once its site has notified, a callback before it
 * (register reads, so only there). */
static void instrument_kick(struct qemu_plugin_insn *insn,
			    const struct af_x86_insn *in, enum af_x86_mode mode,
			    const uint8_t *b, size_t len)
{
	uint64_t iva = qemu_plugin_insn_vaddr(insn);
	struct af_kick *k = NULL;
	struct af_site *site;

	unsigned f = 0;

	pthread_mutex_lock(&g.site_lock);
	site = af_sites_get(&g.kick_sites, iva, b, len);
	if (site)
		f = atomic_load_explicit(&site->flags, memory_order_relaxed);
	if ((f & AF_SITE_WRITER) && g.assoc_early)
		k = kick_entry(site, (uint64_t)(uintptr_t)pack(in, mode));
	pthread_mutex_unlock(&g.site_lock);
	if ((f & AF_SITE_DEMOTED) && !(f & AF_SITE_WRITER)) {
		gc_inc(&g.gc.sites_kick_skipped);
		return;
	}
	if (k) {
		qemu_plugin_register_vcpu_insn_exec_cb(
			insn, on_kick_pre, QEMU_PLUGIN_CB_R_REGS, k);
		gc_inc(&g.gc.sites_kick_pre);
	}
	qemu_plugin_register_vcpu_mem_cb(insn, on_kick_store,
					 QEMU_PLUGIN_CB_NO_REGS,
					 QEMU_PLUGIN_MEM_W, site);
	gc_inc(&g.gc.sites_kick);
}

/* ---- translation ---- */

/* Is the block at va kernel code, and in which code mode? *paging_off is set
 * for code translated with CR0.PG clear. Registers read now describe every
 * execution of this block (QEMU keys blocks by CPL and code size; paging is
 * not part of the key, but a block translated with paging off and run
 * later with paging on is early boot code). */
static int classify(uint64_t va, enum af_x86_mode *mode, int *paging_off)
{
	uint64_t cr0, fl, cs, efer = 0;

	*paging_off = 0;
	if (!g.kernel_by_va && g.r.ready && reg_read(g.r.cr0, &cr0) == 0) {
		*paging_off = !(cr0 & CR0_PG);
		if (!(cr0 & CR0_PE)) {
			*mode = AF_X86_MODE16; /* real mode runs at CPL 0 */
			return 1;
		}
		if (reg_read(g.r.eflags, &fl) == 0 &&
		    reg_read(g.r.cs, &cs) == 0 &&
		    (!g.r.efer || reg_read(g.r.efer, &efer) == 0)) {
			if (fl & EFLAGS_VM)
				return 0; /* virtual-8086: CPL 3 */
			/* long mode at CPL 0 is 64-bit code in every kernel
			 * we know (compat-mode kernel code is a few boot
			 * instructions) */
			*mode = (efer & EFER_LMA) ? AF_X86_MODE64
						  : AF_X86_MODE32;
			return (cs & 3) == 0;
		}
	}
	if (!g.kernel_by_va)
		gc_inc(&g.gc.mode_fallback);
	if (g.is64) {
		*mode = AF_X86_MODE64;
		return va >= 0xffff800000000000ull;
	}
	*mode = AF_X86_MODE32;
	return va >= 0xc0000000ull;
}

/* Should this store get a memory callback? va: the instruction's address. */
static int store_wanted(const struct af_x86_insn *in, enum af_x86_mode mode,
			uint64_t va)
{
	if (g.policy == ST_OFF)
		return 0;
	/* 64-bit kernels live in the upper half; 64-bit CPL-0 code below it
	 * is boot code (Linux's decompressor alone makes ~60 % of all kernel
	 * 8-byte stores of a boot) */
	if (mode == AF_X86_MODE64 && !g.low_stores &&
	    va < 0xffff800000000000ull)
		return 0;
	if (in->opsize != 4 && in->opsize != 8)
		return 0;
	if (g.policy == ST_WIDE)
		return 1;
	/* narrow: how page-table entries are written */
	if (in->store == AF_X86_ST_STRING || in->store == AF_X86_ST_ARITH ||
	    in->store == AF_X86_ST_OTHER)
		return 0;
	if (in->mem.base == AF_X86_RSP && !in->mem.rip_rel)
		return 0; /* the stack is never a page table */
	if (g.frame_pointer && in->mem.base == AF_X86_RBP &&
	    in->mem.index == AF_X86_NOREG)
		return 0; /* frame-pointer kernels: rbp/ebp is the stack too */
	if (mode == AF_X86_MODE64)
		return in->opsize == 8;
	return 1; /* 32-bit paging: 4; PAE: halves (4) or cmpxchg8b (8) */
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb);
	enum af_x86_mode mode = AF_X86_MODE64;
	uint8_t b[AF_X86_MAX_LEN];
	struct af_x86_insn in;
	int paging_off;

	(void)id;
	gc_inc(&g.gc.tb_trans);
	if (g.use_icount)
		qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(
			tb, QEMU_PLUGIN_INLINE_ADD_U64, g.icount, n);
	if (!classify(qemu_plugin_tb_vaddr(tb), &mode, &paging_off))
		return;
	gc_inc(&g.gc.tb_kernel);
	for (size_t i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		size_t len = qemu_plugin_insn_data(insn, b, sizeof(b));

		switch (af_x86_decode(b, len, mode, &in)) {
		case AF_X86_MOV_TO_CR:
			if (in.cr != 0 && in.cr != 3 && in.cr != 4)
				break;
			qemu_plugin_register_vcpu_insn_exec_cb(
				insn, on_cr_write, QEMU_PLUGIN_CB_R_REGS,
				pack(&in, mode));
			gc_inc(&g.gc.sites_cr);
			break;
		case AF_X86_INVLPG:
			qemu_plugin_register_vcpu_insn_exec_cb(
				insn, on_invlpg, QEMU_PLUGIN_CB_R_REGS,
				pack(&in, mode));
			gc_inc(&g.gc.sites_flush);
			break;
		case AF_X86_INVPCID:
			qemu_plugin_register_vcpu_insn_exec_cb(
				insn, on_invpcid, QEMU_PLUGIN_CB_R_REGS,
				pack(&in, mode));
			gc_inc(&g.gc.sites_flush);
			break;
		case AF_X86_CPUID:
			qemu_plugin_register_vcpu_insn_exec_cb(
				insn, on_cpuid, QEMU_PLUGIN_CB_R_REGS, NULL);
			gc_inc(&g.gc.sites_cpuid);
			break;
		case AF_X86_OUT:
			if (!g.assoc_on || !g.nt.have_port || in.opsize != 2)
				break;
			qemu_plugin_register_vcpu_insn_exec_cb(
				insn, on_kick_out, QEMU_PLUGIN_CB_R_REGS,
				(void *)(uintptr_t)(in.port_dx ? 0x10000u
							       : in.port));
			gc_inc(&g.gc.sites_out);
			break;
		case AF_X86_STORE: {
			uint64_t iva = qemu_plugin_insn_vaddr(insn);
			struct af_site *site = NULL;

			/* assoc=: a 16-bit mov may notify the disk (no page
			 * table is written 16 bits at a time: such a store
			 * is never a page-table candidate) */
			if (g.assoc_on && in.opsize == 2 &&
			    in.store == AF_X86_ST_MOV && g.nt.have_mmio) {
				instrument_kick(insn, &in, mode, b, len);
				break;
			}

			/* with paging off no store can change a mapping */
			if (paging_off || !store_wanted(&in, mode, iva))
				break;
			if (g.learn != LEARN_OFF || g.sites_path) {
				pthread_mutex_lock(&g.site_lock);
				site = af_sites_get(&g.sites, iva, b, len);
				pthread_mutex_unlock(&g.site_lock);
			}
			if (!site_wanted(site)) {
				gc_inc(&g.gc.sites_skipped);
				break;
			}
			qemu_plugin_register_vcpu_mem_cb(
				insn, on_store, QEMU_PLUGIN_CB_NO_REGS,
				QEMU_PLUGIN_MEM_W, site);
			gc_inc(&g.gc.sites_store);
			break;
		}
		default:
			break;
		}
	}
}

/* ---- vCPU init: find the registers by name ---- */

static void on_vcpu_init(qemu_plugin_id_t id, unsigned vcpu)
{
	GArray *a;

	(void)id;
	if (vcpu < AF_MAX_VCPUS)
		g.v[vcpu].paging = UINT32_MAX;
	if (vcpu >= g.n_vcpus)
		say("vCPU %u is beyond the %u the engine tracks: ignored",
		    vcpu, g.n_vcpus);
	pthread_mutex_lock(&g.lock);
	if (g.r.ready) {
		pthread_mutex_unlock(&g.lock);
		return;
	}
	a = qemu_plugin_get_registers();
	for (guint i = 0; a && i < a->len; i++) {
		qemu_plugin_reg_descriptor *d =
			&g_array_index(a, qemu_plugin_reg_descriptor, i);
		const char *nm = d->name;
		if (!nm)
			continue;
		for (unsigned k = 0; k < AF_X86_NGPR; k++) {
			const char *want = af_x86_gpr_name(k, g.is64);
			if (want && strcmp(nm, want) == 0)
				g.r.gpr[k] = d->handle;
		}
		if (!strcmp(nm, "cr0"))
			g.r.cr0 = d->handle;
		else if (!strcmp(nm, "cr4"))
			g.r.cr4 = d->handle;
		else if (!strcmp(nm, "efer"))
			g.r.efer = d->handle;
		else if (!strcmp(nm, "cs"))
			g.r.cs = d->handle;
		else if (!strcmp(nm, "eflags"))
			g.r.eflags = d->handle;
		else if (!strcmp(nm, "fs_base"))
			g.r.fs_base = d->handle;
		else if (!strcmp(nm, "gs_base"))
			g.r.gs_base = d->handle;
	}
	if (a)
		g_array_free(a, TRUE);
	if (!g.r.cr0 || !g.r.cr4 || !g.r.cs || !g.r.eflags ||
	    !g.r.gpr[AF_X86_RAX] || !g.r.gpr[AF_X86_RDI])
		say("QEMU does not expose the registers needed (cr0, cr4, cs, "
		    "eflags, GPRs): root loads cannot be read");
	g.r.ready = 1;
	pthread_mutex_unlock(&g.lock);
}

/* The engine's guest-physical reader: guest RAM, after a full fence (the
 * engine has just published the frames it is about to read; see
 * on_store()). */
static int read_phys(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	int rc;

	atomic_thread_fence(memory_order_seq_cst);
	rc = af_ram_read(ctx, gpa, buf, len);
	/* what the engine now knows of this table (verify=) */
	if (!rc && g.verify_ns)
		af_verify_read(&g.verify, gpa, buf, len, g.feed_es);
	return rc;
}

/* ---- engine events ---- */

static void on_event(void *ctx, const struct af_event *ev)
{
	(void)ctx;
	/* learn=demote: stores are instrumented once a second address
	 * space exists. Before that the only tables are the kernel's first
	 * root's; their stores cannot change any process's count (the kernel
	 * half becomes common, counted for nobody, once processes share it),
	 * and a writer of user tables may run on kernel tables only. This
	 * runs inside the root load of the second space, before the
	 * instruction: the flush comes before its tables can change. */
	if (g.learn == LEARN_DEMOTE && ev->kind == AF_EV_CREATE &&
	    ev->serial >= 2 &&
	    !atomic_load_explicit(&g.armed, memory_order_relaxed)) {
		pthread_mutex_lock(&g.site_lock);
		af_sites_zero_calls(&g.sites);
		pthread_mutex_unlock(&g.site_lock);
		atomic_store_explicit(&g.armed, 1, memory_order_relaxed);
		g.armed_ns = ev->time_ns;
		request_flush();
	}
	if (g.have_out)
		af_out_event(&g.out, ev); /* under the lock: from observe */
	if (g.assoc)
		assoc_event(ev);
}

/* ---- exit ---- */

static void dump_site(void *ctx, const struct af_site *t,
		      const struct af_site_info *in)
{
	fprintf(ctx, "0x%016" PRIx64 " %016" PRIx64 " %u %u %u %" PRIu64
		" %" PRIu64 " %u\n", in->va, in->code, in->len,
		atomic_load(&t->flags), (unsigned)atomic_load(&t->calls),
		(uint64_t)atomic_load(&in->hits),
		(uint64_t)atomic_load(&in->learned_ns),
		(unsigned)atomic_load(&t->epochs));
}

/* sites=FILE: one line per instrumented store site: address, first code
 * bytes (as a little-endian number), length, flags (1 = writer, 2 =
 * demoted), callbacks (those of a demoted site in blocks translated before
 * its demotion included), page-table hits (a writer's: stores that landed
 * in a table tracked when the callback ran), ns when learned (0 = never),
 * epochs it ran in (learn=demote only). Statistics only; calls and epochs
 * count from the arming (learn=demote) and from the last relearning. */
static void dump_sites(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		say("cannot write %s", path);
		return;
	}
	fprintf(f, "# va code len flags calls hits learned_ns epochs\n");
	pthread_mutex_lock(&g.site_lock);
	af_sites_each(&g.sites, dump_site, f);
	pthread_mutex_unlock(&g.site_lock);
	fclose(f);
}

/* At exit (lock held, closed: nothing publishes any more): the I/O
 * targets seen (unless quiet), then the file is unmapped and removed, if
 * it is still ours (a new QEMU may have replaced it). */
static void assoc_close(void)
{
	if (!g.quiet || g.verbose) {
		for (unsigned i = 0; i < g.nt.n_target; i++) {
			const struct af_nt_target *t = &g.nt.target[i];
			if (t->match)
				say("assoc: %s 0x%" PRIx64 " %s: %" PRIu64
				    " disk notifications by process %" PRIu64,
				    t->is_port ? "port" : "I/O address",
				    t->addr, t->name ? t->name : "-", t->count,
				    t->serial);
			else
				say("assoc: %s 0x%" PRIx64 " %s: %" PRIu64
				    " 16-bit writes",
				    t->is_port ? "port" : "I/O address",
				    t->addr, t->name ? t->name : "-",
				    t->count);
		}
		if (g.nt.targets_full)
			say("assoc: %" PRIu64 " writes to other targets",
			    g.nt.targets_full);
	}
	if (af_assoc_same_file(g.assoc, g.assoc_path) &&
	    unlink(g.assoc_path) && errno != ENOENT)
		say("assoc=%s: cannot remove (%s)", g.assoc_path,
		    strerror(errno));
	af_assoc_free(g.assoc);
	g.assoc = NULL;
}

static void on_exit_cb(qemu_plugin_id_t id, void *ud)
{
	enum { NMAX = 96 };
	const char *names[NMAX];
	uint64_t vals[NMAX];
	struct af_counters c;
	size_t n = 0;
	uint64_t sum[VC_N] = { 0 };
	int rc = 0;

	(void)id;
	(void)ud;
	pthread_mutex_lock(&g.lock);
	if (g.closed) {
		pthread_mutex_unlock(&g.lock);
		return;
	}
	if (g.batch)
		drain();
	g.closed = 1;
	for (unsigned v = 0; v < g.n_vcpus; v++)
		for (int k = 0; k < VC_N; k++)
			sum[k] += g.v[v].c[k];
	af_engine_counters(g.eng, &c);
#define ADD(nm, val) do { if (n < NMAX) { names[n] = (nm); vals[n++] = (val); } } while (0)
	for (int k = 0; k < VC_N; k++)
		ADD(vc_names[k], sum[k]);
	ADD("tb_translated", atomic_load(&g.gc.tb_trans));
	ADD("tb_kernel", atomic_load(&g.gc.tb_kernel));
	ADD("sites_cr", atomic_load(&g.gc.sites_cr));
	ADD("sites_flush", atomic_load(&g.gc.sites_flush));
	ADD("sites_cpuid", atomic_load(&g.gc.sites_cpuid));
	ADD("sites_store", atomic_load(&g.gc.sites_store));
	ADD("sites_skipped", atomic_load(&g.gc.sites_skipped));
	ADD("store_sites", g.sites.n);
	ADD("store_sites_full", g.sites.full);
	ADD("writers", atomic_load(&g.n_writers));
	ADD("sites_demoted", atomic_load(&g.gc.demoted));
	ADD("batch_rechecks", atomic_load(&g.gc.rechecks));
	ADD("store_callbacks_demoted", waste_now());
	ADD("writers_after_demotion", atomic_load(&g.n_undemoted));
	ADD("armed_ns", g.armed_ns);
	ADD("verify_passes", g.verify_passes);
	ADD("verify_frames", g.verify.checked);
	ADD("verify_shadows_full", g.verify.full);
	ADD("missed_stores", g.missed);
	ADD("missed_stale", g.missed_stale);
	ADD("relearns", g.relearns);
	ADD("learn_windows", g.n_windows);
	ADD("learn_resets", atomic_load(&g.n_resets));
	ADD("flush_waits", atomic_load(&g.flush_waits));
	ADD("learn_ns", g.learn != LEARN_WINDOW ? 0 :
	    g.learn_ns + (atomic_load(&g.filtering) ? 0 :
			  now_ns() - g.window_start_ns));
	ADD("mode_by_address", atomic_load(&g.gc.mode_fallback));
	ADD("untracked_vcpu_callbacks", atomic_load(&g.gc.bad_vcpu));
	ADD("obs_errors", atomic_load(&g.gc.obs_errors));
	ADD("truth_fork", g.truth_by_kind[AF_TRUTH_FORK]);
	ADD("truth_exec", g.truth_by_kind[AF_TRUTH_EXEC]);
	ADD("truth_exit", g.truth_by_kind[AF_TRUTH_EXIT]);
	ADD("engine_observations", c.observations);
	ADD("creates", c.creates);
	ADD("exits", c.exits);
	ADD("switches", c.switches);
	ADD("root_loads", c.root_loads);
	ADD("pt_stores", c.pt_stores);
	ADD("stray_stores", c.stray_stores);
	ADD("flushes", c.flushes);
	ADD("frames_tracked", c.frames_tracked);
	ADD("frames_walked", c.frames_walked);
	ADD("joins", c.joins);
	ADD("bad_roots", c.bad_roots);
	ADD("bad_entries", c.bad_entries);
	ADD("table_full", c.table_full);
	ADD("live_processes", af_engine_processes(g.eng, NULL, 0));
	ADD("assoc_vcpu_publishes", g.assoc_vcpu_pubs);
	ADD("assoc_no_process", g.assoc_none);
	ADD("assoc_errors", g.assoc_errors);
	ADD("assoc_false_early", atomic_load(&g.assoc_false_pre));
	ADD("assoc_notify_sites", atomic_load(&g.assoc_kick_sites));
	ADD("assoc_notify_pages", atomic_load(&g.nt.n_page));
	ADD("sites_assoc_store", atomic_load(&g.gc.sites_kick));
	ADD("sites_assoc_early", atomic_load(&g.gc.sites_kick_pre));
	ADD("sites_assoc_out", atomic_load(&g.gc.sites_out));
	ADD("sites_assoc_skipped", atomic_load(&g.gc.sites_kick_skipped));
	ADD("assoc_sites_demoted", atomic_load(&g.gc.kick_demoted));
	ADD("events_dropped", g.have_out ? g.out.dropped : 0);
	ADD("wall_ns", now_ns());
#undef ADD
	if (g.have_out) {
		af_out_summary(&g.out, names, vals, n);
		af_out_close(&g.out);
	}
	if (g.sites_path)
		dump_sites(g.sites_path);
	if (g.assoc)
		assoc_close();
	if (g.tw) {
		rc = af_trace_writer_close(g.tw);
		g.tw = NULL;
		if (rc)
			say("trace: write error (%s)", strerror(-rc));
	}
	if (!g.quiet || g.summary_path) {
		char line[4096];
		size_t off = 0;
		for (size_t i = 0; i < n && off < sizeof(line); i++) {
			int w = snprintf(line + off, sizeof(line) - off,
					 "%s%s=%" PRIu64, i ? " " : "",
					 names[i], vals[i]);
			if (w < 0)
				break;
			off += (size_t)w;
		}
		if (!g.quiet)
			fprintf(stderr, "antfarm-qemu: summary %s\n", line);
		if (g.summary_path) {
			FILE *f = fopen(g.summary_path, "w");
			if (f) {
				fprintf(f, "%s\n", line);
				fclose(f);
			} else {
				say("cannot write %s", g.summary_path);
			}
		}
	}
	/* The engine stays allocated: a vCPU thread may still be inside the
	 * lock-free page-table check while QEMU exits. */
	pthread_mutex_unlock(&g.lock);
}

/* ---- re-registration after a flush ---- */

/* qemu_plugin_reset() has dropped every callback and flushed the translated
 * code (all vCPUs are stopped now): register again; blocks are translated
 * afresh in the current mode. */
static void after_reset(qemu_plugin_id_t id)
{
	qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
	qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
	atomic_store_explicit(&g.tb_at_flush, atomic_load(&g.gc.tb_trans),
			      memory_order_relaxed);
	atomic_store_explicit(&g.reset_pending, 0, memory_order_release);
}

/* ---- options ---- */

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned sh = 0;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'k': case 'K': sh = 10; end++; break;
	case 'm': case 'M': sh = 20; end++; break;
	case 'g': case 'G': sh = 30; end++; break;
	case 't': case 'T': sh = 40; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'B')
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end || (sh && v > (UINT64_MAX >> sh)))
		return -1;
	*out = (uint64_t)v << sh;
	return 0;
}

static int parse_bool(const char *s, int *out)
{
	if (!strcmp(s, "on") || !strcmp(s, "yes") || !strcmp(s, "true") ||
	    !strcmp(s, "1")) {
		*out = 1;
		return 0;
	}
	if (!strcmp(s, "off") || !strcmp(s, "no") || !strcmp(s, "false") ||
	    !strcmp(s, "0")) {
		*out = 0;
		return 0;
	}
	return -1;
}

/* A duration in ms (whole number) into ns. */
static int parse_ms(const char *s, uint64_t *ns)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v > UINT64_MAX / 1000000)
		return -1;
	*ns = (uint64_t)v * 1000000ull;
	return 0;
}

AF_QEMU_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
				       const qemu_info_t *info, int argc,
				       char **argv)
{
	const char *ram_path = NULL, *trace_path = NULL, *events = NULL;
	const char *guest = NULL, *why = "";
	uint64_t ramsize = 0, lowmem = 0, vcpus = 0;
	int format = AF_OUT_JSONL, rc;
	struct af_engine_config cfg;

	clock_gettime(CLOCK_MONOTONIC, &g.t0);
	g.policy = ST_NARROW;
	g.use_icount = 0;
	g.learn = LEARN_DEMOTE;
	g.batch = 1;
	g.verify_ns = 1000000000ull;
	g.relearn_gap_ns = 1000000000ull;
	g.relearn_misses = 16;
	g.demote_calls = 256;
	g.demote_epochs = 2;
	g.flush_waste = 2000000;
	g.flush_tb = 256;
	g.assoc_demote = 16;
	g.assoc_early = 1;
	g.learn_quiet_ns = 2000000000ull;
	g.learn_min_ns = 0;
	g.learn_min_hits = 1000;
	g.id = id;
	g.truth_lines = 1;
	g.out.fd = -1;

	if (!info || !info->system_emulation || !info->target_name) {
		say("needs full-system emulation (qemu-system-*)");
		return -1;
	}
	if (!strcmp(info->target_name, "x86_64")) {
		g.is64 = 1;
	} else if (!strcmp(info->target_name, "i386")) {
		g.is64 = 0;
	} else {
		say("target %s is not supported (x86_64 and i386 only)",
		    info->target_name);
		return -1;
	}
	if (info->version.cur < AF_QEMU_PLUGIN_LEVEL) {
		say("QEMU plugin API level %d is older than the %d needed",
		    info->version.cur, AF_QEMU_PLUGIN_LEVEL);
		return -1;
	}

	for (int i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		const char *k = argv[i], *v;
		size_t kl;
		int bad = 0;

		if (!eq) {
			say("option '%s' is not key=value", argv[i]);
			return -1;
		}
		v = eq + 1;
		kl = (size_t)(eq - argv[i]);
#define IS(name) (kl == strlen(name) && !strncmp(k, name, kl))
		if (IS("ram")) {
			ram_path = v;
		} else if (IS("ramsize")) {
			bad = parse_size(v, &ramsize) || !ramsize;
		} else if (IS("lowmem")) {
			bad = parse_size(v, &lowmem);
		} else if (IS("trace")) {
			trace_path = v;
		} else if (IS("events")) {
			events = v;
		} else if (IS("format")) {
			if (!strcmp(v, "jsonl") || !strcmp(v, "json"))
				format = AF_OUT_JSONL;
			else if (!strcmp(v, "text"))
				format = AF_OUT_TEXT;
			else
				bad = 1;
		} else if (IS("truth")) {
			bad = parse_bool(v, &g.truth_lines);
		} else if (IS("summary")) {
			g.summary_path = v;
		} else if (IS("quiet")) {
			bad = parse_bool(v, &g.quiet);
		} else if (IS("stores")) {
			if (!strcmp(v, "narrow"))
				g.policy = ST_NARROW;
			else if (!strcmp(v, "wide"))
				g.policy = ST_WIDE;
			else if (!strcmp(v, "off"))
				g.policy = ST_OFF;
			else
				bad = 1;
		} else if (IS("framepointer")) {
			bad = parse_bool(v, &g.frame_pointer);
		} else if (IS("lowstores")) {
			bad = parse_bool(v, &g.low_stores);
		} else if (IS("icount")) {
			bad = parse_bool(v, &g.use_icount);
		} else if (IS("learn")) {
			if (!strcmp(v, "off"))
				g.learn = LEARN_OFF;
			else if (!strcmp(v, "demote") || !strcmp(v, "on"))
				g.learn = LEARN_DEMOTE;
			else if (!strcmp(v, "window"))
				g.learn = LEARN_WINDOW;
			else
				bad = 1;
		} else if (IS("demote")) {
			bad = parse_size(v, &g.demote_calls) || !g.demote_calls;
		} else if (IS("verify")) {
			bad = parse_ms(v, &g.verify_ns);
		} else if (IS("relearn_misses")) {
			bad = parse_size(v, &g.relearn_misses) ||
			      !g.relearn_misses;
		} else if (IS("verbose")) {
			bad = parse_bool(v, &g.verbose);
		} else if (IS("batch")) {
			bad = parse_bool(v, &g.batch);
		} else if (IS("demote_epochs")) {
			bad = parse_size(v, &g.demote_epochs) ||
			      g.demote_epochs > UINT32_MAX;
		} else if (IS("flush_waste")) {
			bad = parse_size(v, &g.flush_waste) || !g.flush_waste;
		} else if (IS("flush_tb")) {
			bad = parse_size(v, &g.flush_tb);
		} else if (IS("learn_quiet")) {
			bad = parse_ms(v, &g.learn_quiet_ns);
		} else if (IS("learn_min")) {
			bad = parse_ms(v, &g.learn_min_ns);
		} else if (IS("learn_hits")) {
			bad = parse_size(v, &g.learn_min_hits);
		} else if (IS("relearn")) {
			bad = parse_ms(v, &g.relearn_ns);
		} else if (IS("sites")) {
			g.sites_path = v;
		} else if (IS("kernel")) {
			if (!strcmp(v, "cpl"))
				g.kernel_by_va = 0;
			else if (!strcmp(v, "va"))
				g.kernel_by_va = 1;
			else
				bad = 1;
		} else if (IS("vcpus")) {
			bad = parse_size(v, &vcpus) || vcpus < 1 ||
			      vcpus > AF_MAX_VCPUS;
		} else if (IS("guest")) {
			guest = v;
		} else if (IS("assoc")) {
			g.assoc_path = v;
			bad = !*v;
		} else if (IS("assoc-early")) {
			bad = parse_bool(v, &g.assoc_early);
		} else if (IS("assoc-demote")) {
			bad = parse_size(v, &g.assoc_demote);
		} else if (IS("assoc-notify")) {
			if (af_notify_parse(&g.nt, v, &why)) {
				say("bad value in '%s': %s", argv[i], why);
				return -1;
			}
		} else {
			say("unknown option '%s' (see plugin/README.md)", k);
			return -1;
		}
#undef IS
		if (bad) {
			say("bad value in '%s'", argv[i]);
			return -1;
		}
	}

	if (vcpus) {
		g.n_vcpus = (unsigned)vcpus;
	} else {
		int mv = info->system.max_vcpus;
		if (mv < 1)
			mv = 1;
		if (mv > AF_MAX_VCPUS) {
			say("%d vCPUs possible, only %d tracked", mv,
			    AF_MAX_VCPUS);
			mv = AF_MAX_VCPUS;
		}
		g.n_vcpus = (unsigned)mv;
	}

	g.fence = g.n_vcpus > 1;
	if (ram_path) {
		rc = af_ram_open(&g.ram, ram_path, ramsize, lowmem, &why);
		if (rc) {
			say("ram=%s: %s (%s)", ram_path, why, strerror(-rc));
			return -1;
		}
	} else {
		say("no ram= given: page tables cannot be read, nothing will "
		    "be inferred (see plugin/README.md)");
	}

	memset(&cfg, 0, sizeof(cfg));
	cfg.mmu = AF_MMU_X86;
	cfg.n_vcpus = g.n_vcpus;
	cfg.phys_bytes = ram_path ? af_ram_phys_top(&g.ram)
			 : ramsize ? ramsize : AF_RAM_4G;
	cfg.read_phys = read_phys;
	cfg.read_ctx = &g.ram;
	cfg.on_event = on_event;
	cfg.event_ctx = NULL;

	if (events) {
		rc = af_out_open(&g.out, events, format, &why);
		if (rc) {
			say("events=%s: %s (%s)", events, why, strerror(-rc));
			return -1;
		}
		g.have_out = 1;
	}
	if (trace_path) {
		struct af_trace_info ti;
		memset(&ti, 0, sizeof(ti));
		ti.mmu = AF_MMU_X86;
		ti.n_vcpus = (uint16_t)g.n_vcpus;
		ti.phys_bytes = cfg.phys_bytes;
		snprintf(ti.guest, sizeof(ti.guest), "%s",
			 guest ? guest : g.is64 ? "qemu-system-x86_64"
						: "qemu-system-i386");
		rc = af_trace_writer_open(trace_path, &ti, &g.tw);
		if (rc) {
			say("trace=%s: cannot create (%s)", trace_path,
			    strerror(-rc));
			return -1;
		}
		rc = af_recorder_new(&cfg, g.tw, &g.rec);
		if (rc == 0)
			g.eng = af_recorder_engine(g.rec);
	} else {
		rc = af_engine_new(&cfg, &g.eng);
	}
	if (rc) {
		say("cannot create the engine (%s)", strerror(-rc));
		return -1;
	}

	if (g.policy == ST_OFF)
		g.learn = LEARN_OFF;
	if (!ram_path)
		g.verify_ns = 0; /* nothing to compare with */
	if (g.verify_ns) {
		/* a shadow per table frame the engine may track: at most one
		 * page in 16 is a page table in any guest we know */
		uint64_t pages = af_ram_phys_top(&g.ram) >> 12;
		uint64_t cap = pages / 16;
		if (cap < 256)
			cap = 256;
		if (cap > (1u << 20))
			cap = 1u << 20;
		rc = af_verify_init(&g.verify, (uint32_t)cap);
		if (rc) {
			say("cannot allocate the verification shadows (%s)",
			    strerror(-rc));
			return -1;
		}
	}
	if (g.learn != LEARN_OFF || g.sites_path) {
		rc = af_sites_init(&g.sites, 16);
		if (rc) {
			say("cannot allocate the store-site table (%s)",
			    strerror(-rc));
			return -1;
		}
	}
	if (g.learn == LEARN_WINDOW)
		g.n_windows = 1; /* the first learning window opens now */
	if (g.use_icount) {
		g.sb = qemu_plugin_scoreboard_new(sizeof(uint64_t));
		g.icount = (qemu_plugin_u64){ .score = g.sb, .offset = 0 };
	}
	for (unsigned v = 0; v < AF_MAX_VCPUS; v++)
		g.v[v].paging = UINT32_MAX;

	if (g.nt.n_spec && !g.assoc_path) {
		say("assoc-notify= needs assoc=");
		return -1;
	}
	if (g.assoc_path) {
		/* last: nothing below can fail and leave the file behind */
		af_notify_default(&g.nt);
		rc = af_sites_init(&g.kick_sites, 12);
		if (rc) {
			say("cannot allocate the notification-site table (%s)",
			    strerror(-rc));
			return -1;
		}
		rc = af_assoc_create(g.assoc_path, g.n_vcpus, &g.assoc);
		if (rc) {
			say("assoc=%s: cannot create (%s)", g.assoc_path,
			    strerror(-rc));
			return -1;
		}
		g.assoc_on = 1;
	}

	qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
	qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
	return 0;
}
