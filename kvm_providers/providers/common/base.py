"""The provider base class and helpers shared by the provider modules."""

from __future__ import annotations

import abc

from typing import Any, Iterator, Optional

from pywbem import CIMInstanceName

from kvm_providers.provider import CIMProvider2
from kvm_providers.virt import DomainNotFound, domain_xml, keys, lookup_domain, manager
from kvm_providers.virt.connection import Host
from kvm_providers.virt.domain import DomainXML

__all__ = ["FAMILY_PREFIXES", "VIRT_NS", "INTEROP_NS", "VirtProvider", "PerHostProvider",
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
    def family(classname: str) -> Optional[str]:
        """'KVM', 'LXC' or 'Xen' for a family class name."""
        return keys.family_of_class(classname)

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


class PerHostProvider(VirtProvider, abc.ABC):
    """Base of the classes with one instance per configured host of the family."""

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
