/* SPDX-License-Identifier: MIT */
/*
 * The VT-d model, driven the way a guest drives it: through the register
 * page, the invalidation queue and tables in guest memory, written either
 * by hand (the "raw" tests, which control every bit) or by the small guest
 * driver of <viommu/vtd_driver.h>.  Covers the register file, queued
 * invalidation, translation and fault recording, what the devices'
 * notifiers hear, hostile tables and the three address widths.
 *
 * Tests named test_regression_* reproduce bugs this suite found in the
 * model (now fixed); each says what the specification asks for and what
 * the model once did instead.
 */
#include <endian.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <viommu/guest_memory.h>
#include <viommu/vtd.h>
#include <viommu/vtd_driver.h>

#include "fake.h"

#define BIT(n) (UINT64_C(1) << (n))

/* Registers, by their specification names. */
#define R_VER VIOMMU_VTD_REG_VER
#define R_CAP VIOMMU_VTD_REG_CAP
#define R_ECAP VIOMMU_VTD_REG_ECAP
#define R_GCMD VIOMMU_VTD_REG_GCMD
#define R_GSTS VIOMMU_VTD_REG_GSTS
#define R_RTADDR VIOMMU_VTD_REG_RTADDR
#define R_CCMD VIOMMU_VTD_REG_CCMD
#define R_FSTS VIOMMU_VTD_REG_FSTS
#define R_IQH VIOMMU_VTD_REG_IQH
#define R_IQT VIOMMU_VTD_REG_IQT
#define R_IQA VIOMMU_VTD_REG_IQA
#define R_ICS VIOMMU_VTD_REG_ICS
#define R_IVA VIOMMU_VTD_REG_IVA
#define R_IOTLB VIOMMU_VTD_REG_IOTLB
#define R_FRCD_LO(i) (VIOMMU_VTD_REG_FRCD + 16 * (i))
#define R_FRCD_HI(i) (R_FRCD_LO(i) + 8)
#define NFRCD VIOMMU_VTD_NUM_FRCD

#define TE VIOMMU_VTD_GCMD_TE
#define SRTP VIOMMU_VTD_GCMD_SRTP
#define QIE VIOMMU_VTD_GCMD_QIE
#define IRE VIOMMU_VTD_GCMD_IRE
#define GSTS_RTPS (1u << 30)
#define GSTS_IRES (1u << 25)

#define FSTS_PFO VIOMMU_VTD_FSTS_PFO
#define FSTS_PPF VIOMMU_VTD_FSTS_PPF
#define FSTS_IQE VIOMMU_VTD_FSTS_IQE
#define FSTS_FRI(v) (((v) >> 8) & 0xff)

#define CCMD_ICC BIT(63)
#define CCMD_CIRG(g) ((uint64_t)(g) << 61)
#define CCMD_CAIG(v) (((v) >> 59) & 3)
#define CCMD_FM(fm) ((uint64_t)(fm) << 32)
#define CCMD_SID(sid) ((uint64_t)(sid) << 16)

#define IOTLB_IVT BIT(63)
#define IOTLB_IIRG(g) ((uint64_t)(g) << 60)
#define IOTLB_IAIG(v) (((v) >> 57) & 3)
#define IOTLB_DID(did) ((uint64_t)(did) << 32)

#define FRCD_F BIT(63)
#define FRCD_T BIT(62) /* 1: the faulted request was a read */

/* Invalidation descriptors, low quadword (legacy 128-bit format). */
#define D_CC(g, did, sid, fm)                                                  \
	(1 | (uint64_t)(g) << 4 | (uint64_t)(did) << 16 |                      \
	 (uint64_t)(sid) << 32 | (uint64_t)(fm) << 48)
#define D_IOTLB(g, did) (2 | (uint64_t)(g) << 4 | (uint64_t)(did) << 16)
#define D_DEVTLB(sid) (3 | (uint64_t)(sid) << 32)
#define D_IEC 4
#define D_WAIT 5
#define WAIT_IF BIT(4)
#define WAIT_SW BIT(5)
#define D_WAIT_SW(data) (D_WAIT | WAIT_SW | (uint64_t)(data) << 32)

/* Context entries: translation type, FPD, address width field, domain. */
#define CTX_LO(pt, tt, fpd)                                                    \
	((pt) | (uint64_t)(tt) << 2 | (uint64_t)(fpd) << 1 | 1)
#define CTX_HI(did, awf) ((uint64_t)(did) << 8 | (uint64_t)(awf))

/* Paging entry bits. */
#define PTE_RW UINT64_C(3)
#define PTE_PS BIT(7)
#define PTE_SNP BIT(11)
#define PTE_TM BIT(62)

/*
 * Guest-physical layout of the 1 GiB guest: the driver's tables and queue,
 * the hand-made tables of the raw tests, where our wait descriptors write,
 * and DMA targets (leaves only point there, nothing is read).
 */
#define RAM_SIZE GiB(1)
#define DRV_BASE MiB(512)
#define DRV_LIMIT MiB(640)
#define RAW_ROOT MiB(256)
#define RAW_CTX(bus) (RAW_ROOT + KiB(4) * (1 + (uint64_t)(bus)))
#define RAW_QUEUE (RAW_ROOT + KiB(32)) /* room and alignment for QS 3 */
#define RAW_TABLES (RAW_ROOT + MiB(1))
#define STATUS MiB(200)
#define PA(n) (MiB(64) + KiB(4) * (uint64_t)(n))

/* Requesters: 00:01.0, 00:02.0, 01:00.0 and 00:01.4 (a phantom of 00:01.0). */
#define NDEV 4
#define SID0 0x0008
#define SID1 0x0010
#define SID2 0x0100
#define SID3 0x000c
static const uint16_t sids[NDEV] = { SID0, SID1, SID2, SID3 };

enum {
	O_NOCM = 1 << 0,   /* caching mode off */
	O_DT = 1 << 1,	   /* device-IOTLB support */
	O_BUDGET = 1 << 2, /* a small walk budget */
	O_AW39 = 1 << 3,
	O_AW57 = 1 << 4,
	O_RAW = 1 << 5, /* no driver: the test programs the unit by hand */
};

#define SMALL_BUDGET 10000

struct vt {
	struct viommu_ram *ram;
	struct viommu_guest_memory mem;
	struct viommu_vtd_config cfg;
	struct viommu_vtd *vtd;
	struct viommu_vtd_driver *drv;
	struct viommu_as *as[NDEV];
	struct recorder *rec;
	struct rec_client c[8];
	uint64_t raw_next; /* next free page for hand-made tables */
	/* what the fault handler heard */
	unsigned faults_heard;
	struct viommu_as *fault_as;
	char fault_msg[VIOMMU_ERROR_MESSAGE_MAX + 64];
};

/* --- setup ------------------------------------------------------------- */

static void fault_heard(void *opaque, struct viommu_as *as, const char *msg)
{
	struct vt *x = opaque;

	x->faults_heard++;
	x->fault_as = as;
	snprintf(x->fault_msg, sizeof(x->fault_msg), "%s", msg);
}

static int open_unit(void **state, unsigned opts)
{
	struct vt *x = calloc(1, sizeof(*x));
	struct viommu_error err = { 0 };
	char name[16];
	unsigned i;

	assert_non_null(x);
	x->rec = calloc(1, sizeof(*x->rec));
	assert_non_null(x->rec);
	assert_int_equal(viommu_ram_new(RAM_SIZE, &x->ram, NULL), 0);
	x->mem = viommu_ram_memory(x->ram);
	viommu_vtd_config_init(&x->cfg);
	x->cfg.caching_mode = !(opts & O_NOCM);
	x->cfg.device_iotlb = opts & O_DT;
	if (opts & O_BUDGET)
		x->cfg.walk_budget = SMALL_BUDGET;
	if (opts & O_AW39)
		x->cfg.aw = 39;
	if (opts & O_AW57)
		x->cfg.aw = 57;
	assert_int_equal(viommu_vtd_new(&x->cfg, &x->mem, &x->vtd, &err), 0);
	viommu_vtd_set_fault_handler(x->vtd, fault_heard, x);
	/* the devices exist before the guest boots, as in a VMM */
	for (i = 0; i < NDEV; i++) {
		snprintf(name, sizeof(name), "dev%u", i);
		assert_int_equal(viommu_vtd_device_add(x->vtd, sids[i], name,
						       &x->as[i], &err),
				 0);
	}
	if (!(opts & O_RAW)) {
		if (viommu_vtd_driver_new(x->vtd, &x->mem, DRV_BASE, DRV_LIMIT,
					  &x->drv, &err))
			fail_msg("driver: %s", err.message);
	}
	x->raw_next = RAW_TABLES;
	*state = x;
	return 0;
}

static int setup_cm(void **state)
{
	return open_unit(state, 0);
}

static int setup_nocm(void **state)
{
	return open_unit(state, O_NOCM);
}

static int setup_dt(void **state)
{
	return open_unit(state, O_DT);
}

static int setup_budget(void **state)
{
	return open_unit(state, O_BUDGET);
}

static int setup_aw39(void **state)
{
	return open_unit(state, O_AW39);
}

static int setup_aw57(void **state)
{
	return open_unit(state, O_AW57);
}

static int setup_raw(void **state)
{
	return open_unit(state, O_RAW);
}

static int setup_raw_nocm(void **state)
{
	return open_unit(state, O_RAW | O_NOCM);
}

static int setup_raw_dt(void **state)
{
	return open_unit(state, O_RAW | O_DT);
}

static int teardown(void **state)
{
	struct vt *x = *state;

	viommu_vtd_driver_free(x->drv);
	viommu_vtd_free(x->vtd);
	viommu_ram_free(x->ram);
	free(x->rec);
	free(x);
	return 0;
}

/* --- registers ---------------------------------------------------------- */

static uint64_t rd(struct vt *x, uint64_t off, unsigned size)
{
	uint64_t v = 0;

	assert_int_equal(viommu_vtd_mmio_read(x->vtd, off, size, &v), 0);
	return v;
}

static void wr(struct vt *x, uint64_t off, unsigned size, uint64_t v)
{
	assert_int_equal(viommu_vtd_mmio_write(x->vtd, off, size, v), 0);
}

/* The persistent enables a driver writes back with every command. */
static uint32_t enables(struct vt *x)
{
	return (uint32_t)rd(x, R_GSTS, 4) & (TE | QIE | IRE);
}

static void gcmd(struct vt *x, uint32_t bit, bool on)
{
	uint32_t cur = enables(x);

	wr(x, R_GCMD, 4, on ? cur | bit : cur & ~bit);
}

static void gcmd_oneshot(struct vt *x, uint32_t bit)
{
	wr(x, R_GCMD, 4, enables(x) | bit);
}

static struct viommu_vtd_counters counters(struct vt *x)
{
	struct viommu_vtd_counters c;

	viommu_vtd_counters(x->vtd, &c);
	return c;
}

/* --- guest memory and hand-made tables ---------------------------------- */

static uint64_t get64(struct vt *x, uint64_t gpa)
{
	uint64_t v;

	assert_int_equal(viommu_guest_read(&x->mem, gpa, &v, 8), 0);
	return le64toh(v);
}

static void put64(struct vt *x, uint64_t gpa, uint64_t v)
{
	v = htole64(v);
	assert_int_equal(viommu_guest_write(&x->mem, gpa, &v, 8), 0);
}

static void put128(struct vt *x, uint64_t gpa, uint64_t lo, uint64_t hi)
{
	put64(x, gpa, lo);
	put64(x, gpa + 8, hi);
}

static uint32_t status_word(struct vt *x)
{
	uint32_t v;

	assert_int_equal(viommu_guest_read(&x->mem, STATUS, &v, 4), 0);
	return le32toh(v);
}

/* Fresh pages of the 1 GiB guest are zero: an empty table. */
static uint64_t raw_page(struct vt *x)
{
	uint64_t p = x->raw_next;

	x->raw_next += KiB(4);
	return p;
}

static void raw_root_entry(struct vt *x, unsigned bus, uint64_t lo, uint64_t hi)
{
	put128(x, RAW_ROOT + 16 * (uint64_t)bus, lo, hi);
}

/* Point bus @bus's root entry at its (initially empty) context table. */
static void raw_bus(struct vt *x, unsigned bus)
{
	raw_root_entry(x, bus, RAW_CTX(bus) | 1, 0);
}

static void raw_ctx(struct vt *x, uint16_t sid, uint64_t lo, uint64_t hi)
{
	put128(x, RAW_CTX(sid >> 8) + 16 * (uint64_t)(sid & 0xff), lo, hi);
}

/*
 * Write @pte as the entry at @level on the walk of @iova in the @levels
 * deep tables under @root, creating missing tables (R and W) above it.
 */
static void raw_pte(struct vt *x, uint64_t root, unsigned levels, uint64_t iova,
		    unsigned level, uint64_t pte)
{
	uint64_t table = root, gpa, e;
	unsigned l;

	for (l = levels; l > level; l--) {
		gpa = table + 8 * ((iova >> (12 + 9 * (l - 1))) & 511);
		e = get64(x, gpa);
		if (!(e & PTE_RW)) {
			e = raw_page(x) | PTE_RW;
			put64(x, gpa, e);
		}
		table = e & UINT64_C(0x000ffffffffff000);
	}
	put64(x, table + 8 * ((iova >> (12 + 9 * (level - 1))) & 511), pte);
}

/* A new 4-level table mapping the 4 KiB page @iova to @pa, RW. */
static uint64_t raw_table(struct vt *x, uint64_t iova, uint64_t pa)
{
	uint64_t root = raw_page(x);

	raw_pte(x, root, 4, iova, 1, pa | PTE_RW);
	return root;
}

/* Bring the unit up by hand: root table, a queue of 2^@qs pages, TE. */
static void raw_up(struct vt *x, unsigned qs, bool te)
{
	wr(x, R_RTADDR, 8, RAW_ROOT);
	gcmd_oneshot(x, SRTP);
	wr(x, R_IQT, 8, 0);
	wr(x, R_IQA, 8, RAW_QUEUE | qs);
	gcmd(x, QIE, true);
	if (te)
		gcmd(x, TE, true);
}

static void submit(struct vt *x, uint64_t lo, uint64_t hi)
{
	assert_int_equal(viommu_vtd_queue_submit(x->vtd, &x->mem, lo, hi), 0);
}

/*
 * Overwrite the descriptor the queue stopped on with a harmless wait, as
 * Linux does: otherwise the unit fetches it again once IQE is cleared.
 */
static void defuse_head(struct vt *x)
{
	uint64_t base = rd(x, R_IQA, 8) & ~UINT64_C(0xfff);

	put128(x, base + rd(x, R_IQH, 8), D_WAIT, 0);
}

/* --- the guest driver --------------------------------------------------- */

static void domain(struct vt *x, uint16_t did)
{
	assert_int_equal(viommu_vtd_driver_domain_new(x->drv, did, NULL), 0);
}

