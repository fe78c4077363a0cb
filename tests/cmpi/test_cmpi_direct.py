"""Enumerations through CMPI straight from the providers' values (issue 10 item 12).

Where a provider offers a direct path (``enum_direct``: the RASDs, the VSSDs,
the snapshot VSSDs), the embedded server writes its instances from the values
without an instance model per instance (provider.direct).  The adapter now
takes the same path (kvm_providers.cmpi.direct): the values are converted and
checked by the embedded server's DirectPlan, and the CMPI instance is made by
the class's conversion plan.  A client of sfcb or OpenPegasus must get the
same instance as through the models: the same properties, CMPI types, NULLs
and values, through the same ``set_property`` calls in the same order, in both
server fakes, with and without a PropertyList; counted, not timed.
"""

from __future__ import annotations

import pytest
import fake_cmpi
from pywbem import CIMInstanceName

from kvm_providers.cmpi import adapter, sharing
from kvm_providers.cmpi.convert import Converter
from kvm_providers.cmpi.direct import CMPIForm, CMPIPlan
from kvm_providers.provider.direct import DirectPlan
from kvm_providers.provider import CIMProvider2, model as model_module, request_scope
from kvm_providers.registry import registrations
from kvm_providers.schema import default_schema

from tests.cmpi.test_cmpi_convert_plan import NODE_URI, SERVERS, _cells, _server_broker

F = fake_cmpi
NS = "root/virt"


def _snapshot_node(tmp_path) -> str:
    """test:// URI of benchmark-shaped guests, some with snapshots that share their
    guest's definition, one with definitions of their own (tests/providers/test_cost)."""
    from tests.fixtures.generate import _NODE_HEAD
    from tests.providers.test_cost import _GUESTS, _guest
    path = tmp_path / "snapshots.xml"
    # and one guest with a TPM (no other node has one)
    tpm = _guest(_GUESTS).replace("</devices>", "<tpm model='tpm-tis'><backend "
                                  "type='passthrough'><device path='/dev/tpm0'/></backend>"
                                  "</tpm></devices>", 1)
    path.write_text(_NODE_HEAD + "".join(_guest(i) + "\n" for i in range(_GUESTS))
                    + tpm + "\n</node>\n", encoding="utf-8")
    return f"test://{path}"


@pytest.fixture
def models(monkeypatch):
    """The class names of the instance models built (new ones and copies)."""
    names: list[str] = []
    real_copy = model_module.InstanceModel.copy
    real_init = model_module.InstanceModel.__init__

    def copy(inst):
        names.append(inst.classname)
        return real_copy(inst)

    def init(inst, spec, *args, **kwargs):
        names.append(spec.name)
        real_init(inst, spec, *args, **kwargs)
    monkeypatch.setattr(model_module.InstanceModel, "copy", copy)
    monkeypatch.setattr(model_module.InstanceModel, "__init__", init)
    return names


def _proxies(broker, ctx) -> dict[str, adapter.CMPIProxyProvider]:
    """{provider module: its MI} of every module with a class of root/virt."""
    out = {}
    for reg in registrations():
        if NS in reg.namespaces and reg.module not in out:
            out[reg.module] = adapter.CMPIProxyProvider(
                "kvm_providers_" + reg.module.rsplit(".", 1)[1], broker, ctx, cmpi=F,
                module=reg.module)
    return out


def _direct_classes(prox) -> list[str]:
    """The KVM classes of root/virt of `prox` whose provider has a direct path (found from
    the providers themselves: whatever gains a direct path is covered)."""
    out = []
    for reg in registrations():
        if NS not in reg.namespaces or not reg.classname.startswith("KVM_") \
                or reg.module != prox.module_spec:
            continue
        prov = prox.proxy.providers.get(reg.classname.lower())
        if isinstance(prov, CIMProvider2) and \
                type(prov).enum_direct is not CIMProvider2.enum_direct:
            out.append(reg.classname)
    return out


