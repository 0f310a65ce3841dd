// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * guest/module/antfarm_truth.c - guest kernel module that reports ground truth
 * about processes and address spaces to the VMM over the CPUID channel
 * described in include/antfarm/channel.h.
 *
 * Ground truth is only used to score what antfarm infers (the paper's
 * instrumented guests, section 6.1.1); nothing here feeds the inference.
 *
 * What is reported, and from where (Linux 6.1 and later, x86_64 and i386):
 *   FORK       sched_process_fork tracepoint, child in a new thread group with
 *              its own mm; asid = __pa(child->mm->pgd). Preceded by
 *              AS_CREATE for that mm. A task born from a kernel thread
 *              (user-mode helper: no mm until it execs) is reported as FORK
 *              at its first exec instead, where it gets an address space.
 *   VFORK      sched_process_fork, new thread group sharing the parent's mm
 *              (CLONE_VM without CLONE_THREAD); asid = the shared root.
 *   EXEC       sched_process_exec tracepoint; asid = the new mm's root.
 *   AS_CREATE  at fork (new mm) and at exec: a kprobe on begin_new_exec()
 *              reports bprm->mm before exec_mmap() loads it; without that
 *              kprobe, at the sched_process_exec tracepoint. An mm built for
 *              an exec that fails before begin_new_exec() (e.g. a PATH search
 *              miss) is never loaded and is not reported, nor is its end.
 *   AS_DESTROY kprobe on exit_mmap(), where the mappings and the user page
 *              tables are torn down (only the top-level page is left, freed
 *              later in __mmdrop(), which SMP lazy TLB can delay without
 *              bound); __mmdrop() if that kprobe cannot be placed. Only for
 *              mms this module saw created or found at load; not reported
 *              at all if neither kprobe can be placed.
 *   EXIT       kprobe on do_exit() when the exiting task is the last live
 *              thread of its process (start of exit, mm still attached).
 *              Fallback: sched_process_exit tracepoint, asid none.
 *   SWITCH     sched_switch tracepoint, exec, and __mmdrop() (the old mm of an
 *              exec is dropped right after the new one was loaded), whenever
 *              the mm loaded on this CPU changes. Kernel threads and exiting
 *              tasks without an mm keep the previous mm loaded (lazy TLB), so
 *              they cause none. pid = the incoming process, ppid 0.
 *              AS_DESTROY's pid is the process that created the mm or last
 *              exec'd into it.
 *   BEGIN/END  measurement window. BEGIN at load after all probes are armed
 *              (unless begin=0); either by writing "begin"/"end" to
 *              /proc/antfarm_truth or to /sys/module/antfarm_truth/parameters/mark;
 *              END at unload if the window is still open. Events outside the
 *              window are not reported (bookkeeping goes on).
 * Threads (CLONE_THREAD) and kernel threads are not processes: nothing is
 * reported for them. pid/ppid are thread-group ids (what user space calls
 * pids). With KPTI the asid is still mm->pgd, the kernel half of the pair.
 *
 * Reading /proc/antfarm_truth gives "name value" lines: the window state,
 * which probe points are in use, and a count of every kind reported.
 * verbose=1 logs every event but SWITCH to the kernel log, verbose=2 all.
 */
#include <linux/binfmts.h>
#include <linux/hash.h>
#include <linux/kernel.h>
#include <linux/kprobes.h>
#include <linux/mm_types.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/percpu.h>
#include <linux/printk.h>
#include <linux/proc_fs.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/seq_file.h>
#include <linux/smp.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <asm/page.h>

#include "antfarm/channel.h"
#include "antfarm_truth_kinds.h"

MODULE_LICENSE("Dual MIT/GPL");
MODULE_DESCRIPTION("antfarm ground truth: process and address-space events over CPUID");

#define AF_NONE64 (((u64)AF_CHAN_NONE << 32) | AF_CHAN_NONE)

static bool begin = true;
module_param(begin, bool, 0444);
MODULE_PARM_DESC(begin, "open the measurement window (BEGIN) at load; default 1");

