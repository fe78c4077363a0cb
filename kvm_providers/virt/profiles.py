"""The management profiles this implementation registers (DSP1033), per class family.

Each :class:`Profile` becomes a ``{P}_RegisteredProfile`` instance in
``root/interop`` for every family that has a configured host.  InstanceIDs
are libvirt-cim's (COMPAT.md).  When hosts of several families are
configured, each family registers its own implementation and the InstanceID
gets ``-<family>`` appended, so that InstanceIDs stay unique in the namespace.

``scoping`` names the InstanceID of the profile that references this one
(``{P}_ReferencedProfile``: Antecedent = this, the referenced profile;
Dependent = the referencing one, as DSP1033 defines it).  ``central_class``
(without family prefix) is the class whose instances conform to the profile
(``{P}_ElementConformsToProfile``); the providers of the central classes of
later profiles (pools, allocation capabilities: issue 5) are reached through
the CIMOM handle, so adding such a profile here is all it takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["Profile", "PROFILES", "PROFILE_BY_ID", "DSP1042", "DSP1057", "SNAPSHOT_PROFILE",
           "OWN_ORGANIZATION", "profile_instance_id", "profile_from_instance_id"]


@dataclass(frozen=True)
class Profile:
    instance_id: str                 # libvirt-cim's InstanceID
    name: str                        # RegisteredName
    version: str                     # RegisteredVersion
    central_class: Optional[str]     # without family prefix
    scoping: Optional[str] = None    # InstanceID of the referencing profile
    organization: int = 2            # DMTF
    advertise_types: tuple[int, ...] = (3,)   # SLP
    #: OtherRegisteredOrganization, for a profile of organization 1 (Other)
    other_organization: Optional[str] = None


DSP1042 = "CIM:DSP1042-SystemVirtualization-1.0.0"
DSP1057 = "CIM:DSP1057-VirtualSystem-1.0.0a"
#: issue 13: DMTF published no snapshot profile (only the CIM schema's classes), so the
#: snapshot service registers the project's own, as Hyper-V registers its vendor
#: profiles: RegisteredOrganization 1 (Other) and OtherRegisteredOrganization.
SNAPSHOT_PROFILE = "kvm_providers:VirtualSystemSnapshot-1.0.0"
OWN_ORGANIZATION = "kvm_providers"

PROFILES: tuple[Profile, ...] = (
    Profile(DSP1042, "System Virtualization", "1.0.0", "HostSystem"),
    Profile(DSP1057, "Virtual System", "1.0.0a", "ComputerSystem", scoping=DSP1042),
    Profile("CIM:DSP1059-GenericDeviceResourceVirtualization-1.0.0_d",
            "Generic Device Resource Virtualization", "1.0.0", "DiskPool", scoping=DSP1042),
    Profile("CIM:DSP1059-GenericDeviceResourceVirtualization-1.0.0_n",
            "Generic Device Resource Virtualization", "1.0.0", "NetworkPool", scoping=DSP1042),
    Profile("CIM:DSP1059-GenericDeviceResourceVirtualization-1.0.0_p",
            "Generic Device Resource Virtualization", "1.0.0", "ProcessorPool",
            scoping=DSP1042),
    Profile("CIM:DSP1045-MemoryResourceVirtualization-1.0.0",
            "Memory Resource Virtualization", "1.0.0", "MemoryPool", scoping=DSP1042),
    # central class as libvirt-cim registers it (the redirection service); see
    # docs/compat.md "KVM redirection (DSP1076)"
    Profile("CIM:DSP1076-KVMRedirection-1.0.0", "KVM Redirection", "1.0.0",
            "ConsoleRedirectionService", scoping=DSP1042),
    # issue 14: the migration service is the central class (libvirt-cim's InstanceID)
    Profile("CIM:DSP1081-VirtualSystemMigration-0.8.1", "Virtual System Migration", "0.8.1",
            "VirtualSystemMigrationService", scoping=DSP1042),
    Profile("CIM:DSP1043-AllocationCapabilities-1.0.0a", "Allocation Capabilities", "1.0.0a",
            "AllocationCapabilities", scoping=DSP1042),
    Profile("CIM:DSP1041-ResourceAllocation-1.1.0c_d", "Resource Allocation", "1.1.0c",
            "DiskPool", scoping=DSP1042),
    Profile("CIM:DSP1041-ResourceAllocation-1.1.0c_n", "Resource Allocation", "1.1.0c",
            "NetworkPool", scoping=DSP1042),
    Profile("CIM:DSP1041-ResourceAllocation-1.1.0c_p", "Resource Allocation", "1.1.0c",
            "ProcessorPool", scoping=DSP1042),
    Profile("CIM:DSP1041-ResourceAllocation-1.1.0c_m", "Resource Allocation", "1.1.0c",
            "MemoryPool", scoping=DSP1042),
    # monitoring (issue 15): the metric definitions conform, System Virtualization scopes
    Profile("CIM:DSP1053-BaseMetrics-1.0.1", "Base Metrics", "1.0.1", "BaseMetricDefinition",
            scoping=DSP1042),
    # issue 13: snapshots (no DMTF profile: see SNAPSHOT_PROFILE)
    Profile(SNAPSHOT_PROFILE, "Virtual System Snapshot", "1.0.0",
            "VirtualSystemSnapshotService", scoping=DSP1042, organization=1,
            other_organization=OWN_ORGANIZATION),
)

PROFILE_BY_ID = {p.instance_id: p for p in PROFILES}


def profile_instance_id(profile: Profile, family: str, several_families: bool) -> str:
    """The InstanceID of `profile` for `family`."""
    return f"{profile.instance_id}-{family}" if several_families else profile.instance_id


def profile_from_instance_id(instance_id: str, family: str,
                             several_families: bool) -> Optional[Profile]:
    """The Profile an InstanceID names for `family`, or None."""
    if not isinstance(instance_id, str):
        return None
    if several_families:
        suffix = f"-{family}"
        if not instance_id.endswith(suffix):
            return None
        instance_id = instance_id[:-len(suffix)]
    return PROFILE_BY_ID.get(instance_id)
