/*
 * cli/iosched_plot.c - the bar chart of `antfarm iosched --plot FILE.png`
 * (contract in iosched_live.h): Fig. 7 of the paper, a group of bars per
 * configuration, a bar per scheduler, and the lone reader as a dashed
 * line. gnuplot (pngcairo, else png) draws it from a script written to a
 * private temporary directory, which is removed again.
 */
#include "iosched_live.h"

#include "cli.h"
#include "run_proc.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define GNUPLOT_LIMIT_MS 60000 /* gnuplot must be done by then */

/* Context of gnuplot's stderr lines. */
struct gp_err {
	char last[300]; /* its last non-empty line */
};

static void on_gp_err(void *ctx, char *line)
{
	struct gp_err *g = ctx;
	if (!*line)
		return;
	size_t n = strlen(line);
	if (n >= sizeof(g->last))
		n = sizeof(g->last) - 1;
	memcpy(g->last, line, n);
	g->last[n] = '\0';
}

/* Text safe inside a gnuplot double-quoted string (a newline stays one). */
static void gp_text(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++)
		if (*s == '"' || *s == '\\')
			fputc('\'', f);
		else if (*s == '\n')
			fputs("\\n", f); /* a line break in the label */
		else if ((unsigned char)*s >= ' ')
			fputc(*s, f);
	fputc('"', f);
}

/* Runs gnuplot on script; 0, or -1 with why filled. */
static int run_gnuplot(const char *script, char *why, size_t cap)
{
	char *argv[] = { "gnuplot", (char *)script, NULL };
	struct run_child c;
	struct run_lines le = { .n = 0 };
	struct gp_err g = { "" };
	char buf[512];

	int rc = run_spawn(&c, argv, 1);
	if (rc) {
		snprintf(why, cap, "cannot start gnuplot: %s", strerror(-rc));
		return -1;
	}
	int64_t until = run_now_ms() + GNUPLOT_LIMIT_MS;
	while (c.out_fd >= 0 || c.err_fd >= 0) {
		if (run_signal_caught() || run_now_ms() > until)
			break;
		struct pollfd pf[2] = { { c.out_fd, POLLIN, 0 },
					{ c.err_fd, POLLIN, 0 } };
		if (poll(pf, 2, 200) <= 0)
			continue;
		if (pf[0].revents && c.out_fd >= 0) {
			ssize_t r = read(c.out_fd, buf, sizeof(buf));
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				close(c.out_fd);
				c.out_fd = -1;
			}
		}
		if (pf[1].revents && c.err_fd >= 0 &&
		    run_lines_read(&le, c.err_fd, on_gp_err, &g) != 0) {
			close(c.err_fd);
			c.err_fd = -1;
		}
	}
	if (c.out_fd >= 0 || c.err_fd >= 0) {
		run_stop(&c, 1000);
		run_child_close(&c);
		snprintf(why, cap, "gnuplot did not finish");
		return -1;
	}
	run_reap(&c, 1);
	if (WIFEXITED(c.status) && WEXITSTATUS(c.status) == 127) {
		snprintf(why, cap, "gnuplot is not installed (apt-get install "
			 "gnuplot-nox)");
		return -1;
	}
	if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) {
		snprintf(why, cap, "gnuplot failed: %s",
			 g.last[0] ? g.last : "no message");
		return -1;
	}
	return 0;
}

int iol_plot(const char *png, const char *title, const char *const *rows,
	     unsigned nrows, const char *const *series, unsigned nseries,
	     const double *values, double lone)
{
	char dir[4096], script[4200], why[400];
	const char *td = getenv("TMPDIR");
	if (!td || !*td)
		td = "/tmp";
	if (snprintf(dir, sizeof(dir), "%s/antfarm-plot.XXXXXX", td) >=
		    (int)sizeof(dir) ||
	    !mkdtemp(dir)) {
		cli_error("iosched: --plot: cannot create a temporary directory "
			  "in %s", td);
		return CLI_EXIT_INPUT;
	}
	snprintf(script, sizeof(script), "%s/fig7.gp", dir);
	FILE *f = fopen(script, "we");
	if (!f) {
		cli_error("iosched: --plot: %s: %s", script, strerror(errno));
		rmdir(dir);
		return CLI_EXIT_INPUT;
	}
	/* pngcairo if this gnuplot has it, png (libgd) otherwise. */
	unsigned width = 360 + 24 * nrows * (nseries + 1);
	if (width < 960)
		width = 960;
	if (width > 2400)
		width = 2400;
	fprintf(f, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
		"  set terminal pngcairo size %u,600 font 'sans,11'\n"
		"} else {\n"
		"  set terminal png size %u,600\n"
		"}\n", width, width);
	fputs("set output ", f);
	gp_text(f, png);
	fputs("\nset title ", f);
	gp_text(f, title);
	fputs("\nset ylabel 'aggregate throughput, MB/s (10^6 bytes)'\n"
	      "set style data histograms\n"
	      "set style histogram clustered gap 1\n"
	      "set style fill solid 0.85 border -1\n"
	      "set boxwidth 0.9\n"
	      "set yrange [0:*]\n"
	      "set grid ytics\n"
	      "set key outside right top vertical\n"
	      "set bmargin 5\n"
	      "$data << EOD\n", f);
	for (unsigned r = 0; r < nrows; r++) {
		gp_text(f, rows[r]);
		for (unsigned s = 0; s < nseries; s++)
			fprintf(f, " %.3f", values[r * nseries + s]);
		fputc('\n', f);
	}
	fputs("EOD\nplot ", f);
	for (unsigned s = 0; s < nseries; s++) {
		if (s)
			fputs(", ", f);
		fprintf(f, "$data using %u%s title ", s + 2,
			s == 0 ? ":xtic(1)" : "");
		gp_text(f, series[s]);
	}
	if (lone >= 0)
		fprintf(f, ", %.3f with lines dashtype 2 lw 2 lc rgb 'black' "
			"title 'lone reader'", lone);
	fputc('\n', f);
	int bad = ferror(f);
	if (fclose(f) || bad) {
		cli_error("iosched: --plot: cannot write %s", script);
		unlink(script);
		rmdir(dir);
		return CLI_EXIT_INPUT;
	}
	int rc = run_gnuplot(script, why, sizeof(why));
	unlink(script);
	rmdir(dir);
	if (rc) {
		cli_error("iosched: --plot %s: %s", png, why);
		return CLI_EXIT_INPUT;
	}
	return 0;
}