static int verbose;
module_param(verbose, int, 0644);
MODULE_PARM_DESC(verbose, "1: log events but SWITCH to the kernel log; 2: all");

static atomic_t af_open = ATOMIC_INIT(0);   /* 1 while the window is open */
static atomic_long_t af_count[AFT_NKINDS]; /* events reported, per kind */
static atomic_long_t af_untracked;         /* mms the set had no room for */

static const char *const af_kind_name[AFT_NKINDS] = {
	[AFT_FORK] = "fork",           [AFT_EXEC] = "exec",
	[AFT_EXIT] = "exit",           [AFT_AS_CREATE] = "as_create",
	[AFT_AS_DESTROY] = "as_destroy", [AFT_SWITCH] = "switch",
	[AFT_BEGIN] = "begin",         [AFT_END] = "end",
	[AFT_VFORK] = "vfork",
};

/* The mm currently loaded on each CPU, as far as this module has seen. */
static DEFINE_PER_CPU(struct mm_struct *, af_last_mm);

/* ---- the channel ---- */

/* One CPUID with the magic leaf; the VMM reads the registers before it runs. */
static noinline void af_cpuid(u32 kind, u32 pid, u32 ppid, u64 asid)
{
	u32 a = AF_CHAN_MAGIC, b = kind, c = pid, d = ppid;
	u32 lo = (u32)asid, hi = (u32)(asid >> 32);

	asm volatile("cpuid"
		     : "+a"(a), "+b"(b), "+c"(c), "+d"(d)
		     : "S"(lo), "D"(hi)
		     : "memory");
}

/* Deferred printk: safe under the runqueue lock (sched_switch). */
static __printf(1, 2) void af_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintk_emit(0, LOGLEVEL_SCHED, NULL, fmt, ap);
	va_end(ap);
}

static void af_emit(u32 kind, u32 pid, u32 ppid, u64 asid)
{
	if (kind != AFT_BEGIN && kind != AFT_END && !atomic_read(&af_open))
		return;
	af_cpuid(kind, pid, ppid, asid);
	atomic_long_inc(&af_count[kind]);
	if (verbose > 1 || (verbose == 1 && kind != AFT_SWITCH))
		af_log(KERN_INFO "antfarm_truth: %s cpu=%u pid=%u ppid=%u asid=%llx\n",
		       af_kind_name[kind], raw_smp_processor_id(), pid, ppid,
		       (unsigned long long)asid);
}

/* The address-space id of an mm: physical address of its page-table root. */
static u64 af_root(struct mm_struct *mm)
{
	if (!mm || !mm->pgd)
		return AF_NONE64;
	return (u64)__pa(mm->pgd);
}

static u32 af_ppid(struct task_struct *t)
{
	u32 ppid;

	rcu_read_lock();
	ppid = (u32)rcu_dereference(t->real_parent)->tgid;
	rcu_read_unlock();
	return ppid;
}

/* ---- the set of live mms this module reported (or found at load) ----
 * Open addressing with linear probing and backward-shift deletion; fixed
 * size, no allocation in probe context. */
#define AF_SET_BITS 13
#define AF_SET_SIZE (1u << AF_SET_BITS)
#define AF_SET_MASK (AF_SET_SIZE - 1)

struct af_slot {
	struct mm_struct *mm; /* the mm, NULL if the slot is free */
	u32 pid;              /* process that created or last exec'd into it */
};

static struct af_slot af_set[AF_SET_SIZE];
static unsigned int af_set_n;             /* slots in use */
static DEFINE_RAW_SPINLOCK(af_set_lock);
static bool af_track;                     /* an AS_DESTROY kprobe is armed */
static bool af_exit_mmap_on;              /* AS_DESTROY from exit_mmap() */

