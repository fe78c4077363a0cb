"""Decoding embedded instances, as clients really send them.

Method parameters such as ``SystemSettings`` and ``ResourceSettings[]`` carry
embedded instances.  Clients send them as CIM-XML (``<INSTANCE>`` text in a
VALUE, escaped or not) or as MOF text (``instance of KVM_... { ... };``) in the
formats pywbem 0.7 and pywbem 1.x ``tomof()`` write.  Both are accepted; the
property values are then converted to the types the class declares.

Read tolerantly (docs/lifecycle.md): properties the class does not define are
dropped (logged at debug level) instead of refused, because clients and CIM
servers send more than the class holds (libvirt-cim's clients send
``CreationClassName`` in a VSSD; OpenPegasus and sfcb complete embedded
instances from the full DMTF schema).  Values of defined properties must fit
their declared types.  Nesting depth and the total decoded text are bounded
(:data:`~kvm_providers.cimxml.reader.MAX_EMBED_DEPTH`,
:data:`~kvm_providers.cimxml.reader.MAX_EMBED_BYTES`).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Optional

import pywbem
from pywbem import CIMInstance, CIMInstanceName, CIMProperty

from .reader import (CIMXMLError, EmbedLimitError, embedded_level, parse_fragment,
                     parse_instance, parse_namedinstance)

__all__ = ["decode_embedded_instance", "parse_mof_instance", "mof_unescape",
           "EmbeddedInstanceError", "EmbeddedLimitError", "EmbeddedSyntaxError"]

LOG = logging.getLogger(__name__)


class EmbeddedInstanceError(ValueError):
    """An embedded instance could not be decoded; the message says why and where."""


class EmbeddedSyntaxError(EmbeddedInstanceError):
    """Text that is no instance at all (neither CIM-XML nor MOF of one); the other
    EmbeddedInstanceErrors are instances that do not fit their class."""


class EmbeddedLimitError(EmbeddedInstanceError):
    """Embedded instances nested too deeply or too large (CIM_ERR_SERVER_LIMITS_EXCEEDED)."""


# -- MOF instance text ----------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<chr>'(?:[^'\\]|\\.)')
  | (?P<num>[+-]?(?:0[xX][0-9a-fA-F]+|\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?
                 |\d+[eE][+-]?\d+|\d+)(?![\w.]))
  | (?P<alias>\$[A-Za-z_]\w*)
  | (?P<name>[A-Za-z_][\w]*)
  | (?P<punct>[{}\[\](),;=:])
""", re.X | re.S)

_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "'": "'",
            "\\": "\\"}


def mof_unescape(body: str) -> str:
    """The text of a MOF string literal's body (between its quotes), its escapes decoded
    (the DSP0221 ones and ``\\xHHHH``); EmbeddedInstanceError on any other."""
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1:i + 2]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in ("x", "X"):
            m = re.match(r"[0-9a-fA-F]{1,4}", body[i + 2:])
            if not m:
                raise EmbeddedInstanceError(f"bad \\x escape in MOF string {body!r}")
            out.append(chr(int(m.group(0), 16)))
            i += 2 + len(m.group(0))
        else:
            raise EmbeddedInstanceError(f"unknown escape \\{nxt} in MOF string")
    return "".join(out)


class _Lexer:
    def __init__(self, text: str):
        self.toks: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                raise EmbeddedInstanceError(
                    f"MOF text: unexpected {text[pos:pos + 20]!r} at offset {pos}")
            pos = m.end()
            kind = m.lastgroup or ""
            if kind != "ws":
                self.toks.append((kind, m.group(0)))
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.toks[self.i] if self.i < len(self.toks) else ("eof", "")

    def next(self) -> tuple[str, str]:
        tok = self.peek()
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        kind, text = self.next()
        if text.lower() != value.lower():
            raise EmbeddedInstanceError(f"MOF text: expected {value!r}, found {text or 'end'!r}")


def _skip_qualifiers(lx: _Lexer) -> None:
    if lx.peek()[1] != "[":
        return
    depth = 0
    while True:
        kind, text = lx.next()
        if kind == "eof":
            raise EmbeddedInstanceError("MOF text: unterminated qualifier list")
        if text == "[":
            depth += 1
        elif text == "]":
            depth -= 1
            if depth == 0:
                return


