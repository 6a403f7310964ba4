/* SPDX-License-Identifier: MIT */
/*
 * Finding the notifiers a range concerns without walking all of them.
 *
 * The live notifiers are sorted by start address and read as an implicit
 * balanced binary tree: the root of the slice [lo, hi) is its middle
 * element.  Each node also records the largest last address in its subtree,
 * so a query skips every subtree that ends before the range and stops at
 * the first node that starts after it: O(log n + k) for k hits.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

static int cmp_start(const void *a, const void *b)
{
	const struct viommu_notifier *x = *(struct viommu_notifier *const *)a;
	const struct viommu_notifier *y = *(struct viommu_notifier *const *)b;

	if (x->cfg.start != y->cfg.start)
		return x->cfg.start < y->cfg.start ? -1 : 1;
	/* registration order among equal starts keeps builds deterministic */
	return x->gen < y->gen ? -1 : x->gen > y->gen;
}

static uint64_t build_max(struct viommu__nindex *idx, size_t lo, size_t hi)
{
	size_t mid;
	uint64_t m, sub;

	if (lo >= hi)
		return 0;
	mid = lo + (hi - lo) / 2;
	m = idx->last[mid];
	sub = build_max(idx, lo, mid);
	if (sub > m)
		m = sub;
	sub = build_max(idx, mid + 1, hi);
	if (sub > m)
		m = sub;
	idx->max_last[mid] = m;
	return m;
}

void viommu__nindex_free(struct viommu__nindex *idx)
{
	free(idx->by_start);
	free(idx->start);
	free(idx->last);
	free(idx->max_last);
	*idx = (struct viommu__nindex){ 0 };
}

static void fill(struct viommu__nindex *idx, const struct viommu__nvec *live)
{
	size_t i, n = live->n;

	for (i = 0; i < n; i++)
		idx->by_start[i] = live->v[i];
	qsort(idx->by_start, n, sizeof(*idx->by_start), cmp_start);
	for (i = 0; i < n; i++) {
		idx->start[i] = idx->by_start[i]->cfg.start;
		idx->last[i] = idx->by_start[i]->cfg.last;
	}
	idx->n = n;
	build_max(idx, 0, n);
}

/*
 * Rebuild from the live notifiers.  Shrinking reuses the arrays, so
 * unregistering never needs memory; growing may fail with -ENOMEM and then
 * leaves the index as it was.
 */
int viommu__nindex_build(struct viommu__nindex *idx,
			 const struct viommu__nvec *live)
{
	struct viommu__nindex fresh = { 0 };
	size_t n = live->n;

	if (n <= idx->cap) {
		fill(idx, live);
		return 0;
	}
	fresh.by_start = malloc(n * sizeof(*fresh.by_start));
	fresh.start = malloc(n * sizeof(*fresh.start));
	fresh.last = malloc(n * sizeof(*fresh.last));
	fresh.max_last = malloc(n * sizeof(*fresh.max_last));
	if (!fresh.by_start || !fresh.start || !fresh.last || !fresh.max_last) {
		viommu__nindex_free(&fresh);
		return -ENOMEM;
	}
	fresh.cap = n;
	fill(&fresh, live);
	viommu__nindex_free(idx);
	*idx = fresh;
	return 0;
}

static int query(const struct viommu__nindex *idx, size_t lo, size_t hi,
		 uint64_t start, uint64_t last, struct viommu__nvec *out)
{
	int ret;

	/* Loop on the right child, recurse on the left: depth is O(log n). */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (idx->max_last[mid] < start)
			return 0; /* everything here ends before the range */
		ret = query(idx, lo, mid, start, last, out);
		if (ret)
			return ret;
		if (idx->start[mid] > last)
			return 0; /* mid and all to its right start after it */
		if (idx->last[mid] >= start) {
			ret = viommu__nvec_push(out, idx->by_start[mid]);
			if (ret)
				return ret;
		}
		lo = mid + 1;
	}
	return 0;
}

/*
 * Append to @out the notifiers whose range overlaps [start, last], in
 * registration order.  Returns 0 or -ENOMEM.
 */
int viommu__nindex_query(const struct viommu__nindex *idx, uint64_t start,
			 uint64_t last, struct viommu__nvec *out)
{
	size_t first = out->n, i, j;
	int ret;

	ret = query(idx, 0, idx->n, start, last, out);
	if (ret)
		return ret;
	/* Usually one or two hits: insertion sort into registration order. */
	for (i = first + 1; i < out->n; i++) {
		struct viommu_notifier *n = out->v[i];

		for (j = i; j > first && out->v[j - 1]->gen > n->gen; j--)
			out->v[j] = out->v[j - 1];
		out->v[j] = n;
	}
	return 0;
}
