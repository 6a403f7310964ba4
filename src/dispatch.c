/* SPDX-License-Identifier: MIT */
/*
 * Delivering events to notifiers: who is concerned, clipping to each one's
 * range, batching, and staying safe while callbacks (un)register notifiers.
 *
 * Reentrancy contract (see docs/design.md):
 *  - a notifier unregistered during a dispatch, by anyone, hears nothing
 *    more, not even the rest of the event in flight; its memory is kept
 *    until the dispatch ends, so the snapshot below never dangles;
 *  - a notifier registered during a dispatch hears nothing of the change in
 *    flight (its gen is newer than the dispatch's), only later ones;
 *  - the others are not affected: each event's list of concerned notifiers
 *    is a snapshot taken before its first callback.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

void viommu__dispatch_begin(struct viommu_as *as, struct viommu__dispatch *d)
{
	as->busy++;
	*d = (struct viommu__dispatch){ .as = as };
	d->serial = ++as->change_serial;
	d->gen = as->gen;
}

void viommu__dispatch_end(struct viommu__dispatch *d)
{
	struct viommu_as *as = d->as;
	size_t i;

	/* batch_end may (un)register notifiers: it never grows @batched */
	for (i = 0; i < as->batched.n; i++) {
		struct viommu_notifier *n = as->batched.v[i];

		if (!n->dead && n->cfg.batch_end)
			n->cfg.batch_end(n, n->cfg.opaque);
	}
	as->batched.n = 0;
	viommu__as_unbusy(as);
}

void viommu__as_unbusy(struct viommu_as *as)
{
	struct viommu_notifier *z;

	if (--as->busy)
		return;
	while ((z = as->zombies)) {
		as->zombies = z->next_zombie;
		free(z);
	}
}

static bool wants(const struct viommu__dispatch *d,
		  const struct viommu_notifier *n, unsigned need,
		  unsigned exclude)
{
	return !n->dead && n->gen <= d->gen && (n->cfg.flags & need) == need &&
	       !(n->cfg.flags & exclude);
}

static int call(struct viommu__dispatch *d, struct viommu_notifier *n,
		unsigned type, const struct viommu_entry *e)
{
	struct viommu_event ev = { .type = type, .entry = *e };
	int ret;

	if (n->batch_serial != d->serial) {
		n->batch_serial = d->serial;
		if ((n->cfg.batch_begin || n->cfg.batch_end) &&
		    !viommu__nvec_push(&d->as->batched, n) &&
		    n->cfg.batch_begin) {
			n->cfg.batch_begin(n, n->cfg.opaque);
			if (n->dead)
				return 0;
		}
	}
	if (type != VIOMMU_NOTIFY_MAP)
		ev.entry.perm = VIOMMU_PERM_NONE;
	ret = n->cfg.notify(n, &ev, n->cfg.opaque);
	/* the contract is a negative errno: keep it so for our callers */
	return ret > 0 ? -EIO : ret;
}

/* Take back the pieces [start, last] of a clipped map that @n accepted. */
static void unmap_pieces(struct viommu__dispatch *d, struct viommu_notifier *n,
			 const struct viommu_entry *e, uint64_t start,
			 uint64_t last)
{
	struct viommu_entry piece = *e;

	if (!(n->cfg.flags & VIOMMU_NOTIFY_UNMAP))
		return;
	while (!n->dead) {
		piece.iova = start;
		piece.addr_mask = viommu__largest_aligned_mask(start, last);
		piece.translated_addr = e->translated_addr + (start - e->iova);
		call(d, n, VIOMMU_NOTIFY_UNMAP, &piece);
		if (viommu__last(&piece) == last)
			return;
		start = viommu__last(&piece) + 1;
	}
}

/*
 * Give @n its copy of @e: whole when it lies inside n's range, else the
 * part inside, cut again into naturally aligned powers of two.  A refused
 * map piece takes back the pieces before it, so @n ends as it began.
 */
static int notify_clipped(struct viommu__dispatch *d, struct viommu_notifier *n,
			  unsigned type, const struct viommu_entry *e)
{
	uint64_t last = viommu__last(e);
	uint64_t start = e->iova > n->cfg.start ? e->iova : n->cfg.start;
	uint64_t stop = last < n->cfg.last ? last : n->cfg.last;
	struct viommu_entry piece = *e;
	int ret;

	if (start == e->iova && stop == last)
		return call(d, n, type, e);
	for (uint64_t at = start; !n->dead;) {
		piece.iova = at;
		piece.addr_mask = viommu__largest_aligned_mask(at, stop);
		/* no perm: a range with no known target (wide or device-IOTLB) */
		piece.translated_addr =
			e->perm ? e->translated_addr + (at - e->iova) : 0;
		ret = call(d, n, type, &piece);
		if (ret && type == VIOMMU_NOTIFY_MAP) {
			if (at > start && d->defer_takeback) {
				d->takeback_pending = true;
				d->takeback_n = n;
				d->takeback_e = *e;
				d->takeback_start = start;
				d->takeback_last = at - 1;
			} else if (at > start) {
				unmap_pieces(d, n, e, start, at - 1);
			}
			return ret;
		}
		if (viommu__last(&piece) == stop)
			break;
		at = viommu__last(&piece) + 1;
	}
	return 0;
}

int viommu__deliver(struct viommu__dispatch *d, unsigned type,
		    const struct viommu_entry *e, unsigned need,
		    unsigned exclude, size_t *failed_at)
{
	struct viommu_as *as = d->as;
	struct viommu__nvec *snap = &as->snapshot;
	size_t i;
	int ret;

	snap->n = 0;
	/* capacity for every notifier is reserved when one registers */
	ret = viommu__nindex_query(&as->index, e->iova, viommu__last(e), snap);
	if (ret) {
		if (!failed_at)
			return 0;
		*failed_at = 0;
		return type == VIOMMU_NOTIFY_MAP ? ret : 0;
	}
	for (i = 0; i < snap->n; i++) {
		struct viommu_notifier *n = snap->v[i];

		if (!wants(d, n, need, exclude))
			continue;
		ret = notify_clipped(d, n, type, e);
		if (ret && type == VIOMMU_NOTIFY_MAP && failed_at) {
			*failed_at = i;
			return ret;
		}
	}
	return 0;
}

void viommu__deliver_prefix(struct viommu__dispatch *d, unsigned type,
			    const struct viommu_entry *e, unsigned need,
			    size_t count)
{
	struct viommu__nvec *snap = &d->as->snapshot;
	size_t i;

	for (i = 0; i < count && i < snap->n; i++) {
		struct viommu_notifier *n = snap->v[i];

		if (wants(d, n, need, 0))
			notify_clipped(d, n, type, e);
	}
}

void viommu__deliver_takeback(struct viommu__dispatch *d)
{
	if (!d->takeback_pending)
		return;
	d->takeback_pending = false;
	unmap_pieces(d, d->takeback_n, &d->takeback_e, d->takeback_start,
		     d->takeback_last);
}

int viommu__deliver_one(struct viommu__dispatch *d, struct viommu_notifier *n,
			unsigned type, const struct viommu_entry *e)
{
	if (n->dead)
		return 0;
	return notify_clipped(d, n, type, e);
}
