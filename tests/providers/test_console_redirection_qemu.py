"""KVM redirection (DSP1076) on real QEMU guests (TCG, no disk) under a private libvirtd:
the access points report the ports libvirt assigned, and those are the real listeners -
the test connects to them on loopback (RFB banner of VNC, the SPICE link reply) and
sees the session in EnabledState and Name while it is connected.  One guest has VNC and
SPICE on 127.0.0.1, another VNC on ::1 (IPv6 round trip on a real listener)."""

from __future__ import annotations

import os
import socket
import struct
import time

import libvirt
import pytest
from lxml import etree
from pywbem import CIMInstanceName

from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available, qemu_available
from tests.support.server import start_server

pytestmark = [pytest.mark.qemu,
              pytest.mark.skipif(not (libvirtd_available() and qemu_available()),
                                 reason="libvirtd or qemu-system-x86_64 not installed")]

SAP = "KVM_KVMRedirectionSAP"

GUEST = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    {graphics}
    <video><model type='cirrus'/></video>
    <memballoon model='none'/>
  </devices>
</domain>"""

VNC4 = "<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>"
SPICE4 = "<graphics type='spice' port='-1' autoport='yes' listen='127.0.0.1'/>"
VNC6 = "<graphics type='vnc' port='-1' autoport='yes' listen='::1'/>"


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def env():
    d = PrivateLibvirtd().start()
    conn = libvirt.open(d.uri("qemu"))
    server = None
    doms = []
    try:
        both = conn.defineXML(GUEST.format(name="con4", graphics=VNC4 + SPICE4))
        doms.append(both)
        v6 = conn.defineXML(GUEST.format(name="con6", graphics=VNC6))
        doms.append(v6)
        server = start_server(hosts=[d.uri("qemu")])
        yield d, conn, server.conn()
    finally:
        if server is not None:
            server.stop()
        for dom in doms:
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


def saps(cim, domain):
    """{devid-ish protocol: instance} of a domain's access points ('vnc', 'spice')."""
    out = {}
    for inst in cim.EnumerateInstances(SAP):
        if inst["SystemName"] == domain:
            out["vnc" if inst["KVMProtocol"] == 4 else "spice"] = inst
    return out


def live_ports(dom) -> dict[str, int]:
    root = etree.fromstring(dom.XMLDesc(0))
    return {g.get("type"): int(g.get("port")) for g in root.findall("devices/graphics")}


