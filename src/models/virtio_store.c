/* SPDX-License-Identifier: MIT */
/*
 * An AVL tree of non-overlapping ranges keyed by their start; see
 * virtio_store.h for why.
 *
 * Invariants, for every node n:
 *  - every range in n->child[0] ends before n->start, every range in
 *    n->child[1] starts after n->last (ranges never overlap, so ordering by
 *    start orders them by last too);
 *  - n->height = 1 + the larger height of its children, and those differ
 *    by at most one.
 * Recursion depth is the tree's height, which the second invariant bounds
 * by 1.44 log2(n + 2).
 */
#include <stdlib.h>

#include "virtio_store.h"

#define LEFT 0
#define RIGHT 1

static unsigned height(const struct viommu__vmapping *n)
{
	return n ? n->height : 0;
}

static void update_height(struct viommu__vmapping *n)
{
	unsigned l = height(n->child[LEFT]), r = height(n->child[RIGHT]);

	n->height = (uint8_t)(1 + (l > r ? l : r));
}

/* Lift n's child on side @dir into n's place; returns the new root. */
static struct viommu__vmapping *rotate(struct viommu__vmapping *n, int dir)
{
	struct viommu__vmapping *c = n->child[dir];

	n->child[dir] = c->child[!dir];
	c->child[!dir] = n;
	update_height(n);
	update_height(c);
	return c;
}

/* Restore the balance of @n, whose subtrees are balanced and differ by <= 2. */
static struct viommu__vmapping *rebalance(struct viommu__vmapping *n)
{
	int diff = (int)height(n->child[LEFT]) - (int)height(n->child[RIGHT]);
	int dir;

	if (diff >= -1 && diff <= 1) {
		update_height(n);
		return n;
	}
	dir = diff > 0 ? LEFT : RIGHT;
	/* the heavy child leaning outwards would stay unbalanced: straighten */
	if (height(n->child[dir]->child[!dir]) >
	    height(n->child[dir]->child[dir]))
		n->child[dir] = rotate(n->child[dir], !dir);
	return rotate(n, dir);
}

static struct viommu__vmapping *insert(struct viommu__vmapping *n,
				       struct viommu__vmapping *m)
{
	if (!n) {
		m->child[LEFT] = m->child[RIGHT] = NULL;
		m->height = 1;
		return m;
	}
	if (m->start < n->start)
		n->child[LEFT] = insert(n->child[LEFT], m);
	else
		n->child[RIGHT] = insert(n->child[RIGHT], m);
	return rebalance(n);
}

static struct viommu__vmapping *remove_min(struct viommu__vmapping *n,
					   struct viommu__vmapping **min)
{
	if (!n->child[LEFT]) {
		*min = n;
		return n->child[RIGHT];
	}
	n->child[LEFT] = remove_min(n->child[LEFT], min);
	return rebalance(n);
}

static struct viommu__vmapping *remove_key(struct viommu__vmapping *n,
					   uint64_t start,
					   struct viommu__vmapping **out)
{
	struct viommu__vmapping *succ;

	if (!n)
		return NULL;
	if (start < n->start) {
		n->child[LEFT] = remove_key(n->child[LEFT], start, out);
	} else if (start > n->start) {
		n->child[RIGHT] = remove_key(n->child[RIGHT], start, out);
	} else {
		*out = n;
		if (!n->child[LEFT] || !n->child[RIGHT])
			return n->child[LEFT] ? n->child[LEFT] :
						n->child[RIGHT];
		/* the successor takes n's place */
		n->child[RIGHT] = remove_min(n->child[RIGHT], &succ);
		succ->child[LEFT] = n->child[LEFT];
		succ->child[RIGHT] = n->child[RIGHT];
		n = succ;
	}
	return rebalance(n);
}

static void destroy(struct viommu__vmapping *n)
{
	if (!n)
		return;
	destroy(n->child[LEFT]);
	destroy(n->child[RIGHT]);
	free(n);
}

void viommu__vstore_init(struct viommu__vstore *s)
{
	s->root = NULL;
	s->count = 0;
}

void viommu__vstore_destroy(struct viommu__vstore *s)
{
	destroy(s->root);
	viommu__vstore_init(s);
}

void viommu__vstore_insert(struct viommu__vstore *s, struct viommu__vmapping *m)
{
	s->root = insert(s->root, m);
	s->count++;
}

struct viommu__vmapping *viommu__vstore_remove(struct viommu__vstore *s,
					       uint64_t start)
{
	struct viommu__vmapping *out = NULL;

	s->root = remove_key(s->root, start, &out);
	if (!out)
		return NULL;
	s->count--;
	out->child[LEFT] = out->child[RIGHT] = NULL;
	return out;
}

struct viommu__vmapping *viommu__vstore_find(const struct viommu__vstore *s,
					     uint64_t addr, uint64_t *gap_start,
					     uint64_t *gap_last)
{
	struct viommu__vmapping *n = s->root;
	uint64_t lo = 0, hi = UINT64_MAX;

	/* lo and hi close in on the gap between addr's two neighbours */
	while (n) {
		if (addr < n->start) {
			hi = n->start - 1;
			n = n->child[LEFT];
		} else if (addr > n->last) {
			lo = n->last + 1;
			n = n->child[RIGHT];
		} else {
			return n;
		}
	}
	if (gap_start)
		*gap_start = lo;
	if (gap_last)
		*gap_last = hi;
	return NULL;
}

struct viommu__vmapping *
viommu__vstore_first_from(const struct viommu__vstore *s, uint64_t addr)
{
	struct viommu__vmapping *n = s->root, *best = NULL;

	while (n) {
		if (n->start >= addr) {
			best = n;
			n = n->child[LEFT];
		} else {
			n = n->child[RIGHT];
		}
	}
	return best;
}

struct viommu__vmapping *
viommu__vstore_first_overlap(const struct viommu__vstore *s, uint64_t start,
			     uint64_t last)
{
	struct viommu__vmapping *m = viommu__vstore_find(s, start, NULL, NULL);

	/* a mapping covering start comes first; else the first one after it */
	if (m)
		return m;
	m = viommu__vstore_first_from(s, start);
	return m && m->start <= last ? m : NULL;
}

static int walk(const struct viommu__vmapping *n, uint64_t start, uint64_t last,
		viommu__vstore_fn fn, void *ctx)
{
	int ret;

	if (!n)
		return 0;
	/* the left subtree lies below n->start, the right one above n->last */
	if (start < n->start) {
		ret = walk(n->child[LEFT], start, last, fn, ctx);
		if (ret)
			return ret;
	}
	if (n->start <= last && n->last >= start) {
		ret = fn(ctx, n);
		if (ret)
			return ret;
	}
	if (last > n->last)
		return walk(n->child[RIGHT], start, last, fn, ctx);
	return 0;
}

int viommu__vstore_walk(const struct viommu__vstore *s, uint64_t start,
			uint64_t last, viommu__vstore_fn fn, void *ctx)
{
	if (start > last)
		return 0;
	return walk(s->root, start, last, fn, ctx);
}
