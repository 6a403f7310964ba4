/* SPDX-License-Identifier: MIT */
/*
 * The DMAR register page.  Registers live in named fields; an access is
 * resolved per 8-byte slot, so 4- and 8-byte accesses behave alike: reads
 * assemble the slot's value and pick the half asked for, writes merge the
 * bytes written into the writable bits, then act on the commands they carry
 * (global command, context command, IOTLB invalidation, queue tail) before
 * the access returns, so status follows command as a driver polls for it.
 * Reserved and unknown registers read as zero and ignore writes.
 */
#include <errno.h>

#include "internal.h"
#include "vtd_internal.h"

#define BIT(n) (UINT64_C(1) << (n))

/* GSTS bits beyond the ones mirrored from GCMD */
#define GSTS_TES BIT(31)
#define GSTS_RTPS BIT(30)
#define GSTS_QIES BIT(26)
#define GSTS_IRES BIT(25)
#define GSTS_IRTPS BIT(24)
#define GSTS_CFIS BIT(23)
#define GCMD_CFI BIT(23)

#define RTADDR_RW UINT64_C(0xfffffffffffff000) /* legacy mode: TTM 00 */
#define CCMD_ICC BIT(63)
#define CCMD_RW                                                                \
	(BIT(63) | (UINT64_C(3) << 61) | (UINT64_C(3) << 32) |                 \
	 UINT64_C(0xffffffff))
#define IQT_RW UINT64_C(0x7fff0)
#define IQA_RW (UINT64_C(0xfffffffffffff000) | 7)
#define IVA_RW (UINT64_C(0xfffffffffffff000) | 0x7f)
#define IOTLB_IVT BIT(63)
#define IOTLB_RW                                                               \
	(BIT(63) | (UINT64_C(3) << 60) | BIT(49) | BIT(48) |                   \
	 (UINT64_C(0xffff) << 32))
#define FSTS_W1C                                                               \
	(VIOMMU_VTD_FSTS_PFO | VIOMMU_VTD_FSTS_IQE | VIOMMU_VTD_FSTS_ICE |     \
	 VIOMMU_VTD_FSTS_ITE)
#define FRCD_F BIT(63)

uint64_t vtd_cap(const struct viommu_vtd *vtd)
{
	uint64_t sagaw = 0;
	unsigned aw;

	/* every width up to the configured one: 39 -> bit 1 ... 57 -> bit 3 */
	for (aw = 39; aw <= vtd->cfg.aw; aw += 9)
		sagaw |= UINT64_C(1) << ((aw - 30) / 9);
	return 6					    /* ND: 16-bit ids */
	       | (vtd->cfg.caching_mode ? BIT(7) : 0)	    /* CM */
	       | sagaw << 8				    /* SAGAW */
	       | (uint64_t)(vtd->cfg.aw - 1) << 16	    /* MGAW */
	       | BIT(22)				    /* ZLR */
	       | (uint64_t)(VIOMMU_VTD_REG_FRCD / 16) << 24 /* FRO */
	       | UINT64_C(3) << 34			    /* SLLPS: 2M, 1G */
	       | BIT(39)				    /* PSI */
	       | (uint64_t)(VIOMMU_VTD_NUM_FRCD - 1) << 40  /* NFR */
	       | (uint64_t)VTD_MAMV << 48		    /* MAMV */
	       | BIT(54) | BIT(55);			    /* DWD, DRD */
}

uint64_t vtd_ecap(const struct viommu_vtd *vtd)
{
	return BIT(1)				      /* QI */
	       | (vtd->cfg.device_iotlb ? BIT(2) : 0) /* DT */
	       | BIT(3)				      /* IR (entries only) */
	       | (uint64_t)(VIOMMU_VTD_REG_IVA / 16) << 8 /* IRO */
	       | UINT64_C(0xf) << 20;			  /* MHMV */
}

static uint32_t fsts_now(const struct viommu_vtd *vtd)
{
	uint32_t fsts = vtd->fsts & ~(VIOMMU_VTD_FSTS_PPF | 0xff00u);
	unsigned i;

	for (i = 0; i < VIOMMU_VTD_NUM_FRCD; i++) {
		if (vtd->frcd[i][1] & FRCD_F) {
			fsts |= VIOMMU_VTD_FSTS_PPF | i << 8;
			break;
		}
	}
	return fsts;
}

