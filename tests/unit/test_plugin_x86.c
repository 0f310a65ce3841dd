/*
 * tests/unit/test_plugin_x86.c - unit tests of the QEMU plugin's x86
 * decoder (plugin/x86.c, compiled in here: the plugin itself needs QEMU).
 *
 * Encodings were produced with GNU as and checked with objdump.
 */
#include "harness.h"
#include "../../plugin/x86.c"

#define DEC(mode, ...)                                                     \
	({                                                                 \
		static const uint8_t b_[] = { __VA_ARGS__ };               \
		memset(&in, 0xaa, sizeof(in));                             \
		af_x86_decode(b_, sizeof(b_), (mode), &in);                \
	})

static struct af_x86_insn in;

TEST(mov_to_cr)
{
	CHECK_EQ(DEC(AF_X86_MODE64, 0x0f, 0x22, 0xd8), AF_X86_MOV_TO_CR);
	CHECK_EQ(in.cr, 3);
	CHECK_EQ(in.gpr, AF_X86_RAX);
	CHECK_EQ(in.len, 3);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x41, 0x0f, 0x22, 0xd8), AF_X86_MOV_TO_CR);
	CHECK_EQ(in.cr, 3);
	CHECK_EQ(in.gpr, 8);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x0f, 0x22, 0xe7), AF_X86_MOV_TO_CR);
	CHECK_EQ(in.cr, 4);
	CHECK_EQ(in.gpr, AF_X86_RDI);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x0f, 0x22, 0xc3), AF_X86_MOV_TO_CR);
	CHECK_EQ(in.cr, 0);
	CHECK_EQ(in.gpr, AF_X86_RBX);
	/* REX.R selects cr8 */
	CHECK_EQ(DEC(AF_X86_MODE64, 0x44, 0x0f, 0x22, 0xc0), AF_X86_MOV_TO_CR);
	CHECK_EQ(in.cr, 8);
	/* 32-bit mode: 0x41 is inc ecx, never a REX; lock mov cr0 = cr8 */
	CHECK_EQ(DEC(AF_X86_MODE32, 0x0f, 0x22, 0xd8), AF_X86_MOV_TO_CR);
	CHECK_EQ(in.gpr, AF_X86_RAX);
	CHECK_EQ(DEC(AF_X86_MODE32, 0x41, 0x0f, 0x22, 0xd8), AF_X86_OTHER);
	CHECK_EQ(DEC(AF_X86_MODE32, 0xf0, 0x0f, 0x22, 0xc0), AF_X86_MOV_TO_CR);
	CHECK_EQ(in.cr, 8);
	/* mod bits are ignored: still the register form */
	CHECK_EQ(DEC(AF_X86_MODE64, 0x0f, 0x22, 0x18), AF_X86_MOV_TO_CR);
	CHECK_EQ(in.cr, 3);
	CHECK_EQ(in.gpr, AF_X86_RAX);
	/* mov from cr is not a write */
	CHECK_EQ(DEC(AF_X86_MODE64, 0x0f, 0x20, 0xd8), AF_X86_OTHER);
}

TEST(invlpg_invpcid_cpuid)
{
	CHECK_EQ(DEC(AF_X86_MODE64, 0x0f, 0x01, 0x3f), AF_X86_INVLPG);
	CHECK_EQ(in.mem.base, AF_X86_RDI);
	CHECK_EQ(in.mem.index, AF_X86_NOREG);
	CHECK_EQ(in.mem.disp, 0);
	CHECK_EQ(in.mem.asize, 8);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x41, 0x0f, 0x01, 0x7c, 0xc4, 0x10),
		 AF_X86_INVLPG);
	CHECK_EQ(in.mem.base, 12);
	CHECK_EQ(in.mem.index, AF_X86_RAX);
	CHECK_EQ(in.mem.scale, 8);
	CHECK_EQ(in.mem.disp, 0x10);
	CHECK_EQ(in.len, 6);
	/* 0f 01 f8 is swapgs, not invlpg */
	CHECK_EQ(DEC(AF_X86_MODE64, 0x0f, 0x01, 0xf8), AF_X86_OTHER);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x66, 0x0f, 0x38, 0x82, 0x16),
		 AF_X86_INVPCID);
	CHECK_EQ(in.gpr, AF_X86_RDX);
	CHECK_EQ(in.mem.base, AF_X86_RSI);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x66, 0x45, 0x0f, 0x38, 0x82, 0x11),
		 AF_X86_INVPCID);
	CHECK_EQ(in.gpr, 10);
	CHECK_EQ(in.mem.base, 9);
	/* without the mandatory 66 it is something else */
	CHECK_EQ(DEC(AF_X86_MODE64, 0x0f, 0x38, 0x82, 0x16), AF_X86_OTHER);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x0f, 0xa2), AF_X86_CPUID);
	CHECK_EQ(DEC(AF_X86_MODE32, 0x0f, 0xa2), AF_X86_CPUID);
}

