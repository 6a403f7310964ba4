/* SPDX-License-Identifier: MIT */
/*
 * viommu run FILE: play a scenario and print, line by line, what every
 * consumer was told (docs/scenario-format.md is the contract: tests outside
 * this repository read this output).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <viommu/viommu.h>

#include "commands.h"
#include "runner.h"

#define EXIT_FILE_ERROR 2
#define EXIT_DIVERGED 3

static const char *perm_str(unsigned perm)
{
	static const char *const names[] = { "none", "r", "w", "rw" };

	return names[perm & 3];
}

/* Sizes print in hex; 2^64 does not fit a uint64_t, so it is spelt out. */
static void print_size(FILE *out, uint64_t addr_mask)
{
	if (addr_mask == UINT64_MAX)
		fputs("0x10000000000000000", out);
	else
		fprintf(out, "0x%" PRIx64, addr_mask + 1);
}

void runner_guest_error(struct runner *r, const char *fmt, ...)
{
	va_list ap;

	fprintf(r->out, "%u guest-error: ", r->line);
	va_start(ap, fmt);
	vfprintf(r->out, fmt, ap);
	va_end(ap);
	fputc('\n', r->out);
}

void runner_fault(struct runner *r, const char *device, const char *fmt, ...)
{
	va_list ap;

	fprintf(r->out, "%u fault %s: ", r->line, device);
	va_start(ap, fmt);
	vfprintf(r->out, fmt, ap);
	va_end(ap);
	fputc('\n', r->out);
}

struct run_device *runner_device(struct runner *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->ndevs; i++)
		if (!strcmp(r->devs[i].name, name))
			return &r->devs[i];
	return NULL;
}

static struct run_notifier *find_notifier(struct runner *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nnots; i++)
		if (!strcmp(r->nots[i].name, name))
			return &r->nots[i];
	return NULL;
}

static void divergence(struct runner *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void divergence(struct runner *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->diverged[0])
		return;
	n = snprintf(r->diverged, sizeof(r->diverged),
		     "%s:%u: verify: ", r->sc->file, r->line);
	va_start(ap, fmt);
	vsnprintf(r->diverged + n, sizeof(r->diverged) - n, fmt, ap);
	va_end(ap);
}

static int on_event(struct viommu_notifier *handle,
		    const struct viommu_event *ev, void *opaque)
{
	struct run_notifier *n = opaque;
	struct runner *r = n->r;
	const struct viommu_entry *e = &ev->entry;
	const char *type = ev->type == VIOMMU_NOTIFY_MAP   ? "map" :
			   ev->type == VIOMMU_NOTIFY_UNMAP ? "unmap" :
							     "deviotlb-unmap";

	fprintf(r->out, "%u %s %s iova=0x%" PRIx64 " size=", r->line, n->name,
		type, e->iova);
	print_size(r->out, e->addr_mask);
	if (ev->type == VIOMMU_NOTIFY_MAP)
		fprintf(r->out, " pa=0x%" PRIx64 " perm=%s", e->translated_addr,
			perm_str(e->perm));
	fputc('\n', r->out);

	if (r->verify && n->synced && (n->flags & VIOMMU_NOTIFY_MAP) &&
	    (n->flags & VIOMMU_NOTIFY_UNMAP)) {
		int ret = 0;

		if (ev->type == VIOMMU_NOTIFY_MAP)
			ret = shadow_map(&n->shadow, e);
		else if (ev->type == VIOMMU_NOTIFY_UNMAP)
			ret = shadow_unmap(&n->shadow, e->iova,
					   e->iova + e->addr_mask);
		if (ret == -EEXIST)
			divergence(r,
				   "notifier %s told to map iova=0x%" PRIx64
				   " over a mapping it holds",
				   n->name, e->iova);
		else if (ret == -EINVAL)
			divergence(r,
				   "notifier %s told to unmap iova=0x%" PRIx64
				   ", which cuts a mapping it holds",
				   n->name, e->iova);
		else if (ret == -ENOENT)
			divergence(r,
				   "notifier %s told to unmap iova=0x%" PRIx64
				   " where it holds nothing",
				   n->name, e->iova);
	}
	return 0;
}

