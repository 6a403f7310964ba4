0 Aand unmaps must be aligned tÿÿ[ÿÿfiommu virtio page-size=3K
dote offset=•i=2 iova=0x1000 pa=0 size=4K alue=0
reg 0x18 va2=eglMÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿ.
iommu vƒrtague=0
reg write offset=•in=2 iova=0x1pagepa=0 size=0
reg write offset=•in=2 iova=0x1pagepa=0 size=4K alue=0
reg 0x18 value=5
f
mapirtio page-size=64Cke-sizmain 1
device (a domain=1
map  value=0
reg write offset=•i=2 iova=0x1000 pa=0 size=4K alue=0
reg 0x18 va2=eglMÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿ.
iommu vƒrtague=0
reg write offset=•in=2 iova=0x1pagepa=0 size=4K alue=0
reg 0x18 value=5
f
mapirtio page-size=64C aw=3evice=blk flags=map,