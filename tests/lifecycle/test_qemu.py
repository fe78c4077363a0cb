"""The lifecycle of a real QEMU guest (TCG) through kvm-cimom and pywbem: define, start,
pause, resume, managed save and restore, reset, reboot, shut down with a timeout, power
off, destroy; hot-plug and unplug of a disk and a NIC while it runs.

The guest runs the host's kernel with a busybox initramfs (tests/fixtures/tinyos.py),
so that it answers ACPI shutdown and reboot and ejects unplugged PCI devices.
Its serial console goes to a file: each boot writes "tinyos up" there.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

import libvirt
import pytest
from lxml import etree
from pywbem import CIMDateTime, CIMInstance, CIMInstanceName, Uint16, Uint64

from tests.fixtures import tinyos
from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available, qemu_available
from tests.support.server import start_server

from .conftest import storage_config_file

pytestmark = [pytest.mark.qemu,
              pytest.mark.skipif(not (libvirtd_available() and qemu_available()),
                                 reason="libvirtd or qemu-system-x86_64 not installed"),
              pytest.mark.skipif(not tinyos.available(),
                                 reason="needs linux-image-cloud-amd64 and busybox-static")]

NS = "root/virt"
NAME = "tcg-life"


class Guest:
    def __init__(self, daemon, conn, cim, workdir):
        self.d, self.lv, self.cim, self.workdir = daemon, conn, cim, workdir
        self.console = os.path.join(workdir, "console.log")
        self._len = self._count = self._offset = 0
        self.cs = CIMInstanceName("KVM_ComputerSystem", {
            "CreationClassName": "KVM_ComputerSystem", "Name": NAME}, namespace=NS)

    @property
    def dom(self):
        return self.lv.lookupByName(NAME)

    def boots(self) -> int:
        """Boots so far; QEMU truncates the console file when it restores a saved guest."""
        try:
            with open(self.console, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            text = ""
        if len(text) < self._len:
            self._offset += self._count
        self._len, self._count = len(text), text.count("tinyos up")
        return self._offset + self._count

    def wait_boots(self, n: int, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while self.boots() < n:
            assert time.monotonic() < deadline, f"guest did not boot {n} times:\n" + \
                open(self.console, errors="replace").read()[-2000:]
            time.sleep(0.2)

    def rsc(self, state: int, **kw) -> int:
        rv, _ = self.cim.InvokeMethod("RequestStateChange", self.cs,
                                      RequestedState=Uint16(state), **kw)
        return int(rv)

    def rsc_job(self, state: int, **kw) -> tuple[int, Any]:
        """RequestStateChange that answers 4096: (the job's final JobState, the job)."""
        rv, out = self.cim.InvokeMethod("RequestStateChange", self.cs,
                                        RequestedState=Uint16(state), **kw)
        assert rv == 4096, rv
        deadline = time.monotonic() + 180
        while True:
            job = self.cim.GetInstance(out["Job"])
            if job["JobState"] in (7, 8, 9, 10) or time.monotonic() > deadline:
                return int(job["JobState"]), job
            time.sleep(0.5)

    def enabled(self) -> int:
        return self.cim.GetInstance(self.cs)["EnabledState"]

    def supported(self) -> list[int]:
        elec = self.cim.Associators(self.cs, AssocClass="CIM_ElementCapabilities",
                                    ResultClass="CIM_EnabledLogicalElementCapabilities")[0]
        return list(elec["RequestedStatesSupported"])

    def service(self):
        return self.cim.EnumerateInstanceNames("KVM_VirtualSystemManagementService")[0]

    def live(self):
        return etree.fromstring(self.dom.XMLDesc(0))


@pytest.fixture(scope="module")
def guest():
    d = PrivateLibvirtd().start()
    server = None
    conn = libvirt.open(d.uri("qemu"))
    try:
        work = os.path.join(d.workdir, "guest")
        kernel, initrd = tinyos.build(work)
        os.chmod(work, 0o777)                 # the daemon (user nobody) writes the console log
        # the guest's kernel, initrd, console log and disk images live in `work`
        server = start_server(hosts=[d.uri("qemu")],
                              config=storage_config_file(d.workdir, [work]))
        yield Guest(d, conn, server.conn(), work)
    finally:
        if server is not None:
            server.stop()
        d.teardown_guests(conn, libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)


def test_define_with_host_defaults(guest):
    kernel = os.path.join(guest.workdir, "vmlinuz")
    vssd = CIMInstance("KVM_VirtualSystemSettingData", {
        "VirtualSystemIdentifier": NAME, "Kernel": kernel,
        "Ramdisk": os.path.join(guest.workdir, "initrd.gz"), "CommandLine": tinyos.CMDLINE})
    mem = CIMInstance("KVM_MemResourceAllocationSettingData",
                      {"VirtualQuantity": Uint64(128), "AllocationUnits": "MegaBytes"})
    console = CIMInstance("KVM_ConsoleResourceAllocationSettingData",
                          {"SourceType": Uint16(4), "SourcePath": guest.console})
    rv, out = guest.cim.InvokeMethod("DefineSystem", guest.service(),
                                     SystemSettings=vssd.tomof(),
                                     ResourceSettings=[mem.tomof(), console.tomof()])
    assert rv == 0 and out["ResultingSystem"]["Name"] == NAME
    root = etree.fromstring(guest.dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    caps = etree.fromstring(guest.lv.getCapabilities())
    kvm = caps.xpath("guest[os_type='hvm']/arch[@name='x86_64']/domain[@type='kvm']")
    assert root.get("type") == ("kvm" if kvm else "qemu")
    assert root.find("os/type").get("arch") == "x86_64"
    dc = etree.fromstring(guest.lv.getDomainCapabilities(None, "x86_64", None, root.get("type")))
    assert root.find("os/type").get("machine") == dc.findtext("machine")
    assert root.findtext("devices/emulator") == dc.findtext("path")
    assert guest.enabled() == 3 and guest.supported() == [2]


def test_start_pause_resume(guest):
    assert guest.rsc(2) == 0
    guest.wait_boots(1)
    assert guest.enabled() == 2 and guest.supported() == [3, 4, 6, 9, 10, 11]
    assert guest.rsc(9) == 0
    assert guest.dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED
    assert guest.enabled() == 9 and guest.supported() == [2, 3, 6, 11]
    assert guest.rsc(9) == 4097
    assert guest.rsc(2) == 0
    assert guest.dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    # Reset of a paused guest: "first Disabled and then Enabled" - it runs afterwards
    assert guest.rsc(9) == 0
    boots = guest.boots()
    assert guest.rsc(11) == 0
    assert guest.dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING and guest.enabled() == 2
    guest.wait_boots(boots + 1)


def test_managed_save_and_restore(guest):
    boots = guest.boots()
    state, job = guest.rsc_job(6)           # a job with libvirt's figures (docs/jobs.md)
    assert state == 7 and job["PercentComplete"] == 100
    assert not guest.dom.isActive() and guest.dom.hasManagedSaveImage(0)
    assert guest.enabled() == 6 and guest.supported() == [2, 3]
    state, job = guest.rsc_job(2)           # the restore: a job too
    assert state == 7 and "restore" in job["Description"]
    assert guest.dom.isActive() and not guest.dom.hasManagedSaveImage(0)
    time.sleep(1)
    assert guest.boots() == boots               # restored, not booted again


def test_hot_plug_and_unplug_disk_and_nic(guest):
    image = os.path.join(guest.workdir, "hot.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", image, "16M"], check=True)
    os.chmod(image, 0o666)
    vssd = CIMInstanceName("KVM_VirtualSystemSettingData", {"InstanceID": f"KVM:{NAME}"},
                           namespace=NS)
    disk = CIMInstance("KVM_DiskResourceAllocationSettingData",
                       {"VirtualDevice": "vdb", "Address": image})
    nic = CIMInstance("KVM_NetResourceAllocationSettingData",
                      {"NetworkType": "user", "Address": "52:54:00:7c:aa:01"})
    rv, out = guest.cim.InvokeMethod("AddResourceSettings", guest.service(),
                                     AffectedConfiguration=vssd,
                                     ResourceSettings=[disk.tomof(), nic.tomof()])
    assert rv == 0
    assert [p["InstanceID"] for p in out["ResultingResourceSettings"]] == \
        [f"{NAME}/vdb", f"{NAME}/52:54:00:7c:aa:01"]
    live = guest.live()
    d = live.xpath("devices/disk[target/@dev='vdb']")
    assert d and d[0].find("driver").get("type") == "qcow2"       # format from the image
    assert live.xpath("devices/interface[mac/@address='52:54:00:7c:aa:01']")
    persistent = etree.fromstring(guest.dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert persistent.xpath("devices/disk[target/@dev='vdb']")
    # the running system's devices, as CIM shows them
    devs = {p["DeviceID"] for p in guest.cim.AssociatorNames(guest.cs,
                                                             AssocClass="KVM_SystemDevice")}
    assert {f"{NAME}/vdb", f"{NAME}/52:54:00:7c:aa:01"} <= devs
    rv, _ = guest.cim.InvokeMethod("RemoveResourceSettings", guest.service(),
                                   ResourceSettings=out["ResultingResourceSettings"])
    assert rv == 0
    deadline = time.monotonic() + 20             # the guest ejects the PCI slots
    while time.monotonic() < deadline:
        live = guest.live()
        if not live.xpath("devices/disk[target/@dev='vdb']") and \
                not live.xpath("devices/interface[mac/@address='52:54:00:7c:aa:01']"):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("devices still attached")
    persistent = etree.fromstring(guest.dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert not persistent.xpath("devices/disk[target/@dev='vdb']")
    assert not persistent.xpath("devices/interface")


def test_vcpus_and_memory_persistent_when_not_live(guest):
    proc = guest.cim.GetInstance(CIMInstanceName(
        "KVM_ProcResourceAllocationSettingData", {"InstanceID": f"{NAME}/proc"}, namespace=NS))
    proc["VirtualQuantity"] = Uint64(2)          # above the running maximum: next boot
    rv, _ = guest.cim.InvokeMethod("ModifyResourceSettings", guest.service(),
                                   ResourceSettings=[proc.tomof()])
    assert rv == 0
    assert guest.dom.vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_LIVE) == 1
    assert guest.dom.vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_CONFIG) == 2


def test_reset_and_reboot(guest):
    boots = guest.boots()
    assert guest.rsc(11) == 0
    guest.wait_boots(boots + 1)
    assert guest.rsc(10) == 0                   # ACPI: the guest powers off, libvirt restarts
    guest.wait_boots(boots + 2)
    assert guest.enabled() == 2


def test_shut_down_with_a_timeout(guest):
    # The power button is lost when it is pressed before the guest's driver has loaded
    # (the next test shows it), which a TCG guest on a loaded machine may not have done
    # yet after the reboot above: press again, at most three times.
    # With a TimeoutPeriod the wait is a job (docs/jobs.md): 4096, then the job's end.
    for _ in range(3):
        t = time.monotonic()
        state, job = guest.rsc_job(4, TimeoutPeriod=CIMDateTime("00000000000030.000000:000"))
        if state == 7:
            break
        assert state == 10 and "did not shut down" in job["ErrorDescription"]
        assert guest.dom.isActive()               # timed out, nothing else happened
    assert state == 7 and time.monotonic() - t < 60
    assert not guest.dom.isActive() and guest.enabled() == 3
    assert guest.dom.vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_CONFIG) == 2


def test_shut_down_that_times_out_then_power_off(guest):
    boots = guest.boots()
    assert guest.rsc(2) == 0
    # asked before the guest loaded its power button driver, the request is lost
    state, job = guest.rsc_job(4, TimeoutPeriod=CIMDateTime("00000000000002.000000:000"))
    if state == 7:       # the guest was quicker than the request: nothing to time out
        pytest.skip("the guest answered before the timeout could be shown")
    assert state == 10 and "within 2 s" in job["ErrorDescription"] and guest.dom.isActive()
    guest.wait_boots(boots + 1)
    assert guest.rsc(3) == 0
    assert not guest.dom.isActive() and guest.enabled() == 3


def test_destroy(guest):
    assert guest.rsc(2) == 0
    rv, _ = guest.cim.InvokeMethod("DestroySystem", guest.service(), AffectedSystem=guest.cs)
    assert rv == 0
    assert NAME not in [d.name() for d in guest.lv.listAllDomains()]
