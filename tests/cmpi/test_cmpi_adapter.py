"""The CMPI adapter against the fake of cmpi-bindings' SWIG module.

Every provider call goes through fake_cmpi.target_call(), which checks the
answer the way cmpi-bindings' TargetCall() does.  The ``fake`` fixture fails
a test if the adapter did anything that would crash or corrupt a real server.
"""

import importlib.util
import logging
import os

import pytest
import pywbem
from pywbem import (CIMDateTime, CIMInstance, CIMInstanceName, Char16, Real32, Real64,
                    Sint8, Sint64, Uint8, Uint16, Uint32, Uint64)

import fake_cmpi
from conftest import HERE, NS, PROV

from kvm_providers.cmpi import CMPICIMOMHandle, Converter, resolve_module

call = fake_cmpi.target_call
F = fake_cmpi


def op(broker, cn="Test_Types", **keys):
    cop = broker.new_object_path(NS, cn)
    for k, v in keys.items():
        val = F.CMPIValue()
        s = broker.new_string(v)
        val.string = s
        cop.add_key(k, val, F.CMPI_string)
    return cop


def result():
    return F.CMPIResult._new()


def cell(inst, name):
    c = inst._get(name)
    assert c is not None, f"property {name} missing"
    return c


def mod(mi):
    return mi.proxy.module


# -- instance operations ------------------------------------------------------


def test_enum_instance_names(mi, broker, ctx):
    r = result()
    assert call(mi, "enum_instance_names", ctx, r, op(broker)) == (0, None)
    assert r.done_count == 1
    assert [(p._ns, p._classname, p._key_values()) for p in r.paths] == [
        (NS, "Test_Types", {"id": (F.CMPI_string, "a")}),
        (NS, "Test_Types", {"id": (F.CMPI_string, "b")})]


EXPECTED_CELLS = {
    "Id": (F.CMPI_string, "a"),
    "B": (F.CMPI_boolean, 1), "C": (F.CMPI_char16, 0xE9),
    "U8": (F.CMPI_uint8, 255), "U16": (F.CMPI_uint16, 65535),
    "U32": (F.CMPI_uint32, 4294967295), "U64": (F.CMPI_uint64, 2**64 - 1),
    "S8": (F.CMPI_sint8, -128), "S16": (F.CMPI_sint16, -32768),
    "S32": (F.CMPI_sint32, -2**31), "S64": (F.CMPI_sint64, -2**63),
    "R32": (F.CMPI_real32, 1.5), "R64": (F.CMPI_real64, -2.25e300),
    "S": (F.CMPI_string, "h\u00e9llo \u2603 <&>"),
    "DT": (F.CMPI_dateTime, "20240229123456.789012+060"),
    "IV": (F.CMPI_dateTime, "00000012030405.000006:000"),
}


def test_enum_instances_every_type_to_cmpi(mi, broker, ctx):
    r = result()
    assert call(mi, "enum_instances", ctx, r, op(broker), None) == (0, None)
    assert len(r.instances) == 2 and r.done_count == 1
    inst = r.instances[0]
    assert inst._path._ns == NS and inst._path._key_values() == {"id": (F.CMPI_string, "a")}
    for name, (ctype, payload) in EXPECTED_CELLS.items():
        c = cell(inst, name)
        assert (c.type, c.payload) == (ctype, payload), name
    ref = cell(inst, "Rf")
    assert ref.type == F.CMPI_ref
    assert (ref.payload._ns, ref.payload._classname, ref.payload._key_values()) == \
        (NS, "Test_Types", {"id": (F.CMPI_string, "b")})
    emb = cell(inst, "Emb")
    assert emb.type == F.CMPI_instance
    assert emb.payload._path._classname == "Test_Embedded"
    assert (emb.payload._get("Name").payload, emb.payload._get("Value").type) == \
        ("inner", F.CMPI_uint32)
    assert cell(inst, "EmbObj").type == F.CMPI_instance
    # NULLs keep their declared type
    assert (cell(inst, "Nul").type, cell(inst, "Nul").state) == (F.CMPI_string,
                                                                   F.CMPI_nullValue)
    assert (cell(inst, "NullU32").type, cell(inst, "NullU32").state) == (F.CMPI_uint32,
                                                                         F.CMPI_nullValue)
    nulla = cell(inst, "NullA")
    assert (nulla.type, nulla.state) == (F.CMPI_uint32 | F.CMPI_ARRAY, F.CMPI_nullValue)
    # arrays
    arrays = {"BA": (F.CMPI_boolean, [1, 0]), "CA": (F.CMPI_char16, [ord("x"), 0x2603]),
              "U8A": (F.CMPI_uint8, [0, 255]), "U16A": (F.CMPI_uint16, [1, 2]),
              "U32A": (F.CMPI_uint32, [3]), "U64A": (F.CMPI_uint64, [2**64 - 1]),
              "S8A": (F.CMPI_sint8, [-1]), "S16A": (F.CMPI_sint16, [-2]),
              "S32A": (F.CMPI_sint32, [-3]), "S64A": (F.CMPI_sint64, [-4]),
              "R32A": (F.CMPI_real32, [0.5]), "R64A": (F.CMPI_real64, [0.25]),
              "SA": (F.CMPI_string, ["one", "", "three"]),
              "DTA": (F.CMPI_dateTime, ["20000101000000.000000+000",
                                        "00000001000000.000000:000"])}
    for name, (base, payloads) in arrays.items():
        c = cell(inst, name)
        assert c.type == base | F.CMPI_ARRAY, name
        assert [e.payload for e in c.payload] == payloads, name
        assert all(e.type == base for e in c.payload), name
    emba = cell(inst, "EmbA")
    assert emba.type == F.CMPI_instance | F.CMPI_ARRAY
    assert [e.payload._get("Name").payload for e in emba.payload] == ["e1", "e2"]
    nulls = cell(inst, "WithNulls")
    assert [(e.state, e.payload) for e in nulls.payload] == [
        (0, "x"), (F.CMPI_nullValue, None), (0, "z")]


