/* SPDX-License-Identifier: MIT */
/*
 * The core's own costs: delivering one event through the change engine
 * (a model of our own that states single entries), and one virtio-iommu
 * MAP + UNMAP request pair.
 */
#include <stdlib.h>

#include <viommu/model.h>
#include <viommu/virtio.h>

#include "bench.h"

/* Notifiers of the 256 case each watch one 1 MiB slice. */
#define SLICE_SHIFT 20
#define MAX_NOTIFIERS 256

struct counter {
	uint64_t events;
};

static int count_event(struct viommu_notifier *n, const struct viommu_event *ev,
		       void *opaque)
{
	struct counter *c = opaque;

	c->events++;
	return 0;
}

/*
 * The tiny model: it never needs to be asked, since the cases state every
 * entry with viommu_as_update_entry(); translate only exists because the
 * core requires one.
 */
static int tiny_translate(void *opaque, uint64_t iova, unsigned access,
			  struct viommu_translation *out)
{
	out->entry = (struct viommu_entry){ iova & ~(BENCH_PAGE - 1),
					    BENCH_PAGE - 1, 0, 0 };
	out->fault = VIOMMU_FAULT_NOT_PRESENT;
	return 0;
}

static const struct viommu_model_ops tiny_ops = {
	.version = VIOMMU_MODEL_OPS_VERSION,
	.name = "bench",
	.translate = tiny_translate,
};

/*
 * One repetition: @flips events, alternately the map and the unmap of one
 * page, walking over the notifiers' slices so that with 256 notifiers each
 * event concerns exactly one of them (and a different one each time).
 */
static double flip_rep(struct viommu_as *as, unsigned nnotifiers,
		       unsigned flips, struct counter *c)
{
	uint64_t before = c->events;
	double t0, t1;
	unsigned i;

	t0 = bench_now();
	for (i = 0; i < flips; i += 2) {
		unsigned slice = (i / 2) % nnotifiers;
		struct viommu_entry e = {
			.iova = ((uint64_t)slice << SLICE_SHIFT) +
				(i / 2 / nnotifiers % 256) * BENCH_PAGE,
			.addr_mask = BENCH_PAGE - 1,
			.translated_addr = BENCH_PA,
			.perm = VIOMMU_PERM_RW,
		};

		if (viommu_as_update_entry(as, &e, NULL))
			bench_die("dispatch: map refused");
		e.perm = VIOMMU_PERM_NONE;
		if (viommu_as_update_entry(as, &e, NULL))
			bench_die("dispatch: unmap refused");
	}
	t1 = bench_now();
	if (c->events - before != (flips & ~1u))
		bench_die("dispatch: %llu notifications for %u events",
			  (unsigned long long)(c->events - before),
			  flips & ~1u);
	return (t1 - t0) / (flips & ~1u);
}

static double dispatch_case(const struct bench_plan *p, unsigned nnotifiers)
{
	struct viommu_model *model;
	struct viommu_as *as;
	struct counter c = { 0 };
	double *v = calloc(p->reps, sizeof(*v)), med;
	unsigned i;

	if (!v || viommu_model_new(&tiny_ops, NULL, &model, NULL) ||
	    viommu_as_new(model, "bench", NULL, &as, NULL))
		bench_die("dispatch: setup failed");
	for (i = 0; i < nnotifiers; i++) {
		struct viommu_notifier_config cfg;
		struct viommu_notifier *n;

		viommu_notifier_config_init(
			&cfg, VIOMMU_NOTIFY_MAP | VIOMMU_NOTIFY_UNMAP,
			count_event, &c);
		if (nnotifiers > 1) {
			cfg.start = (uint64_t)i << SLICE_SHIFT;
			cfg.last =
				cfg.start + ((UINT64_C(1) << SLICE_SHIFT) - 1);
		}
		if (viommu_notifier_register(as, &cfg, &n, NULL))
			bench_die("dispatch: register failed");
	}
	flip_rep(as, nnotifiers, p->flips / 4, &c); /* warm-up */
	for (i = 0; i < p->reps; i++)
		v[i] = flip_rep(as, nnotifiers, p->flips, &c);
	med = bench_median(v, p->reps);
	viommu_as_free(as);
	viommu_model_free(model);
	free(v);
	return med;
}

void bench_dispatch(const struct bench_plan *p, struct bench_results *r)
{
	r->dispatch_ns_1 = dispatch_case(p, 1);
	r->dispatch_ns_256 = dispatch_case(p, MAX_NOTIFIERS);
}

static double virtio_rep(struct viommu_virtio *v, unsigned requests,
			 struct counter *c)
{
	uint64_t before = c->events;
	double t0, t1;
	unsigned i;

	t0 = bench_now();
	for (i = 0; i < requests; i++) {
		uint64_t iova = BENCH_IOVA + (i % 1024) * BENCH_PAGE;

		if (viommu_virtio_map(v, 1, iova, iova + BENCH_PAGE - 1,
				      BENCH_PA,
				      VIOMMU_VIRTIO_MAP_F_READ |
					      VIOMMU_VIRTIO_MAP_F_WRITE,
				      NULL) != VIOMMU_VIRTIO_S_OK ||
		    viommu_virtio_unmap(v, 1, iova, iova + BENCH_PAGE - 1,
					NULL) != VIOMMU_VIRTIO_S_OK)
			bench_die("virtio: request refused");
	}
	t1 = bench_now();
	if (c->events - before != 2 * (uint64_t)requests)
		bench_die("virtio: %llu notifications for %u request pairs",
			  (unsigned long long)(c->events - before), requests);
	return (t1 - t0) / requests;
}

void bench_virtio(const struct bench_plan *p, struct bench_results *r)
{
	struct viommu_notifier_config cfg;
	struct viommu_notifier *n;
	struct viommu_virtio *v;
	struct viommu_as *as;
	struct counter c = { 0 };
	double *t = calloc(p->reps, sizeof(*t));
	unsigned i;

	if (!t || viommu_virtio_new(NULL, &v, NULL) ||
	    viommu_virtio_domain_add(v, 1, NULL) ||
	    viommu_virtio_endpoint_add(v, 1, "bench", &as, NULL) ||
	    viommu_virtio_attach(v, 1, 1, NULL) != VIOMMU_VIRTIO_S_OK)
		bench_die("virtio: setup failed");
	viommu_notifier_config_init(
		&cfg, VIOMMU_NOTIFY_MAP | VIOMMU_NOTIFY_UNMAP, count_event, &c);
	if (viommu_notifier_register(as, &cfg, &n, NULL))
		bench_die("virtio: register failed");
	virtio_rep(v, p->requests / 4, &c); /* warm-up */
	for (i = 0; i < p->reps; i++)
		t[i] = virtio_rep(v, p->requests, &c);
	r->virtio_map_unmap_ns = bench_median(t, p->reps);
	viommu_virtio_free(v);
	free(t);
}
