"""The provider interface in-process: every MI entry point, models, typed methods, hooks."""

import logging

import pytest
import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName, Uint16, Uint32

from kvm_providers.provider import (CIMOMHandle, ProviderEnvironment, ProviderLogger,
                                    ProviderProxy, current_scope, make_model, request_scope,
                                    to_cim_error)
from kvm_providers.schema import NAMESPACE_MOF, load_schema
from tests import testprov
from tests.testprov import provider as tp

NS = testprov.NS


class RecordingHandle(CIMOMHandle):
    """Up-calls answered from the proxy under test (what a host does)."""

    def __init__(self, proxy):
        self.proxy = proxy

    def _env(self):
        return ProviderEnvironment(ProviderLogger(logging.getLogger("t")), self)

    def EnumerateInstanceNames(self, ns, cn):
        out = []
        for c in ("TST_Widget", "TST_Gadget"):
            if c.lower() == cn.lower() or cn.lower() == "tst_widget":
                out += list(self.proxy.MI_enumInstanceNames(self._env(),
                                                            CIMInstanceName(c, namespace=ns)))
        return out

    def EnumerateInstances(self, ns, cn, props=None):
        return self.proxy.MI_enumInstances(self._env(), CIMInstanceName(cn, namespace=ns), props)

    def GetInstance(self, path, props=None):
        return self.proxy.MI_getInstance(self._env(), path, props)

    def Associators(self, path, assocClass=None, resultClass=None, role=None,
                    resultRole=None, props=None):
        return self.proxy.MI_associators(self._env(), path, assocClass, resultClass, role,
                                         resultRole, props)

    def AssociatorNames(self, path, assocClass=None, resultClass=None, role=None,
                        resultRole=None):
        return self.proxy.MI_associatorNames(self._env(), path, assocClass, resultClass, role,
                                             resultRole)

    def References(self, path, resultClass=None, role=None, props=None):
        return self.proxy.MI_references(self._env(), path, resultClass, role, props)

    def ReferenceNames(self, path, resultClass=None, role=None):
        return self.proxy.MI_referenceNames(self._env(), path, resultClass, role)

    def InvokeMethod(self, path, method, **params):
        (_t, rv), outs = self.proxy.MI_invokeMethod(self._env(), path, method, params)
        return rv, {k: v for k, (_tt, v) in outs.items()}

    def CreateInstance(self, instance):
        return self.proxy.MI_createInstance(self._env(), instance)

    def ModifyInstance(self, instance, props=None):
        return self.proxy.MI_modifyInstance(self._env(), instance, props)

    def DeleteInstance(self, path):
        return self.proxy.MI_deleteInstance(self._env(), path)

    def DeliverIndication(self, ns, instance):
        raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED, "not here")

    def is_subclass(self, ns, super, sub):  # noqa: A002
        return SCHEMA.is_subclass(ns, sub, super)


SCHEMA = load_schema(layout={NS: [NAMESPACE_MOF["root/cimv2"][0]] + testprov.MOF[NS]})


@pytest.fixture(scope="module")
def proxy():
    env = ProviderEnvironment(ProviderLogger(logging.getLogger("t")))
    return ProviderProxy(env, "tests.testprov.provider", SCHEMA)


@pytest.fixture
def env(proxy):
    return ProviderEnvironment(ProviderLogger(logging.getLogger("t")), RecordingHandle(proxy),
                               user="alice")


def path(cls, iid):
    return CIMInstanceName(cls, {"InstanceID": iid}, namespace=NS)


def test_module_hooks_init_and_lookup(proxy):
    assert ("init",) in tp.CALLS
    assert set(proxy.classnames()) == {"tst_widget", "tst_gadget", "tst_widgetlink",
                                       "tst_synthetic"}
    with pytest.raises(CIMError) as exc:
        proxy.provider_for("TST_Nothing")
    assert exc.value.status_code == pywbem.CIM_ERR_NOT_SUPPORTED
    assert "TST_Nothing" in exc.value.status_description


def test_enum_instance_names_and_instances(proxy, env):
    names = list(proxy.MI_enumInstanceNames(env, CIMInstanceName("TST_Widget", namespace=NS)))
    assert {n["InstanceID"] for n in names} >= {"w1", "w2"}
    assert all(n.namespace == NS and n.classname == "TST_Widget" for n in names)
    insts = list(proxy.MI_enumInstances(env, CIMInstanceName("TST_Widget", namespace=NS), None))
    w1 = next(i for i in insts if i["InstanceID"] == "w1")
    assert w1["U64"] == 18446744073709551615 and w1.properties["U64"].type == "uint64"
    assert w1["When"] == pywbem.CIMDateTime("20261121103000.000000+060")
    assert w1.path == path("TST_Widget", "w1")


