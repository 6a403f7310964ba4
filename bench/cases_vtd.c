/* SPDX-License-Identifier: MIT */
/*
 * A VT-d guest, set up as an OS would through the library's guest driver
 * (tables in guest memory, invalidations through the queue), measured on
 * what a VMM pays: invalidations that sync a device's address space,
 * replays, translations and the memory held per mapping.
 */
#include <stdlib.h>

#include <viommu/guest_memory.h>
#include <viommu/model.h>
#include <viommu/vtd.h>
#include <viommu/vtd_driver.h>

#include "bench.h"

#define DID 1
#define SID 0x0100 /* 01:00.0 */
/* Sparse: only the table pages the driver touches cost memory. */
#define RAM_SIZE (UINT64_C(1) << 30)
#define TABLES_BASE (UINT64_C(512) << 20)
/* Targets of single retargeted pages: apart from both bulk target sets. */
#define PSI_PA UINT64_C(0x3000000000)

struct guest {
	struct viommu_ram *ram;
	struct viommu_guest_memory mem;
	struct viommu_vtd *vtd;
	struct viommu_vtd_driver *drv;
	struct viommu_as *as;
	struct viommu_notifier *shadow;
	uint64_t events; /* what the shadow heard */
	unsigned n;	 /* mappings in effect */
	uint64_t pa;	 /* target of the first page, when all are retargeted */
	uint64_t retarget_serial;
};

static int count_event(struct viommu_notifier *n, const struct viommu_event *ev,
		       void *opaque)
{
	uint64_t *events = opaque;

	(*events)++;
	return 0;
}

static void invalidate(struct guest *g, uint64_t iova, uint64_t size)
{
	if (viommu_vtd_driver_invalidate(g->drv, DID, iova, size, NULL))
		bench_die("vtd: invalidation refused");
}

static void map(struct guest *g, uint64_t first, uint64_t pages, uint64_t pa)
{
	if (viommu_vtd_driver_map(g->drv, DID, BENCH_IOVA + first * BENCH_PAGE,
				  pa, pages * BENCH_PAGE, VIOMMU_PERM_RW,
				  BENCH_PAGE, NULL))
		bench_die("vtd: the driver could not map");
}

/*
 * A unit, one device in one domain, @n 4 KiB mappings written by the driver
 * and brought into effect by one domain invalidation, and a MAP|UNMAP
 * notifier that counts what it hears (the cheapest possible consumer, so
 * what is measured is the library).
 */
static void guest_init(struct guest *g, unsigned aw, unsigned n)
{
	struct viommu_notifier_config cfg;
	struct viommu_vtd_config vc;
	struct viommu_error err = { 0 };

	*g = (struct guest){ .n = n, .pa = BENCH_PA };
	viommu_vtd_config_init(&vc);
	vc.aw = aw;
	if (viommu_ram_new(RAM_SIZE, &g->ram, &err))
		bench_die("vtd: %s", err.message);
	g->mem = viommu_ram_memory(g->ram);
	if (viommu_vtd_new(&vc, &g->mem, &g->vtd, &err) ||
	    viommu_vtd_driver_new(g->vtd, &g->mem, TABLES_BASE, RAM_SIZE,
				  &g->drv, &err) ||
	    viommu_vtd_driver_domain_new(g->drv, DID, &err) ||
	    viommu_vtd_driver_attach(g->drv, SID, DID, &err) ||
	    viommu_vtd_device_add(g->vtd, SID, "bench", &g->as, &err))
		bench_die("vtd: setup: %s", err.message);
	viommu_notifier_config_init(&cfg,
				    VIOMMU_NOTIFY_MAP | VIOMMU_NOTIFY_UNMAP,
				    count_event, &g->events);
	if (viommu_notifier_register(g->as, &cfg, &g->shadow, &err))
		bench_die("vtd: register: %s", err.message);
	if (!n)
		return;
	map(g, 0, n, BENCH_PA);
	invalidate(g, 0, 0);
	if (viommu_as_mapping_count(g->as) != n || g->events != n)
		bench_die("vtd: %zu mappings in effect, %llu maps heard, "
			  "for %u written",
			  viommu_as_mapping_count(g->as),
			  (unsigned long long)g->events, n);
}

static void guest_fini(struct guest *g)
{
	viommu_vtd_driver_free(g->drv);
	viommu_vtd_free(g->vtd);
	viommu_ram_free(g->ram);
}

/* Domain-selective invalidation with nothing changed: ns in total. */
static double sync_unchanged(struct guest *g)
{
	uint64_t before = g->events;
	double t0 = bench_now();

	invalidate(g, 0, 0);
	t0 = bench_now() - t0;
	if (g->events != before)
		bench_die("vtd: an unchanged sync delivered %llu events",
			  (unsigned long long)(g->events - before));
	return t0;
}

