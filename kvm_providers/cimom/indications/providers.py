"""The builtin providers of the indication service, in the interop namespace.

Ordinary :class:`~kvm_providers.provider.CIMProvider2` providers (like those
of :mod:`..interop`) that clients use to manage their subscriptions:
CIM_IndicationFilter, CIM_ListenerDestinationCIMXML,
CIM_IndicationHandlerCIMXML (the deprecated name old clients use),
CIM_IndicationSubscription, CIM_IndicationService,
CIM_IndicationServiceCapabilities and CIM_ElementCapabilities between the
last two.  They serve what the :class:`.manager.IndicationManager` given to
:func:`configure` holds, and change it through its methods.
"""

from __future__ import annotations

import abc
from typing import Iterable, Iterator, Optional

import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName

from ...provider import CIMProvider2, paths_equal
from ...schema import Schema
from ..names import BRAND, INTEROP, SERVICE_CLASS, service_path
from .manager import IndicationManager
from .model import (CAPS_CLASS, FILTER_CLASS, MAX_DESTINATIONS, MAX_SUBSCRIPTIONS, SUB_CLASS,
                    service_properties, show)

__all__ = ["configure", "get_providers", "iter_builtin", "BUILTIN_CLASSES", "FilterProvider",
           "DestinationProvider", "SubscriptionProvider", "ServiceProvider",
           "CapabilitiesProvider", "ElementCapabilitiesProvider"]

_manager: Optional[IndicationManager] = None


def configure(manager: IndicationManager) -> None:
    """Called by the server before the builtin providers are loaded."""
    global _manager
    _manager = manager


def _mgr() -> IndicationManager:
    if _manager is None:
        raise CIMError(pywbem.CIM_ERR_FAILED, "the indication service is not running")
    return _manager


def _fill(model, inst: CIMInstance, keys_only: bool):
    """A copy of the model filled from a stored instance (keys only, or what is wanted)."""
    out = model.copy()
    keys = {k.lower() for k in model.spec.key_names}
    for name, prop in inst.properties.items():
        if keys_only and name.lower() not in keys:
            continue
        if name in out:
            out[name] = prop.value
    out.path = inst.path.copy()
    return out


class _StoreProvider(CIMProvider2, abc.ABC):
    """Common plumbing: instances from the manager's lists; clients create, modify and
    delete them with the manager's ``create_<kind>``, ``modify_<kind>`` and
    ``delete_<kind>``."""

    _kind: str     # "filter", "destination" or "subscription"

    @abc.abstractmethod
    def _list(self, classname: str, user: Optional[str]) -> list[CIMInstance]:
        """The stored instances of `classname` that `user` may see."""

    @abc.abstractmethod
    def _get(self, path: CIMInstanceName, user: Optional[str]) -> Optional[CIMInstance]:
        """The stored instance at `path`, or None (also when `user` may not see it)."""

    def enum_instances(self, env, model, keys_only) -> Iterator:
        for inst in self._list(model.classname, env.get_user_name()):
            yield _fill(model, inst, keys_only)

    def get_instance(self, env, model):
        inst = self._get(model.path, env.get_user_name())
        return None if inst is None else _fill(model, inst, False)

    def set_instance(self, env, instance, modify_existing):
        if modify_existing:
            getattr(_mgr(), f"modify_{self._kind}")(instance, env.get_user_name())
            return instance
        return getattr(_mgr(), f"create_{self._kind}")(instance, env.get_user_name())

    def delete_instance(self, env, instance_name):
        getattr(_mgr(), f"delete_{self._kind}")(instance_name, env.get_user_name())


class FilterProvider(_StoreProvider):
    """CIM_IndicationFilter: created, modified and deleted by clients."""

    _kind = "filter"

    def _list(self, classname, user):
        return _mgr().filters(user)

    def _get(self, path, user):
        return _mgr().get_filter(path, user)


class DestinationProvider(_StoreProvider):
    """CIM_ListenerDestinationCIMXML and CIM_IndicationHandlerCIMXML."""

    _kind = "destination"

    def _list(self, classname, user):
        return _mgr().destinations(classname, user)

    def _get(self, path, user):
        inst = _mgr().get_destination(path, user)
        if inst is not None and inst.classname.lower() != path.classname.lower():
            return None
        return inst


