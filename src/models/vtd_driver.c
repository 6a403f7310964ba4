/* SPDX-License-Identifier: MIT */
/*
 * A small VT-d guest driver: everything it does goes through the unit's
 * registers and guest memory, in the order Linux's intel-iommu driver does
 * it (tables first, then the invalidation that makes them count).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <viommu/vtd_driver.h>

#include "internal.h"
#include "vtd_guest_pt.h"

#define MAX_DOMAINS 65536
#define CTX_P UINT64_C(1)

struct drv_domain {
	bool used;
	struct viommu__vtd_gpt pt;
};

struct viommu_vtd_driver {
	struct viommu_vtd *vtd;
	struct viommu_guest_memory mem;
	struct viommu__vtd_alloc alloc;
	uint64_t root;	 /* root table */
	uint64_t queue;	 /* one page: 256 descriptors */
	uint64_t status; /* where wait descriptors write */
	uint32_t serial; /* the last status value asked for */
	unsigned aw;
	struct drv_domain *domains; /* indexed by domain id */
};

static int reg_read(struct viommu_vtd_driver *drv, unsigned off, unsigned size,
		    uint64_t *v)
{
	return viommu_vtd_mmio_read(drv->vtd, off, size, v);
}

static int reg_write(struct viommu_vtd_driver *drv, unsigned off, unsigned size,
		     uint64_t v)
{
	return viommu_vtd_mmio_write(drv->vtd, off, size, v);
}

int viommu_vtd_queue_submit(struct viommu_vtd *vtd,
			    const struct viommu_guest_memory *mem, uint64_t lo,
			    uint64_t hi)
{
	uint64_t gsts, iqa, iqt, iqh, desc[2] = { lo, hi }, size;

	viommu_vtd_mmio_read(vtd, VIOMMU_VTD_REG_GSTS, 4, &gsts);
	if (!(gsts & VIOMMU_VTD_GCMD_QIE))
		return -EINVAL;
	viommu_vtd_mmio_read(vtd, VIOMMU_VTD_REG_IQA, 8, &iqa);
	viommu_vtd_mmio_read(vtd, VIOMMU_VTD_REG_IQT, 8, &iqt);
	viommu_vtd_mmio_read(vtd, VIOMMU_VTD_REG_IQH, 8, &iqh);
	size = UINT64_C(4096) << (iqa & 7);
	/* a full ring (the unit stopped on an error): do not overwrite */
	if ((iqt + 16) % size == iqh)
		return -ENOSPC;
	if (viommu_guest_write(mem, (iqa & ~UINT64_C(0xfff)) + iqt, desc,
			       sizeof(desc)))
		return -EFAULT;
	return viommu_vtd_mmio_write(vtd, VIOMMU_VTD_REG_IQT, 4,
				     (iqt + 16) % size);
}

/*
 * Submit a descriptor followed by a wait descriptor, then check the wait's
 * status write landed, as a driver polls for it.
 */
static int submit(struct viommu_vtd_driver *drv, uint64_t lo, uint64_t hi,
		  struct viommu_error *err)
{
	const uint64_t wait_sw = 5 | 1u << 5;
	uint32_t status = 0;
	uint64_t fsts;
	int ret;

	drv->serial++;
	ret = viommu_vtd_queue_submit(drv->vtd, &drv->mem, lo, hi);
	if (!ret)
		ret = viommu_vtd_queue_submit(
			drv->vtd, &drv->mem,
			wait_sw | (uint64_t)drv->serial << 32, drv->status);
	if (!ret)
		ret = viommu_guest_read(&drv->mem, drv->status, &status,
					sizeof(status));
	reg_read(drv, VIOMMU_VTD_REG_FSTS, 4, &fsts);
	if (ret || status != drv->serial || (fsts & VIOMMU_VTD_FSTS_IQE)) {
		if (fsts & VIOMMU_VTD_FSTS_IQE) {
			/*
			 * As Linux does: overwrite the rejected descriptor
			 * with a harmless wait, clear the error, and let the
			 * unit go on from there.
			 */
			uint64_t iqh, iqt, nop[2] = { 5, 0 };

			reg_read(drv, VIOMMU_VTD_REG_IQH, 8, &iqh);
			reg_read(drv, VIOMMU_VTD_REG_IQT, 8, &iqt);
			viommu_guest_write(&drv->mem, drv->queue + iqh, nop,
					   sizeof(nop));
			reg_write(drv, VIOMMU_VTD_REG_FSTS, 4,
				  VIOMMU_VTD_FSTS_IQE);
			reg_write(drv, VIOMMU_VTD_REG_IQT, 8, iqt);
		}
		return viommu__error(err, -EIO,
				     "vtd driver: the unit rejected descriptor "
				     "lo=0x%llx hi=0x%llx (queue error)",
				     (unsigned long long)lo,
				     (unsigned long long)hi);
	}
	return 0;
}

