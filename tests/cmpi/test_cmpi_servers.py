"""What OpenPegasus, sfcb and cmpi-bindings do that the adapter must live with.

Each behaviour was seen when the providers ran in the real servers
(/work/shared/real-servers.md) and is modelled in fake_cmpi.py from the
servers' and cmpi-bindings' sources:

* cmpi-bindings wraps the broker of the first MI before anything imported
  ``cmpi``: a bare SwigPyObject (fake_cmpi.CmpiBindings, SWIG_TYPES_READY);
* ``import cmpi`` fails in a Python 3 build without ``_cmpi``;
* its Cleanup/TargetCleanup release the provider object without the GIL and
  finalise Python with the last MI (both abort the process);
* sfcb leaves the namespace of reference keys NULL and
  ``CMPIObjectPath.namespace()`` strdup()s it;
* Pegasus checks the CMPI type of every property against the class (also
  NULLs: rc 61) and refuses a NULL value pointer for an array element, sfcb
  stores such an element as 0;
* both servers complete a client's instance with every class property
  (NULL or the class default) before a provider sees it;
* sfcb calls an association provider once per request with the client's
  AssocClass, Pegasus once per association class.
"""

import os

import pytest
from pywbem import (CIMInstance, CIMInstanceName, MOFCompiler, MOFWBEMConnection, Uint8,
                    Uint32)

import fake_cmpi
from conftest import HERE, NS, PROV

from kvm_providers.cmpi import CMPICIMOMHandle, loader

F = fake_cmpi
call = fake_cmpi.target_call

_CLASSES = []


def classes():
    """The test classes as pywbem CIMClass objects (what the server's repository holds)."""
    if not _CLASSES:
        handle = MOFWBEMConnection()
        MOFCompiler(handle=handle, search_paths=[HERE], verbose=False,
                    log_func=lambda msg: None).compile_file(
                        os.path.join(HERE, "cmpitest.mof"), NS)
        _CLASSES.extend(handle.classes[NS].values())
    return _CLASSES


def server_broker(name):
    """A broker of `name` ("Pegasus" or sfcb's "RequestHandler") that knows the classes."""
    broker = F.CMPIBroker(name=name)
    for cls in classes():
        broker.declare(cls)
    return broker


def op(broker, cn="Test_Types", ns=NS, **keys):
    cop = broker.new_object_path(ns, cn)
    for k, v in keys.items():
        val = F.CMPIValue()
        if isinstance(v, F.CMPIObjectPath):
            val.ref = v
            cop.add_key(k, val, F.CMPI_ref)
        else:
            val.string = s = broker.new_string(v)
            cop.add_key(k, val, F.CMPI_string)
            del s           # the key was copied by add_key
    return cop


def result():
    return F.CMPIResult._new()


def cell(inst, name):
    c = inst._get(name)
    assert c is not None, f"property {name} missing"
    return c


# -- item 1: the first MI of a process ---------------------------------------------------


def test_the_first_mi_of_a_process_works(process, schema):
    """cmpi-bindings wraps the first broker before `cmpi` is imported, unless the entry
    module imported it: a single-interface provider used to fail every call with
    "'SwigPyObject' object has no attribute 'new_object_path'"."""
    bindings = process()
    broker = F.CMPIBroker()
    ctx = broker.context()
    handle = bindings.create_mi(PROV, broker, ctx)          # its only MI
    assert F.SWIG_TYPES_READY          # the entry module imported cmpi
    r = result()
    assert bindings.call(handle, "enum_instance_names", ctx, r, op(broker)) == (0, None)
    assert [p._key_values()["id"][1] for p in r.paths] == ["a", "b"]