static void print_flags_if_changed(struct runner *r, struct run_device *dev,
				   unsigned before)
{
	static const char *const names[] = { "map", "unmap", "deviotlb-unmap" };
	unsigned now = viommu_as_notify_flags(dev->as), i;
	bool first = true;

	if (now == before)
		return;
	fprintf(r->out, "%u flags %s ", r->line, dev->name);
	for (i = 0; i < 3; i++) {
		if (!(now & (1u << i)))
			continue;
		fprintf(r->out, "%s%s", first ? "" : ",", names[i]);
		first = false;
	}
	fputs(first ? "none\n" : "\n", r->out);
}

static int stop_at_first(void *ctx, const struct viommu_entry *e)
{
	return 1;
}

static int do_notifier(struct runner *r, const struct sc_cmd *c)
{
	struct run_notifier *n = find_notifier(r, c->name);
	struct run_device *dev = runner_device(r, c->device);
	struct viommu_notifier_config cfg;
	struct viommu_error err = { 0 };
	unsigned before;

	if (!n) {
		n = &r->nots[r->nnots++]; /* room for every command's name */
		n->name = strdup(c->name);
		if (!n->name)
			return -ENOMEM;
	}
	shadow_clear(&n->shadow);
	n->dev = dev;
	n->flags = c->flags;
	n->start = c->start;
	n->last = c->last;
	n->r = r;
	viommu_notifier_config_init(&cfg, c->flags, on_event, n);
	cfg.start = c->start;
	cfg.last = c->last;
	before = viommu_as_notify_flags(dev->as);
	if (viommu_notifier_register(dev->as, &cfg, &n->handle, &err)) {
		n->handle = NULL;
		fprintf(r->out, "%u refused %s: %s\n", r->line, n->name,
			err.message);
		return 0;
	}
	n->synced = !viommu_as_for_each_mapping(dev->as, c->start, c->last,
						stop_at_first, NULL);
	print_flags_if_changed(r, dev, before);
	return 0;
}

static int do_unregister(struct runner *r, const struct sc_cmd *c)
{
	struct run_notifier *n = find_notifier(r, c->name);
	unsigned before;

	if (!n || !n->handle)
		return 0; /* it was refused: nothing to remove */
	before = viommu_as_notify_flags(n->dev->as);
	viommu_notifier_unregister(n->handle);
	n->handle = NULL;
	shadow_clear(&n->shadow);
	print_flags_if_changed(r, n->dev, before);
	return 0;
}

static int do_replay(struct runner *r, const struct sc_cmd *c)
{
	struct run_notifier *n = find_notifier(r, c->name);
	struct viommu_error err = { 0 };

	if (!n || !n->handle)
		return 0;
	if (!n->synced) {
		/* from now on it can hold exactly what is in effect */
		shadow_clear(&n->shadow);
		n->synced = true;
	}
	if (viommu_notifier_replay(n->handle, &err))
		fprintf(stderr, "%s:%u: replay: %s\n", r->sc->file, r->line,
			err.message);
	return 0;
}

static const char *fault_name(enum viommu_fault f)
{
	switch (f) {
	case VIOMMU_FAULT_NOT_PRESENT:
		return "not-present";
	case VIOMMU_FAULT_PERMISSION:
		return "permission";
	case VIOMMU_FAULT_RESERVED:
		return "reserved";
	case VIOMMU_FAULT_OUT_OF_RANGE:
		return "out-of-range";
	case VIOMMU_FAULT_BAD_TABLE:
		return "bad-table";
	default:
		return "none";
	}
}

