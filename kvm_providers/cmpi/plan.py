"""The conversion plan of a class: how the values of its instances are set on a CMPIInstance.

Made once per class, PropertyList, completeness and SWIG module (kept in the
class's cache) by :meth:`kvm_providers.cmpi.convert.Converter._plan`: each
property's name, CMPI type, the kind of value the fast cases set, and the typed
NULL; used for instance models and for the direct enumeration path alike.
"""

from __future__ import annotations

import functools
import operator
from typing import Any, Callable

import pywbem
from pywbem import (CIMInstance, CIMProperty, Sint8, Sint16, Sint32, Sint64, Uint8, Uint16,
                    Uint32, Uint64)

from ..schema import ClassSpec
from .chars import set_text, text_value

__all__ = ["INT_CLASSES", "InstancePlan", "set_array", "embeds_instance", "holds_instance",
           "as_bool"]

#: CIM integer type name -> its pywbem class.
INT_CLASSES: dict[str, type[int]] = {
    "uint8": Uint8, "uint16": Uint16, "uint32": Uint32, "uint64": Uint64,
    "sint8": Sint8, "sint16": Sint16, "sint32": Sint32, "sint64": Sint64}


class InstancePlan:
    """How to set the properties of the instance models of one class on a CMPIInstance
    (:meth:`Converter._set_values`), for one set of wanted properties.

    `rows`: {folded name: (name, kind, CMPIType, CMPIType of a NULL)} of every property
    of the class; kind is ``str`` (a string), ``bool``, the pywbem integer class, or
    None (set through :meth:`Converter.value`: arrays, reals, datetimes, references,
    embedded objects, char16).  `unset`: (folded name, class default) of the wanted
    properties in declaration order, for a complete instance (its unset properties
    stand for their class default, else NULL); none otherwise.
    """

    __slots__ = ("rows", "props", "attrs", "unset", "_rest", "wanted", "keys", "_updaters",
                 "classname", "str_arrays", "int_arrays")

    def __init__(self, conv: Any, spec: ClassSpec, wanted: frozenset, complete: bool):
        self.props = spec.props
        self.wanted = wanted
        self.classname: str = spec.name
        #: The folded names of the class's keys.
        self.keys: tuple[str, ...] = tuple(k.casefold() for k in spec.key_names)
        self.rows: dict[str, tuple] = {}
        self.attrs: dict[str, str] = {}
        #: {folded name: (array CMPIType, element CMPIType)} of the string arrays (not
        #: embedded objects): a list of str goes straight to Converter.string_array.
        self.str_arrays: dict[str, tuple[int, int]] = {}
        #: {folded name: (array CMPIType, element CMPIType, CMPIValue member, pywbem
        #: class)} of the integer arrays: a list of that class goes to _int_array.
        self.int_arrays: dict[str, tuple[int, int, str, type]] = {}
        for lk, p in spec.props.items():
            kind: Any = None
            if p.is_array and not p.embedded_object and p.type == "string":
                self.str_arrays[lk] = (conv.ctype("string", True), conv.ctype("string"))
            elif p.is_array and p.type in INT_CLASSES:
                self.int_arrays[lk] = (conv.ctype(p.type, True), conv.ctype(p.type), p.type,
                                       INT_CLASSES[p.type])
            if not p.is_array and not p.embedded_object:
                if p.type == "string":
                    kind = str
                elif p.type == "boolean":
                    kind = bool
                elif p.type in INT_CLASSES:
                    kind = INT_CLASSES[p.type]
                    self.attrs[lk] = p.type
            # A NULL of an EmbeddedInstance/EmbeddedObject property is a typed instance
            # NULL (Pegasus checks the CMPI type of every property against the class).
            null_type = "instance" if p.embedded_object else p.type
            self.rows[lk] = (p.name, kind,
                             conv.ctype(p.type) if kind is not None else None,
                             conv.ctype(null_type, p.is_array))
        self.unset: tuple[tuple[str, Any], ...] = tuple(
            (lk, p.default) for lk, p in spec.props.items() if lk in wanted) if complete else ()
        self._rest: dict[tuple, tuple] = {}
        self._updaters: dict[tuple[str, ...], Callable[..., Callable[..., int]]] = {}

    def rest(self, values: dict[str, Any], skip: frozenset) -> tuple[tuple[str, Any], ...]:
        """(folded name, class default) of the unset wanted properties to set on an
        instance whose assigned values are `values`: all but the NULLs named in `skip`
        (NULL in a new instance already).  The instances of a class mostly assign the
        same properties: worked out once per such set (up to 64 sets)."""
        key = (tuple(values), skip)
        hit = self._rest.get(key)
        if hit is None:
            hit = tuple((lk, default) for lk, default in self.unset
                        if lk not in values and not (default is None and lk in skip))
            if len(self._rest) < 64:
                self._rest[key] = hit
        return hit

    def updater(self, names: tuple[str, ...]) -> Callable[..., Callable[..., int]]:
        """The setter of the values that differ from a template's, compiled for the
        instances whose assigned values are named `names` (folded, in this order), to be
        bound to one converter: ``updater(names)(conv, set_property, store)`` is
        ``update(cinst, values, was) -> bytes left behind`` (in a sfcb instance by the
        values replaced: :func:`_left_behind`).  `conv`: the
        Converter (its CMPIValue, stand-in string, strings); `set_property`:
        ``set_property(cinst, name, value, type)``, the proxy's method unbound or the
        compiled function behind it (:func:`.templates.swig_function`); `values`: {name:
        value} with exactly these names in this order; `was`: the template's values (a
        list in the same order).  What ``Converter.set_pairs`` does for the pairs that
        differ (:func:`_same`) -- the same ``set_property`` calls with the same values,
        types and order -- in one pass with each property's name, CMPI type and kind
        compiled in (issue 10 item 12: the two loops were a third of the CMPI side of an
        enumeration's instances); what is the same for every instance of a call (the
        converter's CMPIValue and stand-in string) is looked up once, when bound (stop
        28).  `store`: keep each value set in `was` (sfcb's template, changed and
        returned again)."""
        fn = self._updaters.get(names)
        if fn is None:
            fn = _compile_updater(self, names)
            if len(self._updaters) < 64:
                self._updaters[names] = fn
        return fn