/* Adds mm; true if it was not there before (or could not be tracked). */
static bool af_set_add(struct mm_struct *mm, u32 pid)
{
	unsigned long flags;
	unsigned int i;
	bool added = true;

	raw_spin_lock_irqsave(&af_set_lock, flags);
	for (i = hash_ptr(mm, AF_SET_BITS); af_set[i].mm; i = (i + 1) & AF_SET_MASK) {
		if (af_set[i].mm == mm) {
			af_set[i].pid = pid;
			added = false;
			goto out;
		}
	}
	if (af_set_n < AF_SET_SIZE - AF_SET_SIZE / 8) {
		af_set[i].mm = mm;
		af_set[i].pid = pid;
		af_set_n++;
	} else {
		atomic_long_inc(&af_untracked);
	}
out:
	raw_spin_unlock_irqrestore(&af_set_lock, flags);
	return added;
}

/* Removes mm; true (and *pid set) if it was there. */
static bool af_set_del(struct mm_struct *mm, u32 *pid)
{
	unsigned long flags;
	unsigned int i, j, k;
	bool found = false;

	raw_spin_lock_irqsave(&af_set_lock, flags);
	for (i = hash_ptr(mm, AF_SET_BITS); af_set[i].mm; i = (i + 1) & AF_SET_MASK) {
		if (af_set[i].mm == mm) {
			found = true;
			break;
		}
	}
	if (found) {
		*pid = af_set[i].pid;
		/* Shift later members of the cluster back over the hole. */
		for (j = (i + 1) & AF_SET_MASK; af_set[j].mm; j = (j + 1) & AF_SET_MASK) {
			k = hash_ptr(af_set[j].mm, AF_SET_BITS);
			if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
				continue; /* its home lies after the hole */
			af_set[i] = af_set[j];
			i = j;
		}
		af_set[i].mm = NULL;
		af_set[i].pid = 0;
		af_set_n--;
	}
	raw_spin_unlock_irqrestore(&af_set_lock, flags);
	return found;
}

/* A new mm: report it unless it is already known. */
static void af_as_created(struct mm_struct *mm, u32 pid, u32 ppid)
{
	if (af_set_add(mm, pid) || !af_track)
		af_emit(AFT_AS_CREATE, pid, ppid, af_root(mm));
}

/* The loaded mm on this CPU is now mm (preemption disabled by the caller). */
static void af_loaded(struct mm_struct *mm, u32 pid)
{
	if (__this_cpu_read(af_last_mm) == mm)
		return;
	__this_cpu_write(af_last_mm, mm);
	af_emit(AFT_SWITCH, pid, 0, af_root(mm));
}

/* ---- tracepoint probes ---- */

static void af_on_fork(void *data, struct task_struct *parent,
		       struct task_struct *child)
{
	struct mm_struct *mm = child->mm;
	u32 pid = (u32)child->tgid, ppid;

	if (child->flags & PF_KTHREAD)
		return;
	if (child->tgid == parent->tgid)
		return; /* a thread, not a process */
	if (!mm)
		return; /* user-mode helper: reported at its first exec */
	ppid = af_ppid(child);
	if (mm == parent->mm) {
		af_emit(AFT_VFORK, pid, ppid, af_root(mm));
		return;
	}
	af_as_created(mm, pid, ppid);
	af_emit(AFT_FORK, pid, ppid, af_root(mm));
}

static bool af_exec_kprobe_on; /* begin_new_exec kprobe armed */

static void af_on_exec(void *data, struct task_struct *p, pid_t old_pid,
		       struct linux_binprm *bprm)
{
	struct mm_struct *mm = p->mm;
	u32 pid = (u32)p->tgid, ppid = af_ppid(p);

	if (!mm)
		return;
	if (!af_exec_kprobe_on)
		af_as_created(mm, pid, ppid);
	/* exec_mmap() loaded the new mm on this CPU without a sched_switch. */
	preempt_disable_notrace();
	af_loaded(mm, pid);
	preempt_enable_notrace();
	af_emit(AFT_EXEC, pid, ppid, af_root(mm));
}

static void af_on_switch(void *data, bool preempt, struct task_struct *prev,
			 struct task_struct *next
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 18, 0)
			 , unsigned int prev_state
