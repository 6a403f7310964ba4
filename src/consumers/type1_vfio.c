/* SPDX-License-Identifier: MIT */
/*
 * The VFIO type1 backend: the shadow's map and unmap become
 * VFIO_IOMMU_MAP_DMA and VFIO_IOMMU_UNMAP_DMA on a container with a type1
 * v2 IOMMU, guest-physical targets turned into the VMM's virtual addresses
 * by the embedder's callback.  Linux only: elsewhere opening fails with
 * -ENOTSUP, so embedders link the same way everywhere.
 */
#include <errno.h>
#include <stdlib.h>

#include <viommu/shadow.h>

#include "internal.h"

#ifdef __linux__

#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vfio.h>

struct viommu_type1_vfio {
	int container;
	int group;
	viommu_gpa_to_hva_fn gpa_to_hva;
	void *opaque;
};

static int vfio_unmap(void *opaque, uint64_t iova, uint64_t size)
{
	struct viommu_type1_vfio *v = opaque;
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u),
		.iova = iova,
		.size = size,
	};

	return ioctl(v->container, VFIO_IOMMU_UNMAP_DMA, &u) ? -errno : 0;
}

/*
 * One host mapping per stretch of the target that is contiguous in the
 * VMM; type1 v2 removes them together with one unmap of the whole range.
 */
static int vfio_map(void *opaque, uint64_t iova, uint64_t size, uint64_t gpa,
		    unsigned perm)
{
	struct viommu_type1_vfio *v = opaque;
	uint64_t done = 0;
	int ret = 0;

	while (done < size) {
		struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m) };
		uint64_t len = size - done;
		void *hva = NULL;

		ret = v->gpa_to_hva(v->opaque, gpa + done, &len, &hva);
		if (!ret && (!len || len > size - done))
			ret = -EFAULT;
		if (ret)
			break;
		m.flags =
			(perm & VIOMMU_PERM_READ ? VFIO_DMA_MAP_FLAG_READ : 0) |
			(perm & VIOMMU_PERM_WRITE ? VFIO_DMA_MAP_FLAG_WRITE :
						    0);
		m.vaddr = (uint64_t)(uintptr_t)hva;
		m.iova = iova + done;
		m.size = len;
		if (ioctl(v->container, VFIO_IOMMU_MAP_DMA, &m)) {
			ret = -errno;
			break;
		}
		done += len;
	}
	/* all or nothing, as the shadow expects of a map */
	if (ret && done)
		vfio_unmap(v, iova, done);
	return ret;
}

static const struct viommu_host_ops vfio_ops = {
	.version = VIOMMU_HOST_OPS_VERSION,
	.name = "vfio-type1",
	.map = vfio_map,
	.unmap = vfio_unmap,
};

/* Undo a half-done open. */
static void discard(struct viommu_type1_vfio *v)
{
	if (v->group >= 0)
		close(v->group);
	if (v->container >= 0)
		close(v->container);
	free(v);
}

/* @sys: the errno the failing call set, @code: what we return. */
#define FAIL(code, sys, fmt, ...)                                              \
	do {                                                                   \
		int code_ = (code), sys_ = (sys); /* before close() */         \
		discard(v);                                                    \
		return viommu__error(err, code_, fmt, __VA_ARGS__,             \
				     strerror(sys_));                          \
	} while (0)

