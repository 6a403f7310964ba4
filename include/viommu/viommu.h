/* SPDX-License-Identifier: MIT */
/*
 * libviommu — virtual IOMMU address spaces that tell their consumers exactly
 * what changed.
 *
 * This header is for embedders: code that owns address spaces created by a
 * vIOMMU model and registers consumers (notifiers) on them.  Code that writes
 * a vIOMMU model also includes <viommu/model.h>.
 *
 * Conventions:
 *  - ranges are inclusive: [start, last], so the whole 64-bit space is
 *    [0, UINT64_MAX] and never overflows;
 *  - an entry is a naturally aligned power of two described by @iova and
 *    @addr_mask (size - 1), so a 2^64 entry is iova 0, addr_mask UINT64_MAX;
 *  - functions returning int return 0 or a negative errno; when they take a
 *    struct viommu_error pointer (which may be NULL) they also fill it with a
 *    message for a person.
 */
#ifndef VIOMMU_VIOMMU_H
#define VIOMMU_VIOMMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define VIOMMU_EXPORT
#else
#define VIOMMU_EXPORT __attribute__((visibility("default")))
#endif

#define VIOMMU_VERSION_MAJOR 0
#define VIOMMU_VERSION_MINOR 1
#define VIOMMU_VERSION_PATCH 0
#define VIOMMU_VERSION_STRING "0.1.0"

/* Access permissions of a translation, and the access a DMA asks for. */
#define VIOMMU_PERM_NONE 0u
#define VIOMMU_PERM_READ 1u
#define VIOMMU_PERM_WRITE 2u
#define VIOMMU_PERM_RW (VIOMMU_PERM_READ | VIOMMU_PERM_WRITE)

/* What a notifier wants to hear.  These double as event types. */
#define VIOMMU_NOTIFY_MAP (1u << 0)
#define VIOMMU_NOTIFY_UNMAP (1u << 1)
#define VIOMMU_NOTIFY_DEVIOTLB_UNMAP (1u << 2)
#define VIOMMU_NOTIFY_ALL                                                      \
	(VIOMMU_NOTIFY_MAP | VIOMMU_NOTIFY_UNMAP | VIOMMU_NOTIFY_DEVIOTLB_UNMAP)

/**
 * struct viommu_entry - one translation: a naturally aligned power of two.
 * @iova: first IO virtual address; a multiple of @addr_mask + 1.
 * @addr_mask: size - 1; size is a power of two (UINT64_MAX means 2^64).
 * @translated_addr: guest-physical address that @iova translates to.
 * @perm: VIOMMU_PERM_* bits; VIOMMU_PERM_NONE means "nothing mapped here".
 */
struct viommu_entry {
	uint64_t iova;
	uint64_t addr_mask;
	uint64_t translated_addr;
	unsigned perm;
};

/**
 * struct viommu_event - what a notifier's callback receives.
 * @type: one of VIOMMU_NOTIFY_MAP, VIOMMU_NOTIFY_UNMAP,
 *        VIOMMU_NOTIFY_DEVIOTLB_UNMAP.
 * @entry: the range, clipped to the notifier's range and naturally aligned.
 *         For unmaps @entry.perm is VIOMMU_PERM_NONE; @entry.translated_addr
 *         is what the range translated to before (0 when unknown, as for
 *         over-sized and device-IOTLB unmaps).
 */
struct viommu_event {
	unsigned type;
	struct viommu_entry entry;
};

/**
 * enum viommu_fault - why a translation did not succeed.
 *
 * A fault is a result, not an error of the library: the guest controls its
 * tables and may well make a device fault.
 */
enum viommu_fault {
	VIOMMU_FAULT_NONE = 0,
	VIOMMU_FAULT_NOT_PRESENT,  /* nothing mapped at this address */
	VIOMMU_FAULT_PERMISSION,   /* mapped, but not for this access */
	VIOMMU_FAULT_RESERVED,	   /* a reserved bit set in a guest entry */
	VIOMMU_FAULT_OUT_OF_RANGE, /* beyond the address width */
	VIOMMU_FAULT_BAD_TABLE,	   /* a table outside RAM, a loop, ... */
};

/**
 * struct viommu_translation - the answer to a DMA translation request.
 * @entry: the leaf that covers the address (valid when @fault is NONE or
 *         PERMISSION); for NOT_PRESENT, @entry may describe the aligned hole
 *         around the address (perm NONE) so walkers can step over it.
 * @fault: VIOMMU_FAULT_NONE on success.
 */
struct viommu_translation {
	struct viommu_entry entry;
	enum viommu_fault fault;
};

#define VIOMMU_ERROR_MESSAGE_MAX 256

/**
 * struct viommu_error - a detailed error for a person.
 * @code: the negative errno also returned by the function.
 * @message: what went wrong and where, NUL-terminated.
 */
