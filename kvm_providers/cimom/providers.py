"""The embedded server's provider table and its object-level operations.

:class:`ProviderTable` knows which class each provider module serves in
which namespace (from the registry table plus the server's own interop
providers) and loads each module once, on first use, through
:class:`~kvm_providers.provider.ProviderProxy`.

:class:`Operations` implements the CIM operations on Python objects,
resolving polymorphism the way a CIM server does: an enumeration of a class
asks the provider of every registered subclass; an association operation asks
every registered association class that can refer to the object.  The
CIM-XML dispatcher and the providers' up-call handle both use it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Optional

import pywbem
from pywbem import CIMClassName, CIMError, CIMInstance, CIMInstanceName

from ..provider import (CIMOMHandle, ProviderEnvironment, ProviderLogger, ProviderProxy,
                        coerce, to_cim_error)
from ..provider._fastcim import copy_path, iter_keybindings
from ..schema import Schema

__all__ = ["ProviderEntry", "ProviderTable", "Operations", "EmbeddedCIMOMHandle"]

LOG = logging.getLogger("kvm_providers.cimom")


def _ns(path: Any, namespace: Optional[str]) -> str:
    """The namespace of an operation on `path`: the path's own, else the request's."""
    ns = path.namespace or namespace
    if not ns:
        raise CIMError(pywbem.CIM_ERR_INVALID_NAMESPACE, f"no namespace given for {path}")
    return ns


@dataclass(frozen=True)
class ProviderEntry:
    """A class served by a provider module in a namespace."""

    classname: str
    module: str
    types: tuple[str, ...]
    namespace: str


class ProviderTable:
    """Registered classes per namespace; provider modules loaded lazily."""

    def __init__(self, schema: Schema, entries: Iterable[ProviderEntry],
                 env_factory):
        self.schema = schema
        self._env_factory = env_factory
        self._by_ns: dict[str, dict[str, ProviderEntry]] = {}
        for e in entries:
            ns = e.namespace.lower()
            if not schema.has_namespace(e.namespace):
                raise ValueError(f"provider of {e.classname}: namespace {e.namespace} "
                                 "has no classes")
            if not schema.has_class(e.namespace, e.classname):
                raise ValueError(f"provider module {e.module} registers class {e.classname}, "
                                 f"which namespace {e.namespace} does not define")
            self._by_ns.setdefault(ns, {})[e.classname.lower()] = e
        self._proxies: dict[str, ProviderProxy] = {}
        self._failed: dict[str, str] = {}
        self._lock = threading.RLock()
        self._cache: dict[tuple, list] = {}

    def entries(self, namespace: str) -> list[ProviderEntry]:
        return list(self._by_ns.get(namespace.lower(), {}).values())

    def proxy(self, module: str) -> ProviderProxy:
        """The loaded module (loaded on first use)."""
        proxy = self._proxies.get(module)
        if proxy is not None:
            return proxy
        with self._lock:
            proxy = self._proxies.get(module)
            if proxy is None:
                env = self._env_factory(module, None)
                try:
                    proxy = ProviderProxy(env, module, self.schema)
                except Exception as exc:  # pylint: disable=broad-except
                    err = to_cim_error(exc, LOG, f"loading provider module {module}")
                    raise CIMError(pywbem.CIM_ERR_FAILED,
                                   f"Provider module {module} failed to load: "
                                   f"{err.status_description}") from None
                self._proxies[module] = proxy
        return proxy

    def loaded(self) -> list[ProviderProxy]:
        return list(self._proxies.values())

    def exact(self, namespace: str, classname: str, ptype: str) -> Optional[ProviderEntry]:
        e = self._by_ns.get(namespace.lower(), {}).get(classname.lower())
        return e if e is not None and ptype in e.types else None

    def subclasses(self, namespace: str, classname: str, ptype: str) -> list[ProviderEntry]:
        """Registered entries of `ptype` for `classname` and its subclasses."""
        key = ("sub", namespace.lower(), classname.lower(), ptype)
        hit = self._cache.get(key)
        if hit is None:
            hit = [e for e in self._by_ns.get(namespace.lower(), {}).values()
                   if ptype in e.types and self.schema.is_subclass(namespace, e.classname,
                                                                    classname)]
            self._cache[key] = hit
        return hit

    def associations(self, namespace: str, objclass: str, assoc_filter: Optional[str],
                     role: Optional[str]) -> list[ProviderEntry]:
        """Registered association classes that can refer to an object of class `objclass`.

        Only classes with a reference property (named `role`, if given) whose
        reference class is `objclass` or one of its superclasses or subclasses.
        """
        key = ("assoc", namespace.lower(), objclass.lower(),
               (assoc_filter or "").lower(), (role or "").lower())
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        out = []
        for e in self._by_ns.get(namespace.lower(), {}).values():
            if "association" not in e.types:
                continue
            if assoc_filter and not self.schema.is_subclass(namespace, e.classname,
                                                            assoc_filter):
                continue
            spec = self.schema.spec(namespace, e.classname)
            for p in spec.reference_props:
                if role and p.name.lower() != role.lower():
                    continue
                rc = p.reference_class
                if not rc or self._related(namespace, objclass, rc):
                    out.append(e)
                    break
        self._cache[key] = out
        return out

    def _related(self, namespace: str, objclass: str, refclass: str) -> bool:
        schema = self.schema
        if schema.is_subclass(namespace, objclass, refclass):
            return True
        if schema.has_class(namespace, refclass) and \
                schema.is_subclass(namespace, refclass, objclass):
            return True
        # The object's class may be defined only in its own namespace.
        return not schema.has_class(namespace, objclass)


def _declared_strings(spec: Any, path: CIMInstanceName) -> bool:
    """True if every key binding of `path` is a string, named as `spec` declares a string
    property (what :func:`_typed_keys` would leave unchanged)."""
    props = spec.props
    for name, value in iter_keybindings(path):
        if type(value) is not str:
            return False
        pspec = props.get(name.lower())
        if pspec is None or pspec.type != "string" or pspec.name != name:
            return False
    return True


def _typed_keys(schema: Schema, path: CIMInstanceName, namespace: str) -> CIMInstanceName:
    """A copy of `path` with key values converted to the declared key types."""
    try:
        spec = schema.spec(path.namespace or namespace, path.classname)
    except CIMError:
        return path
    if _declared_strings(spec, path):
        # Every key a string, spelled and typed as declared (a small request's path):
        # nothing to convert, only the copy with its namespace.
        out = copy_path(path)
        if out.namespace is None:
            out.namespace = namespace
        return out
    out = path.copy()
    if out.namespace is None:
        out.namespace = namespace
    for name, value in list(out.keybindings.items()):
        pspec = spec.props.get(name.lower())
        if pspec is None:
            continue
        if isinstance(value, CIMInstanceName):
            value = _typed_keys(schema, value, out.namespace)
        elif pspec.type != "reference":
            try:
                value = coerce(pspec.type, False, value)
            except (ValueError, TypeError) as exc:
                raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                               f"key {pspec.name} of {spec.name}: {exc}") from None
        del out.keybindings[name]
        out.keybindings[pspec.name] = value
    return out


class Operations:
    """CIM operations on Python objects, over the provider table."""

    def __init__(self, table: ProviderTable):
        self.table = table
        self.schema = table.schema

    def env(self, module: str, user: Optional[str]) -> ProviderEnvironment:
        return self.table._env_factory(module, user)

    def _call(self, what: str, module: str, func, *args) -> Any:
        try:
            return func(*args)
        except CIMError:
            raise
        except Exception as exc:  # pylint: disable=broad-except
            raise to_cim_error(exc, LOG, f"provider {module} ({what})") from None

    def _iter(self, what: str, module: str, gen) -> Iterator:
        try:
            yield from gen
        except CIMError:
            raise
        except Exception as exc:  # pylint: disable=broad-except
            raise to_cim_error(exc, LOG, f"provider {module} ({what})") from None

    def check_class(self, namespace: str, classname: str) -> str:
        """The declared spelling of `classname`; INVALID_CLASS if it does not exist."""
        return self.schema.get_class(namespace, classname).classname

    def typed_path(self, path: CIMInstanceName, namespace: str) -> CIMInstanceName:
        if not self.schema.has_class(path.namespace or namespace, path.classname):
            raise CIMError(pywbem.CIM_ERR_INVALID_CLASS,
                           f"Class {path.classname!r} does not exist in namespace "
                           f"{path.namespace or namespace}")
        return _typed_keys(self.schema, path, namespace)

    # -- instances -------------------------------------------------------------

    def enum_instance_names(self, namespace: str, classname: str,
                            user: Optional[str] = None) -> Iterator[CIMInstanceName]:
        classname = self.check_class(namespace, classname)
        for e in self.table.subclasses(namespace, classname, "instance"):
            proxy = self.table.proxy(e.module)
            op = CIMInstanceName(e.classname, namespace=namespace)
            yield from self._iter("EnumerateInstanceNames", e.module,
                                  proxy.MI_enumInstanceNames(self.env(e.module, user), op))

    def enum_instances(self, namespace: str, classname: str,
                       property_list: Optional[list[str]] = None, deep: bool = True,
                       user: Optional[str] = None) -> Iterator[CIMInstance]:
        for module, paths, plist in self._enum_groups(namespace, classname, property_list,
                                                      deep):
            proxy = self.table.proxy(module)
            gen = proxy.MI_enumInstancesMany(self.env(module, user), paths, plist)
            yield from self._iter("EnumerateInstances", module, gen)

    def enum_instances_xml(self, namespace: str, classname: str,
                           property_list: Optional[list[str]], deep: bool,
                           user: Optional[str], form: Any) -> Iterator[str]:
        """enum_instances() as the response items of `form` (cimxml.writer.InstanceForm):
        written straight from the providers' values where they offer it (no object per
        instance, issue 16), else from their instances."""
        for module, paths, plist in self._enum_groups(namespace, classname, property_list,
                                                      deep):
            proxy = self.table.proxy(module)
            gen = proxy.MI_enumInstancesXml(self.env(module, user), paths, plist, form)
            yield from self._iter("EnumerateInstances", module, gen)

    def _enum_groups(self, namespace: str, classname: str,
                     property_list: Optional[list[str]], deep: bool
                     ) -> Iterator[tuple[str, list[CIMInstanceName], Optional[list[str]]]]:
        """(module, class paths, PropertyList) of an enumeration, module by module."""
        classname = self.check_class(namespace, classname)
        if not deep:
            # Only the properties the requested class defines.
            own = [p.name for p in self.schema.spec(namespace, classname).props.values()]
            if property_list is not None:
                wanted = {p.lower() for p in property_list}
                own = [p for p in own if p.lower() in wanted]
            property_list = own
        # The classes of one provider module are asked together: a provider serving
        # several of them (every RASD class) then reads its data once (issue 16).
        by_module: dict[str, list[CIMInstanceName]] = {}
        for e in self.table.subclasses(namespace, classname, "instance"):
            by_module.setdefault(e.module, []).append(
                CIMInstanceName(e.classname, namespace=namespace))
        for module, paths in by_module.items():
            yield module, paths, property_list

    def _instance_provider(self, namespace: str, classname: str, ptype: str, what: str):
        e = self.table.exact(namespace, classname, ptype)
        if e is None:
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                           f"{what}: no provider serves class {classname} in namespace "
                           f"{namespace}")
        return e, self.table.proxy(e.module)

    def _get_target(self, path: CIMInstanceName, namespace: Optional[str]
                    ) -> tuple[CIMInstanceName, ProviderEntry, ProviderProxy]:
        """(the typed path, its provider's entry and module) of a GetInstance."""
        ns = _ns(path, namespace)
        path = self.typed_path(path, ns)
        e = self.table.exact(ns, path.classname, "instance")
        if e is None:
            if self.table.subclasses(ns, path.classname, "instance"):
                raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                               f"Instance not found: {path} (instances of {path.classname} "
                               "are named by their subclasses)")
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                           f"GetInstance: no provider serves class {path.classname} in "
                           f"namespace {ns}")
        return path, e, self.table.proxy(e.module)

    def get_instance(self, path: CIMInstanceName, property_list: Optional[list[str]] = None,
                     user: Optional[str] = None, namespace: Optional[str] = None
                     ) -> CIMInstance:
        path, e, proxy = self._get_target(path, namespace)
        return self._call("GetInstance", e.module, proxy.MI_getInstance,
                          self.env(e.module, user), path, property_list)

    def get_instance_xml(self, path: CIMInstanceName, property_list: Optional[list[str]],
                         user: Optional[str], namespace: Optional[str], origin: bool) -> str:
        """get_instance() as the <INSTANCE> text (CLASSORIGIN attributes if `origin`):
        written straight from the provider's values where it offers that (no instance
        model, issue 16), else from its instance; the same text both ways."""
        path, e, proxy = self._get_target(path, namespace)
        return self._call("GetInstance", e.module, proxy.MI_getInstanceXml,
                          self.env(e.module, user), path, property_list, origin)

    def create_instance(self, namespace: str, instance: CIMInstance,
                        user: Optional[str] = None) -> CIMInstanceName:
        classname = self.check_class(namespace, instance.classname)
        spec = self.schema.spec(namespace, classname)
        for name in instance.properties:
            if name.lower() not in spec.props:
                raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                               f"Class {classname} has no property {name!r}")
        e, proxy = self._instance_provider(namespace, classname, "instance", "CreateInstance")
        if instance.path is None:
            instance.path = CIMInstanceName(classname, namespace=namespace)
        elif instance.path.namespace is None:
            instance.path.namespace = namespace
        return self._call("CreateInstance", e.module, proxy.MI_createInstance,
                          self.env(e.module, user), instance)

    def modify_instance(self, namespace: str, instance: CIMInstance,
                        property_list: Optional[list[str]] = None,
                        user: Optional[str] = None) -> None:
        if instance.path is None:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           "ModifiedInstance has no instance name")
        path = self.typed_path(instance.path, namespace)
        spec = self.schema.spec(path.namespace, path.classname)
        for name in instance.properties:
            if name.lower() not in spec.props:
                raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                               f"Class {spec.name} has no property {name!r}")
        instance.path = path
        e, proxy = self._instance_provider(path.namespace, path.classname, "instance",
                                           "ModifyInstance")
        self._call("ModifyInstance", e.module, proxy.MI_modifyInstance,
                   self.env(e.module, user), instance, property_list)

    def delete_instance(self, path: CIMInstanceName, user: Optional[str] = None,
                        namespace: Optional[str] = None) -> None:
        path = self.typed_path(path, _ns(path, namespace))
        e, proxy = self._instance_provider(path.namespace, path.classname, "instance",
                                           "DeleteInstance")
        self._call("DeleteInstance", e.module, proxy.MI_deleteInstance,
                   self.env(e.module, user), path)

    # -- associations ------------------------------------------------------------

    def _assoc_source(self, path: CIMInstanceName, namespace: Optional[str]) -> CIMInstanceName:
        """The ObjectName of an association operation, typed.

        DSP0200 lists CIM_ERR_INVALID_PARAMETER, not CIM_ERR_INVALID_CLASS, among the
        errors of Associators, AssociatorNames, References and ReferenceNames: an
        ObjectName (or AssocClass / ResultClass) naming no class is an incorrect
        parameter (docs/compat.md).  The description starts with the status's name, as
        OpenPegasus and sfcb write theirs for it (libvirt-cim's clients look for it).
        """
        try:
            return self.typed_path(path, _ns(path, namespace))
        except CIMError as exc:
            if exc.status_code != pywbem.CIM_ERR_INVALID_CLASS:
                raise
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           f"CIM_ERR_INVALID_PARAMETER: ObjectName: "
                           f"{exc.status_description}") from None

    def _assoc_entries(self, path: CIMInstanceName, assoc_filter: Optional[str],
                       role: Optional[str]) -> list[ProviderEntry]:
        ns = path.namespace
        if assoc_filter:
            try:
                self.check_class(ns, assoc_filter)
            except CIMError as exc:
                if exc.status_code != pywbem.CIM_ERR_INVALID_CLASS:
                    raise
                raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                               f"CIM_ERR_INVALID_PARAMETER: {exc.status_description} "
                               f"(given as the association class or result class)") from None
        return self.table.associations(ns, path.classname, assoc_filter, role)

    def associator_names(self, path: CIMInstanceName, assoc_class: Optional[str] = None,
                         result_class: Optional[str] = None, role: Optional[str] = None,
                         result_role: Optional[str] = None, user: Optional[str] = None,
                         namespace: Optional[str] = None) -> Iterator[CIMInstanceName]:
        path = self._assoc_source(path, namespace)
        for e in self._assoc_entries(path, assoc_class, role):
            proxy = self.table.proxy(e.module)
            yield from self._iter("AssociatorNames", e.module, proxy.MI_associatorNames(
                self.env(e.module, user), path, e.classname, result_class, role,
                result_role))

    def associators(self, path: CIMInstanceName, assoc_class: Optional[str] = None,
                    result_class: Optional[str] = None, role: Optional[str] = None,
                    result_role: Optional[str] = None,
                    property_list: Optional[list[str]] = None,
                    user: Optional[str] = None,
                    namespace: Optional[str] = None) -> Iterator[CIMInstance]:
        path = self._assoc_source(path, namespace)
        for e in self._assoc_entries(path, assoc_class, role):
            proxy = self.table.proxy(e.module)
            yield from self._iter("Associators", e.module, proxy.MI_associators(
                self.env(e.module, user), path, e.classname, result_class, role,
                result_role, property_list))

    def reference_names(self, path: CIMInstanceName, result_class: Optional[str] = None,
                        role: Optional[str] = None, user: Optional[str] = None,
                        namespace: Optional[str] = None) -> Iterator[CIMInstanceName]:
        path = self._assoc_source(path, namespace)
        for e in self._assoc_entries(path, result_class, role):
            proxy = self.table.proxy(e.module)
            yield from self._iter("ReferenceNames", e.module, proxy.MI_referenceNames(
                self.env(e.module, user), path, e.classname, role))

    def references(self, path: CIMInstanceName, result_class: Optional[str] = None,
                   role: Optional[str] = None, property_list: Optional[list[str]] = None,
                   user: Optional[str] = None,
                   namespace: Optional[str] = None) -> Iterator[CIMInstance]:
        path = self._assoc_source(path, namespace)
        for e in self._assoc_entries(path, result_class, role):
            proxy = self.table.proxy(e.module)
            yield from self._iter("References", e.module, proxy.MI_references(
                self.env(e.module, user), path, e.classname, role, property_list))

    # -- methods -------------------------------------------------------------------

    def invoke_method(self, target: CIMInstanceName | CIMClassName, method: str,
                      params: dict[str, Any], user: Optional[str] = None,
                      namespace: Optional[str] = None):
        """Returns ((return type, value), {name: (type, value)})."""
        ns = _ns(target, namespace)
        if isinstance(target, CIMClassName):
            classname = self.check_class(ns, target.classname)
            path = CIMInstanceName(classname, namespace=ns)
        else:
            path = self.typed_path(target, ns)
            classname = path.classname
        spec = self.schema.spec(ns, classname)
        if method.lower() not in spec.methods:
            raise CIMError(pywbem.CIM_ERR_METHOD_NOT_FOUND,
                           f"Class {classname} has no method {method!r}")
        e = self.table.exact(ns, classname, "method")
        if e is None:
            raise CIMError(pywbem.CIM_ERR_METHOD_NOT_AVAILABLE,
                           f"Method {classname}.{spec.methods[method.lower()].name} is not "
                           f"provided in namespace {ns}")
        proxy = self.table.proxy(e.module)
        return self._call(f"method {method}", e.module, proxy.MI_invokeMethod,
                          self.env(e.module, user), path, method, params)


