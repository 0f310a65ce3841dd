/*
 * cli/cmd_plot.c - `antfarm plot TRACE -o FILE.png [--kind timeline|lag]`:
 * replays a trace that holds the guest's ground truth (`antfarm run
 * --record`, `antfarm synth`) and draws, with gnuplot run as a child
 * process,
 *   timeline  the number of live processes the guest reported and the
 *             number antfarm inferred over time, and their difference
 *             inferred - OS (the Antfarm paper's Figure 3);
 *   lag       the create and exit lag of every matched process against
 *             time, and their distribution (one run of the paper's
 *             Figure 2).
 * Both count only what happens inside the trace's measurement window
 * (BEGIN..END), as `antfarm eval` does. --data keeps the numbers as CSV.
 *
 * Counting for the timeline: a process reported (FORK/VFORK) inside the
 * window is live until its pid's EXIT; an inferred process (CREATE) inside
 * the window is live until the EXIT with its serial. Processes born before
 * the window are not counted on either side, so both curves start at 0.
 *
 * The lag pairs are the ones `antfarm eval` scores (af_eval_pairs(): the
 * paper's section 6.1 matching, one-to-one by ASID inside the plausible
 * window), the matched process creates and exits.
 */
#include "cli.h"

#include <antfarm/eval.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum plot_kind { PLOT_TIMELINE = 1, PLOT_LAG = 2 };

/* A ground-truth record kept for counting and matching. */
struct ptruth {
	uint64_t time; /* ns */
	uint64_t asid; /* as reported */
	uint32_t pid;  /* process id */
	uint32_t ppid; /* parent process id */
	uint8_t kind;  /* enum af_truth_kind */
};

/* An inferred create or exit. */
struct pevent {
	uint64_t time;   /* ns */
	uint64_t asid;   /* root or context id */
	uint64_t serial; /* inferred process number */
	uint8_t kind;    /* AF_EV_CREATE or AF_EV_EXIT */
};

/* What the replay delivered. */
struct collect {
	struct ptruth *t;     /* truth records, in trace order */
	size_t nt, ct;        /* used, allocated */
	struct pevent *e;     /* inferred events, in replay order */
	size_t ne, ce;        /* used, allocated */
	uint64_t begin, end;  /* earliest BEGIN / END */
	int has_begin;        /* a BEGIN was seen */
	int has_end;          /* an END was seen */
	uint64_t tmin, tmax;  /* earliest/latest time of anything kept */
	int has_time;         /* tmin/tmax are set */
	struct af_eval *eval; /* the library's scorer, for the cross-check */
	int err;              /* first error (negative errno) */
};

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 1024;
	if (nc < *cap || nc > SIZE_MAX / size)
		return -ENOMEM;
	void *p = realloc(*v, nc * size);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = nc;
	return 0;
}

static void see_time(struct collect *c, uint64_t t)
{
	if (!c->has_time || t < c->tmin)
		c->tmin = t;
	if (!c->has_time || t > c->tmax)
		c->tmax = t;
	c->has_time = 1;
}

static void on_event(void *ctx, const struct af_event *ev)
{
	struct collect *c = ctx;
	if (c->err)
		return;
	int rc = af_eval_add_event(c->eval, ev);
	if (rc) {
		c->err = rc;
		return;
	}
	if (ev->kind != AF_EV_CREATE && ev->kind != AF_EV_EXIT)
		return;
	rc = grow((void **)&c->e, &c->ce, c->ne, sizeof(*c->e));
	if (rc) {
		c->err = rc;
		return;
	}
	c->e[c->ne++] = (struct pevent){ ev->time_ns, ev->asid, ev->serial,
					 ev->kind };
	see_time(c, ev->time_ns);
}

static void on_truth(void *ctx, const struct af_truth *t)
{
	struct collect *c = ctx;
	if (c->err)
		return;
	int rc = af_eval_add_truth(c->eval, t);
	if (rc) {
		c->err = rc;
		return;
	}
	switch (t->kind) {
	case AF_TRUTH_BEGIN:
		if (!c->has_begin || t->time_ns < c->begin)
			c->begin = t->time_ns;
		c->has_begin = 1;
		see_time(c, t->time_ns);
		return;
	case AF_TRUTH_END:
		if (!c->has_end || t->time_ns < c->end)
			c->end = t->time_ns;
		c->has_end = 1;
		see_time(c, t->time_ns);
		return;
	case AF_TRUTH_FORK:
	case AF_TRUTH_VFORK:
	case AF_TRUTH_EXEC:
	case AF_TRUTH_EXIT:
		break;
	default:
		return; /* switches and address-space records: not needed */
	}
	rc = grow((void **)&c->t, &c->ct, c->nt, sizeof(*c->t));
	if (rc) {
		c->err = rc;
		return;
	}
	c->t[c->nt++] = (struct ptruth){ t->time_ns, t->asid, t->pid, t->ppid,
					 t->kind };
	see_time(c, t->time_ns);
}

/* ---- a set of live keys (pids, serials): open addressing, no removal ---- */

