"""The watchdog kind in libvirt terms: a ``<watchdog>`` (devid ``watchdog``)."""

from __future__ import annotations

from .base import ElementKind

__all__ = ["ELEMENT"]

ELEMENT = ElementKind("watchdog", ("watchdog",), lambda el: "watchdog", skeleton="<watchdog/>")
