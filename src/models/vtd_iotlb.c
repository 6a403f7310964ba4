/* SPDX-License-Identifier: MIT */
/*
 * The IOTLB: recently used leaves, per domain, in front of translate.
 *
 * A direct-mapped cache: a leaf of level L (4K, 2M or 1G) lives in the one
 * slot its (domain, level, iova >> shift) hashes to, so a lookup probes at
 * most three slots and an insert just overwrites.  A page-selective
 * invalidation of a few pages probes the slots its leaves hash to; wider
 * ones and domain invalidations scan the slots (a few microseconds for the
 * default 4096).  Hits are read without a lock (see translate_hit() in
 * vtd.c): the fields are read with relaxed atomics and the unit's sequence
 * count tells whether a writer was at work.
 */
#include <errno.h>
#include <stdlib.h>

#include "vtd_internal.h"

static unsigned shift_of(unsigned level)
{
	return viommu__vtd_level_shift(level);
}

static unsigned slot_of(const struct vtd_iotlb *t, uint16_t did, unsigned level,
			uint64_t tag)
{
	/*
	 * Mix the whole key before taking the index: a plain product's low
	 * bits never see the high bits of its input, which would put the
	 * leaves of every level and of many domains in one slot.
	 */
	uint64_t h =
		tag * UINT64_C(0x9e3779b97f4a7c15) ^
		((uint64_t)did << 2 | level) * UINT64_C(0xc2b2ae3d27d4eb4f);

	h ^= h >> 31;
	h *= UINT64_C(0x94d049bb133111eb);
	h ^= h >> 29;
	return (unsigned)h & t->mask;
}

int vtd_iotlb_init(struct vtd_iotlb *t, unsigned entries)
{
	unsigned n = 1;

	while (n < entries && n < (1u << 24))
		n <<= 1;
	t->slot = calloc(n, sizeof(*t->slot));
	if (!t->slot)
		return -ENOMEM;
	t->mask = n - 1;
	return 0;
}

void vtd_iotlb_free(struct vtd_iotlb *t)
{
	free(t->slot);
	t->slot = NULL;
}

bool vtd_iotlb_lookup(struct vtd_iotlb *t, uint16_t did, uint64_t iova,
		      struct viommu_entry *out)
{
	unsigned level;

	for (level = 1; level <= 3; level++) {
		uint64_t tag = iova >> shift_of(level);
		const struct vtd_iotlb_slot *s =
			&t->slot[slot_of(t, did, level, tag)];

		/* may race a writer: the caller checks the sequence count */
		if (__atomic_load_n(&s->level, __ATOMIC_RELAXED) == level &&
		    __atomic_load_n(&s->did, __ATOMIC_RELAXED) == did &&
		    __atomic_load_n(&s->tag, __ATOMIC_RELAXED) == tag) {
			out->iova = tag << shift_of(level);
			out->addr_mask = (UINT64_C(1) << shift_of(level)) - 1;
			out->translated_addr =
				__atomic_load_n(&s->pa, __ATOMIC_RELAXED);
			out->perm = __atomic_load_n(&s->perm, __ATOMIC_RELAXED);
			return true;
		}
	}
	return false;
}

void vtd_iotlb_insert(struct vtd_iotlb *t, uint16_t did,
		      const struct viommu_entry *e)
{
	unsigned level;

	for (level = 1; level <= 3; level++)
		if (e->addr_mask == (UINT64_C(1) << shift_of(level)) - 1)
			break;
	if (level > 3)
		return; /* not a leaf size the cache knows */
	uint64_t tag = e->iova >> shift_of(level);
	struct vtd_iotlb_slot *s = &t->slot[slot_of(t, did, level, tag)];

	*s = (struct vtd_iotlb_slot){ tag, e->translated_addr, did,
				      (uint8_t)level, (uint8_t)e->perm };
}

void vtd_iotlb_flush_all(struct vtd_iotlb *t)
{
	unsigned i;

	for (i = 0; i <= t->mask; i++)
		t->slot[i].level = 0;
}

void vtd_iotlb_flush_domain(struct vtd_iotlb *t, uint16_t did)
{
	unsigned i;

	for (i = 0; i <= t->mask; i++)
		if (t->slot[i].did == did)
			t->slot[i].level = 0;
}

/* Drop the one slot a (domain, level, tag) lives in, if it is there. */
static void drop_tag(struct vtd_iotlb *t, uint16_t did, unsigned level,
		     uint64_t tag)
{
	struct vtd_iotlb_slot *s = &t->slot[slot_of(t, did, level, tag)];

	if (s->level == level && s->did == did && s->tag == tag)
		s->level = 0;
}

void vtd_iotlb_flush_range(struct vtd_iotlb *t, uint16_t did, uint64_t start,
			   uint64_t last)
{
	unsigned i, level;

	/*
	 * A page-selective invalidation usually covers a few pages: probe
	 * the slots their leaves of each size hash to, so the cost follows
	 * the range, not the cache.  Wide ranges scan the slots instead.
	 */
	if (((last - start) >> 12) < 64) {
		for (level = 1; level <= 3; level++) {
			uint64_t tag;

			for (tag = start >> shift_of(level);
			     tag <= last >> shift_of(level); tag++)
				drop_tag(t, did, level, tag);
		}
		return;
	}
	for (i = 0; i <= t->mask; i++) {
		struct vtd_iotlb_slot *s = &t->slot[i];
		uint64_t lo, hi;

		if (!s->level || s->did != did)
			continue;
		lo = s->tag << shift_of(s->level);
		hi = lo + ((UINT64_C(1) << shift_of(s->level)) - 1);
		if (hi >= start && lo <= last)
			s->level = 0;
	}
}
