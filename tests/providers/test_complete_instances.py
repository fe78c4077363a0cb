"""Every instance carries every property of its class (NULL where unset), within the
PropertyList, as OpenPegasus and sfcb deliver them: libvirt-cim's clients read
``inst["VirtualQuantityUnits"]`` and fail with KeyError on a sparse instance."""

from __future__ import annotations

import pywbem
import pytest

from kvm_providers.registry.table import TABLE


def _served_classes(conn, namespace):
    """Every concrete class of the KVM family that the registry serves in `namespace`."""
    names = set()
    for entry in TABLE:
        if namespace not in entry.namespaces or "instance" not in entry.types:
            continue
        names.add(entry.classname.replace("{P}", "KVM"))
    return sorted(n for n in names if n.startswith("KVM_"))


@pytest.mark.parametrize("namespace", ["root/virt", "root/interop"])
def test_every_property_of_the_class_is_present(node_server, namespace):
    conn = node_server.conn(namespace)
    checked = 0
    for classname in _served_classes(conn, namespace):
        try:
            insts = conn.EnumerateInstances(classname, DeepInheritance=False)
        except pywbem.CIMError as exc:
            pytest.fail(f"{classname}: {exc}")
        if not insts:
            continue
        cls = conn.GetClass(classname, LocalOnly=False)
        want = {p.lower() for p in cls.properties}
        for inst in insts:
            if inst.classname.lower() != classname.lower():
                continue  # a subclass instance: checked under its own class
            have = {p.lower() for p in inst.properties}
            assert have == want, (classname, sorted(want - have), sorted(have - want))
            checked += 1
    assert checked > 20  # the fixture node has many instances of many classes


def test_property_list_still_limits_the_instance(conn):
    insts = conn.EnumerateInstances("KVM_DiskResourceAllocationSettingData",
                                    PropertyList=["VirtualQuantityUnits", "Address"])
    assert insts
    for inst in insts:
        # The key, and exactly the two requested properties (NULL where unset).
        assert {p.lower() for p in inst.properties} == {"instanceid",
                                                        "virtualquantityunits", "address"}
    one = conn.GetInstance(insts[0].path, PropertyList=["PoolID"])
    assert {p.lower() for p in one.properties} == {"instanceid", "poolid"}


def test_unset_properties_are_typed_nulls(conn):
    inst = conn.EnumerateInstances("KVM_ComputerSystem")[0]
    cls = conn.GetClass("KVM_ComputerSystem", LocalOnly=False)
    nulls = [p for p in inst.properties.values() if p.value is None]
    assert nulls, "the fixture's systems leave some properties unset"
    for p in nulls:
        assert p.type == cls.properties[p.name].type, p.name


def test_unset_properties_show_the_class_default(node_server):
    """What OpenPegasus and sfcb show for a property a provider leaves unset is the class
    default (EnabledState 5 on devices, VirtualQuantityUnits 'count' on RASDs); the
    embedded server gives the same, so that all three hosts answer alike."""
    conn = node_server.conn("root/virt")
    seen = 0
    for classname in ("KVM_LogicalDisk", "KVM_Processor", "KVM_NetworkPort",
                      "KVM_InputResourceAllocationSettingData", "KVM_ComputerSystem"):
        cls = conn.GetClass(classname, LocalOnly=False)
        defaults = {p.name: p.value for p in cls.properties.values() if p.value is not None}
        assert defaults, classname
        for inst in conn.EnumerateInstances(classname, DeepInheritance=False):
            for name in defaults:
                assert inst[name] is not None, (classname, name)
                seen += 1
    assert conn.EnumerateInstances("KVM_LogicalDisk")[0]["EnabledState"] in (2, 3, 5)
    assert seen > 20
