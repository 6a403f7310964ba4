/* SPDX-License-Identifier: MIT */
/*
 * The host shadow: a MAP|UNMAP notifier that keeps a host IOMMU equal to
 * the guest's mappings, through a struct viommu_host_ops backend.
 *
 * The shadow keeps its host mappings as *runs*: ranges [start, last] that
 * translate linearly to gpa with one permission, each exactly one host
 * mapping, in a balanced tree.  Guest events cover whole pieces (delivery
 * rule 3) and a run is made of whole pieces, so an unmap always removes
 * whole runs plus, at most, a remainder on each side.
 *
 * Each run is in one state:
 *  - LIVE: on the host;
 *  - PENDING: on the host, made in this batch and not yet considered for
 *    merging (coalescing only);
 *  - DETACHED: the rest of a run an unmap cut in this batch: off the host
 *    until the batch ends, so a change that unmaps a merged run piece by
 *    piece (as every unmap of a coalesced request does) unmaps it once and
 *    re-maps nothing;
 *  - UNSYNCED: the guest maps it but the host refused to take it back (a
 *    rest at the entry limit, a failed merge); retried when a change ends.
 *    The host then lacks part of the guest's mappings, never the reverse.
 *
 * Undoing a change must not fail: when a map is refused the core tells the
 * shadow the reverse of what it already heard, and a reverse map that
 * finds no room would otherwise be lost (the core does not stop for it).
 * So the shadow remembers the pieces each batch unmapped; a map that puts
 * one back exactly is a reversal, takes its cut rests back in the same
 * host mapping, and if the host is still full it waits, unsynced, for the
 * end of the batch, when the reversal is complete and what was there
 * before fits again.  A new map, on the other hand, is refused when the
 * rests of this batch's cuts do not fit beside it, so the guest's older
 * mappings keep their place and the change is undone.
 *
 * Why maps go to the host one by one even when coalescing: a refusal must
 * be returned from the MAP callback, so the core can undo the change and
 * the model answer the guest.  Merging waits for batch_end (one host unmap
 * over the run's pieces, one map of the whole run), or happens at once when
 * the host is full.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <viommu/shadow.h>

#include "internal.h"
#include "range_tree.h"

/* The shadow never asks the host for more than this at once (size fits). */
#define MAX_HOST_MAPPING (UINT64_C(1) << 63)

enum run_state {
	RUN_LIVE,
	RUN_PENDING,
	RUN_DETACHED,
	RUN_UNSYNCED
};

struct run {
	struct viommu__rnode node;
	uint64_t gpa;
	unsigned perm;
	enum run_state state;
	uint64_t batch; /* the batch that made it: merging within a batch */
	bool reported;	/* unsynced, and counted in host_errors */
	struct run *prev, *next; /* on the list of its state, if any */
};

/* A piece unmapped in this batch: a map that restores it is a reversal. */
struct gone {
	struct viommu__rnode node;
	uint64_t gpa;
	unsigned perm;
};

struct viommu_shadow {
	pthread_mutex_t lock;
	struct viommu_as *as;
	struct viommu_host_backend be;
	struct viommu_shadow_config cfg;
	uint64_t cap; /* the largest run merging may make */
	struct viommu_notifier *notifier;
	struct viommu__rtree runs;
	struct viommu__rtree gone; /* pieces unmapped in this batch */
	struct run *pending, *detached, *unsynced; /* list heads */
	uint64_t batch;
	bool in_batch;
	struct viommu_shadow_counters c;
	struct viommu_error last_err;
};

static struct run *run_of(struct viommu__rnode *n)
{
	return n ? viommu__container_of(n, struct run, node) : NULL;
}

static struct run *next_run(struct run *r)
{
	return run_of(viommu__rtree_next(&r->node));
}

static struct run *prev_run(struct run *r)
{
	return run_of(viommu__rtree_prev(&r->node));
}

