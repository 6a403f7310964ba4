/* SPDX-License-Identifier: MIT */
/*
 * The host shadow and its backends: the range tree they stand on, the
 * type1 v2 rules of the software backend and its check against the guest,
 * the shadow on the virtio and VT-d models (replay, refusal reaching the
 * guest, coalescing within a change and across changes, cut runs at the
 * entry limit), and the VFIO backend's failure when there is no VFIO.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <viommu/guest_memory.h>
#include <viommu/shadow.h>
#include <viommu/virtio.h>
#include <viommu/vtd.h>
#include <viommu/vtd_driver.h>

#include "consumers/range_tree.h"
#include "fake.h"

#define F_RW (VIOMMU_VIRTIO_MAP_F_READ | VIOMMU_VIRTIO_MAP_F_WRITE)
#define F_R VIOMMU_VIRTIO_MAP_F_READ
#define S_OK VIOMMU_VIRTIO_S_OK
#define S_DEVERR VIOMMU_VIRTIO_S_DEVERR

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void assert_contains(const char *s, const char *part)
{
	if (!strstr(s, part))
		fail_msg("'%s' does not contain '%s'", s, part);
}

/* ---- the range tree ---- */

#define TREE_SLOTS 512

struct tnode {
	struct viommu__rnode node;
	bool in;
};

static void test_range_tree_random(void **state)
{
	static struct tnode slot[TREE_SLOTS];
	struct viommu__rtree t;
	unsigned step, i;

	memset(slot, 0, sizeof(slot));
	viommu__rtree_init(&t);
	for (step = 0; step < 20000; step++) {
		i = (unsigned)(rnd() % TREE_SLOTS);
		/* slot i owns [i * 16, i * 16 + len]: never overlapping */
		if (slot[i].in) {
			viommu__rtree_remove(&t, &slot[i].node);
			slot[i].in = false;
		} else {
			slot[i].node.start = i * 16;
			slot[i].node.last = i * 16 + rnd() % 16;
			viommu__rtree_insert(&t, &slot[i].node);
			slot[i].in = true;
		}
		if (step % 64 == 0)
			assert_int_equal(viommu__rtree_validate(&t), 0);

		/* lookups agree with a scan of the slots */
		uint64_t addr = rnd() % (TREE_SLOTS * 16 + 32);
		struct viommu__rnode *want = NULL, *got;

		for (unsigned k = 0; k < TREE_SLOTS; k++)
			if (slot[k].in && slot[k].node.start <= addr)
				want = &slot[k].node;
		assert_ptr_equal(viommu__rtree_floor(&t, addr), want);
		got = viommu__rtree_find(&t, addr);
		assert_ptr_equal(got, want && want->last >= addr ? want : NULL);

		uint64_t last = addr + rnd() % 64;

		want = NULL;
		for (unsigned k = 0; k < TREE_SLOTS && !want; k++)
			if (slot[k].in && slot[k].node.last >= addr &&
			    slot[k].node.start <= last)
				want = &slot[k].node;
		assert_ptr_equal(viommu__rtree_first_overlap(&t, addr, last),
				 want);
	}
	assert_int_equal(viommu__rtree_validate(&t), 0);
	/* ascending inserts (a guest mapping page after page) stay balanced */
	viommu__rtree_init(&t);
	for (i = 0; i < TREE_SLOTS; i++) {
		slot[i].node.start = slot[i].node.last = i;
		viommu__rtree_insert(&t, &slot[i].node);
	}
	assert_int_equal(viommu__rtree_validate(&t), 0);
	assert_true(t.root->height <= 11); /* 1.44 log2(512) + 1 */
}

/* ---- the software type1 backend ---- */

struct soft {
	struct viommu_type1_soft *s;
	struct viommu_host_backend be;
};

static void soft_new(struct soft *x, uint64_t limit)
{
	struct viommu_type1_soft_config cfg = { .dma_entry_limit = limit };

	assert_int_equal(viommu_type1_soft_new(&cfg, &x->s, NULL), 0);
	x->be = viommu_type1_soft_backend(x->s);
}

static int hmap(struct soft *x, uint64_t iova, uint64_t size, uint64_t gpa)
{
	return x->be.ops->map(x->be.opaque, iova, size, gpa, VIOMMU_PERM_RW);
}

static int hunmap(struct soft *x, uint64_t iova, uint64_t size)
{
	return x->be.ops->unmap(x->be.opaque, iova, size);
}

