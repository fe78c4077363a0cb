"""Provider modules: one per CIM class family, thin, over the libvirt layer.

Each module exposes ``get_providers(env)`` for the classes it serves (every
family: ``KVM_``, ``LXC_``, ``Xen_``; a family's classes answer for the
configured hosts of that family only).  Modules never import each other:
shared mechanisms are in :mod:`kvm_providers.virt` (libvirt, XML, keys,
mapping) and :mod:`kvm_providers.providers.common` (association plumbing,
instance helpers).  See ``docs/providers.md``.
"""
