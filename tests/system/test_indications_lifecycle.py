"""VM lifecycle indications end to end, for changes made outside CIM.

A private libvirtd serves the test driver; the server and this test open the
same ``test+unix://`` URI, so domains this test defines, starts and
destroys through libvirt directly are changes the server did not make.
pywbem's listener receives the {P}_ComputerSystem*Indication instances.
"""

import time

import libvirt
import pywbem
import pytest

from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available
from tests.indprov.listener import Listener, manager, subscribe, wait_for
from tests.support.server import start_server

pytestmark = [pytest.mark.libvirtd,
              pytest.mark.skipif(not libvirtd_available(), reason="libvirtd not installed")]

VIRT = ["root/virt"]
ALL = "SELECT * FROM CIM_InstIndication WHERE SourceInstance ISA KVM_ComputerSystem"


def domain_xml(name: str, memory: int = 1024, uuid: str = "") -> str:
    return (f"<domain type='test'><name>{name}</name>"
            + (f"<uuid>{uuid}</uuid>" if uuid else "")
            + f"<memory>{memory}</memory><os><type>hvm</type></os></domain>")


@pytest.fixture(scope="module")
def daemon():
    d = PrivateLibvirtd().start()
    yield d
    d.cleanup()


@pytest.fixture(scope="module")
def server(daemon):
    srv = start_server(hosts=[daemon.uri("test")])
    yield srv
    srv.stop()


@pytest.fixture
def virsh(daemon):
    """A libvirt connection of our own: changes through it are made outside CIM."""
    conn = libvirt.open(daemon.uri("test"))
    yield conn
    conn.close()


@pytest.fixture
def watch(server):
    """start(query) -> Listener subscribed to `query` in root/virt; all removed afterwards."""
    made = []

    def start(query=ALL):
        lst = Listener()
        sm, sid = manager(server, f"lc{len(made)}")
        subscribe(sm, sid, lst.url, query, source=VIRT)
        made.append((lst, sm, sid))
        return lst
    yield start
    for lst, sm, sid in made:
        sm.remove_server(sid)
        lst.stop()


def summary(ind):
    """(short class, Name, EnabledState, previous EnabledState or None)."""
    src = ind["SourceInstance"]
    prev = ind.get("PreviousInstance")
    kind = ind.classname.replace("KVM_ComputerSystem", "").replace("Indication", "")
    return kind, src["Name"], src["EnabledState"], None if prev is None else prev["EnabledState"]


def expect(lst, count, timeout=20.0):
    got = lst.wait(count, timeout)
    assert len(got) == count, [summary(i) for i in got]
    return got[-1]


def test_lifecycle_of_a_domain_changed_outside_cim(watch, virsh):
    lst = watch()
    dom = virsh.defineXML(domain_xml("lc1"))
    ind = expect(lst, 1)
    assert summary(ind) == ("Created", "lc1", 3, None)
    assert ind["SourceInstance"]["UUID"] == dom.UUIDString()
    assert ind["SourceInstanceModelPath"] == \
        '/root/virt:KVM_ComputerSystem.CreationClassName="KVM_ComputerSystem",Name="lc1"'

    steps = [(dom.create, ("Modified", "lc1", 2, 3)),       # started: running, was off
             (dom.suspend, ("Modified", "lc1", 9, 2)),      # paused, was running
             (dom.resume, ("Modified", "lc1", 2, 9)),
             (dom.destroy, ("Modified", "lc1", 3, 2)),
             (dom.undefine, ("Deleted", "lc1", 3, None))]   # last state seen
    for n, (action, want) in enumerate(steps, start=2):
        action()
        ind = expect(lst, n)
        assert summary(ind) == want
        if want[0] == "Modified":
            # The previous instance is the real previous state, not a copy of the new one.
            assert ind["PreviousInstance"]["OperatingStatus"] != \
                ind["SourceInstance"]["OperatingStatus"]
    numbers = [i["SequenceNumber"] for i in lst.wait(6)]
    assert numbers == list(range(6))


