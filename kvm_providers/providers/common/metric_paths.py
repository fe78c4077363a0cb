"""Base metrics (DSP1053) paths and values, shared by the metric provider modules.

The collector (:mod:`kvm_providers.virt.stats`) names an element of a host by
a key ('host', 'domain:vm1', 'disk:vm1/vda', 'nic:vm1/vnet0'); here those keys
become the paths of the CIM elements they measure ({P}_HostSystem,
{P}_ComputerSystem, {P}_LogicalDisk, {P}_NetworkPort: a NIC's DeviceID is its
MAC, found in the domain's XML by its interface name), and back.

Keys of the metric classes:

* ``{P}_BaseMetricDefinition.Id``: the metric's id ('cpu_util', ...);
* ``{P}_BaseMetricValue.InstanceID``: ``<host label>|<element key>|<metric>`` for
  the current value (Volatile: the same instance takes each new sample), and
  ``...|<metric>@<sample time in ms>`` for a value of the history;
* ``{P}_MetricService``: one per host, keyed like the management service.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Optional

from pywbem import CIMDateTime, CIMInstanceName

from kvm_providers.virt import keys, manager, stats
from kvm_providers.virt.connection import Host
from kvm_providers.model.kinds import KIND_BY_NAME
from kvm_providers.virt.statsdefs import METRIC_BY_ID, MetricDef, metrics_of

from .base import VIRT_NS, get_domain_doc
from .paths import (cs_path, device_of_path, device_path, host_of_path, host_path,
                    host_system_name)

__all__ = ["definition_path", "value_path", "value_id", "parse_value_id", "service_keys",
           "service_path", "element_path", "element_key_of_path", "element_name", "format_value",
           "datetime_of", "interval_of", "ELEMENT_BASES", "kind_of_classname", "values_of",
           "MetricValue", "METRIC_SERVICE_NAME", "hosts_of", "value_at", "sampled",
           "definitions_for", "element_keys", "element_exists", "element_kind"]

METRIC_SERVICE_NAME = "Metric Service"
#: The element classes (without prefix) per collector kind.
ELEMENT_BASES = {"host": "HostSystem", "domain": "ComputerSystem", "disk": "LogicalDisk",
                 "nic": "NetworkPort"}
_KIND_BY_BASE = {v.lower(): k for k, v in ELEMENT_BASES.items()}


def hosts_of(family: str) -> list[Host]:
    return manager().for_family(family)


def kind_of_classname(classname: str) -> Optional[str]:
    """The collector kind of an element class ('KVM_LogicalDisk' -> 'disk'), or None."""
    if not isinstance(classname, str) or "_" not in classname:
        return None
    return _KIND_BY_BASE.get(classname.split("_", 1)[1].lower())


def definition_path(family: str, metric: str) -> CIMInstanceName:
    cls = f"{family}_BaseMetricDefinition"
    return CIMInstanceName(cls, {"Id": metric}, namespace=VIRT_NS)


def value_id(host: Host, key: str, metric: str, t_ms: Optional[int] = None) -> str:
    base = f"{host.label}|{key}|{metric}"
    return base if t_ms is None else f"{base}@{t_ms}"


def parse_value_id(family: str, iid: Any) -> Optional[tuple[Host, str, str, Optional[int]]]:
    """(host, element key, metric, sample time in ms or None) of a value's InstanceID."""
    if not isinstance(iid, str) or iid.count("|") < 2:
        return None
    label, rest = iid.split("|", 1)
    key, metric = rest.rsplit("|", 1)
    t_ms: Optional[int] = None
    if "@" in metric:
        metric, _, t = metric.partition("@")
        if not t.isdigit():
            return None
        t_ms = int(t)
    host = manager().host(label)
    if host is None or host.family != family or metric not in METRIC_BY_ID:
        return None
    return host, key, metric, t_ms


