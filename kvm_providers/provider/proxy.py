"""ProviderProxy: a loaded provider module, as a host sees it.

Both hosts (the embedded server and the CMPI adapter) load a provider module
through this class and call its ``MI_*`` methods; the proxy routes each call
to the provider that ``get_providers(env)`` returned for the class, and the
module-level hooks (``init``, ``shutdown``, ``can_unload``, the indication
hooks) to the module.

Module-level functions a provider module may define (all optional but
``get_providers``):

``get_providers(env) -> {classname: CIMProvider2}``
``init(env)``, ``shutdown(env)``, ``can_unload(env) -> bool``
``authorize_filter(env, filter, namespace, classes, owner)``
``activate_filter(env, filter, namespace, classes, first_activation)``
``deactivate_filter(env, filter, namespace, classes, last_activation)``
``enable_indications(env)``, ``disable_indications(env)``
``poll(env)``, ``get_initial_polling_interval(env)``
"""

from __future__ import annotations

import collections.abc
import functools
import importlib
import importlib.util
import os
import threading
import types
from typing import Any, Callable, Iterator, Optional, TypeVar, Union, cast

import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName

from ..cimxml import writer as W
from ..schema import Schema, default_schema
from ..virt.errors import VirtError
from .base import CIMProvider2
from .direct import DirectPlan
from .env import cim_error

__all__ = ["ProviderProxy", "load_provider_module"]

_load_lock = threading.RLock()


def load_provider_module(spec: Union[str, types.ModuleType]) -> types.ModuleType:
    """Import a provider module given as module object, dotted name or file path."""
    if isinstance(spec, types.ModuleType):
        return spec
    with _load_lock:
        if spec.endswith(".py") or os.sep in spec:
            name = "kvm_pycim_" + os.path.splitext(os.path.basename(spec))[0]
            mspec = importlib.util.spec_from_file_location(name, spec)
            if mspec is None or mspec.loader is None:
                raise ImportError(f"cannot load provider module from {spec}")
            module = importlib.util.module_from_spec(mspec)
            mspec.loader.exec_module(module)
            return module
        return importlib.import_module(spec)


def _cim(exc: VirtError) -> CIMError:
    err = cim_error(exc)
    assert err is not None
    return err


def _translated(results: Iterator[Any]) -> Iterator[Any]:
    """`results`, with the libvirt layer's errors raised while iterating translated."""
    try:
        yield from results
    except VirtError as exc:
        raise _cim(exc) from exc


F = TypeVar("F", bound=Callable[..., Any])


def _translating(method: F) -> F:
    """An MI_ entry point that raises CIM errors for the libvirt layer's errors, also
    from the iterator it returns (enumerations and associations are lazy)."""
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            result = method(*args, **kwargs)
        except VirtError as exc:
            raise _cim(exc) from exc
        if isinstance(result, collections.abc.Iterator):
            return _translated(result)
        return result
    call._translates = True     # type: ignore[attr-defined]
    return cast(F, call)


