/* SPDX-License-Identifier: MIT */
/*
 * The change engine (items 3, 4 and 5): events, exact diffs, clipping,
 * all-or-nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake.h"

struct ctx {
	struct fake f;
	struct recorder *rec;
	struct rec_client c[4];
};

static int setup(void **state, const struct viommu_model_ops *ops)
{
	struct ctx *x = calloc(1, sizeof(*x));

	fake_init(&x->f, ops);
	x->rec = calloc(1, sizeof(*x->rec));
	*state = x;
	return 0;
}

static int setup_replay(void **state)
{
	return setup(state, &fake_ops_replay);
}

static int setup_translate(void **state)
{
	return setup(state, &fake_ops_translate_only);
}

static int teardown(void **state)
{
	struct ctx *x = *state;

	fake_fini(&x->f);
	free(x->rec);
	free(x);
	return 0;
}

static void sync_all(struct ctx *x)
{
	assert_int_equal(viommu_as_sync(x->f.as, 0, UINT64_MAX, 0, NULL), 0);
}

/* shadow (1), unmap-only (2), map-only (3) on the whole space */
static void three_kinds(struct ctx *x)
{
	assert_int_equal(rec_register(x->f.as, &x->c[1], x->rec, 1, MAP | UNMAP,
				      0, UINT64_MAX),
			 0);
	assert_int_equal(rec_register(x->f.as, &x->c[2], x->rec, 2, UNMAP, 0,
				      UINT64_MAX),
			 0);
	assert_int_equal(rec_register(x->f.as, &x->c[3], x->rec, 3, MAP, 0,
				      UINT64_MAX),
			 0);
}

static void test_map_then_unmap(void **state)
{
	struct ctx *x = *state;
	struct viommu_entry e;

	three_kinds(x);
	fake_set(x->f.tables, 0x3000, 0x1000, 0xa000, RW);
	sync_all(x);
	assert_int_equal(x->rec->n, 2);
	assert_event(&x->rec->ev[0], 1, MAP, 0x3000, 0x1000, 0xa000, RW);
	assert_event(&x->rec->ev[1], 3, MAP, 0x3000, 0x1000, 0xa000, RW);
	assert_true(viommu_as_lookup(x->f.as, 0x3fff, &e));
	assert_int_equal(e.translated_addr, 0xa000);
	assert_false(viommu_as_lookup(x->f.as, 0x4000, &e));
	assert_int_equal(viommu_as_mapping_count(x->f.as), 1);
	assert_true(viommu_as_memory_bytes(x->f.as) > 0);

	x->rec->n = 0;
	fake_clear(x->f.tables, 0, UINT64_MAX);
	sync_all(x);
	/* an unmap carries no permissions, and the old target */
	assert_int_equal(x->rec->n, 2);
	assert_event(&x->rec->ev[0], 1, UNMAP, 0x3000, 0x1000, 0xa000, 0);
	assert_event(&x->rec->ev[1], 2, UNMAP, 0x3000, 0x1000, 0xa000, 0);
	assert_int_equal(viommu_as_mapping_count(x->f.as), 0);
}

static void test_in_place_change_is_unmap_then_map(void **state)
{
	struct ctx *x = *state;

	fake_set(x->f.tables, 0x3000, 0x1000, 0xa000, RW);
	sync_all(x);
	three_kinds(x);
	for (int i = 1; i <= 3; i++)
		assert_int_equal(viommu_notifier_replay(x->c[i].handle, NULL),
				 0);
	x->rec->n = 0;

	/* new target */
	fake_set(x->f.tables, 0x3000, 0x1000, 0xb000, RW);
	sync_all(x);
	assert_int_equal(x->rec->n, 4);
	assert_event(&x->rec->ev[0], 1, UNMAP, 0x3000, 0x1000, 0xa000, 0);
	assert_event(&x->rec->ev[1], 2, UNMAP, 0x3000, 0x1000, 0xa000, 0);
	assert_event(&x->rec->ev[2], 1, MAP, 0x3000, 0x1000, 0xb000, RW);
	assert_event(&x->rec->ev[3], 3, MAP, 0x3000, 0x1000, 0xb000, RW);

	/* new permissions */
	x->rec->n = 0;
	fake_set(x->f.tables, 0x3000, 0x1000, 0xb000, RO);
	sync_all(x);
	assert_int_equal(x->rec->n, 4);
	assert_event(&x->rec->ev[0], 1, UNMAP, 0x3000, 0x1000, 0xb000, 0);
	assert_event(&x->rec->ev[2], 1, MAP, 0x3000, 0x1000, 0xb000, RO);
}

