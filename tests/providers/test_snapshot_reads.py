"""Reading the snapshots of many domains (issue 13): the calls of one domain's snapshots
run in one counted section of the connection (``Host.submit``), on the raw libvirt
objects, not through a proxy call each - counted, not timed."""

from __future__ import annotations

import re
from collections import Counter

import libvirt
import pytest

from kvm_providers.provider import request_scope
from kvm_providers.virt import connection as connection_module
from kvm_providers.virt import link as link_module
from tests.fixtures.generate import _NODE_HEAD, bench_domain_xml
from tests.support.libvirt_calls import count_libvirt_calls

from .harness import Harness

VIRT = "root/virt"
GUESTS = 3


def _guest(i: int, snapshots: int) -> str:
    xml = bench_domain_xml(i, state=1 if i % 2 == 0 else 5)
    plain = re.sub(r"\s*<test:runstate>.*?</test:runstate>", "", xml)
    plain = plain.replace(" xmlns:test='http://libvirt.org/schemas/domain/test/1.0'", "")
    snaps = "".join(
        f"<test:domainsnapshot><name>s{s}</name><state>shutoff</state>"
        + (f"<parent><name>s{s - 1}</name></parent>" if s else "")
        + f"<creationTime>{1700000000 + s}</creationTime>{plain}"
        f"<active>{1 if s == snapshots - 1 else 0}</active></test:domainsnapshot>"
        for s in range(snapshots))
    head, _sep, tail = xml.rpartition("</domain>")
    return f"{head}{snaps}</domain>{tail}"


def _node(tmp_path, snapshots: int) -> str:
    path = tmp_path / f"snaps-{snapshots}.xml"
    path.write_text(_NODE_HEAD + "".join(_guest(i, snapshots) + "\n" for i in range(GUESTS))
                    + "</node>\n", encoding="utf-8")
    return f"test://{path}"


@pytest.fixture
def counted(monkeypatch) -> Counter:
    """Proxy calls (``Link.call``), counted sections (``Host.submit``) and the snapshot
    calls libvirt gets."""
    counter = count_libvirt_calls(monkeypatch, {
        libvirt.virDomain: ("listAllSnapshots", "snapshotCurrent"),
        libvirt.virDomainSnapshot: ("getXMLDesc",)}, qualified=True)
    real_call = link_module.Link.call
    real_submit = connection_module.Host.submit

    def call(self, func, /, *args, **kwargs):
        counter["proxy calls"] += 1
        return real_call(self, func, *args, **kwargs)

    def submit(self, func, *args, **kwargs):
        counter["sections"] += 1
        return real_submit(self, func, *args, **kwargs)
    monkeypatch.setattr(link_module.Link, "call", call)
    monkeypatch.setattr(connection_module.Host, "submit", submit)
    return counter


@pytest.mark.parametrize("snapshots", [2, 6])
def test_snapshot_enumeration_asks_no_proxy_call_per_snapshot(layer, tmp_path, counted,
                                                              snapshots):
    """EnumerateInstances of the snapshot VSSDs on the test driver: one counted section
    per domain (its listing, XML and current snapshot inside), each snapshot's XML asked
    once, and the proxy calls as few with 6 snapshots a guest as with 2."""
    layer(_node(tmp_path, snapshots))
    h = Harness(modules=None)     # every provider module, the snapshot ones too
    h.EnumerateInstances(VIRT, "KVM_VirtualSystemSnapshotSettingData")   # warm up
    counted.clear()
    with request_scope():
        got = h.EnumerateInstances(VIRT, "KVM_VirtualSystemSnapshotSettingData")
    assert len(got) == GUESTS * snapshots
    assert {i["InstanceID"] for i in got} == {
        f"KVM:guest{g:04d}/Snapshot/s{s}" for g in range(GUESTS) for s in range(snapshots)}
    assert counted["sections"] == GUESTS
    assert counted["virDomain.listAllSnapshots"] == GUESTS
    assert counted["virDomain.snapshotCurrent"] == GUESTS
    assert counted["virDomainSnapshot.getXMLDesc"] == GUESTS * snapshots
    # the domain listings of the request, nothing per snapshot or per domain
    assert counted["proxy calls"] <= 3, dict(counted)
