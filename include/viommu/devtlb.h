/* SPDX-License-Identifier: MIT */
/*
 * libviommu — a device IOTLB: a bounded translation cache for one device.
 *
 * This is what vhost does with a vIOMMU: the device translates an IOVA
 * through the address space (viommu_as_translate()) on a miss, keeps the
 * answer, and drops every cached translation an unmap event overlaps.  It
 * listens with VIOMMU_NOTIFY_UNMAP (every removal the library knows of,
 * over-sized ones included), with VIOMMU_NOTIFY_DEVIOTLB_UNMAP (the guest's
 * own device-IOTLB invalidations, as for an ATS device), or both.
 *
 * Costs: a lookup is O(log n) for n cached entries; an invalidation event
 * of any size (the whole 2^64 space included) is O(log n + k) for the k
 * entries it drops, never a scan of the cache.  Memory: the configured
 * number of entries, allocated up front (about 80 bytes each).
 *
 * Threads: lookups may run on any threads (device threads), concurrently
 * with invalidations, which arrive on the thread that changes the address
 * space.  A mutex guards the cache; it is never held while the address
 * space is asked to translate, and a translation that raced with an
 * invalidation is returned but not cached, so a lookup that starts after
 * an invalidation finished never sees what it revoked.
 */
#ifndef VIOMMU_DEVTLB_H
#define VIOMMU_DEVTLB_H

#include <viommu/viommu.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VIOMMU_DEVTLB_DEFAULT_ENTRIES 512u

/**
 * struct viommu_devtlb_config - the cache's size and what it listens to.
 * @flags: VIOMMU_NOTIFY_UNMAP and/or VIOMMU_NOTIFY_DEVIOTLB_UNMAP; nothing
 *     else.  A model may refuse either (virtio-iommu has no device-IOTLB
 *     invalidation; VT-d has one only with device-iotlb=on).
 * @entries: translations cached at most; the least recently used one is
 *     evicted to make room.  0 for VIOMMU_DEVTLB_DEFAULT_ENTRIES.
 * @held_only: cache a translation only when the address space holds it
 *     (viommu_as_lookup() finds the same entry), so that its removal is
 *     sure to be notified.  Unmap notifications are computed from what
 *     the address space holds; a model whose translate can answer with a
 *     mapping it never notified (VT-d in caching mode after a consumer
 *     refused a map: the change is undone, the guest's tables keep it)
 *     would otherwise leave a cached translation nobody revokes.  Costs
 *     misses where the model notifies late (VT-d without caching mode holds
 *     a mapping only from its first invalidation on).  Not needed with
 *     VIOMMU_NOTIFY_DEVIOTLB_UNMAP alone: the guest then invalidates the
 *     device itself.
 */
struct viommu_devtlb_config {
	unsigned flags;
	size_t entries;
	bool held_only;
};

/**
 * struct viommu_devtlb_counters - what the cache did.
 * @hits: lookups answered from the cache.
 * @misses: lookups that asked the address space.
 * @faults: misses the address space answered with a fault (not cached).
 * @invalidations: unmap and device-IOTLB unmap events heard.
 * @dropped: cached entries those events dropped.
 * @evictions: entries evicted, least recently used first, for room.
 * @replaced: entries dropped because a newer translation overlapped them
 *     (the guest changed a mapping the cache still held, before
 *     invalidating it).
 * @uncached: translations returned but not cached, because an
 *     invalidation ran while the address space was translating, or (with
 *     @held_only) because the address space does not hold them.
 * @entries: entries cached now.
 */
struct viommu_devtlb_counters {
	uint64_t hits, misses, faults;
	uint64_t invalidations, dropped;
	uint64_t evictions, replaced, uncached;
	uint64_t entries;
};

struct viommu_as;
struct viommu_devtlb;

/**
 * viommu_devtlb_config_init() - defaults: listen to UNMAP, cache
 * VIOMMU_DEVTLB_DEFAULT_ENTRIES translations, whether held or not.
 * @cfg: filled in.
 */
VIOMMU_EXPORT void viommu_devtlb_config_init(struct viommu_devtlb_config *cfg);

/**
 * viommu_devtlb_new() - a device IOTLB in front of an address space.
 * @as: the device's address space; must outlive the cache.
 * @cfg: options (copied); NULL for the defaults.
 * @out: receives the cache, empty.
 * @err: optional detailed error.
 *
 * Registers a notifier over the whole of @as with @cfg->flags.  Nothing is
 * replayed: the cache fills on misses.
 *
 * Return: 0; -EINVAL for empty or other flags; -ENOMEM; or the model's
 * refusal of the flags (-ENOTSUP).
 */
VIOMMU_EXPORT int viommu_devtlb_new(struct viommu_as *as,
				    const struct viommu_devtlb_config *cfg,
				    struct viommu_devtlb **out,
				    struct viommu_error *err);

/**
 * viommu_devtlb_free() - unregister and release the cache.
 * @tlb: the cache (NULL is ignored).  Not from inside a callback of its
 *     address space, and with no lookup running.
 */
VIOMMU_EXPORT void viommu_devtlb_free(struct viommu_devtlb *tlb);

/**
 * viommu_devtlb_translate() - translate @iova for a DMA of the device.
 * @tlb: the cache.
 * @iova: the address.
 * @access: VIOMMU_PERM_READ, VIOMMU_PERM_WRITE or both.
 * @out: the translation: on a hit the cached entry (with
 *     VIOMMU_FAULT_PERMISSION when it lacks @access), on a miss what
 *     viommu_as_translate() answered.
 *
 * A miss caches the answer when it is a translation (fault NONE or
 * PERMISSION); faults are never cached.  May run on any thread.
 *
 * Return: 0 (a fault is a result in @out), -EINVAL for a bad @access, or
 * the error viommu_as_translate() returned.
 */
VIOMMU_EXPORT int viommu_devtlb_translate(struct viommu_devtlb *tlb,
					  uint64_t iova, unsigned access,
					  struct viommu_translation *out);

/**
 * viommu_devtlb_flush() - drop every cached translation (a device reset).
 * @tlb: the cache.
 */
VIOMMU_EXPORT void viommu_devtlb_flush(struct viommu_devtlb *tlb);

/**
 * viommu_devtlb_counters() - a copy of the cache's counters.
 * @tlb: the cache.
 * @out: filled in.
 */
VIOMMU_EXPORT void viommu_devtlb_counters(struct viommu_devtlb *tlb,
					  struct viommu_devtlb_counters *out);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_DEVTLB_H */
