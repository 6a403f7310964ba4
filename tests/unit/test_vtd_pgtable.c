/* SPDX-License-Identifier: MIT */
/*
 * VT-d second-level page tables: the guest driver's map/unmap/raw writes
 * (vtd_guest_pt) and the model's translate and walk (vtd_pgtable), checked
 * against each other, against a slow reference walker, against a shadow of
 * what was mapped, and against a real Linux guest's tables.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <viommu/guest_memory.h>

#include "models/vtd_guest_pt.h"
#include "models/vtd_pgtable.h"
#include "vtd_ref.h"

#define KiB(x) ((uint64_t)(x) << 10)
#define MiB(x) ((uint64_t)(x) << 20)
#define GiB(x) ((uint64_t)(x) << 30)

#define RAM_SIZE GiB(1)
#define TABLES_BASE MiB(16)
#define TABLES_LIMIT MiB(256)

static const unsigned aws[] = { 39, 48, 57 };

/* One guest with one domain. */
struct env {
	struct viommu_ram *ram;
	struct viommu_guest_memory mem;
	struct viommu_guest_memory nopage; /* mem without its page op */
	struct viommu__vtd_alloc alloc;
	struct viommu__vtd_gpt gpt;
	struct viommu__vtd_pt_config cfg;
	struct viommu__vtd_pt pt;      /* through the page op */
	struct viommu__vtd_pt pt_slow; /* through read */
};

static void env_repoint(struct env *v)
{
	assert_int_equal(
		viommu__vtd_pt_init(&v->pt, &v->mem, v->gpt.root, &v->cfg), 0);
	assert_int_equal(viommu__vtd_pt_init(&v->pt_slow, &v->nopage,
					     v->gpt.root, &v->cfg),
			 0);
}

static struct env *env_new(unsigned aw)
{
	struct env *v = calloc(1, sizeof(*v));

	assert_non_null(v);
	assert_int_equal(viommu_ram_new(RAM_SIZE, &v->ram, NULL), 0);
	v->mem = viommu_ram_memory(v->ram);
	v->nopage = nopage_memory(&v->mem);
	assert_int_equal(viommu__vtd_alloc_init(&v->alloc, &v->mem, TABLES_BASE,
						TABLES_LIMIT),
			 0);
	assert_int_equal(viommu__vtd_gpt_init(&v->gpt, &v->alloc, aw), 0);
	v->cfg.aw = aw;
	env_repoint(v);
	return v;
}

static void env_free(struct env *v)
{
	viommu__vtd_gpt_fini(&v->gpt);
	viommu__vtd_alloc_fini(&v->alloc);
	viommu_ram_free(v->ram);
	free(v);
}

static void expect_leaf(struct env *v, uint64_t iova, uint64_t base,
			uint64_t size, uint64_t pa, unsigned perm)
{
	struct viommu_translation t;

	assert_int_equal(viommu__vtd_translate(&v->pt, iova, &t, NULL), 0);
	if (t.fault != VIOMMU_FAULT_NONE)
		fail_msg("iova 0x%" PRIx64 ": fault %d", iova, t.fault);
	assert_int_equal(t.entry.iova, base);
	assert_int_equal(t.entry.addr_mask, size - 1);
	assert_int_equal(t.entry.translated_addr, pa);
	assert_int_equal(t.entry.perm, perm);
}

static void expect_fault(struct env *v, uint64_t iova, enum viommu_fault f,
			 uint64_t hole, uint64_t hole_size)
{
	struct viommu_translation t;

	assert_int_equal(viommu__vtd_translate(&v->pt, iova, &t, NULL), 0);
	if (t.fault != f)
		fail_msg("iova 0x%" PRIx64 ": fault %d, expected %d", iova,
			 t.fault, f);
	assert_int_equal(t.entry.iova, hole);
	assert_int_equal(t.entry.addr_mask, hole_size - 1);
	assert_int_equal(t.entry.perm, VIOMMU_PERM_NONE);
}

/*
 * Fast translate and walk, through both memory paths, must agree with the
 * reference on [start, last] and at @n addresses picked in it.
 */
static void cross_check(struct env *v, uint64_t start, uint64_t last)
{
	const struct viommu__vtd_pt *pts[2] = { &v->pt, &v->pt_slow };
	struct entry_list ref = { 0 };
	struct ref_result rf = { 0 };
	uint64_t ref_at = 0;
	int ref_ret, i;

	ref_ret = ref_walk(&v->mem, v->gpt.root, &v->cfg, start, last,
			   entry_list_add, &ref, UINT64_MAX, &rf, &ref_at);
	for (i = 0; i < 2; i++) {
		struct entry_list got = { 0 };
		struct viommu__vtd_report rep;
		size_t k;
		int ret;

		ret = viommu__vtd_walk(pts[i], start, last, entry_list_add,
				       &got, &rep);
		assert_int_equal(ret, ref_ret);
		assert_int_equal(got.n, ref.n);
		for (k = 0; k < got.n; k++)
			assert_true(entry_equal(&got.e[k], &ref.e[k]));
		if (ret) {
			assert_int_equal(rep.fault, rf.fault);
			assert_int_equal(rep.iova, ref_at);
			assert_int_equal(rep.level, rf.level);
			assert_true(rep.message[0] != '\0');
		} else {
			assert_int_equal(rep.fault, VIOMMU_FAULT_NONE);
		}
		entry_list_free(&got);
	}
	entry_list_free(&ref);
}

/* Fast translate (both paths) equals the reference at @iova. */
static void cross_check_at(struct env *v, uint64_t iova)
{
	const struct viommu__vtd_pt *pts[2] = { &v->pt, &v->pt_slow };
	struct ref_result r;
	int i;

	ref_translate(&v->mem, v->gpt.root, &v->cfg, iova, &r);
	for (i = 0; i < 2; i++) {
		struct viommu_translation t;
		struct viommu__vtd_report rep;

		assert_int_equal(viommu__vtd_translate(pts[i], iova, &t, &rep),
				 0);
		if (t.fault != r.fault)
			fail_msg("iova 0x%" PRIx64 ": fault %d, reference %d",
				 iova, t.fault, r.fault);
		assert_true(entry_equal(&t.entry, &r.entry));
		assert_int_equal(rep.fault, r.fault);
		if (r.fault != VIOMMU_FAULT_OUT_OF_RANGE)
			assert_int_equal(rep.level, r.level);
		if (r.fault == VIOMMU_FAULT_NONE ||
		    r.fault == VIOMMU_FAULT_NOT_PRESENT ||
		    r.fault == VIOMMU_FAULT_RESERVED)
			assert_int_equal(rep.pte, r.pte);
	}
}

static int walk_all(struct env *v, struct entry_list *l,
		    struct viommu__vtd_report *rep)
{
	return viommu__vtd_walk(&v->pt, 0, UINT64_MAX, entry_list_add, l, rep);
}

/* --- geometry and arguments -------------------------------------------- */