static uint64_t soft_entries(struct viommu_type1_soft *s)
{
	struct viommu_type1_soft_counters c;

	viommu_type1_soft_counters(s, &c);
	return c.entries;
}

static void test_type1_rules(void **state)
{
	struct viommu_type1_soft_counters c;
	struct soft x;

	soft_new(&x, 3);
	assert_int_equal(hmap(&x, 0x10000, 0x4000, 0xa0000), 0);
	assert_int_equal(hmap(&x, 0x14000, 0x1000, 0xb0000), 0);
	/* overlaps are refused, whole or partial */
	assert_int_equal(hmap(&x, 0x10000, 0x4000, 0xa0000), -EEXIST);
	assert_int_equal(hmap(&x, 0xf000, 0x2000, 0), -EEXIST);
	assert_int_equal(hmap(&x, 0x13000, 0x1000, 0), -EEXIST);
	/* malformed ranges */
	assert_int_equal(hmap(&x, 0x20000, 0, 0), -EINVAL);
	assert_int_equal(hmap(&x, 0x20800, 0x1000, 0), -EINVAL);
	assert_int_equal(hmap(&x, 0x20000, 0x1800, 0), -EINVAL);
	assert_int_equal(hmap(&x, 0x20000, 0x1000, 0x800), -EINVAL);
	assert_int_equal(hmap(&x, UINT64_MAX - 0xfff, 0x2000, 0), -EINVAL);
	assert_int_equal(x.be.ops->map(x.be.opaque, 0x20000, 0x1000, 0, 0),
			 -EINVAL);
	/* the entry limit */
	assert_int_equal(hmap(&x, 0x20000, 0x1000, 0), 0);
	assert_int_equal(hmap(&x, 0x30000, 0x1000, 0), -ENOSPC);
	assert_int_equal(soft_entries(x.s), 3);

	/* an unmap must not cut a mapping, at either end */
	assert_int_equal(hunmap(&x, 0x11000, 0x3000), -EINVAL);
	assert_int_equal(hunmap(&x, 0x10000, 0x2000), -EINVAL);
	assert_int_equal(hunmap(&x, 0x10000, 0x4800), -EINVAL);
	assert_int_equal(hunmap(&x, 0x12000, 0x3000), -EINVAL);
	assert_int_equal(soft_entries(x.s), 3); /* nothing changed */
	/* a range with nothing in it is fine; one over two removes both */
	assert_int_equal(hunmap(&x, 0x40000, 0x1000), 0);
	assert_int_equal(hunmap(&x, 0x8000, 0x10000), 0);
	assert_int_equal(soft_entries(x.s), 1);
	assert_int_equal(hunmap(&x, 0x20000, 0x1000), 0);
	assert_int_equal(hunmap(&x, 0x20000, 0), -EINVAL);

	viommu_type1_soft_counters(x.s, &c);
	assert_int_equal(c.entries, 0);
	assert_int_equal(c.peak, 3);
	assert_int_equal(c.maps, 13);
	assert_int_equal(c.unmaps, 8);
	assert_int_equal(c.refusals, 15);

	/* the largest host mapping the shadow makes: 2^63 bytes */
	assert_int_equal(hmap(&x, UINT64_C(1) << 63, UINT64_C(1) << 63, 0), 0);
	assert_int_equal(hunmap(&x, UINT64_C(1) << 63, UINT64_C(1) << 63), 0);
	viommu_type1_soft_free(x.s);

	struct viommu_type1_soft_config bad = { .page_size = 3000 };
	struct viommu_type1_soft *s;
	struct viommu_error err = { 0 };

	assert_int_equal(viommu_type1_soft_new(&bad, &s, &err), -EINVAL);
	assert_contains(err.message, "power of two");
	assert_int_equal(viommu_type1_soft_new(NULL, &s, NULL), 0);
	viommu_type1_soft_counters(s, &c);
	assert_int_equal(c.entries, 0);
	viommu_type1_soft_free(s);
}

/* ---- the shadow on virtio-iommu ---- */

#define EPID 7

struct vctx {
	struct viommu_virtio *v;
	struct viommu_as *as;
	struct soft soft;
	struct viommu_shadow *sh;
};

