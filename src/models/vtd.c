/* SPDX-License-Identifier: MIT */
/*
 * The VT-d model: units and devices, translate through the IOTLB, and what
 * invalidations do to the devices' address spaces.
 *
 * What a device's notifiers hear follows the guest's invalidations: an IOTLB
 * invalidation syncs the invalidated range of every device in the domain
 * against its tables (the core's change engine tells exactly what changed);
 * a context-cache invalidation re-reads the contexts it covers and resyncs
 * the devices whose context changed (attach, detach, a domain switch).
 * Without caching mode the guest does not invalidate after a map, so the
 * held state can miss mappings a device already uses: unmap-only consumers
 * are then told the whole invalidated range (VIOMMU_UPDATE_WIDE_UNMAP).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "vtd_internal.h"

void viommu_vtd_config_init(struct viommu_vtd_config *cfg)
{
	*cfg = (struct viommu_vtd_config){
		.aw = 48,
		.caching_mode = true,
		.device_iotlb = false,
		.walk_budget = VIOMMU_VTD_DEFAULT_WALK_BUDGET,
		.iotlb_entries = VIOMMU_VTD_DEFAULT_IOTLB_ENTRIES,
	};
}

static uint8_t reason_of(enum viommu_fault fault, unsigned access)
{
	switch (fault) {
	case VIOMMU_FAULT_OUT_OF_RANGE:
		return VIOMMU_VTD_FR_ADDR_BEYOND_MGAW;
	case VIOMMU_FAULT_RESERVED:
		return VIOMMU_VTD_FR_PAGING_RESERVED;
	case VIOMMU_FAULT_BAD_TABLE:
		return VIOMMU_VTD_FR_PAGING_ENTRY_INVALID;
	default:
		return access & VIOMMU_PERM_WRITE ? VIOMMU_VTD_FR_WRITE :
						    VIOMMU_VTD_FR_READ;
	}
}

static bool peek_absent_context(struct vtd_device *dev, struct vtd_context *ctx,
				struct viommu__vtd_pt *pt);

/*
 * The IOTLB hit, without the lock: read what translate needs between two
 * reads of the sequence count, and give up (to the locked path) when a
 * writer was at work, on a miss, or when the access faults (so it is
 * recorded).  Hits are counted without an atomic read-modify-write, so
 * the count may miss a few when several threads translate at once.
 */
static bool translate_hit(struct vtd_device *dev, uint64_t iova,
			  unsigned access, struct viommu_translation *out)
{
	struct viommu_vtd *vtd = dev->vtd;
	unsigned seq = __atomic_load_n(&vtd->seq, __ATOMIC_ACQUIRE);
	bool usable;
	uint16_t did;

	if (seq & 1)
		return false;
	usable = (__atomic_load_n(&vtd->gsts, __ATOMIC_RELAXED) &
		  VIOMMU_VTD_GCMD_TE) &&
		 __atomic_load_n(&dev->ctx.present, __ATOMIC_RELAXED) &&
		 !__atomic_load_n(&dev->faulted, __ATOMIC_RELAXED);
	did = __atomic_load_n(&dev->ctx.did, __ATOMIC_RELAXED);
	if (!usable || !vtd_iotlb_lookup(&vtd->iotlb, did, iova, &out->entry))
		return false;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (__atomic_load_n(&vtd->seq, __ATOMIC_RELAXED) != seq)
		return false;
	if ((out->entry.perm & access) != access)
		return false;
	out->fault = VIOMMU_FAULT_NONE;
	__atomic_store_n(&vtd->counters.iotlb_hits,
			 __atomic_load_n(&vtd->counters.iotlb_hits,
					 __ATOMIC_RELAXED) +
				 1,
			 __ATOMIC_RELAXED);
	return true;
}

static int vtd_translate(void *opaque, uint64_t iova, unsigned access,
			 struct viommu_translation *out)
{
	struct vtd_device *dev = opaque;
	struct viommu_vtd *vtd = dev->vtd;
	const struct vtd_context *ctx = &dev->ctx;
	const struct viommu__vtd_pt *pt = &dev->pt;
	struct vtd_context fresh;
	struct viommu__vtd_pt fresh_pt;
	uint8_t reason = 0;
	bool fpd;

