"""{P}_ServiceAffectsElement: the VirtualSystemManagementService
(AffectingElement) and the virtual systems of its host it manages
(AffectedElement), the ResourcePoolConfigurationService and the storage pools
and networks it creates and deletes (issue 5), and the ConsoleRedirectionService
and what it redirects (DSP1076 keyboard, video and mouse): the virtual systems of
its host and their display controllers and pointing devices, as libvirt-cim
relates them; ElementEffects 5 (Manages)."""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.schema.valuemaps import CIM_ServiceAffectsElement
from kvm_providers.virt import list_domains
from kvm_providers.model.pools import DISK, NET, list_pools

from .common import AssociationProvider, Role, get_domain_doc, providers_for
from .common.paths import cs_of_path, cs_path, device_path, element_of_path, vsms_path
from .common.pool_paths import pool_of_path, pool_path, rpcs_path
from .common.redirection_paths import crs_path

# The logical devices a console redirection (keyboard, video, mouse) acts on.
_REDIRECTED = ("PointingDevice", "DisplayController")

__all__ = ["ServiceAffectsElementProvider", "get_providers"]


class ServiceAffectsElementProvider(AssociationProvider):
    roles = (Role("AffectingElement", ["VirtualSystemManagementService",
                                       "ResourcePoolConfigurationService",
                                       "ConsoleRedirectionService"]),
             Role("AffectedElement", ["ComputerSystem", "DiskPool", "NetworkPool",
                                      *_REDIRECTED]))
    extra = {"ElementEffects": [CIM_ServiceAffectsElement.ElementEffects.Manages]}

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        base = path.classname.split("_", 1)[1].lower()
        if side == 0:
            for host in self.hosts(path.classname):
                if self.paths_equal(vsms_path(host), path):
                    for dom in list_domains(host):
                        yield cs_path(host, dom.name)
                elif self.paths_equal(rpcs_path(host), path):
                    for each in list_pools(host, (DISK.name, NET.name)):
                        yield pool_path(each)
                elif self.paths_equal(crs_path(host), path):
                    yield from self._redirected(host)
            return
        if base in ("diskpool", "networkpool"):
            pool = pool_of_path(path, family)
            if pool is not None:
                yield rpcs_path(pool.host)
            return
        if base in ("displaycontroller", "pointingdevice"):
            found = element_of_path(path, family, "device")
            if found is not None:
                yield crs_path(found[0])
            return
        ref = cs_of_path(path, family)
        if ref is not None:
            yield vsms_path(ref.host)
            yield crs_path(ref.host)

    @staticmethod
    def _redirected(host) -> Iterable[Any]:
        """Each virtual system, followed by its pointing devices and then its display
        controllers (libvirt-cim's order)."""
        for dom in list_domains(host):
            yield cs_path(host, dom.name)
            doc = get_domain_doc(host, dom.name)
            if doc is None:
                continue
            devices = list(doc.devices())
            for cls in _REDIRECTED:
                for dev in devices:
                    if dev.kind.device_class == cls:
                        yield device_path(host, dom.name, dev.kind, dev.devid)

    def sources(self, env, family):
        for host in self.hosts(f"{family}_X"):
            yield vsms_path(host)
            yield rpcs_path(host)
            yield crs_path(host)


def get_providers(env) -> dict[str, Any]:
    return providers_for(ServiceAffectsElementProvider(), "ServiceAffectsElement")
