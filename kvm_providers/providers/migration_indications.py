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
from typing import Optional

from pywbem import CIMDateTime

from kvm_providers.virt import jobs as vjobs

from .common.indication_hooks import (IndicationHooks, JobEventDeliverer, deliver_indication,
                                      instance_indication)
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


class _Deliverer(JobEventDeliverer):
    """Migration job events -> indications, in one thread."""

    what = "migration job indications"

    def wanted(self, event: str, job: vjobs.Job) -> bool:
        return job.operation in OPERATIONS and event in SUFFIXES

    def deliver(self, event: str, job: vjobs.Job, previous: Optional[vjobs.Job]) -> None:
        host = host_of_job(job)
        if host is None:
            return
        cls = f"{host.family}_{SUFFIXES[event]}"
        if not _active.get(cls.lower()):
            return
        source = job_instance(host, job)
        prev = job_instance(host, previous) if previous is not None and event == "modified" \
            else None
        ind = instance_indication(cls, source, prev, self.hostname, first={
            "IndicationIdentifier": source["InstanceID"], "IndicationTime": CIMDateTime.now()})
        deliver_indication(self.handle, ind, self.what, f"job {job.id}")


# -- the module hooks (called by the CIM server) -----------------------------------------------

_hooks = IndicationHooks(lambda handle: _Deliverer(handle.PrepareAttachThread(),
                                                   "migration-indications", QUEUE_SIZE))
_active = _hooks.active       # indication class -> active filters
get_providers = _hooks.get_providers
authorize_filter = _hooks.authorize_filter
activate_filter = _hooks.activate_filter
deactivate_filter = _hooks.deactivate_filter
enable_indications = _hooks.enable_indications
disable_indications = _hooks.disable_indications
shutdown = _hooks.shutdown
