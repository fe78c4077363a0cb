"""One request, devices of two running QEMU guests (TCG, tests/fixtures/tinyos.py): each
live change goes to its own guest (issue 9).

RemoveResourceSettings with a disk of guest A and a disk of guest B once sent every
detach to the domain its loop saw last: libvirt finds a disk by its target name, so
B's ``vdb`` was unplugged in place of A's.  Both guests run and eject the PCI slots,
so the unplug really happens.
"""

from __future__ import annotations

import os
import subprocess
import time

import libvirt
import pytest
from lxml import etree

from kvm_providers import virt

from tests.fixtures import tinyos
from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available, qemu_available

from .conftest import Lifecycle, configure, rasd_path

pytestmark = [pytest.mark.qemu,
              pytest.mark.skipif(not (libvirtd_available() and qemu_available()),
                                 reason="libvirtd or qemu-system-x86_64 not installed"),
              pytest.mark.skipif(not tinyos.available(),
                                 reason="needs linux-image-cloud-amd64 and busybox-static")]

GUEST = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{work}/vmlinuz</kernel><initrd>{work}/initrd.gz</initrd>
    <cmdline>{cmdline}</cmdline></os>
  <features><acpi/><apic/></features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    {disks}
    <serial type='file'><source path='{work}/{name}.log'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>"""

DISK = """<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
  <source file='{path}'/><target dev='{dev}' bus='virtio'/></disk>"""


def _targets(dom, flags: int = 0) -> set[str]:
    return set(etree.fromstring(dom.XMLDesc(flags)).xpath("devices/disk/target/@dev"))


@pytest.fixture(scope="module")
def guests():
    """Guests 'ga' (disk vdb) and 'gb' (disks vdb, vdc), both booted."""
    d = PrivateLibvirtd().start()
    conn = libvirt.open(d.uri("qemu"))
    try:
        work = os.path.join(d.workdir, "guests")
        tinyos.build(work)
        os.chmod(work, 0o777)                # the daemon (user nobody) writes the consoles
        for name, devs in (("ga", ("vdb",)), ("gb", ("vdb", "vdc"))):
            disks = []
            for dev in devs:
                path = os.path.join(work, f"{name}-{dev}.qcow2")
                subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, "8M"],
                               check=True)
                os.chmod(path, 0o666)
                disks.append(DISK.format(path=path, dev=dev))
            conn.defineXML(GUEST.format(name=name, work=work, cmdline=tinyos.CMDLINE,
                                        disks="\n".join(disks))).create()
        deadline = time.monotonic() + 180
        for name in ("ga", "gb"):
            log = os.path.join(work, f"{name}.log")
            while "tinyos up" not in (open(log, errors="replace").read()
                                      if os.path.exists(log) else ""):
                assert time.monotonic() < deadline, f"guest {name} did not boot"
                time.sleep(0.2)
        yield d, conn
    finally:
        d.teardown_guests(conn)


@pytest.fixture
def qlc(harness, guests):
    mgr = configure(guests[0].uri("qemu"))
    yield Lifecycle(harness, mgr)
    virt.shutdown()


def test_remove_disks_of_two_running_guests(guests, qlc):
    _d, conn = guests
    ga, gb = conn.lookupByName("ga"), conn.lookupByName("gb")
    assert _targets(ga) == {"vdb"} and _targets(gb) == {"vdb", "vdc"}
    rv, _ = qlc.invoke(qlc.service(), "RemoveResourceSettings", ResourceSettings=[
        rasd_path("Disk", "ga/vdb"), rasd_path("Disk", "gb/vdc")])
    assert rv == 0
    deadline = time.monotonic() + 60             # the guests eject the PCI slots
    while time.monotonic() < deadline and ("vdb" in _targets(ga) or "vdc" in _targets(gb)):
        time.sleep(0.2)
    assert _targets(ga) == set(), "guest A's vdb is still plugged in"
    assert _targets(gb) == {"vdb"}, "guest B lost another disk than its vdc"
    inactive = libvirt.VIR_DOMAIN_XML_INACTIVE
    assert _targets(ga, inactive) == set() and _targets(gb, inactive) == {"vdb"}
