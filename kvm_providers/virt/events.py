"""Domain lifecycle events of libvirt hosts, as plain data.

:func:`subscribe` registers a libvirt domain lifecycle event callback
(``domainEventRegisterAny``) on every connection of a host, or of every host
of a :class:`~.connection.ConnectionManager`, through the hosts' connect
hooks: the callback is registered again after every reconnection, and the
subscriber is told of each (re)connection, after which it should read the
host again (events of the time the connection was down are lost).

The events run on libvirt's event loop thread (:func:`~.connection.ensure_event_loop`)
as :class:`DomainEvent` values: the host, the domain's name and UUID, and
libvirt's event and detail codes.  Subscribers must return quickly (queue the
event and do the work elsewhere): every host's events wait for them.

:func:`subscribe_changes` reports, as :class:`ChangeEvent` values, every
event that says a domain (lifecycle, devices, tunables, balloon, media,
metadata), a storage pool (lifecycle, refresh) or a network (lifecycle)
changed: for caches that must not outlive a change (the read scopes shared
inside a CIM server, :mod:`kvm_providers.cmpi.sharing`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Union

import libvirt

from .connection import Host

__all__ = ["DomainEvent", "DomainEvents", "subscribe", "event_name", "EVENT_DEFINED",
           "ProblemEvent", "ProblemEvents", "subscribe_problems",
           "EVENT_UNDEFINED", "EVENT_STARTED", "EVENT_STOPPED", "ChangeEvent", "ChangeEvents",
           "subscribe_changes", "JobCompletedEvent", "JobCompletedEvents",
           "subscribe_job_completed"]

LOG = logging.getLogger(__name__)

# virDomainEventType
EVENT_DEFINED: int = libvirt.VIR_DOMAIN_EVENT_DEFINED
EVENT_UNDEFINED: int = libvirt.VIR_DOMAIN_EVENT_UNDEFINED
EVENT_STARTED: int = libvirt.VIR_DOMAIN_EVENT_STARTED
EVENT_STOPPED: int = libvirt.VIR_DOMAIN_EVENT_STOPPED
# Details of EVENT_DEFINED that change the definition of an existing domain.
_DEFINITION_CHANGED = {getattr(libvirt, "VIR_DOMAIN_EVENT_DEFINED_UPDATED", 1),
                       getattr(libvirt, "VIR_DOMAIN_EVENT_DEFINED_FROM_SNAPSHOT", 3)}
_EVENT_NAMES = {0: "defined", 1: "undefined", 2: "started", 3: "suspended", 4: "resumed",
                5: "stopped", 6: "shutdown", 7: "pmsuspended", 8: "crashed"}


def event_name(event: int) -> Union[str, int]:
    """libvirt's name of a lifecycle event code ('started', ...), or the code itself."""
    return _EVENT_NAMES.get(event, event)


def definition_changed(event: int, detail: int) -> bool:
    """True if the event says an existing domain's definition (its settings) changed."""
    return event == EVENT_DEFINED and detail in _DEFINITION_CHANGED


@dataclass(frozen=True)
class DomainEvent:
    """One lifecycle event of a domain."""

    host: Host
    name: str
    uuid: str
    event: int            # virDomainEventType
    detail: int           # its virDomainEvent*DetailType

    @property
    def kind(self) -> Union[str, int]:
        """The event's name ('defined', 'started', ...)."""
        return event_name(self.event)

    @property
    def definition_changed(self) -> bool:
        """True if the domain's definition (its settings) changed."""
        return definition_changed(self.event, self.detail)


class HookSource(Protocol):
    """A :class:`~.connection.Host` or :class:`~.connection.ConnectionManager`."""

    def add_connect_hook(self, hook: Callable[[Host, Any], None]) -> None:
        ...

    def remove_connect_hook(self, hook: Callable[[Host, Any], None]) -> None:
        ...


