"""{P}_VirtualSystemManagementService: one per host (DSP1042).

Keys: CreationClassName, Name = "Management Service", SystemCreationClassName
= {P}_HostSystem, SystemName = the host system's Name.  Caption names the
hypervisor and its version ("QEMU 7.2.0"), as libvirt-cim does; Revision
(digits) and Changeset identify this implementation; Release and
LibvirtVersion complete them.

Methods (DSP1042; invoked on the class path or on an instance path, as
libvirt-cim's clients do): DefineSystem, DestroySystem, AddResourceSettings,
ModifyResourceSettings, RemoveResourceSettings, ModifySystemSettings.  They
are thin: parameters are checked and turned into plain values here, the work
is done by :mod:`kvm_providers.model.manage`.  They complete synchronously
(return 0); bad parameters raise CIM_ERR_INVALID_PARAMETER naming the
parameter, property and value; a target that does not exist raises
CIM_ERR_NOT_FOUND naming it; libvirt failures raise CIM_ERR_FAILED.  On any
error nothing has changed.  See docs/lifecycle.md.
"""

from __future__ import annotations

from typing import Any, Optional

import pywbem
from pywbem import CIMError, CIMInstanceName

from kvm_providers import __version__
from kvm_providers.cimxml.embedded import (EmbeddedInstanceError, EmbeddedSyntaxError,
                                            decode_embedded_instance)
from kvm_providers.schema.valuemaps import CIM_VirtualSystemManagementService
from kvm_providers.model import manage
from kvm_providers.virt import host_facts, keys
from kvm_providers.virt.connection import DomainNotFound, Host
from kvm_providers.model.kinds import kind_for_class
from kvm_providers.virt.hostfacts import version_string
from kvm_providers.model.settings import InvalidSetting
from kvm_providers.provider.base import unparsable_embedded

from .common import ENABLED_AND_OK, PerHostProvider, fill, providers_for
from .common.instances import props_of
from .common.summary import get_summary_information
from .common.paths import cs_path, rasd_path, vsms_keys

#: "Completed with No Error", 0 in the ReturnValue map of every method of the service.
_COMPLETED = CIM_VirtualSystemManagementService.DefineSystem.ReturnValue.Completed_with_No_Error

__all__ = ["ManagementServiceProvider", "get_providers", "REVISION", "CHANGESET"]


# libvirt-cim reports its source revision (the number of commits of its
# repository: `git rev-list HEAD | wc -l` in its autogen.sh) as Revision, and its
# clients gate behaviour on it (child pools from 837, template RASDs from 707,
# controllers from 1310, ...).  Its last release, 0.6.3, is revision 1255 and
# its repository ends at 1347.  Ours starts above that and grows with our own
# version, so that clients treat this implementation as the newest libvirt-cim.
LIBVIRT_CIM_LAST_REVISION = 1347


def _revision(version: str) -> str:
    """Digits above libvirt-cim's last revision, growing with our version: 0.1.0 -> 1447."""
    parts = [int(p) if p.isdigit() else 0 for p in (version.split(".") + ["0", "0"])[:3]]
    return str(LIBVIRT_CIM_LAST_REVISION + parts[0] * 10000 + parts[1] * 100 + parts[2])


REVISION = _revision(__version__)
# The package version identifies the build (an installed package has no source
# checkout to read a commit from).
CHANGESET = f"kvm_providers-{__version__}"


def _vanished(func):
    """A domain undefined while a method works on it: CIM_ERR_NOT_FOUND, not a traceback."""
    import functools

    @functools.wraps(func)
    def wrapper(self, env, object_name, **params):
        try:
            return func(self, env, object_name, **params)
        except DomainNotFound as exc:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                           f"the virtual system went away during the request: {exc}") from None
    return wrapper


