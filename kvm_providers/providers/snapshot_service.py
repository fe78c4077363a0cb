"""{P}_VirtualSystemSnapshotService, {P}_VirtualSystemSnapshotServiceCapabilities and
{P}_VirtualSystemSnapshotCapabilities (DSP2013 5.2.8; docs/snapshots.md).

Service keys as libvirt-cim's (Name "SnapshotService"); one per host.  Its
methods check everything first (errors are CIM errors naming the problem)
and then run the libvirt work as a job (4096 and ``Job``; docs/jobs.md):

* ``CreateSnapshot(AffectedSystem, SnapshotSettings, SnapshotType)``: 2 Full
  (memory and disks of a running or paused system; the disks of a stopped
  one), 3 Disk (disks only), and libvirt-cim's vendor types 32768 (full, the
  system goes on) and 32769 (full, then the system stops), which its clients
  expect to complete synchronously: those answer 0 with the finished job.
  ``SnapshotSettings`` (any setting data instance, optional): ElementName
  names the snapshot (default: its creation time), Description describes it.
  ``ResultingSnapshot`` is returned at once (the snapshot's path).
* ``ApplySnapshot(Snapshot)``: libvirt reverts the system to the snapshot:
  its definition becomes exactly the snapshot's, its state the snapshot's.
  External snapshots answer CIM_ERR_NOT_SUPPORTED before libvirt 9.9.
* ``DestroySnapshot(AffectedSnapshot)``: removes one snapshot; its children
  become children of its parent.  ``DestroySnapshotTree`` (vendor, as
  Hyper-V's): the snapshot and all that depend on it.

What libvirt on the host cannot do is CIM_ERR_NOT_SUPPORTED naming the
reason (e.g. an internal snapshot of a raw disk: an external one is taken
instead; revert of external snapshots); a snapshot that does not exist
CIM_ERR_NOT_FOUND; bad parameters CIM_ERR_INVALID_PARAMETER.
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Optional

import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName, Uint16, Uint32

from kvm_providers.cimxml.embedded import EmbeddedInstanceError, decode_embedded_instance
from kvm_providers.schema import default_schema
from kvm_providers.schema.valuemaps import CIM_EnabledLogicalElement
from kvm_providers.virt import jobs as vjobs
from kvm_providers.virt import keys, list_domains, lookup_domain, snapshots
from kvm_providers.virt.connection import Host
from kvm_providers.virt.domain import DomainRef

from .common import ENABLED_AND_OK, PerHostProvider, VirtProvider, fill, providers_for
from .common.jobs import start_job, wait_sync
from .common.paths import cs_of_path
from .common.snapshot_paths import (CAPABILITIES_ID, SERVICE_NAME, parse_snapshot_vssd_id,
                                    snapshot_doc, snapshot_vssd_path, vsss_keys, vsssc_id)

__all__ = ["SnapshotServiceProvider", "SnapshotServiceCapabilitiesProvider",
           "SnapshotCapabilitiesProvider", "get_providers", "OWNER"]

OWNER = "VirtualSystemSnapshotService"
CREATE, DESTROY, APPLY = 2, 3, 4        # the capabilities' method identifiers
#: How long a vendor snapshot type (answered synchronously) may take.
SYNC_TIMEOUT = 600.0
_STATUS = {vjobs.ERR_NOT_SUPPORTED: pywbem.CIM_ERR_NOT_SUPPORTED,
           vjobs.ERR_INVALID: pywbem.CIM_ERR_INVALID_PARAMETER,
           vjobs.ERR_NOT_FOUND: pywbem.CIM_ERR_NOT_FOUND}


def _failure(exc: snapshots.SnapshotError) -> CIMError:
    if isinstance(exc, snapshots.SnapshotNotSupported):
        return CIMError(pywbem.CIM_ERR_NOT_SUPPORTED, str(exc))
    if isinstance(exc, snapshots.SnapshotNotFound):
        return CIMError(pywbem.CIM_ERR_NOT_FOUND, str(exc))
    return CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, str(exc))


def _job_error(exc: snapshots.SnapshotError) -> vjobs.JobFailed:
    kind = vjobs.ERR_NOT_SUPPORTED if isinstance(exc, snapshots.SnapshotNotSupported) else \
        vjobs.ERR_NOT_FOUND if isinstance(exc, snapshots.SnapshotNotFound) else \
        vjobs.ERR_INVALID
    return vjobs.JobFailed(str(exc), kind)


class SnapshotServiceProvider(PerHostProvider):
    """{P}_VirtualSystemSnapshotService."""

    def host_keys(self, host, classname):
        return vsss_keys(host, classname)

    def _fill(self, inst, model, host):
        fill(inst, model, {
            "ElementName": SERVICE_NAME,
            "Caption": "Virtual System Snapshot Service",
            "Description": "Creates, applies and destroys snapshots of virtual systems "
                           "(libvirt snapshots)",
            **ENABLED_AND_OK, "EnabledDefault": CIM_EnabledLogicalElement.EnabledDefault.Enabled,
            "Started": True,
        })

    # -- parameters ----------------------------------------------------------------------

    def _system(self, m: str, object_name: CIMInstanceName, value: Any) -> DomainRef:
        if not isinstance(value, CIMInstanceName):
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           f"{m}: AffectedSystem (a reference to a virtual system) is required")
        family = self.family(object_name.classname)
        ref = cs_of_path(value, family)
        if ref is None:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                           f"{m}: AffectedSystem: no virtual system {value.keybindings.get('Name')!r}")
        self._same_host(m, object_name, ref.host)
        return ref

    def _same_host(self, m: str, object_name: CIMInstanceName, host: Host) -> None:
        service_host = self._service_host(object_name)
        if service_host is not None and service_host is not host:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           f"{m}: the target is on host {host.label!r}, not this service's")

    def _snapshot(self, m: str, object_name: CIMInstanceName, param: str, value: Any):
        if not isinstance(value, CIMInstanceName):
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           f"{m}: {param} (a reference to a snapshot) is required")
        family = self.family(object_name.classname)
        hit = parse_snapshot_vssd_id(family, value.keybindings.get("InstanceID"))
        found = snapshot_doc(*hit) if hit is not None else None
        if found is None:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                           f"{m}: {param}: no such snapshot: "
                           f"{value.keybindings.get('InstanceID')!r}")
        self._same_host(m, object_name, found[0].host)
        return found[0], found[1]

    @staticmethod
    def _settings(m: str, value: Any, ns: Optional[str]) -> Optional[CIMInstance]:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, CIMInstance):
            return value
        try:
            return decode_embedded_instance(value, ns or "root/virt")
        except EmbeddedInstanceError as exc:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           f"{m}: SnapshotSettings: {exc}") from None

    # -- methods -----------------------------------------------------------------------------

    def cim_method_createsnapshot(self, env, object_name, param_affectedsystem=None,
                                  param_snapshotsettings=None, param_snapshottype=None):
        """CreateSnapshot -> 4096 with Job and ResultingSnapshot (vendor types: 0)."""
        m = "CreateSnapshot"
        ref = self._system(m, object_name, param_affectedsystem)
        stype = int(param_snapshottype) if param_snapshottype is not None else snapshots.FULL
        settings = self._settings(m, param_snapshotsettings, object_name.namespace)
        name = description = None
        # libvirt-cim's clients send the service's capabilities instance here: only a
        # setting data instance names and describes the snapshot
        if settings is not None and not default_schema().is_subclass(
                object_name.namespace or "root/virt", settings.classname, "CIM_Capabilities"):
            name = settings.get("ElementName") or None
            description = settings.get("Description") or None
        if name is None:
            name = _default_name(ref)
        try:
            plan = snapshots.plan_create(ref, stype, name, description)
        except snapshots.SnapshotError as exc:
            raise _failure(exc) from None

        def work(ctx: vjobs.JobContext) -> dict:
            if plan.location == "external" and plan.memory:
                ctx.set_abort(lambda: ref.dom.abortJob())   # a migration to a file
            try:
                with ctx.follow(ref.dom):
                    made = snapshots.create(ref, plan)
            except snapshots.SnapshotError as exc:
                raise _job_error(exc) from None
            return {"snapshot": made, "location": plan.location}
        where = f"{plan.location}: {plan.reason}" if plan.reason else plan.location
        resulting = snapshot_vssd_path(ref.host, ref.name, name)
        rc, out = start_job(m, ref.host, work, domain=ref.name, owner=OWNER,
                            description=f"snapshot {name!r} of {ref.name!r} ({where})",
                            resolver=snapshots.CREATE_RESOLVER, params={"snapshot": name},
                            out={"ResultingSnapshot": resulting})
        env.get_logger().log_info(f"{m} {ref.name!r}: snapshot {name!r}, type {stype}, "
                                  f"{where}")
        if stype not in (snapshots.VENDOR_RUNNING, snapshots.VENDOR_HALT):
            return rc, out
        # libvirt-cim's vendor types: its clients expect the snapshot when 0 comes back.
        job = wait_sync(ref.host, out["Job"], SYNC_TIMEOUT)
        if job is None or job.state != vjobs.COMPLETED:
            why = job.error_message if job is not None else "the job vanished"
            raise CIMError(_STATUS.get(job.error_kind if job else "", pywbem.CIM_ERR_FAILED),
                           f"{m}: {why}")
        return Uint32(0), out

    def cim_method_applysnapshot(self, env, object_name, param_snapshot=None):
        """ApplySnapshot -> 4096 with Job."""
        m = "ApplySnapshot"
        ref, snap = self._snapshot(m, object_name, "Snapshot", param_snapshot)
        try:
            snapshots.check_revert(ref, snap)
        except snapshots.SnapshotError as exc:
            raise _failure(exc) from None

        def work(ctx: vjobs.JobContext) -> dict:
            try:
                snapshots.revert(ref, snap.name)
            except snapshots.SnapshotError as exc:
                raise _job_error(exc) from None
            return {"snapshot": snap.name}
        return start_job(m, ref.host, work, domain=ref.name, owner=OWNER,
                         description=f"apply snapshot {snap.name!r} to {ref.name!r}")

    def _destroy(self, m: str, object_name, value, tree: bool):
        ref, snap = self._snapshot(m, object_name, "AffectedSnapshot", value)
        gone = [snap.name] + (_descendants(ref, snap.name) if tree else [])
        # their last state, for the InstDeletion indications (job_indications.py)
        by_name = {s.name: s for s in snapshots.list_snapshots(ref)}
        last = {n: {"ElementName": n, "VirtualSystemIdentifier": ref.name,
                    "SnapshotState": by_name[n].state,
                    "SnapshotLocation": by_name[n].location}
                for n in gone if n in by_name}

        def work(ctx: vjobs.JobContext) -> dict:
            try:
                deleted = snapshots.delete(ref, snap.name, children=tree)
            except snapshots.SnapshotError as exc:
                raise _job_error(exc) from None
            return {"deleted": deleted}
        what = "with the snapshots that depend on it" if tree else "(its children stay)"
        return start_job(m, ref.host, work, domain=ref.name, owner=OWNER,
                         description=f"destroy snapshot {snap.name!r} of {ref.name!r} {what}",
                         params={"deleting": gone, "instances": last})

    def cim_method_destroysnapshot(self, env, object_name, param_affectedsnapshot=None):
        """DestroySnapshot -> 4096 with Job."""
        return self._destroy("DestroySnapshot", object_name, param_affectedsnapshot, False)

    def cim_method_destroysnapshottree(self, env, object_name, param_affectedsnapshot=None):
        """DestroySnapshotTree (vendor) -> 4096 with Job."""
        return self._destroy("DestroySnapshotTree", object_name, param_affectedsnapshot, True)


def _descendants(ref: DomainRef, name: str) -> list[str]:
    children: dict[Optional[str], list[str]] = {}
    for s in snapshots.list_snapshots(ref):
        children.setdefault(s.parent, []).append(s.name)
    out, todo = [], list(children.get(name, []))
    while todo:
        n = todo.pop(0)
        out.append(n)
        todo.extend(children.get(n, []))
    return out


def _default_name(ref: DomainRef) -> str:
    """The creation time, as libvirt names snapshots (with a suffix if it is taken)."""
    base = str(int(time.time()))
    taken = {s.name for s in snapshots.list_snapshots(ref)}
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


class SnapshotServiceCapabilitiesProvider(PerHostProvider):
    """{P}_VirtualSystemSnapshotServiceCapabilities (InstanceID "SnapshotCapabilities")."""

    def host_keys(self, host, classname):
        return {"InstanceID": vsssc_id(host)}

    def _fill(self, inst, model, host):
        fill(inst, model, {
            "ElementName": CAPABILITIES_ID,
            # CreateSnapshot completes synchronously for libvirt-cim's vendor types
            "SynchronousMethodsSupported": [Uint16(CREATE)],
            # the DMTF schema's spelling of the property
            "AynchronousMethodsSupported": [Uint16(v) for v in (CREATE, DESTROY, APPLY)],
            "SnapshotTypesSupported": [Uint16(t) for t in snapshots.TYPES],
        })


class SnapshotCapabilitiesProvider(VirtProvider):
    """{P}_VirtualSystemSnapshotCapabilities: what can be taken of a system now."""

    def _types(self, ref: DomainRef) -> list[int]:
        out = []
        for t in snapshots.TYPES:
            try:
                snapshots.plan_create(ref, t)
            except snapshots.SnapshotError:
                continue
            out.append(t)
        return out

    def _fill(self, inst, model, ref):
        fill(inst, model, {"ElementName": f"SnapshotCapabilities {ref.name}",
                           "SnapshotTypesEnabled": lambda: self._types(ref),
                           "GuestOSNotificationEnabled": False})

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        for host in self.hosts(model.classname):
            for ref in list_domains(host):
                inst = model.copy()
                inst["InstanceID"] = keys.cs_name(host, ref.name)
                if not keys_only:
                    self._fill(inst, model, ref)
                yield inst

    def get_instance(self, env, model) -> Optional[Any]:
        hit = keys.parse_cs_name(self.family(model.classname), model["InstanceID"])
        ref = lookup_domain(*hit) if hit is not None else None
        if ref is None:
            return None
        self._fill(model, model, ref)
        return model


def get_providers(env) -> dict[str, Any]:
    out = providers_for(SnapshotServiceProvider(), "VirtualSystemSnapshotService")
    out.update(providers_for(SnapshotServiceCapabilitiesProvider(),
                             "VirtualSystemSnapshotServiceCapabilities"))
    out.update(providers_for(SnapshotCapabilitiesProvider(),
                             "VirtualSystemSnapshotCapabilities"))
    return out
