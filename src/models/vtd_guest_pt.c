/* SPDX-License-Identifier: MIT */
/*
 * The guest side of VT-d second-level page tables: a table-page allocator
 * and the map, unmap and raw-write operations of a guest IOMMU driver.
 *
 * The tables may have been made hostile by raw writes (a table pointing at
 * itself or at a page that is not a table), so every operation here is
 * bounded the same way the walker is: the recursion depth is the level
 * count, a table is freed at most once (the allocator knows which pages it
 * handed out), and a table on the path being worked on is never freed.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "models/vtd_guest_pt.h"
#include "models/vtd_pgtable.h"

#define PAGE VIOMMU_GUEST_PAGE_SIZE
#define NENT VIOMMU__VTD_ENTRIES
/* The last address an entry's 40-bit address field can hold. */
#define PA_LAST (VIOMMU__VTD_PTE_ADDR | (PAGE - 1))

static const uint8_t zero_page[PAGE];

/* --- the table-page allocator ------------------------------------------ */

int viommu__vtd_alloc_init(struct viommu__vtd_alloc *a,
			   const struct viommu_guest_memory *mem, uint64_t base,
			   uint64_t limit)
{
	uint64_t npages;

	if (!a || !mem || !mem->ops || !mem->ops->read || !mem->ops->write ||
	    (base | limit) & (PAGE - 1) || limit <= base)
		return -EINVAL;
	npages = (limit - base) / PAGE;
	if (npages > SIZE_MAX / 2)
		return -ENOMEM;
	memset(a, 0, sizeof(*a));
	a->used = calloc((size_t)(npages + 7) / 8, 1);
	if (!a->used)
		return -ENOMEM;
	a->mem = *mem;
	a->base = base;
	a->limit = limit;
	a->next = base;
	return 0;
}

void viommu__vtd_alloc_fini(struct viommu__vtd_alloc *a)
{
	if (!a)
		return;
	free(a->free);
	free(a->used);
	memset(a, 0, sizeof(*a));
}

static size_t page_bit(const struct viommu__vtd_alloc *a, uint64_t gpa)
{
	return (size_t)((gpa - a->base) / PAGE);
}

bool viommu__vtd_alloc_owns(const struct viommu__vtd_alloc *a, uint64_t gpa)
{
	size_t bit;

	if (gpa < a->base || gpa >= a->next || gpa & (PAGE - 1))
		return false;
	bit = page_bit(a, gpa);
	return a->used[bit / 8] & (1u << (bit % 8));
}

/*
 * The free list can hold every page ever handed out, so freeing never
 * needs memory: it grows here, when the bump pointer moves.
 */