def test_enum_instances_property_list(mi, broker, ctx):
    r = result()
    assert call(mi, "enum_instances", ctx, r, op(broker), ["U8", "Emb"]) == (0, None)
    assert sorted(r.instances[0]._props) == ["Emb", "Id", "U8"]


def test_get_instance_and_not_found(mi, broker, ctx):
    r = result()
    assert call(mi, "get_instance", ctx, r, op(broker, Id="b"), ["S"]) == (0, None)
    (inst,) = r.instances
    assert sorted(inst._props) == ["Id", "S"]
    assert ("get_instance", "b", "alice") in mod(mi).CALLS   # CMPIPrincipal from the context
    r = result()
    rc, msg = call(mi, "get_instance", ctx, r, op(broker, Id="zz"), None)
    assert rc == F.CMPI_RC_ERR_NOT_FOUND
    assert isinstance(msg, bytes) and b"zz" in msg
    assert r.instances == []


def test_missing_key_is_answered_as_under_the_embedded_server(mi, broker, ctx):
    """A path lacking the key that selects the instance: CIM_ERR_FAILED "Missing Id:
    No Id specified", as the embedded server answers it (libvirt-cim's code and
    words, docs/compat.md), through the adapter too."""
    rc, msg = call(mi, "get_instance", ctx, result(), op(broker), None)
    assert rc == F.CMPI_RC_ERR_FAILED
    assert b"Missing Id: No Id specified" in msg and b"lacks key property Id" in msg


def _set(broker, cinst, name, field, value, ctype, keep):
    v = F.CMPIValue()
    if field == "string":
        value = keep(broker.new_string(value))
    elif field == "dateTime":
        value = keep(broker.new_datetime_from_string(value))
    setattr(v, field, value)
    cinst.set_property(name, v, ctype)


def _cmpi_instance(broker, ident):
    """A CMPIInstance with every type, built with the CMPI API as a server would."""
    keep = []
    k = keep.append
    kp = lambda o: (k(o), o)[1]  # noqa: E731
    cinst = broker.new_instance(op(broker, Id=ident), 0)
    _set(broker, cinst, "Id", "string", ident, F.CMPI_string, kp)
    for name, field, value, ctype in [
            ("B", "boolean", 1, F.CMPI_boolean), ("C", "char16", 0x2603, F.CMPI_char16),
            ("U8", "uint8", 200, F.CMPI_uint8), ("U16", "uint16", 65000, F.CMPI_uint16),
            ("U32", "uint32", 4000000000, F.CMPI_uint32), ("U64", "uint64", 2**63 + 5,
                                                           F.CMPI_uint64),
            ("S8", "sint8", -100, F.CMPI_sint8), ("S16", "sint16", -30000, F.CMPI_sint16),
            ("S32", "sint32", -2000000000, F.CMPI_sint32), ("S64", "sint64", -2**62,
                                                            F.CMPI_sint64),
            ("R32", "real32", 0.75, F.CMPI_real32), ("R64", "real64", 1e-300, F.CMPI_real64),
            ("S", "string", "caf\u00e9", F.CMPI_string),
            ("DT", "dateTime", "20240101010101.000001-300", F.CMPI_dateTime),
            ("IV", "dateTime", "00000001020304.000005:000", F.CMPI_dateTime)]:
        _set(broker, cinst, name, field, value, ctype, kp)
    cinst.set_property("Nul", None, F.CMPI_string)
    # reference
    rv = F.CMPIValue()
    rv.ref = op(broker, Id="a")
    cinst.set_property("Rf", rv, F.CMPI_ref)
    # embedded instance
    emb = broker.new_instance(broker.new_object_path(None, "Test_Embedded"), 1)
    _set(broker, emb, "Name", "string", "e", F.CMPI_string, kp)
    ev = F.CMPIValue()
    ev.inst = emb
    cinst.set_property("Emb", ev, F.CMPI_instance)
    # arrays, one with a NULL element
    arr = kp(broker.new_array(3, F.CMPI_uint16))
    for i, n in enumerate([1, None, 3]):
        if n is None:
            arr.set(i, F.CMPIValue(), F.CMPI_null)
        else:
            e = F.CMPIValue()
            e.uint16 = n
            arr.set(i, e, F.CMPI_uint16)
    av = F.CMPIValue()
    av.array = arr
    cinst.set_property("U16A", av, F.CMPI_uint16 | F.CMPI_ARRAY)
    sarr = kp(broker.new_array(2, F.CMPI_string))
    for i, s in enumerate(["x", "y"]):
        e = F.CMPIValue()
        e.string = kp(broker.new_string(s))
        sarr.set(i, e, F.CMPI_string)
    sv = F.CMPIValue()
    sv.array = sarr
    cinst.set_property("SA", sv, F.CMPI_string | F.CMPI_ARRAY)
    cinst.set_property("NullA", None, F.CMPI_uint32 | F.CMPI_ARRAY)
    return cinst


