/* SPDX-License-Identifier: MIT */
/*
 * The virtio-iommu model: request statuses, what each endpoint's consumers
 * hear, all-or-nothing rollback, translate and replay, a large domain and
 * translations on another thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <string.h>

#include <cmocka.h>

#include <viommu/virtio.h>

#include "fake.h"
#include "internal.h" /* viommu__as_min_page(), to check the model's op */

#define F_R VIOMMU_VIRTIO_MAP_F_READ
#define F_W VIOMMU_VIRTIO_MAP_F_WRITE
#define F_RW (F_R | F_W)
#define S_OK VIOMMU_VIRTIO_S_OK
#define S_DEVERR VIOMMU_VIRTIO_S_DEVERR
#define S_INVAL VIOMMU_VIRTIO_S_INVAL
#define S_RANGE VIOMMU_VIRTIO_S_RANGE
#define S_NOENT VIOMMU_VIRTIO_S_NOENT
#define S_NOMEM VIOMMU_VIRTIO_S_NOMEM

#define N_EP 4
#define EP(i) (10u + (i)) /* endpoint IDs */

struct ctx {
	struct viommu_virtio *v;
	struct viommu_as *as[N_EP];
	struct recorder *rec, *rec2;
	struct rec_client c[8];
};

static int setup_with(void **state, const struct viommu_virtio_config *cfg)
{
	struct ctx *x = calloc(1, sizeof(*x));
	char name[16];

	assert_non_null(x);
	x->rec = calloc(1, sizeof(*x->rec));
	x->rec2 = calloc(1, sizeof(*x->rec2));
	assert_non_null(x->rec);
	assert_non_null(x->rec2);
	assert_int_equal(viommu_virtio_new(cfg, &x->v, NULL), 0);
	for (unsigned i = 0; i < N_EP; i++) {
		snprintf(name, sizeof(name), "ep%u", i);
		assert_int_equal(viommu_virtio_endpoint_add(x->v, EP(i), name,
							    &x->as[i], NULL),
				 0);
	}
	*state = x;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, NULL);
}

static int setup_64k(void **state)
{
	struct viommu_virtio_config cfg;

	viommu_virtio_config_init(&cfg);
	cfg.page_size_mask = ~UINT64_C(0xffff);
	return setup_with(state, &cfg);
}

static int setup_max4(void **state)
{
	struct viommu_virtio_config cfg;

	viommu_virtio_config_init(&cfg);
	cfg.max_mappings = 4;
	return setup_with(state, &cfg);
}

static int setup_input(void **state)
{
	struct viommu_virtio_config cfg;

	viommu_virtio_config_init(&cfg);
	cfg.input_start = MiB(1);
	cfg.input_last = GiB(4) - 1;
	return setup_with(state, &cfg);
}

static int setup_whole(void **state)
{
	struct viommu_virtio_config cfg;

	viommu_virtio_config_init(&cfg);
	cfg.input_last = UINT64_MAX;
	return setup_with(state, &cfg);
}

static int teardown(void **state)
{
	struct ctx *x = *state;

	viommu_virtio_free(x->v);
	free(x->rec);
	free(x->rec2);
	free(x);
	return 0;
}

/* Client @who of recorder @r listens to endpoint @ep with @flags. */
static void listen_to(struct ctx *x, unsigned ep, int who, struct recorder *r,
		      unsigned flags)
{
	assert_int_equal(rec_register(x->as[ep], &x->c[who], r, who, flags, 0,
				      UINT64_MAX),
			 0);
}

static void map_ok(struct ctx *x, uint32_t domain, uint64_t iova, uint64_t size,
		   uint64_t pa, unsigned flags)
{
	struct viommu_error err = { 0 };

	if (viommu_virtio_map(x->v, domain, iova, iova + size - 1, pa, flags,
			      &err) != S_OK)
		fail_msg("map: %s", err.message);
}

static void unmap_ok(struct ctx *x, uint32_t domain, uint64_t iova,
		     uint64_t size)
{
	struct viommu_error err = { 0 };

	if (viommu_virtio_unmap(x->v, domain, iova, iova + size - 1, &err) !=
	    S_OK)
		fail_msg("unmap: %s", err.message);
}

static void attach_ok(struct ctx *x, uint32_t domain, unsigned ep)
{
	struct viommu_error err = { 0 };

	if (viommu_virtio_attach(x->v, domain, EP(ep), &err) != S_OK)
		fail_msg("attach: %s", err.message);
}

static void assert_contains(const char *s, const char *part)
{
	if (!strstr(s, part))
		fail_msg("'%s' does not contain '%s'", s, part);
}

/* Translate @iova on endpoint @ep for reading; the fault. */
static enum viommu_fault xlate(struct ctx *x, unsigned ep, uint64_t iova,
			       struct viommu_entry *out)
{
	struct viommu_translation t;

	assert_int_equal(
		viommu_as_translate(x->as[ep], iova, VIOMMU_PERM_READ, &t), 0);
	if (out)
		*out = t.entry;
	return t.fault;
}

static void test_attach_move_detach(void **state)
{
	struct ctx *x = *state;
	struct viommu_error err = { 0 };

	assert_int_equal(viommu_virtio_domain_add(x->v, 1, NULL), 0);
	assert_int_equal(viommu_virtio_domain_add(x->v, 2, NULL), 0);
	map_ok(x, 1, 0x1000, KiB(4), 0xa000, F_RW);
	map_ok(x, 2, 0x5000, KiB(4), 0xb000, F_R);
	listen_to(x, 0, 1, x->rec, MAP | UNMAP);
	listen_to(x, 0, 2, x->rec, UNMAP);

	/* attaching delivers the domain's mappings */
	attach_ok(x, 1, 0);
	assert_int_equal(x->rec->n, 1);
	assert_event(&x->rec->ev[0], 1, MAP, 0x1000, KiB(4), 0xa000, RW);

	/* a move: the old domain's mappings go, the new one's come */
	x->rec->n = 0;
	attach_ok(x, 2, 0);
	assert_int_equal(x->rec->n, 3);
	assert_event(&x->rec->ev[0], 1, UNMAP, 0x1000, KiB(4), 0xa000, 0);
	assert_event(&x->rec->ev[1], 2, UNMAP, 0x1000, KiB(4), 0xa000, 0);
	assert_event(&x->rec->ev[2], 1, MAP, 0x5000, KiB(4), 0xb000, RO);
	assert_int_equal(xlate(x, 0, 0x1000, NULL), VIOMMU_FAULT_NOT_PRESENT);
	assert_int_equal(xlate(x, 0, 0x5000, NULL), VIOMMU_FAULT_NONE);

	/* attaching again where it is changes nothing */
	x->rec->n = 0;
	attach_ok(x, 2, 0);
	assert_int_equal(x->rec->n, 0);

	/* domain 1 lost its last endpoint, but the embedder made it: it stays */
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), 1);

	/* a domain ATTACH made ceases to exist with its last endpoint (spec) */
	attach_ok(x, 3, 1);
	map_ok(x, 3, 0x7000, KiB(4), 0xc000, F_R);
	assert_int_equal(viommu_virtio_detach(x->v, 3, EP(1), &err), S_OK);
	assert_int_equal(viommu_virtio_mapping_count(x->v, 3), 0);
	assert_int_equal(viommu_virtio_map(x->v, 3, 0x1000, 0x1fff, 0, F_R,
					   &err),
			 S_NOENT);

	/* detaching takes everything away, from both kinds of consumer */
	assert_int_equal(viommu_virtio_detach(x->v, 2, EP(0), &err), S_OK);
	assert_int_equal(x->rec->n, 2);
	assert_event(&x->rec->ev[0], 1, UNMAP, 0x5000, KiB(4), 0xb000, 0);
	assert_event(&x->rec->ev[1], 2, UNMAP, 0x5000, KiB(4), 0xb000, 0);
	assert_int_equal(viommu_as_mapping_count(x->as[0]), 0);
	assert_int_equal(xlate(x, 0, 0x5000, NULL), VIOMMU_FAULT_NOT_PRESENT);
	/* domain 2 stays (the embedder made it); the endpoint is not in it */
	assert_int_equal(viommu_virtio_detach(x->v, 2, EP(0), &err), S_INVAL);
}

