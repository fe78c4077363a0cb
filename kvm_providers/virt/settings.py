"""Client settings (VSSD and RASD properties) into domain XML: classification, defaults,
validation, and the writes the read-only mapping tables do not do.

The management methods (:mod:`kvm_providers.virt.manage`) use this module to
turn the embedded instances a client sent into in-place edits of a domain
definition.  Rules:

* A property that is NULL (absent) leaves the XML as it is; an empty string
  or an empty array removes what the property describes.
* Only properties whose value differs from what the client could read
  (the current definition; the live one of a running system) are written:
  a client that sends back a whole instance with one property changed
  changes exactly that property.
* Read tolerantly (docs/lifecycle.md): properties the class does not map
  are ignored (logged at debug level); mapped properties that cannot be
  written (constants, values computed from elsewhere) are refused when their
  value differs (:class:`InvalidSetting` naming property and value), unless
  the value is the class's default for the property: CIM servers fill class
  defaults into the embedded instances a client sends
  (``VirtualQuantityUnits="count"``), so such a value is "not given".
* Every error is an :class:`InvalidSetting` (``CIM_ERR_INVALID_PARAMETER``)
  whose description names where (``ResourceSettings[1]``), the property and
  the value; nothing has been written to libvirt when one is raised.
"""

from __future__ import annotations

import logging
import os
import random
import re
import stat
from typing import Any, Iterable, Mapping, Optional

import pywbem
from lxml import etree

from . import limits, mapping, netaddr
from .connection import NETWORK_GONE, STORAGE_GONE, DomainNotFound, Host
from .devices import KIND_BY_NAME, KIND_BY_RASD, DeviceKind
from .domain import DomainXML, storage_pools
from .validate import BadName, PathNotAllowed, check_host_path, check_name
from .units import CIM_UNIT_NAMES, cim_unit_bytes, libvirt_unit_bytes

__all__ = ["InvalidSetting", "Props", "classify", "props_of", "diff_props", "write_props",
           "device_id_of", "new_device", "apply_memory", "check_device", "random_mac",
           "host_macs", "MAC_RE", "UUID_RE", "valid_name", "memory_kib", "WRITERS", "IGNORED",
           "table_for", "network_name", "host_is_local", "host_path", "image_format",
           "check_console_paths", "class_defaults"]

LOG = logging.getLogger(__name__)


class InvalidSetting(pywbem.CIMError):
    """A client setting that cannot be applied: CIM_ERR_INVALID_PARAMETER naming it."""

    def __init__(self, where: str, message: str):
        text = f"{where}: {message}" if where else message
        super().__init__(pywbem.CIM_ERR_INVALID_PARAMETER, text)
        self.where = where


MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")


class Props(dict):
    """Property values keyed by lower-case name, NULLs left out; `.names` keeps the spelling.

    `.defaults` holds the class defaults of the instance's class ({lower-case
    name: value}), to tell a value the client asks for from one a CIM server
    filled in.
    """

    def __init__(self, values: Optional[Mapping[str, Any]] = None,
                 defaults: Optional[Mapping[str, Any]] = None):
        super().__init__()
        self.names: dict[str, str] = {}
        self.defaults: dict[str, Any] = dict(defaults if defaults is not None
                                             else getattr(values, "defaults", {}))
        for k, v in dict(values or {}).items():
            if v is not None:
                self[k.lower()] = v
                self.names[k.lower()] = k

    def get_(self, name: str, default: Any = None) -> Any:
        return self.get(name.lower(), default)

    def has(self, name: str) -> bool:
        return name.lower() in self

    def pop_(self, name: str) -> Any:
        self.names.pop(name.lower(), None)
        return self.pop(name.lower(), None)

    def put(self, name: str, value: Any) -> None:
        if value is None:
            self.pop_(name)
        else:
            self[name.lower()] = value
            self.names[name.lower()] = name

    def is_default(self, name: str) -> bool:
        """True if the property's value is the class default (so may be a server's filler)."""
        key = name.lower()
        return key in self and key in self.defaults and _same(self[key], self.defaults[key])

    def explicit(self, name: str) -> Any:
        """The value of a property the client cannot set, None if absent or the class default."""
        return None if self.is_default(name) else self.get(name.lower())


def class_defaults(classname: str, namespace: str = "root/virt") -> dict[str, Any]:
    """{lower-case property name: MOF default} of a class ({} if it is not known)."""
    from ..schema import default_schema
    try:
        cls = default_schema().get_class(namespace, classname)
    except pywbem.CIMError:
        return {}
    return {p.name.lower(): p.value for p in cls.properties.values() if p.value is not None}


def props_of(instance: Any) -> Props:
    """The non-NULL properties of an embedded instance (a pywbem CIMInstance or a mapping).

    For a CIMInstance the class defaults come along (Props.defaults).
    """
    if hasattr(instance, "properties"):
        return Props({n: p.value for n, p in instance.properties.items()},
                     class_defaults(instance.classname))
    return Props(instance)


# -- classification ------------------------------------------------------------------

