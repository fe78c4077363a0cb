"""{P}_ResourceAllocationFromPool: a resource pool (Antecedent) and the RASDs of the
virtual systems allocated from it (Dependent) - DSP2013 use case 5.1.7.  The
RASDs' PoolID names the same pool (kvm_providers.model.pools.setting_pool)."""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.model.kinds import KINDS
from kvm_providers.model.pools import allocated_from, list_pools

from .common import AssociationProvider, Role, providers_for
from .common.paths import element_of_path, rasd_path
from .common.pool_paths import POOL_CLASSES, pool_of_path, pool_path, setting_pool_path

__all__ = ["ResourceAllocationFromPoolProvider", "get_providers"]

#: The RASDs of every kind allocated from a pool (the kinds registry).
RASD_CLASSES = tuple(k.rasd_class for k in KINDS if k.pool is not None)


class ResourceAllocationFromPoolProvider(AssociationProvider):
    roles = (Role("Antecedent", POOL_CLASSES), Role("Dependent", RASD_CLASSES))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            pool = pool_of_path(path, family)
            if pool is None:
                return
            for ref, setting in allocated_from(pool):
                yield rasd_path(pool.host, ref.name, setting.kind, setting.devid)
            return
        found = element_of_path(path, family, "rasd")
        if found is not None:
            host, _, doc, setting = found
            target = setting_pool_path(host, doc, setting)
            if target is not None:
                yield target

    def sources(self, env, family):
        for host in self.hosts(f"{family}_ResourceAllocationFromPool"):
            for pool in list_pools(host):
                yield pool_path(pool)


def get_providers(env) -> dict[str, Any]:
    return providers_for(ResourceAllocationFromPoolProvider(), "ResourceAllocationFromPool")
