"""Helpers of the CIM migration tests: paths of the two hosts' instances, setting data,
the guests' definitions."""

from __future__ import annotations

import libvirt
from pywbem import CIMInstance, CIMInstanceName, Uint16

#: Seconds a migration of a 128 MiB TCG guest may take on a loaded 2-core machine.
MIGRATION_TIMEOUT = 300


def svc_path(conn, label: str) -> CIMInstanceName:
    for p in conn.EnumerateInstanceNames("KVM_VirtualSystemMigrationService"):
        if p["SystemName"].startswith(f"{label}:"):
            return p
    raise AssertionError(f"no migration service of host {label}")


def host_ref(conn, label: str) -> CIMInstanceName:
    for p in conn.EnumerateInstanceNames("KVM_HostSystem"):
        if p["Name"].startswith(f"{label}:"):
            return p
    raise AssertionError(f"no host system {label}")


def cs_ref(label: str, name: str) -> CIMInstanceName:
    return CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                  "Name": f"{label}:{name}"},
                           namespace="root/virt")


def settings(**props) -> CIMInstance:
    typed = {k: (Uint16(v) if isinstance(v, int) and not isinstance(v, bool) else v)
             for k, v in props.items()}
    return CIMInstance("KVM_VirtualSystemMigrationSettingData", properties=typed)


def definition(host, name: str) -> str:
    """The guest's persistent definition, as libvirt keeps it."""
    c = libvirt.open(host.uri())
    try:
        return c.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    finally:
        c.close()
