"""What a new CMPIInstance holds before the provider sets anything (issue 10 item 12).

Both servers make a new instance from its class, every property at its class default
(OpenPegasus' SCMOInstance, sfcb's "default properties"), else NULL.  The converter
does not set again what the instance holds already: the NULLs
(``Converter._nulls_of_new``) and, here, the class defaults of the properties a
provider leaves unset (a ComputerSystem's EnabledDefault and TransitioningToState: two
``set_property`` calls of a GetInstance's 15 in OpenPegasus, stop 30).  What the new
instance holds is read from the server's own first instance of each class, so a
server that holds no default (or another value) has it set as before.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NONE_HELD", "values_of_new", "held_already"]

#: No value known to be held (a filtered instance, or no record of its class).
NONE_HELD: dict[str, Any] = {}


def values_of_new(conv: Any, cinst: Any) -> dict[str, Any]:
    """{lower-case name: value} of the scalar properties the new `cinst` holds, not NULL,
    read through the Converter `conv`; {} if they cannot be read (then every default is
    set, as before)."""
    try:
        out = {}
        for i in range(cinst.property_count()):
            data, name = cinst.get_property_at(i)
            value, _type, is_array = conv.from_data(data)
            if value is not None and not is_array:
                out[str(name).lower()] = value
        return out
    except Exception:  # pylint: disable=broad-except  (a server that cannot tell)
        return {}


def held_already(held: dict[str, Any], lk: str, default: Any) -> bool:
    """Whether the class default `default` of property `lk` (lower-case) is what a new
    instance holds (`held`: :func:`values_of_new`): the same type and value (Uint16(2)
    and Uint32(2), True and 1 stay apart)."""
    value = held.get(lk)
    return value is not None and type(value) is type(default) and value == default
