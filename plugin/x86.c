/*
 * plugin/x86.c - the x86 instruction decoder of the QEMU plugin: prefixes,
 * REX, the one- and two-byte opcode maps as far as antfarm needs them, and
 * ModRM/SIB memory operands in 16-, 32- and 64-bit addressing.
 *
 * Written from the Intel SDM volume 2 (chapter 2 "Instruction format" and the
 * opcode map in appendix A). Bytes come from the guest: every access is
 * bounds-checked against the length QEMU reported.
 */
#include "x86.h"

#include <string.h>

/* Cursor over the instruction bytes. */
struct cur {
	const uint8_t *b; /* bytes */
	size_t len;       /* how many */
	size_t i;         /* next to read */
	int bad;          /* ran past the end */
};

static unsigned next(struct cur *c)
{
	if (c->i >= c->len) {
		c->bad = 1;
		return 0;
	}
	return c->b[c->i++];
}

static int32_t take_disp(struct cur *c, unsigned bytes)
{
	uint32_t v = 0;
	for (unsigned k = 0; k < bytes; k++)
		v |= (uint32_t)next(c) << (8 * k);
	if (bytes == 1)
		return (int8_t)v;
	if (bytes == 2)
		return (int16_t)v;
	return (int32_t)v;
}

/* Parses the ModRM memory operand (mod != 3) after modrm was read. */
static void parse_mem(struct cur *c, unsigned modrm, unsigned rex,
		      unsigned asize, enum af_x86_mode mode,
		      struct af_x86_mem *m)
{
	unsigned mod = modrm >> 6, rm = modrm & 7;

	m->base = AF_X86_NOREG;
	m->index = AF_X86_NOREG;
	m->scale = 1;
	m->disp = 0;
	m->rip_rel = 0;
	m->asize = (uint8_t)asize;
	if (asize == 2) {
		/* 16-bit addressing: fixed base/index pairs. */
		static const uint8_t base16[8] = {
			AF_X86_RBX, AF_X86_RBX, AF_X86_RBP, AF_X86_RBP,
			AF_X86_RSI, AF_X86_RDI, AF_X86_RBP, AF_X86_RBX,
		};
		static const uint8_t index16[8] = {
			AF_X86_RSI, AF_X86_RDI, AF_X86_RSI, AF_X86_RDI,
			AF_X86_NOREG, AF_X86_NOREG, AF_X86_NOREG, AF_X86_NOREG,
		};
		if (mod == 0 && rm == 6) {
			m->disp = take_disp(c, 2);
			return;
		}
		m->base = base16[rm];
		m->index = index16[rm];
		if (mod == 1)
			m->disp = take_disp(c, 1);
		else if (mod == 2)
			m->disp = take_disp(c, 2);
		return;
	}
	if (rm == 4) {
		unsigned sib = next(c);
		unsigned idx = ((sib >> 3) & 7) | ((rex & 2) << 2);
		unsigned base = (sib & 7) | ((rex & 1) << 3);
		m->scale = (uint8_t)(1u << (sib >> 6));
		if (idx != AF_X86_RSP)
			m->index = (uint8_t)idx;
		if ((sib & 7) == 5 && mod == 0)
			m->disp = take_disp(c, 4); /* no base, disp32 */
		else
			m->base = (uint8_t)base;
	} else if (rm == 5 && mod == 0) {
		m->disp = take_disp(c, 4);
		if (mode == AF_X86_MODE64)
			m->rip_rel = 1;
		return;
	} else {
		m->base = (uint8_t)(rm | ((rex & 1) << 3));
	}
	if (mod == 1)
		m->disp = take_disp(c, 1);
	else if (mod == 2)
		m->disp = take_disp(c, 4);
}

/* Marks *o as a store of class cls with opsize bytes. */
static void set_store(struct af_x86_insn *o, unsigned cls, unsigned opsize)
{
	o->kind = AF_X86_STORE;
	o->store = (uint8_t)cls;
	o->opsize = (uint8_t)opsize;
}