/* The 8-byte slot at @off (8-aligned), as the guest reads it. */
static uint64_t slot_read(struct viommu_vtd *vtd, unsigned off)
{
	switch (off) {
	case VIOMMU_VTD_REG_VER:
		return 0x10; /* version 1.0 */
	case VIOMMU_VTD_REG_CAP:
		return vtd_cap(vtd);
	case VIOMMU_VTD_REG_ECAP:
		return vtd_ecap(vtd);
	case VIOMMU_VTD_REG_GCMD: /* GCMD reads 0; GSTS above it */
		return (uint64_t)vtd->gsts << 32;
	case VIOMMU_VTD_REG_RTADDR:
		return vtd->rtaddr;
	case VIOMMU_VTD_REG_CCMD:
		return vtd->ccmd;
	case 0x30:
		return (uint64_t)fsts_now(vtd) << 32; /* caller holds state */
	case VIOMMU_VTD_REG_FECTL:
		return vtd->fectl | (uint64_t)vtd->fedata << 32;
	case VIOMMU_VTD_REG_FEADDR:
		return vtd->feaddr | (uint64_t)vtd->feuaddr << 32;
	case 0x60:
		return (uint64_t)vtd->pmen << 32;
	case VIOMMU_VTD_REG_IQH:
		return vtd->iqh;
	case VIOMMU_VTD_REG_IQT:
		return vtd->iqt;
	case VIOMMU_VTD_REG_IQA:
		return vtd->iqa;
	case 0x98:
		return (uint64_t)vtd->ics << 32;
	case VIOMMU_VTD_REG_IECTL:
		return vtd->iectl | (uint64_t)vtd->iedata << 32;
	case VIOMMU_VTD_REG_IEADDR:
		return vtd->ieaddr | (uint64_t)vtd->ieuaddr << 32;
	case VIOMMU_VTD_REG_IRTA:
		return vtd->irta;
	case VIOMMU_VTD_REG_IVA:
		return vtd->iva;
	case VIOMMU_VTD_REG_IOTLB:
		return vtd->iotlb_reg;
	default:
		if (off >= VIOMMU_VTD_REG_FRCD &&
		    off < VIOMMU_VTD_REG_FRCD + 16 * VIOMMU_VTD_NUM_FRCD)
			return vtd->frcd[(off - VIOMMU_VTD_REG_FRCD) / 16]
					[(off / 8) & 1];
		return 0;
	}
}

static uint64_t merge(uint64_t old, uint64_t val, uint64_t mask, uint64_t rw)
{
	return (old & ~(mask & rw)) | (val & mask & rw);
}

static void set_gsts(struct viommu_vtd *vtd, uint32_t gsts)
{
	vtd_state_lock(vtd);
	vtd->gsts = gsts;
	vtd_state_unlock(vtd);
}

static void gcmd_write(struct viommu_vtd *vtd, uint32_t cmd)
{
	uint32_t gsts = vtd->gsts;
	/* persistent enables mirror the command; one-shots set status */
	const uint32_t mirrored = GSTS_IRES | GSTS_CFIS;

	if (cmd & VIOMMU_VTD_GCMD_SRTP) {
		/* translate may re-read contexts: it reads root under this */
		vtd_state_lock(vtd);
		vtd->root = vtd->rtaddr & RTADDR_RW;
		vtd_state_unlock(vtd);
		gsts |= GSTS_RTPS;
	}
	if (cmd & VIOMMU_VTD_GCMD_SIRTP)
		gsts |= GSTS_IRTPS;
	gsts = (gsts & ~mirrored) | (cmd & mirrored);
	if ((cmd & VIOMMU_VTD_GCMD_QIE) && !(gsts & GSTS_QIES)) {
		vtd->iq_base = vtd->iqa & UINT64_C(0xfffffffffffff000);
		vtd->iq_size = UINT64_C(4096) << (vtd->iqa & 7);
		vtd->iqh = 0;
		gsts |= GSTS_QIES;
	} else if (!(cmd & VIOMMU_VTD_GCMD_QIE) && (gsts & GSTS_QIES)) {
		gsts &= ~GSTS_QIES;
		vtd->iqh = 0;
	}
	if (!!(cmd & VIOMMU_VTD_GCMD_TE) != !!(gsts & GSTS_TES)) {
		gsts ^= GSTS_TES;
		set_gsts(vtd, gsts);
		vtd_translation_enabled(vtd);
		return;
	}
	set_gsts(vtd, gsts);
}