static void test_detach_errors(void **state)
{
	struct ctx *x = *state;
	struct viommu_error err = { 0 };

	attach_ok(x, 3, 1);
	attach_ok(x, 4, 0);
	assert_int_equal(viommu_virtio_detach(x->v, 3, EP(0), &err), S_INVAL);
	assert_int_equal(err.code, -EINVAL);
	assert_contains(err.message, "DETACH endpoint 10, domain 3");
	assert_int_equal(viommu_virtio_detach(x->v, 3, 99, &err), S_NOENT);
	assert_int_equal(viommu_virtio_detach(x->v, 77, EP(0), &err), S_NOENT);
	assert_int_equal(viommu_virtio_attach(x->v, 3, 99, &err), S_NOENT);
	assert_contains(err.message, "no such endpoint");
	/* a failed detach left both where they were */
	assert_int_equal(viommu_virtio_detach(x->v, 3, EP(1), &err), S_OK);
	assert_int_equal(viommu_virtio_detach(x->v, 4, EP(0), &err), S_OK);
}

static void test_move_between_alike_domains(void **state)
{
	struct ctx *x = *state;

	/* both map 12K at 0x1000 the same way; 2 also has one of its own */
	attach_ok(x, 1, 0);
	attach_ok(x, 2, 1); /* keeps domain 2 alive */
	map_ok(x, 1, 0x1000, KiB(12), 0xa000, F_RW);
	map_ok(x, 2, 0x1000, KiB(12), 0xa000, F_RW);
	map_ok(x, 2, 0x10000, KiB(4), 0xc000, F_R);
	map_ok(x, 1, 0x20000, KiB(4), 0xd000, F_RW);
	map_ok(x, 2, 0x20000, KiB(4), 0xe000, F_RW); /* another target */
	listen_to(x, 0, 1, x->rec, MAP | UNMAP);

	attach_ok(x, 2, 0);
	/* nothing about the shared 12K: only what differs */
	assert_int_equal(x->rec->n, 3);
	assert_event(&x->rec->ev[0], 1, MAP, 0x10000, KiB(4), 0xc000, RO);
	assert_event(&x->rec->ev[1], 1, UNMAP, 0x20000, KiB(4), 0xd000, 0);
	assert_event(&x->rec->ev[2], 1, MAP, 0x20000, KiB(4), 0xe000, RW);
}

static void test_map_overlap(void **state)
{
	struct ctx *x = *state;
	struct viommu_error err = { 0 };

	attach_ok(x, 1, 0);
	listen_to(x, 0, 1, x->rec, MAP | UNMAP);
	map_ok(x, 1, 0x2000, KiB(8), 0xa000, F_RW);
	x->rec->n = 0;

	assert_int_equal(viommu_virtio_map(x->v, 1, 0x3000, 0x4fff, 0, F_RW,
					   &err),
			 S_INVAL);
	assert_int_equal(err.code, -EINVAL);
	assert_contains(err.message, "MAP domain 1 [0x3000, 0x4fff]");
	assert_contains(err.message, "overlaps the mapping [0x2000, 0x3fff]");
	assert_int_equal(viommu_virtio_map(x->v, 1, 0x1000, 0x2fff, 0, F_RW,
					   NULL),
			 S_INVAL);
	assert_int_equal(viommu_virtio_map(x->v, 1, 0, 0xffff, 0, F_RW, NULL),
			 S_INVAL);
	assert_int_equal(viommu_virtio_map(x->v, 1, 0x2000, 0x3fff, 0xa000,
					   F_RW, NULL),
			 S_INVAL);
	assert_int_equal(x->rec->n, 0);
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), 1);
	/* right next to it is fine */
	map_ok(x, 1, 0x1000, KiB(4), 0xb000, F_RW);
	map_ok(x, 1, 0x4000, KiB(4), 0xc000, F_RW);
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), 3);
}

static void test_map_invalid_4k(void **state)
{
	struct ctx *x = *state;
	struct viommu_error err = { 0 };

	attach_ok(x, 1, 0);
	listen_to(x, 0, 1, x->rec, MAP | UNMAP);
	assert_int_equal(viommu__as_min_page(x->as[0]), KiB(4));

	assert_int_equal(viommu_virtio_map(x->v, 1, 0x1800, 0x27ff, 0xa000,
					   F_RW, &err),
			 S_INVAL);
	assert_contains(err.message, "not aligned to the 0x1000 granule");
	assert_int_equal(viommu_virtio_map(x->v, 1, 0x1000, 0x27ff, 0xa000,
					   F_RW, NULL),
			 S_INVAL);
	assert_int_equal(viommu_virtio_map(x->v, 1, 0x1000, 0x1fff, 0xa800,
					   F_RW, NULL),
			 S_INVAL);
	assert_int_equal(viommu_virtio_map(x->v, 1, 0x2000, 0x1fff, 0xa000,
					   F_RW, &err),
			 S_INVAL);
	assert_contains(err.message, "empty");
	assert_int_equal(viommu_virtio_map(x->v, 1, 0x1000, 0x1fff, 0xa000, 0,
					   &err),
			 S_INVAL);
	assert_contains(err.message, "neither read nor write");
	assert_int_equal(viommu_virtio_map(x->v, 1, 0x1000, 0x1fff, 0xa000,
					   F_R | (1u << 2), &err),
			 S_INVAL);
	assert_contains(err.message, "unknown flags 0x4");
	assert_int_equal(viommu_virtio_unmap(x->v, 1, 0x1000, 0x17ff, &err),
			 S_INVAL);
	assert_int_equal(viommu_virtio_unmap(x->v, 1, 0x800, 0x1fff, &err),
			 S_INVAL);
	assert_int_equal(x->rec->n, 0);
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), 0);
	/* write-only is a valid mapping */
	map_ok(x, 1, 0x1000, KiB(4), 0xa000, F_W);
	assert_event(&x->rec->ev[0], 1, MAP, 0x1000, KiB(4), 0xa000, WO);
}

