"""Enumerations written straight to CIM-XML (provider.direct, issue 16) answer what the
instance models answer: for every covered class (every RASD class, the VSSDs, the
snapshot VSSDs), with and without a PropertyList and class origins, in both response
forms, the items are the model path's text byte for byte, on libvirt's test driver
and through a private libvirtd with benchmark-shaped guests."""

from __future__ import annotations

import logging
from typing import Optional

import pytest
from pywbem._tupleparse import TupleParser
from pywbem._tupletree import xml_to_tupletree_sax

from kvm_providers.cimxml import writer as W
from kvm_providers.provider import model as model_module

from .test_cost import _GUESTS, _bench_daemon, _guest, _operations

VIRT = "root/virt"

#: The classes with a direct path, as a client enumerates them (polymorphic and exact).
COVERED = ["CIM_ResourceAllocationSettingData", "KVM_DiskResourceAllocationSettingData",
           "KVM_ProcResourceAllocationSettingData", "KVM_NetResourceAllocationSettingData",
           "KVM_MemResourceAllocationSettingData", "KVM_GraphicsResourceAllocationSettingData",
           "KVM_InputResourceAllocationSettingData",
           "KVM_VirtualSystemSettingData", "KVM_ComputerSystem", "CIM_ComputerSystem",
           "KVM_VirtualSystemSnapshotSettingData"]

#: PropertyLists: every property, a few (keys among them or not, one undefined), none.
PLISTS: list[Optional[list[str]]] = [
    None, ["ElementName", "ResourceType", "VirtualQuantity", "Address", "NoSuchProperty",
           "IsCurrent", "CreationTime", "VirtualSystemIdentifier"], []]


@pytest.fixture
def snapshots_uri(tmp_path) -> str:
    """test:// URI of test_cost's snapshot node: benchmark-shaped guests, some with
    snapshots sharing their guest's definition, one with definitions of their own."""
    from tests.fixtures.generate import _NODE_HEAD
    path = tmp_path / "snapshots.xml"
    path.write_text(_NODE_HEAD + "".join(_guest(i) + "\n" for i in range(_GUESTS))
                    + "</node>\n", encoding="utf-8")
    return f"test://{path}"


def _origins(ops, classname: str, origin: bool) -> Optional[dict[str, str]]:
    if not origin:
        return None
    return {k: p.class_origin for k, p in ops.schema.spec(VIRT, classname).props.items()}


#: Classes served by other modules (the pool settings) keep the model path.
_OTHER = ("PoolResourceAllocationSettingData", "StorageVolumeResourceAllocationSettingData",
          "HostSystem")


class _Models:
    """The class names of the instance models built (copies and new ones)."""

    def __init__(self, monkeypatch):
        self.names: list[str] = []
        real_copy = model_module.InstanceModel.copy
        real_init = model_module.InstanceModel.__init__

        def copy(inst):
            self.names.append(inst.classname)
            return real_copy(inst)

        def init(inst, spec, *args, **kwargs):
            self.names.append(spec.name)
            real_init(inst, spec, *args, **kwargs)
        monkeypatch.setattr(model_module.InstanceModel, "copy", copy)
        monkeypatch.setattr(model_module.InstanceModel, "__init__", init)

    def covered(self, since: int) -> list[str]:
        """The models of covered classes built since the `since`-th."""
        return [n for n in self.names[since:] if not n.endswith(_OTHER)]


def _compare(ops, monkeypatch, classnames=COVERED, least: int = 1) -> int:
    """Assert that the direct items are the model path's, for every class, PropertyList,
    IncludeClassOrigin and form; the number of items compared."""
    models = _Models(monkeypatch)
    seen = 0
    for classname in classnames:
        for plist in PLISTS:
            for origin in (False, True):
                for tag, host in (("VALUE.NAMEDINSTANCE", None),
                                  ("VALUE.INSTANCEWITHPATH", "example.test")):
                    form = W.InstanceForm(tag, VIRT, host, origin)
                    old = [form.of_instance(i, _origins(ops, i.classname, origin))
                           for i in ops.enum_instances(VIRT, classname, plist)]
                    before = len(models.names)
                    new = list(ops.enum_instances_xml(VIRT, classname, plist, True, None,
                                                      form))
                    # No model at all of a covered class: not per request, not per instance.
                    assert models.covered(before) == [], (classname, plist)
                    assert len(old) >= least, classname
                    assert new == old, (classname, plist, origin, tag)
                    seen += len(new)
        # What a client reads: the same instances, every wanted property present.
        for text in new[:20]:
            parsed = TupleParser().parse_any(xml_to_tupletree_sax(text, "test"))
            assert parsed is not None
    return seen