def test_create_instance_every_type_from_cmpi(mi, broker, ctx):
    r = result()
    newinst = _cmpi_instance(broker, "c")
    assert call(mi, "create_instance", ctx, r, op(broker, Id="c"), newinst) == (0, None)
    assert [p._key_values() for p in r.paths] == [{"id": (F.CMPI_string, "c")}]
    (_, modify, got), = [c for c in mod(mi).CALLS if c[0] == "set_instance"]
    assert modify is False
    assert got.path == CIMInstanceName("Test_Types", {"Id": "c"}, namespace=NS)
    expect = {"B": True, "C": Char16("\u2603"), "U8": Uint8(200), "U16": Uint16(65000),
              "U32": Uint32(4000000000), "U64": Uint64(2**63 + 5), "S8": Sint8(-100),
              "S64": Sint64(-2**62), "R32": Real32(0.75), "R64": Real64(1e-300),
              "S": "caf\u00e9", "DT": CIMDateTime("20240101010101.000001-300"),
              "IV": CIMDateTime("00000001020304.000005:000"), "Nul": None,
              "U16A": [Uint16(1), None, Uint16(3)], "SA": ["x", "y"], "NullA": None}
    for name, value in expect.items():
        assert got[name] == value, name
        if value is not None and not isinstance(value, list):
            assert type(got[name]) is type(value), name
    assert got["Rf"] == CIMInstanceName("Test_Types", {"Id": "a"}, namespace=NS)
    emb = got["Emb"]
    assert isinstance(emb, CIMInstance) and emb.classname == "Test_Embedded"
    assert emb["Name"] == "e" and emb.path is None
    assert got.properties["Emb"].embedded_object == "instance"
    assert got.properties["U16A"].type == "uint16" and got.properties["U16A"].is_array
    # and back out again: the round trip keeps every value
    r = result()
    assert call(mi, "get_instance", ctx, r, op(broker, Id="c"), None) == (0, None)
    out = r.instances[0]
    assert (cell(out, "U64").type, cell(out, "U64").payload) == (F.CMPI_uint64, 2**63 + 5)
    assert (cell(out, "C").type, cell(out, "C").payload) == (F.CMPI_char16, 0x2603)
    assert cell(out, "DT").payload == "20240101010101.000001-300"
    assert [(e.state, e.payload) for e in cell(out, "U16A").payload] == [
        (0, 1), (F.CMPI_nullValue, None), (0, 3)]


def test_create_existing_is_already_exists(mi, broker, ctx):
    rc, msg = call(mi, "create_instance", ctx, result(), op(broker, Id="a"),
                   _cmpi_instance(broker, "a"))
    assert (rc, msg) == (F.CMPI_RC_ERR_ALREADY_EXISTS, b"a exists")


def test_modify_and_delete(mi, broker, ctx):
    cinst = _cmpi_instance(broker, "a")
    r = result()
    assert call(mi, "set_instance", ctx, r, op(broker, Id="a"), cinst, ["U8"]) == (0, None)
    (_, modify, got), = [c for c in mod(mi).CALLS if c[0] == "set_instance"]
    assert modify is True and sorted(got.properties) == ["Id", "U8"]
    assert mod(mi).STORE["a"]["U8"] == Uint8(200)
    assert call(mi, "delete_instance", ctx, result(), op(broker, Id="a")) == (0, None)
    assert "a" not in mod(mi).STORE
    rc, msg = call(mi, "delete_instance", ctx, result(), op(broker, Id="a"))
    assert rc == F.CMPI_RC_ERR_NOT_FOUND and isinstance(msg, bytes)