	if (translate_hit(dev, iova, access, out))
		return 0;
	vtd_state_lock(vtd);
	/* look, but do not store: the guest side owns the context cache */
	if (peek_absent_context(dev, &fresh, &fresh_pt)) {
		ctx = &fresh;
		pt = &fresh_pt;
	}
	fpd = ctx->fpd;
	if (!(vtd->gsts & VIOMMU_VTD_GCMD_TE)) {
		/* translation off: DMA goes straight to memory */
		out->entry = (struct viommu_entry){ iova & ~UINT64_C(0xfff),
						    0xfff,
						    iova & ~UINT64_C(0xfff),
						    VIOMMU_PERM_RW };
		out->fault = VIOMMU_FAULT_NONE;
	} else if (!ctx->present || dev->faulted) {
		out->entry = (struct viommu_entry){ 0, UINT64_MAX, 0, 0 };
		out->fault = VIOMMU_FAULT_NOT_PRESENT;
		reason = ctx->present ? VIOMMU_VTD_FR_PAGING_ENTRY_INVALID :
					ctx->reason;
	} else if (vtd_iotlb_lookup(&vtd->iotlb, ctx->did, iova, &out->entry)) {
		VTD_COUNT(vtd, iotlb_hits);
		out->fault = VIOMMU_FAULT_NONE;
	} else {
		VTD_COUNT(vtd, iotlb_misses);
		viommu__vtd_translate(pt, iova, out, NULL);
		if (out->fault == VIOMMU_FAULT_NONE &&
		    out->entry.perm != VIOMMU_PERM_NONE)
			vtd_iotlb_insert(&vtd->iotlb, ctx->did, &out->entry);
		else if (out->fault != VIOMMU_FAULT_NONE)
			reason = reason_of(out->fault, access);
	}
	if (!reason && access && out->fault == VIOMMU_FAULT_NONE &&
	    (out->entry.perm & access) != access)
		reason = reason_of(VIOMMU_FAULT_PERMISSION,
				   access & ~out->entry.perm);
	vtd_state_unlock(vtd);
	/* a DMA that faults is recorded; the library's own walks are not */
	if (access && reason && !fpd)
		vtd_record_fault(vtd, dev->sid, iova, reason,
				 access & VIOMMU_PERM_WRITE);
	return 0;
}

/* The model's walk: the leaves of the device's tables, for the engine. */
static int vtd_replay(void *opaque, uint64_t start, uint64_t last,
		      viommu_walk_fn fn, void *ctx)
{
	struct vtd_device *dev = opaque;

	if (!(dev->vtd->gsts & VIOMMU_VTD_GCMD_TE) || !dev->ctx.present)
		return 0;
	return viommu__vtd_walk(&dev->pt, start, last, fn, ctx, &dev->report);
}

static int vtd_flags_changed(void *opaque, unsigned old_flags,
			     unsigned new_flags, struct viommu_error *err)
{
	struct vtd_device *dev = opaque;
	struct viommu_vtd *vtd = dev->vtd;

	if ((new_flags & VIOMMU_NOTIFY_MAP) && !vtd->cfg.caching_mode)
		return viommu__error(err, -ENOTSUP,
				     "%s: vtd without caching mode cannot "
				     "report maps (the guest does not "
				     "invalidate after mapping); use "
				     "caching-mode=on",
				     dev->name);
	if ((new_flags & VIOMMU_NOTIFY_DEVIOTLB_UNMAP) &&
	    !vtd->cfg.device_iotlb)
		return viommu__error(err, -ENOTSUP,
				     "%s: device-IOTLB unmaps need a unit with "
				     "device-iotlb=on",
				     dev->name);
	return 0;
}

