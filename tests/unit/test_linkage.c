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

#include <viommu/devtlb.h>
#include <viommu/guest_memory.h>
#include <viommu/model.h>
#include <viommu/shadow.h>
#include <viommu/viommu.h>
#include <viommu/virtio.h>
#include <viommu/vtd.h>
#include <viommu/vtd_driver.h>

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

static int no_hva(void *opaque, uint64_t gpa, uint64_t *len, void **hva)
{
	return -EFAULT;
}

static void on_fault(void *opaque, struct viommu_as *as, const char *msg)
{
}

/* The models, the guest side and the consumers. */
static void test_every_model_export(void **state)
{
	struct viommu_ram *ram;
	struct viommu_guest_memory mem;
	struct viommu_vtd_config vcfg;
	struct viommu_vtd_counters vc;
	struct viommu_vtd *vtd;
	struct viommu_vtd_driver *drv;
	struct viommu_virtio_config icfg;
	struct viommu_virtio *vio;
	struct viommu_as *as, *vas;
	struct viommu_type1_soft *soft;
	struct viommu_type1_soft_counters hc;
	struct viommu_type1_vfio *vfio = NULL;
	struct viommu_host_backend be;
	struct viommu_shadow_config scfg;
	struct viommu_shadow_counters sc;
	struct viommu_shadow *shadow;
	struct viommu_devtlb_config tcfg;
	struct viommu_devtlb_counters tc;
	struct viommu_devtlb *tlb;
	struct viommu_translation t;
	struct viommu_error err;
	uint64_t v = 0;
	uint32_t word = 0x12345678;

	assert_int_equal(viommu_ram_new(64u << 20, &ram, NULL), 0);
	assert_int_equal(viommu_ram_size(ram), 64u << 20);
	mem = viommu_ram_memory(ram);
	assert_int_equal(viommu_guest_write(&mem, 0x1000, &word, 4), 0);
	word = 0;
	assert_int_equal(viommu_guest_read(&mem, 0x1000, &word, 4), 0);
	assert_int_equal(word, 0x12345678);
	assert_int_not_equal(viommu_ram_load_image(ram, "/nonexistent", &err),
			     0);

	viommu_vtd_config_init(&vcfg);
	vcfg.device_iotlb = true;
	assert_int_equal(viommu_vtd_new(&vcfg, &mem, &vtd, NULL), 0);
	viommu_vtd_set_fault_handler(vtd, on_fault, NULL);
	assert_int_equal(viommu_vtd_driver_new(vtd, &mem, 32u << 20, 64u << 20,
					       &drv, NULL),
			 0);
	assert_int_equal(viommu_vtd_driver_domain_new(drv, 1, NULL), 0);
	assert_int_equal(viommu_vtd_driver_attach(drv, 0x10, 1, NULL), 0);
	assert_int_equal(viommu_vtd_device_add(vtd, 0x10, "dev", &as, NULL), 0);
	assert_int_equal(viommu_vtd_driver_map(drv, 1, 0x1000, 0x2000, 0x1000,
					       VIOMMU_PERM_RW, 0x1000, NULL),
			 0);
	assert_int_equal(viommu_vtd_driver_write_pte(drv, 1, 0x5000, 1, 0x3003,
						     false, 1, NULL),
			 0);
	assert_int_equal(viommu_vtd_driver_invalidate(drv, 1, 0, 0, NULL), 0);
	assert_int_equal(viommu_vtd_driver_invalidate_global(drv, NULL), 0);
	assert_int_equal(viommu_vtd_driver_invalidate_devtlb(drv, 0x10, 0,
							     0x1000, NULL),
			 0);
	assert_int_equal(viommu_vtd_queue_submit(vtd, &mem, 4, 0), 0);
	assert_int_equal(viommu_vtd_mmio_write(vtd, VIOMMU_VTD_REG_FECTL, 4, 0),
			 0);
	assert_int_equal(viommu_vtd_mmio_read(vtd, VIOMMU_VTD_REG_VER, 4, &v),
			 0);
	assert_int_equal(v, 0x10);

	assert_int_equal(viommu_type1_soft_new(NULL, &soft, NULL), 0);
	be = viommu_type1_soft_backend(soft);
	viommu_shadow_config_init(&scfg);
	assert_int_equal(viommu_shadow_new(as, &be, &scfg, &shadow, NULL), 0);
	assert_int_equal(viommu_type1_soft_check(soft, as, NULL), 0);
	viommu_shadow_counters(shadow, &sc);
	assert_int_equal(sc.host_entries, 2);
	viommu_shadow_last_error(shadow, &err);
	viommu_type1_soft_counters(soft, &hc);
	assert_int_equal(hc.entries, 2);

	viommu_devtlb_config_init(&tcfg);
	assert_int_equal(viommu_devtlb_new(as, &tcfg, &tlb, NULL), 0);
	assert_int_equal(
		viommu_devtlb_translate(tlb, 0x1008, VIOMMU_PERM_READ, &t), 0);
	assert_int_equal(t.entry.translated_addr, 0x2000);
	viommu_devtlb_flush(tlb);
	viommu_devtlb_counters(tlb, &tc);
	assert_int_equal(tc.misses, 1);

	assert_int_equal(viommu_vtd_driver_unmap(drv, 1, 0x1000, 0x1000, NULL),
			 0);
	assert_int_equal(viommu_vtd_driver_detach(drv, 0x10, NULL), 0);
	viommu_vtd_counters(vtd, &vc);
	assert_true(vc.descriptors > 0);
	viommu_devtlb_free(tlb);
	viommu_shadow_free(shadow);
	viommu_type1_soft_free(soft);

	/* no VFIO here: the real backend's setup fails cleanly */
	assert_int_not_equal(viommu_type1_vfio_open("/nonexistent/vfio",
						    "/nonexistent/1", no_hva,
						    NULL, &vfio, &err),
			     0);
	assert_null(vfio);
	if (vfio) { /* never: but every export must be linked */
		be = viommu_type1_vfio_backend(vfio);
		assert_true(viommu_type1_vfio_group_fd(vfio) >= 0);
	}
	viommu_type1_vfio_close(NULL);

	viommu_vtd_driver_free(drv);
	viommu_vtd_free(vtd);
	viommu_ram_free(ram);

	viommu_virtio_config_init(&icfg);
	assert_int_equal(viommu_virtio_new(&icfg, &vio, NULL), 0);
	assert_int_equal(viommu_virtio_domain_add(vio, 1, NULL), 0);
	assert_int_equal(viommu_virtio_endpoint_add(vio, 7, "ep", &vas, NULL),
			 0);
	assert_int_equal(viommu_virtio_attach(vio, 1, 7, NULL),
			 VIOMMU_VIRTIO_S_OK);
	assert_int_equal(viommu_virtio_map(vio, 1, 0, 0xfff, 0x1000,
					   VIOMMU_VIRTIO_MAP_F_READ, NULL),
			 VIOMMU_VIRTIO_S_OK);
	assert_int_equal(viommu_virtio_mapping_count(vio, 1), 1);
	assert_int_equal(viommu_virtio_unmap(vio, 1, 0, 0xfff, NULL),
			 VIOMMU_VIRTIO_S_OK);
	assert_int_equal(viommu_virtio_detach(vio, 1, 7, NULL),
			 VIOMMU_VIRTIO_S_OK);
	assert_string_equal(viommu_virtio_status_name(VIOMMU_VIRTIO_S_RANGE),
			    "range");
	viommu_virtio_free(vio);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_export),
		cmocka_unit_test(test_every_model_export),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
