# A hostile guest: a table that points at itself, 512 times, at every level
# below the root.  Walking it would visit 512^3 entries; the unit stops at its
# work bound, faults the device and takes every translation away from its
# notifiers, so nothing the device can no longer use stays mapped.  Once the
# guest puts sane tables back, the device recovers.
iommu vtd aw=48
domain 1
device evil domain=1
notifier vfio device=evil flags=map,unmap
map domain=1 iova=0x1000 pa=0x2000 size=4K perm=rw
invalidate domain=1
pte domain=1 iova=0x8000000000 level=3 value=self count=512
pte domain=1 iova=0x8000000000 level=2 value=self count=512
invalidate domain=1
translate device=evil iova=0x1000
pte domain=1 iova=0x8000000000 level=4 value=0
invalidate domain=1
translate device=evil iova=0x1000
