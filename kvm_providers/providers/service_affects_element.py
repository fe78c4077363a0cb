"""{P}_ServiceAffectsElement: the VirtualSystemManagementService
(AffectingElement) and the virtual systems of its host it manages
(AffectedElement), and the ResourcePoolConfigurationService and the storage pools
and networks it creates and deletes (issue 5); ElementEffects 5 (Manages)."""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.schema.valuemaps import CIM_ServiceAffectsElement
from kvm_providers.virt import list_domains
from kvm_providers.virt.pools import DISK, NET, list_pools

from .common import AssociationProvider, Role, providers_for
from .common.paths import cs_of_path, cs_path, vsms_path
from .common.pool_paths import pool_of_path, pool_path, rpcs_path

__all__ = ["ServiceAffectsElementProvider", "get_providers"]


class ServiceAffectsElementProvider(AssociationProvider):
    roles = (Role("AffectingElement", ["VirtualSystemManagementService",
                                       "ResourcePoolConfigurationService"]),
             Role("AffectedElement", ["ComputerSystem", "DiskPool", "NetworkPool"]))
    extra = {"ElementEffects": [CIM_ServiceAffectsElement.ElementEffects.Manages]}

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        base = path.classname.split("_", 1)[1].lower()
        if side == 0:
            for host in self.hosts(path.classname):
                if self.paths_equal(vsms_path(host), path):
                    for dom in list_domains(host):
                        yield cs_path(host, dom.name)
                elif self.paths_equal(rpcs_path(host), path):
                    for each in list_pools(host, (DISK.name, NET.name)):
                        yield pool_path(each)
            return
        if base in ("diskpool", "networkpool"):
            pool = pool_of_path(path, family)
            if pool is not None:
                yield rpcs_path(pool.host)
            return
        ref = cs_of_path(path, family)
        if ref is not None:
            yield vsms_path(ref.host)

    def sources(self, env, family):
        for host in self.hosts(f"{family}_X"):
            yield vsms_path(host)
            yield rpcs_path(host)


def get_providers(env) -> dict[str, Any]:
    return providers_for(ServiceAffectsElementProvider(), "ServiceAffectsElement")
