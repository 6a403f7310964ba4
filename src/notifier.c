/* SPDX-License-Identifier: MIT */
/*
 * Registering, unregistering and replaying notifiers.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

int viommu__nvec_push(struct viommu__nvec *v, struct viommu_notifier *n)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 8;
		struct viommu_notifier **nv = realloc(v->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = n;
	return 0;
}

int viommu__nvec_reserve(struct viommu__nvec *v, size_t cap)
{
	struct viommu_notifier **nv;

	if (cap <= v->cap)
		return 0;
	nv = realloc(v->v, cap * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	v->v = nv;
	v->cap = cap;
	return 0;
}

void viommu__nvec_free(struct viommu__nvec *v)
{
	free(v->v);
	*v = (struct viommu__nvec){ 0 };
}

static unsigned union_of(const struct viommu__nvec *live)
{
	unsigned flags = 0;
	size_t i;

	for (i = 0; i < live->n; i++)
		flags |= live->v[i]->cfg.flags;
	return flags;
}

static void set_union(struct viommu_as *as, unsigned flags)
{
	__atomic_store_n(&as->flags_union, flags, __ATOMIC_RELAXED);
}

void viommu_notifier_config_init(struct viommu_notifier_config *cfg,
				 unsigned flags, viommu_notify_fn notify,
				 void *opaque)
{
	*cfg = (struct viommu_notifier_config){
		.flags = flags,
		.start = 0,
		.last = UINT64_MAX,
		.notify = notify,
		.opaque = opaque,
	};
}

int viommu_notifier_register(struct viommu_as *as,
			     const struct viommu_notifier_config *cfg,
			     struct viommu_notifier **out,
			     struct viommu_error *err)
{
	const struct viommu_model_ops *ops;
	struct viommu_notifier *n;
	unsigned old_flags, new_flags;
	int ret;

	if (!as || !cfg || !out)
		return viommu__error(err, -EINVAL,
				     "address space, config and handle "
				     "pointer are required");
	*out = NULL;
	if (!cfg->flags || (cfg->flags & ~VIOMMU_NOTIFY_ALL))
		return viommu__error(
			err, -EINVAL,
			"notifier flags 0x%x: need at least one of "
			"MAP, UNMAP, DEVIOTLB_UNMAP and no others",
			cfg->flags);
	if (cfg->start > cfg->last)
		return viommu__error(
			err, -EINVAL,
			"notifier range [0x%llx, 0x%llx] is empty: "
			"start is after last",
			(unsigned long long)cfg->start,
			(unsigned long long)cfg->last);
	if (!cfg->notify)
		return viommu__error(err, -EINVAL, "notifier has no callback");

	n = calloc(1, sizeof(*n));
	if (!n)
		return viommu__error(err, -ENOMEM, "out of memory");
	n->as = as;
	n->cfg = *cfg;

	viommu__as_lock(as);
	ops = as->model->ops;
	old_flags = as->flags_union;
	new_flags = old_flags | cfg->flags;
	if (new_flags != old_flags && ops->notify_flags_changed) {
		/* a default message, in case the model gives none */
		viommu__error(err, -ENOTSUP,
			      "model '%s' refused notifier flags 0x%x on '%s'",
			      ops->name, new_flags, as->name);
		ret = ops->notify_flags_changed(as->opaque, old_flags,
						new_flags, err);
		if (ret) {
			if (ret > 0)
				ret = -ENOTSUP;
			viommu__as_unlock(as);
			free(n);
			return ret;
		}
	}
	/*
	 * Dispatch must not fail for want of memory in the middle of a
	 * change, so its scratch grows here, with the notifier count.
	 */
	ret = viommu__nvec_reserve(&as->snapshot, as->notifiers.n + 1);
	if (!ret)
		ret = viommu__nvec_reserve(&as->batched, as->notifiers.n + 1);
	if (!ret)
		ret = viommu__nvec_push(&as->notifiers, n);
	if (!ret) {
		n->gen = ++as->gen;
		ret = viommu__nindex_build(&as->index, &as->notifiers);
		if (ret)
			as->notifiers.n--;
	}
	if (ret) {
		/* Take back what the model was told. */
		if (new_flags != old_flags && ops->notify_flags_changed)
			ops->notify_flags_changed(as->opaque, new_flags,
						  old_flags, NULL);
		viommu__as_unlock(as);
		free(n);
		return viommu__error(err, ret, "out of memory");
	}
	set_union(as, new_flags);
	*out = n;
	viommu__as_unlock(as);
	return 0;
}

