/*
 * plugin/qemu-api.h - our own declarations of the part of QEMU's TCG plugin
 * C ABI that antfarm-qemu uses (plugin API level 4, QEMU 9.2 .. 10.0).
 *
 * No Debian package ships QEMU's plugin header, so we declare what we call.
 * Where the ABI comes from: QEMU's documentation of the plugin API
 * (docs/devel/tcg-plugins.rst and the generated API reference) and the
 * level-4 bindings of the qemu-plugin-sys crate, which document the same C
 * ABI; the symbol list was checked against `nm -D qemu-system-x86_64` of
 * Debian's 10.0.2. Only what we use is declared; names are QEMU's (they are
 * the link-time ABI), layout and comments are ours.
 *
 * ABI facts that matter (do not "tidy" them):
 *  - enum values are fixed by QEMU: cb flags 0/1/2, mem rw 1/2/3, inline op
 *    0 = add; memory value types 0..4 (u8 .. u128);
 *  - qemu_plugin_u64 and qemu_plugin_mem_value are passed/returned BY VALUE;
 *  - qemu_plugin_get_registers() returns a GArray of reg descriptors that the
 *    caller frees (not the strings); register values come back in a
 *    GByteArray in target byte order (little-endian on x86);
 *  - qemu_plugin_insn_data() COPIES at most len bytes (level >= 3).
 */
#ifndef AF_PLUGIN_QEMU_API_H
#define AF_PLUGIN_QEMU_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

/* The level we were written against; QEMU refuses a plugin whose level is
 * outside [info->version.min, info->version.cur]. */
#define AF_QEMU_PLUGIN_LEVEL 4

#define AF_QEMU_EXPORT __attribute__((visibility("default")))

/* ---- identities and install ---- */

/* Opaque id QEMU gives this plugin instance. */
typedef uint64_t qemu_plugin_id_t;

/* What QEMU tells a plugin at install time (valid during the call only). */
typedef struct {
	const char *target_name; /* "x86_64", "i386", ... */
	struct {
		int min; /* oldest level QEMU still accepts */
		int cur; /* QEMU's own level */
	} version;
	bool system_emulation; /* true for qemu-system-* */
	union {
		struct {
			int smp_vcpus; /* vCPUs at start */
			int max_vcpus; /* most vCPUs there can be */
		} system;
	};
} qemu_info_t;

/* ---- callback shapes ---- */
typedef void (*qemu_plugin_simple_cb_t)(qemu_plugin_id_t id);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_simple_cb_t)(qemu_plugin_id_t id,
					     unsigned int vcpu_index);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index,
					    void *userdata);

struct qemu_plugin_tb;          /* a block being translated (opaque) */
struct qemu_plugin_insn;        /* one instruction of it (opaque) */
struct qemu_plugin_hwaddr;      /* physical side of one access (opaque) */
struct qemu_plugin_register;    /* a register handle (opaque) */
struct qemu_plugin_scoreboard;  /* per-vCPU storage owned by QEMU (opaque) */

typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id,
					       struct qemu_plugin_tb *tb);

/* May the callback look at (or change) CPU registers? */
enum qemu_plugin_cb_flags {
	QEMU_PLUGIN_CB_NO_REGS = 0, /* no register access */
	QEMU_PLUGIN_CB_R_REGS = 1,  /* reads registers */
	QEMU_PLUGIN_CB_RW_REGS = 2, /* reads and writes (unused by us) */
};

/* Which accesses a memory callback wants. */
enum qemu_plugin_mem_rw {
	QEMU_PLUGIN_MEM_R = 1,  /* loads */
	QEMU_PLUGIN_MEM_W = 2,  /* stores */
	QEMU_PLUGIN_MEM_RW = 3, /* both */
};

/* Inline operations QEMU can perform itself (no call into the plugin). */
enum qemu_plugin_op {
	QEMU_PLUGIN_INLINE_ADD_U64 = 0,   /* entry += imm */
	QEMU_PLUGIN_INLINE_STORE_U64 = 1, /* entry = imm */
};

/* One uint64_t at byte offset `offset` of each vCPU's scoreboard entry. */
typedef struct {
	struct qemu_plugin_scoreboard *score; /* the scoreboard */
	size_t offset;                        /* byte offset in an entry */
} qemu_plugin_u64;

/* Opaque description of one memory access, valid during its callback. */
typedef uint32_t qemu_plugin_meminfo_t;

typedef void (*qemu_plugin_vcpu_mem_cb_t)(unsigned int vcpu_index,
					  qemu_plugin_meminfo_t info,
					  uint64_t vaddr, void *userdata);

/* Tag of qemu_plugin_mem_value. */
enum qemu_plugin_mem_value_type {
	QEMU_PLUGIN_MEM_VALUE_U8 = 0,
	QEMU_PLUGIN_MEM_VALUE_U16 = 1,
	QEMU_PLUGIN_MEM_VALUE_U32 = 2,
	QEMU_PLUGIN_MEM_VALUE_U64 = 3,
	QEMU_PLUGIN_MEM_VALUE_U128 = 4,
};

