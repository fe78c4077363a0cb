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
           "KVM_VirtualSystemSettingData", "KVM_VirtualSystemSnapshotSettingData"]

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
_OTHER = ("PoolResourceAllocationSettingData", "StorageVolumeResourceAllocationSettingData")


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
