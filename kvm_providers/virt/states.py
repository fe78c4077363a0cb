"""libvirt domain states in CIM terms (EnabledState, HealthState, OperationalStatus ...).

Values follow libvirt-cim (COMPAT.md) where it defines them: running or
blocked 2 (Enabled), paused 9 (Quiesce), shutting down 4 (Shutting Down),
shut off or crashed 3 (Disabled), shut off with a managed save image 6
(Enabled but Offline: libvirt-cim's "suspended"), no state 0 (Unknown).
A guest suspended to RAM/disk by its OS (pmsuspended) is also 6.
"""

from __future__ import annotations

import threading
from typing import Optional

import libvirt

from ..schema.valuemaps import CIM_EnabledLogicalElement, CIM_ManagedSystemElement

__all__ = ["enabled_state", "health_state", "operational_status", "operating_status",
           "requested_state", "record_requested_state", "STATE_NAMES"]

NOSTATE = libvirt.VIR_DOMAIN_NOSTATE
RUNNING = libvirt.VIR_DOMAIN_RUNNING
BLOCKED = libvirt.VIR_DOMAIN_BLOCKED
PAUSED = libvirt.VIR_DOMAIN_PAUSED
SHUTDOWN = libvirt.VIR_DOMAIN_SHUTDOWN
SHUTOFF = libvirt.VIR_DOMAIN_SHUTOFF
CRASHED = libvirt.VIR_DOMAIN_CRASHED
PMSUSPENDED = getattr(libvirt, "VIR_DOMAIN_PMSUSPENDED", 7)

STATE_NAMES = {NOSTATE: "no state", RUNNING: "running", BLOCKED: "blocked",
               PAUSED: "paused", SHUTDOWN: "shutting down", SHUTOFF: "shut off",
               CRASHED: "crashed", PMSUSPENDED: "suspended by the guest"}

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


# RequestedState: the last state requested through CIM (RequestStateChange, issue 4),
# kept per host and domain UUID for the life of the process; 0 (Unknown) otherwise.
_requested: dict[tuple[str, str], int] = {}
_requested_lock = threading.Lock()


def record_requested_state(host_label: str, uuid: str, state: Optional[int]) -> None:
    """Remember the state last requested for a domain (None forgets it)."""
    with _requested_lock:
        if state is None:
            _requested.pop((host_label, uuid), None)
        else:
            _requested[(host_label, uuid)] = int(state)


def requested_state(host_label: str, uuid: str) -> int:
    """CIM RequestedState: the last requested state, or 0 (Unknown)."""
    return _requested.get((host_label, uuid), CIM_EnabledLogicalElement.RequestedState.Unknown)
