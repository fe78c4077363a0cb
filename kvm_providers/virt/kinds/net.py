"""The network interface kind in libvirt terms: an ``<interface>`` (devid: its MAC
address)."""

from __future__ import annotations

from typing import Any, Optional

from .base import ElementKind

__all__ = ["ELEMENT", "devid"]


def devid(el: Any) -> Optional[str]:
    """The interface's MAC address."""
    mac = el.find("mac")
    return mac.get("address") if mac is not None else None


ELEMENT = ElementKind("net", ("interface",), devid, skeleton="<interface/>")
