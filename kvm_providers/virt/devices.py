"""Device settings and logical devices of a domain: which XML elements are settings of
which kind, and their ids.

A *setting* is one device of a kind (what CIM calls a RASD): one per element of
a kind's XML tags under ``<devices>``, and one per root-level kind (processor,
memory: read from the ``<domain>`` root itself).  A *logical device* is what
the running system has: one per setting, with the setting's id, or several
numbered ones where the kind's ``device_count`` says so (one Processor per
vCPU).

Device ids (the part after ``<domain>/``) are the kinds' ``devid`` (libvirt-cim's
ids: ``vda``, a MAC address, ``vnc``, ``charconsole:0`` ...; each kind module
says how its id is formed) and a root-level kind's name.  Ids are unique
within a domain: a second element with the same id (two VNC servers, two
identical USB tablets) gets ``#2``, ``#3`` ... appended, in document order.
Elements no kind covers (video, sound, serial, channel, hostdev, memballoon
...) are not modelled and are left alone.

The layer declares no kind itself: the kinds are installed into it with
:func:`use_kinds`, each an object with the libvirt facts of an
:class:`~kvm_providers.virt.elements.ElementKind` (its ``element``).  The CIM
model (:mod:`kvm_providers.model.kinds`, where every kind is one module)
installs its ``DeviceKind`` objects when it is imported, so that a setting's
``kind`` carries the CIM mapping too; code using the layer without the model
installs element kinds itself.  Scanning before any kind is installed is a
programming error (:class:`KindsNotInstalled`), never an empty list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from . import mapping as M
from .elements import ElementKind

__all__ = ["Setting", "LogicalDevice", "scan_settings", "logical_devices", "use_kinds",
           "scanned_kinds", "KindsNotInstalled", "parent_devid"]


class KindsNotInstalled(RuntimeError):
    """A domain's devices were asked for before any device kinds were installed."""


@dataclass(frozen=True)
class _Registry:
    """The kinds scanned, indexed (replaced as a whole by use_kinds)."""

    #: The kind objects (ElementKind, or the objects wrapping them that were installed).
    kinds: tuple[Any, ...]
    by_tag: dict[str, Any]
    order: dict[str, int]
    #: tag -> (kind, its devid function, its place in the order): what a scan needs of a
    #: device element, looked up once (no property chain per element).
    scan: dict[str, tuple[Any, Callable[[Any], Optional[str]], int]]
    #: Kinds read from the <domain> root (one setting each, its id the kind's name).
    root: tuple[Any, ...]
    #: The ``parent_of`` hooks of the kinds that have one, in the kinds' order.
    parents: tuple[Callable[[Any], Optional[str]], ...] = ()


def _registry(kinds: Sequence[Any]) -> _Registry:
    return _Registry(tuple(kinds), {tag: k for k in kinds for tag in k.tags},
                     {k.name: i for i, k in enumerate(kinds)},
                     {tag: (k, k.devid, i) for i, k in enumerate(kinds) for tag in k.tags},
                     tuple(k for k in kinds if not k.tags),
                     tuple(k.parent_of for k in kinds if k.parent_of is not None))


#: The installed kinds (None until use_kinds: the layer has no kinds of its own).
_REGISTRY: Optional[_Registry] = None


def use_kinds(kinds: Sequence[Any]) -> None:
    """Scan domains with `kinds` from now on, in this order (the order of listings): one
    object per kind of device, each with its libvirt facts as ``element`` (an
    :class:`ElementKind`: the CIM model's DeviceKind objects, or element kinds
    themselves).  ValueError if one has no element kind, or two share a name or an
    XML tag (ids and settings must not depend on which kind is asked first)."""
    names: set[str] = set()
    tags: set[str] = set()
    for k in kinds:
        el = getattr(k, "element", None)
        if not isinstance(el, ElementKind):
            raise ValueError(f"use_kinds: {k!r} has no element kind (.element)")
        if el.name in names or tags & set(el.tags):
            raise ValueError(f"use_kinds: kind {el.name!r} repeats a name or an XML tag")
        names.add(el.name)
        tags.update(el.tags)
    global _REGISTRY
    _REGISTRY = _registry(tuple(kinds))


