"""The CIM-XML dispatcher: a parsed request in, the XML of its response out.

Every intrinsic operation of DSP0200 1.4 that a read-only class repository
allows is served here; their parameters are checked against a table (unknown,
missing or ill-typed parameters: CIM_ERR_INVALID_PARAMETER naming the
parameter).  Responses are produced as a stream of text parts so that large
enumerations need not be held twice in memory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

import pywbem
from pywbem import CIMClass, CIMClassName, CIMError, CIMInstance, CIMInstanceName

from ..cimxml import writer as W
from ..cimxml.reader import Param, Request, typed_text, CIMXMLError
from ..provider._fastcim import copy_path
from ..provider.values import INT_TYPES
from . import pull as P
from .http import client_address
from .names import NAMESPACE_ALIASES
from .providers import Operations
from .wql import parse_query

__all__ = ["BatchBudget", "Dispatcher", "NAMESPACE_ALIASES"]

LOG = logging.getLogger("kvm_providers.cimom")


# Parameter kinds of intrinsic operations.
CLASSNAME, INSTNAME, OBJNAME, BOOL, STRING, UINT32, PLIST, INSTANCE, NAMEDINST = (
    "classname", "instancename", "objectname", "boolean", "string", "uint32",
    "propertylist", "instance", "namedinstance")


@dataclass(frozen=True)
class P_:
    kind: str
    default: Any = None
    required: bool = False


REQ = True
_PULL_COMMON = {"FilterQueryLanguage": P_(STRING), "FilterQuery": P_(STRING),
                "OperationTimeout": P_(UINT32), "ContinueOnError": P_(BOOL, False),
                "MaxObjectCount": P_(UINT32, 0)}

OP_PARAMS: dict[str, dict[str, P_]] = {
    "GetClass": {"ClassName": P_(CLASSNAME, required=REQ), "LocalOnly": P_(BOOL, True),
                 "IncludeQualifiers": P_(BOOL, True), "IncludeClassOrigin": P_(BOOL, False),
                 "PropertyList": P_(PLIST)},
    "EnumerateClasses": {"ClassName": P_(CLASSNAME), "DeepInheritance": P_(BOOL, False),
                         "LocalOnly": P_(BOOL, True), "IncludeQualifiers": P_(BOOL, True),
                         "IncludeClassOrigin": P_(BOOL, False)},
    "EnumerateClassNames": {"ClassName": P_(CLASSNAME), "DeepInheritance": P_(BOOL, False)},
    "GetInstance": {"InstanceName": P_(INSTNAME, required=REQ), "LocalOnly": P_(BOOL),
                    "IncludeQualifiers": P_(BOOL, False), "IncludeClassOrigin": P_(BOOL, False),
                    "PropertyList": P_(PLIST)},
    "EnumerateInstances": {"ClassName": P_(CLASSNAME, required=REQ), "LocalOnly": P_(BOOL),
                           "DeepInheritance": P_(BOOL, True),
                           "IncludeQualifiers": P_(BOOL, False),
                           "IncludeClassOrigin": P_(BOOL, False), "PropertyList": P_(PLIST)},
    "EnumerateInstanceNames": {"ClassName": P_(CLASSNAME, required=REQ)},
    "Associators": {"ObjectName": P_(OBJNAME, required=REQ), "AssocClass": P_(CLASSNAME),
                    "ResultClass": P_(CLASSNAME), "Role": P_(STRING), "ResultRole": P_(STRING),
                    "IncludeQualifiers": P_(BOOL, False), "IncludeClassOrigin": P_(BOOL, False),
                    "PropertyList": P_(PLIST)},
    "AssociatorNames": {"ObjectName": P_(OBJNAME, required=REQ), "AssocClass": P_(CLASSNAME),
                        "ResultClass": P_(CLASSNAME), "Role": P_(STRING),
                        "ResultRole": P_(STRING)},
    "References": {"ObjectName": P_(OBJNAME, required=REQ), "ResultClass": P_(CLASSNAME),
                   "Role": P_(STRING), "IncludeQualifiers": P_(BOOL, False),
                   "IncludeClassOrigin": P_(BOOL, False), "PropertyList": P_(PLIST)},
    "ReferenceNames": {"ObjectName": P_(OBJNAME, required=REQ), "ResultClass": P_(CLASSNAME),
                       "Role": P_(STRING)},
    "CreateInstance": {"NewInstance": P_(INSTANCE, required=REQ)},
    "ModifyInstance": {"ModifiedInstance": P_(NAMEDINST, required=REQ),
                       "IncludeQualifiers": P_(BOOL, True), "PropertyList": P_(PLIST)},
    "DeleteInstance": {"InstanceName": P_(INSTNAME, required=REQ)},
    "GetProperty": {"InstanceName": P_(INSTNAME, required=REQ),
                    "PropertyName": P_(STRING, required=REQ)},
    "SetProperty": {"InstanceName": P_(INSTNAME, required=REQ),
                    "PropertyName": P_(STRING, required=REQ), "NewValue": P_("raw")},
    "GetQualifier": {"QualifierName": P_(STRING, required=REQ)},
    "EnumerateQualifiers": {},
    "ExecQuery": {"QueryLanguage": P_(STRING, required=REQ), "Query": P_(STRING, required=REQ)},
    "OpenEnumerateInstances": dict({"ClassName": P_(CLASSNAME, required=REQ),
                                    "DeepInheritance": P_(BOOL, True),
                                    "IncludeClassOrigin": P_(BOOL, False),
                                    "PropertyList": P_(PLIST)}, **_PULL_COMMON),
    "OpenEnumerateInstancePaths": dict({"ClassName": P_(CLASSNAME, required=REQ)},
                                       **_PULL_COMMON),
    "OpenAssociatorInstances": dict({"InstanceName": P_(INSTNAME, required=REQ),
                                     "AssocClass": P_(CLASSNAME), "ResultClass": P_(CLASSNAME),
                                     "Role": P_(STRING), "ResultRole": P_(STRING),
                                     "IncludeClassOrigin": P_(BOOL, False),
                                     "PropertyList": P_(PLIST)}, **_PULL_COMMON),
    "OpenAssociatorInstancePaths": dict({"InstanceName": P_(INSTNAME, required=REQ),
                                         "AssocClass": P_(CLASSNAME),
                                         "ResultClass": P_(CLASSNAME), "Role": P_(STRING),
                                         "ResultRole": P_(STRING)}, **_PULL_COMMON),
    "OpenReferenceInstances": dict({"InstanceName": P_(INSTNAME, required=REQ),
                                    "ResultClass": P_(CLASSNAME), "Role": P_(STRING),
                                    "IncludeClassOrigin": P_(BOOL, False),
                                    "PropertyList": P_(PLIST)}, **_PULL_COMMON),
    "OpenReferenceInstancePaths": dict({"InstanceName": P_(INSTNAME, required=REQ),
                                        "ResultClass": P_(CLASSNAME), "Role": P_(STRING)},
                                       **_PULL_COMMON),
    "OpenQueryInstances": {"FilterQuery": P_(STRING, required=REQ),
                           "FilterQueryLanguage": P_(STRING, required=REQ),
                           "ReturnQueryResultClass": P_(BOOL, False),
                           "OperationTimeout": P_(UINT32), "ContinueOnError": P_(BOOL, False),
                           "MaxObjectCount": P_(UINT32, 0)},
    "PullInstancesWithPath": {"EnumerationContext": P_(STRING, required=REQ),
                              "MaxObjectCount": P_(UINT32, required=REQ)},
    "PullInstancePaths": {"EnumerationContext": P_(STRING, required=REQ),
                          "MaxObjectCount": P_(UINT32, required=REQ)},
    "PullInstances": {"EnumerationContext": P_(STRING, required=REQ),
                      "MaxObjectCount": P_(UINT32, required=REQ)},
    "CloseEnumeration": {"EnumerationContext": P_(STRING, required=REQ)},
    "EnumerationCount": {"EnumerationContext": P_(STRING, required=REQ)},
}
_OP_NAMES = {name.lower(): name for name in OP_PARAMS}
_LOWER_PARAMS = {op: frozenset(k.lower() for k in table) for op, table in OP_PARAMS.items()}
_READ_ONLY_REPOSITORY = {"createclass", "modifyclass", "deleteclass", "setqualifier",
                         "deletequalifier"}


def _bad(msg: str) -> CIMError:
    return CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, msg)


def _convert(op: str, pname: str, spec: P_, value: Any) -> Any:
    where = f"{op} parameter {pname}"
    if value is None:
        return spec.default
    kind = spec.kind
    if kind == "raw":
        return value
    if kind == CLASSNAME:
        if isinstance(value, CIMClassName):
            return value.classname
        if isinstance(value, str) and value.strip():  # lenient: a plain VALUE
            return value.strip()
        raise _bad(f"{where} must be a CLASSNAME")
    if kind == INSTNAME:
        if isinstance(value, CIMInstanceName):
            return value
        raise _bad(f"{where} must be an INSTANCENAME")
    if kind == OBJNAME:
        if isinstance(value, (CIMInstanceName, CIMClassName)):
            return value
        raise _bad(f"{where} must be a CLASSNAME or INSTANCENAME")
    if kind == BOOL:
        if isinstance(value, str):
            try:
                return typed_text(value, "boolean", where)
            except CIMXMLError as exc:
                raise _bad(str(exc)) from None
        raise _bad(f"{where} must be a boolean VALUE")
    if kind == STRING:
        if isinstance(value, str):
            return value
        raise _bad(f"{where} must be a string VALUE")
    if kind == UINT32:
        if isinstance(value, str):
            try:
                return int(typed_text(value, "uint32", where))
            except CIMXMLError as exc:
                raise _bad(str(exc)) from None
        raise _bad(f"{where} must be a uint32 VALUE")
    if kind == PLIST:
        if isinstance(value, list):
            if any(v is None for v in value):
                raise _bad(f"{where} holds a NULL entry")
            return [v.strip() for v in value]
        if isinstance(value, str):  # a single VALUE instead of VALUE.ARRAY
            return [value.strip()]
        raise _bad(f"{where} must be a VALUE.ARRAY of property names")
    if kind == INSTANCE:
        if isinstance(value, CIMInstance):
            return value
        raise _bad(f"{where} must be an INSTANCE")
    if kind == NAMEDINST:
        if isinstance(value, CIMInstance) and value.path is not None:
            return value
        raise _bad(f"{where} must be a VALUE.NAMEDINSTANCE")
    raise AssertionError(kind)


class BatchBudget:
    """The limits of one MULTIREQ while its operations run (issue 9: amplification).

    DSP0201 wants one SIMPLERSP per SIMPLEREQ, in order, and DSP0200 has no
    HTTP-level status for "batch too large"; so an operation past a limit is
    answered like any failed operation: an ERROR element, CIM_ERR_SERVER_LIMITS_EXCEEDED,
    in its own SIMPLERSP, and is not run.  A batch of more than `max_requests`
    operations runs none of them; once the responses of a batch reach
    `max_response` characters of XML, the operation whose response crossed the
    limit (its partial response dropped where the response is collected, not
    when it is streamed) and every later one get that error.
    """

    def __init__(self, count: int, max_requests: int, max_response: int):
        self.max_response = max_response
        self.used = 0
        self.refused: Optional[CIMError] = None
        if count > max_requests:
            self.refused = CIMError(
                pywbem.CIM_ERR_SERVER_LIMITS_EXCEEDED,
                f"a batch (MULTIREQ) of {count} operations is over the limit of "
                f"{max_requests} (max_batch_requests); none of them was run")

    def spend(self, size: int) -> bool:
        """Count `size` characters of response; True once the batch is over its limit."""
        self.used += size
        if self.used > self.max_response and self.refused is None:
            self.refused = CIMError(
                pywbem.CIM_ERR_SERVER_LIMITS_EXCEEDED,
                f"the responses of this batch (MULTIREQ) reached the limit of "
                f"{self.max_response} bytes (max_batch_response); this operation and the "
                "later ones of the batch were not answered")
        return self.refused is not None


class Dispatcher:
    """Request -> response XML, for one server."""

    def __init__(self, ops: Operations, pull: P.PullManager, hostname: str,
                 max_batch_requests: int = 100, max_batch_response: int = 32 * 1024 * 1024):
        self.ops = ops
        self.schema = ops.schema
        self.pull = pull
        self.hostname = hostname
        self.max_batch_requests = max_batch_requests
        self.max_batch_response = max_batch_response

    def batch_budget(self, count: int) -> BatchBudget:
        """The limits for a MULTIREQ of `count` operations."""
        return BatchBudget(count, self.max_batch_requests, self.max_batch_response)

    # -- namespaces ----------------------------------------------------------

    def canonical_ns(self, namespace: str) -> str:
        """The namespace's canonical name; CIM_ERR_INVALID_NAMESPACE if there is none."""
        ns = (namespace or "").strip().strip("/")
        ns = NAMESPACE_ALIASES.get(ns.lower(), ns)
        for known in self.schema.namespaces:
            if known.lower() == ns.lower():
                return known
        raise CIMError(pywbem.CIM_ERR_INVALID_NAMESPACE,
                       f"Namespace {namespace!r} does not exist (namespaces: "
                       f"{', '.join(self.schema.namespaces)})")

    # -- entry -------------------------------------------------------------------

    def execute(self, req: Request, user: Optional[str] = None) -> Iterator[str]:
        """The response element of `req` as text parts.

        Errors detected before the response starts are raised as CIMError;
        the caller writes them as an ERROR element.
        """
        if req.intrinsic:
            return self._intrinsic(req, user)
        return self._extrinsic(req, user)

    def _params(self, op: str, req: Request) -> dict[str, Any]:
        table = OP_PARAMS[op]
        out: dict[str, Any] = {}
        lower = _LOWER_PARAMS[op]
        for lname, param in req.params.items():
            if lname not in lower:
                raise _bad(f"{op} has no parameter {param.name!r}")
        for pname, spec in table.items():
            given = req.params.get(pname.lower())
            if given is None or given.value is None:
                if spec.required:
                    raise _bad(f"{op} needs parameter {pname}")
                out[pname] = spec.default
            else:
                out[pname] = _convert(op, pname, spec, given.value)
        return out

    def _intrinsic(self, req: Request, user: Optional[str]) -> Iterator[str]:
        lname = req.name.lower()
        if lname in _READ_ONLY_REPOSITORY:
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                           f"{req.name}: the class repository of this server is read-only")
        op = _OP_NAMES.get(lname)
        if op is None:
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                           f"Operation {req.name!r} is not supported")
        ns = self.canonical_ns(req.namespace)
        params = self._params(op, req)
        handler: Callable = getattr(self, f"op_{op}")
        body, extra = handler(ns, params, user)
        return self._imethod_response(op, body, extra)

    @staticmethod
    def _imethod_response(op: str, body: Optional[Iterable[str]],
                          extra: Iterable[str]) -> Iterator[str]:
        yield f'<IMETHODRESPONSE NAME="{op}">'
        if body is not None:
            yield "<IRETURNVALUE>"
            yield from body
            yield "</IRETURNVALUE>"
        yield from extra
        yield "</IMETHODRESPONSE>"

    # -- helpers -------------------------------------------------------------------

    def _origins(self, ns: str, classname: str, include: bool) -> Optional[dict[str, str]]:
        if not include:
            return None
        spec = self.schema.spec(ns, classname)
        origins = spec._cache.get("origins")
        if origins is None:
            origins = spec._cache["origins"] = {k: p.class_origin for k, p in spec.props.items()}
        return origins

    def _inst(self, inst: CIMInstance, ns: str, include_origin: bool) -> str:
        return W.instance_xml(inst, self._origins(ns, inst.classname, include_origin))

    def _named(self, inst: CIMInstance, ns: str, include_origin: bool) -> str:
        return (f"<VALUE.NAMEDINSTANCE>{W.instancename_xml(inst.path)}"
                f"{self._inst(inst, ns, include_origin)}</VALUE.NAMEDINSTANCE>")

    def _with_path(self, inst: CIMInstance, ns: str, include_origin: bool,
                   tag: str = "VALUE.OBJECTWITHPATH") -> str:
        return (f"<{tag}>{W.instancepath_xml(inst.path, self.hostname, ns)}"
                f"{self._inst(inst, ns, include_origin)}</{tag}>")

    def _objpath(self, path: CIMInstanceName, ns: str) -> str:
        return f"<OBJECTPATH>{W.instancepath_xml(path, self.hostname, ns)}</OBJECTPATH>"

    def _class(self, cls: CIMClass, local_only: bool, include_qualifiers: bool,
               include_origin: bool, property_list: Optional[list[str]] = None) -> CIMClass:
        """A copy of `cls` shaped by the GetClass/EnumerateClasses flags."""
        # CIMClass.copy() shares its property and method objects with the schema:
        # copy those that are changed below.
        out = cls.copy()
        out.properties = [p.copy() for p in cls.properties.values()]
        out.methods = [m.copy() for m in cls.methods.values()]
        wanted = None if property_list is None else {p.lower() for p in property_list}
        for name, prop in list(out.properties.items()):
            origin = prop.class_origin or cls.classname
            if (local_only and origin.lower() != cls.classname.lower()) or \
                    (wanted is not None and name.lower() not in wanted):
                del out.properties[name]
                continue
            prop.class_origin = origin if include_origin else None
            prop.propagated = (origin.lower() != cls.classname.lower()) \
                if include_origin else None
            if not include_qualifiers:
                prop.qualifiers = {}
        for name, meth in list(out.methods.items()):
            origin = meth.class_origin or cls.classname
            if local_only and origin.lower() != cls.classname.lower():
                del out.methods[name]
                continue
            meth.class_origin = origin if include_origin else None
            meth.propagated = (origin.lower() != cls.classname.lower()) \
                if include_origin else None
            if not include_qualifiers:
                meth.qualifiers = {}
                # CIMMethod.copy() shares its parameters with the schema's class.
                meth.parameters = {n: prm.copy() for n, prm in meth.parameters.items()}
                for prm in meth.parameters.values():
                    prm.qualifiers = {}
        if not include_qualifiers:
            out.qualifiers = {}
        out.path = None
        return out

    # -- class operations ------------------------------------------------------

    def op_GetClass(self, ns, p, user):
        cls = self.schema.get_class(ns, p["ClassName"])
        out = self._class(cls, p["LocalOnly"], p["IncludeQualifiers"],
                          p["IncludeClassOrigin"], p["PropertyList"])
        return [W.class_xml(out)], ()

    def op_EnumerateClasses(self, ns, p, user):
        names = self.schema.class_names(ns, p["ClassName"], p["DeepInheritance"])
        return (W.class_xml(self._class(self.schema.get_class(ns, n), p["LocalOnly"],
                                        p["IncludeQualifiers"], p["IncludeClassOrigin"]))
                for n in names), ()

    def op_EnumerateClassNames(self, ns, p, user):
        names = self.schema.class_names(ns, p["ClassName"], p["DeepInheritance"])
        return [W.classname_xml(n) for n in names], ()

    def op_GetQualifier(self, ns, p, user):
        return [W.qualifier_decl_xml(self.schema.get_qualifier(ns, p["QualifierName"]))], ()

    def op_EnumerateQualifiers(self, ns, p, user):
        return [W.qualifier_decl_xml(q) for q in self.schema.qualifiers(ns)], ()

    # -- instance operations ------------------------------------------------------

    def op_GetInstance(self, ns, p, user):
        return [self.ops.get_instance_xml(p["InstanceName"], p["PropertyList"], user, ns,
                                          p["IncludeClassOrigin"])], ()

    def op_EnumerateInstances(self, ns, p, user):
        form = W.InstanceForm("VALUE.NAMEDINSTANCE", ns, origin=p["IncludeClassOrigin"])
        return self.ops.enum_instances_xml(ns, p["ClassName"], p["PropertyList"],
                                           p["DeepInheritance"], user, form), ()

    def op_EnumerateInstanceNames(self, ns, p, user):
        names = self.ops.enum_instance_names(ns, p["ClassName"], user)
        return (W.instancename_xml(n) for n in names), ()

    def op_CreateInstance(self, ns, p, user):
        path = self.ops.create_instance(ns, p["NewInstance"], user)
        return [W.instancename_xml(path)], ()

    def op_ModifyInstance(self, ns, p, user):
        self.ops.modify_instance(ns, p["ModifiedInstance"], p["PropertyList"], user)
        return None, ()

    def op_DeleteInstance(self, ns, p, user):
        self.ops.delete_instance(p["InstanceName"], user, ns)
        return None, ()

    def op_GetProperty(self, ns, p, user):
        inst = self.ops.get_instance(p["InstanceName"], [p["PropertyName"]], user, ns)
        prop = inst.properties.get(p["PropertyName"])
        if prop is None:
            spec = self.schema.spec(ns, inst.classname)
            if p["PropertyName"].lower() not in spec.props:
                raise _bad(f"Class {inst.classname} has no property {p['PropertyName']!r}")
            return [], ()
        if prop.value is None:
            return [], ()
        return [W._value_xml(prop.type, prop.is_array, prop.value)], ()

    def op_SetProperty(self, ns, p, user):
        path = p["InstanceName"]
        spec = self.schema.spec(path.namespace or ns, path.classname)
        pspec = spec.props.get(p["PropertyName"].lower())
        if pspec is None:
            raise _bad(f"Class {spec.name} has no property {p['PropertyName']!r}")
        inst = CIMInstance(spec.name, path=path)
        value = p["NewValue"]
        inst.properties[pspec.name] = pywbem.CIMProperty(
            pspec.name, None, type=pspec.type, is_array=pspec.is_array)
        if value is not None:
            from ..provider import coerce
            try:
                inst.properties[pspec.name].value = coerce(pspec.type, pspec.is_array, value)
            except (ValueError, TypeError) as exc:
                raise _bad(f"SetProperty {pspec.name}: {exc}") from None
        self.ops.modify_instance(ns, inst, [pspec.name], user)
        return None, ()

    # -- association operations ---------------------------------------------------

    def _obj(self, ns: str, obj):
        if isinstance(obj, CIMInstanceName) and obj.namespace is None:
            obj = copy_path(obj)
            obj.namespace = ns
        return obj

    def op_Associators(self, ns, p, user):
        obj = self._obj(ns, p["ObjectName"])
        if isinstance(obj, CIMClassName):
            return self._class_assoc(ns, obj.classname, p, names=False, refs=False), ()
        insts = self.ops.associators(obj, p["AssocClass"], p["ResultClass"], p["Role"],
                                     p["ResultRole"], p["PropertyList"], user, ns)
        origin = p["IncludeClassOrigin"]
        return (self._with_path(i, i.path.namespace or ns, origin) for i in insts), ()

    def op_AssociatorNames(self, ns, p, user):
        obj = self._obj(ns, p["ObjectName"])
        if isinstance(obj, CIMClassName):
            return self._class_assoc(ns, obj.classname, p, names=True, refs=False), ()
        paths = self.ops.associator_names(obj, p["AssocClass"], p["ResultClass"], p["Role"],
                                          p["ResultRole"], user, ns)
        return (self._objpath(x, ns) for x in paths), ()

    def op_References(self, ns, p, user):
        obj = self._obj(ns, p["ObjectName"])
        if isinstance(obj, CIMClassName):
            return self._class_assoc(ns, obj.classname, p, names=False, refs=True), ()
        insts = self.ops.references(obj, p["ResultClass"], p["Role"], p["PropertyList"],
                                    user, ns)
        origin = p["IncludeClassOrigin"]
        return (self._with_path(i, ns, origin) for i in insts), ()

    def op_ReferenceNames(self, ns, p, user):
        obj = self._obj(ns, p["ObjectName"])
        if isinstance(obj, CIMClassName):
            return self._class_assoc(ns, obj.classname, p, names=True, refs=True), ()
        paths = self.ops.reference_names(obj, p["ResultClass"], p["Role"], user, ns)
        return (self._objpath(x, ns) for x in paths), ()

    def _class_assoc(self, ns: str, classname: str, p: dict, names: bool,
                     refs: bool) -> list[str]:
        """Class-level association operations, answered from the schema."""
        classname = self.ops.check_class(ns, classname)
        assoc_filter = p.get("AssocClass") if not refs else p.get("ResultClass")
        result_filter = p.get("ResultClass") if not refs else None
        role = (p.get("Role") or "").lower()
        result_role = (p.get("ResultRole") or "").lower()
        found: dict[str, None] = {}
        for cls in self.schema.all_classes(ns):
            spec = self.schema.spec(ns, cls.classname)
            if not spec.is_association:
                continue
            if assoc_filter and not spec.is_a(assoc_filter):
                continue
            refs_props = spec.reference_props
            sources = [r for r in refs_props if r.reference_class and
                       self.schema.is_subclass(ns, classname, r.reference_class)
                       and (not role or r.name.lower() == role)]
            if not sources:
                continue
            if refs:
                found[spec.name] = None
                continue
            for src in sources:
                for r in refs_props:
                    if r is src or not r.reference_class:
                        continue
                    if result_role and r.name.lower() != result_role:
                        continue
                    if result_filter and not self.schema.is_subclass(
                            ns, r.reference_class, result_filter):
                        continue
                    found[self.schema.get_class(ns, r.reference_class).classname] = None
        out = []
        for name in found:
            cpath = CIMClassName(name, namespace=ns, host=self.hostname)
            if names:
                out.append(f"<OBJECTPATH>{W.classpath_xml(cpath, self.hostname, ns)}"
                           "</OBJECTPATH>")
            else:
                cls = self._class(self.schema.get_class(ns, name), False,
                                  p.get("IncludeQualifiers", False),
                                  p.get("IncludeClassOrigin", False), p.get("PropertyList"))
                out.append(f"<VALUE.OBJECTWITHPATH>{W.classpath_xml(cpath, self.hostname, ns)}"
                           f"{W.class_xml(cls)}</VALUE.OBJECTWITHPATH>")
        return out

    # -- queries ---------------------------------------------------------------------

    def _query(self, ns: str, language: str, text: str, user: Optional[str]
               ) -> Iterator[CIMInstance]:
        query = parse_query(language, text,
                            lambda sub, sup: self.schema.is_subclass(ns, sub, sup))
        classname = self.ops.check_class(ns, query.classname)
        spec = self.schema.spec(ns, classname)
        for name in (query.select or []) + query.where_props:
            if name.lower() not in spec.props:
                raise CIMError(pywbem.CIM_ERR_INVALID_QUERY,
                               f"WQL: class {classname} has no property {name!r}")
        for inst in self.ops.enum_instances(ns, classname, query.needed_properties(),
                                            True, user):
            if query.matches(inst):
                yield query.project(inst)

    def op_ExecQuery(self, ns, p, user):
        insts = self._query(ns, p["QueryLanguage"], p["Query"], user)
        # Validation errors (bad query, unknown class) must come before the response starts.
        first = list(_take(insts, 1))
        return (self._with_path(i, ns, False) for i in _chain(first, insts)), ()

    # -- pull operations ----------------------------------------------------------------

    def _check_pull(self, op: str, p: dict) -> float:
        if p.get("FilterQueryLanguage") or p.get("FilterQuery"):
            if op != "OpenQueryInstances":
                raise CIMError(pywbem.CIM_ERR_FILTERED_ENUMERATION_NOT_SUPPORTED,
                               f"{op}: filtered enumerations (FilterQuery) are not supported; "
                               "use OpenQueryInstances or ExecQuery")
        if p.get("ContinueOnError"):
            raise CIMError(pywbem.CIM_ERR_CONTINUATION_ON_ERROR_NOT_SUPPORTED,
                           f"{op}: ContinueOnError is not supported")
        return self.pull.check_timeout(p.get("OperationTimeout"))

    def _open(self, ns: str, op: str, pull_op: str, items: Iterable[str], timeout: float,
              max_count: int, user: Optional[str]):
        first, ctx, end = self.pull.open(ns, pull_op, items, timeout, max_count,
                                         P.owner_of(user, client_address()))
        return first, _pull_params(ctx, end)

    def op_OpenEnumerateInstances(self, ns, p, user):
        timeout = self._check_pull("OpenEnumerateInstances", p)
        form = W.InstanceForm("VALUE.INSTANCEWITHPATH", ns, self.hostname,
                              p["IncludeClassOrigin"])
        items = self.ops.enum_instances_xml(ns, p["ClassName"], p["PropertyList"],
                                            p["DeepInheritance"], user, form)
        return self._open(ns, "OpenEnumerateInstances", P.INSTANCES_WITH_PATH, items, timeout,
                          p["MaxObjectCount"], user)

    def op_OpenEnumerateInstancePaths(self, ns, p, user):
        timeout = self._check_pull("OpenEnumerateInstancePaths", p)
        items = (W.instancepath_xml(n, self.hostname, ns)
                 for n in self.ops.enum_instance_names(ns, p["ClassName"], user))
        return self._open(ns, "OpenEnumerateInstancePaths", P.PATHS, items, timeout,
                          p["MaxObjectCount"], user)

    def op_OpenAssociatorInstances(self, ns, p, user):
        timeout = self._check_pull("OpenAssociatorInstances", p)
        obj = self._obj(ns, p["InstanceName"])
        origin = p["IncludeClassOrigin"]
        items = (self._with_path(i, ns, origin, "VALUE.INSTANCEWITHPATH")
                 for i in self.ops.associators(obj, p["AssocClass"], p["ResultClass"],
                                               p["Role"], p["ResultRole"], p["PropertyList"],
                                               user, ns))
        return self._open(ns, "OpenAssociatorInstances", P.INSTANCES_WITH_PATH, items, timeout,
                          p["MaxObjectCount"], user)

    def op_OpenAssociatorInstancePaths(self, ns, p, user):
        timeout = self._check_pull("OpenAssociatorInstancePaths", p)
        obj = self._obj(ns, p["InstanceName"])
        items = (W.instancepath_xml(x, self.hostname, ns)
                 for x in self.ops.associator_names(obj, p["AssocClass"], p["ResultClass"],
                                                    p["Role"], p["ResultRole"], user, ns))
        return self._open(ns, "OpenAssociatorInstancePaths", P.PATHS, items, timeout,
                          p["MaxObjectCount"], user)

    def op_OpenReferenceInstances(self, ns, p, user):
        timeout = self._check_pull("OpenReferenceInstances", p)
        obj = self._obj(ns, p["InstanceName"])
        origin = p["IncludeClassOrigin"]
        items = (self._with_path(i, ns, origin, "VALUE.INSTANCEWITHPATH")
                 for i in self.ops.references(obj, p["ResultClass"], p["Role"],
                                              p["PropertyList"], user, ns))
        return self._open(ns, "OpenReferenceInstances", P.INSTANCES_WITH_PATH, items, timeout,
                          p["MaxObjectCount"], user)

    def op_OpenReferenceInstancePaths(self, ns, p, user):
        timeout = self._check_pull("OpenReferenceInstancePaths", p)
        obj = self._obj(ns, p["InstanceName"])
        items = (W.instancepath_xml(x, self.hostname, ns)
                 for x in self.ops.reference_names(obj, p["ResultClass"], p["Role"], user, ns))
        return self._open(ns, "OpenReferenceInstancePaths", P.PATHS, items, timeout,
                          p["MaxObjectCount"], user)

    def op_OpenQueryInstances(self, ns, p, user):
        timeout = self._check_pull("OpenQueryInstances", p)
        if p["ReturnQueryResultClass"]:
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                           "OpenQueryInstances: ReturnQueryResultClass is not supported")
        items = (self._inst(i, ns, False)
                 for i in self._query(ns, p["FilterQueryLanguage"], p["FilterQuery"], user))
        return self._open(ns, "OpenQueryInstances", P.INSTANCES, items, timeout,
                          p["MaxObjectCount"], user)

    def _pull(self, ns, p, user, op):
        items, ctx, end = self.pull.pull(p["EnumerationContext"], ns, op, p["MaxObjectCount"],
                                         P.owner_of(user, client_address()))
        return items, _pull_params(ctx, end)

    def op_PullInstancesWithPath(self, ns, p, user):
        return self._pull(ns, p, user, P.INSTANCES_WITH_PATH)

    def op_PullInstancePaths(self, ns, p, user):
        return self._pull(ns, p, user, P.PATHS)

    def op_PullInstances(self, ns, p, user):
        return self._pull(ns, p, user, P.INSTANCES)

    def op_CloseEnumeration(self, ns, p, user):
        self.pull.close(p["EnumerationContext"], ns, P.owner_of(user, client_address()))
        return None, ()

    def op_EnumerationCount(self, ns, p, user):
        n = self.pull.count(p["EnumerationContext"], ns, P.owner_of(user, client_address()))
        return [f"<VALUE>{n}</VALUE>"], ()

    # -- extrinsic methods -------------------------------------------------------------

    def _extrinsic(self, req: Request, user: Optional[str]) -> Iterator[str]:
        ns = self.canonical_ns(req.namespace)
        if req.target is None:  # the reader gives every METHODCALL a target
            raise _bad(f"method {req.name} has no target object")
        target = req.target.copy()
        target.namespace = ns
        params: dict[str, Any] = {}
        for param in req.params.values():
            params[param.name] = _param_value(param)
        (rtype, rval), outs = self.ops.invoke_method(target, req.name, params, user, ns)
        parts = [f'<METHODRESPONSE NAME="{W.attr(req.name)}">']
        if rval is not None or rtype:
            parts.append(W.paramvalue_xml("", rtype, rval, tag="RETURNVALUE"))
        for name, (ptype, value) in outs.items():
            # NULL output parameters are left out (as sfcb does): pywbemcli, for one,
            # cannot display a NULL array parameter, whose XML cannot say it is an array.
            if value is not None:
                parts.append(W.paramvalue_xml(name, ptype, value))
        parts.append("</METHODRESPONSE>")
        return iter(parts)


