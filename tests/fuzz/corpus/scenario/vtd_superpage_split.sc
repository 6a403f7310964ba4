# A 2M superpage becomes 4K pages when the guest remaps one page inside it.
# The shadow hears the whole 2M mapping go (never a part of it), then the
# pages come back; the notifier watches only the first 16K, so everything it
# hears is clipped to that range.
iommu vtd
domain 7
device gpu domain=7
notifier vfio device=gpu flags=map,unmap start=0x200000 end=0x203fff
map domain=7 iova=0x200000 pa=0x40000000 size=2M perm=rw page=2M
invalidate domain=7 iova=0x200000 size=2M
translate device=gpu iova=0x3ff000
map domain=7 iova=0x202000 pa=0x7000000 size=4K perm=rw
invalidate domain=7 iova=0x202000 size=4K
translate device=gpu iova=0x3ff000
translate device=gpu iova=0x202010 access=rw
# and back to one superpage
map domain=7 iova=0x200000 pa=0x40000000 size=2M perm=rw page=2M
invalidate domain=7 iova=0x200000 size=2M
