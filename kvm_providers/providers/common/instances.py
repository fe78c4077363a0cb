"""Filling instance models quickly, and only with what the client asked for.

A provider knows which properties it can compute (a mapping table, a list);
:func:`wanted_in` intersects them with what the model wants (PropertyList)
and what the class defines, once per class and PropertyList, so that nothing
is computed that was not asked for.  :func:`put` sets a computed value
through the model (which converts it to the declared type); None values are
left out of the instance.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

import pywbem
from pywbem import CIMProperty

from kvm_providers.cimxml import writer as W
from kvm_providers.provider import coerce
from kvm_providers.provider.model import InstanceModel, check_values
from kvm_providers.schema import default_schema
from kvm_providers.schema.valuemaps import CIM_EnabledLogicalElement, CIM_ManagedSystemElement
from kvm_providers.virt.mapping import Const, View
from kvm_providers.virt.props import Props

__all__ = ["wanted_in", "put", "fill_from_table", "fill", "ENABLED_AND_OK", "props_of",
           "class_defaults", "write_from_table", "write_values", "table_instance_xml",
           "table_item_writer", "table_values"]

#: The state of an element that is simply up and well (the hosts, the services):
#: Enabled, RequestedState Not Applicable (no state change is pending or possible),
#: OperationalStatus and HealthState OK.
ENABLED_AND_OK: Mapping[str, Any] = {
    "EnabledState": CIM_EnabledLogicalElement.EnabledState.Enabled,
    "RequestedState": CIM_EnabledLogicalElement.RequestedState.Not_Applicable,
    "OperationalStatus": [CIM_ManagedSystemElement.OperationalStatus.OK],
    "HealthState": CIM_ManagedSystemElement.HealthState.OK,
}


def wanted_in(model: Any, names: Sequence[str] | Mapping[str, Any]) -> list[tuple[str, Any]]:
    """[(name as given, PropSpec)] of `names` that the model wants and its class defines.

    Cached in the class's spec per (PropertyList, names): keyed by the names
    themselves, so that a fresh dict per call is as good as a module-level table.
    """
    cache = model.spec._cache
    key = ("plan", model.wanted, names if type(names) is tuple else tuple(names))
    plan = cache.get(key)
    if plan is None:
        props, wanted = model.spec.props, model.wanted
        plan = []
        for name in names:
            lk = name.lower()
            pspec = props.get(lk)
            if pspec is not None and lk in wanted and not pspec.is_key:
                plan.append((name, pspec))
        cache[key] = plan
    return plan


def put(inst: Any, pspec: Any, value: Any) -> None:
    """Set property `pspec` of `inst` to `value` (converted to the declared type); skip None."""
    if value is not None:
        inst[pspec.name] = value


def _table_plan(model: Any, table: Mapping[str, Any]) -> list[tuple]:
    """[(property name, folded name, reader or None, pre-typed constant)] of a table for
    a model."""
    # Tables are module-level constants: keyed by identity, and kept alive by the key.
    cache = model.spec._cache
    key = ("table", model.wanted, id(table))
    hit = cache.get(key)
    plan = hit[1] if hit is not None and hit[0] is table else None
    if plan is None:
        plan = []
        for name, pspec in wanted_in(model, table):
            f = table[name]
            lk = pspec.name.casefold()
            if isinstance(f, Const):
                plan.append((pspec.name, lk, None, coerce(pspec.type, pspec.is_array,
                                                          f.value)))
            else:
                plan.append((pspec.name, lk, f.reader(), None))
        cache[key] = (table, plan)
    return plan


def fill_from_table(inst: Any, model: Any, table: Mapping[str, Any], element: Any,
                    ctx: Any = None) -> None:
    """Set every wanted property that `table` (a mapping table) maps, read from `element`
    (an lxml element, or a mapping.View of one)."""
    view = element if type(element) is View else View(element)
    plan = _table_plan(model, table)
    target = inst.fill_target() if type(inst) is InstanceModel else None
    if target is None:
        for name, _lk, read, const in plan:
            value = const if read is None else read(view, ctx)
            if value is not None:
                inst[name] = value
        return
    # What InstanceModel.__setitem__ does for a wanted non-key property, its lookups
    # done once per table (issue 16: a fifth of a large enumeration was those lookups).
    vals, setters = target
    for name, lk, read, const in plan:
        value = const if read is None else read(view, ctx)
        if value is None:
            continue
        spec, conv, exact, allowed = setters[lk]
        if type(value) is not exact:
            if isinstance(value, CIMProperty):
                inst[name] = value
                continue
            try:
                value = conv(value)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{inst.classname}.{name}: {exc}") from None
        if allowed is not None and (spec.is_array or value not in allowed):
            check_values(inst.classname, spec.name, spec.values, spec.is_array, value)
        vals[lk] = value


def _direct_table_plan(plan: Any, table: Mapping[str, Any]) -> list[tuple]:
    """[(folded name, reader, constant's text, raw types, {raw value: text})] of a table
    for a DirectPlan: the properties and constants of :func:`_table_plan`, in the same
    order.  Compiled with the first instance written (a constant's text - converted and
    checked against the ValueMap as each model's fill does it - then too, so that an
    enumeration refuses a bad constant where the model path refuses it: at its first
    instance)."""
    hit = plan.memo.get(id(table))
    if hit is not None and hit[0] is table:
        return hit[1]
    rows = []
    for name, pspec in wanted_in(plan, table):
        f = table[name]
        lk = pspec.name.casefold()
        if isinstance(f, Const):
            value = coerce(pspec.type, pspec.is_array, f.value)
            if value is not None:
                rows.append((lk, None, plan.text(lk, value), None, None))
        else:
            raw, texts = plan.remembered(lk)
            rows.append((lk, f.reader(), None, raw, texts))
    plan.memo[id(table)] = (table, rows)      # the table is kept alive with its rows
    return rows


def write_from_table(texts: dict[str, str], plan: Any, table: Mapping[str, Any],
                     element: Any, ctx: Any = None) -> None:
    """fill_from_table() for the direct path (provider.direct): the property texts of
    every wanted property that `table` maps, read from `element`, into `texts` (None
    values leave a property unset, as they leave a model's)."""
    view = element if type(element) is View else View(element)
    text = plan.text
    for lk, read, const, raw, known in _direct_table_plan(plan, table):
        if read is None:
            texts[lk] = const
            continue
        value = read(view, ctx)
        if value is None:
            continue
        # The text of a value met before, else plan.text (conversion, check, format).
        t = known.get(value) if known is not None and type(value) in raw else None
        texts[lk] = t if t is not None else text(lk, value)


def table_instance_xml(texts: dict[str, str], plan: Any, table: Mapping[str, Any],
                       element: Any, ctx: Any = None) -> str:
    """``plan.instance_xml(texts)`` after ``write_from_table(texts, plan, table, element,
    ctx)``, the same text, through a function compiled once per plan and table
    (:func:`_compile_table`).  `texts`: the keys as ``plan.keyed`` gave them, nothing
    else (the compiled function knows which properties are set besides them)."""
    view = element if type(element) is View else View(element)
    if not plan.writes_text:
        # A plan whose "texts" are values (the CMPI adapter's): nothing to join; the
        # values read by the compiled reader, as the text is written (issue 10 item 12).
        return plan.instance_xml(_compiled(plan, table, True)(texts, view, ctx))
    return _compiled(plan, table)([plan.head, *texts.values()], view, ctx, "</INSTANCE>")


def table_values(texts: dict[str, Any], plan: Any, table: Mapping[str, Any],
                 element: Any, ctx: Any = None) -> dict[str, Any]:
    """:func:`write_from_table` (the same entries, in the same order, into `texts`, which
    it returns) through a function compiled once per plan and table
    (:func:`_compile_table`, ``into_dict``): for the plans whose "texts" are values (the
    CMPI adapter's CMPIPlan) and for callers that add more texts after the table's
    (the VSSDs)."""
    view = element if type(element) is View else View(element)
    return _compiled(plan, table, True)(texts, view, ctx)


def _compiled(plan: Any, table: Mapping[str, Any], into_dict: bool = False,
              frame: Optional[tuple[str, str, str, str]] = None) -> Any:
    """The writer :func:`_compile_table` makes of `plan` and `table` (and `frame`), made
    once."""
    key = ("compiled", id(table), into_dict, frame)
    hit = plan.memo.get(key)
    if hit is None or hit[0] is not table:
        hit = plan.memo[key] = (table, _compile_table(plan, table, into_dict, frame))
    return hit[1]


#: Markers written through a form's ``item`` to find the fixed texts around its name and
#: instance (as DirectPlan finds those around its one key).
_NAME_MARK, _INST_MARK = "Kvm0Name0Mark", "Kvm0Inst0Mark"


def table_item_writer(form: Any, plan: Any, table: Mapping[str, Any],
                      last: Optional[list[Any]] = None
                      ) -> Optional[Callable[[Any, Any, Any, Any], Any]]:
    """``item(prefix, suffix, view, ctx)``: the response item of the instance of
    `plan`'s class whose one key is ``prefix + suffix``, its other properties read
    through `table` from `view` (a mapping.View) - what ``form.item(iname,
    table_instance_xml(texts, plan, table, view, ctx))`` gives with ``texts, iname =
    plan.keyed(prefix + suffix)``, the same text.  The key in two parts: a part shared
    by many instances (a domain's "<name>/") and a part that recurs (a device id), each
    escaped once.

    The item is one join: no dict of key texts, no instance text copied into the item
    (issue 16, stop 23: the key and the item were a sixth of a RASD's write).  A plan
    that writes no text (the CMPI adapter's) gets the form's own
    ``values_item_writer(plan, read)`` of the compiled reader of values `read`, if
    it has one (issue 10 item 12, stop 25).  None where that short way does not
    apply - a plan without one string key, a form whose item is not a fixed frame
    of text around the name and the instance - and the caller writes as before
    (keyed, table_instance_xml, item).  Get one per enumeration (it remembers the
    last prefix) and table, not per instance.  `last`: ``[prefix, escaped]``, the
    last prefix shared by the writers of one enumeration (one thread), so that a
    domain's is escaped once for all its classes."""
    if not plan.writes_text:
        own = getattr(form, "values_item_writer", None)
        return None if own is None else own(plan, _compiled(plan, table, True))

    def general(prefix: Any, suffix: Any, view: Any, ctx: Any) -> Any:
        texts, iname = plan.keyed(prefix + suffix)
        return form.item(iname, table_instance_xml(texts, plan, table, view, ctx))
    one = plan.one_key()
    frame = form.item(_NAME_MARK, _INST_MARK) if one is not None else None
    if one is None or not isinstance(frame, str) or frame.count(_NAME_MARK) != 1 or \
            frame.count(_INST_MARK) != 1 or frame.find(_NAME_MARK) > frame.find(_INST_MARK):
        return None
    p0, p1, n0, n1 = one
    start, _m, rest = frame.partition(_NAME_MARK)
    middle, _m, end = rest.partition(_INST_MARK)
    make = _compiled(plan, table, frame=(start + n0, n1 + middle + plan.head + p0, p1,
                                         "</INSTANCE>" + end))
    # The escaping is per character, so the escaped key is the escaped parts joined.
    # The last prefix, escaped, and the suffixes' (at most W.TEXTS_PER_PROPERTY): this
    # writer's own, not shared with another enumeration's (a thread's).
    return make(general, [None, ""] if last is None else last, {})


#: Texts of the unset rest kept per compiled table, at most (one per set of properties
#: an instance leaves unset; the instances of a class have a handful).
_RESTS_KEPT = 1024


def _compile_table(plan: Any, table: Mapping[str, Any], into_dict: bool = False,
                   frame: Optional[tuple[str, str, str, str]] = None) -> Any:
    """A function ``(parts, View, ctx, tail) -> text`` appending to `parts` (the
    instance's start: its head and key texts, after what else the caller writes before
    it) what
    :func:`write_from_table` and ``plan.instance_xml`` write, generated as Python source
    for this plan and table (issue 16, stop 21: the loop over the rows, a dict store
    per property and the per-instance key of the unset rest were a third of a RASD's
    table write).

    Per row, in the table's order: a constant's text (converted and checked now, as
    :func:`_direct_table_plan` does); an attribute or element test read in place
    (``Field.inline``), the element of a path looked up once for every row reading
    it; a :class:`~kvm_providers.virt.mapping.OneItemList` from the value of its field's
    row when that was read before; else a call of the field's reader.  A value met before takes its remembered
    text, any other goes through ``plan.text`` (conversion, ValueMap check, format);
    a plain string of a plan whose texts are values (``string_row``'s formatter None)
    is stored as it is; a list of strings of a string array property is written in
    place (``string_array_row``).  Each row that is set sets a bit; the text of the properties left unset is kept
    per such mask; then `tail` (``</INSTANCE>``, and what follows it), all joined.

    `into_dict`: instead, a function ``(texts, View, ctx) -> texts`` storing each row's
    text by its folded name in the dict `texts` (and returning it): what
    :func:`write_from_table` stores, the same reads and texts generated by the same
    lines - for a plan whose "texts" are the values themselves (the CMPI adapter's
    CMPIPlan, issue 10 item 12: the generic loop was the CMPI path's surplus over the
    embedded server's) and for callers adding texts after the table's."""
    ns: dict[str, Any] = {"text": plan.text, "esc": W.esc}
    if into_dict:
        lines = ["def write(d, view, ctx):"]
    elif frame is None:
        lines = ["def write(parts, view, ctx, tail):",
                 "    add = parts.append",
                 "    m = 0"]
    else:
        # table_item_writer's item, the key's frame and escapes written before the rows
        # (no second call per instance; issue 16, stop 25).
        ns["BEFORE"], ns["BETWEEN"], ns["P1"], ns["TAIL"] = frame
        ns["LIMIT"] = W.TEXTS_PER_PROPERTY
        lines = ["def write(prefix, suffix, view, ctx):",
                 "    if type(prefix) is not str or type(suffix) is not str:",
                 "        return general(prefix, suffix, view, ctx)",
                 "    if prefix is not last[0]:",
                 "        last[0], last[1] = prefix, esc(prefix)",
                 "    ep = last[1]",
                 "    es = suffixes.get(suffix)",
                 "    if es is None:",
                 "        es = esc(suffix)",
                 "        if len(suffixes) < LIMIT:",
                 "            suffixes[suffix] = es",
                 "    parts = [BEFORE, ep, es, BETWEEN, ep, es, P1]",
                 "    add = parts.append",
                 "    m = 0"]

    def store(indent: str, lk: str, expr: str) -> None:
        """The lines setting row `lk` to `expr` (its text): stored in the dict, or added
        to the parts and its mask bit set."""
        if into_dict:
            lines.append(f"{indent}d[{lk!r}] = {expr}")
        else:
            lines.append(f"{indent}add({expr})")
            lines.append(f"{indent}m |= {1 << len(bits)}")
            bits.append(lk)
    kids = False                     # whether `k`, the element's children by tag, is set
    always = set(plan.key_names)     # set in every instance: the keys, the constants
    bits: list[str] = []             # the folded name of each mask bit
    nodes: dict[str, str] = {}       # path -> the local holding its element
    # The fields whose value a OneItemList row of the table takes (by identity), and the
    # locals keeping the values of those read so far.
    shared = {id(how[1]) for f in table.values() if (how := f.inline()) is not None
              and how[0] == "oneitem"}
    values: dict[int, str] = {}
    for i, (name, pspec) in enumerate(wanted_in(plan, table)):
        f = table[name]
        lk = pspec.name.casefold()
        lines.append(f"    # {pspec.name}")
        if isinstance(f, Const):
            value = coerce(pspec.type, pspec.is_array, f.value)
            if value is not None:
                ns[f"C{i}"] = plan.text(lk, value)
                lines.append(f"    d[{lk!r}] = C{i}" if into_dict else f"    add(C{i})")
                always.add(lk)
            continue
        how = f.inline()
        if how is not None and how[0] == "oneitem":
            # The value of an earlier row, as a one-item list; if that row is not read
            # here (not wanted, or after this one), the field's own reader.
            kept = values.get(id(how[1]))
            how = None if kept is None else ("oneitem", kept)
        if how is not None and how[0] != "oneitem" and how[1]:
            node = nodes.get(how[1])
            if node is None:
                node = nodes[how[1]] = f"n{len(nodes)}"
                if not kids:
                    lines.append("    k = view.children()")
                    kids = True
                # What View.find answers, without its call (issue 16, stop 22): a tag is
                # its child index's entry; a path of steps is None without its first.
                first = how[1].split("/", 1)[0]
                lines.append(f"    {node} = k.get({how[1]!r})" if first == how[1] else
                             f"    {node} = None if k.get({first!r}) is None else "
                             f"view.find({how[1]!r})")
        if how is None:
            ns[f"R{i}"] = f.reader()
            lines.append(f"    v = R{i}(view, ctx)")
        elif how[0] == "oneitem" and not into_dict and id(f) not in shared and \
                plan.string_array_row(lk) is not None:
            # A one-item list of a string array (HostResource, Connection): of a str,
            # its text written straight, without the list and the items' test (issue 16,
            # stop 25); what the general lines below write.
            ns[f"A{i}"], ns[f"B{i}"] = plan.string_array_row(lk)
            lines += [f"    if {how[1]}:",
                      f"        if type({how[1]}) is str:",
                      f"            t = A{i} + '<VALUE>' + esc({how[1]}) + '</VALUE>' + B{i}",
                      "        else:",
                      f"            t = text({lk!r}, [{how[1]}])"]
            store("        ", lk, "t")
            continue
        elif how[0] == "oneitem":
            lines.append(f"    v = [{how[1]}] if {how[1]} else None")
        elif how[0] == "exists" and pspec.type == "boolean" and plan.unchecked(lk):
            # Always set, to one of two texts (converted and checked now, as the first
            # instance's text() would: a boolean has no ValueMap).
            ns[f"Y{i}"], ns[f"N{i}"] = plan.text(lk, True), plan.text(lk, False)
            expr = f"Y{i} if {node} is not None else N{i}"
            lines.append(f"    d[{lk!r}] = {expr}" if into_dict else f"    add({expr})")
            always.add(lk)
            continue
        elif how[0] == "exists":
            lines.append(f"    v = {node} is not None")
        elif how[0] in ("attrnames", "attrvalues"):
            lines.append(f"    v = None if {node} is None else ({node}."
                         f"{'keys' if how[0] == 'attrnames' else 'values'}() or None)")
        else:
            _kind, path, attr, conv, default = how
            lines.append(f"    v = view.get({attr!r})" if not path else
                         f"    v = None if {node} is None else {node}.get({attr!r})")
            if conv is not None or default is not None:
                ns[f"D{i}"], ns[f"V{i}"] = default, conv
                lines.append(f"    v = D{i} if v is None else " +
                             ("v" if conv is None else f"V{i}(v)"))
        if id(f) in shared:
            values[id(f)] = f"s{i}"         # kept for the rows of a OneItemList of it
            lines.append(f"    s{i} = v")
        raw, known = plan.remembered(lk)
        lines.append("    if v is not None:")
        plain = plan.string_row(lk)
        strings = plan.string_array_row(lk)
        if plain is not None and plain[1] is None:
            # A plain string of a plan whose texts are values (CMPIPlan): a str is its
            # own value, no check applies (what text() gives, without its call).
            lines.append(f"        t = v if type(v) is str else text({lk!r}, v)")
            store("        ", lk, "t")
        elif plain is not None and known is not None:
            # A plain string property (paths, MACs, Parent ids: mostly new values): the
            # text that text() makes of a str, without its calls; remembered alike.
            ns[f"K{i}"] = known
            ns[f"S{i}"], ns[f"F{i}"], ns[f"E{i}"], ns[f"L{i}"] = plain
            lines += ["        if type(v) is str:",
                      f"            t = K{i}.get(v)",
                      "            if t is None:",
                      f"                t = S{i} + F{i}(v) + E{i}",
                      f"                if len(K{i}) < L{i}:",
                      f"                    K{i}[v] = t",
                      "        else:",
                      f"            t = text({lk!r}, v)"]
            store("        ", lk, "t")
        elif strings is not None:
            # A string array (HostResource, Connection, AddressValues ...: mostly a new
            # list per instance): of str items, the text that text() makes of it, without
            # its call (conversion and memo lookup; issue 16, stop 24).
            ns[f"A{i}"], ns[f"B{i}"] = strings
            lines += ["        if type(v) is list and all(type(x) is str for x in v):",
                      f"            t = A{i} + ''.join(['<VALUE>' + esc(x) + '</VALUE>' "
                      f"for x in v]) + B{i}",
                      "        else:",
                      f"            t = text({lk!r}, v)"]
            store("        ", lk, "t")
        elif raw is not None:
            ns[f"K{i}"], ns[f"T{i}"] = known, raw
            lines.append(f"        t = K{i}.get(v) if type(v) in T{i} else None")
            store("        ", lk, f"t if t is not None else text({lk!r}, v)")
        else:
            store("        ", lk, f"text({lk!r}, v)")
    if into_dict:
        lines.append("    return d")
        exec(compile("\n".join(lines), f"<table values {plan.classname}>", "exec"), ns)
        return ns["write"]
    rests: dict[int, str] = {}

    def rest(mask: int) -> str:
        """The unset wanted properties' text when the rows of `mask` are set."""
        text = rests.get(mask)
        if text is None:
            names = always | {lk for b, lk in enumerate(bits) if mask >> b & 1}
            text = plan.rest_xml(names)
            if len(rests) < _RESTS_KEPT:
                rests[mask] = text
        return text
    ns["rest"], ns["rests"] = rest, rests
    lines += ["    r = rests.get(m)",
              "    add(r if r is not None else rest(m))",
              "    add(tail)" if frame is None else "    add(TAIL)",
              "    return ''.join(parts)"]
    if frame is not None:
        # A maker of item writers, each with its own last prefix and suffixes.
        lines = ["def make(general, last, suffixes):",
                 *("    " + line for line in lines), "    return write"]
    exec(compile("\n".join(lines), f"<table writer {plan.classname}>", "exec"), ns)
    return ns["write" if frame is None else "make"]


def write_values(texts: dict[str, str], plan: Any, values: Mapping[str, Any],
                 names: Sequence[str]) -> None:
    """fill() for the direct path: the wanted properties of `names` from `values`
    ({name: value or zero-argument callable}) into `texts`."""
    key = ("values", names if type(names) is tuple else tuple(names))
    rows = plan.memo.get(key)
    if rows is None:
        rows = []
        for name, pspec in wanted_in(plan, names):
            lk = pspec.name.casefold()
            rows.append((name, lk, *plan.remembered(lk)))
        plan.memo[key] = rows
    text = plan.text
    for name, lk, raw, known in rows:
        value = values[name]
        if callable(value):
            value = value()
        if value is None:
            continue
        t = known.get(value) if known is not None and type(value) in raw else None
        texts[lk] = t if t is not None else text(lk, value)


def fill(inst: Any, model: Any, values: Mapping[str, Any],
         names: Sequence[str] | None = None) -> None:
    """Set wanted properties from a {name: value or zero-argument callable} mapping.

    Callables are only called for properties the client asked for.
    """
    for name, pspec in wanted_in(model, names if names is not None else values):
        value = values[name]
        if callable(value):
            value = value()
        if value is not None:
            put(inst, pspec, value)


# -- embedded instances from clients -------------------------------------------------------
# The libvirt layer takes a client's settings as Props (plain values by property
# name); these turn the CIM instances a method received into them.

def class_defaults(classname: str, namespace: str = "root/virt") -> dict[str, Any]:
    """{lower-case property name: MOF default} of a class ({} if it is not known)."""
    try:
        cls = default_schema().get_class(namespace, classname)
    except pywbem.CIMError:
        return {}
    return {p.name.lower(): p.value for p in cls.properties.values() if p.value is not None}


def props_of(instance: Any) -> Props:
    """The non-NULL properties of an embedded instance (a pywbem CIMInstance or a mapping).

    For a CIMInstance the class defaults come along (Props.defaults): CIM servers
    fill them into the instances clients send, so the libvirt layer can tell a
    value the client asked for from one a server filled in.
    """
    if hasattr(instance, "properties"):
        return Props({n: p.value for n, p in instance.properties.items()},
                     class_defaults(instance.classname))
    return Props(instance)