@pytest.mark.parametrize("copies", [True, False], ids=["copies", "new"])
@pytest.mark.parametrize("server", SERVERS)
def test_direct_cmpi_instances_are_the_model_instances(fake, layer, set_calls, models, server,
                                                       copies, tmp_path, monkeypatch):
    """Every class with a direct path, on the fixture node (many and unusual devices) and
    on benchmark guests with snapshots, with and without a PropertyList: the CMPI
    instances made straight from the values hold what those made from the instance
    models hold (every property, its CMPI type, NULL or value; the path), and no model
    is built.  Made new (``KVM_PROVIDERS_CMPI_CLONE=0``), through the same set_property
    calls in the same order; from a template per class (.templates: copies of it in
    OpenPegasus, sfcb the template itself returned again), the template through those
    calls and each instance through those of the values that differ."""
    if not copies:
        monkeypatch.setenv("KVM_PROVIDERS_CMPI_CLONE", "0")
    broker = _server_broker(server)
    ctx = broker.context()
    schema = default_schema()
    counts: dict[str, int] = {}
    for uri in (NODE_URI, _snapshot_node(tmp_path)):
        layer(uri)
        for prox in _proxies(broker, ctx).values():
            for cn in _direct_classes(prox):
                spec = schema.spec(NS, cn)
                some = [p.name for p in list(spec.props.values())[1::3]] + ["NoSuchProperty"]
                for plist in (None, some, []):
                    fresh_a: dict = {}
                    fresh_b: dict = {}
                    conv_a = Converter(F, broker, fresh_a)
                    conv_b = Converter(F, broker, fresh_b)
                    env = prox._env(ctx)
                    path = CIMInstanceName(cn, namespace=NS)
                    set_calls.clear()
                    with request_scope():
                        before = len(models)
                        # each instance as the server takes it (sfcb: one instance
                        # changed and returned again)
                        new = [(_cells(conv_a, a), set_calls.pop(id(a), []))
                               for a in prox.proxy.MI_enumInstancesXml(
                                   env, [path], plist, CMPIForm(conv_a, NS, plist))]
                        assert models[before:] == [], (cn, plist)
                        old = [conv_b.instance(i, namespace=NS, props=plist)
                               for i in prox.proxy.MI_enumInstances(env, path, plist)]
                    assert len(new) == len(old), (cn, plist)
                    for (cells, calls), b in zip(new, old, strict=True):
                        assert cells == _cells(conv_b, b), (cn, plist)
                        if not copies or plist is not None:
                            assert calls == set_calls.get(id(b), []), cn
                        else:
                            # only what differs from the template (the same calls)
                            assert set(calls) <= set(set_calls[id(b)]), cn
                    assert fresh_a == fresh_b
                    counts[cn] = counts.get(cn, 0) + len(new)
                    conv_a.release()
                    conv_b.release()
    assert {"KVM_DiskResourceAllocationSettingData", "KVM_VirtualSystemSettingData",
            "KVM_VirtualSystemSnapshotSettingData"} <= set(counts)
    assert [cn for cn, n in counts.items() if not n] == [], counts


@pytest.mark.parametrize("server", SERVERS)
def test_enumerations_through_the_adapter_take_the_direct_path(fake, layer, models, server,
                                                              tmp_path, monkeypatch):
    """A client's enumeration of every RASD, VSSD and snapshot VSSD through the CIM
    server's subclass calls: no instance model of those classes (before: a model copy
    per instance), the same instances as through the models, and each domain's XML
    still fetched once for all subclass calls."""
    layer(_snapshot_node(tmp_path))
    monkeypatch.setattr(adapter, "share", sharing.ReadShare(max_age=60.0, watch=False))
    broker = _server_broker(server)
    ctx = broker.context()
    proxies = _proxies(broker, ctx)
    direct: list[str] = []
    for superclass, module in (
            ("CIM_ResourceAllocationSettingData", "resource_allocation"),
            ("CIM_VirtualSystemSettingData", "virtual_system_settings"),
            ("CIM_VirtualSystemSettingData", "snapshot_settings")):
        prox = proxies[f"kvm_providers.providers.{module}"]
        names = _direct_classes(prox)
        assert names, module
        direct += names
        for cn in names:
            broker.register(cn, prox, superclass=superclass)
    for superclass in ("CIM_ResourceAllocationSettingData", "CIM_VirtualSystemSettingData"):
        before = len(models)
        enum = broker.enumInstances(ctx, broker.new_object_path(NS, superclass), None)
        conv = Converter(F, broker)
        got = []
        while enum.hasNext():
            data = enum.next()
            got.append(conv.to_instance(data.value.inst))
        assert [m for m in models[before:] if m in direct] == [], superclass
        # what the models give (the harness: the embedded server's interface)
        want = []
        for cn in {i.classname for i in got}:
            prox = next(p for p in proxies.values() if cn in _direct_classes(p))
            with request_scope():
                want += list(prox.proxy.MI_enumInstances(prox._env(ctx),
                                                         CIMInstanceName(cn, namespace=NS),
                                                         None))
        assert len(got) == len(want) > 4, superclass
        key = lambda i: (i.classname, i["InstanceID"])  # noqa: E731
        for a, b in zip(sorted(got, key=key), sorted(want, key=key), strict=True):
            assert a.path == b.path
            assert {n: p.value for n, p in a.properties.items()} == \
                {n: p.value for n, p in b.properties.items()}, a.path


