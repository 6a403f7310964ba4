/* SPDX-License-Identifier: MIT */
/*
 * VT-d second-level paging structures: reserved-bit masks, translation of
 * one IOVA, and the walk that enumerates leaves for syncs and replays.
 *
 * The guest writes these tables and may write anything, so nothing here
 * trusts them: every table address is checked by the memory ops, the depth
 * of a walk is the level count whatever the entries point at, and a walk's
 * work is bounded by its budget.
 */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "models/vtd_pgtable.h"

/* Bits a..b (inclusive) set. */
#define BITS(a, b) (((UINT64_C(2) << (b)) - 1) & ~((UINT64_C(1) << (a)) - 1))

/*
 * One load per entry: the guest may be rewriting it, and must see us read
 * either the old or the new value, never a mix (the hardware reads entries
 * atomically too).  Tables are little-endian, as on the hardware.
 */
static inline uint64_t pte_load(const uint64_t *p)
{
	return le64toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

int viommu__vtd_pt_init(struct viommu__vtd_pt *pt,
			const struct viommu_guest_memory *mem, uint64_t root,
			const struct viommu__vtd_pt_config *cfg)
{
	unsigned levels, haw, level;
	uint64_t above_haw, leaf;

	if (!pt || !mem || !mem->ops || !mem->ops->read || !cfg)
		return -EINVAL;
	levels = viommu__vtd_levels(cfg->aw);
	haw = cfg->haw ? cfg->haw : (cfg->aw < 52 ? cfg->aw : 52);
	if (!levels || haw < 12 || haw > 52 ||
	    root & (VIOMMU_GUEST_PAGE_SIZE - 1))
		return -EINVAL;

	memset(pt, 0, sizeof(*pt));
	pt->mem = *mem;
	pt->root = root;
	pt->aw = cfg->aw;
	pt->levels = levels;
	pt->iova_last = (UINT64_C(1) << cfg->aw) - 1;
	pt->addr_mask = VIOMMU__VTD_PTE_ADDR & ((UINT64_C(1) << haw) - 1);
	pt->budget = cfg->budget ? cfg->budget : VIOMMU__VTD_WALK_BUDGET;

	/*
	 * SNP and TM have a meaning in leaves only, and only when the
	 * hardware advertises them; PS is how levels 2 and 3 say "leaf" and
	 * is reserved above.  Levels 4 and 5 have no leaf form at all.
	 */
	above_haw = VIOMMU__VTD_PTE_ADDR & ~pt->addr_mask;
	leaf = above_haw;
	if (!cfg->snoop)
		leaf |= VIOMMU__VTD_PTE_SNP;
	if (!cfg->transient)
		leaf |= VIOMMU__VTD_PTE_TM;
	for (level = 0; level <= VIOMMU__VTD_MAX_LEVELS; level++) {
		pt->rsvd_table[level] = above_haw | VIOMMU__VTD_PTE_SNP |
					VIOMMU__VTD_PTE_TM;
		if (level >= 4)
			pt->rsvd_table[level] |= VIOMMU__VTD_PTE_PS;
		pt->rsvd_leaf[level] = UINT64_MAX;
	}
	pt->rsvd_leaf[1] = leaf;
	pt->rsvd_leaf[2] = leaf | BITS(12, 20);
	pt->rsvd_leaf[3] = leaf | BITS(12, 29);
	return 0;
}

__attribute__((format(printf, 7, 8))) static void
report(struct viommu__vtd_report *rep, enum viommu_fault fault, uint64_t iova,
       unsigned level, uint64_t pte_gpa, uint64_t pte, const char *fmt, ...)
{
	va_list ap;

	if (!rep)
		return;
	rep->fault = fault;
	rep->iova = iova;
	rep->level = level;
	rep->pte_gpa = pte_gpa;
	rep->pte = pte;
	rep->examined = 0; /* a walk sets it when it ends */
	rep->message[0] = '\0';
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(rep->message, sizeof(rep->message), fmt, ap);
		va_end(ap);
	}
}

/* An aligned span with nothing usable in it: the answer to a fault. */
static void set_hole(struct viommu_translation *out, enum viommu_fault fault,
		     uint64_t iova, uint64_t size)
{
	out->fault = fault;
	out->entry.iova = iova & ~(size - 1);
	out->entry.addr_mask = size - 1;
	out->entry.translated_addr = 0;
	out->entry.perm = VIOMMU_PERM_NONE;
}

