# virtio-iommu: the guest sends MAP and UNMAP requests, each notified at
# once.  Any granule-aligned mapping is delivered as naturally aligned
# powers of two.  Requests the device refuses (overlaps, splits) are guest
# errors: the guest sees the status, nothing changes.
#
#   viommu run --verify examples/virtio-iommu.sc
iommu virtio page-size=4K aw=48
domain 1
device eth0 domain=1
notifier vfio device=eth0 flags=map,unmap
notifier vhost device=eth0 flags=unmap
map domain=1 iova=0x3000 pa=0x7000 size=20K perm=rw
map domain=1 iova=0x4000 pa=0x0 size=4K perm=r
unmap domain=1 iova=0x4000 size=4K
translate device=eth0 iova=0x5abc access=w
unmap domain=1 iova=0x0 size=1M