static void test_geometry(void **state)
{
	struct viommu__vtd_pt_config cfg = { .aw = 48 };
	struct viommu__vtd_pt pt;
	struct env *v;

	assert_int_equal(viommu__vtd_levels(39), 3);
	assert_int_equal(viommu__vtd_levels(48), 4);
	assert_int_equal(viommu__vtd_levels(57), 5);
	assert_int_equal(viommu__vtd_levels(40), 0);
	assert_int_equal(viommu__vtd_level_shift(1), 12);
	assert_int_equal(viommu__vtd_level_shift(2), 21);
	assert_int_equal(viommu__vtd_level_shift(5), 48);
	assert_int_equal(viommu__vtd_index(UINT64_C(0x0000123456789000), 1),
			 0x189);
	assert_true(viommu__vtd_is_leaf(1, 1));
	assert_true(viommu__vtd_is_leaf(1 | VIOMMU__VTD_PTE_PS, 3));
	assert_false(viommu__vtd_is_leaf(1 | VIOMMU__VTD_PTE_PS, 4));
	assert_false(viommu__vtd_is_leaf(1, 2));

	v = env_new(48);
	assert_int_equal(viommu__vtd_pt_init(&pt, &v->mem, 0x1000, &cfg), 0);
	assert_int_equal(pt.levels, 4);
	assert_int_equal(pt.iova_last, (UINT64_C(1) << 48) - 1);
	assert_int_equal(pt.addr_mask, UINT64_C(0x0000fffffffff000));
	assert_int_equal(pt.budget, VIOMMU__VTD_WALK_BUDGET);
	assert_int_equal(viommu__vtd_pt_init(&pt, &v->mem, 0x1008, &cfg),
			 -EINVAL);
	cfg.aw = 47;
	assert_int_equal(viommu__vtd_pt_init(&pt, &v->mem, 0x1000, &cfg),
			 -EINVAL);
	cfg.aw = 57;
	assert_int_equal(viommu__vtd_pt_init(&pt, &v->mem, 0x1000, &cfg), 0);
	assert_int_equal(pt.addr_mask, VIOMMU__VTD_PTE_ADDR); /* HAW 52 */
	cfg.haw = 53;
	assert_int_equal(viommu__vtd_pt_init(&pt, &v->mem, 0x1000, &cfg),
			 -EINVAL);
	env_free(v);
}

static void test_argument_checks(void **state)
{
	struct env *v = env_new(39);
	struct viommu__vtd_gpt *g = &v->gpt;

	assert_int_equal(viommu__vtd_gpt_map(g, 0, 0, 0, 3, KiB(4)), -EINVAL);
	assert_int_equal(viommu__vtd_gpt_map(g, 0x800, 0, KiB(4), 3, KiB(4)),
			 -EINVAL);
	assert_int_equal(viommu__vtd_gpt_map(g, 0, 0x800, KiB(4), 3, KiB(4)),
			 -EINVAL);
	assert_int_equal(viommu__vtd_gpt_map(g, 0, 0, KiB(6), 3, KiB(4)),
			 -EINVAL);
	assert_int_equal(viommu__vtd_gpt_map(g, MiB(1), 0, MiB(2), 3, MiB(2)),
			 -EINVAL);
	assert_int_equal(viommu__vtd_gpt_map(g, 0, 0, KiB(8), 3, KiB(8)),
			 -EINVAL);
	assert_int_equal(viommu__vtd_gpt_map(g, 0, 0, KiB(4), 0, KiB(4)),
			 -EINVAL);
	assert_int_equal(viommu__vtd_gpt_map(g, 0, 0, KiB(4), 4, KiB(4)),
			 -EINVAL);
	assert_int_equal(viommu__vtd_gpt_map(g, GiB(512), 0, KiB(4), 3, KiB(4)),
			 -ERANGE);
	assert_int_equal(viommu__vtd_gpt_map(g, GiB(511), 0, GiB(2), 3, GiB(1)),
			 -ERANGE);
	assert_int_equal(viommu__vtd_gpt_map(g, 0, UINT64_C(1) << 52, KiB(4), 3,
					     KiB(4)),
			 -ERANGE);
	assert_int_equal(viommu__vtd_gpt_map(g, 0, UINT64_MAX & ~0xfffull,
					     KiB(8), 3, KiB(4)),
			 -ERANGE);
	assert_int_equal(viommu__vtd_gpt_unmap(g, 0, 0), -EINVAL);
	assert_int_equal(viommu__vtd_gpt_unmap(g, 0x10, KiB(4)), -EINVAL);
	assert_int_equal(viommu__vtd_gpt_unmap(g, GiB(511), GiB(2)), -ERANGE);
	assert_int_equal(viommu__vtd_gpt_unmap(g, 0, UINT64_MAX & ~0xfffull),
			 -ERANGE);
	assert_int_equal(viommu__vtd_gpt_write_pte(g, 0, 0, 0, false, 1),
			 -EINVAL);
	assert_int_equal(viommu__vtd_gpt_write_pte(g, 0, 4, 0, false, 1),
			 -EINVAL);
	assert_int_equal(viommu__vtd_gpt_write_pte(g, 0, 1, 0, false, 0),
			 -EINVAL);
	assert_int_equal(viommu__vtd_gpt_write_pte(g, GiB(512), 1, 0, false, 1),
			 -ERANGE);
	/* Nothing was written by the refused calls. */
	assert_int_equal(v->alloc.in_use, 1);
	env_free(v);
}

static void test_allocator(void **state)
{
	struct viommu_guest_memory mem;
	struct viommu__vtd_alloc a;
	struct viommu_ram *ram;
	uint64_t p[4], junk = 0x1234, back = 0;

	assert_int_equal(viommu_ram_new(MiB(1), &ram, NULL), 0);
	mem = viommu_ram_memory(ram);
	assert_int_equal(viommu__vtd_alloc_init(&a, &mem, 0x1000, 0x1000),
			 -EINVAL);
	assert_int_equal(viommu__vtd_alloc_init(&a, &mem, 0x1800, 0x4000),
			 -EINVAL);
	assert_int_equal(viommu__vtd_alloc_init(&a, &mem, 0x1000, 0x4000), 0);
	assert_int_equal(viommu__vtd_alloc_page(&a, &p[0]), 0);
	assert_int_equal(viommu__vtd_alloc_page(&a, &p[1]), 0);
	assert_int_equal(viommu__vtd_alloc_page(&a, &p[2]), 0);
	assert_int_equal(p[0], 0x1000);
	assert_int_equal(p[2], 0x3000);
	assert_int_equal(viommu__vtd_alloc_page(&a, &p[3]), -ENOMEM);
	assert_true(viommu__vtd_alloc_owns(&a, p[1]));
	assert_false(viommu__vtd_alloc_owns(&a, p[1] + 8));
	assert_false(viommu__vtd_alloc_owns(&a, 0x4000));
	assert_int_equal(a.in_use, 3);

	/* A page comes back zeroed, and freeing twice is refused. */
	assert_int_equal(viommu_guest_write(&mem, p[1] + 0x100, &junk, 8), 0);
	assert_int_equal(viommu__vtd_alloc_free(&a, p[1]), 0);
	assert_int_equal(viommu__vtd_alloc_free(&a, p[1]), -EINVAL);
	assert_int_equal(viommu__vtd_alloc_free(&a, 0x5000), -EINVAL);
	assert_false(viommu__vtd_alloc_owns(&a, p[1]));
	assert_int_equal(viommu__vtd_alloc_page(&a, &p[3]), 0);
	assert_int_equal(p[3], p[1]);
	assert_int_equal(viommu_guest_read(&mem, p[3] + 0x100, &back, 8), 0);
	assert_int_equal(back, 0);
	viommu__vtd_alloc_fini(&a);

	/* A region beyond the RAM: the page cannot be zeroed. */
	assert_int_equal(viommu__vtd_alloc_init(&a, &mem, MiB(1), MiB(2)), 0);
	assert_int_equal(viommu__vtd_alloc_page(&a, &p[0]), -EFAULT);
	assert_int_equal(a.in_use, 0);
	viommu__vtd_alloc_fini(&a);
	viommu_ram_free(ram);
}

/* --- map, translate, walk, unmap --------------------------------------- */