class DomainEvents:
    """A subscription to the lifecycle events of some hosts; :meth:`close` ends it."""

    def __init__(self, source: HookSource, on_event: Callable[[DomainEvent], None],
                 on_connect: Optional[Callable[[Host], None]] = None):
        self.source = source
        self.on_event = on_event
        self.on_connect = on_connect
        self.closed = False
        self._lock = threading.Lock()
        self._callbacks: dict[str, tuple[Any, int]] = {}     # host -> (conn, callback id)

    def start(self) -> "DomainEvents":
        """Register with the hosts: at once for the hosts that are up (in this
        thread), then after every reconnection (in the host's supervisor thread)."""
        self.source.add_connect_hook(self._connected)
        return self

    def close(self) -> None:
        """Deregister the callbacks; no more events or connections are reported."""
        self.closed = True
        try:
            self.source.remove_connect_hook(self._connected)
        except Exception:  # pylint: disable=broad-except
            pass
        with self._lock:
            callbacks, self._callbacks = dict(self._callbacks), {}
        for conn, cbid in callbacks.values():
            try:
                conn.domainEventDeregisterAny(cbid)
            except Exception:  # pylint: disable=broad-except
                pass          # the connection is gone, and its callbacks with it

    # -- libvirt side (supervisor and event loop threads) ----------------------------

    def _connected(self, host: Host, conn: Any) -> None:
        if self.closed:
            return
        cbid: Optional[int]
        try:
            cbid = conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                               self._callback, host)
        except libvirt.libvirtError as exc:
            LOG.warning("libvirt host %s: no domain events (%s); its changes are seen "
                        "only after reconnections", host.label, exc.get_error_message())
            cbid = None
        LOG.debug("libvirt host %s: lifecycle event callback %s registered", host.label, cbid)
        if cbid is not None:
            with self._lock:
                self._callbacks[host.label] = (conn, cbid)
        if self.on_connect is not None:
            self.on_connect(host)

    def _callback(self, _conn: Any, dom: Any, event: int, detail: int, host: Host) -> None:
        # libvirt's event loop thread.  name() and UUIDString() are local: no RPC.
        try:
            name, uuid = dom.name(), dom.UUIDString()
        except libvirt.libvirtError:
            return
        LOG.debug("libvirt host %s: domain %s %s (%s)", host.label, name, event_name(event),
                  detail)
        try:
            self.on_event(DomainEvent(host, name, uuid, event, detail))
        except Exception:  # pylint: disable=broad-except
            LOG.exception("libvirt host %s: domain event subscriber failed", host.label)


def subscribe(source: HookSource, on_event: Callable[[DomainEvent], None],
              on_connect: Optional[Callable[[Host], None]] = None) -> DomainEvents:
    """Report the lifecycle events of the domains of `source` (a host or the connection
    manager) to `on_event`, and every (re)connection of one of its hosts to
    `on_connect` (after the callback is registered: events from then on are
    reported).  Both run on libvirt's threads and must return quickly."""
    return DomainEvents(source, on_event, on_connect).start()


# -- abnormal conditions (issue 15: alerts without polling) ---------------------------------

_WATCHDOG_ACTIONS = {0: "none", 1: "pause", 2: "reset", 3: "poweroff", 4: "shutdown",
                     5: "debug", 6: "inject-nmi"}


@dataclass(frozen=True)
class ProblemEvent:
    """An abnormal condition libvirt reports for a domain, or its end.

    ``kind``: 'io-error' (detail: libvirt's reason, 'enospc', 'eio' ...),
    'watchdog' (detail: the action, 'reset' ...), 'crash' (detail: 'panicked',
    'crashloaded' or 'stopped'); and the lifecycle changes that end a condition:
    'started', 'resumed', 'stopped', 'undefined' (detail '').
    """

    host: Host
    name: str
    uuid: str
    kind: str
    detail: str