#: libvirt-cim's vendor ResourceTypes (its svpc_types.h), which its clients send:
#: 32769 console, 32771 controller (32768, a storage volume, is no device).  Its own
#: answers say 1 (Other) with OtherResourceType, as ours do.
_VENDOR_TYPES = {32769: "console", 32771: "controller"}
#: Generic RASDs (CIM_ResourceAllocationSettingData) by ResourceType.
_BY_RESOURCE_TYPE = {3: "proc", 4: "mem", 10: "net", 13: "input", 17: "disk", 31: "disk",
                     14: "disk", 15: "disk", 16: "disk", 24: "graphics", **_VENDOR_TYPES}
_OTHER_TYPES = {"console": "console", "controller": "controller"}


def classify(classname: str, props: Props, family: str, where: str) -> DeviceKind:
    """The device kind a RASD instance of `classname` describes, or InvalidSetting."""
    prefix, _, base = classname.partition("_")
    if not base:
        raise InvalidSetting(where, f"class {classname!r} is not a resource allocation setting")
    kind = KIND_BY_RASD.get(base.lower())
    if kind is not None:
        if prefix.lower() != family.lower():
            raise InvalidSetting(where, f"class {classname} belongs to the {prefix} family, "
                                        f"not {family}")
    elif base.lower() == "resourceallocationsettingdata":
        rtype = props.get_("ResourceType")
        name = _BY_RESOURCE_TYPE.get(int(rtype)) if isinstance(rtype, int) else None
        if rtype == 1:
            other = str(props.get_("OtherResourceType") or "").lower()
            name = _OTHER_TYPES.get(other)
            if name is None:
                raise InvalidSetting(where, f"OtherResourceType {other!r} is not one of "
                                            f"{', '.join(_OTHER_TYPES)}")
        if name is None:
            what = " (a storage volume: create it with CreateResourceInPool)" \
                if rtype == 32768 else ""
            raise InvalidSetting(where, f"ResourceType {rtype!r}{what} is not a resource type "
                                        f"this service handles")
        kind = KIND_BY_NAME[name]
    else:
        raise InvalidSetting(where, f"class {classname} is not a resource allocation setting "
                                    f"this service handles")
    rtype = props.get_("ResourceType")
    if rtype is not None and int(rtype) != kind.resource_type and \
            not (kind.name == "disk" and int(rtype) in (14, 15, 16, 31)) and \
            _VENDOR_TYPES.get(int(rtype)) != kind.name:
        raise InvalidSetting(where, f"ResourceType {rtype} does not match {classname} "
                                    f"(ResourceType {kind.resource_type})")
    return kind


# -- writers the read-mostly mapping tables lack ---------------------------------------------

