/* SPDX-License-Identifier: MIT */
/*
 * Queued invalidation: the guest writes 128-bit descriptors into a ring in
 * its memory and moves the tail register; the unit consumes them from the
 * head.  A malformed descriptor sets FSTS.IQE and stops the queue with the
 * head on it, as the specification says, until the guest clears IQE and
 * moves the tail again.
 */
#include "internal.h"
#include "vtd_internal.h"

#define DESC_TYPE_MASK UINT64_C(0xf)
#define DESC_TYPE_HI_MASK (UINT64_C(7) << 9) /* extended type bits */

enum {
	DESC_CONTEXT = 1,
	DESC_IOTLB = 2,
	DESC_DEVTLB = 3,
	DESC_IEC = 4,
	DESC_WAIT = 5,
};

#define WAIT_IF (UINT64_C(1) << 4)
#define WAIT_SW (UINT64_C(1) << 5)
#define WAIT_FN (UINT64_C(1) << 6)

/* Reserved bits of each descriptor type, low and high quadwords. */
#define CC_LO_RSVD UINT64_C(0xfffc00000000f1c0)
#define IOTLB_LO_RSVD UINT64_C(0xffffffff0000f100)
#define IOTLB_HI_RSVD UINT64_C(0x0000000000000f80)
#define DEVTLB_LO_RSVD UINT64_C(0x00000000000001f0)
#define DEVTLB_HI_RSVD UINT64_C(0x0000000000000ffe)
#define IEC_LO_RSVD UINT64_C(0xffff000007fff1e0)
#define WAIT_LO_RSVD UINT64_C(0x00000000fffff100)
#define WAIT_HI_RSVD UINT64_C(0x3)

/* Carry out one descriptor; false when it is malformed. */
static bool run_descriptor(struct viommu_vtd *vtd, uint64_t lo, uint64_t hi)
{
	unsigned g;
	uint64_t addr, size;
	uint32_t data;

	if (lo & DESC_TYPE_HI_MASK)
		return false; /* scalable-mode descriptors: not supported */
	switch (lo & DESC_TYPE_MASK) {
	case DESC_CONTEXT:
		g = (lo >> 4) & 3;
		if (!g || (lo & CC_LO_RSVD) || hi)
			return false;
		vtd_context_invalidate(vtd, g, (uint16_t)(lo >> 16),
				       (uint16_t)(lo >> 32),
				       (unsigned)(lo >> 48) & 3);
		return true;
	case DESC_IOTLB:
		g = (lo >> 4) & 3;
		if (!g || (lo & IOTLB_LO_RSVD) || (hi & IOTLB_HI_RSVD))
			return false;
		return vtd_iotlb_invalidate(vtd, g, (uint16_t)(lo >> 16),
					    hi & ~UINT64_C(0xfff),
					    (unsigned)hi & 0x3f);
	case DESC_DEVTLB:
		if (!vtd->cfg.device_iotlb || (lo & DEVTLB_LO_RSVD) ||
		    (hi & DEVTLB_HI_RSVD))
			return false;
		addr = hi & ~UINT64_C(0xfff);
		size = 4096;
		if (hi & 1) {
			/* S: the trailing ones of ADDR[63:12] give the size */
			unsigned ones =
				(unsigned)__builtin_ctzll(~(addr >> 12));

			if (ones >= 51)
				size = 0; /* the whole space */
			else
				size = UINT64_C(4096) << (ones + 1);
		}
		addr = size ? addr & ~(size - 1) : 0;
		vtd_devtlb_invalidate(vtd, (uint16_t)(lo >> 32), addr,
				      size ? size - 1 : UINT64_MAX);
		return true;
	case DESC_IEC:
		/* no interrupt remapping to flush: accepted, nothing to do */
		return !(lo & IEC_LO_RSVD) && !hi;
	case DESC_WAIT:
		if ((lo & WAIT_LO_RSVD) || (hi & WAIT_HI_RSVD))
			return false;
		if (lo & WAIT_SW) {
			data = (uint32_t)(lo >> 32);
			if (viommu_guest_write(&vtd->mem, hi, &data,
					       sizeof(data)))
				return false;
		}
		if (lo & WAIT_IF)
			vtd->ics |= 1; /* IWC: the completion interrupt */
		return true;
	default:
		return false;
	}
}

void vtd_qi_process(struct viommu_vtd *vtd)
{
	uint64_t desc[2];

	if (!(vtd->gsts & VIOMMU_VTD_GCMD_QIE) ||
	    (vtd->fsts & VIOMMU_VTD_FSTS_IQE))
		return;
	/* the tail beyond the ring is a queue error too */
	if (vtd->iqt >= vtd->iq_size) {
		vtd->fsts |= VIOMMU_VTD_FSTS_IQE;
		VTD_COUNT(vtd, queue_errors);
		return;
	}
	while (vtd->iqh != vtd->iqt) {
		if (viommu_guest_read(&vtd->mem, vtd->iq_base + vtd->iqh, desc,
				      sizeof(desc)) ||
		    !run_descriptor(vtd, desc[0], desc[1])) {
			vtd->fsts |= VIOMMU_VTD_FSTS_IQE;
			VTD_COUNT(vtd, queue_errors);
			return;
		}
		VTD_COUNT(vtd, descriptors);
		vtd->iqh = (vtd->iqh + 16) % vtd->iq_size;
	}
}
