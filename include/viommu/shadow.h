/* SPDX-License-Identifier: MIT */
/*
 * libviommu — a host shadow: keep a host IOMMU equal to a guest's mappings.
 *
 * This is what VFIO does with a vIOMMU: every mapping the guest makes for an
 * assigned device must exist in the host IOMMU (pinned, translated to host
 * memory), and every mapping the guest revokes must go from it.  The shadow
 * registers a MAP|UNMAP notifier on an address space and turns its events
 * into map and unmap calls of a host backend, given as an ops table:
 *
 *  - the software type1 backend (viommu_type1_soft_new()) enforces the
 *    rules of the kernel's VFIO type1 v2 IOMMU driver exactly and can check
 *    itself against the guest's view: tests and benchmarks use it;
 *  - the VFIO backend (viommu_type1_vfio_open(), Linux only) issues
 *    VFIO_IOMMU_MAP_DMA / VFIO_IOMMU_UNMAP_DMA on a real container.
 *
 * Host mappings are ranges of any page-aligned size (type1 takes any), so
 * the shadow may coalesce: adjacent guest mappings contiguous in IOVA and
 * target with equal permissions become one host mapping, which keeps a
 * guest that maps page by page far under the host's mapping limit (type1's
 * dma_entry_limit, 65535 by default).  See struct viommu_shadow_config.
 */
#ifndef VIOMMU_SHADOW_H
#define VIOMMU_SHADOW_H

#include <viommu/viommu.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bump only by appending members to struct viommu_host_ops. */
#define VIOMMU_HOST_OPS_VERSION 1

/**
 * struct viommu_host_ops - a host IOMMU, as the shadow drives it.
 * @version: VIOMMU_HOST_OPS_VERSION the backend was written against.
 * @name: short name for messages ("type1-soft", "vfio"); optional.
 * @map: mandatory.  Map [@iova, @iova + @size) to guest-physical @gpa with
 *     @perm (VIOMMU_PERM_READ and/or WRITE).  @size is a true size, never 0
 *     (the shadow never asks for more than 2^63 bytes at once).  Return 0,
 *     or a negative errno and leave the host as it was: -EEXIST when it
 *     overlaps a host mapping, -ENOSPC when the host holds all the mappings
 *     it can, -EINVAL for a range it does not accept.
 * @unmap: mandatory.  Remove every host mapping inside [@iova, @iova +
 *     @size); the range never cuts one (type1 v2 refuses that) and may
 *     cover several, or none.  Return 0 or a negative errno.
 *
 * Both are called with the shadow's lock held, from the thread that
 * changes the address space (inside its notifier) or from
 * viommu_shadow_new() / viommu_shadow_free().
 */
struct viommu_host_ops {
	unsigned version;
	const char *name;
	int (*map)(void *opaque, uint64_t iova, uint64_t size, uint64_t gpa,
		   unsigned perm);
	int (*unmap)(void *opaque, uint64_t iova, uint64_t size);
};

/**
 * struct viommu_host_backend - an ops table and its pointer.
 * @ops: the table; must outlive every shadow using it.
 * @opaque: handed to each op.
 */
struct viommu_host_backend {
	const struct viommu_host_ops *ops;
	void *opaque;
};

