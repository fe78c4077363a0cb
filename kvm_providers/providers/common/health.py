"""HealthState, OperationalStatus and CommunicationStatus of what lives on a libvirt host.

The values say whether the host answers now (:func:`kvm_providers.virt.hostfacts.host_reachable`,
one probe per host and request), never a constant:

=====================  ===========  =================  ===================  ==================
host                   HealthState  OperationalStatus  CommunicationStatus  StatusDescriptions
=====================  ===========  =================  ===================  ==================
answers                5 OK         [2 OK]             2 Communication OK   (NULL)
away, hung             20 Major     [13 Lost           3 Lost Communication why (names the
                       failure      Communication]                          host)
=====================  ===========  =================  ===================  ==================

"Major failure" rather than "Critical failure": the host cannot be managed
through this service now, but the connection comes back by itself when
libvirtd does.  A storage pool or network that is not running (its host
answering) is OperationalStatus [10 Stopped] with HealthState 5: being
stopped is not a failure (:func:`pool_status_values`).
"""

from __future__ import annotations

from typing import Any, Callable

from kvm_providers.virt.connection import Host
from kvm_providers.virt.hostfacts import host_reachable

__all__ = ["STATUS_PROPS", "HEALTH_OK", "HEALTH_MAJOR_FAILURE", "OP_OK", "OP_STOPPED",
           "OP_LOST_COMMUNICATION", "COMM_OK", "COMM_LOST", "host_status_values",
           "pool_status_values"]

#: The status properties this module sets (those the class defines and the client wants).
STATUS_PROPS = ("HealthState", "OperationalStatus", "CommunicationStatus", "StatusDescriptions")

HEALTH_OK = 5
HEALTH_MAJOR_FAILURE = 20
OP_OK = 2
OP_STOPPED = 10
OP_LOST_COMMUNICATION = 13
COMM_OK = 2
COMM_LOST = 3


def host_status_values(host: Host) -> dict[str, Callable[[], Any]]:
    """{property: zero-argument callable} of the status of an element of `host` (for
    :func:`kvm_providers.providers.common.fill`: the host is probed only when one of them
    is wanted)."""
    def reason() -> Any:
        return host_reachable(host)

    return {
        "HealthState": lambda: HEALTH_OK if reason() is None else HEALTH_MAJOR_FAILURE,
        "OperationalStatus": lambda: [OP_OK] if reason() is None else [OP_LOST_COMMUNICATION],
        "CommunicationStatus": lambda: COMM_OK if reason() is None else COMM_LOST,
        "StatusDescriptions": lambda: None if reason() is None else [reason()],
    }


def pool_status_values(host: Host, active: Callable[[], bool]) -> dict[str, Callable[[], Any]]:
    """As :func:`host_status_values`, for a resource pool whose `active()` says whether it
    runs (asked only while the host answers): a stopped pool is OperationalStatus
    [10 Stopped], HealthState 5."""
    values = host_status_values(host)
    base_op = values["OperationalStatus"]

    def op() -> Any:
        got = base_op()
        if got == [OP_OK] and not active():
            return [OP_STOPPED]
        return got
    values["OperationalStatus"] = op
    return values