static void vnew(struct vctx *x, uint64_t limit,
		 const struct viommu_virtio_config *vc)
{
	memset(x, 0, sizeof(*x));
	assert_int_equal(viommu_virtio_new(vc, &x->v, NULL), 0);
	assert_int_equal(
		viommu_virtio_endpoint_add(x->v, EPID, "ep", &x->as, NULL), 0);
	assert_int_equal(viommu_virtio_attach(x->v, 1, EPID, NULL), S_OK);
	soft_new(&x->soft, limit);
}

static void vshadow(struct vctx *x, bool coalesce, bool live, uint64_t max_run)
{
	struct viommu_shadow_config cfg;
	struct viommu_error err = { 0 };

	viommu_shadow_config_init(&cfg);
	cfg.coalesce = coalesce;
	cfg.coalesce_live = live;
	cfg.max_run = max_run;
	if (viommu_shadow_new(x->as, &x->soft.be, &cfg, &x->sh, &err))
		fail_msg("shadow: %s", err.message);
}

static void vfree(struct vctx *x)
{
	viommu_shadow_free(x->sh);
	assert_int_equal(soft_entries(x->soft.s), 0);
	viommu_type1_soft_free(x->soft.s);
	viommu_virtio_free(x->v);
}

static void vmap(struct vctx *x, uint64_t iova, uint64_t size, uint64_t pa,
		 unsigned flags)
{
	struct viommu_error err = { 0 };

	if (viommu_virtio_map(x->v, 1, iova, iova + size - 1, pa, flags,
			      &err) != S_OK)
		fail_msg("map: %s", err.message);
}

static void vunmap(struct vctx *x, uint64_t iova, uint64_t size)
{
	struct viommu_error err = { 0 };

	if (viommu_virtio_unmap(x->v, 1, iova, iova + size - 1, &err) != S_OK)
		fail_msg("unmap: %s", err.message);
}

static void assert_synced(struct vctx *x)
{
	struct viommu_error err = { 0 };

	if (viommu_type1_soft_check(x->soft.s, x->as, &err))
		fail_msg("%s", err.message);
}

static struct viommu_shadow_counters counters(struct vctx *x)
{
	struct viommu_shadow_counters c;

	viommu_shadow_counters(x->sh, &c);
	return c;
}

static void test_shadow_follows_virtio(void **state)
{
	struct viommu_shadow_counters c;
	struct vctx x;

	vnew(&x, 0, NULL);
	vmap(&x, 0x10000, KiB(4), 0xa000, F_RW);
	vmap(&x, 0x20000, KiB(12), 0x100000, F_R); /* 4K + 8K pieces */
	/* a shadow that comes late hears what is there by replay */
	vshadow(&x, false, false, 0);
	assert_synced(&x);
	c = counters(&x);
	assert_int_equal(c.host_entries, 3);
	assert_int_equal(c.guest_maps, 3);
	assert_int_equal(c.batches, 1);

	vmap(&x, 0x40000, MiB(2) + KiB(4), 0x200000, F_RW);
	assert_synced(&x);
	vunmap(&x, 0x20000, KiB(12));
	assert_synced(&x);
	/* a domain switch: everything goes, the other domain's come */
	assert_int_equal(viommu_virtio_domain_add(x.v, 2, NULL), 0);
	assert_int_equal(viommu_virtio_map(x.v, 2, 0x10000, 0x10fff, 0xb000,
					   F_RW, NULL),
			 S_OK);
	assert_int_equal(viommu_virtio_attach(x.v, 2, EPID, NULL), S_OK);
	assert_synced(&x);
	c = counters(&x);
	assert_int_equal(c.host_entries, 1);
	assert_int_equal(c.refusals, 0);
	assert_int_equal(c.host_errors, 0);
	assert_int_equal(c.merges, 0);
	/* without coalescing the host mirrors the pieces one for one */
	assert_int_equal(c.host_maps, c.guest_maps);
	assert_int_equal(c.host_unmaps, c.guest_unmaps);
	vfree(&x);
}