/* Read the entry @idx of the table at @table: in place when we can. */
static int read_pte(const struct viommu__vtd_pt *pt, uint64_t table,
		    unsigned idx, uint64_t *pte)
{
	const struct viommu_guest_memory_ops *ops = pt->mem.ops;
	const uint64_t *page;
	uint64_t raw;
	int ret;

	if (ops->page) {
		page = ops->page(pt->mem.opaque, table);
		if (page) {
			*pte = pte_load(&page[idx]);
			return 0;
		}
	}
	ret = ops->read(pt->mem.opaque, table + 8 * (uint64_t)idx, &raw, 8);
	if (!ret)
		*pte = le64toh(raw);
	return ret;
}

int viommu__vtd_translate(const struct viommu__vtd_pt *pt, uint64_t iova,
			  struct viommu_translation *out,
			  struct viommu__vtd_report *rep)
{
	uint64_t table, pte = 0, pte_gpa = 0;
	unsigned level, perm = VIOMMU_PERM_RW;

	if (!pt || !out)
		return -EINVAL;
	if (iova > pt->iova_last) {
		set_hole(out, VIOMMU_FAULT_OUT_OF_RANGE, iova,
			 pt->iova_last + 1);
		report(rep, out->fault, iova, 0, 0, 0,
		       "iova 0x%llx is beyond the %u-bit address width",
		       (unsigned long long)iova, pt->aw);
		return 0;
	}
	table = pt->root;
	for (level = pt->levels; level >= 1; level--) {
		unsigned idx = viommu__vtd_index(iova, level);
		uint64_t size = viommu__vtd_level_size(level);

		pte_gpa = table + 8 * (uint64_t)idx;
		if (read_pte(pt, table, idx, &pte)) {
			/* The table spans 512 entries of this level. */
			set_hole(out, VIOMMU_FAULT_BAD_TABLE, iova,
				 size << VIOMMU__VTD_LEVEL_BITS);
			report(rep, out->fault, iova, level, table,
			       level == pt->levels ? 0 : pte,
			       "iova 0x%llx: the level %u table at 0x%llx is "
			       "not in guest RAM",
			       (unsigned long long)iova, level,
			       (unsigned long long)table);
			return 0;
		}
		if (!(pte & VIOMMU__VTD_PTE_RW)) {
			set_hole(out, VIOMMU_FAULT_NOT_PRESENT, iova, size);
			report(rep, out->fault, iova, level, pte_gpa, pte,
			       "iova 0x%llx: level %u entry at 0x%llx is not "
			       "present",
			       (unsigned long long)iova, level,
			       (unsigned long long)pte_gpa);
			return 0;
		}
		if (viommu__vtd_is_leaf(pte, level)) {
			if (pte & pt->rsvd_leaf[level])
				break;
			out->fault = VIOMMU_FAULT_NONE;
			out->entry.iova = iova & ~(size - 1);
			out->entry.addr_mask = size - 1;
			out->entry.translated_addr = pte & pt->addr_mask;
			out->entry.perm = perm & (unsigned)pte;
			report(rep, VIOMMU_FAULT_NONE, iova, level, pte_gpa,
			       pte, NULL);
			return 0;
		}
		if (pte & pt->rsvd_table[level])
			break;
		perm &= (unsigned)pte;
		table = pte & pt->addr_mask;
	}
	/* Only a reserved-bit fault leaves the loop early. */
	set_hole(out, VIOMMU_FAULT_RESERVED, iova,
		 viommu__vtd_level_size(level));
	report(rep, out->fault, iova, level, pte_gpa, pte,
	       "iova 0x%llx: level %u entry 0x%llx at 0x%llx has reserved "
	       "bits 0x%llx set",
	       (unsigned long long)iova, level, (unsigned long long)pte,
	       (unsigned long long)pte_gpa,
	       (unsigned long long)(pte & (viommu__vtd_is_leaf(pte, level) ?
						   pt->rsvd_leaf[level] :
						   pt->rsvd_table[level])));
	return 0;
}

/*
 * The walk keeps one frame per level instead of recursing: the entries
 * [idx, end] of one table still to visit, and what the walk above it says.
 */
struct walk_frame {
	const uint64_t *tbl; /* the table's entries, in place or copied */
	uint64_t gpa;	     /* where the table lives, for reports */
	uint64_t base;	     /* IOVA of the table's entry 0 */
	unsigned idx, end;   /* next entry to examine; last one */
	unsigned perm;	     /* AND of R/W of the entries above */
};

