"""DSP2013 use cases 5.2.1, 5.2.5, 5.2.6 and 5.2.7 end to end: pywbem against the real
kvm-cimom (libvirt's test driver), with embedded instances in every form clients send."""

from __future__ import annotations

import time

import pywbem
import pytest
from pywbem import CIMInstance, CIMInstanceName, Uint16, Uint64

from .conftest import TEST_STORAGE, storage_config_file

NS = "root/virt"
SYSTEMS = ("uc521", "uc525", "uc526", "uc527")


def _remove_systems(conn):
    """Destroy the systems these tests define (left by an earlier run on a server that
    lives on: --wbem-url)."""
    svcs = conn.EnumerateInstanceNames("KVM_VirtualSystemManagementService")
    for name in SYSTEMS:
        try:
            conn.GetInstance(_cs(name))
        except pywbem.CIMError:
            continue
        conn.InvokeMethod("DestroySystem", svcs[0], AffectedSystem=_cs(name))


@pytest.fixture(scope="module")
def cimom(scenario_server, tmp_path_factory):
    """kvm-cimom on libvirt's test:///default with the tests' storage allowed, or the
    --wbem-url server (whose providers serve a test:///default of their own)."""
    config = storage_config_file(tmp_path_factory.mktemp("cimom"), TEST_STORAGE.allowed_paths)
    server = scenario_server(config=config)
    conn = server.conn()
    _remove_systems(conn)
    yield server
    _remove_systems(conn)


def _service(conn):
    """The management service, found as DSP2013 says: from the host system."""
    host = conn.EnumerateInstanceNames("KVM_HostSystem")[0]
    svcs = conn.AssociatorNames(host, AssocClass="CIM_HostedService",
                                ResultClass="CIM_VirtualSystemManagementService")
    assert len(svcs) == 1
    return svcs[0]


def _cs(name):
    return CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                  "Name": name}, namespace=NS)


def _rasds(conn, cs):
    vssd = conn.AssociatorNames(cs, AssocClass="KVM_SettingsDefineState",
                                ResultClass="KVM_VirtualSystemSettingData")[0]
    return {r["InstanceID"]: r for r in conn.Associators(
        vssd, AssocClass="KVM_VirtualSystemSettingDataComponent")}, vssd


# pywbem 0.7 wrote embedded instances as MOF with tabs; pywbem 1.x tomof() with spaces.
MOF_07 = """instance of KVM_DiskResourceAllocationSettingData {
\tVirtualDevice = "vdb";
\tAddress = "/srv/uc-data.img";
\tEmulatedType = 0;
\tDriverCache = "none";
};
"""


def test_uc_5_2_1_create_virtual_computer_system(cimom):
    """DefineSystem with a VSSD and RASDs on the service of the host; the new system is
    Defined (powered off) and represented with its settings and devices."""
    conn = cimom.conn()
    svc = _service(conn)
    caps = conn.Associators(svc, AssocClass="CIM_ElementCapabilities",
                            ResultClass="CIM_VirtualSystemManagementCapabilities")[0]
    assert 2 in caps["SynchronousMethodsSupported"]            # DefineSystem
    vssd = CIMInstance("KVM_VirtualSystemSettingData", {"VirtualSystemIdentifier": "uc521",
                                                         "Notes": ["use case 5.2.1"]})
    mem = CIMInstance("KVM_MemResourceAllocationSettingData",
                      {"VirtualQuantity": Uint64(256 * 1024), "AllocationUnits": "KiloBytes"})
    proc = CIMInstance("KVM_ProcResourceAllocationSettingData", {"VirtualQuantity": Uint64(2)})
    disk = CIMInstance("KVM_DiskResourceAllocationSettingData",
                       {"VirtualDevice": "vda", "Address": "/srv/uc521.img"})
    net = CIMInstance("KVM_NetResourceAllocationSettingData",
                      {"NetworkType": "network", "PoolID": "NetworkPool/default"})
    # each form clients send: CIM-XML text, pywbem 1.x MOF, a CIMInstance (EmbeddedObject)
    rv, out = conn.InvokeMethod("DefineSystem", svc, SystemSettings=vssd.tocimxmlstr(),
                                ResourceSettings=[mem.tomof(), proc.tocimxmlstr(), disk, net])
    assert rv == 0
    cs = out["ResultingSystem"]
    assert cs["Name"] == "uc521"
    inst = conn.GetInstance(cs)
    assert inst["EnabledState"] == 3                           # Defined = powered off
    rasds, vssd_path = _rasds(conn, cs)
    assert rasds["uc521/mem"]["VirtualQuantity"] == 256 * 1024
    assert rasds["uc521/proc"]["VirtualQuantity"] == 2
    assert rasds["uc521/vda"]["Address"] == "/srv/uc521.img"
    nic = [r for r in rasds.values() if r.classname == "KVM_NetResourceAllocationSettingData"]
    assert len(nic) == 1 and nic[0]["PoolID"] == "NetworkPool/default"
    assert conn.GetInstance(vssd_path)["Notes"] == ["use case 5.2.1"]
    devices = conn.AssociatorNames(cs, AssocClass="KVM_SystemDevice")
    assert len([d for d in devices if d.classname == "KVM_Processor"]) == 2
    assert any(d.classname == "KVM_LogicalDisk" for d in devices)


