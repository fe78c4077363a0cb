"""What programs written against libvirt-cim send and read (its own suite, cimtest,
is the most complete such client): each test sends such a request through the real
embedded server with pywbem and checks the answer (docs/compat.md)."""

from __future__ import annotations

import pywbem
import pytest
from pywbem import CIMInstanceName

NS = "root/virt"


def _error(call, *args, **kwargs) -> tuple[int, str]:
    with pytest.raises(pywbem.CIMError) as info:
        call(*args, **kwargs)
    return info.value.status_code, info.value.status_description


def _host(conn) -> CIMInstanceName:
    return conn.EnumerateInstanceNames("KVM_HostSystem", namespace=NS)[0]


def test_get_instance_not_found_names_the_wrong_key(conn):
    """GetInstance of a path that names nothing: CIM_ERR_NOT_FOUND whose description
    names the key in which it differs from the nearest instance, and the path
    (libvirt-cim's clients look for "No such instance (<key>)")."""
    host = _host(conn)
    bad = host.copy()
    bad["Name"] = "invalid_name"
    code, desc = _error(conn.GetInstance, bad)
    assert code == pywbem.CIM_ERR_NOT_FOUND
    assert desc.startswith("Instance not found: ") and "invalid_name" in desc
    assert desc.endswith("; No such instance (Name)")
    bad = host.copy()
    bad["CreationClassName"] = "invalid_ccname"
    assert _error(conn.GetInstance, bad)[1].endswith("No such instance (CreationClassName)")
    disk = next(p for p in conn.EnumerateInstanceNames("KVM_LogicalDisk", namespace=NS)
                if p["DeviceID"] == "full/vda")
    bad = disk.copy()
    bad["SystemCreationClassName"] = "invalid_sccname"
    code, desc = _error(conn.GetInstance, bad)
    assert (code, desc.split("; ")[-1]) == (pywbem.CIM_ERR_NOT_FOUND,
                                            "No such instance (SystemCreationClassName)")
    bad = disk.copy()
    bad["DeviceID"] = "full/nosuch"
    assert _error(conn.GetInstance, bad)[1].endswith("No such instance (DeviceID)")
    bad = CIMInstanceName("KVM_EnabledLogicalElementCapabilities",
                          {"InstanceID": "INVALID_Instid_KeyValue"}, namespace=NS)
    assert _error(conn.GetInstance, bad)[1].endswith("No such instance (InstanceID)")


def test_path_lacking_a_key_is_answered_as_libvirt_cim_did(conn):
    """A path that lacks a key (libvirt-cim's clients bind it under another name):
    without the key that picks the instance among several (InstanceID, DeviceID, a
    virtual system's Name) CIM_ERR_FAILED "Missing <key>: No <key> specified"; with
    it but without another key, or any key of a class with one instance per host,
    CIM_ERR_NOT_FOUND "No such instance (<key>)".  GetInstance and the association
    operations answer alike (DSP0200 lists both codes for them; docs/compat.md)."""
    disk = next(p for p in conn.EnumerateInstanceNames("KVM_LogicalDisk", namespace=NS)
                if p["DeviceID"] == "full/vda")
    cs = CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                "Name": "full"}, namespace=NS)
    pool = CIMInstanceName("KVM_MemoryPool", {"InstanceID": "MemoryPool/0"}, namespace=NS)
    rasd = CIMInstanceName("KVM_DiskResourceAllocationSettingData",
                           {"InstanceID": "full/vda"}, namespace=NS)
    host = _host(conn)
    vsms = conn.EnumerateInstanceNames("KVM_VirtualSystemManagementService", namespace=NS)[0]

    def without(path, key):
        bad = path.copy()
        bad["Wrong"] = bad[key]
        del bad.keybindings[key]
        return bad

    cases = [
        (disk, "DeviceID", pywbem.CIM_ERR_FAILED, "Missing DeviceID: No DeviceID specified"),
        (disk, "SystemName", pywbem.CIM_ERR_NOT_FOUND, "No such instance (SystemName)"),
        (disk, "CreationClassName", pywbem.CIM_ERR_NOT_FOUND,
         "No such instance (CreationClassName)"),
        (disk, "SystemCreationClassName", pywbem.CIM_ERR_NOT_FOUND,
         "No such instance (SystemCreationClassName)"),
        (cs, "Name", pywbem.CIM_ERR_FAILED, "Missing Name: No domain name specified"),
        (cs, "CreationClassName", pywbem.CIM_ERR_NOT_FOUND,
         "No such instance (CreationClassName)"),
        (pool, "InstanceID", pywbem.CIM_ERR_FAILED,
         "Missing InstanceID: No InstanceID specified"),
        (rasd, "InstanceID", pywbem.CIM_ERR_FAILED, "Missing InstanceID"),
        (CIMInstanceName("KVM_VirtualSystemSettingData", {"InstanceID": "KVM:full"},
                         namespace=NS), "InstanceID", pywbem.CIM_ERR_NOT_FOUND,
         "No such instance (InstanceID)"),
        (host, "Name", pywbem.CIM_ERR_NOT_FOUND, "No such instance (Name)"),
        (host, "CreationClassName", pywbem.CIM_ERR_NOT_FOUND,
         "No such instance (CreationClassName)"),
        (vsms, "Name", pywbem.CIM_ERR_NOT_FOUND, "No such instance (Name)"),
    ]
    for path, key, want_code, want_text in cases:
        bad = without(path, key)
        for call in (conn.GetInstance, conn.AssociatorNames, conn.References):
            code, desc = _error(call, bad)
            assert (code, want_text in desc) == (want_code, True), (call, path, key, desc)
            assert f"lacks key property {key}" in desc
    # the same path with the key is found (the answers above are for the missing key)
    for path, *_ in cases:
        assert conn.GetInstance(path).path.classname == path.classname