static void attach(struct vt *x, unsigned dev, uint16_t did)
{
	struct viommu_error err = { 0 };

	if (viommu_vtd_driver_attach(x->drv, sids[dev], did, &err))
		fail_msg("attach: %s", err.message);
}

static void map(struct vt *x, uint16_t did, uint64_t iova, uint64_t pa,
		uint64_t size, unsigned perm, uint64_t page_size)
{
	struct viommu_error err = { 0 };

	if (viommu_vtd_driver_map(x->drv, did, iova, pa, size, perm, page_size,
				  &err))
		fail_msg("map: %s", err.message);
}

static void map4k(struct vt *x, uint16_t did, uint64_t iova, uint64_t pa,
		  unsigned perm)
{
	map(x, did, iova, pa, KiB(4), perm, KiB(4));
}

static void unmap(struct vt *x, uint16_t did, uint64_t iova, uint64_t size)
{
	struct viommu_error err = { 0 };

	if (viommu_vtd_driver_unmap(x->drv, did, iova, size, &err))
		fail_msg("unmap: %s", err.message);
}

/* Page-selective invalidation of [iova, iova + size); size 0: domain. */
static void inval(struct vt *x, uint16_t did, uint64_t iova, uint64_t size)
{
	struct viommu_error err = { 0 };

	if (viommu_vtd_driver_invalidate(x->drv, did, iova, size, &err))
		fail_msg("invalidate: %s", err.message);
}

static void write_pte(struct vt *x, uint16_t did, uint64_t iova, unsigned level,
		      uint64_t value, bool self, unsigned count)
{
	struct viommu_error err = { 0 };

	if (viommu_vtd_driver_write_pte(x->drv, did, iova, level, value, self,
					count, &err))
		fail_msg("write_pte: %s", err.message);
}

/* --- translation and fault records -------------------------------------- */

static struct viommu_translation xlate(struct vt *x, unsigned dev,
				       uint64_t iova, unsigned access)
{
	struct viommu_translation t;

	assert_int_equal(viommu_as_translate(x->as[dev], iova, access, &t), 0);
	return t;
}

/* @iova of device @dev translates to @pa for @access. */
static void expect_pa(struct vt *x, unsigned dev, uint64_t iova,
		      unsigned access, uint64_t pa)
{
	struct viommu_translation t = xlate(x, dev, iova, access);
	uint64_t got = t.entry.translated_addr + (iova & t.entry.addr_mask);

	if (t.fault != VIOMMU_FAULT_NONE || got != pa)
		fail_msg(
			"dev%u iova 0x%llx: fault %d pa 0x%llx, want pa 0x%llx",
			dev, (unsigned long long)iova, t.fault,
			(unsigned long long)got, (unsigned long long)pa);
}

/* Exactly one fault record is pending: check it, then clear it. */
static void expect_record(struct vt *x, uint16_t sid, uint64_t iova,
			  unsigned reason, bool write)
{
	unsigned i, found = NFRCD;
	uint64_t lo, hi;

	for (i = 0; i < NFRCD; i++) {
		if (!(rd(x, R_FRCD_HI(i), 8) & FRCD_F))
			continue;
		if (found != NFRCD)
			fail_msg("two fault records pending (%u and %u)", found,
				 i);
		found = i;
	}
	if (found == NFRCD)
		fail_msg("no fault recorded for sid 0x%x iova 0x%llx reason "
			 "0x%x",
			 sid, (unsigned long long)iova, reason);
	assert_true(rd(x, R_FSTS, 4) & FSTS_PPF);
	assert_int_equal(FSTS_FRI(rd(x, R_FSTS, 4)), found);
	lo = rd(x, R_FRCD_LO(found), 8);
	hi = rd(x, R_FRCD_HI(found), 8);
	if ((hi & 0xffff) != sid || ((hi >> 32) & 0xff) != reason ||
	    !!(hi & FRCD_T) == write || lo != (iova & ~UINT64_C(0xfff)))
		fail_msg("record %u: sid 0x%llx reason 0x%llx %s addr 0x%llx; "
			 "want sid 0x%x reason 0x%x %s addr 0x%llx",
			 found, (unsigned long long)(hi & 0xffff),
			 (unsigned long long)((hi >> 32) & 0xff),
			 hi & FRCD_T ? "read" : "write", (unsigned long long)lo,
			 sid, reason, write ? "write" : "read",
			 (unsigned long long)(iova & ~UINT64_C(0xfff)));
	/* F is write-one-to-clear, in the upper dword of the upper half */
	wr(x, R_FRCD_HI(found) + 4, 4, 0x80000000u);
	assert_false(rd(x, R_FRCD_HI(found), 8) & FRCD_F);
}

static unsigned pending_records(struct vt *x)
{
	unsigned i, n = 0;

	for (i = 0; i < NFRCD; i++)
		n += !!(rd(x, R_FRCD_HI(i), 8) & FRCD_F);
	return n;
}

static void expect_no_record(struct vt *x)
{
	assert_int_equal(pending_records(x), 0);
	assert_false(rd(x, R_FSTS, 4) & (FSTS_PPF | FSTS_PFO));
}

/*
 * A DMA of @access at @iova faults with @fault and leaves exactly one
 * record with @reason (which this clears).
 */
static void expect_dma_fault(struct vt *x, unsigned dev, uint64_t iova,
			     unsigned access, enum viommu_fault fault,
			     unsigned reason)
{
	struct viommu_translation t = xlate(x, dev, iova, access);

	if (t.fault != fault)
		fail_msg("dev%u iova 0x%llx: fault %d, want %d", dev,
			 (unsigned long long)iova, t.fault, fault);
	expect_record(x, sids[dev], iova, reason, access & VIOMMU_PERM_WRITE);
}

/* --- notifiers ----------------------------------------------------------- */

static void listen(struct vt *x, unsigned dev, int who, unsigned flags)
{
	assert_int_equal(rec_register(x->as[dev], &x->c[who], x->rec, who,
				      flags, 0, UINT64_MAX),
			 0);
}

static const struct rec_event *ev(struct vt *x, size_t i)
{
	assert_true(i < x->rec->n);
	return &x->rec->ev[i];
}

static size_t events_of(struct vt *x, int who)
{
	size_t i, n = 0;

	for (i = 0; i < x->rec->n; i++)
		n += x->rec->ev[i].who == who;
	return n;
}

/*
 * The events of @who from @first on are @type events with no target that
 * tile [start, last] exactly, in order: a wide or device-IOTLB unmap.
 */
static void expect_tiling(struct vt *x, size_t first, int who, unsigned type,
			  uint64_t start, uint64_t last)
{
	uint64_t next = start;
	bool done = false;
	size_t i;

	for (i = first; i < x->rec->n; i++) {
		const struct rec_event *e = &x->rec->ev[i];

		if (e->who != who)
			continue;
		if (done || e->type != type || e->iova != next || e->pa ||
		    e->perm != VIOMMU_PERM_NONE)
			fail_msg("event %zu: type %u iova 0x%llx mask 0x%llx "
				 "pa 0x%llx; want type %u from 0x%llx",
				 i, e->type, (unsigned long long)e->iova,
				 (unsigned long long)e->addr_mask,
				 (unsigned long long)e->pa, type,
				 (unsigned long long)next);
		if (e->iova + e->addr_mask == last)
			done = true;
		else
			next = e->iova + e->addr_mask + 1;
	}
	if (!done)
		fail_msg("events of %d stop before 0x%llx", who,
			 (unsigned long long)last);
}

/* ========================================================================
 * The register file
 */

static void test_config_and_errors(void **state)
{
	static const struct viommu_guest_memory_ops no_read = {
		.version = VIOMMU_GUEST_MEMORY_OPS_VERSION,
	};
	struct viommu_guest_memory bad = { &no_read, NULL };
	struct vt *x = *state;
	struct viommu_vtd_config cfg;
	struct viommu_error err = { 0 };
	/* any non-NULL value, to see a failed new clear it */
	struct viommu_vtd *vtd = (struct viommu_vtd *)&cfg;
	struct viommu_as *as;
	uint64_t cap;

	viommu_vtd_config_init(&cfg);
	assert_int_equal(cfg.aw, 48);
	assert_true(cfg.caching_mode);
	assert_false(cfg.device_iotlb);
	assert_int_equal(cfg.walk_budget, VIOMMU_VTD_DEFAULT_WALK_BUDGET);
	assert_int_equal(cfg.iotlb_entries, VIOMMU_VTD_DEFAULT_IOTLB_ENTRIES);

	cfg.aw = 40;
	assert_int_equal(viommu_vtd_new(&cfg, &x->mem, &vtd, &err), -EINVAL);
	assert_null(vtd);
	assert_int_equal(err.code, -EINVAL);
	assert_non_null(strstr(err.message, "40"));
	viommu_vtd_config_init(&cfg);
	assert_int_equal(viommu_vtd_new(&cfg, NULL, &vtd, NULL), -EINVAL);
	assert_int_equal(viommu_vtd_new(&cfg, &bad, &vtd, NULL), -EINVAL);

	/* NULL options are the defaults: 48 bits, caching mode */
	assert_int_equal(viommu_vtd_new(NULL, &x->mem, &vtd, NULL), 0);
	assert_int_equal(viommu_vtd_mmio_read(vtd, R_CAP, 8, &cap), 0);
	assert_int_equal(((cap >> 16) & 0x3f) + 1, 48);
	assert_true(cap & BIT(7));
	viommu_vtd_free(vtd);
	viommu_vtd_free(NULL);

	/* one device per source id, named in the message */
	assert_int_equal(viommu_vtd_device_add(x->vtd, SID0, "again", &as,
					       &err),
			 -EEXIST);
	assert_non_null(strstr(err.message, "00:01.0"));
	assert_string_equal(viommu_as_name(x->as[2]), "dev2");
}

static void test_cap_ecap(void **state)
{
	static const unsigned aws[] = { 39, 48, 57 };
	/* SAGAW: every width up to the configured one */
	static const uint64_t sagaw[] = { 0x2, 0x6, 0xe };
	struct vt *x = *state;
	struct viommu_vtd_config cfg;
	struct viommu_vtd *vtd;
	unsigned a, cm, dt;
	uint64_t cap, ecap, v, lo, hi;

	for (a = 0; a < 3; a++) {
		for (cm = 0; cm < 2; cm++) {
			for (dt = 0; dt < 2; dt++) {
				viommu_vtd_config_init(&cfg);
				cfg.aw = aws[a];
				cfg.caching_mode = cm;
				cfg.device_iotlb = dt;
				assert_int_equal(viommu_vtd_new(&cfg, &x->mem,
								&vtd, NULL),
						 0);
				viommu_vtd_mmio_read(vtd, R_VER, 4, &v);
				assert_int_equal(v, 0x10); /* 1.0 */
				viommu_vtd_mmio_read(vtd, R_CAP, 8, &cap);
				viommu_vtd_mmio_read(vtd, R_ECAP, 8, &ecap);
				/* 4-byte halves agree with the 8-byte read */
				viommu_vtd_mmio_read(vtd, R_CAP, 4, &lo);
				viommu_vtd_mmio_read(vtd, R_CAP + 4, 4, &hi);
				assert_int_equal(lo | hi << 32, cap);
				viommu_vtd_mmio_read(vtd, R_ECAP, 4, &lo);
				viommu_vtd_mmio_read(vtd, R_ECAP + 4, 4, &hi);
				assert_int_equal(lo | hi << 32, ecap);

				assert_int_equal(cap & 7, 6); /* ND: 16 bits */
				assert_int_equal(!!(cap & BIT(7)), cm);
				assert_int_equal((cap >> 8) & 0x1f, sagaw[a]);
				assert_int_equal(((cap >> 16) & 0x3f) + 1,
						 aws[a]);
				assert_int_equal(((cap >> 24) & 0x3ff) * 16,
						 VIOMMU_VTD_REG_FRCD);
				assert_int_equal((cap >> 34) & 0xf, 0x3);
				assert_true(cap & BIT(39)); /* PSI */
				assert_int_equal(((cap >> 40) & 0xff) + 1,
						 NFRCD);
				assert_int_equal((cap >> 48) & 0x3f, 18);
				/* no write-buffer flushing, no PMR regions */
				assert_false(cap & (BIT(4) | BIT(5) | BIT(6)));

				assert_true(ecap & BIT(1)); /* QI */
				assert_int_equal(!!(ecap & BIT(2)), dt);
				assert_int_equal(((ecap >> 8) & 0x3ff) * 16,
						 R_IVA);
				/* no pass-through, no snoop control */
				assert_false(ecap & (BIT(6) | BIT(7)));

				/* read-only */
				viommu_vtd_mmio_write(vtd, R_CAP, 8, 0);
				viommu_vtd_mmio_write(vtd, R_ECAP, 8, 0);
				viommu_vtd_mmio_write(vtd, R_VER, 4, 0);
				viommu_vtd_mmio_read(vtd, R_CAP, 8, &v);
				assert_int_equal(v, cap);
				viommu_vtd_mmio_read(vtd, R_ECAP, 8, &v);
				assert_int_equal(v, ecap);
				viommu_vtd_mmio_read(vtd, R_VER, 4, &v);
				assert_int_equal(v, 0x10);
				viommu_vtd_free(vtd);
			}
		}
	}
}

static void test_gcmd_gsts(void **state)
{
	struct vt *x = *state;

	assert_int_equal(rd(x, R_GSTS, 4), 0);
	wr(x, R_RTADDR, 8, RAW_ROOT);
	/* status follows command: the very next read sees it */
	wr(x, R_GCMD, 4, SRTP);
	assert_true(rd(x, R_GSTS, 4) & GSTS_RTPS);
	assert_int_equal(rd(x, R_GCMD, 4), 0); /* GCMD reads as zero */

	wr(x, R_IQA, 8, RAW_QUEUE);
	wr(x, R_GCMD, 4, QIE);
	assert_true(rd(x, R_GSTS, 4) & QIE);
	assert_false(rd(x, R_GSTS, 4) & TE);
	assert_int_equal(rd(x, R_IQH, 8), 0);

	wr(x, R_GCMD, 4, QIE | TE);
	assert_int_equal(rd(x, R_GSTS, 4) & (QIE | TE), QIE | TE);

	/* GSTS is read-only */
	wr(x, R_GSTS, 4, 0);
	assert_int_equal(rd(x, R_GSTS, 4) & (QIE | TE), QIE | TE);

	/* clearing a persistent enable clears its status */
	wr(x, R_GCMD, 4, QIE);
	assert_int_equal(rd(x, R_GSTS, 4) & (QIE | TE), QIE);

	/* interrupt remapping is reported (ECAP.IR), so IRE is mirrored */
	wr(x, R_GCMD, 4, QIE | IRE);
	assert_true(rd(x, R_GSTS, 4) & GSTS_IRES);
	wr(x, R_GCMD, 4, 0);
	assert_false(rd(x, R_GSTS, 4) & (QIE | TE | GSTS_IRES));

	/* an 8-byte write: GCMD is the low half, GSTS above it ignored */
	wr(x, R_GCMD, 8, UINT64_C(0xffffffff00000000) | QIE | TE);
	assert_int_equal(rd(x, R_GSTS, 4) & (QIE | TE | GSTS_IRES), QIE | TE);
	assert_int_equal(rd(x, R_GCMD, 8) >> 32, rd(x, R_GSTS, 4));
}

