/*
 * cli/cmd_synth.c - `antfarm synth`: writes a synthetic trace (a modelled
 * kernel running a workload, with ground truth) using lib/synth.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Long-only option codes. */
enum {
	OPT_OS = 0x100,
	OPT_WORKLOAD,
	OPT_SEED,
	OPT_VCPUS,
	OPT_PAGING,
	OPT_KPTI,
	OPT_PCID,
	OPT_LAZY_TLB,
	OPT_LIFETIME,
	OPT_INTERVAL,
	OPT_PHYS,
};

static int parse_paging(const char *s, enum af_paging *out)
{
	if (!strcmp(s, "32"))
		*out = AF_PAGING_32;
	else if (!strcmp(s, "pae"))
		*out = AF_PAGING_PAE;
	else if (!strcmp(s, "4"))
		*out = AF_PAGING_4LEVEL;
	else if (!strcmp(s, "5"))
		*out = AF_PAGING_5LEVEL;
	else
		return -1;
	return 0;
}

/* Parses a millisecond count into ns (at most about 5 days, which keeps a
 * whole run's times far from overflowing). */
static int parse_ms(const char *s, uint64_t *ns)
{
	uint64_t ms;
	if (cli_parse_u64(s, 432000000u, &ms) || ms == 0)
		return -1;
	*ns = ms * 1000000u;
	return 0;
}

static int run_synth(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "os", required_argument, NULL, OPT_OS },
		{ "workload", required_argument, NULL, OPT_WORKLOAD },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "vcpus", required_argument, NULL, OPT_VCPUS },
		{ "paging", required_argument, NULL, OPT_PAGING },
		{ "kpti", no_argument, NULL, OPT_KPTI },
		{ "pcid", no_argument, NULL, OPT_PCID },
		{ "lazy-tlb", no_argument, NULL, OPT_LAZY_TLB },
		{ "lifetime-ms", required_argument, NULL, OPT_LIFETIME },
		{ "interval-ms", required_argument, NULL, OPT_INTERVAL },
		{ "phys-mb", required_argument, NULL, OPT_PHYS },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	struct af_synth_opts o;
	const char *out = NULL, *os_name = NULL, *wl_name = NULL;
	int have_os = 0, have_wl = 0, have_n = 0, c;
	uint64_t v;

	memset(&o, 0, sizeof(o));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:o:", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_OS:
			if (af_synth_parse_os(optarg, &o.os))
				return cli_usage_error(
					"synth",
					"unknown OS '%s' (linux2.4, linux2.6, "
					"windows, sparc-linux)",
					optarg);
			have_os = 1;
			os_name = optarg;
			break;
		case OPT_WORKLOAD:
			if (af_synth_parse_workload(optarg, &o.workload))
				return cli_usage_error(
					"synth",
					"unknown workload '%s' (fork, "
					"forkexec, vforkexec, compile)",
					optarg);
			have_wl = 1;
			wl_name = optarg;
			break;
		case 'n':
			if (cli_parse_u64(optarg, 10000000u, &v) || v == 0)
				return cli_usage_error(
					"synth",
					"-n wants a process count from 1 to "
					"10000000, not '%s'",
					optarg);
			o.n = (unsigned)v;
			have_n = 1;
			break;
		case OPT_SEED:
			if (cli_parse_u64(optarg, UINT64_MAX, &o.seed))
				return cli_usage_error(
					"synth", "bad --seed '%s'", optarg);
			break;
		case OPT_VCPUS:
			if (cli_parse_u64(optarg, AF_MAX_VCPUS, &v) || v == 0)
				return cli_usage_error(
					"synth",
					"--vcpus wants 1 to %d, not '%s'",
					AF_MAX_VCPUS, optarg);
			o.n_vcpus = (unsigned)v;
			break;
		case OPT_PAGING:
			if (parse_paging(optarg, &o.paging))
				return cli_usage_error(
					"synth",
					"unknown paging '%s' (32, pae, 4, 5)",
					optarg);
			break;
		case OPT_KPTI:
			o.kpti = 1;
			break;
		case OPT_PCID:
			o.pcid = 1;
			break;
		case OPT_LAZY_TLB:
			o.lazy_tlb = 1;
			break;
		case OPT_LIFETIME:
			if (parse_ms(optarg, &o.lifetime_ns))
				return cli_usage_error(
					"synth", "bad --lifetime-ms '%s'",
					optarg);
			break;
		case OPT_INTERVAL:
			if (parse_ms(optarg, &o.interval_ns))
				return cli_usage_error(
					"synth", "bad --interval-ms '%s'",
					optarg);
			break;
		case OPT_PHYS:
			if (cli_parse_u64(optarg, 1u << 20, &v) || v == 0)
				return cli_usage_error(
					"synth",
					"--phys-mb wants 1 to 1048576, not "
					"'%s'",
					optarg);
			o.phys_bytes = v << 20;
			break;
		case 'o':
			out = optarg;
			break;
		default:
			return cli_bad_option("synth", c, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error("synth", "unexpected argument '%s'",
				       argv[optind]);
	if (!have_os)
		return cli_usage_error("synth", "--os is required");
	if (!have_wl)
		return cli_usage_error("synth", "--workload is required");
	if (!have_n)
		return cli_usage_error("synth", "-n is required");
	if (!out || !*out)
		return cli_usage_error("synth", "-o TRACE is required");

	struct af_trace_info info;
	memset(&info, 0, sizeof(info));
	int rc = af_synth_info(&o, &info);
	if (rc < 0)
		return cli_usage_error("synth",
				       "cannot model --os %s --workload %s "
				       "with these options",
				       os_name, wl_name);

	/* Refuse to write over a directory; remember whether the output is a
	 * regular file we may remove if the run fails. */
	int is_stdout = !strcmp(out, "-");
	struct stat st;
	if (!is_stdout && stat(out, &st) == 0 && S_ISDIR(st.st_mode)) {
		cli_error("%s: is a directory", out);
		return CLI_EXIT_INPUT;
	}
	struct af_trace_writer *w = NULL;
	rc = af_trace_writer_open(out, &info, &w);
	if (rc < 0) {
		cli_error("%s: %s", out, strerror(-rc));
		return CLI_EXIT_INPUT;
	}
	rc = af_synth_run(&o, w);
	int crc = af_trace_writer_close(w);
	if (rc < 0 || crc < 0) {
		int e = rc < 0 ? -rc : -crc;
		if (rc < 0)
			cli_error("synth: %s", strerror(e));
		else
			cli_error("%s: %s", out, strerror(e));
		if (!is_stdout && stat(out, &st) == 0 && S_ISREG(st.st_mode))
			unlink(out);
		return CLI_EXIT_INPUT;
	}
	return is_stdout ? cli_finish_output() : CLI_EXIT_OK;
}