static void test_map_translate_matrix(void **state)
{
	static const uint64_t pages[] = { KiB(4), MiB(2), GiB(1) };
	size_t a, p;

	for (a = 0; a < 3; a++) {
		for (p = 0; p < 3; p++) {
			struct env *v = env_new(aws[a]);
			uint64_t ps = pages[p], top = UINT64_C(1) << aws[a];
			uint64_t lo = 3 * ps, hi = top - 2 * ps;
			uint64_t pa_lo = GiB(64), pa_hi = GiB(3) + 2 * ps;
			struct entry_list l = { 0 };
			struct viommu__vtd_report rep;

			/* two leaves low, two at the very top of the space */
			assert_int_equal(viommu__vtd_gpt_map(&v->gpt, lo, pa_lo,
							     2 * ps, 3, ps),
					 0);
			assert_int_equal(viommu__vtd_gpt_map(&v->gpt, hi, pa_hi,
							     2 * ps, 1, ps),
					 0);
			expect_leaf(v, lo, lo, ps, pa_lo, 3);
			expect_leaf(v, lo + ps + 0x123, lo + ps, ps, pa_lo + ps,
				    3);
			expect_leaf(v, top - 1, top - ps, ps, pa_hi + ps, 1);
			expect_leaf(v, hi, hi, ps, pa_hi, 1);
			expect_fault(v, lo + 2 * ps, VIOMMU_FAULT_NOT_PRESENT,
				     lo + 2 * ps, ps);
			expect_fault(v, top, VIOMMU_FAULT_OUT_OF_RANGE, top,
				     top);

			/* the report names the leaf */
			{
				struct viommu_translation t;

				viommu__vtd_translate(&v->pt, hi, &t, &rep);
				assert_int_equal(rep.fault, VIOMMU_FAULT_NONE);
				assert_int_equal(rep.level, p + 1);
				assert_int_equal(rep.pte & ~0x83ull, pa_hi);
			}

			assert_int_equal(walk_all(v, &l, &rep), 0);
			assert_int_equal(l.n, 4);
			assert_int_equal(l.e[0].iova, lo);
			assert_int_equal(l.e[1].iova, lo + ps);
			assert_int_equal(l.e[2].iova, hi);
			assert_int_equal(l.e[3].iova, hi + ps);
			assert_int_equal(l.e[3].addr_mask, ps - 1);
			assert_int_equal(l.e[3].translated_addr, pa_hi + ps);
			assert_int_equal(l.e[3].perm, 1);
			/* a walk costs the entries on the paths, no more */
			assert_true(rep.examined <=
				    (uint64_t)v->pt.levels * 2 * 512);
			entry_list_free(&l);

			/* a range inside one leaf gets the whole leaf */
			assert_int_equal(viommu__vtd_walk(&v->pt, lo + ps + 1,
							  lo + ps + 2,
							  entry_list_add, &l,
							  NULL),
					 0);
			assert_int_equal(l.n, 1);
			assert_int_equal(l.e[0].iova, lo + ps);
			entry_list_free(&l);
			cross_check(v, 0, UINT64_MAX);
			cross_check(v, lo + 1, hi);

			assert_int_equal(
				viommu__vtd_gpt_unmap(&v->gpt, lo, 2 * ps), 0);
			assert_int_equal(
				viommu__vtd_gpt_unmap(&v->gpt, hi, 2 * ps), 0);
			/* the top-level entry is empty again */
			expect_fault(v, lo, VIOMMU_FAULT_NOT_PRESENT,
				     lo & ~((top >> 9) - 1), top >> 9);
			assert_int_equal(walk_all(v, &l, NULL), 0);
			assert_int_equal(l.n, 0);
			/* empty tables were freed: only the root is left */
			assert_int_equal(v->alloc.in_use, 1);
			viommu__vtd_gpt_fini(&v->gpt);
			assert_int_equal(v->alloc.in_use, 0);
			env_free(v);
		}
	}
}

static void test_superpage_split_keeps_rest(void **state)
{
	size_t a;

	for (a = 0; a < 3; a++) {
		struct env *v = env_new(aws[a]);
		struct entry_list l = { 0 };
		uint64_t pa = GiB(5);
		size_t i, n4k = 0, n2m = 0;

		assert_int_equal(viommu__vtd_gpt_map(&v->gpt, GiB(2), pa,
						     GiB(1), 3, GiB(1)),
				 0);
		/* a 4K map inside: 1G -> 512 x 2M -> one 2M -> 512 x 4K */
		assert_int_equal(viommu__vtd_gpt_map(&v->gpt,
						     GiB(2) + MiB(2) + KiB(4),
						     0x7000, KiB(4), 1, KiB(4)),
				 0);
		expect_leaf(v, GiB(2) + MiB(2) + KiB(4),
			    GiB(2) + MiB(2) + KiB(4), KiB(4), 0x7000, 1);
		expect_leaf(v, GiB(2) + MiB(2), GiB(2) + MiB(2), KiB(4),
			    pa + MiB(2), 3);
		expect_leaf(v, GiB(2) + MiB(4) - 1, GiB(2) + MiB(4) - KiB(4),
			    KiB(4), pa + MiB(4) - KiB(4), 3);
		expect_leaf(v, GiB(2), GiB(2), MiB(2), pa, 3);
		expect_leaf(v, GiB(3) - 1, GiB(3) - MiB(2), MiB(2),
			    pa + GiB(1) - MiB(2), 3);

		assert_int_equal(walk_all(v, &l, NULL), 0);
		for (i = 0; i < l.n; i++) {
			n4k += l.e[i].addr_mask == KiB(4) - 1;
			n2m += l.e[i].addr_mask == MiB(2) - 1;
			if (i)
				assert_true(l.e[i].iova > l.e[i - 1].iova);
		}
		assert_int_equal(n4k, 512);
		assert_int_equal(n2m, 511);
		entry_list_free(&l);

		/* unmap 8K inside a 2M leaf: split, keep the other 510 */
		assert_int_equal(viommu__vtd_gpt_unmap(
					 &v->gpt, GiB(2) + MiB(10), KiB(8)),
				 0);
		expect_fault(v, GiB(2) + MiB(10) + KiB(4),
			     VIOMMU_FAULT_NOT_PRESENT,
			     GiB(2) + MiB(10) + KiB(4), KiB(4));
		expect_leaf(v, GiB(2) + MiB(10) + KiB(8),
			    GiB(2) + MiB(10) + KiB(8), KiB(4),
			    pa + MiB(10) + KiB(8), 3);
		expect_leaf(v, GiB(2) + MiB(12), GiB(2) + MiB(12), MiB(2),
			    pa + MiB(12), 3);

		/* unmap across a superpage boundary, partly covering both */
		assert_int_equal(viommu__vtd_gpt_unmap(
					 &v->gpt, GiB(2) + MiB(13), MiB(2)),
				 0);
		expect_leaf(v, GiB(2) + MiB(12), GiB(2) + MiB(12), KiB(4),
			    pa + MiB(12), 3);
		expect_fault(v, GiB(2) + MiB(13), VIOMMU_FAULT_NOT_PRESENT,
			     GiB(2) + MiB(13), KiB(4));
		expect_fault(v, GiB(2) + MiB(15) - 1, VIOMMU_FAULT_NOT_PRESENT,
			     GiB(2) + MiB(15) - KiB(4), KiB(4));
		expect_leaf(v, GiB(2) + MiB(15), GiB(2) + MiB(15), KiB(4),
			    pa + MiB(15), 3);
		cross_check(v, 0, UINT64_MAX);

		/* unmapping everything frees every table but the root */
		assert_int_equal(viommu__vtd_gpt_unmap(&v->gpt, 0, GiB(8)), 0);
		assert_int_equal(walk_all(v, &l, NULL), 0);
		assert_int_equal(l.n, 0);
		assert_int_equal(v->alloc.in_use, 1);
		env_free(v);
	}
}

