"""The MOF tree: the DMTF CIM schema subset and the family classes.

Checks that the whole tree compiles into the three namespaces, that every
template class exists for every family with the right superclass and keys,
that client-visible details (value maps, method signatures, keys) are DMTF's
and libvirt-cim's, and that the committed generated files are current.
"""

from __future__ import annotations

import os
import re
import time

import pytest

from kvm_providers.registry.table import FAMILIES
from kvm_providers.schema import NAMESPACE_MOF, find_mof_dir, load_schema
from kvm_providers.schema.templates import (TOKEN, expand_templates, family_classes,
                                            template_classes)

MOF_DIR = find_mof_dir()
VIRT, INTEROP, CIMV2 = "root/virt", "root/interop", "root/cimv2"
SCHEMA_VERSION = "2.41.0"


# -- fixtures -----------------------------------------------------------------

@pytest.fixture(scope="module")
def schema():
    """The repository as the hosts load it, compiled afresh (no cache)."""
    start = time.perf_counter()
    s = load_schema(use_cache=False)
    elapsed = time.perf_counter() - start
    print(f"\nMOF compile (load_schema, uncached): {elapsed:.2f} s, "
          + ", ".join(f"{ns} {len(list(s.all_classes(ns)))} classes" for ns in s.namespaces))
    assert elapsed < 30
    return s


@pytest.fixture(scope="module")
def resolved():
    """root/virt (which has every class) compiled by pywbem's mock server.

    The mock server resolves inheritance: ``get(classname)`` gives the class
    with inherited properties, methods and qualifiers (class_origin and
    propagated set).  Its compile also checks overrides and qualifier flavors.
    """
    import pywbem_mock

    start = time.perf_counter()
    conn = pywbem_mock.FakedWBEMConnection(default_namespace=VIRT)
    for rel in NAMESPACE_MOF[VIRT]:
        conn.compile_mof_file(os.path.join(MOF_DIR, rel), namespace=VIRT,
                              search_paths=[MOF_DIR])
    print(f"\nMOF compile of {VIRT} with inheritance resolved (pywbem_mock): "
          f"{time.perf_counter() - start:.2f} s")
    cache = {}

    def get(classname):
        key = classname.lower()
        if key not in cache:
            cache[key] = conn.GetClass(classname, namespace=VIRT, LocalOnly=False,
                                       IncludeQualifiers=True, IncludeClassOrigin=True)
        return cache[key]
    return get


def keys_of(cls):
    return sorted(p.name for p in cls.properties.values()
                  if p.qualifiers.get("Key") is not None and p.qualifiers["Key"].value)


def qual(obj, name, default=None):
    q = obj.qualifiers.get(name)
    return default if q is None else q.value


def ancestry(schema, ns, classname):
    out = []
    while classname:
        cls = schema.get_class(ns, classname)
        out.append(cls)
        classname = cls.superclass
    return out


def is_flagged(schema, ns, classname, qualifier):
    """True if the class or an ancestor carries `qualifier` (Association, ...)."""
    return any(qual(c, qualifier, False) for c in ancestry(schema, ns, classname))


# -- compilation -------------------------------------------------------------

def test_namespaces_compile(schema):
    assert set(schema.namespaces) == {CIMV2, INTEROP, VIRT}
    cim = {c.classname for c in schema.all_classes(CIMV2)}
    assert all(name.startswith("CIM_") for name in cim)
    for ns in (INTEROP, VIRT):
        names = {c.classname for c in schema.all_classes(ns)}
        assert cim <= names
        for fam in FAMILIES:
            assert schema.has_class(ns, f"{fam}_RegisteredProfile")
            assert schema.has_class(ns, f"{fam}_ElementConformsToProfile")
    for fam in FAMILIES:
        assert schema.has_class(VIRT, f"{fam}_ComputerSystem")
        assert not schema.has_class(INTEROP, f"{fam}_ComputerSystem")
        assert not schema.has_class(CIMV2, f"{fam}_RegisteredProfile")


def test_cached_load(schema, tmp_path, monkeypatch):
    import kvm_providers.schema as schema_mod
    monkeypatch.setattr(schema_mod, "_cache_dirs", lambda: [str(tmp_path)])
    start = time.perf_counter()
    load_schema()                       # compiles and writes the cache
    first = time.perf_counter() - start
    start = time.perf_counter()
    cached = load_schema()
    second = time.perf_counter() - start
    print(f"\nMOF load: {first:.2f} s filling the cache, {second:.3f} s from the cache")
    assert list(tmp_path.glob("schema-*.pickle"))
    assert {c.classname for c in cached.all_classes(VIRT)} == \
        {c.classname for c in schema.all_classes(VIRT)}


