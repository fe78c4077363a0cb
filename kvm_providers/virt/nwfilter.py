"""libvirt network filters (nwfilter): listing, lookup, define, undefine, edits in place.

A filter is libvirt's ``<filter name chain priority>`` with a ``<uuid>``, an
ordered mix of ``<rule>`` elements and ``<filterref filter=...>`` references
to other filters.  Network interfaces of domains apply a filter through
``<interface><filterref filter=...>`` (with ``<parameter>`` children giving
the filter's variables, e.g. ``IP``).

Identities (libvirt-cim's): a filter by its name; a rule by
``"<filter name>:<n>"``, ``n`` its position among the filter's ``<rule>``
elements (0-based; filter references do not count).

Writes never regenerate a filter or a domain: the current XML is fetched,
exactly one element is added, changed or removed, and the document is
defined again (a running guest's interface changed live too), so that every
rule, attribute, comment and parameter the model does not know survives (libvirt-cim rebuilt filters from its parsed
subset and lost rule attributes on every nesting change).

Rules as CIM sees them (:func:`rule_class`, :func:`rule_properties`): the
mapping from rule XML to the properties of CIM_Hdr8021Filter,
CIM_IPHeadersFilter and CIM_FilterEntry.  Addresses are DSP0004 octet
strings (four length octets, then the address); values that are filter
variables (``$IP``) have no octet form and are left unset.

Errors: :class:`FilterError` (``kind`` one of ``exists``, ``in-use``,
``not-found``, ``loop``, ``bad-value``, ``unsupported``) for what the caller asked and cannot
have; libvirt failures through :meth:`Host.guard` (``CIM_ERR_FAILED`` naming
the host).
"""

from __future__ import annotations

import ipaddress
from typing import Any, Callable, Iterable, Optional

import libvirt
from lxml import etree

from .scope import current_scope
from .connection import DomainNotFound, Host
from .errors import VirtError
from .domain import (XML_FLAGS, DomainRef, DomainXML, domain_state, domain_xml,
                     fetch_xml_text, list_domains)
from .query import if_supported, parse_xml, request_memo
from . import edit

__all__ = ["Filter", "Rule", "FilterError", "NicUse", "list_filters", "filter_names",
           "lookup_filter", "define_filter", "undefine_filter", "add_ref", "remove_ref",
           "filter_users", "nic_filter", "set_nic_filter", "clear_nic_filter", "rule_id",
           "parse_rule_id", "rule_class", "rule_properties", "HDR8021", "IPHEADERS", "ENTRY",
           "octets", "ACTIONS", "DIRECTIONS", "MIN_PRIORITY", "MAX_PRIORITY"]

_NO_NWFILTER = getattr(libvirt, "VIR_ERR_NO_NWFILTER", 62)

MIN_PRIORITY, MAX_PRIORITY = -1000, 1000

#: rule@action -> Action (the classes' ValueMap: Permit, Deny, Reject, Return, Continue).
ACTIONS = {"accept": 1, "drop": 2, "reject": 3, "return": 4, "continue": 5}
#: rule@direction -> Direction (Input, Output, Both).
DIRECTIONS = {"in": 1, "out": 2, "inout": 3}

#: The rule classes (without family prefix).
HDR8021, IPHEADERS, ENTRY = "Hdr8021Filter", "IPHeadersFilter", "FilterEntry"

_L2 = {"mac", "arp", "rarp", "vlan"}
_L3 = {"ip", "ipv6", "tcp", "udp", "sctp", "icmp", "igmp", "esp", "ah", "udplite", "all",
       "tcp-ipv6", "udp-ipv6", "sctp-ipv6", "icmpv6", "esp-ipv6", "ah-ipv6", "udplite-ipv6",
       "all-ipv6"}
_PROTOCOL_ELEMENTS = _L2 | _L3 | {"stp"}

