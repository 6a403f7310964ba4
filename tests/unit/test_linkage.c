/* SPDX-License-Identifier: MIT */
/*
 * Links against the shared library only and calls every exported function,
 * so a symbol missing from the exports fails the build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>

#include <cmocka.h>

#include <viommu/model.h>
#include <viommu/viommu.h>

static int translate(void *opaque, uint64_t iova, unsigned access,
		     struct viommu_translation *out)
{
	out->entry = (struct viommu_entry){ iova & ~0xfffull, 0xfff,
					    iova & ~0xfffull, VIOMMU_PERM_RW };
	return 0;
}

static const struct viommu_model_ops ops = {
	.version = VIOMMU_MODEL_OPS_VERSION,
	.name = "identity",
	.translate = translate,
};

static int count(struct viommu_notifier *n, const struct viommu_event *ev,
		 void *opaque)
{
	++*(int *)opaque;
	return 0;
}

static int visit(void *ctx, const struct viommu_entry *e)
{
	++*(int *)ctx;
	return 0;
}

static void test_every_export(void **state)
{
	struct viommu_model *model;
	struct viommu_as *as;
	struct viommu_notifier *n;
	struct viommu_notifier_config cfg;
	struct viommu_translation t;
	struct viommu_entry e = { 0x1000, 0xfff, 0x1000, VIOMMU_PERM_RW };
	int events = 0, visits = 0;

	assert_string_equal(viommu_version(), VIOMMU_VERSION_STRING);
	assert_string_equal(viommu_strerror(-EINVAL), "invalid argument");
	assert_int_equal(viommu_model_new(&ops, &visits, &model, NULL), 0);
	assert_ptr_equal(viommu_model_opaque(model), &visits);
	assert_int_equal(viommu_as_new(model, "dev", &events, &as, NULL), 0);
	assert_ptr_equal(viommu_as_opaque(as), &events);
	assert_string_equal(viommu_as_name(as), "dev");
	viommu_notifier_config_init(&cfg, VIOMMU_NOTIFY_ALL, count, &events);
	assert_int_equal(viommu_notifier_register(as, &cfg, &n, NULL), 0);
	assert_int_equal(viommu_notifier_flags(n), VIOMMU_NOTIFY_ALL);
	assert_ptr_equal(viommu_notifier_as(n), as);
	assert_int_equal(viommu_as_notify_flags(as), VIOMMU_NOTIFY_ALL);
	assert_int_equal(viommu_as_update_entry(as, &e, NULL), 0);
	assert_int_equal(viommu_as_update(as, 0x1000, 0x1fff, &e, 1, 0, NULL),
			 0);
	assert_int_equal(viommu_as_sync(as, 0x1000, 0x2fff, 0, NULL), 0);
	assert_int_equal(viommu_as_notify_deviotlb(as, 0x1000, 0xfff), 0);
	assert_int_equal(viommu_notifier_replay(n, NULL), 0);
	assert_int_equal(viommu_as_translate(as, 0x1234, VIOMMU_PERM_READ, &t),
			 0);
	assert_int_equal(t.entry.translated_addr, 0x1000);
	assert_true(viommu_as_lookup(as, 0x1234, &e));
	assert_int_equal(viommu_as_mapping_count(as), 2);
	assert_true(viommu_as_memory_bytes(as) > 0);
	assert_int_equal(viommu_as_for_each_mapping(as, 0, UINT64_MAX, visit,
						    &visits),
			 0);
	assert_int_equal(visits, 2);
	visits = 0;
	assert_int_equal(viommu_split_range(0x1000, 0x4fff, visit, &visits), 0);
	assert_int_equal(visits, 3);
	assert_true(events > 0);
	viommu_notifier_unregister(n);
	viommu_as_free(as);
	viommu_model_free(model);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_export),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