static const char *backend_name(const struct viommu_shadow *s)
{
	return s->be.ops->name ? s->be.ops->name : "host";
}

/* Lists and counters follow the run's state; tree membership is separate. */
static struct run **list_of(struct viommu_shadow *s, enum run_state st)
{
	return st == RUN_PENDING  ? &s->pending :
	       st == RUN_DETACHED ? &s->detached :
	       st == RUN_UNSYNCED ? &s->unsynced :
				    NULL;
}

static bool on_host(const struct run *r)
{
	return r->state == RUN_LIVE || r->state == RUN_PENDING;
}

static void count_state(struct viommu_shadow *s, enum run_state st, int delta)
{
	if (st == RUN_DETACHED)
		return;
	if (st == RUN_UNSYNCED) {
		s->c.unsynced += (uint64_t)(int64_t)delta;
		return;
	}
	s->c.host_entries += (uint64_t)(int64_t)delta;
	if (s->c.host_entries > s->c.host_peak)
		s->c.host_peak = s->c.host_entries;
}

static void enter_state(struct viommu_shadow *s, struct run *r,
			enum run_state st)
{
	struct run **head = list_of(s, st);

	r->state = st;
	r->prev = NULL;
	r->next = NULL;
	if (head) {
		r->next = *head;
		if (*head)
			(*head)->prev = r;
		*head = r;
	}
	count_state(s, st, 1);
}

static void leave_state(struct viommu_shadow *s, struct run *r)
{
	struct run **head = list_of(s, r->state);

	if (head) {
		if (r->prev)
			r->prev->next = r->next;
		else
			*head = r->next;
		if (r->next)
			r->next->prev = r->prev;
	}
	count_state(s, r->state, -1);
}

static void set_state(struct viommu_shadow *s, struct run *r, enum run_state st)
{
	leave_state(s, r);
	enter_state(s, r, st);
}

static void run_insert(struct viommu_shadow *s, struct run *r,
		       enum run_state st)
{
	viommu__rtree_insert(&s->runs, &r->node);
	enter_state(s, r, st);
}

static void run_erase(struct viommu_shadow *s, struct run *r)
{
	leave_state(s, r);
	viommu__rtree_remove(&s->runs, &r->node);
}

static void record(struct viommu_shadow *s, int code, const char *what,
		   uint64_t start, uint64_t last)
{
	viommu__error(&s->last_err, code,
		      "shadow of '%s': %s [0x%llx, 0x%llx] on %s: %s",
		      viommu_as_name(s->as), what, (unsigned long long)start,
		      (unsigned long long)last, backend_name(s),
		      viommu_strerror(code));
}

/* [start, last] spans at most MAX_HOST_MAPPING bytes. */
static int host_map(struct viommu_shadow *s, uint64_t start, uint64_t last,
		    uint64_t gpa, unsigned perm)
{
	int ret;

	s->c.host_maps++;
	ret = s->be.ops->map(s->be.opaque, start, last - start + 1, gpa, perm);
	return ret > 0 ? -EIO : ret;
}

static int host_map_run(struct viommu_shadow *s, const struct run *r)
{
	return host_map(s, r->node.start, r->node.last, r->gpa, r->perm);
}

static int host_unmap(struct viommu_shadow *s, uint64_t start, uint64_t last)
{
	int ret;

	s->c.host_unmaps++;
	ret = s->be.ops->unmap(s->be.opaque, start, last - start + 1);
	return ret > 0 ? -EIO : ret;
}

/*
 * Remove from the host the runs from @first to @last (in order, adjacent
 * in the tree): one call over them all when the size fits, as type1 v2
 * removes every mapping inside a range whose ends cut none.
 */
static int host_unmap_runs(struct viommu_shadow *s, struct run *first,
			   struct run *last)
{
	struct run *r;
	int ret = 0, one;

