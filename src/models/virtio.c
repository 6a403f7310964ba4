/* SPDX-License-Identifier: MIT */
/*
 * The virtio-iommu model: the device, its endpoints and domains, and the
 * ops through which the core reads them.  The requests are in
 * virtio_request.c; the locking rules in virtio_internal.h.
 *
 * A MAP request maps an arbitrary granule-aligned range, but the core deals
 * in naturally aligned powers of two.  The model presents each mapping as
 * the unique cut of its range into maximal aligned blocks (what
 * viommu_split_range() produces): replay enumerates those pieces and
 * translate returns the one containing the address, so both always agree
 * with what the consumers were told.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "virtio_internal.h"

int viommu__virtio_enter(struct viommu_virtio *v)
{
	/* error-checking mutex: only its owner gets EDEADLK (a nested call) */
	return pthread_mutex_lock(&v->req_lock) ? -EBUSY : 0;
}

void viommu__virtio_leave(struct viommu_virtio *v)
{
	pthread_mutex_unlock(&v->req_lock);
}

struct viommu__vdomain *viommu__vdomain_new(uint32_t id)
{
	struct viommu__vdomain *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->id = id;
	viommu__vstore_init(&d->store);
	return d;
}

void viommu__vdomain_free(struct viommu__vdomain *d)
{
	if (!d)
		return;
	viommu__vstore_destroy(&d->store);
	free(d);
}

/*
 * The addr_mask of the largest naturally aligned power of two containing
 * @addr and lying inside [@lo, @hi].  For a mapping's range this is the
 * piece of its split that contains @addr: the split of a range is its set
 * of maximal aligned blocks, and aligned blocks are nested or disjoint.
 */
static uint64_t block_around(uint64_t addr, uint64_t lo, uint64_t hi)
{
	uint64_t mask = 0;

	while (mask != UINT64_MAX) {
		uint64_t wider = mask << 1 | 1;

		if ((addr & ~wider) < lo || (addr | wider) > hi)
			break;
		mask = wider;
	}
	return mask;
}

static int virtio_translate(void *opaque, uint64_t iova, unsigned access,
			    struct viommu_translation *out)
{
	struct viommu__vendpoint *ep = opaque;
	struct viommu_virtio *v = ep->v;
	const struct viommu__vmapping *m = NULL;
	uint64_t lo = 0, hi = UINT64_MAX, mask;

	pthread_rwlock_rdlock(&v->lock);
	/* not attached: nothing translates, the hole is the whole space */
	if (ep->domain)
		m = viommu__vstore_find(&ep->domain->store, iova, &lo, &hi);
	if (m) {
		mask = block_around(iova, m->start, m->last);
		out->entry.iova = iova & ~mask;
		out->entry.addr_mask = mask;
		out->entry.translated_addr =
			m->phys + (out->entry.iova - m->start);
		out->entry.perm = flags_to_perm(m->flags);
		out->fault = VIOMMU_FAULT_NONE;
	} else {
		mask = block_around(iova, lo, hi);
		out->entry = (struct viommu_entry){ iova & ~mask, mask, 0,
						    VIOMMU_PERM_NONE };
		out->fault = VIOMMU_FAULT_NOT_PRESENT;
	}
	pthread_rwlock_unlock(&v->lock);
	return 0;
}

struct replay_ctx {
	uint64_t start, last;
	viommu_walk_fn fn;
	void *ctx;
	const struct viommu__vmapping *m;
};

static int replay_piece(void *opaque, const struct viommu_entry *piece)
{
	struct replay_ctx *rc = opaque;
	struct viommu_entry e = *piece;

	if (piece->iova + piece->addr_mask < rc->start ||
	    piece->iova > rc->last)
		return 0;
	e.translated_addr = rc->m->phys + (piece->iova - rc->m->start);
	e.perm = flags_to_perm(rc->m->flags);
	return rc->fn(rc->ctx, &e);
}

static int replay_mapping(void *opaque, const struct viommu__vmapping *m)
{
	struct replay_ctx *rc = opaque;

	rc->m = m;
	return viommu_split_range(m->start, m->last, replay_piece, rc);
}

/*
 * Holds @lock for reading while @fn runs: the core calls this from a sync,
 * with a @fn that only records, never from a consumer's callback.
 */