int viommu_type1_vfio_open(const char *container_path, const char *group_path,
			   viommu_gpa_to_hva_fn gpa_to_hva, void *opaque,
			   struct viommu_type1_vfio **out,
			   struct viommu_error *err)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct viommu_type1_vfio *v;
	int ret;

	if (!out || !group_path || !gpa_to_hva)
		return viommu__error(err, -EINVAL,
				     "vfio: a group path and a gpa-to-hva "
				     "callback are required");
	*out = NULL;
	if (!container_path)
		container_path = "/dev/vfio/vfio";
	v = calloc(1, sizeof(*v));
	if (!v)
		return viommu__error(err, -ENOMEM, "out of memory");
	v->group = -1;
	v->gpa_to_hva = gpa_to_hva;
	v->opaque = opaque;

	v->container = open(container_path, O_RDWR | O_CLOEXEC);
	if (v->container < 0)
		FAIL(-errno, errno,
		     "vfio: cannot open the container %s (is the vfio module "
		     "loaded and /dev/vfio accessible?): %s",
		     container_path);
	ret = ioctl(v->container, VFIO_GET_API_VERSION);
	if (ret < 0)
		FAIL(-ENODEV, errno,
		     "vfio: %s is not a VFIO container (VFIO_GET_API_VERSION: "
		     "%s)",
		     container_path);
	if (ret != VFIO_API_VERSION)
		FAIL(-ENOTSUP, EPROTO,
		     "vfio: %s speaks VFIO API version %d, not %d (%s)",
		     container_path, ret, VFIO_API_VERSION);
	if (ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0)
		FAIL(-ENOTSUP, ENOTSUP, "vfio: %s has no type1 v2 IOMMU (%s)",
		     container_path);

	v->group = open(group_path, O_RDWR | O_CLOEXEC);
	if (v->group < 0)
		FAIL(-errno, errno, "vfio: cannot open the group %s: %s",
		     group_path);
	if (ioctl(v->group, VFIO_GROUP_GET_STATUS, &status))
		FAIL(-errno, errno, "vfio: %s: VFIO_GROUP_GET_STATUS: %s",
		     group_path);
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		FAIL(-EBUSY, EBUSY,
		     "vfio: group %s is not viable: bind all its devices to "
		     "vfio-pci (%s)",
		     group_path);
	if (ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container))
		FAIL(-errno, errno, "vfio: %s: VFIO_GROUP_SET_CONTAINER: %s",
		     group_path);
	if (ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		FAIL(-errno, errno, "vfio: %s: VFIO_SET_IOMMU type1 v2: %s",
		     container_path);
	*out = v;
	return 0;
}

#undef FAIL

void viommu_type1_vfio_close(struct viommu_type1_vfio *v)
{
	if (!v)
		return;
	close(v->group);
	close(v->container);
	free(v);
}

struct viommu_host_backend
viommu_type1_vfio_backend(struct viommu_type1_vfio *v)
{
	return (struct viommu_host_backend){ &vfio_ops, v };
}

int viommu_type1_vfio_group_fd(const struct viommu_type1_vfio *v)
{
	return v->group;
}

#else /* !__linux__ */

struct viommu_type1_vfio {
	int unused;
};

static int no_map(void *opaque, uint64_t iova, uint64_t size, uint64_t gpa,
		  unsigned perm)
{
	return -ENOTSUP;
}

static int no_unmap(void *opaque, uint64_t iova, uint64_t size)
{
	return -ENOTSUP;
}

static const struct viommu_host_ops vfio_ops = {
	.version = VIOMMU_HOST_OPS_VERSION,
	.name = "vfio-type1",
	.map = no_map,
	.unmap = no_unmap,
};

int viommu_type1_vfio_open(const char *container_path, const char *group_path,
			   viommu_gpa_to_hva_fn gpa_to_hva, void *opaque,
			   struct viommu_type1_vfio **out,
			   struct viommu_error *err)
{
	if (out)
		*out = NULL;
	return viommu__error(err, -ENOTSUP, "vfio: only on Linux");
}

void viommu_type1_vfio_close(struct viommu_type1_vfio *v)
{
}

struct viommu_host_backend
viommu_type1_vfio_backend(struct viommu_type1_vfio *v)
{
	return (struct viommu_host_backend){ &vfio_ops, v };
}

int viommu_type1_vfio_group_fd(const struct viommu_type1_vfio *v)
{
	return -1;
}

#endif /* __linux__ */