def test_property_list_filters_model(proxy, env):
    insts = list(proxy.MI_enumInstances(env, CIMInstanceName("TST_Widget", namespace=NS),
                                        ["Str", "u8"]))
    for inst in insts:
        assert set(inst.properties) <= {"InstanceID", "Str", "U8"}
    w1 = proxy.MI_getInstance(env, path("TST_Widget", "w1"), [])
    assert set(w1.properties) == {"InstanceID"}


def test_get_instance_not_found_and_bad_keys(proxy, env):
    with pytest.raises(CIMError) as exc:
        proxy.MI_getInstance(env, path("TST_Widget", "missing"), None)
    assert exc.value.status_code == pywbem.CIM_ERR_NOT_FOUND
    assert "missing" in exc.value.status_description
    with pytest.raises(CIMError) as exc:
        proxy.MI_getInstance(env, CIMInstanceName("TST_Widget", {"Wrong": "x"}, namespace=NS),
                             None)
    # the key that selects the instance is missing: libvirt-cim's code and words
    assert exc.value.status_code == pywbem.CIM_ERR_FAILED
    assert exc.value.status_description.startswith(
        "Missing InstanceID: No InstanceID specified (the instance path of class TST_Widget "
        "lacks key property InstanceID)")


def test_create_modify_delete(proxy, env):
    new = CIMInstance("TST_Widget", properties={"InstanceID": "c1", "U8": "12"},
                      path=CIMInstanceName("TST_Widget", namespace=NS))
    p = proxy.MI_createInstance(env, new)
    assert p == path("TST_Widget", "c1")
    got = proxy.MI_getInstance(env, p, None)
    assert got["U8"] == 12 and got.properties["U8"].type == "uint8"
    with pytest.raises(CIMError) as exc:
        proxy.MI_createInstance(env, new)
    assert exc.value.status_code == pywbem.CIM_ERR_ALREADY_EXISTS
    mod = CIMInstance("TST_Widget", properties={"InstanceID": "c1", "Str": "changed",
                                                "U8": pywbem.Uint8(1)}, path=p)
    proxy.MI_modifyInstance(env, mod, ["Str"])   # U8 not in the PropertyList: untouched
    got = proxy.MI_getInstance(env, p, None)
    assert got["Str"] == "changed" and got["U8"] == 12
    bad = CIMInstance("TST_Widget", properties={"InstanceID": "c2", "U8": "300"},
                      path=CIMInstanceName("TST_Widget", namespace=NS))
    with pytest.raises(CIMError) as exc:
        proxy.MI_createInstance(env, bad)
    assert exc.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert "U8" in exc.value.status_description
    proxy.MI_deleteInstance(env, p)
    with pytest.raises(CIMError) as exc:
        proxy.MI_deleteInstance(env, p)
    assert exc.value.status_code == pywbem.CIM_ERR_NOT_FOUND


def test_associations_with_filters(proxy, env):
    w2 = path("TST_Widget", "w2")
    both = {str(p) for p in proxy.MI_associatorNames(env, w2, "TST_WidgetLink", None, None,
                                                      None)}
    assert both == {str(path("TST_Widget", "w1")), str(path("TST_Gadget", "g1"))}
    # ResultClass honours subclasses: TST_Gadget is a TST_Widget.
    assert len(list(proxy.MI_associatorNames(env, w2, "TST_WidgetLink", "TST_Widget", None,
                                             None))) == 2
    only_g = list(proxy.MI_associatorNames(env, w2, "TST_WidgetLink", "TST_Gadget", None, None))
    assert [p["InstanceID"] for p in only_g] == ["g1"]
    as_left = list(proxy.MI_associatorNames(env, w2, "TST_WidgetLink", None, "Left", None))
    assert [p["InstanceID"] for p in as_left] == ["g1"]
    assert list(proxy.MI_associatorNames(env, w2, "TST_WidgetLink", None, "Left", "Left")) == []
    refs = list(proxy.MI_references(env, w2, "TST_WidgetLink", "Right", ["Note"]))
    assert len(refs) == 1 and refs[0]["Note"] == "w1->w2"
    names = list(proxy.MI_referenceNames(env, w2, "TST_WidgetLink", None))
    assert len(names) == 2 and all(n.classname == "TST_WidgetLink" for n in names)
    assocs = list(proxy.MI_associators(env, w2, "TST_WidgetLink", None, "Right", None, ["Str"]))
    assert [(a["InstanceID"], a["Str"]) for a in assocs] == [("w1", "first <widget> & co")]