/**
 * struct viommu_shadow_config - how the shadow maps.
 * @coalesce: merge adjacent host mappings contiguous in IOVA and target
 *     with equal permissions.  Without it every guest mapping (each
 *     naturally aligned piece an event carries) is one host mapping, as
 *     QEMU's VFIO does.  With it, the mappings one change brings (one
 *     virtio MAP request, one VT-d invalidation, a replay) are first mapped
 *     one by one, so that a refusal reaches the guest, and merged when the
 *     change ends: one unmap over them, one map of the whole run.  When the
 *     host is full (-ENOSPC), merging happens at once to make room.
 *     Unmapping part of a merged run removes the whole run from the host at
 *     once and maps the rest again when the change ends (type1 cannot
 *     unmap part of a mapping; a change that unmaps a merged run piece by
 *     piece costs one host unmap).  At the limit, beware: merged runs let
 *     the guest hold more mappings than the host has entries, and an unmap
 *     that cuts a run needs one more host mapping but cannot be refused.
 *     When there is no room the rest stays off the host (@host_errors,
 *     @unsynced, retried as changes end): the host then lacks part of the
 *     guest's mappings, never the reverse.  A new map is refused while
 *     rests of its own change do not fit, and the maps that undo a refused
 *     change are never refused (they wait for the end of the change, when
 *     what was there before fits again).
 * @coalesce_live: with @coalesce, also merge with host mappings of earlier
 *     changes.  Fewer host mappings (a ring of buffers mapped one by one
 *     becomes one), but merging re-maps the earlier run, which is briefly
 *     absent from the host: a device doing DMA there at that moment faults,
 *     and VFIO unpins and re-pins the whole run.  Off by default: the
 *     mappings of a change are new, so nothing can be using them yet.
 * @max_run: with @coalesce, the largest host mapping merging makes, in
 *     bytes; 0 for no bound.  Bounds what a partial unmap re-maps (and
 *     VFIO re-pins).
 */
struct viommu_shadow_config {
	bool coalesce;
	bool coalesce_live;
	uint64_t max_run;
};

/**
 * struct viommu_shadow_counters - what the shadow did.
 * @host_entries: host mappings the shadow holds now.
 * @host_peak: the most it ever held.
 * @host_maps: map calls made to the backend (failed ones included).
 * @host_unmaps: unmap calls made to the backend.
 * @guest_maps: MAP events heard (replayed ones included).
 * @guest_unmaps: UNMAP events heard.
 * @merges: host mappings merged away (a run of k became 1: k - 1).
 * @remaps: host maps made to restore the rest of a cut run.
 * @batches: changes (and replays) that brought the shadow events.
 * @refusals: guest maps refused, with the backend's error, to the core.
 * @host_errors: backend failures that left the host behind the guest
 *     (see viommu_shadow_last_error()).
 * @unsynced: guest mappings (as runs) missing from the host now, because
 *     the backend refused to restore them; retried when a change ends.
 */
struct viommu_shadow_counters {
	uint64_t host_entries, host_peak;
	uint64_t host_maps, host_unmaps;
	uint64_t guest_maps, guest_unmaps;
	uint64_t merges, remaps;
	uint64_t batches;
	uint64_t refusals;
	uint64_t host_errors;
	uint64_t unsynced;
};

struct viommu_as;
struct viommu_shadow;

/**
 * viommu_shadow_config_init() - defaults: no coalescing, no bound.
 * @cfg: filled in.
 */
VIOMMU_EXPORT void viommu_shadow_config_init(struct viommu_shadow_config *cfg);

/**
 * viommu_shadow_new() - shadow an address space into a host backend.
 * @as: the address space; must outlive the shadow.
 * @backend: the host backend (copied); its ops are checked: version
 *     1..VIOMMU_HOST_OPS_VERSION, @map and @unmap present.
 * @cfg: options (copied); NULL for the defaults.
 * @out: receives the shadow.
 * @err: optional detailed error.
 *
 * Registers a MAP|UNMAP notifier on the whole of @as (with batch_begin and
 * batch_end) and replays what is in effect, so the host holds the guest's
 * mappings when this returns.  Call it when no change of @as is in
 * progress on another thread (see viommu_notifier_replay()).  A map the
 * backend refuses later is returned from the notifier, so the core undoes
 * the whole change and the model reports it to the guest.
 *
 * Return: 0; -EINVAL for a bad ops table or option; -ENOMEM; the model's
 * refusal of MAP notifiers (-ENOTSUP, e.g. VT-d without caching mode); or
 * the backend's refusal of a replayed map (nothing is left on the host).
 */
VIOMMU_EXPORT int viommu_shadow_new(struct viommu_as *as,
				    const struct viommu_host_backend *backend,
				    const struct viommu_shadow_config *cfg,
				    struct viommu_shadow **out,
				    struct viommu_error *err);