def _same(value: Any, old: Any) -> bool:
    """Whether `value` need not be set where `old` is: the same object, or an equal one
    of the same type (a property's values are converted to its type; Uint16(2) and
    Uint32(2), True and 1 stay apart by the type; a list element by element)."""
    if value is old:
        return True
    return type(value) is type(old) and value == old and \
        (type(value) is not list or all(type(x) is type(y) for x, y in zip(value, old, strict=True)))


def _string_array(conv: Any, items: list, base: int) -> Any:
    """The CMPIArray of `items` (every one a ``str``) of element type `base` (CMPI_string)
    made by the Converter `conv`: what ``Converter.value`` makes of a list of str for a
    string array property, through the same calls (a new string per element, the array
    holding it by reference), without its type dispatch per element (a disk's
    HostResource, a NIC's Address ...; issue 10 item 12, stop 25)."""
    car = conv.keep(conv.broker.new_array(len(items), base))
    ev = conv._eval
    if ev is None:
        ev = conv._eval = conv.cmpi.CMPIValue()
    new_string, keep, put = conv.broker.new_string, conv.arena.append, car.set
    for i, text in enumerate(items):
        string = new_string(text)
        keep(string)
        ev.string = string
        put(i, ev, base)
    return car


def _int_array(conv: Any, items: list, base: int, attr: str) -> Any:
    """The CMPIArray of `items` (every one of the pywbem integer class of element type
    `base`, range-checked by its class) made by the Converter `conv`: what
    ``Converter.value`` makes of such a list, through the same calls (the element set
    through one CMPIValue, which ``set`` copies), without its dispatch per element."""
    car = conv.keep(conv.broker.new_array(len(items), base))
    ev = conv._eval
    if ev is None:
        ev = conv._eval = conv.cmpi.CMPIValue()
    put = car.set
    for i, number in enumerate(items):
        setattr(ev, attr, int(number))
        put(i, ev, base)
    return car


def set_array(conv: Any, plan: InstancePlan, lk: str, value: Any, set_property: Any,
              cval: Any) -> bool:
    """Set array property `lk` of `plan` to `value` if :func:`_string_array` or
    :func:`_int_array` makes it (a list of str for a string array, a list of the
    property's pywbem integer class for an integer array): the calls
    ``Converter.value`` makes of it, the array in `cval` (the converter's CMPIValue,
    which ``set_property`` copies).  False: nothing set, ``Converter.value`` converts it
    (issue 10 item 12, stop 26: an instance model's arrays went through its generic
    dispatch per element, a third of a ComputerSystem's conversion in Pegasus' agent)."""
    if type(value) is not list:
        return False
    sa = plan.str_arrays.get(lk)
    if sa is not None:
        if not all(type(x) is str for x in value):
            return False
        cval.array = _string_array(conv, value, sa[1])
        set_property(plan.rows[lk][0], cval, sa[0])
        return True
    ia = plan.int_arrays.get(lk)
    if ia is None or not all(type(x) is ia[3] for x in value):
        return False
    cval.array = _int_array(conv, value, ia[1], ia[2])
    set_property(plan.rows[lk][0], cval, ia[0])
    return True


