"""An in-process host of the provider interface, for tests.

Loads every provider module of the registry with ProviderProxy, exactly as
the embedded server and the CMPI adapter do, and serves their up-calls
through a CIMOMHandle that dispatches back to them.  It shows that the
providers need nothing but the provider interface, and lets tests count the
libvirt calls one operation makes.
"""

from __future__ import annotations

import logging
from typing import Optional

import pywbem
from pywbem import CIMInstanceName

from kvm_providers.provider import (CIMOMHandle, ProviderEnvironment, ProviderLogger,
                                    ProviderProxy, request_scope)
from kvm_providers.registry import registrations
from kvm_providers.schema import default_schema


#: The provider modules of the virtual system model (issue 3).
MODEL_MODULES = frozenset(
    f"kvm_providers.providers.{m}" for m in (
        "host_system", "computer_system", "virtual_system_settings", "resource_allocation",
        "logical_devices", "management_service", "capabilities", "system_device",
        "vssd_component", "settings_define_state", "element_setting_data",
        "hosted_dependency", "hosted_service", "element_capabilities",
        "service_affects_element", "registered_profile", "referenced_profile",
        "element_conforms_to_profile"))


class Harness(CIMOMHandle):
    def __init__(self, modules: frozenset = MODEL_MODULES):
        self.schema = default_schema()
        self.env = ProviderEnvironment(ProviderLogger(logging.getLogger("harness")), self)
        proxies: dict[str, ProviderProxy] = {}
        self.classes: dict[tuple[str, str], tuple[str, ProviderProxy]] = {}
        for reg in registrations():
            if modules is not None and reg.module not in modules:
                continue
            proxy = proxies.get(reg.module)
            if proxy is None:
                proxy = proxies[reg.module] = ProviderProxy(self.env, reg.module, self.schema)
            for ns in reg.namespaces:
                self.classes[(ns, reg.classname.lower())] = (reg.classname, proxy)
        self.modules = proxies

    def _registered(self, ns: str, cn: Optional[str], assoc: Optional[bool] = None):
        for (rns, _), (name, proxy) in self.classes.items():
            if rns != ns:
                continue
            if cn and not self.schema.is_subclass(ns, name, cn):
                continue
            if assoc is not None and self.schema.spec(ns, name).is_association != assoc:
                continue
            yield name, proxy

    # -- up-calls (and the operations tests make) ---------------------------------

    def EnumerateInstanceNames(self, ns, cn) -> list:
        with request_scope():
            out = []
            for name, proxy in self._registered(ns, cn):
                out += list(proxy.MI_enumInstanceNames(self.env,
                                                       CIMInstanceName(name, namespace=ns)))
            return out

    def EnumerateInstances(self, ns, cn, props=None) -> list:
        with request_scope():
            out = []
            for name, proxy in self._registered(ns, cn):
                out += list(proxy.MI_enumInstances(self.env, CIMInstanceName(name, namespace=ns),
                                                   props))
            return out

    def GetInstance(self, path, props=None):
        with request_scope():
            entry = self.classes.get((path.namespace, path.classname.lower()))
            if entry is None:
                raise pywbem.CIMError(pywbem.CIM_ERR_INVALID_CLASS, path.classname)
            return entry[1].MI_getInstance(self.env, path, props)

    def _assoc(self, method: str, path, assoc_class, *args) -> list:
        with request_scope():
            out = []
            for name, proxy in self._registered(path.namespace, assoc_class, assoc=True):
                out += list(getattr(proxy, method)(self.env, path, name, *args))
            return out

    def Associators(self, path, assocClass=None, resultClass=None, role=None,
                    resultRole=None, props=None):
        return self._assoc("MI_associators", path, assocClass, resultClass, role, resultRole,
                           props)

    def AssociatorNames(self, path, assocClass=None, resultClass=None, role=None,
                        resultRole=None):
        return self._assoc("MI_associatorNames", path, assocClass, resultClass, role,
                           resultRole)

    def References(self, path, resultClass=None, role=None, props=None):
        return self._assoc("MI_references", path, resultClass, role, props)

    def ReferenceNames(self, path, resultClass=None, role=None):
        return self._assoc("MI_referenceNames", path, resultClass, role)

    def InvokeMethod(self, path, method, **params):
        raise pywbem.CIMError(pywbem.CIM_ERR_NOT_SUPPORTED, "not in the harness")

    def CreateInstance(self, instance):
        raise pywbem.CIMError(pywbem.CIM_ERR_NOT_SUPPORTED, "not in the harness")

    def ModifyInstance(self, instance, props=None):
        raise pywbem.CIMError(pywbem.CIM_ERR_NOT_SUPPORTED, "not in the harness")

    def DeleteInstance(self, path):
        raise pywbem.CIMError(pywbem.CIM_ERR_NOT_SUPPORTED, "not in the harness")

    def DeliverIndication(self, ns, instance):
        pass

    def is_subclass(self, ns, super, sub):  # noqa: A002
        return self.schema.is_subclass(ns, sub, super)
