# A device assigned to the guest (VFIO) behind an emulated VT-d unit.
#
# The VMM registers a map+unmap notifier on the device's address space and
# mirrors every event into the host IOMMU.  With caching mode on, the guest
# invalidates after every change, maps included, so the shadow follows
# exactly: nothing before the invalidation, each change once after it.
#
#   viommu run --verify examples/vfio-under-vtd.sc
iommu vtd caching-mode=on aw=48
ram size=4G
domain 1
device nic domain=1
notifier vfio device=nic flags=map,unmap
# The guest maps a receive ring: 4 buffers of 4K, then tells the IOMMU.
map domain=1 iova=0xfff00000 pa=0x10000000 size=16K perm=w
invalidate domain=1 iova=0xfff00000 size=16K
# A transmit buffer, read-only for the device.
map domain=1 iova=0xfff10000 pa=0x20000000 size=4K perm=r
invalidate domain=1 iova=0xfff10000 size=4K
# The device reads and writes through the IOMMU.
translate device=nic iova=0xfff01010 access=w
translate device=nic iova=0xfff10000 access=w
# Strict mode: each unmap is invalidated at once.
unmap domain=1 iova=0xfff00000 size=4K
invalidate domain=1 iova=0xfff00000 size=4K
