domain 1
iommu virtio
iommu vtd
