/*
 * cli/report.c - text, JSON and CSV renderings of an evaluation result
 * (contract in cli/report.h).
 */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

/* Column headings of the paper's Table 2, two lines each. */
static const char *const head1[8] = { "Process", "Addr Spc", "Inferred",
				      "Process", "Addr Spc", "Inferred",
				      "Context", "CS" };
static const char *const head2[8] = { "Create", "Create", "Create", "Exit",
				      "Exit", "Exit", "Switch", "Inferred" };

#define COLW 10 /* width of a Table 2 column */

static void text_row(FILE *f, const struct af_eval_result *r,
		     const char *label)
{
	int lw = (int)strlen(label);
	if (lw < 8)
		lw = 8;
	if (lw > 40)
		lw = 40;
	fprintf(f, "%-*s", lw, "");
	for (int i = 0; i < 8; i++)
		fprintf(f, " %*s", COLW, head1[i]);
	fprintf(f, "\n%-*s", lw, "");
	for (int i = 0; i < 8; i++)
		fprintf(f, " %*s", COLW, head2[i]);
	fprintf(f, "\n%-*.*s", lw, lw, label);
	const uint64_t v[8] = { r->os_process_create, r->os_as_create,
				r->inferred_create, r->os_process_exit,
				r->os_as_exit, r->inferred_exit, r->os_switch,
				r->inferred_switch };
	for (int i = 0; i < 8; i++)
		fprintf(f, " %*" PRIu64, COLW, v[i]);
	fputc('\n', f);
}

static void text_lag(FILE *f, const char *what, const struct af_lag *l)
{
	if (!l->n) {
		fprintf(f, "%s lag: no matched pairs\n", what);
		return;
	}
	fprintf(f,
		"%s lag: n %" PRIu64 ", mean %.3f us, median %.3f us, "
		"p95 %.3f us, max %.3f us, min %.3f us\n",
		what, l->n, l->mean_us, l->median_us, l->p95_us, l->max_us,
		l->min_us);
}

static void text_time(FILE *f, uint64_t ns)
{
	fprintf(f, "%" PRIu64 ".%09" PRIu64 " s", ns / 1000000000u,
		ns % 1000000000u);
}

static void report_text(FILE *f, const struct af_eval_result *r,
			const char *label)
{
	text_row(f, r, label ? label : "");
	fprintf(f,
		"false negatives: create %" PRIu64 ", exit %" PRIu64
		" (address spaces: create %" PRIu64 ", exit %" PRIu64 ")\n",
		r->fn_create, r->fn_exit, r->as_fn_create, r->as_fn_exit);
	fprintf(f,
		"false positives: create %" PRIu64 ", exit %" PRIu64
		" (address spaces: create %" PRIu64 ", exit %" PRIu64 ")\n",
		r->fp_create, r->fp_exit, r->as_fp_create, r->as_fp_exit);
	text_lag(f, "create", &r->lag_create);
	text_lag(f, "exit", &r->lag_exit);
	fputs("window: ", f);
	text_time(f, r->window_begin_ns);
	fputs(" .. ", f);
	if (r->window_end_ns == UINT64_MAX)
		fputs("end of trace", f);
	else
		text_time(f, r->window_end_ns);
	fputc('\n', f);
}

/* A lag figure in JSON: null when there are no samples. */
static void json_num(FILE *f, const char *name, double v, uint64_t n,
		     int comma)
{
	if (n)
		fprintf(f, "\"%s\":%.3f%s", name, v, comma ? "," : "");
	else
		fprintf(f, "\"%s\":null%s", name, comma ? "," : "");
}

static void json_lag(FILE *f, const char *name, const struct af_lag *l)
{
	fprintf(f, "\"%s\":{\"n\":%" PRIu64 ",", name, l->n);
	json_num(f, "mean_us", l->mean_us, l->n, 1);
	json_num(f, "median_us", l->median_us, l->n, 1);
	json_num(f, "p95_us", l->p95_us, l->n, 1);
	json_num(f, "max_us", l->max_us, l->n, 1);
	json_num(f, "min_us", l->min_us, l->n, 0);
	fputc('}', f);
}

