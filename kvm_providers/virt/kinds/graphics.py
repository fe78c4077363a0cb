"""The graphics kind in libvirt terms: a ``<graphics>`` (devid: its type, ``vnc``)."""

from __future__ import annotations

from typing import Any, Optional

from .base import ElementKind, container_guest

__all__ = ["ELEMENT", "default"]


def default(root: Any, family: str, given: set[str]) -> Optional[str]:
    """libvirt-cim's default for a new guest that has neither graphics nor a console: VNC
    on loopback with an automatic port (its clients count a new guest's devices,
    docs/compat.md, "Default devices")."""
    if container_guest(root, family) or given & {"graphics", "console"} or \
            root.find("devices/graphics") is not None or root.find("devices/console") is not None:
        return None
    return "<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>"


ELEMENT = ElementKind("graphics", ("graphics",), lambda el: el.get("type"),
                      skeleton="<graphics/>",
                      default=default)