static void test_rtaddr(void **state)
{
	struct vt *x = *state;

	/* the low 12 bits are reserved (legacy mode: TTM 00) */
	wr(x, R_RTADDR, 8, UINT64_C(0x123456789abcdfff));
	assert_int_equal(rd(x, R_RTADDR, 8), UINT64_C(0x123456789abcd000));
	assert_int_equal(rd(x, R_RTADDR, 4), 0x9abcd000);
	assert_int_equal(rd(x, R_RTADDR + 4, 4), 0x12345678);

	/* two 4-byte halves, each leaving the other alone */
	wr(x, R_RTADDR, 4, 0x55555000);
	assert_int_equal(rd(x, R_RTADDR, 8), UINT64_C(0x1234567855555000));
	wr(x, R_RTADDR + 4, 4, 0x1);
	assert_int_equal(rd(x, R_RTADDR, 8), UINT64_C(0x155555000));
}

/* 4-byte aligned offsets of the registers the model implements. */
static bool known_reg(unsigned off)
{
	static const unsigned regs[] = {
		0x00, 0x08, 0x0c, 0x10,	 0x14,	0x18,  0x1c,  0x20, 0x24,
		0x28, 0x2c, 0x34, 0x38,	 0x3c,	0x40,  0x44,  0x64, 0x80,
		0x84, 0x88, 0x8c, 0x90,	 0x94,	0x9c,  0xa0,  0xa4, 0xa8,
		0xac, 0xb8, 0xbc, 0x200, 0x204, 0x208, 0x20c,
	};
	size_t i;

	if (off >= VIOMMU_VTD_REG_FRCD &&
	    off < VIOMMU_VTD_REG_FRCD + 16 * NFRCD)
		return true;
	for (i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
		if (regs[i] == off)
			return true;
	return false;
}

static void test_unknown_offsets(void **state)
{
	static const struct {
		uint64_t off;
		unsigned size;
	} bad[] = {
		{ 2, 4 },
		{ 4, 8 },
		{ 0x1c, 8 },
		{ 0, 2 },
		{ 0, 1 },
		{ 0, 16 },
		{ 0, 0 },
		{ 0x1000, 4 },
		{ 0xff8, 16 },
		{ 0x1000, 8 },
		{ UINT64_MAX - 7, 8 },
	};
	struct vt *x = *state;
	uint64_t before[VIOMMU_VTD_REG_SIZE / 4], v;
	unsigned off;
	size_t i;

	raw_up(x, 0, false);
	for (off = 0; off < VIOMMU_VTD_REG_SIZE; off += 4)
		before[off / 4] = rd(x, off, 4);

	for (off = 0; off < VIOMMU_VTD_REG_SIZE; off += 4) {
		if (known_reg(off))
			continue;
		assert_int_equal(rd(x, off, 4), 0);
		wr(x, off, 4, 0xffffffffu);
		assert_int_equal(rd(x, off, 4), 0);
		if (off % 8 || known_reg(off + 4))
			continue;
		assert_int_equal(rd(x, off, 8), 0);
		wr(x, off, 8, UINT64_MAX);
		assert_int_equal(rd(x, off, 8), 0);
	}
	/* nothing leaked into the implemented registers */
	for (off = 0; off < VIOMMU_VTD_REG_SIZE; off += 4)
		if (rd(x, off, 4) != before[off / 4])
			fail_msg("register 0x%x changed: 0x%llx -> 0x%llx", off,
				 (unsigned long long)before[off / 4],
				 (unsigned long long)rd(x, off, 4));

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 0xabad1dea;
		assert_int_equal(viommu_vtd_mmio_read(x->vtd, bad[i].off,
						      bad[i].size, &v),
				 -EINVAL);
		assert_int_equal(v, 0xabad1dea); /* nothing read */
		assert_int_equal(viommu_vtd_mmio_write(x->vtd, bad[i].off,
						       bad[i].size, UINT64_MAX),
				 -EINVAL);
	}
	/* a rejected command does nothing */
	assert_int_equal(viommu_vtd_mmio_write(x->vtd, R_GCMD, 2, TE >> 16),
			 -EINVAL);
	assert_int_equal(viommu_vtd_mmio_write(x->vtd, R_GCMD + 2, 2, TE >> 16),
			 -EINVAL);
	assert_false(rd(x, R_GSTS, 4) & TE);
	assert_int_equal(viommu_vtd_mmio_read(x->vtd, R_CAP, 8, NULL), -EINVAL);
	assert_int_equal(viommu_vtd_mmio_read(NULL, R_CAP, 8, &v), -EINVAL);
	assert_int_equal(viommu_vtd_mmio_write(NULL, R_CAP, 8, 0), -EINVAL);
}

/*
 * Register-based context-cache invalidation: ICC clears on completion and
 * CAIG reports the granularity done; what it covers is re-read.
 */
static void test_ccmd(void **state)
{
	struct vt *x = *state;
	uint64_t t1 = raw_table(x, 0x1000, PA(1));
	uint64_t t2 = raw_table(x, 0x1000, PA(2));
	uint64_t t3 = raw_table(x, 0x1000, PA(3));
	struct viommu_vtd_counters c0 = counters(x);
	uint64_t v;

	raw_bus(x, 0);
	raw_up(x, 0, true);
	/* the context was read (not present) when translation came on */
	raw_ctx(x, SID0, CTX_LO(t1, 0, 0), CTX_HI(1, 2));
	expect_dma_fault(x, 0, 0x1000, RO, VIOMMU_FAULT_NOT_PRESENT, 2);

	wr(x, R_CCMD, 8, CCMD_ICC | CCMD_CIRG(1));
	v = rd(x, R_CCMD, 8);
	assert_false(v & CCMD_ICC);
	assert_int_equal(CCMD_CAIG(v), 1);
	expect_pa(x, 0, 0x1000, RO, PA(1));

	/* domain-selective, in two halves: the command is in the upper one */
	raw_ctx(x, SID0, CTX_LO(t2, 0, 0), CTX_HI(2, 2));
	wr(x, R_CCMD, 4, 1); /* DID 1 */
	expect_pa(x, 0, 0x1000, RO, PA(1));
	wr(x, R_CCMD + 4, 4, (CCMD_ICC | CCMD_CIRG(2)) >> 32);
	v = rd(x, R_CCMD, 8);
	assert_false(v & CCMD_ICC);
	assert_int_equal(CCMD_CAIG(v), 2);
	expect_pa(x, 0, 0x1000, RO, PA(2));

	/* device-selective */
	raw_ctx(x, SID0, CTX_LO(t3, 0, 0), CTX_HI(3, 2));
	wr(x, R_CCMD, 8, CCMD_ICC | CCMD_CIRG(3) | CCMD_SID(SID0) | 2);
	v = rd(x, R_CCMD, 8);
	assert_false(v & CCMD_ICC);
	assert_int_equal(CCMD_CAIG(v), 3);
	expect_pa(x, 0, 0x1000, RO, PA(3));
	assert_int_equal(counters(x).context_invalidations,
			 c0.context_invalidations + 3);

	/* CIRG 0 is no request: completed as "not done" (CAIG 0) */
	raw_ctx(x, SID0, 0, 0);
	wr(x, R_CCMD, 8, CCMD_ICC);
	v = rd(x, R_CCMD, 8);
	assert_false(v & CCMD_ICC);
	assert_int_equal(CCMD_CAIG(v), 0);
	expect_pa(x, 0, 0x1000, RO, PA(3));
	assert_int_equal(counters(x).context_invalidations,
			 c0.context_invalidations + 3);
	expect_no_record(x);
}

/* Register-based IOTLB invalidation through IVA and the IOTLB register. */
static void test_iotlb_registers(void **state)
{
	struct vt *x = *state;
	struct viommu_vtd_counters c0;
	uint64_t v;
	unsigned i;

	domain(x, 1);
	attach(x, 0, 1);
	for (i = 0; i < 4; i++)
		map4k(x, 1, KiB(4) * i, PA(i), RW);
	inval(x, 1, 0, 0);
	listen(x, 0, 0, MAP | UNMAP);
	/* the device caches all four, then the guest moves them silently */
	for (i = 0; i < 4; i++)
		expect_pa(x, 0, KiB(4) * i, RW, PA(i));
	for (i = 0; i < 4; i++)
		map4k(x, 1, KiB(4) * i, PA(10 + i), RW);
	for (i = 0; i < 4; i++)
		expect_pa(x, 0, KiB(4) * i, RW, PA(i));
	c0 = counters(x);

	/* page-selective, AM 1: pages 0 and 1 */
	wr(x, R_IVA, 8, 0 | 1);
	wr(x, R_IOTLB, 8, IOTLB_IVT | IOTLB_IIRG(3) | IOTLB_DID(1));
	v = rd(x, R_IOTLB, 8);
	assert_false(v & IOTLB_IVT);
	assert_int_equal(IOTLB_IAIG(v), 3);
	expect_pa(x, 0, 0, RW, PA(10));
	expect_pa(x, 0, 0x1000, RW, PA(11));
	expect_pa(x, 0, 0x2000, RW, PA(2));
	expect_pa(x, 0, 0x3000, RW, PA(3));
	assert_int_equal(x->rec->n, 4);
	assert_event(ev(x, 0), 0, UNMAP, 0, KiB(4), PA(0), 0);
	assert_event(ev(x, 1), 0, MAP, 0, KiB(4), PA(10), RW);
	assert_event(ev(x, 2), 0, UNMAP, 0x1000, KiB(4), PA(1), 0);
	assert_event(ev(x, 3), 0, MAP, 0x1000, KiB(4), PA(11), RW);

	/* AM beyond MAMV (18): not carried out, IAIG 0 */
	wr(x, R_IVA, 8, 19);
	wr(x, R_IOTLB, 8, IOTLB_IVT | IOTLB_IIRG(3) | IOTLB_DID(1));
	v = rd(x, R_IOTLB, 8);
	assert_false(v & IOTLB_IVT);
	assert_int_equal(IOTLB_IAIG(v), 0);
	expect_pa(x, 0, 0x2000, RW, PA(2));
	assert_int_equal(x->rec->n, 4);

	/* domain-selective, the command written as the upper half alone */
	wr(x, R_IOTLB + 4, 4, (IOTLB_IVT | IOTLB_IIRG(2) | IOTLB_DID(1)) >> 32);
	v = rd(x, R_IOTLB, 8);
	assert_false(v & IOTLB_IVT);
	assert_int_equal(IOTLB_IAIG(v), 2);
	expect_pa(x, 0, 0x2000, RW, PA(12));
	expect_pa(x, 0, 0x3000, RW, PA(13));
	assert_int_equal(x->rec->n, 8);

	/* global */
	expect_pa(x, 0, 0, RW, PA(10));
	map4k(x, 1, 0, PA(20), RW);
	expect_pa(x, 0, 0, RW, PA(10));
	wr(x, R_IOTLB, 8, IOTLB_IVT | IOTLB_IIRG(1));
	v = rd(x, R_IOTLB, 8);
	assert_false(v & IOTLB_IVT);
	assert_int_equal(IOTLB_IAIG(v), 1);
	expect_pa(x, 0, 0, RW, PA(20));
	assert_int_equal(x->rec->n, 10);
	assert_event(ev(x, 9), 0, MAP, 0, KiB(4), PA(20), RW);
	assert_int_equal(counters(x).invalidations, c0.invalidations + 3);
	expect_no_record(x);
}

static void test_fsts_w1c(void **state)
{
	struct vt *x = *state;
	unsigned i;

	/* an invalid descriptor (type 0) sets IQE */
	submit(x, 0, 0);
	assert_true(rd(x, R_FSTS, 4) & FSTS_IQE);
	defuse_head(x);
	wr(x, R_FSTS, 4, 0);
	assert_true(rd(x, R_FSTS, 4) & FSTS_IQE);
	/* write one to clear, also through the 8-byte slot at 0x30 */
	wr(x, 0x30, 8, (uint64_t)FSTS_IQE << 32);
	assert_false(rd(x, R_FSTS, 4) & FSTS_IQE);

	/* overflow the fault records: PFO; PPF is computed, not writable */
	domain(x, 1);
	attach(x, 0, 1);
	for (i = 0; i <= NFRCD; i++)
		xlate(x, 0, MiB(1) + KiB(4) * i, RO);
	assert_int_equal(rd(x, R_FSTS, 4) & (FSTS_PFO | FSTS_PPF),
			 FSTS_PFO | FSTS_PPF);
	wr(x, R_FSTS, 4, FSTS_PPF);
	assert_true(rd(x, R_FSTS, 4) & FSTS_PPF);
	wr(x, R_FSTS, 4, FSTS_PFO);
	assert_int_equal(rd(x, R_FSTS, 4) & (FSTS_PFO | FSTS_PPF), FSTS_PPF);
}

static void test_fault_records(void **state)
{
	struct vt *x = *state;
	uint64_t fsts;
	unsigned i;

	domain(x, 1);
	attach(x, 0, 1);
	map4k(x, 1, 0x1000, PA(1), RO);
	inval(x, 1, 0, 0);
	expect_no_record(x);

	/* four reads of unmapped pages fill the four records in order */
	for (i = 0; i < NFRCD; i++)
		assert_int_equal(
			xlate(x, 0, MiB(1) + KiB(4) * i + 0x123, RO).fault,
			VIOMMU_FAULT_NOT_PRESENT);
	for (i = 0; i < NFRCD; i++) {
		uint64_t lo = rd(x, R_FRCD_LO(i), 8);
		uint64_t hi = rd(x, R_FRCD_HI(i), 8);

		assert_int_equal(lo, MiB(1) + KiB(4) * i);
		assert_true(hi & FRCD_F);
		assert_true(hi & FRCD_T);
		assert_int_equal(hi & 0xffff, SID0);
		assert_int_equal((hi >> 32) & 0xff, VIOMMU_VTD_FR_READ);
		/* the two 4-byte halves read the same */
		assert_int_equal(rd(x, R_FRCD_HI(i), 4) |
					 rd(x, R_FRCD_HI(i) + 4, 4) << 32,
				 hi);
	}
	fsts = rd(x, R_FSTS, 4);
	assert_true(fsts & FSTS_PPF);
	assert_false(fsts & FSTS_PFO);
	assert_int_equal(FSTS_FRI(fsts), 0);
	assert_int_equal(counters(x).faults_recorded, NFRCD);

	/* a fifth fault finds every record full: overflow, not recorded */
	xlate(x, 0, MiB(2), RO);
	assert_true(rd(x, R_FSTS, 4) & FSTS_PFO);
	assert_int_equal(counters(x).faults_recorded, NFRCD);
	for (i = 0; i < NFRCD; i++)
		assert_int_equal(rd(x, R_FRCD_LO(i), 8), MiB(1) + KiB(4) * i);

	/* F is write-one-to-clear: writing zero keeps it */
	wr(x, R_FRCD_HI(0), 8, 0);
	assert_true(rd(x, R_FRCD_HI(0), 8) & FRCD_F);
	wr(x, R_FRCD_HI(0) + 4, 4, 0x80000000u);
	assert_false(rd(x, R_FRCD_HI(0), 8) & FRCD_F);
	fsts = rd(x, R_FSTS, 4);
	assert_true(fsts & FSTS_PPF);
	assert_int_equal(FSTS_FRI(fsts), 1);
	/* the other records are untouched */
	assert_true(rd(x, R_FRCD_HI(1), 8) & FRCD_F);
	for (i = 1; i < NFRCD; i++)
		wr(x, R_FRCD_HI(i), 8, FRCD_F);
	wr(x, R_FSTS, 4, FSTS_PFO);
	expect_no_record(x);

	/* a write to a read-only page: reason 5, T = 0 (write) */
	assert_int_equal(xlate(x, 0, 0x1abc, WO).fault,
			 VIOMMU_FAULT_PERMISSION);
	expect_record(x, SID0, 0x1000, VIOMMU_VTD_FR_WRITE, true);
	expect_no_record(x);
}

