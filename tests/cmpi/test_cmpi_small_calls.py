"""What a small call (GetInstance, AssociatorNames, EnumerateInstanceNames) costs the adapter
per CMPI call, counted (issue 10 item 12, stop 26: in OpenPegasus' agent each such request is one
CMPI call whose Python was a third of the request).

Counted, never timed: the generic conversions of an instance model's arrays
(``Converter.value``), the URI text of a source path, the template copier looked up, the
paths' string forms and pywbem's checks of a path read; and the answers against those of
the code before (the same properties, types, NULLs, paths and keys, in both servers' fakes).
"""

import sys

import pytest
from pywbem import CIMInstanceName

import fake_cmpi

from kvm_providers.cmpi import adapter, convert, sharing
from kvm_providers.cmpi import plan as cplan

from tests.cmpi.test_cmpi_cost import _mi, _str

F = fake_cmpi
NS = "root/virt"
GUESTS = 3
SERVERS = ["Pegasus", "RequestHandler"]


@pytest.fixture
def node(node, monkeypatch):
    """The conftest's node, with a read share of its own."""
    monkeypatch.setattr(adapter, "share", sharing.ReadShare(max_age=2.0))
    return node


def _cs(broker, name="guest0000"):
    cs = broker.new_object_path(NS, "KVM_ComputerSystem")
    cs.add_key("CreationClassName", _str(broker, "KVM_ComputerSystem"), F.CMPI_string)
    cs.add_key("Name", _str(broker, name), F.CMPI_string)
    return cs


def _val(cell):
    if isinstance(cell.payload, list):
        return (cell.type, cell.state, [_val(c) for c in cell.payload])
    if isinstance(cell.payload, F.CMPIObjectPath):
        return (cell.type, cell.state, _path(cell.payload))
    return (cell.type, cell.state, repr(cell.payload))


def _instance(inst):
    return (str(inst.objectpath()), [(n, _val(inst._get(n))) for n in inst._props])


def _path(p):
    return (p._ns, p._classname, p._host, [(k, _val(c)) for k, c in p._keys.items()])


@pytest.fixture
def servers(fake, node):
    """{server: (broker, ctx, {short name: MI})} of both fakes, the MIs of a small call."""
    out = {}
    for name in SERVERS:
        adapter.reset()
        broker = F.CMPIBroker(name=name)
        ctx = broker.context()
        out[name] = (broker, ctx, {short: _mi(broker, ctx, short) for short in
                                   ("computer_system", "system_device", "logical_devices")})
    yield out
    adapter.reset()


def _get_instance(broker, ctx, mi, name="guest0000"):
    rslt = F.CMPIResult._new()
    assert F.target_call(mi, "get_instance", ctx, rslt, _cs(broker, name), None) == (0, None)
    return [_instance(i) for i in rslt.instances]


def _associator_names(broker, ctx, mi):
    rslt = F.CMPIResult._new()
    assert F.target_call(mi, "associator_names", ctx, rslt, _cs(broker), "KVM_SystemDevice",
                         None, None, None) == (0, None)
    return [_path(p) for p in rslt.paths]


def _enum_names(broker, ctx, mi):
    rslt = F.CMPIResult._new()
    cop = broker.new_object_path(NS, "KVM_ComputerSystem")
    assert F.target_call(mi, "enum_instance_names", ctx, rslt, cop) == (0, None)
    return [_path(p) for p in rslt.paths]


@pytest.mark.parametrize("server", SERVERS)
def test_an_instance_models_arrays_skip_the_generic_conversion(servers, monkeypatch, server):
    """A ComputerSystem's string and integer arrays (OperationalStatus, ...) are made by the
    plan's array makers, not by Converter.value's dispatch per element; the instance is the
    one the generic conversion makes."""
    broker, ctx, mis = servers[server]
    calls = []
    real_value = convert.Converter.value

    def value(self, val, cim_type=None, is_array=None, into=None):
        calls.append((cim_type, is_array))
        return real_value(self, val, cim_type, is_array, into)
    monkeypatch.setattr(convert.Converter, "value", value)
    fast = _get_instance(broker, ctx, mis["computer_system"])
    arrays = [c for c in calls if c[1]]
    assert not arrays, arrays
    # the same instance through the generic conversion
    monkeypatch.setattr(cplan, "set_array", lambda *args: False)
    monkeypatch.setattr(convert, "set_array", lambda *args: False)
    calls.clear()
    assert _get_instance(broker, ctx, mis["computer_system"]) == fast
    assert sum(1 for c in calls if c[1]) >= 2      # the arrays went through value()


