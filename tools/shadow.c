/* SPDX-License-Identifier: MIT */
/*
 * A sorted array is plenty for scenario files; the library itself keeps its
 * entries in a B+tree.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shadow.h"

static uint64_t last_of(const struct viommu_entry *e)
{
	return e->iova + e->addr_mask;
}

/* Index of the first entry whose last address is >= @addr. */
static size_t first_ending_at_or_after(const struct shadow *s, uint64_t addr)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (last_of(&s->v[mid]) < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int shadow_map(struct shadow *s, const struct viommu_entry *e)
{
	size_t i = first_ending_at_or_after(s, e->iova);

	if (i < s->n && s->v[i].iova <= last_of(e))
		return -EEXIST;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;
		struct viommu_entry *nv = realloc(s->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = cap;
	}
	memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
	s->v[i] = *e;
	s->n++;
	return 0;
}

int shadow_unmap(struct shadow *s, uint64_t start, uint64_t last)
{
	size_t i = first_ending_at_or_after(s, start), j;

	for (j = i; j < s->n && s->v[j].iova <= last; j++)
		if (s->v[j].iova < start || last_of(&s->v[j]) > last)
			return -EINVAL;
	if (j == i)
		return -ENOENT;
	memmove(&s->v[i], &s->v[j], (s->n - j) * sizeof(*s->v));
	s->n -= j - i;
	return 0;
}

void shadow_clear(struct shadow *s)
{
	free(s->v);
	*s = (struct shadow){ 0 };
}