def _split_hostport(value: str) -> tuple[Optional[str], Optional[str]]:
    """'127.0.0.1:5900' / '[::1]:5900' / ':5900' / '0.0.0.0' -> (listen, port)."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host or None, rest[1:] if rest.startswith(":") else None
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        return host or None, port or None
    return value or None, None


def _write_graphics_address(el: Any, value: Any, ctx: Any) -> None:
    if value in (None, ""):
        for a in ("listen", "port", "autoport"):
            el.attrib.pop(a, None)
        return
    listen, port = _split_hostport(str(value))
    if port is not None:
        try:
            pnum = int(port)
        except ValueError:
            raise ValueError(f"port {port!r} is not a number") from None
        if pnum != -1 and not 0 < pnum < 65536:
            raise ValueError(f"port {pnum} is out of range")
        el.set("port", str(pnum))
        el.set("autoport", "yes" if pnum == -1 else "no")
    if listen is not None:
        el.set("listen", listen)
        node = el.find("listen")
        if node is not None and node.get("type") in ("address", None):
            node.set("type", "address")
            node.set("address", listen)


def _write_ipv6_only(el: Any, value: Any, ctx: Any) -> None:
    """IsIPv6Only: for VNC/SPICE, move a loopback (or unset) listen address to the
    loopback of the asked family; another address must be given as Address (it is
    not silently replaced).  For SDL (libvirt-cim): full screen."""
    if value is None:
        return
    want = bool(value)
    if el.get("type") == "sdl":
        el.set("fullscreen", "yes" if want else "no")
        return
    if el.get("type") not in ("vnc", "spice"):
        raise ValueError(f"applies to vnc and spice consoles, not {el.get('type')!r}")
    listen = (mapping.graphics_address(el).rpartition(":")[0]).strip("[]")
    if netaddr.is_ipv6_only(listen) == want:
        return
    if listen not in ("127.0.0.1", "::1", "localhost"):
        raise ValueError(f"the console listens on {listen}: give an "
                         f"{'IPv6' if want else 'IPv4'} listen address in Address")
    _write_graphics_address(el, "::1" if want else "127.0.0.1", ctx)


def _write_password(el: Any, value: Any, ctx: Any) -> None:
    if value == "********":
        return            # the placeholder read back: no change
    if value in (None, ""):
        el.attrib.pop("passwd", None)
    else:
        el.set("passwd", str(value))


def _write_console_path(el: Any, value: Any, ctx: Any) -> None:
    src = el.find("source")
    if value in (None, ""):
        if src is not None:
            el.remove(src)
        return
    if src is None:
        src = etree.Element("source")
        el.insert(0, src)
    src.attrib.clear()
    src.set("path", str(value))


_URL = re.compile(r"^(?P<proto>[a-z]+)://(?P<rest>.*)$")


def _write_console_url(mode: str):
    def write(el: Any, value: Any, ctx: Any) -> None:
        for src in list(el.iterfind("source")):
            if (src.get("mode") or "connect") == mode:
                el.remove(src)
        if value in (None, ""):
            return
        m = _URL.match(str(value))
        if not m:
            raise ValueError(f"{value!r} is not a URL (proto://host:port or file:///path)")
        proto, rest = m.group("proto"), m.group("rest")
        src = etree.Element("source")
        src.set("mode", mode)
        if proto == "file":
            el.set("type", "unix")
            src.set("path", "/" + rest.lstrip("/"))
        else:
            host, port = _split_hostport(rest)
            if not host or not port:
                raise ValueError(f"{value!r} needs a host and a port")
            el.set("type", "udp" if proto == "udp" else "tcp")
            src.set("host", host)
            src.set("service", port)
            if proto != "udp":
                prot = el.find("protocol")
                if prot is None:
                    prot = etree.SubElement(el, "protocol")
                prot.set("type", proto)
        el.insert(0, src)
    return write


def _write_direct_device(el: Any, value: Any, ctx: Any) -> None:
    if el.get("type") != "direct":
        if value is None:
            return
        raise ValueError("SourceDevice applies to NetworkType 'direct' only")
    if value:
        mapping.ensure_path(el, "source").set("dev", str(value))


#: Writers added to the mapping tables, per kind: {kind: {property: Field}}.
WRITERS: dict[str, dict[str, mapping.Field]] = {
    "graphics": {
        "Address": mapping.Computed(mapping.graphics_address, _write_graphics_address),
        "IsIPv6Only": mapping.Computed(mapping.graphics_ipv6_only, _write_ipv6_only),
        "Password": mapping.Computed(lambda el, ctx: "********" if el.get("passwd") else None,
                                     _write_password),
    },
    "console": {
        "SourcePath": mapping.Computed(mapping.CONSOLE["SourcePath"].read, _write_console_path),
        "ConnectURL": mapping.Computed(mapping.CONSOLE["ConnectURL"].read,
                                       _write_console_url("connect")),
        "BindURL": mapping.Computed(mapping.CONSOLE["BindURL"].read,
                                    _write_console_url("bind")),
    },
    "net": {
        "SourceDevice": mapping.Computed(mapping.NET["SourceDevice"].read, _write_direct_device),
    },
}

#: Descriptive properties of every RASD that never change the XML.
IGNORED = {"caption", "description", "elementname", "instanceid", "hostresource", "parent"}

#: Properties handled by the management code itself (not through a table).
_SPECIAL = {"disk": {"poolid", "virtualquantity", "allocationunits", "hostresource"},
            "net": {"poolid"},
            "mem": {"virtualquantity", "reservation", "limit", "allocationunits"},
            "proc": {"virtualquantity"}}


def table_for(kind: DeviceKind, element: Any) -> dict[str, mapping.Field]:
    """The mapping table of `kind` for `element`, with this module's writers."""
    table = dict(kind.table(element))
    table.update(WRITERS.get(kind.name, {}))
    return table


# -- comparing and writing --------------------------------------------------------------

def _norm(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)


def _same(a: Any, b: Any) -> bool:
    na, nb = _norm(a), _norm(b)
    if na == nb:
        return True
    # "" / [] (remove) against nothing there
    if na in ("", []) and nb in (None, "", []):
        return True
    if isinstance(na, str) and isinstance(nb, int) or isinstance(na, int) and isinstance(nb, str):
        return str(na) == str(nb)
    return False


