"""{P}_HostedAccessPoint: the host system (Antecedent) and the remote-console access
points of its virtual systems (Dependent, {P}_KVMRedirectionSAP).

As libvirt-cim: the console listener is a socket of the host (the QEMU
process listens on the host's address), so the host system hosts it; the
access point's keys name the virtual system whose console it is (see
docs/compat.md, "KVM redirection (DSP1076)")."""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.virt import DomainNotFound

from .common import AssociationProvider, Role, providers_for
from .common.paths import host_of_path, host_path
from .common.redirection_paths import host_saps, sap_of_path

__all__ = ["HostedAccessPointProvider", "get_providers"]


class HostedAccessPointProvider(AssociationProvider):
    roles = (Role("Antecedent", ["HostSystem"]), Role("Dependent", ["KVMRedirectionSAP"]))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            host = host_of_path(path, family)
            if host is not None:
                yield from host_saps(host)
            return
        try:
            found = sap_of_path(path, family)
        except DomainNotFound:
            return
        if found is not None:
            yield host_path(found[0])

    def sources(self, env, family):
        for host in self.hosts(f"{family}_X"):
            yield host_path(host)


def get_providers(env) -> dict[str, Any]:
    return providers_for(HostedAccessPointProvider(), "HostedAccessPoint")
