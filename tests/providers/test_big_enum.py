"""The CPU per guest of large enumerations (issue 16, stop 23: every RASD of 10,000
guests): the item writer that writes a RASD's key and response item in one join, the
scan that finds ``<devices>`` through the root's View, the kinds looked up per domain
once, the listen addresses' IPv6 check remembered.  Each is checked for its answer
(the general path's text, byte for byte) and guarded by a count of the work it saves,
not by a time."""

from __future__ import annotations

import ipaddress
from typing import Any, Optional

import pytest
from lxml import etree

from kvm_providers.cimxml import writer as W

from .test_cost import _operations
from .test_direct import PLISTS, VIRT

_DISK = ("<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/>"
         "<source file='/var/lib/libvirt/images/a&amp;b.qcow2'/><target dev='vda' bus='virtio'/>"
         "<readonly/><address type='pci' domain='0x0000' bus='0x00' slot='0x06'/></disk>")

_FORMS = [("VALUE.NAMEDINSTANCE", None, False), ("VALUE.INSTANCEWITHPATH", "example.test", True),
          ("VALUE.INSTANCEWITHPATH", None, False)]


class _Other(str):
    """Not exactly a str: the item writer takes the general way."""


@pytest.mark.parametrize("tag,host,origin", _FORMS)
@pytest.mark.parametrize("plist", PLISTS)
def test_item_writer_writes_what_keyed_item_and_the_table_writer_write(tag, host, origin,
                                                                       plist):
    """``table_item_writer(form, plan, table)(key, view, ctx)`` is
    ``form.item(iname, table_instance_xml(texts, plan, table, view, ctx))`` with
    ``texts, iname = plan.keyed(key)``: for keys with characters to escape, characters
    XML cannot carry, the markers the writer finds its frames with, a str subclass."""
    from kvm_providers.model.kinds import kind_for_class
    from kvm_providers.provider.direct import DirectPlan
    from kvm_providers.providers.common.instances import table_instance_xml, table_item_writer
    from kvm_providers.schema import default_schema
    from kvm_providers.virt.mapping import View
    classname = "KVM_DiskResourceAllocationSettingData"
    kind = kind_for_class(classname)[0]
    el = etree.fromstring(_DISK)
    table = kind.table(el)
    plan = DirectPlan.of(default_schema(), VIRT, classname, plist, origin)
    form = W.InstanceForm(tag, VIRT, host, origin)
    write = table_item_writer(form, plan, table)
    parts = ["guest0001/", "vda", "a&b<c>'\"/", "x", "gäst/", "ß", "", "", "a\x01b/",
             "\ufffe", "Kvm0Name0Mark", "Kvm0Inst0Mark", "Kvm0Key0Mark", "&lt;",
             _Other("o/"), "vdb", "p/", _Other("q")]
    for _round in range(2):                  # the remembered texts too
        for prefix in parts:
            for suffix in parts[1::3]:
                texts, iname = plan.keyed(prefix + suffix)
                want = form.item(iname, table_instance_xml(texts, plan, table, el))
                assert write(prefix, suffix, View(el), None) == want, (prefix, suffix)


def test_item_writer_not_made_for_a_form_without_a_text_frame():
    """A form whose item is not a frame of text gets no item writer (None: the caller
    writes as before); a plan of a class with several keys neither."""
    from kvm_providers.model.kinds import kind_for_class
    from kvm_providers.provider.direct import DirectPlan
    from kvm_providers.providers.common.instances import table_item_writer
    from kvm_providers.schema import default_schema
    classname = "KVM_DiskResourceAllocationSettingData"
    el = etree.fromstring(_DISK)
    table = kind_for_class(classname)[0].table(el)
    plan = DirectPlan.of(default_schema(), VIRT, classname, None)

    class Pairs:
        """A form whose items are (name, instance) pairs, not text."""
        origin = False

        def item(self, name: str, inst: str) -> Any:
            return (name, inst)
    assert table_item_writer(Pairs(), plan, table) is None
    form = W.InstanceForm("VALUE.NAMEDINSTANCE", VIRT)
    assert table_item_writer(form, plan, table) is not None
    several = DirectPlan.of(default_schema(), VIRT, "KVM_ComputerSystem", None)
    assert several.one_key() is None                 # CreationClassName, Name
    assert table_item_writer(form, several, table) is None


@pytest.mark.parametrize("qualified", [False, True])
def test_device_ids_are_the_domain_prefix_and_the_device_id(qualified):
    """keys.device_id(host, domain, devid) is device_id(host, domain, "") + devid: the RASD
    enumeration passes the two parts apart to its item writers."""
    from types import SimpleNamespace

    from kvm_providers.virt import keys
    host = SimpleNamespace(label="h1", qualified=qualified)
    for domain in ("guest0001", "a&b<c>", "x:y/z", ""):
        for devid in ("vda", "52:54:00:aa:bb:cc", "controller:usb:0", "vnc#2", ""):
            assert keys.device_id(host, domain, devid) == \
                keys.device_id(host, domain, "") + devid


class _Counts:
    """Calls of the per-instance steps the item writer and the kinds' index save."""

    def __init__(self, monkeypatch):
        from kvm_providers.provider.direct import DirectPlan
        from kvm_providers.virt.domain import DomainXML
        self.calls: dict[str, int] = {"keyed": 0, "item": 0, "settings_of": 0}
        for cls, name in ((DirectPlan, "keyed"), (W.InstanceForm, "item"),
                          (DomainXML, "settings_of")):
            real = getattr(cls, name)

            def counted(*args, _real=real, _name=name, **kwargs):
                self.calls[_name] += 1
                return _real(*args, **kwargs)
            monkeypatch.setattr(cls, name, counted)


