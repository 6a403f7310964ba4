/* SPDX-License-Identifier: MIT */
/*
 * Reentrancy (item 7): callbacks that unregister themselves or others, or
 * register new notifiers, while a notification is in flight.  The contract:
 *  - an unregistered notifier hears nothing after the unregister call,
 *    not even the rest of the event in flight;
 *  - a notifier registered from a callback hears nothing of the change in
 *    flight, and everything after it;
 *  - the others hear everything, as if nothing happened;
 *  - changing, replaying or walking the address space from its own callback
 *    is refused with -EBUSY.
 * Run under AddressSanitizer by the suite, so a use-after-free shows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake.h"

struct actor {
	struct viommu_as *as;
	struct viommu_notifier *self;
	struct viommu_notifier *victim;	      /* unregister this one ... */
	int victim_at;			      /* ... at this event (1-based) */
	struct viommu_notifier_config *spawn; /* register this ... */
	int spawn_at;			      /* ... at this event */
	struct viommu_notifier *spawned;
	int try_nested_at; /* try changing the as here */
	int nested_ret, replay_ret, walk_ret;
	int events;
	struct recorder *rec;
	int who;
};

static int nothing(void *ctx, const struct viommu_entry *e)
{
	return 0;
}

static int actor_notify(struct viommu_notifier *n,
			const struct viommu_event *ev, void *opaque)
{
	struct actor *a = opaque;
	struct rec_client c = { a->rec, a->who, n };

	a->events++;
	rec_notify(n, ev, &c);
	if (a->events == a->victim_at) {
		viommu_notifier_unregister(a->victim);
		if (a->victim == a->self)
			a->self = NULL;
	}
	if (a->events == a->spawn_at)
		assert_int_equal(viommu_notifier_register(a->as, a->spawn,
							  &a->spawned, NULL),
				 0);
	if (a->events == a->try_nested_at) {
		a->nested_ret = viommu_as_sync(a->as, 0, UINT64_MAX, 0, NULL);
		a->replay_ret = viommu_notifier_replay(n, NULL);
		a->walk_ret = viommu_as_for_each_mapping(a->as, 0, UINT64_MAX,
							 nothing, NULL);
	}
	return 0;
}

static void reg_actor(struct viommu_as *as, struct actor *a,
		      struct recorder *rec, int who, uint64_t start,
		      uint64_t last)
{
	struct viommu_notifier_config cfg;

	viommu_notifier_config_init(&cfg, MAP | UNMAP, actor_notify, a);
	cfg.start = start;
	cfg.last = last;
	a->as = as;
	a->rec = rec;
	a->who = who;
	assert_int_equal(viommu_notifier_register(as, &cfg, &a->self, NULL), 0);
}

static size_t count_who(const struct recorder *r, int who)
{
	size_t i, k = 0;

	for (i = 0; i < r->n; i++)
		k += r->ev[i].who == who;
	return k;
}

static void map_pages(struct fake *f, int n)
{
	for (int i = 0; i < n; i++)
		fake_set(f->tables, (uint64_t)i * 0x1000, 0x1000,
			 (uint64_t)i * 0x1000, RW);
}

static void test_unregister_self(void **state)
{
	struct fake f;
	struct recorder *rec = calloc(1, sizeof(*rec));
	struct actor a = { 0 }, b = { 0 };

	fake_init(&f, &fake_ops_replay);
	reg_actor(f.as, &a, rec, 1, 0, UINT64_MAX);
	reg_actor(f.as, &b, rec, 2, 0, UINT64_MAX);
	a.victim = a.self;
	a.victim_at = 2;
	map_pages(&f, 8);
	assert_int_equal(viommu_as_sync(f.as, 0, UINT64_MAX, 0, NULL), 0);
	assert_int_equal(count_who(rec, 1), 2);
	assert_int_equal(count_who(rec, 2), 8);
	assert_null(a.self);
	viommu_notifier_unregister(b.self);
	fake_fini(&f);
	free(rec);
}

static void test_unregister_self_mid_clipped_event(void **state)
{
	struct fake f;
	struct recorder *rec = calloc(1, sizeof(*rec));
	struct actor a = { 0 };

	fake_init(&f, &fake_ops_replay);
	/* one 2M entry clipped to 3 pieces; leave after the first piece */
	reg_actor(f.as, &a, rec, 1, 0x1800, 0x5fff);
	a.victim = a.self;
	a.victim_at = 1;
	fake_set(f.tables, 0, MiB(2), 0, RW);
	assert_int_equal(viommu_as_sync(f.as, 0, UINT64_MAX, 0, NULL), 0);
	assert_int_equal(rec->n, 1);
	fake_fini(&f);
	free(rec);
}

static void test_unregister_other(void **state)
{
	struct fake f;
	struct recorder *rec = calloc(1, sizeof(*rec));
	struct actor a = { 0 }, b = { 0 }, c = { 0 };

	fake_init(&f, &fake_ops_replay);
	reg_actor(f.as, &a, rec, 1, 0, UINT64_MAX);
	reg_actor(f.as, &b, rec, 2, 0, UINT64_MAX);
	reg_actor(f.as, &c, rec, 3, 0, UINT64_MAX);
	/* a removes b, which comes after it in the same event */
	a.victim = b.self;
	a.victim_at = 3;
	map_pages(&f, 6);
	assert_int_equal(viommu_as_sync(f.as, 0, UINT64_MAX, 0, NULL), 0);
	assert_int_equal(count_who(rec, 1), 6);
	assert_int_equal(count_who(rec, 2), 2);
	assert_int_equal(count_who(rec, 3), 6);
	/* and the union followed */
	viommu_notifier_unregister(a.self);
	viommu_notifier_unregister(c.self);
	assert_int_equal(viommu_as_notify_flags(f.as), 0);
	fake_fini(&f);
	free(rec);
}

