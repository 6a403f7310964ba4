/* SPDX-License-Identifier: MIT */
/*
 * The baseline: the structure QEMU's VT-d model keeps its shadow of each
 * address space in (util/iova-tree.c), written again for the benchmark.
 *
 * A GLib balanced tree (GTree) of range nodes.  Each node is its own
 * allocation holding one mapping, the tree's key and value are that same
 * pointer, and the comparator calls two ranges equal when they overlap, so
 * a lookup with a range finds any mapping overlapping it.  Insert refuses
 * overlaps by looking up first, as QEMU's does.
 *
 * Only the benchmark links GLib; the library never does.
 */
#ifndef VIOMMU_BENCH_BASELINE_GTREE_H
#define VIOMMU_BENCH_BASELINE_GTREE_H

#include <stdint.h>

/*
 * One mapping, laid out as QEMU's DMAMap is (packed, 28 bytes) so the
 * allocations cost what they cost there.  @size is inclusive: last - iova.
 */
struct baseline_map {
	uint64_t iova;
	uint64_t translated_addr;
	uint64_t size;
	uint32_t perm;
} __attribute__((packed));

struct baseline_tree;

struct baseline_tree *baseline_tree_new(void);
void baseline_tree_free(struct baseline_tree *t);

/* Returns 0, -EINVAL (empty perm, wrapping range) or -EEXIST (overlap). */
int baseline_tree_insert(struct baseline_tree *t, const struct baseline_map *m);

/* Any mapping overlapping [m->iova, m->iova + m->size], or NULL. */
const struct baseline_map *baseline_tree_find(const struct baseline_tree *t,
					      const struct baseline_map *m);

/* Remove every mapping overlapping @m. */
void baseline_tree_remove(struct baseline_tree *t,
			  const struct baseline_map *m);

unsigned baseline_tree_count(const struct baseline_tree *t);

#endif /* VIOMMU_BENCH_BASELINE_GTREE_H */
