/*
 * lib/synth/synth_sched.c - the scheduler and the workloads of the synthetic
 * models: a discrete-event simulation on one clock.
 *
 * Each vCPU runs one process at a time in bursts; a burst starts with the
 * process's actions for that step (system calls, page faults) and ends with
 * it sleeping, blocking, yielding, exiting or running on (preempted only if
 * another process waits for the vCPU). A new child runs first, on its
 * parent's vCPU; woken processes go to their last vCPU if idle, else to an
 * idle one, else back to their last one; a parent woken by its child's exit
 * goes to the child's vCPU (wake-affine). Idle vCPUs load the kernel's own
 * tables, or with lazy TLB keep the last address space loaded.
 *
 * Workloads (Antfarm paper 6.1.1): a driver shell, set up before the
 * measurement window, creates n processes one per interval (fork, fork+exec,
 * vfork+exec, or CreateProcess); each lives for the lifetime, mostly asleep
 * (it runs at start, wakes a few times, then exits). compile models
 * "make -j": make starts shells, shells run the gcc driver with vfork+exec
 * (or fork subshells, or just run builtins), gcc runs cc1 and as (or
 * collect2 and ld), CPU-bound, with overlapping lifetimes. Two daemons wake
 * now and then throughout. The window (BEGIN/END truth) opens once the
 * driver is set up and closes after the last workload process exited and
 * the driver ran again (a switch, which lets the last exit be inferred).
 *
 * With PCID, stale TLB entries of a dead address space stay tagged with a
 * slot until that slot is reused, so after the window closes the driver runs
 * a few short commands on every vCPU (seven each, more than the six slots);
 * the evaluation accepts inferences up to AF_EVAL_GRACE_NS after END.
 */
#include "synth_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000000ull
#define US 1000ull
#define SEC 1000000000ull
#define NEVER UINT64_MAX
#define T_BEGIN (1 * SEC)
#define N_DAEMONS 2
#define SLICE (10 * MS)
#define EPILOGUE_PER_VCPU 7

/* compile job kinds: processes each creates */
enum { JOB_CC, JOB_LINK, JOB_ECHO, JOB_SUB };
static const unsigned job_size[] = { [JOB_CC] = 4, [JOB_LINK] = 4,
				     [JOB_ECHO] = 1, [JOB_SUB] = 2 };
static const unsigned job_weight[] = { [JOB_CC] = 70, [JOB_LINK] = 8,
				       [JOB_ECHO] = 12, [JOB_SUB] = 10 };

/* ---- event heap ---- */

static int ev_less(const struct sy_ev *a, const struct sy_ev *b)
{
	return a->t != b->t ? a->t < b->t : a->seq < b->seq;
}

static void ev_push(struct sy *s, uint64_t t, int type, unsigned v,
		    struct sy_proc *p)
{
	size_t i;

	if (s->nheap == s->capheap) {
		size_t ncap = s->capheap ? s->capheap * 2 : 256;
		struct sy_ev *nh = realloc(s->heap, ncap * sizeof(*nh));
		if (!nh) {
			s->err = -ENOMEM;
			return;
		}
		s->heap = nh;
		s->capheap = ncap;
	}
	i = s->nheap++;
	s->heap[i] = (struct sy_ev){ t, s->evseq++, type, v, p };
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (!ev_less(&s->heap[i], &s->heap[up]))
			break;
		struct sy_ev tmp = s->heap[i];
		s->heap[i] = s->heap[up];
		s->heap[up] = tmp;
		i = up;
	}
}

static int ev_pop(struct sy *s, struct sy_ev *out)
{
	size_t i = 0;

	if (!s->nheap)
		return 0;
	*out = s->heap[0];
	s->heap[0] = s->heap[--s->nheap];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < s->nheap && ev_less(&s->heap[l], &s->heap[m]))
			m = l;
		if (r < s->nheap && ev_less(&s->heap[r], &s->heap[m]))
			m = r;
		if (m == i)
			break;
		struct sy_ev tmp = s->heap[i];
		s->heap[i] = s->heap[m];
		s->heap[m] = tmp;
		i = m;
	}
	return 1;
}

static uint64_t rnd(struct sy *s, uint64_t lo, uint64_t hi);