	if (last->node.last - first->node.start != UINT64_MAX)
		return host_unmap(s, first->node.start, last->node.last);
	for (r = first;; r = next_run(r)) {
		if (on_host(r)) {
			one = host_unmap(s, r->node.start, r->node.last);
			ret = ret ? ret : one;
		}
		if (r == last)
			return ret;
	}
}

static uint64_t run_size_m1(const struct run *r)
{
	return r->node.last - r->node.start;
}

/* @b's target continues @a's, without wrapping past 2^64. */
static bool target_follows(const struct run *a, const struct run *b)
{
	return a->gpa <= UINT64_MAX - run_size_m1(a) &&
	       a->gpa + run_size_m1(a) != UINT64_MAX &&
	       a->gpa + run_size_m1(a) + 1 == b->gpa;
}

/* @b continues @a: adjacent, the same permission, the target follows. */
static bool continues(const struct run *a, const struct run *b)
{
	return a->node.last != UINT64_MAX &&
	       a->node.last + 1 == b->node.start && a->perm == b->perm &&
	       target_follows(a, b);
}

/* @a, just left of @b, and @b, both on the host, could be one mapping. */
static bool joinable(const struct run *a, const struct run *b)
{
	return continues(a, b) && on_host(a) && on_host(b);
}

/* Merging must not disturb what earlier changes mapped, unless asked. */
static bool eligible(const struct viommu_shadow *s, const struct run *r)
{
	return on_host(r) && (r->batch == s->batch || s->cfg.coalesce_live);
}

static bool fits(const struct viommu_shadow *s, uint64_t start, uint64_t last)
{
	return last - start <= s->cap - 1;
}

static int map_merging(struct viommu_shadow *s, struct run *r, bool any);

/*
 * Put the unsynced runs back on the host, as far as it takes them; when
 * it is full, merged into whatever neighbour they continue (restoring a
 * lost mapping is worth re-mapping an older one).  Returns -ENOSPC when
 * the host is full for one of them, else 0.
 */
static int retry_unsynced(struct viommu_shadow *s)
{
	struct run *r, *next;
	int ret;

	for (r = s->unsynced; r; r = next) {
		next = r->next;
		ret = host_map_run(s, r);
		if (ret == -ENOSPC && s->cfg.coalesce) {
			run_erase(s, r);
			ret = map_merging(s, r, true);
			viommu__rtree_insert(&s->runs, &r->node);
			/* back at the list's head: @next is still the next */
			enter_state(s, r, ret ? RUN_UNSYNCED : RUN_LIVE);
		}
		if (!ret) {
			if (r->state == RUN_UNSYNCED)
				set_state(s, r, RUN_LIVE);
			r->reported = false;
			continue;
		}
		/* a full host stays full for the others too */
		if (ret == -ENOSPC)
			return ret;
	}
	return 0;
}

/* A run the host could not take (back): the guest maps it, the host not. */
static void lose(struct viommu_shadow *s, struct run *r, int code,
		 const char *what)
{
	record(s, code, what, r->node.start, r->node.last);
	s->c.host_errors++;
	set_state(s, r, RUN_UNSYNCED);
	r->reported = true;
}

/*
 * Make the runs @first..@last (joinable, on the host) one host mapping:
 * one unmap over them, one map of the whole.  When the map fails, each is
 * mapped again as it was.
 */
static void merge_group(struct viommu_shadow *s, struct run *first,
			struct run *last)
{
	struct run *r, *next;
	uint64_t k = 1, end;
	int ret;