#: Ethernet protocol ids by libvirt's names (mac@protocolid) and by rule element.
_ETHERTYPES = {"ipv4": 0x0800, "arp": 0x0806, "rarp": 0x8035, "ipv6": 0x86DD}
_ELEMENT_ETHERTYPE = {"arp": 0x0806, "rarp": 0x8035, "vlan": 0x8100}
#: IP protocol numbers by libvirt's names (ip@protocol and the rule elements).
_IP_PROTOCOLS = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "esp": 50, "ah": 51,
                 "icmpv6": 58, "sctp": 132, "udplite": 136}


#: libvirt's priorities of filters without one, by chain (prefix): nwfilter_conf.h.
_CHAIN_PRIORITY = {"root": 0, "stp": -810, "mac": -800, "vlan": -750, "ipv4": -700,
                   "ipv6": -600, "arp": -500, "rarp": -400}


#: The layer's reason (errors.py) of each kind of FilterError.
_REASONS = {"exists": "already-exists", "not-found": "not-found", "in-use": "conflict",
            "loop": "invalid-setting", "bad-value": "invalid-setting",
            "unsupported": "not-supported"}


class FilterError(VirtError):
    """A request about filters that cannot be carried out; ``kind`` says why (exists,
    not-found, in-use, loop, bad-value, unsupported), ``reason`` in the layer's words."""

    def __init__(self, kind: str, message: str):
        super().__init__(message, _REASONS.get(kind, "failed"))
        self.kind = kind


# -- the model -------------------------------------------------------------------------

class Rule:
    """One ``<rule>`` of a filter."""

    __slots__ = ("filter", "index", "element")

    def __init__(self, flt: "Filter", index: int, element: Any):
        self.filter, self.index, self.element = flt, index, element

    @property
    def name(self) -> str:
        return rule_id(self.filter.name, self.index)

    @property
    def protocol(self) -> Optional[Any]:
        """The protocol element (``<tcp>``, ``<mac>`` ...) or None for a rule without one."""
        for child in self.element:
            if isinstance(child.tag, str) and child.tag in _PROTOCOL_ELEMENTS:
                return child
        return None

    def match_attrs(self) -> dict[str, str]:
        """The attributes the rule matches on (its protocol elements merged).

        libvirt writes a rule with negated attributes as two elements of one
        protocol, ``<udp match='no' dstipaddr=.../><udp dstportstart=.../>``;
        CIM negates whole entries only (IsNegated), so negated attributes are
        left out of the CIM view (the XML keeps them).
        """
        proto = self.protocol
        out: dict[str, str] = {}
        if proto is None:
            return out
        for child in self.element:
            if child.tag == proto.tag and child.get("match", "yes").lower() != "no":
                out.update({k: v for k, v in child.attrib.items() if k != "match"})
        return out

    def __repr__(self) -> str:
        return f"<Rule {self.name}>"


class Filter:
    """One nwfilter of a host: name, uuid and its parsed XML."""

    __slots__ = ("host", "name", "uuid", "root")

    def __init__(self, host: Host, name: str, uuid: str, root: Any):
        self.host, self.name, self.uuid, self.root = host, name, uuid, root

    @property
    def priority(self) -> Optional[int]:
        """The filter's priority: its attribute, else libvirt's default for its chain."""
        own = _int(self.root.get("priority"))
        if own is not None:
            return own
        chain = (self.chain or "root").split("-", 1)[0]
        return _CHAIN_PRIORITY.get(chain)

    @property
    def chain(self) -> Optional[str]:
        return self.root.get("chain")

    def rules(self) -> list[Rule]:
        return [Rule(self, i, el) for i, el in enumerate(self.root.iterfind("rule"))]

    def rule(self, index: int) -> Optional[Rule]:
        rules = self.rules()
        return rules[index] if 0 <= index < len(rules) else None

    def refs(self) -> list[str]:
        """Names of the filters this one references, in document order."""
        return [el.get("filter") for el in self.root.iterfind("filterref")
                if el.get("filter")]

    def tostring(self) -> str:
        return etree.tostring(self.root, encoding="unicode")

    def __repr__(self) -> str:
        return f"<Filter {self.host.label}:{self.name}>"