def test_references_and_embedded_classes_exist(schema):
    for ns in schema.namespaces:
        for cls in schema.all_classes(ns):
            objs = [(p.name, p) for p in cls.properties.values()]
            for m in cls.methods.values():
                objs += [(f"{m.name}.{p.name}", p) for p in m.parameters.values()]
            for name, obj in objs:
                if obj.type == "reference":
                    assert schema.has_class(ns, obj.reference_class), \
                        f"{ns}:{cls.classname}.{name} refers to {obj.reference_class}"
                emb = qual(obj, "EmbeddedInstance")
                if emb:
                    assert schema.has_class(ns, emb), \
                        f"{ns}:{cls.classname}.{name} embeds {emb}"


def test_used_qualifiers_are_declared(schema):
    for ns in schema.namespaces:
        declared = {q.name.lower() for q in schema.qualifiers(ns)}
        for cls in schema.all_classes(ns):
            used = set(cls.qualifiers)
            for p in cls.properties.values():
                used |= set(p.qualifiers)
            for m in cls.methods.values():
                used |= set(m.qualifiers)
                for prm in m.parameters.values():
                    used |= set(prm.qualifiers)
            missing = {u for u in used if u.lower() not in declared}
            assert not missing, f"{ns}:{cls.classname} uses undeclared {missing}"


# -- the CIM schema subset ----------------------------------------------------

#: Classes the providers, the embedded server and the profiles need.
CIM_CLASSES = """
CIM_ManagedElement CIM_ManagedSystemElement CIM_LogicalElement CIM_EnabledLogicalElement
CIM_System CIM_ComputerSystem CIM_VirtualComputerSystem CIM_Service
CIM_VirtualSystemManagementService CIM_ResourcePoolConfigurationService
CIM_VirtualSystemMigrationService CIM_VirtualSystemSnapshotService CIM_RedirectionService
CIM_ServiceAccessPoint CIM_RemoteServiceAccessPoint CIM_KVMRedirectionSAP
CIM_Capabilities CIM_EnabledLogicalElementCapabilities CIM_VirtualSystemManagementCapabilities
CIM_ResourcePoolConfigurationCapabilities CIM_VirtualSystemMigrationCapabilities
CIM_VirtualSystemMigrationSettingData CIM_VirtualSystemSnapshotServiceCapabilities
CIM_VirtualSystemSnapshotCapabilities CIM_RedirectionServiceCapabilities CIM_AllocationCapabilities
CIM_SettingData CIM_VirtualSystemSettingData CIM_ResourceAllocationSettingData
CIM_StorageAllocationSettingData CIM_EthernetPortAllocationSettingData CIM_ResourcePool
CIM_LogicalDevice CIM_Processor CIM_StorageExtent CIM_Memory CIM_LogicalDisk CIM_LogicalPort
CIM_NetworkPort CIM_EthernetPort CIM_Controller CIM_DisplayController CIM_UserDevice
CIM_PointingDevice CIM_Job CIM_ConcreteJob CIM_Error
CIM_Dependency CIM_Component CIM_SystemComponent CIM_SystemDevice CIM_ConcreteComponent
CIM_HostedDependency CIM_HostedService CIM_HostedAccessPoint CIM_ServiceAccessBySAP
CIM_SAPAvailableForElement CIM_ElementCapabilities CIM_SettingsDefineState
CIM_ElementSettingData CIM_ServiceAffectsElement CIM_HostedResourcePool
CIM_ElementAllocatedFromPool CIM_ResourceAllocationFromPool CIM_SettingsDefineCapabilities
CIM_VirtualSystemSettingDataComponent
CIM_SnapshotOfVirtualSystem CIM_MostCurrentSnapshotInBranch CIM_LastAppliedSnapshot
CIM_AffectedJobElement CIM_OwningJobElement CIM_ElementConformsToProfile CIM_ReferencedProfile
CIM_RegisteredProfile CIM_RegisteredSubProfile CIM_WBEMService CIM_ObjectManager CIM_Namespace
CIM_NamespaceInManager CIM_ObjectManagerCommunicationMechanism CIM_CIMXMLCommunicationMechanism
CIM_CommMechanismForManager
CIM_Indication CIM_InstIndication CIM_InstCreation CIM_InstDeletion CIM_InstModification
CIM_InstMethodCall CIM_ProcessIndication CIM_AlertIndication CIM_IndicationFilter
CIM_ListenerDestination CIM_ListenerDestinationCIMXML CIM_IndicationHandler
CIM_IndicationHandlerCIMXML CIM_IndicationSubscription CIM_IndicationService
CIM_IndicationServiceCapabilities
CIM_BaseMetricDefinition CIM_BaseMetricValue CIM_MetricDefForME CIM_MetricInstance
CIM_MetricForME CIM_MetricService
CIM_FilterList CIM_FilterEntryBase CIM_FilterEntry CIM_Hdr8021Filter CIM_IPHeadersFilter
CIM_EntriesInFilterList CIM_HostedFilterList CIM_ConcreteDependency CIM_SwitchService
""".split()


def test_cim_classes_present(schema):
    missing = [c for c in CIM_CLASSES if not schema.has_class(CIMV2, c)]
    assert not missing


