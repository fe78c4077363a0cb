"""WQL and the matching subset of DMTF:CQL: ``SELECT * | p1, p2 FROM Class [WHERE condition]``.

Conditions compare properties with literals (or properties) using ``=``,
``<>``/``!=``, ``<``, ``<=``, ``>``, ``>=``, ``LIKE`` (``%`` and ``_``), ``IS
[NOT] NULL`` and ``ISA``, joined by ``AND``, ``OR``, ``NOT`` and parentheses.
Comparisons with NULL are unknown (SQL three-valued logic); an instance is
selected only if the condition is true.  Errors raise CIM_ERR_INVALID_QUERY
with a message pointing at the offending text.

DMTF:CQL (DSP0202) queries of the same shape are accepted too (pywbemcli
sends CQL by default); they differ in LIKE, whose CQL patterns are regular
expressions restricted to ``.``, ``*``, ``[...]`` and backslash escapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Optional

import pywbem
from pywbem import CIMDateTime, CIMError, CIMInstance, CIMInstanceName

__all__ = ["WQLQuery", "parse_wql", "parse_query", "LANGUAGES"]

#: Query languages accepted, by upper-case name -> dialect.
LANGUAGES = {"WQL": "WQL", "DMTF:CQL": "CQL", "CQL": "CQL"}

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<num>[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?(?![\w.]))
  | (?P<op><>|!=|<=|>=|=|<|>)
  | (?P<punct>[(),*])
  | (?P<name>[A-Za-z_][\w]*(?:\.(?:[A-Za-z_][\w]*|\*))?)
""", re.X)

_KEYWORDS = {"select", "from", "where", "and", "or", "not", "is", "null", "like", "isa",
             "true", "false"}


def _err(msg: str) -> CIMError:
    return CIMError(pywbem.CIM_ERR_INVALID_QUERY, f"WQL: {msg}")


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _lex(text: str) -> list[_Tok]:
    toks = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise _err(f"unexpected {text[pos:pos + 15]!r} at position {pos}")
        if m.lastgroup != "ws":
            kind = m.lastgroup
            if kind == "name" and m.group(0).lower() in _KEYWORDS:
                kind = "kw"
            toks.append(_Tok(kind or "", m.group(0), pos))
        pos = m.end()
    toks.append(_Tok("eof", "", pos))
    return toks


def _unquote(text: str) -> str:
    body = text[1:-1]
    if text[0] == "'":
        body = body.replace("''", "'")
    return re.sub(r"\\(.)", r"\1", body)


class _Prop:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name.split(".", 1)[-1]


# A condition compiles to a function instance -> True / False / None (unknown).
Cond = Callable[[CIMInstance], Optional[bool]]


def _value(operand: Any, inst: CIMInstance) -> Any:
    if isinstance(operand, _Prop):
        prop = inst.properties.get(operand.name)
        return None if prop is None else prop.value
    return operand


