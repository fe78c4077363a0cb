"""GetInstance straight from the provider's values (issue 10 item 12, stop 30): a provider
with a direct path (``CIMProvider2.get_direct``: the ComputerSystems) answers a CMPI
GetInstance without an instance model, as the embedded server answers it (and as the CMPI
enumerations go, :mod:`kvm_providers.cmpi.direct`); every other class through its model.

Counted, never timed: the models made and the paths copied per GetInstance, the CMPI calls;
and the answers against the model path's (``KVM_PROVIDERS_CMPI_DIRECT=0``): the same
instance (path, properties, types, NULLs, filter) through the same CMPI calls, the same
errors, in both servers' fakes.
"""

import pytest
from pywbem import CIMInstanceName

import fake_cmpi

from kvm_providers.cmpi import adapter, sharing
from kvm_providers.provider import base
from kvm_providers.schema import default_schema

from tests.cmpi.test_cmpi_cost import _mi, _str
from tests.cmpi.test_cmpi_small_calls import _instance

F = fake_cmpi
NS = "root/virt"
GUESTS = 3
SERVERS = ["Pegasus", "RequestHandler"]
PLISTS = [None, [], ["Name"], ["ElementName", "EnabledState", "OperationalStatus"],
          ["otheridentifyinginfo", "NoSuchProperty"]]


@pytest.fixture
def node(node, monkeypatch):
    """The conftest's node, with a read share of its own."""
    monkeypatch.setattr(adapter, "share", sharing.ReadShare(max_age=2.0))
    return node


@pytest.fixture
def servers(fake, node):
    """{server: (broker, ctx, {short name: MI})} of both fakes, knowing every class of
    root/virt (defaults included), as a server's repository does."""
    out = {}
    for name in SERVERS:
        adapter.reset()
        broker = F.CMPIBroker(name=name)
        for cls in default_schema().all_classes(NS):
            broker.declare(cls)
        ctx = broker.context()
        out[name] = (broker, ctx, {short: _mi(broker, ctx, short) for short in
                                   ("computer_system", "system_device", "logical_devices")})
    yield out
    adapter.reset()


@pytest.fixture
def counted(monkeypatch):
    """{what: count} of the models made (``make_model`` of a GetInstance), the pywbem
    paths copied and the CMPI calls that make and fill instances."""
    counts = {"models": 0, "path copies": 0, "new_instance": 0, "set_property": 0,
              "new_object_path": 0, "add_key": 0}
    real_make = base.make_model

    def make_model(*args, **kwargs):
        counts["models"] += 1
        return real_make(*args, **kwargs)
    monkeypatch.setattr(base, "make_model", make_model)
    real_copy = CIMInstanceName.copy

    def copy(self):
        counts["path copies"] += 1
        return real_copy(self)
    monkeypatch.setattr(CIMInstanceName, "copy", copy)
    for cls, name in ((F.CMPIBroker, "new_instance"), (F.CMPIBroker, "new_object_path"),
                      (F.CMPIInstance, "set_property"), (F.CMPIObjectPath, "add_key")):
        real = getattr(cls, name)

        def counting(self, *args, _real=real, _name=name):
            counts[_name] += 1
            return _real(self, *args)
        monkeypatch.setattr(cls, name, counting)
    return counts


def _cs(broker, name="guest0000", host=None, extra=False):
    cs = broker.new_object_path(NS, "KVM_ComputerSystem")
    if host:
        cs.set_hostname(host)
    cs.add_key("CreationClassName", _str(broker, "KVM_ComputerSystem"), F.CMPI_string)
    cs.add_key("Name", _str(broker, name), F.CMPI_string)
    if extra:
        cs.add_key("SystemName", _str(broker, "not a key of a system"), F.CMPI_string)
    return cs


def _get(broker, ctx, mi, cop, plist=None):
    rslt = F.CMPIResult._new()
    rc = F.target_call(mi, "get_instance", ctx, rslt, cop, plist)
    return rc, [(_instance(i), None if i._filter is None else sorted(i._filter))
                for i in rslt.instances]