	for (r = first; r != last; r = next_run(r))
		k++;
	ret = host_unmap_runs(s, first, last);
	if (ret) {
		/* type1 removes nothing then: the runs stay as they are */
		record(s, ret, "could not unmap to merge", first->node.start,
		       last->node.last);
		return;
	}
	ret = host_map(s, first->node.start, last->node.last, first->gpa,
		       first->perm);
	if (ret) {
		record(s, ret, "could not map merged", first->node.start,
		       last->node.last);
		for (r = first;; r = next) {
			next = next_run(r);
			ret = host_map_run(s, r);
			if (ret)
				lose(s, r, ret, "could not restore");
			if (r == last)
				return;
		}
	}
	end = last->node.last;
	for (r = next_run(first);; r = next) {
		next = r == last ? NULL : next_run(r);
		run_erase(s, r);
		free(r);
		if (!next)
			break;
	}
	first->node.last = end; /* the order by start is unchanged */
	if (first->state == RUN_PENDING)
		set_state(s, first, RUN_LIVE);
	first->batch = s->batch;
	s->c.merges += k - 1;
}

/* Merge every run of the pending list with its eligible neighbours. */
static void consolidate(struct viommu_shadow *s)
{
	struct run *r, *first, *last, *p;

	while ((r = s->pending)) {
		set_state(s, r, RUN_LIVE);
		first = last = r;
		while ((p = prev_run(first)) && joinable(p, first) &&
		       eligible(s, p) &&
		       fits(s, p->node.start, last->node.last))
			first = p;
		while ((p = next_run(last)) && joinable(last, p) &&
		       eligible(s, p) &&
		       fits(s, first->node.start, p->node.last))
			last = p;
		if (first != last)
			merge_group(s, first, last);
	}
}

/*
 * Put the rests of this batch's cuts back on the host.  They count as made
 * in this batch: the host mapping is new, so merging it disturbs nothing.
 * When the host is full: before a new map (@final false) the rest stays
 * detached and -ENOSPC is returned, so the new map is refused; when the
 * batch ends (@final true) it is lost until there is room.
 */
static int map_detached(struct viommu_shadow *s, bool final)
{
	struct run *r;
	int ret;

	while ((r = s->detached)) {
		s->c.remaps++;
		r->batch = s->batch;
		ret = host_map_run(s, r);
		if (ret == -ENOSPC && s->cfg.coalesce && s->pending) {
			/* the rests mapped so far may merge: room for this one */
			consolidate(s);
			s->c.remaps++;
			ret = host_map_run(s, r);
		}
		if (!ret)
			set_state(s, r, RUN_PENDING);
		else if (ret == -ENOSPC && !final)
			return ret;
		else
			lose(s, r, ret, "could not map again the rest of");
	}
	return 0;
}

/*
 * The host is full: merge new run @r (not in the tree, not on the host)
 * into its eligible neighbours (@any: any neighbour on the host), so it
 * costs no entry.  Returns 0, or the error of the merged map (the
 * neighbours are then mapped again as they were), or -ENOSPC when nothing
 * could be merged and the host is still full.
 */
static int map_merging(struct viommu_shadow *s, struct run *r, bool any)
{
	struct run *left =
		run_of(viommu__rtree_floor(&s->runs, r->node.start - 1));
	struct run *right =
		run_of(viommu__rtree_find(&s->runs, r->node.last + 1));
	uint64_t start = r->node.start, last = r->node.last, gpa = r->gpa;
	int ret;

	/* r is off the host (new, or unsynced): its neighbours must be on */
	if (r->node.start == 0 || !left || !continues(left, r) ||
	    !on_host(left) || !(any || eligible(s, left)) ||
	    !fits(s, left->node.start, last))
		left = NULL;
	if (r->node.last == UINT64_MAX || !right || !continues(r, right) ||
	    !on_host(right) || !(any || eligible(s, right)) ||
	    !fits(s, left ? left->node.start : start, right->node.last))
		right = NULL;
	if (!left && !right)
		return host_map_run(s, r);
	if (left) {
		start = left->node.start;
		gpa = left->gpa;
	}
	if (right)
		last = right->node.last;
	/* one unmap covers the neighbours; r's range holds nothing yet */
	ret = host_unmap(s, start, last);
	if (ret) {
		record(s, ret, "could not unmap to merge", start, last);
		return host_map_run(s, r);
	}
	ret = host_map(s, start, last, gpa, r->perm);
	if (ret) {
		int again;

		if (left && (again = host_map_run(s, left)))
			lose(s, left, again, "could not restore");
		if (right && (again = host_map_run(s, right)))
			lose(s, right, again, "could not restore");
		return ret;
	}
	if (left) {
		run_erase(s, left);
		free(left);
	}
	if (right) {
		run_erase(s, right);
		free(right);
	}
	r->node.start = start;
	r->node.last = last;
	r->gpa = gpa;
	s->c.merges += (left != NULL) + (right != NULL);
	return 0;
}

