"""Mapping tables between CIM properties and domain XML, shared by reads and writes.

One table per settings class maps a CIM property name to a :class:`Field`:
the VSSD's is here, each RASD kind's is in its kind module
(:mod:`kvm_providers.model.kinds`).  A field knows where its value lives in
the XML, relative to the element the table is applied to (the ``<domain>``
root for the VSSD, processor and memory; the device element for the other
RASDs), and converts both ways:

``field.read(element, ctx)``
    the value for the CIM instance (plain Python: str, int, bool, list), or
    None when the XML does not say;
``field.write(element, value, ctx)``
    change the XML *in place* so that reading gives `value` (None removes
    the attribute / element the field owns).  Only what the field owns is
    touched: unknown attributes, child elements and siblings survive.
    Fields that cannot be written (constants, values computed from outside
    the XML, keys) raise :class:`NotWritable`.

:func:`read_props` and :func:`apply_props` run a whole table.  Issue 4
(DefineSystem, Add/ModifyResourceSettings, ModifySystemSettings) builds its
writes on :func:`apply_props`: fetch the domain's persistent XML, apply the
client's properties to the element, define the result.

Paths are ElementPath steps (``'target'``, ``'driver'``, ``'os/type'``);
``''`` is the element itself.
"""

from __future__ import annotations

import abc

from typing import Any, Callable, Iterable, Mapping, Optional

from lxml import etree

from .errors import VirtError
from .units import libvirt_unit_bytes

__all__ = ["View", "Field", "Reader", "Attr", "Text", "Exists", "AttrList", "AttrNames", "Enum",
           "OneItemList",
           "Const", "Computed",
           "MemoryKiB", "NotWritable", "read_props", "apply_props", "Table", "ensure_path",
           "to_int"]


class NotWritable(VirtError, ValueError):
    """A property that the mapping cannot write (constant, computed, or key)."""

    reason = "invalid-setting"


Table = Mapping[str, "Field"]


def _find(el: Any, path: str) -> Any:
    return el if not path else el.find(path)


#: Not in a View's index (a step path not resolved yet, or a tag the element has not).
_UNSEEN: Any = object()


class View:
    """An element seen through a cache of its children, for fast reads.

    Reading a table runs a dozen ``find`` calls on the same element; lxml's
    ``find`` goes through ElementPath every time.  A View indexes the
    element's children by tag once and answers the subset of the element
    API that the fields and computed values use (``find``, ``findtext``,
    ``iterfind``, ``get``, ``tag``, ``attrib``, iteration).  Fields accept a
    View or a plain element alike; writes always take the plain element.
    """

    __slots__ = ("el", "tag", "get", "_kids", "_subs")

    def __init__(self, el: Any):
        self.el = el
        self.tag = el.tag
        #: ``get(name, default=None)``: the element's own (C) method, no Python call
        #: between (issue 16: attribute reads are most of a table read).
        self.get: Callable[..., Any] = el.get
        self._kids: Optional[dict] = None
        self._subs: Optional[dict] = None

    def _index(self) -> dict:
        kids: dict = {}
        setdefault = kids.setdefault
        # Elements only (lxml filters comments and processing instructions in C); the
        # first child of each tag, as find() answers.
        for child in self.el.iterchildren(etree.Element):
            setdefault(child.tag, child)
        self._kids = kids
        return kids

    def _sub(self, tag: str) -> Optional["View"]:
        subs = self._subs
        if subs is None:
            subs = self._subs = {}
        elif tag in subs:
            return subs[tag]
        kids = self._kids if self._kids is not None else self._index()
        child = kids.get(tag)
        view = subs[tag] = None if child is None else View(child)
        return view

    def children(self) -> dict:
        """{tag: first child element of that tag} (elements only), indexed once: for a
        single tag, ``children().get(tag)`` is ``find(tag)`` without the call (compiled
        table writers look several tags up per device; issue 16).  Not to be changed."""
        kids = self._kids
        return kids if kids is not None else self._index()

    def child(self, tag: str) -> Any:
        """``find(tag)`` of a single tag without indexing the children: from the index if
        there is one, else the element's first child of that tag (``iterchildren``, no
        ElementPath) - for a lookup that may be the only one (a scan's ``<devices>``)."""
        kids = self._kids
        if kids is not None:
            return kids.get(tag)
        return next(self.el.iterchildren(tag), None)

    def find(self, path: str) -> Any:
        kids = self._kids if self._kids is not None else self._index()
        node = kids.get(path, _UNSEEN)
        if node is not _UNSEEN:
            return node
        if "/" not in path:
            return None
        # A path of several steps, resolved once per View and kept with the children (a
        # tag has no "/"): a table reads os/type, devices/emulator ... several times.
        view: View = self
        steps = path.split("/")
        node = None
        for step in steps[:-1]:
            sub = view._sub(step)
            if sub is None:
                break
            view = sub
        else:
            # The last step on the element itself unless its children are indexed already:
            # devices/emulator must not index every device (lxml makes an object per child).
            last = steps[-1]
            node = view._kids.get(last) if view._kids is not None else \
                next(view.el.iterchildren(last), None)
        kids[path] = node
        return node

    def findtext(self, path: str, default: Any = None) -> Any:
        node = self.find(path)
        return default if node is None else (node.text or "")

    def iterfind(self, path: str):
        return self.el.iterfind(path)

    @property
    def attrib(self):
        return self.el.attrib

    @property
    def text(self):
        return self.el.text

    def __iter__(self):
        return iter(self.el)