def test_settings_change_is_a_modification(watch, virsh):
    lst = watch()
    dom = virsh.defineXML(domain_xml("lc2", 1024))
    expect(lst, 1)
    # Redefined: the settings changed, the state did not.
    virsh.defineXML(domain_xml("lc2", 2048, dom.UUIDString()))
    ind = expect(lst, 2)
    assert summary(ind) == ("Modified", "lc2", 3, 3)
    virsh.lookupByName("lc2").undefine()
    assert summary(expect(lst, 3)) == ("Deleted", "lc2", 3, None)


def test_transient_domain(watch, virsh):
    lst = watch()
    dom = virsh.createXML(domain_xml("lc3"), 0)
    assert summary(expect(lst, 1)) == ("Created", "lc3", 2, None)
    dom.destroy()                                  # a transient domain ends with its run
    assert summary(expect(lst, 2)) == ("Deleted", "lc3", 2, None)


def test_subscriptions_get_only_their_class(watch, virsh):
    created = watch("SELECT * FROM KVM_ComputerSystemCreatedIndication")
    everything = watch()
    dom = virsh.defineXML(domain_xml("lc4"))
    for n, action in enumerate((dom.create, dom.destroy, dom.undefine), start=1):
        expect(everything, n)           # one change at a time (see test_bursts_are_coalesced)
        action()
    assert [summary(i)[0] for i in everything.wait(4)] == ["Created", "Modified", "Modified",
                                                           "Deleted"]
    assert [summary(i) for i in created.wait(1)] == [("Created", "lc4", 3, None)]
    time.sleep(0.5)
    assert len(created.received) == 1


def test_bursts_are_coalesced_but_never_wrong(watch, virsh):
    """Changes faster than the server reads them: fewer indications, each one true."""
    lst = watch()
    dom = virsh.defineXML(domain_xml("lc6"))
    dom.create()
    dom.suspend()
    expect(lst, 1)
    got = lst.wait(3, 5)
    final = summary(got[-1])
    assert final[1:3] == ("lc6", 9)              # the last one carries the paused state
    prev = None
    for ind in got:
        kind, _name, state, before = summary(ind)
        assert before == prev                    # each previous state is the last one sent
        prev = state
    dom.destroy()
    dom.undefine()
    assert summary(expect(lst, len(got) + 1))[0] in ("Modified", "Deleted")


def test_watching_stops_with_the_last_subscription(server, virsh):
    lst = Listener()
    try:
        sm, sid = manager(server, "lcstop")
        subscribe(sm, sid, lst.url, ALL, source=VIRT)
        dom = virsh.defineXML(domain_xml("lc5"))
        expect(lst, 1)
        stopped = server.log().count("stopped watching domain events")
        sm.remove_server(sid)               # the last subscription of the module's classes
        assert wait_for(lambda: server.log().count("stopped watching domain events") ==
                        stopped + 1)
        dom.undefine()
        time.sleep(0.5)
        assert len(lst.received) == 1
    finally:
        lst.stop()


def test_changes_while_disconnected_are_reported(tmp_path):
    """The daemon restarts (the test driver forgets its domains): Deleted after reconnecting."""
    d = PrivateLibvirtd().start()
    srv = start_server(hosts=[d.uri("test")])
    lst = Listener()
    try:
        sm, sid = manager(srv, "lcdisc")
        subscribe(sm, sid, lst.url, ALL, source=VIRT)
        conn = libvirt.open(d.uri("test"))
        conn.defineXML(domain_xml("gone"))
        conn.close()
        assert summary(expect(lst, 1)) == ("Created", "gone", 3, None)
        d.stop()
        d.start()
        ind = expect(lst, 2, timeout=40)
        assert summary(ind) == ("Deleted", "gone", 3, None)
        assert wait_for(lambda: "reconnected" in srv.log())
        # And events flow again on the new connection.
        conn = libvirt.open(d.uri("test"))
        conn.defineXML(domain_xml("back"))
        conn.close()
        assert summary(expect(lst, 3)) == ("Created", "back", 3, None)
        sm.remove_server(sid)
        assert wait_for(lambda: "stopped watching domain events" in srv.log())
    finally:
        lst.stop()
        srv.stop()
        d.cleanup()


