/* SPDX-License-Identifier: MIT */
/*
 * The change engine: the model says what is in effect, the engine compares
 * it with what it holds and emits exactly the events the consumers need.
 *
 * One change runs in four steps:
 *  1. widen: the range grows to the held entries that overlap its ends, so
 *     no held entry is compared in part.  The model's entries may reach out
 *     further, but an aligned power of two that overlaps another contains it
 *     or lies in it, so any held entry out there lies inside one of them;
 *  2. diff: the model's entries stream past a cursor over the held ones; an
 *     identical entry costs a comparison, anything else lands in @removed
 *     (held, now gone or different) or @added (new or different);
 *  3. apply: the held map takes the new state, before any callback runs, so
 *     a consumer looking up an address it was just told to drop no longer
 *     finds it;
 *  4. deliver: per cluster of overlapping changed entries, unmaps of the old
 *     ones then maps of the new ones.  A refused map reverses everything
 *     delivered, in reverse order, and the held map goes back (all or
 *     nothing).
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

#define entry_vec viommu__entry_vec

static int entry_vec_push(struct entry_vec *ev, const struct viommu_entry *e)
{
	if (ev->n == ev->cap) {
		size_t cap = ev->cap ? ev->cap * 2 : 16;
		struct viommu_entry *nv = realloc(ev->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		ev->v = nv;
		ev->cap = cap;
	}
	ev->v[ev->n++] = *e;
	return 0;
}

struct change_event {
	unsigned type;
	const struct viommu_entry *entry; /* into diff.removed / diff.added */
};

struct diff {
	struct viommu_as *as;
	struct viommu_error *err;
	uint64_t start, last; /* the widened range */
	uint64_t lo, hi;      /* hull of the range and the model's entries */
	bool started;	      /* the cursor is positioned */
	bool have_cur;
	struct viommu__emap_cursor cur;
	struct viommu_entry held; /* the entry at @cur */
	bool have_prev;
	uint64_t prev_last;
	int error;
	struct entry_vec *removed, *added; /* the address space's scratch */
};

static bool same_entry(const struct viommu_entry *a,
		       const struct viommu_entry *b)
{
	return a->iova == b->iova && a->addr_mask == b->addr_mask &&
	       a->translated_addr == b->translated_addr && a->perm == b->perm;
}

static void cursor_load(struct diff *df)
{
	if (df->have_cur)
		viommu__emap_get(&df->cur, &df->held);
}

static void cursor_next(struct diff *df)
{
	df->have_cur = viommu__emap_next(&df->cur);
	cursor_load(df);
}

static void cursor_start(struct diff *df, uint64_t addr)
{
	df->started = true;
	df->have_cur = viommu__emap_seek(&df->as->entries, addr, &df->cur);
	cursor_load(df);
}

/* Out of memory while collecting: say so, once, and stop the diff. */
static int diff_oom(struct diff *df)
{
	return df->error = viommu__error(df->err, -ENOMEM, "out of memory");
}

static int diff_fail(struct diff *df, int code, const char *what,
		     const struct viommu_entry *e)
{
	df->error = viommu__error(df->err, code,
				  "address space '%s': model entry iova=0x%llx "
				  "addr_mask=0x%llx: %s",
				  df->as->name, (unsigned long long)e->iova,
				  (unsigned long long)e->addr_mask, what);
	return df->error;
}

/* Held entries before @addr are gone from the new state. */
static int drop_held_before(struct diff *df, uint64_t addr)
{
	while (df->have_cur && viommu__last(&df->held) < addr) {
		if (entry_vec_push(df->removed, &df->held))
			return -ENOMEM;
		cursor_next(df);
	}
	return 0;
}