def rule_id(filter_name: str, index: int) -> str:
    """A rule's Name: ``"<filter>:<index>"``."""
    return f"{filter_name}:{index}"


def parse_rule_id(text: Any) -> Optional[tuple[str, int]]:
    """(filter name, rule index) of a rule Name, or None."""
    if not isinstance(text, str):
        return None
    name, sep, num = text.rpartition(":")
    if not sep or not name or not num.isdigit() or (len(num) > 1 and num[0] == "0"):
        return None
    return name, int(num)


# -- reading ---------------------------------------------------------------------------

def _parse(host: Host, obj: Any) -> Filter:
    root = parse_xml(obj.XMLDesc(0))
    return Filter(host, root.get("name") or obj.name(), root.findtext("uuid") or obj.UUIDString(),
                  root)


def _objects(host: Host) -> list[Any]:
    def compute():
        objs = if_supported(host, "listing network filters",
                             lambda c: c.listAllNWFilters(0)) or []
        return sorted(objs, key=lambda o: o.name())
    return request_memo(("virt.nwfilter.objs", host.label, host.generation), compute)


def filter_names(host: Host) -> list[str]:
    """Names of the host's filters, sorted (no XML fetched); [] if the driver has none."""
    def compute():
        with host.guard("listing network filters"):
            return [o.name() for o in _objects(host)]
    return request_memo(("virt.nwfilter.names", host.label, host.generation), compute)


def list_filters(host: Host) -> list[Filter]:
    """Every filter of the host with its parsed XML, sorted by name; once per request.

    Filters undefined while they are listed are skipped.
    """
    def compute():
        out = []
        for obj in _objects(host):
            try:
                out.append(_parse(host, obj))
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == _NO_NWFILTER:
                    continue
                raise host.translate(exc, "getting the XML of a network filter") from None
        return out
    return request_memo(("virt.nwfilter.all", host.label, host.generation), compute)


def lookup_filter(host: Host, name: Any) -> Optional[Filter]:
    """The filter named `name` (parsed), or None."""
    if not isinstance(name, str) or not name:
        return None
    scope = current_scope()
    if scope is not None and ("virt.nwfilter.all", host.label, host.generation) in scope:
        return next((f for f in list_filters(host) if f.name == name), None)

    def compute():
        return _fresh(host, name)
    return request_memo(("virt.nwfilter.one", host.label, host.generation, name), compute)


def _fresh(host: Host, name: str) -> Optional[Filter]:
    """A private parse of the filter's current XML (for edits), or None."""
    conn = host.conn()
    try:
        return _parse(host, conn.nwfilterLookupByName(name))
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == _NO_NWFILTER or Host.unsupported(exc):
            return None
        raise host.translate(exc, f"looking up network filter {name!r}") from None


def _int(text: Optional[str]) -> Optional[int]:
    try:
        return int(text, 0) if text is not None else None
    except ValueError:
        return None


# -- who uses a filter ------------------------------------------------------------------

class NicUse:
    """A network interface of a domain that applies a filter."""

    __slots__ = ("domain", "devid", "filter")

    def __init__(self, domain: str, devid: str, flt: str):
        self.domain, self.devid, self.filter = domain, devid, flt

    def __repr__(self) -> str:
        return f"<NicUse {self.domain}/{self.devid} -> {self.filter}>"


def _nic_filters(root: Any) -> Iterable[tuple[str, str]]:
    """(MAC address, filter name) of every interface of a domain document with a filterref."""
    for iface in root.iterfind("devices/interface"):
        ref = iface.find("filterref")
        mac = iface.find("mac")
        if ref is not None and ref.get("filter") and mac is not None and mac.get("address"):
            yield mac.get("address"), ref.get("filter")


def nic_filter(ref: DomainRef, devid: str, inactive: bool = False) -> Optional[str]:
    """The filter applied to the interface `devid` (MAC) of a domain, or None."""
    doc = domain_xml(ref, inactive)
    s = doc.setting(devid)
    if s is None or s.kind.name != "net":
        return None
    el = s.element.find("filterref")
    return el.get("filter") if el is not None else None


