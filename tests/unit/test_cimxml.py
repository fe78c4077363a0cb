"""CIM-XML writing (checked by pywbem's own parser) and reading (requests, values, safety)."""

import pytest
from pywbem import (CIMDateTime, CIMInstance, CIMInstanceName, CIMProperty, Char16, Real32,
                    Real64, Sint8, Sint64, Uint8, Uint16, Uint64)
from pywbem._tupleparse import TupleParser
from pywbem._tupletree import xml_to_tupletree_sax

from kvm_providers.cimxml import writer as W
from kvm_providers.cimxml.embedded import (EmbeddedInstanceError, decode_embedded_instance,
                                           parse_mof_instance)
from kvm_providers.cimxml.reader import CIMXMLError, parse_request, typed_text
from kvm_providers.provider import make_model
from kvm_providers.schema import load_schema


def pywbem_parse(fragment: str):
    """Parse a fragment with pywbem's client parser (what clients will do)."""
    tt = xml_to_tupletree_sax(fragment.encode("utf-8"), "test")
    return TupleParser("test").parse_any(tt)


def sample_instance():
    inst = CIMInstance("TST_X", properties={
        "S": 'a<b>&"c"', "B": False, "U8": Uint8(255), "U64": Uint64(2 ** 64 - 1),
        "S8": Sint8(-128), "S64": Sint64(-2 ** 63), "R32": Real32(0.5), "R64": Real64(1e300),
        "C": Char16("z"), "D": CIMDateTime("20261121103000.123456-300"),
        "I": CIMDateTime("00000001020304.000000:000"),
        "A": [Uint16(1), Uint16(2), Uint16(3)], "SA": ["x", "", "y&z"],
        "R": CIMInstanceName("TST_Y", {"K": "v", "N": Uint16(3), "T": True},
                             namespace="root/x"),
        "Ctl": "bell\x07 and tab\t"})
    inst.properties["Null"] = CIMProperty("Null", None, type="uint32")
    inst.properties["E"] = CIMProperty("E", CIMInstance("TST_E", properties={"V": "in"}),
                                       type="string", embedded_object="instance")
    return inst


def test_instance_round_trip_through_pywbem():
    inst = sample_instance()
    got = pywbem_parse(W.instance_xml(inst))
    assert got.classname == "TST_X"
    for name in ("B", "U8", "U64", "S8", "S64", "R32", "R64", "C", "D", "I", "A", "SA", "R"):
        assert got[name] == inst[name], name
        assert got.properties[name].type == inst.properties[name].type, name
    assert got["S"] == 'a<b>&"c"'
    assert got["Null"] is None and got.properties["Null"].type == "uint32"
    assert got["E"]["V"] == "in"
    # Characters XML 1.0 cannot carry are replaced, never sent raw.
    assert got["Ctl"] == "bell\ufffd and tab\t"


def test_model_fast_path_equals_generic_path():
    schema = load_schema()
    m = make_model("root/interop", "CIM_RegisteredProfile", schema=schema)
    m["InstanceID"] = "id<1>"
    m["RegisteredName"] = "n & m"
    m["RegisteredOrganization"] = 2
    m["AdvertiseTypes"] = [3, None]
    fast = W.instance_xml(m)
    generic = W.instance_xml(CIMInstance(m.classname, properties=list(m.properties.values())))
    assert fast == generic
    # NULL array elements are VALUE.NULL (pywbem's client cannot unpack those in
    # numeric arrays, so providers avoid them; the XML is still right).
    assert "<VALUE.ARRAY><VALUE>3</VALUE><VALUE.NULL/></VALUE.ARRAY>" in fast
    m["AdvertiseTypes"] = [3]
    assert pywbem_parse(W.instance_xml(m))["RegisteredName"] == "n & m"


def test_paths_and_references():
    p = CIMInstanceName("A", {"K": "1", "R": CIMInstanceName("B", {"X": Uint8(1)},
                                                            namespace="root/b")},
                        namespace="root/a", host="h")
    parsed = pywbem_parse(W.instancepath_xml(p, "ignored"))
    assert parsed == p
    assert pywbem_parse(W.instancename_xml(p)).keybindings["K"] == "1"