/*
 * Every mapping retargeted (not timed), then the domain-selective
 * invalidation that tells the shadow: an unmap and a map each.
 */
static double sync_changed(struct guest *g)
{
	uint64_t before;
	double t0;

	g->pa = g->pa == BENCH_PA ? BENCH_PA_ALT : BENCH_PA;
	map(g, 0, g->n, g->pa);
	before = g->events;
	t0 = bench_now();
	invalidate(g, 0, 0);
	t0 = bench_now() - t0;
	if (g->events - before != 2 * (uint64_t)g->n)
		bench_die("vtd: retargeting %u mappings delivered %llu events",
			  g->n, (unsigned long long)(g->events - before));
	return t0;
}

/* A new notifier hears the mappings in effect: ns in total. */
static double replay(struct guest *g, unsigned times)
{
	struct viommu_notifier_config cfg;
	struct viommu_notifier *n;
	uint64_t events = 0;
	double t0;
	unsigned i;

	viommu_notifier_config_init(&cfg,
				    VIOMMU_NOTIFY_MAP | VIOMMU_NOTIFY_UNMAP,
				    count_event, &events);
	if (viommu_notifier_register(g->as, &cfg, &n, NULL))
		bench_die("vtd: register failed");
	t0 = bench_now();
	for (i = 0; i < times; i++)
		if (viommu_notifier_replay(n, NULL))
			bench_die("vtd: replay failed");
	t0 = bench_now() - t0;
	viommu_notifier_unregister(n);
	if (events != (uint64_t)g->n * times)
		bench_die("vtd: replay delivered %llu maps of %u",
			  (unsigned long long)events, g->n);
	return t0 / times;
}

/*
 * Page-selective invalidations of one retargeted page each: ns on average.
 * The pages are spread over the domain, a different one each time.
 */
static double psi(struct guest *g, unsigned iters, unsigned rep)
{
	double total = 0;
	unsigned j;

	for (j = 0; j < iters; j++) {
		uint64_t k = ((uint64_t)rep * iters + j) * 7919 % g->n;
		uint64_t iova = BENCH_IOVA + k * BENCH_PAGE;
		uint64_t before;
		double t0;

		g->retarget_serial++;
		map(g, k, 1, PSI_PA + g->retarget_serial * BENCH_PAGE);
		before = g->events;
		t0 = bench_now();
		invalidate(g, iova, BENCH_PAGE);
		total += bench_now() - t0;
		if (g->events - before != 2)
			bench_die("vtd: a page-selective invalidation "
				  "delivered %llu events",
				  (unsigned long long)(g->events - before));
	}
	return total / iters;
}

static struct viommu_vtd_counters counters(struct guest *g)
{
	struct viommu_vtd_counters c;

	viommu_vtd_counters(g->vtd, &c);
	return c;
}

static void translate_one(struct guest *g, uint64_t page)
{
	struct viommu_translation t;

	if (viommu_as_translate(g->as, BENCH_IOVA + page * BENCH_PAGE,
				VIOMMU_PERM_READ, &t) ||
	    t.fault != VIOMMU_FAULT_NONE)
		bench_die("vtd: page %llu does not translate",
			  (unsigned long long)page);
}

/* The same page again and again: the IOTLB answers. */
static double translate_hit(struct guest *g, unsigned lookups)
{
	struct viommu_vtd_counters c0 = counters(g), c1;
	double t0;
	unsigned i;

	translate_one(g, 12345 % g->n);
	t0 = bench_now();
	for (i = 0; i < lookups; i++)
		translate_one(g, 12345 % g->n);
	t0 = bench_now() - t0;
	c1 = counters(g);
	if (c1.iotlb_hits - c0.iotlb_hits < lookups)
		bench_die("vtd: the IOTLB missed a page it just cached");
	return t0 / lookups;
}

/*
 * Pages in a scattered order (a multiplier prime to the count permutes
 * them), so each lookup misses the IOTLB and walks the four levels, as a
 * device's DMA over a large working set would.  Repetition @rep takes the
 * @rep-th run of @lookups pages of the permutation.  The miss rate is
 * checked.
 */
static double translate_miss(struct guest *g, unsigned lookups, unsigned rep)
{
	struct viommu_vtd_counters c0 = counters(g), c1;
	uint64_t start = (uint64_t)rep * lookups, misses;
	double t0;
	unsigned i;

	t0 = bench_now();
	for (i = 0; i < lookups; i++)
		translate_one(g, (start + i) * UINT64_C(2654435761) % g->n);
	t0 = bench_now() - t0;
	c1 = counters(g);
	misses = c1.iotlb_misses - c0.iotlb_misses;
	if (misses < lookups - lookups / 20)
		bench_die("vtd: only %llu of %u scattered lookups missed",
			  (unsigned long long)misses, lookups);
	return t0 / lookups;
}

