/* SPDX-License-Identifier: MIT */
/*
 * Models and notifiers (items 1 and 2): ops tables checked at registration,
 * registration errors, the flags union told to the model only when it
 * changes, refusal rolled back, unregistering never failing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake.h"

static int no_notify(struct viommu_notifier *n, const struct viommu_event *ev,
		     void *opaque)
{
	return 0;
}

static void test_model_ops_checked(void **state)
{
	struct viommu_model_ops ops = fake_ops_replay;
	struct viommu_model *m = (void *)1;
	struct viommu_error err;

	assert_int_equal(viommu_model_new(NULL, NULL, &m, &err), -EINVAL);
	assert_null(m);
	ops.translate = NULL;
	assert_int_equal(viommu_model_new(&ops, NULL, &m, &err), -EINVAL);
	assert_int_equal(err.code, -EINVAL);
	assert_non_null(strstr(err.message, "translate"));
	ops = fake_ops_replay;
	ops.version = 0;
	assert_int_equal(viommu_model_new(&ops, NULL, &m, &err), -EINVAL);
	ops.version = VIOMMU_MODEL_OPS_VERSION + 1;
	assert_int_equal(viommu_model_new(&ops, NULL, &m, &err), -EINVAL);
	assert_non_null(strstr(err.message, "version"));
	ops = fake_ops_replay;
	ops.name = NULL;
	assert_int_equal(viommu_model_new(&ops, NULL, &m, NULL), -EINVAL);

	/* optional members may be absent */
	ops = fake_ops_replay;
	ops.replay = NULL;
	ops.notify_flags_changed = NULL;
	ops.min_page_size = NULL;
	assert_int_equal(viommu_model_new(&ops, &ops, &m, NULL), 0);
	assert_ptr_equal(viommu_model_opaque(m), &ops);
	viommu_model_free(m);
}

static void test_register_errors(void **state)
{
	struct fake f;
	struct viommu_notifier_config cfg;
	struct viommu_notifier *n = (void *)1;
	struct viommu_error err;

	fake_init(&f, &fake_ops_replay);
	viommu_notifier_config_init(&cfg, 0, no_notify, NULL);
	assert_int_equal(viommu_notifier_register(f.as, &cfg, &n, &err),
			 -EINVAL);
	assert_null(n);
	assert_non_null(strstr(err.message, "flags"));

	cfg.flags = 1u << 7;
	assert_int_equal(viommu_notifier_register(f.as, &cfg, &n, &err),
			 -EINVAL);

	cfg.flags = MAP;
	cfg.start = 0x2000;
	cfg.last = 0x1fff;
	assert_int_equal(viommu_notifier_register(f.as, &cfg, &n, &err),
			 -EINVAL);
	assert_non_null(strstr(err.message, "start is after last"));

	viommu_notifier_config_init(&cfg, MAP, NULL, NULL);
	assert_int_equal(viommu_notifier_register(f.as, &cfg, &n, &err),
			 -EINVAL);

	/* none of that reached the model */
	assert_int_equal(f.tables->flag_changes, 0);
	assert_int_equal(viommu_as_notify_flags(f.as), 0);
	fake_fini(&f);
}

static void test_flags_union(void **state)
{
	struct fake f;
	struct viommu_notifier_config cfg;
	struct viommu_notifier *a, *b, *c;

	fake_init(&f, &fake_ops_replay);
	viommu_notifier_config_init(&cfg, UNMAP, no_notify, NULL);
	assert_int_equal(viommu_notifier_register(f.as, &cfg, &a, NULL), 0);
	assert_int_equal(f.tables->flag_changes, 1);
	assert_int_equal(f.tables->flags_seen, UNMAP);

	/* same flags again: the union does not change, the model is not told */
	assert_int_equal(viommu_notifier_register(f.as, &cfg, &b, NULL), 0);
	assert_int_equal(f.tables->flag_changes, 1);

	cfg.flags = MAP | DEVTLB;
	assert_int_equal(viommu_notifier_register(f.as, &cfg, &c, NULL), 0);
	assert_int_equal(f.tables->flag_changes, 2);
	assert_int_equal(f.tables->flags_seen, MAP | UNMAP | DEVTLB);
	assert_int_equal(viommu_as_notify_flags(f.as), MAP | UNMAP | DEVTLB);
	assert_int_equal(viommu_notifier_flags(c), MAP | DEVTLB);
	assert_ptr_equal(viommu_notifier_as(c), f.as);

	viommu_notifier_unregister(a); /* b still wants UNMAP */
	assert_int_equal(f.tables->flag_changes, 2);
	viommu_notifier_unregister(c);
	assert_int_equal(f.tables->flag_changes, 3);
	assert_int_equal(f.tables->flags_seen, UNMAP);
	viommu_notifier_unregister(b);
	assert_int_equal(f.tables->flag_changes, 4);
	assert_int_equal(f.tables->flags_seen, 0);
	assert_int_equal(viommu_as_notify_flags(f.as), 0);
	viommu_notifier_unregister(NULL); /* ignored */
	fake_fini(&f);
}

