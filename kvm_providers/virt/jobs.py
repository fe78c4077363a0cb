"""Long operations as jobs: what runs, its progress, cancellation, its outcome (no CIM).

A method that starts long work (a snapshot with memory, a shutdown that waits
for the guest, a volume allocation ...) hands it to the process-wide
:class:`JobManager` (:func:`jobs`) and answers at once; the provider layer
(``providers/concrete_job.py``) shows every job as a ``{P}_ConcreteJob``.

    job = jobs().submit("CreateSnapshot", host=ref.host, domain=ref.name,
                        description=f"snapshot {name!r} of {ref.name!r}",
                        owner=OWNER_SNAPSHOT, work=run, cancellable=True)

``work(ctx)`` runs in the job's own thread and returns a dict of results
(JSON-able: names, not libvirt objects) or raises; :class:`JobFailed` carries
the kind of failure (``not_supported``, ``invalid_parameter`` ...), any other
exception fails the job with its message.  Inside `work`:

* ``ctx.progress(percent, phase)`` reports progress the work has measured;
* ``with ctx.follow(dom):`` around a blocking libvirt call polls libvirt's
  job statistics of the domain (``virDomainGetJobStats``: data processed of
  total, memory and disk phases) while the call runs: the percentage is
  libvirt's, never a timer's.  A driver or an operation libvirt cannot
  measure leaves the percentage unknown (None) until the job is done;
* ``ctx.set_abort(fn)`` names how to stop the work (``dom.abortJob``):
  :meth:`JobManager.stop` calls it; a job without one cannot be cancelled;
  ``ctx.cancelled`` tells work between steps that a stop was asked for.

States (``Job.state``): ``new`` -> ``running`` -> ``completed`` | ``failed`` |
``terminated`` (stopped on request) | ``killed`` | ``unknown`` (the server
restarted while the job ran and its outcome could not be found out: never
reported as success).

Listeners (:meth:`JobManager.add_listener`) hear ``created``, ``modified``
(state changes always; progress at most once per ``progress_interval``
seconds per job) and ``deleted``, with a copy of the job and, for
``modified``, the copy they heard last.

Finished jobs are kept ``time_before_removal`` seconds (default 300, DMTF's
TimeBeforeRemoval), or removed at once with ``delete_on_completion``.  With a
state directory (:func:`configure`) every job is written to
``<state_dir>/jobs.json`` at each state change, so finished jobs survive a
restart for their remaining time; a job that was running is looked at again
after the restart: if libvirt still runs a job on its domain it is followed
to its end, a *resolver* registered for the job's kind
(:func:`register_resolver`) decides its outcome from what libvirt has (the
snapshot exists or not ...), and without one the outcome is ``unknown``.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Iterator, Optional

import libvirt

from . import jobs_events, jobs_store
from .jobs_store import STATE_FILE, percent_from_stats

__all__ = ["Job", "JobContext", "JobManager", "JobFailed", "JobLimit", "jobs", "configure",
           "STATE_FILE", "register_resolver", "percent_from_stats", "NEW", "RUNNING", "COMPLETED", "FAILED",
           "TERMINATED", "KILLED", "UNKNOWN", "FINISHED", "ERR_FAILED", "ERR_NOT_SUPPORTED",
           "ERR_INVALID", "ERR_NOT_FOUND", "ERR_TIMEOUT", "ERR_CANCELLED", "ERR_UNKNOWN",
           "STOP_REQUESTED", "STOP_NOT_CANCELLABLE", "STOP_FINISHED", "STOP_NO_JOB",
           "DEFAULT_TIME_BEFORE_REMOVAL"]

LOG = logging.getLogger(__name__)

# -- states and error kinds ------------------------------------------------------------

NEW = "new"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
TERMINATED = "terminated"
KILLED = "killed"
UNKNOWN = "unknown"
FINISHED = frozenset({COMPLETED, FAILED, TERMINATED, KILLED, UNKNOWN})

ERR_FAILED = "failed"
ERR_NOT_SUPPORTED = "not_supported"
ERR_INVALID = "invalid_parameter"
ERR_NOT_FOUND = "not_found"
ERR_TIMEOUT = "timeout"
ERR_CANCELLED = "cancelled"
ERR_UNKNOWN = "unknown"

# JobManager.stop() answers
STOP_REQUESTED = "requested"
STOP_NOT_CANCELLABLE = "not_cancellable"
STOP_FINISHED = "finished"
STOP_NO_JOB = "no_job"

DEFAULT_TIME_BEFORE_REMOVAL = 300.0
#: Seconds between two polls of libvirt's job statistics.
POLL_INTERVAL = 0.25
#: JobStatus of a job that ran when the server restarted, while its outcome is found.
RESUMED_STATUS = "Server restarted; finding the outcome"
#: How long a followed job waits for libvirt's job-completed event once its call returned.
EVENT_GRACE = 1.0
#: How long a stop request retries while libvirt has not started its job yet.
ABORT_RETRY = 5.0
#: Jobs running at once (more are refused: one client cannot start unbounded threads).
MAX_RUNNING = 64
#: Jobs kept at once (the oldest finished ones go first when more finish).
MAX_KEPT = 10000

# Error codes of the error kinds (Job.error_code; the provider maps kinds to CIM codes).
_KIND_CODES = {ERR_FAILED: 1, ERR_NOT_SUPPORTED: 2, ERR_INVALID: 3, ERR_NOT_FOUND: 4,
               ERR_TIMEOUT: 5, ERR_CANCELLED: 6, ERR_UNKNOWN: 7}
# What the kinds are called in CIM status codes (duck-typed errors of older layers).
_STATUS_KINDS = {4: ERR_INVALID, 6: ERR_NOT_FOUND, 7: ERR_NOT_SUPPORTED,
                 16: ERR_NOT_SUPPORTED}


class JobFailed(Exception):
    """Raised by a job's work: the job fails with this message and kind."""

    def __init__(self, message: str, kind: str = ERR_FAILED):
        super().__init__(message)
        self.kind = kind


