"""The snapshot model on libvirt's test driver, through kvm-cimom and pywbem: a tree with a
branch, apply, destroy one node and a subtree, snapshot RASDs, capabilities, errors."""

from __future__ import annotations

import pytest
from pywbem import CIM_ERR_INVALID_PARAMETER, CIM_ERR_NOT_FOUND, CIM_ERR_NOT_SUPPORTED, \
    CIMInstanceName, Uint16, Uint64

from .support import (NS, cs_path, current, refused, run, service, snap_path, snapshot, tree,
                      wait_job)

DOM = "test"


@pytest.fixture(scope="module")
def conn(cimom):
    return cimom.conn()


def _memory(conn, path) -> int:
    """VirtualQuantity of the memory RASD among a VSSD's components (MiB)."""
    for r in conn.Associators(path, AssocClass="KVM_VirtualSystemSettingDataComponent"):
        if r.classname == "KVM_MemResourceAllocationSettingData":
            return int(r["VirtualQuantity"])
    raise AssertionError("no memory RASD")


def _set_memory(conn, kib: int) -> None:
    mem = conn.GetInstance(CIMInstanceName("KVM_MemResourceAllocationSettingData",
                                           {"InstanceID": f"{DOM}/mem"}, namespace=NS))
    mem["VirtualQuantity"] = Uint64(kib)
    mem["AllocationUnits"] = "KiloBytes"
    svc = conn.EnumerateInstanceNames("KVM_VirtualSystemManagementService")[0]
    rv, _ = conn.InvokeMethod("ModifyResourceSettings", svc, ResourceSettings=[mem.tomof()])
    assert rv == 0


def test_capabilities(conn):
    svc = service(conn)
    assert svc["Name"] == "SnapshotService"
    caps = conn.Associators(svc, AssocClass="KVM_ElementCapabilities")
    assert [(c.classname, c["InstanceID"]) for c in caps] == \
        [("KVM_VirtualSystemSnapshotServiceCapabilities", "SnapshotCapabilities")]
    assert list(caps[0]["SnapshotTypesSupported"]) == [2, 3, 32768, 32769]
    assert list(caps[0]["AynchronousMethodsSupported"]) == [2, 3, 4]
    sys_caps = conn.Associators(cs_path(DOM), AssocClass="KVM_ElementCapabilities",
                                ResultClass="KVM_VirtualSystemSnapshotCapabilities")
    assert len(sys_caps) == 1 and sys_caps[0]["InstanceID"] == DOM
    assert 2 in sys_caps[0]["SnapshotTypesEnabled"]
    hosts = conn.AssociatorNames(svc, AssocClass="KVM_HostedService")
    assert [h.classname for h in hosts] == ["KVM_HostSystem"]