/* Is [start, last] already mapped exactly so?  (A replay racing a change.) */
static bool already_mapped(struct viommu_shadow *s, uint64_t start,
			   uint64_t last, uint64_t gpa, unsigned perm)
{
	uint64_t at = start;
	struct run *r;

	for (;;) {
		r = run_of(viommu__rtree_find(&s->runs, at));
		if (!r || r->perm != perm ||
		    r->gpa + (at - r->node.start) != gpa + (at - start))
			return false;
		if (r->node.last >= last)
			return true;
		at = r->node.last + 1;
	}
}

static void forget_gone(struct viommu_shadow *s)
{
	struct viommu__rnode *n;

	while ((n = s->gone.root)) {
		viommu__rtree_remove(&s->gone, n);
		free(viommu__container_of(n, struct gone, node));
	}
}

/* Remember that [start, last] -> gpa, perm went in this batch. */
static void note_gone(struct viommu_shadow *s, uint64_t start, uint64_t last,
		      uint64_t gpa, unsigned perm)
{
	struct gone *g;

	/*
	 * Without coalescing a reversal always fits: each state it passes
	 * through, the change passed through before.  A range unmapped twice
	 * in a batch: the first is what was there.
	 */
	if (!s->cfg.coalesce ||
	    viommu__rtree_first_overlap(&s->gone, start, last))
		return;
	g = malloc(sizeof(*g));
	if (!g)
		return; /* then a reversal is taken for a new map: refusable */
	g->node.start = start;
	g->node.last = last;
	g->gpa = gpa;
	g->perm = perm;
	viommu__rtree_insert(&s->gone, &g->node);
}

/* Does this map put back a piece unmapped in this batch?  (A reversal.) */
static bool take_gone(struct viommu_shadow *s, uint64_t start, uint64_t last,
		      uint64_t gpa, unsigned perm)
{
	struct viommu__rnode *n = viommu__rtree_find(&s->gone, start);
	struct gone *g;

	if (!n || n->start != start || n->last != last)
		return false;
	g = viommu__container_of(n, struct gone, node);
	if (g->gpa != gpa || g->perm != perm)
		return false;
	viommu__rtree_remove(&s->gone, n);
	free(g);
	return true;
}

/*
 * The rests off the host (cut in this batch, or unsynced) that new run @r
 * continues on either side, or NULL.  A piece mapped again after its run
 * was cut (the reverse of a refused change) takes its rests back in the
 * same host mapping, so undoing a change needs no more host mappings than
 * there were before it.
 */
static struct run *rest_before(struct viommu_shadow *s, struct run *r)
{
	struct run *l;

	if (!r->node.start)
		return NULL;
	l = run_of(viommu__rtree_find(&s->runs, r->node.start - 1));
	return l && !on_host(l) && continues(l, r) &&
			       fits(s, l->node.start, r->node.last) ?
		       l :
		       NULL;
}

static struct run *rest_after(struct viommu_shadow *s, struct run *r,
			      uint64_t from)
{
	struct run *n;

	if (r->node.last == UINT64_MAX)
		return NULL;
	n = run_of(viommu__rtree_find(&s->runs, r->node.last + 1));
	return n && !on_host(n) && continues(r, n) &&
			       fits(s, from, n->node.last) ?
		       n :
		       NULL;
}