def test_method_paramvalues():
    xml = W.paramvalue_xml("Out", "uint16", [Uint16(1), Uint16(2)])
    assert "PARAMTYPE=\"uint16\"" in xml and "<VALUE.ARRAY>" in xml
    emb = W.paramvalue_xml("Emb", "string", CIMInstance("A", properties={"P": "v"}))
    assert 'EmbeddedObject="instance"' in emb and "&lt;INSTANCE" in emb
    ref = W.paramvalue_xml("Job", "reference", CIMInstanceName("J", {"I": "1"}, namespace="n"))
    assert "<VALUE.REFERENCE><LOCALINSTANCEPATH>" in ref
    assert W.paramvalue_xml("", "uint32", Uint16(0), tag="RETURNVALUE") == \
        '<RETURNVALUE PARAMTYPE="uint32"><VALUE>0</VALUE></RETURNVALUE>'


def req(body: str, name="EnumerateInstances", params="") -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><CIM CIMVERSION="2.0" DTDVERSION="2.0">'
            f'<MESSAGE ID="42" PROTOCOLVERSION="1.0"><SIMPLEREQ>{body}</SIMPLEREQ></MESSAGE>'
            f'</CIM>').encode()


def test_parse_intrinsic_request():
    body = ('<IMETHODCALL NAME="GetInstance"><LOCALNAMESPACEPATH><NAMESPACE NAME="root"/>'
            '<NAMESPACE NAME="virt"/></LOCALNAMESPACEPATH>'
            '<IPARAMVALUE NAME="InstanceName"><INSTANCENAME CLASSNAME="KVM_X">'
            '<KEYBINDING NAME="Name"><KEYVALUE VALUETYPE="string">vm&amp;1</KEYVALUE>'
            '</KEYBINDING><KEYBINDING NAME="N"><KEYVALUE VALUETYPE="numeric">7</KEYVALUE>'
            '</KEYBINDING></INSTANCENAME></IPARAMVALUE>'
            '<IPARAMVALUE NAME="PropertyList"><VALUE.ARRAY><VALUE>A</VALUE></VALUE.ARRAY>'
            '</IPARAMVALUE><IPARAMVALUE NAME="LocalOnly"><VALUE>FALSE</VALUE></IPARAMVALUE>'
            '</IMETHODCALL>')
    (r,), multi = parse_request(req(body))
    assert not multi and r.intrinsic and r.name == "GetInstance" and r.namespace == "root/virt"
    assert r.msg_id == "42"
    path = r.params["instancename"].value
    assert path.keybindings["Name"] == "vm&1" and path.keybindings["N"] == 7
    assert r.params["propertylist"].value == ["A"]
    assert r.params["localonly"].value == "FALSE"


def test_parse_extrinsic_request_with_embedded_instance():
    emb = CIMInstance("TST_W", properties={"U8": Uint8(3)}).tocimxmlstr()
    esc = emb.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    body = ('<METHODCALL NAME="Echo"><LOCALINSTANCEPATH><LOCALNAMESPACEPATH>'
            '<NAMESPACE NAME="t"/></LOCALNAMESPACEPATH><INSTANCENAME CLASSNAME="TST_W">'
            '<KEYBINDING NAME="InstanceID"><KEYVALUE>w1</KEYVALUE></KEYBINDING></INSTANCENAME>'
            '</LOCALINSTANCEPATH>'
            f'<PARAMVALUE NAME="W" PARAMTYPE="string" EmbeddedObject="instance"><VALUE>{esc}'
            '</VALUE></PARAMVALUE><PARAMVALUE NAME="N" PARAMTYPE="uint16"><VALUE>5</VALUE>'
            '</PARAMVALUE></METHODCALL>')
    (r,), _ = parse_request(req(body))
    assert not r.intrinsic and r.target["InstanceID"] == "w1" and r.target.namespace == "t"
    assert isinstance(r.params["w"].value, CIMInstance) and r.params["w"].value["U8"] == 3
    assert r.params["n"].paramtype == "uint16" and r.params["n"].value == "5"


@pytest.mark.parametrize("data,kind", [
    (b"not xml", "request-not-well-formed"),
    (b'<?xml version="1.0"?><!DOCTYPE CIM [<!ENTITY x "y">]><CIM>&x;</CIM>',
     "request-not-well-formed"),
    (b'<?xml version="1.0"?><!DOCTYPE CIM SYSTEM "http://127.0.0.1/cim.dtd"><CIM/>',
     "request-not-well-formed"),
    (b"<NOTCIM/>", "request-not-valid"),
    (b'<CIM><MESSAGE PROTOCOLVERSION="1.0"><SIMPLEREQ/></MESSAGE></CIM>', "request-not-valid"),
    (b'<CIM><MESSAGE ID="1" PROTOCOLVERSION="2.0"><SIMPLEREQ/></MESSAGE></CIM>',
     "unsupported-protocol-version"),
    (req('<IMETHODCALL NAME="X"></IMETHODCALL>'), "request-not-valid"),
    (req('<IMETHODCALL NAME="X"><LOCALNAMESPACEPATH/></IMETHODCALL>'), "request-not-valid"),
])
def test_bad_documents(data, kind):
    with pytest.raises(CIMXMLError) as exc:
        parse_request(data)
    assert exc.value.kind == kind