TEST(stores_64)
{
	CHECK_EQ(DEC(AF_X86_MODE64, 0x48, 0x89, 0x07), AF_X86_STORE);
	CHECK_EQ(in.store, AF_X86_ST_MOV);
	CHECK_EQ(in.opsize, 8);
	CHECK_EQ(in.rex_w, 1);
	CHECK_EQ(in.mem.base, AF_X86_RDI);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x48, 0x89, 0x44, 0x24, 0x08), AF_X86_STORE);
	CHECK_EQ(in.mem.base, AF_X86_RSP);
	CHECK_EQ(in.mem.disp, 8);
	CHECK_EQ(in.len, 5);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x89, 0x07), AF_X86_STORE);
	CHECK_EQ(in.opsize, 4);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x66, 0x89, 0x07), AF_X86_STORE);
	CHECK_EQ(in.opsize, 2);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x48, 0xc7, 0x07, 0, 0, 0, 0), AF_X86_STORE);
	CHECK_EQ(in.store, AF_X86_ST_MOV);
	CHECK_EQ(in.opsize, 8);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x48, 0x87, 0x07), AF_X86_STORE);
	CHECK_EQ(in.store, AF_X86_ST_XCHG);
	CHECK_EQ(DEC(AF_X86_MODE64, 0xf0, 0x48, 0x0f, 0xb1, 0x0a), AF_X86_STORE);
	CHECK_EQ(in.store, AF_X86_ST_CMPXCHG);
	CHECK_EQ(in.opsize, 8);
	CHECK_EQ(in.lock, 1);
	CHECK_EQ(in.mem.base, AF_X86_RDX);
	CHECK_EQ(DEC(AF_X86_MODE64, 0xf0, 0x48, 0x0f, 0xc7, 0x0f), AF_X86_STORE);
	CHECK_EQ(in.opsize, 16);
	CHECK_EQ(DEC(AF_X86_MODE64, 0xf0, 0x0f, 0xc7, 0x0f), AF_X86_STORE);
	CHECK_EQ(in.opsize, 8);
	CHECK_EQ(DEC(AF_X86_MODE64, 0xf0, 0x48, 0x0f, 0xba, 0x37, 0x01),
		 AF_X86_STORE);
	CHECK_EQ(in.store, AF_X86_ST_BITOP);
	CHECK_EQ(in.opsize, 8);
	CHECK_EQ(DEC(AF_X86_MODE64, 0xf0, 0x80, 0x27, 0xfd), AF_X86_STORE);
	CHECK_EQ(in.store, AF_X86_ST_BITOP);
	CHECK_EQ(in.opsize, 1);
	CHECK_EQ(DEC(AF_X86_MODE64, 0xf3, 0x48, 0xab), AF_X86_STORE);
	CHECK_EQ(in.store, AF_X86_ST_STRING);
	CHECK_EQ(in.opsize, 8);
	CHECK_EQ(in.rep, 1);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x65, 0x48, 0x89, 0x04, 0x25, 0x28, 0, 0, 0),
		 AF_X86_STORE);
	CHECK_EQ(in.mem.seg, AF_X86_SEG_GS);
	CHECK_EQ(in.mem.base, AF_X86_NOREG);
	CHECK_EQ(in.mem.index, AF_X86_NOREG);
	CHECK_EQ(in.mem.disp, 0x28);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x48, 0x89, 0x05, 0x00, 0x01, 0, 0),
		 AF_X86_STORE);
	CHECK_EQ(in.mem.rip_rel, 1);
	CHECK_EQ(in.mem.disp, 0x100);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x49, 0x89, 0x45, 0x00), AF_X86_STORE);
	CHECK_EQ(in.mem.base, 13);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x48, 0x89, 0x45, 0x00), AF_X86_STORE);
	CHECK_EQ(in.mem.base, AF_X86_RBP);
	/* r12 base needs a SIB byte and is not rsp */
	CHECK_EQ(DEC(AF_X86_MODE64, 0x49, 0x89, 0x04, 0x24), AF_X86_STORE);
	CHECK_EQ(in.mem.base, 12);
	/* loads, compares, register destinations are not stores */
	CHECK_EQ(DEC(AF_X86_MODE64, 0x48, 0x8b, 0x07), AF_X86_OTHER);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x48, 0x39, 0x07), AF_X86_OTHER);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x48, 0x89, 0xc7), AF_X86_OTHER);
	CHECK_EQ(DEC(AF_X86_MODE64, 0x48, 0x83, 0x3f, 0x00), AF_X86_OTHER);
	CHECK_EQ(DEC(AF_X86_MODE64, 0xff, 0x37), AF_X86_OTHER); /* push m */
	CHECK_EQ(DEC(AF_X86_MODE64, 0xff, 0x07), AF_X86_STORE); /* inc m */
}

