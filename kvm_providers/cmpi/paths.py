"""CMPIObjectPaths read and written (the object path of every call, the paths a call
returns, reference values).

Split from :mod:`.convert` (its size): what a path's namespace is, read without
crashing the provider process; its string keys read without the generic
conversion of :meth:`.convert.Converter.from_data`; the keys of a path handed to
the server set through the converter's stand-in CMPIString (:mod:`.chars`).
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import pywbem

from .chars import set_text

__all__ = ["path_namespace", "string_key", "NOT_STRING", "add_keys"]


def path_namespace(cop: Any, classname: Optional[str] = None) -> Optional[str]:
    """The namespace of a CMPIObjectPath, or None; never ``namespace()`` on a NULL one.

    cmpi-bindings' ``CMPIObjectPath.namespace()`` does ``strdup`` on the
    namespace without a NULL check, and sfcb leaves it NULL in the paths
    of reference keys a client sent without namespace: the provider
    process would crash.  The path's string form tells first: sfcb writes
    ``ns:Class.keys`` or, without a namespace, ``Class.keys``; Pegasus
    never has a NULL namespace (``namespace()`` gives "").
    """
    if classname is None:
        classname = cop.classname()
    try:
        text = cop.__str__()
    except Exception:  # pylint: disable=broad-except
        return None
    if not text:
        return None
    head = text[:len(classname) + 1].casefold()
    cn = classname.casefold()
    if head == cn or head == cn + ".":
        return None               # no namespace written before the class name
    return cop.namespace() or None


#: What string_key returns for a key that is not a plain string.
NOT_STRING = object()


def string_key(data: Any, string_ctype: int, null_states: int) -> Any:
    """The text of key `data` (a CMPIData) if it is a string (CMPI_string, not NULL): what
    ``Converter.from_data`` gives for it, read with the SWIG calls it makes (the
    keys of a call's object path are strings, but for references and numbers);
    :data:`NOT_STRING` for any other key (then from_data reads it)."""
    if data.type != string_ctype or data.state & null_states:
        return NOT_STRING
    s = data.value.string
    return "" if s is None else (s.__str__() or "")


def add_keys(conv: Any, cop: Any, classname: str, keys: Iterable[tuple[str, Any]]) -> None:
    """Add the key bindings `keys` ((name, value) pairs) of a path of `classname` to `cop`
    (``Converter._add_keys`` of converter `conv`).

    A string key goes through the converter's stand-in CMPIString, as a scalar string
    property does (:mod:`.chars`): ``add_key`` reads ``value->string->hdl`` and copies
    the characters as ``set_property`` does (sfcb's ``__oft_addKey`` ->
    ``ClObjectPathAddKey``; Pegasus' ``refAddKey`` -> ``value2SCMOValue`` ->
    ``setKeyBinding``): no CMPIString per key (the device paths of an AssociatorNames
    made one per DeviceID, an EnumerateInstanceNames one per Name).  Other keys, and a
    text the stand-in cannot take, as before (:meth:`.convert.Converter.value`; the
    string keys through :func:`.chars.set_text`, as a string property)."""
    add_key = cop.add_key
    string_ctype = conv._string_ctype       # pylint: disable=protected-access
    for name, kval in keys:
        if kval is None:
            raise pywbem.CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                                  f"NULL value for key {classname}.{name}")
        if type(kval) is str:  # noqa: E721 (most keys: InstanceID, Name, CreationClassName)
            set_text(conv, add_key, str(name), kval, string_ctype)
            continue
        cval, ctype = conv.value(kval, conv.infer_type(kval), False)
        add_key(str(name), cval, ctype)