def test_rasd_indications_for_settings_changed_through_cim(server, watch):
    """RASD Created / Modified / Deleted indications (libvirt-cim's clients subscribe to
    them): for the devices of a guest defined with DefineSystem, for
    AddResourceSettings, ModifyResourceSettings and RemoveResourceSettings, and for
    every device when DestroySystem removes the guest. Requests as pywbem 0.7 sends
    them (embedded instances as MOF text)."""
    created = watch("SELECT * FROM KVM_ResourceAllocationSettingDataCreatedIndication")
    modified = watch("SELECT * FROM KVM_ResourceAllocationSettingDataModifiedIndication")
    deleted = watch("SELECT * FROM KVM_ResourceAllocationSettingDataDeletedIndication")
    conn = server.conn("root/virt")
    vsms = conn.EnumerateInstanceNames("KVM_VirtualSystemManagementService")[0]
    vssd = ('instance of KVM_VirtualSystemSettingData {\n'
            '    VirtualSystemIdentifier="rasdind";\n    BootDevice="hd";\n};')
    mem = ('instance of KVM_MemResourceAllocationSettingData {\n    ResourceType=4;\n'
           '    VirtualQuantity=128;\n    AllocationUnits="MegaBytes";\n};')
    rc, _ = conn.InvokeMethod("DefineSystem", vsms, SystemSettings=vssd,
                              ResourceSettings=[mem], ReferenceConfiguration=" ")
    assert rc == 0
    ids = {i["InstanceID"] for i in conn.EnumerateInstances(
        "KVM_ResourceAllocationSettingData") if i["InstanceID"].startswith("rasdind/")}
    assert {"rasdind/mem", "rasdind/proc"} <= ids
    got = created.wait(len(ids))
    assert {i["SourceInstance"]["InstanceID"] for i in got} == ids
    assert all(i.classname == "KVM_ResourceAllocationSettingDataCreatedIndication" for i in got)

    cs = pywbem.CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                       "Name": "rasdind"}, namespace="root/virt")
    disk = ('instance of KVM_DiskResourceAllocationSettingData {\n    ResourceType=17;\n'
            '    VirtualDevice="vdz";\n    Address="/var/lib/libvirt/images/rasdind.img";\n};')
    conf = pywbem.CIMInstanceName("KVM_VirtualSystemSettingData",
                                  {"InstanceID": "KVM:rasdind"}, namespace="root/virt")
    rc, _ = conn.InvokeMethod("AddResourceSettings", vsms, AffectedConfiguration=conf,
                              ResourceSettings=[disk])
    assert rc == 0
    got = created.wait(len(ids) + 1)
    assert got[-1]["SourceInstance"]["InstanceID"] == "rasdind/vdz"

    mem2 = mem.replace("ResourceType=4;", 'InstanceID="rasdind/mem";\n    ResourceType=4;')
    rc, _ = conn.InvokeMethod("ModifyResourceSettings", vsms,
                              ResourceSettings=[mem2.replace("128", "256")])
    assert rc == 0
    ind = modified.wait(1)[0]
    assert ind["SourceInstance"]["InstanceID"] == "rasdind/mem"
    assert ind["SourceInstance"]["VirtualQuantity"] != ind["PreviousInstance"]["VirtualQuantity"]

    rasd = pywbem.CIMInstanceName("KVM_DiskResourceAllocationSettingData",
                                  {"InstanceID": "rasdind/vdz"}, namespace="root/virt")
    rc, _ = conn.InvokeMethod("RemoveResourceSettings", vsms, ResourceSettings=[rasd])
    assert rc == 0
    assert [i["SourceInstance"]["InstanceID"] for i in deleted.wait(1)] == ["rasdind/vdz"]

    rc, _ = conn.InvokeMethod("DestroySystem", vsms, AffectedSystem=cs)
    assert rc == 0
    got = deleted.wait(1 + len(ids))
    assert {i["SourceInstance"]["InstanceID"] for i in got[1:]} == ids
