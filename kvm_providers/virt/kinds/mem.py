"""The memory kind: one MemRASD per domain (devid ``mem``, read from the ``<domain>`` root),
one Memory device, the MemoryPool."""

from __future__ import annotations

from ...schema.valuemaps import CIM_ResourceAllocationSettingData
from ..mapping import Attr, Computed, Const, Field, MemoryKiB
from ..units import KIB
from .base import DeviceKind, LimitEnv, Limits, PoolKind

__all__ = ["KIND", "TABLE", "MEMORY_BLOCK_SIZE", "MIN_MEMORY_KIB", "DEFAULT_MEMORY_KIB",
           "MEMORY_INCREMENT_KIB"]

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


KIND = DeviceKind(
    "mem", "MemResourceAllocationSettingData", "Memory", _RT.Memory, (),
    lambda el: "mem", {"*": TABLE},
    device_table={
        "BlockSize": Const(MEMORY_BLOCK_SIZE),
        "ConsumableBlocks": Computed(lambda el, ctx: _mem_blocks_current(el)),
        "NumberOfBlocks": _mem_blocks(_MEMORY),
    },
    id_from_props=lambda props: "mem",
    special=frozenset({"virtualquantity", "reservation", "limit", "allocationunits"}),
    limits=_limits,
    pool=PoolKind("mem", "MemoryPool", 4, KIB, "Memory of the host", "Memory", sharing=2,
                  reserves="Reservation", host_capacity=lambda caps: caps.memory_kib or None))
