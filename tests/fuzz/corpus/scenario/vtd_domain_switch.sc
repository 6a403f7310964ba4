# Moving a device to another domain: its context entry is rewritten and
# invalidated; the notifiers hear the old domain's mappings go and the new
# one's come.  A mapping the two domains share is left alone.
iommu vtd
domain 1
domain 2
map domain=1 iova=0x1000 pa=0x10000 size=4K perm=rw
map domain=1 iova=0x2000 pa=0x20000 size=4K perm=rw
map domain=2 iova=0x2000 pa=0x20000 size=4K perm=rw
map domain=2 iova=0x3000 pa=0x30000 size=4K perm=r
device ssd domain=1
notifier vfio device=ssd flags=map,unmap
replay vfio
attach ssd domain=2
detach ssd
translate device=ssd iova=0x2000
attach ssd domain=1
