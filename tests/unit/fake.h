/* SPDX-License-Identifier: MIT */
/*
 * Test doubles shared by the unit tests: a fake model whose "tables" are a
 * sorted array of leaf entries, and a recording notifier.  Header-only so
 * each test stays one executable per module.
 */
#ifndef VIOMMU_TEST_FAKE_H
#define VIOMMU_TEST_FAKE_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <viommu/model.h>
#include <viommu/viommu.h>

#define FAKE_MAX_ENTRIES 4096
#define FAKE_MAX_EVENTS 65536

#define KiB(x) ((uint64_t)(x) << 10)
#define MiB(x) ((uint64_t)(x) << 20)
#define GiB(x) ((uint64_t)(x) << 30)

/* The model's tables for one address space. */
struct fake_tables {
	struct viommu_entry e[FAKE_MAX_ENTRIES];
	size_t n;
	unsigned flags_seen;   /* last union told by the library */
	unsigned flag_changes; /* how many times it was told */
	bool refuse_map;       /* like VT-d without caching mode */
	unsigned translate_calls;
	unsigned replay_calls;
};

static inline uint64_t fake_last(const struct viommu_entry *e)
{
	return e->iova + e->addr_mask;
}

/* Remove every leaf overlapping [start, last] (no splitting). */
static inline void fake_clear(struct fake_tables *t, uint64_t start,
			      uint64_t last)
{
	size_t i, k = 0;

	for (i = 0; i < t->n; i++)
		if (fake_last(&t->e[i]) < start || t->e[i].iova > last)
			t->e[k++] = t->e[i];
	t->n = k;
}

/* Write a leaf, replacing whatever it overlaps. */
static inline void fake_set(struct fake_tables *t, uint64_t iova, uint64_t size,
			    uint64_t pa, unsigned perm)
{
	struct viommu_entry e = { iova, size - 1, pa, perm };
	size_t i;

	fake_clear(t, iova, iova + size - 1);
	for (i = t->n; i > 0 && t->e[i - 1].iova > iova; i--)
		t->e[i] = t->e[i - 1];
	t->e[i] = e;
	t->n++;
}

static inline int fake_translate(void *opaque, uint64_t iova, unsigned access,
				 struct viommu_translation *out)
{
	struct fake_tables *t = opaque;
	size_t i;

	t->translate_calls++;
	for (i = 0; i < t->n; i++) {
		if (t->e[i].iova <= iova && iova <= fake_last(&t->e[i])) {
			out->entry = t->e[i];
			out->fault = VIOMMU_FAULT_NONE;
			return 0;
		}
	}
	/* the largest aligned hole around @iova, so walkers step over it */
	uint64_t mask = 0xfff;

	while (mask != UINT64_MAX) {
		uint64_t wider = mask * 2 + 1, lo = iova & ~wider;
		bool clear = true;

		for (i = 0; i < t->n && clear; i++)
			clear = fake_last(&t->e[i]) < lo ||
				t->e[i].iova > lo + wider;
		if (!clear)
			break;
		mask = wider;
	}
	out->entry = (struct viommu_entry){ iova & ~mask, mask, 0,
					    VIOMMU_PERM_NONE };
	out->fault = VIOMMU_FAULT_NOT_PRESENT;
	return 0;
}

static inline int fake_replay(void *opaque, uint64_t start, uint64_t last,
			      viommu_walk_fn fn, void *ctx)
{
	struct fake_tables *t = opaque;
	size_t i;
	int ret;

	t->replay_calls++;
	for (i = 0; i < t->n; i++) {
		if (fake_last(&t->e[i]) < start || t->e[i].iova > last)
			continue;
		ret = fn(ctx, &t->e[i]);
		if (ret)
			return ret;
	}
	return 0;
}

static inline int fake_flags_changed(void *opaque, unsigned old_flags,
				     unsigned new_flags,
				     struct viommu_error *err)
{
	struct fake_tables *t = opaque;

	if (t->refuse_map && (new_flags & VIOMMU_NOTIFY_MAP)) {
		if (err) {
			err->code = -ENOTSUP;
			snprintf(err->message, sizeof(err->message),
				 "fake: cannot report maps");
		}
		return -ENOTSUP;
	}
	t->flags_seen = new_flags;
	t->flag_changes++;
	return 0;
}

static const struct viommu_model_ops fake_ops_replay = {
	.version = VIOMMU_MODEL_OPS_VERSION,
	.name = "fake",
	.translate = fake_translate,
	.replay = fake_replay,
	.notify_flags_changed = fake_flags_changed,
};

