"""Jobs in CIM: how a method starts a job, and what a job looks like as {P}_ConcreteJob.

A method that starts long work answers DSP1042's 4096 ("Method Parameters
Checked - Job Started") with a reference to the job in its ``Job`` output
parameter::

    from .common.jobs import start_job

    def cim_method_createsnapshot(self, env, object_name, ...):
        ...checks, synchronously: bad input is an error before any job exists...
        return start_job("CreateSnapshot", host, work, domain=name,
                         description=f"snapshot of {name!r}",
                         owner="VirtualSystemSnapshotService")
        # -> (Uint32(4096), {"Job": <{P}_ConcreteJob path>})

``work(ctx)`` is the libvirt-side work (:mod:`kvm_providers.virt.jobs`):
it runs in the job's thread, reports progress through `ctx`, returns its
results as a dict, raises ``JobFailed`` (or anything) to fail.

Keys and values (also used by the job indications, so that they carry what
clients read): ``InstanceID`` ``Job:<uuid>`` (host-qualified with several
hosts: ``<label>:Job:<uuid>``); ``JobState`` 2 New, 4 Running, 6 Shutting
Down (a stop was asked for), 7 Completed, 8 Terminated, 9 Killed, 10
Exception (failed, or its outcome unknown after a restart).
"""

from __future__ import annotations

import datetime
from typing import Any, Callable, Iterable, Optional

import pywbem
from pywbem import (CIMDateTime, CIMError, CIMInstance, CIMInstanceName, CIMProperty, Uint16,
                    Uint32)

from kvm_providers.schema.valuemaps import CIM_ConcreteJob, CIM_Error, CIM_ManagedSystemElement
from kvm_providers.virt import jobs as vjobs
from kvm_providers.virt import keys, manager
# The resolvers of jobs a restart may find running register when their modules load:
# the jobs come back on the first job request (vjobs.jobs().load()), which may come
# before the provider of the method that started them has been loaded.
from kvm_providers.virt import jobs_resolvers as _save_resolver  # noqa: F401
from kvm_providers.virt import migration as _migration_resolver  # noqa: F401
from kvm_providers.virt import snapshots as _snapshot_resolver  # noqa: F401
from kvm_providers.virt.connection import Host

from .base import VIRT_NS
from .paths import cs_path, host_system_name

__all__ = ["start_job", "job_path", "job_of_path", "job_of_id", "job_instance_id",
           "host_of_job", "job_values", "job_instance",
           "owner_path", "affected_paths", "register_owner", "register_affected",
           "register_job_class", "job_class", "JOB_CLASSES",
           "error_instance", "JOB_STARTED", "COMPLETED_OK", "wait_sync", "JOB_PROPERTIES"]

JOB_STARTED = Uint32(4096)
COMPLETED_OK = Uint32(0)

_JS = CIM_ConcreteJob.JobState
_OS = CIM_ManagedSystemElement.OperationalStatus
_JOB_STATES = {vjobs.NEW: _JS.New, vjobs.RUNNING: _JS.Running,
               vjobs.COMPLETED: _JS.Completed, vjobs.TERMINATED: _JS.Terminated,
               vjobs.KILLED: _JS.Killed, vjobs.FAILED: _JS.Exception,
               vjobs.UNKNOWN: _JS.Exception}
_OPERATIONAL = {vjobs.NEW: [_OS.Dormant], vjobs.RUNNING: [_OS.OK],
                vjobs.COMPLETED: [_OS.OK, _OS.Completed],
                vjobs.TERMINATED: [_OS.Stopped, _OS.Completed],
                vjobs.KILLED: [_OS.Aborted, _OS.Completed],
                vjobs.FAILED: [_OS.Error, _OS.Completed],
                vjobs.UNKNOWN: [_OS.Unknown, _OS.Completed]}
