"""The console kind in libvirt terms: a ``<console>`` (devid ``charconsole:<port>``)."""

from __future__ import annotations

from typing import Any

from .base import ElementKind

__all__ = ["ELEMENT", "devid"]


def devid(el: Any) -> str:
    """``charconsole:<target port>`` (port 0 without one)."""
    tgt = el.find("target")
    port = tgt.get("port") if tgt is not None else None
    return f"charconsole:{port if port is not None else 0}"


ELEMENT = ElementKind("console", ("console",), devid, skeleton="<console type='pty'/>")
