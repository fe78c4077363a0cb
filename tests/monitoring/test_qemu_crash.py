"""libvirt's own events as alerts, from a real guest (issue 15): a QEMU/TCG tiny guest
panics (tinyos kvmp.panic: sysrq 'c' after the pvpanic driver is loaded), QEMU's pvpanic
device tells libvirt, libvirt's crash event raises a 'crash' KVM_AlertIndication at once
(no polling: the collector samples only every 60 s here), and starting the guest again
clears it."""

from __future__ import annotations

import os

import pytest

from tests.fixtures import tinyos
from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available, qemu_available
from tests.indprov.listener import Listener, manager, subscribe
from tests.support.server import start_server

pytestmark = [pytest.mark.qemu,
              pytest.mark.skipif(not (libvirtd_available() and qemu_available()),
                                 reason="libvirtd or qemu-system-x86_64 not installed"),
              pytest.mark.skipif(not (tinyos.available() and tinyos.panic_available()),
                                 reason="needs linux-image-cloud-amd64 (with pvpanic) and "
                                        "busybox-static")]

GUEST = """<domain type='qemu'>
  <name>crasher</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{work}/vmlinuz</kernel><initrd>{work}/initrd.gz</initrd>
    <cmdline>{cmdline}</cmdline></os>
  <features><acpi/><apic/></features>
  <on_crash>preserve</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type='file'><source path='{work}/crasher.log'/><target port='0'/></serial>
    <memballoon model='none'/>
    <panic model='isa'><address type='isa' iobase='0x505'/></panic>
  </devices>
</domain>"""


def test_guest_panic_is_a_crash_alert_without_polling(tmp_path):
    import libvirt
    d = PrivateLibvirtd().start()
    lv = libvirt.open(d.uri("qemu"))
    srv = lst = sm = None
    try:
        work = os.path.join(d.workdir, "guest")
        tinyos.build(work)
        os.chmod(work, 0o777)
        lv.defineXML(GUEST.format(work=work, cmdline=tinyos.panic_cmdline(3)))
        cfg = tmp_path / "c.toml"
        cfg.write_text('[monitoring]\ninterval = 60\n'
                       f'[[host]]\nuri = "{d.uri("qemu")}"\nname = "lab"\n')
        srv = start_server(config=str(cfg))
        lst = Listener()
        sm, sid = manager(srv, "crash")
        subscribe(sm, sid, lst.url, "SELECT * FROM CIM_AlertIndication", source=["root/virt"])
        dom = lv.lookupByName("crasher")
        dom.create()
        got = lst.wait(1, 300)
        log = open(os.path.join(work, "crasher.log"), errors="replace").read()
        assert got, f"no alert; guest console:\n{log[-2000:]}"
        a = got[0]
        assert (a.classname, a["AlertName"], a["Raised"], a["AlertType"], a["ProbableCause"],
                a["PerceivedSeverity"]) == ("KVM_AlertIndication", "crash", True, 4, 48, 6)
        assert "panicked" in a["Description"] and 'Name="crasher"' in \
            a["AlertingManagedElement"]
        assert dom.state()[0] == libvirt.VIR_DOMAIN_CRASHED
        dom.destroy()
        dom.create()                       # started again: the crash is over
        got = lst.wait(2, 120)
        assert len(got) == 2 and (got[1]["AlertName"], got[1]["Raised"],
                                  got[1]["ProbableCause"]) == ("crash", False, 59)
        assert list(got[1]["CorrelatedIndications"]) == [a["IndicationIdentifier"]]
    finally:
        if sm is not None:
            sm.remove_all_servers()
        if lst is not None:
            lst.stop()
        if srv is not None:
            srv.stop()
        d.teardown_guests(lv)
