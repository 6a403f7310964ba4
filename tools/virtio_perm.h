/* SPDX-License-Identifier: MIT */
/* The tools' one conversion from a mapping's permissions to MAP flags. */
#ifndef VIOMMU_TOOLS_VIRTIO_PERM_H
#define VIOMMU_TOOLS_VIRTIO_PERM_H

#include <viommu/viommu.h>
#include <viommu/virtio.h>

static inline unsigned virtio_map_flags(unsigned perm)
{
	return (perm & VIOMMU_PERM_READ ? VIOMMU_VIRTIO_MAP_F_READ : 0) |
	       (perm & VIOMMU_PERM_WRITE ? VIOMMU_VIRTIO_MAP_F_WRITE : 0);
}

#endif