static void test_unchanged_is_silent(void **state)
{
	struct ctx *x = *state;
	uint64_t i;

	three_kinds(x);
	for (i = 0; i < 64; i++)
		fake_set(x->f.tables, i * 0x1000, 0x1000, 0x100000 + i * 0x1000,
			 RW);
	sync_all(x);
	x->rec->n = 0;
	sync_all(x);
	assert_int_equal(viommu_as_sync(x->f.as, 0x5000, 0x5fff, 0, NULL), 0);
	assert_int_equal(x->rec->n, 0);

	/* one change among many: only that one is told */
	fake_set(x->f.tables, 0x7000, 0x1000, 0x900000, RW);
	sync_all(x);
	assert_int_equal(x->rec->n, 4);
	assert_event(&x->rec->ev[0], 1, UNMAP, 0x7000, 0x1000, 0x107000, 0);
	assert_event(&x->rec->ev[2], 1, MAP, 0x7000, 0x1000, 0x900000, RW);
}

static void test_no_unmap_storm(void **state)
{
	struct ctx *x = *state;

	three_kinds(x);
	/* invalidating ranges where nothing is, or was, mapped */
	assert_int_equal(viommu_as_sync(x->f.as, 0, GiB(1) - 1, 0, NULL), 0);
	sync_all(x);
	assert_int_equal(x->rec->n, 0);
}

static void test_superpage_split_unmaps_whole(void **state)
{
	struct ctx *x = *state;
	uint64_t i;

	three_kinds(x);
	fake_set(x->f.tables, MiB(2), MiB(2), GiB(1), RW);
	sync_all(x);
	x->rec->n = 0;

	/* the guest splits the 2M leaf into 4K leaves, keeping the target */
	fake_clear(x->f.tables, MiB(2), MiB(4) - 1);
	for (i = 0; i < 512; i++)
		if (i != 7) /* ... and unmaps one page */
			fake_set(x->f.tables, MiB(2) + i * 0x1000, 0x1000,
				 GiB(1) + i * 0x1000, RW);
	/* a page-selective invalidation of one 4K page inside it */
	assert_int_equal(viommu_as_sync(x->f.as, MiB(2) + 0x7000,
					MiB(2) + 0x7fff, 0, NULL),
			 0);
	/* the shadow hears the whole 2M go, then the 511 pages come */
	assert_int_equal(x->rec->n, 2 + 511 * 2);
	assert_event(&x->rec->ev[0], 1, UNMAP, MiB(2), MiB(2), GiB(1), 0);
	assert_event(&x->rec->ev[1], 2, UNMAP, MiB(2), MiB(2), GiB(1), 0);
	assert_event(&x->rec->ev[2], 1, MAP, MiB(2), 0x1000, GiB(1), RW);
	assert_int_equal(viommu_as_mapping_count(x->f.as), 511);

	/* and back: 511 pages become one 2M leaf */
	x->rec->n = 0;
	fake_set(x->f.tables, MiB(2), MiB(2), GiB(1), RW);
	assert_int_equal(
		viommu_as_sync(x->f.as, MiB(2), MiB(2) + 0xfff, 0, NULL), 0);
	assert_int_equal(x->rec->n, 511 * 2 + 2);
	assert_event(&x->rec->ev[0], 1, UNMAP, MiB(2), 0x1000, GiB(1), 0);
	assert_event(&x->rec->ev[511 * 2], 1, MAP, MiB(2), MiB(2), GiB(1), RW);
	assert_int_equal(viommu_as_mapping_count(x->f.as), 1);
}