struct walk {
	const struct viommu__vtd_pt *pt;
	uint64_t start, last;
	viommu_walk_fn fn;
	void *ctx;
	struct viommu__vtd_report *rep;
	uint64_t examined;
	struct walk_frame f[VIOMMU__VTD_MAX_LEVELS + 1];
	/* Copies of tables, only for memory without a page op. */
	uint64_t buf[VIOMMU__VTD_MAX_LEVELS + 1][VIOMMU__VTD_ENTRIES];
};

/* Point frame @level at entries [idx, end] of the table at @gpa. */
static int frame_load(struct walk *w, unsigned level, uint64_t gpa)
{
	const struct viommu_guest_memory_ops *ops = w->pt->mem.ops;
	struct walk_frame *f = &w->f[level];
	uint64_t *buf = w->buf[level];
	unsigned i;
	int ret;

	f->gpa = gpa;
	if (ops->page) {
		f->tbl = ops->page(w->pt->mem.opaque, gpa);
		if (f->tbl)
			return 0;
	}
	ret = ops->read(w->pt->mem.opaque, gpa + 8 * (uint64_t)f->idx,
			&buf[f->idx], 8 * (size_t)(f->end - f->idx + 1));
	if (ret)
		return ret;
	for (i = f->idx; i <= f->end; i++)
		buf[i] = le64toh(buf[i]);
	f->tbl = buf;
	return 0;
}

static int walk_bad_table(struct walk *w, unsigned level, uint64_t pte)
{
	struct walk_frame *f = &w->f[level];
	uint64_t at =
		f->base + ((uint64_t)f->idx << viommu__vtd_level_shift(level));

	if (at < w->start)
		at = w->start;
	report(w->rep, VIOMMU_FAULT_BAD_TABLE, at, level, f->gpa, pte,
	       "iova 0x%llx: the level %u table at 0x%llx is not in guest RAM",
	       (unsigned long long)at, level, (unsigned long long)f->gpa);
	return -EFAULT;
}

static int walk_reserved(struct walk *w, unsigned level, unsigned idx,
			 uint64_t pte, uint64_t rsvd)
{
	struct walk_frame *f = &w->f[level];
	uint64_t at =
		f->base + ((uint64_t)idx << viommu__vtd_level_shift(level));
	uint64_t gpa = f->gpa + 8 * (uint64_t)idx;

	if (at < w->start)
		at = w->start;
	report(w->rep, VIOMMU_FAULT_RESERVED, at, level, gpa, pte,
	       "iova 0x%llx: level %u entry 0x%llx at 0x%llx has reserved "
	       "bits 0x%llx set",
	       (unsigned long long)at, level, (unsigned long long)pte,
	       (unsigned long long)gpa, (unsigned long long)(pte & rsvd));
	return -EINVAL;
}

static int walk_over_budget(struct walk *w, unsigned level, unsigned idx)
{
	struct walk_frame *f = &w->f[level];
	uint64_t at =
		f->base + ((uint64_t)idx << viommu__vtd_level_shift(level));

	if (at < w->start)
		at = w->start;
	report(w->rep, VIOMMU_FAULT_BAD_TABLE, at, level,
	       f->gpa + 8 * (uint64_t)idx, 0,
	       "walk of [0x%llx, 0x%llx] stopped at iova 0x%llx: it examined "
	       "%llu entries, its budget",
	       (unsigned long long)w->start, (unsigned long long)w->last,
	       (unsigned long long)at, (unsigned long long)w->examined);
	return -E2BIG;
}

/*
 * The hot loop: the 4 KiB leaves of one level-1 table, which is where a
 * domain-wide walk spends nearly all its time.  Masks and the callback are
 * kept in locals so the compiler keeps them in registers.
 */
static int walk_leaves(struct walk *w)
{
	struct walk_frame *f = &w->f[1];
	const uint64_t *tbl = f->tbl;
	const uint64_t rsvd = w->pt->rsvd_leaf[1];
	const uint64_t addr_mask = w->pt->addr_mask;
	const unsigned perm = f->perm;
	const viommu_walk_fn fn = w->fn;
	void *const ctx = w->ctx;
	const uint64_t left = w->pt->budget - w->examined;
	unsigned i, first = f->idx, end = f->end;
	struct viommu_entry e = { .addr_mask = VIOMMU_GUEST_PAGE_SIZE - 1 };
	bool over = false;
	int ret;

	if (left == 0)
		return walk_over_budget(w, 1, first);
	if ((uint64_t)(end - first) + 1 > left) {
		end = first + (unsigned)left - 1; /* left < 512 here */
		over = true;
	}
	for (i = first; i <= end; i++) {
		uint64_t pte = pte_load(&tbl[i]);

		if (!(pte & VIOMMU__VTD_PTE_RW))
			continue;
		if (pte & rsvd) {
			w->examined += i - first + 1;
			return walk_reserved(w, 1, i, pte, rsvd);
		}
		e.perm = perm & (unsigned)pte;
		if (!e.perm)
			continue;
		e.iova = f->base + ((uint64_t)i << VIOMMU__VTD_PAGE_SHIFT);
		e.translated_addr = pte & addr_mask;
		ret = fn(ctx, &e);
		if (ret) {
			w->examined += i - first + 1;
			f->idx = i + 1;
			return ret;
		}
	}
	w->examined += end - first + 1;
	if (over)
		return walk_over_budget(w, 1, end + 1);
	f->idx = end + 1;
	return 0;
}