class ProblemEvents(DomainEvents):
    """A subscription to the I/O error, watchdog and lifecycle events of some hosts,
    reported as :class:`ProblemEvent` (see :func:`subscribe_problems`)."""

    def __init__(self, source: HookSource, on_problem: Callable[[ProblemEvent], None],
                 on_connect: Optional[Callable[[Host], None]] = None):
        super().__init__(source, lambda _ev: None, on_connect)
        self.on_problem = on_problem
        self._extra: dict[str, list[tuple[Any, int]]] = {}

    def close(self) -> None:
        super().close()
        with self._lock:
            extra, self._extra = dict(self._extra), {}
        for pairs in extra.values():
            for conn, cbid in pairs:
                try:
                    conn.domainEventDeregisterAny(cbid)
                except Exception:  # pylint: disable=broad-except
                    pass

    def _connected(self, host: Host, conn: Any) -> None:
        if self.closed:
            return
        pairs = []
        for ev_id, cb in ((libvirt.VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON, self._io_error),
                          (libvirt.VIR_DOMAIN_EVENT_ID_WATCHDOG, self._watchdog)):
            try:
                pairs.append((conn, conn.domainEventRegisterAny(None, ev_id, cb, host)))
            except libvirt.libvirtError as exc:
                LOG.info("libvirt host %s: no %s events (%s)", host.label,
                         "I/O error" if cb == self._io_error else "watchdog",
                         exc.get_error_message())
        with self._lock:
            self._extra[host.label] = pairs
        super()._connected(host, conn)       # lifecycle: crashes and what ends a condition

    def _report(self, dom: Any, host: Host, kind: str, detail: str) -> None:
        try:
            name, uuid = dom.name(), dom.UUIDString()
        except libvirt.libvirtError:
            return
        try:
            self.on_problem(ProblemEvent(host, name, uuid, kind, detail))
        except Exception:  # pylint: disable=broad-except
            LOG.exception("libvirt host %s: problem event subscriber failed", host.label)

    def _io_error(self, _conn: Any, dom: Any, _src: str, _dev: str, _action: int,
                  reason: str, host: Host) -> None:
        self._report(dom, host, "io-error", reason or "")

    def _watchdog(self, _conn: Any, dom: Any, action: int, host: Host) -> None:
        self._report(dom, host, "watchdog", _WATCHDOG_ACTIONS.get(action, str(action)))

    def _callback(self, _conn: Any, dom: Any, event: int, detail: int, host: Host) -> None:
        kind: Optional[str] = None
        what = ""
        if event == libvirt.VIR_DOMAIN_EVENT_CRASHED:
            kind, what = "crash", "crashloaded" if detail == 1 else "panicked"
        elif event == EVENT_STOPPED and detail == libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED:
            kind, what = "crash", "stopped"
        elif event in (EVENT_STARTED, EVENT_STOPPED, EVENT_UNDEFINED,
                       libvirt.VIR_DOMAIN_EVENT_RESUMED):
            kind = {EVENT_STARTED: "started", EVENT_STOPPED: "stopped",
                    EVENT_UNDEFINED: "undefined"}.get(event, "resumed")
        if kind is not None:
            self._report(dom, host, kind, what)


def subscribe_problems(source: HookSource, on_problem: Callable[[ProblemEvent], None]
                       ) -> ProblemEvents:
    """Report the abnormal conditions libvirt signals for the domains of `source` (I/O
    errors, watchdog expiries, crashes) and the lifecycle changes that end them, as
    :class:`ProblemEvent` values, on libvirt's event loop thread (return quickly).
    Registered again after every reconnection."""
    sub = ProblemEvents(source, on_problem)
    sub.start()
    return sub


# -- libvirt's job-completed event (issue 13: a job's final figures) ------------------------


@dataclass(frozen=True)
class JobCompletedEvent:
    """libvirt's job-completed event of a domain: its job ended successfully, with the
    job's final statistics (``virDomainGetJobStats`` keys: ``operation``,
    ``time_elapsed``, ``data_total``, ``data_processed``, ``data_remaining``,
    ``memory_*``, ``disk_*`` ...)."""

    host: Host
    name: str
    uuid: str
    stats: dict[str, Any]