class JobLimit(RuntimeError):
    """Too many jobs run at once: the new one is refused."""


@dataclass
class Job:
    """One job.  The manager hands out copies: changing one changes nothing."""

    id: str
    operation: str                    # "CreateSnapshot", "RequestStateChange" ...
    description: str                  # the operation and its target, for people
    host: str                         # label of the libvirt host
    domain: Optional[str] = None      # the domain it works on (None: host-wide work)
    owner: str = ""                   # which service started it (see the provider layer)
    cancellable: bool = False
    delete_on_completion: bool = False
    time_before_removal: float = DEFAULT_TIME_BEFORE_REMOVAL
    state: str = NEW
    status: str = "Queued"
    percent: Optional[int] = None     # None: libvirt cannot measure it (yet)
    phase: Optional[str] = None       # "memory", "disk" ... as libvirt reports it
    submitted: float = 0.0
    started: Optional[float] = None
    last_change: float = 0.0
    finished: Optional[float] = None
    error_kind: Optional[str] = None
    error_message: Optional[str] = None
    result: dict[str, Any] = field(default_factory=dict)    # e.g. {"snapshot": "s1"}
    affected: list[str] = field(default_factory=list)       # other domains it affects
    resolver: Optional[str] = None    # name of the resolver used after a restart
    params: dict[str, Any] = field(default_factory=dict)    # what the resolver needs
    restarted: bool = False           # the server restarted while it ran
    figures: dict[str, Any] = field(default_factory=dict)   # libvirt's final statistics
    figures_from: Optional[str] = None  # "event" (job-completed) or "poll"

    @property
    def done(self) -> bool:
        """True once the job has ended (successfully or not)."""
        return self.state in FINISHED

    @property
    def error_code(self) -> Optional[int]:
        """A number for the error kind (None: no error)."""
        return _KIND_CODES.get(self.error_kind or "", 1) if self.error_kind else None

    def elapsed(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds the job has run (until now, or until it finished)."""
        if self.started is None:
            return None
        end = self.finished if self.finished is not None else (now or time.time())
        return max(end - self.started, 0.0)

    def removal_time(self) -> Optional[float]:
        """When a finished job is removed (None while it runs)."""
        if self.finished is None:
            return None
        return self.finished + (0.0 if self.delete_on_completion else self.time_before_removal)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Job":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


Listener = Callable[[str, Job, Optional[Job]], None]
Work = Callable[["JobContext"], Optional[dict]]
Resolver = Callable[["JobContext"], Optional[dict]]

_resolvers: dict[str, Resolver] = {}


def register_resolver(name: str, resolver: Resolver) -> None:
    """How to find out the outcome of a job of kind `name` after a restart.

    ``resolver(ctx)`` runs in the job's thread (``ctx.job`` has the saved job,
    its ``params`` what the work saved); it returns the results of a job that
    succeeded, raises :class:`JobFailed` for one that failed, and
    ``JobFailed(..., ERR_UNKNOWN)`` when it cannot tell.
    """
    _resolvers[name] = resolver


class JobContext:
    """What a job's work uses to report progress and learn about cancellation."""

    def __init__(self, manager: "JobManager", job_id: str):
        self._manager = manager
        self.job_id = job_id
        self._cancel = threading.Event()
        self._abort: Optional[Callable[[], None]] = None
        self.kill = False

    @property
    def job(self) -> Job:
        """A copy of the job now."""
        found = self._manager.get(self.job_id)
        if found is None:   # pragma: no cover - a running job is never removed
            raise LookupError(self.job_id)
        return found

    @property
    def cancelled(self) -> bool:
        """True once a stop of the job was asked for."""
        return self._cancel.is_set()

    def set_abort(self, fn: Optional[Callable[[], None]]) -> None:
        """How to stop the work now (None: it cannot be stopped from here on)."""
        self._abort = fn
        self._manager._set_cancellable(self.job_id, fn is not None)

    def progress(self, percent: Optional[int], phase: Optional[str] = None) -> None:
        """Report measured progress (0-100); it never goes down."""
        self._manager._progress(self.job_id, percent, phase)

    def save_params(self, **params: Any) -> None:
        """Keep what a resolver needs after a restart (JSON-able values)."""
        self._manager._update(self.job_id, params=params)

    @contextmanager
    def follow(self, dom: Any, what: str = "") -> Iterator[None]:
        """Follow libvirt's job of the domain while the block runs: its statistics polled,
        and its job-completed event awaited (jobs_events); the final figures (``figures``)
        come from the event where libvirt sends one, else from the last poll."""
        stop = threading.Event()
        waiter = None
        try:
            waiter = jobs_events.completions().expect(self.job.host, dom.UUIDString())
        except Exception as exc:  # pylint: disable=broad-except
            LOG.info("job %s: no job-completed event awaited: %s", self.job_id, exc)
        polled: dict[str, Any] = {}
        thread = threading.Thread(target=self._poll, args=(dom, stop, waiter, polled),
                                  daemon=True, name=f"job-progress-{self.job_id[:8]}")
        thread.start()
        ok = False
        try:
            yield
            ok = True
        finally:
            stop.set()
            thread.join(10.0)
            if waiter is not None:
                # the event comes on libvirt's event loop thread: when libvirt's job was
                # seen running and the call succeeded, give it a moment to arrive
                if ok and polled and not waiter.done:
                    waiter.wait(EVENT_GRACE)
                jobs_events.completions().release(waiter)
            if waiter is not None and waiter.stats is not None:
                self.set_figures(waiter.stats, "event")
            elif polled:
                self.set_figures({k: polled[k] for k in jobs_events.FIGURES if k in polled},
                                 "poll")

    def set_figures(self, figures: dict[str, Any], source: str) -> None:
        """Keep libvirt's final statistics of the job (`source`: "event" or "poll")."""
        self._manager._update(self.job_id, figures=dict(figures), figures_from=source)

    def _poll(self, dom: Any, stop: threading.Event, waiter: Any,
              polled: dict[str, Any]) -> None:
        while not stop.wait(POLL_INTERVAL):
            if waiter is not None and waiter.done:
                # libvirt's job ended (its event): no more polls; the call still finishes
                pct, phase = percent_from_stats(waiter.stats or {}, completed=True)
                if pct is not None:
                    self.progress(min(pct, 99), phase)
                return
            try:
                stats = dom.jobStats(0)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() in (libvirt.VIR_ERR_NO_SUPPORT,
                                            libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED):
                    return          # this driver cannot measure: the percentage stays NULL
                continue
            except Exception as exc:  # pylint: disable=broad-except
                # A lost or hung host: the blocking call reports it; nothing to measure.
                LOG.info("job %s: no progress figures: %s", self.job_id, exc)
                return
            pct, phase = percent_from_stats(stats)
            if stats.get("type", 0) != getattr(libvirt, "VIR_DOMAIN_JOB_NONE", 0):
                polled.clear()
                polled.update(stats)
            if pct is not None:
                self.progress(min(pct, 99), phase)   # 100 only when the call returned

    def _request_stop(self, kill: bool) -> bool:
        fn = self._abort
        if fn is None:
            return False
        # set before the abort: the work's call may fail at once, and must see why
        self.kill = kill
        self._cancel.set()
        try:
            fn()
        except BaseException:
            self._cancel.clear()          # not stopped: its failure is its own
            raise
        return True