def ensure_path(el: Any, path: str) -> Any:
    """The element at `path` below `el`, created (appended) step by step if missing."""
    if not path:
        return el
    cur = el
    for step in path.split("/"):
        nxt = cur.find(step)
        if nxt is None:
            nxt = etree.SubElement(cur, step)
        cur = nxt
    return cur


def _prune(el: Any, path: str, stop: Any) -> None:
    """Remove the element at `path` and its now empty ancestors up to `stop`."""
    node = _find(stop, path)
    while node is not None and node is not stop and len(node) == 0 and not node.attrib \
            and not (node.text or "").strip():
        parent = node.getparent()
        parent.remove(node)
        node = parent


def _int(text: Optional[str]) -> Optional[int]:
    if text is None:
        return None
    try:
        return int(text.strip(), 0)
    except ValueError:
        return None


#: Public name of the tolerant int parser (the kinds' fields use it).
to_int = _int


def _bool_onoff(text: Optional[str]) -> Optional[bool]:
    if text is None:
        return None
    t = text.strip().lower()
    if t in ("on", "yes", "true", "1"):
        return True
    if t in ("off", "no", "false", "0"):
        return False
    return None


CONVERTERS: dict[str, tuple[Callable[[Optional[str]], Any], Callable[[Any], str]]] = {
    "str": (lambda t: t, str),
    "int": (_int, lambda v: str(int(v))),
    "onoff": (_bool_onoff, lambda v: "on" if v else "off"),
}


class Field(abc.ABC):
    """A CIM property's place in the XML."""

    writable = True

    @abc.abstractmethod
    def read(self, el: Any, ctx: Any = None) -> Any:
        """The property's value read from element `el` (plain Python value or None)."""

    def write(self, el: Any, value: Any, ctx: Any = None) -> None:
        raise NotWritable(f"{type(self).__name__} cannot be written")

    def reader(self) -> Reader:
        """A function ``(element, ctx) -> value`` that reads what :meth:`read` reads, as
        cheaply as the field allows (its path and conversion resolved once, no call
        through the field): what the table reads of a whole enumeration run (issue 16).
        A subclass overriding :meth:`read` gets its read unless it specialises this too."""
        return self.read

    def inline(self) -> Optional[tuple]:
        """How a caller compiling a whole table's read into one function may read this
        field in place, without a call (issue 16: the call per field was a good part of
        a RASD's table read): ``("attr", path, attribute, converter or None, default)``
        for a value read as :class:`Attr` reads it, ``("exists", path)`` as
        :class:`Exists` does, ``("attrnames" | "attrvalues", path)`` as
        :class:`AttrNames` does, ``("oneitem", inner)`` as :class:`OneItemList` does (the
        value of the row of field `inner`, if read before); None (the default): call
        :meth:`reader`.  A subclass
        overriding :meth:`read` is read through its reader."""
        return None


#: A field's compiled read (:meth:`Field.reader`): (element or View, ctx) -> value.
Reader = Callable[[Any, Any], Any]

_STR = CONVERTERS["str"][0]


def _own(field: Field, cls: type[Field]) -> bool:
    """True if `field` reads as `cls` does (no subclass overriding read): only then may a
    specialised reader of `cls` stand for its read."""
    return type(field).read is cls.read


