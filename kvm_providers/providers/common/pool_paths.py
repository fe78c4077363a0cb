"""Instance paths of the pool classes (issue 5): pools, allocation capabilities and their
templates, the pool configuration service and capabilities, storage volumes.

Every provider that refers to these classes builds their paths here, from
the libvirt layer's objects (kvm_providers.model.pools / allocation), so
that keys are computed one way.
"""

from __future__ import annotations

from typing import Any, Optional

from pywbem import CIMInstanceName

from kvm_providers.virt import keys
from kvm_providers.model.allocation import Capabilities, Template
from kvm_providers.virt.connection import Host
from kvm_providers.virt.domain import DomainXML
from kvm_providers.virt.devices import Setting
from kvm_providers.model.pools import Pool, lookup_pool, pool_from_id, setting_pool

from .base import VIRT_NS
from .paths import host_system_name

__all__ = ["POOL_CLASSES", "RPCS_NAME", "RPCC_ID", "pool_path", "ac_path", "template_path",
           "rpcs_keys", "rpcs_path", "rpcc_id", "rpcc_path", "volume_keys", "volume_path",
           "volume_rasd_path", "same_host_system", "pool_of_path", "setting_pool_path"]

#: The pool classes (without family prefix).
POOL_CLASSES = ("ProcessorPool", "MemoryPool", "DiskPool", "NetworkPool", "GraphicsPool",
                "InputPool", "ControllerPool")

#: libvirt-cim's Name of the ResourcePoolConfigurationService and InstanceID of its
#: capabilities (host-qualified with several hosts).
RPCS_NAME = "RPCS"
RPCC_ID = "RPCC"


def pool_path(pool: Pool) -> CIMInstanceName:
    return CIMInstanceName(f"{pool.host.family}_{pool.kind.classname}",
                           {"InstanceID": pool.instance_id}, namespace=VIRT_NS)


def ac_path(ac: Capabilities) -> CIMInstanceName:
    return CIMInstanceName(f"{ac.host.family}_AllocationCapabilities",
                           {"InstanceID": ac.instance_id}, namespace=VIRT_NS)


def template_path(host: Host, template: Template) -> CIMInstanceName:
    return CIMInstanceName(template.classname(host.family), {"InstanceID": template.instance_id},
                           namespace=VIRT_NS)


def rpcs_keys(host: Host, classname: Optional[str] = None) -> dict[str, str]:
    cls = classname or f"{host.family}_ResourcePoolConfigurationService"
    return {"CreationClassName": cls, "Name": RPCS_NAME,
            "SystemCreationClassName": f"{cls.split('_', 1)[0]}_HostSystem",
            "SystemName": host_system_name(host)}


def rpcs_path(host: Host) -> CIMInstanceName:
    cls = f"{host.family}_ResourcePoolConfigurationService"
    return CIMInstanceName(cls, rpcs_keys(host, cls), namespace=VIRT_NS)


def rpcc_id(host: Host) -> str:
    return keys.qualify(host, RPCC_ID)


def rpcc_path(host: Host) -> CIMInstanceName:
    return CIMInstanceName(f"{host.family}_ResourcePoolConfigurationCapabilities",
                           {"InstanceID": rpcc_id(host)}, namespace=VIRT_NS)


def volume_keys(host: Host, path: str, classname: Optional[str] = None) -> dict[str, str]:
    """Keys of a {P}_StorageVolume: the host system, and the volume's path as DeviceID."""
    cls = classname or f"{host.family}_StorageVolume"
    return {"SystemCreationClassName": f"{cls.split('_', 1)[0]}_HostSystem",
            "SystemName": host_system_name(host), "CreationClassName": cls, "DeviceID": path}


def volume_path(host: Host, path: str) -> CIMInstanceName:
    cls = f"{host.family}_StorageVolume"
    return CIMInstanceName(cls, volume_keys(host, path, cls), namespace=VIRT_NS)


def volume_rasd_path(host: Host, path: str) -> CIMInstanceName:
    """A {P}_StorageVolumeResourceAllocationSettingData: InstanceID = the volume's path
    (libvirt-cim's), host-qualified with several hosts."""
    return CIMInstanceName(f"{host.family}_StorageVolumeResourceAllocationSettingData",
                           {"InstanceID": keys.qualify(host, path)}, namespace=VIRT_NS)


def same_host_system(system_name: Any, host: Host) -> bool:
    """True if a SystemName key names `host`'s host system."""
    return isinstance(system_name, str) and system_name == host_system_name(host)


def pool_of_path(path: CIMInstanceName, family: str) -> Optional[Pool]:
    """The pool a path of a pool class names (None if there is none)."""
    return pool_from_id(family, path.keybindings.get("InstanceID"), path.classname)


def setting_pool_path(host: Host, doc: DomainXML, setting: Setting
                      ) -> Optional[CIMInstanceName]:
    """The path of the pool a setting (RASD) of `doc` is allocated from, or None."""
    found = setting_pool(setting, doc.context())
    pool = lookup_pool(host, *found) if found is not None else None
    return None if pool is None else pool_path(pool)