static void test_superpage_replaces_table(void **state)
{
	struct env *v = env_new(48);
	struct entry_list l = { 0 };
	size_t before;

	assert_int_equal(
		viommu__vtd_gpt_map(&v->gpt, GiB(1), 0, MiB(4), 3, KiB(4)), 0);
	before = v->alloc.in_use; /* root, L3, L2, two L1 */
	assert_int_equal(before, 5);
	assert_int_equal(viommu__vtd_gpt_map(&v->gpt, GiB(1), GiB(9), MiB(2), 2,
					     MiB(2)),
			 0);
	assert_int_equal(v->alloc.in_use, before - 1);
	expect_leaf(v, GiB(1) + 5, GiB(1), MiB(2), GiB(9), 2);
	expect_leaf(v, GiB(1) + MiB(2), GiB(1) + MiB(2), KiB(4), MiB(2), 3);
	/* a 1G page over all of it frees the L2 and the other L1 */
	assert_int_equal(viommu__vtd_gpt_map(&v->gpt, GiB(1), GiB(9), GiB(1), 3,
					     GiB(1)),
			 0);
	assert_int_equal(v->alloc.in_use, 2);
	assert_int_equal(walk_all(v, &l, NULL), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.e[0].addr_mask, GiB(1) - 1);
	entry_list_free(&l);
	/* remapping an existing leaf in place just overwrites it */
	assert_int_equal(viommu__vtd_gpt_map(&v->gpt, GiB(1), GiB(10), GiB(1),
					     1, GiB(1)),
			 0);
	expect_leaf(v, GiB(1), GiB(1), GiB(1), GiB(10), 1);
	env_free(v);
}

/* --- hostile and broken tables ----------------------------------------- */

/* The entry at @level on the walk of @iova, as written by the driver. */
static void raw(struct env *v, uint64_t iova, unsigned level, uint64_t val)
{
	assert_int_equal(viommu__vtd_gpt_write_pte(&v->gpt, iova, level, val,
						   false, 1),
			 0);
}

static void expect_reserved(struct env *v, uint64_t iova, unsigned level)
{
	struct viommu_translation t;
	struct viommu__vtd_report rep;
	struct entry_list l = { 0 };
	uint64_t size = viommu__vtd_level_size(level);

	assert_int_equal(viommu__vtd_translate(&v->pt, iova, &t, &rep), 0);
	if (t.fault != VIOMMU_FAULT_RESERVED)
		fail_msg("iova 0x%" PRIx64 " level %u: fault %d", iova, level,
			 t.fault);
	assert_int_equal(rep.level, level);
	assert_int_equal(t.entry.iova, iova & ~(size - 1));
	assert_int_equal(t.entry.addr_mask, size - 1);
	assert_non_null(strstr(rep.message, "reserved"));
	assert_int_equal(viommu__vtd_walk(&v->pt, 0, UINT64_MAX, entry_list_add,
					  &l, &rep),
			 -EINVAL);
	assert_int_equal(rep.fault, VIOMMU_FAULT_RESERVED);
	assert_int_equal(rep.level, level);
	assert_int_equal(rep.iova, iova & ~(size - 1));
	entry_list_free(&l);
	cross_check(v, 0, UINT64_MAX);
	cross_check_at(v, iova);
}

static void expect_ok(struct env *v, uint64_t iova)
{
	struct viommu_translation t;

	assert_int_equal(viommu__vtd_translate(&v->pt, iova, &t, NULL), 0);
	if (t.fault != VIOMMU_FAULT_NONE)
		fail_msg("iova 0x%" PRIx64 ": fault %d", iova, t.fault);
	cross_check(v, 0, UINT64_MAX);
}

static void test_reserved_bits(void **state)
{
	struct env *v = env_new(48);
	const uint64_t at = GiB(7) + MiB(6) + KiB(12);
	uint64_t leaf = 0x5000 | 3, b;

	assert_int_equal(
		viommu__vtd_gpt_map(&v->gpt, at, 0x5000, KiB(4), 3, KiB(4)), 0);
	expect_ok(v, at);

	/* level-1 leaf: SNP, TM, address bits 48..51 are reserved */
	raw(v, at, 1, leaf | VIOMMU__VTD_PTE_SNP);
	expect_reserved(v, at, 1);
	raw(v, at, 1, leaf | VIOMMU__VTD_PTE_TM);
	expect_reserved(v, at, 1);
	for (b = 48; b <= 51; b++) {
		raw(v, at, 1, leaf | UINT64_C(1) << b);
		expect_reserved(v, at, 1);
	}
	/* ignored bits are ignored: 2..6, 7 (not PS at level 1), 8..10,
	 * 52..61, 63 */
	raw(v, at, 1, leaf | 0x7fc | UINT64_C(0xbff0000000000000));
	expect_ok(v, at);
	expect_leaf(v, at, at, KiB(4), 0x5000, 3);
	/* address bit 47 is an address under HAW 48 */
	raw(v, at, 1, leaf | UINT64_C(1) << 47);
	expect_leaf(v, at, at, KiB(4), 0x5000 | UINT64_C(1) << 47, 3);
	/* a not-present entry is not checked */
	raw(v, at, 1, VIOMMU__VTD_PTE_SNP | UINT64_C(1) << 51 | 0x5000);
	expect_fault(v, at, VIOMMU_FAULT_NOT_PRESENT, at, KiB(4));

	/* with snoop control and device TLBs, SNP and TM are fine in leaves */
	v->cfg.snoop = true;
	v->cfg.transient = true;
	env_repoint(v);
	raw(v, at, 1, leaf | VIOMMU__VTD_PTE_SNP | VIOMMU__VTD_PTE_TM);
	expect_ok(v, at);
	v->cfg.snoop = false;
	v->cfg.transient = false;
	env_repoint(v);

	/* superpages: address bits below their size are reserved */
	raw(v, at, 2, 0x40000000 | VIOMMU__VTD_PTE_PS | 3);
	expect_leaf(v, at, at & ~(MiB(2) - 1), MiB(2), 0x40000000, 3);
	raw(v, at, 2, 0x40001000 | VIOMMU__VTD_PTE_PS | 3);
	expect_reserved(v, at, 2);
	raw(v, at, 2, 0x40100000 | VIOMMU__VTD_PTE_PS | 3);
	expect_reserved(v, at, 2);
	raw(v, at, 3, GiB(3) | VIOMMU__VTD_PTE_PS | 3);
	expect_leaf(v, at, GiB(7), GiB(1), GiB(3), 3);
	raw(v, at, 3, (GiB(3) + MiB(2)) | VIOMMU__VTD_PTE_PS | 3);
	expect_reserved(v, at, 3);
	raw(v, at, 3, GiB(3) | VIOMMU__VTD_PTE_PS | VIOMMU__VTD_PTE_SNP | 3);
	expect_reserved(v, at, 3);

	env_free(v);
}

/* Where the entry at @level on the walk of @iova lives. */
static uint64_t entry_gpa(struct env *v, uint64_t iova, unsigned level)
{
	uint64_t table = v->gpt.root, pte = 0, gpa = 0;
	unsigned l;

	for (l = v->gpt.levels; l >= level; l--) {
		gpa = table + 8 * viommu__vtd_index(iova, l);
		assert_int_equal(viommu_guest_read(&v->mem, gpa, &pte, 8), 0);
		table = pte & VIOMMU__VTD_PTE_ADDR;
	}
	return gpa;
}

/* Rewrite the entry at @level on the walk of @iova: set @set, clear @clr. */
static void taint(struct env *v, uint64_t iova, unsigned level, uint64_t set,
		  uint64_t clr)
{
	uint64_t gpa = entry_gpa(v, iova, level), pte;

	assert_int_equal(viommu_guest_read(&v->mem, gpa, &pte, 8), 0);
	pte = (pte | set) & ~clr;
	assert_int_equal(viommu_guest_write(&v->mem, gpa, &pte, 8), 0);
}