#endif
			 )
{
	/* No mm (kernel thread, or a task past exit_mm()): lazy TLB keeps the
	 * previous mm loaded, so nothing changes on this CPU. */
	if (next->mm)
		af_loaded(next->mm, (u32)next->tgid);
}

static bool af_exit_kprobe_on; /* do_exit kprobe armed */

/* Fallback for EXIT when do_exit() cannot be probed: after exit_mm(), so the
 * address space is no longer known. */
static void af_on_exit_tp(void *data, struct task_struct *p)
{
	if (af_exit_kprobe_on || (p->flags & PF_KTHREAD))
		return;
	if (atomic_read(&p->signal->live) != 0)
		return; /* not the last thread */
	af_emit(AFT_EXIT, (u32)p->tgid, af_ppid(p), AF_NONE64);
}

struct af_tp {
	const char *name;      /* tracepoint name */
	void *probe;           /* our probe function */
	struct tracepoint *tp; /* found by name, NULL if not */
	bool on;               /* registered */
};

static struct af_tp af_tps[] = {
	{ "sched_process_fork", af_on_fork },
	{ "sched_process_exec", af_on_exec },
	{ "sched_switch", af_on_switch },
	{ "sched_process_exit", af_on_exit_tp },
};

static void af_find_tp(struct tracepoint *tp, void *priv)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(af_tps); i++)
		if (!strcmp(tp->name, af_tps[i].name))
			af_tps[i].tp = tp;
}

/* ---- kprobes ---- */
#ifdef CONFIG_KPROBES
static int af_kp_exec(struct kprobe *kp, struct pt_regs *regs)
{
	struct linux_binprm *bprm =
		(struct linux_binprm *)regs_get_kernel_argument(regs, 0);
	struct task_struct *t = current;
	u32 pid = (u32)t->tgid, ppid;

	if (!bprm || !bprm->mm)
		return 0;
	ppid = af_ppid(t);
	af_as_created(bprm->mm, pid, ppid);
	if (!t->mm) /* born from a kernel thread: a process from now on */
		af_emit(AFT_FORK, pid, ppid, af_root(bprm->mm));
	return 0;
}

static int af_kp_exit(struct kprobe *kp, struct pt_regs *regs)
{
	struct task_struct *t = current;

	if (t->flags & (PF_KTHREAD | PF_EXITING))
		return 0; /* kernel thread, or a recursive do_exit */
	if (!t->mm)
		return 0;
	if (atomic_read(&t->signal->live) != 1)
		return 0; /* other threads live on */
	af_emit(AFT_EXIT, (u32)t->tgid, af_ppid(t), af_root(t->mm));
	return 0;
}

/* The address space of mm is gone: report it once. */
static void af_destroyed(struct mm_struct *mm)
{
	u32 pid;

	/* At exec the old mm is torn down just after the new one was loaded
	 * (exec_mmap()): report that switch first, so the order is true. */
	if (current->mm && !(current->flags & PF_KTHREAD))
		af_loaded(current->mm, (u32)current->tgid);
	if (af_set_del(mm, &pid))
		af_emit(AFT_AS_DESTROY, pid, 0, af_root(mm));
}

static int af_kp_exit_mmap(struct kprobe *kp, struct pt_regs *regs)
{
	struct mm_struct *mm =
		(struct mm_struct *)regs_get_kernel_argument(regs, 0);

	if (mm)
		af_destroyed(mm);
	return 0;
}

static int af_kp_mmdrop(struct kprobe *kp, struct pt_regs *regs)
{
	struct mm_struct *mm =
		(struct mm_struct *)regs_get_kernel_argument(regs, 0);
	unsigned int cpu;

	if (!mm)
		return 0;
	if (!af_exit_mmap_on)
		af_destroyed(mm);
	/* A freed mm may come back at the same address: forget it as loaded. */
	for_each_possible_cpu(cpu)
		cmpxchg(per_cpu_ptr(&af_last_mm, cpu), mm, NULL);
	return 0;
}

