"""Domains a connection has looked up by name, remembered (issue 16, stop 23): an
AssociatorNames of a system looked up before reads its XML by the remembered domain's
UUID, one libvirt call instead of the lookup and the read, and only while the XML it
reads still names that domain with the remembered id.  The device list made from an XML
text is kept with it: the same text read again is not parsed again.  Counted, not timed;
a renamed, replaced, edited, started or stopped domain answers as a fresh lookup and
parse do.
"""

from __future__ import annotations

import os
import signal
import time

import libvirt
import pytest
from pywbem import CIMError, CIMInstanceName

from kvm_providers import virt
from kvm_providers.virt import devicelist
from kvm_providers.virt.scope import request_scope
from kvm_providers.virt import domain as domain_module
from kvm_providers.virt import link as link_module
from tests.fixtures.generate import bench_domain_xml
from tests.support.libvirt_calls import count_libvirt_calls

from .harness import Harness

VIRT = "root/virt"
SD = "KVM_SystemDevice"


def _cs(name: str) -> CIMInstanceName:
    return CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                  "Name": name}, namespace=VIRT)


def _calls(monkeypatch):
    return count_libvirt_calls(monkeypatch, {
        libvirt.virConnect: ("lookupByName", "lookupByUUIDString", "listAllDomains"),
        libvirt.virDomain: ("state", "hasManagedSaveImage", "XMLDesc", "info")},
        qualified=True)


def _answer(h: Harness, name: str) -> list[str]:
    return sorted(str(p) for p in h.AssociatorNames(_cs(name), SD))


def _fresh(h: Harness, name: str) -> list[str]:
    """The answer with nothing remembered (what the code before stop 23 answered)."""
    for link in _links():
        link.known.clear()
    devicelist._kept.clear()
    return _answer(h, name)


def _parses(monkeypatch) -> dict:
    """Counts the domain documents made (lxml parses of a domain's XML)."""
    made = {"docs": 0}
    real = domain_module.DomainXML.__init__

    def counting(self, *args, **kwargs):
        made["docs"] += 1
        real(self, *args, **kwargs)
    monkeypatch.setattr(domain_module.DomainXML, "__init__", counting)
    return made


def _links() -> list:
    return [link_module.link_of(host.conn()) for host in virt.manager().hosts]


@pytest.mark.libvirtd
def test_associators_of_a_system_looked_up_before_are_one_call(layer, daemon, monkeypatch):
    """The second AssociatorNames SystemDevice of a system (and the first after its
    GetInstance) asks libvirtd one thing: the XML, by the domain the earlier lookup
    returned (two calls before: lookupByName and XMLDesc); the answers are the same."""
    layer(daemon.uri("qemu"))
    h = Harness()
    first = _answer(h, "guest0000")
    h.GetInstance(_cs("guest0001"))
    calls = _calls(monkeypatch)
    again = _answer(h, "guest0000")
    assert dict(calls) == {"virDomain.XMLDesc": 1}
    calls.clear()
    other = _answer(h, "guest0001")
    assert dict(calls) == {"virDomain.XMLDesc": 1}
    assert first == again and len(first) >= 10
    assert other == _fresh(h, "guest0001") and other != first


@pytest.mark.libvirtd
def test_a_renamed_or_replaced_domain_is_looked_up_again(layer, daemon, monkeypatch):
    """A remembered domain renamed meanwhile no longer answers for its old name (the XML
    names it otherwise): looked up again, CIM_ERR_NOT_FOUND as without the memory; its
    new name answers; a new domain defined under the old name (another UUID) answers
    for it, as a fresh lookup finds it."""
    layer(daemon.uri("qemu"))
    lv = libvirt.open(daemon.uri("qemu"))
    made = []
    try:
        for i, name in ((40, "stop23-a"), (41, "stop23-c")):
            made.append(lv.defineXML(bench_domain_xml(i, name=name, dtype="qemu",
                                                      image_dir=daemon.workdir)))
        h = Harness()
        before = _answer(h, "stop23-a")
        assert any("stop23-a" in p for p in before)
        made[0].rename("stop23-b", 0)
        calls = _calls(monkeypatch)
        with pytest.raises(CIMError) as exc:
            h.AssociatorNames(_cs("stop23-a"), SD)
        assert exc.value.status_code == 6          # CIM_ERR_NOT_FOUND
        assert calls["virConnect.lookupByName"] >= 1
        renamed = _answer(h, "stop23-b")
        assert renamed == [p.replace("stop23-a", "stop23-b") for p in before]
        # The old name again, now a domain of another shape (and UUID): found afresh.
        made.append(lv.defineXML(bench_domain_xml(42, name="stop23-a", dtype="qemu",
                                                  image_dir=daemon.workdir)
                                 .replace("<devices>", "<devices><watchdog model='i6300esb'/>")))
        assert made[-1].UUIDString() != made[0].UUIDString()
        _answer(h, "stop23-c")
        calls.clear()
        now = _answer(h, "stop23-a")
        assert calls["virConnect.lookupByName"] == 1
        assert now == _fresh(h, "stop23-a") and now != before
    finally:
        for dom in made:
            try:
                dom.undefine()
            except libvirt.libvirtError:
                pass
        lv.close()