class Attr(Field):
    """An attribute of the element at `path`."""

    __slots__ = ("path", "attr", "_from", "_to", "default")

    def __init__(self, path: str, attr: str, conv: str = "str", default: Any = None):
        self.path, self.attr = path, attr
        self._from, self._to = CONVERTERS[conv]
        self.default = default

    def read(self, el, ctx=None):
        node = _find(el, self.path)
        if node is None:
            return self.default
        value = node.get(self.attr)
        return self.default if value is None else self._from(value)

    def reader(self) -> Reader:
        if not _own(self, Attr):
            return self.read
        path, attr, default = self.path, self.attr, self.default
        conv = None if self._from is _STR else self._from
        if not path:
            if conv is None and default is None:
                def own_plain(el, ctx=None):
                    return el.get(attr)
                return own_plain

            def own(el, ctx=None):
                value = el.get(attr)
                return default if value is None else (value if conv is None else conv(value))
            return own
        if conv is None and default is None:
            def below_plain(el, ctx=None):
                node = el.find(path)
                return None if node is None else node.get(attr)
            return below_plain

        def below(el, ctx=None):
            node = el.find(path)
            if node is None:
                return default
            value = node.get(attr)
            return default if value is None else (value if conv is None else conv(value))
        return below

    def inline(self) -> Optional[tuple]:
        if not _own(self, Attr):
            return None
        return ("attr", self.path, self.attr, None if self._from is _STR else self._from,
                self.default)

    def write(self, el, value, ctx=None):
        if value is None:
            node = _find(el, self.path)
            if node is not None and self.attr in node.attrib:
                del node.attrib[self.attr]
                if self.path:
                    _prune(el, self.path, el)
            return
        ensure_path(el, self.path).set(self.attr, self._to(value))


class Text(Field):
    """The text of the element at `path`."""

    __slots__ = ("path", "_from", "_to")

    def __init__(self, path: str, conv: str = "str"):
        self.path = path
        self._from, self._to = CONVERTERS[conv]

    def read(self, el, ctx=None):
        node = _find(el, self.path)
        if node is None or node.text is None:
            return None
        return self._from(node.text.strip())

    def reader(self) -> Reader:
        if not _own(self, Text) or not self.path:
            return self.read
        path, conv = self.path, self._from

        def text(el, ctx=None):
            node = el.find(path)
            if node is None:
                return None
            t = node.text
            return None if t is None else conv(t.strip())
        return text

    def write(self, el, value, ctx=None):
        if value is None:
            node = _find(el, self.path)
            if node is not None and node is not el:
                node.getparent().remove(node)
            return
        ensure_path(el, self.path).text = self._to(value)


class TextList(Field):
    """The text of `path` as a one-element list (CIM arrays such as VSSD.Notes)."""

    __slots__ = ("inner",)

    def __init__(self, path: str):
        self.inner = Text(path)

    def read(self, el, ctx=None):
        value = self.inner.read(el, ctx)
        return None if value is None else [value]

    def write(self, el, value, ctx=None):
        if value is not None and not isinstance(value, str):
            value = "\n".join(str(v) for v in value if v is not None) if value else None
        self.inner.write(el, value, ctx)


class OneItemList(Field):
    """The value of another field of the table, `inner`, as a one-item list; None when
    that value is None or empty (HostResource: ``[Address]``, Connection:
    ``[NetworkName]``).  Read-only.

    A field of its own, not a Computed function reading `inner` again, so that a
    compiled table read takes the value `inner`'s row read (:meth:`inline`; issue 16,
    stop 24: the disk's source was read twice per disk)."""

    __slots__ = ("inner",)
    writable = False

    def __init__(self, inner: Field):
        self.inner = inner

    def read(self, el, ctx=None):
        value = self.inner.read(el, ctx)
        return [value] if value else None

    def reader(self) -> Reader:
        if not _own(self, OneItemList):
            return self.read
        inner = self.inner.reader()

        def one_item(el, ctx=None):
            value = inner(el, ctx)
            return [value] if value else None
        return one_item

    def inline(self) -> Optional[tuple]:
        return ("oneitem", self.inner) if _own(self, OneItemList) else None

    def write(self, el, value, ctx=None):
        raise NotWritable("computed property")


