"""The processor kind in libvirt terms: the ``<vcpu>`` of the ``<domain>`` root (devid
``proc``), one logical device per vCPU."""

from __future__ import annotations

from typing import Any

from ..mapping import to_int
from .base import ElementKind

__all__ = ["ELEMENT", "vcpus"]


def vcpus(el: Any, ctx: Any = None) -> int:
    """The current vCPU count of a ``<domain>`` (``<vcpu current=N>M</vcpu>``; 1 without)."""
    node = el.find("vcpu")
    if node is None:
        return 1
    cur = to_int(node.get("current"))
    if cur is not None:
        return cur
    n = to_int(node.text)
    return n if n is not None else 1


ELEMENT = ElementKind("proc", (), lambda el: "proc",
                      device_count=lambda el: int(vcpus(el) or 0))
