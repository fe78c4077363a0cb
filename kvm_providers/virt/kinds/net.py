"""The network interface kind in libvirt terms: an ``<interface>`` (devid: its MAC
address)."""

from __future__ import annotations

from typing import Any, Optional

from ..props import random_mac
from .base import ElementKind

__all__ = ["ELEMENT", "devid", "clone"]


def devid(el: Any) -> Optional[str]:
    """The interface's MAC address."""
    mac = el.find("mac")
    return mac.get("address") if mac is not None else None


def clone(el: Any, family: str, taken: dict[str, str], name: str) -> None:
    """An interface of a cloned system gets a new MAC address."""
    mac = el.find("mac")
    if mac is not None:
        new = random_mac(taken, family)
        taken[new] = name
        mac.set("address", new)


ELEMENT = ElementKind("net", ("interface",), devid, skeleton="<interface/>",
                      clone=clone)
