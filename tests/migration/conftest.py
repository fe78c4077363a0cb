"""Fixtures of the migration tests: two hosts (tests/fixtures/migration_hosts.py) and
tiny QEMU/TCG guests (tests/fixtures/tinyos.py) booted on them.

The pair lives for the package (starting two daemons costs seconds on a loaded
machine); each test defines its own guests and removes them afterwards, from
both hosts.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Iterator, Optional

import pytest

from tests.fixtures import tinyos
from tests.support.server import start_server
from tests.fixtures.libvirtd import qemu_available
from tests.fixtures.migration_hosts import HostPair, host_pair_available

WHY = host_pair_available() or (None if qemu_available() else "qemu-system-x86_64 missing") \
    or (None if tinyos.available() else "needs linux-image-cloud-amd64 and busybox-static")

#: Seconds a TCG guest may take to boot on a loaded 2-core machine.
BOOT_TIMEOUT = 240.0

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
    {devices}
    <serial type='file'><source path='{work}/{name}.log' append='on'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>"""

DISK = """<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='{path}'/><target dev='{dev}' bus='virtio'/></disk>"""

NIC = """<interface type='network'><source network='{network}'/><model type='virtio'/></interface>"""

IMAGES = "/var/lib/libvirt/images"

#: Seconds a migration of a 128 MiB TCG guest may take on a loaded 2-core machine.
MIGRATION_TIMEOUT_S = 300        # each host's own directory (a bind mount)


@pytest.fixture(scope="package")
def pair() -> Iterator[HostPair]:
    """Hosts A and B, each with a directory pool 'default' on its own images directory
    and a pool 'shared' on the directory both see."""
    if WHY:
        pytest.skip(WHY)
    import libvirt
    p = HostPair().start()
    try:
        tinyos.build(p.guest_dir)
        os.chmod(p.guest_dir, 0o777)
        for host in (p.a, p.b):
            conn = libvirt.open(host.uri())
            try:
                for name, path in (("default", IMAGES), ("shared", p.shared)):
                    pool = conn.storagePoolDefineXML(
                        f"<pool type='dir'><name>{name}</name><target><path>{path}</path>"
                        "</target></pool>")
                    pool.create()
            finally:
                conn.close()
        yield p
    finally:
        p.cleanup()


def guest_xml(pair: HostPair, name: str, disks: tuple[tuple[str, str], ...] = (),
              networks: tuple[str, ...] = ()) -> str:
    """A tinyos guest: `disks` are (path, target dev), `networks` libvirt networks."""
    devices = [DISK.format(path=path, dev=dev) for path, dev in disks]
    devices += [NIC.format(network=net) for net in networks]
    return GUEST.format(name=name, work=pair.guest_dir, cmdline=tinyos.CMDLINE,
                        devices="\n    ".join(devices))


def make_disk(path_on_machine: str, size: str = "16M") -> None:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path_on_machine, size],
                   check=True, timeout=60)
    os.chmod(path_on_machine, 0o666)


def console(pair: HostPair, name: str) -> str:
    path = os.path.join(pair.guest_dir, f"{name}.log")
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def wait_booted(pair: HostPair, name: str, count: int = 1,
                timeout: float = BOOT_TIMEOUT) -> None:
    """Wait until the guest's console shows its `count`-th boot."""
    deadline = time.monotonic() + timeout
    while console(pair, name).count("tinyos up") < count:
        assert time.monotonic() < deadline, f"guest {name} did not boot in {timeout} s"
        time.sleep(0.3)


def boot(pair: HostPair, conn, name: str, **kw):
    """Define and start a guest on `conn`; return its domain once it has booted."""
    dom = conn.defineXML(guest_xml(pair, name, **kw))
    dom.create()
    wait_booted(pair, name)
    return dom


def remove_guest(pair: HostPair, name: str) -> None:
    """Destroy and undefine `name` on both hosts (whichever has it)."""
    import libvirt
    for host in (pair.a, pair.b):
        conn = libvirt.open(host.uri())
        try:
            try:
                dom = conn.lookupByName(name)
            except libvirt.libvirtError:
                continue
            try:
                if dom.isActive():
                    dom.destroy()
            except libvirt.libvirtError:
                pass
            try:
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_KEEP_NVRAM)
            except libvirt.libvirtError:
                pass
        finally:
            conn.close()


def domain_on(host, name: str) -> Optional[tuple[bool, bool]]:
    """(active, persistent) of `name` on `host`, or None if it has no such guest."""
    import libvirt
    conn = libvirt.open(host.uri())
    try:
        dom = conn.lookupByName(name)
        return bool(dom.isActive()), bool(dom.isPersistent())
    except libvirt.libvirtError:
        return None
    finally:
        conn.close()


@pytest.fixture(scope="package")
def server(pair):
    path = os.path.join(pair.workdir, "server.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write("[server]\nrequest_timeout = 600.0\nallow_anonymous = true\n"
                f'[[host]]\nuri = "{pair.a.uri()}"\nname = "a"\n'
                f'[[host]]\nuri = "{pair.b.uri()}"\nname = "b"\n')
    s = start_server(config=path)
    yield s
    s.stop()


@pytest.fixture
def conn(server):
    return server.conn(timeout=MIGRATION_TIMEOUT_S + 60)