def test_direct_items_are_the_model_items_on_the_test_driver(layer, snapshots_uri,
                                                            monkeypatch):
    """Test driver (benchmark-shaped guests, snapshots sharing and not sharing their
    guest's definition): byte for byte, every covered class."""
    ops = _operations(layer, snapshots_uri)
    assert _compare(ops, monkeypatch) > 500


def test_direct_items_on_the_fixture_node(layer, node_uri, monkeypatch):
    """The fixture node (many and unusual devices): every RASD class and the VSSDs."""
    ops = _operations(layer, node_uri)
    _compare(ops, monkeypatch, COVERED[:-1])


@pytest.mark.libvirtd
def test_direct_items_through_a_daemon(layer, monkeypatch):
    """A private libvirtd with benchmark-shaped guests (disks that are pool volumes):
    byte for byte, every covered class."""
    with _bench_daemon(6, lambda i: (i + 1) << 20) as (d, _lv, _pool):
        ops = _operations(layer, d.uri("qemu"))
        assert _compare(ops, monkeypatch, COVERED[:-1]) > 100


@pytest.mark.parametrize("value", [77, "abc", True, 70000])
def test_values_outside_the_valuemap_are_refused_alike(value, monkeypatch, caplog):
    """A mapping value outside its property's ValueMap, or not of its type: the direct
    path refuses it as a model refuses it (the same ValueError under strict models, as
    the suite runs), and otherwise keeps it with the same warning, writing what the
    model path writes."""
    from lxml import etree

    from kvm_providers.provider import make_model
    from kvm_providers.provider.direct import DirectPlan
    from kvm_providers.providers.common.instances import fill_from_table, write_from_table
    from kvm_providers.schema import default_schema
    from kvm_providers.virt.mapping import Computed
    classname = "KVM_DiskResourceAllocationSettingData"
    bad = {"EmulatedType": Computed(lambda el, ctx: value)}
    model = make_model(VIRT, classname)
    plan = DirectPlan.of(default_schema(), VIRT, classname, None)
    errors = []
    for fill in (lambda: fill_from_table(model.copy(), model, bad, etree.Element("disk")),
                 lambda: write_from_table({}, plan, bad, etree.Element("disk"))):
        with pytest.raises(ValueError) as err:
            fill()
        errors.append(str(err.value))
    assert errors[0] == errors[1] and "EmulatedType" in errors[0]
    # Not strict: a value of the type outside the ValueMap is kept, with a warning.
    monkeypatch.setattr(model_module, "_STRICT", False)
    monkeypatch.setattr(model_module, "_warned_values", set())
    if value != 77:
        return
    inst = model.copy()
    inst["InstanceID"] = "x/1"
    fill_from_table(inst, model, bad, etree.Element("disk"))
    model_module.complete_instance(inst, model.spec, model.wanted)
    texts, _name = plan.keyed("x/1")
    with caplog.at_level(logging.WARNING):
        write_from_table(texts, plan, bad, etree.Element("disk"))
    assert plan.instance_xml(texts) == W.instance_xml(inst)
    assert "<VALUE>77</VALUE>" in plan.instance_xml(texts)
    assert any("EmulatedType" in r.getMessage() and "77" in r.getMessage()
               for r in caplog.records)


# -- stop 21: the compiled table writer and remembered string arrays --------------------

