/* SPDX-License-Identifier: MIT */
/*
 * A host IOMMU in memory that plays by the rules of Linux's VFIO type1 v2
 * driver (drivers/vfio/vfio_iommu_type1.c), so the shadow can be tested
 * against the host it will meet: map refuses overlaps (-EEXIST) and goes
 * no further than dma_entry_limit (-ENOSPC); unmap refuses a range that
 * cuts a mapping (-EINVAL) and removes nothing then.  It can also compare
 * itself with the guest's view (viommu_type1_soft_check()).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <viommu/shadow.h>

#include "internal.h"
#include "range_tree.h"

struct soft_mapping {
	struct viommu__rnode node; /* [iova, iova + size - 1] */
	uint64_t gpa;
	unsigned perm;
};

struct viommu_type1_soft {
	pthread_mutex_t lock;
	struct viommu_type1_soft_config cfg;
	struct viommu__rtree maps;
	struct viommu_type1_soft_counters c;
};

static struct soft_mapping *mapping_of(struct viommu__rnode *n)
{
	return n ? viommu__container_of(n, struct soft_mapping, node) : NULL;
}

static const char *perm_name(unsigned perm)
{
	static const char *const names[] = { "none", "r", "w", "rw" };

	return names[perm & VIOMMU_PERM_RW];
}

/* The range checks type1 makes before anything else: -EINVAL. */
static bool bad_range(const struct viommu_type1_soft *s, uint64_t iova,
		      uint64_t size)
{
	uint64_t mask = s->cfg.page_size - 1;

	return !size || ((iova | size) & mask) || size - 1 > UINT64_MAX - iova;
}

