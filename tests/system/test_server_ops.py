"""Every DSP0200 operation of the embedded server, end to end with pywbem on loopback."""

import pytest
import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName, Uint16, Uint32

from tests.support.server import start_server
from tests.testprov import NS


@pytest.fixture(scope="module")
def server():
    srv = start_server(provider_modules=["tests.testprov"])
    yield srv
    srv.stop()


@pytest.fixture
def conn(server):
    return server.conn(NS)


def w(iid, cls="TST_Widget"):
    return CIMInstanceName(cls, {"InstanceID": iid}, namespace=NS)


def code(exc_info):
    return exc_info.value.status_code


# -- classes and qualifiers ------------------------------------------------------------

def test_get_class_flags(conn):
    full = conn.GetClass("TST_Gadget", LocalOnly=False, IncludeQualifiers=True,
                         IncludeClassOrigin=True)
    assert "Str" in full.properties and full.properties["Str"].class_origin == "TST_Widget"
    assert full.properties["Extra"].class_origin == "TST_Gadget"
    assert full.properties["Str"].propagated is True
    assert "Description" in full.qualifiers
    local = conn.GetClass("TST_Gadget")  # LocalOnly defaults to true
    assert list(local.properties) == ["Extra"]
    bare = conn.GetClass("TST_Widget", LocalOnly=False, IncludeQualifiers=False,
                         PropertyList=["Str", "U8"])
    assert set(bare.properties) == {"Str", "U8"} and not bare.qualifiers
    assert bare.properties["Str"].class_origin is None
    echo = conn.GetClass("TST_Widget", LocalOnly=False).methods["Echo"]
    assert echo.parameters["W"].qualifiers["EmbeddedInstance"].value == "TST_Widget"


def test_enumerate_classes_and_names(conn):
    top = conn.EnumerateClassNames()
    assert "CIM_ManagedElement" in top and "TST_WidgetLink" in top and "TST_Widget" not in top
    deep = conn.EnumerateClassNames(ClassName="CIM_ManagedElement", DeepInheritance=True)
    assert {"TST_Widget", "TST_Gadget", "TST_Synthetic"} <= set(deep)
    direct = conn.EnumerateClassNames(ClassName="TST_Widget")
    assert direct == ["TST_Gadget"]
    classes = conn.EnumerateClasses(ClassName="TST_Widget", DeepInheritance=True,
                                    LocalOnly=False)
    assert [c.classname for c in classes] == ["TST_Gadget"]
    assert "Str" in classes[0].properties


def test_qualifiers(conn):
    key = conn.GetQualifier("Key")
    assert key.type == "boolean" and key.scopes["PROPERTY"] and not key.scopes["CLASS"]
    names = {q.name for q in conn.EnumerateQualifiers()}
    assert {"Key", "Description", "EmbeddedInstance", "ValueMap"} <= names
    with pytest.raises(CIMError) as exc:
        conn.GetQualifier("NoSuchQualifier")
    assert code(exc) == pywbem.CIM_ERR_NOT_FOUND


def test_class_repository_is_read_only(conn):
    with pytest.raises(CIMError) as exc:
        conn.DeleteClass("TST_Widget")
    assert code(exc) == pywbem.CIM_ERR_NOT_SUPPORTED
    with pytest.raises(CIMError) as exc:
        conn.CreateClass(pywbem.CIMClass("TST_New"))
    assert code(exc) == pywbem.CIM_ERR_NOT_SUPPORTED


# -- instances --------------------------------------------------------------------------

def test_polymorphic_enumeration(conn):
    names = conn.EnumerateInstanceNames("TST_Widget")
    assert {(n.classname, n["InstanceID"]) for n in names} >= {
        ("TST_Widget", "w1"), ("TST_Widget", "w2"), ("TST_Gadget", "g1")}
    only_gadgets = conn.EnumerateInstanceNames("TST_Gadget")
    assert {n["InstanceID"] for n in only_gadgets} == {"g1"}
    insts = conn.EnumerateInstances("TST_Widget")
    g1 = next(i for i in insts if i["InstanceID"] == "g1")
    assert g1["Extra"] == "only in the subclass"
    shallow = conn.EnumerateInstances("TST_Widget", DeepInheritance=False)
    g1 = next(i for i in shallow if i["InstanceID"] == "g1")
    assert "Extra" not in g1.properties and g1["Str"] == "gadget"