def diff_props(table: Mapping[str, mapping.Field], element: Any, props: Props, ctx: Any,
               where: str, skip: Iterable[str] = ()) -> dict[str, Any]:
    """{property: new value} of the mapped properties whose value differs from `element`'s.

    Raises InvalidSetting for a differing property that cannot be written.
    """
    lower = {k.lower(): k for k in table}
    skip = {s.lower() for s in skip}
    defaults = getattr(props, "defaults", {})
    out: dict[str, Any] = {}
    for key, value in props.items():
        name = lower.get(key)
        if key in skip:
            continue
        if name is None:
            LOG.debug("%s: ignoring %s, which the mapping does not use", where,
                      getattr(props, "names", {}).get(key, key))
            continue
        if isinstance(value, list) and any(v is None for v in value):
            # NULL means "not given", which an entry of a list cannot be.
            raise InvalidSetting(where, f"{name} {value!r} has a NULL entry")
        f = table[name]
        current = f.read(element, ctx) if element is not None else None
        if key == "resourcetype" and not isinstance(value, bool) and \
                isinstance(value, int) and int(value) in _VENDOR_TYPES:
            value = 1   # libvirt-cim's vendor type of what its answers call Other (1)
        if _same(value, current):
            continue
        if not f.writable:
            if key in defaults and _same(value, defaults[key]):
                # The class default of a field the client cannot set: a CIM server
                # filled it in, the client did not ask for it.
                LOG.debug("%s: ignoring %s %r, the class default (it is %r)", where, name,
                          value, current)
                continue
            raise InvalidSetting(where, f"{name} {value!r} cannot be set (it is {current!r})")
        out[name] = value
    for alias, (main, agrees) in _ALIASES.items():
        if alias in out and main in out:
            if not agrees(out[alias], out[main]):
                raise InvalidSetting(where, f"{alias} {out[alias]!r} and {main} "
                                            f"{out[main]!r} disagree")
            del out[alias]                  # the fuller property says it all
    return out


#: Properties that say part of what another one says: {alias: (main, agrees(alias, main))}.
#: When a client changes both, they must agree, and the main one is written.
_ALIASES = {
    "BootDevice": ("BootDevices",
                   lambda one, order: bool(order) and str(order[0]) == str(one)),
}


def write_props(table: Mapping[str, mapping.Field], element: Any, changes: Mapping[str, Any],
                ctx: Any, where: str) -> None:
    """Write `changes` (from diff_props) into `element`; "" and [] remove."""
    for name, value in changes.items():
        if value == "" or value == []:
            value = None
        try:
            table[name].write(element, value, ctx)
        except (ValueError, TypeError) as exc:   # NotWritable is a ValueError
            raise InvalidSetting(where, f"{name} {changes[name]!r}: {exc}") from None


# -- identities ------------------------------------------------------------------------

def valid_name(name: Any, where: str, prop: str = "VirtualSystemIdentifier") -> str:
    """`name` if it can name a virtual system (:func:`validate.check_name`), else
    InvalidSetting naming `where` and `prop`."""
    try:
        return check_name(name, prop)
    except BadName as exc:
        raise InvalidSetting(where, str(exc)) from None


def random_mac(taken: Any, family: str = "KVM") -> str:
    """A MAC not in `taken`: 52:54:00 (QEMU's prefix) or 00:16:3e (Xen's), random tail."""
    prefix = "00:16:3e" if family.upper() == "XEN" else "52:54:00"
    rng = random.SystemRandom()
    for _ in range(1000):
        mac = f"{prefix}:{rng.randrange(256):02x}:{rng.randrange(256):02x}:{rng.randrange(256):02x}"
        if mac not in taken:
            return mac
    raise RuntimeError("no free MAC address found")


def host_macs(host: Host, exclude_uuid: Optional[str] = None) -> dict[str, str]:
    """{MAC (lower case): domain name} of every interface of every domain of `host`."""
    from .domain import domain_xml, list_domains
    out: dict[str, str] = {}
    for ref in list_domains(host):
        if ref.uuid == exclude_uuid:
            continue
        for inactive in (False, True):
            try:
                doc = domain_xml(ref, inactive)
            except DomainNotFound:
                # undefined meanwhile: its MACs are free.  Any other error fails the
                # request: a MAC that could not be read may be the one asked for.
                break
            for mac in doc.root.xpath("devices/interface/mac/@address"):
                out.setdefault(str(mac).lower(), ref.name)
    return out


def device_id_of(kind: DeviceKind, props: Props) -> Optional[str]:
    """The device id a RASD's properties name (before any element exists), if they do."""
    if kind.name == "disk":
        v = props.get_("VirtualDevice") or props.get_("MountPoint")
        return str(v) if v else None
    if kind.name == "net":
        v = props.get_("Address")
        return str(v).lower() if v else None
    if kind.name == "graphics":
        v = props.get_("ResourceSubType")
        return str(v) if v else None
    if kind.name == "input":
        t, b = props.get_("ResourceSubType"), props.get_("BusType")
        return f"{t}:{b}" if t and b else None
    if kind.name == "controller":
        t, i = props.get_("ResourceSubType"), props.get_("Index")
        return f"controller:{t}:{i}" if t and i is not None else None
    if kind.name in ("proc", "mem"):
        return kind.name
    return None


# -- memory --------------------------------------------------------------------------

