/*
 * guest/tools/truthcount.c - a minimal QEMU TCG plugin for testing the guest
 * side alone: it counts the ground-truth CPUIDs (include/antfarm/channel.h)
 * per kind and checks the channel's registers against the CPU.
 *
 *   qemu-system-x86_64 ... -plugin ./truthcount.so,out=FILE
 *
 * At exit FILE gets "name value" lines: one count per event kind (the names
 * /proc/antfarm_truth uses), "bad_kind" (magic CPUIDs with an unknown kind),
 * and "exec_cr3_mismatch"/"exit_cr3_mismatch": EXEC and EXIT are reported
 * while the process's own address space is loaded, so CR3 (less its flag and
 * PCID bits) must equal the asid the guest sent.
 *
 * Not part of antfarm (plugin/ is the real consumer); it exists so that
 * tests/guest_channel.test.sh can check the module without it. The few
 * declarations of QEMU's plugin C ABI (level 4) it needs are written here
 * from the documented API.
 */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "antfarm/channel.h"
#include "../module/antfarm_truth_kinds.h"

/* ---- the part of QEMU's plugin ABI used here ---- */
typedef uint64_t qemu_plugin_id_t;
typedef struct {
	const char *target_name; /* "x86_64" or "i386" */
	struct {
		int min; /* oldest API level accepted */
		int cur; /* QEMU's API level */
	} version;
	_Bool system_emulation; /* unused here */
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
struct qemu_plugin_register;
typedef struct {
	struct qemu_plugin_register *handle; /* for reads */
	const char *name;                    /* register name */
	const char *feature;                 /* gdb feature, may be NULL */
} qemu_plugin_reg_descriptor;
enum { QEMU_PLUGIN_CB_R_REGS = 1 };

void qemu_plugin_register_vcpu_init_cb(qemu_plugin_id_t id,
				       void (*cb)(qemu_plugin_id_t, unsigned int));
void qemu_plugin_register_vcpu_tb_trans_cb(
	qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, struct qemu_plugin_tb *));
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id,
				    void (*cb)(qemu_plugin_id_t, void *),
				    void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb,
						 size_t idx);
size_t qemu_plugin_insn_data(const struct qemu_plugin_insn *insn, void *dest,
			     size_t len);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
					    void (*cb)(unsigned int, void *),
					    int flags, void *userdata);
GArray *qemu_plugin_get_registers(void);
int qemu_plugin_read_register(struct qemu_plugin_register *handle,
			      GByteArray *buf);

__attribute__((visibility("default"))) int qemu_plugin_version = 4;
__attribute__((visibility("default"))) int
qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
		    char **argv);

/* ---- state ---- */
enum { R_A, R_B, R_C, R_D, R_S, R_DI, R_CR3, R_CR4, R_N };
static const char *const reg_names64[R_N] = { "rax", "rbx", "rcx", "rdx",
					      "rsi", "rdi", "cr3", "cr4" };
static const char *const reg_names32[R_N] = { "eax", "ebx", "ecx", "edx",
					      "esi", "edi", "cr3", "cr4" };
static struct qemu_plugin_register *regs[R_N]; /* handles, same for all vCPUs */
static int is64;                               /* x86_64 target */
static GMutex lock;                            /* guards the counters */
static unsigned long counts[AFT_NKINDS];       /* events per kind */
static unsigned long bad_kind;                 /* magic with unknown kind */
static unsigned long cr3_bad[AFT_NKINDS];      /* cr3 != asid (exec, exit) */
static char *out_path;                         /* where to write at exit */

static const char *const kind_name[AFT_NKINDS] = {
	[AFT_FORK] = "fork",           [AFT_EXEC] = "exec",
	[AFT_EXIT] = "exit",           [AFT_AS_CREATE] = "as_create",
	[AFT_AS_DESTROY] = "as_destroy", [AFT_SWITCH] = "switch",
	[AFT_BEGIN] = "begin",         [AFT_END] = "end",
	[AFT_VFORK] = "vfork",
};

