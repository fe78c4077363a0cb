"""The watchdog kind: a ``<watchdog>`` (devid ``watchdog``), WatchdogRASD (ResourceType 1,
OtherResourceType watchdog), Watchdog device; no pool.

``<watchdog model='i6300esb' action='reset'/>``: the model is
ResourceSubType, what happens when it fires is Action.
"""

from __future__ import annotations

from typing import Any

from ...virt.mapping import Attr, Const, Field
from ...virt.props import Props
from ...virt.elements import ElementKind
from .base import COMMON_DEVICE, BuildEnv, DeviceKind, LimitEnv, Limits, other_type_table

__all__ = ["KIND", "ELEMENT", "TABLE"]


# -- the libvirt facts (the ElementKind the libvirt layer scans with) -----------------


ELEMENT = ElementKind("watchdog", ("watchdog",), lambda el: "watchdog", skeleton="<watchdog/>")


#: {P}_WatchdogResourceAllocationSettingData for <watchdog>.
TABLE: dict[str, Field] = {
    **other_type_table("watchdog"),
    "ResourceSubType": Attr("", "model"),     # watchdog@model
    "Action": Attr("", "action"),             # watchdog@action
    **COMMON_DEVICE,
}


def _build(env: BuildEnv, el: Any, p: Props) -> Any:
    """Defaults: an i6300esb that resets the guest."""
    if not p.has("ResourceSubType"):
        p.put("ResourceSubType", "i6300esb")
    if not p.has("Action"):
        p.put("Action", "reset")
    return el


def _limits(env: LimitEnv) -> Limits:
    return Limits("watchdog", values={
        "ResourceSubType": ("i6300esb", "ib700", "diag288", "itco"),
        "Action": ("reset", "shutdown", "poweroff", "pause", "none", "dump", "inject-nmi")})


KIND = DeviceKind(
    ELEMENT, "WatchdogResourceAllocationSettingData", "Watchdog", 1,
    {"*": TABLE},
    device_table={"Caption": Const("Watchdog")},
    other_resource_type="watchdog",
    build=_build,
    id_from_props=lambda props: "watchdog",
    limits=_limits)
