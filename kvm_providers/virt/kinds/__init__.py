"""The device kinds registry: the one list of every kind of device the project models.

Each kind is one module of this package (``proc``, ``mem``, ``disk`` ...)
whose ``KIND`` (:class:`~kvm_providers.virt.kinds.base.DeviceKind`) declares
everything about it: XML tags and device ids, the mapping table between RASD
properties and XML, writers, the skeleton and builder of a new device, limits,
its pool, its CIM classes and ResourceType.  Every layer (devices, settings,
limits, pools, allocation, the providers, the registration) reads the kinds
from :data:`KINDS`; adding a kind is one module, one line here and one MOF
block (docs/ARCHITECTURE.md, "How to add a device kind").
"""

from __future__ import annotations

from . import console, controller, disk, graphics, input, mem, net, proc, rng, tpm, watchdog
from .base import DeviceKind, PoolKind

__all__ = ["KINDS", "KIND_BY_NAME", "DeviceKind", "PoolKind"]

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
