/* SPDX-License-Identifier: MIT */
/*
 * Differential test of the whole library against a brute-force reference.
 *
 * A fake vIOMMU model keeps its "tables" as a page-indexed array of leaves
 * (naturally aligned powers of two of 4K and up, each with a target and
 * r/w/rw) for three address spaces.  A seeded random walk then plays the
 * guest and the consumers: leaves are mapped, unmapped, retargeted, split
 * and merged, and the model tells the library with viommu_as_sync() (through
 * its replay op on some address spaces, by stepping with translate on
 * another), viommu_as_update() or viommu_as_update_entry(), sometimes with
 * VIOMMU_UPDATE_WIDE_UNMAP, sometimes not at all (a pending change, picked
 * up by a later sync).  Notifiers come and go with random flags and random
 * byte-granular ranges, get replayed, refuse maps, and (un)register
 * notifiers from inside their callbacks; the model sometimes refuses MAP.
 *
 * After every step the reference checks each delivery rule of
 * scenario-format.md ("Delivery rules") page by page: it knows what is in
 * effect per page before and after the step (the model's leaves as of the
 * last sync or update that covered them), keeps every notifier's shadow as
 * the pieces it was told, and compares byte ranges where a notifier's range
 * cuts a page.  It is slow and simple on purpose.  It also checks what the
 * library holds (viommu_as_for_each_mapping, viommu_as_lookup, also from
 * inside callbacks), the union of flags the model is told, batch brackets,
 * -EBUSY from callbacks, and that malformed input changes nothing.
 *
 * Three walks, each a cmocka test: 4K pages in spaces of 4M and 8M; tiny
 * spaces where everything collides; and 2^53-byte pages in spaces of
 * 2^62, 2^63 and 2^64 bytes, for entries that end at UINT64_MAX.
 *
 * Environment:
 *   VIOMMU_TEST_SEED=N|random  the seed (default fixed, so CI repeats)
 *   VIOMMU_TEST_STEPS=N        steps of the first walk (default 200000);
 *                              the other two run a quarter of that each
 *   VIOMMU_TEST_QUICK=1        5000 steps (automatic under valgrind)
 *   VIOMMU_TEST_KEEP_GOING=1   report every violation, heal the reference
 *                              and go on, instead of stopping at the first
 *                              step that breaks a rule
 *   VIOMMU_TEST_NO_ROLLBACK_REFUSAL=1
 *                              never let a consumer that refused a map also
 *                              refuse the rollback's re-maps
 *   VIOMMU_TEST_LAX_LOOKUP=1
 *                              only count (do not fail) unmaps delivered
 *                              during a rollback whose entry
 *                              viommu_as_lookup() still finds
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <viommu/model.h>
#include <viommu/viommu.h>

#ifdef __has_include
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define MAP VIOMMU_NOTIFY_MAP
#define UNMAP VIOMMU_NOTIFY_UNMAP
#define DEVTLB VIOMMU_NOTIFY_DEVIOTLB_UNMAP
#define SHADOW (MAP | UNMAP)
#define RW VIOMMU_PERM_RW

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* a page of the current walk: 4K, or huge to reach 2^64 with few pages */
#define PG_SHIFT (g.shape->pg_shift)
#define PG_SIZE (UINT64_C(1) << PG_SHIFT)
#define MAX_LG 11 /* at most 2^11 pages in an address space */
#define N_AS 3
#define MAIN_LIVE_MAX 10 /* notifiers the main loop keeps per space... */
#define LIVE_MAX 40	 /* ... and with those callbacks register */
#define DEFAULT_STEPS 200000
#define QUICK_STEPS 5000
#define DEFAULT_SEED UINT64_C(0x5eed2024c0ffee01)
#define TRACE_N 24
#define DESC_MAX 320
#define MAX_REPORTS 40

/*
 * The shape of a walk: big spaces with leaves up to 2M, where changes are
 * local; tiny ones, where every change collides with every notifier and
 * whole-space holes and 2^64 events are common; and spaces that end at
 * 2^62, 2^63 and 2^64 with pages of 2^53 bytes, where entries end at
 * UINT64_MAX, a leaf may be all of 2^64 and targets wrap around.
 */
struct shape {
	const char *name;
	unsigned pg_shift;
	unsigned size_shift[N_AS];
	unsigned max_order;
	unsigned steps_div; /* steps = VIOMMU_TEST_STEPS / steps_div */
};

static const struct shape shape_big = { "big", 12, { 22, 22, 23 }, 9, 1 };
static const struct shape shape_small = { "small", 12, { 15, 16, 17 }, 4, 4 };
static const struct shape shape_huge = { "huge", 53, { 62, 63, 64 }, 11, 4 };

/* One 4K page of a leaf map: which leaf covers it. */
struct pte {
	uint64_t pa;   /* target of the leaf's first byte */
	uint32_t head; /* first page of the leaf */
	uint8_t order; /* the leaf spans 2^order pages */
	uint8_t perm;  /* VIOMMU_PERM_NONE: no leaf here */
};

/* A byte range with a linear target: a shadow piece, or a run of them. */
struct piece {
	uint64_t a, b, pa;
	unsigned perm;
};

struct ival {
	uint64_t a, b;
};

enum {
	REC_EVENT,
	REC_BEGIN,
	REC_END
};

/* What a callback saw, in order. */
struct rec {
	unsigned kind;
	bool refused; /* the callback refused this map */
	struct viommu_event ev;
};

/* Reentrant things a callback does. */
enum {
	ACT_NONE,
	ACT_UNREG_SELF,
	ACT_UNREG_OTHER,
	ACT_REGISTER,
	ACT_REG_UNREG,
	ACT_BUSY,
	ACT_N,
};

struct tas;

/* A test notifier: the consumer and the reference's idea of it. */
struct tnot {
	unsigned id;
	struct tas *ta;
	struct viommu_notifier *h;
	unsigned flags;
	uint64_t start, last;
	bool batch;
	bool unmap_err; /* returns -EIO for unmaps, which must not matter */
	bool live;
	bool synced;	  /* holds an exact shadow: rule 1 applies */
	bool fresh;	  /* told nothing since it registered */
	bool born_now;	  /* registered by a callback during this step */
	struct piece *sh; /* the shadow: maps less unmaps, sorted */
	size_t nsh, capsh;
	struct rec *rec; /* this step's callbacks */
	size_t nrec, caprec;
	/* injected for one step */
	unsigned fail_at; /* refuse the fail_at-th map (1-based), 0: never */
	bool fail_all;	  /* ... and every map after it */
	unsigned maps_seen;
	bool refused;
	unsigned act, act_at, act_calls;
	struct tnot *next; /* every notifier ever, for freeing */
};

/* An address space: the model's tables and the reference. */
struct tas {
	int idx;
	struct viommu_as *as;
	unsigned lg;
	uint32_t npages;
	uint64_t last; /* the space is [0, last] */
	bool may_refuse;
	/* the model */
	struct pte *m;
	uint32_t *cnt[MAX_LG + 1]; /* mapped pages per aligned 2^lv block */
	struct pte *undo;	   /* m before this step's changes */
	bool have_undo;
	uint32_t undo_a, undo_b;
	bool refuse_map;
	unsigned model_flags; /* the union as the model was last told */
	int walk_fail;	      /* >= 0: the walk fails after that many reads */
	bool walk_bogus;      /* ... handing over garbage instead of an error */
	int walk_err;	      /* ... with this error, when it did */
	unsigned hole_cap;    /* largest hole translate reports (page order) */
	/* the reference: what is in effect */
	struct pte *eff;  /* now (during a change: what it becomes) */
	struct pte *prev; /* before this step */
	struct tnot *live[LIVE_MAX + 1];
	size_t nlive;
};

/* What the step being checked did. */
struct stepinfo {
	bool failed; /* a callback refused a map: the change was undone */
	bool wide;
	uint64_t lo, hi; /* the range the change replaced (bytes) */
	bool pages;	 /* [plo, phi] is that range's pages in the space */
	uint32_t plo, phi;
};

struct stats {
	uint64_t changes, syncs_walk, syncs_step, updates, update_entries;
	uint64_t pending, wide, failed, fail_all, walk_errors, noop_changes;
	uint64_t regs, reg_refused, unregs, replays, replay_failed;
	uint64_t deviotlb, bad_input, queries, events, acts[ACT_N];
	uint64_t cb_regs, cb_unregs, max_entries, shadow_checks;
	uint64_t stale_lookups, huge_events, huge_holes;
};

static struct {
	const struct shape *shape;
	uint64_t seed, step, nsteps;
	bool keep_going;
	bool no_refuse_rollback;
	bool strict_lookup;
	struct viommu_model *model_walk, *model_step;
	struct tas as[N_AS];
	struct tnot *all;
	unsigned next_id;
	struct tas *calling; /* the space of the library call in progress */
	unsigned refusals;   /* maps refused during that call */
	unsigned violations, step_violations;
	char desc[DESC_MAX];
	char trace[TRACE_N][DESC_MAX];
	/* scratch */
	struct ival *iv_map, *iv_unmap;
	size_t cap_map, cap_unmap;
	struct piece *runs_e, *runs_s;
	size_t cap_e, cap_s;
	struct viommu_entry *ents;
	size_t cap_ents;
	uint32_t *stamp, *first_map;
	uint32_t cur_stamp;
	struct stats st;
} g;

static uint64_t rng;