/* ========================================================================
 * Queued invalidation
 */

/* Context-cache descriptors: global, domain- and device-selective. */
static void test_qi_context(void **state)
{
	struct vt *x = *state;
	uint64_t t1 = raw_table(x, 0x1000, PA(1));
	uint64_t t2 = raw_table(x, 0x1000, PA(2));
	uint64_t t3 = raw_table(x, 0x1000, PA(3));
	uint64_t t4 = raw_table(x, 0x1000, PA(4));
	struct viommu_vtd_counters c0;

	raw_bus(x, 0);
	raw_bus(x, 1);
	raw_up(x, 0, true);
	c0 = counters(x);
	raw_ctx(x, SID0, CTX_LO(t1, 0, 0), CTX_HI(1, 2));
	raw_ctx(x, SID1, CTX_LO(t1, 0, 0), CTX_HI(1, 2));
	raw_ctx(x, SID2, CTX_LO(t2, 0, 0), CTX_HI(2, 2));

	/* device-selective reaches that device only */
	submit(x, D_CC(3, 0, SID1, 0), 0);
	expect_pa(x, 1, 0x1000, RO, PA(1));
	expect_dma_fault(x, 0, 0x1000, RO, VIOMMU_FAULT_NOT_PRESENT, 2);
	expect_dma_fault(x, 2, 0x1000, RO, VIOMMU_FAULT_NOT_PRESENT, 2);

	submit(x, D_CC(1, 0, 0, 0), 0);
	expect_pa(x, 0, 0x1000, RO, PA(1));
	expect_pa(x, 2, 0x1000, RO, PA(2));

	/* domain-selective: the devices whose cached entry has that DID */
	raw_ctx(x, SID0, CTX_LO(t3, 0, 0), CTX_HI(3, 2));
	raw_ctx(x, SID1, CTX_LO(t3, 0, 0), CTX_HI(3, 2));
	raw_ctx(x, SID2, CTX_LO(t4, 0, 0), CTX_HI(4, 2));
	submit(x, D_CC(2, 1, 0, 0), 0);
	expect_pa(x, 0, 0x1000, RO, PA(3));
	expect_pa(x, 1, 0x1000, RO, PA(3));
	expect_pa(x, 2, 0x1000, RO, PA(2));
	submit(x, D_CC(2, 2, 0, 0), 0);
	expect_pa(x, 2, 0x1000, RO, PA(4));

	assert_int_equal(counters(x).context_invalidations,
			 c0.context_invalidations + 4);
	assert_int_equal(counters(x).descriptors, c0.descriptors + 4);
	assert_int_equal(counters(x).queue_errors, 0);
	assert_int_equal(rd(x, R_IQH, 8), rd(x, R_IQT, 8));
	expect_no_record(x);
}

/* IOTLB descriptors: global, domain, page-selective with an address mask. */
static void test_qi_iotlb(void **state)
{
	struct vt *x = *state;
	struct viommu_vtd_counters c0;
	unsigned i;

	domain(x, 1);
	domain(x, 2);
	attach(x, 0, 1);
	attach(x, 1, 2);
	for (i = 0; i < 8; i++)
		map4k(x, 1, KiB(4) * i, PA(i), RW);
	map4k(x, 2, 0, PA(50), RW);
	inval(x, 1, 0, 0);
	inval(x, 2, 0, 0);
	for (i = 0; i < 8; i++) {
		expect_pa(x, 0, KiB(4) * i, RO, PA(i));
		map4k(x, 1, KiB(4) * i, PA(100 + i), RW);
	}
	expect_pa(x, 1, 0, RO, PA(50));
	map4k(x, 2, 0, PA(51), RW);
	c0 = counters(x);

	/* page-selective, AM 2 at 16K: pages 4..7; the address's low bits
	 * below the mask are ignored */
	submit(x, D_IOTLB(3, 1), KiB(20) | 2);
	for (i = 0; i < 8; i++)
		expect_pa(x, 0, KiB(4) * i, RO, PA(i < 4 ? i : 100 + i));
	/* domain-selective: domain 1 only */
	submit(x, D_IOTLB(2, 1), 0);
	for (i = 0; i < 8; i++)
		expect_pa(x, 0, KiB(4) * i, RO, PA(100 + i));
	expect_pa(x, 1, 0, RO, PA(50));
	/* global: every domain */
	submit(x, D_IOTLB(1, 0), 0);
	expect_pa(x, 1, 0, RO, PA(51));

	assert_int_equal(counters(x).invalidations, c0.invalidations + 3);
	assert_int_equal(counters(x).descriptors, c0.descriptors + 3);
	assert_int_equal(rd(x, R_FSTS, 4) & FSTS_IQE, 0);
	expect_no_record(x);
}

/* Device-IOTLB descriptors reach that SID's DEVIOTLB_UNMAP notifiers. */
static void test_qi_devtlb(void **state)
{
	struct vt *x = *state;
	struct viommu_error err = { 0 };
	struct viommu_vtd_counters c0;
	size_t n;

	domain(x, 1);
	attach(x, 0, 1);
	attach(x, 1, 1);
	listen(x, 0, 0, DEVTLB);
	listen(x, 1, 1, DEVTLB);
	listen(x, 0, 2, MAP | UNMAP);
	listen(x, 2, 3, DEVTLB);
	c0 = counters(x);

	/* S = 0: one 4K page */
	submit(x, D_DEVTLB(SID0), 0x5000);
	assert_int_equal(x->rec->n, 1);
	assert_event(ev(x, 0), 0, DEVTLB, 0x5000, KiB(4), 0, 0);
	/* S = 1: the trailing ones above bit 12 give the size */
	submit(x, D_DEVTLB(SID0), 0x8000 | 1);
	assert_event(ev(x, 1), 0, DEVTLB, 0x8000, KiB(8), 0, 0);
	submit(x, D_DEVTLB(SID0), 0x10000 | 0x7000 | 1);
	assert_event(ev(x, 2), 0, DEVTLB, 0x10000, KiB(64), 0, 0);
	/* S = 0: low ones are address bits, not a size */
	submit(x, D_DEVTLB(SID1), (GiB(1) | (MiB(1) - 1)) & ~UINT64_C(0xfff));
	assert_event(ev(x, 3), 1, DEVTLB, GiB(1) + MiB(1) - KiB(4), KiB(4), 0,
		     0);
	/* all ones: the whole space */
	submit(x, D_DEVTLB(SID1), ~UINT64_C(0xfff) | 1);
	assert_event(ev(x, 4), 1, DEVTLB, 0, 0, 0, 0);
	/* through the driver */
	if (viommu_vtd_driver_invalidate_devtlb(x->drv, SID0, MiB(2), MiB(2),
						&err))
		fail_msg("devtlb: %s", err.message);
	assert_int_equal(x->rec->n, 6);
	assert_event(ev(x, 5), 0, DEVTLB, MiB(2), MiB(2), 0, 0);
	/* a source id without a device: nobody hears it */
	n = x->rec->n;
	submit(x, D_DEVTLB(0x0200), 0);
	assert_int_equal(x->rec->n, n);
	assert_int_equal(events_of(x, 2) + events_of(x, 3), 0);
	assert_int_equal(counters(x).devtlb_invalidations,
			 c0.devtlb_invalidations + 7);

	/* reserved bits of the upper quadword */
	submit(x, D_DEVTLB(SID0), 0x5000 | 2);
	assert_true(rd(x, R_FSTS, 4) & FSTS_IQE);
	assert_int_equal(x->rec->n, n);
}

static void test_qi_devtlb_needs_dt(void **state)
{
	struct vt *x = *state;
	struct viommu_notifier_config cfg;
	struct viommu_notifier *h;
	struct viommu_error err = { 0 };
	struct viommu_vtd_counters c0 = counters(x);

	viommu_notifier_config_init(&cfg, DEVTLB, rec_notify, &x->c[0]);
	x->c[0].rec = x->rec;
	assert_int_equal(viommu_notifier_register(x->as[1], &cfg, &h, &err),
			 -ENOTSUP);
	assert_int_equal(err.code, -ENOTSUP);
	assert_non_null(strstr(err.message, "dev1"));
	assert_non_null(strstr(err.message, "device-iotlb=on"));
	assert_int_equal(viommu_as_notify_flags(x->as[1]), 0);

	/* the descriptor is a queue error on a unit without ECAP.DT */
	assert_int_equal(viommu_vtd_driver_invalidate_devtlb(x->drv, SID0, 0,
							     KiB(4), &err),
			 -EIO);
	assert_int_equal(counters(x).queue_errors, c0.queue_errors + 1);
	assert_int_equal(counters(x).devtlb_invalidations, 0);
}

/* Interrupt-entry-cache and wait descriptors. */
static void test_qi_iec_wait(void **state)
{
	struct vt *x = *state;
	struct viommu_vtd_counters c0 = counters(x);

	/* IEC, global and index-selective: accepted, nothing to do */
	submit(x, D_IEC, 0);
	submit(x, D_IEC | BIT(4) | UINT64_C(0x1234) << 32 | UINT64_C(3) << 27,
	       0);
	assert_false(rd(x, R_FSTS, 4) & FSTS_IQE);

	/* status write */
	submit(x, D_WAIT_SW(0xcafe), STATUS);
	assert_int_equal(status_word(x), 0xcafe);
	assert_int_equal(rd(x, R_ICS, 4), 0);
	/* IF: ICS.IWC, write-one-to-clear */
	submit(x, D_WAIT | WAIT_IF, 0);
	assert_int_equal(rd(x, R_ICS, 4), 1);
	wr(x, R_ICS, 4, 0);
	assert_int_equal(rd(x, R_ICS, 4), 1);
	wr(x, R_ICS, 4, 1);
	assert_int_equal(rd(x, R_ICS, 4), 0);
	/* both at once, and a fence */
	submit(x, D_WAIT_SW(0xbeef) | WAIT_IF | BIT(6), STATUS);
	assert_int_equal(status_word(x), 0xbeef);
	assert_int_equal(rd(x, R_ICS, 4), 1);

	assert_int_equal(counters(x).descriptors, c0.descriptors + 5);
	assert_int_equal(counters(x).queue_errors, 0);
	assert_int_equal(rd(x, R_IQH, 8), rd(x, R_IQT, 8));
}

static void test_qi_malformed(void **state)
{
	static const struct {
		const char *what;
		uint64_t lo, hi;
	} bad[] = {
		{ "type 0", 0, 0 },
		{ "type 6", 6, 0 },
		{ "type 7", 7, 0 },
		{ "type 15", 15, 0 },
		{ "extended type bits", D_WAIT | BIT(9), 0 },
		{ "context G 0", D_CC(0, 0, 0, 0), 0 },
		{ "context rsvd 6", D_CC(1, 0, 0, 0) | BIT(6), 0 },
		{ "context rsvd 12", D_CC(1, 0, 0, 0) | BIT(12), 0 },
		{ "context rsvd 50", D_CC(1, 0, 0, 0) | BIT(50), 0 },
		{ "context hi", D_CC(1, 0, 0, 0), 1 },
		{ "iotlb G 0", D_IOTLB(0, 1), 0 },
		{ "iotlb rsvd 8", D_IOTLB(1, 0) | BIT(8), 0 },
		{ "iotlb rsvd 32", D_IOTLB(1, 0) | BIT(32), 0 },
		{ "iotlb hi rsvd 7", D_IOTLB(3, 1), BIT(7) },
		{ "iotlb am 19", D_IOTLB(3, 1), 19 },
		{ "devtlb without DT", D_DEVTLB(SID0), 0 },
		{ "iec rsvd 5", D_IEC | BIT(5), 0 },
		{ "iec hi", D_IEC, 1 },
		{ "wait rsvd 8", D_WAIT | BIT(8), 0 },
		{ "wait rsvd 12", D_WAIT | BIT(12), 0 },
		{ "wait hi rsvd", D_WAIT_SW(1), STATUS | 2 },
	};
	struct vt *x = *state;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct viommu_vtd_counters c0 = counters(x);
		uint64_t at = rd(x, R_IQT, 8);
		uint32_t tag = 0x100 + (uint32_t)i;

		submit(x, D_WAIT_SW(tag - 0x100), STATUS);
		submit(x, bad[i].lo, bad[i].hi);
		/* the unit stops on it: what follows waits */
		submit(x, D_WAIT_SW(tag), STATUS);
		if (!(rd(x, R_FSTS, 4) & FSTS_IQE))
			fail_msg("%s: accepted", bad[i].what);
		assert_int_equal(rd(x, R_IQH, 8), (at + 16) % KiB(4));
		assert_int_equal(status_word(x), tag - 0x100);
		assert_int_equal(counters(x).queue_errors, c0.queue_errors + 1);
		assert_int_equal(counters(x).descriptors, c0.descriptors + 1);

		/*
		 * The guest overwrites it with a harmless wait, clears IQE
		 * and moves the tail again: the queue goes on from there.
		 */
		defuse_head(x);
		wr(x, R_FSTS, 4, FSTS_IQE);
		assert_int_equal(status_word(x), tag - 0x100);
		submit(x, D_WAIT_SW(tag + 0x1000), STATUS);
		assert_false(rd(x, R_FSTS, 4) & FSTS_IQE);
		assert_int_equal(status_word(x), tag + 0x1000);
		assert_int_equal(rd(x, R_IQH, 8), rd(x, R_IQT, 8));
		assert_int_equal(counters(x).descriptors, c0.descriptors + 4);
	}
}

