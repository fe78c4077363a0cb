"""{P}_VirtualSystemSettingDataComponent: a virtual system's settings (VSSD,
GroupComponent) and its resource allocation settings (RASDs, PartComponent)."""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.virt import keys, list_domains
from kvm_providers.virt.devices import KINDS

from .common import AssociationProvider, Role, get_domain_doc, providers_for
from .common.paths import device_of_path, rasd_path, vssd_path

__all__ = ["VSSDComponentProvider", "get_providers"]


class VSSDComponentProvider(AssociationProvider):
    roles = (Role("GroupComponent", ["VirtualSystemSettingData"]),
             Role("PartComponent", [k.rasd_class for k in KINDS]))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            hit = keys.parse_vssd_id(family, path.keybindings.get("InstanceID"))
            if hit is None:
                return
            host, domain = hit
            doc = get_domain_doc(host, domain)
            if doc is None:
                return
            for s in doc.settings():
                yield rasd_path(host, domain, s.kind, s.devid)
            return
        hit = device_of_path(path, family)
        if hit is None or hit[4] != "rasd":
            return
        host, domain, kind, devid, _ = hit
        doc = get_domain_doc(host, domain)
        if doc is not None:
            s = doc.setting(devid)
            if s is not None and s.kind is kind:
                yield vssd_path(host, domain)

    def sources(self, env, family):
        for host in self.hosts(f"{family}_X"):
            for ref in list_domains(host):
                yield vssd_path(host, ref.name)


def get_providers(env) -> dict[str, Any]:
    return providers_for(VSSDComponentProvider(), "VirtualSystemSettingDataComponent")
