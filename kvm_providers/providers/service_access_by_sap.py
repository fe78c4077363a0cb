"""{P}_ServiceAccessBySAP: the host's console redirection service (Antecedent) and the
remote-console access points through which it is used (Dependent,
{P}_KVMRedirectionSAP of the host's virtual systems) - DSP1076."""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.virt import DomainNotFound

from .common import AssociationProvider, Role, providers_for
from .common.redirection_paths import crs_path, host_saps, sap_of_path

__all__ = ["ServiceAccessBySAPProvider", "get_providers"]


class ServiceAccessBySAPProvider(AssociationProvider):
    roles = (Role("Antecedent", ["ConsoleRedirectionService"]),
             Role("Dependent", ["KVMRedirectionSAP"]))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            for host in self.hosts(path.classname):
                if not self.paths_equal(crs_path(host), path):
                    continue
                yield from host_saps(host)
            return
        try:
            found = sap_of_path(path, family)
        except DomainNotFound:
            return
        if found is not None:
            yield crs_path(found[0])

    def sources(self, env, family):
        for host in self.hosts(f"{family}_X"):
            yield crs_path(host)


def get_providers(env) -> dict[str, Any]:
    return providers_for(ServiceAccessBySAPProvider(), "ServiceAccessBySAP")
