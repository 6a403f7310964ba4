iommu virtio page-size=3K
domain 1
device a domain=1
map domain=1 iova=0x1000 pa=0 size=4K perm=rw page=2M
invalidate domain=1
pte domain=1 iova=0 level=1 value=0
reg write offset=0x18 value=0
