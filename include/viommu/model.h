/* SPDX-License-Identifier: MIT */
/*
 * libviommu — the interface for people who write a vIOMMU model.
 *
 * A model (VT-d, virtio-iommu, your own) owns how translations are found.
 * It plugs in through struct viommu_model_ops, creates one address space per
 * requester, and tells the library what is now in effect; the library's
 * change engine compares that with what it holds and emits exactly the
 * events the consumers need.  A model never crafts map/unmap pairs itself.
 */
#ifndef VIOMMU_MODEL_H
#define VIOMMU_MODEL_H

#include <viommu/viommu.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bump only by appending members to struct viommu_model_ops. */
#define VIOMMU_MODEL_OPS_VERSION 1

/**
 * struct viommu_model_ops - what a vIOMMU model provides.
 * @version: VIOMMU_MODEL_OPS_VERSION the model was written against.
 * @name: short name for messages ("vtd", "virtio"); mandatory.
 * @translate: mandatory.  Translate @iova of the address space whose
 *     model pointer is @as_opaque.  Fill @out->entry with the leaf covering
 *     @iova and set @out->fault; on VIOMMU_FAULT_NOT_PRESENT, describe in
 *     @out->entry the largest aligned hole around @iova that the model knows
 *     to be empty (at least the minimum page) so walkers can step over it.
 *     The library checks @access against the entry's permissions itself;
 *     @access is 0 when the library walks the tables to sync (any
 *     permission).  Without a replay op, sync steps through a range with
 *     translate, so report holes as large as you know them to be.
 *     Return 0, or a negative errno.  May be called on any thread.
 * @replay: optional.  Call @fn, in increasing IOVA order, for every
 *     translation in effect that overlaps [@start, @last] (entries are not
 *     clipped).  Used to read the model's state when syncing; without it the
 *     library steps through the range with @translate, entry by entry.
 *     Return 0, the non-zero value @fn returned, or a negative errno when the
 *     model cannot walk its tables (the sync then fails and changes nothing).
 * @notify_flags_changed: optional.  The union of the notifiers' flags on an
 *     address space changes from @old_flags to @new_flags.  Return 0 to
 *     accept; a negative errno (and a message in @err) refuses a growing set,
 *     and the registration that caused it is undone.  Shrinking sets cannot be
 *     refused.
 * @min_page_size: optional.  The smallest translation the model makes for
 *     this address space (a power of two); 4096 when absent.
 */
struct viommu_model_ops {
	unsigned version;
	const char *name;
	int (*translate)(void *as_opaque, uint64_t iova, unsigned access,
			 struct viommu_translation *out);
	int (*replay)(void *as_opaque, uint64_t start, uint64_t last,
		      viommu_walk_fn fn, void *ctx);
	int (*notify_flags_changed)(void *as_opaque, unsigned old_flags,
				    unsigned new_flags,
				    struct viommu_error *err);
	uint64_t (*min_page_size)(void *as_opaque);
};

struct viommu_model;

/**
 * viommu_model_new() - register a model's ops table.
 * @ops: the table; must outlive the model.  Mandatory members are checked.
 * @opaque: the model's own pointer, see viommu_model_opaque().
 * @out: receives the model handle.
 * @err: optional detailed error.
 *
 * Return: 0; -EINVAL when @ops is NULL, misses @translate or @name, or has a
 * version this library does not know; -ENOMEM.
 */
VIOMMU_EXPORT int viommu_model_new(const struct viommu_model_ops *ops,
				   void *opaque, struct viommu_model **out,
				   struct viommu_error *err);

/**
 * viommu_model_free() - release a model; its address spaces must be gone.
 * @model: the model (NULL is ignored).
 */
VIOMMU_EXPORT void viommu_model_free(struct viommu_model *model);

/**
 * viommu_model_opaque() - the pointer given to viommu_model_new().
 * @model: the model.
 */
VIOMMU_EXPORT void *viommu_model_opaque(const struct viommu_model *model);

/**
 * viommu_as_new() - create the address space of one requester.
 * @model: the model that translates it.
 * @name: for messages (copied); NULL gives "as".
 * @as_opaque: handed to the model's ops for this address space.
 * @out: receives the address space, which holds nothing yet.
 * @err: optional detailed error.
 *
 * Return: 0, -EINVAL, or -ENOMEM.
 */