def test_self_association(proxy, env):
    g1 = path("TST_Gadget", "g1")

    def ids(role=None, result_role=None):
        return sorted(p["InstanceID"] for p in proxy.MI_associatorNames(
            env, g1, "TST_WidgetLink", None, role, result_role))
    # g1 is Right of w2->g1, and both ends of the g1 self-link.
    assert ids() == ["g1", "w2"]
    assert ids(role="Left") == ["g1"]
    assert ids(role="Right") == ["g1", "w2"]
    assert ids(result_role="Right") == ["g1"]
    assert ids(role="Left", result_role="Left") == []
    assert len(list(proxy.MI_referenceNames(env, g1, "TST_WidgetLink", None))) == 2
    assert len(list(proxy.MI_referenceNames(env, g1, "TST_WidgetLink", "Left"))) == 1


def test_invoke_method_typed_parameters(proxy, env):
    w1 = path("TST_Widget", "w1")
    emb_xml = CIMInstance("TST_Widget", properties={"InstanceID": "e", "U8": pywbem.Uint8(9)}
                          ).tocimxmlstr()
    emb_mof = 'instance of TST_Widget {\n\tInstanceID = "m";\n\tU16 = 7;\n};'
    (rtype, rv), outs = proxy.MI_invokeMethod(env, w1, "Echo", {
        "S": "hi", "n": "5", "B": "true", "NA": ["1", "2"], "D": "20260101000000.000000+000",
        "W": emb_xml, "WA": [emb_mof], "R": " "})
    assert (rtype, rv) == ("uint32", 0)
    assert outs["SOut"] == ("string", "hi|5|True|20260101000000.000000+000")
    assert outs["NOut"] == ("uint16", [Uint16(1), Uint16(2)])
    assert "ROut" not in outs  # R arrived as " ": an unused reference, NULL
    wtype, w = outs["WOut"]
    assert wtype == "string" and isinstance(w, CIMInstance)
    assert w["U8"] == 9 and w.properties["U8"].type == "uint8"
    assert w["Str"] == "echo of TST_Widget with 1 more"


@pytest.mark.parametrize("params,needle", [
    ({"Nope": "1"}, "Nope"),
    ({"N": "70000"}, "N"),
    ({"SOut": "x"}, "output only"),
    ({"W": "instance of TST_Nothing { A = 1; };"}, "TST_Nothing"),
    # (a property the class lacks is dropped, not refused: tests/unit/test_embedded_limits.py)
    ({"R": [path("TST_Widget", "w1")]}, "Parameter R of method Echo: an array"),
    ({"S": CIMInstance("TST_Widget")}, "Parameter S of method Echo: a string is expected"),
    ({"W": "<INSTANCE CLASSNAME='TST_Widget'><PROPERTY NAME='U8' TYPE='uint8'>"
           "<VALUE>x</VALUE></PROPERTY></INSTANCE>"}, "U8"),
    ({"B": "maybe"}, "B"),
])
def test_invoke_method_bad_parameters(proxy, env, params, needle):
    with pytest.raises(CIMError) as exc:
        proxy.MI_invokeMethod(env, path("TST_Widget", "w1"), "Echo", params)
    assert exc.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert needle in exc.value.status_description


def test_invoke_method_errors(proxy, env):
    w1 = path("TST_Widget", "w1")
    with pytest.raises(CIMError) as exc:
        proxy.MI_invokeMethod(env, w1, "Nope", {})
    assert exc.value.status_code == pywbem.CIM_ERR_METHOD_NOT_FOUND
    with pytest.raises(CIMError) as exc:
        proxy.MI_invokeMethod(env, w1, "NotImplementedHere", {})
    assert exc.value.status_code == pywbem.CIM_ERR_METHOD_NOT_AVAILABLE
    with pytest.raises(CIMError) as exc:
        proxy.MI_invokeMethod(env, w1, "Fail", {"Code": Uint32(6), "Message": "gone"})
    assert (exc.value.status_code, exc.value.status_description) == (6, "gone")
    with pytest.raises(RuntimeError):
        proxy.MI_invokeMethod(env, w1, "Crash", {})
    err = to_cim_error(RuntimeError("boom"), logging.getLogger("t"), "x")
    assert err.status_code == pywbem.CIM_ERR_FAILED and "boom" in err.status_description