static void test_clipping(void **state)
{
	struct ctx *x = *state;

	assert_int_equal(rec_register(x->f.as, &x->c[1], x->rec, 1, MAP | UNMAP,
				      0x1800, 0x5fff),
			 0);
	fake_set(x->f.tables, 0, MiB(2), 0x40000000, RW);
	sync_all(x);
	/* [0x1800, 0x5fff] in aligned powers of two, with matching targets */
	assert_int_equal(x->rec->n, 3);
	assert_event(&x->rec->ev[0], 1, MAP, 0x1800, 0x800, 0x40001800, RW);
	assert_event(&x->rec->ev[1], 1, MAP, 0x2000, 0x2000, 0x40002000, RW);
	assert_event(&x->rec->ev[2], 1, MAP, 0x4000, 0x2000, 0x40004000, RW);
	x->rec->n = 0;
	fake_clear(x->f.tables, 0, UINT64_MAX);
	sync_all(x);
	assert_int_equal(x->rec->n, 3);
	assert_event(&x->rec->ev[1], 1, UNMAP, 0x2000, 0x2000, 0x40002000, 0);

	/* outside the range: nothing */
	x->rec->n = 0;
	fake_set(x->f.tables, MiB(4), 0x1000, 0, RW);
	sync_all(x);
	assert_int_equal(x->rec->n, 0);
}

static void test_whole_space_entry(void **state)
{
	struct ctx *x = *state;
	struct viommu_entry e = { 0, UINT64_MAX, 0, RW };

	assert_int_equal(rec_register(x->f.as, &x->c[1], x->rec, 1, MAP | UNMAP,
				      0, UINT64_MAX),
			 0);
	assert_int_equal(viommu_as_update_entry(x->f.as, &e, NULL), 0);
	assert_int_equal(x->rec->n, 1);
	assert_int_equal(x->rec->ev[0].addr_mask, UINT64_MAX);
	e.perm = VIOMMU_PERM_NONE;
	assert_int_equal(viommu_as_update_entry(x->f.as, &e, NULL), 0);
	assert_int_equal(x->rec->n, 2);
	assert_event(&x->rec->ev[1], 1, UNMAP, 0, 0, 0, 0);
	assert_int_equal(x->rec->ev[1].addr_mask, UINT64_MAX);
}

static void test_wide_unmap(void **state)
{
	struct ctx *x = *state;

	three_kinds(x);
	fake_set(x->f.tables, 0x1000, 0x1000, 0x5000, RW);
	assert_int_equal(viommu_as_sync(x->f.as, 0, 0x3fff,
					VIOMMU_UPDATE_WIDE_UNMAP, NULL),
			 0);
	/* unmap-only hears the whole range; shadow and map-only the map */
	assert_int_equal(x->rec->n, 3);
	assert_event(&x->rec->ev[0], 2, UNMAP, 0, 0x4000, 0, 0);
	assert_event(&x->rec->ev[1], 1, MAP, 0x1000, 0x1000, 0x5000, RW);
	assert_event(&x->rec->ev[2], 3, MAP, 0x1000, 0x1000, 0x5000, RW);
	/* and exact unmaps then go to the shadow only */
	x->rec->n = 0;
	fake_clear(x->f.tables, 0, UINT64_MAX);
	assert_int_equal(viommu_as_sync(x->f.as, 0x1000, 0x1fff,
					VIOMMU_UPDATE_WIDE_UNMAP, NULL),
			 0);
	assert_int_equal(x->rec->n, 2);
	assert_event(&x->rec->ev[0], 2, UNMAP, 0x1000, 0x1000, 0, 0);
	assert_event(&x->rec->ev[1], 1, UNMAP, 0x1000, 0x1000, 0x5000, 0);
}

