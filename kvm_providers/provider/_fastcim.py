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

from pywbem import CIMInstanceName, CIMProperty
# The dict type of CIMInstance.properties (a private module: pywbem exports no name for it).
from pywbem._nocasedict import NocaseDict

__all__ = ["FAST", "new_property", "set_prop", "has_prop", "iter_props", "EMPTY_QUALIFIERS",
           "NocaseDict", "copy_path", "new_path", "new_path_folded", "iter_keybindings"]

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


def _check_path() -> bool:
    try:
        if not {"_classname", "_keybindings", "_host", "_namespace"} <= \
                set(getattr(CIMInstanceName, "__slots__", ())):
            return False
        p = CIMInstanceName("C", {"K": "v"}, namespace="n")
        e = _copy_path_fast(CIMInstanceName("C", namespace="n"))
        if e != CIMInstanceName("C", namespace="n") or list(e.keybindings) or \
                CIMInstanceName("C")._keybindings not in (None, {}):
            return False
        q = _copy_path_fast(p)
        q.keybindings["K"] = "w"
        q.keybindings["L"] = 1
        r = _new_path_fast("C", {"K": "v", "Ab": "x"}, "n")
        assert r is not None and _new_path_fast("C", {"K": 1}, "n") is None
        r.keybindings["aB"] = "y"
        s = CIMInstanceName("C", {"K": "v", "Ab": "x"}, namespace="n")
        s.keybindings["aB"] = "y"
        return p == CIMInstanceName("C", {"K": "v"}, namespace="n") and \
            q == CIMInstanceName("C", {"K": "w", "L": 1}, namespace="n") and \
            vars(q.keybindings).keys() == vars(p.keybindings).keys() and \
            r == CIMInstanceName("C", {"K": "v", "Ab": "y"}, namespace="n") and \
            list(r.keybindings) == list(s.keybindings) and r.host is None and \
            vars(r.keybindings) == vars(p.keybindings) | {"_data": r.keybindings._data} and \
            hash(r) == hash(CIMInstanceName("C", {"K": "v", "Ab": "y"}, namespace="n"))
    except Exception:  # pylint: disable=broad-except
        return False


def _copy_path_fast(path: CIMInstanceName) -> CIMInstanceName:
    q = _new(CIMInstanceName)
    q._classname = path._classname
    old = path._keybindings
    if old is None:             # pywbem makes a path's key bindings dict when first read
        q._keybindings = None
    else:
        kb = _new(type(old))
        kb.__dict__.update(old.__dict__)        # its flags (allow_unnamed_keys)
        kb._data = dict(old._data)
        q._keybindings = kb
    q._host = path._host
    q._namespace = path._namespace
    return q


def _new_path_fast(classname: str, keybindings: dict[str, Any], namespace: Optional[str],
                   host: Optional[str] = None) -> Optional[CIMInstanceName]:
    """The path, or None if a key binding's value is not a string (left to pywbem)."""
    data = {}
    for k, v in keybindings.items():
        if type(v) is not str:
            return None
        data[k.casefold()] = (k, v)
    return _path_of(classname, data, namespace, host)


def _path_of(classname: str, data: dict[str, tuple[str, str]], namespace: Optional[str],
             host: Optional[str]) -> CIMInstanceName:
    """A CIMInstanceName whose key bindings' dict is `data` ({folded name: (name,
    value)}), as pywbem lays it out, without its checks."""
    q = _new(CIMInstanceName)
    q._classname = classname
    kb = _new(_KB_TYPE)
    kb.__dict__.update(_KB_FLAGS)
    kb._data = data
    q._keybindings = kb
    q._host = host
    q._namespace = namespace
    return q


# The key bindings dict of a path as pywbem makes it (its type and flags), copied by
# _new_path_fast.
_KB_PROBE = CIMInstanceName("C", {"K": "v"}).keybindings
_KB_TYPE = type(_KB_PROBE)
_KB_FLAGS = {k: v for k, v in vars(_KB_PROBE).items() if k != "_data"}

FAST = _check()
_FAST_PATH = FAST and _check_path()


def copy_path(path: CIMInstanceName) -> CIMInstanceName:
    """``path.copy()`` (the key bindings dict copied, its values shared), without
    pywbem's re-validation of every key binding: instance models copy their path once
    per instance of an enumeration."""
    return _copy_path_fast(path) if _FAST_PATH else path.copy()


def new_path(classname: str, keybindings: dict[str, Any], namespace: Optional[str] = None,
             host: Optional[str] = None) -> CIMInstanceName:
    """``CIMInstanceName(classname, keybindings, namespace=..., host=...)``; for key
    bindings whose values are all strings (the keys of this model's own classes) without
    pywbem's checks per key binding (2 against 5 us for four keys): an AssociatorNames
    builds a path per device (issue 16).  Other values, or a namespace with slashes to
    strip, take the public constructor."""
    if _FAST_PATH and (namespace is None or namespace[:1] != "/" != namespace[-1:]):
        path = _new_path_fast(classname, keybindings, namespace, host)
        if path is not None:
            return path
    return CIMInstanceName(classname, keybindings, namespace=namespace, host=host)


def new_path_folded(classname: str, folded: dict[str, tuple[str, str]],
                    namespace: Optional[str] = None) -> CIMInstanceName:
    """``new_path(classname, {name: value ...}, namespace)`` for string key bindings
    given as ``{name.casefold(): (name, value)}`` in order: the dict is taken as the
    path's key bindings as it is (the caller makes a new one per path), so that a
    provider writing many paths of one shape (AssociatorNames SystemDevice: a path
    per device, issue 16) folds no key name and walks no key binding per path."""
    if _FAST_PATH and (namespace is None or namespace[:1] != "/" != namespace[-1:]):
        return _path_of(classname, folded, namespace, None)
    return CIMInstanceName(classname, dict(folded.values()), namespace=namespace)


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


def iter_keybindings(path: CIMInstanceName) -> Any:
    """(name, value) pairs of a path's key bindings, in order, without pywbem's property
    and view layers (the CIM-XML writer reads one path per enumerated instance)."""
    if _FAST_PATH:
        kb = path._keybindings
        return kb._data.values() if kb is not None else ()   # None: none yet (pywbem's lazy dict)
    return path.keybindings.items()
