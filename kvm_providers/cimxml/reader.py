"""CIM-XML (DSP0201) reading: requests, instances, paths, values.

The parser is lxml with everything dangerous switched off: no DTD (a request
with a DOCTYPE is refused), no entity expansion, no network, no huge trees.
Every problem raises :class:`CIMXMLError` with a message naming the element
or value at fault; the server turns it into the right HTTP or CIM error.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

import pywbem
from lxml import etree
from pywbem import (CIMClass, CIMClassName, CIMDateTime, CIMInstance, CIMInstanceName,
                    CIMProperty, CIMQualifier)

from ..provider._fastcim import copy_path, new_path
from ..provider.values import INT_TYPES, REAL_TYPES

__all__ = ["CIMXMLError", "EmbedLimitError", "Request", "parse_request", "parse_xml",
           "parse_instance", "parse_instancename", "parse_value", "typed_text", "parse_fragment",
           "embed_budget", "embedded_level", "MAX_EMBED_DEPTH", "MAX_EMBED_BYTES"]


class CIMXMLError(Exception):
    """Malformed or invalid CIM-XML.

    ``kind`` is the DSP0200 CIMError header value: 'request-not-well-formed'
    (not XML), 'request-not-valid' (not valid CIM-XML), or None when the
    problem is a bad value in an otherwise valid request (-> INVALID_PARAMETER).
    """

    #: CIM status of a bad value (kind None) in an otherwise valid request.
    status = pywbem.CIM_ERR_INVALID_PARAMETER

    def __init__(self, message: str, kind: Optional[str] = "request-not-valid"):
        super().__init__(message)
        self.kind = kind


# -- limits on embedded objects -------------------------------------------------------
#
# An embedded object is CIM-XML (or MOF) text inside a VALUE; decoding it parses that
# text again, and an embedded object inside it once more.  Each level repeats (escaped)
# the whole text of the levels below, so without limits a few MB of deeply nested
# EmbeddedObject strings make the server decode gigabytes.  Two limits bound that work,
# both checked before a text is parsed: the nesting depth, and the total length of the
# embedded texts decoded in one budget (a request's parse; the parameters of one method
# call).  docs/embedded-server.md states the bound on memory that follows.

#: Levels of embedded instances: a parameter's embedded instance is level 1, an
#: embedded instance in one of its properties level 2, and so on.
MAX_EMBED_DEPTH = 4
#: Characters of embedded text decoded in one budget, all levels together.
MAX_EMBED_BYTES = 16 * 1024 * 1024


class EmbedLimitError(CIMXMLError):
    """Embedded objects nested too deeply or too large: CIM_ERR_SERVER_LIMITS_EXCEEDED."""

    status = pywbem.CIM_ERR_SERVER_LIMITS_EXCEEDED

    def __init__(self, message: str):
        super().__init__(message, None)


class _Budget:
    __slots__ = ("depth", "used")

    def __init__(self) -> None:
        self.depth = 0
        self.used = 0


_budget: contextvars.ContextVar[Optional[_Budget]] = contextvars.ContextVar(
    "kvm_providers_embed_budget", default=None)


@contextlib.contextmanager
def embed_budget() -> Iterator[None]:
    """One budget for all embedded objects decoded inside (re-entrant: the outer one counts)."""
    if _budget.get() is not None:
        yield
        return
    token = _budget.set(_Budget())
    try:
        yield
    finally:
        _budget.reset(token)


@contextlib.contextmanager
def embedded_level(nbytes: int, where: str) -> Iterator[None]:
    """Enter one level of embedded object whose text has `nbytes` characters.

    Raises EmbedLimitError (naming the limit) before anything is parsed when
    the level is deeper than MAX_EMBED_DEPTH or the budget's total would pass
    MAX_EMBED_BYTES.  Outside embed_budget() the level opens its own budget.
    """
    with embed_budget():
        b = _budget.get()
        assert b is not None
        if b.depth >= MAX_EMBED_DEPTH:
            raise EmbedLimitError(
                f"{where}: embedded instances nested more than {MAX_EMBED_DEPTH} levels deep "
                f"(the server's limit)")
        if b.used + nbytes > MAX_EMBED_BYTES:
            raise EmbedLimitError(
                f"{where}: embedded instances of the request exceed the server's limit of "
                f"{MAX_EMBED_BYTES} characters of embedded text")
        b.used += nbytes
        b.depth += 1
        try:
            yield
        finally:
            b.depth -= 1


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          dtd_validation=False, huge_tree=False, remove_comments=True,
                          remove_pis=True, collect_ids=False)


def parse_xml(data: bytes | str) -> etree._Element:
    """Parse a document safely; refuse DTDs."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    # Blanks before the XML declaration make the document not well-formed, but
    # OpenPegasus and sfcb accept them and some clients send them: skip them.
    if data[:1].isspace():
        data = data.lstrip()
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise CIMXMLError(f"XML is not well-formed: {exc}", "request-not-well-formed") from None
    if root.getroottree().docinfo.doctype:
        raise CIMXMLError("a DOCTYPE (DTD) is not accepted in CIM-XML requests",
                          "request-not-well-formed")
    return root


