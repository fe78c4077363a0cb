"""CIM-XML (DSP0201) writing, fast.

pywbem's own ``tocimxmlstr`` builds a minidom tree per object and serializes
it, about 1,100 instances of 2 KB per second here; enumeration responses are
written here with plain string building instead (tens of thousands per
second).  Classes and qualifier declarations, which are not on a hot path,
still go through pywbem.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Optional

from pywbem import (CIMClass, CIMClassName, CIMDateTime, CIMInstance, CIMInstanceName,
                    CIMQualifierDeclaration)

from ..provider._fastcim import FAST, iter_keybindings, iter_props
from ..provider.values import INT_TYPES

__all__ = ["esc", "attr", "value_text", "instance_xml", "instancename_xml",
           "instancename_head", "keybinding_xml", "instance_head", "values_plan",
           "property_text", "unset_text", "property_xml", "InstanceForm",
           "localnamespacepath_xml", "namespacepath_xml", "instancepath_xml",
           "localinstancepath_xml", "classname_xml", "classpath_xml", "reference_xml",
           "class_xml", "qualifier_decl_xml", "paramvalue_xml", "error_xml", "message_head", "message_tail",
           "ns_parts"]

_ESC_TABLE = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;"}
_ATTR_TABLE = {**_ESC_TABLE, ord('"'): "&quot;"}
# Characters that XML 1.0 cannot carry even as references.
_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NEEDS = re.compile('[&<>"\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]')


def _escape(text: str, table: dict) -> str:
    return _escaped(text, table) if _NEEDS.search(text) else text


def _escaped(text: str, table: dict) -> str:
    """`text`, which needs it, escaped (and characters XML cannot carry replaced)."""
    if _BAD_XML.search(text):
        text = _BAD_XML.sub("\ufffd", text)
    # str.replace runs some 30 times faster than str.translate with a dict table
    # (2.7 against 79 us for 1.6 KB): it matters for embedded instances, whose
    # whole XML text is escaped again (GetSummaryInformation: 16 MB for 10,000).
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace('"', "&quot;") if table is _ATTR_TABLE else text


_needs = _NEEDS.search


def esc(text: str) -> str:
    """Escape character data."""
    # Most texts need nothing: answered without the second call (every key and new
    # string of a large enumeration comes through here, issue 16).
    return text if _needs(text) is None else _escaped(text, _ESC_TABLE)


def attr(text: str) -> str:
    """Escape an attribute value (for use inside double quotes)."""
    return _escape(text, _ATTR_TABLE)


def _real_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    return repr(float(value))


def value_text(value: Any) -> str:
    """The text of a scalar value inside <VALUE> (not escaped)."""
    t = type(value)
    if t is str:
        return value
    if t is bool:
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return _real_text(value)
    if isinstance(value, CIMDateTime):
        return str(value)
    if isinstance(value, (CIMInstance, CIMClass)):
        return embedded_xml(value)
    return str(value)


def embedded_xml(obj: Any) -> str:
    """An embedded instance or class as CIM-XML text (escaped again by the caller)."""
    if isinstance(obj, CIMInstance):
        return instance_xml(obj)
    return obj.tocimxmlstr()


def ns_parts(namespace: str) -> str:
    return "".join(f'<NAMESPACE NAME="{attr(p)}"/>' for p in namespace.strip("/").split("/")
                   if p)


def localnamespacepath_xml(namespace: str) -> str:
    return f"<LOCALNAMESPACEPATH>{ns_parts(namespace)}</LOCALNAMESPACEPATH>"


#: NAMESPACEPATH per (host, namespace): every path of an AssociatorNames has one.
_NSPATHS: dict[tuple[str, str], str] = {}


def namespacepath_xml(host: str, namespace: str) -> str:
    text = _NSPATHS.get((host, namespace))
    if text is None:
        text = (f"<NAMESPACEPATH><HOST>{esc(host)}</HOST>"
                f"{localnamespacepath_xml(namespace)}</NAMESPACEPATH>")
        if len(_NSPATHS) < 1000:     # bounded: hosts and namespaces come from clients too
            _NSPATHS[(host, namespace)] = text
    return text


def _keyvalue(value: Any) -> str:
    if isinstance(value, CIMInstanceName):
        return reference_xml(value)
    t = type(value)
    if t is bool:
        return f'<KEYVALUE VALUETYPE="boolean">{"TRUE" if value else "FALSE"}</KEYVALUE>'
    if isinstance(value, (int, float)) and t is not bool:
        cimtype = getattr(value, "cimtype", None)
        tattr = f' TYPE="{cimtype}"' if cimtype else ""
        return f'<KEYVALUE VALUETYPE="numeric"{tattr}>{value_text(value)}</KEYVALUE>'
    if isinstance(value, CIMDateTime):
        return f'<KEYVALUE VALUETYPE="string" TYPE="datetime">{value}</KEYVALUE>'
    return f'<KEYVALUE VALUETYPE="string">{esc(str(value))}</KEYVALUE>'


#: Start tags of INSTANCENAME per class name and of KEYBINDING per key name: an
#: enumeration writes the same few thousands of times.
_NAME_TAGS: dict[str, str] = {}
_KEY_TAGS: dict[str, str] = {}


def _class_tag(cache: dict[str, str], element: str, classname: str) -> str:
    """``<ELEMENT CLASSNAME="...">``, kept in `cache` (bounded: class names come from
    clients too)."""
    head = cache.get(classname)
    if head is None:
        head = f'<{element} CLASSNAME="{attr(classname)}">'
        if len(cache) < 20000:
            cache[classname] = head
    return head


def instancename_head(classname: str) -> str:
    """``<INSTANCENAME CLASSNAME="...">`` (cached per class name)."""
    return _NAME_TAGS.get(classname) or _class_tag(_NAME_TAGS, "INSTANCENAME", classname)


def _key_tag(name: str) -> str:
    tag = _KEY_TAGS.get(name)
    if tag is None:
        tag = f'<KEYBINDING NAME="{attr(name)}">'
        if len(_KEY_TAGS) < 20000:
            _KEY_TAGS[name] = tag
    return tag


def keybinding_xml(name: str, value: Any) -> str:
    """<KEYBINDING> of key `name` with `value` (a key binding's value as a path holds it)."""
    tag = _key_tag(name)
    if type(value) is str:
        return f'{tag}<KEYVALUE VALUETYPE="string">{esc(value)}</KEYVALUE></KEYBINDING>'
    return f"{tag}{_keyvalue(value)}</KEYBINDING>"


def instancename_xml(path: CIMInstanceName) -> str:
    """<INSTANCENAME> of a path (namespace and host are not part of it)."""
    parts = [instancename_head(path.classname)]
    for name, value in iter_keybindings(path):
        if type(value) is str:
            # keybinding_xml inline for string keys (an AssociatorNames writes ~60)
            parts.append(f'{_KEY_TAGS.get(name) or _key_tag(name)}<KEYVALUE VALUETYPE="string">'
                         f'{_escape(value, _ESC_TABLE) if _NEEDS.search(value) else value}'
                         "</KEYVALUE></KEYBINDING>")
        else:
            parts.append(keybinding_xml(name, value))
    parts.append("</INSTANCENAME>")
    return "".join(parts)


def localinstancepath_xml(path: CIMInstanceName, namespace: Optional[str] = None) -> str:
    ns = path.namespace or namespace or ""
    return (f"<LOCALINSTANCEPATH>{localnamespacepath_xml(ns)}"
            f"{instancename_xml(path)}</LOCALINSTANCEPATH>")


def instancepath_xml(path: CIMInstanceName, host: str, namespace: Optional[str] = None) -> str:
    ns = path.namespace or namespace or ""
    return (f"<INSTANCEPATH>{namespacepath_xml(path.host or host, ns)}"
            f"{instancename_xml(path)}</INSTANCEPATH>")


def classname_xml(name: str) -> str:
    return f'<CLASSNAME NAME="{attr(name)}"/>'


def classpath_xml(cpath: CIMClassName, host: str, namespace: str) -> str:
    return (f"<CLASSPATH>{namespacepath_xml(cpath.host or host, cpath.namespace or namespace)}"
            f"{classname_xml(cpath.classname)}</CLASSPATH>")


def reference_xml(ref: Any) -> str:
    """<VALUE.REFERENCE> for an instance path (with the most detail it has)."""
    if isinstance(ref, CIMClassName):
        if ref.host and ref.namespace:
            inner = classpath_xml(ref, ref.host, ref.namespace)
        elif ref.namespace:
            inner = (f"<LOCALCLASSPATH>{localnamespacepath_xml(ref.namespace)}"
                     f"{classname_xml(ref.classname)}</LOCALCLASSPATH>")
        else:
            inner = classname_xml(ref.classname)
    elif ref.host and ref.namespace:
        inner = instancepath_xml(ref, ref.host)
    elif ref.namespace:
        inner = localinstancepath_xml(ref)
    else:
        inner = instancename_xml(ref)
    return f"<VALUE.REFERENCE>{inner}</VALUE.REFERENCE>"


# Property tags are cached: a response repeats the same few dozen of them.
_TAGS: dict[tuple, tuple[str, str]] = {}


def _prop_tags(name: str, ptype: str, is_array: bool, embedded: Optional[str],
               refclass: Optional[str], origin: Optional[str]) -> tuple[str, str]:
    key = (name, ptype, is_array, embedded, refclass, origin)
    tags = _TAGS.get(key)
    if tags is None:
        extra = f' CLASSORIGIN="{attr(origin)}"' if origin else ""
        if ptype == "reference":
            rc = f' REFERENCECLASS="{attr(refclass)}"' if refclass else ""
            tags = (f'<PROPERTY.REFERENCE NAME="{attr(name)}"{rc}{extra}>',
                    "</PROPERTY.REFERENCE>")
        else:
            emb = f' EmbeddedObject="{embedded}"' if embedded else ""
            el = "PROPERTY.ARRAY" if is_array else "PROPERTY"
            tags = (f'<{el} NAME="{attr(name)}" TYPE="{ptype}"{emb}{extra}>', f"</{el}>")
        if len(_TAGS) < 20000:
            _TAGS[key] = tags
    return tags


def _emb_kind(value: Any) -> Optional[str]:
    probe = value[0] if isinstance(value, list) and value else value
    if isinstance(probe, CIMInstance):
        return "instance"
    if isinstance(probe, CIMClass):
        return "object"
    return None


def _value_xml(ptype: str, is_array: bool, value: Any) -> str:
    if value is None:
        return ""
    if ptype == "reference":
        return reference_xml(value)
    if is_array:
        items = []
        for v in value:
            if v is None:
                items.append("<VALUE.NULL/>")
            else:
                items.append(f"<VALUE>{esc(value_text(v))}</VALUE>")
        return f"<VALUE.ARRAY>{''.join(items)}</VALUE.ARRAY>"
    return f"<VALUE>{esc(value_text(value))}</VALUE>"


def _int_value(v: Any) -> str:
    return "<VALUE>%d</VALUE>" % v


def _bool_value(v: Any) -> str:
    return "<VALUE>TRUE</VALUE>" if v else "<VALUE>FALSE</VALUE>"


def _formatter(pspec) -> Any:
    """A function value -> XML for the values of a property of class spec `pspec`."""
    ptype, is_array = pspec.type, pspec.is_array
    if not is_array and ptype == "string" and not pspec.embedded_object:
        def fmt(v: Any) -> str:
            if type(v) is str:
                return f"<VALUE>{esc(v)}</VALUE>" if _NEEDS.search(v) else f"<VALUE>{v}</VALUE>"
            return _value_xml(ptype, False, v)
        return fmt
    if not is_array and ptype in INT_TYPES:
        return _int_value
    if not is_array and ptype == "boolean":
        return _bool_value
    if is_array and ptype == "string" and not pspec.embedded_object:
        def fmt(v: Any) -> str:
            # What _value_xml writes, without its per-item dispatch (RASDs carry string
            # arrays: every enumerated instance writes one or two).
            return "<VALUE.ARRAY>" + "".join(
                "<VALUE.NULL/>" if x is None else
                (f"<VALUE>{esc(x)}</VALUE>" if type(x) is str else
                 f"<VALUE>{esc(value_text(x))}</VALUE>") for x in v) + "</VALUE.ARRAY>"
        return fmt
    if is_array and ptype in INT_TYPES:
        def fmt(v: Any) -> str:
            return "<VALUE.ARRAY>" + "".join(
                "<VALUE.NULL/>" if x is None else "<VALUE>%d</VALUE>" % x for x in v) + \
                "</VALUE.ARRAY>"
        return fmt
    return lambda v: _value_xml(ptype, is_array, v)


def _model_xml(inst: CIMInstance, spec) -> str:
    """<INSTANCE> of a provider's instance model: per-property work precomputed in its spec."""
    fmts = spec._cache.get("xml")
    if fmts is None:
        fmts = spec._cache["xml"] = {}
    parts = [f'<INSTANCE CLASSNAME="{attr(inst.classname)}">']
    append = parts.append
    props = spec.props
    for lk, prop in iter_props(inst._properties):
        entry = fmts.get(lk)
        if entry is None:
            pspec = props.get(lk)
            if pspec is None:
                entry = False
            else:
                tags = _prop_tags(pspec.name, pspec.type, pspec.is_array, pspec.embedded_object,
                                  pspec.reference_class, None)
                entry = (tags[0], tags[1], _formatter(pspec), pspec.type, pspec.is_array,
                         tags[0] + tags[1])
            fmts[lk] = entry
        # Slots read directly (FAST guarantees the layout): property getters cost.
        if entry is False or prop._type != entry[3] or prop._is_array != entry[4]:
            append(_property_xml(prop, None))
            continue
        value = prop._value
        if value is None:
            append(entry[5])  # complete instances carry many NULLs: one string each
        else:
            append(entry[0] + entry[2](value) + entry[1])
    append("</INSTANCE>")
    return "".join(parts)


#: Property texts remembered per property of a class plan: enumerations repeat the same
#: few values (ResourceType, AllocationUnits, Caption ...) in every instance.
TEXTS_PER_PROPERTY = 64


def values_plan(spec, wanted: frozenset, complete: bool, origin: bool = False
                ) -> tuple[dict, tuple, dict]:
    """How the wanted properties of class `spec` are written: ({folded name: (start tag,
    end tag, formatter, {value: text} or None)}, ((folded name, text when unset), ...)
    in declaration order, {names set: text of the others}); cached per class,
    PropertyList, completeness and `origin` (CLASSORIGIN attributes, from the class
    spec).  The text when unset is the class default, else NULL, for a complete
    instance; nothing otherwise.

    The one description of a class's property texts: the values path of instance
    models (:func:`instance_xml`) and the direct enumeration path
    (:mod:`kvm_providers.provider.direct`) both write through it."""
    key = ("xmlplan", wanted, complete, origin)
    plan = spec._cache.get(key)
    if plan is None:
        rows: dict[str, tuple] = {}
        unset: list[tuple[str, str]] = []
        for lk, p in spec.props.items():
            if lk not in wanted:
                continue
            start, end = _prop_tags(p.name, p.type, p.is_array, p.embedded_object,
                                    p.reference_class, p.class_origin if origin else None)
            fmt = _formatter(p)
            # Not for reals: 0.0 == -0.0, but their texts differ.
            rows[lk] = (start, end, fmt, None if p.type in ("real32", "real64") else {})
            if complete:
                unset.append((lk, start + end if p.default is None
                              else start + fmt(p.default) + end))
        plan = spec._cache[key] = (rows, tuple(unset), {})
    return plan


def property_text(row: tuple, value: Any) -> str:
    """The <PROPERTY> text of `value` (of the property's declared type, not None) for
    `row`, a row of :func:`values_plan`."""
    start, end, fmt, texts = row
    # Values of one property have its declared type (converted), so equal values have
    # equal texts; lists and instances are not hashable.
    try:
        text = texts.get(value) if texts is not None else None
    except TypeError:
        return start + fmt(value) + end
    if text is None:
        text = start + fmt(value) + end
        if texts is not None and len(texts) < TEXTS_PER_PROPERTY:
            texts[value] = text
    return text


def unset_text(unset: tuple, rest: dict, names: Any) -> str:
    """The text of the properties of a complete instance that are not among `names`
    (the folded names set, in the order set): `unset` and `rest` of :func:`values_plan`.
    The instances of a class mostly set the same properties: the text of the others is
    joined once per such set."""
    if len(names) >= len(unset):
        return ""
    key = tuple(names)
    text = rest.get(key)
    if text is None:
        text = "".join(t for lk, t in unset if lk not in names)
        if len(rest) < TEXTS_PER_PROPERTY:
            rest[key] = text
    return text


#: Start tags of INSTANCE per class name.
_INSTANCE_TAGS: dict[str, str] = {}


def instance_head(classname: str) -> str:
    """``<INSTANCE CLASSNAME="...">`` (cached per class name)."""
    return _INSTANCE_TAGS.get(classname) or _class_tag(_INSTANCE_TAGS, "INSTANCE", classname)


def _values_xml(classname: str, spec, wanted: frozenset, complete: bool,
                values: dict) -> str:
    """<INSTANCE> straight from a model's assigned values ({folded name: typed value}):
    the same text as :func:`_model_xml` writes for the same instance (properties in the
    order they were set, then the unset ones of a complete instance in declaration
    order), with no pywbem object built."""
    rows, unset, rest = values_plan(spec, wanted, complete)
    parts = [instance_head(classname)]
    append = parts.append
    for lk, value in values.items():
        row = rows[lk]
        append(row[0] + row[1] if value is None else property_text(row, value))
    if complete:
        append(unset_text(unset, rest, values))
    append("</INSTANCE>")
    return "".join(parts)


def property_xml(prop: Any, class_origin: Optional[dict[str, str]] = None) -> str:
    """<PROPERTY> (.ARRAY, .REFERENCE) of a pywbem CIMProperty; `class_origin` ({folded
    name: class}) adds CLASSORIGIN."""
    return _property_xml(prop, class_origin)


def _property_xml(prop, class_origin: Optional[dict[str, str]]) -> str:
    ptype = prop.type
    value = prop.value
    emb = prop.embedded_object or (_emb_kind(value) if ptype == "string" else None)
    origin = class_origin.get(prop.name.lower()) if class_origin else None
    open_tag, close_tag = _prop_tags(prop.name, ptype, prop.is_array, emb,
                                     prop.reference_class, origin)
    if value is None:
        return open_tag + close_tag
    return open_tag + _value_xml(ptype, prop.is_array, value) + close_tag


def instance_xml(inst: CIMInstance, class_origin: Optional[dict[str, str]] = None,
                 nulls: Iterable[tuple[str, str, bool, Optional[str], Optional[str]]] = (),
                 ) -> str:
    """<INSTANCE> of `inst`.

    `class_origin` ({lower-case property name: class}) adds CLASSORIGIN
    attributes.  `nulls` are (name, type, is_array, embedded, reference class)
    of requested properties the instance does not carry: written as NULL.
    """
    spec = getattr(inst, "_spec", None)
    if spec is not None and class_origin is None and not nulls:
        values = inst.assigned()
        if values is not None:
            return _values_xml(inst.classname, spec, inst.wanted, inst.complete, values)
        if FAST:
            return _model_xml(inst, spec)
    parts = [f'<INSTANCE CLASSNAME="{attr(inst.classname)}">']
    append = parts.append
    for prop in inst.properties.values():
        append(_property_xml(prop, class_origin))
    for name, ptype, is_array, emb, refclass in nulls:
        origin = class_origin.get(name.lower()) if class_origin else None
        open_tag, close_tag = _prop_tags(name, ptype, is_array, emb, refclass, origin)
        append(open_tag)
        append(close_tag)
    append("</INSTANCE>")
    return "".join(parts)


class InstanceForm:
    """How the instances of one enumeration response are written: each as
    ``<tag>`` holding its name (VALUE.NAMEDINSTANCE: the INSTANCENAME) or its full path
    (VALUE.INSTANCEWITHPATH, VALUE.OBJECTWITHPATH: the INSTANCEPATH with `host` and
    `namespace`), then the INSTANCE, with CLASSORIGIN attributes if `origin`.

    Both ways of writing an enumeration use it: :meth:`of_instance` for an instance
    object, :meth:`item` for an instance written straight from its values
    (:mod:`kvm_providers.provider.direct`), so the two write the same text.
    """

    __slots__ = ("tag", "namespace", "host", "origin", "_head", "_tail", "_path_head",
                 "_path_tail")

    def __init__(self, tag: str, namespace: str, host: Optional[str] = None,
                 origin: bool = False):
        self.tag = tag
        self.namespace = namespace
        self.host = host
        self.origin = bool(origin)
        self._head, self._tail = f"<{tag}>", f"</{tag}>"
        if tag == "VALUE.NAMEDINSTANCE":
            self._path_head = self._path_tail = ""
        else:
            self._path_head = f"<INSTANCEPATH>{namespacepath_xml(host or '', namespace)}"
            self._path_tail = "</INSTANCEPATH>"

    def of_instance(self, inst: CIMInstance, class_origin: Optional[dict[str, str]]) -> str:
        """The item of an instance object (`class_origin` as for :func:`instance_xml`)."""
        if self.tag == "VALUE.NAMEDINSTANCE":
            name = instancename_xml(inst.path)
        else:
            name = instancepath_xml(inst.path, self.host or "", self.namespace)
        return f"{self._head}{name}{instance_xml(inst, class_origin)}{self._tail}"

    def item(self, name_xml: str, inst_xml: str) -> str:
        """The item of an instance in this response's namespace: its INSTANCENAME and
        INSTANCE texts."""
        return (f"{self._head}{self._path_head}{name_xml}{self._path_tail}{inst_xml}"
                f"{self._tail}")


# Elements that pywbem writes self-closed when they have no content, and that
# clients with hand-written parsers (SBLIM wbemcli) only accept with an end tag.
_SELF_CLOSED = re.compile(r"<(PROPERTY|PROPERTY\.ARRAY|PROPERTY\.REFERENCE|METHOD|PARAMETER"
                          r"|PARAMETER\.ARRAY|PARAMETER\.REFERENCE|PARAMETER\.REFARRAY"
                          r"|QUALIFIER)( [^<>]*)?/>")


def class_xml(cls: CIMClass) -> str:
    """<CLASS> of a class (pywbem's writer; empty elements written with end tags)."""
    return _SELF_CLOSED.sub(lambda m: f"<{m.group(1)}{m.group(2) or ''}></{m.group(1)}>",
                            cls.tocimxmlstr())


def qualifier_decl_xml(qd: CIMQualifierDeclaration) -> str:
    return qd.tocimxmlstr()


def paramvalue_xml(name: str, ptype: Optional[str], value: Any, tag: str = "PARAMVALUE") -> str:
    """A <PARAMVALUE> (or <RETURNVALUE>, tag='RETURNVALUE') of a method response."""
    is_array = isinstance(value, list)
    emb = _emb_kind(value) if ptype in (None, "string", "instance", "object") else None
    if ptype in ("instance", "object") or emb:
        tattr = ' PARAMTYPE="string"'
        emb_attr = f' EmbeddedObject="{emb or ("instance" if ptype == "instance" else "object")}"'
    else:
        tattr = f' PARAMTYPE="{ptype}"' if ptype else ""
        emb_attr = ""
    nattr = f' NAME="{attr(name)}"' if tag == "PARAMVALUE" else ""
    if value is None:
        body = ""
    elif ptype == "reference" and not is_array:
        body = reference_xml(value)
    elif ptype == "reference":
        body = "<VALUE.REFARRAY>" + "".join(
            reference_xml(v) if v is not None else "<VALUE.NULL/>" for v in value) + \
            "</VALUE.REFARRAY>"
    else:
        body = _value_xml(ptype or "string", is_array, value)
    return f"<{tag}{nattr}{tattr}{emb_attr}>{body}</{tag}>"


def error_xml(code: int, description: str) -> str:
    return f'<ERROR CODE="{int(code)}" DESCRIPTION="{attr(description)}"/>'


def message_head(msg_id: str, protocol_version: str = "1.0") -> str:
    """The start of a response document, up to the MESSAGE start tag."""
    return ('<?xml version="1.0" encoding="utf-8" ?>\n'
            '<CIM CIMVERSION="2.0" DTDVERSION="2.0">'
            f'<MESSAGE ID="{attr(msg_id)}" PROTOCOLVERSION="{attr(protocol_version)}">')


def message_tail() -> str:
    return "</MESSAGE></CIM>"
