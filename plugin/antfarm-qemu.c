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
 *   stores=narrow|wide|off  which kernel stores get a memory callback
 *                  (default narrow: mov/xchg/cmpxchg/or/and/bt* of the
 *                  page-table entry size, not stack-relative, no string ops;
 *                  wide: every kernel store of 4 or 8 bytes; off: none, the
 *                  engine only sees root loads and flushes)
 *   lowstores=on|off  also instrument stores of 64-bit kernel code in the
 *                  lower half of the address space (boot code such as
 *                  Linux's decompressor; default off)
 *   framepointer=on|off  the kernel keeps a frame pointer (Linux i386 with
 *                  CONFIG_FRAME_POINTER): stores addressed by %ebp/%rbp
 *                  (no index) are stack stores and get no callback
 *                  (default off)
 *   icount=on|off  per-vCPU instruction counts from an inline counter
 *                  (default on)
 *   kernel=cpl|va  how kernel code is recognised at translation time: from
 *                  the CPL (CS.RPL, CR0.PE, EFLAGS.VM; default) or from the
 *                  code address (upper half)
 *   vcpus=N        vCPUs the engine tracks (default: QEMU's max_vcpus)
 *   guest=TEXT     free-form guest description stored in the trace
 *
 * How it works: at translation time each instruction of kernel-mode code is
 * decoded (plugin/x86.c). Writes to CR0/CR3/CR4, INVLPG, INVPCID and CPUID
 * get an instruction callback that reads registers (it runs before the
 * instruction: the source GPR holds the value about to be written). Store
 * candidates get a memory-write callback; it turns the access into a
 * guest-physical address and, only if the engine tracks that page as a page
 * table (a lock-free check), takes the lock and feeds AF_OBS_PT_STORE with
 * the entry as it now is in guest RAM. Every engine call is serialised by
 * one mutex. Time is CLOCK_MONOTONIC ns since the plugin started, shared by
 * all vCPUs; icount is the vCPU's instruction count (TB granularity).
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

#include <antfarm/channel.h>
#include <antfarm/engine.h>
#include <antfarm/trace.h>

#include "output.h"
#include "qemu-api.h"
#include "ram.h"
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
	VC_N
};

static const char *const vc_names[VC_N] = {
	"cr3_writes", "cr0_writes", "cr4_writes", "invlpg", "invpcid",
	"cpuid_kernel", "truth_events", "store_callbacks", "store_pt_hits",
	"flush_addr_unknown", "reg_read_failures",
};

/* Per-vCPU state, one cache line apart. */
struct vcpu {
	_Alignas(64) uint64_t c[VC_N]; /* counters */
	uint32_t paging;     /* last mode|flags<<8 fed, UINT32_MAX none */
};

/* Global counters touched from several threads (relaxed atomics). */
struct gcounters {
	atomic_uint_fast64_t tb_trans;      /* blocks translated */
	atomic_uint_fast64_t tb_kernel;     /* ... of kernel code */
	atomic_uint_fast64_t sites_cr;      /* instrumented CR writes */
	atomic_uint_fast64_t sites_flush;   /* instrumented INVLPG/INVPCID */
	atomic_uint_fast64_t sites_cpuid;   /* instrumented CPUID */
	atomic_uint_fast64_t sites_store;   /* instrumented stores */
	atomic_uint_fast64_t mode_fallback; /* blocks classified by address */
	atomic_uint_fast64_t bad_vcpu;      /* callbacks from untracked vCPUs */
	atomic_uint_fast64_t obs_errors;    /* observations the engine refused */
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
	const char *summary_path; /* summary=FILE */

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

	/* vCPU side */
	struct regs r;                    /* register handles */
	struct qemu_plugin_scoreboard *sb; /* icount scoreboard */
	qemu_plugin_u64 icount;           /* its counter */
	struct vcpu v[AF_MAX_VCPUS];      /* per vCPU */
	struct gcounters gc;              /* shared counters */
} g = { .lock = PTHREAD_MUTEX_INITIALIZER };

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

/* Feeds one observation; caller holds the lock. Stamps time and icount. */
static void feed(struct af_obs *o)
{
	int rc;

	o->time_ns = now_ns();
	o->icount = icount_of(o->vcpu);
	rc = g.rec ? af_recorder_observe(g.rec, o) : af_engine_observe(g.eng, o);
	if (rc)
		gc_inc(&g.gc.obs_errors);
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
	t.time_ns = now_ns();
	g.truth_by_kind[t.kind < 16 ? t.kind : 0]++;
	if (g.tw)
		af_trace_write_truth(g.tw, &t);
	if (g.have_out && g.truth_lines)
		af_out_truth(&g.out, &t);
	leave();
}

/* A candidate store has happened (memory callbacks run after the access). */
static void on_store(unsigned vcpu, qemu_plugin_meminfo_t info, uint64_t va,
		     void *ud)
{
	struct qemu_plugin_hwaddr *hw;
	unsigned width = 1u << qemu_plugin_mem_size_shift(info);
	struct vcpu *vs;
	uint64_t gpa, value = 0;
	const uint8_t *p;

	(void)ud;
	if (width > 8)
		return;
	hw = qemu_plugin_get_hwaddr(info, va);
	if (!hw || qemu_plugin_hwaddr_is_io(hw))
		return;
	gpa = qemu_plugin_hwaddr_phys_addr(hw);
	if (vcpu < g.n_vcpus)
		g.v[vcpu].c[VC_STORE_CB]++;
	/* With several vCPU threads: the guest's store must be visible before
	 * we look at the page-table set, pairing with the fence in
	 * read_phys(): either the engine's read of a newly tracked table sees
	 * this store, or this check sees the table tracked. */
	if (g.fence)
		atomic_thread_fence(memory_order_seq_cst);
	if (!af_engine_is_page_table(g.eng, gpa))
		return;
	vs = vcpu_of(vcpu);
	if (!vs || enter())
		return;
	/* The entry as it is now in RAM: with several vCPUs storing to one
	 * entry, the last callback to run then leaves the engine with what
	 * memory holds, whatever order the callbacks ran in; and a cmpxchg
	 * that failed (QEMU reports its new value as stored) changes nothing.
	 * Without a RAM view, the value QEMU says was stored. */
	p = af_ram_ptr(&g.ram, gpa, width);
	if (p) {
		memcpy(&value, p, width);
	} else {
		qemu_plugin_mem_value mv = qemu_plugin_mem_get_value(info);
		switch (mv.type) {
		case QEMU_PLUGIN_MEM_VALUE_U8: value = mv.data.u8; break;
		case QEMU_PLUGIN_MEM_VALUE_U16: value = mv.data.u16; break;
		case QEMU_PLUGIN_MEM_VALUE_U32: value = mv.data.u32; break;
		case QEMU_PLUGIN_MEM_VALUE_U64: value = mv.data.u64; break;
		default: value = mv.data.u128.low; break;
		}
	}
	vs->c[VC_STORE_PT]++;
	{
		struct af_obs o = {
			.kind = AF_OBS_PT_STORE, .width = (uint8_t)width,
			.vcpu = (uint16_t)vcpu, .addr = gpa, .value = value,
		};
		feed(&o);
	}
	leave();
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
		case AF_X86_STORE:
			/* with paging off no store can change a mapping */
			if (paging_off || !store_wanted(&in, mode,
					  qemu_plugin_insn_vaddr(insn)))
				break;
			qemu_plugin_register_vcpu_mem_cb(
				insn, on_store, QEMU_PLUGIN_CB_NO_REGS,
				QEMU_PLUGIN_MEM_W, NULL);
			gc_inc(&g.gc.sites_store);
			break;
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
	atomic_thread_fence(memory_order_seq_cst);
	return af_ram_read(ctx, gpa, buf, len);
}

/* ---- engine events ---- */

static void on_event(void *ctx, const struct af_event *ev)
{
	(void)ctx;
	if (g.have_out)
		af_out_event(&g.out, ev); /* under the lock: from observe */
}

/* ---- exit ---- */

static void on_exit_cb(qemu_plugin_id_t id, void *ud)
{
	enum { NMAX = 64 };
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
	ADD("events_dropped", g.have_out ? g.out.dropped : 0);
	ADD("wall_ns", now_ns());
#undef ADD
	if (g.have_out) {
		af_out_summary(&g.out, names, vals, n);
		af_out_close(&g.out);
	}
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
	g.use_icount = 1;
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

	if (g.use_icount) {
		g.sb = qemu_plugin_scoreboard_new(sizeof(uint64_t));
		g.icount = (qemu_plugin_u64){ .score = g.sb, .offset = 0 };
	}
	for (unsigned v = 0; v < AF_MAX_VCPUS; v++)
		g.v[v].paging = UINT32_MAX;

	qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
	qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
	return 0;
}