def test_exec_query_not_supported(mi, broker, ctx):
    rc, msg = call(mi, "exec_query", ctx, result(), op(broker), "select * from X", "WQL")
    assert rc == F.CMPI_RC_ERR_NOT_SUPPORTED and isinstance(msg, bytes)


# -- methods --------------------------------------------------------------------


def _args(broker, keep):
    args = broker.new_args()
    values = [("B", "boolean", 0, F.CMPI_boolean), ("C", "char16", ord("q"), F.CMPI_char16),
              ("U8", "uint8", 7, F.CMPI_uint8), ("U64", "uint64", 2**64 - 2, F.CMPI_uint64),
              ("S8", "sint8", -7, F.CMPI_sint8), ("R64", "real64", 3.5, F.CMPI_real64),
              ("S", "string", "\u00fcber", F.CMPI_string),
              ("DT", "dateTime", "20230102030405.000000+000", F.CMPI_dateTime)]
    for name, field, value, ctype in values:
        v = F.CMPIValue()
        if field == "string":
            value = keep(broker.new_string(value))
        elif field == "dateTime":
            value = keep(broker.new_datetime_from_string(value))
        setattr(v, field, value)
        args.set(name, v, ctype)
    rv = F.CMPIValue()
    rv.ref = op(broker, Id="b")
    args.set("Rf", rv, F.CMPI_ref)
    emb = broker.new_instance(broker.new_object_path(None, "Test_Embedded"), 1)
    nv = F.CMPIValue()
    nv.uint32 = 9
    emb.set_property("Value", nv, F.CMPI_uint32)
    ev = F.CMPIValue()
    ev.inst = emb
    args.set("Emb", ev, F.CMPI_instance)
    arr = keep(broker.new_array(2, F.CMPI_ref))
    for i, ident in enumerate("ab"):
        e = F.CMPIValue()
        e.ref = op(broker, Id=ident)
        arr.set(i, e, F.CMPI_ref)
    av = F.CMPIValue()
    av.array = arr
    args.set("RfA", av, F.CMPI_ref | F.CMPI_ARRAY)
    args.set("SA", None, F.CMPI_string | F.CMPI_ARRAY)
    return args


def test_invoke_method_every_type_both_ways(mi, broker, ctx):
    keep = []
    k = lambda o: (keep.append(o), o)[1]  # noqa: E731
    inargs, outargs = _args(broker, k), broker.new_args()
    r = result()
    assert call(mi, "invoke_method", ctx, r, op(broker, Id="a"), "Echo", inargs,
                outargs) == (0, None)
    (_, objname, params), = [c for c in mod(mi).CALLS if c[0] == "echo"]
    assert objname == CIMInstanceName("Test_Types", {"Id": "a"}, namespace=NS)
    assert params["param_b"] is False and params["param_c"] == Char16("q")
    assert params["param_u64"] == Uint64(2**64 - 2) and params["param_s8"] == -7
    assert params["param_s"] == "\u00fcber"
    assert params["param_dt"] == CIMDateTime("20230102030405.000000+000")
    assert params["param_rf"] == CIMInstanceName("Test_Types", {"Id": "b"}, namespace=NS)
    assert isinstance(params["param_emb"], CIMInstance) and params["param_emb"]["Value"] == 9
    assert [p["Id"] for p in params["param_rfa"]] == ["a", "b"]
    assert params["param_sa"] is None
    # the return value and the output parameters, typed as declared
    (ret,) = r.data
    assert (ret.type, ret.payload) == (F.CMPI_uint32, 11)
    assert r.done_count == 1
    out = outargs._args
    assert (out["B"].type, out["B"].payload) == (F.CMPI_boolean, 0)
    assert (out["C"].type, out["C"].payload) == (F.CMPI_char16, ord("q"))
    assert (out["U64"].type, out["U64"].payload) == (F.CMPI_uint64, 2**64 - 2)
    assert (out["R64"].type, out["R64"].payload) == (F.CMPI_real64, 3.5)
    assert (out["DT"].type, out["DT"].payload) == (F.CMPI_dateTime,
                                                   "20230102030405.000000+000")
    assert out["Rf"].type == F.CMPI_ref
    assert out["Emb"].type == F.CMPI_instance
    assert out["RfA"].type == F.CMPI_ref | F.CMPI_ARRAY and len(out["RfA"].payload) == 2
    assert out["SA"].state == F.CMPI_nullValue


def test_method_on_class_path(mi, broker, ctx):
    outargs = broker.new_args()
    r = result()
    assert call(mi, "invoke_method", ctx, r, op(broker), "Stat", broker.new_args(),
                outargs) == (0, None)
    assert outargs._args["Where"].payload == "Test_Types:0"
    assert (r.data[0].type, r.data[0].payload) == (F.CMPI_uint32, 0)