def _both_ways(monkeypatch, counted, call):
    """(answer, CMPI calls) of `call()` straight from the values, then through the model."""
    out = []
    for direct in (True, False):
        monkeypatch.setattr(adapter, "_DIRECT", direct)
        before = dict(counted)
        got = call()
        out.append((got, {k: counted[k] - before[k] for k in counted
                          if k not in ("models", "path copies")}))
    monkeypatch.setattr(adapter, "_DIRECT", True)
    return out


@pytest.mark.parametrize("server", SERVERS)
def test_a_systems_get_instance_builds_no_model(servers, counted, server):
    """GetInstance of a ComputerSystem: no instance model and no copy of its path (main: a
    model and two path copies per call), one new instance, its path, two keys."""
    broker, ctx, mis = servers[server]
    cop = _cs(broker)
    before = dict(counted)
    rc, got = _get(broker, ctx, mis["computer_system"], cop)
    assert rc == (0, None) and len(got) == 1
    delta = {k: counted[k] - before[k] for k in counted}
    assert delta["models"] == 0, delta
    assert delta["path copies"] == 0, delta
    assert delta["new_instance"] == 1 and delta["new_object_path"] == 1, delta
    assert delta["add_key"] == 2, delta


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("plist", PLISTS)
def test_the_same_instance_through_the_same_calls(servers, counted, monkeypatch, server,
                                                  plist):
    """Several guests, with and without a PropertyList: the instance straight from the
    values is the model path's (path, properties in order, types, NULLs, filter), made
    through as many CMPI calls of each kind."""
    broker, ctx, mis = servers[server]
    for guest in ("guest0000", "guest0001", "guest0002"):
        (direct, dcalls), (model, mcalls) = _both_ways(
            monkeypatch, counted,
            lambda g=guest: _get(broker, ctx, mis["computer_system"], _cs(broker, g), plist))
        assert direct == model
        assert direct[0] == (0, None) and len(direct[1]) == 1
        assert dcalls == mcalls


@pytest.mark.parametrize("server", SERVERS)
def test_odd_paths_answer_alike(servers, counted, monkeypatch, server):
    """A path with a host, with a binding that is no key of the class (dropped, as the
    models drop it), a class or CreationClassName spelled otherwise (the models'), a
    Name of another family: the same answers both ways."""
    broker, ctx, mis = servers[server]
    mi = mis["computer_system"]

    def odd_ccn():
        cs = broker.new_object_path(NS, "KVM_ComputerSystem")
        cs.add_key("Name", _str(broker, "guest0001"), F.CMPI_string)
        cs.add_key("CreationClassName", _str(broker, "kvm_computersystem"), F.CMPI_string)
        return cs

    def odd_class():
        cs = broker.new_object_path(NS, "kvm_computersystem")
        cs.add_key("CreationClassName", _str(broker, "KVM_ComputerSystem"), F.CMPI_string)
        cs.add_key("Name", _str(broker, "guest0001"), F.CMPI_string)
        return cs
    for make in (lambda: _cs(broker, host="somehost"), lambda: _cs(broker, extra=True),
                 odd_ccn, odd_class, lambda: _cs(broker, "xen:guest0000")):
        (direct, dcalls), (model, mcalls) = _both_ways(
            monkeypatch, counted, lambda m=make: _get(broker, ctx, mi, m()))
        assert direct == model
        assert dcalls == mcalls


@pytest.mark.parametrize("server", SERVERS)
def test_a_missing_guest_is_not_found_alike(servers, counted, monkeypatch, server):
    """A Name that names no domain: CIM_ERR_NOT_FOUND with the model path's description."""
    broker, ctx, mis = servers[server]
    (direct, _d), (model, _m) = _both_ways(
        monkeypatch, counted,
        lambda: _get(broker, ctx, mis["computer_system"], _cs(broker, "noSuchGuest")))
    assert direct == model
    assert direct[0][0] == F.CMPI_RC_ERR_NOT_FOUND and direct[1] == []
    assert b"noSuchGuest" in direct[0][1]