/**
 * viommu_shadow_free() - stop shadowing and remove the shadow's host
 * mappings.
 * @shadow: the shadow (NULL is ignored).  Not from inside a callback of
 *     its address space.
 *
 * Unregisters the notifier, then unmaps every host mapping the shadow
 * made, so the backend may serve another shadow.
 */
VIOMMU_EXPORT void viommu_shadow_free(struct viommu_shadow *shadow);

/**
 * viommu_shadow_counters() - a copy of the shadow's counters.
 * @shadow: the shadow.
 * @out: filled in.
 *
 * May run on any thread.
 */
VIOMMU_EXPORT void viommu_shadow_counters(struct viommu_shadow *shadow,
					  struct viommu_shadow_counters *out);

/**
 * viommu_shadow_last_error() - the last backend failure, for a person.
 * @shadow: the shadow.
 * @out: filled with the error (code 0 and an empty message when none).
 *
 * Refused maps (which the guest hears of) and failures that left the host
 * behind (counted in @host_errors) are both recorded.
 */
VIOMMU_EXPORT void viommu_shadow_last_error(struct viommu_shadow *shadow,
					    struct viommu_error *out);

/* The software type1 backend. */

#define VIOMMU_TYPE1_DEFAULT_DMA_ENTRY_LIMIT 65535u

/**
 * struct viommu_type1_soft_config - the rules the software backend plays.
 * @dma_entry_limit: mappings it holds at most, as the vfio_iommu_type1
 *     module parameter; 0 for VIOMMU_TYPE1_DEFAULT_DMA_ENTRY_LIMIT.
 * @page_size: the host IOMMU's smallest page (a power of two); IOVA, size
 *     and target must be multiples of it; 0 for 4096.
 */
struct viommu_type1_soft_config {
	uint64_t dma_entry_limit;
	uint64_t page_size;
};

/**
 * struct viommu_type1_soft_counters - what the backend saw.
 * @entries: mappings held now.
 * @peak: the most it ever held.
 * @maps: map calls (refused ones included).
 * @unmaps: unmap calls (refused ones included).
 * @refusals: calls answered with an error.
 */
struct viommu_type1_soft_counters {
	uint64_t entries, peak;
	uint64_t maps, unmaps;
	uint64_t refusals;
};

struct viommu_type1_soft;

/**
 * viommu_type1_soft_new() - a host IOMMU in memory, with type1 v2 rules.
 * @cfg: the rules (copied); NULL for the defaults.
 * @out: receives the backend.
 * @err: optional detailed error.
 *
 * Its map refuses a range that overlaps a mapping (-EEXIST), goes beyond
 * the entry limit (-ENOSPC), is empty, wraps past 2^64, is misaligned or
 * has no permission (-EINVAL).  Its unmap removes the mappings inside the
 * range and refuses (-EINVAL, nothing removed) a range that starts or ends
 * inside a mapping, as type1 v2 does; a range with nothing in it is fine.
 * Mappings live in a balanced tree: each call is O(log n) plus the
 * mappings it removes.  Thread-safe (a mutex).
 *
 * Return: 0, -EINVAL for a page size that is not a power of two, -ENOMEM.
 */
VIOMMU_EXPORT int
viommu_type1_soft_new(const struct viommu_type1_soft_config *cfg,
		      struct viommu_type1_soft **out, struct viommu_error *err);

/**
 * viommu_type1_soft_free() - release the backend and its mappings.
 * @soft: the backend (NULL is ignored); no shadow may still use it.
 */
VIOMMU_EXPORT void viommu_type1_soft_free(struct viommu_type1_soft *soft);

/**
 * viommu_type1_soft_backend() - the backend as a shadow takes it.
 * @soft: the backend; must outlive the shadows using the result.
 */
VIOMMU_EXPORT struct viommu_host_backend
viommu_type1_soft_backend(struct viommu_type1_soft *soft);

/**
 * viommu_type1_soft_counters() - a copy of the backend's counters.
 * @soft: the backend.
 * @out: filled in.
 */
VIOMMU_EXPORT void
viommu_type1_soft_counters(struct viommu_type1_soft *soft,
			   struct viommu_type1_soft_counters *out);

