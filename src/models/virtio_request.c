/* SPDX-License-Identifier: MIT */
/*
 * The requests: ATTACH, DETACH, MAP and UNMAP.
 *
 * Each one changes the model first, then brings the address space of every
 * endpoint concerned up to date with viommu_as_sync() over the range it
 * touched: the core reads the new state through the replay op and emits
 * exactly the difference.  So the model never builds events, and a move
 * between two domains is silent about the mappings they share.
 *
 * All or nothing: when a sync fails (a consumer refused a map, or the core
 * ran out of memory) the core has put that address space back; the model
 * goes back to its old state, and the endpoints synced before are synced
 * again, which tells their consumers the reverse.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "virtio_internal.h"

enum req_type {
	REQ_ATTACH,
	REQ_DETACH,
	REQ_MAP,
	REQ_UNMAP
};

/* A request, as the guest sent it. */
struct req {
	enum req_type type;
	uint32_t domain;
	uint32_t endpoint;    /* ATTACH, DETACH */
	uint64_t start, last; /* MAP, UNMAP */
	uint64_t phys;	      /* MAP */
	unsigned flags;	      /* MAP */
};

/* Name @r in messages. */
static void describe(const struct req *r, char *buf, size_t size)
{
	switch (r->type) {
	case REQ_ATTACH:
	case REQ_DETACH:
		snprintf(buf, size, "%s endpoint %u, domain %u",
			 r->type == REQ_ATTACH ? "ATTACH" : "DETACH",
			 r->endpoint, r->domain);
		break;
	case REQ_MAP:
		snprintf(buf, size, "MAP domain %u [0x%llx, 0x%llx] -> 0x%llx",
			 r->domain, (unsigned long long)r->start,
			 (unsigned long long)r->last,
			 (unsigned long long)r->phys);
		break;
	case REQ_UNMAP:
		snprintf(buf, size, "UNMAP domain %u [0x%llx, 0x%llx]",
			 r->domain, (unsigned long long)r->start,
			 (unsigned long long)r->last);
		break;
	}
}

