"""What the libvirt layer knows of a kind of device: :class:`ElementKind`.

The libvirt facts only: which XML elements a kind's devices are, how their
device ids are formed, the element a new device starts from, how many
logical devices one element defines.  What the kind is in CIM terms (classes,
ResourceType, the RASD mapping table, the builder from client properties,
limits, pool) is the CIM model's (:mod:`kvm_providers.model.kinds`), whose
``DeviceKind`` wraps an ``ElementKind``.
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
