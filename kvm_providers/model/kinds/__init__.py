"""The device kinds registry: the one list of every kind of device the project models.

A kind is one module, ``model/kinds/<kind>.py``, holding all the project knows
about it: its libvirt facts (``ELEMENT``, a
:class:`~kvm_providers.virt.elements.ElementKind`: XML elements, how device ids
are formed, the skeleton of a new element, the hooks that only move XML) and
its CIM side (``KIND``, a :class:`~kvm_providers.model.kinds.base.DeviceKind`
wrapping the element: CIM classes and ResourceType, the mapping table between
RASD properties and XML, writers, the builder of a new device from client
properties, limits, its pool, the management hooks).  :data:`KINDS` lists
them; every layer reads the kinds from it: the model and the providers, the
registration, and the libvirt layer, into which importing this package
installs them (:func:`kvm_providers.virt.devices.use_kinds`, the layer's one
way to learn them: it never imports this side), so a setting's ``kind`` is
the ``DeviceKind``.  Adding a kind: docs/ARCHITECTURE.md, "How to add a
device kind"."""

from __future__ import annotations

from typing import Optional

from ...virt import devices as _devices
from . import console, controller, disk, graphics, input, mem, net, proc, rng, tpm, watchdog
from .base import DeviceKind, PoolKind

__all__ = ["KINDS", "KIND_BY_NAME", "KIND_BY_RASD", "KIND_BY_DEVICE", "DeviceKind", "PoolKind",
           "kind_for_class"]

#: Every kind, in the order settings and devices are listed.
KINDS: tuple[DeviceKind, ...] = (
    proc.KIND,
    mem.KIND,
    disk.KIND,
    net.KIND,
    graphics.KIND,
    input.KIND,
    console.KIND,
    controller.KIND,
    tpm.KIND,
    watchdog.KIND,
    rng.KIND,
)
KIND_BY_NAME: dict[str, DeviceKind] = {k.name: k for k in KINDS}
KIND_BY_RASD: dict[str, DeviceKind] = {k.rasd_class.lower(): k for k in KINDS}
KIND_BY_DEVICE: dict[str, DeviceKind] = {k.device_class.lower(): k for k in KINDS
                                         if k.device_class}

_devices.use_kinds(KINDS)


def kind_for_class(classname: str) -> tuple[Optional[DeviceKind], str]:
    """(kind, 'rasd' | 'device') for a family class name such as KVM_LogicalDisk."""
    base = classname.split("_", 1)[1].lower() if "_" in classname else classname.lower()
    k = KIND_BY_RASD.get(base)
    if k is not None:
        return k, "rasd"
    k = KIND_BY_DEVICE.get(base)
    if k is not None:
        return k, "device"
    return None, ""
