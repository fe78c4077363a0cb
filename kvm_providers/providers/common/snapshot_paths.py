"""Keys and paths of the snapshot model (docs/snapshots.md), and snapshots from paths.

=========================================  =========================================
{P}_VirtualSystemSnapshotService           Name "SnapshotService" (libvirt-cim's),
                                           SystemName the host system's Name
{P}_VirtualSystemSnapshotServiceCapabilities  InstanceID "SnapshotCapabilities"
                                           (libvirt-cim's; host-qualified with several)
{P}_VirtualSystemSnapshotCapabilities      InstanceID = the system's Name (as
                                           EnabledLogicalElementCapabilities)
{P}_VirtualSystemSnapshotSettingData       InstanceID "<P>:<system>/Snapshot/<name>"
snapshot RASDs (the kinds' RASD classes)   InstanceID "<system>/Snapshot/<name>/<devid>"
=========================================  =========================================

A domain name never holds "/", so the first "/" after the system ends it
whatever the snapshot name; snapshot names with "/" (made outside this
service, which refuses them) are not modelled.
"""

from __future__ import annotations

from typing import Any, Optional

from pywbem import CIMInstanceName

from kvm_providers.virt import keys, lookup_domain
from kvm_providers.virt.connection import Host
from kvm_providers.model.kinds import DeviceKind
from kvm_providers.virt.domain import DomainRef, DomainXML
from kvm_providers.virt.snapshots import Snapshot, get_snapshot

from kvm_providers.virt import jobs as vjobs

from .base import VIRT_NS
from .jobs import register_affected
from .paths import host_system_name, vssd_path

__all__ = ["SERVICE_NAME", "CAPABILITIES_ID", "vsss_keys", "vsss_path", "vsssc_id",
           "vsssc_path", "snapcaps_path", "snapshot_vssd_id", "snapshot_vssd_path",
           "parse_snapshot_vssd_id", "snapshot_rasd_id", "snapshot_rasd_path",
           "parse_snapshot_rasd_id", "snapshot_of_path", "snapshot_doc", "modelled",
           "SNAPSHOT_MARK", "snapshot_setting", "snapshot_rasd_paths", "snapshot_of_rasd"]

SERVICE_NAME = "SnapshotService"
CAPABILITIES_ID = "SnapshotCapabilities"
SNAPSHOT_MARK = "/Snapshot/"


def vsss_keys(host: Host, classname: str) -> dict[str, str]:
    prefix = classname.split("_", 1)[0]
    return {"CreationClassName": classname, "Name": SERVICE_NAME,
            "SystemCreationClassName": f"{prefix}_HostSystem",
            "SystemName": host_system_name(host)}


def vsss_path(host: Host) -> CIMInstanceName:
    cls = f"{host.family}_VirtualSystemSnapshotService"
    return CIMInstanceName(cls, vsss_keys(host, cls), namespace=VIRT_NS)


def vsssc_id(host: Host) -> str:
    return keys.qualify(host, CAPABILITIES_ID)


def vsssc_path(host: Host) -> CIMInstanceName:
    return CIMInstanceName(f"{host.family}_VirtualSystemSnapshotServiceCapabilities",
                           {"InstanceID": vsssc_id(host)}, namespace=VIRT_NS)


def snapcaps_path(host: Host, domain: str) -> CIMInstanceName:
    """{P}_VirtualSystemSnapshotCapabilities of a system."""
    return CIMInstanceName(f"{host.family}_VirtualSystemSnapshotCapabilities",
                           {"InstanceID": keys.cs_name(host, domain)}, namespace=VIRT_NS)


def modelled(name: str) -> bool:
    """True if a snapshot of this name can be named by keys (no "/")."""
    return "/" not in name


def snapshot_vssd_id(host: Host, domain: str, name: str) -> str:
    return f"{keys.vssd_id(host, domain)}{SNAPSHOT_MARK}{name}"


def snapshot_vssd_path(host: Host, domain: str, name: str) -> CIMInstanceName:
    return CIMInstanceName(f"{host.family}_VirtualSystemSnapshotSettingData",
                           {"InstanceID": snapshot_vssd_id(host, domain, name)},
                           namespace=VIRT_NS)


