"""{P}_KVMRedirectionSAP (DSP1076): one access point per remote console (a graphics
device of type vnc or spice) of each virtual system.

Keys are libvirt-cim's: SystemCreationClassName {P}_ComputerSystem,
SystemName the virtual system, Name "<port>:<session>" (for a console other
than the first VNC one, prefixed by its device id: "spice:5901:0"); port is
-1 while none is assigned, session -1 when nothing listens, 0 when the
console listens without a client, else the client's TCP port.
KVMProtocol 4 (VNC-RFB) for VNC, 1 (Other) with OtherKVMProtocol "SPICE"
for SPICE; EnabledState 3 (Disabled: not listening), 6 (Enabled but
Offline: listening, no session), 2 (Enabled: a client is connected).
The state is read by kvm_providers.virt.redirection.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

from kvm_providers.schema.valuemaps import CIM_EnabledLogicalElement, CIM_KVMRedirectionSAP
from kvm_providers.virt import DomainNotFound, iter_domain_xml, list_domains
from kvm_providers.virt.redirection import ACTIVE, AVAILABLE, AccessPoint, access_points

from .common import VirtProvider, fill, providers_for
from .common.redirection_paths import find_sap, not_found, sap_keys

__all__ = ["KVMRedirectionSAPProvider", "get_providers", "ENABLED_STATE", "KVM_PROTOCOL"]

#: EnabledState of an access point per session state (DSP1076; libvirt-cim's values).
ENABLED_STATE = {ACTIVE: 2, AVAILABLE: 6}
DISABLED = 3
#: KVMProtocol and OtherKVMProtocol per graphics type.
KVM_PROTOCOL = {"vnc": (CIM_KVMRedirectionSAP.KVMProtocol.VNC_RFB, None),
                "spice": (CIM_KVMRedirectionSAP.KVMProtocol.Other, "SPICE")}


class KVMRedirectionSAPProvider(VirtProvider):
    """{P}_KVMRedirectionSAP for every family."""

    def _fill(self, inst: Any, model: Any, ap: AccessPoint) -> None:
        proto, other = KVM_PROTOCOL[ap.protocol]
        # Without a listen address (and socket) QEMU listens where libvirt's default
        # says (127.0.0.1), as the graphics RASD's Address reports too.
        listen = ap.listen or (None if ap.socket else "127.0.0.1")
        fill(inst, model, {
            "ElementName": ap.name,
            "KVMProtocol": proto,
            "OtherKVMProtocol": other,
            "EnabledState": ENABLED_STATE.get(ap.state, DISABLED),
            # no RequestStateChange
            "RequestedState": CIM_EnabledLogicalElement.RequestedState.Not_Applicable,
            "EnabledDefault": CIM_EnabledLogicalElement.EnabledDefault.Enabled,
            "ListenAddress": listen,
            "ListenPort": ap.port if ap.port > 0 else None,
            "IsIPv6Only": ap.ipv6_only if ap.listen else (False if listen else None),
        })

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        for host in self.hosts(model.classname):
            for doc in iter_domain_xml(list_domains(host)):
                try:
                    aps = access_points(doc)
                except DomainNotFound:
                    continue            # undefined while we looked
                for ap in aps:
                    inst = model.copy()
                    for k, v in sap_keys(host, ap, model.classname).items():
                        inst[k] = v
                    if not keys_only:
                        self._fill(inst, model, ap)
                    yield inst

    def get_instance(self, env, model) -> Optional[Any]:
        try:
            found, key = find_sap(model.path, self.family(model.classname))
        except DomainNotFound:
            found, key = None, "SystemName"
        if found is None:
            raise not_found(model.path, key)
        self._fill(model, model, found[1])
        return model


def get_providers(env) -> dict[str, Any]:
    return providers_for(KVMRedirectionSAPProvider(), "KVMRedirectionSAP")
