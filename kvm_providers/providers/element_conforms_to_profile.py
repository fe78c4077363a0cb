"""{P}_ElementConformsToProfile: a registered profile (ConformantStandard, in
root/interop) and its central instances (ManagedElement, in root/virt):
the host systems for System Virtualization (DSP1042), the virtual systems
for Virtual System (DSP1057), and the central instances of the later
profiles (pools, allocation capabilities) through the CIMOM handle once
their providers exist.  Registered in both namespaces, so that it is
traversed from either end (DSP2013 use cases 5.1.1 and 5.1.2, and pywbem's
WBEMServer.get_central_instances)."""

from __future__ import annotations

from typing import Any, Iterable

import pywbem

from kvm_providers.virt import list_domains, manager
from kvm_providers.virt.profiles import PROFILES, profile_from_instance_id, profile_instance_id

from .common import AssociationProvider, Role, providers_for
from .common.base import INTEROP_NS, VIRT_NS
from .common.paths import (cs_of_path, cs_path, family_profiles, host_of_path, host_path,
                           profile_path, several_families)

__all__ = ["ElementConformsToProfileProvider", "get_providers"]

_CENTRAL = sorted({p.central_class for p in PROFILES if p.central_class})
_LOCAL = {"hostsystem", "computersystem"}


class ElementConformsToProfileProvider(AssociationProvider):
    roles = (Role("ConformantStandard", ["RegisteredProfile"], INTEROP_NS),
             Role("ManagedElement", _CENTRAL, VIRT_NS))

    def _central_instances(self, env, family: str, base: str) -> Iterable[Any]:
        hosts = manager().for_family(family)
        if base.lower() == "hostsystem":
            for host in hosts:
                yield host_path(host)
        elif base.lower() == "computersystem":
            for host in hosts:
                for ref in list_domains(host):
                    yield cs_path(host, ref.name)
        else:
            try:
                paths = list(env.get_cimom_handle().EnumerateInstanceNames(
                    VIRT_NS, f"{family}_{base}"))
            except pywbem.CIMError:
                return  # no provider for the class (yet)
            for p in paths:
                if p.namespace is None:
                    p = p.copy()
                    p.namespace = VIRT_NS
                yield p

    def _exists(self, env, path, family: str) -> bool:
        base = path.classname.split("_", 1)[1].lower()
        if base == "hostsystem":
            return host_of_path(path, family) is not None
        if base == "computersystem":
            return cs_of_path(path, family) is not None
        try:
            env.get_cimom_handle().GetInstance(path, [])
            return True
        except pywbem.CIMError:
            return False

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if not manager().for_family(family):
            return
        many = several_families()
        if side == 0:
            profile = profile_from_instance_id(path.keybindings.get("InstanceID"), family,
                                               many)
            if profile is not None and profile.central_class:
                yield from self._central_instances(env, family, profile.central_class)
            return
        base = path.classname.split("_", 1)[1].lower()
        matching = [p for p in PROFILES
                    if p.central_class and p.central_class.lower() == base]
        if matching and self._exists(env, path, family):
            for p in matching:
                yield profile_path(family, profile_instance_id(p, family, many))

    def sources(self, env, family):
        for _, iid in family_profiles(family):
            yield profile_path(family, iid)


def get_providers(env) -> dict[str, Any]:
    return providers_for(ElementConformsToProfileProvider(), "ElementConformsToProfile")
