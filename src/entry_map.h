/* SPDX-License-Identifier: MIT */
/*
 * The entries an address space holds: non-overlapping, naturally aligned
 * power-of-two translations ordered by IOVA, in a B+tree whose leaves pack
 * the entries in parallel arrays (about 18 bytes an entry when full).
 *
 * Not thread-safe: the caller serializes (see as.c).  Any insert or remove
 * invalidates every cursor.
 */
#ifndef VIOMMU_ENTRY_MAP_H
#define VIOMMU_ENTRY_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <viommu/viommu.h>

struct viommu__emap_node;

struct viommu__emap {
	struct viommu__emap_node *root;
	unsigned height; /* 0 when empty, 1 when the root is a leaf */
	size_t count;	 /* entries */
	size_t bytes;	 /* bytes allocated for the nodes holding entries */
	void *spare;	 /* one freed leaf, kept for the next allocation */
};

/* A position in the map: a leaf and a slot in it.  leaf == NULL: the end. */
struct viommu__emap_cursor {
	struct viommu__emap_node *leaf;
	unsigned slot;
};

void viommu__emap_init(struct viommu__emap *map);
void viommu__emap_destroy(struct viommu__emap *map);

/*
 * Insert @e; the caller guarantees it overlaps no entry held.
 * Returns 0 or -ENOMEM (the map is then unchanged).
 */
int viommu__emap_insert(struct viommu__emap *map, const struct viommu_entry *e);

/*
 * Give the entry starting exactly at @e->iova, of @e's size, @e's target
 * and permissions, in place (no allocation).  Returns 0 or -ENOENT.
 */
int viommu__emap_replace(struct viommu__emap *map,
			 const struct viommu_entry *e);

/* Remove the entry starting exactly at @iova.  Returns 0 or -ENOENT. */
int viommu__emap_remove(struct viommu__emap *map, uint64_t iova);

/*
 * Position @c at the first entry whose last address is >= @addr (the entry
 * covering @addr, or else the next one).  Returns false (and an end cursor)
 * when there is none.
 */
bool viommu__emap_seek(const struct viommu__emap *map, uint64_t addr,
		       struct viommu__emap_cursor *c);

/* The entry at @c; @c must not be the end. */
void viommu__emap_get(const struct viommu__emap_cursor *c,
		      struct viommu_entry *out);

/* The IOVA of the entry at @c, without decoding the rest. */
uint64_t viommu__emap_iova(const struct viommu__emap_cursor *c);

/* Advance @c; returns false when it reached the end. */
bool viommu__emap_next(struct viommu__emap_cursor *c);

/* Find the entry covering @addr. */
bool viommu__emap_lookup(const struct viommu__emap *map, uint64_t addr,
			 struct viommu_entry *out);

#endif /* VIOMMU_ENTRY_MAP_H */
