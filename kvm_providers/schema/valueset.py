"""The values a ValueMap / Values qualifier allows (DSP0004), parsed once per element.

A ``ValueMap`` lists the values of an integer or string property, parameter or
method return value.  Entries of integer elements may be ranges (DSP0004,
"ValueMap"):

``"32768..65535"``  every value from 32768 to 65535;
``"..5"`` / ``"10.."``  up to 5 / from 10 (to the type's limits);
``".."``  every value that no other entry of the list claims, so an element whose
          ValueMap has it accepts every value of its type (DMTF uses it for
          "DMTF Reserved").

A ValueMap whose entries and ranges cover the whole type (EnabledState: "0".."10",
"11..32767", "32768..65535") allows every value too (``ValueSet.any``).

An integer element with ``Values`` but no ``ValueMap`` allows the indices of
its Values (0 .. len-1).  Integer entries may be written in decimal or hex
(``"0x8000..0xFFFF"`` in CIM_ResourceAllocationSettingData.ResourceType).

:func:`value_set` gives the :class:`ValueSet` of a property, parameter or method
(None when it has no ValueMap/Values); the schema keeps it in every
:class:`~kvm_providers.schema.PropSpec`, ``ParamSpec`` and ``MethodSpec``, so that
checks cost one set lookup (:mod:`kvm_providers.provider.model`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

__all__ = ["ValueSet", "value_set", "parse_valuemap_entry", "INTEGER_TYPES"]

INTEGER_TYPES = frozenset(("uint8", "sint8", "uint16", "sint16", "uint32", "sint32",
                           "uint64", "sint64"))


#: (lowest, highest) value of each integer type.
_BOUNDS = {f"{s}int{n}": ((0, 2 ** n - 1) if s == "u" else (-2 ** (n - 1), 2 ** (n - 1) - 1))
           for s in ("u", "s") for n in (8, 16, 32, 64)}


def _covers(cim_type: str, values: set[int],
            ranges: list[tuple[Optional[int], Optional[int]]]) -> bool:
    """True if `values` and `ranges` together hold every value of `cim_type`
    (EnabledState: 0..10, "11..32767", "32768..65535"): then nothing needs checking."""
    lo_t, hi_t = _BOUNDS[cim_type]
    spans = sorted([(v, v) for v in values]
                   + [(lo_t if lo is None else lo, hi_t if hi is None else hi)
                      for lo, hi in ranges])
    reach = lo_t - 1
    for lo, hi in spans:
        if lo > reach + 1:
            return False
        reach = max(reach, hi)
    return reach >= hi_t


def _int(text: str) -> int:
    text = text.strip()
    try:
        return int(text, 0)
    except ValueError:
        return int(text, 10)   # "010": DSP0004 decimal with a leading zero


def parse_valuemap_entry(entry: str) -> tuple[Optional[int], Optional[int]] | int:
    """An integer ValueMap entry: the value, or ``(low, high)`` of a range (None = open).

    Raises ValueError for an entry that is neither.
    """
    if ".." in entry:
        lo, _, hi = entry.partition("..")
        return (_int(lo) if lo.strip() else None, _int(hi) if hi.strip() else None)
    return _int(entry)


@dataclass(frozen=True)
class ValueSet:
    """The values an element may have: `values`, plus integers in `ranges`; `any`: all.

    ``v in value_set`` tests one value (None is always allowed: NULL).
    """

    values: frozenset
    ranges: tuple[tuple[Optional[int], Optional[int]], ...] = ()
    any: bool = False

    def __contains__(self, value: Any) -> bool:
        if value is None or self.any or value in self.values:
            return True
        if not self.ranges or isinstance(value, (str, bool)) or not isinstance(value, int):
            return False
        for lo, hi in self.ranges:
            if (lo is None or value >= lo) and (hi is None or value <= hi):
                return True
        return False

    def describe(self) -> str:
        """The allowed values as a short text, for error messages."""
        parts = [repr(v) for v in sorted(self.values, key=lambda v: (str(type(v)), v))]
        parts += [f"{'' if lo is None else lo}..{'' if hi is None else hi}"
                  for lo, hi in self.ranges]
        return ", ".join(parts) if not self.any else "any"


def value_set(element: Any, cim_type: Optional[str] = None) -> Optional[ValueSet]:
    """The ValueSet of a pywbem CIMProperty, CIMParameter or CIMMethod (None: no ValueMap).

    `cim_type` defaults to the element's ``type`` (``return_type`` of a method).
    Only integer and string elements are checked; others get None.
    """
    cim_type = cim_type or getattr(element, "type", None) or getattr(element, "return_type", None)
    if cim_type not in INTEGER_TYPES and cim_type != "string":
        return None
    quals = element.qualifiers
    vm = quals.get("ValueMap")
    vm_value = None if vm is None else vm.value
    if vm_value is None:
        vs = quals.get("Values")
        if vs is None or vs.value is None or cim_type == "string":
            return None
        return ValueSet(frozenset(range(len(vs.value))))
    if cim_type == "string":
        return ValueSet(frozenset(str(v) for v in vm_value))
    values: set[int] = set()
    ranges: list[tuple[Optional[int], Optional[int]]] = []
    for entry in vm_value:
        if entry is None:
            continue
        if entry.strip() == "..":
            return ValueSet(frozenset(), (), True)
        try:
            parsed = parse_valuemap_entry(entry)
        except ValueError:
            continue   # not an integer: a MOF mistake that the values cannot match anyway
        if isinstance(parsed, tuple):
            ranges.append(parsed)
        else:
            values.add(parsed)
    if ranges and _covers(cim_type, values, ranges):
        return ValueSet(frozenset(values), tuple(ranges), True)
    return ValueSet(frozenset(values), tuple(ranges))
