/* SPDX-License-Identifier: MIT */
/*
 * The notifier index finds exactly the notifiers a range concerns (item 9),
 * in registration order, against a brute-force scan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"

#define N 300

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void check_query(struct viommu__nindex *idx, struct viommu__nvec *live,
			uint64_t a, uint64_t b)
{
	struct viommu__nvec got = { 0 };
	size_t i, k = 0;

	assert_int_equal(viommu__nindex_query(idx, a, b, &got), 0);
	/* live is in registration order: the hits must come in that order */
	for (i = 0; i < live->n; i++) {
		struct viommu_notifier *n = live->v[i];

		if (n->cfg.last < a || n->cfg.start > b)
			continue;
		assert_true(k < got.n);
		assert_ptr_equal(got.v[k], n);
		k++;
	}
	assert_int_equal(k, got.n);
	viommu__nvec_free(&got);
}

static void test_random_against_scan(void **state)
{
	static struct viommu_notifier ns[N];
	struct viommu__nvec live = { 0 };
	struct viommu__nindex idx = { 0 };
	uint64_t x = 12345;
	size_t i, q;

	for (i = 0; i < N; i++) {
		uint64_t a = rnd(&x) >> (rnd(&x) & 63),
			 b = rnd(&x) >> (rnd(&x) & 63);

		ns[i].cfg.start = a < b ? a : b;
		ns[i].cfg.last = a < b ? b : a;
		if (i % 17 == 0) {
			ns[i].cfg.start = 0;
			ns[i].cfg.last = UINT64_MAX;
		}
		ns[i].gen = i + 1;
		assert_int_equal(viommu__nvec_push(&live, &ns[i]), 0);
		assert_int_equal(viommu__nindex_build(&idx, &live), 0);
		for (q = 0; q < 20; q++) {
			uint64_t c = rnd(&x) >> (rnd(&x) & 63);
			uint64_t d = rnd(&x) >> (rnd(&x) & 63);

			check_query(&idx, &live, c < d ? c : d, c < d ? d : c);
		}
	}
	check_query(&idx, &live, 0, UINT64_MAX);
	check_query(&idx, &live, UINT64_MAX, UINT64_MAX);
	/* shrinking rebuilds in place */
	while (live.n) {
		live.n--;
		assert_int_equal(viommu__nindex_build(&idx, &live), 0);
		check_query(&idx, &live, 0, UINT64_MAX);
		check_query(&idx, &live, 1u << 20, 1u << 30);
	}
	viommu__nindex_free(&idx);
	viommu__nvec_free(&live);
}

static void test_disjoint_ranges(void **state)
{
	static struct viommu_notifier ns[256];
	struct viommu__nvec live = { 0 };
	struct viommu__nindex idx = { 0 };
	size_t i;

	for (i = 0; i < 256; i++) {
		ns[i].cfg.start = i << 20;
		ns[i].cfg.last = (i << 20) + 0xfffff;
		ns[i].gen = i + 1;
		assert_int_equal(viommu__nvec_push(&live, &ns[i]), 0);
	}
	assert_int_equal(viommu__nindex_build(&idx, &live), 0);
	for (i = 0; i < 256; i++) {
		struct viommu__nvec got = { 0 };

		assert_int_equal(viommu__nindex_query(&idx, (i << 20) + 0x3000,
						      (i << 20) + 0x3fff, &got),
				 0);
		assert_int_equal(got.n, 1);
		assert_ptr_equal(got.v[0], &ns[i]);
		viommu__nvec_free(&got);
	}
	viommu__nindex_free(&idx);
	viommu__nvec_free(&live);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_against_scan),
		cmocka_unit_test(test_disjoint_ranges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
