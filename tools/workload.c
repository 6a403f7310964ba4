/* SPDX-License-Identifier: MIT */
/*
 * viommu workload: a simulated VM exercising everything at once.
 *
 * Two NICs sit behind the IOMMU.  The passthrough NIC's address space feeds
 * the host shadow consumer (the software VFIO type1 backend, 65535 entries
 * at most); the paravirtual NIC's feeds a device IOTLB.  The guest driver
 * does what Linux network drivers do with the DMA API: receive and transmit
 * rings of 256 buffers each, mapped when a buffer is posted and unmapped
 * when it completes, invalidated at once (strict) or in batches after a
 * flush queue fills (lazy), and now and then a 2 MiB buffer.  The devices
 * look up their buffers between those steps, and every lookup is checked
 * against what the guest mapped: a translation the guest revoked and
 * invalidated must never be used.  Deterministic for a seed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <viommu/devtlb.h>
#include <viommu/shadow.h>
#include <viommu/viommu.h>

#include "commands.h"
#include "workload_guest.h"

#define RING 256
#define RINGS 2
#define FLUSH_QUEUE 64
#define IOVA_BASE UINT64_C(0xf0000000)
#define IOVA_PAGES 4096 /* a 16 MiB window per device */
#define BIG_BASE UINT64_C(0x4000000000)
#define BIG_SLOTS 4
#define PHASE_OPS 4096

enum mode {
	STRICT,
	LAZY,
	MIXED
};

struct buffer {
	bool mapped;
	uint64_t iova, pa;
	unsigned perm;
};

struct device {
	struct buffer ring[RINGS][RING];
	struct buffer big[BIG_SLOTS];
	uint64_t free_iova[IOVA_PAGES]; /* a FIFO, so addresses move on */
	unsigned free_head, free_count;
	uint64_t pending[FLUSH_QUEUE]; /* unmapped, not yet invalidated */
	unsigned npending;
};

struct options {
	bool virtio, json, progress;
	enum mode mode;
	double seconds;
	uint64_t ops, seed, ram;
};

struct stats {
	uint64_t ops, maps, unmaps, big_maps, flushes, lookups;
	uint64_t revoked_checked, bad_lookups, checks, bad_checks;
	char first_problem[VIOMMU_ERROR_MESSAGE_MAX + 64];
};

struct workload {
	struct options opt;
	struct wl_guest g;
	struct device dev[WL_DEVICES];
	struct viommu_type1_soft *host;
	struct viommu_shadow *shadow;
	struct viommu_devtlb *tlb;
	struct stats st;
	uint64_t rng;
};

static uint64_t rnd(struct workload *w)
{
	/* xorshift64*: deterministic for a seed, fast enough not to show */
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * UINT64_C(2685821657736338717);
}

static void problem(struct workload *w, const char *fmt, uint64_t a, uint64_t b)
{
	if (!w->st.first_problem[0])
		snprintf(w->st.first_problem, sizeof(w->st.first_problem), fmt,
			 a, b);
}

static uint64_t iova_alloc(struct device *d)
{
	uint64_t iova = d->free_iova[d->free_head];

	d->free_head = (d->free_head + 1) % IOVA_PAGES;
	d->free_count--;
	return iova;
}

static void iova_free(struct device *d, uint64_t iova)
{
	d->free_iova[(d->free_head + d->free_count) % IOVA_PAGES] = iova;
	d->free_count++;
}

/* A DMA by device @dev: through the IOMMU, or its own IOTLB. */
static void dma(struct workload *w, unsigned dev, const struct buffer *b)
{
	struct viommu_translation t;
	uint64_t off = rnd(w) & 0xff8;

	if (dev == 0)
		viommu_as_translate(w->g.as[0], b->iova + off, b->perm, &t);
	else
		viommu_devtlb_translate(w->tlb, b->iova + off, b->perm, &t);
	w->st.lookups++;
	if (t.fault != VIOMMU_FAULT_NONE ||
	    t.entry.translated_addr + (b->iova + off - t.entry.iova) !=
		    b->pa + off) {
		w->st.bad_lookups++;
		problem(w,
			"device lookup of iova 0x%" PRIx64 " gave the wrong "
			"answer (fault %" PRIu64 ")",
			b->iova + off, (uint64_t)t.fault);
	}
}

