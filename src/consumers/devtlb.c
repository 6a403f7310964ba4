/* SPDX-License-Identifier: MIT */
/*
 * The device IOTLB: cached translations in a balanced tree ordered by
 * IOVA (so an invalidation finds what it overlaps in O(log n + k) whatever
 * its size) and on a least-recently-used list (so eviction is O(1)).
 * Entries come from a table allocated once: a lookup never allocates.
 *
 * Cached entries never overlap: a new translation replaces whatever it
 * overlaps.  Overlaps happen when a guest changes a mapping the cache
 * still holds before invalidating it (a 2M leaf split into 4K ones, say);
 * then only the newest answer is kept, and an address has one answer.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <viommu/devtlb.h>

#include "internal.h"
#include "range_tree.h"

struct tlb_entry {
	struct viommu__rnode node; /* [iova, iova + addr_mask] */
	uint64_t translated_addr;
	unsigned perm;
	struct tlb_entry *newer, *older; /* the LRU list; free list: older */
};

struct viommu_devtlb {
	pthread_mutex_t lock;
	struct viommu_as *as;
	struct viommu_notifier *notifier;
	struct viommu_devtlb_config cfg;
	struct tlb_entry *table;
	struct tlb_entry *free;		   /* unused entries, through older */
	struct tlb_entry *newest, *oldest; /* the LRU list */
	struct viommu__rtree tree;
	/* bumped by every invalidation: a miss that saw it change races */
	uint64_t seq;
	struct viommu_devtlb_counters c;
};

static struct tlb_entry *entry_of(struct viommu__rnode *n)
{
	return n ? viommu__container_of(n, struct tlb_entry, node) : NULL;
}

static void lru_unlink(struct viommu_devtlb *t, struct tlb_entry *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		t->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		t->oldest = e->newer;
}

static void lru_push(struct viommu_devtlb *t, struct tlb_entry *e)
{
	e->newer = NULL;
	e->older = t->newest;
	if (t->newest)
		t->newest->newer = e;
	else
		t->oldest = e;
	t->newest = e;
}

/* Take @e out of the cache and back to the free list. */
static void drop(struct viommu_devtlb *t, struct tlb_entry *e)
{
	viommu__rtree_remove(&t->tree, &e->node);
	lru_unlink(t, e);
	e->older = t->free;
	t->free = e;
	t->c.entries--;
}

/* Drop what overlaps [start, last]; returns how many went. */
static uint64_t drop_range(struct viommu_devtlb *t, uint64_t start,
			   uint64_t last)
{
	struct viommu__rnode *n, *next;
	uint64_t k = 0;

	if (start == 0 && last == UINT64_MAX) {
		/* everything: no tree walk, just empty the LRU list */
		while (t->oldest) {
			struct tlb_entry *e = t->oldest;

			lru_unlink(t, e);
			e->older = t->free;
			t->free = e;
			k++;
		}
		viommu__rtree_init(&t->tree);
		t->c.entries = 0;
		return k;
	}
	for (n = viommu__rtree_first_overlap(&t->tree, start, last);
	     n && n->start <= last; n = next) {
		next = viommu__rtree_next(n);
		drop(t, entry_of(n));
		k++;
	}
	return k;
}

static void insert(struct viommu_devtlb *t, const struct viommu_entry *e)
{
	uint64_t last = e->iova + e->addr_mask;
	struct tlb_entry *slot;

	t->c.replaced += drop_range(t, e->iova, last);
	if (!t->free) {
		t->c.evictions++;
		drop(t, t->oldest);
	}
	slot = t->free;
	t->free = slot->older;
	slot->node.start = e->iova;
	slot->node.last = last;
	slot->translated_addr = e->translated_addr;
	slot->perm = e->perm;
	viommu__rtree_insert(&t->tree, &slot->node);
	lru_push(t, slot);
	t->c.entries++;
}

