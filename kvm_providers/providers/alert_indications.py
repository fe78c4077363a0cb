"""{P}_AlertIndication: alerts of threshold rules and of libvirt's abnormal conditions.

While a subscription for the class exists (the server enables indications for
this module), an :class:`~kvm_providers.virt.alerts.AlertEngine` watches

* every round of the statistics collector (started if need be): the
  ``[[monitoring.alert]]`` threshold rules of the configuration, hosts that
  cannot be reached, guests paused on an I/O error;
* libvirt's I/O error, watchdog and lifecycle events (through the libvirt
  layer, :func:`kvm_providers.virt.events.subscribe_problems`: no polling),

and each alert raised or cleared becomes one indication, delivered through the
server's indication service by one worker thread (attached to the CIMOM handle,
as CMPI requires):

* AlertType 3 (Quality of Service) and ProbableCause 52 (Threshold Crossed) for
  rules; 2 (Communications) / 5 (Connection Establishment Error) for a host that
  cannot be reached; 4 (Processing Error) with 57 (Underlying Resource
  Unavailable, 50 for 'enospc'), 111 (Timeout) or 48 (Software Program
  Abnormally Terminated) for I/O errors, watchdogs and crashes;
* PerceivedSeverity from the rule (information 2 ... fatal 7);
* AlertingManagedElement: the element's path (AlertingElementFormat 2), the
  host system, computer system, logical disk or network port;
* the clearing indication: ``Raised`` FALSE, PerceivedSeverity 2, ProbableCause
  59 (Previous Alert Cleared) and CorrelatedIndications naming the raised one.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from typing import Any, Optional

from pywbem import CIMError, CIMInstance, Uint16

from kvm_providers.provider import request_scope
from kvm_providers.schema.valuemaps import CIM_AlertIndication
from kvm_providers.virt import alerts, events, manager, stats
from kvm_providers.virt.alerts import Alert
from kvm_providers.virt.errors import VirtError

from .common.base import VIRT_NS
from .common.indication_hooks import IndicationHooks
from .common.metric_paths import datetime_of, element_path, format_value
from .common.paths import host_system_name

__all__ = ["get_providers", "enable_indications", "disable_indications", "activate_filter",
           "deactivate_filter", "authorize_filter", "shutdown", "indication_of"]

LOG = logging.getLogger(__name__)

_SEVERITY = {"information": 2, "degraded": 3, "minor": 4, "major": 5, "critical": 6,
             "fatal": 7}
_QOS, _COMMUNICATIONS, _PROCESSING = 3, 2, 4
_CAUSE = {"threshold": 52, "host-unreachable": 5, "watchdog": 111, "crash": 48,
          "io-error": 57}
_ENOSPC = 50
_CLEARED = 59
QUEUE_SIZE = 10000
_ids = itertools.count(1)


def indication_of(alert: Alert, raised_id: Optional[str] = None) -> Optional[CIMInstance]:
    """The {P}_AlertIndication of an alert (None if its host is no longer configured)."""
    host = manager().host(alert.host)
    if host is None:
        return None
    ind = CIMInstance(f"{host.family}_AlertIndication")
    ind["IndicationIdentifier"] = f"kvmp-alert-{int(time.time())}-{next(_ids)}"
    ind["IndicationTime"] = datetime_of(time.time())
    ind["EventTime"] = datetime_of(alert.time)
    ind["AlertName"] = alert.name
    ind["Raised"] = alert.raised
    if alert.value is not None:
        ind["MetricValue"] = format_value(alert.value)
    atype = _QOS if alert.kind == "threshold" else \
        _COMMUNICATIONS if alert.kind == "host-unreachable" else _PROCESSING
    ind["AlertType"] = Uint16(atype)
    if alert.raised:
        cause = _ENOSPC if alert.kind == "io-error" and alert.detail == "enospc" \
            else _CAUSE[alert.kind]
        severity = _SEVERITY.get(alert.severity, 5)
    else:
        cause, severity = _CLEARED, _SEVERITY["information"]
        if raised_id is not None:
            ind["CorrelatedIndications"] = [raised_id]
    ind["ProbableCause"] = Uint16(cause)
    ind["PerceivedSeverity"] = Uint16(severity)
    ind["ProbableCauseDescription"] = alert.message
    ind["Description"] = alert.message
    ind["Message"] = alert.message
    ind["ProviderName"] = "kvm_providers"
    ind["OwningEntity"] = "kvm_providers"
    ind["SystemCreationClassName"] = f"{host.family}_HostSystem"
    # The alert goes out even where its keys cannot be made: a host never reached has
    # no name to give (HostUnavailable), an element may be gone (NotFound).
    try:
        ind["SystemName"] = host_system_name(host)
    except (CIMError, VirtError) as exc:
        LOG.info("alert %s of host %s: no SystemName: %s", alert.name, host.label, exc)
    path = None
    try:
        path = element_path(host, alert.element)
    except (CIMError, VirtError) as exc:
        LOG.info("alert %s of host %s: no element path for %s: %s", alert.name, host.label,
                 alert.element, exc)
    if path is not None:
        ind["AlertingManagedElement"] = path.to_wbem_uri()
        ind["AlertingElementFormat"] = Uint16(
            CIM_AlertIndication.AlertingElementFormat.CIMObjectPath)
    return ind


class _Watcher:
    """The engine, its libvirt subscription and the delivering thread."""

    def __init__(self, handle: Any):
        self.handle = handle
        self.jobs: queue.Queue = queue.Queue(QUEUE_SIZE)
        self.engine = alerts.AlertEngine(alerts.configured(), self._queue)
        self.raised_ids: dict[tuple[str, str, str], str] = {}
        self.subscription: Optional[events.ProblemEvents] = None
        self.collector: Optional[stats.Collector] = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="alert-indications")
        self.stopping = False

    def start(self) -> None:
        self.thread.start()
        self.subscription = events.subscribe_problems(manager(), self.engine.on_problem)
        self.collector = stats.collector()
        self.collector.add_listener(self.engine.on_round)

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping = True
        if self.collector is not None:
            self.collector.remove_listener(self.engine.on_round)
        if self.subscription is not None:
            self.subscription.close()
        try:
            self.jobs.put_nowait(None)
        except queue.Full:
            pass
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def _queue(self, alert: Alert) -> None:
        try:
            self.jobs.put_nowait(alert)
        except queue.Full:
            LOG.warning("alert indications: queue full, alert dropped: %s", alert.message)

    def _run(self) -> None:
        self.handle.AttachThread()
        try:
            while True:
                alert = self.jobs.get()
                if alert is None or self.stopping:
                    return
                try:
                    self._deliver(alert)
                except Exception:  # pylint: disable=broad-except
                    LOG.exception("alert indications: delivery failed")
        finally:
            self.handle.DetachThread()

    def _deliver(self, alert: Alert) -> None:
        key = (alert.host, alert.element, alert.name)
        raised_id = None if alert.raised else self.raised_ids.pop(key, None)
        with request_scope():
            ind = indication_of(alert, raised_id)
        if ind is None:
            return
        if alert.raised:
            self.raised_ids[key] = ind["IndicationIdentifier"]
        LOG.info("alert %s: %s", "raised" if alert.raised else "cleared", alert.message)
        if not _active.get(ind.classname.lower()):
            return
        try:
            self.handle.DeliverIndication(VIRT_NS, ind)
        except CIMError as exc:
            LOG.error("alert indications: %s not delivered: %s", ind.classname,
                      exc.status_description)


# -- the module hooks (called by the CIM server) ---------------------------------------------

_hooks = IndicationHooks(lambda handle: _Watcher(handle.PrepareAttachThread()),
                         started="alert indications: watching metrics and libvirt events")
_active = _hooks.active       # indication class -> active filters
get_providers = _hooks.get_providers
authorize_filter = _hooks.authorize_filter
activate_filter = _hooks.activate_filter
deactivate_filter = _hooks.deactivate_filter
enable_indications = _hooks.enable_indications
disable_indications = _hooks.disable_indications
shutdown = _hooks.shutdown