def memory_kib(props: Props, where: str) -> tuple[Optional[int], Optional[int]]:
    """(current KiB, maximum KiB) a memory RASD asks for (None: not given).

    AllocationUnits (or VirtualQuantityUnits) KiloBytes, MegaBytes,
    GigaBytes, Bytes or the DSP0004 forms byte*2^10 ...; without units the
    quantities are bytes, as libvirt-cim read them.
    """
    # VirtualQuantityUnits "count" is the class default a CIM server fills in: not given.
    units = props.get_("AllocationUnits") or props.explicit("VirtualQuantityUnits") or "Bytes"
    factor = cim_unit_bytes(str(units))
    if factor is None:
        raise InvalidSetting(where, f"AllocationUnits {units!r} is not a unit of bytes "
                                    f"({CIM_UNIT_NAMES})")

    def conv(name: str) -> Optional[int]:
        v = props.get_(name)
        if v is None:
            return None
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise InvalidSetting(where, f"{name} {v!r} is not a number") from None
        if n < 0:
            raise InvalidSetting(where, f"{name} {v!r} is negative")
        return n * factor // 1024
    cur = conv("VirtualQuantity")
    if cur is None:
        cur = conv("Reservation")
    return cur, conv("Limit")


def numa_memory_kib(root: Any) -> Optional[int]:
    """The memory of a domain's NUMA cells (KiB), or None if it has none."""
    cells = root.findall("cpu/numa/cell")
    if not cells:
        return None
    total = 0
    for cell in cells:
        try:
            n = int(cell.get("memory") or 0)
        except ValueError:
            continue
        total += n * (libvirt_unit_bytes(cell.get("unit")) or 1024) // 1024
    return total


def apply_memory(doc: DomainXML, props: Props, where: str, host: Host, family: str,
                 reference: Optional[DomainXML] = None, new: bool = False) -> dict[str, int]:
    """Apply a memory RASD to `doc`; returns {'current': KiB, 'max': KiB} of what changed.

    `reference` is what the client saw (the live definition of a running
    system): only differing values count as changes.  A current size above
    the maximum raises the maximum with it unless Limit is given.
    """
    cur, mx = memory_kib(props, where)
    ref_root = (reference or doc).root
    old_cur = mapping.MEM["VirtualQuantity"].read(ref_root)
    old_max = mapping.MEM["Limit"].read(ref_root)
    changes: dict[str, int] = {}
    if new and cur is not None and mx is None:
        mx = cur
    if new and mx is not None and cur is None:
        cur = mx
    if cur is not None and (new or cur != old_cur):
        changes["current"] = cur
    if mx is not None and (new or mx != old_max):
        changes["max"] = mx
    if "current" in changes and "max" not in changes:
        pmax = mapping.MEM["Limit"].read(doc.root)
        if pmax is None or changes["current"] > pmax:
            changes["max"] = changes["current"]
    numa = numa_memory_kib(doc.root)
    if numa is not None and changes.get("max", numa) != numa:
        # libvirt takes the maximum from the cells and ignores <memory>: refuse, never
        # report a change that is not made
        why = (f"the maximum memory of a system with NUMA cells is the sum of the cells' "
               f"memory ({numa} KiB) and changes only with them")
        if mx is not None:
            raise InvalidSetting(where, f"Limit {changes['max']} KiB cannot be set: {why}")
        raise InvalidSetting(where, f"VirtualQuantity {changes['current']} KiB is above the "
                                    f"maximum, which cannot be raised: {why}")
    eff_cur = changes.get("current", mapping.MEM["VirtualQuantity"].read(doc.root))
    eff_max = changes.get("max", mapping.MEM["Limit"].read(doc.root))
    for key, prop in (("current", "VirtualQuantity"), ("max", "Limit")):
        if key in changes:
            try:
                limits.check(host, "mem", prop, changes[key], family)
            except limits.LimitError as exc:
                raise InvalidSetting(where, f"{exc} (KiB)") from None
    if eff_cur is not None and eff_max is not None and eff_cur > eff_max:
        raise InvalidSetting(where, f"VirtualQuantity {eff_cur} KiB is above Limit "
                                    f"{eff_max} KiB")
    if "max" in changes:
        mapping.MemoryKiB("memory").write(doc.root, changes["max"])
    if "current" in changes:
        mapping.MemoryKiB("currentMemory").write(doc.root, changes["current"])
    dump = props.get_("dumpCore")
    if dump is not None and mapping.MEM["dumpCore"].read(ref_root) != bool(dump):
        mapping.MEM["dumpCore"].write(doc.root, bool(dump))
    return changes


# -- devices -------------------------------------------------------------------------

def _bus_for_target(dev: str) -> Optional[str]:
    for prefix, bus in (("vd", "virtio"), ("sd", "scsi"), ("hd", "ide"), ("fd", "fdc"),
                        ("xvd", "xen"), ("ubd", "uml")):
        if dev.startswith(prefix):
            return bus
    return None


def _disk_format(path: str) -> str:
    """qcow2 if the local file starts with the qcow2 magic, else raw."""
    try:
        with open(path, "rb") as f:
            return "qcow2" if f.read(4) == b"QFI\xfb" else "raw"
    except OSError:
        return "raw"


def image_format(host: Host, path: Optional[str]) -> Optional[str]:
    """The driver type of a disk image read from the file, where the host's files are this
    machine's; None where it cannot be read here (a new disk then gets raw)."""
    return _disk_format(path) if path and host_is_local(host) else None