def test_not_found_names_the_value_of_the_selecting_key(conn):
    """A path whose InstanceID / DeviceID / virtual system Name names nothing: the
    description gives that value in libvirt-cim's words too ("No such instance
    (<value>)", "(bad id <DeviceID>)" for a DeviceID that is no <system>/<device>,
    "- resource pool type mismatch" for a pool InstanceID of another pool type),
    besides the key; keys that do not select (a host's Name) are named only."""
    rasd = CIMInstanceName("KVM_DiskResourceAllocationSettingData",
                           {"InstanceID": "INVALID_InstID_Keyval"}, namespace=NS)
    for call in (conn.GetInstance, conn.AssociatorNames):
        code, desc = _error(call, rasd)
        assert code == pywbem.CIM_ERR_NOT_FOUND
        assert "No such instance (INVALID_InstID_Keyval)" in desc
        assert desc.endswith("No such instance (InstanceID)")
    disk = next(p for p in conn.EnumerateInstanceNames("KVM_LogicalDisk", namespace=NS)
                if p["DeviceID"] == "full/vda")
    bad = disk.copy()
    bad["DeviceID"] = "invalid_devid"
    code, desc = _error(conn.GetInstance, bad)
    assert code == pywbem.CIM_ERR_NOT_FOUND
    assert "No such instance (bad id invalid_devid)" in desc
    bad["DeviceID"] = "full/vdz"
    desc = _error(conn.GetInstance, bad)[1]
    assert "No such instance (full/vdz)" in desc and "bad id" not in desc
    pool = CIMInstanceName("KVM_MemoryPool", {"InstanceID": "wrong"}, namespace=NS)
    code, desc = _error(conn.AssociatorNames, pool,
                        AssocClass="KVM_ResourceAllocationFromPool")
    assert code == pywbem.CIM_ERR_NOT_FOUND
    assert "No such instance (wrong) - resource pool type mismatch" in desc
    pool["InstanceID"] = "DiskPool/default"
    assert "resource pool type mismatch" in _error(conn.GetInstance, pool)[1]
    host = _host(conn)
    bad = host.copy()
    bad["Name"] = "invalid_name"
    desc = _error(conn.GetInstance, bad)[1]
    assert "No such instance (invalid_name)" not in desc


def test_pools_are_listed_before_their_primordial_pool(conn):
    """A kind's storage pools or networks come first, its primordial pool last, in
    libvirt-cim's order (its clients take the last pool listed as the one they
    made); the same set as before."""
    for cls, primordial in (("KVM_NetworkPool", "NetworkPool/0"),
                            ("KVM_DiskPool", "DiskPool/0")):
        ids = [p["InstanceID"] for p in conn.EnumerateInstanceNames(cls, namespace=NS)]
        assert len(ids) > 1 and ids[-1] == primordial and ids.count(primordial) == 1, ids
        assert [i["InstanceID"] for i in conn.EnumerateInstances(cls, namespace=NS)] == ids