static void test_reserved_bits_in_tables(void **state)
{
	size_t a;

	for (a = 0; a < 3; a++) {
		struct env *v = env_new(aws[a]);
		const uint64_t at = GiB(7) + MiB(6) + KiB(12);
		unsigned level;

		for (level = 2; level <= v->gpt.levels; level++) {
			uint64_t bits[] = { VIOMMU__VTD_PTE_SNP,
					    VIOMMU__VTD_PTE_TM,
					    level >= 4 ? VIOMMU__VTD_PTE_PS :
							 0 };
			size_t k;

			for (k = 0; k < 3; k++) {
				if (!bits[k])
					continue;
				assert_int_equal(
					viommu__vtd_gpt_map(&v->gpt, at, 0x5000,
							    KiB(4), 3, KiB(4)),
					0);
				/* snoop and TM are allowed in leaves only */
				v->cfg.snoop = v->cfg.transient = true;
				env_repoint(v);
				taint(v, at, level, bits[k], 0);
				expect_reserved(v, at, level);
				/* clean up through the driver */
				assert_int_equal(viommu__vtd_gpt_unmap(
							 &v->gpt, 0, GiB(8)),
						 0);
			}
			/* ignored bits of tables: 2..6, 8..10, 52..61, 63 */
			assert_int_equal(viommu__vtd_gpt_map(&v->gpt, at,
							     0x5000, KiB(4), 3,
							     KiB(4)),
					 0);
			taint(v, at, level,
			      0x77c | UINT64_C(0xbff0000000000000), 0);
			expect_ok(v, at);
			assert_int_equal(
				viommu__vtd_gpt_unmap(&v->gpt, 0, GiB(8)), 0);
		}
		/* above HAW (= AW, up to 52) in a table pointer */
		if (aws[a] < 52) {
			assert_int_equal(viommu__vtd_gpt_map(&v->gpt, at,
							     0x5000, KiB(4), 3,
							     KiB(4)),
					 0);
			taint(v, at, 2, UINT64_C(1) << aws[a], 0);
			expect_reserved(v, at, 2);
			assert_int_equal(
				viommu__vtd_gpt_unmap(&v->gpt, 0, GiB(8)), 0);
		}
		env_free(v);
	}
}

static void test_bad_table(void **state)
{
	struct env *v = env_new(39);
	struct viommu_translation t;
	struct viommu__vtd_report rep;
	struct entry_list l = { 0 };
	const uint64_t at = GiB(3) + MiB(4);

	assert_int_equal(viommu__vtd_gpt_map(&v->gpt, GiB(1), 0x1000, KiB(4), 3,
					     KiB(4)),
			 0);
	/* a level-2 entry pointing at a table beyond the RAM */
	raw(v, at, 2, (RAM_SIZE + MiB(1)) | 3);
	assert_int_equal(viommu__vtd_translate(&v->pt, at + 5, &t, &rep), 0);
	assert_int_equal(t.fault, VIOMMU_FAULT_BAD_TABLE);
	assert_int_equal(t.entry.iova, at);
	assert_int_equal(t.entry.addr_mask, MiB(2) - 1);
	assert_int_equal(rep.level, 1);
	assert_int_equal(rep.pte_gpa, RAM_SIZE + MiB(1));
	assert_non_null(strstr(rep.message, "not in guest RAM"));
	/* the walk gets the leaf before it, then stops */
	assert_int_equal(viommu__vtd_walk(&v->pt, 0, UINT64_MAX, entry_list_add,
					  &l, &rep),
			 -EFAULT);
	assert_int_equal(l.n, 1);
	assert_int_equal(rep.fault, VIOMMU_FAULT_BAD_TABLE);
	assert_int_equal(rep.iova, at);
	entry_list_free(&l);
	/* a walk that does not reach it is fine */
	assert_int_equal(viommu__vtd_walk(&v->pt, 0, at - 1, entry_list_add, &l,
					  &rep),
			 0);
	assert_int_equal(l.n, 1);
	entry_list_free(&l);
	cross_check(v, 0, UINT64_MAX);
	cross_check(v, at + MiB(2), UINT64_MAX);

	/* the guest driver cannot write through it either */
	assert_int_equal(viommu__vtd_gpt_map(&v->gpt, at, 0, KiB(4), 3, KiB(4)),
			 -EFAULT);
	raw(v, at, 2, 0);

	/* a root outside RAM */
	assert_int_equal(viommu__vtd_pt_init(&v->pt, &v->mem, GiB(2), &v->cfg),
			 0);
	assert_int_equal(viommu__vtd_translate(&v->pt, 0, &t, &rep), 0);
	assert_int_equal(t.fault, VIOMMU_FAULT_BAD_TABLE);
	assert_int_equal(t.entry.addr_mask, (UINT64_C(1) << 39) - 1);
	assert_int_equal(rep.level, 3);
	assert_int_equal(viommu__vtd_walk(&v->pt, 0, UINT64_MAX, entry_list_add,
					  &l, &rep),
			 -EFAULT);
	assert_int_equal(rep.fault, VIOMMU_FAULT_BAD_TABLE);
	assert_int_equal(rep.level, 3);
	entry_list_free(&l);
	env_free(v);
}

static void test_out_of_range(void **state)
{
	size_t a;

	for (a = 0; a < 3; a++) {
		struct env *v = env_new(aws[a]);
		uint64_t top = UINT64_C(1) << aws[a];
		struct viommu__vtd_report rep;
		struct viommu_translation t;
		struct entry_list l = { 0 };

		assert_int_equal(viommu__vtd_gpt_map(&v->gpt, top - MiB(2), 0,
						     MiB(2), 3, MiB(2)),
				 0);
		assert_int_equal(viommu__vtd_translate(&v->pt, top, &t, &rep),
				 0);
		assert_int_equal(t.fault, VIOMMU_FAULT_OUT_OF_RANGE);
		assert_int_equal(rep.fault, VIOMMU_FAULT_OUT_OF_RANGE);
		assert_int_equal(t.entry.iova, top);
		assert_int_equal(t.entry.addr_mask, top - 1);
		expect_fault(v, UINT64_MAX, VIOMMU_FAULT_OUT_OF_RANGE,
			     UINT64_MAX & ~(top - 1), top);
		/* walks are clipped to the address width */
		assert_int_equal(viommu__vtd_walk(&v->pt, top - 1, UINT64_MAX,
						  entry_list_add, &l, &rep),
				 0);
		assert_int_equal(l.n, 1);
		assert_int_equal(viommu__vtd_walk(&v->pt, top, UINT64_MAX,
						  entry_list_add, &l, &rep),
				 0);
		assert_int_equal(l.n, 1);
		assert_int_equal(rep.examined, 0);
		entry_list_free(&l);
		env_free(v);
	}
}

static void test_self_pointing_table(void **state)
{
	size_t a;

	for (a = 0; a < 3; a++) {
		struct env *v = env_new(aws[a]);
		struct viommu__vtd_report rep;
		struct entry_list l = { 0 };
		uint64_t iova = GiB(1) * 3 + MiB(2) * 5 + KiB(4) * 7;
		struct viommu_translation t;
		unsigned level;

		/* one self pointer in the root: followed level by level */
		assert_int_equal(viommu__vtd_gpt_write_pte(
					 &v->gpt, 0, v->gpt.levels, 0, true, 1),
				 0);
		assert_int_equal(viommu__vtd_translate(&v->pt, 0, &t, &rep), 0);
		assert_int_equal(t.fault, VIOMMU_FAULT_NONE);
		assert_int_equal(t.entry.translated_addr, v->gpt.root);
		assert_int_equal(rep.level, 1);
		assert_int_equal(viommu__vtd_walk(&v->pt, 0, UINT64_MAX,
						  entry_list_add, &l, &rep),
				 0);
		assert_int_equal(l.n, 1);
		entry_list_free(&l);
		cross_check(v, 0, UINT64_MAX);

		/* a self pointer at every level on the walk of @iova */
		for (level = v->gpt.levels; level >= 2; level--)
			assert_int_equal(viommu__vtd_gpt_write_pte(&v->gpt,
								   iova, level,
								   0, true, 1),
					 0);
		cross_check_at(v, iova);
		cross_check_at(v, iova + KiB(4));
		cross_check(v, 0, UINT64_MAX);
		/* the driver copes too: mapping through the loop ends */
		assert_int_equal(viommu__vtd_gpt_map(&v->gpt, 0, 0x9000, KiB(4),
						     3, KiB(4)),
				 0);
		cross_check(v, 0, UINT64_MAX);
		assert_int_equal(viommu__vtd_gpt_unmap(&v->gpt, 0,
						       UINT64_C(1)
							       << (aws[a] - 1)),
				 0);
		cross_check(v, 0, UINT64_MAX);
		env_free(v);
	}
}