static void test_check_names_the_difference(void **state)
{
	struct viommu_error err = { 0 };
	struct vctx x;

	vnew(&x, 0, NULL);
	vmap(&x, 0x10000, KiB(8), 0xa000, F_RW);
	vshadow(&x, false, false, 0);
	assert_synced(&x);

	/* the host maps something more */
	assert_int_equal(hmap(&x.soft, 0x30000, 0x1000, 0), 0);
	assert_int_equal(viommu_type1_soft_check(x.soft.s, x.as, &err),
			 -EINVAL);
	assert_contains(err.message, "iova 0x30000: the host maps it");
	assert_int_equal(hunmap(&x.soft, 0x30000, 0x1000), 0);
	/* ... or something less */
	assert_int_equal(hunmap(&x.soft, 0x10000, 0x2000), 0);
	assert_int_equal(viommu_type1_soft_check(x.soft.s, x.as, &err),
			 -EINVAL);
	assert_contains(err.message,
			"iova 0x10000: the guest maps it to 0xa000 "
			"rw");
	assert_contains(err.message, "but the host does not");
	/* ... or elsewhere, or with other permissions */
	assert_int_equal(hmap(&x.soft, 0x10000, 0x2000, 0xb000), 0);
	assert_int_equal(viommu_type1_soft_check(x.soft.s, x.as, &err),
			 -EINVAL);
	assert_contains(err.message, "the guest maps it to 0xa000 rw, the host "
				     "to 0xb000 rw");
	assert_int_equal(hunmap(&x.soft, 0x10000, 0x2000), 0);
	assert_int_equal(x.soft.be.ops->map(x.soft.be.opaque, 0x10000, 0x2000,
					    0xa000, VIOMMU_PERM_READ),
			 0);
	assert_int_equal(viommu_type1_soft_check(x.soft.s, x.as, &err),
			 -EINVAL);
	assert_contains(err.message, "the host to 0xa000 r");
	assert_int_equal(hunmap(&x.soft, 0x10000, 0x2000), 0);
	/* cut differently is still equal: two host mappings for one entry */
	assert_int_equal(hmap(&x.soft, 0x10000, 0x1000, 0xa000), 0);
	assert_int_equal(hmap(&x.soft, 0x11000, 0x1000, 0xb000), 0);
	assert_synced(&x);
	vfree(&x);
}

static void test_refused_map_reaches_the_guest(void **state)
{
	struct viommu_error err = { 0 };
	struct viommu_shadow_counters c;
	struct vctx x;

	vnew(&x, 2, NULL); /* a host with room for two mappings */
	vshadow(&x, false, false, 0);
	vmap(&x, 0x10000, KiB(4), 0xa000, F_RW);
	/* a request the host cannot take whole: 4K + 8K pieces, one room */
	assert_int_equal(viommu_virtio_map(x.v, 1, 0x21000, 0x23fff, 0xb000,
					   F_RW, &err),
			 S_DEVERR);
	assert_int_equal(err.code, -ENOSPC);
	assert_contains(err.message, "undone");
	/* nothing changed anywhere */
	assert_int_equal(viommu_virtio_mapping_count(x.v, 1), 1);
	assert_int_equal(viommu_as_mapping_count(x.as), 1);
	assert_int_equal(soft_entries(x.soft.s), 1);
	assert_synced(&x);
	c = counters(&x);
	assert_int_equal(c.refusals, 1);
	assert_int_equal(c.host_entries, 1);
	viommu_shadow_last_error(x.sh, &err);
	assert_int_equal(err.code, -ENOSPC);
	assert_contains(err.message, "refused to map [0x22000, 0x23fff] on "
				     "type1-soft");

	/* what fits still goes through */
	vmap(&x, 0x21000, KiB(4), 0xb000, F_RW);
	assert_synced(&x);
	assert_int_equal(viommu_virtio_map(x.v, 1, 0x30000, 0x30fff, 0xc000,
					   F_RW, NULL),
			 S_DEVERR);
	assert_int_equal(viommu_virtio_mapping_count(x.v, 1), 2);
	assert_synced(&x);
	vfree(&x);
}

static void test_replay_refused(void **state)
{
	struct viommu_error err = { 0 };
	struct viommu_shadow *sh;
	struct vctx x;

	vnew(&x, 1, NULL);
	vmap(&x, 0x10000, KiB(4), 0xa000, F_RW);
	vmap(&x, 0x30000, KiB(4), 0xb000, F_RW);
	assert_int_equal(viommu_shadow_new(x.as, &x.soft.be, NULL, &sh, &err),
			 -ENOSPC);
	assert_null(sh);
	assert_contains(err.message, "replay");
	/* nothing left behind on the host, and no notifier either */
	assert_int_equal(soft_entries(x.soft.s), 0);
	assert_int_equal(viommu_as_notify_flags(x.as), 0);
	vfree(&x);
}

static int bad_map(void *opaque, uint64_t iova, uint64_t size, uint64_t gpa,
		   unsigned perm)
{
	return 0;
}