#: Elements that take every branch of a compiled table's rows: attributes of the element
#: and of children (shared paths, missing children, missing attributes), conversions and
#: defaults, element tests, texts, computed values (None, strings, lists).
_ELEMENTS = [
    "<disk type='file' device='disk' rawio='yes'><driver name='qemu' type='raw'/>"
    "<source file='/images/a &amp; b.img'/><target dev='vda' bus='virtio'/><readonly/>"
    "<size n='0x10'/><address type='pci' slot='0x06'/></disk>",
    "<disk device='cdrom'><target dev='hdc'/><size n='junk'/><address/></disk>",
    "<disk><driver cache='none'/><shareable/><address type='drive' unit='0'/></disk>",
    "<disk/>",
    # Paths of two steps (stop 22): the first step missing, the last missing, both there;
    # strings to escape; a value of another type for a string property.
    "<disk device='cdrom'><bandwidth><inbound unit='a&amp;b&lt;c'/></bandwidth>"
    "<virtualport/><target dev='v&quot;x' bus='&gt;'/><!-- c --><readonly/></disk>",
    "<disk type='x'><virtualport><parameters id='p1'/></virtualport><bandwidth/></disk>",
]


def _hand_table():
    from kvm_providers.virt.mapping import Attr, AttrNames, Computed, Const, Enum, Exists, Text

    def address_values(el, ctx):
        a = el.find("address")
        return None if a is None or not a.attrib else list(a.attrib.values())
    return {
        "ResourceType": Const(17),
        "Caption": Const(None),                              # a constant NULL: unset
        "VirtualDevice": Attr("target", "dev"),
        "BusType": Attr("target", "bus", default="ide"),     # the same path again
        "DriverName": Attr("driver", "name"),
        "DriverType": Attr("driver", "type"),
        "DriverCache": Attr("driver", "cache", default="default"),
        "VirtualQuantity": Attr("size", "n", conv="int"),    # unparsable: None
        "Reservation": Attr("size", "n", conv="int", default=7),
        "rawio": Attr("", "rawio"),
        "sgio": Attr("", "sgio", default="filtered"),
        "readonly": Exists("readonly"),
        "shareable": Exists("shareable"),
        "Address": Text("source"),                           # no text: None
        "EmulatedType": Enum(Attr("", "device"), {"disk": 0, "cdrom": 1}, missing=0),
        "HostResource": Computed(lambda el, ctx: [el.get("type")] if el.get("type") else None),
        "AddressValues": Computed(address_values),
        "AddressProperties": AttrNames("address"),
        "ElementName": Computed(lambda el, ctx: None),
        "AllocationUnits": Attr("bandwidth/inbound", "unit"),
        "PoolID": Attr("virtualport/parameters", "id", default="none"),
        "OtherResourceType": Computed(lambda el, ctx: 5 if el.get("device") else None),
    }


@pytest.mark.parametrize("plist", [None, ["VirtualDevice", "readonly", "AddressValues",
                                          "Reservation", "NoSuchProperty"], []])
def test_compiled_table_writes_what_the_row_loop_writes(plist):
    """table_instance_xml (a function generated per plan and table) writes the text of
    write_from_table + instance_xml, for every kind of row and PropertyList, with the
    element or a View of it, the first time and from the remembered texts after."""
    from lxml import etree

    from kvm_providers.provider.direct import DirectPlan
    from kvm_providers.providers.common.instances import table_instance_xml, write_from_table
    from kvm_providers.schema import default_schema
    from kvm_providers.virt.mapping import View
    classname = "KVM_DiskResourceAllocationSettingData"
    table = _hand_table()
    plan = DirectPlan.of(default_schema(), VIRT, classname, plist)
    for _round in range(2):
        for i, text in enumerate(_ELEMENTS):
            el = etree.fromstring(text)
            texts, _name = plan.keyed(f"x/{i}")
            write_from_table(texts, plan, table, el)
            want = plan.instance_xml(texts)
            for arg in (el, View(el)):
                assert table_instance_xml(plan.keyed(f"x/{i}")[0], plan, table, arg) == want
    # More new strings than a property remembers texts of (stop 22: written in place).
    for i in range(100):
        el = etree.fromstring(f"<disk><target dev='vd{i}&amp;' bus='b{i}'/></disk>")
        texts, _name = plan.keyed(f"x/{i}")
        write_from_table(texts, plan, table, el)
        assert table_instance_xml(plan.keyed(f"x/{i}")[0], plan, table, el) == \
            plan.instance_xml(texts)
    # Every property of the table is written or NULL: nothing left out or doubled.
    if plist is None:
        full = table_instance_xml(plan.keyed("x/0")[0], plan, table,
                                  etree.fromstring(_ELEMENTS[0]))
        assert full.count("<PROPERTY") == len(plan.spec.props)
        assert '<PROPERTY NAME="DriverCache" TYPE="string"><VALUE>default</VALUE>' in full