/* ---- run queues ---- */

static int vcpu_idle(const struct sy *s, unsigned v)
{
	return !s->v[v].cur && !s->v[v].rq_head;
}

void sy_enqueue(struct sy *s, struct sy_proc *p, unsigned v, int front)
{
	struct sy_vcpu *c = &s->v[v];

	p->state = S_RUNNABLE;
	p->vcpu = v;
	p->rq_next = NULL;
	if (front) {
		p->rq_next = c->rq_head;
		c->rq_head = p;
		if (!c->rq_tail)
			c->rq_tail = p;
	} else {
		if (c->rq_tail)
			c->rq_tail->rq_next = p;
		else
			c->rq_head = p;
		c->rq_tail = p;
	}
	if (!c->cur)
		ev_push(s, s->now, EV_KICK, v, NULL);
}

static struct sy_proc *dequeue(struct sy *s, unsigned v)
{
	struct sy_vcpu *c = &s->v[v];
	struct sy_proc *p = c->rq_head;

	if (p) {
		c->rq_head = p->rq_next;
		if (!c->rq_head)
			c->rq_tail = NULL;
		p->rq_next = NULL;
	}
	return p;
}

/* Wakes p at time t. hint: a vCPU to wake it on (wake-affine), -1: any. */
void sy_wake(struct sy *s, struct sy_proc *p, uint64_t t, int hint)
{
	p->wake_hint = hint;
	if (t <= s->now && hint >= 0 && s->v[hint].cur &&
	    (p->state == S_BLOCKED || p->state == S_SLEEPING)) {
		/* the waker's vCPU is busy: p runs when the waker is done */
		sy_enqueue(s, p, (unsigned)hint, 0);
		return;
	}
	if (p->state == S_RUNNING) {
		p->wake_pending = 1;
		return;
	}
	p->pokes++;
	ev_push(s, t, EV_POKE, 0, p);
}

static void do_wake(struct sy *s, struct sy_proc *p)
{
	unsigned v = p->vcpu;

	if (p->state == S_RUNNING) {
		p->wake_pending = 1;
		return;
	}
	if (p->state != S_SLEEPING && p->state != S_BLOCKED)
		return;
	if (p->pin >= 0) {
		v = (unsigned)p->pin;
	} else if (p->wake_hint >= 0) {
		v = (unsigned)p->wake_hint;
	} else if (s->nv > 1) {
		/* an idle vCPU, any (the load balancer spreads sleepers over
		 * the idle CPUs), else the shortest queue */
		unsigned idle = 0, pick, best = v, qbest = ~0u;
		for (unsigned w = 0; w < s->nv; w++)
			idle += vcpu_idle(s, w);
		if (idle) {
			pick = (unsigned)rnd(s, 0, idle - 1);
			for (unsigned w = 0; w < s->nv; w++)
				if (vcpu_idle(s, w) && pick-- == 0)
					v = w;
		} else {
			for (unsigned w = 0; w < s->nv; w++) {
				unsigned q = 0;
				for (struct sy_proc *x = s->v[w].rq_head; x;
				     x = x->rq_next)
					q++;
				if (q < qbest) {
					qbest = q;
					best = w;
				}
			}
			v = best;
		}
	}
	p->wake_hint = -1;
	sy_enqueue(s, p, v, 0);
}

/* ---- processes' steps ---- */

static void finish(struct sy_proc *p, int next, uint64_t burst)
{
	p->next = next;
	p->burst = burst;
}

static void sleep_until(struct sy *s, struct sy_proc *p, uint64_t t,
			uint64_t burst)
{
	p->wake_at = t > s->now + burst ? t : s->now + burst + 1;
	finish(p, N_SLEEP, burst);
}

static uint64_t rnd(struct sy *s, uint64_t lo, uint64_t hi)
{
	return sy_range(&s->rng, lo, hi);
}

/* How this OS starts a program in a new process. */
static int how_exec(const struct sy *s)
{
	return s->windows ? H_CREATE : H_FORKEXEC;
}

static struct sy_proc *spawn_front(struct sy *s, struct sy_proc *parent,
				   int how, int role, int prog)
{
	struct sy_proc *c = sy_spawn(s, parent, how, role, prog);

	if (c)
		sy_enqueue(s, c, s->cv, 1); /* the child runs first */
	return c;
}

