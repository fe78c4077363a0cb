"""cimxml.reader: a request document equal to one parsed before but for its MESSAGE ID is
not parsed again (issue 16, stop 24: the parse was the largest part of a small request's
own work in the server).  Counted, not timed: lxml's parses per request; the requests
equal to a fresh parse's, the ID of their own document, copies that a request may change
without changing the next; documents whose ID slot could mean anything else parsed each
time."""

from __future__ import annotations

import pytest
from pywbem import CIMClassName, CIMInstanceName

from kvm_providers.cimxml import reader as R


@pytest.fixture(autouse=True)
def no_templates():
    templates = getattr(R, "_templates", None)    # None: a reader that keeps none
    if templates is not None:
        templates.clear()
    yield
    if templates is not None:
        templates.clear()


@pytest.fixture
def parses(monkeypatch):
    """Counts lxml parses of request documents."""
    count = {"n": 0}
    real = R.parse_xml

    def counting(data):
        count["n"] += 1
        return real(data)
    monkeypatch.setattr(R, "parse_xml", counting)
    return count


def doc(call: str, msg_id: str = "1001", head: str = '<?xml version="1.0" encoding="utf-8" ?>',
        multi: bool = False) -> bytes:
    body = f"<MULTIREQ><SIMPLEREQ>{call}</SIMPLEREQ><SIMPLEREQ>{call}</SIMPLEREQ></MULTIREQ>" \
        if multi else f"<SIMPLEREQ>{call}</SIMPLEREQ>"
    return (f'{head}<CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="{msg_id}" '
            f'PROTOCOLVERSION="1.0">{body}</MESSAGE></CIM>').encode()


NS = '<LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="virt"/></LOCALNAMESPACEPATH>'
CS = ('<INSTANCENAME CLASSNAME="KVM_ComputerSystem"><KEYBINDING NAME="CreationClassName">'
      '<KEYVALUE VALUETYPE="string">KVM_ComputerSystem</KEYVALUE></KEYBINDING>'
      '<KEYBINDING NAME="Name"><KEYVALUE VALUETYPE="string">guest0000</KEYVALUE></KEYBINDING>'
      '</INSTANCENAME>')

CALLS = {
    "GetInstance": f'<IMETHODCALL NAME="GetInstance">{NS}<IPARAMVALUE NAME="InstanceName">{CS}'
                   '</IPARAMVALUE></IMETHODCALL>',
    "GetInstance PropertyList": (
        f'<IMETHODCALL NAME="GetInstance">{NS}<IPARAMVALUE NAME="InstanceName">{CS}'
        '</IPARAMVALUE><IPARAMVALUE NAME="PropertyList"><VALUE.ARRAY><VALUE>Name</VALUE>'
        '<VALUE>EnabledState</VALUE></VALUE.ARRAY></IPARAMVALUE><IPARAMVALUE '
        'NAME="IncludeClassOrigin"><VALUE>TRUE</VALUE></IPARAMVALUE></IMETHODCALL>'),
    "AssociatorNames": (
        f'<IMETHODCALL NAME="AssociatorNames">{NS}<IPARAMVALUE NAME="ObjectName">{CS}'
        '</IPARAMVALUE><IPARAMVALUE NAME="AssocClass"><CLASSNAME NAME="KVM_SystemDevice"/>'
        '</IPARAMVALUE></IMETHODCALL>'),
    "numeric and entity keys": (
        f'<IMETHODCALL NAME="GetInstance">{NS}<IPARAMVALUE NAME="InstanceName">'
        '<INSTANCENAME CLASSNAME="KVM_X"><KEYBINDING NAME="Name"><KEYVALUE VALUETYPE="string">'
        'vm&amp;1</KEYVALUE></KEYBINDING><KEYBINDING NAME="N"><KEYVALUE VALUETYPE="numeric">7'
        '</KEYVALUE></KEYBINDING></INSTANCENAME></IPARAMVALUE></IMETHODCALL>'),
    "method call": (
        '<METHODCALL NAME="RequestStateChange"><LOCALINSTANCEPATH><LOCALNAMESPACEPATH>'
        '<NAMESPACE NAME="root"/><NAMESPACE NAME="virt"/></LOCALNAMESPACEPATH>'
        f'{CS}</LOCALINSTANCEPATH><PARAMVALUE NAME="RequestedState" PARAMTYPE="uint16">'
        '<VALUE>2</VALUE></PARAMVALUE></METHODCALL>'),
    "reference key": (
        f'<IMETHODCALL NAME="GetInstance">{NS}<IPARAMVALUE NAME="InstanceName">'
        '<INSTANCENAME CLASSNAME="KVM_SystemDevice"><KEYBINDING NAME="GroupComponent">'
        f'<VALUE.REFERENCE>{CS}</VALUE.REFERENCE></KEYBINDING></INSTANCENAME></IPARAMVALUE>'
        '</IMETHODCALL>'),
}


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_request_asked_again_answers_as_a_fresh_parse(name, multi):
    """Every shape, asked three times with other IDs: the requests a fresh parse makes of
    each document (its own ID), and copies: what a request changes in its paths and
    lists is not in the next one's."""
    for i, msg_id in enumerate(["1001", "1002", "x-7 >:"]):
        data = doc(CALLS[name], msg_id, multi=multi)
        got = R.parse_request(data)
        with R.embed_budget():
            fresh = R._parse_request(data)
        assert got == fresh, (name, msg_id)
        assert all(r.msg_id == msg_id for r in got[0])
        for r in got[0]:        # a request changing what it got
            for p in r.params.values():
                if isinstance(p.value, (CIMInstanceName, CIMClassName)):
                    p.value.classname = f"Changed{i}"
                    p.value.namespace = "changed"
                if isinstance(p.value, CIMInstanceName):
                    p.value.keybindings["Name"] = "changed"
                elif isinstance(p.value, list):
                    p.value.append("changed")
            if r.target is not None:
                r.target.keybindings["Name"] = "changed"