static const struct viommu_model_ops vtd_ops = {
	.version = VIOMMU_MODEL_OPS_VERSION,
	.name = "vtd",
	.translate = vtd_translate,
	.replay = vtd_replay,
	.notify_flags_changed = vtd_flags_changed,
	/* no min_page_size: the core's default, 4 KiB, is VT-d's page */
};

int viommu_vtd_new(const struct viommu_vtd_config *cfg,
		   const struct viommu_guest_memory *mem,
		   struct viommu_vtd **out, struct viommu_error *err)
{
	pthread_mutexattr_t attr;
	struct viommu_vtd *vtd;
	int ret;

	if (!out || !mem || !mem->ops || !mem->ops->read)
		return viommu__error(err, -EINVAL,
				     "vtd: guest memory with a read op is "
				     "required");
	*out = NULL;
	vtd = calloc(1, sizeof(*vtd));
	if (!vtd)
		return viommu__error(err, -ENOMEM, "out of memory");
	if (cfg)
		vtd->cfg = *cfg;
	else
		viommu_vtd_config_init(&vtd->cfg);
	if (!viommu__vtd_levels(vtd->cfg.aw)) {
		unsigned aw = vtd->cfg.aw;

		free(vtd);
		return viommu__error(err, -EINVAL,
				     "vtd: address width %u: 39, 48 or 57", aw);
	}
	if (!vtd->cfg.walk_budget)
		vtd->cfg.walk_budget = VIOMMU_VTD_DEFAULT_WALK_BUDGET;
	if (!vtd->cfg.iotlb_entries)
		vtd->cfg.iotlb_entries = VIOMMU_VTD_DEFAULT_IOTLB_ENTRIES;
	vtd->mem = *mem;
	vtd->ptcfg = (struct viommu__vtd_pt_config){
		.aw = vtd->cfg.aw,
		/* reserved address bits start at the unit's width, not the
		 * domain's: a 39-bit domain may map pages above 512 GiB */
		.haw = vtd->cfg.aw < 52 ? vtd->cfg.aw : 52,
		.transient = vtd->cfg.device_iotlb,
		.budget = vtd->cfg.walk_budget,
	};
	ret = vtd_iotlb_init(&vtd->iotlb, vtd->cfg.iotlb_entries);
	if (!ret)
		ret = viommu_model_new(&vtd_ops, vtd, &vtd->model, err);
	if (ret) {
		vtd_iotlb_free(&vtd->iotlb);
		free(vtd);
		return viommu__error(err, ret, "vtd: out of memory");
	}
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&vtd->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_mutex_init(&vtd->state_lock, NULL);
	/* interrupts come out of reset masked */
	vtd->fectl = 1u << 31;
	vtd->iectl = 1u << 31;
	*out = vtd;
	return 0;
}

void viommu_vtd_free(struct viommu_vtd *vtd)
{
	size_t i;

	if (!vtd)
		return;
	for (i = 0; i < vtd->ndevs; i++) {
		viommu_as_free(vtd->devs[i]->as);
		free(vtd->devs[i]->name);
		free(vtd->devs[i]);
	}
	free(vtd->devs);
	viommu_model_free(vtd->model);
	vtd_iotlb_free(&vtd->iotlb);
	pthread_mutex_destroy(&vtd->state_lock);
	pthread_mutex_destroy(&vtd->lock);
	free(vtd);
}

/* Point @dev at what @ctx says; called with the unit's lock held. */
/* Point @dev at what @ctx says; the caller holds the state lock. */
static void set_context_locked(struct vtd_device *dev,
			       const struct vtd_context *ctx)
{
	struct viommu_vtd *vtd = dev->vtd;
	struct viommu__vtd_pt_config pc = vtd->ptcfg;
	struct vtd_context c = *ctx;
	struct viommu__vtd_pt pt = { 0 };

	if (c.present) {
		pc.aw = c.aw;
		if (viommu__vtd_pt_init(&pt, &vtd->mem, c.slptptr, &pc)) {
			c.present = false;
			c.reason = VIOMMU_VTD_FR_CONTEXT_INVALID;
		}
	}
	dev->ctx = c;
	dev->pt = pt;
}