class JobCompletedEvents(DomainEvents):
    """A subscription to ``VIR_DOMAIN_EVENT_ID_JOB_COMPLETED`` of some hosts (see
    :func:`subscribe_job_completed`)."""

    def __init__(self, source: HookSource, on_completed: Callable[[JobCompletedEvent], None]):
        super().__init__(source, lambda _ev: None)
        self.on_completed = on_completed

    def _connected(self, host: Host, conn: Any) -> None:
        if self.closed:
            return
        try:
            cbid = conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, self._completed, host)
        except libvirt.libvirtError as exc:
            LOG.info("libvirt host %s: no job-completed events (%s); jobs are followed by "
                     "their statistics only", host.label, exc.get_error_message())
            return
        with self._lock:
            self._callbacks[host.label] = (conn, cbid)

    def _completed(self, _conn: Any, dom: Any, params: Any, host: Host) -> None:
        try:
            name, uuid = dom.name(), dom.UUIDString()
        except libvirt.libvirtError:
            return
        try:
            self.on_completed(JobCompletedEvent(host, name, uuid, dict(params or {})))
        except Exception:  # pylint: disable=broad-except
            LOG.exception("libvirt host %s: job-completed subscriber failed", host.label)


def subscribe_job_completed(source: HookSource,
                            on_completed: Callable[[JobCompletedEvent], None]
                            ) -> JobCompletedEvents:
    """Report libvirt's job-completed events of the domains of `source` as
    :class:`JobCompletedEvent` values, on libvirt's event loop thread (return quickly).
    Registered at once for the hosts that are up, again after every reconnection."""
    sub = JobCompletedEvents(source, on_completed)
    sub.start()
    return sub


# -- changes of any kind (cmpi.sharing: end the read scopes shared inside a CIM server) --------

#: (kind, what, register method, event id, deregister method): the libvirt events that
#: say a domain, storage pool or network changed.  libvirt has no volume events; a
#: volume created or deleted through libvirt shows as a pool "refresh" only where the
#: driver emits one.
_CHANGE_EVENTS: list[tuple[str, str, str, int, str]] = [
    (kind, what, reg, getattr(libvirt, const), dereg)
    for kind, what, reg, const, dereg in (
        ("domain", "lifecycle", "domainEventRegisterAny", "VIR_DOMAIN_EVENT_ID_LIFECYCLE",
         "domainEventDeregisterAny"),
        ("domain", "device-added", "domainEventRegisterAny", "VIR_DOMAIN_EVENT_ID_DEVICE_ADDED",
         "domainEventDeregisterAny"),
        ("domain", "device-removed", "domainEventRegisterAny",
         "VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED", "domainEventDeregisterAny"),
        ("domain", "tunable", "domainEventRegisterAny", "VIR_DOMAIN_EVENT_ID_TUNABLE",
         "domainEventDeregisterAny"),
        ("domain", "balloon", "domainEventRegisterAny", "VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE",
         "domainEventDeregisterAny"),
        ("domain", "disk-change", "domainEventRegisterAny", "VIR_DOMAIN_EVENT_ID_DISK_CHANGE",
         "domainEventDeregisterAny"),
        ("domain", "tray-change", "domainEventRegisterAny", "VIR_DOMAIN_EVENT_ID_TRAY_CHANGE",
         "domainEventDeregisterAny"),
        ("domain", "metadata", "domainEventRegisterAny", "VIR_DOMAIN_EVENT_ID_METADATA_CHANGE",
         "domainEventDeregisterAny"),
        ("storage-pool", "lifecycle", "storagePoolEventRegisterAny",
         "VIR_STORAGE_POOL_EVENT_ID_LIFECYCLE", "storagePoolEventDeregisterAny"),
        ("storage-pool", "refresh", "storagePoolEventRegisterAny",
         "VIR_STORAGE_POOL_EVENT_ID_REFRESH", "storagePoolEventDeregisterAny"),
        ("network", "lifecycle", "networkEventRegisterAny", "VIR_NETWORK_EVENT_ID_LIFECYCLE",
         "networkEventDeregisterAny"),
    ) if hasattr(libvirt, const)]