static void test_failed_map_undoes_everything(void **state)
{
	struct ctx *x = *state;
	struct viommu_error err;
	struct viommu_entry e;

	assert_int_equal(rec_register(x->f.as, &x->c[1], x->rec, 1, MAP | UNMAP,
				      0, UINT64_MAX),
			 0);
	assert_int_equal(rec_register(x->f.as, &x->c[2], x->rec, 2, MAP | UNMAP,
				      0, UINT64_MAX),
			 0);
	fake_set(x->f.tables, 0x1000, 0x1000, 0xa000, RW);
	fake_set(x->f.tables, 0x2000, 0x1000, 0xb000, RW);
	sync_all(x);
	x->rec->n = 0;
	x->rec->maps_seen = 0;

	/* retarget both; notifier 2 refuses the second new map (4th map) */
	fake_set(x->f.tables, 0x1000, 0x1000, 0xc000, RW);
	fake_set(x->f.tables, 0x2000, 0x1000, 0xd000, RW);
	x->rec->fail_map_at = 4;
	assert_int_equal(viommu_as_sync(x->f.as, 0, UINT64_MAX, 0, &err),
			 -ENOSPC);
	assert_int_equal(err.code, -ENOSPC);
	assert_non_null(strstr(err.message, "undone"));
	x->rec->fail_map_at = 0;
	/*
	 * Told: 1,2 unmap 0x1000(a); 1,2 map 0x1000(c); 1,2 unmap 0x2000(b);
	 * 1 map 0x2000(d); 2 refused.  Reversed: 1 unmap d; 1,2 map b;
	 * 1,2 unmap c; 1,2 map a.
	 */
	assert_int_equal(x->rec->n, 7 + 7);
	assert_event(&x->rec->ev[6], 1, MAP, 0x2000, 0x1000, 0xd000, RW);
	assert_event(&x->rec->ev[7], 1, UNMAP, 0x2000, 0x1000, 0xd000, 0);
	assert_event(&x->rec->ev[8], 1, MAP, 0x2000, 0x1000, 0xb000, RW);
	assert_event(&x->rec->ev[9], 2, MAP, 0x2000, 0x1000, 0xb000, RW);
	assert_event(&x->rec->ev[10], 1, UNMAP, 0x1000, 0x1000, 0xc000, 0);
	assert_event(&x->rec->ev[13], 2, MAP, 0x1000, 0x1000, 0xa000, RW);
	/* the library holds what it held */
	assert_true(viommu_as_lookup(x->f.as, 0x1000, &e));
	assert_int_equal(e.translated_addr, 0xa000);
	assert_true(viommu_as_lookup(x->f.as, 0x2000, &e));
	assert_int_equal(e.translated_addr, 0xb000);

	/* the model retries: it goes through now */
	x->rec->n = 0;
	sync_all(x);
	assert_int_equal(x->rec->n, 8);
	assert_true(viommu_as_lookup(x->f.as, 0x2000, &e));
	assert_int_equal(e.translated_addr, 0xd000);
}

/* A shadow that refuses the re-map of a rollback does not stop the others. */
static void test_rollback_reaches_everyone(void **state)
{
	struct ctx *x = *state;
	struct viommu_entry e;
	int i;

	for (i = 1; i <= 3; i++)
		assert_int_equal(rec_register(x->f.as, &x->c[i], x->rec, i,
					      MAP | UNMAP, 0, UINT64_MAX),
				 0);
	fake_set(x->f.tables, 0x1000, 0x1000, 0xa000, RW);
	sync_all(x);
	x->rec->n = 0;
	x->rec->maps_seen = 0;
	/*
	 * Retarget: 1,2,3 unmap a; 1 maps b; 2 refuses b (map 2).  Reverse:
	 * 1 unmaps b; 1,2,3 re-map a, and 1 refuses that (map 3), which must
	 * not keep 2 and 3 from hearing it.
	 */
	fake_set(x->f.tables, 0x1000, 0x1000, 0xb000, RW);
	x->rec->fail_map_at = 2;
	x->rec->fail_map_at2 = 3;
	assert_int_equal(viommu_as_sync(x->f.as, 0, UINT64_MAX, 0, NULL),
			 -ENOSPC);
	assert_int_equal(x->rec->n, 3 + 1 + 1 + 2);
	assert_event(&x->rec->ev[3], 1, MAP, 0x1000, 0x1000, 0xb000, RW);
	assert_event(&x->rec->ev[4], 1, UNMAP, 0x1000, 0x1000, 0xb000, 0);
	assert_event(&x->rec->ev[5], 2, MAP, 0x1000, 0x1000, 0xa000, RW);
	assert_event(&x->rec->ev[6], 3, MAP, 0x1000, 0x1000, 0xa000, RW);
	x->rec->fail_map_at2 = 0;
	assert_true(viommu_as_lookup(x->f.as, 0x1000, &e));
	assert_int_equal(e.translated_addr, 0xa000);
	x->rec->fail_map_at = 0;
}