static void set_context(struct vtd_device *dev, const struct vtd_context *ctx)
{
	vtd_state_lock(dev->vtd);
	set_context_locked(dev, ctx);
	vtd_state_unlock(dev->vtd);
}

/*
 * Without caching mode the hardware never caches a context entry that is
 * not present, so a guest may make one present without invalidating (Linux
 * does): look again.  Fills @ctx and @pt and returns true when the entry
 * is present now.  The caller holds the state lock.
 */
static bool peek_absent_context(struct vtd_device *dev, struct vtd_context *ctx,
				struct viommu__vtd_pt *pt)
{
	struct viommu_vtd *vtd = dev->vtd;
	struct viommu__vtd_pt_config pc = vtd->ptcfg;

	if (vtd->cfg.caching_mode || dev->ctx.present ||
	    !(vtd->gsts & VIOMMU_VTD_GCMD_TE))
		return false;
	vtd_context_read(vtd, dev->sid, ctx);
	if (!ctx->present)
		return false;
	pc.aw = ctx->aw;
	return viommu__vtd_pt_init(pt, &vtd->mem, ctx->slptptr, &pc) == 0;
}

/* The same, stored in the context cache: the guest side only. */
static bool refresh_absent_context(struct vtd_device *dev)
{
	struct vtd_context ctx;
	struct viommu__vtd_pt pt;
	bool found;

	vtd_state_lock(dev->vtd);
	found = peek_absent_context(dev, &ctx, &pt);
	if (found)
		set_context_locked(dev, &ctx);
	vtd_state_unlock(dev->vtd);
	return found;
}

static void set_faulted(struct vtd_device *dev, bool faulted)
{
	vtd_state_lock(dev->vtd);
	dev->faulted = faulted;
	vtd_state_unlock(dev->vtd);
}

/*
 * Sync [start, last] of one device.  Broken tables leave it with nothing:
 * its notifiers drop everything (a device that cannot translate must not
 * keep using old translations) until a later sync finds sane tables.
 */
static void sync_device(struct vtd_device *dev, uint64_t start, uint64_t last,
			unsigned flags)
{
	struct viommu_vtd *vtd = dev->vtd;
	struct viommu_error err = { 0 };
	char msg[VIOMMU_ERROR_MESSAGE_MAX + 64];
	int ret;

	if (dev->faulted) {
		/* what it held is gone: only a full sync restores it */
		start = 0;
		last = UINT64_MAX;
	}
	if (!vtd->cfg.caching_mode)
		flags |= VIOMMU_UPDATE_WIDE_UNMAP;
	dev->report.fault = VIOMMU_FAULT_NONE;
	ret = viommu_as_sync(dev->as, start, last, flags, &err);
	if (!ret) {
		if (dev->faulted)
			set_faulted(dev, false);
		return;
	}
	if (dev->report.fault == VIOMMU_FAULT_NONE && ret != -E2BIG) {
		/*
		 * A consumer refused a map (a host backend full, say) and the
		 * core undid the change, revocations included.  A guest's
		 * invalidation cannot fail, and its unmaps must not be
		 * undone: fault the device like broken tables do, so nothing
		 * the guest revoked stays usable and nothing refused becomes
		 * usable, until an invalidation syncs it whole again.
		 */
		if (ret != -ENOMEM && ret != -EBUSY)
			VTD_COUNT(vtd, consumer_refusals);
		snprintf(msg, sizeof(msg),
			 "%s; device faulted until the next invalidation",
			 err.message);
	} else {
		if (ret == -E2BIG)
			VTD_COUNT(vtd, budget_exceeded);
		else
			VTD_COUNT(vtd, walk_faults);
		snprintf(msg, sizeof(msg), "%s",
			 dev->report.message[0] ? dev->report.message :
						  err.message);
	}
	set_faulted(dev, true);
	/* first the cause, then what it costs the device */
	if (vtd->fault_fn)
		vtd->fault_fn(vtd->fault_opaque, dev->as, msg);
	/* device IOTLBs may hold what was never held: drop everything */
	viommu_as_update(dev->as, 0, UINT64_MAX, NULL, 0,
			 flags | VIOMMU_UPDATE_WIDE_UNMAP, NULL);
}

