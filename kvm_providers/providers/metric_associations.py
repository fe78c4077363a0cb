"""Base metrics (DSP1053) associations: {P}_MetricDefForME, {P}_MetricInstance,
{P}_MetricForME.

* MetricDefForME: an element (host system, computer system, logical disk,
  network port) and the definitions of the metrics measured for its kind, with
  ``MetricCollectionEnabled`` (2 Enabled, 3 Disabled: MetricService.ControlMetrics);
* MetricInstance: a definition and the current values of its metric (the
  values of the history are not listed: see providers/metrics.py);
* MetricForME: an element and its values, current and history.

Elements are those of the collector's last sample (kvm_providers.virt.stats).
"""

from __future__ import annotations

from typing import Any, Iterable

from pywbem import CIMInstanceName

from kvm_providers.schema.valuemaps import CIM_MetricDefForME
from kvm_providers.virt.statsdefs import METRIC_BY_ID, METRICS, metrics_of

from .common import AssociationProvider, Role, providers_for
from .common.metric_paths import (definition_path, element_exists, element_key_of_path,
                                  element_keys, element_path, hosts_of, parse_value_id,
                                  sampled, value_at, values_of)

__all__ = ["MetricDefForMEProvider", "MetricInstanceProvider", "MetricForMEProvider",
           "get_providers"]

_ELEMENTS = ("HostSystem", "ComputerSystem", "LogicalDisk", "NetworkPort")

_ENABLED = CIM_MetricDefForME.MetricCollectionEnabled


def _elements(family: str) -> Iterable[CIMInstanceName]:
    for host in hosts_of(family):
        for key in element_keys(host):
            path = element_path(host, key)
            if path is not None:
                yield path


def _metric_of_definition(path: CIMInstanceName):
    mid = path.keybindings.get("Id")
    return METRIC_BY_ID.get(mid) if isinstance(mid, str) else None


class MetricDefForMEProvider(AssociationProvider):
    roles = (Role("Antecedent", _ELEMENTS), Role("Dependent", ["BaseMetricDefinition"]))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            hit = element_key_of_path(path, family)
            if hit is None or not element_exists(*hit):
                return
            for m in metrics_of(hit[1].partition(":")[0]):
                yield definition_path(family, m.id)
            return
        m = _metric_of_definition(path)
        if m is None or not hosts_of(family):
            return
        for host in hosts_of(family):
            for key in element_keys(host, m.kind):
                p = element_path(host, key)
                if p is not None:
                    yield p

    def sources(self, env, family):
        return _elements(family)

    def _instance(self, model: Any, refs: dict[str, CIMInstanceName], keys_only: bool) -> Any:
        inst = super()._instance(model, refs, keys_only)
        if not keys_only and "metriccollectionenabled" in model.wanted:
            family = self.family(model.classname)
            hit = element_key_of_path(refs["Antecedent"], family)
            m = _metric_of_definition(refs["Dependent"])
            if hit is not None and m is not None:
                on = sampled().is_enabled(m.id, f"{hit[0].label}|{hit[1]}")
                inst["MetricCollectionEnabled"] = _ENABLED.Enabled if on else _ENABLED.Disabled
        return inst


class MetricInstanceProvider(AssociationProvider):
    roles = (Role("Antecedent", ["BaseMetricDefinition"]), Role("Dependent", ["BaseMetricValue"]))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            m = _metric_of_definition(path)
            if m is None:
                return
            for host in hosts_of(family):
                for v in values_of(host, metric=m.id):
                    yield v.path()
            return
        hit = parse_value_id(family, path.keybindings.get("InstanceID"))
        if hit is not None and value_at(*hit) is not None:
            yield definition_path(family, hit[2])

    def sources(self, env, family):
        if hosts_of(family):
            for m in METRICS:
                yield definition_path(family, m.id)


class MetricForMEProvider(AssociationProvider):
    roles = (Role("Antecedent", _ELEMENTS), Role("Dependent", ["BaseMetricValue"]))

    def related(self, env, side, path, family, keys_only) -> Iterable[Any]:
        if side == 0:
            hit = element_key_of_path(path, family)
            if hit is None or not element_exists(*hit):
                return
            for v in values_of(hit[0], hit[1], history=True):
                yield v.path()
            return
        hit2 = parse_value_id(family, path.keybindings.get("InstanceID"))
        if hit2 is not None and value_at(*hit2) is not None:
            p = element_path(hit2[0], hit2[1])
            if p is not None:
                yield p

    def sources(self, env, family):
        return _elements(family)


def get_providers(env) -> dict[str, Any]:
    return {**providers_for(MetricDefForMEProvider(), "MetricDefForME"),
            **providers_for(MetricInstanceProvider(), "MetricInstance"),
            **providers_for(MetricForMEProvider(), "MetricForME")}