/* After an invalidation: the device must not reach a revoked address. */
static void check_revoked(struct workload *w, unsigned dev, uint64_t iova)
{
	struct viommu_translation t;

	if (dev == 0)
		viommu_as_translate(w->g.as[0], iova, VIOMMU_PERM_READ, &t);
	else
		viommu_devtlb_translate(w->tlb, iova, VIOMMU_PERM_READ, &t);
	w->st.revoked_checked++;
	if (t.fault == VIOMMU_FAULT_NONE) {
		w->st.bad_lookups++;
		problem(w,
			"device %" PRIu64 " still translates iova 0x%" PRIx64
			" after the guest revoked and invalidated it",
			(uint64_t)dev, iova);
	}
}

static bool lazy_now(const struct workload *w)
{
	if (w->opt.mode == MIXED)
		return (w->st.ops / PHASE_OPS) & 1;
	return w->opt.mode == LAZY;
}

/* The flush queue is full (or the phase ends): one domain invalidation. */
static void drain(struct workload *w, unsigned dev)
{
	struct device *d = &w->dev[dev];
	unsigned i;

	if (!d->npending)
		return;
	wl_guest_flush(&w->g, dev, 0, 0);
	w->st.flushes += !w->g.virtio;
	for (i = 0; i < d->npending; i++) {
		check_revoked(w, dev, d->pending[i]);
		iova_free(d, d->pending[i]);
	}
	d->npending = 0;
}

static void post_buffer(struct workload *w, unsigned dev, struct buffer *b,
			unsigned ring)
{
	struct device *d = &w->dev[dev];
	uint64_t pages = (w->g.ram_size >> 12) / 2; /* the lower half */

	b->iova = iova_alloc(d);
	b->pa = (rnd(w) % pages) << 12;
	/* receive buffers are written by the device, transmit ones read */
	b->perm = ring == 0 ? VIOMMU_PERM_WRITE : VIOMMU_PERM_READ;
	if (wl_guest_map(&w->g, dev, b->iova, b->pa, 4096, b->perm, 4096)) {
		iova_free(d, b->iova);
		return;
	}
	/* caching mode: the guest tells the IOMMU about maps too */
	wl_guest_flush(&w->g, dev, b->iova, 4096);
	w->st.flushes += !w->g.virtio;
	b->mapped = true;
	w->st.maps++;
	dma(w, dev, b);
}

static void complete_buffer(struct workload *w, unsigned dev, struct buffer *b)
{
	struct device *d = &w->dev[dev];

	dma(w, dev, b);
	if (wl_guest_unmap(&w->g, dev, b->iova, 4096))
		return;
	b->mapped = false;
	w->st.unmaps++;
	if (!lazy_now(w)) {
		wl_guest_flush(&w->g, dev, b->iova, 4096);
		w->st.flushes += !w->g.virtio;
		check_revoked(w, dev, b->iova);
		iova_free(d, b->iova);
		return;
	}
	d->pending[d->npending++] = b->iova;
	if (d->npending == FLUSH_QUEUE)
		drain(w, dev);
}

/* Now and then a 2 MiB buffer comes or goes (a GPU upload, say). */
static void big_buffer(struct workload *w, unsigned dev)
{
	unsigned slot = (unsigned)(rnd(w) % BIG_SLOTS);
	struct buffer *b = &w->dev[dev].big[slot];
	uint64_t size = 2u << 20;

	if (b->mapped) {
		dma(w, dev, b);
		if (wl_guest_unmap(&w->g, dev, b->iova, size))
			return;
		b->mapped = false;
		wl_guest_flush(&w->g, dev, b->iova, size);
		w->st.flushes += !w->g.virtio;
		check_revoked(w, dev, b->iova);
		w->st.unmaps++;
		return;
	}
	b->iova = BIG_BASE + slot * size;
	b->pa = (rnd(w) % ((w->g.ram_size / 2) / size)) * size;
	b->perm = VIOMMU_PERM_RW;
	if (wl_guest_map(&w->g, dev, b->iova, b->pa, size, b->perm, size))
		return;
	wl_guest_flush(&w->g, dev, b->iova, size);
	w->st.flushes += !w->g.virtio;
	b->mapped = true;
	w->st.maps++;
	w->st.big_maps++;
	dma(w, dev, b);
}

