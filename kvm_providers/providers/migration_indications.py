"""libvirt-cim's migration job indications: {P}_ComputerSystemMigrationJobCreatedIndication,
...ModifiedIndication and ...DeletedIndication (CIM_InstCreation / InstModification /
InstDeletion) of the {P}_MigrationJob instances the migration service starts::

    SELECT * FROM KVM_ComputerSystemMigrationJobModifiedIndication

SourceInstance is the job as GetInstance returns it (``common.jobs.job_instance``),
PreviousInstance (Modified) the job as the previous indication showed it;
IndicationIdentifier the job's InstanceID, as libvirt-cim.  They come at the same
moments as the standard job indications (``job_indications``: creation, every
JobState change, progress at most once a second, removal), which clients may
subscribe to as well.  The job manager's listener only queues; one thread
(attached to the CIMOM handle) delivers, while a filter for these classes is active.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from typing import Any, Optional

from pywbem import CIMDateTime, CIMError, CIMInstance

from kvm_providers.virt import jobs as vjobs

from .common.base import VIRT_NS
from .common.indication_hooks import ActiveFilters, embedded_property
from .common.jobs import host_of_job, job_instance

__all__ = ["get_providers", "enable_indications", "disable_indications", "activate_filter",
           "deactivate_filter", "authorize_filter", "shutdown", "OPERATIONS", "SUFFIXES"]

LOG = logging.getLogger(__name__)

#: The job operations of the migration service.
OPERATIONS = frozenset({"MigrateVirtualSystemToHost", "MigrateVirtualSystemToSystem"})
#: job event -> indication class name without the family prefix.
SUFFIXES = {"created": "ComputerSystemMigrationJobCreatedIndication",
            "modified": "ComputerSystemMigrationJobModifiedIndication",
            "deleted": "ComputerSystemMigrationJobDeletedIndication"}
QUEUE_SIZE = 10000

_lock = threading.Lock()
_active = ActiveFilters()     # indication class -> active filters


class _Deliverer:
    """Migration job events -> indications, in one thread."""

    def __init__(self, handle: Any):
        self.handle = handle
        self.events: queue.Queue = queue.Queue(QUEUE_SIZE)
        self.hostname = socket.gethostname()
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name="migration-indications")
        self.dropped = 0

    def start(self) -> None:
        vjobs.jobs().add_listener(self.on_event)
        self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        vjobs.jobs().remove_listener(self.on_event)
        try:
            self.events.put_nowait(None)
        except queue.Full:
            pass
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def on_event(self, event: str, job: vjobs.Job, previous: Optional[vjobs.Job]) -> None:
        """The job manager's listener: queue migration jobs' events and return."""
        if job.operation not in OPERATIONS or event not in SUFFIXES:
            return
        try:
            self.events.put_nowait((event, job, previous))
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1:
                LOG.warning("migration job indications: queue full, indications dropped")

    def _run(self) -> None:
        self.handle.AttachThread()
        try:
            while True:
                item = self.events.get()
                if item is None:
                    return
                try:
                    self._deliver(*item)
                except Exception:  # pylint: disable=broad-except
                    LOG.exception("migration job indications: delivery failed")
        finally:
            self.handle.DetachThread()

    def _deliver(self, event: str, job: vjobs.Job, previous: Optional[vjobs.Job]) -> None:
        host = host_of_job(job)
        if host is None:
            return
        cls = f"{host.family}_{SUFFIXES[event]}"
        if not _active.get(cls.lower()):
            return
        source = job_instance(host, job)
        ind = CIMInstance(cls)
        ind["IndicationIdentifier"] = source["InstanceID"]
        ind["IndicationTime"] = CIMDateTime.now()
        ind["SourceInstance"] = embedded_property("SourceInstance", source)
        if previous is not None and event == "modified":
            ind["PreviousInstance"] = embedded_property("PreviousInstance", job_instance(host, previous))
        path = source.path.copy()
        path.host = None
        ind["SourceInstanceModelPath"] = path.to_wbem_uri()
        ind["SourceInstanceHost"] = self.hostname
        try:
            self.handle.DeliverIndication(VIRT_NS, ind)
        except CIMError as exc:
            LOG.error("migration job indications: %s of job %s not delivered: %s", cls, job.id,
                      exc.status_description)


_deliverer: Optional[_Deliverer] = None


def get_providers(env):
    """No instance providers: the classes of this module are indications."""
    return {}


def authorize_filter(env, filter, namespace, classname, owner):  # noqa: A002
    """Every subscriber may follow migration jobs (jobs are visible to every client)."""
    return True


def activate_filter(env, filter, namespace, classname, first_activation):  # noqa: A002
    _active.activate(classname)


def deactivate_filter(env, filter, namespace, classname, last_activation):  # noqa: A002
    _active.deactivate(classname, last_activation)


def enable_indications(env):
    """The first filter appeared: listen to the job manager."""
    global _deliverer
    with _lock:
        if _deliverer is not None:
            return
        _deliverer = _Deliverer(env.get_cimom_handle().PrepareAttachThread())
        deliverer = _deliverer
    deliverer.start()


def disable_indications(env):
    global _deliverer
    with _lock:
        deliverer, _deliverer = _deliverer, None
    if deliverer is not None:
        deliverer.stop()


def shutdown(env):
    disable_indications(env)
    with _lock:
        _active.clear()
