/*
 * lib/synth/synth_os.c - what the modelled kernels do to the MMU, for every
 * MMU: emitting observations and ground truth on one clock, address-space
 * life (create, switch, copy-on-write fork, exec, exit, release), process
 * images (what a program maps, with page-cache sharing and ASLR), and boot.
 *
 * The behaviours, per OS (Antfarm paper 6.1 and 6.3):
 *   linux2.4     fork copies the address space; exec clears and reuses it
 *                (unless shared with a vfork parent: then a new one).
 *   linux2.6     exec builds a new address space, loads it before anything
 *                is mapped in it, then tears the old one down.
 *   windows      CreateProcess: the parent builds the child's address space
 *                while it is not loaded; no fork, no exec.
 *   sparc-linux  Linux 2.4 on a context-id MMU: copy-on-write fork demaps
 *                the parent's context, exec (clearing the caller's address
 *                space) demaps it, exit demaps it; vfork demaps nothing.
 * Exit everywhere: user PTEs zeroed, tables unlinked and freed, the TLB
 * flushed; the root itself is freed once no vCPU has it loaded (Linux frees
 * the pgd at the last mmdrop, after the switch away).
 */
#include "synth_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define COST_CTX 120

/* ---- emission ---- */

void sy_advance(struct sy *s, uint64_t ns)
{
	s->now += ns;
}

void sy_obs(struct sy *s, unsigned kind, unsigned width, uint64_t addr,
	    uint64_t value, uint32_t aux, uint64_t cost)
{
	struct sy_vcpu *c = &s->v[s->cv];
	struct af_obs o;
	int rc;

	if (s->err)
		return;
	s->now += cost;
	c->icount += (s->now - c->last_t) + 1;
	c->last_t = s->now;
	memset(&o, 0, sizeof(o));
	o.kind = (uint8_t)kind;
	o.width = (uint8_t)width;
	o.vcpu = (uint16_t)s->cv;
	o.aux = aux;
	o.time_ns = s->now;
	o.icount = c->icount;
	o.addr = addr;
	o.value = value;
	rc = af_recorder_observe(s->rec, &o);
	if (rc)
		s->err = rc;
}

void sy_truth(struct sy *s, unsigned kind, const struct sy_proc *p,
	      uint64_t asid)
{
	struct af_truth t;
	int rc;

	if (s->err)
		return;
	s->now += 10; /* the OS acts after whatever the MMU saw last */
	memset(&t, 0, sizeof(t));
	t.kind = (uint8_t)kind;
	t.vcpu = (uint16_t)s->cv;
	t.pid = p ? p->pid : 0;
	t.ppid = p ? p->ppid : 0;
	t.time_ns = s->now;
	t.asid = asid;
	rc = af_trace_write_truth(s->w, &t);
	if (rc)
		s->err = rc;
}

/* ---- programs and images ---- */

/* Pages of each part of a program's image. */
struct progdef {
	uint16_t text;  /* executable's text (page cache) */
	uint16_t data;  /* its data and bss */
	uint16_t heap;  /* heap touched at start */
	uint16_t stack; /* stack */
};

static const struct progdef progs[P_NPROG] = {
	[P_INIT] = { 12, 3, 4, 2 },     [P_DAEMON] = { 10, 2, 4, 2 },
	[P_SH] = { 40, 6, 10, 3 },      [P_CHILD] = { 4, 2, 2, 2 },
	[P_MAKE] = { 30, 6, 20, 3 },    [P_GCC] = { 20, 4, 8, 2 },
	[P_CC1] = { 120, 12, 40, 4 },   [P_AS] = { 30, 4, 16, 2 },
	[P_LD] = { 40, 6, 30, 2 },      [P_COLLECT2] = { 10, 2, 4, 2 },
	[P_EPI] = { 4, 1, 1, 1 },
};

/* Shared libraries: (text, data) pages. Linux: libc, ld.so; Windows:
 * ntdll, kernel32. */
static const uint16_t lib_text[2] = { 24, 6 }, lib_data[2] = { 3, 2 };
static const uint16_t win_text[2] = { 30, 20 }, win_data[2] = { 2, 2 };

/* One contiguous part of an image. */
struct region {
	uint64_t va;   /* first page */
	unsigned n;    /* pages */
	int kind;      /* enum sy_kind */
	int file;      /* page-cache file (SYK_TEXT) */
	unsigned foff; /* first page in the file */
	int heap;      /* the heap: extra heap pages follow it */
};