/* ALU group-1 /reg: or (1) and and (4) only change bits; cmp (7) stores
 * nothing. Returns 0 for cmp. */
static unsigned alu_class(unsigned reg)
{
	if (reg == 7)
		return 0;
	return (reg == 1 || reg == 4) ? AF_X86_ST_BITOP : AF_X86_ST_ARITH;
}

int af_x86_decode(const uint8_t *buf, size_t len, enum af_x86_mode mode,
		  struct af_x86_insn *o)
{
	struct cur c = { buf, len > AF_X86_MAX_LEN ? AF_X86_MAX_LEN : len, 0, 0 };
	unsigned rex = 0, op, modrm = 0, opsz66 = 0, asz67 = 0;
	unsigned seg = AF_X86_SEG_NONE, osize, asize, reg, mod;
	int have_modrm = 0;

	memset(o, 0, sizeof(*o));
	if (mode != AF_X86_MODE16 && mode != AF_X86_MODE32 &&
	    mode != AF_X86_MODE64)
		return AF_X86_OTHER;

	/* Legacy prefixes, then REX (64-bit mode, must be last). */
	for (;;) {
		if (c.i >= c.len)
			return AF_X86_OTHER;
		op = c.b[c.i];
		if (op == 0xf0) {
			o->lock = 1;
		} else if (op == 0xf2 || op == 0xf3) {
			o->rep = 1;
		} else if (op == 0x66) {
			opsz66 = 1;
		} else if (op == 0x67) {
			asz67 = 1;
		} else if (op == 0x64) {
			seg = AF_X86_SEG_FS;
		} else if (op == 0x65) {
			seg = AF_X86_SEG_GS;
		} else if (op == 0x26 || op == 0x2e || op == 0x36 ||
			   op == 0x3e) {
			/* es/cs/ss/ds: base 0 in 64-bit mode and in flat OSes */
			seg = AF_X86_SEG_OTHER;
		} else if (mode == AF_X86_MODE64 && (op & 0xf0) == 0x40) {
			rex = op & 0xf;
		} else {
			break;
		}
		if ((op & 0xf0) != 0x40)
			rex = 0; /* REX only counts right before the opcode */
		c.i++;
	}
	o->rex_w = (rex & 8) ? 1 : 0;

	if (mode == AF_X86_MODE64)
		osize = (rex & 8) ? 8 : opsz66 ? 2 : 4;
	else if (mode == AF_X86_MODE32)
		osize = opsz66 ? 2 : 4;
	else
		osize = opsz66 ? 4 : 2;
	if (mode == AF_X86_MODE64)
		asize = asz67 ? 4 : 8;
	else if (mode == AF_X86_MODE32)
		asize = asz67 ? 2 : 4;
	else
		asize = asz67 ? 4 : 2;

