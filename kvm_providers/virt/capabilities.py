"""What the implementation can do: the one place the capability classes read.

{P}_EnabledLogicalElementCapabilities (per virtual system) and
{P}_VirtualSystemManagementCapabilities (per host) publish these lists.
The lists say what is *implemented*, so they grow with the code: the work
that implements RequestStateChange and the VirtualSystemManagementService
methods (issue 4) adds its states and methods here, and a test checks that
every method listed is implemented by the service's provider.
"""

from __future__ import annotations

__all__ = ["VSMS_METHOD_VALUES", "VSMS_SYNCHRONOUS_METHODS", "VSMS_ASYNCHRONOUS_METHODS",
           "REQUESTED_STATES", "ELEMENT_NAME_EDIT_SUPPORTED", "synchronous_methods_supported",
           "asynchronous_methods_supported", "requested_states_supported",
           "virtual_system_types"]

#: CIM_VirtualSystemManagementCapabilities.SynchronousMethodsSupported ValueMap.
VSMS_METHOD_VALUES: dict[str, int] = {
    "AddResourceSettings": 1,
    "DefineSystem": 2,
    "DestroySystem": 3,
    "DestroySystemConfiguration": 4,
    "ModifyResourceSettings": 5,
    "ModifySystemSettings": 6,
    "RemoveResourceSettings": 7,
}

#: Methods of {P}_VirtualSystemManagementService implemented synchronously
#: (return 0 when done).  Issue 4 lists its methods here.
VSMS_SYNCHRONOUS_METHODS: tuple[str, ...] = ()

#: Methods that may return 4096 (job started).
VSMS_ASYNCHRONOUS_METHODS: tuple[str, ...] = ()

#: States a client may request through ComputerSystem.RequestStateChange
#: (CIM_EnabledLogicalElementCapabilities.RequestedStatesSupported values:
#: 2 Enabled, 3 Disabled, 4 Shut Down, 6 Offline, 9 Quiesce, 10 Reboot, 11 Reset).
#: Issue 4 lists what its RequestStateChange implements.
REQUESTED_STATES: tuple[int, ...] = ()

#: Whether ElementName of a virtual system can be changed (renaming a domain).
ELEMENT_NAME_EDIT_SUPPORTED = False


def synchronous_methods_supported() -> list[int]:
    return [VSMS_METHOD_VALUES[m] for m in VSMS_SYNCHRONOUS_METHODS]


def asynchronous_methods_supported() -> list[int]:
    return [VSMS_METHOD_VALUES[m] for m in VSMS_ASYNCHRONOUS_METHODS]


def requested_states_supported(enabled_state: int | None = None) -> list[int]:
    """RequestedStatesSupported; `enabled_state` lets an implementation narrow it by state."""
    return list(REQUESTED_STATES)


def virtual_system_types(family: str) -> list[str]:
    """VirtualSystemTypesSupported (libvirt-cim: the family prefix, e.g. 'KVM')."""
    return [family]