/* Set a global command bit and check its status follows. */
static int command(struct viommu_vtd_driver *drv, uint32_t bit, bool on)
{
	uint64_t gsts;

	reg_read(drv, VIOMMU_VTD_REG_GSTS, 4, &gsts);
	/* one-shot bits are not written back with the persistent ones */
	gsts &= VIOMMU_VTD_GCMD_TE | VIOMMU_VTD_GCMD_QIE | VIOMMU_VTD_GCMD_IRE;
	reg_write(drv, VIOMMU_VTD_REG_GCMD, 4,
		  on ? gsts | bit : gsts & ~(uint64_t)bit);
	reg_read(drv, VIOMMU_VTD_REG_GSTS, 4, &gsts);
	return !!(gsts & bit) == on ? 0 : -EIO;
}

int viommu_vtd_driver_new(struct viommu_vtd *vtd,
			  const struct viommu_guest_memory *mem, uint64_t base,
			  uint64_t limit, struct viommu_vtd_driver **out,
			  struct viommu_error *err)
{
	struct viommu_vtd_driver *drv;
	uint64_t cap, mgaw;
	int ret;

	if (!vtd || !mem || !out)
		return viommu__error(err, -EINVAL, "vtd driver: no unit");
	*out = NULL;
	drv = calloc(1, sizeof(*drv));
	if (drv)
		drv->domains = calloc(MAX_DOMAINS, sizeof(*drv->domains));
	if (!drv || !drv->domains) {
		free(drv);
		return viommu__error(err, -ENOMEM, "out of memory");
	}
	drv->vtd = vtd;
	drv->mem = *mem;
	viommu_vtd_mmio_read(vtd, VIOMMU_VTD_REG_CAP, 8, &cap);
	mgaw = ((cap >> 16) & 0x3f) + 1;
	drv->aw = (unsigned)mgaw;
	ret = viommu__vtd_alloc_init(&drv->alloc, mem, base, limit);
	if (!ret)
		ret = viommu__vtd_alloc_page(&drv->alloc, &drv->root);
	if (!ret)
		ret = viommu__vtd_alloc_page(&drv->alloc, &drv->queue);
	if (!ret)
		ret = viommu__vtd_alloc_page(&drv->alloc, &drv->status);
	if (ret) {
		viommu_vtd_driver_free(drv);
		return viommu__error(err, ret,
				     "vtd driver: no room for its tables in "
				     "[0x%llx, 0x%llx)",
				     (unsigned long long)base,
				     (unsigned long long)limit);
	}
	reg_write(drv, VIOMMU_VTD_REG_RTADDR, 8, drv->root);
	ret = command(drv, VIOMMU_VTD_GCMD_SRTP, true);
	reg_write(drv, VIOMMU_VTD_REG_IQT, 8, 0);
	reg_write(drv, VIOMMU_VTD_REG_IQA, 8, drv->queue); /* QS 0: 4 KiB */
	if (!ret)
		ret = command(drv, VIOMMU_VTD_GCMD_QIE, true);
	if (!ret)
		ret = submit(drv, 1 | 1u << 4, 0, err); /* context: global */
	if (!ret)
		ret = submit(drv, 2 | 1u << 4, 0, err); /* IOTLB: global */
	if (!ret)
		ret = command(drv, VIOMMU_VTD_GCMD_TE, true);
	if (ret) {
		viommu_vtd_driver_free(drv);
		return viommu__error(err, -EIO,
				     "vtd driver: the unit did not come up");
	}
	*out = drv;
	return 0;
}

void viommu_vtd_driver_free(struct viommu_vtd_driver *drv)
{
	if (!drv)
		return;
	viommu__vtd_alloc_fini(&drv->alloc);
	free(drv->domains);
	free(drv);
}

