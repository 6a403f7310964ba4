/* SPDX-License-Identifier: MIT */
/*
 * viommu bench: the numbers that say whether the design holds, next to the
 * structure QEMU uses for the same job, measured in the same run.
 *
 * The table is for people; --json prints one object with exactly the keys
 * of BENCH_KEYS (bench.h); --quick keeps every size and cuts the
 * repetitions; --sweep prints the data of the plot in docs/performance.md.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "bench.h"

/*
 * Many short repetitions rather than a few long ones: on a shared machine a
 * repetition the scheduler interrupts is an outlier the median ignores,
 * while a long one would almost always be interrupted somewhere.  The
 * 1,000,000-entry cases cannot be short, so they get fewer repetitions.
 */
static const struct bench_plan full_plan = {
	.reps = 31,
	.big_reps = 9,
	.flips = 20000,
	.psi_iters = 500,
	.lookups = 50000,
	.requests = 10000,
	.aw57_iters = 20000,
};

/* Same sizes, fewer repetitions: a smoke run for the suite. */
static const struct bench_plan quick_plan = {
	.reps = 5,
	.big_reps = 3,
	.flips = 10000,
	.psi_iters = 100,
	.lookups = 20000,
	.requests = 5000,
	.aw57_iters = 2000,
};

static const unsigned sweep_sizes[] = {
	1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000
};

static bool verbose;

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double bench_median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void bench_die(const char *fmt, ...)
{
	va_list ap;

	fputs("viommu bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void step(const char *what)
{
	if (verbose)
		fprintf(stderr, "  measuring %s ...\n", what);
}

static void cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) || !colon)
			continue;
		snprintf(buf, len, "%s", colon + 2);
		buf[strcspn(buf, "\n")] = '\0';
		break;
	}
	fclose(f);
}

static double load_average(void)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double load = NAN;

	if (f) {
		if (fscanf(f, "%lf", &load) != 1)
			load = NAN;
		fclose(f);
	}
	return load;
}

static void print_json(const struct bench_results *r)
{
	const char *sep = "";

	putchar('{');
#define BENCH_JSON(name, unit, target, limit)                                  \
	printf("%s\"" #name "\": %.3f", sep, r->name);                         \
	sep = ", ";
	BENCH_KEYS(BENCH_JSON)
#undef BENCH_JSON
	printf("}\n");
}

static void print_table(const struct bench_results *r,
			const struct bench_plan *p, bool quick)
{
	char model[128];
	unsigned met = 0, targets = 0;

	cpu_model(model, sizeof(model));
	printf("viommu bench%s: %s, %ld CPUs, load average %.2f at the end\n"
	       "medians of %u repetitions (%u for the 1,000,000-entry syncs and "
	       "replays)\n\n",
	       quick ? " --quick" : "", model, sysconf(_SC_NPROCESSORS_ONLN),
	       load_average(), p->reps, p->big_reps);
	printf("  %-34s %12s  %-22s %s\n", "key", "value", "target", "");
#define BENCH_ROW(name, unit, target, limit)                                   \
	do {                                                                   \
		double lim = (limit);                                          \
		const char *verdict = "";                                      \
		if (!isnan(lim)) {                                             \
			targets++;                                             \
			met += r->name <= lim;                                 \
			verdict = r->name <= lim ? "met" : "MISSED";           \
		}                                                              \
		printf("  %-34s %9.1f %-2s  %-22s %s\n", #name, r->name, unit, \
		       target, verdict);                                       \
	} while (0);
	BENCH_KEYS(BENCH_ROW)
#undef BENCH_ROW
	printf("\n  %u of %u targets met.\n\n", met, targets);
	printf("  against the baseline (QEMU's GTree of ranges), same run, "
	       "same mappings:\n");
	printf("  %-58s %7.1fx\n",
	       "  unchanged entry: gtree find / sync_unchanged",
	       r->baseline_gtree_find_ns / r->sync_unchanged_ns_per_entry);
	printf("  %-58s %7.1fx\n",
	       "  changed entry: (gtree insert + find) / sync_changed",
	       (r->baseline_gtree_insert_ns + r->baseline_gtree_find_ns) /
		       r->sync_changed_ns_per_entry);
	printf("  %-58s %7.1fx\n",
	       "  memory: gtree bytes / library bytes per mapping",
	       r->baseline_gtree_bytes_per_mapping / r->bytes_per_mapping);
	printf("  (the baseline figures leave out the page walk and the "
	       "notifications QEMU's\n   sync also does, so they understate "
	       "its cost)\n");
}

/*
 * Whitespace-separated columns for gnuplot: total milliseconds for n
 * mappings in effect.
 */
static void run_sweep(unsigned reps)
{
	size_t i;

	printf("# viommu bench --sweep: total ms, medians of %u\n"
	       "# mappings sync_unchanged sync_changed replay gtree_insert "
	       "gtree_find\n",
	       reps);
	for (i = 0; i < sizeof(sweep_sizes) / sizeof(sweep_sizes[0]); i++) {
		struct bench_sweep_point sp;
		struct bench_baseline bl;

		bench_vtd_sweep(sweep_sizes[i], reps, &sp);
		bench_baseline_run(sweep_sizes[i], reps, &bl);
		printf("%u %.4f %.4f %.4f %.4f %.4f\n", sweep_sizes[i],
		       sp.sync_unchanged / 1e6, sp.sync_changed / 1e6,
		       sp.replay / 1e6, bl.insert / 1e6, bl.find / 1e6);
		fflush(stdout);
	}
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: viommu bench [--json] [--quick] [--sweep] [--verbose]\n"
		"\n"
		"Measures dispatch, VT-d invalidations, replay, translate,\n"
		"memory and virtio requests, and QEMU's GTree baseline on the\n"
		"same 1,000,000 mappings; every figure is a median.\n"
		"\n"
		"  --json     one JSON object (numbers) instead of the table\n"
		"  --quick    fewer repetitions, same sizes (a few seconds)\n"
		"  --sweep    sync and replay times against mappings in effect,\n"
		"             1,000 to 1,000,000, for bench/plot.sh\n"
		"  --verbose  say on stderr what is being measured\n");
}

int cmd_bench(int argc, char **argv)
{
	bool json = false, quick = false, sweep = false;
	const struct bench_plan *p;
	struct bench_results r = { 0 };
	struct bench_baseline bl;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--quick")) {
			quick = true;
		} else if (!strcmp(argv[i], "--sweep")) {
			sweep = true;
		} else if (!strcmp(argv[i], "--verbose")) {
			verbose = true;
		} else if (!strcmp(argv[i], "--help") ||
			   !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "viommu bench: unknown option '%s'\n",
				argv[i]);
			usage(stderr);
			return 2;
		}
	}
	p = quick ? &quick_plan : &full_plan;
	if (sweep) {
		run_sweep(p->big_reps);
		return 0;
	}

	/* first, so its heap measurement starts from a quiet allocator */
	step("the GTree baseline");
	bench_baseline_run(BENCH_MAPPINGS, p->big_reps, &bl);
	r.baseline_gtree_insert_ns = bl.insert / BENCH_MAPPINGS;
	r.baseline_gtree_find_ns = bl.find / BENCH_MAPPINGS;
	r.baseline_gtree_bytes_per_mapping = bl.bytes_per_mapping;
	step("dispatch");
	bench_dispatch(p, &r);
	step("virtio requests");
	bench_virtio(p, &r);
	step("the VT-d cases");
	bench_vtd(p, &r);

	if (json)
		print_json(&r);
	else
		print_table(&r, p, quick);
	return 0;
}
