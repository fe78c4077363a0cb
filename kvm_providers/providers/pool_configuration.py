"""{P}_ResourcePoolConfigurationService (Name "RPCS", one per host) and its
{P}_ResourcePoolConfigurationCapabilities (InstanceID "RPCC"), DSP1041.

Methods (invoked on the service's instance path, or on the class path: with
several hosts of the family the pool parameters then say which host):

* CreateChildResourcePool(ElementName, Settings[], ParentPool[]): a virtual
  network from one NetPoolResourceAllocationSettingData, or a storage pool
  from one DiskPoolResourceAllocationSettingData; ParentPool, if given, is
  NetworkPool/0 or DiskPool/0.  Returns Pool.
* DeleteResourcePool(Pool): a storage pool or network nothing uses.
* CreateResourceInPool(Settings, Pool): a storage volume from a
  StorageVolumeResourceAllocationSettingData.  Returns Resource (the volume's
  StorageVolumeResourceAllocationSettingData).
* DeleteResourceInPool(Resource, Pool): a volume that is no disk of a
  virtual system, named by the RASD's InstanceID, Address (libvirt-cim's
  clients send the path there), Path or VolumeName.
* RefreshResourcesInPool(Pool): rescan a storage pool.

All complete before they return (0).  Bad input raises CIM_ERR_INVALID_PARAMETER
naming the parameter and property, a pool that does not exist
CIM_ERR_NOT_FOUND, something in use or refused by libvirt CIM_ERR_FAILED; the
libvirt layer (kvm_providers.model.poolconfig) leaves nothing half created.
The capabilities list exactly the methods implemented here.
"""

from __future__ import annotations

from typing import Any, Optional

import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName

from kvm_providers.cimxml.embedded import (EmbeddedInstanceError, EmbeddedSyntaxError,
                                            decode_embedded_instance)
from kvm_providers.schema.valuemaps import (P_ResourcePoolConfigurationCapabilities,
                                            P_ResourcePoolConfigurationService)
from kvm_providers.provider.base import unparsable_embedded
from kvm_providers.virt import keys
from kvm_providers.virt.connection import Host
from kvm_providers.model.poolconfig import (InUse, InvalidSettings, Volume, create_network,
                                           create_storage_pool, delete_pool, delete_volume,
                                           find_volume, make_volume, prepare_volume,
                                           refresh_pool, volume_of_path)
from kvm_providers.model.pools import DISK, NET, PRIMORDIAL, Pool, kind_for_class, \
    lookup_pool, parse_pool_id

from .common import ENABLED_AND_OK, PerHostProvider, fill, providers_for
from .common.volume_job import volume_job
from .common.pool_paths import (pool_path, rpcc_id, rpcs_keys, same_host_system,
                                volume_rasd_path)

__all__ = ["PoolConfigurationServiceProvider", "PoolConfigurationCapabilitiesProvider",
           "get_providers", "METHOD_VALUES", "synchronous_methods"]

_SMS = P_ResourcePoolConfigurationCapabilities.SynchronousMethodsSupported
#: ResourcePoolConfigurationCapabilities.SynchronousMethodsSupported values (2..7: DMTF;
#: 32768..: this implementation's, see mof/virt/templates/50_capabilities.mof).
METHOD_VALUES = {"CreateResourcePool": _SMS.CreateResourcePool_is_supported,
                 "CreateChildResourcePool": _SMS.CreateChild_ResourcePool_is_supported,
                 "DeleteResourcePool": _SMS.DeleteResourcePool_is_supported,
                 "AddResourcesToResourcePool": _SMS.AddResourcesToResourcePool_is_supported,
                 "RemoveResourcesFromResourcePool":
                     _SMS.RemoveResourcesFromResourcePool_is_supported,
                 "ChangeParentResourcePool": _SMS.ChangeParentResourcePool_is_supported,
                 "CreateResourceInPool": _SMS.CreateResourceInPool_is_supported,
                 "DeleteResourceInPool": _SMS.DeleteResourceInPool_is_supported,
                 "RefreshResourcesInPool": _SMS.RefreshResourcesInPool_is_supported}

#: "Job Completed with No Error", 0 in the ReturnValue map of every method of the service.
_COMPLETED = P_ResourcePoolConfigurationService.CreateResourcePool.ReturnValue \
    .Job_Completed_with_No_Error

