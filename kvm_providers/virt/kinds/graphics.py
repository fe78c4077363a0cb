"""The graphics kind in libvirt terms: a ``<graphics>`` (devid: its type, ``vnc``)."""

from __future__ import annotations

from .base import ElementKind

__all__ = ["ELEMENT"]

ELEMENT = ElementKind("graphics", ("graphics",), lambda el: el.get("type"),
                      skeleton="<graphics/>")