def _norm(a: Any, b: Any) -> tuple[Any, Any]:
    """Bring two values to comparable Python types."""
    if isinstance(a, bool) or isinstance(b, bool):
        def tb(v):
            if isinstance(v, str):
                return v.strip().lower() == "true"
            return bool(v)
        return tb(a), tb(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a, b
    if isinstance(a, (int, float)) and isinstance(b, str):
        return a, float(b)
    if isinstance(a, str) and isinstance(b, (int, float)):
        return float(a), b
    if isinstance(a, CIMDateTime) or isinstance(b, CIMDateTime):
        a = a if isinstance(a, CIMDateTime) else CIMDateTime(str(a))
        b = b if isinstance(b, CIMDateTime) else CIMDateTime(str(b))
        return a.datetime or a.timedelta, b.datetime or b.timedelta
    if isinstance(a, CIMInstanceName) or isinstance(b, CIMInstanceName):
        return str(a), str(b)
    return str(a), str(b)


def _like(pattern: str, dialect: str) -> re.Pattern:
    out = []
    if dialect == "WQL":
        for ch in pattern:
            out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    else:
        i = 0
        while i < len(pattern):
            ch = pattern[i]
            if ch == "\\" and i + 1 < len(pattern):
                out.append(re.escape(pattern[i + 1]))
                i += 2
                continue
            if ch == "[":
                end = pattern.find("]", i + 1)
                if end < 0:
                    raise _err(f"unterminated [ in LIKE pattern {pattern!r}")
                body = pattern[i + 1:end].replace("\\", "\\\\")
                out.append(f"[{body}]")
                i = end + 1
                continue
            out.append(ch if ch in ".*" else re.escape(ch))
            i += 1
    try:
        return re.compile("^" + "".join(out) + "$", re.S)
    except re.error as exc:
        raise _err(f"invalid LIKE pattern {pattern!r}: {exc}") from None


def _compare(op: str, left: Any, right: Any, dialect: str = "WQL") -> Cond:
    if op == "like":
        if not isinstance(right, str):
            raise _err("LIKE needs a string pattern")
        rx = _like(right, dialect)

        def like(inst: CIMInstance) -> Optional[bool]:
            v = _value(left, inst)
            if v is None:
                return None
            if isinstance(v, list):
                return any(rx.match(str(x)) for x in v if x is not None)
            return bool(rx.match(str(v)))
        return like

    def cmp(inst: CIMInstance) -> Optional[bool]:
        a, b = _value(left, inst), _value(right, inst)
        if a is None or b is None:
            return None
        if isinstance(a, list):  # array property: true if any element matches
            results = [cmp_scalar(x, b) for x in a if x is not None]
            return any(results) if results else None
        return cmp_scalar(a, b)

    def cmp_scalar(a: Any, b: Any) -> Optional[bool]:
        try:
            a, b = _norm(a, b)
            if op == "=":
                return a == b
            if op in ("<>", "!="):
                return a != b
            if op == "<":
                return a < b
            if op == "<=":
                return a <= b
            if op == ">":
                return a > b
            return a >= b
        except (TypeError, ValueError):
            return None
    return cmp


class _Parser:
    def __init__(self, text: str, is_subclass: Optional[Callable[[str, str], bool]],
                 dialect: str = "WQL"):
        self.text = text
        self.dialect = dialect
        self.is_subclass = is_subclass or (lambda sub, sup: sub.lower() == sup.lower())
        self.toks = _lex(text)
        self.i = 0
        self.where_props: set[str] = set()

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def accept_kw(self, kw: str) -> bool:
        tok = self.peek()
        if tok.kind == "kw" and tok.text.lower() == kw:
            self.i += 1
            return True
        return False

    def expect_kw(self, kw: str) -> None:
        if not self.accept_kw(kw):
            tok = self.peek()
            raise _err(f"expected {kw.upper()} at position {tok.pos}, "
                       f"found {tok.text or 'end of query'!r}")

    def parse(self) -> "WQLQuery":
        self.expect_kw("select")
        props: Optional[list[str]] = None
        if self.peek().text == "*" or self.peek().text.endswith(".*"):  # CQL: Class.*
            self.next()
        else:
            props = []
            while True:
                tok = self.next()
                if tok.kind != "name":
                    raise _err(f"expected a property name at position {tok.pos}, "
                               f"found {tok.text or 'end of query'!r}")
                props.append(tok.text.split(".", 1)[-1])
                if self.peek().text != ",":
                    break
                self.next()
        self.expect_kw("from")
        tok = self.next()
        if tok.kind != "name" or "." in tok.text:
            raise _err(f"expected a class name at position {tok.pos}")
        classname = tok.text
        cond: Optional[Cond] = None
        if self.accept_kw("where"):
            cond = self.expr()
        if self.peek().kind != "eof":
            tok = self.peek()
            raise _err(f"unexpected {tok.text!r} at position {tok.pos}")
        return WQLQuery(self.text, classname, props, cond, sorted(self.where_props))

    def expr(self) -> Cond:
        left = self.term()
        while self.accept_kw("or"):
            right = self.term()
            left = _or(left, right)
        return left

    def term(self) -> Cond:
        left = self.factor()
        while self.accept_kw("and"):
            right = self.factor()
            left = _and(left, right)
        return left

    def factor(self) -> Cond:
        if self.accept_kw("not"):
            inner = self.factor()
            return lambda inst: None if (r := inner(inst)) is None else not r
        if self.peek().text == "(":
            self.next()
            inner = self.expr()
            if self.next().text != ")":
                raise _err("missing ')'")
            return inner
        return self.comparison()

    def operand(self) -> Any:
        tok = self.next()
        if tok.kind == "str":
            return _unquote(tok.text)
        if tok.kind == "num":
            return float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
        if tok.kind == "kw" and tok.text.lower() in ("true", "false"):
            return tok.text.lower() == "true"
        if tok.kind == "kw" and tok.text.lower() == "null":
            return None
        if tok.kind == "name":
            prop = _Prop(tok.text)
            self.where_props.add(prop.name)
            return prop
        raise _err(f"expected a property or a literal at position {tok.pos}, "
                   f"found {tok.text or 'end of query'!r}")

    def comparison(self) -> Cond:
        left = self.operand()
        tok = self.peek()
        if tok.kind == "kw" and tok.text.lower() == "is":
            self.next()
            negate = self.accept_kw("not")
            self.expect_kw("null")
            if not isinstance(left, _Prop):
                raise _err("IS NULL needs a property on its left")
            if negate:
                return lambda inst: _value(left, inst) is not None
            return lambda inst: _value(left, inst) is None
        if tok.kind == "kw" and tok.text.lower() == "isa":
            self.next()
            cls = self.next()
            if cls.kind not in ("name", "str"):
                raise _err(f"ISA needs a class name at position {cls.pos}")
            cname = _unquote(cls.text) if cls.kind == "str" else cls.text
            if not isinstance(left, _Prop):
                raise _err("ISA needs a property on its left")
            is_subclass = self.is_subclass

            def isa(inst: CIMInstance) -> Optional[bool]:
                v = _value(left, inst)
                if v is None:
                    return None
                if not isinstance(v, (CIMInstanceName, CIMInstance)):
                    return False
                return is_subclass(v.classname, cname)
            return isa
        if tok.kind == "kw" and tok.text.lower() == "like":
            self.next()
            right = self.operand()
            return _compare("like", left, right, self.dialect)
        if tok.kind != "op":
            raise _err(f"expected a comparison operator at position {tok.pos}, "
                       f"found {tok.text or 'end of query'!r}")
        self.next()
        right = self.operand()
        if left is None or right is None:
            return lambda inst: None  # comparison with NULL is unknown
        return _compare(tok.text, left, right)


def _and(a: Cond, b: Cond) -> Cond:
    def f(inst: CIMInstance) -> Optional[bool]:
        x = a(inst)
        if x is False:
            return False
        y = b(inst)
        if y is False:
            return False
        return None if x is None or y is None else True
    return f


def _or(a: Cond, b: Cond) -> Cond:
    def f(inst: CIMInstance) -> Optional[bool]:
        x = a(inst)
        if x is True:
            return True
        y = b(inst)
        if y is True:
            return True
        return None if x is None or y is None else False
    return f


@dataclass
class WQLQuery:
    """A parsed query."""

    text: str
    classname: str
    select: Optional[list[str]]           # None: SELECT *
    condition: Optional[Cond]
    where_props: list[str]

    def needed_properties(self) -> Optional[list[str]]:
        """The properties to ask providers for (select list plus WHERE properties)."""
        if self.select is None:
            return None
        return sorted({*self.select, *self.where_props}, key=str.lower)

    def matches(self, inst: CIMInstance) -> bool:
        return self.condition is None or self.condition(inst) is True

    def project(self, inst: CIMInstance) -> CIMInstance:
        """Keep only the selected properties."""
        if self.select is None:
            return inst
        keep = {p.lower() for p in self.select}
        for name in list(inst.properties.keys()):
            if name.lower() not in keep:
                del inst.properties[name]
        return inst


def parse_wql(text: str, is_subclass: Optional[Callable[[str, str], bool]] = None) -> WQLQuery:
    """Parse a WQL query; CIM_ERR_INVALID_QUERY with a precise message if it is not one.

    `is_subclass(sub, super)` serves ISA (default: same class name).
    """
    if not text or not text.strip():
        raise _err("empty query")
    return _Parser(text, is_subclass).parse()


def parse_query(language: str, text: str,
                is_subclass: Optional[Callable[[str, str], bool]] = None) -> WQLQuery:
    """Parse a query in `language` (WQL or DMTF:CQL)."""
    dialect = LANGUAGES.get((language or "").strip().upper())
    if dialect is None:
        raise CIMError(pywbem.CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED,
                       f"Query language {language!r} is not supported "
                       f"(supported: {', '.join(sorted(LANGUAGES))})")
    if not text or not text.strip():
        raise _err("empty query")
    return _Parser(text, is_subclass, dialect).parse()
