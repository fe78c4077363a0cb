"""A real QEMU guest (TCG, no disk) under a private libvirtd: the providers report
its state and devices as libvirt sees them, live values included."""

from __future__ import annotations

import os
import time

import libvirt
import pytest
from lxml import etree
from pywbem import CIMInstanceName

from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available, qemu_available
from tests.support.server import start_server

from . import expected as X

pytestmark = [pytest.mark.qemu,
              pytest.mark.skipif(not (libvirtd_available() and qemu_available()),
                                 reason="libvirtd or qemu-system-x86_64 not installed")]

GUEST = """<domain type='qemu'>
  <name>tcg1</name>
  <description>TCG test guest</description>
  <memory unit='MiB'>128</memory>
  <currentMemory unit='MiB'>96</currentMemory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os>
  <features><acpi/></features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='user'>
      <mac address='52:54:00:7c:91:01'/><model type='e1000'/><rom enabled='no'/>
    </interface>
    <input type='tablet' bus='usb'/>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>"""


@pytest.fixture(scope="module")
def guest():
    d = PrivateLibvirtd().start()
    conn = libvirt.open(d.uri("qemu"))
    dom = conn.defineXML(GUEST)
    dom.create()
    try:
        yield d, conn, dom
    finally:
        try:
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        except libvirt.libvirtError:
            pass
        conn.close()
        for pid in d.qemu_pids():      # guests this daemon started, should any remain
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        d.cleanup()


@pytest.fixture(scope="module")
def cim(guest):
    d, _conn, _dom = guest
    server = start_server(hosts=[d.uri("qemu")])
    yield server.conn()
    server.stop()


def cs():
    return CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                  "Name": "tcg1"}, namespace="root/virt")


def wait_state(cim, want, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = cim.GetInstance(cs())["EnabledState"]
        if st == want:
            return
        time.sleep(0.2)
    raise AssertionError(f"EnabledState stayed {st}, wanted {want}")


def test_running_guest_state_and_devices(guest, cim):
    _d, _conn, dom = guest
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    inst = cim.GetInstance(cs())
    assert (inst["EnabledState"], inst["HealthState"], inst["OperationalStatus"]) == \
        (2, 5, [2])
    assert inst["UUID"] == dom.UUIDString()
    devices = cim.Associators(cs(), AssocClass="KVM_SystemDevice")
    assert {(x.classname, x["DeviceID"]) for x in devices} == X.devices(dom)
    assert len([x for x in devices if x.classname == "KVM_Processor"]) == 2
    live = etree.fromstring(dom.XMLDesc(0))
    port = live.find("devices/graphics").get("port")
    assert int(port) >= 5900                         # assigned when the guest started
    disp = next(x for x in devices if x.classname == "KVM_DisplayController")
    assert disp["VideoProcessor"] == f"vnc/127.0.0.1:{port}"
    rasds = {r["InstanceID"]: r for r in cim.Associators(
        CIMInstanceName("KVM_VirtualSystemSettingData", {"InstanceID": "KVM:tcg1"},
                        namespace="root/virt"),
        AssocClass="KVM_VirtualSystemSettingDataComponent")}
    assert {("KVM_" + r.classname[4:], i) for i, r in rasds.items()} == X.rasds(dom)
    assert rasds["tcg1/vnc"]["Address"] == f"127.0.0.1:{port}"
    pty = live.find("devices/console/source").get("path")
    assert rasds["tcg1/charconsole:0"]["SourcePath"] == pty
    assert rasds["tcg1/charconsole:0"]["SourceType"] == 2
    info = dom.info()
    assert rasds["tcg1/mem"]["VirtualQuantity"] == info[2]
    assert rasds["tcg1/mem"]["Limit"] == info[1] == 128 * 1024
    assert rasds["tcg1/52:54:00:7c:91:01"]["NetworkType"] == "user"
    assert rasds["tcg1/52:54:00:7c:91:01"]["ResourceSubType"] == "e1000"
    # libvirt added these to the guest; they are reported like any other device
    assert "tcg1/controller:usb:0" in rasds and "tcg1/mouse:ps2" in rasds
    assert rasds["tcg1/tablet:usb"]["Parent"] == "tcg1/controller:usb:0"
    vssd = cim.GetInstance(CIMInstanceName("KVM_VirtualSystemSettingData",
                                           {"InstanceID": "KVM:tcg1"}, namespace="root/virt"))
    assert vssd["Emulator"] == "/usr/bin/qemu-system-x86_64"
    assert vssd["Machine"].startswith("pc-")      # libvirt expanded the machine alias
    assert vssd["Notes"] == ["TCG test guest"]
    svc = cim.EnumerateInstances("KVM_VirtualSystemManagementService")[0]
    v = _conn_version(guest[1])
    assert svc["Caption"] == f"QEMU {v}"


def _conn_version(conn):
    v = conn.getVersion()
    return f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}"


def test_state_changes_made_outside_cim(guest, cim):
    _d, _conn, dom = guest
    dom.suspend()
    wait_state(cim, 9)
    dom.resume()
    wait_state(cim, 2)
    dom.destroy()
    wait_state(cim, 3)
    inst = cim.GetInstance(cs())
    assert inst["OperationalStatus"] == [15]
    # shut off, the guest is still described (its persistent definition)
    devices = cim.AssociatorNames(cs(), AssocClass="KVM_SystemDevice")
    assert len([p for p in devices if p.classname == "KVM_Processor"]) == 2
    dom.create()
    wait_state(cim, 2)