def test_a_bare_broker_is_rewrapped(fake, schema):
    """A bare SwigPyObject that arrives anyway gets its proxy class."""
    from kvm_providers.cmpi import get_cmpi_proxy_provider
    broker = F.CMPIBroker()
    ctx = broker.context()
    mi = get_cmpi_proxy_provider(PROV, F.SwigPyObject(broker), F.SwigPyObject(ctx))
    assert isinstance(mi.broker, F.CMPIBroker) and mi.broker == broker
    r = result()
    assert call(mi, "enum_instance_names", ctx, r, op(broker)) == (0, None)
    assert len(r.paths) == 2
    mi._env(ctx).get_logger().log_info("through the re-wrapped broker")
    assert (F.CMPI_SEV_INFO, mi.miname, "through the re-wrapped broker") in broker.logs


def test_fake_bare_objects_have_no_methods(fake):
    bare = F.SwigPyObject(F.CMPIBroker())
    with pytest.raises(AttributeError, match="'SwigPyObject' object has no attribute "
                                             "'new_object_path'"):
        bare.new_object_path(NS, "X")
    assert loader.is_bare(bare) and F.object_at(int(bare)) is not None


# -- item 2: `import cmpi` ----------------------------------------------------------------------


@pytest.mark.parametrize("server", ["Pegasus", "RequestHandler"])
def test_cmpi_import_failure_is_reported_with_its_cause(process, schema, capfd, server):
    """No `_cmpi`: the cause reaches the server's log (Pegasus), stderr (both) and the
    client, instead of "can't import StringIO"."""
    bindings = process(cmpi_importable=False)
    broker = F.CMPIBroker(name=server, log_supported=server == "Pegasus")
    ctx = broker.context()
    handle = bindings.create_mi(PROV, broker, ctx)
    assert "No module named '_cmpi'" in capfd.readouterr().err
    if server == "Pegasus":
        assert any(sev == F.CMPI_SEV_ERROR and "No module named '_cmpi'" in text
                   and "cannot import cmpi-bindings' module cmpi" in text
                   for sev, _id, text in broker.logs)
    rc, msg = bindings.call(handle, "enum_instance_names", ctx, result(), op(broker))
    assert rc == F.CMPI_RC_ERR_FAILED and b"No module named '_cmpi'" in msg
    assert bindings.cleanup(handle, ctx, False) == F.CMPI_RC_NEVER_UNLOAD
    assert bindings.mi_count == 2           # pinned even so: a shutdown does not abort
    assert bindings.cleanup(handle, ctx, True) == F.CMPI_RC_OK
    assert bindings.aborted is None and bindings.mi_count == 1


def _lib(path, with_symbol):
    with open(path, "wb") as fh:
        fh.write(b"\x7fELF" + b"\0" * 64 + (loader.PYINIT + b"\0" if with_symbol else b"x")
                 + b"\0" * 64)
    return str(path)


def test_loader_finds_the_library_that_exports_pyinit_cmpi(tmp_path):
    plain = _lib(tmp_path / "libc.so.6", False)
    other = _lib(tmp_path / "libother.so", True)
    named = _lib(tmp_path / "libpy3CmpiProvider.so", False)
    prov = _lib(tmp_path / "libpy3CmpiProvider.so.1", True)
    maps = tmp_path / "maps"

    def write(*paths):
        maps.write_text("".join(
            f"7f00{i:04x}000-7f00{i:04x}fff r-xp 00000000 08:01 {i} {p}\n"
            for i, p in enumerate(paths)) + "7fff0000-7fff1000 rw-p 00000000 00:00 0 [stack]\n")
        return str(maps)
    # cmpi-bindings' library first; the same file mapped twice counts once
    assert loader.mapped_libraries(write(plain, prov, prov, named)) == [plain, prov, named]
    assert loader.find_cmpi_extension(write(other, plain, prov)) == prov
    # a library named like it without the symbol does not count; then any with it
    assert loader.find_cmpi_extension(write(named, plain, other)) == other
    assert loader.find_cmpi_extension(write(plain, named)) is None
    assert loader.find_cmpi_extension(str(tmp_path / "nomaps")) is None


# -- item 9: unloading -------------------------------------------------------------------------


