"""The conversion plan of a class: how the values of its instances are set on a CMPIInstance.

Made once per class, PropertyList, completeness and SWIG module (kept in the
class's cache) by :meth:`kvm_providers.cmpi.convert.Converter._plan`: each
property's name, CMPI type, the kind of value the fast cases set, and the typed
NULL; used for instance models and for the direct enumeration path alike.
"""

from __future__ import annotations

from typing import Any

from pywbem import Sint8, Sint16, Sint32, Sint64, Uint8, Uint16, Uint32, Uint64

from ..schema import ClassSpec

__all__ = ["INT_CLASSES", "InstancePlan"]

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

    __slots__ = ("rows", "props", "attrs", "unset", "_rest", "wanted", "keys")

    def __init__(self, conv: Any, spec: ClassSpec, wanted: frozenset, complete: bool):
        self.props = spec.props
        self.wanted = wanted
        #: The folded names of the class's keys.
        self.keys: tuple[str, ...] = tuple(k.casefold() for k in spec.key_names)
        self.rows: dict[str, tuple] = {}
        self.attrs: dict[str, str] = {}
        for lk, p in spec.props.items():
            kind: Any = None
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
