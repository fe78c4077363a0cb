# pywbem declares CIMInstance.__slots__ as a list, which mypy does not read: it would flag
# every assignment to the inherited slots (_classname, _path, ...) in this module.
# mypy: disable-error-code="misc"
"""Instance models: typed templates of the instances a provider returns.

A host passes a provider a *model*: a :class:`pywbem.CIMInstance` of the
requested class that knows the class definition and which properties the
client asked for (the PropertyList).  Providers test ``'Prop' in model`` and
compute only what was asked for, and assign plain Python values, which the
model converts to the declared CIM type::

    def get_instance(self, env, model):
        dom = lookup(model['Name'])
        if 'EnabledState' in model:
            model['EnabledState'] = 2          # becomes Uint16(2)
        return model

Assigning a property that was filtered out by the PropertyList is ignored
(the pywbem 0.7 ``property_list`` behaviour the CIMProvider2 API relies on).
Assigning a key property also sets the key binding of ``model.path``.
Properties that were requested but never assigned are sent as NULL: the MI
layer completes every instance with all requested properties of its class
(:func:`complete_instance`), as OpenPegasus and sfcb deliver them, so that
clients reading ``inst["Prop"]`` never meet a KeyError.
Assigning a property the class does not define is a provider bug: it is
ignored with a warning (an error when KVM_PROVIDERS_STRICT_MODELS is set).
So is assigning a ValueMap'd property a value outside its class's ValueMap
(ranges included; ``".."`` allows every value): the value is kept, with a
warning once per class, property and value (a ValueError naming them when
KVM_PROVIDERS_STRICT_MODELS is set).  The allowed values are parsed once per
class (:attr:`PropSpec.values`), so the check costs one set lookup.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Iterable, Iterator, Optional

from pywbem import CIMDateTime, CIMInstance, CIMInstanceName, CIMProperty

from ..schema import ClassSpec, PropSpec, Schema, ValueSet, default_schema
from ._fastcim import NocaseDict as _NocaseDict
from ._fastcim import copy_path, has_prop, new_property, set_prop

_new = object.__new__
from .values import INT_TYPES, REAL_TYPES, coerce, converter

__all__ = ["InstanceModel", "make_model", "fast_property", "filter_instance", "setters_of",
           "wanted_set",
           "complete_instance", "model_from_instance", "check_values"]

LOG = logging.getLogger(__name__)



def fast_property(spec: PropSpec, value: Any) -> CIMProperty:
    """A CIMProperty of `spec` for a value already of the declared type."""
    return new_property(spec.name, value, spec.type, spec.is_array, spec.reference_class,
                        spec.embedded_object)


_STRICT = os.environ.get("KVM_PROVIDERS_STRICT_MODELS", "") not in ("", "0")
_warned: set[tuple[str, str]] = set()
_warned_values: set[tuple[str, str, Any]] = set()
#: Bound on the (class, property, value) warnings remembered: a provider emitting
#: ever new bad values must not grow the process.
_MAX_WARNED_VALUES = 1000


def _undefined(classname: str, prop: str) -> None:
    """A provider set a property its class does not define: a provider bug.

    Ignored with a warning (once per property), so that clients only ever see
    properties of the schema; raised when KVM_PROVIDERS_STRICT_MODELS is set,
    as the test suite does.
    """
    if _STRICT:
        raise KeyError(f"class {classname} has no property {prop!r}")
    if (classname, prop) not in _warned:
        _warned.add((classname, prop))
        LOG.warning("provider sets property %s, which class %s does not define; ignored",
                    prop, classname)


def _outside(classname: str, spec: PropSpec, value: Any) -> None:
    """A provider set `value` (converted; a list for arrays) on a ValueMap'd property:
    complain about the entries outside the class's ValueMap, if any."""
    check_values(classname, spec.name, spec.values, spec.is_array, value)


