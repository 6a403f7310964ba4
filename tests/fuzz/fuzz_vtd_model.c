/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the VT-d model as a guest sees it.  The input is a
 * program of guest actions on a unit that starts sanely set up (a root
 * table, a context table, one domain's page tables, the queue enabled):
 * raw writes into guest memory (tables included), register writes of 4 and
 * 8 bytes anywhere in the page, queued descriptors, translations, and
 * checkpoints.
 *
 * A checkpoint invalidates the context cache and the IOTLB globally through
 * the registers, then checks each device against an obviously right
 * reference (vtd_ref.h's per-address walker and a plain context decoder):
 *  - a device whose context is not usable, or whose tables are broken,
 *    holds nothing;
 *  - otherwise it holds exactly the leaves the reference finds, and a
 *    map+unmap notifier registered on it from the start holds the same
 *    (every event is also checked as it comes: no map over a live mapping,
 *    no unmap cutting one or of nothing);
 *  - translate agrees with the reference for those leaves.
 * Anything else must simply not crash, leak or hang.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <viommu/vtd.h>
#include <viommu/vtd_driver.h>

#include "models/vtd_pgtable.h"
#include "shadow.h"
#include "fuzz_input.h"
#include "vtd_ref.h"

#define RAM_PAGES 512 /* 2 MiB of guest RAM */
#define ROOT_PAGE 1
#define CTX_PAGE 2
#define PT_PAGE 3 /* the domain's root table; more tables follow */
#define QUEUE_PAGE 16
#define STATUS_PAGE 17
#define NDEV 4
#define BUDGET 20000
#define AW 48

struct dev {
	struct viommu_as *as;
	struct viommu_notifier *n;
	struct shadow shadow;
	bool faulted; /* the fault handler spoke since the last checkpoint */
	uint16_t sid;
};

struct world {
	struct bufmem buf;
	struct viommu_guest_memory mem;
	struct viommu_vtd *vtd;
	struct dev dev[NDEV];
	uint64_t latched_root;
};

static void put(struct world *w, unsigned page, unsigned index, uint64_t v)
{
	memcpy(w->buf.buf + (uint64_t)page * 4096 + index * 8, &v, 8);
}

static int on_event(struct viommu_notifier *n, const struct viommu_event *ev,
		    void *opaque)
{
	struct dev *d = opaque;
	const struct viommu_entry *e = &ev->entry;
	int ret = 0;

	if (ev->type == VIOMMU_NOTIFY_MAP)
		ret = shadow_map(&d->shadow, e);
	else if (ev->type == VIOMMU_NOTIFY_UNMAP)
		ret = shadow_unmap(&d->shadow, e->iova, e->iova + e->addr_mask);
	if (ret) {
		fprintf(stderr, "rule 1 broken: %s iova=0x%llx: %d\n",
			ev->type == VIOMMU_NOTIFY_MAP ? "map" : "unmap",
			(unsigned long long)e->iova, ret);
		abort();
	}
	return 0;
}

static void on_fault(void *opaque, struct viommu_as *as, const char *msg)
{
	struct world *w = opaque;
	unsigned i;

	for (i = 0; i < NDEV; i++)
		if (w->dev[i].as == as)
			w->dev[i].faulted = true;
}

static void reg_write(struct world *w, unsigned off, unsigned size, uint64_t v)
{
	if (off == VIOMMU_VTD_REG_GCMD && (v & VIOMMU_VTD_GCMD_SRTP))
		viommu_vtd_mmio_read(w->vtd, VIOMMU_VTD_REG_RTADDR, 8,
				     &w->latched_root);
	viommu_vtd_mmio_write(w->vtd, off, size, v);
}

/* A sane start: domain 1 maps a few pages for devices 00:00.0-00:00.3. */
static void setup(struct world *w)
{
	struct viommu_vtd_config cfg;
	struct viommu_notifier_config nc;
	unsigned i;

	memset(w->buf.buf, 0, RAM_PAGES * 4096);
	put(w, ROOT_PAGE, 0, (uint64_t)CTX_PAGE * 4096 | 1);
	for (i = 0; i < NDEV; i++) {
		put(w, CTX_PAGE, 2 * i, (uint64_t)PT_PAGE * 4096 | 1);
		put(w, CTX_PAGE, 2 * i + 1, 1u << 8 | 2); /* did 1, 4 levels */
	}
	put(w, PT_PAGE, 0, (uint64_t)(PT_PAGE + 1) * 4096 | 3);
	put(w, PT_PAGE + 1, 0, (uint64_t)(PT_PAGE + 2) * 4096 | 3);
	put(w, PT_PAGE + 2, 0, (uint64_t)(PT_PAGE + 3) * 4096 | 3);
	put(w, PT_PAGE + 2, 1, UINT64_C(0x40000000) | 1u << 7 | 3); /* 2M */
	for (i = 0; i < 8; i++)
		put(w, PT_PAGE + 3, i, (uint64_t)(0x100 + i) * 4096 | 3);

	viommu_vtd_config_init(&cfg);
	cfg.aw = AW;
	cfg.device_iotlb = true;
	cfg.walk_budget = BUDGET;
	cfg.iotlb_entries = 64;
	if (viommu_vtd_new(&cfg, &w->mem, &w->vtd, NULL))
		abort();
	viommu_vtd_set_fault_handler(w->vtd, on_fault, w);
	reg_write(w, VIOMMU_VTD_REG_RTADDR, 8, ROOT_PAGE * 4096);
	reg_write(w, VIOMMU_VTD_REG_GCMD, 4, VIOMMU_VTD_GCMD_SRTP);
	reg_write(w, VIOMMU_VTD_REG_IQA, 8, QUEUE_PAGE * 4096);
	reg_write(w, VIOMMU_VTD_REG_GCMD, 4, VIOMMU_VTD_GCMD_QIE);
	reg_write(w, VIOMMU_VTD_REG_GCMD, 4,
		  VIOMMU_VTD_GCMD_QIE | VIOMMU_VTD_GCMD_TE);
	for (i = 0; i < NDEV; i++) {
		struct dev *d = &w->dev[i];

		d->sid = (uint16_t)i;
		if (viommu_vtd_device_add(w->vtd, d->sid, "dev", &d->as, NULL))
			abort();
		viommu_notifier_config_init(
			&nc, VIOMMU_NOTIFY_MAP | VIOMMU_NOTIFY_UNMAP, on_event,
			d);
		if (viommu_notifier_register(d->as, &nc, &d->n, NULL) ||
		    viommu_notifier_replay(d->n, NULL))
			abort();
	}
}

/* The plain decoder: is this device's context usable, and where to? */
static bool ref_context(struct world *w, uint16_t sid, uint64_t *slpt,
			unsigned *aw)
{
	uint64_t root[2], ctx[2], addr_rsvd = ~((UINT64_C(1) << AW) - 1);
	unsigned tt, awf;

	if (viommu_guest_read(&w->mem,
			      (w->latched_root & ~0xfffull) + (sid >> 8) * 16,
			      root, 16))
		return false;
	if (!(root[0] & 1) || (root[0] & (0xffeull | addr_rsvd)) || root[1])
		return false;
	if (viommu_guest_read(&w->mem,
			      (root[0] & ~0xfffull) + (sid & 0xff) * 16, ctx,
			      16))
		return false;
	if (!(ctx[0] & 1) || (ctx[0] & (0xff0ull | addr_rsvd)) ||
	    (ctx[1] & 0xffffffffff000080ull))
		return false;
	tt = (ctx[0] >> 2) & 3;
	awf = ctx[1] & 7;
	if (tt > 1 || awf < 1 || awf > 2)
		return false;
	*slpt = ctx[0] & ~0xfffull;
	*aw = 30 + 9 * awf;
	return true;
}

static uint16_t ref_did(struct world *w, uint16_t sid)
{
	uint64_t root[2] = { 0 }, ctx[2] = { 0 };

	viommu_guest_read(&w->mem,
			  (w->latched_root & ~0xfffull) + (sid >> 8) * 16, root,
			  16);
	viommu_guest_read(&w->mem, (root[0] & ~0xfffull) + (sid & 0xff) * 16,
			  ctx, 16);
	return (uint16_t)(ctx[1] >> 8);
}

struct cmp {
	struct viommu_entry *v;
	size_t n, cap;
};

static int collect(void *ctx, const struct viommu_entry *e)
{
	struct cmp *c = ctx;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
		if (!c->v)
			abort();
	}
	c->v[c->n++] = *e;
	return 0;
}

static bool same_list(const struct cmp *a, const struct viommu_entry *b,
		      size_t n)
{
	size_t i;

	if (a->n != n)
		return false;
	for (i = 0; i < n; i++)
		if (a->v[i].iova != b[i].iova ||
		    a->v[i].addr_mask != b[i].addr_mask ||
		    a->v[i].translated_addr != b[i].translated_addr ||
		    a->v[i].perm != b[i].perm)
			return false;
	return true;
}

static void checkpoint(struct world *w)
{
	uint64_t gsts;
	unsigned i;

	for (i = 0; i < NDEV; i++)
		w->dev[i].faulted = false;
	/* context cache, then IOTLB, globally: what is in effect = tables */
	reg_write(w, VIOMMU_VTD_REG_CCMD, 8,
		  UINT64_C(1) << 63 | UINT64_C(1) << 61);
	reg_write(w, VIOMMU_VTD_REG_IOTLB, 8,
		  UINT64_C(1) << 63 | UINT64_C(1) << 60);
	viommu_vtd_mmio_read(w->vtd, VIOMMU_VTD_REG_GSTS, 4, &gsts);
	for (i = 0; i < NDEV; i++) {
		struct dev *d = &w->dev[i];
		struct viommu__vtd_pt_config pc = { .transient = true };
		struct cmp held = { 0 }, ref = { 0 };
		uint64_t slpt;
		unsigned aw;
		int ret;

		viommu_as_for_each_mapping(d->as, 0, UINT64_MAX, collect,
					   &held);
		if (!(gsts & VIOMMU_VTD_GCMD_TE) ||
		    !ref_context(w, d->sid, &slpt, &aw) || d->faulted) {
			if (held.n) {
				fprintf(stderr,
					"device %u holds %zu entries "
					"but cannot translate\n",
					i, held.n);
				abort();
			}
			free(held.v);
			continue;
		}
		pc.aw = aw;
		ret = ref_walk(&w->mem, slpt, &pc, 0, UINT64_MAX, collect, &ref,
			       1000000, NULL, NULL);
		if (ret == 0 && !same_list(&held, ref.v, ref.n)) {
			fprintf(stderr,
				"device %u holds %zu entries, the "
				"reference finds %zu\n",
				i, held.n, ref.n);
			abort();
		}
		if (ret && ret != -E2BIG) {
			fprintf(stderr,
				"device %u: broken tables (%d) but "
				"no fault\n",
				i, ret);
			abort();
		}
		if (!same_list(&held, d->shadow.v, d->shadow.n)) {
			fprintf(stderr,
				"device %u: its notifier's view "
				"differs from what is held\n",
				i);
			abort();
		}
		/*
		 * The IOTLB is tagged by domain id, as on hardware: devices
		 * whose contexts give one id different tables see each
		 * other's cached leaves, which is the guest's mistake.
		 */
		bool shared_did = false;

		for (unsigned j = 0; j < NDEV; j++) {
			uint64_t other_slpt;
			unsigned other_aw;
			uint16_t did_i, did_j;

			if (j == i || !ref_context(w, w->dev[j].sid,
						   &other_slpt, &other_aw))
				continue;
			did_i = ref_did(w, d->sid);
			did_j = ref_did(w, w->dev[j].sid);
			shared_did |= did_i == did_j &&
				      (other_slpt != slpt || other_aw != aw);
		}
		for (size_t k = 0; !shared_did && k < held.n && k < 8; k++) {
			struct viommu_translation t;
			const struct viommu_entry *e = &held.v[k];

			viommu_as_translate(d->as, e->iova + e->addr_mask / 2,
					    VIOMMU_PERM_READ, &t);
			if (t.entry.iova != e->iova ||
			    t.entry.translated_addr != e->translated_addr ||
			    t.entry.perm != e->perm) {
				fprintf(stderr,
					"device %u: translate "
					"disagrees at 0x%llx\n",
					i, (unsigned long long)e->iova);
				abort();
			}
		}
		free(held.v);
		free(ref.v);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct world w;
	struct input in = { data, size };
	unsigned i, steps = 0;

	if (!w.buf.buf) {
		w.buf.buf = calloc(RAM_PAGES, 4096);
		w.buf.size = RAM_PAGES * 4096;
		w.mem = (struct viommu_guest_memory){ &bufmem_ops, &w.buf };
	}
	setup(&w);
	while (in.n && steps++ < 256) {
		unsigned op = (unsigned)take(&in, 1) % 6;
		uint64_t a, b;
		struct viommu_translation t;

		switch (op) {
		case 0: /* a guest write anywhere in RAM: tables included */
			a = take(&in, 2) % (RAM_PAGES * 512);
			b = take(&in, 8);
			memcpy(w.buf.buf + a * 8, &b, 8);
			break;
		case 1: /* a register write */
			a = take(&in, 2) & 0xffc;
			b = take(&in, 8);
			if ((a & 4) || (b & 1))
				reg_write(&w, (unsigned)a, 4, b >> 1);
			else
				reg_write(&w, (unsigned)a, 8, b >> 1);
			break;
		case 2: /* a queued descriptor */
			a = take(&in, 8);
			b = take(&in, 8);
			viommu_vtd_queue_submit(w.vtd, &w.mem, a, b);
			break;
		case 3:
			checkpoint(&w);
			break;
		case 4: /* a DMA */
			i = (unsigned)take(&in, 1) % NDEV;
			a = take(&in, 8);
			viommu_as_translate(w.dev[i].as, a,
					    (unsigned)take(&in, 1) % 3 + 1, &t);
			break;
		case 5: /* a page-selective invalidation of domain 1 */
			a = take(&in, 4) << 12;
			b = take(&in, 1) % 20;
			viommu_vtd_queue_submit(w.vtd, &w.mem,
						2 | 3u << 4 | 1u << 16, a | b);
			break;
		}
	}
	checkpoint(&w);
	for (i = 0; i < NDEV; i++) {
		viommu_notifier_unregister(w.dev[i].n);
		shadow_clear(&w.dev[i].shadow);
	}
	viommu_vtd_free(w.vtd);
	w.vtd = NULL;
	return 0;
}
