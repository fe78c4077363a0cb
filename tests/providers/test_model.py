"""Every class and association of the virtual system model, end to end through the
embedded server and pywbem, on the fixture node, cross-checked against libvirt."""

from __future__ import annotations

import re

import pytest
from pywbem import CIMError, CIMInstanceName

from . import expected as X

pytestmark = pytest.mark.usefixtures("node_server")


def keyset(paths, key):
    return {(p.classname, p.keybindings[key]) for p in paths}


def cs_path(name):
    return CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                  "Name": name}, namespace="root/virt")


# -- ComputerSystem ----------------------------------------------------------------------

def test_computer_system_names_and_states(conn, lv):
    doms = {d.name(): d for d in lv.listAllDomains()}
    names = conn.EnumerateInstanceNames("KVM_ComputerSystem")
    assert sorted(p["Name"] for p in names) == sorted(doms)
    assert all(p["CreationClassName"] == "KVM_ComputerSystem" for p in names)
    for inst in conn.EnumerateInstances("KVM_ComputerSystem"):
        dom = doms[inst["Name"]]
        assert inst["EnabledState"] == X.enabled_state(dom), inst["Name"]
        assert inst["UUID"] == dom.UUIDString()
        assert inst["ElementName"] == dom.name()
        assert inst["RequestedState"] == 0
        st = dom.state()[0]
        assert inst["HealthState"] == {1: 5, 3: 5, 6: 20}.get(st, 0)
        assert inst["OperationalStatus"] == [{1: 2, 3: 2, 6: 6}.get(st, 15)]
        assert inst["OtherIdentifyingInfo"] == ["Virtual System", "KVM Virtual System",
                                                dom.UUIDString()]
        assert inst["Caption"]
        got = conn.GetInstance(inst.path)
        assert got["EnabledState"] == inst["EnabledState"]
    assert conn.GetInstance(cs_path("saved"))["EnabledState"] == 6
    assert conn.GetInstance(cs_path("paused"))["EnabledState"] == 9
    assert conn.GetInstance(cs_path("crashed"))["EnabledState"] == 3


def test_computer_system_not_found_and_property_list(conn):
    with pytest.raises(CIMError) as err:
        conn.GetInstance(cs_path("no-such-vm"))
    assert err.value.status_code == 6 and "no-such-vm" in err.value.status_description
    bad = cs_path("full")
    bad["CreationClassName"] = "KVM_HostSystem"
    with pytest.raises(CIMError) as err:
        conn.GetInstance(bad)
    assert err.value.status_code == 6
    inst = conn.GetInstance(cs_path("full"), PropertyList=["EnabledState"])
    assert set(inst.properties) <= {"EnabledState", "Name", "CreationClassName"}
    assert inst["EnabledState"] == 2
    insts = conn.EnumerateInstances("KVM_ComputerSystem", PropertyList=["UUID"])
    assert all(set(i.properties) <= {"UUID", "Name", "CreationClassName"} for i in insts)
    assert conn.EnumerateInstanceNames("LXC_ComputerSystem") == []


def test_host_system(conn, lv):
    hosts = conn.EnumerateInstances("KVM_HostSystem")
    assert len(hosts) == 1
    assert hosts[0]["Name"] == lv.getHostname()
    assert hosts[0]["ElementName"] == lv.getHostname()
    assert conn.GetInstance(hosts[0].path)["Name"] == lv.getHostname()
    assert conn.EnumerateInstanceNames("Xen_HostSystem") == []


# -- settings ---------------------------------------------------------------------------

