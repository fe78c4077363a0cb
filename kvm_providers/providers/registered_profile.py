"""{P}_RegisteredProfile (root/interop): the DMTF profiles the family's
implementation conforms to (DSP1033), one instance per profile of
kvm_providers.virt.profiles, for every family that has a configured host.

Profile registration is static: it needs no libvirt call, so it answers
even while a host is away."""

from __future__ import annotations

from typing import Any, Iterator, Optional

from kvm_providers.virt import manager
from kvm_providers.virt.profiles import profile_from_instance_id

from .common import VirtProvider, fill, providers_for
from .common.paths import family_profiles, several_families

__all__ = ["RegisteredProfileProvider", "get_providers", "family_profiles"]


class RegisteredProfileProvider(VirtProvider):
    """{P}_RegisteredProfile for every family."""

    def _fill(self, inst, model, profile):
        fill(inst, model, {
            "RegisteredOrganization": profile.organization,
            "OtherRegisteredOrganization": profile.other_organization,
            "RegisteredName": profile.name,
            "RegisteredVersion": profile.version,
            "AdvertiseTypes": list(profile.advertise_types),
            "ElementName": profile.name,
        })

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        for profile, iid in family_profiles(self.family(model.classname)):
            inst = model.copy()
            inst["InstanceID"] = iid
            if not keys_only:
                self._fill(inst, model, profile)
            yield inst

    def get_instance(self, env, model) -> Optional[Any]:
        family = self.family(model.classname)
        if not manager().for_family(family):
            return None
        profile = profile_from_instance_id(model["InstanceID"], family, several_families())
        if profile is None:
            return None
        self._fill(model, model, profile)
        return model


def get_providers(env) -> dict[str, Any]:
    return providers_for(RegisteredProfileProvider(), "RegisteredProfile")