#define MAX_REGIONS 14

static int is64(const struct sy *s)
{
	return s->f.levels >= 4;
}

static uint64_t huge_va(const struct sy *s)
{
	return is64(s) ? 0x40000000ull : 0x20000000ull;
}

/* The image of p in fault order: the stack first (exec sets it up), then
 * (Windows) what CreateProcess maps from the parent, then the rest. */
static unsigned regions(const struct sy *s, const struct sy_proc *p,
			struct region *r)
{
	const struct progdef *d = &progs[p->prog];
	unsigned n = 0;
	uint64_t exe, stack_top;

#define REG(va_, n_, kind_, file_, heap_)                                     \
	r[n++] = (struct region){ .va = (va_), .n = (n_), .kind = (kind_),    \
				  .file = (file_), .heap = (heap_) }
	if (s->windows) {
		uint64_t nt = is64(s) ? 0x7ffbfd000000ull : 0x77f40000ull;
		uint64_t k32 = is64(s) ? 0x7ffbfb000000ull : 0x77e50000ull;
		uint64_t peb = is64(s) ? 0x7ff5ffffe000ull : 0x7ffdf000ull;
		uint64_t heap = (is64(s) ? 0x500000ull : 0x600000ull) +
				(uint64_t)p->slide[0] * 0x10000;
		exe = is64(s) ? 0x140000000ull : 0x400000ull;
		stack_top = (is64(s) ? 0x300000ull : 0x130000ull) -
			    (uint64_t)p->slide[2] * 0x1000;
		REG(stack_top - d->stack * SY_PAGE, d->stack, SYK_DATA, 0, 0);
		REG(exe, d->text, SYK_TEXT, p->prog, 0);
		REG(nt, win_text[0], SYK_TEXT, SY_FILE_LIB1, 0);
		REG(k32, win_text[1], SYK_TEXT, SY_FILE_LIB2, 0);
		REG(peb, 1, SYK_DATA, 0, 0);
		REG(peb - SY_PAGE, 1, SYK_DATA, 0, 0);
		REG(0x7ffe0000ull, 1, SYK_SHARED, 0, 0);
		/* from here on the child faults in */
		REG(heap, d->heap, SYK_DATA, 0, 1);
		REG(exe + (uint64_t)d->text * SY_PAGE, d->data, SYK_DATA, 0, 0);
		REG(nt + win_text[0] * SY_PAGE, win_data[0], SYK_DATA, 0, 0);
		REG(k32 + win_text[1] * SY_PAGE, win_data[1], SYK_DATA, 0, 0);
	} else {
		uint64_t mtop, cur;
		int down = is64(s) || s->linux26;
		if (is64(s)) {
			exe = 0x555555554000ull +
			      (uint64_t)p->slide[0] * (2u << 20);
			mtop = 0x7ffff7fff000ull -
			       (uint64_t)p->slide[1] * (2u << 20);
			stack_top = 0x7ffffffff000ull -
				    (uint64_t)p->slide[2] * (1u << 20);
		} else {
			exe = 0x08048000ull;
			mtop = s->linux26 ? 0xb7fff000ull -
						    (uint64_t)p->slide[1] * 0x10000
					  : 0x40000000ull;
			stack_top = 0xc0000000ull -
				    (uint64_t)p->slide[2] * 0x10000;
		}
		REG(stack_top - d->stack * SY_PAGE, d->stack, SYK_DATA, 0, 0);
		REG(exe, d->text, SYK_TEXT, p->prog, 0);
		REG(exe + (uint64_t)(d->text + d->data + 1) * SY_PAGE, d->heap,
		    SYK_DATA, 0, 1);
		REG(exe + (uint64_t)d->text * SY_PAGE, d->data, SYK_DATA, 0, 0);
		cur = mtop;
		if (is64(s)) {
			cur -= SY_PAGE;
			REG(cur, 1, SYK_SHARED, 0, 0); /* vdso */
		}
		for (int l = 1; l >= 0; l--) {
			uint64_t len = (uint64_t)(lib_text[l] + lib_data[l] + 1) *
				       SY_PAGE;
			uint64_t base = down ? (cur -= len) : cur;
			if (!down)
				cur += len;
			REG(base, lib_text[l], SYK_TEXT, SY_FILE_LIB1 + l, 0);
			REG(base + (uint64_t)lib_text[l] * SY_PAGE, lib_data[l],
			    SYK_DATA, 0, 0);
		}
	}
#undef REG
	return n;
}

