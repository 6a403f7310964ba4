/* SPDX-License-Identifier: MIT */
/*
 * An AVL tree of non-overlapping ranges, ordered by start (range_tree.h).
 *
 * Invariants, restored before every public function returns:
 *  - in-order, each node's start is greater than the previous node's last;
 *  - a child's parent pointer names its parent, the root's is NULL;
 *  - height is 1 + the larger child height (NULL counts 0), and the two
 *    child heights of any node differ by at most one.
 * The height bound (about 1.44 log2 n) is what makes every operation
 * O(log n) whatever order the ranges arrive in: a guest that maps
 * ascending IOVAs would turn a plain binary tree into a list.
 */
#include <errno.h>
#include <stdbool.h>

#include "range_tree.h"

void viommu__rtree_init(struct viommu__rtree *t)
{
	t->root = NULL;
	t->count = 0;
}

static int height(const struct viommu__rnode *n)
{
	return n ? n->height : 0;
}

static void fix_height(struct viommu__rnode *n)
{
	int l = height(n->left), r = height(n->right);

	n->height = 1 + (l > r ? l : r);
}

/* Put @child where @old hangs under @parent (the root when NULL). */
static void replace_child(struct viommu__rtree *t, struct viommu__rnode *parent,
			  struct viommu__rnode *old,
			  struct viommu__rnode *child)
{
	if (!parent)
		t->root = child;
	else if (parent->left == old)
		parent->left = child;
	else
		parent->right = child;
	if (child)
		child->parent = parent;
}

static struct viommu__rnode *rotate_left(struct viommu__rtree *t,
					 struct viommu__rnode *x)
{
	struct viommu__rnode *y = x->right;

	x->right = y->left;
	if (y->left)
		y->left->parent = x;
	replace_child(t, x->parent, x, y);
	y->left = x;
	x->parent = y;
	fix_height(x);
	fix_height(y);
	return y;
}

static struct viommu__rnode *rotate_right(struct viommu__rtree *t,
					  struct viommu__rnode *x)
{
	struct viommu__rnode *y = x->left;

	x->left = y->right;
	if (y->right)
		y->right->parent = x;
	replace_child(t, x->parent, x, y);
	y->right = x;
	x->parent = y;
	fix_height(x);
	fix_height(y);
	return y;
}

/* Restore the AVL bound at @n; returns the subtree's new root. */
static struct viommu__rnode *balance(struct viommu__rtree *t,
				     struct viommu__rnode *n)
{
	int bf = height(n->left) - height(n->right);

	if (bf > 1) {
		/* a left-right shape needs the inner rotation first */
		if (height(n->left->left) < height(n->left->right))
			rotate_left(t, n->left);
		return rotate_right(t, n);
	}
	if (bf < -1) {
		if (height(n->right->right) < height(n->right->left))
			rotate_right(t, n->right);
		return rotate_left(t, n);
	}
	fix_height(n);
	return n;
}

/* Heights may have changed from @n up: fix every ancestor. */
static void rebalance_up(struct viommu__rtree *t, struct viommu__rnode *n)
{
	while (n)
		n = balance(t, n)->parent;
}

void viommu__rtree_insert(struct viommu__rtree *t, struct viommu__rnode *n)
{
	struct viommu__rnode **link = &t->root, *parent = NULL;

	while (*link) {
		parent = *link;
		link = n->start < parent->start ? &parent->left :
						  &parent->right;
	}
	n->left = n->right = NULL;
	n->parent = parent;
	n->height = 1;
	*link = n;
	t->count++;
	rebalance_up(t, parent);
}

void viommu__rtree_remove(struct viommu__rtree *t, struct viommu__rnode *n)
{
	struct viommu__rnode *fix_from;

	if (n->left && n->right) {
		/* the successor has no left child: it takes n's place */
		struct viommu__rnode *s = n->right;

		while (s->left)
			s = s->left;
		if (s->parent == n) {
			fix_from = s;
		} else {
			fix_from = s->parent;
			replace_child(t, s->parent, s, s->right);
			s->right = n->right;
			n->right->parent = s;
		}
		s->left = n->left;
		n->left->parent = s;
		replace_child(t, n->parent, n, s);
		s->height = n->height;
	} else {
		fix_from = n->parent;
		replace_child(t, n->parent, n, n->left ? n->left : n->right);
	}
	t->count--;
	rebalance_up(t, fix_from);
}

struct viommu__rnode *viommu__rtree_floor(const struct viommu__rtree *t,
					  uint64_t addr)
{
	struct viommu__rnode *n = t->root, *best = NULL;

	while (n) {
		if (n->start <= addr) {
			best = n;
			n = n->right;
		} else {
			n = n->left;
		}
	}
	return best;
}

struct viommu__rnode *viommu__rtree_find(const struct viommu__rtree *t,
					 uint64_t addr)
{
	struct viommu__rnode *n = viommu__rtree_floor(t, addr);

	return n && n->last >= addr ? n : NULL;
}

struct viommu__rnode *viommu__rtree_first(const struct viommu__rtree *t)
{
	struct viommu__rnode *n = t->root;

	while (n && n->left)
		n = n->left;
	return n;
}

struct viommu__rnode *viommu__rtree_next(const struct viommu__rnode *n)
{
	if (n->right) {
		n = n->right;
		while (n->left)
			n = n->left;
		return (struct viommu__rnode *)n;
	}
	while (n->parent && n->parent->right == n)
		n = n->parent;
	return n->parent;
}

struct viommu__rnode *viommu__rtree_prev(const struct viommu__rnode *n)
{
	if (n->left) {
		n = n->left;
		while (n->right)
			n = n->right;
		return (struct viommu__rnode *)n;
	}
	while (n->parent && n->parent->left == n)
		n = n->parent;
	return n->parent;
}

struct viommu__rnode *viommu__rtree_first_overlap(const struct viommu__rtree *t,
						  uint64_t start, uint64_t last)
{
	struct viommu__rnode *n = viommu__rtree_floor(t, start);

	if (n && n->last >= start)
		return n;
	/* nodes do not overlap: only the one after the floor can reach in */
	n = n ? viommu__rtree_next(n) : viommu__rtree_first(t);
	return n && n->start <= last ? n : NULL;
}

/* Check the subtree at @n; its height through @h, its size through @count. */
static int validate(const struct viommu__rnode *n,
		    const struct viommu__rnode *parent, int *h, size_t *count)
{
	int lh, rh;

	if (!n) {
		*h = 0;
		return 0;
	}
	if (n->parent != parent || n->start > n->last)
		return -EINVAL;
	if (validate(n->left, n, &lh, count) ||
	    validate(n->right, n, &rh, count))
		return -EINVAL;
	if (n->height != 1 + (lh > rh ? lh : rh) || lh - rh > 1 || rh - lh > 1)
		return -EINVAL;
	*h = n->height;
	++*count;
	return 0;
}

int viommu__rtree_validate(const struct viommu__rtree *t)
{
	const struct viommu__rnode *n, *prev = NULL;
	size_t count = 0;
	int h;

	if (validate(t->root, NULL, &h, &count) || count != t->count)
		return -EINVAL;
	for (n = viommu__rtree_first(t); n; prev = n, n = viommu__rtree_next(n))
		if (prev && prev->last >= n->start)
			return -EINVAL;
	return 0;
}
