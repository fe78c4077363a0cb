"""The memory kind in libvirt terms: ``<memory>`` / ``<currentMemory>`` of the ``<domain>``
root (devid ``mem``)."""

from __future__ import annotations

from .base import ElementKind

__all__ = ["ELEMENT"]

ELEMENT = ElementKind("mem", (), lambda el: "mem")