static int devtlb_notify(struct viommu_notifier *n,
			 const struct viommu_event *ev, void *opaque)
{
	struct viommu_devtlb *t = opaque;

	if (ev->type == VIOMMU_NOTIFY_MAP)
		return 0; /* not asked for; nothing to drop */
	pthread_mutex_lock(&t->lock);
	t->seq++;
	t->c.invalidations++;
	if (t->c.entries)
		t->c.dropped +=
			drop_range(t, ev->entry.iova,
				   ev->entry.iova + ev->entry.addr_mask);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

void viommu_devtlb_config_init(struct viommu_devtlb_config *cfg)
{
	*cfg = (struct viommu_devtlb_config){
		.flags = VIOMMU_NOTIFY_UNMAP,
		.entries = VIOMMU_DEVTLB_DEFAULT_ENTRIES,
	};
}

int viommu_devtlb_new(struct viommu_as *as,
		      const struct viommu_devtlb_config *cfg,
		      struct viommu_devtlb **out, struct viommu_error *err)
{
	const unsigned ok = VIOMMU_NOTIFY_UNMAP | VIOMMU_NOTIFY_DEVIOTLB_UNMAP;
	struct viommu_notifier_config nc;
	struct viommu_devtlb *t;
	size_t i;
	int ret;

	if (!as || !out)
		return viommu__error(err, -EINVAL,
				     "devtlb: no address space or result");
	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return viommu__error(err, -ENOMEM, "out of memory");
	if (cfg)
		t->cfg = *cfg;
	else
		viommu_devtlb_config_init(&t->cfg);
	if (!t->cfg.entries)
		t->cfg.entries = VIOMMU_DEVTLB_DEFAULT_ENTRIES;
	if (!t->cfg.flags || (t->cfg.flags & ~ok)) {
		unsigned flags = t->cfg.flags;

		free(t);
		return viommu__error(err, -EINVAL,
				     "devtlb: flags 0x%x: UNMAP and/or "
				     "DEVIOTLB_UNMAP (0x%x) only",
				     flags, ok);
	}
	t->table = calloc(t->cfg.entries, sizeof(*t->table));
	if (!t->table) {
		size_t n = t->cfg.entries;

		free(t);
		return viommu__error(err, -ENOMEM,
				     "devtlb: out of memory for %zu entries",
				     n);
	}
	for (i = t->cfg.entries; i-- > 0;) {
		t->table[i].older = t->free;
		t->free = &t->table[i];
	}
	t->as = as;
	viommu__rtree_init(&t->tree);
	pthread_mutex_init(&t->lock, NULL);
	viommu_notifier_config_init(&nc, t->cfg.flags, devtlb_notify, t);
	ret = viommu_notifier_register(as, &nc, &t->notifier, err);
	if (ret) {
		pthread_mutex_destroy(&t->lock);
		free(t->table);
		free(t);
		return ret;
	}
	*out = t;
	return 0;
}

void viommu_devtlb_free(struct viommu_devtlb *t)
{
	if (!t)
		return;
	viommu_notifier_unregister(t->notifier);
	pthread_mutex_destroy(&t->lock);
	free(t->table);
	free(t);
}

/* Only a translation that covers @iova, whole and aligned, is kept. */
static bool cacheable(const struct viommu_translation *tr, uint64_t iova)
{
	const struct viommu_entry *e = &tr->entry;

	return (tr->fault == VIOMMU_FAULT_NONE ||
		tr->fault == VIOMMU_FAULT_PERMISSION) &&
	       (e->perm & VIOMMU_PERM_RW) &&
	       (e->addr_mask & (e->addr_mask + 1)) == 0 &&
	       (e->iova & e->addr_mask) == 0 && e->iova <= iova &&
	       iova - e->iova <= e->addr_mask;
}

/* The address space holds exactly this entry: its removal will be told. */
static bool held(struct viommu_devtlb *t, const struct viommu_entry *e)
{
	struct viommu_entry h;

	return viommu_as_lookup(t->as, e->iova, &h) && h.iova == e->iova &&
	       h.addr_mask == e->addr_mask &&
	       h.translated_addr == e->translated_addr && h.perm == e->perm;
}

int viommu_devtlb_translate(struct viommu_devtlb *t, uint64_t iova,
			    unsigned access, struct viommu_translation *out)
{
	struct tlb_entry *e;
	bool is_held;
	uint64_t seq;
	int ret;

	if (!t || !out || !access || (access & ~VIOMMU_PERM_RW))
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	e = entry_of(viommu__rtree_find(&t->tree, iova));
	if (e) {
		t->c.hits++;
		lru_unlink(t, e);
		lru_push(t, e);
		out->entry =
			(struct viommu_entry){ e->node.start,
					       e->node.last - e->node.start,
					       e->translated_addr, e->perm };
		out->fault = (e->perm & access) == access ?
				     VIOMMU_FAULT_NONE :
				     VIOMMU_FAULT_PERMISSION;
		pthread_mutex_unlock(&t->lock);
		return 0;
	}
	t->c.misses++;
	seq = t->seq;
	pthread_mutex_unlock(&t->lock);

	/* without our lock: the model may be busy notifying us */
	ret = viommu_as_translate(t->as, iova, access, out);
	if (ret)
		return ret;
	/*
	 * Read after translating: a change applies its new state before it
	 * notifies, and the sequence check below catches what notified since.
	 */
	is_held = t->cfg.held_only && cacheable(out, iova) &&
		  held(t, &out->entry);
	pthread_mutex_lock(&t->lock);
	if (!cacheable(out, iova)) {
		if (out->fault != VIOMMU_FAULT_NONE &&
		    out->fault != VIOMMU_FAULT_PERMISSION)
			t->c.faults++;
	} else if (t->seq != seq || (t->cfg.held_only && !is_held)) {
		/* revoked meanwhile, maybe; or its revocation might go untold */
		t->c.uncached++;
	} else {
		insert(t, &out->entry);
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

void viommu_devtlb_flush(struct viommu_devtlb *t)
{
	pthread_mutex_lock(&t->lock);
	t->seq++;
	drop_range(t, 0, UINT64_MAX);
	pthread_mutex_unlock(&t->lock);
}

void viommu_devtlb_counters(struct viommu_devtlb *t,
			    struct viommu_devtlb_counters *out)
{
	pthread_mutex_lock(&t->lock);
	*out = t->c;
	pthread_mutex_unlock(&t->lock);
}