def test_property_list_and_class_origin(conn):
    insts = conn.EnumerateInstances("TST_Widget", PropertyList=["U8", "Flag"],
                                    IncludeClassOrigin=True)
    for i in insts:
        assert set(i.properties) <= {"InstanceID", "U8", "Flag"}
    w1 = conn.GetInstance(w("w1"), PropertyList=["U64", "When"], IncludeClassOrigin=True)
    assert set(w1.properties) == {"InstanceID", "U64", "When"}
    assert w1["U64"] == 18446744073709551615
    assert w1.properties["U64"].class_origin == "TST_Widget"
    assert list(conn.GetInstance(w("w1"), PropertyList=[]).properties) == ["InstanceID"]


def test_every_type_round_trips(conn):
    w1 = conn.GetInstance(w("w1"), LocalOnly=False)
    assert w1["U8"] == 255 and w1.properties["U8"].type == "uint8"
    assert w1["S64"] == -9223372036854775808 and w1.properties["S64"].type == "sint64"
    assert w1["R64"] == -2.25e10 and w1["R32"] == 1.5 and w1["C16"] == "x"
    assert w1["When"] == pywbem.CIMDateTime("20261121103000.000000+060")
    assert w1["U16Array"] == [1, 2, 3] and w1["StrArray"] == ["a", "b c", ""]
    assert w1["Str"] == "first <widget> & co" and w1["Flag"] is True
    w2 = conn.GetInstance(w("w2"))
    assert w2["Peer"] == w("w1")
    assert isinstance(w2["Child"], CIMInstance) and w2["Child"]["Str"] == "embedded"


def test_get_instance_errors(conn):
    with pytest.raises(CIMError) as exc:
        conn.GetInstance(w("nope"))
    assert code(exc) == pywbem.CIM_ERR_NOT_FOUND and "nope" in exc.value.status_description
    with pytest.raises(CIMError) as exc:
        conn.GetInstance(CIMInstanceName("TST_Widget", {"Bogus": "x"}))
    # the key that selects the instance is missing: libvirt-cim's code and words
    # (docs/compat.md "Instance paths that lack a key")
    assert code(exc) == pywbem.CIM_ERR_FAILED
    assert "Missing InstanceID: No InstanceID specified" in exc.value.status_description
    with pytest.raises(CIMError) as exc:
        conn.GetInstance(CIMInstanceName("TST_Nothing", {"InstanceID": "x"}))
    assert code(exc) == pywbem.CIM_ERR_INVALID_CLASS and "TST_Nothing" in \
        exc.value.status_description
    with pytest.raises(CIMError) as exc:
        conn.EnumerateInstances("TST_Widget", namespace="root/nowhere")
    assert code(exc) == pywbem.CIM_ERR_INVALID_NAMESPACE


def test_create_modify_delete(conn):
    new = CIMInstance("TST_Widget", properties={"InstanceID": "sys1", "U16": Uint16(5),
                                                "Str": "created"})
    path = conn.CreateInstance(new)
    assert path["InstanceID"] == "sys1" and path.classname == "TST_Widget"
    got = conn.GetInstance(path)
    assert got["U16"] == 5 and got["Str"] == "created"
    got["Str"] = "modified"
    got["U16"] = Uint16(6)
    conn.ModifyInstance(got, PropertyList=["Str"])
    again = conn.GetInstance(path)
    assert again["Str"] == "modified" and again["U16"] == 5
    with pytest.raises(CIMError) as exc:
        conn.CreateInstance(new)
    assert code(exc) == pywbem.CIM_ERR_ALREADY_EXISTS
    with pytest.raises(CIMError) as exc:
        conn.CreateInstance(CIMInstance("TST_Widget", properties={"InstanceID": "z",
                                                                  "NoSuchProp": "x"}))
    assert code(exc) == pywbem.CIM_ERR_INVALID_PARAMETER and "NoSuchProp" in \
        exc.value.status_description
    conn.DeleteInstance(path)
    with pytest.raises(CIMError) as exc:
        conn.DeleteInstance(path)
    assert code(exc) == pywbem.CIM_ERR_NOT_FOUND


# -- associations -------------------------------------------------------------------------