static int reserve_free_slots(struct viommu__vtd_alloc *a, size_t want)
{
	size_t cap = a->cap ? a->cap : 64;
	uint64_t *v;

	if (want <= a->cap)
		return 0;
	while (cap < want)
		cap *= 2;
	v = realloc(a->free, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	a->free = v;
	a->cap = cap;
	return 0;
}

int viommu__vtd_alloc_page(struct viommu__vtd_alloc *a, uint64_t *gpa)
{
	uint64_t page;
	size_t bit;
	int ret;

	if (a->nfree) {
		page = a->free[--a->nfree];
	} else {
		if (a->next >= a->limit)
			return -ENOMEM;
		ret = reserve_free_slots(a, page_bit(a, a->next) + 1);
		if (ret)
			return ret;
		page = a->next;
		a->next += PAGE;
	}
	/* A table must start empty: stale entries would be live mappings. */
	ret = viommu_guest_write(&a->mem, page, zero_page, PAGE);
	if (ret) {
		a->free[a->nfree++] = page;
		return ret;
	}
	bit = page_bit(a, page);
	a->used[bit / 8] |= (uint8_t)(1u << (bit % 8));
	a->in_use++;
	*gpa = page;
	return 0;
}

int viommu__vtd_alloc_free(struct viommu__vtd_alloc *a, uint64_t gpa)
{
	size_t bit;

	if (!viommu__vtd_alloc_owns(a, gpa))
		return -EINVAL;
	bit = page_bit(a, gpa);
	a->used[bit / 8] &= (uint8_t) ~(1u << (bit % 8));
	a->in_use--;
	a->free[a->nfree++] = gpa;
	return 0;
}

/* --- entries ------------------------------------------------------------ */

static int read_pte(struct viommu__vtd_gpt *pt, uint64_t gpa, uint64_t *pte)
{
	uint64_t raw;
	int ret = viommu_guest_read(&pt->alloc->mem, gpa, &raw, 8);

	*pte = ret ? 0 : le64toh(raw);
	return ret;
}

static int write_pte(struct viommu__vtd_gpt *pt, uint64_t gpa, uint64_t pte)
{
	uint64_t raw = htole64(pte);

	return viommu_guest_write(&pt->alloc->mem, gpa, &raw, 8);
}

static int read_ptes(struct viommu__vtd_gpt *pt, uint64_t table, unsigned first,
		     unsigned n, uint64_t *out)
{
	unsigned i;
	int ret = viommu_guest_read(&pt->alloc->mem, table + 8 * first, out,
				    8 * (size_t)n);

	for (i = 0; !ret && i < n; i++)
		out[i] = le64toh(out[i]);
	return ret;
}

static int write_ptes(struct viommu__vtd_gpt *pt, uint64_t table,
		      unsigned first, unsigned n, uint64_t *ptes)
{
	unsigned i;

	for (i = 0; i < n; i++)
		ptes[i] = htole64(ptes[i]);
	return viommu_guest_write(&pt->alloc->mem, table + 8 * first, ptes,
				  8 * (size_t)n);
}

static bool is_present(uint64_t pte)
{
	return pte & VIOMMU__VTD_PTE_RW;
}

static bool is_table(uint64_t pte, unsigned level)
{
	return is_present(pte) && !viommu__vtd_is_leaf(pte, level);
}

/* The tables from the root down to the one being worked on. */
struct path {
	uint64_t table[VIOMMU__VTD_MAX_LEVELS + 1];
	unsigned top, bottom; /* levels held: bottom..top */
};

static bool on_path(const struct path *p, uint64_t table)
{
	unsigned level;

	if (!p)
		return false;
	for (level = p->bottom; level <= p->top; level++)
		if (p->table[level] == table)
			return true;
	return false;
}

/*
 * Free the table at @table (holding entries of @level) and the tables below
 * it.  Marking it free before looking inside ends loops: a table reached
 * again is no longer owned.  Tables on @keep stay, they are still in use.
 */
static void free_subtree(struct viommu__vtd_gpt *pt, uint64_t table,
			 unsigned level, const struct path *keep)
{
	uint64_t ptes[NENT];
	unsigned i;

	if (!viommu__vtd_alloc_owns(pt->alloc, table) ||
	    (keep && on_path(keep, table)))
		return;
	viommu__vtd_alloc_free(pt->alloc, table);
	if (level == 1 || read_ptes(pt, table, 0, NENT, ptes))
		return;
	for (i = 0; i < NENT; i++)
		if (is_table(ptes[i], level))
			free_subtree(pt, ptes[i] & VIOMMU__VTD_PTE_ADDR,
				     level - 1, keep);
}

/*
 * A new table of level @level - 1 leaves that map what the superpage @pte
 * at @level mapped, with the same attributes.
 */
static int split(struct viommu__vtd_gpt *pt, uint64_t pte, unsigned level,
		 uint64_t *table)
{
	uint64_t child_size = viommu__vtd_level_size(level - 1);
	uint64_t base = pte & VIOMMU__VTD_PTE_ADDR &
			~(viommu__vtd_level_size(level) - 1);
	uint64_t flags = pte & ~VIOMMU__VTD_PTE_ADDR;
	uint64_t ptes[NENT];
	unsigned i;
	int ret;

	/* Bit 7 means PS at level 2 but nothing at level 1: keep it clean. */
	if (level - 1 == 1)
		flags &= ~VIOMMU__VTD_PTE_PS;
	for (i = 0; i < NENT; i++)
		ptes[i] = (base + i * child_size) | flags;
	ret = viommu__vtd_alloc_page(pt->alloc, table);
	if (ret)
		return ret;
	ret = write_ptes(pt, *table, 0, NENT, ptes);
	if (ret)
		viommu__vtd_alloc_free(pt->alloc, *table);
	return ret;
}

/*
 * Walk from the root down to the table holding @iova's entry at @target,
 * creating missing tables and splitting superpages in the way, as a driver
 * does before writing a leaf.  Fills @path from the root down.
 */
static int descend(struct viommu__vtd_gpt *pt, uint64_t iova, unsigned target,
		   struct path *path)
{
	uint64_t table = pt->root, next, pte, gpa;
	unsigned level;
	int ret;

	path->top = pt->levels;
	path->bottom = pt->levels;
	path->table[pt->levels] = table;
	for (level = pt->levels; level > target; level--) {
		gpa = table + 8 * (uint64_t)viommu__vtd_index(iova, level);
		ret = read_pte(pt, gpa, &pte);
		if (ret)
			return ret;
		if (is_table(pte, level)) {
			next = pte & VIOMMU__VTD_PTE_ADDR;
		} else {
			if (is_present(pte))
				ret = split(pt, pte, level, &next);
			else
				ret = viommu__vtd_alloc_page(pt->alloc, &next);
			if (ret)
				return ret;
			ret = write_pte(pt, gpa, next | VIOMMU__VTD_PTE_RW);
			if (ret) {
				viommu__vtd_alloc_free(pt->alloc, next);
				return ret;
			}
		}
		table = next;
		path->table[level - 1] = table;
		path->bottom = level - 1;
	}
	return 0;
}

/* --- the driver's operations ------------------------------------------- */

int viommu__vtd_gpt_init(struct viommu__vtd_gpt *pt,
			 struct viommu__vtd_alloc *alloc, unsigned aw)
{
	unsigned levels = viommu__vtd_levels(aw);

	if (!pt || !alloc || !levels)
		return -EINVAL;
	pt->alloc = alloc;
	pt->aw = aw;
	pt->levels = levels;
	return viommu__vtd_alloc_page(alloc, &pt->root);
}

void viommu__vtd_gpt_fini(struct viommu__vtd_gpt *pt)
{
	if (!pt || !pt->alloc)
		return;
	free_subtree(pt, pt->root, pt->levels, NULL);
	pt->root = 0;
}

static uint64_t iova_last(const struct viommu__vtd_gpt *pt)
{
	return (UINT64_C(1) << pt->aw) - 1;
}

/* [iova, iova + size) within the address width, without overflow. */
static bool range_ok(const struct viommu__vtd_gpt *pt, uint64_t iova,
		     uint64_t size)
{
	return iova <= iova_last(pt) && size - 1 <= iova_last(pt) - iova;
}

int viommu__vtd_gpt_map(struct viommu__vtd_gpt *pt, uint64_t iova, uint64_t pa,
			uint64_t size, unsigned perm, uint64_t page_size)
{
	uint64_t old[NENT], ptes[NENT], leaf_flags, off, table;
	unsigned target, idx, n, i;
	struct path path;
	int ret;

	switch (page_size) {
	case UINT64_C(1) << 12:
		target = 1;
		break;
	case UINT64_C(1) << 21:
		target = 2;
		break;
	case UINT64_C(1) << 30:
		target = 3;
		break;
	default:
		return -EINVAL;
	}
	if (!pt || size == 0 || (iova | pa | size) & (page_size - 1) ||
	    perm == VIOMMU_PERM_NONE || perm & ~VIOMMU_PERM_RW ||
	    target > pt->levels)
		return -EINVAL;
	if (!range_ok(pt, iova, size) || pa > PA_LAST ||
	    size - 1 > PA_LAST - pa)
		return -ERANGE;

	leaf_flags = perm | (target > 1 ? VIOMMU__VTD_PTE_PS : 0);
	for (off = 0; off < size; off += (uint64_t)n * page_size) {
		ret = descend(pt, iova + off, target, &path);
		if (ret)
			return ret;
		table = path.table[target];
		idx = viommu__vtd_index(iova + off, target);
		n = NENT - idx;
		if ((size - off) / page_size < n)
			n = (unsigned)((size - off) / page_size);
		ret = read_ptes(pt, table, idx, n, old);
		if (ret)
			return ret;
		for (i = 0; i < n; i++)
			ptes[i] = (pa + off + i * page_size) | leaf_flags;
		ret = write_ptes(pt, table, idx, n, ptes);
		if (ret)
			return ret;
		/* A superpage replaces whole tables: they are garbage now. */
		for (i = 0; target > 1 && i < n; i++)
			if (is_table(old[i], target))
				free_subtree(pt, old[i] & VIOMMU__VTD_PTE_ADDR,
					     target - 1, &path);
	}
	return 0;
}

static bool table_empty(struct viommu__vtd_gpt *pt, uint64_t table)
{
	uint64_t ptes[NENT];
	unsigned i;

	if (read_ptes(pt, table, 0, NENT, ptes))
		return false;
	for (i = 0; i < NENT; i++)
		if (is_present(ptes[i]))
			return false;
	return true;
}

/*
 * Clear [start, last], which lies within the span of @table, a table of
 * @level entries; @path holds the tables above it and @table itself.
 */
static int unmap_table(struct viommu__vtd_gpt *pt, uint64_t table,
		       unsigned level, uint64_t start, uint64_t last,
		       struct path *path)
{
	unsigned shift = viommu__vtd_level_shift(level);
	uint64_t tbase = start & ~((UINT64_C(1) << (shift + 9)) - 1);
	unsigned first = viommu__vtd_index(start, level);
	unsigned end = viommu__vtd_index(last, level);
	uint64_t ptes[NENT];
	unsigned i;
	int ret;

	ret = read_ptes(pt, table, first, end - first + 1, ptes);
	if (ret)
		return ret;
	for (i = first; i <= end; i++) {
		uint64_t pte = ptes[i - first], gpa = table + 8 * (uint64_t)i;
		uint64_t ebase = tbase + ((uint64_t)i << shift);
		uint64_t elast = ebase + (UINT64_C(1) << shift) - 1;
		bool covered = start <= ebase && elast <= last;
		uint64_t child;

		if (!is_present(pte))
			continue;
		if (covered) {
			ret = write_pte(pt, gpa, 0);
			if (ret)
				return ret;
			if (is_table(pte, level))
				free_subtree(pt, pte & VIOMMU__VTD_PTE_ADDR,
					     level - 1, path);
			continue;
		}
		/* Partly covered: only level 2 and above get here. */
		if (viommu__vtd_is_leaf(pte, level)) {
			ret = split(pt, pte, level, &child);
			if (!ret)
				ret = write_pte(pt, gpa,
						child | VIOMMU__VTD_PTE_RW);
			if (ret)
				return ret;
		} else {
			child = pte & VIOMMU__VTD_PTE_ADDR;
		}
		path->table[level - 1] = child;
		path->bottom = level - 1;
		ret = unmap_table(pt, child, level - 1,
				  start > ebase ? start : ebase,
				  last < elast ? last : elast, path);
		path->bottom = level;
		if (ret)
			return ret;
		if (viommu__vtd_alloc_owns(pt->alloc, child) &&
		    !on_path(path, child) && table_empty(pt, child)) {
			ret = write_pte(pt, gpa, 0);
			if (ret)
				return ret;
			viommu__vtd_alloc_free(pt->alloc, child);
		}
	}
	return 0;
}

int viommu__vtd_gpt_unmap(struct viommu__vtd_gpt *pt, uint64_t iova,
			  uint64_t size)
{
	struct path path;

	if (!pt || size == 0 || (iova | size) & (PAGE - 1))
		return -EINVAL;
	if (!range_ok(pt, iova, size))
		return -ERANGE;
	path.top = path.bottom = pt->levels;
	path.table[pt->levels] = pt->root;
	return unmap_table(pt, pt->root, pt->levels, iova, iova + size - 1,
			   &path);
}

int viommu__vtd_gpt_write_pte(struct viommu__vtd_gpt *pt, uint64_t iova,
			      unsigned level, uint64_t value, bool self,
			      unsigned count)
{
	uint64_t ptes[NENT], table;
	unsigned idx, n, i;
	struct path path;
	int ret;

	if (!pt || level < 1 || level > pt->levels || count == 0)
		return -EINVAL;
	if (iova > iova_last(pt))
		return -ERANGE;
	ret = descend(pt, iova, level, &path);
	if (ret)
		return ret;
	table = path.table[level];
	idx = viommu__vtd_index(iova, level);
	n = count < NENT - idx ? count : NENT - idx;
	for (i = 0; i < n; i++)
		ptes[i] = self ? table | VIOMMU__VTD_PTE_RW : value;
	return write_ptes(pt, table, idx, n, ptes);
}