def host_path(host: Host, value: Any, where: str, prop: str = "Address") -> str:
    """A host path a client gave (disk source, shared directory), normalised, if it lies in
    the storage this service may use (:func:`validate.check_host_path`); else InvalidSetting
    that reads the same whether or not the path exists."""
    try:
        return check_host_path(host, value, prop)
    except PathNotAllowed as exc:
        raise InvalidSetting(where, str(exc)) from None


def host_is_local(host: Host) -> bool:
    """True if the host's files are this machine's files (so paths can be checked here):
    :attr:`Host.files_local`, the layer's one answer."""
    return host.files_local


def _pool_of_path(host: Host, path: str) -> Optional[tuple[str, Any]]:
    parent = os.path.dirname(path).rstrip("/")
    for name, target, obj in storage_pools(host):
        if target and target == parent:
            return name, obj
    return None


def _pool_id_name(pool_id: Any, prefix: str, what: str, where: str) -> str:
    """The <name> of a PoolID '<prefix>/<name>' ('0': the primordial pool)."""
    text = str(pool_id)
    if not text.startswith(f"{prefix}/") or len(text) <= len(prefix) + 1:
        raise InvalidSetting(where, f"PoolID {pool_id!r} is not a {prefix}/<{what}> id")
    return text.split("/", 1)[1]


def _disk_source(host: Host, props: Props, where: str, el: Any) -> None:
    """Set type and <source> of a new disk from Address and PoolID, checking they exist."""
    address = props.get_("Address")
    pool_id = props.get_("PoolID")
    pool_name = None
    if pool_id:
        pool_name = _pool_id_name(pool_id, "DiskPool", "pool", where)
        if pool_name != "0":
            pools = {n: o for n, _t, o in storage_pools(host)}
            if pool_name not in pools:
                raise InvalidSetting(where, f"PoolID {pool_id!r}: there is no storage pool "
                                            f"{pool_name!r}")
        else:
            pool_name = None           # the primordial pool: any path
    emulated = int(props.get_("EmulatedType", 0) or 0)
    if address in (None, ""):
        if emulated in (1, 2):
            return                     # an empty CD-ROM or floppy drive
        raise InvalidSetting(where, "Address (the disk's source) is missing")
    address = str(address)
    if pool_name and not address.startswith("/"):
        pools = {n: o for n, _t, o in storage_pools(host)}
        if host.ask(f"looking up volume {address!r}", pools[pool_name].storageVolLookupByName,
                    address, absent=STORAGE_GONE) is None:
            raise InvalidSetting(where, f"Address {address!r}: pool {pool_name!r} has no "
                                        f"volume of that name")
        el.set("type", "volume")
        src = etree.Element("source", pool=pool_name, volume=address)
        el.insert(0, src)
        return
    if not address.startswith("/"):
        raise InvalidSetting(where, f"Address {address!r} is not an absolute path (or a volume "
                                    f"name with a PoolID)")
    # Before anything looks at the path: nothing outside storage is used or even stat()ed.
    address = host_path(host, address, where)
    in_pool = _pool_of_path(host, address)
    if pool_name and (in_pool is None or in_pool[0] != pool_name):
        raise InvalidSetting(where, f"Address {address!r} is not in pool {pool_name!r}")
    dtype = "file"
    if in_pool is not None:
        if host.ask(f"looking up volume {address!r}", in_pool[1].storageVolLookupByName,
                    os.path.basename(address), absent=STORAGE_GONE) is None:
            raise InvalidSetting(where, f"Address {address!r}: pool {in_pool[0]!r} has no such "
                                        f"volume")
    elif host_is_local(host) and emulated in (0, 4):
        try:
            st = os.stat(address)
        except OSError as exc:
            raise InvalidSetting(where, f"Address {address!r} cannot be used: "
                                        f"{exc.strerror}") from None
        if stat.S_ISBLK(st.st_mode):
            dtype = "block"
    el.set("type", dtype)
    src = etree.Element("source")
    src.set("dev" if dtype == "block" else "file", address)
    el.insert(0, src)


#: Console properties that name a host file, device or socket libvirtd opens as root
#: (SourcePath of every source type but pty, whose path libvirt assigns; file:// URLs).
_CONSOLE_PATHS = ("SourcePath", "ConnectURL", "BindURL")


def check_console_paths(host: Host, el: Any, changes: Mapping[str, Any], where: str) -> None:
    """Refuse console sources outside the storage this service may use: a guest's serial
    port written to /etc/passwd, or connected to libvirtd's own socket."""
    stype = changes.get("SourceType")
    words = {v: k for k, v in mapping.CHARDEV_SOURCE_TYPES.items()}
    ctype = words.get(stype) if stype is not None else el.get("type", "pty")
    for prop in _CONSOLE_PATHS:
        value = changes.get(prop)
        if value in (None, ""):
            continue
        if prop == "SourcePath":
            if ctype != "pty":
                host_path(host, value, where, prop)
            continue
        m = _URL.match(str(value))
        if m and m.group("proto") == "file":
            host_path(host, "/" + m.group("rest").lstrip("/"), where, prop)


