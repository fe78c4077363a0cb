"""Migration jobs (issue 14): a migration answers 4096 and a {P}_MigrationJob whose
PercentComplete follows libvirt's statistics, which a client can cancel (the guest
then runs on the source, unchanged), announced by libvirt-cim's
{P}_ComputerSystemMigrationJob*Indication and the standard job indications; the
guest's lifecycle indications come from both hosts; a change another client asks
for meanwhile waits for the migration.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from pywbem import CIMError, Uint16

from tests.indprov.listener import Listener, manager, subscribe

from .conftest import boot, domain_on, make_disk, remove_guest
from .support import MIGRATION_TIMEOUT, cs_ref, definition, host_ref, settings, svc_path

pytestmark = [pytest.mark.qemu, pytest.mark.libvirtd, pytest.mark.slow]

libvirt = pytest.importorskip("libvirt")

END_STATES = (7, 8, 9, 10)


def _job_end(conn, job, timeout=MIGRATION_TIMEOUT, seen=None):
    """Poll the job until it ends; its last instance.  `seen` collects PercentComplete."""
    deadline = time.monotonic() + timeout
    while True:
        inst = conn.GetInstance(job)
        if seen is not None and inst["PercentComplete"] is not None:
            seen.append(int(inst["PercentComplete"]))
        if inst["JobState"] in END_STATES:
            return inst
        assert time.monotonic() < deadline, "the migration job did not end"
        time.sleep(0.5)


@pytest.fixture
def shared_guest(pair):
    """start(name) -> a running guest on A with its disk in shared storage."""
    made = []

    def start(name):
        disk = os.path.join(pair.shared, f"{name}.qcow2")
        make_disk(disk)
        made.append((name, disk))
        ca = libvirt.open(pair.a.uri())
        try:
            boot(pair, ca, name, disks=((disk, "vda"),))
        finally:
            ca.close()
        return name
    yield start
    for name, disk in made:
        remove_guest(pair, name)
        if os.path.exists(disk):
            os.unlink(disk)


@pytest.fixture
def listener(server):
    """A listener subscribed to the migration job indications, the standard job
    indications and the virtual systems' lifecycle indications."""
    lst = Listener()
    sm, sid = manager(server, "migjobs")
    queries = [f"SELECT * FROM KVM_ComputerSystemMigrationJob{k}Indication"
               for k in ("Created", "Modified", "Deleted")]
    queries += ["SELECT * FROM CIM_InstModification WHERE SourceInstance ISA CIM_ConcreteJob",
                "SELECT * FROM CIM_InstIndication WHERE SourceInstance ISA KVM_ComputerSystem"]
    for i, q in enumerate(queries):
        subscribe(sm, sid, lst.url, q, source=["root/virt"], fid=f"f{i}", did=f"d{i}")
    yield lst
    sm.remove_server(sid)
    lst.stop()


def test_job_progress_indications_on_both_hosts(pair, conn, shared_guest, listener):
    name = shared_guest("job-live")
    before = definition(pair.a, name)
    # 8 MiB/s: the migration lasts long enough for progress to be seen
    msd = settings(MigrationType=2, Unsafe=True, Bandwidth=8)
    rv, out = conn.InvokeMethod("MigrateVirtualSystemToSystem", svc_path(conn, "a"),
                                ComputerSystem=cs_ref("a", name), DestinationSystem=host_ref(conn, "b"),
                                MigrationSettingData=msd)
    assert rv == 4096
    job = out["Job"]
    assert job.classname == "KVM_MigrationJob"
    seen: list[int] = []
    inst = _job_end(conn, job, seen=seen)
    assert inst["JobState"] == 7, inst["ErrorDescription"]
    assert inst["PercentComplete"] == 100
    assert any(0 <= p < 100 for p in seen), f"no progress seen while it ran: {seen}"
    assert domain_on(pair.b, name) == (True, True) and domain_on(pair.a, name) is None
    assert definition(pair.b, name) == before

    def got(pred, timeout=120.0):      # delivery is one thread; a loaded machine is slow
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [ind for _t, ind in list(listener.received) if pred(ind)]
            if hits:
                return hits
            time.sleep(0.2)
        return []
    iid = job["InstanceID"]
    for kind in ("Created", "Modified"):
        hits = got(lambda i, k=kind: i.classname == f"KVM_ComputerSystemMigrationJob{k}"
                   "Indication" and i["SourceInstance"]["InstanceID"] == iid)
        assert hits, f"no {kind} migration job indication"
    done = got(lambda i: i.classname == "KVM_ComputerSystemMigrationJobModifiedIndication"
               and i["SourceInstance"]["InstanceID"] == iid
               and i["SourceInstance"]["JobState"] == 7)
    assert done and done[0]["PreviousInstance"]["JobState"] == 4
    assert got(lambda i: i.classname == "CIM_InstModification"
               and i["SourceInstance"]["InstanceID"] == iid)
    # lifecycle: the guest leaves host a and arrives on host b
    assert got(lambda i: i.classname.startswith("KVM_ComputerSystem")
               and i["SourceInstance"]["Name"] == f"b:{name}"), "nothing from host b"
    seen_cs = [(i.classname, i["SourceInstance"]["Name"]) for _t, i in list(listener.received)
               if i.classname.startswith("KVM_ComputerSystem")
               and not i.classname.startswith("KVM_ComputerSystemMigration")]
    assert got(lambda i: i.classname == "KVM_ComputerSystemDeletedIndication"
               and i["SourceInstance"]["Name"] == f"a:{name}"), \
        f"no deletion on host a; lifecycle indications: {seen_cs}"


