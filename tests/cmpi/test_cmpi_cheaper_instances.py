"""The CMPI instance per instance, cheaper (issue 10 item 12, stop 27): what a large
enumeration makes per instance beyond the instance itself.

A scalar string property was set through a CMPIString of its own per distinct value
(``broker.new_string``: the server's object, SWIG's proxy, kept and released with the
call), 1.7 per RASD of an enumeration of every RASD, while ``set_property`` only copies
its characters; now through the converter's stand-in CMPIString
(:mod:`kvm_providers.cmpi.chars`; fake_cmpi.TextValue models it).  Only a string
array's elements still get CMPIStrings (an array holds them by reference).  Nothing
here is timed: the guards count the fake's calls.
"""

import collections

import pytest

import fake_cmpi

from kvm_providers.cmpi import chars
from kvm_providers.cmpi.convert import Converter

from tests.cmpi.test_cmpi_convert_plan import _cells, _server_broker
from tests.cmpi.test_cmpi_cost import RASD, RASD_CLASSES, _enumerate, _server
from tests.cmpi.test_cmpi_cost import clock  # noqa: F401  (a fixture)

F = fake_cmpi
GUESTS = 6


@pytest.fixture
def made(monkeypatch):
    """The CMPI objects made (new_string, new_array, new_instance), the string array
    elements set (CMPIArray.set of a CMPI_string) and the set_property calls."""
    out: collections.Counter = collections.Counter()

    def counting(cls, name, key=None):
        real = getattr(cls, name)

        def call(self, *args):
            out[key or name] += 1
            return real(self, *args)
        monkeypatch.setattr(cls, name, call)
    for cls, name in ((F.CMPIBroker, "new_string"), (F.CMPIBroker, "new_array"),
                      (F.CMPIBroker, "new_instance"), (F.CMPIInstance, "set_property"),
                      (F.CMPIResult, "return_instance")):
        counting(cls, name)
    real_set = F.CMPIArray.set

    def array_set(self, index, value, ctype):
        if ctype == F.CMPI_string:
            out["array_string"] += 1
        return real_set(self, index, value, ctype)
    monkeypatch.setattr(F.CMPIArray, "set", array_set)
    F.TEXT_VALUES.clear()
    return out


@pytest.mark.usefixtures("clock")   # the share on a clock of its own (no expiry mid-test)
@pytest.mark.parametrize("cn", [RASD, "KVM_DiskResourceAllocationSettingData"])
@pytest.mark.parametrize("server", ["RequestHandler", "Pegasus"])
def test_scalar_strings_make_no_cmpi_string(fake, node, made, server, cn):
    """An enumeration's scalar strings (InstanceIDs, addresses, captions ...) are set
    through one stand-in per call, not a CMPIString each: the CMPIStrings made are the
    string arrays' elements and the templates' string defaults.  Before: 1.7
    CMPIStrings per RASD of 1000 guests (0.3 now)."""
    broker, ctx, _prox = _server(server, RASD_CLASSES)
    _enumerate(broker, ctx, cn)               # templates, plans, updaters made
    made.clear()
    F.TEXT_VALUES.clear()
    insts = _enumerate(broker, ctx, cn)
    n = len(insts)
    assert n >= 2 * GUESTS
    assert made["return_instance"] == n
    # (a template's string class defaults, such as AllocationUnits, go through
    # Converter.value as before: once per template)
    assert made["new_string"] <= made["array_string"] + made["new_instance"], made
    # nothing per instance but its arrays (and, every so many instances, a template)
    assert made["new_array"] <= made["array_string"] and made["new_instance"] < n / 4
    # every instance's own InstanceID at least went through a stand-in
    assert sum(tv.points for tv in F.TEXT_VALUES) >= n, made
    assert F.UNRELEASED == {}


def _disk_values(i: int, text: str) -> dict:
    return {"instanceid": f"g/vd{i}", "address": text, "hostresource": [f"/d{i}"]}


