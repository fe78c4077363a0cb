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
import shutil
import tempfile
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
    d: Any               # PrivateLibvirtd, or GivenLibvirt (--wbem-url)
    conn: Any            # QEMU driver
    test_conn: Any       # the daemon's test driver
    images: str          # target directory of pool "images"

    def uri(self, driver: str) -> str:
        return self.d.uri(driver)

    @property
    def workdir(self) -> str:
        return self.d.workdir


class GivenLibvirt:
    """The libvirt a --wbem-url server's providers serve (--wbem-libvirt-uri), in the
    place of the private daemon: the pool and the guest are made there, in a
    directory of their own, and removed afterwards."""

    def __init__(self, uri: str):
        self._uri = uri
        self.workdir = tempfile.mkdtemp(prefix="kvm-providers-uc-", dir="/var/tmp")
        # the libvirtd (perhaps unprivileged, as the tests' own) makes the pool's
        # directory in it
        os.chmod(self.workdir, 0o1777)

    def uri(self, driver: str) -> str:
        return self._uri if driver == "qemu" else f"{driver}:///default"

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def _populate(conn, images: str) -> None:
    pool = conn.storagePoolDefineXML(
        f"<pool type='dir'><name>{POOL_NAME}</name><target><path>{images}</path></target>"
        "</pool>", 0)
    pool.build(0)
    pool.create(0)
    for name, fmt, size in VOLUMES:
        pool.createXML(f"<volume><name>{name}</name><capacity unit='bytes'>{size}"
                       f"</capacity><target><format type='{fmt}'/></target></volume>", 0)
    conn.defineXML(GUEST_XML.format(disk=os.path.join(images, "root.qcow2")))


def _depopulate(conn) -> None:
    """Remove what _populate made (in a libvirt the tests do not own)."""
    for dom in conn.listAllDomains():
        if dom.name() == "pooluser":
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    try:
        pool = conn.storagePoolLookupByName(POOL_NAME)
    except libvirt.libvirtError:
        return
    for vol in pool.listAllVolumes():
        vol.delete(0)
    if pool.isActive():
        pool.destroy()
    pool.undefine()


@pytest.fixture(scope="session")
def daemon(wbem_target):
    if wbem_target is not None:
        # the pool use cases against a WBEM server given by URL: in its libvirt
        if not wbem_target.libvirt_uri:
            pytest.skip("the pool scenarios against --wbem-url need --wbem-libvirt-uri (the "
                        "libvirt the server serves, where they make their pool and guest)")
        given = GivenLibvirt(wbem_target.libvirt_uri)
        conn = libvirt.open(wbem_target.libvirt_uri)
        try:
            conn.storagePoolLookupByName(POOL_NAME)
            pytest.skip(f"{wbem_target.libvirt_uri} has a storage pool {POOL_NAME!r} already")
        except libvirt.libvirtError:
            pass
        images = os.path.join(given.workdir, "images")
        try:
            _populate(conn, images)
            test_conn = libvirt.open("test:///default")
            yield Daemon(given, conn, test_conn, images)
            test_conn.close()
        finally:
            _depopulate(conn)
            conn.close()
            given.cleanup()
        return
    if not libvirtd_available():
        pytest.skip("libvirtd is not installed")
    d = PrivateLibvirtd().start()
    try:
        conn = libvirt.open(d.uri("qemu"))
        images = os.path.join(d.workdir, "images")
        _populate(conn, images)
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