def test_cim_files_carry_dmtf_attribution():
    cim_dir = os.path.join(MOF_DIR, "cim")
    files = sorted(f for f in os.listdir(cim_dir) if f.endswith(".mof"))
    assert "schema.mof" in files and "qualifiers.mof" in files
    for name in files:
        with open(os.path.join(cim_dir, name), encoding="utf-8") as f:
            head = f.read(2000)
        assert f"DMTF CIM Schema version {SCHEMA_VERSION}" in head, name
        assert "Copyright (c) DMTF" in head, name
        assert "license terms" in head, name


def test_schema_entry_includes_every_cim_file():
    cim_dir = os.path.join(MOF_DIR, "cim")
    with open(os.path.join(cim_dir, "schema.mof"), encoding="utf-8") as f:
        included = re.findall(r'#pragma include \("([^"]+)"\)', f.read())
    assert included[0] == "qualifiers.mof"
    assert sorted(included) == sorted(f for f in os.listdir(cim_dir)
                                      if f.endswith(".mof") and f != "schema.mof")


def test_abstract_association_indication_flags(schema):
    for name in ("CIM_ManagedElement", "CIM_ManagedSystemElement", "CIM_LogicalElement",
                 "CIM_EnabledLogicalElement", "CIM_System", "CIM_Service", "CIM_LogicalDevice",
                 "CIM_SettingData", "CIM_Dependency", "CIM_Component", "CIM_Indication",
                 "CIM_InstIndication", "CIM_Job", "CIM_ServiceAccessPoint"):
        assert qual(schema.get_class(CIMV2, name), "Abstract", False), name
    for name in ("CIM_ComputerSystem", "CIM_ResourceAllocationSettingData",
                 "CIM_VirtualSystemSettingData", "CIM_ResourcePool", "CIM_ConcreteJob",
                 "CIM_RegisteredProfile"):
        assert not qual(schema.get_class(CIMV2, name), "Abstract", False), name
    # Association, Aggregation and Indication are written on every class that
    # is one (as DMTF does), not only inherited: hosts read them locally.
    for ns in schema.namespaces:
        for cls in schema.all_classes(ns):
            for flag in ("Association", "Indication", "Aggregation"):
                if is_flagged(schema, ns, cls.classname, flag):
                    assert qual(cls, flag, False), f"{ns}:{cls.classname} lacks {flag}"
            refs = [p for p in cls.properties.values() if p.type == "reference"]
            if qual(cls, "Association", False):
                assert refs or cls.superclass, cls.classname
            else:
                assert not refs, f"{cls.classname} has references but is no association"
    for name in ("CIM_SystemDevice", "CIM_ElementConformsToProfile", "CIM_HostedService",
                 "CIM_ElementSettingData", "CIM_SettingsDefineCapabilities"):
        assert qual(schema.get_class(CIMV2, name), "Association"), name
    for name in ("CIM_InstCreation", "CIM_InstModification", "CIM_AlertIndication"):
        assert qual(schema.get_class(CIMV2, name), "Indication"), name
    assert qual(schema.get_class(CIMV2, "CIM_SystemDevice"), "Aggregation")


def _values(obj):
    return list(qual(obj, "ValueMap")), list(qual(obj, "Values"))


def test_enabled_state_value_map(schema):
    cls = schema.get_class(CIMV2, "CIM_EnabledLogicalElement")
    vm, vals = _values(cls.properties["EnabledState"])
    assert cls.properties["EnabledState"].type == "uint16"
    assert dict(zip(vm, vals, strict=True)) == {
        "0": "Unknown", "1": "Other", "2": "Enabled", "3": "Disabled",
        "4": "Shutting Down", "5": "Not Applicable", "6": "Enabled but Offline",
        "7": "In Test", "8": "Deferred", "9": "Quiesce", "10": "Starting",
        "11..32767": "DMTF Reserved", "32768..65535": "Vendor Reserved"}
    vm, vals = _values(cls.properties["RequestedState"])
    assert dict(zip(vm, vals, strict=True))["10"] == "Reboot"
    assert dict(zip(vm, vals, strict=True))["12"] == "Not Applicable"


def test_request_state_change_signature(schema):
    m = schema.get_class(CIMV2, "CIM_EnabledLogicalElement").methods["RequestStateChange"]
    assert m.return_type == "uint32"
    vm, vals = _values(m)
    assert dict(zip(vm, vals, strict=True)) == {
        "0": "Completed with No Error", "1": "Not Supported",
        "2": "Unknown or Unspecified Error", "3": "Cannot complete within Timeout Period",
        "4": "Failed", "5": "Invalid Parameter", "6": "In Use", "..": "DMTF Reserved",
        "4096": "Method Parameters Checked - Job Started", "4097": "Invalid State Transition",
        "4098": "Use of Timeout Parameter Not Supported", "4099": "Busy",
        "4100..32767": "Method Reserved", "32768..65535": "Vendor Specific"}
    params = m.parameters
    assert list(params) == ["RequestedState", "Job", "TimeoutPeriod"]
    rs = params["RequestedState"]
    assert rs.type == "uint16" and qual(rs, "In", True)
    vm, vals = _values(rs)
    assert dict(zip(vm, vals, strict=True))["2"] == "Enabled" and dict(zip(vm, vals, strict=True))["9"] == "Quiesce"
    job = params["Job"]
    assert job.type == "reference" and job.reference_class == "CIM_ConcreteJob"
    assert qual(job, "Out") and not qual(job, "In", True)
    assert params["TimeoutPeriod"].type == "datetime"


