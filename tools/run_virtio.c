/* SPDX-License-Identifier: MIT */
/*
 * viommu run, virtio-iommu: every command is a request, notified at once;
 * a request the device refuses prints its status as a guest error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include <viommu/virtio.h>

#include "runner.h"
#include "virtio_perm.h"

static struct viommu_virtio *dev_of(struct runner *r)
{
	return r->model;
}

static int init(struct runner *r)
{
	struct viommu_virtio_config cfg;
	struct viommu_virtio *v;
	struct viommu_error err;

	viommu_virtio_config_init(&cfg);
	cfg.page_size_mask = ~(r->sc->page_size - 1);
	cfg.input_start = 0;
	cfg.input_last = r->sc->aw >= 64 ? UINT64_MAX :
					   (UINT64_C(1) << r->sc->aw) - 1;
	if (viommu_virtio_new(&cfg, &v, &err)) {
		fprintf(stderr, "%s: virtio-iommu: %s\n", r->sc->file,
			err.message);
		return -EINVAL;
	}
	r->model = v;
	return 0;
}

static void fini(struct runner *r)
{
	viommu_virtio_free(dev_of(r));
	r->model = NULL;
}

/* A status other than OK is what the guest sees: print it. */
static void report(struct runner *r, enum viommu_virtio_status st,
		   const struct viommu_error *err)
{
	if (st != VIOMMU_VIRTIO_S_OK)
		runner_guest_error(r, "%s (status %s)", err->message,
				   viommu_virtio_status_name(st));
}

static void attach(struct runner *r, struct run_device *dev, uint64_t domain)
{
	struct viommu_error err = { 0 };
	enum viommu_virtio_status st;

	st = viommu_virtio_attach(dev_of(r), (uint32_t)domain, dev->id, &err);
	report(r, st, &err);
	if (st == VIOMMU_VIRTIO_S_OK) {
		dev->domain = domain;
		dev->attached = true;
	}
}

static int device_add(struct runner *r, const struct sc_cmd *c,
		      struct run_device *dev)
{
	struct viommu_error err;

	if (viommu_virtio_endpoint_add(dev_of(r), dev->id, dev->name, &dev->as,
				       &err)) {
		fprintf(stderr, "%s:%u: %s\n", r->sc->file, r->line,
			err.message);
		return -ENOMEM;
	}
	attach(r, dev, c->domain);
	return 0;
}

static int command(struct runner *r, const struct sc_cmd *c)
{
	struct viommu_error err = { 0 };
	struct run_device *dev;
	enum viommu_virtio_status st;

	switch (c->kind) {
	case SC_DOMAIN:
		if (viommu_virtio_domain_add(dev_of(r), (uint32_t)c->domain,
					     &err)) {
			fprintf(stderr, "%s:%u: %s\n", r->sc->file, r->line,
				err.message);
			return -ENOMEM;
		}
		return 0;
	case SC_ATTACH:
		attach(r, runner_device(r, c->name), c->domain);
		return 0;
	case SC_DETACH:
		dev = runner_device(r, c->name);
		if (!dev->attached) {
			runner_guest_error(r,
					   "detach %s: not attached to a "
					   "domain",
					   dev->name);
			return 0;
		}
		st = viommu_virtio_detach(dev_of(r), (uint32_t)dev->domain,
					  dev->id, &err);
		report(r, st, &err);
		if (st == VIOMMU_VIRTIO_S_OK)
			dev->attached = false;
		return 0;
	case SC_MAP:
		st = viommu_virtio_map(dev_of(r), (uint32_t)c->domain, c->iova,
				       c->iova + (c->size - 1), c->pa,
				       virtio_map_flags(c->perm), &err);
		report(r, st, &err);
		return 0;
	case SC_UNMAP:
		st = viommu_virtio_unmap(dev_of(r), (uint32_t)c->domain,
					 c->iova, c->iova + (c->size - 1),
					 &err);
		report(r, st, &err);
		return 0;
	default:
		/* the checker lets no vtd-only command through */
		fprintf(stderr,
			"%s:%u: internal error: command %d is not "
			"for virtio\n",
			r->sc->file, r->line, (int)c->kind);
		return -EINVAL;
	}
}

const struct run_backend run_virtio_backend = {
	.init = init,
	.fini = fini,
	.command = command,
	.device_add = device_add,
};
