/* SPDX-License-Identifier: MIT */
/*
 * Sparse guest RAM: the default struct viommu_guest_memory.
 *
 * One anonymous private mapping reserved with MAP_NORESERVE holds the whole
 * guest-physical space, so creating even a 1 TiB guest costs address space
 * only; the kernel supplies zero pages on first touch.  Guest images
 * (docs/guest-image.md) are loaded straight into that mapping.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <viommu/guest_memory.h>

#include "internal.h"

struct viommu_ram {
	uint8_t *base;
	uint64_t size;
};

/* [gpa, gpa + len) within [0, size), without overflowing. */
static bool ram_in_bounds(const struct viommu_ram *ram, uint64_t gpa,
			  uint64_t len)
{
	return len <= ram->size && gpa <= ram->size - len;
}

/*
 * Copy whole aligned 8-byte words with single loads and stores, so a model
 * reading a page-table entry never sees half of a concurrent guest write
 * (see struct viommu_guest_memory_ops).  Anything else is plain bytes.
 */
static bool words_aligned(uint64_t gpa, size_t len)
{
	return ((gpa | len) & 7) == 0;
}

static int ram_read(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	struct viommu_ram *ram = opaque;
	const uint64_t *src;
	uint8_t *dst = buf;
	size_t i;

	if (!ram_in_bounds(ram, gpa, len))
		return -EFAULT;
	if (!len)
		return 0;
	if (!words_aligned(gpa, len)) {
		memcpy(buf, ram->base + gpa, len);
		return 0;
	}
	src = (const uint64_t *)(ram->base + gpa);
	for (i = 0; i < len / 8; i++) {
		uint64_t v = __atomic_load_n(&src[i], __ATOMIC_RELAXED);

		memcpy(dst + 8 * i, &v, 8);
	}
	return 0;
}

static int ram_write(void *opaque, uint64_t gpa, const void *buf, size_t len)
{
	struct viommu_ram *ram = opaque;
	const uint8_t *src = buf;
	uint64_t *dst;
	size_t i;

	if (!ram_in_bounds(ram, gpa, len))
		return -EFAULT;
	if (!len)
		return 0;
	if (!words_aligned(gpa, len)) {
		memcpy(ram->base + gpa, buf, len);
		return 0;
	}
	dst = (uint64_t *)(ram->base + gpa);
	for (i = 0; i < len / 8; i++) {
		uint64_t v;

		memcpy(&v, src + 8 * i, 8);
		__atomic_store_n(&dst[i], v, __ATOMIC_RELAXED);
	}
	return 0;
}

static const void *ram_page(void *opaque, uint64_t gpa)
{
	struct viommu_ram *ram = opaque;

	if (gpa & (VIOMMU_GUEST_PAGE_SIZE - 1) ||
	    !ram_in_bounds(ram, gpa, VIOMMU_GUEST_PAGE_SIZE))
		return NULL;
	return ram->base + gpa;
}

static const struct viommu_guest_memory_ops ram_ops = {
	.version = VIOMMU_GUEST_MEMORY_OPS_VERSION,
	.read = ram_read,
	.write = ram_write,
	.page = ram_page,
};

int viommu_ram_new(uint64_t size, struct viommu_ram **out,
		   struct viommu_error *err)
{
	struct viommu_ram *ram;
	void *base;

	if (!out)
		return viommu__error(err, -EINVAL, "ram: no result pointer");
	*out = NULL;
	if (size == 0 || size % VIOMMU_GUEST_PAGE_SIZE)
		return viommu__error(err, -EINVAL,
				     "ram: size 0x%llx is not a positive "
				     "multiple of 4 KiB",
				     (unsigned long long)size);
	if (size > SIZE_MAX)
		return viommu__error(err, -ENOMEM,
				     "ram: size 0x%llx does not fit in this "
				     "process",
				     (unsigned long long)size);
	ram = calloc(1, sizeof(*ram));
	if (!ram)
		return viommu__error(err, -ENOMEM, "ram: out of memory");
	base = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) {
		int code = errno == ENOMEM ? -ENOMEM : -errno;

		free(ram);
		return viommu__error(err, code,
				     "ram: cannot reserve 0x%llx bytes of "
				     "address space: %s",
				     (unsigned long long)size, strerror(errno));
	}
	ram->base = base;
	ram->size = size;
	*out = ram;
	return 0;
}

void viommu_ram_free(struct viommu_ram *ram)
{
	if (!ram)
		return;
	munmap(ram->base, (size_t)ram->size);
	free(ram);
}

uint64_t viommu_ram_size(const struct viommu_ram *ram)
{
	return ram->size;
}

struct viommu_guest_memory viommu_ram_memory(struct viommu_ram *ram)
{
	struct viommu_guest_memory mem = { .ops = &ram_ops, .opaque = ram };

	return mem;
}

int viommu_guest_read(const struct viommu_guest_memory *mem, uint64_t gpa,
		      void *buf, size_t len)
{
	/* Without a memory nothing is readable: the caller sees a bad address. */
	if (!mem || !mem->ops || !mem->ops->read)
		return -EFAULT;
	return mem->ops->read(mem->opaque, gpa, buf, len);
}

int viommu_guest_write(const struct viommu_guest_memory *mem, uint64_t gpa,
		       const void *buf, size_t len)
{
	if (!mem || !mem->ops)
		return -EFAULT;
	if (!mem->ops->write)
		return -EROFS;
	return mem->ops->write(mem->opaque, gpa, buf, len);
}

/*
 * GUESTMEM images (docs/guest-image.md): a 16-byte header, then npages
 * records of a u64 gpa and 4096 bytes of data, little-endian.
 */