@pytest.mark.libvirtd
def test_a_started_or_stopped_domain_is_looked_up_again(layer, daemon, monkeypatch):
    """The remembered domain object carries the id of its lookup (-1: not running,
    which the state of a GetInstance takes from it): a domain started or stopped since
    is looked up again (the XML's id differs), so the request's lookup is what a fresh
    lookup returns.  The test driver behind the same daemon starts domains at once."""
    uri = daemon.uri("test")
    lv = libvirt.open(uri)    # kept open: the daemon's test:///default lives while held
    dom = lv.defineXML(bench_domain_xml(43, name="stop23-run", dtype="test"))
    try:
        layer(uri)
        h = Harness()
        assert _answer(h, "stop23-run")
        assert h.GetInstance(_cs("stop23-run"))["EnabledState"] == 3
        dom.create()
        calls = _calls(monkeypatch)
        _answer(h, "stop23-run")
        assert calls["virConnect.lookupByName"] == 1     # the XML has an id now
        assert h.GetInstance(_cs("stop23-run"))["EnabledState"] == 2
        calls.clear()
        _answer(h, "stop23-run")
        assert dict(calls) == {"virDomain.XMLDesc": 1}   # known again, with its id
        dom.destroy()
        calls.clear()
        _answer(h, "stop23-run")
        assert calls["virConnect.lookupByName"] == 1
        assert h.GetInstance(_cs("stop23-run"))["EnabledState"] == 3
    finally:
        try:
            dom.destroy()
        except libvirt.libvirtError:
            pass
        dom.undefine()
        lv.close()


@pytest.mark.libvirtd
def test_the_same_xml_read_again_is_not_parsed_again(layer, daemon, monkeypatch):
    """AssociatorNames SystemDevice of a domain whose XML is the same text as the last
    time parses no domain document (one per request before) and answers the same; an
    edited domain (a device more) is parsed again and answers its new device list, as a
    fresh parse does; another domain's list is its own."""
    layer(daemon.uri("qemu"))
    lv = libvirt.open(daemon.uri("qemu"))
    dom = lv.defineXML(bench_domain_xml(44, name="stop23-edit", dtype="qemu",
                                        image_dir=daemon.workdir))
    try:
        h = Harness()
        first = _answer(h, "stop23-edit")
        made = _parses(monkeypatch)
        assert _answer(h, "stop23-edit") == first
        assert made["docs"] == 0
        other = _answer(h, "guest0000")
        assert made["docs"] == 1 and other != first
        made["docs"] = 0
        assert _answer(h, "guest0000") == other and made["docs"] == 0
        lv.defineXML(dom.XMLDesc(0).replace(
            "</devices>", "<watchdog model='i6300esb' action='reset'/></devices>"))
        edited = _answer(h, "stop23-edit")
        assert made["docs"] == 1
        assert len(edited) == len(first) + 1 and any("watchdog" in p.lower() for p in edited)
        assert edited == _fresh(h, "stop23-edit")
        made["docs"] = 0
        assert _answer(h, "stop23-edit") == edited and made["docs"] == 0
    finally:
        dom.undefine()
        lv.close()


