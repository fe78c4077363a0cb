"""The CPU per guest of large enumerations, stop 24 (issue 16: every RASD of 10,000
guests): string arrays written in place by the compiled table writers.  Each change is
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


def test_rasd_enumeration_writes_string_arrays_without_text(layer, node_uri, monkeypatch):
    """An enumeration of every RASD calls ``DirectPlan.text`` with no list of strings
    (before: once per disk for HostResource and once per NIC for Connection)."""
    from kvm_providers.provider.direct import DirectPlan
    ops = _operations(layer, node_uri)
    form = W.InstanceForm("VALUE.NAMEDINSTANCE", VIRT)
    lists: list[Any] = []
    real_text, real_of = DirectPlan.text, DirectPlan.of.__func__
    plans: dict[int, Any] = {}

    def text(self, lk, value):
        if type(value) is list:
            lists.append((lk, value))
        return real_text(self, lk, value)

    def of(cls, *args, **kwargs):
        # The writers compiled again, with the counting text() (they hold the method).
        plan = real_of(cls, *args, **kwargs)
        if id(plan) not in plans:
            plans[id(plan)] = plan
            plan.memo.clear()
        return plan
    monkeypatch.setattr(DirectPlan, "text", text)
    monkeypatch.setattr(DirectPlan, "of", classmethod(of))
    try:
        items = list(ops.enum_instances_xml(VIRT, "CIM_ResourceAllocationSettingData", None,
                                            True, None, form))
    finally:
        for plan in plans.values():
            plan.memo.clear()               # nothing compiled with the counter stays
    assert sum("HostResource" in i for i in items) > 4
    assert lists == []