void vtd_sync_domain(struct viommu_vtd *vtd, uint16_t did, uint64_t start,
		     uint64_t last)
{
	size_t i;

	for (i = 0; i < vtd->ndevs; i++) {
		struct vtd_device *dev = vtd->devs[i];

		/*
		 * A context found present only now holds what later
		 * invalidations cover: without caching mode no map notifier
		 * is served, and unmap-only ones hear whole ranges anyway.
		 */
		refresh_absent_context(dev);
		if (dev->ctx.present && dev->ctx.did == did)
			sync_device(dev, start, last, 0);
	}
}

static bool same_context(const struct vtd_context *a,
			 const struct vtd_context *b)
{
	return a->present == b->present && a->did == b->did &&
	       a->slptptr == b->slptptr && a->aw == b->aw && a->fpd == b->fpd &&
	       a->reason == b->reason;
}

void vtd_context_invalidate(struct viommu_vtd *vtd, unsigned granularity,
			    uint16_t did, uint16_t sid, unsigned fm)
{
	/* FM n masks the n most significant bits of the function number */
	static const uint16_t fm_mask[4] = { 0xffff, 0xfffb, 0xfff9, 0xfff8 };
	uint16_t sid_mask = fm_mask[fm & 3];
	size_t i;

	for (i = 0; i < vtd->ndevs; i++) {
		struct vtd_device *dev = vtd->devs[i];
		struct vtd_context ctx;

		if (granularity == VTD_CC_DOMAIN && dev->ctx.did != did)
			continue;
		if (granularity == VTD_CC_DEVICE &&
		    (dev->sid & sid_mask) != (sid & sid_mask))
			continue;
		vtd_context_read(vtd, dev->sid, &ctx);
		if (same_context(&ctx, &dev->ctx))
			continue;
		set_context(dev, &ctx);
		if (vtd->gsts & VIOMMU_VTD_GCMD_TE)
			sync_device(dev, 0, UINT64_MAX, 0);
	}
	VTD_COUNT(vtd, context_invalidations);
}

bool vtd_iotlb_invalidate(struct viommu_vtd *vtd, unsigned granularity,
			  uint16_t did, uint64_t addr, unsigned am)
{
	uint64_t size, start;
	size_t i;

	switch (granularity) {
	case 1:
		vtd_state_lock(vtd);
		vtd_iotlb_flush_all(&vtd->iotlb);
		vtd_state_unlock(vtd);
		for (i = 0; i < vtd->ndevs; i++) {
			refresh_absent_context(vtd->devs[i]);
			if (vtd->devs[i]->ctx.present)
				sync_device(vtd->devs[i], 0, UINT64_MAX, 0);
		}
		break;
	case 2:
		vtd_state_lock(vtd);
		vtd_iotlb_flush_domain(&vtd->iotlb, did);
		vtd_state_unlock(vtd);
		vtd_sync_domain(vtd, did, 0, UINT64_MAX);
		break;
	case 3:
		if (am > VTD_MAMV)
			return false;
		size = UINT64_C(4096) << am;
		start = addr & ~(size - 1); /* the low bits are ignored */
		vtd_state_lock(vtd);
		vtd_iotlb_flush_range(&vtd->iotlb, did, start,
				      start + (size - 1));
		vtd_state_unlock(vtd);
		vtd_sync_domain(vtd, did, start, start + (size - 1));
		break;
	default:
		return false;
	}
	VTD_COUNT(vtd, invalidations);
	return true;
}