static void test_refusal_rolls_back(void **state)
{
	struct fake f;
	struct recorder *rec = calloc(1, sizeof(*rec));
	struct rec_client keep, refused;
	struct viommu_error err = { 0 };
	struct viommu_notifier_config cfg;
	struct viommu_notifier *n = (void *)1;

	fake_init(&f, &fake_ops_replay);
	f.tables->refuse_map = true;
	assert_int_equal(
		rec_register(f.as, &keep, rec, 1, UNMAP, 0, UINT64_MAX), 0);
	viommu_notifier_config_init(&cfg, MAP | UNMAP, rec_notify, &refused);
	refused.rec = rec;
	refused.who = 2;
	assert_int_equal(viommu_notifier_register(f.as, &cfg, &n, &err),
			 -ENOTSUP);
	assert_null(n);
	assert_string_equal(err.message, "fake: cannot report maps");
	assert_int_equal(viommu_as_notify_flags(f.as), UNMAP);
	assert_int_equal(f.tables->flags_seen, UNMAP);

	/* the refused notifier hears nothing; the other one still works */
	fake_set(f.tables, 0x1000, 0x1000, 0x9000, RW);
	assert_int_equal(viommu_as_sync(f.as, 0, UINT64_MAX, 0, NULL), 0);
	fake_clear(f.tables, 0, UINT64_MAX);
	assert_int_equal(viommu_as_sync(f.as, 0, UINT64_MAX, 0, NULL), 0);
	assert_int_equal(rec->n, 1);
	assert_event(&rec->ev[0], 1, UNMAP, 0x1000, 0x1000, 0x9000, 0);
	viommu_notifier_unregister(keep.handle);
	fake_fini(&f);
	free(rec);
}

static void test_as_basics(void **state)
{
	struct fake f;
	struct viommu_as *as;
	struct viommu_translation t;

	fake_init(&f, &fake_ops_replay);
	assert_string_equal(viommu_as_name(f.as), "fake0");
	assert_ptr_equal(viommu_as_opaque(f.as), f.tables);
	assert_int_equal(viommu_as_new(f.model, NULL, NULL, &as, NULL), 0);
	assert_string_equal(viommu_as_name(as), "as");
	viommu_as_free(as);
	viommu_as_free(NULL);

	fake_set(f.tables, 0x4000, 0x1000, 0x7000, RO);
	assert_int_equal(viommu_as_translate(f.as, 0x4123, RO, &t), 0);
	assert_int_equal(t.fault, VIOMMU_FAULT_NONE);
	assert_int_equal(t.entry.translated_addr, 0x7000);
	assert_int_equal(viommu_as_translate(f.as, 0x4123, WO, &t), 0);
	assert_int_equal(t.fault, VIOMMU_FAULT_PERMISSION);
	assert_int_equal(viommu_as_translate(f.as, 0x8000, RO, &t), 0);
	assert_int_equal(t.fault, VIOMMU_FAULT_NOT_PRESENT);
	assert_int_equal(viommu_as_translate(f.as, 0x8000, 0, &t), -EINVAL);
	assert_int_equal(viommu_as_translate(f.as, 0x8000, 8, &t), -EINVAL);
	fake_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_ops_checked),
		cmocka_unit_test(test_register_errors),
		cmocka_unit_test(test_flags_union),
		cmocka_unit_test(test_refusal_rolls_back),
		cmocka_unit_test(test_as_basics),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
