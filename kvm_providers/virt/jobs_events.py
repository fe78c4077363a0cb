"""libvirt's job-completed events, handed to the jobs that wait for them (virt/jobs.py).

libvirt tells the end of a domain's job and its final statistics by an event
(``VIR_DOMAIN_EVENT_ID_JOB_COMPLETED``) where the driver gives one (QEMU: saves,
external snapshots with memory, dumps, migrations).  The event comes when
libvirt's job ends - for a managed save well before the blocking call returns,
which still stops the guest - and it carries the figures polling can miss: a
job shorter than the poll interval, the final counters after the last poll.

A job expects an event for its domain (:meth:`Completions.expect`) *before* it
starts libvirt's job; the one process-wide subscription
(:func:`completions`, registered on every host of the connection manager on
first use) hands each event to the waiters of its host and domain.  Nothing
waits without a deadline: a driver that sends no event (the test driver) leaves
the waiter empty and the job falls back to its polled figures.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Optional

from .connection import manager
from .events import JobCompletedEvent, JobCompletedEvents, subscribe_job_completed

__all__ = ["Waiter", "Completions", "completions", "FIGURES"]

LOG = logging.getLogger(__name__)

#: The statistics kept as a job's figures (libvirt's names; others are left out).
FIGURES = ("operation", "time_elapsed", "time_remaining", "downtime", "data_total",
           "data_processed", "data_remaining", "memory_total", "memory_processed",
           "memory_remaining", "memory_bps", "disk_total", "disk_processed", "disk_remaining",
           "disk_bps")


class Waiter:
    """One job's wait for the job-completed event of its domain."""

    def __init__(self, host: str, uuid: str):
        self.host = host
        self.uuid = uuid
        self._event = threading.Event()
        self.stats: Optional[dict[str, Any]] = None
        self.received: Optional[float] = None      # time.time() of the event

    @property
    def done(self) -> bool:
        """True once the event came."""
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Wait (bounded) for the event; True if it came."""
        return self._event.wait(max(timeout, 0.0))

    def _deliver(self, stats: dict[str, Any]) -> None:
        if self._event.is_set():        # the first event is the job's end
            return
        self.stats = {k: stats[k] for k in FIGURES if k in stats}
        self.received = time.time()
        self._event.set()


class Completions:
    """The waiters of the process and the subscription that feeds them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[tuple[str, str], list[Waiter]] = {}
        self._sub: Optional[JobCompletedEvents] = None

    def _ensure(self) -> None:
        with self._lock:
            if self._sub is not None:
                return
            try:
                # registered in this thread for the hosts that are up: before the caller
                # starts libvirt's job, so that its event cannot be missed
                self._sub = subscribe_job_completed(manager(), self._on_completed)
            except Exception as exc:  # pylint: disable=broad-except
                LOG.info("jobs: no job-completed events (%s)", exc)

    def expect(self, host: str, uuid: str) -> Waiter:
        """A waiter for the next job-completed event of domain `uuid` on `host` (a
        label); :meth:`release` it when done."""
        self._ensure()
        waiter = Waiter(host, uuid)
        with self._lock:
            self._waiters.setdefault((host, uuid), []).append(waiter)
        return waiter

    def release(self, waiter: Waiter) -> None:
        """Stop waiting (the event, if it comes later, goes to nobody)."""
        with self._lock:
            found = self._waiters.get((waiter.host, waiter.uuid), [])
            if waiter in found:
                found.remove(waiter)
            if not found:
                self._waiters.pop((waiter.host, waiter.uuid), None)

    def _on_completed(self, ev: JobCompletedEvent) -> None:
        # libvirt's event loop thread: hand over, nothing more
        with self._lock:
            found = list(self._waiters.get((ev.host.label, ev.uuid), []))
        LOG.debug("libvirt host %s: job of %s completed (%d waiting)", ev.host.label,
                  ev.name, len(found))
        for waiter in found:
            waiter._deliver(ev.stats)

    def close(self) -> None:
        """End the subscription (tests; a new one starts on the next expect)."""
        with self._lock:
            sub, self._sub = self._sub, None
        if sub is not None:
            sub.close()


_completions = Completions()


def completions() -> Completions:
    """The process-wide job-completed event dispatcher."""
    return _completions
