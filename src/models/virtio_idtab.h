/* SPDX-License-Identifier: MIT */
/*
 * A table from 32-bit IDs (domains, endpoints) to objects: open addressing
 * with linear probing, at most half full.
 *
 * A hash rather than a sorted array: the guest picks domain IDs and creates
 * domains at will, so an insertion must not cost a move of every domain.
 *
 * Not thread-safe: the caller serializes (see virtio_internal.h).
 */
#ifndef VIOMMU_VIRTIO_IDTAB_H
#define VIOMMU_VIRTIO_IDTAB_H

#include <stddef.h>
#include <stdint.h>

struct viommu__idtab_slot {
	uint32_t id;
	void *obj; /* NULL: the slot is free */
};

struct viommu__idtab {
	struct viommu__idtab_slot *slots;
	size_t n;   /* objects held */
	size_t cap; /* slots: 0 or a power of two */
};

void viommu__idtab_init(struct viommu__idtab *t);

/* Free the table, not the objects. */
void viommu__idtab_destroy(struct viommu__idtab *t);

/* The object of @id, or NULL. */
void *viommu__idtab_find(const struct viommu__idtab *t, uint32_t id);

/* Add @obj (not NULL) under @id, which is not held.  Returns 0 or -ENOMEM. */
int viommu__idtab_insert(struct viommu__idtab *t, uint32_t id, void *obj);

/* Drop @id if held. */
void viommu__idtab_remove(struct viommu__idtab *t, uint32_t id);

#endif /* VIOMMU_VIRTIO_IDTAB_H */