#: What a string costs in a sfcb instance beyond its characters: its NUL and its entry
#: (a ``long``) in the string buffer's index (objectImpl.c ``addClStringN``).
STRING_COST = 9
#: What an array element costs in a sfcb instance's array buffer (a ``CMPIData``).
ELEMENT_COST = 16
#: What an embedded instance left behind is taken to cost (sfcb keeps its serialized
#: copy, ``addClObject``; the providers' instances serialize to 2.3-3.7 KB, stop 30).
INSTANCE_COST = 4096


def _strings_bytes(items: list) -> int:
    """What the elements of a string array take in a sfcb instance's string buffer
    (characters, not UTF-8 bytes: an estimate, exact for the ASCII the providers write)."""
    return sum(map(len, items)) + STRING_COST * len(items)


def _left_behind(old: Any, new: Any) -> int:
    """The bytes a sfcb instance keeps, unreferenced, once value `old` of a property is
    replaced by `new` (what they add to every copy of it sfcb serializes; sfcb 1.3.18,
    objectImpl.c): a string array's elements stay in the string buffer
    (``replaceClArray`` compacts the array buffer only, ``addClArray`` adds every
    element again), an array set NULL stays in the array buffer as well, and a string
    (or a value kept as one: datetime, reference) set NULL stays in the string buffer
    (``addObjectPropertyH`` drops the reference only).  An array of numbers replaced by
    another leaves nothing (its elements are in the array buffer, compacted), nor does a
    string replaced by a string (``replaceClString`` compacts the string buffer).
    Values kept as strings are counted by their text, the safe side for the rest."""
    if type(old) is CIMProperty:
        old = old.value
    if type(new) is CIMProperty:
        new = new.value
    if old is None:
        return 0
    if type(old) is list:
        strings = [x if type(x) is str else str(x) for x in old
                   if x is not None and not isinstance(x, (int, float, bool, CIMInstance))]
        kept = _strings_bytes(strings) + INSTANCE_COST * sum(
            1 for x in old if isinstance(x, CIMInstance))
        return kept if new is not None else kept + ELEMENT_COST * (len(old) + 1)
    if new is not None or isinstance(old, (int, float, bool)):
        return 0
    if isinstance(old, CIMInstance):
        return INSTANCE_COST
    return len(old if type(old) is str else str(old)) + STRING_COST


