"""{P}_HostSystem: the hypervisor hosts of the family (DSP1042's central class).

Keys: CreationClassName, Name = the host's name as libvirt reports it
(``virConnectGetHostname``: the fully qualified name where it resolves),
qualified by the host label when several hosts are configured, so that two
``test://`` hosts on one machine stay distinct.
"""

from __future__ import annotations

from typing import Any, Optional

from kvm_providers.virt import host_facts, keys
from kvm_providers.virt.connection import Host

from .common import ENABLED_AND_OK, PerHostProvider, fill, providers_for
from .common.paths import host_system_name

__all__ = ["HostSystemProvider", "get_providers"]

_IDENT_DESC = ["kvm_providers host label", "libvirt URI"]


class HostSystemProvider(PerHostProvider):
    """{P}_HostSystem for every family: one instance per configured host of the family."""

    def _fill(self, inst: Any, model: Any, host: Host) -> None:
        fill(inst, model, {
            "ElementName": lambda: host_facts(host)["hostname"],
            "Caption": "Host System",
            **ENABLED_AND_OK,
            "OtherIdentifyingInfo": lambda: [host.label, host.uri],
            "IdentifyingDescriptions": _IDENT_DESC,
        })

    def host_keys(self, host: Host, classname: str) -> dict[str, Any]:
        return {"CreationClassName": classname, "Name": host_system_name(host)}

    def get_instance(self, env, model) -> Optional[Any]:
        if not self.same_class(model["CreationClassName"], model.classname):
            return None
        hit = keys.parse_host_name(self.family(model.classname), model["Name"])
        if hit is None:
            return None
        host, hostname = hit
        if host_facts(host)["hostname"] != hostname:
            return None
        self._fill(model, model, host)
        return model


def get_providers(env) -> dict[str, Any]:
    return providers_for(HostSystemProvider(), "HostSystem")
