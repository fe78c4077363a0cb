"""Jobs across a restart of kvm-cimom with a state directory: a finished job is still
there (for its TimeBeforeRemoval), with its outcome; the file is the server's."""

from __future__ import annotations

import os

from tests.support.server import start_server

from .support import snapshot, wait_job


def test_finished_jobs_survive_a_restart(tmp_path):
    state = str(tmp_path / "state")
    server = start_server(extra_args=["--state-dir", state])
    try:
        conn = server.conn()
        job = snapshot(conn, "test", "before-restart")
        path = job.path.copy()
        path.host = None
    finally:
        server.stop()
    assert os.path.exists(os.path.join(state, "jobs.json"))
    again = start_server(extra_args=["--state-dir", state])
    try:
        conn = again.conn()
        back = wait_job(conn, path)
        assert back["JobState"] == 7 and back["PercentComplete"] == 100
        assert back["Name"] == "CreateSnapshot" and back["InstanceID"] == path["InstanceID"]
        assert back["TimeSubmitted"] == job["TimeSubmitted"]
        names = [p["InstanceID"] for p in conn.EnumerateInstanceNames("KVM_ConcreteJob")]
        assert path["InstanceID"] in names
    finally:
        again.stop()
