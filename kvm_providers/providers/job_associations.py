"""{P}_AffectedJobElement and {P}_OwningJobElement: a job and what it works on, a job
and what started it (CIM_Job's associations, DSP1042's job pattern).

* AffectedJobElement: AffectingElement the {P}_ConcreteJob, AffectedElement
  each virtual system it works on and what its operation registered
  (``common.jobs.register_affected``: the snapshot a CreateSnapshot job
  made, ...); ElementEffects 5 (Create) for what the job created, else 4
  (Element Integrity: the job changes the element).
* OwningJobElement: OwnedElement the job, OwningElement the service whose
  method started it (``{P}_VirtualSystemSnapshotService`` ...), or the
  virtual system for its own RequestStateChange.
"""

from __future__ import annotations

import abc

from typing import Any, Iterable

from kvm_providers.schema.valuemaps import CIM_AffectedJobElement
from kvm_providers.virt import jobs as vjobs

from .common import AssociationProvider, Role, providers_for
from .common import snapshot_paths, volume_job
from .common.jobs import affected_paths, job_of_path, job_path, owner_path

__all__ = ["AffectedJobElementProvider", "OwningJobElementProvider", "get_providers"]

_AFFECTED = ["ComputerSystem", "VirtualSystemSettingData", "VirtualSystemSnapshotSettingData",
             "StorageVolumeResourceAllocationSettingData"]
# The modules whose operations register more affected elements (register_affected).
_REGISTERING = (volume_job, snapshot_paths)
_EFFECTS = CIM_AffectedJobElement.ElementEffects
_OWNERS = ["VirtualSystemManagementService", "ResourcePoolConfigurationService",
           "VirtualSystemSnapshotService", "VirtualSystemMigrationService", "ComputerSystem"]


class _JobAssociation(AssociationProvider):
    """Role 0 is the job; `targets` are the elements on the other side."""

    @abc.abstractmethod
    def targets(self, host: Any, job: vjobs.Job) -> list[Any]:
        """The paths on the other side of the job."""

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            hit = job_of_path(path, family)
            if hit is not None:
                yield from self.targets(*hit)
            return
        labels = {h.label: h for h in self.hosts(path.classname)}
        for job in vjobs.jobs().list_jobs():
            host = labels.get(job.host)
            if host is None:
                continue
            if any(self.paths_equal(t, path) for t in self.targets(host, job)):
                yield job_path(host, job)

    def sources(self, env, family) -> Iterable[Any]:
        labels = {h.label: h for h in self.hosts(f"{family}_X")}
        for job in vjobs.jobs().list_jobs():
            host = labels.get(job.host)
            if host is not None:
                yield job_path(host, job)


class AffectedJobElementProvider(_JobAssociation):
    roles = (Role("AffectingElement", ["ConcreteJob", "MigrationJob"]), Role("AffectedElement", _AFFECTED))

    def targets(self, host, job) -> list[Any]:
        return affected_paths(host, job)

    def _instance(self, model, refs, keys_only):
        inst = super()._instance(model, refs, keys_only)
        if not keys_only and "ElementEffects" in model:
            created = "ComputerSystem" not in refs["AffectedElement"].classname
            inst["ElementEffects"] = [_EFFECTS.Create if created else _EFFECTS.Element_Integrity]
        return inst


class OwningJobElementProvider(_JobAssociation):
    roles = (Role("OwnedElement", ["ConcreteJob", "MigrationJob"]), Role("OwningElement", _OWNERS))

    def targets(self, host, job) -> list[Any]:
        owner = owner_path(host, job)
        return [owner] if owner is not None else []


def get_providers(env) -> dict[str, Any]:
    out = providers_for(AffectedJobElementProvider(), "AffectedJobElement")
    out.update(providers_for(OwningJobElementProvider(), "OwningJobElement"))
    return out
