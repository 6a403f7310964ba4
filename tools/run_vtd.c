/* SPDX-License-Identifier: MIT */
/*
 * viommu run, Intel VT-d: the abstract commands (domain, device domain=,
 * map, invalidate, ...) are carried out by the library's small guest
 * driver, through the unit's registers, tables and queue; the register-level
 * commands (image, reg, qi, device bdf=) reach the unit directly, as a
 * guest's own driver would.  One model either way.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include <viommu/guest_memory.h>
#include <viommu/vtd.h>
#include <viommu/vtd_driver.h>

#include "runner.h"

struct vtd_run {
	struct viommu_ram *ram;
	struct viommu_guest_memory mem;
	struct viommu_vtd *vtd;
	struct viommu_vtd_driver *drv; /* created by the first `domain` */
};

static struct vtd_run *state(struct runner *r)
{
	return r->model;
}

static void on_fault(void *opaque, struct viommu_as *as, const char *message)
{
	runner_fault(opaque, viommu_as_name(as), "%s", message);
}

static int init(struct runner *r)
{
	struct vtd_run *s = calloc(1, sizeof(*s));
	struct viommu_vtd_config cfg;
	struct viommu_error err = { 0 };

	if (!s)
		return -ENOMEM;
	r->model = s;
	viommu_vtd_config_init(&cfg);
	cfg.aw = r->sc->aw;
	cfg.caching_mode = r->sc->caching_mode;
	cfg.device_iotlb = r->sc->device_iotlb;
	if (viommu_ram_new(r->sc->ram_size, &s->ram, &err)) {
		fprintf(stderr, "%s: guest RAM: %s\n", r->sc->file,
			err.message);
		return -ENOMEM;
	}
	s->mem = viommu_ram_memory(s->ram);
	if (viommu_vtd_new(&cfg, &s->mem, &s->vtd, &err)) {
		fprintf(stderr, "%s: vtd: %s\n", r->sc->file, err.message);
		return -EINVAL;
	}
	viommu_vtd_set_fault_handler(s->vtd, on_fault, r);
	return 0;
}

static void fini(struct runner *r)
{
	struct vtd_run *s = state(r);

	if (!s)
		return;
	viommu_vtd_driver_free(s->drv);
	viommu_vtd_free(s->vtd);
	viommu_ram_free(s->ram);
	free(s);
	r->model = NULL;
}

/* The driver keeps its tables in the top quarter of RAM, at most 256M. */
static int driver(struct runner *r)
{
	struct vtd_run *s = state(r);
	uint64_t size = r->sc->ram_size, region = size / 4;
	struct viommu_error err = { 0 };

	if (s->drv)
		return 0;
	if (region > (256u << 20))
		region = 256u << 20;
	region &= ~UINT64_C(0xfff);
	if (region < 4 * 4096)
		region = size & ~UINT64_C(0xfff);
	if (viommu_vtd_driver_new(s->vtd, &s->mem, size - region, size, &s->drv,
				  &err)) {
		fprintf(stderr, "%s:%u: %s\n", r->sc->file, r->line,
			err.message);
		return -EIO;
	}
	return 0;
}

/* A source id for a device given by domain=, out of the way of bdf= ones. */
static uint16_t pick_sid(struct runner *r)
{
	unsigned sid;
	size_t i;

	for (sid = 0x1000;; sid += 8) {
		bool used = false;

		for (i = 0; i < r->ndevs; i++)
			used |= r->devs[i].id == sid;
		for (i = 0; i < r->sc->n; i++)
			used |= (r->sc->cmds[i].opts & SC_HAS_BDF) &&
				r->sc->cmds[i].bdf == sid;
		if (!used)
			return (uint16_t)sid;
	}
}

static int device_add(struct runner *r, const struct sc_cmd *c,
		      struct run_device *dev)
{
	struct vtd_run *s = state(r);
	struct viommu_error err = { 0 };
	int ret;