static void test_map_invalid_64k(void **state)
{
	struct ctx *x = *state;
	struct viommu_error err = { 0 };

	attach_ok(x, 1, 0);
	listen_to(x, 0, 1, x->rec, MAP | UNMAP);
	assert_int_equal(viommu__as_min_page(x->as[0]), KiB(64));

	assert_int_equal(viommu_virtio_map(x->v, 1, 0x1000, 0x10fff, 0x20000,
					   F_RW, &err),
			 S_INVAL);
	assert_contains(err.message, "0x10000 granule");
	assert_int_equal(viommu_virtio_map(x->v, 1, 0x10000, 0x10fff, 0x20000,
					   F_RW, NULL),
			 S_INVAL);
	assert_int_equal(viommu_virtio_map(x->v, 1, 0x10000, 0x1ffff, 0x21000,
					   F_RW, NULL),
			 S_INVAL);
	assert_int_equal(x->rec->n, 0);
	map_ok(x, 1, 0x10000, KiB(64), 0x20000, F_RW);
	assert_int_equal(x->rec->n, 1);
	assert_int_equal(viommu_virtio_unmap(x->v, 1, 0x10000, 0x10fff, NULL),
			 S_INVAL);
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), 1);
	unmap_ok(x, 1, 0x10000, KiB(64));
	assert_int_equal(x->rec->n, 2);
	assert_event(&x->rec->ev[1], 1, UNMAP, 0x10000, KiB(64), 0x20000, 0);
}

static void test_map_outside_input_range(void **state)
{
	struct ctx *x = *state;
	struct viommu_error err = { 0 };

	/* input range [1M, 4G - 1] */
	attach_ok(x, 1, 0);
	listen_to(x, 0, 1, x->rec, MAP | UNMAP);
	assert_int_equal(viommu_virtio_map(x->v, 1, GiB(4), GiB(4) + 0xfff, 0,
					   F_RW, &err),
			 S_RANGE);
	assert_int_equal(err.code, -ERANGE);
	assert_contains(err.message, "outside the input range");
	assert_int_equal(viommu_virtio_map(x->v, 1, GiB(4) - KiB(4),
					   GiB(4) + 0xfff, 0, F_RW, NULL),
			 S_RANGE);
	assert_int_equal(viommu_virtio_map(x->v, 1, MiB(1) - KiB(4),
					   MiB(1) + 0xfff, 0, F_RW, NULL),
			 S_RANGE);
	/* a target that wraps past 2^64 */
	assert_int_equal(viommu_virtio_map(x->v, 1, MiB(1), MiB(1) + 0x1fff,
					   UINT64_MAX - 0xfff, F_RW, &err),
			 S_RANGE);
	assert_contains(err.message, "wraps");
	assert_int_equal(x->rec->n, 0);
	/* the edges themselves are fine */
	map_ok(x, 1, MiB(1), KiB(4), 0, F_RW);
	map_ok(x, 1, GiB(4) - KiB(4), KiB(4), 0x1000, F_RW);
}

static void test_map_top_of_space(void **state)
{
	struct ctx *x = *state;
	struct viommu_entry e;

	/* input range is the whole 64-bit space: virt_end + 1 wraps to 0 */
	attach_ok(x, 1, 0);
	listen_to(x, 0, 1, x->rec, MAP | UNMAP);
	map_ok(x, 1, UINT64_MAX - 0x2fff, KiB(12), 0xa000, F_RW);
	assert_int_equal(x->rec->n, 2);
	assert_event(&x->rec->ev[0], 1, MAP, UINT64_MAX - 0x2fff, KiB(4),
		     0xa000, RW);
	assert_event(&x->rec->ev[1], 1, MAP, UINT64_MAX - 0x1fff, KiB(8),
		     0xb000, RW);
	assert_int_equal(xlate(x, 0, UINT64_MAX, &e), VIOMMU_FAULT_NONE);
	assert_int_equal(e.iova, UINT64_MAX - 0x1fff);
	assert_int_equal(e.translated_addr, 0xb000);
	/* the hole below it reaches 0 */
	assert_int_equal(xlate(x, 0, 0, &e), VIOMMU_FAULT_NOT_PRESENT);
	assert_int_equal(e.iova, 0);
	assert_int_equal(e.addr_mask, (UINT64_C(1) << 63) - 1);
	assert_int_equal(viommu_virtio_unmap(x->v, 1, 0, UINT64_MAX, NULL),
			 S_OK);
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), 0);
	assert_int_equal(x->rec->n, 4);
}

static void test_unmap_split_refused(void **state)
{
	struct ctx *x = *state;
	struct viommu_error err = { 0 };

	attach_ok(x, 1, 0);
	listen_to(x, 0, 1, x->rec, MAP | UNMAP);
	map_ok(x, 1, 0x1000, KiB(4), 0xa000, F_RW);
	map_ok(x, 1, 0x2000, KiB(16), 0xb000, F_RW);
	x->rec->n = 0;

	/* covers the first mapping but would cut the second */
	assert_int_equal(viommu_virtio_unmap(x->v, 1, 0x1000, 0x2fff, &err),
			 S_RANGE);
	assert_int_equal(err.code, -ERANGE);
	assert_contains(err.message, "UNMAP domain 1 [0x1000, 0x2fff]");
	assert_contains(err.message,
			"would split the mapping [0x2000, 0x5fff]");
	assert_int_equal(viommu_virtio_unmap(x->v, 1, 0x3000, 0x5fff, NULL),
			 S_RANGE);
	assert_int_equal(viommu_virtio_unmap(x->v, 1, 0x3000, 0x8fff, NULL),
			 S_RANGE);
	assert_int_equal(viommu_virtio_unmap(x->v, 1, 0, 0x4fff, NULL),
			 S_RANGE);
	/* nothing removed, nothing heard */
	assert_int_equal(x->rec->n, 0);
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), 2);
	assert_int_equal(xlate(x, 0, 0x1000, NULL), VIOMMU_FAULT_NONE);
	assert_int_equal(xlate(x, 0, 0x5fff, NULL), VIOMMU_FAULT_NONE);
}

static void test_unmap_empty_range(void **state)
{
	struct ctx *x = *state;

	attach_ok(x, 1, 0);
	listen_to(x, 0, 1, x->rec, MAP | UNMAP);
	unmap_ok(x, 1, 0, MiB(1)); /* a domain with nothing at all */
	map_ok(x, 1, 0x1000, KiB(4), 0xa000, F_RW);
	map_ok(x, 1, 0x10000, KiB(4), 0xb000, F_RW);
	x->rec->n = 0;
	unmap_ok(x, 1, 0x2000, KiB(56)); /* the hole between them */
	unmap_ok(x, 1, MiB(1), MiB(1));
	assert_int_equal(x->rec->n, 0);
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), 2);
}