/* The value a load returned or a store wrote (returned by value). */
typedef struct {
	enum qemu_plugin_mem_value_type type; /* which member is valid */
	union {
		uint8_t u8;   /* 1-byte access */
		uint16_t u16; /* 2-byte access */
		uint32_t u32; /* 4-byte access */
		uint64_t u64; /* 8-byte access */
		struct {
			uint64_t low;  /* bits 0-63 */
			uint64_t high; /* bits 64-127 */
		} u128;       /* 16-byte access */
	} data;
} qemu_plugin_mem_value;

/* Element of the GArray from qemu_plugin_get_registers(). */
typedef struct {
	struct qemu_plugin_register *handle; /* for qemu_plugin_read_register */
	const char *name;                    /* "rax", "cr3", ... (QEMU's) */
	const char *feature;                 /* gdb feature name, may be NULL */
} qemu_plugin_reg_descriptor;

/* ---- what the plugin exports ---- */
extern AF_QEMU_EXPORT int qemu_plugin_version;
AF_QEMU_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
				       const qemu_info_t *info, int argc,
				       char **argv);

/* ---- what QEMU provides ---- */

/* Registration of global callbacks. */
void qemu_plugin_register_vcpu_init_cb(qemu_plugin_id_t id,
				       qemu_plugin_vcpu_simple_cb_t cb);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
					   qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id,
				    qemu_plugin_udata_cb_t cb, void *userdata);

/* Translation-time queries (handles valid during the tb_trans callback). */
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb,
						 size_t idx);
/* Copies min(len, instruction size) bytes to dest; returns how many. */
size_t qemu_plugin_insn_data(const struct qemu_plugin_insn *insn, void *dest,
			     size_t len);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);

/* Instrumentation: run-time callbacks and inline ops. An instruction
 * callback runs before the instruction executes. */
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
					    qemu_plugin_vcpu_udata_cb_t cb,
					    enum qemu_plugin_cb_flags flags,
					    void *userdata);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn,
				      qemu_plugin_vcpu_mem_cb_t cb,
				      enum qemu_plugin_cb_flags flags,
				      enum qemu_plugin_mem_rw rw,
				      void *userdata);
void qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(
	struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
	qemu_plugin_u64 entry, uint64_t imm);

/* Memory-access queries (valid during the memory callback). */
unsigned int qemu_plugin_mem_size_shift(qemu_plugin_meminfo_t info);
bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t info);
qemu_plugin_mem_value qemu_plugin_mem_get_value(qemu_plugin_meminfo_t info);
/* NULL in user-mode emulation. */
struct qemu_plugin_hwaddr *qemu_plugin_get_hwaddr(qemu_plugin_meminfo_t info,
						  uint64_t vaddr);
bool qemu_plugin_hwaddr_is_io(const struct qemu_plugin_hwaddr *haddr);
uint64_t qemu_plugin_hwaddr_phys_addr(const struct qemu_plugin_hwaddr *haddr);
/* Name of the memory region an I/O access landed in (QEMU's name, e.g.
 * "virtio-pci-notify-virtio-blk"), "RAM" otherwise; the string is
 * QEMU's (interned: the same name is the same pointer) and stays valid. */
const char *qemu_plugin_hwaddr_device_name(const struct qemu_plugin_hwaddr *h);

/* Registers of the current vCPU: list (in a vCPU-init callback), then read
 * (in a callback registered with QEMU_PLUGIN_CB_R_REGS). read returns the
 * register's size in bytes, or -1. */
GArray *qemu_plugin_get_registers(void);
int qemu_plugin_read_register(struct qemu_plugin_register *handle,
			      GByteArray *buf);
/* Reads len bytes of guest memory at a virtual address of the current vCPU
 * (its current page tables) into data, growing it; false on failure. */
bool qemu_plugin_read_memory_vaddr(uint64_t addr, GByteArray *data,
				   size_t len);

/* Scoreboards: one entry of element_size bytes per vCPU, grown by QEMU as
 * vCPUs appear. */
struct qemu_plugin_scoreboard *qemu_plugin_scoreboard_new(size_t element_size);
void qemu_plugin_scoreboard_free(struct qemu_plugin_scoreboard *score);
uint64_t qemu_plugin_u64_get(qemu_plugin_u64 entry, unsigned int vcpu_index);

/* Unregisters every callback of the plugin and flushes all translated
 * code; cb (may be NULL) runs once that is done, with every vCPU stopped
 * (from a vCPU thread if called from one). The plugin then registers its
 * callbacks again. Ignored while a reset is already pending. */
void qemu_plugin_reset(qemu_plugin_id_t id, qemu_plugin_simple_cb_t cb);

/* Misc. */
int qemu_plugin_num_vcpus(void);
void qemu_plugin_outs(const char *string);

#endif