# CIM status codes (CIM_Error.CIMStatusCode) of the error kinds.
_STATUS = {vjobs.ERR_FAILED: pywbem.CIM_ERR_FAILED,
           vjobs.ERR_NOT_SUPPORTED: pywbem.CIM_ERR_NOT_SUPPORTED,
           vjobs.ERR_INVALID: pywbem.CIM_ERR_INVALID_PARAMETER,
           vjobs.ERR_NOT_FOUND: pywbem.CIM_ERR_NOT_FOUND,
           vjobs.ERR_TIMEOUT: pywbem.CIM_ERR_FAILED,
           vjobs.ERR_CANCELLED: pywbem.CIM_ERR_FAILED,
           vjobs.ERR_UNKNOWN: pywbem.CIM_ERR_FAILED}

#: The properties a {P}_ConcreteJob has (besides InstanceID).
JOB_PROPERTIES = ("Name", "ElementName", "Caption", "Description", "JobType", "JobState",
                  "JobStatus", "OperationalStatus", "PercentComplete", "TimeSubmitted",
                  "StartTime", "ElapsedTime", "TimeOfLastStateChange", "ErrorCode",
                  "ErrorDescription", "DeleteOnCompletion", "TimeBeforeRemoval",
                  "Cancellable", "Owner", "LocalOrUtcTime", "StatusDescriptions")

# -- who owns a job, what it affects ---------------------------------------------------

#: Service base class -> its Name key (COMPAT.md); jobs owned by a service name it.
_SERVICE_NAMES: dict[str, str] = {
    "VirtualSystemManagementService": keys.MANAGEMENT_SERVICE_NAME,
    "ResourcePoolConfigurationService": "RPCS",
    "VirtualSystemSnapshotService": "SnapshotService",
    "VirtualSystemMigrationService": "MigrationService",
}
_affected: dict[str, Callable[[Host, vjobs.Job], Iterable[CIMInstanceName]]] = {}
#: Operation -> job class base other than ConcreteJob (e.g. MigrationJob).
_job_classes: dict[str, str] = {}
#: The job class bases the job provider serves.
JOB_CLASSES = ("ConcreteJob", "MigrationJob")


def register_job_class(operation: str, base: str) -> None:
    """Jobs of `operation` are instances of ``{P}_<base>`` (one of JOB_CLASSES), e.g.
    ``register_job_class("MigrateVirtualSystemToHost", "MigrationJob")``."""
    if base not in JOB_CLASSES:
        raise ValueError(f"{base} is not a job class ({JOB_CLASSES})")
    _job_classes[operation] = base


def job_class(family: str, job: vjobs.Job) -> str:
    """The class of a job's instance."""
    return f"{family}_{_job_classes.get(job.operation, 'ConcreteJob')}"


def register_owner(service_base: str, name: str) -> None:
    """A service (``'VirtualSystemMigrationService'``, its ``Name`` key) that owns jobs."""
    _SERVICE_NAMES[service_base] = name


def register_affected(operation: str,
                      fn: Callable[[Host, vjobs.Job], Iterable[CIMInstanceName]]) -> None:
    """More elements a job of `operation` affects (e.g. the snapshot it made), besides
    the systems it works on: ``fn(host, job)`` -> paths (AffectedJobElement)."""
    _affected[operation] = fn


def owner_path(host: Host, job: vjobs.Job) -> Optional[CIMInstanceName]:
    """The element that started the job (OwningJobElement): its service, or the
    virtual system for RequestStateChange (owner ``ComputerSystem``)."""
    if job.owner == "ComputerSystem" and job.domain:
        return cs_path(host, job.domain)
    name = _SERVICE_NAMES.get(job.owner)
    if name is None:
        return None
    cls = f"{host.family}_{job.owner}"
    return CIMInstanceName(cls, {"CreationClassName": cls, "Name": name,
                                 "SystemCreationClassName": f"{host.family}_HostSystem",
                                 "SystemName": host_system_name(host)}, namespace=VIRT_NS)


def affected_paths(host: Host, job: vjobs.Job) -> list[CIMInstanceName]:
    """What the job works on (AffectedJobElement): its systems, and what its
    operation registered (:func:`register_affected`)."""
    out = []
    for dom in ([job.domain] if job.domain else []) + list(job.affected):
        out.append(cs_path(host, dom))
    fn = _affected.get(job.operation)
    if fn is not None:
        out.extend(fn(host, job))
    return out