static void test_unmap_several(void **state)
{
	struct ctx *x = *state;

	attach_ok(x, 1, 0);
	listen_to(x, 0, 1, x->rec, MAP | UNMAP);
	listen_to(x, 0, 2, x->rec, UNMAP);
	map_ok(x, 1, 0x1000, KiB(4), 0xa000, F_RW);
	map_ok(x, 1, 0x4000, KiB(8), 0xb000, F_R);
	map_ok(x, 1, 0x10000, KiB(12), 0xc000, F_RW);
	map_ok(x, 1, 0x100000, KiB(4), 0xd000, F_RW); /* stays */
	x->rec->n = 0;

	/* spills over unmapped addresses on both sides, as the spec allows */
	unmap_ok(x, 1, 0, KiB(128));
	assert_int_equal(x->rec->n, 8);
	assert_event(&x->rec->ev[0], 1, UNMAP, 0x1000, KiB(4), 0xa000, 0);
	assert_event(&x->rec->ev[1], 2, UNMAP, 0x1000, KiB(4), 0xa000, 0);
	assert_event(&x->rec->ev[2], 1, UNMAP, 0x4000, KiB(8), 0xb000, 0);
	assert_event(&x->rec->ev[3], 2, UNMAP, 0x4000, KiB(8), 0xb000, 0);
	assert_event(&x->rec->ev[4], 1, UNMAP, 0x10000, KiB(8), 0xc000, 0);
	assert_event(&x->rec->ev[5], 2, UNMAP, 0x10000, KiB(8), 0xc000, 0);
	assert_event(&x->rec->ev[6], 1, UNMAP, 0x12000, KiB(4), 0xe000, 0);
	assert_event(&x->rec->ev[7], 2, UNMAP, 0x12000, KiB(4), 0xe000, 0);
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), 1);
	assert_int_equal(viommu_as_mapping_count(x->as[0]), 1);
}

static void test_unaligned_size_is_cut_in_pieces(void **state)
{
	struct ctx *x = *state;
	struct viommu_entry e;

	attach_ok(x, 1, 0);
	listen_to(x, 0, 1, x->rec, MAP | UNMAP);
	listen_to(x, 0, 2, x->rec, UNMAP);

	map_ok(x, 1, 0x1000, KiB(12), 0x100000, F_RW);
	assert_int_equal(x->rec->n, 2);
	assert_event(&x->rec->ev[0], 1, MAP, 0x1000, KiB(4), 0x100000, RW);
	assert_event(&x->rec->ev[1], 1, MAP, 0x2000, KiB(8), 0x101000, RW);
	assert_int_equal(viommu_as_mapping_count(x->as[0]), 2);

	/* translate returns the same pieces */
	assert_int_equal(xlate(x, 0, 0x1abc, &e), VIOMMU_FAULT_NONE);
	assert_int_equal(e.iova, 0x1000);
	assert_int_equal(e.addr_mask, 0xfff);
	assert_int_equal(e.translated_addr, 0x100000);
	assert_int_equal(xlate(x, 0, 0x3abc, &e), VIOMMU_FAULT_NONE);
	assert_int_equal(e.iova, 0x2000);
	assert_int_equal(e.addr_mask, 0x1fff);
	assert_int_equal(e.translated_addr, 0x101000);

	x->rec->n = 0;
	unmap_ok(x, 1, 0x1000, KiB(12));
	assert_int_equal(x->rec->n, 4);
	assert_event(&x->rec->ev[0], 1, UNMAP, 0x1000, KiB(4), 0x100000, 0);
	assert_event(&x->rec->ev[1], 2, UNMAP, 0x1000, KiB(4), 0x100000, 0);
	assert_event(&x->rec->ev[2], 1, UNMAP, 0x2000, KiB(8), 0x101000, 0);
	assert_event(&x->rec->ev[3], 2, UNMAP, 0x2000, KiB(8), 0x101000, 0);
	assert_int_equal(viommu_as_mapping_count(x->as[0]), 0);
}

static void test_mapping_cap(void **state)
{
	struct ctx *x = *state;
	struct viommu_error err = { 0 };

	attach_ok(x, 1, 0);
	for (uint64_t i = 0; i < 4; i++)
		map_ok(x, 1, i * 0x10000, KiB(4), 0xa000, F_RW);
	assert_int_equal(viommu_virtio_map(x->v, 1, 0x100000, 0x100fff, 0xa000,
					   F_RW, &err),
			 S_NOMEM);
	assert_int_equal(err.code, -ENOMEM);
	assert_contains(err.message, "maximum of 4 mappings");
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), 4);
	assert_int_equal(viommu_as_mapping_count(x->as[0]), 4);
	unmap_ok(x, 1, 0x20000, KiB(4));
	map_ok(x, 1, 0x100000, KiB(4), 0xa000, F_RW);
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), 4);
}

static void test_two_endpoints_one_domain(void **state)
{
	struct ctx *x = *state;

	attach_ok(x, 1, 0);
	attach_ok(x, 1, 1);
	listen_to(x, 0, 1, x->rec, MAP | UNMAP);
	listen_to(x, 1, 2, x->rec, MAP | UNMAP);
	map_ok(x, 1, 0x8000, KiB(32), 0x40000, F_R);
	assert_int_equal(x->rec->n, 2);
	assert_event(&x->rec->ev[0], 1, MAP, 0x8000, KiB(32), 0x40000, RO);
	assert_event(&x->rec->ev[1], 2, MAP, 0x8000, KiB(32), 0x40000, RO);
	unmap_ok(x, 1, 0x8000, KiB(32));
	assert_int_equal(x->rec->n, 4);
	assert_event(&x->rec->ev[2], 1, UNMAP, 0x8000, KiB(32), 0x40000, 0);
	assert_event(&x->rec->ev[3], 2, UNMAP, 0x8000, KiB(32), 0x40000, 0);
}

static void test_refused_map_is_undone(void **state)
{
	struct ctx *x = *state;
	struct viommu_error err = { 0 };

	attach_ok(x, 1, 0);
	attach_ok(x, 1, 1);
	listen_to(x, 0, 1, x->rec, MAP | UNMAP);
	listen_to(x, 1, 2, x->rec2, MAP | UNMAP);
	x->rec2->fail_map_at = 1;
	x->rec2->fail_code = -ENOSPC;

	assert_int_equal(viommu_virtio_map(x->v, 1, 0x1000, 0x3fff, 0xa000,
					   F_RW, &err),
			 S_DEVERR);
	assert_int_equal(err.code, -ENOSPC);
	assert_contains(err.message, "MAP domain 1 [0x1000, 0x3fff]");
	assert_contains(err.message, "endpoint 11");
	assert_contains(err.message, "undone");
	/* the first endpoint took both pieces, then heard the reverse */
	assert_int_equal(x->rec->n, 4);
	assert_event(&x->rec->ev[0], 1, MAP, 0x1000, KiB(4), 0xa000, RW);
	assert_event(&x->rec->ev[1], 1, MAP, 0x2000, KiB(8), 0xb000, RW);
	assert_event(&x->rec->ev[2], 1, UNMAP, 0x1000, KiB(4), 0xa000, 0);
	assert_event(&x->rec->ev[3], 1, UNMAP, 0x2000, KiB(8), 0xb000, 0);
	assert_int_equal(x->rec2->n, 0);
	/* the domain is as before */
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), 0);
	assert_int_equal(xlate(x, 0, 0x1000, NULL), VIOMMU_FAULT_NOT_PRESENT);
	assert_int_equal(xlate(x, 1, 0x2000, NULL), VIOMMU_FAULT_NOT_PRESENT);
	assert_int_equal(viommu_as_mapping_count(x->as[0]), 0);
	assert_int_equal(viommu_as_mapping_count(x->as[1]), 0);

	/* refused at the second piece: the refusing endpoint is undone too */
	x->rec->n = 0;
	x->rec2->maps_seen = 0;
	x->rec2->fail_map_at = 2;
	assert_int_equal(viommu_virtio_map(x->v, 1, 0x1000, 0x3fff, 0xa000,
					   F_RW, NULL),
			 S_DEVERR);
	assert_int_equal(x->rec2->n, 2);
	assert_event(&x->rec2->ev[0], 2, MAP, 0x1000, KiB(4), 0xa000, RW);
	assert_event(&x->rec2->ev[1], 2, UNMAP, 0x1000, KiB(4), 0xa000, 0);
	assert_int_equal(x->rec->n, 4);
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), 0);

	/* once the consumer has room again, the same request succeeds */
	x->rec2->fail_map_at = 0;
	map_ok(x, 1, 0x1000, KiB(12), 0xa000, F_RW);
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), 1);
	assert_int_equal(viommu_as_mapping_count(x->as[1]), 2);
}