class ManagementServiceProvider(PerHostProvider):
    """{P}_VirtualSystemManagementService for every family."""

    def _fill(self, inst: Any, model: Any, host: Host) -> None:
        def caption():
            f = host_facts(host)
            return f"{f['hv_type']} {version_string(f['hv_version'])}"
        fill(inst, model, {
            "Caption": caption,
            "ElementName": keys.MANAGEMENT_SERVICE_NAME,
            "Revision": REVISION,
            "Changeset": CHANGESET,
            "Release": __version__,
            "LibvirtVersion": lambda: version_string(host_facts(host)["lib_version"]),
            **ENABLED_AND_OK,
            "Started": True,
        })

    def host_keys(self, host: Host, classname: str) -> dict[str, Any]:
        return vsms_keys(host, classname)

    def get_instance(self, env, model) -> Optional[Any]:
        cls = model.classname
        for host in self.hosts(cls):
            if not self._same_host(model["SystemName"], host):
                continue
            want = vsms_keys(host, cls)
            if all(isinstance(model[k], str) and model[k].lower() == v.lower()
                   if k.endswith("ClassName") else model[k] == v for k, v in want.items()):
                self._fill(model, model, host)
                return model
        return None

    @staticmethod
    def _same_host(system_name: Any, host: Host) -> bool:
        if not isinstance(system_name, str):
            return False
        return (system_name.split(":", 1)[0] == host.label) if host.qualified else True

    # -- the extrinsic methods ------------------------------------------------------

    @staticmethod
    def _same(host: Optional[Host], target: Host, param: str) -> None:
        if host is not None and host is not target:
            raise InvalidSetting(param, f"names a system of host {target.label!r}, not of the "
                                        f"service's host {host.label!r}")

    @staticmethod
    def _instance(value: Any, ns: Optional[str], where: str) -> Any:
        """An embedded instance (decoded by the MI layer, or decoded here)."""
        if value is None:
            raise InvalidSetting(where, "is NULL")
        if isinstance(value, pywbem.CIMInstance):
            return value
        try:
            return decode_embedded_instance(value, ns or "root/virt")
        except EmbeddedSyntaxError as exc:
            raise unparsable_embedded(where, exc) from None
        except EmbeddedInstanceError as exc:
            raise InvalidSetting(where, str(exc)) from None

    def _rasds(self, values: Any, ns: Optional[str], param: str = "ResourceSettings"
               ) -> list[manage.RasdRequest]:
        if values is None or (isinstance(values, list) and not values):
            raise InvalidSetting(param, "is missing or empty")
        if not isinstance(values, list):
            values = [values]
        out = []
        for i, v in enumerate(values):
            where = f"{param}[{i}]"
            inst = self._instance(v, ns, where)
            out.append(manage.RasdRequest(inst.classname, props_of(inst),
                                          f"{where} ({inst.classname})"))
        return out

    def _domain(self, family: str, name: Any, what: str) -> Any:
        # The descriptions carry libvirt-cim's words, which its clients look for
        # (docs/compat.md, "Error descriptions"), then ours.
        if name is None:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                           f"{what}: Unable to retrieve domain name: Error 0 (the reference "
                           f"has no Name key, so it names no virtual system)")
        hit = keys.parse_cs_name(family, name) if isinstance(name, str) else None
        ref = manage.lookup(*hit) if hit is not None else None
        if ref is None:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                           f"{what}: Referenced domain `{name}' does not exist: Domain not "
                           f"found (no virtual system {name!r})")
        return ref

    def _vssd_domain(self, family: str, path: Any, param: str) -> Any:
        if not isinstance(path, CIMInstanceName):
            raise InvalidSetting(param, "is missing (a reference to a VirtualSystemSettingData)")
        if keys.family_of_class(path.classname) != family or \
                not path.classname.lower().endswith("_virtualsystemsettingdata"):
            raise InvalidSetting(param, f"{path.classname} is not a {family}_"
                                        f"VirtualSystemSettingData")
        iid = path.keybindings.get("InstanceID")
        hit = keys.parse_vssd_id(family, iid) if iid is not None else None
        ref = manage.lookup(*hit) if hit is not None else None
        if ref is None:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND, f"{param}: no virtual system "
                                                     f"settings {iid!r}")
        return ref

    @staticmethod
    def _rasd_paths(results: list[manage.Result]) -> list[CIMInstanceName]:
        return [rasd_path(r.host, r.domain, r.kind, r.devid) for r in results]

    @_vanished
    def cim_method_definesystem(self, env, object_name, param_systemsettings=None,
                                param_resourcesettings=None,
                                param_referenceconfiguration=None):
        """DefineSystem(SystemSettings, ResourceSettings[], ReferenceConfiguration)
        -> ResultingSystem."""
        family = self.family(object_name.classname)
        ns = object_name.namespace
        host = self._service_host(object_name)
        vssd = self._instance(param_systemsettings, ns, "SystemSettings")
        if keys.family_of_class(vssd.classname) not in (family, None) or \
                not vssd.classname.lower().endswith("virtualsystemsettingdata"):
            raise InvalidSetting("SystemSettings", f"{vssd.classname} is not a "
                                                   f"{family}_VirtualSystemSettingData")
        rasds = [] if param_resourcesettings in (None, []) else \
            self._rasds(param_resourcesettings, ns)
        reference = None
        if param_referenceconfiguration is not None:
            reference = self._vssd_domain(family, param_referenceconfiguration,
                                          "ReferenceConfiguration")
            self._same(host, reference.host, "ReferenceConfiguration")
            host = reference.host
        if host is None:
            raise InvalidSetting("", f"several {family} hosts are configured: invoke "
                                     f"DefineSystem on the instance path of one host's "
                                     f"VirtualSystemManagementService")
        ref = manage.define_system(host, family, props_of(vssd), rasds, reference)
        env.get_logger().log_info(f"DefineSystem: defined {ref.name!r} on {host.label}")
        return _COMPLETED, {"ResultingSystem": cs_path(host, ref.name)}

    @_vanished
    def cim_method_destroysystem(self, env, object_name, param_affectedsystem=None):
        """DestroySystem(AffectedSystem)."""
        family = self.family(object_name.classname)
        host = self._service_host(object_name)
        path = param_affectedsystem
        if not isinstance(path, CIMInstanceName):
            raise InvalidSetting("AffectedSystem", "is missing (a reference to a "
                                                   "ComputerSystem)")
        if keys.family_of_class(path.classname) != family or \
                not path.classname.lower().endswith("_computersystem"):
            raise InvalidSetting("AffectedSystem", f"{path.classname} is not a "
                                                   f"{family}_ComputerSystem")
        ref = self._domain(family, path.keybindings.get("Name"), "AffectedSystem")
        self._same(host, ref.host, "AffectedSystem")
        manage.destroy_system(ref)
        env.get_logger().log_info(f"DestroySystem: destroyed {ref.name!r}")
        return _COMPLETED, {}

    @_vanished
    def cim_method_modifysystemsettings(self, env, object_name, param_systemsettings=None):
        """ModifySystemSettings(SystemSettings)."""
        family = self.family(object_name.classname)
        host = self._service_host(object_name)
        vssd = self._instance(param_systemsettings, object_name.namespace, "SystemSettings")
        props = props_of(vssd)
        iid = props.get_("InstanceID")
        if iid is not None:
            hit = keys.parse_vssd_id(family, iid)
            ref = manage.lookup(*hit) if hit is not None else None
            if ref is None:
                raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                               f"SystemSettings: no virtual system settings {iid!r}")
        else:
            name = props.get_("VirtualSystemIdentifier") or props.get_("ElementName")
            if name is None:
                raise InvalidSetting("SystemSettings", "InstanceID (or VirtualSystemIdentifier) "
                                                       "is missing")
            if host is None:
                raise InvalidSetting("SystemSettings", "InstanceID is missing, and several "
                                                       "hosts are configured")
            ref = self._domain(family, keys.cs_name(host, str(name)), "SystemSettings")
        self._same(host, ref.host, "SystemSettings")
        manage.modify_system(ref, props)
        return _COMPLETED, {}

    @_vanished
    def cim_method_addresourcesettings(self, env, object_name, param_affectedconfiguration=None,
                                       param_resourcesettings=None):
        """AddResourceSettings(AffectedConfiguration, ResourceSettings[])
        -> ResultingResourceSettings[]."""
        family = self.family(object_name.classname)
        host = self._service_host(object_name)
        ref = self._vssd_domain(family, param_affectedconfiguration, "AffectedConfiguration")
        self._same(host, ref.host, "AffectedConfiguration")
        rasds = self._rasds(param_resourcesettings, object_name.namespace)
        results = manage.add_resources(ref, family, rasds)
        return _COMPLETED, {"ResultingResourceSettings": self._rasd_paths(results)}

    def _rasd_target(self, family: str, host: Optional[Host], iid: Any, classname: str,
                     where: str):
        kind, what = kind_for_class(classname)
        if kind is None or what != "rasd" or keys.family_of_class(classname) != family:
            raise InvalidSetting(where, f"{classname} is not a {family} resource allocation "
                                        f"setting")
        hit = keys.parse_device_id(family, iid) if isinstance(iid, str) else None
        if hit is None:
            raise InvalidSetting(where, f"InstanceID {iid!r} is missing or not "
                                        f"'<system>/<device>'")
        dhost, domain, devid = hit
        ref = manage.lookup(dhost, domain)
        if ref is None:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND, f"{where}: no virtual system {domain!r}")
        self._same(host, ref.host, where)
        return ref, devid, kind

    @_vanished
    def cim_method_modifyresourcesettings(self, env, object_name, param_resourcesettings=None):
        """ModifyResourceSettings(ResourceSettings[]) -> ResultingResourceSettings[]."""
        family = self.family(object_name.classname)
        host = self._service_host(object_name)
        items = []
        for r in self._rasds(param_resourcesettings, object_name.namespace):
            ref, devid, kind = self._rasd_target(family, host, r.props.get_("InstanceID"),
                                                 r.classname, r.where)
            items.append((ref, devid, kind, r))
        results = manage.modify_resources(items, family)
        return _COMPLETED, {"ResultingResourceSettings": self._rasd_paths(results)}

    @_vanished
    def cim_method_removeresourcesettings(self, env, object_name, param_resourcesettings=None):
        """RemoveResourceSettings(ResourceSettings[] references)."""
        family = self.family(object_name.classname)
        host = self._service_host(object_name)
        paths = param_resourcesettings
        if paths is None or (isinstance(paths, list) and not paths):
            raise InvalidSetting("ResourceSettings", "is missing or empty")
        if not isinstance(paths, list):
            paths = [paths]
        items = []
        for i, path in enumerate(paths):
            where = f"ResourceSettings[{i}]"
            if not isinstance(path, CIMInstanceName):
                raise InvalidSetting(where, f"{path!r} is not a reference")
            ref, devid, kind = self._rasd_target(family, host, path.keybindings.get("InstanceID"),
                                                 path.classname, where)
            items.append((ref, devid, kind, where))
        manage.remove_resources(items)
        return _COMPLETED, {}

    def cim_method_getsummaryinformation(self, env, object_name, param_requestedinformation=None,
                                         param_settingdata=None):
        """GetSummaryInformation(RequestedInformation[], SettingData[]) ->
        SummaryInformation[] (vendor method, issue 15: providers/common/summary.py)."""
        return get_summary_information(self.family(object_name.classname),
                                       object_name.namespace, param_requestedinformation,
                                       param_settingdata)


def get_providers(env) -> dict[str, Any]:
    return providers_for(ManagementServiceProvider(), "VirtualSystemManagementService")
