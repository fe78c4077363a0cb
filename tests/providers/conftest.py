"""Fixtures of the provider tests: the fixture node, libvirt's own view, servers."""

from __future__ import annotations

import os
import signal

import libvirt
import pytest

from tests.fixtures.generate import bench_domain_xml
from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available
from tests.support.server import start_server

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "fixtures")
NODE = os.path.join(FIXTURES, "node_devices.xml")
NODE_URI = "test://" + NODE


@pytest.fixture(scope="session")
def node_uri() -> str:
    """test:// URI of the fixture node with many and unusual devices."""
    return NODE_URI


@pytest.fixture(scope="module")
def lv():
    """libvirt's own view of the fixture node (a test driver instance of this process)."""
    conn = libvirt.open(NODE_URI)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def node_server():
    """kvm-cimom serving the fixture node."""
    server = start_server(hosts=[NODE_URI])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def conn(node_server):
    return node_server.conn("root/virt")


@pytest.fixture(scope="module")
def iconn(node_server):
    return node_server.conn("root/interop")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """A private libvirtd with two defined (shut off) guests of the benchmark shape
    (test_hops, test_small_requests: one guarded hop per request, a SIGSTOPped daemon).
    A module that needs another daemon defines its own ``daemon``."""
    if not libvirtd_available():
        pytest.skip("libvirtd not installed")
    d = PrivateLibvirtd().start()
    try:
        lv = libvirt.open(d.uri("qemu"))
        for i in range(2):
            lv.defineXML(bench_domain_xml(i, dtype="qemu",
                                          image_dir=str(tmp_path_factory.mktemp("img"))))
        lv.close()
        yield d
    finally:
        if d.pid is not None:
            try:
                os.kill(d.pid, signal.SIGCONT)   # never leave a stopped daemon behind
            except OSError:
                pass
        d.cleanup()
