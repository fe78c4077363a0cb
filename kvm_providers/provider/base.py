"""CIMProvider2: the provider base class, ported to Python 3 and pywbem 1.x.

A provider subclasses :class:`CIMProvider2` and overrides what its class needs:

``get_instance(env, model)``
    Fill in `model` (keys already set) and return it, or return None if no
    such instance exists (the host answers CIM_ERR_NOT_FOUND).
``enum_instances(env, model, keys_only)``
    A generator of instances of ``model.classname``.  Yield ``model.copy()``
    filled in, or the model itself after setting its properties (the MI layer
    copies it then).  With `keys_only` only key properties are needed.
``set_instance(env, instance, modify_existing)``
    Create (False) or modify (True) and return the instance; raise CIMError.
``delete_instance(env, instance_name)``
``references(env, object_name, model, result_class_name, role, result_role,
keys_only)``
    For association classes: a generator of association instances of
    ``model.classname`` that refer to `object_name`.  The four association
    operations are all mapped onto it.
``cim_method_<name>(env, object_name, param_<name>=...)``
    An extrinsic method (lower-case method and parameter names).  Input
    values arrive converted to the declared CIM types.  `object_name` is
    always a CIMInstanceName; it has no key bindings when the method was
    invoked on the class path.  Return ``(return_value, out_params)`` where
    out_params is a list of CIMParameter or a dict ``{name: value}``; values
    get the declared types of the method's output parameters.

The ``MI_*`` methods are what a host calls; they build the models, honour the
PropertyList, and filter association results by AssocClass, ResultClass,
Role and ResultRole using the class schema.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Iterable, Iterator, Optional

import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName, CIMParameter

from ..schema import ClassSpec, Schema, default_schema
from ._fastcim import iter_keybindings
from .direct import DirectPlan
from .model import (InstanceModel, check_values, complete_instance, filter_instance,
                    make_model, model_from_instance)
from .params import (UNPARSABLE_EMBEDDED, is_embedded_value, path_str, typed_param,
                     typed_result, unparsable_embedded)

__all__ = ["CIMProvider2", "paths_equal", "UNPARSABLE_EMBEDDED", "unparsable_embedded"]

LOG = logging.getLogger(__name__)

def _kb_equal(a: Any, b: Any) -> bool:
    if isinstance(a, CIMInstanceName) and isinstance(b, CIMInstanceName):
        return paths_equal(a, b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    try:
        return a == b or str(a) == str(b)
    except Exception:  # pylint: disable=broad-except
        return False


def paths_equal(lhs: CIMInstanceName, rhs: CIMInstanceName) -> bool:
    """Instance paths equal, ignoring host and namespace where either lacks them.

    Class and key names compare case-insensitively, key values exactly (a key
    value given as a string matches a number of the same text, as CIM-XML
    KEYVALUEs arrive untyped).
    """
    if lhs is rhs:
        return True
    if lhs.classname.lower() != rhs.classname.lower():
        return False
    if lhs.host and rhs.host and lhs.host.lower() != rhs.host.lower():
        return False
    if lhs.namespace and rhs.namespace and \
            lhs.namespace.strip("/").lower() != rhs.namespace.strip("/").lower():
        return False
    lk, rk = lhs.keybindings, rhs.keybindings
    if len(lk) != len(rk):
        return False
    for name, value in lk.items():
        if name not in rk or not _kb_equal(value, rk[name]):
            return False
    return True


def _key_value_equal(name: str, given: Any, have: Any) -> bool:
    """A key value of a path equals an instance's (class names case-insensitively)."""
    if have is None:
        return False
    if name.lower().endswith("creationclassname") and isinstance(given, str) \
            and isinstance(have, str):
        return given.lower() == have.lower()
    return _kb_equal(given, have)