/* A guest map of [start, last] (at most MAX_HOST_MAPPING bytes). */
static int map_range(struct viommu_shadow *s, uint64_t start, uint64_t last,
		     uint64_t gpa, unsigned perm)
{
	bool reversal = take_gone(s, start, last, gpa, perm);
	struct run *r, *before, *after;
	int ret;

	if (viommu__rtree_first_overlap(&s->runs, start, last)) {
		if (already_mapped(s, start, last, gpa, perm))
			return 0;
		ret = -EEXIST;
		goto refuse;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		ret = -ENOMEM;
		goto refuse;
	}
	r->node.start = start;
	r->node.last = last;
	r->gpa = gpa;
	r->perm = perm;
	r->batch = s->batch;
	before = rest_before(s, r);
	after = rest_after(s, r, before ? before->node.start : start);
	if (before) {
		run_erase(s, before);
		r->node.start = before->node.start;
		r->gpa = before->gpa;
	}
	if (after) {
		run_erase(s, after);
		r->node.last = after->node.last;
	}
	ret = 0;
	if (!reversal) {
		/* what the guest already has comes before what it asks now */
		if (s->unsynced)
			ret = retry_unsynced(s);
		if (!ret && s->detached)
			ret = map_detached(s, false);
	}
	if (!ret)
		ret = host_map_run(s, r);
	if (ret == -ENOSPC && s->cfg.coalesce) {
		/* make room: merge this batch's runs, then this one into them */
		consolidate(s);
		ret = map_merging(s, r, false);
	}
	if (ret && reversal) {
		/* never refuse a reversal: it fits once the change is undone */
		run_insert(s, r, RUN_UNSYNCED);
		goto placed;
	}
	if (ret) {
		/* the rests wait, as they were, for the end of the batch */
		if (before)
			run_insert(s, before, before->state);
		if (after)
			run_insert(s, after, after->state);
		free(r);
		goto refuse;
	}
	run_insert(s, r, s->cfg.coalesce ? RUN_PENDING : RUN_LIVE);
placed:
	s->c.remaps += (before != NULL) + (after != NULL);
	free(before);
	free(after);
	return 0;
refuse:
	s->c.refusals++;
	record(s, ret, "refused to map", start, last);
	return ret;
}

/*
 * The rest of a run cut by an unmap: mapped again when the batch ends (an
 * unsynced run's rest stays unsynced).
 */
static void place_rest(struct viommu_shadow *s, struct run *r,
		       enum run_state was)
{
	viommu__rtree_insert(&s->runs, &r->node);
	enter_state(s, r, was == RUN_UNSYNCED ? RUN_UNSYNCED : RUN_DETACHED);
	/* r->reported stays as the cut run's */
}

