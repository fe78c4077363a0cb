"""What libvirt 9.0 needs for a peer-to-peer live migration between the two test
hosts, shown with libvirt-python alone before any CIM is built on it (issue 14).

``migrateToURI3(<B's URI>, params, PEER2PEER | LIVE | PERSIST_DEST | UNDEFINE_SOURCE)``
on A: A's libvirtd opens B's URI itself (its UNIX socket: no TLS, no SSH), B's QEMU
listens on B's veth address (qemu.conf migration_address) and tells A's QEMU
to send there (migration_host).  Storage in a directory both hosts see is not on
a shared file system as libvirt knows them, so that migration needs
VIR_MIGRATE_UNSAFE; a storage copy (NON_SHARED_DISK) needs a pool on B whose
directory will hold the copied disk (libvirt creates the file).
"""

from __future__ import annotations

import os
import time

import pytest
from lxml import etree

from .conftest import IMAGES, boot, console, domain_on, make_disk, remove_guest

pytestmark = [pytest.mark.qemu, pytest.mark.libvirtd, pytest.mark.slow]

libvirt = pytest.importorskip("libvirt")

FLAGS = (libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_LIVE
         | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)


def _power_off_on(host, name: str, pair) -> None:
    """Press the guest's power button on `host`: the guest (still running its OS after
    the migration) answers by powering off."""
    conn = libvirt.open(host.uri())
    try:
        dom = conn.lookupByName(name)
        deadline = time.monotonic() + 180
        while dom.isActive():
            assert time.monotonic() < deadline, "the migrated guest ignores its power button"
            try:
                dom.shutdown()
            except libvirt.libvirtError:
                if dom.isActive():          # else it powered off since the last look
                    raise
            time.sleep(2)
        assert "tinyos power button" in console(pair, name)
    finally:
        conn.close()


def test_hosts_are_distinct(pair):
    uuids = set()
    for host in (pair.a, pair.b):
        conn = libvirt.open(host.uri())
        try:
            caps = etree.fromstring(conn.getCapabilities())
            uuids.add(caps.findtext("host/uuid"))
        finally:
            conn.close()
        addrs = host.netns("ip", "-o", "addr", "show").stdout
        assert host.address in addrs
        other = pair.b if host is pair.a else pair.a
        assert other.address not in addrs
    assert uuids == {pair.a.host_uuid, pair.b.host_uuid} and len(uuids) == 2


def test_live_peer_to_peer_shared_storage(pair):
    name = "plain-shared"
    disk = os.path.join(pair.shared, f"{name}.qcow2")
    make_disk(disk)
    ca = libvirt.open(pair.a.uri())
    try:
        dom = boot(pair, ca, name, disks=((disk, "vda"),))
        dom.migrateToURI3(pair.b.peer_uri(), {}, FLAGS | libvirt.VIR_MIGRATE_UNSAFE)
        assert domain_on(pair.a, name) is None
        assert domain_on(pair.b, name) == (True, True)
        _power_off_on(pair.b, name, pair)
    finally:
        ca.close()
        remove_guest(pair, name)
        os.unlink(disk)


def test_live_peer_to_peer_storage_copy(pair):
    name = "plain-copy"
    path = f"{IMAGES}/{name}.qcow2"
    make_disk(pair.a.path(path))
    ca = libvirt.open(pair.a.uri())
    try:
        ca.storagePoolLookupByName("default").refresh()
        dom = boot(pair, ca, name, disks=((path, "vda"),))
        assert not os.path.exists(pair.b.path(path))
        dom.migrateToURI3(pair.b.peer_uri(), {}, FLAGS | libvirt.VIR_MIGRATE_NON_SHARED_DISK)
        assert domain_on(pair.b, name) == (True, True)
        assert os.path.exists(pair.b.path(path)), "the disk was not copied to B"
        _power_off_on(pair.b, name, pair)
    finally:
        ca.close()
        remove_guest(pair, name)
        for host in (pair.a, pair.b):
            if os.path.exists(host.path(path)):
                os.unlink(host.path(path))
