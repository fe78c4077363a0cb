"""Instance models go to CMPI straight from their values (issue 10 item 12).

A provider's instance model keeps its assigned values and builds pywbem
properties only when someone reads them; the embedded server writes CIM-XML
from the values.  The adapter used to read ``.properties`` of every instance
it converted: a CIMProperty for every assigned value and every wanted
property left unset (about 45 per RASD, of which the server needs 5-10).
The conversion plan sets the same CMPI properties, with the same values and
types, from the values.  Counted, not timed; both server fakes.
"""

import os
import sys

import pytest
import fake_cmpi

from kvm_providers.cmpi import adapter, sharing
from kvm_providers.cmpi.convert import Converter
from kvm_providers.cmpi.fresh import held_already
from kvm_providers.provider import model as model_module
from kvm_providers.registry import registrations
from kvm_providers.schema import default_schema

from tests.fixtures.generate import write_node
from tests.providers.harness import Harness

F = fake_cmpi
NS = "root/virt"
#: The fixture node with many and unusual devices (as in tests/providers).
NODE_URI = "test://" + os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "fixtures", "node_devices.xml")
SERVERS = ["Pegasus", "RequestHandler"]


@pytest.fixture
def new_properties(monkeypatch):
    """Counts the CIMProperty objects instance models build."""
    counter = {"n": 0}
    real = model_module.new_property

    def counting(*args, **kwargs):
        counter["n"] += 1
        return real(*args, **kwargs)
    monkeypatch.setattr(model_module, "new_property", counting)
    return counter


def _server_broker(name: str):
    """A broker of `name` that knows every class of root/virt (defaults included), as a
    server's repository does."""
    broker = F.CMPIBroker(name=name)
    schema = default_schema()
    for cls in schema.all_classes(NS):
        broker.declare(cls)
    return broker


def _cells(conv: Converter, cinst) -> dict:
    """{property: (CMPI type, NULL?, pywbem value)} of a fake CMPIInstance."""
    out = {}
    for i in range(cinst.property_count()):
        data, name = cinst.get_property_at(i)
        value, _t, _a = conv.from_data(data, NS)
        out[name] = (data.type, bool(data.state & F.CMPI_nullValue), value)
    out[None] = conv.to_path(cinst.objectpath())
    return out


def _instance_classes(harness: Harness) -> list[str]:
    return sorted(name for (ns, _), (name, _p) in harness.classes.items() if ns == NS)


@pytest.mark.parametrize("node", ["fixture", "bench"])
@pytest.mark.parametrize("server", SERVERS)
def test_values_plan_sets_what_the_properties_set(fake, layer, set_calls, server, node,
                                                  tmp_path):
    """Every instance of every class of root/virt, with and without a PropertyList: the
    CMPI instance made from the model's values holds what the one made from its pywbem
    properties holds (every property, its CMPI type, NULL or value), through the same
    set_property calls (name, type, NULL) in the same order."""
    layer(NODE_URI if node == "fixture" else
          "test://" + write_node(str(tmp_path / "node.xml"), 3))
    harness = Harness()
    broker = _server_broker(server)
    schema = default_schema()
    plans = generic = 0
    for classname in _instance_classes(harness):
        spec = schema.spec(NS, classname)
        some = [p.name for p in list(spec.props.values())[1::3]]
        for plist in (None, some):
            fresh_a: dict = {}
            fresh_b: dict = {}
            conv_a = Converter(F, broker, fresh_a)
            conv_b = Converter(F, broker, fresh_b)
            for inst in harness.EnumerateInstances(NS, classname, plist):
                if inst.path is not None and inst.path.namespace is None:
                    inst.path.namespace = NS
                a = inst.copy()
                b = inst.copy()
                list(b.properties.values())          # the pywbem properties, built
                assert b.assigned() is None
                if a.assigned() is not None:
                    plans += 1
                else:
                    generic += 1
                set_calls.clear()
                ca = conv_a.instance(a, namespace=NS, props=plist)
                cb = conv_b.instance(b, namespace=NS, props=plist)
                assert _cells(conv_a, ca) == _cells(conv_b, cb), classname
                # but for the class defaults of the properties the model left unset that a
                # new instance holds already: not set again from the values (stop 30)
                held = fresh_a.get((NS, classname.lower(), "held"), {})
                values = a.assigned()
                skipped = {lk for lk, p in spec.props.items()
                           if values is not None and plist is None and lk not in values
                           and p.default is not None and held_already(held, lk, p.default)}
                assert set_calls.get(id(ca), []) == [
                    c for c in set_calls.get(id(cb), []) if c[0].lower() not in skipped], classname
            assert fresh_a == fresh_b
            conv_a.release()
            conv_b.release()
    assert plans > 100


@pytest.fixture
def cmpi_values(monkeypatch):
    """Counts the CMPIValues the adapter makes (each a SWIG allocation in a server)."""
    counter = {"n": 0}

    class Counting(F.CMPIValue):
        def __init__(self):
            # the adapter's, not those the fake makes for CMPIData it hands out
            if sys._getframe(1).f_globals["__name__"].startswith("kvm_providers."):
                counter["n"] += 1
            super().__init__()
    monkeypatch.setattr(F, "CMPIValue", Counting)
    return counter