static int do_translate(struct runner *r, const struct sc_cmd *c)
{
	struct run_device *dev = runner_device(r, c->device);
	struct viommu_translation t;
	int ret;

	ret = viommu_as_translate(dev->as, c->iova, c->perm, &t);
	if (ret) {
		fprintf(stderr, "%s:%u: translate: %s\n", r->sc->file, r->line,
			viommu_strerror(ret));
		return ret;
	}
	fprintf(r->out, "%u translate %s iova=0x%" PRIx64, r->line, dev->name,
		c->iova);
	if (t.fault != VIOMMU_FAULT_NONE) {
		fprintf(r->out, " fault=%s\n", fault_name(t.fault));
		return 0;
	}
	fprintf(r->out, " pa=0x%" PRIx64 " perm=%s page=",
		t.entry.translated_addr + (c->iova - t.entry.iova),
		perm_str(t.entry.perm));
	print_size(r->out, t.entry.addr_mask);
	fputc('\n', r->out);
	return 0;
}

static int do_device(struct runner *r, const struct sc_cmd *c)
{
	struct run_device *dev = &r->devs[r->ndevs];
	int ret;

	dev->name = strdup(c->name);
	if (!dev->name)
		return -ENOMEM;
	dev->domain = c->domain;
	dev->id = (unsigned)r->ndevs;
	ret = r->backend->device_add(r, c, dev);
	if (ret) {
		free(dev->name);
		return ret;
	}
	r->ndevs++;
	return 0;
}

/* ---- --verify: each shadow against what is in effect ---- */

struct expect_ctx {
	struct run_notifier *n;
	size_t at; /* next shadow entry to match */
	bool bad;
};

static int expect_piece(struct expect_ctx *x, const struct viommu_entry *p)
{
	const struct shadow *s = &x->n->shadow;
	const struct viommu_entry *got = x->at < s->n ? &s->v[x->at] : NULL;

	if (!got || got->iova != p->iova || got->addr_mask != p->addr_mask ||
	    got->translated_addr != p->translated_addr ||
	    got->perm != p->perm) {
		x->bad = true;
		return 1;
	}
	x->at++;
	return 0;
}

/* The held entry, clipped to the notifier's range as dispatch cuts it. */
static int expect_entry(void *ctx, const struct viommu_entry *e)
{
	struct expect_ctx *x = ctx;
	uint64_t lo = e->iova > x->n->start ? e->iova : x->n->start;
	uint64_t last = e->iova + e->addr_mask;
	uint64_t hi = last < x->n->last ? last : x->n->last;

	for (;;) {
		struct viommu_entry p = *e;
		uint64_t mask = lo ? (lo & -lo) - 1 : UINT64_MAX;

		while (mask > hi - lo)
			mask >>= 1;
		p.iova = lo;
		p.addr_mask = mask;
		p.translated_addr = e->translated_addr + (lo - e->iova);
		if (expect_piece(x, &p))
			return 1;
		if (lo + mask == hi)
			return 0;
		lo += mask + 1;
	}
}

static void verify_notifier(struct runner *r, struct run_notifier *n)
{
	struct expect_ctx x = { n, 0, false };

	viommu_as_for_each_mapping(n->dev->as, n->start, n->last, expect_entry,
				   &x);
	if (x.bad || x.at != n->shadow.n)
		divergence(r,
			   "notifier %s holds %zu mappings that differ "
			   "from the %s in effect in its range",
			   n->name, n->shadow.n,
			   x.at == n->shadow.n ? "mappings" : "ones");
}

/* In-effect entries must also be what the model translates. */
static int check_model(void *ctx, const struct viommu_entry *e)
{
	struct run_device *dev = ctx;
	struct viommu_translation t;

	if (viommu_as_translate(dev->as, e->iova, e->perm, &t) ||
	    t.fault != VIOMMU_FAULT_NONE ||
	    t.entry.translated_addr + (e->iova - t.entry.iova) !=
		    e->translated_addr)
		return 1;
	return 0;
}

