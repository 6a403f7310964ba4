/* SPDX-License-Identifier: MIT */
/*
 * libviommu — a small VT-d guest driver.
 *
 * Tests, the viommu command and the benchmarks need a guest that programs
 * the VT-d model the way an OS does: root and context tables and
 * second-level page tables in guest memory, the global command register, and
 * invalidations through the queue.  This is that guest: it only ever talks
 * to the unit through its registers and guest memory, so what it exercises
 * is the model a VMM embeds, not a shortcut.
 */
#ifndef VIOMMU_VTD_DRIVER_H
#define VIOMMU_VTD_DRIVER_H

#include <viommu/guest_memory.h>
#include <viommu/vtd.h>

#ifdef __cplusplus
extern "C" {
#endif

struct viommu_vtd_driver;

/**
 * viommu_vtd_driver_new() - bring up a unit as a guest driver does.
 * @vtd: the unit, fresh from viommu_vtd_new().
 * @mem: its guest memory, with a write op (copied).
 * @base: first byte of the guest RAM the driver may use for its tables and
 *     queue, 4 KiB aligned.
 * @limit: end of that region (exclusive).
 * @out: receives the driver.
 * @err: optional detailed error.
 *
 * Allocates a root table and a one-page invalidation queue, sets the root
 * table pointer, enables the queue, invalidates the context cache and the
 * IOTLB globally and enables translation.
 *
 * Return: 0, -EINVAL, -ENOMEM (the region is too small), -EFAULT (the
 * region is not guest RAM), or -EIO when the unit did not take a command.
 */
VIOMMU_EXPORT int viommu_vtd_driver_new(struct viommu_vtd *vtd,
					const struct viommu_guest_memory *mem,
					uint64_t base, uint64_t limit,
					struct viommu_vtd_driver **out,
					struct viommu_error *err);

/**
 * viommu_vtd_driver_free() - forget the driver (the unit is left as is).
 * @drv: the driver (NULL is ignored).
 */
VIOMMU_EXPORT void viommu_vtd_driver_free(struct viommu_vtd_driver *drv);

/**
 * viommu_vtd_driver_domain_new() - an empty domain (a root page table).
 * @drv: the driver.
 * @did: its domain id.
 * @err: optional detailed error.
 *
 * Return: 0, -EEXIST, -ENOMEM.
 */
VIOMMU_EXPORT int viommu_vtd_driver_domain_new(struct viommu_vtd_driver *drv,
					       uint16_t did,
					       struct viommu_error *err);

/**
 * viommu_vtd_driver_attach() - point a device's context entry at a domain.
 * @drv: the driver.
 * @sid: the device's source id.
 * @did: the domain.
 * @err: optional detailed error.
 *
 * Writes the context entry (creating the bus's context table), then
 * invalidates the device's context-cache entry and the IOTLB of its old
 * domain, as a driver must.
 *
 * Return: 0, -ENOENT for an unknown domain, -ENOMEM, -EIO.
 */
VIOMMU_EXPORT int viommu_vtd_driver_attach(struct viommu_vtd_driver *drv,
					   uint16_t sid, uint16_t did,
					   struct viommu_error *err);

/**
 * viommu_vtd_driver_detach() - clear a device's context entry.
 * @drv: the driver.
 * @sid: the device.
 * @err: optional detailed error.
 *
 * Return: 0, -ENOENT when the device is not attached, -EIO.
 */
VIOMMU_EXPORT int viommu_vtd_driver_detach(struct viommu_vtd_driver *drv,
					   uint16_t sid,
					   struct viommu_error *err);

/**
 * viommu_vtd_driver_map() - write leaves; nothing is invalidated.
 * @drv: the driver.
 * @did: the domain.
 * @iova: first IOVA, a multiple of @page_size.
 * @pa: its target, a multiple of @page_size.
 * @size: bytes, a multiple of @page_size.
 * @perm: VIOMMU_PERM_*.
 * @page_size: 4 KiB, 2 MiB or 1 GiB.
 * @err: optional detailed error.
 *
 * A larger leaf the range lands in is split, keeping the rest.
 *
 * Return: 0, -ENOENT for an unknown domain, -EINVAL, -ERANGE, -ENOMEM.
 */
VIOMMU_EXPORT int viommu_vtd_driver_map(struct viommu_vtd_driver *drv,
					uint16_t did, uint64_t iova,
					uint64_t pa, uint64_t size,
					unsigned perm, uint64_t page_size,
					struct viommu_error *err);

/**
 * viommu_vtd_driver_unmap() - clear leaves; nothing is invalidated.
 * @drv: the driver.
 * @did: the domain.
 * @iova: first IOVA (4 KiB aligned).
 * @size: bytes (a multiple of 4 KiB).
 * @err: optional detailed error.
 *
 * Return: 0, -ENOENT, -EINVAL, -ERANGE, -ENOMEM.
 */
VIOMMU_EXPORT int viommu_vtd_driver_unmap(struct viommu_vtd_driver *drv,
					  uint16_t did, uint64_t iova,
					  uint64_t size,
					  struct viommu_error *err);

/**
 * viommu_vtd_driver_write_pte() - a raw paging-entry write, for hostile
 * tables (see viommu_vtd_driver_map() for what a sane driver does).
 * @drv: the driver.
 * @did: the domain.
 * @iova: selects the entry on the walk of @iova ...
 * @level: ... at this level (1 = 4K leaf ... 5).
 * @value: the entry, unless @self.
 * @self: write the address of the table holding the entry, with R and W.
 * @count: consecutive entries to write (clipped to the table's end).
 * @err: optional detailed error.
 *
 * Return: 0, -ENOENT, -EINVAL, -ERANGE, -ENOMEM.
 */
VIOMMU_EXPORT int viommu_vtd_driver_write_pte(struct viommu_vtd_driver *drv,
					      uint16_t did, uint64_t iova,
					      unsigned level, uint64_t value,
					      bool self, unsigned count,
					      struct viommu_error *err);

/**
 * viommu_vtd_driver_invalidate() - an IOTLB invalidation through the queue.
 * @drv: the driver.
 * @did: the domain.
 * @iova: start of a page-selective invalidation ...
 * @size: ... of this many bytes (a power of two of at least 4 KiB, @iova
 *     aligned to it); 0 for a domain-selective invalidation.
 * @err: optional detailed error.
 *
 * Return: 0, -EINVAL, -EIO when the unit reported a queue error.
 */
VIOMMU_EXPORT int viommu_vtd_driver_invalidate(struct viommu_vtd_driver *drv,
					       uint16_t did, uint64_t iova,
					       uint64_t size,
					       struct viommu_error *err);

/**
 * viommu_vtd_driver_invalidate_global() - a global IOTLB invalidation.
 * @drv: the driver.
 * @err: optional detailed error.
 *
 * Return: 0, -EIO.
 */
VIOMMU_EXPORT int
viommu_vtd_driver_invalidate_global(struct viommu_vtd_driver *drv,
				    struct viommu_error *err);

/**
 * viommu_vtd_driver_invalidate_devtlb() - a device-IOTLB invalidation.
 * @drv: the driver.
 * @sid: the device.
 * @iova: start, aligned to @size.
 * @size: a power of two of at least 4 KiB.
 * @err: optional detailed error.
 *
 * Return: 0, -EINVAL, -EIO (for example a unit without device-IOTLB
 * support rejects the descriptor).
 */
VIOMMU_EXPORT int
viommu_vtd_driver_invalidate_devtlb(struct viommu_vtd_driver *drv, uint16_t sid,
				    uint64_t iova, uint64_t size,
				    struct viommu_error *err);

/**
 * viommu_vtd_queue_submit() - place one descriptor at the queue's tail.
 * @vtd: the unit, with queued invalidation enabled by whoever drives it.
 * @mem: its guest memory.
 * @lo: low 64 bits of the descriptor.
 * @hi: high 64 bits.
 *
 * Reads the queue address and tail registers, writes the descriptor there
 * in guest memory and advances the tail register, as a driver does; the
 * unit processes it before this returns.
 *
 * Return: 0, -EINVAL when the queue is not enabled, -ENOSPC when the ring
 * is full (the unit stopped on an error the guest has not cleared),
 * -EFAULT when the queue is not in guest memory.  A malformed descriptor is the unit's business
 * (FSTS.IQE), not an error of this call.
 */
VIOMMU_EXPORT int viommu_vtd_queue_submit(struct viommu_vtd *vtd,
					  const struct viommu_guest_memory *mem,
					  uint64_t lo, uint64_t hi);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_VTD_DRIVER_H */
