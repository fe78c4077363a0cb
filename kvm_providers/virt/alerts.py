"""Alerts: threshold rules over the collector's metrics, and libvirt's abnormal conditions.

An :class:`AlertEngine` turns

* the configured threshold rules (``[[monitoring.alert]]``: a metric above or
  below a value for at least ``for`` seconds), evaluated after every round of
  the statistics collector (:mod:`.stats`) for every element that has the metric;
* hosts the collector cannot reach ('host-unreachable');
* libvirt's own events (:func:`.events.subscribe_problems`, no polling): a
  guest paused on an I/O error ('io-error'), a watchdog that fired
  ('watchdog'), a crashed guest ('crash')

into :class:`Alert` values: raised once when the condition starts, and a
clearing alert (``raised`` False) when it ends - the metric back on the good
side of the threshold, the host answering again, the guest resumed, started
again or undefined.  A watchdog firing has no end of its own: its alert is
cleared when the guest next starts or resumes (or is undefined).  While a host
is away its elements' rules keep their state (no numbers: no change).
Plain data, no CIM: the CIM side (providers/alert_indications.py) turns alerts
into {P}_AlertIndication instances.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from ..config import AlertRule, MonitoringConfig, load_config
from .statsdefs import METRIC_BY_ID, PAUSED, PAUSED_IOERROR

__all__ = ["Alert", "AlertEngine", "configure", "configured", "check_rules"]

LOG = logging.getLogger(__name__)

#: Severity of the alerts that no rule configures.
EVENT_SEVERITY = {"io-error": "major", "watchdog": "major", "crash": "critical",
                  "host-unreachable": "critical"}


@dataclass(frozen=True)
class Alert:
    """An alert raised (``raised``) or cleared, about one element of a host.

    ``element``: the collector's key ('host', 'domain:vm1', 'disk:vm1/vda' ...);
    ``name``: the rule's name or the condition ('io-error', 'watchdog', 'crash',
    'host-unreachable'); ``kind``: 'threshold' or the condition; ``value``:
    the metric's value (thresholds); ``detail``: libvirt's reason or action.
    """

    host: str
    element: str
    name: str
    kind: str
    raised: bool
    severity: str
    message: str
    time: float
    value: Optional[float] = None
    metric: Optional[str] = None
    detail: str = ""


def check_rules(rules: Sequence[AlertRule]) -> None:
    """Raise ValueError naming a rule whose metric does not exist."""
    for r in rules:
        if r.metric not in METRIC_BY_ID:
            raise ValueError(f"[[monitoring.alert]] {r.name}: unknown metric {r.metric!r} "
                             f"(known: {', '.join(METRIC_BY_ID)})")


class AlertEngine:
    """Keeps which conditions hold and reports their starts and ends to `emit`."""

    def __init__(self, config: MonitoringConfig, emit: Callable[[Alert], None],
                 clock: Callable[[], float] = time.time):
        check_rules(config.alerts)
        self.rules = list(config.alerts)
        self.events = set(config.events)
        self.emit = emit
        self.clock = clock
        self._lock = threading.Lock()
        self._since: dict[tuple[str, str, str], float] = {}     # condition true since
        self._active: dict[tuple[str, str, str], Alert] = {}    # (host, element, name)

    # -- what is active --------------------------------------------------------------------

    def active(self) -> list[Alert]:
        """The alerts raised and not cleared."""
        with self._lock:
            return list(self._active.values())

    def _raise(self, key: tuple[str, str, str], alert: Alert) -> None:
        with self._lock:
            if key in self._active:
                return
            self._active[key] = alert
        self.emit(alert)

    def _clear(self, key: tuple[str, str, str], why: str, value: Optional[float] = None
               ) -> None:
        with self._lock:
            old = self._active.pop(key, None)
        if old is not None:
            self.emit(Alert(old.host, old.element, old.name, old.kind, False, "information",
                            f"cleared: {old.message} ({why})", self.clock(), value,
                            old.metric, old.detail))

    # -- after each round of the collector ------------------------------------------------

    def on_round(self, collector: Any, label: str) -> None:
        """Evaluate the rules and the polled conditions for host `label`."""
        up = any(h.label == label and h.up for h in collector.hosts())
        now = self.clock()
        if "host-unreachable" in self.events:
            key = (label, "host", "host-unreachable")
            if not up:
                err = next((h.error for h in collector.hosts() if h.label == label), "")
                self._raise(key, Alert(label, "host", "host-unreachable", "host-unreachable",
                                       True, EVENT_SEVERITY["host-unreachable"],
                                       f"libvirt host {label} is not reachable: {err}", now))
            else:
                self._clear(key, "the host answers again")
        if not up:
            return                     # no numbers: nothing changes
        _t, latest = collector.latest_all(label)
        for rule in self.rules:
            self._rule(rule, label, latest, now)
        if "io-error" in self.events:
            paused = {f"domain:{d.name}" for d in collector.domains(label)
                      if d.state == PAUSED and d.reason == PAUSED_IOERROR}
            for element in paused:
                self._raise((label, element, "io-error"), self._io_alert(label, element, "",
                                                                        now))
            for key in [k for k in self.active_keys() if k[0] == label and k[2] == "io-error"
                        and k[1] not in paused]:
                self._clear(key, "the guest is no longer paused on an I/O error")

    def active_keys(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return list(self._active)

    def _rule(self, rule: AlertRule, label: str, latest: dict, now: float) -> None:
        kind = METRIC_BY_ID[rule.metric].kind
        seen: set[str] = set()
        for element, vals in latest.items():
            v = vals.get(rule.metric)
            if v is None:
                continue
            seen.add(element)
            key = (label, element, rule.name)
            bad = v > rule.above if rule.above is not None else v < rule.below  # type: ignore
            if not bad:
                self._since.pop(key, None)
                self._clear(key, f"{rule.metric} = {v:g}", v)
                continue
            since = self._since.setdefault(key, now)
            if now - since >= rule.duration:
                side = f"above {rule.above:g}" if rule.above is not None \
                    else f"below {rule.below:g}"
                self._raise(key, Alert(label, element, rule.name, "threshold", True,
                                       rule.severity,
                                       f"{rule.name}: {rule.metric} of {element} on {label} is "
                                       f"{v:g}, {side} for {now - since:.0f} s", now, v,
                                       rule.metric))
        # elements that no longer have the metric (gone, stopped, metric disabled)
        for key in [k for k in self.active_keys() if k[0] == label and k[2] == rule.name
                    and k[1] not in seen and k[1].startswith(kind)]:
            self._since.pop(key, None)
            self._clear(key, f"{key[1]} has no {rule.metric} any more")
        for key in [k for k in list(self._since) if k[0] == label and k[2] == rule.name
                    and k[1] not in seen]:
            self._since.pop(key, None)

    # -- libvirt's events (event loop thread: quick) ------------------------------------------

    def _io_alert(self, label: str, element: str, reason: str, now: float) -> Alert:
        return Alert(label, element, "io-error", "io-error", True, EVENT_SEVERITY["io-error"],
                     f"{element.partition(':')[2]} on {label}: I/O error"
                     + (f" ({reason})" if reason else ""), now, detail=reason)

    def on_problem(self, ev: Any) -> None:
        """A :class:`~.events.ProblemEvent`."""
        label, element, now = ev.host.label, f"domain:{ev.name}", self.clock()
        if ev.kind in ("io-error", "watchdog", "crash"):
            if ev.kind not in self.events:
                return
            if ev.kind == "io-error":
                alert = self._io_alert(label, element, ev.detail, now)
            else:
                what = "watchdog fired" if ev.kind == "watchdog" else "crashed"
                alert = Alert(label, element, ev.kind, ev.kind, True, EVENT_SEVERITY[ev.kind],
                              f"{ev.name} on {label}: {what} ({ev.detail})", now,
                              detail=ev.detail)
            self._raise((label, element, ev.kind), alert)
            return
        # started / resumed / stopped / undefined: what they end
        ends = {"started": ("crash", "watchdog", "io-error"),
                "resumed": ("watchdog", "io-error"),
                "stopped": ("io-error",),
                "undefined": ("crash", "watchdog", "io-error")}.get(ev.kind, ())
        for name in ends:
            self._clear((label, element, name), f"the guest {ev.kind}")


# -- the process-wide configuration ------------------------------------------------------------

_config: Optional[MonitoringConfig] = None


def configure(config: MonitoringConfig) -> None:
    """Install the ``[monitoring]`` section (the embedded server, from its file)."""
    global _config
    check_rules(config.alerts)
    _config = config


def configured() -> MonitoringConfig:
    """The ``[monitoring]`` section: the server's, else the installed file's (sfcb, Pegasus)."""
    return _config if _config is not None else load_config().monitoring
