/*
 * cli/cmd_iosched.c - `antfarm iosched`: the paper's anticipatory-scheduling
 * case study (section 7, Fig. 7). With --simulate it runs the block
 * server's schedulers and disk model (iosched/) in a deterministic
 * discrete-event simulation of guests with sequential readers and prints
 * aggregate throughput per configuration and scheduler. The live mode
 * (QEMU guests over NBD) is not there yet.
 */
#include "cli.h"

#include "iosched/sim.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Long-only option codes. */
enum {
	OPT_SIMULATE = 0x100,
	OPT_VMS,
	OPT_PROCS,
	OPT_SCHED,
	OPT_GUEST,
	OPT_MB,
	OPT_QUICK,
	OPT_SEED,
	OPT_ASSOC,
	OPT_REQUEST_KB,
	OPT_STRIDE_MB,
	OPT_NO_READAHEAD,
};

#define MAX_CONFIGS 3
#define QUICK_MB 20

/* What the command line asked for. */
struct opts {
	int simulate;               /* --simulate given */
	int have_vms, have_procs;   /* --vms / --procs given */
	unsigned vms, procs;        /* their values */
	int sched_all;              /* every scheduler */
	enum ios_sched_kind sched;  /* else this one */
	int guest_all;              /* every guest elevator */
	enum ios_guest_elv guest;   /* else this one */
	uint64_t mb;                /* MB (10^6 bytes) per reader */
	int have_mb;                /* --mb given */
	int quick;                  /* --quick */
	uint64_t seed;              /* --seed */
	double assoc;               /* --assoc-error */
	uint64_t request_kb;        /* --request-kb */
	uint64_t stride_mb;         /* --stride-mb (MiB) */
	int readahead;              /* disk read-ahead on */
	enum cli_format fmt;        /* output format */
};

/* One simulated cell of the table. */
struct cell {
	unsigned vms, procs;         /* configuration */
	enum ios_sched_kind sched;   /* VMM scheduler */
	enum ios_guest_elv guest;    /* guest elevator */
	struct ios_sim_result r;     /* outcome */
};

static const char *cmd = "iosched";

static int parse_unsigned(const char *s, uint64_t lo, uint64_t hi,
			  uint64_t *out)
{
	return cli_parse_u64(s, hi, out) || *out < lo ? -1 : 0;
}

/* A fraction in [0, 1], written as a plain decimal. */
static int parse_fraction(const char *s, double *out)
{
	if (!*s || strspn(s, "0123456789.") != strlen(s))
		return -1;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !(v >= 0 && v <= 1))
		return -1;
	*out = v;
	return 0;
}

static void sim_params(const struct opts *o, unsigned vms, unsigned procs,
		       enum ios_sched_kind k, enum ios_guest_elv g,
		       struct ios_sim_params *p)
{
	ios_sim_params_default(p);
	p->vms = vms;
	p->procs = procs;
	p->sched = k;
	p->guest = g;
	p->bytes_per_proc = o->mb * 1000000u;
	p->request_bytes = (uint32_t)(o->request_kb * 1024);
	p->file_stride_bytes = o->stride_mb << 20;
	p->assoc_error = o->assoc;
	p->seed = o->seed;
	p->disk.readahead = o->readahead;
}

/* Runs one cell; on failure reports it and returns an exit status. */
static int run_cell(const struct opts *o, struct cell *c)
{
	struct ios_sim_params p;
	sim_params(o, c->vms, c->procs, c->sched, c->guest, &p);
	int rc = ios_sim_run(&p, &c->r);
	if (rc == -EINVAL)
		return cli_usage_error(
			cmd,
			"%u VM(s) x %u process(es) with %" PRIu64
			" MB each, files %" PRIu64
			" MiB apart and %" PRIu64
			" KiB requests do not fit the modelled 160 GB disk",
			c->vms, c->procs, o->mb, o->stride_mb, o->request_kb);
	if (rc) {
		cli_error("%s: simulation failed: %s", cmd, strerror(-rc));
		return CLI_EXIT_INPUT;
	}
	return 0;
}

static const char *config_label(unsigned v, unsigned p, char *buf, size_t n)
{
	snprintf(buf, n, "%u VM%s x %u proc%s", v, v == 1 ? "" : "s", p,
		 p == 1 ? "" : "s");
	return buf;
}

/* ---- output ---- */

