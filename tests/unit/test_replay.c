/* SPDX-License-Identifier: MIT */
/*
 * Replay (item 6): every translation in effect within the notifier's range,
 * clipped, at a cost proportional to what is mapped, never to the size of
 * the address space.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake.h"

static void test_replay_in_range(void **state)
{
	struct fake f;
	struct recorder *rec = calloc(1, sizeof(*rec));
	struct rec_client c;

	fake_init(&f, &fake_ops_replay);
	fake_set(f.tables, 0x1000, 0x1000, 0xa000, RW);
	fake_set(f.tables, MiB(2), MiB(2), GiB(1), RO);
	fake_set(f.tables, GiB(4), 0x1000, 0xc000, WO);
	assert_int_equal(viommu_as_sync(f.as, 0, UINT64_MAX, 0, NULL), 0);

	assert_int_equal(rec_register(f.as, &c, rec, 1, MAP | UNMAP, MiB(3),
				      GiB(4) + 0xfff),
			 0);
	assert_int_equal(rec->n, 0); /* a new notifier holds nothing */
	assert_int_equal(viommu_notifier_replay(c.handle, NULL), 0);
	assert_int_equal(rec->n, 2);
	assert_event(&rec->ev[0], 1, MAP, MiB(3), MiB(1), GiB(1) + MiB(1), RO);
	assert_event(&rec->ev[1], 1, MAP, GiB(4), 0x1000, 0xc000, WO);

	/* the replayed shadow is exact: a later change unmaps what it holds */
	rec->n = 0;
	fake_clear(f.tables, 0, UINT64_MAX);
	assert_int_equal(viommu_as_sync(f.as, 0, UINT64_MAX, 0, NULL), 0);
	assert_int_equal(rec->n, 2);
	assert_event(&rec->ev[0], 1, UNMAP, MiB(3), MiB(1), GiB(1) + MiB(1), 0);
	viommu_notifier_unregister(c.handle);
	fake_fini(&f);
	free(rec);
}

static void test_replay_needs_map_flag(void **state)
{
	struct fake f;
	struct recorder *rec = calloc(1, sizeof(*rec));
	struct rec_client c;

	fake_init(&f, &fake_ops_replay);
	fake_set(f.tables, 0x1000, 0x1000, 0xa000, RW);
	assert_int_equal(viommu_as_sync(f.as, 0, UINT64_MAX, 0, NULL), 0);
	/* delivery rule 2: an unmap-only notifier never hears maps */
	assert_int_equal(rec_register(f.as, &c, rec, 1, UNMAP | DEVTLB, 0,
				      UINT64_MAX),
			 0);
	assert_int_equal(viommu_notifier_replay(c.handle, NULL), 0);
	assert_int_equal(rec->n, 0);
	viommu_notifier_unregister(c.handle);
	fake_fini(&f);
	free(rec);
}

static void test_replay_cost_is_what_is_mapped(void **state)
{
	struct fake f;
	struct recorder *rec = calloc(1, sizeof(*rec));
	struct rec_client c;
	unsigned translates, replays;

	fake_init(&f, &fake_ops_translate_only);
	/* two pages at the ends of a 2^64 space */
	fake_set(f.tables, 0, 0x1000, 0x1000, RW);
	fake_set(f.tables, UINT64_C(0xfffffffffffff000), 0x1000, 0x2000, RW);
	assert_int_equal(viommu_as_sync(f.as, 0, UINT64_MAX, 0, NULL), 0);
	assert_int_equal(rec_register(f.as, &c, rec, 1, MAP, 0, UINT64_MAX), 0);

	translates = f.tables->translate_calls;
	replays = f.tables->replay_calls;
	assert_int_equal(viommu_notifier_replay(c.handle, NULL), 0);
	assert_int_equal(rec->n, 2);
	assert_event(&rec->ev[1], 1, MAP, UINT64_C(0xfffffffffffff000), 0x1000,
		     0x2000, RW);
	/* what is in effect is held: the model is not walked at all */
	assert_int_equal(f.tables->translate_calls, translates);
	assert_int_equal(f.tables->replay_calls, replays);
	viommu_notifier_unregister(c.handle);
	fake_fini(&f);
	free(rec);
}

