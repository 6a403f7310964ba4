/* SPDX-License-Identifier: MIT */
/*
 * Root and context entries (legacy mode), read from guest memory the way
 * the hardware finds a requester's translation: the root table has one
 * 16-byte entry per bus, pointing at a context table with one 16-byte entry
 * per device/function.  Anything the guest got wrong becomes a fault reason
 * for that device, never a library error.
 */
#include <string.h>

#include "vtd_internal.h"

#define ROOT_P (UINT64_C(1) << 0)
#define ROOT_LO_RSVD UINT64_C(0x0000000000000ffe)
#define ADDR_4K UINT64_C(0xfffffffffffff000)

#define CTX_P (UINT64_C(1) << 0)
#define CTX_FPD (UINT64_C(1) << 1)
#define CTX_TT_SHIFT 2
#define CTX_TT_MASK UINT64_C(3)
#define CTX_LO_RSVD UINT64_C(0x0000000000000ff0)
#define CTX_HI_AW_MASK UINT64_C(7)
#define CTX_HI_DID_SHIFT 8
#define CTX_HI_RSVD UINT64_C(0xffffffffff000080)

/* translation types */
#define TT_UNTRANSLATED 0 /* second-level only */
#define TT_ALL 1	  /* also translated requests from a device TLB */
#define TT_PASSTHROUGH 2

static bool read_entry(struct viommu_vtd *vtd, uint64_t gpa, uint64_t e[2])
{
	return viommu_guest_read(&vtd->mem, gpa, e, 16) == 0;
}

/* Bits beyond the host address width of a table pointer are reserved. */
static uint64_t addr_rsvd(const struct viommu_vtd *vtd)
{
	unsigned haw = vtd->cfg.aw < 52 ? vtd->cfg.aw : 52;

	return ~((UINT64_C(1) << haw) - 1);
}

static void not_present(struct vtd_context *out, uint8_t reason)
{
	memset(out, 0, sizeof(*out));
	out->reason = reason;
}

void vtd_context_read(struct viommu_vtd *vtd, uint16_t sid,
		      struct vtd_context *out)
{
	unsigned bus = sid >> 8, devfn = sid & 0xff, tt, aw_field;
	uint64_t root[2], ctx[2];

	if (!(vtd->gsts & VIOMMU_VTD_GCMD_SRTP)) {
		not_present(out, VIOMMU_VTD_FR_ROOT_TABLE_INVALID);
		return;
	}
	if (!read_entry(vtd, (vtd->root & ADDR_4K) + bus * 16, root)) {
		not_present(out, VIOMMU_VTD_FR_ROOT_TABLE_INVALID);
		return;
	}
	if (!(root[0] & ROOT_P)) {
		not_present(out, VIOMMU_VTD_FR_ROOT_NOT_PRESENT);
		return;
	}
	if ((root[0] & (ROOT_LO_RSVD | addr_rsvd(vtd))) || root[1]) {
		not_present(out, VIOMMU_VTD_FR_ROOT_RESERVED);
		return;
	}
	if (!read_entry(vtd, (root[0] & ADDR_4K) + devfn * 16, ctx)) {
		not_present(out, VIOMMU_VTD_FR_CONTEXT_TABLE_INVALID);
		return;
	}
	if (!(ctx[0] & CTX_P)) {
		not_present(out, VIOMMU_VTD_FR_CONTEXT_NOT_PRESENT);
		return;
	}
	if ((ctx[0] & (CTX_LO_RSVD | addr_rsvd(vtd))) ||
	    (ctx[1] & CTX_HI_RSVD)) {
		not_present(out, VIOMMU_VTD_FR_CONTEXT_RESERVED);
		return;
	}
	tt = (ctx[0] >> CTX_TT_SHIFT) & CTX_TT_MASK;
	aw_field = ctx[1] & CTX_HI_AW_MASK;
	/*
	 * The translation type must be one the unit reports (no pass-through,
	 * device TLBs only with ECAP.DT) and the width one of SAGAW's.
	 */
	if (!(tt == TT_UNTRANSLATED ||
	      (tt == TT_ALL && vtd->cfg.device_iotlb)) ||
	    aw_field < 1 || aw_field > 3 || 30 + 9 * aw_field > vtd->cfg.aw) {
		not_present(out, VIOMMU_VTD_FR_CONTEXT_INVALID);
		return;
	}
	out->present = true;
	out->reason = 0;
	out->fpd = ctx[0] & CTX_FPD;
	out->did = (uint16_t)(ctx[1] >> CTX_HI_DID_SHIFT);
	out->slptptr = ctx[0] & ADDR_4K;
	out->aw = 30 + 9 * aw_field;
}