static void test_refused_attach_stays(void **state)
{
	struct ctx *x = *state;
	struct viommu_error err = { 0 };
	struct viommu_entry e;

	attach_ok(x, 1, 0);
	map_ok(x, 1, 0x1000, KiB(4), 0xa000, F_RW);
	assert_int_equal(viommu_virtio_domain_add(x->v, 2, NULL), 0);
	map_ok(x, 2, 0x5000, KiB(4), 0xb000, F_RW);
	listen_to(x, 0, 1, x->rec, MAP | UNMAP);
	x->rec->fail_map_at = 1; /* the first map it hears from now on */

	assert_int_equal(viommu_virtio_attach(x->v, 2, EP(0), &err), S_DEVERR);
	assert_int_equal(err.code, -ENOSPC);
	assert_contains(err.message, "ATTACH endpoint 10, domain 2");
	/* it heard its mapping go and come back; the refused one never came */
	assert_int_equal(x->rec->n, 2);
	assert_event(&x->rec->ev[0], 1, UNMAP, 0x1000, KiB(4), 0xa000, 0);
	assert_event(&x->rec->ev[1], 1, MAP, 0x1000, KiB(4), 0xa000, RW);
	/* still in domain 1 (which still exists), with its mapping */
	assert_int_equal(xlate(x, 0, 0x1000, &e), VIOMMU_FAULT_NONE);
	assert_int_equal(e.translated_addr, 0xa000);
	assert_int_equal(xlate(x, 0, 0x5000, NULL), VIOMMU_FAULT_NOT_PRESENT);
	assert_true(viommu_as_lookup(x->as[0], 0x1000, &e));
	assert_false(viommu_as_lookup(x->as[0], 0x5000, &e));
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), 1);
	assert_int_equal(viommu_virtio_mapping_count(x->v, 2), 1);
	assert_int_equal(viommu_virtio_detach(x->v, 2, EP(0), NULL), S_INVAL);

	/* a MAP in domain 1 still reaches it */
	x->rec->fail_map_at = 0;
	map_ok(x, 1, 0x8000, KiB(4), 0xc000, F_RW);
	assert_int_equal(x->rec->n, 3);
	assert_int_equal(viommu_virtio_detach(x->v, 1, EP(0), NULL), S_OK);
}

static void test_deviotlb_refused(void **state)
{
	struct ctx *x = *state;
	struct viommu_notifier_config cfg;
	struct viommu_notifier *n = NULL;
	struct viommu_error err = { 0 };

	viommu_notifier_config_init(&cfg, DEVTLB, rec_notify, &x->c[1]);
	x->c[1].rec = x->rec;
	assert_int_equal(viommu_notifier_register(x->as[0], &cfg, &n, &err),
			 -ENOTSUP);
	assert_null(n);
	assert_int_equal(err.code, -ENOTSUP);
	assert_contains(err.message,
			"virtio-iommu has no device-IOTLB invalidation");
	cfg.flags = MAP | UNMAP | DEVTLB;
	assert_int_equal(viommu_notifier_register(x->as[0], &cfg, &n, NULL),
			 -ENOTSUP);
	assert_int_equal(viommu_as_notify_flags(x->as[0]), 0);

	listen_to(x, 0, 2, x->rec, UNMAP);
	listen_to(x, 0, 3, x->rec, MAP | UNMAP);
	listen_to(x, 0, 4, x->rec, MAP);
	assert_int_equal(viommu_as_notify_flags(x->as[0]), MAP | UNMAP);
	viommu_notifier_unregister(x->c[4].handle);
	viommu_notifier_unregister(x->c[3].handle);
	assert_int_equal(viommu_as_notify_flags(x->as[0]), UNMAP);
}

static void test_translate(void **state)
{
	struct ctx *x = *state;
	struct viommu_translation t;
	struct viommu_entry e;

	attach_ok(x, 1, 0);
	map_ok(x, 1, 0x10000, KiB(4), 0xa000, F_R);
	map_ok(x, 1, 0x40000, KiB(256), 0x200000, F_RW);

	assert_int_equal(viommu_as_translate(x->as[0], 0x10800,
					     VIOMMU_PERM_READ, &t),
			 0);
	assert_int_equal(t.fault, VIOMMU_FAULT_NONE);
	assert_int_equal(t.entry.iova, 0x10000);
	assert_int_equal(t.entry.addr_mask, 0xfff);
	assert_int_equal(t.entry.translated_addr, 0xa000);
	assert_int_equal(t.entry.perm, RO);
	/* mapped read-only: a write faults on permission */
	assert_int_equal(viommu_as_translate(x->as[0], 0x10800,
					     VIOMMU_PERM_WRITE, &t),
			 0);
	assert_int_equal(t.fault, VIOMMU_FAULT_PERMISSION);
	assert_int_equal(
		viommu_as_translate(x->as[0], 0x6abcd, VIOMMU_PERM_RW, &t), 0);
	assert_int_equal(t.fault, VIOMMU_FAULT_NONE);
	assert_int_equal(t.entry.iova, 0x40000);
	assert_int_equal(t.entry.addr_mask, KiB(256) - 1);
	assert_int_equal(t.entry.translated_addr, 0x200000);

	/* misses report the largest aligned hole inside the gap */
	assert_int_equal(xlate(x, 0, 0x20000, &e), VIOMMU_FAULT_NOT_PRESENT);
	assert_int_equal(e.iova, 0x20000);
	assert_int_equal(e.addr_mask, 0x1ffff);
	assert_int_equal(e.perm, 0);
	assert_int_equal(xlate(x, 0, 0x11000, &e), VIOMMU_FAULT_NOT_PRESENT);
	assert_int_equal(e.iova, 0x11000);
	assert_int_equal(e.addr_mask, 0xfff);
	assert_int_equal(xlate(x, 0, 0x80000, &e), VIOMMU_FAULT_NOT_PRESENT);
	assert_int_equal(e.iova, 0x80000);
	assert_int_equal(e.addr_mask, 0x7ffff);
	assert_int_equal(xlate(x, 0, 0x5000, &e), VIOMMU_FAULT_NOT_PRESENT);
	assert_int_equal(e.iova, 0);
	assert_int_equal(e.addr_mask, 0xffff);

	/* not attached: nothing at all */
	assert_int_equal(xlate(x, 1, 0x10000, &e), VIOMMU_FAULT_NOT_PRESENT);
	assert_int_equal(e.iova, 0);
	assert_int_equal(e.addr_mask, UINT64_MAX);
}

