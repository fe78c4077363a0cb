"""{P}_ReferencedProfile (root/interop): a profile and the profile that references
it, as DSP1033 defines it: Antecedent = the referenced profile (e.g. Virtual
System, Resource Allocation), Dependent = the referencing (scoping) profile
(System Virtualization)."""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.virt import manager
from kvm_providers.virt.profiles import PROFILES, profile_from_instance_id, profile_instance_id

from .common import AssociationProvider, Role, providers_for
from .common.base import INTEROP_NS
from .common.paths import family_profiles, profile_path, several_families

__all__ = ["ReferencedProfileProvider", "get_providers"]


class ReferencedProfileProvider(AssociationProvider):
    roles = (Role("Antecedent", ["RegisteredProfile"], INTEROP_NS),
             Role("Dependent", ["RegisteredProfile"], INTEROP_NS))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if not manager().for_family(family):
            return
        many = several_families()
        profile = profile_from_instance_id(path.keybindings.get("InstanceID"), family, many)
        if profile is None:
            return
        if side == 0:
            scoping = profile_from_instance_id(profile.scoping, family, False) \
                if profile.scoping else None
            if scoping is not None:
                yield profile_path(family, profile_instance_id(scoping, family, many))
            return

        for p in PROFILES:
            if p.scoping == profile.instance_id:
                yield profile_path(family, profile_instance_id(p, family, many))

    def sources(self, env, family):
        for _, iid in family_profiles(family):
            yield profile_path(family, iid)


def get_providers(env) -> dict[str, Any]:
    return providers_for(ReferencedProfileProvider(), "ReferencedProfile")