def _mof_value(lx: _Lexer, in_array: bool = False) -> Any:
    kind, text = lx.peek()
    if text == "{":
        if in_array:
            # CIM arrays do not nest; refusing here also keeps the recursion flat.
            raise EmbeddedInstanceError("MOF text: an array inside an array")
        lx.next()
        items: list[Any] = []
        if lx.peek()[1] == "}":
            lx.next()
            return items
        while True:
            items.append(_mof_value(lx, True))
            kind, text = lx.next()
            if text == "}":
                return items
            if text != ",":
                raise EmbeddedInstanceError(f"MOF text: expected ',' or '}}' in array, "
                                            f"found {text!r}")
    if kind == "str":
        parts = []
        while lx.peek()[0] == "str":  # adjacent literals concatenate
            parts.append(mof_unescape(lx.next()[1][1:-1]))
        return "".join(parts)
    lx.next()
    if kind == "chr":
        return mof_unescape(text[1:-1])
    if kind == "num":
        low = text.lower()
        if "x" in low:
            return int(text, 16)
        if any(c in low for c in ".e"):
            return float(text)
        return int(text)
    if kind == "name":
        low = text.lower()
        if low == "true":
            return True
        if low == "false":
            return False
        if low == "null":
            return None
        if low == "instance":
            lx.i -= 1
            try:
                with embedded_level(0, "MOF text"):     # one level deeper, no new text
                    return _mof_instance(lx)
            except EmbedLimitError as exc:
                raise EmbeddedLimitError(str(exc)) from None
    raise EmbeddedInstanceError(f"MOF text: unexpected value {text!r}")


def _mof_instance(lx: _Lexer) -> CIMInstance:
    _skip_qualifiers(lx)
    lx.expect("instance")
    lx.expect("of")
    kind, classname = lx.next()
    if kind != "name":
        raise EmbeddedInstanceError(f"MOF text: expected a class name, found {classname!r}")
    if lx.peek()[1].lower() == "as":
        lx.next()
        lx.next()  # alias
    lx.expect("{")
    props: dict[str, Any] = {}
    while lx.peek()[1] != "}":
        _skip_qualifiers(lx)
        kind, pname = lx.next()
        if kind != "name":
            raise EmbeddedInstanceError(f"MOF text: expected a property name in "
                                        f"{classname}, found {pname!r}")
        lx.expect("=")
        props[pname] = _mof_value(lx)
        lx.expect(";")
    lx.expect("}")
    inst = CIMInstance(classname)
    for name, value in props.items():
        inst.properties[name] = _untyped_property(name, value)
    return inst


def _untyped_property(name: str, value: Any) -> CIMProperty:
    """A property for a MOF value whose CIM type is not known yet."""
    probe = value[0] if isinstance(value, list) and value else value
    is_array = isinstance(value, list)
    if probe is None:
        return CIMProperty(name, value, type="string", is_array=is_array)
    if isinstance(probe, bool):
        ptype = "boolean"
    elif isinstance(probe, int):
        # Typed for real once the class is known; until then the widest type that fits.
        vals = [v for v in (value if is_array else [value]) if v is not None]
        cls = pywbem.Uint64 if any(v > 2 ** 63 - 1 for v in vals) else pywbem.Sint64
        ptype = cls.cimtype
        value = [None if v is None else cls(v) for v in value] if is_array else cls(value)
    elif isinstance(probe, float):
        ptype, value = "real64", ([None if v is None else pywbem.Real64(v) for v in value]
                                  if is_array else pywbem.Real64(value))
    elif isinstance(probe, CIMInstance):
        return CIMProperty(name, value, type="string", is_array=is_array,
                           embedded_object="instance")
    else:
        ptype = "string"
    return CIMProperty(name, value, type=ptype, is_array=is_array)


def parse_mof_instance(text: str) -> CIMInstance:
    """Parse ``instance of Class { Prop = value; ... };`` (one instance)."""
    lx = _Lexer(text)
    while lx.peek()[0] == "name" and lx.peek()[1].startswith("#"):
        lx.next()
    inst = _mof_instance(lx)
    if lx.peek()[1] == ";":
        lx.next()
    if lx.peek()[0] != "eof":
        raise EmbeddedInstanceError(f"MOF text: unexpected {lx.peek()[1]!r} after the instance")
    return inst


# -- typing against the schema ---------------------------------------------------