static void test_backend_checked(void **state)
{
	struct viommu_host_ops ops = { .version = VIOMMU_HOST_OPS_VERSION,
				       .name = "half",
				       .map = bad_map };
	struct viommu_host_backend be = { &ops, NULL };
	struct viommu_error err = { 0 };
	struct viommu_shadow *sh;
	struct vctx x;

	vnew(&x, 0, NULL);
	assert_int_equal(viommu_shadow_new(x.as, &be, NULL, &sh, &err),
			 -EINVAL);
	assert_contains(err.message, "half without unmap");
	ops.version = 0;
	assert_int_equal(viommu_shadow_new(x.as, &be, NULL, &sh, &err),
			 -EINVAL);
	assert_contains(err.message, "version 0");
	ops.version = VIOMMU_HOST_OPS_VERSION + 1;
	assert_int_equal(viommu_shadow_new(x.as, &be, NULL, &sh, &err),
			 -EINVAL);
	be.ops = NULL;
	assert_int_equal(viommu_shadow_new(x.as, &be, NULL, &sh, &err),
			 -EINVAL);
	assert_int_equal(viommu_shadow_new(x.as, NULL, NULL, &sh, &err),
			 -EINVAL);
	assert_int_equal(viommu_shadow_new(NULL, &x.soft.be, NULL, &sh, &err),
			 -EINVAL);
	assert_int_equal(viommu_as_notify_flags(x.as), 0);
	viommu_type1_soft_free(x.soft.s);
	viommu_virtio_free(x.v);
}

/* ---- coalescing ---- */

static void test_coalesce_within_a_change(void **state)
{
	struct viommu_shadow_counters c;
	struct vctx x;

	vnew(&x, 0, NULL);
	vshadow(&x, true, false, 0);
	/* 0x21000..0x33fff: pieces 4K, 8K, 16K, 32K, 16K: one host mapping */
	vmap(&x, 0x21000, 0x13000, 0x500000, F_RW);
	assert_synced(&x);
	c = counters(&x);
	assert_int_equal(c.guest_maps, 5);
	assert_int_equal(c.host_entries, 1);
	assert_int_equal(c.merges, 4);
	assert_int_equal(c.batches, 1); /* an empty replay has no batch */
	/* five maps, then one unmap over them and one map of the run */
	assert_int_equal(c.host_maps, 6);
	assert_int_equal(c.host_unmaps, 1);
	/* a separate request, though adjacent, is not merged by default */
	vmap(&x, 0x34000, KiB(4), 0x513000, F_RW);
	assert_int_equal(counters(&x).host_entries, 2);
	/* removing the request removes the run whole: nothing to re-map */
	vunmap(&x, 0x21000, 0x13000);
	assert_synced(&x);
	c = counters(&x);
	assert_int_equal(c.host_entries, 1);
	assert_int_equal(c.remaps, 0);
	vfree(&x);
}

static void test_coalesce_live_and_cut(void **state)
{
	struct viommu_shadow_counters c;
	struct vctx x;

	vnew(&x, 0, NULL);
	vshadow(&x, true, true, 0);
	/* buffers mapped one request at a time, contiguous in both spaces */
	for (unsigned i = 0; i < 8; i++)
		vmap(&x, 0x100000 + i * 0x1000, KiB(4), 0x800000 + i * 0x1000,
		     F_RW);
	assert_synced(&x);
	assert_int_equal(counters(&x).host_entries, 1);
	/* not contiguous in the target, or other permissions: not merged */
	vmap(&x, 0x108000, KiB(4), 0x900000, F_RW);
	vmap(&x, 0x109000, KiB(4), 0x901000, F_R);
	assert_int_equal(counters(&x).host_entries, 3);
	assert_synced(&x);

	/* cut the 8-page run in the middle: unmap it, map both rests */
	vunmap(&x, 0x103000, KiB(4));
	assert_synced(&x);
	c = counters(&x);
	assert_int_equal(c.host_entries, 4);
	assert_int_equal(c.remaps, 2);
	/* at an end: one rest */
	vunmap(&x, 0x100000, KiB(4));
	assert_synced(&x);
	assert_int_equal(counters(&x).remaps, 3);
	/* the hole filled again (elsewhere): it stays apart */
	vmap(&x, 0x103000, KiB(4), 0x700000, F_RW);
	assert_synced(&x);
	/* ... and with the right target the three join again */
	vunmap(&x, 0x103000, KiB(4));
	vmap(&x, 0x103000, KiB(4), 0x803000, F_RW);
	assert_synced(&x);
	assert_int_equal(counters(&x).host_entries, 3);
	vfree(&x);
}

