/* SPDX-License-Identifier: MIT */
/*
 * Test doubles for the VT-d page-table tests and the fuzzer:
 *  - a slow, obviously right reference translator that reads one entry at a
 *    time through the memory's read op and spells the reserved bits out
 *    from the specification's field lists, and a reference walk that steps
 *    through a range with it;
 *  - guest memory over a plain buffer, with or without the page op;
 *  - a growable list of entries for walk callbacks.
 * Header-only so each test stays one executable.
 */
#ifndef VIOMMU_TEST_VTD_REF_H
#define VIOMMU_TEST_VTD_REF_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <viommu/guest_memory.h>
#include <viommu/viommu.h>

#include "models/vtd_pgtable.h"

/* --- reference translation --------------------------------------------- */

static inline uint64_t ref_bit(unsigned b)
{
	return UINT64_C(1) << b;
}

/* The reserved bits of a present entry, field by field. */
static inline uint64_t ref_reserved(const struct viommu__vtd_pt_config *cfg,
				    unsigned level, bool leaf)
{
	unsigned haw = cfg->haw ? cfg->haw : (cfg->aw < 52 ? cfg->aw : 52);
	uint64_t r = 0;
	unsigned b;

	for (b = haw; b <= 51; b++) /* address bits the host lacks */
		r |= ref_bit(b);
	if (!leaf || !cfg->snoop) /* SNP: leaves, with snoop control */
		r |= ref_bit(11);
	if (!leaf || !cfg->transient) /* TM: leaves, with device TLBs */
		r |= ref_bit(62);
	if (!leaf && level >= 4) /* no superpages at levels 4 and 5 */
		r |= ref_bit(7);
	if (leaf && level == 2) /* 2 MiB page: address bits 20:12 */
		for (b = 12; b <= 20; b++)
			r |= ref_bit(b);
	if (leaf && level == 3) /* 1 GiB page: address bits 29:12 */
		for (b = 12; b <= 29; b++)
			r |= ref_bit(b);
	return r;
}

struct ref_result {
	enum viommu_fault fault;
	struct viommu_entry entry;
	unsigned level;
	uint64_t pte;
};

static inline void ref_hole(struct ref_result *r, enum viommu_fault fault,
			    uint64_t iova, uint64_t size)
{
	r->fault = fault;
	r->entry.iova = iova / size * size;
	r->entry.addr_mask = size - 1;
	r->entry.translated_addr = 0;
	r->entry.perm = VIOMMU_PERM_NONE;
}

static inline void ref_translate(const struct viommu_guest_memory *mem,
				 uint64_t root,
				 const struct viommu__vtd_pt_config *cfg,
				 uint64_t iova, struct ref_result *r)
{
	unsigned levels = cfg->aw == 39 ? 3 : cfg->aw == 48 ? 4 : 5;
	unsigned level, perm = 3;
	uint64_t table = root;

	memset(r, 0, sizeof(*r));
	if (iova >= ref_bit(cfg->aw)) {
		ref_hole(r, VIOMMU_FAULT_OUT_OF_RANGE, iova, ref_bit(cfg->aw));
		return;
	}
	for (level = levels; level >= 1; level--) {
		unsigned shift = 12 + 9 * (level - 1);
		uint64_t size = ref_bit(shift);
		uint64_t idx = (iova >> shift) % 512;
		uint64_t pte;
		bool leaf;

		r->level = level;
		if (viommu_guest_read(mem, table + 8 * idx, &pte, 8)) {
			ref_hole(r, VIOMMU_FAULT_BAD_TABLE, iova, size * 512);
			return;
		}
		r->pte = pte;
		if ((pte & 3) == 0) {
			ref_hole(r, VIOMMU_FAULT_NOT_PRESENT, iova, size);
			return;
		}
		leaf = level == 1 ||
		       ((level == 2 || level == 3) && (pte & ref_bit(7)));
		if (pte & ref_reserved(cfg, level, leaf)) {
			ref_hole(r, VIOMMU_FAULT_RESERVED, iova, size);
			return;
		}
		perm &= (unsigned)(pte & 3);
		/* bits 51:12; those at and above HAW were checked zero */
		table = pte & (ref_bit(52) - 1) & ~UINT64_C(0xfff);
		if (leaf) {
			r->fault = VIOMMU_FAULT_NONE;
			r->entry.iova = iova / size * size;
			r->entry.addr_mask = size - 1;
			r->entry.translated_addr = table;
			r->entry.perm = perm;
			return;
		}
	}
}

