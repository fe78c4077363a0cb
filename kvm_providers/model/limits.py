"""Allocation limits of a host: the one definition of what a RASD may ask for.

{P}_AllocationCapabilities and its SettingsDefineCapabilities RASDs
(DSP1043, issue 5) advertise these limits; the VirtualSystemManagementService
methods (issue 4) enforce them with :func:`check`.  Keeping both on
:func:`allocation_limits` means what is advertised is exactly what is
accepted.

For each device kind (its ``limits`` hook in :mod:`kvm_providers.model.kinds`):

* ``minimum``, ``maximum``, ``default``, ``increment`` of the quantity
  (VirtualQuantity: vCPUs for ``proc``, KiB for ``mem``; None where a kind
  has no quantity);
* ``units`` (AllocationUnits as the RASDs report them);
* ``values``: the accepted values of enumerated properties, e.g. disk
  ``BusType`` or graphics ``ResourceSubType``.  Taken from libvirt's domain
  capabilities where the driver has them (QEMU), else from fixed lists.
"""

from __future__ import annotations

from typing import Any, Optional

from ..virt.connection import Host
from ..virt.errors import VirtError
from ..virt.hostcaps import domain_caps, guest_type, host_caps
from .kinds import KINDS
from .kinds.base import LimitEnv, Limits
from .kinds.mem import DEFAULT_MEMORY_KIB, MEMORY_INCREMENT_KIB, MIN_MEMORY_KIB

__all__ = ["Limits", "allocation_limits", "check", "LimitError", "MIN_MEMORY_KIB",
           "DEFAULT_MEMORY_KIB", "MEMORY_INCREMENT_KIB"]


class LimitError(VirtError, ValueError):
    """A value outside the advertised limits; the message names property and value."""

    reason = "invalid-setting"

    def __init__(self, prop: str, value: Any, why: str):
        super().__init__(f"{prop} {value!r} {why}")
        self.prop, self.value = prop, value


def allocation_limits(host: Host, family: Optional[str] = None) -> dict[str, Limits]:
    """{kind name: Limits} for new or changed settings of `family` virtual systems on `host`.

    The host's facts are gathered once here; each kind's ``limits`` hook
    (kinds/<kind>.py) turns them into its limits.
    """
    family = family or host.family
    key = f"limits:{family}"

    def compute(conn: Any) -> dict[str, Limits]:
        caps = host_caps(host)
        try:
            g, dtype = guest_type(host, family)
            dc = domain_caps(host, g.emulator, g.arch, None, dtype)
        except ValueError:
            dc = None
        max_vcpus = None
        if dc is not None and dc.find("vcpu") is not None:
            try:
                max_vcpus = int(dc.find("vcpu").get("max"))
            except (TypeError, ValueError):
                max_vcpus = None
        if not max_vcpus:
            max_vcpus = caps.cpus or None     # None: the host cannot tell
        env = LimitEnv(conn.getType(), dc, max_vcpus, caps.memory_kib or None)
        return {k.name: k.limits(env) for k in KINDS if k.limits is not None}
    return host.info(key, compute)


def check(host: Host, kind: str, prop: str, value: Any, family: Optional[str] = None) -> None:
    """Raise LimitError if `value` of property `prop` of a `kind` setting is outside the limits.

    Quantities (``VirtualQuantity`` / ``Limit`` / ``Reservation`` of proc and
    mem, already converted to the limit's units) are checked against
    minimum, maximum and increment; enumerated properties against their
    values.  None is always accepted (it means "leave as it is").
    """
    if value is None:
        return
    lim = allocation_limits(host, family).get(kind)
    if lim is None:
        return
    if prop in ("VirtualQuantity", "Limit", "Reservation") and lim.minimum is not None:
        try:
            n = int(value)
        except (TypeError, ValueError):
            raise LimitError(prop, value, "is not a number") from None
        unit = f" {lim.units}" if lim.units else ""
        if n < lim.minimum:
            raise LimitError(prop, value, f"is below the minimum {lim.minimum}{unit}")
        if lim.maximum is not None and n > lim.maximum:
            raise LimitError(prop, value, f"is above the maximum {lim.maximum}{unit}")
        if lim.increment and n % lim.increment:
            raise LimitError(prop, value, f"is not a multiple of {lim.increment}{unit}")
        return
    allowed = lim.values.get(prop)
    if allowed is not None and value not in allowed:
        raise LimitError(prop, value, f"is not one of {', '.join(map(str, allowed))}")