class Exists(Field):
    """True if the element at `path` exists (e.g. ``<readonly/>``, ``features/acpi``)."""

    __slots__ = ("path",)

    def __init__(self, path: str):
        self.path = path

    def read(self, el, ctx=None):
        return el.find(self.path) is not None

    def reader(self) -> Reader:
        if not _own(self, Exists):
            return self.read
        path = self.path

        def exists(el, ctx=None):
            return el.find(path) is not None
        return exists

    def inline(self) -> Optional[tuple]:
        return ("exists", self.path) if _own(self, Exists) and self.path else None

    def write(self, el, value, ctx=None):
        node = el.find(self.path)
        if value and node is None:
            ensure_path(el, self.path)
        elif not value and node is not None:
            node.getparent().remove(node)


class AttrList(Field):
    """An attribute of every element matching `path` (``os/boot`` -> ['hd', 'cdrom'])."""

    __slots__ = ("path", "attr", "parent", "tag")

    def __init__(self, path: str, attr: str):
        self.path, self.attr = path, attr
        self.parent, _, self.tag = path.rpartition("/")

    def read(self, el, ctx=None):
        values = [n.get(self.attr) for n in el.iterfind(self.path)]
        values = [v for v in values if v is not None]
        return values or None

    def reader(self) -> Reader:
        steps = self.path.split("/")
        if not _own(self, AttrList) or len(steps) != 2 \
                or not all(s.replace("-", "_").isidentifier() for s in steps):
            return self.read
        # parent/tag: the children lxml's iterchildren filters in C, as iterfind selects
        # them (every parent, in order), without ElementPath (issue 16: 5 us a read).
        ptag, tag, attr = steps[0], steps[1], self.attr

        def attrs(el, ctx=None):
            node = el.el if type(el) is View else el
            values = [v for p in node.iterchildren(ptag) for n in p.iterchildren(tag)
                      if (v := n.get(attr)) is not None]
            return values or None
        return attrs

    def write(self, el, value, ctx=None):
        parent = _find(el, self.parent)
        old = list(el.iterfind(self.path))
        if not value:
            for n in old:
                n.getparent().remove(n)
            return
        parent = ensure_path(el, self.parent)
        # Reuse existing elements in order (keeping their other attributes),
        # insert new ones after the last existing one, drop the surplus.
        anchor = old[-1] if old else None
        for i, v in enumerate(value):
            if i < len(old):
                old[i].set(self.attr, str(v))
            else:
                node = etree.Element(self.tag)
                node.set(self.attr, str(v))
                if anchor is not None:
                    anchor.addnext(node)
                else:
                    parent.append(node)
                anchor = node
        for n in old[len(value):]:
            n.getparent().remove(n)


class Enum(Field):
    """A field whose XML words map to CIM values (``'cdrom'`` <-> 1)."""

    __slots__ = ("inner", "table", "reverse", "default", "missing")

    def __init__(self, inner: Field, table: Mapping[str, Any], default: Any = None,
                 missing: Any = None, reverse: Optional[Mapping[Any, str]] = None):
        self.inner, self.table = inner, dict(table)
        self.default, self.missing = default, missing
        rev: dict[Any, str] = {}
        for k, v in self.table.items():
            rev.setdefault(v, k)
        self.reverse = dict(reverse) if reverse is not None else rev

    def read(self, el, ctx=None):
        word = self.inner.read(el, ctx)
        if word is None:
            return self.missing
        return self.table.get(word, self.default)

    def reader(self) -> Reader:
        if not _own(self, Enum):
            return self.read
        inner, get = self.inner.reader(), self.table.get
        default, missing = self.default, self.missing

        def enum(el, ctx=None):
            word = inner(el, ctx)
            return missing if word is None else get(word, default)
        return enum

    def write(self, el, value, ctx=None):
        if value is None:
            if self.default is None:
                word = self.inner.read(el, ctx)
                if word is not None and word not in self.table:
                    # A word the table does not know reads as None: writing back what
                    # was read must keep it (a console of type spiceport stays one).
                    return
            self.inner.write(el, None, ctx)
            return
        try:
            word = self.reverse[value]
        except KeyError:
            raise ValueError(f"value {value!r} has no XML equivalent "
                             f"(valid: {sorted(self.reverse)})") from None
        self.inner.write(el, word, ctx)


class Const(Field):
    """A constant of the class (ResourceType, AllocationUnits ...)."""

    writable = False
    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def read(self, el, ctx=None):
        return self.value

    def reader(self) -> Reader:
        if not _own(self, Const):
            return self.read
        value = self.value

        def const(el, ctx=None):
            return value
        return const

    def write(self, el, value, ctx=None):
        if value is not None and value != self.value:
            raise NotWritable(f"constant {self.value!r} cannot be changed to {value!r}")


