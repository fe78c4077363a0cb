"""The state file of the jobs and what follows a job after a restart (virt/jobs.py).

``<state_dir>/jobs.json`` (mode 0600): ``{"format": "kvm_providers-jobs",
"version": 1, "jobs": [...]}``, written atomically (temporary file, fsync,
rename) at each state change; a file that cannot be read is moved to
``jobs.json.bad-<time>``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Optional

import libvirt

from .connection import manager
from .domain import lookup_now
from .jobs_events import FIGURES, completions

__all__ = ["STATE_FILE", "write_jobs", "read_jobs", "percent_from_stats",
           "follow_after_restart"]

LOG = logging.getLogger(__name__)

STATE_FILE = "jobs.json"
_FORMAT = "kvm_providers-jobs"
#: Seconds between two polls of libvirt's job statistics after a restart.
_POLL = 0.5


def write_jobs(state_dir: str, jobs: list[dict[str, Any]]) -> None:
    """Write the jobs (dicts) to the state file, atomically; errors are logged."""
    path = os.path.join(state_dir, STATE_FILE)
    tmp = f"{path}.tmp"
    try:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"format": _FORMAT, "version": 1, "jobs": jobs}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        LOG.error("jobs: cannot write %s: %s", path, exc)


def read_jobs(state_dir: str) -> Optional[list[dict[str, Any]]]:
    """The jobs (dicts) of the state file; None without one (or an unreadable one, which
    is moved aside)."""
    path = os.path.join(state_dir, STATE_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, dict) or data.get("format") != _FORMAT or \
                not isinstance(data.get("jobs", []), list):
            raise ValueError("not a jobs file")
        return [d for d in data.get("jobs", []) if isinstance(d, dict)]
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        bad = f"{path}.bad-{int(time.time())}"
        LOG.error("jobs: cannot read %s (%s); moved to %s", path, exc, bad)
        try:
            os.replace(path, bad)
        except OSError:
            pass
        return None


def _left(stats: dict[str, Any], part: str) -> Optional[tuple[int, int]]:
    """(total, done) of `part` ("data", "memory", "disk"): done is total less what remains
    where libvirt says what remains - QEMU does not send pages that are all zero, so its
    ``*_processed`` ends below ``*_total`` (a managed save of a 256 MiB guest: 80 MiB
    processed of 256, none remaining) - else what was processed."""
    total = stats.get(f"{part}_total") or 0
    if total <= 0:
        return None
    remaining = stats.get(f"{part}_remaining")
    if remaining is not None:
        return total, max(total - remaining, 0)
    return total, stats.get(f"{part}_processed") or 0


def percent_from_stats(stats: dict[str, Any], completed: bool = False
                       ) -> tuple[Optional[int], Optional[str]]:
    """(percent, phase) from libvirt's job statistics; (None, None) if they measure nothing.

    ``data_*`` is libvirt's overall figure (memory and disks), else memory and
    disk together; the phase is the part still moving data.  `completed`: the
    statistics of libvirt's job-completed event (they carry no ``type``).
    """
    jtype = stats.get("type")
    if not completed and jtype not in (getattr(libvirt, "VIR_DOMAIN_JOB_BOUNDED", 1),
                                       getattr(libvirt, "VIR_DOMAIN_JOB_UNBOUNDED", 2)):
        return None, None
    figures = _left(stats, "data")
    if figures is None:
        parts = [f for f in (_left(stats, "memory"), _left(stats, "disk")) if f is not None]
        if not parts:
            return None, None
        figures = (sum(t for t, _ in parts), sum(d for _, d in parts))
    total, done = figures
    phase = None
    for part in ("memory", "disk"):
        left = _left(stats, part)
        if left is not None and left[0] > left[1]:
            phase = part
            break
    return min(int(done * 100 // total), 100), phase


def follow_after_restart(ctx: Any, job: Any, limit: float = 24 * 3600.0) -> None:
    """If libvirt still runs a job on the job's domain, report its progress to `ctx` (a
    JobContext) until it ends (bounded by `limit` seconds): its end and final figures
    from libvirt's job-completed event where it comes, else from the statistics polled
    (the job is gone, or the domain stopped - a managed save ends so)."""
    if not job.domain:
        return
    waiter = None
    try:
        mgr = manager()
        host = mgr.host(job.host)
        if host is None:
            return
        mgr.wait_connected(30.0)
        ref = lookup_now(host, job.domain)
        if ref is None:
            return
        waiter = completions().expect(job.host, ref.dom.UUIDString())
        polled: dict[str, Any] = {}
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                stats = ref.dom.jobStats(0)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:
                    raise
                stats = {}        # "domain is not running": its job ended with it
            if stats.get("type", 0) == getattr(libvirt, "VIR_DOMAIN_JOB_NONE", 0):
                break
            # the event says libvirt's work is done, not that the call is: a managed
            # save still stops the guest; its outcome is judged once libvirt's job is gone
            if not waiter.done:
                polled = stats
                pct, phase = percent_from_stats(stats)
                if pct is not None:
                    ctx.progress(min(pct, 99), phase)
            if waiter.done:
                time.sleep(_POLL)
            else:
                waiter.wait(_POLL)
        # the event may follow the end seen by polling by a moment (libvirt's event loop)
        if waiter.stats is not None or (polled and waiter.wait(1.0)):
            ctx.set_figures(waiter.stats or {}, "event")
        elif polled:
            ctx.set_figures({k: polled[k] for k in FIGURES if k in polled}, "poll")
        LOG.info("job %s: libvirt's job on %s ended (%s)", job.id, job.domain,
                 "job-completed event" if waiter.stats is not None else "polled")
    except Exception as exc:  # pylint: disable=broad-except
        LOG.info("job %s: cannot follow libvirt's job after the restart: %s", job.id, exc)
    finally:
        if waiter is not None:
            completions().release(waiter)
