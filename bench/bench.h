/* SPDX-License-Identifier: MIT */
/*
 * `viommu bench`: what the benchmark's files share.
 *
 *   bench.c           options, the table, the JSON object, the sweep;
 *   cases_core.c      dispatch through a tiny model, virtio-iommu requests;
 *   cases_vtd.c       a VT-d guest: sync, psi, replay, translate, memory;
 *   cases_baseline.c  the baseline on the same mappings;
 *   baseline_gtree.c  QEMU's VT-d shadow structure, for comparison;
 *   plot.sh           the plot in docs/performance.md, from --sweep.
 *
 * Every figure is the median of several repetitions after a warm-up: the
 * machines this runs on are shared and noisy, and a median ignores the
 * repetition another process happened to interrupt.
 */
#ifndef VIOMMU_BENCH_H
#define VIOMMU_BENCH_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The keys of the JSON object, in order: name, unit, the target as people
 * read it, and the same as a limit computed from the results @r (NAN where
 * there is none).  The names are an interface (the suite and scripts read
 * the JSON); the table and the JSON both come from here, so they cannot
 * disagree.
 */
#define BENCH_KEYS(X)                                                          \
	X(dispatch_ns_1, "ns", "<= 20", 20)                                    \
	X(dispatch_ns_256, "ns", "<= 2 x dispatch_ns_1", 2 * r->dispatch_ns_1) \
	X(sync_unchanged_ns_per_entry, "ns", "<= 5", 5)                        \
	X(sync_changed_ns_per_entry, "ns", "<= 150", 150)                      \
	X(psi_ns_small, "ns", "", NAN)                                         \
	X(psi_ns_large, "ns", "<= 3 x psi_ns_small", 3 * r->psi_ns_small)      \
	X(replay_ns_per_entry, "ns", "<= 30", 30)                              \
	X(replay_empty_aw57_ns, "ns", "<= 10000", 10000)                       \
	X(translate_hit_ns, "ns", "<= 10", 10)                                 \
	X(translate_miss_ns, "ns", "<= 200", 200)                              \
	X(bytes_per_mapping, "B", "<= 24", 24)                                 \
	X(virtio_map_unmap_ns, "ns", "<= 300", 300)                            \
	X(baseline_gtree_insert_ns, "ns", "measured", NAN)                     \
	X(baseline_gtree_find_ns, "ns", "measured", NAN)                       \
	X(baseline_gtree_bytes_per_mapping, "B", "measured", NAN)

struct bench_results {
#define BENCH_FIELD(name, unit, target, limit) double name;
	BENCH_KEYS(BENCH_FIELD)
#undef BENCH_FIELD
};

/* How hard to try: the sizes never change, only the repetitions. */
struct bench_plan {
	unsigned reps;	     /* repetitions of each measurement, >= 3 */
	unsigned big_reps;   /* of the 1,000,000-entry syncs and replays */
	unsigned flips;	     /* dispatch: events per repetition */
	unsigned psi_iters;  /* psi: invalidations per repetition */
	unsigned lookups;    /* translate: lookups per repetition */
	unsigned requests;   /* virtio: MAP+UNMAP pairs per repetition */
	unsigned aw57_iters; /* empty replays per repetition */
};

/* The number of mappings "in effect" the issue asks about. */
#define BENCH_MAPPINGS 1000000u
#define BENCH_PSI_SMALL 1000u
/*
 * Where the mappings are: 4 KiB pages from BENCH_IOVA, to targets from
 * BENCH_PA (a second set of targets from BENCH_PA_ALT when retargeted).
 * All below 2^48, the host address width of an aw-48 unit.
 */
#define BENCH_IOVA UINT64_C(0x100000000)
#define BENCH_PA UINT64_C(0x1000000000)
#define BENCH_PA_ALT UINT64_C(0x2000000000)
#define BENCH_PAGE UINT64_C(4096)

/* Monotonic nanoseconds. */
double bench_now(void);
/* Sorts @v in place and returns its median. */
double bench_median(double *v, unsigned n);

/*
 * A failed setup or a count that does not add up makes the benchmark
 * useless: say what and exit, rather than print a number that lies.
 */
_Noreturn void bench_die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* cases_core.c */
void bench_dispatch(const struct bench_plan *p, struct bench_results *r);
void bench_virtio(const struct bench_plan *p, struct bench_results *r);

/* cases_baseline.c: totals in ns for @n mappings, medians of @reps */
struct bench_baseline {
	double insert, find, bytes_per_mapping;
};
void bench_baseline_run(unsigned n, unsigned reps, struct bench_baseline *out);

/* cases_vtd.c */
void bench_vtd(const struct bench_plan *p, struct bench_results *r);

/*
 * One point of the sweep: total nanoseconds for @n mappings of a domain
 * sync with nothing changed, with everything retargeted, and a replay.
 */
struct bench_sweep_point {
	double sync_unchanged, sync_changed, replay;
};
void bench_vtd_sweep(unsigned n, unsigned reps, struct bench_sweep_point *out);

#endif /* VIOMMU_BENCH_H */
