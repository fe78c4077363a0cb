"""VSSD enumerations without the domains' devices (issue 16, virt.domain_facts): the
tree parsed with ``<devices>`` cut down to the children the wanted fields read must read
every VSSD field as the whole tree does, for every PropertyList, and be the whole tree
but for the devices left out - over the fixture domains, libvirt's formatting of them and
hand-written texts that a textual cut could get wrong (comments, CDATA, processing
instructions, an empty or no ``<devices>``, '<devices>' in text and attributes, a
``<devices>`` nested in ``<metadata>``, the emulator not first).  Through the providers,
the enumerations answer the same items with the shortcut and with full parses."""

from __future__ import annotations

import os
from typing import Optional

import libvirt
import pytest
from lxml import etree

from kvm_providers.cimxml import writer as W
from kvm_providers.model.vssd import VSSD
from kvm_providers.providers import virtual_system_settings as vssd_module
from kvm_providers.virt import domain_facts as F
from kvm_providers.virt.mapping import AttrList, View
from kvm_providers.virt.query import parse_xml
from tests.fixtures.generate import bench_domain_xml, node_xml

from .test_cost import _operations

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "fixtures")
VIRT = "root/virt"

_HEAD = """<domain type='kvm'>
  <name>odd</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  DESCRIPTION
  <memory unit='KiB'>524288</memory>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='cdrom'/><boot dev='hd'/>
  </os>
  <features><acpi/><pae/></features>
  <clock offset='localtime'/>
  <on_poweroff>preserve</on_poweroff>
  <on_crash>coredump-restart</on_crash>
"""
_DEVICES = """  <devices>
    <emulator>/usr/bin/qemu-kvm</emulator>
    <disk type='file' device='disk'><source file='/i/odd.img'/><target dev='vda'/></disk>
    <interface type='network'><source network='default'/></interface>
  </devices>
"""

#: (what, text): texts a naive cut of '<devices>' ... '</devices>' gets wrong.
ODD = [
    ("plain", _HEAD.replace("DESCRIPTION", "<description>x</description>") + _DEVICES
     + "</domain>"),
    ("no devices", _HEAD.replace("DESCRIPTION", "") + "</domain>"),
    ("empty devices", _HEAD.replace("DESCRIPTION", "") + "  <devices/>\n</domain>"),
    ("empty devices pair", _HEAD.replace("DESCRIPTION", "") + "  <devices></devices>\n"
     "</domain>"),
    ("escaped text", _HEAD.replace("DESCRIPTION", "<description>&lt;devices&gt;"
                                   "&lt;/devices&gt;</description>") + _DEVICES
     + "</domain>"),
    ("attribute", _HEAD.replace("DESCRIPTION", "<title a='&lt;devices>'>t</title>")
     + _DEVICES + "</domain>"),
    ("attribute gt", _HEAD.replace("DESCRIPTION",
                                   "<title a='&lt;/devices>'>&lt;/devices></title>")
     + _DEVICES + "</domain>"),
    ("comment before", _HEAD.replace("DESCRIPTION", "<!-- <devices> -->")
     .replace("<on_crash>coredump-restart</on_crash>", "<!-- </devices> -->"
              "<on_crash>coredump-restart</on_crash>") + _DEVICES + "</domain>"),
    ("comment inside", _HEAD.replace("DESCRIPTION", "") + _DEVICES.replace(
        "<disk", "<!-- </devices><on_crash>destroy</on_crash><devices> --><disk")
     + "</domain>"),
    ("cdata", _HEAD.replace("DESCRIPTION", "<description><![CDATA[<devices>"
                                           "<emulator>/cdata</emulator></devices>]]>"
                                           "</description>") + _DEVICES + "</domain>"),
    ("pi", _HEAD.replace("DESCRIPTION", "<?pi <devices> ?>") + _DEVICES + "</domain>"),
    ("metadata devices", _HEAD.replace(
        "DESCRIPTION", "<metadata><app xmlns='urn:x'><devices><emulator>/meta</emulator>"
        "</devices></app></metadata>") + _DEVICES + "</domain>"),
    ("metadata devices only", _HEAD.replace(
        "DESCRIPTION", "<metadata><app xmlns='urn:x'><devices><emulator>/meta</emulator>"
        "</devices></app></metadata>") + "</domain>"),
    ("emulator later", _HEAD.replace("DESCRIPTION", "") + _DEVICES.replace(
        "    <emulator>/usr/bin/qemu-kvm</emulator>\n", "") .replace(
        "</devices>", "<emulator>/late</emulator></devices>") + "</domain>"),
    ("emulator twice", _HEAD.replace("DESCRIPTION", "") + _DEVICES.replace(
        "</devices>", "<emulator>/second</emulator></devices>") + "</domain>"),
    ("emulator empty", _HEAD.replace("DESCRIPTION", "") + _DEVICES.replace(
        "<emulator>/usr/bin/qemu-kvm</emulator>", "<emulator/>") + "</domain>"),
    ("nested devices", _HEAD.replace("DESCRIPTION", "") + _DEVICES.replace(
        "<disk", "<x><devices/></x><disk") + "</domain>"),
    ("nested devices pair", _HEAD.replace("DESCRIPTION", "") + _DEVICES.replace(
        "<disk", "<x><devices><emulator>/n</emulator></devices></x><disk") + "</domain>"),
    ("devices attribute", _HEAD.replace("DESCRIPTION", "") + _DEVICES.replace(
        "<devices>", "<devices a='1'>") + "</domain>"),
    ("prolog", "<?xml version='1.0'?>\n" + _HEAD.replace("DESCRIPTION", "") + _DEVICES
     + "</domain>"),
    ("after devices", _HEAD.replace("DESCRIPTION", "").replace(
        "  <on_crash>coredump-restart</on_crash>\n", "") + _DEVICES
     + "  <on_crash>coredump-restart</on_crash>\n  <!-- <devices> -->\n</domain>"),
]