static const struct viommu_model_ops fake_ops_translate_only = {
	.version = VIOMMU_MODEL_OPS_VERSION,
	.name = "fake-translate",
	.translate = fake_translate,
	.notify_flags_changed = fake_flags_changed,
};

/* A model, one address space over fresh tables. */
struct fake {
	struct viommu_model *model;
	struct viommu_as *as;
	struct fake_tables *tables;
};

static inline void fake_init(struct fake *f, const struct viommu_model_ops *ops)
{
	f->tables = calloc(1, sizeof(*f->tables));
	assert_non_null(f->tables);
	assert_int_equal(viommu_model_new(ops, NULL, &f->model, NULL), 0);
	assert_int_equal(
		viommu_as_new(f->model, "fake0", f->tables, &f->as, NULL), 0);
}

static inline void fake_fini(struct fake *f)
{
	viommu_as_free(f->as);
	viommu_model_free(f->model);
	free(f->tables);
}

/* What a recording notifier saw. */
struct rec_event {
	int who;
	unsigned type;
	uint64_t iova, addr_mask, pa;
	unsigned perm;
};

struct recorder {
	struct rec_event ev[FAKE_MAX_EVENTS];
	size_t n;
	int fail_map_at;  /* fail the map with this 1-based index, 0: never */
	int fail_map_at2; /* and this one */
	int fail_code;
	size_t maps_seen;
	unsigned batch_begins, batch_ends;
};

/* One recorder may serve several notifiers: each gets an id. */
struct rec_client {
	struct recorder *rec;
	int who;
	struct viommu_notifier *handle;
};

static inline int rec_notify(struct viommu_notifier *n,
			     const struct viommu_event *ev, void *opaque)
{
	struct rec_client *c = opaque;
	struct recorder *r = c->rec;

	if (ev->type == VIOMMU_NOTIFY_MAP) {
		r->maps_seen++;
		if ((r->fail_map_at &&
		     (size_t)r->fail_map_at == r->maps_seen) ||
		    (r->fail_map_at2 &&
		     (size_t)r->fail_map_at2 == r->maps_seen))
			return r->fail_code ? r->fail_code : -ENOSPC;
	}
	assert_true(r->n < FAKE_MAX_EVENTS);
	r->ev[r->n++] = (struct rec_event){ c->who,
					    ev->type,
					    ev->entry.iova,
					    ev->entry.addr_mask,
					    ev->entry.translated_addr,
					    ev->entry.perm };
	return 0;
}

static inline void rec_begin(struct viommu_notifier *n, void *opaque)
{
	((struct rec_client *)opaque)->rec->batch_begins++;
}

static inline void rec_end(struct viommu_notifier *n, void *opaque)
{
	((struct rec_client *)opaque)->rec->batch_ends++;
}

static inline int rec_register(struct viommu_as *as, struct rec_client *c,
			       struct recorder *r, int who, unsigned flags,
			       uint64_t start, uint64_t last)
{
	struct viommu_notifier_config cfg;

	viommu_notifier_config_init(&cfg, flags, rec_notify, c);
	cfg.start = start;
	cfg.last = last;
	c->rec = r;
	c->who = who;
	return viommu_notifier_register(as, &cfg, &c->handle, NULL);
}

static inline void assert_event(const struct rec_event *e, int who,
				unsigned type, uint64_t iova, uint64_t size,
				uint64_t pa, unsigned perm)
{
	if (e->who != who || e->type != type || e->iova != iova ||
	    e->addr_mask != size - 1 || e->pa != pa || e->perm != perm)
		fail_msg("event: got who=%d type=%u iova=0x%llx mask=0x%llx "
			 "pa=0x%llx perm=%u; want who=%d type=%u iova=0x%llx "
			 "mask=0x%llx pa=0x%llx perm=%u",
			 e->who, e->type, (unsigned long long)e->iova,
			 (unsigned long long)e->addr_mask,
			 (unsigned long long)e->pa, e->perm, who, type,
			 (unsigned long long)iova,
			 (unsigned long long)(size - 1), (unsigned long long)pa,
			 perm);
}

#define MAP VIOMMU_NOTIFY_MAP
#define UNMAP VIOMMU_NOTIFY_UNMAP
#define DEVTLB VIOMMU_NOTIFY_DEVIOTLB_UNMAP
#define RW VIOMMU_PERM_RW
#define RO VIOMMU_PERM_READ
#define WO VIOMMU_PERM_WRITE

#endif /* VIOMMU_TEST_FAKE_H */