/* One slot: a key and whether it is live. */
struct kslot {
	uint64_t key; /* key + 1; 0 = empty slot */
	int live;     /* the process is counted as live */
};

/* The table. */
struct kset {
	struct kslot *s; /* slots, a power of two */
	size_t cap;      /* slots */
	size_t n;        /* used */
	int zero_used;   /* key UINT64_MAX (stored as 0) was seen */
	int zero_live;   /* ... and is live */
};

static size_t kslot_of(const struct kset *k, uint64_t stored)
{
	uint64_t h = stored * 0x9E3779B97F4A7C15ull;
	size_t i = (size_t)(h ^ (h >> 29)) & (k->cap - 1);
	while (k->s[i].key && k->s[i].key != stored)
		i = (i + 1) & (k->cap - 1);
	return i;
}

/* The live flag of key, created (not live) if new; NULL when out of
 * memory. */
static int *kset_get(struct kset *k, uint64_t key)
{
	uint64_t stored = key + 1;
	if (!stored) {
		k->zero_used = 1;
		return &k->zero_live;
	}
	if ((k->n + 1) * 2 > k->cap) {
		size_t nc = k->cap ? k->cap * 2 : 1024;
		if (nc > SIZE_MAX / sizeof(struct kslot))
			return NULL;
		struct kslot *ns = calloc(nc, sizeof(*ns));
		if (!ns)
			return NULL;
		struct kset nk = { ns, nc, 0, 0, 0 };
		for (size_t i = 0; i < k->cap; i++)
			if (k->s[i].key)
				nk.s[kslot_of(&nk, k->s[i].key)] = k->s[i];
		free(k->s);
		k->s = ns;
		k->cap = nc;
	}
	size_t i = kslot_of(k, stored);
	if (!k->s[i].key) {
		k->s[i].key = stored;
		k->s[i].live = 0;
		k->n++;
	}
	return &k->s[i].live;
}

/* ---- the timeline ---- */

/* One change of a count. */
struct delta {
	uint64_t time; /* ns */
	uint64_t key;  /* pid (OS) or serial (inferred) */
	uint32_t seq;  /* order of arrival, breaks ties */
	uint8_t os;    /* 1: the guest's count, 0: antfarm's */
	uint8_t up;    /* 1: a create, 0: an exit */
};

static int cmp_delta(const void *a, const void *b)
{
	const struct delta *x = a, *y = b;
	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* One point of the timeline: the counts from this time on. */
struct tpoint {
	double t;      /* seconds since t0 */
	int64_t os;    /* live processes the guest reported */
	int64_t inf;   /* live processes antfarm inferred */
};

/* Statistics of a timeline. */
struct tstats {
	size_t points;    /* points */
	double span_s;    /* length of the window drawn */
	int64_t os_max;   /* most live processes reported */
	int64_t inf_max;  /* most inferred */
	int64_t diff_max; /* largest |os - inf| */
	double diff_mean; /* time-weighted mean of |os - inf| */
	double diff_frac; /* fraction of the time os != inf */
};

/* One bin of the drawn timeline: time-weighted means and the range. */
struct tbin {
	double t;          /* middle of the bin, s */
	double os, inf;    /* mean live processes */
	double d;          /* mean of inf - os */
	int64_t dmin, dmax; /* smallest and largest inf - os in the bin */
};

#define TIMELINE_BINS 1000 /* bins drawn (the CSV keeps every change) */

static int build_timeline(const struct collect *c, uint64_t wb, uint64_t we,
			  struct tpoint **out, size_t *n_out)
{
	size_t nd = 0;
	struct delta *d = malloc((c->nt + c->ne + 1) * sizeof(*d));
	if (!d)
		return -ENOMEM;
	uint32_t seq = 0;
	for (size_t i = 0; i < c->nt; i++) {
		const struct ptruth *t = &c->t[i];
		if (t->time < wb || t->time > we)
			continue;
		if (t->kind == AF_TRUTH_FORK || t->kind == AF_TRUTH_VFORK)
			d[nd++] = (struct delta){ t->time, t->pid, seq++, 1, 1 };
		else if (t->kind == AF_TRUTH_EXIT)
			d[nd++] = (struct delta){ t->time, t->pid, seq++, 1, 0 };
	}
	for (size_t i = 0; i < c->ne; i++) {
		const struct pevent *e = &c->e[i];
		if (e->time < wb || e->time > we)
			continue;
		d[nd++] = (struct delta){ e->time, e->serial, seq++, 0,
					  e->kind == AF_EV_CREATE };
	}
	qsort(d, nd, sizeof(*d), cmp_delta);

	struct tpoint *p = malloc((nd + 2) * sizeof(*p));
	struct kset ks_os = { 0 }, ks_inf = { 0 };
	int rc = p ? 0 : -ENOMEM;
	size_t np = 0;
	int64_t os = 0, inf = 0;
	if (!rc)
		p[np++] = (struct tpoint){ 0, 0, 0 };
	for (size_t i = 0; i < nd && !rc;) {
		size_t j = i;
		for (; j < nd && d[j].time == d[i].time; j++) {
			int *live = kset_get(d[j].os ? &ks_os : &ks_inf,
					     d[j].key);
			if (!live) {
				rc = -ENOMEM;
				break;
			}
			int64_t *cnt = d[j].os ? &os : &inf;
			if (d[j].up && !*live) {
				*live = 1;
				++*cnt;
			} else if (!d[j].up && *live) {
				*live = 0;
				--*cnt;
			}
		}
		double t = (double)(d[i].time - wb) / 1e9;
		if (np && p[np - 1].t == t)
			np--; /* the same instant: keep the last counts */
		p[np++] = (struct tpoint){ t, os, inf };
		i = j;
	}
	if (!rc) {
		/* The counts hold until the window closes. */
		double t_end = (double)(we - wb) / 1e9;
		if (t_end > p[np - 1].t)
			p[np++] = (struct tpoint){ t_end, os, inf };
	}
	free(ks_os.s);
	free(ks_inf.s);
	free(d);
	if (rc) {
		free(p);
		return rc;
	}
	*out = p;
	*n_out = np;
	return 0;
}

static void timeline_stats(const struct tpoint *p, size_t n, struct tstats *s)
{
	memset(s, 0, sizeof(*s));
	s->points = n;
	double area = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t dd = p[i].os - p[i].inf;
		if (dd < 0)
			dd = -dd;
		if (p[i].os > s->os_max)
			s->os_max = p[i].os;
		if (p[i].inf > s->inf_max)
			s->inf_max = p[i].inf;
		if (dd > s->diff_max)
			s->diff_max = dd;
		if (i + 1 < n)
			area += (double)dd * (p[i + 1].t - p[i].t);
	}
	s->span_s = n ? p[n - 1].t : 0;
	s->diff_mean = s->span_s > 0 ? area / s->span_s : 0;
	double differ = 0;
	for (size_t i = 0; i + 1 < n; i++)
		if (p[i].os != p[i].inf)
			differ += p[i + 1].t - p[i].t;
	s->diff_frac = s->span_s > 0 ? differ / s->span_s : 0;
}

