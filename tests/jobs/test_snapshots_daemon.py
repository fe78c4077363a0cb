"""Reading snapshots through a libvirt daemon (issue 13 figures): every libvirt call is a
round trip, so the snapshots' XML is asked for several calls at a time (no more than
libvirtd serves one client at once), and the answers are those of one call after the
other.  A private libvirtd serves the test driver with a node of guests with snapshots."""

from __future__ import annotations

import os

import libvirt
import pytest
from lxml import etree

from kvm_providers import virt
from kvm_providers.config import Config
from kvm_providers.provider import request_scope
from kvm_providers.virt import snapshots as vsnap
from tests.fixtures.generate import _NODE_HEAD, bench_domain_xml
from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available
from tests.support.libvirt_calls import track_in_flight

pytestmark = [pytest.mark.libvirtd,
              pytest.mark.skipif(not libvirtd_available(), reason="libvirtd not installed")]

#: guest index -> its snapshots (a chain); guests 1 and 4 have none
SNAPS = {0: ["s0", "s1", "s2", "s3", "s4"], 2: ["a", "b"], 3: ["only"], 5: ["x", "y", "z"]}
GUESTS = 7


def _guest(i: int) -> str:
    xml = bench_domain_xml(i, state=1)
    if i not in SNAPS:
        return xml
    plain = xml.replace("<test:runstate>1</test:runstate>", "").replace(
        " xmlns:test='http://libvirt.org/schemas/domain/test/1.0'", "")
    names = SNAPS[i]
    snaps = "".join(
        f"<test:domainsnapshot><name>{n}</name><state>running</state>"
        f"{f'<parent><name>{names[k - 1]}</name></parent>' if k else ''}"
        f"<creationTime>{1700000000 + k}</creationTime>{plain}"
        f"<active>{1 if k == len(names) - 1 else 0}</active></test:domainsnapshot>"
        for k, n in enumerate(names))
    head, _sep, tail = xml.rpartition("</domain>")
    return f"{head}{snaps}</domain>{tail}"


@pytest.fixture(scope="module")
def daemon():
    d = PrivateLibvirtd().start()
    path = os.path.join(d.workdir, "snapshots.xml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(_NODE_HEAD + "".join(_guest(i) + "\n" for i in range(GUESTS)) + "</node>\n")
    os.chmod(path, 0o644)
    d.node_uri = f"test+unix://{path}?socket={d.socket}"
    yield d
    d.stop()
    d.cleanup()


@pytest.fixture
def host(daemon):
    cfg = Config()
    cfg.add_host(daemon.node_uri, None, None)
    mgr = virt.configure(cfg.effective_hosts())
    assert mgr.wait_connected(20)
    yield mgr.for_family("KVM")[0]
    virt.shutdown()


@pytest.fixture
def in_flight(monkeypatch):
    """The most getXMLDesc calls of snapshots seen running at once (each made to last
    a little, so that calls made side by side overlap whatever the machine's load)."""
    return track_in_flight(monkeypatch, [(libvirt.virDomainSnapshot, "getXMLDesc")], 0.05)


def _expected(daemon) -> dict[str, list[tuple[str, bool, bytes]]]:
    """{guest: [(name, current, c14n of its definition)]}, one call after the other."""
    conn = libvirt.open(daemon.node_uri)
    try:
        out = {}
        for dom in conn.listAllDomains():
            snaps = dom.listAllSnapshots(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL)
            if not snaps:
                continue
            cur = dom.snapshotCurrent(0).getName()
            out[dom.name()] = [
                (s.getName(), s.getName() == cur,
                 etree.tostring(etree.fromstring(s.getXMLDesc(
                     libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE)).find("domain"), method="c14n"))
                for s in snaps]
        return out
    finally:
        conn.close()


def _seen(ref_snaps) -> list[tuple[str, bool, bytes]]:
    return [(s.name, s.current, etree.tostring(s.domain, method="c14n")) for s in ref_snaps]


def test_an_enumeration_reads_several_domains_snapshots_at_once(daemon, host, in_flight):
    want = _expected(daemon)
    assert sorted(want) == sorted(f"guest{i:04d}" for i in SNAPS)
    in_flight.update(most=0, calls=0)
    with request_scope():
        got = {ref.name: _seen(snaps) for ref, snaps in
               vsnap.iter_snapshots(virt.list_domains(host), release=True)}
    assert got == want
    assert in_flight["calls"] == sum(len(v) for v in SNAPS.values())
    # several at once, never more than libvirtd serves one client at a time (5)
    assert 1 < in_flight["most"] <= vsnap.SNAPSHOT_READ_AHEAD < 5


def test_one_domains_snapshots_are_read_several_at_once(daemon, host, in_flight):
    want = _expected(daemon)["guest0000"]
    in_flight.update(most=0, calls=0)
    with request_scope():
        ref = next(r for r in virt.list_domains(host) if r.name == "guest0000")
        got = _seen(vsnap.list_snapshots(ref))
    assert got == want and in_flight["calls"] == len(want)
    assert 1 < in_flight["most"] <= vsnap.SNAPSHOT_READ_AHEAD
