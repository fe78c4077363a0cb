"""{P}_SettingsDefineState: a logical device (ManagedElement) and the RASD that
defines it (SettingData); a virtual system and its VSSD (DSP2013 5.2.2-5.2.4).

Every Processor of a virtual system is defined by its one processor RASD."""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.model.kinds import KINDS

from .common import AssociationProvider, Role, providers_for
from .common.paths import (cs_of_path, cs_path, device_path, element_of_path, rasd_path,
                           vssd_of_path, vssd_path)

__all__ = ["SettingsDefineStateProvider", "get_providers"]


class SettingsDefineStateProvider(AssociationProvider):
    roles = (Role("ManagedElement", ["ComputerSystem"] + [k.device_class for k in KINDS if k.device_class]),
             Role("SettingData", ["VirtualSystemSettingData"] + [k.rasd_class for k in KINDS]))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        base = path.classname.split("_", 1)[1].lower()
        if base == "computersystem":
            ref = cs_of_path(path, family)
            if ref is not None:
                yield vssd_path(ref.host, ref.name)
            return
        if base == "virtualsystemsettingdata":
            found = vssd_of_path(path, family)
            if found is not None:
                host, domain, _ = found
                yield cs_path(host, domain)
            return
        if side == 0:
            found = element_of_path(path, family, "device")
            if found is not None:
                host, domain, _, dev = found
                yield rasd_path(host, domain, dev.kind, dev.setting.devid)
            return
        found = element_of_path(path, family, "rasd")
        if found is not None:
            host, domain, doc, s = found
            for dev in doc.devices_of(s.kind.name):
                if dev.setting is s:
                    yield device_path(host, domain, s.kind, dev.devid)

    def sources(self, env, family):
        for doc in self.domain_docs(family):
            yield cs_path(doc.host, doc.name)
            for dev in doc.devices():
                yield device_path(doc.host, doc.name, dev.kind, dev.devid)


def get_providers(env) -> dict[str, Any]:
    return providers_for(SettingsDefineStateProvider(), "SettingsDefineState")