def test_array_makers_take_only_what_value_takes_the_same_way(fake):
    """A list of str for a string array, a list of the declared pywbem integer class for an
    integer array; anything else (a NULL element, another integer class, a tuple) is left
    to Converter.value."""
    from pywbem import Uint16, Uint32
    from kvm_providers.schema import default_schema
    broker = F.CMPIBroker(name="Pegasus")
    conv = convert.Converter(F, broker)
    spec = default_schema().spec(NS, "KVM_ComputerSystem")
    p = cplan.InstancePlan(conv, spec, frozenset(spec.props), False)
    cinst = broker.new_instance(broker.new_object_path(NS, "KVM_ComputerSystem"), 0)
    setp, cval = cinst.set_property, F.CMPIValue()
    assert cplan.set_array(conv, p, "operationalstatus", [Uint16(2)], setp, cval)
    assert cplan.set_array(conv, p, "statusdescriptions", ["a", "b"], setp, cval)
    assert cplan.set_array(conv, p, "statusdescriptions", [], setp, cval)
    for lk, value in (("operationalstatus", [Uint32(2)]), ("operationalstatus", [2]),
                      ("operationalstatus", [Uint16(2), None]), ("operationalstatus", (Uint16(2),)),
                      ("statusdescriptions", ["a", None]), ("name", ["x"])):
        assert not cplan.set_array(conv, p, lk, value, setp, cval), (lk, value)


@pytest.mark.parametrize("server", SERVERS)
def test_an_association_call_writes_no_uri_of_its_source(servers, monkeypatch, server):
    """The source object is part of an association call's request identity by its parts, not
    by pywbem's URI text (str of the path); calls of one request still share one scope."""
    broker, ctx, mis = servers[server]
    uris = []
    real = CIMInstanceName.to_wbem_uri

    def to_wbem_uri(self, *args, **kwargs):
        uris.append(self.classname)
        return real(self, *args, **kwargs)
    monkeypatch.setattr(CIMInstanceName, "to_wbem_uri", to_wbem_uri)
    _associator_names(broker, ctx, mis["system_device"])
    assert uris == []
    src = CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                 "Name": "guest0000"}, namespace=NS)
    same = CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                  "Name": "guest0000"}, namespace=NS)
    other = CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                   "Name": "guest0001"}, namespace=NS)
    assert adapter._source(src) == adapter._source(same) != adapter._source(other)
    hash(adapter._source(src))


@pytest.mark.parametrize("server", SERVERS)
def test_small_calls_look_up_no_copier(servers, monkeypatch, server):
    """A GetInstance or AssociatorNames makes no instance from a template: its converter
    never looks up the copier (the broker's name, the environment) it would need for that;
    an enumeration of instances still does."""
    from kvm_providers.cmpi import templates
    broker, ctx, mis = servers[server]
    looked = []
    real = templates.instance_copier

    def instance_copier(cmpi, brk):
        looked.append(1)
        return real(cmpi, brk)
    monkeypatch.setattr(templates, "instance_copier", instance_copier)
    _get_instance(broker, ctx, mis["computer_system"])
    _associator_names(broker, ctx, mis["system_device"])
    _enum_names(broker, ctx, mis["computer_system"])
    assert looked == []
    rslt = F.CMPIResult._new()
    cop = broker.new_object_path(NS, "KVM_ComputerSystem")
    assert F.target_call(mis["computer_system"], "enum_instances", ctx, rslt, cop,
                         None) == (0, None)
    assert looked and len(rslt.instances) == GUESTS