static int virtio_replay(void *opaque, uint64_t start, uint64_t last,
			 viommu_walk_fn fn, void *ctx)
{
	struct viommu__vendpoint *ep = opaque;
	struct replay_ctx rc = { start, last, fn, ctx, NULL };
	int ret = 0;

	pthread_rwlock_rdlock(&ep->v->lock);
	if (ep->domain)
		ret = viommu__vstore_walk(&ep->domain->store, start, last,
					  replay_mapping, &rc);
	pthread_rwlock_unlock(&ep->v->lock);
	return ret;
}

static int virtio_flags_changed(void *opaque, unsigned old_flags,
				unsigned new_flags, struct viommu_error *err)
{
	struct viommu__vendpoint *ep = opaque;

	/*
	 * Nothing would ever reach such a notifier; better to say so at
	 * registration than to leave a device IOTLB waiting for events.
	 */
	if (!(new_flags & VIOMMU_NOTIFY_DEVIOTLB_UNMAP))
		return 0;
	return viommu__error(
		err, -ENOTSUP,
		"endpoint %u ('%s'): virtio-iommu has no device-IOTLB "
		"invalidation; register for UNMAP instead, which hears "
		"every removal exactly",
		ep->id, viommu_as_name(ep->as));
}

static uint64_t virtio_min_page_size(void *opaque)
{
	const struct viommu__vendpoint *ep = opaque;

	return ep->v->granule;
}

static const struct viommu_model_ops virtio_ops = {
	.version = VIOMMU_MODEL_OPS_VERSION,
	.name = "virtio",
	.translate = virtio_translate,
	.replay = virtio_replay,
	.notify_flags_changed = virtio_flags_changed,
	.min_page_size = virtio_min_page_size,
};

void viommu_virtio_config_init(struct viommu_virtio_config *cfg)
{
	*cfg = (struct viommu_virtio_config){
		.page_size_mask = ~UINT64_C(0xfff),
		.input_start = 0,
		.input_last = (UINT64_C(1) << 48) - 1,
		.max_mappings = VIOMMU_VIRTIO_DEFAULT_MAX_MAPPINGS,
	};
}

int viommu_virtio_new(const struct viommu_virtio_config *cfg,
		      struct viommu_virtio **out, struct viommu_error *err)
{
	struct viommu_virtio_config defaults;
	pthread_mutexattr_t attr;
	struct viommu_virtio *v;
	int ret;

	if (!out)
		return viommu__error(err, -EINVAL, "no place for the device");
	*out = NULL;
	if (!cfg) {
		viommu_virtio_config_init(&defaults);
		cfg = &defaults;
	}
	if (!cfg->page_size_mask)
		return viommu__error(err, -EINVAL,
				     "virtio-iommu: page_size_mask is empty");
	if (cfg->input_start > cfg->input_last)
		return viommu__error(
			err, -EINVAL,
			"virtio-iommu: input range [0x%llx, 0x%llx] is "
			"empty",
			(unsigned long long)cfg->input_start,
			(unsigned long long)cfg->input_last);
	if (!cfg->max_mappings)
		return viommu__error(
			err, -EINVAL,
			"virtio-iommu: max_mappings is 0: no MAP could "
			"ever succeed");
	v = calloc(1, sizeof(*v));
	if (!v)
		return viommu__error(err, -ENOMEM, "out of memory");
	v->cfg = *cfg;
	v->granule = cfg->page_size_mask & -cfg->page_size_mask;
	ret = viommu_model_new(&virtio_ops, v, &v->model, err);
	if (ret) {
		free(v);
		return ret;
	}
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&v->req_lock, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_rwlock_init(&v->lock, NULL);
	viommu__idtab_init(&v->domains);
	viommu__idtab_init(&v->endpoints);
	*out = v;
	return 0;
}

void viommu_virtio_free(struct viommu_virtio *v)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < v->endpoints.cap; i++) {
		struct viommu__vendpoint *ep = v->endpoints.slots[i].obj;

		if (ep) {
			viommu_as_free(ep->as);
			free(ep);
		}
	}
	for (i = 0; i < v->domains.cap; i++)
		viommu__vdomain_free(v->domains.slots[i].obj);
	viommu__idtab_destroy(&v->endpoints);
	viommu__idtab_destroy(&v->domains);
	viommu_model_free(v->model);
	pthread_rwlock_destroy(&v->lock);
	pthread_mutex_destroy(&v->req_lock);
	free(v);
}