/* Averages the step function p[0..n) (each value holds until the next
 * point; the last point is the end) over nb equal bins of [0, span]. */
static void timeline_bins(const struct tpoint *p, size_t n, double span,
			  struct tbin *b, size_t nb)
{
	double w = span > 0 ? span / (double)nb : 0;
	size_t i = 0;
	for (size_t k = 0; k < nb; k++) {
		double a = w * (double)k, z = k + 1 == nb ? span : a + w;
		while (i + 1 < n && p[i + 1].t <= a)
			i++;
		struct tbin *o = &b[k];
		o->t = (a + z) / 2;
		o->dmin = o->dmax = p[i].inf - p[i].os;
		double sos = 0, sinf = 0;
		if (z <= a) {
			o->os = (double)p[i].os;
			o->inf = (double)p[i].inf;
			o->d = o->inf - o->os;
			continue;
		}
		for (size_t j = i; j < n && p[j].t < z; j++) {
			double from = p[j].t > a ? p[j].t : a;
			double to = j + 1 < n && p[j + 1].t < z ? p[j + 1].t : z;
			int64_t d = p[j].inf - p[j].os;
			if (d < o->dmin)
				o->dmin = d;
			if (d > o->dmax)
				o->dmax = d;
			if (to > from) {
				sos += (double)p[j].os * (to - from);
				sinf += (double)p[j].inf * (to - from);
			}
		}
		o->os = sos / (z - a);
		o->inf = sinf / (z - a);
		o->d = o->inf - o->os;
	}
}

/* ---- the lag pairs (af_eval_pairs) ---- */

/* One matched process event. */
struct lagpt {
	double t;     /* OS time, seconds since t0 */
	double ms;    /* lag, milliseconds */
	int64_t ns;   /* lag, ns (for the cross-check) */
	uint32_t pid; /* process id */
	uint32_t ppid; /* parent process id */
	uint64_t asid; /* address space matched */
	uint8_t exit; /* 0 create, 1 exit */
};

/* The matched process events, collected from af_eval_pairs(). */
struct lagcol {
	struct lagpt *p; /* the points */
	size_t n, cap;   /* used, allocated */
	uint64_t t0;     /* time 0 of the plot, ns */
	int err;         /* first error (negative errno) */
};

static void on_pair(void *ctx, const struct af_eval_pair *p)
{
	struct lagcol *l = ctx;
	if (l->err || !p->matched || (p->category != AF_EVAL_PROCESS_CREATE &&
				      p->category != AF_EVAL_PROCESS_EXIT))
		return;
	int rc = grow((void **)&l->p, &l->cap, l->n, sizeof(*l->p));
	if (rc) {
		l->err = rc;
		return;
	}
	uint64_t it = p->inferred_time_ns, ot = p->os_time_ns;
	/* beyond +-2^63 ns (292 years) saturates, as in eval */
	uint64_t mag = it >= ot ? it - ot : ot - it;
	int64_t ns = mag > (uint64_t)INT64_MAX ?
			     (it >= ot ? INT64_MAX : INT64_MIN) :
			     it >= ot ? (int64_t)mag : -(int64_t)mag;
	l->p[l->n++] = (struct lagpt){
		.t = ot >= l->t0 ? (double)(ot - l->t0) / 1e9 :
				   -(double)(l->t0 - ot) / 1e9,
		.ms = (double)ns / 1e6,
		.ns = ns,
		.pid = p->pid,
		.ppid = p->ppid,
		.asid = p->asid,
		.exit = p->category == AF_EVAL_PROCESS_EXIT,
	};
}