def test_method_errors(mi, broker, ctx):
    keep = []
    args = broker.new_args()
    v = F.CMPIValue()
    v.uint32 = 4
    args.set("Code", v, F.CMPI_uint32)
    t = F.CMPIValue()
    t.string = s = broker.new_string("bad \u2603 value")
    keep.append(s)
    args.set("Text", t, F.CMPI_string)
    rc, msg = call(mi, "invoke_method", ctx, result(), op(broker), "Fail", args,
                   broker.new_args())
    assert (rc, msg) == (4, "bad \u2603 value".encode())
    rc, msg = call(mi, "invoke_method", ctx, result(), op(broker), "NoSuch",
                   broker.new_args(), broker.new_args())
    assert rc == F.CMPI_RC_ERR_METHOD_NOT_FOUND and b"NoSuch" in msg


def test_provider_bug_is_failed_with_traceback_logged(mi, broker, ctx):
    rc, msg = call(mi, "invoke_method", ctx, result(), op(broker), "Crash",
                   broker.new_args(), broker.new_args())
    assert rc == F.CMPI_RC_ERR_FAILED
    assert b"ValueError" in msg and "provider bug \u2603".encode() in msg
    errors = [text for sev, _id, text in broker.logs if sev == F.CMPI_SEV_ERROR]
    assert any("Traceback" in t and "cim_method_crash" in t for t in errors)


# -- associations ---------------------------------------------------------------


@pytest.mark.parametrize("assoc", [None, "Test_Assoc"])
def test_associations(mi, broker, ctx, assoc):
    a = op(broker, Id="a")
    r = result()
    assert call(mi, "associator_names", ctx, r, a, assoc, None, None, None) == (0, None)
    assert [p._key_values() for p in r.paths] == [{"id": (F.CMPI_string, "b")}]
    r = result()
    assert call(mi, "associators", ctx, r, a, assoc, "Test_Types", "Left", "Right",
                ["S"]) == (0, None)
    assert [sorted(i._props) for i in r.instances] == [["Id", "S"]]
    # the targets came from an up-call GetInstance, routed back to the provider
    assert ("getInstance", str(op(broker, Id="b")), ["S"]) in broker.upcalls
    r = result()
    assert call(mi, "references", ctx, r, a, assoc, "Left", None) == (0, None)
    (ref,) = r.instances
    assert ref._path._classname == "Test_Assoc"
    assert cell(ref, "Right").payload._key_values() == {"id": (F.CMPI_string, "b")}
    r = result()
    assert call(mi, "reference_names", ctx, r, a, assoc, "Right") == (0, None)
    assert r.paths == []          # a is the Left end
    r = result()
    assert call(mi, "reference_names", ctx, r, a, assoc, None) == (0, None)
    (path,) = r.paths
    assert set(path._key_values()) == {"left", "right"}


def test_association_of_other_class_gives_nothing(mi, broker, ctx):
    r = result()
    assert call(mi, "associator_names", ctx, r, op(broker, Id="a"), "Test_Types", None,
                None, None) == (0, None)
    assert r.paths == [] and r.done_count == 1


# -- up-calls ---------------------------------------------------------------------


@pytest.mark.parametrize("strict", [True, False])
def test_upcalls_from_a_provider(mi, broker, ctx, fake, monkeypatch, strict):
    monkeypatch.setattr(fake, "STRICT_BYTES_PLIST", strict)
    r = result()
    assert call(mi, "invoke_method", ctx, r, op(broker), "Upcall", broker.new_args(),
                broker.new_args()) == (0, None)
    (_, names, insts, one, is_sub), = [c for c in mod(mi).CALLS if c[0] == "upcall"]
    assert [n["Id"] for n in names] == ["a", "b"]
    assert all(n.namespace == NS for n in names)
    assert [sorted(i.properties) for i in insts] == [["Id", "U8"], ["Id", "U8"]]
    assert insts[0]["U8"] == Uint8(255) and type(insts[0]["U8"]) is Uint8
    assert one["DT"] == CIMDateTime("20240229123456.789012+060")
    assert is_sub is True
    assert ("enumInstances", f"{NS}:Test_Types", ["U8"]) in broker.upcalls
    assert (F.CMPI_SEV_INFO, mi.miname, "upcall done") in broker.logs
    assert (F.CMPI_LEV_VERBOSE, "test", "traced") in broker.traces


