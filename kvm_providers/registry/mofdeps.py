"""What the project's classes need from the CIM server's schema, and what it lacks.

The project's classes derive from (and refer to) DMTF classes.  sfcb and
Pegasus ship the DMTF schema, but not always every class the project uses:
the DMTF *Final* schema (OpenPegasus' ``CIM241``, the DMTF zip that sfcb
compiles) lacks CIM_VirtualSystemMigrationService,
CIM_VirtualSystemMigrationCapabilities and CIM_MostCurrentSnapshotInBranch,
which are only in the Experimental schema.  sfcbmof then fails with "class ...
was referenced but never defined", Pegasus' cimmof with
CIM_ERR_INVALID_SUPERCLASS.

This module reads MOF text just far enough to answer that: the classes a text
defines, the classes each depends on (superclass, REF types of properties and
method parameters, EmbeddedInstance classes), the classes a server's schema
file defines (following ``#pragma include``), and -- from the project's own
DMTF subset (``mof/cim``) -- the definitions of the classes the server lacks, in
an order a MOF compiler accepts (every class after the classes it needs).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Iterable, Optional

__all__ = ["MofClass", "parse_classes", "schema_class_names", "SchemaSubset",
           "INCLUDE_RE"]

INCLUDE_RE = re.compile(r'^\s*#pragma\s+include\s*\(\s*"([^"]+)"\s*\)\s*;?', re.I | re.M)
_COMMENT_RE = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"')
_CLASS_RE = re.compile(r"\bclass\s+(\w+)\s*(?::\s*(\w+))?\s*\{", re.I)
_REF_RE = re.compile(r"\b(\w+)\s+REF\b", re.I)
_EMBEDDED_RE = re.compile(r'\bEmbeddedInstance\s*\(\s*"(\w+)"\s*\)', re.I)


@dataclass
class MofClass:
    """One class definition of a MOF text."""

    name: str
    superclass: Optional[str]
    deps: set[str] = field(default_factory=set)   # lower-case names of needed classes
    text: str = ""                                 # the definition with its qualifiers


def _strip_comments(text: str) -> str:
    # strings first, so that "//" inside a string is not taken for a comment
    strings: list[str] = []

    def keep(m: re.Match) -> str:
        strings.append(m.group(0))
        return f'"\0{len(strings) - 1}\0"'
    text = _STRING_RE.sub(keep, text)
    text = _COMMENT_RE.sub("", text)
    return re.sub(r'"\0(\d+)\0"', lambda m: strings[int(m.group(1))], text)


def _declarations(text: str) -> list[str]:
    """The text split after each top-level ``};`` (end of a class or instance),
    braces inside strings and comments not counted."""
    out: list[str] = []
    depth, start, i, n = 0, 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            i = text.find("*/", i + 2)
            i = n if i < 0 else i + 1
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(depth - 1, 0)
            if depth == 0:
                j = i + 1
                while j < n and text[j] in " \t":
                    j += 1
                if j < n and text[j] == ";":
                    out.append(text[start:j + 1])
                    start = i = j + 1
                    continue
        i += 1
    return out


def parse_classes(text: str) -> list[MofClass]:
    """The class definitions of a MOF text, in text order."""
    out: list[MofClass] = []
    for chunk in _declarations(text):
        code = _STRING_RE.sub('""', _strip_comments(chunk))
        m = _CLASS_RE.search(code)
        if not m:
            continue
        name, sup = m.group(1), m.group(2)
        deps = {d.lower() for d in _REF_RE.findall(code)}
        deps |= {d.lower() for d in _EMBEDDED_RE.findall(_strip_comments(chunk))}
        if sup:
            deps.add(sup.lower())
        deps.discard(name.lower())
        # the definition with its qualifiers and comments, without the pragmas and
        # qualifier declarations of the file it came from
        lines = chunk.splitlines()
        first = next((k for k, line in enumerate(lines)
                      if line.strip().startswith(("[", "//")) or _CLASS_RE.search(line) or
                      re.match(r"\s*class\b", line, re.I)), 0)
        body = "\n".join(line for line in lines[first:]
                         if not line.lstrip().startswith("#pragma"))
        out.append(MofClass(name, sup, deps, body.strip("\n") + "\n"))
    return out


def _resolve_include(rel: str, including: str, top: str) -> Optional[str]:
    for base in (os.path.dirname(including), top):
        cand = os.path.join(base, rel)
        if os.path.isfile(cand):
            return cand
    return None


def schema_class_names(path: str, missing: Optional[list[str]] = None) -> set[str]:
    """Lower-case names of the classes `path` defines, its includes followed.

    Includes are looked up next to the including file, then next to `path`
    (the DMTF layout includes ``DMTF/Core/...`` from the top file); includes
    not found are appended to `missing` if given.
    """
    top = os.path.dirname(os.path.abspath(path))
    names: set[str] = set()
    seen: set[str] = set()
    stack = [os.path.abspath(path)]
    while stack:
        cur = stack.pop()
        real = os.path.realpath(cur)
        if real in seen:
            continue
        seen.add(real)
        with open(cur, encoding="utf-8", errors="replace") as f:
            text = f.read()
        code = _strip_comments(text)
        names.update(m.group(1).lower() for m in _CLASS_RE.finditer(_STRING_RE.sub('""', code)))
        for rel in INCLUDE_RE.findall(code):
            inc = _resolve_include(rel, cur, top)
            if inc is None:
                if missing is not None:
                    missing.append(rel)
                continue
            stack.append(inc)
    return names


class SchemaSubset:
    """The project's DMTF subset (``mof/cim``): class definitions by name."""

    def __init__(self, cim_dir: str):
        self.classes: dict[str, MofClass] = {}
        for name in sorted(os.listdir(cim_dir)):
            if not name.endswith(".mof"):
                continue
            with open(os.path.join(cim_dir, name), encoding="utf-8") as f:
                for cls in parse_classes(f.read()):
                    self.classes[cls.name.lower()] = cls

    def missing(self, own: Iterable[MofClass], have: set[str]) -> list[MofClass]:
        """The subset's definitions of the classes `own` needs (transitively) that
        are neither in `have` (lower-case names the server has) nor in `own`;
        every class after the classes it needs."""
        own = list(own)
        defined = {c.name.lower() for c in own}
        out: list[MofClass] = []
        done: set[str] = set()

        def visit(lname: str, path: tuple[str, ...]) -> None:
            if lname in done or lname in have or lname in defined or lname in path:
                return
            cls = self.classes.get(lname)
            if cls is None:
                # neither the server nor the subset has it: the compiler will say so
                done.add(lname)
                return
            for dep in sorted(cls.deps):
                visit(dep, path + (lname,))
            done.add(lname)
            out.append(cls)
        for cls in own:
            for dep in sorted(cls.deps):
                visit(dep, ())
        return out