static void test_coalesce_max_run(void **state)
{
	struct vctx x;

	vnew(&x, 0, NULL);
	vshadow(&x, true, true, KiB(16));
	for (unsigned i = 0; i < 10; i++)
		vmap(&x, 0x100000 + i * 0x1000, KiB(4), 0x800000 + i * 0x1000,
		     F_RW);
	assert_synced(&x);
	/* 16K + 16K + 8K */
	assert_int_equal(counters(&x).host_entries, 3);
	vfree(&x);
}

static void test_coalesce_makes_room(void **state)
{
	struct viommu_shadow_counters c;
	struct vctx x;

	/* one host mapping only: a request in several pieces still fits */
	vnew(&x, 1, NULL);
	vshadow(&x, true, false, 0);
	vmap(&x, 0x21000, 0x13000, 0x500000, F_RW);
	assert_synced(&x);
	c = counters(&x);
	assert_int_equal(c.host_entries, 1);
	assert_int_equal(c.refusals, 0);
	/* a second, separate request has no room */
	assert_int_equal(viommu_virtio_map(x.v, 1, 0x40000, 0x40fff, 0x600000,
					   F_RW, NULL),
			 S_DEVERR);
	assert_synced(&x);
	vfree(&x);

	/* a replay larger than the limit merges as it goes */
	vnew(&x, 4, NULL);
	for (unsigned i = 0; i < 64; i++)
		vmap(&x, 0x100000 + i * 0x1000, KiB(4), 0x800000 + i * 0x1000,
		     F_RW);
	vshadow(&x, true, false, 0);
	assert_synced(&x);
	assert_int_equal(counters(&x).host_entries, 1);
	vfree(&x);
}

static void test_cut_run_at_the_limit(void **state)
{
	struct viommu_error err = { 0 };
	struct viommu_shadow_counters c;
	struct vctx x;

	vnew(&x, 1, NULL);
	vshadow(&x, true, true, 0);
	for (unsigned i = 0; i < 3; i++)
		vmap(&x, 0x100000 + i * 0x1000, KiB(4), 0x800000 + i * 0x1000,
		     F_RW);
	assert_synced(&x);
	assert_int_equal(counters(&x).host_entries, 1);
	/*
	 * The guest unmaps the middle page: its rests need two host
	 * mappings and the host takes one.  An unmap cannot be refused, so
	 * the shadow keeps the host short of the guest, never ahead of it.
	 */
	vunmap(&x, 0x101000, KiB(4));
	c = counters(&x);
	assert_int_equal(c.host_entries, 1);
	assert_int_equal(c.unsynced, 1);
	assert_int_equal(c.host_errors, 1);
	assert_int_equal(viommu_type1_soft_check(x.soft.s, x.as, &err),
			 -EINVAL);
	/* one rest made it, the other did not */
	assert_contains(err.message, "but the host does not");
	viommu_shadow_last_error(x.sh, &err);
	assert_contains(err.message, "could not map again the rest of [0x10");
	/* once there is room again the rest is restored */
	vunmap(&x, 0x100000, KiB(4));
	assert_synced(&x);
	c = counters(&x);
	assert_int_equal(c.unsynced, 0);
	assert_int_equal(c.host_entries, 1);
	vfree(&x);
}

static void test_whole_space(void **state)
{
	struct viommu_virtio_config vc;
	struct vctx x;

	viommu_virtio_config_init(&vc);
	vc.input_last = UINT64_MAX;
	vnew(&x, 0, &vc);
	vshadow(&x, true, true, 0);
	/* 2^64 bytes: the host gets two halves, whose sizes fit */
	assert_int_equal(
		viommu_virtio_map(x.v, 1, 0, UINT64_MAX, 0, F_RW, NULL), S_OK);
	assert_synced(&x);
	assert_int_equal(counters(&x).host_entries, 2);
	assert_int_equal(viommu_virtio_unmap(x.v, 1, 0, UINT64_MAX, NULL),
			 S_OK);
	assert_synced(&x);
	assert_int_equal(counters(&x).host_entries, 0);
	vfree(&x);
}

/* ---- VT-d ---- */

