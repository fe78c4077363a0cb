"""The job core (kvm_providers.virt.jobs): states, progress, listeners, stopping,
removal, persistence and the restart rules - no CIM, no libvirt needed."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from kvm_providers.virt import jobs as vj

WAIT = 30.0


@pytest.fixture
def mgr():
    m = vj.JobManager(progress_interval=0.2)
    yield m
    m.close()


def _blocked(gate: threading.Event, result=None):
    def work(ctx):
        assert gate.wait(WAIT)
        return result
    return work


def test_states_and_result(mgr):
    gate = threading.Event()
    job = mgr.submit("Op", host="h", domain="vm", work=_blocked(gate, {"snapshot": "s1"}),
                     description="op of vm")
    assert job.state in (vj.NEW, vj.RUNNING)
    assert job.percent is None
    deadline = time.monotonic() + WAIT
    while mgr.get(job.id).state != vj.RUNNING and time.monotonic() < deadline:
        time.sleep(0.01)
    running = mgr.get(job.id)
    assert running.state == vj.RUNNING and running.started is not None
    assert not running.done
    gate.set()
    done = mgr.wait(job.id, WAIT)
    assert done.state == vj.COMPLETED and done.percent == 100
    assert done.result == {"snapshot": "s1"} and done.error_kind is None
    assert done.finished >= done.started >= done.submitted
    assert [j.id for j in mgr.list_jobs(domain="vm")] == [job.id]
    assert mgr.list_jobs(domain="other") == []


def test_failure_kinds(mgr):
    def not_supported(ctx):
        raise vj.JobFailed("libvirt 9.0 cannot revert external snapshots",
                           vj.ERR_NOT_SUPPORTED)

    def crash(ctx):
        raise RuntimeError("boom")
    a = mgr.wait(mgr.submit("A", host="h", work=not_supported, description="a").id, WAIT)
    b = mgr.wait(mgr.submit("B", host="h", work=crash, description="b").id, WAIT)
    assert a.state == vj.FAILED and a.error_kind == vj.ERR_NOT_SUPPORTED
    assert "external" in a.error_message and a.error_code is not None
    assert b.state == vj.FAILED and b.error_kind == vj.ERR_FAILED
    assert b.error_message == "boom"
    assert a.percent is None          # never invented


def test_progress_never_goes_down_and_is_rate_limited(mgr):
    seen = []
    mgr.add_listener(lambda ev, job, prev: seen.append((ev, job.state, job.percent,
                                                        prev.percent if prev else None)))
    steps = threading.Event()

    def work(ctx):
        for pct in (10, 30, 20, 50):        # 20 after 30: libvirt's total grew
            ctx.progress(pct)
            time.sleep(0.3)                 # longer than the rate limit
        steps.set()
        for pct in range(51, 99):           # a burst: rate-limited
            ctx.progress(pct)
    job = mgr.submit("P", host="h", work=work, description="p")
    mgr.wait(job.id, WAIT)
    time.sleep(0.1)
    progress = [pct for ev, st, pct, _ in seen if ev == "modified" and st == vj.RUNNING
                and pct is not None]
    assert progress == sorted(progress), progress            # going up only
    assert progress[:3] == [10, 30, 50], progress
    assert len(progress) < 10, "a burst of progress is not sent change by change"
    assert seen[0][0] == "created" and seen[-1][1] == vj.COMPLETED and seen[-1][2] == 100
    # each modification names the previous state heard
    for (_, _, pct, _), (ev, _, _, prev) in zip(seen[1:], seen[2:], strict=False):
        if ev == "modified":
            assert prev == pct


def test_stop_cancellable_and_not(mgr):
    gate = threading.Event()
    aborted = []

    def work(ctx):
        ctx.set_abort(lambda: (aborted.append(True), gate.set()))
        assert gate.wait(WAIT)
        raise RuntimeError("operation aborted by client")   # what libvirt raises
    job = mgr.submit("C", host="h", work=work, description="c")
    deadline = time.monotonic() + WAIT
    while not mgr.get(job.id).cancellable and time.monotonic() < deadline:
        time.sleep(0.01)
    assert mgr.stop(job.id) == vj.STOP_REQUESTED
    done = mgr.wait(job.id, WAIT)
    assert aborted == [True]
    assert done.state == vj.TERMINATED and done.error_kind == vj.ERR_CANCELLED
    assert mgr.stop(job.id) == vj.STOP_FINISHED

    gate2 = threading.Event()
    other = mgr.submit("N", host="h", work=_blocked(gate2), description="n")
    assert mgr.stop(other.id, kill=True) == vj.STOP_NOT_CANCELLABLE
    gate2.set()
    assert mgr.wait(other.id, WAIT).state == vj.COMPLETED
    assert mgr.stop("no-such-job") == vj.STOP_NO_JOB


def test_kill_ends_killed(mgr):
    gate = threading.Event()

    def work(ctx):
        ctx.set_abort(gate.set)
        gate.wait(WAIT)
        raise vj.JobFailed("aborted", vj.ERR_CANCELLED)
    job = mgr.submit("K", host="h", work=work, description="k")
    deadline = time.monotonic() + WAIT
    while not mgr.get(job.id).cancellable and time.monotonic() < deadline:
        time.sleep(0.01)
    assert mgr.stop(job.id, kill=True) == vj.STOP_REQUESTED
    assert mgr.wait(job.id, WAIT).state == vj.KILLED


def test_removal_after_time_before_removal(mgr):
    events = []
    mgr.add_listener(lambda ev, job, prev: events.append((ev, job.id)))
    job = mgr.submit("R", host="h", work=lambda ctx: None, description="r",
                     time_before_removal=0.3)
    keep = mgr.submit("K", host="h", work=lambda ctx: None, description="k")
    mgr.wait(job.id, WAIT)
    mgr.wait(keep.id, WAIT)
    deadline = time.monotonic() + WAIT
    while mgr.get(job.id) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mgr.get(job.id) is None
    assert ("deleted", job.id) in events
    assert mgr.get(keep.id) is not None          # 300 s by default
    # DeleteOnCompletion set afterwards removes it at once; delete() likewise
    mgr.modify(keep.id, delete_on_completion=True)
    deadline = time.monotonic() + WAIT
    while mgr.get(keep.id) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mgr.get(keep.id) is None


def test_delete_refuses_running(mgr):
    gate = threading.Event()
    job = mgr.submit("D", host="h", work=_blocked(gate), description="d")
    assert mgr.delete(job.id) is False
    gate.set()
    mgr.wait(job.id, WAIT)
    assert mgr.delete(job.id) is True and mgr.get(job.id) is None


def test_limit_of_running_jobs():
    m = vj.JobManager(max_running=2)
    gate = threading.Event()
    try:
        a = m.submit("A", host="h", work=_blocked(gate), description="a")
        m.submit("B", host="h", work=_blocked(gate), description="b")
        with pytest.raises(vj.JobLimit):
            m.submit("C", host="h", work=_blocked(gate), description="c")
        gate.set()
        m.wait(a.id, WAIT)
    finally:
        gate.set()
        m.close()


def test_percent_from_stats():
    bounded = 1
    assert vj.percent_from_stats({"type": 0}) == (None, None)
    assert vj.percent_from_stats({"type": bounded}) == (None, None)
    assert vj.percent_from_stats({"type": bounded, "data_total": 200, "data_processed": 50,
                                  "memory_total": 200, "memory_processed": 50}) \
        == (25, "memory")
    assert vj.percent_from_stats({"type": 2, "disk_total": 10, "disk_processed": 10,
                                  "memory_total": 30, "memory_processed": 20}) \
        == (75, "memory")
    # QEMU sends no page that is all zero: its processed bytes end below the total, and
    # what remains says how far it is (a managed save of 256 MiB: 80 MiB processed)
    save = {"type": 3, "data_total": 268828672, "data_processed": 83580052,
            "data_remaining": 0, "memory_total": 268828672, "memory_processed": 83580052,
            "memory_remaining": 0}
    assert vj.percent_from_stats(dict(save, type=bounded)) == (100, None)
    assert vj.percent_from_stats(dict(save, type=bounded, data_remaining=268828672 // 4,
                                      memory_remaining=268828672 // 4)) == (75, "memory")
    # the job-completed event's statistics carry no type
    del save["type"]
    assert vj.percent_from_stats(save) == (None, None)
    assert vj.percent_from_stats(save, completed=True) == (100, None)


# -- persistence and restart ----------------------------------------------------------------

def test_finished_jobs_survive_a_restart(tmp_path):
    m = vj.JobManager(str(tmp_path))
    job = m.submit("Done", host="h", domain="vm", work=lambda ctx: {"snapshot": "s"},
                   description="done")
    m.wait(job.id, WAIT)
    m.close()
    assert oct(os.stat(tmp_path / vj.STATE_FILE).st_mode & 0o777) == "0o600"
    again = vj.JobManager(str(tmp_path))
    try:
        back = again.get(job.id)
        assert back is not None and back.state == vj.COMPLETED
        assert back.result == {"snapshot": "s"} and back.percent == 100
    finally:
        again.close()


def _saved_running(tmp_path, resolver=None, params=None):
    """A state file as a server leaves it when it stops while a job runs."""
    job = vj.Job(id="11111111-2222-3333-4444-555555555555", operation="Op",
                 description="op", host="nohost", domain="vm", state=vj.RUNNING,
                 status="Running", submitted=time.time() - 5, started=time.time() - 5,
                 last_change=time.time() - 5, resolver=resolver, params=params or {})
    (tmp_path / vj.STATE_FILE).write_text(json.dumps(
        {"format": "kvm_providers-jobs", "version": 1, "jobs": [job.to_dict()]}))
    return job.id


def test_running_job_without_resolver_is_unknown_after_restart(tmp_path):
    job_id = _saved_running(tmp_path)
    m = vj.JobManager(str(tmp_path))
    try:
        back = m.wait(job_id, WAIT)
        assert back.state == vj.UNKNOWN, "never reported as success"
        assert back.error_kind == vj.ERR_UNKNOWN and back.restarted
        assert "outcome" in back.error_message
    finally:
        m.close()


def test_resolver_decides_after_restart(tmp_path):
    seen = []

    def resolve(ctx):
        seen.append(ctx.job.params)
        return {"snapshot": ctx.job.params["name"]}
    vj.register_resolver("test-resolver", resolve)
    job_id = _saved_running(tmp_path, "test-resolver", {"name": "s9"})
    m = vj.JobManager(str(tmp_path))
    try:
        back = m.wait(job_id, WAIT)
        assert back.state == vj.COMPLETED and back.result == {"snapshot": "s9"}
        assert seen == [{"name": "s9"}]
    finally:
        m.close()


def test_unreadable_state_file_is_moved_aside(tmp_path):
    (tmp_path / vj.STATE_FILE).write_text("{not json")
    m = vj.JobManager(str(tmp_path))
    try:
        assert m.list_jobs() == []
        assert any(p.name.startswith(vj.STATE_FILE + ".bad-") for p in tmp_path.iterdir())
    finally:
        m.close()
