/*
 * cli/cli.h - shared pieces of the antfarm command: the subcommand table,
 * exit codes, error reporting and small parsing/output helpers.
 *
 * Every error is one line on stderr starting "antfarm: "; the exit status is
 * CLI_EXIT_INPUT for bad input or a failed operation and CLI_EXIT_USAGE for a
 * bad command line.
 */
#ifndef ANTFARM_CLI_H
#define ANTFARM_CLI_H

#include <stdint.h>
#include <stdio.h>

#include <antfarm/antfarm.h>

#define CLI_EXIT_OK 0
#define CLI_EXIT_INPUT 1 /* bad input file, failed operation */
#define CLI_EXIT_USAGE 2 /* bad command line */

/* One subcommand. */
struct cli_cmd {
	const char *name;    /* as typed: "replay" */
	const char *summary; /* one line for `antfarm --help` */
	const char *usage;   /* full help text for `antfarm help NAME` */
	int (*run)(int argc, char **argv); /* argv[0] is the name */
};

/* The subcommands, one per cli/cmd_*.c. */
extern const struct cli_cmd cli_cmd_replay;
extern const struct cli_cmd cli_cmd_eval;
extern const struct cli_cmd cli_cmd_dump;
extern const struct cli_cmd cli_cmd_synth;
extern const struct cli_cmd cli_cmd_run;
extern const struct cli_cmd cli_cmd_iosched;
extern const struct cli_cmd cli_cmd_plot;

/* Prints "antfarm: " + the formatted message as exactly one line on stderr
 * (newlines and control characters in the message become spaces). */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reports a bad command line for command cmd and returns CLI_EXIT_USAGE:
 * "antfarm: CMD: MESSAGE (see 'antfarm help CMD')". */
int cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* For getopt_long's '?' and ':' returns: reports the offending option of
 * argv (optind/optopt as getopt left them) and returns CLI_EXIT_USAGE. */
int cli_bad_option(const char *cmd, int c, char **argv);

/* Parses a whole decimal unsigned number no larger than max; 0 or -1. */
int cli_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* Output formats. */
enum cli_format {
	CLI_FMT_TEXT = 1,
	CLI_FMT_JSON = 2,  /* one object (eval) */
	CLI_FMT_JSONL = 3, /* one object per line (replay) */
	CLI_FMT_CSV = 4,
};

/* Parses name into *out if it is one of the allowed formats (a mask of
 * 1u << CLI_FMT_*); 0 or -1. */
int cli_parse_format(const char *name, unsigned allowed, enum cli_format *out);

/* Opens a trace for reading ("-" is stdin). On failure reports it (one
 * line) and returns CLI_EXIT_INPUT with *out NULL. */
int cli_open_trace(const char *path, struct af_trace_reader **out);

/* For commands taking exactly one trace after their options (optind as
 * getopt left it): sets *path and opens it. Returns 0, or reports the bad
 * command line (CLI_EXIT_USAGE) or the unreadable trace (CLI_EXIT_INPUT). */
int cli_open_trace_arg(const char *cmd, int argc, char **argv,
		       const char **path, struct af_trace_reader **out);

/* The command line of a command reading one trace: [-f|--format FMT]
 * (when formats, a mask of 1u << CLI_FMT_*, is not 0; *fmt keeps its value
 * when not given), [--strict-pcid] (when engine_flags is not NULL: sets
 * AF_ENGINE_STRICT_PCID in it), then TRACE, which it opens. Returns 0 with
 * *path and *out set, or reports the bad command line (CLI_EXIT_USAGE) or
 * the unreadable trace (CLI_EXIT_INPUT). */
int cli_trace_command(const char *cmd, int argc, char **argv,
		      unsigned formats, enum cli_format *fmt,
		      unsigned *engine_flags, const char **path,
		      struct af_trace_reader **out);

/* Reports a failure of af_replay()/af_trace_next() on r (rc < 0) for path;
 * returns CLI_EXIT_INPUT. */
int cli_trace_error(const char *path, struct af_trace_reader *r, int rc);

/* Flushes stdout; on a write error reports it and returns CLI_EXIT_INPUT,
 * else CLI_EXIT_OK. */
int cli_finish_output(void);

/* Writes s as a JSON string literal (with quotes) to f. */
void cli_json_string(FILE *f, const char *s);
/* Writes s as a CSV field (quoted if needed) to f. */
void cli_csv_field(FILE *f, const char *s);

/* Stable name of a ground-truth kind ("fork", ...), or NULL if unknown. */
const char *cli_truth_name(unsigned kind);
/* Name of an MMU technique ("x86", "context-id"), or NULL if unknown. */
const char *cli_mmu_name(unsigned mmu);

#endif