def test_get_instance_ignores_bindings_that_are_no_keys(conn):
    """A RASD path carrying a device's keys besides InstanceID (as libvirt-cim's
    clients send it) reads the RASD. Unknown key bindings stay refused where they
    would change something."""
    path = CIMInstanceName("KVM_GraphicsResourceAllocationSettingData",
                           {"InstanceID": "full/vnc",
                            "CreationClassName": "KVM_GraphicsResourceAllocationSettingData",
                            "SystemName": "full",
                            "SystemCreationClassName": "KVM_ComputerSystem"}, namespace=NS)
    inst = conn.GetInstance(path)
    assert inst["Address"] == "0.0.0.0:5901"
    assert inst["InstanceID"] == "full/vnc"
    code, desc = _error(conn.DeleteInstance, path)
    assert code == pywbem.CIM_ERR_INVALID_PARAMETER and "SystemName" in desc
    assert conn.GetInstance(path)["InstanceID"] == "full/vnc"      # nothing deleted


def test_console_redirection_service_affects_systems_and_their_kvm_devices(conn):
    """ServiceAffectsElement from the ConsoleRedirectionService: each virtual system,
    then its display controllers and pointing devices (keyboard, video, mouse), as
    libvirt-cim relates them; and back from each of them to the service."""
    crs = conn.EnumerateInstanceNames("KVM_ConsoleRedirectionService", namespace=NS)[0]
    got = conn.AssociatorNames(crs, AssocClass="KVM_ServiceAffectsElement")
    systems = {p["Name"] for p in conn.EnumerateInstanceNames("KVM_ComputerSystem",
                                                              namespace=NS)}
    assert {p["Name"] for p in got if p.classname == "KVM_ComputerSystem"} == systems
    want = {p["DeviceID"] for cls in ("KVM_DisplayController", "KVM_PointingDevice")
            for p in conn.EnumerateInstanceNames(cls, namespace=NS)}
    assert want and {p["DeviceID"] for p in got if "DeviceID" in p.keybindings} == want
    # each system is followed by its pointing devices, then its display controllers
    at = next(i for i, p in enumerate(got) if p.classname == "KVM_ComputerSystem"
              and p["Name"] == "full")
    mine = sorted(d for d in want if d.startswith("full/"))
    follow = got[at + 1:at + 1 + len(mine)]
    assert sorted(p["DeviceID"] for p in follow) == mine
    classes = [p.classname for p in follow]
    assert classes == sorted(classes, key=lambda c: c != "KVM_PointingDevice")
    for dev in (p for p in got if "DeviceID" in p.keybindings):
        back = conn.AssociatorNames(dev, AssocClass="KVM_ServiceAffectsElement")
        assert [b.classname for b in back] == ["KVM_ConsoleRedirectionService"]
    back = conn.AssociatorNames(next(p for p in got if p.classname == "KVM_ComputerSystem"),
                                AssocClass="KVM_ServiceAffectsElement")
    assert {b.classname for b in back} == {"KVM_VirtualSystemManagementService",
                                           "KVM_ConsoleRedirectionService"}


