"""Scalar strings set on an instance without a CMPIString each (issue 10 item 12, stop 27).

A string property was set as ``CMPIValue.string = broker.new_string(text)`` and
``set_property(name, value, CMPI_string)``: the server makes a CMPIString (sfcb:
``__new_string``, two mallocs and its memory tracking; Pegasus: a ``CMPI_Object``),
SWIG a proxy object for it, the converter keeps it until the call ends, and then every
one is released again -- while ``set_property`` only reads the string's characters
and copies them: sfcb's ``__ift_setProperty`` takes ``value->string->hdl`` as the
characters (``ClInstanceAddProperty`` copies them into the instance), Pegasus'
``value2SCMOValue`` and ``value2CIMValue`` read ``data->string->hdl`` the same way
and copy (``SCMOInstance``, ``String``).  Both servers' CMPIString keeps its
NUL-terminated characters in ``hdl`` (``stringGetCharPtr`` returns it).

Values that differ from instance to instance (InstanceIDs, addresses, a device's
names: about 1.3 new strings per RASD) made one CMPIString each.  :class:`TextValue`
is a CMPIValue whose ``string`` member points at a stand-in ``struct _CMPIString``
of its own (``{hdl, ft}``, ctypes) whose ``hdl`` is pointed at the UTF-8 bytes of the
text to set, right before each ``set_property``: the server reads the same
characters as from a CMPIString of its own, and nothing is made, kept or released.
``ft`` is the server's own string function table (taken from one real CMPIString),
should a server ever call through it.  Array elements still get CMPIStrings of their
own: an array holds its elements by reference until the instance is serialized.

One TextValue per converter (a CMPI call runs on one thread; the servers serve calls
on several); only for cmpi-bindings' SWIG module, whose CMPIValue is the C union
(:func:`real_module`); the tests' fake has its own model of it
(``tests/cmpi/test_cmpi_cheaper_instances.py``).
"""

from __future__ import annotations

import ctypes
from typing import Any, Callable, Optional

__all__ = ["TextValue", "text_value", "real_module", "set_text"]


def _bytes_data_offset() -> int:
    """Offset of a ``bytes`` object's characters from its address (CPython: ob_sval)."""
    probe = b"kvm-providers"
    addr = ctypes.cast(ctypes.c_char_p(probe), ctypes.c_void_p).value
    if addr is None:
        raise RuntimeError("no address of a bytes object's characters")
    return addr - id(probe)


_DATA = _bytes_data_offset()

#: Offset of ``ft`` in ``struct _CMPIString { void *hdl; CMPIStringFT *ft; }``.
_FT_OFFSET = ctypes.sizeof(ctypes.c_void_p)


class TextValue:
    """A CMPIValue (:attr:`value`) whose ``string`` is a stand-in CMPIString; :meth:`point`
    makes it hold a text (see the module)."""

    __slots__ = ("value", "_cell")

    def __init__(self, cmpi: Any, ft: int):
        # {hdl, ft}: hdl set per text by point()
        self._cell = (ctypes.c_void_p * 2)(None, ft)
        self.value = cmpi.CMPIValue()
        # the union's string member is the pointer: set through its uint64 member
        self.value.uint64 = ctypes.addressof(self._cell)

    def point(self, text: str) -> bytes:
        """Make :attr:`value` hold `text` until the next call; the caller keeps the bytes
        returned until the server has copied them (its ``set_property`` returned).
        UnicodeEncodeError for a text the SWIG conversion refuses too (a lone
        surrogate): the caller then sets it through a CMPIString, as before."""
        data = text.encode()
        self._cell[0] = id(data) + _DATA
        return data


def real_module(cmpi: Any) -> bool:
    """Whether `cmpi` is cmpi-bindings' SWIG module (its ``_cmpi`` a compiled extension),
    not a stand-in whose objects have no C pointers."""
    ext = getattr(cmpi, "_cmpi", None)
    path = getattr(ext, "__file__", None) or ""
    value = getattr(cmpi, "CMPIValue", None)
    return path.endswith(".so") and value is not None and \
        hasattr(value, "uint64") and hasattr(value, "inst")


def _ctypes_text_value(conv: Any) -> Optional[TextValue]:
    """The TextValue of the Converter `conv` (None: not cmpi-bindings' module)."""
    if not real_module(conv.cmpi):
        return None
    probe = conv.string("")             # kept (and released) with the call's objects
    ft = ctypes.c_void_p.from_address(int(probe.this) + _FT_OFFSET).value
    if not ft:
        return None
    return TextValue(conv.cmpi, ft)


#: The TextValue of a converter, or None (the tests' fake replaces it with its model).
text_value_of: Callable[[Any], Optional[Any]] = _ctypes_text_value



def text_value(conv: Any) -> Any:
    """The TextValue of converter `conv` (made when first asked for, one per converter;
    ``conv._text`` None until then), or False: strings go through CMPIStrings
    (:meth:`.convert.Converter.string`)."""
    tv = conv._text                     # pylint: disable=protected-access
    if tv is None:
        tv = conv._text = text_value_of(conv) or False   # pylint: disable=protected-access
    return tv


def set_text(conv: Any, set_property: Any, name: str, text: str, ctype: int) -> None:
    """``set_property(name, <text>, ctype)`` for a scalar string property of converter
    `conv`'s instance: through its stand-in CMPIString, else (no stand-in, a text
    that SWIG refuses) through a CMPIString in the converter's CMPIValue, as before."""
    tv = text_value(conv)
    if tv:
        try:
            data = tv.point(text)
        except UnicodeEncodeError:
            data = None
        if data is not None:
            set_property(name, tv.value, ctype)
            return
    cval = conv._cval                   # pylint: disable=protected-access
    if cval is None:
        cval = conv._cval = conv.cmpi.CMPIValue()   # pylint: disable=protected-access
    cval.string = conv.string(text)     # one CMPIString per distinct text and call
    set_property(name, cval, ctype)
