// SPDX-License-Identifier: MIT
/*
 * Unit tests of the entry map (src/entry_map.c): edge cases at both ends of
 * the 64-bit space, a million sequential entries (memory per entry, full
 * walks, removal in random order), and a seeded differential test against a
 * sorted array.
 *
 * Environment:
 *   VIOMMU_TEST_QUICK=1    a tenth of the sizes (for slow tools)
 *   VIOMMU_TEST_SEED=N     the seed of the randomized tests (printed)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entry_map.h"

#define PAGE_SHIFT 12
#define PAGE_MASK UINT64_C(0xfff)
#define TOP_PAGE UINT64_C(0xfffffffffffff000)

/* ---- helpers ---- */

static uint64_t rng_state;

/* splitmix64: small, fast and good enough to drive tests. */
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* A value in [0, n), n > 0. */
static uint64_t rnd_below(uint64_t n)
{
	return rnd() % n;
}

static void seed_rng(const char *test)
{
	const char *s = getenv("VIOMMU_TEST_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : UINT64_C(20240601);

	print_message("%s: seed %" PRIu64 " (set VIOMMU_TEST_SEED to change)\n",
		      test, seed);
	rng_state = seed;
}

/* n, or a tenth of it when VIOMMU_TEST_QUICK is set. */
static size_t scaled(size_t n)
{
	const char *q = getenv("VIOMMU_TEST_QUICK");

	return q && *q && strcmp(q, "0") != 0 ? n / 10 : n;
}

static struct viommu_entry entry(uint64_t iova, uint64_t mask, uint64_t pa,
				 unsigned perm)
{
	struct viommu_entry e = {
		.iova = iova,
		.addr_mask = mask,
		.translated_addr = pa,
		.perm = perm,
	};
	return e;
}

static void assert_entry_eq(const struct viommu_entry *a,
			    const struct viommu_entry *b)
{
	assert_int_equal(a->iova, b->iova);
	assert_int_equal(a->addr_mask, b->addr_mask);
	assert_int_equal(a->translated_addr, b->translated_addr);
	assert_int_equal(a->perm, b->perm);
}

static void insert_ok(struct viommu__emap *map, uint64_t iova, uint64_t mask,
		      uint64_t pa, unsigned perm)
{
	struct viommu_entry e = entry(iova, mask, pa, perm);

	assert_int_equal(viommu__emap_insert(map, &e), 0);
}

/* Lookup at @addr finds exactly the entry starting at @iova. */
static void assert_lookup(const struct viommu__emap *map, uint64_t addr,
			  uint64_t iova, uint64_t mask)
{
	struct viommu_entry out;

	assert_true(viommu__emap_lookup(map, addr, &out));
	assert_int_equal(out.iova, iova);
	assert_int_equal(out.addr_mask, mask);
}

static void assert_no_lookup(const struct viommu__emap *map, uint64_t addr)
{
	struct viommu_entry out;

	assert_false(viommu__emap_lookup(map, addr, &out));
}

/* Seek from @addr lands on the entry starting at @iova. */
static void assert_seek(const struct viommu__emap *map, uint64_t addr,
			uint64_t iova)
{
	struct viommu__emap_cursor c;
	struct viommu_entry out;

	assert_true(viommu__emap_seek(map, addr, &c));
	assert_non_null(c.leaf);
	assert_int_equal(viommu__emap_iova(&c), iova);
	viommu__emap_get(&c, &out);
	assert_int_equal(out.iova, iova);
}

static void assert_seek_end(const struct viommu__emap *map, uint64_t addr)
{
	struct viommu__emap_cursor c;

	assert_false(viommu__emap_seek(map, addr, &c));
	assert_null(c.leaf);
}

/* ---- small cases ---- */

static void test_empty(void **state)
{
	struct viommu__emap map;
	struct viommu__emap_cursor c;

	(void)state;
	viommu__emap_init(&map);
	assert_int_equal(map.count, 0);
	assert_int_equal(map.bytes, 0);
	assert_seek_end(&map, 0);
	assert_seek_end(&map, UINT64_MAX);
	assert_no_lookup(&map, 0);
	assert_no_lookup(&map, UINT64_MAX);
	assert_int_equal(viommu__emap_remove(&map, 0), -ENOENT);
	assert_false(viommu__emap_seek(&map, 12345, &c));
	assert_false(viommu__emap_next(&c));
	viommu__emap_destroy(&map);
	assert_int_equal(map.count, 0);
	assert_int_equal(map.bytes, 0);
}

static void test_few(void **state)
{
	struct viommu__emap map;
	struct viommu__emap_cursor c;
	struct viommu_entry out;
	static const uint64_t order[] = { 5, 0x1000, 0x3000, 0x200000,
					  TOP_PAGE };
	unsigned i;

	(void)state;
	viommu__emap_init(&map);
	/* Out of order, of different sizes, at both ends of the space. */
	insert_ok(&map, TOP_PAGE, PAGE_MASK, UINT64_MAX - PAGE_MASK,
		  VIOMMU_PERM_NONE);
	insert_ok(&map, 0x3000, PAGE_MASK, 0x7000, VIOMMU_PERM_READ);
	insert_ok(&map, 0x200000, 0x1fffff, 0x40000000, VIOMMU_PERM_RW);
	insert_ok(&map, 0x1000, PAGE_MASK, 0xabc000, VIOMMU_PERM_WRITE);
	insert_ok(&map, 5, 0, UINT64_MAX, VIOMMU_PERM_RW);
	assert_int_equal(map.count, 5);
	assert_true(map.bytes > 0);

	assert_true(viommu__emap_lookup(&map, 0x1abc, &out));
	assert_int_equal(out.iova, 0x1000);
	assert_int_equal(out.addr_mask, PAGE_MASK);
	assert_int_equal(out.translated_addr, 0xabc000);
	assert_int_equal(out.perm, VIOMMU_PERM_WRITE);

	assert_lookup(&map, 5, 5, 0);
	assert_no_lookup(&map, 4);
	assert_no_lookup(&map, 6);
	assert_lookup(&map, 0x1000, 0x1000, PAGE_MASK);
	assert_lookup(&map, 0x1fff, 0x1000, PAGE_MASK);
	assert_no_lookup(&map, 0x2000);
	assert_no_lookup(&map, 0x2fff);
	assert_lookup(&map, 0x3000, 0x3000, PAGE_MASK);
	assert_no_lookup(&map, 0x4000);
	assert_no_lookup(&map, 0x1fffff);
	assert_lookup(&map, 0x200000, 0x200000, 0x1fffff);
	assert_lookup(&map, 0x3fffff, 0x200000, 0x1fffff);
	assert_no_lookup(&map, 0x400000);
	assert_no_lookup(&map, TOP_PAGE - 1);
	assert_lookup(&map, TOP_PAGE, TOP_PAGE, PAGE_MASK);
	assert_lookup(&map, UINT64_MAX, TOP_PAGE, PAGE_MASK);

	assert_true(viommu__emap_lookup(&map, UINT64_MAX, &out));
	assert_int_equal(out.translated_addr, UINT64_MAX - PAGE_MASK);
	assert_int_equal(out.perm, VIOMMU_PERM_NONE);
	assert_true(viommu__emap_lookup(&map, 5, &out));
	assert_int_equal(out.translated_addr, UINT64_MAX);

	assert_seek(&map, 0, 5);
	assert_seek(&map, 5, 5);
	assert_seek(&map, 6, 0x1000);
	assert_seek(&map, 0x1fff, 0x1000);
	assert_seek(&map, 0x2000, 0x3000);
	assert_seek(&map, 0x4000, 0x200000);
	assert_seek(&map, 0x3fffff, 0x200000);
	assert_seek(&map, 0x400000, TOP_PAGE);
	assert_seek(&map, TOP_PAGE - 1, TOP_PAGE);
	assert_seek(&map, UINT64_MAX, TOP_PAGE);

	/* A walk sees them in order, then the end. */
	assert_true(viommu__emap_seek(&map, 0, &c));
	for (i = 0; i < 5; i++) {
		assert_int_equal(viommu__emap_iova(&c), order[i]);
		assert_int_equal(viommu__emap_next(&c), i < 4);
	}
	assert_null(c.leaf);
	assert_false(viommu__emap_next(&c));

	/* Only the exact start of an entry removes it. */
	assert_int_equal(viommu__emap_remove(&map, 0x1800), -ENOENT);
	assert_int_equal(viommu__emap_remove(&map, 0x2000), -ENOENT);
	assert_int_equal(viommu__emap_remove(&map, UINT64_MAX), -ENOENT);
	assert_int_equal(viommu__emap_remove(&map, 0x3000), 0);
	assert_int_equal(viommu__emap_remove(&map, 0x3000), -ENOENT);
	assert_int_equal(map.count, 4);
	assert_no_lookup(&map, 0x3000);
	assert_seek(&map, 0x2000, 0x200000);
	assert_int_equal(viommu__emap_remove(&map, 5), 0);
	assert_seek(&map, 0, 0x1000);
	assert_int_equal(viommu__emap_remove(&map, TOP_PAGE), 0);
	assert_seek_end(&map, 0x400000);
	assert_seek_end(&map, UINT64_MAX);
	assert_int_equal(map.count, 2);

	viommu__emap_destroy(&map);
	assert_int_equal(map.count, 0);
	assert_int_equal(map.bytes, 0);
	assert_null(map.root);
}

/* One entry of 2^64 bytes: iova 0, addr_mask UINT64_MAX. */
static void test_whole_space(void **state)
{
	struct viommu__emap map;
	struct viommu__emap_cursor c;
	struct viommu_entry out, e = entry(0, UINT64_MAX, 0x1234000, 3);

	(void)state;
	viommu__emap_init(&map);
	assert_int_equal(viommu__emap_insert(&map, &e), 0);
	assert_int_equal(map.count, 1);

	assert_true(viommu__emap_lookup(&map, 0, &out));
	assert_entry_eq(&out, &e);
	assert_true(viommu__emap_lookup(&map, UINT64_C(1) << 63, &out));
	assert_entry_eq(&out, &e);
	assert_true(viommu__emap_lookup(&map, UINT64_MAX, &out));
	assert_entry_eq(&out, &e);

	assert_true(viommu__emap_seek(&map, UINT64_MAX, &c));
	viommu__emap_get(&c, &out);
	assert_entry_eq(&out, &e);
	assert_false(viommu__emap_next(&c));
	assert_null(c.leaf);

	assert_int_equal(viommu__emap_remove(&map, 1), -ENOENT);
	assert_int_equal(viommu__emap_remove(&map, 0), 0);
	assert_int_equal(map.count, 0);
	assert_int_equal(map.bytes, 0);
	assert_no_lookup(&map, 0);

	/* And the largest entry that is not the whole space, at the top. */
	e = entry(UINT64_C(1) << 63, UINT64_MAX >> 1, 0, VIOMMU_PERM_READ);
	assert_int_equal(viommu__emap_insert(&map, &e), 0);
	assert_no_lookup(&map, (UINT64_C(1) << 63) - 1);
	assert_lookup(&map, UINT64_MAX, UINT64_C(1) << 63, UINT64_MAX >> 1);
	assert_seek(&map, 0, UINT64_C(1) << 63);
	viommu__emap_destroy(&map);
	assert_int_equal(map.bytes, 0);
}

/* Every order from 0 to 64 round-trips through the packed encoding. */
static void test_orders(void **state)
{
	struct viommu__emap map;
	struct viommu_entry out;
	unsigned order;

	(void)state;
	for (order = 0; order <= 64; order++) {
		uint64_t mask = order == 64 ? UINT64_MAX :
					      (UINT64_C(1) << order) - 1;
		/* The highest aligned block of that size. */
		uint64_t iova = ~mask;
		struct viommu_entry e = entry(iova, mask, ~iova, order & 3);

		viommu__emap_init(&map);
		assert_int_equal(viommu__emap_insert(&map, &e), 0);
		assert_true(viommu__emap_lookup(&map, UINT64_MAX, &out));
		assert_entry_eq(&out, &e);
		assert_true(viommu__emap_lookup(&map, iova, &out));
		assert_entry_eq(&out, &e);
		if (iova)
			assert_no_lookup(&map, iova - 1);
		viommu__emap_destroy(&map);
	}
}

/* ---- a million sequential pages ---- */

static uint64_t seq_pa(size_t i)
{
	return (UINT64_C(0x80000000) + ((uint64_t)i << PAGE_SHIFT)) ^
	       ((uint64_t)i << 40);
}

/* Walk the whole map, checking it holds exactly the pages in @present. */
static void check_pages(const struct viommu__emap *map, const uint8_t *present,
			size_t n)
{
	struct viommu__emap_cursor c;
	struct viommu_entry out;
	size_t seen = 0, prev = 0;
	bool more;

	for (more = viommu__emap_seek(map, 0, &c); more;
	     more = viommu__emap_next(&c)) {
		size_t i;

		viommu__emap_get(&c, &out);
		i = (size_t)(out.iova >> PAGE_SHIFT);
		assert_true(i < n);
		assert_true(present[i]);
		assert_true(seen == 0 || i > prev);
		assert_int_equal(out.addr_mask, PAGE_MASK);
		assert_int_equal(out.translated_addr, seq_pa(i));
		assert_int_equal(out.perm, i & 3);
		prev = i;
		seen++;
	}
	assert_int_equal(seen, map->count);
}

static void test_sequential(void **state)
{
	const size_t n = scaled(1000000);
	struct viommu__emap map;
	struct viommu__emap_cursor c;
	uint8_t *present = malloc(n);
	uint32_t *perm = malloc(n * sizeof(*perm));
	size_t i, left;
	bool more;

	(void)state;
	assert_non_null(present);
	assert_non_null(perm);
	seed_rng("sequential");
	viommu__emap_init(&map);
	for (i = 0; i < n; i++) {
		insert_ok(&map, (uint64_t)i << PAGE_SHIFT, PAGE_MASK, seq_pa(i),
			  i & 3);
		present[i] = 1;
	}
	assert_int_equal(map.count, n);
	print_message("sequential: %zu entries, %zu bytes, %.2f bytes/entry\n",
		      map.count, map.bytes, (double)map.bytes / map.count);
	assert_true(map.bytes <= 24 * map.count);

	/* Seek + next visits every entry in order. */
	i = 0;
	for (more = viommu__emap_seek(&map, 0, &c); more;
	     more = viommu__emap_next(&c)) {
		struct viommu_entry out;

		viommu__emap_get(&c, &out);
		assert_int_equal(out.iova, (uint64_t)i << PAGE_SHIFT);
		assert_int_equal(out.addr_mask, PAGE_MASK);
		assert_int_equal(out.translated_addr, seq_pa(i));
		assert_int_equal(out.perm, i & 3);
		i++;
	}
	assert_int_equal(i, n);
	assert_seek_end(&map, (uint64_t)n << PAGE_SHIFT);
	for (i = 0; i < 10000; i++) {
		uint64_t addr = rnd_below((uint64_t)n << PAGE_SHIFT);

		assert_lookup(&map, addr, addr & ~PAGE_MASK, PAGE_MASK);
	}

	/* Remove everything in random order, checking as we go. */
	for (i = 0; i < n; i++)
		perm[i] = (uint32_t)i;
	for (i = n - 1; i > 0; i--) {
		size_t j = (size_t)rnd_below(i + 1);
		uint32_t t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	for (left = n, i = 0; i < n; i++) {
		size_t probe = (size_t)rnd_below(n);
		struct viommu_entry out;

		assert_int_equal(viommu__emap_remove(
					 &map, (uint64_t)perm[i] << PAGE_SHIFT),
				 0);
		present[perm[i]] = 0;
		left--;
		assert_int_equal(map.count, left);
		assert_int_equal(
			viommu__emap_lookup(&map, (uint64_t)probe << PAGE_SHIFT,
					    &out),
			present[probe]);
		if (i % (n / 8) == 0 || left < 100) {
			check_pages(&map, present, n);
			/* Merges keep removal from leaving the tree sparse. */
			assert_true(map.bytes <= 80 * left + 2048);
		}
	}
	assert_int_equal(viommu__emap_remove(&map, 0), -ENOENT);
	assert_int_equal(map.count, 0);
	assert_int_equal(map.bytes, 0);
	assert_null(map.root);
	assert_int_equal(map.height, 0);
	viommu__emap_destroy(&map);
	free(perm);
	free(present);
}

/* Decreasing IOVAs: every insert lands before the first entry. */
static void test_descending(void **state)
{
	const size_t n = scaled(200000);
	struct viommu__emap map;
	uint8_t *present = malloc(n);
	size_t i;

	(void)state;
	assert_non_null(present);
	viommu__emap_init(&map);
	for (i = n; i-- > 0;) {
		insert_ok(&map, (uint64_t)i << PAGE_SHIFT, PAGE_MASK, seq_pa(i),
			  i & 3);
		present[i] = 1;
	}
	print_message("descending: %zu entries, %.2f bytes/entry\n", map.count,
		      (double)map.bytes / map.count);
	assert_true(map.bytes <= 24 * map.count);
	check_pages(&map, present, n);
	/* Remove every other one, then the rest, in increasing order. */
	for (i = 0; i < n; i += 2) {
		assert_int_equal(viommu__emap_remove(&map,
						     (uint64_t)i << PAGE_SHIFT),
				 0);
		present[i] = 0;
	}
	check_pages(&map, present, n);
	for (i = 1; i < n; i += 2)
		assert_int_equal(viommu__emap_remove(&map,
						     (uint64_t)i << PAGE_SHIFT),
				 0);
	assert_int_equal(map.count, 0);
	assert_int_equal(map.bytes, 0);
	viommu__emap_destroy(&map);
	free(present);
}

/* Walk and look up every page below @n against @present. */
static void check_pages_lookup(const struct viommu__emap *map,
			       const uint8_t *present, size_t n)
{
	size_t i;

	check_pages(map, present, n);
	for (i = 0; i < n; i++) {
		uint64_t addr = ((uint64_t)i << PAGE_SHIFT) + (i & PAGE_MASK);
		struct viommu_entry out;

		assert_int_equal(viommu__emap_lookup(map, addr, &out),
				 present[i]);
	}
}

/*
 * Map upwards, then unmap the last entry first.  The sizes are picked so
 * that, with the current node sizes, the last leaf and the last inner node
 * fall below their minimum and take entries and children from their left
 * neighbours; the test is valid whatever the node sizes are.
 */
static void test_lifo(void **state)
{
	static const size_t sizes[] = { 65, 1832, 5000 };
	unsigned s;

	(void)state;
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		const size_t n = sizes[s];
		uint8_t *present = calloc(n, 1);
		struct viommu__emap map;
		size_t i;

		assert_non_null(present);
		viommu__emap_init(&map);
		for (i = 0; i < n; i++) {
			insert_ok(&map, (uint64_t)i << PAGE_SHIFT, PAGE_MASK,
				  seq_pa(i), i & 3);
			present[i] = 1;
		}
		for (i = n; i-- > 0;) {
			assert_int_equal(
				viommu__emap_remove(&map,
						    (uint64_t)i << PAGE_SHIFT),
				0);
			present[i] = 0;
			if (i % 16 == 0 || n - i < 80)
				check_pages_lookup(&map, present, n);
		}
		assert_int_equal(map.bytes, 0);
		viommu__emap_destroy(&map);
		free(present);
	}
}

/* Random order: nodes end up partly full; report how much memory that is. */
static void test_random_order_fill(void **state)
{
	const size_t n = scaled(1000000);
	struct viommu__emap map;
	uint32_t *perm = malloc(n * sizeof(*perm));
	size_t i;

	(void)state;
	assert_non_null(perm);
	seed_rng("random_order_fill");
	for (i = 0; i < n; i++)
		perm[i] = (uint32_t)i;
	for (i = n - 1; i > 0; i--) {
		size_t j = (size_t)rnd_below(i + 1);
		uint32_t t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	viommu__emap_init(&map);
	for (i = 0; i < n; i++)
		insert_ok(&map, (uint64_t)perm[i] << PAGE_SHIFT, PAGE_MASK,
			  seq_pa(perm[i]), perm[i] & 3);
	print_message("random order: %zu entries, %.2f bytes/entry\n",
		      map.count, (double)map.bytes / map.count);
	assert_true(map.bytes <= 40 * map.count);
	viommu__emap_destroy(&map);
	assert_int_equal(map.bytes, 0);
	free(perm);
}

/* ---- differential test against a sorted array ---- */

/*
 * The reference: entries sorted by IOVA in parallel arrays.  As entries do
 * not overlap, their last addresses are sorted too, so "the first entry whose
 * last address is >= addr" is a binary search over last[].
 */
struct ref {
	uint64_t *iova, *last, *pa;
	uint8_t *perm;
	size_t n, cap;
};

static void ref_init(struct ref *r, size_t cap)
{
	r->iova = malloc(cap * sizeof(*r->iova));
	r->last = malloc(cap * sizeof(*r->last));
	r->pa = malloc(cap * sizeof(*r->pa));
	r->perm = malloc(cap);
	assert_true(r->iova && r->last && r->pa && r->perm);
	r->n = 0;
	r->cap = cap;
}

static void ref_fini(struct ref *r)
{
	free(r->iova);
	free(r->last);
	free(r->pa);
	free(r->perm);
}

/* Index of the first entry whose last address is >= @addr (n if none). */
static size_t ref_seek(const struct ref *r, uint64_t addr)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->last[mid] >= addr)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static struct viommu_entry ref_entry(const struct ref *r, size_t i)
{
	return entry(r->iova[i], r->last[i] - r->iova[i], r->pa[i], r->perm[i]);
}

static bool ref_overlaps(const struct ref *r, const struct viommu_entry *e)
{
	size_t i = ref_seek(r, e->iova);

	return i < r->n && r->iova[i] <= e->iova + e->addr_mask;
}

static void ref_insert(struct ref *r, const struct viommu_entry *e)
{
	size_t i = ref_seek(r, e->iova), tail = r->n - i;

	assert_true(r->n < r->cap);
	memmove(&r->iova[i + 1], &r->iova[i], tail * sizeof(*r->iova));
	memmove(&r->last[i + 1], &r->last[i], tail * sizeof(*r->last));
	memmove(&r->pa[i + 1], &r->pa[i], tail * sizeof(*r->pa));
	memmove(&r->perm[i + 1], &r->perm[i], tail);
	r->iova[i] = e->iova;
	r->last[i] = e->iova + e->addr_mask;
	r->pa[i] = e->translated_addr;
	r->perm[i] = (uint8_t)e->perm;
	r->n++;
}

static void ref_delete(struct ref *r, size_t i)
{
	size_t tail = r->n - i - 1;

	memmove(&r->iova[i], &r->iova[i + 1], tail * sizeof(*r->iova));
	memmove(&r->last[i], &r->last[i + 1], tail * sizeof(*r->last));
	memmove(&r->pa[i], &r->pa[i + 1], tail * sizeof(*r->pa));
	memmove(&r->perm[i], &r->perm[i + 1], tail);
	r->n--;
}

/* Addresses live in two 16 GiB regions: the bottom and the top. */
#define REGION_BITS 34
#define REGION_SIZE (UINT64_C(1) << REGION_BITS)

static uint64_t random_region_addr(void)
{
	uint64_t off = rnd_below(REGION_SIZE);

	return rnd() & 1 ? off : UINT64_MAX - REGION_SIZE + 1 + off;
}

/* Mostly 4 KiB (order 12), sometimes up to 1 GiB (order 30). */
static unsigned random_order(void)
{
	uint64_t r = rnd_below(100);

	if (r < 60)
		return 12;
	if (r < 85)
		return 13 + (unsigned)rnd_below(8);
	return 21 + (unsigned)rnd_below(10);
}

static uint64_t order_mask(unsigned order)
{
	return (UINT64_C(1) << order) - 1;
}

/* How the differential test picks what to map and what to unmap. */
enum pattern {
	PAT_RANDOM,	/* anywhere, any size; unmap any entry */
	PAT_ASCENDING,	/* a guest mapping a range upwards; unmap any */
	PAT_DESCENDING, /* downwards, as top-down IOVA allocators do */
	PAT_FIFO,	/* upwards, unmapping the lowest: a ring of buffers */
	PAT_COUNT,
};

struct workload {
	enum pattern pat;
	uint64_t cursor; /* where the next ascending/descending entry goes */
	size_t target;	 /* how many entries to aim for */
};

static void workload_restart(struct workload *w)
{
	w->cursor = random_region_addr() & ~PAGE_MASK;
}

/* The next entry to try to map (it may overlap one already there). */
static struct viommu_entry next_entry(struct workload *w)
{
	unsigned order = rnd_below(10) ? 12 : 13 + (unsigned)rnd_below(9);
	uint64_t mask = order_mask(order), iova;

	switch (w->pat) {
	case PAT_ASCENDING:
	case PAT_FIFO:
		if (rnd_below(8) == 0)
			w->cursor += (1 + rnd_below(4)) << PAGE_SHIFT;
		if (w->cursor > UINT64_MAX - mask)
			workload_restart(w);
		iova = (w->cursor + mask) & ~mask;
		w->cursor = iova + mask + 1; /* 0 after the top: fine */
		break;
	case PAT_DESCENDING:
		if (rnd_below(8) == 0)
			w->cursor -= (1 + rnd_below(4)) << PAGE_SHIFT;
		if (w->cursor <= mask)
			workload_restart(w);
		iova = (w->cursor - mask - 1) & ~mask;
		w->cursor = iova;
		break;
	default:
		mask = order_mask(random_order());
		iova = random_region_addr() & ~mask;
		break;
	}
	return entry(iova, mask, rnd(), (unsigned)rnd_below(4));
}

/* An address worth asking about: often at or next to an entry's edges. */
static uint64_t random_probe(const struct ref *r)
{
	size_t i;

	if (r->n == 0 || rnd_below(4) == 0)
		return rnd_below(8) == 0 ? rnd() : random_region_addr();
	i = (size_t)rnd_below(r->n);
	switch (rnd_below(5)) {
	case 0:
		return r->iova[i] - 1;
	case 1:
		return r->iova[i];
	case 2:
		return r->iova[i] + rnd_below(r->last[i] - r->iova[i] + 1);
	case 3:
		return r->last[i];
	default:
		return r->last[i] + 1;
	}
}

/* Seek and lookup at @addr agree with the reference. */
static void check_probe(const struct viommu__emap *map, const struct ref *r,
			uint64_t addr)
{
	struct viommu__emap_cursor c;
	struct viommu_entry got, want;
	size_t i = ref_seek(r, addr);
	bool found = viommu__emap_seek(map, addr, &c);

	assert_int_equal(found, i < r->n);
	if (found) {
		want = ref_entry(r, i);
		viommu__emap_get(&c, &got);
		assert_entry_eq(&got, &want);
		assert_int_equal(viommu__emap_iova(&c), want.iova);
		/* The cursor goes on to the next entry. */
		assert_int_equal(viommu__emap_next(&c), i + 1 < r->n);
		if (i + 1 < r->n)
			assert_int_equal(viommu__emap_iova(&c), r->iova[i + 1]);
	} else {
		assert_null(c.leaf);
	}

	found = viommu__emap_lookup(map, addr, &got);
	assert_int_equal(found, i < r->n && r->iova[i] <= addr);
	if (found) {
		want = ref_entry(r, i);
		assert_entry_eq(&got, &want);
	}
}

/* Probe at and around both edges of a range that just changed. */
static void check_edges(const struct viommu__emap *map, const struct ref *r,
			const struct viommu_entry *e)
{
	uint64_t last = e->iova + e->addr_mask;

	check_probe(map, r, e->iova - 1);
	check_probe(map, r, e->iova);
	check_probe(map, r, last);
	check_probe(map, r, last + 1);
}

/* The whole map equals the reference, and seeks find every entry. */
static void check_all(const struct viommu__emap *map, const struct ref *r)
{
	struct viommu__emap_cursor c;
	struct viommu_entry got, want;
	size_t i = 0;
	bool more;

	assert_int_equal(map->count, r->n);
	assert_int_equal(map->bytes == 0, r->n == 0);
	for (more = viommu__emap_seek(map, 0, &c); more;
	     more = viommu__emap_next(&c)) {
		assert_true(i < r->n);
		if (i > 0)
			assert_true(r->iova[i] > r->last[i - 1]);
		want = ref_entry(r, i);
		viommu__emap_get(&c, &got);
		assert_entry_eq(&got, &want);
		i++;
	}
	assert_int_equal(i, r->n);

	for (i = 0; i < r->n; i++) {
		assert_true(viommu__emap_seek(map, r->iova[i], &c));
		assert_int_equal(viommu__emap_iova(&c), r->iova[i]);
		assert_true(viommu__emap_seek(map, r->last[i], &c));
		assert_int_equal(viommu__emap_iova(&c), r->iova[i]);
	}
}

static bool try_insert(struct viommu__emap *map, struct ref *r,
		       const struct viommu_entry *e)
{
	if (ref_overlaps(r, e))
		return false;
	assert_int_equal(viommu__emap_insert(map, e), 0);
	ref_insert(r, e);
	check_edges(map, r, e);
	return true;
}

static void remove_at(struct viommu__emap *map, struct ref *r, size_t i)
{
	struct viommu_entry gone = ref_entry(r, i);

	assert_int_equal(viommu__emap_remove(map, gone.iova), 0);
	ref_delete(r, i);
	check_edges(map, r, &gone);

	/*
	 * Sometimes map a larger block over where it was, as a guest that
	 * replaces pages by a huge page does.  Such a block can start in the
	 * leaf before and cover where that leaf's right neighbour used to
	 * start: what exact keys are for.
	 */
	if (rnd_below(4) == 0 && gone.addr_mask < order_mask(30)) {
		unsigned order = (unsigned)__builtin_popcountll(gone.addr_mask);
		struct viommu_entry big;

		order += 1 + (unsigned)rnd_below(9);
		if (order > 30)
			order = 30;
		big = entry(gone.iova & ~order_mask(order), order_mask(order),
			    rnd(), (unsigned)rnd_below(4));
		try_insert(map, r, &big);
	}
}

static void test_random_differential(void **state)
{
	const size_t ops = scaled(200000), max_n = 6000;
	struct viommu__emap map;
	struct workload w = { 0 };
	size_t op, max_bytes_per = 0, peak = 0;
	unsigned max_height = 0;
	struct ref r;

	(void)state;
	seed_rng("random_differential");
	ref_init(&r, max_n + 32);
	viommu__emap_init(&map);
	for (op = 0; op < ops; op++) {
		uint64_t kind = rnd_below(100);

		/* Every few thousand operations, another pattern and size. */
		if (op % 4000 == 0) {
			w.pat = (enum pattern)rnd_below(PAT_COUNT);
			w.target = op % 40000 == 36000 ? 0 : rnd_below(max_n);
			workload_restart(&w);
		}

		if (kind < (r.n < w.target ? 65u : 30u) && r.n < max_n) {
			struct viommu_entry e = next_entry(&w);

			try_insert(&map, &r, &e);
		} else if (kind < 92 && r.n > 0) {
			size_t near = r.n < 4 ? r.n : 4;

			remove_at(&map, &r,
				  (size_t)rnd_below(w.pat == PAT_FIFO ? near :
									r.n));
		} else {
			/* Removing where no entry starts fails. */
			uint64_t addr = random_probe(&r);
			size_t i = ref_seek(&r, addr);

			if (i == r.n || r.iova[i] != addr)
				assert_int_equal(viommu__emap_remove(&map,
								     addr),
						 -ENOENT);
		}
		assert_int_equal(map.count, r.n);
		check_probe(&map, &r, random_probe(&r));
		if (r.n > peak)
			peak = r.n;
		if (map.height > max_height)
			max_height = map.height;

		if (op % 1000 == 0 || r.n < 3) {
			check_all(&map, &r);
			if (r.n >= 1000 && map.bytes / r.n > max_bytes_per)
				max_bytes_per = map.bytes / r.n;
		}
	}
	print_message("random_differential: up to %zu entries, height %u, "
		      "at most %zu bytes/entry (from 1000 entries)\n",
		      peak, max_height, max_bytes_per);
	assert_true(max_bytes_per <= 64);

	/* Drain, checking to the end. */
	while (r.n > 0) {
		remove_at(&map, &r, (size_t)rnd_below(r.n));
		check_probe(&map, &r, random_probe(&r));
	}
	check_all(&map, &r);
	assert_int_equal(map.bytes, 0);
	viommu__emap_destroy(&map);
	ref_fini(&r);
}

/* Destroy frees a populated tree (checked by ASan and valgrind). */
static void test_destroy_populated(void **state)
{
	struct viommu__emap map;
	size_t i;

	(void)state;
	viommu__emap_init(&map);
	for (i = 0; i < 50000; i++)
		insert_ok(&map, (uint64_t)(i * 7 % 50000) << PAGE_SHIFT,
			  PAGE_MASK, i, VIOMMU_PERM_RW);
	assert_int_equal(map.count, 50000);
	viommu__emap_destroy(&map);
	assert_int_equal(map.count, 0);
	assert_int_equal(map.bytes, 0);
	assert_null(map.root);
	/* The map is usable again after destroy. */
	insert_ok(&map, 0, PAGE_MASK, 0, VIOMMU_PERM_READ);
	assert_lookup(&map, 0xfff, 0, PAGE_MASK);
	viommu__emap_destroy(&map);
	assert_int_equal(map.bytes, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_few),
		cmocka_unit_test(test_whole_space),
		cmocka_unit_test(test_orders),
		cmocka_unit_test(test_sequential),
		cmocka_unit_test(test_descending),
		cmocka_unit_test(test_lifo),
		cmocka_unit_test(test_random_order_fill),
		cmocka_unit_test(test_random_differential),
		cmocka_unit_test(test_destroy_populated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