/* Feed one entry of the new state; a viommu_walk_fn for the model. */
static int diff_feed(void *ctx, const struct viommu_entry *e)
{
	struct diff *df = ctx;
	bool unchanged = false;

	if (!e->perm || (e->perm & ~VIOMMU_PERM_RW))
		return diff_fail(df, -EINVAL, "permissions must be r, w or rw",
				 e);
	if (!viommu__is_aligned_entry(e->iova, e->addr_mask))
		return diff_fail(df, -EINVAL,
				 "not a naturally aligned power of two", e);
	if (viommu__last(e) < df->start || e->iova > df->last)
		return diff_fail(df, -EINVAL, "outside the range being updated",
				 e);
	if (df->have_prev &&
	    (df->prev_last == UINT64_MAX || e->iova <= df->prev_last))
		return diff_fail(df, -EINVAL,
				 "overlaps or precedes the entry before it", e);

	if (!df->started) {
		df->lo = e->iova < df->start ? e->iova : df->start;
		cursor_start(df, df->lo);
	}
	if (drop_held_before(df, e->iova))
		return diff_oom(df);
	/*
	 * Held entries overlapping @e lie inside it or contain it (aligned
	 * powers of two); a containing one was widened to in step 1.
	 */
	while (df->have_cur && df->held.iova <= viommu__last(e)) {
		if (same_entry(&df->held, e))
			unchanged = true;
		else if (entry_vec_push(df->removed, &df->held))
			return diff_oom(df);
		cursor_next(df);
	}
	if (!unchanged && entry_vec_push(df->added, e))
		return diff_oom(df);
	df->have_prev = true;
	df->prev_last = viommu__last(e);
	return 0;
}

static int diff_finish(struct diff *df)
{
	if (!df->started) {
		df->lo = df->start;
		cursor_start(df, df->start);
	}
	df->hi = df->last;
	if (df->have_prev && df->prev_last > df->hi)
		df->hi = df->prev_last;
	while (df->have_cur && df->held.iova <= df->hi) {
		if (entry_vec_push(df->removed, &df->held))
			return diff_oom(df);
		cursor_next(df);
	}
	return 0;
}

/* Scratch kept between changes, unless a big one grew it. */
#define SCRATCH_KEEP 4096

static void trim(struct entry_vec *v)
{
	if (v->cap > SCRATCH_KEEP) {
		free(v->v);
		*v = (struct entry_vec){ 0 };
	}
}

void viommu__change_scratch_free(struct viommu_as *as)
{
	free(as->removed.v);
	free(as->added.v);
	free(as->events);
	as->removed = as->added = (struct entry_vec){ 0 };
	as->events = NULL;
	as->events_cap = 0;
}

static void diff_init(struct diff *df, struct viommu_as *as,
		      struct viommu_error *err)
{
	*df = (struct diff){ .as = as, .err = err };
	df->removed = &as->removed;
	df->added = &as->added;
	df->removed->n = df->added->n = 0;
}

static void diff_free(struct diff *df)
{
	struct viommu_as *as = df->as;

	trim(df->removed);
	trim(df->added);
	if (as->events_cap > SCRATCH_KEEP) {
		free(as->events);
		as->events = NULL;
		as->events_cap = 0;
	}
}

/* Step 1: grow [start, last] to the held entries overlapping its ends. */
static void widen(struct viommu_as *as, uint64_t *start, uint64_t *last)
{
	struct viommu_entry e;

	if (viommu__emap_lookup(&as->entries, *start, &e))
		*start = e.iova;
	if (viommu__emap_lookup(&as->entries, *last, &e))
		*last = viommu__last(&e);
}

/*
 * Order the changes for delivery: clusters of overlapping changed entries
 * in IOVA order, each as unmaps of its old entries then maps of its new.
 */
static struct change_event *order_events(const struct diff *df, size_t *count)
{
	const struct entry_vec *rm = df->removed, *ad = df->added;
	struct viommu_as *as = df->as;
	struct change_event *ev = as->events;
	size_t i = 0, j = 0, k = 0, need = rm->n + ad->n;

	if (need > as->events_cap) {
		ev = realloc(as->events, need * sizeof(*ev));
		if (!ev)
			return NULL;
		as->events = ev;
		as->events_cap = need;
	}
	while (i < rm->n || j < ad->n) {
		size_t i0 = i, j0 = j;
		uint64_t cl_last;

		if (j == ad->n || (i < rm->n && rm->v[i].iova <= ad->v[j].iova))
			cl_last = viommu__last(&rm->v[i++]);
		else
			cl_last = viommu__last(&ad->v[j++]);
		for (;;) {
			const struct viommu_entry *next;

			if (i < rm->n && rm->v[i].iova <= cl_last)
				next = &rm->v[i++];
			else if (j < ad->n && ad->v[j].iova <= cl_last)
				next = &ad->v[j++];
			else
				break;
			if (viommu__last(next) > cl_last)
				cl_last = viommu__last(next);
		}
		for (; i0 < i; i0++)
			ev[k++] = (struct change_event){ VIOMMU_NOTIFY_UNMAP,
							 &rm->v[i0] };
		for (; j0 < j; j0++)
			ev[k++] = (struct change_event){ VIOMMU_NOTIFY_MAP,
							 &ad->v[j0] };
	}
	*count = k;
	return ev;
}