static int soft_map(void *opaque, uint64_t iova, uint64_t size, uint64_t gpa,
		    unsigned perm)
{
	struct viommu_type1_soft *s = opaque;
	struct soft_mapping *m = NULL;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	s->c.maps++;
	if (bad_range(s, iova, size) || (gpa & (s->cfg.page_size - 1)) ||
	    size - 1 > UINT64_MAX - gpa || !(perm & VIOMMU_PERM_RW) ||
	    (perm & ~VIOMMU_PERM_RW))
		ret = -EINVAL;
	else if (viommu__rtree_first_overlap(&s->maps, iova, iova + size - 1))
		ret = -EEXIST;
	else if (s->c.entries >= s->cfg.dma_entry_limit)
		ret = -ENOSPC; /* type1: no dma_avail left */
	else if (!(m = malloc(sizeof(*m))))
		ret = -ENOMEM;
	if (ret) {
		s->c.refusals++;
		pthread_mutex_unlock(&s->lock);
		return ret;
	}
	m->node.start = iova;
	m->node.last = iova + size - 1;
	m->gpa = gpa;
	m->perm = perm;
	viommu__rtree_insert(&s->maps, &m->node);
	if (++s->c.entries > s->c.peak)
		s->c.peak = s->c.entries;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int soft_unmap(void *opaque, uint64_t iova, uint64_t size)
{
	struct viommu_type1_soft *s = opaque;
	struct viommu__rnode *n, *next;
	uint64_t last = iova + size - 1;

	pthread_mutex_lock(&s->lock);
	s->c.unmaps++;
	if (bad_range(s, iova, size))
		goto refuse;
	/* type1 v2: neither end may fall inside a mapping */
	n = viommu__rtree_find(&s->maps, iova);
	if (n && n->start != iova)
		goto refuse;
	n = viommu__rtree_find(&s->maps, last);
	if (n && n->last != last)
		goto refuse;
	for (n = viommu__rtree_first_overlap(&s->maps, iova, last);
	     n && n->start <= last; n = next) {
		next = viommu__rtree_next(n);
		viommu__rtree_remove(&s->maps, n);
		free(mapping_of(n));
		s->c.entries--;
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
refuse:
	s->c.refusals++;
	pthread_mutex_unlock(&s->lock);
	return -EINVAL;
}

static const struct viommu_host_ops soft_ops = {
	.version = VIOMMU_HOST_OPS_VERSION,
	.name = "type1-soft",
	.map = soft_map,
	.unmap = soft_unmap,
};

int viommu_type1_soft_new(const struct viommu_type1_soft_config *cfg,
			  struct viommu_type1_soft **out,
			  struct viommu_error *err)
{
	struct viommu_type1_soft *s;

	if (!out)
		return viommu__error(err, -EINVAL, "type1-soft: no result");
	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return viommu__error(err, -ENOMEM, "out of memory");
	if (cfg)
		s->cfg = *cfg;
	if (!s->cfg.dma_entry_limit)
		s->cfg.dma_entry_limit = VIOMMU_TYPE1_DEFAULT_DMA_ENTRY_LIMIT;
	if (!s->cfg.page_size)
		s->cfg.page_size = 4096;
	if (s->cfg.page_size & (s->cfg.page_size - 1)) {
		uint64_t ps = s->cfg.page_size;

		free(s);
		return viommu__error(err, -EINVAL,
				     "type1-soft: page size 0x%llx is not a "
				     "power of two",
				     (unsigned long long)ps);
	}
	viommu__rtree_init(&s->maps);
	pthread_mutex_init(&s->lock, NULL);
	*out = s;
	return 0;
}

void viommu_type1_soft_free(struct viommu_type1_soft *s)
{
	struct viommu__rnode *n;

	if (!s)
		return;
	while ((n = s->maps.root)) {
		viommu__rtree_remove(&s->maps, n);
		free(mapping_of(n));
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

struct viommu_host_backend
viommu_type1_soft_backend(struct viommu_type1_soft *s)
{
	return (struct viommu_host_backend){ &soft_ops, s };
}

void viommu_type1_soft_counters(struct viommu_type1_soft *s,
				struct viommu_type1_soft_counters *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->c;
	pthread_mutex_unlock(&s->lock);
}

/*
 * The check walks the guest's entries in IOVA order and, beside them, the
 * host's mappings.  @pos is the first address not yet compared; @done says
 * it went past 2^64 - 1.
 */
struct check {
	struct viommu_type1_soft *s;
	struct viommu_error *err;
	uint64_t pos;
	bool done;
};

static int extra_host(struct check *c, uint64_t at,
		      const struct soft_mapping *m)
{
	return viommu__error(c->err, -EINVAL,
			     "type1 check: iova 0x%llx: the host maps it "
			     "(mapping [0x%llx, 0x%llx] -> 0x%llx %s) but the "
			     "guest does not",
			     (unsigned long long)at,
			     (unsigned long long)m->node.start,
			     (unsigned long long)m->node.last,
			     (unsigned long long)m->gpa, perm_name(m->perm));
}

/* Compare one guest entry with the host; called with the backend locked. */
static int check_entry(struct check *c, const struct viommu_entry *e)
{
	uint64_t last = e->iova + e->addr_mask, at;
	struct soft_mapping *m;

	/* the gap before @e must be empty on the host too */
	if (e->iova > c->pos) {
		m = mapping_of(viommu__rtree_first_overlap(&c->s->maps, c->pos,
							   e->iova - 1));
		if (m)
			return extra_host(
				c,
				m->node.start > c->pos ? m->node.start : c->pos,
				m);
	}
	/* host mappings must cover @e without a hole, with its translation */
	for (at = e->iova;;) {
		uint64_t want = e->translated_addr + (at - e->iova), got;

		m = mapping_of(viommu__rtree_find(&c->s->maps, at));
		if (!m)
			return viommu__error(
				c->err, -EINVAL,
				"type1 check: iova 0x%llx: the guest maps it "
				"to 0x%llx %s (entry [0x%llx, 0x%llx]) but the "
				"host does not",
				(unsigned long long)at,
				(unsigned long long)want, perm_name(e->perm),
				(unsigned long long)e->iova,
				(unsigned long long)last);
		/* both sides are linear over the overlap: one point tells */
		got = m->gpa + (at - m->node.start);
		if (got != want || m->perm != e->perm)
			return viommu__error(
				c->err, -EINVAL,
				"type1 check: iova 0x%llx: the guest maps it "
				"to 0x%llx %s, the host to 0x%llx %s (host "
				"mapping [0x%llx, 0x%llx])",
				(unsigned long long)at,
				(unsigned long long)want, perm_name(e->perm),
				(unsigned long long)got, perm_name(m->perm),
				(unsigned long long)m->node.start,
				(unsigned long long)m->node.last);
		if (m->node.last >= last)
			break;
		at = m->node.last + 1;
	}
	c->done = last == UINT64_MAX;
	c->pos = last + 1;
	return 0;
}

static int check_one(void *ctx, const struct viommu_entry *e)
{
	struct check *c = ctx;
	int ret;

	/* lock order: the address space (held by the walk), then us */
	pthread_mutex_lock(&c->s->lock);
	ret = check_entry(c, e);
	pthread_mutex_unlock(&c->s->lock);
	return ret;
}

int viommu_type1_soft_check(struct viommu_type1_soft *s, struct viommu_as *as,
			    struct viommu_error *err)
{
	struct check c = { s, err, 0, false };
	struct soft_mapping *m;
	int ret;

	if (!s || !as)
		return viommu__error(err, -EINVAL, "type1 check: no backend");
	ret = viommu_as_for_each_mapping(as, 0, UINT64_MAX, check_one, &c);
	if (ret)
		return ret < 0 ? ret : -EINVAL;
	if (c.done)
		return 0;
	pthread_mutex_lock(&s->lock);
	m = mapping_of(
		viommu__rtree_first_overlap(&s->maps, c.pos, UINT64_MAX));
	ret = m ? extra_host(&c, m->node.start > c.pos ? m->node.start : c.pos,
			     m) :
		  0;
	pthread_mutex_unlock(&s->lock);
	return ret;
}