def check_values(classname: str, what: str, allowed: Optional[ValueSet], is_array: bool,
                 value: Any) -> None:
    """Complain about the entries of `value` (a list if `is_array`) outside `allowed`.

    `what` names the element of class `classname` (a property, or e.g.
    ``"DefineSystem() return value"``).  The value stays (nothing a client
    could use is dropped); a warning says so once per (class, element, value),
    or a ValueError naming them when KVM_PROVIDERS_STRICT_MODELS is set, as the
    test suite does.  None values (NULL) are always allowed.
    """
    if allowed is None or allowed.any or value is None:
        return
    bad = [v for v in value if v not in allowed] if is_array else (
        [] if value in allowed else [value])
    for v in bad:
        if isinstance(v, int) and not isinstance(v, bool):
            v = int(v)   # Uint16(5) -> 5 in messages and the warning key
        if _STRICT:
            text = allowed.describe()
            raise ValueError(f"{classname}.{what}: value {v!r} is not in the class's "
                             f"ValueMap ({text if len(text) < 200 else text[:200] + '...'})")
        key = (classname, what, v)
        if key not in _warned_values and len(_warned_values) < _MAX_WARNED_VALUES:
            _warned_values.add(key)
            LOG.warning("provider sets %s.%s to %r, which is not in the class's ValueMap",
                        classname, what, v)


def _allowed(p: PropSpec) -> Any:
    """What the setter tests values of `p` against: None (no check), or a container.

    A plain frozenset when the ValueMap has no ranges (the common case: a C-level
    lookup), else the ValueSet; None when there is no ValueMap or it has ``..``.
    """
    vs = p.values
    if vs is None or vs.any:
        return None
    return vs.values if not vs.ranges else vs


#: The Python type a converted scalar value has, per CIM type: a value of
#: exactly that type needs no conversion.
_EXACT = {"string": str, "boolean": bool, "datetime": CIMDateTime, "reference": CIMInstanceName}
_EXACT.update(INT_TYPES)
_EXACT.update(REAL_TYPES)


def setters_of(spec: ClassSpec) -> dict[str, tuple]:
    """{folded property name: (PropSpec, converter, exact type, allowed values)} of a
    class (cached): how a value assigned to the property is converted and checked, for
    the models and for the direct enumeration path (provider.direct); allowed values:
    see :func:`_allowed`."""
    hit = spec._cache.get("setters")
    if hit is None:
        hit = {lk: (p, converter(p.type, p.is_array),
                    None if p.is_array or p.embedded_object else _EXACT.get(p.type),
                    _allowed(p))
               for lk, p in spec.props.items()}
        spec._cache["setters"] = hit
    return hit


_MISSING = object()


