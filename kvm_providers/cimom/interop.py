"""The embedded server's own interop providers (DSP1033, DSP1071 WBEM Server, DSP1054).

In sfcb and Pegasus the CIM server provides these classes; the embedded
server provides them here, as an ordinary provider module, so that pywbem's
``WBEMServer`` discovery works: the interop namespace, CIM_ObjectManager
(brand and version), CIM_Namespace and CIM_NamespaceInManager, the
CIM-XML communication mechanism, and the server's registered profiles with
their ElementConformsToProfile to the object manager.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Optional

from pywbem import CIMInstanceName

from .._version import __version__
from ..provider import CIMProvider2
from .names import BRAND, INTEROP, service_path
from ..schema.valuemaps import CIM_EnabledLogicalElement as _ELE
from ..schema.valuemaps import CIM_ManagedSystemElement as _MSE
from ..schema.valuemaps import CIM_Namespace
from ..schema.valuemaps import CIM_ObjectManagerCommunicationMechanism as _OMCM
from ..schema.valuemaps import CIM_RegisteredProfile as _RP

_AUTH = _OMCM.AuthenticationMechanismsSupported
_FP = _OMCM.FunctionalProfilesSupported
#: The DSP0200 functional groups the server implements (cimom/dispatcher.py): the
#: basic reads and writes, instance manipulation, association traversal, queries,
#: qualifier declarations, and the pull operations with their queries.
FUNCTIONAL_PROFILES = [_FP.Basic_Read, _FP.Basic_Write, _FP.Instance_Manipulation,
                       _FP.Association_Traversal, _FP.Query_Execution,
                       _FP.Qualifier_Declaration, _FP.Pulled_Read, _FP.Pulled_Query_Execution]

__all__ = ["ServerInfo", "configure", "get_providers", "BUILTIN_CLASSES", "INTEROP", "BRAND"]


@dataclass
class ServerInfo:
    """What the interop providers report about the server."""

    hostname: str
    namespaces: list[str]
    secure_ports: list[int] = field(default_factory=list)
    plain_ports: list[int] = field(default_factory=list)
    auth: bool = False


_info: Optional[ServerInfo] = None


def configure(info: ServerInfo) -> None:
    """Called by the server before it loads this module."""
    global _info
    _info = info


def _server() -> ServerInfo:
    if _info is None:
        raise RuntimeError("interop providers used before the server configured them")
    return _info


def _om_path() -> CIMInstanceName:
    s = _server()
    return CIMInstanceName("CIM_ObjectManager", namespace=INTEROP, keybindings={
        "SystemCreationClassName": "CIM_ComputerSystem", "SystemName": s.hostname,
        "CreationClassName": "CIM_ObjectManager", "Name": f"{BRAND}:{s.hostname}"})


#: (InstanceID, RegisteredName, RegisteredVersion) of the server's own profiles (DMTF).
SERVER_PROFILES = [
    ("CIM:DSP1033-ProfileRegistration-1.0.0", "Profile Registration", "1.0.0"),
    ("CIM:DSP1071-WBEMServer-1.0.1", "WBEM Server", "1.0.1"),
    ("CIM:DSP1054-Indications-1.2.2", "Indications", "1.2.2"),
]
_INDICATIONS_PROFILE = "CIM:DSP1054-Indications-1.2.2"


def _central(instance_id: str) -> CIMInstanceName:
    """The central instance of one of the server's profiles."""
    if instance_id != _INDICATIONS_PROFILE:
        return _om_path()
    return service_path(_server().hostname)


def _profile_path(instance_id: str) -> CIMInstanceName:
    return CIMInstanceName("CIM_RegisteredProfile", namespace=INTEROP,
                           keybindings={"InstanceID": instance_id})


class ObjectManagerProvider(CIMProvider2):
    """CIM_ObjectManager: the one instance that stands for this server."""

    def enum_instances(self, env, model, keys_only) -> Iterator:
        inst = model.copy()
        for k, v in _om_path().keybindings.items():
            inst[k] = v
        if not keys_only:
            inst["ElementName"] = BRAND
            inst["Caption"] = "kvm_providers embedded WBEM server"
            inst["Description"] = f"kvm_providers embedded WBEM server version {__version__}"
            inst["EnabledState"] = _ELE.EnabledState.Enabled
            inst["RequestedState"] = _ELE.RequestedState.Not_Applicable
            inst["EnabledDefault"] = _ELE.EnabledDefault.Enabled
            inst["OperationalStatus"] = [_MSE.OperationalStatus.OK]
            inst["HealthState"] = _MSE.HealthState.OK
            inst["Started"] = True
            inst["StartMode"] = "Automatic"
            inst["GatherStatisticalData"] = False
            inst["PrimaryOwnerName"] = "root"
        yield inst


def _namespace_paths() -> Iterator[CIMInstanceName]:
    om = _om_path().keybindings
    for ns in _server().namespaces:
        yield CIMInstanceName("CIM_Namespace", namespace=INTEROP, keybindings={
            "SystemCreationClassName": om["SystemCreationClassName"],
            "SystemName": om["SystemName"],
            "ObjectManagerCreationClassName": om["CreationClassName"],
            "ObjectManagerName": om["Name"], "CreationClassName": "CIM_Namespace",
            "Name": ns})


