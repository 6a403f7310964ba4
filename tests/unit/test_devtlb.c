/* SPDX-License-Identifier: MIT */
/*
 * The device IOTLB on its own: hits and misses, permission answers, what
 * unmap events of any size drop, least-recently-used eviction, flags the
 * models refuse, a big cache under many small invalidations, and lookups
 * on another thread while the guest maps and unmaps.  (Revocation checked
 * against the guest's tables on both models: test_consumers.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include <cmocka.h>

#include <viommu/devtlb.h>
#include <viommu/virtio.h>

#include "fake.h"

#define F_RW (VIOMMU_VIRTIO_MAP_F_READ | VIOMMU_VIRTIO_MAP_F_WRITE)
#define F_R VIOMMU_VIRTIO_MAP_F_READ
#define S_OK VIOMMU_VIRTIO_S_OK
#define EPID 3

struct vctx {
	struct viommu_virtio *v;
	struct viommu_as *as;
	struct viommu_devtlb *tlb;
};

static void vnew(struct vctx *x, size_t entries)
{
	struct viommu_devtlb_config cfg;
	struct viommu_error err = { 0 };

	memset(x, 0, sizeof(*x));
	assert_int_equal(viommu_virtio_new(NULL, &x->v, NULL), 0);
	assert_int_equal(
		viommu_virtio_endpoint_add(x->v, EPID, "ep", &x->as, NULL), 0);
	assert_int_equal(viommu_virtio_attach(x->v, 1, EPID, NULL), S_OK);
	viommu_devtlb_config_init(&cfg);
	cfg.entries = entries;
	if (viommu_devtlb_new(x->as, &cfg, &x->tlb, &err))
		fail_msg("devtlb: %s", err.message);
}

static void vfree(struct vctx *x)
{
	viommu_devtlb_free(x->tlb);
	viommu_virtio_free(x->v);
}

static void vmap(struct vctx *x, uint64_t iova, uint64_t size, uint64_t pa,
		 unsigned flags)
{
	assert_int_equal(viommu_virtio_map(x->v, 1, iova, iova + size - 1, pa,
					   flags, NULL),
			 S_OK);
}

static void vunmap(struct vctx *x, uint64_t iova, uint64_t size)
{
	assert_int_equal(viommu_virtio_unmap(x->v, 1, iova, iova + size - 1,
					     NULL),
			 S_OK);
}

static struct viommu_translation look(struct vctx *x, uint64_t iova,
				      unsigned access)
{
	struct viommu_translation t;

	assert_int_equal(viommu_devtlb_translate(x->tlb, iova, access, &t), 0);
	return t;
}

static struct viommu_devtlb_counters counters(struct vctx *x)
{
	struct viommu_devtlb_counters c;

	viommu_devtlb_counters(x->tlb, &c);
	return c;
}

static void test_hit_miss_unmap(void **state)
{
	struct viommu_devtlb_counters c;
	struct viommu_translation t;
	struct vctx x;

	vnew(&x, 0);
	vmap(&x, 0x10000, KiB(8), 0xa000, F_RW);
	vmap(&x, 0x20000, KiB(4), 0xb000, F_R);

	t = look(&x, 0x11234, VIOMMU_PERM_READ);
	assert_int_equal(t.fault, VIOMMU_FAULT_NONE);
	assert_int_equal(t.entry.iova, 0x10000);
	assert_int_equal(t.entry.addr_mask, 0x1fff);
	assert_int_equal(t.entry.translated_addr, 0xa000);
	t = look(&x, 0x10000, VIOMMU_PERM_RW); /* same entry: a hit */
	assert_int_equal(t.fault, VIOMMU_FAULT_NONE);
	c = counters(&x);
	assert_int_equal(c.misses, 1);
	assert_int_equal(c.hits, 1);
	assert_int_equal(c.entries, 1);

	/* read-only: a write is a permission fault, from the cache too */
	t = look(&x, 0x20000, VIOMMU_PERM_WRITE);
	assert_int_equal(t.fault, VIOMMU_FAULT_PERMISSION);
	assert_int_equal(t.entry.translated_addr, 0xb000);
	t = look(&x, 0x20000, VIOMMU_PERM_WRITE);
	assert_int_equal(t.fault, VIOMMU_FAULT_PERMISSION);
	assert_int_equal(counters(&x).hits, 2);

	/* faults are not cached */
	t = look(&x, 0x30000, VIOMMU_PERM_READ);
	assert_int_equal(t.fault, VIOMMU_FAULT_NOT_PRESENT);
	look(&x, 0x30000, VIOMMU_PERM_READ);
	c = counters(&x);
	assert_int_equal(c.faults, 2);
	assert_int_equal(c.entries, 2);

	/* an unmap drops what it overlaps, at once */
	vunmap(&x, 0x10000, KiB(8));
	c = counters(&x);
	assert_int_equal(c.invalidations, 1);
	assert_int_equal(c.dropped, 1);
	assert_int_equal(c.entries, 1);
	t = look(&x, 0x11000, VIOMMU_PERM_READ);
	assert_int_equal(t.fault, VIOMMU_FAULT_NOT_PRESENT);

	/* bad requests */
	assert_int_equal(viommu_devtlb_translate(x.tlb, 0, 0, &t), -EINVAL);
	assert_int_equal(viommu_devtlb_translate(x.tlb, 0, 4, &t), -EINVAL);
	assert_int_equal(viommu_devtlb_translate(x.tlb, 0, 1, NULL), -EINVAL);

	viommu_devtlb_flush(x.tlb);
	assert_int_equal(counters(&x).entries, 0);
	vfree(&x);
}