def wait_for(check, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: still {last!r} after {timeout} s")


def read_exactly(sock, n, timeout=30.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def spice_link(sock) -> bytes:
    """Send a SPICE link message for the main channel and return the reply's magic."""
    mess = struct.pack("<IBBIII", 0, 1, 0, 0, 0, 18)
    sock.sendall(b"REDQ" + struct.pack("<III", 2, 2, len(mess)) + mess)
    return read_exactly(sock, 4)


def _start(conn, name):
    dom = conn.lookupByName(name)
    try:
        dom.create()
    except libvirt.libvirtError as exc:
        if "spice" in str(exc).lower():
            pytest.skip(f"this QEMU cannot run a SPICE console: {exc}")
        raise
    return dom


def test_vnc_and_spice_on_ipv4_loopback(env):
    _d, conn, cim = env
    before = saps(cim, "con4")
    assert {k: (i["Name"], i["EnabledState"]) for k, i in before.items()} == \
        {"vnc": ("-1:-1", 3), "spice": ("spice:-1:-1", 3)}
    assert before["spice"]["OtherKVMProtocol"] == "SPICE"
    dom = _start(conn, "con4")
    try:
        ports = live_ports(dom)
        assert ports["vnc"] >= 5900 and ports["spice"] >= 5900
        now = saps(cim, "con4")
        vnc, spice = now["vnc"], now["spice"]
        # the ports libvirt assigned, listening without a session (Enabled but Offline)
        assert (vnc["Name"], vnc["ListenPort"], vnc["ListenAddress"], vnc["EnabledState"],
                vnc["IsIPv6Only"]) == (f"{ports['vnc']}:0", ports["vnc"], "127.0.0.1", 6,
                                       False)
        assert (spice["Name"], spice["ListenPort"], spice["EnabledState"]) == \
            (f"spice:{ports['spice']}:0", ports["spice"], 6)
        assert cim.GetInstance(vnc.path)["ListenPort"] == ports["vnc"]
        grasd = cim.GetInstance(CIMInstanceName(
            "KVM_GraphicsResourceAllocationSettingData", {"InstanceID": "con4/vnc"},
            namespace="root/virt"))
        assert grasd["Address"] == f"127.0.0.1:{ports['vnc']}"

        # the reported port is QEMU's real VNC listener: it speaks RFB
        with socket.create_connection(("127.0.0.1", int(vnc["ListenPort"])), timeout=30) as s:
            assert read_exactly(s, 12) == b"RFB 003.008\n"
            mine = s.getsockname()[1]
            active = wait_for(lambda: saps(cim, "con4")["vnc"]["EnabledState"] == 2 and
                              saps(cim, "con4")["vnc"], "VNC session not seen")
            assert active["Name"] == f"{ports['vnc']}:{mine}"
            assert cim.GetInstance(active.path)["EnabledState"] == 2
            # the host hosts it, the redirection service serves it
            host = cim.AssociatorNames(active.path, AssocClass="KVM_HostedAccessPoint")
            assert [p.classname for p in host] == ["KVM_HostSystem"]
            svc = cim.AssociatorNames(active.path, AssocClass="KVM_ServiceAccessBySAP")
            assert [p["Name"] for p in svc] == ["ConsoleRedirectionService"]
        wait_for(lambda: saps(cim, "con4")["vnc"]["EnabledState"] == 6,
                 "VNC session still reported after the client left")

        # and the SPICE port is QEMU's SPICE server: it answers a link message
        with socket.create_connection(("127.0.0.1", int(spice["ListenPort"])), timeout=30) as s:
            assert spice_link(s) == b"REDQ"
            wait_for(lambda: saps(cim, "con4")["spice"]["EnabledState"] == 2,
                     "SPICE session not seen")
    finally:
        dom.destroy()
    after = saps(cim, "con4")
    assert {k: (i["Name"], i["EnabledState"]) for k, i in after.items()} == \
        {"vnc": ("-1:-1", 3), "spice": ("spice:-1:-1", 3)}


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
def test_vnc_on_ipv6_loopback(env):
    _d, conn, cim = env
    dom = _start(conn, "con6")
    try:
        port = live_ports(dom)["vnc"]
        vnc = saps(cim, "con6")["vnc"]
        assert (vnc["ListenAddress"], vnc["ListenPort"], vnc["IsIPv6Only"],
                vnc["EnabledState"]) == ("::1", port, True, 6)
        grasd = cim.GetInstance(CIMInstanceName(
            "KVM_GraphicsResourceAllocationSettingData", {"InstanceID": "con6/vnc"},
            namespace="root/virt"))
        assert (grasd["Address"], grasd["IsIPv6Only"]) == (f"[::1]:{port}", True)
        dc = cim.GetInstance(CIMInstanceName("KVM_DisplayController", {
            "SystemCreationClassName": "KVM_ComputerSystem", "SystemName": "con6",
            "CreationClassName": "KVM_DisplayController", "DeviceID": "con6/vnc"},
            namespace="root/virt"))
        assert dc["VideoProcessor"] == f"vnc/[::1]:{port}"
        with socket.create_connection(("::1", port), timeout=30) as s:
            assert read_exactly(s, 12) == b"RFB 003.008\n"
            wait_for(lambda: saps(cim, "con6")["vnc"]["EnabledState"] == 2,
                     "IPv6 VNC session not seen")
    finally:
        dom.destroy()