static int count_entries(void *ctx, const struct viommu_entry *e)
{
	++*(uint64_t *)ctx;
	return 0;
}

static void test_walk_budget_self_loop(void **state)
{
	size_t a;

	for (a = 0; a < 3; a++) {
		struct env *v = env_new(aws[a]);
		struct viommu__vtd_report rep;
		struct entry_list l = { 0 };
		struct viommu_translation t;
		uint64_t count;
		unsigned level;

		/* every entry of the root points at the root: 512^levels
		 * leaves, all mapping the root page */
		assert_int_equal(viommu__vtd_gpt_write_pte(&v->gpt, 0,
							   v->gpt.levels, 0,
							   true, 1000),
				 0);
		assert_int_equal(viommu__vtd_translate(&v->pt,
						       UINT64_C(0x12345) << 12,
						       &t, &rep),
				 0);
		assert_int_equal(t.fault, VIOMMU_FAULT_NONE);
		assert_int_equal(t.entry.translated_addr, v->gpt.root);

		v->cfg.budget = 100000;
		env_repoint(v);
		assert_int_equal(viommu__vtd_walk(&v->pt, 0, UINT64_MAX,
						  entry_list_add, &l, &rep),
				 -E2BIG);
		assert_int_equal(rep.examined, 100000);
		assert_int_equal(rep.fault, VIOMMU_FAULT_BAD_TABLE);
		assert_non_null(strstr(rep.message, "budget"));
		/* what came before the stop is right */
		assert_true(l.n > 90000);
		for (level = 1; level < 3; level++)
			assert_int_equal(l.e[level].iova,
					 (uint64_t)level << 12);
		entry_list_free(&l);
		/* the same through the read path */
		v->pt_slow.budget = 4096;
		assert_int_equal(viommu__vtd_walk(&v->pt_slow, 0, UINT64_MAX,
						  entry_list_add, &l, &rep),
				 -E2BIG);
		assert_int_equal(rep.examined, 4096);
		entry_list_free(&l);
		/* exactly the budget is enough */
		v->pt.budget = (uint64_t)v->gpt.levels - 1 + 512;
		assert_int_equal(viommu__vtd_walk(&v->pt, 0, MiB(2) - 1,
						  entry_list_add, &l, &rep),
				 0);
		assert_int_equal(rep.examined, v->pt.budget);
		assert_int_equal(l.n, 512);
		entry_list_free(&l);
		v->pt.budget--;
		assert_int_equal(viommu__vtd_walk(&v->pt, 0, MiB(2) - 1,
						  entry_list_add, &l, &rep),
				 -E2BIG);
		assert_int_equal(l.n, 511);
		entry_list_free(&l);

		/* the default budget stops a whole-space walk too */
		v->cfg.budget = 0;
		env_repoint(v);
		count = 0;
		assert_int_equal(viommu__vtd_walk(&v->pt, 0, UINT64_MAX,
						  count_entries, &count, &rep),
				 -E2BIG);
		assert_int_equal(rep.examined, VIOMMU__VTD_WALK_BUDGET);
		assert_true(count > VIOMMU__VTD_WALK_BUDGET / 2);
		env_free(v);
	}
}

static void test_permission_and(void **state)
{
	struct env *v = env_new(48);
	const uint64_t at = GiB(4);
	struct entry_list l = { 0 };
	struct viommu_translation t;

	assert_int_equal(
		viommu__vtd_gpt_map(&v->gpt, at, 0x1000, KiB(8), 3, KiB(4)), 0);
	expect_leaf(v, at, at, KiB(4), 0x1000, 3);
	/* the level-3 table pointer loses W: the leaves are read-only */
	taint(v, at, 3, 0, VIOMMU__VTD_PTE_W);
	expect_leaf(v, at, at, KiB(4), 0x1000, 1);
	/* a write-only leaf under it: present, but no permission at all */
	raw(v, at + KiB(4), 1, 0x2000 | VIOMMU__VTD_PTE_W);
	assert_int_equal(viommu__vtd_translate(&v->pt, at + KiB(4), &t, NULL),
			 0);
	assert_int_equal(t.fault, VIOMMU_FAULT_NONE);
	assert_int_equal(t.entry.perm, VIOMMU_PERM_NONE);
	/* walks only report what can be used */
	assert_int_equal(walk_all(v, &l, NULL), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.e[0].perm, VIOMMU_PERM_READ);
	entry_list_free(&l);
	cross_check(v, 0, UINT64_MAX);
	env_free(v);
}

static int stop_after_three(void *ctx, const struct viommu_entry *e)
{
	unsigned *n = ctx;

	return ++*n == 3 ? 42 : 0;
}

static void test_walk_callback_stops(void **state)
{
	struct env *v = env_new(39);
	struct viommu__vtd_report rep;
	unsigned n = 0;

	assert_int_equal(viommu__vtd_gpt_map(&v->gpt, 0, 0, MiB(4), 3, KiB(4)),
			 0);
	assert_int_equal(viommu__vtd_walk(&v->pt, 0, UINT64_MAX,
					  stop_after_three, &n, &rep),
			 42);
	assert_int_equal(n, 3);
	assert_int_equal(rep.fault, VIOMMU_FAULT_NONE);
	n = 0;
	assert_int_equal(
		viommu__vtd_gpt_map(&v->gpt, GiB(1), 0, GiB(2), 3, GiB(1)), 0);
	assert_int_equal(viommu__vtd_walk(&v->pt, MiB(4), UINT64_MAX,
					  stop_after_three, &n, &rep),
			 0);
	assert_int_equal(n, 2);
	env_free(v);
}

/* --- randomized: the driver against a shadow, the walker against the
 * reference --------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* splitmix64: good enough, and the same everywhere */
	uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static void seed_rng(uint64_t dflt)
{
	const char *s = getenv("VIOMMU_TEST_SEED");

	rng_state = s ? strtoull(s, NULL, 0) : dflt;
	print_message("seed 0x%" PRIx64 " (set VIOMMU_TEST_SEED to repeat)\n",
		      rng_state);
}

/* What the driver was asked to map: sorted, disjoint intervals. */
#define SHADOW_MAX 8192

struct shadow_iv {
	uint64_t iova, last, pa;
	unsigned perm;
};

struct shadow {
	struct shadow_iv v[SHADOW_MAX];
	struct shadow_iv tmp[SHADOW_MAX];
	size_t n;
};

/* Remove [start, last], keeping the parts of mappings outside it. */
static void shadow_clear(struct shadow *s, uint64_t start, uint64_t last)
{
	size_t i, k = 0;

	for (i = 0; i < s->n; i++) {
		struct shadow_iv iv = s->v[i];

		assert_true(k + 2 <= SHADOW_MAX);
		if (iv.last < start || iv.iova > last) {
			s->tmp[k++] = iv;
			continue;
		}
		if (iv.iova < start) {
			s->tmp[k] = iv;
			s->tmp[k++].last = start - 1;
		}
		if (iv.last > last) {
			s->tmp[k] = iv;
			s->tmp[k].iova = last + 1;
			s->tmp[k++].pa = iv.pa + (last + 1 - iv.iova);
		}
	}
	memcpy(s->v, s->tmp, k * sizeof(s->v[0]));
	s->n = k;
}