struct pieces {
	struct viommu_entry e[160];
	size_t n;
};

static int collect(void *ctx, const struct viommu_entry *e)
{
	struct pieces *p = ctx;

	assert_true(p->n < 160);
	p->e[p->n++] = *e;
	return 0;
}

static void test_translate_agrees_with_pieces(void **state)
{
	struct ctx *x = *state;
	const uint64_t start = 0x3000, last = 0x12ccfff, pa = 0x7000000;
	struct pieces p = { .n = 0 };
	struct viommu_entry e, held;

	attach_ok(x, 1, 0);
	listen_to(x, 0, 1, x->rec, MAP | UNMAP);
	map_ok(x, 1, start, last - start + 1, pa, F_RW);
	viommu_split_range(start, last, collect, &p);
	assert_int_equal(x->rec->n, p.n);
	for (size_t i = 0; i < p.n; i++) {
		uint64_t lo = p.e[i].iova, hi = lo + p.e[i].addr_mask;

		assert_event(&x->rec->ev[i], 1, MAP, lo, p.e[i].addr_mask + 1,
			     pa + (lo - start), RW);
		for (uint64_t a = lo; a <= hi; a += (hi - lo) / 2 + 1) {
			assert_int_equal(xlate(x, 0, a, &e), VIOMMU_FAULT_NONE);
			assert_true(viommu_as_lookup(x->as[0], a, &held));
			assert_int_equal(e.iova, lo);
			assert_int_equal(e.addr_mask, p.e[i].addr_mask);
			assert_int_equal(e.translated_addr, pa + (lo - start));
			assert_int_equal(held.iova, e.iova);
			assert_int_equal(held.addr_mask, e.addr_mask);
		}
	}
}

static void test_replay(void **state)
{
	struct ctx *x = *state;

	attach_ok(x, 1, 0);
	map_ok(x, 1, 0x1000, KiB(12), 0x100000, F_RW);
	map_ok(x, 1, 0x40000, KiB(4), 0x200000, F_R);

	/* a late consumer hears what is in effect, as pieces, in order */
	listen_to(x, 0, 1, x->rec, MAP | UNMAP);
	assert_int_equal(viommu_notifier_replay(x->c[1].handle, NULL), 0);
	assert_int_equal(x->rec->n, 3);
	assert_event(&x->rec->ev[0], 1, MAP, 0x1000, KiB(4), 0x100000, RW);
	assert_event(&x->rec->ev[1], 1, MAP, 0x2000, KiB(8), 0x101000, RW);
	assert_event(&x->rec->ev[2], 1, MAP, 0x40000, KiB(4), 0x200000, RO);

	/* the model's own replay op: a sync after the held state was lost */
	assert_int_equal(
		viommu_as_update(x->as[0], 0, UINT64_MAX, NULL, 0, 0, NULL), 0);
	x->rec->n = 0;
	assert_int_equal(viommu_as_sync(x->as[0], 0x3000, 0x3fff, 0, NULL), 0);
	assert_int_equal(x->rec->n, 1);
	assert_event(&x->rec->ev[0], 1, MAP, 0x2000, KiB(8), 0x101000, RW);
	assert_int_equal(viommu_as_sync(x->as[0], 0, UINT64_MAX, 0, NULL), 0);
	assert_int_equal(x->rec->n, 3);
	assert_event(&x->rec->ev[1], 1, MAP, 0x1000, KiB(4), 0x100000, RW);
	assert_event(&x->rec->ev[2], 1, MAP, 0x40000, KiB(4), 0x200000, RO);
	/* in step again: a sync is silent */
	assert_int_equal(viommu_as_sync(x->as[0], 0, UINT64_MAX, 0, NULL), 0);
	assert_int_equal(x->rec->n, 3);
}

struct nested {
	struct viommu_virtio *v;
	enum viommu_virtio_status status;
	struct viommu_error err;
	uint64_t count;
	enum viommu_fault fault;
	int calls;
};

static int nested_notify(struct viommu_notifier *n,
			 const struct viommu_event *ev, void *opaque)
{
	struct nested *s = opaque;
	struct viommu_translation t;

	s->calls++;
	s->status =
		viommu_virtio_map(s->v, 1, 0x9000, 0x9fff, 0, F_RW, &s->err);
	s->count = viommu_virtio_mapping_count(s->v, 1);
	viommu_as_translate(viommu_notifier_as(n), ev->entry.iova,
			    VIOMMU_PERM_READ, &t);
	s->fault = t.fault;
	return 0;
}

static void test_request_from_a_callback(void **state)
{
	struct ctx *x = *state;
	struct viommu_notifier_config cfg;
	struct viommu_notifier *n;
	struct nested s = { .v = x->v };

	attach_ok(x, 1, 0);
	viommu_notifier_config_init(&cfg, MAP, nested_notify, &s);
	assert_int_equal(viommu_notifier_register(x->as[0], &cfg, &n, NULL), 0);
	map_ok(x, 1, 0x1000, KiB(4), 0xa000, F_RW);
	assert_int_equal(s.calls, 1);
	/* refused rather than deadlocked; queries work */
	assert_int_equal(s.status, S_DEVERR);
	assert_int_equal(s.err.code, -EBUSY);
	assert_contains(s.err.message, "inside a notification");
	assert_int_equal(s.count, 1);
	assert_int_equal(s.fault, VIOMMU_FAULT_NONE);
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), 1);
}

