"""{P}_VirtualSystemSettingData: the settings of each virtual system (DSP1057).

InstanceID "<P>:<domain>" (COMPAT.md; host-qualified with several hosts).
The properties are read from the domain XML through the VSSD mapping table
(kvm_providers.model.vssd.VSSD), the table the write side shares.  The
domain's current definition serves as both the state and the defined
configuration, as in libvirt-cim (ElementSettingData relates the instance
to itself).
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

from kvm_providers.virt import iter_domain_xml, keys, list_domains
from kvm_providers.model.vssd import VSSD
from kvm_providers.virt.domain import DomainXML
from kvm_providers.virt.domain_facts import facts_parser

from .common import VirtProvider, fill_from_table, get_domain_doc, providers_for, put, wanted_in
from .common.instances import table_values, write_values

__all__ = ["VSSDProvider", "get_providers"]

_EXTRA = ("VirtualSystemType",)


class VSSDProvider(VirtProvider):
    """{P}_VirtualSystemSettingData for every family."""

    def selecting_keys(self, spec: Any) -> tuple[str, ...]:
        """None: a virtual system's settings are its virtual system's (InstanceID
        ``<P>:<domain>``), so a path without InstanceID names no instance -
        CIM_ERR_NOT_FOUND ``No such instance (InstanceID)``, as libvirt-cim answered
        for this class (CIM_ERR_FAILED ``Missing InstanceID`` for RASDs and pools)."""
        return ()

    def _fill(self, inst: Any, model: Any, doc: DomainXML) -> None:
        fill_from_table(inst, model, VSSD, doc.root_view, doc.context())
        for _name, pspec in wanted_in(model, _EXTRA):
            put(inst, pspec, doc.host.family)

    def enum_instances(self, env, model, keys_only, release: bool = False
                       ) -> Iterator[Any]:
        for host in self.hosts(model.classname):
            refs = list_domains(host)
            if keys_only:
                for ref in refs:
                    inst = model.copy()
                    inst["InstanceID"] = keys.vssd_id(host, ref.name)
                    yield inst
                continue
            # The request's only pass (release): no devices parsed that no wanted
            # property reads (issue 16); the documents are not kept for others.
            parse = facts_parser(VSSD, [n for n, _ in wanted_in(model, VSSD)]) \
                if release else None
            for doc in iter_domain_xml(refs, release=release, parse=parse):
                inst = model.copy()
                inst["InstanceID"] = keys.vssd_id(host, doc.name)
                self._fill(inst, model, doc)
                yield inst

    def enum_many(self, env, models, keys_only) -> Iterator[tuple[Any, Any]]:
        """The whole enumeration asked at once: each domain's parsed XML is let go
        once its instance is out (issue 16)."""
        for model in models:
            for inst in self.enum_instances(env, model, keys_only, release=True):
                yield model, inst

    def enum_direct(self, env, plans, form) -> Iterator[str]:
        """Every instance of the classes of `plans` written straight to CIM-XML: the
        values and order of :meth:`_fill` (InstanceID, the VSSD mapping table, then
        VirtualSystemType), no model per instance (issue 16); each domain's parsed XML
        is let go once its instance is out, and holds no devices the wanted properties
        do not read (virt.domain_facts)."""
        for plan in plans:
            parse = facts_parser(VSSD, [n for n, _ in wanted_in(plan, VSSD)])
            for host in self.hosts(plan.classname):
                for doc in iter_domain_xml(list_domains(host), release=True, parse=parse):
                    texts, name = plan.keyed(keys.vssd_id(host, doc.name))
                    table_values(texts, plan, VSSD, doc.root_view, doc.context())
                    write_values(texts, plan, {"VirtualSystemType": host.family}, _EXTRA)
                    yield form.item(name, plan.instance_xml(texts))

    def get_instance(self, env, model) -> Optional[Any]:
        hit = keys.parse_vssd_id(self.family(model.classname), model["InstanceID"])
        if hit is None:
            return None
        doc = get_domain_doc(*hit)
        if doc is None:
            return None
        self._fill(model, model, doc)
        return model


def get_providers(env) -> dict[str, Any]:
    return providers_for(VSSDProvider(), "VirtualSystemSettingData")