@pytest.mark.libvirtd
def test_a_device_list_is_kept_only_from_the_text_it_was_made_of(layer, daemon):
    """A request that has a document of the domain read otherwise (fetched again,
    edited in place) beside the text read ahead answers that document's devices, and
    keeps nothing: the next request with the same text answers the text's own list."""
    mgr = layer(daemon.uri("qemu"))
    host = mgr.hosts[0]
    devicelist._kept.clear()
    with request_scope():
        ref = devicelist.read_ahead(host, "guest0000")
        assert ref is not None and domain_module.unparsed_xml(ref) is not None
        [doc] = list(domain_module.iter_domain_xml([ref]))      # another read of it
        assert domain_module.unparsed_xml(ref) is None
        devices = doc.root.find("devices")
        devices.remove(devices.find("interface"))               # edited in place
        doc.invalidate()
        edited = devicelist.domain_devices(host, "guest0000")
    assert devicelist._kept == {}
    with request_scope():
        devicelist.read_ahead(host, "guest0000")
        fresh = devicelist.domain_devices(host, "guest0000")
    assert len(fresh) == len(edited) + 1
    with request_scope():
        devicelist.read_ahead(host, "guest0000")
        kept = devicelist.domain_devices(host, "guest0000")
    assert [(d.kind, d.devid) for d in kept] == [(d.kind, d.devid) for d in fresh]


@pytest.mark.libvirtd
def test_a_remembered_domain_on_a_hung_daemon_fails_within_the_deadline(layer, daemon):
    """The one call of a remembered domain's AssociatorNames keeps the host's deadline:
    with the daemon frozen the request fails with CIM_ERR_FAILED within hang_timeout
    (and some slack), the process lives, and the request succeeds once it is back."""
    hang = 2.0
    layer(daemon.uri("qemu"), hang_timeout=hang)
    h = Harness()
    before = _answer(h, "guest0000")
    assert _answer(h, "guest0000") == before         # remembered: XMLDesc alone
    os.kill(daemon.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises(CIMError) as exc:
            h.AssociatorNames(_cs("guest0000"), SD)
        took = time.monotonic() - t0
    finally:
        os.kill(daemon.pid, signal.SIGCONT)
    assert exc.value.status_code == 1 and took < hang + 8.0, (exc.value, took)
    deadline = time.monotonic() + 30
    while True:
        try:
            assert _answer(h, "guest0000") == before
            break
        except CIMError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_names_domain_reads_the_name_and_id_libvirt_writes():
    """What the check of a remembered domain accepts: libvirt's live XML of exactly that
    name and id (none for a domain that is not running)."""
    run = "<domain type='kvm' id='7'>\n  <name>web</name>\n  <uuid>x</uuid>\n</domain>"
    off = "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>" \
          "\n  <name>web</name>\n</domain>"
    assert link_module.names_domain(run, "web", 7)
    assert not link_module.names_domain(run, "web", 8) and not link_module.names_domain(run, "web", -1)
    assert link_module.names_domain(off, "web", -1) and not link_module.names_domain(off, "web", 7)
    assert not link_module.names_domain(run, "we", 7) and not link_module.names_domain(run, "web2", 7)
    assert not link_module.names_domain(off.replace("<name>web", "<title>t</title><name>web"), "web", -1)
    assert not link_module.names_domain("", "web", -1) and not link_module.names_domain("<domain>", "web", -1)


class _Host:
    label = "h"
    uri = "qemu+unix:///session"
    hang_timeout = 60.0

    def _dispose_later(self, link):
        pass


def test_a_link_forgets_its_domains_when_retired_and_keeps_a_bounded_number():
    """Remembered domain objects hold the connection open: a retired link drops them
    (and remembers none after), and a link keeps at most KNOWN_DOMAINS, the oldest
    forgotten first."""
    link = link_module.Link(_Host(), None, 1)  # type: ignore[arg-type]
    n = link_module.KNOWN_DOMAINS
    for i in range(n + 3):
        link.remember_domain(f"d{i}", object())
    assert len(link.known) == n
    assert link.known_domain("d0") is None and link.known_domain(f"d{n + 2}") is not None
    link.forget_domain(f"d{n + 2}")
    assert link.known_domain(f"d{n + 2}") is None
    link.retire("gone")
    assert link.known == {}
    link.remember_domain("late", object())
    assert link.known_domain("late") is None
    fresh = link_module.Link(_Host(), None, 2)  # type: ignore[arg-type]
    fresh.remember_domain("a&b", object())
    assert fresh.known == {}       # written "a&amp;b" in its XML: never remembered
