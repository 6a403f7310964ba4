/* SPDX-License-Identifier: MIT */
/*
 * What a map+unmap notifier was told, kept by `viommu run --verify` to check
 * the delivery rules as the events arrive and after every command.
 */
#ifndef VIOMMU_TOOLS_SHADOW_H
#define VIOMMU_TOOLS_SHADOW_H

#include <stddef.h>

#include <viommu/viommu.h>

struct shadow {
	struct viommu_entry *v; /* sorted by iova, never overlapping */
	size_t n, cap;
};

/* Returns 0, -EEXIST when @e overlaps a mapping held, or -ENOMEM. */
int shadow_map(struct shadow *s, const struct viommu_entry *e);

/*
 * Remove the mappings inside [start, last].  Returns 0, -EINVAL when the
 * range cuts a mapping held (nothing removed), -ENOENT when it holds none.
 */
int shadow_unmap(struct shadow *s, uint64_t start, uint64_t last);

void shadow_clear(struct shadow *s);

#endif
