"""{P}_HostedResourcePool: the host system (GroupComponent) and its resource pools
(PartComponent) - DSP2013 use case 5.1.5, finding the resource pools."""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.model.pools import list_pools

from .common import AssociationProvider, Role, providers_for
from .common.paths import host_of_path, host_path
from .common.pool_paths import POOL_CLASSES, pool_of_path, pool_path

__all__ = ["HostedResourcePoolProvider", "get_providers"]


class HostedResourcePoolProvider(AssociationProvider):
    roles = (Role("GroupComponent", ["HostSystem"]), Role("PartComponent", POOL_CLASSES))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            host = host_of_path(path, family)
            if host is not None:
                for each in list_pools(host):
                    yield pool_path(each)
            return
        pool = pool_of_path(path, family)
        if pool is not None:
            yield host_path(pool.host)

    def sources(self, env, family):
        for host in self.hosts(f"{family}_HostedResourcePool"):
            yield host_path(host)


def get_providers(env) -> dict[str, Any]:
    return providers_for(HostedResourcePoolProvider(), "HostedResourcePool")