static void verify_all(struct runner *r)
{
	size_t i;

	for (i = 0; i < r->nnots && !r->diverged[0]; i++) {
		struct run_notifier *n = &r->nots[i];

		if (n->handle && (n->flags & VIOMMU_NOTIFY_MAP) &&
		    (n->flags & VIOMMU_NOTIFY_UNMAP) && n->synced)
			verify_notifier(r, n);
	}
	if (r->sc->iommu != SC_IOMMU_VIRTIO)
		return;
	for (i = 0; i < r->ndevs && !r->diverged[0]; i++)
		if (viommu_as_for_each_mapping(r->devs[i].as, 0, UINT64_MAX,
					       check_model, &r->devs[i]))
			divergence(r,
				   "device %s: an entry in effect is not "
				   "what the model translates",
				   r->devs[i].name);
}

static int play(struct runner *r)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < r->sc->n && !ret; i++) {
		const struct sc_cmd *c = &r->sc->cmds[i];

		r->line = c->line;
		switch (c->kind) {
		case SC_IOMMU:
		case SC_RAM:
			break;
		case SC_DEVICE:
			ret = do_device(r, c);
			break;
		case SC_NOTIFIER:
			ret = do_notifier(r, c);
			break;
		case SC_UNREGISTER:
			ret = do_unregister(r, c);
			break;
		case SC_REPLAY:
			ret = do_replay(r, c);
			break;
		case SC_TRANSLATE:
			ret = do_translate(r, c);
			break;
		default:
			ret = r->backend->command(r, c);
			break;
		}
		if (r->verify && !ret) {
			verify_all(r);
			if (r->diverged[0])
				return EXIT_DIVERGED;
		}
	}
	return ret ? 1 : 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: viommu run [--verify] FILE\n\n"
		"Plays a scenario (see docs/scenario-format.md) and prints what "
		"every\nnotifier is told.  Exit status: 0 when the scenario ran "
		"(guest errors,\nrefusals and faults included), 2 for errors in "
		"the file (nothing runs),\n3 when --verify finds a notifier "
		"whose view diverges from what is in\neffect, 1 otherwise.\n\n"
		"  --verify   after every command, check every map+unmap "
		"notifier's view\n             against the mappings in effect\n");
}

int scenario_run(struct scenario *sc, FILE *out, FILE *err, bool verify)
{
	struct runner r = { .out = out, .sc = sc, .verify = verify };
	int status = 1;
	size_t i;

	r.devs = calloc(sc->n + 1, sizeof(*r.devs));
	r.nots = calloc(sc->n + 1, sizeof(*r.nots));
	r.backend = sc->iommu == SC_IOMMU_VIRTIO ? &run_virtio_backend :
						   &run_vtd_backend;
	if (r.devs && r.nots) {
		if (!r.backend->init(&r))
			status = play(&r);
		r.backend->fini(&r);
	}
	if (status == EXIT_DIVERGED) {
		fflush(out);
		fprintf(err, "%s\n", r.diverged);
	}
	for (i = 0; i < r.nnots; i++) {
		free(r.nots[i].name);
		shadow_clear(&r.nots[i].shadow);
	}
	for (i = 0; i < r.ndevs; i++)
		free(r.devs[i].name);
	free(r.devs);
	free(r.nots);
	return status;
}

int cmd_run(int argc, char **argv)
{
	struct scenario sc;
	const char *file = NULL;
	bool verify = false;
	int i, status, nerr;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--verify")) {
			verify = true;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "viommu run: unknown option '%s'\n",
				argv[i]);
			return EXIT_FILE_ERROR;
		} else if (file) {
			fprintf(stderr,
				"viommu run: one scenario file, not "
				"'%s' too\n",
				argv[i]);
			return EXIT_FILE_ERROR;
		} else {
			file = argv[i];
		}
	}
	if (!file) {
		usage(stderr);
		return EXIT_FILE_ERROR;
	}
	nerr = scenario_load(file, &sc, stderr);
	if (nerr) {
		scenario_free(&sc);
		return EXIT_FILE_ERROR;
	}
	status = scenario_run(&sc, stdout, stderr, verify);
	scenario_free(&sc);
	return status;
}
