"""The associations of network filters.

{P}_EntriesInFilterList
    GroupComponent a {P}_FilterList, PartComponent each of its rules.
{P}_NestedFilterList
    Antecedent a {P}_FilterList, Dependent a filter list it references
    (``<filterref>`` inside the filter).  CreateInstance adds the reference,
    DeleteInstance removes it (the filter's other entries untouched).
{P}_AppliedFilterList
    Antecedent a {P}_NetworkPort, Dependent the filter list its interface
    applies (``<interface><filterref>``).  CreateInstance applies the filter
    to the interface in the domain's persistent definition and, running, to
    the live interface; DeleteInstance removes it.
{P}_HostedFilterList
    Antecedent the {P}_HostSystem, Dependent each of its filter lists.
"""

from __future__ import annotations

import abc

from typing import Any, Callable, Iterable

import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName

from kvm_providers.schema.valuemaps import CIM_EntriesInFilterList
from kvm_providers.virt.nwfilter import (FilterError, add_ref, clear_nic_filter, filter_names,
                                         list_filters, remove_ref, set_nic_filter)
from kvm_providers.virt import lookup_domain

from .common import AssociationProvider, Role, providers_for
from .common.filter_paths import (RULE_CLASSES, cim_error, filter_list_path, filter_of_path,
                                  rule_of_path, rule_path)
from .common.paths import device_path, element_of_path, host_of_path, host_path

__all__ = ["EntriesInFilterListProvider", "NestedFilterListProvider",
           "AppliedFilterListProvider", "HostedFilterListProvider", "get_providers"]


def _ref_given(instance: CIMInstance, name: str) -> CIMInstanceName:
    """A reference property of a client's association instance (INVALID_PARAMETER if missing)."""
    prop = instance.properties.get(name)
    value = None if prop is None else prop.value
    if not isinstance(value, CIMInstanceName):
        raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                       f"{instance.classname}.{name} must be a reference to an instance")
    return value


def _key_ref(path: CIMInstanceName, name: str) -> CIMInstanceName:
    value = path.keybindings.get(name)
    if not isinstance(value, CIMInstanceName):
        raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                       f"{path.classname} key {name} must be a reference")
    return value


class _FilterAssociation(AssociationProvider):
    """What the filter associations share: every filter list as a source."""

    def filter_lists(self, family: str) -> Iterable[CIMInstanceName]:
        for host in self.hosts(f"{family}_FilterList"):
            for name in filter_names(host):
                yield filter_list_path(host, name)

    def _filter(self, path: CIMInstanceName, family: str, role: str):
        hit = filter_of_path(path, family)
        if hit is None:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND, f"{role}: no such filter list: {path}")
        return hit

    def _result(self, instance: CIMInstance, refs: dict[str, CIMInstanceName]) -> CIMInstance:
        ns = instance.path.namespace if instance.path is not None else None
        return CIMInstance(instance.classname,
                           path=CIMInstanceName(instance.classname, refs, namespace=ns))


class _EditableFilterAssociation(_FilterAssociation):
    """An association clients create and delete (as libvirt-cim's): the instance's two
    ends are checked by `_ends` and handed to the libvirt layer's `_add` / `_remove`."""

    _add: Callable[..., Any]
    _remove: Callable[..., Any]

    @abc.abstractmethod
    def _ends(self, a: CIMInstanceName, b: CIMInstanceName, family: str) -> tuple:
        """The checked ends of an instance, as `_add` / `_remove` take them."""

    def set_instance(self, env, instance, modify_existing) -> CIMInstance:
        cls = instance.classname
        if modify_existing:
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                           f"ModifyInstance is not supported for class {cls}")
        a, b = _ref_given(instance, "Antecedent"), _ref_given(instance, "Dependent")
        ends = self._ends(a, b, self.family(cls))
        try:
            self._add(*ends)
        except FilterError as exc:
            raise cim_error(exc) from None
        return self._result(instance, {"Antecedent": a, "Dependent": b})

    def delete_instance(self, env, instance_name) -> None:
        fam = self.family(instance_name.classname)
        ends = self._ends(_key_ref(instance_name, "Antecedent"),
                          _key_ref(instance_name, "Dependent"), fam)
        try:
            self._remove(*ends)
        except FilterError as exc:
            raise cim_error(exc) from None