static unsigned image_pages(const struct sy *s, const struct sy_proc *p)
{
	struct region r[MAX_REGIONS];
	unsigned n = regions(s, p, r), t = 0;

	for (unsigned i = 0; i < n; i++)
		t += r[i].n;
	return t;
}

/* The page-cache frame of page pg of file; allocated on first use. */
static int cache_frame(struct sy *s, int file, unsigned pg, uint64_t *pa)
{
	struct sy_vec *c = &s->cache[file];

	while (c->n <= pg)
		if (sy_vec_push(c, 0))
			return -ENOMEM;
	if (!c->v[pg]) {
		uint64_t fr;
		if (sy_alloc0(&s->mem, &fr))
			return -ENOMEM;
		c->v[pg] = fr; /* the cache keeps this first reference */
	}
	*pa = c->v[pg];
	return 0;
}

/* Maps image page k of p into its address space. */
static void map_image_page(struct sy *s, struct sy_proc *p, unsigned k)
{
	struct region r[MAX_REGIONS];
	unsigned n = regions(s, p, r), i;
	uint64_t pa = 0, va;
	struct sy_frame *fr;
	int rc = 0;

	for (i = 0; i < n && k >= r[i].n; i++)
		k -= r[i].n;
	if (i == n)
		return;
	va = r[i].va + (uint64_t)k * SY_PAGE;
	switch (r[i].kind) {
	case SYK_TEXT:
		rc = cache_frame(s, r[i].file, r[i].foff + k, &pa);
		break;
	case SYK_SHARED:
		pa = s->shared_pa;
		break;
	default:
		rc = sy_alloc0(&s->mem, &pa);
		break;
	}
	if (rc) {
		s->err = rc;
		return;
	}
	if (r[i].kind == SYK_TEXT || r[i].kind == SYK_SHARED) {
		fr = sy_frame(&s->mem, pa);
		if (fr)
			fr->refs++;
	}
	sy_x86_map(s, p->mm, va, pa, r[i].kind, r[i].kind == SYK_HUGE);
}

static uint64_t heap_extra_va(const struct sy *s, const struct sy_proc *p,
			      unsigned j)
{
	struct region r[MAX_REGIONS];
	unsigned n = regions(s, p, r);

	for (unsigned i = 0; i < n; i++)
		if (r[i].heap)
			return r[i].va + (uint64_t)(r[i].n + j) * SY_PAGE;
	return 0;
}

/* ---- kernel entry and exit (KPTI root switches) ---- */

void sy_enter_kernel(struct sy *s)
{
	if (!s->sparc)
		sy_x86_to_kernel(s, s->cv);
}

void sy_return_user(struct sy *s)
{
	if (!s->sparc)
		sy_x86_to_user(s, s->cv);
}

/* Page faults of a running process: up to max image pages. */
void sy_fault_in(struct sy *s, struct sy_proc *p, unsigned max)
{
	unsigned total;

	if (s->sparc || !p->mm)
		return;
	total = image_pages(s, p);
	for (unsigned i = 0; i < max && p->faulted < total && !s->err; i++) {
		sy_enter_kernel(s);
		sy_advance(s, 800);
		map_image_page(s, p, p->faulted++);
		sy_return_user(s);
	}
}

/* ---- address spaces ---- */

static void sparc_ctx_alloc(struct sy *s, struct sy_mm *mm)
{
	unsigned n = 1u << SY_CTX_BITS;

	/* Linux sparc64 get_new_mmu_context: the next free id after the
	 * last one handed out, wrapping; 0 is the kernel's */
	for (unsigned k = 1; k < n; k++) {
		unsigned c = (s->ctx_last + k) % n;
		if (c == 0 || s->ctx_used[c])
			continue;
		s->ctx_used[c] = 1;
		s->ctx_last = c;
		mm->ctx = c;
		mm->asid = c;
		return;
	}
	s->err = -ENOSPC; /* more live address spaces than context ids */
}

/* Allocates an address space's identity (root frames or context id) but
 * writes nothing yet: callers report it before building it. */