def parse_fragment(text: str) -> etree._Element:
    """Parse an embedded CIM-XML object (the text of an EmbeddedObject VALUE)."""
    return parse_xml(text.strip())


def _children(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def _need(el: etree._Element, name: str) -> str:
    value = el.get(name)
    if value is None:
        raise CIMXMLError(f"<{el.tag}> lacks the {name} attribute")
    return value


def _one(el: etree._Element, *tags: str) -> etree._Element:
    kids = _children(el)
    if len(kids) != 1 or (tags and kids[0].tag not in tags):
        raise CIMXMLError(f"<{el.tag}> must contain one of {', '.join(tags)}")
    return kids[0]


# -- values --------------------------------------------------------------------

def typed_text(text: Optional[str], cimtype: str, where: str) -> Any:
    """Convert the text of a VALUE to the pywbem value of `cimtype`."""
    if text is None:
        text = ""
    try:
        if cimtype == "string":
            return text
        if cimtype == "boolean":
            low = text.strip().lower()
            if low in ("true", "false"):
                return low == "true"
            raise ValueError(f"{text!r} is not TRUE or FALSE")
        if cimtype in INT_TYPES:
            s = text.strip()
            num = int(s, 16) if s[:2].lower() == "0x" or s[:3].lower() == "-0x" else int(s)
            return INT_TYPES[cimtype](num)
        if cimtype in REAL_TYPES:
            return REAL_TYPES[cimtype](float(text.strip()))
        if cimtype == "char16":
            if len(text) != 1:
                raise ValueError(f"char16 needs one character, got {text!r}")
            return pywbem.Char16(text)
        if cimtype == "datetime":
            return CIMDateTime(text.strip())
    except (ValueError, TypeError) as exc:
        raise CIMXMLError(f"{where}: invalid {cimtype} value {text!r}: {exc}", None) from None
    raise CIMXMLError(f"{where}: unknown CIM type {cimtype!r}")


def _untyped_keyvalue(el: etree._Element) -> Any:
    vtype = el.get("VALUETYPE", "string")
    ctype = el.get("TYPE")
    # OpenPegasus trims the blanks around every element's text, so clients that
    # pretty-print their requests (a KEYVALUE on lines of its own) work there: do
    # the same for keys, which never begin or end with blanks.
    text = (el.text or "").strip()
    if ctype:
        return typed_text(text, ctype, "KEYVALUE")
    if vtype == "string":
        return text
    if vtype == "boolean":
        return typed_text(text, "boolean", "KEYVALUE")
    if vtype == "numeric":
        s = text.strip()
        try:
            return int(s)
        except ValueError:
            try:
                return float(s)
            except ValueError:
                raise CIMXMLError(f"KEYVALUE {text!r} is not numeric", None) from None
    raise CIMXMLError(f"KEYVALUE has unknown VALUETYPE {vtype!r}")


def _namespace(el: etree._Element) -> str:
    if el.tag != "LOCALNAMESPACEPATH":
        raise CIMXMLError(f"expected LOCALNAMESPACEPATH, got <{el.tag}>")
    parts = [_need(n, "NAME") for n in _children(el) if n.tag == "NAMESPACE"]
    if not parts:
        raise CIMXMLError("LOCALNAMESPACEPATH has no NAMESPACE")
    return "/".join(p.strip("/") for p in parts)


def _namespacepath(el: etree._Element) -> tuple[str, str]:
    kids = _children(el)
    if len(kids) != 2 or kids[0].tag != "HOST":
        raise CIMXMLError("NAMESPACEPATH must contain HOST and LOCALNAMESPACEPATH")
    return (kids[0].text or "").strip(), _namespace(kids[1])


def parse_instancename(el: etree._Element, namespace: Optional[str] = None,
                       host: Optional[str] = None) -> CIMInstanceName:
    """<INSTANCENAME> -> CIMInstanceName."""
    if el.tag != "INSTANCENAME":
        raise CIMXMLError(f"expected INSTANCENAME, got <{el.tag}>")
    classname = _need(el, "CLASSNAME")
    keys: dict[str, Any] = {}
    for kid in _children(el):
        if kid.tag == "KEYBINDING":
            name = _need(kid, "NAME")
            val = _one(kid, "KEYVALUE", "VALUE.REFERENCE")
            keys[name] = _untyped_keyvalue(val) if val.tag == "KEYVALUE" \
                else parse_reference(val)
        elif kid.tag == "KEYVALUE":  # single unnamed key (DSP0201 allows it)
            keys[""] = _untyped_keyvalue(kid)
        elif kid.tag == "VALUE.REFERENCE":
            keys[""] = parse_reference(kid)
        else:
            raise CIMXMLError(f"unexpected <{kid.tag}> in INSTANCENAME")
    # String keys (nearly every path a client sends) without pywbem's checks per key.
    return new_path(classname, keys, namespace, host)


def parse_path(el: etree._Element) -> CIMInstanceName | CIMClassName:
    """Any of the path elements DSP0201 allows in a reference."""
    tag = el.tag
    kids = _children(el)
    if tag in ("INSTANCEPATH", "LOCALINSTANCEPATH", "CLASSPATH", "LOCALCLASSPATH") \
            and len(kids) != 2:
        raise CIMXMLError(f"<{tag}> must contain a namespace path and a name")
    if tag == "INSTANCEPATH":
        nsp, inst = kids
        host, ns = _namespacepath(nsp)
        return parse_instancename(inst, ns, host or None)
    if tag == "LOCALINSTANCEPATH":
        nsp, inst = kids
        return parse_instancename(inst, _namespace(nsp))
    if tag == "INSTANCENAME":
        return parse_instancename(el)
    if tag == "CLASSPATH":
        nsp, cn = kids
        host, ns = _namespacepath(nsp)
        return CIMClassName(_need(cn, "NAME"), namespace=ns, host=host or None)
    if tag == "LOCALCLASSPATH":
        nsp, cn = kids
        return CIMClassName(_need(cn, "NAME"), namespace=_namespace(nsp))
    if tag == "CLASSNAME":
        return CIMClassName(_need(el, "NAME"))
    raise CIMXMLError(f"<{tag}> is not an object path")


def parse_reference(el: etree._Element) -> CIMInstanceName | CIMClassName:
    if el.tag != "VALUE.REFERENCE":
        raise CIMXMLError(f"expected VALUE.REFERENCE, got <{el.tag}>")
    return parse_path(_one(el))


def _embedded_kind(el: etree._Element) -> Optional[str]:
    return el.get("EmbeddedObject") or el.get("EMBEDDEDOBJECT")


def _embedded_from_text(text: str, where: str) -> CIMInstance | CIMClass:
    try:
        with embedded_level(len(text), where):
            try:
                el = parse_fragment(text)
            except EmbedLimitError:
                raise
            except CIMXMLError as exc:
                raise CIMXMLError(f"{where}: embedded object is not CIM-XML: {exc}",
                                  None) from None
            if el.tag == "INSTANCE":
                return parse_instance(el)
            if el.tag == "VALUE.NAMEDINSTANCE":
                return parse_namedinstance(el)
            if el.tag == "CLASS":
                return _parse_class(el)
    except EmbedLimitError as exc:
        # Name the way down from the outermost level ("parameter X: property Y: ...").
        msg = str(exc)
        raise EmbedLimitError(msg if msg.startswith(where) else f"{where}: {msg}") from None
    raise CIMXMLError(f"{where}: embedded object <{el.tag}> is not INSTANCE or CLASS", None)


def _property(el: etree._Element) -> CIMProperty:
    name = _need(el, "NAME")
    origin = el.get("CLASSORIGIN")
    quals = {}
    value_el = None
    for kid in _children(el):
        if kid.tag == "QUALIFIER":
            q = _qualifier(kid)
            quals[q.name] = q
        else:
            value_el = kid
    if el.tag == "PROPERTY.REFERENCE":
        value = parse_reference(value_el) if value_el is not None else None
        return CIMProperty(name, value, type="reference",
                           reference_class=el.get("REFERENCECLASS"),
                           class_origin=origin, qualifiers=quals)
    ptype = _need(el, "TYPE")
    emb = _embedded_kind(el)
    where = f"property {name}"
    if el.tag == "PROPERTY.ARRAY":
        value = None
        if value_el is not None:
            if value_el.tag != "VALUE.ARRAY":
                raise CIMXMLError(f"{where}: expected VALUE.ARRAY, got <{value_el.tag}>")
            value = []
            for v in _children(value_el):
                if v.tag == "VALUE.NULL":
                    value.append(None)
                elif emb:
                    value.append(_embedded_from_text(v.text or "", where))
                else:
                    value.append(typed_text(v.text, ptype, where))
        return CIMProperty(name, value, type=ptype, is_array=True, class_origin=origin,
                           qualifiers=quals, embedded_object=emb if emb else None)
    value = None
    if value_el is not None:
        if value_el.tag != "VALUE":
            raise CIMXMLError(f"{where}: expected VALUE, got <{value_el.tag}>")
        value = _embedded_from_text(value_el.text or "", where) if emb \
            else typed_text(value_el.text, ptype, where)
    return CIMProperty(name, value, type=ptype, class_origin=origin, qualifiers=quals,
                       embedded_object=emb if emb else None)


def _qualifier(el: etree._Element) -> CIMQualifier:
    name = _need(el, "NAME")
    qtype = _need(el, "TYPE")
    kids = _children(el)
    value: Any = None
    if kids:
        v = kids[0]
        if v.tag == "VALUE":
            value = typed_text(v.text, qtype, f"qualifier {name}")
        elif v.tag == "VALUE.ARRAY":
            value = [typed_text(x.text, qtype, f"qualifier {name}") for x in _children(v)]
    return CIMQualifier(name, value, type=qtype)


def parse_instance(el: etree._Element) -> CIMInstance:
    """<INSTANCE> -> CIMInstance (typed by the TYPE attributes)."""
    if el.tag != "INSTANCE":
        raise CIMXMLError(f"expected INSTANCE, got <{el.tag}>")
    inst = CIMInstance(_need(el, "CLASSNAME"))
    for kid in _children(el):
        if kid.tag in ("PROPERTY", "PROPERTY.ARRAY", "PROPERTY.REFERENCE"):
            prop = _property(kid)
            inst.properties[prop.name] = prop
        elif kid.tag == "QUALIFIER":
            q = _qualifier(kid)
            inst.qualifiers[q.name] = q
        else:
            raise CIMXMLError(f"unexpected <{kid.tag}> in INSTANCE")
    return inst


def parse_namedinstance(el: etree._Element) -> CIMInstance:
    """<VALUE.NAMEDINSTANCE> -> CIMInstance with path."""
    kids = _children(el)
    if len(kids) != 2 or kids[0].tag != "INSTANCENAME" or kids[1].tag != "INSTANCE":
        raise CIMXMLError("VALUE.NAMEDINSTANCE must contain INSTANCENAME and INSTANCE")
    inst = parse_instance(kids[1])
    inst.path = parse_instancename(kids[0])
    return inst


def _parse_class(el: etree._Element) -> CIMClass:
    # Classes only arrive in CreateClass/ModifyClass, which this server refuses;
    # parse the name so the refusal can name it.
    return CIMClass(_need(el, "NAME"), superclass=el.get("SUPERCLASS"))


def parse_value(el: etree._Element, embedded: Optional[str] = None,
                where: str = "parameter") -> Any:
    """Any value-carrying element -> Python / pywbem value (VALUE text stays a string)."""
    tag = el.tag
    if tag == "VALUE":
        if embedded:
            return _embedded_from_text(el.text or "", where)
        return el.text or ""
    if tag == "VALUE.ARRAY":
        out: list[Any] = []
        for i, v in enumerate(_children(el)):
            if v.tag == "VALUE.NULL":
                out.append(None)
            elif embedded:
                out.append(_embedded_from_text(v.text or "", f"{where}[{i}]"))
            else:
                out.append(v.text or "")
        return out
    if tag == "VALUE.REFERENCE":
        return parse_reference(el)
    if tag == "VALUE.REFARRAY":
        return [None if v.tag == "VALUE.NULL" else parse_reference(v) for v in _children(el)]
    if tag in ("INSTANCENAME", "INSTANCEPATH", "LOCALINSTANCEPATH", "CLASSPATH",
               "LOCALCLASSPATH", "CLASSNAME"):
        return parse_path(el)
    if tag == "INSTANCE":
        return parse_instance(el)
    if tag == "VALUE.NAMEDINSTANCE":
        return parse_namedinstance(el)
    if tag == "CLASS":
        return _parse_class(el)
    if tag == "QUALIFIER.DECLARATION":
        return el
    raise CIMXMLError(f"unexpected <{tag}> as a parameter value")


# -- requests ------------------------------------------------------------------

@dataclass
class Param:
    """A request parameter: its spelling, value, and for PARAMVALUE its PARAMTYPE."""

    name: str
    value: Any
    paramtype: Optional[str] = None
    embedded: Optional[str] = None


@dataclass
class Request:
    """One CIM operation request (a SIMPLEREQ or one call of a MULTIREQ)."""

    msg_id: str
    protocol_version: str
    intrinsic: bool
    name: str
    namespace: str
    params: dict[str, Param] = field(default_factory=dict)   # lower-case name -> Param
    target: Optional[CIMInstanceName | CIMClassName] = None   # extrinsic calls
    error: Optional[str] = None   # a bad value: answered with CIM error error_status
    error_status: int = pywbem.CIM_ERR_INVALID_PARAMETER


def _params(req: Request, call: etree._Element, kids: list, ptag: str) -> Request:
    """Fill req.params from the IPARAMVALUE / PARAMVALUE elements of a call."""
    for p in kids:
        if p.tag != ptag:
            raise CIMXMLError(f"unexpected <{p.tag}> in {call.tag}")
        pname = _need(p, "NAME")
        if pname.lower() in req.params:
            raise CIMXMLError(f"parameter {pname} given twice", None)
        vals = _children(p)
        if len(vals) > 1:
            raise CIMXMLError(f"{ptag} {pname} has more than one value")
        emb = _embedded_kind(p) if ptag == "PARAMVALUE" else None
        value = parse_value(vals[0], emb, f"parameter {pname}") if vals else None
        req.params[pname.lower()] = Param(pname, value, p.get("PARAMTYPE"), emb)
    return req


def _call(el: etree._Element, msg_id: str, pv: str) -> Request:
    name = _need(el, "NAME") if el.tag in ("IMETHODCALL", "METHODCALL") else ""
    kids = _children(el)
    if el.tag == "IMETHODCALL":
        if not kids or kids[0].tag != "LOCALNAMESPACEPATH":
            raise CIMXMLError(f"IMETHODCALL {name} lacks LOCALNAMESPACEPATH")
        req = Request(msg_id, pv, True, name, _namespace(kids[0]))
        return _params(req, el, kids[1:], "IPARAMVALUE")
    if el.tag == "METHODCALL":
        if not kids or kids[0].tag not in ("LOCALINSTANCEPATH", "LOCALCLASSPATH"):
            raise CIMXMLError(f"METHODCALL {name} lacks LOCALINSTANCEPATH or LOCALCLASSPATH")
        target = parse_path(kids[0])
        req = Request(msg_id, pv, False, name, target.namespace, target=target)
        return _params(req, el, kids[1:], "PARAMVALUE")
    raise CIMXMLError(f"expected IMETHODCALL or METHODCALL, got <{el.tag}>")


def _call_or_error(el: etree._Element, msg_id: str, pv: str) -> Request:
    """Like _call, but a bad value (a valid document) becomes Request.error."""
    try:
        return _call(el, msg_id, pv)
    except CIMXMLError as exc:
        if exc.kind is not None:
            raise
        req = Request(msg_id, pv, el.tag == "IMETHODCALL", el.get("NAME", ""), "")
        req.error = str(exc)
        req.error_status = exc.status
        return req


def parse_request(body: bytes | str) -> tuple[list[Request], bool]:
    """Parse a request document: ([requests], is MULTIREQ).

    The embedded objects of the whole document share one budget (MAX_EMBED_BYTES).
    A document that differs from one parsed before only in its MESSAGE ID (a client
    asking the same thing again) is not parsed again (:class:`_Templates`).
    """
    hit = _templates.find(body)
    if hit is not None and hit[0] is not None:
        return hit[0]
    with embed_budget():
        parsed = _parse_request(body)
    if hit is not None:
        _templates.keep(hit[1], hit[2], parsed)
    return parsed


#: The start of a request document up to its MESSAGE ID's value, as clients write it
#: (an XML declaration, <CIM> with its attributes, <MESSAGE ID="...), anchored: nothing
#: else (a comment, a PI, CDATA) comes before the ID.  The ID's characters are printable
#: ASCII without '"', '&' and '<': no entity, no whitespace the parser would normalize,
#: the same text in every ASCII-compatible encoding.
_HEAD_RE = re.compile(
    rb'[ \t\r\n]*(?:<\?xml[^<>?]*\?>[ \t\r\n]*)?<CIM(?:[ \t\r\n]+[A-Za-z]+[ \t\r\n]*=[ \t\r\n]*'
    rb'"[^"<>&]*")*[ \t\r\n]*>[ \t\r\n]*<MESSAGE[ \t\r\n]+ID="([ !#-%\'-;=-~]*)"')


class _Templates:
    """Requests parsed before, by their document with the MESSAGE ID's value cut out.

    Clients ask the same things again and again (a console polling a system: the same
    GetInstance, only the MESSAGE ID differs), and the parse was the largest single part
    of a small request's own work in the server (lxml and the request objects: 50-60 us
    of some 0.5 ms, issue 16).  Two documents equal but for the ID's value (whose
    characters cannot change the document's structure: :data:`_HEAD_RE`) parse to the
    same requests but for ``msg_id``; so a document seen before is answered from the
    requests its first parse made, copied (their paths and lists are the request's own,
    as a parse makes them) with the ID of this document.  Only documents that parsed
    without a problem, of at most :data:`MAX_BYTES`, whose values are copied exactly
    (:func:`_fresh`: strings, numbers, lists of them, class names and instance paths
    with such keys) are kept: :data:`SIZE` of them, the oldest forgotten first.
    """

    MAX_BYTES = 4096
    SIZE = 512

    def __init__(self) -> None:
        self._kept: dict[bytes, tuple[list[Request], bool]] = {}

    def find(self, body: Any) -> Optional[tuple[Optional[tuple[list[Request], bool]],
                                                 bytes, str]]:
        """None if `body` cannot be kept; else (its requests or None, key, ID)."""
        if type(body) is not bytes or len(body) > self.MAX_BYTES:
            return None
        m = _HEAD_RE.match(body)
        if m is None:
            return None
        start, end = m.span(1)
        key = body[:start] + body[end:]
        msg_id = m.group(1).decode("ascii")
        kept = self._kept.get(key)
        if kept is None:
            return None, key, msg_id
        return _fresh_requests(kept, msg_id), key, msg_id

    def keep(self, key: bytes, msg_id: str, parsed: tuple[list[Request], bool]) -> None:
        """Keep what the document of `key` parsed to, if it can be copied exactly."""
        if any(r.msg_id != msg_id or r.error is not None for r in parsed[0]):
            return
        copy = _fresh_requests(parsed, msg_id)   # not the requests handed out: their own
        if copy is None:
            return
        kept = self._kept
        if len(kept) >= self.SIZE:
            try:
                del kept[next(iter(kept))]
            except (StopIteration, KeyError, RuntimeError):
                pass    # changed by another thread meanwhile
        kept[key] = copy

    def clear(self) -> None:
        self._kept.clear()


_templates = _Templates()

_SCALARS = (str, int, float)


def _fresh(value: Any) -> Any:
    """A copy of a parsed value as a new parse makes it; _NO_COPY if it is not one of
    the kinds copied exactly."""
    if value is None or isinstance(value, _SCALARS):
        return value            # immutable (bool is an int)
    if type(value) is CIMInstanceName:
        if value.host is not None or not all(
                v is None or isinstance(v, _SCALARS) for v in value.keybindings.values()):
            return _NO_COPY
        return copy_path(value)
    if type(value) is CIMClassName:
        return CIMClassName(value.classname, host=value.host, namespace=value.namespace)
    if type(value) is list and all(v is None or isinstance(v, _SCALARS) for v in value):
        return list(value)
    return _NO_COPY


_NO_COPY = object()


def _fresh_requests(parsed: tuple[list[Request], bool],
                    msg_id: str) -> Optional[tuple[list[Request], bool]]:
    """Copies of `parsed`'s requests with `msg_id`; None if a value cannot be copied."""
    reqs, multi = parsed
    out = []
    for r in reqs:
        params = {}
        for k, p in r.params.items():
            v = _fresh(p.value)
            if v is _NO_COPY:
                return None
            params[k] = Param(p.name, v, p.paramtype, p.embedded)
        target = None
        if r.target is not None:
            target = _fresh(r.target)
            if target is _NO_COPY:
                return None
        out.append(Request(msg_id, r.protocol_version, r.intrinsic, r.name, r.namespace,
                           params, target, r.error, r.error_status))
    return out, multi


def _parse_request(body: bytes | str) -> tuple[list[Request], bool]:
    root = parse_xml(body)
    if root.tag != "CIM":
        raise CIMXMLError(f"root element is <{root.tag}>, not <CIM>")
    msg = _one(root, "MESSAGE")
    msg_id = _need(msg, "ID")
    pv = _need(msg, "PROTOCOLVERSION")
    if not pv.startswith("1."):
        raise CIMXMLError(f"unsupported PROTOCOLVERSION {pv}", "unsupported-protocol-version")
    body_el = _one(msg, "SIMPLEREQ", "MULTIREQ", "SIMPLEEXPREQ", "MULTIEXPREQ")
    if body_el.tag in ("SIMPLEEXPREQ", "MULTIEXPREQ"):
        raise CIMXMLError("export requests go to a listener, not to this server",
                          "unsupported-operation")
    if body_el.tag == "SIMPLEREQ":
        return [_call_or_error(_one(body_el, "IMETHODCALL", "METHODCALL"), msg_id, pv)], False
    reqs = []
    for simple in _children(body_el):
        if simple.tag != "SIMPLEREQ":
            raise CIMXMLError(f"unexpected <{simple.tag}> in MULTIREQ")
        reqs.append(_call_or_error(_one(simple, "IMETHODCALL", "METHODCALL"), msg_id, pv))
    if len(reqs) < 2:
        raise CIMXMLError("MULTIREQ needs at least two SIMPLEREQ")
    return reqs, True