/* The host must hold exactly what the guest has in effect. */
static void check_host(struct workload *w)
{
	struct viommu_error err = { 0 };

	w->st.checks++;
	if (viommu_type1_soft_check(w->host, w->g.as[0], &err)) {
		w->st.bad_checks++;
		if (!w->st.first_problem[0])
			snprintf(w->st.first_problem,
				 sizeof(w->st.first_problem), "host check: %s",
				 err.message);
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void progress(const struct workload *w, double done)
{
	int width = 40, fill = (int)(done * width), i;

	if (fill > width)
		fill = width;
	fputs("\r  [", stderr);
	for (i = 0; i < width; i++)
		fputc(i < fill ? '=' : ' ', stderr);
	fprintf(stderr, "] %3d%%  %" PRIu64 " guest operations",
		(int)(done * 100), w->st.ops);
	fflush(stderr);
}

static void step(struct workload *w)
{
	unsigned dev = (unsigned)(rnd(w) % WL_DEVICES);
	unsigned ring = (unsigned)(rnd(w) % RINGS);
	struct buffer *b = &w->dev[dev].ring[ring][rnd(w) % RING];
	bool was_lazy = lazy_now(w);

	if (rnd(w) % 997 == 0)
		big_buffer(w, dev);
	else if (b->mapped)
		complete_buffer(w, dev, b);
	else
		post_buffer(w, dev, b, ring);
	w->st.ops++;
	if (was_lazy && !lazy_now(w)) {
		drain(w, 0);
		drain(w, 1);
	}
	if (w->st.ops % 8192 == 0)
		check_host(w);
}

static int setup(struct workload *w, struct viommu_error *err)
{
	struct viommu_type1_soft_config hc = { 0 };
	unsigned d, i;
	int ret;

	w->rng = w->opt.seed * 2 + 1;
	ret = wl_guest_init(&w->g, w->opt.virtio, w->opt.ram, err);
	if (!ret)
		ret = viommu_type1_soft_new(&hc, &w->host, err);
	if (!ret) {
		struct viommu_host_backend be =
			viommu_type1_soft_backend(w->host);

		ret = viommu_shadow_new(w->g.as[0], &be, NULL, &w->shadow, err);
	}
	if (!ret)
		ret = viommu_devtlb_new(w->g.as[1], NULL, &w->tlb, err);
	for (d = 0; d < WL_DEVICES; d++) {
		for (i = 0; i < IOVA_PAGES; i++)
			w->dev[d].free_iova[i] = IOVA_BASE + (uint64_t)i * 4096;
		w->dev[d].free_count = IOVA_PAGES;
	}
	return ret;
}

static void teardown(struct workload *w)
{
	viommu_devtlb_free(w->tlb);
	viommu_shadow_free(w->shadow);
	viommu_type1_soft_free(w->host);
	wl_guest_fini(&w->g);
}

static const char *mode_name(enum mode m)
{
	return m == STRICT ? "strict" : m == LAZY ? "lazy" : "mixed";
}

static void report(struct workload *w, double elapsed)
{
	struct viommu_shadow_counters sc;
	struct viommu_type1_soft_counters hc;
	struct viommu_devtlb_counters tc;
	uint64_t lookups;
	double hit_rate, ops_per_sec = w->st.ops / (elapsed > 0 ? elapsed : 1);
	bool ok = !w->st.bad_lookups && !w->st.bad_checks;

	viommu_shadow_counters(w->shadow, &sc);
	viommu_type1_soft_counters(w->host, &hc);
	viommu_devtlb_counters(w->tlb, &tc);
	lookups = tc.hits + tc.misses;
	hit_rate = lookups ? (double)tc.hits / lookups : 0;
	if (w->opt.json) {
		printf("{\"iommu\": \"%s\", \"seed\": %" PRIu64
		       ", \"mode\": \"%s\", \"seconds\": %.3f, "
		       "\"guest_ops\": %" PRIu64
		       ", \"guest_ops_per_sec\": %.0f, "
		       "\"guest_maps\": %" PRIu64 ", \"guest_unmaps\": %" PRIu64
		       ", \"invalidations\": %" PRIu64 ", "
		       "\"notify_map\": %" PRIu64 ", \"notify_unmap\": %" PRIu64
		       ", \"notify_devtlb_invalidations\": %" PRIu64 ", "
		       "\"host_map_calls\": %" PRIu64
		       ", \"host_unmap_calls\": %" PRIu64
		       ", \"host_entries\": %" PRIu64
		       ", \"host_entries_peak\": %" PRIu64
		       ", \"host_entry_limit\": %u, "
		       "\"devtlb_hits\": %" PRIu64
		       ", \"devtlb_misses\": %" PRIu64
		       ", \"devtlb_hit_rate\": %.4f, "
		       "\"lookups_checked\": %" PRIu64
		       ", \"revoked_checked\": %" PRIu64
		       ", \"bad_lookups\": %" PRIu64
		       ", \"host_checks\": %" PRIu64
		       ", \"bad_host_checks\": %" PRIu64
		       ", \"consistent\": %s}\n",
		       w->opt.virtio ? "virtio" : "vtd", w->opt.seed,
		       mode_name(w->opt.mode), elapsed, w->st.ops, ops_per_sec,
		       w->st.maps, w->st.unmaps, w->st.flushes, sc.guest_maps,
		       sc.guest_unmaps, tc.invalidations, hc.maps, hc.unmaps,
		       hc.entries, hc.peak,
		       VIOMMU_TYPE1_DEFAULT_DMA_ENTRY_LIMIT, tc.hits, tc.misses,
		       hit_rate, w->st.lookups, w->st.revoked_checked,
		       w->st.bad_lookups, w->st.checks, w->st.bad_checks,
		       ok ? "true" : "false");
		return;
	}
	printf("viommu workload: %s, %" PRIu64 " MiB guest, seed %" PRIu64
	       ", %s invalidation, %.1f s\n\n",
	       w->opt.virtio ? "virtio-iommu" : "VT-d with caching mode",
	       w->opt.ram >> 20, w->opt.seed, mode_name(w->opt.mode), elapsed);
	printf("  %-34s %12" PRIu64 "   (%.0f per second)\n",
	       "guest operations", w->st.ops, ops_per_sec);
	printf("  %-34s %12" PRIu64 " / %" PRIu64 "   (%" PRIu64 " of 2 MiB)\n",
	       "guest maps / unmaps", w->st.maps, w->st.unmaps, w->st.big_maps);
	if (!w->opt.virtio)
		printf("  %-34s %12" PRIu64 "\n", "guest invalidations",
		       w->st.flushes);
	printf("  %-34s %12" PRIu64 " / %" PRIu64 "\n",
	       "passthrough NIC: map / unmap events", sc.guest_maps,
	       sc.guest_unmaps);
	printf("  %-34s %12" PRIu64 "\n", "paravirtual NIC: unmap events",
	       tc.invalidations);
	printf("  %-34s %12" PRIu64 " / %" PRIu64 "\n",
	       "host map / unmap calls", hc.maps, hc.unmaps);
	printf("  %-34s %12" PRIu64 " / %u   (now %" PRIu64 ")\n",
	       "host entries: peak / limit", hc.peak,
	       VIOMMU_TYPE1_DEFAULT_DMA_ENTRY_LIMIT, hc.entries);
	printf("  %-34s %11.1f%%   (%" PRIu64 " hits, %" PRIu64 " misses)\n",
	       "device IOTLB hit rate", 100 * hit_rate, tc.hits, tc.misses);
	printf("  %-34s %12" PRIu64 "   (%" PRIu64 " of revoked addresses)\n",
	       "device lookups checked", w->st.lookups + w->st.revoked_checked,
	       w->st.revoked_checked);
	printf("  %-34s %12s   (%" PRIu64 " host checks)\n", "consistency",
	       ok ? "passed" : "FAILED", w->st.checks);
	if (!ok)
		printf("\n  first problem: %s\n", w->st.first_problem);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: viommu workload [--iommu vtd|virtio] [--seconds S] "
		"[--ops N]\n"
		"                       [--seed N] [--mode strict|lazy|mixed] "
		"[--ram SIZE] [--json]\n\n"
		"A simulated VM: a passthrough NIC feeding the host shadow "
		"(software VFIO\ntype1 backend) and a paravirtual NIC feeding a "
		"device IOTLB, driven by a\nguest doing streaming DMA.  Every "
		"device lookup is checked against the\nguest's mappings; the "
		"exit status is 1 if any check failed.\n\n"
		"  --iommu     vtd (default, caching mode) or virtio\n"
		"  --seconds   how long to run (default 5)\n"
		"  --ops       stop after this many guest operations instead\n"
		"  --seed      random seed (default 1)\n"
		"  --mode      strict, lazy or mixed invalidation (default "
		"mixed)\n"
		"  --ram       guest RAM, e.g. 4G (default)\n"
		"  --json      print the summary as one JSON object\n");
}

static bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);
	int shift = 0;

	if (end == s)
		return false;
	if (*end && end[1])
		return false;
	switch (*end) {
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	case '\0':
		break;
	default:
		return false;
	}
	*out = (uint64_t)v << shift;
	return true;
}

