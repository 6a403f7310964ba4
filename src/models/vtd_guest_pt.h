/* SPDX-License-Identifier: MIT */
/*
 * The guest side of VT-d second-level page tables: what a guest OS's IOMMU
 * driver does to its tables in guest memory.  The scenario runner and the
 * tests play the guest with it; the VT-d model itself only reads tables
 * (vtd_pgtable.h).
 *
 * Nothing here notifies anyone or invalidates anything: like a real driver,
 * the caller follows its changes with an invalidation, and only then does
 * the model look.  Operations are not atomic: when one fails half-way (out
 * of table pages, a table outside RAM), what it already wrote stays, as it
 * would for a driver.
 *
 * Tables come from an allocator over a region of guest RAM the caller sets
 * aside.  A table is freed when an operation drops its last use by this
 * code (an unmap that empties it, a superpage mapped over it); tables that
 * raw entry writes (viommu__vtd_gpt_write_pte) detach are left allocated.
 *
 * Not thread-safe: one guest driver, one thread, as in the runner.
 */
#ifndef VIOMMU_MODELS_VTD_GUEST_PT_H
#define VIOMMU_MODELS_VTD_GUEST_PT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <viommu/guest_memory.h>

/**
 * struct viommu__vtd_alloc - table pages from [base, limit) of guest RAM.
 * @mem: the guest memory (must have a write op).
 * @base: first page of the region.
 * @limit: end of the region (exclusive).
 * @next: pages at and above it have never been handed out.
 * @free: pages given back, reused last-in first-out.
 * @nfree: how many are in @free.
 * @cap: capacity of @free.
 * @used: a bit per page of the region: handed out and not freed.
 * @in_use: how many pages are handed out.
 */
struct viommu__vtd_alloc {
	struct viommu_guest_memory mem;
	uint64_t base, limit, next;
	uint64_t *free;
	size_t nfree, cap;
	uint8_t *used;
	size_t in_use;
};

/**
 * viommu__vtd_alloc_init() - an allocator over [@base, @limit).
 * @a: filled in.
 * @mem: guest memory (copied); needs a write op.
 * @base: first byte of the region, 4 KiB aligned.
 * @limit: end of the region (exclusive), 4 KiB aligned, above @base.
 *
 * The region is not checked against the RAM: a page outside it fails when
 * it is zeroed (-EFAULT from viommu__vtd_alloc_page()).
 *
 * Return: 0, -EINVAL for a bad region or memory, -ENOMEM.
 */
int viommu__vtd_alloc_init(struct viommu__vtd_alloc *a,
			   const struct viommu_guest_memory *mem, uint64_t base,
			   uint64_t limit);

/**
 * viommu__vtd_alloc_fini() - release the allocator's own memory.
 * @a: the allocator; the guest pages are left as they are.
 */
void viommu__vtd_alloc_fini(struct viommu__vtd_alloc *a);

/**
 * viommu__vtd_alloc_page() - a zeroed table page.
 * @a: the allocator.
 * @gpa: receives the page's guest-physical address.
 *
 * Return: 0, -ENOMEM when the region is used up, or -EFAULT when the page
 * cannot be written.
 */
int viommu__vtd_alloc_page(struct viommu__vtd_alloc *a, uint64_t *gpa);

/**
 * viommu__vtd_alloc_free() - give a page back.
 * @a: the allocator.
 * @gpa: a page viommu__vtd_alloc_page() handed out.
 *
 * Return: 0, or -EINVAL when @gpa is not a page handed out and not yet
 * freed (nothing changes: freeing twice is harmless).
 */
int viommu__vtd_alloc_free(struct viommu__vtd_alloc *a, uint64_t gpa);

/**
 * viommu__vtd_alloc_owns() - whether @gpa is a page handed out, not freed.
 * @a: the allocator.
 * @gpa: any address.
 */
bool viommu__vtd_alloc_owns(const struct viommu__vtd_alloc *a, uint64_t gpa);

/**
 * struct viommu__vtd_gpt - one domain's second-level tables, guest side.
 * @alloc: where its tables come from (shared by domains).
 * @root: guest-physical address of the top-level table.
 * @aw: address width: 39, 48 or 57.
 * @levels: 3, 4 or 5.
 */
