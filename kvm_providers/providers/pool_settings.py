"""The settings classes of pools and volumes (used with the ResourcePoolConfigurationService):
{P}_DiskPoolResourceAllocationSettingData, {P}_NetPoolResourceAllocationSettingData and
{P}_StorageVolumeResourceAllocationSettingData.

Their instances are

* the templates of the allocation capabilities (kvm_providers.model.allocation):
  what CreateChildResourcePool accepts for a storage pool or a network (the
  capabilities of DiskPool/0 and NetworkPool/0) and what CreateResourceInPool
  accepts for a volume (those of each storage pool).  They are reached through
  SettingsDefineCapabilities and GetInstance, and not enumerated: they describe
  what may be allocated, not allocations;
* for StorageVolumeResourceAllocationSettingData, the settings of any storage
  volume of an active pool, InstanceID = the volume's path (libvirt-cim's;
  host-qualified with several hosts): what CreateResourceInPool returns, and
  what DeleteResourceInPool takes.  GetInstance answers them; they are not
  enumerated (the volumes are, as {P}_StorageVolume).

The templates of the device RASD classes (disk, network ...) are served by
their own provider (resource_allocation), through the same lookup.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

from kvm_providers.schema.valuemaps import P_StorageVolumeResourceAllocationSettingData
from kvm_providers.virt import keys
from kvm_providers.model.allocation import VOLUME_FORMATS, VOLUME_RESOURCE_TYPE, lookup_template
from kvm_providers.model.poolconfig import Volume, volume_format, volume_of_path, volume_sizes

from .common import VirtProvider, fill, providers_for

__all__ = ["PoolSettingsProvider", "get_providers", "fill_template"]

_VOLUME_CLASS = "storagevolumeresourceallocationsettingdata"
_VOLUME_PROPS = ("ElementName", "VolumeName", "Path", "Address", "ResourceType", "PoolID",
                 "Capacity", "AllocationQuantity", "AllocationUnits", "FormatType",
                 "HostResource")
_FORMAT_VALUES = {v: k for k, v in VOLUME_FORMATS.items()}


def fill_template(model: Any, props: dict[str, Any]) -> None:
    """Set a template's values on a model (the model drops what PropertyList excludes)."""
    for name, value in props.items():
        model[name] = value


def _volume_values(vol: Volume) -> dict[str, Any]:
    memo: dict[str, Any] = {}

    def sizes():
        if "s" not in memo:
            memo["s"] = volume_sizes(vol)
        return memo["s"]

    def fmt():
        return _FORMAT_VALUES.get(volume_format(vol) or "raw",
                                  P_StorageVolumeResourceAllocationSettingData.FormatType.Unknown)

    return {"ElementName": vol.name, "VolumeName": vol.name, "Path": vol.path,
            "Address": vol.path, "HostResource": [vol.path],
            "ResourceType": VOLUME_RESOURCE_TYPE, "PoolID": vol.pool.pool_id,
            "Capacity": lambda: sizes() and sizes()[0],
            "AllocationQuantity": lambda: sizes() and sizes()[1],
            "AllocationUnits": "Bytes", "FormatType": fmt}


class PoolSettingsProvider(VirtProvider):
    """The three pool settings classes of every family."""

    @staticmethod
    def _base(classname: str) -> str:
        return classname.split("_", 1)[1].lower()

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        """Nothing: templates are not allocations, and volumes are enumerated as
        {P}_StorageVolume (a CIM_ResourceAllocationSettingData enumeration lists
        the settings of virtual systems only)."""
        return iter(())

    def get_instance(self, env, model) -> Optional[Any]:
        family = self.family(model.classname)
        iid = model["InstanceID"]
        tmpl = lookup_template(family, iid)
        if tmpl is not None:
            if tmpl.rasd_class.lower() != self._base(model.classname):
                return None
            fill_template(model, tmpl.props)
            return model
        if self._base(model.classname) != _VOLUME_CLASS:
            return None
        hit = keys.parse_qualified(family, iid)
        if hit is None:
            return None
        vol = volume_of_path(*hit)
        if vol is None:
            return None
        values = dict.fromkeys(_VOLUME_PROPS)
        values.update(_volume_values(vol))
        fill(model, model, values, _VOLUME_PROPS)
        return model


def get_providers(env) -> dict[str, Any]:
    return providers_for(PoolSettingsProvider(), "DiskPoolResourceAllocationSettingData",
                         "NetPoolResourceAllocationSettingData",
                         "StorageVolumeResourceAllocationSettingData")
