/*
 * plugin/x86.h - the small x86 instruction decoder of the QEMU plugin.
 *
 * At translation time the plugin hands each guest instruction's bytes (QEMU
 * has already found the instruction boundaries) to af_x86_decode(), which
 * picks out the few instructions antfarm cares about: writes to control
 * registers, TLB invalidations, CPUID (the ground-truth channel), integer
 * stores to memory that could be page-table writes, and `out` to I/O ports
 * (disk notifications of legacy virtio). Everything else is
 * AF_X86_OTHER. Pure functions, no allocation; any byte string is safe input.
 */
#ifndef AF_PLUGIN_X86_H
#define AF_PLUGIN_X86_H

#include <stddef.h>
#include <stdint.h>

/* Longest x86 instruction. */
#define AF_X86_MAX_LEN 15

/* GPR numbers in encoding order (rax=0 .. rdi=7, r8..r15 = 8..15). */
enum af_x86_gpr {
	AF_X86_RAX = 0, AF_X86_RCX, AF_X86_RDX, AF_X86_RBX,
	AF_X86_RSP, AF_X86_RBP, AF_X86_RSI, AF_X86_RDI,
	AF_X86_NGPR = 16,
};
#define AF_X86_NOREG 0xff /* no base / index register */

/* Segment override prefixes that matter for addresses. */
enum af_x86_seg {
	AF_X86_SEG_NONE = 0, /* default segment (flat in every OS we know) */
	AF_X86_SEG_OTHER = 1, /* es, cs, ss, ds override (flat, base 0) */
	AF_X86_SEG_FS = 2,   /* fs: base from fs_base */
	AF_X86_SEG_GS = 3,   /* gs: base from gs_base */
};

/* What an instruction is, as far as antfarm cares. */
enum af_x86_kind {
	AF_X86_OTHER = 0,   /* nothing of interest (or undecodable) */
	AF_X86_MOV_TO_CR,   /* mov %gpr,%crN: cr, gpr */
	AF_X86_INVLPG,      /* invlpg m: mem */
	AF_X86_INVPCID,     /* invpcid m128,%gpr: gpr = type, mem = descriptor */
	AF_X86_CPUID,       /* cpuid */
	AF_X86_STORE,       /* integer store to memory: opsize, store, mem */
	AF_X86_OUT,         /* out to an I/O port: opsize, port or port_dx */
};

/* Classes of store (enum af_x86_kind AF_X86_STORE). */
enum af_x86_store {
	AF_X86_ST_MOV = 1,   /* mov r/m,reg or mov r/m,imm */
	AF_X86_ST_XCHG,      /* xchg with memory (implicitly locked) */
	AF_X86_ST_CMPXCHG,   /* cmpxchg, cmpxchg8b/16b */
	AF_X86_ST_BITOP,     /* or/and/bts/btr/btc: change some bits */
	AF_X86_ST_ARITH,     /* other read-modify-write (add, xor, inc, ...) */
	AF_X86_ST_STRING,    /* movs/stos (rep or not) */
	AF_X86_ST_OTHER,     /* setcc, pop m, movnti, shifts, ... */
};

/* Memory operand of a ModRM instruction. */
struct af_x86_mem {
	uint8_t base;     /* GPR or AF_X86_NOREG */
	uint8_t index;    /* GPR or AF_X86_NOREG */
	uint8_t scale;    /* 1, 2, 4, 8 */
	uint8_t seg;      /* enum af_x86_seg */
	uint8_t asize;    /* address size in bytes: 2, 4, 8 */
	uint8_t rip_rel;  /* 1: disp is relative to the next instruction */
	int32_t disp;     /* displacement, sign-extended */
};

/* One decoded instruction. */
struct af_x86_insn {
	uint8_t kind;     /* enum af_x86_kind */
	uint8_t len;      /* bytes consumed by the decoder (<= given length) */
	uint8_t cr;       /* AF_X86_MOV_TO_CR: control register number */
	uint8_t gpr;      /* MOV_TO_CR: source GPR; INVPCID: type GPR */
	uint8_t store;    /* AF_X86_STORE: enum af_x86_store */
	uint8_t opsize;   /* AF_X86_STORE: bytes per store (1..16) */
	uint8_t lock;     /* LOCK prefix present */
	uint8_t rep;      /* REP/REPNE prefix present */
	uint8_t rex_w;    /* REX.W present (64-bit code only) */
	uint8_t port_dx;  /* AF_X86_OUT: the port is in %dx */
	uint8_t port;     /* AF_X86_OUT: the immediate port (port_dx 0) */
	struct af_x86_mem mem; /* INVLPG, INVPCID, STORE: the memory operand */
};

/* Code modes (default operand/address size of the code segment). */
enum af_x86_mode {
	AF_X86_MODE16 = 2, /* real mode, vm86, 16-bit protected code */
	AF_X86_MODE32 = 4, /* 32-bit protected or compatibility mode */
	AF_X86_MODE64 = 8, /* 64-bit long mode */
};

/* Decodes the instruction in buf[0..len) executed in the given mode. Fills
 * *out (kind AF_X86_OTHER if nothing of interest or not decodable) and
 * returns out->kind. Never reads beyond buf[len-1]. */
int af_x86_decode(const uint8_t *buf, size_t len, enum af_x86_mode mode,
		  struct af_x86_insn *out);

/* Register names as QEMU's gdb stub exposes them (x86_64: "rax".., i386:
 * "eax".."edi"; NULL for r8-r15 on i386). */
const char *af_x86_gpr_name(unsigned gpr, int is64);

#endif
