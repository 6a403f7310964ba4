/* SPDX-License-Identifier: MIT */
/*
 * Threads (item 8): changes to one address space are serialized by the
 * library (callbacks never overlap), while lookups run on other threads at
 * the same time and always see a whole entry, old or new.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include <cmocka.h>

#include "fake.h"

#define PAGES 64
#define ROUNDS 2000

struct shared {
	struct viommu_as *as;
	int inside; /* callbacks running now */
	int max_inside;
	unsigned long events;
	int stop;
	int bad_lookups;
};

static int count_notify(struct viommu_notifier *n,
			const struct viommu_event *ev, void *opaque)
{
	struct shared *s = opaque;
	int now = __atomic_add_fetch(&s->inside, 1, __ATOMIC_SEQ_CST);

	if (now > s->max_inside)
		s->max_inside = now;
	s->events++;
	__atomic_sub_fetch(&s->inside, 1, __ATOMIC_SEQ_CST);
	return 0;
}

struct changer {
	struct shared *s;
	uint64_t base;
};

/* Flip PAGES pages between two targets: 0x1000000 + base and 0x2000000 + base. */
static void *change_loop(void *arg)
{
	struct changer *c = arg;
	struct viommu_entry e[PAGES];
	int r, i;

	for (r = 0; r < ROUNDS; r++) {
		for (i = 0; i < PAGES; i++)
			e[i] = (struct viommu_entry){
				c->base + (uint64_t)i * 0x1000, 0xfff,
				(r & 1 ? 0x2000000 : 0x1000000) + c->base +
					(uint64_t)i * 0x1000,
				RW
			};
		assert_int_equal(viommu_as_update(c->s->as, c->base,
						  c->base + PAGES * 0x1000 - 1,
						  e, PAGES, 0, NULL),
				 0);
	}
	return NULL;
}

static void *lookup_loop(void *arg)
{
	struct shared *s = arg;
	uint64_t x = 1;

	while (!__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST)) {
		struct viommu_entry e;
		uint64_t iova;

		x = x * 6364136223846793005ull + 1442695040888963407ull;
		iova = ((x >> 33) % (2 * PAGES)) * 0x1000 +
		       ((x >> 20) & 1 ? MiB(1) : 0);
		iova = (iova & ~(MiB(1) - 1)) | (iova & (PAGES * 0x1000 - 1));
		if (!viommu_as_lookup(s->as, iova, &e))
			continue;
		/* a whole entry: its target matches one of the two layouts */
		if (e.addr_mask != 0xfff || e.iova != (iova & ~0xfffull) ||
		    (e.translated_addr != 0x1000000 + e.iova &&
		     e.translated_addr != 0x2000000 + e.iova))
			__atomic_add_fetch(&s->bad_lookups, 1,
					   __ATOMIC_SEQ_CST);
	}
	return NULL;
}

static void test_serialized_changes_concurrent_lookups(void **state)
{
	struct fake f;
	struct shared s = { 0 };
	struct changer c1, c2;
	struct viommu_notifier_config cfg;
	struct viommu_notifier *n;
	pthread_t t1, t2, t3;

	fake_init(&f, &fake_ops_replay);
	s.as = f.as;
	viommu_notifier_config_init(&cfg, MAP | UNMAP, count_notify, &s);
	assert_int_equal(viommu_notifier_register(f.as, &cfg, &n, NULL), 0);
	c1 = (struct changer){ &s, 0 };
	c2 = (struct changer){ &s, MiB(1) };
	assert_int_equal(pthread_create(&t3, NULL, lookup_loop, &s), 0);
	assert_int_equal(pthread_create(&t1, NULL, change_loop, &c1), 0);
	assert_int_equal(pthread_create(&t2, NULL, change_loop, &c2), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	__atomic_store_n(&s.stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(t3, NULL);

	assert_int_equal(s.max_inside, 1);
	assert_int_equal(s.bad_lookups, 0);
	/* round 0 maps; each later round unmaps and maps every page */
	assert_int_equal(s.events, 2 * (PAGES + (ROUNDS - 1) * 2 * PAGES));
	assert_int_equal(viommu_as_mapping_count(f.as), 2 * PAGES);
	viommu_notifier_unregister(n);
	fake_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_serialized_changes_concurrent_lookups),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
