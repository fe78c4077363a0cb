"""{P}_SystemDevice: a virtual system (GroupComponent) and its logical devices
(PartComponent) - DSP2013 use case 5.2.4, "the virtual system structure"."""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.virt import keys, list_domains
from kvm_providers.virt.devicelist import domain_devices, read_ahead
from kvm_providers.model.kinds import KINDS

from .common import AssociationProvider, Role, providers_for
from .common.base import VIRT_NS
from .common.paths import cs_of_path, cs_path, device_paths, element_of_path

__all__ = ["SystemDeviceProvider", "get_providers"]


class SystemDeviceProvider(AssociationProvider):
    roles = (Role("GroupComponent", ["ComputerSystem"]),
             Role("PartComponent", [k.device_class for k in KINDS if k.device_class]))

    def read_ahead_source(self, object_name) -> bool:
        """From a ComputerSystem the devices come from its domain's XML: read with the
        lookup the source check makes, in one hop (issue 16).  The system exists if
        the lookup found its domain: what its GetInstance finds it by (the class and
        CreationClassName of a family's ComputerSystem, in any case; a Name that names
        a domain of a host of the family; ComputerSystemProvider._find), in the
        namespace its provider serves."""
        family = keys.family_of_class(object_name.classname)
        cls = object_name.classname.lower()
        name = object_name.keybindings.get("Name")
        ccn = object_name.keybindings.get("CreationClassName")
        if family is None or cls != f"{family}_computersystem".lower() \
                or not isinstance(name, str) or not isinstance(ccn, str) or ccn.lower() != cls:
            return False    # not a system path the check will look up: nothing to read ahead
        hit = keys.parse_cs_name(family, name)
        if hit is None:
            return False
        found = read_ahead(*hit)
        return found is not None and (object_name.namespace or "").strip("/").lower() == \
            VIRT_NS

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            ref = cs_of_path(path, family)
            if ref is None:
                return
            # The device list of the XML read ahead (the same text as a request before:
            # not parsed again; kvm_providers.virt.devicelist).
            devices = domain_devices(ref.host, ref.name)
            if devices is None:
                return
            yield from device_paths(ref.host, ref.name, devices)
            return
        found = element_of_path(path, family, "device")
        if found is not None:
            host, domain, _, _ = found
            yield cs_path(host, domain)

    def sources(self, env, family):
        for host in self.hosts(f"{family}_SystemDevice"):
            for ref in list_domains(host):
                yield cs_path(host, ref.name)


def get_providers(env) -> dict[str, Any]:
    return providers_for(SystemDeviceProvider(), "SystemDevice")
