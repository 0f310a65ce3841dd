/*
 * cli/cmd_replay.c - `antfarm replay TRACE`: re-runs inference offline over
 * a trace (af_replay) and prints every inferred event as text, JSON lines or
 * CSV.
 */
#include "cli.h"

#include <inttypes.h>
#include <string.h>

/* Printing state passed through the replay sink. */
struct replay_out {
	FILE *f;             /* where to print */
	enum cli_format fmt; /* how */
};

/* Writes an ASID as a JSON value: "0x..." or null for none. */
static void json_asid(FILE *f, uint64_t asid)
{
	if (asid == AF_ASID_NONE)
		fputs("null", f);
	else
		fprintf(f, "\"0x%" PRIx64 "\"", asid);
}

static void print_event(void *ctx, const struct af_event *ev)
{
	const struct replay_out *o = ctx;
	const char *kind = af_event_kind_name(ev->kind);
	FILE *f = o->f;
	if (!kind)
		kind = "?";

	switch (o->fmt) {
	case CLI_FMT_JSONL:
		fprintf(f, "{\"time_ns\":%" PRIu64 ",\"vcpu\":%u,\"event\":",
			ev->time_ns, (unsigned)ev->vcpu);
		cli_json_string(f, kind);
		fputs(",\"asid\":", f);
		json_asid(f, ev->asid);
		if (ev->kind == AF_EV_SWITCH) {
			fputs(",\"prev_asid\":", f);
			json_asid(f, ev->prev_asid);
		}
		fprintf(f, ",\"serial\":%" PRIu64 ",\"icount\":%" PRIu64 "}\n",
			ev->serial, ev->icount);
		break;
	case CLI_FMT_CSV:
		fprintf(f, "%" PRIu64 ",%u,%s,", ev->time_ns,
			(unsigned)ev->vcpu, kind);
		if (ev->asid != AF_ASID_NONE)
			fprintf(f, "0x%" PRIx64, ev->asid);
		fputc(',', f);
		if (ev->kind == AF_EV_SWITCH && ev->prev_asid != AF_ASID_NONE)
			fprintf(f, "0x%" PRIx64, ev->prev_asid);
		fprintf(f, ",%" PRIu64 ",%" PRIu64 "\n", ev->serial,
			ev->icount);
		break;
	default:
		fprintf(f, "%6" PRIu64 ".%09" PRIu64 "  vcpu %-2u  %-6s  ",
			ev->time_ns / 1000000000u, ev->time_ns % 1000000000u,
			(unsigned)ev->vcpu, kind);
		if (ev->asid == AF_ASID_NONE)
			fprintf(f, "asid %-18s", "none");
		else
			fprintf(f, "asid 0x%-16" PRIx64, ev->asid);
		if (ev->kind != AF_EV_SWITCH)
			fprintf(f, "  serial %" PRIu64 "\n", ev->serial);
		else if (ev->prev_asid == AF_ASID_NONE)
			fprintf(f, "  serial %-6" PRIu64 "  from none\n",
				ev->serial);
		else
			fprintf(f, "  serial %-6" PRIu64 "  from 0x%" PRIx64 "\n",
				ev->serial, ev->prev_asid);
		break;
	}
}

static void ignore_truth(void *ctx, const struct af_truth *t)
{
	(void)ctx;
	(void)t;
}

static void print_counters(FILE *f, const struct af_counters *c)
{
	fprintf(f,
		"summary: observations %" PRIu64 ", creates %" PRIu64
		", exits %" PRIu64 ", switches %" PRIu64 ", root_loads %" PRIu64
		", pt_stores %" PRIu64 ", stray_stores %" PRIu64
		", flushes %" PRIu64 ", frames_tracked %" PRIu64
		", frames_walked %" PRIu64 ", joins %" PRIu64
		", bad_roots %" PRIu64 ", bad_entries %" PRIu64
		", table_full %" PRIu64 "\n",
		c->observations, c->creates, c->exits, c->switches,
		c->root_loads, c->pt_stores, c->stray_stores, c->flushes,
		c->frames_tracked, c->frames_walked, c->joins, c->bad_roots,
		c->bad_entries, c->table_full);
}

static int run_replay(int argc, char **argv)
{
	struct replay_out o = { .f = stdout, .fmt = CLI_FMT_TEXT };
	unsigned engine_flags = 0;
	const char *path;
	struct af_trace_reader *r;
	int rc = cli_trace_command("replay", argc, argv,
				   1u << CLI_FMT_TEXT | 1u << CLI_FMT_JSONL |
					   1u << CLI_FMT_CSV,
				   &o.fmt, &engine_flags, &path, &r);
	if (rc)
		return rc;
	if (o.fmt == CLI_FMT_CSV)
		fputs("time_ns,vcpu,event,asid,prev_asid,serial,icount\n",
		      o.f);
	struct af_replay_sink sink = { print_event, ignore_truth, &o };
	struct af_counters cnt;
	memset(&cnt, 0, sizeof(cnt));
	rc = af_replay_flags(r, &sink, engine_flags, &cnt);
	if (rc < 0) {
		fflush(stdout);
		rc = cli_trace_error(path, r, rc);
		af_trace_reader_free(r);
		return rc;
	}
	af_trace_reader_free(r);
	if (o.fmt == CLI_FMT_TEXT)
		print_counters(o.f, &cnt);
	return cli_finish_output();
}

const struct cli_cmd cli_cmd_replay = {
	.name = "replay",
	.summary = "re-run inference over a trace and print what it infers",
	.usage =
		"usage: antfarm replay TRACE [--format text|jsonl|csv] [--strict-pcid]\n"
		"\n"
		"Re-runs process inference offline over TRACE ('-' for stdin)\n"
		"and prints every inferred event in time order.\n"
		"\n"
		"  -f, --format FMT  text (default): aligned lines, then a\n"
		"                    summary line of the engine's counters;\n"
		"                    jsonl: one JSON object per event with\n"
		"                    time_ns, vcpu, event (create|exit|switch),\n"
		"                    asid (\"0x...\"), prev_asid (switches;\n"
		"                    null for none), serial, icount;\n"
		"                    csv: a header line, then one row per event\n"
		"      --strict-pcid  with PCIDs, an address space that is loaded\n"
		"                    nowhere has exited only once its PCID was\n"
		"                    flushed on every vCPU (default: once it is\n"
		"                    drained; docs/engine.md says why)\n",
	.run = run_replay,
};