def filter_users(host: Host, name: str) -> tuple[list[NicUse], list[str]]:
    """(interfaces applying filter `name`, filters referencing it).

    Interfaces are looked for in every domain's persistent definition and,
    for running domains, in the live one.
    """
    nics: list[NicUse] = []
    seen: set[tuple[str, str]] = set()
    for ref in list_domains(host):
        try:
            docs = [domain_xml(ref, inactive=True)]
            if domain_state(ref)[0] in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_PAUSED,
                                        libvirt.VIR_DOMAIN_BLOCKED):
                docs.append(domain_xml(ref))
        except DomainNotFound:
            continue  # undefined meanwhile: it uses nothing
        for doc in docs:
            for mac, flt in _nic_filters(doc.root):
                if flt == name and (ref.name, mac) not in seen:
                    seen.add((ref.name, mac))
                    nics.append(NicUse(ref.name, mac, flt))
    parents = [f.name for f in list_filters(host) if name in f.refs()]
    return nics, parents


# -- writing ---------------------------------------------------------------------------

def _forget(host: Host) -> None:
    """Drop the request's memos of filters (and domains, after an interface edit)."""
    scope = current_scope()
    if scope is None:
        return
    for key in list(scope):
        if isinstance(key, tuple) and len(key) >= 2 and str(key[0]).startswith("virt.nwfilter") \
                and key[1] == host.label:
            del scope[key]


def _define(host: Host, xml: str, what: str) -> None:
    conn = host.conn()
    try:
        conn.nwfilterDefineXML(xml)
    except libvirt.libvirtError as exc:
        if Host.unsupported(exc):
            raise FilterError("unsupported", f"libvirt host {host.label!r} has no network "
                                             f"filters (its driver does not support them)"
                              ) from None
        raise host.translate(exc, what) from None
    _forget(host)


def define_filter(host: Host, name: str, priority: Optional[int] = None,
                  chain: Optional[str] = None) -> Filter:
    """Define a new, empty filter; FilterError('exists') if the name is taken.

    `name` must have been checked by the caller (validate.check_name).
    libvirt takes a `priority` only with a `chain` (the root chain's is 0).
    """
    if priority is not None and not chain:
        raise FilterError("bad-value", "a filter in the root chain has priority 0: "
                                       "a priority needs a chain")
    if _fresh(host, name) is not None:
        raise FilterError("exists", f"network filter {name!r} already exists")
    if priority is not None and not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise FilterError("bad-value", f"Priority {priority} is outside "
                                       f"{MIN_PRIORITY}..{MAX_PRIORITY}")
    root = etree.Element("filter", name=name)
    if chain:
        root.set("chain", chain)
    if priority is not None:
        root.set("priority", str(priority))
    _define(host, etree.tostring(root, encoding="unicode"),
            f"defining network filter {name!r}")
    made = _fresh(host, name)
    if made is None:
        raise FilterError("not-found", f"network filter {name!r} vanished after its definition")
    return made


def undefine_filter(host: Host, name: str) -> None:
    """Undefine a filter that nothing uses; FilterError('in-use' / 'not-found') otherwise."""
    if _fresh(host, name) is None:
        raise FilterError("not-found", f"network filter {name!r} does not exist")
    nics, parents = filter_users(host, name)
    if nics or parents:
        users = [f"the network interface {n.devid} of domain {n.domain!r}" for n in nics]
        users += [f"network filter {p!r} (which references it)" for p in parents]
        raise FilterError("in-use", f"network filter {name!r} is in use by " + ", ".join(users))
    conn = host.conn()
    with host.guard(f"undefining network filter {name!r}"):
        try:
            conn.nwfilterLookupByName(name).undefine()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != _NO_NWFILTER:
                raise
            raise FilterError("not-found", f"network filter {name!r} does not exist") from None
    _forget(host)


def _reaches(host: Host, start: str, goal: str) -> bool:
    """True if filter `start` references `goal` directly or through other filters."""
    by_name = {f.name: f for f in list_filters(host)}
    todo, seen = [start], set()
    while todo:
        name = todo.pop()
        if name == goal:
            return True
        if name in seen:
            continue
        seen.add(name)
        f = by_name.get(name)
        if f is not None:
            todo.extend(f.refs())
    return False