def network_name(host: Host, props: Props, where: str) -> str:
    pool_id = props.get_("PoolID")
    name = props.get_("NetworkName")
    if pool_id:
        pname = _pool_id_name(pool_id, "NetworkPool", "network", where)
        if pname != "0":
            if name and name != pname:
                raise InvalidSetting(where, f"NetworkName {name!r} and PoolID {pool_id!r} "
                                            f"disagree")
            name = pname
    conn = host.conn()
    if not name:
        with host.guard("listing networks"):
            nets = [n.name() for n in conn.listAllNetworks(0)]
        if not nets:
            raise InvalidSetting(where, "NetworkType 'network' needs a network, and the host "
                                        "has none")
        name = "default" if "default" in nets else sorted(nets)[0]
        return name
    if host.ask(f"looking up network {name!r}", conn.networkLookupByName, str(name),
                absent=NETWORK_GONE) is None:
        what = f"PoolID {pool_id!r}" if pool_id else f"NetworkName {name!r}"
        raise InvalidSetting(where, f"{what}: there is no network {name!r}")
    return str(name)


def check_device(host: Host, kind: DeviceKind, changes: Mapping[str, Any], where: str,
                 family: str) -> None:
    """Check enumerated values against the allocation limits (an empty string is no
    value: it removes what the property describes, docs/lifecycle.md)."""
    for prop, value in changes.items():
        if isinstance(value, str) and value == "":
            continue
        try:
            limits.check(host, kind.name, prop, value, family)
        except limits.LimitError as exc:
            raise InvalidSetting(where, str(exc)) from None


_SKELETON = {
    "disk": "<disk device='disk'/>",
    "net": "<interface/>",
    "graphics": "<graphics/>",
    "input": "<input/>",
    "console": "<console type='pty'/>",
    "controller": "<controller/>",
}


