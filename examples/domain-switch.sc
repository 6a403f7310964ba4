# Moving a device between domains (a guest reassigning it to another
# driver or VM-level context).  The context entry is rewritten and
# invalidated; the shadow hears the old domain's mappings go and the new
# one's come, and nothing for a mapping both domains share.
#
#   viommu run --verify examples/domain-switch.sc
iommu vtd
domain 10
domain 20
map domain=10 iova=0x0 pa=0x100000 size=8K perm=rw
map domain=20 iova=0x1000 pa=0x101000 size=8K perm=rw
device dev domain=10
notifier vfio device=dev flags=map,unmap
# a notifier registered late asks for what is already mapped
replay vfio
attach dev domain=20
detach dev