class ProviderProxy:
    """One provider module with its providers, keyed by class name."""

    def __init__(self, env, module: Union[str, types.ModuleType],
                 schema: Optional[Schema] = None):
        self.module = load_provider_module(module)
        self.schema = schema
        init = getattr(self.module, "init", None)
        if init is not None:
            init(env)
        providers = self.module.get_providers(env)
        self.providers: dict[str, CIMProvider2] = {}
        for classname, prov in providers.items():
            if schema is not None and isinstance(prov, CIMProvider2) and prov.schema is None:
                prov.schema = schema
            self.providers[classname.lower()] = prov

    @property
    def name(self) -> str:
        return self.module.__name__

    def classnames(self) -> list[str]:
        return list(self.providers)

    def provider_for(self, classname: str) -> CIMProvider2:
        """The provider of `classname`; CIM_ERR_NOT_SUPPORTED if this module has none."""
        try:
            return self.providers[classname.lower()]
        except KeyError:
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                           f"Provider module {self.name} does not serve class "
                           f"{classname}") from None

    # -- instance, association and method entry points ---------------------
    # Every entry point translates the libvirt layer's errors (virt/errors.py, no
    # CIM in them) into CIM errors here, also those raised while a host iterates
    # a result: the one boundary, so that every host and every up-call sees the
    # same status codes and descriptions (env.cim_error).

    @_translating
    def MI_enumInstanceNames(self, env, objPath: CIMInstanceName) -> Iterator[CIMInstanceName]:
        return self.provider_for(objPath.classname).MI_enumInstanceNames(env, objPath)

    @_translating
    def MI_enumInstances(self, env, objPath: CIMInstanceName,
                         propertyList: Optional[list[str]]) -> Iterator[CIMInstance]:
        return self.provider_for(objPath.classname).MI_enumInstances(env, objPath, propertyList)

    @_translating
    def MI_enumInstancesMany(self, env, objPaths: list[CIMInstanceName],
                             propertyList: Optional[list[str]]) -> Iterator[CIMInstance]:
        """EnumerateInstances of several classes of this module: the classes one provider
        object serves in one pass (CIMProvider2.enum_many), the others class by class."""
        groups: dict[int, tuple[Any, list[CIMInstanceName]]] = {}
        for path in objPaths:
            prov = self.provider_for(path.classname)
            groups.setdefault(id(prov), (prov, []))[1].append(path)
        for prov, paths in groups.values():
            if isinstance(prov, CIMProvider2):
                yield from prov.MI_enumInstancesMany(env, paths, propertyList)
            else:
                for path in paths:
                    yield from prov.MI_enumInstances(env, path, propertyList)

    @_translating
    def MI_enumInstancesXml(self, env, objPaths: list[CIMInstanceName],
                            propertyList: Optional[list[str]], form: Any) -> Iterator[str]:
        """EnumerateInstances of several classes of this module as response items of
        `form` (cimxml.writer.InstanceForm): written straight from the providers' values
        where a provider offers it (CIMProvider2.enum_direct), else from the instance
        objects of MI_enumInstancesMany (the embedded server; issue 16).  A form with a
        ``plan_class`` (a DirectPlan subclass: the CMPI adapter's) plans with that."""
        plan_class = getattr(form, "plan_class", DirectPlan)
        groups: dict[int, tuple[Any, list[CIMInstanceName]]] = {}
        for path in objPaths:
            prov = self.provider_for(path.classname)
            groups.setdefault(id(prov), (prov, []))[1].append(path)
        for prov, paths in groups.values():
            items = None
            if isinstance(prov, CIMProvider2):
                schema = prov.schema or self.schema or default_schema()
                plans = [plan_class.of(schema, p.namespace, p.classname, propertyList,
                                       form.origin) for p in paths]
                items = prov.enum_direct(env, plans, form)
            if items is not None:
                yield from items
                continue
            origins: dict[str, Optional[dict[str, str]]] = {}
            for inst in self.MI_enumInstancesMany(env, paths, propertyList):
                key = inst.classname.lower()
                if key not in origins:
                    origins[key] = self._origins(form, inst.classname)
                yield form.of_instance(inst, origins[key])

    def _origins(self, form: Any, classname: str) -> Optional[dict[str, str]]:
        """{folded property name: class origin} of `classname` if the request asked for
        class origins (IncludeClassOrigin), else None."""
        if not form.origin:
            return None
        spec = (self.schema or default_schema()).spec(form.namespace, classname)
        return {k: q.class_origin for k, q in spec.props.items()}

    @_translating
    def MI_getInstance(self, env, instanceName: CIMInstanceName,
                       propertyList: Optional[list[str]]) -> CIMInstance:
        return self.provider_for(instanceName.classname).MI_getInstance(
            env, instanceName, propertyList)

    @_translating
    def MI_getInstanceDirect(self, env, instanceName: CIMInstanceName,
                             propertyList: Optional[list[str]], plan_class: Any) -> Any:
        """GetInstance straight from the provider's values into a plan of `plan_class`
        (a DirectPlan subclass; CMPI's: :class:`kvm_providers.cmpi.direct.CMPIPlan`),
        where the provider offers that (CIMProvider2.get_direct): what the plan's
        ``instance_xml`` makes of them; None where the host is to take
        :meth:`MI_getInstance`.  Same checks and errors as MI_getInstance."""
        prov = self.provider_for(instanceName.classname)
        if not isinstance(prov, CIMProvider2):
            return None
        return prov.MI_getInstanceXml(env, instanceName, propertyList, False, plan_class)

    @_translating
    def MI_getInstanceXml(self, env, instanceName: CIMInstanceName,
                          propertyList: Optional[list[str]], origin: bool) -> str:
        """GetInstance as its <INSTANCE> text, with CLASSORIGIN attributes if `origin`
        (IncludeClassOrigin): written straight from the provider's values where it
        offers that (CIMProvider2.get_direct: no instance model, issue 16), else the
        instance of MI_getInstance written; the same text both ways."""
        prov = self.provider_for(instanceName.classname)
        if isinstance(prov, CIMProvider2):
            text = prov.MI_getInstanceXml(env, instanceName, propertyList, origin)
            if text is not None:
                return text
        inst = prov.MI_getInstance(env, instanceName, propertyList)
        origins = None
        if origin:
            spec = (self.schema or default_schema()).spec(instanceName.namespace,
                                                          inst.classname)
            origins = {k: q.class_origin for k, q in spec.props.items()}
        return W.instance_xml(inst, origins)

    @_translating
    def MI_createInstance(self, env, instance: CIMInstance) -> CIMInstanceName:
        return self.provider_for(instance.classname).MI_createInstance(env, instance)

    @_translating
    def MI_modifyInstance(self, env, modifiedInstance: CIMInstance,
                          propertyList: Optional[list[str]]) -> None:
        return self.provider_for(modifiedInstance.classname).MI_modifyInstance(
            env, modifiedInstance, propertyList)

    @_translating
    def MI_deleteInstance(self, env, instanceName: CIMInstanceName) -> None:
        return self.provider_for(instanceName.classname).MI_deleteInstance(env, instanceName)

    @_translating
    def MI_associators(self, env, objectName, assocClassName, resultClassName, role,
                       resultRole, propertyList):
        return self.provider_for(assocClassName).MI_associators(
            env, objectName, assocClassName, resultClassName, role, resultRole, propertyList)

    @_translating
    def MI_associatorNames(self, env, objectName, assocClassName, resultClassName, role,
                           resultRole):
        return self.provider_for(assocClassName).MI_associatorNames(
            env, objectName, assocClassName, resultClassName, role, resultRole)

    @_translating
    def MI_references(self, env, objectName, resultClassName, role, propertyList):
        return self.provider_for(resultClassName).MI_references(
            env, objectName, resultClassName, role, propertyList)

    @_translating
    def MI_referenceNames(self, env, objectName, resultClassName, role):
        return self.provider_for(resultClassName).MI_referenceNames(
            env, objectName, resultClassName, role)

    @_translating
    def MI_invokeMethod(self, env, objectName, methodName, inputParams):
        return self.provider_for(objectName.classname).MI_invokeMethod(
            env, objectName, methodName, inputParams)

    # -- module-level hooks -------------------------------------------------

    def _hook(self, name: str):
        return getattr(self.module, name, None)

    def _indication_hook(self, name: str, env, *args: Any) -> Any:
        func = self._hook(name)
        if func is not None:
            try:
                return func(env, *args)
            except VirtError as exc:
                raise _cim(exc) from exc
        return None

    def MI_authorizeFilter(self, env, filter, className, classPath, owner):  # noqa: A002
        ns = classPath.namespace if classPath is not None else None
        return self._indication_hook("authorize_filter", env, filter, ns, className, owner)

    def MI_activateFilter(self, env, filter, className, classPath, firstActivation):  # noqa: A002
        ns = classPath.namespace if classPath is not None else None
        return self._indication_hook("activate_filter", env, filter, ns, className,
                                     firstActivation)

    def MI_deActivateFilter(self, env, filter, className, classPath,  # noqa: A002
                            lastActivation):
        ns = classPath.namespace if classPath is not None else None
        return self._indication_hook("deactivate_filter", env, filter, ns, className,
                                     lastActivation)

    def MI_enableIndications(self, env) -> None:
        self._indication_hook("enable_indications", env)

    def MI_disableIndications(self, env) -> None:
        self._indication_hook("disable_indications", env)

    def MI_poll(self, env) -> Any:
        return self._indication_hook("poll", env)

    def MI_getInitialPollingInterval(self, env) -> Any:
        return self._indication_hook("get_initial_polling_interval", env)

    def MI_canunload(self, env) -> bool:
        func = self._hook("can_unload")
        return True if func is None else bool(func(env))

    def MI_shutdown(self, env) -> None:
        func = self._hook("shutdown")
        if func is not None:
            func(env)


# Every MI_ entry point translates, also one added without the decorator: the boundary
# must not depend on remembering it.
for _name, _method in list(vars(ProviderProxy).items()):
    if _name.startswith("MI_") and callable(_method) and \
            not getattr(_method, "_translates", False):
        setattr(ProviderProxy, _name, _translating(_method))
