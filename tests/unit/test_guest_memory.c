/* SPDX-License-Identifier: MIT */
/*
 * Sparse guest RAM: bounds, the page fast path, a 1 TiB guest that costs
 * nothing, and GUESTMEM image loading with every way an image can be bad.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <viommu/guest_memory.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define KiB(x) ((uint64_t)(x) << 10)
#define MiB(x) ((uint64_t)(x) << 20)
#define GiB(x) ((uint64_t)(x) << 30)

static void test_ram_new_rejects(void **state)
{
	struct viommu_ram *ram = (void *)1;
	struct viommu_error err;

	assert_int_equal(viommu_ram_new(0, &ram, &err), -EINVAL);
	assert_null(ram);
	assert_int_equal(err.code, -EINVAL);
	assert_non_null(strstr(err.message, "4 KiB"));
	assert_int_equal(viommu_ram_new(4095, &ram, NULL), -EINVAL);
	assert_int_equal(viommu_ram_new(KiB(4) + 1, &ram, NULL), -EINVAL);
	assert_int_equal(viommu_ram_new(KiB(4), NULL, NULL), -EINVAL);
	assert_int_equal(viommu_ram_new(KiB(4), &ram, NULL), 0);
	assert_int_equal(viommu_ram_size(ram), KiB(4));
	viommu_ram_free(ram);
	viommu_ram_free(NULL);
}

static void test_ram_bounds(void **state)
{
	struct viommu_guest_memory mem;
	struct viommu_ram *ram;
	uint8_t buf[16], back[16];
	uint64_t word = 0x1122334455667788, w = 0;
	const uint8_t *page;
	size_t i;

	assert_int_equal(viommu_ram_new(MiB(1), &ram, NULL), 0);
	mem = viommu_ram_memory(ram);
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(0xa0 + i);

	/* fresh RAM reads as zero; what is written reads back */
	assert_int_equal(viommu_guest_read(&mem, 0x3000, back, 16), 0);
	for (i = 0; i < sizeof(back); i++)
		assert_int_equal(back[i], 0);
	assert_int_equal(viommu_guest_write(&mem, 0x3003, buf, 13), 0);
	assert_int_equal(viommu_guest_read(&mem, 0x3003, back, 13), 0);
	assert_memory_equal(buf, back, 13);
	assert_int_equal(viommu_guest_write(&mem, 0x4000, &word, 8), 0);
	assert_int_equal(viommu_guest_read(&mem, 0x4000, &w, 8), 0);
	assert_int_equal(w, word);

	/* the last bytes, and one past them */
	assert_int_equal(viommu_guest_write(&mem, MiB(1) - 16, buf, 16), 0);
	assert_int_equal(viommu_guest_read(&mem, MiB(1) - 16, back, 16), 0);
	assert_memory_equal(buf, back, 16);
	assert_int_equal(viommu_guest_read(&mem, MiB(1) - 15, back, 16),
			 -EFAULT);
	assert_int_equal(viommu_guest_write(&mem, MiB(1) - 15, buf, 16),
			 -EFAULT);
	assert_int_equal(viommu_guest_read(&mem, MiB(1), back, 1), -EFAULT);
	assert_int_equal(viommu_guest_read(&mem, MiB(1), back, 0), 0);
	assert_int_equal(viommu_guest_read(&mem, MiB(1) + 1, back, 0), -EFAULT);
	/* gpa + len wrapping around 2^64 is caught, not wrapped */
	assert_int_equal(viommu_guest_read(&mem, UINT64_MAX - 3, back, 8),
			 -EFAULT);
	assert_int_equal(viommu_guest_write(&mem, UINT64_MAX - 7, buf, 16),
			 -EFAULT);
	assert_int_equal(viommu_guest_read(&mem, 8, back, SIZE_MAX), -EFAULT);

	/* the page fast path: aligned pages inside the RAM only */
	page = mem.ops->page(mem.opaque, 0x4000);
	assert_non_null(page);
	assert_memory_equal(page, &word, 8);
	assert_non_null(mem.ops->page(mem.opaque, MiB(1) - KiB(4)));
	assert_null(mem.ops->page(mem.opaque, MiB(1)));
	assert_null(mem.ops->page(mem.opaque, 0x4008));
	assert_null(mem.ops->page(mem.opaque, UINT64_MAX & ~0xfffull));
	viommu_ram_free(ram);
}