def _param_value(param: Param) -> Any:
    """A PARAMVALUE's value, typed by its PARAMTYPE where the client sent one."""
    value = param.value
    ptype = param.paramtype
    if ptype in INT_TYPES or ptype in ("boolean", "real32", "real64", "datetime", "char16"):
        where = f"parameter {param.name}"
        try:
            if isinstance(value, list):
                return [None if v is None else typed_text(v, ptype, where) for v in value]
            if isinstance(value, str):
                return typed_text(value, ptype, where)
        except CIMXMLError as exc:
            raise _bad(str(exc)) from None
    return value


def _pull_params(ctx: str, end: bool) -> list[str]:
    return [f'<PARAMVALUE NAME="EnumerationContext" PARAMTYPE="string">'
            f"<VALUE>{W.esc(ctx)}</VALUE></PARAMVALUE>",
            f'<PARAMVALUE NAME="EndOfSequence" PARAMTYPE="boolean">'
            f'<VALUE>{"TRUE" if end else "FALSE"}</VALUE></PARAMVALUE>']


def _take(it: Iterator, n: int) -> Iterator:
    for _ in range(n):
        try:
            yield next(it)
        except StopIteration:
            return


def _chain(first: list, rest: Iterator) -> Iterator:
    yield from first
    yield from rest
