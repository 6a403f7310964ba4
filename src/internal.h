/* SPDX-License-Identifier: MIT */
/*
 * Internals shared between the core's files.  Nothing here is exported.
 */
#ifndef VIOMMU_INTERNAL_H
#define VIOMMU_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <viommu/model.h>
#include <viommu/viommu.h>

#include "entry_map.h"

struct viommu_model {
	const struct viommu_model_ops *ops;
	void *opaque;
};

struct viommu_notifier {
	struct viommu_as *as;
	struct viommu_notifier_config cfg;
	/* as->gen when registered: a change started before does not reach it */
	uint64_t gen;
	/* unregistered; kept in memory until no dispatch can still see it */
	bool dead;
	/* serial of the change in which batch_begin was called, 0 if none */
	uint64_t batch_serial;
	struct viommu_notifier *next_zombie;
};

/*
 * Which notifiers a range concerns: the live notifiers sorted by start, as
 * an implicit balanced tree (the root of [lo, hi) is the middle element)
 * augmented with the largest last address of each subtree.  Rebuilt when a
 * notifier comes or goes, which is rare next to dispatch.
 */
struct viommu__nindex {
	struct viommu_notifier **by_start;
	uint64_t *start;
	uint64_t *last;
	uint64_t *max_last;
	size_t n, cap;
};

/* A growable array of entries. */
struct viommu__entry_vec {
	struct viommu_entry *v;
	size_t n, cap;
};

/* A growable array of notifier pointers. */
struct viommu__nvec {
	struct viommu_notifier **v;
	size_t n, cap;
};

struct viommu_as {
	struct viommu_model *model;
	void *opaque;
	char *name;

	/*
	 * Serializes everything that changes the address space: updates,
	 * registration, replay.  Recursive so a callback may (un)register
	 * notifiers; @busy tells a callback's nested change from another
	 * thread's, which waits on the lock instead.
	 */
	pthread_mutex_t lock;
	unsigned busy;

	/* Guards @entries so lookups may run on other threads. */
	pthread_rwlock_t map_lock;
	struct viommu__emap entries;

	struct viommu__nvec notifiers; /* live, in registration order */
	struct viommu__nindex index;
	unsigned flags_union;
	uint64_t gen;		/* bumped at each registration */
	uint64_t change_serial; /* bumped at each change */
	struct viommu_notifier *zombies;

	/* Scratch reused by dispatch: never nested on one address space. */
	struct viommu__nvec snapshot;
	struct viommu__nvec batched;
	/* ... and by the change engine, so a small change allocates nothing */
	struct viommu__entry_vec removed, added;
	void *events;
	size_t events_cap;
};

/* errors.c */
int viommu__error(struct viommu_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* range.c */
static inline uint64_t viommu__last(const struct viommu_entry *e)
{
	return e->iova + e->addr_mask;
}

static inline bool viommu__is_aligned_entry(uint64_t iova, uint64_t addr_mask)
{
	return (addr_mask & (addr_mask + 1)) == 0 && (iova & addr_mask) == 0;
}

uint64_t viommu__largest_aligned_mask(uint64_t start, uint64_t last);

/* nvec (notifier.c) */
int viommu__nvec_push(struct viommu__nvec *v, struct viommu_notifier *n);
int viommu__nvec_reserve(struct viommu__nvec *v, size_t cap);
void viommu__nvec_free(struct viommu__nvec *v);

/* notifier_index.c */
int viommu__nindex_build(struct viommu__nindex *idx,
			 const struct viommu__nvec *live);
void viommu__nindex_free(struct viommu__nindex *idx);
int viommu__nindex_query(const struct viommu__nindex *idx, uint64_t start,
			 uint64_t last, struct viommu__nvec *out);

/* notifier.c */
void viommu__notifiers_free_all(struct viommu_as *as);

/* dispatch.c */
struct viommu__dispatch {
	struct viommu_as *as;
	uint64_t serial;
	uint64_t gen;
	/*
	 * A change defers taking back the pieces of a clipped map that a
	 * notifier accepted before refusing one, until the held entries are
	 * restored: what it is told to drop must no longer be found.
	 */
	bool defer_takeback;
	bool takeback_pending;
	struct viommu_notifier *takeback_n;
	struct viommu_entry takeback_e;
	uint64_t takeback_start, takeback_last;
};

void viommu__dispatch_begin(struct viommu_as *as, struct viommu__dispatch *d);
void viommu__dispatch_end(struct viommu__dispatch *d);

/*
 * Deliver one event to every notifier it concerns whose flags include all of
 * @need (and none of @exclude), clipped and split to each one's range.
 * A MAP callback that fails stops delivery: *@failed_at tells how many
 * notifiers of the concerned set (in delivery order) were already told, and
 * the error is returned.  Other events ignore callback results, and so does
 * a delivery with a NULL @failed_at (a rollback must reach everyone).
 */
int viommu__deliver(struct viommu__dispatch *d, unsigned type,
		    const struct viommu_entry *e, unsigned need,
		    unsigned exclude, size_t *failed_at);

/* Tell the first @count concerned notifiers (as in a failed delivery). */
void viommu__deliver_prefix(struct viommu__dispatch *d, unsigned type,
			    const struct viommu_entry *e, unsigned need,
			    size_t count);

/* Take back what a deferred refusal left pending (see above). */
void viommu__deliver_takeback(struct viommu__dispatch *d);

/* Deliver @e to one notifier only (replay). */
int viommu__deliver_one(struct viommu__dispatch *d, struct viommu_notifier *n,
			unsigned type, const struct viommu_entry *e);

/* change.c */
void viommu__change_scratch_free(struct viommu_as *as);

/* as.c */
void viommu__as_lock(struct viommu_as *as);
/* Leave a busy section; the last one out frees unregistered notifiers. */
void viommu__as_unbusy(struct viommu_as *as);
void viommu__as_unlock(struct viommu_as *as);
uint64_t viommu__as_min_page(struct viommu_as *as);

#endif /* VIOMMU_INTERNAL_H */