def test_static_method_on_class_path(proxy, env):
    (rtype, rv), _ = proxy.MI_invokeMethod(env, CIMInstanceName("TST_Widget", namespace=NS),
                                           "Count", {})
    assert rtype == "uint32" and rv >= 2


def test_upcalls_through_env(proxy, env):
    w1 = path("TST_Widget", "w1")
    _, outs = proxy.MI_invokeMethod(env, w1, "Upcall", {"What": "enum"})
    assert any("w1" in s for s in outs["Result"][1])
    _, outs = proxy.MI_invokeMethod(env, w1, "Upcall", {"What": "get"})
    assert outs["Result"] == ("string", ["first <widget> & co"])
    _, outs = proxy.MI_invokeMethod(env, w1, "Upcall", {"What": "method"})
    assert int(outs["Result"][1][0]) >= 2


def test_indication_and_lifecycle_hooks(proxy):
    env = ProviderEnvironment(ProviderLogger(logging.getLogger("t")))
    cp = CIMInstanceName("TST_Widget", namespace=NS)
    proxy.MI_authorizeFilter(env, "select * from CIM_InstCreation", "CIM_InstCreation", cp, "u")
    proxy.MI_activateFilter(env, "select * from CIM_InstCreation", "CIM_InstCreation", cp, True)
    proxy.MI_enableIndications(env)
    proxy.MI_disableIndications(env)
    proxy.MI_deActivateFilter(env, "select * from CIM_InstCreation", "CIM_InstCreation", cp,
                              True)
    assert proxy.MI_canunload(env) is True
    proxy.MI_shutdown(env)
    kinds = [c[0] for c in tp.CALLS]
    for k in ("authorize_filter", "activate_filter", "enable_indications",
              "disable_indications", "deactivate_filter", "can_unload", "shutdown"):
        assert k in kinds
    assert ("activate_filter", "select * from CIM_InstCreation", NS, "CIM_InstCreation",
            True) in tp.CALLS


def test_model_conversion_and_strictness():
    m = make_model(NS, "TST_Widget", path("TST_Widget", "x"), schema=SCHEMA)
    m["U16"] = 7
    m["Flag"] = "TRUE"
    m["U16Array"] = [1, "2"]
    assert m.properties["U16"].value == Uint16(7) and m["Flag"] is True
    assert m["U16Array"] == [1, 2] and m.properties["U16Array"].is_array
    assert m["Str"] is None and "Str" in m
    with pytest.raises(ValueError, match="U8"):
        m["U8"] = 256
    with pytest.raises(KeyError):  # the test suite runs with KVM_PROVIDERS_STRICT_MODELS=1
        m["NotAProperty"] = 1
    filtered = make_model(NS, "TST_Widget", property_list=["Str"], schema=SCHEMA)
    assert "Str" in filtered and "U8" not in filtered and "InstanceID" in filtered
    filtered["U8"] = 3          # not requested: ignored
    assert "U8" not in filtered.properties
    filtered["InstanceID"] = "k"
    assert filtered.path["InstanceID"] == "k"
    c = filtered.copy()
    c["InstanceID"] = "other"
    assert filtered["InstanceID"] == "k" and filtered.path["InstanceID"] == "k"


def test_request_scope_is_reentrant():
    assert current_scope() is None
    with request_scope() as outer:
        outer["x"] = 1
        with request_scope() as inner:
            assert inner is outer
        assert current_scope() is outer
    assert current_scope() is None


def test_logger_names():
    records = []

    class H(logging.Handler):
        def emit(self, record):
            records.append((record.levelno, record.getMessage()))
    log = logging.getLogger("kvm.test.logger")
    log.addHandler(H())
    log.setLevel(logging.DEBUG)
    pl = ProviderLogger(log)
    pl.log_debug("d")
    pl.log_warn("w")
    pl.trace_info("comp", "t")
    pl.error("e %s", 1)
    assert records == [(10, "d"), (30, "w"), (20, "[comp] t"), (40, "e 1")]
