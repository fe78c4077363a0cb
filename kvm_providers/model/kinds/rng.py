"""The random number generator kind: an ``<rng>`` (devid ``rng``), RNGRASD (ResourceType 1,
OtherResourceType rng), RandomNumberGenerator device; no pool.

``<rng model='virtio'><rate bytes='1024' period='1000'/><backend
model='random'>/dev/urandom</backend></rng>``: the model is ResourceSubType,
the backend BackendModel and BackendSource (the host's entropy source: one of
the devices libvirt allows, never another host file), the rate limit
RateBytes per RatePeriod ms.
"""

from __future__ import annotations

from typing import Any

from ...virt.mapping import Attr, Text, Field
from ...virt.props import Props
from ...virt.elements import ElementKind
from .base import COMMON_DEVICE, BuildEnv, DeviceKind, LimitEnv, Limits, other_type_table

__all__ = ["KIND", "ELEMENT", "TABLE"]


# -- the libvirt facts (the ElementKind the libvirt layer scans with) -----------------


ELEMENT = ElementKind("rng", ("rng",), lambda el: "rng", skeleton="<rng/>")


#: {P}_RNGResourceAllocationSettingData for <rng>.
TABLE: dict[str, Field] = {
    **other_type_table("rng"),
    "ResourceSubType": Attr("", "model"),              # rng@model
    "BackendModel": Attr("backend", "model"),          # random | egd | builtin
    "BackendSource": Text("backend"),                  # /dev/urandom
    "RateBytes": Attr("rate", "bytes", "int"),
    "RatePeriod": Attr("rate", "period", "int"),
    **COMMON_DEVICE,
}

#: Host entropy sources libvirt's QEMU driver accepts for the random backend.
_SOURCES = ("/dev/urandom", "/dev/random", "/dev/hwrng")


def _build(env: BuildEnv, el: Any, p: Props) -> Any:
    """Defaults: virtio, fed from the host's /dev/urandom."""
    if not p.has("ResourceSubType"):
        p.put("ResourceSubType", "virtio")
    if not p.has("BackendModel"):
        p.put("BackendModel", "random")
    if not p.has("BackendSource") and p.get_("BackendModel") == "random":
        p.put("BackendSource", "/dev/urandom")
    return el


def _limits(env: LimitEnv) -> Limits:
    return Limits("rng", values={
        "ResourceSubType": env.enum("devices/rng", "model",
                                    ("virtio", "virtio-transitional",
                                     "virtio-non-transitional")),
        "BackendModel": env.enum("devices/rng", "backendModel", ("random", "builtin")),
        "BackendSource": _SOURCES})


KIND = DeviceKind(
    ELEMENT, "RNGResourceAllocationSettingData", "RandomNumberGenerator", 1,
    {"*": TABLE},
    other_resource_type="rng",
    build=_build,
    limits=_limits)
