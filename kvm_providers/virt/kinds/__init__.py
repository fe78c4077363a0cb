"""The device kinds as the libvirt layer knows them: one module per kind with its libvirt
facts (XML elements, device ids, skeleton of a new element), listed in :data:`KINDS`.

The CIM side of each kind (classes, ResourceType, mapping table, builder, limits,
pool) is its module in :mod:`kvm_providers.model.kinds`, whose ``DeviceKind``
wraps the ``ELEMENT`` declared here; the model installs its kinds for the scan
of a domain's devices (:func:`kvm_providers.virt.devices.use_kinds`).  Adding a
kind: docs/ARCHITECTURE.md, "How to add a device kind".
"""

from __future__ import annotations

from . import console, controller, disk, graphics, input, mem, net, proc, rng, tpm, watchdog
from .base import ElementKind

__all__ = ["KINDS", "KIND_BY_NAME", "ElementKind"]

#: Every kind, in the order settings and devices are listed.
KINDS: tuple[ElementKind, ...] = (
    proc.ELEMENT,
    mem.ELEMENT,
    disk.ELEMENT,
    net.ELEMENT,
    graphics.ELEMENT,
    input.ELEMENT,
    console.ELEMENT,
    controller.ELEMENT,
    tpm.ELEMENT,
    watchdog.ELEMENT,
    rng.ELEMENT,
)
KIND_BY_NAME: dict[str, ElementKind] = {k.name: k for k in KINDS}
