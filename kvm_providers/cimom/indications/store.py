"""The indication service's store: filters, listener destinations, subscriptions.

:class:`Store` holds the records (under its lock), builds and checks new
ones from the instances clients give (defaults for the keys, the query
parsed and checked against the schema, the listener URL parsed and checked
by the :class:`.policy.DestinationPolicy`), finds them by the paths clients
give (namespace aliases and key case tolerated) and lists them, always
through the :class:`.policy.AccessPolicy`: another user's object is answered
as if it did not exist.  The sequence of a change (checks, provider
activation, saving, undoing) is the :class:`.manager.IndicationManager`'s.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Optional

import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName

from ...schema import Schema
from ..names import BRAND, INTEROP
from ..wql import parse_query
from .delivery import Destination
from .model import (FILTER_CLASS, PERSIST_OTHER, PERSIST_PERMANENT, PERSIST_TRANSIENT,
                    SYSTEM_CCN, Filter, Named, Subscription, bad, canonical_ns, show, value)
from .policy import AccessPolicy, DestinationPolicy, DestinationURL, parse_destination

__all__ = ["Store", "SYSTEM"]

#: The server itself (restoring its state, expiring subscriptions): sees everything.
SYSTEM = object()


class Store:
    """The filters, destinations and subscriptions, and who may see them.

    `lock` guards the tables; it is held briefly (no network, no provider
    calls under it).
    """

    def __init__(self, schema: Schema, hostname: str, access: AccessPolicy,
                 destination_policy: DestinationPolicy):
        self.schema = schema
        self.hostname = hostname
        self.access = access
        self.destination_policy = destination_policy
        self.lock = threading.RLock()
        self.filter_recs: dict[str, Filter] = {}          # Name -> filter
        self.dest_recs: dict[str, Destination] = {}       # Name -> destination
        self.subs: list[Subscription] = []

    def users_of(self, rec: Named) -> list[Subscription]:
        """The subscriptions of filter or destination `rec`."""
        return [s for s in self.subs if rec in (s.filter, s.dest)]

    def key_defaults(self, inst: CIMInstance, classname: str, what: str) -> None:
        ccn = value(inst, "CreationClassName")
        if ccn is not None and ccn.lower() != classname.lower():
            raise bad(f"CreationClassName {ccn!r} of a new {what} must be {classname}")
        inst["CreationClassName"] = classname
        if value(inst, "SystemCreationClassName") is None:
            inst["SystemCreationClassName"] = SYSTEM_CCN
        if value(inst, "SystemName") is None:
            inst["SystemName"] = self.hostname
        name = value(inst, "Name")
        if name is None or (isinstance(name, str) and not name.strip()):
            inst["Name"] = f"{BRAND}:{what.replace(' ', '')}:{uuid.uuid4()}"

    def path_of(self, inst: CIMInstance, classname: str) -> CIMInstanceName:
        keys = self.schema.spec(INTEROP, classname).key_names
        return CIMInstanceName(classname, namespace=INTEROP,
                               keybindings=[(k, inst[k]) for k in keys])

    def build_filter(self, inst: CIMInstance, owner: Optional[str]) -> Filter:
        """Check a filter and complete it; CIM errors name what is wrong."""
        self.key_defaults(inst, FILTER_CLASS, "filter")
        query_text = value(inst, "Query")
        language = value(inst, "QueryLanguage")
        if not isinstance(query_text, str) or not query_text.strip():
            raise bad(f"Filter {inst['Name']!r}: Query is required")
        if not isinstance(language, str) or not language.strip():
            raise bad(f"Filter {inst['Name']!r}: QueryLanguage is required "
                      "(WQL or DMTF:CQL)")
        if value(inst, "TemplateVariable"):
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                           f"Filter {inst['Name']!r}: TemplateVariable (DMTF:CQLT) is not "
                           "supported")
        source_ns = self.source_namespaces(inst)
        schema = self.schema

        def is_subclass(sub: str, sup: str) -> bool:
            return any(schema.has_class(ns, sub) and schema.is_subclass(ns, sub, sup)
                       for ns in source_ns)
        query = parse_query(language, query_text, is_subclass)
        for ns in source_ns:
            if not schema.has_class(ns, query.classname):
                raise CIMError(pywbem.CIM_ERR_INVALID_QUERY,
                               f"Filter {inst['Name']!r}: class {query.classname!r} of the "
                               f"query does not exist in source namespace {ns}")
            spec = schema.spec(ns, query.classname)
            if not (spec.is_indication or spec.is_a("CIM_Indication")):
                raise CIMError(pywbem.CIM_ERR_INVALID_QUERY,
                               f"Filter {inst['Name']!r}: class {spec.name} of the query is "
                               "not an indication class")
            for prop in (query.select or []) + query.where_props:
                if prop.lower() not in spec.props:
                    raise CIMError(pywbem.CIM_ERR_INVALID_QUERY,
                                   f"Filter {inst['Name']!r}: indication class {spec.name} "
                                   f"has no property {prop!r}")
        inst["SourceNamespaces"] = list(source_ns)
        if value(inst, "IndividualSubscriptionSupported") is None:
            inst["IndividualSubscriptionSupported"] = True
        inst.path = self.path_of(inst, FILTER_CLASS)
        return Filter(inst, query, tuple(source_ns), owner)

    def source_namespaces(self, inst: CIMInstance) -> list[str]:
        given = value(inst, "SourceNamespaces")
        single = value(inst, "SourceNamespace")
        names = list(given) if given else ([single] if single else [INTEROP])
        out: list[str] = []
        for ns in names:
            canon = canonical_ns(self.schema, ns) if isinstance(ns, str) else None
            if canon is None:
                raise bad(f"Filter {inst['Name']!r}: source namespace {ns!r} does not exist "
                          f"(namespaces: {', '.join(self.schema.namespaces)})")
            if canon not in out:
                out.append(canon)
        if given and single:
            canon = canonical_ns(self.schema, single)
            if canon not in out:
                raise bad(f"Filter {inst['Name']!r}: SourceNamespace {single!r} is not one of "
                          f"SourceNamespaces {list(given)}")
        return out

    def find_filter(self, path: CIMInstanceName, what: str = "", user: Any = None) -> Filter:
        filt = self.lookup(self.filter_recs, path, FILTER_CLASS, user)
        if filt is None:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND if not what else
                           pywbem.CIM_ERR_INVALID_PARAMETER,
                           f"{what}Indication filter {show(path)} does not exist")
        return filt

    def lookup(self, table: dict, path: Any, classname: str, user: Any):
        """The record that `path` names (namespace aliases and key case tolerated), if
        `user` may see it (SYSTEM: the server itself, sees everything)."""
        if not isinstance(path, CIMInstanceName):
            return None
        if path.namespace and canonical_ns(self.schema, path.namespace) != INTEROP:
            return None
        keys = {k.lower(): v for k, v in path.keybindings.items()}
        with self.lock:
            rec = table.get(keys.get("name"))
            if rec is None:
                return None
            if path.classname.lower() != rec.path.classname.lower() and \
                    not self.schema.is_subclass(INTEROP, rec.path.classname, path.classname):
                return None
            for k, v in rec.path.keybindings.items():
                given = keys.get(k.lower())
                if given is None:
                    return None
                if k.lower() in ("systemname", "creationclassname", "systemcreationclassname"):
                    if str(given).lower() != str(v).lower():
                        return None
                elif given != v:
                    return None
            if user is not SYSTEM and not self.access.may_access(user, rec.owner):
                return None
            return rec

    def filters(self, user: Optional[str] = None) -> list[CIMInstance]:
        """The filters `user` may see."""
        with self.lock:
            return [f.inst.copy() for f in self.filter_recs.values()
                    if self.access.may_access(user, f.owner)]

    def get_filter(self, path: CIMInstanceName,
                   user: Optional[str] = None) -> Optional[CIMInstance]:
        filt = self.lookup(self.filter_recs, path, FILTER_CLASS, user)
        return None if filt is None else filt.inst.copy()

    # -- destinations -------------------------------------------------------------------

    def build_destination(self, inst: CIMInstance, classname: str, owner: Optional[str],
                          check_address: bool = True) -> tuple[CIMInstance, DestinationURL]:
        self.key_defaults(inst, classname, "listener destination")
        url = parse_destination(value(inst, "Destination"))
        protocol = value(inst, "Protocol")
        if protocol is None:
            inst["Protocol"] = pywbem.Uint16(2)
        elif int(protocol) != 2:
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                           f"Listener destination {inst['Name']!r}: Protocol {protocol} is not "
                           "supported (2, CIM-XML)")
        persistence = value(inst, "PersistenceType")
        if persistence is None:
            inst["PersistenceType"] = pywbem.Uint16(PERSIST_PERMANENT)
        elif int(persistence) not in (PERSIST_OTHER, PERSIST_PERMANENT, PERSIST_TRANSIENT):
            raise bad(f"Listener destination {inst['Name']!r}: PersistenceType "
                      f"{persistence} is not 1 (Other), 2 (Permanent) or 3 (Transient)")
        if classname == "CIM_IndicationHandlerCIMXML" and value(inst, "Owner") is None \
                and owner:
            inst["Owner"] = owner
        if check_address:
            # Last: the other checks need no name resolution.
            self.destination_policy.check(url, f"Listener destination {inst['Name']!r}")
        inst.path = self.path_of(inst, classname)
        return inst, url

    def find_dest(self, path: CIMInstanceName, what: str = "",
                  user: Any = None) -> Destination:
        dest = self.lookup(self.dest_recs, path, "CIM_ListenerDestination", user)
        if dest is None:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND if not what else
                           pywbem.CIM_ERR_INVALID_PARAMETER,
                           f"{what}Listener destination {show(path)} does not exist")
        return dest

    def destinations(self, classname: str, user: Optional[str] = None) -> list[CIMInstance]:
        """The destinations of class `classname` that `user` may see."""
        with self.lock:
            return [d.inst.copy() for d in self.dest_recs.values()
                    if d.path.classname.lower() == classname.lower() and
                    self.access.may_access(user, d.owner)]

    def get_destination(self, path: CIMInstanceName,
                        user: Optional[str] = None) -> Optional[CIMInstance]:
        dest = self.lookup(self.dest_recs, path, "CIM_ListenerDestination", user)
        return None if dest is None else dest.inst.copy()

    # -- subscriptions ----------------------------------------------------------------

    def sub_instance(self, sub: Subscription) -> CIMInstance:
        inst = sub.inst.copy()
        if sub.duration:
            left = max(0, int(sub.started + sub.duration - time.time()))
            inst["SubscriptionTimeRemaining"] = pywbem.Uint64(left)
        return inst

    def subscriptions(self, user: Optional[str] = None) -> list[CIMInstance]:
        """The subscriptions `user` may see."""
        with self.lock:
            return [self.sub_instance(s) for s in self.subs
                    if self.access.may_access(user, s.owner)]

    def get_subscription(self, path: CIMInstanceName,
                         user: Optional[str] = None) -> Optional[CIMInstance]:
        sub = self.lookup_sub(path, user)
        return None if sub is None else self.sub_instance(sub)

    def lookup_sub(self, path: Any, user: Any) -> Optional[Subscription]:
        if not isinstance(path, CIMInstanceName):
            return None
        if path.namespace and canonical_ns(self.schema, path.namespace) != INTEROP:
            return None
        keys = {k.lower(): v for k, v in path.keybindings.items()}
        # The subscription's own owner decides (an administrator's subscription may
        # use a user's filter): the filter and destination are found as the server.
        filt = self.lookup(self.filter_recs, keys.get("filter"), FILTER_CLASS, SYSTEM)
        dest = self.lookup(self.dest_recs, keys.get("handler"), "CIM_ListenerDestination",
                            SYSTEM)
        if filt is None or dest is None:
            return None
        with self.lock:
            for s in self.subs:
                if s.filter is filt and s.dest is dest:
                    return s if user is SYSTEM or self.access.may_access(user, s.owner) \
                        else None
        return None