/* A guest unmap of [start, last]: whole pieces, so whole runs but two. */
static void unmap_range(struct viommu_shadow *s, uint64_t start, uint64_t last)
{
	struct run *first, *end, *r, *next, *left = NULL, *right = NULL;
	enum run_state left_was = RUN_LIVE, right_was = RUN_LIVE;
	bool any_host = false;
	int ret;

	first = run_of(viommu__rtree_first_overlap(&s->runs, start, last));
	if (!first)
		return; /* never mapped here: a refused or skipped map */
	for (end = first; (r = next_run(end)) && r->node.start <= last;)
		end = r;
	for (r = first;; r = next_run(r)) {
		uint64_t lo = r->node.start > start ? r->node.start : start;
		uint64_t hi = r->node.last < last ? r->node.last : last;

		any_host |= on_host(r);
		note_gone(s, lo, hi, r->gpa + (lo - r->node.start), r->perm);
		if (r == end)
			break;
	}
	if (any_host) {
		ret = host_unmap_runs(s, first, end);
		if (ret) {
			/* the host still maps what the guest revoked */
			record(s, ret, "could not unmap", first->node.start,
			       end->node.last);
			s->c.host_errors++;
		}
	}
	/* the rest of a run cut at either end, reusing its node */
	for (r = first;; r = next) {
		bool cut_left = r == first && r->node.start < start;
		bool cut_right = r == end && r->node.last > last;

		next = r == end ? NULL : next_run(r);
		run_erase(s, r);
		if (cut_left) {
			left = r;
			left_was = r->state;
		}
		if (cut_right && !cut_left) {
			right = r;
			right_was = r->state;
		} else if (cut_right) {
			/* one run cut in the middle: its right rest needs a node */
			right = malloc(sizeof(*right));
			right_was = left_was;
			if (right) {
				*right = *r;
			} else {
				/* nothing tracks it, so nothing maps it */
				record(s, -ENOMEM, "out of memory: dropped",
				       last + 1, r->node.last);
				s->c.host_errors++;
			}
		}
		if (!cut_left && !cut_right)
			free(r);
		if (!next)
			break;
	}
	if (right) {
		right->gpa += last + 1 - right->node.start;
		right->node.start = last + 1;
	}
	if (left) {
		left->node.last = start - 1;
		place_rest(s, left, left_was);
	}
	if (right)
		place_rest(s, right, right_was);
}

/*
 * The change is over: merge its runs (which frees host mappings), put the
 * rests of its cuts back, merge those too, and retry what was lost.
 */
static void end_batch(struct viommu_shadow *s)
{
	struct run *r;

	if (s->cfg.coalesce)
		consolidate(s);
	if (s->detached) {
		map_detached(s, true);
		if (s->cfg.coalesce)
			consolidate(s);
	}
	if (s->unsynced)
		retry_unsynced(s);
	/* what a reversal could not place and still does not fit is lost */
	for (r = s->unsynced; r; r = r->next) {
		if (!r->reported) {
			r->reported = true;
			s->c.host_errors++;
			record(s, -ENOSPC, "could not restore", r->node.start,
			       r->node.last);
		}
	}
	forget_gone(s);
	s->in_batch = false;
}

static void shadow_begin(struct viommu_notifier *n, void *opaque)
{
	struct viommu_shadow *s = opaque;

	pthread_mutex_lock(&s->lock);
	s->batch++;
	s->in_batch = true;
	s->c.batches++;
	forget_gone(s);
	pthread_mutex_unlock(&s->lock);
}

static void shadow_end(struct viommu_notifier *n, void *opaque)
{
	struct viommu_shadow *s = opaque;

	pthread_mutex_lock(&s->lock);
	end_batch(s);
	pthread_mutex_unlock(&s->lock);
}