def test_resource_type_value_map(schema):
    rasd = schema.get_class(CIMV2, "CIM_ResourceAllocationSettingData")
    vm, vals = _values(rasd.properties["ResourceType"])
    m = dict(zip(vm, vals, strict=True))
    assert m["1"] == "Other" and m["3"] == "Processor" and m["4"] == "Memory"
    assert m["10"] == "Ethernet Adapter" and m["13"] == "I/O Device"
    assert m["17"] == "Disk Drive" and m["24"] == "Graphics controller"
    assert m["33"] == "Ethernet Connection" and m["0x8000..0xFFFF"] == "Vendor Reserved"
    for name, typ in (("VirtualQuantityUnits", "string"), ("VirtualQuantity", "uint64"),
                      ("Reservation", "uint64"), ("Limit", "uint64"), ("Weight", "uint32"),
                      ("AllocationUnits", "string"), ("PoolID", "string"),
                      ("Address", "string"), ("Parent", "string"),
                      ("HostResource", "string"), ("Connection", "string")):
        assert rasd.properties[name].type == typ, name
    assert rasd.properties["HostResource"].is_array


def test_vsms_methods(schema):
    vsms = schema.get_class(CIMV2, "CIM_VirtualSystemManagementService")
    assert {"DefineSystem", "DestroySystem", "AddResourceSettings", "ModifyResourceSettings",
            "ModifySystemSettings", "RemoveResourceSettings"} <= set(vsms.methods)
    ds = vsms.methods["DefineSystem"]
    p = ds.parameters
    assert qual(p["SystemSettings"], "EmbeddedInstance") == "CIM_VirtualSystemSettingData"
    assert p["SystemSettings"].type == "string" and not p["SystemSettings"].is_array
    assert qual(p["ResourceSettings"], "EmbeddedInstance") == "CIM_ResourceAllocationSettingData"
    assert p["ResourceSettings"].is_array
    assert p["ReferenceConfiguration"].reference_class == "CIM_VirtualSystemSettingData"
    assert p["ResultingSystem"].reference_class == "CIM_ComputerSystem"
    assert qual(p["ResultingSystem"], "Out") and not qual(p["ResultingSystem"], "In", True)
    assert qual(p["Job"], "Out")
    vm, vals = _values(ds)
    assert dict(zip(vm, vals, strict=True)) == {
        "0": "Completed with No Error", "1": "Not Supported", "2": "Failed", "3": "Timeout",
        "4": "Invalid Parameter", "..": "DMTF Reserved",
        "4096": "Method Parameters Checked - Job Started", "4097..32767": "Method Reserved",
        "32768..65535": "Vendor Specific"}
    mrs = vsms.methods["ModifyResourceSettings"].parameters
    assert qual(mrs["ResourceSettings"], "EmbeddedInstance") == \
        "CIM_ResourceAllocationSettingData"
    mss = vsms.methods["ModifySystemSettings"].parameters
    assert qual(mss["SystemSettings"], "EmbeddedInstance") == "CIM_VirtualSystemSettingData"
    rrs = vsms.methods["RemoveResourceSettings"].parameters
    assert rrs["ResourceSettings"].type == "reference" and rrs["ResourceSettings"].is_array
    assert vsms.methods["DestroySystem"].parameters["AffectedSystem"].reference_class == \
        "CIM_ComputerSystem"


def test_other_service_methods(schema):
    rpcs = schema.get_class(CIMV2, "CIM_ResourcePoolConfigurationService").methods
    assert {"CreateResourcePool", "CreateChildResourcePool", "DeleteResourcePool",
            "AddResourcesToResourcePool", "RemoveResourcesFromResourcePool",
            "ChangeParentResourcePool"} <= set(rpcs)
    ccrp = rpcs["CreateChildResourcePool"].parameters
    assert qual(ccrp["Settings"], "EmbeddedInstance") == "CIM_ResourceAllocationSettingData"
    assert ccrp["Settings"].is_array and ccrp["ParentPool"].is_array
    snap = schema.get_class(CIMV2, "CIM_VirtualSystemSnapshotService").methods
    assert set(snap) >= {"CreateSnapshot", "DestroySnapshot", "ApplySnapshot"}
    cs = snap["CreateSnapshot"].parameters
    assert cs["AffectedSystem"].reference_class == "CIM_ComputerSystem"
    assert qual(cs["SnapshotSettings"], "EmbeddedInstance") == "CIM_SettingData"
    assert cs["ResultingSnapshot"].reference_class == "CIM_VirtualSystemSettingData"
    mig = schema.get_class(CIMV2, "CIM_VirtualSystemMigrationService").methods
    assert set(mig) >= {"MigrateVirtualSystemToHost", "MigrateVirtualSystemToSystem",
                        "CheckVirtualSystemIsMigratableToHost",
                        "CheckVirtualSystemIsMigratableToSystem"}
    mp = mig["MigrateVirtualSystemToHost"].parameters
    assert qual(mp["MigrationSettingData"], "EmbeddedInstance") == \
        "CIM_VirtualSystemMigrationSettingData"
    assert qual(mp["NewSystemSettingData"], "EmbeddedInstance") == \
        "CIM_VirtualSystemSettingData"
    assert mp["DestinationHost"].type == "string"
    # Experimental DMTF classes say so.
    assert qual(schema.get_class(CIMV2, "CIM_VirtualSystemMigrationService"), "Experimental")


