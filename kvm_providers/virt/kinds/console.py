"""The console kind in libvirt terms: a ``<console>`` (devid ``charconsole:<port>``)."""

from __future__ import annotations

from typing import Any, Optional

from .base import ElementKind, container_guest

__all__ = ["ELEMENT", "devid", "alias", "default"]


def devid(el: Any) -> str:
    """``charconsole:<target port>`` (port 0 without one)."""
    tgt = el.find("target")
    port = tgt.get("port") if tgt is not None else None
    return f"charconsole:{port if port is not None else 0}"


def alias(root: Any, console: Any) -> Optional[Any]:
    """The <serial> that libvirt shows as `console` (the first console, of target type serial).

    libvirt keeps one device for both: on definition, console 0 is taken from
    serial 0, so a change to that console must be made to the serial port too.
    """
    consoles = root.findall("devices/console")
    if not consoles or consoles[0] is not console:
        return None
    t = console.find("target")
    if t is not None and t.get("type") not in (None, "serial"):
        return None
    serials = root.findall("devices/serial")
    return serials[0] if serials else None


def default(root: Any, family: str, given: set[str]) -> Optional[str]:
    """A new container without a console gets one (its init's terminal)."""
    if not container_guest(root, family) or "console" in given or \
            root.find("devices/console") is not None:
        return None
    return "<console type='pty'><target type='lxc' port='0'/></console>"


ELEMENT = ElementKind("console", ("console",), devid, skeleton="<console type='pty'/>",
                      alias=alias, default=default)
