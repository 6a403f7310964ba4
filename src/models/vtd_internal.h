/* SPDX-License-Identifier: MIT */
/*
 * The VT-d model's state, shared by its files:
 *   vtd.c          units, devices, the model ops, syncing address spaces;
 *   vtd_context.c  root and context entries in guest memory;
 *   vtd_iotlb.c    the IOTLB in front of translate;
 *   vtd_regs.c     the register file (MMIO), commands, fault recording;
 *   vtd_qi.c       the invalidation queue and its descriptors.
 */
#ifndef VIOMMU_MODELS_VTD_INTERNAL_H
#define VIOMMU_MODELS_VTD_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <viommu/model.h>
#include <viommu/vtd.h>

#include "vtd_pgtable.h"

/* What a device's context entry says, decoded and checked. */
struct vtd_context {
	bool present;	/* translate through @pt */
	uint8_t reason; /* when not present: the fault reason, 0 if none */
	bool fpd;	/* fault processing disabled */
	uint16_t did;
	uint64_t slptptr;
	unsigned aw;
};

struct vtd_device {
	struct viommu_vtd *vtd;
	uint16_t sid;
	char *name;
	struct viommu_as *as;
	struct vtd_context ctx; /* the context cache entry */
	struct viommu__vtd_pt pt;
	/* the last sync could not follow the tables: nothing translates */
	bool faulted;
	struct viommu__vtd_report report; /* of the last walk that failed */
};

struct vtd_iotlb_slot {
	uint64_t tag; /* iova >> leaf shift */
	uint64_t pa;  /* leaf base */
	uint16_t did;
	uint8_t level; /* 1, 2, 3; 0: empty */
	uint8_t perm;
};

struct vtd_iotlb {
	struct vtd_iotlb_slot *slot;
	unsigned mask; /* slots - 1 */
};

struct viommu_vtd {
	struct viommu_vtd_config cfg;
	struct viommu_guest_memory mem;
	struct viommu_model *model;
	struct viommu__vtd_pt_config ptcfg;

	/*
	 * @lock serializes the guest side: register writes, queue processing
	 * and the syncs they cause.  Recursive, so a notifier callback may
	 * read registers.  @state_lock guards what translate reads (device
	 * contexts, tables, IOTLB) and is never held across a callback.
	 */
	pthread_mutex_t lock;
	pthread_mutex_t state_lock;
	/*
	 * Bumped to odd when a @state_lock holder starts changing what
	 * translate reads, back to even when done: an IOTLB hit reads
	 * without the lock and retries (or takes it) if @seq moved.
	 */
	unsigned seq;

	/* registers, by name; see vtd_regs.c for their bits */
	uint32_t gsts;
	uint64_t rtaddr;
	uint64_t root; /* latched by SRTP */
	uint64_t ccmd;
	uint32_t fsts;
	uint32_t fectl, fedata, feaddr, feuaddr;
	uint32_t pmen;
	uint64_t iqh, iqt, iqa;
	uint64_t iq_base; /* latched when the queue is enabled */
	uint64_t iq_size; /* bytes */
	uint32_t ics;
	uint32_t iectl, iedata, ieaddr, ieuaddr;
	uint64_t irta;
	uint64_t iva, iotlb_reg;
	uint64_t frcd[VIOMMU_VTD_NUM_FRCD][2];
	unsigned frcd_next;

	struct vtd_device **devs;
	size_t ndevs, capdevs;
	struct vtd_iotlb iotlb;
	struct viommu_vtd_counters counters;
	viommu_vtd_fault_fn fault_fn;
	void *fault_opaque;
};

/* Counters are bumped from any thread: atomically, without a lock. */
#define VTD_COUNT(vtd, field)                                                  \
	__atomic_add_fetch(&(vtd)->counters.field, 1, __ATOMIC_RELAXED)

static inline void vtd_state_lock(struct viommu_vtd *vtd)
{
	pthread_mutex_lock(&vtd->state_lock);
	__atomic_store_n(&vtd->seq, vtd->seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void vtd_state_unlock(struct viommu_vtd *vtd)
{
	__atomic_store_n(&vtd->seq, vtd->seq + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&vtd->state_lock);
}

/* vtd_context.c */
void vtd_context_read(struct viommu_vtd *vtd, uint16_t sid,
		      struct vtd_context *out);

/* vtd_iotlb.c */
int vtd_iotlb_init(struct vtd_iotlb *t, unsigned entries);
void vtd_iotlb_free(struct vtd_iotlb *t);
bool vtd_iotlb_lookup(struct vtd_iotlb *t, uint16_t did, uint64_t iova,
		      struct viommu_entry *out);
void vtd_iotlb_insert(struct vtd_iotlb *t, uint16_t did,
		      const struct viommu_entry *e);
void vtd_iotlb_flush_all(struct vtd_iotlb *t);
void vtd_iotlb_flush_domain(struct vtd_iotlb *t, uint16_t did);
void vtd_iotlb_flush_range(struct vtd_iotlb *t, uint16_t did, uint64_t start,
			   uint64_t last);

/* vtd.c: what invalidations do to the devices' address spaces */
void vtd_sync_domain(struct viommu_vtd *vtd, uint16_t did, uint64_t start,
		     uint64_t last);
/* Re-read the context of the devices @match selects; sync what changed. */
void vtd_context_invalidate(struct viommu_vtd *vtd, unsigned granularity,
			    uint16_t did, uint16_t sid, unsigned fm);
/*
 * An IOTLB invalidation, by register or descriptor: granularity 1 global,
 * 2 domain, 3 page-selective (@addr, 2^@am pages).  Returns false when the
 * request is malformed (nothing done).
 */
bool vtd_iotlb_invalidate(struct viommu_vtd *vtd, unsigned granularity,
			  uint16_t did, uint64_t addr, unsigned am);
void vtd_devtlb_invalidate(struct viommu_vtd *vtd, uint16_t sid, uint64_t iova,
			   uint64_t addr_mask);
void vtd_translation_enabled(struct viommu_vtd *vtd);

/* the largest address mask a page-selective invalidation may use */
#define VTD_MAMV 18

/* granularities shared by CCMD and the context-cache descriptor */
#define VTD_CC_GLOBAL 1
#define VTD_CC_DOMAIN 2
#define VTD_CC_DEVICE 3

/* vtd_regs.c */
uint64_t vtd_cap(const struct viommu_vtd *vtd);
uint64_t vtd_ecap(const struct viommu_vtd *vtd);
void vtd_record_fault(struct viommu_vtd *vtd, uint16_t sid, uint64_t iova,
		      uint8_t reason, bool is_write);

/* vtd_qi.c */
void vtd_qi_process(struct viommu_vtd *vtd);

#endif /* VIOMMU_MODELS_VTD_INTERNAL_H */
