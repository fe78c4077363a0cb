"""libvirt domain states in CIM terms (EnabledState, HealthState, OperationalStatus ...).

Values follow libvirt-cim (COMPAT.md) where it defines them: running or
blocked 2 (Enabled), paused 9 (Quiesce), shutting down 4 (Shutting Down),
shut off or crashed 3 (Disabled), shut off with a managed save image 6
(Enabled but Offline: libvirt-cim's "suspended"), no state 0 (Unknown).
A guest suspended to RAM/disk by its OS (pmsuspended) is also 6.

The CIM side of :mod:`kvm_providers.virt.states` (libvirt's state codes).
"""

from __future__ import annotations

from kvm_providers.schema.valuemaps import CIM_EnabledLogicalElement, CIM_ManagedSystemElement
from kvm_providers.virt import states as lv
from kvm_providers.virt.states import (BLOCKED, CRASHED, NOSTATE, PAUSED, PMSUSPENDED, RUNNING,
                                       SHUTDOWN, SHUTOFF)

__all__ = ["enabled_state", "health_state", "operational_status", "operating_status",
           "requested_state"]

_ES = CIM_EnabledLogicalElement.EnabledState
_HS = CIM_ManagedSystemElement.HealthState
_OS = CIM_ManagedSystemElement.OperationalStatus
_OPS = CIM_ManagedSystemElement.OperatingStatus

_ENABLED = {NOSTATE: _ES.Unknown, RUNNING: _ES.Enabled, BLOCKED: _ES.Enabled,
            PAUSED: _ES.Quiesce, SHUTDOWN: _ES.Shutting_Down, SHUTOFF: _ES.Disabled,
            CRASHED: _ES.Disabled, PMSUSPENDED: _ES.Enabled_but_Offline}
_HEALTH = {RUNNING: _HS.OK, BLOCKED: _HS.OK, PAUSED: _HS.OK, PMSUSPENDED: _HS.OK,
           CRASHED: _HS.Major_failure}
_OPERATIONAL = {NOSTATE: _OS.Dormant, SHUTDOWN: _OS.Dormant, SHUTOFF: _OS.Dormant,
                CRASHED: _OS.Error, RUNNING: _OS.OK, BLOCKED: _OS.OK, PAUSED: _OS.OK,
                PMSUSPENDED: _OS.Dormant}
# libvirt-cim used the vendor value 32768 for a running system's OperatingStatus.
_OPERATING = {NOSTATE: _OPS.Unknown, RUNNING: _OPS.In_Service, BLOCKED: _OPS.In_Service,
              PAUSED: _OPS.Dormant, PMSUSPENDED: _OPS.Dormant,
              SHUTDOWN: _OPS.Shutting_Down, SHUTOFF: _OPS.Stopped, CRASHED: _OPS.Aborted}


def enabled_state(state: int, managed_save: bool = False) -> int:
    """CIM EnabledState of a libvirt state (shut off with a save image: 6)."""
    if state == SHUTOFF and managed_save:
        return _ES.Enabled_but_Offline
    return _ENABLED.get(state, _ES.Unknown)


def health_state(state: int) -> int:
    return _HEALTH.get(state, _HS.Unknown)


def operational_status(state: int) -> list[int]:
    return [_OPERATIONAL.get(state, _OS.Unknown)]


def operating_status(state: int) -> int:
    return _OPERATING.get(state, _OPS.Unknown)


def requested_state(host_label: str, uuid: str) -> int:
    """CIM RequestedState: the state last requested for the domain, or 0 (Unknown)."""
    state = lv.requested_state(host_label, uuid)
    return CIM_EnabledLogicalElement.RequestedState.Unknown if state is None else state