# -- keys ---------------------------------------------------------------------------------

def job_instance_id(host: Host, job_id: str) -> str:
    return keys.qualify(host, f"Job:{job_id}")


def job_path(host: Host, job: vjobs.Job) -> CIMInstanceName:
    """The {P}_ConcreteJob (or registered job class) path of a job."""
    return CIMInstanceName(job_class(host.family, job),
                           {"InstanceID": job_instance_id(host, job.id)}, namespace=VIRT_NS)


def job_of_path(path: CIMInstanceName, family: str) -> Optional[tuple[Host, vjobs.Job]]:
    """(host, job) named by a job's path; None if there is no such job."""
    if path is None:
        return None
    return job_of_id(path.keybindings.get("InstanceID"), family, path.classname)


def job_of_id(iid: Any, family: str, classname: Optional[str] = None
              ) -> Optional[tuple[Host, vjobs.Job]]:
    """(host, job) of a job InstanceID (of class `classname` if given), or None."""
    hit = keys.parse_qualified(family, iid) if isinstance(iid, str) else None
    if hit is None:
        return None
    host, rest = hit
    kind, sep, job_id = rest.partition(":")
    if not sep or kind != "Job":
        return None
    job = vjobs.jobs().get(job_id)
    if job is None or job.host != host.label:
        return None
    if classname is not None and job_class(host.family, job).lower() != classname.lower():
        return None
    return host, job


def host_of_job(job: vjobs.Job) -> Optional[Host]:
    return manager().host(job.host)


# -- values -----------------------------------------------------------------------------------

def _time(ts: Optional[float]) -> Optional[CIMDateTime]:
    if ts is None:
        return None
    return CIMDateTime(datetime.datetime.fromtimestamp(ts, datetime.timezone.utc))


def _interval(seconds: Optional[float]) -> Optional[CIMDateTime]:
    if seconds is None:
        return None
    return CIMDateTime(datetime.timedelta(seconds=round(seconds, 6)))


def job_values(host: Host, job: vjobs.Job) -> dict[str, Any]:
    """{property: typed value} of the job's {P}_ConcreteJob (None: NULL)."""
    state = _JOB_STATES[job.state]
    if job.state == vjobs.RUNNING and job.status == "Stopping":
        state = _JS.Shutting_Down
    return {
        "Name": job.operation,
        "ElementName": job.description,
        "Caption": f"{job.operation} job",
        "Description": job.description,
        "JobType": job.operation,
        "JobState": Uint16(state),
        "JobStatus": job.status,
        "OperationalStatus": [Uint16(v) for v in _OPERATIONAL[job.state]],
        "PercentComplete": Uint16(job.percent) if job.percent is not None else None,
        "TimeSubmitted": _time(job.submitted),
        "StartTime": _time(job.started),
        "ElapsedTime": _interval(job.elapsed()),
        "TimeOfLastStateChange": _time(job.last_change),
        "ErrorCode": Uint16(job.error_code) if job.error_code is not None else None,
        "ErrorDescription": job.error_message,
        "DeleteOnCompletion": job.delete_on_completion,
        "TimeBeforeRemoval": _interval(job.time_before_removal),
        "Cancellable": job.cancellable,
        "Owner": f"{host.family}_{job.owner}" if job.owner else None,
        "LocalOrUtcTime": Uint16(CIM_ConcreteJob.LocalOrUtcTime.UTC_Time),
        "StatusDescriptions": figures_descriptions(job),
    }


def figures_descriptions(job: vjobs.Job) -> Optional[list[str]]:
    """StatusDescriptions of a job with libvirt's final statistics: where they come from
    (``libvirt job statistics: job-completed event`` or ``...: last poll``), then one
    ``<libvirt name>=<value>`` each (bytes, milliseconds); NULL without figures."""
    if not job.figures:
        return None
    src = "job-completed event" if job.figures_from == "event" else "last poll"
    return [f"libvirt job statistics: {src}"] + \
        [f"{k}={job.figures[k]}" for k in sorted(job.figures)]


