"""Client settings (VSSD and RASD properties) into domain XML: classification, defaults,
validation, and the writes the read-only mapping tables do not do.

The management methods (:mod:`kvm_providers.model.manage`) use this module to
turn the embedded instances a client sent into in-place edits of a domain
definition.  Rules:

* A property that is NULL (absent) leaves the XML as it is; an empty string
  or an empty array removes what the property describes.
* Only properties whose value differs from what the client could read
  (the current definition; the live one of a running system) are written:
  a client that sends back a whole instance with one property changed
  changes exactly that property.
* Read tolerantly (docs/lifecycle.md): properties the class does not map
  are ignored (logged at debug level); mapped properties that cannot be
  written (constants, values computed from elsewhere) are refused when their
  value differs (:class:`InvalidSetting` naming property and value), unless
  the value is the class's default for the property: CIM servers fill class
  defaults into the embedded instances a client sends
  (``VirtualQuantityUnits="count"``), so such a value is "not given".
* Every error is an :class:`InvalidSetting` (``CIM_ERR_INVALID_PARAMETER``)
  whose description names where (``ResourceSettings[1]``), the property and
  the value; nothing has been written to libvirt when one is raised.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping, Optional

from lxml import etree

from . import limits

from ..virt import mapping
from ..virt.connection import DomainNotFound, Host
from ..virt.devices import Setting
from ..virt.domain import DomainXML
from .kinds import KIND_BY_NAME, KIND_BY_RASD, KINDS, DeviceKind
from .kinds.base import BuildEnv
from .vssd import VSSD
from .kinds.console import check_console_paths
from .kinds.mem import memory_kib, numa_memory_kib
from .kinds.net import network_name
from ..virt.props import (MAC_RE, UUID_RE, InvalidSetting, Props, host_is_local, host_path,
                    image_format, random_mac, same_value as _same)
from ..virt.validate import BadName, check_name

# InvalidSetting, Props and the host checks moved to props.py, the per-kind writers and
# builders to the kind modules (kinds/*.py); the names stay importable from here.
__all__ = ["InvalidSetting", "Props", "classify", "diff_props", "write_props",
           "apply_system", "apply_setting",
           "device_id_of", "new_device", "check_device", "check_limits", "random_mac",
           "host_macs", "MAC_RE", "UUID_RE", "valid_name", "memory_kib", "numa_memory_kib",
           "IGNORED",
           "table_for", "network_name", "host_is_local", "host_path", "image_format",
           "check_console_paths"]

LOG = logging.getLogger(__name__)


# -- classification ------------------------------------------------------------------

#: libvirt-cim's vendor ResourceTypes (its svpc_types.h), which its clients send
#: (32769 console, 32771 controller; 32768, a storage volume, is no device).  Its own
#: answers say 1 (Other) with OtherResourceType, as ours do.
_VENDOR_TYPES = {k.vendor_type: k.name for k in KINDS if k.vendor_type is not None}
#: Generic RASDs (CIM_ResourceAllocationSettingData) by ResourceType.
_BY_RESOURCE_TYPE = {**{t: k.name for k in KINDS for t in k.alias_types},
                     **{k.resource_type: k.name for k in KINDS if k.resource_type != 1},
                     **_VENDOR_TYPES}
#: ResourceType 1 (Other) by OtherResourceType.
_OTHER_TYPES = {k.other_resource_type: k.name for k in KINDS if k.other_resource_type}


def classify(classname: str, props: Props, family: str, where: str) -> DeviceKind:
    """The device kind a RASD instance of `classname` describes, or InvalidSetting."""
    prefix, _, base = classname.partition("_")
    if not base:
        raise InvalidSetting(where, f"class {classname!r} is not a resource allocation setting")
    kind = KIND_BY_RASD.get(base.lower())
    if kind is not None:
        if prefix.lower() != family.lower():
            raise InvalidSetting(where, f"class {classname} belongs to the {prefix} family, "
                                        f"not {family}")
    elif base.lower() == "resourceallocationsettingdata":
        rtype = props.get_("ResourceType")
        name = _BY_RESOURCE_TYPE.get(int(rtype)) if isinstance(rtype, int) else None
        if rtype == 1:
            other = str(props.get_("OtherResourceType") or "").lower()
            name = _OTHER_TYPES.get(other)
            if name is None:
                raise InvalidSetting(where, f"OtherResourceType {other!r} is not one of "
                                            f"{', '.join(_OTHER_TYPES)}")
        if name is None:
            what = " (a storage volume: create it with CreateResourceInPool)" \
                if rtype == 32768 else ""
            raise InvalidSetting(where, f"ResourceType {rtype!r}{what} is not a resource type "
                                        f"this service handles")
        kind = KIND_BY_NAME[name]
    else:
        raise InvalidSetting(where, f"class {classname} is not a resource allocation setting "
                                    f"this service handles")
    rtype = props.get_("ResourceType")
    if rtype is not None and int(rtype) != kind.resource_type and \
            int(rtype) not in kind.alias_types and int(rtype) != kind.vendor_type:
        raise InvalidSetting(where, f"ResourceType {rtype} does not match {classname} "
                                    f"(ResourceType {kind.resource_type})")
    return kind


#: Descriptive properties of every RASD that never change the XML.
IGNORED = {"caption", "description", "elementname", "instanceid", "hostresource", "parent"}


def table_for(kind: DeviceKind, element: Any) -> dict[str, mapping.Field]:
    """The mapping table of `kind` for `element`, with the kind's writers."""
    table = dict(kind.table(element))
    table.update(kind.writers)
    return table