int viommu_virtio_endpoint_add(struct viommu_virtio *v, uint32_t endpoint,
			       const char *name, struct viommu_as **out,
			       struct viommu_error *err)
{
	struct viommu__vendpoint *ep;
	int ret;

	if (!v || !out)
		return viommu__error(err, -EINVAL,
				     "no device or no place for the "
				     "address space");
	*out = NULL;
	if (viommu__virtio_enter(v))
		return viommu__error(
			err, -EBUSY,
			"endpoint %u: cannot add an endpoint from inside "
			"a notification of this device",
			endpoint);
	ret = -EEXIST;
	if (viommu__idtab_find(&v->endpoints, endpoint)) {
		viommu__error(err, ret, "endpoint %u already exists", endpoint);
		goto out;
	}
	ret = -ENOMEM;
	ep = calloc(1, sizeof(*ep));
	if (!ep) {
		viommu__error(err, ret, "out of memory");
		goto out;
	}
	ep->v = v;
	ep->id = endpoint;
	ret = viommu_as_new(v->model, name, ep, &ep->as, err);
	if (!ret) {
		ret = viommu__idtab_insert(&v->endpoints, endpoint, ep);
		if (ret)
			viommu__error(err, ret, "out of memory");
	}
	if (ret) {
		viommu_as_free(ep->as);
		free(ep);
		goto out;
	}
	*out = ep->as;
out:
	viommu__virtio_leave(v);
	return ret;
}

int viommu_virtio_domain_add(struct viommu_virtio *v, uint32_t domain,
			     struct viommu_error *err)
{
	struct viommu__vdomain *d;
	int ret;

	if (!v)
		return viommu__error(err, -EINVAL, "no device");
	if (viommu__virtio_enter(v))
		return viommu__error(
			err, -EBUSY,
			"domain %u: cannot add a domain from inside a "
			"notification of this device",
			domain);
	ret = -EEXIST;
	if (viommu__idtab_find(&v->domains, domain)) {
		viommu__error(err, ret, "domain %u already exists", domain);
		goto out;
	}
	ret = -ENOMEM;
	d = viommu__vdomain_new(domain);
	if (d) {
		d->persistent = true;
		pthread_rwlock_wrlock(&v->lock);
		ret = viommu__idtab_insert(&v->domains, domain, d);
		pthread_rwlock_unlock(&v->lock);
	}
	if (ret) {
		viommu__vdomain_free(d);
		viommu__error(err, ret, "out of memory");
	}
out:
	viommu__virtio_leave(v);
	return ret;
}

uint64_t viommu_virtio_mapping_count(struct viommu_virtio *v, uint32_t domain)
{
	const struct viommu__vdomain *d;
	uint64_t n;

	if (!v)
		return 0;
	/* @lock, not @req_lock: callable from a consumer's callback */
	pthread_rwlock_rdlock(&v->lock);
	d = viommu__idtab_find(&v->domains, domain);
	n = d ? d->store.count : 0;
	pthread_rwlock_unlock(&v->lock);
	return n;
}

const char *viommu_virtio_status_name(enum viommu_virtio_status status)
{
	switch (status) {
	case VIOMMU_VIRTIO_S_OK:
		return "ok";
	case VIOMMU_VIRTIO_S_IOERR:
		return "ioerr";
	case VIOMMU_VIRTIO_S_UNSUPP:
		return "unsupp";
	case VIOMMU_VIRTIO_S_DEVERR:
		return "deverr";
	case VIOMMU_VIRTIO_S_INVAL:
		return "inval";
	case VIOMMU_VIRTIO_S_RANGE:
		return "range";
	case VIOMMU_VIRTIO_S_NOENT:
		return "noent";
	case VIOMMU_VIRTIO_S_FAULT:
		return "fault";
	case VIOMMU_VIRTIO_S_NOMEM:
		return "nomem";
	}
	return "unknown";
}