def value_path(family: str, host: Host, key: str, metric: str,
               t_ms: Optional[int] = None) -> CIMInstanceName:
    return CIMInstanceName(f"{family}_BaseMetricValue",
                           {"InstanceID": value_id(host, key, metric, t_ms)}, namespace=VIRT_NS)


def service_keys(host: Host, classname: str) -> dict[str, str]:
    prefix = classname.split("_", 1)[0]
    return {"CreationClassName": classname, "Name": METRIC_SERVICE_NAME,
            "SystemCreationClassName": f"{prefix}_HostSystem",
            "SystemName": host_system_name(host)}


def service_path(host: Host) -> CIMInstanceName:
    cls = f"{host.family}_MetricService"
    return CIMInstanceName(cls, service_keys(host, cls), namespace=VIRT_NS)


def _split(key: str) -> tuple[str, str, Optional[str]]:
    """'disk:vm1/vda' -> ('disk', 'vm1', 'vda'); 'domain:vm1' -> ('domain', 'vm1', None)."""
    kind, _, rest = key.partition(":")
    if kind in ("disk", "nic"):
        dom, _, dev = rest.rpartition("/")
        return kind, dom, dev
    return kind, rest, None


def _nic_mac(host: Host, domain: str, ifname: str) -> Optional[str]:
    doc = get_domain_doc(host, domain)
    if doc is None:
        return None
    for iface in doc.root.iterfind("devices/interface"):
        tgt, mac = iface.find("target"), iface.find("mac")
        if tgt is not None and mac is not None and tgt.get("dev") == ifname:
            return mac.get("address")
    return None


def _nic_ifname(host: Host, domain: str, mac: str) -> Optional[str]:
    doc = get_domain_doc(host, domain)
    if doc is None:
        return None
    for iface in doc.root.iterfind("devices/interface"):
        tgt, m = iface.find("target"), iface.find("mac")
        if tgt is not None and m is not None and (m.get("address") or "").lower() == mac.lower():
            return tgt.get("dev")
    return None


def element_path(host: Host, key: str) -> Optional[CIMInstanceName]:
    """The path of the CIM element the collector's `key` measures (None: a NIC whose
    MAC is not known, e.g. the domain went away)."""
    kind, dom, dev = _split(key)
    if kind == "host":
        return host_path(host)
    if kind == "domain":
        return cs_path(host, dom)
    if kind == "disk" and dev is not None:
        return device_path(host, dom, KIND_BY_NAME["disk"], dev)
    if kind == "nic" and dev is not None:
        mac = _nic_mac(host, dom, dev)
        return None if mac is None else device_path(host, dom, KIND_BY_NAME["net"], mac)
    return None


def element_key_of_path(path: CIMInstanceName, family: str) -> Optional[tuple[Host, str]]:
    """(host, collector key) of an element path, or None if it names no element with
    metrics."""
    kind = kind_of_classname(path.classname)
    if kind == "host":
        host = host_of_path(path, family)
        return None if host is None else (host, "host")
    if kind == "domain":
        name = path.keybindings.get("Name")
        hit = keys.parse_cs_name(family, name) if isinstance(name, str) else None
        if hit is None or str(path.keybindings.get("CreationClassName", "")).lower() \
                != path.classname.lower():
            return None
        return hit[0], f"domain:{hit[1]}"
    if kind in ("disk", "nic"):
        hit = device_of_path(path, family)
        if hit is None or hit[4] != "device":
            return None
        host, dom, _kind, devid, _ = hit
        if kind == "disk":
            return host, f"disk:{dom}/{devid}"
        ifname = _nic_ifname(host, dom, devid)
        return None if ifname is None else (host, f"nic:{dom}/{ifname}")
    return None


def element_name(host: Host, key: str) -> str:
    """MeasuredElementName: the host's system name, the domain's name, 'vm1/vda'."""
    kind, dom, dev = _split(key)
    if kind == "host":
        return host_system_name(host)
    return keys.cs_name(host, dom) if dev is None else f"{keys.cs_name(host, dom)}/{dev}"


