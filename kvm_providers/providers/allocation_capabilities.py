"""{P}_AllocationCapabilities (DSP1043): how resources can be allocated, one instance per
resource pool (InstanceID = the pool's), as libvirt-cim has them.

Pools reach theirs, and the host reaches all of them, through ElementCapabilities;
the RASD templates that give minimum, maximum, default, increment and the
supported values hang off them through SettingsDefineCapabilities (see
kvm_providers.model.allocation).
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

from kvm_providers.model.allocation import Capabilities, host_capabilities, lookup_capabilities

from .common import VirtProvider, fill, providers_for

__all__ = ["AllocationCapabilitiesProvider", "get_providers"]

_PROPS = ("ElementName", "ResourceType", "OtherResourceType", "ResourceSubType",
          "RequestTypesSupported", "SharingMode")


class AllocationCapabilitiesProvider(VirtProvider):
    """{P}_AllocationCapabilities for every family."""

    def _fill(self, inst: Any, model: Any, ac: Capabilities) -> None:
        values = dict.fromkeys(_PROPS)
        values.update(ac.properties())
        fill(inst, model, values, _PROPS)

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        for host in self.hosts(model.classname):
            for ac in host_capabilities(host):
                inst = model.copy()
                inst["InstanceID"] = ac.instance_id
                if not keys_only:
                    self._fill(inst, model, ac)
                yield inst

    def get_instance(self, env, model) -> Optional[Any]:
        ac = lookup_capabilities(self.family(model.classname), model["InstanceID"])
        if ac is None:
            return None
        self._fill(model, model, ac)
        return model


def get_providers(env) -> dict[str, Any]:
    return providers_for(AllocationCapabilitiesProvider(), "AllocationCapabilities")