	if (c->opts & SC_HAS_BDF) {
		dev->id = c->bdf;
	} else {
		dev->id = pick_sid(r);
		ret = driver(r);
		if (ret)
			return ret;
		if (viommu_vtd_driver_attach(s->drv, (uint16_t)dev->id,
					     (uint16_t)c->domain, &err))
			runner_guest_error(r, "%s", err.message);
		dev->attached = true;
	}
	if (viommu_vtd_device_add(s->vtd, (uint16_t)dev->id, dev->name,
				  &dev->as, &err)) {
		fprintf(stderr, "%s:%u: %s\n", r->sc->file, r->line,
			err.message);
		return -EINVAL;
	}
	return 0;
}

static int command(struct runner *r, const struct sc_cmd *c)
{
	struct vtd_run *s = state(r);
	struct viommu_error err = { 0 };
	struct run_device *dev;
	uint64_t value;
	int ret = 0;

	switch (c->kind) {
	case SC_IMAGE:
		if (viommu_ram_load_image(s->ram, c->path, &err)) {
			fprintf(stderr, "%s:%u: error: %s\n", r->sc->file,
				r->line, err.message);
			return -EINVAL;
		}
		return 0;
	case SC_REG_WRITE:
		viommu_vtd_mmio_write(s->vtd, c->iova, c->width, c->value);
		return 0;
	case SC_REG_READ:
		viommu_vtd_mmio_read(s->vtd, c->iova, c->width, &value);
		fprintf(r->out,
			"%u reg offset=0x%" PRIx64 " value=0x%" PRIx64 "\n",
			r->line, c->iova, value);
		return 0;
	case SC_QI:
		if (viommu_vtd_queue_submit(s->vtd, &s->mem, c->value,
					    c->value_hi))
			runner_guest_error(r, "qi: the invalidation queue is "
					      "not enabled or not in RAM");
		return 0;
	default:
		break;
	}

	/* the rest is the runner's own guest driver at work */
	ret = driver(r);
	if (ret)
		return ret;
	switch (c->kind) {
	case SC_DOMAIN:
		ret = viommu_vtd_driver_domain_new(s->drv, (uint16_t)c->domain,
						   &err);
		break;
	case SC_ATTACH:
		dev = runner_device(r, c->name);
		ret = viommu_vtd_driver_attach(s->drv, (uint16_t)dev->id,
					       (uint16_t)c->domain, &err);
		break;
	case SC_DETACH:
		dev = runner_device(r, c->name);
		ret = viommu_vtd_driver_detach(s->drv, (uint16_t)dev->id, &err);
		break;
	case SC_MAP:
		ret = viommu_vtd_driver_map(s->drv, (uint16_t)c->domain,
					    c->iova, c->pa, c->size, c->perm,
					    c->page, &err);
		break;
	case SC_UNMAP:
		ret = viommu_vtd_driver_unmap(s->drv, (uint16_t)c->domain,
					      c->iova, c->size, &err);
		break;
	case SC_INVALIDATE:
		if (c->opts & SC_GLOBAL)
			ret = viommu_vtd_driver_invalidate_global(s->drv, &err);
		else
			ret = viommu_vtd_driver_invalidate(
				s->drv, (uint16_t)c->domain,
				c->opts & SC_HAS_RANGE ? c->iova : 0,
				c->opts & SC_HAS_RANGE ? c->size : 0, &err);
		break;
	case SC_INVALIDATE_DEVTLB:
		dev = runner_device(r, c->device);
		ret = viommu_vtd_driver_invalidate_devtlb(
			s->drv, (uint16_t)dev->id, c->iova, c->size, &err);
		break;
	case SC_PTE:
		ret = viommu_vtd_driver_write_pte(s->drv, (uint16_t)c->domain,
						  c->iova, c->level, c->value,
						  c->opts & SC_PTE_SELF,
						  (unsigned)c->count, &err);
		break;
	default:
		fprintf(stderr,
			"%s:%u: internal error: command %d is not "
			"for vtd\n",
			r->sc->file, r->line, (int)c->kind);
		return -EINVAL;
	}
	if (ret)
		runner_guest_error(r, "%s", err.message);
	return 0;
}

const struct run_backend run_vtd_backend = {
	.init = init,
	.fini = fini,
	.command = command,
	.device_add = device_add,
};
