# A paravirtual device whose backend (vhost) caches translations on demand.
#
# It only needs to hear invalidations: an unmap notifier.  It must never
# keep a translation the guest revoked.  Without caching mode the guest does
# not invalidate after mapping, so the unit cannot tell exactly what the
# device cached: unmap notifiers hear each invalidated range whole.
#
#   viommu run --verify examples/vhost-device-iotlb.sc
iommu vtd caching-mode=off
domain 2
device virtio-net domain=2
notifier vhost device=virtio-net flags=unmap
# a map notifier cannot be served without caching mode: refused
notifier wants-maps device=virtio-net flags=map
map domain=2 iova=0x100000 pa=0x3000000 size=64K perm=rw
translate device=virtio-net iova=0x104000
unmap domain=2 iova=0x100000 size=64K
invalidate domain=2 iova=0x100000 size=64K
translate device=virtio-net iova=0x104000