static void test_tables_and_config(void **state)
{
	struct ctx *x = *state;
	struct viommu_virtio_config cfg;
	struct viommu_virtio *v = (void *)1;
	struct viommu_error err = { 0 };
	struct viommu_as *as;

	viommu_virtio_config_init(&cfg);
	assert_int_equal(cfg.page_size_mask & -cfg.page_size_mask, KiB(4));
	assert_int_equal(cfg.input_last, (UINT64_C(1) << 48) - 1);
	assert_int_equal(cfg.max_mappings, VIOMMU_VIRTIO_DEFAULT_MAX_MAPPINGS);
	cfg.page_size_mask = 0;
	assert_int_equal(viommu_virtio_new(&cfg, &v, &err), -EINVAL);
	assert_null(v);
	viommu_virtio_config_init(&cfg);
	cfg.input_start = 0x2000;
	cfg.input_last = 0x1fff;
	assert_int_equal(viommu_virtio_new(&cfg, &v, &err), -EINVAL);
	assert_contains(err.message, "input range");
	viommu_virtio_config_init(&cfg);
	cfg.max_mappings = 0;
	assert_int_equal(viommu_virtio_new(&cfg, &v, &err), -EINVAL);
	viommu_virtio_free(NULL);

	assert_int_equal(viommu_virtio_endpoint_add(x->v, EP(0), "again", &as,
						    &err),
			 -EEXIST);
	assert_int_equal(viommu_virtio_domain_add(x->v, 5, NULL), 0);
	assert_int_equal(viommu_virtio_domain_add(x->v, 5, &err), -EEXIST);
	assert_int_equal(viommu_virtio_map(x->v, 6, 0, 0xfff, 0, F_R, &err),
			 S_NOENT);
	assert_contains(err.message, "no such domain");
	assert_int_equal(viommu_virtio_unmap(x->v, 6, 0, 0xfff, NULL), S_NOENT);
	assert_int_equal(viommu_virtio_mapping_count(x->v, 6), 0);
	assert_string_equal(viommu_as_name(x->as[2]), "ep2");
	/* a domain no endpoint ever joined stays, mappings and all */
	map_ok(x, 5, 0, KiB(4), 0, F_R);
	assert_int_equal(viommu_virtio_mapping_count(x->v, 5), 1);

	/* many domains and endpoints: the ID tables grow and shrink */
	for (uint32_t i = 0; i < 300; i++)
		assert_int_equal(viommu_virtio_endpoint_add(x->v, 1000 + i,
							    NULL, &as, NULL),
				 0);
	for (uint32_t i = 0; i < 300; i++)
		assert_int_equal(viommu_virtio_attach(x->v, 7 * i + 100,
						      1000 + i, NULL),
				 S_OK);
	for (uint32_t i = 0; i < 300; i += 2)
		assert_int_equal(viommu_virtio_detach(x->v, 7 * i + 100,
						      1000 + i, NULL),
				 S_OK);
	for (uint32_t i = 0; i < 300; i++) {
		enum viommu_virtio_status want = i % 2 ? S_OK : S_NOENT;

		assert_int_equal(viommu_virtio_map(x->v, 7 * i + 100, 0, 0xfff,
						   0, F_R, NULL),
				 want);
	}
}

static void test_status_names(void **state)
{
	static const char *const names[] = { "ok",     "ioerr", "unsupp",
					     "deverr", "inval", "range",
					     "noent",  "fault", "nomem" };

	for (int i = 0; i < 9; i++)
		assert_string_equal(
			viommu_virtio_status_name((enum viommu_virtio_status)i),
			names[i]);
	assert_string_equal(
		viommu_virtio_status_name((enum viommu_virtio_status)42),
		"unknown");
}

struct tally {
	unsigned long maps, unmaps;
	uint64_t mapped; /* bytes the consumer holds */
};

static int tally_notify(struct viommu_notifier *n,
			const struct viommu_event *ev, void *opaque)
{
	struct tally *t = opaque;

	if (ev->type == MAP) {
		t->maps++;
		t->mapped += ev->entry.addr_mask + 1;
	} else {
		t->unmaps++;
		t->mapped -= ev->entry.addr_mask + 1;
	}
	return 0;
}

#define STRESS_N 100000u

/* Mapping i: slot perm(i) of 64K, 4K to 64K long, in a scrambled order. */
static uint64_t stress_iova(uint32_t i)
{
	return (uint64_t)((i * 7919u) % STRESS_N) * KiB(64);
}

static uint64_t stress_size(uint32_t i)
{
	return KiB(4) * (1 + i % 16);
}

static void test_stress_100k(void **state)
{
	struct ctx *x = *state;
	struct viommu_notifier_config cfg;
	struct viommu_notifier *n;
	struct tally t = { 0 };
	struct viommu_entry e;
	uint64_t bytes = 0;

	attach_ok(x, 1, 0);
	viommu_notifier_config_init(&cfg, MAP | UNMAP, tally_notify, &t);
	assert_int_equal(viommu_notifier_register(x->as[0], &cfg, &n, NULL), 0);
	for (uint32_t i = 0; i < STRESS_N; i++) {
		map_ok(x, 1, stress_iova(i), stress_size(i),
		       GiB(1) + stress_iova(i), i % 3 ? F_RW : F_R);
		bytes += stress_size(i);
	}
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), STRESS_N);
	assert_int_equal(t.mapped, bytes);
	for (uint32_t i = 0; i < STRESS_N; i += 997) {
		uint64_t a = stress_iova(i) + stress_size(i) - 1;

		assert_int_equal(xlate(x, 0, a, &e), VIOMMU_FAULT_NONE);
		assert_int_equal(e.translated_addr, GiB(1) + e.iova);
		assert_int_equal(xlate(x, 0, stress_iova(i) + KiB(64) - 1, &e),
				 stress_size(i) == KiB(64) ?
					 VIOMMU_FAULT_NONE :
					 VIOMMU_FAULT_NOT_PRESENT);
	}
	/* every other mapping one by one, then the rest in one request */
	for (uint32_t i = 0; i < STRESS_N; i += 2)
		unmap_ok(x, 1, stress_iova(i), stress_size(i));
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), STRESS_N / 2);
	unmap_ok(x, 1, 0, (uint64_t)STRESS_N * KiB(64));
	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), 0);
	assert_int_equal(viommu_as_mapping_count(x->as[0]), 0);
	assert_int_equal(t.mapped, 0);
	assert_int_equal(t.maps, t.unmaps);
}

/*
 * Random requests against a slow, obviously right reference: a page array
 * of owners.  A consumer's shadow, built only from the events it hears,
 * must match it too.
 */
#define REF_PAGES 256

struct ref_map {
	uint64_t start, last, phys;
	unsigned flags;
};

struct reference {
	int owner[REF_PAGES]; /* index in map[], -1: unmapped */
	struct ref_map map[REF_PAGES];
	size_t count;
	/* the consumer's shadow: pa + 1 of each page, 0 when unmapped */
	uint64_t shadow[REF_PAGES];
};

static int shadow_notify(struct viommu_notifier *n,
			 const struct viommu_event *ev, void *opaque)
{
	struct reference *ref = opaque;
	uint64_t p;

	assert_true(ev->entry.iova + ev->entry.addr_mask < REF_PAGES * KiB(4));
	for (p = ev->entry.iova / KiB(4);
	     p <= (ev->entry.iova + ev->entry.addr_mask) / KiB(4); p++) {
		if (ev->type == MAP) {
			assert_int_equal(ref->shadow[p], 0);
			ref->shadow[p] = ev->entry.translated_addr +
					 (p * KiB(4) - ev->entry.iova) + 1;
		} else {
			assert_int_not_equal(ref->shadow[p], 0);
			ref->shadow[p] = 0;
		}
	}
	return 0;
}

