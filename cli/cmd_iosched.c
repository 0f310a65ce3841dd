/*
 * cli/cmd_iosched.c - `antfarm iosched`: the paper's anticipatory-scheduling
 * case study (section 7, Fig. 7). By default it runs the experiment live
 * (cli/iosched_live.c: the block server on a modelled disk, QEMU guests
 * with sequential readers, process tags from the antfarm plugin); with
 * --simulate it runs the same schedulers and disk model (iosched/) in a
 * deterministic discrete-event simulation instead. Either way it prints
 * aggregate throughput per configuration and scheduler, in the same
 * layouts (text, JSON, CSV), and can draw the bar chart (--plot).
 */
#include "cli.h"
#include "iosched_live.h"

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
	OPT_READER,
	OPT_BFQ_LOW_LATENCY,
	OPT_TIMEOUT,
	OPT_MEM,
	OPT_NO_ASSOC,
	OPT_SERVER,
	OPT_NO_LONE,
	OPT_PLOT,
};

#define MAX_CONFIGS 3
#define QUICK_MB 20
#define LIVE_TIMEOUT_S 1800 /* default limit per live cell */
#define LIVE_MEM_MB 256     /* default guest RAM */

/* What the command line asked for. */
struct opts {
	int simulate;               /* --simulate given */
	int have_vms, have_procs;   /* --vms / --procs given */
	unsigned vms, procs;        /* their values */
	enum ios_sched_kind ks[IOS_SCHED_COUNT]; /* schedulers, in order */
	unsigned nk;                /* how many */
	enum ios_guest_elv gs[IOS_GUEST_COUNT]; /* guest elevators */
	unsigned ng;                /* how many */
	uint64_t mb;                /* MB (10^6 bytes) per reader */
	int have_mb;                /* --mb given */
	int quick;                  /* --quick */
	uint64_t seed;              /* --seed */
	int have_seed;              /* --seed given */
	double assoc;               /* --assoc-error */
	int have_assoc;             /* --assoc-error given */
	uint64_t request_kb;        /* --request-kb */
	uint64_t stride_mb;         /* --stride-mb (MiB) */
	int readahead;              /* disk read-ahead on */
	int buffered;               /* live: --reader buffered */
	int bfq_low_latency;        /* live: --bfq-low-latency */
	enum cli_format fmt;        /* output format */
	const char *plot;           /* --plot PNG, or NULL */
	int lone;                   /* run the lone reader (not --no-lone) */
	unsigned timeout_s;         /* live: limit per cell */
	unsigned mem_mb;            /* live: guest RAM */
	int have_live_opt;          /* a live-only option was given */
	int assoc_tags;             /* live: the plugin publishes tags */
	int use_nbdkit;             /* live: --server nbdkit */
	int verbose;                /* live: show consoles */
};

