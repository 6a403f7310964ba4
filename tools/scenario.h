/* SPDX-License-Identifier: MIT */
/*
 * The scenario language of `viommu run` (docs/scenario-format.md): parsing
 * and checking a whole file before anything runs.
 */
#ifndef VIOMMU_TOOLS_SCENARIO_H
#define VIOMMU_TOOLS_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum sc_kind {
	SC_IOMMU,
	SC_RAM,
	SC_DOMAIN,
	SC_DEVICE,
	SC_ATTACH,
	SC_DETACH,
	SC_NOTIFIER,
	SC_UNREGISTER,
	SC_MAP,
	SC_UNMAP,
	SC_INVALIDATE,
	SC_INVALIDATE_DEVTLB,
	SC_TRANSLATE,
	SC_REPLAY,
	SC_PTE,
	SC_IMAGE,
	SC_REG_WRITE,
	SC_REG_READ,
	SC_QI,
};

enum sc_iommu {
	SC_IOMMU_VTD,
	SC_IOMMU_VIRTIO
};

/* Which optional parts a command carried. */
#define SC_HAS_RANGE (1u << 0) /* iova= size= on invalidate */
#define SC_GLOBAL (1u << 1)    /* invalidate global */
#define SC_HAS_BDF (1u << 2)   /* device NAME bdf= */
#define SC_PTE_SELF (1u << 3)  /* pte value=self */

/* One command, every field already converted and checked. */
struct sc_cmd {
	enum sc_kind kind;
	unsigned line;
	unsigned opts;
	char *name;   /* device or notifier it is about */
	char *device; /* notifier/translate/invalidate-devtlb device= */
	char *path;   /* image file=, resolved against the scenario */
	uint64_t domain;
	uint64_t iova, pa, size, page;
	uint64_t start, last; /* notifier range, inclusive */
	uint64_t value, value_hi;
	uint64_t count;
	unsigned flags; /* VIOMMU_NOTIFY_* */
	unsigned perm;	/* VIOMMU_PERM_* (map perm, translate access) */
	unsigned level;
	unsigned bdf;	/* bus << 8 | dev << 3 | fn */
	unsigned width; /* reg size: 4 or 8 */
};

struct scenario {
	const char *file;
	enum sc_iommu iommu;
	/* vtd options */
	bool caching_mode;
	bool device_iotlb;
	/* virtio options */
	uint64_t page_size;
	unsigned aw;
	uint64_t ram_size;
	struct sc_cmd *cmds;
	size_t n;
};

/*
 * Parse and check @file.  Every error found is printed to @errors as
 * "FILE:LINE: error: MESSAGE"; returns the number of errors (0: @sc is
 * ready to run), or -1 when the file cannot be read at all.
 */
int scenario_load(const char *file, struct scenario *sc, FILE *errors);

void scenario_free(struct scenario *sc);

#endif /* VIOMMU_TOOLS_SCENARIO_H */