/* Blocks until every child has exited (or carries on if none is left). */
static void wait_children(struct sy_proc *p)
{
	if (p->children) {
		p->wait_all = 1;
		finish(p, N_BLOCK, 20 * US);
	} else {
		finish(p, N_CONT, 20 * US);
	}
}

/* A synthetic process's next wake-up: a few per lifetime. */
static uint64_t next_wake(struct sy *s, const struct sy_proc *p)
{
	uint64_t l = s->o.lifetime_ns;
	uint64_t t = s->now + rnd(s, l / 3, l);
	return t < p->death ? t : p->death;
}

static void step_init(struct sy *s, struct sy_proc *p)
{
	struct sy_proc *c;

	switch (p->pc++) {
	case 0:
		sy_fault_in(s, p, ~0u);
		finish(p, N_CONT, 200 * US);
		return;
	case 1:
	case 2:
		spawn_front(s, p, how_exec(s), R_DAEMON, P_DAEMON);
		finish(p, N_YIELD, 50 * US);
		return;
	case 3:
		c = spawn_front(s, p, how_exec(s), R_DRIVER, P_SH);
		s->driver = c;
		finish(p, N_YIELD, 50 * US);
		return;
	default:
		sleep_until(s, p, NEVER, 100 * US);
		return;
	}
}

static void step_daemon(struct sy *s, struct sy_proc *p)
{
	if (p->pc++ == 0) {
		/* started: runs again soon (still before the window) */
		sy_fault_in(s, p, ~0u);
		sleep_until(s, p, s->now + rnd(s, 10 * MS, 50 * MS),
			    rnd(s, 50 * US, 300 * US));
		return;
	}
	sy_touch(s, p, 0, rnd(s, 0, 3) == 0, rnd(s, 0, 3) == 0);
	sleep_until(s, p, s->now + rnd(s, 300 * MS, 2 * SEC),
		    rnd(s, 50 * US, 300 * US));
}

/* BEGIN and END are stamped apart from whatever came just before. */
static void window_mark(struct sy *s, unsigned kind)
{
	sy_advance(s, 1 * US);
	sy_truth(s, kind, NULL, AF_ASID_NONE);
	sy_advance(s, 1 * US);
}

/* The synthetic workload's next process. */
static void driver_spawn(struct sy *s, struct sy_proc *p)
{
	static const int how_of[] = { [AF_SYNTH_FORK] = H_FORK,
				      [AF_SYNTH_FORKEXEC] = H_FORKEXEC,
				      [AF_SYNTH_VFORKEXEC] = H_VFORKEXEC };
	int how = s->windows ? H_CREATE : how_of[s->o.workload];
	struct sy_proc *c;

	s->spawned++;
	s->next_spawn += s->o.interval_ns;
	c = spawn_front(s, p, how, R_CHILD, P_CHILD);
	if (!c)
		return;
	c->death = s->now + s->o.lifetime_ns;
	finish(p, how == H_VFORKEXEC ? N_BLOCK : N_YIELD, 30 * US);
}

