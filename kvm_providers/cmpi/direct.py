"""Enumerations straight from the providers' values into CMPI instances (issue 10 item 12).

The embedded server writes the instances of a provider that offers a direct
path (``CIMProvider2.enum_direct``: the RASDs, the VSSDs, the snapshot VSSDs)
straight from the values it reads, without an instance model per instance
(:mod:`kvm_providers.provider.direct`).  The adapter takes the same path: the
provider fills a :class:`CMPIPlan` exactly as it fills the embedded server's
:class:`~kvm_providers.provider.direct.DirectPlan` -- each value converted to
its property's type and checked against the ValueMap there, by the one
implementation -- and what a checked value becomes is the value itself
instead of its CIM-XML text.  :class:`CMPIForm` then makes the CMPIInstance of
each instance's values with the class's conversion plan
(:meth:`.convert.Converter.instance_of_values`): the same CMPI calls, with
the same values and types, as for the instance model of those values.
Providers without a direct path are enumerated through their models, as
before (``ProviderProxy.MI_enumInstancesXml`` decides, for every host alike).
A GetInstance takes the same way where the provider offers one
(``CIMProvider2.get_direct``, the ComputerSystems: :func:`get_instance`).

A form may also read ahead for the parts of a request to come (:meth:`CMPIForm.defer`,
:mod:`.sharing`): the instances of the classes deferred are not made but kept as
rows - what the instance would be made of - and a later call's form makes them
(:meth:`CMPIForm.made`) with the same calls as if it had read them itself.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Optional

from pywbem import CIMInstance

from ..provider._fastcim import iter_keybindings
from ..provider.direct import DirectPlan
from .convert import Converter
from .templates import swig_function

__all__ = ["CMPIPlan", "CMPIForm", "Made", "get_instance"]


def _value_itself(_row: tuple, typed: Any) -> Any:
    return typed


class CMPIPlan(DirectPlan):
    """A DirectPlan whose "texts" are the converted, checked values ({folded name:
    value}, in the order set, as an instance model holds them) and whose instance
    is (plan, key bindings, values) for :meth:`CMPIForm.item`."""

    __slots__ = ("_value_key",)
    writes_text = False

    def __init__(self, spec: Any, wanted: frozenset[str], origin: bool):
        super().__init__(spec, wanted, origin)
        self._text_of = _value_itself
        # keyed()'s short way for one string key writes its text directly: not for
        # values.  Where it applies (one string key without a ValueMap: the settings'
        # InstanceID), the value is the key's value itself (see keyed).
        one = self._one_key
        self._value_key: Optional[tuple[str, str]] = \
            None if one is None else (one[0], spec.props[one[0]].name)
        self._one_key = None

    def keyed(self, *values: Any) -> tuple[dict[str, Any], Any]:
        """DirectPlan.keyed: ({folded key: value}, ((key name, value), ...)).  One string
        key without a ValueMap given a ``str``: what the general loop makes of it (a str
        is its own converted value, no check applies), without the loop (issue 10 item
        12: the loop was a sixth of the CMPI path's reading of a RASD)."""
        one = self._value_key
        if one is not None and len(values) == 1 and type(values[0]) is str:
            value = values[0]
            return {one[0]: value}, ((one[1], value),)
        return super().keyed(*values)

    def unchecked(self, lk: str) -> bool:
        """True if a value of wanted property `lk` (folded) meets no ValueMap check: a
        scalar, not an embedded object (its value is then what it converts to, whatever
        text the writer would make of it: the compiled table reader may store a
        boolean's two values or a string as it is)."""
        row = self._rows[lk]
        return row[4] is None and row[3] is not None

    def string_row(self, lk: str) -> Optional[tuple[str, Any, str, int]]:
        """``("", None, "", 0)`` when wanted property `lk` is a plain string (no ValueMap,
        a scalar, no embedded object): the value of a ``str`` is the str itself
        (formatter None: the compiled table reader stores it as it is, issue 10 item
        12); else None."""
        if not self.unchecked(lk) or self._rows[lk][3] is not str:
            return None
        return "", None, "", 0

    def _property_of(self, prop: Any) -> Any:
        return prop                 # set as given, as the model keeps it

    def _key_text(self, row: tuple, typed: Any) -> Any:
        return typed

    def _name_of(self, keys: list[tuple[str, Any]]) -> Any:
        return tuple(keys)

    def instance_xml(self, texts: dict[str, Any]) -> Any:  # type: ignore[override]
        """The instance of the values set: (this plan, its values) for the form."""
        return self, texts


class CMPIForm:
    """The response form of one EnumerateInstances CMPI call for
    ``ProviderProxy.MI_enumInstancesXml``: every item is a CMPIInstance made by
    `conv` in `namespace`, with the client's PropertyList `props` as its filter."""

    plan_class = CMPIPlan
    origin = False      # CMPI has no IncludeClassOrigin: the server adds what it adds

    def __init__(self, conv: Converter, namespace: str, props: Optional[list[str]]):
        self.conv = conv
        self.namespace = namespace
        self.props = props
        #: {folded class name: rows} of the classes read ahead for (:meth:`defer`).
        self.deferred: dict[str, list[tuple]] = {}
        self._makers: dict[int, Callable[[str, dict[str, Any]], Any]] = {}

    def defer(self, classnames: Iterable[str]) -> dict[str, list[tuple]]:
        """Keep the instances of `classnames` as rows instead of making them: their items
        are None (not for the server), each row appended to ``deferred[folded name]``,
        in the order read, for :meth:`made` of the call that answers for that class."""
        self.deferred = {cn.lower(): [] for cn in classnames}
        return self.deferred

    def _rows(self, classname: str) -> Optional[list[tuple]]:
        return self.deferred.get(classname.lower()) if self.deferred else None

    def made(self, rows: Iterable[tuple]) -> "Made":
        """The CMPIInstances of `rows` kept by another call's form (:meth:`defer`), in
        their order: what this form's items of the same reading are (made as they are
        iterated, or made and returned in one loop by :meth:`send`)."""
        return Made(self, rows)

    def each_made(self, rows: Iterable[tuple]) -> Iterator[Any]:
        """The items of :meth:`made`, one by one."""
        for row in rows:
            if row[0] == "w":
                _tag, plan, key, values = row
                make = self._makers.get(id(plan))
                if make is None:
                    make = self._makers[id(plan)] = self._maker(plan)
                yield make(key, values)
            elif row[0] == "v":
                _tag, keys, instance = row
                yield self.item(keys, instance)
            else:
                yield self.of_instance(row[1], row[2])

    def send(self, items: Iterable[Any], rslt: Any) -> None:
        """Return `items` (this form's items of an enumeration, None for a class read ahead
        for, or :meth:`made`'s) to the server's CMPIResult `rslt`, each handed over to
        the converter once returned (``Converter.handed_over``).  Rows kept for this
        call and templates to copy (no PropertyList): made and returned in one loop
        (``Copies.send``: the same calls as making each here and returning it)."""
        conv = self.conv
        copies = conv._copies if self.props is None else None  # pylint: disable=protected-access
        if type(items) is Made and items.form is self and copies is not None:
            copies.send(self.namespace, items.rows, rslt, self._made_new, self._made_alone)
            return
        ret = swig_function(conv.cmpi, "CMPIResult", "return_instance")
        over = conv.handed_over
        for cinst in items:
            if cinst is not None:
                ret(rslt, cinst)
                over(cinst)

    def _made_new(self, row: tuple) -> Any:
        """The item of a kept row that no template gives (``Copies.send``): a "w" row as
        ``Converter.instance_of_values`` makes it (after the maker's template found none),
        any other row as :meth:`each_made` makes it."""
        if row[0] == "w":
            return self._new_of(row[1], row[2], row[3])
        return next(self.each_made((row,)))

    def item(self, keys: tuple, instance: tuple[CMPIPlan, dict[str, Any]]) -> Any:
        """The CMPIInstance of a direct path's instance (``plan.keyed`` gave `keys`,
        ``plan.instance_xml`` `instance`); None for a class read ahead for (:meth:`defer`)."""
        plan, values = instance
        rows = self._rows(plan.classname)
        if rows is not None:
            rows.append(("v", keys, instance))
            return None
        return self.conv.instance_of_values(self.namespace, plan.spec, plan.wanted, keys,
                                            values, self.props)

    def values_item_writer(self, plan: CMPIPlan, read: Callable[..., dict[str, Any]]
                           ) -> Optional[Callable[[Any, Any, Any, Any], Any]]:
        """``item(prefix, suffix, view, ctx)``: what :meth:`item` makes of the instance of
        `plan`'s one string key ``prefix + suffix`` whose other values `read` (the
        compiled table reader of ``providers.common.instances``, ``into_dict``) reads
        from `view` - the same CMPIInstance through the same calls, without the key
        texts, the instance pair and the plan look-ups between (issue 10 item 12, stop
        25: seven Python calls per instance).  None for a plan without that key (the
        caller then goes through ``keyed``, ``table_instance_xml`` and :meth:`item`)."""
        one = plan._value_key      # pylint: disable=protected-access
        if one is None:
            return None
        lk = one[0]
        rows = self._rows(plan.classname)

        def keep(key: str, values: dict[str, Any]) -> Any:
            # A class read ahead for a part to come: its row kept, no item (defer).
            rows.append(("w", plan, key, values))    # type: ignore[union-attr]
            return None
        make = self._maker(plan) if rows is None else keep

        def item(prefix: Any, suffix: Any, view: Any, ctx: Any) -> Any:
            key = prefix + suffix
            if type(key) is not str:
                texts, keys = plan.keyed(key)
                return self.item(keys, plan.instance_xml(read(texts, view, ctx)))
            return make(key, read({lk: key}, view, ctx))
        return item

    def _maker(self, plan: CMPIPlan) -> Callable[[str, dict[str, Any]], Any]:
        """``make(key, values)``: the CMPIInstance of `plan`'s instance whose one string key
        is `key` and whose other values are `values` (a plan with ``_value_key``)."""
        conv, namespace, props = self.conv, self.namespace, self.props
        spec, wanted = plan.spec, plan.wanted
        copies = conv._copies if props is None else None  # pylint: disable=protected-access
        from_template = None if copies is None else copies.instance
        # pylint: disable-next=protected-access
        iplan = conv._plan(spec, wanted, True) if copies is not None else None

        def make(key: str, values: dict[str, Any]) -> Any:
            if from_template is not None:
                cinst = from_template(namespace, spec, iplan, values)
                if cinst is not None:
                    return cinst
            return self._new_of(plan, key, values)
        return make

    def _new_of(self, plan: CMPIPlan, key: str, values: dict[str, Any],
                copies: bool = True) -> Any:
        """A new CMPIInstance of `plan`'s instance whose one string key is `key` and whose
        other values are `values`: a template's copy where the converter has one, unless
        `copies` is False (then always an instance of its own)."""
        name = plan._value_key[1]  # type: ignore[index]  # pylint: disable=protected-access
        return self.conv.instance_of_values(self.namespace, plan.spec, plan.wanted,
                                            ((name, key),), values, self.props, copies=copies)

    def _made_alone(self, row: tuple) -> Any:
        """The CMPIInstance of a kept "w" row made new, never a template or its copy
        (``Copies.send``: an instance changed after it was made); None for another row."""
        if row[0] != "w":
            return None
        return self._new_of(row[1], row[2], row[3], copies=False)

    def of_instance(self, inst: CIMInstance, origins: Any = None) -> Any:
        """The CMPIInstance of an instance a provider made through its model; None for a
        class read ahead for (:meth:`defer`)."""
        rows = self._rows(inst.classname)
        if rows is not None:
            rows.append(("m", inst, origins))
            return None
        return self.conv.instance(inst, namespace=self.namespace, props=self.props)


class Made:
    """The items of rows kept for a later call (:meth:`CMPIForm.made`): made as they are
    iterated, or sent to the server in one loop by the form (:meth:`CMPIForm.send`)."""

    __slots__ = ("form", "rows")

    def __init__(self, form: CMPIForm, rows: Iterable[tuple]):
        self.form = form
        self.rows = rows

    def __iter__(self) -> Iterator[Any]:
        return self.form.each_made(self.rows)


def get_instance(proxy: Any, env: Any, conv: Converter, op: Any,
                 props: Optional[list[str]]) -> Any:
    """The CMPIInstance of GetInstance `op` (PropertyList `props`) straight from the
    provider's values where it offers that (``ProviderProxy.MI_getInstanceDirect``,
    ``CIMProvider2.get_direct``), without the instance model: what
    ``Converter.instance`` makes of the model of the same request, through the same
    calls (issue 10 item 12, stop 30: the model, its path copies and its finish were
    a tenth of a GetInstance's Python in Pegasus' agent).  None where the provider
    has no direct path (the caller takes the model's); the same errors (NOT_FOUND ...).

    The model path's instance has the request path's key bindings (those that are keys
    of the class, as the client gave them: names, order, values -- ``get_direct``
    answers only for paths whose key values are strings), its host and namespace."""
    got = proxy.MI_getInstanceDirect(env, op, props, CMPIPlan)
    if got is None:
        return None
    plan, values = got
    spec = plan.spec
    keys = []
    for name, value in iter_keybindings(op):
        pspec = spec.props.get(name.lower())
        if pspec is not None and pspec.is_key:
            keys.append((name, value))
    return conv.instance_of_values(op.namespace, spec, plan.wanted, tuple(keys), values,
                                   props, op.host, copies=False)