def _compile_updater(plan: InstancePlan, names: tuple[str, ...]
                     ) -> Callable[..., Callable[..., int]]:
    """The code of :meth:`InstancePlan.updater` for `names` (see there): ``bind(conv,
    set_property, store)`` returning ``update(cinst, values, was)``, one Python frame
    per instance (stop 28: the converter's CMPIValue and stand-in string were looked up,
    and ``cinst.set_property`` bound, per instance)."""
    env: dict[str, Any] = {"_same": _same, "_string_array": _string_array, "_plan": plan,
                           "_text_value": text_value, "_set_text": set_text,
                           "_left_behind": _left_behind, "_strings_bytes": _strings_bytes,
                           "_EMPTY": frozenset(), "_is": operator.is_,
                           "_is_str": functools.partial(operator.is_, str),
                           "cinst_class": plan.classname, "_CIMProperty": CIMProperty}
    lines = ["def bind(conv, set_property, store):",
             "    cval = conv._cval",
             "    if cval is None:",
             "        cval = conv._cval = conv.cmpi.CMPIValue()",
             "    tv = point = tval = None"]
    if any(plan.rows[lk][1] is str for lk in names):
        # (made when first asked for, as set_text makes it: a template's values were
        # set through it already)
        lines += ["    tv = _text_value(conv)",
                  "    if tv:",
                  "        point, tval = tv.point, tv.value"]
    lines.append("    def update(cinst, values, was):")
    if not names:
        lines.append("        return 0")
    else:
        vs = [f"v{i}" for i in range(len(names))]
        lines += [f"        {', '.join(vs)}, = values.values()",
                  "        n = 0"]
    body: list[str] = []
    for i, lk in enumerate(names):
        name, kind, ctype, null_ctype = plan.rows[lk]
        v = f"v{i}"
        env[f"N{i}"], env[f"C{i}"], env[f"Z{i}"], env[f"K{i}"] = name, ctype, null_ctype, kind
        env[f"L{i}"] = lk
        # unchanged: the same object, or (scalars) an equal one of the same type
        body.append(f"    w = was[{i}]")
        if kind is None and lk in plan.str_arrays:
            # _same, without its frames (the function's and its generator's, per array
            # per instance): the element types compared by map() in C (equal lists are
            # of one length)
            body.append(f"    if {v} is not w and not (type({v}) is type(w) and {v} == w and "
                        f"(type({v}) is not list or all(map(_is, map(type, {v}), "
                        f"map(type, w))))):")
        elif kind is None:
            body.append(f"    if not _same({v}, w):")
        else:
            body.append(f"    if {v} is not w and not (type({v}) is type(w) and {v} == w):")
        body += [f"        if {v} is None:",
                  f"            set_property(cinst, N{i}, None, Z{i})"]
        if kind is str:
            # the text through the converter's stand-in CMPIString (.chars: nothing made
            # per value), else (no stand-in, a text SWIG refuses) as chars.set_text does
            body += [f"        elif type({v}) is str:",
                      "            data = None",
                      "            if tv:",
                      "                try:",
                      f"                    data = point({v})",
                      "                except UnicodeEncodeError:",
                      "                    pass",
                      "            if data is not None:",
                      f"                set_property(cinst, N{i}, tval, C{i})",
                      "            else:",
                      f"                _set_text(conv, cinst.set_property, N{i}, {v}, C{i})"]
        elif kind is bool:
            body += [f"        elif type({v}) is bool:",
                      f"            cval.boolean = 1 if {v} else 0",
                      f"            set_property(cinst, N{i}, cval, C{i})"]
        elif kind is not None:
            body += [f"        elif type({v}) is K{i}:",
                      f"            cval.{plan.attrs[lk]} = int({v})",
                      f"            set_property(cinst, N{i}, cval, C{i})"]
        elif lk in plan.str_arrays:
            # a list of str for a string array: the calls Converter.value makes of it
            env[f"A{i}"], env[f"E{i}"] = plan.str_arrays[lk]
            body += [f"        elif type({v}) is list and all(map(_is_str, map(type, {v}))):",
                      f"            cval.array = _string_array(conv, {v}, E{i})",
                      f"            set_property(cinst, N{i}, cval, A{i})"]
        # a provider's own CIMProperty: as set_pairs sets it; anything else (arrays,
        # reals, datetimes, references ...) through Converter.value, as set_pairs does
        env[f"P{i}"] = plan.props[lk]
        body += [f"        elif type({v}) is _CIMProperty:",
                  f"            conv.set_pairs(cinst, _plan, cinst_class, ((L{i}, {v}),), _EMPTY)",
                  "        else:",
                  f"            conv._set_generic(cinst.set_property, cinst_class, P{i}, {v}, cval)",
                  "        if store:",
                  f"            was[{i}] = {v}"]
        # the bytes the old value leaves in a sfcb instance (_left_behind)
        if kind is str:
            body += [f"        if {v} is None and w is not None:",
                     f"            n += len(w) + {STRING_COST}"]
        elif kind is None and lk in plan.str_arrays:
            # _left_behind(w, v), its common case without a call: a string array replaced
            # by a list of str (its old elements stay)
            body += [f"        if type(w) is list and type({v}) is list and "
                     "all(map(_is_str, map(type, w))):",
                     "            n += _strings_bytes(w)",
                     "        elif w is not None:",
                     f"            n += _left_behind(w, {v})"]
        elif kind is None and lk not in plan.int_arrays:
            # (a scalar replaced by a value leaves nothing: no call then)
            body += [f"        if w is not None and (type(w) is list or {v} is None or "
                     f"type({v}) is _CIMProperty or type(w) is _CIMProperty):",
                     f"            n += _left_behind(w, {v})"]
        elif kind is None:
            # a number array replaced by a list of numbers leaves nothing
            body += [f"        if w is not None and not (type(w) is list and type({v}) is list):",
                     f"            n += _left_behind(w, {v})"]
    lines += ["    " + line for line in body]
    if names:
        lines.append("        return n")
    lines.append("    return update")
    code = "\n".join(lines) + "\n"
    exec(compile(code, f"<updater {len(names)} values>", "exec"), env)  # noqa: S102
    return env["bind"]


def embeds_instance(value: Any) -> bool:
    """Whether an EmbeddedInstance/EmbeddedObject value goes to CMPI as CMPI_instance.

    Instances and NULLs (also arrays of them) do; text (MOF or CIM-XML of an
    object, a CIMClass) stays a string.
    """
    if isinstance(value, (list, tuple)):
        return all(v is None or isinstance(v, CIMInstance) for v in value)
    return value is None or isinstance(value, CIMInstance)


def holds_instance(value: Any) -> bool:
    """Whether a value (or an element of it) is an instance: a string property's value
    that goes to CMPI as CMPI_instance."""
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, CIMInstance) for v in value)
    return isinstance(value, CIMInstance)


def as_bool(value: Any) -> bool:
    """A boolean property's value: "true"/"false" (any case) as text, else its truth."""
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        raise pywbem.CIMError(pywbem.CIM_ERR_FAILED, f"not a boolean: {value!r}")
    return bool(value)
