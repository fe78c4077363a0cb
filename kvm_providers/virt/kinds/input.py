"""The input kind in libvirt terms: an ``<input>`` (devid ``<type>:<bus>``, ``tablet:usb``)."""

from __future__ import annotations

from typing import Any, Optional

from .base import ElementKind

__all__ = ["ELEMENT", "devid"]


def devid(el: Any) -> Optional[str]:
    """``<type>:<bus>`` (the type alone without a bus)."""
    t, b = el.get("type"), el.get("bus")
    if t is None:
        return None
    return f"{t}:{b}" if b else t


ELEMENT = ElementKind("input", ("input",), devid, skeleton="<input/>")