def add_ref(host: Host, parent: str, child: str) -> None:
    """Make filter `parent` reference filter `child` (appended after its last entry)."""
    pf = _fresh(host, parent)
    if pf is None:
        raise FilterError("not-found", f"network filter {parent!r} does not exist")
    if _fresh(host, child) is None:
        raise FilterError("not-found", f"network filter {child!r} does not exist")
    if child in pf.refs():
        raise FilterError("exists", f"network filter {parent!r} already references {child!r}")
    if _reaches(host, child, parent):
        raise FilterError("loop", f"network filter {child!r} references {parent!r}: "
                                  f"{parent!r} referencing it would make a loop")
    entries = [el for el in pf.root if el.tag in ("rule", "filterref")]
    new = etree.Element("filterref", filter=child)
    if entries:
        new.tail = entries[-1].tail
        entries[-1].tail = _indent_after(entries[-1])
        entries[-1].addnext(new)
    else:
        pf.root.append(new)
    _define(host, pf.tostring(), f"adding {child!r} to network filter {parent!r}")


def _indent_after(el: Any) -> Optional[str]:
    """The whitespace between siblings, taken from the element before `el` if any."""
    prev = el.getprevious()
    if prev is not None and prev.tail is not None:
        return prev.tail
    return el.getparent().text


def remove_ref(host: Host, parent: str, child: str) -> None:
    """Remove filter `parent`'s reference to `child`; FilterError('not-found') if none."""
    pf = _fresh(host, parent)
    if pf is None:
        raise FilterError("not-found", f"network filter {parent!r} does not exist")
    hit = next((el for el in pf.root.iterfind("filterref") if el.get("filter") == child), None)
    if hit is None:
        raise FilterError("not-found", f"network filter {parent!r} does not reference {child!r}")
    prev = hit.getprevious()
    if prev is not None:
        prev.tail = hit.tail
    else:
        pf.root.text = hit.tail
    pf.root.remove(hit)
    _define(host, pf.tostring(), f"removing {child!r} from network filter {parent!r}")


def _filter_of(iface: Any) -> Optional[str]:
    el = iface.find("filterref") if iface is not None else None
    return el.get("filter") if el is not None else None


def _edit_nic(ref: DomainRef, devid: str, change: Callable[[Any, bool], None],
              want: Optional[str]) -> None:
    """Edit the interface `devid` in the persistent definition and, on a running guest,
    the live one; check that libvirt kept filter `want` (None: no filter) on both.

    ``change(interface element, strict)`` edits one ``<interface>``; `strict`
    (the persistent definition) makes it refuse what the client cannot have.
    """
    host = ref.host
    doc = edit.editable(ref)
    original = doc.tostring()
    s = doc.setting(devid)
    if s is None or s.kind.name != "net":
        raise FilterError("not-found", f"domain {ref.name!r} has no network interface {devid!r}")
    change(s.element, True)
    kind = s.element.get("type")
    new_ref = edit.define(doc)
    _forget(host)
    # libvirt drops a filterref silently where it cannot filter (type 'user'
    # interfaces): say so rather than report a change that did not happen.
    got = edit.editable(new_ref).setting(devid)
    if _filter_of(got.element if got is not None else None) != want:
        raise FilterError("bad-value", f"libvirt does not apply network filters to the "
                                       f"interface {devid!r} of domain {ref.name!r} "
                                       f"(type {kind!r})")
    with host.guard(f"getting the state of domain {ref.name!r}"):
        active = bool(new_ref.dom.isActive())
    if not active:
        return
    try:
        _edit_live(new_ref, devid, change, want)
    except BaseException:
        # The running guest kept its filter: so does its definition.
        with host.guard(f"restoring the definition of domain {ref.name!r}"):
            host.conn().defineXML(original)
        edit.invalidate(host, ref.uuid)
        raise