static void test_guest_access_helpers(void **state)
{
	static const struct viommu_guest_memory_ops read_only = {
		.version = VIOMMU_GUEST_MEMORY_OPS_VERSION,
		.read = NULL,
	};
	struct viommu_guest_memory none = { &read_only, NULL };
	uint64_t v = 0;

	assert_int_equal(viommu_guest_read(NULL, 0, &v, 8), -EFAULT);
	assert_int_equal(viommu_guest_read(&none, 0, &v, 8), -EFAULT);
	assert_int_equal(viommu_guest_write(&none, 0, &v, 8), -EROFS);
	assert_int_equal(viommu_guest_write(NULL, 0, &v, 8), -EFAULT);
}

/* Resident memory of this process, in bytes. */
static uint64_t rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void test_ram_sparse_1tib(void **state)
{
	struct viommu_guest_memory mem;
	struct viommu_ram *ram;
	uint64_t before, v = 0x5a5a, w = 0;
	const uint64_t size = GiB(1024);

	/* valgrind gives a process well under 1 TiB of address space */
	if (RUNNING_ON_VALGRIND) {
		print_message("1 TiB of address space: not under valgrind\n");
		skip();
		return;
	}
	before = rss_bytes();
	assert_int_equal(viommu_ram_new(size, &ram, NULL), 0);
	assert_int_equal(viommu_ram_size(ram), size);
	mem = viommu_ram_memory(ram);
	assert_int_equal(viommu_guest_write(&mem, size - 8, &v, 8), 0);
	assert_int_equal(viommu_guest_write(&mem, GiB(512), &v, 8), 0);
	assert_int_equal(viommu_guest_read(&mem, size - 8, &w, 8), 0);
	assert_int_equal(w, v);
	assert_int_equal(viommu_guest_read(&mem, GiB(700), &w, 8), 0);
	assert_int_equal(w, 0);
	assert_int_equal(viommu_guest_read(&mem, size - 7, &w, 8), -EFAULT);
	/* two touched pages, not a terabyte */
	if (before)
		assert_true(rss_bytes() < before + MiB(64));
	viommu_ram_free(ram);
}

/* --- images ------------------------------------------------------------ */

static char tmpdir[64];