@pytest.mark.parametrize("classname,keys", [
    ("CIM_ComputerSystem", ["CreationClassName", "Name"]),
    ("CIM_VirtualSystemSettingData", ["InstanceID"]),
    ("CIM_ResourceAllocationSettingData", ["InstanceID"]),
    ("CIM_RegisteredProfile", ["InstanceID"]),
    ("CIM_ResourcePool", ["InstanceID"]),
    ("CIM_Capabilities", ["InstanceID"]),
    ("CIM_ConcreteJob", ["InstanceID"]),
    ("CIM_LogicalDevice", ["CreationClassName", "DeviceID", "SystemCreationClassName",
                           "SystemName"]),
    ("CIM_Service", ["CreationClassName", "Name", "SystemCreationClassName", "SystemName"]),
    ("CIM_KVMRedirectionSAP", ["CreationClassName", "Name", "SystemCreationClassName",
                               "SystemName"]),
    ("CIM_IndicationFilter", ["CreationClassName", "Name", "SystemCreationClassName",
                              "SystemName"]),
    ("CIM_IndicationSubscription", ["Filter", "Handler"]),
    ("CIM_Namespace", ["CreationClassName", "Name", "ObjectManagerCreationClassName",
                       "ObjectManagerName", "SystemCreationClassName", "SystemName"]),
    ("CIM_ElementConformsToProfile", ["ConformantStandard", "ManagedElement"]),
    ("CIM_SystemDevice", ["GroupComponent", "PartComponent"]),
    ("CIM_BaseMetricDefinition", ["Id"]),
    ("CIM_BaseMetricValue", ["InstanceID"]),
])
def test_cim_keys(resolved, classname, keys):
    assert keys_of(resolved(classname)) == keys


# -- the family classes -------------------------------------------------------

#: Expected keys of template classes, by template name.
TEMPLATE_KEYS = {
    "{P}_ComputerSystem": ["CreationClassName", "Name"],
    "{P}_HostSystem": ["CreationClassName", "Name"],
    "{P}_VirtualSystemSettingData": ["InstanceID"],
    "{P}_DiskResourceAllocationSettingData": ["InstanceID"],
    "{P}_MemResourceAllocationSettingData": ["InstanceID"],
    "{P}_DiskPool": ["InstanceID"],
    "{P}_Processor": ["CreationClassName", "DeviceID", "SystemCreationClassName", "SystemName"],
    "{P}_LogicalDisk": ["CreationClassName", "DeviceID", "SystemCreationClassName",
                        "SystemName"],
    "{P}_VirtualSystemManagementService": ["CreationClassName", "Name",
                                           "SystemCreationClassName", "SystemName"],
    "{P}_KVMRedirectionSAP": ["CreationClassName", "Name", "SystemCreationClassName",
                              "SystemName"],
    "{P}_AllocationCapabilities": ["InstanceID"],
    "{P}_MigrationJob": ["InstanceID"],
    "{P}_RegisteredProfile": ["InstanceID"],
    "{P}_SystemDevice": ["GroupComponent", "PartComponent"],
    "{P}_ElementConformsToProfile": ["ConformantStandard", "ManagedElement"],
    "{P}_ReferencedProfile": ["Antecedent", "Dependent"],
    "{P}_ElementCapabilities": ["Capabilities", "ManagedElement"],
    "{P}_SettingsDefineState": ["ManagedElement", "SettingData"],
    "{P}_HostedDependency": ["Antecedent", "Dependent"],
}

