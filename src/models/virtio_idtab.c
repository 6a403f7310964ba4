/* SPDX-License-Identifier: MIT */
/*
 * ID tables; see virtio_idtab.h.
 *
 * Invariant: an ID sits at its home slot or after it, with no free slot in
 * between (cyclically), so a lookup stops at the first free slot.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "virtio_idtab.h"

static size_t home(const struct viommu__idtab *t, uint32_t id)
{
	/* Fibonacci hashing: consecutive IDs land far apart */
	return (size_t)((id * UINT64_C(0x9e3779b97f4a7c15)) >> 32) &
	       (t->cap - 1);
}

static size_t slot_of(const struct viommu__idtab *t, uint32_t id)
{
	size_t i = home(t, id);

	while (t->slots[i].obj && t->slots[i].id != id)
		i = (i + 1) & (t->cap - 1);
	return i;
}

void viommu__idtab_init(struct viommu__idtab *t)
{
	*t = (struct viommu__idtab){ 0 };
}

void viommu__idtab_destroy(struct viommu__idtab *t)
{
	free(t->slots);
	viommu__idtab_init(t);
}

void *viommu__idtab_find(const struct viommu__idtab *t, uint32_t id)
{
	if (!t->cap)
		return NULL;
	return t->slots[slot_of(t, id)].obj;
}

static int grow(struct viommu__idtab *t)
{
	struct viommu__idtab old = *t;
	size_t i;

	t->cap = old.cap ? old.cap * 2 : 16;
	t->slots = calloc(t->cap, sizeof(*t->slots));
	if (!t->slots) {
		*t = old;
		return -ENOMEM;
	}
	for (i = 0; i < old.cap; i++)
		if (old.slots[i].obj)
			t->slots[slot_of(t, old.slots[i].id)] = old.slots[i];
	free(old.slots);
	return 0;
}

int viommu__idtab_insert(struct viommu__idtab *t, uint32_t id, void *obj)
{
	size_t i;

	/* at most half full keeps probe sequences short */
	if (2 * (t->n + 1) > t->cap && grow(t))
		return -ENOMEM;
	i = slot_of(t, id);
	t->slots[i] = (struct viommu__idtab_slot){ id, obj };
	t->n++;
	return 0;
}

void viommu__idtab_remove(struct viommu__idtab *t, uint32_t id)
{
	size_t mask = t->cap - 1, i, j;

	if (!t->cap)
		return;
	i = slot_of(t, id);
	if (!t->slots[i].obj)
		return;
	t->slots[i].obj = NULL;
	t->n--;
	/*
	 * Backward shift: pull later IDs of the probe run into the hole when
	 * their home does not lie cyclically in (i, j], so the invariant
	 * holds without tombstones.
	 */
	for (j = (i + 1) & mask; t->slots[j].obj; j = (j + 1) & mask) {
		size_t k = home(t, t->slots[j].id);
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);

		if (stays)
			continue;
		t->slots[i] = t->slots[j];
		t->slots[j].obj = NULL;
		i = j;
	}
}
