"""Resource pools of a host (DSP1041): which pools exist, what is allocated from them.

Pools per host, with libvirt-cim's InstanceIDs (host-qualified with several
hosts, :func:`keys.qualify`):

=================  ===========================================  ======================
InstanceID         what                                         AllocationUnits
=================  ===========================================  ======================
ProcessorPool/0    the host's logical CPUs                      count (vCPUs)
MemoryPool/0       the host's memory                            byte*2^10 (KiB)
DiskPool/0         primordial: parent of every storage pool     byte*2^20 (MiB)
DiskPool/<name>    a libvirt storage pool                       byte*2^20 (MiB)
NetworkPool/0      primordial: parent of every virtual network  count (interfaces)
NetworkPool/<net>  a libvirt virtual network                    count (interfaces)
GraphicsPool/0     graphics devices                             count
InputPool/0        input devices                                count
ControllerPool/0   bus controllers                              count
=================  ===========================================  ======================

``Reserved`` is computed from libvirt at every request, never cached across
requests: for processors and memory the sum of what every defined virtual
system is given (vCPUs, current memory); for storage pools the space libvirt
says is allocated; for the others the number of devices allocated from the
pool.  Which pool a setting is allocated from is :func:`setting_pool`, the
same rule as the RASDs' ``PoolID``.  A storage pool or network named ``0``
is not shown: its InstanceID would be the primordial pool's.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from ..virt import keys
from ..virt import pools as vpools
from ..virt.connection import DomainNotFound, Host
from ..virt.devices import Setting
from ..virt.domain import DomainRef, domain_xml, list_domains, prefetch_xml
from ..virt.hostcaps import host_caps
from ..virt.pools import networks
from ..virt.query import request_memo, storage_pools
from .kinds import KINDS as DEVICE_KINDS
from .kinds.base import PoolKind

__all__ = ["PoolKind", "Pool", "KINDS", "KIND_BY_NAME", "kind_for_class", "list_pools",
           "lookup_pool", "parse_pool_id", "pool_from_id", "setting_pool", "allocations",
           "capacity", "reserved", "network_xml", "storage_pool_xml", "pool_info",
           "pool_autostart", "is_active", "PRIMORDIAL"]

PRIMORDIAL = "0"


#: The pool of every kind that has one, in the kinds registry's order (kinds/<kind>.py
#: declares its pool).
KINDS: tuple[PoolKind, ...] = tuple(k.pool for k in DEVICE_KINDS if k.pool is not None)
KIND_BY_NAME = {k.name: k for k in KINDS}
PROC, MEM, DISK, NET = (KIND_BY_NAME[n] for n in ("proc", "mem", "disk", "net"))
_KIND_BY_CLASS = {k.classname.lower(): k for k in KINDS}
_KIND_BY_PREFIX = {k.classname: k for k in KINDS}


def kind_for_class(classname: str) -> Optional[PoolKind]:
    """The pool kind of a family class name (KVM_DiskPool -> DISK), or None."""
    base = classname.split("_", 1)[1] if "_" in classname else classname
    return _KIND_BY_CLASS.get(base.lower())


class Pool:
    """One resource pool of a host; `obj` is the virStoragePool / virNetwork behind it."""

    __slots__ = ("host", "kind", "name", "obj")

    def __init__(self, host: Host, kind: PoolKind, name: str, obj: Any = None):
        self.host, self.kind, self.name, self.obj = host, kind, name, obj

    @property
    def primordial(self) -> bool:
        return self.name == PRIMORDIAL

    @property
    def pool_id(self) -> str:
        """PoolID, as the RASDs allocated from this pool report it ('DiskPool/default')."""
        return f"{self.kind.classname}/{self.name}"

    @property
    def instance_id(self) -> str:
        """InstanceID (the PoolID, host-qualified with several hosts)."""
        return keys.qualify(self.host, self.pool_id)

    @property
    def libvirt(self) -> vpools.PoolObject:
        """The storage pool or network behind a pool, in the libvirt layer's terms (its
        messages name the pool by its PoolID)."""
        return vpools.PoolObject(self.host, self.name, self.obj, self.kind is NET,
                                 self.pool_id)

    def parent(self) -> Optional["Pool"]:
        """The primordial pool a storage pool or network is a child of."""
        if self.kind.libvirt_backed and not self.primordial:
            return Pool(self.host, self.kind, PRIMORDIAL)
        return None

    def __repr__(self) -> str:
        return f"<Pool {self.host.label}:{self.pool_id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pool) and (self.host, self.kind, self.name) == \
            (other.host, other.kind, other.name)

    def __hash__(self) -> int:
        return hash((self.host.label, self.kind.name, self.name))


# -- the storage pools and networks behind pools (virt.pools) -----------------------------

def network_xml(pool: Pool) -> Optional[Any]:
    """The parsed XML of a network pool (None if it went away), once per request."""
    return vpools.pool_xml(pool.libvirt)


def storage_pool_xml(pool: Pool) -> Optional[Any]:
    """The parsed XML of a storage pool (None if it went away), once per request."""
    return vpools.pool_xml(pool.libvirt)


def pool_info(pool: Pool) -> Optional[list[int]]:
    """virStoragePoolGetInfo of a storage pool ([state, capacity, allocation, available])."""
    return vpools.storage_pool_info(pool.libvirt)


def pool_autostart(pool: Pool) -> Optional[bool]:
    """Whether a storage pool or network starts with the host (None if it went away)."""
    return vpools.autostart(pool.libvirt)


def is_active(pool: Pool) -> bool:
    """Whether a storage pool is running or a network is started (other pools: always)."""
    if pool.primordial or not pool.kind.libvirt_backed or pool.obj is None:
        return True
    return vpools.is_active(pool.libvirt)


# -- listing and lookup -------------------------------------------------------------------

def _children(host: Host, kind: PoolKind) -> list[Pool]:
    if kind is DISK:
        items = [(n, o) for n, _t, o in storage_pools(host)]
    else:
        items = networks(host)
    return [Pool(host, kind, n, o) for n, o in sorted(items, key=lambda t: t[0])
            if n != PRIMORDIAL]


def list_pools(host: Host, kinds: Optional[Iterable[str]] = None) -> list[Pool]:
    """The pools of `host` (of the kinds named, default all), in KINDS order.

    Lists storage pools and networks only when their kind is asked for.
    """
    wanted = None if kinds is None else set(kinds)
    out: list[Pool] = []
    for kind in KINDS:
        if wanted is not None and kind.name not in wanted:
            continue
        out.append(Pool(host, kind, PRIMORDIAL))
        if kind.libvirt_backed:
            out.extend(_children(host, kind))
    return out


def lookup_pool(host: Host, kind: PoolKind, name: str) -> Optional[Pool]:
    """The pool `kind`/`name` of `host` if it exists."""
    if name == PRIMORDIAL:
        return Pool(host, kind, PRIMORDIAL)
    if not kind.libvirt_backed or not name:
        return None
    for p in _children(host, kind):
        if p.name == name:
            return p
    return None


def parse_pool_id(family: Optional[str], instance_id: Any
                  ) -> Optional[tuple[Host, PoolKind, str]]:
    """(host, kind, name) of a pool InstanceID, without checking that the pool exists."""
    hit = keys.parse_qualified(family, instance_id)
    if hit is None:
        return None
    host, rest = hit
    prefix, sep, name = rest.partition("/")
    kind = _KIND_BY_PREFIX.get(prefix)
    if not sep or kind is None or not name:
        return None
    return host, kind, name


def pool_from_id(family: Optional[str], instance_id: Any,
                 classname: Optional[str] = None) -> Optional[Pool]:
    """The existing pool an InstanceID names (and, given, whose class is `classname`)."""
    hit = parse_pool_id(family, instance_id)
    if hit is None:
        return None
    host, kind, name = hit
    if classname is not None and kind_for_class(classname) is not kind:
        return None
    return lookup_pool(host, kind, name)


# -- what is allocated from where ----------------------------------------------------------

def setting_pool(setting: Setting, ctx: Any) -> Optional[tuple[PoolKind, str]]:
    """(pool kind, pool name) a setting (RASD) is allocated from, or None.

    Processors, memory, graphics, inputs and controllers come from their
    kind's only pool; a disk from the storage pool its source lives in (a
    ``<source pool=>`` or a file in a pool's target directory); an interface
    of type network from that network.  Filesystems, other interfaces and
    consoles come from no pool.  The rule is the RASD PoolID's.
    """
    pool = setting.kind.pool
    if pool is None:
        return None
    if pool.allocated is None:
        return pool, PRIMORDIAL
    name = pool.allocated(setting.element, ctx)
    return (pool, name) if name else None


def allocations(host: Host) -> dict[tuple[str, str], list[tuple[DomainRef, Setting]]]:
    """{(pool kind name, pool name): [(domain, setting)]} of every defined virtual system.

    One XML fetch per domain per request (shared with every other provider
    of the request).  Settings of pools that do not exist are listed too
    (under the name the domain gives); callers look pools up.
    """
    def compute():
        out: dict[tuple[str, str], list[tuple[DomainRef, Setting]]] = {}
        refs = list_domains(host)
        prefetch_xml(refs)
        for ref in refs:
            try:
                doc = domain_xml(ref)
            except DomainNotFound:
                continue
            ctx = doc.context()
            for s in doc.settings():
                hit = setting_pool(s, ctx)
                if hit is not None:
                    out.setdefault((hit[0].name, hit[1]), []).append((ref, s))
        return out
    return request_memo(("virt.allocations", host.label, host.generation), compute)


def allocated_from(pool: Pool) -> list[tuple[DomainRef, Setting]]:
    """[(domain, setting)] allocated from `pool` (a primordial storage or network pool:
    none directly, its children are)."""
    return allocations(pool.host).get((pool.kind.name, pool.name), [])


# -- capacity and reservations ------------------------------------------------------------
# Capacity and Reserved are separate so that asking for one never costs the other
# (Reserved of the processor and memory pools reads every domain's XML).

def _quantity(s: Setting) -> int:
    prop = s.kind.pool.reserves if s.kind.pool is not None else None
    return 1 if prop is None else int(s.read(prop) or 0)


def _storage_mib(pool: Pool, field: int) -> Optional[int]:
    """A byte count of virStoragePoolGetInfo (`field`) in MiB: of a storage pool (None if
    it is not running), or summed over the running children of the primordial pool."""
    pools = _children(pool.host, DISK) if pool.primordial else [pool]
    infos = [vpools.running_storage_info(p.libvirt) for p in pools]
    if not pool.primordial and infos[0] is None:
        return None
    return sum(int(i[field]) >> 20 for i in infos if i)


def capacity(pool: Pool) -> Optional[int]:
    """Capacity of `pool` in its AllocationUnits (None: not bounded, or not known)."""
    kind = pool.kind
    if kind.host_capacity is not None:
        return kind.host_capacity(host_caps(pool.host))
    if kind is DISK:
        return _storage_mib(pool, 1)
    return None


def reserved(pool: Pool) -> Optional[int]:
    """Reserved of `pool` in its AllocationUnits, computed from libvirt now."""
    kind = pool.kind
    if kind is DISK:
        return _storage_mib(pool, 2)
    if kind is NET and pool.primordial:
        return sum(len(allocated_from(c)) for c in _children(pool.host, NET))
    return sum(_quantity(s) for _ref, s in allocated_from(pool))