def test_uc_5_2_5_change_virtual_system_state(cimom):
    """RequestStateChange with the states RequestedStatesSupported offers."""
    conn = cimom.conn()
    svc = _service(conn)
    rv, out = conn.InvokeMethod("DefineSystem", svc, SystemSettings=CIMInstance(
        "KVM_VirtualSystemSettingData", {"VirtualSystemIdentifier": "uc525"}).tomof())
    cs = out["ResultingSystem"]

    def supported():
        elec = conn.Associators(cs, AssocClass="CIM_ElementCapabilities",
                                ResultClass="CIM_EnabledLogicalElementCapabilities")[0]
        return list(elec["RequestedStatesSupported"])
    for state, enabled in ((2, 2), (9, 9), (2, 2), (6, 6), (2, 2), (11, 2), (10, 2), (4, 3)):
        assert state in supported(), (state, supported())
        rv, out = conn.InvokeMethod("RequestStateChange", cs, RequestedState=Uint16(state))
        if rv == 4096:              # a job (the managed save of 6 Offline): wait for it
            deadline = time.monotonic() + 120
            while conn.GetInstance(out["Job"])["JobState"] not in (7, 8, 9, 10):
                assert time.monotonic() < deadline, state
                time.sleep(0.2)
            assert conn.GetInstance(out["Job"])["JobState"] == 7, state
        else:
            assert rv == 0, state
        inst = conn.GetInstance(cs)
        assert (inst["EnabledState"], inst["RequestedState"]) == (enabled, state)
    assert 9 not in supported()
    rv, _ = conn.InvokeMethod("RequestStateChange", cs, RequestedState=Uint16(9))
    assert rv == 4097                                          # Invalid State Transition
    rv, _ = conn.InvokeMethod("RequestStateChange", cs, RequestedState=Uint16(2),
                              TimeoutPeriod=pywbem.CIMDateTime("00000000000030.000000:000"))
    assert rv == 0
    rv, _ = conn.InvokeMethod("RequestStateChange", cs, RequestedState=Uint16(3))
    assert rv == 0 and conn.GetInstance(cs)["EnabledState"] == 3