	op = next(&c);
	if (op == 0x0f) {
		unsigned op2 = next(&c);
		if (c.bad)
			return AF_X86_OTHER;
		if (op2 == 0xa2) { /* cpuid */
			o->kind = AF_X86_CPUID;
			o->len = (uint8_t)c.i;
			return o->kind;
		}
		if (op2 == 0x22) { /* mov to control register: always reg form */
			modrm = next(&c);
			if (c.bad)
				return AF_X86_OTHER;
			o->kind = AF_X86_MOV_TO_CR;
			o->cr = (uint8_t)(((modrm >> 3) & 7) | ((rex & 4) << 1));
			o->gpr = (uint8_t)((modrm & 7) | ((rex & 1) << 3));
			/* AMD's alternative encoding of cr8 outside 64-bit mode */
			if (o->lock && o->cr == 0)
				o->cr = 8;
			o->len = (uint8_t)c.i;
			return o->kind;
		}
		if (op2 == 0x38) {
			unsigned op3 = next(&c);
			if (c.bad || op3 != 0x82 || !opsz66)
				return AF_X86_OTHER;
			modrm = next(&c);
			if (c.bad || (modrm >> 6) == 3)
				return AF_X86_OTHER;
			/* 66 here is the mandatory prefix, not an opsize change */
			parse_mem(&c, modrm, rex, asize, mode, &o->mem);
			if (c.bad)
				return AF_X86_OTHER;
			o->mem.seg = (uint8_t)seg;
			o->kind = AF_X86_INVPCID;
			o->gpr = (uint8_t)(((modrm >> 3) & 7) | ((rex & 4) << 1));
			o->len = (uint8_t)c.i;
			return o->kind;
		}
		modrm = next(&c);
		if (c.bad)
			return AF_X86_OTHER;
		have_modrm = 1;
		reg = (modrm >> 3) & 7;
		mod = modrm >> 6;
		if (mod == 3)
			return AF_X86_OTHER; /* register destination */
		if (op2 == 0x01) {
			if (reg != 7)
				return AF_X86_OTHER; /* sgdt, lgdt, ... */
			o->kind = AF_X86_INVLPG;
		} else if (op2 >= 0x90 && op2 <= 0x9f) {
			set_store(o, AF_X86_ST_OTHER, 1); /* setcc */
		} else if (op2 == 0xab || op2 == 0xb3 || op2 == 0xbb) {
			set_store(o, AF_X86_ST_BITOP, osize); /* bts btr btc */
		} else if (op2 == 0xba) {
			if (reg < 5)
				return AF_X86_OTHER; /* bt, undefined */
			set_store(o, AF_X86_ST_BITOP, osize);
		} else if (op2 == 0xa4 || op2 == 0xa5 || op2 == 0xac ||
			   op2 == 0xad) {
			set_store(o, AF_X86_ST_OTHER, osize); /* shld shrd */
		} else if (op2 == 0xb0 || op2 == 0xb1) {
			set_store(o, AF_X86_ST_CMPXCHG, op2 == 0xb0 ? 1 : osize);
		} else if (op2 == 0xc0 || op2 == 0xc1) {
			set_store(o, AF_X86_ST_ARITH, op2 == 0xc0 ? 1 : osize);
		} else if (op2 == 0xc3) {
			set_store(o, AF_X86_ST_OTHER, (rex & 8) ? 8 : 4);
		} else if (op2 == 0xc7) {
			if (reg != 1 || opsz66 || o->rep)
				return AF_X86_OTHER; /* vmptrld, rdrand, ... */
			set_store(o, AF_X86_ST_CMPXCHG, (rex & 8) ? 16 : 8);
		} else {
			return AF_X86_OTHER;
		}
	} else {
		if (c.bad)
			return AF_X86_OTHER;
		/* out imm8,al/eAX and out dx,al/eAX (no ModRM; at most 32
		 * bits even with REX.W) */
		if (op == 0xe6 || op == 0xe7 || op == 0xee || op == 0xef) {
			o->kind = AF_X86_OUT;
			o->opsize = (uint8_t)((op & 1) ? (osize > 4 ? 4 : osize)
						       : 1);
			if (op < 0xe8)
				o->port = (uint8_t)next(&c);
			else
				o->port_dx = 1;
			if (c.bad) {
				memset(o, 0, sizeof(*o));
				return AF_X86_OTHER;
			}
			o->len = (uint8_t)c.i;
			return o->kind;
		}
		/* String stores: no ModRM, destination es:[rdi]. */
		if (op == 0xa4 || op == 0xa5 || op == 0xaa || op == 0xab) {
			set_store(o, AF_X86_ST_STRING,
				  (op & 1) ? osize : 1);
			o->mem.base = AF_X86_RDI;
			o->mem.index = AF_X86_NOREG;
			o->mem.scale = 1;
			o->mem.asize = (uint8_t)asize;
			o->mem.seg = AF_X86_SEG_OTHER;
			o->len = (uint8_t)c.i;
			return o->kind;
		}
		/* VEX/EVEX (64-bit mode) carry vector ops we do not track. */
		if (mode == AF_X86_MODE64 &&
		    (op == 0xc4 || op == 0xc5 || op == 0x62))
			return AF_X86_OTHER;
		if (!((op < 0x40 && (op & 7) <= 1) || op == 0x80 ||
		      op == 0x81 || op == 0x83 || (op >= 0x86 && op <= 0x89) ||
		      op == 0x8c || op == 0x8f || op == 0xc0 || op == 0xc1 ||
		      op == 0xc6 || op == 0xc7 || (op >= 0xd0 && op <= 0xd3) ||
		      op == 0xf6 || op == 0xf7 || op == 0xfe || op == 0xff))
			return AF_X86_OTHER;
		modrm = next(&c);
		if (c.bad)
			return AF_X86_OTHER;
		have_modrm = 1;
		reg = (modrm >> 3) & 7;
		mod = modrm >> 6;
		/* VEX (c4/c5) outside 64-bit mode has mod == 3: excluded here. */
		if (mod == 3)
			return AF_X86_OTHER;
		if (op < 0x40) {
			/* 00-3f: ALU r/m,reg (even: byte); 38/39 is cmp. */
			unsigned cls = alu_class(op >> 3);
			if (!cls)
				return AF_X86_OTHER;
			set_store(o, cls, (op & 1) ? osize : 1);
		} else if (op == 0x80 || op == 0x81 || op == 0x83) {
			unsigned cls = alu_class(reg);
			if (!cls)
				return AF_X86_OTHER;
			set_store(o, cls, op == 0x80 ? 1 : osize);
		} else if (op == 0x86 || op == 0x87) {
			set_store(o, AF_X86_ST_XCHG, op == 0x86 ? 1 : osize);
		} else if (op == 0x88 || op == 0x89) {
			set_store(o, AF_X86_ST_MOV, op == 0x88 ? 1 : osize);
		} else if (op == 0x8c) {
			set_store(o, AF_X86_ST_OTHER, 2); /* mov m16,sreg */
		} else if (op == 0x8f) {
			if (reg != 0)
				return AF_X86_OTHER; /* XOP */
			set_store(o, AF_X86_ST_OTHER,
				  mode == AF_X86_MODE64 ? (opsz66 ? 2 : 8)
							: osize);
		} else if (op == 0xc6 || op == 0xc7) {
			if (reg != 0)
				return AF_X86_OTHER;
			set_store(o, AF_X86_ST_MOV, op == 0xc6 ? 1 : osize);
		} else if (op == 0xc0 || op == 0xc1 || (op >= 0xd0 && op <= 0xd3)) {
			if (reg == 6)
				return AF_X86_OTHER;
			set_store(o, AF_X86_ST_OTHER, (op & 1) ? osize : 1);
		} else if (op == 0xf6 || op == 0xf7) {
			if (reg != 2 && reg != 3)
				return AF_X86_OTHER; /* test, mul, div: no store */
			set_store(o, AF_X86_ST_ARITH, op == 0xf6 ? 1 : osize);
		} else { /* fe, ff */
			if (reg > 1)
				return AF_X86_OTHER; /* call, jmp, push: not r/m */
			set_store(o, AF_X86_ST_ARITH, op == 0xfe ? 1 : osize);
		}
	}
	if (!have_modrm)
		return AF_X86_OTHER;
	parse_mem(&c, modrm, rex, asize, mode, &o->mem);
	if (c.bad) {
		memset(o, 0, sizeof(*o));
		return AF_X86_OTHER;
	}
	o->mem.seg = (uint8_t)seg;
	o->len = (uint8_t)c.i;
	return o->kind;
}

const char *af_x86_gpr_name(unsigned gpr, int is64)
{
	static const char *const n64[16] = {
		"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
		"r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15",
	};
	static const char *const n32[8] = {
		"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi",
	};
	if (gpr >= 16)
		return NULL;
	if (is64)
		return n64[gpr];
	return gpr < 8 ? n32[gpr] : NULL;
}
