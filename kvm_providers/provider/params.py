"""Method parameters and results typed to their declarations.

What a client sends as a method's input is converted to the declared CIM
type of each parameter (embedded instances decoded, references parsed, a
wrong kind of value refused with CIM_ERR_INVALID_PARAMETER naming the
parameter); what a provider returns is typed for the writer.  Kept apart from
the provider base class that calls it (kvm_providers.provider.base).
"""

from __future__ import annotations

from typing import Any, Optional

import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName

from ..schema import Schema
from .values import coerce

__all__ = ["UNPARSABLE_EMBEDDED", "unparsable_embedded", "value_kind", "to_path", "typed_param",
           "is_embedded_value", "typed_result", "path_str"]

#: The words of the error for an embedded instance that cannot be parsed: libvirt-cim's
#: (libcmpiutil's method dispatch), which its clients look for (docs/compat.md).
UNPARSABLE_EMBEDDED = "Unable to parse embedded object"


def unparsable_embedded(where: str, detail: Any) -> CIMError:
    """CIM_ERR_FAILED for a method parameter that should hold an embedded instance and
    holds text that is none (``SystemSettings = "wrong"``): libvirt-cim's status and words
    (DSP0200 lists CIM_ERR_FAILED for every extrinsic method), then what was wrong."""
    return CIMError(pywbem.CIM_ERR_FAILED, f"{where}: {UNPARSABLE_EMBEDDED}: {detail}")


def value_kind(value: Any) -> str:
    """What a wrong-typed parameter value is, in the words of an error description."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, CIMInstance):
        return "an embedded instance"
    if isinstance(value, pywbem.CIMClass):
        return "an embedded class"
    if isinstance(value, (CIMInstanceName, pywbem.CIMClassName)):
        return "a reference"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, (str, bytes)):
        return "a string"
    return f"a {type(value).__name__}"


def to_path(value: Any) -> Optional[CIMInstanceName]:
    """A reference parameter's element: an instance path (a blank string is NULL)."""
    if isinstance(value, CIMInstanceName):
        return value
    if isinstance(value, pywbem.CIMClassName):
        return CIMInstanceName(value.classname, namespace=value.namespace, host=value.host)
    if isinstance(value, str):
        return CIMInstanceName.from_wbem_uri(value) if value.strip() else None
    raise TypeError(f"a reference (an instance path) is expected, got {value_kind(value)}")


def typed_param(pspec, value: Any, ns: Optional[str], mname: str, schema: Schema) -> Any:
    """An input parameter value converted to its declared type.

    Embedded instances sent as CIM-XML or MOF text are decoded (and typed by
    their class); an unused reference sent as a blank string is NULL.  A value
    of the wrong kind (an array for a scalar, an instance or a number where a
    reference is due, a reference where a string is due...) is
    CIM_ERR_INVALID_PARAMETER naming the parameter, so that no provider meets
    a value it cannot use.  A scalar given for an array is taken as an array
    of one.
    """
    where = f"Parameter {pspec.name} of method {mname}"
    try:
        if value is None:
            return None
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, list) and not pspec.is_array:
            raise TypeError(f"{value_kind(value)} given where a single "
                            f"{'embedded instance' if pspec.embedded_object else pspec.type} "
                            f"is expected")
        if pspec.embedded_object == "instance" or pspec.embedded_class:
            from ..cimxml.embedded import (EmbeddedInstanceError, EmbeddedLimitError,
                                           EmbeddedSyntaxError, decode_embedded_instance)
            try:
                if pspec.is_array:
                    items = value if isinstance(value, list) else [value]
                    return [None if v is None else decode_embedded_instance(v, ns, schema)
                            for v in items]
                return decode_embedded_instance(value, ns, schema)
            except EmbeddedLimitError as exc:
                raise CIMError(pywbem.CIM_ERR_SERVER_LIMITS_EXCEEDED,
                               f"{where}: {exc}") from None
            except EmbeddedSyntaxError as exc:
                raise unparsable_embedded(where, exc) from None
            except EmbeddedInstanceError as exc:
                raise ValueError(str(exc)) from None
        if pspec.embedded_object and is_embedded_value(value):
            return value
        if pspec.type == "reference":
            if pspec.is_array:
                items = value if isinstance(value, list) else [value]
                return [None if v is None else to_path(v) for v in items]
            return to_path(value)
        if pspec.type == "string" or pspec.type == "char16":
            items = value if isinstance(value, list) else [value]
            for v in items:
                if v is not None and not isinstance(v, (str, bytes, int, float, bool)):
                    raise TypeError(f"a string is expected, got {value_kind(v)}")
        elif pspec.type != "datetime":
            items = value if isinstance(value, list) else [value]
            for v in items:
                if isinstance(v, (CIMInstance, pywbem.CIMClass, CIMInstanceName,
                                  pywbem.CIMClassName)):
                    raise TypeError(f"a {pspec.type} is expected, got {value_kind(v)}")
        return coerce(pspec.type, pspec.is_array, value)
    except (ValueError, TypeError) as exc:
        raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, f"{where}: {exc}") from None


def is_embedded_value(value: Any) -> bool:
    """Whether a value (or an element of an array) is an embedded instance or class."""
    if isinstance(value, list):
        return any(isinstance(v, (CIMInstance, pywbem.CIMClass)) for v in value)
    return isinstance(value, (CIMInstance, pywbem.CIMClass))


def typed_result(cim_type: Optional[str], is_array: bool, value: Any) -> tuple[str, Any]:
    """(type name, value) for a method result, inferring the type where unknown."""
    if cim_type and cim_type not in ("instance", "class") and value is not None:
        try:
            return cim_type, coerce(cim_type, is_array, value)
        except (ValueError, TypeError) as exc:
            raise CIMError(pywbem.CIM_ERR_FAILED,
                           f"Provider returned {value!r} where a {cim_type} is due: "
                           f"{exc}") from None
    if cim_type:
        return cim_type, value
    probe = value[0] if isinstance(value, list) and value else value
    if isinstance(probe, CIMInstance):
        return "instance", value
    if isinstance(probe, pywbem.CIMClass):
        return "class", value
    if isinstance(probe, CIMInstanceName):
        return "reference", value
    if probe is None:
        return "string", value
    try:
        return pywbem.cimtype(probe), value
    except TypeError:
        return "string", str(value)


def path_str(path: CIMInstanceName) -> str:
    """An instance path in the words of a not-found description."""
    keys = ",".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"
                    for k, v in path.keybindings.items())
    ns = f"{path.namespace}:" if path.namespace else ""
    return f"{ns}{path.classname}.{keys}"
