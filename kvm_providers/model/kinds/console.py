"""The console kind: a ``<console>`` (devid ``charconsole:<port>``), ConsoleRASD
(ResourceType 1, OtherResourceType console), ConsoleDisplayController; no pool."""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional

from lxml import etree

from ...schema.valuemaps import (CIM_ResourceAllocationSettingData,
                                 P_CharacterResourceAllocationSettingData)
from ...virt.connection import Host
from ...virt.mapping import Attr, Computed, Const, Enum, Field
from ...virt.props import InvalidSetting, Props, host_path
from ...virt.elements import ElementKind
from .base import BuildEnv, DeviceKind, LimitEnv, Limits, container_guest
from .graphics import split_hostport as _split_hostport

__all__ = ["KIND", "ELEMENT", "CONSOLE", "CHARDEV_SOURCE_TYPES", "check_console_paths"]


# -- the libvirt facts (the ElementKind the libvirt layer scans with) -----------------


def _devid(el: Any) -> str:
    """``charconsole:<target port>`` (port 0 without one)."""
    tgt = next(el.iterchildren("target"), None)     # find() without ElementPath
    port = tgt.get("port") if tgt is not None else None
    return f"charconsole:{port if port is not None else 0}"


def _alias(root: Any, console: Any) -> Optional[Any]:
    """The <serial> that libvirt shows as `console` (the first console, of target type serial).

    libvirt keeps one device for both: on definition, console 0 is taken from
    serial 0, so a change to that console must be made to the serial port too.
    """
    consoles = root.findall("devices/console")
    if not consoles or consoles[0] is not console:
        return None
    t = console.find("target")
    if t is not None and t.get("type") not in (None, "serial"):
        return None
    serials = root.findall("devices/serial")
    return serials[0] if serials else None


def _default(root: Any, family: str, given: set[str]) -> Optional[str]:
    """A new container without a console gets one (its init's terminal)."""
    if not container_guest(root, family) or "console" in given or \
            root.find("devices/console") is not None:
        return None
    return "<console type='pty'><target type='lxc' port='0'/></console>"


ELEMENT = ElementKind("console", ("console",), _devid, skeleton="<console type='pty'/>",
                      alias=_alias, default=_default)


_RT = CIM_ResourceAllocationSettingData.ResourceType

_SOURCE = P_CharacterResourceAllocationSettingData.SourceType


#: {P}_CharacterResourceAllocationSettingData.SourceType of libvirt's chardev source types.
CHARDEV_SOURCE_TYPES = {"null": _SOURCE.null, "vc": _SOURCE.vc, "pty": _SOURCE.pty,
                        "dev": _SOURCE.dev, "file": _SOURCE.file, "pipe": _SOURCE.pipe,
                        "stdio": _SOURCE.stdio, "udp": _SOURCE.udp, "tcp": _SOURCE.tcp,
                        "unix": _SOURCE.unix, "spicevmc": _SOURCE.spicevmc}


def _console_url(el, mode):
    ctype = el.get("type")
    for src in el.iterfind("source"):
        smode = src.get("mode") or ("connect" if ctype == "tcp" else None)
        if ctype == "unix":
            if src.get("mode") == mode and src.get("path"):
                p = src.get("path")
                return f"file://{p}" if p.startswith("/") else f"file:///{p}"
        elif ctype in ("tcp", "udp") and smode == mode:
            host, service = src.get("host"), src.get("service")
            if host is None or ":" in host:
                continue
            proto = "udp" if ctype == "udp" else (
                (el.find("protocol").get("type") if el.find("protocol") is not None
                 else None) or "raw")
            return f"{proto}://{host}:{service}" if service else f"{proto}://{host}"
    return None


def _console_source_path(el, ctx=None):
    if el.get("type") in ("pty", "dev", "file", "pipe"):
        src = el.find("source")
        if src is not None and src.get("path"):
            return src.get("path")
        return el.get("tty") if el.get("type") == "pty" else None
    return None


#: {P}_ConsoleResourceAllocationSettingData for <console>.
CONSOLE: dict[str, Field] = {
    "ResourceType": Const(_RT.Other),
    "OtherResourceType": Const("console"),
    # A source type the ValueMap lacks is NULL: libvirt-cim's 32768 ("unknown") is
    # outside its own ValueMap (0..10).
    "SourceType": Enum(Attr("", "type"), CHARDEV_SOURCE_TYPES),
    "SourcePath": Computed(_console_source_path),
    "TargetType": Attr("target", "type"),
    "BindURL": Computed(lambda el, ctx: _console_url(el, "bind")),
    "ConnectURL": Computed(lambda el, ctx: _console_url(el, "connect")),
    "AutomaticAllocation": Const(True),
}



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


#: Console properties that name a host file, device or socket libvirtd opens as root
#: (SourcePath of every source type but pty, whose path libvirt assigns; file:// URLs).
_CONSOLE_PATHS = ("SourcePath", "ConnectURL", "BindURL")


def check_console_paths(host: Host, el: Any, changes: Mapping[str, Any], where: str) -> None:
    """Refuse console sources outside the storage this service may use: a guest's serial
    port written to /etc/passwd, or connected to libvirtd's own socket."""
    stype = changes.get("SourceType")
    words = {v: k for k, v in CHARDEV_SOURCE_TYPES.items()}
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


def _build(env: BuildEnv, el: Any, p: Props) -> Any:
    """Defaults: a pty on the next free serial port (lxc target for containers)."""
    where = env.where
    st = p.get_("SourceType")
    if st is None:
        st = 9 if p.get_("BindURL") and str(p.get_("BindURL")).startswith("file:") else \
            8 if p.get_("BindURL") or p.get_("ConnectURL") else 2
    words = {v: k for k, v in CHARDEV_SOURCE_TYPES.items()}
    if st not in words:
        raise InvalidSetting(where, f"SourceType {st!r} is not one of "
                                    f"{sorted(words)}")
    el.set("type", words[st])
    p.pop_("SourceType")
    target = etree.SubElement(el, "target")
    ttype = p.get_("TargetType") or ("lxc" if env.family.upper() == "LXC" else "serial")
    env.check(KIND, {"TargetType": ttype})
    target.set("type", str(ttype))
    ports = [int(x) for x in env.doc.root.xpath("devices/console/target/@port")
             if x.isdigit()]
    target.set("port", str(max(ports) + 1 if ports else 0))
    p.pop_("TargetType")
    return el




_CONSOLE_TARGETS = ("serial", "virtio", "xen", "lxc", "openvz", "sclp", "sclplm")


def _limits(env: LimitEnv) -> Limits:
    return Limits("console", values={"TargetType": _CONSOLE_TARGETS})


KIND = DeviceKind(
    ELEMENT, "ConsoleResourceAllocationSettingData", "ConsoleDisplayController", _RT.Other,
    {"*": CONSOLE},
    device_table={"VideoProcessor": Attr("", "type")},
    writers={
        "SourcePath": Computed(CONSOLE["SourcePath"].read, _write_console_path),
        "ConnectURL": Computed(CONSOLE["ConnectURL"].read, _write_console_url("connect")),
        "BindURL": Computed(CONSOLE["BindURL"].read, _write_console_url("bind")),
    },
    other_resource_type="console",
    vendor_type=32769,
    build=_build,
    check_changes=check_console_paths,
    limits=_limits)
