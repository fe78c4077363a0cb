"""Jobs across a restart of kvm-cimom with a state directory: a finished job is still
there (for its TimeBeforeRemoval), with its outcome; the file is the server's."""

from __future__ import annotations

import os

import pytest

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


# -- a job still running in libvirtd across the restart (QEMU/TCG) ----------------------------

def _slow_save_daemon():
    """A private libvirtd whose save images go through xz: a managed save of a small
    guest then takes a minute under TCG on this kind of machine, long enough for the
    server to restart while libvirtd still saves (libvirtd finishes the call without
    its client)."""
    from tests.fixtures.libvirtd import PrivateLibvirtd
    d = PrivateLibvirtd()
    cfg = os.path.join(d.workdir, "config", "libvirt")
    os.makedirs(cfg)
    with open(os.path.join(cfg, "qemu.conf"), "w", encoding="utf-8") as f:
        f.write('save_image_format = "xz"\n')
    for p in (os.path.dirname(cfg), cfg, os.path.join(cfg, "qemu.conf")):
        os.chown(p, d.uid, d.gid)
    return d.start()


def _libvirt_job_runs(dom) -> bool:
    import libvirt
    try:
        return dom.jobStats(0).get("type", 0) != libvirt.VIR_DOMAIN_JOB_NONE
    except libvirt.libvirtError:
        return False          # the domain stopped: its save ended


@pytest.mark.qemu
@pytest.mark.slow
def test_a_save_running_in_libvirtd_is_followed_across_a_restart(tmp_path):
    """RequestStateChange(6), a managed save, is running in libvirtd when kvm-cimom
    restarts (SIGTERM, a new process, the same state directory): the new server finds the
    job again, shows it running while libvirtd saves, follows it to libvirt's end (its
    job-completed event) and judges it from what libvirt has - Completed, the system off
    with its saved image; the final figures are libvirt's."""
    import time

    import libvirt
    from pywbem import Uint16

    from tests.fixtures import tinyos
    from tests.fixtures.libvirtd import libvirtd_available, qemu_available
    if not (libvirtd_available() and qemu_available() and tinyos.available()):
        pytest.skip("needs libvirtd, qemu-system-x86_64 and the tiny guest OS")
    if not os.path.exists("/usr/bin/xz"):
        pytest.skip("needs xz (libvirt's compressed save images)")
    from .support import cs_path

    d = _slow_save_daemon()
    lv = libvirt.open(d.uri("qemu"))
    servers = []
    try:
        work = os.path.join(d.workdir, "guests")
        kernel, initrd = tinyos.build(work)
        os.chmod(work, 0o777)
        dom = lv.defineXML(f"""<domain type='qemu'><name>saved</name>
<memory unit='MiB'>128</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type><kernel>{kernel}</kernel>
<initrd>{initrd}</initrd><cmdline>{tinyos.CMDLINE}</cmdline></os>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
<serial type='file'><source path='{work}/saved.log'/></serial>
<memballoon model='none'/></devices></domain>""")
        dom.create()
        log = os.path.join(work, "saved.log")
        deadline = time.monotonic() + 180
        while not (os.path.exists(log) and "tinyos up" in open(log, errors="replace").read()):
            assert time.monotonic() < deadline, "the guest did not boot"
            time.sleep(0.2)
        state = str(tmp_path / "state")
        server = start_server(hosts=[d.uri("qemu")], extra_args=["--state-dir", state])
        servers.append(server)
        conn = server.conn()
        rv, out = conn.InvokeMethod("RequestStateChange", cs_path("saved"),
                                    RequestedState=Uint16(6))
        assert rv == 4096
        path = out["Job"].copy()
        path.host = None
        deadline = time.monotonic() + 60
        while not _libvirt_job_runs(dom):
            assert time.monotonic() < deadline, "libvirt's save did not start"
            time.sleep(0.1)
        assert conn.GetInstance(path)["JobState"] == 4
        server.stop()
        assert server.proc.poll() is not None
        # libvirtd saves on without its client: the job the new server must find
        assert _libvirt_job_runs(dom), "the save ended with the server: nothing to follow"
        again = start_server(hosts=[d.uri("qemu")], extra_args=["--state-dir", state])
        servers.append(again)
        conn = again.conn()
        back = conn.GetInstance(path)
        if _libvirt_job_runs(dom):     # (on a fast machine the save may be over by now)
            assert back["JobState"] == 4, dict(back)
            assert back["JobStatus"] == "Server restarted; finding the outcome"
        seen: list = []
        final = wait_job(conn, path, timeout=600, seen=seen)
        assert not _libvirt_job_runs(dom)
        assert (final["JobState"], final["PercentComplete"]) == (7, 100), \
            (final["ErrorDescription"], final["StatusDescriptions"])
        assert final["ErrorDescription"] is None
        assert not dom.isActive() and dom.hasManagedSaveImage(0)
        numbers = [p for p in seen if p is not None]
        assert numbers == sorted(numbers)
        descs = list(final["StatusDescriptions"] or [])
        assert descs[:1] == ["libvirt job statistics: job-completed event"], descs
        figures = dict(x.split("=", 1) for x in descs[1:])
        assert int(figures["operation"]) == libvirt.VIR_DOMAIN_JOB_OPERATION_SAVE
        assert figures["data_remaining"] == "0"
        assert back["TimeSubmitted"] == final["TimeSubmitted"]
    finally:
        for s in servers:
            s.stop()
        d.teardown_guests(lv, libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
