"""{P}_StorageVolume: the storage volumes of the host's active storage pools, the
constituent resources of the DiskPools (ConcreteComponent).

Keys: SystemCreationClassName {P}_HostSystem, SystemName the host system's
Name, CreationClassName, DeviceID the volume's path.  NumberOfBlocks and
ConsumableBlocks are the capacity, and BlockSize is 1 byte (volumes are sized
in bytes).  HealthState and OperationalStatus are the host's (common.health): a
volume is listed only while its pool runs.  libvirt failures other than "the
volume went away" fail the request (CIM_ERR_FAILED naming the host), never
blank properties.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

from kvm_providers.model.poolconfig import (Volume, volume_format, volume_of_path, volume_sizes,
                                           volumes)
from kvm_providers.model.pools import DISK, list_pools

from .common import VirtProvider, fill, providers_for
from .common.health import STATUS_PROPS, host_status_values
from .common.pool_paths import same_host_system, volume_keys

__all__ = ["StorageVolumeProvider", "get_providers"]

_PROPS = ("ElementName", "Name", "BlockSize", "NumberOfBlocks", "ConsumableBlocks", "Format",
          "PoolName") + STATUS_PROPS


def _values(vol: Volume) -> dict[str, Any]:
    memo: dict[str, Any] = {}

    def capacity():
        if "c" not in memo:
            sizes = volume_sizes(vol)
            memo["c"] = sizes[0] if sizes else None
        return memo["c"]

    values = dict.fromkeys(_PROPS)
    values.update({"ElementName": vol.name, "Name": vol.path, "BlockSize": 1,
                   "NumberOfBlocks": capacity, "ConsumableBlocks": capacity,
                   "Format": lambda: volume_format(vol), "PoolName": vol.pool.name})
    values.update(host_status_values(vol.pool.host))
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