static bool same_place(const struct viommu_entry *a,
		       const struct viommu_entry *b)
{
	return a->iova == b->iova && a->addr_mask == b->addr_mask;
}

/* Whether @e (of one vector) has a same-place twin in @other (sorted). */
static bool has_twin(const struct viommu_entry *e,
		     const struct entry_vec *other, size_t *cursor)
{
	while (*cursor < other->n && other->v[*cursor].iova < e->iova)
		(*cursor)++;
	return *cursor < other->n && same_place(&other->v[*cursor], e);
}

/*
 * Replace @from by @to in the held map; all or nothing.  An entry whose
 * target or permissions changed in place is rewritten where it is (a
 * retarget costs one descent and no allocation); the rest is removed and
 * inserted.
 */
static int swap_entries(struct viommu_as *as, const struct entry_vec *from,
			const struct entry_vec *to)
{
	size_t i, k, done = 0;
	int ret = 0;

	pthread_rwlock_wrlock(&as->map_lock);
	for (i = k = 0; i < from->n; i++) {
		if (has_twin(&from->v[i], to, &k))
			viommu__emap_replace(&as->entries, &to->v[k]);
		else
			viommu__emap_remove(&as->entries, from->v[i].iova);
	}
	for (done = k = 0; done < to->n; done++) {
		if (has_twin(&to->v[done], from, &k))
			continue;
		ret = viommu__emap_insert(&as->entries, &to->v[done]);
		if (ret)
			break;
	}
	if (ret) {
		for (i = k = 0; i < done; i++)
			if (!has_twin(&to->v[i], from, &k))
				viommu__emap_remove(&as->entries,
						    to->v[i].iova);
		/* removing freed at least as much as re-inserting needs */
		for (i = k = 0; i < from->n; i++) {
			if (has_twin(&from->v[i], to, &k))
				viommu__emap_replace(&as->entries, &from->v[i]);
			else
				viommu__emap_insert(&as->entries, &from->v[i]);
		}
	}
	pthread_rwlock_unlock(&as->map_lock);
	return ret;
}

struct wide_ctx {
	struct viommu__dispatch *d;
};

static int wide_unmap_piece(void *ctx, const struct viommu_entry *piece)
{
	struct wide_ctx *wc = ctx;
	size_t unused;

	viommu__deliver(wc->d, VIOMMU_NOTIFY_UNMAP, piece, VIOMMU_NOTIFY_UNMAP,
			VIOMMU_NOTIFY_MAP, &unused);
	return 0;
}

/*
 * Take back a map that is being undone: the shadows that heard it, and the
 * unmap-only consumers too, since while the change was in flight a device
 * may have cached the new entry through translate (rule 2 lets them hear
 * more).  Those never held it: their unmap names no target.
 */
static void revoke_new(struct viommu__dispatch *d, const struct viommu_entry *e)
{
	struct viommu_entry range = { e->iova, e->addr_mask, 0,
				      VIOMMU_PERM_NONE };

	viommu__deliver(d, VIOMMU_NOTIFY_UNMAP, e,
			VIOMMU_NOTIFY_MAP | VIOMMU_NOTIFY_UNMAP, 0, NULL);
	viommu__deliver(d, VIOMMU_NOTIFY_UNMAP, &range, VIOMMU_NOTIFY_UNMAP,
			VIOMMU_NOTIFY_MAP, NULL);
}

/* Put back what events [0, upto) told the exact shadows. */
static void reverse_events(struct viommu__dispatch *d,
			   const struct change_event *ev, size_t upto)
{
	const unsigned shadow = VIOMMU_NOTIFY_MAP | VIOMMU_NOTIFY_UNMAP;

	while (upto--) {
		if (ev[upto].type == VIOMMU_NOTIFY_MAP)
			revoke_new(d, ev[upto].entry);
		else
			viommu__deliver(d, VIOMMU_NOTIFY_MAP, ev[upto].entry,
					shadow, 0, NULL);
	}
}