#: libvirt-cim's class set (per family), which existing clients use.
LIBVIRT_CIM_CLASSES = """
AllocationCapabilities ComputerSystem ComputerSystemCreatedIndication
ComputerSystemDeletedIndication ComputerSystemModifiedIndication
ComputerSystemMigrationJobCreatedIndication ComputerSystemMigrationJobModifiedIndication
ComputerSystemMigrationJobDeletedIndication ConcreteComponent ConsoleDisplayController
ConsoleRedirectionService ConsoleRedirectionServiceCapabilities
ConsoleResourceAllocationSettingData CharacterResourceAllocationSettingData Controller
ControllerPool ControllerResourceAllocationSettingData DiskPool
DiskPoolResourceAllocationSettingData DiskResourceAllocationSettingData DisplayController
ElementAllocatedFromPool ElementCapabilities ElementSettingData
EnabledLogicalElementCapabilities GraphicsPool GraphicsResourceAllocationSettingData
HostSystem HostedAccessPoint HostedDependency HostedResourcePool HostedService InputPool
InputResourceAllocationSettingData KVMRedirectionSAP LogicalDisk MemResourceAllocationSettingData
Memory MemoryPool MigrationJob NetPoolResourceAllocationSettingData
NetResourceAllocationSettingData NetworkPool NetworkPort PointingDevice
ProcResourceAllocationSettingData Processor ProcessorPool ResourceAllocationFromPool
ResourceAllocationSettingData ResourceAllocationSettingDataCreatedIndication
ResourceAllocationSettingDataDeletedIndication ResourceAllocationSettingDataModifiedIndication
ResourcePoolConfigurationCapabilities ResourcePoolConfigurationService SAPAvailableForElement
ServiceAccessBySAP ServiceAffectsElement SettingsDefineCapabilities SettingsDefineState
StorageVolumeResourceAllocationSettingData SwitchService SystemDevice
VirtualSystemManagementCapabilities VirtualSystemManagementService
VirtualSystemMigrationCapabilities VirtualSystemMigrationService
VirtualSystemMigrationSettingData VirtualSystemSettingData VirtualSystemSettingDataComponent
VirtualSystemSnapshotService VirtualSystemSnapshotServiceCapabilities
FilterList FilterEntry Hdr8021Filter IPHeadersFilter AppliedFilterList NestedFilterList
EntriesInFilterList HostedFilterList
RegisteredProfile ElementConformsToProfile ReferencedProfile
""".split()


def test_libvirt_cim_class_set():
    names = {c for c, _ in template_classes(MOF_DIR)}
    missing = [c for c in LIBVIRT_CIM_CLASSES if f"{TOKEN}_{c}" not in names]
    assert not missing


def test_template_classes_exist_per_family(schema):
    templates = template_classes(MOF_DIR)
    assert len(templates) > 90
    interop = {c for c, _ in template_classes(MOF_DIR, "interop")}
    for fam in FAMILIES:
        for tmpl, sup in templates:
            name = tmpl.replace(TOKEN, fam)
            namespaces = (VIRT, INTEROP) if tmpl in interop else (VIRT,)
            for ns in namespaces:
                cls = schema.get_class(ns, name)
                assert cls.classname == name
                assert cls.superclass == sup.replace(TOKEN, fam), name
    assert family_classes(MOF_DIR, "KVM", "interop") == [
        "KVM_RegisteredProfile", "KVM_ElementConformsToProfile", "KVM_ReferencedProfile"]


def test_template_keys(resolved):
    for fam in FAMILIES:
        for tmpl, _ in template_classes(MOF_DIR):
            cls = resolved(tmpl.replace(TOKEN, fam))
            keys = keys_of(cls)
            if tmpl in TEMPLATE_KEYS:
                assert keys == TEMPLATE_KEYS[tmpl], cls.classname
            if qual(cls, "Indication", False):
                assert not keys, cls.classname
            elif qual(cls, "Association", False):
                refs = sorted(p.name for p in cls.properties.values() if p.type == "reference")
                assert keys == refs, cls.classname
            else:
                assert keys, f"{cls.classname} has no key"


def test_template_flags(schema):
    for fam in FAMILIES:
        for tmpl, _ in template_classes(MOF_DIR):
            name = tmpl.replace(TOKEN, fam)
            cls = schema.get_class(VIRT, name)
            if "Indication" in tmpl:
                assert qual(cls, "Indication"), name
            assert not qual(cls, "Abstract", False), name
    assert qual(schema.get_class(VIRT, "Virt_VirtualSystemSettingData"), "Abstract")
    for tmpl in ("{P}_SystemDevice", "{P}_ElementConformsToProfile", "{P}_ReferencedProfile",
                 "{P}_HostedResourcePool", "{P}_AppliedFilterList", "{P}_MetricForME"):
        assert qual(schema.get_class(VIRT, tmpl.replace(TOKEN, "KVM")), "Association"), tmpl


def test_association_overrides(resolved):
    for fam in FAMILIES:
        sd = resolved(f"{fam}_SystemDevice")
        assert sd.properties["GroupComponent"].reference_class == f"{fam}_ComputerSystem"
        assert sd.properties["PartComponent"].reference_class == "CIM_LogicalDevice"
        ecp = resolved(f"{fam}_ElementConformsToProfile")
        assert ecp.properties["ConformantStandard"].reference_class == \
            f"{fam}_RegisteredProfile"
        assert ecp.properties["ManagedElement"].reference_class == "CIM_ManagedElement"
        rp = resolved(f"{fam}_ReferencedProfile")
        assert rp.properties["Antecedent"].reference_class == f"{fam}_RegisteredProfile"
        assert rp.properties["Dependent"].reference_class == f"{fam}_RegisteredProfile"