static void shadow_set(struct shadow *s, uint64_t iova, uint64_t size,
		       uint64_t pa, unsigned perm)
{
	size_t i;

	shadow_clear(s, iova, iova + size - 1);
	assert_true(s->n < SHADOW_MAX);
	for (i = s->n; i > 0 && s->v[i - 1].iova > iova; i--)
		s->v[i] = s->v[i - 1];
	s->v[i].iova = iova;
	s->v[i].last = iova + size - 1;
	s->v[i].pa = pa;
	s->v[i].perm = perm;
	s->n++;
}

/* Does @s map [iova, last] to pa.. with @perm, in one piece? */
static bool shadow_has(const struct shadow *s, uint64_t iova, uint64_t last,
		       uint64_t pa, unsigned perm)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->v[i].iova <= iova && last <= s->v[i].last)
			return s->v[i].perm == perm &&
			       s->v[i].pa + (iova - s->v[i].iova) == pa;
	return false;
}

static void check_against_shadow(struct env *v, const struct shadow *s)
{
	struct entry_list l = { 0 };
	uint64_t leaf_bytes = 0, shadow_bytes = 0;
	size_t i, k;

	assert_int_equal(walk_all(v, &l, NULL), 0);
	for (i = 0; i < l.n; i++) {
		const struct viommu_entry *e = &l.e[i];

		if (!shadow_has(s, e->iova, e->iova + e->addr_mask,
				e->translated_addr, e->perm))
			fail_msg("leaf 0x%" PRIx64 "+0x%" PRIx64
				 " -> 0x%" PRIx64 " not in the shadow",
				 e->iova, e->addr_mask + 1, e->translated_addr);
		leaf_bytes += e->addr_mask + 1;
	}
	for (i = 0; i < s->n; i++)
		shadow_bytes += s->v[i].last - s->v[i].iova + 1;
	assert_int_equal(leaf_bytes, shadow_bytes);
	entry_list_free(&l);

	/* and translate agrees at the edges of every mapping */
	for (i = 0; i < s->n; i++) {
		uint64_t probe[3] = { s->v[i].iova, s->v[i].last,
				      s->v[i].iova + rnd_below(s->v[i].last -
							       s->v[i].iova) };

		for (k = 0; k < 3; k++) {
			struct viommu_translation t;

			viommu__vtd_translate(&v->pt, probe[k], &t, NULL);
			assert_int_equal(t.fault, VIOMMU_FAULT_NONE);
			assert_int_equal(t.entry.perm, s->v[i].perm);
			assert_int_equal(t.entry.translated_addr +
						 (probe[k] - t.entry.iova),
					 s->v[i].pa +
						 (probe[k] - s->v[i].iova));
		}
	}
}

/* A random aligned range in one of two windows: low, and at the top. */
static uint64_t pick_iova(const struct env *v, uint64_t align)
{
	uint64_t top = UINT64_C(1) << v->gpt.aw;
	uint64_t window = GiB(8);
	uint64_t base = rnd() & 1 ? 0 : top - window;

	return base + (rnd_below(window) & ~(align - 1));
}

static void random_driver_op(struct env *v, struct shadow *s, bool strict)
{
	static const uint64_t pages[] = { KiB(4), MiB(2), GiB(1) };
	uint64_t ps = pages[rnd_below(10) < 6 ? 0 : rnd_below(10) < 7 ? 1 : 2];
	uint64_t top = UINT64_C(1) << v->gpt.aw;
	uint64_t iova, size, pa;
	unsigned perm = 1 + (unsigned)rnd_below(3);
	int ret;

	if (rnd_below(3)) {
		iova = pick_iova(v, ps);
		size = ps * (1 + rnd_below(ps == KiB(4) ? 600 : 3));
		if (size > top - iova)
			size = top - iova;
		pa = rnd_below(GiB(256)) & ~(ps - 1);
		ret = viommu__vtd_gpt_map(&v->gpt, iova, pa, size, perm, ps);
		/* hostile tables may be outside RAM, or eat the region */
		if (!strict && (ret == -EFAULT || ret == -ENOMEM))
			return;
		assert_int_equal(ret, 0);
		shadow_set(s, iova, size, pa, perm);
	} else {
		iova = pick_iova(v, KiB(4));
		size = KiB(4) * (1 + rnd_below(rnd() & 1 ? 16 : 600000));
		if (size > top - iova)
			size = top - iova;
		ret = viommu__vtd_gpt_unmap(&v->gpt, iova, size);
		if (!strict && (ret == -EFAULT || ret == -ENOMEM))
			return;
		assert_int_equal(ret, 0);
		shadow_clear(s, iova, iova + size - 1);
	}
}

static void test_random_driver_vs_shadow(void **state)
{
	struct shadow *s = malloc(sizeof(*s));
	size_t a;
	int op;

	assert_non_null(s);
	seed_rng(0x5eed0001);
	for (a = 0; a < 3; a++) {
		struct env *v = env_new(aws[a]);

		s->n = 0;
		for (op = 0; op < 300; op++) {
			random_driver_op(v, s, true);
			if (op % 25 == 24)
				check_against_shadow(v, s);
		}
		check_against_shadow(v, s);
		cross_check(v, 0, UINT64_MAX);
		/* unmapping the windows leaves the root alone (maps may
		 * reach 3 GiB beyond the low one) */
		assert_int_equal(viommu__vtd_gpt_unmap(&v->gpt, 0, GiB(16)), 0);
		assert_int_equal(
			viommu__vtd_gpt_unmap(&v->gpt,
					      (UINT64_C(1) << aws[a]) - GiB(8),
					      GiB(8)),
			0);
		assert_int_equal(v->alloc.in_use, 1);
		env_free(v);
	}
	free(s);
}

/* A hostile value for a raw entry write. */
static uint64_t random_pte(struct env *v)
{
	uint64_t table = TABLES_BASE +
			 (rnd_below(v->alloc.next - TABLES_BASE) & ~0xfffull);

	switch (rnd_below(8)) {
	case 0:
		return 0;
	case 1:
		return rnd(); /* anything at all */
	case 2: /* a pointer at some table page, maybe with odd bits */
		return table | (1 + rnd_below(3)) |
		       (rnd_below(4) ? 0 : UINT64_C(1) << rnd_below(64));
	case 3: /* a leaf or superpage */
		return (rnd_below(GiB(64)) & ~0xfffull) | (1 + rnd_below(3)) |
		       (rnd() & 1 ? VIOMMU__VTD_PTE_PS : 0);
	case 4: /* outside RAM */
		return (RAM_SIZE + (rnd_below(GiB(4)) & ~0xfffull)) | 3;
	case 5: /* not present, with junk */
		return rnd() & ~UINT64_C(3);
	default: /* a clean pointer at a table */
		return table | 3;
	}
}

static void test_random_vs_reference(void **state)
{
	size_t a;
	int op, k;

	seed_rng(0x5eed0002);
	for (a = 0; a < 3; a++) {
		struct env *v = env_new(aws[a]);
		struct shadow *s = malloc(sizeof(*s));
		uint64_t top = UINT64_C(1) << aws[a];

		assert_non_null(s);
		s->n = 0;
		v->cfg.budget = 200000;
		v->cfg.snoop = a == 1;
		v->cfg.transient = a == 2;
		env_repoint(v);
		for (op = 0; op < 200; op++) {
			if (rnd_below(4)) {
				random_driver_op(v, s, false);
			} else {
				unsigned level =
					1 + (unsigned)rnd_below(v->gpt.levels);
				bool self = rnd_below(4) == 0;
				unsigned count =
					rnd_below(4) ?
						1 :
						1 + (unsigned)rnd_below(600);
				int ret = viommu__vtd_gpt_write_pte(
					&v->gpt, pick_iova(v, KiB(4)), level,
					random_pte(v), self, count);

				/* a hostile table in the way may be outside
				 * RAM, or the table region may run out */
				assert_true(ret == 0 || ret == -EFAULT ||
					    ret == -ENOMEM);
			}
			for (k = 0; k < 20; k++)
				cross_check_at(v, rnd_below(3) ?
							  pick_iova(v, 1) :
							  rnd());
			if (op % 4 == 3) {
				uint64_t x = pick_iova(v, KiB(4));
				uint64_t y = x + rnd_below(top - x);
				struct entry_list fast = { 0 }, ref = { 0 };
				struct viommu__vtd_report rep;
				int fret, rret;
				size_t i;

				fret = viommu__vtd_walk(&v->pt, x, y,
							entry_list_add, &fast,
							&rep);
				if (fret != -E2BIG) {
					cross_check(v, x, y);
					entry_list_free(&fast);
					continue;
				}
				/* over budget: what came out is a prefix */
				rret = ref_walk(&v->mem, v->gpt.root, &v->cfg,
						x, y, entry_list_add, &ref,
						2 * v->cfg.budget, NULL, NULL);
				(void)rret;
				assert_true(ref.n >= fast.n);
				for (i = 0; i < fast.n; i++)
					assert_true(entry_equal(&fast.e[i],
								&ref.e[i]));
				entry_list_free(&fast);
				entry_list_free(&ref);
			}
		}
		free(s);
		env_free(v);
	}
}

