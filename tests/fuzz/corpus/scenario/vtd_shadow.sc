# A VFIO-like shadow and a vhost-like device IOTLB on one VT-d device with
# caching mode: nothing is heard before the guest invalidates; a retarget is
# an unmap of the old mapping, then a map of the new one.
iommu vtd caching-mode=on
domain 1
device nic domain=1
notifier vfio device=nic flags=map,unmap
notifier vhost device=nic flags=unmap
map domain=1 iova=0x10000 pa=0x80000 size=8K perm=rw
translate device=nic iova=0x11008 access=w
invalidate domain=1 iova=0x10000 size=8K
# the same invalidation again: nothing changed, nothing heard
invalidate domain=1
map domain=1 iova=0x11000 pa=0x90000 size=4K perm=r
invalidate domain=1 iova=0x11000 size=4K
translate device=nic iova=0x11008 access=w
unmap domain=1 iova=0x10000 size=8K
invalidate global
unregister vhost
unregister vfio
