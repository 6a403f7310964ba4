/* SPDX-License-Identifier: MIT */
/*
 * QEMU's IOVA tree, for comparison: see baseline_gtree.h.  Written from the
 * description of its structure (one GTree, an overlap comparator, one
 * allocation per node), not from its code.
 */
#include <errno.h>
#include <glib.h>

#include "baseline_gtree.h"

struct baseline_tree {
	GTree *tree;
};

/*
 * Ranges that overlap compare equal: the tree never holds two that
 * overlap, so this is a total order on what it holds, and a probe range
 * lands on whichever held range it touches.
 */
static gint overlap_cmp(gconstpointer a, gconstpointer b, gpointer unused)
{
	const struct baseline_map *x = a, *y = b;

	if (x->iova + x->size < y->iova)
		return -1;
	if (y->iova + y->size < x->iova)
		return 1;
	return 0;
}

struct baseline_tree *baseline_tree_new(void)
{
	struct baseline_tree *t = g_new0(struct baseline_tree, 1);

	/* the key is the value: freeing keys frees the nodes' mappings */
	t->tree = g_tree_new_full(overlap_cmp, NULL, g_free, NULL);
	return t;
}

void baseline_tree_free(struct baseline_tree *t)
{
	if (!t)
		return;
	g_tree_destroy(t->tree);
	g_free(t);
}

const struct baseline_map *baseline_tree_find(const struct baseline_tree *t,
					      const struct baseline_map *m)
{
	return g_tree_lookup(t->tree, m);
}

int baseline_tree_insert(struct baseline_tree *t, const struct baseline_map *m)
{
	struct baseline_map *copy;

	if (!m->perm || m->iova + m->size < m->iova)
		return -EINVAL;
	/* GTree would replace an equal key: overlaps must be refused first */
	if (baseline_tree_find(t, m))
		return -EEXIST;
	copy = g_new(struct baseline_map, 1);
	*copy = *m;
	g_tree_insert(t->tree, copy, copy);
	return 0;
}

void baseline_tree_remove(struct baseline_tree *t, const struct baseline_map *m)
{
	const struct baseline_map *hit;

	/* one overlapping mapping at a time: a range may cover several */
	while ((hit = baseline_tree_find(t, m)))
		g_tree_remove(t->tree, hit);
}

unsigned baseline_tree_count(const struct baseline_tree *t)
{
	return (unsigned)g_tree_nnodes(t->tree);
}