@pytest.fixture(autouse=True)
def cut_all(monkeypatch):
    """Every <devices>, however small, cut where exact (the texts here are small)."""
    monkeypatch.setattr(F, "MIN_CUT", 0)


#: PropertyLists of the VSSD (None: every property).
PLISTS: list[Optional[list[str]]] = [None, ["Emulator"], ["ElementName", "ClockOffset"],
                                     ["BootDevices", "Emulator", "UUID"], []]


def _wanted(plist):
    return list(VSSD) if plist is None else [n for n in plist if n in VSSD]


def _canon(el) -> str:
    """The tree's text with whitespace-only text and tails dropped (the cut keeps the
    kept children's own text but not the whitespace around the devices left out)."""
    el = etree.fromstring(etree.tostring(el))
    for node in el.iter():
        if node.text is not None and not node.text.strip():
            node.text = None
        if node.tail is not None and not node.tail.strip():
            node.tail = None
    return etree.tostring(el, encoding="unicode")


def _pruned(full, keep) -> str:
    """`full` with its top-level <devices> holding only the leading children of `keep`."""
    full = etree.fromstring(etree.tostring(full))
    dev = full.find("devices")
    if dev is not None:
        leading = True
        for child in list(dev):
            leading = leading and child.tag in keep
            if not leading:
                dev.remove(child)
    return _canon(full)


def _check(text: str, where: str) -> bool:
    """The partial tree of `text` reads every VSSD field as the whole tree, for every
    PropertyList, and is the whole tree or the pruned one; True if a cut was made."""
    full = parse_xml(text)
    cut = False
    for plist in PLISTS:
        names = _wanted(plist)
        keep = F.devices_needed(VSSD, names)
        assert keep is not None, plist
        part = F.parse_without_devices(text, keep)
        for name in names:
            want, got = VSSD[name].read(full), VSSD[name].read(part)
            assert type(got) is type(want) and got == want, (where, plist, name, got, want)
            # ... and so do the compiled reads the enumerations use, through a View.
            got = VSSD[name].reader()(View(part), None)
            assert type(got) is type(want) and got == want, (where, plist, name, got, want)
        made = _canon(part) != _canon(full)
        assert not made or _canon(part) == _pruned(full, keep), (where, plist)
        cut = cut or made
    return cut


@pytest.mark.parametrize("what,text", ODD, ids=[w for w, _ in ODD])
def test_odd_texts_read_as_whole(what, text):
    """Each hand-written text: the same values, the same tree but the devices left out."""
    _check(text, what)