def test_uc_5_2_6_modify_virtual_system(cimom):
    """Add a resource, modify resource and system settings (instances read and sent back),
    on the class path and on the instance path of the service."""
    conn = cimom.conn()
    svc = _service(conn)
    svc_class = CIMInstanceName("KVM_VirtualSystemManagementService", namespace=NS)
    rv, out = conn.InvokeMethod("DefineSystem", svc_class, SystemSettings=CIMInstance(
        "KVM_VirtualSystemSettingData", {"VirtualSystemIdentifier": "uc526"}).tomof())
    cs = out["ResultingSystem"]
    rasds, vssd = _rasds(conn, cs)
    rv, out = conn.InvokeMethod("AddResourceSettings", svc, AffectedConfiguration=vssd,
                                ResourceSettings=[MOF_07])
    assert rv == 0
    added = out["ResultingResourceSettings"]
    assert [p["InstanceID"] for p in added] == ["uc526/vdb"]
    disk = conn.GetInstance(added[0])
    assert (disk["Address"], disk["DriverCache"]) == ("/srv/uc-data.img", "none")
    mem = conn.GetInstance(CIMInstanceName("KVM_MemResourceAllocationSettingData",
                                           {"InstanceID": "uc526/mem"}, namespace=NS))
    mem["VirtualQuantity"] = Uint64(mem["VirtualQuantity"] // 2)
    disk["DriverCache"] = "writeback"
    rv, out = conn.InvokeMethod("ModifyResourceSettings", svc_class,
                                ResourceSettings=[mem.tomof(), disk.tomof()])
    assert rv == 0
    assert [p["InstanceID"] for p in out["ResultingResourceSettings"]] == \
        ["uc526/mem", "uc526/vdb"]
    assert conn.GetInstance(added[0])["DriverCache"] == "writeback"
    settings = conn.GetInstance(vssd)
    settings["AutomaticRecoveryAction"] = Uint16(3)
    settings["Notes"] = ["modified"]
    rv, _ = conn.InvokeMethod("ModifySystemSettings", svc, SystemSettings=settings)
    assert rv == 0
    settings = conn.GetInstance(vssd)
    assert (settings["AutomaticRecoveryAction"], settings["Notes"]) == (3, ["modified"])
    rv, _ = conn.InvokeMethod("RemoveResourceSettings", svc, ResourceSettings=[added[0]])
    assert rv == 0
    with pytest.raises(pywbem.CIMError) as exc:
        conn.GetInstance(added[0])
    assert exc.value.status_code == pywbem.CIM_ERR_NOT_FOUND
    # bad input is a CIM error naming property and value
    bad = CIMInstance("KVM_DiskResourceAllocationSettingData",
                      {"VirtualDevice": "vdc", "Address": "/srv/other.img"})
    with pytest.raises(pywbem.CIMError) as exc:
        conn.InvokeMethod("AddResourceSettings", svc, AffectedConfiguration=vssd,
                          ResourceSettings=[bad.tomof(), bad.tomof()])
    assert exc.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert "ResourceSettings[1]" in exc.value.status_description
    assert "VirtualDevice 'vdc'" in exc.value.status_description
    rasds, _ = _rasds(conn, cs)
    assert "uc526/vdc" not in rasds                            # nothing half applied


def test_uc_5_2_7_destroy_virtual_system(cimom):
    """DestroySystem on a running system: it is stopped and its definition is gone."""
    conn = cimom.conn()
    svc = _service(conn)
    # old clients send an unused reference parameter as a single space
    rv, out = conn.InvokeMethod("DefineSystem", svc, SystemSettings=CIMInstance(
        "KVM_VirtualSystemSettingData", {"VirtualSystemIdentifier": "uc527"}),
        ReferenceConfiguration=" ")
    assert rv == 0
    cs = out["ResultingSystem"]
    assert conn.InvokeMethod("RequestStateChange", cs, RequestedState=Uint16(2))[0] == 0
    rv, _ = conn.InvokeMethod("DestroySystem", svc, AffectedSystem=cs)
    assert rv == 0
    with pytest.raises(pywbem.CIMError) as exc:
        conn.GetInstance(cs)
    assert exc.value.status_code == pywbem.CIM_ERR_NOT_FOUND
    assert "uc527" not in {p["Name"] for p in conn.EnumerateInstanceNames("KVM_ComputerSystem")}
    with pytest.raises(pywbem.CIMError) as exc:
        conn.InvokeMethod("DestroySystem", svc, AffectedSystem=cs)
    assert exc.value.status_code == pywbem.CIM_ERR_NOT_FOUND