def test_compiled_table_refuses_bad_values_as_the_model_does():
    """A value the model refuses fails the compiled writer with the model's error."""
    from lxml import etree

    from kvm_providers.provider import make_model
    from kvm_providers.provider.direct import DirectPlan
    from kvm_providers.providers.common.instances import fill_from_table, table_instance_xml
    from kvm_providers.schema import default_schema
    from kvm_providers.virt.mapping import Attr
    classname = "KVM_DiskResourceAllocationSettingData"
    bad = {"EmulatedType": Attr("", "device", conv="int")}    # 77: outside the ValueMap
    el = etree.fromstring("<disk device='77'/>")
    model = make_model(VIRT, classname)
    # A plan of its own: the cached one may remember 77's text from a test that let it
    # pass with a warning (not strict).
    cached = DirectPlan.of(default_schema(), VIRT, classname, None)
    plan = DirectPlan(cached.spec, cached.wanted, False)
    errors = []
    for fill in (lambda: fill_from_table(model.copy(), model, bad, el),
                 lambda: table_instance_xml(plan.keyed("x/1")[0], plan, bad, el)):
        with pytest.raises(ValueError) as err:
            fill()
        errors.append(str(err.value))
    assert errors[0] == errors[1] and "EmulatedType" in errors[0]


def test_string_arrays_remembered_only_as_lists_of_str():
    """The text of a string array is remembered by its strings: an equal list of other
    items ([1] == [True], texts '1' and 'TRUE'... as the model converts them) gets its
    own text, an unhashable item no memo, and every text is the model path's."""
    from kvm_providers.provider import make_model
    from kvm_providers.provider.direct import DirectPlan
    from kvm_providers.schema import default_schema
    classname = "KVM_DiskResourceAllocationSettingData"
    plan = DirectPlan.of(default_schema(), VIRT, classname, ["AddressValues"])
    model = make_model(VIRT, classname, property_list=["AddressValues"])

    def model_text(value):
        inst = model.copy()
        inst["InstanceID"] = "x/1"
        inst["AddressValues"] = value
        model_module.complete_instance(inst, model.spec, model.wanted)
        texts, _ = plan.keyed("x/1")
        texts["addressvalues"] = plan.text("addressvalues", value)
        assert plan.instance_xml(texts) == W.instance_xml(inst), value
        return texts["addressvalues"]
    for _round in range(2):
        a, one, true = model_text(["pci", "0x06"]), model_text([1]), model_text([True])
        assert model_text(("pci", "0x06")) == a      # a tuple converts as the list
        assert one != true and "<VALUE>1</VALUE>" in one
        assert model_text([["x"]]) == model_text([["x"]])


@pytest.mark.parametrize("value", ["guest0001/vda", "a&b<c>'\"/x", "gäst/ß", "", " x ",
                                   "a\x01b\ufffe", "Kvm0Key0Mark"])
def test_one_string_key_written_as_the_loop_writes_it(value):
    """keyed()'s short way for a class whose one key is a string (the settings'
    InstanceID) writes the key texts of the general loop (which a str subclass takes)
    and the INSTANCENAME of a path with that key."""
    from pywbem import CIMInstanceName

    from kvm_providers.provider.direct import DirectPlan
    from kvm_providers.schema import default_schema

    class Other(str):
        """Not exactly a str: keyed() takes its general loop."""
    for classname in ("KVM_DiskResourceAllocationSettingData", "KVM_VirtualSystemSettingData"):
        plan = DirectPlan.of(default_schema(), VIRT, classname, None)
        assert plan.keyed(value) == plan.keyed(Other(value))
        name = plan.keyed(value)[1]
        assert name == W.instancename_xml(CIMInstanceName(classname, {"InstanceID": value}))


