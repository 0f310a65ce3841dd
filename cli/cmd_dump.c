/*
 * cli/cmd_dump.c - `antfarm dump TRACE`: prints the trace header and every
 * record, one per line, each prefixed with its byte offset in the file.
 */
#include "cli.h"

#include <inttypes.h>
#include <string.h>

#define MEM_PREVIEW 16 /* bytes of a memory record shown */

static void dump_header(FILE *f, const struct af_trace_info *in)
{
	const char *mmu = cli_mmu_name(in->mmu);
	char guest[sizeof(in->guest) + 1];
	memcpy(guest, in->guest, sizeof(in->guest));
	guest[sizeof(in->guest)] = '\0';
	fprintf(f, "@0 header version %" PRIu32 " mmu ", in->version);
	if (mmu)
		fputs(mmu, f);
	else
		fprintf(f, "%u", (unsigned)in->mmu);
	fprintf(f,
		" n_vcpus %u ctx_bits %u phys_bytes %" PRIu64 " (0x%" PRIx64
		") guest ",
		(unsigned)in->n_vcpus, (unsigned)in->ctx_bits, in->phys_bytes,
		in->phys_bytes);
	cli_json_string(f, guest);
	fputc('\n', f);
}

static void dump_obs(FILE *f, const struct af_obs *o)
{
	const char *kind = af_obs_kind_name(o->kind);
	fprintf(f, "obs t %" PRIu64 " vcpu %u ", o->time_ns, (unsigned)o->vcpu);
	if (kind)
		fputs(kind, f);
	else
		fprintf(f, "kind_%u", (unsigned)o->kind);
	switch (o->kind) {
	case AF_OBS_ROOT_LOAD:
	case AF_OBS_CTX_LOAD:
	case AF_OBS_CTX_DEMAP:
		fprintf(f, " value 0x%" PRIx64, o->value);
		break;
	case AF_OBS_PT_STORE:
		fprintf(f, " addr 0x%" PRIx64 " width %u value 0x%" PRIx64,
			o->addr, (unsigned)o->width, o->value);
		break;
	case AF_OBS_TLB_FLUSH: {
		const char *fl = af_flush_name(o->width);
		if (fl)
			fprintf(f, " %s", fl);
		else
			fprintf(f, " flush_%u", (unsigned)o->width);
		fprintf(f, " value 0x%" PRIx64 " addr 0x%" PRIx64, o->value,
			o->addr);
		break;
	}
	case AF_OBS_PAGING: {
		const char *pg = af_paging_name((unsigned)o->value);
		if (pg)
			fprintf(f, " %s", pg);
		else
			fprintf(f, " mode_%" PRIu64, o->value);
		fprintf(f, " flags 0x%" PRIx32, o->aux);
		break;
	}
	case AF_OBS_TIME:
		break;
	default:
		fprintf(f, " width %u aux 0x%" PRIx32 " addr 0x%" PRIx64
			   " value 0x%" PRIx64,
			(unsigned)o->width, o->aux, o->addr, o->value);
		break;
	}
	if (o->icount)
		fprintf(f, " icount %" PRIu64, o->icount);
	fputc('\n', f);
}

static void dump_asid(FILE *f, uint64_t asid)
{
	if (asid == AF_ASID_NONE)
		fputs(" asid none", f);
	else
		fprintf(f, " asid 0x%" PRIx64, asid);
}

static void dump_truth(FILE *f, const struct af_truth *t)
{
	const char *kind = cli_truth_name(t->kind);
	fprintf(f, "truth t %" PRIu64 " vcpu %u ", t->time_ns,
		(unsigned)t->vcpu);
	if (kind)
		fputs(kind, f);
	else
		fprintf(f, "kind_%u", (unsigned)t->kind);
	switch (t->kind) {
	case AF_TRUTH_BEGIN:
	case AF_TRUTH_END:
		break;
	case AF_TRUTH_SWITCH:
		fprintf(f, " pid %" PRIu32, t->pid);
		dump_asid(f, t->asid);
		break;
	default:
		fprintf(f, " pid %" PRIu32 " ppid %" PRIu32, t->pid, t->ppid);
		dump_asid(f, t->asid);
		break;
	}
	fputc('\n', f);
}

static void dump_mem(FILE *f, uint64_t gpa, uint32_t len, const uint8_t *d)
{
	fprintf(f, "mem gpa 0x%" PRIx64 " len %" PRIu32, gpa, len);
	if (d && len) {
		uint32_t n = len < MEM_PREVIEW ? len : MEM_PREVIEW;
		uint32_t nz = 0;
		for (uint32_t i = 0; i < len; i++)
			nz += d[i] != 0;
		fprintf(f, " nonzero %" PRIu32 " data ", nz);
		for (uint32_t i = 0; i < n; i++)
			fprintf(f, "%02x", d[i]);
		if (n < len)
			fputs("...", f);
	}
	fputc('\n', f);
}

static int run_dump(int argc, char **argv)
{
	const char *path;
	struct af_trace_reader *r;
	int rc = cli_trace_command("dump", argc, argv, 0, NULL, NULL, &path,
				   &r);
	if (rc)
		return rc;
	const struct af_trace_info *info = af_trace_reader_info(r);
	if (info)
		dump_header(stdout, info);
	uint64_t off;
	for (;;) {
		off = af_trace_reader_offset(r);
		struct af_record rec;
		rc = af_trace_next(r, &rec);
		if (rc <= 0)
			break;
		printf("@%" PRIu64 " ", off);
		switch (rec.type) {
		case AF_REC_OBS:
			dump_obs(stdout, &rec.u.obs);
			break;
		case AF_REC_TRUTH:
			dump_truth(stdout, &rec.u.truth);
			break;
		case AF_REC_MEM:
			dump_mem(stdout, rec.u.mem.gpa, rec.u.mem.len,
				 rec.u.mem.data);
			break;
		default:
			printf("record type %u\n", (unsigned)rec.type);
			break;
		}
	}
	if (rc == 0)
		printf("@%" PRIu64 " end of trace\n", off);
	if (rc < 0) {
		fflush(stdout);
		rc = cli_trace_error(path, r, rc);
		af_trace_reader_free(r);
		return rc;
	}
	af_trace_reader_free(r);
	return cli_finish_output();
}

const struct cli_cmd cli_cmd_dump = {
	.name = "dump",
	.summary = "print every record of a trace, with byte offsets",
	.usage =
		"usage: antfarm dump TRACE\n"
		"\n"
		"Prints the header of TRACE ('-' for stdin), then every record,\n"
		"one per line, each starting with '@OFFSET' (its byte offset in\n"
		"the file):\n"
		"  @0 header version V mmu x86|context-id n_vcpus N ctx_bits B\n"
		"     phys_bytes P (0x...) guest \"...\"\n"
		"  @OFF obs t NS vcpu V KIND [fields] [icount N]\n"
		"  @OFF mem gpa 0x... len N nonzero N data HEX[...]\n"
		"  @OFF truth t NS vcpu V KIND [pid P ppid P asid 0x...|none]\n"
		"  @OFF end of trace     (the end record, last)\n"
		"Stops with an error line at the first bad record.\n",
	.run = run_dump,
};