static void json_cell_fields(FILE *f, const struct cell *c)
{
	const struct ios_sim_result *r = &c->r;
	fprintf(f,
		"\"vms\":%u,\"procs\":%u,\"sched\":\"%s\","
		"\"guest_elevator\":\"%s\",\"aggregate_mb_s\":%.3f,"
		"\"elapsed_s\":%.6f,\"requests\":%" PRIu64
		",\"mistagged\":%" PRIu64 ",\"seeks\":%" PRIu64
		",\"antic_waits\":%" PRIu64 ",\"antic_hits\":%" PRIu64
		",\"antic_broken\":%" PRIu64 ",\"antic_timeouts\":%" PRIu64
		",\"fifo_expired\":%" PRIu64,
		c->vms, c->procs, ios_sched_name(c->sched),
		ios_guest_name(c->guest), r->aggregate_mb_s,
		(double)r->elapsed_ns / 1e9, r->requests, r->mistagged,
		r->disk.seeks, r->sched.antic_started, r->sched.antic_hits,
		r->sched.antic_broken, r->sched.antic_timeouts,
		r->sched.fifo_expired);
}

static void csv_header(FILE *f)
{
	fputs("vms,procs,sched,guest_elevator,mb_per_proc,request_kb,"
	      "aggregate_mb_s,lone_reader_mb_s,elapsed_s,requests,mistagged,"
	      "seeks,antic_waits,antic_hits,antic_broken,antic_timeouts,"
	      "fifo_expired\n",
	      f);
}

static void csv_row(FILE *f, const struct opts *o, const struct cell *c,
		    double lone)
{
	const struct ios_sim_result *r = &c->r;
	fprintf(f,
		"%u,%u,%s,%s,%" PRIu64 ",%" PRIu64 ",%.3f,%.3f,%.6f,%" PRIu64
		",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
		",%" PRIu64 ",%" PRIu64 "\n",
		c->vms, c->procs, ios_sched_name(c->sched),
		ios_guest_name(c->guest), o->mb, o->request_kb,
		r->aggregate_mb_s, lone, (double)r->elapsed_ns / 1e9,
		r->requests, r->mistagged, r->disk.seeks,
		r->sched.antic_started, r->sched.antic_hits,
		r->sched.antic_broken, r->sched.antic_timeouts,
		r->sched.fifo_expired);
}

static void print_single(const struct opts *o, const struct cell *c,
			 double lone)
{
	const struct ios_sim_result *r = &c->r;
	char label[64];
	if (o->fmt == CLI_FMT_JSON) {
		fputc('{', stdout);
		json_cell_fields(stdout, c);
		printf(",\"mb_per_proc\":%" PRIu64 ",\"request_kb\":%" PRIu64
		       ",\"assoc_error\":%.4f,\"lone_reader_mb_s\":%.3f,"
		       "\"per_process\":[",
		       o->mb, o->request_kb, o->assoc, lone);
		for (unsigned i = 0; i < r->nprocs; i++)
			printf("%s{\"vm\":%u,\"proc\":%u,\"mb_s\":%.3f,"
			       "\"finish_s\":%.6f}",
			       i ? "," : "", r->proc[i].vm, r->proc[i].proc,
			       r->proc[i].mb_s,
			       (double)r->proc[i].finish_ns / 1e9);
		printf("],\"disk\":{\"cache_hits\":%" PRIu64
		       ",\"stream_hits\":%" PRIu64 ",\"misses\":%" PRIu64
		       "}}\n",
		       r->disk.cache_hits, r->disk.stream_hits, r->disk.misses);
		return;
	}
	if (o->fmt == CLI_FMT_CSV) {
		csv_header(stdout);
		csv_row(stdout, o, c, lone);
		return;
	}
	printf("simulated: %s, VMM scheduler %s, guest elevator %s\n",
	       config_label(c->vms, c->procs, label, sizeof(label)),
	       ios_sched_name(c->sched), ios_guest_name(c->guest));
	printf("  readers        %" PRIu64 " MB each, %" PRIu64
	       " KiB requests, files %" PRIu64 " MiB apart",
	       o->mb, o->request_kb, o->stride_mb);
	if (o->assoc > 0)
		printf(", %.1f %% mistagged", 100 * o->assoc);
	printf("\n  aggregate      %.2f MB/s (lone sequential reader %.2f "
	       "MB/s: %.0f %%)\n",
	       r->aggregate_mb_s, lone,
	       lone > 0 ? 100 * r->aggregate_mb_s / lone : 0);
	printf("  per process   ");
	for (unsigned i = 0; i < r->nprocs; i++)
		printf(" vm%u/p%u %.2f", r->proc[i].vm, r->proc[i].proc,
		       r->proc[i].mb_s);
	printf("\n  elapsed        %.3f s, %" PRIu64 " requests (%" PRIu64
	       " mistagged), %" PRIu64 " seeks\n",
	       (double)r->elapsed_ns / 1e9, r->requests, r->mistagged,
	       r->disk.seeks);
	printf("  anticipation   %" PRIu64 " waits: %" PRIu64 " hits, %" PRIu64
	       " broken by others, %" PRIu64 " timeouts; %" PRIu64
	       " FIFO expiries\n",
	       r->sched.antic_started, r->sched.antic_hits,
	       r->sched.antic_broken, r->sched.antic_timeouts,
	       r->sched.fifo_expired);
	printf("  disk           %" PRIu64 " cache hits, %" PRIu64
	       " read-ahead stream hits, %" PRIu64 " misses\n",
	       r->disk.cache_hits, r->disk.stream_hits, r->disk.misses);
	printf("  (MB = 10^6 bytes)\n");
}

