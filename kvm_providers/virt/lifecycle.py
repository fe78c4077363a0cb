"""State changes of virtual systems (RequestStateChange, DSP1057) and per-domain locks.

``request_state_change(ref, state, timeout)`` performs one of the CIM state
transitions on a domain and answers with the DSP1057 return code:

=====  ==============  ===============================================================
state  name            libvirt
=====  ==============  ===============================================================
2      Enabled         create (start, or restore the managed-save image), resume,
                       wake up a guest suspended by its OS
3      Disabled        destroy (power off); from a saved system: drop the image
4      Shut Down       shutdown (ACPI/agent); with TimeoutPeriod, wait until shut off
6      Offline         managedSave (the image is restored by Enabled)
9      Quiesce         suspend (pause)
10     Reboot          reboot (guest cooperation)
11     Reset           reset (hard reset); a paused guest is resumed after it
=====  ==============  ===============================================================

What is possible depends on the current state and on the driver (the test
driver has no pmwakeup; LXC has no managed save): :func:`transitions` says
what works for a domain *now*, and EnabledLogicalElementCapabilities
publishes exactly that.  A state that is possible in general but not from the
current state returns 4097 (Invalid State Transition); a state this
implementation never performs (7 Test, 8 Defer, vendor values) or the driver
cannot perform returns 1 (Not Supported); a value outside RequestedState's
ValueMap returns 5 (Invalid Parameter); a shutdown that did not finish within
TimeoutPeriod returns 3.

:func:`domain_lock` serializes every change to one domain (state changes
and configuration changes) within this process; different domains proceed in
parallel.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

import libvirt

from . import states
from .connection import Host
from .domain import DomainRef, has_managed_save
from .edit import invalidate

__all__ = ["request_state_change", "wait_shutoff", "perform", "DEFERRED", "transitions", "domain_lock", "host_lock", "DRIVER_OPS",
           "ALL_STATES", "RC_OK", "RC_NOT_SUPPORTED", "RC_FAILED", "RC_TIMEOUT",
           "RC_INVALID_PARAMETER", "RC_INVALID_TRANSITION", "driver_name"]

LOG = logging.getLogger(__name__)

RC_OK = 0
RC_NOT_SUPPORTED = 1
RC_FAILED = 2            # "Unknown or Unspecified Error"
RC_TIMEOUT = 3           # "Cannot complete within Timeout Period"
RC_INVALID_PARAMETER = 5
RC_INVALID_TRANSITION = 4097

ENABLED, DISABLED, SHUT_DOWN, OFFLINE, QUIESCE, REBOOT, RESET = 2, 3, 4, 6, 9, 10, 11
#: Every state RequestStateChange performs (capabilities.REQUESTED_STATES).
ALL_STATES = (ENABLED, DISABLED, SHUT_DOWN, OFFLINE, QUIESCE, REBOOT, RESET)
#: RequestedState's ValueMap (CIM_EnabledLogicalElement): other values are invalid.
_VALUE_MAP = {2, 3, 4, 6, 7, 8, 9, 10, 11}

#: What each driver can do (libvirt's getType(), upper case).  Operations:
#: start, destroy, shutdown, managedsave, suspend, resume, reboot, reset, pmwakeup.
DRIVER_OPS: dict[str, frozenset[str]] = {
    "QEMU": frozenset({"start", "destroy", "shutdown", "managedsave", "suspend", "resume",
                       "reboot", "reset", "pmwakeup"}),
    "TEST": frozenset({"start", "destroy", "shutdown", "managedsave", "suspend", "resume",
                       "reboot", "reset"}),
    "LXC": frozenset({"start", "destroy", "shutdown", "suspend", "resume", "reboot"}),
}
_DEFAULT_OPS = frozenset({"start", "destroy", "shutdown", "suspend", "resume", "reboot"})

#: Polling interval while waiting for a guest to shut down.
_POLL = 0.2


def driver_name(host: Host) -> str:
    """libvirt's name of the host's driver ('QEMU', 'TEST', 'LXC' ...), upper case."""
    return host.info("drivertype", lambda conn: conn.getType()).upper()


def _ops(host: Host) -> frozenset[str]:
    return DRIVER_OPS.get(driver_name(host), _DEFAULT_OPS)


# -- locks -------------------------------------------------------------------------

class _Lock:
    """A re-entrant lock object that a WeakValueDictionary can hold."""

    __slots__ = ("lock", "__weakref__")

    def __init__(self) -> None:
        self.lock = threading.RLock()


_locks: "weakref.WeakValueDictionary[tuple, _Lock]" = weakref.WeakValueDictionary()
_locks_guard = threading.Lock()


def _lock_for(key: tuple) -> _Lock:
    with _locks_guard:
        lk = _locks.get(key)
        if lk is None:
            lk = _locks[key] = _Lock()
        return lk


@contextmanager
def domain_lock(*refs: DomainRef) -> Iterator[None]:
    """Hold the locks of the given domains (in a fixed order: no deadlock between callers)."""
    keys = sorted({(r.host.label, r.uuid) for r in refs})
    held = [_lock_for(("domain",) + k) for k in keys]
    for lk in held:
        lk.lock.acquire()
    try:
        yield
    finally:
        for lk in reversed(held):
            lk.lock.release()


@contextmanager
def host_lock(host: Host) -> Iterator[None]:
    """Serializes the definition of new domains on one host (name and UUID checks)."""
    lk = _lock_for(("host", host.label))
    with lk.lock:
        yield


# -- what is possible now ------------------------------------------------------------

def _live_state(ref: DomainRef) -> tuple[int, bool, bool]:
    """(libvirt state, active, has a managed save image), asked of libvirt now."""
    with ref.host.guard(f"getting the state of {ref.name!r}"):
        st = ref.dom.state(0)[0]
        active = bool(ref.dom.isActive())
    saved = not active and has_managed_save(ref)
    return st, active, saved


def _possible(st: int, active: bool, saved: bool, ops: frozenset[str]) -> dict[int, str]:
    """{CIM state: libvirt operation} possible from a libvirt state."""
    out: dict[int, str] = {}
    if not active:
        if "start" in ops:
            # a start that restores the managed-save image is its own (long) operation
            out[ENABLED] = "restore" if saved else "start"
        if saved:
            out[DISABLED] = "discard"            # drop the managed-save image
        return out
    if st in (states.RUNNING, states.BLOCKED):
        out.update({DISABLED: "destroy", SHUT_DOWN: "shutdown", OFFLINE: "managedsave",
                    QUIESCE: "suspend", REBOOT: "reboot", RESET: "reset"})
    elif st == states.PAUSED:
        out.update({ENABLED: "resume", DISABLED: "destroy", OFFLINE: "managedsave",
                    RESET: "reset"})
    elif st == states.PMSUSPENDED:
        out.update({ENABLED: "pmwakeup", DISABLED: "destroy"})
    elif st in (states.SHUTDOWN, states.CRASHED, states.NOSTATE):
        out[DISABLED] = "destroy"
    return {s: op for s, op in out.items()
            if op == "discard" or op in ops or (op == "restore" and "start" in ops)}


def _ever(ops: frozenset[str]) -> set[int]:
    """The states a driver with `ops` can reach from some state."""
    out: set[int] = set()
    for st, active, saved in ((states.RUNNING, True, False), (states.PAUSED, True, False),
                              (states.PMSUSPENDED, True, False), (states.SHUTOFF, False, True)):
        out.update(_possible(st, active, saved, ops))
    return out


def transitions(ref: DomainRef) -> list[int]:
    """The states RequestStateChange can reach from the domain's current state, sorted."""
    st, active, saved = _live_state(ref)
    return sorted(_possible(st, active, saved, _ops(ref.host)))


