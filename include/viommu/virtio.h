/* SPDX-License-Identifier: MIT */
/*
 * libviommu — a virtio-iommu model.
 *
 * The request-driven IOMMU of the virtio specification: the guest sends
 * ATTACH, DETACH, MAP and UNMAP requests; each gets a status.  Every request
 * flows through the core's change engine, so the endpoints' notifiers hear
 * exactly what changed.  Requests are answered with the status the device
 * would write in the request's tail (a value, never only a log line).
 *
 * Each endpoint has an address space (struct viommu_as) of its own, where
 * consumers register notifiers.  A MAP of an arbitrary granule-aligned range
 * reaches them as the range cut into naturally aligned powers of two (see
 * viommu_split_range()), each translating to phys_start + its offset; an
 * UNMAP, a DETACH or a move by ATTACH takes back exactly those pieces.
 * DEVIOTLB_UNMAP notifiers are refused (-ENOTSUP): virtio-iommu has no
 * device-IOTLB invalidation, and UNMAP notifiers hear every removal.
 *
 * Threads: requests and the *_add() calls are serialized by the device;
 * viommu_as_translate() on an endpoint's address space and
 * viommu_virtio_mapping_count() may run on any thread, also from inside a
 * notifier's callback.  A request made from inside a callback of one of the
 * device's own changes is answered S_DEVERR (it cannot wait for itself).
 *
 * Errors: when a request's status is not S_OK, @err (if not NULL) names the
 * request, its domain and range, and the reason; @err->code is -EINVAL for
 * S_INVAL, -ERANGE for S_RANGE, -ENOENT for S_NOENT, -ENOMEM for S_NOMEM
 * and, for S_DEVERR, the error the consumer (or the library) returned.
 */
#ifndef VIOMMU_VIRTIO_H
#define VIOMMU_VIRTIO_H

#include <viommu/viommu.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Request status values, as the virtio-iommu specification numbers them. */
enum viommu_virtio_status {
	VIOMMU_VIRTIO_S_OK = 0,
	VIOMMU_VIRTIO_S_IOERR = 1,
	VIOMMU_VIRTIO_S_UNSUPP = 2,
	VIOMMU_VIRTIO_S_DEVERR = 3,
	VIOMMU_VIRTIO_S_INVAL = 4,
	VIOMMU_VIRTIO_S_RANGE = 5,
	VIOMMU_VIRTIO_S_NOENT = 6,
	VIOMMU_VIRTIO_S_FAULT = 7,
	VIOMMU_VIRTIO_S_NOMEM = 8,
};

/* MAP request flags, as in the specification. */
#define VIOMMU_VIRTIO_MAP_F_READ (1u << 0)
#define VIOMMU_VIRTIO_MAP_F_WRITE (1u << 1)

#define VIOMMU_VIRTIO_DEFAULT_MAX_MAPPINGS (1u << 20)

/**
 * struct viommu_virtio_config - what the device advertises.
 * @page_size_mask: bit i set: pages of 2^i bytes are supported; the lowest
 *     set bit is the granule every MAP and UNMAP is aligned to.
 * @input_start: first IOVA a domain may map.
 * @input_last: last IOVA a domain may map (inclusive).
 * @max_mappings: mappings a domain may hold; a MAP beyond is S_NOMEM.
 *     The mappings of a domain live in a balanced tree, about 64 bytes
 *     each with the allocator's overhead.
 */
struct viommu_virtio_config {
	uint64_t page_size_mask;
	uint64_t input_start;
	uint64_t input_last;
	uint64_t max_mappings;
};

struct viommu_virtio;

/**
 * viommu_virtio_config_init() - defaults: 4K granule, 48-bit input range,
 * VIOMMU_VIRTIO_DEFAULT_MAX_MAPPINGS mappings a domain.
 * @cfg: filled in.
 */
VIOMMU_EXPORT void viommu_virtio_config_init(struct viommu_virtio_config *cfg);

/**
 * viommu_virtio_new() - create a virtio-iommu device.
 * @cfg: its configuration (copied); NULL for the defaults.
 * @out: receives the device.
 * @err: optional detailed error.
 *
 * Return: 0, -EINVAL for an empty page-size mask or input range or a zero
 * @max_mappings, -ENOMEM.
 */
VIOMMU_EXPORT int viommu_virtio_new(const struct viommu_virtio_config *cfg,
				    struct viommu_virtio **out,
				    struct viommu_error *err);

/**
 * viommu_virtio_free() - destroy the device, its domains and endpoints
 * (their address spaces and notifiers go too, silently).
 * @v: the device (NULL is ignored).  Not from inside a callback, and with
 *     no translation running on another thread.
 */
VIOMMU_EXPORT void viommu_virtio_free(struct viommu_virtio *v);

/**
 * viommu_virtio_endpoint_add() - a new endpoint, attached to nothing.
 * @v: the device.
 * @endpoint: its endpoint ID (unique).
 * @name: for messages (copied).
 * @out: receives the endpoint's address space, owned by @v.
 * @err: optional detailed error.
 *
 * Return: 0, -EEXIST for a known ID, -ENOMEM, -EBUSY from inside a
 * callback of one of the device's changes.
 */
VIOMMU_EXPORT int viommu_virtio_endpoint_add(struct viommu_virtio *v,
					     uint32_t endpoint,
					     const char *name,
					     struct viommu_as **out,
					     struct viommu_error *err);