static void print_table(const struct opts *o, const struct cell *cells,
			size_t n, const unsigned (*cfg)[2], unsigned ncfg,
			const enum ios_sched_kind *ks, unsigned nk,
			const enum ios_guest_elv *gs, unsigned ng, double lone)
{
	if (o->fmt == CLI_FMT_JSON) {
		printf("{\"simulated\":true,\"mb_per_proc\":%" PRIu64
		       ",\"request_kb\":%" PRIu64 ",\"stride_mib\":%" PRIu64
		       ",\"assoc_error\":%.4f,\"lone_reader_mb_s\":%.3f,"
		       "\"cells\":[",
		       o->mb, o->request_kb, o->stride_mb, o->assoc, lone);
		for (size_t i = 0; i < n; i++) {
			printf("%s{", i ? "," : "");
			json_cell_fields(stdout, &cells[i]);
			fputc('}', stdout);
		}
		printf("]}\n");
		return;
	}
	if (o->fmt == CLI_FMT_CSV) {
		csv_header(stdout);
		for (size_t i = 0; i < n; i++)
			csv_row(stdout, o, &cells[i], lone);
		return;
	}
	size_t idx = 0;
	char label[64];
	for (unsigned g = 0; g < ng; g++) {
		printf("%sAggregate throughput, MB/s (MB = 10^6 bytes), "
		       "simulated; guest elevator %s\n",
		       g ? "\n" : "", ios_guest_name(gs[g]));
		printf("%" PRIu64 " MB per reader, %" PRIu64
		       " KiB requests, files %" PRIu64 " MiB apart",
		       o->mb, o->request_kb, o->stride_mb);
		if (o->assoc > 0)
			printf(", %.1f %% mistagged", 100 * o->assoc);
		printf("\n%-16s", "");
		for (unsigned k = 0; k < nk; k++)
			printf(" %10s", ios_sched_name(ks[k]));
		fputc('\n', stdout);
		for (unsigned c = 0; c < ncfg; c++) {
			printf("%-16s", config_label(cfg[c][0], cfg[c][1], label,
						     sizeof(label)));
			for (unsigned k = 0; k < nk; k++)
				printf(" %10.2f", cells[idx++].r.aggregate_mb_s);
			fputc('\n', stdout);
		}
	}
	printf("\nlone sequential reader (1 VM x 1 proc, deadline): %.2f MB/s\n",
	       lone);
}

/* ---- command ---- */