def new_device(host: Host, family: str, doc: DomainXML, kind: DeviceKind, props: Props,
               where: str, taken_macs: Mapping[str, str]) -> Any:
    """Build the element of a new device of `kind` from a RASD (not yet in any document).

    Defaults: disk bus from the target name, driver qemu with the image
    format for KVM; NIC MAC generated (unique on the host), type network
    on the host's default network, model virtio for KVM; graphics VNC on
    127.0.0.1 with an automatic port; input mouse on PS/2 (tablet on USB);
    console a pty on serial port 0; controller index the next free one.
    """
    el = etree.fromstring(_SKELETON[kind.name])
    p = Props(props)
    if kind.name == "disk":
        if p.get_("EmulatedType") == 3 or (family.upper() == "LXC" and p.has("MountPoint")):
            el = etree.fromstring("<filesystem type='mount'/>")
            if not (p.get_("MountPoint") or p.get_("VirtualDevice")):
                raise InvalidSetting(where, "MountPoint (the target directory) is missing")
            if not p.get_("Address"):
                raise InvalidSetting(where, "Address (the source directory) is missing")
            etree.SubElement(el, "source", dir=host_path(host, p.get_("Address"), where))
            etree.SubElement(el, "target", dir=str(p.get_("MountPoint") or
                                                   p.get_("VirtualDevice")))
            p.pop_("Address")
            p.pop_("MountPoint")
            p.pop_("VirtualDevice")
        else:
            dev = p.get_("VirtualDevice")
            if not dev or not re.match(r"^[a-z]+[a-z0-9]*$", str(dev)):
                raise InvalidSetting(where, f"VirtualDevice {dev!r} is missing or not a device "
                                            f"name such as vda")
            emulated = p.get_("EmulatedType", 0)
            if emulated not in (0, 1, 2, 4):
                raise InvalidSetting(where, f"EmulatedType {emulated!r} is not one of 0 (disk), "
                                            f"1 (CD-ROM), 2 (floppy), 3 (file system), 4 (LUN)")
            bus = p.get_("BusType") or _bus_for_target(str(dev))
            if bus is None:
                raise InvalidSetting(where, f"BusType is missing and VirtualDevice {dev!r} "
                                            f"does not imply one")
            p.put("BusType", bus)
            _disk_source(host, p, where, el)
            p.pop_("Address")
            if family.upper() == "KVM" and not p.has("DriverName"):
                p.put("DriverName", "qemu")
            if family.upper() == "KVM" and not p.has("DriverType"):
                src = el.find("source")
                path = src.get("file") if src is not None else None
                p.put("DriverType", image_format(host, path) or "raw")
    elif kind.name == "net":
        mac = p.get_("Address")
        if mac is None:
            mac = random_mac(taken_macs, family)
        mac = str(mac).lower()
        if not MAC_RE.match(mac):
            raise InvalidSetting(where, f"Address {mac!r} is not a MAC address")
        if int(mac.split(":")[0], 16) & 1:
            raise InvalidSetting(where, f"Address {mac!r} is a multicast MAC address")
        if mac in taken_macs:
            raise InvalidSetting(where, f"Address {mac!r} is already used by "
                                        f"{_owner(taken_macs, mac)}")
        p.put("Address", mac)
        ntype = str(p.get_("NetworkType") or "network")
        check_device(host, kind, {"NetworkType": ntype}, where, family)
        el.set("type", ntype)
        if ntype == "network":
            p.put("NetworkName", network_name(host, p, where))
        elif ntype == "bridge":
            if not p.get_("NetworkName"):
                raise InvalidSetting(where, "NetworkName (the bridge) is missing for "
                                            "NetworkType 'bridge'")
        elif ntype == "direct":
            dev = p.get_("SourceDevice") or p.get_("NetworkName")
            if not dev:
                raise InvalidSetting(where, "SourceDevice (the host interface) is missing for "
                                            "NetworkType 'direct'")
            p.pop_("NetworkName")
            p.put("SourceDevice", dev)
        p.pop_("PoolID")
        p.pop_("NetworkType")
        if family.upper() == "KVM" and not p.has("ResourceSubType"):
            p.put("ResourceSubType", "virtio")
    elif kind.name == "graphics":
        gtype = str(p.get_("ResourceSubType") or "vnc")
        check_device(host, kind, {"ResourceSubType": gtype}, where, family)
        el.set("type", gtype)
        p.pop_("ResourceSubType")
        if gtype in ("vnc", "spice"):
            # IsIPv6Only picks the loopback address when Address names no host; an
            # address the client gives wins (libvirt-cim, cimtest 02_ipv6_support).
            loopback = "::1" if p.get_("IsIPv6Only") else "127.0.0.1"
            listen, port = _split_hostport(str(p.get_("Address") or ""))
            _write_graphics_address(el, netaddr.format_hostport(listen or loopback,
                                                                port or "-1"), None)
            p.pop_("Address")
            p.pop_("IsIPv6Only")
    elif kind.name == "input":
        itype = str(p.get_("ResourceSubType") or "mouse")
        bus = p.get_("BusType") or ("usb" if itype == "tablet" else "ps2")
        check_device(host, kind, {"ResourceSubType": itype, "BusType": bus}, where, family)
        el.set("type", itype)
        el.set("bus", str(bus))
        p.pop_("ResourceSubType")
        p.pop_("BusType")
    elif kind.name == "console":
        st = p.get_("SourceType")
        if st is None:
            st = 9 if p.get_("BindURL") and str(p.get_("BindURL")).startswith("file:") else \
                8 if p.get_("BindURL") or p.get_("ConnectURL") else 2
        words = {v: k for k, v in mapping.CHARDEV_SOURCE_TYPES.items()}
        if st not in words:
            raise InvalidSetting(where, f"SourceType {st!r} is not one of "
                                        f"{sorted(words)}")
        el.set("type", words[st])
        p.pop_("SourceType")
        target = etree.SubElement(el, "target")
        ttype = p.get_("TargetType") or ("lxc" if family.upper() == "LXC" else "serial")
        check_device(host, kind, {"TargetType": ttype}, where, family)
        target.set("type", str(ttype))
        ports = [int(x) for x in doc.root.xpath("devices/console/target/@port") if x.isdigit()]
        target.set("port", str(max(ports) + 1 if ports else 0))
        p.pop_("TargetType")
    elif kind.name == "controller":
        ctype = p.get_("ResourceSubType")
        if not ctype:
            raise InvalidSetting(where, "ResourceSubType (the controller type) is missing")
        check_device(host, kind, {"ResourceSubType": ctype}, where, family)
        el.set("type", str(ctype))
        index = p.get_("Index")
        if index is None:
            used = [int(x) for x in doc.root.xpath(f"devices/controller[@type='{ctype}']/@index")
                    if str(x).isdigit()]
            index = max(used) + 1 if used else 0
        el.set("index", str(int(index)))
        p.pop_("ResourceSubType")
        p.pop_("Index")
    aprops, avalues = p.pop_("AddressProperties"), p.pop_("AddressValues")
    if aprops or avalues:
        if not aprops or not avalues or len(aprops) != len(avalues) or \
                None in aprops or None in avalues:
            raise InvalidSetting(where, f"AddressProperties {aprops!r} and AddressValues "
                                        f"{avalues!r} must be lists of the same length, "
                                        f"without NULL entries")
        addr = etree.SubElement(el, "address")
        for k, v in zip(aprops, avalues, strict=True):   # lengths checked above
            addr.set(str(k), str(v))
    table = table_for(kind, el)
    skip = _SPECIAL.get(kind.name, set()) | IGNORED
    changes = diff_props(table, el,
                         Props({k: v for k, v in p.items() if k not in skip}, p.defaults),
                         doc.context(), where)
    changes = {k: v for k, v in changes.items() if v not in ("", [])}
    check_device(host, kind, changes, where, family)
    if kind.name == "console":
        check_console_paths(host, el, changes, where)
    write_props(table, el, changes, doc.context(), where)
    return el


def _owner(macs: Any, mac: str) -> str:
    if isinstance(macs, dict):
        return repr(macs.get(mac))
    return "another device"