static int cmp_lagpt_time(const void *a, const void *b)
{
	const struct lagpt *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->exit - y->exit;
}

static int cmp_lagpt_lag(const void *a, const void *b)
{
	const struct lagpt *x = a, *y = b;
	if (x->exit != y->exit)
		return x->exit - y->exit;
	return x->ns < y->ns ? -1 : x->ns > y->ns;
}

/* Lag statistics of one kind, for the title, summary and cross-check. */
struct lstats {
	size_t n;      /* samples */
	double mean;   /* ms */
	double max;    /* ms */
	double min;    /* ms */
};

static void lag_stats(const struct lagpt *p, size_t n, int exit,
		      struct lstats *s)
{
	long double sum = 0;
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < n; i++) {
		if (p[i].exit != exit)
			continue;
		if (!s->n || p[i].ms > s->max)
			s->max = p[i].ms;
		if (!s->n || p[i].ms < s->min)
			s->min = p[i].ms;
		sum += p[i].ns;
		s->n++;
	}
	if (s->n)
		s->mean = (double)(sum / s->n / 1e6L);
}

/* ---- gnuplot ---- */

/* Finds gnuplot: $ANTFARM_GNUPLOT, else the first on $PATH. Returns 0 and
 * an absolute path (the child runs in another directory), or -1. */
static int find_gnuplot(char *out, size_t cap)
{
	const char *env = getenv("ANTFARM_GNUPLOT");
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		cwd[0] = '\0';
	if (env && *env) {
		if (access(env, X_OK) != 0)
			return -1;
		if (env[0] == '/')
			snprintf(out, cap, "%s", env);
		else
			snprintf(out, cap, "%s/%s", cwd, env);
		return 0;
	}
	const char *path = getenv("PATH");
	if (!path)
		return -1;
	for (const char *p = path;;) {
		const char *colon = strchr(p, ':');
		size_t len = colon ? (size_t)(colon - p) : strlen(p);
		char dir[PATH_MAX];
		if (len < sizeof(dir)) {
			memcpy(dir, p, len);
			dir[len] = '\0';
			if (!len)
				snprintf(dir, sizeof(dir), ".");
			int k = dir[0] == '/' ?
					snprintf(out, cap, "%s/gnuplot", dir) :
					snprintf(out, cap, "%s/%s/gnuplot", cwd,
						 dir);
			struct stat st;
			if (k > 0 && (size_t)k < cap && stat(out, &st) == 0 &&
			    S_ISREG(st.st_mode) && access(out, X_OK) == 0)
				return 0;
		}
		if (!colon)
			return -1;
		p = colon + 1;
	}
}

/* Runs `gnuplot plot.gp` inside dir. Returns 0, or -1 with why. */
static int run_gnuplot(const char *gp, const char *dir, char *why, size_t cap)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(why, cap, "cannot start gnuplot: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);
		if (chdir(dir) != 0)
			_exit(126);
		int err = open("gnuplot.err", O_WRONLY | O_CREAT | O_TRUNC,
			       0600);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
		}
		if (err >= 0)
			dup2(err, 2);
		execl(gp, "gnuplot", "plot.gp", (char *)NULL);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			snprintf(why, cap, "waiting for gnuplot: %s",
				 strerror(errno));
			return -1;
		}
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	/* The first non-empty line gnuplot printed says why. */
	char errpath[PATH_MAX + 16], line[512] = "";
	snprintf(errpath, sizeof(errpath), "%s/gnuplot.err", dir);
	FILE *f = fopen(errpath, "r");
	if (f) {
		char buf[512];
		while (fgets(buf, sizeof(buf), f)) {
			buf[strcspn(buf, "\r\n")] = '\0';
			const char *s = buf + strspn(buf, " \t^");
			if (*s) {
				snprintf(line, sizeof(line), "%s", s);
				break;
			}
		}
		fclose(f);
	}
	if (WIFSIGNALED(st))
		snprintf(why, cap, "gnuplot died of signal %d%s%s",
			 WTERMSIG(st), line[0] ? ": " : "", line);
	else
		snprintf(why, cap, "gnuplot failed (status %d)%s%s",
			 WEXITSTATUS(st), line[0] ? ": " : "", line);
	return -1;
}

/* The terminal: pngcairo when gnuplot has it, else libgd's png. */
static void gp_terminal(FILE *f, int w, int h)
{
	fprintf(f,
		"if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
		"  set terminal pngcairo noenhanced size %d,%d font 'sans,10'\n"
		"} else {\n"
		"  set terminal png noenhanced size %d,%d\n"
		"}\n"
		"set output 'out.png'\n",
		w, h, w, h);
}