def test_unloading_keeps_the_process_alive_and_the_state(process, schema):
    """Idle unload requests are refused, so the modules keep their state; a shutdown
    (cimprovider -d, server stop) neither frees the provider objects without the GIL nor
    lets cmpi-bindings finalise Python; a re-enabled provider works."""
    bindings = process()
    broker = F.CMPIBroker()
    ctx = broker.context()
    mis = [bindings.create_mi(PROV, broker, ctx, kind)
           for kind in ("Instance", "Association", "Method")]
    assert bindings.mi_count == 4        # and the one MI that keeps the interpreter
    module = mis[0].impl.proxy.module
    module.STORE["a"]["U8"] = Uint8(7)   # in-memory state, e.g. a remembered RequestedState
    # sfcb asks the first provider of the library after 60 s idle; Pegasus asks each
    for handle in mis:
        assert bindings.cleanup(handle, ctx, False) == F.CMPI_RC_NEVER_UNLOAD
    assert module.STORE["a"]["U8"] == Uint8(7) and bindings.mi_count == 4
    # cimprovider -d / server shutdown: every MI, terminating
    for handle in mis:
        assert bindings.cleanup(handle, ctx, True) == F.CMPI_RC_OK
    assert bindings.aborted is None and bindings.mi_count == 1
    assert module.CALLS.count(("shutdown",)) == 1
    # cimprovider -e: the provider is loaded again and answers
    again = bindings.create_mi(PROV, broker, ctx)
    r = result()
    assert bindings.call(again, "enum_instance_names", ctx, r, op(broker)) == (0, None)
    assert len(r.paths) == 2


def test_fake_models_cmpi_bindings_aborting_on_the_last_cleanup(fake):
    """What happens without the adapter's precautions."""
    class Plain:
        def cleanup(self, ctx, terminating):
            return (0, None)

    class Bindings(F.CmpiBindings):
        def _entry(self):
            class Module:
                @staticmethod
                def get_cmpi_proxy_provider(miname, broker, ctx):
                    return Plain()          # nobody else keeps it
            return Module
    bindings = Bindings(None)
    broker = F.CMPIBroker()
    handle = bindings.create_mi("x", broker, broker.context())
    with pytest.raises(RuntimeError, match="PyThreadState_Get"):
        bindings.cleanup(handle, broker.context(), True)
    F.VIOLATIONS.clear()
    keep = Plain()
    bindings = Bindings(None)
    handle = bindings.create_mi("y", broker, broker.context())
    handle.impl = keep
    with pytest.raises(RuntimeError, match="PyEval_AcquireLock"):
        bindings.cleanup(handle, broker.context(), True)
    F.VIOLATIONS.clear()


# -- item 10: NULL namespaces --------------------------------------------------------------------


def test_reference_keys_without_namespace(mi, broker, ctx):
    """sfcb leaves the namespace of reference keys a client sent without one NULL:
    namespace() on them would crash the provider process.  They are in the
    namespace of the path they are keys of."""
    left = op(broker, ns=None, Id="a")
    right = op(broker, ns=None, Id="b")
    assoc = op(broker, "Test_Assoc", Left=left, Right=right)
    r = result()
    assert call(mi, "get_instance", ctx, r, assoc, None) == (0, None)
    (inst,) = r.instances
    assert cell(inst, "Left").payload._ns == NS


def test_fake_namespace_of_a_null_namespace_crashes(fake, broker):
    path = broker.new_object_path(None, "Test_Types")
    assert str(path) == "Test_Types"
    with pytest.raises(RuntimeError, match="strdup"):
        path.namespace()
    fake.VIOLATIONS.clear()
    assert str(op(broker, Id='q"1')) == f'{NS}:Test_Types.Id="q\\"1"'


# -- item 7: typed NULLs ---------------------------------------------------------------------------