TEST(stores_32_16)
{
	CHECK_EQ(DEC(AF_X86_MODE32, 0x89, 0x07), AF_X86_STORE);
	CHECK_EQ(in.opsize, 4);
	CHECK_EQ(in.mem.asize, 4);
	CHECK_EQ(DEC(AF_X86_MODE32, 0x0f, 0xc7, 0x0e), AF_X86_STORE);
	CHECK_EQ(in.store, AF_X86_ST_CMPXCHG);
	CHECK_EQ(in.opsize, 8);
	CHECK_EQ(DEC(AF_X86_MODE32, 0xc7, 0x44, 0x8b, 0x04, 0, 0, 0, 0),
		 AF_X86_STORE);
	CHECK_EQ(in.mem.base, AF_X86_RBX);
	CHECK_EQ(in.mem.index, AF_X86_RCX);
	CHECK_EQ(in.mem.scale, 4);
	CHECK_EQ(in.mem.disp, 4);
	/* 32-bit: mod 0 rm 5 is an absolute disp32, not rip-relative */
	CHECK_EQ(DEC(AF_X86_MODE32, 0x89, 0x05, 0x78, 0x56, 0x34, 0x12),
		 AF_X86_STORE);
	CHECK_EQ(in.mem.rip_rel, 0);
	CHECK_EQ(in.mem.base, AF_X86_NOREG);
	CHECK_EQ((uint32_t)in.mem.disp, 0x12345678);
	/* 32-bit mode has no REX: 48 is dec eax on its own */
	CHECK_EQ(DEC(AF_X86_MODE32, 0x48, 0x89, 0x07), AF_X86_OTHER);
	/* 16-bit code: default operand 2, 66 makes it 4; [bx+si+disp8] */
	CHECK_EQ(DEC(AF_X86_MODE16, 0x89, 0x40, 0x10), AF_X86_STORE);
	CHECK_EQ(in.opsize, 2);
	CHECK_EQ(in.mem.asize, 2);
	CHECK_EQ(in.mem.base, AF_X86_RBX);
	CHECK_EQ(in.mem.index, AF_X86_RSI);
	CHECK_EQ(in.mem.disp, 0x10);
	CHECK_EQ(DEC(AF_X86_MODE16, 0x66, 0x89, 0x06, 0x34, 0x12), AF_X86_STORE);
	CHECK_EQ(in.opsize, 4);
	CHECK_EQ(in.mem.base, AF_X86_NOREG);
	CHECK_EQ(in.mem.disp, 0x1234);
}