def test_associations(conn):
    names = conn.AssociatorNames(w("w2"), AssocClass="TST_WidgetLink")
    assert {n["InstanceID"] for n in names} == {"w1", "g1"}
    assert {n["InstanceID"] for n in conn.AssociatorNames(w("w2"), ResultClass="TST_Gadget")} \
        == {"g1"}
    assert {n["InstanceID"] for n in conn.AssociatorNames(w("w2"), Role="Right",
                                                          ResultRole="Left")} == {"w1"}
    assocs = conn.Associators(w("w2"), Role="Left", PropertyList=["Extra"])
    assert len(assocs) == 1 and assocs[0]["Extra"] == "only in the subclass"
    assert assocs[0].path.namespace == NS and assocs[0].path.host
    refs = conn.References(w("w2"), ResultClass="TST_WidgetLink", Role="Left")
    assert [r["Note"] for r in refs] == ["w2->g1"]
    rnames = conn.ReferenceNames(w("w1"))
    assert len(rnames) == 1 and rnames[0]["Right"]["InstanceID"] == "w2"
    assert conn.AssociatorNames(w("w1"), AssocClass="CIM_Component") == []


def test_class_level_associations(conn):
    # Class-level association operations answer from the schema: every association
    # class with a reference that a TST_Widget fits (TST_WidgetLink, and the
    # CIM associations whose references are typed CIM_ManagedElement).
    refs = {c.classname for c in conn.ReferenceNames("TST_Widget")}
    assert {"TST_WidgetLink", "CIM_Dependency", "CIM_Component"} <= refs
    only = conn.ReferenceNames("TST_Widget", ResultClass="TST_WidgetLink")
    assert [c.classname for c in only] == ["TST_WidgetLink"]
    assoc_classes = conn.Associators("TST_Widget", AssocClass="TST_WidgetLink")
    assert [c[1].classname for c in assoc_classes] == ["TST_Widget"]
    assert conn.AssociatorNames("TST_Widget", AssocClass="TST_WidgetLink",
                                Role="Left", ResultRole="Left") == []


# -- methods --------------------------------------------------------------------------------

def test_invoke_method_instance_and_class_paths(conn):
    rv, out = conn.InvokeMethod("Echo", w("w1"), S="hello", N=Uint16(2), B=False,
                                NA=[Uint16(4)], R=w("w2"),
                                W=CIMInstance("TST_Widget", properties={"InstanceID": "e"}))
    assert rv == 0 and out["SOut"].startswith("hello|2|False")
    assert out["NOut"] == [4] and out["ROut"]["InstanceID"] == "w2"
    assert isinstance(out["WOut"], CIMInstance) and out["WOut"]["InstanceID"] == "e"
    rv, _ = conn.InvokeMethod("Count", "TST_Widget")
    assert rv >= 2
    rv, _ = conn.InvokeMethod("Count", pywbem.CIMClassName("TST_Widget", namespace=NS))
    assert rv >= 2


def test_invoke_method_errors(conn, server):
    with pytest.raises(CIMError) as exc:
        conn.InvokeMethod("NoSuchMethod", w("w1"))
    assert code(exc) == pywbem.CIM_ERR_METHOD_NOT_FOUND
    with pytest.raises(CIMError) as exc:
        conn.InvokeMethod("NotImplementedHere", w("w1"))
    assert code(exc) == pywbem.CIM_ERR_METHOD_NOT_AVAILABLE
    with pytest.raises(CIMError) as exc:
        conn.InvokeMethod("Echo", w("w1"), N="not a number")
    assert code(exc) == pywbem.CIM_ERR_INVALID_PARAMETER and "N" in exc.value.status_description
    with pytest.raises(CIMError) as exc:
        conn.InvokeMethod("Echo", w("w1"), Extra=Uint32(1))
    assert code(exc) == pywbem.CIM_ERR_INVALID_PARAMETER and "Extra" in \
        exc.value.status_description
    with pytest.raises(CIMError) as exc:
        conn.InvokeMethod("Fail", w("w1"), Code=Uint32(2), Message="denied by test")
    assert code(exc) == 2 and exc.value.status_description == "denied by test"
    # A provider that raises becomes CIM_ERR_FAILED; the traceback goes to the log and the
    # server keeps serving.
    with pytest.raises(CIMError) as exc:
        conn.InvokeMethod("Crash", w("w1"))
    assert code(exc) == pywbem.CIM_ERR_FAILED and "crashed on purpose" in \
        exc.value.status_description
    assert "Traceback" in server.log() and "RuntimeError" in server.log()
    assert conn.GetInstance(w("w1"))["InstanceID"] == "w1"


