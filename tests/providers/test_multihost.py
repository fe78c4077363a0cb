"""Several configured hosts: every domain reported, keys distinct, failures isolated."""

from __future__ import annotations

import time

import pytest
from pywbem import CIMError, CIMInstanceName, WBEMServer

from tests.fixtures.generate import bench_domain_xml, write_node
from tests.support.server import start_server


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    d = tmp_path_factory.mktemp("multi")
    a = write_node(str(d / "a.xml"), 0, [bench_domain_xml(1, name="vm1"),
                                          bench_domain_xml(2, name="only-a")])
    b = write_node(str(d / "b.xml"), 0, [bench_domain_xml(3, name="vm1"),
                                          bench_domain_xml(4, name="a:b")])
    cfg = d / "kvm-providers.conf"
    cfg.write_text(f"""
[[host]]
uri = "test://{a}"
name = "lab1"

[[host]]
uri = "test://{b}"
name = "lab2"

[[host]]
uri = "test:///default"
name = "ct"
family = "LXC"
""")
    server = start_server(config=str(cfg))
    yield server
    server.stop()


def test_same_domain_name_on_two_hosts(multi):
    conn = multi.conn()
    names = sorted(p["Name"] for p in conn.EnumerateInstanceNames("KVM_ComputerSystem"))
    assert names == ["lab1:only-a", "lab1:vm1", "lab2:a:b", "lab2:vm1"]
    uuids = {}
    for n in ("lab1:vm1", "lab2:vm1", "lab2:a:b"):
        p = CIMInstanceName("KVM_ComputerSystem",
                            {"CreationClassName": "KVM_ComputerSystem", "Name": n},
                            namespace="root/virt")
        inst = conn.GetInstance(p)
        assert inst["ElementName"] == n.split(":", 1)[1]
        uuids[n] = inst["UUID"]
    assert len(set(uuids.values())) == 3
    vssd = {i["InstanceID"] for i in conn.EnumerateInstanceNames("KVM_VirtualSystemSettingData")}
    assert {"KVM:lab1:vm1", "KVM:lab2:vm1", "KVM:lab2:a:b"} <= vssd
    rasds = {p["InstanceID"] for p in conn.EnumerateInstanceNames(
        "KVM_DiskResourceAllocationSettingData")}
    assert {"lab1:vm1/vda", "lab2:vm1/vda", "lab2:a:b/vdb"} <= rasds
    devs = conn.AssociatorNames(
        CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                               "Name": "lab2:a:b"}, namespace="root/virt"),
        AssocClass="KVM_SystemDevice")
    assert devs and all(d["SystemName"] == "lab2:a:b" for d in devs)
    assert all(d["DeviceID"].startswith("lab2:a:b/") for d in devs)


def test_hosts_and_services_distinct(multi):
    conn = multi.conn()
    hosts = conn.EnumerateInstanceNames("KVM_HostSystem")
    names = sorted(h["Name"] for h in hosts)
    assert len(names) == 2 and names[0].startswith("lab1:") and names[1].startswith("lab2:")
    assert names[0].split(":", 1)[1] == names[1].split(":", 1)[1]   # same machine
    svcs = conn.EnumerateInstanceNames("KVM_VirtualSystemManagementService")
    assert sorted(s["SystemName"] for s in svcs) == names
    for h in hosts:
        label = h["Name"].split(":", 1)[0]
        vss = conn.AssociatorNames(h, AssocClass="KVM_HostedDependency",
                                   ResultClass="KVM_ComputerSystem")
        assert vss and all(v["Name"].startswith(label + ":") for v in vss)
        caps = conn.AssociatorNames(h, AssocClass="KVM_ElementCapabilities",
                                    ResultClass="KVM_VirtualSystemManagementCapabilities")
        assert [c["InstanceID"] for c in caps] == [f"{label}:ManagementCapabilities"]


def test_families_and_profiles(multi):
    conn = multi.conn()
    lxc = conn.EnumerateInstanceNames("LXC_ComputerSystem")
    assert [p["Name"] for p in lxc] == ["ct:test"]
    assert conn.EnumerateInstanceNames("Xen_ComputerSystem") == []
    server = WBEMServer(conn)
    profs = server.get_selected_profiles("DMTF", "System Virtualization")
    assert sorted(p["InstanceID"] for p in profs) == [
        "CIM:DSP1042-SystemVirtualization-1.0.0-KVM",
        "CIM:DSP1042-SystemVirtualization-1.0.0-LXC"]
    central = {p.classname: server.get_central_instances(p.path) for p in profs}
    assert len(central["KVM_RegisteredProfile"]) == 2
    assert [h.classname for h in central["LXC_RegisteredProfile"]] == ["LXC_HostSystem"]


def test_unreachable_host_fails_fast_and_is_isolated(tmp_path):
    a = write_node(str(tmp_path / "a.xml"), 0, [bench_domain_xml(1, name="vm1")])
    cfg = tmp_path / "kvm-providers.conf"
    cfg.write_text(f"""
[[host]]
uri = "test://{a}"
name = "good"

[[host]]
uri = "qemu:///session?socket={tmp_path}/no-such-daemon.sock"
name = "gone"
""")
    server = start_server(config=str(cfg))
    try:
        conn = server.conn()
        t0 = time.monotonic()
        with pytest.raises(CIMError) as err:
            conn.EnumerateInstanceNames("KVM_ComputerSystem")
        assert time.monotonic() - t0 < 5
        assert err.value.status_code == 1
        assert "gone" in err.value.status_description
        inst = conn.GetInstance(CIMInstanceName(
            "KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                   "Name": "good:vm1"}, namespace="root/virt"))
        assert inst["ElementName"] == "vm1"
        # profile registration is static: it still answers
        assert server.conn("root/interop").EnumerateInstanceNames("KVM_RegisteredProfile")
    finally:
        server.stop()