/* A bad descriptor the guest does not fix stops the queue again. */
static void test_qi_error_repeats(void **state)
{
	struct vt *x = *state;
	uint64_t at = rd(x, R_IQT, 8);

	submit(x, 0, 0);
	assert_true(rd(x, R_FSTS, 4) & FSTS_IQE);
	wr(x, R_FSTS, 4, FSTS_IQE);
	submit(x, D_WAIT_SW(7), STATUS);
	assert_true(rd(x, R_FSTS, 4) & FSTS_IQE);
	assert_int_equal(rd(x, R_IQH, 8), at);
	assert_int_equal(counters(x).queue_errors, 2);
	assert_int_not_equal(status_word(x), 7);
	/* and while IQE is set, moving the tail does nothing */
	submit(x, D_WAIT_SW(8), STATUS);
	assert_int_equal(rd(x, R_IQH, 8), at);
	assert_int_equal(counters(x).queue_errors, 2);
}

/* More descriptors than the 4 KiB queue holds: the head wraps. */
static void test_qi_wraparound(void **state)
{
	struct vt *x = *state;
	struct viommu_vtd_counters c0 = counters(x);
	uint64_t head, prev = rd(x, R_IQH, 8);
	unsigned i, wraps = 0;

	for (i = 1; i <= 600; i++) {
		submit(x, D_WAIT_SW(i), STATUS);
		assert_int_equal(status_word(x), i);
		head = rd(x, R_IQH, 8);
		assert_int_equal(head, rd(x, R_IQT, 8));
		assert_true(head < KiB(4));
		wraps += head < prev;
		prev = head;
	}
	assert_int_equal(wraps, 2);
	assert_int_equal(counters(x).descriptors, c0.descriptors + 600);
	assert_int_equal(counters(x).queue_errors, 0);
}

static void test_qi_tail_beyond_queue(void **state)
{
	struct vt *x = *state;

	raw_up(x, 0, false);
	put128(x, RAW_QUEUE, D_WAIT_SW(1), STATUS);
	/* bits 3:0 of the tail are reserved */
	wr(x, R_IQT, 8, 0x1f);
	assert_int_equal(rd(x, R_IQT, 8), 0x10);
	assert_int_equal(status_word(x), 1);
	assert_int_equal(rd(x, R_IQH, 8), 0x10);

	/* a tail beyond the 4 KiB queue is a queue error */
	wr(x, R_IQT, 8, KiB(4));
	assert_true(rd(x, R_FSTS, 4) & FSTS_IQE);
	assert_int_equal(rd(x, R_IQH, 8), 0x10);
	assert_int_equal(counters(x).queue_errors, 1);

	/* re-enabled as an 8 KiB queue, the same tail is fine */
	wr(x, R_FSTS, 4, FSTS_IQE);
	gcmd(x, QIE, false);
	assert_int_equal(rd(x, R_IQH, 8), 0);
	wr(x, R_IQT, 8, 0);
	wr(x, R_IQA, 8, RAW_QUEUE | 1);
	gcmd(x, QIE, true);
	put128(x, RAW_QUEUE + KiB(4), D_WAIT_SW(2), STATUS);
	for (unsigned i = 0; i < 256; i++)
		put128(x, RAW_QUEUE + 16 * i, D_WAIT, 0);
	wr(x, R_IQT, 8, KiB(4) + 16);
	assert_false(rd(x, R_FSTS, 4) & FSTS_IQE);
	assert_int_equal(status_word(x), 2);
	assert_int_equal(rd(x, R_IQH, 8), KiB(4) + 16);
}

static void test_qi_wait_outside_ram(void **state)
{
	struct vt *x = *state;

	submit(x, D_WAIT_SW(5), RAM_SIZE);
	assert_true(rd(x, R_FSTS, 4) & FSTS_IQE);
	assert_int_equal(counters(x).queue_errors, 1);
	defuse_head(x);
	wr(x, R_FSTS, 4, FSTS_IQE);
	submit(x, D_WAIT_SW(6), RAM_SIZE - 4);
	assert_false(rd(x, R_FSTS, 4) & FSTS_IQE);
}

static void test_qi_disabled(void **state)
{
	struct vt *x = *state;

	assert_int_equal(viommu_vtd_queue_submit(x->vtd, &x->mem, D_WAIT, 0),
			 -EINVAL);
	/* the tail register moves, nothing is fetched */
	wr(x, R_IQA, 8, RAW_QUEUE);
	put128(x, RAW_QUEUE, D_WAIT_SW(3), STATUS);
	wr(x, R_IQT, 8, 0x10);
	assert_int_equal(rd(x, R_IQH, 8), 0);
	assert_int_equal(status_word(x), 0);
	assert_int_equal(counters(x).descriptors, 0);
}

/* ========================================================================
 * Translation
 */

static void test_translate_driver(void **state)
{
	struct vt *x = *state;
	struct viommu_translation t;
	struct viommu_entry e;

	domain(x, 1);
	attach(x, 0, 1);
	map4k(x, 1, 0x7000, PA(7), RW);
	map(x, 1, MiB(4), MiB(128), MiB(2), RO, MiB(2));
	map(x, 1, GiB(1), GiB(3), GiB(1), WO, GiB(1));
	inval(x, 1, 0, 0);

	expect_pa(x, 0, 0x7abc, RW, PA(7) + 0xabc);
	t = xlate(x, 0, 0x7abc, RO);
	assert_int_equal(t.entry.iova, 0x7000);
	assert_int_equal(t.entry.addr_mask, KiB(4) - 1);
	assert_int_equal(t.entry.perm, RW);

	expect_pa(x, 0, MiB(5) + 0x123, RO, MiB(129) + 0x123);
	t = xlate(x, 0, MiB(5), RO);
	assert_int_equal(t.entry.iova, MiB(4));
	assert_int_equal(t.entry.addr_mask, MiB(2) - 1);
	assert_int_equal(t.entry.perm, RO);

	expect_pa(x, 0, GiB(1) + MiB(300), WO, GiB(3) + MiB(300));
	t = xlate(x, 0, GiB(1) + 5, WO);
	assert_int_equal(t.entry.addr_mask, GiB(1) - 1);
	assert_int_equal(t.entry.perm, WO);

	/* what was invalidated is also what the address space holds */
	assert_true(viommu_as_lookup(x->as[0], MiB(5), &e));
	assert_int_equal(e.iova, MiB(4));
	assert_int_equal(e.translated_addr, MiB(128));
	assert_int_equal(viommu_as_mapping_count(x->as[0]), 3);
	expect_no_record(x);
}

/* Root, context and paging entries written by hand, unit brought up. */
static void test_translate_raw(void **state)
{
	struct vt *x = *state;
	uint64_t root = raw_page(x), other = raw_page(x);

	raw_pte(x, root, 4, 0x3000, 1, PA(3) | PTE_RW);
	raw_pte(x, root, 4, MiB(6), 2, MiB(160) | PTE_PS | 1);
	raw_pte(x, root, 4, GiB(5), 3, GiB(7) | PTE_PS | 2);
	raw_bus(x, 0);
	raw_ctx(x, SID0, CTX_LO(root, 0, 0), CTX_HI(9, 2));
	raw_bus(x, 1);
	raw_ctx(x, SID2, CTX_LO(root, 0, 0), CTX_HI(9, 2));
	raw_up(x, 0, true);

	expect_pa(x, 0, 0x3008, RW, PA(3) + 8);
	expect_pa(x, 0, MiB(7), RO, MiB(161));
	expect_pa(x, 2, GiB(5) + 0x10, WO, GiB(7) + 0x10);
	assert_int_equal(xlate(x, 0, MiB(6), RO).entry.addr_mask, MiB(2) - 1);

	/*
	 * The root table pointer is latched by SRTP: a new RTADDR alone
	 * changes nothing, even across a context-cache invalidation.
	 */
	wr(x, R_RTADDR, 8, other);
	submit(x, D_CC(1, 0, 0, 0), 0);
	expect_pa(x, 0, 0x3000, RO, PA(3));
	gcmd_oneshot(x, SRTP);
	submit(x, D_CC(1, 0, 0, 0), 0);
	expect_dma_fault(x, 0, 0x3000, RO, VIOMMU_FAULT_NOT_PRESENT, 1);
	expect_no_record(x);
}

/*
 * The IOTLB: a guest that changes a present leaf without invalidating
 * keeps getting the old translation until it invalidates.
 */
static void test_iotlb_semantics(void **state)
{
	struct vt *x = *state;
	struct viommu_vtd_counters c0;
	struct viommu_entry e;

	domain(x, 1);
	attach(x, 0, 1);
	attach(x, 1, 1);
	map4k(x, 1, 0x1000, PA(1), RW);
	map4k(x, 1, 0x2000, PA(2), RW);
	inval(x, 1, 0, 0);
	listen(x, 0, 0, MAP | UNMAP);
	c0 = counters(x);

	expect_pa(x, 0, 0x1000, RW, PA(1));
	assert_int_equal(counters(x).iotlb_misses, c0.iotlb_misses + 1);
	assert_int_equal(counters(x).iotlb_hits, c0.iotlb_hits);
	expect_pa(x, 0, 0x1800, RW, PA(1) + 0x800);
	assert_int_equal(counters(x).iotlb_hits, c0.iotlb_hits + 1);
	/* the IOTLB is per domain: another device of the domain hits too */
	expect_pa(x, 1, 0x1000, RW, PA(1));
	assert_int_equal(counters(x).iotlb_hits, c0.iotlb_hits + 2);
	expect_pa(x, 0, 0x2000, RW, PA(2));
	assert_int_equal(counters(x).iotlb_misses, c0.iotlb_misses + 2);

	/* changed without invalidation: old translation, nothing heard */
	map4k(x, 1, 0x1000, PA(9), RO);
	expect_pa(x, 0, 0x1000, RW, PA(1));
	assert_int_equal(counters(x).iotlb_hits, c0.iotlb_hits + 3);
	assert_int_equal(x->rec->n, 0);
	assert_true(viommu_as_lookup(x->as[0], 0x1000, &e));
	assert_int_equal(e.translated_addr, PA(1));

	/* a page-selective invalidation elsewhere changes nothing */
	inval(x, 1, 0x2000, KiB(4));
	expect_pa(x, 0, 0x1000, RW, PA(1));
	assert_int_equal(counters(x).iotlb_hits, c0.iotlb_hits + 4);
	assert_int_equal(x->rec->n, 0);
	/* (it did drop 0x2000: cache it again) */
	expect_pa(x, 0, 0x2000, RW, PA(2));
	assert_int_equal(counters(x).iotlb_misses, c0.iotlb_misses + 3);

	inval(x, 1, 0x1000, KiB(4));
	assert_int_equal(x->rec->n, 2);
	assert_event(ev(x, 0), 0, UNMAP, 0x1000, KiB(4), PA(1), 0);
	assert_event(ev(x, 1), 0, MAP, 0x1000, KiB(4), PA(9), RO);
	c0 = counters(x);
	expect_pa(x, 0, 0x1000, RO, PA(9));
	assert_int_equal(counters(x).iotlb_misses, c0.iotlb_misses + 1);
	expect_dma_fault(x, 0, 0x1000, WO, VIOMMU_FAULT_PERMISSION,
			 VIOMMU_VTD_FR_WRITE);
	/* the neighbour stayed cached */
	expect_pa(x, 0, 0x2000, RW, PA(2));
	assert_int_equal(counters(x).iotlb_hits, c0.iotlb_hits + 2);
	expect_no_record(x);
}

/* With translation off, DMA goes straight to memory. */
static void test_te_off_identity(void **state)
{
	struct vt *x = *state;
	struct viommu_translation t;

	t = xlate(x, 0, 0x123456789, RW);
	assert_int_equal(t.fault, VIOMMU_FAULT_NONE);
	assert_int_equal(t.entry.translated_addr + (0x789), 0x123456789);
	assert_int_equal(t.entry.iova, 0x123456000);
	assert_int_equal(t.entry.perm, RW);

	/* on, with an empty root table: faults */
	raw_up(x, 0, true);
	expect_dma_fault(x, 0, 0x5000, RO, VIOMMU_FAULT_NOT_PRESENT, 1);
	/* off again: identity, no record */
	gcmd(x, TE, false);
	expect_pa(x, 0, 0x5000, RW, 0x5000);
	expect_pa(x, 3, UINT64_MAX, RO, UINT64_MAX);
	expect_no_record(x);
}

/* Translation off and on again, with a driver: translations come back. */
static void test_te_toggle(void **state)
{
	struct vt *x = *state;

	domain(x, 1);
	attach(x, 0, 1);
	map4k(x, 1, 0x1000, PA(1), RW);
	inval(x, 1, 0, 0);
	listen(x, 0, 0, MAP | UNMAP);
	gcmd(x, TE, false);
	expect_pa(x, 0, 0x1000, RW, 0x1000);
	gcmd(x, TE, true);
	expect_pa(x, 0, 0x1000, RW, PA(1));
	assert_int_equal(viommu_as_mapping_count(x->as[0]), 1);
	assert_int_equal(events_of(x, 0) % 2, 0); /* unmap-map pairs */
	expect_no_record(x);
}

/* ========================================================================
 * Fault reasons
 */

static void test_fault_root_not_present(void **state)
{
	struct vt *x = *state;

	raw_bus(x, 0);
	raw_up(x, 0, true);
	/* bus 1's root entry is not present */
	expect_dma_fault(x, 2, 0x5123, RO, VIOMMU_FAULT_NOT_PRESENT,
			 VIOMMU_VTD_FR_ROOT_NOT_PRESENT);
	expect_dma_fault(x, 2, 0x6000, WO, VIOMMU_FAULT_NOT_PRESENT,
			 VIOMMU_VTD_FR_ROOT_NOT_PRESENT);
	/* bus 0's context entry is not */
	expect_dma_fault(x, 0, 0x7000, RO, VIOMMU_FAULT_NOT_PRESENT,
			 VIOMMU_VTD_FR_CONTEXT_NOT_PRESENT);
	/* reserved bits of a present root entry */
	raw_root_entry(x, 1, RAW_CTX(1) | 1 | BIT(1), 0);
	submit(x, D_CC(1, 0, 0, 0), 0);
	expect_dma_fault(x, 2, 0x5000, RO, VIOMMU_FAULT_NOT_PRESENT,
			 VIOMMU_VTD_FR_ROOT_RESERVED);
	raw_root_entry(x, 1, RAW_CTX(1) | 1, 1);
	submit(x, D_CC(1, 0, 0, 0), 0);
	expect_dma_fault(x, 2, 0x5000, RO, VIOMMU_FAULT_NOT_PRESENT,
			 VIOMMU_VTD_FR_ROOT_RESERVED);
	/* a context table outside RAM */
	raw_root_entry(x, 1, GiB(2) | 1, 0);
	submit(x, D_CC(1, 0, 0, 0), 0);
	expect_dma_fault(x, 2, 0x5000, RO, VIOMMU_FAULT_NOT_PRESENT,
			 VIOMMU_VTD_FR_CONTEXT_TABLE_INVALID);
	expect_no_record(x);
}

