"""Instance paths of the migration classes (DSP1081): the migration service, its
capabilities and its default setting data, one of each per host (libvirt-cim's keys:
Name "MigrationService", InstanceIDs "MigrationCapabilities" and
"MigrationSettingData", host-qualified with several hosts).
"""

from __future__ import annotations

from typing import Optional

from pywbem import CIMInstanceName

from kvm_providers.virt import keys
from kvm_providers.virt.connection import Host

from .base import VIRT_NS
from .paths import host_system_name

__all__ = ["MS_NAME", "MSC_ID", "MSD_ID", "ms_keys", "ms_path", "msc_id", "msc_path",
           "msd_id", "msd_path"]

MS_NAME = "MigrationService"
MSC_ID = "MigrationCapabilities"
MSD_ID = "MigrationSettingData"


def ms_keys(host: Host, classname: Optional[str] = None) -> dict[str, str]:
    cls = classname or f"{host.family}_VirtualSystemMigrationService"
    return {"CreationClassName": cls, "Name": MS_NAME,
            "SystemCreationClassName": f"{cls.split('_', 1)[0]}_HostSystem",
            "SystemName": host_system_name(host)}


def ms_path(host: Host) -> CIMInstanceName:
    cls = f"{host.family}_VirtualSystemMigrationService"
    return CIMInstanceName(cls, ms_keys(host, cls), namespace=VIRT_NS)


def msc_id(host: Host) -> str:
    return keys.qualify(host, MSC_ID)


def msc_path(host: Host) -> CIMInstanceName:
    return CIMInstanceName(f"{host.family}_VirtualSystemMigrationCapabilities",
                           {"InstanceID": msc_id(host)}, namespace=VIRT_NS)


def msd_id(host: Host) -> str:
    return keys.qualify(host, MSD_ID)


def msd_path(host: Host) -> CIMInstanceName:
    return CIMInstanceName(f"{host.family}_VirtualSystemMigrationSettingData",
                           {"InstanceID": msd_id(host)}, namespace=VIRT_NS)
