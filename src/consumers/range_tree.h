/* SPDX-License-Identifier: MIT */
/*
 * An ordered set of non-overlapping ranges [start, last], shared by the
 * consumers: the host mappings of the software type1 backend, the host runs
 * of the shadow, the cached translations of the device IOTLB.
 *
 * Intrusive (each user embeds a struct viommu__rnode and recovers its own
 * struct with container_of), so an insert never allocates and never fails.
 * An AVL tree with parent pointers: insert, remove and lookups are
 * O(log n) in the worst case, whatever order the guest maps in; next/prev
 * are O(1) amortized, so visiting k neighbours costs O(log n + k).
 *
 * Not thread-safe: each user locks around it.
 */
#ifndef VIOMMU_CONSUMERS_RANGE_TREE_H
#define VIOMMU_CONSUMERS_RANGE_TREE_H

#include <stddef.h>
#include <stdint.h>

#define viommu__container_of(ptr, type, member)                                \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

struct viommu__rnode {
	struct viommu__rnode *left, *right, *parent;
	uint64_t start, last; /* inclusive; set by the user before insert */
	int height;
};

struct viommu__rtree {
	struct viommu__rnode *root;
	size_t count;
};

void viommu__rtree_init(struct viommu__rtree *t);

/*
 * Insert @n, whose start and last are set.  The caller guarantees it
 * overlaps no node of @t (the tree orders by start only).
 */
void viommu__rtree_insert(struct viommu__rtree *t, struct viommu__rnode *n);

/* Remove @n, a node of @t.  Other nodes stay where they are in memory. */
void viommu__rtree_remove(struct viommu__rtree *t, struct viommu__rnode *n);

/* The node with the greatest start <= @addr, or NULL. */
struct viommu__rnode *viommu__rtree_floor(const struct viommu__rtree *t,
					  uint64_t addr);

/* The node covering @addr, or NULL. */
struct viommu__rnode *viommu__rtree_find(const struct viommu__rtree *t,
					 uint64_t addr);

/* The lowest node that overlaps [@start, @last], or NULL. */
struct viommu__rnode *viommu__rtree_first_overlap(const struct viommu__rtree *t,
						  uint64_t start,
						  uint64_t last);

struct viommu__rnode *viommu__rtree_first(const struct viommu__rtree *t);
struct viommu__rnode *viommu__rtree_next(const struct viommu__rnode *n);
struct viommu__rnode *viommu__rtree_prev(const struct viommu__rnode *n);

/*
 * Check the tree's invariants (order, no overlap, parent links, AVL
 * heights, count); for tests.  Returns 0 or -EINVAL.
 */
int viommu__rtree_validate(const struct viommu__rtree *t);

#endif /* VIOMMU_CONSUMERS_RANGE_TREE_H */
