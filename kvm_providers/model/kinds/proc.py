"""The processor kind: one ProcRASD per domain (devid ``proc``, read from the ``<domain>``
root), one Processor per vCPU (DeviceID ``<domain>/<n>``), the ProcessorPool."""

from __future__ import annotations

from typing import Any

from ...schema.valuemaps import CIM_ResourceAllocationSettingData
from ...virt.mapping import Computed, Const, Field, Text, ensure_path, to_int as _int
from ...virt.props import Props
from ...virt import edit
from ...virt.elements import ElementKind
from .base import ChangeEnv, DeviceKind, LimitEnv, Limits, LiveOp, PoolKind

__all__ = ["KIND", "ELEMENT", "TABLE"]


# -- the libvirt facts (the ElementKind the libvirt layer scans with) -----------------


def _vcpus(el: Any, ctx: Any = None) -> int:
    """The current vCPU count of a ``<domain>`` (``<vcpu current=N>M</vcpu>``; 1 without)."""
    node = el.find("vcpu")
    if node is None:
        return 1
    cur = _int(node.get("current"))
    if cur is not None:
        return cur
    n = _int(node.text)
    return n if n is not None else 1


ELEMENT = ElementKind("proc", (), lambda el: "proc",
                      device_count=lambda el: int(_vcpus(el) or 0))


_RT = CIM_ResourceAllocationSettingData.ResourceType


def _write_vcpus(el, value, ctx):
    if value is None:
        return
    node = ensure_path(el, "vcpu")
    maximum = _int(node.text)
    if "current" in node.attrib and maximum is not None and int(value) <= maximum:
        node.set("current", str(int(value)))
    else:
        node.text = str(int(value))
        if "current" in node.attrib:
            del node.attrib["current"]

#: {P}_ProcResourceAllocationSettingData (one per domain, devid 'proc'), applied to <domain>.
TABLE: dict[str, Field] = {
    "ResourceType": Const(_RT.Processor),
    "VirtualQuantity": Computed(_vcpus, _write_vcpus),   # <vcpu current=N>M</vcpu>
    "Weight": Text("cputune/shares", "int"),
    "AllocationUnits": Const("Processors"),
    "VirtualQuantityUnits": Const("count"),
    "PoolID": Const("ProcessorPool/0"),
    "AutomaticAllocation": Const(True),
}


def _limits(env: LimitEnv) -> Limits:
    return Limits("proc", 1, env.max_vcpus, 1, 1, "count")


def _apply(env: ChangeEnv, props: Props) -> list[LiveOp]:
    """A processor RASD: the vCPU count of the definition and, within the running
    system's maximum, of the running system."""
    doc = env.doc
    ref_root = (env.reference or doc).root
    table = dict(TABLE)
    changes = env.diff(table, ref_root, props)
    if env.new and "VirtualQuantity" not in changes and props.has("VirtualQuantity"):
        changes["VirtualQuantity"] = props.get_("VirtualQuantity")
    n = changes.get("VirtualQuantity")
    if n is not None:
        env.check("proc", {"VirtualQuantity": n})
    env.write(table, doc.root, changes)
    if n is None or env.live is None:
        return []
    count = int(n)
    live_max = int(env.live.root.findtext("vcpu") or 0)
    old = TABLE["VirtualQuantity"].read(env.live.root)
    if count > live_max or count == old:
        return []        # above the live maximum: from the next start on
    return [LiveOp(f"setting the vCPUs of {env.name!r} to {count}",
                   edit.set_vcpus_live(count), edit.set_vcpus_live(old))]


KIND = DeviceKind(
    ELEMENT, "ProcResourceAllocationSettingData", "Processor", _RT.Processor, {"*": TABLE},
    id_from_props=lambda props: "proc",
    special=frozenset({"virtualquantity"}),
    limits=_limits,
    apply=_apply,
    pool=PoolKind("proc", "ProcessorPool", 3, "count", "Processors of the host", "Processor",
                  sharing=3, reserves="VirtualQuantity",
                  host_capacity=lambda caps: caps.cpus or None))
