"""{P}_ElementCapabilities: the host system and its VirtualSystemManagementService
and their VirtualSystemManagementCapabilities (DSP2013 use case 5.1.3); each
virtual system and its EnabledLogicalElementCapabilities (use case 5.2.5); each
resource pool and its AllocationCapabilities, the host and every
AllocationCapabilities, the ResourcePoolConfigurationService and its
capabilities (use case 5.1.8, issue 5); the host and the ConsoleRedirectionService and
their ConsoleRedirectionServiceCapabilities (DSP1076); the VirtualSystemSnapshotService
and its capabilities, each virtual system and its VirtualSystemSnapshotCapabilities
(DSP2013 5.2.8.1); the host and the VirtualSystemMigrationService and their
VirtualSystemMigrationCapabilities (DSP1081)."""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.virt import keys, list_domains, lookup_domain
from kvm_providers.model.allocation import Capabilities, host_capabilities, lookup_capabilities
from kvm_providers.model.pools import list_pools

from .common import AssociationProvider, Role, providers_for
from .common.paths import (cs_of_path, cs_path, elec_path, host_of_path, host_path,
                           vsmc_path, vsms_path)
from .common.pool_paths import (POOL_CLASSES, ac_path, pool_of_path, pool_path, rpcc_id, rpcc_path,
                                rpcs_path)
from .common.migration_paths import ms_path, msc_id, msc_path
from .common.redirection_paths import crs_path, crsc_id, crsc_path
from .common.snapshot_paths import snapcaps_path, vsss_path, vsssc_id, vsssc_path

__all__ = ["ElementCapabilitiesProvider", "get_providers"]

_POOLS = {c.lower() for c in POOL_CLASSES}


class ElementCapabilitiesProvider(AssociationProvider):
    roles = (Role("ManagedElement", ["HostSystem", "VirtualSystemManagementService",
                                     "ComputerSystem", "ResourcePoolConfigurationService",
                                     "ConsoleRedirectionService",
                                     "VirtualSystemMigrationService",
                                     "VirtualSystemSnapshotService", *POOL_CLASSES]),
             Role("Capabilities", ["VirtualSystemManagementCapabilities",
                                   "VirtualSystemSnapshotServiceCapabilities",
                                   "VirtualSystemSnapshotCapabilities",
                                   "EnabledLogicalElementCapabilities",
                                   "AllocationCapabilities",
                                   "ResourcePoolConfigurationCapabilities",
                                   "ConsoleRedirectionServiceCapabilities",
                                   "VirtualSystemMigrationCapabilities"]))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        base = path.classname.split("_", 1)[1].lower()
        if base == "hostsystem":
            host = host_of_path(path, family)
            if host is not None:
                yield vsmc_path(host)
                yield crsc_path(host)
                yield msc_path(host)
                for each in host_capabilities(host):
                    yield ac_path(each)
        elif base in _POOLS:
            pool = pool_of_path(path, family)
            if pool is not None:
                yield ac_path(Capabilities(pool.host, pool.kind, pool))
        elif base == "allocationcapabilities":
            ac = lookup_capabilities(family, path.keybindings.get("InstanceID"))
            if ac is not None:
                yield host_path(ac.host)
                if ac.pool is not None:
                    yield pool_path(ac.pool)
        elif base == "resourcepoolconfigurationservice":
            for host in self.hosts(path.classname):
                if self.paths_equal(rpcs_path(host), path):
                    yield rpcc_path(host)
        elif base == "resourcepoolconfigurationcapabilities":
            for host in self.hosts(path.classname):
                if path.keybindings.get("InstanceID") == rpcc_id(host):
                    yield rpcs_path(host)
        elif base == "consoleredirectionservice":
            for host in self.hosts(path.classname):
                if self.paths_equal(crs_path(host), path):
                    yield crsc_path(host)
        elif base == "consoleredirectionservicecapabilities":
            for host in self.hosts(path.classname):
                if path.keybindings.get("InstanceID") == crsc_id(host):
                    yield host_path(host)
                    yield crs_path(host)
        elif base == "virtualsystemmigrationservice":
            for host in self.hosts(path.classname):
                if self.paths_equal(ms_path(host), path):
                    yield msc_path(host)
        elif base == "virtualsystemmigrationcapabilities":
            for host in self.hosts(path.classname):
                if path.keybindings.get("InstanceID") == msc_id(host):
                    yield host_path(host)
                    yield ms_path(host)
        elif base == "virtualsystemsnapshotservice":          # issue 13
            for host in self.hosts(path.classname):
                if self.paths_equal(vsss_path(host), path):
                    yield vsssc_path(host)
        elif base == "virtualsystemsnapshotservicecapabilities":
            for host in self.hosts(path.classname):
                if path.keybindings.get("InstanceID") == vsssc_id(host):
                    yield vsss_path(host)
        elif base == "virtualsystemsnapshotcapabilities":
            hit = keys.parse_cs_name(family, path.keybindings.get("InstanceID"))
            if hit is not None and lookup_domain(*hit) is not None:
                yield cs_path(*hit)
        elif base == "virtualsystemmanagementservice":
            for host in self.hosts(path.classname):
                if self.paths_equal(vsms_path(host), path):
                    yield vsmc_path(host)
        elif base == "computersystem":
            ref = cs_of_path(path, family)
            if ref is not None:
                yield elec_path(ref.host, ref.name)
                yield snapcaps_path(ref.host, ref.name)
        elif base == "virtualsystemmanagementcapabilities":
            for host in self.hosts(path.classname):
                if path.keybindings.get("InstanceID") == keys.vsmc_id(host):
                    yield host_path(host)
                    yield vsms_path(host)
        elif base == "enabledlogicalelementcapabilities":
            hit = keys.parse_cs_name(family, path.keybindings.get("InstanceID"))
            if hit is not None and lookup_domain(*hit) is not None:
                yield cs_path(*hit)

    def sources(self, env, family):
        for host in self.hosts(f"{family}_X"):
            yield host_path(host)
            yield vsms_path(host)
            for ref in list_domains(host):
                yield cs_path(host, ref.name)
            yield rpcs_path(host)
            yield crs_path(host)
            yield ms_path(host)
            yield vsss_path(host)
            for pool in list_pools(host):
                yield pool_path(pool)


def get_providers(env) -> dict[str, Any]:
    return providers_for(ElementCapabilitiesProvider(), "ElementCapabilities")