# -- comparing and writing --------------------------------------------------------------


def diff_props(table: Mapping[str, mapping.Field], element: Any, props: Props, ctx: Any,
               where: str, skip: Iterable[str] = ()) -> dict[str, Any]:
    """{property: new value} of the mapped properties whose value differs from `element`'s.

    Raises InvalidSetting for a differing property that cannot be written.
    """
    lower = {k.lower(): k for k in table}
    skip = {s.lower() for s in skip}
    defaults = getattr(props, "defaults", {})
    out: dict[str, Any] = {}
    for key, value in props.items():
        name = lower.get(key)
        if key in skip:
            continue
        if name is None:
            LOG.debug("%s: ignoring %s, which the mapping does not use", where,
                      getattr(props, "names", {}).get(key, key))
            continue
        if isinstance(value, list) and any(v is None for v in value):
            # NULL means "not given", which an entry of a list cannot be.
            raise InvalidSetting(where, f"{name} {value!r} has a NULL entry")
        f = table[name]
        current = f.read(element, ctx) if element is not None else None
        if key == "resourcetype" and not isinstance(value, bool) and \
                isinstance(value, int) and int(value) in _VENDOR_TYPES:
            value = 1   # libvirt-cim's vendor type of what its answers call Other (1)
        if _same(value, current):
            continue
        if not f.writable:
            if key in defaults and _same(value, defaults[key]):
                # The class default of a field the client cannot set: a CIM server
                # filled it in, the client did not ask for it.
                LOG.debug("%s: ignoring %s %r, the class default (it is %r)", where, name,
                          value, current)
                continue
            raise InvalidSetting(where, f"{name} {value!r} cannot be set (it is {current!r})")
        out[name] = value
    for alias, (main, agrees) in _ALIASES.items():
        if alias in out and main in out:
            if not agrees(out[alias], out[main]):
                raise InvalidSetting(where, f"{alias} {out[alias]!r} and {main} "
                                            f"{out[main]!r} disagree")
            del out[alias]                  # the fuller property says it all
    return out


#: Properties that say part of what another one says: {alias: (main, agrees(alias, main))}.
#: When a client changes both, they must agree, and the main one is written.
_ALIASES = {
    "BootDevice": ("BootDevices",
                   lambda one, order: bool(order) and str(order[0]) == str(one)),
}


def write_props(table: Mapping[str, mapping.Field], element: Any, changes: Mapping[str, Any],
                ctx: Any, where: str) -> None:
    """Write `changes` (from diff_props) into `element`; "" and [] remove."""
    for name, value in changes.items():
        if value == "" or value == []:
            value = None
        try:
            table[name].write(element, value, ctx)
        except (ValueError, TypeError) as exc:   # NotWritable is a ValueError
            raise InvalidSetting(where, f"{name} {changes[name]!r}: {exc}") from None


# -- identities ------------------------------------------------------------------------

def valid_name(name: Any, where: str, prop: str = "VirtualSystemIdentifier") -> str:
    """`name` if it can name a virtual system (:func:`validate.check_name`), else
    InvalidSetting naming `where` and `prop`."""
    try:
        return check_name(name, prop)
    except BadName as exc:
        raise InvalidSetting(where, str(exc)) from None