def _method_signature(func) -> tuple[set[str], set[str], bool]:
    """(accepted param_ names, required param_ names, has **kwargs) of a cim_method_."""
    sig = inspect.signature(func)
    accepted, required, var_kw = set(), set(), False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.name.startswith("param_"):
            accepted.add(p.name)
            if p.default is p.empty:
                required.add(p.name)
    return accepted, required, var_kw


class CIMProvider2:
    """Base class of instance, method and association providers."""

    #: Set by the proxy when the module is loaded; the class schema to build models from.
    schema: Optional[Schema] = None

    # -- what providers override --------------------------------------------

    def get_instance(self, env, model: InstanceModel) -> Optional[CIMInstance]:
        """Return the instance whose keys are set on `model`, or None.

        The default scans enum_instances(), which suits small classes.
        """
        want = model.path
        for inst in self.enum_instances(env, model.copy(), keys_only=False) or ():
            if inst.path is not None and paths_equal(inst.path, want):
                return inst
        return None

    def enum_instances(self, env, model: InstanceModel, keys_only: bool) -> Iterator[CIMInstance]:
        """Generate the instances of ``model.classname``."""
        return iter(())

    def enum_many(self, env, models: list[InstanceModel], keys_only: bool
                  ) -> Optional[Iterator[tuple[InstanceModel, CIMInstance]]]:
        """Optional: (model, instance) pairs of the classes of `models` (one or more that
        this provider serves), from one pass over its data, in any order.

        A host calls it (through MI_enumInstancesMany) when it asks for every class of
        a client's enumeration at once, so that the provider may let go of each piece
        of its data once its instances are out: nothing later in the request needs it.
        The default, None, has the host enumerate class by class.  A provider whose
        classes are views of the same data (every RASD class of each domain's XML)
        reads it once this way.
        """
        return None

    def enum_direct(self, env, plans: list, form: Any) -> Optional[Iterator[str]]:
        """Optional: the response items (``form.item(name, instance)`` texts) of every
        instance of the classes of `plans` (provider.direct.DirectPlan, one per class
        this provider serves), written straight from the provider's values, in any
        order.  The embedded server's enumerations ask for it; None (the default) has
        the host enumerate through enum_many / enum_instances and write the models."""
        return None

    def get_direct(self, env, plan: DirectPlan, path: CIMInstanceName) -> Any:
        """Optional: GetInstance of `path` (keys checked, typed; no extra keys) written
        straight to the <INSTANCE> text of `plan` (the request's PropertyList and
        IncludeClassOrigin), the text the model path writes for it, byte for byte; None
        if there is no such instance.  NotImplemented (the default) has the host build
        the model (:meth:`get_instance`); a provider may answer so for paths it leaves
        to the models."""
        return NotImplemented

    def set_instance(self, env, instance: CIMInstance, modify_existing: bool) -> CIMInstance:
        """Create or modify an instance."""
        raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                       f"{'ModifyInstance' if modify_existing else 'CreateInstance'} is "
                       f"not supported for class {instance.classname}")

    def delete_instance(self, env, instance_name: CIMInstanceName) -> None:
        """Delete an instance."""
        raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                       f"DeleteInstance is not supported for class {instance_name.classname}")

    def references(self, env, object_name: CIMInstanceName, model: InstanceModel,
                   result_class_name: str, role: str, result_role: str,
                   keys_only: bool) -> Optional[Iterator[CIMInstance]]:
        """Generate association instances that refer to `object_name`."""
        return None

    def check_source(self, env, object_name: CIMInstanceName) -> None:
        """Raise a CIMError if `object_name`, the source object of an association
        operation, names no instance; called before ``references()``.

        The default checks nothing (the association is then empty); providers whose
        clients expect CIM_ERR_NOT_FOUND for a source that does not exist override it.
        """

    def simple_refs(self, env, object_name: CIMInstanceName, model: InstanceModel,
                    result_class_name: str, role: str, result_role: str,
                    keys_only: bool) -> Iterator[CIMInstance]:
        """references() by scanning enum_instances(): for small association classes."""
        role_l = role.lower() if role else None
        for inst in self.enum_instances(env, model, keys_only) or ():
            for prop in inst.properties.values():
                if prop.type != "reference" or prop.value is None:
                    continue
                if role_l and prop.name.lower() != role_l:
                    continue
                if paths_equal(object_name, prop.value):
                    yield inst.copy() if inst is model else inst
                    break

    # -- helpers --------------------------------------------------------------

    def _schema(self) -> Schema:
        return self.schema or default_schema()

    @staticmethod
    def paths_equal(lhs: CIMInstanceName, rhs: CIMInstanceName) -> bool:
        return paths_equal(lhs, rhs)

    @staticmethod
    def filter_instance(inst: CIMInstance, plist: Optional[Iterable[str]]) -> None:
        """Remove properties not in `plist` (lower-case names); keys stay."""
        if plist is None:
            return
        keep = {p.lower() for p in plist}
        if inst.path is not None:
            keep |= {k.lower() for k in inst.path.keybindings}
        filter_instance(inst, frozenset(keep))

    def _without_extra_keys(self, ns: str, path: CIMInstanceName) -> CIMInstanceName:
        """`path` without key bindings that are no keys of its class.

        Reads are tolerant of them (libvirt-cim's clients send e.g. a device's keys
        in the path of a RASD, and libvirt-cim read only the keys it needed): the
        instance is named by its keys, and is returned with its own path. Writes
        (ModifyInstance, DeleteInstance) keep refusing them (docs/compat.md).
        """
        spec = self._schema().spec(ns, path.classname)
        extra = [k for k in path.keybindings if k.lower() not in spec.props
                 or not spec.props[k.lower()].is_key]
        if not extra:
            return path
        trimmed = path.copy()
        for k in extra:
            del trimmed.keybindings[k]
        LOG.debug("GetInstance %s: ignoring key bindings %s, which are no keys of the class",
                  path.classname, ", ".join(extra))
        return trimmed

    #: What a selecting key (see `selecting_keys`) is in the managed system's terms,
    #: by lower-case key name, for the description of a path that lacks it
    #: ("No domain name specified"); a key not listed is named as itself.
    KEY_TERMS: dict[str, str] = {}

    def selecting_keys(self, spec: ClassSpec) -> tuple[str, ...]:
        """The keys by which this provider picks an instance of class `spec` among
        several: those neither propagated from the scoping instance (DSP0004
        ``Propagated``: SystemName, SystemCreationClassName) nor CreationClassName,
        i.e. InstanceID, DeviceID, a virtual system's Name.  A provider whose class
        has one instance per host returns none (a path is compared with the host's
        instance as a whole)."""
        return tuple(k for k in spec.key_names
                     if k.lower() != "creationclassname"
                     and not spec.props[k.lower()].propagated)

    def missing_key_error(self, spec: ClassSpec, path: CIMInstanceName,
                          missing: list[str]) -> CIMError:
        """The error for a path of class `spec` that lacks the keys `missing`.

        As libvirt-cim answered, whose clients look for its codes and words:
        a path without a selecting key names nothing to look up, CIM_ERR_FAILED
        ``Missing InstanceID: No InstanceID specified``; a path with it but without
        another key (CreationClassName, the scoping system's keys, any key of a
        class with one instance per host) names no instance, CIM_ERR_NOT_FOUND
        ``No such instance (SystemName)``.  DSP0200 lists both codes for GetInstance
        and the association operations (docs/compat.md, "Instance paths that lack
        a key")."""
        lacks = (f"the instance path of class {spec.name} lacks key "
                 f"propert{'ies' if len(missing) > 1 else 'y'} {', '.join(missing)}")
        selecting = {k.lower() for k in self.selecting_keys(spec)}
        for key in missing:
            if key.lower() in selecting:
                term = self.KEY_TERMS.get(key.lower(), key)
                return CIMError(pywbem.CIM_ERR_FAILED,
                                f"Missing {key}: No {term} specified ({lacks})")
        return CIMError(pywbem.CIM_ERR_NOT_FOUND,
                        f"Instance not found: {path_str(path)}; No such instance "
                        f"({missing[0]}): {lacks}")

    def _read_path(self, ns: str, path: CIMInstanceName) -> CIMInstanceName:
        """The path a read (GetInstance) names its instance by: `path` without the bindings
        that are no keys of its class (:meth:`_without_extra_keys`), every key checked
        there (:meth:`_check_keys`).  A path of exactly the class's keys, the common
        case, is told in one pass over its bindings (the two checks' lookups and lists
        were a tenth of a GetInstance's Python in Pegasus' agent, stop 30)."""
        keyset = self._schema().spec(ns, path.classname).folded_keys
        given = [name.lower() for name, _v in iter_keybindings(path)]
        if len(given) == len(keyset) and keyset.issuperset(given):
            return path         # (bindings are unique without case: exactly the keys)
        path = self._without_extra_keys(ns, path)
        self._check_keys(ns, path)
        return path

    def _check_keys(self, ns: str, path: CIMInstanceName) -> None:
        spec = self._schema().spec(ns, path.classname)
        given = {k.lower() for k in path.keybindings}
        missing = [k for k in spec.key_names if k.lower() not in given]
        if missing:
            raise self.missing_key_error(spec, path, missing)
        extra = [k for k in path.keybindings if k.lower() not in spec.props
                 or not spec.props[k.lower()].is_key]
        if extra:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           f"Instance path of class {spec.name} has unknown key "
                           f"{', '.join(extra)}")

    @staticmethod
    def _finish(inst: CIMInstance, model: InstanceModel, ns: str,
                complete: bool = True) -> CIMInstance:
        """The instance to return: a path with namespace, only the wanted properties,
        and (unless only its path is needed) every wanted property of its class, NULL
        where the provider set none."""
        if inst is model:
            inst = model.copy()
        if inst.path is None:
            inst.path = CIMInstanceName(inst.classname, namespace=ns)
            for k in model.spec.key_names:
                if k in inst.properties:
                    inst.path.keybindings[k] = inst[k]
        elif inst.path.namespace is None:
            inst.path.namespace = ns
        filter_instance(inst, model.wanted)
        if complete and inst.classname.lower() == model.spec.name.lower():
            complete_instance(inst, model.spec, model.wanted)
        return inst

    # -- MI entry points (called by the hosts) ------------------------------

    def MI_enumInstanceNames(self, env, objPath: CIMInstanceName) -> Iterator[CIMInstanceName]:
        """EnumerateInstanceNames of ``objPath.classname`` in ``objPath.namespace``."""
        ns = objPath.namespace
        model = make_model(ns, objPath.classname, keys_only=True, schema=self._schema())
        for inst in self.enum_instances(env=env, model=model, keys_only=True) or ():
            path = inst.path
            if path is None:
                path = self._finish(inst, model, ns, complete=False).path
            elif inst is model:
                path = path.copy()
            if path.namespace is None:
                path.namespace = ns
            yield path

    def MI_enumInstances(self, env, objPath: CIMInstanceName,
                         propertyList: Optional[list[str]]) -> Iterator[CIMInstance]:
        """EnumerateInstances of ``objPath.classname``, honouring the PropertyList."""
        ns = objPath.namespace
        model = make_model(ns, objPath.classname, property_list=propertyList,
                           schema=self._schema())
        for inst in self.enum_instances(env=env, model=model, keys_only=False) or ():
            yield self._finish(inst, model, ns)

    def MI_enumInstancesMany(self, env, objPaths: list[CIMInstanceName],
                             propertyList: Optional[list[str]]) -> Iterator[CIMInstance]:
        """EnumerateInstances of several classes of this provider (one pass over its data
        where it implements enum_many, else class by class), honouring the PropertyList."""
        schema = self._schema()
        models = [make_model(p.namespace, p.classname, property_list=propertyList,
                             schema=schema) for p in objPaths]
        pairs = self.enum_many(env, models, False)
        if pairs is None:
            for path in objPaths:
                yield from self.MI_enumInstances(env, path, propertyList)
            return
        for model, inst in pairs:
            yield self._finish(inst, model, model.path.namespace)

    def MI_getInstance(self, env, instanceName: CIMInstanceName,
                       propertyList: Optional[list[str]]) -> CIMInstance:
        """GetInstance; CIM_ERR_NOT_FOUND (naming the path) if there is none."""
        ns = instanceName.namespace
        instanceName = self._read_path(ns, instanceName)
        model = make_model(ns, instanceName.classname, path=instanceName,
                           property_list=propertyList, schema=self._schema())
        inst = self.get_instance(env=env, model=model)
        if inst is None:
            raise self.not_found(env, instanceName)
        return self._finish(inst, model, ns)

    def MI_getInstanceXml(self, env, instanceName: CIMInstanceName,
                          propertyList: Optional[list[str]], origin: bool,
                          plan_class: type[DirectPlan] = DirectPlan) -> Any:
        """GetInstance as its <INSTANCE> text (IncludeClassOrigin: `origin`), written
        straight from the provider's values where it offers that (:meth:`get_direct`,
        no model: issue 16); None where the host is to take :meth:`MI_getInstance`.
        Same checks and errors as MI_getInstance.  `plan_class`: a DirectPlan subclass
        whose ``instance_xml`` is the result instead (the CMPI adapter's values)."""
        if type(self).get_direct is CIMProvider2.get_direct:
            return None
        ns = instanceName.namespace
        instanceName = self._read_path(ns, instanceName)
        plan = plan_class.of(self._schema(), ns, instanceName.classname, propertyList, origin)
        text = self.get_direct(env, plan, instanceName)
        if text is NotImplemented:
            return None
        if text is None:
            raise self.not_found(env, instanceName)
        return text

    #: At most this many instance names are compared to find the key of a path that
    #: names nothing (the error path only; an enumeration costs no more).
    BLAME_LIMIT = 10000

    def not_found(self, env, path: CIMInstanceName) -> CIMError:
        """CIM_ERR_NOT_FOUND for `path`, naming the key that names nothing.

        The key named is the one in which `path` differs from the nearest existing
        instance of its class (fewest differing keys; the first of them in key
        order), e.g. ``Instance not found: <path>; No such instance
        (SystemCreationClassName)``: the description gives the path and names what
        was wrong (libvirt-cim's wording, which its clients look for).  Without
        instances, no key is named.
        """
        key = None
        try:
            key = self._blame_key(env, path)
        except Exception:           # noqa: BLE001 - the error to report is NOT_FOUND
            key = None
        what = f"No such instance ({key})" if key else "No such instance"
        try:
            reason = self.not_found_reason(env, path, key)
            value = self.not_found_value(path, key) if key else None
        except Exception:           # noqa: BLE001 - the error to report is NOT_FOUND
            reason = value = None
        if reason:
            what = f"{what}: {reason}"
        if value:
            what = f"{value}; {what}"
        return CIMError(pywbem.CIM_ERR_NOT_FOUND,
                        f"Instance not found: {path_str(path)}; {what}")

    def not_found_reason(self, env, path: CIMInstanceName, key: Optional[str]) -> Optional[str]:
        """What the object `path` names is missing, in the terms of the managed
        system, for the description of CIM_ERR_NOT_FOUND (`key`: the key in which
        `path` differs from the nearest instance, or None).  None: nothing to add."""
        return None

    def not_found_value(self, path: CIMInstanceName, key: str) -> Optional[str]:
        """The value of `path` that names nothing, in libvirt-cim's words, for the
        description of CIM_ERR_NOT_FOUND: ``No such instance (<value>)`` when `key`
        is a key that selects the instance (see `selecting_keys`; its clients look
        for the value there, e.g. ``No such instance (vm1/vdz)``), else None.
        Providers add why the value can name nothing (``bad id ...``)."""
        spec = self._schema().spec(path.namespace, path.classname)
        if key.lower() not in {k.lower() for k in self.selecting_keys(spec)}:
            return None
        value = next((v for k, v in path.keybindings.items() if k.lower() == key.lower()),
                     None)
        return f"No such instance ({value})" if isinstance(value, str) else None

    def _blame_key(self, env, path: CIMInstanceName) -> Optional[str]:
        spec = self._schema().spec(path.namespace, path.classname)
        given = {k.lower(): (k, v) for k, v in path.keybindings.items()}
        order = [given[k.lower()] for k in spec.key_names if k.lower() in given]
        best: Optional[list[str]] = None
        names = self.MI_enumInstanceNames(env, CIMInstanceName(path.classname,
                                                               namespace=path.namespace))
        for n, cand in enumerate(names):
            if n >= self.BLAME_LIMIT:
                break
            ckeys = {k.lower(): v for k, v in cand.keybindings.items()}
            diff = [k for k, v in order if not _key_value_equal(k, v, ckeys.get(k.lower()))]
            if best is None or len(diff) < len(best):
                best = diff
            if best is not None and len(best) <= 1:
                break
        return best[0] if best else None

    def MI_createInstance(self, env, instance: CIMInstance) -> CIMInstanceName:
        """CreateInstance; returns the new instance's path."""
        ns = instance.path.namespace if instance.path is not None else None
        if ns:
            try:
                model_from_instance(instance, ns, self._schema())
            except ValueError as exc:
                raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, str(exc)) from None
        rval = self.set_instance(env=env, instance=instance, modify_existing=False)
        path = rval.path
        if path is None:
            raise CIMError(pywbem.CIM_ERR_FAILED,
                           f"Provider of {instance.classname} created an instance without path")
        if path.namespace is None:
            path.namespace = ns
        return path

    def MI_modifyInstance(self, env, modifiedInstance: CIMInstance,
                          propertyList: Optional[list[str]]) -> None:
        """ModifyInstance: only properties in the PropertyList (and keys) are passed on."""
        ns = modifiedInstance.path.namespace
        self._check_keys(ns, modifiedInstance.path)
        try:
            model_from_instance(modifiedInstance, ns, self._schema())
        except ValueError as exc:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, str(exc)) from None
        self.filter_instance(modifiedInstance, propertyList)
        self.set_instance(env=env, instance=modifiedInstance, modify_existing=True)

    def MI_deleteInstance(self, env, instanceName: CIMInstanceName) -> None:
        """DeleteInstance."""
        self._check_keys(instanceName.namespace, instanceName)
        self.delete_instance(env=env, instance_name=instanceName)

    # association operations -------------------------------------------------

    def associated_names(self, env, object_name: CIMInstanceName, model: InstanceModel,
                         role: str, result_role: str
                         ) -> Optional[Iterator[tuple[CIMInstanceName, Optional[Any]]]]:
        """AssociatorNames/Associators: the far ends of the instances ``references()`` would
        give, unbuilt: ``(target, None)`` each, or ``(None, instance)`` where one was built
        after all.  None (the default): the instances are built."""
        return None

    def _assoc_model(self, env, objectName, assocClassName, keys_only, propertyList=None):
        if not assocClassName:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           "No association class given to the association provider")
        self.check_source(env, objectName)
        return make_model(objectName.namespace, assocClassName, property_list=propertyList,
                          keys_only=keys_only, schema=self._schema())

    def _assoc_instances(self, env, objectName, assocClassName, role, resultRole,
                         keys_only, propertyList=None):
        """(association instance, model, lower-case source role) for objectName.

        The source role is the reference through which `objectName` takes part:
        `role` if given; otherwise a reference equal to `objectName` other than
        `resultRole` (so that in a self-association, where both ends are the
        object, the other end is still a result).
        """
        model = self._assoc_model(env, objectName, assocClassName, keys_only, propertyList)
        gen = self.references(env=env, object_name=objectName, model=model,
                              result_class_name="", role=role or "",
                              result_role=resultRole or "", keys_only=keys_only)
        for inst in gen or ():
            source = self._source_role(inst, objectName, role, resultRole)
            if source is not None:
                yield inst, model, source

    @staticmethod
    def _source_role(inst: CIMInstance, objectName: CIMInstanceName, role: Optional[str],
                     resultRole: Optional[str]) -> Optional[str]:
        """objectName's (lower-case) reference in `inst` (see _assoc_instances), or None."""
        matching = [prop.name.lower() for prop in inst.properties.values()
                    if prop.type == "reference" and prop.value is not None and
                    paths_equal(prop.value, objectName)]
        if role:
            role_l = role.lower()
            return role_l if role_l in matching else None
        rrole_l = resultRole.lower() if resultRole else None
        return next((m for m in matching if m != rrole_l), None)

    def _assoc_targets(self, env, objectName, assocClassName, resultClassName, role,
                       resultRole) -> Iterator[CIMInstanceName]:
        schema = self._schema()
        model = self._assoc_model(env, objectName, assocClassName, keys_only=False)
        names = self.associated_names(env, objectName, model, role or "", resultRole or "")
        if names is None:
            gen = self.references(env=env, object_name=objectName, model=model,
                                  result_class_name="", role=role or "",
                                  result_role=resultRole or "", keys_only=False)
            names = ((None, inst) for inst in gen or ())
        rrole_l = resultRole.lower() if resultRole else None
        for target, inst in names:
            ends: list = [target]
            if inst is not None:
                source = self._source_role(inst, objectName, role, resultRole)
                ends = [] if source is None else [
                    p.value for p in list(inst.properties.values())
                    if p.type == "reference" and p.value is not None and p.name.lower() !=
                    source and (not rrole_l or p.name.lower() == rrole_l)]
            for end in ends:
                if end.namespace is None:
                    end = end.copy()
                    end.namespace = objectName.namespace
                if not resultClassName or schema.is_subclass(end.namespace, end.classname,
                                                             resultClassName):
                    yield end

    def MI_associatorNames(self, env, objectName: CIMInstanceName, assocClassName: str,
                           resultClassName: Optional[str], role: Optional[str],
                           resultRole: Optional[str]) -> Iterator[CIMInstanceName]:
        """AssociatorNames through association class `assocClassName`."""
        return self._assoc_targets(env, objectName, assocClassName, resultClassName,
                                   role, resultRole)

    def MI_associators(self, env, objectName: CIMInstanceName, assocClassName: str,
                       resultClassName: Optional[str], role: Optional[str],
                       resultRole: Optional[str],
                       propertyList: Optional[list[str]]) -> Iterator[CIMInstance]:
        """Associators: the targets, fetched through the CIMOM handle."""
        ch = env.get_cimom_handle()
        for target in self._assoc_targets(env, objectName, assocClassName,
                                          resultClassName, role, resultRole):
            try:
                inst = ch.GetInstance(target, propertyList)
            except CIMError as exc:
                if exc.status_code == pywbem.CIM_ERR_NOT_FOUND:
                    continue  # went away meanwhile
                raise
            if inst.path is None:
                inst.path = target
            yield inst

    def MI_references(self, env, objectName: CIMInstanceName, resultClassName: str,
                      role: Optional[str],
                      propertyList: Optional[list[str]]) -> Iterator[CIMInstance]:
        """References: association instances of `resultClassName` (the association class)."""
        ns = objectName.namespace
        for inst, model, _source in self._assoc_instances(
                env, objectName, resultClassName, role, None, keys_only=False,
                propertyList=propertyList):
            yield self._finish(inst, model, ns)

    def MI_referenceNames(self, env, objectName: CIMInstanceName, resultClassName: str,
                          role: Optional[str]) -> Iterator[CIMInstanceName]:
        """ReferenceNames: paths of the association instances."""
        ns = objectName.namespace
        for inst, model, _source in self._assoc_instances(
                env, objectName, resultClassName, role, None, keys_only=True):
            yield self._finish(inst, model, ns, complete=False).path

    # methods ------------------------------------------------------------------

    def _type_params(self, inputParams: Optional[dict[str, Any]], mspec: Any, mname: str,
                     ns: Optional[str], accepted: set[str], var_kw: bool,
                     args: dict[str, Any]) -> None:
        """Fill `args` (param_<name>: value) from the input parameters, typed by `mspec`."""
        for name, value in (inputParams or {}).items():
            if isinstance(value, CIMParameter):
                value = value.value
            pspec = mspec.params.get(name.lower()) if mspec else None
            if mspec is not None:
                if pspec is None:
                    raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                                   f"Method {mname} has no parameter {name!r}")
                if not pspec.is_in:
                    raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                                   f"Parameter {pspec.name} of method {mname} is output only")
                value = typed_param(pspec, value, ns, mname, self._schema())
            key = f"param_{name.lower()}"
            if key not in accepted and not var_kw:
                raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                               f"Method {mname} does not take parameter {name!r}")
            args[key] = value

    def MI_invokeMethod(self, env, objectName: CIMInstanceName, methodName: str,
                        inputParams: dict[str, Any]):
        """InvokeMethod through ``cim_method_<name>``.

        Returns ``((return type, return value), {out name: (type, value)})``,
        the form cmpi-bindings expects.
        """
        ns = objectName.namespace
        cls = objectName.classname
        spec = self._schema().spec(ns, cls) if ns else None
        mspec = spec.methods.get(methodName.lower()) if spec is not None else None
        if spec is not None and mspec is None:
            raise CIMError(pywbem.CIM_ERR_METHOD_NOT_FOUND,
                           f"Class {spec.name} has no method {methodName!r}")
        func = getattr(self, f"cim_method_{methodName.lower()}", None)
        if func is None:
            raise CIMError(pywbem.CIM_ERR_METHOD_NOT_AVAILABLE,
                           f"Method {cls}.{methodName} is not implemented by this provider")
        mname = mspec.name if mspec else methodName
        accepted, required, var_kw = _method_signature(func)
        args: dict[str, Any] = {}
        from ..cimxml.reader import embed_budget
        with embed_budget():    # the embedded instances of all parameters share one budget
            self._type_params(inputParams, mspec, mname, ns, accepted, var_kw, args)
        missing = sorted(required - set(args))
        if missing:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           f"Method {mname} needs parameter "
                           f"{', '.join(m[len('param_'):] for m in missing)}")
        result = func(env=env, object_name=objectName, **args)
        try:
            rval, outs = result
        except (TypeError, ValueError):
            raise CIMError(pywbem.CIM_ERR_FAILED,
                           f"Provider method {mname} returned {result!r}, "
                           f"not (value, out_params)") from None
        rtype = mspec.return_type if mspec else None
        rtype, rval = typed_result(rtype, False, rval)
        if mspec is not None and spec is not None:
            check_values(spec.name, f"{mname}() return value", mspec.return_values, False,
                         rval)
        out: dict[str, tuple[str, Any]] = {}
        items = outs.items() if isinstance(outs, dict) else \
            ((p.name, p) for p in (outs or ()))
        for name, value in items:
            pspec = mspec.params.get(name.lower()) if mspec else None
            if isinstance(value, CIMParameter):
                ptype, value = value.type, value.value
            else:
                ptype = None
            if pspec is not None:
                name = pspec.name
                ptype, value = typed_result(pspec.type if not pspec.embedded_object or
                                      not is_embedded_value(value) else ptype,
                                      pspec.is_array, value)
                check_values(spec.name if spec is not None else cls, f"{mname}({name})",
                             pspec.values, pspec.is_array, value)
            else:
                ptype, value = typed_result(ptype, isinstance(value, list), value)
            out[name] = (ptype, value)
        return (rtype, rval), out


