"""{P}_ElementSettingData: a VSSD or RASD and itself.

DSP1057 relates the settings that describe a virtual system's state to those
of its "defined" configuration.  libvirt keeps one definition per domain (the
running configuration of an active domain and the persistent one coincide
for everything this model reads), so, as in libvirt-cim, both ends are the
same instance, with IsDefault, IsCurrent and IsNext set to 1."""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.schema.valuemaps import CIM_ElementSettingData
from kvm_providers.model.kinds import KINDS

from .common import AssociationProvider, Role, providers_for
from .common.paths import element_of_path, rasd_path, vssd_of_path, vssd_path

__all__ = ["ElementSettingDataProvider", "get_providers"]

_ESD = CIM_ElementSettingData
_SETTINGS = ["VirtualSystemSettingData"] + [k.rasd_class for k in KINDS]


class ElementSettingDataProvider(AssociationProvider):
    roles = (Role("ManagedElement", _SETTINGS), Role("SettingData", _SETTINGS))
    symmetric = True
    extra = {"IsDefault": _ESD.IsDefault.Is_Default, "IsCurrent": _ESD.IsCurrent.Is_Current,
             "IsNext": _ESD.IsNext.Is_Next}

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        base = path.classname.split("_", 1)[1].lower()
        if base == "virtualsystemsettingdata":
            found = vssd_of_path(path, family)
            if found is not None:
                host, domain, _ = found
                yield vssd_path(host, domain)
            return
        found = element_of_path(path, family, "rasd")
        if found is not None:
            host, domain, _, s = found
            yield rasd_path(host, domain, s.kind, s.devid)

    def sources(self, env, family):
        for doc in self.domain_docs(family):
            yield vssd_path(doc.host, doc.name)
            for s in doc.settings():
                yield rasd_path(doc.host, doc.name, s.kind, s.devid)


def get_providers(env) -> dict[str, Any]:
    return providers_for(ElementSettingDataProvider(), "ElementSettingData")