def test_tree_with_branch_apply_and_destroy(conn):
    mib = 1024
    _set_memory(conn, 1024 * mib)
    snapshot(conn, DOM, "s1", Description="first")
    _set_memory(conn, 1536 * mib)
    snapshot(conn, DOM, "s2")
    snapshot(conn, DOM, "s3")
    assert tree(conn, DOM) == {"s1": {"s2"}, "s2": {"s3"}, "s3": set()}
    assert current(conn, DOM) == {"s3"}
    s1 = conn.GetInstance(snap_path(DOM, "s1"))
    assert s1["ElementName"] == "s1" and s1["Description"] == "first"
    assert s1["VirtualSystemIdentifier"] == DOM and s1["SnapshotState"] == "running"
    assert s1["IsCurrent"] is False and s1["CreationTime"] is not None
    # the configuration at snapshot time, through the snapshot's RASDs
    assert _memory(conn, snap_path(DOM, "s1")) == 1024 * mib
    assert _memory(conn, snap_path(DOM, "s2")) == 1536 * mib
    rasds = conn.AssociatorNames(snap_path(DOM, "s1"),
                                 AssocClass="KVM_VirtualSystemSettingDataComponent")
    assert all(r["InstanceID"].startswith(f"{DOM}/Snapshot/s1/") for r in rasds)
    back = conn.AssociatorNames(rasds[0], AssocClass="KVM_VirtualSystemSettingDataComponent")
    assert [b["InstanceID"] for b in back] == [f"KVM:{DOM}/Snapshot/s1"]
    # the system's own settings are not the snapshots'
    sys_rasds = conn.AssociatorNames(CIMInstanceName(
        "KVM_VirtualSystemSettingData", {"InstanceID": f"KVM:{DOM}"}, namespace=NS),
        AssocClass="KVM_VirtualSystemSettingDataComponent")
    assert not any("/Snapshot/" in r["InstanceID"] for r in sys_rasds)
    # apply the middle node: its configuration comes back, and it becomes current
    _set_memory(conn, 512 * mib)
    job = run(conn, "ApplySnapshot", Snapshot=snap_path(DOM, "s2"))
    assert job["JobState"] == 7 and job["Name"] == "ApplySnapshot"
    assert current(conn, DOM) == {"s2"}
    mem = conn.GetInstance(CIMInstanceName("KVM_MemResourceAllocationSettingData",
                                           {"InstanceID": f"{DOM}/mem"}, namespace=NS))
    assert int(mem["VirtualQuantity"]) == 1536 * mib
    # a branch: a new snapshot after applying s1 is s1's second child
    run(conn, "ApplySnapshot", Snapshot=snap_path(DOM, "s1"))
    snapshot(conn, DOM, "s4")
    assert tree(conn, DOM) == {"s1": {"s2", "s4"}, "s2": {"s3"}, "s3": set(), "s4": set()}
    parents = conn.AssociatorNames(snap_path(DOM, "s4"), AssocClass="KVM_SnapshotDependency",
                                   Role="Dependent")
    assert [p["InstanceID"] for p in parents] == [f"KVM:{DOM}/Snapshot/s1"]
    # destroy one node: its child moves up to its parent
    job = run(conn, "DestroySnapshot", AffectedSnapshot=snap_path(DOM, "s2"))
    assert job["JobState"] == 7
    assert tree(conn, DOM) == {"s1": {"s3", "s4"}, "s3": set(), "s4": set()}
    # destroy a subtree: everything below s1 with it
    job = run(conn, "DestroySnapshotTree", AffectedSnapshot=snap_path(DOM, "s1"))
    assert job["JobState"] == 7
    assert tree(conn, DOM) == {}
    assert conn.EnumerateInstanceNames("KVM_VirtualSystemSnapshotSettingData") == []


def test_vendor_types_answer_synchronously(conn):
    """libvirt-cim's types 32768 / 32769 answer 0 with the finished job (its clients)."""
    from pywbem import CIMInstance
    svc = service(conn)
    rv, out = conn.InvokeMethod("CreateSnapshot", svc, AffectedSystem=cs_path(DOM),
                                SnapshotType=Uint16(32768),
                                SnapshotSettings=CIMInstance("CIM_SettingData",
                                                             {"ElementName": "vendor"}))
    assert rv == 0 and conn.GetInstance(out["Job"])["JobState"] == 7
    assert conn.GetInstance(out["ResultingSnapshot"])["ElementName"] == "vendor"
    run(conn, "DestroySnapshot", AffectedSnapshot=out["ResultingSnapshot"])
    # as libvirt-cim's suite calls it: the service's capabilities as SnapshotSettings (they
    # do not name the snapshot: its name is its creation time), 32769 stops the system
    caps = conn.EnumerateInstances("KVM_VirtualSystemSnapshotServiceCapabilities")[0]
    rv, out = conn.InvokeMethod("CreateSnapshot", svc, AffectedSystem=cs_path(DOM),
                                SnapshotType=Uint16(32769), SnapshotSettings=caps.tomof())
    assert rv == 0 and out["ResultingSnapshot"] is not None
    snap = conn.GetInstance(out["ResultingSnapshot"])
    assert snap["ElementName"].split("-")[0].isdigit() and snap["SnapshotState"] == "running"
    assert conn.GetInstance(cs_path(DOM))["EnabledState"] == 3        # stopped
    run(conn, "ApplySnapshot", Snapshot=out["ResultingSnapshot"])
    assert conn.GetInstance(cs_path(DOM))["EnabledState"] == 2        # running again
    run(conn, "DestroySnapshot", AffectedSnapshot=out["ResultingSnapshot"])