/* Steps 3 and 4. */
static int commit(struct diff *df, unsigned flags)
{
	struct viommu_as *as = df->as;
	const bool wide = flags & VIOMMU_UPDATE_WIDE_UNMAP;
	const unsigned unmap_need = wide ? VIOMMU_NOTIFY_UNMAP |
						    VIOMMU_NOTIFY_MAP :
					   VIOMMU_NOTIFY_UNMAP;
	struct viommu__dispatch d;
	struct change_event *ev = NULL;
	size_t n_ev = 0, i, failed_at = 0;
	int ret = 0;

	if (!df->removed->n && !df->added->n && !wide)
		return 0;
	if (df->removed->n + df->added->n) {
		ev = order_events(df, &n_ev);
		if (!ev)
			return viommu__error(df->err, -ENOMEM, "out of memory");
		ret = swap_entries(as, df->removed, df->added);
		if (ret) {
			return viommu__error(df->err, ret, "out of memory");
		}
	}

	viommu__dispatch_begin(as, &d);
	d.defer_takeback = true;
	if (wide) {
		struct wide_ctx wc = { &d };

		viommu_split_range(df->lo, df->hi, wide_unmap_piece, &wc);
	}
	for (i = 0; i < n_ev; i++) {
		bool map = ev[i].type == VIOMMU_NOTIFY_MAP;

		ret = viommu__deliver(&d, ev[i].type, ev[i].entry,
				      map ? VIOMMU_NOTIFY_MAP : unmap_need, 0,
				      &failed_at);
		if (ret)
			break;
	}
	if (ret) {
		/* state first, so lookups from the callbacks see it */
		swap_entries(as, df->added, df->removed);
		viommu__deliver_takeback(&d);
		/* a refusal while reversing is taken back on the spot */
		d.defer_takeback = false;
		viommu__deliver_prefix(&d, VIOMMU_NOTIFY_UNMAP, ev[i].entry,
				       VIOMMU_NOTIFY_MAP | VIOMMU_NOTIFY_UNMAP,
				       failed_at);
		/* the refused entry may be cached by unmap-only ones too */
		{
			struct viommu_entry range = { ev[i].entry->iova,
						      ev[i].entry->addr_mask, 0,
						      VIOMMU_PERM_NONE };

			viommu__deliver(&d, VIOMMU_NOTIFY_UNMAP, &range,
					VIOMMU_NOTIFY_UNMAP, VIOMMU_NOTIFY_MAP,
					NULL);
		}
		reverse_events(&d, ev, i);
		viommu__error(
			df->err, ret,
			"address space '%s': a notifier refused the map "
			"of iova=0x%llx addr_mask=0x%llx (%s); the change "
			"was undone",
			as->name, (unsigned long long)ev[i].entry->iova,
			(unsigned long long)ev[i].entry->addr_mask,
			viommu_strerror(ret));
	}
	viommu__dispatch_end(&d);
	return ret;
}

static int enter(struct viommu_as *as, struct viommu_error *err)
{
	viommu__as_lock(as);
	if (as->busy) {
		viommu__as_unlock(as);
		return viommu__error(err, -EBUSY,
				     "cannot change address space '%s' from "
				     "inside one of its notifications",
				     as->name);
	}
	return 0;
}

static int check_args(struct viommu_as *as, uint64_t start, uint64_t last,
		      unsigned flags, struct viommu_error *err)
{
	if (!as)
		return viommu__error(err, -EINVAL, "no address space");
	if (start > last)
		return viommu__error(err, -EINVAL,
				     "range [0x%llx, 0x%llx] is empty",
				     (unsigned long long)start,
				     (unsigned long long)last);
	if (flags & ~VIOMMU_UPDATE_WIDE_UNMAP)
		return viommu__error(err, -EINVAL, "unknown update flags 0x%x",
				     flags);
	return 0;
}

/*
 * The end every change shares: close the diff, apply and deliver it unless
 * feeding it failed, then give the address space back.
 */
static int finish(struct diff *df, int ret, unsigned flags)
{
	struct viommu_as *as = df->as;

	if (!ret)
		ret = diff_finish(df);
	if (ret == -ENOMEM && !df->error)
		viommu__error(df->err, ret, "out of memory");
	if (!ret)
		ret = commit(df, flags);
	diff_free(df);
	viommu__as_unlock(as);
	return ret;
}

int viommu_as_update(struct viommu_as *as, uint64_t start, uint64_t last,
		     const struct viommu_entry *entries, size_t n,
		     unsigned flags, struct viommu_error *err)
{
	struct diff df;
	size_t i;
	int ret;

	ret = check_args(as, start, last, flags, err);
	if (ret)
		return ret;
	if (n && !entries)
		return viommu__error(err, -EINVAL, "entries is NULL");
	ret = enter(as, err);
	if (ret)
		return ret;
	widen(as, &start, &last);
	diff_init(&df, as, err);
	df.start = start;
	df.last = last;
	for (i = 0; i < n && !ret; i++)
		ret = diff_feed(&df, &entries[i]);
	return finish(&df, ret, flags);
}