/* Context entries the unit cannot use: reason 3. */
static void test_fault_context_invalid(void **state)
{
	static const struct {
		const char *what;
		unsigned tt, awf;
	} bad[] = {
		{ "AW 30 bits", 0, 0 },	  { "AW 57 on a 48-bit unit", 0, 3 },
		{ "AW 4", 0, 4 },	  { "AW 7", 0, 7 },
		{ "pass-through", 2, 2 }, { "TT 1 without device-TLB", 1, 2 },
		{ "TT 3", 3, 2 },
	};
	struct vt *x = *state;
	uint64_t root = raw_table(x, 0x1000, PA(1));
	size_t i;

	raw_bus(x, 0);
	raw_up(x, 0, true);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct viommu_translation t;

		raw_ctx(x, SID0, CTX_LO(root, bad[i].tt, 0),
			CTX_HI(1, bad[i].awf));
		submit(x, D_CC(3, 0, SID0, 0), 0);
		t = xlate(x, 0, 0x1000, RO);
		if (t.fault != VIOMMU_FAULT_NOT_PRESENT)
			fail_msg("%s: translated", bad[i].what);
		expect_record(x, SID0, 0x1000, VIOMMU_VTD_FR_CONTEXT_INVALID,
			      false);
	}
	/* the sane entry translates, and a 39-bit domain stops at 2^39 */
	raw_ctx(x, SID0, CTX_LO(root, 0, 0), CTX_HI(1, 2));
	submit(x, D_CC(3, 0, SID0, 0), 0);
	expect_pa(x, 0, 0x1000, RO, PA(1));
	root = raw_page(x);
	raw_pte(x, root, 3, 0x1000, 1, PA(2) | PTE_RW);
	raw_ctx(x, SID0, CTX_LO(root, 0, 0), CTX_HI(2, 1));
	submit(x, D_CC(3, 0, SID0, 0), 0);
	expect_pa(x, 0, 0x1000, RO, PA(2));
	expect_dma_fault(x, 0, BIT(39), RO, VIOMMU_FAULT_OUT_OF_RANGE,
			 VIOMMU_VTD_FR_ADDR_BEYOND_MGAW);
	expect_no_record(x);
}

/* Translation type 1 (device-TLBs) is valid when the unit reports DT. */
static void test_context_tt1_with_dt(void **state)
{
	struct vt *x = *state;
	uint64_t root = raw_table(x, 0x1000, PA(1));

	raw_bus(x, 0);
	raw_ctx(x, SID0, CTX_LO(root, 1, 0), CTX_HI(1, 2));
	raw_up(x, 0, true);
	expect_pa(x, 0, 0x1000, RO, PA(1));
	/* and the TM bit of a leaf is no longer reserved */
	raw_pte(x, root, 4, 0x2000, 1, PA(2) | PTE_RW | PTE_TM);
	expect_pa(x, 0, 0x2000, RO, PA(2));
	expect_no_record(x);
}

static void test_fault_context_reserved(void **state)
{
	static const struct {
		const char *what;
		uint64_t lo, hi;
	} bad[] = {
		{ "lo bit 4", BIT(4), 0 },
		{ "lo bit 11", BIT(11), 0 },
		{ "table beyond the address width", BIT(50), 0 },
		{ "hi bit 7", 0, BIT(7) },
		{ "hi bit 24", 0, BIT(24) },
		{ "hi bit 63", 0, BIT(63) },
	};
	struct vt *x = *state;
	uint64_t root = raw_table(x, 0x1000, PA(1));
	size_t i;

	raw_bus(x, 0);
	raw_up(x, 0, true);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct viommu_translation t;

		raw_ctx(x, SID0, CTX_LO(root, 0, 0) | bad[i].lo,
			CTX_HI(1, 2) | bad[i].hi);
		submit(x, D_CC(3, 0, SID0, 0), 0);
		t = xlate(x, 0, 0x1000, WO);
		if (t.fault != VIOMMU_FAULT_NOT_PRESENT)
			fail_msg("%s: translated", bad[i].what);
		expect_record(x, SID0, 0x1000, VIOMMU_VTD_FR_CONTEXT_RESERVED,
			      true);
	}
	/* bits 6:3 of the upper half are available to software */
	raw_ctx(x, SID0, CTX_LO(root, 0, 0), CTX_HI(1, 2) | 0x78);
	submit(x, D_CC(3, 0, SID0, 0), 0);
	expect_pa(x, 0, 0x1000, RO, PA(1));
	expect_no_record(x);
}

static void test_fault_beyond_mgaw(void **state)
{
	struct vt *x = *state;

	domain(x, 1);
	attach(x, 0, 1);
	map4k(x, 1, BIT(48) - KiB(4), PA(1), RW);
	inval(x, 1, 0, 0);
	expect_pa(x, 0, BIT(48) - 1, RO, PA(1) + 0xfff);
	expect_dma_fault(x, 0, BIT(48), RO, VIOMMU_FAULT_OUT_OF_RANGE,
			 VIOMMU_VTD_FR_ADDR_BEYOND_MGAW);
	expect_dma_fault(x, 0, UINT64_MAX, WO, VIOMMU_FAULT_OUT_OF_RANGE,
			 VIOMMU_VTD_FR_ADDR_BEYOND_MGAW);
	expect_no_record(x);
}

static void test_fault_permissions(void **state)
{
	struct vt *x = *state;

	domain(x, 1);
	attach(x, 0, 1);
	map4k(x, 1, 0x1000, PA(1), RO);
	map4k(x, 1, 0x2000, PA(2), WO);
	inval(x, 1, 0, 0);

	expect_pa(x, 0, 0x1000, RO, PA(1));
	expect_pa(x, 0, 0x2000, WO, PA(2));
	expect_no_record(x);
	/* write to read-only: reason 5, a write */
	expect_dma_fault(x, 0, 0x1010, WO, VIOMMU_FAULT_PERMISSION,
			 VIOMMU_VTD_FR_WRITE);
	expect_dma_fault(x, 0, 0x1010, RW, VIOMMU_FAULT_PERMISSION,
			 VIOMMU_VTD_FR_WRITE);
	/* read of write-only: reason 6, a read */
	expect_dma_fault(x, 0, 0x2020, RO, VIOMMU_FAULT_PERMISSION,
			 VIOMMU_VTD_FR_READ);
	/* not mapped: a paging entry without R (or W) */
	expect_dma_fault(x, 0, 0x3000, RO, VIOMMU_FAULT_NOT_PRESENT,
			 VIOMMU_VTD_FR_READ);
	expect_dma_fault(x, 0, GiB(200), WO, VIOMMU_FAULT_NOT_PRESENT,
			 VIOMMU_VTD_FR_WRITE);
	expect_no_record(x);
}

/* Reserved bits met by a DMA (the guest has not invalidated yet). */
static void test_fault_reserved_pte(void **state)
{
	struct vt *x = *state;

	domain(x, 1);
	attach(x, 0, 1);
	map4k(x, 1, 0x1000, PA(1), RW);
	inval(x, 1, 0, 0);

	write_pte(x, 1, 0x2000, 1, PA(2) | PTE_RW | PTE_SNP, false, 1);
	expect_dma_fault(x, 0, 0x2000, RO, VIOMMU_FAULT_RESERVED,
			 VIOMMU_VTD_FR_PAGING_RESERVED);
	write_pte(x, 1, 0x3000, 1, PA(3) | PTE_RW | PTE_TM, false, 1);
	expect_dma_fault(x, 0, 0x3000, WO, VIOMMU_FAULT_RESERVED,
			 VIOMMU_VTD_FR_PAGING_RESERVED);
	/* address bits beyond the 48-bit width */
	write_pte(x, 1, 0x4000, 1, BIT(49) | PTE_RW, false, 1);
	expect_dma_fault(x, 0, 0x4000, RO, VIOMMU_FAULT_RESERVED,
			 VIOMMU_VTD_FR_PAGING_RESERVED);
	/* PS is reserved at level 4 */
	write_pte(x, 1, GiB(512), 4, MiB(300) | PTE_RW | PTE_PS, false, 1);
	expect_dma_fault(x, 0, GiB(512) + 0x5000, RO, VIOMMU_FAULT_RESERVED,
			 VIOMMU_VTD_FR_PAGING_RESERVED);
	/* an unaligned 2M superpage */
	write_pte(x, 1, MiB(8), 2, (MiB(10) + KiB(4)) | PTE_RW | PTE_PS, false,
		  1);
	expect_dma_fault(x, 0, MiB(8), RO, VIOMMU_FAULT_RESERVED,
			 VIOMMU_VTD_FR_PAGING_RESERVED);
	/* the rest of the tables still translate */
	expect_pa(x, 0, 0x1000, RW, PA(1));
	expect_no_record(x);
}

static void test_fault_table_outside_ram(void **state)
{
	struct vt *x = *state;

	domain(x, 1);
	attach(x, 0, 1);
	map4k(x, 1, 0x1000, PA(1), RW);
	write_pte(x, 1, GiB(8), 2, GiB(4) | PTE_RW, false, 1);
	expect_dma_fault(x, 0, GiB(8) + 0x3000, RO, VIOMMU_FAULT_BAD_TABLE,
			 VIOMMU_VTD_FR_PAGING_ENTRY_INVALID);
	expect_pa(x, 0, 0x1000, RW, PA(1));
	expect_no_record(x);
}

/* FPD: the context says "do not record my faults". */
static void test_fpd(void **state)
{
	struct vt *x = *state;
	uint64_t root = raw_table(x, 0x1000, PA(1));

	raw_pte(x, root, 4, 0x2000, 1, PA(2) | 1);
	raw_bus(x, 0);
	raw_ctx(x, SID0, CTX_LO(root, 0, 1), CTX_HI(1, 2));
	raw_ctx(x, SID1, CTX_LO(root, 0, 0), CTX_HI(1, 2));
	raw_up(x, 0, true);

	expect_pa(x, 0, 0x1000, RW, PA(1));
	assert_int_equal(xlate(x, 0, 0x5000, RO).fault,
			 VIOMMU_FAULT_NOT_PRESENT);
	assert_int_equal(xlate(x, 0, 0x2000, WO).fault,
			 VIOMMU_FAULT_PERMISSION);
	assert_int_equal(xlate(x, 0, BIT(48), RO).fault,
			 VIOMMU_FAULT_OUT_OF_RANGE);
	expect_no_record(x);
	assert_int_equal(counters(x).faults_recorded, 0);
	/* the same table without FPD records */
	expect_dma_fault(x, 1, 0x2000, WO, VIOMMU_FAULT_PERMISSION,
			 VIOMMU_VTD_FR_WRITE);
}

/* ========================================================================
 * Notifications
 */

/* Caching mode: a map is heard at the invalidation that follows it. */
static void test_cm_map_after_invalidation(void **state)
{
	struct vt *x = *state;
	struct viommu_entry e;

	domain(x, 1);
	listen(x, 0, 0, MAP | UNMAP);
	attach(x, 0, 1);
	assert_int_equal(x->rec->n, 0);

	map4k(x, 1, 0x1000, PA(1), RW);
	assert_int_equal(x->rec->n, 0);
	assert_false(viommu_as_lookup(x->as[0], 0x1000, &e));
	inval(x, 1, 0x1000, KiB(4));
	assert_int_equal(x->rec->n, 1);
	assert_event(ev(x, 0), 0, MAP, 0x1000, KiB(4), PA(1), RW);
	assert_true(viommu_as_lookup(x->as[0], 0x1000, &e));

	map(x, 1, MiB(2), MiB(128), MiB(2), RO, MiB(2));
	assert_int_equal(x->rec->n, 1);
	inval(x, 1, 0, 0);
	assert_int_equal(x->rec->n, 2);
	assert_event(ev(x, 1), 0, MAP, MiB(2), MiB(2), MiB(128), RO);

	/* invalidating again what did not change: nothing */
	inval(x, 1, 0, 0);
	inval(x, 1, MiB(2), MiB(2));
	assert_int_equal(viommu_vtd_driver_invalidate_global(x->drv, NULL), 0);
	assert_int_equal(x->rec->n, 2);
}

static void test_cm_unmap_after_invalidation(void **state)
{
	struct vt *x = *state;
	size_t i;

	domain(x, 1);
	attach(x, 0, 1);
	map4k(x, 1, 0x1000, PA(1), RW);
	map(x, 1, MiB(2), MiB(128), MiB(2), RW, MiB(2));
	inval(x, 1, 0, 0);
	listen(x, 0, 0, MAP | UNMAP);

	unmap(x, 1, 0x1000, KiB(4));
	assert_int_equal(x->rec->n, 0);
	inval(x, 1, 0x1000, KiB(4));
	assert_int_equal(x->rec->n, 1);
	assert_event(ev(x, 0), 0, UNMAP, 0x1000, KiB(4), PA(1), 0);

	/*
	 * A hole in the 2M page: the guest splits it; the shadow hears the
	 * whole 2M go, then the 511 pages that stay.
	 */
	unmap(x, 1, MiB(2) + KiB(4), KiB(4));
	assert_int_equal(x->rec->n, 1);
	inval(x, 1, MiB(2) + KiB(4), KiB(4));
	assert_int_equal(x->rec->n, 2 + 511);
	assert_event(ev(x, 1), 0, UNMAP, MiB(2), MiB(2), MiB(128), 0);
	for (i = 0; i < 511; i++) {
		uint64_t page = i == 0 ? 0 : i + 1;

		assert_event(ev(x, 2 + i), 0, MAP, MiB(2) + KiB(4) * page,
			     KiB(4), MiB(128) + KiB(4) * page, RW);
	}
	assert_int_equal(viommu_as_mapping_count(x->as[0]), 511);
}

/* A new target or permission: unmap of the old, then map of the new. */
static void test_cm_retarget(void **state)
{
	struct vt *x = *state;

	domain(x, 1);
	attach(x, 0, 1);
	listen(x, 0, 0, MAP | UNMAP);
	map4k(x, 1, 0x5000, PA(5), RW);
	inval(x, 1, 0x5000, KiB(4));
	map4k(x, 1, 0x5000, PA(6), RW);
	assert_int_equal(x->rec->n, 1);
	inval(x, 1, 0x5000, KiB(4));
	assert_int_equal(x->rec->n, 3);
	assert_event(ev(x, 1), 0, UNMAP, 0x5000, KiB(4), PA(5), 0);
	assert_event(ev(x, 2), 0, MAP, 0x5000, KiB(4), PA(6), RW);

	map4k(x, 1, 0x5000, PA(6), RO);
	inval(x, 1, 0, 0);
	assert_int_equal(x->rec->n, 5);
	assert_event(ev(x, 3), 0, UNMAP, 0x5000, KiB(4), PA(6), 0);
	assert_event(ev(x, 4), 0, MAP, 0x5000, KiB(4), PA(6), RO);
}

