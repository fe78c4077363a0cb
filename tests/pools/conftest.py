"""Fixtures of the pool tests (issue 5): a private libvirtd with a directory pool of real
volumes and a defined guest that uses one of them, and kvm-cimom servers on it.

* ``daemon``: the PrivateLibvirtd (tests/fixtures/libvirtd.py), its QEMU driver
  holding storage pool ``images`` (a directory under the daemon's workdir)
  with volumes ``data.raw`` (raw, 8 MiB), ``root.qcow2`` (qcow2, 64 MiB) and
  ``spare.raw``, and the guest ``pooluser`` (defined, never started) whose
  disk is ``root.qcow2`` and whose NIC is on no network.  The daemon runs
  unprivileged, so its network driver can define networks but cannot start
  them: the rollback case.  Its test driver (``daemon.test_conn``) is the
  daemon-wide ``test:///default``, shared by every connection, where networks
  start (simulated): the success cases.
* ``qserver`` / ``tserver``: kvm-cimom serving the daemon's QEMU driver / its
  test driver, one per test session.

Everything lives in the daemon's working directory, removed at the end; no
network is created outside the daemon.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import libvirt
import pytest

from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available
from tests.lifecycle.conftest import storage_config_file
from tests.support.server import start_server

from .support import GUEST_XML, POOL_NAME

VOLUMES = (("data.raw", "raw", 8 << 20), ("root.qcow2", "qcow2", 64 << 20),
           ("spare.raw", "raw", 1 << 20))


@dataclass
class Daemon:
    d: PrivateLibvirtd
    conn: Any            # QEMU driver
    test_conn: Any       # the daemon's test driver
    images: str          # target directory of pool "images"

    def uri(self, driver: str) -> str:
        return self.d.uri(driver)

    @property
    def workdir(self) -> str:
        return self.d.workdir


@pytest.fixture(scope="session")
def daemon():
    if not libvirtd_available():
        pytest.skip("libvirtd is not installed")
    d = PrivateLibvirtd().start()
    try:
        conn = libvirt.open(d.uri("qemu"))
        images = os.path.join(d.workdir, "images")
        pool = conn.storagePoolDefineXML(
            f"<pool type='dir'><name>{POOL_NAME}</name><target><path>{images}</path></target>"
            "</pool>", 0)
        pool.build(0)
        pool.create(0)
        for name, fmt, size in VOLUMES:
            pool.createXML(f"<volume><name>{name}</name><capacity unit='bytes'>{size}"
                           f"</capacity><target><format type='{fmt}'/></target></volume>", 0)
        conn.defineXML(GUEST_XML.format(disk=os.path.join(images, "root.qcow2")))
        test_conn = libvirt.open(d.uri("test"))
        yield Daemon(d, conn, test_conn, images)
        test_conn.close()
        conn.close()
    finally:
        d.cleanup()


#: [storage] allowed_paths of the servers: the daemon's directories (under /tmp) for its
#: QEMU driver; for its test driver, whose paths are no files, where the tests put pools.
QEMU_STORAGE = ["/tmp", "/dev/kvmp-no-such-device"]
TEST_STORAGE = ["/srv/cimtest", "/dev"]


@pytest.fixture(scope="session")
def qserver(daemon):
    config = storage_config_file(daemon.workdir, QEMU_STORAGE)
    server = start_server(hosts=[daemon.uri("qemu")], config=config)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tserver(daemon):
    config = storage_config_file(os.path.join(daemon.workdir, "home"), TEST_STORAGE)
    server = start_server(hosts=[daemon.uri("test")], config=config)
    yield server
    server.stop()
