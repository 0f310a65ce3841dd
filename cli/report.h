/*
 * cli/report.h - rendering an evaluation (struct af_eval_result) as text,
 * JSON or CSV; shared by `antfarm eval` and any command that prints the same
 * summary (e.g. `antfarm run`).
 */
#ifndef ANTFARM_CLI_REPORT_H
#define ANTFARM_CLI_REPORT_H

#include <stdio.h>

#include <antfarm/eval.h>

#include "cli.h"

/* Writes r to f in format fmt (CLI_FMT_TEXT, CLI_FMT_JSON or CLI_FMT_CSV).
 * label names the row (text, CSV) and is the "label" member (JSON); NULL
 * for none.
 *
 *   text  a row in the layout of the paper's Table 2 (Process Create, Addr
 *         Spc Create, Inferred Create, Process Exit, Addr Spc Exit, Inferred
 *         Exit, Context Switch, CS Inferred) under its two header lines,
 *         then false-negative, false-positive, lag and window lines
 *   json  one object on one line: label, window{begin_ns,end_ns},
 *         os{process_create,process_exit,as_create,as_exit,switch},
 *         inferred{create,exit,switch}, false_negatives{create,exit},
 *         false_positives{create,exit}, as_false_negatives{create,exit},
 *         as_false_positives{create,exit},
 *         lag{create,exit}{n,mean_us,median_us,p95_us,max_us,min_us}
 *         (end_ns null when the window never closed; lag figures null
 *         when n is 0)
 *   csv   a header line and one row, columns named after the JSON paths
 *         with '_' for '.'
 * Returns 0, or -EINVAL for another format. Write errors are left in f's
 * error indicator. */
int af_report_eval(FILE *f, const struct af_eval_result *r,
		   enum cli_format fmt, const char *label);

#endif