void viommu_notifier_unregister(struct viommu_notifier *n)
{
	struct viommu_as *as;
	const struct viommu_model_ops *ops;
	unsigned old_flags, new_flags;
	size_t i;

	if (!n)
		return;
	as = n->as;
	viommu__as_lock(as);
	if (n->dead) {
		/* a second unregister from inside the same dispatch */
		viommu__as_unlock(as);
		return;
	}
	for (i = 0; i < as->notifiers.n && as->notifiers.v[i] != n; i++)
		;
	/* Keep registration order: shift the tail down. */
	for (; i + 1 < as->notifiers.n; i++)
		as->notifiers.v[i] = as->notifiers.v[i + 1];
	as->notifiers.n--;
	n->dead = true;
	viommu__nindex_build(&as->index, &as->notifiers); /* shrinks in place */

	ops = as->model->ops;
	old_flags = as->flags_union;
	new_flags = union_of(&as->notifiers);
	if (new_flags != old_flags) {
		set_union(as, new_flags);
		if (ops->notify_flags_changed)
			ops->notify_flags_changed(as->opaque, old_flags,
						  new_flags, NULL);
	}

	/*
	 * A dispatch in progress may still hold @n in its snapshot (it skips
	 * it now that it is dead): free it when the dispatch ends.
	 */
	if (as->busy) {
		n->next_zombie = as->zombies;
		as->zombies = n;
	} else {
		free(n);
	}
	viommu__as_unlock(as);
}

void viommu__notifiers_free_all(struct viommu_as *as)
{
	struct viommu_notifier *z;
	size_t i;

	for (i = 0; i < as->notifiers.n; i++)
		free(as->notifiers.v[i]);
	as->notifiers.n = 0;
	while ((z = as->zombies)) {
		as->zombies = z->next_zombie;
		free(z);
	}
}

unsigned viommu_notifier_flags(const struct viommu_notifier *n)
{
	return n->cfg.flags;
}

struct viommu_as *viommu_notifier_as(const struct viommu_notifier *n)
{
	return n->as;
}

int viommu_notifier_replay(struct viommu_notifier *n, struct viommu_error *err)
{
	struct viommu_as *as = n->as;
	struct viommu__emap_cursor c;
	struct viommu__dispatch d;
	struct viommu_entry e;
	int ret = 0;

	viommu__as_lock(as);
	if (as->busy) {
		viommu__as_unlock(as);
		return viommu__error(err, -EBUSY,
				     "cannot replay address space '%s' from "
				     "inside one of its notifications",
				     as->name);
	}
	if (!(n->cfg.flags & VIOMMU_NOTIFY_MAP)) {
		/* delivery rules 2 and 5: only map notifiers hear maps */
		viommu__as_unlock(as);
		return 0;
	}
	viommu__dispatch_begin(as, &d);
	/*
	 * The held entries are what is in effect, so a replay reads them,
	 * not the model: O(log n + k) for k entries in the notifier's range,
	 * whatever the size of the address space.
	 */
	if (viommu__emap_seek(&as->entries, n->cfg.start, &c)) {
		do {
			viommu__emap_get(&c, &e);
			if (e.iova > n->cfg.last)
				break;
			ret = viommu__deliver_one(&d, n, VIOMMU_NOTIFY_MAP, &e);
		} while (!ret && !n->dead && viommu__emap_next(&c));
	}
	viommu__dispatch_end(&d);
	viommu__as_unlock(as);
	if (ret)
		return viommu__error(err, ret,
				     "a notifier of '%s' refused a replayed "
				     "map: %s",
				     as->name, viommu_strerror(ret));
	return 0;
}