/* Copies s into a title gnuplot can quote: printable ASCII, no quotes or
 * backslashes. */
static void safe_text(char *dst, size_t cap, const char *s)
{
	size_t n = 0;
	for (; *s && n + 1 < cap; s++) {
		unsigned char ch = (unsigned char)*s;
		dst[n++] = ch < 0x20 || ch >= 0x7f || ch == '\'' ||
					   ch == '"' || ch == '\\' ?
				   '_' :
				   (char)ch;
	}
	dst[n] = '\0';
}

static int write_timeline_gp(FILE *f, const char *title, double xmax,
			     double binw)
{
	gp_terminal(f, 1000, 750);
	fprintf(f,
		"set datafile separator whitespace\n"
		"set multiplot layout 2,1 title '%s'\n"
		"set grid\n"
		"set xrange [0:%.9g]\n"
		"set xlabel 'time since the measurement began (s)'\n"
		"set ylabel 'live processes (mean per %.3g ms)'\n"
		"set key top right\n"
		"set yrange [0:*]\n"
		"plot 'data.txt' using 1:2 with lines lw 2 lc rgb '#1f4e9c' "
		"title 'reported by the guest OS', \\\n"
		"     'data.txt' using 1:3 with lines lw 2 dt 2 lc rgb '#d07000' "
		"title 'inferred by antfarm'\n"
		"set ylabel 'inferred - OS (processes)'\n"
		"set yrange [*:*]\n"
		"set offsets 0, 0, 0.5, 0.5\n"
		"plot 'data.txt' using 1:5:6 with filledcurves "
		"fc rgb '#f0b0b0' fs solid 0.6 noborder "
		"title 'range within each bin', \\\n"
		"     'data.txt' using 1:4 with lines lw 1.5 lc rgb '#b00000' "
		"title 'mean per bin'\n"
		"unset multiplot\n",
		title, xmax > 0 ? xmax : 1, binw * 1e3);
	return ferror(f) ? -1 : 0;
}

static int write_lag_gp(FILE *f, const char *title, int have[2], int logy)
{
	gp_terminal(f, 1000, 750);
	fprintf(f,
		"set datafile separator whitespace\n"
		"set multiplot layout 2,1 title '%s'\n"
		"set grid\n"
		"set key top right\n"
		"set xlabel 'time of the guest OS report since the measurement "
		"began (s)'\n"
		"set ylabel 'lag (ms%s)'\n"
		"%s",
		title, logy ? ", log scale" : "",
		logy ? "set logscale y\n" : "");
	/* index 0: creates, index 1: exits (data.txt, time order); the same
	 * in cdf.txt, lag order with the cumulative fraction. */
	const char *names[2] = { "create lag", "exit lag" };
	const char *style[2] = { "pt 7 ps 0.6 lc rgb '#1f4e9c'",
				 "pt 5 ps 0.5 lc rgb '#d07000'" };
	fputs("plot ", f);
	for (int k = 0, first = 1; k < 2; k++) {
		if (!have[k])
			continue;
		fprintf(f, "%s'data.txt' index %d using 1:2 with points %s "
			"title '%s'", first ? "" : ", ", k, style[k], names[k]);
		first = 0;
	}
	fputc('\n', f);
	fprintf(f,
		"unset logscale y\n"
		"%s"
		"set xlabel 'lag (ms%s)'\n"
		"set ylabel 'fraction of processes'\n"
		"set yrange [0:1.02]\n"
		"set key bottom right\n",
		logy ? "set logscale x\n" : "", logy ? ", log scale" : "");
	fputs("plot ", f);
	for (int k = 0, first = 1; k < 2; k++) {
		if (!have[k])
			continue;
		fprintf(f, "%s'cdf.txt' index %d using 1:2 with steps lw 2 "
			"lc rgb '%s' title '%s'", first ? "" : ", ", k,
			k ? "#d07000" : "#1f4e9c", names[k]);
		first = 0;
	}
	fputs("\nunset multiplot\n", f);
	return ferror(f) ? -1 : 0;
}

/* Copies src to dst (created or truncated). Returns 0 or an errno. */
static int copy_file(const char *src, const char *dst)
{
	FILE *in = fopen(src, "rb");
	if (!in)
		return errno;
	FILE *out = fopen(dst, "wb");
	if (!out) {
		int e = errno;
		fclose(in);
		return e;
	}
	char buf[65536];
	size_t n;
	int e = 0;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n) {
			e = errno ? errno : EIO;
			break;
		}
	if (!e && ferror(in))
		e = EIO;
	fclose(in);
	if (fclose(out) != 0 && !e)
		e = errno ? errno : EIO;
	return e;
}

/* 1 if path holds a PNG image (signature and IHDR). */
static int is_png(const char *path)
{
	static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n',
					      0x1a, '\n' };
	unsigned char buf[16];
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	return n == sizeof(buf) && !memcmp(buf, sig, 8) &&
	       !memcmp(buf + 12, "IHDR", 4);
}

/* ---- the command ---- */