static int parse(int argc, char **argv, struct options *o)
{
	int i;

	*o = (struct options){ .mode = MIXED,
			       .seconds = 5,
			       .seed = 1,
			       .ram = UINT64_C(4) << 30,
			       .progress = isatty(2) };
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 1;
		} else if (!strcmp(a, "--json")) {
			o->json = true;
		} else if (!strcmp(a, "--iommu") && v) {
			if (strcmp(v, "vtd") && strcmp(v, "virtio"))
				goto bad_value;
			o->virtio = !strcmp(v, "virtio");
			i++;
		} else if (!strcmp(a, "--mode") && v) {
			if (!strcmp(v, "strict"))
				o->mode = STRICT;
			else if (!strcmp(v, "lazy"))
				o->mode = LAZY;
			else if (!strcmp(v, "mixed"))
				o->mode = MIXED;
			else
				goto bad_value;
			i++;
		} else if (!strcmp(a, "--seconds") && v) {
			o->seconds = strtod(v, NULL);
			if (o->seconds <= 0)
				goto bad_value;
			i++;
		} else if ((!strcmp(a, "--ops") || !strcmp(a, "--seed")) && v) {
			char *end;
			uint64_t n = strtoull(v, &end, 0);

			if (*end || end == v)
				goto bad_value;
			*(a[2] == 'o' ? &o->ops : &o->seed) = n;
			i++;
		} else if (!strcmp(a, "--ram") && v) {
			if (!parse_size(v, &o->ram) ||
			    o->ram < (UINT64_C(1) << 30))
				goto bad_value;
			i++;
		} else {
			fprintf(stderr,
				"viommu workload: unknown option or "
				"missing value: '%s'\n",
				a);
			return -1;
		}
		continue;