static enum viommu_virtio_status
fail(struct viommu_error *err, const struct req *r,
     enum viommu_virtio_status status, int code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Answer @status, with "<request>: <reason>" and @code in @err. */
static enum viommu_virtio_status fail(struct viommu_error *err,
				      const struct req *r,
				      enum viommu_virtio_status status,
				      int code, const char *fmt, ...)
{
	char what[96];
	size_t len;
	va_list ap;

	if (!err)
		return status;
	describe(r, what, sizeof(what));
	err->code = code;
	len = (size_t)snprintf(err->message, sizeof(err->message),
			       "%s: ", what);
	if (len < sizeof(err->message)) {
		va_start(ap, fmt);
		vsnprintf(err->message + len, sizeof(err->message) - len, fmt,
			  ap);
		va_end(ap);
	}
	return status;
}

/*
 * A sync failed at @ep with @ret and everything was put back.  @lost
 * endpoints could not be put back (only when memory ran out, or a consumer
 * refused to take back a mapping it had just been told to drop).
 */
static enum viommu_virtio_status refused(struct viommu_error *err,
					 const struct req *r,
					 const struct viommu__vendpoint *ep,
					 int ret, unsigned lost)
{
	return fail(
		err, r,
		ret == -ENOMEM ? VIOMMU_VIRTIO_S_NOMEM : VIOMMU_VIRTIO_S_DEVERR,
		ret, "endpoint %u ('%s') could not take the change (%s); %s",
		ep->id, viommu_as_name(ep->as), viommu_strerror(ret),
		lost ? "undone, but some endpoints could not be restored" :
		       "undone");
}

/* Put @ep in @d's list after @after (first when NULL); under @lock. */
static void link_after(struct viommu__vdomain *d, struct viommu__vendpoint *ep,
		       struct viommu__vendpoint *after)
{
	ep->prev = after;
	ep->next = after ? after->next : d->head;
	if (ep->next)
		ep->next->prev = ep;
	else
		d->tail = ep;
	if (after)
		after->next = ep;
	else
		d->head = ep;
	ep->domain = d;
}

/* Take @ep out of its domain's list; under @lock. */
static void unlink_ep(struct viommu__vendpoint *ep)
{
	struct viommu__vdomain *d = ep->domain;

	if (ep->prev)
		ep->prev->next = ep->next;
	else
		d->head = ep->next;
	if (ep->next)
		ep->next->prev = ep->prev;
	else
		d->tail = ep->prev;
	ep->prev = ep->next = NULL;
	ep->domain = NULL;
}

/* The spec: a domain ceases to exist once its last endpoint is detached. */
static void retire(struct viommu_virtio *v, struct viommu__vdomain *d)
{
	pthread_rwlock_wrlock(&v->lock);
	viommu__idtab_remove(&v->domains, d->id);
	pthread_rwlock_unlock(&v->lock);
	viommu__vdomain_free(d);
}

/* The pieces of one mapping, as the engine holds them: at most two a bit. */
struct pieces {
	struct viommu_entry v[2 * 64 + 2];
	size_t n;
	const struct viommu__vmapping *m;
};

static int add_piece(void *ctx, const struct viommu_entry *piece)
{
	struct pieces *p = ctx;
	struct viommu_entry *e = &p->v[p->n++];

	*e = *piece;
	e->translated_addr = p->m->phys + (piece->iova - p->m->start);
	e->perm = flags_to_perm(p->m->flags);
	return 0;
}

/*
 * A MAP or an UNMAP changes exactly [start, last]: a MAP may overlap
 * nothing and an UNMAP may split nothing, so what is in effect there now is
 * @m's pieces (or nothing).  Tell the engine so directly, instead of making
 * it walk the store through the replay op; *@failed is where it stopped.
 */
static int update_domain(struct viommu__vdomain *d, uint64_t start,
			 uint64_t last, const struct viommu__vmapping *m,
			 struct viommu__vendpoint **failed)
{
	struct viommu__vendpoint *ep;
	struct pieces p; /* not zeroed: 4 KiB a request otherwise */
	int ret;

	p.n = 0;
	p.m = m;
	if (m)
		viommu_split_range(m->start, m->last, add_piece, &p);
	for (ep = d->head; ep; ep = ep->next) {
		ret = viommu_as_update(ep->as, start, last, p.v, p.n, 0, NULL);
		if (ret) {
			*failed = ep;
			return ret;
		}
	}
	return 0;
}

/*
 * After the model went back, sync again the endpoints of @d up to @failed.
 * @failed too: the core put it back already, but a sync from outside may
 * have shown it the change meanwhile, and an extra sync costs only a walk.
 * Returns how many endpoints could not be put back.
 */
static unsigned resync_domain(struct viommu__vdomain *d, uint64_t start,
			      uint64_t last, struct viommu__vendpoint *failed)
{
	struct viommu__vendpoint *ep;
	unsigned lost = 0;

	for (ep = d->head; ep; ep = ep->next) {
		if (viommu_as_sync(ep->as, start, last, 0, NULL))
			lost++;
		if (ep == failed)
			break;
	}
	return lost;
}

static enum viommu_virtio_status
attach(struct viommu_virtio *v, const struct req *r, struct viommu_error *err)
{
	struct viommu__vendpoint *ep, *after;
	struct viommu__vdomain *d, *old;
	bool created = false;
	int ret;

	ep = viommu__idtab_find(&v->endpoints, r->endpoint);
	if (!ep)
		return fail(err, r, VIOMMU_VIRTIO_S_NOENT, -ENOENT,
			    "no such endpoint");
	d = viommu__idtab_find(&v->domains, r->domain);
	if (d && ep->domain == d)
		return VIOMMU_VIRTIO_S_OK;
	if (!d) {
		d = viommu__vdomain_new(r->domain);
		if (!d)
			return fail(err, r, VIOMMU_VIRTIO_S_NOMEM, -ENOMEM,
				    "out of memory for a new domain");
		created = true;
	}
	old = ep->domain;
	after = ep->prev;

	pthread_rwlock_wrlock(&v->lock);
	if (created && viommu__idtab_insert(&v->domains, r->domain, d)) {
		pthread_rwlock_unlock(&v->lock);
		viommu__vdomain_free(d);
		return fail(err, r, VIOMMU_VIRTIO_S_NOMEM, -ENOMEM,
			    "out of memory for a new domain");
	}
	if (old)
		unlink_ep(ep);
	link_after(d, ep, d->tail);
	pthread_rwlock_unlock(&v->lock);

	/* the whole space: the old domain's mappings go, the new ones come */
	ret = viommu_as_sync(ep->as, 0, UINT64_MAX, 0, NULL);
	if (ret) {
		pthread_rwlock_wrlock(&v->lock);
		unlink_ep(ep);
		if (old)
			link_after(old, ep, after);
		if (created)
			viommu__idtab_remove(&v->domains, r->domain);
		pthread_rwlock_unlock(&v->lock);
		if (created)
			viommu__vdomain_free(d);
		return refused(err, r, ep, ret,
			       viommu_as_sync(ep->as, 0, UINT64_MAX, 0, NULL) !=
				       0);
	}
	if (old && !old->head && !old->persistent)
		retire(v, old);
	return VIOMMU_VIRTIO_S_OK;
}

static enum viommu_virtio_status
detach(struct viommu_virtio *v, const struct req *r, struct viommu_error *err)
{
	struct viommu__vendpoint *ep, *after;
	struct viommu__vdomain *d;
	int ret;

	ep = viommu__idtab_find(&v->endpoints, r->endpoint);
	if (!ep)
		return fail(err, r, VIOMMU_VIRTIO_S_NOENT, -ENOENT,
			    "no such endpoint");
	d = viommu__idtab_find(&v->domains, r->domain);
	if (!d)
		return fail(err, r, VIOMMU_VIRTIO_S_NOENT, -ENOENT,
			    "no such domain");
	if (ep->domain != d)
		return fail(err, r, VIOMMU_VIRTIO_S_INVAL, -EINVAL,
			    "the endpoint is not attached to this domain");
	after = ep->prev;
	pthread_rwlock_wrlock(&v->lock);
	unlink_ep(ep);
	pthread_rwlock_unlock(&v->lock);

	/* only unmaps, which consumers cannot refuse: fails on memory only */
	ret = viommu_as_sync(ep->as, 0, UINT64_MAX, 0, NULL);
	if (ret) {
		pthread_rwlock_wrlock(&v->lock);
		link_after(d, ep, after);
		pthread_rwlock_unlock(&v->lock);
		return refused(err, r, ep, ret,
			       viommu_as_sync(ep->as, 0, UINT64_MAX, 0, NULL) !=
				       0);
	}
	if (!d->head && !d->persistent)
		retire(v, d);
	return VIOMMU_VIRTIO_S_OK;
}

static enum viommu_virtio_status
map(struct viommu_virtio *v, const struct req *r, struct viommu_error *err)
{
	const unsigned known = VIOMMU_VIRTIO_MAP_F_READ |
			       VIOMMU_VIRTIO_MAP_F_WRITE;
	struct viommu__vendpoint *failed = NULL;
	struct viommu__vmapping *m;
	struct viommu__vdomain *d;
	uint64_t g = v->granule;
	int ret;

	d = viommu__idtab_find(&v->domains, r->domain);
	if (!d)
		return fail(err, r, VIOMMU_VIRTIO_S_NOENT, -ENOENT,
			    "no such domain");
	if (r->flags & ~known)
		return fail(err, r, VIOMMU_VIRTIO_S_INVAL, -EINVAL,
			    "unknown flags 0x%x", r->flags & ~known);
	if (!(r->flags & known))
		return fail(err, r, VIOMMU_VIRTIO_S_INVAL, -EINVAL,
			    "neither read nor write allowed");
	if (r->start > r->last)
		return fail(err, r, VIOMMU_VIRTIO_S_INVAL, -EINVAL,
			    "the range is empty");
	/* last + 1 wraps to 0 for a range reaching 2^64 - 1: aligned */
	if ((r->start | (r->last + 1) | r->phys) & (g - 1))
		return fail(err, r, VIOMMU_VIRTIO_S_INVAL, -EINVAL,
			    "not aligned to the 0x%llx granule",
			    (unsigned long long)g);
	if (r->start < v->cfg.input_start || r->last > v->cfg.input_last)
		return fail(err, r, VIOMMU_VIRTIO_S_RANGE, -ERANGE,
			    "outside the input range [0x%llx, 0x%llx]",
			    (unsigned long long)v->cfg.input_start,
			    (unsigned long long)v->cfg.input_last);
	if (r->phys > UINT64_MAX - (r->last - r->start))
		return fail(err, r, VIOMMU_VIRTIO_S_RANGE, -ERANGE,
			    "the target range wraps past 2^64");
	m = viommu__vstore_first_overlap(&d->store, r->start, r->last);
	if (m)
		return fail(err, r, VIOMMU_VIRTIO_S_INVAL, -EINVAL,
			    "overlaps the mapping [0x%llx, 0x%llx]",
			    (unsigned long long)m->start,
			    (unsigned long long)m->last);
	if (d->store.count >= v->cfg.max_mappings)
		return fail(err, r, VIOMMU_VIRTIO_S_NOMEM, -ENOMEM,
			    "the domain holds the maximum of %llu mappings",
			    (unsigned long long)v->cfg.max_mappings);
	m = malloc(sizeof(*m));
	if (!m)
		return fail(err, r, VIOMMU_VIRTIO_S_NOMEM, -ENOMEM,
			    "out of memory");
	*m = (struct viommu__vmapping){ .start = r->start,
					.last = r->last,
					.phys = r->phys,
					.flags = (uint8_t)r->flags };
	pthread_rwlock_wrlock(&v->lock);
	viommu__vstore_insert(&d->store, m);
	pthread_rwlock_unlock(&v->lock);

	ret = update_domain(d, r->start, r->last, m, &failed);
	if (ret) {
		pthread_rwlock_wrlock(&v->lock);
		viommu__vstore_remove(&d->store, r->start);
		pthread_rwlock_unlock(&v->lock);
		free(m);
		return refused(err, r, failed, ret,
			       resync_domain(d, r->start, r->last, failed));
	}
	return VIOMMU_VIRTIO_S_OK;
}

/* A mapping that [start, last] covers only in part, or NULL. */
static struct viommu__vmapping *split_by(const struct viommu__vstore *s,
					 uint64_t start, uint64_t last)
{
	struct viommu__vmapping *m;

	m = viommu__vstore_find(s, start, NULL, NULL);
	if (m && m->start < start)
		return m;
	m = viommu__vstore_find(s, last, NULL, NULL);
	if (m && m->last > last)
		return m;
	return NULL;
}

static enum viommu_virtio_status
unmap(struct viommu_virtio *v, const struct req *r, struct viommu_error *err)
{
	struct viommu__vendpoint *failed = NULL;
	struct viommu__vmapping *m, *removed = NULL;
	struct viommu__vdomain *d;
	uint64_t g = v->granule, addr = r->start;
	int ret;

	d = viommu__idtab_find(&v->domains, r->domain);
	if (!d)
		return fail(err, r, VIOMMU_VIRTIO_S_NOENT, -ENOENT,
			    "no such domain");
	if (r->start > r->last)
		return fail(err, r, VIOMMU_VIRTIO_S_INVAL, -EINVAL,
			    "the range is empty");
	if ((r->start | (r->last + 1)) & (g - 1))
		return fail(err, r, VIOMMU_VIRTIO_S_INVAL, -EINVAL,
			    "not aligned to the 0x%llx granule",
			    (unsigned long long)g);
	/* a mapping goes whole or not at all: check both ends first */
	m = split_by(&d->store, r->start, r->last);
	if (m)
		return fail(err, r, VIOMMU_VIRTIO_S_RANGE, -ERANGE,
			    "would split the mapping [0x%llx, 0x%llx]",
			    (unsigned long long)m->start,
			    (unsigned long long)m->last);

	/* detached nodes chain through child[0]: putting back allocates nothing */
	pthread_rwlock_wrlock(&v->lock);
	while ((m = viommu__vstore_first_from(&d->store, addr)) &&
	       m->start <= r->last) {
		viommu__vstore_remove(&d->store, m->start);
		m->child[0] = removed;
		removed = m;
		if (m->last == r->last)
			break;
		addr = m->last + 1; /* m->last < r->last: no wrap */
	}
	pthread_rwlock_unlock(&v->lock);
	if (!removed)
		return VIOMMU_VIRTIO_S_OK;

	ret = update_domain(d, r->start, r->last, NULL, &failed);
	if (ret) {
		pthread_rwlock_wrlock(&v->lock);
		while ((m = removed)) {
			removed = m->child[0];
			viommu__vstore_insert(&d->store, m);
		}
		pthread_rwlock_unlock(&v->lock);
		return refused(err, r, failed, ret,
			       resync_domain(d, r->start, r->last, failed));
	}
	while ((m = removed)) {
		removed = m->child[0];
		free(m);
	}
	return VIOMMU_VIRTIO_S_OK;
}

typedef enum viommu_virtio_status (*req_fn)(struct viommu_virtio *v,
					    const struct req *r,
					    struct viommu_error *err);

/* Serve @r with @fn, one request at a time. */
static enum viommu_virtio_status serve(struct viommu_virtio *v,
				       const struct req *r, req_fn fn,
				       struct viommu_error *err)
{
	enum viommu_virtio_status status;

	if (!v)
		return fail(err, r, VIOMMU_VIRTIO_S_INVAL, -EINVAL,
			    "no device");
	/*
	 * From inside a notification of our own change the address spaces
	 * are busy and the model half changed: refuse rather than wait for
	 * ourselves.
	 */
	if (viommu__virtio_enter(v))
		return fail(err, r, VIOMMU_VIRTIO_S_DEVERR, -EBUSY,
			    "cannot be served from inside a notification of "
			    "this device");
	status = fn(v, r, err);
	viommu__virtio_leave(v);
	return status;
}

enum viommu_virtio_status viommu_virtio_attach(struct viommu_virtio *v,
					       uint32_t domain,
					       uint32_t endpoint,
					       struct viommu_error *err)
{
	const struct req r = { .type = REQ_ATTACH,
			       .domain = domain,
			       .endpoint = endpoint };

	return serve(v, &r, attach, err);
}

enum viommu_virtio_status viommu_virtio_detach(struct viommu_virtio *v,
					       uint32_t domain,
					       uint32_t endpoint,
					       struct viommu_error *err)
{
	const struct req r = { .type = REQ_DETACH,
			       .domain = domain,
			       .endpoint = endpoint };

	return serve(v, &r, detach, err);
}

enum viommu_virtio_status
viommu_virtio_map(struct viommu_virtio *v, uint32_t domain, uint64_t virt_start,
		  uint64_t virt_end, uint64_t phys_start, unsigned flags,
		  struct viommu_error *err)
{
	const struct req r = { .type = REQ_MAP,
			       .domain = domain,
			       .start = virt_start,
			       .last = virt_end,
			       .phys = phys_start,
			       .flags = flags };

	return serve(v, &r, map, err);
}

enum viommu_virtio_status viommu_virtio_unmap(struct viommu_virtio *v,
					      uint32_t domain,
					      uint64_t virt_start,
					      uint64_t virt_end,
					      struct viommu_error *err)
{
	const struct req r = { .type = REQ_UNMAP,
			       .domain = domain,
			       .start = virt_start,
			       .last = virt_end };

	return serve(v, &r, unmap, err);
}
