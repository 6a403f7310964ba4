/* SPDX-License-Identifier: MIT */
/*
 * Intel VT-d second-level paging structures: the entry format and a walker
 * that reads them from guest memory, as the remapping hardware does.
 *
 * Geometry (VT-d specification, "Second-Level Translation"): a 4 KiB table
 * holds 512 eight-byte entries; an address width (AW) of 39, 48 or 57 bits
 * gives 3, 4 or 5 levels.  Level 1 entries map 4 KiB, level 2 and 3 entries
 * with PS (bit 7) set map 2 MiB and 1 GiB superpages, every other present
 * entry points at the table one level down.
 *
 * Entry bits we interpret:
 *   0  R, 1 W           an entry with both clear is not present; the
 *                       permission of a translation is the AND of R and W
 *                       along the walk;
 *   7  PS               levels 2 and 3: superpage; level 1: ignored;
 *                       levels 4 and 5: reserved;
 *   11 SNP              leaves: snoop behaviour, reserved unless the
 *                       hardware has snoop control (ECAP.SC); tables:
 *                       reserved;
 *   [12, HAW) address   of the next table or of the page; bits [HAW, 52)
 *                       are reserved, and so are the address bits below a
 *                       superpage's size (12..20 for 2 MiB, 12..29 for 1 GiB);
 *   62 TM               leaves: transient mapping, reserved unless the
 *                       hardware supports device-TLBs (ECAP.DT); tables:
 *                       reserved.
 * Bits 2..6 (execute, memory type, ignore-PAT), 8..10 (accessed, dirty,
 * ignored), 52..61 and 63 are ignored: legacy-mode second-level translation
 * of requests without PASID does not use them.  Reserved bits are checked
 * only in present entries, as the hardware does.
 *
 * All of this is internal to the VT-d model.
 */
#ifndef VIOMMU_MODELS_VTD_PGTABLE_H
#define VIOMMU_MODELS_VTD_PGTABLE_H

#include <stdbool.h>
#include <stdint.h>

#include <viommu/guest_memory.h>
#include <viommu/viommu.h>

#define VIOMMU__VTD_PAGE_SHIFT 12
#define VIOMMU__VTD_LEVEL_BITS 9
#define VIOMMU__VTD_ENTRIES 512u
#define VIOMMU__VTD_MAX_LEVELS 5

#define VIOMMU__VTD_PTE_R (UINT64_C(1) << 0)
#define VIOMMU__VTD_PTE_W (UINT64_C(1) << 1)
#define VIOMMU__VTD_PTE_RW (VIOMMU__VTD_PTE_R | VIOMMU__VTD_PTE_W)
#define VIOMMU__VTD_PTE_PS (UINT64_C(1) << 7)
#define VIOMMU__VTD_PTE_SNP (UINT64_C(1) << 11)
#define VIOMMU__VTD_PTE_TM (UINT64_C(1) << 62)
/* The widest address field, bits 12..51; HAW may narrow it. */
#define VIOMMU__VTD_PTE_ADDR UINT64_C(0x000ffffffffff000)

/* Work bound of a walk, in entries examined, when the config gives none. */
#define VIOMMU__VTD_WALK_BUDGET (UINT64_C(4) << 20)

/**
 * viommu__vtd_levels() - paging levels for an address width.
 * @aw: address width in bits.
 *
 * Return: 3, 4 or 5 for an AW of 39, 48 or 57; 0 for any other width.
 */
static inline unsigned viommu__vtd_levels(unsigned aw)
{
	switch (aw) {
	case 39:
		return 3;
	case 48:
		return 4;
	case 57:
		return 5;
	default:
		return 0;
	}
}

/* log2 of the span of one entry at @level (1..5): 12, 21, 30, 39, 48. */
static inline unsigned viommu__vtd_level_shift(unsigned level)
{
	return VIOMMU__VTD_PAGE_SHIFT + VIOMMU__VTD_LEVEL_BITS * (level - 1);
}

/* The span of one entry at @level, in bytes. */
static inline uint64_t viommu__vtd_level_size(unsigned level)
{
	return UINT64_C(1) << viommu__vtd_level_shift(level);
}

/* Index of the entry at @level on the walk of @iova. */
static inline unsigned viommu__vtd_index(uint64_t iova, unsigned level)
{
	return (unsigned)(iova >> viommu__vtd_level_shift(level)) &
	       (VIOMMU__VTD_ENTRIES - 1);
}

/* Whether a present entry at @level is a leaf (as opposed to a table). */
static inline bool viommu__vtd_is_leaf(uint64_t pte, unsigned level)
{
	return level == 1 ||
	       ((level == 2 || level == 3) && (pte & VIOMMU__VTD_PTE_PS));
}

/**
 * struct viommu__vtd_pt_config - what the emulated hardware supports.
 * @aw: adjusted guest address width of the domain: 39, 48 or 57.
 * @haw: host address width: entry address bits at and above it (up to 51)
 *       are reserved.  0 means "the same as @aw, at most 52": that is what
 *       QEMU does, whose one aw-bits property sets MGAW, SAGAW and the
 *       reserved-bit masks, and what the Linux captures were taken with.
 * @snoop: ECAP.SC: bit 11 of a leaf is SNP rather than reserved.
 * @transient: ECAP.DT: bit 62 of a leaf is TM rather than reserved.
 * @budget: work bound of a walk in entries examined; 0 for
 *          VIOMMU__VTD_WALK_BUDGET.
 *
 * Zero-initialise and set @aw for the defaults.  2 MiB and 1 GiB
 * superpages are always supported (CAP.SLLPS = 0b11, as QEMU reports).
 */
