"""{P}_VirtualSystemSnapshotSettingData: the snapshots of the virtual systems
(DSP2013 5.2.8; docs/snapshots.md).

A snapshot is a VSSD: the subclass of {P}_VirtualSystemSettingData whose
properties are read, through the same VSSD mapping table, from the domain
definition libvirt stored with the snapshot (the configuration at snapshot
time), plus ElementName (the snapshot's name), Description, CreationTime,
SnapshotState, SnapshotLocation, MemoryIncluded and IsCurrent.  Its RASDs
(the kinds' RASD classes, InstanceID ``<system>/Snapshot/<name>/<devid>``)
are reached through {P}_VirtualSystemSettingDataComponent; they are read
from the same definition.  A snapshot is one libvirt snapshot: nothing is
kept outside libvirt.
"""

from __future__ import annotations

import datetime
from typing import Any, Iterator, Optional

from pywbem import CIMDateTime

from kvm_providers.model.vssd import VSSD
from kvm_providers.virt import list_domains
from kvm_providers.virt.domain import DomainRef, DomainXML
from kvm_providers.virt.domain_facts import facts_parser
from kvm_providers.virt.snapshots import Snapshot, iter_snapshots, snapshot_names

from .common import VirtProvider, fill, fill_from_table, providers_for, wanted_in
from .common.instances import write_from_table, write_values
from .common.snapshot_paths import (modelled, parse_snapshot_vssd_id, snapshot_doc,
                                    snapshot_vssd_id)

__all__ = ["SnapshotSettingsProvider", "get_providers", "snapshot_values"]

_PROPS = ("ElementName", "Caption", "Description", "CreationTime", "VirtualSystemType",
          "SnapshotState", "SnapshotLocation", "MemoryIncluded", "IsCurrent")


def snapshot_values(ref: DomainRef, snap: Snapshot) -> dict[str, Any]:
    """The snapshot's own properties (over those of its domain definition)."""
    return {
        "ElementName": snap.name,
        "Caption": "Snapshot",
        "Description": snap.description or f"snapshot {snap.name!r} of {ref.name!r}",
        "CreationTime": CIMDateTime(datetime.datetime.fromtimestamp(
            snap.created, datetime.timezone.utc)) if snap.created else None,
        "VirtualSystemType": ref.host.family,
        "SnapshotState": snap.state,
        "SnapshotLocation": snap.location,
        "MemoryIncluded": snap.with_memory,
        "IsCurrent": snap.current,
    }


class SnapshotSettingsProvider(VirtProvider):
    """{P}_VirtualSystemSnapshotSettingData for every family.

    An enumeration reads the definition's properties (the VSSD mapping table)
    once per parsed definition: the snapshots of a domain that share one
    (virt.snapshots parses each distinct definition once) are copies of one
    filled model with their own InstanceID and snapshot properties, in the
    same property order as one filled alone.  With :meth:`enum_many` (the
    whole enumeration asked at once) each domain's snapshots are let go once
    their instances are out.
    """

    def _fill(self, inst: Any, model: Any, ref: DomainRef, snap: Snapshot,
              doc: Optional[DomainXML]) -> None:
        if doc is not None:
            fill_from_table(inst, model, VSSD, doc.root_view, doc.context())
        fill(inst, model, snapshot_values(ref, snap), _PROPS)

    def enum_instances(self, env, model, keys_only, release: bool = False
                       ) -> Iterator[Any]:
        for host in self.hosts(model.classname):
            refs = list_domains(host)
            if keys_only:     # names only: no snapshot XML
                for ref in refs:
                    for name in snapshot_names(ref):
                        if modelled(name):
                            inst = model.copy()
                            inst["InstanceID"] = snapshot_vssd_id(host, ref.name, name)
                            yield inst
                continue
            # The request's only pass (release): definitions parsed without the devices
            # no wanted property reads (issue 13), not kept for others.
            parse = facts_parser(VSSD, [n for n, _ in wanted_in(model, VSSD)]) \
                if release else None
            for ref, snaps in iter_snapshots(refs, release=release, parse=parse):
                # {id(definition): (definition, model filled from it)}: the
                # definition is held with its model, so that the id stays its own.
                filled: dict[int, tuple[Optional[DomainXML], Any]] = {}
                for snap in snaps:
                    if not modelled(snap.name):
                        continue
                    hit = filled.get(id(snap.doc))
                    if hit is None:
                        base = model.copy()
                        base["InstanceID"] = ""     # first, as in an instance filled alone
                        if snap.doc is not None:
                            fill_from_table(base, model, VSSD, snap.doc.root_view,
                                            snap.doc.context())
                        hit = filled[id(snap.doc)] = (snap.doc, base)
                    inst = hit[1].copy()
                    inst["InstanceID"] = snapshot_vssd_id(host, ref.name, snap.name)
                    fill(inst, model, snapshot_values(ref, snap), _PROPS)
                    yield inst

    def enum_direct(self, env, plans, form) -> Iterator[str]:
        """Every snapshot VSSD of the classes of `plans` written straight to CIM-XML:
        the values and order of :meth:`enum_instances` (InstanceID, the definition's
        VSSD table read once per distinct definition, the snapshot's own properties),
        no model per instance (issue 16); each domain's snapshots are let go once
        their instances are out, their definitions parsed without the devices no
        wanted property reads (virt.domain_facts)."""
        for plan in plans:
            parse = facts_parser(VSSD, [n for n, _ in wanted_in(plan, VSSD)])
            for host in self.hosts(plan.classname):
                for ref, snaps in iter_snapshots(list_domains(host), release=True,
                                                 parse=parse):
                    # {id(definition): (definition, its texts)}: as in enum_instances.
                    filled: dict[int, tuple[Optional[DomainXML], dict[str, str]]] = {}
                    for snap in snaps:
                        if not modelled(snap.name):
                            continue
                        texts, name = plan.keyed(snapshot_vssd_id(host, ref.name, snap.name))
                        hit = filled.get(id(snap.doc))
                        if hit is None:
                            base = dict.fromkeys(texts, "")     # InstanceID first
                            if snap.doc is not None:
                                write_from_table(base, plan, VSSD, snap.doc.root_view,
                                                 snap.doc.context())
                            hit = filled[id(snap.doc)] = (snap.doc, base)
                        texts = {**hit[1], **texts}
                        write_values(texts, plan, snapshot_values(ref, snap), _PROPS)
                        yield form.item(name, plan.instance_xml(texts))

    def enum_many(self, env, models, keys_only) -> Iterator[tuple[Any, Any]]:
        """The whole enumeration asked at once: each domain's snapshots (their parsed
        XML) are let go once their instances are out."""
        for model in models:
            for inst in self.enum_instances(env, model, keys_only, release=True):
                yield model, inst

    def get_instance(self, env, model) -> Optional[Any]:
        hit = parse_snapshot_vssd_id(self.family(model.classname), model["InstanceID"])
        found = snapshot_doc(*hit) if hit is not None else None
        if found is None:
            return None
        self._fill(model, model, *found)
        return model


def get_providers(env) -> dict[str, Any]:
    return providers_for(SnapshotSettingsProvider(), "VirtualSystemSnapshotSettingData")
