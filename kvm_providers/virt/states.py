"""libvirt domain states (names of libvirt's state codes) and the state last requested for
a domain.

What they are in CIM terms (EnabledState, HealthState, OperationalStatus ...)
is the CIM side's: :mod:`kvm_providers.providers.common.states`.
"""

from __future__ import annotations

import threading
from typing import Optional

import libvirt

__all__ = ["requested_state", "record_requested_state", "STATE_NAMES", "NOSTATE", "RUNNING",
           "BLOCKED", "PAUSED", "SHUTDOWN", "SHUTOFF", "CRASHED", "PMSUSPENDED"]

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

# The last state requested for a domain (RequestStateChange, issue 4: a RequestedState
# value), kept per host and domain UUID for the life of the process.
_requested: dict[tuple[str, str], int] = {}
_requested_lock = threading.Lock()


def record_requested_state(host_label: str, uuid: str, state: Optional[int]) -> None:
    """Remember the state last requested for a domain (None forgets it)."""
    with _requested_lock:
        if state is None:
            _requested.pop((host_label, uuid), None)
        else:
            _requested[(host_label, uuid)] = int(state)


def requested_state(host_label: str, uuid: str) -> Optional[int]:
    """The state last requested for a domain, None if none was."""
    return _requested.get((host_label, uuid))