def test_vssd(conn, lv):
    vssds = {i["InstanceID"]: i for i in conn.EnumerateInstances("KVM_VirtualSystemSettingData")}
    assert set(vssds) == {f"KVM:{d.name()}" for d in lv.listAllDomains()}
    for dom in lv.listAllDomains():
        v = vssds[f"KVM:{dom.name()}"]
        root = X.dom_xml(dom)
        assert v["VirtualSystemIdentifier"] == dom.name() == v["ElementName"]
        assert v["VirtualSystemType"] == "KVM"
        assert v["UUID"] == dom.UUIDString()
        assert v["AutoStart"] == dom.autostart()
        assert v.get("BootDevices") == (root.xpath("os/boot/@dev") or None)
        assert v["EnableACPI"] == (root.find("features/acpi") is not None)
        assert v["Arch"] == root.find("os/type").get("arch")
        desc = root.findtext("description")
        assert v.get("Notes") == ([desc] if desc else None)
    full = vssds["KVM:full"]
    assert (full["ClockOffset"], full["AutomaticRecoveryAction"],
            full["AutomaticShutdownAction"]) == (1, 123, 2)
    assert full["Emulator"] == "/usr/bin/qemu-system-x86_64"
    assert full["Machine"] == "pc-q35-7.2"
    assert vssds["KVM:container"]["InitPath"] == "/sbin/init"
    assert conn.GetInstance(full.path)["UUID"] == full["UUID"]


def test_rasds(conn, lv):
    got = keyset(conn.EnumerateInstanceNames("CIM_ResourceAllocationSettingData"),
                 "InstanceID")
    want = set().union(*(X.rasds(d) for d in lv.listAllDomains()))
    assert got == want
    insts = {i["InstanceID"]: i
             for i in conn.EnumerateInstances("CIM_ResourceAllocationSettingData")}
    for cls, iid in want:
        kind = next(k for k, c in X.RASD_CLASS.items() if cls.endswith(c))
        assert insts[iid]["ResourceType"] == X.RESOURCE_TYPE[kind]
    for dom in lv.listAllDomains():
        info = dom.info()
        n = dom.name()
        assert insts[f"{n}/proc"]["VirtualQuantity"] == info[3]
        assert insts[f"{n}/mem"]["VirtualQuantity"] == info[2]
        assert insts[f"{n}/mem"]["Reservation"] == info[2]
        assert insts[f"{n}/mem"]["Limit"] == info[1]
        assert insts[f"{n}/mem"]["AllocationUnits"] == "KiloBytes"
        root = X.dom_xml(dom)
        for d in root.xpath("devices/disk"):
            r = insts[f"{n}/{d.find('target').get('dev')}"]
            src = d.find("source")
            path = None if src is None else (src.get("file") or src.get("dev") or
                                             src.get("name"))
            assert r["Address"] == (path if path is not None else "")
            assert r["VirtualDevice"] == d.find("target").get("dev")
            assert r["EmulatedType"] == {"disk": 0, "cdrom": 1, "floppy": 2,
                                         "lun": 4}[d.get("device")]
        for i in root.xpath("devices/interface"):
            mac = i.find("mac").get("address")
            r = insts[f"{n}/{mac}"]
            assert r["Address"] == mac and r["NetworkType"] == i.get("type")
            model = i.find("model")
            assert r.get("ResourceSubType") == (model.get("type") if model is not None else None)
            net = i.xpath("source/@network")
            assert r.get("PoolID") == (f"NetworkPool/{net[0]}" if net else None)
    vol = lv.storageVolLookupByPath("/var/lib/libvirt/images/data.img")
    assert insts["full/vdb"]["VirtualQuantity"] == vol.info()[1]
    assert insts["full/vdb"]["PoolID"] == "DiskPool/images"
    assert insts["full/vdb"]["AllocationUnits"] == "Bytes"
    assert insts["full/vnc"]["Address"] == "0.0.0.0:5901"
    assert insts["full/vnc"]["Password"] == "********"
    assert insts["full/controller:usb:0"]["OtherResourceType"] == "controller"
    assert insts["full/controller:usb:0"]["ResourceSubType"] == "usb"
    assert insts["full/charconsole:0"]["OtherResourceType"] == "console"
    assert insts["full/tablet:usb#2"]["ResourceSubType"] == "tablet"
    assert insts["paused/sdl"]["Address"] == "sdl"
    # GetInstance of each class, and of things that do not exist
    for iid in ("full/vda", "full/mem", "full/proc", "full/52:54:00:aa:00:01"):
        r = insts[iid]
        assert conn.GetInstance(r.path)["InstanceID"] == iid
    bad = insts["full/vda"].path.copy()
    bad["InstanceID"] = "full/vdq"
    with pytest.raises(CIMError) as err:
        conn.GetInstance(bad)
    assert err.value.status_code == 6
    wrong_class = insts["full/vda"].path.copy()
    wrong_class.classname = "KVM_NetResourceAllocationSettingData"
    with pytest.raises(CIMError):
        conn.GetInstance(wrong_class)


