"""The memory kind: one MemRASD per domain (devid ``mem``, read from the ``<domain>`` root),
one Memory device, the MemoryPool."""

from __future__ import annotations

from typing import Any, Optional

from ...schema.valuemaps import CIM_ResourceAllocationSettingData
from ...virt.mapping import Attr, Computed, Const, Field, MemoryKiB
from ...virt.props import InvalidSetting, Props
from ...virt.units import CIM_UNIT_NAMES, KIB, cim_unit_bytes, libvirt_unit_bytes
from ...virt import edit
from ...virt.elements import ElementKind
from .base import ChangeEnv, DeviceKind, LimitEnv, Limits, LiveOp, PoolKind

__all__ = ["KIND", "ELEMENT", "TABLE", "MEMORY_BLOCK_SIZE", "MIN_MEMORY_KIB", "DEFAULT_MEMORY_KIB",
           "MEMORY_INCREMENT_KIB", "memory_kib", "numa_memory_kib", "apply_memory"]


# -- the libvirt facts (the ElementKind the libvirt layer scans with) -----------------


ELEMENT = ElementKind("mem", (), lambda el: "mem")


_RT = CIM_ResourceAllocationSettingData.ResourceType

#: Smallest memory a virtual system may get (KiB): 16 MiB.
MIN_MEMORY_KIB = 16 * 1024
#: Memory of a new virtual system without a memory RASD (KiB): 512 MiB.
DEFAULT_MEMORY_KIB = 512 * 1024
#: Memory is allocated in whole MiB.
MEMORY_INCREMENT_KIB = 1024

def _mem_current(el, ctx=None):
    cur = _CURRENT_MEMORY.read(el)
    return _MEMORY.read(el) if cur is None else cur


def _write_mem_current(el, value, ctx):
    _CURRENT_MEMORY.write(el, value)


_CURRENT_MEMORY = MemoryKiB("currentMemory")


_MEMORY = MemoryKiB("memory")


#: {P}_MemResourceAllocationSettingData (devid 'mem'), applied to <domain>.
MEM: dict[str, Field] = {
    "ResourceType": Const(_RT.Memory),
    "VirtualQuantity": Computed(_mem_current, _write_mem_current),  # <currentMemory>
    "Reservation": Computed(_mem_current, _write_mem_current),
    "Limit": MemoryKiB("memory"),                                  # <memory> (maximum)
    "AllocationUnits": Const("KiloBytes"),
    "VirtualQuantityUnits": Const("byte*2^10"),
    "PoolID": Const("MemoryPool/0"),
    "AutomaticAllocation": Const(True),
    "dumpCore": Attr("memory", "dumpCore", "onoff"),
}

TABLE = MEM

MEMORY_BLOCK_SIZE = 4096


def _mem_blocks(path_field: Field):
    def read(el, ctx=None):
        kib = path_field.read(el)
        return None if kib is None else kib * 1024 // MEMORY_BLOCK_SIZE
    return Computed(read)


def _mem_blocks_current(el):
    kib = _mem_current(el)
    return None if kib is None else kib * 1024 // MEMORY_BLOCK_SIZE


def _limits(env: LimitEnv) -> Limits:
    return Limits("mem", MIN_MEMORY_KIB, env.max_memory_kib, DEFAULT_MEMORY_KIB,
                  MEMORY_INCREMENT_KIB, "KiloBytes")


# -- applying a memory setting -----------------------------------------------------------

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


def apply_memory(env: ChangeEnv, props: Props) -> dict[str, int]:
    """Apply a memory RASD to env.doc; returns {'current': KiB, 'max': KiB} of what changed.

    env.reference is what the client saw (the live definition of a running
    system): only differing values count as changes (every given one for a new
    system).  A current size above the maximum raises the maximum with it
    unless Limit is given.
    """
    doc, where, new = env.doc, env.where, env.new
    cur, mx = memory_kib(props, where)
    ref_root = (env.reference or doc).root
    old_cur = MEM["VirtualQuantity"].read(ref_root)
    old_max = MEM["Limit"].read(ref_root)
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
        pmax = MEM["Limit"].read(doc.root)
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
    eff_cur = changes.get("current", MEM["VirtualQuantity"].read(doc.root))
    eff_max = changes.get("max", MEM["Limit"].read(doc.root))
    for key, prop in (("current", "VirtualQuantity"), ("max", "Limit")):
        if key in changes:
            env.check("mem", {prop: changes[key]}, " (KiB)")
    if eff_cur is not None and eff_max is not None and eff_cur > eff_max:
        raise InvalidSetting(where, f"VirtualQuantity {eff_cur} KiB is above Limit "
                                    f"{eff_max} KiB")
    if "max" in changes:
        _MEMORY.write(doc.root, changes["max"])
    if "current" in changes:
        _CURRENT_MEMORY.write(doc.root, changes["current"])
    dump = props.get_("dumpCore")
    if dump is not None and MEM["dumpCore"].read(ref_root) != bool(dump):
        MEM["dumpCore"].write(doc.root, bool(dump))
    return changes


def _apply(env: ChangeEnv, props: Props) -> list[LiveOp]:
    """A memory RASD: the definition's sizes and, within the running system's maximum,
    the running system's balloon."""
    ch = apply_memory(env, props)
    if "current" not in ch or env.live is None:
        return []
    live_max = MEM["Limit"].read(env.live.root) or 0
    old = MEM["VirtualQuantity"].read(env.live.root)
    kib = ch["current"]
    if kib > live_max or kib == old:
        return []        # above the live maximum: from the next start on
    return [LiveOp(f"setting the memory of {env.name!r} to {kib} KiB",
                   edit.set_memory_live(kib), edit.set_memory_live(old))]


KIND = DeviceKind(
    ELEMENT, "MemResourceAllocationSettingData", "Memory", _RT.Memory, {"*": TABLE},
    device_table={
        "BlockSize": Const(MEMORY_BLOCK_SIZE),
        "ConsumableBlocks": Computed(lambda el, ctx: _mem_blocks_current(el)),
        "NumberOfBlocks": _mem_blocks(_MEMORY),
    },
    id_from_props=lambda props: "mem",
    special=frozenset({"virtualquantity", "reservation", "limit", "allocationunits"}),
    limits=_limits,
    apply=_apply,
    pool=PoolKind("mem", "MemoryPool", 4, KIB, "Memory of the host", "Memory", sharing=2,
                  reserves="Reservation", host_capacity=lambda caps: caps.memory_kib or None))
