"""{P}_VirtualSystemManagementCapabilities (one per host) and
{P}_EnabledLogicalElementCapabilities (one per virtual system).

The lists they publish (methods, requested states, system types) come from
:mod:`kvm_providers.providers.common.capabilities`, the one place that says what is
implemented.

* VSMC InstanceID: "ManagementCapabilities" (host-qualified with several hosts).
* ELEC InstanceID: the ComputerSystem Name of its virtual system (libvirt-cim).
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

from kvm_providers.virt import DomainNotFound, domain_state, keys, list_domains, lookup_domain

from .common import PerHostProvider, VirtProvider, fill, providers_for, states
from .common import capabilities as caps

__all__ = ["ManagementCapabilitiesProvider", "ElementCapabilitiesProvider", "get_providers"]


class ManagementCapabilitiesProvider(PerHostProvider):
    """{P}_VirtualSystemManagementCapabilities."""

    def host_keys(self, host, classname):
        return {"InstanceID": keys.vsmc_id(host)}

    def _fill(self, inst, model, host):
        family = self.family(model.classname)
        fill(inst, model, {
            "ElementName": "Management Capabilities",
            "VirtualSystemTypesSupported": lambda: caps.virtual_system_types(family),
            "SynchronousMethodsSupported": caps.synchronous_methods_supported,
            "AsynchronousMethodsSupported": caps.asynchronous_methods_supported,
            "ElementNameEditSupported": caps.ELEMENT_NAME_EDIT_SUPPORTED,
        })


class ElementCapabilitiesProvider(VirtProvider):
    """{P}_EnabledLogicalElementCapabilities: what can be asked of one virtual system."""

    def _fill(self, inst, model, ref):
        def requested():
            try:
                st = domain_state(ref)[0]
            except DomainNotFound:
                return None
            return caps.requested_states_supported(states.enabled_state(st), ref=ref)
        fill(inst, model, {
            "ElementName": ref.name,
            "RequestedStatesSupported": requested,
            "ElementNameEditSupported": caps.ELEMENT_NAME_EDIT_SUPPORTED,
        })

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        for host in self.hosts(model.classname):
            for ref in list_domains(host):
                inst = model.copy()
                inst["InstanceID"] = keys.cs_name(host, ref.name)
                if not keys_only:
                    self._fill(inst, model, ref)
                yield inst

    def get_instance(self, env, model) -> Optional[Any]:
        hit = keys.parse_cs_name(self.family(model.classname), model["InstanceID"])
        if hit is None:
            return None
        ref = lookup_domain(*hit)
        if ref is None:
            return None
        self._fill(model, model, ref)
        return model


def get_providers(env) -> dict[str, Any]:
    out = providers_for(ManagementCapabilitiesProvider(), "VirtualSystemManagementCapabilities")
    out.update(providers_for(ElementCapabilitiesProvider(), "EnabledLogicalElementCapabilities"))
    return out