class InstanceModel(CIMInstance):
    """A CIMInstance bound to its class definition and the requested properties.

    A model keeps the values providers assign in a plain dict (``{folded name:
    value}``, already of the declared type) and builds the pywbem properties only
    when someone reads :attr:`properties` (*materializes* it): an enumeration
    whose instances go straight to CIM-XML (:mod:`kvm_providers.cimxml.writer`)
    builds no CIMProperty at all (issue 16: building them was a fifth of a large
    enumeration).  Everything else sees an ordinary CIMInstance.
    """

    __slots__ = ("_spec", "_wanted", "_setters", "_vals", "_complete")

    # pylint: disable=super-init-not-called
    def __init__(self, spec: ClassSpec, wanted: frozenset[str],
                 path: Optional[CIMInstanceName] = None, classname: Optional[str] = None):
        """Create a model of class `spec` whose requested properties are `wanted`.

        `wanted` holds lower-case property names (keys included).
        """
        self._classname = classname or spec.name
        self._properties: Any = None
        self._qualifiers = None   # built by CIMInstance.qualifiers when read (lazily)
        self._path = path
        self._spec = spec
        self._wanted = wanted
        self._setters = setters_of(spec)
        self._vals: Optional[dict[str, Any]] = {}
        # complete_instance() was applied: wanted properties never set read as their
        # class default (else NULL), and are built so when materialized.
        self._complete = False

    @property
    def spec(self) -> ClassSpec:
        """The ClassSpec of the model's class."""
        return self._spec

    @property
    def wanted(self) -> frozenset[str]:
        """Lower-case names of the properties to fill in (keys included)."""
        return self._wanted

    def assigned(self) -> Optional[dict[str, Any]]:
        """The assigned values ({folded name: typed value}) while no one has read
        :attr:`properties` (do not change it); None once the pywbem properties are built."""
        return self._vals

    def fill_target(self) -> Optional[tuple[dict[str, Any], dict[str, tuple]]]:
        """(the dict the assigned values live in, {folded name: (PropSpec, converter,
        exact type, allowed values)}) for fillers that set many wanted, non-key
        properties at once (:func:`kvm_providers.providers.common.instances.fill_from_table`):
        they store values converted and checked as :meth:`__setitem__` does, without its
        per-call lookups.  None once the pywbem properties are built (then assign
        through ``model[name]``)."""
        vals = self._vals
        return None if vals is None else (vals, self._setters)

    @property
    def complete(self) -> bool:
        """Whether the unset wanted properties stand for their class default / NULL."""
        return self._complete

    @property  # type: ignore[override]
    def properties(self) -> _NocaseDict:
        """The pywbem properties (built from the assigned values on first read)."""
        if self._vals is not None:
            self._materialize()
        elif self._properties is None:  # emptied through the setter
            self._properties = _NocaseDict()
        return self._properties

    @properties.setter
    def properties(self, properties: Any) -> None:
        self._vals = None
        CIMInstance.properties.fset(self, properties)  # type: ignore[attr-defined]

    def _materialize(self) -> None:
        vals, self._vals = self._vals, None
        props = _NocaseDict()
        specs = self._spec.props
        for lk, value in (vals or {}).items():
            p = specs[lk]
            set_prop(props, lk, p.name, new_property(p.name, value, p.type, p.is_array,
                                                     p.reference_class, p.embedded_object))
        self._properties = props
        if self._complete:
            complete_instance(self, self._spec, self._wanted)

    def _unset(self, lk: str) -> Any:
        """The value of wanted property `lk` that was never set."""
        if not self._complete:
            return None
        default = self._spec.props[lk].default
        return list(default) if isinstance(default, list) else default

    def wanted_props(self) -> Iterator[PropSpec]:
        """PropSpecs of the requested properties, in declaration order."""
        wanted = self._wanted
        return (p for lk, p in self._spec.props.items() if lk in wanted)

    def __contains__(self, key: str) -> bool:
        lk = key.casefold()
        if lk in self._wanted:
            return True
        vals = self._vals
        return lk in vals if vals is not None else key in self.properties

    def __getitem__(self, key: str) -> Any:
        vals = self._vals
        if vals is not None:
            lk = key.casefold()
            value = vals.get(lk, _MISSING)
            if value is not _MISSING:
                return value
            if lk in self._wanted:
                return self._unset(lk)
        else:
            prop = self.properties.get(key)
            if prop is not None:
                return prop.value
            if key.casefold() in self._wanted:
                return None
        raise KeyError(f"Property {key!r} is not in the model of {self._classname}")

    def get(self, key: str, default: Any = None) -> Any:
        vals = self._vals
        if vals is not None:
            lk = key.casefold()
            value = vals.get(lk, _MISSING)
            if value is not _MISSING:
                return value
            return self._unset(lk) if self._complete and lk in self._wanted else default
        prop = self.properties.get(key)
        return default if prop is None else prop.value

    def __setitem__(self, key: str, value: Any) -> None:
        lk = key.casefold()
        entry = self._setters.get(lk)
        if entry is None:
            _undefined(self._spec.name, key)
            return
        if lk not in self._wanted:
            return  # filtered out by the PropertyList
        spec, conv, exact, allowed = entry
        if type(value) is not exact and value is not None:
            if isinstance(value, CIMProperty):
                if allowed is not None and value.value is not None:
                    _outside(self._classname, spec, value.value)
                self.properties[spec.name] = value
                if spec.is_key and self._path is not None:
                    self._path.keybindings[spec.name] = value.value
                return
            try:
                value = conv(value)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{self._classname}.{spec.name}: {exc}") from None
        if allowed is not None and value is not None and (spec.is_array
                                                          or value not in allowed):
            _outside(self._classname, spec, value)
        vals = self._vals
        if vals is not None:
            vals[lk] = value
        else:
            set_prop(self.properties, lk, spec.name,
                     new_property(spec.name, value, spec.type, spec.is_array,
                                  spec.reference_class, spec.embedded_object))
        if spec.is_key and self._path is not None:
            self._path.keybindings[spec.name] = value

    def __delitem__(self, key: str) -> None:
        del self.properties[key]

    def update_existing(self, *args: Any, **kwargs: Any) -> None:
        """Set the given properties, skipping those not in the model."""
        for mapping in args + (kwargs,):
            items = mapping.items() if hasattr(mapping, "items") else mapping
            for key, value in items:
                if key in self:
                    self[key] = value

    def copy(self) -> "InstanceModel":
        """An independent copy (properties and path are copied)."""
        m = _new(InstanceModel)
        m._classname = self._classname
        vals = self._vals
        if vals is not None:
            # Values are immutable or replaced, never changed in place, except lists.
            m._vals = {k: (list(v) if type(v) is list else v) for k, v in vals.items()}
            m._properties = None
        else:
            props = _NocaseDict()
            specs = self._spec.props
            for name, prop in self.properties.items():
                lk = name.casefold()
                pspec = specs.get(lk)
                if pspec is None:
                    props[name] = prop.copy()
                else:
                    set_prop(props, lk, pspec.name, fast_property(pspec, prop.value))
            m._properties = props
            m._vals = None
        m._complete = self._complete
        m._qualifiers = None   # (lazily, as CIMInstance does)
        m._path = None if self._path is None else copy_path(self._path)
        m._spec = self._spec
        m._wanted = self._wanted
        m._setters = self._setters
        return m

    def __reduce__(self):
        # Pickle / deepcopy as a plain CIMInstance.
        inst = CIMInstance(self._classname, properties=list(self.properties.values()),
                           path=self._path)
        return inst.__reduce__()


