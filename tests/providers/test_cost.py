"""What large operations cost, counted rather than timed (issue 16): libvirt calls per
operation, pywbem objects built per instance, and the CIM-XML the values path writes
(the same text as the object path)."""

from __future__ import annotations

import libvirt
import pytest
from lxml import etree
from pywbem import CIMInstance

from kvm_providers.cimxml import writer as W
from kvm_providers.provider import model as model_module

from tests.support.libvirt_calls import count_libvirt_calls

from .harness import Harness

VIRT = "root/virt"


@pytest.fixture
def harness(layer, node_uri):
    layer(node_uri)
    return Harness()


@pytest.fixture
def calls(monkeypatch):
    """Counts libvirt calls by class and name."""
    return count_libvirt_calls(monkeypatch, {
        libvirt.virDomain: ("XMLDesc",),
        libvirt.virConnect: ("listAllDomains", "listAllStoragePools",
                             "storageVolLookupByPath"),
        libvirt.virStoragePool: ("listAllVolumes", "storageVolLookupByName", "XMLDesc"),
        libvirt.virStorageVol: ("info",)}, qualified=True)


@pytest.fixture
def built(monkeypatch):
    """Counts the CIMProperty objects the instance models build."""
    counter = {"properties": 0}
    real = model_module.new_property

    def counting(*args, **kwargs):
        counter["properties"] += 1
        return real(*args, **kwargs)
    monkeypatch.setattr(model_module, "new_property", counting)
    return counter


def _instance_classes(harness: Harness) -> list[str]:
    return sorted(name for (ns, _), (name, _p) in harness.classes.items()
                  if ns == VIRT and not harness.schema.spec(ns, name).is_association)


def test_disk_rasds_list_each_pool_once(harness, calls, lv):
    """One listAllVolumes per storage pool with disks, no lookup by path per disk; one
    info() per disk of a pool (its capacity)."""
    disks_in_pool = sum(
        1 for d in lv.listAllDomains()
        for src in etree.fromstring(d.XMLDesc(0)).iterfind(
            "devices/disk/source")
        if (src.get("file") or "").startswith("/var/lib/libvirt/images/"))
    assert disks_in_pool >= 2
    calls.clear()
    rasds = harness.EnumerateInstances(VIRT, "KVM_DiskResourceAllocationSettingData")
    assert any(r["VirtualQuantity"] for r in rasds)
    assert calls["virConnect.storageVolLookupByPath"] == 0
    assert calls["virStoragePool.listAllVolumes"] == 1
    assert calls["virStorageVol.info"] == disks_in_pool
    assert calls["virConnect.listAllStoragePools"] == 1
    assert calls["virConnect.listAllDomains"] == 1
    assert calls["virDomain.XMLDesc"] == len(lv.listAllDomains())


@pytest.mark.parametrize("plist", [None, ["InstanceID", "ElementName", "Caption"]])
def test_enumerations_build_no_property_objects(harness, built, plist):
    """An enumeration's instances go to CIM-XML from their values: no CIMProperty per
    property (before issue 16 every property and NULL of every instance was one)."""
    for classname in ("CIM_ResourceAllocationSettingData", "KVM_VirtualSystemSettingData",
                      "KVM_ComputerSystem", "CIM_LogicalDevice"):
        insts = harness.EnumerateInstances(VIRT, classname, plist)
        assert len(insts) >= 5, classname
        before = built["properties"]
        texts = [W.instance_xml(i) for i in insts]
        assert all(t.startswith("<INSTANCE ") for t in texts)
        assert built["properties"] == before == 0, classname


def test_values_path_writes_what_the_object_path_wrote(harness):
    """Every instance of every class of root/virt: the CIM-XML written from the model's
    values is the text the object path (pywbem properties, before issue 16) writes,
    byte for byte, with and without a PropertyList."""
    seen = 0
    for classname in _instance_classes(harness):
        spec = harness.schema.spec(VIRT, classname)
        some = [p.name for p in list(spec.props.values())[::3]]
        for plist in (None, some):
            for inst in harness.EnumerateInstances(VIRT, classname, plist):
                fast = W.instance_xml(inst)
                if inst.assigned() is None:      # a provider read .properties: no values path
                    continue
                props = list(inst.properties.values())    # builds the pywbem properties
                assert inst.assigned() is None
                assert W.instance_xml(inst) == fast, classname
                generic = CIMInstance(inst.classname, properties=props)
                assert W.instance_xml(generic) == fast, classname
                seen += 1
    assert seen > 100