static void step_driver(struct sy *s, struct sy_proc *p)
{
	switch (p->pc) {
	case 0: /* set up, before the window: runs twice */
		sy_fault_in(s, p, ~0u);
		p->pc = 10;
		sleep_until(s, p, s->now + 20 * MS, 500 * US);
		return;
	case 10:
		p->pc = 1;
		sleep_until(s, p, T_BEGIN, 100 * US);
		return;
	case 1:
		window_mark(s, AF_TRUTH_BEGIN);
		s->next_spawn = s->now + s->o.interval_ns;
		p->pc = 2;
		sleep_until(s, p, s->next_spawn, 50 * US);
		return;
	case 2:
		sy_touch(s, p, rnd(s, 0, 2), 0, 0);
		if (s->o.workload == AF_SYNTH_COMPILE) {
			s->spawned++;
			s->budget = s->o.n - 1;
			spawn_front(s, p, how_exec(s), R_MAKE, P_MAKE);
			finish(p, N_YIELD, 30 * US);
		} else {
			driver_spawn(s, p);
		}
		p->pc = 3;
		return;
	case 3:
		if (s->o.workload != AF_SYNTH_COMPILE &&
		    s->spawned < s->o.n) {
			p->pc = 2;
			sleep_until(s, p, s->next_spawn, 40 * US);
			return;
		}
		p->pc = 4;
		wait_children(p);
		return;
	case 4: /* everything exited, and we switched back in */
		window_mark(s, AF_TRUTH_END);
		if (s->pcid) {
			s->epilogue_left = EPILOGUE_PER_VCPU * s->nv;
			p->pc = 5;
			finish(p, N_CONT, 100 * US);
		} else {
			s->done = 1;
			sleep_until(s, p, NEVER, 100 * US);
		}
		return;
	case 5:
		if (s->epilogue_left) {
			struct sy_proc *c;
			s->epilogue_left--;
			c = spawn_front(s, p, how_exec(s), R_EPILOGUE, P_EPI);
			if (c)
				c->pin = (int)(s->epilogue_left % s->nv);
			finish(p, N_YIELD, 30 * US);
			return;
		}
		p->pc = 6;
		wait_children(p);
		return;
	default:
		s->done = 1;
		sleep_until(s, p, NEVER, 100 * US);
		return;
	}
}

static void step_child(struct sy *s, struct sy_proc *p)
{
	if (p->pc++ == 0) {
		if (s->o.workload == AF_SYNTH_FORK && !s->windows)
			sy_touch(s, p, 2, 1, 0); /* a copy of the shell */
		else
			sy_fault_in(s, p, ~0u);
		if (s->spawned == 1 || rnd(s, 0, 15) == 0)
			sy_map_huge(s, p);
		sleep_until(s, p, next_wake(s, p), rnd(s, 200 * US, MS));
		return;
	}
	if (s->now >= p->death) {
		finish(p, N_EXIT, 50 * US);
		return;
	}
	sy_touch(s, p, rnd(s, 0, 1), rnd(s, 0, 1), rnd(s, 0, 1));
	sleep_until(s, p, next_wake(s, p), rnd(s, 50 * US, 300 * US));
}

static void step_epilogue(struct sy *s, struct sy_proc *p)
{
	if (p->pc++ == 0) {
		sy_fault_in(s, p, ~0u);
		sleep_until(s, p, s->now + MS, 100 * US); /* wakes pinned */
		return;
	}
	finish(p, N_EXIT, 100 * US);
}

static int pick_job(struct sy *s)
{
	unsigned total = 0, r;

	for (int k = 0; k <= JOB_SUB; k++)
		if (job_size[k] <= s->budget)
			total += job_weight[k];
	r = (unsigned)rnd(s, 0, total - 1);
	for (int k = 0; k <= JOB_SUB; k++) {
		if (job_size[k] > s->budget)
			continue;
		if (r < job_weight[k])
			return k;
		r -= job_weight[k];
	}
	return JOB_ECHO;
}

static void step_make(struct sy *s, struct sy_proc *p)
{
	if (p->pc == 0) {
		sy_fault_in(s, p, ~0u);
		p->pc = 1;
		finish(p, N_CONT, rnd(s, 5 * MS, 15 * MS));
		return;
	}
	if (s->budget && s->running_jobs < s->jobs_max) {
		int job = pick_job(s);
		struct sy_proc *c;
		s->budget -= job_size[job];
		s->running_jobs++;
		s->spawned++;
		sy_touch(s, p, rnd(s, 0, 1), rnd(s, 0, 1), 0);
		c = spawn_front(s, p, how_exec(s), R_JOBSH, P_SH);
		if (c)
			c->job = job;
		finish(p, N_YIELD, rnd(s, 100 * US, 400 * US));
		return;
	}
	if (s->running_jobs) {
		p->wait_any = 1;
		finish(p, N_BLOCK, 50 * US);
		return;
	}
	finish(p, N_EXIT, 200 * US);
}

/* vfork+exec on Linux, CreateProcess on Windows; the parent waits. */
static void run_tool(struct sy *s, struct sy_proc *p, int role, int prog)
{
	int how = s->windows ? H_CREATE : H_VFORKEXEC;

	s->spawned++;
	spawn_front(s, p, how, role, prog);
	finish(p, how == H_VFORKEXEC ? N_BLOCK : N_YIELD, 30 * US);
}