def test_a_request_asked_again_with_another_id_is_not_parsed_again(parses):
    """The guard: 1 lxml parse for 5 GetInstance and 5 AssociatorNames documents that
    differ only in their MESSAGE ID each (a parse per document before)."""
    for call in ("GetInstance", "AssociatorNames"):
        parses["n"] = 0
        for i in range(5):
            (r,), _ = R.parse_request(doc(CALLS[call], str(1000 + i)))
            assert r.msg_id == str(1000 + i) and r.name == call
        assert parses["n"] == 1, (call, parses)
    # another system is another document: parsed
    (r,), _ = R.parse_request(doc(CALLS["GetInstance"].replace("guest0000", "guest0001")))
    assert r.params["instancename"].value["Name"] == "guest0001"
    assert parses["n"] == 2


@pytest.mark.parametrize("data", [
    # the ID slot is not provably the MESSAGE's ID, or its text would be changed by the
    # parser: parsed every time
    doc(CALLS["GetInstance"], head='<?xml version="1.0"?><!-- <MESSAGE ID="1001" -->'),
    doc(CALLS["GetInstance"], "a&amp;b"),
    doc(CALLS["GetInstance"], "a\tb"),
    doc(CALLS["GetInstance"], "\u00e9t\u00e9"),
    doc(CALLS["GetInstance"]).replace(b'MESSAGE ID="1001" PROTOCOLVERSION="1.0"',
                                      b'MESSAGE PROTOCOLVERSION="1.0" ID="1001"'),
    doc(CALLS["GetInstance"]).decode().encode("utf-16"),
    doc(CALLS["GetInstance"] + "<!-- " + "x" * 5000 + " -->"),
])
def test_documents_not_kept_are_parsed_each_time(data, parses):
    first = R.parse_request(data)
    second = R.parse_request(data)
    assert first == second
    assert parses["n"] == 2


def test_embedded_objects_and_bad_values_are_parsed_each_time(parses):
    """Values that are not copied exactly (an embedded instance), and a request with a
    bad value (its error), are parsed again: the same answers as before."""
    emb = ('<METHODCALL NAME="M"><LOCALCLASSPATH><LOCALNAMESPACEPATH><NAMESPACE NAME="t"/>'
           '</LOCALNAMESPACEPATH><CLASSNAME NAME="C"/></LOCALCLASSPATH>'
           '<PARAMVALUE NAME="I" PARAMTYPE="string" EmbeddedObject="instance">'
           '<VALUE>&lt;INSTANCE CLASSNAME="C"&gt;&lt;PROPERTY NAME="P" TYPE="uint8"&gt;'
           '&lt;VALUE&gt;{}&lt;/VALUE&gt;&lt;/PROPERTY&gt;&lt;/INSTANCE&gt;</VALUE>'
           '</PARAMVALUE></METHODCALL>')
    good = [R.parse_request(doc(emb.format(9), str(i)))[0][0] for i in range(2)]
    assert good[0].params["i"].value is not good[1].params["i"].value
    assert good[1].msg_id == "1" and good[1].params["i"].value["P"] == 9
    bad = [R.parse_request(doc(emb.format(999), str(i)))[0][0] for i in range(2)]
    assert bad[1].error and "999" in bad[1].error and bad[1].msg_id == "1"
    assert parses["n"] == 8      # each time the document and the embedded instance's text


def test_malformed_documents_still_fail_after_a_good_one():
    """A document kept does not make a broken one that shares its start pass."""
    R.parse_request(doc(CALLS["GetInstance"]))
    broken = doc(CALLS["GetInstance"])[:-20]
    with pytest.raises(R.CIMXMLError):
        R.parse_request(broken)
    with pytest.raises(R.CIMXMLError):
        R.parse_request(doc(CALLS["GetInstance"]).replace(b'PROTOCOLVERSION="1.0"',
                                                          b'PROTOCOLVERSION="2.0"'))


def test_the_kept_documents_are_bounded(monkeypatch):
    monkeypatch.setattr(R._Templates, "SIZE", 8)
    for i in range(50):
        R.parse_request(doc(CALLS["GetInstance"].replace("guest0000", f"guest{i:04d}")))
    assert len(R._templates._kept) <= 8