static int run_iosched(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "simulate", no_argument, NULL, OPT_SIMULATE },
		{ "vms", required_argument, NULL, OPT_VMS },
		{ "procs", required_argument, NULL, OPT_PROCS },
		{ "sched", required_argument, NULL, OPT_SCHED },
		{ "guest-elevator", required_argument, NULL, OPT_GUEST },
		{ "mb", required_argument, NULL, OPT_MB },
		{ "quick", no_argument, NULL, OPT_QUICK },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "assoc-error", required_argument, NULL, OPT_ASSOC },
		{ "request-kb", required_argument, NULL, OPT_REQUEST_KB },
		{ "stride-mb", required_argument, NULL, OPT_STRIDE_MB },
		{ "no-readahead", no_argument, NULL, OPT_NO_READAHEAD },
		{ "format", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o;
	uint64_t v;
	int c;

	memset(&o, 0, sizeof(o));
	o.sched_all = 1;
	o.guest = IOS_GUEST_NONE;
	o.mb = 200;
	o.seed = 1;
	o.request_kb = 128;
	o.stride_mb = 1024;
	o.readahead = 1;
	o.fmt = CLI_FMT_TEXT;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_SIMULATE:
			o.simulate = 1;
			break;
		case OPT_VMS:
			if (parse_unsigned(optarg, 1, IOS_SIM_MAX_VMS, &v))
				return cli_usage_error(
					cmd, "--vms wants 1..%u, not '%s'",
					IOS_SIM_MAX_VMS, optarg);
			o.vms = (unsigned)v;
			o.have_vms = 1;
			break;
		case OPT_PROCS:
			if (parse_unsigned(optarg, 1, IOS_SIM_MAX_PROCS, &v))
				return cli_usage_error(
					cmd, "--procs wants 1..%u, not '%s'",
					IOS_SIM_MAX_PROCS, optarg);
			o.procs = (unsigned)v;
			o.have_procs = 1;
			break;
		case OPT_SCHED:
			if (!strcmp(optarg, "all")) {
				o.sched_all = 1;
			} else if (ios_sched_parse(optarg, &o.sched)) {
				return cli_usage_error(
					cmd,
					"unknown scheduler '%s' (noop, deadline, "
					"as-single, as-vm, as-process, all)",
					optarg);
			} else {
				o.sched_all = 0;
			}
			break;
		case OPT_GUEST:
			if (!strcmp(optarg, "all")) {
				o.guest_all = 1;
			} else if (ios_guest_parse(optarg, &o.guest)) {
				return cli_usage_error(
					cmd,
					"unknown guest elevator '%s' (none, "
					"mq-deadline, bfq, all)",
					optarg);
			} else {
				o.guest_all = 0;
			}
			break;
		case OPT_MB:
			if (parse_unsigned(optarg, 1, 1024, &v))
				return cli_usage_error(
					cmd, "--mb wants 1..1024, not '%s'",
					optarg);
			o.mb = v;
			o.have_mb = 1;
			break;
		case OPT_QUICK:
			o.quick = 1;
			break;
		case OPT_SEED:
			if (cli_parse_u64(optarg, UINT64_MAX, &v))
				return cli_usage_error(
					cmd, "--seed wants a number, not '%s'",
					optarg);
			o.seed = v;
			break;
		case OPT_ASSOC:
			if (parse_fraction(optarg, &o.assoc))
				return cli_usage_error(
					cmd,
					"--assoc-error wants a fraction 0..1, "
					"not '%s'",
					optarg);
			break;
		case OPT_REQUEST_KB:
			if (parse_unsigned(optarg, 1, 16384, &v))
				return cli_usage_error(
					cmd,
					"--request-kb wants 1..16384, not '%s'",
					optarg);
			o.request_kb = v;
			break;
		case OPT_STRIDE_MB:
			if (parse_unsigned(optarg, 1, 1u << 20, &v))
				return cli_usage_error(
					cmd,
					"--stride-mb wants 1..1048576, not '%s'",
					optarg);
			o.stride_mb = v;
			break;
		case OPT_NO_READAHEAD:
			o.readahead = 0;
			break;
		case 'f':
			if (cli_parse_format(optarg,
					     1u << CLI_FMT_TEXT |
						     1u << CLI_FMT_JSON |
						     1u << CLI_FMT_CSV,
					     &o.fmt))
				return cli_usage_error(
					cmd,
					"unknown format '%s' (text, json, csv)",
					optarg);
			break;
		default:
			return cli_bad_option(cmd, c, argv);
		}
	}
	if (optind != argc)
		return cli_usage_error(cmd, "unexpected argument '%s'",
				       argv[optind]);
	if (!o.simulate)
		return cli_usage_error(
			cmd,
			"the live block server (QEMU guests over NBD) is not "
			"available yet; use --simulate");
	if (o.quick && !o.have_mb)
		o.mb = QUICK_MB;
	if (o.mb * 1000000u > o.stride_mb << 20)
		return cli_usage_error(cmd,
				       "--mb %" PRIu64
				       " is more than a file (--stride-mb %" PRIu64
				       ")",
				       o.mb, o.stride_mb);

	/* What to run. */
	unsigned cfg[MAX_CONFIGS][2];
	unsigned ncfg = 0;
	if (o.have_vms || o.have_procs) {
		cfg[0][0] = o.have_vms ? o.vms : 1;
		cfg[0][1] = o.have_procs ? o.procs : 1;
		ncfg = 1;
	} else {
		static const unsigned fig7[MAX_CONFIGS][2] = { { 1, 2 },
							       { 2, 1 },
							       { 2, 2 } };
		memcpy(cfg, fig7, sizeof(cfg));
		ncfg = MAX_CONFIGS;
	}
	enum ios_sched_kind ks[IOS_SCHED_COUNT];
	unsigned nk = 0;
	if (o.sched_all)
		for (unsigned k = 0; k < IOS_SCHED_COUNT; k++)
			ks[nk++] = (enum ios_sched_kind)k;
	else
		ks[nk++] = o.sched;
	enum ios_guest_elv gs[IOS_GUEST_COUNT];
	unsigned ng = 0;
	if (o.guest_all)
		for (unsigned g = 0; g < IOS_GUEST_COUNT; g++)
			gs[ng++] = (enum ios_guest_elv)g;
	else
		gs[ng++] = o.guest;

	size_t n = (size_t)ng * ncfg * nk;
	struct cell *cells = calloc(n + 1, sizeof(*cells));
	if (!cells) {
		cli_error("%s: out of memory", cmd);
		return CLI_EXIT_INPUT;
	}
	int rc = 0;
	size_t i = 0;
	for (unsigned g = 0; g < ng && !rc; g++)
		for (unsigned cf = 0; cf < ncfg && !rc; cf++)
			for (unsigned k = 0; k < nk && !rc; k++, i++) {
				cells[i].vms = cfg[cf][0];
				cells[i].procs = cfg[cf][1];
				cells[i].sched = ks[k];
				cells[i].guest = gs[g];
				rc = run_cell(&o, &cells[i]);
			}
	/* The reference: one reader alone (the last slot). */
	struct cell *lone = &cells[n];
	if (!rc) {
		lone->vms = lone->procs = 1;
		lone->sched = IOS_SCHED_DEADLINE;
		lone->guest = IOS_GUEST_NONE;
		rc = run_cell(&o, lone);
	}
	if (!rc) {
		double lone_mb = lone->r.aggregate_mb_s;
		if (n == 1)
			print_single(&o, &cells[0], lone_mb);
		else
			print_table(&o, cells, n, (const unsigned(*)[2])cfg,
				    ncfg, ks, nk, gs, ng, lone_mb);
		rc = cli_finish_output();
	}
	free(cells);
	return rc;
}

