/* SPDX-License-Identifier: MIT */
/*
 * The guest of `viommu workload`: one IOMMU (VT-d through the library's
 * guest driver, or virtio-iommu requests), two devices each in its own
 * domain, and the few operations a guest driver's DMA API needs.
 */
#ifndef VIOMMU_TOOLS_WORKLOAD_GUEST_H
#define VIOMMU_TOOLS_WORKLOAD_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include <viommu/guest_memory.h>
#include <viommu/virtio.h>
#include <viommu/vtd.h>
#include <viommu/vtd_driver.h>

#define WL_DEVICES 2

struct wl_guest {
	bool virtio;
	uint64_t ram_size;
	struct viommu_ram *ram;
	struct viommu_guest_memory mem;
	struct viommu_vtd *vtd;
	struct viommu_vtd_driver *drv;
	struct viommu_virtio *vio;
	struct viommu_as *as[WL_DEVICES];
	uint64_t requests_refused; /* guest-visible errors */
};

int wl_guest_init(struct wl_guest *g, bool virtio, uint64_t ram_size,
		  struct viommu_error *err);
void wl_guest_fini(struct wl_guest *g);

/* Write (vtd) or request (virtio) a mapping of device @dev's domain. */
int wl_guest_map(struct wl_guest *g, unsigned dev, uint64_t iova, uint64_t pa,
		 uint64_t size, unsigned perm, uint64_t page);
int wl_guest_unmap(struct wl_guest *g, unsigned dev, uint64_t iova,
		   uint64_t size);
/*
 * Tell the IOMMU: a page-selective invalidation of [iova, iova + size)
 * (size a power of two), or of the whole domain when @size is 0.  Nothing
 * to do on virtio, whose requests take effect at once.
 */
int wl_guest_flush(struct wl_guest *g, unsigned dev, uint64_t iova,
		   uint64_t size);

#endif
