/* SPDX-License-Identifier: MIT */
/*
 * The workload's guest: everything goes through the models' guest-facing
 * interfaces (VT-d registers, tables and queue; virtio requests), as a real
 * guest's would.
 */
#include <errno.h>
#include <string.h>

#include "virtio_perm.h"
#include "workload_guest.h"

int wl_guest_init(struct wl_guest *g, bool virtio, uint64_t ram_size,
		  struct viommu_error *err)
{
	unsigned d;
	int ret;

	memset(g, 0, sizeof(*g));
	g->virtio = virtio;
	g->ram_size = ram_size;
	if (virtio) {
		ret = viommu_virtio_new(NULL, &g->vio, err);
		for (d = 0; !ret && d < WL_DEVICES; d++) {
			ret = viommu_virtio_domain_add(g->vio, d + 1, err);
			if (!ret)
				ret = viommu_virtio_endpoint_add(
					g->vio, d, d ? "vnic" : "nic",
					&g->as[d], err);
			if (!ret && viommu_virtio_attach(g->vio, d + 1, d, err))
				ret = -EIO;
		}
		return ret;
	}
	ret = viommu_ram_new(ram_size, &g->ram, err);
	if (ret)
		return ret;
	g->mem = viommu_ram_memory(g->ram);
	ret = viommu_vtd_new(NULL, &g->mem, &g->vtd, err);
	/* the driver's tables live in the top 256 MiB of RAM */
	if (!ret)
		ret = viommu_vtd_driver_new(g->vtd, &g->mem,
					    ram_size - (256u << 20), ram_size,
					    &g->drv, err);
	for (d = 0; !ret && d < WL_DEVICES; d++) {
		uint16_t sid = (uint16_t)(0x0100 | d << 3); /* 01:0d.0 */

		ret = viommu_vtd_driver_domain_new(g->drv, (uint16_t)(d + 1),
						   err);
		if (!ret)
			ret = viommu_vtd_driver_attach(g->drv, sid,
						       (uint16_t)(d + 1), err);
		if (!ret)
			ret = viommu_vtd_device_add(g->vtd, sid,
						    d ? "vnic" : "nic",
						    &g->as[d], err);
	}
	return ret;
}

void wl_guest_fini(struct wl_guest *g)
{
	viommu_virtio_free(g->vio);
	viommu_vtd_driver_free(g->drv);
	viommu_vtd_free(g->vtd);
	viommu_ram_free(g->ram);
	memset(g, 0, sizeof(*g));
}

int wl_guest_map(struct wl_guest *g, unsigned dev, uint64_t iova, uint64_t pa,
		 uint64_t size, unsigned perm, uint64_t page)
{
	if (g->virtio) {
		if (viommu_virtio_map(g->vio, dev + 1, iova, iova + size - 1,
				      pa, virtio_map_flags(perm), NULL)) {
			g->requests_refused++;
			return -EIO;
		}
		return 0;
	}
	return viommu_vtd_driver_map(g->drv, (uint16_t)(dev + 1), iova, pa,
				     size, perm, page, NULL);
}

int wl_guest_unmap(struct wl_guest *g, unsigned dev, uint64_t iova,
		   uint64_t size)
{
	if (g->virtio) {
		if (viommu_virtio_unmap(g->vio, dev + 1, iova, iova + size - 1,
					NULL)) {
			g->requests_refused++;
			return -EIO;
		}
		return 0;
	}
	return viommu_vtd_driver_unmap(g->drv, (uint16_t)(dev + 1), iova, size,
				       NULL);
}

int wl_guest_flush(struct wl_guest *g, unsigned dev, uint64_t iova,
		   uint64_t size)
{
	if (g->virtio)
		return 0;
	return viommu_vtd_driver_invalidate(g->drv, (uint16_t)(dev + 1), iova,
					    size, NULL);
}
