/* SPDX-License-Identifier: MIT */
/*
 * viommu demo: a tiny model whose "page tables" are an array, a shadow
 * consumer and a device-IOTLB consumer, and what each hears while a guest
 * maps, retargets, splits a 2M page and unmaps.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <viommu/model.h>
#include <viommu/viommu.h>

#include "commands.h"

#define MAX_LEAVES 1024

struct toy_tables {
	struct viommu_entry leaf[MAX_LEAVES];
	size_t n;
};

static int toy_replay(void *opaque, uint64_t start, uint64_t last,
		      viommu_walk_fn fn, void *ctx)
{
	struct toy_tables *t = opaque;
	size_t i;
	int ret;

	for (i = 0; i < t->n; i++) {
		const struct viommu_entry *e = &t->leaf[i];

		if (e->iova + e->addr_mask < start || e->iova > last)
			continue;
		ret = fn(ctx, e);
		if (ret)
			return ret;
	}
	return 0;
}

static int toy_translate(void *opaque, uint64_t iova, unsigned access,
			 struct viommu_translation *out)
{
	struct toy_tables *t = opaque;
	size_t i;

	for (i = 0; i < t->n; i++) {
		if (t->leaf[i].iova <= iova &&
		    iova <= t->leaf[i].iova + t->leaf[i].addr_mask) {
			out->entry = t->leaf[i];
			return 0;
		}
	}
	out->fault = VIOMMU_FAULT_NOT_PRESENT;
	return 0;
}

static const struct viommu_model_ops toy_ops = {
	.version = VIOMMU_MODEL_OPS_VERSION,
	.name = "toy",
	.translate = toy_translate,
	.replay = toy_replay,
};

static const char *perm_name(unsigned perm)
{
	static const char *names[] = { "none", "r", "w", "rw" };

	return names[perm & 3];
}

static int print_event(struct viommu_notifier *n, const struct viommu_event *ev,
		       void *opaque)
{
	const char *who = opaque;

	if (ev->type == VIOMMU_NOTIFY_MAP)
		printf("  %-7s map   iova=0x%" PRIx64 " size=0x%" PRIx64
		       " pa=0x%" PRIx64 " perm=%s\n",
		       who, ev->entry.iova, ev->entry.addr_mask + 1,
		       ev->entry.translated_addr, perm_name(ev->entry.perm));
	else
		printf("  %-7s unmap iova=0x%" PRIx64 " size=0x%" PRIx64 "\n",
		       who, ev->entry.iova, ev->entry.addr_mask + 1);
	return 0;
}

/* The guest's "invalidate everything": the library compares and tells. */
static int step(struct viommu_as *as, const char *what)
{
	struct viommu_error err;

	printf("%s\n", what);
	if (viommu_as_sync(as, 0, UINT64_MAX, 0, &err)) {
		fprintf(stderr, "viommu demo: %s\n", err.message);
		return 1;
	}
	return 0;
}

/* Leaves stay sorted by IOVA, as a table walk finds them. */
static void set_leaf(struct toy_tables *t, size_t i, uint64_t iova,
		     uint64_t size, uint64_t pa)
{
	t->leaf[i] =
		(struct viommu_entry){ iova, size - 1, pa, VIOMMU_PERM_RW };
	if (i >= t->n)
		t->n = i + 1;
}

int cmd_demo(int argc, char **argv)
{
	static struct toy_tables tables;
	struct viommu_model *model;
	struct viommu_as *as;
	struct viommu_notifier *shadow, *iotlb;
	struct viommu_notifier_config cfg;
	struct viommu_error err;
	int status = 0;
	size_t i;

	if (argc > 1 &&
	    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: viommu demo\n\nShows which events a shadow "
		       "(map+unmap) and a device IOTLB (unmap) consumer hear\n"
		       "while a guest changes its mappings.\n");
		return 0;
	}
	if (viommu_model_new(&toy_ops, NULL, &model, &err) ||
	    viommu_as_new(model, "nic", &tables, &as, &err)) {
		fprintf(stderr, "viommu demo: %s\n", err.message);
		return 1;
	}
	viommu_notifier_config_init(&cfg,
				    VIOMMU_NOTIFY_MAP | VIOMMU_NOTIFY_UNMAP,
				    print_event, "shadow");
	viommu_notifier_register(as, &cfg, &shadow, NULL);
	viommu_notifier_config_init(&cfg, VIOMMU_NOTIFY_UNMAP, print_event,
				    "iotlb");
	viommu_notifier_register(as, &cfg, &iotlb, NULL);

	set_leaf(&tables, 0, 0x200000, 0x200000, 0x40000000);
	status |= step(as, "guest maps a 2M page:");
	tables.leaf[1] = tables.leaf[0];
	set_leaf(&tables, 0, 0x1000, 0x1000, 0x8000);
	tables.n = 2;
	status |= step(as, "guest maps a 4K page below it:");
	status |= step(as, "guest invalidates everything; nothing changed:");
	set_leaf(&tables, 0, 0x1000, 0x1000, 0x9000);
	status |= step(as, "guest retargets the 4K page:");
	for (i = 0; i < 4; i++)
		set_leaf(&tables, 1 + i, 0x200000 + i * 0x1000, 0x1000,
			 0x40000000 + i * 0x1000);
	tables.n = 5;
	status |= step(as, "guest splits the 2M page, keeping its first 16K:");
	tables.n = 0;
	status |= step(as, "guest unmaps everything:");

	viommu_notifier_unregister(shadow);
	viommu_notifier_unregister(iotlb);
	viommu_as_free(as);
	viommu_model_free(model);
	return status;
}