/*
 * A device has been doing DMA over its mappings: the IOTLB holds what it
 * translated, as many of the pages as fit (4096 slots by default; four
 * times as many scattered pages fill nearly every slot).
 */
static void warm_iotlb(struct guest *g)
{
	uint64_t pages = VIOMMU_VTD_DEFAULT_IOTLB_ENTRIES * UINT64_C(4), i;

	if (pages > g->n)
		pages = g->n;
	for (i = 0; i < pages; i++)
		translate_one(g, i * UINT64_C(2654435761) % g->n);
}

void bench_vtd(const struct bench_plan *p, struct bench_results *r)
{
	unsigned reps = p->reps, big = p->big_reps, misses, i;
	double *v = calloc(reps > big ? reps : big, sizeof(*v));
	double *w = calloc(reps, sizeof(*w));
	struct guest g, small, empty;

	if (!v || !w)
		bench_die("out of memory");
	guest_init(&g, 48, BENCH_MAPPINGS);
	r->bytes_per_mapping = (double)viommu_as_memory_bytes(g.as) /
			       viommu_as_mapping_count(g.as);

	sync_unchanged(&g); /* warm-up */
	for (i = 0; i < big; i++)
		v[i] = sync_unchanged(&g) / g.n;
	r->sync_unchanged_ns_per_entry = bench_median(v, big);

	replay(&g, 1);
	for (i = 0; i < big; i++)
		v[i] = replay(&g, 1) / g.n;
	r->replay_ns_per_entry = bench_median(v, big);

	translate_hit(&g, p->lookups / 4);
	for (i = 0; i < reps; i++)
		v[i] = translate_hit(&g, p->lookups);
	r->translate_hit_ns = bench_median(v, reps);
	/*
	 * Every lookup of the miss case gets a page no other lookup of it
	 * touched, so neither the IOTLB nor the CPU's caches hold its tables
	 * because of the measurement itself.
	 */
	misses = p->lookups < g.n / (reps + 1) ? p->lookups : g.n / (reps + 1);
	translate_miss(&g, misses, 0);
	for (i = 0; i < reps; i++)
		v[i] = translate_miss(&g, misses, i + 1);
	r->translate_miss_ns = bench_median(v, reps);

	/*
	 * Small and large alternate, so a burst of load hits both alike.
	 * Both IOTLBs hold what DMA over the mappings left there, as in a
	 * running guest: the 1,000-page one cannot fill more slots than it
	 * has pages.
	 */
	guest_init(&small, 48, BENCH_PSI_SMALL);
	warm_iotlb(&small);
	warm_iotlb(&g);
	psi(&small, p->psi_iters / 4, 0);
	psi(&g, p->psi_iters / 4, 0);
	for (i = 0; i < reps; i++) {
		v[i] = psi(&small, p->psi_iters, i + 1);
		w[i] = psi(&g, p->psi_iters, i + 1);
	}
	r->psi_ns_small = bench_median(v, reps);
	r->psi_ns_large = bench_median(w, reps);
	guest_fini(&small);

	sync_changed(&g);
	for (i = 0; i < big; i++)
		v[i] = sync_changed(&g) / g.n;
	r->sync_changed_ns_per_entry = bench_median(v, big);
	guest_fini(&g);

	guest_init(&empty, 57, 0);
	replay(&empty, p->aw57_iters / 4);
	for (i = 0; i < reps; i++)
		v[i] = replay(&empty, p->aw57_iters);
	r->replay_empty_aw57_ns = bench_median(v, reps);
	guest_fini(&empty);
	free(v);
	free(w);
}

void bench_vtd_sweep(unsigned n, unsigned reps, struct bench_sweep_point *out)
{
	double *a = calloc(reps, sizeof(*a)), *b = calloc(reps, sizeof(*b));
	double *c = calloc(reps, sizeof(*c));
	struct guest g;
	unsigned i;

	if (!a || !b || !c)
		bench_die("out of memory");
	guest_init(&g, 48, n);
	sync_unchanged(&g);
	replay(&g, 1);
	sync_changed(&g);
	for (i = 0; i < reps; i++) {
		a[i] = sync_unchanged(&g);
		b[i] = sync_changed(&g);
		c[i] = replay(&g, 1);
	}
	out->sync_unchanged = bench_median(a, reps);
	out->sync_changed = bench_median(b, reps);
	out->replay = bench_median(c, reps);
	guest_fini(&g);
	free(a);
	free(b);
	free(c);
}
