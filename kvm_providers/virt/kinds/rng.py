"""The rng kind in libvirt terms: a ``<rng>`` (devid ``rng``)."""

from __future__ import annotations

from .base import ElementKind

__all__ = ["ELEMENT"]

ELEMENT = ElementKind("rng", ("rng",), lambda el: "rng", skeleton="<rng/>")
