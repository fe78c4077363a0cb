"""{P}_ComputerSystem: the virtual systems (libvirt domains) of the family's hosts.

Keys (COMPAT.md): CreationClassName, Name = domain name (host-qualified with
several hosts).  Everything here comes from ``listAllDomains`` and one bulk
state call per request: no domain XML is fetched, so enumerating thousands of
guests stays cheap.

Properties: ElementName (domain name), UUID, Caption, EnabledState,
RequestedState, HealthState, OperationalStatus, OperatingStatus,
OtherIdentifyingInfo / IdentifyingDescriptions (type, model, UUID as
libvirt-cim gives them).  RequestStateChange is implemented by the virtual
system management work (issue 4) in this module.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

from kvm_providers.virt import (DomainNotFound, domain_state, has_managed_save, keys,
                                list_domains, lookup_domain, states)
from kvm_providers.virt.domain import DomainRef

from .common import VirtProvider, providers_for, put, wanted_in

__all__ = ["ComputerSystemProvider", "get_providers"]

_STATE_PROPS = ("EnabledState", "HealthState", "OperationalStatus", "OperatingStatus")
_PROPS = ("ElementName", "UUID", "Caption", "RequestedState", "OtherIdentifyingInfo",
          "IdentifyingDescriptions") + _STATE_PROPS
_IDENT_DESC = ["Type", "Model", "UUID"]


class ComputerSystemProvider(VirtProvider):
    """{P}_ComputerSystem for every family."""

    def _fill(self, inst: Any, model: Any, ref: DomainRef) -> None:
        plan = wanted_in(model, _PROPS)
        if not plan:
            return
        need_state = any(name in _STATE_PROPS for name, _ in plan)
        if need_state:
            state = domain_state(ref)[0]
            saved = state == states.SHUTOFF and has_managed_save(ref)
        for name, pspec in plan:
            if name == "ElementName":
                value: Any = ref.name
            elif name == "UUID":
                value = ref.uuid
            elif name == "Caption":
                value = "Virtual System"
            elif name == "EnabledState":
                value = states.enabled_state(state, saved)
            elif name == "HealthState":
                value = states.health_state(state)
            elif name == "OperationalStatus":
                value = states.operational_status(state)
            elif name == "OperatingStatus":
                value = states.operating_status(state)
            elif name == "RequestedState":
                value = states.requested_state(ref.host.label, ref.uuid)
            elif name == "OtherIdentifyingInfo":
                value = ["Virtual System", f"{ref.host.family} Virtual System", ref.uuid]
            else:  # IdentifyingDescriptions
                value = _IDENT_DESC
            put(inst, pspec, value)

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        cls = model.classname
        for host in self.hosts(cls):
            for ref in list_domains(host):
                inst = model.copy()
                inst["CreationClassName"] = cls
                inst["Name"] = keys.cs_name(host, ref.name)
                if not keys_only:
                    try:
                        self._fill(inst, model, ref)
                    except DomainNotFound:
                        continue  # undefined while we were listing
                yield inst

    def get_instance(self, env, model) -> Optional[Any]:
        if not self.same_class(model["CreationClassName"], model.classname):
            return None
        hit = keys.parse_cs_name(self.family(model.classname), model["Name"])
        if hit is None:
            return None
        host, name = hit
        ref = lookup_domain(host, name)
        if ref is None:
            return None
        try:
            self._fill(model, model, ref)
        except DomainNotFound:
            return None
        return model


def get_providers(env) -> dict[str, Any]:
    return providers_for(ComputerSystemProvider(), "ComputerSystem")
