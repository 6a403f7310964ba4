/* SPDX-License-Identifier: MIT */
/*
 * The mappings of one virtio-iommu domain: non-overlapping ranges
 * [start, last] ordered by start, in an AVL tree.
 *
 * An AVL tree rather than a treap or a sorted array: the guest chooses the
 * keys, so the bounds must not depend on luck or on the order it picks
 * (height <= 1.44 log2(n + 2), about 29 for the default 2^20 mappings), and
 * a MAP in the middle of a million mappings must not move them.  48 bytes a
 * mapping on LP64.
 *
 * Nodes are allocated by the caller and handed in; removal hands them back
 * unlinked.  So a request can take mappings out, and put them back when a
 * consumer refuses the change, without allocating on the way back.
 *
 * Not thread-safe: the caller serializes (see virtio_internal.h).
 */
#ifndef VIOMMU_VIRTIO_STORE_H
#define VIOMMU_VIRTIO_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * struct viommu__vmapping - one MAP request's mapping.
 * @start: first IOVA.
 * @last: last IOVA (inclusive).
 * @phys: guest-physical address of @start.
 * @child: left and right subtrees while in a tree; a detached node's
 *     @child[0] may chain it in a caller's list.
 * @height: of the subtree rooted here, 1 for a leaf.
 * @flags: VIOMMU_VIRTIO_MAP_F_* of the request.
 */
struct viommu__vmapping {
	uint64_t start;
	uint64_t last;
	uint64_t phys;
	struct viommu__vmapping *child[2];
	uint8_t height;
	uint8_t flags;
};

struct viommu__vstore {
	struct viommu__vmapping *root;
	size_t count;
};

void viommu__vstore_init(struct viommu__vstore *s);

/* Free every node. */
void viommu__vstore_destroy(struct viommu__vstore *s);

/* Link @m in; the caller guarantees it overlaps no mapping held. */
void viommu__vstore_insert(struct viommu__vstore *s,
			   struct viommu__vmapping *m);

/* Unlink the mapping starting exactly at @start; NULL when there is none. */
struct viommu__vmapping *viommu__vstore_remove(struct viommu__vstore *s,
					       uint64_t start);

/*
 * The mapping covering @addr.  When there is none, NULL, and *@gap_start and
 * *@gap_last (each may be NULL) receive the unmapped range around @addr:
 * everything between the mappings on either side of it.
 */
struct viommu__vmapping *viommu__vstore_find(const struct viommu__vstore *s,
					     uint64_t addr, uint64_t *gap_start,
					     uint64_t *gap_last);

/* The mapping with the lowest start >= @addr, or NULL. */
struct viommu__vmapping *
viommu__vstore_first_from(const struct viommu__vstore *s, uint64_t addr);

/* The lowest mapping overlapping [@start, @last], or NULL. */
struct viommu__vmapping *
viommu__vstore_first_overlap(const struct viommu__vstore *s, uint64_t start,
			     uint64_t last);

typedef int (*viommu__vstore_fn)(void *ctx, const struct viommu__vmapping *m);

/*
 * Call @fn for every mapping overlapping [@start, @last], in order; stop at
 * the first non-zero return and return it.  O(log n + k).
 */
int viommu__vstore_walk(const struct viommu__vstore *s, uint64_t start,
			uint64_t last, viommu__vstore_fn fn, void *ctx);

#endif /* VIOMMU_VIRTIO_STORE_H */