/* Temporary files of one plot. */
struct tmpfiles {
	char dir[PATH_MAX]; /* private directory, "" if none */
};

static void tmp_cleanup(struct tmpfiles *tf)
{
	static const char *const names[] = { "plot.gp", "data.txt", "cdf.txt",
					     "out.png", "gnuplot.err" };
	if (!tf->dir[0])
		return;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char p[PATH_MAX + 32];
		snprintf(p, sizeof(p), "%s/%s", tf->dir, names[i]);
		unlink(p);
	}
	rmdir(tf->dir);
	tf->dir[0] = '\0';
}

static FILE *tmp_open(const struct tmpfiles *tf, const char *name)
{
	char p[PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/%s", tf->dir, name);
	return fopen(p, "w");
}

/* Closes f; -1 if anything written to it failed. */
static int close_ok(FILE *f)
{
	int bad = ferror(f);
	return fclose(f) != 0 || bad ? -1 : 0;
}

static int run_plot(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "kind", required_argument, NULL, 'k' },
		{ "data", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	enum plot_kind kind = PLOT_TIMELINE;
	const char *out = NULL, *data = NULL;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:k:d:", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (!*optarg)
				return cli_usage_error("plot", "-o needs a file");
			out = optarg;
			break;
		case 'k':
			if (!strcmp(optarg, "timeline"))
				kind = PLOT_TIMELINE;
			else if (!strcmp(optarg, "lag"))
				kind = PLOT_LAG;
			else
				return cli_usage_error("plot", "unknown kind "
						       "'%s' (timeline, lag)",
						       optarg);
			break;
		case 'd':
			if (!*optarg)
				return cli_usage_error("plot", "--data needs a "
						       "file");
			data = optarg;
			break;
		default:
			return cli_bad_option("plot", c, argv);
		}
	}
	if (!out && !data)
		return cli_usage_error("plot", "give -o FILE.png (and/or "
				       "--data FILE.csv)");
	if (optind != argc - 1)
		return cli_usage_error("plot", optind >= argc ?
					       "no trace given" :
					       "one trace at a time");

	/* gnuplot first: a long replay should not end in "not installed". */
	char gp[PATH_MAX + 16];
	if (out && find_gnuplot(gp, sizeof(gp)) != 0) {
		cli_error("plot: gnuplot not found (apt-get install "
			  "gnuplot-nox, or set ANTFARM_GNUPLOT)");
		return CLI_EXIT_INPUT;
	}

	const char *path;
	struct af_trace_reader *r;
	int rc = cli_open_trace_arg("plot", argc, argv, &path, &r);
	if (rc)
		return rc;
	char guest[sizeof(((struct af_trace_info *)0)->guest) + 1];
	memcpy(guest, af_trace_reader_info(r)->guest, sizeof(guest) - 1);
	guest[sizeof(guest) - 1] = '\0';

	struct collect col = { 0 };
	rc = af_eval_new(&col.eval);
	if (rc) {
		af_trace_reader_free(r);
		cli_error("plot: %s", strerror(-rc));
		return CLI_EXIT_INPUT;
	}
	struct af_replay_sink sink = { on_event, on_truth, &col };
	rc = af_replay(r, &sink, NULL);
	if (rc < 0) {
		rc = cli_trace_error(path, r, rc);
		af_trace_reader_free(r);
		goto out_col;
	}
	af_trace_reader_free(r);
	struct af_eval_result res;
	rc = col.err ? col.err : af_eval_finish(col.eval, &res);
	if (rc) {
		cli_error("plot: %s: %s", path, strerror(-rc));
		rc = CLI_EXIT_INPUT;
		goto out_col;
	}
	/* Entries carry 32-bit sequence numbers, as in lib/eval. */
	if (col.nt + 2 * col.ne + 1 > UINT32_MAX) {
		cli_error("plot: %s: too many events to draw", path);
		rc = CLI_EXIT_INPUT;
		goto out_col;
	}
	size_t n_proc_truth = 0;
	for (size_t i = 0; i < col.nt; i++)
		n_proc_truth += col.t[i].kind != AF_TRUTH_EXEC;
	if (!n_proc_truth) {
		cli_error("plot: %s: the trace holds no process creates or "
			  "exits from the guest (record one with 'antfarm run "
			  "--record')", path);
		rc = CLI_EXIT_INPUT;
		goto out_col;
	}

	/* The window drawn: BEGIN..END, else what the trace holds. */
	uint64_t wb = col.has_begin ? col.begin : col.tmin;
	uint64_t we = col.has_end ? col.end : col.tmax;
	if (we < wb)
		we = wb; /* END before BEGIN: an empty window */
	const char *base = strrchr(path, '/');
	base = base && base[1] ? base + 1 : path;
	char title[512], sbase[96], sguest[80];
	safe_text(sbase, sizeof(sbase), base);
	safe_text(sguest, sizeof(sguest), guest);

	struct tmpfiles tf = { "" };
	const char *td = getenv("TMPDIR");
	if (!td || !*td)
		td = "/tmp";
	if (out && (snprintf(tf.dir, sizeof(tf.dir), "%s/antfarm-plot.XXXXXX",
			     td) >= (int)sizeof(tf.dir) ||
		    !mkdtemp(tf.dir))) {
		tf.dir[0] = '\0';
		cli_error("plot: cannot create a temporary directory in %s", td);
		rc = CLI_EXIT_INPUT;
		goto out_col;
	}

	FILE *dcsv = NULL, *gd = NULL, *gc = NULL, *gs = NULL;
	struct tpoint *tp = NULL;
	struct lagpt *lp = NULL;
	size_t ntp = 0, nlp = 0;
	struct tstats ts;
	struct lstats ls[2];
	char why[640] = "";

	if (data && !(dcsv = fopen(data, "w"))) {
		cli_error("plot: --data %s: %s", data, strerror(errno));
		rc = CLI_EXIT_INPUT;
		goto out;
	}
	if (out && (!(gd = tmp_open(&tf, "data.txt")) ||
		    !(gs = tmp_open(&tf, "plot.gp")))) {
		cli_error("plot: cannot write in %s: %s", tf.dir,
			  strerror(errno));
		rc = CLI_EXIT_INPUT;
		goto out;
	}

	if (kind == PLOT_TIMELINE) {
		rc = build_timeline(&col, wb, we, &tp, &ntp);
		if (rc) {
			cli_error("plot: %s", strerror(-rc));
			rc = CLI_EXIT_INPUT;
			goto out;
		}
		timeline_stats(tp, ntp, &ts);
		if (dcsv)
			fputs("time_s,os_processes,inferred_processes,"
			      "difference\n", dcsv);
		for (size_t i = 0; dcsv && i < ntp; i++)
			fprintf(dcsv, "%.9f,%" PRId64 ",%" PRId64 ",%" PRId64
				"\n", tp[i].t, tp[i].os, tp[i].inf,
				tp[i].inf - tp[i].os);
		if (gd) {
			static struct tbin bins[TIMELINE_BINS];
			timeline_bins(tp, ntp, ts.span_s, bins, TIMELINE_BINS);
			for (size_t k = 0; k < TIMELINE_BINS; k++)
				fprintf(gd, "%.9f %.6f %.6f %.6f %" PRId64
					" %" PRId64 "\n", bins[k].t, bins[k].os,
					bins[k].inf, bins[k].d, bins[k].dmin,
					bins[k].dmax);
		}
		snprintf(title, sizeof(title),
			 "%s (%s): live processes, OS vs antfarm; |difference| "
			 "max %" PRId64 ", mean %.3f, nonzero %.2f%% of the time",
			 sbase, sguest, ts.diff_max, ts.diff_mean,
			 100 * ts.diff_frac);
		if (gs)
			write_timeline_gp(gs, title, ts.span_s,
					  ts.span_s / TIMELINE_BINS);
	} else {
		struct lagcol lc = { .t0 = wb };
		rc = af_eval_pairs(col.eval, on_pair, &lc);
		if (!rc)
			rc = lc.err;
		lp = lc.p;
		nlp = lc.n;
		if (rc) {
			cli_error("plot: %s", strerror(-rc));
			rc = CLI_EXIT_INPUT;
			goto out;
		}
		lag_stats(lp, nlp, 0, &ls[0]);
		lag_stats(lp, nlp, 1, &ls[1]);
		if (!nlp) {
			cli_error("plot: %s: no process create or exit was "
				  "matched to an inferred one: no lag to plot",
				  path);
			rc = CLI_EXIT_INPUT;
			goto out;
		}
		qsort(lp, nlp, sizeof(*lp), cmp_lagpt_time);
		if (dcsv)
			fputs("kind,os_time_s,lag_ms,pid,ppid,asid\n", dcsv);
		for (int k = 0; k < 2; k++) {
			for (size_t i = 0; i < nlp; i++) {
				if (lp[i].exit != k)
					continue;
				if (dcsv)
					fprintf(dcsv, "%s,%.9f,%.6f,%" PRIu32
						",%" PRIu32 ",0x%" PRIx64 "\n",
						k ? "exit" : "create", lp[i].t,
						lp[i].ms, lp[i].pid,
						lp[i].ppid, lp[i].asid);
				if (gd)
					fprintf(gd, "%.9f %.6f\n", lp[i].t,
						lp[i].ms);
			}
			if (gd)
				fputs(ls[k].n ? "\n\n" : "0 NaN\n\n\n", gd);
		}
		int logy = (!ls[0].n || ls[0].min > 0) &&
			   (!ls[1].n || ls[1].min > 0);
		int have[2] = { ls[0].n > 0, ls[1].n > 0 };
		if (out) {
			qsort(lp, nlp, sizeof(*lp), cmp_lagpt_lag);
			if (!(gc = tmp_open(&tf, "cdf.txt"))) {
				cli_error("plot: cannot write in %s: %s", tf.dir,
					  strerror(errno));
				rc = CLI_EXIT_INPUT;
				goto out;
			}
			for (int k = 0; k < 2; k++) {
				size_t m = 0;
				for (size_t i = 0; i < nlp; i++)
					if (lp[i].exit == k)
						fprintf(gc, "%.6f %.9f\n",
							lp[i].ms,
							(double)++m /
								(double)ls[k].n);
				fputs(m ? "\n\n" : "1 NaN\n\n\n", gc);
			}
		}
		char part[2][96];
		for (int k = 0; k < 2; k++) {
			if (ls[k].n)
				snprintf(part[k], sizeof(part[k]),
					 "%s n %zu, mean %.3f ms, max %.3f ms",
					 k ? "exit" : "create", ls[k].n,
					 ls[k].mean, ls[k].max);
			else
				snprintf(part[k], sizeof(part[k]),
					 "%s: none matched", k ? "exit" : "create");
		}
		snprintf(title, sizeof(title), "%s (%s): %s; %s", sbase, sguest,
			 part[0], part[1]);
		if (gs)
			write_lag_gp(gs, title, have, logy);
	}

	/* Every file written in full, then gnuplot. */
	if (dcsv) {
		int bad = close_ok(dcsv);
		dcsv = NULL;
		if (bad) {
			cli_error("plot: --data %s: write error", data);
			rc = CLI_EXIT_INPUT;
			goto out;
		}
	}
	if (out) {
		int bad = close_ok(gd) | close_ok(gs) | (gc ? close_ok(gc) : 0);
		gd = gs = gc = NULL;
		if (bad) {
			cli_error("plot: cannot write in %s", tf.dir);
			rc = CLI_EXIT_INPUT;
			goto out;
		}
		if (run_gnuplot(gp, tf.dir, why, sizeof(why)) != 0) {
			cli_error("plot: %s", why);
			rc = CLI_EXIT_INPUT;
			goto out;
		}
		char png[PATH_MAX + 16];
		snprintf(png, sizeof(png), "%s/out.png", tf.dir);
		if (!is_png(png)) {
			cli_error("plot: gnuplot made no PNG image (does it have "
				  "the png or pngcairo terminal?)");
			rc = CLI_EXIT_INPUT;
			goto out;
		}
		int e = copy_file(png, out);
		if (e) {
			cli_error("plot: %s: %s", out, strerror(e));
			rc = CLI_EXIT_INPUT;
			goto out;
		}
	}
	/* One summary line. */
	if (kind == PLOT_TIMELINE)
		printf("timeline: %zu points over %.3f s; live processes max: "
		       "OS %" PRId64 ", inferred %" PRId64 "; |OS - inferred| "
		       "max %" PRId64 ", time-weighted mean %.4f, nonzero "
		       "%.2f%% of the time\n",
		       ts.points, ts.span_s, ts.os_max, ts.inf_max, ts.diff_max,
		       ts.diff_mean, 100 * ts.diff_frac);
	else
		printf("lag: create n %zu mean %.3f ms max %.3f ms; exit n %zu "
		       "mean %.3f ms max %.3f ms\n",
		       ls[0].n, ls[0].mean, ls[0].max, ls[1].n, ls[1].mean,
		       ls[1].max);
	rc = cli_finish_output();