def test_errors(conn):
    from pywbem import CIMInstance
    refused(conn, "CreateSnapshot", CIM_ERR_NOT_FOUND, "nosuch",
            AffectedSystem=cs_path("nosuch"), SnapshotType=Uint16(2))
    refused(conn, "CreateSnapshot", CIM_ERR_INVALID_PARAMETER, "AffectedSystem",
            SnapshotType=Uint16(2))
    refused(conn, "CreateSnapshot", CIM_ERR_NOT_SUPPORTED, "SnapshotType 5",
            AffectedSystem=cs_path(DOM), SnapshotType=Uint16(5))
    refused(conn, "CreateSnapshot", CIM_ERR_INVALID_PARAMETER, "snapshot name",
            AffectedSystem=cs_path(DOM), SnapshotType=Uint16(2),
            SnapshotSettings=CIMInstance("CIM_SettingData", {"ElementName": "a/b"}))
    snapshot(conn, DOM, "dup")
    refused(conn, "CreateSnapshot", CIM_ERR_INVALID_PARAMETER, "dup",
            AffectedSystem=cs_path(DOM), SnapshotType=Uint16(2),
            SnapshotSettings=CIMInstance("CIM_SettingData", {"ElementName": "dup"}))
    refused(conn, "ApplySnapshot", CIM_ERR_NOT_FOUND, "nosnap",
            Snapshot=snap_path(DOM, "nosnap"))
    refused(conn, "DestroySnapshot", CIM_ERR_NOT_FOUND, "AffectedSnapshot",
            AffectedSnapshot=snap_path("nosuch", "dup"))
    refused(conn, "DestroySnapshot", CIM_ERR_INVALID_PARAMETER, "AffectedSnapshot")
    with pytest.raises(Exception) as err:
        conn.GetInstance(snap_path(DOM, "nosnap"))
    assert getattr(err.value, "status_code", None) == CIM_ERR_NOT_FOUND
    run(conn, "DestroySnapshot", AffectedSnapshot=snap_path(DOM, "dup"))


def test_jobs_of_the_test_driver_cannot_be_cancelled_or_measured(conn):
    """The test driver has no job statistics and no abort: PercentComplete NULL until
    done, Terminate answers Not Supported (or Invalid State Transition once done)."""
    from .support import create
    rv, out = create(conn, DOM, "m")
    assert rv == 4096
    job = conn.GetInstance(out["Job"])
    assert job["Cancellable"] is False
    assert job["PercentComplete"] in (None, 100)
    rv, _ = conn.InvokeMethod("RequestStateChange", out["Job"], RequestedState=Uint16(4))
    assert rv in (1, 4097)
    wait_job(conn, out["Job"])
    run(conn, "DestroySnapshot", AffectedSnapshot=snap_path(DOM, "m"))


def test_snapshot_profile_registration(cimom):
    """DSP1033: the snapshot service's profile is registered in root/interop - DMTF has
    published no snapshot profile, so it is the project's own (RegisteredOrganization 1
    Other, OtherRegisteredOrganization) - scoped by System Virtualization, and the service
    conforms to it, both ways of ElementConformsToProfile and through pywbem's
    WBEMServer."""
    from pywbem import WBEMServer
    iconn = cimom.conn("root/interop")
    profs = {p["RegisteredName"]: p for p in iconn.EnumerateInstances("KVM_RegisteredProfile")}
    snap = profs["Virtual System Snapshot"]
    assert snap["InstanceID"] == "kvm_providers:VirtualSystemSnapshot-1.0.0"
    assert (snap["RegisteredOrganization"], snap["OtherRegisteredOrganization"],
            snap["RegisteredVersion"]) == (1, "kvm_providers", "1.0.0")
    # DMTF's profiles name no other organization
    assert profs["System Virtualization"]["OtherRegisteredOrganization"] is None
    # scoped by System Virtualization (DSP1033: the referencing profile is the Dependent)
    up = iconn.AssociatorNames(snap.path, AssocClass="KVM_ReferencedProfile",
                               ResultRole="Dependent")
    assert [p["InstanceID"] for p in up] == ["CIM:DSP1042-SystemVirtualization-1.0.0"]
    down = iconn.AssociatorNames(up[0], AssocClass="KVM_ReferencedProfile",
                                 ResultRole="Antecedent")
    assert snap["InstanceID"] in [p["InstanceID"] for p in down]
    # the service conforms to it, seen from either end
    svc = service(cimom.conn())
    central = iconn.AssociatorNames(snap.path, AssocClass="KVM_ElementConformsToProfile")
    assert [(p.classname, p.namespace, p["Name"]) for p in central] == \
        [("KVM_VirtualSystemSnapshotService", NS, svc["Name"])]
    back = cimom.conn().AssociatorNames(svc, AssocClass="KVM_ElementConformsToProfile")
    assert [p["InstanceID"] for p in back] == [snap["InstanceID"]]
    # a client's profile discovery (pywbem) finds it by organization and name
    server = WBEMServer(iconn)
    found = server.get_selected_profiles(registered_org="Other",
                                         registered_name="Virtual System Snapshot")
    assert [p["InstanceID"] for p in found] == [snap["InstanceID"]]
    insts = server.get_central_instances(found[0].path,
                                         central_class="KVM_VirtualSystemSnapshotService")
    assert [p["Name"] for p in insts] == [svc["Name"]]
