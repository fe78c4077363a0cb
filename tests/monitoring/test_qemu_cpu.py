"""A real QEMU/TCG guest that burns its processor (the tiny guest OS with kvmp.burn,
tests/fixtures/tinyos.py) shows rising CPU utilization in CIM (KVM_BaseMetricValue,
GetSummaryInformation), in /metrics and on the live page; an alert rule on it fires,
and clears when the guest is paused (issue 15).

Timeline: the guest boots, idles ~45 s (several 2 s samples of a low load), then runs a
busy loop ("tinyos burning" on its serial console).  Under TCG on a loaded 2-core
machine the vCPU thread gets what the host leaves it, so the test asserts a clear rise
(idle below 10 %, burning above 15 %: on a busy 2-core machine the burning vCPU got
20-60 % of a core, the idle one 0-1 %), not exact figures."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request

import pytest
import pywbem
from prometheus_client.parser import text_string_to_metric_families
from pywbem import CIMInstanceName

from tests.fixtures import tinyos
from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available, qemu_available
from tests.indprov.listener import Listener, manager, subscribe
from tests.support.server import start_server

from . import browser

pytestmark = [pytest.mark.qemu, pytest.mark.slow,
              pytest.mark.skipif(not (libvirtd_available() and qemu_available()),
                                 reason="libvirtd or qemu-system-x86_64 not installed"),
              pytest.mark.skipif(not tinyos.available(),
                                 reason="needs linux-image-cloud-amd64 and busybox-static")]

IDLE_S = 45
GUEST = """<domain type='qemu'>
  <name>burner</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{work}/vmlinuz</kernel><initrd>{work}/initrd.gz</initrd>
    <cmdline>{cmdline}</cmdline></os>
  <features><acpi/><apic/></features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='{work}/burner.qcow2'/><target dev='vdb' bus='virtio'/></disk>
    <serial type='file'><source path='{work}/burner.log'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>"""


def _log(work: str) -> str:
    path = os.path.join(work, "burner.log")
    return open(path, errors="replace").read() if os.path.exists(path) else ""


def _wait(cond, timeout: float, what: str, step: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(step)


def _cim_cpu(conn) -> float | None:
    path = CIMInstanceName("KVM_BaseMetricValue", {"InstanceID": "lab|domain:burner|cpu_util"},
                           namespace="root/virt")
    try:
        return float(conn.GetInstance(path)["MetricValue"])
    except pywbem.CIMError as exc:
        if exc.status_code == pywbem.CIM_ERR_NOT_FOUND:
            return None
        raise


def _prom_cpu(srv) -> float | None:
    text = urllib.request.urlopen(f"{srv.url}/metrics", timeout=60).read().decode()
    for fam in text_string_to_metric_families(text):
        if fam.name == "kvmp_domain_cpu_utilization_percent":
            for s in fam.samples:
                if s.labels.get("domain") == "burner":
                    return s.value
    return None


def test_burning_guest_in_cim_metrics_page_and_alerts(tmp_path):
    d = PrivateLibvirtd().start()
    srv = lst = sm = chrome = None
    import libvirt
    conn_lv = libvirt.open(d.uri("qemu"))
    try:
        work = os.path.join(d.workdir, "guest")
        tinyos.build(work)
        os.chmod(work, 0o777)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2",
                        os.path.join(work, "burner.qcow2"), "8M"], check=True)
        os.chmod(os.path.join(work, "burner.qcow2"), 0o666)
        conn_lv.defineXML(GUEST.format(work=work, cmdline=tinyos.burn_cmdline(IDLE_S)))
        cfg = tmp_path / "c.toml"
        cfg.write_text('[monitoring]\ninterval = 2\nhistory = 900\n'
                       '[[monitoring.alert]]\nname = "cpu-high"\nmetric = "cpu_util"\n'
                       'above = 10\nfor = 4\nseverity = "critical"\n'
                       f'[[host]]\nuri = "{d.uri("qemu")}"\nname = "lab"\n'
                       '[storage]\nallowed_paths = ["/tmp"]\n')
        srv = start_server(config=str(cfg))
        cim = srv.conn()
        conn_lv.lookupByName("burner").create()
        _wait(lambda: "tinyos up" in _log(work), 240, "the guest boots")
        booted = time.monotonic()
        # idle: a few samples of a low load (boot is over)
        time.sleep(12)
        idle = []
        while "tinyos burning" not in _log(work) and time.monotonic() - booted < IDLE_S - 4:
            v = _cim_cpu(cim)
            if v is not None:
                idle.append(v)
            time.sleep(2)
        # alerts from now on (the boot's own load is over: the rule would fire on it)
        lst = Listener()
        sm, sid = manager(srv, "burn")
        subscribe(sm, sid, lst.url, "SELECT * FROM KVM_AlertIndication", source=["root/virt"])
        _wait(lambda: "tinyos burning" in _log(work), IDLE_S + 120, "the guest burns")
        # burning: the CIM value, /metrics and the summary rise
        hot = _wait(lambda: (v := _cim_cpu(cim)) is not None and v > 15 and v, 180,
                    "CIM cpu_util above 15 %")
        prom = _wait(lambda: (v := _prom_cpu(srv)) is not None and v > 15 and v, 60,
                     "/metrics cpu above 15 %")
        svc = cim.EnumerateInstanceNames("KVM_VirtualSystemManagementService")[0]
        _rv, out = cim.InvokeMethod("GetSummaryInformation", svc)
        summ = out["SummaryInformation"][0]
        print(f"idle samples {idle}; burning: CIM {hot} %, /metrics {prom} %, summary "
              f"{summ['ProcessorLoad']} % history "
              f"{[int(v) for v in summ['ProcessorLoadHistory'] or []]}")
        # The median, not the maximum: on a loaded 2-core host the TCG guest's boot
        # can still show in the first idle sample (17 % seen once).
        assert idle and sorted(idle)[len(idle) // 2] < 10, f"the idle guest's load: {idle}"
        hist = summ["ProcessorLoadHistory"]
        assert summ["ProcessorLoad"] is not None and hist
        assert max(hist) > 15 and min(hist) < 10
        assert summ["NumberOfProcessors"] == 1
        # the disk's counters are there too (its rate is 0: the guest does not use it)
        disk = CIMInstanceName("KVM_BaseMetricValue",
                               {"InstanceID": "lab|disk:burner/vdb|disk_rd_bytes"},
                               namespace="root/virt")
        assert cim.GetInstance(disk)["MeasuredElementName"] == "burner/vdb"
        # the page: the guest's CPU graph has reached the burning level
        if browser.available():
            chrome = browser.start()
            chrome.get(f"{srv.url}/live")
            browser.wait(lambda: chrome.find_elements("css selector", "#guests tbody tr.g"))
            chrome.find_elements("css selector", "#guests tbody tr.g")[0].click()
            # the CPU graph's scale ("max N %") is the highest load of its history
            peak = browser.wait(lambda: chrome.find_element(
                "css selector", "#graphs > div:first-child .muted").text)
            assert peak.startswith("max ") and float(peak[4:].strip(" %")) > 15, peak
            path = chrome.find_element("css selector", 'path[data-series="cpu_util"]')
            assert path.get_attribute("d").count("L") > 5
            browser.screenshot(chrome, str(tmp_path / "live-burning-guest.png"))
        # the alert: raised while burning, cleared once the guest is paused
        raised = lst.wait(1, 120)
        assert raised and raised[0]["AlertName"] == "cpu-high" and raised[0]["Raised"]
        assert raised[0]["PerceivedSeverity"] == 6
        assert 'Name="burner"' in raised[0]["AlertingManagedElement"]
        conn_lv.lookupByName("burner").suspend()
        got = lst.wait(2, 120)
        assert len(got) == 2 and got[1]["AlertName"] == "cpu-high" and not got[1]["Raised"]
    finally:
        if chrome is not None:
            chrome.quit()
        if sm is not None:
            sm.remove_all_servers()
        if lst is not None:
            lst.stop()
        if srv is not None:
            srv.stop()
        d.teardown_guests(conn_lv)
