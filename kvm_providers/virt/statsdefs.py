"""What the collector measures (:mod:`.stats`): metric definitions and record parsing.

One libvirt ``getAllDomainStats`` record per domain (a flat dict such as
``{"cpu.time": ..., "block.0.name": "vda", "block.0.rd.bytes": ...}``) is
turned into raw values per element: the domain itself, each disk (by target
name, ``vda``) and each network interface (by libvirt's interface name,
``vnet0``).  Counters become rates from the deltas of two samples; the
definitions below say which metrics are rates and in what units, so that the
CIM, Prometheus and page views describe them alike.  Plain data, no CIM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import libvirt

__all__ = ["MetricDef", "METRICS", "METRIC_BY_ID", "KINDS", "metrics_of", "STATS_GROUPS",
           "parse_record", "host_cpu_util", "RUNNING", "PAUSED", "PAUSED_IOERROR",
           "STATE_NAMES"]

#: The stats groups of one getAllDomainStats call (issue 15: state, cpu, balloon,
#: vcpu, interface, block).
STATS_GROUPS: int = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
                     | libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_VCPU
                     | libvirt.VIR_DOMAIN_STATS_INTERFACE | libvirt.VIR_DOMAIN_STATS_BLOCK)

RUNNING: int = libvirt.VIR_DOMAIN_RUNNING
PAUSED: int = libvirt.VIR_DOMAIN_PAUSED
PAUSED_IOERROR: int = getattr(libvirt, "VIR_DOMAIN_PAUSED_IOERROR", 5)
STATE_NAMES = {0: "nostate", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown",
               5: "shutoff", 6: "crashed", 7: "pmsuspended"}

#: Element kinds: the host, a domain, one of its disks, one of its NICs.
KINDS = ("host", "domain", "disk", "nic")


@dataclass(frozen=True)
class MetricDef:
    """One metric: its id (stable, used in keys and URLs), the element kind it is
    measured for, a name and units for people, and how it behaves.

    ``rate``: the value is a per-second rate (or percentage) from the deltas of
    two samples (DSP1053 TimeScope Interval); else a point value (Point).
    ``counter``: the raw source is a counter (ChangeType Counter for the raw
    total); the stored value is then always the rate, a gauge.
    """

    id: str
    kind: str
    name: str
    units: str                # for people ("Percent", "Bytes per Second")
    prom: str                 # Prometheus metric name (base units)
    programmatic_units: str   # DSP0004 programmatic units ("percent", "byte / second")
    rate: bool
    help: str


METRICS: tuple[MetricDef, ...] = (
    MetricDef("cpu_util", "domain", "Processor utilization", "Percent",
              "kvmp_domain_cpu_utilization_percent", "percent", True,
              "Processor time used in the interval, in percent of the domain's vCPUs"),
    MetricDef("cpu_time", "domain", "Processor time", "Seconds",
              "kvmp_domain_cpu_seconds", "second", False,
              "Processor time the domain used since it started"),
    MetricDef("vcpus", "domain", "Number of processors", "Count",
              "kvmp_domain_vcpus", "count", False, "vCPUs the domain runs with"),
    MetricDef("mem_assigned", "domain", "Memory assigned", "Bytes",
              "kvmp_domain_memory_assigned_bytes", "byte", False,
              "Memory the domain has now (balloon size)"),
    MetricDef("mem_used", "domain", "Memory used", "Bytes",
              "kvmp_domain_memory_used_bytes", "byte", False,
              "Memory the guest uses (available minus unused, from the balloon driver)"),
    MetricDef("mem_available", "domain", "Memory available", "Bytes",
              "kvmp_domain_memory_available_bytes", "byte", False,
              "Memory the guest could use without swapping (from the balloon driver)"),
    MetricDef("mem_rss", "domain", "Memory resident on the host", "Bytes",
              "kvmp_domain_memory_resident_bytes", "byte", False,
              "Host memory the domain's process occupies"),
    MetricDef("disk_rd_bytes", "disk", "Disk read rate", "Bytes per Second",
              "kvmp_disk_read_bytes_per_second", "byte / second", True, "Bytes read per second"),
    MetricDef("disk_wr_bytes", "disk", "Disk write rate", "Bytes per Second",
              "kvmp_disk_write_bytes_per_second", "byte / second", True,
              "Bytes written per second"),
    MetricDef("disk_rd_ops", "disk", "Disk read operations", "Operations per Second",
              "kvmp_disk_read_ops_per_second", "count / second", True,
              "Read requests per second"),
    MetricDef("disk_wr_ops", "disk", "Disk write operations", "Operations per Second",
              "kvmp_disk_write_ops_per_second", "count / second", True,
              "Write requests per second"),
    MetricDef("net_rx_bytes", "nic", "Network receive rate", "Bytes per Second",
              "kvmp_nic_receive_bytes_per_second", "byte / second", True,
              "Bytes received per second"),
    MetricDef("net_tx_bytes", "nic", "Network transmit rate", "Bytes per Second",
              "kvmp_nic_transmit_bytes_per_second", "byte / second", True,
              "Bytes transmitted per second"),
    MetricDef("net_rx_pkts", "nic", "Packets received", "Packets per Second",
              "kvmp_nic_receive_packets_per_second", "count / second", True,
              "Packets received per second"),
    MetricDef("net_tx_pkts", "nic", "Packets transmitted", "Packets per Second",
              "kvmp_nic_transmit_packets_per_second", "count / second", True,
              "Packets transmitted per second"),
    MetricDef("net_rx_drop", "nic", "Received packets dropped", "Packets per Second",
              "kvmp_nic_receive_drops_per_second", "count / second", True,
              "Received packets dropped per second"),
    MetricDef("net_tx_drop", "nic", "Transmitted packets dropped", "Packets per Second",
              "kvmp_nic_transmit_drops_per_second", "count / second", True,
              "Transmitted packets dropped per second"),
    MetricDef("host_cpu_util", "host", "Host processor utilization", "Percent",
              "kvmp_host_cpu_utilization_percent", "percent", True,
              "Busy time of all host processors in the interval, in percent"),
    MetricDef("host_mem_total", "host", "Host memory", "Bytes",
              "kvmp_host_memory_total_bytes", "byte", False, "Memory of the host"),
    MetricDef("host_mem_free", "host", "Host memory free", "Bytes",
              "kvmp_host_memory_free_bytes", "byte", False,
              "Free host memory (with buffers and cache)"),
    MetricDef("host_mem_used", "host", "Host memory used", "Bytes",
              "kvmp_host_memory_used_bytes", "byte", False, "Host memory in use"),
)

METRIC_BY_ID = {m.id: m for m in METRICS}


def metrics_of(kind: str) -> tuple[MetricDef, ...]:
    """The metrics measured for elements of `kind`."""
    return tuple(m for m in METRICS if m.kind == kind)


# Raw counter sources of the rate metrics: record suffix per metric.
_DISK_COUNTERS = (("disk_rd_bytes", "rd.bytes"), ("disk_wr_bytes", "wr.bytes"),
                  ("disk_rd_ops", "rd.reqs"), ("disk_wr_ops", "wr.reqs"))
_NIC_COUNTERS = (("net_rx_bytes", "rx.bytes"), ("net_tx_bytes", "tx.bytes"),
                 ("net_rx_pkts", "rx.pkts"), ("net_tx_pkts", "tx.pkts"),
                 ("net_rx_drop", "rx.drop"), ("net_tx_drop", "tx.drop"))


@dataclass
class Parsed:
    """One domain's record: its state, point values and raw counters per element."""

    state: int
    reason: int
    vcpus: Optional[int]
    points: dict[str, float]                         # domain metric -> value
    cpu_ns: Optional[int]                            # cpu.time (counter)
    disks: dict[str, dict[str, int]]                 # target -> metric -> raw counter
    nics: dict[str, dict[str, int]]                  # ifname -> metric -> raw counter


