"""A faithful fake of cmpi-bindings' SWIG module ``cmpi`` (Python 3, SWIG 4), for tests.

Modelled on cmpi-bindings' ``swig/cmpi.i``, ``cmpi_types.i``, ``cmpi_defs.i``,
``cmpi_callbacks.i`` and ``src/target_python.c``, including the traps a Python 3
adapter must avoid:

* CMPIEnumeration has ``hasNext()`` and ``next()`` but no ``__next__`` and no
  ``__iter__`` (SWIG renames ``next_element`` to ``next``);
* ``char *`` arguments take ``str`` (bytes are refused); ``char **`` arguments
  (property lists) take a list of **bytes** only: the SWIG typemap checks
  ``PyString_Check``, which SWIG's Python 3 compatibility macros turn into
  ``PyBytes_Check``;
* a struct member that holds a pointer does not keep the Python proxy alive:
  ``CMPIValue.string = broker.new_string(...)`` followed by the loss of the
  proxy leaves a dangling pointer (``new_string``, ``new_array``,
  ``new_datetime*`` and ``new_args`` results are released with their proxy);
  the fake holds such members weakly and fails loudly on a dangling one;
* ``CMPIData.value`` points into the CMPIData: reading it after the CMPIData
  is gone fails;
* ``CMPIData._value()`` returns None for reals and raises for datetimes;
* ``CMPIObjectPath.hostname()`` on a path without host crashes the server
  (``strdup(NULL)``), ``CMPIObjectPath.keys()`` uses ``xrange``;
* CMPI_RC codes, CMPIType bit layout and value states as in ``cmpidt.h``;
* :func:`target_call` checks a provider's return value exactly as
  ``TargetCall()`` does: a tuple of one or two items, an int and None or a
  message; a ``str`` message is dropped (``PyBytes_AsString`` fails on it).

Upcalls are served by :class:`CMPIBroker` from an in-memory repository and by
dispatching to adapter objects registered per class (as a CIM server routes
an upcall to the provider of the class).  The broker also checks that
brokers calls from a thread started by a provider come with a context that
was prepared (``prepareAttachThread``) and attached in that thread.
"""

from __future__ import annotations

import re
import sys
import threading
import weakref
from typing import Any, Optional

# --------------------------------------------------------------------------
# cmpidt.h constants

CMPI_null = 0
CMPI_SIMPLE = 2
CMPI_boolean = 2 + 0
CMPI_char16 = 2 + 1
CMPI_REAL = 2 << 2
CMPI_real32 = (2 + 0) << 2
CMPI_real64 = (2 + 1) << 2
CMPI_UINT = 8 << 4
CMPI_SINT = (8 + 4) << 4
CMPI_uint8 = (8 + 0) << 4
CMPI_uint16 = (8 + 1) << 4
CMPI_uint32 = (8 + 2) << 4
CMPI_uint64 = (8 + 3) << 4
CMPI_sint8 = (8 + 4) << 4
CMPI_sint16 = (8 + 5) << 4
CMPI_sint32 = (8 + 6) << 4
CMPI_sint64 = (8 + 7) << 4
CMPI_INTEGER = CMPI_UINT | CMPI_SINT
CMPI_ENC = 16 << 8
CMPI_instance = (16 + 0) << 8
CMPI_ref = (16 + 1) << 8
CMPI_args = (16 + 2) << 8
CMPI_class = (16 + 3) << 8
CMPI_filter = (16 + 4) << 8
CMPI_enumeration = (16 + 5) << 8
CMPI_string = (16 + 6) << 8
CMPI_chars = (16 + 7) << 8
CMPI_dateTime = (16 + 8) << 8
CMPI_ptr = (16 + 9) << 8
CMPI_charsptr = (16 + 10) << 8
CMPI_ARRAY = 1 << 13
CMPI_keyInteger = CMPI_sint64
CMPI_keyString = CMPI_string
CMPI_keyBoolean = CMPI_boolean
CMPI_keyRef = CMPI_ref

CMPI_goodValue = 0
CMPI_nullValue = 1 << 8
CMPI_keyValue = 2 << 8
CMPI_notFound = 4 << 8
CMPI_badValue = 0x80 << 8

CMPI_RC_OK = 0
CMPI_RC_ERR_FAILED = 1
CMPI_RC_ERR_ACCESS_DENIED = 2
CMPI_RC_ERR_INVALID_NAMESPACE = 3
CMPI_RC_ERR_INVALID_PARAMETER = 4
CMPI_RC_ERR_INVALID_CLASS = 5
CMPI_RC_ERR_NOT_FOUND = 6
CMPI_RC_ERR_NOT_SUPPORTED = 7
CMPI_RC_ERR_CLASS_HAS_CHILDREN = 8
CMPI_RC_ERR_CLASS_HAS_INSTANCES = 9
CMPI_RC_ERR_INVALID_SUPERCLASS = 10
CMPI_RC_ERR_ALREADY_EXISTS = 11
CMPI_RC_ERR_NO_SUCH_PROPERTY = 12
CMPI_RC_ERR_TYPE_MISMATCH = 13
CMPI_RC_ERR_QUERY_LANGUAGE_NOT_SUPPORTED = 14
CMPI_RC_ERR_INVALID_QUERY = 15
CMPI_RC_ERR_METHOD_NOT_AVAILABLE = 16
CMPI_RC_ERR_METHOD_NOT_FOUND = 17
CMPI_RC_DO_NOT_UNLOAD = 50
CMPI_RC_NEVER_UNLOAD = 51
CMPI_RC_ERR_INVALID_HANDLE = 60
CMPI_RC_ERR_INVALID_DATA_TYPE = 61
CMPI_RC_ERROR_SYSTEM = 100
CMPI_RC_ERROR = 200

CMPI_SEV_ERROR = 1
CMPI_SEV_INFO = 2
CMPI_SEV_WARNING = 3
CMPI_DEV_DEBUG = 4

CMPI_LEV_INFO = 1
CMPI_LEV_WARNING = 2
CMPI_LEV_VERBOSE = 3

#: SWIG 4 + Python 3: the char** typemap accepts bytes only.  Set False to
#: model a build whose typemap takes str instead (the adapter handles both).
STRICT_BYTES_PLIST = True

_INT_RANGES = {
    "uint8": (0, 2**8 - 1), "uint16": (0, 2**16 - 1), "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1), "sint8": (-2**7, 2**7 - 1), "sint16": (-2**15, 2**15 - 1),
    "sint32": (-2**31, 2**31 - 1), "sint64": (-2**63, 2**63 - 1),
    "boolean": (0, 255), "char16": (0, 2**16 - 1),
    "Byte": (-2**7, 2**7 - 1), "Short": (-2**15, 2**15 - 1), "Int": (-2**31, 2**31 - 1),
    "Long": (-2**63, 2**63 - 1),
}
_REAL_FIELDS = ("real32", "real64", "Float", "Double")
_CIM_TYPES = {
    "boolean": CMPI_boolean, "char16": CMPI_char16, "real32": CMPI_real32,
    "real64": CMPI_real64, "uint8": CMPI_uint8, "uint16": CMPI_uint16,
    "uint32": CMPI_uint32, "uint64": CMPI_uint64, "sint8": CMPI_sint8,
    "sint16": CMPI_sint16, "sint32": CMPI_sint32, "sint64": CMPI_sint64,
    "string": CMPI_string, "datetime": CMPI_dateTime, "reference": CMPI_ref,
}
_TYPE_FIELD = {
    CMPI_boolean: "boolean", CMPI_char16: "char16", CMPI_real32: "real32",
    CMPI_real64: "real64", CMPI_uint8: "uint8", CMPI_uint16: "uint16",
    CMPI_uint32: "uint32", CMPI_uint64: "uint64", CMPI_sint8: "sint8",
    CMPI_sint16: "sint16", CMPI_sint32: "sint32", CMPI_sint64: "sint64",
    CMPI_instance: "inst", CMPI_ref: "ref", CMPI_args: "args", CMPI_class: "inst",
    CMPI_filter: "filter", CMPI_enumeration: "Enum", CMPI_string: "string",
    CMPI_chars: "chars", CMPI_dateTime: "dateTime",
}

#: Every fault the fake detected that would crash or corrupt a real server.
VIOLATIONS: list[str] = []


def _violation(msg: str) -> RuntimeError:
    VIOLATIONS.append(msg)
    return RuntimeError(msg)


def _cstr(value: Any, where: str, arg: int, allow_none: bool = True) -> Optional[str]:
    """A ``const char *`` argument as SWIG 4 converts it (str only; None is NULL)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise TypeError(f"in method '{where}', argument {arg} of type 'char const *'")
    return value


def _charpp(value: Any) -> Optional[list[str]]:
    """A ``char **`` argument (cmpi_defs.i typemap)."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise TypeError("expected list argument")
    out = []
    for item in value:
        if STRICT_BYTES_PLIST:
            if not isinstance(item, bytes):
                raise TypeError("list contains non-string")
            out.append(item.decode("utf-8"))
        else:
            if not isinstance(item, str):
                raise TypeError("list contains non-string")
            out.append(item)
    return out


def _check(obj: Any, cls: type, where: str, arg: int, allow_none: bool = False) -> Any:
    if obj is None and allow_none:
        return None
    if not isinstance(obj, cls):
        raise TypeError(f"in method '{where}', argument {arg} of type "
                        f"'{cls.__name__} *'")
    return obj