def _installed() -> _Registry:
    reg = _REGISTRY
    if reg is None:
        raise KindsNotInstalled(
            "no device kinds installed in the libvirt layer: import kvm_providers.model "
            "(which installs its kinds) or call kvm_providers.virt.devices.use_kinds first")
    return reg


def scanned_kinds() -> tuple[Any, ...]:
    """The kinds domains are scanned with (KindsNotInstalled before use_kinds)."""
    return _installed().kinds


def parent_devid(el: Any, setting: Callable[[str], Any]) -> Optional[str]:
    """The device id of the device `el` hangs off (from its <address>): the first id a
    kind's ``parent_of`` names for which ``setting(devid)`` (the domain's lookup of a
    setting by id) finds one; None without one.  The hooks are listed once per
    installation, not looked up per device and kind (issue 16: the Parent of every
    RASD of an enumeration)."""
    for parent_of in _installed().parents:
        devid = parent_of(el)
        if devid is not None and setting(devid) is not None:
            return devid
    return None


class Setting:
    """One RASD of a domain: its kind, XML element and device id.

    ``view`` is a read cache of the element (mapping.View), shared by the
    processor and memory settings, which both read the domain root.
    """

    __slots__ = ("kind", "element", "devid", "_view")

    def __init__(self, kind: Any, element: Any, devid: str, view: Any = None):
        self.kind, self.element, self.devid, self._view = kind, element, devid, view

    @property
    def view(self) -> M.View:
        """A read cache of the element: the shared root view for proc and mem, else a
        new one (not kept: fewer long-lived objects for the garbage collector)."""
        return self._view if self._view is not None else M.View(self.element)

    @property
    def table(self) -> M.Table:
        """The mapping table of the setting's element (the installed kind's, e.g. the CIM
        model's DeviceKind.table; element kinds alone have none)."""
        return self.kind.table(self.element)

    def read(self, prop: str, ctx: Any = None) -> Any:
        """The value of `prop` through the table (None if the table has no such field)."""
        f = self.table.get(prop)
        return None if f is None else f.read(self.element, ctx)

    def __repr__(self) -> str:
        return f"<Setting {self.kind.name} {self.devid}>"


class LogicalDevice:
    """One logical device: kind, DeviceID suffix and the setting that defines it."""

    __slots__ = ("kind", "devid", "setting", "number")

    def __init__(self, kind: Any, devid: str, setting: Setting, number: int = 0):
        self.kind, self.devid, self.setting, self.number = kind, devid, setting, number

    def __repr__(self) -> str:
        return f"<LogicalDevice {self.kind.name} {self.devid}>"


def scan_settings(root: Any, kinds: Optional[set[str]] = None,
                  root_view: Any = None) -> list[Setting]:
    """The settings of a parsed domain, in the installed kinds' order then document order.

    With `kinds` (names), only those kinds are listed (ids stay the same:
    duplicates are numbered within a kind).
    """
    out: list[Setting] = []
    if root_view is None:
        root_view = M.View(root)
    reg = _installed()
    for root_kind in reg.root:
        if kinds is None or root_kind.name in kinds:
            out.append(Setting(root_kind, root, root_kind.name, root_view))
    # The first child of that tag, as find() answers, without ElementPath: from the root
    # View's index if it has one, else without making one (issue 16, stop 23: root.find
    # was a tenth of a scan).
    devs = root_view.child("devices")
    if devs is None:
        return out
    seen: dict[str, int] = {}
    found: list[tuple[int, int, Setting]] = []
    scan = reg.scan
    for pos, el in enumerate(devs):
        hit = scan.get(el.tag)       # comments and processing instructions: no str tag
        if hit is None:
            continue
        kind, devid_of, order = hit
        devid = devid_of(el)
        if not devid:
            devid = f"{kind.name}{pos}"
        if devid in seen:
            n = seen[devid] = seen[devid] + 1
            devid = f"{devid}#{n}"
        else:
            seen[devid] = 1
        found.append((order, pos, Setting(kind, el, devid)))
    found.sort()                     # (kind order, document order): pos is unique
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