def wanted_set(spec: ClassSpec, property_list: Optional[Iterable[str]],
               keys_only: bool) -> frozenset[str]:
    """The folded names of the properties of `spec` a request wants (keys always;
    only keys with `keys_only`; the PropertyList's others that the class defines)."""
    cache_key = ("wanted", None if property_list is None
                 else tuple(sorted(p.lower() for p in property_list)), keys_only)
    hit = spec._cache.get(cache_key)
    if hit is not None:
        return hit
    keys = {k.lower() for k in spec.key_names}
    if keys_only:
        wanted = keys
    elif property_list is None:
        wanted = set(spec.props)
    else:
        wanted = keys | ({p.lower() for p in property_list} & set(spec.props))
    result = frozenset(wanted)
    spec._cache[cache_key] = result
    return result


def make_model(namespace: str, classname: str,
               path: Optional[CIMInstanceName] = None,
               property_list: Optional[Iterable[str]] = None,
               keys_only: bool = False,
               schema: Optional[Schema] = None) -> InstanceModel:
    """A model of `classname` in `namespace`.

    Key properties found in `path` are set on the model.  With `keys_only`,
    only key properties are wanted (EnumerateInstanceNames).
    """
    schema = schema or default_schema()
    spec = schema.spec(namespace, classname)
    wanted = wanted_set(spec, property_list, keys_only)
    if path is None:
        path = CIMInstanceName(spec.name, namespace=namespace)
    else:
        path = path.copy()
        if path.namespace is None:
            path.namespace = namespace
    model = InstanceModel(spec, wanted, path=path, classname=path.classname)
    for name, value in list(path.keybindings.items()):
        pspec = spec.props.get(name.lower())
        if pspec is None or not pspec.is_key:
            continue
        try:
            model[pspec.name] = value
        except ValueError:
            # A key of the wrong type cannot match any instance; keep it as given
            # so that the provider reports NOT_FOUND for it.
            model.properties[pspec.name] = CIMProperty(pspec.name, value)
    return model


