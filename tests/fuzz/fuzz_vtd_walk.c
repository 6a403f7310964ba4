/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: VT-d second-level translate and walk over tables the
 * input writes, checked against the slow reference walker (vtd_ref.h).
 *
 * Input (missing bytes read as zero):
 *   u8  config: bits 0-1 address width (39/48/57), 2 snoop control,
 *       3 device TLBs, 4 no page op (read path), 5-6 host address width
 *   u8  number of table pages, 1..8 (guest RAM: those pages at 1 MiB)
 *   u8  root: a table page, or 0xff for a root outside RAM
 *   u8  number of entry writes, then for each 12 bytes:
 *       u8 kind, u8 page, u16 index, u64 value (see write_entry())
 *   then queries until the input ends, 16 bytes each:
 *       u64 iova (and start of a walk), u64 length of the walk
 *
 * For each query: translate through the walker and the reference agree
 * (fault, entry, level); a walk of [iova, iova + length] with a small budget
 * ends within it and agrees with the reference walk, or, when over budget,
 * has produced a prefix of what the reference finds.
 */
#include <stdio.h>
#include <stdlib.h>

#include "models/vtd_pgtable.h"
#include "fuzz_input.h"
#include "vtd_ref.h"

#define BASE UINT64_C(0x100000)
#define MAX_PAGES 8
#define BUDGET 20000

#define check(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

/*
 * Entries the input can write, shaped so the fuzzer finds tables quickly:
 * raw values, pointers at one of the pages with the value's spare bits as
 * flags, page-aligned leaves, and pointers of a page at itself.
 */
static uint64_t make_entry(unsigned kind, unsigned npages, uint64_t page_gpa,
			   uint64_t v)
{
	uint64_t flags = ((v >> 8) & 0xfff) | (((v >> 20) & 0xfff) << 52);

	switch (kind % 4) {
	case 0:
		return v;
	case 1:
		return (BASE + (v & 0xff) % npages * 4096) | flags;
	case 2:
		return v & (VIOMMU__VTD_PTE_ADDR | 0x8ff);
	default:
		return page_gpa | VIOMMU__VTD_PTE_RW |
		       (v & 1 ? VIOMMU__VTD_PTE_PS : 0);
	}
}

static void check_walk(const struct viommu__vtd_pt *pt,
		       const struct viommu_guest_memory *mem,
		       const struct viommu__vtd_pt_config *cfg, uint64_t start,
		       uint64_t last)
{
	struct entry_list got = { 0 }, ref = { 0 };
	struct viommu__vtd_report rep;
	struct ref_result rf = { 0 };
	uint64_t rf_at = 0;
	int ret, rret;
	size_t i;

	ret = viommu__vtd_walk(pt, start, last, entry_list_add, &got, &rep);
	check(rep.examined <= BUDGET);
	check(ret == 0 || ret == -EINVAL || ret == -EFAULT || ret == -E2BIG);
	for (i = 0; i < got.n; i++) {
		const struct viommu_entry *e = &got.e[i];

		check((e->addr_mask & (e->addr_mask + 1)) == 0);
		check((e->iova & e->addr_mask) == 0);
		check(e->iova <= last && e->iova + e->addr_mask >= start);
		check(e->perm && !(e->perm & ~VIOMMU_PERM_RW));
		check(i == 0 ||
		      got.e[i - 1].iova + got.e[i - 1].addr_mask < e->iova);
	}
	/* Each reference step is one leaf or hole the walk examines too. */
	rret = ref_walk(mem, pt->root, cfg, start, last, entry_list_add, &ref,
			2 * BUDGET, &rf, &rf_at);
	if (ret == -E2BIG) {
		check(rep.examined == BUDGET);
		check(ref.n >= got.n);
	} else {
		check(rret == ret);
		check(ref.n == got.n);
		if (ret) {
			check(rep.fault == rf.fault);
			check(rep.iova == rf_at);
			check(rep.level == rf.level);
		} else {
			check(rep.fault == VIOMMU_FAULT_NONE);
		}
	}
	for (i = 0; i < got.n; i++)
		check(entry_equal(&got.e[i], &ref.e[i]));
	entry_list_free(&got);
	entry_list_free(&ref);
}

static void check_translate(const struct viommu__vtd_pt *pt,
			    const struct viommu_guest_memory *mem,
			    const struct viommu__vtd_pt_config *cfg,
			    uint64_t iova)
{
	struct viommu_translation t;
	struct viommu__vtd_report rep;
	struct ref_result r;

	check(viommu__vtd_translate(pt, iova, &t, &rep) == 0);
	ref_translate(mem, pt->root, cfg, iova, &r);
	check(t.fault == r.fault);
	check(entry_equal(&t.entry, &r.entry));
	check(rep.fault == r.fault);
	check(t.entry.iova <= iova && iova - t.entry.iova <= t.entry.addr_mask);
	if (r.fault != VIOMMU_FAULT_OUT_OF_RANGE)
		check(rep.level == r.level);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned aws[] = { 39, 48, 57, 48 };
	static const unsigned haws[] = { 0, 36, 46, 52 };
	static uint8_t ram[MAX_PAGES * 4096];
	struct input in = { data, size };
	struct bufmem bm = { ram, BASE, 0 };
	struct viommu_guest_memory mem, ref_mem;
	struct viommu__vtd_pt_config cfg = { 0 };
	struct viommu__vtd_pt pt;
	unsigned conf, npages, root_sel, nwrites, i;
	uint64_t root;

	memset(ram, 0, sizeof(ram));
	conf = (unsigned)take(&in, 1);
	npages = 1 + (unsigned)take(&in, 1) % MAX_PAGES;
	root_sel = (unsigned)take(&in, 1);
	nwrites = (unsigned)take(&in, 1);

	bm.size = (uint64_t)npages * 4096;
	cfg.aw = aws[conf & 3];
	cfg.snoop = conf & 4;
	cfg.transient = conf & 8;
	cfg.haw = haws[(conf >> 5) & 3];
	cfg.budget = BUDGET;
	mem.ops = conf & 16 ? &bufmem_nopage_ops : &bufmem_ops;
	mem.opaque = &bm;
	ref_mem.ops = &bufmem_nopage_ops;
	ref_mem.opaque = &bm;
	root = root_sel == 0xff ? BASE - 4096 : BASE + root_sel % npages * 4096;

	for (i = 0; i < nwrites; i++) {
		unsigned kind = (unsigned)take(&in, 1);
		unsigned page = (unsigned)take(&in, 1) % npages;
		unsigned idx = (unsigned)take(&in, 2) % 512;
		uint64_t v = take(&in, 8);
		uint64_t pte = make_entry(kind, npages, BASE + page * 4096, v);

		memcpy(&ram[page * 4096 + idx * 8], &pte, 8);
	}

	check(viommu__vtd_pt_init(&pt, &mem, root, &cfg) == 0);
	/* Always look at the start of the space, then at what is asked. */
	check_translate(&pt, &ref_mem, &cfg, 0);
	check_walk(&pt, &ref_mem, &cfg, 0, UINT64_MAX);
	while (in.n) {
		uint64_t a = take(&in, 8), len = take(&in, 8);
		/* mostly inside the address width, sometimes beyond it */
		uint64_t iova = a & ((UINT64_C(2) << cfg.aw) - 1);
		uint64_t last = UINT64_MAX - iova < len ? UINT64_MAX :
							  iova + len;

		check_translate(&pt, &ref_mem, &cfg, iova);
		check_walk(&pt, &ref_mem, &cfg, iova, last);
	}
	return 0;
}