def _mi(server, schema):
    from kvm_providers.cmpi import get_cmpi_proxy_provider
    broker = server_broker(server)
    ctx = broker.context()
    prox = get_cmpi_proxy_provider(PROV, broker, ctx)
    prox.proxy.module.reset()
    broker.register("Test_Types", prox)
    broker.register("Test_Assoc", prox, association=True)
    return prox, broker, ctx


def test_pegasus_null_embedded_instances_are_typed(fake, schema):
    """Pegasus rejected a NULL EmbeddedInstance property sent as a CMPI string (rc 61):
    Associators, enumerations, GetInstance of such instances failed."""
    mi, broker, ctx = _mi("Pegasus", schema)
    mi.proxy.module.STORE["b"].update(Emb=None, EmbObj=None, EmbA=[None, None])
    r = result()
    assert call(mi, "associators", ctx, r, op(broker, Id="a"), "Test_Assoc", None, None,
                None, None) == (0, None)
    (inst,) = r.instances
    assert (cell(inst, "Emb").type, cell(inst, "Emb").state) == (F.CMPI_instance,
                                                                 F.CMPI_nullValue)
    assert cell(inst, "EmbObj").type == F.CMPI_instance
    emba = cell(inst, "EmbA")
    assert emba.type == F.CMPI_instance | F.CMPI_ARRAY
    assert [(e.type, e.state) for e in emba.payload] == [(F.CMPI_instance,
                                                          F.CMPI_nullValue)] * 2
    assert inst._dropped == []


@pytest.mark.parametrize("server", ["Pegasus", "RequestHandler"])
def test_null_array_elements_stay_null(fake, schema, server):
    """Pegasus refuses an element set with a NULL value pointer; sfcb turns it into 0."""
    mi, broker, ctx = _mi(server, schema)
    mi.proxy.module.STORE["a"].update(U8A=[Uint8(1), None], U32A=[None], WithNulls=[None])
    r = result()
    assert call(mi, "get_instance", ctx, r, op(broker, Id="a"), None) == (0, None)
    inst = r.instances[0]
    assert [(e.state, e.payload) for e in cell(inst, "U8A").payload] == [
        (0, 1), (F.CMPI_nullValue, None)]
    assert [(e.type, e.state) for e in cell(inst, "U32A").payload] == [
        (F.CMPI_uint32, F.CMPI_nullValue)]
    assert cell(inst, "WithNulls").payload[0].state == F.CMPI_nullValue


def test_fake_pegasus_checks_property_types(fake):
    broker = server_broker("Pegasus")
    inst = broker.new_instance(op(broker, Id="x"), 0)
    with pytest.raises(F.CMPIException) as exc:
        inst.set_property("Emb", None, F.CMPI_string)
    assert exc.value.get_error_code() == F.CMPI_RC_ERR_INVALID_DATA_TYPE
    with pytest.raises(F.CMPIException):
        inst.set_property("U8A", None, F.CMPI_uint8)            # scalar for an array
    inst.set_property("EmbObj", None, F.CMPI_instance)           # instance for an object
    inst.set_property("NoSuch", None, F.CMPI_string)
    assert inst._dropped == ["NoSuch"]
    arr = broker.new_array(1, F.CMPI_uint8)
    with pytest.raises(F.CMPIException) as exc:
        arr.set(0, None, F.CMPI_uint8)
    assert exc.value.get_error_code() == F.CMPI_RC_ERR_INVALID_PARAMETER
    sfcb_arr = server_broker("RequestHandler").new_array(1, F.CMPI_uint8)
    sfcb_arr.set(0, None, F.CMPI_uint8)
    assert (sfcb_arr._cells[0].state, sfcb_arr._cells[0].payload) == (0, 0)


# -- input instances completed by the server ----------------------------------------------------