def test_rasd_property_list(conn):
    insts = conn.EnumerateInstances("KVM_DiskResourceAllocationSettingData",
                                    PropertyList=["Address"])
    assert insts
    for i in insts:
        assert set(i.properties) <= {"InstanceID", "Address"}


# -- logical devices -------------------------------------------------------------------------

def test_logical_devices(conn, lv):
    names = conn.EnumerateInstanceNames("CIM_LogicalDevice")
    # The storage volumes of the host's pools are logical devices of the host (issue 5).
    vols = {p["DeviceID"] for p in names if p.classname == "KVM_StorageVolume"}
    assert vols == {v.path() for sp in lv.listAllStoragePools() if sp.isActive()
                    for v in sp.listAllVolumes()}
    got = keyset([p for p in names if p.classname != "KVM_StorageVolume"], "DeviceID")
    want = set().union(*(X.devices(d) for d in lv.listAllDomains()))
    assert got == want
    insts = {i["DeviceID"]: i for i in conn.EnumerateInstances("CIM_LogicalDevice")
             if i.classname != "KVM_StorageVolume"}
    for i in insts.values():
        assert i["SystemCreationClassName"] == "KVM_ComputerSystem"
        assert i["SystemName"] == i["DeviceID"].split("/", 1)[0]
    assert insts["full/vda"]["Name"] == "vda"
    assert insts["full/52:54:00:aa:00:01"]["NetworkAddresses"] == ["52:54:00:aa:00:01"]
    assert insts["full/52:54:00:aa:00:01"]["LinkTechnology"] == 2
    assert insts["full/vnc"]["VideoProcessor"] == "vnc/0.0.0.0:5901"
    assert insts["full/tablet:usb"]["PointingType"] == 3
    assert insts["full/keyboard:ps2"]["PointingType"] == 2
    assert insts["full/controller:usb:0"]["ProtocolSupported"] == 16
    assert insts["full/charconsole:1"]["VideoProcessor"] == "tcp"
    full = lv.lookupByName("full").info()
    assert insts["full/mem"]["NumberOfBlocks"] == full[1] * 1024 // 4096
    for dev in ("full/0", "full/vda", "full/mem"):
        assert conn.GetInstance(insts[dev].path)["DeviceID"] == dev
    gone = insts["full/1"].path.copy()
    gone["DeviceID"] = f"full/{full[3]}"            # one past the last vCPU
    with pytest.raises(CIMError) as err:
        conn.GetInstance(gone)
    assert err.value.status_code == 6


# -- services and capabilities -------------------------------------------------------------

def test_management_service(conn, lv):
    svcs = conn.EnumerateInstances("KVM_VirtualSystemManagementService")
    assert len(svcs) == 1
    s = svcs[0]
    v = lv.getVersion()
    assert s["Caption"] == f"{lv.getType()} {v // 1000000}.{v // 1000 % 1000}.{v % 1000}"
    assert re.fullmatch(r"\d+", s["Revision"]) and s["Changeset"]
    # libvirt-cim's clients gate features on Revision (its last release, 0.6.3, is
    # 1255; cimtest checks thresholds up to 1310): we report more than any of them.
    assert int(s["Revision"]) > 1347
    assert s["Name"] == "Management Service"
    assert s["SystemName"] == lv.getHostname()
    assert s["SystemCreationClassName"] == "KVM_HostSystem"
    assert conn.GetInstance(s.path)["Revision"] == s["Revision"]