class EntriesInFilterListProvider(_FilterAssociation):
    roles = (Role("GroupComponent", ["FilterList"]), Role("PartComponent", RULE_CLASSES))
    # the only value CIM_EntriesInFilterList allows
    extra = {"EntrySequence": CIM_EntriesInFilterList.EntrySequence.Value_0}

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            hit = filter_of_path(path, family)
            if hit is not None:
                host, flt = hit
                for rule in flt.rules():
                    yield rule_path(host, rule)
            return
        hit2 = rule_of_path(path, family)
        if hit2 is not None:
            yield filter_list_path(hit2[0], hit2[1].filter.name)

    def sources(self, env, family):
        return self.filter_lists(family)


class NestedFilterListProvider(_EditableFilterAssociation):
    roles = (Role("Antecedent", ["FilterList"]), Role("Dependent", ["FilterList"]))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        hit = filter_of_path(path, family)
        if hit is None:
            return
        host, flt = hit
        if side == 0:
            existing = set(filter_names(host))
            for name in flt.refs():
                if name in existing:
                    yield filter_list_path(host, name)
            return
        for other in list_filters(host):
            if flt.name in other.refs():
                yield filter_list_path(host, other.name)

    def sources(self, env, family):
        return self.filter_lists(family)

    def _ends(self, a: CIMInstanceName, b: CIMInstanceName, family: str):
        (host, parent), (host2, child) = (self._filter(a, family, "Antecedent"),
                                          self._filter(b, family, "Dependent"))
        if host is not host2:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           "Antecedent and Dependent are filter lists of different hosts")
        return host, parent.name, child.name

    _add = staticmethod(add_ref)
    _remove = staticmethod(remove_ref)


class AppliedFilterListProvider(_EditableFilterAssociation):
    roles = (Role("Antecedent", ["NetworkPort"]), Role("Dependent", ["FilterList"]))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            hit = element_of_path(path, family, "device")
            if hit is None or hit[3].kind.name != "net":
                return
            host = hit[0]
            el = hit[3].setting.element.find("filterref")
            name = el.get("filter") if el is not None else None
            if name and name in filter_names(host):
                yield filter_list_path(host, name)
            return
        fhit = filter_of_path(path, family)
        if fhit is None:
            return
        host, flt = fhit
        for doc in self.domain_docs(family):
            if doc.host is not host:
                continue
            for dev in doc.devices_of("net"):
                el = dev.setting.element.find("filterref")
                if el is not None and el.get("filter") == flt.name:
                    yield device_path(host, doc.name, dev.kind, dev.devid)

    def sources(self, env, family):
        for doc in self.domain_docs(family):
            for dev in doc.devices_of("net"):
                if dev.setting.element.find("filterref") is not None:
                    yield device_path(doc.host, doc.name, dev.kind, dev.devid)

    def _ends(self, a: CIMInstanceName, b: CIMInstanceName, family: str):
        hit = element_of_path(a, family, "device")
        if hit is None or hit[3].kind.name != "net":
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND, f"Antecedent: no such network port: {a}")
        host, domain, _doc, dev = hit
        fhost, flt = self._filter(b, family, "Dependent")
        if fhost is not host:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           "the network port and the filter list are of different hosts")
        ref = lookup_domain(host, domain)
        if ref is None:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND, f"Antecedent: no such network port: {a}")
        return ref, dev.devid, flt.name

    _add = staticmethod(set_nic_filter)
    _remove = staticmethod(clear_nic_filter)


class HostedFilterListProvider(_FilterAssociation):
    roles = (Role("Antecedent", ["HostSystem"]), Role("Dependent", ["FilterList"]))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            host = host_of_path(path, family)
            if host is not None:
                for name in filter_names(host):
                    yield filter_list_path(host, name)
            return
        hit = filter_of_path(path, family)
        if hit is not None:
            yield host_path(hit[0])

    def sources(self, env, family):
        for host in self.hosts(f"{family}_HostedFilterList"):
            yield host_path(host)


def get_providers(env) -> dict[str, Any]:
    return {**providers_for(EntriesInFilterListProvider(), "EntriesInFilterList"),
            **providers_for(NestedFilterListProvider(), "NestedFilterList"),
            **providers_for(AppliedFilterListProvider(), "AppliedFilterList"),
            **providers_for(HostedFilterListProvider(), "HostedFilterList")}
