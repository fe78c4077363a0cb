"""{P}_ConcreteComponent: a storage pool (GroupComponent) and the storage volumes it is
made of (PartComponent, {P}_StorageVolume) - the constituent resources of DSP2013
use case 5.1.5.  The other pools' host resources (CPUs, memory, bridges) are not
modelled as devices."""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.model.poolconfig import volume_of_path, volumes
from kvm_providers.model.pools import DISK, list_pools

from .common import AssociationProvider, Role, providers_for
from .common.pool_paths import pool_of_path, pool_path, same_host_system, volume_path

__all__ = ["ConcreteComponentProvider", "get_providers"]


class ConcreteComponentProvider(AssociationProvider):
    roles = (Role("GroupComponent", ["DiskPool"]), Role("PartComponent", ["StorageVolume"]))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            pool = pool_of_path(path, family)
            if pool is not None:
                for each in volumes(pool):
                    yield volume_path(pool.host, each.path)
            return
        kb = path.keybindings
        for host in self.hosts(path.classname):
            if not same_host_system(kb.get("SystemName"), host):
                continue
            vol = volume_of_path(host, kb.get("DeviceID"))
            if vol is not None:
                yield pool_path(vol.pool)

    def sources(self, env, family):
        for host in self.hosts(f"{family}_ConcreteComponent"):
            for pool in list_pools(host, (DISK.name,)):
                if not pool.primordial:
                    yield pool_path(pool)


def get_providers(env) -> dict[str, Any]:
    return providers_for(ConcreteComponentProvider(), "ConcreteComponent")
