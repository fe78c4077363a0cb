"""The input kind: an ``<input>`` (devid ``<type>:<bus>``, ``tablet:usb``), InputRASD,
PointingDevice, the InputPool."""

from __future__ import annotations

from typing import Any, Optional

from ...schema.valuemaps import CIM_PointingDevice, CIM_ResourceAllocationSettingData
from ...virt.mapping import Attr, Computed, Const, Field
from ...virt.props import Props
from ...virt.elements import ElementKind
from .base import COMMON_DEVICE, BuildEnv, DeviceKind, LimitEnv, Limits, PoolKind, container_guest

__all__ = ["KIND", "ELEMENT", "INPUT", "input_caption"]


# -- the libvirt facts (the ElementKind the libvirt layer scans with) -----------------


def _devid(el: Any) -> Optional[str]:
    """``<type>:<bus>`` (the type alone without a bus)."""
    t, b = el.get("type"), el.get("bus")
    if t is None:
        return None
    return f"{t}:{b}" if b else t


def _default(root: Any, family: str, given: set[str]) -> Optional[str]:
    """libvirt-cim's default for a new guest with graphics and no input: a PS/2 mouse."""
    if container_guest(root, family) or "input" in given or \
            root.find("devices/input") is not None or root.find("devices/graphics") is None:
        return None
    return "<input type='mouse' bus='ps2'/>"


ELEMENT = ElementKind("input", ("input",), _devid, skeleton="<input/>",
                      default=_default)


_RT = CIM_ResourceAllocationSettingData.ResourceType
_COMMON_DEVICE = COMMON_DEVICE

_INPUT_TYPES = {"mouse": "Mouse", "tablet": "Tablet", "keyboard": "Keyboard",
                "passthrough": "Passthrough", "evdev": "Evdev"}


_INPUT_BUSES = {"usb": "USB", "ps2": "PS2", "xen": "Xen", "virtio": "Virtio"}


def input_caption(el, ctx=None):
    """libvirt-cim's input caption, e.g. 'USB Tablet', 'PS2 Mouse'."""
    t = _INPUT_TYPES.get(el.get("type") or "", "Unknown device type")
    b = _INPUT_BUSES.get(el.get("bus") or "", "Unknown bus")
    return f"{b} {t}"


#: {P}_InputResourceAllocationSettingData for <input>.
INPUT: dict[str, Field] = {
    "ResourceType": Const(_RT.I_O_Device),
    "ResourceSubType": Attr("", "type"),
    "BusType": Attr("", "bus"),
    "PoolID": Const("InputPool/0"),
    "Caption": Computed(input_caption),
    **_COMMON_DEVICE,
}


def _pointing_type(el, ctx=None):
    pt = CIM_PointingDevice.PointingType
    return pt.Mouse if el.get("type") in ("mouse", "tablet") else pt.Unknown



def _id_from_props(props: Props) -> Optional[str]:
    t, b = props.get_("ResourceSubType"), props.get_("BusType")
    return f"{t}:{b}" if t and b else None


def _build(env: BuildEnv, el: Any, p: Props) -> Any:
    """Defaults: a mouse on PS/2 (a tablet on USB)."""
    itype = str(p.get_("ResourceSubType") or "mouse")
    bus = p.get_("BusType") or ("usb" if itype == "tablet" else "ps2")
    env.check(KIND, {"ResourceSubType": itype, "BusType": bus})
    el.set("type", itype)
    el.set("bus", str(bus))
    p.pop_("ResourceSubType")
    p.pop_("BusType")
    return el



_LIMIT_TYPES = ("mouse", "tablet", "keyboard")
_LIMIT_BUSES = ("ps2", "usb", "virtio", "xen")


def _limits(env: LimitEnv) -> Limits:
    return Limits("input", values={"ResourceSubType": _LIMIT_TYPES, "BusType": _LIMIT_BUSES})


KIND = DeviceKind(
    ELEMENT, "InputResourceAllocationSettingData", "PointingDevice", _RT.I_O_Device,
    {"*": INPUT},
    device_table={"PointingType": Computed(_pointing_type), "Caption": Computed(input_caption)},
    build=_build,
    id_from_props=_id_from_props,
    limits=_limits,
    pool=PoolKind("input", "InputPool", 13, "count", "Input devices", "Input", sharing=2))
