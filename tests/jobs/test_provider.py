"""{P}_ConcreteJob, AffectedJobElement and OwningJobElement in process (the provider
interface as every host calls it), on libvirt's test driver."""

from __future__ import annotations

import threading
import time

import pytest
from pywbem import CIMDateTime, CIMError, CIMInstanceName

from kvm_providers import virt
from kvm_providers.config import Config
from kvm_providers.providers.common.jobs import job_path, start_job
from kvm_providers.virt import jobs as vj
from tests.providers.harness import Harness

NS = "root/virt"
WAIT = 30.0
MODULES = frozenset(f"kvm_providers.providers.{m}" for m in (
    "concrete_job", "job_associations", "computer_system", "management_service"))


@pytest.fixture(scope="module")
def harness():
    return Harness(MODULES)


@pytest.fixture
def host():
    cfg = Config()
    cfg.add_host("test:///default", None, None)
    mgr = virt.configure(cfg.effective_hosts())
    assert mgr.wait_connected(10)
    vj.configure(None)
    yield mgr.hosts[0]
    vj.jobs().close()
    virt.shutdown()


def _proxy(harness):
    return harness.modules["kvm_providers.providers.concrete_job"]


def invoke(harness, path, method, **params):
    (_, rc), out = _proxy(harness).MI_invokeMethod(harness.env, path, method, params)
    return rc, {k: v[1] if isinstance(v, tuple) else v for k, v in out.items()}


def _wait_state(job_id, state):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        job = vj.jobs().get(job_id)
        if job is not None and job.state == state:
            return job
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} never reached {state}")


def test_method_answer_and_instance(harness, host):
    gate = threading.Event()
    rc, out = start_job("CreateSnapshot", host, lambda ctx: gate.wait(WAIT) and None,
                        description="snapshot of 'test'", domain="test",
                        owner="VirtualSystemManagementService")
    assert rc == 4096
    path = out["Job"]
    assert path.classname == "KVM_ConcreteJob" and path.namespace == NS
    assert path.keybindings["InstanceID"].startswith("Job:")
    job_id = path.keybindings["InstanceID"][4:]
    _wait_state(job_id, vj.RUNNING)
    inst = harness.GetInstance(path)
    assert inst["JobState"] == 4 and inst["PercentComplete"] is None
    assert inst["Name"] == "CreateSnapshot" and inst["JobType"] == "CreateSnapshot"
    assert "test" in inst["Description"]
    assert isinstance(inst["TimeSubmitted"], CIMDateTime)
    assert inst["TimeBeforeRemoval"].timedelta.total_seconds() == 300
    assert inst["DeleteOnCompletion"] is False and inst["Cancellable"] is False
    assert inst["Owner"] == "KVM_VirtualSystemManagementService"
    names = harness.EnumerateInstanceNames(NS, "KVM_ConcreteJob")
    assert [n.keybindings["InstanceID"] for n in names] == [path.keybindings["InstanceID"]]
    assert harness.EnumerateInstanceNames(NS, "LXC_ConcreteJob") == []
    # Associations: the system it works on, the service that started it.
    affected = harness.AssociatorNames(path, "KVM_AffectedJobElement")
    assert [a.keybindings["Name"] for a in affected] == ["test"]
    owner = harness.AssociatorNames(path, "KVM_OwningJobElement")
    assert [o.classname for o in owner] == ["KVM_VirtualSystemManagementService"]
    cs = CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                "Name": "test"}, namespace=NS)
    back = harness.AssociatorNames(cs, "KVM_AffectedJobElement")
    assert [b.keybindings["InstanceID"] for b in back] == [path.keybindings["InstanceID"]]
    # GetError of a running job: no error
    rc, out = invoke(harness, path, "GetError")
    assert rc == 0 and out.get("Error") is None
    gate.set()
    done = _wait_state(job_id, vj.COMPLETED)
    inst = harness.GetInstance(path)
    assert inst["JobState"] == 7 and inst["PercentComplete"] == 100
    assert list(inst["OperationalStatus"]) == [2, 17]
    assert inst["ElapsedTime"].timedelta.total_seconds() == pytest.approx(
        done.finished - done.started, abs=1e-3)