struct viommu__vtd_gpt {
	struct viommu__vtd_alloc *alloc;
	uint64_t root;
	unsigned aw;
	unsigned levels;
};

/**
 * viommu__vtd_gpt_init() - an empty root table.
 * @pt: filled in.
 * @alloc: the table allocator; must outlive @pt.
 * @aw: 39, 48 or 57.
 *
 * Return: 0, -EINVAL for a bad @aw, or an allocation error.
 */
int viommu__vtd_gpt_init(struct viommu__vtd_gpt *pt,
			 struct viommu__vtd_alloc *alloc, unsigned aw);

/**
 * viommu__vtd_gpt_fini() - free every table of the domain, root included.
 * @pt: the domain's tables.
 *
 * Only tables the allocator owns are freed, each once, whatever the entries
 * point at.
 */
void viommu__vtd_gpt_fini(struct viommu__vtd_gpt *pt);

/**
 * viommu__vtd_gpt_map() - write leaves mapping [@iova, @iova + @size).
 * @pt: the domain's tables.
 * @iova: first IOVA, a multiple of @page_size.
 * @pa: guest-physical address of @iova, a multiple of @page_size.
 * @size: bytes, a non-zero multiple of @page_size.
 * @perm: VIOMMU_PERM_READ, VIOMMU_PERM_WRITE or both.
 * @page_size: 4 KiB, 2 MiB or 1 GiB: the size of each leaf written.
 *
 * Missing tables are created (their entries get R and W, as Linux does, so
 * the leaves alone decide the permission).  A larger leaf the range lands
 * in is split first into a table of next-lower-level leaves that keep the
 * rest of its mapping; a table where a superpage goes is replaced and its
 * subtree freed.  Leaves already there are overwritten.
 *
 * Return: 0; -EINVAL for a bad size, alignment, page size or permission;
 * -ERANGE when the range goes beyond the address width or @pa beyond what an
 * entry can hold (2^52); -ENOMEM when the table region is used up; -EFAULT
 * when a table is not in guest RAM.
 */
int viommu__vtd_gpt_map(struct viommu__vtd_gpt *pt, uint64_t iova, uint64_t pa,
			uint64_t size, unsigned perm, uint64_t page_size);

/**
 * viommu__vtd_gpt_unmap() - clear the leaves of [@iova, @iova + @size).
 * @pt: the domain's tables.
 * @iova: first IOVA, 4 KiB aligned.
 * @size: bytes, a non-zero multiple of 4 KiB.
 *
 * A superpage partly inside the range is split first, keeping the rest of
 * its mapping.  Tables left without a present entry are cleared from their
 * parent and freed (never the root).  Unmapping what is not mapped is fine.
 *
 * Return: 0; -EINVAL for a bad size or alignment; -ERANGE beyond the address
 * width; -ENOMEM for a split without table pages; -EFAULT when a table is
 * not in guest RAM.
 */
int viommu__vtd_gpt_unmap(struct viommu__vtd_gpt *pt, uint64_t iova,
			  uint64_t size);

/**
 * viommu__vtd_gpt_write_pte() - write raw entries, for hostile tables.
 * @pt: the domain's tables.
 * @iova: selects the entry: the one at @level on the walk of @iova.
 * @level: 1 (4 KiB leaves) to the number of levels (the root table).
 * @value: the entry to write, unless @self.
 * @self: write instead the address of the table holding the entry, with R
 *        and W set: a table that points at itself.
 * @count: write @count consecutive entries from there, all the same value;
 *         clipped to the end of that table page (so at most 512 - index).
 *
 * Missing tables above @level are created, and superpages in the way split,
 * as for a map.  Whatever the entries held is overwritten without freeing
 * anything: a raw write detaches subtrees, as a buggy driver would.
 *
 * Return: 0; -EINVAL for a bad @level or a zero @count; -ERANGE beyond the
 * address width; -ENOMEM; -EFAULT when a table is not in guest RAM.
 */
int viommu__vtd_gpt_write_pte(struct viommu__vtd_gpt *pt, uint64_t iova,
			      unsigned level, uint64_t value, bool self,
			      unsigned count);

#endif /* VIOMMU_MODELS_VTD_GUEST_PT_H */
