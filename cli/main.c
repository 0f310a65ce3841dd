/*
 * cli/main.c - the antfarm command: dispatches to a subcommand
 * (cli/cmd_*.c), prints help and the version.
 */
#include "cli.h"

#include <string.h>

static const struct cli_cmd *const cmds[] = {
	&cli_cmd_replay,
	&cli_cmd_eval,
	&cli_cmd_dump,
	&cli_cmd_synth,
	&cli_cmd_run,
	&cli_cmd_plot,
	&cli_cmd_iosched,
};
#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

static const struct cli_cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < N_CMDS; i++)
		if (!strcmp(cmds[i]->name, name))
			return cmds[i];
	return NULL;
}

static void main_help(FILE *f)
{
	fputs("usage: antfarm COMMAND [ARGS...]\n"
	      "       antfarm help COMMAND | --help | --version\n"
	      "\n"
	      "Infers guest processes (create, exit, context switch) from how a\n"
	      "guest drives its MMU, and scores the inference against the\n"
	      "guest's own ground truth (Antfarm, USENIX ATC 2006).\n"
	      "\n"
	      "commands:\n",
	      f);
	for (size_t i = 0; i < N_CMDS; i++)
		fprintf(f, "  %-8s %s\n", cmds[i]->name, cmds[i]->summary);
	fputs("\n"
	      "Errors are one line on stderr; exit status 0 on success, 1 for\n"
	      "bad input or a failed operation, 2 for a bad command line.\n",
	      f);
}

static int cmd_help(int argc, char **argv)
{
	if (argc < 2) {
		main_help(stdout);
		return cli_finish_output();
	}
	if (argc > 2) {
		cli_error("help: one command at a time");
		return CLI_EXIT_USAGE;
	}
	const struct cli_cmd *c = find_cmd(argv[1]);
	if (!c) {
		cli_error("help: unknown command '%s' (see 'antfarm --help')",
			  argv[1]);
		return CLI_EXIT_USAGE;
	}
	fputs(c->usage, stdout);
	return cli_finish_output();
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		cli_error("no command given (see 'antfarm --help')");
		return CLI_EXIT_USAGE;
	}
	const char *name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
		main_help(stdout);
		return cli_finish_output();
	}
	if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
		printf("antfarm %s\n", AF_VERSION_STRING);
		return cli_finish_output();
	}
	if (!strcmp(name, "help"))
		return cmd_help(argc - 1, argv + 1);
	const struct cli_cmd *c = find_cmd(name);
	if (!c) {
		if (name[0] == '-')
			cli_error("unknown option '%s' (see 'antfarm --help')",
				  name);
		else
			cli_error("unknown command '%s' (see 'antfarm --help')",
				  name);
		return CLI_EXIT_USAGE;
	}
	/* `antfarm CMD --help` is `antfarm help CMD`. */
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(c->usage, stdout);
			return cli_finish_output();
		}
	}
	return c->run(argc - 1, argv + 1);
}