def test_capabilities(conn, lv):
    from kvm_providers.providers.common import capabilities as caps
    vsmc = conn.EnumerateInstances("KVM_VirtualSystemManagementCapabilities")
    assert [c["InstanceID"] for c in vsmc] == ["ManagementCapabilities"]
    assert vsmc[0]["VirtualSystemTypesSupported"] == ["KVM"]
    assert (vsmc[0].get("SynchronousMethodsSupported") or []) == \
        caps.synchronous_methods_supported()
    elecs = {c["InstanceID"]: c
             for c in conn.EnumerateInstances("KVM_EnabledLogicalElementCapabilities")}
    assert set(elecs) == {d.name() for d in lv.listAllDomains()}
    # which states one system accepts depends on its state (issue 4); all are listed ones
    for e in elecs.values():
        assert set(e.get("RequestedStatesSupported") or []) <= set(caps.REQUESTED_STATES)
    assert elecs["full"]["ElementNameEditSupported"] is False


def test_capability_lists_name_implemented_methods():
    """Every method the capabilities advertise is implemented by the service's provider."""
    from kvm_providers.providers import computer_system, management_service
    from kvm_providers.providers.common import capabilities as caps
    for name in caps.VSMS_SYNCHRONOUS_METHODS + caps.VSMS_ASYNCHRONOUS_METHODS:
        assert hasattr(management_service.ManagementServiceProvider,
                       f"cim_method_{name.lower()}"), name
    if caps.REQUESTED_STATES:
        assert hasattr(computer_system.ComputerSystemProvider,
                       "cim_method_requeststatechange")


# -- associations -------------------------------------------------------------------------------

def test_system_device(conn, lv):
    for dom in lv.listAllDomains():
        cs = cs_path(dom.name())
        got = keyset(conn.AssociatorNames(cs, AssocClass="KVM_SystemDevice"), "DeviceID")
        assert got == X.devices(dom), dom.name()
        refs = conn.ReferenceNames(cs, ResultClass="KVM_SystemDevice", Role="GroupComponent")
        assert len(refs) == len(got)
    full = cs_path("full")
    disks = conn.Associators(full, AssocClass="KVM_SystemDevice", ResultClass="KVM_LogicalDisk")
    assert sorted(d["Name"] for d in disks) == ["fda", "hostshare", "sda", "sdc", "vda", "vdb",
                                                "vdc"]
    dev = disks[0].path
    back = conn.AssociatorNames(dev, AssocClass="KVM_SystemDevice")
    assert [p["Name"] for p in back] == ["full"]
    assert conn.AssociatorNames(dev, AssocClass="KVM_SystemDevice",
                                ResultRole="PartComponent") == []
    # a source that does not exist: CIM_ERR_NOT_FOUND (DSP0200, docs/compat.md)
    with pytest.raises(CIMError) as info:
        conn.AssociatorNames(cs_path("no-such"), AssocClass="KVM_SystemDevice")
    assert info.value.status_code == 6     # CIM_ERR_NOT_FOUND


def test_vssd_component_and_element_setting_data(conn, lv):
    for dom in lv.listAllDomains():
        vssd = CIMInstanceName("KVM_VirtualSystemSettingData",
                               {"InstanceID": f"KVM:{dom.name()}"}, namespace="root/virt")
        got = keyset(conn.AssociatorNames(vssd,
                                          AssocClass="KVM_VirtualSystemSettingDataComponent"),
                     "InstanceID")
        assert got == X.rasds(dom)
        esd = conn.References(vssd, ResultClass="KVM_ElementSettingData")
        assert len(esd) == 1
        assert esd[0]["ManagedElement"] == esd[0]["SettingData"]
        assert esd[0]["IsDefault"] == 1
    rasd = CIMInstanceName("KVM_DiskResourceAllocationSettingData",
                           {"InstanceID": "full/vda"}, namespace="root/virt")
    up = conn.AssociatorNames(rasd, AssocClass="KVM_VirtualSystemSettingDataComponent")
    assert [p["InstanceID"] for p in up] == ["KVM:full"]
    esd = conn.References(rasd, ResultClass="KVM_ElementSettingData", Role="SettingData")
    assert [(r["ManagedElement"]["InstanceID"], r["SettingData"]["InstanceID"])
            for r in esd] == [("full/vda", "full/vda")]