def _apply_schema(inst: CIMInstance, namespace: Optional[str], schema) -> CIMInstance:
    from ..provider.model import fast_property
    from ..provider.values import coerce
    try:
        spec = schema.spec(namespace, inst.classname)
    except pywbem.CIMError:
        raise EmbeddedInstanceError(
            f"embedded instance of class {inst.classname!r}, which does not exist in "
            f"namespace {namespace}") from None
    for name, prop in list(inst.properties.items()):
        pspec = spec.props.get(name.lower())
        if pspec is None:
            # Read tolerantly: a property the class lacks cannot be used, so it is
            # dropped, not refused (see the module docstring).
            LOG.debug("embedded instance of %s: ignoring property %r, which the class "
                      "does not define (value %.80r)", spec.name, name, prop.value)
            del inst.properties[name]
            continue
        value = prop.value
        try:
            if pspec.type == "reference" and value is not None:
                if isinstance(value, str):
                    value = CIMInstanceName.from_wbem_uri(value) if value.strip() else None
            elif pspec.embedded_object and value is not None:
                if isinstance(value, list):
                    value = [decode_embedded_instance(v, namespace, schema)
                             if isinstance(v, str) else v for v in value]
                elif isinstance(value, str):
                    value = decode_embedded_instance(value, namespace, schema) \
                        if value.strip() else None
            else:
                value = coerce(pspec.type, pspec.is_array, value)
        except EmbeddedInstanceError:
            raise
        except (ValueError, TypeError) as exc:
            raise EmbeddedInstanceError(
                f"{spec.name}.{pspec.name}: value {prop.value!r} does not fit "
                f"{pspec.type}{'[]' if pspec.is_array else ''}: {exc}") from None
        inst.properties[name] = fast_property(pspec, value)
    return inst


def decode_embedded_instance(value: Any, namespace: Optional[str] = None,
                             schema: Any = None) -> CIMInstance:
    """An embedded instance from whatever the client sent.

    Accepts a CIMInstance, CIM-XML text (``<INSTANCE>`` or
    ``<VALUE.NAMEDINSTANCE>``) or MOF text.  With a `namespace`, property
    values are converted to the types the class declares, unknown classes are
    refused and properties the class does not define are dropped.  Raises
    EmbeddedInstanceError naming the problem (EmbeddedLimitError when the
    nesting or size limits are passed).
    """
    if isinstance(value, CIMInstance):
        inst = value
    elif isinstance(value, (str, bytes)):
        text = value.decode("utf-8") if isinstance(value, bytes) else value
        try:
            with embedded_level(len(text), "embedded instance"):
                inst = _decode_text(text)
                if namespace is not None:
                    # Inside the level: strings in embedded properties nest below it.
                    inst = _apply_schema(inst, namespace, schema or _default_schema())
            return inst
        except EmbedLimitError as exc:
            raise EmbeddedLimitError(str(exc)) from None
    else:
        raise EmbeddedInstanceError(f"embedded instance expected, got {type(value).__name__}")
    if namespace is not None:
        inst = _apply_schema(inst, namespace, schema or _default_schema())
    return inst


def _default_schema() -> Any:
    from ..schema import default_schema
    return default_schema()


def _decode_text(text: str) -> CIMInstance:
    stripped = text.strip()
    if not stripped:
        raise EmbeddedSyntaxError("embedded instance is empty")
    if not stripped.startswith("<"):
        try:
            return parse_mof_instance(stripped)
        except (EmbeddedLimitError, EmbeddedSyntaxError):
            raise
        except EmbeddedInstanceError as exc:
            # MOF text that does not parse (its values are typed later, by the class)
            raise EmbeddedSyntaxError(str(exc)) from None
    try:
        el = parse_fragment(stripped)
    except EmbedLimitError:
        raise
    except CIMXMLError as exc:
        raise EmbeddedSyntaxError(f"embedded instance: {exc}") from None
    try:
        if el.tag == "INSTANCE":
            return parse_instance(el)
        if el.tag == "VALUE.NAMEDINSTANCE":
            return parse_namedinstance(el)
    except EmbedLimitError:
        raise
    except CIMXMLError as exc:
        raise EmbeddedInstanceError(f"embedded instance: {exc}") from None
    raise EmbeddedSyntaxError(f"embedded object <{el.tag}> is not an INSTANCE")