def test_modify_nic_model_to_empty_string_removes_the_model(conn):
    """ModifyResourceSettings with ResourceSubType "" (pywbem 0.7 MOF text, as
    libvirt-cim's clients send it to unset the NIC model) removes <model>: an empty
    string removes what the property describes; it is no invalid model."""
    vsms = conn.EnumerateInstanceNames("KVM_VirtualSystemManagementService", namespace=NS)[0]
    vssd = """
instance of KVM_VirtualSystemSettingData {
    VirtualSystemIdentifier="nicmodel";
    BootDevice="hd";
};"""
    nic = """
instance of KVM_NetResourceAllocationSettingData {
    ResourceType=10;
    Address="52:54:00:9c:00:71";
    NetworkType="network";
    NetworkName="default";
};"""
    rc, out = conn.InvokeMethod("DefineSystem", vsms, SystemSettings=vssd,
                                ResourceSettings=[nic], ReferenceConfiguration=" ")
    assert rc == 0
    try:
        rasd = CIMInstanceName("KVM_NetResourceAllocationSettingData",
                               {"InstanceID": "nicmodel/52:54:00:9c:00:71"}, namespace=NS)
        assert conn.GetInstance(rasd)["ResourceSubType"] == "virtio"
        unset = nic.replace("ResourceType=10;", 'InstanceID="nicmodel/52:54:00:9c:00:71";\n'
                            '    ResourceType=10;\n    ResourceSubType="";')
        rc, out = conn.InvokeMethod("ModifyResourceSettings", vsms, ResourceSettings=[unset])
        assert rc == 0
        assert conn.GetInstance(rasd)["ResourceSubType"] in (None, "")
        code, desc = _error(conn.InvokeMethod, "ModifyResourceSettings", vsms,
                            ResourceSettings=[unset.replace('ResourceSubType=""',
                                                            'ResourceSubType="nosuch"')])
        assert code == pywbem.CIM_ERR_INVALID_PARAMETER and "nosuch" in desc
    finally:
        conn.InvokeMethod("DestroySystem", vsms, AffectedSystem=CIMInstanceName(
            "KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                   "Name": "nicmodel"}, namespace=NS))


def test_association_of_an_unknown_class_is_an_invalid_parameter(conn):
    """An association operation whose ObjectName or AssocClass names no class:
    CIM_ERR_INVALID_PARAMETER, the error DSP0200 lists for these operations (it
    does not list CIM_ERR_INVALID_CLASS), naming the class; the description starts
    with the status's name, as OpenPegasus and sfcb write it."""
    bad = CIMInstanceName("InvalidClassName", {"CreationClassName": "KVM_LogicalDisk",
                                               "SystemName": "full", "DeviceID": "full/vda",
                                               "SystemCreationClassName": "KVM_ComputerSystem"},
                          namespace=NS)
    for call in (conn.AssociatorNames, conn.Associators, conn.ReferenceNames,
                 conn.References):
        code, desc = _error(call, bad)
        assert code == pywbem.CIM_ERR_INVALID_PARAMETER and "InvalidClassName" in desc
        assert desc.startswith("CIM_ERR_INVALID_PARAMETER: ")
    disk = bad.copy()
    disk.classname = "KVM_LogicalDisk"
    code, desc = _error(conn.AssociatorNames, disk, AssocClass="KVM_NoSuchAssociation")
    assert code == pywbem.CIM_ERR_INVALID_PARAMETER and "KVM_NoSuchAssociation" in desc
    assert desc.startswith("CIM_ERR_INVALID_PARAMETER: ")
    assert conn.AssociatorNames(disk, AssocClass="KVM_SystemDevice")       # still answered
    # the other operations keep CIM_ERR_INVALID_CLASS
    assert _error(conn.GetInstance, bad)[0] == pywbem.CIM_ERR_INVALID_CLASS


def test_remove_a_setting_the_system_lacks_names_its_instance_id(conn):
    """RemoveResourceSettings / ModifyResourceSettings of a RASD naming no device:
    CIM_ERR_NOT_FOUND whose description names the InstanceID, as GetInstance's do
    ("No such instance (<InstanceID>)"); nothing changes."""
    vsms = conn.EnumerateInstanceNames("KVM_VirtualSystemManagementService", namespace=NS)[0]
    before = sorted(str(p) for p in conn.EnumerateInstanceNames(
        "KVM_DiskResourceAllocationSettingData", namespace=NS))
    rasd = CIMInstanceName("KVM_DiskResourceAllocationSettingData",
                           {"InstanceID": "full/invalid"}, namespace=NS)
    code, desc = _error(conn.InvokeMethod, "RemoveResourceSettings", vsms,
                        ResourceSettings=[rasd])
    assert code == pywbem.CIM_ERR_NOT_FOUND
    assert "No such instance (full/invalid)" in desc and "'full' has no disk" in desc
    mof = ('instance of KVM_DiskResourceAllocationSettingData {\n'
           '    InstanceID="full/invalid";\n    ResourceType=17;\n};')
    code, desc = _error(conn.InvokeMethod, "ModifyResourceSettings", vsms,
                        ResourceSettings=[mof])
    assert code == pywbem.CIM_ERR_NOT_FOUND and "No such instance (full/invalid)" in desc
    assert sorted(str(p) for p in conn.EnumerateInstanceNames(
        "KVM_DiskResourceAllocationSettingData", namespace=NS)) == before


def test_association_of_an_object_that_does_not_exist_is_not_found(conn):
    """Associators, AssociatorNames, References, ReferenceNames (and their pull forms)
    of an ObjectName that names no instance: CIM_ERR_NOT_FOUND naming the path and
    the wrong key (DSP0200: "the source instance was not found"), as libvirt-cim
    answered, not an empty result; with a key missing, GetInstance's answer (see
    test_path_lacking_a_key_is_answered_as_libvirt_cim_did). An existing object
    without associations stays an empty answer."""
    cs = CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                "Name": "no-such-domain"}, namespace=NS)
    for call in (conn.AssociatorNames, conn.Associators, conn.ReferenceNames,
                 conn.References):
        code, desc = _error(call, cs)
        assert code == pywbem.CIM_ERR_NOT_FOUND
        assert "No such instance (Name): Referenced domain `no-such-domain' does not " \
            "exist: Domain not found" in desc
    code, desc = _error(conn.GetInstance, cs)          # the same description as GetInstance's
    assert code == pywbem.CIM_ERR_NOT_FOUND and "Referenced domain `no-such-domain'" in desc
    code, _ = _error(conn.AssociatorNames, cs, AssocClass="KVM_SystemDevice")
    assert code == pywbem.CIM_ERR_NOT_FOUND
    code, _ = _error(conn.OpenAssociatorInstancePaths, cs)
    assert code == pywbem.CIM_ERR_NOT_FOUND
    code, _ = _error(conn.OpenReferenceInstances, cs)
    assert code == pywbem.CIM_ERR_NOT_FOUND
    host = _host(conn)
    bad = host.copy()
    bad["CreationClassName"] = "wrong"
    code, desc = _error(conn.AssociatorNames, bad, AssocClass="KVM_HostedService")
    assert (code, desc.split("; ")[-1]) == (pywbem.CIM_ERR_NOT_FOUND,
                                            "No such instance (CreationClassName)")
    rasd = CIMInstanceName("KVM_DiskResourceAllocationSettingData",
                           {"InstanceID": "full/nosuch"}, namespace=NS)
    code, desc = _error(conn.AssociatorNames, rasd, AssocClass="KVM_ElementSettingData")
    assert code == pywbem.CIM_ERR_NOT_FOUND and "full/nosuch" in desc
    nokey = CIMInstanceName("KVM_DiskResourceAllocationSettingData",
                            {"INVALID_InstID_KeyName": "full/vda"}, namespace=NS)
    code, desc = _error(conn.AssociatorNames, nokey, AssocClass="KVM_ElementSettingData")
    assert code == pywbem.CIM_ERR_FAILED and "Missing InstanceID" in desc
    # a family class no provider serves has no instances (as OpenPegasus and sfcb
    # answer from their repositories)
    switch = CIMInstanceName("KVM_SwitchService", {"CreationClassName": "KVM_SwitchService",
                                                   "Name": "wrong", "SystemName": "wrong",
                                                   "SystemCreationClassName": "wrong"},
                             namespace=NS)
    code, desc = _error(conn.AssociatorNames, switch, AssocClass="KVM_HostedService")
    assert code == pywbem.CIM_ERR_NOT_FOUND and "KVM_SwitchService" in desc
    # the objects that exist are answered as before
    full = cs.copy()
    full["Name"] = "full"
    assert conn.AssociatorNames(full, AssocClass="KVM_SystemDevice")
    assert conn.AssociatorNames(host, AssocClass="KVM_HostedService")
    vda = rasd.copy()
    vda["InstanceID"] = "full/vda"
    assert conn.ReferenceNames(vda, ResultClass="KVM_ElementSettingData")


def test_destroy_system_of_a_reference_without_name_says_so(conn):
    """DestroySystem whose AffectedSystem has no Name key (libvirt-cim's clients send
    such a path): CIM_ERR_NOT_FOUND saying that the Name key is missing, not a
    virtual system named "None"."""
    vsms = conn.EnumerateInstanceNames("KVM_VirtualSystemManagementService", namespace=NS)[0]
    noname = CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem"},
                             namespace=NS)
    code, desc = _error(conn.InvokeMethod, "DestroySystem", vsms, AffectedSystem=noname)
    assert code == pywbem.CIM_ERR_NOT_FOUND
    assert "AffectedSystem" in desc and "no Name key" in desc and "None" not in desc
