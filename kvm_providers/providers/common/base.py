"""The provider base class and helpers shared by the provider modules."""

from __future__ import annotations

import abc

from typing import Any, Iterator, Optional

import pywbem
from pywbem import CIMError, CIMInstanceName

from kvm_providers.provider import CIMProvider2, current_scope
from kvm_providers.provider._fastcim import iter_keybindings
from kvm_providers.virt import (DomainNotFound, domain_xml, iter_domain_xml, keys, list_domains,
                                lookup_domain, manager)
from kvm_providers.virt.connection import Host
from kvm_providers.virt.domain import DomainXML

from .health import STATUS_PROPS, host_status_values
from .instances import fill

__all__ = ["FAMILY_PREFIXES", "VIRT_NS", "INTEROP_NS", "VirtProvider", "PerHostProvider",
           "DomainViewProvider",
           "family_classnames", "providers_for", "ref", "get_domain_doc"]

FAMILY_PREFIXES = ("KVM", "LXC", "Xen")
VIRT_NS = "root/virt"
INTEROP_NS = "root/interop"


def family_classnames(base: str) -> list[str]:
    """['KVM_<base>', 'LXC_<base>', 'Xen_<base>']."""
    return [f"{p}_{base}" for p in FAMILY_PREFIXES]


def providers_for(provider: CIMProvider2, *bases: str) -> dict[str, CIMProvider2]:
    """{family class name: provider} for every family and every base class name."""
    return {cn: provider for base in bases for cn in family_classnames(base)}


def ref(classname: str, namespace: Optional[str], **keybindings: Any) -> CIMInstanceName:
    """An instance path."""
    return CIMInstanceName(classname, keybindings=keybindings, namespace=namespace)


def get_domain_doc(host: Host, name: str, inactive: bool = False) -> Optional[DomainXML]:
    """The parsed XML of domain `name` on `host`, or None if there is no such domain."""
    dref = lookup_domain(host, name)
    if dref is None:
        return None
    try:
        return domain_xml(dref, inactive)
    except DomainNotFound:
        return None