@pytest.mark.parametrize("server", SERVERS)
def test_classes_without_a_direct_path_take_their_models(servers, counted, server):
    """A logical device (no get_direct): its GetInstance through its model, as before."""
    broker, ctx, mis = servers[server]
    rslt = F.CMPIResult._new()
    assert F.target_call(mis["system_device"], "associator_names", ctx, rslt, _cs(broker),
                         "KVM_SystemDevice", None, None, None) == (0, None)
    before = counted["models"]
    rc, got = _get(broker, ctx, mis["logical_devices"], rslt.paths[0])
    assert rc == (0, None) and len(got) == 1
    assert counted["models"] - before == 1


@pytest.mark.parametrize("server", SERVERS)
def test_class_defaults_a_new_instance_holds_are_not_set_again(servers, monkeypatch, server):
    """A ComputerSystem's EnabledDefault and TransitioningToState (unset by the provider,
    class defaults 2 and 12, which a new instance of either server holds): no set_property
    for them (main: one each per GetInstance), and the instance holds them all the same;
    asked for in a PropertyList (a filtered instance), they are set as before."""
    broker, ctx, mis = servers[server]
    names: list = []
    real = F.CMPIInstance.set_property

    def set_property(self, name, value, ctype):
        names.append(name)
        return real(self, name, value, ctype)
    monkeypatch.setattr(F.CMPIInstance, "set_property", set_property)
    for _ in range(2):      # the first call of a class reads what a new instance holds
        names.clear()
        rslt = F.CMPIResult._new()
        assert F.target_call(mis["computer_system"], "get_instance", ctx, rslt, _cs(broker),
                             None) == (0, None)
        held = dict(_instance(rslt.instances[0])[1])
        assert "EnabledDefault" not in names and "TransitioningToState" not in names, names
        assert "ElementName" in names and "EnabledState" in names
        assert held["EnabledDefault"][2] == "Uint16(cimtype='uint16', minvalue=0, " \
            "maxvalue=65535, 2)"
        assert held["TransitioningToState"][2].endswith(" 12)")
    names.clear()
    rslt = F.CMPIResult._new()
    assert F.target_call(mis["computer_system"], "get_instance", ctx, rslt, _cs(broker),
                         ["EnabledDefault", "TransitioningToState", "Name"]) == (0, None)
    assert "EnabledDefault" in names and "TransitioningToState" in names


@pytest.mark.parametrize("server", SERVERS)
def test_a_path_of_exactly_the_keys_is_checked_in_one_pass(servers, counted, monkeypatch,
                                                           server):
    """A GetInstance path of exactly its class's keys: neither the extra-key trim nor the
    key check's own pass (main: both, each with its schema lookup and lists), straight
    from the values and through the model; a path with a binding more or a key less goes
    through both, with the answers as before (test_odd_paths_answer_alike, and
    test_cmpi_missing_keys)."""
    broker, ctx, mis = servers[server]
    passes: list = []
    for name in ("_without_extra_keys", "_check_keys"):
        real = getattr(base.CIMProvider2, name)

        def counting(self, *args, _real=real, _name=name):
            passes.append(_name)
            return _real(self, *args)
        monkeypatch.setattr(base.CIMProvider2, name, counting)
    for direct in (True, False):
        monkeypatch.setattr(adapter, "_DIRECT", direct)
        rc, got = _get(broker, ctx, mis["computer_system"], _cs(broker))
        assert rc == (0, None) and len(got) == 1
        assert passes == []
    rc, got = _get(broker, ctx, mis["computer_system"], _cs(broker, extra=True))
    assert rc == (0, None) and len(got) == 1
    assert passes == ["_without_extra_keys", "_check_keys"]
    passes.clear()
    lacking = broker.new_object_path(NS, "KVM_ComputerSystem")
    lacking.add_key("Name", _str(broker, "guest0000"), F.CMPI_string)
    rc, got = _get(broker, ctx, mis["computer_system"], lacking)
    assert rc[0] != 0 and got == []
    assert passes == ["_without_extra_keys", "_check_keys"]