class Computed(Field):
    """A value computed by a function of (element, ctx); writable only with a writer."""

    __slots__ = ("func", "writer", "reads")

    def __init__(self, func: Callable[[Any, Any], Any],
                 writer: Optional[Callable[[Any, Any, Any], None]] = None,
                 reads: Optional[tuple[str, ...]] = None):
        # reads: the paths below the element func reads (None: unknown - anything).
        self.func, self.writer, self.reads = func, writer, reads
        self.writable = writer is not None

    def read(self, el, ctx=None):
        return self.func(el, ctx)

    def reader(self) -> Reader:
        # The function itself: it takes (element, ctx) as the readers do.
        return self.func if _own(self, Computed) else self.read

    def write(self, el, value, ctx=None):
        if self.writer is None:
            raise NotWritable("computed property")
        self.writer(el, value, ctx)


class AttrNames(Field):
    """The attribute names (`values`: the values) of the element at `path` in document
    order, as a list; None without that element or without attributes (a device's
    ``<address>``: AddressProperties, AddressValues).  Read-only.

    A field of its own, not a Computed function, so that a compiled table read takes it
    in place (:meth:`inline`; issue 16, stop 22)."""

    __slots__ = ("path", "values")
    writable = False

    def __init__(self, path: str, values: bool = False):
        self.path, self.values = path, values

    def read(self, el, ctx=None):
        node = _find(el, self.path)
        if node is None:
            return None
        # The element's own lists (lxml: attrib.keys() / .values() alike, no proxy).
        return (node.values() if self.values else node.keys()) or None

    def inline(self) -> Optional[tuple]:
        return (("attrvalues" if self.values else "attrnames"), self.path) \
            if _own(self, AttrNames) and self.path else None

    def write(self, el, value, ctx=None):
        raise NotWritable("computed property")


#: {(text, unit attribute): KiB} of the memory elements read, at most _KIB_KEPT of them.
_KIB_OF: dict[tuple[str, Optional[str]], Optional[int]] = {}
_KIB_KEPT = 512


class MemoryKiB(Field):
    """A libvirt memory element (``<memory unit='MiB'>512</memory>``) in KiB."""

    __slots__ = ("path",)

    def __init__(self, path: str):
        self.path = path

    def read(self, el, ctx=None):
        node = el.find(self.path)
        if node is None:
            return None
        text = node.text
        if text is None:
            return None
        # The size of each (text, unit) remembered (issue 16, stop 23: three sizes per
        # guest, a handful of distinct ones on a host; the int and unit parses were half
        # of a memory RASD's write).
        key = (text, node.get("unit"))
        kib = _KIB_OF.get(key, _UNSEEN)
        if kib is _UNSEEN:
            n = _int(text)
            kib = None if n is None else n * (libvirt_unit_bytes(key[1]) or 1024) // 1024
            if len(_KIB_OF) < _KIB_KEPT:
                _KIB_OF[key] = kib
        return kib

    def write(self, el, value, ctx=None):
        if value is None:
            Text(self.path).write(el, None)
            return
        node = ensure_path(el, self.path)
        node.text = str(int(value))
        node.set("unit", "KiB")


def read_props(table: Table, el: Any, names: Iterable[str], ctx: Any = None
               ) -> dict[str, Any]:
    """{property: value} for the `names` (case as in the table) that the table maps."""
    out = {}
    for name in names:
        f = table.get(name)
        if f is not None:
            out[name] = f.read(el, ctx)
    return out


def apply_props(table: Table, el: Any, props: Mapping[str, Any], ctx: Any = None,
                skip_unwritable: bool = True) -> list[str]:
    """Write `props` into `el` in place; returns the names that were written.

    Properties the table does not map are ignored.  Non-writable ones are
    skipped when their value equals what the XML already says (clients send
    whole instances back), else NotWritable is raised naming the property
    (unless `skip_unwritable` is true, then they are skipped).
    """
    lower = {k.lower(): k for k in table}
    written = []
    for name, value in props.items():
        key = lower.get(name.lower())
        if key is None:
            continue
        f = table[key]
        if not f.writable:
            if skip_unwritable:
                continue
            current = f.read(el, ctx)
            if value is not None and value != current:
                raise NotWritable(f"property {key} cannot be changed")
            continue
        try:
            f.write(el, value, ctx)
        except NotWritable as exc:
            raise NotWritable(f"property {key}: {exc}") from None
        written.append(key)
    return written
