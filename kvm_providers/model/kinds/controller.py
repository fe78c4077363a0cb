"""The controller kind: a ``<controller>`` (devid ``controller:<type>:<index>``),
ControllerRASD (ResourceType 1, OtherResourceType controller), Controller, the
ControllerPool."""

from __future__ import annotations

from typing import Any, Optional

from ...schema.valuemaps import CIM_Controller, CIM_ResourceAllocationSettingData
from ...virt.mapping import Attr, Computed, Const, Field
from ...virt.props import InvalidSetting, Props
from ...virt.elements import ElementKind
from .base import COMMON_DEVICE, BuildEnv, DeviceKind, LimitEnv, Limits, PoolKind

__all__ = ["KIND", "ELEMENT", "CONTROLLER", "CONTROLLER_PROTOCOLS"]


# -- the libvirt facts (the ElementKind the libvirt layer scans with) -----------------


def _devid(el: Any) -> Optional[str]:
    """``controller:<type>:<index>`` (index 0 without one); None without a type."""
    t = el.get("type")
    return f"controller:{t}:{el.get('index') or '0'}" if t else None


def _parent_of(el: Any) -> Optional[str]:
    """The id of the controller a device hangs off by its <address>: a drive address on an
    IDE, SCSI, SATA or floppy bus, a USB or a PCI address (None for others)."""
    addr = el.find("address")
    if addr is None:
        return None
    atype = addr.get("type")
    if atype == "drive":
        bus = None
        tgt = el.find("target")
        if tgt is not None:
            bus = tgt.get("bus")
        if bus not in ("ide", "scsi", "sata", "fdc"):
            return None
        devid = f"controller:{bus}:{addr.get('controller') or '0'}"
    elif atype == "usb":
        devid = f"controller:usb:{addr.get('bus') or '0'}"
    elif atype == "pci":
        try:
            devid = f"controller:pci:{int(addr.get('bus') or '0', 0)}"
        except ValueError:
            return None
    else:
        return None
    return devid


ELEMENT = ElementKind("controller", ("controller",), _devid, skeleton="<controller/>",
                      parent_of=_parent_of)


_RT = CIM_ResourceAllocationSettingData.ResourceType
_COMMON_DEVICE = COMMON_DEVICE

_PROTOCOL = CIM_Controller.ProtocolSupported


#: CIM_Controller.ProtocolSupported for libvirt controller types (libvirt-cim's table).
#: libvirt-cim gave ccid 32678 (meant as 32768) and virtio-serial 32769, values
#: outside the class's ValueMap ("1".."48", libvirt-cim's MOF too): they are 1
#: (Other) here, like every other type, with the type in ProtocolDescription.
CONTROLLER_PROTOCOLS = {"ide": _PROTOCOL.IDE, "fdc": _PROTOCOL.Flexible_Diskette,
                        "scsi": _PROTOCOL.SCSI_Serial_Storage_Architecture,
                        "sata": _PROTOCOL.Serial_ATA, "pci": _PROTOCOL.PCI,
                        "usb": _PROTOCOL.Universal_Serial_Bus}


#: {P}_ControllerResourceAllocationSettingData for <controller>.
CONTROLLER: dict[str, Field] = {
    "ResourceType": Const(_RT.Other),
    "OtherResourceType": Const("controller"),
    "ResourceSubType": Attr("", "type"),
    "PoolID": Const("ControllerPool/0"),
    "Index": Attr("", "index", "int"),
    "Model": Attr("", "model"),
    "Ports": Attr("", "ports"),
    "Vectors": Attr("", "vectors"),
    "Queues": Attr("driver", "queues"),
    **_COMMON_DEVICE,
}


def _protocol_supported(el, ctx=None):
    return CONTROLLER_PROTOCOLS.get(el.get("type") or "", _PROTOCOL.Other)


def _protocol_description(el, ctx=None):
    """The model; for a type without its own ProtocolSupported (Other), else the type."""
    model = el.get("model")
    if model is not None:
        return model
    ctype = el.get("type")
    return ctype if ctype and ctype not in CONTROLLER_PROTOCOLS else None



def _id_from_props(props: Props) -> Optional[str]:
    t, i = props.get_("ResourceSubType"), props.get_("Index")
    return f"controller:{t}:{i}" if t and i is not None else None


def _unique(el: Any) -> Optional[tuple[Any, str]]:
    """Two controllers of a domain cannot share type and index."""
    t, i = el.get("type"), el.get("index") or "0"
    return (t, i), f"controller {t} index {i} already exists in"


def _build(env: BuildEnv, el: Any, p: Props) -> Any:
    """Defaults: the next free index of the type."""
    ctype = p.get_("ResourceSubType")
    if not ctype:
        raise InvalidSetting(env.where, "ResourceSubType (the controller type) is missing")
    env.check(KIND, {"ResourceSubType": ctype})
    el.set("type", str(ctype))
    index = p.get_("Index")
    if index is None:
        used = [int(x) for x in env.doc.root.xpath(
            f"devices/controller[@type='{ctype}']/@index") if str(x).isdigit()]
        index = max(used) + 1 if used else 0
    el.set("index", str(int(index)))
    p.pop_("ResourceSubType")
    p.pop_("Index")
    return el


_CONTROLLERS = ("ide", "fdc", "scsi", "sata", "usb", "ccid", "virtio-serial", "pci", "xenbus",
                "isa")


def _limits(env: LimitEnv) -> Limits:
    return Limits("controller", values={"ResourceSubType": _CONTROLLERS})


KIND = DeviceKind(
    ELEMENT, "ControllerResourceAllocationSettingData", "Controller", _RT.Other,
    {"*": CONTROLLER},
    device_table={"ProtocolSupported": Computed(_protocol_supported),
                  "ProtocolDescription": Computed(_protocol_description)},
    other_resource_type="controller",
    vendor_type=32771,
    build=_build,
    id_from_props=_id_from_props,
    limits=_limits,
    unique=_unique,
    pool=PoolKind("controller", "ControllerPool", 1, "count", "Bus controllers",
                  "Controller", sharing=2, other_resource_type="controller"))
