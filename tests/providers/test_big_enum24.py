"""The CPU per guest of large enumerations, stop 24 (issue 16: every RASD of 10,000
guests): string arrays written in place by the compiled table writers, a list of another
field's value (HostResource, Connection) taken from that field's read.  Each change is
checked for its answer (the general path's text, byte for byte) and guarded by a count of
the work it saves, not by a time."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from kvm_providers.cimxml import writer as W

from .test_cost import _operations
from .test_direct import PLISTS, VIRT


class _Str(str):
    """Not exactly a str: written the general way."""


#: String array values a reader may give: escapes, characters XML cannot carry, empty
#: lists and strings, None items, other types, a str subclass, a tuple.
_LISTS: list[Any] = [["/var/lib/a&b<c>.img"], ["default"], [], [""], ["a", "b&", "\x01c"],
                     ["x", None], [1, "2"], [_Str("s&")], ("t",), ["gäst", "ß\ufffe"],
                     ["Kvm0Name0Mark"]]


@pytest.mark.parametrize("plist", PLISTS)
def test_string_arrays_written_in_place_as_text_writes_them(plist):
    """The compiled writer's text of a string array property is ``plan.text``'s (through
    ``write_from_table`` and ``instance_xml``, the general path), for every kind of list."""
    from kvm_providers.provider.direct import DirectPlan
    from kvm_providers.providers.common.instances import table_instance_xml, write_from_table
    from kvm_providers.schema import default_schema
    from kvm_providers.virt.mapping import Computed
    plan = DirectPlan.of(default_schema(), VIRT, "KVM_DiskResourceAllocationSettingData", plist)
    box: list[Any] = [None]
    table = {"HostResource": Computed(lambda el, ctx=None: box[0]),
             "AddressValues": Computed(lambda el, ctx=None: box[0] and list(reversed(box[0])))}
    el = etree.fromstring("<disk/>")
    for _round in range(2):                  # the remembered texts of the general way too
        for value in _LISTS:
            box[0] = value
            texts = plan.keyed("g/vda")[0]
            want = dict(texts)
            write_from_table(want, plan, table, el)
            assert table_instance_xml(texts, plan, table, el) == plan.instance_xml(want), value


def _enumerate_recompiled(ops, monkeypatch) -> list[str]:
    """Every RASD of `ops`' node, the table writers compiled again for it (they hold the
    readers and ``text`` they were compiled with: what the test patched is counted), and
    forgotten after it (nothing compiled with a counter stays)."""
    from kvm_providers.provider.direct import DirectPlan
    form = W.InstanceForm("VALUE.NAMEDINSTANCE", VIRT)
    real_of = DirectPlan.of.__func__
    plans: dict[int, Any] = {}

    def of(cls, *args, **kwargs):
        plan = real_of(cls, *args, **kwargs)
        if id(plan) not in plans:
            plans[id(plan)] = plan
            plan.memo.clear()
        return plan
    monkeypatch.setattr(DirectPlan, "of", classmethod(of))
    try:
        return list(ops.enum_instances_xml(VIRT, "CIM_ResourceAllocationSettingData", None,
                                           True, None, form))
    finally:
        for plan in plans.values():
            plan.memo.clear()


def test_rasd_enumeration_writes_string_arrays_without_text(layer, node_uri, monkeypatch):
    """An enumeration of every RASD calls ``DirectPlan.text`` with no list of strings
    (before: once per disk for HostResource and once per NIC for Connection)."""
    from kvm_providers.provider.direct import DirectPlan
    ops = _operations(layer, node_uri)
    lists: list[Any] = []
    real_text = DirectPlan.text

    def text(self, lk, value):
        if type(value) is list:
            lists.append((lk, value))
        return real_text(self, lk, value)
    monkeypatch.setattr(DirectPlan, "text", text)
    items = _enumerate_recompiled(ops, monkeypatch)
    assert sum("HostResource" in i for i in items) > 4
    assert lists == []


def test_sources_read_once_per_device(layer, node_uri, monkeypatch):
    """An enumeration of every RASD reads a disk's source once (Address; HostResource is
    its list) and an interface's source once (NetworkName; Connection); before: twice
    each.  Both the tables' Address / NetworkName readers and the kind modules'
    functions are counted."""
    from kvm_providers.model.kinds import disk, net
    ops = _operations(layer, node_uri)
    reads = {"disk": 0, "net": 0}
    for module, name, field, what in ((disk, "_disk_source", disk.DISK["Address"], "disk"),
                                      (net, "_net_source", net.NET["NetworkName"], "net")):
        real = getattr(module, name)

        def counted(el, ctx=None, _real=real, _what=what):
            reads[_what] += 1
            return _real(el, ctx)
        monkeypatch.setattr(module, name, counted)
        monkeypatch.setattr(field, "func", counted)
    items = _enumerate_recompiled(ops, monkeypatch)
    disks = sum("KVM_DiskResourceAllocationSettingData" in i for i in items)
    nics = sum("KVM_NetResourceAllocationSettingData" in i for i in items)
    assert disks > 2 and nics > 2
    assert reads == {"disk": disks, "net": nics}


@pytest.mark.parametrize("plist", PLISTS + [["HostResource", "Connection"]])
def test_one_item_lists_as_their_fields_read_them(plist):
    """A OneItemList row of a compiled writer is ``[value]`` of its field's row (None for
    None and empty values), with and without that row read before it (PropertyList),
    as the general path writes it; OneItemList.read and its reader alike."""
    from kvm_providers.provider.direct import DirectPlan
    from kvm_providers.providers.common.instances import table_instance_xml, write_from_table
    from kvm_providers.schema import default_schema
    from kvm_providers.virt.mapping import Computed, OneItemList, View
    box: list[Any] = [None]
    source = Computed(lambda el, ctx=None: box[0])
    el = etree.fromstring("<disk/>")
    for classname, first, listed in (("KVM_DiskResourceAllocationSettingData", "Address",
                                      "HostResource"),
                                     ("KVM_NetResourceAllocationSettingData", "NetworkName",
                                      "Connection")):
        plan = DirectPlan.of(default_schema(), VIRT, classname, plist)
        field = OneItemList(source)
        for table in ({first: source, listed: field}, {listed: field, first: source},
                      {listed: field}):
            for value in ("/a&b.img", "", None, "x\x01", 0, 7, _Str("s")):
                box[0] = value
                want_value = [value] if value else None
                assert field.read(el) == want_value and \
                    field.reader()(View(el), None) == want_value
                texts = plan.keyed("g/d")[0]
                want = dict(texts)
                write_from_table(want, plan, table, el)
                assert table_instance_xml(texts, plan, table, el) == \
                    plan.instance_xml(want), (table, value)
