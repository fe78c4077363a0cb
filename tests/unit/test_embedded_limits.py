"""Limits on embedded instances (issue 9 item 5): nesting depth and decoded text per request.

Each level of embedded instance is CIM-XML text escaped inside the level above; decoding
it parses that text again.  The reader and the embedded-instance decoder refuse a level
deeper than MAX_EMBED_DEPTH and stop once the embedded texts of one budget pass
MAX_EMBED_BYTES, both before the text is parsed, with CIM_ERR_SERVER_LIMITS_EXCEEDED
naming the limit.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import pytest
import pywbem

from kvm_providers.cimxml import reader
from kvm_providers.cimxml.embedded import (EmbeddedInstanceError, EmbeddedLimitError,
                                           decode_embedded_instance, parse_mof_instance)
from kvm_providers.cimxml.reader import parse_request
from kvm_providers.provider.params import typed_param
from kvm_providers.schema import ParamSpec, load_schema


def nested_xml(levels: int, payload: str = "x") -> str:
    """An INSTANCE whose property E holds an embedded INSTANCE, `levels` deep in all."""
    text = (f'<INSTANCE CLASSNAME="T"><PROPERTY NAME="S" TYPE="string">'
            f'<VALUE>{escape(payload)}</VALUE></PROPERTY></INSTANCE>')
    for _ in range(levels - 1):
        text = (f'<INSTANCE CLASSNAME="T"><PROPERTY NAME="E" TYPE="string" '
                f'EmbeddedObject="instance"><VALUE>{escape(text)}</VALUE></PROPERTY>'
                f'</INSTANCE>')
    return text


def method_request(param_xml: str) -> str:
    """An InvokeMethod request with one embedded-instance parameter."""
    return ('<?xml version="1.0" encoding="utf-8"?><CIM CIMVERSION="2.0" DTDVERSION="2.0">'
            '<MESSAGE ID="1" PROTOCOLVERSION="1.0"><SIMPLEREQ><METHODCALL NAME="DefineSystem">'
            '<LOCALCLASSPATH><LOCALNAMESPACEPATH><NAMESPACE NAME="root"/>'
            '<NAMESPACE NAME="virt"/></LOCALNAMESPACEPATH>'
            '<CLASSNAME NAME="KVM_VirtualSystemManagementService"/></LOCALCLASSPATH>'
            '<PARAMVALUE NAME="SystemSettings" PARAMTYPE="string" EmbeddedObject="instance">'
            f'<VALUE>{escape(param_xml)}</VALUE></PARAMVALUE>'
            '</METHODCALL></SIMPLEREQ></MESSAGE></CIM>')


def test_depth_up_to_the_limit_is_decoded():
    (req,), _ = parse_request(method_request(nested_xml(reader.MAX_EMBED_DEPTH)))
    assert req.error is None
    inst = req.params["systemsettings"].value
    for _ in range(reader.MAX_EMBED_DEPTH - 1):
        inst = inst["E"]
    assert inst["S"] == "x"


def test_one_level_deeper_is_refused_before_parsing():
    (req,), _ = parse_request(method_request(nested_xml(reader.MAX_EMBED_DEPTH + 1)))
    assert req.error_status == pywbem.CIM_ERR_SERVER_LIMITS_EXCEEDED
    assert f"more than {reader.MAX_EMBED_DEPTH} levels" in req.error
    assert "parameter SystemSettings" in req.error


def test_deep_nesting_is_cheap_to_refuse():
    # 100 levels: the old reader parsed every one of them.
    (req,), _ = parse_request(method_request(nested_xml(100)))
    assert req.error_status == pywbem.CIM_ERR_SERVER_LIMITS_EXCEEDED


def test_decoded_bytes_budget_per_request(monkeypatch):
    monkeypatch.setattr(reader, "MAX_EMBED_BYTES", 50_000)
    # Two levels of 20 kB each: within the budget ...
    (req,), _ = parse_request(method_request(nested_xml(2, "y" * 20_000)))
    assert req.error is None
    # ... three are not: the budget counts every level's text.
    (req,), _ = parse_request(method_request(nested_xml(3, "y" * 20_000)))
    assert req.error_status == pywbem.CIM_ERR_SERVER_LIMITS_EXCEEDED
    assert "limit of 50000 characters" in req.error
    # The budget is per request: the next request starts afresh.
    (req,), _ = parse_request(method_request(nested_xml(2, "y" * 20_000)))
    assert req.error is None


def test_embedded_text_strings_in_parameters_are_limited_too():
    schema = load_schema()
    # An embedded instance sent as a plain string (no EmbeddedObject attribute): decoded by
    # the provider interface, under the same limits, answered SERVER_LIMITS_EXCEEDED.
    with pytest.raises(EmbeddedLimitError):
        decode_embedded_instance(nested_xml(reader.MAX_EMBED_DEPTH + 1))
    spec = ParamSpec("SystemSettings", "string", False, True, False,
                     embedded_object="instance")
    with pytest.raises(pywbem.CIMError) as err:
        typed_param(spec, nested_xml(reader.MAX_EMBED_DEPTH + 1), "root/virt", "DefineSystem",
                     schema)
    assert err.value.status_code == pywbem.CIM_ERR_SERVER_LIMITS_EXCEEDED
    assert "Parameter SystemSettings of method DefineSystem" in err.value.status_description


def test_mof_nesting_limited_and_arrays_do_not_nest():
    def mof(levels):
        return ("instance of A { X = " * (levels - 1) + "instance of B { Y = 1; }" +
                "; }" * (levels - 1) + ";")
    assert decode_embedded_instance(mof(reader.MAX_EMBED_DEPTH)).classname == "A"
    with pytest.raises(EmbeddedLimitError, match="levels deep"):
        decode_embedded_instance(mof(reader.MAX_EMBED_DEPTH + 1))
    with pytest.raises(EmbeddedLimitError):
        decode_embedded_instance(mof(2000))          # no RecursionError
    with pytest.raises(EmbeddedInstanceError, match="array inside an array"):
        parse_mof_instance("instance of A { X = " + "{" * 2000 + "1" + "}" * 2000 + "; };")


def test_unknown_properties_are_dropped_not_refused():
    schema = load_schema()
    inst = decode_embedded_instance(
        'instance of KVM_VirtualSystemSettingData { VirtualSystemIdentifier = "a"; '
        'CreationClassName = "KVM_VirtualSystemSettingData"; Generation = 3; };',
        "root/virt", schema)
    assert list(inst.properties) == ["VirtualSystemIdentifier"]
