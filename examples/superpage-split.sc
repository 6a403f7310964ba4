# A 2M superpage split by the guest.  The guest remaps one 4K page inside a
# 2M leaf: its driver replaces the leaf by a table of 512 4K leaves, 511 of
# them keeping the old target.  The host shadow must never unmap part of a
# mapping it holds (VFIO type1 refuses that), so it hears the whole 2M go,
# then the 4K pages come.  This notifier watches 64K of it to keep the
# output short; everything it hears is clipped to that range.
#
#   viommu run --verify examples/superpage-split.sc
iommu vtd
domain 1
device gpu domain=1
notifier vfio device=gpu flags=map,unmap start=0x40000000 end=0x4000ffff
map domain=1 iova=0x40000000 pa=0x80000000 size=2M perm=rw page=2M
invalidate domain=1 iova=0x40000000 size=2M
map domain=1 iova=0x40004000 pa=0x90000000 size=4K perm=rw
invalidate domain=1 iova=0x40004000 size=4K