@pytest.mark.parametrize("server", SERVERS)
def test_pegasus_paths_are_read_without_their_text(servers, monkeypatch, server):
    """OpenPegasus' paths always hold a namespace: read without their string form (which
    Pegasus builds for every call); sfcb's may not (a NULL one crashes namespace()): read
    through it, as before.  The same answers either way."""
    broker, ctx, mis = servers[server]
    texts = []
    real = convert.Converter.path_namespace

    def path_namespace(cop, classname=None):
        texts.append(cop._classname)
        return real(cop, classname)
    monkeypatch.setattr(convert.Converter, "path_namespace", staticmethod(path_namespace))
    got = (_get_instance(broker, ctx, mis["computer_system"]),
           _associator_names(broker, ctx, mis["system_device"]))
    if server == "Pegasus":
        assert texts == []
    else:
        assert "KVM_ComputerSystem" in texts
    for mi in mis.values():
        mi._ns_always = False
    texts.clear()
    assert (_get_instance(broker, ctx, mis["computer_system"]),
            _associator_names(broker, ctx, mis["system_device"])) == got
    assert texts


def test_paths_read_without_pywbems_checks(fake, monkeypatch):
    """A path read from CMPI with string keys is built without pywbem's checks per key
    binding (its public constructor); the path is the one that constructor builds."""
    from pywbem import Uint16
    broker = F.CMPIBroker(name="Pegasus")
    conv = convert.Converter(F, broker)
    built = []
    real = convert.CIMInstanceName

    def counting(*args, **kwargs):
        built.append(args[0])
        return real(*args, **kwargs)
    monkeypatch.setattr(convert, "CIMInstanceName", counting)
    got = conv.to_path(_cs(broker))
    assert built == []
    assert got == CIMInstanceName("KVM_ComputerSystem", {
        "CreationClassName": "KVM_ComputerSystem", "Name": "guest0000"}, namespace=NS)
    assert list(got.keybindings) == ["CreationClassName", "Name"]
    # a number key: pywbem's constructor, as before
    cop = broker.new_object_path(NS, "C")
    v = F.CMPIValue()
    v.uint16 = 7
    cop.add_key("N", v, F.CMPI_uint16)
    assert conv.to_path(cop) == CIMInstanceName("C", {"N": Uint16(7)}, namespace=NS)


# -- stop 28: the paths handed over, the stand-ins, the scope of a call that never shares -------


def _count_new_strings(monkeypatch):
    made = []
    real = F.CMPIBroker.new_string

    def new_string(self, text):
        # the adapter's (not the client's paths of the tests)
        if sys._getframe(1).f_globals["__name__"].startswith("kvm_providers."):
            made.append(text)
        return real(self, text)
    monkeypatch.setattr(F.CMPIBroker, "new_string", new_string)
    return made


@pytest.mark.parametrize("server", SERVERS)
def test_paths_handed_over_make_no_cmpi_string(servers, monkeypatch, server):
    """The string keys of the paths a call returns (AssociatorNames' device paths,
    EnumerateInstanceNames' system paths) go through the converter's stand-in CMPIString,
    whose characters add_key copies as set_property does: no CMPIString per key (before: one
    per distinct key value of the call, 19 for the 11 devices of a guest).  The paths are
    those made through CMPIStrings (no stand-in)."""
    broker, ctx, mis = servers[server]
    made = _count_new_strings(monkeypatch)
    F.TEXT_VALUES.clear()
    names = _associator_names(broker, ctx, mis["system_device"])
    systems = _enum_names(broker, ctx, mis["computer_system"])
    assert len(names) >= 5 and len(systems) == GUESTS
    assert made == []
    keys = sum(len(p[3]) for p in names + systems)
    assert sum(tv.points for tv in F.TEXT_VALUES) >= keys
    from kvm_providers.cmpi import chars
    monkeypatch.setattr(chars, "text_value_of", lambda conv: None)
    assert (_associator_names(broker, ctx, mis["system_device"]),
            _enum_names(broker, ctx, mis["computer_system"])) == (names, systems)
    assert len(made) >= len(names)       # (one per distinct key value, as before)