def job_instance(host: Host, job: vjobs.Job) -> CIMInstance:
    """The complete {P}_ConcreteJob instance with its path (indications)."""
    path = job_path(host, job)
    inst = CIMInstance(path.classname, path=path)
    inst["InstanceID"] = path.keybindings["InstanceID"]
    for name, value in job_values(host, job).items():
        if value is None:     # NULL, typed: the instance is complete, as GetInstance's
            inst[name] = CIMProperty(name, None, type=_NULL_TYPES.get(name, "string"),
                                     is_array=name == "StatusDescriptions")
        else:
            inst[name] = value
    return inst


#: The types of the properties job_values may leave NULL.
_NULL_TYPES = {"PercentComplete": "uint16", "ErrorCode": "uint16", "StartTime": "datetime",
               "ElapsedTime": "datetime", "TimeSubmitted": "datetime",
               "TimeOfLastStateChange": "datetime", "TimeBeforeRemoval": "datetime"}


def error_instance(host: Host, job: vjobs.Job) -> Optional[CIMInstance]:
    """CIM_Error of a job that did not succeed (GetError); None for a successful or
    running job."""
    if job.state in (vjobs.NEW, vjobs.RUNNING, vjobs.COMPLETED) or not job.error_kind:
        return None
    status = _STATUS.get(job.error_kind, pywbem.CIM_ERR_FAILED)
    err = CIMInstance("CIM_Error")
    err["ErrorType"] = Uint16(CIM_Error.ErrorType.Unsupported_Operation_Error
                             if job.error_kind == vjobs.ERR_NOT_SUPPORTED
                             else CIM_Error.ErrorType.Software_Error)
    err["OwningEntity"] = "kvm_providers"
    err["MessageID"] = f"KVMP{job.error_code or 1:04d}"
    err["Message"] = job.error_message or job.status
    err["MessageArguments"] = [job.operation, job.domain or ""]
    err["PerceivedSeverity"] = Uint16(CIM_Error.PerceivedSeverity.Information
                                     if job.error_kind == vjobs.ERR_CANCELLED
                                     else CIM_Error.PerceivedSeverity.Major)
    err["ProbableCause"] = Uint16(CIM_Error.ProbableCause.Other)
    err["ProbableCauseDescription"] = job.error_kind
    err["ErrorSource"] = job_path(host, job).to_wbem_uri()
    err["ErrorSourceFormat"] = Uint16(CIM_Error.ErrorSourceFormat.CIMObjectPath)
    err["CIMStatusCode"] = Uint32(status)
    err["CIMStatusCodeDescription"] = CIMError(status).status_code_name
    return err


# -- starting ------------------------------------------------------------------------------------

def start_job(operation: str, host: Host, work: vjobs.Work, *, description: str,
              domain: Optional[str] = None, owner: str = "", cancellable: bool = False,
              resolver: Optional[str] = None, params: Optional[dict] = None,
              out: Optional[dict[str, Any]] = None) -> tuple[Uint32, dict[str, Any]]:
    """Start `work` as a job: (4096, {"Job": path, **out}) for the method to return.

    Too many jobs at once is CIM_ERR_FAILED naming the limit (nothing started).
    """
    try:
        job = vjobs.jobs().submit(operation, host=host, work=work, description=description,
                                  domain=domain, owner=owner, cancellable=cancellable,
                                  resolver=resolver, params=params)
    except vjobs.JobLimit as exc:
        raise CIMError(pywbem.CIM_ERR_FAILED, f"{operation}: {exc}") from None
    result = dict(out or {})
    result["Job"] = job_path(host, job)
    return JOB_STARTED, result


def wait_sync(host: Host, job_path_: CIMInstanceName, timeout: float) -> Optional[vjobs.Job]:
    """Wait for a job a method started (for methods that answer synchronously with a
    finished job, e.g. libvirt-cim's vendor snapshot types)."""
    hit = job_of_path(job_path_, host.family)
    if hit is None:
        return None
    return vjobs.jobs().wait(hit[1].id, timeout)
