"""GetSummaryInformation (issue 15): one call for every system of every host, through the
real embedded server and pywbem (the server runs in strict model mode: every value of
the embedded instances inside the class's ValueMaps)."""

from __future__ import annotations

import time

import libvirt
import pytest
import pywbem
from pywbem import CIMInstanceName, Uint32

from tests.fixtures.generate import write_node
from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available
from tests.support.server import start_server

ALL = [0, 1, 4, 100, 101, 102, 103, 105, 106, 107, 108, 109, 112, 32768, 32769]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("summary")
    hosts = [f"test://{write_node(str(tmp / f'n{i}.xml'), 3)}" for i in range(2)]
    srv = start_server(hosts=hosts + ["test:///default"])
    yield srv
    srv.stop()


def _svc(conn):
    return conn.EnumerateInstanceNames("KVM_VirtualSystemManagementService")[0]


def _vssd(label: str, name: str) -> CIMInstanceName:
    return CIMInstanceName("KVM_VirtualSystemSettingData",
                           {"InstanceID": f"KVM:{label}:{name}"}, namespace="root/virt")


def test_null_request_gives_every_system_of_every_host(server):
    conn = server.conn()
    rv, out = conn.InvokeMethod("GetSummaryInformation", _svc(conn))
    assert rv == 0
    got = out["SummaryInformation"]
    assert all(isinstance(i, pywbem.CIMInstance) and i.classname == "KVM_SummaryInformation"
               for i in got)
    systems = {p["Name"] for p in conn.EnumerateInstanceNames("KVM_ComputerSystem")}
    assert {i["Name"] for i in got} == systems and len(got) == 7
    by_name = {i["Name"]: i for i in got}
    hosts = {p["Name"] for p in conn.EnumerateInstanceNames("KVM_HostSystem")}
    for cs in conn.EnumerateInstances("KVM_ComputerSystem"):
        s = by_name[cs["Name"]]
        assert s["EnabledState"] == cs["EnabledState"]
        assert s["HostComputerSystemName"] in hosts
        assert s["ElementName"] == cs["Name"].split(":", 1)[1]
        assert s["TimeStamp"] is not None
        # the test driver reports no processor time: NULL, not a made-up 0
        if cs["EnabledState"] == 2:
            assert s["ProcessorLoad"] is None and s["HealthState"] == 5
        else:
            assert s["ProcessorLoad"] == 0
    # requested properties are there, NULL where unknown; the guest facts (not asked for
    # by a NULL RequestedInformation) are left out
    assert all(set(i.properties) == {"InstanceID", "Name", "ElementName", "NumberOfProcessors",
                                     "EnabledState", "ProcessorLoad", "ProcessorLoadHistory",
                                     "MemoryUsage", "UpTime", "HealthState", "MemoryAvailable",
                                     "HostComputerSystemName", "TimeStamp"} for i in got)
    assert all(i["UpTime"] is None for i in got)


def test_setting_data_in_order_with_guest_facts(server):
    conn = server.conn()
    label = conn.EnumerateInstanceNames("KVM_HostSystem")[0]["Name"].split(":")[0]
    want = [_vssd("default", "test"), _vssd(label, "guest0001")] \
        if label != "default" else [_vssd("default", "test")]
    rv, out = conn.InvokeMethod("GetSummaryInformation", _svc(conn), SettingData=want,
                                RequestedInformation=[Uint32(c) for c in ALL])
    assert rv == 0
    got = out["SummaryInformation"]
    assert [i["Name"] for i in got] == [p["InstanceID"].split(":", 1)[1] for p in want]
    test = got[0]
    # libvirt's lease lookup for the test driver's guest; its snapshots; no job support
    assert test["GuestIPAddresses"] == ["192.168.122.3"]
    assert test["NumberOfSnapshots"] == 0 and test["RunningJobs"] is None
    if len(got) > 1:
        assert got[1]["GuestIPAddresses"] is None and got[1]["RunningJobs"] == 0


@pytest.mark.parametrize("params,code,words", [
    ({"RequestedInformation": [Uint32(7)]}, pywbem.CIM_ERR_INVALID_PARAMETER,
     "RequestedInformation"),
    ({"SettingData": [_vssd("default", "nosuch")]}, pywbem.CIM_ERR_NOT_FOUND, "nosuch"),
    ({"SettingData": [CIMInstanceName("KVM_ComputerSystem", {"Name": "test"})]},
     pywbem.CIM_ERR_INVALID_PARAMETER, "SettingData[0]"),
])
def test_bad_parameters(server, params, code, words):
    conn = server.conn()
    with pytest.raises(pywbem.CIMError) as exc:
        conn.InvokeMethod("GetSummaryInformation", _svc(conn), **params)
    assert exc.value.status_code == code and words in exc.value.status_description


@pytest.mark.libvirtd
@pytest.mark.skipif(not libvirtd_available(), reason="libvirtd not installed")
def test_snapshots_counted_and_host_away(tmp_path):
    d = PrivateLibvirtd().start()
    srv = None
    try:
        lv = libvirt.open(d.uri("test"))
        lv.lookupByName("test").snapshotCreateXML("<domainsnapshot><name>s1</name>"
                                                  "</domainsnapshot>")
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[[host]]\nuri = "{d.uri("test")}"\nname = "remote"\n'
                       '[[host]]\nuri = "test:///default"\nname = "local"\n')
        srv = start_server(config=str(cfg))
        conn = srv.conn()
        label = "remote"
        rv, out = conn.InvokeMethod("GetSummaryInformation", _svc(conn),
                                    SettingData=[_vssd(label, "test")],
                                    RequestedInformation=[Uint32(0), Uint32(107)])
        assert rv == 0 and out["SummaryInformation"][0]["NumberOfSnapshots"] == 1
        lv.close()
        d.stop()
        # a host that is away: left out of a NULL request, an error when named
        deadline = time.monotonic() + 60
        while True:
            rv, out = conn.InvokeMethod("GetSummaryInformation", _svc(conn))
            names = [i["Name"] for i in out["SummaryInformation"]]
            if names == ["local:test"] or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert names == ["local:test"]
        with pytest.raises(pywbem.CIMError) as exc:
            conn.InvokeMethod("GetSummaryInformation", _svc(conn),
                              SettingData=[_vssd(label, "test")])
        assert exc.value.status_code == pywbem.CIM_ERR_FAILED and label in \
            exc.value.status_description
    finally:
        if srv is not None:
            srv.stop()
        d.cleanup()
