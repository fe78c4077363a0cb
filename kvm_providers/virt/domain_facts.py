"""Domain facts without the devices: the ``<domain>`` element parsed with its
``<devices>`` subtree left out, for reads that touch nothing under it (issue 16).

libvirtd's completed definitions are mostly ``<devices>``; a VSSD enumeration reads a
dozen top-level facts (and perhaps ``devices/emulator``).  :func:`devices_needed`
derives from a mapping table's field paths which children of ``<devices>`` the wanted
fields read; :func:`parse_without_devices` parses the text with the top-level
``<devices>`` element cut down to those children, and parses the whole text whenever
the cut cannot be shown to be exact.  The tree it gives is for reading those fields
only: GetInstance, methods and writes keep the full parse (:func:`.domain.domain_xml`).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional

from lxml import etree

from .mapping import (Attr, AttrList, Computed, Const, Enum, Exists, Field, MemoryKiB,
                      OneItemList, Text, TextList)
from .query import parse_xml

__all__ = ["field_paths", "devices_needed", "cut_devices", "parse_without_devices",
           "facts_parser"]

#: Characters of ``<devices>`` below which the whole text is parsed: the cut's own cost
#: (some 6 us) outweighs what a smaller subtree costs lxml (some 9 us a KB).
MIN_CUT = 1024
#: An attribute only the cut placeholder carries: the parsed tree shows where it went.
_MARK = "kvmp-cut-devices"


def field_paths(field: Field) -> Optional[frozenset[str]]:
    """The element paths (below the table's element) `field` reads; None if unknown."""
    if isinstance(field, Const):
        return frozenset()
    if isinstance(field, (Attr, Text, Exists, AttrList, MemoryKiB)):
        return frozenset((field.path,))
    if isinstance(field, (TextList, OneItemList)):
        return field_paths(field.inner)
    if isinstance(field, Enum):
        return field_paths(field.inner)
    if isinstance(field, Computed):
        return None if field.reads is None else frozenset(field.reads)
    return None


def devices_needed(table: Mapping[str, Field], names: Iterable[str]
                   ) -> Optional[frozenset[str]]:
    """The tags of the children of ``<devices>`` that the fields `names` of `table`
    read (empty: none); None if they may read more (a deeper or unknown path)."""
    keep: set[str] = set()
    for name in names:
        paths = field_paths(table[name])
        if paths is None:
            return None
        for path in paths:
            steps = path.split("/")
            if any(not s or s[0] in ".*" or not s.replace("-", "_").isidentifier()
                   for s in steps if path):
                return None         # '.', '..', '//', '*', predicates: not a plain path
            if steps[0] != "devices":
                continue
            if len(steps) != 2:
                return None         # devices itself, or below one of its children
            keep.add(steps[1])
    return frozenset(keep)


def cut_devices(text: str, keep: frozenset[str] = frozenset()) -> Optional[str]:
    """`text` (a domain's XML) with its top-level ``<devices>`` element reduced to its
    leading children of tags `keep` (text-only elements); None if that cannot be done
    exactly (then the caller parses the whole text).

    The placeholder carries a mark that the parsed tree must show on an element child
    of the root (:func:`parse_without_devices`): a first ``<devices`` inside a comment,
    CDATA section or processing instruction, or nested in ``<metadata>``, fails it.
    Such a ``<devices>`` start tag is the root's child's, and with no comment, CDATA
    or processing instruction inside the element (where '</devices>' could hide) nor
    another ``<devices`` in it, the first ``</devices>`` after it is its end.  Plain
    string searches: the cut must cost less than the parse it saves."""
    start = text.find("<devices")
    if start < 0:
        return None
    if text.startswith("<devices/>", start):
        close = pos = end = start + 10
    elif text.startswith("<devices>", start):
        close = text.find("</devices>", start)
        if close < 0 or text.find("<devices", start + 9, close) >= 0:
            return None     # nested: the cut would not parse anyway; no use trying
        pos, end = start + 9, close + 10
    else:
        return None         # attributes on <devices>, or another tag: not libvirt's form
    if end - start < MIN_CUT:
        return None
    # No comment, CDATA section or processing instruction inside (any '!' or '?'
    # there: one memchr each): the first '</devices>' then ends the element.  Before
    # it they need no search: a placeholder inside one is no element of the root.
    if text.find("!", start, end) >= 0 or text.find("?", start, end) >= 0:
        return None
    body = pos
    while keep:
        lt = text.find("<", pos, close)
        if lt < 0 or not text[pos:lt].isspace() and lt > pos:
            break
        gt = text.find(">", lt, close)
        if gt < 0:
            return None
        words = text[lt + 1:gt].rstrip("/").split(None, 1)
        tag = words[0] if words else ""
        if tag not in keep:
            break
        if text[gt - 1] == "/":
            pos = gt + 1
        else:
            etag = text.find("</" + tag + ">", gt, close)
            if etag < 0 or text.find("<", gt, etag + 1) != etag:
                return None     # not text-only
            pos = etag + len(tag) + 3
    for tag in keep:
        if text.find("<" + tag, pos, close) >= 0:
            return None         # a wanted child after other devices: not cut
    return (text[:start] + "<devices " + _MARK + "=''>" + text[body:pos] + "</devices>"
            + text[end:])


def parse_without_devices(text: str, keep: frozenset[str] = frozenset()) -> Any:
    """The ``<domain>`` element of `text`, its ``<devices>`` holding only the leading
    children of tags `keep` when the cut is exact (:func:`cut_devices`), else whole."""
    cut = cut_devices(text, keep)
    if cut is not None:
        try:
            root = parse_xml(cut)
        except etree.XMLSyntaxError:
            return parse_xml(text)      # the whole text decides (and raises as before)
        # The first <devices> child, as find() answers, without ElementPath (some 5 us).
        dev = next(root.iterchildren("devices"), None)
        if dev is not None and dev.get(_MARK) is not None:
            del dev.attrib[_MARK]
            return root
    return parse_xml(text)


def facts_parser(table: Mapping[str, Field], names: Iterable[str]
                 ) -> Optional[Callable[[str], Any]]:
    """A parser for reading the fields `names` of `table` without the devices they do
    not read; None if they read devices beyond known text-only children (parse all)."""
    keep = devices_needed(table, names)
    if keep is None:
        return None
    return lambda text: parse_without_devices(text, keep)
