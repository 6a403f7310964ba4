/* SPDX-License-Identifier: MIT */
/*
 * Cutting ranges into naturally aligned powers of two (item 3: events).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"

struct pieces {
	struct viommu_entry p[200];
	size_t n;
};

static int collect(void *ctx, const struct viommu_entry *e)
{
	struct pieces *ps = ctx;

	assert_true(ps->n < 200);
	ps->p[ps->n++] = *e;
	return 0;
}

/* Pieces are aligned, contiguous, cover exactly [start, last], greedy. */
static void check_split(uint64_t start, uint64_t last)
{
	struct pieces ps = { .n = 0 };
	uint64_t at = start;
	size_t i;

	assert_int_equal(viommu_split_range(start, last, collect, &ps), 0);
	assert_true(ps.n > 0);
	for (i = 0; i < ps.n; i++) {
		assert_int_equal(ps.p[i].iova, at);
		assert_true(viommu__is_aligned_entry(ps.p[i].iova,
						     ps.p[i].addr_mask));
		/* greedy: the piece could not be doubled in place */
		if (ps.p[i].addr_mask != UINT64_MAX) {
			uint64_t doubled = ps.p[i].addr_mask * 2 + 1;

			assert_false((at & doubled) == 0 &&
				     doubled <= last - at);
		}
		at = ps.p[i].iova + ps.p[i].addr_mask + 1;
	}
	assert_int_equal(ps.p[ps.n - 1].iova + ps.p[ps.n - 1].addr_mask, last);
	/* at most two pieces per bit of the address */
	assert_true(ps.n <= 128);
}

static void test_whole_space_is_one_piece(void **state)
{
	struct pieces ps = { .n = 0 };

	assert_int_equal(viommu_split_range(0, UINT64_MAX, collect, &ps), 0);
	assert_int_equal(ps.n, 1);
	assert_int_equal(ps.p[0].iova, 0);
	assert_int_equal(ps.p[0].addr_mask, UINT64_MAX);
}

static void test_examples(void **state)
{
	struct pieces ps = { .n = 0 };

	/* [0x1000, 0x4fff]: 4K at 0x1000, 8K at 0x2000, 4K at 0x4000 */
	assert_int_equal(viommu_split_range(0x1000, 0x4fff, collect, &ps), 0);
	assert_int_equal(ps.n, 3);
	assert_int_equal(ps.p[0].addr_mask, 0xfff);
	assert_int_equal(ps.p[1].iova, 0x2000);
	assert_int_equal(ps.p[1].addr_mask, 0x1fff);
	assert_int_equal(ps.p[2].iova, 0x4000);
	assert_int_equal(ps.p[2].addr_mask, 0xfff);
}

static void test_edges(void **state)
{
	check_split(0, 0);
	check_split(UINT64_MAX, UINT64_MAX);
	check_split(1, UINT64_MAX);
	check_split(0, UINT64_MAX - 1);
	check_split(0x123, 0x456789);
	check_split(UINT64_C(0xfffffffffffff000), UINT64_MAX);
	check_split(UINT64_C(1) << 63, UINT64_MAX);
}

static void test_random_ranges(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	int i;

	for (i = 0; i < 20000; i++) {
		uint64_t a, b;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		a = x >> (x & 63);
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		b = x >> (x & 63);
		check_split(a < b ? a : b, a < b ? b : a);
	}
}

static int stop_at_two(void *ctx, const struct viommu_entry *e)
{
	return ++*(int *)ctx == 2 ? 42 : 0;
}

static void test_callback_stops(void **state)
{
	int calls = 0;

	assert_int_equal(
		viommu_split_range(0x1000, 0x4fff, stop_at_two, &calls), 42);
	assert_int_equal(calls, 2);
	/* an empty range visits nothing */
	assert_int_equal(viommu_split_range(5, 4, stop_at_two, &calls), 0);
}

static void test_strerror(void **state)
{
	assert_string_equal(viommu_strerror(-EINVAL), "invalid argument");
	assert_string_equal(viommu_strerror(-EBUSY),
			    "busy: called from inside a notification");
	assert_string_equal(viommu_strerror(-12345), "unknown error");
	assert_string_equal(viommu_version(), VIOMMU_VERSION_STRING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_space_is_one_piece),
		cmocka_unit_test(test_examples),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_random_ranges),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
