"""Instance keys: how libvirt objects are named in CIM, with one host or several.

With a single configured host the keys are exactly libvirt-cim's
(``COMPAT.md``)::

    {P}_ComputerSystem.Name            vm1
    {P}_VirtualSystemSettingData       KVM:vm1
    RASD InstanceID / device DeviceID  vm1/vda, vm1/proc, vm1/0 ...
    {P}_HostSystem.Name                the host's name (virConnectGetHostname)

With several hosts every name that identifies something *on a host* is
qualified by the host's label (``[[host]] name`` in the configuration, which
may hold only letters, digits, ``.``, ``_`` and ``-``) and a colon::

    {P}_ComputerSystem.Name            lab1:vm1
    {P}_VirtualSystemSettingData       KVM:lab1:vm1
    RASD InstanceID / device DeviceID  lab1:vm1/vda
    {P}_HostSystem.Name                lab1:host.example.com
    VSMS SystemName                    lab1:host.example.com
    VSMC InstanceID                    lab1:ManagementCapabilities

A label never contains ``:`` or ``/``, so the first ``:`` ends the label
whatever the domain name holds, and the first ``/`` after it ends the
domain name (libvirt-cim's rule: device ids such as a filesystem target
directory may contain ``/``).  Two hosts with a domain ``vm1`` therefore
give distinct keys, and so do two ``test://`` hosts on one machine.
The scheme is fixed by the configuration: the same host gets the same keys
whether or not the other hosts are reachable.
"""

from __future__ import annotations

from typing import Optional

from .connection import ConnectionManager, Host, manager

__all__ = ["qualify", "unqualify", "cs_name", "vssd_id", "device_id", "host_name",
           "vsmc_id", "parse_cs_name", "parse_vssd_id", "parse_device_id", "parse_host_name",
           "parse_qualified", "family_of_class", "MANAGEMENT_SERVICE_NAME",
           "MANAGEMENT_CAPABILITIES_ID"]

MANAGEMENT_SERVICE_NAME = "Management Service"
MANAGEMENT_CAPABILITIES_ID = "ManagementCapabilities"
_FAMILIES = {"kvm": "KVM", "lxc": "LXC", "xen": "Xen"}


def family_of_class(classname: str) -> Optional[str]:
    """'KVM_ComputerSystem' -> 'KVM'; None for classes outside the families."""
    prefix = classname.split("_", 1)[0].lower()
    return _FAMILIES.get(prefix)


def qualify(host: Host, text: str) -> str:
    """`text` qualified by the host label when several hosts are configured."""
    return f"{host.label}:{text}" if host.qualified else text


def parse_qualified(family: Optional[str], text: str,
                    mgr: Optional[ConnectionManager] = None) -> Optional[tuple[Host, str]]:
    """(host, unqualified text) for a qualified name of class family `family`.

    None if the name cannot belong to a configured host of that family.
    """
    mgr = mgr or manager()
    if not isinstance(text, str):
        return None
    if mgr.qualified:
        label, sep, rest = text.partition(":")
        if not sep:
            return None
        host = mgr.host(label)
        if host is None or (family and host.family.lower() != family.lower()):
            return None
        return host, rest
    host = mgr.hosts[0]
    if family and host.family.lower() != family.lower():
        return None
    return host, text


def unqualify(text: str) -> str:
    """The part after the host label (for display; keys must use parse_*)."""
    mgr = manager()
    return text.partition(":")[2] if mgr.qualified and ":" in text else text


# -- builders ------------------------------------------------------------------

def cs_name(host: Host, domain: str) -> str:
    """{P}_ComputerSystem.Name (also EnabledLogicalElementCapabilities.InstanceID)."""
    return f"{host.label}:{domain}" if host.qualified else domain


def vssd_id(host: Host, domain: str) -> str:
    """{P}_VirtualSystemSettingData.InstanceID: '<P>:<qualified domain>'."""
    return f"{host.family}:{host.label}:{domain}" if host.qualified \
        else f"{host.family}:{domain}"


def device_id(host: Host, domain: str, devid: str) -> str:
    """RASD InstanceID and device DeviceID: '<qualified domain>/<devid>'."""
    return f"{host.label}:{domain}/{devid}" if host.qualified else f"{domain}/{devid}"


def host_name(host: Host, hostname: str) -> str:
    """{P}_HostSystem.Name (and SystemName of the host's services)."""
    return f"{host.label}:{hostname}" if host.qualified else hostname


def vsmc_id(host: Host) -> str:
    return qualify(host, MANAGEMENT_CAPABILITIES_ID)


# -- parsers: (host, parts) or None when the key cannot exist ---------------------

def parse_cs_name(family: Optional[str], name: str) -> Optional[tuple[Host, str]]:
    """(host, domain name) of a ComputerSystem Name."""
    hit = parse_qualified(family, name)
    if hit is None or not hit[1]:
        return None
    return hit


def parse_vssd_id(family: Optional[str], instance_id: str) -> Optional[tuple[Host, str]]:
    """(host, domain name) of a VSSD InstanceID '<P>:<qualified domain>'."""
    if not isinstance(instance_id, str):
        return None
    prefix, sep, rest = instance_id.partition(":")
    if not sep or (family and prefix.lower() != family.lower()):
        return None
    hit = parse_qualified(family or prefix, rest)
    if hit is None or not hit[1] or hit[0].family.lower() != prefix.lower():
        return None
    return hit


def parse_device_id(family: Optional[str], instance_id: str
                    ) -> Optional[tuple[Host, str, str]]:
    """(host, domain name, devid) of a RASD InstanceID or a device DeviceID."""
    hit = parse_qualified(family, instance_id)
    if hit is None:
        return None
    host, rest = hit
    domain, sep, devid = rest.partition("/")
    if not sep or not domain or not devid:
        return None
    return host, domain, devid


def parse_host_name(family: Optional[str], name: str) -> Optional[tuple[Host, str]]:
    """(host, hostname) of a HostSystem Name."""
    return parse_qualified(family, name)