class EmbeddedCIMOMHandle(CIMOMHandle):
    """The up-call handle providers get in the embedded server: in-process calls."""

    def __init__(self, ops: Operations, user: Optional[str], deliver=None):
        self._ops = ops
        self._user = user
        self._deliver = deliver

    def EnumerateInstanceNames(self, ns, cn):
        return self._ops.enum_instance_names(ns, cn, self._user)

    def EnumerateInstances(self, ns, cn, props=None):
        return self._ops.enum_instances(ns, cn, props, True, self._user)

    def GetInstance(self, path, props=None):
        return self._ops.get_instance(path, props, self._user)

    def Associators(self, path, assocClass=None, resultClass=None, role=None,
                    resultRole=None, props=None):
        return self._ops.associators(path, assocClass, resultClass, role, resultRole, props,
                                     self._user)

    def AssociatorNames(self, path, assocClass=None, resultClass=None, role=None,
                        resultRole=None):
        return self._ops.associator_names(path, assocClass, resultClass, role, resultRole,
                                          self._user)

    def References(self, path, resultClass=None, role=None, props=None):
        return self._ops.references(path, resultClass, role, props, self._user)

    def ReferenceNames(self, path, resultClass=None, role=None):
        return self._ops.reference_names(path, resultClass, role, self._user)

    def InvokeMethod(self, path, method, **params):
        if isinstance(path, str):
            path = CIMClassName.from_wbem_uri(path) if "." not in path.split(":")[-1] \
                else CIMInstanceName.from_wbem_uri(path)
        (_rtype, rval), outs = self._ops.invoke_method(path, method, params, self._user)
        return rval, {k: v for k, (_t, v) in outs.items()}

    def CreateInstance(self, instance):
        return self._ops.create_instance(instance.path.namespace, instance, self._user)

    def ModifyInstance(self, instance, props=None):
        return self._ops.modify_instance(instance.path.namespace, instance, props, self._user)

    def DeleteInstance(self, path):
        return self._ops.delete_instance(path, self._user)

    def DeliverIndication(self, ns, instance):
        if self._deliver is None:
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED, "indication delivery is not enabled")
        self._deliver(ns, instance)

    def is_subclass(self, ns, super, sub):  # noqa: A002
        return self._ops.schema.is_subclass(ns, sub, super)


def make_env_factory(ops_ref: list, deliver=None):
    """An env factory for ProviderTable: env per (module, user), with the up-call handle."""
    loggers: dict[str, ProviderLogger] = {}

    def factory(module: str, user: Optional[str]) -> ProviderEnvironment:
        logger = loggers.get(module)
        if logger is None:
            logger = loggers.setdefault(module, ProviderLogger(logging.getLogger(module)))
        handle = EmbeddedCIMOMHandle(ops_ref[0], user, deliver) if ops_ref else None
        return ProviderEnvironment(logger, handle, user)
    return factory
