# Without caching mode a guest maps without invalidating, so the unit cannot
# report maps: a map notifier is refused.  A device IOTLB (unmap only) still
# hears every invalidated range whole, also for mappings it was never told
# of, because the device may have cached them through translate.
iommu vtd caching-mode=off
domain 1
device nic domain=1
notifier shadow device=nic flags=map,unmap
notifier iotlb device=nic flags=unmap
map domain=1 iova=0x4000 pa=0x9000 size=4K perm=rw
translate device=nic iova=0x4abc
unmap domain=1 iova=0x4000 size=4K
invalidate domain=1 iova=0x4000 size=4K
translate device=nic iova=0x4abc
