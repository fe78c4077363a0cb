"""Instance paths of the KVM redirection classes (DSP1076): the console redirection
service and its capabilities (one per host), and the access points (one per VNC or
SPICE console of a virtual system, kvm_providers.virt.redirection).

Every provider that refers to these classes builds (and parses) their paths
here, so that keys are computed one way.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

import pywbem
from pywbem import CIMError, CIMInstanceName

from kvm_providers.virt import DomainNotFound, iter_domain_xml, keys, list_domains
from kvm_providers.virt.connection import Host
from kvm_providers.virt.redirection import AccessPoint, access_point, access_points

from .base import VIRT_NS, get_domain_doc
from .paths import host_system_name

__all__ = ["host_saps", "CRS_NAME", "CRSC_ID", "crs_keys", "crs_path", "crsc_id", "crsc_path", "sap_keys",
           "sap_path", "sap_of_path", "find_sap"]

#: libvirt-cim's Name of the ConsoleRedirectionService and InstanceID of its capabilities.
CRS_NAME = "ConsoleRedirectionService"
CRSC_ID = "ConsoleRedirectionCapabilities"


def crs_keys(host: Host, classname: Optional[str] = None) -> dict[str, str]:
    cls = classname or f"{host.family}_ConsoleRedirectionService"
    return {"CreationClassName": cls, "Name": CRS_NAME,
            "SystemCreationClassName": f"{cls.split('_', 1)[0]}_HostSystem",
            "SystemName": host_system_name(host)}


def crs_path(host: Host) -> CIMInstanceName:
    cls = f"{host.family}_ConsoleRedirectionService"
    return CIMInstanceName(cls, crs_keys(host, cls), namespace=VIRT_NS)


def crsc_id(host: Host) -> str:
    """InstanceID of the host's ConsoleRedirectionServiceCapabilities (host-qualified
    with several hosts)."""
    return keys.qualify(host, CRSC_ID)


def crsc_path(host: Host) -> CIMInstanceName:
    return CIMInstanceName(f"{host.family}_ConsoleRedirectionServiceCapabilities",
                           {"InstanceID": crsc_id(host)}, namespace=VIRT_NS)


def sap_keys(host: Host, ap: AccessPoint, classname: Optional[str] = None) -> dict[str, str]:
    """Keys of a {P}_KVMRedirectionSAP (libvirt-cim's): the virtual system is the scoping
    system, Name is the access point's name ("<port>:<session>")."""
    cls = classname or f"{host.family}_KVMRedirectionSAP"
    prefix = cls.split("_", 1)[0]
    return {"SystemCreationClassName": f"{prefix}_ComputerSystem",
            "SystemName": keys.cs_name(host, ap.domain),
            "CreationClassName": cls, "Name": ap.name}


def sap_path(host: Host, ap: AccessPoint) -> CIMInstanceName:
    cls = f"{host.family}_KVMRedirectionSAP"
    return CIMInstanceName(cls, sap_keys(host, ap, cls), namespace=VIRT_NS)


def host_saps(host: Host) -> Iterator[CIMInstanceName]:
    """Paths of every access point of `host`'s virtual systems (a system that goes away
    meanwhile has none)."""
    for doc in iter_domain_xml(list_domains(host)):
        try:
            aps = access_points(doc)
        except DomainNotFound:
            continue
        for ap in aps:
            yield sap_path(host, ap)


def _key(path: CIMInstanceName, name: str) -> Any:
    for k, v in path.keybindings.items():
        if k.lower() == name.lower():
            return v
    return None


def find_sap(path: CIMInstanceName, family: str) -> tuple[Optional[tuple[Host, AccessPoint]],
                                                          str]:
    """((host, access point), "") for a {P}_KVMRedirectionSAP path naming an existing
    access point; else (None, the key that names nothing)."""
    cls = path.classname
    if not isinstance(_key(path, "CreationClassName"), str) or \
            _key(path, "CreationClassName").lower() != cls.lower():
        return None, "CreationClassName"
    sccn = _key(path, "SystemCreationClassName")
    if not isinstance(sccn, str) or sccn.lower() != f"{family}_ComputerSystem".lower():
        return None, "SystemCreationClassName"
    hit = keys.parse_cs_name(family, _key(path, "SystemName"))
    if hit is None:
        return None, "SystemName"
    host, domain = hit
    doc = get_domain_doc(host, domain)
    if doc is None:
        return None, "SystemName"
    ap = access_point(doc, _key(path, "Name"))
    if ap is None:
        return None, "Name"
    return (host, ap), ""


def sap_of_path(path: CIMInstanceName, family: str) -> Optional[tuple[Host, AccessPoint]]:
    """(host, access point) of a SAP path, or None if it names none."""
    return find_sap(path, family)[0]


def not_found(path: CIMInstanceName, key: str) -> CIMError:
    """CIM_ERR_NOT_FOUND naming the key that names nothing (libvirt-cim's wording
    "No such instance (<key>)", which its clients look for)."""
    return CIMError(pywbem.CIM_ERR_NOT_FOUND,
                    f"No such instance ({key}): {path.classname} "
                    f"{dict(path.keybindings)!r} names no console access point")