def test_failed_job_get_error(harness, host):
    def work(ctx):
        raise vj.JobFailed("internal snapshots need qcow2 disks: vda is raw",
                           vj.ERR_NOT_SUPPORTED)
    _, out = start_job("CreateSnapshot", host, work, description="d", domain="test")
    path = out["Job"]
    job_id = path.keybindings["InstanceID"][4:]
    _wait_state(job_id, vj.FAILED)
    inst = harness.GetInstance(path)
    assert inst["JobState"] == 10 and inst["ErrorCode"] is not None
    assert "raw" in inst["ErrorDescription"]
    rc, out = invoke(harness, path, "GetError")
    assert rc == 0
    err = out["Error"]
    assert err.classname == "CIM_Error"
    assert err["CIMStatusCode"] == 7 and "raw" in err["Message"]
    assert err["ErrorSourceFormat"] == 2 and "Job:" in err["ErrorSource"]
    rc, out = invoke(harness, path, "GetErrors")
    assert rc == 0 and [e["Message"] for e in out["Errors"]] == [err["Message"]]


def test_request_state_change(harness, host):
    gate = threading.Event()

    def cancellable(ctx):
        ctx.set_abort(gate.set)
        gate.wait(WAIT)
        raise RuntimeError("operation aborted")
    _, out = start_job("Op", host, cancellable, description="c", domain="test")
    path = out["Job"]
    job_id = path.keybindings["InstanceID"][4:]
    deadline = time.monotonic() + WAIT
    while not vj.jobs().get(job_id).cancellable and time.monotonic() < deadline:
        time.sleep(0.01)
    assert harness.GetInstance(path)["Cancellable"] is True
    assert invoke(harness, path, "RequestStateChange", RequestedState=3)[0] == 1   # Suspend
    assert invoke(harness, path, "RequestStateChange", RequestedState=99)[0] == 5
    assert invoke(harness, path, "RequestStateChange", RequestedState=4)[0] == 0   # Terminate
    _wait_state(job_id, vj.TERMINATED)
    assert harness.GetInstance(path)["JobState"] == 8
    assert invoke(harness, path, "RequestStateChange", RequestedState=4)[0] == 4097
    rc, out = invoke(harness, path, "GetError")
    assert rc == 0 and out["Error"]["CIMStatusCode"] == 1

    hold = threading.Event()
    _, out = start_job("Op", host, lambda ctx: hold.wait(WAIT) and None, description="n")
    try:
        assert invoke(harness, out["Job"], "RequestStateChange", RequestedState=5)[0] == 1
    finally:
        hold.set()


def test_modify_and_delete(harness, host):
    hold = threading.Event()
    _, out = start_job("Op", host, lambda ctx: hold.wait(WAIT) and None, description="m")
    path = out["Job"]
    proxy = _proxy(harness)
    with pytest.raises(CIMError) as err:
        proxy.MI_deleteInstance(harness.env, path)
    assert err.value.status_code == 1 and "running" in err.value.status_description
    inst = harness.GetInstance(path)
    inst["TimeBeforeRemoval"] = CIMDateTime("00000000000010.000000:000")
    proxy.MI_modifyInstance(harness.env, inst, None)
    assert harness.GetInstance(path)["TimeBeforeRemoval"].timedelta.total_seconds() == 10
    inst["TimeBeforeRemoval"] = CIMDateTime("20260101000000.000000+000")
    with pytest.raises(CIMError) as err:
        proxy.MI_modifyInstance(harness.env, inst, None)
    assert err.value.status_code == 4
    hold.set()
    _wait_state(path.keybindings["InstanceID"][4:], vj.COMPLETED)
    proxy.MI_deleteInstance(harness.env, path)
    with pytest.raises(CIMError) as err:
        harness.GetInstance(path)
    assert err.value.status_code == 6


def test_unknown_job_paths(harness, host):
    for iid in ("Job:nope", "nope", "KVM:test"):
        path = CIMInstanceName("KVM_ConcreteJob", {"InstanceID": iid}, namespace=NS)
        with pytest.raises(CIMError) as err:
            harness.GetInstance(path)
        assert err.value.status_code == 6
        with pytest.raises(CIMError) as err:
            invoke(harness, path, "GetError")
        assert err.value.status_code == 6
    job = vj.jobs().submit("Op", host=host, work=lambda ctx: None, description="x")
    assert job_path(host, job).keybindings["InstanceID"] == f"Job:{job.id}"
