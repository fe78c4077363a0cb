"""The tpm kind in libvirt terms: a ``<tpm>`` (devid ``tpm``)."""

from __future__ import annotations

from .base import ElementKind

__all__ = ["ELEMENT"]

ELEMENT = ElementKind("tpm", ("tpm",), lambda el: "tpm", skeleton="<tpm/>")