def _counters(rec: dict, prefix: str, names: tuple) -> dict[str, int]:
    out: dict[str, int] = {}
    for metric, key in names:
        v = rec.get(prefix + key)
        if v is not None:
            out[metric] = v
    return out


def parse_record(rec: dict) -> Parsed:
    """Parse one getAllDomainStats record (keys missing from a driver stay absent)."""
    get = rec.get
    points: dict[str, float] = {}
    vcpus = get("vcpu.current")
    if vcpus is not None:
        points["vcpus"] = float(vcpus)
    cpu = get("cpu.time")
    if cpu is not None:
        points["cpu_time"] = cpu / 1e9
    cur = get("balloon.current")
    if cur is not None:
        points["mem_assigned"] = cur * 1024.0
    avail, unused = get("balloon.available"), get("balloon.unused")
    if avail is not None:
        points["mem_available"] = avail * 1024.0
        if unused is not None:
            points["mem_used"] = (avail - unused) * 1024.0
    rss = get("balloon.rss")
    if rss is not None:
        points["mem_rss"] = rss * 1024.0
    disks: dict[str, dict[str, int]] = {}
    for i in range(get("block.count", 0) or 0):
        name = get(f"block.{i}.name")
        # Without the BACKING flag only each disk's top image is listed (libvirt 9 gives
        # it a backingIndex too); with it, its chain follows under the same name.
        if name is None or name in disks:
            continue
        disks[name] = _counters(rec, f"block.{i}.", _DISK_COUNTERS)
    nics: dict[str, dict[str, int]] = {}
    for i in range(get("net.count", 0) or 0):
        name = get(f"net.{i}.name")
        if name is None:
            continue
        nics[name] = _counters(rec, f"net.{i}.", _NIC_COUNTERS)
    return Parsed(get("state.state", 0), get("state.reason", 0),
                  None if vcpus is None else int(vcpus), points, cpu, disks, nics)


def host_cpu_util(prev: Optional[dict], cur: Optional[dict]) -> Optional[float]:
    """Busy percentage of all host CPUs between two ``getCPUStats(-1)`` answers."""
    if not prev or not cur:
        return None
    try:
        busy = sum(cur[k] - prev[k] for k in cur if k not in ("idle", "iowait") and k in prev)
        total = busy + sum(cur[k] - prev[k] for k in ("idle", "iowait") if k in cur and k in prev)
    except (KeyError, TypeError):
        return None
    if total <= 0 or busy < 0:
        return None
    return min(100.0, 100.0 * busy / total)
