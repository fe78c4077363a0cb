"""Base metrics (DSP1053): {P}_BaseMetricDefinition, {P}_BaseMetricValue, {P}_MetricService.

The values come from the statistics collector (:mod:`kvm_providers.virt.stats`,
started on first use where the providers run): each definition is one metric
of :mod:`kvm_providers.virt.statsdefs` (units in ``Units`` and
``ProgrammaticUnits``); each value is a string (``MetricValue``) with the
sample's ``TimeStamp`` and ``Duration`` (the sample interval).  The current
value of each element and metric is one instance (``Volatile`` TRUE: it takes
the next sample); the values of the history (``Volatile`` FALSE, InstanceID
ending in ``@<ms>``) are reached from their element through MetricForME and by
GetInstance, but not enumerated (1000 guests would give millions).

{P}_MetricService (one per host) shows and controls collection:
ShowMetrics, ShowMetricsByClass, ControlMetrics, ControlMetricsByClass
(enable/disable per element or per class), GetMetricValues, ControlSampleTimes
(the sample interval).  See docs/monitoring.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Iterator, Optional

import pywbem
from pywbem import CIMClassName, CIMDateTime, CIMError, CIMInstanceName

from kvm_providers.schema.valuemaps import CIM_BaseMetricDefinition, CIM_MetricService
from kvm_providers.virt import stats
from kvm_providers.virt.connection import Host
from kvm_providers.virt.statsdefs import METRIC_BY_ID, METRICS, MetricDef, metrics_of

from .common import ENABLED_AND_OK, PerHostProvider, VirtProvider, fill, providers_for
from .common.metric_paths import (MetricValue, datetime_of, definition_path, element_exists,
                                  element_key_of_path, element_keys, element_name, element_path,
                                  format_value, hosts_of, interval_of, kind_of_classname,
                                  parse_value_id, sampled, service_keys, value_at, values_of)

__all__ = ["MetricDefinitionProvider", "MetricValueProvider", "MetricServiceProvider",
           "get_providers"]

_D = CIM_BaseMetricDefinition
_SUCCESS = CIM_MetricService.ShowMetrics.ReturnValue.Success
_NOT_SUPPORTED = CIM_MetricService.ShowMetrics.ReturnValue.Not_Supported
_ENABLED = 2
_DISABLED = 3
_RESET = 4
#: Real64 for every metric but counts of things.
_DATATYPE = {"vcpus": _D.DataType.uint32}


def definition_values(m: MetricDef) -> dict[str, Any]:
    """The properties of a metric's definition."""
    return {
        "Name": m.name, "ElementName": m.name, "Description": m.help,
        "DataType": _DATATYPE.get(m.id, _D.DataType.real64),
        # percentages and per-element sizes do not add up across elements; rates do
        "Calculable": _D.Calculable.Summable if m.rate and m.units != "Percent"
        else _D.Calculable.Non_summable,
        "Units": m.units, "ProgrammaticUnits": m.programmatic_units,
        "IsContinuous": True,
        "ChangeType": _D.ChangeType.Counter if m.id == "cpu_time" else _D.ChangeType.Gauge,
        "TimeScope": _D.TimeScope.Interval if m.rate else _D.TimeScope.Point,
        "GatheringType": _D.GatheringType.Periodic,
    }


class MetricDefinitionProvider(VirtProvider):
    """{P}_BaseMetricDefinition: one per metric, for families with a host."""

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        if not hosts_of(self.family(model.classname)):
            return
        for m in METRICS:
            inst = model.copy()
            inst["Id"] = m.id
            if not keys_only:
                fill(inst, model, definition_values(m))
            yield inst

    def get_instance(self, env, model) -> Optional[Any]:
        m = METRIC_BY_ID.get(model["Id"]) if isinstance(model["Id"], str) else None
        if m is None or not hosts_of(self.family(model.classname)):
            return None
        fill(model, model, definition_values(m))
        return model


def _value_values(v: MetricValue) -> dict[str, Any]:
    interval = stats.collector().settings.interval
    return {
        "MetricDefinitionId": v.metric.id,
        "MeasuredElementName": lambda: element_name(v.host, v.key),
        "ElementName": v.metric.name,
        "TimeStamp": lambda: datetime_of(v.t),
        "Duration": lambda: interval_of(interval),
        "MetricValue": format_value(v.value),
        "Volatile": not v.history,
    }