class SubscriptionProvider(_StoreProvider):
    """CIM_IndicationSubscription (an association of a filter and a destination)."""

    _kind = "subscription"

    def _list(self, classname, user):
        return _mgr().subscriptions(user)

    def _get(self, path, user):
        return _mgr().get_subscription(path, user)

    def references(self, env, object_name, model, result_class_name, role, result_role,
                   keys_only):
        return self.simple_refs(env, object_name, model, result_class_name, role,
                                result_role, keys_only)


def _service_path(mgr: IndicationManager) -> CIMInstanceName:
    return service_path(mgr.hostname)


def _caps_path() -> CIMInstanceName:
    return CIMInstanceName(CAPS_CLASS, namespace=INTEROP,
                           keybindings={"InstanceID": f"{BRAND}:IndicationServiceCapabilities"})


class ServiceProvider(CIMProvider2):
    """CIM_IndicationService: one instance; its delivery settings can be modified."""

    def enum_instances(self, env, model, keys_only) -> Iterator:
        mgr = _mgr()
        inst = model.copy()
        for k, v in _service_path(mgr).keybindings.items():
            inst[k] = v
        if not keys_only:
            for name, value in service_properties(mgr.settings).values():
                inst[name] = value
        yield inst

    def set_instance(self, env, instance, modify_existing):
        if not modify_existing:
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                           "CIM_IndicationService instances cannot be created")
        mgr = _mgr()
        if not paths_equal(instance.path, _service_path(mgr)):
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                           f"Instance not found: {show(instance.path)}")
        # The delivery and removal settings act on every user's subscriptions.
        if not mgr.access.is_admin(env.get_user_name()):
            raise CIMError(pywbem.CIM_ERR_ACCESS_DENIED,
                           "Only administrators ([server] admin_users, admin_group) may "
                           "modify the indication service's settings")
        props = instance.copy()
        for k in instance.path.keybindings:
            if k in props.properties:
                del props.properties[k]
        mgr.modify_service(props)
        return instance


class CapabilitiesProvider(CIMProvider2):
    """CIM_IndicationServiceCapabilities: what the service allows and supports."""

    def enum_instances(self, env, model, keys_only) -> Iterator:
        mgr = _mgr()
        inst = model.copy()
        inst["InstanceID"] = _caps_path()["InstanceID"]
        if not keys_only:
            inst["ElementName"] = "Indication Service Capabilities"
            inst["FilterCreationEnabledIsSettable"] = False
            inst["DeliveryRetryAttemptsIsSettable"] = True
            inst["DeliveryRetryIntervalIsSettable"] = True
            inst["SubscriptionRemovalActionIsSettable"] = True
            inst["SubscriptionRemovalTimeIntervalIsSettable"] = True
            inst["MaxListenerDestinations"] = MAX_DESTINATIONS
            inst["MaxActiveSubscriptions"] = MAX_SUBSCRIPTIONS
            inst["SubscriptionsPersisted"] = bool(mgr.state_dir)
        yield inst


class ElementCapabilitiesProvider(CIMProvider2):
    """CIM_ElementCapabilities: the indication service and its capabilities."""

    def enum_instances(self, env, model, keys_only) -> Iterator:
        inst = model.copy()
        inst["ManagedElement"] = _service_path(_mgr())
        inst["Capabilities"] = _caps_path()
        yield inst

    def references(self, env, object_name, model, result_class_name, role, result_role,
                   keys_only):
        return self.simple_refs(env, object_name, model, result_class_name, role,
                                result_role, keys_only)


#: (class, provider types, provider class) the server registers in the interop namespace.
BUILTIN_CLASSES = [
    (FILTER_CLASS, ("instance",), FilterProvider),
    ("CIM_ListenerDestinationCIMXML", ("instance",), DestinationProvider),
    ("CIM_IndicationHandlerCIMXML", ("instance",), DestinationProvider),
    (SUB_CLASS, ("instance", "association"), SubscriptionProvider),
    (SERVICE_CLASS, ("instance",), ServiceProvider),
    (CAPS_CLASS, ("instance",), CapabilitiesProvider),
    ("CIM_ElementCapabilities", ("instance", "association"), ElementCapabilitiesProvider),
]


def get_providers(env):
    """The provider module entry point."""
    return {name: cls() for name, _types, cls in BUILTIN_CLASSES}


def iter_builtin(schema: Schema) -> Iterable[tuple[str, tuple[str, ...]]]:
    """(class, types) of the builtin classes the schema defines in the interop namespace."""
    for name, types, _cls in BUILTIN_CLASSES:
        if schema.has_namespace(INTEROP) and schema.has_class(INTEROP, name):
            yield name, types