TEST(out_to_port)
{
	/* 66 ef: out %ax,(%dx), the 16-bit legacy virtio notify */
	CHECK_EQ(DEC(AF_X86_MODE64, 0x66, 0xef), AF_X86_OUT);
	CHECK_EQ(in.opsize, 2);
	CHECK_EQ(in.port_dx, 1);
	CHECK_EQ(in.len, 2);
	/* ee: out %al,(%dx); ef: out %eax,(%dx) */
	CHECK_EQ(DEC(AF_X86_MODE64, 0xee), AF_X86_OUT);
	CHECK_EQ(in.opsize, 1);
	CHECK_EQ(in.port_dx, 1);
	CHECK_EQ(DEC(AF_X86_MODE32, 0xef), AF_X86_OUT);
	CHECK_EQ(in.opsize, 4);
	/* e6 80: out %al,$0x80 (immediate port) */
	CHECK_EQ(DEC(AF_X86_MODE64, 0xe6, 0x80), AF_X86_OUT);
	CHECK_EQ(in.opsize, 1);
	CHECK_EQ(in.port_dx, 0);
	CHECK_EQ(in.port, 0x80);
	CHECK_EQ(in.len, 2);
	/* REX.W does not widen out beyond 32 bits */
	CHECK_EQ(DEC(AF_X86_MODE64, 0x48, 0xef), AF_X86_OUT);
	CHECK_EQ(in.opsize, 4);
	/* 16-bit code: ef is out %ax,(%dx) */
	CHECK_EQ(DEC(AF_X86_MODE16, 0xef), AF_X86_OUT);
	CHECK_EQ(in.opsize, 2);
	/* truncated: the immediate port is missing */
	CHECK_EQ(DEC(AF_X86_MODE64, 0x66, 0xe7), AF_X86_OTHER);
	CHECK_EQ(DEC(AF_X86_MODE64, 0xe6), AF_X86_OTHER);
	/* in (e4/ec) is not out */
	CHECK_EQ(DEC(AF_X86_MODE64, 0xec), AF_X86_OTHER);
	CHECK_EQ(DEC(AF_X86_MODE64, 0xe4, 0x80), AF_X86_OTHER);
}

TEST(truncated_and_garbage)
{
	/* Every prefix of a valid instruction must decode safely, and only
	 * the full one may claim what it is. */
	static const uint8_t full[] = { 0x41, 0x0f, 0x01, 0x7c, 0xc4, 0x10 };
	for (size_t n = 0; n < sizeof(full); n++) {
		af_x86_decode(full, n, AF_X86_MODE64, &in);
		CHECK(in.kind == AF_X86_OTHER || in.len <= n);
		CHECK(in.kind != AF_X86_INVLPG);
	}
	/* 15 prefixes and nothing else */
	static const uint8_t pre[15] = { 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
					 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
					 0x66, 0x66, 0x66 };
	CHECK_EQ(af_x86_decode(pre, sizeof(pre), AF_X86_MODE64, &in),
		 AF_X86_OTHER);
	CHECK_EQ(af_x86_decode(pre, 0, AF_X86_MODE64, &in), AF_X86_OTHER);
	CHECK_EQ(af_x86_decode(pre, 3, 7, &in), AF_X86_OTHER);
	/* Pseudo-random bytes: nothing may read out of bounds (ASan) and the
	 * claimed length never exceeds the input. */
	uint32_t s = 12345;
	uint8_t buf[AF_X86_MAX_LEN];
	for (int i = 0; i < 200000; i++) {
		size_t n = 1 + (s % AF_X86_MAX_LEN);
		for (size_t k = 0; k < n; k++) {
			s = s * 1103515245u + 12345u;
			buf[k] = (uint8_t)(s >> 16);
		}
		for (int m = 2; m <= 8; m *= 2) {
			af_x86_decode(buf, n, (enum af_x86_mode)m, &in);
			CHECK(in.len <= n);
		}
	}
}

TEST(gpr_names)
{
	CHECK(strcmp(af_x86_gpr_name(AF_X86_RAX, 1), "rax") == 0);
	CHECK(strcmp(af_x86_gpr_name(15, 1), "r15") == 0);
	CHECK(strcmp(af_x86_gpr_name(AF_X86_RDI, 0), "edi") == 0);
	CHECK(af_x86_gpr_name(8, 0) == NULL);
	CHECK(af_x86_gpr_name(16, 1) == NULL);
}