static struct drv_domain *domain_of(struct viommu_vtd_driver *drv, uint16_t did,
				    struct viommu_error *err)
{
	if (!drv->domains[did].used) {
		viommu__error(err, -ENOENT, "vtd driver: no domain %u", did);
		return NULL;
	}
	return &drv->domains[did];
}

int viommu_vtd_driver_domain_new(struct viommu_vtd_driver *drv, uint16_t did,
				 struct viommu_error *err)
{
	struct drv_domain *d = &drv->domains[did];
	int ret;

	if (d->used)
		return viommu__error(err, -EEXIST,
				     "vtd driver: domain %u exists", did);
	ret = viommu__vtd_gpt_init(&d->pt, &drv->alloc, drv->aw);
	if (ret)
		return viommu__error(err, ret,
				     "vtd driver: no page for domain %u's root "
				     "table",
				     did);
	d->used = true;
	return 0;
}

/* The context entry of @sid, creating its bus's context table. */
static int context_slot(struct viommu_vtd_driver *drv, uint16_t sid,
			bool create, uint64_t *gpa)
{
	uint64_t root[2], ctp;
	int ret;

	ret = viommu_guest_read(&drv->mem, drv->root + (sid >> 8) * 16, root,
				sizeof(root));
	if (ret)
		return ret;
	if (!(root[0] & 1)) {
		if (!create)
			return -ENOENT;
		ret = viommu__vtd_alloc_page(&drv->alloc, &ctp);
		if (ret)
			return ret;
		root[0] = ctp | 1;
		root[1] = 0;
		ret = viommu_guest_write(&drv->mem, drv->root + (sid >> 8) * 16,
					 root, sizeof(root));
		if (ret)
			return ret;
	}
	*gpa = (root[0] & ~UINT64_C(0xfff)) + (sid & 0xff) * 16;
	return 0;
}

int viommu_vtd_driver_attach(struct viommu_vtd_driver *drv, uint16_t sid,
			     uint16_t did, struct viommu_error *err)
{
	struct drv_domain *d = domain_of(drv, did, err);
	uint64_t slot, ctx[2], old[2];
	int ret;

	if (!d)
		return -ENOENT;
	ret = context_slot(drv, sid, true, &slot);
	if (!ret)
		ret = viommu_guest_read(&drv->mem, slot, old, sizeof(old));
	if (ret)
		return viommu__error(err, ret,
				     "vtd driver: no context table for "
				     "%02x:%02x.%x",
				     sid >> 8, (sid >> 3) & 0x1f, sid & 7);
	ctx[0] = d->pt.root | CTX_P;
	ctx[1] = (uint64_t)did << 8 | (d->pt.aw - 30) / 9;
	ret = viommu_guest_write(&drv->mem, slot, ctx, sizeof(ctx));
	if (ret)
		return viommu__error(err, ret, "vtd driver: context write");
	/* device-selective context invalidation, then the old domain's IOTLB */
	ret = submit(drv,
		     1 | 3u << 4 | (uint64_t)did << 16 | (uint64_t)sid << 32, 0,
		     err);
	if (!ret && (old[0] & CTX_P))
		ret = submit(drv, 2 | 2u << 4 | ((old[1] >> 8) & 0xffff) << 16,
			     0, err);
	return ret;
}

int viommu_vtd_driver_detach(struct viommu_vtd_driver *drv, uint16_t sid,
			     struct viommu_error *err)
{
	uint64_t slot, old[2], zero[2] = { 0, 0 };
	int ret;

	ret = context_slot(drv, sid, false, &slot);
	if (!ret)
		ret = viommu_guest_read(&drv->mem, slot, old, sizeof(old));
	if (ret || !(old[0] & CTX_P))
		return viommu__error(err, -ENOENT,
				     "vtd driver: %02x:%02x.%x is not attached",
				     sid >> 8, (sid >> 3) & 0x1f, sid & 7);
	ret = viommu_guest_write(&drv->mem, slot, zero, sizeof(zero));
	if (!ret)
		ret = submit(drv,
			     1 | 3u << 4 | ((old[1] >> 8) & 0xffff) << 16 |
				     (uint64_t)sid << 32,
			     0, err);
	if (!ret)
		ret = submit(drv, 2 | 2u << 4 | ((old[1] >> 8) & 0xffff) << 16,
			     0, err);
	return ret;
}