@pytest.mark.parametrize("kind, text, devid", [
    ("disk", "<disk><!-- t --><x:target xmlns:x='urn:x' dev='no'/><target dev='vda'/>"
             "<target dev='vdb'/></disk>", "vda"),
    ("disk", "<filesystem><target dir='/mnt'/></filesystem>", "/mnt"),
    ("disk", "<disk><source file='/a'/></disk>", None),
    ("net", "<interface><?pi x?><mac address='52:00:00:00:00:01'/>"
            "<mac address='52:00:00:00:00:02'/></interface>", "52:00:00:00:00:01"),
    ("console", "<console><target type='serial' port='2'/></console>", "charconsole:2"),
    ("console", "<console/>", "charconsole:0")])
def test_device_ids_read_the_first_child_as_find_does(kind, text, devid):
    """The device ids of the scan read their child (target, mac) without ElementPath:
    the first child element of that tag without a namespace, as find() answers."""
    from lxml import etree

    from kvm_providers.model.kinds import KINDS
    el = etree.fromstring(text)
    assert {k.name: k for k in KINDS}[kind].devid(el) == devid


# -- stop 22: fewer Python-level steps per device in the compiled table writer ----------

def test_compiled_table_writer_looks_tags_up_and_writes_strings_in_place(monkeypatch):
    """Counted (issue 16, stop 22): the compiled writer finds a child by its tag in the
    View's index, not through View.find (a call per lookup), and writes a new plain
    string (no ValueMap) without DirectPlan.text (three calls per value); an element
    test of a boolean is one of two texts.  The old writer called View.find for every
    tag and text() for every string not met before."""
    from lxml import etree

    from kvm_providers.provider.direct import DirectPlan
    from kvm_providers.providers.common.instances import table_instance_xml
    from kvm_providers.schema import default_schema
    from kvm_providers.virt.mapping import View
    finds: list[str] = []
    texts_of: list[tuple[str, object]] = []
    real_find, real_text = View.find, DirectPlan.text

    def find(self, path):
        import sys
        if sys._getframe(1).f_code.co_filename.startswith("<table writer"):
            finds.append(path)
        return real_find(self, path)

    def text(self, lk, value):
        texts_of.append((lk, value))
        return real_text(self, lk, value)
    monkeypatch.setattr(View, "find", find)
    monkeypatch.setattr(DirectPlan, "text", text)
    cached = DirectPlan.of(default_schema(), VIRT, "KVM_DiskResourceAllocationSettingData",
                           None)
    plan = DirectPlan(cached.spec, cached.wanted, False)    # compiled with the counters
    table = _hand_table()
    for i in range(50):
        el = etree.fromstring(f"<disk><driver name='d{i}'/><target dev='vd{i}'/>"
                              f"<readonly/></disk>")
        table_instance_xml(plan.keyed(f"x/{i}")[0], plan, table, el)
    assert [p for p in finds if "/" not in p] == []
    # Strings reach text() no more (the constants' texts at compile time aside).
    assert [(lk, v) for lk, v in texts_of if type(v) is str and
            plan.string_row(lk) is not None] == []
    assert [lk for lk, v in texts_of if lk == "readonly"] in ([], ["readonly"] * 2)