static void step_jobsh(struct sy *s, struct sy_proc *p)
{
	switch (p->pc++) {
	case 0:
		sy_fault_in(s, p, ~0u);
		finish(p, N_CONT, rnd(s, MS, 2 * MS));
		return;
	case 1:
		if (p->job == JOB_ECHO) {
			finish(p, N_EXIT, rnd(s, 200 * US, MS));
		} else if (p->job == JOB_SUB) {
			s->spawned++;
			spawn_front(s, p, s->windows ? H_CREATE : H_FORK,
				    R_SUBSH, P_SH);
			finish(p, N_YIELD, 30 * US);
		} else {
			run_tool(s, p, R_GCC, P_GCC);
		}
		return;
	case 2:
		wait_children(p);
		return;
	default:
		finish(p, N_EXIT, rnd(s, 100 * US, 500 * US));
		return;
	}
}

static void step_subsh(struct sy *s, struct sy_proc *p)
{
	if (s->windows)
		sy_fault_in(s, p, ~0u);
	else
		sy_touch(s, p, 2, 1, 0);
	finish(p, N_EXIT, rnd(s, MS, 5 * MS));
}

static void step_gcc(struct sy *s, struct sy_proc *p)
{
	switch (p->pc++) {
	case 0:
		sy_fault_in(s, p, ~0u);
		finish(p, N_CONT, rnd(s, 2 * MS, 4 * MS));
		return;
	case 1:
		if (p->job == JOB_LINK)
			run_tool(s, p, R_COLLECT2, P_COLLECT2);
		else
			run_tool(s, p, R_TOOL, P_CC1);
		return;
	case 2:
	case 4:
		wait_children(p);
		return;
	case 3:
		if (p->job == JOB_LINK)
			finish(p, N_CONT, 100 * US); /* collect2 did it all */
		else
			run_tool(s, p, R_TOOL, P_AS);
		return;
	default:
		finish(p, N_EXIT, rnd(s, 200 * US, MS));
		return;
	}
}

static void step_collect2(struct sy *s, struct sy_proc *p)
{
	switch (p->pc++) {
	case 0:
		sy_fault_in(s, p, ~0u);
		finish(p, N_CONT, MS);
		return;
	case 1:
		run_tool(s, p, R_TOOL, P_LD);
		return;
	case 2:
		wait_children(p);
		return;
	default:
		finish(p, N_EXIT, 300 * US);
		return;
	}
}

static void step_tool(struct sy *s, struct sy_proc *p)
{
	uint64_t slice;

	if (p->pc++ == 0) {
		sy_fault_in(s, p, ~0u);
		if (p->prog == P_CC1)
			p->cpu_left = rnd(s, 30 * MS, 300 * MS);
		else if (p->prog == P_AS)
			p->cpu_left = rnd(s, 5 * MS, 30 * MS);
		else
			p->cpu_left = rnd(s, 20 * MS, 100 * MS);
		if (p->prog == P_CC1 && rnd(s, 0, 31) == 0)
			sy_map_huge(s, p);
	}
	slice = p->cpu_left < SLICE ? p->cpu_left : SLICE;
	p->cpu_left -= slice;
	sy_touch(s, p, 0, (unsigned)rnd(s, 0, p->prog == P_CC1 ? 3 : 1), 0);
	finish(p, p->cpu_left ? N_CONT : N_EXIT, slice);
}

static void step(struct sy *s, struct sy_proc *p)
{
	if (p->exec_prog >= 0) {
		int prog = p->exec_prog;
		p->exec_prog = -1;
		if (!p->vfork_child)
			sy_touch(s, p, 1, 0, 0); /* the child's stack */
		sy_exec(s, p, prog);
		if (s->err)
			return;
	}
	switch (p->role) {
	case R_INIT:
		step_init(s, p);
		break;
	case R_DAEMON:
		step_daemon(s, p);
		break;
	case R_DRIVER:
		step_driver(s, p);
		break;
	case R_CHILD:
		step_child(s, p);
		break;
	case R_MAKE:
		step_make(s, p);
		break;
	case R_JOBSH:
		step_jobsh(s, p);
		break;
	case R_SUBSH:
		step_subsh(s, p);
		break;
	case R_GCC:
		step_gcc(s, p);
		break;
	case R_COLLECT2:
		step_collect2(s, p);
		break;
	case R_TOOL:
		step_tool(s, p);
		break;
	default:
		step_epilogue(s, p);
		break;
	}
}