class MetricValueProvider(VirtProvider):
    """{P}_BaseMetricValue: the current value of every element and metric (enumerated),
    and the values of the history (by GetInstance and MetricForME)."""

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        for host in hosts_of(self.family(model.classname)):
            for v in values_of(host):
                yield self.instance(model, v, keys_only)

    @staticmethod
    def instance(model: Any, v: MetricValue, keys_only: bool) -> Any:
        inst = model.copy()
        inst["InstanceID"] = v.path().keybindings["InstanceID"]
        if not keys_only:
            fill(inst, model, _value_values(v))
        return inst

    def get_instance(self, env, model) -> Optional[Any]:
        hit = parse_value_id(self.family(model.classname), model["InstanceID"])
        if hit is None:
            return None
        v = value_at(*hit)
        if v is None:
            return None
        fill(model, model, _value_values(v))
        return model


def _metric_of(family: str, path: Any, param: str) -> Optional[MetricDef]:
    if path is None:
        return None
    if not isinstance(path, CIMInstanceName) or \
            path.classname.lower() != f"{family}_BaseMetricDefinition".lower():
        raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                       f"{param}: not a reference to a {family}_BaseMetricDefinition")
    m = METRIC_BY_ID.get(path.keybindings.get("Id"))  # type: ignore[arg-type]
    if m is None:
        raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                       f"{param}: no metric definition {path.keybindings.get('Id')!r}")
    return m


def _element_of(family: str, path: Any, param: str) -> tuple[Host, str]:
    if not isinstance(path, CIMInstanceName):
        raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                       f"{param}: not a reference to a managed element")
    hit = element_key_of_path(path, family)
    if hit is None or not element_exists(*hit):
        raise CIMError(pywbem.CIM_ERR_NOT_FOUND, f"{param}: no element with metrics: {path}")
    return hit


def _class_kind(family: str, subject: Any) -> str:
    name = subject.classname if isinstance(subject, (CIMClassName, CIMInstanceName)) \
        else subject
    kind = kind_of_classname(name) if isinstance(name, str) else None
    if kind is None or not name.lower().startswith(family.lower() + "_"):
        raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                       f"Subject: {name!r} is not a {family} class with metrics "
                       "(HostSystem, ComputerSystem, LogicalDisk, NetworkPort)")
    return kind


def _state(on: bool) -> int:
    return _ENABLED if on else _DISABLED


