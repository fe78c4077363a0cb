"""{P}_ComputerSystemCreatedIndication, DeletedIndication and ModifiedIndication, and
{P}_ResourceAllocationSettingDataCreatedIndication, DeletedIndication and
ModifiedIndication (the settings of the domains' devices, as libvirt-cim raised them).

Lifecycle indications of virtual systems, from libvirt's domain lifecycle
events: whatever changes a domain (this server, virsh, virt-manager, another
management tool, the guest shutting itself down) is reported, at once, never
by polling (libvirt-cim polled every 60 s and saw only its own changes).

How:

* When the server enables indications for this module (a subscription to one
  of its classes appears), a watcher subscribes to the domain lifecycle
  events of every host through the libvirt layer (:mod:`kvm_providers.virt.events`,
  registered again after every reconnection).  The events arrive on
  libvirt's event loop thread and are only queued; one watcher thread
  (attached to the CIMOM handle, as CMPI requires) does the rest.
* The watcher keeps the last {P}_ComputerSystem instance it saw of every
  domain, got through the CIMOM handle (GetInstance / EnumerateInstances of
  the ComputerSystem provider, so that the indication carries exactly what
  clients read).  For each event it reads the domain's instance again and
  compares: no previous one -> Created; gone -> Deleted (SourceInstance is
  the last state seen); both -> Modified with the *real* PreviousInstance, if
  the instance changed or the event says the definition changed (settings
  are not properties of ComputerSystem).
* After a (re)connection the watcher reads all domains of the host and
  reports the differences, so changes made while the connection was down are
  not lost; the first reading after enabling only fills the cache.

RASD indications: while a filter for one of their classes is active, the
watcher also keeps the RASDs of every domain (read through the CIMOM handle:
Associators of the domain's VSSD over VirtualSystemSettingDataComponent) and,
for each event, compares them by InstanceID: a new RASD (a new domain's, or a
device added) -> Created, a RASD gone (a device removed, or the domain
undefined) -> Deleted, a changed one -> Modified with its PreviousInstance.
Domains whose RASDs were not kept yet (the filter appeared later) are only
read, not reported.

Changes faster than the watcher reads them are coalesced: an indication
carries the state at the time the watcher read it, and a change that is
undone before it is read may not be reported.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from typing import Any, Optional

import pywbem
from pywbem import CIMError, CIMInstance

from kvm_providers.provider import cim_error, request_scope
from kvm_providers.virt import events, keys, list_domains, manager
from kvm_providers.virt.connection import Host
from kvm_providers.virt.errors import VirtError

from .common.base import VIRT_NS
from .common.indication_hooks import IndicationHooks, deliver_indication, instance_indication
from .common.paths import cs_path, vssd_path

__all__ = ["get_providers", "enable_indications", "disable_indications", "activate_filter",
           "deactivate_filter", "authorize_filter", "shutdown", "CREATED", "DELETED",
           "MODIFIED", "RASD_CREATED", "RASD_DELETED", "RASD_MODIFIED"]

LOG = logging.getLogger(__name__)

CREATED = "ComputerSystemCreatedIndication"
DELETED = "ComputerSystemDeletedIndication"
MODIFIED = "ComputerSystemModifiedIndication"
RASD_CREATED = "ResourceAllocationSettingDataCreatedIndication"
RASD_DELETED = "ResourceAllocationSettingDataDeletedIndication"
RASD_MODIFIED = "ResourceAllocationSettingDataModifiedIndication"
_RASD_KINDS = (RASD_CREATED, RASD_DELETED, RASD_MODIFIED)

#: Events queued before the watcher falls back to re-reading the host.
QUEUE_SIZE = 10000
#: An "undefined" event can reach us before libvirtd has removed the domain (the QEMU
#: driver queues the event, then removes the inactive domain), and a domain removed while
#: it is being read fails the reading: then the domain is looked up again, RECHECKS times
#: at most, RECHECK_DELAY seconds apart, so that its deletion is reported once it is gone.
RECHECKS = 5
RECHECK_DELAY = 0.2


class _Watcher:
    """Domain events of every host -> lifecycle indications."""

    def __init__(self, handle: Any):
        self.handle = handle                  # prepared for this thread (PrepareAttachThread)
        self.jobs: queue.Queue = queue.Queue(QUEUE_SIZE)
        self.known: dict[tuple[str, str], CIMInstance] = {}   # (host, CS Name) -> instance
        # (host, CS Name) -> {RASD InstanceID: instance}, while RASD indications are wanted
        self.rasds: dict[tuple[str, str], dict[str, CIMInstance]] = {}
        self.synced: set[str] = set()         # hosts whose domains have been read once
        self.overflowed: set[str] = set()     # hosts whose events did not fit the queue
        self.subscription: Optional[events.DomainEvents] = None   # the libvirt events
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name="lifecycle-indications")
        self.hostname = socket.gethostname()
        self.stopping = False

    # -- start and stop --------------------------------------------------------------

    def start(self, handle: Any) -> None:
        """Subscribe to the domain events, read every host, then start the thread.

        The first reading happens here, in the caller's thread with its
        `handle`, so that every change after the subscription was made is
        reported; changes between the callbacks' registration and this
        reading are in the cache already, and their events find nothing new.
        """
        # _on_connect: at once for the hosts that are up, then after every reconnection.
        hosts = manager()
        self.subscription = events.subscribe(hosts, self._on_event, self._on_connect)
        for host in hosts.hosts:
            if host.is_up:
                self._sync(host, handle)
        self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping = True
        if self.subscription is not None:
            self.subscription.close()
        while True:           # make room for the stop marker
            try:
                self.jobs.put_nowait(None)
                break
            except queue.Full:
                try:
                    self.jobs.get_nowait()
                except queue.Empty:
                    pass
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    # -- libvirt side (supervisor and event loop threads): queue and return -----------

    def _on_connect(self, host: Host) -> None:
        if not self.stopping:
            self._put(("sync", host))

    def _on_event(self, ev: events.DomainEvent) -> None:
        self._put(("event", ev.host, ev.name, ev.event, ev.detail))

    def _put(self, job: tuple) -> None:
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            host = job[1]
            if host.label not in self.overflowed:
                LOG.warning("libvirt host %s: too many domain events queued; the host will "
                            "be read again", host.label)
            self.overflowed.add(host.label)

    # -- the watcher thread ------------------------------------------------------------

    def _run(self) -> None:
        self.handle.AttachThread()
        try:
            while True:
                job = self.jobs.get()
                if job is None or self.stopping:
                    return
                try:
                    if job[0] == "sync":
                        self._sync(job[1])
                    else:
                        self._event(*job[1:])
                except Exception:  # pylint: disable=broad-except
                    LOG.exception("lifecycle indications: %s failed", job[0])
                if self.overflowed and self.jobs.empty():
                    for label in list(self.overflowed):
                        self.overflowed.discard(label)
                        host = manager().host(label)
                        if host is not None:
                            self._sync(host)
        finally:
            self.handle.DetachThread()

    def _get(self, host: Host, name: str, handle: Any = None) -> Optional[CIMInstance]:
        """The domain's ComputerSystem instance now, or None if it does not exist."""
        try:
            return (handle or self.handle).GetInstance(cs_path(host, name))
        except CIMError as exc:
            if exc.status_code == pywbem.CIM_ERR_NOT_FOUND:
                return None
            raise

    def _read_host(self, host: Host, handle: Any) -> dict[str, CIMInstance]:
        """{CS Name: instance} of every domain of `host`."""
        cls = f"{host.family}_ComputerSystem"
        if len(manager().for_family(host.family)) == 1:
            # One enumeration (two libvirt calls) when the family has only this host.
            return {i["Name"]: i for i in handle.EnumerateInstances(VIRT_NS, cls)}
        out = {}
        for ref in list_domains(host):
            inst = self._get(host, ref.name, handle)
            if inst is not None:
                out[inst["Name"]] = inst
        return out

    def _sync(self, host: Host, handle: Any = None) -> None:
        """Read every domain of `host`; report the differences unless it is the first time."""
        try:
            with request_scope():
                current = self._read_host(host, handle or self.handle)
        except (CIMError, VirtError) as exc:
            # VirtError: list_domains (several hosts of the family) asks the host itself.
            LOG.warning("lifecycle indications: cannot read the domains of host %s: %s",
                        host.label, _description(exc))
            return
        first = host.label not in self.synced
        label = host.label
        before = {name: inst for (lbl, name), inst in self.known.items() if lbl == label}
        for name, inst in current.items():
            prev = before.get(name)
            self.known[(label, name)] = inst
            self._settings(host, name, report=not first, new=prev is None, handle=handle)
            if first:
                continue
            if prev is None:
                self._deliver(host, CREATED, inst, None)
            elif _differs(prev, inst):
                self._deliver(host, MODIFIED, inst, prev)
        for name, prev in before.items():
            if name not in current:
                del self.known[(label, name)]
                self._settings_gone(host, name, report=not first)
                if not first:
                    self._deliver(host, DELETED, prev, None)
        self.synced.add(label)
        LOG.debug("lifecycle indications: host %s read (%d domains)%s", label, len(current),
                  " for the first time" if first else "")

    def _recheck(self, host: Host, name: str, event: int, detail: int, attempt: int) -> None:
        """Handle the event once more in RECHECK_DELAY seconds, RECHECKS times at most."""
        if attempt < RECHECKS and not self.stopping:
            timer = threading.Timer(RECHECK_DELAY, self._put,
                                    args=(("event", host, name, event, detail, attempt + 1),))
            timer.daemon = True
            timer.start()

    def _event(self, host: Host, name: str, event: int, detail: int, attempt: int = 0) -> None:
        if host.label not in self.synced:
            self._sync(host)          # the first reading failed before: this one fills the cache
            return
        key = (host.label, keys.cs_name(host, name))
        try:
            with request_scope():
                current = self._get(host, name)
        except CIMError as exc:
            # The host went away: the reconnection reads it again and reports what changed.
            # A domain removed while it was being read fails the reading too: look again.
            LOG.info("lifecycle indications: domain %s on host %s (%s event): %s", name,
                     host.label, events.event_name(event), exc.status_description)
            self._recheck(host, name, event, detail, attempt)
            return
        prev = self.known.get(key)
        if current is None:
            self._settings_gone(host, key[1], report=True)
            if prev is not None:
                del self.known[key]
                self._deliver(host, DELETED, prev, None)
            return
        if event == events.EVENT_UNDEFINED:
            self._recheck(host, name, event, detail, attempt)   # not removed yet
        self.known[key] = current
        self._settings(host, key[1], report=True, new=prev is None)
        if prev is None:
            self._deliver(host, CREATED, current, None)
        elif _differs(prev, current) or events.definition_changed(event, detail):
            self._deliver(host, MODIFIED, current, prev)

    # -- RASD indications ---------------------------------------------------------------

    @staticmethod
    def _rasds_wanted(host: Host) -> bool:
        return any(_active.get(f"{host.family}_{k}".lower()) for k in _RASD_KINDS)

    def _read_settings(self, host: Host, cs_name: str,
                       handle: Any = None) -> Optional[dict[str, CIMInstance]]:
        """{InstanceID: RASD} of a domain now (None if it cannot be read)."""
        ref = keys.parse_cs_name(host.family, cs_name)
        domain = ref[1] if ref is not None else cs_name
        try:
            with request_scope():
                found = (handle or self.handle).Associators(
                    vssd_path(host, domain),
                    assocClass=f"{host.family}_VirtualSystemSettingDataComponent")
                return {str(i["InstanceID"]): i for i in found}
        except CIMError as exc:
            LOG.info("RASD indications: cannot read the settings of %s on host %s: %s",
                     domain, host.label, exc.status_description)
            return None

    def _settings(self, host: Host, cs_name: str, report: bool, new: bool,
                  handle: Any = None) -> None:
        """Read a domain's RASDs and report what changed since the last reading."""
        key = (host.label, cs_name)
        if not self._rasds_wanted(host):
            self.rasds.pop(key, None)
            return
        current = self._read_settings(host, cs_name, handle)
        if current is None:
            return
        before = self.rasds.get(key)
        self.rasds[key] = current
        if not report or (before is None and not new):
            return                # not kept before: nothing to compare with
        before = before or {}
        for iid, inst in current.items():
            old = before.get(iid)
            if old is None:
                self._deliver(host, RASD_CREATED, inst, None)
            elif _differs(old, inst):
                self._deliver(host, RASD_MODIFIED, inst, old)
        for iid, old in before.items():
            if iid not in current:
                self._deliver(host, RASD_DELETED, old, None)

    def _settings_gone(self, host: Host, cs_name: str, report: bool) -> None:
        """The domain is gone: each RASD kept of it is Deleted."""
        before = self.rasds.pop((host.label, cs_name), None)
        if report and before and self._rasds_wanted(host):
            for old in before.values():
                self._deliver(host, RASD_DELETED, old, None)

    def _deliver(self, host: Host, kind: str, source: CIMInstance,
                 previous: Optional[CIMInstance]) -> None:
        cls = f"{host.family}_{kind}"
        if not _active.get(cls.lower()):
            return                    # nobody subscribed to this class
        deliver_indication(self.handle,
                           instance_indication(cls, source, previous, self.hostname),
                           "lifecycle indications", source.path or source.classname)


def _description(exc: BaseException) -> str:
    """What a client would read of `exc` (a CIMError or a libvirt layer error)."""
    err = cim_error(exc)
    return err.status_description if err is not None else str(exc)


def _differs(a: CIMInstance, b: CIMInstance) -> bool:
    """True if two instances of a domain differ in any property value."""
    av = {k.lower(): p.value for k, p in a.properties.items()}
    bv = {k.lower(): p.value for k, p in b.properties.items()}
    return av != bv


# -- the module hooks (called by the CIM server) ---------------------------------------------

_hooks = IndicationHooks(lambda handle: _Watcher(handle.PrepareAttachThread()), start_with_handle=True,
                         started="lifecycle indications: watching domain events",
                         stopped="lifecycle indications: stopped watching domain events")
_active = _hooks.active       # indication class -> active filters
get_providers = _hooks.get_providers
authorize_filter = _hooks.authorize_filter
activate_filter = _hooks.activate_filter
deactivate_filter = _hooks.deactivate_filter
enable_indications = _hooks.enable_indications
disable_indications = _hooks.disable_indications
shutdown = _hooks.shutdown
