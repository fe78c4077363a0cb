"""Enumerations written straight to CIM-XML, without an object per instance (issue 16).

An enumeration of thousands of instances through instance models costs a model
copy, a path copy and the interface's finish (namespace, filter, completion) per
instance before the CIM-XML writer sees it.  A provider that can say, per
instance, which values its properties have (a mapping table read from an
element, a few computed values) writes the response items directly instead,
through a :class:`DirectPlan`: compiled once per class, PropertyList and
IncludeClassOrigin, it turns each value into its property's text with the
models' conversion and ValueMap check (:func:`.model.setters_of`) and the
writer's formatting (:func:`kvm_providers.cimxml.writer.values_plan`), so
the text is the one the model path writes for the same instance, byte for
byte: every wanted property (keys included), in the order set, then the unset
ones in declaration order with their class default, else NULL.

Providers offer it through ``CIMProvider2.enum_direct``; the embedded server
asks for it (``ProviderProxy.MI_enumInstancesXml``) for EnumerateInstances and
OpenEnumerateInstances and falls back to the models where a provider has no
direct path.  The CMPI adapter asks for it too, with a subclass whose output is
CMPI instances instead of text (:mod:`kvm_providers.cmpi.direct`): each value is
converted and checked here, by the one implementation; only what a checked
value becomes differs (``_text_of``, ``_property_of``, ``_key_text``,
``_name_of`` and :meth:`DirectPlan.instance_xml`).  Everything else
(GetInstance, methods, associations) uses the models.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from pywbem import CIMProperty

from ..cimxml import writer as W
from ..schema import ClassSpec, Schema
from .model import check_values, setters_of, wanted_set
from .values import INT_TYPES

__all__ = ["DirectPlan"]


def _raw_types(pspec: Any, exact: Optional[type]) -> Optional[tuple[type, ...]]:
    """The types of raw values whose text may be remembered per value for `pspec`: those
    whose equal values convert to equal texts and which no other type equal to them
    would convert differently (True == 1, but a uint16 refuses True)."""
    if pspec.is_array or pspec.embedded_object or exact is None:
        return None
    if pspec.type == "string":
        return (str,)
    if pspec.type == "boolean":
        return (bool,)
    if pspec.type in INT_TYPES:
        return (int, exact)
    return None


class DirectPlan:
    """How the instances of one class are written for one PropertyList and
    IncludeClassOrigin: per instance, a dict {folded name: property text} filled in
    the order the model path would set the values, then :meth:`instance_xml`.

    Get one with :meth:`of` (cached in the class spec).  :attr:`spec` and
    :attr:`wanted` are those of the model of the same request, so helpers that plan
    their work per model (``wanted_in``) plan it alike for a DirectPlan.
    """

    __slots__ = ("spec", "classname", "wanted", "memo", "_rows", "_unset", "_rest", "_head",
                 "_name_head", "_keys", "_origin", "_one_key", "_text_of")

    #: Whether the plan's texts are CIM-XML text (callers may then compile writers that
    #: join them, as providers.common.instances.table_instance_xml does); a subclass
    #: whose "texts" are values (cmpi.direct.CMPIPlan) says False.
    writes_text = True

    def __init__(self, spec: ClassSpec, wanted: frozenset[str], origin: bool):
        self.spec = spec
        self.classname = spec.name
        self.wanted = wanted
        #: What callers compile per plan (a mapping table's readers and texts ...).
        self.memo: dict[Any, Any] = {}
        self._origin = origin
        #: What a converted, checked value (not None) becomes for a row of `values_plan`:
        #: its property text (an attribute, not a method: the innermost call of the path).
        self._text_of: Any = W.property_text
        rows, self._unset, self._rest = W.values_plan(spec, wanted, True, origin)
        setters = setters_of(spec)
        self._rows: dict[str, tuple] = {}
        for lk, row in rows.items():
            pspec, conv, exact, allowed = setters[lk]
            raw = _raw_types(pspec, exact)
            # A string array's text remembered by the tuple of its strings (AddressValues,
            # HostResource ...: the same lists recur from guest to guest, and a list
            # costs a conversion, a check and a text per item).
            lists: Optional[dict] = {} if pspec.is_array and pspec.type == "string" and \
                not pspec.embedded_object else None
            self._rows[lk] = (row, pspec, conv, exact, allowed, raw, {} if raw else None,
                              lists)
        self._head = W.instance_head(spec.name)
        self._name_head = W.instancename_head(spec.name)
        self._keys = tuple((k.casefold(), spec.props[k.casefold()]) for k in spec.key_names)
        #: (folded name, the property text before and after the escaped value, the
        #: INSTANCENAME's text before and after it) of a class whose one key is a string
        #: property without a ValueMap, for the short way of keyed(); else None.
        self._one_key: Optional[tuple[str, str, str, str, str]] = None
        if len(self._keys) == 1:
            lk, pspec = self._keys[0]
            row = self._rows.get(lk)
            if row is not None and pspec.type == "string" and not pspec.is_array and \
                    not pspec.embedded_object and row[4] is None and row[3] is str:
                self._one_key = self._split_key(lk, row[0], pspec.name)

    def _split_key(self, lk: str, row: tuple, name: str
                   ) -> Optional[tuple[str, str, str, str, str]]:
        """keyed()'s short way for the one string key `name`: the writer's property text
        and key binding of a value are each a fixed text around the value's escaped text
        (``W.esc``), found here by writing a plain marker; None if they are not."""
        mark = "Kvm0Key0Mark"
        prop = W.property_text((row[0], row[1], row[2], None), mark)
        inst = self._name_head + W.keybinding_xml(name, mark) + "</INSTANCENAME>"
        if prop.count(mark) != 1 or inst.count(mark) != 1:
            return None
        (p0, _m, p1), (n0, _m, n1) = prop.partition(mark), inst.partition(mark)
        return lk, p0, p1, n0, n1

    @classmethod
    def of(cls, schema: Schema, namespace: str, classname: str,
           property_list: Optional[Iterable[str]], origin: bool = False) -> "DirectPlan":
        """The plan of `classname` in `namespace` for a request's PropertyList (None:
        every property) and IncludeClassOrigin."""
        spec = schema.spec(namespace, classname)
        wanted = wanted_set(spec, property_list, False)
        key = ("direct", cls, wanted, bool(origin))
        plan = spec._cache.get(key)
        if plan is None:
            plan = spec._cache[key] = cls(spec, wanted, bool(origin))
        return plan

    def text(self, lk: str, value: Any) -> str:
        """The property text of `value` (not None) for wanted property `lk` (folded),
        converted and checked as ``model[name] = value`` converts and checks it."""
        row, pspec, conv, exact, allowed, raw, texts, lists = self._rows[lk]
        key: Any = value
        if texts is not None and type(value) in raw:
            text = texts.get(value)
            if text is not None:
                return text
        elif lists is not None and type(value) is list:
            key = tuple(value)
            try:
                text = lists.get(key)
            except TypeError:           # an unhashable item
                text = texts = None
            else:
                if text is not None:    # items equal to the strs of a list met before
                    return text
                # Only lists of str are remembered: equal tuples of them have equal
                # texts, unlike [1] == [True].
                texts = lists if all(type(x) is str for x in key) else None
        else:
            texts = None
        typed = value
        if type(value) is not exact:
            if isinstance(value, CIMProperty):
                # A provider's own property object (the model keeps it as given).
                if allowed is not None and value.value is not None:
                    check_values(self.classname, pspec.name, pspec.values, pspec.is_array,
                                 value.value)
                return self._property_of(value)
            try:
                typed = conv(value)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{self.classname}.{pspec.name}: {exc}") from None
        if allowed is not None and (pspec.is_array or typed not in allowed):
            check_values(self.classname, pspec.name, pspec.values, pspec.is_array, typed)
        if lists is not None and self._text_of is W.property_text:
            # What property_text writes of a list, without its failed memo lookup (a
            # caught TypeError per new HostResource, stop 22).
            text = row[0] + row[2](typed) + row[1]
        else:
            text = self._text_of(row, typed)
        # Remembered by the raw value once it converted and passed the check (a value
        # refused under KVM_PROVIDERS_STRICT_MODELS never gets here).
        if texts is not None and len(texts) < W.TEXTS_PER_PROPERTY:
            texts[key] = text
        return text

    def _property_of(self, prop: CIMProperty) -> Any:
        """The property text of a provider's own CIMProperty (checked)."""
        return W.property_xml(prop, self._origins() if self._origin else None)

    def _key_text(self, row: tuple, typed: Any) -> Any:
        """The property text of a converted, checked key value (None: NULL)."""
        return row[0] + row[1] if typed is None else W.property_text(row, typed)

    def _name_of(self, keys: list[tuple[str, Any]]) -> Any:
        """The instance's name from its keys [(name, converted value)] in key order."""
        return "".join([self._name_head, *(W.keybinding_xml(n, v) for n, v in keys),
                        "</INSTANCENAME>"])

    def remembered(self, lk: str) -> tuple[Optional[tuple[type, ...]], Optional[dict]]:
        """(the raw value types whose texts :meth:`text` remembers for wanted property
        `lk`, {raw value: text}) - (None, None) if it remembers none: for callers that
        look a text up before calling :meth:`text` (the table writer's inner loop).
        A value found there converted and passed the ValueMap check before."""
        row = self._rows[lk]
        return row[5], row[6]

    def unchecked(self, lk: str) -> bool:
        """True if a value of wanted property `lk` (folded) meets no ValueMap check and its
        text is the writer's property text: a scalar, not an embedded object."""
        row, pspec, _conv, exact, allowed, _raw, _texts, _lists = self._rows[lk]
        return allowed is None and exact is not None and self._text_of is W.property_text

    def string_row(self, lk: str) -> Optional[tuple[str, Any, str, int]]:
        """(start tag, formatter, end tag, how many texts :meth:`text` remembers) of wanted
        property `lk` when it is a plain string (no ValueMap, a scalar, no embedded
        object): :meth:`text` of a ``str`` value ``v`` is then ``start + formatter(v) +
        end`` (the writer's property text), for callers writing it in place (the compiled
        table writers); else None."""
        if not self.unchecked(lk) or self._rows[lk][3] is not str:
            return None
        start, end, fmt, _texts = self._rows[lk][0]
        return start, fmt, end, W.TEXTS_PER_PROPERTY

    def string_array_row(self, lk: str) -> Optional[tuple[str, str]]:
        """(the text before the items, the text after them) of wanted property `lk` when it
        is a string array (no ValueMap, not embedded objects) whose text is the writer's:
        :meth:`text` of a ``list`` of ``str`` ``v`` is then ``before + "".join("<VALUE>" +
        W.esc(x) + "</VALUE>" for x in v) + after``, for callers writing it in place (the
        compiled table writers: HostResource, Connection, AddressValues ... are new lists
        per instance, a text() call each); else None."""
        row, pspec, _conv, _exact, allowed, _raw, _texts, lists = self._rows[lk]
        if lists is None or allowed is not None or self._text_of is not W.property_text:
            return None
        start, end, _fmt, _texts = row
        return start + "<VALUE.ARRAY>", "</VALUE.ARRAY>" + end

    def _origins(self) -> dict[str, str]:
        return {lk: p.class_origin for lk, p in self.spec.props.items()}

    def put(self, texts: dict[str, str], lk: str, value: Any) -> None:
        """Set wanted property `lk` (folded) to `value` in `texts`; None leaves it unset."""
        if value is not None:
            texts[lk] = self.text(lk, value)

    def one_key(self) -> Optional[tuple[str, str, str, str]]:
        """(the key's property text before and after the escaped value, the INSTANCENAME
        before and after it) when the class has one string key without a ValueMap: then
        ``keyed(v)`` of a ``str`` v is ``{key: p0 + W.esc(v) + p1}, n0 + W.esc(v) + n1``
        (for callers writing the key in place: table_item_writer); else None."""
        one = self._one_key
        return None if one is None else one[1:]

    def keyed(self, *values: Any) -> tuple[dict[str, str], str]:
        """(texts with the key properties set to `values`, in key order; the
        INSTANCENAME of those keys): the start of every instance."""
        one = self._one_key
        if one is not None and len(values) == 1 and type(values[0]) is str:
            # The one string key with no ValueMap (the settings' InstanceID): what the
            # loop below makes of it, without the loop (a RASD's key was 2.5 us).
            # The value escaped once for both texts (stop 22).
            lk, p0, p1, n0, n1 = one
            value = W.esc(values[0])
            return {lk: p0 + value + p1}, n0 + value + n1
        return self.keyed_in_order(*((pspec.name, value) for (_lk, pspec), value
                                     in zip(self._keys, values, strict=True)))

    def keyed_in_order(self, *pairs: tuple[str, Any]) -> tuple[dict[str, str], str]:
        """:meth:`keyed` with the keys set in the order of `pairs` ((name, value), every
        key once), the INSTANCENAME's key bindings in that order too: for a class whose
        model path sets its keys in another order than the class declares them (the
        ComputerSystems: CreationClassName, then Name)."""
        texts: dict[str, str] = {}
        keys = []
        props = self.spec.props
        for name, value in pairs:
            lk = name.casefold()
            pspec = props.get(lk)
            if pspec is None or not pspec.is_key or lk in texts:
                raise ValueError(f"{self.classname}: {name!r} is not a key, or twice")
            row, _p, conv, exact, allowed, _raw, _texts, _lists = self._rows[lk]
            try:
                typed = value if value is None or type(value) is exact else conv(value)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{self.classname}.{pspec.name}: {exc}") from None
            if allowed is not None and typed is not None and typed not in allowed:
                check_values(self.classname, pspec.name, pspec.values, False, typed)
            texts[lk] = self._key_text(row, typed)
            keys.append((pspec.name, typed))
        if len(texts) != len(self._keys):
            raise ValueError(f"{self.classname}: keys {[n for n, _ in pairs]} given, "
                             f"{list(self.spec.key_names)} needed")
        return texts, self._name_of(keys)

    @property
    def head(self) -> str:
        """``<INSTANCE CLASSNAME="...">``: how each instance's text starts."""
        return self._head

    @property
    def key_names(self) -> tuple[str, ...]:
        """The folded names of the class's keys, which :meth:`keyed` sets."""
        return tuple(lk for lk, _p in self._keys)

    def rest_xml(self, names: Any) -> str:
        """The text of the wanted properties not among `names` (folded names set), as
        :meth:`instance_xml` completes an instance with them: class default, else NULL,
        in declaration order (for callers that cache it per set of names themselves)."""
        return "".join(t for lk, t in self._unset if lk not in names)

    def instance_xml(self, texts: dict[str, str]) -> str:
        """<INSTANCE> of the property texts set (in the order set), completed with the
        unset wanted properties (class default, else NULL) in declaration order."""
        return (self._head + "".join(texts.values())
                + W.unset_text(self._unset, self._rest, texts) + "</INSTANCE>")
