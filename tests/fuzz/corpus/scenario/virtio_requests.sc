# virtio-iommu: every request is notified at once.  A mapping of any
# granule-aligned size is cut into naturally aligned powers of two (and
# clipped to the notifier's range); requests the device refuses are guest
# errors and change nothing.
iommu virtio
domain 1
device nic domain=1
notifier vfio device=nic flags=map,unmap start=0x1800 end=0x5fff
notifier ats device=nic flags=deviotlb-unmap
map domain=1 iova=0x1000 pa=0x9000 size=0x3000 perm=rw
map domain=1 iova=0x2000 pa=0x9000 size=0x1000 perm=rw
unmap domain=1 iova=0x2000 size=0x1000
translate device=nic iova=0x2468 access=w
unmap domain=1 iova=0x0 size=0x10000
detach nic
map domain=1 iova=0x4000 pa=0x4000 size=4K perm=r
attach nic domain=1