struct sy_mm *sy_mm_new(struct sy *s, int kernel)
{
	struct sy_mm *mm = calloc(1, sizeof(*mm));

	if (!mm) {
		s->err = -ENOMEM;
		return NULL;
	}
	mm->kernel = kernel;
	mm->id = ++s->next_mm_id;
	mm->gen = 1;
	mm->next = s->mms;
	s->mms = mm;
	if (s->sparc) {
		if (!kernel)
			sparc_ctx_alloc(s, mm);
	} else {
		if (sy_x86_mm_alloc(s, mm) == 0)
			mm->asid = mm->root;
	}
	return mm;
}

/* Builds what a new address space holds before anyone uses it. */
static void mm_init(struct sy *s, struct sy_mm *mm)
{
	if (!s->sparc)
		sy_x86_mm_init(s, mm);
}

static void mm_release(struct sy *s, struct sy_mm *mm)
{
	struct sy_mm **pp;

	if (s->sparc)
		s->ctx_used[mm->ctx] = 0;
	else
		sy_x86_release_root(s, mm);
	for (pp = &s->mms; *pp; pp = &(*pp)->next) {
		if (*pp == mm) {
			*pp = mm->next;
			break;
		}
	}
	free(mm->pg);
	free(mm);
}

static void flush_gather(struct sy *s)
{
	for (size_t i = 0; i < s->gather.n; i++) {
		uint64_t x = s->gather.v[i];
		if (x & 2)
			sy_huge_free(&s->mem, x & ~3ull);
		else if (x & 1)
			sy_free1(&s->mem, x & ~3ull);
		else
			sy_free0(&s->mem, x);
	}
	s->gather.n = 0;
}

/* Loads next on vCPU v (a CR3 write or a context-register write), reporting
 * the switch; nothing if it is loaded there already. */
void sy_switch(struct sy *s, unsigned v, struct sy_mm *next)
{
	struct sy_vcpu *c = &s->v[v];
	struct sy_mm *prev = c->mm;
	unsigned save = s->cv;

	if (prev == next || s->err)
		return;
	s->cv = v;
	sy_truth(s, AF_TRUTH_SWITCH, c->cur && c->cur->mm == next ? c->cur : NULL,
		 next->asid);
	if (s->sparc)
		sy_obs(s, AF_OBS_CTX_LOAD, 0, 0, next->ctx, 0, COST_CTX);
	else
		sy_x86_switch(s, v, next);
	s->cv = save;
	c->mm = next;
	next->loaded |= 1ull << v;
	if (prev) {
		prev->loaded &= ~(1ull << v);
		if (prev->dead && !prev->loaded)
			mm_release(s, prev);
	}
}

/* SPARC: demap the whole context on v and on every vCPU holding it (Linux
 * cross-calls the CPUs in the mm's cpu mask). */
static void sparc_demap(struct sy *s, struct sy_mm *mm)
{
	unsigned save = s->cv;

	sy_obs(s, AF_OBS_CTX_DEMAP, 0, 0, mm->ctx, 0, COST_CTX);
	for (unsigned w = 0; w < s->nv; w++) {
		if (w == save || !(mm->loaded & (1ull << w)))
			continue;
		s->cv = w;
		sy_obs(s, AF_OBS_CTX_DEMAP, 0, 0, mm->ctx, 0, COST_CTX);
	}
	s->cv = save;
}

/* x86 flush_tlb_mm after mm's mappings changed: the acting vCPU rewrites
 * CR3 if mm is loaded there; vCPUs holding mm lazily leave it for the
 * kernel's tables (Linux leave_mm on the flush IPI). exiting: the caller
 * is exiting and itself holds mm only lazily (it leaves too on SMP). */
static void x86_flush_mm(struct sy *s, struct sy_mm *mm, int exiting)
{
	unsigned me = s->cv;

	mm->gen++;
	for (unsigned w = 0; w < s->nv; w++) {
		if (!(mm->loaded & (1ull << w)))
			continue;
		if (w == me && !(exiting && s->lazy && s->nv > 1))
			sy_x86_local_flush(s, w);
		else
			sy_switch(s, w, s->kmm);
	}
}

