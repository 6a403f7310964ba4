/* SPDX-License-Identifier: MIT */
/*
 * Models and address spaces: creation, translation and read-only queries.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int viommu_model_new(const struct viommu_model_ops *ops, void *opaque,
		     struct viommu_model **out, struct viommu_error *err)
{
	struct viommu_model *model;

	if (!out)
		return viommu__error(err, -EINVAL, "no place for the model");
	*out = NULL;
	if (!ops)
		return viommu__error(err, -EINVAL, "model ops table is NULL");
	if (ops->version < 1 || ops->version > VIOMMU_MODEL_OPS_VERSION)
		return viommu__error(err, -EINVAL,
				     "model ops version %u is not one this "
				     "library knows (1..%u)",
				     ops->version, VIOMMU_MODEL_OPS_VERSION);
	if (!ops->name)
		return viommu__error(err, -EINVAL,
				     "model ops table has no name");
	if (!ops->translate)
		return viommu__error(err, -EINVAL,
				     "model '%s' has no translate op, which "
				     "is mandatory",
				     ops->name);
	model = calloc(1, sizeof(*model));
	if (!model)
		return viommu__error(err, -ENOMEM, "out of memory");
	model->ops = ops;
	model->opaque = opaque;
	*out = model;
	return 0;
}

void viommu_model_free(struct viommu_model *model)
{
	free(model);
}

void *viommu_model_opaque(const struct viommu_model *model)
{
	return model->opaque;
}

int viommu_as_new(struct viommu_model *model, const char *name, void *as_opaque,
		  struct viommu_as **out, struct viommu_error *err)
{
	pthread_mutexattr_t attr;
	struct viommu_as *as;

	if (!out || !model)
		return viommu__error(err, -EINVAL,
				     "no model or no place for "
				     "the address space");
	*out = NULL;
	as = calloc(1, sizeof(*as));
	if (!as)
		return viommu__error(err, -ENOMEM, "out of memory");
	as->name = strdup(name ? name : "as");
	if (!as->name) {
		free(as);
		return viommu__error(err, -ENOMEM, "out of memory");
	}
	as->model = model;
	as->opaque = as_opaque;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&as->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_rwlock_init(&as->map_lock, NULL);
	viommu__emap_init(&as->entries);
	*out = as;
	return 0;
}

void viommu_as_free(struct viommu_as *as)
{
	if (!as)
		return;
	viommu__notifiers_free_all(as);
	viommu__nindex_free(&as->index);
	viommu__nvec_free(&as->notifiers);
	viommu__nvec_free(&as->snapshot);
	viommu__nvec_free(&as->batched);
	viommu__change_scratch_free(as);
	viommu__emap_destroy(&as->entries);
	pthread_rwlock_destroy(&as->map_lock);
	pthread_mutex_destroy(&as->lock);
	free(as->name);
	free(as);
}

void *viommu_as_opaque(const struct viommu_as *as)
{
	return as->opaque;
}

const char *viommu_as_name(const struct viommu_as *as)
{
	return as->name;
}

unsigned viommu_as_notify_flags(const struct viommu_as *as)
{
	return __atomic_load_n(&as->flags_union, __ATOMIC_RELAXED);
}

void viommu__as_lock(struct viommu_as *as)
{
	pthread_mutex_lock(&as->lock);
}

void viommu__as_unlock(struct viommu_as *as)
{
	pthread_mutex_unlock(&as->lock);
}

uint64_t viommu__as_min_page(struct viommu_as *as)
{
	const struct viommu_model_ops *ops = as->model->ops;
	uint64_t size = ops->min_page_size ? ops->min_page_size(as->opaque) : 0;

	/* A model that says nothing usable gets the common 4K. */
	if (!size || (size & (size - 1)))
		size = 4096;
	return size;
}

int viommu_as_translate(struct viommu_as *as, uint64_t iova, unsigned access,
			struct viommu_translation *out)
{
	int ret;

	if (!out || !access || (access & ~VIOMMU_PERM_RW))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	ret = as->model->ops->translate(as->opaque, iova, access, out);
	if (ret)
		return ret;
	if (out->fault == VIOMMU_FAULT_NONE) {
		if (out->entry.perm == VIOMMU_PERM_NONE)
			out->fault = VIOMMU_FAULT_NOT_PRESENT;
		else if ((out->entry.perm & access) != access)
			out->fault = VIOMMU_FAULT_PERMISSION;
	}
	return 0;
}

bool viommu_as_lookup(struct viommu_as *as, uint64_t iova,
		      struct viommu_entry *out)
{
	bool found;

	pthread_rwlock_rdlock(&as->map_lock);
	found = viommu__emap_lookup(&as->entries, iova, out);
	pthread_rwlock_unlock(&as->map_lock);
	return found;
}

size_t viommu_as_mapping_count(struct viommu_as *as)
{
	size_t n;

	pthread_rwlock_rdlock(&as->map_lock);
	n = as->entries.count;
	pthread_rwlock_unlock(&as->map_lock);
	return n;
}

size_t viommu_as_memory_bytes(struct viommu_as *as)
{
	size_t n;

	pthread_rwlock_rdlock(&as->map_lock);
	n = as->entries.bytes;
	pthread_rwlock_unlock(&as->map_lock);
	return n;
}

int viommu_as_for_each_mapping(struct viommu_as *as, uint64_t start,
			       uint64_t last, viommu_walk_fn fn, void *ctx)
{
	struct viommu__emap_cursor c;
	struct viommu_entry e;
	int ret = 0;

	if (start > last)
		return 0;
	/*
	 * Changes take the address-space lock and refuse to run while it is
	 * busy, so the cursor stays valid while @fn runs; @fn may look
	 * things up.
	 */
	viommu__as_lock(as);
	as->busy++;
	if (viommu__emap_seek(&as->entries, start, &c)) {
		do {
			viommu__emap_get(&c, &e);
			if (e.iova > last)
				break;
			ret = fn(ctx, &e);
		} while (!ret && viommu__emap_next(&c));
	}
	viommu__as_unbusy(as);
	viommu__as_unlock(as);
	return ret;
}
