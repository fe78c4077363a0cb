"""The statistics collector: one ``getAllDomainStats`` per host per interval, with history.

Every ``interval`` seconds (default 15) a daemon thread asks each configured
host for

* ``getAllDomainStats`` (groups state, cpu, balloon, vcpu, interface, block:
  one RPC for every domain of the host, never a call per domain), and
* the host's CPU (``getCPUStats``) and memory (``getMemoryStats``, where the
  driver has it; else only the total from ``getInfo``),

turns counters into rates from the deltas of two samples
(:mod:`.statsdefs` defines the metrics) and keeps a bounded history per
metric and element (``history`` seconds, default one hour): one ring of
sample times per host and, per element and metric, a ring of values
(``array('d')``, NaN = no value).  A metric's ring is only made once the
metric has a value, so domains of drivers that report nothing but their
state (libvirt's test driver) cost no history.  A host that cannot be
reached leaves a gap - NaN for every element of the round - and its rates
start afresh after it is back: no number is invented.

Where the providers run, one collector per process: :func:`collector`
creates and starts it on first use (the embedded server, or the provider
process of sfcb / OpenPegasus: its history lives as long as that process, see
docs/monitoring.md), :func:`stop` ends it.  Readers (CIM providers, the
Prometheus exposition, the live page) take copies through :meth:`Collector.latest`,
:meth:`Collector.history`, :meth:`Collector.hosts` and :meth:`Collector.domains`;
:meth:`Collector.add_listener` reports each finished round (alerts).
Plain data, no CIM.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from array import array
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

import libvirt

from ..config import load_config
from . import connection
from .statsdefs import (METRIC_BY_ID, STATS_GROUPS, host_cpu_util, metrics_of, parse_record)

__all__ = ["Collector", "DomainInfo", "HostInfo", "Settings", "configure", "collector",
           "current", "stop", "element_key", "DEFAULT_INTERVAL", "DEFAULT_HISTORY",
           "MIN_INTERVAL"]

LOG = logging.getLogger(__name__)

DEFAULT_INTERVAL = 15.0
DEFAULT_HISTORY = 3600.0
MIN_INTERVAL = 1.0
NAN = math.nan

_DOMAIN_METRICS = tuple(m.id for m in metrics_of("domain"))
_DISK_METRICS = tuple(m.id for m in metrics_of("disk"))
_NIC_METRICS = tuple(m.id for m in metrics_of("nic"))
_HOST_METRICS = tuple(m.id for m in metrics_of("host"))


def element_key(kind: str, domain: Optional[str] = None, device: Optional[str] = None) -> str:
    """The key of an element within its host: 'host', 'domain:vm1', 'disk:vm1/vda',
    'nic:vm1/vnet0'."""
    if kind == "host":
        return "host"
    if kind == "domain":
        return f"domain:{domain}"
    return f"{kind}:{domain}/{device}"


@dataclass(frozen=True)
class Settings:
    """How the collector runs: sample interval and history length (seconds)."""

    interval: float = DEFAULT_INTERVAL
    history: float = DEFAULT_HISTORY

    @property
    def capacity(self) -> int:
        """Samples kept per metric."""
        return max(2, int(math.ceil(self.history / self.interval)) + 1)


@dataclass
class DomainInfo:
    """What the last sample said about a domain (besides its metrics)."""

    name: str
    uuid: str
    state: int
    reason: int
    vcpus: Optional[int]
    disks: list[str]
    nics: list[str]
    #: when the collector saw the domain start (None: it was running when first seen)
    started: Optional[float] = None
    #: the libvirt domain object of the sample (for the few callers that ask the guest)
    dom: Any = field(default=None, repr=False, compare=False)


@dataclass
class HostInfo:
    """A host as the collector sees it."""

    label: str
    uri: str
    family: str
    up: bool
    error: Optional[str]
    last_sample: Optional[float]      # time of the last successful sample
    domains: int


@dataclass
class _HostState:
    host: Any
    capacity: int
    times: array = field(init=False)
    head: int = -1                    # index of the newest sample
    count: int = 0
    up: bool = False
    error: Optional[str] = "not sampled yet"
    last_sample: Optional[float] = None
    series: dict[str, dict[str, array]] = field(default_factory=dict)
    latest: dict[str, dict[str, float]] = field(default_factory=dict)
    last_seen: dict[str, int] = field(default_factory=dict)      # element -> sample number
    domains: dict[str, DomainInfo] = field(default_factory=dict)
    prev_t: Optional[float] = None
    prev_raw: dict[str, Any] = field(default_factory=dict)        # element -> raw counters
    prev_cpu: Optional[dict] = None
    no_cpu_stats: bool = False
    no_mem_stats: bool = False
    generation: int = -1

    def __post_init__(self) -> None:
        self.times = array("d", [NAN]) * self.capacity


class Collector:
    """Samples every host of the connection manager periodically (see the module doc)."""

    def __init__(self, settings: Settings = Settings(),
                 hosts: Optional[Callable[[], Iterable[Any]]] = None):
        self.settings = settings
        self._hosts_of = hosts or (lambda: connection.manager().hosts)
        self._lock = threading.RLock()
        self._states: dict[str, _HostState] = {}
        self._disabled: set[tuple[str, Optional[str]]] = set()   # (metric, element or None)
        self._listeners: list[Callable[["Collector", str], None]] = []
        self._busy: set[str] = set()          # hosts whose round runs in a thread now
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.rounds = 0
        self._round_done = threading.Condition(self._lock)
        #: seconds of thread CPU time the last round took (the benchmark reads it)
        self.last_round_cpu = 0.0

    # -- life cycle --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def start(self) -> "Collector":
        """Start the sampling thread (the first round runs at once)."""
        with self._lock:
            if self.running:
                return self
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="kvmp-stats", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop sampling; a round under way finishes first (at most `timeout` waited)."""
        self._stop.set()
        self._wake.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
        self._thread = None

    def sample_now(self) -> None:
        """Ask the thread for a round now (control methods, tests)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.collect_once()
            except Exception:  # pylint: disable=broad-except
                LOG.exception("statistics round failed")
            wait = max(0.0, self.settings.interval - (time.monotonic() - started))
            self._wake.wait(wait)
            self._wake.clear()

    # -- control ---------------------------------------------------------------------------

    def set_settings(self, settings: Settings) -> None:
        """New interval / history length; the history is kept if its ring size does not
        change, else started afresh (its sample spacing would no longer hold)."""
        with self._lock:
            old, self.settings = self.settings, settings
            if old.capacity != settings.capacity:
                self._states.clear()
        self._wake.set()

    def set_enabled(self, enabled: bool, metric: Optional[str] = None,
                    element: Optional[str] = None) -> None:
        """Enable or disable collection of `metric` (None: every metric) for `element`
        (an :func:`element_key` qualified as 'host label|key'; None: every element)."""
        metrics = [metric] if metric is not None else list(METRIC_BY_ID)
        with self._lock:
            for m in metrics:
                if m not in METRIC_BY_ID:
                    raise KeyError(m)
                if enabled:
                    self._disabled.discard((m, element))
                    if element is None:
                        self._disabled = {d for d in self._disabled if d[0] != m}
                else:
                    self._disabled.add((m, element))

    def is_enabled(self, metric: str, element: Optional[str] = None) -> bool:
        """True if `metric` is collected for `element` (None: for the class as a whole)."""
        d = self._disabled
        return not d or ((metric, None) not in d and (metric, element) not in d)

    def add_listener(self, fn: Callable[["Collector", str], None]) -> None:
        """Call ``fn(collector, host label)`` after each round of a host (in the
        collector's thread: return quickly)."""
        with self._lock:
            self._listeners.append(fn)

    def remove_listener(self, fn: Callable[["Collector", str], None]) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    # -- sampling ---------------------------------------------------------------------------

    def collect_once(self, now: Optional[float] = None) -> None:
        """One round: every host, in-process hosts here and hosts behind a daemon each
        in a thread of its own, so that a hung host delays no other one."""
        cpu0 = time.thread_time()
        hosts = list(self._hosts_of())
        threads = []
        for host in hosts:
            if host.in_process:
                self._collect_host(host, now)
            elif host.label in self._busy:
                # Its last round has not finished (a hung host, until hang_timeout fails
                # the call): no second thread for it; that round commits when it ends.
                LOG.debug("statistics of host %s: the last round is still running",
                          host.label)
            else:
                self._busy.add(host.label)
                t = threading.Thread(target=self._collect_busy, args=(host, now),
                                     name=f"kvmp-stats-{host.label}", daemon=True)
                t.start()
                threads.append(t)
        deadline = time.monotonic() + max(self.settings.interval, 1.0)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self.last_round_cpu = time.thread_time() - cpu0
        with self._lock:
            self.rounds += 1
            self._round_done.notify_all()

    def wait_round(self, timeout: float, after: int = 0) -> bool:
        """Wait until more than `after` rounds are done (at most `timeout` s); True if so."""
        with self._lock:
            return self._round_done.wait_for(lambda: self.rounds > after, timeout)

    def _collect_busy(self, host: Any, now: Optional[float]) -> None:
        try:
            self._collect_host(host, now)
        finally:
            self._busy.discard(host.label)

    def _state(self, host: Any) -> _HostState:
        with self._lock:
            st = self._states.get(host.label)
            if st is None or st.host is not host:
                st = _HostState(host, self.settings.capacity)
                self._states[host.label] = st
            return st

    def _collect_host(self, host: Any, now: Optional[float]) -> None:
        st = self._state(host)
        try:
            sample = self._read_host(host, st)
        except Exception as exc:  # pylint: disable=broad-except
            # Lost, hung or failing: a gap, never numbers of our own.
            reason = getattr(exc, "status_description", None) or str(exc)
            LOG.debug("statistics of host %s: %s", host.label, reason)
            with self._lock:
                self._commit_gap(st, now or time.time(), reason)
            self._notify(host.label)
            return
        with self._lock:
            self._commit(st, now or time.time(), *sample)
        self._notify(host.label)

    def _notify(self, label: str) -> None:
        for fn in list(self._listeners):
            try:
                fn(self, label)
            except Exception:  # pylint: disable=broad-except
                LOG.exception("statistics listener failed")

    def _read_host(self, host: Any, st: _HostState) -> tuple:
        conn = host.conn()
        if st.generation != host.generation:
            st.no_cpu_stats = st.no_mem_stats = False
            st.generation = host.generation
        records = conn.getAllDomainStats(STATS_GROUPS, 0)
        cpu = mem = None
        if not st.no_cpu_stats:
            try:
                cpu = conn.getCPUStats(-1, 0)
            except libvirt.libvirtError as exc:
                if not host.unsupported(exc):
                    raise
                st.no_cpu_stats = True
        if not st.no_mem_stats:
            try:
                mem = conn.getMemoryStats(-1, 0)
            except libvirt.libvirtError as exc:
                if not host.unsupported(exc):
                    raise
                st.no_mem_stats = True
        info = host.info("nodeinfo", lambda c: c.getInfo())
        # name() and UUIDString() are read from the object: no RPC per domain.
        return [(dom, dom.name(), dom.UUIDString(), rec) for dom, rec in records], cpu, mem, info

    # -- committing a round (under the lock) ---------------------------------------------------

    def _advance(self, st: _HostState, now: float) -> int:
        st.head = (st.head + 1) % st.capacity
        st.count = min(st.count + 1, st.capacity)
        st.times[st.head] = now
        return st.head

    def _commit_gap(self, st: _HostState, now: float, reason: str) -> None:
        head = self._advance(st, now)
        for metrics in st.series.values():
            for arr in metrics.values():
                arr[head] = NAN
        st.latest = {}
        st.up, st.error = False, reason
        st.prev_t, st.prev_raw, st.prev_cpu = None, {}, None
        self._forget(st)

    def _commit(self, st: _HostState, now: float, records: list, cpu: Optional[dict],
                mem: Optional[dict], info: Any) -> None:
        dt = (now - st.prev_t) if st.prev_t is not None else None
        if dt is not None and dt <= 0:
            dt = None
        values: dict[str, dict[str, float]] = {}
        raw: dict[str, Any] = {}
        domains: dict[str, DomainInfo] = {}
        prev_raw = st.prev_raw
        for dom, name, uuid, rec in records:
            p = parse_record(rec)
            key = "domain:" + name
            vals = dict(p.points)
            running = p.state in (1, 2)          # running, blocked
            if p.cpu_ns is not None:
                raw[key] = p.cpu_ns
                before = prev_raw.get(key)
                if dt is not None and before is not None and p.vcpus and p.cpu_ns >= before:
                    vals["cpu_util"] = min(100.0, (p.cpu_ns - before) / (dt * 1e9 * p.vcpus)
                                           * 100.0)
            elif p.state in (4, 5):               # shut down: uses no processor time
                vals["cpu_util"] = 0.0
            values[key] = vals
            for kind, devices in (("disk", p.disks), ("nic", p.nics)):
                for dev, counters in devices.items():
                    dkey = f"{kind}:{name}/{dev}"
                    raw[dkey] = counters
                    before = prev_raw.get(dkey)
                    dvals: dict[str, float] = {}
                    if dt is not None and before is not None:
                        for m, v in counters.items():
                            b = before.get(m)
                            if b is not None and v >= b:
                                dvals[m] = (v - b) / dt
                    values[dkey] = dvals
            old = st.domains.get(name)
            started = old.started if old is not None else None
            if old is not None and running and old.state not in (1, 2):
                started = now
            elif not running:
                started = None
            domains[name] = DomainInfo(name, uuid, p.state, p.reason, p.vcpus,
                                       list(p.disks), list(p.nics), started, dom)
        hvals: dict[str, float] = {}
        util = host_cpu_util(st.prev_cpu, cpu) if dt is not None else None
        if util is not None:
            hvals["host_cpu_util"] = util
        if mem and "total" in mem:
            free = sum(mem.get(k, 0) for k in ("free", "buffers", "cached"))
            hvals["host_mem_total"] = mem["total"] * 1024.0
            hvals["host_mem_free"] = free * 1024.0
            hvals["host_mem_used"] = (mem["total"] - free) * 1024.0
        elif info:
            hvals["host_mem_total"] = info[1] * 1024.0 * 1024.0
        values["host"] = hvals
        if self._disabled:
            label = st.host.label
            for ekey, vals in values.items():
                for m in [m for m in vals if not self.is_enabled(m, f"{label}|{ekey}")]:
                    del vals[m]
        self._store(st, now, values)
        st.domains = domains
        st.prev_t, st.prev_raw, st.prev_cpu = now, raw, cpu
        st.up, st.error, st.last_sample = True, None, now

    def _store(self, st: _HostState, now: float, values: dict[str, dict[str, float]]) -> None:
        head = self._advance(st, now)
        series = st.series
        cap = st.capacity
        n = self.rounds
        for ekey, metrics in series.items():
            vals = values.get(ekey)
            if vals is None:
                for arr in metrics.values():
                    arr[head] = NAN
                continue
            for m, arr in metrics.items():
                arr[head] = vals.get(m, NAN)
        for ekey, vals in values.items():
            st.last_seen[ekey] = n
            if not vals:
                continue
            have = series.get(ekey)
            if have is None:
                have = series[ekey] = {}
            for m, v in vals.items():
                if m not in have:
                    arr = array("d", [NAN]) * cap
                    arr[head] = v
                    have[m] = arr
        st.latest = values
        self._forget(st)

    def _forget(self, st: _HostState) -> None:
        """Drop elements whose whole history is a gap (gone for a full ring)."""
        n = self.rounds
        gone = [k for k, seen in st.last_seen.items() if n - seen >= st.capacity]
        for k in gone:
            del st.last_seen[k]
            st.series.pop(k, None)

    # -- reading ---------------------------------------------------------------------------

    def hosts(self) -> list[HostInfo]:
        """Every sampled host, in configuration order."""
        out = []
        with self._lock:
            for host in self._hosts_of():
                st = self._states.get(host.label)
                out.append(HostInfo(host.label, host.uri, host.family,
                                    bool(st and st.up), st.error if st else "not sampled yet",
                                    st.last_sample if st else None,
                                    len(st.domains) if st else 0))
        return out

    def domains(self, label: str) -> list[DomainInfo]:
        """The domains of host `label` as last sampled (empty while it is away)."""
        with self._lock:
            st = self._states.get(label)
            return list(st.domains.values()) if st is not None and st.up else []

    def domain(self, label: str, name: str) -> Optional[DomainInfo]:
        with self._lock:
            st = self._states.get(label)
            return st.domains.get(name) if st is not None and st.up else None

    def latest(self, label: str, key: str) -> dict[str, float]:
        """The metrics of element `key` of host `label` in the last round (a copy; empty
        when the host was away or the element has no values)."""
        with self._lock:
            st = self._states.get(label)
            if st is None:
                return {}
            return dict(st.latest.get(key, {}))

    def latest_all(self, label: str) -> tuple[Optional[float], dict[str, dict[str, float]]]:
        """(time of the last round, {element: {metric: value}}) of host `label`: the
        round's own dictionaries, which the collector never changes afterwards."""
        with self._lock:
            st = self._states.get(label)
            if st is None or st.head < 0:
                return None, {}
            return st.times[st.head], st.latest

    def sample_times(self, label: str) -> list[float]:
        """The times of the host's samples in the history, oldest first."""
        with self._lock:
            st = self._states.get(label)
            if st is None:
                return []
            return [st.times[i] for i in self._order(st)]

    @staticmethod
    def _order(st: _HostState) -> list[int]:
        start = (st.head - st.count + 1) % st.capacity
        return [(start + i) % st.capacity for i in range(st.count)]

    def history(self, label: str, key: str, metric: str,
                since: Optional[float] = None) -> list[tuple[float, Optional[float]]]:
        """[(time, value or None for a gap)] of one metric, oldest first (empty when the
        element never had a value of it)."""
        with self._lock:
            st = self._states.get(label)
            if st is None:
                return []
            arr = st.series.get(key, {}).get(metric)
            if arr is None:
                return []
            out = []
            for i in self._order(st):
                t = st.times[i]
                if since is not None and t <= since:
                    continue
                v = arr[i]
                out.append((t, None if v != v else v))
            return out

    def elements(self, label: str) -> list[str]:
        """Keys of the elements of host `label` that have history."""
        with self._lock:
            st = self._states.get(label)
            return list(st.series) if st is not None else []


# -- the process-wide collector --------------------------------------------------------------

_settings: Optional[Settings] = None
_collector: Optional[Collector] = None
_lock = threading.Lock()


def configure(settings: Settings) -> None:
    """Set the interval and history length (the embedded server, from ``[monitoring]``);
    a running collector takes them over."""
    global _settings
    with _lock:
        _settings = settings
        col = _collector
    if col is not None:
        col.set_settings(settings)


def _configured_settings() -> Settings:
    if _settings is not None:
        return _settings
    # The installed file, as connection.manager() reads it (sfcb, Pegasus).
    mon = load_config().monitoring
    return Settings(mon.interval, mon.history)


def collector() -> Collector:
    """The process's collector, created and started on first use."""
    global _collector
    col = _collector
    if col is not None:
        return col
    with _lock:
        if _collector is None:
            _collector = Collector(_configured_settings()).start()
        return _collector


def current() -> Optional[Collector]:
    """The process's collector if it runs (None: nobody asked for statistics yet)."""
    return _collector


def stop() -> None:
    """Stop the process's collector (server stop, provider unload); its history goes."""
    global _collector
    with _lock:
        col, _collector = _collector, None
    if col is not None:
        col.stop()