const struct cli_cmd cli_cmd_iosched = {
	.name = "iosched",
	.summary = "anticipatory disk scheduling case study (Fig. 7)",
	.usage =
		"usage: antfarm iosched --simulate [--vms V] [--procs P]\n"
		"         [--sched S|all] [--guest-elevator G|all] [--mb N]\n"
		"         [--quick] [--format text|json|csv] [--seed S]\n"
		"         [--assoc-error F] [--request-kb N] [--stride-mb N]\n"
		"         [--no-readahead]\n"
		"\n"
		"The paper's section 7: readers in guests read private files\n"
		"sequentially while the block server (the VMM's driver domain)\n"
		"schedules their requests to one disk. Prints aggregate\n"
		"throughput (MB = 10^6 bytes). Only the simulation exists so\n"
		"far: a deterministic discrete-event model of the readers, the\n"
		"guest elevators, the server's scheduler and a circa-2005\n"
		"7200 RPM ATA disk (docs/iosched.md).\n"
		"\n"
		"  --simulate          run the simulation (required for now)\n"
		"  --vms V, --procs P  one configuration, V guests (1-16) with\n"
		"                      P readers each (1-16; either defaults\n"
		"                      to 1); without both, the paper's three:\n"
		"                      1x2, 2x1, 2x2\n"
		"  --sched S           the server's scheduler: noop, deadline,\n"
		"                      as-single (one stream, as the paper's\n"
		"                      Xen back end), as-vm (a stream per\n"
		"                      guest), as-process (a stream per guest\n"
		"                      process: VMAS), or all (default)\n"
		"  --guest-elevator G  none (default), mq-deadline, bfq, or all\n"
		"  --mb N              MB each reader reads (default 200, the\n"
		"                      paper's segment; --quick: 20)\n"
		"  --quick             a shorter run\n"
		"  --seed S            think times and mistagging (default 1)\n"
		"  --assoc-error F     fraction of requests tagged with the\n"
		"                      wrong process (default 0)\n"
		"  --request-kb N      request size (default 128: read-ahead)\n"
		"  --stride-mb N       file spacing on disk, MiB (default 1024)\n"
		"  --no-readahead      the disk does no read-ahead\n"
		"  -f, --format FMT    text (default): a table like Fig. 7, or\n"
		"                      a summary for one cell; json: one object\n"
		"                      on the last line, holding aggregate_mb_s\n"
		"                      for one cell (one configuration, one\n"
		"                      scheduler, one guest elevator) or a\n"
		"                      cells array; csv: a header and a row per\n"
		"                      cell\n",
	.run = run_iosched,
};