def test_one_key_and_new_string_lists_written_without_the_general_calls(monkeypatch):
    """Counted (stop 22): keyed()'s one string key escapes its value once for both texts,
    calling neither property_text nor keybinding_xml per instance; a new string list
    (HostResource) is written without property_text's memo lookup, which fails with a
    caught TypeError for every list.  The texts are checked against the general way in
    test_one_string_key_written_as_the_loop_writes_it and the model comparisons."""
    from kvm_providers.provider.direct import DirectPlan
    from kvm_providers.schema import default_schema
    calls: list[str] = []
    real_prop, real_kb = W.property_text, W.keybinding_xml

    def prop(row, value):
        calls.append("property_text")
        return real_prop(row, value)

    def kb(name, value):
        calls.append("keybinding_xml")
        return real_kb(name, value)
    monkeypatch.setattr(W, "property_text", prop)
    monkeypatch.setattr(W, "keybinding_xml", kb)
    cached = DirectPlan.of(default_schema(), VIRT, "KVM_DiskResourceAllocationSettingData",
                           None)
    plan = DirectPlan(cached.spec, cached.wanted, False)     # made with the counters
    del calls[:]
    for i in range(20):
        texts, name = plan.keyed(f"guest{i}/vda")
        assert texts == {"instanceid": real_prop(plan._rows["instanceid"][0],
                                                 f"guest{i}/vda")}
        assert plan.text("hostresource", [f"/images/guest{i}.img"]) == real_prop(
            plan._rows["hostresource"][0], [f"/images/guest{i}.img"])
    assert calls == []


@pytest.mark.parametrize("text", [
    "<disk><address type='pci' domain='0x0000' bus='0x00' slot='0x06' function='0x0'/></disk>",
    "<disk><address/></disk>", "<disk/>", "<disk><!-- a --><address x:y='1' z='&amp;' "
    "xmlns:x='urn:x'/><address type='drive'/></disk>"])
def test_address_fields_read_what_the_functions_read(text):
    """AddressProperties / AddressValues as mapping.AttrNames (stop 22: read in place by
    the compiled writer) read what the kinds' functions read before - the first
    <address>'s attribute names and values in order, None without one or without
    attributes - from the element and from a View, by read, reader and the compiled
    writer."""
    from lxml import etree

    from kvm_providers.model.kinds.base import COMMON_DEVICE
    from kvm_providers.provider.direct import DirectPlan
    from kvm_providers.providers.common.instances import table_instance_xml, write_from_table
    from kvm_providers.schema import default_schema
    from kvm_providers.virt.mapping import View
    el = etree.fromstring(text)
    a = el.find("address")
    want = {"AddressProperties": None if a is None or not a.attrib else list(a.attrib.keys()),
            "AddressValues": None if a is None or not a.attrib else list(a.attrib.values())}
    for name, value in want.items():
        field = COMMON_DEVICE[name]
        for arg in (el, View(el)):
            assert field.read(arg) == value and field.reader()(arg, None) == value
    plan = DirectPlan.of(default_schema(), VIRT, "KVM_DiskResourceAllocationSettingData",
                         None)
    table = {n: COMMON_DEVICE[n] for n in want}
    texts = plan.keyed("x/1")[0]
    write_from_table(texts, plan, table, el)
    assert table_instance_xml(plan.keyed("x/1")[0], plan, table, el) == \
        plan.instance_xml(texts)
    for name, value in want.items():
        assert (texts.get(name.lower()) is None) == (value is None)


def test_address_fields_need_no_find_per_device(monkeypatch):
    """Counted (stop 22): the compiled writer reads AddressProperties and AddressValues of
    a device with no View.find call (the old Computed functions: one each)."""
    from lxml import etree

    from kvm_providers.model.kinds.base import COMMON_DEVICE
    from kvm_providers.provider.direct import DirectPlan
    from kvm_providers.providers.common.instances import table_instance_xml
    from kvm_providers.schema import default_schema
    from kvm_providers.virt.mapping import View
    finds: list[str] = []
    real_find = View.find

    def find(self, path):
        finds.append(path)
        return real_find(self, path)
    monkeypatch.setattr(View, "find", find)
    plan = DirectPlan.of(default_schema(), VIRT, "KVM_DiskResourceAllocationSettingData",
                         None)
    table = {n: COMMON_DEVICE[n] for n in ("AddressProperties", "AddressValues")}
    el = etree.fromstring("<disk><address type='pci' slot='0x06'/></disk>")
    for i in range(10):
        assert "<VALUE>0x06</VALUE>" in table_instance_xml(plan.keyed(f"x/{i}")[0], plan,
                                                             table, el)
    assert finds == []