out:
	if (dcsv)
		fclose(dcsv);
	if (gd)
		fclose(gd);
	if (gc)
		fclose(gc);
	if (gs)
		fclose(gs);
	tmp_cleanup(&tf);
	free(tp);
	free(lp);
out_col:
	af_eval_free(col.eval);
	free(col.t);
	free(col.e);
	return rc;
}

const struct cli_cmd cli_cmd_plot = {
	.name = "plot",
	.summary = "draw a trace's process counts or lags (gnuplot, PNG)",
	.usage =
		"usage: antfarm plot TRACE -o FILE.png [--kind timeline|lag]\n"
		"                    [--data FILE.csv]\n"
		"\n"
		"Replays TRACE, which must hold the guest's ground truth (a\n"
		"trace of 'antfarm run --record', or of 'antfarm synth'), and\n"
		"draws with gnuplot (run as a child; apt-get install\n"
		"gnuplot-nox). Only the trace's measurement window counts, as\n"
		"in 'antfarm eval'; time is seconds since the window opened.\n"
		"\n"
		"  -o, --output FILE  the PNG image to write\n"
		"  -k, --kind KIND    timeline (default): live processes the\n"
		"                     guest reported and antfarm inferred over\n"
		"                     time, and their difference, inferred -\n"
		"                     OS (the Antfarm paper's Figure 3); lag:\n"
		"                     the create and exit lag (ms) of every\n"
		"                     process 'antfarm eval' matched, against\n"
		"                     time and as a cumulative distribution\n"
		"                     (Figure 2)\n"
		"  -d, --data FILE    also write the numbers as CSV: timeline\n"
		"                     time_s,os_processes,inferred_processes,\n"
		"                     difference (one row per change); lag\n"
		"                     kind,os_time_s,lag_ms,pid,ppid,asid\n"
		"\n"
		"Prints one summary line. A process is counted from its create\n"
		"inside the window to its exit; processes older than the window\n"
		"are not counted on either side. Environment: ANTFARM_GNUPLOT\n"
		"(the gnuplot to run; default: gnuplot on PATH).\n",
	.run = run_plot,
};