def _edit_live(ref: DomainRef, devid: str, change: Callable[[Any, bool], None],
               want: Optional[str]) -> None:
    """The live half of :func:`_edit_nic` (virDomainUpdateDeviceFlags, AFFECT_LIVE)."""
    host = ref.host
    with host.guard(f"getting the XML of domain {ref.name!r}"):
        live = DomainXML(ref, parse_xml(fetch_xml_text(ref, XML_FLAGS)))
    s = live.setting(devid)
    if s is None or s.kind.name != "net":
        return      # not plugged in the running guest: its definition is all there is
    change(s.element, False)
    xml = etree.tostring(s.element, encoding="unicode", with_tail=False)
    with host.guard(f"changing the network filter of the running domain {ref.name!r}"):
        ref.dom.updateDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)
    edit.invalidate(host, ref.uuid)
    with host.guard(f"getting the XML of domain {ref.name!r}"):
        after = DomainXML(ref, parse_xml(fetch_xml_text(ref, XML_FLAGS))).setting(devid)
    if after is not None and _filter_of(after.element) != want:
        raise FilterError("bad-value", f"libvirt did not change the network filter of the "
                                       f"interface {devid!r} of the running domain "
                                       f"{ref.name!r}")


def set_nic_filter(ref: DomainRef, devid: str, name: str) -> None:
    """Apply filter `name` to the interface `devid` (MAC) of a domain: its persistent
    definition and, running, the live interface.  An existing ``<filterref>`` keeps its
    ``<parameter>`` children."""
    host = ref.host
    if _fresh(host, name) is None:
        raise FilterError("not-found", f"network filter {name!r} does not exist")

    def change(iface: Any, strict: bool) -> None:
        el = iface.find("filterref")
        if el is None:
            el = etree.SubElement(iface, "filterref")
        el.set("filter", name)
    _edit_nic(ref, devid, change, name)


def clear_nic_filter(ref: DomainRef, devid: str, name: str) -> None:
    """Remove filter `name` from the interface `devid` (persistent definition and live
    interface); FilterError('not-found') if the interface does not apply that filter."""
    def change(iface: Any, strict: bool) -> None:
        el = iface.find("filterref")
        if el is None or el.get("filter") != name:
            if not strict:
                return
            raise FilterError("not-found", f"the network interface {devid!r} of domain "
                                           f"{ref.name!r} does not apply filter {name!r}")
        prev = el.getprevious()
        if prev is not None:
            prev.tail = el.tail
        iface.remove(el)
    _edit_nic(ref, devid, change, None)


# -- rules as CIM sees them --------------------------------------------------------------

def rule_class(rule: Rule) -> str:
    """The class (without family prefix) of a rule: HDR8021, IPHEADERS or ENTRY."""
    proto = rule.protocol
    if proto is None:
        return ENTRY
    if proto.tag in _L2:
        return HDR8021
    if proto.tag in _L3:
        return IPHEADERS
    return ENTRY


def octets(data: bytes) -> list[int]:
    """A DSP0004 octet string: four octets of length (including themselves), then the data."""
    return list((len(data) + 4).to_bytes(4, "big")) + list(data)


def _variable(text: Optional[str]) -> bool:
    return text is not None and text.startswith("$")


def _mac(text: Optional[str]) -> Optional[list[int]]:
    if text is None or _variable(text):
        return None
    parts = text.split(":")
    try:
        raw = bytes(int(p, 16) for p in parts)
    except ValueError:
        return None
    return octets(raw) if len(raw) == 6 else None


def _ip(text: Optional[str]) -> Optional[list[int]]:
    if text is None or _variable(text):
        return None
    try:
        return octets(ipaddress.ip_address(text).packed)
    except ValueError:
        return None