static void ccmd_write(struct viommu_vtd *vtd)
{
	unsigned cirg = (vtd->ccmd >> 61) & 3;

	if (!(vtd->ccmd & CCMD_ICC))
		return;
	if (cirg)
		vtd_context_invalidate(vtd, cirg, (uint16_t)vtd->ccmd,
				       (uint16_t)(vtd->ccmd >> 16),
				       (unsigned)(vtd->ccmd >> 32) & 3);
	/* done: ICC clears and CAIG reports the granularity performed */
	vtd->ccmd &= ~(CCMD_ICC | (UINT64_C(3) << 59));
	vtd->ccmd |= (uint64_t)cirg << 59;
}

static void iotlb_write(struct viommu_vtd *vtd)
{
	unsigned iirg = (vtd->iotlb_reg >> 60) & 3;
	uint16_t did = (uint16_t)(vtd->iotlb_reg >> 32);
	unsigned done = iirg;

	if (!(vtd->iotlb_reg & IOTLB_IVT))
		return;
	if (!vtd_iotlb_invalidate(vtd, iirg, did, vtd->iva & ~UINT64_C(0xfff),
				  vtd->iva & 0x3f))
		done = 0; /* IAIG 0: the request was not carried out */
	vtd->iotlb_reg &= ~(IOTLB_IVT | (UINT64_C(3) << 57));
	vtd->iotlb_reg |= (uint64_t)done << 57;
}

/* Merge @val under @mask into the slot at @off, then act on it. */
static void slot_write(struct viommu_vtd *vtd, unsigned off, uint64_t val,
		       uint64_t mask)
{
	const uint64_t lo = 0xffffffffu, hi = lo << 32;

	switch (off) {
	case VIOMMU_VTD_REG_GCMD:
		if (mask & lo)
			gcmd_write(vtd, (uint32_t)val);
		break;
	case VIOMMU_VTD_REG_RTADDR:
		vtd->rtaddr = merge(vtd->rtaddr, val, mask, RTADDR_RW);
		break;
	case VIOMMU_VTD_REG_CCMD:
		vtd->ccmd = merge(vtd->ccmd, val, mask, CCMD_RW);
		if (mask & hi)
			ccmd_write(vtd);
		break;
	case 0x30:
		if (mask & hi) {
			vtd_state_lock(vtd);
			vtd->fsts &= ~((uint32_t)(val >> 32) & FSTS_W1C);
			vtd_state_unlock(vtd);
		}
		break;
	case VIOMMU_VTD_REG_FECTL:
		vtd->fectl = (uint32_t)merge(vtd->fectl, val, mask, BIT(31));
		vtd->fedata = (uint32_t)(merge((uint64_t)vtd->fedata << 32, val,
					       mask, hi) >>
					 32);
		break;
	case VIOMMU_VTD_REG_FEADDR:
		vtd->feaddr =
			(uint32_t)merge(vtd->feaddr, val, mask, 0xfffffffcu);
		vtd->feuaddr = (uint32_t)(merge((uint64_t)vtd->feuaddr << 32,
						val, mask, hi) >>
					  32);
		break;
	case 0x60:
		vtd->pmen = (uint32_t)(merge((uint64_t)vtd->pmen << 32, val,
					     mask, BIT(63)) >>
				       32);
		break;
	case VIOMMU_VTD_REG_IQT:
		vtd->iqt = merge(vtd->iqt, val, mask, IQT_RW);
		if (mask & lo)
			vtd_qi_process(vtd);
		break;
	case VIOMMU_VTD_REG_IQA:
		vtd->iqa = merge(vtd->iqa, val, mask, IQA_RW);
		break;
	case 0x98:
		if (mask & hi)
			vtd->ics &= ~((uint32_t)(val >> 32) & 1);
		break;
	case VIOMMU_VTD_REG_IECTL:
		vtd->iectl = (uint32_t)merge(vtd->iectl, val, mask, BIT(31));
		vtd->iedata = (uint32_t)(merge((uint64_t)vtd->iedata << 32, val,
					       mask, hi) >>
					 32);
		break;
	case VIOMMU_VTD_REG_IEADDR:
		vtd->ieaddr =
			(uint32_t)merge(vtd->ieaddr, val, mask, 0xfffffffcu);
		vtd->ieuaddr = (uint32_t)(merge((uint64_t)vtd->ieuaddr << 32,
						val, mask, hi) >>
					  32);
		break;
	case VIOMMU_VTD_REG_IRTA:
		vtd->irta = merge(vtd->irta, val, mask,
				  UINT64_C(0xfffffffffffff80f));
		break;
	case VIOMMU_VTD_REG_IVA:
		vtd->iva = merge(vtd->iva, val, mask, IVA_RW);
		break;
	case VIOMMU_VTD_REG_IOTLB:
		vtd->iotlb_reg = merge(vtd->iotlb_reg, val, mask, IOTLB_RW);
		if (mask & hi)
			iotlb_write(vtd);
		break;
	default:
		/* a fault record's F bit is write-one-to-clear */
		if (off >= VIOMMU_VTD_REG_FRCD &&
		    off < VIOMMU_VTD_REG_FRCD + 16 * VIOMMU_VTD_NUM_FRCD &&
		    (off / 8) & 1 && (mask & hi) && (val & FRCD_F)) {
			vtd_state_lock(vtd);
			vtd->frcd[(off - VIOMMU_VTD_REG_FRCD) / 16][1] &=
				~FRCD_F;
			vtd_state_unlock(vtd);
		}
		break;
	}
}

