"""{P}_StorageVolume: the storage volumes of the host's active storage pools, the
constituent resources of the DiskPools (ConcreteComponent).

Keys: SystemCreationClassName {P}_HostSystem, SystemName the host system's
Name, CreationClassName, DeviceID the volume's path.  NumberOfBlocks and
ConsumableBlocks are the capacity, and BlockSize is 1 byte (volumes are sized
in bytes).
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

from kvm_providers.schema.valuemaps import CIM_ManagedSystemElement
from kvm_providers.virt.domain import parse_xml
from kvm_providers.virt.poolconfig import Volume, volume_of_path, volumes
from kvm_providers.virt.pools import DISK, list_pools

from .common import VirtProvider, fill, providers_for
from .common.pool_paths import same_host_system, volume_keys

__all__ = ["StorageVolumeProvider", "get_providers"]

_PROPS = ("ElementName", "Name", "BlockSize", "NumberOfBlocks", "ConsumableBlocks", "Format",
          "PoolName", "HealthState", "OperationalStatus")


def _values(vol: Volume) -> dict[str, Any]:
    memo: dict[str, Any] = {}

    def capacity():
        if "c" not in memo:
            try:
                memo["c"] = int(vol.obj.info()[1])
            except Exception:  # pylint: disable=broad-except
                memo["c"] = None
        return memo["c"]

    def fmt():
        try:
            f = parse_xml(vol.obj.XMLDesc(0)).find("target/format")
        except Exception:  # pylint: disable=broad-except
            return None
        return f.get("type") if f is not None else None

    values = dict.fromkeys(_PROPS)
    values.update({"ElementName": vol.name, "Name": vol.path, "BlockSize": 1,
                   "NumberOfBlocks": capacity, "ConsumableBlocks": capacity, "Format": fmt,
                   "PoolName": vol.pool.name, "HealthState": CIM_ManagedSystemElement.HealthState.OK,
                   "OperationalStatus": [CIM_ManagedSystemElement.OperationalStatus.OK]})
    return values


class StorageVolumeProvider(VirtProvider):
    """{P}_StorageVolume for every family."""

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        cls = model.classname
        for host in self.hosts(cls):
            for pool in list_pools(host, (DISK.name,)):
                for vol in volumes(pool):
                    inst = model.copy()
                    for k, v in volume_keys(host, vol.path, cls).items():
                        inst[k] = v
                    if not keys_only:
                        fill(inst, model, _values(vol), _PROPS)
                    yield inst

    def get_instance(self, env, model) -> Optional[Any]:
        cls = model.classname
        for host in self.hosts(cls):
            want = volume_keys(host, model["DeviceID"] or "", cls)
            if not same_host_system(model["SystemName"], host) or \
                    not self.same_class(model["CreationClassName"], cls) or \
                    not self.same_class(model["SystemCreationClassName"],
                                        want["SystemCreationClassName"]):
                continue
            vol = volume_of_path(host, model["DeviceID"])
            if vol is None:
                return None
            fill(model, model, _values(vol), _PROPS)
            return model
        return None


def get_providers(env) -> dict[str, Any]:
    return providers_for(StorageVolumeProvider(), "StorageVolume")