def test_billion_laughs_is_refused():
    lol = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
           b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
           b"<CIM>&lol2;</CIM>")
    with pytest.raises(CIMXMLError) as exc:
        parse_request(lol)
    assert "DOCTYPE" in str(exc.value) or "well-formed" in str(exc.value)


def test_bad_value_becomes_request_error():
    body = ('<METHODCALL NAME="M"><LOCALCLASSPATH><LOCALNAMESPACEPATH><NAMESPACE NAME="t"/>'
            '</LOCALNAMESPACEPATH><CLASSNAME NAME="C"/></LOCALCLASSPATH>'
            '<PARAMVALUE NAME="I" PARAMTYPE="string" EmbeddedObject="instance">'
            '<VALUE>&lt;INSTANCE CLASSNAME="C"&gt;&lt;PROPERTY NAME="P" TYPE="uint8"&gt;'
            '&lt;VALUE&gt;999&lt;/VALUE&gt;&lt;/PROPERTY&gt;&lt;/INSTANCE&gt;</VALUE>'
            '</PARAMVALUE></METHODCALL>')
    (r,), _ = parse_request(req(body))
    assert r.error and "999" in r.error and "P" in r.error


@pytest.mark.parametrize("text,cimtype,expected", [
    ("255", "uint8", 255), ("-128", "sint8", -128), ("0x10", "uint16", 16), (" TRUE ", "boolean",
                                                                             True),
    ("1.5", "real32", 1.5), ("x", "char16", "x"),
])
def test_typed_text(text, cimtype, expected):
    assert typed_text(text, cimtype, "t") == expected


@pytest.mark.parametrize("text,cimtype", [("256", "uint8"), ("-1", "uint32"), ("yes", "boolean"),
                                          ("1.2.3", "real64"), ("xy", "char16"),
                                          ("2026", "datetime")])
def test_typed_text_rejects(text, cimtype):
    with pytest.raises(CIMXMLError) as exc:
        typed_text(text, cimtype, "where")
    assert exc.value.kind is None and "where" in str(exc.value)


def test_mof_instances_from_old_and_new_pywbem():
    old = ('instance of KVM_DiskResourceAllocationSettingData {\n'
           '\tAddress = "/var/lib/libvirt/images/a \\"b\\".img";\n\tResourceType = 17;\n'
           '\tEmulatedType = 0;\n\tNames = {"a", "b"};\n\tFlag = TRUE;\n\tR = 1.5e3;\n};')
    i = parse_mof_instance(old)
    assert i["Address"] == '/var/lib/libvirt/images/a "b".img'
    assert i["ResourceType"] == 17 and i["Names"] == ["a", "b"] and i["Flag"] is True
    assert i["R"] == 1500.0
    new = sample_instance()
    del new.properties["E"]
    back = parse_mof_instance(new.tomof())
    assert back["S"] == 'a<b>&"c"' and back["A"] == [1, 2, 3]
    assert parse_mof_instance("instance of X { A = {1, NULL}; };")["A"] == [1, None]
    with pytest.raises(EmbeddedInstanceError):
        parse_mof_instance("instance of X { A = ; };")
    with pytest.raises(EmbeddedInstanceError):
        parse_mof_instance("class X { };")


def test_decode_embedded_instance_types_by_schema():
    schema = load_schema()
    i = decode_embedded_instance(
        'instance of CIM_RegisteredProfile { InstanceID = "x"; RegisteredOrganization = 2; '
        'AdvertiseTypes = {3}; };', "root/interop", schema)
    assert i.properties["RegisteredOrganization"].type == "uint16"
    assert i.properties["AdvertiseTypes"].value == [3]
    with pytest.raises(EmbeddedInstanceError, match="RegisteredOrganization"):
        decode_embedded_instance('instance of CIM_RegisteredProfile { '
                                 'RegisteredOrganization = 70000; };', "root/interop", schema)
    with pytest.raises(EmbeddedInstanceError, match="empty"):
        decode_embedded_instance("  ", "root/interop", schema)
