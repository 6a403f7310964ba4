/* SPDX-License-Identifier: MIT */
/*
 * Measuring the baseline on the access pattern of the VT-d cases: the same
 * 4 KiB mappings at the same IOVAs, inserted in IOVA order (as a
 * domain-wide sync meets them), then each looked up with its own range (as
 * QEMU's sync does for every leaf it walks, to tell unchanged from new).
 */
#include <malloc.h>
#include <stdlib.h>

#include "baseline_gtree.h"
#include "bench.h"

static struct baseline_map map_of(unsigned i)
{
	return (struct baseline_map){
		.iova = BENCH_IOVA + i * BENCH_PAGE,
		.translated_addr = BENCH_PA + i * BENCH_PAGE,
		.size = BENCH_PAGE - 1,
		.perm = 3,
	};
}

/*
 * Bytes the allocator handed out: small chunks from the heap, large ones
 * mapped.  GLib allocates the tree's nodes from its slice allocator, whose
 * slabs come from malloc too, so the difference around the inserts is what
 * the tree costs, allocator overhead included.
 */
static size_t heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

void bench_baseline_run(unsigned n, unsigned reps, struct bench_baseline *out)
{
	double *ins = calloc(reps, sizeof(*ins));
	double *fnd = calloc(reps, sizeof(*fnd));
	unsigned rep, i;

	if (!ins || !fnd)
		bench_die("out of memory");
	/* rep 0 is the warm-up: it faults the heap in and sizes the tree */
	for (rep = 0; rep <= reps; rep++) {
		struct baseline_tree *t;
		size_t before = heap_bytes();
		double t0, t1, t2;
		unsigned found = 0;

		t = baseline_tree_new();
		t0 = bench_now();
		for (i = 0; i < n; i++) {
			struct baseline_map m = map_of(i);

			if (baseline_tree_insert(t, &m))
				bench_die("baseline: insert %u refused", i);
		}
		t1 = bench_now();
		for (i = 0; i < n; i++) {
			struct baseline_map m = map_of(i);

			found += baseline_tree_find(t, &m) != NULL;
		}
		t2 = bench_now();
		if (found != n || baseline_tree_count(t) != n)
			bench_die("baseline: found %u of %u mappings", found,
				  n);
		if (rep == 0)
			out->bytes_per_mapping =
				(double)(heap_bytes() - before) / n;
		else {
			ins[rep - 1] = t1 - t0;
			fnd[rep - 1] = t2 - t1;
		}
		baseline_tree_free(t);
	}
	out->insert = bench_median(ins, reps);
	out->find = bench_median(fnd, reps);
	free(ins);
	free(fnd);
}
