"""{P}_HostSystem: the hypervisor hosts of the family (DSP1042's central class).

Keys: CreationClassName, Name = the host's name as libvirt reports it
(``virConnectGetHostname``: the fully qualified name where it resolves),
qualified by the host label when several hosts are configured, so that two
``test://`` hosts on one machine stay distinct.  Where libvirt cannot tell
the name, the name is not made up (:func:`kvm_providers.virt.hostfacts.system_hostname`):
this machine's node name for a local host, the host name of the URI for a
remote one; ``Description`` then says that the name could not be read.

HealthState, OperationalStatus, CommunicationStatus and StatusDescriptions say
whether the host answers now (:mod:`.common.health`); a host that is away is
still listed while its name is known from its last connection.
"""

from __future__ import annotations

from typing import Any, Optional

from kvm_providers.virt import host_facts
from kvm_providers.virt.connection import Host
from kvm_providers.virt.hostfacts import system_hostname

from .common import ENABLED_AND_OK, PerHostProvider, fill, providers_for
from .common.paths import host_of_system_name, host_system_name

__all__ = ["HostSystemProvider", "get_providers"]

_IDENT_DESC = ["kvm_providers host label", "libvirt URI"]


class HostSystemProvider(PerHostProvider):
    """{P}_HostSystem for every family: one instance per configured host of the family."""

    def _fill(self, inst: Any, model: Any, host: Host) -> None:
        def description() -> Optional[str]:
            facts = host_facts(host)
            if facts["hostname"]:
                return None
            return (f"libvirt could not tell the host name ({facts['hostname_error']}); "
                    f"named after {'this machine' if host.is_local else 'its URI'}")

        fill(inst, model, {
            "ElementName": lambda: system_hostname(host),
            "Caption": "Host System",
            **ENABLED_AND_OK,
            "Description": description,
            "OtherIdentifyingInfo": lambda: [host.label, host.uri],
            "IdentifyingDescriptions": _IDENT_DESC,
        })

    def host_keys(self, host: Host, classname: str) -> dict[str, Any]:
        return {"CreationClassName": classname, "Name": host_system_name(host)}

    def get_instance(self, env, model) -> Optional[Any]:
        if not self.same_class(model["CreationClassName"], model.classname):
            return None
        host = host_of_system_name(self.family(model.classname), model["Name"])
        if host is None:
            return None
        self._fill(model, model, host)
        return model


def get_providers(env) -> dict[str, Any]:
    return providers_for(HostSystemProvider(), "HostSystem")