static int pt_error(struct viommu_error *err, int ret, const char *what,
		    uint16_t did)
{
	static const char *const why[] = {
		[EINVAL] = "bad size, alignment, page size or permission",
		[ERANGE] = "beyond the address width",
		[ENOMEM] = "out of table pages",
		[EFAULT] = "a table outside guest RAM",
	};
	unsigned e = (unsigned)-ret;

	return viommu__error(err, ret, "vtd driver: %s in domain %u: %s", what,
			     did,
			     e < sizeof(why) / sizeof(why[0]) && why[e] ?
				     why[e] :
				     viommu_strerror(ret));
}

int viommu_vtd_driver_map(struct viommu_vtd_driver *drv, uint16_t did,
			  uint64_t iova, uint64_t pa, uint64_t size,
			  unsigned perm, uint64_t page_size,
			  struct viommu_error *err)
{
	struct drv_domain *d = domain_of(drv, did, err);
	int ret;

	if (!d)
		return -ENOENT;
	ret = viommu__vtd_gpt_map(&d->pt, iova, pa, size, perm, page_size);
	return ret ? pt_error(err, ret, "map", did) : 0;
}

int viommu_vtd_driver_unmap(struct viommu_vtd_driver *drv, uint16_t did,
			    uint64_t iova, uint64_t size,
			    struct viommu_error *err)
{
	struct drv_domain *d = domain_of(drv, did, err);
	int ret;

	if (!d)
		return -ENOENT;
	ret = viommu__vtd_gpt_unmap(&d->pt, iova, size);
	return ret ? pt_error(err, ret, "unmap", did) : 0;
}

int viommu_vtd_driver_write_pte(struct viommu_vtd_driver *drv, uint16_t did,
				uint64_t iova, unsigned level, uint64_t value,
				bool self, unsigned count,
				struct viommu_error *err)
{
	struct drv_domain *d = domain_of(drv, did, err);
	int ret;

	if (!d)
		return -ENOENT;
	ret = viommu__vtd_gpt_write_pte(&d->pt, iova, level, value, self,
					count);
	return ret ? pt_error(err, ret, "pte write", did) : 0;
}

int viommu_vtd_driver_invalidate(struct viommu_vtd_driver *drv, uint16_t did,
				 uint64_t iova, uint64_t size,
				 struct viommu_error *err)
{
	unsigned am;

	if (!size)
		return submit(drv, 2 | 2u << 4 | (uint64_t)did << 16, 0, err);
	if (size < 4096 || (size & (size - 1)) || (iova & (size - 1)))
		return viommu__error(
			err, -EINVAL,
			"vtd driver: page-selective invalidation "
			"of 0x%llx at 0x%llx: size must be a power "
			"of two of at least 4K, iova aligned",
			(unsigned long long)size, (unsigned long long)iova);
	am = (unsigned)__builtin_ctzll(size) - 12;
	if (am > 18) {
		/* beyond what one descriptor can say: the whole domain */
		return submit(drv, 2 | 2u << 4 | (uint64_t)did << 16, 0, err);
	}
	return submit(drv, 2 | 3u << 4 | (uint64_t)did << 16, iova | am, err);
}

int viommu_vtd_driver_invalidate_global(struct viommu_vtd_driver *drv,
					struct viommu_error *err)
{
	return submit(drv, 2 | 1u << 4, 0, err);
}

int viommu_vtd_driver_invalidate_devtlb(struct viommu_vtd_driver *drv,
					uint16_t sid, uint64_t iova,
					uint64_t size, struct viommu_error *err)
{
	uint64_t hi;

	if (size < 4096 || (size & (size - 1)) || (iova & (size - 1)))
		return viommu__error(err, -EINVAL,
				     "vtd driver: device-IOTLB invalidation: "
				     "size must be a power of two of at least "
				     "4K, iova aligned");
	/* S=1 encodes the size as trailing ones above bit 12 */
	hi = size == 4096 ? iova : (iova | ((size >> 1) - 1)) & ~0xfffull;
	if (size > 4096)
		hi |= 1;
	return submit(drv, 3 | (uint64_t)sid << 32, hi, err);
}