/**
 * viommu_type1_soft_check() - is the host equal to the guest's mappings?
 * @soft: the backend.
 * @as: the address space it shadows.
 * @err: optional; names the first difference.
 *
 * Compares, as ranges, the backend's mappings with the translations in
 * effect in @as (viommu_as_for_each_mapping()): every address must be
 * mapped by both or by neither, to the same target with the same
 * permissions; how either side cuts its ranges does not matter.  Reads @as
 * and then the backend: call it when no change of @as is in progress.
 * O((n + m) log m) for n guest entries and m host mappings.
 *
 * Return: 0 when equal, -EINVAL at the first difference.
 */
VIOMMU_EXPORT int viommu_type1_soft_check(struct viommu_type1_soft *soft,
					  struct viommu_as *as,
					  struct viommu_error *err);

/* The VFIO type1 backend (Linux; elsewhere viommu_type1_vfio_open() fails). */

/**
 * typedef viommu_gpa_to_hva_fn - where guest memory is in the VMM.
 * @opaque: the pointer given to viommu_type1_vfio_open().
 * @gpa: a guest-physical address.
 * @len: in: the bytes wanted from @gpa; out: how many of them are
 *     contiguous in the VMM's address space from *@hva (at least 1).
 * @hva: receives the VMM's virtual address of @gpa.
 *
 * Return: 0, or a negative errno when @gpa is not guest RAM (-EFAULT).
 */
typedef int (*viommu_gpa_to_hva_fn)(void *opaque, uint64_t gpa, uint64_t *len,
				    void **hva);

struct viommu_type1_vfio;

/**
 * viommu_type1_vfio_open() - a VFIO container with a type1 v2 IOMMU.
 * @container_path: the container device; NULL for "/dev/vfio/vfio".
 * @group_path: the IOMMU group of the assigned device, "/dev/vfio/N";
 *     its devices must all be bound to vfio-pci (the group viable).
 * @gpa_to_hva: mandatory; translates targets for VFIO_IOMMU_MAP_DMA.  A
 *     range that is not contiguous in the VMM becomes several host
 *     mappings, which one unmap removes together.
 * @opaque: handed to @gpa_to_hva.
 * @out: receives the backend.
 * @err: optional; says which step failed and why.
 *
 * Opens the container, checks the API version and the type1 v2 extension,
 * opens the group, checks it is viable, adds it to the container and sets
 * the IOMMU type.  Get the device from viommu_type1_vfio_group_fd().
 *
 * Return: 0; -EINVAL for a missing argument; the open's negative errno
 * (-ENOENT when /dev/vfio is absent: no vfio module, or not Linux); -ENODEV
 * when the container path is not a VFIO container; -ENOTSUP without type1
 * v2 (and on systems other than Linux); -EBUSY for a group that is not
 * viable; or the failing ioctl's negative errno.
 */
VIOMMU_EXPORT int viommu_type1_vfio_open(const char *container_path,
					 const char *group_path,
					 viommu_gpa_to_hva_fn gpa_to_hva,
					 void *opaque,
					 struct viommu_type1_vfio **out,
					 struct viommu_error *err);

/**
 * viommu_type1_vfio_close() - close the group and the container (the
 * kernel drops the container's mappings).
 * @vfio: the backend (NULL is ignored); no shadow may still use it.
 */
VIOMMU_EXPORT void viommu_type1_vfio_close(struct viommu_type1_vfio *vfio);

/**
 * viommu_type1_vfio_backend() - the backend as a shadow takes it.
 * @vfio: the backend; must outlive the shadows using the result.
 */
VIOMMU_EXPORT struct viommu_host_backend
viommu_type1_vfio_backend(struct viommu_type1_vfio *vfio);

/**
 * viommu_type1_vfio_group_fd() - the group's file descriptor, owned by
 * @vfio (for VFIO_GROUP_GET_DEVICE_FD).
 * @vfio: the backend.
 */
VIOMMU_EXPORT int
viommu_type1_vfio_group_fd(const struct viommu_type1_vfio *vfio);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_SHADOW_H */
