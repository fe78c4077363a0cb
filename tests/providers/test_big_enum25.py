"""The CPU per guest of large enumerations, stop 25 (issue 16: every RASD of 10,000
guests): an in-process driver's XML fetched in batches through the raw domain objects
(one count in the connection per batch, not the proxy's bookkeeping per domain), and a
RASD's item written by one compiled function (the key's frame before the rows, the
unset rest looked up in place).  Each is checked for its answer and guarded by a count
of the work it saves, not by a time."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable

import libvirt
import pytest

from kvm_providers import virt
from kvm_providers.cimxml import writer as W
from kvm_providers.config import HostConfig
from kvm_providers.virt.link import Link
from kvm_providers.virt.scope import request_scope

from tests.fixtures.generate import write_node
from tests.support.frames import python_frames

from .test_cost import _operations
from .test_direct import VIRT

#: More domains than two batches of the in-process fetch, and not a multiple of one.
_GUESTS = 70


@pytest.fixture
def big_host(tmp_path):
    """A test-driver host of _GUESTS benchmark guests, in this process."""
    node = write_node(str(tmp_path / "node.xml"), _GUESTS)
    mgr = virt.configure([HostConfig.make(f"test://{node}")])
    assert mgr.wait_connected(10)
    yield mgr.hosts[0]
    virt.shutdown()


def _counting(monkeypatch, cls: Any, name: str) -> list[int]:
    """Counts the calls of ``cls.name`` (in a one-item list)."""
    real = getattr(cls, name)
    box = [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        box[0] += 1
        return real(*args, **kwargs)
    monkeypatch.setattr(cls, name, counted)
    return box


def test_in_process_pass_fetches_in_batches_through_the_raw_objects(big_host, monkeypatch):
    """An in-process pass over every domain (iter_domain_xml in a request) enters the
    connection once per batch and makes no proxy call per domain (before: one Link.call,
    enter and leave per domain); the documents are libvirt's XML, in order, released
    after use with ``release``."""
    from kvm_providers.virt.domain import IN_PROCESS_BATCH, iter_domain_xml, list_domains
    host = big_host
    raw = {d.name(): d.XMLDesc(virt.domain.XML_FLAGS) for d in host.conn().listAllDomains(0)}
    with request_scope() as scope:
        refs = list_domains(host)
        assert len(refs) == _GUESTS
        before = set(scope)
        calls = _counting(monkeypatch, Link, "call")
        enters = _counting(monkeypatch, Link, "enter")
        docs = [(d.name, d.tostring()) for d in iter_domain_xml(refs, release=True)]
        assert calls[0] == 0
        assert enters[0] == math.ceil(_GUESTS / IN_PROCESS_BATCH)
        assert set(scope) == before                     # released
    assert [n for n, _t in docs] == [r.name for r in refs]
    from lxml import etree
    for name, text in docs:
        assert text == etree.tostring(etree.fromstring(raw[name].encode()), encoding="unicode")


def test_in_process_pass_with_documents_texts_and_vanished_domains(big_host, monkeypatch):
    """What the request has already is used (a document: the same object; a text read
    ahead unparsed: parsed, not fetched again); a domain gone since the listing is
    skipped; the documents stay in the request without ``release``."""
    from kvm_providers.virt.domain import (_text_key, domain_xml, iter_domain_xml,
                                           list_domains, unparsed_xml)
    host = big_host
    with request_scope() as scope:
        refs = list_domains(host)
        kept = domain_xml(refs[3])
        # What lookup_with_xml(parse=False) keeps (through a daemon only).
        text = host.conn().lookupByName(refs[40].name).XMLDesc(virt.domain.XML_FLAGS)
        scope[_text_key(refs[40], False)] = text.replace("<domain", "<domain kvmmark='1'", 1)
        gone = refs[50]
        dom = host.conn().lookupByName(gone.name)
        if dom.isActive():
            dom.destroy()
        dom.undefine()
        fetches = _counting(monkeypatch, libvirt.virDomain, "XMLDesc")
        docs = list(iter_domain_xml(refs))
        assert fetches[0] == _GUESTS - 2                # not refs[3]'s, not refs[40]'s
        assert docs[40].root.get("kvmmark") == "1"
        assert [d.name for d in docs] == [r.name for r in refs if r is not gone]
        assert docs[3] is kept
        assert unparsed_xml(refs[40]) is None
        left = [r for r in refs if r is not gone]
        assert all(domain_xml(r) is d for r, d in zip(left, docs, strict=True))
        assert len([k for k in scope if k[0] == "virt.xml"]) == _GUESTS - 1


def test_in_process_pass_raises_other_errors(big_host, monkeypatch):
    """A libvirt error other than a vanished domain fails the pass, translated (as the
    fetch one domain at a time did)."""
    from kvm_providers.virt.domain import iter_domain_xml, list_domains
    from kvm_providers.virt.errors import LibvirtFailed
    host = big_host
    with request_scope():
        refs = list_domains(host)
        victim = refs[33].name

        real = libvirt.virDomain.XMLDesc

        def xmldesc(self, flags=0):
            if self.name() == victim:
                raise libvirt.libvirtError("simulated failure")
            return real(self, flags)
        monkeypatch.setattr(libvirt.virDomain, "XMLDesc", xmldesc)
        seen = []
        with pytest.raises(LibvirtFailed):
            for doc in iter_domain_xml(refs):
                seen.append(doc.name)
        assert seen == [r.name for r in refs[:33]]


def _every_rasd(layer, node_uri) -> tuple[Callable[[], None], list[list[str]]]:
    """``run()`` enumerating every RASD of the node's guests, and the list of the items of
    each run."""
    ops = _operations(layer, node_uri)
    form = W.InstanceForm("VALUE.NAMEDINSTANCE", VIRT)
    out: list[list[str]] = []

    def run() -> None:
        out.append(list(ops.enum_instances_xml(VIRT, "CIM_ResourceAllocationSettingData",
                                               None, True, None, form)))
    return run, out


def test_rasd_items_written_by_one_call_each(layer, node_uri):
    """Every RASD of the fixture node: one compiled function call per item (before: the
    item writer's closure and then the compiled table writer), the unset rest's text
    looked up in place (before: a call of ``rest`` per item), the same answer twice."""
    run, out = _every_rasd(layer, node_uri)
    run()                                   # compiled, and the rests of its masks known
    frames = python_frames(run, (__file__,))
    items = out[-1]
    assert out[0] == items and len(items) > 20
    writers = sum(n for (f, q), n in frames.items()
                  if f.startswith("<table writer") and q.split(".")[-1] == "write")
    assert writers == len(items), frames
    assert not [k for k in frames if k[1].endswith(("<locals>.item", "<locals>.rest"))], frames


def test_one_item_string_lists_written_without_the_list(layer, node_uri):
    """HostResource and Connection (one-item lists of the disk's and the NIC's source) are
    written without a list or a test of its items per instance (before: a list, and the
    generator of ``all`` and the list comprehension of the general string array's lines
    per disk and NIC)."""
    run, out = _every_rasd(layer, node_uri)
    run()
    frames = python_frames(run, (__file__,))
    items = out[-1]
    assert out[0] == items
    assert sum("<PROPERTY.ARRAY NAME=\"HostResource\"" in i for i in items) > 2
    assert sum("<PROPERTY.ARRAY NAME=\"Connection\"" in i for i in items) > 2
    # The general lines' list comprehension runs once per string array written: only
    # AddressProperties and AddressValues (of a device with an <address>) are left.
    mine = [i for i in items if "KVM_DiskResourceAllocationSettingData" in i[:200]
            or "KVM_NetResourceAllocationSettingData" in i[:200]]
    arrays = sum('NAME="AddressProperties" TYPE="string"><VALUE.ARRAY>' in i for i in mine)
    comps = sum(n for (f, q), n in frames.items()
                if f.startswith(("<table writer KVM_Disk", "<table writer KVM_Net"))
                and q.endswith("<listcomp>"))
    assert len(mine) > arrays > 0
    assert comps == 2 * arrays, frames


def test_domain_prefix_escaped_once_per_domain(layer, tmp_path, monkeypatch):
    """The writers of one enumeration share the last escaped prefix: a domain's "<name>/"
    is escaped once, not once per RASD class (before: 7 times per benchmark guest);
    ``esc`` answers as before (texts that need nothing, escapes, characters XML cannot
    carry)."""
    from .test_big_enum24 import _enumerate_recompiled
    for t in ("", "plain/vda", "a&b<c>d", 'q"', "x\x01y", "\ufffe", "gäst/ß"):
        assert W.esc(t) == W._escape(t, W._ESC_TABLE)
    ops = _operations(layer, "test://" + write_node(str(tmp_path / "node.xml"), _GUESTS))
    real = W.esc
    seen: Counter = Counter()

    def esc(text: str) -> str:
        seen[text] += 1
        return real(text)
    monkeypatch.setattr(W, "esc", esc)
    items = _enumerate_recompiled(ops, monkeypatch)
    assert len(items) > 5 * _GUESTS
    prefixes = {t: n for t, n in seen.items() if t.startswith("guest") and t.endswith("/")}
    assert len(prefixes) == _GUESTS
    assert set(prefixes.values()) == {1}, prefixes