/* exit_mmap: the last user of mm is gone. */
static void mm_teardown(struct sy *s, struct sy_mm *mm, int exiting)
{
	sy_truth(s, AF_TRUTH_AS_DESTROY, NULL, mm->asid);
	if (s->sparc) {
		if (mm->loaded)
			sparc_demap(s, mm);
	} else {
		if (s->check && !s->err && sy_x86_check(s, mm, 0))
			s->err = -EPROTO;
		sy_x86_zap(s, mm, 0, mm->npg);
		sy_x86_free_tables(s, mm);
		if (s->check && !s->err && sy_x86_check(s, mm, 1))
			s->err = -EPROTO;
		x86_flush_mm(s, mm, exiting);
		flush_gather(s);
	}
	mm->dead = 1;
	if (!mm->loaded)
		mm_release(s, mm);
}

/* ---- processes ---- */

static struct sy_proc *proc_new(struct sy *s, struct sy_proc *parent,
				int role)
{
	struct sy_proc *p = calloc(1, sizeof(*p));

	if (!p) {
		s->err = -ENOMEM;
		return NULL;
	}
	p->pid = s->next_pid++;
	p->parent = parent;
	p->ppid = parent ? parent->pid : 0;
	p->role = role;
	p->state = S_NEW;
	p->exec_prog = -1;
	p->pin = -1;
	p->vcpu = s->cv;
	p->next_all = s->procs;
	if (s->procs)
		s->procs->prev_all = p;
	s->procs = p;
	if (parent)
		parent->children++;
	return p;
}

static void new_slides(struct sy *s, struct sy_proc *p)
{
	int aslr = s->windows || s->linux26 || is64(s);

	for (int i = 0; i < 3; i++)
		p->slide[i] = aslr ? (unsigned)sy_range(&s->rng, 0, 63) : 0;
	if (s->windows)
		p->slide[1] = 0;
}

/* The process image exec (or CreateProcess) starts with: exec maps the
 * stack (setup_arg_pages); CreateProcess maps the stack, image, system DLLs,
 * PEB, TEB and SharedUserData from the parent. */
static void image_start(struct sy *s, struct sy_proc *p, int prog,
			int from_parent)
{
	struct region r[MAX_REGIONS];
	unsigned upto = 0, nr;

	p->prog = prog;
	new_slides(s, p);
	p->faulted = 0;
	p->extra = 0;
	if (s->sparc)
		return;
	nr = regions(s, p, r);
	for (unsigned i = 0; i < nr && i < (from_parent ? 7u : 1u); i++)
		upto += r[i].n;
	for (unsigned k = 0; k < upto && !s->err; k++)
		map_image_page(s, p, k);
	p->faulted = upto;
}

/* A huge page mapped by a running process (hugetlbfs, large pages). */
void sy_map_huge(struct sy *s, struct sy_proc *p)
{
	uint64_t pa;

	if (s->sparc || !p->mm || !s->mem.huge_size)
		return;
	for (size_t k = 0; k < p->mm->npg; k++)
		if (p->mm->pg[k].huge)
			return;
	if (sy_huge_alloc(&s->mem, &pa))
		return; /* pool exhausted: it goes without */
	sy_enter_kernel(s);
	sy_advance(s, 3000);
	sy_x86_map(s, p->mm, huge_va(s), pa, SYK_HUGE, 1);
	sy_return_user(s);
}

struct sy_proc *sy_spawn(struct sy *s, struct sy_proc *parent, int how,
			 int role, int prog)
{
	struct sy_proc *c;
	struct sy_mm *pm = parent->mm;

	sy_enter_kernel(s);
	sy_advance(s, 1500); /* system call entry */
	c = proc_new(s, parent, role);
	if (!c)
		return NULL;
	if (how == H_VFORKEXEC) {
		sy_truth(s, AF_TRUTH_VFORK, c, pm->asid);
		c->mm = pm;
		pm->users++;
		c->vfork_child = 1;
		c->exec_prog = prog;
		c->prog = parent->prog;
		memcpy(c->slide, parent->slide, sizeof(c->slide));
		c->faulted = parent->faulted;
		c->extra = parent->extra;
		parent->vfork_wait = 1;
	} else {
		struct sy_mm *mm = sy_mm_new(s, 0);
		if (!mm)
			return NULL;
		c->mm = mm;
		mm->users = 1;
		sy_truth(s, AF_TRUTH_FORK, c, mm->asid);
		sy_truth(s, AF_TRUTH_AS_CREATE, c, mm->asid);
		mm_init(s, mm);
		if (how == H_CREATE) {
			image_start(s, c, prog, 1);
		} else {
			/* fork: copy-on-write copy of the parent */
			c->prog = parent->prog;
			memcpy(c->slide, parent->slide, sizeof(c->slide));
			c->faulted = parent->faulted;
			c->extra = parent->extra;
			if (how == H_FORKEXEC)
				c->exec_prog = prog;
			if (s->sparc) {
				sparc_demap(s, pm);
			} else {
				sy_x86_copy(s, pm, mm);
				x86_flush_mm(s, pm, 0);
			}
		}
	}
	sy_advance(s, 20000);
	sy_return_user(s);
	return c;
}

