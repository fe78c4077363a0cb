"""The graphics kind: a ``<graphics>`` (devid: its type, ``vnc``), GraphicsRASD,
DisplayController, the GraphicsPool."""

from __future__ import annotations

from typing import Any, Optional

from ...schema.valuemaps import CIM_ResourceAllocationSettingData
from ...virt import netaddr
from ...virt.mapping import Attr, Computed, Const, Field
from ...virt.netaddr import format_hostport, is_ipv6_only
from ...virt.props import Props
from ...virt.elements import ElementKind
from .base import BuildEnv, DeviceKind, LimitEnv, Limits, PoolKind, container_guest

__all__ = ["KIND", "ELEMENT", "GRAPHICS", "graphics_address", "graphics_ipv6_only", "split_hostport"]


# -- the libvirt facts (the ElementKind the libvirt layer scans with) -----------------


def _default(root: Any, family: str, given: set[str]) -> Optional[str]:
    """libvirt-cim's default for a new guest that has neither graphics nor a console: VNC
    on loopback with an automatic port (its clients count a new guest's devices,
    docs/compat.md, "Default devices")."""
    if container_guest(root, family) or given & {"graphics", "console"} or \
            root.find("devices/graphics") is not None or root.find("devices/console") is not None:
        return None
    return "<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>"


ELEMENT = ElementKind("graphics", ("graphics",), lambda el: el.get("type"),
                      skeleton="<graphics/>",
                      default=_default)


_RT = CIM_ResourceAllocationSettingData.ResourceType

def _graphics_listen(el):
    listen = el.get("listen")
    if listen is None:
        node = el.find("listen")
        if node is not None:
            listen = node.get("address") or node.get("socket")
    return listen


def graphics_address(el, ctx=None):
    """libvirt-cim's graphics Address: 'host:port' for VNC/SPICE ('[::1]:5900' for an
    IPv6 listen address), the type for SDL."""
    gtype = el.get("type") or ""
    if gtype in ("sdl", "egl-headless", "dbus"):
        return gtype
    listen = (_graphics_listen(el) or "127.0.0.1").strip("[]")
    return format_hostport(listen, el.get("port") or "-1")


def graphics_ipv6_only(el, ctx=None):
    """IsIPv6Only: whether the console listens on IPv6 only (libvirt-cim: for SDL,
    whether it is full screen)."""
    gtype = el.get("type") or ""
    if gtype == "sdl":
        fs = el.get("fullscreen")
        return None if fs is None else fs == "yes"
    if gtype not in ("vnc", "spice"):
        return None
    return is_ipv6_only((_graphics_listen(el) or "127.0.0.1").strip("[]"))


def _graphics_password(el, ctx=None):
    return "********" if el.get("passwd") else None


#: {P}_GraphicsResourceAllocationSettingData for <graphics>.
GRAPHICS: dict[str, Field] = {
    "ResourceType": Const(_RT.Graphics_controller),
    "ResourceSubType": Attr("", "type"),                          # graphics@type
    "PoolID": Const("GraphicsPool/0"),                            # its pool (issue 5)
    "Address": Computed(graphics_address),                        # listen:port
    "KeyMap": Attr("", "keymap"),
    "Password": Computed(_graphics_password),
    "IsIPv6Only": Computed(graphics_ipv6_only),
    "AutomaticAllocation": Const(True),
}


def _video_processor(el, ctx=None):
    gtype = el.get("type") or ""
    addr = graphics_address(el)
    return gtype if addr == gtype else f"{gtype}/{addr}"


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
    listen = (graphics_address(el).rpartition(":")[0]).strip("[]")
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


#: Public name: console URLs are host:port too.
split_hostport = _split_hostport


def _id_from_props(props: Props) -> Optional[str]:
    v = props.get_("ResourceSubType")
    return str(v) if v else None


def _build(env: BuildEnv, el: Any, p: Props) -> Any:
    """Defaults: VNC on 127.0.0.1 (::1 with IsIPv6Only) with an automatic port."""
    gtype = str(p.get_("ResourceSubType") or "vnc")
    env.check(KIND, {"ResourceSubType": gtype})
    el.set("type", gtype)
    p.pop_("ResourceSubType")
    if gtype in ("vnc", "spice"):
        # IsIPv6Only picks the loopback address when Address names no host; an
        # address the client gives wins (as libvirt-cim did).
        loopback = "::1" if p.get_("IsIPv6Only") else "127.0.0.1"
        listen, port = _split_hostport(str(p.get_("Address") or ""))
        _write_graphics_address(el, netaddr.format_hostport(listen or loopback,
                                                            port or "-1"), None)
        p.pop_("Address")
        p.pop_("IsIPv6Only")
    return el



_GRAPHICS = ("vnc", "spice", "sdl", "egl-headless", "dbus")


def _limits(env: LimitEnv) -> Limits:
    return Limits("graphics", values={
        "ResourceSubType": env.enum("devices/graphics", "type", _GRAPHICS)})


KIND = DeviceKind(
    ELEMENT, "GraphicsResourceAllocationSettingData", "DisplayController", _RT.Graphics_controller,
    {"*": GRAPHICS},
    device_table={"VideoProcessor": Computed(_video_processor)},
    writers={
        "Address": Computed(graphics_address, _write_graphics_address),
        "IsIPv6Only": Computed(graphics_ipv6_only, _write_ipv6_only),
        "Password": Computed(lambda el, ctx: "********" if el.get("passwd") else None,
                             _write_password),
    },
    build=_build,
    id_from_props=_id_from_props,
    limits=_limits,
    pool=PoolKind("graphics", "GraphicsPool", 24, "count", "Graphics devices", "Graphics",
                  sharing=2))