static struct kprobe af_kp_tab[] = {
	{ .symbol_name = "__mmdrop", .pre_handler = af_kp_mmdrop },
	{ .symbol_name = "begin_new_exec", .pre_handler = af_kp_exec },
	{ .symbol_name = "do_exit", .pre_handler = af_kp_exit },
	{ .symbol_name = "exit_mmap", .pre_handler = af_kp_exit_mmap },
};
static bool af_kp_on[ARRAY_SIZE(af_kp_tab)]; /* registered */
#define AF_KP_MMDROP 0
#define AF_KP_EXEC 1
#define AF_KP_EXIT 2
#define AF_KP_EXIT_MMAP 3
#endif

/* ---- window control ---- */

static void af_begin(void)
{
	if (atomic_cmpxchg(&af_open, 0, 1) == 0)
		af_emit(AFT_BEGIN, 0, 0, AF_NONE64);
}

static void af_end(void)
{
	if (atomic_cmpxchg(&af_open, 1, 0) == 1)
		af_emit(AFT_END, 0, 0, AF_NONE64);
}

static int af_command(const char *buf, size_t len)
{
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	if (len == 5 && !memcmp(buf, "begin", 5))
		af_begin();
	else if (len == 3 && !memcmp(buf, "end", 3))
		af_end();
	else
		return -EINVAL;
	return 0;
}

static int af_mark_set(const char *val, const struct kernel_param *kp)
{
	return af_command(val, strlen(val));
}

static int af_mark_get(char *buf, const struct kernel_param *kp)
{
	return sprintf(buf, "%s\n", atomic_read(&af_open) ? "begin" : "end");
}

static const struct kernel_param_ops af_mark_ops = {
	.set = af_mark_set,
	.get = af_mark_get,
};
module_param_cb(mark, &af_mark_ops, NULL, 0644);
MODULE_PARM_DESC(mark, "write begin or end to open or close the window");

static ssize_t af_proc_write(struct file *f, const char __user *ubuf,
			     size_t len, loff_t *off)
{
	char buf[16];
	int err;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	err = af_command(buf, len);
	return err ? err : (ssize_t)len;
}

static int af_proc_show(struct seq_file *m, void *v)
{
	unsigned int i;

	seq_printf(m, "window %d\n", atomic_read(&af_open));
	seq_printf(m, "probe_fork %s\n", af_tps[0].on ? "tracepoint" : "none");
	seq_printf(m, "probe_exec %s\n", af_tps[1].on ? "tracepoint" : "none");
	seq_printf(m, "probe_switch %s\n", af_tps[2].on ? "tracepoint" : "none");
#ifdef CONFIG_KPROBES
	seq_printf(m, "probe_as_create_exec %s\n",
		   af_kp_on[AF_KP_EXEC] ? "kprobe:begin_new_exec" :
		   af_tps[1].on ? "tracepoint" : "none");
	seq_printf(m, "probe_exit %s\n",
		   af_kp_on[AF_KP_EXIT] ? "kprobe:do_exit" :
		   af_tps[3].on ? "tracepoint" : "none");
	seq_printf(m, "probe_as_destroy %s\n",
		   af_exit_mmap_on ? "kprobe:exit_mmap" :
		   af_kp_on[AF_KP_MMDROP] ? "kprobe:__mmdrop" : "none");
#else
	seq_printf(m, "probe_as_create_exec %s\n", af_tps[1].on ? "tracepoint" : "none");
	seq_printf(m, "probe_exit %s\n", af_tps[3].on ? "tracepoint" : "none");
	seq_puts(m, "probe_as_destroy none\n");
#endif
	for (i = 1; i < AFT_NKINDS; i++)
		seq_printf(m, "%s %ld\n", af_kind_name[i],
			   atomic_long_read(&af_count[i]));
	seq_printf(m, "mm_tracked %u\n", READ_ONCE(af_set_n));
	seq_printf(m, "mm_untracked %ld\n", atomic_long_read(&af_untracked));
	return 0;
}

static int af_proc_open(struct inode *inode, struct file *file)
{
	return single_open(file, af_proc_show, NULL);
}