@pytest.mark.parametrize("server", ["Pegasus", "RequestHandler"])
def test_instances_completed_by_the_server_go_back_out(fake, schema, server):
    """Both servers hand a provider the client's instance with every class property
    (NULL or the default); sending such an instance back must work in Pegasus too."""
    mi, broker, ctx = _mi(server, schema)
    keep = []
    newinst = broker.new_instance(op(broker, Id="c"), 0)
    v = F.CMPIValue()
    v.string = s = broker.new_string("c")
    keep.append(s)
    newinst.set_property("Id", v, F.CMPI_string)
    u = F.CMPIValue()
    u.uint8 = 9
    newinst.set_property("U8", u, F.CMPI_uint8)
    broker.complete_instance(newinst)
    assert newinst._get("Emb").type == F.CMPI_instance and newinst._get("U16").state
    assert call(mi, "create_instance", ctx, result(), op(broker, Id="c"), newinst) == \
        (0, None)
    stored = mi.proxy.module.STORE["c"]
    assert stored["U8"] == Uint8(9) and stored["Emb"] is None and stored["U16A"] is None
    r = result()
    assert call(mi, "get_instance", ctx, r, op(broker, Id="c"), None) == (0, None)
    out = r.instances[0]
    assert (cell(out, "Emb").type, cell(out, "Emb").state) == (F.CMPI_instance,
                                                               F.CMPI_nullValue)
    assert (cell(out, "U16").type, cell(out, "U16").state) == (F.CMPI_uint16,
                                                               F.CMPI_nullValue)


def test_fake_fills_class_defaults(fake):
    broker = F.CMPIBroker()
    from pywbem import CIMClass, CIMProperty
    broker.declare(CIMClass("Test_D", properties=[
        CIMProperty("Id", None, type="string"),
        CIMProperty("RequestedState", Uint32(12), type="uint32")]))
    inst = broker.complete_instance(broker.new_instance(op(broker, "Test_D", Id="1"), 0))
    assert (inst._get("RequestedState").payload, inst._get("Id").state) == (
        12, F.CMPI_nullValue)


# -- association calls --------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["Pegasus", "RequestHandler"])
@pytest.mark.parametrize("assoc", [None, "Test_Assoc"])
def test_association_upcalls_as_each_server_routes_them(fake, schema, server, assoc):
    """sfcb calls the provider once with the client's AssocClass (maybe None),
    Pegasus once per association class with its name: one answer either way."""
    mi, broker, ctx = _mi(server, schema)
    ch = CMPICIMOMHandle(fake, broker, ctx)
    a = CIMInstanceName("Test_Types", {"Id": "a"}, namespace=NS)
    names = list(ch.AssociatorNames(a, assocClass=assoc))
    assert [n["Id"] for n in names] == ["b"]
    refs = list(ch.References(a, resultClass=assoc))
    assert [r.classname for r in refs] == ["Test_Assoc"]
    assert isinstance(refs[0], CIMInstance)


# -- the entry module in a fresh interpreter -------------------------------------------------------

_FRESH = r"""
import importlib.util, sys
sys.path.insert(0, {tests!r})
import fake_cmpi
sys.modules["cmpi"] = fake_cmpi
if {break_pywbem!r}:
    sys.modules["pywbem"] = None              # "No module named pywbem" (package broken)
spec = importlib.util.spec_from_file_location("cmpi_pywbem_bindings", {entry!r})
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
loader = sys.modules["kvm_providers.cmpi.loader"]
loader.raw_broker_log = fake_cmpi.raw_log
loader.create_instance_mi = lambda *a: True
broker = fake_cmpi.CMPIBroker(name="Pegasus")
prov = mod.get_cmpi_proxy_provider("kvm_providers_x", broker, broker.context())
print("RESULT", prov.enum_instances(None, None, None, None), prov.cleanup(None, False))
print("LOGGED", any("pywbem" in text for _s, _i, text in broker.logs))
if not {break_pywbem!r}:
    import kvm_providers.cmpi as pkg
    print("SAME", pkg.loader is loader and sys.modules["kvm_providers.cmpi.adapter"].loader is loader)
"""