def test_the_cut_is_made_where_exact():
    """libvirt's form is cut (else the shortcut would save nothing); where the cut text
    could go wrong it is not made, or its tree is refused (the whole text parsed)."""
    keep = frozenset({"emulator"})
    texts = dict(ODD)
    cut = {what: F.cut_devices(text, keep) is not None for what, text in ODD}
    assert cut["plain"] and cut["escaped text"] and cut["attribute"], cut
    assert cut["empty devices"] and cut["empty devices pair"], cut
    assert not cut["no devices"] and not cut["comment inside"], cut
    assert not cut["nested devices"] and not cut["nested devices pair"], cut
    assert not cut["devices attribute"], cut
    assert not cut["emulator later"] and not cut["emulator twice"], cut
    for what in ("comment before", "cdata", "pi", "metadata devices",
                 "metadata devices only"):
        whole = parse_xml(texts[what])
        assert _canon(F.parse_without_devices(texts[what], keep)) == _canon(whole), what


def test_small_devices_are_not_cut(monkeypatch):
    """Below MIN_CUT characters of <devices> the whole text is parsed (cheaper)."""
    monkeypatch.setattr(F, "MIN_CUT", 1024)
    text = dict(ODD)["plain"]
    assert F.cut_devices(text) is None
    assert F.cut_devices(text.replace("</devices>", " " * 1024 + "</devices>")
                         ) is not None


def test_boot_order_reads_as_iterfind():
    """AttrList's compiled read (each parent's children through lxml's tag filter, no
    ElementPath) reads what iterfind reads: every parent in document order, children of
    other namespaces, comments and boots without the attribute left out."""
    el = parse_xml("<domain xmlns:x='urn:x'><os><boot dev='a'/><x:boot dev='no'/><!-- c -->"
                   "<boot/><boot dev='c'/></os><x:os><boot dev='no'/></x:os>"
                   "<os><boot dev='d'/></os></domain>")
    for f in (AttrList("os/boot", "dev"), VSSD["BootDevices"], VSSD["BootDevice"]):
        for target in (el, View(el)):
            assert f.reader()(target, None) == f.read(el)
    assert VSSD["BootDevices"].reader()(View(el), None) == ["a", "c", "d"]
    assert VSSD["BootDevice"].reader()(View(el), None) == "a"
    none = parse_xml("<domain><os><type>hvm</type></os></domain>")
    assert VSSD["BootDevices"].reader()(View(none), None) is None
    assert VSSD["BootDevice"].reader()(none, None) is None


def test_needed_devices_follow_the_table():
    """Derived from the table's paths: the emulator only when Emulator is wanted, and
    an unknown computed field or a path below a device means the whole tree."""
    from kvm_providers.virt.mapping import Computed, Text
    assert F.devices_needed(VSSD, list(VSSD)) == {"emulator"}
    assert F.devices_needed(VSSD, ["ElementName", "AutoStart"]) == frozenset()
    assert F.devices_needed({"X": Computed(lambda el, ctx: None)}, ["X"]) is None
    assert F.devices_needed({"X": Text("devices/disk/source")}, ["X"]) is None
    assert F.devices_needed({"X": Text("devices")}, ["X"]) is None
    assert F.devices_needed({"X": Text(".//emulator")}, ["X"]) is None