@pytest.mark.parametrize("server", ["RequestHandler", "Pegasus"])
@pytest.mark.parametrize("clone", ["", "0"])
def test_stand_in_strings_set_what_cmpi_strings_set(fake, monkeypatch, server, clone):
    """The instances of values set through the stand-in hold what those set through
    CMPIStrings hold (no stand-in: ``text_value_of`` None), value, type and NULL, for
    templates, copies and instances made new; a text SWIG refuses (a lone surrogate)
    goes through a CMPIString as before, with the same outcome."""
    from kvm_providers.schema import default_schema
    spec = default_schema().spec("root/virt", "KVM_DiskResourceAllocationSettingData")
    monkeypatch.setenv("KVM_PROVIDERS_CMPI_CLONE", clone)
    texts = ["pci0", "", "pci0", "\u00e9t\u00e9 \u2603", None, "pci1", "pci1"] * 3
    got = {}
    for stand_in in (True, False):
        if not stand_in:
            monkeypatch.setattr(chars, "text_value_of", lambda conv: None)
        broker = _server_broker(server)
        conv = Converter(fake, broker, {})
        rslt = fake.CMPIResult._new()
        for i, text in enumerate(texts):
            cinst = conv.instance_of_values("root/virt", spec, frozenset(spec.props),
                                            (("InstanceID", f"g/vd{i}"),),
                                            _disk_values(i, text))
            rslt.return_instance(cinst)
            conv.handed_over(cinst)
        reader = Converter(fake, broker)
        got[stand_in] = [_cells(reader, c) for c in rslt.instances]
        conv.release()
    assert len(got[True]) == len(texts)
    assert got[True] == got[False]
    assert fake.UNRELEASED == {}


def test_a_text_swig_refuses_goes_through_a_cmpi_string(fake, made):
    """``chars.set_text`` of a lone surrogate: no stand-in (its UTF-8 fails), the text
    given to ``new_string`` as before (whatever SWIG then makes of it)."""
    broker = _server_broker("RequestHandler")
    conv = Converter(fake, broker, {})
    seen = []
    real = F.CMPIBroker.new_string

    def new_string(self, text):
        seen.append(text)
        return real(self, text)
    F_new = pytest.MonkeyPatch()
    F_new.setattr(F.CMPIBroker, "new_string", new_string)
    try:
        cinst = broker.new_instance(broker.new_object_path("root/virt", "KVM_DiskResourceAllocationSettingData"), 0)
        chars.set_text(conv, cinst.set_property, "Address", "ok", F.CMPI_string)
        assert seen == []
        chars.set_text(conv, cinst.set_property, "Address", "bad\udc80", F.CMPI_string)
        assert seen == ["bad\udc80"]
    finally:
        F_new.undo()
        conv.release()


@pytest.mark.parametrize("left", [False, True])
def test_sfcb_template_lives_while_nothing_is_left_behind(fake, made, left):
    """sfcb: a template whose replaced values leave nothing behind in it (scalars
    replaced: sfcb compacts them away) is returned MAX_USES times before a new one; one
    whose string array changes per instance (a HostResource element left behind per
    use) is made new once LEFT_BEHIND bytes are left in it.  Before stop 27: a new
    template every 8 instances whatever changed (a new_instance, with every property of
    the class filled in by sfcb, and all its values set again)."""
    from kvm_providers.cmpi import templates
    from kvm_providers.cmpi.plan import STRING_COST
    from kvm_providers.schema import default_schema
    spec = default_schema().spec("root/virt", "KVM_DiskResourceAllocationSettingData")
    conv = Converter(fake, _server_broker("RequestHandler"), {})
    rslt = fake.CMPIResult._new()
    n = 2 * templates.MAX_USES + 1
    for i in range(n):
        values = {"instanceid": f"g/vd{i}", "address": f"pci{i % 3}",
                  "automaticallocation": i % 2 == 0}
        if left:
            values["hostresource"] = [f"/images/d{i:05d}"]
        cinst = conv.instance_of_values("root/virt", spec, frozenset(spec.props),
                                        (("InstanceID", f"g/vd{i}"),), values)
        rslt.return_instance(cinst)
        conv.handed_over(cinst)
    conv.release()
    per_use = len("/images/d00000") + STRING_COST
    per_template = 1 + -(-templates.LEFT_BEHIND // per_use) if left else templates.MAX_USES
    assert made["new_instance"] == -(-n // per_template), made
    assert len({str(i._path) for i in rslt.instances}) == n  # pylint: disable=W0212
