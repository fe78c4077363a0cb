"""{P}_VirtualSystemSettingDataComponent: a virtual system's settings (VSSD,
GroupComponent) and its resource allocation settings (RASDs, PartComponent)."""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.virt import list_domains
from kvm_providers.model.kinds import KINDS

from .common import AssociationProvider, Role, providers_for
from .common.paths import element_of_path, rasd_path, vssd_of_path, vssd_path
from .common.snapshot_paths import parse_snapshot_rasd_id, snapshot_of_rasd, snapshot_rasd_paths

__all__ = ["VSSDComponentProvider", "get_providers"]


class VSSDComponentProvider(AssociationProvider):
    roles = (Role("GroupComponent", ["VirtualSystemSettingData",
                                     "VirtualSystemSnapshotSettingData"]),
             Role("PartComponent", [k.rasd_class for k in KINDS]))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        # A snapshot's settings and its RASDs (issue 13, common/snapshot_paths.py).
        if side == 0 and path.classname.lower().endswith("_virtualsystemsnapshotsettingdata"):
            yield from snapshot_rasd_paths(path, family)
            return
        if side == 1 and parse_snapshot_rasd_id(family, path.keybindings.get("InstanceID")):
            owner = snapshot_of_rasd(path, family)
            if owner is not None:
                yield owner
            return
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
