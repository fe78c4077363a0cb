"""What the libvirt layer needs to know of a kind of device: :class:`ElementKind`, the type
of a kind's libvirt facts.

The libvirt facts only: which XML elements a kind's devices are, how their
device ids are formed, the element a new device starts from, how many
logical devices one element defines, and the hooks that only move XML (the
element libvirt keeps in step with one, the default device of a new system,
what a clone must not share).

The layer declares no kind itself.  Every kind is one module of the CIM model
(``kvm_providers/model/kinds/<kind>.py``), which declares its ``ELEMENT`` (an
``ElementKind``) next to its CIM side (``KIND``, a ``DeviceKind`` wrapping
the element); the model's registry installs the kinds into this layer
(:func:`kvm_providers.virt.devices.use_kinds`), the one way the layer learns
them, so that it never imports the CIM side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from lxml import etree

__all__ = ["ElementKind"]


@dataclass(frozen=True, eq=False)
class ElementKind:
    """One kind of device as libvirt's domain XML has it."""

    name: str                       # 'disk'
    tags: tuple[str, ...]           # <devices> child element names; () for root-level kinds
    #: devid(element): the device id (the part after ``<domain>/`` in DeviceIDs).
    devid: Callable[[Any], Optional[str]]
    #: The element a new device starts from; None: it cannot be added, only modified.
    skeleton: Optional[str] = None
    #: device_count(element): an element that defines several logical devices, numbered
    #: 0..n-1 (one Processor per vCPU); None: one device with the setting's id.
    device_count: Optional[Callable[[Any], int]] = None
    #: alias(root, element) -> the element libvirt keeps in step with this one (the
    #: <serial> of console 0), changed and removed with it; None: none.
    alias: Optional[Callable[[Any, Any], Optional[Any]]] = None
    #: default(root, family, given) -> XML of the device a new system gets when the
    #: client gave none of the kinds in `given` (libvirt-cim's default devices); None.
    default: Optional[Callable[[Any, str, set[str]], Optional[str]]] = None
    #: clone(element, family, taken, name): make a device of a cloned system its own (a
    #: new MAC address, recorded in `taken` as used by `name`); None: copied as it is.
    clone: Optional[Callable[[Any, str, dict[str, str], str], None]] = None
    #: parent_of(element) -> the device id of this kind's device that `element`, a device
    #: of any kind, hangs off according to its <address> (a disk's IDE controller), or
    #: None; None: devices hang off no device of this kind.
    parent_of: Optional[Callable[[Any], Optional[str]]] = None

    @property
    def root_level(self) -> bool:
        """True for kinds read from the <domain> root (proc, mem): exactly one per domain,
        never added or removed, only modified."""
        return not self.tags

    def new_element(self) -> Any:
        """A fresh element from the skeleton (ValueError for kinds that cannot be added)."""
        if self.skeleton is None:
            raise ValueError(f"a {self.name} setting cannot be added, only modified")
        return etree.fromstring(self.skeleton)

    @property
    def element(self) -> "ElementKind":
        """The element kind itself: what :func:`~kvm_providers.virt.devices.use_kinds` reads
        from each kind it installs (a ``DeviceKind`` answers its wrapped element), so
        that the layer can also scan with bare element kinds."""
        return self

