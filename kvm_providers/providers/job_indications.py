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

Snapshots made and destroyed through the VirtualSystemSnapshotService are
reported the same way: CIM_InstCreation with the new
{P}_VirtualSystemSnapshotSettingData when its CreateSnapshot job completes,
CIM_InstDeletion with each destroyed snapshot's last state when a
DestroySnapshot(Tree) job completes (libvirt has no snapshot events:
snapshots made outside this service are not reported).
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from typing import Any, Optional

from pywbem import CIMError, CIMInstance

from kvm_providers.virt import jobs as vjobs

from .common.base import VIRT_NS
from .common.indication_hooks import ActiveFilters, embedded_property
from .common.jobs import host_of_job, job_instance
from .common.snapshot_paths import modelled, snapshot_vssd_path

__all__ = ["get_providers", "enable_indications", "disable_indications", "activate_filter",
           "deactivate_filter", "authorize_filter", "shutdown", "CLASSES"]

LOG = logging.getLogger(__name__)

CLASSES = {"created": "CIM_InstCreation", "modified": "CIM_InstModification",
           "deleted": "CIM_InstDeletion"}
QUEUE_SIZE = 10000
_SNAPSHOT_OPS = ("CreateSnapshot", "DestroySnapshot", "DestroySnapshotTree")


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
        if cls is None:
            return
        snapshot_event = event == "modified" and job.state == vjobs.COMPLETED and \
            job.operation in _SNAPSHOT_OPS and \
            (_active.get("cim_instcreation") or _active.get("cim_instdeletion"))
        if not _active.get(cls.lower()) and not snapshot_event:
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
        if _active.get(cls.lower()):
            prev = job_instance(host, previous) if previous is not None else None
            self._send(cls, job_instance(host, job), prev)
        if cls == CLASSES["modified"] and job.state == vjobs.COMPLETED and \
                (previous is None or previous.state != vjobs.COMPLETED):
            self._snapshot_events(host, job)

    def _snapshot_events(self, host: Any, job: vjobs.Job) -> None:
        """A snapshot job finished: InstCreation of the snapshot it made, InstDeletion of
        those it destroyed (their last state, recorded when the method was called)."""
        if job.operation == "CreateSnapshot" and _active.get("cim_instcreation"):
            name = job.result.get("snapshot")
            if isinstance(name, str) and job.domain and modelled(name):
                try:
                    inst = self.handle.GetInstance(snapshot_vssd_path(host, job.domain, name))
                except CIMError as exc:
                    LOG.info("snapshot indications: %s: %s", name, exc.status_description)
                    return
                self._send(CLASSES["created"], inst, None)
        elif job.operation in ("DestroySnapshot", "DestroySnapshotTree") and \
                _active.get("cim_instdeletion"):
            last = job.params.get("instances") or {}
            for name in job.result.get("deleted") or []:
                props = last.get(name)
                if isinstance(props, dict) and job.domain:
                    path = snapshot_vssd_path(host, job.domain, name)
                    inst = CIMInstance(path.classname, path=path)
                    inst["InstanceID"] = path.keybindings["InstanceID"]
                    for key, value in props.items():
                        inst[key] = value
                    self._send(CLASSES["deleted"], inst, None)

    def _send(self, cls: str, source: CIMInstance, previous: Optional[CIMInstance]) -> None:
        ind = CIMInstance(cls)
        ind["SourceInstance"] = embedded_property("SourceInstance", source)
        if previous is not None:
            ind["PreviousInstance"] = embedded_property("PreviousInstance", previous)
        if source.path is not None:
            path = source.path.copy()
            path.host = None
            ind["SourceInstanceModelPath"] = path.to_wbem_uri()
        ind["SourceInstanceHost"] = self.hostname
        try:
            self.handle.DeliverIndication(VIRT_NS, ind)
        except CIMError as exc:
            LOG.error("job indications: %s of %s not delivered: %s", cls,
                      source.path or source.classname, exc.status_description)


# -- the module hooks (called by the CIM server) -----------------------------------------------

_lock = threading.Lock()
_deliverer: Optional[_Deliverer] = None
_active = ActiveFilters()     # indication class -> active filters


def get_providers(env):
    """No instance providers: the classes of this module are indications."""
    return {}


def authorize_filter(env, filter, namespace, classname, owner):  # noqa: A002
    """Every subscriber may follow jobs (the jobs are visible to every client)."""
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