/* Without caching mode, maps cannot be reported: say so, and how. */
static void test_nocm_map_refused(void **state)
{
	struct vt *x = *state;
	struct viommu_notifier_config cfg;
	struct viommu_notifier *h;
	struct viommu_error err = { 0 };
	unsigned flags[] = { MAP, MAP | UNMAP, VIOMMU_NOTIFY_ALL };
	size_t i;

	x->c[0].rec = x->rec;
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		viommu_notifier_config_init(&cfg, flags[i], rec_notify,
					    &x->c[0]);
		memset(&err, 0, sizeof(err));
		assert_int_equal(viommu_notifier_register(x->as[0], &cfg, &h,
							  &err),
				 -ENOTSUP);
		assert_int_equal(err.code, -ENOTSUP);
		assert_non_null(strstr(err.message, "dev0"));
		assert_non_null(strstr(err.message, "caching-mode=on"));
	}
	assert_int_equal(viommu_as_notify_flags(x->as[0]), 0);
	/* unmap-only is fine */
	listen(x, 0, 1, UNMAP);
	assert_int_equal(viommu_as_notify_flags(x->as[0]), UNMAP);
	viommu_notifier_config_init(&cfg, MAP, rec_notify, &x->c[0]);
	assert_int_equal(viommu_notifier_register(x->as[0], &cfg, &h, NULL),
			 -ENOTSUP);
	assert_int_equal(viommu_as_notify_flags(x->as[0]), UNMAP);
}

/*
 * Without caching mode the guest maps without invalidating, so a device
 * may hold translations the library never saw: an unmap-only consumer is
 * told the whole invalidated range.
 */
static void test_nocm_unmap_only_wide(void **state)
{
	struct vt *x = *state;
	size_t n;
	unsigned i;

	domain(x, 1);
	attach(x, 0, 1);
	listen(x, 0, 0, UNMAP);
	for (i = 0; i < 4; i++)
		map4k(x, 1, 0x10000 + KiB(4) * i, PA(i), RW);
	/* never invalidated-in, yet the device translates and caches */
	expect_pa(x, 0, 0x11000, RO, PA(1));
	assert_int_equal(x->rec->n, 0);

	unmap(x, 1, 0x11000, KiB(4));
	inval(x, 1, 0x10000, KiB(64));
	expect_tiling(x, 0, 0, UNMAP, 0x10000, 0x1ffff);
	n = x->rec->n;
	/* nothing changed, the guest invalidates again: told again */
	inval(x, 1, 0x10000, KiB(64));
	assert_true(x->rec->n > n);
	expect_tiling(x, n, 0, UNMAP, 0x10000, 0x1ffff);
	n = x->rec->n;
	/* a domain invalidation: everything */
	inval(x, 1, 0, 0);
	expect_tiling(x, n, 0, UNMAP, 0, UINT64_MAX);
	expect_pa(x, 0, 0x12000, RO, PA(2));
	expect_no_record(x);
}

/* Device-IOTLB notifiers need a unit that reports device-IOTLBs. */
static void test_devtlb_notifier_refused(void **state)
{
	struct vt *x = *state;
	struct viommu_notifier_config cfg;
	struct viommu_notifier *h;
	struct viommu_error err = { 0 };

	x->c[0].rec = x->rec;
	viommu_notifier_config_init(&cfg, DEVTLB | UNMAP, rec_notify, &x->c[0]);
	assert_int_equal(viommu_notifier_register(x->as[2], &cfg, &h, &err),
			 -ENOTSUP);
	assert_non_null(strstr(err.message, "dev2"));
	assert_non_null(strstr(err.message, "device-iotlb=on"));
	assert_int_equal(viommu_as_notify_flags(x->as[2]), 0);
}

/* Two devices of one domain both hear its invalidations; others don't. */
static void test_shared_domain(void **state)
{
	struct vt *x = *state;

	domain(x, 1);
	domain(x, 2);
	attach(x, 0, 1);
	attach(x, 1, 1);
	attach(x, 2, 2);
	listen(x, 0, 0, MAP | UNMAP);
	listen(x, 1, 1, MAP | UNMAP);
	listen(x, 2, 2, MAP | UNMAP);
	map4k(x, 1, 0x1000, PA(1), RW);
	map4k(x, 1, 0x2000, PA(2), RO);
	inval(x, 1, 0, 0);
	assert_int_equal(events_of(x, 0), 2);
	assert_int_equal(events_of(x, 1), 2);
	assert_int_equal(events_of(x, 2), 0);
	assert_event(ev(x, 0), 0, MAP, 0x1000, KiB(4), PA(1), RW);
	assert_event(ev(x, 1), 0, MAP, 0x2000, KiB(4), PA(2), RO);
	assert_event(ev(x, 2), 1, MAP, 0x1000, KiB(4), PA(1), RW);
	assert_event(ev(x, 3), 1, MAP, 0x2000, KiB(4), PA(2), RO);

	unmap(x, 1, 0x2000, KiB(4));
	inval(x, 1, 0x2000, KiB(4));
	assert_int_equal(x->rec->n, 6);
	assert_event(ev(x, 4), 0, UNMAP, 0x2000, KiB(4), PA(2), 0);
	assert_event(ev(x, 5), 1, UNMAP, 0x2000, KiB(4), PA(2), 0);
	assert_int_equal(viommu_as_mapping_count(x->as[2]), 0);
}

/* A context change: the old domain's mappings go, the new one's come. */
static void test_attach_other_domain(void **state)
{
	struct vt *x = *state;
	struct viommu_vtd_counters c0;

	domain(x, 1);
	domain(x, 2);
	attach(x, 0, 1);
	map4k(x, 1, 0x1000, PA(1), RW);
	map4k(x, 1, 0x2000, PA(2), RW);
	map4k(x, 2, 0x1000, PA(9), RW);
	map4k(x, 2, 0x3000, PA(3), RO);
	inval(x, 1, 0, 0);
	inval(x, 2, 0, 0);
	listen(x, 0, 0, MAP | UNMAP);
	assert_int_equal(x->rec->n, 0);
	c0 = counters(x);

	attach(x, 0, 2);
	assert_int_equal(x->rec->n, 4);
	assert_event(ev(x, 0), 0, UNMAP, 0x1000, KiB(4), PA(1), 0);
	assert_event(ev(x, 1), 0, MAP, 0x1000, KiB(4), PA(9), RW);
	assert_event(ev(x, 2), 0, UNMAP, 0x2000, KiB(4), PA(2), 0);
	assert_event(ev(x, 3), 0, MAP, 0x3000, KiB(4), PA(3), RO);
	assert_int_equal(counters(x).context_invalidations,
			 c0.context_invalidations + 1);
	expect_pa(x, 0, 0x1000, RO, PA(9));
	expect_dma_fault(x, 0, 0x2000, RO, VIOMMU_FAULT_NOT_PRESENT,
			 VIOMMU_VTD_FR_READ);
	/* domain 1's invalidations no longer concern it */
	map4k(x, 1, 0x4000, PA(4), RW);
	inval(x, 1, 0, 0);
	assert_int_equal(x->rec->n, 4);
}

static void test_detach(void **state)
{
	struct vt *x = *state;

	domain(x, 1);
	attach(x, 0, 1);
	map4k(x, 1, 0x1000, PA(1), RW);
	map(x, 1, MiB(2), MiB(128), MiB(2), RW, MiB(2));
	inval(x, 1, 0, 0);
	listen(x, 0, 0, MAP | UNMAP);
	assert_int_equal(viommu_vtd_driver_detach(x->drv, SID0, NULL), 0);
	assert_int_equal(x->rec->n, 2);
	assert_event(ev(x, 0), 0, UNMAP, 0x1000, KiB(4), PA(1), 0);
	assert_event(ev(x, 1), 0, UNMAP, MiB(2), MiB(2), MiB(128), 0);
	assert_int_equal(viommu_as_mapping_count(x->as[0]), 0);
	expect_dma_fault(x, 0, 0x1000, RO, VIOMMU_FAULT_NOT_PRESENT,
			 VIOMMU_VTD_FR_CONTEXT_NOT_PRESENT);
	assert_int_equal(viommu_vtd_driver_detach(x->drv, SID0, NULL), -ENOENT);
}

/*
 * A consumer that refuses a map (a full host backend): the change is
 * undone and the fault handler told why, but the device is not faulted
 * (its tables are fine), and the next invalidation tries again.
 */
static void test_refused_map_reported(void **state)
{
	struct vt *x = *state;
	struct viommu_vtd_counters c0 = counters(x);

	domain(x, 1);
	attach(x, 0, 1);
	listen(x, 0, 0, MAP | UNMAP);
	x->rec->fail_map_at = 1;
	map4k(x, 1, 0x1000, PA(1), RW);
	inval(x, 1, 0, 0);
	assert_int_equal(x->rec->n, 0);
	assert_int_equal(viommu_as_mapping_count(x->as[0]), 0);
	assert_int_equal(x->faults_heard, 1);
	assert_ptr_equal(x->fault_as, x->as[0]);
	assert_true(strlen(x->fault_msg) > 0);
	assert_int_equal(counters(x).walk_faults, c0.walk_faults);
	assert_int_equal(counters(x).budget_exceeded, c0.budget_exceeded);
	assert_int_equal(counters(x).consumer_refusals,
			 c0.consumer_refusals + 1);
	/*
	 * An invalidation cannot fail: the device is faulted instead, so
	 * what the consumer refused is not usable either (a device IOTLB
	 * must not cache it) until an invalidation syncs it whole again.
	 */
	expect_dma_fault(x, 0, 0x1000, RW, VIOMMU_FAULT_NOT_PRESENT,
			 VIOMMU_VTD_FR_PAGING_ENTRY_INVALID);

	inval(x, 1, 0x1000, KiB(4));
	assert_int_equal(x->rec->n, 1);
	assert_event(ev(x, 0), 0, MAP, 0x1000, KiB(4), PA(1), RW);
	assert_int_equal(x->faults_heard, 1);
	expect_pa(x, 0, 0x1000, RW, PA(1));
}

/* What a callback may do while the unit delivers: read, translate. */
struct probe {
	struct vt *x;
	unsigned calls;
	uint64_t gsts;
	struct viommu_translation hit, miss;
};

static int probe_notify(struct viommu_notifier *n, const struct viommu_event *e,
			void *opaque)
{
	struct probe *p = opaque;

	p->calls++;
	assert_int_equal(viommu_vtd_mmio_read(p->x->vtd, R_GSTS, 4, &p->gsts),
			 0);
	assert_int_equal(viommu_as_translate(p->x->as[0], e->entry.iova,
					     VIOMMU_PERM_READ, &p->hit),
			 0);
	/* a faulting DMA is recorded under the unit's (recursive) lock */
	assert_int_equal(viommu_as_translate(p->x->as[0], GiB(100),
					     VIOMMU_PERM_READ, &p->miss),
			 0);
	return 0;
}

static void test_callback_reads_and_translates(void **state)
{
	struct vt *x = *state;
	struct viommu_notifier_config cfg;
	struct viommu_notifier *h;
	struct probe p = { .x = x };

	domain(x, 1);
	attach(x, 0, 1);
	viommu_notifier_config_init(&cfg, MAP, probe_notify, &p);
	assert_int_equal(viommu_notifier_register(x->as[0], &cfg, &h, NULL), 0);
	map4k(x, 1, 0x1000, PA(1), RW);
	inval(x, 1, 0x1000, KiB(4));
	assert_int_equal(p.calls, 1);
	assert_true(p.gsts & TE);
	assert_int_equal(p.hit.fault, VIOMMU_FAULT_NONE);
	assert_int_equal(p.hit.entry.translated_addr, PA(1));
	assert_int_equal(p.miss.fault, VIOMMU_FAULT_NOT_PRESENT);
	expect_record(x, SID0, GiB(100), VIOMMU_VTD_FR_READ, false);
	viommu_notifier_unregister(h);
}

/* ========================================================================
 * Hostile guests
 */

/* Common to the three: @dev0 in domain 1 with two mappings, heard. */
static void hostile_start(struct vt *x)
{
	domain(x, 1);
	attach(x, 0, 1);
	listen(x, 0, 0, MAP | UNMAP);
	map4k(x, 1, 0x1000, PA(1), RW);
	map(x, 1, MiB(2), MiB(128), MiB(2), RO, MiB(2));
	inval(x, 1, 0, 0);
	assert_int_equal(x->rec->n, 2);
	x->rec->n = 0;
}

/* The device is faulted: told to drop everything, and every DMA faults. */
static void expect_faulted(struct vt *x, const char *why)
{
	assert_int_equal(x->rec->n, 2);
	assert_event(ev(x, 0), 0, UNMAP, 0x1000, KiB(4), PA(1), 0);
	assert_event(ev(x, 1), 0, UNMAP, MiB(2), MiB(2), MiB(128), 0);
	assert_int_equal(viommu_as_mapping_count(x->as[0]), 0);
	assert_int_equal(x->faults_heard, 1);
	assert_ptr_equal(x->fault_as, x->as[0]);
	if (!strstr(x->fault_msg, why))
		fail_msg("fault message \"%s\" does not say \"%s\"",
			 x->fault_msg, why);
	expect_dma_fault(x, 0, 0x1000, RO, VIOMMU_FAULT_NOT_PRESENT,
			 VIOMMU_VTD_FR_PAGING_ENTRY_INVALID);
	expect_dma_fault(x, 0, MiB(3), WO, VIOMMU_FAULT_NOT_PRESENT,
			 VIOMMU_VTD_FR_PAGING_ENTRY_INVALID);
}

/* Repaired and invalidated: the maps are heard again, DMA translates. */
static void expect_recovered(struct vt *x, size_t first)
{
	assert_int_equal(x->rec->n, first + 2);
	assert_event(ev(x, first), 0, MAP, 0x1000, KiB(4), PA(1), RW);
	assert_event(ev(x, first + 1), 0, MAP, MiB(2), MiB(2), MiB(128), RO);
	expect_pa(x, 0, 0x1000, RW, PA(1));
	expect_pa(x, 0, MiB(3), RO, MiB(129));
	expect_no_record(x);
}

static void test_hostile_self_pointing(void **state)
{
	struct vt *x = *state;
	struct viommu_vtd_counters c0;

	hostile_start(x);
	/* tables whose 512 entries all point at themselves, at 3 levels */
	write_pte(x, 1, GiB(16), 1, 0, true, 512);
	write_pte(x, 1, GiB(8), 2, 0, true, 512);
	write_pte(x, 1, GiB(512), 3, 0, true, 512);
	/* nothing happens until the guest invalidates */
	expect_pa(x, 0, 0x1000, RW, PA(1));
	assert_int_equal(x->rec->n, 0);
	c0 = counters(x);

	inval(x, 1, 0, 0);
	assert_int_equal(counters(x).budget_exceeded, c0.budget_exceeded + 1);
	assert_int_equal(counters(x).walk_faults, c0.walk_faults);
	expect_faulted(x, "budget");

	/* still hostile: an invalidation elsewhere keeps it faulted */
	inval(x, 1, GiB(100), KiB(4));
	assert_int_equal(counters(x).budget_exceeded, c0.budget_exceeded + 2);
	assert_int_equal(x->faults_heard, 2);
	assert_int_equal(x->rec->n, 2);

	/* the guest repairs its tables and invalidates: recovered */
	unmap(x, 1, GiB(16), MiB(2));
	unmap(x, 1, GiB(8), GiB(1));
	unmap(x, 1, GiB(512), GiB(512));
	inval(x, 1, 0, 0);
	expect_recovered(x, 2);
	assert_int_equal(x->faults_heard, 2);
	assert_int_equal(counters(x).budget_exceeded, c0.budget_exceeded + 2);
	/* and the IOTLB serves the device again (the 2M leaf, cached last) */
	c0 = counters(x);
	expect_pa(x, 0, MiB(2), RO, MiB(128));
	assert_int_equal(counters(x).iotlb_hits, c0.iotlb_hits + 1);
}