void sy_exec(struct sy *s, struct sy_proc *p, int prog)
{
	struct sy_mm *old = p->mm;

	sy_enter_kernel(s);
	sy_advance(s, 30000);
	if (old->users > 1 || (s->linux26 && !s->sparc)) {
		/* a new address space, loaded before anything is in it */
		struct sy_mm *mm = sy_mm_new(s, 0);
		if (!mm)
			return;
		mm->users = 1;
		sy_truth(s, AF_TRUTH_AS_CREATE, p, mm->asid);
		mm_init(s, mm);
		p->mm = mm;
		sy_switch(s, s->cv, mm);
		if (--old->users == 0)
			mm_teardown(s, old, 0);
	} else if (s->sparc) {
		/* exit_mmap of the caller's own mm, which it keeps using */
		sparc_demap(s, old);
	} else {
		/* Linux 2.4: clear the address space and reuse it */
		sy_x86_zap(s, old, 0, old->npg);
		sy_x86_free_tables(s, old);
		if (s->check && !s->err && sy_x86_check(s, old, 1))
			s->err = -EPROTO;
		x86_flush_mm(s, old, 0);
		flush_gather(s);
	}
	if (p->vfork_child) {
		p->vfork_child = 0;
		if (p->parent && p->parent->vfork_wait) {
			p->parent->vfork_wait = 0;
			sy_wake(s, p->parent, s->now, (int)s->cv);
		}
	}
	sy_truth(s, AF_TRUTH_EXEC, p, p->mm->asid);
	image_start(s, p, prog, 0);
	sy_advance(s, 20000);
	sy_return_user(s);
}

void sy_exit(struct sy *s, struct sy_proc *p)
{
	struct sy_mm *mm = p->mm;
	struct sy_proc *par = p->parent;

	sy_enter_kernel(s);
	sy_truth(s, AF_TRUTH_EXIT, p, mm->asid);
	sy_advance(s, 5000);
	p->mm = NULL;
	if (--mm->users == 0)
		mm_teardown(s, mm, 1);
	sy_advance(s, 5000);
	p->state = S_DEAD;
	if (par) {
		par->children--;
		if (p->vfork_child && par->vfork_wait) {
			par->vfork_wait = 0;
			sy_wake(s, par, s->now, (int)s->cv);
		} else if ((par->wait_all && par->children == 0) ||
			   par->wait_any) {
			par->wait_all = par->wait_any = 0;
			sy_wake(s, par, s->now, (int)s->cv);
		}
	}
}

/* Forgets a process that has exited, unless a child still names it as its
 * parent or a wake-up event still names it (then it stays until the end of
 * the run). */
void sy_proc_free(struct sy *s, struct sy_proc *p)
{
	if (p->state != S_DEAD || p->children || p->pokes)
		return;
	if (p->prev_all)
		p->prev_all->next_all = p->next_all;
	else
		s->procs = p->next_all;
	if (p->next_all)
		p->next_all->prev_all = p->prev_all;
	free(p);
}

/* What a running process does to its memory now and then: copy-on-write
 * breaks (a write to a page shared since fork), new heap pages, and heap
 * pages given back (munmap). */
