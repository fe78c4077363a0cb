"""Device kinds: which XML elements become which RASD and logical device, and their ids.

A *setting* is one RASD of a domain: the processor settings and the memory
settings (both read from the ``<domain>`` root), and one per ``<disk>`` /
``<filesystem>``, ``<interface>``, ``<graphics>``, ``<input>``,
``<console>`` and ``<controller>``.  A *logical device* is what the running
system has: one Processor per vCPU (DeviceID ``<domain>/<n>``, all defined
by the one processor RASD), one Memory, and one device per setting of the
other kinds, with the setting's id.

Device ids (the part after ``<domain>/``) follow libvirt-cim: disk target dev
(``vda``; a filesystem's target dir), NIC MAC address, ``mem``, ``proc``,
graphics type (``vnc``), input ``<type>:<bus>`` (``tablet:usb``),
``controller:<type>:<index>``, console ``charconsole:<port>``.  Ids are unique
within a domain: a second element with the same id (two VNC servers, two
identical USB tablets) gets ``#2``, ``#3`` ... appended, in document order.
Elements the kinds do not cover (video, sound, serial, channel, hostdev,
memballoon ...) are not modelled and are left alone.  The kinds are declared
in :mod:`kvm_providers.virt.kinds` (one module each).
"""

from __future__ import annotations

from typing import Any, Optional

from . import mapping as M
from .kinds import KIND_BY_NAME, KINDS
from .kinds.base import DeviceKind

__all__ = ["DeviceKind", "KINDS", "KIND_BY_NAME", "KIND_BY_RASD", "KIND_BY_DEVICE",
           "Setting", "LogicalDevice", "scan_settings", "logical_devices", "kind_for_class"]

# The kinds themselves (tags, device ids, tables ...) are declared in kinds/<kind>.py and
# listed by the registry (kinds/__init__.py); this module indexes and scans them.
KIND_BY_RASD = {k.rasd_class.lower(): k for k in KINDS}
KIND_BY_DEVICE = {k.device_class.lower(): k for k in KINDS if k.device_class}
_KIND_BY_TAG = {tag: k for k in KINDS for tag in k.tags}
_ORDER = {k.name: i for i, k in enumerate(KINDS)}
#: Kinds read from the <domain> root (one setting each, its id the kind's name).
_ROOT_KINDS = tuple(k for k in KINDS if not k.tags)


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


class Setting:
    """One RASD of a domain: its kind, XML element and device id.

    ``view`` is a read cache of the element (mapping.View), shared by the
    processor and memory settings, which both read the domain root.
    """

    __slots__ = ("kind", "element", "devid", "_view")

    def __init__(self, kind: DeviceKind, element: Any, devid: str, view: Any = None):
        self.kind, self.element, self.devid, self._view = kind, element, devid, view

    @property
    def view(self) -> M.View:
        """A read cache of the element: the shared root view for proc and mem, else a
        new one (not kept: fewer long-lived objects for the garbage collector)."""
        return self._view if self._view is not None else M.View(self.element)

    @property
    def table(self) -> M.Table:
        return self.kind.table(self.element)

    def read(self, prop: str, ctx: Any = None) -> Any:
        f = self.table.get(prop)
        return None if f is None else f.read(self.element, ctx)

    def __repr__(self) -> str:
        return f"<Setting {self.kind.name} {self.devid}>"


class LogicalDevice:
    """One logical device: kind, DeviceID suffix and the setting that defines it."""

    __slots__ = ("kind", "devid", "setting", "number")

    def __init__(self, kind: DeviceKind, devid: str, setting: Setting, number: int = 0):
        self.kind, self.devid, self.setting, self.number = kind, devid, setting, number

    def __repr__(self) -> str:
        return f"<LogicalDevice {self.kind.name} {self.devid}>"


def scan_settings(root: Any, kinds: Optional[set[str]] = None,
                  root_view: Any = None) -> list[Setting]:
    """The settings of a parsed domain, in KINDS order then document order.

    With `kinds` (names), only those kinds are listed (ids stay the same:
    duplicates are numbered within a kind).
    """
    out: list[Setting] = []
    if root_view is None:
        root_view = M.View(root)
    for root_kind in _ROOT_KINDS:
        if kinds is None or root_kind.name in kinds:
            out.append(Setting(root_kind, root, root_kind.name, root_view))
    devs = root.find("devices")
    if devs is None:
        return out
    seen: dict[str, int] = {}
    found: list[tuple[int, int, Setting]] = []
    for pos, el in enumerate(devs):
        tag = el.tag
        if not isinstance(tag, str):
            continue  # comments, processing instructions
        kind = _KIND_BY_TAG.get(tag)
        if kind is None:
            continue
        devid = kind.devid(el)
        if not devid:
            devid = f"{kind.name}{pos}"
        n = seen.get(devid, 0) + 1
        seen[devid] = n
        if n > 1:
            devid = f"{devid}#{n}"
        found.append((_ORDER[kind.name], pos, Setting(kind, el, devid)))
    found.sort(key=lambda t: (t[0], t[1]))
    out.extend(s for _, _, s in found if kinds is None or s.kind.name in kinds)
    return out


def logical_devices(settings: list[Setting]) -> list[LogicalDevice]:
    """The logical devices defined by `settings` (one Processor per vCPU)."""
    out: list[LogicalDevice] = []
    for s in settings:
        if s.kind.device_count is not None:
            count = s.kind.device_count(s.element)
            out.extend(LogicalDevice(s.kind, str(i), s, i) for i in range(count))
        else:
            out.append(LogicalDevice(s.kind, s.devid, s))
    return out
