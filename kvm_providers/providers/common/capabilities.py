"""What the implementation can do: the one place the capability classes read (CIM values:
the CIM side of the libvirt layer's lifecycle, which performs the states).

{P}_EnabledLogicalElementCapabilities (per virtual system) and
{P}_VirtualSystemManagementCapabilities (per host) publish these lists.
The lists say what is *implemented*: a test checks that every method listed
has a ``cim_method_`` in the service's provider, and that every state listed
for a domain is accepted by its RequestStateChange.
"""

from __future__ import annotations

from typing import Any

from kvm_providers.schema.valuemaps import (CIM_EnabledLogicalElementCapabilities,
                                            CIM_VirtualSystemManagementCapabilities)
from kvm_providers.virt.lifecycle import transitions

__all__ = ["VSMS_METHOD_VALUES", "VSMS_SYNCHRONOUS_METHODS", "VSMS_ASYNCHRONOUS_METHODS",
           "REQUESTED_STATES", "ELEMENT_NAME_EDIT_SUPPORTED", "synchronous_methods_supported",
           "asynchronous_methods_supported", "requested_states_supported",
           "virtual_system_types"]

_VSMC = CIM_VirtualSystemManagementCapabilities.SynchronousMethodsSupported

#: CIM_VirtualSystemManagementCapabilities.SynchronousMethodsSupported values by method.
VSMS_METHOD_VALUES: dict[str, int] = {
    "AddResourceSettings": _VSMC.AddResourcesSupported,   # (libvirt-cim published 1)
    "DefineSystem": _VSMC.DefineSystemSupported,
    "DestroySystem": _VSMC.DestroySystemSupported,
    "DestroySystemConfiguration": _VSMC.DestroySystemConfigurationSupported,
    "ModifyResourceSettings": _VSMC.ModifyResourceSettingsSupported,
    "ModifySystemSettings": _VSMC.ModifySystemSettingsSupported,
    "RemoveResourceSettings": _VSMC.RemoveResourcesSupported,
}

#: Methods of {P}_VirtualSystemManagementService implemented synchronously
#: (return 0 when done).  DestroySystemConfiguration (4) is not offered:
#: libvirt has no separate configuration to destroy.
VSMS_SYNCHRONOUS_METHODS: tuple[str, ...] = (
    "AddResourceSettings", "DefineSystem", "DestroySystem", "ModifyResourceSettings",
    "ModifySystemSettings", "RemoveResourceSettings")

#: Methods that may return 4096 (job started).
VSMS_ASYNCHRONOUS_METHODS: tuple[str, ...] = ()

_RSS = CIM_EnabledLogicalElementCapabilities.RequestedStatesSupported

#: States a client may request through ComputerSystem.RequestStateChange
#: (CIM_EnabledLogicalElementCapabilities.RequestedStatesSupported values).
#: Every state that ComputerSystem.RequestStateChange performs on some domain;
#: which of them work for one domain now: :func:`requested_states_supported`.
REQUESTED_STATES: tuple[int, ...] = (_RSS.Enabled, _RSS.Disabled, _RSS.Shut_Down, _RSS.Offline,
                                     _RSS.Quiesce, _RSS.Reboot, _RSS.Reset)

#: Whether ElementName of a virtual system can be changed (renaming a domain).
ELEMENT_NAME_EDIT_SUPPORTED = False


def synchronous_methods_supported() -> list[int]:
    return [VSMS_METHOD_VALUES[m] for m in VSMS_SYNCHRONOUS_METHODS]


def asynchronous_methods_supported() -> list[int]:
    return [VSMS_METHOD_VALUES[m] for m in VSMS_ASYNCHRONOUS_METHODS]


def requested_states_supported(enabled_state: int | None = None, ref: Any = None) -> list[int]:
    """RequestedStatesSupported: with `ref` (a DomainRef), exactly the states that
    RequestStateChange accepts for that domain now (its state and its driver);
    without, every state it ever performs."""
    if ref is not None:
        return transitions(ref)
    return list(REQUESTED_STATES)


def virtual_system_types(family: str) -> list[str]:
    """VirtualSystemTypesSupported (libvirt-cim: the family prefix, e.g. 'KVM')."""
    return [family]
