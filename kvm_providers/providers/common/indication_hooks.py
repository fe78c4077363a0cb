"""What the indication provider modules share (lifecycle, job, migration-job and alert
indications): the module hooks the CIM server calls (:class:`IndicationHooks`: the
count of active filters per indication class, so that the modules build only the
indications somebody receives, and one watcher started with the first subscription
and stopped with the last), the thread that turns the job manager's events into
indications (:class:`JobEventDeliverer`), and the embedded-instance property an
indication carries.
"""

from __future__ import annotations

import abc
import logging
import queue
import socket
import threading
from collections import Counter
from typing import Any, Callable, Optional

import pywbem
from pywbem import CIMError, CIMInstance

from kvm_providers.virt import jobs as vjobs

from .base import VIRT_NS

__all__ = ["ActiveFilters", "IndicationHooks", "JobEventDeliverer", "embedded_property",
           "instance_indication", "deliver_indication"]

LOG = logging.getLogger(__name__)


class ActiveFilters:
    """How many active filters want each indication class (class names case-insensitive)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: Counter = Counter()

    def activate(self, classname: str) -> None:
        """A filter for `classname` became active."""
        with self._lock:
            self._count[classname.lower()] += 1

    def deactivate(self, classname: str, last_activation: bool) -> None:
        """A filter for `classname` went away (`last_activation`: it was the last one)."""
        key = classname.lower()
        with self._lock:
            self._count[key] -= 1
            if self._count[key] <= 0 or last_activation:
                del self._count[key]

    def get(self, classname: str) -> int:
        """The number of active filters for `classname` (0: nobody wants it)."""
        return self._count.get(classname.lower(), 0)

    def clear(self) -> None:
        """No filter is active any more (indications disabled)."""
        with self._lock:
            self._count.clear()


def embedded_property(name: str, inst: CIMInstance) -> pywbem.CIMProperty:
    """Property `name` holding `inst` as an embedded instance (SourceInstance, ...)."""
    return pywbem.CIMProperty(name, inst, type="string", embedded_object="instance")


def instance_indication(cls: str, source: CIMInstance, previous: Optional[CIMInstance],
                        hostname: str, first: Optional[dict[str, Any]] = None
                        ) -> CIMInstance:
    """An indication of class `cls` about `source` with CIM_InstIndication's properties:
    `first` (properties set before them), SourceInstance, PreviousInstance where there
    is one, SourceInstanceModelPath (the source's path without host) where it has a
    path, and SourceInstanceHost `hostname` (the CIM server's)."""
    ind = CIMInstance(cls)
    for name, value in (first or {}).items():
        ind[name] = value
    ind["SourceInstance"] = embedded_property("SourceInstance", source)
    if previous is not None:
        ind["PreviousInstance"] = embedded_property("PreviousInstance", previous)
    if source.path is not None:
        path = source.path.copy()
        path.host = None
        ind["SourceInstanceModelPath"] = path.to_wbem_uri()
    ind["SourceInstanceHost"] = hostname
    return ind


def deliver_indication(handle: Any, ind: CIMInstance, what: str, about: Any) -> None:
    """Deliver `ind` in the virtualization namespace through the CIMOM `handle`; a
    failure is logged (`what`: whose indications, `about`: what it is of), not raised:
    one lost indication must not stop the delivering thread."""
    try:
        handle.DeliverIndication(VIRT_NS, ind)
    except CIMError as exc:
        LOG.error("%s: %s of %s not delivered: %s", what, ind.classname, about,
                  exc.status_description)


class IndicationHooks:
    """The hooks an indication provider module gives the CIM server (bound methods,
    assigned to the module's names ``get_providers``, ``authorize_filter``,
    ``activate_filter``, ``deactivate_filter``, ``enable_indications``,
    ``disable_indications``, ``shutdown``).

    `make(handle)` builds the module's watcher from the CIMOM handle when the first
    subscription appears; ``watcher.start()`` (or ``watcher.start(handle)`` with
    `start_with_handle`) runs outside the lock, ``watcher.stop()`` when the last one
    goes.  Every subscriber is authorized: what these modules report is visible to
    every client.  `started` / `stopped`: a line for the CIM server's log.
    """

    def __init__(self, make: Callable[[Any], Any], start_with_handle: bool = False,
                 started: Optional[str] = None, stopped: Optional[str] = None):
        self.active = ActiveFilters()
        self._make = make
        self._start_with_handle = start_with_handle
        self._started = started
        self._stopped = stopped
        self._lock = threading.Lock()
        self.watcher: Optional[Any] = None

    def get_providers(self, env: Any) -> dict:
        """No instance providers: the module's classes are indications."""
        return {}

    def authorize_filter(self, env: Any, filter: Any, namespace: str,  # noqa: A002
                         classname: str, owner: Any) -> bool:
        """Every subscriber may receive these indications."""
        return True

    def activate_filter(self, env: Any, filter: Any, namespace: str,  # noqa: A002
                        classname: str, first_activation: bool) -> None:
        """A filter for `classname` became active: its indications are wanted."""
        self.active.activate(classname)

    def deactivate_filter(self, env: Any, filter: Any, namespace: str,  # noqa: A002
                          classname: str, last_activation: bool) -> None:
        """A filter for `classname` went away."""
        self.active.deactivate(classname, last_activation)

    def enable_indications(self, env: Any) -> None:
        """The first subscription appeared: build and start the watcher."""
        with self._lock:
            if self.watcher is not None:
                return
            handle = env.get_cimom_handle()
            watcher = self.watcher = self._make(handle)
        if self._start_with_handle:
            watcher.start(handle)
        else:
            watcher.start()
        if self._started:
            env.get_logger().log_info(self._started)

    def disable_indications(self, env: Any) -> None:
        """The last subscription went away: stop the watcher."""
        with self._lock:
            watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.stop()
            if self._stopped:
                env.get_logger().log_info(self._stopped)

    def shutdown(self, env: Any) -> None:
        """The module is unloaded (server stop)."""
        self.disable_indications(env)
        with self._lock:
            self.active.clear()


class JobEventDeliverer(abc.ABC):
    """The job manager's events -> indications, in one thread attached to the CIMOM
    handle (as CMPI requires).  The job manager's listener only queues (bounded: an
    overflow is counted and logged once); the thread delivers each event with
    :meth:`deliver` until it is stopped."""

    #: For the log: whose indications these are.
    what = "job indications"

    def __init__(self, handle: Any, thread_name: str, queue_size: int = 10000):
        self.handle = handle
        self.events: queue.Queue = queue.Queue(queue_size)
        self.hostname = socket.gethostname()
        self.thread = threading.Thread(target=self._run, daemon=True, name=thread_name)
        self.dropped = 0

    def start(self) -> None:
        """Listen to the job manager and start delivering."""
        vjobs.jobs().add_listener(self.on_event)
        self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening; the thread ends after the events queued before."""
        vjobs.jobs().remove_listener(self.on_event)
        try:
            self.events.put_nowait(None)
        except queue.Full:
            pass
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def on_event(self, event: str, job: vjobs.Job, previous: Optional[vjobs.Job]) -> None:
        """The job manager's listener: queue the events :meth:`wanted` and return."""
        if not self.wanted(event, job):
            return
        try:
            self.events.put_nowait((event, job, previous))
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1:
                LOG.warning("%s: queue full, indications dropped", self.what)

    def _run(self) -> None:
        self.handle.AttachThread()
        try:
            while True:
                item = self.events.get()
                if item is None:
                    return
                try:
                    self.deliver(*item)
                except Exception:  # pylint: disable=broad-except
                    LOG.exception("%s: delivery failed", self.what)
        finally:
            self.handle.DetachThread()

    @abc.abstractmethod
    def wanted(self, event: str, job: vjobs.Job) -> bool:
        """Whether an event of `job` may make an indication somebody receives."""

    @abc.abstractmethod
    def deliver(self, event: str, job: vjobs.Job, previous: Optional[vjobs.Job]) -> None:
        """Build and deliver the indications of one event (in the delivering thread)."""
