"""{P}_HostedDependency: the host system (Antecedent) and the virtual systems it
hosts (Dependent), as DMTF defines it (DSP2013 use case 5.1.9).

libvirt-cim has the roles the other way round (the virtual system as
Antecedent); this implementation follows the profile (docs/providers.md)."""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.virt import list_domains

from .common import AssociationProvider, Role, providers_for
from .common.paths import cs_of_path, cs_path, host_of_path, host_path

__all__ = ["HostedDependencyProvider", "get_providers"]


class HostedDependencyProvider(AssociationProvider):
    roles = (Role("Antecedent", ["HostSystem"]), Role("Dependent", ["ComputerSystem"]))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            host = host_of_path(path, family)
            if host is not None:
                for dom in list_domains(host):
                    yield cs_path(host, dom.name)
            return
        ref = cs_of_path(path, family)
        if ref is not None:
            yield host_path(ref.host)

    def sources(self, env, family):
        for host in self.hosts(f"{family}_X"):
            yield host_path(host)


def get_providers(env) -> dict[str, Any]:
    return providers_for(HostedDependencyProvider(), "HostedDependency")