def format_value(v: float) -> str:
    """A metric value as DSP1053's string: integers without a fraction, else 6 digits."""
    if v == int(v) and abs(v) < 1e18:
        return str(int(v))
    return f"{v:.6g}" if abs(v) >= 1 else f"{v:.6f}".rstrip("0")


def datetime_of(t: float) -> CIMDateTime:
    return CIMDateTime(datetime.fromtimestamp(t, timezone.utc))


def interval_of(seconds: float) -> CIMDateTime:
    return CIMDateTime(timedelta(seconds=seconds))


class MetricValue:
    """One value: current (t_ms None in its id) or of the history."""

    __slots__ = ("host", "key", "metric", "t", "value", "history")

    def __init__(self, host: Host, key: str, metric: MetricDef, t: float, value: float,
                 history: bool):
        self.host, self.key, self.metric = host, key, metric
        self.t, self.value, self.history = t, value, history

    def path(self) -> CIMInstanceName:
        return value_path(self.host.family, self.host, self.key, self.metric.id,
                          int(round(self.t * 1000)) if self.history else None)


def values_of(host: Host, key: Optional[str] = None, metric: Optional[str] = None,
              history: bool = False) -> Iterator[MetricValue]:
    """The current values of `host` (of element `key` and `metric` if given; every
    element and metric if None), and with `history` every value of the history too."""
    col = sampled()
    t, latest = col.latest_all(host.label)
    items = [(key, latest.get(key, {}))] if key is not None else list(latest.items())
    for ekey, vals in items:
        for mid, v in vals.items():
            if metric is not None and mid != metric:
                continue
            m = METRIC_BY_ID[mid]
            if t is not None:
                yield MetricValue(host, ekey, m, t, v, False)
            if history:
                for ht, hv in col.history(host.label, ekey, mid):
                    if hv is not None:
                        yield MetricValue(host, ekey, m, ht, hv, True)


def value_at(host: Host, key: str, metric: str, t_ms: Optional[int]) -> Optional[MetricValue]:
    """The value a value InstanceID names, if it (still) exists."""
    col = sampled()
    m = METRIC_BY_ID[metric]
    if t_ms is None:
        t, latest = col.latest_all(host.label)
        v = latest.get(key, {}).get(metric)
        return None if v is None or t is None else MetricValue(host, key, m, t, v, False)
    for ht, hv in col.history(host.label, key, metric):
        if int(round(ht * 1000)) == t_ms:
            return None if hv is None or math.isnan(hv) else MetricValue(host, key, m, ht, hv,
                                                                          True)
    return None


def definitions_for(kind: str) -> tuple[MetricDef, ...]:
    return metrics_of(kind)


def sampled(timeout: float = 10.0) -> stats.Collector:
    """The process's collector, started if need be, once its first round is done (a
    request that starts it sees values at once, not an empty answer)."""
    col = stats.collector()
    col.wait_round(timeout)
    return col


def element_keys(host: Host, kind: Optional[str] = None) -> Iterator[str]:
    """The collector keys of the host's elements (of `kind` if given) as last sampled:
    the host, its domains, their disks and NICs."""
    col = sampled()
    if kind in (None, "host"):
        yield "host"
    if kind == "host":
        return
    for d in col.domains(host.label):
        if kind in (None, "domain"):
            yield f"domain:{d.name}"
        if kind in (None, "disk"):
            for dev in d.disks:
                yield f"disk:{d.name}/{dev}"
        if kind in (None, "nic"):
            for dev in d.nics:
                yield f"nic:{d.name}/{dev}"


def element_exists(host: Host, key: str) -> bool:
    """True if the collector's last sample of `host` has element `key`."""
    kind, dom, dev = _split(key)
    if kind == "host":
        return True
    info = sampled().domain(host.label, dom)
    if info is None:
        return False
    if kind == "domain":
        return True
    return dev in (info.disks if kind == "disk" else info.nics if kind == "nic" else ())


def element_kind(key: str) -> str:
    return _split(key)[0]