def parse_snapshot_vssd_id(family: Optional[str], iid: Any
                           ) -> Optional[tuple[Host, str, str]]:
    """(host, domain, snapshot name) of a snapshot VSSD InstanceID, or None."""
    if not isinstance(iid, str) or SNAPSHOT_MARK not in iid:
        return None
    head, _, name = iid.partition(SNAPSHOT_MARK)
    hit = keys.parse_vssd_id(family, head)
    if hit is None or not name or not modelled(name):
        return None
    return hit[0], hit[1], name


def snapshot_rasd_id(host: Host, domain: str, name: str, devid: str) -> str:
    return keys.device_id(host, domain, f"{SNAPSHOT_MARK[1:]}{name}/{devid}")


def snapshot_rasd_path(host: Host, domain: str, name: str, kind: DeviceKind,
                       devid: str) -> CIMInstanceName:
    return CIMInstanceName(f"{host.family}_{kind.rasd_class}",
                           {"InstanceID": snapshot_rasd_id(host, domain, name, devid)},
                           namespace=VIRT_NS)


def parse_snapshot_rasd_id(family: Optional[str], iid: Any
                           ) -> Optional[tuple[Host, str, str, str]]:
    """(host, domain, snapshot name, devid) of a snapshot RASD InstanceID, or None."""
    hit = keys.parse_device_id(family, iid) if isinstance(iid, str) else None
    if hit is None:
        return None
    host, domain, rest = hit
    mark = SNAPSHOT_MARK[1:]
    if not rest.startswith(mark):
        return None
    name, sep, devid = rest[len(mark):].partition("/")
    if not sep or not name or not devid:
        return None
    return host, domain, name, devid


def snapshot_doc(host: Host, domain: str, name: str
                 ) -> Optional[tuple[DomainRef, Snapshot, Optional[DomainXML]]]:
    """(domain, snapshot, the snapshot's domain definition as a DomainXML or None)."""
    ref = lookup_domain(host, domain)
    if ref is None:
        return None
    snap = get_snapshot(ref, name)
    if snap is None:
        return None
    return ref, snap, snap.doc     # parsed once per request (virt.snapshots)


def snapshot_of_path(path: CIMInstanceName, family: str
                     ) -> Optional[tuple[DomainRef, Snapshot, Optional[DomainXML]]]:
    """The snapshot a {P}_VirtualSystemSnapshotSettingData path names, or None."""
    hit = parse_snapshot_vssd_id(family, path.keybindings.get("InstanceID"))
    if hit is None:
        return None
    return snapshot_doc(*hit)


def snapshot_setting(family: str, iid: Any) -> Optional[tuple[DomainXML, Any]]:
    """(the snapshot's definition, the setting) a snapshot RASD InstanceID names, or None."""
    hit = parse_snapshot_rasd_id(family, iid)
    if hit is None:
        return None
    host, domain, name, devid = hit
    found = snapshot_doc(host, domain, name)
    doc = found[2] if found is not None else None
    if doc is None:
        return None
    setting = doc.setting(devid)
    return (doc, setting) if setting is not None else None


def snapshot_rasd_paths(path: CIMInstanceName, family: str) -> list[CIMInstanceName]:
    """The RASD paths of the snapshot a snapshot VSSD path names (its definition's)."""
    found = snapshot_of_path(path, family)
    if found is None:
        return []
    ref, snap, doc = found
    if doc is None:
        return []
    return [snapshot_rasd_path(ref.host, ref.name, snap.name, s.kind, s.devid)
            for s in doc.settings()]


def snapshot_of_rasd(path: CIMInstanceName, family: str) -> Optional[CIMInstanceName]:
    """The snapshot VSSD a snapshot RASD path belongs to (if the setting exists)."""
    iid = path.keybindings.get("InstanceID")
    if snapshot_setting(family, iid) is None:
        return None
    host, domain, name, _devid = parse_snapshot_rasd_id(family, iid)  # type: ignore[misc]
    return snapshot_vssd_path(host, domain, name)


def system_vssd_path(ref: DomainRef) -> CIMInstanceName:
    """The system's own VSSD (the settings a snapshot was taken from)."""
    return vssd_path(ref.host, ref.name)


def _job_snapshot(host: Host, job: vjobs.Job) -> list[CIMInstanceName]:
    """AffectedJobElement of snapshot jobs: the snapshot made or applied."""
    name = job.result.get("snapshot") if job.done else job.params.get("snapshot")
    if isinstance(name, str) and job.domain and modelled(name):
        return [snapshot_vssd_path(host, job.domain, name)]
    return []


register_affected("CreateSnapshot", _job_snapshot)
register_affected("ApplySnapshot", _job_snapshot)