@pytest.mark.parametrize("value", [77, "abc", True, 70000])
def test_values_outside_the_valuemap_are_refused_alike(fake, value):
    """A value outside its property's ValueMap, or not of its type: the CMPI plan refuses
    it as a model refuses it (the same ValueError under strict models, as the suite
    runs): the one conversion and check of the embedded server's direct path."""
    from kvm_providers.provider import make_model
    classname = "KVM_DiskResourceAllocationSettingData"
    model = make_model(NS, classname)
    plan = CMPIPlan.of(default_schema(), NS, classname, None)
    errors = []
    for put in (lambda: model.__setitem__("EmulatedType", value),
                lambda: plan.text("emulatedtype", value)):
        with pytest.raises(ValueError) as err:
            put()
        errors.append(str(err.value))
    assert errors[0] == errors[1] and "EmulatedType" in errors[0]
    # A good value becomes the model's value, typed.
    assert plan.text("emulatedtype", 0) == model_module.setters_of(model.spec)[
        "emulatedtype"][1](0)
    assert type(plan.text("emulatedtype", 0)).__name__ == "Uint16"


def test_direct_path_off(fake, layer, models, tmp_path, monkeypatch):
    """KVM_PROVIDERS_CMPI_DIRECT=0: enumerations through the instance models (the path
    before), with the same instances."""
    layer(_snapshot_node(tmp_path))
    monkeypatch.setattr(adapter, "share", sharing.ReadShare(max_age=0.0, watch=False))
    broker = _server_broker("RequestHandler")
    ctx = broker.context()
    prox = _proxies(broker, ctx)["kvm_providers.providers.virtual_system_settings"]
    broker.register("KVM_VirtualSystemSettingData", prox,
                    superclass="CIM_VirtualSystemSettingData")
    got = {}
    for direct in (True, False):
        monkeypatch.setattr(adapter, "_DIRECT", direct)
        before = len(models)
        enum = broker.enumInstances(
            ctx, broker.new_object_path(NS, "KVM_VirtualSystemSettingData"), None)
        conv = Converter(F, broker)
        insts = []
        while enum.hasNext():
            data = enum.next()          # bound while its value is read (see convert.py)
            insts.append(conv.to_instance(data.value.inst))
        got[direct] = sorted((str(i.path), sorted((n, repr(p.value))
                                                  for n, p in i.properties.items()))
                             for i in insts)
        built = [m for m in models[before:] if m == "KVM_VirtualSystemSettingData"]
        assert (built == []) == direct and len(insts) > 4
    assert got[True] == got[False]


def _table_cases(layer):
    """(classname, table, element or View, ctx) of every setting of every guest of the
    fixture node (every kind of device and table) and of each guest's VSSD table, then
    the hand-made table of tests/providers/test_direct on its elements (every kind of
    row, NULLs, constants, texts to escape)."""
    from lxml import etree

    from kvm_providers.model.vssd import VSSD
    from kvm_providers.providers.common import get_domain_doc
    from kvm_providers.providers.resource_allocation import RASDProvider
    from kvm_providers.virt.domain import list_domains
    from tests.providers.test_direct import _ELEMENTS, _hand_table
    layer(NODE_URI)
    out = []
    for host in RASDProvider().hosts("KVM_DiskResourceAllocationSettingData"):
        for ref in list_domains(host):
            doc = get_domain_doc(host, ref.name)
            assert doc is not None
            ctx = doc.context()
            out.append(("KVM_VirtualSystemSettingData", VSSD, doc.root_view, ctx))
            for setting in doc.settings():
                out.append((f"KVM_{setting.kind.rasd_class}", setting.table, setting.view,
                            ctx))
    table = _hand_table()
    out += [("KVM_DiskResourceAllocationSettingData", table, etree.fromstring(text), None)
            for text in _ELEMENTS]
    out += [("KVM_DiskResourceAllocationSettingData", table,
             etree.fromstring(f"<disk><target dev='vd{i}&amp;&lt;' bus='b{i}'/></disk>"),
             None) for i in range(80)]    # more new strings than a property remembers
    return out


