/* SPDX-License-Identifier: MIT */
/*
 * libviommu — an Intel VT-d model (legacy mode, second-level translation).
 *
 * A VMM forwards the guest's accesses to the DMAR register page
 * (viommu_vtd_mmio_read/write) and gives the model guest memory; the model
 * then behaves as the hardware a guest's intel-iommu driver expects: root
 * and context tables and second-level page tables in guest memory, an IOTLB
 * in front of translate, register-based and queued invalidation.  Every
 * invalidation flows into the core's change engine, so the devices'
 * notifiers hear exactly what changed.
 *
 * A device (requester) is known by its source id, bus << 8 | dev << 3 | fn.
 * Guest-caused problems are results, not library errors: translation faults
 * are recorded in the fault registers, queue errors in the fault status.
 */
#ifndef VIOMMU_VTD_H
#define VIOMMU_VTD_H

#include <viommu/guest_memory.h>
#include <viommu/viommu.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VIOMMU_VTD_DEFAULT_WALK_BUDGET (4u << 20)
#define VIOMMU_VTD_DEFAULT_IOTLB_ENTRIES 4096u

/* Register offsets of the DMAR unit (VT-d specification, chapter 11). */
#define VIOMMU_VTD_REG_VER 0x00
#define VIOMMU_VTD_REG_CAP 0x08
#define VIOMMU_VTD_REG_ECAP 0x10
#define VIOMMU_VTD_REG_GCMD 0x18
#define VIOMMU_VTD_REG_GSTS 0x1c
#define VIOMMU_VTD_REG_RTADDR 0x20
#define VIOMMU_VTD_REG_CCMD 0x28
#define VIOMMU_VTD_REG_FSTS 0x34
#define VIOMMU_VTD_REG_FECTL 0x38
#define VIOMMU_VTD_REG_FEDATA 0x3c
#define VIOMMU_VTD_REG_FEADDR 0x40
#define VIOMMU_VTD_REG_FEUADDR 0x44
#define VIOMMU_VTD_REG_AFLOG 0x58
#define VIOMMU_VTD_REG_PMEN 0x64
#define VIOMMU_VTD_REG_IQH 0x80
#define VIOMMU_VTD_REG_IQT 0x88
#define VIOMMU_VTD_REG_IQA 0x90
#define VIOMMU_VTD_REG_ICS 0x9c
#define VIOMMU_VTD_REG_IECTL 0xa0
#define VIOMMU_VTD_REG_IEDATA 0xa4
#define VIOMMU_VTD_REG_IEADDR 0xa8
#define VIOMMU_VTD_REG_IEUADDR 0xac
#define VIOMMU_VTD_REG_IRTA 0xb8
/* Where this model puts the IOTLB and fault-recording registers. */
#define VIOMMU_VTD_REG_IVA 0x200
#define VIOMMU_VTD_REG_IOTLB 0x208
#define VIOMMU_VTD_REG_FRCD 0x220
#define VIOMMU_VTD_NUM_FRCD 4
#define VIOMMU_VTD_REG_SIZE 0x1000

/* Global command / status bits. */
#define VIOMMU_VTD_GCMD_TE (1u << 31)
#define VIOMMU_VTD_GCMD_SRTP (1u << 30)
#define VIOMMU_VTD_GCMD_QIE (1u << 26)
#define VIOMMU_VTD_GCMD_IRE (1u << 25)
#define VIOMMU_VTD_GCMD_SIRTP (1u << 24)

/* Fault status bits. */
#define VIOMMU_VTD_FSTS_PFO (1u << 0)
#define VIOMMU_VTD_FSTS_PPF (1u << 1)
#define VIOMMU_VTD_FSTS_IQE (1u << 4)
#define VIOMMU_VTD_FSTS_ICE (1u << 5)
#define VIOMMU_VTD_FSTS_ITE (1u << 6)

/* Fault reasons, as the specification numbers them. */
enum viommu_vtd_fault_reason {
	VIOMMU_VTD_FR_ROOT_NOT_PRESENT = 0x1,
	VIOMMU_VTD_FR_CONTEXT_NOT_PRESENT = 0x2,
	VIOMMU_VTD_FR_CONTEXT_INVALID = 0x3,
	VIOMMU_VTD_FR_ADDR_BEYOND_MGAW = 0x4,
	VIOMMU_VTD_FR_WRITE = 0x5,
	VIOMMU_VTD_FR_READ = 0x6,
	VIOMMU_VTD_FR_PAGING_ENTRY_INVALID = 0x7,
	VIOMMU_VTD_FR_ROOT_TABLE_INVALID = 0x8,
	VIOMMU_VTD_FR_CONTEXT_TABLE_INVALID = 0x9,
	VIOMMU_VTD_FR_ROOT_RESERVED = 0xa,
	VIOMMU_VTD_FR_CONTEXT_RESERVED = 0xb,
	VIOMMU_VTD_FR_PAGING_RESERVED = 0xc,
};

/**
 * struct viommu_vtd_config - the model's options.
 * @aw: address width: 39, 48 or 57 (3, 4 or 5 levels).
 * @caching_mode: CAP.CM: the guest invalidates after every change,
 *     maps included, so map notifiers can be served.
 * @device_iotlb: ECAP.DT: device-IOTLB invalidations are reported.
 * @walk_budget: most paging entries one sync or replay may visit; a guest
 *     whose tables need more faults that device.
 * @iotlb_entries: IOTLB capacity (translations cached for translate).
 */