class JobManager:
    """The jobs of this process."""

    def __init__(self, state_dir: Optional[str] = None, progress_interval: float = 1.0,
                 max_running: int = MAX_RUNNING, max_kept: int = MAX_KEPT):
        self.state_dir = state_dir
        self.progress_interval = progress_interval
        self.max_running = max_running
        self.max_kept = max_kept
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._contexts: dict[str, JobContext] = {}
        self._heard: dict[str, tuple[float, Job]] = {}   # id -> (time, copy) of the last event
        self._pending: set[str] = set()   # jobs whose progress waits for the rate limit
        self._notify_lock = threading.RLock()   # listeners hear the events in order
        self._listeners: list[Listener] = []
        self._cond = threading.Condition(self._lock)
        self._reaper: Optional[threading.Thread] = None
        self._closed = False
        self._loaded = False

    # -- listeners ------------------------------------------------------------------

    def add_listener(self, fn: Listener) -> None:
        """``fn(event, job, previous)`` for every ``created``/``modified``/``deleted``."""
        with self._lock:
            if fn not in self._listeners:
                self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def _notify(self, event: str, job: Job, force: bool = True, flush: bool = False) -> None:
        """Tell the listeners; `force` False: progress, rate-limited.

        Notifications are serialized and carry the job's state *at notification
        time*, so that listeners see the states in order (a held-back progress
        never arrives after the job's end).
        """
        with self._notify_lock:
            now = time.monotonic()
            with self._lock:
                current = self._jobs.get(job.id)
                if event != "deleted" and current is not None:
                    job = current
                last = self._heard.get(job.id)
                if flush:
                    self._pending.discard(job.id)
                    if current is None or job.done or last is None or \
                            (last[1].percent, last[1].phase) == (job.percent, job.phase):
                        return
                elif not force and last is not None and \
                        now - last[0] < self.progress_interval:
                    # Held back, not lost: the latest progress goes out when the interval
                    # ends.
                    if job.id not in self._pending:
                        self._pending.add(job.id)
                        timer = threading.Timer(self.progress_interval - (now - last[0]),
                                                self._notify, args=("modified", job),
                                                kwargs={"flush": True})
                        timer.daemon = True
                        timer.start()
                    return
                snap = copy.deepcopy(job)
                prev = last[1] if last is not None else None
                if event == "deleted":
                    self._heard.pop(job.id, None)
                else:
                    self._heard[job.id] = (now, snap)
                listeners = list(self._listeners)
            for fn in listeners:
                try:
                    fn(event, snap, prev if event == "modified" else None)
                except Exception:  # pylint: disable=broad-except
                    LOG.exception("job listener failed on %s of job %s", event, job.id)

    # -- reading ---------------------------------------------------------------------

    def get(self, job_id: str) -> Optional[Job]:
        """A copy of the job, or None."""
        self.load()
        with self._lock:
            job = self._jobs.get(job_id)
            return copy.deepcopy(job) if job is not None else None

    def list_jobs(self, host: Optional[str] = None, domain: Optional[str] = None) -> list[Job]:
        """Copies of the jobs (of one host, of one domain), oldest first."""
        self.load()
        with self._lock:
            out = [copy.deepcopy(j) for j in self._jobs.values()
                   if (host is None or j.host == host)
                   and (domain is None or j.domain == domain or domain in j.affected)]
        out.sort(key=lambda j: (j.submitted, j.id))
        return out

    def wait(self, job_id: str, timeout: float) -> Optional[Job]:
        """Wait until the job has ended or `timeout` s passed; a copy of it then."""
        self.load()
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                job = self._jobs.get(job_id)
                if job is None or job.done:
                    return copy.deepcopy(job) if job is not None else None
                left = deadline - time.monotonic()
                if left <= 0:
                    return copy.deepcopy(job)
                self._cond.wait(min(left, 1.0))

    # -- starting ----------------------------------------------------------------------

    def submit(self, operation: str, *, host: Any, work: Work, description: str,
               domain: Optional[str] = None, owner: str = "", cancellable: bool = False,
               abort: Optional[Callable[[], None]] = None, resolver: Optional[str] = None,
               params: Optional[dict[str, Any]] = None, affected: Optional[list[str]] = None,
               time_before_removal: float = DEFAULT_TIME_BEFORE_REMOVAL,
               delete_on_completion: bool = False) -> Job:
        """Start `work` in a new job; a copy of the job (state ``new`` or later).

        `host` is a :class:`~.connection.Host` or its label.  `abort` (or
        ``ctx.set_abort`` later) makes the job cancellable.  Raises
        :class:`JobLimit` when ``max_running`` jobs run already.
        """
        self.load()
        label = getattr(host, "label", host)
        now = time.time()
        job = Job(id=str(uuid.uuid4()), operation=operation, description=description,
                  host=str(label), domain=domain, owner=owner,
                  cancellable=bool(cancellable or abort is not None),
                  delete_on_completion=delete_on_completion,
                  time_before_removal=float(time_before_removal), submitted=now,
                  last_change=now, resolver=resolver, params=dict(params or {}),
                  affected=list(affected or []))
        ctx = JobContext(self, job.id)
        ctx._abort = abort
        with self._lock:
            running = sum(1 for j in self._jobs.values() if not j.done)
            if running >= self.max_running:
                raise JobLimit(f"{running} jobs are running; no more than "
                               f"{self.max_running} at once")
            self._jobs[job.id] = job
            self._contexts[job.id] = ctx
            self._trim()
            self._save()
        self._notify("created", job)
        thread = threading.Thread(target=self._run, args=(job.id, ctx, work), daemon=True,
                                  name=f"job-{operation}-{job.id[:8]}")
        thread.start()
        return self.get(job.id) or job

    def _run(self, job_id: str, ctx: JobContext, work: Work, status: str = "Running",
             started: Optional[float] = None) -> None:
        self._transition(job_id, RUNNING, status, started=started or time.time())
        try:
            result = work(ctx) or {}
        except JobFailed as exc:
            if ctx.cancelled and exc.kind == ERR_CANCELLED:
                self._end(job_id, KILLED if ctx.kill else TERMINATED, ERR_CANCELLED, str(exc))
            else:
                self._end(job_id, UNKNOWN if exc.kind == ERR_UNKNOWN else FAILED, exc.kind,
                          str(exc))
            return
        except Exception as exc:  # pylint: disable=broad-except
            kind = _STATUS_KINDS.get(getattr(exc, "status_code", 0) or 0, ERR_FAILED)
            message = getattr(exc, "status_description", None) or str(exc) or type(exc).__name__
            if ctx.cancelled:
                # libvirt reports an aborted job as an error of the blocking call.
                self._end(job_id, KILLED if ctx.kill else TERMINATED, ERR_CANCELLED,
                          f"stopped on request ({message})")
            else:
                if not isinstance(exc, (LookupError, ValueError)) and \
                        getattr(exc, "status_code", None) is None:
                    LOG.exception("job %s failed", job_id)
                self._end(job_id, FAILED, kind, message)
            return
        self._end(job_id, COMPLETED, None, None, result=result)

    # -- changes ---------------------------------------------------------------------

    def _update(self, job_id: str, **changes: Any) -> Optional[Job]:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            for k, v in changes.items():
                setattr(job, k, v)
            self._save()
            return job

    def _set_cancellable(self, job_id: str, cancellable: bool) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.cancellable == cancellable:
                return
            job.cancellable = cancellable
        self._notify("modified", job)

    def _transition(self, job_id: str, state: str, status: str, **changes: Any) -> None:
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None:
                return
            job.state, job.status = state, status
            job.last_change = time.time()
            for k, v in changes.items():
                setattr(job, k, v)
            self._save()
            self._cond.notify_all()
        self._notify("modified", job)

    def _progress(self, job_id: str, percent: Optional[int], phase: Optional[str]) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.done or percent is None:
                return
            pct = max(0, min(int(percent), 100))
            if job.percent is not None and pct < job.percent:
                pct = job.percent
            if pct == job.percent and phase == job.phase:
                return
            job.percent, job.phase = pct, phase
        self._notify("modified", job, force=False)

    def _end(self, job_id: str, state: str, kind: Optional[str], message: Optional[str],
             result: Optional[dict] = None) -> None:
        status = {COMPLETED: "Completed", FAILED: "Failed", TERMINATED: "Terminated",
                  KILLED: "Killed", UNKNOWN: "Outcome unknown"}[state]
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return
            changes: dict[str, Any] = {"finished": time.time(), "error_kind": kind,
                                       "error_message": message, "cancellable": False}
            if state == COMPLETED:
                changes["percent"] = 100
                changes["result"] = dict(result or {})
            self._contexts.pop(job_id, None)
        self._transition(job_id, state, status, **changes)
        LOG.info("job %s (%s) %s%s", job_id, job.description, state,
                 f": {message}" if message else "")
        self._schedule_removal()

    # -- stopping, changing, removing ---------------------------------------------------

    def stop(self, job_id: str, kill: bool = False) -> str:
        """Ask a running job to stop (Terminate, or Kill): a STOP_* answer."""
        with self._lock:
            job = self._jobs.get(job_id)
            ctx = self._contexts.get(job_id)
            if job is None:
                return STOP_NO_JOB
            if job.done or ctx is None:
                return STOP_FINISHED
            if not job.cancellable:
                return STOP_NOT_CANCELLABLE
        # libvirt answers "no job is active" before its job started and after it ended:
        # try again for a while (bounded) while ours still runs
        deadline = time.monotonic() + ABORT_RETRY
        while True:
            try:
                done = ctx._request_stop(kill)
                break
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:
                    LOG.info("job %s: abort refused by libvirt: %s", job_id,
                             exc.get_error_message())
                    return STOP_NOT_CANCELLABLE
                current = self.get(job_id)
                if current is None or current.done or time.monotonic() > deadline:
                    return STOP_FINISHED      # libvirt's job ended (or never came)
                time.sleep(0.05)
        self._transition(job_id, RUNNING, "Stopping")
        return STOP_REQUESTED if done else STOP_NOT_CANCELLABLE

    def modify(self, job_id: str, delete_on_completion: Optional[bool] = None,
               time_before_removal: Optional[float] = None) -> Optional[Job]:
        """Change what clients may change; a copy of the job (None: no such job)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if delete_on_completion is not None:
                job.delete_on_completion = bool(delete_on_completion)
            if time_before_removal is not None:
                job.time_before_removal = max(float(time_before_removal), 0.0)
            self._save()
        self._notify("modified", job)
        self._schedule_removal()
        return self.get(job_id)

    def delete(self, job_id: str) -> bool:
        """Remove a finished job now (False: it runs, or does not exist)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or not job.done:
                return False
            del self._jobs[job_id]
            self._save()
        self._notify("deleted", job)
        return True

    def _trim(self) -> None:
        """Keep at most max_kept jobs: the oldest finished ones go."""
        extra = len(self._jobs) - self.max_kept
        if extra <= 0:
            return
        done = sorted((j for j in self._jobs.values() if j.done),
                      key=lambda j: j.finished or 0)
        for job in done[:extra]:
            del self._jobs[job.id]
            self._heard.pop(job.id, None)

    # -- removal of finished jobs ---------------------------------------------------------

    def _schedule_removal(self) -> None:
        with self._cond:
            if self._reaper is None and not self._closed:
                self._reaper = threading.Thread(target=self._reap, daemon=True,
                                                name="jobs-removal")
                self._reaper.start()
            self._cond.notify_all()

    def _reap(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                now = time.time()
                due = [j for j in self._jobs.values()
                       if j.done and (j.removal_time() or now) <= now]
                for job in due:
                    del self._jobs[job.id]
                if due:
                    self._save()
                times = [t for t in (j.removal_time() for j in self._jobs.values())
                         if t is not None]
                wait = min(times) - now if times else 60.0
            for job in due:
                LOG.debug("job %s removed (its TimeBeforeRemoval passed)", job.id)
                self._notify("deleted", job)
            with self._cond:
                if not self._closed:
                    self._cond.wait(max(min(wait, 60.0), 0.05))

    def close(self) -> None:
        """Stop the removal thread (tests; the process ends otherwise)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- persistence ----------------------------------------------------------------------

    def _save(self) -> None:
        """Write every job to the state file (atomically); called with the lock held."""
        if self.state_dir:
            jobs_store.write_jobs(self.state_dir, [j.to_dict() for j in self._jobs.values()])

    def load(self) -> None:
        """Read the state file once: finished jobs come back for their remaining time,
        jobs that were running are looked at again (see the module docstring)."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            if not self.state_dir:
                return
            data = jobs_store.read_jobs(self.state_dir)
            if data is None:
                return
            loaded = []
            for d in data:
                try:
                    loaded.append(Job.from_dict(d))
                except (TypeError, ValueError) as exc:
                    LOG.error("jobs: a saved job cannot be read (%s): %r", exc, d)
            resume = []
            for job in loaded:
                if not job.done:
                    job.restarted = True
                    job.status = RESUMED_STATUS
                    job.cancellable = False
                    resume.append(job)
                self._jobs[job.id] = job
        for job in resume:
            ctx = JobContext(self, job.id)
            with self._lock:
                self._contexts[job.id] = ctx
            threading.Thread(target=self._resume, args=(job.id, ctx), daemon=True,
                             name=f"job-resume-{job.id[:8]}").start()
        self._schedule_removal()

    def _resume(self, job_id: str, ctx: JobContext) -> None:
        """Find out the outcome of a job that ran when the server stopped."""
        job = ctx.job

        def work(c: JobContext) -> Optional[dict]:
            jobs_store.follow_after_restart(c, job)
            resolver = _resolvers.get(job.resolver or "")
            if resolver is None:
                raise JobFailed("the server restarted while the job ran; its outcome "
                                "cannot be known", ERR_UNKNOWN)
            return resolver(c)
        self._run(job_id, ctx, work, RESUMED_STATUS, started=job.started)


# -- the process-wide manager ---------------------------------------------------------------

_manager_lock = threading.Lock()
_manager: Optional[JobManager] = None
_state_dir: Optional[str] = None
_configured = False


def configure(state_dir: Optional[str]) -> JobManager:
    """Install a new manager keeping its jobs in `state_dir` (None: in memory only).

    The embedded server calls this at start with ``[server] state_dir``;
    inside sfcb and OpenPegasus the first use reads the installed
    configuration file.
    """
    global _manager, _state_dir, _configured
    with _manager_lock:
        if _manager is not None:
            _manager.close()
        _state_dir = state_dir
        _configured = True
        _manager = JobManager(state_dir)
        return _manager


def jobs() -> JobManager:
    """The process-wide job manager."""
    global _manager, _state_dir, _configured
    mgr = _manager
    if mgr is not None:
        return mgr
    with _manager_lock:
        if _manager is None:
            if not _configured:
                try:
                    from ..config import load_config
                    _state_dir = load_config().server.state_dir
                except Exception as exc:  # pylint: disable=broad-except
                    LOG.info("jobs: no state directory (%s); jobs are kept in memory", exc)
                    _state_dir = None
            _manager = JobManager(_state_dir)
        return _manager
