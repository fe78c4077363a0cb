"""The disk kind in libvirt terms: a ``<disk>`` (devid: its target dev, ``vda``) or a
``<filesystem>`` (devid: its target dir)."""

from __future__ import annotations

from typing import Any, Optional

from .base import ElementKind

__all__ = ["ELEMENT", "devid"]


def devid(el: Any) -> Optional[str]:
    """A disk's target dev, a filesystem's target dir."""
    tgt = el.find("target")
    if tgt is None:
        return None
    return tgt.get("dir") if el.tag == "filesystem" else tgt.get("dev")


ELEMENT = ElementKind("disk", ("disk", "filesystem"), devid, skeleton="<disk device='disk'/>")