static int shadow_notify(struct viommu_notifier *n,
			 const struct viommu_event *ev, void *opaque)
{
	struct viommu_shadow *s = opaque;
	const struct viommu_entry *e = &ev->entry;
	uint64_t last = e->iova + e->addr_mask;
	bool lone;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	lone = !s->in_batch;
	if (lone) {
		/* the core brackets every change; be safe if one is not */
		s->batch++;
		s->c.batches++;
	}
	if (ev->type == VIOMMU_NOTIFY_MAP) {
		s->c.guest_maps++;
		if (e->addr_mask != UINT64_MAX) {
			ret = map_range(s, e->iova, last, e->translated_addr,
					e->perm);
		} else {
			/* 2^64 bytes: two host mappings, so sizes fit */
			ret = map_range(s, 0, MAX_HOST_MAPPING - 1,
					e->translated_addr, e->perm);
			if (!ret) {
				ret = map_range(s, MAX_HOST_MAPPING, UINT64_MAX,
						e->translated_addr +
							MAX_HOST_MAPPING,
						e->perm);
				if (ret)
					unmap_range(s, 0, MAX_HOST_MAPPING - 1);
			}
		}
	} else if (ev->type == VIOMMU_NOTIFY_UNMAP) {
		s->c.guest_unmaps++;
		unmap_range(s, e->iova, last);
	}
	if (lone)
		end_batch(s);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

void viommu_shadow_config_init(struct viommu_shadow_config *cfg)
{
	*cfg = (struct viommu_shadow_config){ 0 };
}

/* Unmap and forget every run (the notifier is gone or never came). */
static void remove_all(struct viommu_shadow *s)
{
	struct viommu__rnode *n;

	forget_gone(s);
	while ((n = viommu__rtree_first(&s->runs))) {
		struct run *r = run_of(n);

		if (on_host(r) && host_unmap(s, r->node.start, r->node.last))
			s->c.host_errors++;
		run_erase(s, r);
		free(r);
	}
}

static int check_backend(const struct viommu_host_backend *be,
			 struct viommu_error *err)
{
	if (!be || !be->ops)
		return viommu__error(err, -EINVAL, "shadow: no host backend");
	if (be->ops->version < 1 || be->ops->version > VIOMMU_HOST_OPS_VERSION)
		return viommu__error(err, -EINVAL,
				     "shadow: host ops version %u: this "
				     "library knows 1..%u",
				     be->ops->version, VIOMMU_HOST_OPS_VERSION);
	if (!be->ops->map || !be->ops->unmap)
		return viommu__error(
			err, -EINVAL, "shadow: host ops %s without %s",
			be->ops->name ? be->ops->name : "(unnamed)",
			be->ops->map ? "unmap" : "map");
	return 0;
}

int viommu_shadow_new(struct viommu_as *as,
		      const struct viommu_host_backend *backend,
		      const struct viommu_shadow_config *cfg,
		      struct viommu_shadow **out, struct viommu_error *err)
{
	struct viommu_notifier_config nc;
	struct viommu_shadow *s;
	int ret;

	if (!as || !out)
		return viommu__error(err, -EINVAL,
				     "shadow: no address space or result");
	*out = NULL;
	ret = check_backend(backend, err);
	if (ret)
		return ret;
	s = calloc(1, sizeof(*s));
	if (!s)
		return viommu__error(err, -ENOMEM, "out of memory");
	s->as = as;
	s->be = *backend;
	if (cfg)
		s->cfg = *cfg;
	s->cap = s->cfg.max_run && s->cfg.max_run < MAX_HOST_MAPPING ?
			 s->cfg.max_run :
			 MAX_HOST_MAPPING;
	viommu__rtree_init(&s->runs);
	viommu__rtree_init(&s->gone);
	pthread_mutex_init(&s->lock, NULL);

	viommu_notifier_config_init(
		&nc, VIOMMU_NOTIFY_MAP | VIOMMU_NOTIFY_UNMAP, shadow_notify, s);
	nc.batch_begin = shadow_begin;
	nc.batch_end = shadow_end;
	ret = viommu_notifier_register(as, &nc, &s->notifier, err);
	if (!ret) {
		ret = viommu_notifier_replay(s->notifier, err);
		if (ret) {
			viommu_notifier_unregister(s->notifier);
			pthread_mutex_lock(&s->lock);
			remove_all(s);
			pthread_mutex_unlock(&s->lock);
			if (s->last_err.code)
				viommu__error(err, ret, "%s (replay)",
					      s->last_err.message);
		}
	}
	if (ret) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return ret;
	}
	*out = s;
	return 0;
}

void viommu_shadow_free(struct viommu_shadow *s)
{
	if (!s)
		return;
	viommu_notifier_unregister(s->notifier);
	pthread_mutex_lock(&s->lock);
	remove_all(s);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void viommu_shadow_counters(struct viommu_shadow *s,
			    struct viommu_shadow_counters *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->c;
	pthread_mutex_unlock(&s->lock);
}

void viommu_shadow_last_error(struct viommu_shadow *s, struct viommu_error *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->last_err;
	pthread_mutex_unlock(&s->lock);
}