static void check_reference(struct ctx *x, const struct reference *ref)
{
	struct viommu_entry e, held;

	assert_int_equal(viommu_virtio_mapping_count(x->v, 1), ref->count);
	for (uint64_t p = 0; p < REF_PAGES; p++) {
		uint64_t iova = p * KiB(4) + 0x123;
		int o = ref->owner[p];

		for (unsigned ep = 0; ep < 2; ep++) {
			enum viommu_fault f = xlate(x, ep, iova, &e);

			assert_true(e.iova <= iova &&
				    iova - e.iova <= e.addr_mask);
			if (o < 0) {
				assert_int_equal(f, VIOMMU_FAULT_NOT_PRESENT);
				assert_false(viommu_as_lookup(x->as[ep], iova,
							      &held));
				/* the hole holds no mapped page */
				for (uint64_t q = e.iova / KiB(4);
				     q < REF_PAGES &&
				     q <= (e.iova + e.addr_mask) / KiB(4);
				     q++)
					assert_int_equal(ref->owner[q], -1);
				continue;
			}
			assert_int_equal(f, VIOMMU_FAULT_NONE);
			assert_true(e.iova >= ref->map[o].start &&
				    e.iova + e.addr_mask <= ref->map[o].last);
			assert_int_equal(e.translated_addr + (iova - e.iova),
					 ref->map[o].phys +
						 (iova - ref->map[o].start));
			/* what the consumers were told is the same piece */
			assert_true(viommu_as_lookup(x->as[ep], iova, &held));
			assert_int_equal(held.iova, e.iova);
			assert_int_equal(held.addr_mask, e.addr_mask);
			assert_int_equal(held.translated_addr,
					 e.translated_addr);
		}
		assert_int_equal(ref->shadow[p],
				 o < 0 ? 0 :
					 ref->map[o].phys + p * KiB(4) -
						 ref->map[o].start + 1);
	}
}

static void test_random_against_reference(void **state)
{
	struct ctx *x = *state;
	struct reference *ref = calloc(1, sizeof(*ref));
	struct viommu_notifier_config cfg;
	struct viommu_notifier *n;
	uint64_t seed = 42;

	assert_non_null(ref);
	for (int p = 0; p < REF_PAGES; p++)
		ref->owner[p] = -1;
	attach_ok(x, 1, 0);
	attach_ok(x, 1, 1);
	viommu_notifier_config_init(&cfg, MAP | UNMAP, shadow_notify, ref);
	assert_int_equal(viommu_notifier_register(x->as[1], &cfg, &n, NULL), 0);
	for (int op = 0; op < 20000; op++) {
		uint64_t r, s, len, pa;
		enum viommu_virtio_status want = S_OK, got;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		r = seed >> 20;
		s = r % REF_PAGES;
		len = 1 + (r >> 8) % 24;
		if (s + len > REF_PAGES)
			len = REF_PAGES - s;
		pa = ((r >> 16) % 4096) * KiB(4);
		if ((r >> 30) % 5 < 3) { /* MAP, more often than UNMAP */
			for (uint64_t p = s; p < s + len; p++)
				if (ref->owner[p] >= 0)
					want = S_INVAL;
			got = viommu_virtio_map(x->v, 1, s * KiB(4),
						(s + len) * KiB(4) - 1, pa,
						F_RW, NULL);
			assert_int_equal(got, want);
			if (got == S_OK) {
				int slot = 0;

				while (ref->map[slot].last)
					slot++;
				ref->map[slot] = (struct ref_map){
					s * KiB(4), (s + len) * KiB(4) - 1, pa,
					F_RW
				};
				for (uint64_t p = s; p < s + len; p++)
					ref->owner[p] = slot;
				ref->count++;
			}
		} else {
			int first = ref->owner[s],
			    last = ref->owner[s + len - 1];

			if ((first >= 0 &&
			     ref->map[first].start < s * KiB(4)) ||
			    (last >= 0 &&
			     ref->map[last].last > (s + len) * KiB(4) - 1))
				want = S_RANGE;
			got = viommu_virtio_unmap(x->v, 1, s * KiB(4),
						  (s + len) * KiB(4) - 1, NULL);
			assert_int_equal(got, want);
			for (uint64_t p = s; got == S_OK && p < s + len; p++) {
				int o = ref->owner[p];

				if (o < 0)
					continue;
				if (ref->map[o].last) {
					ref->map[o].last = 0;
					ref->count--;
				}
				ref->owner[p] = -1;
			}
		}
		if (op % 97 == 0)
			check_reference(x, ref);
	}
	check_reference(x, ref);
	free(ref);
}

/* Translations on another thread while requests move the endpoint about. */
struct race {
	struct viommu_as *as;
	int stop;
	unsigned long hits, bad;
};

#define RACE_OFFSET GiB(16)

static void *translate_loop(void *arg)
{
	struct race *r = arg;
	uint64_t seed = 1;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		struct viommu_translation t;
		uint64_t iova;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		iova = (seed >> 33) % MiB(1);
		if (viommu_as_translate(r->as, iova, VIOMMU_PERM_READ, &t) ||
		    (t.fault == VIOMMU_FAULT_NONE &&
		     t.entry.translated_addr != t.entry.iova + RACE_OFFSET) ||
		    (t.entry.iova > iova ||
		     iova - t.entry.iova > t.entry.addr_mask))
			r->bad++;
		else if (t.fault == VIOMMU_FAULT_NONE)
			r->hits++;
	}
	return NULL;
}

static void test_translate_on_another_thread(void **state)
{
	struct ctx *x = *state;
	struct race r = { .as = x->as[0] };
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, translate_loop, &r), 0);
	for (uint32_t round = 0; round < 400; round++) {
		uint32_t d = 1 + round % 3;

		/* each move retires the domain it leaves: freed under reads */
		attach_ok(x, d, 0);
		for (uint64_t k = 0; k < 8; k++) {
			uint64_t iova = k * KiB(128);

			map_ok(x, d, iova, KiB(64 + 4 * k), iova + RACE_OFFSET,
			       F_RW);
		}
		unmap_ok(x, d, 0, KiB(512));
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	assert_int_equal(r.bad, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_attach_move_detach),
		T(test_detach_errors),
		T(test_move_between_alike_domains),
		T(test_map_overlap),
		T(test_map_invalid_4k),
		cmocka_unit_test_setup_teardown(test_map_invalid_64k, setup_64k,
						teardown),
		cmocka_unit_test_setup_teardown(test_map_outside_input_range,
						setup_input, teardown),
		cmocka_unit_test_setup_teardown(test_map_top_of_space,
						setup_whole, teardown),
		T(test_unmap_split_refused),
		T(test_unmap_empty_range),
		T(test_unmap_several),
		T(test_unaligned_size_is_cut_in_pieces),
		cmocka_unit_test_setup_teardown(test_mapping_cap, setup_max4,
						teardown),
		T(test_two_endpoints_one_domain),
		T(test_refused_map_is_undone),
		T(test_refused_attach_stays),
		T(test_deviotlb_refused),
		T(test_translate),
		T(test_translate_agrees_with_pieces),
		T(test_replay),
		T(test_request_from_a_callback),
		T(test_tables_and_config),
		T(test_status_names),
		T(test_random_against_reference),
		T(test_stress_100k),
		T(test_translate_on_another_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