struct viommu_vtd_config {
	unsigned aw;
	bool caching_mode;
	bool device_iotlb;
	uint64_t walk_budget;
	unsigned iotlb_entries;
};

/**
 * struct viommu_vtd_counters - what happened, for people and tests.
 */
struct viommu_vtd_counters {
	uint64_t iotlb_hits, iotlb_misses;
	uint64_t invalidations; /* IOTLB invalidations of any granularity */
	uint64_t context_invalidations;
	uint64_t devtlb_invalidations;
	uint64_t descriptors; /* queued descriptors processed */
	uint64_t queue_errors;
	uint64_t faults_recorded;
	uint64_t walk_faults;	    /* syncs stopped by broken tables */
	uint64_t budget_exceeded;   /* syncs stopped by the work bound */
	uint64_t consumer_refusals; /* syncs a consumer refused (faulted) */
};

struct viommu_vtd;

/**
 * viommu_vtd_config_init() - defaults: aw 48, caching mode on, no device
 * IOTLB, VIOMMU_VTD_DEFAULT_WALK_BUDGET, VIOMMU_VTD_DEFAULT_IOTLB_ENTRIES.
 * @cfg: filled in.
 */
VIOMMU_EXPORT void viommu_vtd_config_init(struct viommu_vtd_config *cfg);

/**
 * viommu_vtd_new() - create a DMAR unit in its reset state.
 * @cfg: options (copied); NULL for the defaults.
 * @mem: guest memory (copied; what it points to must outlive the unit).
 * @out: receives the unit.
 * @err: optional detailed error.
 *
 * Return: 0, -EINVAL for a bad option, -ENOMEM.
 */
VIOMMU_EXPORT int viommu_vtd_new(const struct viommu_vtd_config *cfg,
				 const struct viommu_guest_memory *mem,
				 struct viommu_vtd **out,
				 struct viommu_error *err);

/**
 * viommu_vtd_free() - destroy the unit, its devices and their address
 * spaces.
 * @vtd: the unit (NULL is ignored).
 */
VIOMMU_EXPORT void viommu_vtd_free(struct viommu_vtd *vtd);

/**
 * viommu_vtd_device_add() - a requester behind this unit.
 * @vtd: the unit.
 * @sid: its source id (bus << 8 | devfn).
 * @name: for messages (copied).
 * @out: receives its address space, owned by @vtd.
 * @err: optional detailed error.
 *
 * The address space starts with what the guest's root and context tables
 * say now (when translation is enabled).
 *
 * Return: 0, -EEXIST for a known source id, -ENOMEM.
 */
VIOMMU_EXPORT int viommu_vtd_device_add(struct viommu_vtd *vtd, uint16_t sid,
					const char *name,
					struct viommu_as **out,
					struct viommu_error *err);

/**
 * viommu_vtd_mmio_read() - a guest read of the register page.
 * @vtd: the unit.
 * @offset: byte offset in the 4 KiB page, aligned to @size.
 * @size: 4 or 8.
 * @value: receives the value; reserved and unknown registers read 0.
 *
 * Return: 0, or -EINVAL for a bad size or alignment (nothing read).
 */
VIOMMU_EXPORT int viommu_vtd_mmio_read(struct viommu_vtd *vtd, uint64_t offset,
				       unsigned size, uint64_t *value);

/**
 * viommu_vtd_mmio_write() - a guest write to the register page.
 * @vtd: the unit.
 * @offset: byte offset, aligned to @size.
 * @size: 4 or 8.
 * @value: the value.
 *
 * Commands take effect before this returns (status follows command, an
 * advanced queue tail is processed), so notifications are delivered from
 * inside this call.  Writes to read-only or unknown registers are ignored.
 *
 * Return: 0, or -EINVAL for a bad size or alignment (nothing written).
 */
VIOMMU_EXPORT int viommu_vtd_mmio_write(struct viommu_vtd *vtd, uint64_t offset,
					unsigned size, uint64_t value);

/**
 * viommu_vtd_counters() - a copy of the unit's counters.
 * @vtd: the unit.
 * @out: filled in.
 */
VIOMMU_EXPORT void viommu_vtd_counters(struct viommu_vtd *vtd,
				       struct viommu_vtd_counters *out);

/**
 * typedef viommu_vtd_fault_fn - told when a device's address space faults.
 * @opaque: the pointer given to viommu_vtd_set_fault_handler().
 * @as: the device's address space.
 * @message: what happened, for a person.
 *
 * A sync that cannot follow the guest's tables (a table outside RAM,
 * reserved bits, more entries than the walk budget), or that a consumer
 * refused (a host backend full, say) or that ran out of memory, faults the
 * device: its notifiers are told to drop everything (unmap-only ones the
 * whole space), and every translation faults until an invalidation syncs
 * it whole again.  A guest's invalidation cannot fail, and what it revoked
 * must not stay usable.  @message says what happened.
 */
typedef void (*viommu_vtd_fault_fn)(void *opaque, struct viommu_as *as,
				    const char *message);

/**
 * viommu_vtd_set_fault_handler() - who hears of faulted address spaces.
 * @vtd: the unit.
 * @fn: the handler (NULL: nobody).
 * @opaque: handed to @fn.
 */
VIOMMU_EXPORT void viommu_vtd_set_fault_handler(struct viommu_vtd *vtd,
						viommu_vtd_fault_fn fn,
						void *opaque);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_VTD_H */
