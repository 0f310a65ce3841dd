/*
 * cli/cli.c - helpers shared by the antfarm subcommands: one-line errors,
 * option and number parsing, opening traces, JSON/CSV quoting.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Writes msg to stderr with control characters flattened to spaces. */
static void put_line(const char *msg)
{
	for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
		fputc(*p < 0x20 || *p == 0x7f ? ' ' : *p, stderr);
}

void cli_error(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fputs("antfarm: ", stderr);
	put_line(buf);
	fputc('\n', stderr);
	fflush(stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	cli_error("%s: %s (see 'antfarm help %s')", cmd, buf, cmd);
	return CLI_EXIT_USAGE;
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
	/* optind is past the offending word once getopt has rejected it
	 * (except inside a cluster of short options, where optopt says). */
	const char *arg = optind > 0 ? argv[optind - 1] : "?";
	if (c == ':') {
		if (arg[0] == '-' && arg[1] == '-')
			return cli_usage_error(cmd, "option '%s' needs a value",
					       arg);
		return cli_usage_error(cmd, "option '-%c' needs a value",
				       optopt);
	}
	if (optopt)
		return cli_usage_error(cmd, "unknown option '-%c'", optopt);
	return cli_usage_error(cmd, "unknown option '%s'", arg);
}

int cli_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	if (!s || !*s || *s < '0' || *s > '9')
		return -1;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* The output formats by name. */
static const struct {
	const char *name;   /* as typed */
	enum cli_format f;  /* value */
} format_tab[] = {
	{ "text", CLI_FMT_TEXT },
	{ "json", CLI_FMT_JSON },
	{ "jsonl", CLI_FMT_JSONL },
	{ "csv", CLI_FMT_CSV },
};
#define N_FORMATS (sizeof(format_tab) / sizeof(format_tab[0]))

int cli_parse_format(const char *name, unsigned allowed, enum cli_format *out)
{
	for (size_t i = 0; i < N_FORMATS; i++) {
		if (!strcmp(name, format_tab[i].name) &&
		    (allowed & (1u << format_tab[i].f))) {
			*out = format_tab[i].f;
			return 0;
		}
	}
	return -1;
}

int cli_open_trace(const char *path, struct af_trace_reader **out)
{
	struct stat st;
	*out = NULL;
	if (strcmp(path, "-") != 0) {
		if (stat(path, &st) != 0) {
			cli_error("%s: %s", path, strerror(errno));
			return CLI_EXIT_INPUT;
		}
		if (S_ISDIR(st.st_mode)) {
			cli_error("%s: is a directory", path);
			return CLI_EXIT_INPUT;
		}
	}
	struct af_trace_reader *r = NULL;
	int rc = af_trace_reader_open(path, &r);
	if (rc < 0) {
		const char *msg = r ? af_trace_reader_error(r) : "";
		if (msg && *msg)
			cli_error("%s: %s", path, msg);
		else
			cli_error("%s: %s", path, strerror(-rc));
		af_trace_reader_free(r);
		return CLI_EXIT_INPUT;
	}
	if (!r) {
		cli_error("%s: cannot open trace", path);
		return CLI_EXIT_INPUT;
	}
	*out = r;
	return CLI_EXIT_OK;
}

int cli_trace_error(const char *path, struct af_trace_reader *r, int rc)
{
	const char *msg = r ? af_trace_reader_error(r) : "";
	if (!msg || !*msg)
		msg = af_replay_error();
	if (msg && *msg)
		cli_error("%s: %s", path, msg);
	else
		cli_error("%s: %s", path, strerror(rc < 0 ? -rc : rc));
	return CLI_EXIT_INPUT;
}

int cli_finish_output(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error("writing output: %s", strerror(errno ? errno : EIO));
		return CLI_EXIT_INPUT;
	}
	return CLI_EXIT_OK;
}

void cli_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p); /* bytes, not UTF-8 */
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

void cli_csv_field(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

const char *cli_truth_name(unsigned kind)
{
	switch (kind) {
	case AF_TRUTH_FORK: return "fork";
	case AF_TRUTH_EXEC: return "exec";
	case AF_TRUTH_EXIT: return "exit";
	case AF_TRUTH_AS_CREATE: return "as_create";
	case AF_TRUTH_AS_DESTROY: return "as_destroy";
	case AF_TRUTH_SWITCH: return "switch";
	case AF_TRUTH_BEGIN: return "begin";
	case AF_TRUTH_END: return "end";
	case AF_TRUTH_VFORK: return "vfork";
	}
	return NULL;
}

const char *cli_mmu_name(unsigned mmu)
{
	switch (mmu) {
	case AF_MMU_X86: return "x86";
	case AF_MMU_CONTEXT_ID: return "context-id";
	}
	return NULL;
}

int cli_open_trace_arg(const char *cmd, int argc, char **argv,
		       const char **path, struct af_trace_reader **out)
{
	*out = NULL;
	if (optind != argc - 1)
		return cli_usage_error(cmd, optind >= argc ?
					    "no trace given" :
					    "one trace at a time");
	*path = argv[optind];
	return cli_open_trace(*path, out);
}

int cli_trace_command(const char *cmd, int argc, char **argv,
		      unsigned formats, enum cli_format *fmt,
		      unsigned *engine_flags, const char **path,
		      struct af_trace_reader **out)
{
	struct option longopts[3];
	unsigned n = 0;
	int c;

	/* Only the options this command has are known to getopt. */
	if (formats)
		longopts[n++] = (struct option){ "format", required_argument,
						 NULL, 'f' };
	if (engine_flags)
		longopts[n++] = (struct option){ "strict-pcid", no_argument,
						 NULL, 'P' };
	longopts[n] = (struct option){ NULL, 0, NULL, 0 };
	*out = NULL;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, formats ? ":f:" : ":", longopts,
				NULL)) != -1) {
		if (c == 'f') {
			if (!cli_parse_format(optarg, formats, fmt))
				continue;
			char names[64] = "";
			for (size_t i = 0; i < N_FORMATS; i++) {
				if (!(formats & (1u << format_tab[i].f)))
					continue;
				if (names[0])
					strcat(names, ", ");
				strcat(names, format_tab[i].name);
			}
			return cli_usage_error(cmd, "unknown format '%s' (%s)",
					       optarg, names);
		}
		if (c == 'P') {
			*engine_flags |= AF_ENGINE_STRICT_PCID;
			continue;
		}
		return cli_bad_option(cmd, c, argv);
	}
	return cli_open_trace_arg(cmd, argc, argv, path, out);
}