def model_from_instance(instance: CIMInstance, namespace: str,
                        schema: Optional[Schema] = None) -> CIMInstance:
    """Convert the property values of a client-supplied instance to their declared types.

    Used for CreateInstance/ModifyInstance and embedded instances: values that
    arrived as strings or untyped numbers get the class's declared types.
    Raises ValueError naming the property whose value does not fit.
    Properties not defined by the class are left as they are.
    """
    schema = schema or default_schema()
    spec = schema.spec(namespace, instance.classname)
    for name, prop in list(instance.properties.items()):
        pspec = spec.props.get(name.lower())
        if pspec is None:
            continue
        if prop.type == pspec.type and bool(prop.is_array) == pspec.is_array:
            continue
        try:
            value = coerce(pspec.type, pspec.is_array, prop.value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{instance.classname}.{pspec.name}: {exc}") from None
        instance.properties[name] = fast_property(pspec, value)
    return instance


def filter_instance(inst: CIMInstance, wanted: Optional[frozenset[str]]) -> CIMInstance:
    """Drop properties whose lower-case names are not in `wanted` (None keeps all)."""
    if wanted is None:
        return inst
    if isinstance(inst, InstanceModel) and inst._wanted <= wanted:
        return inst
    for name in list(inst.properties.keys()):
        if name.lower() not in wanted:
            del inst.properties[name]
    return inst


def _unset_property(p: PropSpec) -> Optional[CIMProperty]:
    """The property an instance gets for `p` when its provider sets none: the class
    default, else NULL.  Built once per class and shared by every instance (properties
    are replaced, never changed in place, once an instance is returned); None where
    the default is a list, which each instance gets a copy of."""
    if isinstance(p.default, list):
        return None
    return new_property(p.name, p.default, p.type, p.is_array, p.reference_class,
                        p.embedded_object)


def _null_plan(spec: ClassSpec, wanted: frozenset[str]
               ) -> tuple[tuple[str, PropSpec, Optional[CIMProperty]], ...]:
    """(folded name, PropSpec, shared unset property) of the wanted properties of a
    class, in declaration order."""
    key = ("nulls", wanted)
    hit = spec._cache.get(key)
    if hit is None:
        hit = tuple((lk, p, _unset_property(p)) for lk, p in spec.props.items()
                    if lk in wanted)
        spec._cache[key] = hit
    return hit


def complete_instance(inst: CIMInstance, spec: ClassSpec,
                      wanted: frozenset[str]) -> CIMInstance:
    """Add every wanted property of `spec` that `inst` lacks: its class default, else NULL.

    The class default is what OpenPegasus and sfcb show for a property a
    provider leaves unset (e.g. ``EnabledState = 5`` on devices), so the
    embedded server and both CIM servers answer alike; a provider that sets
    the property (None included) decides.

    `inst` holds only properties of its class that are in `wanted` (as
    :func:`filter_instance` leaves it), so an instance with as many properties
    as the plan is complete and costs one comparison.
    """
    if type(inst) is InstanceModel and inst._vals is not None and inst._spec is spec \
            and inst._wanted == wanted:
        # Its values only: the unset properties read as, and are built and written as,
        # the class default or NULL (InstanceModel, cimxml.writer).
        inst._complete = True
        return inst
    plan = _null_plan(spec, wanted)
    props = inst.properties
    if len(props) >= len(plan):
        return inst
    for lk, p, shared in plan:
        if not has_prop(props, lk):
            if shared is None:  # a list default: never shared between instances
                shared = new_property(p.name, list(p.default), p.type, p.is_array,
                                      p.reference_class, p.embedded_object)
            set_prop(props, lk, p.name, shared)
    return inst
