"""The libvirt side goes away under a running server, and the server recovers by itself.

A private libvirtd (tests/fixtures/libvirtd.py) with a few defined QEMU guests
is stopped (and, the second time, killed) while kvm-cimom serves it: requests
fail fast with CIM_ERR_FAILED naming the host, and once the daemon is back the
same requests succeed again without anything done to the server.
"""

from __future__ import annotations

import time

import libvirt
import pytest
from pywbem import CIMError

from tests.fixtures.generate import bench_domain_xml
from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available
from tests.support.server import start_server

pytestmark = [pytest.mark.libvirtd,
              pytest.mark.skipif(not libvirtd_available(), reason="libvirtd not installed")]


@pytest.fixture
def daemon(tmp_path):
    d = PrivateLibvirtd().start()
    try:
        conn = libvirt.open(d.uri("qemu"))
        for i in range(3):
            conn.defineXML(bench_domain_xml(i, name=f"rec{i}", dtype="qemu",
                                            image_dir=str(tmp_path)))
        conn.close()
        yield d
    finally:
        d.cleanup()


def names(conn):
    return sorted(p["Name"] for p in conn.EnumerateInstanceNames("KVM_ComputerSystem"))


def wait_recovered(conn, want, timeout=30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            got = names(conn)
            if got == want:
                return time.monotonic()
        except CIMError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"server did not recover within {timeout} s: {last}")


def assert_fails_fast(conn, label):
    t0 = time.monotonic()
    with pytest.raises(CIMError) as err:
        names(conn)
    elapsed = time.monotonic() - t0
    assert elapsed < 3.0, f"took {elapsed:.1f} s"
    assert err.value.status_code == 1
    assert label in err.value.status_description


def test_libvirtd_restart_under_running_server(daemon):
    server = start_server(hosts=[daemon.uri("qemu")])
    try:
        conn = server.conn()
        want = ["rec0", "rec1", "rec2"]
        assert names(conn) == want
        vsms = conn.EnumerateInstances("KVM_VirtualSystemManagementService")
        assert vsms[0]["Caption"].startswith("QEMU ")
        label = "session"   # the label derived from the URI qemu:///session?...

        daemon.stop()
        time.sleep(0.3)
        for _ in range(3):
            assert_fails_fast(conn, label)
        daemon.start()
        t_back = time.monotonic()
        t_ok = wait_recovered(conn, want)
        print(f"recovered {t_ok - t_back:.2f} s after libvirtd was back (graceful stop)")

        daemon.kill()        # a crash this time
        assert_fails_fast(conn, label)
        daemon.start()
        t_back = time.monotonic()
        t_ok = wait_recovered(conn, want)
        print(f"recovered {t_ok - t_back:.2f} s after libvirtd was back (crash)")
        # everything works again, not just the names
        vssd = conn.EnumerateInstances("KVM_VirtualSystemSettingData")
        assert sorted(v["VirtualSystemIdentifier"] for v in vssd) == want
        assert "reconnected" in server.log()
    finally:
        server.stop()
