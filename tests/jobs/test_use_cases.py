"""DSP2013 use case 5.2.8, Managing Snapshots, end to end through pywbem: the client
waits for each job once by subscription (CIM_InstModification of the job, pywbem's
subscription manager and listener) and once by polling the job.  Runs against the
kvm-cimom it starts (libvirt's test driver) or a server given by --wbem-url."""

from __future__ import annotations

import pytest
from pywbem import CIMInstance, Uint16

from tests.indprov.listener import Listener, manager, subscribe, wait_for

from .support import NS, cs_path, service, wait_job

DOM = "test"


@pytest.fixture(scope="module")
def cimom(scenario_server):
    return scenario_server()


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.stop()


def _by_subscription(listener, job_path, timeout=120.0):
    """The job's final state as indications reported it: (JobState, [PercentComplete])."""
    iid = job_path["InstanceID"]

    def done():
        for _t, ind in list(listener.received):
            src = ind["SourceInstance"]
            if ind.classname == "CIM_InstModification" and src["InstanceID"] == iid and \
                    src["JobState"] in (7, 8, 9, 10):
                return src
        return None
    final = wait_for(done, timeout)
    assert final is not None, [i["SourceInstance"].get("JobState") for _t, i in
                               listener.received]
    percents = [i["SourceInstance"]["PercentComplete"] for _t, i in listener.received
                if i["SourceInstance"]["InstanceID"] == iid]
    return final["JobState"], percents


def test_uc_5_2_8_managing_snapshots(cimom, listener):
    conn = cimom.conn()
    sm, sid = manager(cimom, "uc528")
    try:
        subscribe(sm, sid, listener.url,
                  "SELECT * FROM CIM_InstModification WHERE SourceInstance ISA CIM_ConcreteJob",
                  source=(NS,), fid="jobs", did="uc528")
        # 5.2.8.1 Determining support for snapshots
        svc = service(conn)
        caps = conn.Associators(svc, AssocClass="CIM_ElementCapabilities",
                                ResultClass="CIM_VirtualSystemSnapshotServiceCapabilities")
        assert len(caps) == 1
        assert 2 in caps[0]["SnapshotTypesSupported"]
        assert 2 in caps[0]["AynchronousMethodsSupported"]       # CreateSnapshot
        # 5.2.8.2 Creating a snapshot: waited for by subscription
        rv, out = conn.InvokeMethod("CreateSnapshot", svc, AffectedSystem=cs_path(DOM),
                                    SnapshotType=Uint16(2),
                                    SnapshotSettings=CIMInstance("CIM_SettingData",
                                                                 {"ElementName": "uc1"}))
        assert rv == 4096
        state, percents = _by_subscription(listener, out["Job"])
        assert state == 7 and percents[-1] == 100
        first = out["ResultingSnapshot"]
        # a second one, waited for by polling
        rv, out = conn.InvokeMethod("CreateSnapshot", svc, AffectedSystem=cs_path(DOM),
                                    SnapshotType=Uint16(2),
                                    SnapshotSettings=CIMInstance("CIM_SettingData",
                                                                 {"ElementName": "uc2"}))
        assert rv == 4096
        assert wait_job(conn, out["Job"])["JobState"] == 7
        second = out["ResultingSnapshot"]
        # 5.2.8.3 Locating the snapshots of a virtual system
        snaps = conn.AssociatorNames(cs_path(DOM), AssocClass="CIM_SnapshotOfVirtualSystem")
        ids = {p["InstanceID"] for p in snaps}
        assert {first["InstanceID"], second["InstanceID"]} <= ids
        # 5.2.8.4 Locating the most current snapshot in a branch
        cur = conn.AssociatorNames(cs_path(DOM), AssocClass="CIM_MostCurrentSnapshotInBranch")
        assert [c["InstanceID"] for c in cur] == [second["InstanceID"]]
        # 5.2.8.5 Locating dependent snapshots (CIM_Dependency)
        deps = conn.AssociatorNames(first, AssocClass="CIM_Dependency", Role="Antecedent",
                                    ResultClass="CIM_VirtualSystemSettingData")
        assert [d["InstanceID"] for d in deps] == [second["InstanceID"]]
        # 5.2.8.6 Applying a snapshot (by subscription)
        rv, out = conn.InvokeMethod("ApplySnapshot", svc, Snapshot=first)
        assert rv == 4096
        assert _by_subscription(listener, out["Job"])[0] == 7
        cur = conn.AssociatorNames(cs_path(DOM), AssocClass="CIM_MostCurrentSnapshotInBranch")
        assert [c["InstanceID"] for c in cur] == [first["InstanceID"]]
        # 5.2.8.7 Destroying a snapshot (by polling), then the other (by subscription)
        rv, out = conn.InvokeMethod("DestroySnapshot", svc, AffectedSnapshot=second)
        assert rv == 4096 and wait_job(conn, out["Job"])["JobState"] == 7
        rv, out = conn.InvokeMethod("DestroySnapshot", svc, AffectedSnapshot=first)
        assert rv == 4096 and _by_subscription(listener, out["Job"])[0] == 7
        assert not conn.AssociatorNames(cs_path(DOM),
                                        AssocClass="CIM_SnapshotOfVirtualSystem")
    finally:
        sm.remove_server(sid)


def test_job_and_snapshot_indications(cimom, listener):
    """InstCreation / InstModification / InstDeletion of a job, and of the snapshot it
    made and destroyed."""
    conn = cimom.conn()
    sm, sid = manager(cimom, "jobind")
    try:
        subscribe(sm, sid, listener.url, "SELECT * FROM CIM_InstIndication",
                  source=(NS,), fid="all", did="jobind")
        rv, out = conn.InvokeMethod("CreateSnapshot", service(conn),
                                    AffectedSystem=cs_path(DOM), SnapshotType=Uint16(2),
                                    SnapshotSettings=CIMInstance("CIM_SettingData",
                                                                 {"ElementName": "ind"}))
        assert rv == 4096
        iid = out["Job"]["InstanceID"]
        snap_iid = out["ResultingSnapshot"]["InstanceID"]

        def seen(cls, key):
            return [i for _t, i in list(listener.received)
                    if i.classname == cls and i["SourceInstance"]["InstanceID"] == key]
        assert wait_for(lambda: seen("CIM_InstCreation", snap_iid), 60)
        created = seen("CIM_InstCreation", iid)
        assert created and created[0]["SourceInstance"]["JobState"] in (2, 4)
        mods = seen("CIM_InstModification", iid)
        assert mods[-1]["SourceInstance"]["JobState"] == 7
        assert mods[-1]["PreviousInstance"]["JobState"] == 4
        snap = seen("CIM_InstCreation", snap_iid)[0]["SourceInstance"]
        assert snap.classname == "KVM_VirtualSystemSnapshotSettingData"
        assert snap["ElementName"] == "ind"
        # the job goes when its TimeBeforeRemoval is shortened: InstDeletion
        job = conn.GetInstance(out["Job"])
        job["TimeBeforeRemoval"] = __import__("pywbem").CIMDateTime(
            "00000000000000.500000:000")
        conn.ModifyInstance(job, PropertyList=["TimeBeforeRemoval"])
        assert wait_for(lambda: seen("CIM_InstDeletion", iid), 30)
        rv, out = conn.InvokeMethod("DestroySnapshot", service(conn),
                                    AffectedSnapshot=out["ResultingSnapshot"])
        assert rv == 4096
        gone = wait_for(lambda: seen("CIM_InstDeletion", snap_iid), 60)
        assert gone and gone[0]["SourceInstance"]["ElementName"] == "ind"
    finally:
        sm.remove_server(sid)