def test_vssd_properties(resolved):
    expect = {
        "InstanceID": "string", "VirtualSystemIdentifier": "string",
        "VirtualSystemType": "string", "ElementName": "string", "UUID": "string",
        "AutoStart": "uint16", "BootDevices": "string", "Emulator": "string",
        "Arch": "string", "Machine": "string", "ClockOffset": "uint16",
        "EnableACPI": "boolean", "EnableAPIC": "boolean", "EnablePAE": "boolean",
        "AutomaticShutdownAction": "uint16", "AutomaticRecoveryAction": "uint16",
        "AutomaticStartupAction": "uint16", "Notes": "string", "IsFullVirt": "boolean",
        "Bootloader": "string", "BootloaderArgs": "string", "Kernel": "string",
        "Ramdisk": "string", "CommandLine": "string", "InitPath": "string",
    }
    for fam in FAMILIES:
        cls = resolved(f"{fam}_VirtualSystemSettingData")
        for name, typ in expect.items():
            assert cls.properties[name].type == typ, (fam, name)
        assert cls.properties["BootDevices"].is_array and cls.properties["Notes"].is_array
        vm, vals = _values(cls.properties["ClockOffset"])
        assert dict(zip(vm, vals, strict=True)) == {"0": "UTC", "1": "Local"}
        # DMTF's AutomaticShutdownAction value map, not libvirt-cim's narrowed one.
        vm, vals = _values(cls.properties["AutomaticShutdownAction"])
        assert dict(zip(vm, vals, strict=True))["4"] == "Shutdown"


def test_rasd_properties(resolved):
    expect = {
        "Disk": {"VirtualDevice": "string", "EmulatedType": "uint16", "BusType": "string",
                 "DriverName": "string", "DriverType": "string", "DriverCache": "string",
                 "readonly": "boolean", "shareable": "boolean", "AccessMode": "string",
                 "rawio": "string", "sgio": "string", "MountPoint": "string",
                 "AddressProperties": "string", "AddressValues": "string"},
        "Net": {"NetworkType": "string", "NetworkName": "string", "VirtualDevice": "string",
                "SourceDevice": "string", "NetworkMode": "string", "FilterRef": "string",
                "VSIType": "string", "VSIManagerID": "string", "VSITypeID": "string",
                "VSITypeIDVersion": "string", "VSIInstanceID": "string",
                "ProfileID": "string"},
        "Graphics": {"KeyMap": "string", "Password": "string", "IsIPv6Only": "boolean",
                     "Address": "string"},
        "Input": {"BusType": "string"},
        "Mem": {"dumpCore": "boolean", "VirtualQuantity": "uint64",
                "AllocationUnits": "string", "Limit": "uint64", "Reservation": "uint64"},
        "Proc": {"VirtualQuantity": "uint64", "Weight": "uint32", "Limit": "uint64"},
        "Console": {"TargetType": "string", "SourceType": "uint16", "SourcePath": "string",
                    "ConnectURL": "string", "BindURL": "string"},
        "Controller": {"Index": "uint64", "Model": "string", "Ports": "string",
                       "Vectors": "string", "Queues": "string"},
    }
    for fam in FAMILIES:
        for kind, props in expect.items():
            cls = resolved(f"{fam}_{kind}ResourceAllocationSettingData")
            assert "CIM_ResourceAllocationSettingData" in _chain(resolved, cls)
            for name, typ in {**props, "ResourceType": "uint16", "InstanceID": "string",
                              "OtherResourceType": "string", "ResourceSubType": "string",
                              "PoolID": "string", "Address": "string"}.items():
                assert cls.properties[name].type == typ, (cls.classname, name)
        disk = resolved(f"{fam}_DiskResourceAllocationSettingData")
        vm, vals = _values(disk.properties["EmulatedType"])
        assert dict(zip(vm, vals, strict=True)) == {"0": "Disk", "1": "CDROM", "2": "floppy",
                                                    "3": "filesystem", "4": "lun"}
        pool = resolved(f"{fam}_DiskPoolResourceAllocationSettingData")
        vm, vals = _values(pool.properties["Type"])
        types = dict(zip(vm, vals, strict=True))
        # libvirt-cim's 0..7, then the other libvirt storage pool types (issue 5)
        assert [types[str(i)] for i in range(8)] == [
            "Unknown", "Directory", "File System", "Network File System", "Disk", "ISCSI",
            "Logical", "SCSI Host Bus Adapter"]
        assert len(vm) == len(vals) == 14


def _chain(resolved, cls):
    out = []
    while cls is not None:
        out.append(cls.classname)
        cls = resolved(cls.superclass) if cls.superclass else None
    return out