const struct cli_cmd cli_cmd_synth = {
	.name = "synth",
	.summary = "write a synthetic trace of a modelled kernel",
	.usage =
		"usage: antfarm synth --os OS --workload WL -n N -o TRACE\n"
		"                     [--seed S] [--vcpus N] [--paging 32|pae|4|5]\n"
		"                     [--kpti] [--pcid] [--lazy-tlb]\n"
		"                     [--lifetime-ms N] [--interval-ms N]\n"
		"                     [--phys-mb N]\n"
		"\n"
		"Models how a kernel drives the MMU while running a workload\n"
		"and writes the observations, the memory the engine reads and\n"
		"the kernel's own ground truth to TRACE ('-' for stdout). The\n"
		"same options and seed always give the same trace.\n"
		"\n"
		"  --os OS            linux2.4, linux2.6, windows, sparc-linux\n"
		"  --workload WL      fork, forkexec, vforkexec, compile\n"
		"  -n N               processes the workload creates\n"
		"  -o, --output TRACE where to write\n"
		"  --seed S           any number (default 0)\n"
		"  --vcpus N          1..64 (default 1)\n"
		"  --paging MODE      x86 paging: 32, pae, 4 or 5 levels\n"
		"                     (default: 4 for linux2.6, else 32)\n"
		"  --kpti             x86: two roots per address space\n"
		"  --pcid             x86: PCIDs, switches without flushes\n"
		"  --lazy-tlb         kernel threads borrow the last address space\n"
		"  --lifetime-ms N    how long each process lives (default 10000)\n"
		"  --interval-ms N    between creations (default 100)\n"
		"  --phys-mb N        guest RAM in MiB (default 128)\n",
	.run = run_synth,
};