bad_value:
		fprintf(stderr, "viommu workload: bad value '%s' for %s\n", v,
			a);
		return -1;
	}
	if (o->json)
		o->progress = false;
	return 0;
}

int cmd_workload(int argc, char **argv)
{
	static struct workload w; /* the rings are large: not on the stack */
	struct viommu_error err = { 0 };
	double start, elapsed, next_draw = 0;
	int ret;

	memset(&w, 0, sizeof(w));
	ret = parse(argc, argv, &w.opt);
	if (ret)
		return ret > 0 ? 0 : 2;
	if (setup(&w, &err)) {
		fprintf(stderr, "viommu workload: %s\n", err.message);
		teardown(&w);
		return 1;
	}
	start = now();
	for (;;) {
		double t;

		step(&w);
		if (w.st.ops % 256)
			continue;
		t = now() - start;
		if (w.opt.ops ? w.st.ops >= w.opt.ops : t >= w.opt.seconds)
			break;
		if (w.opt.progress && t >= next_draw) {
			progress(&w, w.opt.ops ? (double)w.st.ops / w.opt.ops :
						 t / w.opt.seconds);
			next_draw = t + 0.1;
		}
	}
	drain(&w, 0);
	drain(&w, 1);
	elapsed = now() - start;
	check_host(&w);
	if (w.opt.progress) {
		progress(&w, 1);
		fputc('\n', stderr);
	}
	report(&w, elapsed);
	ret = w.st.bad_lookups || w.st.bad_checks ? 1 : 0;
	teardown(&w);
	return ret;
}
