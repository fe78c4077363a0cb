"""Network filters (libvirt nwfilter): {P}_FilterList, and their rules as
{P}_Hdr8021Filter (mac, arp, rarp, vlan rules), {P}_IPHeadersFilter (ip,
ipv6, tcp, udp, sctp, icmp, igmp, esp, ah, udplite, all and their -ipv6
forms) and {P}_FilterEntry (rules on all traffic, stp).

Keys: see :mod:`.common.filter_paths`.  A filter list's InstanceID is the
filter's UUID (host-qualified with several hosts), as libvirt-cim's.

CreateInstance of {P}_FilterList defines a new, empty filter from Name (and
Priority if given); DeleteInstance undefines a filter unless a network
interface applies it or another filter references it.  Rules are read-only
(libvirt-cim's too).
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

import pywbem
from pywbem import CIMError, CIMInstance

from kvm_providers.schema.valuemaps import CIM_FilterList
from kvm_providers.virt import keys, validate
from kvm_providers.virt.connection import Host
from kvm_providers.virt.nwfilter import (Filter, FilterError, define_filter, filter_names,
                                         list_filters, rule_class, rule_properties,
                                         undefine_filter)

from .common import VirtProvider, fill, providers_for
from .common.filter_paths import (RULE_CLASSES, cim_error, filter_keys, filter_of_path,
                                  host_of_keys, rule_of_path)
from .common.paths import host_system_name

__all__ = ["FilterListProvider", "FilterEntryProvider", "get_providers"]


def _given(inst: CIMInstance, name: str) -> Any:
    """A property's value in a client's instance; None if absent or NULL."""
    prop = inst.properties.get(name)
    return None if prop is None else prop.value


class FilterListProvider(VirtProvider):
    """{P}_FilterList: one instance per nwfilter of every host of the family."""

    def _fill(self, inst: Any, model: Any, host: Host, flt: Filter) -> None:
        fill(inst, model, {
            "InstanceID": lambda: keys.qualify(host, flt.uuid),
            "ElementName": flt.name,
            # rules carry directions
            "Direction": CIM_FilterList.Direction.Not_Applicable,
            "Priority": lambda: flt.priority,
        })

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        cls = model.classname
        for host in self.hosts(cls):
            if keys_only:
                items: list = [(n, None) for n in filter_names(host)]
            else:
                items = [(f.name, f) for f in list_filters(host)]
            for name, flt in items:
                inst = model.copy()
                for k, v in filter_keys(host, cls, name).items():
                    inst[k] = v
                if flt is not None:
                    self._fill(inst, model, host, flt)
                yield inst

    def get_instance(self, env, model) -> Optional[Any]:
        hit = filter_of_path(model.path, self.family(model.classname))
        if hit is None:
            return None
        self._fill(model, model, *hit)
        return model

    def _target_host(self, instance: CIMInstance) -> Host:
        """The host a new filter list goes to: SystemName's, or the family's only host."""
        cls = instance.classname
        fam = self.family(cls)
        for prop, want in (("CreationClassName", cls),
                           ("SystemCreationClassName", f"{fam}_HostSystem")):
            got = _given(instance, prop)
            if got is not None and not self.same_class(got, want):
                raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                               f"{prop} {validate.show(got)} is not {want}")
        hosts = self.hosts(cls)
        sysname = _given(instance, "SystemName")
        if sysname is not None:
            kb = {"CreationClassName": cls, "SystemCreationClassName": f"{fam}_HostSystem",
                  "SystemName": sysname}
            host = host_of_keys(kb, cls, fam)
            if host is None:
                names = ", ".join(repr(host_system_name(h)) for h in hosts)
                raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                               f"SystemName {validate.show(sysname)} names no host of {cls} "
                               f"(hosts: {names or 'none'})")
            return host
        if not hosts:
            raise CIMError(pywbem.CIM_ERR_FAILED, f"no libvirt host serves {cls}")
        if len(hosts) > 1:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           f"several hosts serve {cls}: SystemName must say which")
        return hosts[0]

    def set_instance(self, env, instance, modify_existing) -> CIMInstance:
        cls = instance.classname
        if modify_existing:
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                           f"ModifyInstance is not supported for class {cls}: create a "
                           f"new filter list, or change its entries with "
                           f"{self.class_of(cls, 'NestedFilterList')}")
        try:
            name = validate.check_name(_given(instance, "Name"), "Name")
        except validate.BadName as exc:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, str(exc)) from None
        # A new list is a filter of libvirt's root chain, whose priority is 0.  The
        # class default (500, which CIM servers fill in) and 0 read as "not given".
        priority = _given(instance, "Priority")
        if priority is not None and priority not in (0, 500):
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           f"Priority {validate.show(priority)} cannot be given: a new filter "
                           f"list is in libvirt's root chain, whose priority is 0")
        host = self._target_host(instance)
        try:
            define_filter(host, name)
        except FilterError as exc:
            raise cim_error(exc) from None
        ns = instance.path.namespace if instance.path is not None else None
        out = CIMInstance(cls, path=pywbem.CIMInstanceName(
            cls, filter_keys(host, cls, name), namespace=ns))
        return out

    def delete_instance(self, env, instance_name) -> None:
        hit = filter_of_path(instance_name, self.family(instance_name.classname))
        if hit is None:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND, f"no such filter list: {instance_name}")
        host, flt = hit
        try:
            undefine_filter(host, flt.name)
        except FilterError as exc:
            raise cim_error(exc) from None


class FilterEntryProvider(VirtProvider):
    """{P}_Hdr8021Filter, {P}_IPHeadersFilter, {P}_FilterEntry: the rules of every filter."""

    def _fill(self, inst: Any, model: Any, rule: Any) -> None:
        fill(inst, model, rule_properties(rule))

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        cls = model.classname
        base = cls.split("_", 1)[1].lower()
        for host in self.hosts(cls):
            for flt in list_filters(host):
                for rule in flt.rules():
                    if rule_class(rule).lower() != base:
                        continue
                    inst = model.copy()
                    for k, v in filter_keys(host, cls, rule.name).items():
                        inst[k] = v
                    if not keys_only:
                        self._fill(inst, model, rule)
                    yield inst

    def get_instance(self, env, model) -> Optional[Any]:
        hit = rule_of_path(model.path, self.family(model.classname))
        if hit is None:
            return None
        self._fill(model, model, hit[1])
        return model


def get_providers(env) -> dict[str, Any]:
    return {**providers_for(FilterListProvider(), "FilterList"),
            **providers_for(FilterEntryProvider(), *RULE_CLASSES)}