VIOMMU_EXPORT int viommu_as_new(struct viommu_model *model, const char *name,
				void *as_opaque, struct viommu_as **out,
				struct viommu_error *err);

/**
 * viommu_as_free() - destroy an address space and its notifiers.
 * @as: the address space (NULL is ignored).  Not from inside a callback.
 *
 * Notifiers still registered are dropped silently: their handles become
 * invalid.
 */
VIOMMU_EXPORT void viommu_as_free(struct viommu_as *as);

/**
 * viommu_as_opaque() - the model's pointer for @as.
 * @as: the address space.
 */
VIOMMU_EXPORT void *viommu_as_opaque(const struct viommu_as *as);

/*
 * Flags for viommu_as_update() and viommu_as_sync().
 *
 * VIOMMU_UPDATE_WIDE_UNMAP: the model cannot be sure what unmap-only
 * consumers (device IOTLBs) cached — for example a VT-d guest without
 * caching mode maps without invalidating — so they are told to drop the
 * whole synced range instead of exactly what changed.
 */
#define VIOMMU_UPDATE_WIDE_UNMAP (1u << 0)

/**
 * viommu_as_update() - tell the library what is now in effect in a range.
 * @as: the address space.
 * @start: first IOVA of the range.
 * @last: last IOVA of the range (inclusive).
 * @entries: every translation now in effect that overlaps the range, in
 *     increasing IOVA order, not overlapping each other, each naturally
 *     aligned, with a non-empty @perm.  Entries may reach outside the range.
 * @n: how many.
 * @flags: VIOMMU_UPDATE_* bits.
 * @err: optional detailed error.
 *
 * The range is first widened to the entries the library holds that overlap
 * it and to @entries, so every entry is compared whole: the caller states
 * the new state of that widened range, and anything held there but not in
 * @entries is gone.  The library then emits, to each notifier concerned,
 * unmaps of what was removed or changed and maps of what is new or changed
 * (an in-place change is an unmap of the old entry, then a map of the new
 * one), leaving unchanged entries alone.  All or nothing: if a callback
 * refuses a map, everything delivered is reversed and nothing changes.
 *
 * Return: 0; -EINVAL for malformed entries; -EBUSY from inside a callback
 * of @as; -ENOMEM; or the error a callback returned.
 */
VIOMMU_EXPORT int viommu_as_update(struct viommu_as *as, uint64_t start,
				   uint64_t last,
				   const struct viommu_entry *entries, size_t n,
				   unsigned flags, struct viommu_error *err);

/**
 * viommu_as_update_entry() - one entry changed.
 * @as: the address space.
 * @entry: the new state of the aligned range @entry->iova/addr_mask:
 *     mapped as given, or unmapped when @entry->perm is VIOMMU_PERM_NONE.
 * @err: optional detailed error.
 *
 * Same as viommu_as_update() over that range.
 */
VIOMMU_EXPORT int viommu_as_update_entry(struct viommu_as *as,
					 const struct viommu_entry *entry,
					 struct viommu_error *err);

/**
 * viommu_as_sync() - read the model's state for a range and apply it.
 * @as: the address space.
 * @start: first IOVA.
 * @last: last IOVA (inclusive).
 * @flags: VIOMMU_UPDATE_* bits.
 * @err: optional detailed error.
 *
 * Widens the range to whole entries (held ones and the model's leaves),
 * reads the model's translations there through its replay op (or by
 * stepping with translate), and applies them as viommu_as_update() does.
 * This is what an invalidation does: cost is proportional to the entries in
 * the range, not to its size.
 *
 * Return: as viommu_as_update(), or the model's walk error.
 */
VIOMMU_EXPORT int viommu_as_sync(struct viommu_as *as, uint64_t start,
				 uint64_t last, unsigned flags,
				 struct viommu_error *err);

/**
 * viommu_as_notify_deviotlb() - a device-IOTLB invalidation.
 * @as: the address space of the device.
 * @iova: start of the invalidated range.
 * @addr_mask: size - 1 of the range (a power of two, @iova aligned to it).
 *
 * Delivers DEVIOTLB_UNMAP events to the notifiers that asked for them.
 *
 * Return: 0, -EINVAL for a misaligned range, or -EBUSY from a callback.
 */
VIOMMU_EXPORT int viommu_as_notify_deviotlb(struct viommu_as *as, uint64_t iova,
					    uint64_t addr_mask);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_MODEL_H */