static int refuse_everything(struct viommu_notifier *n,
			     const struct viommu_event *ev, void *opaque)
{
	int *calls = opaque;

	++*calls;
	return ev->type == VIOMMU_NOTIFY_MAP ? 7 : 0; /* positive: bad */
}

static void test_positive_return_is_an_error(void **state)
{
	struct ctx *x = *state;
	struct viommu_notifier_config cfg;
	struct viommu_notifier *n;
	int calls = 0;

	viommu_notifier_config_init(&cfg, MAP, refuse_everything, &calls);
	assert_int_equal(viommu_notifier_register(x->f.as, &cfg, &n, NULL), 0);
	fake_set(x->f.tables, 0x1000, 0x1000, 0xa000, RW);
	assert_int_equal(viommu_as_sync(x->f.as, 0, UINT64_MAX, 0, NULL), -EIO);
	assert_int_equal(calls, 1);
	assert_int_equal(viommu_as_mapping_count(x->f.as), 0);
}

static void test_failed_clipped_map_takes_back_pieces(void **state)
{
	struct ctx *x = *state;

	assert_int_equal(rec_register(x->f.as, &x->c[1], x->rec, 1, MAP | UNMAP,
				      0x1800, 0x5fff),
			 0);
	x->rec->fail_map_at = 2; /* the second of three pieces */
	fake_set(x->f.tables, 0, MiB(2), 0, RW);
	assert_int_equal(viommu_as_sync(x->f.as, 0, UINT64_MAX, 0, NULL),
			 -ENOSPC);
	assert_int_equal(x->rec->n, 2);
	assert_event(&x->rec->ev[0], 1, MAP, 0x1800, 0x800, 0x1800, RW);
	assert_event(&x->rec->ev[1], 1, UNMAP, 0x1800, 0x800, 0x1800, 0);
	assert_int_equal(viommu_as_mapping_count(x->f.as), 0);
}

static void test_update_validates(void **state)
{
	struct ctx *x = *state;
	struct viommu_error err;
	struct viommu_entry bad_align[] = { { 0x1000, 0x1fff, 0, RW } };
	struct viommu_entry bad_order[] = { { 0x2000, 0xfff, 0, RW },
					    { 0x1000, 0xfff, 0, RW } };
	struct viommu_entry bad_perm[] = { { 0x1000, 0xfff, 0, 0 } };
	struct viommu_entry outside[] = { { 0x9000, 0xfff, 0, RW } };
	struct viommu_entry good[] = { { 0x1000, 0xfff, 0x5000, RW },
				       { 0x2000, 0x1fff, 0x8000, RO } };

	three_kinds(x);
	assert_int_equal(viommu_as_update(x->f.as, 0, 0x3fff, bad_align, 1, 0,
					  &err),
			 -EINVAL);
	assert_non_null(strstr(err.message, "aligned"));
	assert_int_equal(viommu_as_update(x->f.as, 0, 0x3fff, bad_order, 2, 0,
					  &err),
			 -EINVAL);
	assert_int_equal(viommu_as_update(x->f.as, 0, 0x3fff, bad_perm, 1, 0,
					  &err),
			 -EINVAL);
	assert_int_equal(viommu_as_update(x->f.as, 0, 0x3fff, outside, 1, 0,
					  &err),
			 -EINVAL);
	assert_int_equal(viommu_as_update(x->f.as, 0x4000, 0x3fff, good, 2, 0,
					  &err),
			 -EINVAL);
	assert_int_equal(viommu_as_update(x->f.as, 0, 0x3fff, good, 2, 8, &err),
			 -EINVAL);
	assert_int_equal(x->rec->n, 0);
	assert_int_equal(viommu_as_mapping_count(x->f.as), 0);

	assert_int_equal(viommu_as_update(x->f.as, 0, 0x3fff, good, 2, 0, &err),
			 0);
	assert_int_equal(viommu_as_mapping_count(x->f.as), 2);
	/* widening: stating [0x2000, 0x2fff] empty drops the whole 8K entry */
	x->rec->n = 0;
	assert_int_equal(
		viommu_as_update(x->f.as, 0x2000, 0x2fff, NULL, 0, 0, NULL), 0);
	assert_int_equal(x->rec->n, 2);
	assert_event(&x->rec->ev[0], 1, UNMAP, 0x2000, 0x2000, 0x8000, 0);
	assert_int_equal(viommu_as_mapping_count(x->f.as), 1);
}