static uint64_t rd(int r)
{
	GByteArray *b = g_byte_array_new();
	uint64_t v = 0;
	int n = regs[r] ? qemu_plugin_read_register(regs[r], b) : 0;

	if (n > 0)
		memcpy(&v, b->data, (size_t)n < sizeof v ? (size_t)n : sizeof v);
	g_byte_array_free(b, TRUE);
	return v;
}

static void on_cpuid(unsigned int vcpu, void *ud)
{
	uint32_t kind;
	uint64_t asid, cr3, mask;

	(void)vcpu;
	(void)ud;
	if ((uint32_t)rd(R_A) != AF_CHAN_MAGIC)
		return;
	kind = (uint32_t)rd(R_B);
	asid = ((uint64_t)(uint32_t)rd(R_DI) << 32) | (uint32_t)rd(R_S);
	cr3 = rd(R_CR3);
	/* PAE (32-bit, CR4.PAE): CR3 holds a 32-byte aligned address. */
	mask = (!is64 && (rd(R_CR4) & 0x20)) ? ~(uint64_t)0x1f : ~(uint64_t)0xfff;
	if (is64)
		mask &= 0x000ffffffffff000ull; /* drop PCID and flag bits */
	g_mutex_lock(&lock);
	if (kind == 0 || kind >= AFT_NKINDS) {
		bad_kind++;
	} else {
		counts[kind]++;
		if ((kind == AFT_EXEC || kind == AFT_EXIT) && (cr3 & mask) != asid)
			cr3_bad[kind]++;
	}
	g_mutex_unlock(&lock);
}

static void on_tb(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb);

	(void)id;
	for (size_t i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		unsigned char b[2];

		if (qemu_plugin_insn_data(insn, b, 2) == 2 && b[0] == 0x0f && b[1] == 0xa2)
			qemu_plugin_register_vcpu_insn_exec_cb(insn, on_cpuid,
							       QEMU_PLUGIN_CB_R_REGS, NULL);
	}
}

static void on_vcpu_init(qemu_plugin_id_t id, unsigned int vcpu)
{
	GArray *a;

	(void)id;
	if (vcpu != 0)
		return;
	a = qemu_plugin_get_registers();
	for (guint i = 0; a && i < a->len; i++) {
		qemu_plugin_reg_descriptor *d =
			&g_array_index(a, qemu_plugin_reg_descriptor, i);
		for (int r = 0; r < R_N; r++)
			if (!strcmp(d->name, is64 ? reg_names64[r] : reg_names32[r]))
				regs[r] = d->handle;
	}
	if (a)
		g_array_free(a, TRUE);
}

static void on_exit(qemu_plugin_id_t id, void *ud)
{
	FILE *f = out_path ? fopen(out_path, "w") : stderr;

	(void)id;
	(void)ud;
	if (!f)
		return;
	for (int k = 1; k < AFT_NKINDS; k++)
		fprintf(f, "%s %lu\n", kind_name[k], counts[k]);
	fprintf(f, "bad_kind %lu\n", bad_kind);
	fprintf(f, "exec_cr3_mismatch %lu\n", cr3_bad[AFT_EXEC]);
	fprintf(f, "exit_cr3_mismatch %lu\n", cr3_bad[AFT_EXIT]);
	for (int r = 0; r < R_N; r++)
		if (!regs[r])
			fprintf(f, "missing_register %s\n", reg_names64[r]);
	if (f != stderr)
		fclose(f);
}

__attribute__((visibility("default"))) int
qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
		    char **argv)
{
	for (int i = 0; i < argc; i++)
		if (!strncmp(argv[i], "out=", 4))
			out_path = g_strdup(argv[i] + 4);
	is64 = info->target_name && !strcmp(info->target_name, "x86_64");
	qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb);
	qemu_plugin_register_atexit_cb(id, on_exit, NULL);
	return 0;
}