@pytest.mark.parametrize("plist", [None, "some", []])
@pytest.mark.parametrize("plan_class", [CMPIPlan, DirectPlan], ids=["cmpi", "text"])
def test_compiled_table_values_are_the_row_loops(layer, plan_class, plist):
    """table_values (the reader compiled per plan and table, issue 10 item 12) stores
    what the generic loop write_from_table stores - the same names, in the same order,
    the same values of the same types (CMPIPlan) or texts (DirectPlan), NULLs left unset
    alike - for every table the providers read and the hand-made one, with and without
    a PropertyList, the first time and from the remembered values after; and
    table_instance_xml of a CMPIPlan gives the loop's values."""
    from kvm_providers.providers.common.instances import (table_instance_xml, table_values,
                                                          write_from_table)
    schema = default_schema()
    cases = _table_cases(layer)
    assert len({(cn, id(t)) for cn, t, _v, _c in cases}) > 10
    checked = 0
    for _round in range(2):
        for i, (cn, table, view, ctx) in enumerate(cases):
            spec = schema.spec(NS, cn)
            names = None if plist is None else \
                plist if plist != "some" else \
                [p.name for p in list(spec.props.values())[::2]] + ["NoSuchProperty"]
            plan = plan_class.of(schema, NS, cn, names)
            key = f"x&<'/{i}"
            want, _name = plan.keyed(key)
            write_from_table(want, plan, table, view, ctx)
            got, _name = plan.keyed(key)
            assert table_values(got, plan, table, view, ctx) is got
            assert [(k, type(v), v) for k, v in got.items()] == \
                [(k, type(v), v) for k, v in want.items()], (cn, i)
            if plan_class is CMPIPlan:
                inst = table_instance_xml(plan.keyed(key)[0], plan, table, view, ctx)
                assert inst[0] is plan and list(inst[1].items()) == list(want.items())
            checked += len(want)
    assert checked > 100