def test_settings_define_state(conn, lv):
    full = cs_path("full")
    vssd = conn.AssociatorNames(full, AssocClass="KVM_SettingsDefineState")
    assert [p["InstanceID"] for p in vssd] == ["KVM:full"]
    assert [p["Name"] for p in conn.AssociatorNames(
        vssd[0], AssocClass="KVM_SettingsDefineState")] == ["full"]
    for dev in conn.AssociatorNames(full, AssocClass="KVM_SystemDevice"):
        rasds = conn.AssociatorNames(dev, AssocClass="KVM_SettingsDefineState")
        assert len(rasds) == 1, dev
        suffix = dev["DeviceID"].split("/", 1)[1]
        want = "proc" if dev.classname == "KVM_Processor" else suffix
        assert rasds[0]["InstanceID"] == f"full/{want}"
    proc = CIMInstanceName("KVM_ProcResourceAllocationSettingData", {"InstanceID": "full/proc"},
                           namespace="root/virt")
    cpus = conn.AssociatorNames(proc, AssocClass="KVM_SettingsDefineState")
    assert len(cpus) == lv.lookupByName("full").info()[3]


def test_hosted_dependency_host_is_antecedent(conn, lv):
    host = conn.EnumerateInstanceNames("KVM_HostSystem")[0]
    refs = conn.References(host, ResultClass="KVM_HostedDependency")
    assert {r["Dependent"]["Name"] for r in refs} == {d.name() for d in lv.listAllDomains()}
    assert all(r["Antecedent"]["Name"] == host["Name"] for r in refs)
    assert conn.AssociatorNames(host, AssocClass="KVM_HostedDependency",
                                Role="Dependent") == []
    up = conn.AssociatorNames(cs_path("paused"), AssocClass="KVM_HostedDependency",
                              ResultRole="Antecedent")
    assert [p["Name"] for p in up] == [host["Name"]]
    assert len(conn.EnumerateInstanceNames("KVM_HostedDependency")) == \
        len(lv.listAllDomains())


def test_hosted_service_capabilities_service_affects(conn, lv):
    host = conn.EnumerateInstanceNames("KVM_HostSystem")[0]
    svc = conn.AssociatorNames(host, AssocClass="KVM_HostedService")
    assert [p.classname for p in svc] == ["KVM_VirtualSystemManagementService",
                                          "KVM_ResourcePoolConfigurationService",
                                          "KVM_VirtualSystemMigrationService",
                                          "KVM_VirtualSystemSnapshotService",
                                          "KVM_ConsoleRedirectionService",
                                          "KVM_MetricService"]
    assert [p["Name"] for p in conn.AssociatorNames(
        svc[0], AssocClass="KVM_HostedService")] == [host["Name"]]
    caps = conn.AssociatorNames(host, AssocClass="KVM_ElementCapabilities",
                                ResultClass="KVM_VirtualSystemManagementCapabilities")
    assert [p.classname for p in caps] == ["KVM_VirtualSystemManagementCapabilities"]
    assert conn.AssociatorNames(svc[0], AssocClass="KVM_ElementCapabilities") == caps
    elec = conn.AssociatorNames(cs_path("full"), AssocClass="KVM_ElementCapabilities")
    # EnabledLogicalElementCapabilities first (libvirt-cim's clients read elec[0]), then
    # what snapshots the system can take now (issue 13)
    assert [(p.classname, p["InstanceID"]) for p in elec] == \
        [("KVM_EnabledLogicalElementCapabilities", "full"),
         ("KVM_VirtualSystemSnapshotCapabilities", "full")]
    affected = conn.References(svc[0], ResultClass="KVM_ServiceAffectsElement")
    assert {r["AffectedElement"]["Name"] for r in affected} == \
        {d.name() for d in lv.listAllDomains()}
    assert all(r["ElementEffects"] == [5] for r in affected)


# -- profile registration ---------------------------------------------------------------------