struct viommu_error {
	int code;
	char message[VIOMMU_ERROR_MESSAGE_MAX];
};

struct viommu_as;
struct viommu_notifier;

/**
 * typedef viommu_notify_fn - a notifier's callback.
 * @notifier: the notifier being told.
 * @event: the event; valid only during the call (copy what you keep).
 * @opaque: the pointer given at registration.
 *
 * Runs on the thread that made the change, with the address space's change
 * lock held.  It may unregister any notifier (itself included) and register
 * new ones; changing or replaying the address space it is called for returns
 * -EBUSY, and it must never free that address space.
 *
 * Return: 0, or a negative errno to refuse a MAP (for example -ENOSPC when a
 * host backend is full).  A refused map makes the whole change fail: the
 * address space goes back to what it held, every MAP|UNMAP notifier that
 * already heard part of the change is told the reverse, and the model gets
 * the error.  MAP-only and UNMAP-only notifiers are not told the reverse
 * (they never hear the other kind of event).  Return values of unmaps are
 * ignored: a revoked translation must go, whatever the consumer thinks.
 */
typedef int (*viommu_notify_fn)(struct viommu_notifier *notifier,
				const struct viommu_event *event, void *opaque);

/**
 * typedef viommu_batch_fn - brackets the events one change brings a notifier.
 * @notifier: the notifier.
 * @opaque: the pointer given at registration.
 *
 * begin runs before the first event of a change that concerns the notifier,
 * end after the last one (rollback included), so a consumer can group its
 * host calls.  Both are optional.
 */
typedef void (*viommu_batch_fn)(struct viommu_notifier *notifier, void *opaque);

/**
 * struct viommu_notifier_config - what a consumer asks for.
 * @flags: VIOMMU_NOTIFY_* bits; at least one.
 * @start: first IOVA of interest.
 * @last: last IOVA of interest (inclusive).  Use viommu_notifier_config_init()
 *        for the whole space.
 * @notify: the callback; mandatory.
 * @batch_begin: optional, see viommu_batch_fn.
 * @batch_end: optional, see viommu_batch_fn.
 * @opaque: handed back to the callbacks.
 */
struct viommu_notifier_config {
	unsigned flags;
	uint64_t start;
	uint64_t last;
	viommu_notify_fn notify;
	viommu_batch_fn batch_begin;
	viommu_batch_fn batch_end;
	void *opaque;
};

/**
 * viommu_notifier_config_init() - a config for the whole address space.
 * @cfg: filled in.
 * @flags: VIOMMU_NOTIFY_* bits.
 * @notify: callback.
 * @opaque: handed back to @notify.
 */
VIOMMU_EXPORT void
viommu_notifier_config_init(struct viommu_notifier_config *cfg, unsigned flags,
			    viommu_notify_fn notify, void *opaque);

/**
 * viommu_notifier_register() - start telling a consumer about changes.
 * @as: the address space.
 * @cfg: flags, range and callbacks; copied.
 * @out: receives the notifier handle, owned by the library until
 *       viommu_notifier_unregister().
 * @err: optional detailed error.
 *
 * The union of the flags of all notifiers on @as is recomputed; when it
 * changes the model is told, and it may refuse (a VT-d model without caching
 * mode cannot report maps): the registration is then undone and the model's
 * message returned.  A new notifier holds nothing: call
 * viommu_notifier_replay() to hear the translations already in effect.
 * Registered from inside a callback, it hears changes that start after that
 * callback's change completes.
 *
 * Return: 0; -EINVAL for empty or unknown flags, start > last or no callback;
 * -ENOMEM; or the model's refusal (typically -ENOTSUP).
 */
VIOMMU_EXPORT int viommu_notifier_register(
	struct viommu_as *as, const struct viommu_notifier_config *cfg,
	struct viommu_notifier **out, struct viommu_error *err);

/**
 * viommu_notifier_unregister() - stop telling a consumer; never fails.
 * @notifier: the handle; invalid once this returns (NULL is ignored).
 *
 * Once this returns, the notifier's callbacks are never called again, also
 * when it was unregistered from inside one of its own callbacks.  The model
 * is told when the union of flags shrinks.
 */
VIOMMU_EXPORT void viommu_notifier_unregister(struct viommu_notifier *notifier);

/**
 * viommu_notifier_replay() - tell a notifier about what is already mapped.
 * @notifier: the notifier.
 * @err: optional detailed error.
 *
 * Delivers a MAP event for every translation in effect within the
 * notifier's range, in IOVA order, clipped and split like any event.  Costs
 * time in proportion to what is mapped in that range, never to the size of
 * the address space.  A notifier without VIOMMU_NOTIFY_MAP hears nothing
 * (it never hears maps).  Replay right after registering: a change that
 * comes in between reaches the notifier and would be replayed again.
 *
 * Return: 0; -EBUSY from inside a callback of the same address space; or the
 * first error a callback returned (replay then stops; what was delivered stays
 * delivered).
 */