static const struct proc_ops af_proc_ops = {
	.proc_open = af_proc_open,
	.proc_read = seq_read,
	.proc_lseek = seq_lseek,
	.proc_release = single_release,
	.proc_write = af_proc_write,
};

static struct proc_dir_entry *af_proc;

/* ---- load and unload ---- */

/* Records the mms of processes that exist already, so that their end is
 * reported too. */
static void af_seed_set(void)
{
	struct task_struct *p;

	rcu_read_lock();
	for_each_process(p) {
		if (p->flags & PF_KTHREAD)
			continue;
		task_lock(p);
		if (p->mm)
			af_set_add(p->mm, (u32)p->tgid);
		task_unlock(p);
	}
	rcu_read_unlock();
}

/* Runs on every CPU (IPI, interrupts off): what is loaded there now. */
static void af_seed_cpu(void *unused)
{
	__this_cpu_write(af_last_mm, current->active_mm);
}

static void af_disarm(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(af_tps); i++) {
		if (af_tps[i].on)
			tracepoint_probe_unregister(af_tps[i].tp, af_tps[i].probe, NULL);
		af_tps[i].on = false;
	}
	tracepoint_synchronize_unregister();
#ifdef CONFIG_KPROBES
	for (i = 0; i < ARRAY_SIZE(af_kp_tab); i++) {
		if (af_kp_on[i])
			unregister_kprobe(&af_kp_tab[i]);
		af_kp_on[i] = false;
	}
#endif
	af_track = af_exec_kprobe_on = af_exit_kprobe_on = false;
	af_exit_mmap_on = false;
}

static int __init af_init(void)
{
	unsigned int i;
	int err;

	for_each_kernel_tracepoint(af_find_tp, NULL);
	for (i = 0; i < 3; i++) { /* fork, exec, switch are required */
		if (!af_tps[i].tp) {
			pr_err("antfarm_truth: tracepoint %s not found\n", af_tps[i].name);
			return -ENOENT;
		}
	}
#ifdef CONFIG_KPROBES
	for (i = 0; i < ARRAY_SIZE(af_kp_tab); i++) {
		err = register_kprobe(&af_kp_tab[i]);
		if (err) {
			pr_warn("antfarm_truth: no kprobe on %s (%d)\n",
				af_kp_tab[i].symbol_name, err);
			continue;
		}
		af_kp_on[i] = true;
	}
	af_exit_mmap_on = af_kp_on[AF_KP_EXIT_MMAP];
	af_track = af_kp_on[AF_KP_MMDROP] || af_exit_mmap_on;
	af_exec_kprobe_on = af_kp_on[AF_KP_EXEC];
	af_exit_kprobe_on = af_kp_on[AF_KP_EXIT];
#endif
	for (i = 0; i < ARRAY_SIZE(af_tps); i++) {
		if (!af_tps[i].tp)
			continue;
		err = tracepoint_probe_register(af_tps[i].tp, af_tps[i].probe, NULL);
		if (err) {
			pr_err("antfarm_truth: cannot attach to %s (%d)\n",
			       af_tps[i].name, err);
			af_disarm();
			return err;
		}
		af_tps[i].on = true;
	}
	af_seed_set();
	on_each_cpu(af_seed_cpu, NULL, 1);

	af_proc = proc_create("antfarm_truth", 0644, NULL, &af_proc_ops);
	if (!af_proc) {
		af_disarm();
		return -ENOMEM;
	}
	pr_info("antfarm_truth: armed (exit: %s, as_destroy: %s, exec as_create: %s)\n",
		af_exit_kprobe_on ? "do_exit" : "sched_process_exit",
		af_exit_mmap_on ? "exit_mmap" : af_track ? "__mmdrop" : "none",
		af_exec_kprobe_on ? "begin_new_exec" : "sched_process_exec");
	if (begin)
		af_begin();
	return 0;
}

static void __exit af_exit(void)
{
	af_end();
	proc_remove(af_proc);
	af_disarm();
	pr_info("antfarm_truth: unloaded\n");
}

module_init(af_init);
module_exit(af_exit);
