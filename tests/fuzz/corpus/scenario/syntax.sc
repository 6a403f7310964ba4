# every kind of mistake in one file: all are reported, nothing runs
iommu vtd caching-mode=maybe
ram size=12Q
domain 1
domain 1
device nic domain=2
device nic domain=1
notifier n1 device=nic flags=map,write
notifier n2 device=ghost flags=map
notifier nic device=nic flags=unmap
map domain=1 iova=0x1001 pa=0 size=4K perm=rw
map domain=1 iova=0 pa=0 size=0 perm=x
unmap domain=1 iova=0x1000 size=4K colour=blue
invalidate domain=1 iova=0x1000 size=0x3000
invalidate-devtlb device=nic iova=0 size=4K
frobnicate now
replay n9
translate device=nic
pte domain=1 iova=0 level=7 value=self
map domain=1 iova=0xfffffffffffff000 pa=0 size=8K perm=r
notifier n3 device=nic flags=map start=0x2000 end=0x1000