static void test_register_from_callback(void **state)
{
	struct fake f;
	struct recorder *rec = calloc(1, sizeof(*rec));
	struct actor a = { 0 };
	struct rec_client late = { rec, 9, NULL };
	struct viommu_notifier_config cfg;

	fake_init(&f, &fake_ops_replay);
	reg_actor(f.as, &a, rec, 1, 0, UINT64_MAX);
	viommu_notifier_config_init(&cfg, MAP | UNMAP, rec_notify, &late);
	a.spawn = &cfg;
	a.spawn_at = 1;
	map_pages(&f, 4);
	assert_int_equal(viommu_as_sync(f.as, 0, UINT64_MAX, 0, NULL), 0);
	assert_non_null(a.spawned);
	/* nothing of the change in flight */
	assert_int_equal(count_who(rec, 9), 0);
	assert_int_equal(count_who(rec, 1), 4);
	/* everything after */
	fake_clear(f.tables, 0, 0xfff);
	assert_int_equal(viommu_as_sync(f.as, 0, UINT64_MAX, 0, NULL), 0);
	assert_int_equal(count_who(rec, 9), 1);
	viommu_notifier_unregister(a.spawned);
	fake_fini(&f);
	free(rec);
}

static void test_nested_change_is_busy(void **state)
{
	struct fake f;
	struct recorder *rec = calloc(1, sizeof(*rec));
	struct actor a = { 0 };

	fake_init(&f, &fake_ops_replay);
	reg_actor(f.as, &a, rec, 1, 0, UINT64_MAX);
	a.try_nested_at = 1;
	map_pages(&f, 2);
	assert_int_equal(viommu_as_sync(f.as, 0, UINT64_MAX, 0, NULL), 0);
	assert_int_equal(a.nested_ret, -EBUSY);
	assert_int_equal(a.replay_ret, -EBUSY);
	assert_int_equal(a.walk_ret, 0); /* reading is fine */
	assert_int_equal(count_who(rec, 1), 2);
	fake_fini(&f);
	free(rec);
}

static void end_unregisters(struct viommu_notifier *n, void *opaque)
{
	viommu_notifier_unregister(n);
}

static void test_unregister_from_batch_end(void **state)
{
	struct fake f;
	struct recorder *rec = calloc(1, sizeof(*rec));
	struct rec_client c = { rec, 1, NULL };
	struct viommu_notifier_config cfg;

	fake_init(&f, &fake_ops_replay);
	viommu_notifier_config_init(&cfg, MAP | UNMAP, rec_notify, &c);
	cfg.batch_end = end_unregisters;
	assert_int_equal(viommu_notifier_register(f.as, &cfg, &c.handle, NULL),
			 0);
	map_pages(&f, 3);
	assert_int_equal(viommu_as_sync(f.as, 0, UINT64_MAX, 0, NULL), 0);
	assert_int_equal(rec->n, 3);
	fake_clear(f.tables, 0, UINT64_MAX);
	assert_int_equal(viommu_as_sync(f.as, 0, UINT64_MAX, 0, NULL), 0);
	assert_int_equal(rec->n, 3);
	assert_int_equal(viommu_as_notify_flags(f.as), 0);
	fake_fini(&f);
	free(rec);
}

/* Everyone leaves during a failing change's rollback: nothing dangles. */
static int refuse_and_leave(struct viommu_notifier *n,
			    const struct viommu_event *ev, void *opaque)
{
	struct viommu_notifier **all = opaque;

	if (ev->type != VIOMMU_NOTIFY_MAP)
		return 0;
	for (int i = 0; i < 3; i++) {
		viommu_notifier_unregister(all[i]);
		all[i] = NULL;
	}
	return -ENOSPC;
}

static void test_unregister_all_in_failure(void **state)
{
	struct fake f;
	struct viommu_notifier *all[3] = { NULL, NULL, NULL };
	struct viommu_notifier_config cfg;
	int i;

	fake_init(&f, &fake_ops_replay);
	viommu_notifier_config_init(&cfg, MAP | UNMAP, refuse_and_leave, all);
	for (i = 0; i < 3; i++)
		assert_int_equal(
			viommu_notifier_register(f.as, &cfg, &all[i], NULL), 0);
	map_pages(&f, 2);
	assert_int_equal(viommu_as_sync(f.as, 0, UINT64_MAX, 0, NULL), -ENOSPC);
	assert_int_equal(viommu_as_mapping_count(f.as), 0);
	assert_int_equal(viommu_as_notify_flags(f.as), 0);
	fake_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unregister_self),
		cmocka_unit_test(test_unregister_self_mid_clipped_event),
		cmocka_unit_test(test_unregister_other),
		cmocka_unit_test(test_register_from_callback),
		cmocka_unit_test(test_nested_change_is_busy),
		cmocka_unit_test(test_unregister_from_batch_end),
		cmocka_unit_test(test_unregister_all_in_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
