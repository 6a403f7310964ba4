/* SPDX-License-Identifier: MIT */
/*
 * Cutting ranges into naturally aligned powers of two.
 */
#include "internal.h"

/*
 * The addr_mask of the largest naturally aligned power of two that starts at
 * @start and ends at or before @last (start <= last).
 */
uint64_t viommu__largest_aligned_mask(uint64_t start, uint64_t last)
{
	uint64_t align_mask = start ? (start & -start) - 1 : UINT64_MAX;
	uint64_t span = last - start; /* size - 1; never overflows */
	uint64_t fit_mask;

	if (span == UINT64_MAX)
		fit_mask = UINT64_MAX;
	else
		fit_mask =
			(UINT64_C(1) << (63 - __builtin_clzll(span + 1))) - 1;
	return align_mask < fit_mask ? align_mask : fit_mask;
}

int viommu_split_range(uint64_t start, uint64_t last, viommu_walk_fn fn,
		       void *ctx)
{
	struct viommu_entry piece = { 0 };
	int ret;

	if (start > last)
		return 0;
	for (;;) {
		piece.iova = start;
		piece.addr_mask = viommu__largest_aligned_mask(start, last);
		ret = fn(ctx, &piece);
		if (ret)
			return ret;
		if (viommu__last(&piece) == last)
			return 0;
		start = viommu__last(&piece) + 1;
	}
}
