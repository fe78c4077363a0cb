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

_ENABLED = {NOSTATE: 0, RUNNING: 2, BLOCKED: 2, PAUSED: 9, SHUTDOWN: 4, SHUTOFF: 3,
            CRASHED: 3, PMSUSPENDED: 6}
_HEALTH = {RUNNING: 5, BLOCKED: 5, PAUSED: 5, PMSUSPENDED: 5, CRASHED: 20}
# CIM_ManagedSystemElement.OperationalStatus: 2 OK, 15 Dormant, 6 Error, 0 Unknown
_OPERATIONAL = {NOSTATE: 15, SHUTDOWN: 15, SHUTOFF: 15, CRASHED: 6, RUNNING: 2,
                BLOCKED: 2, PAUSED: 2, PMSUSPENDED: 15}
# CIM_ManagedSystemElement.OperatingStatus: 16 In Service, 7 Dormant, 13 Shutting Down,
# 5 Stopped, 6 Aborted (libvirt-cim used the vendor value 32768 for running).
_OPERATING = {NOSTATE: 0, RUNNING: 16, BLOCKED: 16, PAUSED: 7, PMSUSPENDED: 7,
              SHUTDOWN: 13, SHUTOFF: 5, CRASHED: 6}


def enabled_state(state: int, managed_save: bool = False) -> int:
    """CIM EnabledState of a libvirt state (shut off with a save image: 6)."""
    if state == SHUTOFF and managed_save:
        return 6
    return _ENABLED.get(state, 0)


def health_state(state: int) -> int:
    return _HEALTH.get(state, 0)


def operational_status(state: int) -> list[int]:
    return [_OPERATIONAL.get(state, 0)]


def operating_status(state: int) -> int:
    return _OPERATING.get(state, 0)


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
    return _requested.get((host_label, uuid), 0)