static void report_json(FILE *f, const struct af_eval_result *r,
			const char *label)
{
	fputs("{\"label\":", f);
	if (label)
		cli_json_string(f, label);
	else
		fputs("null", f);
	fprintf(f, ",\"window\":{\"begin_ns\":%" PRIu64 ",\"end_ns\":",
		r->window_begin_ns);
	if (r->window_end_ns == UINT64_MAX)
		fputs("null", f);
	else
		fprintf(f, "%" PRIu64, r->window_end_ns);
	fprintf(f,
		"},\"os\":{\"process_create\":%" PRIu64
		",\"process_exit\":%" PRIu64 ",\"as_create\":%" PRIu64
		",\"as_exit\":%" PRIu64 ",\"switch\":%" PRIu64 "}",
		r->os_process_create, r->os_process_exit, r->os_as_create,
		r->os_as_exit, r->os_switch);
	fprintf(f,
		",\"inferred\":{\"create\":%" PRIu64 ",\"exit\":%" PRIu64
		",\"switch\":%" PRIu64 "}",
		r->inferred_create, r->inferred_exit, r->inferred_switch);
	fprintf(f,
		",\"false_negatives\":{\"create\":%" PRIu64 ",\"exit\":%" PRIu64
		"},\"false_positives\":{\"create\":%" PRIu64
		",\"exit\":%" PRIu64 "}",
		r->fn_create, r->fn_exit, r->fp_create, r->fp_exit);
	fprintf(f,
		",\"as_false_negatives\":{\"create\":%" PRIu64
		",\"exit\":%" PRIu64 "},\"as_false_positives\":{\"create\":%"
		PRIu64 ",\"exit\":%" PRIu64 "}",
		r->as_fn_create, r->as_fn_exit, r->as_fp_create,
		r->as_fp_exit);
	fputs(",\"lag\":{", f);
	json_lag(f, "create", &r->lag_create);
	fputc(',', f);
	json_lag(f, "exit", &r->lag_exit);
	fputs("}}\n", f);
}

/* A lag figure in CSV: empty when there are no samples. */
static void csv_num(FILE *f, double v, uint64_t n)
{
	if (n)
		fprintf(f, ",%.3f", v);
	else
		fputc(',', f);
}

static void report_csv(FILE *f, const struct af_eval_result *r,
		       const char *label)
{
	static const char *const lagcols[] = { "n", "mean_us", "median_us",
					       "p95_us", "max_us", "min_us" };
	fputs("label,window_begin_ns,window_end_ns,"
	      "os_process_create,os_process_exit,os_as_create,os_as_exit,"
	      "os_switch,inferred_create,inferred_exit,inferred_switch,"
	      "false_negatives_create,false_negatives_exit,"
	      "false_positives_create,false_positives_exit,"
	      "as_false_negatives_create,as_false_negatives_exit,"
	      "as_false_positives_create,as_false_positives_exit",
	      f);
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 6; i++)
			fprintf(f, ",lag_%s_%s", k ? "exit" : "create",
				lagcols[i]);
	fputc('\n', f);

	cli_csv_field(f, label ? label : "");
	fprintf(f, ",%" PRIu64 ",", r->window_begin_ns);
	if (r->window_end_ns != UINT64_MAX)
		fprintf(f, "%" PRIu64, r->window_end_ns);
	const uint64_t v[16] = {
		r->os_process_create, r->os_process_exit, r->os_as_create,
		r->os_as_exit, r->os_switch, r->inferred_create,
		r->inferred_exit, r->inferred_switch, r->fn_create, r->fn_exit,
		r->fp_create, r->fp_exit, r->as_fn_create, r->as_fn_exit,
		r->as_fp_create, r->as_fp_exit,
	};
	for (int i = 0; i < 16; i++)
		fprintf(f, ",%" PRIu64, v[i]);
	for (int k = 0; k < 2; k++) {
		const struct af_lag *l = k ? &r->lag_exit : &r->lag_create;
		fprintf(f, ",%" PRIu64, l->n);
		csv_num(f, l->mean_us, l->n);
		csv_num(f, l->median_us, l->n);
		csv_num(f, l->p95_us, l->n);
		csv_num(f, l->max_us, l->n);
		csv_num(f, l->min_us, l->n);
	}
	fputc('\n', f);
}

int af_report_eval(FILE *f, const struct af_eval_result *r,
		   enum cli_format fmt, const char *label)
{
	switch (fmt) {
	case CLI_FMT_TEXT:
		report_text(f, r, label);
		return 0;
	case CLI_FMT_JSON:
		report_json(f, r, label);
		return 0;
	case CLI_FMT_CSV:
		report_csv(f, r, label);
		return 0;
	default:
		return -EINVAL;
	}
}
