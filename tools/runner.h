/* SPDX-License-Identifier: MIT */
/*
 * The state `viommu run` keeps while it plays a scenario, shared between the
 * generic part (run.c: notifiers, translate, replay, output) and one file per
 * IOMMU model (run_virtio.c, run_vtd.c).
 */
#ifndef VIOMMU_TOOLS_RUNNER_H
#define VIOMMU_TOOLS_RUNNER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <viommu/viommu.h>

#include "scenario.h"
#include "shadow.h"

struct run_device {
	char *name;
	struct viommu_as *as;
	uint64_t domain;
	bool attached;
	unsigned id; /* endpoint id (virtio) or source id (vtd) */
};

struct run_notifier {
	char *name;
	struct run_device *dev;
	struct viommu_notifier *handle; /* NULL when not registered */
	unsigned flags;
	uint64_t start, last;
	struct runner *r;
	/*
	 * --verify checks a map+unmap notifier as an exact shadow once it
	 * can be one: registered where nothing was mapped, or replayed.
	 */
	bool synced;
	struct shadow shadow; /* what it was told */
};

struct runner;

/* What one IOMMU model does with the commands that concern it. */
struct run_backend {
	int (*init)(struct runner *r);
	void (*fini)(struct runner *r);
	/* Each returns 0, or a negative errno when the run must stop. */
	int (*command)(struct runner *r, const struct sc_cmd *c);
	/* The device's address space after a `device` command. */
	int (*device_add)(struct runner *r, const struct sc_cmd *c,
			  struct run_device *dev);
};

struct runner {
	struct scenario *sc;
	FILE *out;
	unsigned line; /* the scenario line being played */
	bool verify;
	struct run_device *devs;
	size_t ndevs;
	struct run_notifier *nots;
	size_t nnots;
	const struct run_backend *backend;
	void *model;	    /* the backend's state */
	char diverged[512]; /* --verify: the first broken rule */
};

/*
 * Play a checked scenario, printing its output lines to @out and problems
 * to @err.  Returns the exit status: 0, 1 (the run could not go on) or 3
 * (--verify found a divergence).
 */
int scenario_run(struct scenario *sc, FILE *out, FILE *err, bool verify);

extern const struct run_backend run_virtio_backend;
extern const struct run_backend run_vtd_backend;

struct run_device *runner_device(struct runner *r, const char *name);

/* "LINE guest-error: ..." and "LINE fault DEVICE: ..." */
void runner_guest_error(struct runner *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void runner_fault(struct runner *r, const char *device, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* VIOMMU_TOOLS_RUNNER_H */
