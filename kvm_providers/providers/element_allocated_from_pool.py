"""{P}_ElementAllocatedFromPool: a resource pool (Antecedent) and what is allocated from
it (Dependent): the logical devices of the virtual systems (processors, memory,
disks, network ports, display, pointing devices and controllers) and, for the
primordial DiskPool/0 and NetworkPool/0, the storage pools and networks that
are their children - DSP2013 use case 5.1.7.

Which pool a device comes from is kvm_providers.model.pools.setting_pool (the
rule of the RASDs' PoolID); consoles and filesystems come from no pool.
"""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.model.kinds import KINDS
from kvm_providers.model.pools import DISK, NET, allocated_from, list_pools

from .common import AssociationProvider, Role, get_domain_doc, providers_for
from .common.paths import device_path, element_of_path
from .common.pool_paths import POOL_CLASSES, pool_of_path, pool_path, setting_pool_path

__all__ = ["ElementAllocatedFromPoolProvider", "get_providers"]

#: The logical devices of every kind allocated from a pool (the kinds registry).
DEVICE_CLASSES = tuple(k.device_class for k in KINDS if k.pool is not None and k.device_class)


class ElementAllocatedFromPoolProvider(AssociationProvider):
    roles = (Role("Antecedent", POOL_CLASSES),
             Role("Dependent", DEVICE_CLASSES + ("DiskPool", "NetworkPool")))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        base = path.classname.split("_", 1)[1].lower()
        if side == 0:
            pool = pool_of_path(path, family)
            if pool is None:
                return
            if pool.primordial and pool.kind in (DISK, NET):
                for child in list_pools(pool.host, (pool.kind.name,)):
                    if not child.primordial:
                        yield pool_path(child)
                return
            docs: dict[str, Any] = {}
            for ref, setting in allocated_from(pool):
                doc = docs.get(ref.name)
                if doc is None:
                    doc = docs[ref.name] = get_domain_doc(pool.host, ref.name)
                if doc is None:
                    continue
                if setting.kind.device_count is not None:     # one Processor per vCPU
                    devs = doc.devices_of(setting.kind.name)
                else:
                    dev = doc.device(setting.kind.name, setting.devid)
                    devs = [dev] if dev is not None else []
                for dev in devs:
                    yield device_path(pool.host, ref.name, dev.kind, dev.devid)
            return
        if base in ("diskpool", "networkpool"):
            pool = pool_of_path(path, family)
            parent = pool.parent() if pool is not None else None
            if parent is not None:
                yield pool_path(parent)
            return
        found = element_of_path(path, family, "device")
        if found is not None:
            host, _, doc, dev = found
            target = setting_pool_path(host, doc, dev.setting)
            if target is not None:
                yield target

    def sources(self, env, family):
        for host in self.hosts(f"{family}_ElementAllocatedFromPool"):
            for pool in list_pools(host):
                yield pool_path(pool)


def get_providers(env) -> dict[str, Any]:
    return providers_for(ElementAllocatedFromPoolProvider(), "ElementAllocatedFromPool")

