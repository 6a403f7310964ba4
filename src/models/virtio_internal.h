/* SPDX-License-Identifier: MIT */
/*
 * The virtio-iommu model's state, shared by virtio.c (the device, its
 * tables and the model ops the core calls) and virtio_request.c (ATTACH,
 * DETACH, MAP, UNMAP).
 *
 * Locking:
 *  - @req_lock serializes requests and the embedder's table changes
 *    (endpoint_add, domain_add).  Only its holder writes anything below, so
 *    it reads without further locking.
 *  - @lock is taken for writing around each write to a domain's store, to
 *    an endpoint's link to its domain, or to the domain table, and for
 *    reading by translate, replay and mapping_count, which may run on any
 *    thread.  It is never held across a call into the core: a consumer's
 *    callback may translate, which takes it for reading.
 *  - A request changes the model first and notifies after, as the core
 *    does with what it holds: a translate in between sees the new state.
 *    A domain is freed only after the write section that unlinked its last
 *    endpoint, so a reader that found it through an endpoint is done with
 *    it by then.
 *  - A request from inside a notification of one of its own changes would
 *    wait for itself: @req_lock is an error-checking mutex, so it is
 *    refused instead.
 */
#ifndef VIOMMU_VIRTIO_INTERNAL_H
#define VIOMMU_VIRTIO_INTERNAL_H

#include <pthread.h>

#include <viommu/model.h>
#include <viommu/virtio.h>

#include "virtio_idtab.h"
#include "virtio_store.h"

struct viommu__vendpoint;

/**
 * struct viommu__vdomain - a domain: mappings and the endpoints sharing them.
 * @id: the guest's domain ID.
 * @store: the mappings.
 * @head: first attached endpoint; endpoints are notified in attach order.
 * @tail: last attached endpoint.
 */
struct viommu__vdomain {
	uint32_t id;
	/* created by viommu_virtio_domain_add(): outlives its endpoints */
	bool persistent;
	struct viommu__vstore store;
	struct viommu__vendpoint *head, *tail;
};

/**
 * struct viommu__vendpoint - an endpoint and its address space.
 * @v: the device.
 * @id: the endpoint ID.
 * @as: its address space; its model pointer is this endpoint.
 * @domain: the domain it is attached to, NULL when none.
 * @prev: previous endpoint of @domain.
 * @next: next endpoint of @domain.
 */
struct viommu__vendpoint {
	struct viommu_virtio *v;
	uint32_t id;
	struct viommu_as *as;
	struct viommu__vdomain *domain;
	struct viommu__vendpoint *prev, *next;
};

struct viommu_virtio {
	struct viommu_virtio_config cfg;
	uint64_t granule; /* lowest set bit of cfg.page_size_mask */
	struct viommu_model *model;
	pthread_mutex_t req_lock;
	pthread_rwlock_t lock;
	struct viommu__idtab domains;	/* of struct viommu__vdomain */
	struct viommu__idtab endpoints; /* of struct viommu__vendpoint */
};

/* Take @req_lock; -EBUSY from inside a notification of one of our changes. */
int viommu__virtio_enter(struct viommu_virtio *v);
void viommu__virtio_leave(struct viommu_virtio *v);

/* A new, empty domain that is in no table; NULL when out of memory. */
struct viommu__vdomain *viommu__vdomain_new(uint32_t id);

/* Free @d and its mappings; no endpoint may be attached. */
void viommu__vdomain_free(struct viommu__vdomain *d);

/* A MAP request's flags as a translation's permissions. */
static inline unsigned flags_to_perm(unsigned flags)
{
	return (flags & VIOMMU_VIRTIO_MAP_F_READ ? VIOMMU_PERM_READ : 0) |
	       (flags & VIOMMU_VIRTIO_MAP_F_WRITE ? VIOMMU_PERM_WRITE : 0);
}

#endif /* VIOMMU_VIRTIO_INTERNAL_H */