def _domain_texts(uri: str) -> list[str]:
    conn = libvirt.open(uri)
    try:
        out = []
        for dom in conn.listAllDomains():
            out.append(dom.XMLDesc(0))
            out.append(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        return out
    finally:
        conn.close()


@pytest.fixture(params=["node_devices.xml", "corpus.xml", "bench"])
def node(request, tmp_path) -> str:
    if request.param == "bench":
        extra = [bench_domain_xml(100 + i, name=f"qemu{i}", dtype="qemu") for i in range(3)]
        extra += [text.replace("odd", f"odd{i}").replace("4dea22b3", f"{i:08x}")
                  for i, (what, text) in enumerate(ODD)
                  if what in ("plain", "escaped text", "metadata devices", "empty devices")]
        path = tmp_path / "node.xml"
        path.write_text(node_xml(6, extra), encoding="utf-8")
        return str(path)
    return os.path.join(FIXTURES, request.param)


def test_fixture_domains_read_as_whole(node):
    """libvirt's own text of every fixture domain (live and inactive)."""
    texts = _domain_texts("test://" + node)
    assert texts
    assert sum(_check(t, t[:60]) for t in texts) > 0


def _count_cut_parses(monkeypatch) -> list:
    """The texts parse_without_devices is given from now on (it still parses them)."""
    parsed: list = []
    real = F.parse_without_devices

    def counting(text, keep=frozenset()):
        parsed.append(text)
        return real(text, keep)
    monkeypatch.setattr(F, "parse_without_devices", counting)
    return parsed


def test_enumerations_answer_as_full_parses(layer, node, monkeypatch):
    """The VSSD enumerations (direct and model paths, every PropertyList) with the
    shortcut answer what they answer with full parses."""
    ops = _operations(layer, "test://" + node)
    form = W.InstanceForm("VALUE.NAMEDINSTANCE", VIRT, None, False)
    parsed = _count_cut_parses(monkeypatch)

    def answers():
        out = []
        for plist in PLISTS + [["NoSuchProperty", "AutoStart"]]:
            out.append(list(ops.enum_instances_xml(VIRT, "KVM_VirtualSystemSettingData",
                                                   plist, True, None, form)))
            out.append([form.of_instance(i, None) for i in
                        ops.enum_instances(VIRT, "KVM_VirtualSystemSettingData", plist)])
        return out
    new = answers()
    assert parsed, "the shortcut was not taken"
    monkeypatch.setattr(vssd_module, "facts_parser", lambda table, names: None)
    old = answers()
    assert new == old
    assert sum(len(x) for x in new) > 10


def test_snapshot_enumerations_answer_as_full_parses(layer, tmp_path, monkeypatch):
    """The snapshot VSSD enumerations (snapshots sharing their guest's definition and
    snapshots with definitions of their own; direct and model paths, every
    PropertyList) with the shortcut answer what they answer with full parses."""
    from kvm_providers.providers import snapshot_settings
    from tests.fixtures.generate import _NODE_HEAD

    from .test_cost import _GUESTS, _guest
    path = tmp_path / "snapshots.xml"
    path.write_text(_NODE_HEAD + "".join(_guest(i) + "\n" for i in range(_GUESTS))
                    + "</node>\n", encoding="utf-8")
    ops = _operations(layer, f"test://{path}")
    form = W.InstanceForm("VALUE.NAMEDINSTANCE", VIRT, None, False)
    cls = "KVM_VirtualSystemSnapshotSettingData"
    parsed = _count_cut_parses(monkeypatch)

    def answers():
        out = []
        for plist in PLISTS + [["IsCurrent", "Emulator", "CreationTime"]]:
            out.append(list(ops.enum_instances_xml(VIRT, cls, plist, True, None, form)))
            out.append([form.of_instance(i, None)
                        for i in ops.enum_instances(VIRT, cls, plist)])
        return out
    new = answers()
    assert parsed, "the shortcut was not taken"
    monkeypatch.setattr(snapshot_settings, "facts_parser", lambda table, names: None)
    old = answers()
    assert new == old
    assert sum(len(x) for x in new) > 50


@pytest.mark.libvirtd
def test_enumerations_through_a_daemon_answer_as_full_parses(layer, monkeypatch):
    """Through a private libvirtd (fetched ahead on the connection's helper, libvirtd's
    completed definitions): the same VSSD items with the shortcut and without."""
    from .test_cost import _bench_daemon
    with _bench_daemon(12, lambda i: (i + 1) << 20) as (d, _lv, _pool):
        ops = _operations(layer, d.uri("qemu"))
        form = W.InstanceForm("VALUE.NAMEDINSTANCE", VIRT, None, False)
        cut = []
        real = F.cut_devices

        def counting(text, keep=frozenset()):
            out = real(text, keep)
            cut.append(out is not None)
            return out
        monkeypatch.setattr(F, "cut_devices", counting)

        def answers():
            return [list(ops.enum_instances_xml(VIRT, "KVM_VirtualSystemSettingData",
                                                plist, True, None, form))
                    for plist in PLISTS]
        new = answers()
        assert any(cut), "no definition was cut"
        monkeypatch.setattr(F, "MIN_CUT", 10 ** 9)
        old = answers()
        assert new == old
        assert sum(len(x) for x in new) >= 12 * 4
