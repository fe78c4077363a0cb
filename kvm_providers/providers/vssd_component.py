"""{P}_VirtualSystemSettingDataComponent: a virtual system's settings (VSSD,
GroupComponent) and its resource allocation settings (RASDs, PartComponent)."""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.virt import list_domains
from kvm_providers.virt.devices import KINDS

from .common import AssociationProvider, Role, providers_for
from .common.paths import element_of_path, rasd_path, vssd_of_path, vssd_path

__all__ = ["VSSDComponentProvider", "get_providers"]


class VSSDComponentProvider(AssociationProvider):
    roles = (Role("GroupComponent", ["VirtualSystemSettingData"]),
             Role("PartComponent", [k.rasd_class for k in KINDS]))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            found = vssd_of_path(path, family)
            if found is not None:
                host, domain, doc = found
                for s in doc.settings():
                    yield rasd_path(host, domain, s.kind, s.devid)
            return
        found = element_of_path(path, family, "rasd")
        if found is not None:
            host, domain, _, _ = found
            yield vssd_path(host, domain)

    def sources(self, env, family):
        for host in self.hosts(f"{family}_X"):
            for ref in list_domains(host):
                yield vssd_path(host, ref.name)


def get_providers(env) -> dict[str, Any]:
    return providers_for(VSSDComponentProvider(), "VirtualSystemSettingDataComponent")