def _ctype(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFF:
        raise TypeError(f"in method '{where}', argument of type 'CMPIType'")
    return value


# --------------------------------------------------------------------------
# exceptions


class CMPIException(Exception):
    """%exceptionclass CMPIException: raised by RAISE_IF on a failed CMPI call."""

    def __init__(self, error_code: int = 0, description: Optional[str] = None):
        super().__init__(error_code, description)
        self._code = error_code
        self._desc = description

    def get_error_code(self) -> int:
        return self._code

    def get_description(self) -> Optional[str]:
        return self._desc


def _raise(rc: int, msg: Optional[str] = None):
    raise CMPIException(rc, msg)


# --------------------------------------------------------------------------
# SWIG's object model: proxies, bare SwigPyObjects, the type table


#: Whether the SWIG type table of the CIM server's libpy3CmpiProvider.so is set
#: up: that happens when *its* PyInit__cmpi runs and cmpi.py registers the
#: proxy classes, i.e. when ``cmpi`` is imported with the server's library as
#: ``_cmpi``.  Until then SWIG_NewPointerObj makes bare SwigPyObjects.
SWIG_TYPES_READY = True

#: C pointers of the objects handed out as SWIG objects: int(SwigPyObject) -> object.
_POINTERS: "weakref.WeakValueDictionary[int, Any]" = weakref.WeakValueDictionary()


class SwigPyObject:
    """A bare SWIG object: a pointer and its type, no methods of the CMPI type.

    ``int()`` gives the pointer (SwigPyObject_long), ``repr()`` names the type.
    Every other attribute is missing, as on the real thing:
    ``'SwigPyObject' object has no attribute 'new_object_path'``.
    """

    __slots__ = ("_target", "__weakref__")

    def __init__(self, target: Any):
        object.__setattr__(self, "_target", target)
        _POINTERS[id(target)] = target

    def __int__(self) -> int:
        return id(self._target)

    def __repr__(self) -> str:
        return (f"<Swig Object of type '{type(self._target).__name__} *' at "
                f"{id(self._target):#x}>")

    def __getattr__(self, name: str):
        raise AttributeError(f"'SwigPyObject' object has no attribute '{name}'")

    def __setattr__(self, name: str, value: Any):
        raise AttributeError(f"'SwigPyObject' object has no attribute '{name}'")


class _Proxy:
    """What the SWIG proxy classes have in common: ``this``, the SwigPyObject.

    Setting ``this`` (what SWIG_Python_NewShadowInstance does, and what the
    adapter does to re-wrap a bare object) makes the proxy point at the same C
    object: here it shares the object's state.
    """

    @property
    def this(self) -> SwigPyObject:
        return SwigPyObject(self)

    @this.setter
    def this(self, value: Any) -> None:
        if not isinstance(value, SwigPyObject):
            raise TypeError("this must be a SwigPyObject")
        target = value._target
        if not isinstance(target, type(self)):
            raise _violation(f"{type(self).__name__} proxy made for a "
                             f"{type(target).__name__} pointer")
        object.__setattr__(self, "__dict__", target.__dict__)


def new_pointer_obj(obj: Any) -> Any:
    """SWIG_NewPointerObj: the proxy if the type table is set up, else a bare object."""
    if SWIG_TYPES_READY or not isinstance(obj, _Proxy):
        return obj
    return SwigPyObject(obj)


def object_at(ptr: int) -> Any:
    """The object behind a pointer handed out as a SWIG object (None if unknown)."""
    return _POINTERS.get(ptr)


# --------------------------------------------------------------------------
# simple encapsulated types


class CMPIString(_Proxy):
    def __init__(self, text: Optional[str]):
        self._text = text

    def __str__(self):  # %rename("__str__") string(): may return None (NULL chars)
        return self._text


_DT_RE = re.compile(r"^(\d{14}\.\d{6}[+-]\d{3}|\d{14}\.\d{6}:000)$")


class CMPIDateTime(_Proxy):
    def __init__(self, text: str):
        if not _DT_RE.match(text.replace("*", "0")):
            _raise(CMPI_RC_ERR_INVALID_PARAMETER, f"bad datetime {text!r}")
        self._text = text

    def __str__(self):
        return self._text

    def is_interval(self) -> int:
        return 1 if self._text[21] == ":" else 0

    def to_i(self) -> int:
        if self.is_interval():
            t = self._text
            days, h, m, s, us = int(t[0:8]), int(t[8:10]), int(t[10:12]), int(t[12:14]), \
                int(t[15:21])
            return (((days * 24 + h) * 60 + m) * 60 + s) * 1000000 + us
        return 0


class CMPISelectExp(_Proxy):
    def __init__(self, broker, query: str, language: str, keys=None):
        _check(broker, CMPIBroker, "new_CMPISelectExp", 1)
        self._query = _cstr(query, "new_CMPISelectExp", 2, False)
        self._lang = _cstr(language, "new_CMPISelectExp", 3, False)
        self._keys = _charpp(keys)

    def __str__(self):
        return self._query

    def filter(self):
        return self._keys

    def match(self, instance) -> int:
        _check(instance, CMPIInstance, "CMPISelectExp_match", 2)
        m = re.search(r"\bfrom\s+(\w+)", self._query, re.I)
        return 1 if m and m.group(1).lower() == instance._path._classname.lower() else 0


# --------------------------------------------------------------------------
# values


#: Payload of a key binding the path's class declares but the client gave no value for
#: (Pegasus keeps an object path as an instance of its class: see CMPIBroker.request_path).
_UNSET_KEY = object()


class _Cell:
    """A stored CMPI value, as the server keeps it (copied, typed)."""

    __slots__ = ("type", "state", "payload")

    def __init__(self, ctype: int, state: int, payload: Any):
        self.type = ctype
        self.state = state
        self.payload = payload


class CMPIValue:
    """The union _CMPIValue.  Members holding owned proxies are held weakly."""

    _WEAK = ("string", "array", "dateTime", "args")
    _POINTERS = {"inst": None, "ref": None, "string": CMPIString, "array": None,
                 "dateTime": CMPIDateTime, "args": None, "filter": CMPISelectExp,
                 "Enum": None}

    def __init__(self):
        object.__setattr__(self, "_field", None)
        object.__setattr__(self, "_val", None)
        object.__setattr__(self, "_strong", False)

    def __setattr__(self, name, value):
        if name in _INT_RANGES:
            if not isinstance(value, int):
                raise TypeError(f"in method '_CMPIValue_{name}_set', argument 2 of type "
                                f"'{name}'")
            lo, hi = _INT_RANGES[name]
            if not lo <= int(value) <= hi:
                raise OverflowError(f"in method '_CMPIValue_{name}_set', argument 2 of "
                                    f"type '{name}'")
            value = int(value)
        elif name in _REAL_FIELDS:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TypeError(f"in method '_CMPIValue_{name}_set', argument 2 of type "
                                f"'{name}'")
            value = float(value)
        elif name == "chars":
            value = _cstr(value, "_CMPIValue_chars_set", 2)
        elif name in self._POINTERS:
            want = {"inst": CMPIInstance, "ref": CMPIObjectPath, "array": CMPIArray,
                    "args": CMPIArgs, "Enum": CMPIEnumeration}.get(name) or self._POINTERS[name]
            _check(value, want, f"_CMPIValue_{name}_set", 2, allow_none=True)
            if name in self._WEAK and value is not None and not self._strong:
                value = weakref.ref(value)
        else:
            raise AttributeError(f"CMPIValue has no member {name!r}")
        object.__setattr__(self, "_field", name)
        object.__setattr__(self, "_val", value)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in _INT_RANGES and name not in _REAL_FIELDS and \
                name not in self._POINTERS and name != "chars":
            raise AttributeError(f"CMPIValue has no member {name!r}")
        if self._field != name:
            # Reading another member of a union: garbage in C.  Pointers read as
            # NULL here, numbers as 0, which is what a fresh value holds.
            return None if name in self._POINTERS or name == "chars" else 0
        val = self._val
        if isinstance(val, weakref.ref):
            obj = val()
            if obj is None:
                raise _violation(f"CMPIValue.{name} points to a released object "
                                 f"(its proxy was dropped before the server copied it)")
            return obj
        return val

    # -- server side ------------------------------------------------------------

    def _cell(self, ctype: int) -> _Cell:
        """Copy the value out as the server does on set_property/add_key/set."""
        base = ctype & ~CMPI_ARRAY
        if ctype & CMPI_ARRAY:
            field = "array"
        else:
            field = _TYPE_FIELD.get(base)
            if field is None:
                raise _violation(f"unsupported CMPIType {ctype:#x}")
        if self._field != field:
            raise _violation(f"CMPIValue holds member {self._field!r} but the CMPIType "
                             f"{ctype:#x} reads {field!r}")
        val = getattr(self, field)
        if field == "array":
            if val._type != base:
                raise _violation(f"array of type {val._type:#x} passed as {ctype:#x}")
            return _Cell(ctype, CMPI_goodValue, val._copy_cells())
        if field == "string":
            return _Cell(ctype, CMPI_goodValue, str(val))
        if field == "dateTime":
            return _Cell(ctype, CMPI_goodValue, str(val))
        if field in ("inst", "ref"):
            return _Cell(ctype, CMPI_goodValue, val._clone())
        return _Cell(ctype, CMPI_goodValue, val)


def _null_cell(ctype: int) -> _Cell:
    return _Cell(ctype, CMPI_nullValue, None)


def _cell_from(value: Optional[CMPIValue], ctype: int, where: str) -> _Cell:
    _ctype(ctype, where)
    if value is None:
        return _null_cell(ctype)
    _check(value, CMPIValue, where, 3)
    return value._cell(ctype)


class _ValueView:
    """CMPIData.value: a pointer into the CMPIData."""

    def __init__(self, data: "CMPIData"):
        object.__setattr__(self, "_data", weakref.ref(data))

    def __getattr__(self, name):
        data = self._data()
        if data is None:
            raise _violation(f"CMPIData.value.{name} read after its CMPIData was freed")
        return getattr(data._value_obj, name)

    def __setattr__(self, name, value):
        data = self._data()
        if data is None:
            raise _violation("CMPIData.value written after its CMPIData was freed")
        setattr(data._value_obj, name, value)


class CMPIData:
    """The struct _CMPIData (type, state, value) and its %extend methods."""

    __slots__ = ("type", "state", "_value_obj", "__weakref__")

    def __init__(self, data: "CMPIData"):  # %extend _CMPIData(CMPIData *data): clone
        _check(data, CMPIData, "new_CMPIData", 1)
        self.type, self.state, self._value_obj = data.type, data.state, data._value_obj

    @classmethod
    def _from_cell(cls, cell: Optional[_Cell], found: bool = True) -> "CMPIData":
        d = object.__new__(cls)
        val = CMPIValue()
        object.__setattr__(val, "_strong", True)
        if cell is None or not found:
            d.type, d.state = CMPI_null, CMPI_notFound | CMPI_nullValue
            d._value_obj = val
            return d
        d.type, d.state = cell.type, cell.state
        if cell.state & CMPI_nullValue:
            d._value_obj = val
            return d
        base = cell.type & ~CMPI_ARRAY
        if cell.type & CMPI_ARRAY:
            val.array = CMPIArray._from_cells(base, cell.payload)
        else:
            field = _TYPE_FIELD[base]
            payload = cell.payload
            if field == "string":
                payload = CMPIString(payload)
            elif field == "dateTime":
                payload = CMPIDateTime(payload)
            elif field in ("inst", "ref"):
                payload = payload._clone()
            object.__setattr__(val, "_field", field)
            object.__setattr__(val, "_val", payload)
        d._value_obj = val
        return d

    @property
    def value(self):
        return _ValueView(self)

    def is_null(self) -> int:
        return 1 if self.state & CMPI_nullValue else 0

    def is_key(self) -> int:
        return 1 if self.state & CMPI_keyValue else 0

    def is_array(self) -> int:
        return 1 if self.type & CMPI_ARRAY else 0

    def _value(self):
        """data_value(): reals come out as None, datetimes raise (cmpi.i)."""
        if self.state & (CMPI_nullValue | CMPI_notFound) or self.type == CMPI_null:
            return None
        if self.type & CMPI_ARRAY:
            return [d._value() for d in (self._value_obj.array.at(i)
                                         for i in range(self._value_obj.array.size()))]
        base = self.type
        if base in (CMPI_real32, CMPI_real64):
            return None
        if base == CMPI_dateTime:
            raise RuntimeError("CMPIDate conversion not implemented")
        if base == CMPI_string:
            return str(self._value_obj.string)
        if base == CMPI_boolean:
            return bool(self._value_obj.boolean)
        return getattr(self._value_obj, _TYPE_FIELD[base])


class CMPIArray(_Proxy):
    def __init__(self, *a, **k):
        raise AttributeError("No constructor defined")

    @classmethod
    def _new(cls, count: int, ctype: int, server: str = "RequestHandler") -> "CMPIArray":
        arr = object.__new__(cls)
        arr._type = ctype & ~CMPI_ARRAY
        arr._cells = [_null_cell(arr._type) for _ in range(count)]   # new elements are NULL
        arr._server = server
        return arr

    @classmethod
    def _from_cells(cls, ctype: int, cells: list) -> "CMPIArray":
        arr = cls._new(0, ctype)
        arr._cells = [_Cell(c.type, c.state, c.payload) for c in cells]
        return arr

    def _copy_cells(self) -> list:
        return [_Cell(c.type, c.state, c.payload._clone() if hasattr(c.payload, "_clone")
                      else c.payload) for c in self._cells]

    def size(self) -> int:
        return len(self._cells)

    def cmpi_type(self) -> int:
        return self._type

    def at(self, index: int) -> CMPIData:
        if not 0 <= index < len(self._cells):
            _raise(CMPI_RC_ERR_FAILED, "array index out of range")
        return CMPIData._from_cell(self._cells[index])

    def set(self, index: int, value: Optional[CMPIValue], ctype: int) -> None:
        """CMSetArrayElementAt, as the server that made the array implements it.

        A NULL element is set with type CMPI_null (any value): both servers
        then keep the array's type with the NULL state.  A NULL *value
        pointer* is refused by Pegasus (CMPI_Array.cpp: INVALID_PARAMETER);
        sfcb (array.c setElementAt) makes it NULL for encapsulated types but
        stores a good value 0 for numbers and booleans.
        """
        _ctype(ctype, "CMPIArray_set")
        pegasus = self._server == "Pegasus"
        if value is None and pegasus:
            _raise(CMPI_RC_ERR_INVALID_PARAMETER, "arraySetElementAt(): NULL value")
        if not 0 <= index < len(self._cells):
            _raise(CMPI_RC_ERR_NO_SUCH_PROPERTY if pegasus else CMPI_RC_ERR_FAILED,
                   "array index out of range")
        if value is not None:
            _check(value, CMPIValue, "CMPIArray_set", 3)
        if ctype == CMPI_null:
            self._cells[index] = _null_cell(self._type)
            return
        if ctype != self._type:
            _raise(CMPI_RC_ERR_TYPE_MISMATCH if pegasus else CMPI_RC_ERR_FAILED,
                   f"element type {ctype:#x} in array of {self._type:#x}")
        if value is None:
            if ctype & CMPI_ENC:
                self._cells[index] = _null_cell(self._type)
            else:
                self._cells[index] = _Cell(self._type, CMPI_goodValue, 0)   # sfcb
            return
        self._cells[index] = _cell_from(value, ctype, "CMPIArray_set")


class CMPIEnumeration(_Proxy):
    """hasNext()/next()/toArray(); deliberately no __iter__ and no __next__."""

    def __init__(self, *a, **k):
        raise AttributeError("No constructor defined")

    @classmethod
    def _new(cls, cells: list, ctype: int) -> "CMPIEnumeration":
        e = object.__new__(cls)
        e._cells = list(cells)
        e._type = ctype
        e._pos = 0
        return e

    def hasNext(self) -> int:  # noqa: N802
        return 1 if self._pos < len(self._cells) else 0

    def next(self) -> CMPIData:  # %rename("next") next_element
        if self._pos >= len(self._cells):
            _raise(CMPI_RC_ERR_FAILED, "no more elements")
        cell = self._cells[self._pos]
        self._pos += 1
        return CMPIData._from_cell(cell)

    def toArray(self) -> CMPIArray:  # noqa: N802
        return CMPIArray._from_cells(self._type, self._cells)


# --------------------------------------------------------------------------
# object paths, instances, args, context, result


def _chars(cell: _Cell) -> str:
    """A key value as sfcb_value2Chars writes it."""
    if cell.state & CMPI_nullValue:
        return ""
    if cell.type in (CMPI_string, CMPI_chars, CMPI_dateTime):
        text = str(cell.payload).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'
    if cell.type == CMPI_boolean:
        return "true" if cell.payload else "false"
    if cell.type == CMPI_ref:
        return f'"{cell.payload}"'
    return str(cell.payload)


class CMPIObjectPath(_Proxy):
    def __init__(self, broker, ns, cn=None):
        _check(broker, CMPIBroker, "new_CMPIObjectPath", 1)
        _cstr(ns, "new_CMPIObjectPath", 2, False)
        if cn is None:
            if ":" not in ns:
                raise ValueError("Missing ':' between namespace and classname")
            ns, rest = ns.split(":", 1)
            cn, _, keys = rest.partition(".")
            self._init(ns, cn)
            for item in filter(None, keys.split(",")):
                k, _, v = item.partition("=")
                self._keys[k] = _Cell(CMPI_string, CMPI_keyValue, v.strip('"'))
        else:
            self._init(ns, _cstr(cn, "new_CMPIObjectPath", 3))

    def _init(self, ns, cn):
        self._ns = ns
        self._classname = cn
        self._host = None
        self._keys: dict[str, _Cell] = {}

    @classmethod
    def _new(cls, ns, cn) -> "CMPIObjectPath":
        p = object.__new__(cls)
        p._init(ns, cn)
        return p

    def _clone(self) -> "CMPIObjectPath":
        p = CMPIObjectPath._new(self._ns, self._classname)
        p._host = self._host
        p._keys = {k: _Cell(c.type, c.state, c.payload) for k, c in self._keys.items()}
        return p

    def __str__(self):
        """toString(), as sfcb writes it (sfcb_pathToChars): ``[ns:]Class[.k=v,...]``."""
        keys = ",".join(f"{k}={_chars(c)}" for k, c in self._keys.items()
                        if c.payload is not _UNSET_KEY)
        ns = f"{self._ns}:" if self._ns else ""
        return f"{ns}{self._classname}" + (f".{keys}" if keys else "")

    def add_key(self, name, value, ctype):
        _cstr(name, "CMPIObjectPath_add_key", 2, False)
        cell = _cell_from(value, ctype, "CMPIObjectPath_add_key")
        cell.state |= CMPI_keyValue
        self._keys[name] = cell

    def get_key(self, name) -> CMPIData:
        _cstr(name, "CMPIObjectPath_get_key", 2, False)
        for k, cell in self._keys.items():
            if k.lower() == name.lower() and cell.payload is not _UNSET_KEY:
                return CMPIData._from_cell(cell)
        return CMPIData._from_cell(None, found=False)

    def get_key_at(self, index: int):
        items = list(self._keys.items())
        if not 0 <= index < len(items):
            _raise(CMPI_RC_ERR_NO_SUCH_PROPERTY, "key index out of range")
        name, cell = items[index]
        if cell.payload is _UNSET_KEY:
            # Pegasus (CMPI_ObjectPath.cpp refGetKeyAt): SCMO_NULL_VALUE -> NO_SUCH_PROPERTY
            _raise(CMPI_RC_ERR_NO_SUCH_PROPERTY, None)
        return (CMPIData._from_cell(cell), name)

    def key_count(self) -> int:
        return len(self._keys)

    def keys(self):
        raise NameError("name 'xrange' is not defined")

    def namespace(self):
        if self._ns is None:
            raise _violation("CMPIObjectPath.namespace() on a path without namespace: "
                             "strdup(NULL) crashes the provider process")
        return self._ns

    def set_namespace(self, nm):
        self._ns = _cstr(nm, "CMPIObjectPath_set_namespace", 2)

    def hostname(self):
        if self._host is None:
            raise _violation("CMPIObjectPath.hostname() on a path without host: "
                             "strdup(NULL) crashes the CIM server")
        return self._host

    def set_hostname(self, hostname):
        self._host = _cstr(hostname, "CMPIObjectPath_set_hostname", 2)

    def classname(self):
        return self._classname

    def set_classname(self, classname):
        self._classname = _cstr(classname, "CMPIObjectPath_set_classname", 2)

    def replace_from(self, src):
        _check(src, CMPIObjectPath, "CMPIObjectPath_replace_from", 2)
        self._ns, self._classname = src._ns, src._classname

    def replace_all_from(self, src):
        self.replace_from(src)
        self._host = src._host

    def _key_values(self) -> dict:
        return {k.lower(): (c.type, c.payload) for k, c in self._keys.items()}


class CMPIInstance(_Proxy):
    def __init__(self, broker, path):
        _check(broker, CMPIBroker, "new_CMPIInstance", 1)
        _check(path, CMPIObjectPath, "new_CMPIInstance", 2)
        self._init(path)

    def _init(self, path, decl: Optional[dict] = None):
        self._path = path._clone()
        self._props: dict[str, _Cell] = {}
        self._filter: Optional[set] = None
        self._decl = decl          # the class's declarations, where the server checks them
        self._dropped: list[str] = []
        #: The class's key names, where the server knows the class (see _result_path).
        self._key_names: Optional[list[str]] = None
        #: A copy made by clone(): the provider's own, to release (InstanceCopier).
        self._owned = False
        self._released = False
        #: The broker's name of the server that made it (see CMPIResult.return_instance).
        self._server: Optional[str] = None

    @classmethod
    def _new(cls, path, decl: Optional[dict] = None) -> "CMPIInstance":
        i = object.__new__(cls)
        i._init(path, decl)
        return i

    def _clone(self) -> "CMPIInstance":
        if self._released:
            raise _violation("a released CMPIInstance used (freed memory in both servers)")
        i = CMPIInstance._new(self._path, self._decl)
        i._props = {k: _Cell(c.type, c.state, c.payload._clone() if hasattr(c.payload, "_clone")
                             else c.payload) for k, c in self._props.items()}
        i._key_names = self._key_names
        i._server = self._server
        i._filter = None if self._filter is None else set(self._filter)
        return i

    def _result_path(self) -> "CMPIObjectPath":
        """The instance's path as the server gives it (getObjectPath, and the path of a
        returned instance): a key the path has no value for is taken from its key
        property where that is set and not NULL -- sfcb makes the path of an instance
        from its key properties, Pegasus fills the keys not set from them
        (SCMOInstance::buildKeyBindingsFromProperties in resultReturnInstance and
        instGetObjectPath)."""
        path = self._path._clone()
        for k in self._key_names or ():
            have = next((c for n, c in path._keys.items() if n.lower() == k.lower()), None)
            if have is not None and have.payload is not _UNSET_KEY:
                continue
            cell = self._get(k)
            if cell is not None and not cell.state & CMPI_nullValue:
                path._keys = {n: c for n, c in path._keys.items() if n.lower() != k.lower()}
                path._keys[k] = _Cell(cell.type, cell.state | CMPI_keyValue, cell.payload)
        return path

    def _check_declared(self, name: str, ctype: int) -> bool:
        """Pegasus (SCMOInstance::setPropertyWithOrigin): the CMPI type must be the
        declared one, also for NULLs; EmbeddedInstance/EmbeddedObject properties
        are instances (CMPI_instance); an undeclared property is dropped."""
        decl = self._decl.get(name.lower())
        if decl is None:
            self._dropped.append(name)   # "Property ... not set on the created instance"
            return False
        _dname, dtype, darray, _default = decl
        base = ctype & ~CMPI_ARRAY
        if base == CMPI_chars:
            base = CMPI_string
        if dtype == "object":
            ok = base == CMPI_instance
        else:
            ok = base == dtype
        if not ok or bool(ctype & CMPI_ARRAY) != darray:
            _raise(CMPI_RC_ERR_INVALID_DATA_TYPE,
                   f"property {name}: CMPI type {ctype:#x} is not the declared type")
        return True

    def set_property(self, name, value, ctype):
        _cstr(name, "CMPIInstance_set_property", 2, False)
        if self._released:
            raise _violation("set_property on a released CMPIInstance (freed memory)")
        cell = _cell_from(value, ctype, "CMPIInstance_set_property")
        if self._decl is not None and not self._check_declared(name, ctype):
            return
        if self._filter is not None and name.lower() not in self._filter:
            return
        for k in list(self._props):
            if k.lower() == name.lower():
                del self._props[k]
        self._props[name] = cell
        if name.lower() in {k.lower() for k in self._path._keys}:
            for k in list(self._path._keys):
                if k.lower() == name.lower():
                    self._path._keys[k] = _Cell(cell.type, cell.state | CMPI_keyValue,
                                                cell.payload)

    def set_property_with_origin(self, name, value, ctype, origin):
        self.set_property(name, value, ctype)

    def get_property(self, name) -> CMPIData:
        _cstr(name, "CMPIInstance_get_property", 2, False)
        for k, cell in self._props.items():
            if k.lower() == name.lower():
                return CMPIData._from_cell(cell)
        _raise(CMPI_RC_ERR_NO_SUCH_PROPERTY, f"No such property: {name}")

    def get_property_at(self, index: int):
        items = list(self._props.items())
        if not 0 <= index < len(items):
            _raise(CMPI_RC_ERR_NO_SUCH_PROPERTY, "property index out of range")
        name, cell = items[index]
        return (CMPIData._from_cell(cell), name)

    def property_count(self) -> int:
        return len(self._props)

    def objectpath(self) -> CMPIObjectPath:
        return self._result_path()

    def set_objectpath(self, path):
        _check(path, CMPIObjectPath, "CMPIInstance_set_objectpath", 2)
        self._path = path._clone()

    def set_property_filter(self, properties):
        # cmpi-bindings adds the path's keys to the list; sfcb rebuilds the instance
        # with the listed properties only (__ift_internal_setPropertyFilter), and
        # later set_property() of others is ignored.
        props = _charpp(properties)
        self._filter = None if props is None else \
            {p.lower() for p in props} | {k.lower() for k in self._path._keys}
        if self._filter is not None:
            self._props = {k: c for k, c in self._props.items() if k.lower() in self._filter}

    # helpers for tests
    def _get(self, name):
        for k, cell in self._props.items():
            if k.lower() == name.lower():
                return cell
        return None


#: The copies InstanceCopier.clone() made that nobody released yet ({id: instance}): a
#: leak in both servers (a copy is unlinked from the call's objects: sfcb's
#: MEM_NOT_TRACKED, Pegasus' CMPI_Object::unlink), checked at the end of every test.
UNRELEASED: dict[int, CMPIInstance] = {}


class InstanceCopier:
    """What kvm_providers.cmpi.templates.InstanceCopier does in a server, here: a
    CMPIInstance's ``clone`` (a copy of everything it holds: sfcb's ClInstanceRebuild,
    Pegasus' SCMOInstance::clone; not tracked, so never freed by the server) and
    ``release`` (frees it: using it afterwards, or releasing it twice, is a crash)."""

    def __init__(self, cmpi: Any = None):
        self.clones = 0
        self.releases = 0

    def clone(self, cinst, box):
        _check(cinst, CMPIInstance, "CMPIInstance clone", 1)
        _check(box, CMPIValue, "CMPIValue_uint64_set", 1)
        new = cinst._clone()
        new._owned = True
        UNRELEASED[id(new)] = new
        self.clones += 1
        return new

    def release(self, cinst):
        _check(cinst, CMPIInstance, "CMPIInstance release", 1)
        if cinst._released:
            raise _violation("a CMPIInstance released twice (a double free)")
        cinst._released = True
        UNRELEASED.pop(id(cinst), None)
        self.releases += 1


class TextValue:
    """What kvm_providers.cmpi.chars.TextValue is in a server, here: a CMPIValue whose
    string member is a stand-in CMPIString (no broker object: not made, kept or
    released) pointed at each text right before a set_property, which copies it.  The
    stand-in lives as long as what ``point`` returns (held weakly by the value, as a
    CMPIString: dropped before the server read it, the read fails); ``points``
    counts the texts set through it."""

    def __init__(self, conv: Any = None):
        self.value = CMPIValue()
        self.points = 0
        TEXT_VALUES.append(self)

    def point(self, text: str) -> Any:
        text.encode()               # UnicodeEncodeError where SWIG refuses the text
        stand_in = CMPIString(text)
        self.value.string = stand_in
        self.points += 1
        if not any(tv is self for tv in TEXT_VALUES):
            TEXT_VALUES.append(self)    # (converters reuse them: listed again after a clear)
        return stand_in


#: Every TextValue made (the tests count their texts).
TEXT_VALUES: list = []


class CMPIArgs(_Proxy):
    def __init__(self, *a, **k):
        raise AttributeError("No constructor defined")

    @classmethod
    def _new(cls) -> "CMPIArgs":
        a = object.__new__(cls)
        a._args: dict[str, _Cell] = {}
        return a

    def set(self, name, value, ctype):
        if not isinstance(name, str):
            raise TypeError("in method 'CMPIArgs_set', argument 2 of type 'char *'")
        self._args[name] = _cell_from(value, ctype, "CMPIArgs_set")

    def get(self, name) -> CMPIData:
        _cstr(name, "CMPIArgs_get", 2, False)
        for k, cell in self._args.items():
            if k.lower() == name.lower():
                return CMPIData._from_cell(cell)
        _raise(CMPI_RC_ERR_NOT_FOUND, f"No such argument: {name}")

    def get_arg_at(self, index: int):
        items = list(self._args.items())
        if not 0 <= index < len(items):
            _raise(CMPI_RC_ERR_NOT_FOUND, "argument index out of range")
        name, cell = items[index]
        return (CMPIData._from_cell(cell), name)

    def arg_count(self) -> int:
        return len(self._args)


class CMPIContext(_Proxy):
    def __init__(self, *a, **k):
        raise AttributeError("No constructor defined")

    @classmethod
    def _new(cls, entries: Optional[dict] = None, thread=None) -> "CMPIContext":
        c = object.__new__(cls)
        c._entries: dict[str, _Cell] = dict(entries or {})
        c._thread = thread          # the thread this context may be used in
        c._prepared = False
        return c

    def add_entry(self, name, data, ctype):
        _cstr(name, "CMPIContext_add_entry", 2, False)
        self._entries[name] = _cell_from(data, ctype, "CMPIContext_add_entry")

    def get_entry(self, name) -> CMPIData:
        _cstr(name, "CMPIContext_get_entry", 2, False)
        if name not in self._entries:
            _raise(CMPI_RC_ERR_NO_SUCH_PROPERTY, f"No such context entry: {name}")
        return CMPIData._from_cell(self._entries[name])

    def get_entry_at(self, index: int):
        items = list(self._entries.items())
        if not 0 <= index < len(items):
            _raise(CMPI_RC_ERR_NO_SUCH_PROPERTY, "entry index out of range")
        name, cell = items[index]
        return (name, CMPIData._from_cell(cell))

    def get_entry_count(self) -> int:
        return len(self._entries)


class CMPIResult(_Proxy):
    """What the server collects from a provider call."""

    def __init__(self, *a, **k):
        raise AttributeError("No constructor defined")

    @classmethod
    def _new(cls) -> "CMPIResult":
        r = object.__new__(cls)
        r.instances, r.paths, r.data, r.done_count = [], [], [], 0
        return r

    def return_instance(self, instance_disown):
        _check(instance_disown, CMPIInstance, "CMPIResult_return_instance", 2)
        if self.done_count:
            raise _violation("return_instance after done()")
        if instance_disown._owned and instance_disown._server != "Pegasus":
            # Traced in sfcb 1.3.18: a copy (clone: ClInstanceRebuild) with properties
            # set on it and returned kills the request handler (general protection
            # fault in ClObjectGetClString reading the instance's string buffer).
            raise _violation("sfcb's request handler crashes on a cloned instance "
                             "changed and returned (ClObjectGetClString)")
        # Both servers copy the instance (sfcb serializes it into the response,
        # Pegasus keeps its own SCMOInstance), its keys filled from its key properties.
        inst = instance_disown._clone()
        inst._path = instance_disown._result_path()
        self.instances.append(inst)

    def return_objectpath(self, path_disown):
        _check(path_disown, CMPIObjectPath, "CMPIResult_return_objectpath", 2)
        if self.done_count:
            raise _violation("return_objectpath after done()")
        self.paths.append(path_disown._clone())

    def return_data(self, value, ctype):
        if value is None:
            raise _violation("CMReturnData with a NULL value dereferences NULL in sfcb")
        self.data.append(_cell_from(value, ctype, "CMPIResult_return_data"))

    def done(self):
        self.done_count += 1


# --------------------------------------------------------------------------
# the broker: object factory, logging, upcalls, indications, threads


def _class_is_a(broker, cn: str, parent: str) -> bool:
    cur = cn.lower()
    seen = set()
    while cur and cur not in seen:
        if cur == parent.lower():
            return True
        seen.add(cur)
        cur = broker.superclasses.get(cur, "").lower()
    return False


class CMPIBroker(_Proxy):
    """The broker, with an in-memory CIM server behind it.

    ``repository``: {namespace: [CMPIInstance]} served by the upcalls;
    ``providers``: {lower-case class name: adapter object} to which upcalls for
    that class are routed (as a CIM server routes them to the provider);
    ``superclasses``: {lower-case class: superclass} for classPathIsA and
    polymorphic enumerations.
    """

    def __init__(self, name: str = "RequestHandler", log_supported: bool = True,
                 trace_supported: bool = True):
        #: "Pegasus" models OpenPegasus (CMPI_Broker*.cpp), anything else sfcb
        #: (sfcb's broker calls itself "RequestHandler").
        self._name = name
        #: {lower-case class: {lower-case property: (name, CMPI type or "object",
        #: is_array, default _Cell or None)}}: the classes the server knows.
        self.classes: dict[str, dict[str, tuple]] = {}
        #: Key property names of each declared class (with the inherited ones), in order.
        self.class_keys: dict[str, list[str]] = {}
        #: sfcb configured with --enable-optimized-enumeration (HAVE_OPTIMIZED_ENUMERATION).
        self.optimized_enumeration = False
        self.log_supported = log_supported
        self.trace_supported = trace_supported
        self.logs: list[tuple[int, str, str]] = []
        self.traces: list[tuple[int, str, str]] = []
        self.syslog: list[tuple[int, str, str]] = []
        self.indications: list[tuple[str, CMPIInstance, str]] = []
        self.repository: dict[str, list[CMPIInstance]] = {}
        self.providers: dict[str, Any] = {}
        self.superclasses: dict[str, str] = {}
        self.methods: dict[tuple[str, str], Any] = {}
        self.upcalls: list[tuple] = []
        #: sfcb's CMPISessionId of the contexts made now: one per client connection
        #: (sfcb's httpAdapter counts the connections it forks a handler for).
        self.session = 1
        self._lock = threading.RLock()

    # Two proxies of one broker (one re-wrapped) are the same broker.
    def __eq__(self, other):
        return getattr(other, "__dict__", None) is self.__dict__

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return id(self.__dict__)

    @property
    def is_pegasus(self) -> bool:
        return self._name == "Pegasus"

    # -- classes the server knows -------------------------------------------------

    def declare(self, cimclass, superclass_props: Optional[dict] = None) -> None:
        """Learn a pywbem CIMClass (its properties, types, qualifiers, defaults)."""
        props = dict(superclass_props or {})
        keys = list(self.class_keys.get(cimclass.superclass.lower(), [])) \
            if cimclass.superclass else []
        for prop in cimclass.properties.values():
            quals = {q.lower() for q in prop.qualifiers}
            if "key" in quals and prop.name.lower() not in {k.lower() for k in keys}:
                keys.append(prop.name)
            if "embeddedinstance" in quals:
                ctype: Any = CMPI_instance
            elif "embeddedobject" in quals:
                ctype = "object"
            else:
                ctype = _CIM_TYPES[prop.type]
            default = None
            if prop.value is not None:
                base = CMPI_string if ctype == "object" else ctype
                default = _Cell(base | (CMPI_ARRAY if prop.is_array else 0), CMPI_goodValue,
                                [_Cell(base, 0, v) for v in prop.value] if prop.is_array
                                else prop.value)
            props[prop.name.lower()] = (prop.name, ctype, bool(prop.is_array), default)
        self.classes[cimclass.classname.lower()] = props
        self.class_keys[cimclass.classname.lower()] = keys
        if cimclass.superclass:
            self.superclasses[cimclass.classname.lower()] = cimclass.superclass

    def request_path(self, path: "CMPIObjectPath") -> "CMPIObjectPath":
        """An object path from a client, as the server hands it to a provider.

        sfcb passes the keys the client sent.  Pegasus keeps the path as an
        instance of its class (SCMOInstance): ``key_count()`` counts every key
        the class declares, and ``get_key_at()`` of a key the client left out
        (all of them in a class path, e.g. a method invoked on the class)
        fails with CMPI_RC_ERR_NO_SUCH_PROPERTY.
        """
        keys = self.class_keys.get(path._classname.lower())
        if not self.is_pegasus or keys is None:
            return path
        p = path._clone()
        given = {k.lower(): (k, c) for k, c in path._keys.items()}
        p._keys = {}
        for k in keys:
            name, cell = given.pop(k.lower(), (k, _Cell(CMPI_string, CMPI_nullValue | CMPI_keyValue,
                                                        _UNSET_KEY)))
            p._keys[name] = cell
        p._keys.update(dict(given.values()))
        return p

    def complete_instance(self, cinst: "CMPIInstance") -> "CMPIInstance":
        """An instance from a client, as the server hands it to a provider.

        sfcb (with its default "default properties") and Pegasus add every
        property of the class the client left out: the class default if it
        has one, else NULL of the declared type.
        """
        decl = self.classes.get(cinst._path._classname.lower())
        if decl is None:
            return cinst
        have = {k.lower() for k in cinst._props}
        for lname, (name, ctype, is_array, default) in decl.items():
            if lname in have:
                continue
            if default is not None:
                cinst._props[name] = _Cell(default.type, default.state, default.payload)
            else:
                base = CMPI_instance if ctype == "object" else ctype
                cinst._props[name] = _null_cell(base | (CMPI_ARRAY if is_array else 0))
        return cinst

    # -- context checks -------------------------------------------------------

    def context(self, entries: Optional[dict] = None) -> CMPIContext:
        """A call context for the current thread (what the server passes a provider).

        Both servers add the principal and more (Pegasus ``CMPIInitNameSpace``,
        ``CMPIAcceptLanguage``; sfcb ``CMPIRole``); sfcb adds ``CMPISessionId``,
        a number per client *connection* (``session``: every request on a
        kept-alive connection has the same one, and so have the up-calls its
        providers make).  Nothing identifies one client request.
        """
        cells = {"CMPIPrincipal": _Cell(CMPI_string, CMPI_goodValue, "")}
        if not self.is_pegasus:
            cells["CMPISessionId"] = _Cell(CMPI_uint32, CMPI_goodValue, self.session)
        for k, v in (entries or {}).items():
            cells[k] = _Cell(CMPI_uint32 if isinstance(v, int) else CMPI_string,
                             CMPI_goodValue, v)
        return CMPIContext._new(cells, thread=threading.get_ident())

    def call_context(self, ctx: CMPIContext) -> CMPIContext:
        """The context of one provider call made for the request (or up-call) of `ctx`.

        Both servers make a new context for every call they make to a provider
        (Pegasus: a CMPI_ContextOnStack on the calling thread's stack, so even
        its address is reused by unrelated calls), with the request's entries.
        """
        return CMPIContext._new(dict(ctx._entries), thread=threading.get_ident())

    def _ctx(self, ctx, where: str) -> None:
        _check(ctx, CMPIContext, where, 2)
        if ctx._thread != threading.get_ident():
            raise _violation(f"{where}: context used in a thread it is not attached to "
                             f"(PrepareAttachThread/AttachThread missing)")

    # -- logging -----------------------------------------------------------------

    def LogMessage(self, severity, id, text):  # noqa: N802,A002
        _cstr(id, "CMPIBroker_LogMessage", 3)
        _cstr(text, "CMPIBroker_LogMessage", 4)
        with self._lock:
            if self.log_supported:
                self.logs.append((severity, id, text))
            else:
                self.syslog.append((severity, id, text))   # log_message() falls back

    def TraceMessage(self, level, component, text):  # noqa: N802
        _cstr(component, "CMPIBroker_TraceMessage", 3)
        _cstr(text, "CMPIBroker_TraceMessage", 4)
        with self._lock:
            if self.trace_supported:
                self.traces.append((level, component, text))
            else:
                sev = {CMPI_LEV_INFO: CMPI_SEV_INFO, CMPI_LEV_WARNING: CMPI_SEV_WARNING,
                       CMPI_LEV_VERBOSE: CMPI_SEV_INFO}.get(level, CMPI_SEV_ERROR)
                self.LogMessage(sev, component, text)

    def version(self) -> int:
        return 200

    def name(self) -> str:
        return self._name

    # -- factories ---------------------------------------------------------------

    def new_object_path(self, ns, cname) -> CMPIObjectPath:
        return CMPIObjectPath._new(_cstr(ns, "CMPIBroker_new_object_path", 2),
                                   _cstr(cname, "CMPIBroker_new_object_path", 3))

    def new_instance(self, path, allow_null_ns) -> CMPIInstance:
        _check(path, CMPIObjectPath, "CMPIBroker_new_instance", 2)
        if not isinstance(allow_null_ns, int):
            raise TypeError("in method 'CMPIBroker_new_instance', argument 3 of type 'int'")
        if not allow_null_ns and not path._ns:
            _raise(CMPI_RC_ERR_FAILED, "object path has no namespace")
        # Pegasus makes the instance from the class it finds in the namespace
        # and checks every property set on it against the declaration.
        decl = self.classes.get(path._classname.lower()) \
            if self.is_pegasus and path._ns else None
        inst = CMPIInstance._new(path, decl)
        inst._key_names = self.class_keys.get(path._classname.lower()) if path._ns else None
        inst._server = self._name
        # Both make it from the class (Pegasus' SCMOInstance reads an unset
        # property as the class default; sfcb, with its default "default
        # properties", adds every class property): every property is there,
        # at the class default or NULL of its type, before the provider sets any.
        cls = self.classes.get(path._classname.lower()) if path._ns else None
        for _lname, (name, ctype, is_array, default) in (cls or {}).items():
            if default is not None:
                inst._props[name] = _Cell(default.type, default.state, default.payload)
            else:
                base = CMPI_instance if ctype == "object" else ctype
                inst._props[name] = _null_cell(base | (CMPI_ARRAY if is_array else 0))
        return inst

    def new_args(self) -> CMPIArgs:
        return CMPIArgs._new()

    def new_datetime(self) -> CMPIDateTime:
        import datetime as _dt
        now = _dt.datetime.now(_dt.timezone.utc)
        return CMPIDateTime(now.strftime("%Y%m%d%H%M%S.%f") + "+000")

    def new_datetime_from_uint64(self, bintime, interval=0) -> CMPIDateTime:
        if interval:
            us = int(bintime)
            s, us = divmod(us, 1000000)
            m, s = divmod(s, 60)
            h, m = divmod(m, 60)
            d, h = divmod(h, 24)
            return CMPIDateTime(f"{d:08d}{h:02d}{m:02d}{s:02d}.{us:06d}:000")
        import datetime as _dt
        t = _dt.datetime.fromtimestamp(int(bintime) / 1e6, _dt.timezone.utc)
        return CMPIDateTime(t.strftime("%Y%m%d%H%M%S.%f") + "+000")

    def new_datetime_from_string(self, utc) -> CMPIDateTime:
        return CMPIDateTime(_cstr(utc, "CMPIBroker_new_datetime_from_string", 2, False))

    def new_string(self, s) -> CMPIString:
        return CMPIString(_cstr(s, "CMPIBroker_new_string", 2))

    def new_array(self, count, ctype) -> CMPIArray:
        _ctype(ctype, "CMPIBroker_new_array")
        return CMPIArray._new(int(count), ctype, self._name)

    def new_select_exp(self, query, lang, projection) -> CMPISelectExp:
        return CMPISelectExp(self, query, lang, projection)

    def bummer(self):
        _raise(CMPI_RC_ERR_FAILED, "Bummer! I didn't see that coming")

    # -- classes -------------------------------------------------------------------

    def classPathIsA(self, op, parent_class) -> int:  # noqa: N802
        _check(op, CMPIObjectPath, "CMPIBroker_classPathIsA", 2)
        _cstr(parent_class, "CMPIBroker_classPathIsA", 3, False)
        return 1 if _class_is_a(self, op._classname, parent_class) else 0

    # -- upcalls -------------------------------------------------------------------

    def register(self, classname: str, mi, association: bool = False,
                 superclass: Optional[str] = None) -> None:
        """Route upcalls for `classname` to the adapter object `mi`."""
        self.providers[classname.lower()] = (classname, mi, association)
        if superclass:
            self.superclasses[classname.lower()] = superclass

    def _provider(self, cn: str):
        entry = self.providers.get(cn.lower())
        return None if entry is None else entry[1]

    def _classes_under(self, cn: str) -> list[str]:
        known = set(self.providers) | set(self.superclasses) | \
            {i._path._classname.lower() for insts in self.repository.values() for i in insts}
        return sorted(c for c in known if _class_is_a(self, c, cn))

    @staticmethod
    def _serve(func):
        """Run one provider call as both servers do: on a thread of the server (sfcb's
        provider process and Pegasus' agent start one per request), while the
        caller -- the client, or a provider's up-call -- waits for it."""
        out: dict = {}

        def run():
            try:
                out["result"] = func()
            except BaseException as exc:  # pylint: disable=broad-except
                out["error"] = exc
        worker = threading.Thread(target=run, name="cimserver-call", daemon=True)
        worker.start()
        worker.join(120)
        if worker.is_alive():
            raise _violation("a provider call did not return in 120 s")
        if "error" in out:
            raise out["error"]
        return out["result"]

    def _call_provider(self, ctx, fname: str, *args) -> CMPIResult:
        rslt = CMPIResult._new()
        prov = args[-1]
        rc, msg = self._serve(lambda: target_call(prov, fname, self.call_context(ctx), rslt,
                                                  *args[:-1]))
        if rc != CMPI_RC_OK:
            _raise(rc, msg.decode() if isinstance(msg, bytes) else msg)
        return rslt

    def _instances(self, ctx, op, props, names_only: bool) -> list:
        """An enumeration: every provider of the class and its subclasses.

        Both servers call the provider of each registered class with that
        class's name (sfcb: REPLACE_CN in providerDrv.c); an sfcb built with
        optimized enumeration (``optimized_enumeration``) calls each provider
        once, with the class the client named.
        """
        out = []
        called: list = []
        for cn in self._classes_under(op._classname) or [op._classname.lower()]:
            prov = self._provider(cn)
            if prov is not None:
                if self.optimized_enumeration and not self.is_pegasus:
                    if any(p is prov for p in called):
                        continue
                    called.append(prov)
                    path = op._clone()
                else:
                    path = CMPIObjectPath._new(op._ns, self.providers[cn][0])
                if names_only:
                    out += self._call_provider(ctx, "enum_instance_names", path, prov).paths
                else:
                    out += self._call_provider(ctx, "enum_instances", path, props,
                                               prov).instances
            else:
                for inst in self.repository.get(op._ns, []):
                    if inst._path._classname.lower() == cn:
                        out.append(inst._path._clone() if names_only else inst._clone())
        return out

    def enumInstanceNames(self, ctx, op):  # noqa: N802
        self._ctx(ctx, "CMPIBroker_enumInstanceNames")
        _check(op, CMPIObjectPath, "CMPIBroker_enumInstanceNames", 3)
        self.upcalls.append(("enumInstanceNames", str(op)))
        paths = self._instances(ctx, op, None, True)
        return CMPIEnumeration._new([_Cell(CMPI_ref, 0, p) for p in paths], CMPI_ref)

    def enumInstances(self, ctx, op, properties):  # noqa: N802
        self._ctx(ctx, "CMPIBroker_enumInstances")
        _check(op, CMPIObjectPath, "CMPIBroker_enumInstances", 3)
        props = _charpp(properties)
        self.upcalls.append(("enumInstances", str(op), props))
        insts = self._instances(ctx, op, properties, False)
        return CMPIEnumeration._new([_Cell(CMPI_instance, 0, i) for i in insts], CMPI_instance)

    def _find(self, op) -> Optional[CMPIInstance]:
        want = op._key_values()
        for inst in self.repository.get(op._ns, []):
            if inst._path._classname.lower() == op._classname.lower() and \
                    inst._path._key_values() == want:
                return inst
        return None

    def getInstance(self, ctx, op, properties):  # noqa: N802
        self._ctx(ctx, "CMPIBroker_getInstance")
        _check(op, CMPIObjectPath, "CMPIBroker_getInstance", 3)
        props = _charpp(properties)
        self.upcalls.append(("getInstance", str(op), props))
        prov = self._provider(op._classname)
        if prov is not None:
            rslt = self._call_provider(ctx, "get_instance", op, properties, prov)
            return rslt.instances[0] if rslt.instances else None
        inst = self._find(op)
        if inst is None:
            _raise(CMPI_RC_ERR_NOT_FOUND, f"Instance not found: {op}")
        return inst._clone()

    def createInstance(self, ctx, op, inst):  # noqa: N802
        self._ctx(ctx, "CMPIBroker_createInstance")
        _check(op, CMPIObjectPath, "CMPIBroker_createInstance", 3)
        _check(inst, CMPIInstance, "CMPIBroker_createInstance", 4)
        self.upcalls.append(("createInstance", str(op)))
        new = inst._clone()
        new._path._ns = op._ns
        if self._find(new._path) is not None:
            _raise(CMPI_RC_ERR_ALREADY_EXISTS, f"Instance exists: {new._path}")
        self.repository.setdefault(op._ns, []).append(new)
        return new._path._clone()

    def modifyInstance(self, ctx, op, inst, properties):  # noqa: N802
        self._ctx(ctx, "CMPIBroker_modifyInstance")
        _check(inst, CMPIInstance, "CMPIBroker_modifyInstance", 4)
        props = _charpp(properties)
        self.upcalls.append(("modifyInstance", str(op), props))
        old = self._find(op)
        if old is None:
            _raise(CMPI_RC_ERR_NOT_FOUND, f"Instance not found: {op}")
        for name, cell in inst._props.items():
            if props is None or name.lower() in {p.lower() for p in props}:
                old._props[name] = cell

    def deleteInstance(self, ctx, op):  # noqa: N802
        self._ctx(ctx, "CMPIBroker_deleteInstance")
        self.upcalls.append(("deleteInstance", str(op)))
        old = self._find(op)
        if old is None:
            _raise(CMPI_RC_ERR_NOT_FOUND, f"Instance not found: {op}")
        self.repository[op._ns].remove(old)

    def execQuery(self, ctx, op, query, lang):  # noqa: N802
        _raise(CMPI_RC_ERR_NOT_SUPPORTED, "execQuery")

    def _assoc_providers(self, assoc: Optional[str]):
        """(class, adapter) of the association providers for AssocClass `assoc`.

        OpenPegasus calls the provider of every matching association class
        with that class's name.  sfcb calls each provider (name) once per
        request, with the client's AssocClass unchanged (None, or a superclass
        such as CIM_Component).
        """
        out = []
        seen: list = []
        for cn, (spelling, prov, is_assoc) in self.providers.items():
            if not is_assoc or (assoc is not None and not _class_is_a(self, cn, assoc)):
                continue
            if self.is_pegasus:
                out.append((spelling, prov))
            elif not any(p is prov for p in seen):
                seen.append(prov)
                out.append((assoc, prov))
        return out

    def associators(self, ctx, op, assocClass, resultClass, role, resultRole,  # noqa: N803
                    properties):
        self._ctx(ctx, "CMPIBroker_associators")
        props = _charpp(properties)
        self.upcalls.append(("associators", str(op), assocClass, resultClass, props))
        out = []
        for cn, prov in self._assoc_providers(assocClass):
            out += self._call_provider(ctx, "associators", op, cn, resultClass,
                                       role, resultRole, properties, prov).instances
        return CMPIEnumeration._new([_Cell(CMPI_instance, 0, i) for i in out], CMPI_instance)

    def associatorNames(self, ctx, op, assocClass, resultClass, role,  # noqa: N802,N803
                        resultRole):
        self._ctx(ctx, "CMPIBroker_associatorNames")
        self.upcalls.append(("associatorNames", str(op), assocClass, resultClass))
        out = []
        for cn, prov in self._assoc_providers(assocClass):
            out += self._call_provider(ctx, "associator_names", op, cn,
                                       resultClass, role, resultRole, prov).paths
        return CMPIEnumeration._new([_Cell(CMPI_ref, 0, p) for p in out], CMPI_ref)

    def references(self, ctx, op, resultClass, role, properties):  # noqa: N803
        self._ctx(ctx, "CMPIBroker_references")
        props = _charpp(properties)
        self.upcalls.append(("references", str(op), resultClass, props))
        out = []
        for cn, prov in self._assoc_providers(resultClass):
            out += self._call_provider(ctx, "references", op, cn, role,
                                       properties, prov).instances
        return CMPIEnumeration._new([_Cell(CMPI_instance, 0, i) for i in out], CMPI_instance)

    def referenceNames(self, ctx, op, resultClass, role):  # noqa: N802,N803
        self._ctx(ctx, "CMPIBroker_referenceNames")
        self.upcalls.append(("referenceNames", str(op), resultClass))
        out = []
        for cn, prov in self._assoc_providers(resultClass):
            out += self._call_provider(ctx, "reference_names", op, cn, role,
                                       prov).paths
        return CMPIEnumeration._new([_Cell(CMPI_ref, 0, p) for p in out], CMPI_ref)

    def invokeMethod(self, ctx, op, method, _in, out) -> CMPIData:  # noqa: N802
        self._ctx(ctx, "CMPIBroker_invokeMethod")
        _check(op, CMPIObjectPath, "CMPIBroker_invokeMethod", 3)
        _cstr(method, "CMPIBroker_invokeMethod", 4, False)
        _check(_in, CMPIArgs, "CMPIBroker_invokeMethod", 5)
        _check(out, CMPIArgs, "CMPIBroker_invokeMethod", 6)
        self.upcalls.append(("invokeMethod", str(op), method))
        prov = self._provider(op._classname)
        if prov is not None:
            rslt = CMPIResult._new()
            rc, msg = self._serve(lambda: target_call(prov, "invoke_method", self.call_context(ctx),
                                                      rslt, op, method, _in, out))
            if rc != CMPI_RC_OK:
                _raise(rc, msg.decode() if isinstance(msg, bytes) else msg)
            return CMPIData._from_cell(rslt.data[0] if rslt.data else None)
        func = self.methods.get((op._classname.lower(), method.lower()))
        if func is None:
            _raise(CMPI_RC_ERR_METHOD_NOT_FOUND, f"{op._classname}.{method}")
        return CMPIData._from_cell(func(op, _in, out))

    # -- indications and threads ------------------------------------------------

    def deliverIndication(self, ctx, ns, ind):  # noqa: N802
        self._ctx(ctx, "CMPIBroker_deliverIndication")
        _cstr(ns, "CMPIBroker_deliverIndication", 3, False)
        _check(ind, CMPIInstance, "CMPIBroker_deliverIndication", 4)
        if self._name == "Pegasus" and not ind._path._ns:
            _raise(CMPI_RC_ERR_INVALID_NAMESPACE, "indication without namespace")
        if self._name != "Pegasus" and not ind._path._ns:
            # sfcb 1.3.18 (brokerUpc.c deliverIndication, as observed under gdb):
            # CMGetObjectPath(ind) of an instance without namespace and keys (every
            # indication class) looks the class up in namespace NULL, finds none
            # and returns NULL; CMClassPathIsA(NULL, <filter's FROM class>) then
            # dereferences it: the provider process dies with SIGSEGV.
            raise _violation("sfcb: deliverIndication of an instance without namespace "
                             "(CMGetObjectPath NULL -> SIGSEGV in CMClassPathIsA)")
        with self._lock:
            self.indications.append((ns, ind._clone(), threading.current_thread().name))

    def prepareAttachThread(self, ctx) -> CMPIContext:  # noqa: N802
        self._ctx(ctx, "CMPIBroker_prepareAttachThread")
        new = CMPIContext._new(dict(ctx._entries), thread=None)
        new._prepared = True
        return new

    def attachThread(self, ctx):  # noqa: N802
        _check(ctx, CMPIContext, "CMPIBroker_attachThread", 2)
        if not ctx._prepared:
            raise _violation("attachThread with a context not made by prepareAttachThread")
        if ctx._thread is not None:
            raise _violation("attachThread: context already attached to a thread")
        ctx._thread = threading.get_ident()

    def detachThread(self, ctx):  # noqa: N802
        _check(ctx, CMPIContext, "CMPIBroker_detachThread", 2)
        if ctx._thread != threading.get_ident():
            raise _violation("detachThread from a thread the context is not attached to")
        ctx._thread = None


# --------------------------------------------------------------------------
# what cmpi-bindings' TargetCall() does with a provider's answer


def target_call(prov, opname: str, *args):
    """Call `opname` on the provider object like target_python.c's TargetCall().

    Returns (rc, message) as the CIM server would see them.  Faults that
    break a real server are recorded in VIOLATIONS and raised.
    """
    func = getattr(prov, opname, None)
    if func is None:
        return CMPI_RC_ERR_FAILED, f'Python module does not contain "{opname}"'.encode()
    try:
        rv = func(*args)
    except Exception as exc:  # noqa: BLE001
        # get_exc_trace() imports StringIO, which Python 3 does not have: the
        # message is lost; the server only sees "can't import StringIO".
        raise _violation(f"{opname} raised {type(exc).__name__}: {exc} "
                         f"(the CIM server would see \"can't import StringIO\")") from exc
    if not isinstance(rv, tuple) or len(rv) not in (1, 2):
        raise _violation(f'Python function "{opname}" didn\'t return a two-tuple')
    rc = rv[0]
    msg = rv[1] if len(rv) == 2 else None
    if not isinstance(rc, int) or isinstance(rc, bool):
        raise _violation(f'Python function "{opname}" didn\'t return a {{<int>, <str>) '
                         f'two-tuple')
    if msg is not None and not isinstance(msg, (bytes, str)):
        raise _violation(f'Python function "{opname}" didn\'t return a {{<int>, <str>) '
                         f'two-tuple')
    if isinstance(msg, str):
        # PyString_AsString == PyBytes_AsString under SWIG's Python 3 macros:
        # NULL, a TypeError left pending, and the message dropped.
        raise _violation(f'"{opname}" returned a str message {msg!r}: dropped by '
                         f"PyBytes_AsString, with a TypeError left pending")
    return rc, msg


# --------------------------------------------------------------------------
# cmpi-bindings' libpy3CmpiProvider.so in one CIM server process


def raw_log(ptr: int, severity: int, msg_id: str, text: str) -> bool:
    """CMLogMessage called on a broker pointer (how the adapter logs without ``cmpi``)."""
    broker = object_at(ptr)
    if not isinstance(broker, CMPIBroker):
        raise _violation(f"logMessage called through {ptr:#x}, which is no CMPIBroker: "
                         f"the CIM server would crash")
    if not broker.log_supported:
        return False                      # sfcb: CMPI_RC_ERR_NOT_SUPPORTED
    with broker._lock:
        broker.logs.append((severity, msg_id, text))
    return True


class MIHandle:
    """One CMPI MI (``ProviderMIHandle``): its name and the Python object behind it."""

    def __init__(self, kind: str, miname: str, impl: Any):
        self.kind = kind
        self.miname = miname
        self.impl = impl        # hdl->implementation: the only C-side reference


class CmpiBindings:
    """cmpi-bindings' provider library in one CIM server process.

    Modelled on ``src/cmpi_provider.c`` and ``src/target_python.c``:

    * :meth:`create_mi` is ``_Generic_Create_<kind>MI``/``TargetInitialize``:
      the first one imports the entry module (``cmpi_pywbem_bindings``), then
      the broker and context are wrapped with SWIG_NewPointerObj, which gives
      bare SwigPyObjects until something imported ``cmpi`` in this process;
      the MI count goes up.
    * :meth:`call` is ``TargetCall`` (arguments wrapped the same way).
    * :meth:`cleanup` is ``Cleanup`` + ``TargetCleanup``: not terminating and
      answered DO_NOT_UNLOAD/NEVER_UNLOAD, nothing happens; otherwise the
      implementation is released **without the GIL** (a violation if that
      frees it) and, when the MI count drops to zero, ``PyEval_AcquireLock``
      without a thread state aborts the process (a violation).
    * :meth:`create_instance_mi` is the exported factory called through a
      pointer (what the adapter's ``loader.create_instance_mi`` calls).

    `entry` is the entry module's file path or a module object.  With
    `cmpi_importable` False, ``import cmpi`` fails like a Python 3 build of
    cmpi-bindings without ``_cmpi``.
    """

    def __init__(self, entry: Any, cmpi_importable: bool = True):
        self.entry = entry
        self.module = entry if not isinstance(entry, str) else None
        self.cmpi_importable = cmpi_importable
        self.mi_count = 0
        self.handles: list[MIHandle] = []
        self.aborted: Optional[str] = None

    # -- the meta path finder that plays ``import cmpi`` ---------------------------

    def find_spec(self, name, path=None, target=None):
        """``import cmpi`` in this process: the fake, with the server's type table."""
        if name != "cmpi":
            return None
        import importlib.machinery
        return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec):
        if not self.cmpi_importable:
            raise ModuleNotFoundError("No module named '_cmpi'", name="_cmpi")
        return sys.modules[__name__]

    def exec_module(self, module):
        global SWIG_TYPES_READY  # noqa: PLW0603
        SWIG_TYPES_READY = True        # PyInit__cmpi of the server's library + swigregister

    # -- the library -------------------------------------------------------------------

    def _entry(self):
        if self.module is None:
            import importlib.util
            spec = importlib.util.spec_from_file_location("cmpi_pywbem_bindings", self.entry)
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except Exception as exc:  # noqa: BLE001
                raise _violation(f"import cmpi_pywbem_bindings failed ({type(exc).__name__}: "
                                 f"{exc}): the server sees \"can't import StringIO\"") from exc
            self.module = module
        return self.module

    def create_mi(self, miname: str, broker: "CMPIBroker", ctx: Optional["CMPIContext"],
                  kind: str = "Instance") -> MIHandle:
        module = self._entry()
        try:
            impl = module.get_cmpi_proxy_provider(miname, new_pointer_obj(broker),
                                                  new_pointer_obj(ctx))
        except Exception as exc:  # noqa: BLE001
            raise _violation(f"get_cmpi_proxy_provider({miname}) raised "
                             f"{type(exc).__name__}: {exc}: the MI is not created and the "
                             f"server sees \"can't import StringIO\"") from exc
        self.mi_count += 1
        handle = MIHandle(kind, miname, impl)
        self.handles.append(handle)
        return handle

    def create_instance_mi(self, broker_ptr: int, ctx_ptr: Optional[int], miname: str) -> bool:
        broker = object_at(broker_ptr)
        if not isinstance(broker, CMPIBroker):
            raise _violation(f"_Generic_Create_InstanceMI with {broker_ptr:#x}, no CMPIBroker")
        ctx = object_at(ctx_ptr) if ctx_ptr else None
        self.create_mi(miname, broker, ctx)
        return True

    def call(self, handle: MIHandle, opname: str, *args):
        if handle.impl is None:
            raise _violation(f"{opname} on the cleaned-up MI {handle.miname}: freed memory")
        return target_call(handle.impl, opname, *(new_pointer_obj(a) for a in args))

    def cleanup(self, handle: MIHandle, ctx, terminating: bool) -> int:
        rc, _msg = self.call(handle, "cleanup", ctx, bool(terminating))
        if not terminating and rc in (CMPI_RC_DO_NOT_UNLOAD, CMPI_RC_NEVER_UNLOAD):
            return rc
        # TargetCleanup: Py_DecRef(hdl->implementation) without holding the GIL.
        impl, handle.impl = handle.impl, None
        try:
            ref = weakref.ref(impl)
        except TypeError:
            ref = None
        del impl
        if ref is not None and ref() is None:
            self.aborted = "Fatal Python error: PyThreadState_Get: the function must be " \
                           "called with the GIL held (TargetCleanup freed the provider object)"
            raise _violation(self.aborted)
        self.mi_count -= 1
        if self.mi_count == 0:
            self.aborted = "Fatal Python error: PyEval_AcquireLock: the function must be " \
                           "called with the GIL held (TargetCleanup, last MI: Py_Finalize)"
            raise _violation(self.aborted)
        return rc