void vtd_translation_enabled(struct viommu_vtd *vtd)
{
	size_t i;

	vtd_state_lock(vtd);
	vtd_iotlb_flush_all(&vtd->iotlb);
	vtd_state_unlock(vtd);
	for (i = 0; i < vtd->ndevs; i++) {
		struct vtd_context ctx;

		vtd_context_read(vtd, vtd->devs[i]->sid, &ctx);
		set_context(vtd->devs[i], &ctx);
	}
	/*
	 * With translation off, DMA went straight to memory and a device
	 * IOTLB may have cached such identity translations, which the held
	 * state never had: unmap-only consumers drop everything.
	 */
	for (i = 0; i < vtd->ndevs; i++)
		sync_device(vtd->devs[i], 0, UINT64_MAX,
			    VIOMMU_UPDATE_WIDE_UNMAP);
}

void vtd_devtlb_invalidate(struct viommu_vtd *vtd, uint16_t sid, uint64_t iova,
			   uint64_t addr_mask)
{
	size_t i;

	VTD_COUNT(vtd, devtlb_invalidations);
	for (i = 0; i < vtd->ndevs; i++)
		if (vtd->devs[i]->sid == sid)
			viommu_as_notify_deviotlb(vtd->devs[i]->as, iova,
						  addr_mask);
}

int viommu_vtd_device_add(struct viommu_vtd *vtd, uint16_t sid,
			  const char *name, struct viommu_as **out,
			  struct viommu_error *err)
{
	struct vtd_device *dev;
	struct vtd_context ctx;
	size_t i;
	int ret;

	if (!vtd || !out)
		return viommu__error(err, -EINVAL, "vtd: no unit");
	pthread_mutex_lock(&vtd->lock);
	for (i = 0; i < vtd->ndevs; i++) {
		if (vtd->devs[i]->sid == sid) {
			pthread_mutex_unlock(&vtd->lock);
			return viommu__error(err, -EEXIST,
					     "vtd: source id %02x:%02x.%x "
					     "already has a device",
					     sid >> 8, (sid >> 3) & 0x1f,
					     sid & 7);
		}
	}
	if (vtd->ndevs == vtd->capdevs) {
		size_t cap = vtd->capdevs ? vtd->capdevs * 2 : 8;
		struct vtd_device **nv = realloc(vtd->devs, cap * sizeof(*nv));

		if (!nv) {
			pthread_mutex_unlock(&vtd->lock);
			return viommu__error(err, -ENOMEM, "out of memory");
		}
		vtd->devs = nv;
		vtd->capdevs = cap;
	}
	dev = calloc(1, sizeof(*dev));
	if (dev)
		dev->name = strdup(name ? name : "device");
	if (!dev || !dev->name) {
		free(dev);
		pthread_mutex_unlock(&vtd->lock);
		return viommu__error(err, -ENOMEM, "out of memory");
	}
	dev->vtd = vtd;
	dev->sid = sid;
	ret = viommu_as_new(vtd->model, dev->name, dev, &dev->as, err);
	if (ret) {
		free(dev->name);
		free(dev);
		pthread_mutex_unlock(&vtd->lock);
		return ret;
	}
	vtd->devs[vtd->ndevs++] = dev;
	vtd_context_read(vtd, sid, &ctx);
	set_context(dev, &ctx);
	if (vtd->gsts & VIOMMU_VTD_GCMD_TE)
		sync_device(dev, 0, UINT64_MAX, 0);
	*out = dev->as;
	pthread_mutex_unlock(&vtd->lock);
	return 0;
}

void viommu_vtd_counters(struct viommu_vtd *vtd,
			 struct viommu_vtd_counters *out)
{
	const uint64_t *from = (const uint64_t *)&vtd->counters;
	uint64_t *to = (uint64_t *)out;
	size_t i;

	/* every member is a uint64_t bumped with VTD_COUNT() */
	for (i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		to[i] = __atomic_load_n(&from[i], __ATOMIC_RELAXED);
}

void viommu_vtd_set_fault_handler(struct viommu_vtd *vtd,
				  viommu_vtd_fault_fn fn, void *opaque)
{
	pthread_mutex_lock(&vtd->lock);
	vtd->fault_fn = fn;
	vtd->fault_opaque = opaque;
	pthread_mutex_unlock(&vtd->lock);
}