/**
 * viommu_virtio_domain_add() - create an empty domain before any ATTACH.
 * @v: the device.
 * @domain: its ID.
 * @err: optional detailed error.
 *
 * ATTACH creates domains too.  As the specification says, a domain that
 * ATTACH created ceases to exist, with its mappings, once its last endpoint
 * is detached from it (by DETACH, or by an ATTACH that moves the endpoint
 * elsewhere); the guest may then reuse its ID for a new, empty domain.  A
 * domain created here is the embedder's: it lives, mappings and all, until
 * the device is freed, whatever its endpoints do (the scenario runner's
 * `domain` command relies on that, as VT-d domains outlive their devices).
 *
 * Return: 0, -EEXIST, -ENOMEM, -EBUSY from inside a callback of one of the
 * device's changes.
 */
VIOMMU_EXPORT int viommu_virtio_domain_add(struct viommu_virtio *v,
					   uint32_t domain,
					   struct viommu_error *err);

/**
 * viommu_virtio_attach() - an ATTACH request.
 * @v: the device.
 * @domain: the domain, created if new.
 * @endpoint: the endpoint; detached from its old domain first.
 * @err: optional; says why when the status is not S_OK.
 *
 * The endpoint's notifiers hear its old domain's mappings go and the new
 * domain's come, except those the two domains share, which stay untouched.
 * Attaching an endpoint to the domain it is in changes nothing.  An old
 * domain left without endpoints ceases to exist.
 *
 * Return: the request status: S_OK; S_NOENT for an unknown endpoint;
 * S_NOMEM when memory ran out (a new domain, or the library's bookkeeping);
 * S_DEVERR when a consumer refused a map.  On failure the endpoint stays
 * where it was, with its old mappings, and a domain this request would
 * have created does not exist.
 */
VIOMMU_EXPORT enum viommu_virtio_status
viommu_virtio_attach(struct viommu_virtio *v, uint32_t domain,
		     uint32_t endpoint, struct viommu_error *err);

/**
 * viommu_virtio_detach() - a DETACH request.
 * @v: the device.
 * @domain: the domain the endpoint must be attached to.
 * @endpoint: the endpoint.
 * @err: optional; says why when the status is not S_OK.
 *
 * The endpoint's notifiers hear every mapping of @domain go; from then on
 * it translates nothing.  @domain ceases to exist if this was its last
 * endpoint.
 *
 * Return: S_OK; S_NOENT for an unknown endpoint or domain; S_INVAL when the
 * endpoint is not attached to @domain; S_NOMEM when the library ran out of
 * memory (nothing changed).
 */
VIOMMU_EXPORT enum viommu_virtio_status
viommu_virtio_detach(struct viommu_virtio *v, uint32_t domain,
		     uint32_t endpoint, struct viommu_error *err);

/**
 * viommu_virtio_map() - a MAP request: [@virt_start, @virt_end] to
 * @phys_start.
 * @v: the device.
 * @domain: the domain.
 * @virt_start: first IOVA, aligned to the granule.
 * @virt_end: last IOVA (inclusive); @virt_end + 1 aligned to the granule.
 * @phys_start: target, aligned to the granule.
 * @flags: VIOMMU_VIRTIO_MAP_F_* (at least one of read and write).
 * @err: optional; says why when the status is not S_OK.
 *
 * Every endpoint attached to @domain hears the new pieces, in attach order.
 * If one refuses, the endpoints that took them are told the reverse and the
 * domain is as before.
 *
 * Return: S_OK; S_NOENT for an unknown domain; S_INVAL for a misaligned or
 * empty range, unknown flags or an overlap with an existing mapping (the
 * specification suggests S_RANGE for misalignment); S_RANGE outside the
 * input range, or when the target range would wrap past 2^64; S_NOMEM
 * beyond the mapping limit or out of memory; S_DEVERR when a consumer
 * refused the map (nothing changed).
 */
VIOMMU_EXPORT enum viommu_virtio_status
viommu_virtio_map(struct viommu_virtio *v, uint32_t domain, uint64_t virt_start,
		  uint64_t virt_end, uint64_t phys_start, unsigned flags,
		  struct viommu_error *err);

/**
 * viommu_virtio_unmap() - an UNMAP request for [@virt_start, @virt_end].
 * @v: the device.
 * @domain: the domain.
 * @virt_start: first IOVA.
 * @virt_end: last IOVA (inclusive).
 * @err: optional; says why when the status is not S_OK.
 *
 * Removes every mapping the range covers entirely; the range may spill over
 * unmapped addresses, and one with nothing in it is S_OK and silent.
 * Every endpoint attached to @domain hears the pieces go.
 *
 * Return: S_OK; S_NOENT for an unknown domain; S_INVAL for a misaligned or
 * empty range; S_RANGE when the range would split a mapping (nothing
 * removed); S_NOMEM when the library ran out of memory (nothing removed).
 */
VIOMMU_EXPORT enum viommu_virtio_status
viommu_virtio_unmap(struct viommu_virtio *v, uint32_t domain,
		    uint64_t virt_start, uint64_t virt_end,
		    struct viommu_error *err);

/**
 * viommu_virtio_status_name() - "ok", "inval", "range", ...
 * @status: a request status.
 *
 * Return: a static string; "unknown" for a value outside the enum.
 */
VIOMMU_EXPORT const char *
viommu_virtio_status_name(enum viommu_virtio_status status);

/**
 * viommu_virtio_mapping_count() - mappings a domain holds.
 * @v: the device.
 * @domain: the domain.
 *
 * May run on any thread, also from inside a callback.
 *
 * Return: the count, 0 for an unknown domain.
 */
VIOMMU_EXPORT uint64_t viommu_virtio_mapping_count(struct viommu_virtio *v,
						   uint32_t domain);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_VIRTIO_H */