#define IMAGE_MAGIC "GUESTMEM"
#define IMAGE_VERSION 1u
#define IMAGE_HEADER 16u
#define IMAGE_RECORD (8u + VIOMMU_GUEST_PAGE_SIZE)

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* pread() all of @len, or report how much there was (a short file). */
static int read_at(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done,
				  (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

/*
 * Check the whole file before touching the RAM, so a bad image leaves the
 * guest as it was.  Sizes are checked with fstat(): every record has the
 * same length, so a short file is found without reading it all.
 */
static int image_check(const struct viommu_ram *ram, int fd, const char *path,
		       uint32_t *npages_out, struct viommu_error *err)
{
	uint8_t hdr[IMAGE_HEADER], gpa_buf[8];
	uint64_t expect, prev = 0;
	struct stat st;
	uint32_t npages, version, i;
	size_t got;
	int ret;

	if (fstat(fd, &st) < 0)
		return viommu__error(err, -errno, "%s: %s", path,
				     strerror(errno));
	ret = read_at(fd, hdr, sizeof(hdr), 0, &got);
	if (ret)
		return viommu__error(err, ret, "%s: %s", path, strerror(-ret));
	if (got < 8 || memcmp(hdr, IMAGE_MAGIC, 8))
		return viommu__error(err, -EINVAL,
				     "%s: not a guest memory image (bad magic, "
				     "expected \"" IMAGE_MAGIC "\")",
				     path);
	if (got < IMAGE_HEADER)
		return viommu__error(
			err, -EINVAL,
			"%s: truncated: the header needs %u bytes, "
			"the file has %zu",
			path, IMAGE_HEADER, got);
	version = get_le32(hdr + 8);
	if (version != IMAGE_VERSION)
		return viommu__error(err, -EINVAL,
				     "%s: unsupported version %u (expected %u)",
				     path, version, IMAGE_VERSION);
	npages = get_le32(hdr + 12);
	expect = IMAGE_HEADER + (uint64_t)npages * IMAGE_RECORD;
	if ((uint64_t)st.st_size < expect) {
		uint64_t whole =
			((uint64_t)st.st_size - IMAGE_HEADER) / IMAGE_RECORD;

		return viommu__error(err, -EINVAL,
				     "%s: truncated: npages is %u, which needs "
				     "%llu bytes, but the file has %llu "
				     "(record %llu is incomplete)",
				     path, npages, (unsigned long long)expect,
				     (unsigned long long)st.st_size,
				     (unsigned long long)whole);
	}
	if ((uint64_t)st.st_size > expect)
		return viommu__error(err, -EINVAL,
				     "%s: %llu bytes after the last of npages "
				     "= %u records (a wrong npages?)",
				     path,
				     (unsigned long long)st.st_size - expect,
				     npages);
	for (i = 0; i < npages; i++) {
		uint64_t gpa;

		ret = read_at(fd, gpa_buf, 8,
			      IMAGE_HEADER + (uint64_t)i * IMAGE_RECORD, &got);
		if (!ret && got < 8)
			ret = -EIO; /* shrank since fstat() */
		if (ret)
			return viommu__error(err, ret, "%s: record %u: %s",
					     path, i, strerror(-ret));
		gpa = get_le64(gpa_buf);
		if (gpa & (VIOMMU_GUEST_PAGE_SIZE - 1))
			return viommu__error(err, -EINVAL,
					     "%s: record %u: address 0x%llx is "
					     "not 4 KiB aligned",
					     path, i, (unsigned long long)gpa);
		if (i > 0 && gpa <= prev)
			return viommu__error(
				err, -EINVAL,
				"%s: record %u: address 0x%llx "
				"does not follow 0x%llx (addresses "
				"must strictly increase)",
				path, i, (unsigned long long)gpa,
				(unsigned long long)prev);
		if (!ram_in_bounds(ram, gpa, VIOMMU_GUEST_PAGE_SIZE))
			return viommu__error(err, -ERANGE,
					     "%s: record %u: page 0x%llx lies "
					     "beyond the guest RAM (0x%llx "
					     "bytes)",
					     path, i, (unsigned long long)gpa,
					     (unsigned long long)ram->size);
		prev = gpa;
	}
	*npages_out = npages;
	return 0;
}

int viommu_ram_load_image(struct viommu_ram *ram, const char *path,
			  struct viommu_error *err)
{
	uint8_t page[VIOMMU_GUEST_PAGE_SIZE], gpa_buf[8];
	uint32_t npages = 0, i;
	size_t got;
	int fd, ret;

	if (!ram || !path)
		return viommu__error(err, -EINVAL, "image: no RAM or path");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return viommu__error(err, -errno, "%s: %s", path,
				     strerror(errno));
	ret = image_check(ram, fd, path, &npages, err);
	for (i = 0; !ret && i < npages; i++) {
		uint64_t off = IMAGE_HEADER + (uint64_t)i * IMAGE_RECORD;

		ret = read_at(fd, gpa_buf, 8, off, &got);
		if (!ret && got == 8)
			ret = read_at(fd, page, sizeof(page), off + 8, &got);
		if (!ret && got < sizeof(page))
			ret = -EIO;
		/* Through the write op, so no entry is ever seen torn. */
		if (!ret)
			ret = ram_write(ram, get_le64(gpa_buf), page,
					sizeof(page));
		if (ret)
			viommu__error(err, ret,
				      "%s: record %u: %s (the file changed "
				      "while loading?)",
				      path, i, strerror(-ret));
	}
	close(fd);
	return ret;
}
