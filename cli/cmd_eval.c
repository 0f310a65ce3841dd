/*
 * cli/cmd_eval.c - `antfarm eval TRACE`: replays a trace and scores what is
 * inferred against the trace's ground truth (af_eval_trace), printed by
 * cli/report.c.
 */
#include "cli.h"
#include "report.h"

#include <string.h>

static int run_eval(int argc, char **argv)
{
	enum cli_format fmt = CLI_FMT_TEXT;
	unsigned engine_flags = 0;
	const char *path;
	struct af_trace_reader *r;
	int rc = cli_trace_command("eval", argc, argv,
				   1u << CLI_FMT_TEXT | 1u << CLI_FMT_JSON |
					   1u << CLI_FMT_CSV,
				   &fmt, &engine_flags, &path, &r);
	if (rc)
		return rc;
	struct af_eval_result res;
	rc = af_eval_trace_flags(r, engine_flags, &res);
	if (rc < 0) {
		rc = cli_trace_error(path, r, rc);
		af_trace_reader_free(r);
		return rc;
	}
	af_trace_reader_free(r);

	/* The row is labelled with the trace's file name. */
	const char *label = strrchr(path, '/');
	label = label && label[1] ? label + 1 : path;
	af_report_eval(stdout, &res, fmt, label);
	return cli_finish_output();
}

const struct cli_cmd cli_cmd_eval = {
	.name = "eval",
	.summary = "score inference over a trace against its ground truth",
	.usage =
		"usage: antfarm eval TRACE [--format text|json|csv] [--strict-pcid]\n"
		"\n"
		"Replays TRACE ('-' for stdin) and matches every process and\n"
		"address-space create and exit the guest reported to one\n"
		"inferred event with the same ASID inside its plausible window\n"
		"(Antfarm paper, section 6.1): unmatched reported events are\n"
		"false negatives, unmatched inferred ones false positives; lag\n"
		"is inferred minus reported time. Only events inside the\n"
		"trace's measurement window count.\n"
		"\n"
		"  -f, --format FMT  text (default): a row like the paper's\n"
		"                    Table 2, then false negatives/positives,\n"
		"                    lag and the window;\n"
		"                    json: one object on one line (os.*,\n"
		"                    inferred.*, false_negatives.*,\n"
		"                    false_positives.*, as_false_negatives.*,\n"
		"                    as_false_positives.*, lag.create.*,\n"
		"                    lag.exit.*, window.*);\n"
		"                    csv: a header line and one row\n"
		"      --strict-pcid  with PCIDs, an address space that is loaded\n"
		"                    nowhere has exited only once its PCID was\n"
		"                    flushed on every vCPU (default: once it is\n"
		"                    drained; docs/engine.md says why)\n",
	.run = run_eval,
};