static bool bad_access(uint64_t offset, unsigned size)
{
	return (size != 4 && size != 8) || offset % size ||
	       offset >= VIOMMU_VTD_REG_SIZE;
}

int viommu_vtd_mmio_read(struct viommu_vtd *vtd, uint64_t offset, unsigned size,
			 uint64_t *value)
{
	uint64_t v;

	if (!vtd || !value || bad_access(offset, size))
		return -EINVAL;
	pthread_mutex_lock(&vtd->lock);
	/* fault records and status change under the state lock (translate) */
	vtd_state_lock(vtd);
	v = slot_read(vtd, (unsigned)offset & ~7u);
	vtd_state_unlock(vtd);
	pthread_mutex_unlock(&vtd->lock);
	*value = size == 8 ? v : (uint32_t)(v >> ((offset & 4) * 8));
	return 0;
}

int viommu_vtd_mmio_write(struct viommu_vtd *vtd, uint64_t offset,
			  unsigned size, uint64_t value)
{
	unsigned shift = (offset & 4) * 8;
	uint64_t mask = size == 8 ? UINT64_MAX : UINT64_C(0xffffffff) << shift;

	if (!vtd || bad_access(offset, size))
		return -EINVAL;
	pthread_mutex_lock(&vtd->lock);
	slot_write(vtd, (unsigned)offset & ~7u,
		   size == 8 ? value : (value & 0xffffffffu) << shift, mask);
	pthread_mutex_unlock(&vtd->lock);
	return 0;
}

void vtd_record_fault(struct viommu_vtd *vtd, uint16_t sid, uint64_t iova,
		      uint8_t reason, bool is_write)
{
	unsigned slot;

	/*
	 * The state lock, not the guest-side lock: a faulting DMA must not
	 * wait behind a whole sync and its notifier callbacks.
	 */
	vtd_state_lock(vtd);
	slot = vtd->frcd_next;
	if (vtd->fsts & VIOMMU_VTD_FSTS_PFO) {
		/* overflowed: nothing is recorded until the guest clears it */
	} else if (vtd->frcd[slot][1] & FRCD_F) {
		/* every record is still unread: the fault is lost */
		vtd->fsts |= VIOMMU_VTD_FSTS_PFO;
	} else {
		/*
		 * The page address in full, as QEMU records it: for a fault
		 * beyond MGAW the high bits are the point.
		 */
		vtd->frcd[slot][0] = iova & ~UINT64_C(0xfff);
		vtd->frcd[slot][1] = FRCD_F | (is_write ? 0 : BIT(62)) |
				     (uint64_t)reason << 32 | sid;
		vtd->frcd_next = (slot + 1) % VIOMMU_VTD_NUM_FRCD;
		VTD_COUNT(vtd, faults_recorded);
	}
	vtd_state_unlock(vtd);
}
