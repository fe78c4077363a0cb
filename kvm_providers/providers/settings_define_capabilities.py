"""{P}_SettingsDefineCapabilities (DSP1043): an AllocationCapabilities (GroupComponent)
and its RASD templates (PartComponent), with the ValueRole, ValueRange and
PropertyPolicy that say what each template means: the Default point, the
Minimums, Maximums and Increments of the quantities, and one Supported point
per supported value of an enumerated property (kvm_providers.model.allocation).

The templates are computed from the host's limits and the pool, never from
the pool's volumes: their number does not grow with them.  Seen from a RASD
that is an allocation of a virtual system (not a template), there is nothing
(as libvirt-cim).

DSP1081: each host's VirtualSystemMigrationCapabilities (GroupComponent) and its
VirtualSystemMigrationSettingData (PartComponent), the default of a migration
(ValueRole 0 Default, ValueRange 0 Point).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Optional

from pywbem import CIMInstanceName, Uint16

from kvm_providers.model.allocation import (Capabilities, Template, host_capabilities,
                                           lookup_capabilities, lookup_template, templates)
from kvm_providers.model.kinds import KINDS
from kvm_providers.schema.valuemaps import CIM_SettingsDefineCapabilities as _SDC

from .common import Role, VirtProvider, providers_for
from .common.migration_paths import msc_id, msc_path, msd_id, msd_path
from .common.pool_paths import ac_path, template_path

__all__ = ["SettingsDefineCapabilitiesProvider", "get_providers", "TEMPLATE_CLASSES"]

#: The templates of every kind allocated from a pool (the kinds registry), then of the pools.
TEMPLATE_CLASSES = (*(k.rasd_class for k in KINDS if k.pool is not None),
                    "DiskPoolResourceAllocationSettingData",
                    "NetPoolResourceAllocationSettingData",
                    "StorageVolumeResourceAllocationSettingData")

_GROUP = Role("GroupComponent", ["AllocationCapabilities"])
_PART = Role("PartComponent", TEMPLATE_CLASSES)
# DSP1081 (issue 14): migration capabilities and their default setting data.
_MIG_GROUP = Role("GroupComponent", ["VirtualSystemMigrationCapabilities"])
_MIG_PART = Role("PartComponent", ["VirtualSystemMigrationSettingData"])


class SettingsDefineCapabilitiesProvider(VirtProvider):
    """{P}_SettingsDefineCapabilities for every family."""

    def _instance(self, model: Any, group: CIMInstanceName, part: CIMInstanceName,
                  tmpl: Template, keys_only: bool) -> Any:
        inst = model.copy()
        inst["GroupComponent"] = group
        inst["PartComponent"] = part
        if not keys_only:
            inst["ValueRole"] = tmpl.value_role
            inst["ValueRange"] = tmpl.value_range
            inst["PropertyPolicy"] = tmpl.property_policy
        return inst

    @staticmethod
    def _migration(model: Any, host: Any, keys_only: bool,
                   group: Optional[CIMInstanceName] = None,
                   part: Optional[CIMInstanceName] = None) -> Any:
        # The end the request starts from is its own path as given (the layer matches
        # the result's ends against it, extra keys a client sends included).
        inst = model.copy()
        inst["GroupComponent"] = group if group is not None else msc_path(host)
        inst["PartComponent"] = part if part is not None else msd_path(host)
        if not keys_only:
            inst["ValueRole"] = Uint16(_SDC.ValueRole.Default)
            inst["ValueRange"] = Uint16(_SDC.ValueRange.Point)
            inst["PropertyPolicy"] = Uint16(_SDC.PropertyPolicy.Independent)
        return inst

    def _migration_refs(self, object_name: CIMInstanceName, model: Any, role_l: Any,
                        rrole_l: Any, family: str, keys_only: bool) -> Iterator[Any]:
        iid = object_name.keybindings.get("InstanceID")
        for host in self.hosts(model.classname):
            if _MIG_GROUP.matches(object_name.classname, family) and iid == msc_id(host) \
                    and role_l in (None, "groupcomponent") and rrole_l in (None, "partcomponent"):
                yield self._migration(model, host, keys_only, group=object_name)
            if _MIG_PART.matches(object_name.classname, family) and iid == msd_id(host) \
                    and role_l in (None, "partcomponent") and rrole_l in (None, "groupcomponent"):
                yield self._migration(model, host, keys_only, part=object_name)

    def _pairs(self, ac: Capabilities) -> Iterable[tuple[CIMInstanceName, Template]]:
        for t in templates(ac):
            yield template_path(ac.host, t), t

    def references(self, env, object_name, model, result_class_name, role, result_role,
                   keys_only) -> Iterator[Any]:
        family = self.family(model.classname)
        role_l = role.lower() if role else None
        rrole_l = result_role.lower() if result_role else None
        iid = object_name.keybindings.get("InstanceID")
        if _GROUP.matches(object_name.classname, family) and role_l in (None, "groupcomponent") \
                and rrole_l in (None, "partcomponent"):
            ac = lookup_capabilities(family, iid)
            if ac is not None:
                for part, t in self._pairs(ac):
                    yield self._instance(model, object_name, part, t, keys_only)
        if _PART.matches(object_name.classname, family) and role_l in (None, "partcomponent") \
                and rrole_l in (None, "groupcomponent"):
            tmpl = lookup_template(family, iid)
            if tmpl is not None and \
                    tmpl.classname(family).lower() == object_name.classname.lower():
                ac = lookup_capabilities(family, tmpl.instance_id.rpartition("#")[0])
                if ac is not None:
                    yield self._instance(model, ac_path(ac), object_name, tmpl, keys_only)
        yield from self._migration_refs(object_name, model, role_l, rrole_l, family, keys_only)

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        for host in self.hosts(model.classname):
            for caps in host_capabilities(host):
                group = ac_path(caps)
                for part, tmpl in self._pairs(caps):
                    yield self._instance(model, group, part, tmpl, keys_only)
            yield self._migration(model, host, keys_only)

    def get_instance(self, env, model) -> Optional[Any]:
        family = self.family(model.classname)
        group, part = model["GroupComponent"], model["PartComponent"]
        if not isinstance(group, CIMInstanceName) or not isinstance(part, CIMInstanceName):
            return None
        if _MIG_GROUP.matches(group.classname, family):
            for host in self.hosts(model.classname):
                if group.keybindings.get("InstanceID") == msc_id(host) and \
                        _MIG_PART.matches(part.classname, family) and \
                        part.keybindings.get("InstanceID") == msd_id(host):
                    return self._migration(model, host, False)
            return None
        if not _GROUP.matches(group.classname, family):
            return None
        t = lookup_template(family, part.keybindings.get("InstanceID"))
        if t is None or t.classname(family).lower() != part.classname.lower() or \
                t.instance_id.rpartition("#")[0] != group.keybindings.get("InstanceID"):
            return None
        return self._instance(model, group, part, t, False)


def get_providers(env) -> dict[str, Any]:
    return providers_for(SettingsDefineCapabilitiesProvider(), "SettingsDefineCapabilities")
