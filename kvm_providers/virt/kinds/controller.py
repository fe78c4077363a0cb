"""The controller kind in libvirt terms: a ``<controller>`` (devid
``controller:<type>:<index>``)."""

from __future__ import annotations

from typing import Any, Optional

from .base import ElementKind

__all__ = ["ELEMENT", "devid"]


def devid(el: Any) -> Optional[str]:
    """``controller:<type>:<index>`` (index 0 without one); None without a type."""
    t = el.get("type")
    return f"controller:{t}:{el.get('index') or '0'}" if t else None


ELEMENT = ElementKind("controller", ("controller",), devid, skeleton="<controller/>")