struct dctx {
	struct viommu_ram *ram;
	struct viommu_guest_memory mem;
	struct viommu_vtd *vtd;
	struct viommu_vtd_driver *drv;
	struct viommu_as *as;
	struct soft soft;
	struct viommu_shadow *sh;
};

#define SID 0x10

static void dnew(struct dctx *x, bool caching_mode)
{
	struct viommu_vtd_config cfg;

	memset(x, 0, sizeof(*x));
	viommu_vtd_config_init(&cfg);
	cfg.caching_mode = caching_mode;
	assert_int_equal(viommu_ram_new(GiB(1), &x->ram, NULL), 0);
	x->mem = viommu_ram_memory(x->ram);
	assert_int_equal(viommu_vtd_new(&cfg, &x->mem, &x->vtd, NULL), 0);
	assert_int_equal(viommu_vtd_driver_new(x->vtd, &x->mem, MiB(768),
					       GiB(1), &x->drv, NULL),
			 0);
	assert_int_equal(viommu_vtd_driver_domain_new(x->drv, 1, NULL), 0);
	assert_int_equal(viommu_vtd_driver_attach(x->drv, SID, 1, NULL), 0);
	assert_int_equal(
		viommu_vtd_device_add(x->vtd, SID, "dev", &x->as, NULL), 0);
	soft_new(&x->soft, 0);
}

static void dfree(struct dctx *x)
{
	viommu_shadow_free(x->sh);
	viommu_type1_soft_free(x->soft.s);
	viommu_vtd_driver_free(x->drv);
	viommu_vtd_free(x->vtd);
	viommu_ram_free(x->ram);
}

static void test_vtd_needs_caching_mode(void **state)
{
	struct viommu_error err = { 0 };
	struct dctx x;

	dnew(&x, false);
	assert_int_equal(viommu_shadow_new(x.as, &x.soft.be, NULL, &x.sh, &err),
			 -ENOTSUP);
	assert_contains(err.message, "caching-mode");
	assert_null(x.sh);
	dfree(&x);
}

/*
 * A ring of 256 buffers of 16K, contiguous in IOVA and target, mapped one
 * buffer at a time as Linux does in caching mode: four 4K leaves, then an
 * invalidation of the buffer.  Host mappings without coalescing, with it,
 * and with merging across changes.
 */
static uint64_t ring(bool coalesce, bool live, struct viommu_shadow_counters *c)
{
	struct viommu_shadow_config cfg;
	struct viommu_error err = { 0 };
	struct dctx x;

	dnew(&x, true);
	viommu_shadow_config_init(&cfg);
	cfg.coalesce = coalesce;
	cfg.coalesce_live = live;
	assert_int_equal(viommu_shadow_new(x.as, &x.soft.be, &cfg, &x.sh, NULL),
			 0);
	for (uint64_t i = 0; i < 256; i++) {
		uint64_t iova = MiB(16) + i * KiB(16);

		assert_int_equal(viommu_vtd_driver_map(
					 x.drv, 1, iova, MiB(64) + i * KiB(16),
					 KiB(16), VIOMMU_PERM_RW, KiB(4), NULL),
				 0);
		assert_int_equal(viommu_vtd_driver_invalidate(x.drv, 1, iova,
							      KiB(16), NULL),
				 0);
	}
	if (viommu_type1_soft_check(x.soft.s, x.as, &err))
		fail_msg("%s", err.message);
	viommu_shadow_counters(x.sh, c);
	dfree(&x);
	return c->host_entries;
}

static void test_ring_workload(void **state)
{
	struct viommu_shadow_counters off, batch, live;

	assert_int_equal(ring(false, false, &off), 1024);
	assert_int_equal(ring(true, false, &batch), 256);
	assert_int_equal(ring(true, true, &live), 1);
	print_message("ring of 256 x 16K buffers on VT-d: host mappings "
		      "%llu without coalescing (%llu map calls), %llu "
		      "coalescing per change (%llu maps, %llu unmaps), %llu "
		      "coalescing across changes (%llu maps, %llu unmaps)\n",
		      (unsigned long long)off.host_entries,
		      (unsigned long long)off.host_maps,
		      (unsigned long long)batch.host_entries,
		      (unsigned long long)batch.host_maps,
		      (unsigned long long)batch.host_unmaps,
		      (unsigned long long)live.host_entries,
		      (unsigned long long)live.host_maps,
		      (unsigned long long)live.host_unmaps);
}