@pytest.mark.parametrize("server", SERVERS)
def test_cmpi_enumerations_read_through_the_compiled_tables(fake, layer, server, tmp_path,
                                                           monkeypatch):
    """Every RASD and VSSD enumerated through the adapter (the server's subclass calls)
    reads its values through the reader compiled per (CMPI plan, table), not the generic
    row loop per instance (issue 10 item 12: that loop was the CMPI path's surplus over
    the embedded server's compiled writer): write_from_table never runs, nor the general
    key loop (keyed_in_order), and the compiled readers are made once per plan and
    table, not per instance."""
    from kvm_providers.providers.common import instances
    layer(_snapshot_node(tmp_path))
    monkeypatch.setattr(adapter, "share", sharing.ReadShare(max_age=60.0, watch=False))
    loops: list[str] = []
    compiled: list[tuple[str, int]] = []
    real_loop, real_compile = instances.write_from_table, instances._compile_table

    def loop(texts, plan, table, element, ctx=None):
        loops.append(plan.classname)
        return real_loop(texts, plan, table, element, ctx)

    def compile_table(plan, table, *args):
        compiled.append((plan.classname, id(table)))
        return real_compile(plan, table, *args)
    monkeypatch.setattr(instances, "write_from_table", loop)
    monkeypatch.setattr(instances, "_compile_table", compile_table)
    # the keys too: not through the general loop per instance
    real_keyed = DirectPlan.keyed_in_order

    def keyed_in_order(plan, *pairs):
        loops.append(f"keys of {plan.classname}")
        return real_keyed(plan, *pairs)
    monkeypatch.setattr(DirectPlan, "keyed_in_order", keyed_in_order)
    # The RASDs (one string key): each CMPIInstance made by the form's item writer from
    # the values read (CMPIForm.values_item_writer), without the key texts and the
    # converter's general entry per instance (issue 10 item 12, stop 25).
    per_instance: list[str] = []
    real_plan_keyed, real_of_values = CMPIPlan.keyed, Converter.instance_of_values

    def plan_keyed(plan, *values):
        per_instance.append(f"keyed {plan.classname}")
        return real_plan_keyed(plan, *values)

    def of_values(conv, namespace, spec, *args):
        per_instance.append(f"instance_of_values {spec.name}")
        return real_of_values(conv, namespace, spec, *args)
    monkeypatch.setattr(CMPIPlan, "keyed", plan_keyed)
    monkeypatch.setattr(Converter, "instance_of_values", of_values)
    import kvm_providers.providers.virtual_system_settings as vssd_module
    if hasattr(vssd_module, "write_from_table"):        # the old code: the loop imported
        monkeypatch.setattr(vssd_module, "write_from_table", loop)
    broker = _server_broker(server)
    ctx = broker.context()
    proxies = _proxies(broker, ctx)
    for superclass, module in (("CIM_ResourceAllocationSettingData", "resource_allocation"),
                               ("CIM_VirtualSystemSettingData", "virtual_system_settings")):
        prox = proxies[f"kvm_providers.providers.{module}"]
        for cn in _direct_classes(prox):
            broker.register(cn, prox, superclass=superclass)
    for superclass in ("CIM_ResourceAllocationSettingData", "KVM_VirtualSystemSettingData"):
        loops.clear()
        compiled.clear()
        per_instance.clear()
        enum = broker.enumInstances(ctx, broker.new_object_path(NS, superclass), None)
        got = 0
        while enum.hasNext():
            enum.next()
            got += 1
        assert got > 4, superclass
        assert loops == [], superclass
        assert len(compiled) == len(set(compiled)) < got, superclass
        if superclass == "CIM_ResourceAllocationSettingData":
            # new instances only where a template cannot serve (a NULL key: none here)
            assert per_instance == [], per_instance[:5]


@pytest.mark.parametrize("value", ["x&<'\"/1", "", "KVM/host/g/disk:vda", 7, None])
def test_cmpi_plan_keys_are_the_general_loops(value):
    """CMPIPlan.keyed's short way for one string key (the settings' InstanceID) gives what
    the general loop gives, for any text; other values take the loop (conversion,
    check, refusal as before)."""
    schema = default_schema()
    for cn in ("KVM_DiskResourceAllocationSettingData", "KVM_VirtualSystemSettingData"):
        plan = CMPIPlan.of(schema, NS, cn, None)
        want = DirectPlan.keyed_in_order(plan, ("InstanceID", value))
        assert plan.keyed(value) == want
        assert [type(v) for v in plan.keyed(value)[0].values()] == \
            [type(v) for v in want[0].values()]


def test_cmpi_table_reader_stores_plain_strings_as_they_are(monkeypatch):
    """The compiled reader of a CMPIPlan stores a plain string property's new value (a
    disk's target, path: mostly new per instance) as it is - its value, no call of
    plan.text (conversion, check) per new string."""
    from lxml import etree

    from kvm_providers.provider.model import wanted_set
    from kvm_providers.providers.common.instances import table_values, write_from_table
    from tests.providers.test_direct import _hand_table
    calls: list[str] = []
    real_text = CMPIPlan.text

    def text(plan, lk, value):
        calls.append(lk)
        return real_text(plan, lk, value)
    monkeypatch.setattr(CMPIPlan, "text", text)
    spec = default_schema().spec(NS, "KVM_DiskResourceAllocationSettingData")
    # compiled afresh; the loop's values from a plan of its own (remembering apart)
    plan = CMPIPlan(spec, wanted_set(spec, None, False), False)
    ref = CMPIPlan(spec, wanted_set(spec, None, False), False)
    table = _hand_table()
    for i in range(40):
        el = etree.fromstring(f"<disk device='cdrom'><target dev='vd{i}&lt;' bus='b{i}'/>"
                              f"</disk>")
        calls.clear()
        got = table_values({}, plan, table, el)
        assert "virtualdevice" not in calls and "bustype" not in calls, calls
        want: dict = {}
        write_from_table(want, ref, table, el)
        assert list(got.items()) == list(want.items())
        assert got["virtualdevice"] == f"vd{i}<"