# -- performing a transition ------------------------------------------------------------

def wait_shutoff(ref: DomainRef, timeout: float,
                 stop: Optional[Callable[[], bool]] = None) -> bool:
    """Wait until the domain is shut off (True) or `timeout` s passed or `stop()` says
    so (False)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if not ref.dom.isActive():
                return True
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return True   # a transient domain is gone once it is shut off
            raise ref.host.translate(exc, f"waiting for {ref.name!r} to shut down") from None
        if time.monotonic() >= deadline or (stop is not None and stop()):
            return False
        time.sleep(min(_POLL, max(deadline - time.monotonic(), 0.01)))


def _run(ref: DomainRef, op: str) -> None:
    d = ref.dom
    if op in ("start", "restore"):
        d.create()                        # restores a managed-save image when there is one
    elif op == "destroy":
        d.destroy()
    elif op == "discard":
        d.managedSaveRemove(0)
    elif op == "shutdown":
        d.shutdown()
    elif op == "managedsave":
        # A paused guest comes back running: the saved state is "Offline", not "Quiesce".
        d.managedSave(getattr(libvirt, "VIR_DOMAIN_SAVE_RUNNING", 2))
    elif op == "suspend":
        d.suspend()
    elif op == "resume":
        d.resume()
    elif op == "reboot":
        d.reboot(0)
    elif op == "reset":
        d.reset(0)
        # CIM's Reset is "first Disabled and then Enabled" (CIM_EnabledLogicalElement.
        # RequestStateChange): a guest reset while paused, which libvirt keeps paused,
        # runs afterwards, as libvirt-cim's reset (destroy, then start) left it.
        if d.state(0)[0] == libvirt.VIR_DOMAIN_PAUSED:
            d.resume()
    elif op == "pmwakeup":
        d.pMWakeup(0)
    else:  # pragma: no cover - the table above lists every operation
        raise ValueError(op)


#: request_state_change(..., defer=...) answers (RC_OK, DEFERRED + op) for an operation it
#: checked but left to the caller (:func:`perform`, in a job).
DEFERRED = "deferred:"


def perform(ref: DomainRef, op: str) -> None:
    """Run a state operation request_state_change deferred (blocking: in a job)."""
    host = ref.host
    with domain_lock(ref):
        try:
            with host.guard(f"changing the state of {ref.name!r} ({op})"):
                _run(ref, op)
        finally:
            invalidate(host, ref.uuid)


def request_state_change(ref: DomainRef, requested: Optional[int],
                         timeout: Optional[float] = None, wait: bool = True,
                         defer: tuple[str, ...] = ()) -> tuple[int, str]:
    """Perform RequestStateChange; returns (DSP1057 return code, explanation for the log).

    `timeout` (seconds, from TimeoutPeriod; None or 0: no requirement) is
    honoured by Shut Down, which waits for the guest to power off (unless
    `wait` is False: then the caller waits, with :func:`wait_shutoff`, in a
    job); the other transitions are complete when libvirt returns.  An
    operation named in `defer` (e.g. "managedsave") is checked but not run:
    the answer is (RC_OK, DEFERRED + op) and the caller runs it with
    :func:`perform`.  libvirt failures other than "not supported" raise
    CIM_ERR_FAILED naming the host.
    """
    if requested is not None and 32768 <= int(requested) <= 65535:
        return RC_NOT_SUPPORTED, f"vendor state {requested} is not supported"
    if requested is None or int(requested) not in _VALUE_MAP:
        return RC_INVALID_PARAMETER, f"RequestedState {requested!r} is not a valid state"
    requested = int(requested)
    if requested not in ALL_STATES:
        return RC_NOT_SUPPORTED, f"RequestedState {requested} is not supported"
    host = ref.host
    with domain_lock(ref):
        st, active, saved = _live_state(ref)
        ops = _ops(host)
        allowed = _possible(st, active, saved, ops)
        op = allowed.get(requested)
        if op is None:
            name = states.STATE_NAMES.get(st, str(st))
            if requested in _ever(ops):
                return RC_INVALID_TRANSITION, \
                    f"{ref.name!r} is {name}{' with a saved image' if saved else ''}: " \
                    f"state {requested} cannot be reached from there"
            return RC_NOT_SUPPORTED, \
                f"the {driver_name(host)} driver cannot perform state {requested}"
        if op in defer:
            # checked; the caller runs it (perform) - a long operation, in a job
            states.record_requested_state(host.label, ref.uuid, requested)
            return RC_OK, DEFERRED + op
        try:
            with host.guard(f"changing the state of {ref.name!r} ({op})"):
                try:
                    _run(ref, op)
                except libvirt.libvirtError as exc:
                    if Host.unsupported(exc):
                        return RC_NOT_SUPPORTED, f"{op}: {exc.get_error_message()}"
                    raise
        finally:
            invalidate(host, ref.uuid)
        states.record_requested_state(host.label, ref.uuid, requested)
    if op == "shutdown" and timeout and wait:
        if not wait_shutoff(ref, float(timeout)):
            return RC_TIMEOUT, f"{ref.name!r} did not shut down within {timeout} s"
    return RC_OK, op
