"""The TPM kind: a ``<tpm>`` (devid ``tpm``), TPMRASD (ResourceType 1, OtherResourceType
tpm, libvirt-cim's convention for devices DMTF has no ResourceType for), TPM device;
no pool.

``<tpm model='tpm-tis'><backend type='emulator' version='2.0'/></tpm>``: the
model is ResourceSubType, the backend BackendType and BackendVersion.  The
host device of a passthrough backend (DevicePath) is read only: a client
may not hand a guest an arbitrary host device.
"""

from __future__ import annotations

from typing import Any, Optional

from ...virt.mapping import Attr, Computed, Const, Field
from ...virt.props import Props
from ...virt.elements import ElementKind
from .base import BuildEnv, DeviceKind, LimitEnv, Limits, other_type_table

__all__ = ["KIND", "ELEMENT", "TABLE"]


# -- the libvirt facts (the ElementKind the libvirt layer scans with) -----------------


ELEMENT = ElementKind("tpm", ("tpm",), lambda el: "tpm", skeleton="<tpm/>")


def _device_path(el: Any, ctx: Any = None) -> Optional[str]:
    node = el.find("backend/device")
    return None if node is None else node.get("path")


#: {P}_TPMResourceAllocationSettingData for <tpm>.
TABLE: dict[str, Field] = {
    **other_type_table("tpm"),
    "ResourceSubType": Attr("", "model"),                 # tpm@model
    "BackendType": Attr("backend", "type"),               # passthrough | emulator
    "BackendVersion": Attr("backend", "version"),         # 1.2 | 2.0
    "DevicePath": Computed(_device_path),                 # passthrough host device
    "AutomaticAllocation": Const(True),
}


def _build(env: BuildEnv, el: Any, p: Props) -> Any:
    """Defaults: a TIS TPM 2.0 emulated by swtpm (no host device)."""
    if not p.has("ResourceSubType"):
        p.put("ResourceSubType", "tpm-tis")
    if not p.has("BackendType"):
        p.put("BackendType", "emulator")
    if not p.has("BackendVersion") and p.get_("BackendType") == "emulator":
        p.put("BackendVersion", "2.0")
    return el


def _limits(env: LimitEnv) -> Limits:
    return Limits("tpm", values={
        "ResourceSubType": env.enum("devices/tpm", "model",
                                    ("tpm-tis", "tpm-crb", "tpm-spapr", "spapr-tpm-vio")),
        "BackendType": env.enum("devices/tpm", "backendModel", ("passthrough", "emulator")),
        "BackendVersion": env.enum("devices/tpm", "backendVersion", ("1.2", "2.0"))})


KIND = DeviceKind(
    ELEMENT, "TPMResourceAllocationSettingData", "TPM", 1,
    {"*": TABLE},
    other_resource_type="tpm",
    build=_build,
    id_from_props=lambda props: "tpm",
    limits=_limits)