static int make_tmpdir(void **state)
{
	strcpy(tmpdir, "/tmp/viommu-test-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

struct record {
	uint64_t gpa;
	uint8_t fill;
};

static void put_le(FILE *f, uint64_t v, unsigned bytes)
{
	unsigned i;

	for (i = 0; i < bytes; i++)
		assert_int_equal(fputc((int)(v >> (8 * i)) & 0xff, f),
				 (int)(v >> (8 * i)) & 0xff);
}

/*
 * Write an image named @name with @n records; @magic, @version and
 * @npages go in the header as given, and the file is cut to @cut bytes
 * when @cut is non-zero.
 */
static const char *write_image(const char *name, const char *magic,
			       uint32_t version, uint32_t npages,
			       const struct record *recs, size_t n, long cut)
{
	static char path[128];
	uint8_t page[4096];
	FILE *f;
	size_t i;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(magic, 1, 8, f), 8);
	put_le(f, version, 4);
	put_le(f, npages, 4);
	for (i = 0; i < n; i++) {
		put_le(f, recs[i].gpa, 8);
		memset(page, recs[i].fill, sizeof(page));
		page[0] = (uint8_t)i; /* tell the records apart */
		assert_int_equal(fwrite(page, 1, sizeof(page), f),
				 sizeof(page));
	}
	assert_int_equal(fclose(f), 0);
	if (cut)
		assert_int_equal(truncate(path, cut), 0);
	return path;
}

/* Loading @path into a fresh 1 MiB RAM fails with @code, saying @what. */
static void expect_bad_image(const char *path, int code, const char *what,
			     const char *what2)
{
	struct viommu_guest_memory mem;
	struct viommu_ram *ram;
	struct viommu_error err = { 0 };
	uint8_t page[4096];
	size_t i;

	assert_int_equal(viommu_ram_new(MiB(1), &ram, NULL), 0);
	assert_int_equal(viommu_ram_load_image(ram, path, &err), code);
	assert_int_equal(err.code, code);
	print_message("  %s\n", err.message);
	assert_non_null(strstr(err.message, path));
	if (!strstr(err.message, what))
		fail_msg("\"%s\" does not say \"%s\"", err.message, what);
	if (what2 && !strstr(err.message, what2))
		fail_msg("\"%s\" does not say \"%s\"", err.message, what2);
	/* all or nothing: the RAM is untouched */
	mem = viommu_ram_memory(ram);
	for (i = 0; i < 256; i++) {
		assert_int_equal(viommu_guest_read(&mem, i * 4096, page,
						   sizeof(page)),
				 0);
		assert_int_equal(page[0] | page[4095], 0);
	}
	viommu_ram_free(ram);
}

static const struct record good[] = {
	{ 0x1000, 0x11 },
	{ 0x5000, 0x55 },
	{ 0xff000, 0xff },
};

static void test_image_valid(void **state)
{
	const char *path =
		write_image("good.img", "GUESTMEM", 1, 3, good, 3, 0);
	struct viommu_guest_memory mem;
	struct viommu_ram *ram;
	struct viommu_error err = { 0 };
	uint8_t page[4096];
	size_t i;

	assert_int_equal(viommu_ram_new(MiB(1), &ram, NULL), 0);
	assert_int_equal(viommu_ram_load_image(ram, path, &err), 0);
	mem = viommu_ram_memory(ram);
	for (i = 0; i < 3; i++) {
		assert_int_equal(viommu_guest_read(&mem, good[i].gpa, page,
						   sizeof(page)),
				 0);
		assert_int_equal(page[0], i);
		assert_int_equal(page[1], good[i].fill);
		assert_int_equal(page[4095], good[i].fill);
	}
	/* pages not in the image stay zero */
	assert_int_equal(viommu_guest_read(&mem, 0x2000, page, sizeof(page)),
			 0);
	assert_int_equal(page[0] | page[100] | page[4095], 0);
	viommu_ram_free(ram);

	/* an image without pages is fine too */
	path = write_image("empty.img", "GUESTMEM", 1, 0, NULL, 0, 0);
	assert_int_equal(viommu_ram_new(MiB(1), &ram, NULL), 0);
	assert_int_equal(viommu_ram_load_image(ram, path, &err), 0);
	viommu_ram_free(ram);
}

static void test_image_bad_header(void **state)
{
	expect_bad_image(write_image("magic.img", "GUESTMEN", 1, 3, good, 3, 0),
			 -EINVAL, "magic", NULL);
	expect_bad_image(write_image("version.img", "GUESTMEM", 2, 3, good, 3,
				     0),
			 -EINVAL, "version 2", NULL);
	expect_bad_image(write_image("short.img", "GUESTMEM", 1, 3, good, 3,
				     12),
			 -EINVAL, "truncated", "header");
	expect_bad_image(write_image("tiny.img", "GUESTMEM", 1, 3, good, 3, 5),
			 -EINVAL, "magic", NULL);
}

static void test_image_bad_records(void **state)
{
	const struct record unaligned[] = { { 0x1000, 1 }, { 0x2800, 2 } };
	const struct record order[] = { { 0x1000, 1 },
					{ 0x8000, 2 },
					{ 0x3000, 3 } };
	const struct record dup[] = { { 0x1000, 1 }, { 0x1000, 2 } };
	const struct record beyond[] = { { 0x1000, 1 }, { MiB(1), 2 } };
	const struct record wrap[] = { { UINT64_MAX & ~0xfffull, 1 } };
	struct viommu_ram *ram;
	struct viommu_error err = { 0 };

	/* npages promises more than the file holds: cut inside record 2 */
	expect_bad_image(write_image("cut.img", "GUESTMEM", 1, 3, good, 3,
				     16 + 2 * 4104 + 100),
			 -EINVAL, "truncated", "record 2");
	expect_bad_image(write_image("cut2.img", "GUESTMEM", 1, 3, good, 3,
				     16 + 2 * 4104),
			 -EINVAL, "truncated", "record 2");
	expect_bad_image(write_image("npages.img", "GUESTMEM", 1, 5, good, 3,
				     0),
			 -EINVAL, "truncated", "npages is 5");
	/* ... or less: bytes left over */
	expect_bad_image(write_image("extra.img", "GUESTMEM", 1, 2, good, 3, 0),
			 -EINVAL, "after the last", NULL);
	expect_bad_image(write_image("unaligned.img", "GUESTMEM", 1, 2,
				     unaligned, 2, 0),
			 -EINVAL, "record 1", "0x2800 is not 4 KiB aligned");
	expect_bad_image(write_image("order.img", "GUESTMEM", 1, 3, order, 3,
				     0),
			 -EINVAL, "record 2", "strictly increase");
	expect_bad_image(write_image("dup.img", "GUESTMEM", 1, 2, dup, 2, 0),
			 -EINVAL, "record 1", "0x1000");
	expect_bad_image(write_image("beyond.img", "GUESTMEM", 1, 2, beyond, 2,
				     0),
			 -ERANGE, "record 1", "beyond");
	expect_bad_image(write_image("wrap.img", "GUESTMEM", 1, 1, wrap, 1, 0),
			 -ERANGE, "record 0", "beyond");

	/* a file that is not there */
	assert_int_equal(viommu_ram_new(MiB(1), &ram, NULL), 0);
	assert_int_equal(viommu_ram_load_image(ram, "/nonexistent/x.img", &err),
			 -ENOENT);
	assert_non_null(strstr(err.message, "/nonexistent/x.img"));
	assert_int_equal(viommu_ram_load_image(ram, NULL, &err), -EINVAL);
	viommu_ram_free(ram);
}

static void test_image_capture(void **state)
{
	const char *shared = getenv("VIOMMU_SHARED_DIR");
	struct viommu_guest_memory mem;
	struct viommu_ram *ram;
	struct viommu_error err = { 0 };
	uint64_t root = 0, iqh = 0;
	char path[4096];

	snprintf(path, sizeof(path), "%s/captures/linux61-e1000-aw39/guest.img",
		 shared ? shared : "../shared");
	if (access(path, R_OK)) {
		print_message("no capture at %s (set VIOMMU_SHARED_DIR): "
			      "skipped\n",
			      path);
		skip();
		return;
	}
	assert_int_equal(viommu_ram_new(GiB(4), &ram, NULL), 0);
	if (viommu_ram_load_image(ram, path, &err))
		fail_msg("%s", err.message);
	mem = viommu_ram_memory(ram);
	/* bus 0's root entry: present, context table at 0x2737000 */
	assert_int_equal(viommu_guest_read(&mem, 0x2731000, &root, 8), 0);
	assert_int_equal(root, 0x2737001);
	/* the invalidation queue page is there and not empty */
	assert_int_equal(viommu_guest_read(&mem, 0x11bd000, &iqh, 8), 0);
	assert_int_not_equal(iqh, 0);
	viommu_ram_free(ram);

	/* the same image does not fit a guest of 16 MiB */
	assert_int_equal(viommu_ram_new(MiB(16), &ram, NULL), 0);
	assert_int_equal(viommu_ram_load_image(ram, path, &err), -ERANGE);
	print_message("  %s\n", err.message);
	viommu_ram_free(ram);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ram_new_rejects),
		cmocka_unit_test(test_ram_bounds),
		cmocka_unit_test(test_guest_access_helpers),
		cmocka_unit_test(test_ram_sparse_1tib),
		cmocka_unit_test(test_image_valid),
		cmocka_unit_test(test_image_bad_header),
		cmocka_unit_test(test_image_bad_records),
		cmocka_unit_test(test_image_capture),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
