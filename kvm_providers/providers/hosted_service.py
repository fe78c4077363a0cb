"""{P}_HostedService: the host system (Antecedent) and the services it hosts
(Dependent): the VirtualSystemManagementService, and the other services of
the family (resource pool configuration, migration, snapshots, console
redirection) once their providers exist - those are found through the CIMOM
handle, by SystemName."""

from __future__ import annotations

from typing import Any, Iterable

import pywbem

from .common import AssociationProvider, Role, providers_for
from .common.base import VIRT_NS
from .common.paths import host_of_path, host_path, host_system_name, vsms_path

__all__ = ["HostedServiceProvider", "get_providers", "OTHER_SERVICES"]

#: Services of other provider modules, found through the CIMOM handle.
OTHER_SERVICES = ("ResourcePoolConfigurationService", "VirtualSystemMigrationService",
                  "VirtualSystemSnapshotService", "ConsoleRedirectionService",
                  "MetricService")      # issue 15: DSP1053 hosts it on the system too


def _other_services(env, family: str, system_name: str) -> Iterable[Any]:
    try:
        handle = env.get_cimom_handle()
    except pywbem.CIMError:
        return
    for base in OTHER_SERVICES:
        try:
            paths = list(handle.EnumerateInstanceNames(VIRT_NS, f"{family}_{base}"))
        except pywbem.CIMError:
            continue  # no provider for it (yet)
        for p in paths:
            if p.keybindings.get("SystemName") == system_name:
                if p.namespace is None:
                    p = p.copy()
                    p.namespace = VIRT_NS
                yield p


class HostedServiceProvider(AssociationProvider):
    roles = (Role("Antecedent", ["HostSystem"]),
             Role("Dependent", ("VirtualSystemManagementService",) + OTHER_SERVICES))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            host = host_of_path(path, family)
            if host is None:
                return
            yield vsms_path(host)
            yield from _other_services(env, family, host_system_name(host))
            return
        name = path.keybindings.get("SystemName")
        for host in self.hosts(path.classname):
            if host_system_name(host) != name:
                continue
            base = path.classname.split("_", 1)[1].lower()
            if base == "virtualsystemmanagementservice":
                if self.paths_equal(vsms_path(host), path):
                    yield host_path(host)
            elif any(self.paths_equal(p, path)
                     for p in _other_services(env, family, name)):
                yield host_path(host)

    def sources(self, env, family):
        for host in self.hosts(f"{family}_X"):
            yield host_path(host)


def get_providers(env) -> dict[str, Any]:
    return providers_for(HostedServiceProvider(), "HostedService")
