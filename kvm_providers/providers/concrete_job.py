"""{P}_ConcreteJob (and {P}_MigrationJob, for operations registered with
``common.jobs.register_job_class``): the long operations started by the services
(docs/jobs.md).

One instance per job of the family's hosts (:mod:`kvm_providers.virt.jobs`),
values from :mod:`.common.jobs`: Name and JobType the operation,
Description / ElementName the operation and its target, JobState,
PercentComplete (libvirt's measure; NULL while libvirt cannot measure the
operation), TimeSubmitted, StartTime, ElapsedTime, TimeOfLastStateChange,
ErrorCode / ErrorDescription, DeleteOnCompletion, TimeBeforeRemoval,
Cancellable, Owner.

* ModifyInstance changes DeleteOnCompletion and TimeBeforeRemoval (the
  properties CIM_ConcreteJob marks writable); other properties are ignored.
* DeleteInstance removes a finished job; a running one is refused
  (CIM_ERR_FAILED: stop it with RequestStateChange first).
* RequestStateChange(RequestedState): 4 Terminate and 5 Kill stop a
  cancellable job (``virDomainAbortJob`` where libvirt can abort; the job
  then ends Terminated or Killed) and return 0; a job that cannot be
  stopped returns 1 (Not Supported), a finished one 4097 (Invalid State
  Transition); 2 Start, 3 Suspend, 6 Service return 1; values outside the
  value map 5 (Invalid Parameter).  TimeoutPeriod is not supported (4098
  if given).
* GetError() returns the CIM_Error of a job that did not succeed as an
  embedded instance (no Error for a running or successful job); GetErrors()
  the same as an array.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

import pywbem
from pywbem import CIMError, Uint32

from kvm_providers.schema.valuemaps import CIM_ConcreteJob
from kvm_providers.virt import jobs as vjobs

from .common import VirtProvider, fill, providers_for
from .common.jobs import (JOB_CLASSES, JOB_PROPERTIES, error_instance, job_class,
                          job_instance_id, job_of_id, job_of_path, job_values)

__all__ = ["ConcreteJobProvider", "get_providers"]

_RSC = CIM_ConcreteJob.RequestStateChange.ReturnValue
_TERMINATE, _KILL = 4, 5
_RSC_VALUES = {2, 3, 4, 5, 6}


class ConcreteJobProvider(VirtProvider):
    """{P}_ConcreteJob for every family."""

    def _jobs(self, classname: str) -> Iterator[tuple[Any, vjobs.Job]]:
        labels = {h.label: h for h in self.hosts(classname)}
        for job in vjobs.jobs().list_jobs():
            host = labels.get(job.host)
            if host is not None and job_class(host.family, job).lower() == classname.lower():
                yield host, job

    def _fill(self, inst: Any, model: Any, host: Any, job: vjobs.Job) -> None:
        fill(inst, model, job_values(host, job), JOB_PROPERTIES)

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        for host, job in self._jobs(model.classname):
            inst = model.copy()
            inst["InstanceID"] = job_instance_id(host, job.id)
            if not keys_only:
                self._fill(inst, model, host, job)
            yield inst

    def get_instance(self, env, model) -> Optional[Any]:
        hit = job_of_id(model["InstanceID"], self.family(model.classname), model.classname)
        if hit is None:
            return None
        self._fill(model, model, *hit)
        return model

    def _job(self, path: Any) -> tuple[Any, vjobs.Job]:
        hit = job_of_path(path, self.family(path.classname))
        if hit is None:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                           f"no such job: {path.keybindings.get('InstanceID')!r}")
        return hit

    def set_instance(self, env, instance, modify_existing) -> Any:
        if not modify_existing:
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                           f"jobs are created by the services' methods, not by "
                           f"CreateInstance of {instance.classname}")
        _host, job = self._job(instance.path)
        doc = instance.get("DeleteOnCompletion")
        tbr = instance.get("TimeBeforeRemoval")
        seconds = None
        if tbr is not None:
            if not isinstance(tbr, pywbem.CIMDateTime) or not tbr.is_interval:
                raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                               f"TimeBeforeRemoval {tbr} is not an interval")
            seconds = tbr.timedelta.total_seconds()
        vjobs.jobs().modify(job.id, delete_on_completion=doc, time_before_removal=seconds)
        return instance

    def delete_instance(self, env, instance_name) -> None:
        _host, job = self._job(instance_name)
        if not vjobs.jobs().delete(job.id):
            raise CIMError(pywbem.CIM_ERR_FAILED,
                           f"job {job.id} ({job.description}) is still running: stop it "
                           f"with RequestStateChange(4) first")

    # -- methods ------------------------------------------------------------------------

    def cim_method_requeststatechange(self, env, object_name, param_requestedstate=None,
                                      param_timeoutperiod=None):
        """RequestStateChange(RequestedState, TimeoutPeriod): Terminate / Kill."""
        _host, job = self._job(object_name)
        if param_requestedstate is None or int(param_requestedstate) not in _RSC_VALUES:
            if param_requestedstate is not None and 32768 <= int(param_requestedstate):
                return Uint32(_RSC.Not_Supported), {}
            return Uint32(_RSC.Invalid_Parameter), {}
        if param_timeoutperiod is not None:
            return Uint32(_RSC.Use_of_Timeout_Parameter_Not_Supported), {}
        requested = int(param_requestedstate)
        if requested not in (_TERMINATE, _KILL):
            return Uint32(_RSC.Not_Supported), {}
        answer = vjobs.jobs().stop(job.id, kill=requested == _KILL)
        env.get_logger().log_info(f"job {job.id} ({job.description}): stop ({requested}): "
                                  f"{answer}")
        if answer == vjobs.STOP_REQUESTED:
            return Uint32(_RSC.Completed_with_No_Error), {}
        if answer == vjobs.STOP_FINISHED:
            return Uint32(_RSC.Invalid_State_Transition), {}
        if answer == vjobs.STOP_NO_JOB:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND, f"no such job: {job.id}")
        return Uint32(_RSC.Not_Supported), {}

    def cim_method_geterror(self, env, object_name):
        """GetError() -> (0, {Error: CIM_Error or NULL})."""
        host, job = self._job(object_name)
        err = error_instance(host, job)
        out = {}
        if err is not None:
            out["Error"] = err
        return Uint32(0), out

    def cim_method_geterrors(self, env, object_name):
        """GetErrors() -> (0, {Errors: [CIM_Error]} or no Errors)."""
        host, job = self._job(object_name)
        err = error_instance(host, job)
        out = {}
        if err is not None:
            out["Errors"] = [err]
        return Uint32(0), out

    def cim_method_killjob(self, env, object_name, param_deleteonkill=None):
        """KillJob (deprecated): RequestStateChange(Kill); DeleteOnKill removes it then."""
        _host, job = self._job(object_name)
        answer = vjobs.jobs().stop(job.id, kill=True)
        if answer == vjobs.STOP_REQUESTED:
            if param_deleteonkill:
                vjobs.jobs().modify(job.id, delete_on_completion=True)
            return Uint32(0), {}
        if answer == vjobs.STOP_FINISHED:
            return Uint32(4), {}          # Failed: it has ended already
        return Uint32(1), {}              # Not Supported


def get_providers(env) -> dict[str, Any]:
    return providers_for(ConcreteJobProvider(), *JOB_CLASSES)
