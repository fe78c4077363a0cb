"""Allocation limits of a host: the one definition of what a RASD may ask for.

{P}_AllocationCapabilities and its SettingsDefineCapabilities RASDs
(DSP1043, issue 5) advertise these limits; the VirtualSystemManagementService
methods (issue 4) enforce them with :func:`check`.  Keeping both on
:func:`allocation_limits` means what is advertised is exactly what is
accepted.

For each device kind (names as in :mod:`kvm_providers.virt.devices`):

* ``minimum``, ``maximum``, ``default``, ``increment`` of the quantity
  (VirtualQuantity: vCPUs for ``proc``, KiB for ``mem``; None where a kind
  has no quantity);
* ``units`` (AllocationUnits as the RASDs report them);
* ``values``: the accepted values of enumerated properties, e.g. disk
  ``BusType`` or graphics ``ResourceSubType``.  Taken from libvirt's domain
  capabilities where the driver has them (QEMU), else from fixed lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from .connection import Host
from .hostcaps import domain_caps, guest_type, host_caps

__all__ = ["Limits", "allocation_limits", "check", "LimitError", "MIN_MEMORY_KIB",
           "DEFAULT_MEMORY_KIB", "MEMORY_INCREMENT_KIB"]

#: Smallest memory a virtual system may get (KiB): 16 MiB.
MIN_MEMORY_KIB = 16 * 1024
#: Memory of a new virtual system without a memory RASD (KiB): 512 MiB.
DEFAULT_MEMORY_KIB = 512 * 1024
#: Memory is allocated in whole MiB.
MEMORY_INCREMENT_KIB = 1024


class LimitError(ValueError):
    """A value outside the advertised limits; the message names property and value."""

    def __init__(self, prop: str, value: Any, why: str):
        super().__init__(f"{prop} {value!r} {why}")
        self.prop, self.value = prop, value


@dataclass(frozen=True)
class Limits:
    """The advertised limits of one kind of resource on one host."""

    kind: str
    minimum: Optional[int] = None
    maximum: Optional[int] = None
    default: Optional[int] = None
    increment: Optional[int] = None
    units: Optional[str] = None
    values: dict[str, tuple[Any, ...]] = field(default_factory=dict)


# Used where the driver publishes no domain capabilities (test driver, LXC).
_DISK_BUSES = ("virtio", "scsi", "sata", "ide", "usb", "fdc", "sd", "xen")
_GRAPHICS = ("vnc", "spice", "sdl", "egl-headless", "dbus")
_NET_TYPES = ("network", "bridge", "user", "direct", "ethernet")
_INPUT_TYPES = ("mouse", "tablet", "keyboard")
_INPUT_BUSES = ("ps2", "usb", "virtio", "xen")
_CONTROLLERS = ("ide", "fdc", "scsi", "sata", "usb", "ccid", "virtio-serial", "pci", "xenbus",
                "isa")
_CONSOLE_TARGETS = ("serial", "virtio", "xen", "lxc", "openvz", "sclp", "sclplm")
# NIC models (ResourceSubType) libvirt accepts per hypervisor (getType()); libvirt 9's
# domain capabilities do not list them.  Containers' interfaces have no model.
_NIC_MODELS = {
    "QEMU": ("virtio", "e1000", "e1000e", "rtl8139", "ne2k_pci", "pcnet", "vmxnet3",
             "virtio-transitional", "virtio-non-transitional"),
    "Test": ("virtio", "e1000", "e1000e", "rtl8139", "ne2k_pci", "pcnet", "vmxnet3"),
    "Xen": ("netfront", "e1000", "rtl8139"),
    "LXC": (),
}


def _enum(domcaps: Any, path: str, name: str, fallback: tuple[str, ...]) -> tuple[str, ...]:
    if domcaps is None:
        return fallback
    node = domcaps.find(path)
    if node is None or node.get("supported") == "no":
        return fallback
    vals = tuple(v.text for v in node.iterfind(f"enum[@name='{name}']/value") if v.text)
    return vals or fallback


def allocation_limits(host: Host, family: Optional[str] = None) -> dict[str, Limits]:
    """{kind name: Limits} for new or changed settings of `family` virtual systems on `host`."""
    family = family or host.family
    key = f"limits:{family}"

    def compute(conn: Any) -> dict[str, Limits]:
        caps = host_caps(host)
        nic_models = _NIC_MODELS.get(conn.getType(), _NIC_MODELS["QEMU"])
        try:
            g, dtype = guest_type(host, family)
            dc = domain_caps(host, g.emulator, g.arch, None, dtype)
        except ValueError:
            dc = None
        max_vcpus = None
        if dc is not None and dc.find("vcpu") is not None:
            try:
                max_vcpus = int(dc.find("vcpu").get("max"))
            except (TypeError, ValueError):
                max_vcpus = None
        if not max_vcpus:
            max_vcpus = caps.cpus or None     # None: the host cannot tell
        max_mem = caps.memory_kib or None
        return {
            "proc": Limits("proc", 1, max_vcpus, 1, 1, "count"),
            "mem": Limits("mem", MIN_MEMORY_KIB, max_mem, DEFAULT_MEMORY_KIB,
                          MEMORY_INCREMENT_KIB, "KiloBytes"),
            "disk": Limits("disk", units="Bytes", values={
                "BusType": _enum(dc, "devices/disk", "bus", _DISK_BUSES),
                "EmulatedType": (0, 1, 2, 3, 4)}),
            "net": Limits("net", values={"NetworkType": _NET_TYPES,
                                         "ResourceSubType": nic_models}),
            "graphics": Limits("graphics", values={
                "ResourceSubType": _enum(dc, "devices/graphics", "type", _GRAPHICS)}),
            "input": Limits("input", values={"ResourceSubType": _INPUT_TYPES,
                                             "BusType": _INPUT_BUSES}),
            "console": Limits("console", values={"TargetType": _CONSOLE_TARGETS}),
            "controller": Limits("controller", values={"ResourceSubType": _CONTROLLERS}),
        }
    return host.info(key, compute)


def check(host: Host, kind: str, prop: str, value: Any, family: Optional[str] = None) -> None:
    """Raise LimitError if `value` of property `prop` of a `kind` setting is outside the limits.

    Quantities (``VirtualQuantity`` / ``Limit`` / ``Reservation`` of proc and
    mem, already converted to the limit's units) are checked against
    minimum, maximum and increment; enumerated properties against their
    values.  None is always accepted (it means "leave as it is").
    """
    if value is None:
        return
    lim = allocation_limits(host, family).get(kind)
    if lim is None:
        return
    if prop in ("VirtualQuantity", "Limit", "Reservation") and lim.minimum is not None:
        try:
            n = int(value)
        except (TypeError, ValueError):
            raise LimitError(prop, value, "is not a number") from None
        unit = f" {lim.units}" if lim.units else ""
        if n < lim.minimum:
            raise LimitError(prop, value, f"is below the minimum {lim.minimum}{unit}")
        if lim.maximum is not None and n > lim.maximum:
            raise LimitError(prop, value, f"is above the maximum {lim.maximum}{unit}")
        if lim.increment and n % lim.increment:
            raise LimitError(prop, value, f"is not a multiple of {lim.increment}{unit}")
        return
    allowed = lim.values.get(prop)
    if allowed is not None and value not in allowed:
        raise LimitError(prop, value, f"is not one of {', '.join(map(str, allowed))}")