_SERVICE_PROPS = ("ElementName", "Caption", "Description", "EnabledState", "RequestedState",
                  "OperationalStatus", "HealthState", "Started")
_CAPS_PROPS = ("ElementName", "SynchronousMethodsSupported", "AsynchronousMethodsSupported")


def _invalid(method: str, msg: str) -> CIMError:
    return CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, f"{method}: {msg}")


def _props(inst: CIMInstance) -> dict[str, Any]:
    return {p.name: p.value for p in inst.properties.values()}


class PoolConfigurationServiceProvider(PerHostProvider):
    """{P}_ResourcePoolConfigurationService for every family."""

    # -- the instance ----------------------------------------------------------------

    def host_keys(self, host: Host, classname: str) -> dict[str, Any]:
        return rpcs_keys(host, classname)

    def _fill(self, inst: Any, model: Any, host: Host) -> None:
        values = {"ElementName": "RPCS", "Caption": "Resource Pool Configuration Service",
                  "Description": "Creates and deletes storage pools, virtual networks and "
                                 "storage volumes",
                  **ENABLED_AND_OK, "Started": True}
        fill(inst, model, values, _SERVICE_PROPS)

    def _host_of_keys(self, classname: str, kb: Any) -> Optional[Host]:
        """As the base's, but SystemName must name the host exactly."""
        got = {k.lower(): v for k, v in kb.items()}
        for host in self.hosts(classname):
            if not same_host_system(got.get("systemname"), host):
                continue
            want = rpcs_keys(host, classname)
            if all(str(got.get(k.lower(), "")).lower() == str(v).lower()
                   for k, v in want.items()):
                return host
        return None

    def get_instance(self, env, model) -> Optional[Any]:
        host = self._host_of_keys(model.classname, {
            k: model[k] for k in ("CreationClassName", "Name", "SystemCreationClassName",
                                  "SystemName")})
        if host is None:
            return None
        self._fill(model, model, host)
        return model

    # -- parameters -------------------------------------------------------------------

    def _pool(self, method: str, family: str, service_host: Optional[Host], ref: Any,
              param: str = "Pool") -> Pool:
        """The existing pool a reference parameter names (on the service's host)."""
        if not isinstance(ref, CIMInstanceName):
            raise _invalid(method, f"{param} is required (a reference to a resource pool)")
        kind = kind_for_class(ref.classname)
        if kind is None or keys.family_of_class(ref.classname) != family:
            raise _invalid(method, f"{param}: {ref.classname} is not a {family} resource pool "
                                   "class")
        iid = ref.keybindings.get("InstanceID")
        hit = parse_pool_id(family, iid)
        if hit is None or hit[1] is not kind:
            raise _invalid(method, f"{param}: InstanceID {iid!r} is not the id of a "
                                   f"{ref.classname}")
        host, _kind, name = hit
        if service_host is not None and host is not service_host:
            raise _invalid(method, f"{param} {iid!r} is a pool of host {host.label!r}, not of "
                                   f"the service's host {service_host.label!r}")
        pool = lookup_pool(host, kind, name)
        if pool is None:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND, f"{method}: {param} {iid!r} does not "
                                                     "exist")
        return pool

    @staticmethod
    def _embedded(method: str, value: Any, ns: Optional[str], param: str) -> CIMInstance:
        if value is None:
            raise _invalid(method, f"{param} is required")
        if isinstance(value, CIMInstance):
            return value
        try:
            return decode_embedded_instance(value, ns or "root/virt")
        except EmbeddedSyntaxError as exc:
            raise unparsable_embedded(f"{method}: {param}", exc) from None
        except EmbeddedInstanceError as exc:
            raise _invalid(method, f"{param}: {exc}") from None

    @staticmethod
    def _base(classname: str) -> str:
        return classname.split("_", 1)[1].lower() if "_" in classname else classname.lower()

    def _call(self, method: str, func, *args):
        """Run a libvirt-layer operation, its errors turned into CIM errors."""
        try:
            return func(*args)
        except InvalidSettings as exc:
            raise _invalid(method, str(exc)) from None
        except InUse as exc:
            raise CIMError(pywbem.CIM_ERR_FAILED, f"{method}: {exc}") from None

    # -- the methods ------------------------------------------------------------------

    def cim_method_createchildresourcepool(self, env, object_name, param_elementname=None,
                                           param_settings=None, param_parentpool=None):
        """Create a virtual network or a storage pool (see the module docstring)."""
        m = "CreateChildResourcePool"
        family = self.family(object_name.classname)
        host = self._service_host(object_name)
        settings = param_settings if isinstance(param_settings, list) else \
            ([param_settings] if param_settings is not None else [])
        settings = [s for s in settings if s is not None]
        if len(settings) != 1:
            raise _invalid(m, f"Settings must hold exactly one NetPoolResourceAllocationSetting"
                              f"Data or DiskPoolResourceAllocationSettingData "
                              f"(got {len(settings)})")
        inst = self._embedded(m, settings[0], object_name.namespace, "Settings[0]")
        base = self._base(inst.classname)
        if keys.family_of_class(inst.classname) != family or base not in (
                "netpoolresourceallocationsettingdata", "diskpoolresourceallocationsettingdata"):
            raise _invalid(m, f"Settings[0] is a {inst.classname}, not a {family}_NetPool"
                              f"ResourceAllocationSettingData or {family}_DiskPoolResource"
                              "AllocationSettingData")
        kind = NET if base.startswith("netpool") else DISK
        parents = param_parentpool if isinstance(param_parentpool, list) else \
            ([param_parentpool] if param_parentpool is not None else [])
        for i, ref in enumerate(p for p in parents if p is not None):
            parent = self._pool(m, family, host, ref, f"ParentPool[{i}]")
            if parent.kind is not kind or not parent.primordial:
                raise _invalid(m, f"ParentPool[{i}] {parent.pool_id}: a "
                                  f"{'network' if kind is NET else 'storage pool'} is a child "
                                  f"of {kind.classname}/{PRIMORDIAL}")
            host = parent.host
        if host is None:
            raise _invalid(m, "several hosts serve this class: invoke the method on a service "
                              "instance, or give ParentPool")
        name = param_elementname
        if not isinstance(name, str) or not name.strip():
            raise _invalid(m, "ElementName (the name of the new pool) is required")
        props = _props(inst)
        if kind is NET:
            pool = self._call(m, create_network, host, name, props)
        else:
            pool = self._call(m, create_storage_pool, host, name, props)
        return _COMPLETED, {"Pool": pool_path(pool)}

    def _on_pool(self, method: str, object_name: CIMInstanceName, ref: Any, func):
        """Run func(pool) on the pool the Pool parameter names; the method's result."""
        pool = self._pool(method, self.family(object_name.classname),
                          self._service_host(object_name), ref)
        self._call(method, func, pool)
        return _COMPLETED, {}

    def cim_method_deleteresourcepool(self, env, object_name, param_pool=None):
        """Stop and undefine a storage pool or network that nothing uses."""
        return self._on_pool("DeleteResourcePool", object_name, param_pool, delete_pool)

    def cim_method_createresourceinpool(self, env, object_name, param_settings=None,
                                        param_pool=None):
        """Create a storage volume in a storage pool."""
        m = "CreateResourceInPool"
        family = self.family(object_name.classname)
        pool = self._pool(m, family, self._service_host(object_name), param_pool)
        inst = self._embedded(m, param_settings, object_name.namespace, "Settings")
        if keys.family_of_class(inst.classname) != family or \
                self._base(inst.classname) != "storagevolumeresourceallocationsettingdata":
            raise _invalid(m, f"Settings is a {inst.classname}, not a {family}_StorageVolume"
                              "ResourceAllocationSettingData")
        prepared = self._call(m, prepare_volume, pool, _props(inst))
        if prepared[1] <= 0:
            vol = self._call(m, make_volume, pool, prepared)
            return _COMPLETED, {"Resource": volume_rasd_path(pool.host, vol.path)}
        return volume_job(pool, prepared)

    def _volume(self, m: str, pool: Pool, inst: CIMInstance, family: str) -> Volume:
        props = _props(inst)
        if self._base(inst.classname) == "storagevolumeresourceallocationsettingdata" and \
                isinstance(props.get("InstanceID"), str) and "#" not in props["InstanceID"]:
            hit = keys.parse_qualified(family, props["InstanceID"])
            if hit is not None and hit[0] is pool.host:
                vol = volume_of_path(pool.host, hit[1])
                if vol is not None:
                    return self._in_pool(m, pool, vol)
        for prop in ("Address", "Path"):
            path = props.get(prop)
            if isinstance(path, str) and path.strip():
                vol = volume_of_path(pool.host, path.strip())
                if vol is None:
                    raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                                   f"{m}: Resource: no storage volume has {prop} {path!r}")
                return self._in_pool(m, pool, vol)
        name = props.get("VolumeName")
        if isinstance(name, str) and name:
            vol = find_volume(pool, name=name)
            if vol is None:
                raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                               f"{m}: pool {pool.pool_id} has no volume {name!r}")
            return vol
        raise _invalid(m, "Resource names no volume (give its InstanceID, Address, Path or "
                          "VolumeName)")

    @staticmethod
    def _in_pool(m: str, pool: Pool, vol: Volume) -> Volume:
        if vol.pool.name != pool.name:
            raise _invalid(m, f"volume {vol.path!r} is in pool {vol.pool.pool_id}, not in "
                              f"{pool.pool_id}")
        return vol

    def cim_method_deleteresourceinpool(self, env, object_name, param_resource=None,
                                        param_pool=None):
        """Delete a storage volume that is no disk of any virtual system."""
        m = "DeleteResourceInPool"
        family = self.family(object_name.classname)
        pool = self._pool(m, family, self._service_host(object_name), param_pool)
        if pool.kind is not DISK or pool.primordial:
            raise _invalid(m, f"Pool {pool.pool_id}: volumes are in storage pools "
                              "(DiskPool/<name>)")
        inst = self._embedded(m, param_resource, object_name.namespace, "Resource")
        vol = self._volume(m, pool, inst, family)
        self._call(m, delete_volume, vol)
        return _COMPLETED, {}

    def cim_method_refreshresourcesinpool(self, env, object_name, param_pool=None):
        """Rescan the volumes of a storage pool."""
        return self._on_pool("RefreshResourcesInPool", object_name, param_pool, refresh_pool)


    # -- methods the service does not offer ---------------------------------------------
    # Answered CIM_ERR_NOT_SUPPORTED, as libvirt-cim answered them (its clients test for
    # it; DSP0200 lists the code for InvokeMethod), rather than the dispatcher's
    # CIM_ERR_METHOD_NOT_AVAILABLE for a method without implementation.  Any parameters
    # are accepted: the call is refused whatever it carries.

    def cim_method_createresourcepool(self, env, object_name, **params):
        """Not offered: pools are created as children of the primordial pools."""
        raise _not_offered("CreateResourcePool", "pools are created with "
                                                 "CreateChildResourcePool")

    def cim_method_addresourcestoresourcepool(self, env, object_name, **params):
        """Not offered: a pool's resources are libvirt's (volumes, networks)."""
        raise _not_offered("AddResourcesToResourcePool", "a pool holds what libvirt has in it")

    def cim_method_removeresourcesfromresourcepool(self, env, object_name, **params):
        """Not offered: a pool's resources are libvirt's (volumes, networks)."""
        raise _not_offered("RemoveResourcesFromResourcePool",
                           "a pool holds what libvirt has in it")


