# A 64K granule: maps and unmaps must be aligned to it.
iommu virtio page-size=64K aw=32
domain 5
device blk domain=5
notifier shadow device=blk flags=map,unmap
map domain=5 iova=0x10000 pa=0x100000 size=128K perm=w
map domain=5 iova=0xfff00000 pa=0 size=2M perm=r