def test_cancelled_migration_leaves_the_guest_on_the_source(pair, conn, shared_guest):
    name = shared_guest("job-cancel")
    before = definition(pair.a, name)
    msd = settings(MigrationType=2, Unsafe=True, Bandwidth=1)     # 1 MiB/s: it lasts
    rv, out = conn.InvokeMethod("MigrateVirtualSystemToSystem", svc_path(conn, "a"),
                                ComputerSystem=cs_ref("a", name), DestinationSystem=host_ref(conn, "b"),
                                MigrationSettingData=msd)
    assert rv == 4096
    job = out["Job"]
    deadline = time.monotonic() + 120
    while True:       # cancellable once libvirt's migration runs
        inst = conn.GetInstance(job)
        assert inst["JobState"] not in END_STATES, inst["ErrorDescription"]
        if inst["Cancellable"] and inst["PercentComplete"] is not None:
            break
        assert time.monotonic() < deadline, "the migration never became cancellable"
        time.sleep(0.5)
    rv, _ = conn.InvokeMethod("RequestStateChange", job, RequestedState=Uint16(4))
    assert rv == 0
    inst = _job_end(conn, job)
    assert inst["JobState"] == 8, (inst["JobState"], inst["ErrorDescription"])
    assert domain_on(pair.a, name) == (True, True)
    assert domain_on(pair.b, name) is None
    assert definition(pair.a, name) == before
    assert conn.GetInstance(cs_ref("a", name))["EnabledState"] == 2


def test_a_change_during_the_migration_waits_for_it(pair, conn, server, shared_guest):
    """Another client pauses the guest while it migrates: the request waits for the
    migration and then finds the guest gone from the source; the guest runs on B."""
    name = shared_guest("job-serial")
    msd = settings(MigrationType=2, Unsafe=True, Bandwidth=4)
    rv, out = conn.InvokeMethod("MigrateVirtualSystemToSystem", svc_path(conn, "a"),
                                ComputerSystem=cs_ref("a", name), DestinationSystem=host_ref(conn, "b"),
                                MigrationSettingData=msd)
    assert rv == 4096
    deadline = time.monotonic() + 120
    while conn.GetInstance(out["Job"])["JobState"] != 4:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    other = server.conn(timeout=MIGRATION_TIMEOUT + 60)
    result: dict = {}

    def pause():
        try:
            result["rv"] = other.InvokeMethod("RequestStateChange", cs_ref("a", name),
                                              RequestedState=Uint16(9))[0]
        except CIMError as exc:
            result["error"] = exc.status_code
        result["at"] = time.monotonic()
    t = threading.Thread(target=pause)
    t.start()
    inst = _job_end(conn, out["Job"])
    ended = time.monotonic()
    t.join(MIGRATION_TIMEOUT)
    assert inst["JobState"] == 7, inst["ErrorDescription"]
    assert result.get("error") == 6, result             # CIM_ERR_NOT_FOUND: it moved
    assert result["at"] >= ended - 5                     # answered after the migration
    c = libvirt.open(pair.b.uri())
    try:
        assert c.lookupByName(name).state()[0] == libvirt.VIR_DOMAIN_RUNNING
    finally:
        c.close()