@dataclass(frozen=True)
class ChangeEvent:
    """Something of a host changed: a domain, storage pool or network (by name)."""

    host: Host
    kind: str             # "domain", "storage-pool", "network"
    name: str             # the object's name ("" if libvirt could not say)
    what: str             # "lifecycle", "device-added", "refresh", ...


class ChangeEvents:
    """A subscription to every change event of some hosts (:data:`_CHANGE_EVENTS`)."""

    def __init__(self, source: HookSource, on_change: Callable[[ChangeEvent], None],
                 on_connect: Optional[Callable[[Host], None]] = None):
        self.source = source
        self.on_change = on_change
        self.on_connect = on_connect
        self.closed = False
        self._lock = threading.Lock()
        self._callbacks: dict[str, list[tuple[Any, str, int]]] = {}   # host -> [(conn, dereg, id)]

    def start(self) -> "ChangeEvents":
        """Register with the hosts (now for those up, again after every reconnection)."""
        self.source.add_connect_hook(self._connected)
        return self

    def close(self) -> None:
        """Deregister every callback."""
        self.closed = True
        try:
            self.source.remove_connect_hook(self._connected)
        except Exception:  # pylint: disable=broad-except
            pass
        with self._lock:
            callbacks, self._callbacks = dict(self._callbacks), {}
        for regs in callbacks.values():
            for conn, dereg, cbid in regs:
                try:
                    getattr(conn, dereg)(cbid)
                except Exception:  # pylint: disable=broad-except
                    pass      # the connection is gone, and its callbacks with it

    def _connected(self, host: Host, conn: Any) -> None:
        if self.closed:
            return
        regs = []
        for kind, what, reg, event_id, dereg in _CHANGE_EVENTS:
            try:
                cbid = getattr(conn, reg)(None, event_id, self._callback_for(host, kind, what),
                                          None)
            except (libvirt.libvirtError, AttributeError) as exc:
                # A driver without this event (e.g. no networks): its changes are seen
                # by the next request only.
                LOG.debug("libvirt host %s: no %s %s events (%s)", host.label, kind, what, exc)
                continue
            regs.append((conn, dereg, cbid))
        with self._lock:
            old = self._callbacks.pop(host.label, [])
            self._callbacks[host.label] = regs
        for oconn, dereg, cbid in old:
            if oconn is not conn:
                continue      # an old connection's callbacks went with it
            try:
                getattr(oconn, dereg)(cbid)
            except Exception:  # pylint: disable=broad-except
                pass
        if self.on_connect is not None:
            self.on_connect(host)

    def _callback_for(self, host: Host, kind: str, what: str) -> Callable[..., None]:
        # libvirt calls back with (conn, object, <event's own values>..., opaque).
        def callback(_conn: Any, obj: Any, *_rest: Any) -> None:
            try:
                name = obj.name()
            except Exception:  # pylint: disable=broad-except
                name = ""
            try:
                self.on_change(ChangeEvent(host, kind, name, what))
            except Exception:  # pylint: disable=broad-except
                LOG.exception("libvirt host %s: change event subscriber failed", host.label)
        return callback


def subscribe_changes(source: HookSource, on_change: Callable[[ChangeEvent], None],
                      on_connect: Optional[Callable[[Host], None]] = None) -> ChangeEvents:
    """Report every change event of the domains, storage pools and networks of `source`
    to `on_change`, and every (re)connection of one of its hosts to `on_connect`
    (events of the time the connection was down are lost).  Both run on libvirt's
    threads and must return quickly."""
    return ChangeEvents(source, on_change, on_connect).start()
