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
from typing import Any, Optional

from pywbem import CIMError, CIMInstance

from kvm_providers.virt import jobs as vjobs

from .common.indication_hooks import (IndicationHooks, JobEventDeliverer, deliver_indication,
                                      instance_indication)
from .common.jobs import host_of_job, job_instance
from .common.snapshot_paths import modelled, snapshot_vssd_path

__all__ = ["get_providers", "enable_indications", "disable_indications", "activate_filter",
           "deactivate_filter", "authorize_filter", "shutdown", "CLASSES"]

LOG = logging.getLogger(__name__)

CLASSES = {"created": "CIM_InstCreation", "modified": "CIM_InstModification",
           "deleted": "CIM_InstDeletion"}
QUEUE_SIZE = 10000
_SNAPSHOT_OPS = ("CreateSnapshot", "DestroySnapshot", "DestroySnapshotTree")


class _Deliverer(JobEventDeliverer):
    """Job events -> indications, in one thread."""

    what = "job indications"

    def wanted(self, event: str, job: vjobs.Job) -> bool:
        cls = CLASSES.get(event)
        if cls is None:
            return False
        snapshot_event = event == "modified" and job.state == vjobs.COMPLETED and \
            job.operation in _SNAPSHOT_OPS and \
            bool(_active.get("cim_instcreation") or _active.get("cim_instdeletion"))
        return bool(_active.get(cls.lower())) or snapshot_event

    def deliver(self, event: str, job: vjobs.Job, previous: Optional[vjobs.Job]) -> None:
        cls = CLASSES[event]
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
        deliver_indication(self.handle,
                           instance_indication(cls, source, previous, self.hostname),
                           self.what, source.path or source.classname)


# -- the module hooks (called by the CIM server) -----------------------------------------------

_hooks = IndicationHooks(lambda handle: _Deliverer(handle.PrepareAttachThread(),
                                                   "job-indications", QUEUE_SIZE))
_active = _hooks.active       # indication class -> active filters
get_providers = _hooks.get_providers
authorize_filter = _hooks.authorize_filter
activate_filter = _hooks.activate_filter
deactivate_filter = _hooks.deactivate_filter
enable_indications = _hooks.enable_indications
disable_indications = _hooks.disable_indications
shutdown = _hooks.shutdown