@pytest.mark.parametrize("server", SERVERS)
def test_enumerations_through_the_adapter_build_no_property_objects(
        fake, layer, new_properties, cmpi_values, server, tmp_path, monkeypatch):
    """An enumeration of every RASD, VSSD and ComputerSystem through the adapter builds no
    CIMProperty (before: one per assigned value and per unset wanted property of every
    instance, 1780 for the RASDs of 4 guests), and the values, string keys and array
    elements of a call's instances are set through one CMPIValue each (before: one per
    key, array and array element of every instance)."""
    layer("test://" + write_node(str(tmp_path / "node.xml"), 4))
    monkeypatch.setattr(adapter, "share", sharing.ReadShare(max_age=60.0))
    broker = _server_broker(server)
    ctx = broker.context()
    for superclass, module in (
            ("CIM_ResourceAllocationSettingData", "resource_allocation"),
            ("CIM_VirtualSystemSettingData", "virtual_system_settings"),
            ("CIM_ComputerSystem", "computer_system")):
        prox = adapter.CMPIProxyProvider(f"kvm_providers_{module}", broker, ctx, cmpi=F,
                                         module=f"kvm_providers.providers.{module}")
        names = [reg.classname for reg in registrations()
                 if reg.module == f"kvm_providers.providers.{module}" and NS in reg.namespaces
                 and reg.classname.startswith("KVM_")]
        assert names, module
        for cn in names:
            broker.register(cn, prox, superclass=superclass)
        new_properties["n"] = 0
        cmpi_values["n"] = 0
        op = broker.new_object_path(NS, superclass)
        enum = broker.enumInstances(ctx, op, None)
        count = 0
        while enum.hasNext():
            data = enum.next()
            assert data.type == F.CMPI_instance
            count += 1
        assert count >= 4, superclass
        assert new_properties["n"] == 0, superclass
        # the instances' values, keys and array elements: a CMPIValue each per call
        assert cmpi_values["n"] <= 3 * len(names) < count, superclass


def test_a_plan_is_made_once_per_class_and_property_list(fake, layer, tmp_path):
    """The plans live in the class's cache: one per class, PropertyList, completeness and
    SWIG module (not one per instance or call)."""
    layer("test://" + write_node(str(tmp_path / "node.xml"), 2))
    harness = Harness()
    broker = _server_broker("RequestHandler")
    spec = default_schema().spec(NS, "KVM_DiskResourceAllocationSettingData")

    def plans() -> dict:
        return {k: v for k, v in spec._cache.items()
                if isinstance(k, tuple) and k[0] == "cmpiplan"}
    before = plans()
    seen = []
    for _ in range(3):
        conv = Converter(F, broker, {})
        insts = harness.EnumerateInstances(NS, spec.name, ["Address"])
        assert len(insts) >= 2
        for inst in insts:
            conv.instance(inst, namespace=NS, props=["Address"])
        conv.release()
        seen.append(plans())
    assert len(set(seen[0]) - set(before)) <= 1
    assert seen[0] == seen[1] == seen[2]          # the same plan objects, none added
    assert any(k[1] == frozenset({"address", "instanceid"}) for k in seen[0])


@pytest.mark.parametrize("server", SERVERS)
def test_repeated_strings_of_a_call_share_one_cmpi_string(fake, layer, set_calls, server,
                                                          tmp_path, monkeypatch):
    """The scalar strings and string keys of one call's instances: one new_string per
    distinct value (before: one per property and key of every instance), and every
    property still holds its own value."""
    layer("test://" + write_node(str(tmp_path / "node.xml"), 4))
    monkeypatch.setattr(adapter, "share", sharing.ReadShare(max_age=60.0))
    broker = _server_broker(server)
    made = []
    real_new_string = F.CMPIBroker.new_string

    def new_string(self, text):
        made.append(text)
        return real_new_string(self, text)
    monkeypatch.setattr(F.CMPIBroker, "new_string", new_string)
    ctx = broker.context()
    prox = adapter.CMPIProxyProvider("kvm_providers_resource_allocation", broker, ctx, cmpi=F,
                                     module="kvm_providers.providers.resource_allocation")
    cn = "KVM_DiskResourceAllocationSettingData"
    broker.register(cn, prox, superclass="CIM_ResourceAllocationSettingData")
    enum = broker.enumInstances(ctx, broker.new_object_path(NS, cn), None)
    conv = Converter(F, broker)
    insts = []
    while enum.hasNext():
        data = enum.next()          # bound while its value is read (see convert.py)
        insts.append(conv.to_instance(data.value.inst))
    assert len(insts) == 8
    # one call: every distinct value once, keys included; only an array's elements
    # (one HostResource per disk) have a CMPIString each
    assert len(made) - len(set(made)) <= len(insts), made
    assert len(set(made)) < 8 * 10 / 2, made    # before: ~10 per instance
    ids = {i["InstanceID"] for i in insts}
    assert len(ids) == 8 and {i.path["InstanceID"] for i in insts} == ids
    assert {i["ResourceType"] for i in insts} == {17}
    assert len({i["Address"] for i in insts}) > 1