class VirtProvider(CIMProvider2):
    """Base of the provider classes: which family a class is, and its hosts."""

    @staticmethod
    def family(classname: str) -> str:
        """'KVM', 'LXC' or 'Xen' for a family class name.

        Providers are registered for family classes only, so another class
        here is a request the host should not have routed to this provider.
        """
        fam = keys.family_of_class(classname)
        if fam is None:
            raise CIMError(pywbem.CIM_ERR_INVALID_CLASS,
                           f"{classname} is not a class of the KVM, LXC or Xen families")
        return fam

    def check_source(self, env: Any, object_name: CIMInstanceName) -> None:
        """CIM_ERR_NOT_FOUND if the source object of an association operation does not
        exist, CIM_ERR_INVALID_PARAMETER if its path is ill-formed (a key missing).

        DSP0200 lists CIM_ERR_NOT_FOUND ("the source instance was not found") for the
        instance-level association operations (OpenAssociatorInstances, ...,
        OpenReferenceInstancePaths), and libvirt-cim answered the classic ones so
        too; its clients tell a wrong path from an object without associations this
        way (docs/compat.md).  The object is looked up through the CIMOM handle
        (whichever provider serves its class, in any CIM server), once per request
        however many association classes the request goes through.  A family class
        that no provider serves has no instances; where no provider can tell (a host
        that does not answer), the association is answered as before.  Only objects
        of the KVM, LXC and Xen families are looked up: other classes
        (CIM_IndicationFilter, ...) reach these providers only through superclass
        roles they never play here, and are answered by their own providers.
        """
        if keys.family_of_class(object_name.classname) is None:
            return
        scope = current_scope()
        # The path's parts, not str(path) (pywbem's URI text: some 10 us per request).
        key = ("association source", object_name.namespace, object_name.classname,
               tuple(iter_keybindings(object_name)))
        if scope is not None and key in scope:
            err = scope[key]
        elif self.read_ahead_source(object_name):
            err = None      # the read found the source: no GetInstance of it (issue 16)
        else:
            err = self._source_error(env, object_name, self._lacks_key(object_name))
            if scope is not None:
                scope[key] = err
        if err is not None:
            raise CIMError(err.status_code, err.status_description)

    def read_ahead_source(self, object_name: CIMInstanceName) -> bool:
        """Called before the source check looks `object_name` up: a provider that will
        read what the check reads and more (the domain's XML, beside its lookup) reads
        it ahead here, in one guarded hop with the check's calls
        (:func:`kvm_providers.virt.domain.lookup_with_xml`).  It must not raise: the
        check and the association then find their reads in the request scope, or make
        them as before, with the same errors.

        True if the read found the source, exactly where a GetInstance of
        `object_name` (by the provider of its class) would find it: the check then
        asks no GetInstance (issue 16: a whole GetInstance through the CIMOM handle
        was a sixth of an AssociatorNames).  False: the check asks the GetInstance,
        whose answer (an error for a source that is missing, or that the read could
        not tell) is the association's.  The default reads nothing (False)."""
        return False

    def _lacks_key(self, object_name: CIMInstanceName) -> bool:
        """True if `object_name` lacks a key of its class (per the schema)."""
        try:
            spec = self._schema().spec(object_name.namespace, object_name.classname)
        except CIMError:
            return False
        given = {k.lower() for k in object_name.keybindings}
        return any(k.lower() not in given for k in spec.key_names)

    @staticmethod
    def _source_error(env: Any, object_name: CIMInstanceName,
                      lacks_key: bool = False) -> Optional[CIMError]:
        try:
            env.get_cimom_handle().GetInstance(object_name, [])
        except CIMError as exc:
            if lacks_key and exc.status_code in (pywbem.CIM_ERR_FAILED,
                                                 pywbem.CIM_ERR_NOT_FOUND):
                # GetInstance's answer to a path that lacks a key (the provider
                # of its class: CIMProvider2.missing_key_error) is the answer
                # here too, whichever of the two codes it is.
                return CIMError(exc.status_code, exc.status_description)
            if exc.status_code == pywbem.CIM_ERR_NOT_FOUND:
                return CIMError(pywbem.CIM_ERR_NOT_FOUND, exc.status_description or
                                f"Instance not found: {object_name}")
            if exc.status_code == pywbem.CIM_ERR_INVALID_PARAMETER:
                return CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                                f"ObjectName: {exc.status_description}")
            if exc.status_code == pywbem.CIM_ERR_NOT_SUPPORTED:
                # A family class no provider serves (declared for a profile not
                # implemented here) has no instances, as OpenPegasus and sfcb answer
                # from their repositories.
                return CIMError(pywbem.CIM_ERR_NOT_FOUND,
                                f"Instance not found: {object_name}; No such instance "
                                f"(no provider serves {object_name.classname})")
        return None

    def hosts(self, classname: str) -> list[Host]:
        """The configured hosts that class `classname` answers for."""
        fam = keys.family_of_class(classname)
        return manager().for_family(fam) if fam else []

    @staticmethod
    def prefix(classname: str) -> str:
        return classname.split("_", 1)[0]

    @staticmethod
    def same_class(a: str, b: str) -> bool:
        return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()

    @staticmethod
    def class_of(family_classname: str, base: str) -> str:
        """The class `base` of the family of `family_classname` ('KVM_X', 'Y' -> 'KVM_Y')."""
        return f"{family_classname.split('_', 1)[0]}_{base}"


class DomainViewProvider(VirtProvider, abc.ABC):
    """Base of providers whose classes are views of each domain's XML, one class per
    device kind (the RASDs, the logical devices).

    A polymorphic enumeration (every RASD class) is one pass over the domains
    (:meth:`enum_many`): each domain's XML is read once, all its instances of
    the requested classes are produced, and the parsed document is let go before
    the next (issue 16: 10,000 parsed domains held to the end of the request
    were most of the server's memory).
    """

    @abc.abstractmethod
    def _kind(self, classname: str) -> Any:
        """The device kind of `classname`, or None if this provider does not serve it."""

    @abc.abstractmethod
    def _instances(self, model: Any, doc: DomainXML, kind: Any, keys_only: bool
                   ) -> Iterator[Any]:
        """The instances of `model`'s class in one domain."""

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        kind = self._kind(model.classname)
        if kind is None:
            return
        for host in self.hosts(model.classname):
            if not keys_only:
                self._prefetch(host, [kind])
            for doc in iter_domain_xml(list_domains(host)):
                yield from self._instances(model, doc, kind, keys_only)

    def enum_many(self, env, models, keys_only) -> Iterator[tuple[Any, Any]]:
        return self._one_pass(models, keys_only)

    def _one_pass(self, models: list, keys_only: bool) -> Iterator[tuple[Any, Any]]:
        for doc, pairs in self._each_domain(models, prefetch=not keys_only):
            for model, kind in pairs:
                for inst in self._instances(model, doc, kind, keys_only):
                    yield model, inst

    #: Whether the kinds' ``prefetch`` hooks run before an enumeration's domains are
    #: listed (the RASDs': a disk's VirtualQuantity and PoolID ask the host's storage).
    prefetches = False

    def _prefetch(self, host: Host, kinds: list[Any]) -> None:
        """Start what the settings of `kinds` will ask of `host` (virt.prefetch_storage
        for disks: issue 16, stop 24), before the domains are listed."""
        if self.prefetches:
            for hook in {k.prefetch for k in kinds if getattr(k, "prefetch", None)}:
                hook(host)

    def _each_domain(self, models: list, prefetch: bool = True
                     ) -> Iterator[tuple[DomainXML, list[tuple[Any, Any]]]]:
        """(each domain's parsed XML, [(model, device kind), ...] of the `models` of its
        family), one domain at a time, each let go once the next is asked for.
        `models` are instance models, or anything with a ``classname`` (DirectPlans);
        `prefetch`: values are read (not only keys), see :meth:`_prefetch`."""
        by_family: dict[str, list[tuple[Any, Any]]] = {}
        for model in models:
            kind = self._kind(model.classname)
            fam = keys.family_of_class(model.classname)
            if kind is not None and fam is not None:
                by_family.setdefault(fam, []).append((model, kind))
        for pairs in by_family.values():
            for host in self.hosts(pairs[0][0].classname):
                if prefetch:
                    self._prefetch(host, [k for _m, k in pairs])
                for doc in iter_domain_xml(list_domains(host), release=True):
                    yield doc, pairs


