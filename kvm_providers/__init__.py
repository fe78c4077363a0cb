"""kvm_providers: DMTF system virtualization CIM providers over libvirt."""

from ._version import __version__

__all__ = ["__version__"]