def test_a_key_text_the_stand_in_refuses_goes_through_a_cmpi_string(fake, monkeypatch):
    """A key of a lone surrogate (UTF-8 fails): through a CMPIString as before, whatever SWIG
    makes of it; the other keys of the path through the stand-in."""
    broker = F.CMPIBroker(name="Pegasus")
    conv = convert.Converter(F, broker)
    made = _count_new_strings(monkeypatch)
    cop = conv.object_path(CIMInstanceName("C", {"A": "ok", "B": "bad\udc80"}, namespace=NS))
    assert made == ["bad\udc80"]
    assert _path(cop)[3] == [("A", (F.CMPI_string, F.CMPI_keyValue, "'ok'")),
                             ("B", (F.CMPI_string, F.CMPI_keyValue, repr("bad\udc80")))]
    conv.release()


@pytest.mark.parametrize("server", SERVERS)
def test_converters_reuse_their_stand_ins(servers, monkeypatch, server):
    """A released converter gives its stand-in CMPIString back for the next one (in a server
    each was a CMPIString of the server's made to find its string table, a SWIG CMPIValue and
    a ctypes cell, per CMPI call): calls one after the other use one (before: one per call)."""
    broker, ctx, mis = servers[server]
    _get_instance(broker, ctx, mis["computer_system"])
    made = []
    real = F.TextValue.__init__

    def init(self, conv=None):
        made.append(1)
        real(self, conv)
    monkeypatch.setattr(F.TextValue, "__init__", init)
    got = [_get_instance(broker, ctx, mis["computer_system"], f"guest000{i % GUESTS}")
           for i in range(6)]
    _associator_names(broker, ctx, mis["system_device"])
    _enum_names(broker, ctx, mis["computer_system"])
    assert made == []
    assert got[0] == got[3] != got[1]


@pytest.mark.parametrize("server", SERVERS)
def test_a_get_instance_shares_no_scope(servers, monkeypatch, server):
    """A client's GetInstance, which a server never splits, runs in a request scope of its
    own without a shared scope's bookkeeping (lock, parts, clocks); it ends the current
    shared scope as before (an AssociatorNames after it shares nothing with one before it),
    and the same instances come out."""
    broker, ctx, mis = servers[server]
    first = _get_instance(broker, ctx, mis["computer_system"])
    shared = []
    real = sharing._Shared.__init__

    def init(self, *args, **kwargs):
        shared.append(args[1].op)
        real(self, *args, **kwargs)
    monkeypatch.setattr(sharing._Shared, "__init__", init)
    assert [_get_instance(broker, ctx, mis["computer_system"]) for _ in range(3)] == [first] * 3
    assert shared == []
    _associator_names(broker, ctx, mis["system_device"])
    assert adapter.share._current is not None
    _get_instance(broker, ctx, mis["computer_system"])
    assert adapter.share._current is None
    _associator_names(broker, ctx, mis["system_device"])
    assert shared == ["AssociatorNames", "AssociatorNames"]


@pytest.mark.parametrize("server", SERVERS)
def test_string_keys_read_without_the_generic_conversion(servers, monkeypatch, server):
    """The string keys of a call's object path are read with the SWIG calls from_data makes
    for them, without its dispatch (a GetInstance's two keys: no from_data); a key of
    another type (a number, a reference) through from_data as before, the same values."""
    broker, ctx, mis = servers[server]
    calls = []
    real = convert.Converter.from_data

    def from_data(self, data, namespace=None):
        calls.append(data.type)
        return real(self, data, namespace)
    monkeypatch.setattr(convert.Converter, "from_data", from_data)
    _get_instance(broker, ctx, mis["computer_system"])
    assert F.CMPI_string not in calls
    conv = convert.Converter(F, broker)
    cop = broker.new_object_path(NS, "C")
    v = F.CMPIValue()
    v.uint16 = 7
    cop.add_key("N", v, F.CMPI_uint16)
    cop.add_key("S", _str(broker, "x"), F.CMPI_string)
    cop.add_key("E", _str(broker, ""), F.CMPI_string)
    calls.clear()
    from pywbem import Uint16
    assert conv.to_path(cop) == CIMInstanceName("C", {"N": Uint16(7), "S": "x", "E": ""},
                                                namespace=NS)
    assert calls == [F.CMPI_uint16]