def test_cimom_handle_against_the_repository(fake, broker, ctx, schema):
    ch = CMPICIMOMHandle(fake, broker, ctx)
    inst = CIMInstance("Other_Thing", properties={"Name": "x", "N": Uint16(3),
                                                  "When": CIMDateTime("00000000000001.000000:000")},
                       path=CIMInstanceName("Other_Thing", {"Name": "x"}, namespace=NS))
    path = ch.CreateInstance(inst)
    assert path == CIMInstanceName("Other_Thing", {"Name": "x"}, namespace=NS)
    with pytest.raises(pywbem.CIMError) as exc:
        ch.CreateInstance(inst)
    assert exc.value.status_code == pywbem.CIM_ERR_ALREADY_EXISTS
    got = ch.GetInstance(path)
    assert got["N"] == Uint16(3) and got["When"].is_interval
    inst["N"] = Uint16(4)
    ch.ModifyInstance(inst, ["N"])
    assert ch.GetInstance(path)["N"] == 4
    assert [p["Name"] for p in ch.EnumerateInstanceNames(NS, "Other_Thing")] == ["x"]
    ch.DeleteInstance(path)
    with pytest.raises(pywbem.CIMError) as exc:
        ch.GetInstance(path)
    assert exc.value.status_code == pywbem.CIM_ERR_NOT_FOUND and "Other_Thing" in \
        exc.value.status_description

    def method(cop, inargs, outargs):
        v = F.CMPIValue()
        v.string = s = broker.new_string("out!")
        outargs.set("Msg", v, F.CMPI_string)
        rv = F.CMPIValue()
        x = inargs.get("X")            # bound: CMPIData.value points into it
        rv.uint32 = x.value.uint32 + 1
        cell = rv._cell(F.CMPI_uint32)
        del s
        return cell
    broker.methods[("other_thing", "bump")] = method
    rval, outs = ch.InvokeMethod(CIMInstanceName("Other_Thing", namespace=NS), "Bump",
                                 X=Uint32(41))
    assert (rval, outs) == (Uint32(42), {"Msg": "out!"})
    with pytest.raises(pywbem.CIMError) as exc:
        ch.InvokeMethod(CIMInstanceName("Other_Thing", namespace=NS), "Nope")
    assert exc.value.status_code == pywbem.CIM_ERR_METHOD_NOT_FOUND
    with pytest.raises(pywbem.CIMError) as exc:
        ch.InvokeMethod(CIMInstanceName("Other_Thing"), "Bump")
    assert exc.value.status_code == pywbem.CIM_ERR_INVALID_NAMESPACE


def test_broker_error_codes_become_cim_errors(fake, broker, ctx):
    ch = CMPICIMOMHandle(fake, broker, ctx)
    broker.execQuery = lambda *a: fake._raise(fake.CMPI_RC_ERR_INVALID_HANDLE, "gone")
    broker.classPathIsA = lambda *a: fake._raise(fake.CMPI_RC_ERR_INVALID_HANDLE, "gone")
    with pytest.raises(pywbem.CIMError) as exc:
        ch.is_subclass(NS, "A", "B")
    assert exc.value.status_code == pywbem.CIM_ERR_FAILED
    assert "CMPI rc 60" in exc.value.status_description


# -- indications -------------------------------------------------------------------


def _filter(broker):
    return F.CMPISelectExp(broker, "SELECT * FROM Test_Indication", "WQL")


@pytest.mark.parametrize("server", ["RequestHandler", "Pegasus"])
def test_indication_calls_and_delivery_from_a_thread(fake, schema, server):
    broker = fake.CMPIBroker(name=server)
    ctx = broker.context()
    from kvm_providers.cmpi import get_cmpi_proxy_provider
    mi = get_cmpi_proxy_provider(PROV, broker, ctx)
    m = mod(mi)
    m.reset()
    cls_path = broker.new_object_path(NS, "Test_Indication")
    assert call(mi, "authorize_filter", ctx, _filter(broker), "Test_Indication", cls_path,
                "bob") == (0, None)
    rc, msg = call(mi, "authorize_filter", ctx, _filter(broker), "Test_Indication",
                   cls_path, "intruder")
    assert (rc, msg) == (F.CMPI_RC_ERR_ACCESS_DENIED, b"intruder may not subscribe")
    assert call(mi, "must_poll", ctx, _filter(broker), "Test_Indication", cls_path)[0] == \
        F.CMPI_RC_ERR_NOT_SUPPORTED
    assert call(mi, "enable_indications", ctx) == (0, None)
    assert call(mi, "activate_filter", ctx, _filter(broker), "Test_Indication", cls_path,
                True) == (0, None)
    for t in m.THREADS:
        t.join(10)
    (ns, ind, thread), = broker.indications
    assert (ns, thread) == (NS, "indication-sender")
    assert ind._path._classname == "Test_Indication"
    # both servers need the namespace on the indication's path (sfcb 1.3.18
    # crashes without it: fake_cmpi.CMPIBroker.deliverIndication)
    assert ind._path._ns == NS
    assert ind._get("Message").payload == "started \u2603"
    src = ind._get("SourceInstance")
    assert src.type == F.CMPI_instance and src.payload._get("U64").payload == 2**64 - 1
    assert call(mi, "deactivate_filter", ctx, _filter(broker), "Test_Indication", cls_path,
                False) == (0, None)
    assert call(mi, "disable_indications", ctx) == (0, None)
    names = [c[0] for c in m.CALLS]
    assert names[names.index("enable_indications"):] == [
        "enable_indications", "activate_filter", "deactivate_filter", "disable_indications"]
    assert ("activate_filter", "SELECT * FROM Test_Indication", NS, "Test_Indication",
            True) in m.CALLS
    assert ("deactivate_filter", "SELECT * FROM Test_Indication", NS, "Test_Indication",
            False) in m.CALLS