/*
 * Step through [start, last] a leaf or a hole at a time.  Stops after
 * @max_steps translations with -E2BIG (only to bound hostile tables).
 * Returns like viommu__vtd_walk(); *@fault_at gets the faulting address.
 */
static inline int ref_walk(const struct viommu_guest_memory *mem, uint64_t root,
			   const struct viommu__vtd_pt_config *cfg,
			   uint64_t start, uint64_t last, viommu_walk_fn fn,
			   void *ctx, uint64_t max_steps,
			   struct ref_result *fault, uint64_t *fault_at)
{
	uint64_t a = start, steps = 0;
	struct ref_result r;
	int ret;

	if (last >= ref_bit(cfg->aw))
		last = ref_bit(cfg->aw) - 1;
	if (start > last)
		return 0;
	for (;;) {
		if (steps++ == max_steps)
			return -E2BIG;
		ref_translate(mem, root, cfg, a, &r);
		switch (r.fault) {
		case VIOMMU_FAULT_NONE:
			if (r.entry.perm) {
				ret = fn(ctx, &r.entry);
				if (ret)
					return ret;
			}
			break;
		case VIOMMU_FAULT_NOT_PRESENT:
			break;
		default:
			if (fault)
				*fault = r;
			if (fault_at)
				*fault_at = a;
			return r.fault == VIOMMU_FAULT_RESERVED ? -EINVAL :
								  -EFAULT;
		}
		if (r.entry.iova + r.entry.addr_mask >= last)
			return 0;
		a = r.entry.iova + r.entry.addr_mask + 1;
	}
}

/* --- guest memory over a buffer ---------------------------------------- */

struct bufmem {
	uint8_t *buf;
	uint64_t base, size; /* guest-physical [base, base + size) */
};

static inline int bufmem_read(void *opaque, uint64_t gpa, void *out, size_t len)
{
	struct bufmem *m = opaque;

	if (gpa < m->base || len > m->size || gpa - m->base > m->size - len)
		return -EFAULT;
	memcpy(out, m->buf + (gpa - m->base), len);
	return 0;
}

static inline int bufmem_write(void *opaque, uint64_t gpa, const void *in,
			       size_t len)
{
	struct bufmem *m = opaque;

	if (gpa < m->base || len > m->size || gpa - m->base > m->size - len)
		return -EFAULT;
	memcpy(m->buf + (gpa - m->base), in, len);
	return 0;
}

static inline const void *bufmem_page(void *opaque, uint64_t gpa)
{
	struct bufmem *m = opaque;

	if (gpa % 4096 || gpa < m->base || gpa - m->base >= m->size)
		return NULL;
	return m->buf + (gpa - m->base);
}

static const struct viommu_guest_memory_ops bufmem_ops = {
	.version = VIOMMU_GUEST_MEMORY_OPS_VERSION,
	.read = bufmem_read,
	.write = bufmem_write,
	.page = bufmem_page,
};

static const struct viommu_guest_memory_ops bufmem_nopage_ops = {
	.version = VIOMMU_GUEST_MEMORY_OPS_VERSION,
	.read = bufmem_read,
	.write = bufmem_write,
};

/* Any memory, seen without its page op: forces the walker's read path. */
static inline int nopage_read(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	return viommu_guest_read(opaque, gpa, buf, len);
}

static inline int nopage_write(void *opaque, uint64_t gpa, const void *buf,
			       size_t len)
{
	return viommu_guest_write(opaque, gpa, buf, len);
}

static const struct viommu_guest_memory_ops nopage_ops = {
	.version = VIOMMU_GUEST_MEMORY_OPS_VERSION,
	.read = nopage_read,
	.write = nopage_write,
};

static inline struct viommu_guest_memory
nopage_memory(const struct viommu_guest_memory *inner)
{
	struct viommu_guest_memory m = { &nopage_ops, (void *)inner };

	return m;
}

/* --- collecting walk results ------------------------------------------- */

struct entry_list {
	struct viommu_entry *e;
	size_t n, cap;
};

static inline int entry_list_add(void *ctx, const struct viommu_entry *e)
{
	struct entry_list *l = ctx;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		struct viommu_entry *v = realloc(l->e, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->e = v;
		l->cap = cap;
	}
	l->e[l->n++] = *e;
	return 0;
}

static inline void entry_list_free(struct entry_list *l)
{
	free(l->e);
	memset(l, 0, sizeof(*l));
}

static inline bool entry_equal(const struct viommu_entry *a,
			       const struct viommu_entry *b)
{
	return a->iova == b->iova && a->addr_mask == b->addr_mask &&
	       a->translated_addr == b->translated_addr && a->perm == b->perm;
}

#endif /* VIOMMU_TEST_VTD_REF_H */