class NamespaceProvider(CIMProvider2):
    """CIM_Namespace: one instance per namespace of the server."""

    def enum_instances(self, env, model, keys_only) -> Iterator:
        for path in _namespace_paths():
            inst = model.copy()
            for k, v in path.keybindings.items():
                inst[k] = v
            if not keys_only:
                inst["ElementName"] = path["Name"]
                # classes are not per-schema here
                inst["ClassInfo"] = CIM_Namespace.ClassInfo.Unknown
                inst["ClassType"] = CIM_Namespace.ClassType.CIM
            yield inst


class _Association(CIMProvider2):
    """An association over a handful of instances: references() scans them."""

    def references(self, env, object_name, model, result_class_name, role, result_role,
                   keys_only):
        return self.simple_refs(env, object_name, model, result_class_name, role,
                                result_role, keys_only)


class NamespaceInManagerProvider(_Association):
    """CIM_NamespaceInManager: the object manager holds every namespace."""

    def enum_instances(self, env, model, keys_only) -> Iterator:
        om = _om_path()
        for path in _namespace_paths():
            inst = model.copy()
            inst["Antecedent"] = om
            inst["Dependent"] = path
            yield inst


class CommMechanismProvider(CIMProvider2):
    """CIM_CIMXMLCommunicationMechanism: how to talk to this server."""

    def enum_instances(self, env, model, keys_only) -> Iterator:
        s = _server()
        om = _om_path().keybindings
        inst = model.copy()
        inst["SystemCreationClassName"] = om["SystemCreationClassName"]
        inst["SystemName"] = om["SystemName"]
        inst["CreationClassName"] = model.classname
        inst["Name"] = f"{BRAND}:cim-xml"
        if not keys_only:
            inst["ElementName"] = "CIM-XML"
            inst["CommunicationMechanism"] = _OMCM.CommunicationMechanism.CIM_XML
            inst["Version"] = "1.0"
            inst["CIMXMLProtocolVersion"] = 1         # 1.0
            inst["CIMValidated"] = False
            inst["MultipleOperationsSupported"] = True
            inst["FunctionalProfilesSupported"] = FUNCTIONAL_PROFILES
            inst["AuthenticationMechanismsSupported"] = [_AUTH.Basic] if s.auth else [_AUTH.None_]
            inst["EnabledState"] = _ELE.EnabledState.Enabled
            inst["OperationalStatus"] = [_MSE.OperationalStatus.OK]
        yield inst


class CommMechanismForManagerProvider(_Association):
    """CIM_CommMechanismForManager: the object manager offers CIM-XML."""

    def enum_instances(self, env, model, keys_only) -> Iterator:
        om = _om_path()
        s = _server()
        inst = model.copy()
        inst["Antecedent"] = om
        inst["Dependent"] = CIMInstanceName(
            "CIM_CIMXMLCommunicationMechanism", namespace=INTEROP, keybindings={
                "SystemCreationClassName": "CIM_ComputerSystem", "SystemName": s.hostname,
                "CreationClassName": "CIM_CIMXMLCommunicationMechanism",
                "Name": f"{BRAND}:cim-xml"})
        yield inst


class RegisteredProfileProvider(CIMProvider2):
    """CIM_RegisteredProfile: the server's own profiles (Profile Registration, WBEM Server)."""

    def enum_instances(self, env, model, keys_only) -> Iterator:
        for iid, name, version in SERVER_PROFILES:
            inst = model.copy()
            inst["InstanceID"] = iid
            if not keys_only:
                inst["RegisteredOrganization"] = _RP.RegisteredOrganization.DMTF
                inst["RegisteredName"] = name
                inst["RegisteredVersion"] = version
                inst["AdvertiseTypes"] = [_RP.AdvertiseTypes.Not_Advertised]
                inst["AdvertiseTypeDescriptions"] = [""]
                inst["ElementName"] = name
            yield inst


class ServerConformsProvider(_Association):
    """CIM_ElementConformsToProfile: the server profiles to their central instances."""

    def enum_instances(self, env, model, keys_only) -> Iterator:
        for iid, _name, _version in SERVER_PROFILES:
            inst = model.copy()
            inst["ConformantStandard"] = _profile_path(iid)
            inst["ManagedElement"] = _central(iid)
            yield inst


#: (class, provider type(s)) the server registers for itself in the interop namespace.
BUILTIN_CLASSES = [
    ("CIM_ObjectManager", ("instance",), ObjectManagerProvider),
    ("CIM_Namespace", ("instance",), NamespaceProvider),
    ("CIM_NamespaceInManager", ("instance", "association"), NamespaceInManagerProvider),
    ("CIM_CIMXMLCommunicationMechanism", ("instance",), CommMechanismProvider),
    ("CIM_CommMechanismForManager", ("instance", "association"),
     CommMechanismForManagerProvider),
    ("CIM_RegisteredProfile", ("instance",), RegisteredProfileProvider),
    ("CIM_ElementConformsToProfile", ("instance", "association"), ServerConformsProvider),
]


def get_providers(env):
    """The provider module entry point."""
    return {name: cls() for name, _types, cls in BUILTIN_CLASSES}
