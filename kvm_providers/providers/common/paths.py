"""Instance paths of the model's classes, built from libvirt objects (and parsed back).

Providers and associations build the paths of the classes they refer to
here, so that keys are computed in exactly one way (kvm_providers.virt.keys).
The keys are strings, and the paths are built without pywbem's checks per key
binding (``new_path``): an AssociatorNames builds one per device (issue 16).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Optional

from pywbem import CIMInstanceName

from kvm_providers.provider._fastcim import new_path, new_path_folded
from kvm_providers.virt import keys, lookup_domain, manager
from kvm_providers.virt.connection import Host
from kvm_providers.model.kinds import DeviceKind, kind_for_class
from kvm_providers.virt.domain import DomainRef
from kvm_providers.virt.hostfacts import system_hostname
from kvm_providers.virt.profiles import PROFILES, Profile, profile_instance_id

from .base import INTEROP_NS, VIRT_NS, get_domain_doc

__all__ = ["host_system_name", "host_path", "cs_path", "vssd_path", "rasd_path",
           "device_path", "device_paths", "device_keys", "vsms_keys", "vsms_path", "vsmc_path", "elec_path",
           "cs_of_path", "host_of_path", "host_of_system_name", "vssd_of_path", "element_of_path",
           "profile_path", "several_families", "family_profiles"]


def _cn(family: str, base: str) -> str:
    return f"{family}_{base}"


def host_system_name(host: Host) -> str:
    """{P}_HostSystem.Name of `host`."""
    return keys.host_name(host, system_hostname(host))


def host_path(host: Host) -> CIMInstanceName:
    cls = _cn(host.family, "HostSystem")
    return new_path(cls, {"CreationClassName": cls, "Name": host_system_name(host)},
                           VIRT_NS)


def cs_path(host: Host, domain: str) -> CIMInstanceName:
    cls = _cn(host.family, "ComputerSystem")
    return new_path(cls, {"CreationClassName": cls, "Name": keys.cs_name(host, domain)},
                           VIRT_NS)


def vssd_path(host: Host, domain: str) -> CIMInstanceName:
    return new_path(_cn(host.family, "VirtualSystemSettingData"),
                           {"InstanceID": keys.vssd_id(host, domain)}, VIRT_NS)


def rasd_path(host: Host, domain: str, kind: DeviceKind, devid: str) -> CIMInstanceName:
    return new_path(_cn(host.family, kind.rasd_class),
                           {"InstanceID": keys.device_id(host, domain, devid)},
                           VIRT_NS)


def device_keys(classname: str, host: Host, domain: str, devid: str) -> dict[str, str]:
    prefix = classname.split("_", 1)[0]
    return {"SystemCreationClassName": f"{prefix}_ComputerSystem",
            "SystemName": keys.cs_name(host, domain),
            "CreationClassName": classname,
            "DeviceID": keys.device_id(host, domain, devid)}


def device_path(host: Host, domain: str, kind: DeviceKind, devid: str) -> CIMInstanceName:
    if kind.device_class is None:
        raise ValueError(f"device kind {kind.name} has no logical device class")
    cls = _cn(host.family, kind.device_class)
    return new_path(cls, device_keys(cls, host, domain, devid), VIRT_NS)


def device_paths(host: Host, domain: str, devices: Iterable[Any]) -> Iterator[CIMInstanceName]:
    """``device_path(host, domain, dev.kind, dev.devid)`` of every device of `devices`
    (a domain's device list), in order: the keys the devices share (the system's
    CreationClassName and Name, the DeviceID's prefix) computed once, the key names
    not folded per path (AssociatorNames SystemDevice writes a path per device,
    issue 16).  The same paths as device_path's, key order and spelling included."""
    family = host.family
    sccn = ("systemcreationclassname", ("SystemCreationClassName", f"{family}_ComputerSystem"))
    sname = ("systemname", ("SystemName", keys.cs_name(host, domain)))
    id_prefix = keys.device_id(host, domain, "")
    classes: dict[Any, str] = {}
    for dev in devices:
        kind = dev.kind
        cls = classes.get(kind)
        if cls is None:
            if kind.device_class is None:
                raise ValueError(f"device kind {kind.name} has no logical device class")
            cls = classes[kind] = _cn(family, kind.device_class)
        yield new_path_folded(cls, dict((sccn, sname,
                                         ("creationclassname", ("CreationClassName", cls)),
                                         ("deviceid", ("DeviceID", id_prefix + dev.devid)))),
                              VIRT_NS)


def vsms_keys(host: Host, classname: str) -> dict[str, str]:
    prefix = classname.split("_", 1)[0]
    return {"CreationClassName": classname, "Name": keys.MANAGEMENT_SERVICE_NAME,
            "SystemCreationClassName": f"{prefix}_HostSystem",
            "SystemName": host_system_name(host)}


def vsms_path(host: Host) -> CIMInstanceName:
    cls = _cn(host.family, "VirtualSystemManagementService")
    return new_path(cls, vsms_keys(host, cls), VIRT_NS)


def vsmc_path(host: Host) -> CIMInstanceName:
    return new_path(_cn(host.family, "VirtualSystemManagementCapabilities"),
                           {"InstanceID": keys.vsmc_id(host)}, VIRT_NS)


def elec_path(host: Host, domain: str) -> CIMInstanceName:
    return new_path(_cn(host.family, "EnabledLogicalElementCapabilities"),
                           {"InstanceID": keys.cs_name(host, domain)}, VIRT_NS)


def profile_path(family: str, instance_id: str) -> CIMInstanceName:
    return new_path(_cn(family, "RegisteredProfile"), {"InstanceID": instance_id},
                           INTEROP_NS)


def several_families() -> bool:
    """True if hosts of several families are configured (profile InstanceIDs name it)."""
    return len(manager().families()) > 1


def family_profiles(family: str) -> list[tuple[Profile, str]]:
    """[(Profile, InstanceID)] registered for `family` (empty if it has no host)."""
    if not manager().for_family(family):
        return []
    many = several_families()
    return [(p, profile_instance_id(p, family, many)) for p in PROFILES]


# -- parsing paths back ----------------------------------------------------------------

def _key(path: CIMInstanceName, name: str) -> Any:
    return path.keybindings.get(name)


def _same(a: Any, b: str) -> bool:
    return isinstance(a, str) and a.lower() == b.lower()


def cs_of_path(path: CIMInstanceName, family: str) -> Optional[DomainRef]:
    """The domain of a {P}_ComputerSystem path (None if there is none)."""
    if not _same(_key(path, "CreationClassName"), path.classname):
        return None
    hit = keys.parse_cs_name(family, _key(path, "Name"))
    return None if hit is None else lookup_domain(*hit)


def host_of_path(path: CIMInstanceName, family: str) -> Optional[Host]:
    """The host of a {P}_HostSystem path (None if it names no configured host)."""
    if not _same(_key(path, "CreationClassName"), path.classname):
        return None
    return host_of_system_name(family, _key(path, "Name"))


def host_of_system_name(family: str, name: Any) -> Optional[Host]:
    """The host whose host system's Name (or a SystemName key naming it) is `name`; None
    if it names no configured host.  The one parser of that name: it is what
    :func:`host_system_name` makes, whether or not libvirt could tell the host name."""
    if not isinstance(name, str):
        return None
    hit = keys.parse_host_name(family, name)
    if hit is None:
        return None
    host, hostname = hit
    return host if system_hostname(host) == hostname else None


def device_of_path(path: CIMInstanceName, family: str):
    """(host, domain, kind, devid) of a device or RASD path, without checking it exists."""
    kind, what = kind_for_class(path.classname)
    if kind is None:
        return None
    key = "DeviceID" if what == "device" else "InstanceID"
    hit = keys.parse_device_id(family, _key(path, key))
    if hit is None:
        return None
    host, domain, devid = hit
    if what == "device" and _key(path, "SystemName") != keys.cs_name(host, domain):
        return None
    return host, domain, kind, devid, what


def element_of_path(path: CIMInstanceName, family: str, what: str):
    """(host, domain, doc, element) of a device path (`what` 'device') or RASD path
    ('rasd') that names an existing logical device or setting of a domain; or None."""
    hit = device_of_path(path, family)
    if hit is None or hit[4] != what:
        return None
    host, domain, kind, devid, _ = hit
    doc = get_domain_doc(host, domain)
    if doc is None:
        return None
    found: Any
    if what == "device":
        found = doc.device(kind.name, devid)
    else:
        found = doc.setting(devid)
        if found is not None and found.kind is not kind:
            found = None
    return None if found is None else (host, domain, doc, found)


def vssd_of_path(path: CIMInstanceName, family: str):
    """(host, domain, doc) of a {P}_VirtualSystemSettingData path naming an existing
    domain; or None."""
    hit = keys.parse_vssd_id(family, _key(path, "InstanceID"))
    if hit is None:
        return None
    doc = get_domain_doc(*hit)
    return None if doc is None else (*hit, doc)