def test_provider_upcalls(conn):
    for what, check in [("enum", lambda r: any("g1" in x for x in r)),
                        ("get", lambda r: r == ["first <widget> & co"]),
                        ("assoc", lambda r: len(r) == 1 and "w2" in r[0]),
                        ("method", lambda r: int(r[0]) >= 2),
                        ("subclass", lambda r: r == ["True"])]:
        rv, out = conn.InvokeMethod("Upcall", w("w1"), What=what)
        assert rv == 0 and check(out["Result"]), (what, out)


# -- queries ----------------------------------------------------------------------------------

def test_exec_query_wql_and_cql(conn):
    res = conn.ExecQuery("WQL", "SELECT Str FROM TST_Widget WHERE Flag = TRUE")
    assert [r["Str"] for r in res] == ["first <widget> & co"]
    assert set(res[0].properties) == {"Str"} and res[0].path["InstanceID"] == "w1"
    res = conn.ExecQuery("DMTF:CQL", "SELECT * FROM TST_Widget WHERE InstanceID LIKE 'g.*'")
    assert [r["InstanceID"] for r in res] == ["g1"]
    with pytest.raises(CIMError) as exc:
        conn.ExecQuery("WQL", "SELECT Nope FROM TST_Widget")
    assert code(exc) == pywbem.CIM_ERR_INVALID_QUERY and "Nope" in exc.value.status_description
    with pytest.raises(CIMError) as exc:
        conn.ExecQuery("SQL", "SELECT * FROM TST_Widget")
    assert code(exc) == pywbem.CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED


# -- pull operations ------------------------------------------------------------------------

def test_pull_enumerations(conn):
    conn.InvokeMethod("SetCount", "TST_Synthetic", N=Uint32(25))
    res = conn.OpenEnumerateInstances("TST_Synthetic", MaxObjectCount=10)
    got = list(res.instances)
    assert len(got) == 10 and not res.eos
    while not res.eos:
        res = conn.PullInstancesWithPath(res.context, MaxObjectCount=10)
        got += res.instances
    assert len(got) == 25 and len({i["InstanceID"] for i in got}) == 25
    assert all(i.path.namespace == NS for i in got)
    paths = list(conn.IterEnumerateInstancePaths("TST_Widget", MaxObjectCount=1))
    assert len(paths) >= 3
    assocs = list(conn.IterAssociatorInstances(w("w2"), MaxObjectCount=1))
    assert {a["InstanceID"] for a in assocs} == {"w1", "g1"}
    apaths = list(conn.IterAssociatorInstancePaths(w("w2"), ResultClass="TST_Gadget"))
    assert [p["InstanceID"] for p in apaths] == ["g1"]
    refs = list(conn.IterReferenceInstances(w("w2"), MaxObjectCount=1))
    assert {r["Note"] for r in refs} == {"w1->w2", "w2->g1"}
    assert len(list(conn.IterReferenceInstancePaths(w("w2"), Role="Left"))) == 1
    q = conn.IterQueryInstances("WQL", "SELECT * FROM TST_Synthetic WHERE N02 < 5",
                                MaxObjectCount=2)
    assert len(list(q.generator)) == 5


def test_pull_close_count_and_errors(conn):
    conn.InvokeMethod("SetCount", "TST_Synthetic", N=Uint32(30))
    res = conn.OpenEnumerateInstancePaths("TST_Synthetic", MaxObjectCount=5)
    assert len(res.paths) == 5 and not res.eos
    conn.CloseEnumeration(res.context)
    with pytest.raises(CIMError) as exc:
        conn.PullInstancePaths(res.context, MaxObjectCount=5)
    assert code(exc) == pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT
    res = conn.OpenEnumerateInstances("TST_Synthetic", MaxObjectCount=0)
    assert res.instances == [] and not res.eos
    with pytest.raises(CIMError) as exc:   # wrong pull operation for the context
        conn.PullInstancePaths(res.context, MaxObjectCount=5)
    assert code(exc) == pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT
    conn.CloseEnumeration(res.context)
    with pytest.raises(CIMError) as exc:
        conn.OpenEnumerateInstances("TST_Synthetic", OperationTimeout=100000)
    assert code(exc) == pywbem.CIM_ERR_INVALID_OPERATION_TIMEOUT
    with pytest.raises(CIMError) as exc:
        conn.OpenEnumerateInstances("TST_Synthetic", ContinueOnError=True)
    assert code(exc) == pywbem.CIM_ERR_CONTINUATION_ON_ERROR_NOT_SUPPORTED
    with pytest.raises(CIMError) as exc:
        conn.OpenEnumerateInstances("TST_Synthetic", FilterQueryLanguage="DMTF:FQL",
                                    FilterQuery="N02 = 1")
    assert code(exc) == pywbem.CIM_ERR_FILTERED_ENUMERATION_NOT_SUPPORTED