def _mask(text: Optional[str], v6: bool) -> Optional[list[int]]:
    """A mask given as prefix length ('24') or as an address ('255.255.255.0')."""
    if text is None or _variable(text):
        return None
    if text.isdigit():
        bits = 128 if v6 else 32
        n = int(text)
        if n > bits:
            return None
        value = ((1 << bits) - 1) ^ ((1 << (bits - n)) - 1)
        return octets(value.to_bytes(bits // 8, "big"))
    return _ip(text)


def _number(text: Optional[str], names: Optional[dict[str, int]] = None) -> Optional[int]:
    if text is None or _variable(text):
        return None
    if names is not None and text.lower() in names:
        return names[text.lower()]
    return _int(text)


def _ethertype(text: Optional[str]) -> Optional[int]:
    if text is None or _variable(text):
        return None
    if text.lower() in _ETHERTYPES:
        return _ETHERTYPES[text.lower()]
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    except ValueError:
        return None


def rule_properties(rule: Rule) -> dict[str, Any]:
    """The CIM properties (besides keys) of a rule: {property name: value}, None values
    left out.  Which class's properties they are is :func:`rule_class`."""
    el = rule.element
    out: dict[str, Any] = {
        "Action": ACTIONS.get((el.get("action") or "").lower()),
        "Direction": DIRECTIONS.get((el.get("direction") or "").lower()),
        "Priority": _int(el.get("priority")),
    }
    proto = rule.protocol
    cls = rule_class(rule)
    attrs = rule.match_attrs()
    a = attrs.get
    if cls == HDR8021 and proto is not None:
        out["HdrSrcMACAddr8021"] = _mac(a("srcmacaddr"))
        out["HdrSrcMACMask8021"] = _mac(a("srcmacmask"))
        out["HdrDestMACAddr8021"] = _mac(a("dstmacaddr"))
        out["HdrDestMACMask8021"] = _mac(a("dstmacmask"))
        if proto.tag == "mac":
            out["HdrProtocolID8021"] = _ethertype(a("protocolid"))
        else:
            out["HdrProtocolID8021"] = _ELEMENT_ETHERTYPE.get(proto.tag)
        if proto.tag == "vlan":
            out["HdrVLANID8021"] = _number(a("vlanid"))
    elif cls == IPHEADERS and proto is not None:
        v6 = proto.tag.endswith("ipv6") or proto.tag == "icmpv6"
        out["HdrIPVersion"] = 6 if v6 else 4
        if a("srcipfrom") is not None or a("srcipto") is not None:
            out["HdrSrcAddress"] = _ip(a("srcipfrom"))
            out["HdrSrcAddressEndOfRange"] = _ip(a("srcipto"))
        else:
            out["HdrSrcAddress"] = _ip(a("srcipaddr"))
            out["HdrSrcMask"] = _mask(a("srcipmask"), v6)
        if a("dstipfrom") is not None or a("dstipto") is not None:
            out["HdrDestAddress"] = _ip(a("dstipfrom"))
            out["HdrDestAddressEndOfRange"] = _ip(a("dstipto"))
        else:
            out["HdrDestAddress"] = _ip(a("dstipaddr"))
            out["HdrDestMask"] = _mask(a("dstipmask"), v6)
        base = proto.tag.split("-", 1)[0]
        if base in ("ip", "ipv6"):
            out["HdrProtocolID"] = _number(a("protocol"), _IP_PROTOCOLS)
        else:
            out["HdrProtocolID"] = _IP_PROTOCOLS.get(base)
        for attr, prop in (("srcportstart", "HdrSrcPortStart"), ("srcportend", "HdrSrcPortEnd"),
                           ("dstportstart", "HdrDestPortStart"),
                           ("dstportend", "HdrDestPortEnd")):
            out[prop] = _number(a(attr))
        dscp = _number(a("dscp"))
        out["HdrDSCP"] = [dscp] if dscp is not None else None
    else:
        # CIM_FilterEntry: a rule on all traffic, or on a protocol without header
        # properties in CIM (STP).
        if proto is None:
            out["TrafficType"], out["MatchConditionType"] = 4, 13        # Any, Any
        else:
            out["TrafficType"], out["OtherTrafficType"] = 5, proto.tag.upper()   # Other
            out["MatchConditionType"], out["OtherMatchConditionType"] = 1, proto.tag
    return {k: v for k, v in out.items() if v is not None}