/* ---- dispatching ---- */

static void schedule(struct sy *s, unsigned v);

static void dispatch(struct sy *s, unsigned v, struct sy_proc *p)
{
	struct sy_vcpu *c = &s->v[v];

	c->cur = p;
	p->state = S_RUNNING;
	p->vcpu = v;
	p->wake_pending = 0;
	sy_advance(s, 2 * US);
	sy_switch(s, v, p->mm);
	sy_return_user(s);
	step(s, p);
	ev_push(s, s->now + p->burst, EV_END, v, p);
}

static void schedule(struct sy *s, unsigned v)
{
	struct sy_proc *p;

	s->cv = v;
	p = dequeue(s, v);
	if (p) {
		dispatch(s, v, p);
		return;
	}
	if (!s->sparc && !s->lazy)
		sy_switch(s, v, s->kmm);
}

/* The burst on v ended: what the process asked for happens now. */
static void burst_end(struct sy *s, unsigned v, struct sy_proc *p)
{
	struct sy_vcpu *c = &s->v[v];

	s->cv = v;
	if (p->next == N_CONT && !c->rq_head) {
		step(s, p); /* runs on: nobody else wants the vCPU */
		ev_push(s, s->now + p->burst, EV_END, v, p);
		return;
	}
	sy_enter_kernel(s);
	c->cur = NULL;
	switch (p->next) {
	case N_EXIT: {
		struct sy_proc *par = p->parent;
		c->cur = p; /* exit runs in its context */
		sy_exit(s, p);
		c->cur = NULL;
		if (p->role == R_JOBSH && s->running_jobs)
			s->running_jobs--;
		sy_proc_free(s, p);
		if (par && par->state == S_DEAD)
			sy_proc_free(s, par);
		break;
	}
	case N_SLEEP:
		p->state = S_SLEEPING;
		if (p->wake_at != NEVER)
			ev_push(s, p->wake_at, EV_WAKE, 0, p);
		break;
	case N_BLOCK:
		if (p->wake_pending) {
			p->wake_pending = 0;
			p->wait_all = p->wait_any = 0;
			sy_enqueue(s, p, v, 0);
		} else {
			p->state = S_BLOCKED;
		}
		break;
	default: /* N_YIELD, or N_CONT with others waiting: preempted */
		sy_enqueue(s, p, v, 0);
		break;
	}
	schedule(s, v);
}

int sy_run(struct sy *s)
{
	struct sy_ev ev;
	uint64_t limit, same = 0, last = 0;

	s->jobs_max = 20;
	limit = T_BEGIN + (uint64_t)s->o.n * s->o.interval_ns +
		4 * s->o.lifetime_ns + 3600 * SEC;
	if (s->o.workload == AF_SYNTH_COMPILE)
		limit = T_BEGIN + (uint64_t)s->o.n * 2 * SEC + 3600 * SEC;
	if (sy_boot(s))
		return s->err;
	while (!s->err && !s->done && ev_pop(s, &ev)) {
		if (ev.t > s->now)
			s->now = ev.t;
		if (s->now > limit)
			return -ETIMEDOUT; /* the model is stuck: a bug */
		same = s->now == last ? same + 1 : 0;
		last = s->now;
		if (same > 1000000)
			return -ELOOP; /* time stands still: a bug */
		switch (ev.type) {
		case EV_POKE:
			ev.p->pokes--;
			/* fall through */
		case EV_WAKE:
			do_wake(s, ev.p);
			break;
		case EV_KICK:
			if (!s->v[ev.v].cur)
				schedule(s, ev.v);
			break;
		default:
			burst_end(s, ev.v, ev.p);
			break;
		}
	}
	if (!s->err && !s->done)
		return -EPROTO; /* ran out of events before the end: a bug */
	return s->err;
}