static void test_hostile_reserved_leaf(void **state)
{
	struct vt *x = *state;
	struct viommu_vtd_counters c0;

	hostile_start(x);
	c0 = counters(x);
	write_pte(x, 1, 0x5000, 1, PA(5) | PTE_RW | PTE_SNP, false, 1);
	/* even a page-selective invalidation faults the whole device */
	inval(x, 1, 0x5000, KiB(4));
	assert_int_equal(counters(x).walk_faults, c0.walk_faults + 1);
	assert_int_equal(counters(x).budget_exceeded, c0.budget_exceeded);
	expect_faulted(x, "reserved");

	write_pte(x, 1, 0x5000, 1, 0, false, 1);
	inval(x, 1, 0x5000, KiB(4));
	expect_recovered(x, 2);
	assert_int_equal(counters(x).walk_faults, c0.walk_faults + 1);
}

static void test_hostile_table_outside_ram(void **state)
{
	struct vt *x = *state;
	struct viommu_vtd_counters c0;

	hostile_start(x);
	c0 = counters(x);
	write_pte(x, 1, GiB(8), 2, GiB(4) | PTE_RW, false, 1);
	inval(x, 1, 0, 0);
	assert_int_equal(counters(x).walk_faults, c0.walk_faults + 1);
	expect_faulted(x, "not in guest RAM");

	write_pte(x, 1, GiB(8), 2, 0, false, 1);
	inval(x, 1, 0, 0);
	expect_recovered(x, 2);
}

/* ========================================================================
 * Address widths
 */

static void test_aw57(void **state)
{
	struct vt *x = *state;

	assert_int_equal((rd(x, R_CAP, 8) >> 16 & 0x3f) + 1, 57);
	domain(x, 1);
	attach(x, 0, 1);
	listen(x, 0, 0, MAP | UNMAP);
	map4k(x, 1, BIT(56) | 0x1000, PA(1), RW);
	map(x, 1, BIT(55), GiB(2), GiB(1), RO, GiB(1));
	map4k(x, 1, 0x1000, PA(2), RW);
	inval(x, 1, 0, 0);
	assert_int_equal(x->rec->n, 3);
	assert_event(ev(x, 0), 0, MAP, 0x1000, KiB(4), PA(2), RW);
	assert_event(ev(x, 1), 0, MAP, BIT(55), GiB(1), GiB(2), RO);
	assert_event(ev(x, 2), 0, MAP, BIT(56) | 0x1000, KiB(4), PA(1), RW);
	/* five levels: the indexes above bit 48 matter */
	expect_pa(x, 0, BIT(56) | 0x1234, RW, PA(1) + 0x234);
	expect_pa(x, 0, 0x1234, RW, PA(2) + 0x234);
	expect_pa(x, 0, BIT(55) + 7, RO, GiB(2) + 7);
	expect_dma_fault(x, 0, BIT(57) | 0x1000, RO, VIOMMU_FAULT_OUT_OF_RANGE,
			 VIOMMU_VTD_FR_ADDR_BEYOND_MGAW);
	unmap(x, 1, BIT(56), MiB(2));
	inval(x, 1, BIT(56), MiB(2));
	assert_int_equal(x->rec->n, 4);
	assert_event(ev(x, 3), 0, UNMAP, BIT(56) | 0x1000, KiB(4), PA(1), 0);
	expect_no_record(x);
}

static void test_aw39(void **state)
{
	struct vt *x = *state;

	domain(x, 1);
	attach(x, 0, 1);
	map4k(x, 1, BIT(39) - KiB(4), PA(1), RW);
	inval(x, 1, 0, 0);
	expect_pa(x, 0, BIT(39) - 1, RO, PA(1) + 0xfff);
	expect_dma_fault(x, 0, BIT(39), RO, VIOMMU_FAULT_OUT_OF_RANGE,
			 VIOMMU_VTD_FR_ADDR_BEYOND_MGAW);
	assert_int_equal(viommu_vtd_driver_map(x->drv, 1, BIT(39), PA(2),
					       KiB(4), RW, KiB(4), NULL),
			 -ERANGE);
	expect_no_record(x);
}

/* ========================================================================
 * Regressions: bugs found by this suite, fixed in the model
 */

/*
 * Was: CCMD.FM / the context-cache descriptor's FM masks the wrong bits.
 * The specification: FM 01 masks the most significant bit of the function
 * number (bit 2 of the SID), 10 the two most significant (bits 2:1), 11 all
 * three; it exists for phantom functions, which alias the high function
 * bits.  vtd_context_invalidate() masks the least significant bits
 * instead (FM 1: bit 0, FM 2: bits 1:0), so a device-selective
 * invalidation of 00:01.0 with FM 1 misses 00:01.4 and re-reads 00:01.1.
 */
static void test_regression_ccmd_function_mask(void **state)
{
	struct vt *x = *state;
	uint64_t root = raw_table(x, 0x1000, PA(1));

	raw_bus(x, 0);
	raw_up(x, 0, true);
	raw_ctx(x, SID0, CTX_LO(root, 0, 0), CTX_HI(1, 2));
	raw_ctx(x, SID3, CTX_LO(root, 0, 0), CTX_HI(1, 2));
	/* 00:01.0 with FM 1 covers 00:01.0 and 00:01.4 */
	submit(x, D_CC(3, 1, SID0, 1), 0);
	expect_pa(x, 0, 0x1000, RO, PA(1));
	expect_pa(x, 3, 0x1000, RO, PA(1));
}

/*
 * Was: without caching mode the unit caches not-present context entries.
 * CAP.CM = 0 promises the guest that not-present (and erroneous) entries
 * are never cached, so making an entry present needs no invalidation, and
 * Linux does none (domain_context_mapping_one() only flushes the write
 * buffer when !cap_caching_mode).  The model keeps the not-present context
 * read at TE enable (or at the detach) until a context-cache invalidation,
 * so after a detach and re-attach, or any attach after boot, every DMA of
 * the device faults with reason 2, and its IOTLB invalidations never reach
 * it.  Fix: when !caching_mode, re-read a cached context that is not
 * present (translate, and the device selection of IOTLB invalidations).
 */
static void test_regression_nocm_context_not_cached(void **state)
{
	struct vt *x = *state;
	uint64_t root = raw_table(x, 0x1000, PA(1));

	raw_bus(x, 0);
	raw_up(x, 0, true);
	listen(x, 0, 0, UNMAP);
	raw_ctx(x, SID0, CTX_LO(root, 0, 0), CTX_HI(1, 2));
	/* no invalidation: none is needed with CM = 0 */
	expect_pa(x, 0, 0x1000, RO, PA(1));
	submit(x, D_IOTLB(3, 1), 0x1000);
	expect_tiling(x, 0, 0, UNMAP, 0x1000, 0x1fff);
	expect_no_record(x);
}

/*
 * Was: the reserved-bit masks of a domain's paging entries take the
 * domain's width (the context's AGAW) for the host address width.  The
 * specification reserves bits 51:HAW of an entry's address, HAW being the
 * platform's host address width (here the unit's: min(aw, 52)); the AGAW
 * only bounds the IOVA.  set_context() passes the context's AW as the
 * walker's aw with haw 0, which viommu__vtd_pt_init() then takes as HAW, so
 * a 39-bit domain on a 48-bit unit faults (reserved) on every leaf or
 * table above 512 GiB of guest-physical memory: a large guest, or a 64-bit
 * BAR placed high.  Fix: set ptcfg.haw = min(aw, 52) in viommu_vtd_new().
 */
static void test_regression_haw_is_not_the_domain_width(void **state)
{
	struct vt *x = *state;
	uint64_t root = raw_page(x);

	raw_pte(x, root, 3, 0x1000, 1, BIT(40) | PTE_RW);
	raw_pte(x, root, 3, 0x2000, 1, PA(2) | PTE_RW);
	raw_bus(x, 0);
	raw_ctx(x, SID0, CTX_LO(root, 0, 0), CTX_HI(1, 1));
	raw_up(x, 0, true);
	expect_pa(x, 0, 0x1000, RO, BIT(40));
	/* (the walk at TE enable met the same "reserved" bits: all faulted) */
	assert_int_equal(x->faults_heard, 0);
	expect_pa(x, 0, 0x2000, RO, PA(2));
	expect_no_record(x);
}

/*
 * Was (performance only): the IOTLB hash ignored the level and all but the
 * low 4 bits of the domain id.  slot_of() multiplies (tag ^ did << 40 ^
 * level << 60) by a constant and takes bits 32..43 of the product; a
 * product's low bits depend only on the factor's low bits, so bits 44 and
 * up (the level, did bits 4 and up) never reach the index.  The 4K, 2M and
 * 1G leaves of the same tag, in domains whose ids agree in their low 4
 * bits, all share one slot and evict each other.  Here 48 leaves in 4096
 * slots keep only 8.  Fix: mix the whole key before taking the index, e.g.
 * the top bits of (tag * K1 ^ (did << 2 | level) * K2) after a xor-shift.
 */
static void test_regression_iotlb_hash_mixes_level_and_domain(void **state)
{
	static const uint64_t sizes[] = { KiB(4), MiB(2), GiB(1) };
	struct vt *x = *state;
	struct viommu_vtd_counters c0;
	unsigned d, l, t, pass;
	uint64_t hits;

	domain(x, 1);
	domain(x, 17);
	attach(x, 0, 1);
	attach(x, 1, 17);
	for (d = 0; d < 2; d++)
		for (l = 0; l < 3; l++)
			for (t = 1; t <= 8; t++)
				map(x, d ? 17 : 1, sizes[l] * t, GiB(64) * t,
				    sizes[l], RW, sizes[l]);
	for (pass = 0; pass < 2; pass++) {
		c0 = counters(x);
		for (d = 0; d < 2; d++)
			for (l = 0; l < 3; l++)
				for (t = 1; t <= 8; t++)
					expect_pa(x, d, sizes[l] * t, RO,
						  GiB(64) * t);
	}
	hits = counters(x).iotlb_hits - c0.iotlb_hits;
	/* a hash over the whole key collides about once in 4096 slots */
	if (hits < 44)
		fail_msg("only %llu of 48 cached leaves survived",
			 (unsigned long long)hits);
}

/*
 * Was: faults are recorded while FSTS.PFO is set.  The specification:
 * "When this field is Set, hardware does not record any new faults until
 * software clears this field."  vtd_record_fault() only looks at the F bit
 * of the next record, so once the guest frees a record it is filled again
 * while the overflow is still pending.
 */
static void test_regression_pfo_blocks_recording(void **state)
{
	struct vt *x = *state;
	unsigned i;

	domain(x, 1);
	attach(x, 0, 1);
	for (i = 0; i <= NFRCD; i++)
		xlate(x, 0, MiB(1) + KiB(4) * i, RO);
	assert_true(rd(x, R_FSTS, 4) & FSTS_PFO);
	assert_int_equal(counters(x).faults_recorded, NFRCD);
	wr(x, R_FRCD_HI(0), 8, FRCD_F);
	xlate(x, 0, MiB(3), RO);
	assert_false(rd(x, R_FRCD_HI(0), 8) & FRCD_F);
	assert_int_equal(counters(x).faults_recorded, NFRCD);
	/* once PFO is cleared, recording resumes */
	wr(x, R_FSTS, 4, FSTS_PFO);
	xlate(x, 0, MiB(4), RO);
	assert_true(rd(x, R_FRCD_HI(0), 8) & FRCD_F);
	assert_int_equal(rd(x, R_FRCD_LO(0), 8), MiB(4));
}

#define T(fn, setup) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* the register file */
		T(test_config_and_errors, setup_raw),
		T(test_cap_ecap, setup_raw),
		T(test_gcmd_gsts, setup_raw),
		T(test_rtaddr, setup_raw),
		T(test_unknown_offsets, setup_raw),
		T(test_ccmd, setup_raw),
		T(test_iotlb_registers, setup_cm),
		T(test_fsts_w1c, setup_cm),
		T(test_fault_records, setup_cm),
		/* queued invalidation */
		T(test_qi_context, setup_raw),
		T(test_qi_iotlb, setup_cm),
		T(test_qi_devtlb, setup_dt),
		T(test_qi_devtlb_needs_dt, setup_cm),
		T(test_qi_iec_wait, setup_cm),
		T(test_qi_malformed, setup_cm),
		T(test_qi_error_repeats, setup_cm),
		T(test_qi_wraparound, setup_cm),
		T(test_qi_tail_beyond_queue, setup_raw),
		T(test_qi_wait_outside_ram, setup_cm),
		T(test_qi_disabled, setup_raw),
		/* translation */
		T(test_translate_driver, setup_cm),
		T(test_translate_raw, setup_raw),
		T(test_iotlb_semantics, setup_cm),
		T(test_te_off_identity, setup_raw),
		T(test_te_toggle, setup_cm),
		/* fault reasons */
		T(test_fault_root_not_present, setup_raw),
		T(test_fault_context_invalid, setup_raw),
		T(test_context_tt1_with_dt, setup_raw_dt),
		T(test_fault_context_reserved, setup_raw),
		T(test_fault_beyond_mgaw, setup_cm),
		T(test_fault_permissions, setup_cm),
		T(test_fault_reserved_pte, setup_cm),
		T(test_fault_table_outside_ram, setup_cm),
		T(test_fpd, setup_raw),
		/* notifications */
		T(test_cm_map_after_invalidation, setup_cm),
		T(test_cm_unmap_after_invalidation, setup_cm),
		T(test_cm_retarget, setup_cm),
		T(test_nocm_map_refused, setup_nocm),
		T(test_nocm_unmap_only_wide, setup_nocm),
		T(test_devtlb_notifier_refused, setup_cm),
		T(test_shared_domain, setup_cm),
		T(test_attach_other_domain, setup_cm),
		T(test_detach, setup_cm),
		T(test_refused_map_reported, setup_cm),
		T(test_callback_reads_and_translates, setup_cm),
		/* hostile guests */
		T(test_hostile_self_pointing, setup_budget),
		T(test_hostile_reserved_leaf, setup_budget),
		T(test_hostile_table_outside_ram, setup_budget),
		/* address widths */
		T(test_aw57, setup_aw57),
		T(test_aw39, setup_aw39),
		/* regressions */
		T(test_regression_ccmd_function_mask, setup_raw),
		T(test_regression_nocm_context_not_cached, setup_raw_nocm),
		T(test_regression_pfo_blocks_recording, setup_cm),
		T(test_regression_haw_is_not_the_domain_width, setup_raw),
		T(test_regression_iotlb_hash_mixes_level_and_domain, setup_cm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
