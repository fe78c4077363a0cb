"""Fixtures of the network filter tests (issue 12, item 3b).

libvirt's test driver has no nwfilter driver and a session libvirtd refuses
to define filters, so these tests run on a private *privileged* libvirtd in
its own mount and network namespaces (tests/fixtures/privileged_libvirtd.py),
which starts with the filters Debian ships (libvirt-daemon-config-nwfilter).

* ``daemon``: that daemon, with the guest ``filtered`` (defined, never
  started) whose first interface applies ``clean-traffic`` with ``IP``
  and ``DHCPSERVER`` parameters, whose second interface (on a bridge) applies
  nothing, and whose third is a user-mode interface (libvirt filters none);
  and the running guest ``filtered-running`` with two tap interfaces without
  filters.
* ``conn``: a libvirt connection to it; ``server``: kvm-cimom serving it.
"""

from __future__ import annotations

import libvirt
import pytest

from tests.fixtures.privileged_libvirtd import PrivilegedLibvirtd, privileged_libvirtd_available
from tests.support.server import start_server

GUEST = "filtered"
NIC1, NIC2, NIC3 = "52:54:00:f1:00:01", "52:54:00:f1:00:02", "52:54:00:f1:00:03"

GUEST_XML = f"""<domain type='qemu'>
  <name>{GUEST}</name>
  <metadata><app:x xmlns:app='urn:kvmp-test'>kept</app:x></metadata>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <on_reboot>destroy</on_reboot>
  <devices>
    <interface type='network'>
      <mac address='{NIC1}'/>
      <source network='default'/>
      <model type='virtio'/>
      <filterref filter='clean-traffic'>
        <parameter name='IP' value='10.0.0.7'/>
        <parameter name='DHCPSERVER' value='10.0.0.1'/>
      </filterref>
    </interface>
    <interface type='bridge'>
      <mac address='{NIC2}'/><source bridge='kvmpbr0'/><model type='e1000'/>
    </interface>
    <interface type='user'><mac address='{NIC3}'/><model type='e1000'/></interface>
    <serial type='pty'><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>"""


RUNNING = "filtered-running"
RNIC1, RNIC2 = "52:54:00:f2:00:01", "52:54:00:f2:00:02"

#: A guest that runs (QEMU under TCG, nothing to boot: it idles in the firmware) with
#: two tap interfaces and no filter yet; the daemon instantiates filters in its own
#: network namespace.
RUNNING_XML = f"""<domain type='qemu'>
  <name>{RUNNING}</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='ethernet'><mac address='{RNIC1}'/><model type='virtio'/></interface>
    <interface type='ethernet'><mac address='{RNIC2}'/><model type='virtio'/></interface>
    <memballoon model='none'/>
  </devices>
</domain>"""


@pytest.fixture(scope="package")
def daemon():
    why = privileged_libvirtd_available()
    if why:
        pytest.skip(why)
    d = PrivilegedLibvirtd().start()
    try:
        c = libvirt.open(d.uri())
        c.defineXML(GUEST_XML)
        c.defineXML(RUNNING_XML).create()
        c.close()
        yield d
    finally:
        d.cleanup()


@pytest.fixture(scope="package")
def conn(daemon):
    c = libvirt.open(daemon.uri())
    yield c
    c.close()


@pytest.fixture(scope="package")
def server(daemon):
    s = start_server(hosts=[daemon.uri()], extra_args=["--allow-anonymous"])
    yield s
    s.stop()
