"""The resource pools of every family (DSP1041, DSP1045, DSP1059): {P}_ProcessorPool,
MemoryPool, DiskPool, NetworkPool, GraphicsPool, InputPool and ControllerPool.

InstanceID = PoolID = libvirt-cim's "<Kind>Pool/<name>" ("/0" for the
primordial pools; the InstanceID host-qualified with several hosts).
Capacity and Reserved are computed from libvirt in every request (see
kvm_providers.model.pools): Reserved follows every define, modify and
destroy of a virtual system.  Only the properties asked for are computed:
EnumerateInstanceNames lists pools without a call per pool, and Reserved of
the processor and memory pools (the only ones that read every domain's XML)
is computed only when it is wanted.

HealthState / OperationalStatus (common.health): 5 / [2] for a pool of a host that
answers, [10 Stopped] for a storage pool or network that does not run, 20 / [13 Lost
Communication] while the host is away or hung (for the pools that can be listed
without it).  libvirt failures other than "the pool went away" fail the request with
CIM_ERR_FAILED naming the host, never blank properties.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

from kvm_providers.model.pools import (DISK, NET, Pool, capacity, is_active, kind_for_class,
                                      list_pools, network_xml, parse_pool_id, pool_autostart,
                                      pool_from_id, reserved, storage_pool_xml)

from .common import VirtProvider, fill, providers_for
from .common.health import STATUS_PROPS, pool_status_values
from .common.pool_paths import POOL_CLASSES

__all__ = ["PoolProvider", "get_providers"]

# Every property this provider sets: fill() caches its plan per names object, so
# the names come from this one long-lived tuple whatever the pool.
_PROPS = ("PoolID", "ElementName", "Caption", "Primordial", "ResourceType",
          "OtherResourceType", "ResourceSubType", "AllocationUnits", "ConsumedResourceUnits",
          "Capacity", "MaxConsumableResource", "Reserved", "CurrentlyConsumedResource",
          "Path", "Host", "SourceDirectory", "Autostart") + STATUS_PROPS



def _disk_props(pool: Pool) -> dict[str, Any]:
    root = storage_pool_xml(pool)
    if root is None:
        return {}
    host = root.find("source/host")

    def autostart():
        on = pool_autostart(pool)
        return None if on is None else int(on)
    return {"Path": root.findtext("target/path"), "Host": host.get("name") if host is not None
            else None, "SourceDirectory": (root.find("source/dir").get("path")
                                           if root.find("source/dir") is not None else None),
            "ResourceSubType": root.get("type"), "Autostart": autostart}


def _net_caption(pool: Pool) -> Optional[str]:
    root = network_xml(pool)
    br = root.find("bridge") if root is not None else None
    return f"Bridge: {br.get('name')}" if br is not None and br.get("name") else None


class PoolProvider(VirtProvider):
    """Every {P}_<Kind>Pool class."""

    def _fill(self, inst: Any, model: Any, pool: Pool) -> None:
        kind = pool.kind
        memo: dict[str, Any] = {}

        def cap():
            if "c" not in memo:
                memo["c"] = capacity(pool)
            return memo["c"]

        def res():
            if "r" not in memo:
                memo["r"] = reserved(pool)
            return memo["r"]

        values: dict[str, Any] = dict.fromkeys(_PROPS)
        values.update({
            "PoolID": pool.pool_id,
            "ElementName": pool.name if not pool.primordial else kind.caption,
            "Caption": kind.caption if pool.primordial else pool.name,
            "Primordial": pool.primordial,
            "ResourceType": kind.resource_type,
            "OtherResourceType": kind.other_resource_type,
            "AllocationUnits": kind.units,
            "ConsumedResourceUnits": kind.units,
            "Capacity": cap,
            "MaxConsumableResource": cap,
            "Reserved": res,
            "CurrentlyConsumedResource": res,
        })
        values.update(pool_status_values(pool.host, lambda: is_active(pool)))
        if kind is DISK and not pool.primordial:
            values.update(_disk_props(pool))
        elif kind is NET and not pool.primordial:
            values["Caption"] = lambda: _net_caption(pool) or pool.name
        fill(inst, model, values, _PROPS)

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        kind = kind_for_class(model.classname)
        if kind is None:
            return
        for host in self.hosts(model.classname):
            # A kind's storage pools / networks first, its primordial pool last, in
            # libvirt-cim's order (its clients take the last pool listed as the one
            # they made); DSP0200 gives enumerations no order.
            for pool in sorted(list_pools(host, (kind.name,)), key=lambda p: p.primordial):
                inst = model.copy()
                inst["InstanceID"] = pool.instance_id
                if not keys_only:
                    self._fill(inst, model, pool)
                yield inst

    def not_found_value(self, path, key) -> Optional[str]:
        """An InstanceID that is not of the pool kind of its class names a pool of
        another type (libvirt-cim's words: ``No such instance (<id>) - resource pool
        type mismatch``)."""
        value = path.keybindings.get("InstanceID")
        kind = kind_for_class(path.classname)
        if key.lower() == "instanceid" and isinstance(value, str) and kind is not None:
            hit = parse_pool_id(self.family(path.classname), value)
            if hit is None or hit[1] is not kind:
                return (f"No such instance ({value}) - resource pool type mismatch: "
                        f"{path.classname} InstanceIDs are {kind.classname}/<pool>")
        return super().not_found_value(path, key)

    def get_instance(self, env, model) -> Optional[Any]:
        pool = pool_from_id(self.family(model.classname), model["InstanceID"], model.classname)
        if pool is None:
            return None
        self._fill(model, model, pool)
        return model


def get_providers(env) -> dict[str, Any]:
    return providers_for(PoolProvider(), *POOL_CLASSES)
