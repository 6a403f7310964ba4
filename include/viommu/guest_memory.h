/* SPDX-License-Identifier: MIT */
/*
 * libviommu — guest-physical memory, as a vIOMMU model reads it.
 *
 * Models that keep their tables in guest RAM (VT-d) read it through this
 * ops table, so a VMM hands over its own memory map.  A sparse default
 * implementation backs tests, the viommu command and the benchmarks: only
 * the pages touched cost memory, so a 1 TiB guest costs nothing until used.
 */
#ifndef VIOMMU_GUEST_MEMORY_H
#define VIOMMU_GUEST_MEMORY_H

#include <viommu/viommu.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VIOMMU_GUEST_MEMORY_OPS_VERSION 1
#define VIOMMU_GUEST_PAGE_SIZE 4096u

/**
 * struct viommu_guest_memory_ops - access to guest-physical memory.
 * @version: VIOMMU_GUEST_MEMORY_OPS_VERSION.
 * @read: mandatory.  Copy @len bytes at guest-physical @gpa to @buf.
 *     Return 0, or -EFAULT when any byte lies outside guest RAM.
 * @write: optional (a model that only reads does without).  Return 0 or
 *     -EFAULT.
 * @page: optional fast path.  A pointer to the 4 KiB page at @gpa (aligned)
 *     that stays valid while the memory lives, or NULL when the page is not
 *     plain RAM (the caller then falls back to @read).
 *
 * All may be called from any thread; concurrent guest writes are the
 * guest's business, as on hardware (a reader may see either value of an
 * aligned 8-byte entry, never a torn one).
 */
struct viommu_guest_memory_ops {
	unsigned version;
	int (*read)(void *opaque, uint64_t gpa, void *buf, size_t len);
	int (*write)(void *opaque, uint64_t gpa, const void *buf, size_t len);
	const void *(*page)(void *opaque, uint64_t gpa);
};

/**
 * struct viommu_guest_memory - an ops table and its pointer.
 * @ops: the table.
 * @opaque: handed to each op.
 */
struct viommu_guest_memory {
	const struct viommu_guest_memory_ops *ops;
	void *opaque;
};

struct viommu_ram;

/**
 * viommu_ram_new() - sparse guest RAM of @size bytes, all zero.
 * @size: a multiple of 4 KiB, at least one page.
 * @out: receives the RAM.
 * @err: optional detailed error.
 *
 * Return: 0, -EINVAL for a bad size, -ENOMEM when the address space for it
 * cannot be reserved.
 */
VIOMMU_EXPORT int viommu_ram_new(uint64_t size, struct viommu_ram **out,
				 struct viommu_error *err);

/**
 * viommu_ram_free() - release the RAM.
 * @ram: the RAM (NULL is ignored).  Nothing may use it any more.
 */
VIOMMU_EXPORT void viommu_ram_free(struct viommu_ram *ram);

/**
 * viommu_ram_size() - its size in bytes.
 * @ram: the RAM.
 */
VIOMMU_EXPORT uint64_t viommu_ram_size(const struct viommu_ram *ram);

/**
 * viommu_ram_memory() - the RAM as a struct viommu_guest_memory.
 * @ram: the RAM; must outlive every user of the result.
 */
VIOMMU_EXPORT struct viommu_guest_memory
viommu_ram_memory(struct viommu_ram *ram);

/**
 * viommu_ram_load_image() - load a GUESTMEM image file into the RAM.
 * @ram: the RAM.
 * @path: the file (format: the project's docs/guest-image.md).
 * @err: optional; names the file and what is wrong with it.
 *
 * Rejects a wrong magic or version, a truncated file, an unaligned or
 * out-of-order page address and a page beyond the RAM.
 *
 * Return: 0, -EINVAL for a malformed image, -ERANGE for a page beyond RAM,
 * or a negative errno from opening or reading the file.
 */
VIOMMU_EXPORT int viommu_ram_load_image(struct viommu_ram *ram,
					const char *path,
					struct viommu_error *err);

/**
 * viommu_guest_read() - read through a struct viommu_guest_memory.
 * @mem: the memory.
 * @gpa: guest-physical address.
 * @buf: destination.
 * @len: bytes.
 *
 * Return: 0 or -EFAULT.
 */
VIOMMU_EXPORT int viommu_guest_read(const struct viommu_guest_memory *mem,
				    uint64_t gpa, void *buf, size_t len);

/**
 * viommu_guest_write() - write through a struct viommu_guest_memory.
 * @mem: the memory.
 * @gpa: guest-physical address.
 * @buf: source.
 * @len: bytes.
 *
 * Return: 0, -EFAULT, or -EROFS when the memory has no write op.
 */
VIOMMU_EXPORT int viommu_guest_write(const struct viommu_guest_memory *mem,
				     uint64_t gpa, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_GUEST_MEMORY_H */