int viommu_as_update_entry(struct viommu_as *as,
			   const struct viommu_entry *entry,
			   struct viommu_error *err)
{
	if (!entry)
		return viommu__error(err, -EINVAL, "entry is NULL");
	if (!viommu__is_aligned_entry(entry->iova, entry->addr_mask))
		return viommu__error(
			err, -EINVAL,
			"entry iova=0x%llx addr_mask=0x%llx is not "
			"a naturally aligned power of two",
			(unsigned long long)entry->iova,
			(unsigned long long)entry->addr_mask);
	return viommu_as_update(as, entry->iova, viommu__last(entry), entry,
				entry->perm != VIOMMU_PERM_NONE, 0, err);
}

/* Without a replay op: step through the range with translate. */
static int walk_by_translate(struct viommu_as *as, struct diff *df)
{
	const struct viommu_model_ops *ops = as->model->ops;
	uint64_t page_mask = viommu__as_min_page(as) - 1;
	uint64_t addr = df->start, next;
	int ret;

	for (;;) {
		struct viommu_translation t = { 0 };
		const struct viommu_entry *e = &t.entry;
		bool covers;

		ret = ops->translate(as->opaque, addr, VIOMMU_PERM_NONE, &t);
		if (ret)
			return viommu__error(df->err, ret < 0 ? ret : -EIO,
					     "address space '%s': the model "
					     "could not translate 0x%llx",
					     as->name,
					     (unsigned long long)addr);
		covers = viommu__is_aligned_entry(e->iova, e->addr_mask) &&
			 e->iova <= addr && addr <= viommu__last(e);
		if ((t.fault == VIOMMU_FAULT_NONE ||
		     t.fault == VIOMMU_FAULT_PERMISSION) &&
		    e->perm != VIOMMU_PERM_NONE) {
			if (!covers)
				return diff_fail(df, -EIO,
						 "translate returned an entry "
						 "that does not cover the "
						 "address",
						 e);
			ret = diff_feed(df, e);
			if (ret)
				return ret;
			next = viommu__last(e) + 1;
		} else if (covers) {
			next = viommu__last(e) + 1; /* a known hole */
		} else {
			next = (addr | page_mask) + 1;
		}
		if (!next || next > df->last)
			return 0;
		addr = next;
	}
}

int viommu_as_sync(struct viommu_as *as, uint64_t start, uint64_t last,
		   unsigned flags, struct viommu_error *err)
{
	struct diff df;
	const struct viommu_model_ops *ops;
	int ret;

	ret = check_args(as, start, last, flags, err);
	if (ret)
		return ret;
	ret = enter(as, err);
	if (ret)
		return ret;
	ops = as->model->ops;
	widen(as, &start, &last);
	diff_init(&df, as, err);
	df.start = start;
	df.last = last;
	if (ops->replay) {
		/*
		 * The model reads its tables while we hold the lock: it must
		 * not call back into this address space's changes.
		 */
		as->busy++;
		ret = ops->replay(as->opaque, start, last, diff_feed, &df);
		viommu__as_unbusy(as);
		if (ret && df.error)
			ret = df.error;
		else if (ret)
			ret = viommu__error(err, ret < 0 ? ret : -EIO,
					    "address space '%s': model '%s' "
					    "could not walk [0x%llx, 0x%llx]",
					    as->name, ops->name,
					    (unsigned long long)start,
					    (unsigned long long)last);
	} else {
		as->busy++;
		ret = walk_by_translate(as, &df);
		viommu__as_unbusy(as);
	}
	return finish(&df, ret, flags);
}

int viommu_as_notify_deviotlb(struct viommu_as *as, uint64_t iova,
			      uint64_t addr_mask)
{
	struct viommu_entry e = { .iova = iova, .addr_mask = addr_mask };
	struct viommu__dispatch d;
	size_t unused;
	int ret;

	if (!as || !viommu__is_aligned_entry(iova, addr_mask))
		return -EINVAL;
	ret = enter(as, NULL);
	if (ret)
		return ret;
	viommu__dispatch_begin(as, &d);
	viommu__deliver(&d, VIOMMU_NOTIFY_DEVIOTLB_UNMAP, &e,
			VIOMMU_NOTIFY_DEVIOTLB_UNMAP, 0, &unused);
	viommu__dispatch_end(&d);
	viommu__as_unlock(as);
	return 0;
}