/* Examine one entry of a table at level 2 or above. */
static int walk_step(struct walk *w, unsigned *levelp)
{
	const struct viommu__vtd_pt *pt = w->pt;
	unsigned level = *levelp, idx, shift = viommu__vtd_level_shift(level);
	struct walk_frame *f = &w->f[level], *child;
	uint64_t pte, base, last;
	unsigned perm;
	int ret;

	if (w->examined >= pt->budget)
		return walk_over_budget(w, level, f->idx);
	w->examined++;
	idx = f->idx++;
	pte = pte_load(&f->tbl[idx]);
	if (!(pte & VIOMMU__VTD_PTE_RW))
		return 0;
	base = f->base + ((uint64_t)idx << shift);
	last = base + (UINT64_C(1) << shift) - 1;
	perm = f->perm & (unsigned)pte;
	if (viommu__vtd_is_leaf(pte, level)) {
		struct viommu_entry e;

		if (pte & pt->rsvd_leaf[level])
			return walk_reserved(w, level, idx, pte,
					     pt->rsvd_leaf[level]);
		if (!perm)
			return 0;
		e.iova = base;
		e.addr_mask = last - base;
		e.translated_addr = pte & pt->addr_mask;
		e.perm = perm;
		return w->fn(w->ctx, &e);
	}
	if (pte & pt->rsvd_table[level])
		return walk_reserved(w, level, idx, pte, pt->rsvd_table[level]);

	/* Descend: the child table covers [base, last]. */
	child = &w->f[level - 1];
	child->base = base;
	child->perm = perm;
	child->idx = w->start > base ? viommu__vtd_index(w->start, level - 1) :
				       0;
	child->end = w->last < last ? viommu__vtd_index(w->last, level - 1) :
				      VIOMMU__VTD_ENTRIES - 1;
	ret = frame_load(w, level - 1, pte & pt->addr_mask);
	if (ret)
		return walk_bad_table(w, level - 1, pte);
	*levelp = level - 1;
	return 0;
}

int viommu__vtd_walk(const struct viommu__vtd_pt *pt, uint64_t start,
		     uint64_t last, viommu_walk_fn fn, void *ctx,
		     struct viommu__vtd_report *rep)
{
	struct walk w;
	unsigned level;
	int ret = 0;

	if (!pt || !fn)
		return -EINVAL;
	report(rep, VIOMMU_FAULT_NONE, 0, 0, 0, 0, NULL);
	if (last > pt->iova_last)
		last = pt->iova_last;
	if (start > last)
		return 0;

	w.pt = pt;
	w.start = start;
	w.last = last;
	w.fn = fn;
	w.ctx = ctx;
	w.rep = rep;
	w.examined = 0;
	level = pt->levels;
	w.f[level].base = 0;
	w.f[level].perm = VIOMMU_PERM_RW;
	w.f[level].idx = viommu__vtd_index(start, level);
	w.f[level].end = viommu__vtd_index(last, level);
	if (frame_load(&w, level, pt->root)) {
		ret = walk_bad_table(&w, level, 0);
		goto out;
	}

	/*
	 * Invariant: frames pt->levels down to @level hold the path to the
	 * next entry to examine; a frame with idx > end is finished and its
	 * parent resumes.  The depth never exceeds the level count, whatever
	 * the entries point at.
	 */
	for (;;) {
		struct walk_frame *f = &w.f[level];

		if (f->idx > f->end) {
			if (level == pt->levels)
				break;
			level++;
			continue;
		}
		ret = level == 1 ? walk_leaves(&w) : walk_step(&w, &level);
		if (ret)
			break;
	}
out:
	if (rep)
		rep->examined = w.examined;
	return ret;
}
