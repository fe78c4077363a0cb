"""CIM_InstCreation, CIM_InstModification and CIM_InstDeletion of {P}_ConcreteJob
instances: a client subscribes instead of polling its job (docs/jobs.md)::

    SELECT * FROM CIM_InstModification WHERE SourceInstance ISA KVM_ConcreteJob

* InstCreation when a job is created (SourceInstance: the new job);
* InstModification when its JobState changes, and when its
  PercentComplete changes, at most once a second per job
  (``virt.jobs.JobManager.progress_interval``) - state changes and the
  final 100 % are never held back; PreviousInstance is the job as the
  previous indication showed it;
* InstDeletion when a finished job is removed (TimeBeforeRemoval passed,
  DeleteOnCompletion, DeleteInstance); SourceInstance its last state.

The instances are built by the same function as the instances clients read
(``common.jobs.job_values``).  The job manager's listener only queues; one
thread (attached to the CIMOM handle, as CMPI requires) delivers, while at
least one filter for these classes is active.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from collections import Counter
from typing import Any, Optional

import pywbem
from pywbem import CIMError, CIMInstance

from kvm_providers.virt import jobs as vjobs

from .common.base import VIRT_NS
from .common.jobs import host_of_job, job_instance

__all__ = ["get_providers", "enable_indications", "disable_indications", "activate_filter",
           "deactivate_filter", "authorize_filter", "shutdown", "CLASSES"]

LOG = logging.getLogger(__name__)

CLASSES = {"created": "CIM_InstCreation", "modified": "CIM_InstModification",
           "deleted": "CIM_InstDeletion"}
QUEUE_SIZE = 10000


class _Deliverer:
    """Job events -> indications, in one thread."""

    def __init__(self, handle: Any):
        self.handle = handle
        self.events: queue.Queue = queue.Queue(QUEUE_SIZE)
        self.hostname = socket.gethostname()
        self.thread = threading.Thread(target=self._run, daemon=True, name="job-indications")
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
        """The job manager's listener: queue and return."""
        cls = CLASSES.get(event)
        if cls is None or not _active.get(cls.lower()):
            return
        try:
            self.events.put_nowait((cls, job, previous))
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1:
                LOG.warning("job indications: queue full, indications dropped")

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
                    LOG.exception("job indications: delivery failed")
        finally:
            self.handle.DetachThread()

    def _deliver(self, cls: str, job: vjobs.Job, previous: Optional[vjobs.Job]) -> None:
        host = host_of_job(job)
        if host is None:
            return
        source = job_instance(host, job)
        ind = CIMInstance(cls)
        ind["SourceInstance"] = _embedded("SourceInstance", source)
        if previous is not None:
            ind["PreviousInstance"] = _embedded("PreviousInstance", job_instance(host, previous))
        path = source.path.copy()
        path.host = None
        ind["SourceInstanceModelPath"] = path.to_wbem_uri()
        ind["SourceInstanceHost"] = self.hostname
        try:
            self.handle.DeliverIndication(VIRT_NS, ind)
        except CIMError as exc:
            LOG.error("job indications: %s of job %s not delivered: %s", cls, job.id,
                      exc.status_description)


def _embedded(name: str, inst: CIMInstance) -> pywbem.CIMProperty:
    return pywbem.CIMProperty(name, inst, type="string", embedded_object="instance")


# -- the module hooks (called by the CIM server) -----------------------------------------------

_lock = threading.Lock()
_deliverer: Optional[_Deliverer] = None
_active: Counter = Counter()     # lower-case indication class -> active filters


def get_providers(env):
    """No instance providers: the classes of this module are indications."""
    return {}


def authorize_filter(env, filter, namespace, classname, owner):  # noqa: A002
    """Every subscriber may follow jobs (the jobs are visible to every client)."""
    return True


def activate_filter(env, filter, namespace, classname, first_activation):  # noqa: A002
    with _lock:
        _active[classname.lower()] += 1


def deactivate_filter(env, filter, namespace, classname, last_activation):  # noqa: A002
    with _lock:
        _active[classname.lower()] -= 1
        if _active[classname.lower()] <= 0 or last_activation:
            del _active[classname.lower()]


def enable_indications(env):
    """The first filter appeared: listen to the job manager."""
    global _deliverer
    with _lock:
        if _deliverer is not None:
            return
        handle = env.get_cimom_handle()
        _deliverer = _Deliverer(handle.PrepareAttachThread())
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