static void test_lru_eviction(void **state)
{
	struct viommu_devtlb_counters c;
	struct vctx x;
	unsigned i;

	vnew(&x, 4);
	for (i = 0; i < 6; i++)
		vmap(&x, 0x100000 + i * 0x1000, KiB(4), 0x200000 + i * 0x1000,
		     F_RW);
	for (i = 0; i < 4; i++)
		look(&x, 0x100000 + i * 0x1000, VIOMMU_PERM_READ);
	look(&x, 0x100000, VIOMMU_PERM_READ); /* page 0 is the newest now */
	look(&x, 0x104000, VIOMMU_PERM_READ); /* evicts page 1 */
	look(&x, 0x105000, VIOMMU_PERM_READ); /* evicts page 2 */
	c = counters(&x);
	assert_int_equal(c.evictions, 2);
	assert_int_equal(c.entries, 4);
	assert_int_equal(c.misses, 6);
	look(&x, 0x100000, VIOMMU_PERM_READ);
	look(&x, 0x103000, VIOMMU_PERM_READ);
	assert_int_equal(counters(&x).hits, 3);
	look(&x, 0x101000, VIOMMU_PERM_READ);
	assert_int_equal(counters(&x).misses, 7);
	vfree(&x);
}

/* An over-sized unmap (the whole space) from a model that widens. */
static void test_oversized_invalidation(void **state)
{
	struct viommu_devtlb_config cfg;
	struct viommu_translation t;
	struct viommu_devtlb_counters c;
	struct viommu_devtlb *tlb;
	struct fake f;
	unsigned i;

	fake_init(&f, &fake_ops_replay);
	for (i = 0; i < 64; i++)
		fake_set(f.tables, MiB(1) + i * KiB(4), KiB(4),
			 GiB(1) + i * KiB(4), RW);
	viommu_devtlb_config_init(&cfg);
	assert_int_equal(viommu_devtlb_new(f.as, &cfg, &tlb, NULL), 0);
	for (i = 0; i < 64; i++) {
		assert_int_equal(viommu_devtlb_translate(tlb,
							 MiB(1) + i * KiB(4),
							 VIOMMU_PERM_READ, &t),
				 0);
		assert_int_equal(t.fault, VIOMMU_FAULT_NONE);
	}
	/* a VT-d guest without caching mode: nothing held, all cached */
	assert_int_equal(viommu_as_mapping_count(f.as), 0);
	fake_clear(f.tables, 0, UINT64_MAX);
	assert_int_equal(viommu_as_update(f.as, 0, UINT64_MAX, NULL, 0,
					  VIOMMU_UPDATE_WIDE_UNMAP, NULL),
			 0);
	viommu_devtlb_counters(tlb, &c);
	assert_int_equal(c.invalidations, 1);
	assert_int_equal(c.dropped, 64);
	assert_int_equal(c.entries, 0);
	assert_int_equal(
		viommu_devtlb_translate(tlb, MiB(1), VIOMMU_PERM_READ, &t), 0);
	assert_int_equal(t.fault, VIOMMU_FAULT_NOT_PRESENT);

	/* a wide unmap of a part drops only that part */
	for (i = 0; i < 64; i++)
		fake_set(f.tables, MiB(1) + i * KiB(4), KiB(4),
			 GiB(2) + i * KiB(4), RW);
	for (i = 0; i < 64; i++)
		viommu_devtlb_translate(tlb, MiB(1) + i * KiB(4),
					VIOMMU_PERM_READ, &t);
	assert_int_equal(viommu_as_update(f.as, MiB(1), MiB(1) + KiB(64) - 1,
					  NULL, 0, VIOMMU_UPDATE_WIDE_UNMAP,
					  NULL),
			 0);
	viommu_devtlb_counters(tlb, &c);
	assert_int_equal(c.entries, 48);
	viommu_devtlb_free(tlb);
	fake_fini(&f);
}