@pytest.mark.parametrize("server", ["RequestHandler", "Pegasus"])
def test_filter_on_a_superclass_reaches_the_provider_as_its_class(fake, schema, server):
    """A filter on a superclass of the provider's indication class: sfcb calls the
    filter functions with the provider's class as className and classPath;
    OpenPegasus (CMPIProviderManager::handleCreateSubscriptionRequest, as observed
    with `SELECT * FROM CIM_InstIndication`) passes the filter's FROM class as
    className for every call and the provider's class only in classPath.  The
    provider must see its own class either way (as the embedded server passes it)."""
    broker = fake.CMPIBroker(name=server)
    ctx = broker.context()
    from kvm_providers.cmpi import get_cmpi_proxy_provider
    mi = get_cmpi_proxy_provider(PROV, broker, ctx)
    m = mod(mi)
    m.reset()
    query = "SELECT * FROM CIM_Indication"
    filt = F.CMPISelectExp(broker, query, "WQL")
    cls_path = broker.new_object_path(NS, "Test_Indication")
    class_name = "CIM_Indication" if server == "Pegasus" else "Test_Indication"
    assert call(mi, "authorize_filter", ctx, filt, class_name, cls_path, "bob") == (0, None)
    assert call(mi, "activate_filter", ctx, filt, class_name, cls_path, True) == (0, None)
    assert call(mi, "deactivate_filter", ctx, filt, class_name, cls_path, True) == (0, None)
    assert ("authorize_filter", query, NS, "Test_Indication", "bob") in m.CALLS
    assert ("activate_filter", query, NS, "Test_Indication", True) in m.CALLS
    assert ("deactivate_filter", query, NS, "Test_Indication", True) in m.CALLS
    for t in m.THREADS:
        t.join(10)


def test_fake_catches_delivery_from_an_unattached_thread(fake, broker, ctx):
    """The fake is strict where a server is: a thread must attach first."""
    import threading
    ch = CMPICIMOMHandle(fake, broker, ctx)
    errors = []

    def run():
        try:
            ch.DeliverIndication(NS, CIMInstance("Test_Indication"))
        except RuntimeError as exc:
            errors.append(exc)
    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert errors and "not attached" in str(errors[0])
    fake.VIOLATIONS.clear()


# -- cleanup ------------------------------------------------------------------------


def test_cleanup_never_unloads_and_shuts_down_with_the_last_terminating_mi(
        fake, schema, broker, ctx):
    from kvm_providers.cmpi import adapter, get_cmpi_proxy_provider
    mi = get_cmpi_proxy_provider(PROV, broker, ctx)     # instance MI
    assert get_cmpi_proxy_provider(PROV, broker, ctx) is mi   # association MI
    m = mod(mi)
    # The server asks (idle): never, whatever the module's can_unload says.
    for unloadable in (True, False):
        m.UNLOADABLE[0] = unloadable
        assert call(mi, "cleanup", ctx, False) == (F.CMPI_RC_NEVER_UNLOAD, None)
    m.UNLOADABLE[0] = True
    assert ("shutdown",) not in m.CALLS and ("can_unload",) not in m.CALLS
    # Terminating: the module shuts down with the last MI of the name ...
    assert call(mi, "cleanup", ctx, True) == (0, None)
    assert ("shutdown",) not in m.CALLS            # one MI still uses the module
    assert call(mi, "cleanup", ctx, True) == (0, None)
    assert m.CALLS[-1] == ("shutdown",)
    # ... a re-enabled provider loads afresh, and the old proxy stays referenced.
    assert get_cmpi_proxy_provider(PROV, broker, ctx) is not mi
    assert any(o is mi for o in adapter._kept)


# -- logging, context, loading --------------------------------------------------------


def test_logging_goes_to_the_server_and_falls_back(fake, schema):
    broker = fake.CMPIBroker(log_supported=False, trace_supported=False)
    ctx = broker.context()
    from kvm_providers.cmpi import get_cmpi_proxy_provider
    mi = get_cmpi_proxy_provider(PROV, broker, ctx)
    env = mi._env(ctx)
    env.get_logger().log_warn("careful")
    env.get_logger().trace_info("comp", "detail")
    assert (F.CMPI_SEV_WARNING, mi.miname, "careful") in broker.syslog
    assert (F.CMPI_SEV_INFO, "comp", "detail") in broker.syslog
    logging.getLogger("kvm_providers.virt.test").warning("from the library")
    assert any(text == "from the library" for _s, _i, text in broker.syslog)