static void test_vtd_superpage_split(void **state)
{
	struct viommu_shadow_config cfg;
	struct viommu_error err = { 0 };
	struct dctx x;

	dnew(&x, true);
	viommu_shadow_config_init(&cfg);
	cfg.coalesce = true;
	assert_int_equal(viommu_shadow_new(x.as, &x.soft.be, &cfg, &x.sh, NULL),
			 0);
	assert_int_equal(viommu_vtd_driver_map(x.drv, 1, MiB(2), MiB(64),
					       MiB(2), VIOMMU_PERM_RW, MiB(2),
					       NULL),
			 0);
	assert_int_equal(viommu_vtd_driver_invalidate(x.drv, 1, MiB(2), MiB(2),
						      NULL),
			 0);
	assert_int_equal(soft_entries(x.soft.s), 1);
	/* one 4K page elsewhere: the 2M leaf becomes 512 4K leaves */
	assert_int_equal(viommu_vtd_driver_map(x.drv, 1, MiB(2) + KiB(8),
					       MiB(128), KiB(4), VIOMMU_PERM_RW,
					       KiB(4), NULL),
			 0);
	assert_int_equal(viommu_vtd_driver_invalidate(x.drv, 1, MiB(2), MiB(2),
						      NULL),
			 0);
	if (viommu_type1_soft_check(x.soft.s, x.as, &err))
		fail_msg("%s", err.message);
	/* 512 guest entries, three host mappings: before, the page, after */
	assert_int_equal(viommu_as_mapping_count(x.as), 512);
	assert_int_equal(soft_entries(x.soft.s), 3);
	dfree(&x);
}

/* ---- VFIO ---- */

static int no_hva(void *opaque, uint64_t gpa, uint64_t *len, void **hva)
{
	return -EFAULT;
}

static void test_vfio_open_fails_cleanly(void **state)
{
	struct viommu_error err = { 0 };
	struct viommu_type1_vfio *v = (void *)1;
	int ret;

	ret = viommu_type1_vfio_open("/nonexistent/vfio", "/nonexistent/1",
				     no_hva, NULL, &v, &err);
	assert_null(v);
#ifdef __linux__
	assert_int_equal(ret, -ENOENT);
	assert_int_equal(err.code, -ENOENT);
	assert_contains(err.message, "/nonexistent/vfio");
	assert_contains(err.message, "vfio module");
	assert_contains(err.message, "No such file");

	/* the default container, where CI has none */
	if (access("/dev/vfio/vfio", F_OK) != 0) {
		ret = viommu_type1_vfio_open(NULL, "/dev/vfio/1", no_hva, NULL,
					     &v, &err);
		assert_int_equal(ret, -ENOENT);
		assert_contains(err.message, "/dev/vfio/vfio");
	}
	/* something that is not a container */
	ret = viommu_type1_vfio_open("/dev/null", "/dev/vfio/1", no_hva, NULL,
				     &v, &err);
	assert_int_equal(ret, -ENODEV);
	assert_contains(err.message, "/dev/null is not a VFIO container");
	assert_null(v);
#else
	assert_int_equal(ret, -ENOTSUP);
#endif
	assert_int_equal(viommu_type1_vfio_open(NULL, NULL, no_hva, NULL, &v,
						&err),
			 -EINVAL);
	assert_int_equal(viommu_type1_vfio_open(NULL, "/dev/vfio/1", NULL, NULL,
						&v, &err),
			 -EINVAL);
	viommu_type1_vfio_close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_range_tree_random),
		cmocka_unit_test(test_type1_rules),
		cmocka_unit_test(test_shadow_follows_virtio),
		cmocka_unit_test(test_check_names_the_difference),
		cmocka_unit_test(test_refused_map_reaches_the_guest),
		cmocka_unit_test(test_replay_refused),
		cmocka_unit_test(test_backend_checked),
		cmocka_unit_test(test_coalesce_within_a_change),
		cmocka_unit_test(test_coalesce_live_and_cut),
		cmocka_unit_test(test_coalesce_max_run),
		cmocka_unit_test(test_coalesce_makes_room),
		cmocka_unit_test(test_cut_run_at_the_limit),
		cmocka_unit_test(test_whole_space),
		cmocka_unit_test(test_vtd_needs_caching_mode),
		cmocka_unit_test(test_ring_workload),
		cmocka_unit_test(test_vtd_superpage_split),
		cmocka_unit_test(test_vfio_open_fails_cleanly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
