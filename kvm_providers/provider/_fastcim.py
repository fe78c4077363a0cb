"""Fast construction and reading of pywbem objects, in one place.

pywbem's constructors re-infer and re-validate every value, and its
case-insensitive dictionaries re-fold every key; on an enumeration of
thousands of instances that costs more than everything else the server does.
Where the value is already of the declared type, the helpers here build and
read pywbem objects through their internal layout instead.

That layout is checked once at import (``FAST``); if a pywbem release
changes it, every helper falls back to the public API, only slower.  pywbem
is pinned to 1.x in setup.py.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

from pywbem import CIMProperty
# The dict type of CIMInstance.properties (a private module: pywbem exports no name for it).
from pywbem._nocasedict import NocaseDict

__all__ = ["FAST", "new_property", "set_prop", "has_prop", "iter_props", "EMPTY_QUALIFIERS",
           "NocaseDict"]

_new = object.__new__


class _FrozenQualifiers(NocaseDict):
    """The shared empty qualifier dict of fast properties; refuses changes.

    (Assigning ``prop.qualifiers = {...}`` replaces it and is fine.)
    """

    _frozen = False

    def __init__(self) -> None:
        super().__init__()
        self._frozen = True

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        if self._frozen:
            raise TypeError("qualifiers of this property are shared: assign a new dict "
                            "instead")
        return NocaseDict.update(self, *args, **kwargs)

    update = _refuse

    def __setitem__(self, *args: Any) -> None:
        raise TypeError("qualifiers of this property are shared: assign a new dict instead")

    __delitem__ = clear = pop = popitem = setdefault = __setitem__

    # Copies (copy, deepcopy, pickle) are ordinary, changeable dicts.
    def __reduce__(self):
        return (NocaseDict, ())

    def __copy__(self):
        return NocaseDict()

    def __deepcopy__(self, memo):
        return NocaseDict()


def _check() -> bool:
    try:
        slots = set(getattr(CIMProperty, "__slots__", ()))
        need = {"_name", "_value", "_type", "_class_origin", "_array_size", "_propagated",
                "_is_array", "_reference_class", "_qualifiers", "_embedded_object"}
        if not need <= slots:
            return False
        d = NocaseDict()
        d["AbC"] = 1
        data = getattr(d, "_data", None)
        if data != {"AbC".casefold(): ("AbC", 1)}:
            return False
        p = CIMProperty("X", "v", type="string")
        probe = _new(CIMProperty)
        for slot in need:
            setattr(probe, slot, getattr(p, slot))
        return probe.value == "v" and probe.type == "string" and probe.name == "X"
    except Exception:  # pylint: disable=broad-except
        return False


FAST = _check()
EMPTY_QUALIFIERS = _FrozenQualifiers() if FAST else None


def new_property(name: str, value: Any, cim_type: str, is_array: bool,
                 reference_class: Optional[str] = None,
                 embedded_object: Optional[str] = None) -> CIMProperty:
    """A CIMProperty for a value already of type `cim_type` (no re-validation)."""
    if not FAST:
        if embedded_object and (value is None or isinstance(value, str) or (
                isinstance(value, list) and value and isinstance(value[0], str))):
            embedded_object = None if value is not None else embedded_object
        return CIMProperty(name, value, type=cim_type, is_array=is_array,
                           reference_class=reference_class, embedded_object=embedded_object)
    p = _new(CIMProperty)
    p._name = name
    p._value = value
    p._type = cim_type
    p._class_origin = None
    p._array_size = None
    p._propagated = None
    p._is_array = is_array
    p._reference_class = reference_class
    p._qualifiers = EMPTY_QUALIFIERS
    p._embedded_object = embedded_object
    return p


def set_prop(props: NocaseDict, folded: str, name: str, prop: CIMProperty) -> None:
    """props[name] = prop, given the case-folded name."""
    if FAST:
        props._data[folded] = (name, prop)
    else:
        props[name] = prop


def has_prop(props: NocaseDict, folded: str) -> bool:
    """`folded` (a case-folded name) in props, without folding it again."""
    if FAST:
        return folded in props._data
    return folded in props


def iter_props(props: NocaseDict) -> Iterator[tuple[str, CIMProperty]]:
    """(case-folded name, property) pairs of an instance's properties."""
    if FAST:
        for folded, (_name, prop) in props._data.items():
            yield folded, prop
    else:
        for name, prop in props.items():
            yield name.casefold(), prop