#: The methods of CIM_ResourcePoolConfigurationService this service refuses.
NOT_OFFERED = frozenset({"CreateResourcePool", "AddResourcesToResourcePool",
                         "RemoveResourcesFromResourcePool"})


def _not_offered(method: str, why: str) -> CIMError:
    return CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                    f"{method} is not supported by this service: {why}")


def synchronous_methods() -> list[int]:
    """SynchronousMethodsSupported: the service methods this module implements."""
    return [v for name, v in METHOD_VALUES.items() if name not in NOT_OFFERED and
            hasattr(PoolConfigurationServiceProvider, f"cim_method_{name.lower()}")]


class PoolConfigurationCapabilitiesProvider(PerHostProvider):
    """{P}_ResourcePoolConfigurationCapabilities for every family."""

    def host_keys(self, host: Host, classname: str) -> dict[str, Any]:
        return {"InstanceID": rpcc_id(host)}

    def _fill(self, inst: Any, model: Any, host: Host) -> None:
        fill(inst, model, {"ElementName": "RPCC",
                           "SynchronousMethodsSupported": synchronous_methods(),
                           # with AllocationQuantity, a job (docs/jobs.md)
                           "AsynchronousMethodsSupported": [
                               METHOD_VALUES["CreateResourceInPool"]]}, _CAPS_PROPS)


def get_providers(env) -> dict[str, Any]:
    out = providers_for(PoolConfigurationServiceProvider(), "ResourcePoolConfigurationService")
    out.update(providers_for(PoolConfigurationCapabilitiesProvider(),
                             "ResourcePoolConfigurationCapabilities"))
    return out