void sy_touch(struct sy *s, struct sy_proc *p, unsigned cow, unsigned more,
	      unsigned less)
{
	struct sy_mm *mm = p->mm;

	if (!mm)
		return;
	for (unsigned i = 0; i < cow && !s->err; i++) {
		size_t cand = 0, pick;
		if (s->sparc) {
			/* the fault handler flushes the one page */
			sy_obs(s, AF_OBS_TLB_FLUSH, AF_FLUSH_ASID_PAGE,
			       0x10000 + sy_range(&s->rng, 0, 63) * SY_PAGE,
			       mm->ctx, 0, 200);
			continue;
		}
		for (size_t k = 0; k < mm->npg; k++)
			cand += mm->pg[k].kind == SYK_DATA && !mm->pg[k].rw;
		if (!cand)
			break;
		pick = (size_t)sy_range(&s->rng, 0, cand - 1);
		for (size_t k = 0; k < mm->npg; k++) {
			struct sy_page *pg = &mm->pg[k];
			struct sy_frame *fr;
			if (pg->kind != SYK_DATA || pg->rw || pick--)
				continue;
			sy_enter_kernel(s);
			sy_advance(s, 1500);
			fr = sy_frame(&s->mem, pg->pa);
			if (fr && fr->refs > 1) {
				uint64_t npa;
				if (sy_alloc0(&s->mem, &npa)) {
					s->err = -ENOMEM;
					return;
				}
				fr->refs--;
				pg->pa = npa;
			}
			pg->rw = 1;
			sy_x86_set_leaf(s, mm, pg, 1, 0);
			sy_x86_flush_page(s, s->cv, pg->va);
			sy_return_user(s);
			break;
		}
	}
	if (s->sparc)
		return;
	for (unsigned i = 0; i < more && !s->err; i++) {
		uint64_t pa;
		if (p->faulted < image_pages(s, p)) {
			sy_fault_in(s, p, 1);
			continue;
		}
		sy_enter_kernel(s);
		sy_advance(s, 1200);
		if (sy_alloc0(&s->mem, &pa)) {
			s->err = -ENOMEM;
			return;
		}
		sy_x86_map(s, mm, heap_extra_va(s, p, p->extra), pa, SYK_DATA,
			   0);
		p->extra++;
		sy_return_user(s);
	}
	for (unsigned i = 0; i < less && p->extra && !s->err; i++) {
		uint64_t va = heap_extra_va(s, p, p->extra - 1);
		for (size_t k = 0; k < mm->npg; k++) {
			if (mm->pg[k].va != va)
				continue;
			sy_enter_kernel(s);
			sy_advance(s, 2000);
			sy_x86_zap(s, mm, k, 1);
			/* flush_tlb_range: this page here, lazy holders leave */
			mm->gen++;
			sy_x86_flush_page(s, s->cv, va);
			for (unsigned w = 0; w < s->nv; w++)
				if (w != s->cv && (mm->loaded & (1ull << w)))
					sy_switch(s, w, s->kmm);
			flush_gather(s);
			sy_return_user(s);
			break;
		}
		p->extra--;
	}
}

/* ---- boot ---- */

int sy_boot(struct sy *s)
{
	struct sy_proc *init;
	struct sy_mm *mm;

	s->cv = 0;
	s->next_pid = 1;
	if (!s->sparc) {
		uint32_t flags = 0;
		if (sy_x86_setup(s))
			return s->err;
		if (sy_alloc0(&s->mem, &s->shared_pa))
			return s->err = -ENOMEM;
		if (s->o.paging == AF_PAGING_32)
			flags |= AF_PAGING_F_PSE;
		if (s->pcid)
			flags |= AF_PAGING_F_PCIDE;
		for (unsigned v = 0; v < s->nv; v++) {
			s->cv = v;
			sy_obs(s, AF_OBS_PAGING, 0, 0, (uint64_t)s->o.paging,
			       flags, 1000);
		}
		s->cv = 0;
		s->kmm = sy_mm_new(s, 1);
		if (!s->kmm)
			return s->err;
		s->kmm->users = 1;
		sy_truth(s, AF_TRUTH_AS_CREATE, NULL, s->kmm->asid);
		for (unsigned v = 0; v < s->nv; v++)
			sy_switch(s, v, s->kmm);
	}
	/* init: the kernel's first process, with its own address space */
	init = proc_new(s, NULL, R_INIT);
	if (!init)
		return s->err;
	mm = sy_mm_new(s, 0);
	if (!mm)
		return s->err;
	mm->users = 1;
	init->mm = mm;
	sy_truth(s, AF_TRUTH_FORK, init, mm->asid);
	sy_truth(s, AF_TRUTH_AS_CREATE, init, mm->asid);
	mm_init(s, mm);
	image_start(s, init, P_INIT, 0);
	sy_enqueue(s, init, 0, 0);
	return s->err;
}