def test_service_properties_and_methods(resolved):
    for fam in FAMILIES:
        vsms = resolved(f"{fam}_VirtualSystemManagementService")
        for name in ("Revision", "Changeset", "Release", "LibvirtVersion", "Caption"):
            assert vsms.properties[name].type == "string"
        assert "DefineSystem" in vsms.methods
        rpcs = resolved(f"{fam}_ResourcePoolConfigurationService")
        for name in ("CreateChildResourcePool", "DeleteResourcePool", "CreateResourceInPool",
                     "DeleteResourceInPool", "RefreshResourcesInPool"):
            assert name in rpcs.methods, name
        crip = rpcs.methods["CreateResourceInPool"].parameters
        assert qual(crip["Settings"], "EmbeddedInstance") == "CIM_ResourceAllocationSettingData"
        assert crip["Pool"].reference_class == "CIM_ResourcePool"
        assert qual(crip["Resource"], "Out")
        drip = rpcs.methods["DeleteResourceInPool"].parameters
        assert qual(drip["Resource"], "EmbeddedInstance") == \
            "CIM_ResourceAllocationSettingData"
        cs = resolved(f"{fam}_ComputerSystem")
        assert cs.properties["UUID"].type == "string"
        assert "RequestStateChange" in cs.methods
        assert set(resolved(f"{fam}_VirtualSystemSnapshotService").methods) >= {
            "CreateSnapshot", "DestroySnapshot", "ApplySnapshot"}
        assert "MigrateVirtualSystemToHost" in \
            resolved(f"{fam}_VirtualSystemMigrationService").methods


# -- generated files ------------------------------------------------------------

def test_generated_files_are_current():
    expected = expand_templates(MOF_DIR)
    assert set(expected) == {f"{area}/{name}.mof" for area in ("virt", "interop")
                             for name in [*FAMILIES, area]}
    for rel, text in expected.items():
        assert text.startswith("// generated by `make generate` from "), rel
        assert "do not edit" in text.splitlines()[0], rel
        assert TOKEN not in text, rel
        path = os.path.join(MOF_DIR, rel)
        with open(path, encoding="utf-8") as f:
            assert f.read() == text, f"{rel} is stale: run `make generate`"


def test_entry_files_match_namespace_layout():
    assert NAMESPACE_MOF["root/virt"][1:] == ["virt/virt.mof", "interop/interop.mof"]
    assert NAMESPACE_MOF["root/interop"][1:] == ["interop/interop.mof"]
    for files in NAMESPACE_MOF.values():
        assert files[0] == "cim/schema.mof"


def test_template_errors(tmp_path):
    from kvm_providers.schema.templates import TemplateError
    tdir = tmp_path / "virt" / "templates"
    tdir.mkdir(parents=True)
    (tdir / "10_x.mof").write_text("class {P}_A : CIM_ManagedElement {\n};\n")
    out = expand_templates(str(tmp_path), families=["KVM", "Xen"])
    assert "class Xen_A : CIM_ManagedElement" in out["virt/Xen.mof"]
    assert '#pragma include ("KVM.mof")' in out["virt/virt.mof"]
    (tdir / "20_y.mof").write_text("class CIM_B : CIM_ManagedElement {\n};\n")
    with pytest.raises(TemplateError, match="20_y.mof.*CIM_B"):
        expand_templates(str(tmp_path), families=["KVM"])
    (tdir / "20_y.mof").write_text("class {Q}_B : CIM_ManagedElement {\n};\n")
    with pytest.raises(TemplateError, match="unknown token"):
        expand_templates(str(tmp_path), families=["KVM"])


def test_loader_resolves_inheritance(schema):
    """The hosts' repository has inherited elements, keys and flags resolved."""
    spec = schema.spec(VIRT, "KVM_ComputerSystem")
    assert set(spec.key_names) == {"CreationClassName", "Name"}
    assert spec.props["enabledstate"].class_origin == "CIM_EnabledLogicalElement"
    assert "requeststatechange" in spec.methods
    assert set(schema.spec(VIRT, "KVM_DiskResourceAllocationSettingData").key_names) == \
        {"InstanceID"}
    assert set(schema.spec(INTEROP, "KVM_RegisteredProfile").key_names) == {"InstanceID"}
    assert schema.spec(VIRT, "KVM_SystemDevice").is_association
    assert schema.spec(VIRT, "KVM_ComputerSystemCreatedIndication").is_indication
    assert len(schema.get_class(VIRT, "KVM_ComputerSystem").properties) > 30


def test_no_property_hides_an_inherited_one(schema, resolved):
    """A class redeclares an inherited property or method only with Override."""
    for ns in schema.namespaces:
        for cls in schema.all_classes(ns):
            if not cls.superclass:
                continue
            sup = resolved(cls.superclass)
            for coll, sup_coll in ((cls.properties, sup.properties),
                                   (cls.methods, sup.methods)):
                for name, el in coll.items():
                    if el.propagated:        # inherited (the loader resolves classes)
                        continue
                    if name in sup_coll:
                        assert qual(el, "Override") == sup_coll[name].name, \
                            f"{ns}:{cls.classname}.{name} hides an inherited element"