class PerHostProvider(VirtProvider, abc.ABC):
    """Base of the classes with one instance per configured host of the family.

    Every subclass's ``_fill`` is followed by the host's status (``HealthState``,
    ``OperationalStatus``, ``CommunicationStatus``, ``StatusDescriptions``, where the
    class defines them: :mod:`.health`), so that no per-host element reports a
    constant "OK" for a host that is away or hung.  The instances of such a host are
    still listed while its keys are known (from its last connection); a host never
    reached since the start fails the request (CIM_ERR_FAILED naming it).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("_fill")
        if own is None or getattr(own, "_with_host_status", False):
            return

        def _fill(self: Any, inst: Any, model: Any, host: Host) -> None:
            own(self, inst, model, host)
            fill(inst, model, host_status_values(host), STATUS_PROPS)
        _fill._with_host_status = True  # type: ignore[attr-defined]
        _fill.__doc__ = own.__doc__
        cls._fill = _fill  # type: ignore[method-assign]

    def selecting_keys(self, spec: Any) -> tuple[str, ...]:
        """None: a path is compared with the host's one instance as a whole, so a
        path lacking any key names no instance (CIM_ERR_NOT_FOUND naming the key,
        as libvirt-cim answered for its host system and services)."""
        return ()

    @abc.abstractmethod
    def host_keys(self, host: Host, classname: str) -> dict[str, Any]:
        """The keys of `host`'s instance of `classname`."""

    @abc.abstractmethod
    def _fill(self, inst: Any, model: Any, host: Host) -> None:
        """Fill the wanted non-key properties of `host`'s instance."""

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        for host in self.hosts(model.classname):
            inst = model.copy()
            for k, v in self.host_keys(host, model.classname).items():
                inst[k] = v
            if not keys_only:
                self._fill(inst, model, host)
            yield inst

    def get_instance(self, env, model) -> Optional[Any]:
        """The instance of the host whose keys the model's equal exactly."""
        for host in self.hosts(model.classname):
            if all(model[k] == v for k, v in self.host_keys(host, model.classname).items()):
                self._fill(model, model, host)
                return model
        return None

    def _host_of_keys(self, classname: str, kb: Any) -> Optional[Host]:
        """The host whose instance has the keys `kb` (compared as text, any case), or None."""
        got = {k.lower(): v for k, v in kb.items()}
        for host in self.hosts(classname):
            want = self.host_keys(host, classname)
            if all(str(got.get(k.lower(), "")).lower() == str(v).lower()
                   for k, v in want.items()):
                return host
        return None

    def _service_host(self, object_name: CIMInstanceName) -> Optional[Host]:
        """The host of the instance an extrinsic method was invoked on (None: a class path
        of a family with several hosts, where the method's parameters decide)."""
        hosts = self.hosts(object_name.classname)
        if not hosts:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                           f"no libvirt host serves {object_name.classname}")
        if not object_name.keybindings:
            return hosts[0] if len(hosts) == 1 else None
        host = self._host_of_keys(object_name.classname, object_name.keybindings)
        if host is None:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND, f"no such service: {object_name}")
        return host