static void test_replay_error_stops(void **state)
{
	struct fake f;
	struct recorder *rec = calloc(1, sizeof(*rec));
	struct rec_client c;
	struct viommu_error err;

	fake_init(&f, &fake_ops_replay);
	for (uint64_t i = 0; i < 4; i++)
		fake_set(f.tables, i * 0x1000, 0x1000, i * 0x1000, RW);
	assert_int_equal(viommu_as_sync(f.as, 0, UINT64_MAX, 0, NULL), 0);
	assert_int_equal(
		rec_register(f.as, &c, rec, 1, MAP | UNMAP, 0, UINT64_MAX), 0);
	rec->fail_map_at = 3;
	rec->fail_code = -ENOSPC;
	assert_int_equal(viommu_notifier_replay(c.handle, &err), -ENOSPC);
	assert_non_null(strstr(err.message, "replay"));
	assert_int_equal(rec->n, 2);
	viommu_notifier_unregister(c.handle);
	fake_fini(&f);
	free(rec);
}

static int unregister_on_second(struct viommu_notifier *n,
				const struct viommu_event *ev, void *opaque)
{
	int *seen = opaque;

	if (++*seen == 2)
		viommu_notifier_unregister(n);
	return 0;
}

static void test_replay_stops_when_unregistered(void **state)
{
	struct fake f;
	struct viommu_notifier_config cfg;
	struct viommu_notifier *n;
	int seen = 0;

	fake_init(&f, &fake_ops_replay);
	for (uint64_t i = 0; i < 4; i++)
		fake_set(f.tables, i * 0x1000, 0x1000, i * 0x1000, RW);
	assert_int_equal(viommu_as_sync(f.as, 0, UINT64_MAX, 0, NULL), 0);
	viommu_notifier_config_init(&cfg, MAP, unregister_on_second, &seen);
	assert_int_equal(viommu_notifier_register(f.as, &cfg, &n, NULL), 0);
	assert_int_equal(viommu_notifier_replay(n, NULL), 0);
	assert_int_equal(seen, 2);
	assert_int_equal(viommu_as_notify_flags(f.as), 0);
	fake_fini(&f);
}

struct walk_count {
	int n;
	uint64_t last_iova;
};

static int count_entries(void *ctx, const struct viommu_entry *e)
{
	struct walk_count *w = ctx;

	w->n++;
	w->last_iova = e->iova;
	return 0;
}

static void test_for_each_mapping(void **state)
{
	struct fake f;
	struct walk_count w = { 0 };

	fake_init(&f, &fake_ops_replay);
	fake_set(f.tables, 0x1000, 0x1000, 0, RW);
	fake_set(f.tables, MiB(2), MiB(2), 0, RW);
	fake_set(f.tables, GiB(1), 0x1000, 0, RW);
	assert_int_equal(viommu_as_sync(f.as, 0, UINT64_MAX, 0, NULL), 0);
	/* entries overlapping the range, unclipped */
	assert_int_equal(viommu_as_for_each_mapping(f.as, MiB(3), GiB(1),
						    count_entries, &w),
			 0);
	assert_int_equal(w.n, 2);
	assert_int_equal(w.last_iova, GiB(1));
	w.n = 0;
	assert_int_equal(
		viommu_as_for_each_mapping(f.as, 5, 4, count_entries, &w), 0);
	assert_int_equal(w.n, 0);
	fake_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_in_range),
		cmocka_unit_test(test_replay_needs_map_flag),
		cmocka_unit_test(test_replay_cost_is_what_is_mapped),
		cmocka_unit_test(test_replay_error_stops),
		cmocka_unit_test(test_replay_stops_when_unregistered),
		cmocka_unit_test(test_for_each_mapping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
