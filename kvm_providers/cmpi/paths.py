"""Reading CMPIObjectPaths (the object path of every call; reference values and keys).

Split from :mod:`.convert` (its size): what a path's namespace is, read without
crashing the provider process, and its string keys read without the generic
conversion of :meth:`.convert.Converter.from_data`.
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["path_namespace", "string_key", "NOT_STRING"]


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