@pytest.mark.parametrize("break_pywbem", [False, True])
def test_entry_module_in_a_fresh_interpreter(tmp_path, break_pywbem):
    """cmpi_pywbem_bindings loads the loader without the package (so that even a broken
    installation is reported with its cause) and the package then uses that same loader."""
    import subprocess
    import sys
    from conftest import ENTRY
    code = _FRESH.format(tests=HERE, entry=ENTRY, break_pywbem=break_pywbem)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    if break_pywbem:
        assert "RESULT (1, b\"kvm_providers_x: cannot import kvm_providers' CMPI adapter" \
            in out.stdout and "(51, None)" in out.stdout
        assert "LOGGED True" in out.stdout
        assert "No module named 'pywbem'" in out.stderr or "pywbem" in out.stderr
    else:
        assert "SAME True" in out.stdout
        assert "RESULT (1, " in out.stdout and \
            "kvm_providers_x: loading provider kvm_providers_x failed" in out.stdout


# -- enumerations of a superclass ------------------------------------------------------------------


@pytest.mark.parametrize("server,optimized", [("Pegasus", False), ("RequestHandler", False),
                                              ("RequestHandler", True)])
def test_enumeration_of_a_superclass(fake, schema, server, optimized):
    """Each registered class's provider is called with its class name, except by an sfcb
    with optimized enumeration, which calls each provider once with the client's class."""
    mi, broker, ctx = _mi(server, schema)
    broker.optimized_enumeration = optimized
    ch = CMPICIMOMHandle(fake, broker, ctx)
    names = list(ch.EnumerateInstanceNames(NS, "Test_Base"))
    assert sorted((n.classname, n["Id"]) for n in names) == [("Test_Types", "a"),
                                                             ("Test_Types", "b")]
    insts = list(ch.EnumerateInstances(NS, "Test_Base", ["U8"]))
    assert [sorted(i.properties) for i in insts] == [["Id", "U8"]] * 2


def test_import_failure_names_the_library_used_as_cmpi(monkeypatch, capfd):
    """A retry after cmpi.py failed says which _cmpi was loaded (not "none found")."""
    import sys
    import types

    class NoCmpi:
        def find_spec(self, name, path=None, target=None):
            if name == "cmpi":
                raise ModuleNotFoundError("No module named 'cmpi'", name="cmpi")
            return None
    lib = types.ModuleType("_cmpi")
    lib.__file__ = "/usr/lib/sfcb/libpy3CmpiProvider.so"
    monkeypatch.delitem(sys.modules, "cmpi", raising=False)
    monkeypatch.setitem(sys.modules, "_cmpi", lib)
    monkeypatch.setattr(sys, "meta_path", [NoCmpi()] + sys.meta_path)
    with pytest.raises(loader.CmpiImportError) as exc:
        loader.import_cmpi()
    assert "_cmpi from /usr/lib/sfcb/libpy3CmpiProvider.so" in str(exc.value)
    assert "No module named 'cmpi'" in str(exc.value)
    assert loader.last_error() == str(exc.value)
    assert "No module named 'cmpi'" in capfd.readouterr().err
    loader.reset()


# -- object paths as each server hands them -----------------------------------------------------


@pytest.mark.parametrize("server", ["Pegasus", "RequestHandler"])
def test_method_on_the_class_path_as_each_server_passes_it(fake, schema, server):
    """A method invoked on the class (DSP1042 allows it for DefineSystem and the others):
    Pegasus hands the path as an instance of the class, every key counted and none with
    a value, and get_key_at() fails with NO_SUCH_PROPERTY for each.  The call used to fail
    with CIM_ERR_NO_SUCH_PROPERTY "Property does not exist"."""
    from kvm_providers.cmpi import get_cmpi_proxy_provider
    broker = server_broker(server)
    ctx = broker.context()
    mi = get_cmpi_proxy_provider(PROV, broker, ctx)
    cls_path = broker.request_path(op(broker))
    assert cls_path.key_count() == (1 if server == "Pegasus" else 0)
    outargs = broker.new_args()
    assert call(mi, "invoke_method", ctx, result(), cls_path, "Stat", broker.new_args(),
                outargs) == (0, None)
    assert outargs._args["Where"].payload == "Test_Types:0"
    outargs = broker.new_args()
    inst_path = broker.request_path(op(broker, Id="a"))
    assert call(mi, "invoke_method", ctx, result(), inst_path, "Stat", broker.new_args(),
                outargs) == (0, None)
    assert outargs._args["Where"].payload == "Test_Types:1"


