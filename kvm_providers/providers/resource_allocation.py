"""The RASD classes of every family: processor, memory, disk, network, graphics,
input, console and controller settings of each virtual system (DSP1041, DSP1057).

InstanceID "<domain>/<devid>" (COMPAT.md; host-qualified with several hosts).
GetInstance also answers the templates of the allocation capabilities
("<capabilities id>#<name>", kvm_providers.model.allocation), which are not
enumerated: they say what may be allocated, they are no allocation.
Each class reads its properties through its kind's mapping table
(kvm_providers.virt.mapping), the tables the write side shares; only the
properties the client asked for are read.  One domain XML fetch per domain
and request, whichever RASD classes the request goes through.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

from kvm_providers.virt import keys
from kvm_providers.model.allocation import lookup_template
from kvm_providers.model.kinds import KINDS, kind_for_class
from kvm_providers.virt.domain import DomainXML

from .common import DomainViewProvider, fill_from_table, get_domain_doc, providers_for
from .common.instances import table_instance_xml, table_item_writer
from .common.snapshot_paths import snapshot_setting

__all__ = ["RASDProvider", "get_providers"]

_UNMADE: Any = object()     # no item writer made yet for a (plan, tag)


class RASDProvider(DomainViewProvider):
    """Every {P}_<kind>ResourceAllocationSettingData class."""

    prefetches = True

    def _kind(self, classname: str) -> Any:
        return kind_for_class(classname)[0]

    def _instances(self, model, doc: DomainXML, kind, keys_only) -> Iterator[Any]:
        host, ref = doc.host, doc.ref
        ctx = doc.context()
        for setting in doc.settings_of(kind.name):
            inst = model.copy()
            inst["InstanceID"] = keys.device_id(host, ref.name, setting.devid)
            if not keys_only:
                fill_from_table(inst, model, setting.table, setting.view, ctx)
            yield inst

    def enum_direct(self, env, plans, form) -> Iterator[str]:
        """Every instance of the classes of `plans` written straight to CIM-XML: the
        values and order of :meth:`_instances` (InstanceID, then the kind's mapping
        table), no model per instance (issue 16)."""
        # One item writer per class and table (a kind's table is chosen by the element's
        # tag where it has several: disk and filesystem), made with the first setting:
        # no lookup of it per instance, and none of the tag for a kind of one table.
        writers: dict[tuple[Any, Optional[str]], Any] = {}
        escaped: list[Any] = [None, ""]      # the writers' last prefix, escaped once
        last: Any = None
        named: list[tuple[Any, str, bool]] = []
        for doc, pairs in self._each_domain(plans):
            if pairs is not last:        # the same list for every domain of a family
                last = pairs
                named = [(plan, kind.name, set(kind.tables) != {"*"}) for plan, kind in pairs]
            # The InstanceIDs of a domain's settings: "<domain>/" (host-qualified) and the
            # device id (keys.device_id), passed apart so that each is escaped once.
            prefix = keys.device_id(doc.host, doc.ref.name, "")
            ctx = doc.context()
            by_kind = doc.settings_by_kind()
            for plan, kind_name, by_tag in named:
                for setting in by_kind.get(kind_name, ()):
                    wkey = (plan, setting.element.tag if by_tag else None)
                    write = writers.get(wkey, _UNMADE)
                    if write is _UNMADE:
                        write = writers[wkey] = table_item_writer(form, plan, setting.table,
                                                                escaped)
                    if write is not None:
                        yield write(prefix, setting.devid, setting.view, ctx)
                        continue
                    # A plan or form the item writer does not take (the CMPI adapter's).
                    texts, iname = plan.keyed(prefix + setting.devid)
                    yield form.item(iname, table_instance_xml(texts, plan, setting.table,
                                                              setting.view, ctx))

    def get_instance(self, env, model) -> Optional[Any]:
        kind, _ = kind_for_class(model.classname)
        # A template of an AllocationCapabilities ("<capabilities id>#Default", issue 5).
        tmpl = lookup_template(self.family(model.classname), model["InstanceID"])
        if tmpl is not None:
            if kind is None or tmpl.rasd_class != kind.rasd_class:
                return None
            for name, value in tmpl.props.items():
                model[name] = value
            return model
        # A setting of a snapshot ("<system>/Snapshot/<name>/<devid>", issue 13).
        snap = snapshot_setting(self.family(model.classname), model["InstanceID"])
        if snap is not None:
            sdoc, ssetting = snap
            if kind is None or ssetting.kind is not kind:
                return None
            fill_from_table(model, model, ssetting.table, ssetting.view, sdoc.context())
            return model
        hit = keys.parse_device_id(self.family(model.classname), model["InstanceID"])
        if kind is None or hit is None:
            return None
        host, name, devid = hit
        doc = get_domain_doc(host, name)
        if doc is None:
            return None
        setting = doc.setting(devid)
        if setting is None or setting.kind is not kind:
            return None
        fill_from_table(model, model, setting.table, setting.view, doc.context())
        return model


def get_providers(env) -> dict[str, Any]:
    return providers_for(RASDProvider(), *(k.rasd_class for k in KINDS))
