"""Paths of the network filter classes ({P}_FilterList and the rule classes), parsed
back to libvirt filters, and the CIM errors of filter requests.

Keys of a filter list and of a rule (CIM_FilterList, CIM_FilterEntryBase):
SystemCreationClassName ``{P}_HostSystem``, SystemName (the host system's
Name), CreationClassName, Name (the filter's name; a rule's
``"<filter>:<n>"``).
"""

from __future__ import annotations

from typing import Any, Optional

from pywbem import CIMError, CIMInstanceName

from kvm_providers.provider import env as provider_env
from kvm_providers.virt.connection import Host
from kvm_providers.virt.nwfilter import (Filter, FilterError, Rule, lookup_filter,
                                         parse_rule_id, rule_class)

from .base import VIRT_NS
from .paths import host_of_system_name, host_system_name

__all__ = ["RULE_CLASSES", "filter_keys", "filter_list_path", "rule_path", "host_of_keys",
           "filter_of_path", "rule_of_path", "cim_error"]

#: The rule classes, without family prefix.
RULE_CLASSES = ("FilterEntry", "Hdr8021Filter", "IPHeadersFilter")

def cim_error(exc: FilterError) -> CIMError:
    """The CIM error of a FilterError: the provider side's one translation of the libvirt
    layer's errors (by reason: exists 11, not-found 6, loop and bad-value 4, unsupported
    7, in-use 1)."""
    err = provider_env.cim_error(exc)
    assert err is not None       # a FilterError is one of the layer's errors
    return err


def filter_keys(host: Host, classname: str, name: str) -> dict[str, str]:
    """The keys of an instance of `classname` (a filter list or rule class) named `name`."""
    return {"SystemCreationClassName": f"{host.family}_HostSystem",
            "SystemName": host_system_name(host),
            "CreationClassName": classname,
            "Name": name}


def filter_list_path(host: Host, name: str) -> CIMInstanceName:
    cls = f"{host.family}_FilterList"
    return CIMInstanceName(cls, filter_keys(host, cls, name), namespace=VIRT_NS)


def rule_path(host: Host, rule: Rule) -> CIMInstanceName:
    cls = f"{host.family}_{rule_class(rule)}"
    return CIMInstanceName(cls, filter_keys(host, cls, rule.name), namespace=VIRT_NS)


def _same(a: Any, b: str) -> bool:
    return isinstance(a, str) and a.lower() == b.lower()


def host_of_keys(kb: Any, classname: str, family: str) -> Optional[Host]:
    """The host whose filter list or rule keys `kb` are (None if they name none)."""
    if not _same(kb.get("CreationClassName"), classname) or \
            not _same(kb.get("SystemCreationClassName"), f"{family}_HostSystem"):
        return None
    return host_of_system_name(family, kb.get("SystemName"))


def filter_of_path(path: CIMInstanceName, family: str) -> Optional[tuple[Host, Filter]]:
    """(host, filter) of a {P}_FilterList path that names an existing filter; or None."""
    if not path.classname.lower().endswith("_filterlist"):
        return None
    host = host_of_keys(path.keybindings, path.classname, family)
    if host is None:
        return None
    flt = lookup_filter(host, path.keybindings.get("Name"))
    return None if flt is None else (host, flt)


def rule_of_path(path: CIMInstanceName, family: str) -> Optional[tuple[Host, Rule]]:
    """(host, rule) of a rule path naming an existing rule of the path's class; or None."""
    host = host_of_keys(path.keybindings, path.classname, family)
    if host is None:
        return None
    hit = parse_rule_id(path.keybindings.get("Name"))
    if hit is None:
        return None
    flt = lookup_filter(host, hit[0])
    rule = flt.rule(hit[1]) if flt is not None else None
    if rule is None or f"{family}_{rule_class(rule)}".lower() != path.classname.lower():
        return None
    return host, rule