/* splitmix64: small, fast, and the same sequence everywhere */
static uint64_t rnd64(void)
{
	uint64_t z = (rng += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t n)
{
	return n ? rnd64() % n : 0;
}

static bool pct(unsigned p)
{
	return rnd(100) < p;
}

/* Uniform in [0, max], max = UINT64_MAX included. */
static uint64_t rnd_to(uint64_t max)
{
	return max == UINT64_MAX ? rnd64() : rnd(max + 1);
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static unsigned flog2(uint64_t x)
{
	return 63 - (unsigned)__builtin_clzll(x);
}

static uint64_t e_last(const struct viommu_entry *e)
{
	return e->iova + e->addr_mask;
}

static bool same_entry(const struct viommu_entry *a,
		       const struct viommu_entry *b)
{
	return a->iova == b->iova && a->addr_mask == b->addr_mask &&
	       a->translated_addr == b->translated_addr && a->perm == b->perm;
}

static bool is_shadow(unsigned flags)
{
	return (flags & SHADOW) == SHADOW;
}

static const char *fstr(unsigned f)
{
	static const char *const names[] = {
		"-",   "map",	  "unmap",     "map|unmap",
		"dev", "map|dev", "unmap|dev", "map|unmap|dev",
	};

	return names[f & 7];
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t nc;

	if (need <= *cap)
		return p;
	for (nc = *cap ? *cap : 16; nc < need; nc *= 2)
		;
	p = realloc(p, nc * elem);
	assert_non_null(p);
	*cap = nc;
	return p;
}

/* ------------------------------------------------------------------ */
/* Reporting                                                            */

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	size_t len = strlen(g.desc);
	va_list ap;

	if (len + 1 >= sizeof(g.desc))
		return;
	va_start(ap, fmt);
	vsnprintf(g.desc + len, sizeof(g.desc) - len, fmt, ap);
	va_end(ap);
}

static void violation(const struct tnot *tn, const char *rule, const char *fmt,
		      ...) __attribute__((format(printf, 3, 4)));
static void violation(const struct tnot *tn, const char *rule, const char *fmt,
		      ...)
{
	char msg[400];
	va_list ap;

	g.violations++;
	g.step_violations++;
	if (g.violations > MAX_REPORTS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (tn)
		print_message("VIOLATION [%s step %" PRIu64 "] as%d n%u "
			      "(%s [0x%" PRIx64 ", 0x%" PRIx64
			      "]%s%s) %s: %s\n",
			      g.shape->name, g.step, tn->ta->idx, tn->id,
			      fstr(tn->flags), tn->start, tn->last,
			      tn->synced ? " synced" : "",
			      tn->batch ? " batch" : "", rule, msg);
	else
		print_message("VIOLATION [%s step %" PRIu64 "] %s: %s\n",
			      g.shape->name, g.step, rule, msg);
}

static void print_trace(void)
{
	uint64_t s = g.step > TRACE_N ? g.step - TRACE_N + 1 : 1;

	print_message("last steps (seed 0x%" PRIx64 ", walk '%s'):\n", g.seed,
		      g.shape->name);
	for (; s <= g.step; s++)
		print_message("  %6" PRIu64 ": %s\n", s, g.trace[s % TRACE_N]);
}

/* ------------------------------------------------------------------ */
/* Leaves                                                               */

static uint64_t pte_iova(const struct pte *e)
{
	return (uint64_t)e->head << PG_SHIFT;
}

static uint64_t pte_last(const struct pte *e)
{
	return pte_iova(e) + (PG_SIZE << e->order) - 1;
}

static uint64_t pte_pa_at(const struct pte *e, uint64_t addr)
{
	return e->pa + (addr - pte_iova(e));
}

static struct viommu_entry pte_entry(const struct pte *e)
{
	return (struct viommu_entry){
		.iova = pte_iova(e),
		.addr_mask = (PG_SIZE << e->order) - 1,
		.translated_addr = e->pa,
		.perm = e->perm,
	};
}

/* The same mapping covers the page: same leaf, target and permissions. */
static bool pte_same(const struct pte *x, const struct pte *y)
{
	if (!x->perm || !y->perm)
		return x->perm == y->perm;
	return x->head == y->head && x->order == y->order && x->pa == y->pa &&
	       x->perm == y->perm;
}

/* Is nothing of @st mapped in [s, l]? */
static bool range_empty(const struct tas *ta, const struct pte *st, uint64_t s,
			uint64_t l)
{
	uint64_t p;

	if (s > ta->last)
		return true;
	for (p = s >> PG_SHIFT; p <= min64(l, ta->last) >> PG_SHIFT; p++)
		if (st[p].perm)
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* The model's tables                                                   */

static void m_set(struct tas *ta, uint32_t p, struct pte v)
{
	bool was = ta->m[p].perm, now = v.perm;
	unsigned lv;

	ta->m[p] = v;
	if (was == now)
		return;
	for (lv = 0; lv <= ta->lg; lv++)
		ta->cnt[lv][p >> lv] += now ? 1 : (uint32_t)-1;
}

static void m_put_leaf(struct tas *ta, uint32_t head, unsigned order,
		       uint64_t pa, unsigned perm)
{
	struct pte v = { pa, head, (uint8_t)order, (uint8_t)perm };
	uint32_t p;

	for (p = head; p < head + (UINT32_C(1) << order); p++)
		m_set(ta, p, v);
}

static void m_clear_pages(struct tas *ta, uint32_t a, uint32_t b)
{
	struct pte none = { 0 };
	uint32_t p;

	for (p = a; p <= b; p++)
		m_set(ta, p, none);
}

/* The largest aligned order that starts at page @a and ends by page @b. */
static unsigned fit_order(uint32_t a, uint32_t b)
{
	unsigned o = flog2((uint64_t)b - a + 1);

	if (a && (unsigned)__builtin_ctz(a) < o)
		o = (unsigned)__builtin_ctz(a);
	return o;
}

/* Re-express pages [a, b] of leaf @l as aligned leaves, same translation. */
static void m_put_split(struct tas *ta, const struct pte *l, uint32_t a,
			uint32_t b)
{
	while (a <= b) {
		unsigned o = fit_order(a, b);

		m_put_leaf(ta, a, o,
			   l->pa + ((uint64_t)(a - l->head) << PG_SHIFT),
			   l->perm);
		a += UINT32_C(1) << o;
	}
}

/* Empty pages [a, b], keeping what straddling leaves map outside. */
static void m_carve(struct tas *ta, uint32_t a, uint32_t b)
{
	uint32_t p = a;

	while (p <= b) {
		struct pte l = ta->m[p];
		uint32_t tail;

		if (!l.perm) {
			p++;
			continue;
		}
		tail = l.head + (UINT32_C(1) << l.order) - 1;
		m_clear_pages(ta, l.head, tail);
		if (l.head < a)
			m_put_split(ta, &l, l.head, a - 1);
		if (tail > b)
			m_put_split(ta, &l, b + 1, tail);
		p = tail + 1;
	}
}

/*
 * A change will touch pages [a, b]: grow them to the leaves cut at the ends
 * (a carve rewrites those) and remember the old tables, so a refused change
 * can be taken back.  Several changes in one step share one hull.
 */
static void region_begin(struct tas *ta, uint32_t *a, uint32_t *b)
{
	const struct pte *e;
	uint32_t na, nb, p;

	if ((e = &ta->m[*a])->perm)
		*a = e->head;
	if ((e = &ta->m[*b])->perm)
		*b = e->head + (UINT32_C(1) << e->order) - 1;
	if (!ta->have_undo) {
		ta->have_undo = true;
		ta->undo_a = *a;
		ta->undo_b = *b;
		memcpy(ta->undo + *a, ta->m + *a,
		       (*b - *a + 1) * sizeof(*ta->m));
		return;
	}
	na = *a < ta->undo_a ? *a : ta->undo_a;
	nb = *b > ta->undo_b ? *b : ta->undo_b;
	for (p = na; p < ta->undo_a; p++)
		ta->undo[p] = ta->m[p];
	for (p = ta->undo_b + 1; p <= nb; p++)
		ta->undo[p] = ta->m[p];
	ta->undo_a = na;
	ta->undo_b = nb;
}

static void region_revert(struct tas *ta)
{
	uint32_t p;

	for (p = ta->undo_a; p <= ta->undo_b; p++)
		m_set(ta, p, ta->undo[p]);
}

static unsigned max_order(const struct tas *ta)
{
	return g.shape->max_order < ta->lg ? g.shape->max_order : ta->lg;
}

static unsigned rand_order(const struct tas *ta)
{
	unsigned max = max_order(ta);

	if (pct(45))
		return 0;
	if (pct(50))
		return (unsigned)rnd(max < 3 ? max + 1 : 4);
	return (unsigned)rnd(max + 1);
}

static uint64_t rand_pa(unsigned order)
{
	unsigned sh = PG_SHIFT + order;

	/* never 0: a 0 translated_addr means "unknown" in unmaps */
	if (sh <= 64 - 17)
		return (1 + rnd(UINT64_C(1) << 16)) << sh;
	/* huge leaves: any page, so targets wrap around 2^64 */
	return rnd64() & ~(PG_SIZE - 1);
}

static unsigned rand_perm(void)
{
	return 1 + (unsigned)rnd(3);
}

static bool pick_leaf(struct tas *ta, unsigned min_order, uint32_t *head)
{
	uint32_t p, i, s;

	if (!ta->cnt[ta->lg][0])
		return false;
	for (i = 0; i < 16; i++) {
		p = (uint32_t)rnd(ta->npages);
		if (ta->m[p].perm && ta->m[p].order >= min_order) {
			*head = ta->m[p].head;
			return true;
		}
	}
	s = (uint32_t)rnd(ta->npages);
	for (i = 0; i < ta->npages; i++) {
		p = (s + i) % ta->npages;
		if (ta->m[p].perm && ta->m[p].order >= min_order) {
			*head = ta->m[p].head;
			return true;
		}
	}
	return false;
}

/* The guest writes a leaf, splitting whatever it lands in. */
static void ch_map(struct tas *ta)
{
	unsigned o = rand_order(ta);
	uint32_t a = (uint32_t)rnd(ta->npages >> o) << o;
	uint32_t b = a + (UINT32_C(1) << o) - 1, ra = a, rb = b;
	uint64_t pa = rand_pa(o);
	unsigned perm = rand_perm();

	region_begin(ta, &ra, &rb);
	m_carve(ta, a, b);
	m_put_leaf(ta, a, o, pa, perm);
	note("map p%u o%u pa=0x%" PRIx64 " %u; ", a, o, pa, perm);
}

/* The guest clears a page range, splitting leaves at its ends. */
static void ch_unmap(struct tas *ta)
{
	uint32_t a = (uint32_t)rnd(ta->npages), len, b, ra, rb;

	if (pct(50))
		len = 1 + (uint32_t)rnd(4);
	else if (pct(70))
		len = 1 + (uint32_t)rnd(64);
	else
		len = 1 + (uint32_t)rnd(ta->npages / 2);
	b = a + len - 1 < ta->npages ? a + len - 1 : ta->npages - 1;
	ra = a;
	rb = b;
	region_begin(ta, &ra, &rb);
	m_carve(ta, a, b);
	note("unmap p%u-p%u; ", a, b);
}

/* A leaf changes in place: new target, new permissions, or the same. */
static void ch_retarget(struct tas *ta)
{
	uint32_t h, a, b;
	struct pte l;
	unsigned r = (unsigned)rnd(10);

	if (!pick_leaf(ta, 0, &h)) {
		ch_map(ta);
		return;
	}
	l = ta->m[h];
	a = h;
	b = h + (UINT32_C(1) << l.order) - 1;
	region_begin(ta, &a, &b);
	if (r < 4 || r == 8)
		l.pa = rand_pa(l.order);
	if (r >= 4 && r < 9)
		l.perm = 1 + l.perm % 3; /* another one */
	m_put_leaf(ta, h, l.order, l.pa, l.perm);
	note("retarget p%u o%u pa=0x%" PRIx64 " %u; ", h, l.order, l.pa,
	     l.perm);
}

/* The permissions of the leaves in a block change. */
static void ch_perm_range(struct tas *ta)
{
	unsigned o = (unsigned)rnd(min64(ta->lg, 8) + 1);
	uint32_t a = (uint32_t)rnd(ta->npages >> o) << o;
	uint32_t b = a + (UINT32_C(1) << o) - 1, p;

	region_begin(ta, &a, &b);
	for (p = a; p <= b;) {
		struct pte l = ta->m[p];

		if (!l.perm) {
			p++;
			continue;
		}
		if (pct(70))
			m_put_leaf(ta, l.head, l.order, l.pa, 1 + l.perm % 3);
		p = l.head + (UINT32_C(1) << l.order);
	}
	note("perms p%u-p%u; ", a, b);
}

/* A big leaf becomes small ones with the same translation, one maybe not. */
static void ch_split(struct tas *ta)
{
	uint32_t h, a, b, n, i, pick;
	struct pte l;
	unsigned k;

	if (!pick_leaf(ta, 1, &h)) {
		ch_map(ta);
		return;
	}
	l = ta->m[h];
	k = (unsigned)rnd(l.order);
	a = h;
	b = h + (UINT32_C(1) << l.order) - 1;
	region_begin(ta, &a, &b);
	n = UINT32_C(1) << (l.order - k);
	for (i = 0; i < n; i++)
		m_put_leaf(ta, h + (i << k), k,
			   l.pa + ((uint64_t)(i << k) << PG_SHIFT), l.perm);
	pick = h + ((uint32_t)rnd(n) << k);
	note("split p%u o%u->o%u", h, l.order, k);
	if (pct(25)) {
		m_clear_pages(ta, pick, pick + (UINT32_C(1) << k) - 1);
		note(" punch p%u", pick);
	} else if (pct(25)) {
		m_put_leaf(ta, pick, k, rand_pa(k), rand_perm());
		note(" change p%u", pick);
	}
	note("; ");
}

/* Whatever is in a block becomes one leaf, often the same translation. */
static void ch_merge(struct tas *ta)
{
	unsigned o = 1 + (unsigned)rnd(max_order(ta));
	uint32_t a = (uint32_t)rnd(ta->npages >> o) << o;
	uint32_t b = a + (UINT32_C(1) << o) - 1, ra = a, rb = b;
	struct pte first = ta->m[a];
	uint64_t size = PG_SIZE << o, pa;
	unsigned perm;

	region_begin(ta, &ra, &rb);
	if (first.perm && pct(70))
		pa = pte_pa_at(&first, (uint64_t)a << PG_SHIFT) & ~(size - 1);
	else
		pa = rand_pa(o);
	perm = first.perm && pct(70) ? first.perm : rand_perm();
	m_carve(ta, a, b);
	m_put_leaf(ta, a, o, pa, perm);
	note("merge p%u o%u pa=0x%" PRIx64 " %u; ", a, o, pa, perm);
}

static void ch_noop(struct tas *ta)
{
	uint32_t a = (uint32_t)rnd(ta->npages), b = a;

	region_begin(ta, &a, &b);
	note("noop p%u; ", a);
}

static void model_change(struct tas *ta)
{
	unsigned r = (unsigned)rnd(100);

	if (r < 28)
		ch_map(ta);
	else if (r < 46)
		ch_unmap(ta);
	else if (r < 62)
		ch_retarget(ta);
	else if (r < 70)
		ch_perm_range(ta);
	else if (r < 84)
		ch_split(ta);
	else if (r < 96)
		ch_merge(ta);
	else
		ch_noop(ta);
}

/* ------------------------------------------------------------------ */
/* The model's ops                                                      */

static const char *refusal_text(const struct tas *ta)
{
	static char buf[N_AS][64];

	snprintf(buf[ta->idx], sizeof(buf[ta->idx]),
		 "fake model: as%d cannot report maps", ta->idx);
	return buf[ta->idx];
}

static bool walk_step_fails(struct tas *ta)
{
	if (ta->walk_fail < 0)
		return false;
	if (ta->walk_fail-- > 0)
		return false;
	ta->walk_fail = -1;
	return true;
}

static int fm_translate(void *opaque, uint64_t iova, unsigned access,
			struct viommu_translation *out)
{
	struct tas *ta = opaque;
	uint32_t p;
	unsigned lv;

	if (g.calling == ta && access)
		violation(NULL, "translate",
			  "as%d: a sync walks with access 0x%x, model.h says 0",
			  ta->idx, access);
	if (walk_step_fails(ta)) {
		if (!ta->walk_bogus) {
			ta->walk_err = -EFAULT;
			return -EFAULT;
		}
		/* a leaf that does not cover @iova */
		out->entry = (struct viommu_entry){
			.iova = (iova & ~(PG_SIZE - 1)) ^ PG_SIZE,
			.addr_mask = PG_SIZE - 1,
			.translated_addr = PG_SIZE,
			.perm = RW,
		};
		out->fault = VIOMMU_FAULT_NONE;
		ta->walk_err = -EIO;
		return 0;
	}
	if (iova > ta->last) {
		/* the aligned block beyond the space that holds @iova */
		uint64_t blk = UINT64_C(1) << flog2(iova);

		out->entry = (struct viommu_entry){ blk, blk - 1, 0,
						    VIOMMU_PERM_NONE };
		out->fault = VIOMMU_FAULT_OUT_OF_RANGE;
		return 0;
	}
	p = (uint32_t)(iova >> PG_SHIFT);
	if (ta->m[p].perm) {
		/* the library checks @access itself; a model may too */
		out->entry = pte_entry(&ta->m[p]);
		out->fault = (ta->m[p].perm & access) != access && pct(50) ?
				     VIOMMU_FAULT_PERMISSION :
				     VIOMMU_FAULT_NONE;
		return 0;
	}
	/* the largest empty aligned block around @iova, up to hole_cap */
	for (lv = 0; lv < ta->lg && lv < ta->hole_cap &&
		     !ta->cnt[lv + 1][p >> (lv + 1)];
	     lv++)
		;
	if (lv == ta->lg && ta->hole_cap > ta->lg && !ta->cnt[ta->lg][0]) {
		out->entry = (struct viommu_entry){ 0, UINT64_MAX, 0,
						    VIOMMU_PERM_NONE };
		g.st.huge_holes++;
	} else {
		out->entry = (struct viommu_entry){ (uint64_t)(p >> lv)
							    << (lv + PG_SHIFT),
						    (PG_SIZE << lv) - 1, 0,
						    VIOMMU_PERM_NONE };
	}
	out->fault = VIOMMU_FAULT_NOT_PRESENT;
	return 0;
}

/* Pages from @p that are surely empty: the largest aligned empty block. */
static uint32_t empty_run(const struct tas *ta, uint32_t p)
{
	unsigned lv = 0;

	while (lv < ta->lg && !(p & ((UINT32_C(1) << (lv + 1)) - 1)) &&
	       !ta->cnt[lv + 1][p >> (lv + 1)])
		lv++;
	return UINT32_C(1) << lv;
}

/*
 * The injected walk failure: an error, or a leaf the library must reject
 * (the guest controls the tables): no permissions, misaligned, or one that
 * goes back before the leaves already handed over.
 */
static int walk_garbage(struct tas *ta, const struct pte *at, viommu_walk_fn fn,
			void *ctx)
{
	struct viommu_entry bad;

	if (!ta->walk_bogus) {
		ta->walk_err = -EIO;
		return -EIO;
	}
	bad = at ? pte_entry(at) :
		   (struct viommu_entry){ 0, PG_SIZE - 1, PG_SIZE, RW };
	ta->walk_err = -EINVAL;
	switch (rnd(3)) {
	case 0:
		bad.perm = VIOMMU_PERM_NONE;
		break;
	case 1:
		bad.iova |= PG_SIZE / 2;
		break;
	default:
		/* the same leaf twice: the second overlaps the first */
		if (at) {
			int ret = fn(ctx, &bad);

			if (ret)
				return ret;
		} else {
			bad.perm |= 8;
		}
		break;
	}
	return fn(ctx, &bad);
}

static int fm_replay(void *opaque, uint64_t start, uint64_t last,
		     viommu_walk_fn fn, void *ctx)
{
	struct tas *ta = opaque;
	uint64_t p, end;
	int ret;

	if (start <= ta->last) {
		p = start >> PG_SHIFT;
		end = min64(last, ta->last) >> PG_SHIFT;
		while (p <= end) {
			const struct pte *e = &ta->m[p];
			struct viommu_entry le;

			if (!e->perm) {
				p += empty_run(ta, (uint32_t)p);
				continue;
			}
			if (walk_step_fails(ta))
				return walk_garbage(ta, e, fn, ctx);
			le = pte_entry(e);
			ret = fn(ctx, &le);
			if (ret)
				return ret;
			p = e->head + (UINT64_C(1) << e->order);
		}
	}
	/* an injected failure fires at the latest when the walk ends */
	if (ta->walk_fail >= 0) {
		ta->walk_fail = -1;
		return walk_garbage(ta, NULL, fn, ctx);
	}
	return 0;
}

static int fm_flags_changed(void *opaque, unsigned old_flags,
			    unsigned new_flags, struct viommu_error *err)
{
	struct tas *ta = opaque;

	if (old_flags != ta->model_flags)
		violation(NULL, "rule 7",
			  "as%d: model told the union was 0x%x, it was told "
			  "0x%x before",
			  ta->idx, old_flags, ta->model_flags);
	if (ta->may_refuse && ta->refuse_map && (new_flags & MAP) &&
	    !(old_flags & MAP)) {
		if (err) {
			err->code = -ENOTSUP;
			snprintf(err->message, sizeof(err->message), "%s",
				 refusal_text(ta));
		}
		return -ENOTSUP;
	}
	ta->model_flags = new_flags;
	return 0;
}

static uint64_t fm_min_page(void *opaque)
{
	return PG_SIZE;
}

static const struct viommu_model_ops ops_walk = {
	.version = VIOMMU_MODEL_OPS_VERSION,
	.name = "fake-walk",
	.translate = fm_translate,
	.replay = fm_replay,
	.notify_flags_changed = fm_flags_changed,
	.min_page_size = fm_min_page,
};

/* No replay op: syncs step through the range with translate. */
static const struct viommu_model_ops ops_step = {
	.version = VIOMMU_MODEL_OPS_VERSION,
	.name = "fake-step",
	.translate = fm_translate,
	.notify_flags_changed = fm_flags_changed,
};

/* ------------------------------------------------------------------ */
/* Notifiers and their callbacks                                        */

static struct rec *rec_push(struct tnot *tn, unsigned kind)
{
	struct rec *r;

	tn->rec = grow(tn->rec, &tn->caprec, tn->nrec + 1, sizeof(*tn->rec));
	r = &tn->rec[tn->nrec++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	return r;
}

static bool callback_ok(struct tnot *tn, struct viommu_notifier *h)
{
	if (!tn->live) {
		violation(tn, "unregister",
			  "called after viommu_notifier_unregister() returned");
		return false;
	}
	if (h != tn->h)
		violation(tn, "callback", "handed handle %p, registered %p",
			  (void *)h, (void *)tn->h);
	if (tn->ta != g.calling) {
		violation(tn, "rule 7",
			  "called outside a change of its address space");
		return false;
	}
	return true;
}

/* Does viommu_as_lookup() answer @st's entry at @iova (or nothing)? */
static bool lookup_is(const struct tas *ta, const struct pte *st, uint64_t iova,
		      bool found, const struct viommu_entry *he)
{
	const struct pte *e = iova <= ta->last ? &st[iova >> PG_SHIFT] : NULL;
	struct viommu_entry want;

	if (!e || !e->perm)
		return !found;
	want = pte_entry(e);
	return found && same_entry(he, &want);
}

/*
 * The held map takes the new state before any callback runs, so during a
 * change's callbacks viommu_as_lookup() answers what the reference calls
 * eff.  Once a map is refused, the held map goes back to prev and the
 * reverse is delivered: either state may be seen then.  An unmap whose
 * entry lookup still finds is counted: those that heard the refused entry
 * are told to drop it before the held map goes back.
 */
static void check_lookup(struct tnot *tn, const struct viommu_event *ev)
{
	struct tas *ta = tn->ta;
	uint64_t iova = ev->entry.iova;
	struct viommu_entry he;
	bool found = viommu_as_lookup(ta->as, iova, &he);
	bool is_new = lookup_is(ta, ta->eff, iova, found, &he);
	bool is_old = lookup_is(ta, ta->prev, iova, found, &he);

	if (is_new && (!g.refusals || is_old))
		return;
	if (!is_new && !(g.refusals && is_old)) {
		violation(tn, "lookup",
			  "viommu_as_lookup(0x%" PRIx64 ") from a %s callback "
			  "finds %s 0x%" PRIx64 "/0x%" PRIx64 ", not the %s "
			  "state",
			  iova, ev->type == MAP ? "map" : "unmap",
			  found ? "entry" : "nothing", found ? he.iova : 0,
			  found ? he.addr_mask : 0,
			  g.refusals ? "new or the old" : "new");
		return;
	}
	/* a rollback, still in the new state: told to drop what is held? */
	if (!is_new || ev->type != UNMAP || !found ||
	    he.translated_addr + (iova - he.iova) != ev->entry.translated_addr)
		return;
	g.st.stale_lookups++;
	if (g.strict_lookup)
		violation(tn, "lookup",
			  "unmap [0x%" PRIx64 ", 0x%" PRIx64 "] during a "
			  "rollback, and viommu_as_lookup() still finds it",
			  iova, e_last(&ev->entry));
}

static struct tnot *tn_register(struct tas *ta, unsigned flags, uint64_t start,
				uint64_t last, bool batch);
static void tn_unregister(struct tnot *tn);
static struct tnot *tn_register_random(struct tas *ta);

/* Everything a consumer must not do from a callback says -EBUSY. */
static void check_busy(struct tnot *tn)
{
	struct tas *ta = tn->ta;
	struct viommu_entry e = { 0, PG_SIZE - 1, PG_SIZE, RW };
	struct viommu_error err = { 0 };
	int ret;

	ret = viommu_as_sync(ta->as, 0, UINT64_MAX, 0, &err);
	if (ret != -EBUSY || err.code != -EBUSY)
		violation(tn, "busy", "viommu_as_sync from a callback: %d",
			  ret);
	ret = viommu_as_update(ta->as, 0, PG_SIZE - 1, &e, 1, 0, NULL);
	if (ret != -EBUSY)
		violation(tn, "busy", "viommu_as_update from a callback: %d",
			  ret);
	ret = viommu_as_update_entry(ta->as, &e, NULL);
	if (ret != -EBUSY)
		violation(tn, "busy",
			  "viommu_as_update_entry from a callback: %d", ret);
	ret = viommu_as_notify_deviotlb(ta->as, 0, PG_SIZE - 1);
	if (ret != -EBUSY)
		violation(tn, "busy",
			  "viommu_as_notify_deviotlb from a callback: %d", ret);
	ret = viommu_notifier_replay(tn->h, NULL);
	if (ret != -EBUSY)
		violation(tn, "busy",
			  "viommu_notifier_replay from a callback: %d", ret);
}

static void maybe_act(struct tnot *tn)
{
	struct tas *ta = tn->ta;
	unsigned act = tn->act;
	struct tnot *x;

	if (!act || ++tn->act_calls != tn->act_at)
		return;
	tn->act = ACT_NONE;
	g.st.acts[act]++;
	switch (act) {
	case ACT_UNREG_SELF:
		note("[n%u unregisters itself] ", tn->id);
		tn_unregister(tn);
		break;
	case ACT_UNREG_OTHER:
		if (ta->nlive < 2)
			break;
		do
			x = ta->live[rnd(ta->nlive)];
		while (x == tn);
		note("[n%u unregisters n%u] ", tn->id, x->id);
		tn_unregister(x);
		break;
	case ACT_REGISTER:
		if (ta->nlive < LIVE_MAX)
			tn_register_random(ta);
		break;
	case ACT_REG_UNREG:
		if (ta->nlive < LIVE_MAX && (x = tn_register_random(ta))) {
			note("[and unregisters n%u] ", x->id);
			tn_unregister(x);
		}
		break;
	case ACT_BUSY:
		check_busy(tn);
		break;
	}
}

static int on_event(struct viommu_notifier *h, const struct viommu_event *ev,
		    void *opaque)
{
	struct tnot *tn = opaque;
	struct rec *r;

	if (!callback_ok(tn, h))
		return 0;
	r = rec_push(tn, REC_EVENT);
	r->ev = *ev;
	g.st.events++;
	g.st.huge_events += ev->entry.addr_mask == UINT64_MAX;
	check_lookup(tn, ev);
	if (ev->type == MAP && tn->fail_at && ++tn->maps_seen >= tn->fail_at &&
	    (tn->fail_all || !tn->refused)) {
		tn->refused = true;
		r->refused = true;
		g.refusals++;
		return -ENOSPC;
	}
	maybe_act(tn);
	return ev->type != MAP && tn->unmap_err ? -EIO : 0;
}

static void on_begin(struct viommu_notifier *h, void *opaque)
{
	struct tnot *tn = opaque;

	if (!callback_ok(tn, h))
		return;
	rec_push(tn, REC_BEGIN);
	maybe_act(tn);
}

static void on_end(struct viommu_notifier *h, void *opaque)
{
	struct tnot *tn = opaque;

	if (!callback_ok(tn, h))
		return;
	rec_push(tn, REC_END);
	maybe_act(tn);
}

/* Rule 7: the union is that of the live notifiers, and the model knows it. */
static void check_union(const struct tas *ta)
{
	unsigned u = 0;
	size_t i;

	for (i = 0; i < ta->nlive; i++)
		u |= ta->live[i]->flags;
	if (viommu_as_notify_flags(ta->as) != u)
		violation(NULL, "rule 7",
			  "as%d: viommu_as_notify_flags() 0x%x, live notifiers "
			  "0x%x",
			  ta->idx, viommu_as_notify_flags(ta->as), u);
	if (ta->model_flags != u)
		violation(NULL, "rule 7",
			  "as%d: model last told 0x%x, live notifiers 0x%x",
			  ta->idx, ta->model_flags, u);
}

static struct tnot *tn_register(struct tas *ta, unsigned flags, uint64_t start,
				uint64_t last, bool batch)
{
	unsigned before = viommu_as_notify_flags(ta->as);
	bool refuse = ta->may_refuse && ta->refuse_map && (flags & MAP) &&
		      !(before & MAP);
	struct viommu_notifier_config cfg;
	struct viommu_error err;
	bool use_err = pct(70);
	struct tnot *tn;
	int ret;

	tn = calloc(1, sizeof(*tn));
	assert_non_null(tn);
	tn->id = g.next_id++;
	tn->ta = ta;
	tn->flags = flags;
	tn->start = start;
	tn->last = last;
	tn->batch = batch;
	tn->unmap_err = pct(20);
	viommu_notifier_config_init(&cfg, flags, on_event, tn);
	cfg.start = start;
	cfg.last = last;
	if (batch) {
		cfg.batch_begin = on_begin;
		cfg.batch_end = on_end;
	}
	memset(&err, 0, sizeof(err));
	tn->h = (struct viommu_notifier *)&err; /* must be overwritten */
	ret = viommu_notifier_register(ta->as, &cfg, &tn->h,
				       use_err ? &err : NULL);
	note("reg n%u %s [0x%" PRIx64 ", 0x%" PRIx64 "]%s%s ", tn->id,
	     fstr(flags), start, last, batch ? " batch" : "",
	     ret ? " REFUSED" : "");
	if (ret) {
		g.st.reg_refused++;
		if (!refuse)
			violation(tn, "register", "failed with %d", ret);
		if (ret != -ENOTSUP)
			violation(tn, "refusal", "returned %d, want -ENOTSUP",
				  ret);
		if (use_err && (err.code != -ENOTSUP ||
				strcmp(err.message, refusal_text(ta))))
			violation(tn, "refusal",
				  "error %d '%s', want the model's", err.code,
				  err.message);
		if (tn->h)
			violation(tn, "refusal", "handle not cleared");
		if (viommu_as_notify_flags(ta->as) != before)
			violation(tn, "rule 7",
				  "refusal changed the union from 0x%x to 0x%x",
				  before, viommu_as_notify_flags(ta->as));
		free(tn);
		return NULL;
	}
	if (refuse)
		violation(tn, "refusal",
			  "the model refused but registration succeeded");
	if (viommu_notifier_flags(tn->h) != flags ||
	    viommu_notifier_as(tn->h) != ta->as)
		violation(tn, "register", "handle reports flags 0x%x",
			  viommu_notifier_flags(tn->h));
	g.st.regs++;
	if (g.calling)
		g.st.cb_regs++;
	tn->live = true;
	tn->fresh = true;
	tn->born_now = g.calling != NULL;
	/* born in a callback: decided once the change is over */
	tn->synced = !tn->born_now && is_shadow(flags) &&
		     range_empty(ta, ta->eff, start, last);
	ta->live[ta->nlive++] = tn;
	tn->next = g.all;
	g.all = tn;
	check_union(ta);
	return tn;
}

static void tn_unregister(struct tnot *tn)
{
	struct tas *ta = tn->ta;
	size_t i;

	note("unreg n%u ", tn->id);
	viommu_notifier_unregister(tn->h);
	g.st.unregs++;
	if (g.calling)
		g.st.cb_unregs++;
	tn->live = false;
	tn->h = NULL;
	for (i = 0; i < ta->nlive && ta->live[i] != tn; i++)
		;
	assert_true(i < ta->nlive);
	memmove(&ta->live[i], &ta->live[i + 1],
		(ta->nlive - i - 1) * sizeof(ta->live[0]));
	ta->nlive--;
	check_union(ta);
	free(tn->sh);
	tn->sh = NULL;
	tn->nsh = tn->capsh = 0;
}

static unsigned rand_flags(void)
{
	static const unsigned pick[] = {
		SHADOW, SHADOW,		 SHADOW,       SHADOW, SHADOW,
		UNMAP,	UNMAP,		 MAP,	       DEVTLB, UNMAP | DEVTLB,
		MAP,	SHADOW | DEVTLB, MAP | DEVTLB,
	};

	return pick[rnd(ARRAY_SIZE(pick))];
}

/* A mask to align pages to the start of a random-sized block. */
static uint64_t edge_mask(void)
{
	return ((PG_SIZE << rnd(g.shape->max_order + 1)) - 1) & ~(PG_SIZE - 1);
}

/*
 * Whole space, page-aligned, cut at odd bytes to test clipping, or ending
 * right at the first byte of a block or starting at the last byte of one.
 */
static void rand_range(const struct tas *ta, uint64_t *s, uint64_t *l)
{
	uint64_t top = ta->last, np = ta->npages;

	switch (rnd(15)) {
	case 0:
	case 1:
	case 2:
		*s = 0;
		*l = UINT64_MAX;
		return;
	case 3:
		*s = 0;
		*l = top;
		return;
	case 4:
		*s = rnd(np) << PG_SHIFT;
		*l = sat_add(*s, ((1 + rnd(np)) << PG_SHIFT) - 1);
		return;
	case 5:
		*s = rnd_to(top);
		*l = sat_add(*s, rnd(PG_SIZE));
		return;
	case 6:
		*s = rnd_to(top);
		*l = UINT64_MAX;
		return;
	case 7:
		if (top == UINT64_MAX)
			break;
		/* beyond the space */
		*s = sat_add(top, 1 + rnd_to(top));
		*l = sat_add(*s, rnd_to(top));
		return;
	case 12:
		/* from the last byte of an aligned block to the first of one */
		*s = (rnd(np) << PG_SHIFT & ~edge_mask()) + PG_SIZE - 1;
		*l = sat_add(*s, 1 + (rnd(np) << PG_SHIFT & ~edge_mask()));
		return;
	case 13:
		/* one byte at the edge of a block */
		*s = *l = (rnd(np) << PG_SHIFT & ~edge_mask()) +
			  (pct(50) ? 0 : PG_SIZE - 1);
		return;
	}
	/* odd bytes at both ends */
	*s = rnd_to(top);
	*l = sat_add(*s, rnd_to(top / 2));
}

static struct tnot *tn_register_random(struct tas *ta)
{
	uint64_t s, l;

	rand_range(ta, &s, &l);
	return tn_register(ta, rand_flags(), s, l, pct(30));
}

/* ------------------------------------------------------------------ */
/* The reference's shadows                                              */

/* The first piece that ends at or after @a. */
static size_t sh_find(const struct tnot *tn, uint64_t a)
{
	size_t lo = 0, hi = tn->nsh;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (tn->sh[mid].b < a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void sh_map(struct tnot *tn, const struct viommu_event *ev)
{
	uint64_t a = ev->entry.iova, b = e_last(&ev->entry);
	size_t i = sh_find(tn, a);

	if (i < tn->nsh && tn->sh[i].a <= b) {
		violation(tn, "rule 1",
			  "map [0x%" PRIx64 ", 0x%" PRIx64 "] over the held "
			  "mapping [0x%" PRIx64 ", 0x%" PRIx64 "]",
			  a, b, tn->sh[i].a, tn->sh[i].b);
		return;
	}
	tn->sh = grow(tn->sh, &tn->capsh, tn->nsh + 1, sizeof(*tn->sh));
	memmove(&tn->sh[i + 1], &tn->sh[i], (tn->nsh - i) * sizeof(*tn->sh));
	tn->sh[i] = (struct piece){ a, b, ev->entry.translated_addr,
				    ev->entry.perm };
	tn->nsh++;
}

static void sh_unmap(struct tnot *tn, const struct viommu_event *ev)
{
	uint64_t a = ev->entry.iova, b = e_last(&ev->entry);
	uint64_t pa = ev->entry.translated_addr;
	size_t i = sh_find(tn, a), j;

	for (j = i; j < tn->nsh && tn->sh[j].a <= b; j++) {
		const struct piece *s = &tn->sh[j];

		if (s->a < a || s->b > b)
			violation(tn, "rule 1",
				  "unmap [0x%" PRIx64 ", 0x%" PRIx64 "] cuts "
				  "the held mapping [0x%" PRIx64 ", 0x%" PRIx64
				  "]",
				  a, b, s->a, s->b);
		else if (pa && s->pa != pa + (s->a - a))
			violation(tn, "event",
				  "unmap [0x%" PRIx64 ", 0x%" PRIx64 "] says "
				  "pa 0x%" PRIx64 ", held 0x%" PRIx64
				  " at 0x%" PRIx64,
				  a, b, pa, s->pa, s->a);
	}
	if (j == i)
		violation(tn, "rule 1",
			  "unmap [0x%" PRIx64 ", 0x%" PRIx64 "] where it holds "
			  "nothing",
			  a, b);
	memmove(&tn->sh[i], &tn->sh[j], (tn->nsh - j) * sizeof(*tn->sh));
	tn->nsh -= j - i;
}

static void sh_apply(struct tnot *tn, const struct rec *r)
{
	if (r->kind != REC_EVENT || r->refused)
		return;
	if (r->ev.type == MAP)
		sh_map(tn, &r->ev);
	else if (r->ev.type == UNMAP)
		sh_unmap(tn, &r->ev);
}

/* Append [a, b] -> pa, merging with the run before when it continues it. */
static size_t run_add(struct piece *v, size_t n, uint64_t a, uint64_t b,
		      uint64_t pa, unsigned perm)
{
	if (n) {
		struct piece *l = &v[n - 1];

		if (l->b != UINT64_MAX && l->b + 1 == a && l->perm == perm &&
		    l->pa + (a - l->a) == pa) {
			l->b = b;
			return n;
		}
	}
	v[n] = (struct piece){ a, b, pa, perm };
	return n + 1;
}

/* The runs of what is in effect inside [s, l], byte-exact at the ends. */
static size_t effect_runs(const struct tas *ta, uint64_t s, uint64_t l)
{
	size_t n = 0;
	uint64_t p;

	g.runs_e = grow(g.runs_e, &g.cap_e, ta->npages + 1, sizeof(*g.runs_e));
	if (s > ta->last)
		return 0;
	for (p = s >> PG_SHIFT; p <= min64(l, ta->last) >> PG_SHIFT; p++) {
		const struct pte *e = &ta->eff[p];
		uint64_t x = max64(p << PG_SHIFT, s);
		uint64_t y = min64((p << PG_SHIFT) + PG_SIZE - 1, l);

		if (e->perm)
			n = run_add(g.runs_e, n, x, y, pte_pa_at(e, x),
				    e->perm);
	}
	return n;
}

static void report_runs(const struct tnot *tn, const char *rule,
			const char *what, const struct piece *got, size_t ng,
			const struct piece *want, size_t nw)
{
	size_t i;

	for (i = 0; i < ng && i < nw; i++)
		if (got[i].a != want[i].a || got[i].b != want[i].b ||
		    got[i].pa != want[i].pa || got[i].perm != want[i].perm)
			break;
	if (i < ng && i < nw)
		violation(tn, rule,
			  "%s: [0x%" PRIx64 ", 0x%" PRIx64 "] -> 0x%" PRIx64
			  " %u where [0x%" PRIx64 ", 0x%" PRIx64
			  "] -> 0x%" PRIx64 " %u is in effect",
			  what, got[i].a, got[i].b, got[i].pa, got[i].perm,
			  want[i].a, want[i].b, want[i].pa, want[i].perm);
	else if (i < ng)
		violation(tn, rule,
			  "%s: [0x%" PRIx64 ", 0x%" PRIx64 "] -> 0x%" PRIx64
			  " is not in effect",
			  what, got[i].a, got[i].b, got[i].pa);
	else
		violation(tn, rule,
			  "%s: misses [0x%" PRIx64 ", 0x%" PRIx64
			  "] -> 0x%" PRIx64 ", in effect",
			  what, want[i].a, want[i].b, want[i].pa);
}

static bool runs_equal(const struct piece *x, size_t nx, const struct piece *y,
		       size_t ny)
{
	size_t i;

	if (nx != ny)
		return false;
	for (i = 0; i < nx; i++)
		if (x[i].a != y[i].a || x[i].b != y[i].b ||
		    x[i].pa != y[i].pa || x[i].perm != y[i].perm)
			return false;
	return true;
}

/* Rule 1: the shadow is what is in effect in the notifier's range. */
static void compare_shadow(const struct tas *ta, const struct tnot *tn)
{
	size_t ne = effect_runs(ta, tn->start, tn->last), ns = 0, i;

	g.st.shadow_checks++;
	g.runs_s = grow(g.runs_s, &g.cap_s, tn->nsh + 1, sizeof(*g.runs_s));
	for (i = 0; i < tn->nsh; i++)
		ns = run_add(g.runs_s, ns, tn->sh[i].a, tn->sh[i].b,
			     tn->sh[i].pa, tn->sh[i].perm);
	if (!runs_equal(g.runs_s, ns, g.runs_e, ne))
		report_runs(tn, "rule 1", "shadow", g.runs_s, ns, g.runs_e, ne);
}

/* ------------------------------------------------------------------ */
/* Checks                                                               */

static int cmp_ival(const void *x, const void *y)
{
	const struct ival *a = x, *b = y;

	return a->a < b->a ? -1 : a->a > b->a;
}

static size_t merge_ivals(struct ival *v, size_t n)
{
	size_t i, k = 0;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_ival);
	for (i = 1; i < n; i++) {
		if (v[k].b == UINT64_MAX || v[i].a <= v[k].b + 1)
			v[k].b = max64(v[k].b, v[i].b);
		else
			v[++k] = v[i];
	}
	return k + 1;
}

static bool covered(const struct ival *v, size_t n, uint64_t a, uint64_t b)
{
	size_t lo = 0, hi = n;

	/* the last interval starting at or before @a */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].a <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && v[lo - 1].b >= b;
}

/* Rule 6 and the event format; false when the event is unusable. */
static bool check_common(const struct tnot *tn, const struct viommu_event *ev)
{
	uint64_t iova = ev->entry.iova, mask = ev->entry.addr_mask;

	if ((mask & (mask + 1)) || (iova & mask)) {
		violation(tn, "rule 6",
			  "event iova 0x%" PRIx64 " addr_mask 0x%" PRIx64
			  " is not a naturally aligned power of two",
			  iova, mask);
		return false;
	}
	if (iova < tn->start || e_last(&ev->entry) > tn->last) {
		violation(tn, "rule 6",
			  "event [0x%" PRIx64 ", 0x%" PRIx64 "] outside its "
			  "range",
			  iova, e_last(&ev->entry));
		return false;
	}
	if (ev->type == MAP) {
		if (!ev->entry.perm || (ev->entry.perm & ~RW))
			violation(tn, "event", "map with perm 0x%x",
				  ev->entry.perm);
	} else if (ev->entry.perm != VIOMMU_PERM_NONE) {
		violation(tn, "event", "unmap with perm 0x%x", ev->entry.perm);
	}
	if (ev->type != MAP && ev->type != UNMAP && ev->type != DEVTLB) {
		violation(tn, "event", "type 0x%x", ev->type);
		return false;
	}
	return true;
}

/* begin before the first event of a change, end after the last. */
static void check_batch(const struct tnot *tn)
{
	size_t i, nev = 0, nb = 0, ne = 0;

	for (i = 0; i < tn->nrec; i++) {
		nev += tn->rec[i].kind == REC_EVENT;
		nb += tn->rec[i].kind == REC_BEGIN;
		ne += tn->rec[i].kind == REC_END;
	}
	if (!tn->batch || !nev) {
		if (nb || ne)
			violation(tn, "batch",
				  "%zu begins, %zu ends for %zu "
				  "events",
				  nb, ne, nev);
		return;
	}
	if (nb != 1 || ne != 1 || tn->rec[0].kind != REC_BEGIN ||
	    tn->rec[tn->nrec - 1].kind != REC_END)
		violation(tn, "batch",
			  "%zu begins, %zu ends around %zu events, not one "
			  "each bracketing them",
			  nb, ne, nev);
}

static void push_ival(struct ival **v, size_t *cap, size_t *n,
		      const struct viommu_entry *e)
{
	*v = grow(*v, cap, *n + 1, sizeof(**v));
	(*v)[(*n)++] = (struct ival){ e->iova, e_last(e) };
}

/*
 * A map in a change: the pages it covers changed, and it carries what is
 * now in effect there (or, in a refused change, what was, when the
 * rollback puts it back in a shadow).
 */
static void check_change_map(const struct tas *ta, const struct tnot *tn,
			     const struct stepinfo *si,
			     const struct viommu_event *ev)
{
	uint64_t a = ev->entry.iova, b = e_last(&ev->entry), p;
	bool as_new = true, as_old = true;

	if (!(tn->flags & MAP)) {
		violation(tn, "rule 2",
			  "told of a map [0x%" PRIx64 ", 0x%" PRIx64
			  "] without MAP",
			  a, b);
		return;
	}
	if (b > ta->last) {
		violation(tn, "event",
			  "map [0x%" PRIx64 ", 0x%" PRIx64 "] "
			  "beyond the space",
			  a, b);
		return;
	}
	for (p = a >> PG_SHIFT; p <= b >> PG_SHIFT; p++) {
		const struct pte *o = &ta->prev[p], *n = &ta->eff[p];
		uint64_t x = max64(a, p << PG_SHIFT);
		uint64_t want = ev->entry.translated_addr + (x - a);

		if (pte_same(o, n)) {
			violation(tn, "exact",
				  "map [0x%" PRIx64 ", 0x%" PRIx64
				  "] over 0x%" PRIx64
				  ", whose mapping did not change",
				  a, b, x);
			return;
		}
		if (!n->perm || n->perm != ev->entry.perm ||
		    pte_pa_at(n, x) != want)
			as_new = false;
		if (!o->perm || o->perm != ev->entry.perm ||
		    pte_pa_at(o, x) != want)
			as_old = false;
	}
	if (as_new || (as_old && si->failed && is_shadow(tn->flags)))
		return;
	violation(tn, "map",
		  "[0x%" PRIx64 ", 0x%" PRIx64 "] -> 0x%" PRIx64
		  " %u is not what is in effect",
		  a, b, ev->entry.translated_addr, ev->entry.perm);
}

static void check_change_unmap(const struct tas *ta, const struct tnot *tn,
			       const struct stepinfo *si,
			       const struct viommu_event *ev)
{
	uint64_t a = ev->entry.iova, b = e_last(&ev->entry), p;
	uint64_t pa = ev->entry.translated_addr;
	bool as_new = true, as_old = true;

	if (!(tn->flags & UNMAP)) {
		violation(tn, "rule 3",
			  "told of an unmap [0x%" PRIx64 ", 0x%" PRIx64
			  "] without UNMAP",
			  a, b);
		return;
	}
	if (si->wide && !(tn->flags & MAP)) {
		/* the over-sized unmap of the whole synced range */
		if (a < si->lo || b > si->hi)
			violation(tn, "wide",
				  "over-sized unmap [0x%" PRIx64 ", 0x%" PRIx64
				  "] outside the synced range [0x%" PRIx64
				  ", 0x%" PRIx64 "]",
				  a, b, si->lo, si->hi);
		if (pa)
			violation(tn, "event",
				  "over-sized unmap [0x%" PRIx64 ", 0x%" PRIx64
				  "] has translated_addr 0x%" PRIx64
				  "; viommu.h says 0 (unknown)",
				  a, b, pa);
		return;
	}
	if (b > ta->last) {
		violation(tn, "event",
			  "unmap [0x%" PRIx64 ", 0x%" PRIx64 "] "
			  "beyond the space",
			  a, b);
		return;
	}
	if (si->failed && !(tn->flags & MAP) && !pa)
		/*
		 * A refused change takes its new entries back from the
		 * unmap-only consumers too (a device may have cached them
		 * through translate meanwhile); they never held them, so the
		 * unmap names no target.  Rule 2 lets them hear more.
		 */
		return;
	for (p = a >> PG_SHIFT; p <= b >> PG_SHIFT; p++) {
		const struct pte *o = &ta->prev[p], *n = &ta->eff[p];
		uint64_t x = max64(a, p << PG_SHIFT), want = pa + (x - a);

		if (pte_same(o, n)) {
			violation(tn, "exact",
				  "unmap [0x%" PRIx64 ", 0x%" PRIx64
				  "] over 0x%" PRIx64
				  ", whose mapping did not change",
				  a, b, x);
			return;
		}
		if (!o->perm || pte_pa_at(o, x) != want)
			as_old = false;
		if (!n->perm || pte_pa_at(n, x) != want)
			as_new = false;
	}
	if (as_old || (as_new && si->failed && is_shadow(tn->flags)))
		return;
	violation(tn, "unmap",
		  "[0x%" PRIx64 ", 0x%" PRIx64 "] pa 0x%" PRIx64
		  " is not what was in effect",
		  a, b, pa);
}

/* Rule 4: at every page, the unmaps of the old come before the maps. */
static void check_order(const struct tas *ta, const struct tnot *tn,
			const struct viommu_event *ev, uint32_t k)
{
	uint64_t a = ev->entry.iova, b = e_last(&ev->entry), p;

	if (b > ta->last)
		return;
	for (p = a >> PG_SHIFT; p <= b >> PG_SHIFT; p++) {
		if (g.stamp[p] != g.cur_stamp) {
			g.stamp[p] = g.cur_stamp;
			g.first_map[p] = UINT32_MAX;
		}
		if (ev->type == MAP) {
			if (g.first_map[p] == UINT32_MAX)
				g.first_map[p] = k;
		} else if (g.first_map[p] != UINT32_MAX) {
			violation(tn, "rule 4",
				  "unmap [0x%" PRIx64 ", 0x%" PRIx64
				  "] (event %u) "
				  "after the map of 0x%" PRIx64 " (event %u)",
				  a, b, k, p << PG_SHIFT, g.first_map[p]);
			return;
		}
	}
}

/* Rules 2 and 3: every changed page in range was told. */
static void check_coverage(const struct tas *ta, const struct tnot *tn,
			   const struct stepinfo *si, size_t nm, size_t nu)
{
	bool wide_only = si->wide && !(tn->flags & MAP);
	uint64_t p, ps, pe;

	nm = merge_ivals(g.iv_map, nm);
	nu = merge_ivals(g.iv_unmap, nu);
	if (wide_only && (tn->flags & UNMAP)) {
		uint64_t x = max64(si->lo, tn->start),
			 y = min64(si->hi, tn->last);

		if (x <= y && !covered(g.iv_unmap, nu, x, y))
			violation(tn, "wide",
				  "over-sized unmaps do not cover the synced "
				  "[0x%" PRIx64 ", 0x%" PRIx64 "]",
				  x, y);
	}
	if (!si->pages || tn->start > ta->last)
		return;
	ps = max64(si->plo, tn->start >> PG_SHIFT);
	pe = min64(si->phi, min64(tn->last, ta->last) >> PG_SHIFT);
	for (p = ps; p <= pe && ps <= pe; p++) {
		const struct pte *o = &ta->prev[p], *n = &ta->eff[p];
		uint64_t x = max64(p << PG_SHIFT, tn->start);
		uint64_t y = min64((p << PG_SHIFT) + PG_SIZE - 1, tn->last);

		if (pte_same(o, n))
			continue;
		if (o->perm && (tn->flags & UNMAP) && !wide_only &&
		    !covered(g.iv_unmap, nu, x, y))
			violation(tn, "rule 2",
				  "the mapping at [0x%" PRIx64 ", 0x%" PRIx64
				  "] (pa 0x%" PRIx64 ") went or changed, no "
				  "unmap told",
				  x, y, pte_pa_at(o, x));
		if (n->perm && (tn->flags & MAP) &&
		    !covered(g.iv_map, nm, x, y))
			violation(tn, "rule 3",
				  "the mapping at [0x%" PRIx64 ", 0x%" PRIx64
				  "] (pa 0x%" PRIx64 ") is new or changed, no "
				  "map told",
				  x, y, pte_pa_at(n, x));
	}
}

static void check_change_tn(const struct tas *ta, struct tnot *tn,
			    const struct stepinfo *si)
{
	bool order = is_shadow(tn->flags) && !si->failed;
	size_t k, nm = 0, nu = 0;

	check_batch(tn);
	g.cur_stamp++;
	for (k = 0; k < tn->nrec; k++) {
		const struct rec *r = &tn->rec[k];
		const struct viommu_event *ev = &r->ev;

		if (r->kind != REC_EVENT || !check_common(tn, ev))
			continue;
		if (ev->type == MAP) {
			check_change_map(ta, tn, si, ev);
			if (!r->refused)
				push_ival(&g.iv_map, &g.cap_map, &nm,
					  &ev->entry);
		} else if (ev->type == UNMAP) {
			check_change_unmap(ta, tn, si, ev);
			push_ival(&g.iv_unmap, &g.cap_unmap, &nu, &ev->entry);
		} else {
			violation(tn, "rule 5",
				  "device-IOTLB unmap [0x%" PRIx64
				  ", 0x%" PRIx64 "] from a change",
				  ev->entry.iova, e_last(&ev->entry));
			continue;
		}
		if (order)
			check_order(ta, tn, ev, (uint32_t)k);
		if (tn->synced)
			sh_apply(tn, r);
	}
	if (!si->failed)
		check_coverage(ta, tn, si, nm, nu);
}

/* Rule 7 and friends: a step that tells nobody anything. */
static void check_silent(const struct tas *ta, const struct tnot *except)
{
	size_t i;

	for (i = 0; i < ta->nlive; i++) {
		const struct tnot *tn = ta->live[i];

		if (tn != except && tn->nrec)
			violation(tn, tn->born_now ? "rule 7" : "silent",
				  "%zu callbacks in a step that concerns it "
				  "not, first type 0x%x",
				  tn->nrec, tn->rec[0].ev.type);
	}
}

struct held_walk {
	const struct tas *ta;
	uint64_t p;
	size_t n;
	bool bad;
};

static int held_cb(void *ctx, const struct viommu_entry *e)
{
	struct held_walk *w = ctx;
	const struct tas *ta = w->ta;
	struct viommu_entry want;

	while (w->p < ta->npages && !ta->eff[w->p].perm)
		w->p++;
	if (w->p >= ta->npages) {
		violation(NULL, "held",
			  "as%d holds [0x%" PRIx64 ", 0x%" PRIx64
			  "] -> 0x%" PRIx64 " %u, not in effect",
			  ta->idx, e->iova, e_last(e), e->translated_addr,
			  e->perm);
		w->bad = true;
		return 1;
	}
	want = pte_entry(&ta->eff[w->p]);
	if (!same_entry(e, &want)) {
		violation(NULL, "held",
			  "as%d holds [0x%" PRIx64 ", 0x%" PRIx64
			  "] -> 0x%" PRIx64 " %u where [0x%" PRIx64
			  ", 0x%" PRIx64 "] -> 0x%" PRIx64 " %u is in effect",
			  ta->idx, e->iova, e_last(e), e->translated_addr,
			  e->perm, want.iova, e_last(&want),
			  want.translated_addr, want.perm);
		w->bad = true;
		return 1;
	}
	w->p = ta->eff[w->p].head + (UINT64_C(1) << ta->eff[w->p].order);
	w->n++;
	return 0;
}

/* The library holds exactly the reference's entries in effect. */
static void check_held(const struct tas *ta)
{
	struct held_walk w = { ta, 0, 0, false };
	size_t count;

	viommu_as_for_each_mapping(ta->as, 0, UINT64_MAX, held_cb, &w);
	if (w.bad)
		return;
	while (w.p < ta->npages && !ta->eff[w.p].perm)
		w.p++;
	if (w.p < ta->npages) {
		violation(NULL, "held",
			  "as%d lacks [0x%" PRIx64 ", 0x%" PRIx64
			  "], in effect",
			  ta->idx, pte_iova(&ta->eff[w.p]),
			  pte_last(&ta->eff[w.p]));
		return;
	}
	count = viommu_as_mapping_count(ta->as);
	if (count != w.n)
		violation(NULL, "held", "as%d: mapping count %zu, %zu walked",
			  ta->idx, count, w.n);
	if (count > g.st.max_entries)
		g.st.max_entries = count;
}

static void check_state(const struct tas *ta)
{
	size_t i;

	check_held(ta);
	check_union(ta);
	for (i = 0; i < ta->nlive; i++)
		if (ta->live[i]->synced)
			compare_shadow(ta, ta->live[i]);
}

/* ------------------------------------------------------------------ */
/* Steps                                                                */

/*
 * What a sync or update of [s, l] replaces, read off model.h: the range
 * grows to the held entries at its ends, then to the model's leaves that
 * overlap it (they may reach out; only those at the ends can).
 */
static void window(const struct tas *ta, uint64_t s, uint64_t l, uint64_t *ws,
		   uint64_t *wl, uint64_t *lo, uint64_t *hi)
{
	const struct pte *e;

	if (s <= ta->last && (e = &ta->eff[s >> PG_SHIFT])->perm)
		s = pte_iova(e);
	if (l <= ta->last && (e = &ta->eff[l >> PG_SHIFT])->perm)
		l = pte_last(e);
	*ws = *lo = s;
	*wl = *hi = l;
	if (s > ta->last)
		return;
	if ((e = &ta->m[s >> PG_SHIFT])->perm)
		*lo = min64(*lo, pte_iova(e));
	if ((e = &ta->m[min64(l, ta->last) >> PG_SHIFT])->perm)
		*hi = max64(*hi, pte_last(e));
}

/* The model's leaves overlapping [s, l], into g.ents. */
static size_t leaves_in(const struct tas *ta, uint64_t s, uint64_t l)
{
	uint64_t p, end;
	size_t n = 0;

	g.ents = grow(g.ents, &g.cap_ents, ta->npages + 2, sizeof(*g.ents));
	if (s > ta->last)
		return 0;
	end = min64(l, ta->last) >> PG_SHIFT;
	for (p = s >> PG_SHIFT; p <= end;) {
		const struct pte *e = &ta->m[p];

		if (!e->perm) {
			p++;
			continue;
		}
		g.ents[n++] = pte_entry(e);
		p = e->head + (UINT64_C(1) << e->order);
	}
	return n;
}

static void window_pages(const struct tas *ta, struct stepinfo *si)
{
	si->pages = si->lo <= ta->last;
	if (!si->pages)
		return;
	si->plo = (uint32_t)(si->lo >> PG_SHIFT);
	si->phi = (uint32_t)(min64(si->hi, ta->last) >> PG_SHIFT);
}

static void copy_pages(struct pte *dst, const struct pte *src,
		       const struct stepinfo *si)
{
	if (si->pages)
		memcpy(dst + si->plo, src + si->plo,
		       (si->phi - si->plo + 1) * sizeof(*dst));
}

static struct tnot *pick_live(const struct tas *ta, unsigned need)
{
	struct tnot *c[LIVE_MAX + 1];
	size_t i, n = 0;

	for (i = 0; i < ta->nlive; i++)
		if ((ta->live[i]->flags & need) == need)
			c[n++] = ta->live[i];
	return n ? c[rnd(n)] : NULL;
}

/* Reentrancy: someone does something from a callback this step. */
static void inject_act(const struct tas *ta, unsigned need)
{
	struct tnot *tn = pick_live(ta, need);

	if (!tn)
		return;
	tn->act = 1 + (unsigned)rnd(ACT_N - 1);
	tn->act_at = 1 + (unsigned)rnd(3);
	note("(n%u act %u@%u) ", tn->id, tn->act, tn->act_at);
}

static void inject_failure(const struct tas *ta)
{
	struct tnot *tn = pct(75) ? pick_live(ta, SHADOW) : NULL;

	if (!tn)
		tn = pick_live(ta, MAP);
	if (!tn)
		return;
	tn->fail_at = 1 + (unsigned)rnd(3);
	tn->fail_all = !g.no_refuse_rollback && pct(12);
	note("(n%u refuses map %u%s) ", tn->id, tn->fail_at,
	     tn->fail_all ? "+" : "");
}

enum {
	TELL_SYNC,
	TELL_UPDATE,
	TELL_ENTRY
};

/* May update_entry state [a, b]?  Fills *e when it may. */
static bool entry_fits(const struct tas *ta, uint32_t a, uint32_t b,
		       struct viommu_entry *e)
{
	uint64_t n = (uint64_t)b - a + 1, ws, wl, lo, hi, s, l;
	size_t k;

	if ((n & (n - 1)) || (a & (n - 1)))
		return false;
	s = (uint64_t)a << PG_SHIFT;
	l = (((uint64_t)b + 1) << PG_SHIFT) - 1;
	k = leaves_in(ta, s, l);
	if (k > 1 ||
	    (k == 1 && (g.ents[0].iova != s || e_last(&g.ents[0]) != l)))
		return false;
	*e = k ? g.ents[0] :
		 (struct viommu_entry){ s, l - s, 0, VIOMMU_PERM_NONE };
	/* the whole widened range must be just that */
	window(ta, s, l, &ws, &wl, &lo, &hi);
	k = leaves_in(ta, ws, wl);
	return k == (e->perm ? 1u : 0u) && lo == ws && hi == wl;
}

/*
 * Tell the library about [s, l] (@how: sync, update with the model's
 * leaves, or update_entry of @one) and check every notifier of @ta against
 * the reference.
 */
static void tell(struct tas *ta, unsigned how, uint64_t s, uint64_t l,
		 unsigned flags, const struct viommu_entry *one)
{
	struct stepinfo si = { .wide = flags & VIOMMU_UPDATE_WIDE_UNMAP };
	struct viommu_error err;
	bool use_err = pct(80);
	uint64_t ws, wl;
	size_t i, n = 0;
	int ret, want;

	window(ta, s, l, &ws, &wl, &si.lo, &si.hi);
	if (how == TELL_UPDATE)
		n = leaves_in(ta, ws, wl);
	window_pages(ta, &si);
	if (pct(8))
		inject_failure(ta);
	if (pct(8))
		inject_act(ta, 0);
	ta->walk_fail = -1;
	ta->walk_err = 0;
	if (how == TELL_SYNC && pct(3)) {
		ta->walk_fail = (int)rnd(4);
		ta->walk_bogus = pct(50);
		note("(walk %s after %d) ",
		     ta->walk_bogus ? "hands garbage" : "fails", ta->walk_fail);
	}
	ta->hole_cap = (unsigned)rnd(ta->lg + 2);
	/* eff becomes what the change brings */
	for (i = si.plo; si.pages && i <= si.phi; i++)
		ta->eff[i] = ta->m[i];

	memset(&err, 0, sizeof(err));
	g.calling = ta;
	g.refusals = 0;
	switch (how) {
	case TELL_SYNC:
		note("sync [0x%" PRIx64 ", 0x%" PRIx64 "]%s", s, l,
		     si.wide ? " wide" : "");
		if (ta->idx == 1)
			g.st.syncs_step++;
		else
			g.st.syncs_walk++;
		ret = viommu_as_sync(ta->as, s, l, flags,
				     use_err ? &err : NULL);
		break;
	case TELL_UPDATE:
		note("update [0x%" PRIx64 ", 0x%" PRIx64 "] %zu entries%s", s,
		     l, n, si.wide ? " wide" : "");
		g.st.updates++;
		ret = viommu_as_update(ta->as, s, l, g.ents, n, flags,
				       use_err ? &err : NULL);
		break;
	default:
		note("update_entry 0x%" PRIx64 "/0x%" PRIx64 " -> 0x%" PRIx64
		     " %u",
		     one->iova, one->addr_mask, one->translated_addr,
		     one->perm);
		g.st.update_entries++;
		ret = viommu_as_update_entry(ta->as, one,
					     use_err ? &err : NULL);
		break;
	}
	g.calling = NULL;
	ta->walk_fail = -1;
	note(" = %d", ret);
	si.failed = g.refusals > 0;
	want = ta->walk_err ? ta->walk_err : si.failed ? -ENOSPC : 0;
	if (ret != want)
		violation(NULL, "result",
			  "as%d: the change returned %d, want %d (%u maps "
			  "refused, walk error %d)",
			  ta->idx, ret, want, g.refusals, ta->walk_err);
	if (ret && use_err && err.code != ret)
		violation(NULL, "result", "error code %d, returned %d",
			  err.code, ret);
	if (ret && use_err && !err.message[0])
		violation(NULL, "result", "no message for %d", ret);

	if (ta->walk_err) {
		/* the model could not be read: nothing happened */
		g.st.walk_errors++;
		check_silent(ta, NULL);
		copy_pages(ta->eff, ta->prev, &si);
		return;
	}
	for (i = 0; i < ta->nlive; i++) {
		struct tnot *tn = ta->live[i];

		if (tn->born_now) {
			if (tn->nrec)
				violation(tn, "rule 7",
					  "registered from a callback, told of "
					  "the change in flight");
			continue;
		}
		check_change_tn(ta, tn, &si);
		/* refusing the rollback too, it holds what it chose */
		if (tn->refused && tn->fail_all)
			tn->synced = false;
	}
	if (si.failed) {
		g.st.failed++;
		for (i = 0; i < ta->nlive; i++)
			g.st.fail_all += ta->live[i]->refused &&
					 ta->live[i]->fail_all;
		copy_pages(ta->eff, ta->prev, &si);
		if (ta->have_undo)
			region_revert(ta);
	} else {
		copy_pages(ta->prev, ta->eff, &si);
	}
}

static void step_change(struct tas *ta)
{
	unsigned r, how, flags = 0, k,
			 nchanges = pct(15) ? 2 + (unsigned)rnd(3) : 1;
	struct viommu_entry one;
	uint64_t s, l;

	for (k = 0; k < nchanges; k++)
		model_change(ta);
	g.st.changes++;
	s = (uint64_t)ta->undo_a << PG_SHIFT;
	l = (((uint64_t)ta->undo_b + 1) << PG_SHIFT) - 1;
	r = (unsigned)rnd(100);
	if (r < 6) {
		/* not told now: a later sync picks it up */
		g.st.pending++;
		note("(pending)");
		return;
	}
	if (r < 45) {
		how = TELL_SYNC;
	} else if (r < 52) {
		how = TELL_SYNC;
		s = 0;
		l = pct(50) ? UINT64_MAX : ta->last;
	} else if (r < 82 || !entry_fits(ta, ta->undo_a, ta->undo_b, &one)) {
		how = TELL_UPDATE;
	} else {
		how = TELL_ENTRY;
	}
	if (how != TELL_ENTRY) {
		/* cover the change, with slack: unaligned, or pages more */
		switch (rnd(4)) {
		case 1:
			s -= rnd(min64(s, PG_SIZE) + 1);
			l += rnd(min64(UINT64_MAX - l, PG_SIZE));
			break;
		case 2:
			s -= rnd(min64(s, 32 * PG_SIZE) + 1);
			l += rnd(min64(UINT64_MAX - l, 32 * PG_SIZE));
			break;
		}
		if (pct(10)) {
			flags = VIOMMU_UPDATE_WIDE_UNMAP;
			g.st.wide++;
		}
	}
	tell(ta, how, s, l, flags, &one);
}

/* Sync a random range, with no change of the model's own. */
static void step_sync_only(struct tas *ta)
{
	uint64_t s = rnd_to(sat_add(ta->last, PG_SIZE));
	uint64_t l = sat_add(s, rnd_to(ta->last));

	tell(ta, TELL_SYNC, s, l, pct(15) ? VIOMMU_UPDATE_WIDE_UNMAP : 0, NULL);
}

/*
 * Replay @tn: a map of every translation in effect in its range, in IOVA
 * order; nothing at all when it has no MAP (viommu.h).
 */
static void do_replay(struct tas *ta, struct tnot *tn, bool inject)
{
	bool shadow_fresh = is_shadow(tn->flags) && tn->fresh;
	struct viommu_error err;
	uint64_t next = tn->start;
	bool refused_seen = false, at_top = false;
	size_t k, ne, ns = 0;
	int ret;

	if (inject && pct(10)) {
		tn->fail_at = 1 + (unsigned)rnd(4);
		note("(refuses map %u) ", tn->fail_at);
	} else if (inject && pct(10)) {
		tn->act = 1 + (unsigned)rnd(ACT_N - 1);
		tn->act_at = 1 + (unsigned)rnd(3);
		note("(act %u@%u) ", tn->act, tn->act_at);
	}
	note("replay n%u", tn->id);
	g.st.replays++;
	memset(&err, 0, sizeof(err));
	g.calling = ta;
	g.refusals = 0;
	ret = viommu_notifier_replay(tn->h, &err);
	g.calling = NULL;
	note(" = %d; ", ret);
	if (ret != (g.refusals ? -ENOSPC : 0))
		violation(tn, "replay", "returned %d, %u maps refused", ret,
			  g.refusals);
	if (ret && err.code != ret)
		violation(tn, "replay", "error code %d, returned %d", err.code,
			  ret);
	check_silent(ta, tn);
	if (!tn->live)
		return;
	if (!(tn->flags & MAP)) {
		/* it never hears maps, so a replay tells it nothing */
		if (ret || tn->nrec)
			violation(tn, "replay",
				  "returned %d, %zu callbacks, for a notifier "
				  "without MAP",
				  ret, tn->nrec);
		return;
	}
	check_batch(tn);
	if (g.refusals)
		g.st.replay_failed++;
	ne = effect_runs(ta, tn->start, tn->last);
	g.runs_s = grow(g.runs_s, &g.cap_s, tn->nrec + 1, sizeof(*g.runs_s));
	for (k = 0; k < tn->nrec; k++) {
		const struct rec *r = &tn->rec[k];
		const struct viommu_event *ev = &r->ev;
		uint64_t a = ev->entry.iova, b = e_last(&ev->entry), p;

		if (r->kind != REC_EVENT || !check_common(tn, ev))
			continue;
		if (shadow_fresh)
			sh_apply(tn, r);
		if (ev->type == UNMAP && refused_seen)
			continue; /* taking back pieces before the refusal */
		if (ev->type != MAP || refused_seen) {
			violation(tn, "replay", "event type 0x%x at 0x%" PRIx64,
				  ev->type, a);
			continue;
		}
		if (a < next || at_top)
			violation(tn, "replay",
				  "map [0x%" PRIx64 ", 0x%" PRIx64 "] out of "
				  "order or overlapping",
				  a, b);
		next = b + 1;
		at_top = b == UINT64_MAX;
		if (b > ta->last) {
			violation(tn, "replay", "map beyond the space");
			continue;
		}
		for (p = a >> PG_SHIFT; p <= b >> PG_SHIFT; p++) {
			const struct pte *e = &ta->eff[p];
			uint64_t x = max64(a, p << PG_SHIFT);

			if (!e->perm || e->perm != ev->entry.perm ||
			    pte_pa_at(e, x) !=
				    ev->entry.translated_addr + (x - a)) {
				violation(tn, "replay",
					  "map [0x%" PRIx64 ", 0x%" PRIx64
					  "] -> 0x%" PRIx64 " %u is not in "
					  "effect",
					  a, b, ev->entry.translated_addr,
					  ev->entry.perm);
				break;
			}
		}
		if (r->refused)
			refused_seen = true;
		else
			ns = run_add(g.runs_s, ns, a, b,
				     ev->entry.translated_addr, ev->entry.perm);
	}
	if (!g.refusals && !runs_equal(g.runs_s, ns, g.runs_e, ne))
		report_runs(tn, "replay", "replayed", g.runs_s, ns, g.runs_e,
			    ne);
	if (shadow_fresh)
		tn->synced = !g.refusals;
}

static bool replayable(const struct tnot *tn)
{
	/* replaying a shadow twice would map over what it holds */
	return !is_shadow(tn->flags) || tn->fresh;
}

static void step_replay(struct tas *ta)
{
	struct tnot *c[LIVE_MAX + 1];
	size_t i, n = 0;

	for (i = 0; i < ta->nlive; i++)
		if (replayable(ta->live[i]))
			c[n++] = ta->live[i];
	if (!n) {
		step_sync_only(ta);
		return;
	}
	do_replay(ta, c[rnd(n)], true);
}

static void step_register(struct tas *ta)
{
	struct tnot *tn;

	if (ta->nlive >= MAIN_LIVE_MAX)
		return;
	tn = tn_register_random(ta);
	check_silent(ta, NULL);
	if (!tn)
		return;
	/* a new shadow usually hears what is in effect right away */
	if ((is_shadow(tn->flags) && pct(85)) || pct(15))
		do_replay(ta, tn, pct(20));
}

static void step_unregister(struct tas *ta)
{
	if (!ta->nlive)
		return;
	tn_unregister(ta->live[rnd(ta->nlive)]);
	check_silent(ta, NULL);
}

/* Rule 5: device-IOTLB invalidations reach exactly who asked, clipped. */
static void step_deviotlb(struct tas *ta)
{
	uint64_t iova, mask, last;
	unsigned ord;
	size_t i, k;
	int ret;

	ord = pct(10) ? (unsigned)rnd(PG_SHIFT) :
			PG_SHIFT + (unsigned)rnd(ta->lg + 3);
	if (pct(3) || ord >= 64) {
		iova = 0;
		mask = UINT64_MAX;
	} else {
		/* anywhere in twice the space */
		mask = (UINT64_C(1) << ord) - 1;
		iova = rnd_to(sat_add(ta->last >> ord, ta->last >> ord) + 1)
		       << ord;
	}
	last = iova + mask;
	if (pct(5) && mask) {
		note("deviotlb misaligned 0x%" PRIx64 "/0x%" PRIx64, iova | 1,
		     mask);
		g.calling = ta;
		ret = viommu_as_notify_deviotlb(ta->as, iova | 1, mask);
		g.calling = NULL;
		if (ret != -EINVAL)
			violation(NULL, "deviotlb",
				  "misaligned range returned %d", ret);
		g.st.bad_input++;
		check_silent(ta, NULL);
		return;
	}
	if (pct(10))
		inject_act(ta, 0);
	note("deviotlb 0x%" PRIx64 "/0x%" PRIx64, iova, mask);
	g.st.deviotlb++;
	g.calling = ta;
	ret = viommu_as_notify_deviotlb(ta->as, iova, mask);
	g.calling = NULL;
	if (ret)
		violation(NULL, "deviotlb", "returned %d", ret);
	for (i = 0; i < ta->nlive; i++) {
		struct tnot *tn = ta->live[i];
		uint64_t x = max64(iova, tn->start), y = min64(last, tn->last);
		uint64_t told = 0; /* bytes, modulo 2^64 like y - x + 1 */
		size_t nu = 0;

		if (tn->born_now || !(tn->flags & DEVTLB) || x > y) {
			if (tn->nrec)
				violation(tn, "rule 5",
					  "%zu callbacks for a device-IOTLB "
					  "invalidation [0x%" PRIx64
					  ", 0x%" PRIx64 "] not for it",
					  tn->nrec, iova, last);
			continue;
		}
		check_batch(tn);
		for (k = 0; k < tn->nrec; k++) {
			const struct viommu_event *ev = &tn->rec[k].ev;

			if (tn->rec[k].kind != REC_EVENT ||
			    !check_common(tn, ev))
				continue;
			if (ev->type != DEVTLB) {
				violation(tn, "rule 5",
					  "type 0x%x from a device-IOTLB "
					  "invalidation",
					  ev->type);
				continue;
			}
			if (ev->entry.iova < iova || e_last(&ev->entry) > last)
				violation(tn, "rule 5",
					  "[0x%" PRIx64 ", 0x%" PRIx64 "] "
					  "outside the invalidated range",
					  ev->entry.iova, e_last(&ev->entry));
			if (ev->entry.translated_addr)
				violation(tn, "event",
					  "device-IOTLB unmap [0x%" PRIx64
					  ", 0x%" PRIx64
					  "] has translated_addr "
					  "0x%" PRIx64 "; viommu.h says 0",
					  ev->entry.iova, e_last(&ev->entry),
					  ev->entry.translated_addr);
			push_ival(&g.iv_unmap, &g.cap_unmap, &nu, &ev->entry);
			told += ev->entry.addr_mask + 1;
		}
		nu = merge_ivals(g.iv_unmap, nu);
		if (!covered(g.iv_unmap, nu, x, y))
			violation(tn, "rule 5",
				  "[0x%" PRIx64 ", 0x%" PRIx64 "] invalidated, "
				  "not all told",
				  x, y);
		else if (told != y - x + 1)
			violation(tn, "rule 5",
				  "[0x%" PRIx64 ", 0x%" PRIx64 "] invalidated, "
				  "parts told more than once",
				  x, y);
	}
}

/* Malformed input changes nothing and tells nobody. */
static void step_bad_input(struct tas *ta)
{
	uint64_t s = rnd_to(ta->last), l = s + rnd_to(ta->last - s);
	uint64_t ws, wl, lo, hi;
	struct viommu_notifier_config cfg;
	struct viommu_notifier *h = NULL;
	struct viommu_entry e;
	unsigned before = viommu_as_notify_flags(ta->as);
	size_t n, i;
	int ret, r = (int)rnd(10);

	g.st.bad_input++;
	window(ta, s, l, &ws, &wl, &lo, &hi);
	n = leaves_in(ta, ws, wl);
	i = rnd(n + 1);
	g.calling = ta;
	if (r < 6) {
		uint64_t at = max64(wl, n ? e_last(&g.ents[n - 1]) : 0);

		if ((r == 0 || !n) && at <= UINT64_MAX - 2 * PG_SIZE) {
			/* past the widened range, after everything else */
			at = ((at >> PG_SHIFT) + 2) << PG_SHIFT;
			g.ents[n++] = (struct viommu_entry){ at, PG_SIZE - 1,
							     PG_SIZE, RW };
		} else if (r == 0 || !n) {
			/* nowhere left past it: a leaf without permissions */
			g.ents[n++] = (struct viommu_entry){ 0, PG_SIZE - 1,
							     PG_SIZE, 0 };
		} else if (r == 1) {
			g.ents[i % n].perm = VIOMMU_PERM_NONE;
		} else if (r == 2) {
			g.ents[i % n].perm |= 4;
		} else if (r == 3) {
			g.ents[i % n].iova |= 1;
		} else if (r == 4 && n >= 2) {
			e = g.ents[i % (n - 1)];
			g.ents[i % (n - 1)] = g.ents[i % (n - 1) + 1];
			g.ents[i % (n - 1) + 1] = e;
		} else {
			memmove(&g.ents[i % n + 1], &g.ents[i % n],
				(n - i % n) * sizeof(e));
			n++;
		}
		note("bad update %d [0x%" PRIx64 ", 0x%" PRIx64 "] %zu", r, s,
		     l, n);
		ret = viommu_as_update(ta->as, s, l, g.ents, n, 0, NULL);
	} else if (r == 6) {
		note("bad sync");
		ret = viommu_as_sync(ta->as, PG_SIZE, PG_SIZE - 1, 0, NULL);
		if (ret == -EINVAL)
			ret = viommu_as_sync(ta->as, s, l, 1u << 7, NULL);
	} else if (r == 7) {
		e = (struct viommu_entry){ PG_SIZE, 2 * PG_SIZE - 1, PG_SIZE,
					   RW };
		note("bad update_entry");
		ret = viommu_as_update_entry(ta->as, &e, NULL);
	} else if (r == 8) {
		note("bad update NULL");
		ret = viommu_as_update(ta->as, s, l, NULL, 1, 0, NULL);
	} else {
		note("bad register");
		viommu_notifier_config_init(&cfg, 1u << 5, on_event, NULL);
		ret = viommu_notifier_register(ta->as, &cfg, &h, NULL);
		if (ret == -EINVAL) {
			viommu_notifier_config_init(&cfg, MAP, on_event, NULL);
			cfg.start = 2;
			cfg.last = 1;
			ret = viommu_notifier_register(ta->as, &cfg, &h, NULL);
		}
		if (ret == -EINVAL) {
			viommu_notifier_config_init(&cfg, UNMAP, NULL, NULL);
			ret = viommu_notifier_register(ta->as, &cfg, &h, NULL);
		}
		if (h || viommu_as_notify_flags(ta->as) != before)
			violation(NULL, "register",
				  "a bad registration left a handle or "
				  "changed the union");
	}
	g.calling = NULL;
	if (ret != -EINVAL)
		violation(NULL, "input", "as%d: malformed input returned %d",
			  ta->idx, ret);
	check_silent(ta, NULL);
}

/* Translate asks the model, which decides with the access asked for. */
static void query_translate(const struct tas *ta, uint64_t iova)
{
	const struct pte *m = iova <= ta->last ? &ta->m[iova >> PG_SHIFT] :
						 NULL;
	unsigned access = 1 + (unsigned)rnd(3);
	struct viommu_translation t;
	struct viommu_entry want;
	bool ok;
	int ret;

	ret = viommu_as_translate(ta->as, iova, access, &t);
	if (ret) {
		violation(NULL, "translate", "returned %d", ret);
		return;
	}
	if (!m) {
		ok = t.fault == VIOMMU_FAULT_OUT_OF_RANGE;
	} else if (!m->perm) {
		ok = t.fault == VIOMMU_FAULT_NOT_PRESENT;
	} else {
		want = pte_entry(m);
		ok = same_entry(&t.entry, &want) &&
		     t.fault == ((m->perm & access) == access ?
					 VIOMMU_FAULT_NONE :
					 VIOMMU_FAULT_PERMISSION);
	}
	if (!ok)
		violation(NULL, "translate",
			  "as%d 0x%" PRIx64 " access %u: fault %d entry "
			  "0x%" PRIx64 " perm %u",
			  ta->idx, iova, access, t.fault,
			  t.entry.translated_addr, t.entry.perm);
}

/* Lookup reads what the library holds: what is in effect. */
static void query_lookup(const struct tas *ta, uint64_t iova)
{
	const struct pte *e = iova <= ta->last ? &ta->eff[iova >> PG_SHIFT] :
						 NULL;
	struct viommu_entry he, want;
	bool found = viommu_as_lookup(ta->as, iova, &he), ok;

	if (e && e->perm) {
		want = pte_entry(e);
		ok = found && same_entry(&he, &want);
	} else {
		ok = !found;
	}
	if (!ok)
		violation(NULL, "lookup",
			  "as%d 0x%" PRIx64 ": found %d, iova 0x%" PRIx64,
			  ta->idx, iova, found, found ? he.iova : 0);
}

static int count_cb(void *ctx, const struct viommu_entry *e)
{
	size_t *n = ctx;

	return ++*n >= 3 ? 42 : 0;
}

/* The entries overlapping a range come unclipped; a walk stops on demand. */
static void query_walk(const struct tas *ta)
{
	uint64_t s = rnd_to(ta->last), l = sat_add(s, rnd_to(ta->last / 4));
	uint64_t p;
	size_t n = 0, want = 0;
	int ret;

	ret = viommu_as_for_each_mapping(ta->as, s, l, count_cb, &n);
	for (p = s >> PG_SHIFT; p < ta->npages && p <= l >> PG_SHIFT;) {
		if (!ta->eff[p].perm) {
			p++;
			continue;
		}
		want++;
		p = ta->eff[p].head + (UINT64_C(1) << ta->eff[p].order);
	}
	if (n != min64(want, 3) || ret != (want >= 3 ? 42 : 0))
		violation(NULL, "walk",
			  "as%d for_each_mapping [0x%" PRIx64 ", 0x%" PRIx64
			  "]: %zu entries, ret %d; %zu in effect",
			  ta->idx, s, l, n, ret, want);
}

static void step_queries(struct tas *ta)
{
	struct viommu_translation t;
	unsigned k;

	g.st.queries++;
	note("queries");
	ta->hole_cap = ta->lg + 1;
	for (k = 0; k < 8; k++) {
		uint64_t iova = pct(90) ? rnd_to(ta->last) : rnd64();

		query_translate(ta, iova);
		query_lookup(ta, iova);
	}
	if (viommu_as_translate(ta->as, 0, 0, &t) != -EINVAL)
		violation(NULL, "translate", "access 0 accepted");
	query_walk(ta);
}

/* ------------------------------------------------------------------ */
/* The walk                                                             */

static void step_reset(void)
{
	size_t a, i;

	g.desc[0] = '\0';
	g.step_violations = 0;
	for (a = 0; a < N_AS; a++) {
		struct tas *ta = &g.as[a];

		ta->have_undo = false;
		for (i = 0; i < ta->nlive; i++) {
			struct tnot *tn = ta->live[i];

			tn->nrec = 0;
			tn->fail_at = 0;
			tn->fail_all = false;
			tn->maps_seen = 0;
			tn->refused = false;
			tn->act = ACT_NONE;
			tn->act_calls = 0;
		}
	}
}

/* Rebuild the reference from the library after a reported violation. */
static void heal(struct tas *ta);

static void step_end(struct tas *ta)
{
	size_t i;

	for (i = 0; i < ta->nlive; i++) {
		struct tnot *tn = ta->live[i];

		if (tn->nrec)
			tn->fresh = false;
		if (tn->born_now) {
			tn->born_now = false;
			tn->synced =
				is_shadow(tn->flags) &&
				range_empty(ta, ta->eff, tn->start, tn->last);
		}
	}
	check_state(ta);
	if (g.step % 512 == 0)
		for (i = 0; i < N_AS; i++)
			if (&g.as[i] != ta)
				check_state(&g.as[i]);
	memcpy(g.trace[g.step % TRACE_N], g.desc, DESC_MAX);
	if (g.step_violations) {
		print_trace();
		if (g.keep_going)
			heal(ta);
	}
}

static void one_step(void)
{
	struct tas *ta = &g.as[rnd(N_AS)];
	unsigned r = (unsigned)rnd(100);

	step_reset();
	note("as%d ", ta->idx);
	if (ta->may_refuse && pct(2)) {
		ta->refuse_map = !ta->refuse_map;
		note("refuse_map=%d; ", ta->refuse_map);
	}
	if (r < 60)
		step_change(ta);
	else if (r < 69)
		ta->nlive < MAIN_LIVE_MAX ? step_register(ta) :
					    step_unregister(ta);
	else if (r < 75)
		ta->nlive ? step_unregister(ta) : step_register(ta);
	else if (r < 81)
		step_replay(ta);
	else if (r < 87)
		step_deviotlb(ta);
	else if (r < 90)
		step_bad_input(ta);
	else if (r < 93)
		step_queries(ta);
	else
		step_sync_only(ta);
	step_end(ta);
}

static int heal_cb(void *ctx, const struct viommu_entry *e)
{
	struct tas *ta = ctx;
	struct pte v = { .pa = e->translated_addr, .perm = (uint8_t)e->perm };
	uint64_t p;

	if (e->addr_mask < PG_SIZE - 1 || e_last(e) > ta->last)
		return 0;
	v.head = (uint32_t)(e->iova >> PG_SHIFT);
	v.order = (uint8_t)((e->addr_mask == UINT64_MAX ?
				     64 :
				     flog2(e->addr_mask + 1)) -
			    PG_SHIFT);
	for (p = e->iova >> PG_SHIFT; p <= e_last(e) >> PG_SHIFT; p++)
		ta->eff[p] = v;
	return 0;
}

static void heal(struct tas *ta)
{
	size_t i;

	memset(ta->eff, 0, ta->npages * sizeof(*ta->eff));
	viommu_as_for_each_mapping(ta->as, 0, UINT64_MAX, heal_cb, ta);
	memcpy(ta->prev, ta->eff, ta->npages * sizeof(*ta->eff));
	ta->model_flags = viommu_as_notify_flags(ta->as);
	for (i = 0; i < ta->nlive; i++)
		ta->live[i]->synced = false;
}

static void as_init(struct tas *ta, int idx)
{
	unsigned lv;

	memset(ta, 0, sizeof(*ta));
	ta->idx = idx;
	ta->npages = UINT32_C(1) << (g.shape->size_shift[idx] - PG_SHIFT);
	ta->last = ((uint64_t)ta->npages << PG_SHIFT) - 1; /* wraps at 2^64 */
	ta->lg = flog2(ta->npages);
	assert_true(ta->lg <= MAX_LG);
	ta->may_refuse = idx == 1;
	ta->walk_fail = -1;
	ta->m = calloc(ta->npages, sizeof(*ta->m));
	ta->undo = calloc(ta->npages, sizeof(*ta->undo));
	ta->eff = calloc(ta->npages, sizeof(*ta->eff));
	ta->prev = calloc(ta->npages, sizeof(*ta->prev));
	assert_true(ta->m && ta->undo && ta->eff && ta->prev);
	for (lv = 0; lv <= ta->lg; lv++) {
		ta->cnt[lv] = calloc(ta->npages >> lv, sizeof(uint32_t));
		assert_non_null(ta->cnt[lv]);
	}
	assert_int_equal(viommu_as_new(idx == 1 ? g.model_step : g.model_walk,
				       idx == 1 ? "step" : "walk", ta, &ta->as,
				       NULL),
			 0);
}

static void as_fini(struct tas *ta)
{
	unsigned lv;

	/* some go explicitly, the rest with the address space */
	while (ta->nlive > ta->nlive / 2 + 1)
		tn_unregister(ta->live[0]);
	viommu_as_free(ta->as);
	for (lv = 0; lv <= ta->lg; lv++)
		free(ta->cnt[lv]);
	free(ta->m);
	free(ta->undo);
	free(ta->eff);
	free(ta->prev);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static void print_stats(void)
{
	const struct stats *s = &g.st;

	print_message("[%s] changes %" PRIu64 " (pending %" PRIu64
		      ", refused %" PRIu64 ", refused also in rollback %" PRIu64
		      ", walk errors %" PRIu64 ", wide %" PRIu64
		      "); syncs walk/step %" PRIu64 "/%" PRIu64
		      ", updates %" PRIu64 ", update_entry %" PRIu64 "\n",
		      g.shape->name, s->changes, s->pending, s->failed,
		      s->fail_all, s->walk_errors, s->wide, s->syncs_walk,
		      s->syncs_step, s->updates, s->update_entries);
	print_message("[%s] registrations %" PRIu64 " (refused %" PRIu64
		      ", from callbacks %" PRIu64 "), unregistrations %" PRIu64
		      " (from callbacks %" PRIu64 "), replays %" PRIu64
		      " (refused %" PRIu64 "), device-IOTLB %" PRIu64
		      ", bad input %" PRIu64 ", queries %" PRIu64 "\n",
		      g.shape->name, s->regs, s->reg_refused, s->cb_regs,
		      s->unregs, s->cb_unregs, s->replays, s->replay_failed,
		      s->deviotlb, s->bad_input, s->queries);
	print_message("[%s] lookups from rollback unmaps that still find the "
		      "entry: %" PRIu64 "; 2^64 events %" PRIu64
		      ", 2^64 holes %" PRIu64 "\n",
		      g.shape->name, s->stale_lookups, s->huge_events,
		      s->huge_holes);
	print_message("[%s] events %" PRIu64 ", shadow checks %" PRIu64
		      ", callback acts %" PRIu64 "/%" PRIu64 "/%" PRIu64
		      "/%" PRIu64 "/%" PRIu64 ", most entries held %" PRIu64
		      "\n",
		      g.shape->name, s->events, s->shadow_checks,
		      s->acts[ACT_UNREG_SELF], s->acts[ACT_UNREG_OTHER],
		      s->acts[ACT_REGISTER], s->acts[ACT_REG_UNREG],
		      s->acts[ACT_BUSY], s->max_entries);
}

static void run_walk(const struct shape *shape, uint64_t seed_salt)
{
	const char *seed_env = getenv("VIOMMU_TEST_SEED");
	bool quick = getenv("VIOMMU_TEST_QUICK") || RUNNING_ON_VALGRIND;
	uint64_t steps;
	struct tnot *tn;
	size_t a;

	memset(&g, 0, sizeof(g));
	g.shape = shape;
	g.keep_going = getenv("VIOMMU_TEST_KEEP_GOING") != NULL;
	g.no_refuse_rollback = getenv("VIOMMU_TEST_NO_ROLLBACK_REFUSAL") !=
			       NULL;
	g.strict_lookup = getenv("VIOMMU_TEST_LAX_LOOKUP") == NULL;
	if (seed_env && !strcmp(seed_env, "random")) {
		FILE *f = fopen("/dev/urandom", "rb");

		if (!f || fread(&g.seed, sizeof(g.seed), 1, f) != 1)
			g.seed = (uint64_t)time(NULL);
		if (f)
			fclose(f);
	} else {
		g.seed = env_u64("VIOMMU_TEST_SEED", DEFAULT_SEED);
	}
	steps = env_u64("VIOMMU_TEST_STEPS",
			quick ? QUICK_STEPS : DEFAULT_STEPS);
	g.nsteps = steps / shape->steps_div;
	rng = g.seed ^ seed_salt;
	print_message("[%s] seed 0x%" PRIx64 " (VIOMMU_TEST_SEED), %" PRIu64
		      " steps\n",
		      shape->name, g.seed, g.nsteps);

	assert_int_equal(viommu_model_new(&ops_walk, NULL, &g.model_walk, NULL),
			 0);
	assert_int_equal(viommu_model_new(&ops_step, NULL, &g.model_step, NULL),
			 0);
	for (a = 0; a < N_AS; a++)
		as_init(&g.as[a], (int)a);
	g.stamp = calloc(1u << MAX_LG, sizeof(*g.stamp));
	g.first_map = calloc(1u << MAX_LG, sizeof(*g.first_map));
	assert_true(g.stamp && g.first_map);

	for (g.step = 1; g.step <= g.nsteps; g.step++) {
		one_step();
		if (g.violations && !g.keep_going)
			break;
	}
	if (!g.violations)
		for (a = 0; a < N_AS; a++)
			check_state(&g.as[a]);
	print_stats();

	for (a = 0; a < N_AS; a++)
		as_fini(&g.as[a]);
	viommu_model_free(g.model_walk);
	viommu_model_free(g.model_step);
	while ((tn = g.all)) {
		g.all = tn->next;
		free(tn->sh);
		free(tn->rec);
		free(tn);
	}
	free(g.iv_map);
	free(g.iv_unmap);
	free(g.runs_e);
	free(g.runs_s);
	free(g.ents);
	free(g.stamp);
	free(g.first_map);
	if (g.violations)
		fail_msg(
			"%u delivery-rule violations (walk '%s', seed 0x%" PRIx64
			"; rerun with VIOMMU_TEST_SEED=0x%" PRIx64 ")",
			g.violations, shape->name, g.seed, g.seed);
}

static void test_differential_big(void **state)
{
	run_walk(&shape_big, 0);
}

static void test_differential_small(void **state)
{
	run_walk(&shape_small, UINT64_C(0x736d616c6c));
}

static void test_differential_huge(void **state)
{
	run_walk(&shape_huge, UINT64_C(0x68756765));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_differential_big),
		cmocka_unit_test(test_differential_small),
		cmocka_unit_test(test_differential_huge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