def test_abandoned_enumeration_context_expires(conn):
    import time
    conn.InvokeMethod("SetCount", "TST_Synthetic", N=Uint32(10))
    res = conn.OpenEnumerateInstancePaths("TST_Synthetic", MaxObjectCount=1,
                                          OperationTimeout=1)
    time.sleep(1.5)
    with pytest.raises(CIMError) as exc:
        conn.PullInstancePaths(res.context, MaxObjectCount=1)
    assert code(exc) == pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT


# -- interop namespace ------------------------------------------------------------------------

@pytest.mark.parametrize("interop", ["root/interop", "interop", "/root/interop",
                                     "root/PG_InterOp"])
def test_interop_namespace_names(server, interop):
    c = server.conn(interop)
    oms = c.EnumerateInstances("CIM_ObjectManager")
    assert len(oms) == 1 and oms[0]["ElementName"] == "kvm_providers"


def test_wbem_server_discovery(server):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        srv = pywbem.WBEMServer(server.conn("root/virt"))
        assert srv.interop_ns in ("interop", "root/interop")
        assert srv.brand == "kvm_providers" and srv.version
        assert {"root/virt", "root/interop", "root/cimv2", NS} <= set(srv.namespaces)
        names = {(p["RegisteredOrganization"], p["RegisteredName"]) for p in srv.profiles}
        assert {(2, "Profile Registration"), (2, "WBEM Server")} <= names
        wbem_server = srv.get_selected_profiles("DMTF", "WBEM Server")[0]
        central = srv.get_central_instances(wbem_server.path, central_class="CIM_ObjectManager")
        assert [c.classname for c in central] == ["CIM_ObjectManager"]


def test_interop_values_say_what_the_server_does(server):
    """Read through pywbem's ValueMapping (the class's Values, as a client reads them):
    the server's profiles are not advertised (it said SLP, 3, meaning "Not Advertised"),
    a server without authentication says "None" (it said "Other", 1), and the functional
    groups it claims include the pull operations it serves."""
    c = server.conn("root/interop")

    def values(cls, prop, got):
        vm = pywbem.ValueMapping.for_property(c, "root/interop", cls, prop)
        return [vm.tovalues(v) for v in got]
    [mech] = c.EnumerateInstances("CIM_CIMXMLCommunicationMechanism")
    assert values("CIM_CIMXMLCommunicationMechanism", "AuthenticationMechanismsSupported",
                  mech["AuthenticationMechanismsSupported"]) == ["None"]
    groups = values("CIM_CIMXMLCommunicationMechanism", "FunctionalProfilesSupported",
                    mech["FunctionalProfilesSupported"])
    assert {"Basic Read", "Association Traversal", "Query Execution", "Pulled Read",
            "Pulled Query Execution"} <= set(groups)
    res = c.OpenEnumerateInstancePaths("CIM_CIMXMLCommunicationMechanism", MaxObjectCount=10)
    assert [p.classname for p in res.paths] == ["CIM_CIMXMLCommunicationMechanism"]
    own = [p for p in c.EnumerateInstances("CIM_RegisteredProfile")
           if p["RegisteredName"] in ("Profile Registration", "WBEM Server")]
    assert own and all(values("CIM_RegisteredProfile", "AdvertiseTypes", p["AdvertiseTypes"])
                       == ["Not Advertised"] for p in own)
    assert {values("CIM_RegisteredProfile", "RegisteredOrganization",
                   [p["RegisteredOrganization"]])[0] for p in own} == {"DMTF"}


def test_indications_profile_central_instance(server):
    srv = pywbem.WBEMServer(server.conn("root/virt"))
    prof = srv.get_selected_profiles("DMTF", "Indications")[0]
    assert prof["RegisteredVersion"] == "1.2.2"
    central = srv.get_central_instances(prof.path, central_class="CIM_IndicationService")
    assert [c.classname for c in central] == ["CIM_IndicationService"]
    # the path names the service instance the server really has
    assert server.conn("root/interop").GetInstance(central[0])["Name"] == \
        "kvm_providers:IndicationService"