# -- what a new instance holds: the class's properties (cost; PropertyList) ----------------------


def _enum(mi, broker, ctx, props=None):
    r = result()
    assert call(mi, "enum_instances", broker.call_context(ctx), r,
                broker.new_object_path(NS, "Test_Types"), props) == (0, None)
    return {str(i._path._key_values()["id"][1]): i for i in r.instances}


@pytest.mark.parametrize("server", ["Pegasus", "RequestHandler"])
def test_nulls_a_new_instance_holds_are_not_set_again(fake, schema, server, monkeypatch):
    """Both servers make a new instance from its class, every property at its default or
    NULL: the adapter sets NULL only over a class default (Def = 5), not on the NULLs the
    instance holds already (before: one CMPI call per NULL property, most of the values
    of the RASDs), and the client sees the same instance."""
    mi, broker, ctx = _mi(server, schema)
    set_nulls: list = []
    real = F.CMPIInstance.set_property

    def set_property(self, name, value, ctype):
        if value is None:
            set_nulls.append(name)
        return real(self, name, value, ctype)
    monkeypatch.setattr(F.CMPIInstance, "set_property", set_property)
    insts = _enum(mi, broker, ctx)
    assert sorted(set_nulls) == ["Def", "Def"]          # over the class default, typed
    for inst in insts.values():
        assert (cell(inst, "Def").type, cell(inst, "Def").state) == (F.CMPI_uint16,
                                                                     F.CMPI_nullValue)
        assert (cell(inst, "NullU32").type, cell(inst, "NullU32").state) == \
            (F.CMPI_uint32, F.CMPI_nullValue)
    # The same instances as with every property set (a server that adds nothing).
    mi._fresh.clear()
    set_nulls.clear()
    monkeypatch.setattr(type(broker), "new_instance",
                        lambda self, path, allow: F.CMPIInstance._new(path, None))
    bare = _enum(mi, broker, ctx)
    assert "NullU32" in set_nulls
    assert {k: _deep_props(i) for k, i in bare.items()} == \
        {k: _deep_props(i) for k, i in insts.items()}


def _deep(c):
    p = c.payload
    if isinstance(p, list):
        p = [_deep(e) for e in p]
    elif isinstance(p, F.CMPIInstance):
        p = _deep_props(p)
    elif isinstance(p, (F.CMPIObjectPath, F.CMPIString, F.CMPIDateTime)):
        p = str(p)
    else:
        p = repr(p)
    return (c.type, c.state, p)


def _deep_props(inst):
    return sorted((n, _deep(c)) for n, c in inst._props.items())


@pytest.mark.parametrize("server", ["Pegasus", "RequestHandler"])
def test_a_property_list_filters_what_the_instance_holds(fake, schema, server):
    """sfcb returns what an instance holds, and a new one holds every class property: a
    client's PropertyList is the instance's property filter (keys stay) (before: every
    property came back, NULLs and class defaults included)."""
    mi, broker, ctx = _mi(server, schema)
    insts = _enum(mi, broker, ctx, [b"U8", b"Def"])
    assert {k: sorted(i._props) for k, i in insts.items()} == \
        {"a": ["Def", "Id", "U8"], "b": ["Def", "Id", "U8"]}
    assert cell(insts["a"], "Def").state == F.CMPI_nullValue
