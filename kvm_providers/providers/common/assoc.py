"""Association plumbing: two roles, and what is related to what.

An association provider declares its two :class:`Role` s (property name and
the classes that may play it, without family prefix) and implements
``related(env, side, path, family, keys_only)``: the paths on the other side
of an object that plays role `side` (0 or 1).  Everything else is here:

* ``references()`` (all four association operations, through the MI layer):
  finds which role(s) the object can play, honours Role / ResultRole early,
  and builds association instances whose source reference is the client's
  path itself (so that namespace aliases and host parts match);
* ``enum_instances()``: every instance, from ``sources(env, family)`` (the
  objects playing role 0).

Objects of another family never match (KVM_SystemDevice does not relate
LXC objects).
"""

from __future__ import annotations

import abc

from typing import Any, Iterable, Iterator, Optional, Sequence

from pywbem import CIMInstanceName

from kvm_providers.virt import iter_domain_xml, list_domains

from .base import VIRT_NS, VirtProvider
from .instances import fill

__all__ = ["Role", "AssociationProvider"]


class Role:
    """One end of an association: the reference property and the classes allowed there."""

    def __init__(self, name: str, bases: Sequence[str], namespace: str = VIRT_NS):
        self.name = name
        self.bases = tuple(b.lower() for b in bases)
        self.namespace = namespace

    def matches(self, classname: str, family: Optional[str]) -> bool:
        """True if an instance of `classname` (of the association's family) plays this role."""
        if not isinstance(classname, str) or "_" not in classname:
            return False
        prefix, base = classname.split("_", 1)
        if family is None or prefix.lower() != family.lower():
            return False
        return base.lower() in self.bases

    def __repr__(self) -> str:
        return f"<Role {self.name} {self.bases}>"


class AssociationProvider(VirtProvider, abc.ABC):
    """Base class of the association providers."""

    #: The two roles, (role 0, role 1).
    roles: tuple[Role, Role]
    #: True if both roles are played by the same instance (ElementSettingData).
    symmetric = False
    #: Non-key properties of every instance: {name: value}.
    extra: dict[str, Any] = {}

    # -- what subclasses implement ------------------------------------------

    @abc.abstractmethod
    def related(self, env: Any, side: int, path: CIMInstanceName, family: str,
                keys_only: bool) -> Iterable[CIMInstanceName]:
        """Paths of the objects on the other side of `path`, which plays role `side`."""

    def sources(self, env: Any, family: str) -> Iterable[CIMInstanceName]:
        """Paths of every object that plays role 0 (for EnumerateInstances)."""
        return ()

    def domain_docs(self, family: str) -> Iterator[Any]:
        """The parsed XML of every domain of the family's hosts (fetches pipelined)."""
        for host in self.hosts(f"{family}_X"):
            yield from iter_domain_xml(list_domains(host))

    # -- the provider interface --------------------------------------------------

    def _instance(self, model: Any, refs: dict[str, CIMInstanceName], keys_only: bool) -> Any:
        inst = model.copy()
        for name, path in refs.items():
            inst[name] = path
        if not keys_only and self.extra:
            fill(inst, model, self.extra)
        return inst

    def _role_targets(self, env, object_name, family, role, result_role, keys_only
                      ) -> Iterator[tuple[Role, Role, CIMInstanceName]]:
        """(role of object_name, other role, target) of every instance references() gives."""
        role_l = role.lower() if role else None
        rrole_l = result_role.lower() if result_role else None
        for side, r in enumerate(self.roles):
            other = self.roles[1 - side]
            if role_l and role_l != r.name.lower():
                continue
            if rrole_l and rrole_l != other.name.lower():
                continue
            if not r.matches(object_name.classname, family):
                continue
            if self.symmetric and side == 1 and not role_l and \
                    self.roles[0].matches(object_name.classname, family):
                continue  # the same instances as for side 0
            for target in self.related(env, side, object_name, family, keys_only):
                yield r, other, target

    def references(self, env, object_name, model, result_class_name, role, result_role,
                   keys_only) -> Iterator[Any]:
        family = self.family(model.classname)
        for r, other, target in self._role_targets(env, object_name, family, role,
                                                   result_role, keys_only):
            yield self._instance(model, {r.name: object_name, other.name: target}, keys_only)

    def associated_names(self, env, object_name, model, role, result_role
                         ) -> Optional[Iterator[tuple[Any, Any]]]:
        """The targets of :meth:`references` without an association instance each (its
        model copy and two references: most of an AssociatorNames; issue 16).  A target
        that is the object itself (a self-association) comes with its instance, so that
        the far end is picked from it exactly as from a built one.  Providers that build
        their instances otherwise (their own references() or _instance()) build them."""
        cls = type(self)
        if cls.references is not AssociationProvider.references or \
                cls._instance is not AssociationProvider._instance:
            return None
        return self._targets(env, object_name, model, role, result_role)

    def _targets(self, env, object_name, model, role, result_role
                 ) -> Iterator[tuple[Any, Any]]:
        family = self.family(model.classname)
        for r, other, target in self._role_targets(env, object_name, family, role,
                                                   result_role, False):
            if self.paths_equal(target, object_name):
                yield None, self._instance(model, {r.name: object_name, other.name: target},
                                           False)
            else:
                yield target, None

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        family = self.family(model.classname)
        r0, r1 = self.roles
        for src in self.sources(env, family):
            for target in self.related(env, 0, src, family, keys_only):
                yield self._instance(model, {r0.name: src, r1.name: target}, keys_only)

    def get_instance(self, env, model) -> Optional[Any]:
        """An association instance exists if its role 0 object relates to its role 1 object."""
        family = self.family(model.classname)
        r0, r1 = self.roles
        a, b = model[r0.name], model[r1.name]
        if not isinstance(a, CIMInstanceName) or not isinstance(b, CIMInstanceName):
            return None
        if not r0.matches(a.classname, family):
            return None
        for target in self.related(env, 0, a, family, False):
            if self.paths_equal(target, b):
                inst = self._instance(model, {r0.name: a, r1.name: b}, False)
                return inst
        return None