def test_context_values(mi, broker):
    ctx = broker.context({"CMPIPrincipal": "carol", "CMPIInvocationFlags": "x"})
    env = mi._env(ctx)
    assert env.get_user_name() == "carol"
    assert env.get_context_value("nope", 5) == 5
    assert env.get_context()["CMPIInvocationFlags"] == "x"


def test_entry_module_is_what_cmpi_bindings_imports(fake, schema, broker, ctx):
    top = os.path.dirname(os.path.dirname(HERE))
    spec = importlib.util.spec_from_file_location(
        "cmpi_pywbem_bindings", os.path.join(top, "cmpi_pywbem_bindings.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    prox = module.get_cmpi_proxy_provider(PROV, broker, ctx)
    assert call(prox, "enum_instance_names", ctx, result(), op(broker))[0] == 0


def test_resolve_module(tmp_path, monkeypatch):
    from kvm_providers.registry import table
    assert resolve_module("/x/y") == "/x/y.py"
    (tmp_path / "kvm_providers_thing.py").write_text("")
    assert resolve_module("kvm_providers_thing", str(tmp_path)) == \
        str(tmp_path / "kvm_providers_thing.py")
    monkeypatch.setattr(table, "TABLE", [table.Entry("{P}_Thing", "thing", ("instance",))])
    assert resolve_module("kvm_providers_thing", str(tmp_path / "none")) == \
        "kvm_providers.providers.thing"
    assert resolve_module("some.module", str(tmp_path)) == "some.module"


def test_load_failure_answers_every_call_with_the_cause(fake, schema, broker, ctx):
    """A module that cannot load gives an MI that says why (not "can't import StringIO")."""
    from kvm_providers.cmpi import get_cmpi_proxy_provider
    prov = get_cmpi_proxy_provider("/nonexistent/prov", broker, ctx)
    assert any(sev == F.CMPI_SEV_ERROR and "loading provider /nonexistent/prov failed" in text
               and "FileNotFoundError" in text for sev, _id, text in broker.logs)
    rc, msg = call(prov, "enum_instance_names", ctx, result(), op(broker))
    assert rc == F.CMPI_RC_ERR_FAILED
    assert b"FileNotFoundError" in msg and b"/nonexistent/prov" in msg
    assert call(prov, "cleanup", ctx, False) == (F.CMPI_RC_NEVER_UNLOAD, None)


# -- the converter alone, and what the fake guards against --------------------------


@pytest.mark.parametrize("value,cim_type", [
    (True, "boolean"), (Char16("z"), "char16"), (Uint8(1), "uint8"), (Uint64(2**64 - 1),
                                                                       "uint64"),
    (Sint8(-128), "sint8"), (Real32(2.5), "real32"), (Real64(1e10), "real64"),
    ("text", "string"), (CIMDateTime("20200202020202.020202+000"), "datetime"),
    (CIMDateTime("00000000000000.000001:000"), "datetime"),
    ([Uint8(1), None], "uint8"), ([], "string"), (None, "uint16"), ([None], "datetime"),
])
def test_converter_round_trip(fake, broker, value, cim_type):
    conv = Converter(fake, broker)
    cval, ctype = conv.value(value, cim_type)
    cell = fake._cell_from(cval, ctype, "test")
    data = fake.CMPIData._from_cell(cell)
    back, t, is_array = conv.from_data(data)
    assert (t, is_array) == (cim_type, isinstance(value, list))
    assert back == value
    if value is not None and not isinstance(value, list):
        assert type(back) is type(value)
    conv.release()


def test_converter_rejects_out_of_range(fake, broker):
    conv = Converter(fake, broker)
    with pytest.raises((ValueError, pywbem.CIMError, OverflowError)):
        conv.value(300, "uint8")
    with pytest.raises(pywbem.CIMError):
        conv.value("ab", "char16")


def test_fake_catches_a_released_string(fake, broker):
    """Why the converter keeps what it makes: SWIG does not keep member proxies alive."""
    v = fake.CMPIValue()
    v.string = broker.new_string("gone")     # the proxy dies right here
    inst = broker.new_instance(broker.new_object_path(NS, "X"), 0)
    with pytest.raises(RuntimeError):
        inst.set_property("S", v, fake.CMPI_string)
    fake.VIOLATIONS.clear()


def test_fake_enumeration_has_no_python3_iteration(fake):
    assert not hasattr(fake.CMPIEnumeration, "__next__")
    assert not hasattr(fake.CMPIEnumeration, "__iter__")
    assert hasattr(fake.CMPIEnumeration, "next") and hasattr(fake.CMPIEnumeration, "hasNext")


def test_fake_target_call_drops_str_messages(fake):
    class Bad:
        def enable_indications(self, ctx):
            return (1, "text")
    with pytest.raises(RuntimeError):
        fake.target_call(Bad(), "enable_indications", None)
    fake.VIOLATIONS.clear()