struct viommu__vtd_pt_config {
	unsigned aw;
	unsigned haw;
	bool snoop;
	bool transient;
	uint64_t budget;
};

/**
 * struct viommu__vtd_pt - one second-level page table, ready to walk.
 * @mem: the guest memory the tables live in.
 * @root: guest-physical address of the top-level table (4 KiB aligned).
 * @aw: address width; IOVAs at and above 2^@aw are out of range.
 * @levels: 3, 4 or 5.
 * @iova_last: 2^@aw - 1.
 * @addr_mask: the entry bits that hold an address: [12, HAW).
 * @rsvd_table: per level, the reserved bits of an entry pointing at a
 *              table.
 * @rsvd_leaf: per level, the reserved bits of a leaf (levels 1..3).
 * @budget: work bound of a walk, in entries examined.
 *
 * Filled by viommu__vtd_pt_init(); read-only afterwards, so any number of
 * threads may translate and walk with it at once.
 */
struct viommu__vtd_pt {
	struct viommu_guest_memory mem;
	uint64_t root;
	unsigned aw;
	unsigned levels;
	uint64_t iova_last;
	uint64_t addr_mask;
	uint64_t rsvd_table[VIOMMU__VTD_MAX_LEVELS + 1];
	uint64_t rsvd_leaf[VIOMMU__VTD_MAX_LEVELS + 1];
	uint64_t budget;
};

#define VIOMMU__VTD_REPORT_MESSAGE_MAX 192

/**
 * struct viommu__vtd_report - details of a translation or a walk.
 * @fault: VIOMMU_FAULT_NONE, or why the tables could not be followed.
 * @iova: the address the fault was found for (a walk: the first address of
 *        the offending entry's span that lies in the walked range).
 * @level: level of the leaf found, or of the entry or table at fault;
 *         0 for an address out of range.
 * @pte_gpa: guest-physical address of that entry; for BAD_TABLE, of the
 *           unreadable table itself.
 * @pte: the entry's value; for BAD_TABLE, the entry that pointed at the
 *       table (0 for the root).
 * @examined: entries a walk examined (its work, counted against the
 *            budget); 0 for a translation.
 * @message: for a person, empty when @fault is NONE.
 */
struct viommu__vtd_report {
	enum viommu_fault fault;
	uint64_t iova;
	unsigned level;
	uint64_t pte_gpa;
	uint64_t pte;
	uint64_t examined;
	char message[VIOMMU__VTD_REPORT_MESSAGE_MAX];
};

/**
 * viommu__vtd_pt_init() - prepare a table for translation and walks.
 * @pt: filled in.
 * @mem: guest memory; copied (the memory itself must outlive @pt).
 * @root: guest-physical address of the top-level table.
 * @cfg: address width and hardware capabilities.
 *
 * Return: 0, or -EINVAL for an unknown AW, an HAW outside [12, 52], an
 * unaligned @root or a memory without a read op.
 */
int viommu__vtd_pt_init(struct viommu__vtd_pt *pt,
			const struct viommu_guest_memory *mem, uint64_t root,
			const struct viommu__vtd_pt_config *cfg);

/**
 * viommu__vtd_translate() - find the leaf covering one IOVA.
 * @pt: the table.
 * @iova: the address.
 * @out: @out->fault is the result; @out->entry is
 *   - NONE: the leaf, aligned (@iova rounded down to the leaf's size,
 *     translated_addr the page's base, perm the AND along the walk, which
 *     may be VIOMMU_PERM_NONE: an access check then faults);
 *   - NOT_PRESENT: the span of the entry found not present, perm NONE, so a
 *     caller can step over the hole;
 *   - RESERVED: the span of the entry with reserved bits set, perm NONE;
 *   - BAD_TABLE: the span covered by the unreadable table, perm NONE;
 *   - OUT_OF_RANGE: the aligned 2^AW block holding @iova, perm NONE.
 * @rep: optional details: the leaf's (or offending entry's) level, address
 *       and value, and a message when there is a fault.
 *
 * Reads at most one entry per level, so it ends whatever the guest wrote
 * (a table pointing at itself is just read again one level down).
 *
 * Return: 0 (faults are results), or -EINVAL for NULL arguments.
 */
int viommu__vtd_translate(const struct viommu__vtd_pt *pt, uint64_t iova,
			  struct viommu_translation *out,
			  struct viommu__vtd_report *rep);

/**
 * viommu__vtd_walk() - visit the leaves overlapping [@start, @last].
 * @pt: the table.
 * @start: first IOVA.
 * @last: last IOVA (inclusive); clipped to 2^AW - 1.
 * @fn: called for every present leaf with a non-empty permission, in
 *      increasing IOVA order, with the whole, naturally aligned leaf (not
 *      clipped to the range).
 * @ctx: handed to @fn.
 * @rep: optional; receives the fault that stopped the walk (fault NONE when
 *       none did) and the number of entries examined.
 *
 * Not-present entries cost one step whatever they span.  Every entry
 * examined counts against the budget, so a hostile table (one pointing at
 * itself 512 times per level, say) costs at most that much work.  Pages are
 * read in place through the memory's page op when it has one, else copied
 * with its read op.
 *
 * Return: 0 when the whole range was walked; the non-zero value @fn
 * returned; -EINVAL when a present entry has reserved bits set; -EFAULT when
 * a table is not in guest RAM; -E2BIG when the budget ran out.  The three
 * errors come with a fault in @rep.
 */
int viommu__vtd_walk(const struct viommu__vtd_pt *pt, uint64_t start,
		     uint64_t last, viommu_walk_fn fn, void *ctx,
		     struct viommu__vtd_report *rep);

#endif /* VIOMMU_MODELS_VTD_PGTABLE_H */