def test_rasd_enumeration_writes_items_without_keyed_item_or_a_list_per_kind(
        layer, node_uri, monkeypatch):
    """An enumeration of every RASD: no ``DirectPlan.keyed`` and no ``InstanceForm.item``
    per instance (one item per class and element tag, to find the form's frame), no
    ``settings_of`` (a list copied per domain and kind); before: one keyed and one item
    per RASD, one settings_of per domain and RASD class.  The items are the model path's
    (test_direct compares them byte for byte)."""
    ops = _operations(layer, node_uri)
    form = W.InstanceForm("VALUE.NAMEDINSTANCE", VIRT)
    list(ops.enum_instances_xml(VIRT, "CIM_ResourceAllocationSettingData", None, True,
                                None, form))        # plans compiled, the node read once
    counts = _Counts(monkeypatch)
    items = list(ops.enum_instances_xml(VIRT, "CIM_ResourceAllocationSettingData", None,
                                        True, None, form))
    assert len(items) > 40
    assert counts.calls["keyed"] == 0
    assert counts.calls["settings_of"] == 0
    # One frame per (class, element tag): far fewer than the items.
    assert 0 < counts.calls["item"] <= 16 < len(items)


class _NoFind:
    """A <domain> root whose ElementPath ``find`` must not be used."""

    def __init__(self, el: Any):
        self.el = el

    def find(self, path: str) -> Optional[Any]:
        raise AssertionError(f"root.find({path!r}) in a scan")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.el, name)


def test_scan_finds_the_devices_through_the_root_view(lv):
    """scan_settings looks ``<devices>`` up in the root's View (no ElementPath ``find``
    on the root, whose children the processor and memory settings index anyway; before:
    ``root.find("devices")``), with the same settings as a scan of the plain root."""
    from kvm_providers.virt.devices import scan_settings
    from kvm_providers.virt.mapping import View
    import kvm_providers.model  # noqa: F401  (installs the kinds)
    devices = 0
    for dom in lv.listAllDomains():
        root = etree.fromstring(dom.XMLDesc(0).encode())
        plain = [(s.kind.name, s.devid, s.element) for s in scan_settings(root)]
        stub = _NoFind(root)
        viewed = [(s.kind.name, s.devid, s.element if s.element is not stub else root)
                  for s in scan_settings(stub, root_view=View(root))]
        assert viewed == plain
        devices += len(plain) - 2
    assert devices > 10


def test_ipv6_check_of_listen_addresses_remembered(monkeypatch):
    """is_ipv6_only parses each address text once, not once per graphics device (before:
    ``ipaddress.ip_address`` per call), with the same answers."""
    from kvm_providers.virt import netaddr
    calls: list[str] = []
    real = ipaddress.ip_address

    def counted(text):
        calls.append(text)
        return real(text)
    monkeypatch.setattr(ipaddress, "ip_address", counted)
    texts = ["10.77.12.13", "fd00::77", "::", "[fd00::78]", "host77.example", ""]
    want = [False, True, False, True, None, None]
    for _round in range(50):
        assert [netaddr.is_ipv6_only(t) for t in texts] == want
    assert len(calls) <= len(texts)
    assert netaddr.is_ipv6_only(None) is None


def test_memory_sizes_parsed_once_per_text_and_unit(monkeypatch):
    """MemoryKiB reads each (text, unit) once (before: an int and a unit parse per read,
    three per guest), with the same values as the parse: units, blanks, bad texts."""
    from kvm_providers.virt import mapping
    calls: list[Any] = []
    real = mapping.libvirt_unit_bytes

    def counted(unit, *args):
        calls.append(unit)
        return real(unit, *args)
    monkeypatch.setattr(mapping, "libvirt_unit_bytes", counted)
    field = mapping.MemoryKiB("memory")
    cases = [("<d><memory unit='MiB'>777</memory></d>", 777 * 1024),
             ("<d><memory unit='KiB'>770001</memory></d>", 770001),
             ("<d><memory>770002</memory></d>", 770002),
             ("<d><memory unit='GB'>7</memory></d>", 7 * 10**9 // 1024),
             ("<d><memory unit='b'> 7700 </memory></d>", 7),
             ("<d><memory unit='parsec'>77</memory></d>", 77),
             ("<d><memory unit='MiB'>seven</memory></d>", None),
             ("<d><memory unit='MiB'/></d>", None),
             ("<d/>", None)]
    for _round in range(20):
        for text, want in cases:
            assert field.read(etree.fromstring(text)) == want, text
    assert len(calls) <= len(cases)


@pytest.mark.parametrize("text,tag", [
    ("<d><a/><b>1</b><b>2</b><!-- c --><c/></d>", "b"),
    ("<d><!-- x --><devices/></d>", "devices"),
    ("<d xmlns:n='urn:x'><n:devices/><devices>2</devices></d>", "devices"),
    ("<d><a/></d>", "devices"),
    ("<d/>", "b")])
def test_view_child_is_find_with_and_without_the_index(text, tag):
    """View.child(tag) answers find(tag) (the first child element of that tag, no
    namespace), before the view indexed its children (without indexing them) and after."""
    from kvm_providers.virt.mapping import View
    el = etree.fromstring(text)
    view = View(el)
    found = el.find(tag)         # held: lxml gives the same proxy for the same node
    assert view.child(tag) is found
    view.children()
    assert view.child(tag) is found