static void test_flags(void **state)
{
	struct viommu_devtlb_config cfg;
	struct viommu_error err = { 0 };
	struct viommu_devtlb *tlb;
	struct vctx x;

	vnew(&x, 0);
	viommu_devtlb_config_init(&cfg);
	assert_int_equal(cfg.flags, VIOMMU_NOTIFY_UNMAP);
	assert_int_equal(cfg.entries, VIOMMU_DEVTLB_DEFAULT_ENTRIES);
	cfg.flags = 0;
	assert_int_equal(viommu_devtlb_new(x.as, &cfg, &tlb, &err), -EINVAL);
	cfg.flags = VIOMMU_NOTIFY_MAP | VIOMMU_NOTIFY_UNMAP;
	assert_int_equal(viommu_devtlb_new(x.as, &cfg, &tlb, &err), -EINVAL);
	assert_non_null(strstr(err.message, "UNMAP and/or DEVIOTLB_UNMAP"));
	/* virtio-iommu has no device-IOTLB invalidation */
	cfg.flags = VIOMMU_NOTIFY_DEVIOTLB_UNMAP;
	assert_int_equal(viommu_devtlb_new(x.as, &cfg, &tlb, &err), -ENOTSUP);
	assert_null(tlb);
	assert_int_equal(viommu_devtlb_new(NULL, &cfg, &tlb, &err), -EINVAL);
	/* two caches on one device are independent */
	cfg.flags = VIOMMU_NOTIFY_UNMAP;
	assert_int_equal(viommu_devtlb_new(x.as, NULL, &tlb, NULL), 0);
	viommu_devtlb_free(tlb);
	viommu_devtlb_free(NULL);
	vfree(&x);
}

/* Many entries, many small invalidations: each costs O(log n + k). */
static void test_big_cache(void **state)
{
	const unsigned n = 20000;
	struct viommu_devtlb_counters c;
	struct viommu_translation t;
	struct vctx x;
	unsigned i;

	vnew(&x, n);
	vmap(&x, 0, (uint64_t)n * KiB(4), GiB(1), F_RW);
	/* the one mapping is cut in naturally aligned pieces; cache pages */
	for (i = 0; i < n; i++)
		look(&x, (uint64_t)i * KiB(4), VIOMMU_PERM_READ);
	c = counters(&x);
	assert_true(c.entries > 4);
	/* many small unmaps that hit nothing cached: nothing is scanned */
	for (i = 0; i < n; i++) {
		uint64_t iova = GiB(2) + (uint64_t)i * KiB(8);

		vmap(&x, iova, KiB(4), 0, F_RW);
		vunmap(&x, iova, KiB(4));
	}
	c = counters(&x);
	assert_int_equal(c.invalidations, n);
	assert_int_equal(c.dropped, 0);
	vunmap(&x, 0, (uint64_t)n * KiB(4));
	c = counters(&x);
	assert_int_equal(c.entries, 0);
	assert_int_equal(
		viommu_devtlb_translate(x.tlb, 0, VIOMMU_PERM_READ, &t), 0);
	assert_int_equal(t.fault, VIOMMU_FAULT_NOT_PRESENT);
	vfree(&x);
}

/* Device threads look up while the guest maps and unmaps. */
struct dev_thread {
	struct vctx *x;
	atomic_bool *stop;
	uint64_t seed;
	unsigned long lookups, bad;
};

#define PAGES 64
#define TARGET(page, gen) (GiB(1) + ((uint64_t)(gen) << 24) + (page)*KiB(4))

static void *device(void *arg)
{
	struct dev_thread *d = arg;
	uint64_t r = d->seed;

	while (!atomic_load(d->stop)) {
		struct viommu_translation t;
		uint64_t page, pa;

		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		page = r % PAGES;
		if (viommu_devtlb_translate(d->x->tlb, page * KiB(4),
					    VIOMMU_PERM_READ, &t))
			d->bad++;
		/* whatever it sees was once this page's translation */
		pa = t.entry.translated_addr + (page * KiB(4) - t.entry.iova);
		if (t.fault == VIOMMU_FAULT_NONE &&
		    (pa < GiB(1) + MiB(16) ||
		     ((pa - GiB(1)) & (MiB(16) - 1)) != page * KiB(4)))
			d->bad++;
		__atomic_add_fetch(&d->lookups, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_lookups_on_other_threads(void **state)
{
	atomic_bool stop = false;
	struct dev_thread d[2];
	pthread_t th[2];
	struct vctx x;
	unsigned i, gen;

	vnew(&x, 16);
	for (i = 0; i < 2; i++) {
		d[i] = (struct dev_thread){ &x, &stop, 88172645463325252ull + i,
					    0, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, device, &d[i]),
				 0);
	}
	for (gen = 1; gen < 200; gen++) {
		for (i = 0; i < PAGES; i++)
			vmap(&x, i * KiB(4), KiB(4), TARGET(i, gen), F_RW);
		for (i = 0; i < PAGES; i++)
			vunmap(&x, i * KiB(4), KiB(4));
	}
	/* a loaded machine may not have run them yet: wait for both */
	for (i = 0; i < 2; i++)
		while (!__atomic_load_n(&d[i].lookups, __ATOMIC_RELAXED))
			sched_yield();
	atomic_store(&stop, true);
	for (i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(d[i].bad, 0);
		assert_true(d[i].lookups > 0);
	}
	/* quiet now: everything was revoked, nothing may be found */
	for (i = 0; i < PAGES; i++)
		assert_int_equal(look(&x, i * KiB(4), VIOMMU_PERM_READ).fault,
				 VIOMMU_FAULT_NOT_PRESENT);
	vfree(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_miss_unmap),
		cmocka_unit_test(test_lru_eviction),
		cmocka_unit_test(test_oversized_invalidation),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_big_cache),
		cmocka_unit_test(test_lookups_on_other_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