static void test_deviotlb(void **state)
{
	struct ctx *x = *state;

	three_kinds(x);
	assert_int_equal(rec_register(x->f.as, &x->c[0], x->rec, 0, DEVTLB,
				      0x1000, 0x1fff),
			 0);
	assert_int_equal(viommu_as_notify_deviotlb(x->f.as, 0, 0x3fff), 0);
	assert_int_equal(x->rec->n, 1);
	assert_event(&x->rec->ev[0], 0, DEVTLB, 0x1000, 0x1000, 0, 0);
	assert_int_equal(viommu_as_notify_deviotlb(x->f.as, 0x1000, 0x1fff),
			 -EINVAL);
}

static void test_batches(void **state)
{
	struct ctx *x = *state;
	struct viommu_notifier_config cfg;

	viommu_notifier_config_init(&cfg, MAP | UNMAP, rec_notify, &x->c[1]);
	cfg.batch_begin = rec_begin;
	cfg.batch_end = rec_end;
	x->c[1].rec = x->rec;
	assert_int_equal(viommu_notifier_register(x->f.as, &cfg,
						  &x->c[1].handle, NULL),
			 0);
	for (uint64_t i = 0; i < 8; i++)
		fake_set(x->f.tables, i * 0x1000, 0x1000, i * 0x1000, RW);
	sync_all(x);
	assert_int_equal(x->rec->n, 8);
	assert_int_equal(x->rec->batch_begins, 1);
	assert_int_equal(x->rec->batch_ends, 1);
	sync_all(x); /* nothing changes: no batch */
	assert_int_equal(x->rec->batch_begins, 1);
}

int main(void)
{
#define BOTH(t)                                                                \
	cmocka_unit_test_setup_teardown(t, setup_replay, teardown),            \
		cmocka_unit_test_setup_teardown(t, setup_translate, teardown)
	const struct CMUnitTest tests[] = {
		BOTH(test_map_then_unmap),
		BOTH(test_in_place_change_is_unmap_then_map),
		BOTH(test_unchanged_is_silent),
		BOTH(test_no_unmap_storm),
		BOTH(test_superpage_split_unmaps_whole),
		BOTH(test_clipping),
		cmocka_unit_test_setup_teardown(test_whole_space_entry,
						setup_replay, teardown),
		BOTH(test_wide_unmap),
		BOTH(test_failed_map_undoes_everything),
		BOTH(test_failed_clipped_map_takes_back_pieces),
		BOTH(test_rollback_reaches_everyone),
		BOTH(test_positive_return_is_an_error),
		cmocka_unit_test_setup_teardown(test_update_validates,
						setup_replay, teardown),
		cmocka_unit_test_setup_teardown(test_deviotlb, setup_replay,
						teardown),
		cmocka_unit_test_setup_teardown(test_batches, setup_replay,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
