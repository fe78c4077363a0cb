"""{P}_ServiceAffectsElement: the VirtualSystemManagementService
(AffectingElement) and the virtual systems of its host it manages
(AffectedElement), ElementEffects 5 (Manages)."""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.virt import list_domains

from .common import AssociationProvider, Role, providers_for
from .common.paths import cs_of_path, cs_path, vsms_path

__all__ = ["ServiceAffectsElementProvider", "get_providers"]


class ServiceAffectsElementProvider(AssociationProvider):
    roles = (Role("AffectingElement", ["VirtualSystemManagementService"]),
             Role("AffectedElement", ["ComputerSystem"]))
    extra = {"ElementEffects": [5]}

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            for host in self.hosts(path.classname):
                if self.paths_equal(vsms_path(host), path):
                    for ref in list_domains(host):
                        yield cs_path(host, ref.name)
            return
        ref = cs_of_path(path, family)
        if ref is not None:
            yield vsms_path(ref.host)

    def sources(self, env, family):
        for host in self.hosts(f"{family}_X"):
            yield vsms_path(host)


def get_providers(env) -> dict[str, Any]:
    return providers_for(ServiceAffectsElementProvider(), "ServiceAffectsElement")