VIOMMU_EXPORT int viommu_notifier_replay(struct viommu_notifier *notifier,
					 struct viommu_error *err);

/**
 * viommu_notifier_flags() - the flags a notifier was registered with.
 * @notifier: the notifier.
 */
VIOMMU_EXPORT unsigned
viommu_notifier_flags(const struct viommu_notifier *notifier);

/**
 * viommu_notifier_as() - the address space a notifier is registered on.
 * @notifier: the notifier.
 */
VIOMMU_EXPORT struct viommu_as *
viommu_notifier_as(const struct viommu_notifier *notifier);

/**
 * viommu_as_translate() - translate one IOVA as a DMA would.
 * @as: the address space.
 * @iova: the address.
 * @access: VIOMMU_PERM_READ, VIOMMU_PERM_WRITE or both.
 * @out: the leaf entry and fault; a missing permission is reported as
 *       VIOMMU_FAULT_PERMISSION with the entry filled in.
 *
 * Asks the model (which may keep its own IOTLB).  May run on any thread,
 * concurrently with changes.
 *
 * Return: 0 (a fault is a result in @out), or a negative errno when the
 * request itself is wrong (-EINVAL for an empty @access).
 */
VIOMMU_EXPORT int viommu_as_translate(struct viommu_as *as, uint64_t iova,
				      unsigned access,
				      struct viommu_translation *out);

/**
 * viommu_as_lookup() - the translation in effect at @iova, as notified.
 * @as: the address space.
 * @iova: the address.
 * @out: the entry that covers @iova.
 *
 * Reads what the library holds (what the notifiers were told), not the
 * model.  May run on any thread, concurrently with changes.
 *
 * Return: true when a mapping covers @iova.
 */
VIOMMU_EXPORT bool viommu_as_lookup(struct viommu_as *as, uint64_t iova,
				    struct viommu_entry *out);

/**
 * viommu_as_notify_flags() - the union of the flags of @as's notifiers.
 * @as: the address space.
 */
VIOMMU_EXPORT unsigned viommu_as_notify_flags(const struct viommu_as *as);

/**
 * viommu_as_name() - the name the model gave the address space.
 * @as: the address space.
 */
VIOMMU_EXPORT const char *viommu_as_name(const struct viommu_as *as);

/**
 * viommu_as_mapping_count() - how many entries are in effect.
 * @as: the address space.
 */
VIOMMU_EXPORT size_t viommu_as_mapping_count(struct viommu_as *as);

/**
 * viommu_as_memory_bytes() - bytes the library holds for @as's entries.
 * @as: the address space.
 */
VIOMMU_EXPORT size_t viommu_as_memory_bytes(struct viommu_as *as);

/**
 * typedef viommu_walk_fn - receives entries during a walk.
 * @ctx: the caller's pointer.
 * @entry: one entry, valid during the call.
 *
 * Return: 0 to go on, non-zero to stop the walk with that value.
 */
typedef int (*viommu_walk_fn)(void *ctx, const struct viommu_entry *entry);

/**
 * viommu_as_for_each_mapping() - visit the entries in effect in a range.
 * @as: the address space.
 * @start: first IOVA.
 * @last: last IOVA (inclusive).
 * @fn: called for each entry overlapping [@start, @last], in IOVA order,
 *      unclipped.
 * @ctx: handed to @fn.
 *
 * Takes the address space's change lock, so it waits for a change in
 * progress; from @fn, changing or replaying @as returns -EBUSY.
 *
 * Return: 0, or the first non-zero value @fn returned.
 */
VIOMMU_EXPORT int viommu_as_for_each_mapping(struct viommu_as *as,
					     uint64_t start, uint64_t last,
					     viommu_walk_fn fn, void *ctx);

/**
 * viommu_strerror() - a short name for a negative errno.
 * @code: a negative errno returned by libviommu.
 *
 * Return: a static string, for example "invalid argument".
 */
VIOMMU_EXPORT const char *viommu_strerror(int code);

/**
 * viommu_version() - the library's version string, "MAJOR.MINOR.PATCH".
 */
VIOMMU_EXPORT const char *viommu_version(void);

/**
 * viommu_split_range() - cut [start, last] into naturally aligned powers of
 * two, in order.
 * @start: first address.
 * @last: last address (inclusive).
 * @fn: called with each piece (translated_addr 0, perm NONE).
 * @ctx: handed to @fn.
 *
 * Return: 0, or the first non-zero value @fn returned.
 */
VIOMMU_EXPORT int viommu_split_range(uint64_t start, uint64_t last,
				     viommu_walk_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_VIOMMU_H */
