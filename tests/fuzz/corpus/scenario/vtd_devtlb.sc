# A device with its own IOTLB (ATS): device-IOTLB invalidations reach the
# notifiers that asked for them, for that device only, whatever the
# mappings; IOTLB invalidations reach the unmap notifiers as usual.
iommu vtd device-iotlb=on
domain 3
device nvme domain=3
device nic domain=3
notifier ats device=nvme flags=deviotlb-unmap
notifier other device=nic flags=deviotlb-unmap,unmap
invalidate-devtlb device=nvme iova=0x10000 size=64K
invalidate-devtlb device=nic iova=0x0 size=4K
map domain=3 iova=0x8000 pa=0x1000 size=4K perm=w
invalidate domain=3
unmap domain=3 iova=0x8000 size=4K
invalidate domain=3 iova=0x8000 size=4K
