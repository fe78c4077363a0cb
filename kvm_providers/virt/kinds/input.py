"""The input kind in libvirt terms: an ``<input>`` (devid ``<type>:<bus>``, ``tablet:usb``)."""

from __future__ import annotations

from typing import Any, Optional

from .base import ElementKind, container_guest

__all__ = ["ELEMENT", "devid", "default"]


def devid(el: Any) -> Optional[str]:
    """``<type>:<bus>`` (the type alone without a bus)."""
    t, b = el.get("type"), el.get("bus")
    if t is None:
        return None
    return f"{t}:{b}" if b else t


def default(root: Any, family: str, given: set[str]) -> Optional[str]:
    """libvirt-cim's default for a new guest with graphics and no input: a PS/2 mouse."""
    if container_guest(root, family) or "input" in given or \
            root.find("devices/input") is not None or root.find("devices/graphics") is None:
        return None
    return "<input type='mouse' bus='ps2'/>"


ELEMENT = ElementKind("input", ("input",), devid, skeleton="<input/>",
                      default=default)
