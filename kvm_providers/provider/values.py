"""Coercion of Python values to CIM-typed pywbem values.

Providers may assign plain Python values (``model['EnabledState'] = 2``); the
model knows the declared CIM type of every property and turns the value into
the right pywbem type here.  Values that already have the right type pass
through untouched, which keeps the hot path cheap.
"""

from __future__ import annotations

import datetime
from typing import Any, Callable

import pywbem
from pywbem import (CIMDateTime, CIMInstance, CIMInstanceName, CIMClass, Char16,
                    Real32, Real64, Sint8, Sint16, Sint32, Sint64, Uint8, Uint16,
                    Uint32, Uint64)

__all__ = ["coerce", "coerce_scalar", "converter", "INT_TYPES", "CIM_TYPES", "cim_error"]

INT_TYPES: dict[str, type] = {
    "uint8": Uint8, "uint16": Uint16, "uint32": Uint32, "uint64": Uint64,
    "sint8": Sint8, "sint16": Sint16, "sint32": Sint32, "sint64": Sint64,
}
REAL_TYPES: dict[str, type] = {"real32": Real32, "real64": Real64}
CIM_TYPES = frozenset(list(INT_TYPES) + list(REAL_TYPES) +
                      ["string", "char16", "boolean", "datetime", "reference"])


def cim_error(status: int, description: str) -> pywbem.CIMError:
    """Build a pywbem.CIMError (short helper used all over the package)."""
    return pywbem.CIMError(status, description)


def _to_string(value: Any) -> Any:
    if type(value) is str:
        return value
    if isinstance(value, (CIMInstance, CIMClass)):
        return value  # embedded object: kept as object, serialized by the host
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


def _to_bool(value: Any) -> bool:
    if value is True or value is False:
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low == "true":
            return True
        if low == "false":
            return False
        raise ValueError(f"not a boolean: {value!r}")
    if isinstance(value, int):
        return bool(value)
    raise ValueError(f"not a boolean: {value!r}")


def _int_coercer(cls: type) -> Callable[[Any], Any]:
    lo, hi = cls.minvalue, cls.maxvalue  # type: ignore[attr-defined]
    new = int.__new__

    def conv(value: Any) -> Any:
        if type(value) is cls:
            return value
        if type(value) is int and lo <= value <= hi:
            # What cls(value) makes, without pywbem's argument handling and checks
            # (0.2 against 0.86 us; every integer an enumeration reads comes here).
            return new(cls, value)
        if isinstance(value, bool):
            raise ValueError(f"boolean {value!r} given for an integer")
        if isinstance(value, str):
            value = int(value.strip(), 0) if value.strip()[:2].lower() in ("0x", "0b") \
                else int(value.strip())
        elif isinstance(value, float):
            if value != int(value):
                raise ValueError(f"{value!r} is not an integer")
            value = int(value)
        return cls(value)
    return conv


def _real_coercer(cls: type) -> Callable[[Any], Any]:
    def conv(value: Any) -> Any:
        if type(value) is cls:
            return value
        if isinstance(value, bool):
            raise ValueError(f"boolean {value!r} given for a real")
        return cls(float(value))
    return conv


def _to_datetime(value: Any) -> CIMDateTime:
    if isinstance(value, CIMDateTime):
        return value
    if isinstance(value, (datetime.datetime, datetime.timedelta, str)):
        return CIMDateTime(value)
    raise ValueError(f"not a datetime: {value!r}")


def _to_reference(value: Any) -> CIMInstanceName:
    if isinstance(value, CIMInstanceName):
        return value
    raise ValueError(f"not an instance path: {value!r}")


def _to_char16(value: Any) -> Char16:
    if isinstance(value, Char16):
        return value
    value = _to_string(value)
    if len(value) != 1:
        raise ValueError(f"char16 needs exactly one character, got {value!r}")
    return Char16(value)


_SCALAR: dict[str, Callable[[Any], Any]] = {
    "string": _to_string,
    "boolean": _to_bool,
    "datetime": _to_datetime,
    "reference": _to_reference,
    "char16": _to_char16,
}
_SCALAR.update({name: _int_coercer(cls) for name, cls in INT_TYPES.items()})
_SCALAR.update({name: _real_coercer(cls) for name, cls in REAL_TYPES.items()})


def coerce_scalar(cim_type: str, value: Any) -> Any:
    """Return `value` as the pywbem value for CIM type `cim_type` (not an array).

    Raises ValueError (with a message naming the problem) if it cannot be
    converted, e.g. 300 for a uint8.
    """
    if value is None:
        return None
    try:
        return _SCALAR[cim_type](value)
    except KeyError:
        raise ValueError(f"unknown CIM type {cim_type!r}") from None


def coerce(cim_type: str, is_array: bool, value: Any) -> Any:
    """Return `value` converted to CIM type `cim_type`, as a list if `is_array`."""
    if value is None:
        return None
    conv = _SCALAR.get(cim_type)
    if conv is None:
        raise ValueError(f"unknown CIM type {cim_type!r}")
    if is_array:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            value = [value]
        return [None if v is None else conv(v) for v in value]
    if isinstance(value, (list, tuple)):
        raise ValueError(f"array given for a scalar {cim_type}")
    return conv(value)


_CONVERTERS: dict[tuple[str, bool], Callable[[Any], Any]] = {}


def converter(cim_type: str, is_array: bool) -> Callable[[Any], Any]:
    """The conversion function of `cim_type` (cached): coerce() without the dispatch.

    The function takes a value that is not None.
    """
    conv = _CONVERTERS.get((cim_type, is_array))
    if conv is None:
        scalar = _SCALAR.get(cim_type)
        if scalar is None:
            raise ValueError(f"unknown CIM type {cim_type!r}")
        if is_array:
            def conv(value: Any, _s=scalar, _t=cim_type) -> Any:
                if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                    value = [value]
                return [None if v is None else _s(v) for v in value]
        else:
            def conv(value: Any, _s=scalar, _t=cim_type) -> Any:
                if isinstance(value, (list, tuple)):
                    raise ValueError(f"array given for a scalar {_t}")
                return _s(value)
        _CONVERTERS[(cim_type, is_array)] = conv
    return conv