/* --- a real Linux guest ------------------------------------------------ */

static const char *capture_dir(void)
{
	static char path[4096];
	const char *shared = getenv("VIOMMU_SHARED_DIR");

	snprintf(path, sizeof(path), "%s/captures/linux61-e1000-aw39",
		 shared ? shared : "../shared");
	return path;
}

struct csv_leaf {
	uint64_t iova, size, pa, slpte;
	unsigned perm, level;
};

static size_t read_csv(const char *path, struct csv_leaf *out, size_t max)
{
	char line[256], perm[8];
	size_t n = 0;
	FILE *f = fopen(path, "r");

	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	line[strcspn(line, "\r\n")] = '\0'; /* the captures end lines CRLF */
	assert_string_equal(line, "iova,size,pa,perm,level,slpte");
	while (fgets(line, sizeof(line), f)) {
		struct csv_leaf *c = &out[n];

		if (line[0] == '\r' || line[0] == '\n')
			continue;

		assert_true(n < max);
		assert_int_equal(sscanf(line,
					"%" SCNx64 ",%" SCNx64 ",%" SCNx64
					",%7[RW],%u,%" SCNx64,
					&c->iova, &c->size, &c->pa, perm,
					&c->level, &c->slpte),
				 6);
		c->perm = (strchr(perm, 'R') ? VIOMMU_PERM_READ : 0) |
			  (strchr(perm, 'W') ? VIOMMU_PERM_WRITE : 0);
		n++;
	}
	fclose(f);
	return n;
}

static uint64_t rd64(struct viommu_guest_memory *mem, uint64_t gpa)
{
	uint64_t v = 0;

	assert_int_equal(viommu_guest_read(mem, gpa, &v, 8), 0);
	return v;
}

/* Root and context entries (legacy mode) of bus 0, @devfn. */
static void check_capture_device(struct viommu_guest_memory *mem,
				 unsigned devfn, unsigned domain,
				 const char *csv, size_t want_rows)
{
	const uint64_t rtaddr = 0x2731000;
	uint64_t root_lo = rd64(mem, rtaddr + 0 * 16);
	uint64_t ctx_lo, ctx_hi, slpt;
	struct viommu__vtd_pt_config cfg = { 0 };
	struct viommu__vtd_pt pt;
	struct viommu_guest_memory slow = nopage_memory(mem);
	struct entry_list l = { 0 };
	struct viommu__vtd_report rep;
	struct csv_leaf *rows;
	char path[4200];
	size_t n, i;

	assert_true(root_lo & 1);
	ctx_lo = rd64(mem, (root_lo & ~0xfffull) + devfn * 16);
	ctx_hi = rd64(mem, (root_lo & ~0xfffull) + devfn * 16 + 8);
	assert_true(ctx_lo & 1);
	assert_int_equal((ctx_lo >> 2) & 3, 0); /* translation type 00 */
	assert_int_equal(ctx_hi & 7, 1);	/* AW: 39 bits, 3 levels */
	assert_int_equal((ctx_hi >> 8) & 0xffff, domain);
	slpt = ctx_lo & ~0xfffull;

	cfg.aw = 39;
	assert_int_equal(viommu__vtd_pt_init(&pt, mem, slpt, &cfg), 0);
	assert_int_equal(viommu__vtd_walk(&pt, 0, UINT64_MAX, entry_list_add,
					  &l, &rep),
			 0);

	snprintf(path, sizeof(path), "%s/%s", capture_dir(), csv);
	rows = calloc(8192, sizeof(*rows));
	assert_non_null(rows);
	n = read_csv(path, rows, 8192);
	assert_int_equal(n, want_rows);
	assert_int_equal(l.n, n);
	for (i = 0; i < n; i++) {
		struct viommu_translation t;
		struct viommu__vtd_report tr;

		assert_int_equal(l.e[i].iova, rows[i].iova);
		assert_int_equal(l.e[i].addr_mask + 1, rows[i].size);
		assert_int_equal(l.e[i].translated_addr, rows[i].pa);
		assert_int_equal(l.e[i].perm, rows[i].perm);
		assert_int_equal(
			viommu__vtd_translate(&pt, rows[i].iova, &t, &tr), 0);
		assert_int_equal(tr.level, rows[i].level);
		assert_int_equal(tr.pte, rows[i].slpte);
	}
	entry_list_free(&l);

	/* the read path, and the reference, see the same */
	assert_int_equal(viommu__vtd_pt_init(&pt, &slow, slpt, &cfg), 0);
	assert_int_equal(viommu__vtd_walk(&pt, 0, UINT64_MAX, entry_list_add,
					  &l, &rep),
			 0);
	assert_int_equal(l.n, n);
	entry_list_free(&l);
	assert_int_equal(ref_walk(mem, slpt, &cfg, 0, UINT64_MAX,
				  entry_list_add, &l, UINT64_MAX, NULL, NULL),
			 0);
	assert_int_equal(l.n, n);
	for (i = 0; i < n; i++)
		assert_int_equal(l.e[i].iova, rows[i].iova);
	entry_list_free(&l);
	free(rows);
}

static void test_linux_capture(void **state)
{
	struct viommu_guest_memory mem;
	struct viommu_ram *ram;
	struct viommu_error err;
	char img[4200];
	FILE *f;

	snprintf(img, sizeof(img), "%s/guest.img", capture_dir());
	f = fopen(img, "r");
	if (!f) {
		print_message("no capture at %s (set VIOMMU_SHARED_DIR): "
			      "skipped\n",
			      capture_dir());
		skip();
		return;
	}
	fclose(f);
	assert_int_equal(viommu_ram_new(GiB(4), &ram, NULL), 0);
	if (viommu_ram_load_image(ram, img, &err))
		fail_msg("%s", err.message);
	mem = viommu_ram_memory(ram);
	check_capture_device(&mem, 0x10, 4, "leaves-00_02.0.csv", 346);
	check_capture_device(&mem, 0xf8, 5, "leaves-00_1f.0.csv", 4096);
	viommu_ram_free(ram);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_geometry),
		cmocka_unit_test(test_argument_checks),
		cmocka_unit_test(test_allocator),
		cmocka_unit_test(test_map_translate_matrix),
		cmocka_unit_test(test_superpage_split_keeps_rest),
		cmocka_unit_test(test_superpage_replaces_table),
		cmocka_unit_test(test_reserved_bits),
		cmocka_unit_test(test_reserved_bits_in_tables),
		cmocka_unit_test(test_bad_table),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_self_pointing_table),
		cmocka_unit_test(test_walk_budget_self_loop),
		cmocka_unit_test(test_permission_and),
		cmocka_unit_test(test_walk_callback_stops),
		cmocka_unit_test(test_random_driver_vs_shadow),
		cmocka_unit_test(test_random_vs_reference),
		cmocka_unit_test(test_linux_capture),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