class MetricServiceProvider(PerHostProvider):
    """{P}_MetricService: one per host; DSP1053's methods."""

    def _fill(self, inst: Any, model: Any, host: Host) -> None:
        fill(inst, model, {"ElementName": "Metric Service", **ENABLED_AND_OK, "Started": True})

    def host_keys(self, host: Host, classname: str) -> dict[str, Any]:
        return service_keys(host, classname)

    def _hosts_for(self, object_name: Any) -> list[Host]:
        host = self._service_host(object_name)
        return [host] if host is not None else self.hosts(object_name.classname)

    def cim_method_showmetrics(self, env, object_name, param_subject=None,
                               param_definition=None):
        """ShowMetrics(Subject, Definition) -> ManagedElements[], DefinitionList[],
        MetricNames[], MetricCollectionEnabled[]."""
        family = self.family(object_name.classname)
        col = sampled()
        metric = _metric_of(family, param_definition, "Definition")
        if param_subject is not None:
            host, key = _element_of(family, param_subject, "Subject")
            kind = key.partition(":")[0]
            defs = [m for m in metrics_of(kind) if metric is None or m is metric]
            return _SUCCESS, {
                "DefinitionList": [definition_path(family, m.id) for m in defs],
                "MetricNames": [m.name for m in defs],
                "MetricCollectionEnabled": [
                    _state(col.is_enabled(m.id, f"{host.label}|{key}")) for m in defs]}
        if metric is None:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           "give Subject, Definition or both")
        elements, enabled = [], []
        for host in self._hosts_for(object_name):
            for key in element_keys(host, metric.kind):
                path = element_path(host, key)
                if path is not None:
                    elements.append(path)
                    enabled.append(_state(col.is_enabled(metric.id, f"{host.label}|{key}")))
        return _SUCCESS, {"ManagedElements": elements, "MetricCollectionEnabled": enabled}

    def cim_method_showmetricsbyclass(self, env, object_name, param_subject=None,
                                      param_definition=None):
        """ShowMetricsByClass(Subject class, Definition) -> DefinitionList[], MetricNames[],
        MetricCollectionEnabled[]."""
        family = self.family(object_name.classname)
        kind = _class_kind(family, param_subject)
        metric = _metric_of(family, param_definition, "Definition")
        col = sampled()
        defs = [m for m in metrics_of(kind) if metric is None or m is metric]
        return _SUCCESS, {"DefinitionList": [definition_path(family, m.id) for m in defs],
                          "MetricNames": [m.name for m in defs],
                          "MetricCollectionEnabled": [_state(col.is_enabled(m.id))
                                                      for m in defs]}

    @staticmethod
    def _control(value: Any) -> Optional[bool]:
        if value in (_ENABLED, _DISABLED):
            return value == _ENABLED
        if value == _RESET:
            return None
        raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                       f"MetricCollectionEnabled: {value!r} is not 2 (Enable), 3 (Disable) "
                       "or 4 (Reset)")

    def cim_method_controlmetrics(self, env, object_name, param_subject=None,
                                  param_definition=None, param_metriccollectionenabled=None):
        """ControlMetrics(Subject, Definition, MetricCollectionEnabled): enable or disable
        one metric (or all of the element's) for one element."""
        family = self.family(object_name.classname)
        on = self._control(param_metriccollectionenabled)
        if on is None:
            return _NOT_SUPPORTED, {}
        host, key = _element_of(family, param_subject, "Subject")
        metric = _metric_of(family, param_definition, "Definition")
        kind = key.partition(":")[0]
        if metric is not None and metric.kind != kind:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           f"Definition: {metric.id} is not measured for {kind} elements")
        col = sampled()
        for m in [metric] if metric is not None else metrics_of(kind):
            col.set_enabled(on, m.id, f"{host.label}|{key}")
        return _SUCCESS, {}

    def cim_method_controlmetricsbyclass(self, env, object_name, param_subject=None,
                                         param_definition=None,
                                         param_metriccollectionenabled=None):
        """ControlMetricsByClass(Subject class, Definition, MetricCollectionEnabled)."""
        family = self.family(object_name.classname)
        on = self._control(param_metriccollectionenabled)
        if on is None:
            return _NOT_SUPPORTED, {}
        kind = _class_kind(family, param_subject)
        metric = _metric_of(family, param_definition, "Definition")
        col = sampled()
        for m in [metric] if metric is not None else metrics_of(kind):
            col.set_enabled(on, m.id)
        return _SUCCESS, {}

    def cim_method_getmetricvalues(self, env, object_name, param_definition=None,
                                   param_range=None, param_count=None):
        """GetMetricValues(Definition, Range, Count) -> Values[]: the current values of the
        metric, the Count lowest (Range 2) or highest (3); all when Count is NULL."""
        family = self.family(object_name.classname)
        metric = _metric_of(family, param_definition, "Definition")
        if metric is None:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, "Definition is required")
        if param_range not in (None, 2, 3):
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           f"Range: {param_range!r} is not 2 (Minimum) or 3 (Maximum)")
        vals = [v for host in self._hosts_for(object_name)
                for v in values_of(host, metric=metric.id)]
        vals.sort(key=lambda v: v.value, reverse=param_range == 3)
        if param_count is not None:
            vals = vals[:int(param_count)]
        return _SUCCESS, {"Values": [v.path() for v in vals]}

    def cim_method_controlsampletimes(self, env, object_name, param_startsampletime=None,
                                      param_preferredsampleinterval=None,
                                      param_restartgathering=None):
        """ControlSampleTimes(StartSampleTime, PreferredSampleInterval, RestartGathering):
        the collector's interval (at least 1 s; the history keeps its length in time)."""
        iv = param_preferredsampleinterval
        if not isinstance(iv, CIMDateTime) or not iv.is_interval:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           "PreferredSampleInterval: an interval datetime is required")
        seconds = iv.timedelta / timedelta(seconds=1)
        if seconds < stats.MIN_INTERVAL or seconds > 3600:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           f"PreferredSampleInterval: {seconds:g} s is not between "
                           f"{stats.MIN_INTERVAL:g} s and 1 hour")
        col = stats.collector()
        col.set_settings(stats.Settings(seconds, max(col.settings.history, seconds)))
        stats.configure(col.settings)
        if param_restartgathering:
            col.sample_now()
        return _SUCCESS, {}


def get_providers(env) -> dict[str, Any]:
    return {**providers_for(MetricDefinitionProvider(), "BaseMetricDefinition"),
            **providers_for(MetricValueProvider(), "BaseMetricValue"),
            **providers_for(MetricServiceProvider(), "MetricService")}


def shutdown(env) -> None:
    """The providers are unloaded (CIM server stop, or its unload policy): the collector
    stops and its history is gone (docs/monitoring.md)."""
    stats.stop()