def host_macs(host: Host, exclude_uuid: Optional[str] = None) -> dict[str, str]:
    """{MAC (lower case): domain name} of every interface of every domain of `host`."""
    from ..virt.domain import domain_xml, list_domains
    out: dict[str, str] = {}
    for ref in list_domains(host):
        if ref.uuid == exclude_uuid:
            continue
        for inactive in (False, True):
            try:
                doc = domain_xml(ref, inactive)
            except DomainNotFound:
                # undefined meanwhile: its MACs are free.  Any other error fails the
                # request: a MAC that could not be read may be the one asked for.
                break
            for mac in doc.root.xpath("devices/interface/mac/@address"):
                out.setdefault(str(mac).lower(), ref.name)
    return out


def device_id_of(kind: DeviceKind, props: Props) -> Optional[str]:
    """The device id a RASD's properties name (before any element exists), if they do."""
    return kind.id_from_props(props)


# -- devices -------------------------------------------------------------------------


def check_device(host: Host, kind: DeviceKind, changes: Mapping[str, Any], where: str,
                 family: str) -> None:
    """Check enumerated values against the allocation limits (an empty string is no
    value: it removes what the property describes, docs/lifecycle.md)."""
    for prop, value in changes.items():
        if isinstance(value, str) and value == "":
            continue
        try:
            limits.check(host, kind.name, prop, value, family)
        except limits.LimitError as exc:
            raise InvalidSetting(where, str(exc)) from None


def check_limits(host: Host, family: str, where: str, kind: str, values: Mapping[str, Any],
                 suffix: str = "") -> None:
    """Check `values` ({property: value}) of a setting of `kind` against the limits; the
    first outside them raises InvalidSetting naming where, the property and the value
    (`suffix` appended, e.g. " (KiB)")."""
    for prop, value in values.items():
        try:
            limits.check(host, kind, prop, value, family)
        except limits.LimitError as exc:
            raise InvalidSetting(where, f"{exc}{suffix}") from None


def new_device(host: Host, family: str, doc: DomainXML, kind: DeviceKind, props: Props,
               where: str, taken_macs: Mapping[str, str]) -> Any:
    """Build the element of a new device of `kind` from a RASD (not yet in any document).

    The kind's skeleton and builder (kinds/<kind>.py) give its defaults and
    checks; then the address and the remaining properties are written through
    the kind's table, checked against the limits.
    """
    if kind.skeleton is None:
        raise InvalidSetting(where, f"a {kind.name} setting cannot be added, only modified")
    el = kind.new_element()
    p = Props(props)
    if kind.build is not None:
        env = BuildEnv(host, family, doc, where, taken_macs,
                       lambda k, changes: check_device(host, k, changes, where, family))
        el = kind.build(env, el, p)
    aprops, avalues = p.pop_("AddressProperties"), p.pop_("AddressValues")
    if aprops or avalues:
        if not aprops or not avalues or len(aprops) != len(avalues) or \
                None in aprops or None in avalues:
            raise InvalidSetting(where, f"AddressProperties {aprops!r} and AddressValues "
                                        f"{avalues!r} must be lists of the same length, "
                                        f"without NULL entries")
        addr = etree.SubElement(el, "address")
        for k, v in zip(aprops, avalues, strict=True):   # lengths checked above
            addr.set(str(k), str(v))
    table = table_for(kind, el)
    skip = kind.special | IGNORED
    changes = diff_props(table, el,
                         Props({k: v for k, v in p.items() if k not in skip}, p.defaults),
                         doc.context(), where)
    changes = {k: v for k, v in changes.items() if v not in ("", [])}
    check_device(host, kind, changes, where, family)
    if kind.check_changes is not None:
        kind.check_changes(host, el, changes, where)
    write_props(table, el, changes, doc.context(), where)
    return el


# -- plain application of a table (moved from virt/edit.py: tables are the CIM side) ----

def apply_system(doc: DomainXML, props: Mapping[str, Any]) -> list[str]:
    """Apply VSSD properties to the ``<domain>`` root; returns the properties written."""
    written = mapping.apply_props(VSSD, doc.root, props, doc.context())
    doc.invalidate()
    return written


def apply_setting(doc: DomainXML, setting: Setting, props: Mapping[str, Any]) -> list[str]:
    """Apply RASD properties to the element of `setting`; returns the properties written."""
    written = mapping.apply_props(setting.table, setting.element, props, doc.context())
    doc.invalidate()
    return written
