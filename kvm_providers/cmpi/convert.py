"""Conversion between CMPI objects (cmpi-bindings' SWIG module ``cmpi``) and pywbem 1.x.

Every CIM type goes both ways: the integer and real types, boolean, char16,
string, datetime (points in time and intervals), references, embedded
instances, arrays of all of these, and NULL values.

Things of the SWIG layer that this module respects (see docs/cmpi.md):

* A SWIG struct member that holds a pointer (``CMPIValue.string``,
  ``.array``, ``.dateTime`` ...) does not keep the Python proxy alive.  The
  objects made by the broker's ``new_string``, ``new_array``,
  ``new_datetime_from_string`` and ``new_args`` are owned by their proxies and
  released (``CMRelease``) when the proxy goes away.  A :class:`Converter`
  therefore keeps every object it makes in its *arena* until the CIM server has
  copied it (the end of the call, :meth:`Converter.release`).
* ``CMPIData.value`` points into the ``CMPIData``: the data object is always
  bound to a name while its value is read.
* ``CMPIData._value()`` cannot convert datetimes and returns None for reals
  under Python, so values are read field by field.
* ``CMPIObjectPath.hostname()`` crashes the server on a path without host
  (``strdup(NULL)``) and is never called; ``CMPIObjectPath.keys()`` uses
  ``xrange`` and is never called either.
* Lists of property names (``char **``) are handed to the SWIG layer as bytes:
  with SWIG's Python 3 compatibility macros its typemap accepts only bytes.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Iterable, Optional

import pywbem
from pywbem import (CIMClass, CIMClassName, CIMDateTime, CIMInstance, CIMInstanceName,
                    CIMProperty, Char16, Real32, Real64)

from ..provider._fastcim import new_path
from ..provider.model import InstanceModel
from ..schema import ClassSpec, PropSpec
from .plan import INT_CLASSES, InstancePlan, as_bool as _as_bool, set_array
from .plan import embeds_instance as _embeds_instance, holds_instance as _holds_instance
from . import chars, templates
from .chars import set_text
from .fresh import NONE_HELD, held_already, values_of_new
from .paths import NOT_STRING, add_keys, path_namespace, string_key
from .templates import Copies

__all__ = ["Converter", "CIM_TO_CMPI_NAMES", "cim_error_from_cmpi", "plist_bytes"]

LOG = logging.getLogger("kvm_providers.cmpi")

#: CIM type name -> name of the CMPI type constant in the ``cmpi`` module.
CIM_TO_CMPI_NAMES: dict[str, str] = {
    "boolean": "CMPI_boolean", "char16": "CMPI_char16",
    "real32": "CMPI_real32", "real64": "CMPI_real64",
    "uint8": "CMPI_uint8", "uint16": "CMPI_uint16", "uint32": "CMPI_uint32",
    "uint64": "CMPI_uint64", "sint8": "CMPI_sint8", "sint16": "CMPI_sint16",
    "sint32": "CMPI_sint32", "sint64": "CMPI_sint64",
    "string": "CMPI_string", "datetime": "CMPI_dateTime", "reference": "CMPI_ref",
    "instance": "CMPI_instance",
}

_INT_CLASSES = INT_CLASSES
_REAL_CLASSES = {"real32": Real32, "real64": Real64}


def plist_bytes(props: Optional[Iterable[str]]) -> Optional[list[bytes]]:
    """A property list as the SWIG ``char **`` typemap takes it (None stays None)."""
    if props is None:
        return None
    return [p.encode("utf-8") if isinstance(p, str) else bytes(p) for p in props]


#: Distinct strings a converter keeps for reuse (one call's repeated values; bounded).
_STRINGS_PER_CALL = 4096

#: CMPI_RC_ERR_NO_SUCH_PROPERTY (cmpidt.h)
_RC_ERR_NO_SUCH_PROPERTY = 12


def _cmpi_rc(exc: BaseException) -> Optional[int]:
    """The CMPI rc of a ``cmpi.CMPIException``, or None for any other exception."""
    try:
        return int(exc.get_error_code())  # type: ignore[attr-defined]
    except Exception:  # pylint: disable=broad-except
        return None


def cim_error_from_cmpi(exc: BaseException) -> pywbem.CIMError:
    """A ``cmpi.CMPIException`` (raised by a failed broker call) as a CIMError."""
    try:
        code = int(exc.get_error_code())  # type: ignore[attr-defined]
        desc = exc.get_description()  # type: ignore[attr-defined]
    except Exception:  # pylint: disable=broad-except
        return pywbem.CIMError(pywbem.CIM_ERR_FAILED, f"CIM server error: {exc}")
    if isinstance(desc, bytes):
        desc = desc.decode("utf-8", "replace")
    if code < 1 or code > 17:
        # Not a CIM status (e.g. CMPI_RC_ERR_INVALID_HANDLE): keep it in the text.
        desc = f"CMPI rc {code}" + (f": {desc}" if desc else "")
        code = pywbem.CIM_ERR_FAILED
    return pywbem.CIMError(code, desc or None)


def _type_tables(c) -> tuple:
    """The CMPIType tables of the SWIG module `c` (see :class:`Converter`)."""
    to_ctype = {name: getattr(c, cname) for name, cname in CIM_TO_CMPI_NAMES.items()}
    from_ctype = {v: k for k, v in to_ctype.items()}
    from_ctype[c.CMPI_chars] = "string"
    skip_ctypes = {getattr(c, n) for n in ("CMPI_class", "CMPI_args", "CMPI_filter",
                                           "CMPI_enumeration", "CMPI_ptr", "CMPI_charsptr")
                   if hasattr(c, n)}
    # CMPIType of a scalar NULL of each CIM type (what value() gives for None): to_ctype.
    return (c.CMPI_ARRAY, to_ctype, from_ctype, skip_ctypes,
            c.CMPI_nullValue | c.CMPI_notFound, to_ctype, to_ctype["string"])


#: {SWIG module: its type tables}; read-only once made (shared by every converter).
_TABLES: dict[Any, tuple] = {}

#: {(SWIG module, its CMPIValue, the stand-in's maker chars.text_value_of): the stand-in
#: CMPIStrings (.chars.TextValue) of released converters}: a converter takes one, gives it
#: back on release.  Made per converter, one was a real CMPIString (the probe of the server's
#: string table), a SWIG CMPIValue and a ctypes cell: a twentieth of a GetInstance's
#: Python in Pegasus' agent, which makes a converter per CMPI call.  A converter uses
#: its own alone (list.pop and append: one converter per stand-in, threads or not).
_TEXTS: dict[tuple, list] = {}


class Converter:
    """Converts values for one call (or one up-call); owns the CMPI objects it makes.

    `cmpi` is the SWIG module (or the test fake), `broker` the CMPIBroker.
    Call :meth:`release` when the CIM server has taken what was handed to it.
    """

    def __init__(self, cmpi, broker, fresh: Optional[dict] = None, ns_always: bool = False):
        self.cmpi = cmpi
        self.broker = broker
        # The server's paths always hold a namespace (OpenPegasus: "" for none): read
        # without their string form first (path_namespace; Pegasus builds the text).
        self.ns_always = ns_always
        # {(namespace, lower-case class): lower-case names of the properties a new
        # CMPIInstance of the class already holds as NULL}: what instance() need
        # not set (see there); shared by the converters of one provider.  None:
        # set everything (instances that go to the server's repository).
        self._fresh = fresh
        self._cval: Any = None
        self._eval: Any = None
        key = (cmpi, cmpi.CMPIValue, chars.text_value_of)
        texts = _TEXTS.get(key)
        if texts is None:
            texts = _TEXTS[key] = []
        self._texts = texts
        try:
            # .chars.TextValue (None: made when first needed, False: none; text_value)
            self._text: Any = texts.pop()
        except IndexError:
            self._text = None
        # {text: CMPIString} of the scalar strings set so far (see string()).
        self._strings: dict[str, Any] = {}
        self.arena: list[Any] = []
        # copies of templates handed to the server and released at once (not in the arena)
        self._handed = 0
        # CMPIObjectPaths new_instance() got, by namespace, class, host and key names.
        self._inst_paths: dict[tuple, Any] = {}
        # The direct path's instances from a template per class (.templates), made when
        # first asked for (a GetInstance or AssociatorNames never asks: the copier's
        # lookup, the broker's name, was a twentieth of their Python in Pegasus' agent).
        self._copies_on = fresh is not None and templates.copies_on()
        # The type tables depend on the module only: made once (a server makes a
        # converter per CMPI call, 42 of them for an enumeration of every RASD).
        tables = _TABLES.get(cmpi)
        if tables is None:
            tables = _TABLES[cmpi] = _type_tables(cmpi)
        (self.ARRAY, self._to_ctype, self._from_ctype, self._skip_ctypes, self._null_states,
         self._null_ctypes, self._string_ctype) = tables

    @functools.cached_property
    def _copies(self) -> Optional[Copies]:
        # (computed once, then an attribute of the instance: read per instance returned)
        if not self._copies_on:
            return None
        copier = templates.instance_copier(self.cmpi, self.broker)
        return None if copier is None else Copies(self, copier)

    # -- lifetime -----------------------------------------------------------

    def keep(self, obj: Any) -> Any:
        """Keep `obj` (a proxy the broker made) alive until :meth:`release`."""
        self.arena.append(obj)
        return obj

    def string(self, text: str) -> Any:
        """A CMPIString of `text` for a scalar property or key (kept until :meth:`release`).

        The instances of a call repeat the same few values (CreationClassName,
        ResourceType's captions, units, the system's name in every device's keys:
        of 13,000 strings set for 1000 ComputerSystems, 2,006 are distinct), and
        ``set_property`` and ``add_key`` copy the characters (sfcb's
        ClInstanceAddProperty / ClObjectPathAddKey, Pegasus' value2SCMOValue): one
        CMPIString per distinct value and call serves them all (a ``new_string`` was
        a tenth of a ComputerSystem enumeration in Pegasus' agent).  Not for array
        elements, which an array holds by reference.
        """
        string = self._strings.get(text)
        if string is None:
            string = self.broker.new_string(text)
            self.arena.append(string)
            if len(self._strings) < _STRINGS_PER_CALL:
                self._strings[text] = string
        return string

    def made(self) -> int:
        """How many CMPI objects this converter made and kept or handed over so far."""
        return len(self.arena) + self._handed

    def release(self) -> None:
        """Drop the references to every object this converter made (and release the
        copies of templates not handed to the server)."""
        copies = self.__dict__.get("_copies")
        if copies is not None:
            copies.release()
        self._inst_paths.clear()
        self._cval = None
        self._eval = None
        text, self._text = self._text, None
        if text:
            self._texts.append(text)
        self._strings.clear()
        self.arena.clear()

    # -- type names -----------------------------------------------------------

    def ctype(self, cim_type: str, is_array: bool = False) -> int:
        """The CMPIType of a CIM type name ('uint16', 'reference', 'instance' ...)."""
        try:
            base = self._to_ctype[cim_type]
        except KeyError:
            raise pywbem.CIMError(pywbem.CIM_ERR_FAILED,
                                  f"CIM type {cim_type!r} cannot be passed to CMPI") from None
        return base | self.ARRAY if is_array else base

    def cim_type(self, ctype: int) -> tuple[Optional[str], bool]:
        """(CIM type name or None, is_array) of a CMPIType."""
        is_array = bool(ctype & self.ARRAY)
        base = ctype & ~self.ARRAY
        return self._from_ctype.get(base), is_array

    @staticmethod
    def infer_type(value: Any) -> str:
        """The CIM type of an untyped value (key bindings, up-call parameters)."""
        probe = value[0] if isinstance(value, (list, tuple)) and value else value
        if isinstance(probe, CIMInstance):
            return "instance"
        if isinstance(probe, (CIMInstanceName, CIMClassName)):
            return "reference"
        if isinstance(probe, bool):
            return "boolean"
        if isinstance(probe, (pywbem.CIMInt, pywbem.CIMFloat, CIMDateTime, Char16)):
            return pywbem.cimtype(probe)
        if isinstance(probe, int):
            return "sint64" if probe < 0 else "uint64"
        if isinstance(probe, float):
            return "real64"
        return "string"

    # -- CMPI -> pywbem -------------------------------------------------------

    def from_data(self, data, namespace: Optional[str] = None) -> tuple[Any, Optional[str], bool]:
        """(pywbem value, CIM type, is_array) of a CMPIData.  NULL gives value None.

        References without a namespace get `namespace` (that of the path or
        instance they are part of).
        """
        ctype = data.type
        cim_type, is_array = self.cim_type(ctype)
        if data.state & self._null_states or ctype == self.cmpi.CMPI_null:
            return None, cim_type, is_array
        if cim_type is None:
            return None, None, is_array   # CMPI_class, CMPI_args ...: nothing for pywbem
        if is_array:
            car = data.value.array
            if car is None:
                return None, cim_type, True
            out: list[Any] = []
            for i in range(car.size()):
                elem = car.at(i)
                if elem.state & self._null_states or elem.type == self.cmpi.CMPI_null:
                    out.append(None)
                    continue
                etype, _ = self.cim_type(elem.type)
                out.append(self._scalar(elem, etype or cim_type, namespace))
            return out, cim_type, True
        return self._scalar(data, cim_type, namespace), cim_type, False

    def _scalar(self, data, cim_type: str, namespace: Optional[str] = None) -> Any:
        base = data.type & ~self.ARRAY
        value = data.value
        if cim_type == "string":
            if base == self.cmpi.CMPI_chars:
                return value.chars or ""
            s = value.string
            return "" if s is None else (s.__str__() or "")
        if cim_type in _INT_CLASSES:
            return _INT_CLASSES[cim_type](getattr(value, cim_type))
        if cim_type == "boolean":
            return bool(value.boolean)
        if cim_type in _REAL_CLASSES:
            return _REAL_CLASSES[cim_type](getattr(value, cim_type))
        if cim_type == "char16":
            return Char16(chr(value.char16))
        if cim_type == "datetime":
            dt = value.dateTime
            return None if dt is None else CIMDateTime(dt.__str__())
        if cim_type == "reference":
            ref = value.ref
            return None if ref is None else self.to_path(ref, namespace)
        if cim_type == "instance":
            inst = value.inst
            return None if inst is None else self.to_instance(inst, embedded=True)
        raise pywbem.CIMError(pywbem.CIM_ERR_FAILED, f"unknown CIM type {cim_type!r}")

    def to_path(self, cop, namespace: Optional[str] = None) -> CIMInstanceName:
        """CMPIObjectPath -> CIMInstanceName (with its key bindings and namespace)."""
        classname = cop.classname()
        ns = (cop.namespace() if self.ns_always else self.path_namespace(cop, classname)) \
            or namespace or None
        keys = {}
        get_key_at, string_ctype, null_states = cop.get_key_at, self._string_ctype, \
            self._null_states
        for i in range(cop.key_count()):
            try:
                data, name = get_key_at(i)
            except Exception as exc:  # pylint: disable=broad-except
                # Pegasus keeps a path as an instance of its class: key_count()
                # counts every key the class declares, and a key the client gave
                # no value (all of them in a class path: a method invoked on the
                # class) fails with NO_SUCH_PROPERTY.  Such a key is not in the path.
                if _cmpi_rc(exc) == _RC_ERR_NO_SUCH_PROPERTY:
                    continue
                raise
            value = string_key(data, string_ctype, null_states)
            if value is NOT_STRING:
                value, _t, _a = self.from_data(data, ns)
            keys[name] = value
        if type(classname) is str:  # noqa: E721  (pywbem's checks per key binding saved)
            return new_path(classname, keys, ns)
        return CIMInstanceName(classname, keybindings=keys, namespace=ns)

    #: The namespace of a CMPIObjectPath, or None (.paths).
    path_namespace = staticmethod(path_namespace)

    def to_instance(self, cinst, path: Optional[CIMInstanceName] = None,
                    embedded: bool = False) -> CIMInstance:
        """CMPIInstance -> CIMInstance.

        The path is `path` if given, else the instance's object path; embedded
        instances (values of properties and parameters) get no path.
        """
        if path is None and not embedded:
            cop = cinst.objectpath()
            path = None if cop is None else self.to_path(cop)
        classname = path.classname if path is not None else None
        if classname is None:
            cop = cinst.objectpath()
            classname = cop.classname() if cop is not None else "CIM_ManagedElement"
        props = []
        for i in range(cinst.property_count()):
            data, name = cinst.get_property_at(i)
            value, cim_type, is_array = self.from_data(
                data, path.namespace if path is not None else None)
            if cim_type is None:
                base = data.type & ~self.ARRAY
                if value is not None or base in self._skip_ctypes:
                    continue              # CMPI_class, CMPI_args ...: nothing for pywbem
                cim_type = "string"       # an untyped NULL
            props.append(self._property(name, value, cim_type, is_array))
        return CIMInstance(classname, properties=props, path=path)

    @staticmethod
    def _property(name: str, value: Any, cim_type: str, is_array: bool) -> CIMProperty:
        if cim_type == "instance":
            return CIMProperty(name, value, type="string", is_array=is_array,
                               embedded_object="instance")
        if cim_type == "reference":
            return CIMProperty(name, value, type="reference", is_array=is_array)
        return CIMProperty(name, value, type=cim_type, is_array=is_array)

    def to_args(self, cargs, namespace: Optional[str] = None) -> dict[str, Any]:
        """CMPIArgs -> {name: pywbem value} (references without namespace get `namespace`)."""
        out: dict[str, Any] = {}
        if cargs is None:
            return out
        for i in range(cargs.arg_count()):
            data, name = cargs.get_arg_at(i)
            value, _t, _a = self.from_data(data, namespace)
            out[name] = value
        return out

    # -- pywbem -> CMPI -------------------------------------------------------

    def value(self, value: Any, cim_type: Optional[str] = None,
              is_array: Optional[bool] = None, into: Any = None) -> tuple[Any, int]:
        """(CMPIValue or None for NULL, CMPIType) for a pywbem value.

        `into`: the CMPIValue to fill (one the caller hands to a CMPI function that
        copies it at once), else a new one."""
        if is_array is None:
            is_array = isinstance(value, (list, tuple))
        if cim_type is None:
            if value is None:
                cim_type = "string"
            else:
                cim_type = self.infer_type(value)
        elif cim_type == "string" and _holds_instance(value):
            cim_type = "instance"
        ctype = self.ctype(cim_type, is_array)
        if value is None:
            return None, ctype
        cval = self.cmpi.CMPIValue() if into is None else into
        if is_array:
            if not isinstance(value, (list, tuple)):
                value = [value]
            base = ctype & ~self.ARRAY
            car = self.keep(self.broker.new_array(len(value), base))
            # One CMPIValue for the elements of every array of this converter: set()
            # copies the value (sfcb's setElementAt, Pegasus' arraySetElementAt), as
            # set_property does; an element that is an embedded instance is made
            # before the value is filled.
            elem_val = self._eval
            for i, elem in enumerate(value):
                if elem is None:
                    # A NULL element is set with type CMPI_null and a value
                    # (it keeps the array's type).  A NULL value pointer is
                    # refused by Pegasus (CMPI_RC_ERR_INVALID_PARAMETER) and
                    # stored as 0 by sfcb for numeric arrays.
                    car.set(i, self.keep(self.cmpi.CMPIValue()), self.cmpi.CMPI_null)
                else:
                    if elem_val is None:
                        elem_val = self._eval = self.cmpi.CMPIValue()
                    self._set_scalar(elem_val, elem, cim_type)
                    car.set(i, elem_val, base)
            cval.array = car
        else:
            self._set_scalar(cval, value, cim_type)
        return cval, ctype

    def _set_scalar(self, cval, value: Any, cim_type: str) -> None:
        if cim_type == "string":
            if isinstance(value, CIMClass):
                value = value.tomof()
            elif isinstance(value, CIMInstance):
                value = value.tomof()
            cval.string = self.keep(self.broker.new_string(str(value)))
        elif cim_type in _INT_CLASSES:
            if isinstance(value, bool):
                raise pywbem.CIMError(pywbem.CIM_ERR_FAILED,
                                      f"boolean {value!r} given for a {cim_type}")
            setattr(cval, cim_type, int(_INT_CLASSES[cim_type](value)))
        elif cim_type == "boolean":
            cval.boolean = 1 if _as_bool(value) else 0
        elif cim_type in _REAL_CLASSES:
            setattr(cval, cim_type, float(value))
        elif cim_type == "char16":
            text = str(value)
            if len(text) != 1:
                raise pywbem.CIMError(pywbem.CIM_ERR_FAILED,
                                      f"char16 needs one character, got {text!r}")
            cval.char16 = ord(text)
        elif cim_type == "datetime":
            if not isinstance(value, CIMDateTime):
                value = CIMDateTime(value)
            cval.dateTime = self.keep(self.broker.new_datetime_from_string(str(value)))
        elif cim_type == "reference":
            cval.ref = self.keep(self.object_path(value))
        elif cim_type == "instance":
            cval.inst = self.keep(self.instance(value, allow_null_ns=True))
        else:  # pragma: no cover (ctype() refused it before)
            raise pywbem.CIMError(pywbem.CIM_ERR_FAILED, f"unknown CIM type {cim_type!r}")

    def object_path(self, path: CIMInstanceName | CIMClassName,
                    namespace: Optional[str] = None):
        """CIMInstanceName (or CIMClassName) -> CMPIObjectPath."""
        ns = path.namespace or namespace
        cop = self.broker.new_object_path(ns, str(path.classname))
        if path.host:
            cop.set_hostname(str(path.host))
        if isinstance(path, CIMInstanceName):
            self._add_keys(cop, path.classname, path.keybindings.items())
        return cop

    #: Add the key bindings of a path (.paths).
    _add_keys = add_keys

    def _instance_path(self, namespace: Optional[str], classname: str, host: Optional[str],
                       keys: Any):
        """The CMPIObjectPath to make an instance of from its path's parts (`keys`: the key
        bindings, a sequence of (name, value) pairs).

        Both servers copy the path into the new instance (sfcb's
        ``internal_new_CMPIInstance`` its keys, Pegasus' ``mbEncNewInstance``
        the whole SCMOInstance), so one path per class and key set serves
        every instance of a call, its keys set anew each time: a new path
        costs Pegasus a class lookup and an SCMOInstance of the class.
        """
        ident = (namespace, classname, host, tuple(name for name, _v in keys))
        cop = self._inst_paths.get(ident)
        if cop is None:
            cop = self._inst_paths[ident] = self.keep(
                self.broker.new_object_path(namespace, str(classname)))
            if host:
                cop.set_hostname(str(host))
        self._add_keys(cop, classname, keys)
        return cop

    def instance(self, inst: CIMInstance, namespace: Optional[str] = None,
                 allow_null_ns: bool = False, props: Optional[list[str]] = None):
        """CIMInstance -> CMPIInstance.

        The instance's path gives namespace, class and keys; without
        `allow_null_ns` a namespace is required (CIM_ERR_INVALID_NAMESPACE).
        `props`: the client's PropertyList, set as the instance's property
        filter (sfcb returns what the instance holds, and it holds every
        property of the class from the start; keys stay).
        """
        path = inst.path
        if path is None:
            path = CIMInstanceName(inst.classname, namespace=namespace)
        ns = path.namespace or namespace
        if not ns and not allow_null_ns:
            raise pywbem.CIMError(pywbem.CIM_ERR_INVALID_NAMESPACE,
                                  f"Instance of {inst.classname} has no namespace")
        cop = self._instance_path(ns, path.classname, path.host,
                                  tuple(path.keybindings.items()))
        cinst, unset, held = self._new_instance(cop, ns, inst.classname, allow_null_ns, props)
        if type(inst) is InstanceModel:
            values = inst.assigned()
            if values is not None:
                self._set_values(cinst, inst.spec, inst.wanted, inst.complete, inst.classname,
                                 values, unset, held)
                return cinst
        set_property = cinst.set_property
        # The common cases first (an enumeration converts tens of properties
        # per instance, most of them NULL or plain strings and integers):
        # the same CMPI calls as value(), without its generic dispatch.
        null_ctypes = self._null_ctypes
        to_ctype = self._to_ctype
        strings = self._strings
        # One CMPIValue for the scalars of every instance of this converter:
        # set_property copies the value at once (sfcb's ClInstanceAddProperty,
        # Pegasus' value2SCMOValue); making one is a SWIG allocation (4% of an
        # enumeration of 1000 ComputerSystems in Pegasus' agent when made per
        # instance).
        cval = self._cval
        if cval is None:
            cval = self._cval = self.cmpi.CMPIValue()
        for prop in inst.properties.values():
            cim_type = prop.type
            value = prop.value
            if prop.embedded_object and _embeds_instance(value):
                # Also a NULL (and NULL elements): Pegasus checks the CMPI type
                # of every property against the class, which declares
                # EmbeddedInstance/EmbeddedObject properties as instances, and
                # rejects a CMPI string there (CMPI_RC_ERR_INVALID_DATA_TYPE).
                cim_type = "instance"
            if value is None and unset and prop.name.lower() in unset:
                # Both servers make a new instance from its class, every property
                # at the class default (Pegasus' SCMOInstance, sfcb's default
                # properties): where that is NULL, setting NULL changes nothing
                # the client sees, and a CMPI call less per NULL property (most
                # of them: 904 of 1300 property values of the RASDs of 4 guests).
                continue
            if not prop.is_array:
                if value is None:
                    ctype = null_ctypes.get(cim_type)
                    if ctype is not None:
                        set_property(prop.name, None, ctype)
                        continue
                elif cim_type == "string" and type(value) is str:  # noqa: E721 (not a subclass)
                    string = strings.get(value)
                    if string is None:
                        string = self.string(value)
                    cval.string = string
                    set_property(prop.name, cval, self._string_ctype)
                    continue
                elif type(value) is _INT_CLASSES.get(cim_type):  # already range-checked
                    setattr(cval, cim_type, int(value))
                    set_property(prop.name, cval, to_ctype[cim_type])
                    continue
                elif cim_type == "boolean" and type(value) is bool:  # noqa: E721
                    cval.boolean = 1 if value else 0
                    set_property(prop.name, cval, to_ctype["boolean"])
                    continue
            pval, ctype = self._property_value(inst.classname, prop.name, value, cim_type,
                                               bool(prop.is_array))
            set_property(str(prop.name), pval, ctype)
        return cinst

    def instance_of_values(self, namespace: str, spec: ClassSpec, wanted: frozenset,
                           keys: Any, values: dict[str, Any],
                           props: Optional[list[str]] = None, host: Optional[str] = None,
                           copies: bool = True):
        """A CMPIInstance of class `spec` in `namespace` whose key bindings are `keys`
        ((name, value) pairs in key order) and whose properties are `values` ({folded
        name: value converted to the declared type}, in the order set), complete (every
        other property in `wanted` its class default, else NULL): what :meth:`instance`
        makes of a complete instance model with these values, through the same calls,
        without the model (the direct paths, :mod:`.direct`).  `props` as for
        :meth:`instance`; `host`: its path's host; `copies` False: never a template's
        copy (a GetInstance: no copier looked up for one instance)."""
        if copies and props is None and self._copies is not None:
            cinst = self._copies.instance(namespace, spec, self._plan(spec, wanted, True),
                                          values)
            if cinst is not None:
                return cinst
        cop = self._instance_path(namespace, spec.name, host, keys)
        cinst, unset, held = self._new_instance(cop, namespace, spec.name, False, props)
        self._set_values(cinst, spec, wanted, True, spec.name, values, unset, held)
        return cinst

    def handed_over(self, cinst: Any) -> None:
        """The server has taken `cinst` (``return_instance`` copies it in both servers): a
        copy of a template is released at once, a template is kept already (sfcb's, handed over
        again and again), anything else kept until :meth:`release`."""
        if self._copies is None or not self._copies.handed_over(cinst):
            self.keep(cinst)
        else:
            self._handed += 1

    def _new_instance(self, cop, ns: Optional[str], classname: str, allow_null_ns: bool,
                      props: Optional[list[str]]) -> tuple[Any, frozenset, dict[str, Any]]:
        """(a new CMPIInstance of `cop`, the folded names of the properties it holds as
        NULL already: need not be set NULL, {folded name: value} of the class defaults it
        holds already (.fresh)); with the property filter `props` (nothing known held)."""
        cinst = self.broker.new_instance(cop, 1 if allow_null_ns else 0)
        if props is not None:
            self._filter(cinst, props)
            # what a filtered instance holds is the server's affair
            return cinst, frozenset(), NONE_HELD
        if self._fresh is None:
            return cinst, frozenset(), NONE_HELD
        key = (ns, classname.lower())
        known = self._fresh.get(key)
        if known is None:
            known = self._fresh[key] = self._nulls_of_new(cinst)
            self._fresh[key + ("held",)] = values_of_new(self, cinst)
        return cinst, known, self._fresh.get(key + ("held",), NONE_HELD)

    def _plan(self, spec: ClassSpec, wanted: frozenset, complete: bool) -> InstancePlan:
        """The conversion plan of class `spec` for the properties `wanted` (cached per
        class, PropertyList, completeness and SWIG module, in the class's cache as the
        CIM-XML writer keeps its plans)."""
        key = ("cmpiplan", wanted, complete, self.cmpi)
        plan = spec._cache.get(key)
        if plan is None:
            plan = spec._cache[key] = InstancePlan(self, spec, wanted, complete)
        return plan

    def _set_values(self, cinst, spec: ClassSpec, wanted: frozenset, complete: bool,
                    classname: str, values: dict[str, Any], unset: frozenset,
                    held: dict[str, Any]) -> None:
        """Set the properties of an instance model (of class `spec`, wanted properties
        `wanted`, complete or not) on `cinst` straight from its assigned values, by the
        class's plan: the same CMPI calls with the same values and types
        as setting its pywbem properties (what :meth:`instance` does for any other
        CIMInstance), without building them.  A model builds its pywbem properties
        only when read: every assigned value and, for a complete instance, every
        wanted property left unset (its class default or NULL) -- about 45 objects
        per RASD of which the server needs 5-10 (the others are NULL in a new
        instance: `unset`; nor those of its class defaults it holds: `held`)."""
        plan = self._plan(spec, wanted, complete)
        self.set_pairs(cinst, plan, classname, values.items(), unset)
        if plan.unset:
            rows = plan.rows
            for lk, default in plan.rest(values, unset):
                p = plan.props[lk]
                if default is None:
                    cinst.set_property(p.name, None, rows[lk][3])
                elif held_already(held, lk, default):
                    continue    # what the new instance holds (EnabledDefault ...): a call less
                else:
                    self._set_generic(cinst.set_property, classname, p, default, self._cval)

    def set_pairs(self, cinst, plan: InstancePlan, classname: str, pairs: Iterable[tuple],
                  unset: frozenset) -> None:
        """Set the properties (folded name, value) of `pairs` on `cinst` by `plan`; a NULL
        only where the instance does not hold NULL already (`unset`)."""
        rows = plan.rows
        set_property = cinst.set_property
        cval = self._cval
        if cval is None:
            cval = self._cval = self.cmpi.CMPIValue()
        for lk, value in pairs:
            name, kind, ctype, null_ctype = rows[lk]
            if value is None:
                if lk not in unset:
                    set_property(name, None, null_ctype)
            elif kind is str and type(value) is str:  # noqa: E721 (not a subclass)
                set_text(self, set_property, name, value, ctype)
            elif kind is bool and type(value) is bool:  # noqa: E721
                cval.boolean = 1 if value else 0
                set_property(name, cval, ctype)
            elif kind is not None and type(value) is kind:   # a pywbem integer type
                setattr(cval, plan.attrs[lk], int(value))
                set_property(name, cval, ctype)
            elif type(value) is CIMProperty:
                # A provider's own property object, as given (the direct path; a model
                # holding one has its pywbem properties built: instance() sets them).
                if value.value is not None or lk not in unset:
                    self._set_generic(set_property, classname, plan.props[lk], value.value,
                                      cval, value)
            elif not set_array(self, plan, lk, value, set_property, cval):
                self._set_generic(set_property, classname, plan.props[lk], value, cval)

    def _set_generic(self, set_property, classname: str, p: PropSpec, value: Any,
                     cval: Any, given: Optional[CIMProperty] = None) -> None:
        """Set property `p` = `value` (not None, but for a `given` property) through
        :meth:`value`, as :meth:`instance` sets a property no fast case covers; in
        `cval` (the converter's CMPIValue for values set_property copies) unless `p`
        embeds objects (an embedded instance is converted with that CMPIValue).
        `given`: a provider's own CIMProperty of that value, whose type counts."""
        q: Any = p if given is None else given
        cim_type = "instance" if q.embedded_object and _embeds_instance(value) else q.type
        pval, ctype = self._property_value(classname, p.name, value, cim_type,
                                           bool(q.is_array),
                                           None if q.embedded_object else cval)
        set_property(p.name, pval, ctype)

    def _property_value(self, classname: str, name: str, value: Any, cim_type: Any,
                        is_array: bool, into: Any = None) -> tuple[Any, int]:
        """:meth:`value` for property `name`; a value CMPI cannot take is
        CIM_ERR_FAILED naming the property."""
        try:
            return self.value(value, cim_type, is_array, into)
        except pywbem.CIMError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise pywbem.CIMError(
                pywbem.CIM_ERR_FAILED,
                f"Property {classname}.{name} = {value!r} "
                f"({cim_type}) cannot be passed to CMPI: {exc}") from None

    @staticmethod
    def _filter(cinst, props: list[str]) -> None:
        """Set the property filter `props` (bytes for SWIG 4's ``char **`` typemap, str
        for builds whose typemap differs); a server that refuses keeps every property."""
        try:
            try:
                cinst.set_property_filter(plist_bytes(props))
            except TypeError:
                cinst.set_property_filter([str(p) for p in props])
        except Exception:  # pylint: disable=broad-except
            LOG.debug("the CIM server refused a property filter on %s", props, exc_info=True)

    def _nulls_of_new(self, cinst) -> frozenset:
        """The lower-case names of the properties the new `cinst` holds as NULL (no class
        default); none if the server gave it no properties or they cannot be read."""
        out = set()
        try:
            for i in range(cinst.property_count()):
                data, name = cinst.get_property_at(i)
                if data.state & self._null_states or data.type == self.cmpi.CMPI_null:
                    out.add(str(name).lower())
        except Exception:  # pylint: disable=broad-except  (then set every property)
            return frozenset()
        return frozenset(out)

    def fill_args(self, cargs, params: dict[str, Any]) -> None:
        """Set ``{name: (type, value)}`` or ``{name: value}`` on a CMPIArgs."""
        for name, item in params.items():
            if isinstance(item, tuple) and len(item) == 2 and \
                    (item[0] is None or isinstance(item[0], str)):
                cim_type, value = item
            elif isinstance(item, pywbem.CIMParameter):
                cim_type, value = item.type, item.value
            else:
                cim_type, value = None, item
            if cim_type in ("class",):
                cim_type = "string"
            cval, ctype = self.value(value, cim_type, isinstance(value, (list, tuple)))
            cargs.set(str(name), cval, ctype)

