"""{P}_ResourceAllocationFromPool: a resource pool (Antecedent) and the RASDs of the
virtual systems allocated from it (Dependent) - DSP2013 use case 5.1.7.  The
RASDs' PoolID names the same pool (kvm_providers.virt.pools.setting_pool)."""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.virt.pools import allocated_from, list_pools, lookup_pool, pool_from_id, \
    setting_pool

from .common import AssociationProvider, Role, get_domain_doc, providers_for
from .common.paths import device_of_path, rasd_path
from .common.pool_paths import POOL_CLASSES, pool_path

__all__ = ["ResourceAllocationFromPoolProvider", "get_providers"]

RASD_CLASSES = ("ProcResourceAllocationSettingData", "MemResourceAllocationSettingData",
                "DiskResourceAllocationSettingData", "NetResourceAllocationSettingData",
                "GraphicsResourceAllocationSettingData", "InputResourceAllocationSettingData",
                "ControllerResourceAllocationSettingData")


class ResourceAllocationFromPoolProvider(AssociationProvider):
    roles = (Role("Antecedent", POOL_CLASSES), Role("Dependent", RASD_CLASSES))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            pool = pool_from_id(family, path.keybindings.get("InstanceID"), path.classname)
            if pool is None:
                return
            for ref, setting in allocated_from(pool):
                yield rasd_path(pool.host, ref.name, setting.kind, setting.devid)
            return
        hit = device_of_path(path, family)
        if hit is None or hit[4] != "rasd":
            return
        host, domain, kind, devid, _ = hit
        doc = get_domain_doc(host, domain)
        setting = doc.setting(devid) if doc is not None else None
        if setting is None or setting.kind is not kind:
            return
        found = setting_pool(setting, doc.context())
        if found is not None:
            pool = lookup_pool(host, *found)
            if pool is not None:
                yield pool_path(pool)

    def sources(self, env, family):
        for host in self.hosts(f"{family}_ResourceAllocationFromPool"):
            for pool in list_pools(host):
                yield pool_path(pool)


def get_providers(env) -> dict[str, Any]:
    return providers_for(ResourceAllocationFromPoolProvider(), "ResourceAllocationFromPool")