/* One cell of the table. */
struct cell {
	unsigned vms, procs;         /* configuration */
	enum ios_sched_kind sched;   /* VMM scheduler */
	enum ios_guest_elv guest;    /* guest elevator */
	struct ios_sim_result r;     /* outcome (live: the same terms) */
	struct iol_extra x;          /* live only: what else it measured */
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

/* Runs one simulated cell; on failure reports it and returns an exit
 * status. */
static int run_sim_cell(const struct opts *o, struct cell *c)
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

/* Runs one live cell (env prepared); 0, CLI_EXIT_INPUT after reporting,
 * or RUN_INTERRUPTED. */
static int run_live_cell(const struct opts *o, const struct iol_env *env,
			 struct cell *c)
{
	struct iol_params p = {
		.vms = c->vms,
		.procs = c->procs,
		.sched = c->sched,
		.guest = c->guest,
		.mb = o->mb,
		.request_kb = o->request_kb,
		.stride_mb = o->stride_mb,
		.readahead = o->readahead,
		.buffered = o->buffered,
		.bfq_low_latency = o->bfq_low_latency,
	};
	if (o->verbose)
		fprintf(stderr, "antfarm: iosched: %u VM(s) x %u reader(s), "
			"%s, guest %s\n", c->vms, c->procs,
			ios_sched_name(c->sched), ios_guest_name(c->guest));
	return iol_run_cell(env, &p, &c->r, &c->x);
}

static const char *config_label(unsigned v, unsigned p, char *buf, size_t n)
{
	snprintf(buf, n, "%u VM%s x %u proc%s", v, v == 1 ? "" : "s", p,
		 p == 1 ? "" : "s");
	return buf;
}

/* ---- output ---- */

/* A process tag as JSON. */
static void json_tag(FILE *f, uint32_t tag)
{
	if (tag == IOS_PID_UNKNOWN)
		fputs("null", f);
	else
		fprintf(f, "%" PRIu32, tag);
}

/* A fraction in [0, 1] or null if unknown (< 0). */
static void json_frac(FILE *f, const char *key, double v)
{
	if (v < 0)
		fprintf(f, ",\"%s\":null", key);
	else
		fprintf(f, ",\"%s\":%.4f", key, v);
}

/* The lone reader's MB/s, or null (live with --no-lone). */
static void json_lone(FILE *f, double lone)
{
	if (lone < 0)
		fputs(",\"lone_reader_mb_s\":null", f);
	else
		fprintf(f, ",\"lone_reader_mb_s\":%.3f", lone);
}

/* Largest guest_busy / qemu_cpu of a live cell (-1 if none known). */
static double max_guest_busy(const struct cell *c)
{
	double m = -1;
	for (unsigned v = 0; v < c->vms; v++)
		if (c->x.vm[v].guest_busy > m)
			m = c->x.vm[v].guest_busy;
	return m;
}

static double max_qemu_cpu(const struct cell *c)
{
	double m = -1;
	for (unsigned v = 0; v < c->vms; v++)
		if (c->x.vm[v].qemu_cpu > m)
			m = c->x.vm[v].qemu_cpu;
	return m;
}

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

/* What only a live cell has (JSON, after json_cell_fields). */
static void json_live_fields(FILE *f, const struct cell *c, int detail)
{
	const struct iol_extra *x = &c->x;
	fprintf(f, ",\"untagged\":%" PRIu64 ",\"disk_mb_s\":%.3f,"
		"\"mean_request_kb\":%.1f,\"late_ms_max\":%.3f",
		x->untagged, x->disk_mb_s, x->mean_request_kb, x->late_ms_max);
	json_frac(f, "guest_cpu_busy", max_guest_busy(c));
	if (max_qemu_cpu(c) < 0)
		fputs(",\"qemu_cpu\":null", f);
	else
		fprintf(f, ",\"qemu_cpu\":%.3f", max_qemu_cpu(c));
	json_frac(f, "host_cpu_busy", x->host_busy);
	fprintf(f, ",\"load1\":%.2f,\"boot_s\":%.1f", x->load1, x->boot_s);
	if (!detail)
		return;
	fputs(",\"guests\":[", f);
	for (unsigned v = 0; v < c->vms; v++) {
		fprintf(f, "%s{\"vm\":%u", v ? "," : "", v);
		json_frac(f, "guest_cpu_busy", x->vm[v].guest_busy);
		if (x->vm[v].qemu_cpu < 0)
			fputs(",\"qemu_cpu\":null}", f);
		else
			fprintf(f, ",\"qemu_cpu\":%.3f}", x->vm[v].qemu_cpu);
	}
	fputc(']', f);
}

static const char *mode_word(const struct opts *o)
{
	return o->simulate ? "simulated" : "live";
}

/* How the readers read: the simulation's modelled readers, like
 * --reader direct, have one request outstanding at a time. */
static const char *reader_word(const struct opts *o)
{
	return o->buffered ? "buffered" : "direct";
}

static void csv_header(FILE *f)
{
	fputs("vms,procs,sched,guest_elevator,mb_per_proc,request_kb,"
	      "aggregate_mb_s,lone_reader_mb_s,elapsed_s,requests,mistagged,"
	      "seeks,antic_waits,antic_hits,antic_broken,antic_timeouts,"
	      "fifo_expired,simulated,assoc_error,untagged,disk_mb_s,"
	      "guest_cpu_busy,qemu_cpu,host_cpu_busy,reader\n",
	      f);
}

/* The share of mistagged requests of a cell. */
static double cell_assoc_error(const struct cell *c)
{
	return c->r.requests ? (double)c->r.mistagged / (double)c->r.requests
			     : 0;
}

static void csv_row(FILE *f, const struct opts *o, const struct cell *c,
		    double lone)
{
	const struct ios_sim_result *r = &c->r;
	fprintf(f,
		"%u,%u,%s,%s,%" PRIu64 ",%" PRIu64 ",%.3f,",
		c->vms, c->procs, ios_sched_name(c->sched),
		ios_guest_name(c->guest), o->mb, o->request_kb,
		r->aggregate_mb_s);
	if (lone >= 0)
		fprintf(f, "%.3f", lone);
	fprintf(f, ",%.6f,%" PRIu64
		",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
		",%" PRIu64 ",%" PRIu64 ",%s,%.4f,",
		(double)r->elapsed_ns / 1e9,
		r->requests, r->mistagged, r->disk.seeks,
		r->sched.antic_started, r->sched.antic_hits,
		r->sched.antic_broken, r->sched.antic_timeouts,
		r->sched.fifo_expired, o->simulate ? "true" : "false",
		cell_assoc_error(c));
	if (!o->simulate) {
		double gb = max_guest_busy(c), qc = max_qemu_cpu(c);
		fprintf(f, "%" PRIu64 ",%.3f,", c->x.untagged, c->x.disk_mb_s);
		if (gb >= 0)
			fprintf(f, "%.4f", gb);
		fputc(',', f);
		if (qc >= 0)
			fprintf(f, "%.3f", qc);
		fprintf(f, ",%.4f", c->x.host_busy);
	} else {
		fputs(",,,,", f);
	}
	fprintf(f, ",%s\n", reader_word(o));
}

/* "2 guests: 97 %, 95 %" style list of guest CPU and QEMU CPU. */
static void text_cpu(const struct cell *c)
{
	printf("  CPU            guest busy");
	for (unsigned v = 0; v < c->vms; v++) {
		if (c->x.vm[v].guest_busy >= 0)
			printf("%s %.0f %%", v ? "," : "",
			       100 * c->x.vm[v].guest_busy);
		else
			printf("%s ?", v ? "," : "");
	}
	printf("; QEMU");
	for (unsigned v = 0; v < c->vms; v++) {
		if (c->x.vm[v].qemu_cpu >= 0)
			printf("%s %.2f", v ? "," : "", c->x.vm[v].qemu_cpu);
		else
			printf("%s ?", v ? "," : "");
	}
	printf(" host CPU s/s; host %.0f %% busy, load %.2f at the start; "
	       "boot %.1f s\n",
	       100 * c->x.host_busy, c->x.load1, c->x.boot_s);
}

static void print_single(const struct opts *o, const struct cell *c,
			 double lone)
{
	const struct ios_sim_result *r = &c->r;
	char label[64];
	if (o->fmt == CLI_FMT_JSON) {
		fputc('{', stdout);
		json_cell_fields(stdout, c);
		printf(",\"simulated\":%s,\"reader\":\"%s\",\"bfq_low_latency\":%s,"
		       "\"mb_per_proc\":%" PRIu64
		       ",\"request_kb\":%" PRIu64 ",\"stride_mib\":%" PRIu64
		       ",\"assoc_error\":%.4f",
		       o->simulate ? "true" : "false", reader_word(o),
		       o->bfq_low_latency ? "true" : "false", o->mb,
		       o->request_kb, o->stride_mb,
		       o->simulate ? o->assoc : cell_assoc_error(c));
		json_lone(stdout, lone);
		if (!o->simulate)
			json_live_fields(stdout, c, 1);
		printf(",\"per_process\":[");
		for (unsigned i = 0; i < r->nprocs; i++) {
			printf("%s{\"vm\":%u,\"proc\":%u,\"mb_s\":%.3f,"
			       "\"finish_s\":%.6f",
			       i ? "," : "", r->proc[i].vm, r->proc[i].proc,
			       r->proc[i].mb_s,
			       (double)r->proc[i].finish_ns / 1e9);
			if (!o->simulate) {
				printf(",\"requests\":%" PRIu64 ",\"tag\":",
				       c->x.rd[i].requests);
				json_tag(stdout, c->x.rd[i].tag);
				printf(",\"tag_share\":%.4f",
				       c->x.rd[i].tag_share);
			}
			fputc('}', stdout);
		}
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
	printf("%s: %s, VMM scheduler %s, guest elevator %s\n", mode_word(o),
	       config_label(c->vms, c->procs, label, sizeof(label)),
	       ios_sched_name(c->sched), ios_guest_name(c->guest));
	printf("  readers        %" PRIu64 " MB each, %" PRIu64
	       " KiB requests, %s, %s %" PRIu64 " MiB apart",
	       o->mb, o->request_kb, reader_word(o),
	       o->simulate ? "files" : "regions", o->stride_mb);
	if (o->simulate && o->assoc > 0)
		printf(", %.1f %% mistagged", 100 * o->assoc);
	printf("\n  aggregate      %.2f MB/s", r->aggregate_mb_s);
	if (lone >= 0)
		printf(" (lone sequential reader %.2f MB/s: %.0f %%)", lone,
		       lone > 0 ? 100 * r->aggregate_mb_s / lone : 0);
	printf("\n  per process   ");
	for (unsigned i = 0; i < r->nprocs; i++)
		printf(" vm%u/p%u %.2f", r->proc[i].vm, r->proc[i].proc,
		       r->proc[i].mb_s);
	if (o->simulate) {
		printf("\n  elapsed        %.3f s, %" PRIu64 " requests (%" PRIu64
		       " mistagged), %" PRIu64 " seeks\n",
		       (double)r->elapsed_ns / 1e9, r->requests, r->mistagged,
		       r->disk.seeks);
	} else {
		printf("\n  elapsed        %.3f s; the server saw %" PRIu64
		       " requests of the readers (mean %.1f KiB) and moved "
		       "the head %" PRIu64 " times\n",
		       (double)r->elapsed_ns / 1e9, r->requests,
		       c->x.mean_request_kb, r->disk.seeks);
		printf("  association    %.1f %% of the requests carried a wrong "
		       "process tag (%" PRIu64 " untagged); tags:",
		       100 * cell_assoc_error(c), c->x.untagged);
		for (unsigned i = 0; i < r->nprocs; i++) {
			if (c->x.rd[i].tag == IOS_PID_UNKNOWN)
				printf(" vm%u/p%u none", r->proc[i].vm,
				       r->proc[i].proc);
			else
				printf(" vm%u/p%u tag %" PRIu32 " (%.0f %%)",
				       r->proc[i].vm, r->proc[i].proc,
				       c->x.rd[i].tag,
				       100 * c->x.rd[i].tag_share);
		}
		fputc('\n', stdout);
	}
	printf("  anticipation   %" PRIu64 " waits: %" PRIu64 " hits, %" PRIu64
	       " broken by others, %" PRIu64 " timeouts; %" PRIu64
	       " FIFO expiries\n",
	       r->sched.antic_started, r->sched.antic_hits,
	       r->sched.antic_broken, r->sched.antic_timeouts,
	       r->sched.fifo_expired);
	printf("  disk           %" PRIu64 " cache hits, %" PRIu64
	       " read-ahead stream hits, %" PRIu64 " misses\n",
	       r->disk.cache_hits, r->disk.stream_hits, r->disk.misses);
	if (!o->simulate) {
		printf("  server         %.2f MB/s from the readers' first "
		       "request to their last completion; completions at most "
		       "%.1f ms late\n",
		       c->x.disk_mb_s, c->x.late_ms_max);
		text_cpu(c);
	}
	printf("  (MB = 10^6 bytes)\n");
}

/* One table of cells (one value per cell from get) for each guest
 * elevator. */
static void text_grid(const struct opts *o, const struct cell *cells,
		      const unsigned (*cfg)[2], unsigned ncfg,
		      const char *heading, int percent)
{
	size_t idx = 0;
	char label[64];
	for (unsigned g = 0; g < o->ng; g++) {
		printf("%s%s; guest elevator %s\n", g ? "\n" : "", heading,
		       ios_guest_name(o->gs[g]));
		if (!percent) {
			printf("%" PRIu64 " MB per reader, %" PRIu64
			       " KiB requests, %s, %s %" PRIu64 " MiB apart",
			       o->mb, o->request_kb, reader_word(o),
			       o->simulate ? "files" : "regions",
			       o->stride_mb);
			if (o->simulate && o->assoc > 0)
				printf(", %.1f %% mistagged", 100 * o->assoc);
			fputc('\n', stdout);
		}
		printf("%-16s", "");
		for (unsigned k = 0; k < o->nk; k++)
			printf(" %10s", ios_sched_name(o->ks[k]));
		fputc('\n', stdout);
		for (unsigned c = 0; c < ncfg; c++) {
			printf("%-16s", config_label(cfg[c][0], cfg[c][1], label,
						     sizeof(label)));
			for (unsigned k = 0; k < o->nk; k++, idx++) {
				if (percent)
					printf(" %10.1f",
					       100 * cell_assoc_error(&cells[idx]));
				else
					printf(" %10.2f",
					       cells[idx].r.aggregate_mb_s);
			}
			fputc('\n', stdout);
		}
	}
}

static void print_table(const struct opts *o, const struct cell *cells,
			size_t n, const unsigned (*cfg)[2], unsigned ncfg,
			double lone)
{
	if (o->fmt == CLI_FMT_JSON) {
		uint64_t req = 0, bad = 0;
		for (size_t i = 0; i < n; i++) {
			req += cells[i].r.requests;
			bad += cells[i].r.mistagged;
		}
		printf("{\"simulated\":%s,\"reader\":\"%s\",\"bfq_low_latency\":%s,"
		       "\"mb_per_proc\":%" PRIu64
		       ",\"request_kb\":%" PRIu64 ",\"stride_mib\":%" PRIu64
		       ",\"assoc_error\":%.4f",
		       o->simulate ? "true" : "false", reader_word(o),
		       o->bfq_low_latency ? "true" : "false", o->mb,
		       o->request_kb, o->stride_mb,
		       o->simulate ? o->assoc :
		       req ? (double)bad / (double)req : 0);
		json_lone(stdout, lone);
		printf(",\"cells\":[");
		for (size_t i = 0; i < n; i++) {
			printf("%s{", i ? "," : "");
			json_cell_fields(stdout, &cells[i]);
			printf(",\"assoc_error\":%.4f",
			       cell_assoc_error(&cells[i]));
			if (!o->simulate)
				json_live_fields(stdout, &cells[i], 0);
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
	char heading[96];
	snprintf(heading, sizeof(heading),
		 "Aggregate throughput, MB/s (MB = 10^6 bytes), %s",
		 mode_word(o));
	text_grid(o, cells, cfg, ncfg, heading, 0);
	if (!o->simulate) {
		printf("\n");
		text_grid(o, cells, cfg, ncfg,
			  "Association error, % of the readers' requests with "
			  "a wrong process tag", 1);
		double gmin = 2, gmax = -1, qmin = 100, qmax = -1;
		double hmin = 2, hmax = -1, lmin = 1e9, lmax = -1;
		for (size_t i = 0; i < n; i++) {
			const struct cell *c = &cells[i];
			for (unsigned v = 0; v < c->vms; v++) {
				double gb = c->x.vm[v].guest_busy;
				double qc = c->x.vm[v].qemu_cpu;
				if (gb >= 0 && gb < gmin)
					gmin = gb;
				if (gb > gmax)
					gmax = gb;
				if (qc >= 0 && qc < qmin)
					qmin = qc;
				if (qc > qmax)
					qmax = qc;
			}
			if (c->x.host_busy < hmin)
				hmin = c->x.host_busy;
			if (c->x.host_busy > hmax)
				hmax = c->x.host_busy;
			if (c->x.load1 < lmin)
				lmin = c->x.load1;
			if (c->x.load1 > lmax)
				lmax = c->x.load1;
		}
		printf("\nCPU while the readers ran: guests %.0f-%.0f %% busy, "
		       "each QEMU %.2f-%.2f host CPU s/s, host %.0f-%.0f %% "
		       "busy, load %.2f-%.2f at the start\n",
		       gmax >= 0 ? 100 * gmin : 0, gmax >= 0 ? 100 * gmax : 0,
		       qmax >= 0 ? qmin : 0, qmax >= 0 ? qmax : 0, 100 * hmin,
		       100 * hmax, lmin, lmax);
	}
	if (lone >= 0)
		printf("\nlone sequential reader (1 VM x 1 proc, deadline): "
		       "%.2f MB/s\n",
		       lone);
}

/* The bar chart. 0 or CLI_EXIT_INPUT. */
static int plot_cells(const struct opts *o, const struct cell *cells,
		      size_t n, const unsigned (*cfg)[2], unsigned ncfg,
		      double lone)
{
	unsigned nrows = o->ng * ncfg;
	char (*labels)[64] = calloc(nrows, sizeof(*labels));
	const char **rows = calloc(nrows, sizeof(*rows));
	const char *series[IOS_SCHED_COUNT];
	double *vals = calloc(n, sizeof(*vals));
	int rc = CLI_EXIT_INPUT;
	if (!labels || !rows || !vals) {
		cli_error("iosched: out of memory");
		goto out;
	}
	for (unsigned g = 0, i = 0; g < o->ng; g++)
		for (unsigned c = 0; c < ncfg; c++, i++) {
			if (o->ng > 1)
				snprintf(labels[i], sizeof(labels[i]),
					 "%ux%u\n%s", cfg[c][0], cfg[c][1],
					 ios_guest_name(o->gs[g]));
			else
				snprintf(labels[i], sizeof(labels[i]),
					 "%u VM%s x %u proc%s", cfg[c][0],
					 cfg[c][0] == 1 ? "" : "s", cfg[c][1],
					 cfg[c][1] == 1 ? "" : "s");
			rows[i] = labels[i];
		}
	for (unsigned k = 0; k < o->nk; k++)
		series[k] = ios_sched_name(o->ks[k]);
	for (size_t i = 0; i < n; i++)
		vals[i] = cells[i].r.aggregate_mb_s;
	char title[160];
	snprintf(title, sizeof(title),
		 "Sequential readers on one disk (Antfarm Fig. 7), %s: "
		 "%" PRIu64 " MB per reader%s%s",
		 mode_word(o), o->mb, o->ng == 1 ? ", guest elevator " : "",
		 o->ng == 1 ? ios_guest_name(o->gs[0]) : "");
	rc = iol_plot(o->plot, title, rows, nrows, series, o->nk, vals, lone);
out:
	free(labels);
	free(rows);
	free(vals);
	return rc;
}

/* Parses a comma-separated list of distinct names with by_name into
 * vals[0..*n) ("all": 0..count-1). 0 or -1. */
static int parse_list(const char *arg, unsigned count,
		      int (*by_name)(const char *w, unsigned *v),
		      unsigned *vals, unsigned *n_out)
{
	char buf[128];
	unsigned n = 0;

	if (!strcmp(arg, "all")) {
		for (unsigned k = 0; k < count; k++)
			vals[k] = k;
		*n_out = count;
		return 0;
	}
	if (!*arg || *arg == ',' || strlen(arg) >= sizeof(buf) ||
	    arg[strlen(arg) - 1] == ',' || strstr(arg, ",,"))
		return -1;
	strcpy(buf, arg);
	for (char *save = NULL, *w = strtok_r(buf, ",", &save); w;
	     w = strtok_r(NULL, ",", &save)) {
		unsigned v;
		if (by_name(w, &v) || n == count)
			return -1;
		for (unsigned i = 0; i < n; i++)
			if (vals[i] == v)
				return -1;
		vals[n++] = v;
	}
	if (!n)
		return -1;
	*n_out = n;
	return 0;
}

static int sched_by_name(const char *w, unsigned *v)
{
	enum ios_sched_kind k;
	if (ios_sched_parse(w, &k))
		return -1;
	*v = (unsigned)k;
	return 0;
}

static int guest_by_name(const char *w, unsigned *v)
{
	enum ios_guest_elv g;
	if (ios_guest_parse(w, &g))
		return -1;
	*v = (unsigned)g;
	return 0;
}

/* Schedulers (--sched) and guest elevators (--guest-elevator). */
static int parse_scheds(const char *arg, struct opts *o)
{
	unsigned v[IOS_SCHED_COUNT], n;
	if (parse_list(arg, IOS_SCHED_COUNT, sched_by_name, v, &n))
		return -1;
	for (unsigned i = 0; i < n; i++)
		o->ks[i] = (enum ios_sched_kind)v[i];
	o->nk = n;
	return 0;
}

static int parse_guests(const char *arg, struct opts *o)
{
	unsigned v[IOS_GUEST_COUNT], n;
	if (parse_list(arg, IOS_GUEST_COUNT, guest_by_name, v, &n))
		return -1;
	for (unsigned i = 0; i < n; i++)
		o->gs[i] = (enum ios_guest_elv)v[i];
	o->ng = n;
	return 0;
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
		{ "reader", required_argument, NULL, OPT_READER },
		{ "bfq-low-latency", no_argument, NULL, OPT_BFQ_LOW_LATENCY },
		{ "format", required_argument, NULL, 'f' },
		{ "plot", required_argument, NULL, OPT_PLOT },
		{ "no-lone", no_argument, NULL, OPT_NO_LONE },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "mem", required_argument, NULL, OPT_MEM },
		{ "no-assoc", no_argument, NULL, OPT_NO_ASSOC },
		{ "server", required_argument, NULL, OPT_SERVER },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o;
	uint64_t v;
	int c;

	memset(&o, 0, sizeof(o));
	parse_scheds("all", &o);
	o.gs[0] = IOS_GUEST_NONE;
	o.ng = 1;
	o.mb = 200;
	o.seed = 1;
	o.request_kb = 128;
	o.stride_mb = 1024;
	o.readahead = 1;
	o.fmt = CLI_FMT_TEXT;
	o.lone = 1;
	o.timeout_s = LIVE_TIMEOUT_S;
	o.mem_mb = LIVE_MEM_MB;
	o.assoc_tags = 1;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:v", longopts, NULL)) != -1) {
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
			if (parse_scheds(optarg, &o))
				return cli_usage_error(
					cmd,
					"unknown scheduler '%s' (noop, deadline, "
					"as-single, as-vm, as-process, a "
					"comma-separated list of them, or all)",
					optarg);
			break;
		case OPT_GUEST:
			if (parse_guests(optarg, &o))
				return cli_usage_error(
					cmd,
					"unknown guest elevator '%s' (none, "
					"mq-deadline, bfq, a comma-separated "
					"list of them, or all)",
					optarg);
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
			o.have_seed = 1;
			break;
		case OPT_ASSOC:
			if (parse_fraction(optarg, &o.assoc))
				return cli_usage_error(
					cmd,
					"--assoc-error wants a fraction 0..1, "
					"not '%s'",
					optarg);
			o.have_assoc = 1;
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
		case OPT_READER:
			if (!strcmp(optarg, "direct"))
				o.buffered = 0;
			else if (!strcmp(optarg, "buffered"))
				o.buffered = 1;
			else
				return cli_usage_error(
					cmd, "--reader wants direct or buffered, "
					     "not '%s'",
					optarg);
			if (o.buffered)
				o.have_live_opt = 1;
			break;
		case OPT_BFQ_LOW_LATENCY:
			o.bfq_low_latency = 1;
			o.have_live_opt = 1;
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
		case OPT_PLOT:
			if (!*optarg)
				return cli_usage_error(cmd,
						       "--plot needs a file");
			o.plot = optarg;
			break;
		case OPT_NO_LONE:
			o.lone = 0;
			break;
		case OPT_TIMEOUT:
			if (parse_unsigned(optarg, 1, 86400, &v))
				return cli_usage_error(
					cmd,
					"--timeout wants 1..86400 seconds, not "
					"'%s'",
					optarg);
			o.timeout_s = (unsigned)v;
			o.have_live_opt = 1;
			break;
		case OPT_MEM:
			if (parse_unsigned(optarg, 128, 4096, &v))
				return cli_usage_error(
					cmd, "--mem wants 128..4096 MB, not '%s'",
					optarg);
			o.mem_mb = (unsigned)v;
			o.have_live_opt = 1;
			break;
		case OPT_NO_ASSOC:
			o.assoc_tags = 0;
			o.have_live_opt = 1;
			break;
		case OPT_SERVER:
			if (!strcmp(optarg, "nbdkit"))
				o.use_nbdkit = 1;
			else if (!strcmp(optarg, "antfarm"))
				o.use_nbdkit = 0;
			else
				return cli_usage_error(
					cmd, "--server wants antfarm or nbdkit, "
					     "not '%s'",
					optarg);
			o.have_live_opt = 1;
			break;
		case 'v':
			o.verbose = 1;
			o.have_live_opt = 1;
			break;
		default:
			return cli_bad_option(cmd, c, argv);
		}
	}
	if (optind != argc)
		return cli_usage_error(cmd, "unexpected argument '%s'",
				       argv[optind]);
	if (o.quick && !o.have_mb)
		o.mb = QUICK_MB;
	if (o.mb * 1000000u > o.stride_mb << 20)
		return cli_usage_error(cmd,
				       "--mb %" PRIu64
				       " is more than a file (--stride-mb %" PRIu64
				       ")",
				       o.mb, o.stride_mb);
	if (o.bfq_low_latency) {
		int bfq = 0;
		for (unsigned i = 0; i < o.ng; i++)
			bfq |= o.gs[i] == IOS_GUEST_BFQ;
		if (!bfq)
			return cli_usage_error(cmd, "--bfq-low-latency needs "
					       "--guest-elevator bfq");
	}
	if (o.simulate && o.have_live_opt)
		return cli_usage_error(cmd, "--timeout, --mem, --no-assoc, "
				       "--server, --reader buffered, "
				       "--bfq-low-latency and --verbose apply "
				       "to the live mode, not --simulate");
	if (!o.simulate) {
		/* The live mode's own limits. */
		if (o.have_seed || o.have_assoc)
			return cli_usage_error(
				cmd, "--seed and --assoc-error apply to "
				"--simulate (the live mode measures the "
				"association error)");
		if (o.have_vms && o.vms > IOL_MAX_VMS)
			return cli_usage_error(cmd, "--vms: at most %u live "
					       "guests", IOL_MAX_VMS);
		if ((o.stride_mb * 1024) % o.request_kb)
			return cli_usage_error(
				cmd,
				"--stride-mb %" PRIu64 " is not a whole number "
				"of %" PRIu64 " KiB requests (the readers' dd "
				"skips whole blocks)",
				o.stride_mb, o.request_kb);
		/* (Then --mb rounded up to whole requests still fits a
		 * region: the region is a whole number of them.) */
	}

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
	if (!o.simulate) {
		struct ios_disk_params dp;
		ios_disk_params_default(&dp);
		for (unsigned i = 0; i < ncfg; i++)
			if ((uint64_t)cfg[i][0] * cfg[i][1] *
				    (o.stride_mb << 20) >
			    dp.capacity_sectors * IOS_SECTOR_BYTES)
				return cli_usage_error(
					cmd,
					"%u VM(s) x %u reader(s), %" PRIu64
					" MiB apart, do not fit the modelled "
					"160 GB disk",
					cfg[i][0], cfg[i][1], o.stride_mb);
	}

	size_t n = (size_t)o.ng * ncfg * o.nk;
	struct cell *cells = calloc(n + 1, sizeof(*cells));
	if (!cells) {
		cli_error("%s: out of memory", cmd);
		return CLI_EXIT_INPUT;
	}
	static struct iol_env env;
	int rc = 0;
	if (!o.simulate) {
		memset(&env, 0, sizeof(env));
		env.mem_mb = o.mem_mb;
		env.timeout_s = o.timeout_s;
		env.assoc = o.assoc_tags;
		env.use_nbdkit = o.use_nbdkit;
		env.verbose = o.verbose;
		rc = iol_prepare(&env);
	}
	size_t i = 0;
	for (unsigned g = 0; g < o.ng && !rc; g++)
		for (unsigned cf = 0; cf < ncfg && !rc; cf++)
			for (unsigned k = 0; k < o.nk && !rc; k++, i++) {
				cells[i].vms = cfg[cf][0];
				cells[i].procs = cfg[cf][1];
				cells[i].sched = o.ks[k];
				cells[i].guest = o.gs[g];
				rc = o.simulate ? run_sim_cell(&o, &cells[i]) :
						  run_live_cell(&o, &env,
								&cells[i]);
			}
	/* The reference: one reader alone (the last slot). */
	struct cell *lone = &cells[n];
	double lone_mb = -1;
	if (!rc && (o.simulate || o.lone)) {
		lone->vms = lone->procs = 1;
		lone->sched = IOS_SCHED_DEADLINE;
		lone->guest = IOS_GUEST_NONE;
		rc = o.simulate ? run_sim_cell(&o, lone) :
				  run_live_cell(&o, &env, lone);
		if (!rc)
			lone_mb = lone->r.aggregate_mb_s;
	}
	if (rc == RUN_INTERRUPTED) {
		free(cells);
		return iol_die_of_signal();
	}
	if (!rc) {
		if (n == 1)
			print_single(&o, &cells[0], lone_mb);
		else
			print_table(&o, cells, n, (const unsigned(*)[2])cfg,
				    ncfg, lone_mb);
		rc = cli_finish_output();
	}
	if (!rc && o.plot)
		rc = plot_cells(&o, cells, n, (const unsigned(*)[2])cfg, ncfg,
				lone_mb);
	free(cells);
	return rc;
}

const struct cli_cmd cli_cmd_iosched = {
	.name = "iosched",
	.summary = "anticipatory disk scheduling case study (Fig. 7)",
	.usage =
		"usage: antfarm iosched [--simulate] [--vms V] [--procs P]\n"
		"         [--sched LIST|all] [--guest-elevator LIST|all]\n"
		"         [--mb N] [--quick] [--format text|json|csv]\n"
		"         [--plot FILE.png] [--no-lone] [--request-kb N]\n"
		"         [--stride-mb N] [--no-readahead]\n"
		"         live: [--timeout S] [--mem MB] [--no-assoc] [--verbose]\n"
		"               [--server antfarm|nbdkit] [--reader direct|buffered]\n"
		"               [--bfq-low-latency]\n"
		"         --simulate: [--seed S] [--assoc-error F]\n"
		"\n"
		"The paper's section 7: readers in guests read private regions\n"
		"of their disks sequentially while the block server (the VMM's\n"
		"driver domain) schedules their requests to one disk. Prints\n"
		"aggregate throughput: all bytes over the time from the start\n"
		"of the readers to the last one's end (MB = 10^6 bytes).\n"
		"\n"
		"Live (default): for each cell the block server\n"
		"(antfarm-blockserver: the scheduler and a modelled\n"
		"circa-2005 7200 RPM disk, sparse image files) and V QEMU\n"
		"guests (x86_64, TCG, the antfarm plugin publishing which guest\n"
		"process notified the disk) are started; once all have booted,\n"
		"P busybox dd readers per guest start together, each reading\n"
		"its region of /dev/vda with synchronous O_DIRECT reads of one\n"
		"request each (--reader direct: the paper's synchronous\n"
		"sequential readers) or through the guest's page cache\n"
		"(--reader buffered: its read-ahead keeps a second request in\n"
		"flight). Each cell takes a boot (~5-10 s) plus the reads.\n"
		"The association error (requests whose process tag is not their\n"
		"reader's own) comes from the server's request log.\n"
		"--simulate: a deterministic discrete-event model of the same\n"
		"(docs/iosched.md), in well under a second.\n"
		"\n"
		"  --simulate          run the simulation instead\n"
		"  --vms V, --procs P  one configuration, V guests (1-16; live\n"
		"                      1-8) with P readers each (1-16; either\n"
		"                      defaults to 1); without both, the\n"
		"                      paper's three: 1x2, 2x1, 2x2\n"
		"  --sched LIST        the server's scheduler(s), comma-\n"
		"                      separated: noop, deadline, as-single (one\n"
		"                      stream, as the paper's Xen back end),\n"
		"                      as-vm (a stream per guest), as-process\n"
		"                      (a stream per guest process: VMAS); or\n"
		"                      all (default)\n"
		"  --guest-elevator L  none (default), mq-deadline, bfq (live:\n"
		"                      low_latency=0, see --bfq-low-latency),\n"
		"                      a list, or all\n"
		"  --mb N              MB each reader reads (default 200, the\n"
		"                      paper's segment; --quick: 20)\n"
		"  --quick             a shorter run\n"
		"  --request-kb N      request size (default 128: read-ahead);\n"
		"                      live: dd's block size and the guest's\n"
		"                      read_ahead_kb\n"
		"  --stride-mb N       region spacing on disk, MiB (default 1024)\n"
		"  --no-readahead      the modelled disk does no read-ahead\n"
		"  --no-lone           skip the lone-reader reference run\n"
		"  -f, --format FMT    text (default): a table like Fig. 7, or\n"
		"                      a summary for one cell; json: one object\n"
		"                      on the last line, holding aggregate_mb_s\n"
		"                      and assoc_error for one cell (one\n"
		"                      configuration, scheduler and guest\n"
		"                      elevator) or a cells array; csv: a\n"
		"                      header and a row per cell\n"
		"  --plot FILE.png     also draw the bar chart (gnuplot)\n"
		"  --timeout S         live: limit per cell (default 1800)\n"
		"  --mem MB            live: guest RAM (default 256)\n"
		"  --no-assoc          live: the QEMU plugin publishes no process\n"
		"                      tags (requests reach the server untagged)\n"
		"  --reader R          live: direct (default; O_DIRECT, one\n"
		"                      synchronous request at a time, like the\n"
		"                      simulation's readers) or buffered (the\n"
		"                      guest's page cache and read-ahead)\n"
		"  --bfq-low-latency   live: a guest bfq keeps Linux's default\n"
		"                      low_latency=1 (its heuristics for\n"
		"                      interactive programs then stop it from\n"
		"                      idling for the readers); default: bfq set\n"
		"                      for throughput, low_latency=0\n"
		"  --server S          live: antfarm (default: antfarm-blockserver,\n"
		"                      our NBD server) or nbdkit (nbdkit with\n"
		"                      nbdkit-antfarm-plugin.so; same settings)\n"
		"  -v, --verbose       live: guest consoles, QEMU and server\n"
		"                      messages on stderr\n"
		"  --seed S            simulation: think times, mistagging\n"
		"  --assoc-error F     simulation: fraction of requests tagged\n"
		"                      with the wrong process (default 0)\n"
		"\n"
		"Environment (live): ANTFARM_PLUGIN, ANTFARM_NBDKIT_PLUGIN,\n"
		"ANTFARM_BUILD_GUEST, ANTFARM_QEMU, ANTFARM_SHM_DIR, TMPDIR.\n",
	.run = run_iosched,
};