COMPAT_PROFILE_IDS = {
    "CIM:DSP1042-SystemVirtualization-1.0.0", "CIM:DSP1057-VirtualSystem-1.0.0a",
    "CIM:DSP1059-GenericDeviceResourceVirtualization-1.0.0_d",
    "CIM:DSP1059-GenericDeviceResourceVirtualization-1.0.0_n",
    "CIM:DSP1059-GenericDeviceResourceVirtualization-1.0.0_p",
    "CIM:DSP1045-MemoryResourceVirtualization-1.0.0",
    "CIM:DSP1043-AllocationCapabilities-1.0.0a", "CIM:DSP1076-KVMRedirection-1.0.0",
    "CIM:DSP1041-ResourceAllocation-1.1.0c_d", "CIM:DSP1041-ResourceAllocation-1.1.0c_n",
    "CIM:DSP1041-ResourceAllocation-1.1.0c_p", "CIM:DSP1041-ResourceAllocation-1.1.0c_m",
    # issue 15 (not libvirt-cim's): base metrics
    "CIM:DSP1053-BaseMetrics-1.0.1",
    "CIM:DSP1081-VirtualSystemMigration-0.8.1",
    # issue 13: the snapshot service's own profile (DMTF has none)
    "kvm_providers:VirtualSystemSnapshot-1.0.0"}


def test_registered_and_referenced_profiles(iconn):
    profs = {p["InstanceID"]: p for p in iconn.EnumerateInstances("KVM_RegisteredProfile")}
    assert set(profs) == COMPAT_PROFILE_IDS
    sv = profs["CIM:DSP1042-SystemVirtualization-1.0.0"]
    assert (sv["RegisteredOrganization"], sv["RegisteredName"], sv["RegisteredVersion"]) == \
        (2, "System Virtualization", "1.0.0")
    # DSP1033: the referenced (component) profile is the Antecedent.
    refs = iconn.References(sv.path, ResultClass="KVM_ReferencedProfile")
    assert {r["Antecedent"]["InstanceID"] for r in refs} == \
        COMPAT_PROFILE_IDS - {sv["InstanceID"]}
    assert all(r["Dependent"]["InstanceID"] == sv["InstanceID"] for r in refs)
    vs = profs["CIM:DSP1057-VirtualSystem-1.0.0a"]
    up = iconn.AssociatorNames(vs.path, AssocClass="CIM_ReferencedProfile",
                               ResultRole="Dependent")
    assert [p["InstanceID"] for p in up] == [sv["InstanceID"]]
    assert iconn.EnumerateInstances("LXC_RegisteredProfile") == []


def test_element_conforms_to_profile_both_ways(conn, iconn, lv):
    profs = {p["InstanceID"]: p for p in iconn.EnumerateInstanceNames("KVM_RegisteredProfile")}
    hosts = iconn.AssociatorNames(profs["CIM:DSP1042-SystemVirtualization-1.0.0"],
                                  AssocClass="CIM_ElementConformsToProfile",
                                  ResultRole="ManagedElement")
    assert [(p.classname, p.namespace, p["Name"]) for p in hosts] == \
        [("KVM_HostSystem", "root/virt", lv.getHostname())]
    vss = iconn.AssociatorNames(profs["CIM:DSP1057-VirtualSystem-1.0.0a"],
                                AssocClass="CIM_ElementConformsToProfile")
    assert {p["Name"] for p in vss} == {d.name() for d in lv.listAllDomains()}
    back = conn.Associators(cs_path("full"), AssocClass="KVM_ElementConformsToProfile")
    assert [(p.path.namespace, p["InstanceID"]) for p in back] == \
        [("root/interop", "CIM:DSP1057-VirtualSystem-1.0.0a")]


def test_revision_grows_with_the_version():
    from kvm_providers.providers.management_service import _revision
    revs = [int(_revision(v)) for v in ("0.1.0", "0.1.1", "0.2.0", "1.0.0", "1.10.3")]
    assert revs == sorted(revs) and len(set(revs)) == len(revs) and revs[0] > 1347
