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
rng, watchdog, memballoon, tpm ...) are not modelled and are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from . import mapping as M

__all__ = ["DeviceKind", "KINDS", "KIND_BY_NAME", "KIND_BY_RASD", "KIND_BY_DEVICE",
           "Setting", "LogicalDevice", "scan_settings", "logical_devices", "kind_for_class"]


@dataclass(frozen=True)
class DeviceKind:
    """One kind of virtual resource."""

    name: str                       # 'disk'
    rasd_class: str                 # class name without family prefix
    device_class: Optional[str]     # logical device class without prefix
    resource_type: int
    tags: tuple[str, ...]           # <devices> child element names; () for root-level kinds
    devid: Callable[[Any], Optional[str]]
    tables: dict = field(default_factory=dict)   # element tag -> mapping table

    def table(self, element: Any) -> M.Table:
        """The mapping table for `element` (disk and filesystem differ)."""
        t = self.tables.get(element.tag)
        return t if t is not None else self.tables["*"]

    def all_properties(self) -> set[str]:
        out: set[str] = set()
        for t in self.tables.values():
            out.update(t)
        return out


def _disk_id(el):
    tgt = el.find("target")
    if tgt is None:
        return None
    return tgt.get("dir") if el.tag == "filesystem" else tgt.get("dev")


def _net_id(el):
    mac = el.find("mac")
    return mac.get("address") if mac is not None else None


def _input_id(el):
    t, b = el.get("type"), el.get("bus")
    if t is None:
        return None
    return f"{t}:{b}" if b else t


def _controller_id(el):
    t = el.get("type")
    return f"controller:{t}:{el.get('index') or '0'}" if t else None


def _console_id(el):
    tgt = el.find("target")
    port = tgt.get("port") if tgt is not None else None
    return f"charconsole:{port if port is not None else 0}"


PROC = DeviceKind("proc", "ProcResourceAllocationSettingData", "Processor", 3, (),
                  lambda el: "proc", {"*": M.PROC})
MEM = DeviceKind("mem", "MemResourceAllocationSettingData", "Memory", 4, (),
                 lambda el: "mem", {"*": M.MEM})
DISK = DeviceKind("disk", "DiskResourceAllocationSettingData", "LogicalDisk", 17,
                  ("disk", "filesystem"), _disk_id,
                  {"disk": M.DISK, "filesystem": M.FILESYSTEM, "*": M.DISK})
NET = DeviceKind("net", "NetResourceAllocationSettingData", "NetworkPort", 10,
                 ("interface",), _net_id, {"*": M.NET})
GRAPHICS = DeviceKind("graphics", "GraphicsResourceAllocationSettingData",
                      "DisplayController", 24, ("graphics",),
                      lambda el: el.get("type"), {"*": M.GRAPHICS})
INPUT = DeviceKind("input", "InputResourceAllocationSettingData", "PointingDevice", 13,
                   ("input",), _input_id, {"*": M.INPUT})
CONSOLE = DeviceKind("console", "ConsoleResourceAllocationSettingData",
                     "ConsoleDisplayController", 1, ("console",), _console_id,
                     {"*": M.CONSOLE})
CONTROLLER = DeviceKind("controller", "ControllerResourceAllocationSettingData", "Controller",
                        1, ("controller",), _controller_id, {"*": M.CONTROLLER})

#: All kinds, in the order settings and devices are listed.
KINDS: tuple[DeviceKind, ...] = (PROC, MEM, DISK, NET, GRAPHICS, INPUT, CONSOLE, CONTROLLER)
KIND_BY_NAME = {k.name: k for k in KINDS}
KIND_BY_RASD = {k.rasd_class.lower(): k for k in KINDS}
KIND_BY_DEVICE = {k.device_class.lower(): k for k in KINDS if k.device_class}
_KIND_BY_TAG = {tag: k for k in KINDS for tag in k.tags}
_ORDER = {k.name: i for i, k in enumerate(KINDS)}


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
    if kinds is None or "proc" in kinds:
        out.append(Setting(PROC, root, "proc", root_view))
    if kinds is None or "mem" in kinds:
        out.append(Setting(MEM, root, "mem", root_view))
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
        if s.kind is PROC:
            count = M.PROC["VirtualQuantity"].read(s.element) or 0
            out.extend(LogicalDevice(PROC, str(i), s, i) for i in range(int(count)))
        else:
            out.append(LogicalDevice(s.kind, s.devid, s))
    return out
