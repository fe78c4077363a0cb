"""The associations of snapshots (DSP2013 5.2.8.3 - 5.2.8.5; docs/snapshots.md).

* {P}_SnapshotOfVirtualSystem: the virtual system (Antecedent) and each of
  its snapshots (Dependent).
* {P}_MostCurrentSnapshotInBranch: the system and its current snapshot
  (libvirt's ``snapshotCurrent``: the one the system's state continues from).
* {P}_SnapshotDependency (vendor, CIM_Dependency as DSP2013 5.2.8.5 names
  it): a snapshot (Antecedent) and its children in the tree (Dependent).
"""

from __future__ import annotations

from typing import Any, Iterable

from kvm_providers.virt import list_domains
from kvm_providers.virt.snapshots import list_snapshots, snapshot_names

from .common import AssociationProvider, Role, providers_for
from .common.paths import cs_of_path, cs_path
from .common.snapshot_paths import modelled, snapshot_of_path, snapshot_vssd_path

__all__ = ["SnapshotOfVirtualSystemProvider", "MostCurrentSnapshotProvider",
           "SnapshotDependencyProvider", "get_providers"]

_SNAPSHOT = "VirtualSystemSnapshotSettingData"


class _SystemToSnapshots(AssociationProvider):
    roles = (Role("Antecedent", ["ComputerSystem"]), Role("Dependent", [_SNAPSHOT]))
    current_only = False

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            ref = cs_of_path(path, family)
            if ref is None:
                return
            if not self.current_only:     # names only: no snapshot XML
                for name in snapshot_names(ref):
                    if modelled(name):
                        yield snapshot_vssd_path(ref.host, ref.name, name)
                return
            for snap in list_snapshots(ref):
                if modelled(snap.name) and snap.current:
                    yield snapshot_vssd_path(ref.host, ref.name, snap.name)
            return
        found = snapshot_of_path(path, family)
        if found is not None and (found[1].current or not self.current_only):
            yield cs_path(found[0].host, found[0].name)

    def sources(self, env, family):
        for host in self.hosts(f"{family}_X"):
            for ref in list_domains(host):
                yield cs_path(host, ref.name)


class SnapshotOfVirtualSystemProvider(_SystemToSnapshots):
    """{P}_SnapshotOfVirtualSystem."""


class MostCurrentSnapshotProvider(_SystemToSnapshots):
    """{P}_MostCurrentSnapshotInBranch."""

    current_only = True


class SnapshotDependencyProvider(AssociationProvider):
    """{P}_SnapshotDependency: parent (Antecedent) and children (Dependent)."""

    roles = (Role("Antecedent", [_SNAPSHOT]), Role("Dependent", [_SNAPSHOT]))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        found = snapshot_of_path(path, family)
        if found is None:
            return
        ref, snap, _doc = found
        if side == 0:
            for other in list_snapshots(ref):
                if other.parent == snap.name and modelled(other.name):
                    yield snapshot_vssd_path(ref.host, ref.name, other.name)
        elif snap.parent is not None and modelled(snap.parent):
            yield snapshot_vssd_path(ref.host, ref.name, snap.parent)

    def sources(self, env, family):
        for host in self.hosts(f"{family}_X"):
            for ref in list_domains(host):
                for snap in list_snapshots(ref):
                    if modelled(snap.name):
                        yield snapshot_vssd_path(host, ref.name, snap.name)


def get_providers(env) -> dict[str, Any]:
    out = providers_for(SnapshotOfVirtualSystemProvider(), "SnapshotOfVirtualSystem")
    out.update(providers_for(MostCurrentSnapshotProvider(), "MostCurrentSnapshotInBranch"))
    out.update(providers_for(SnapshotDependencyProvider(), "SnapshotDependency"))
    return out
