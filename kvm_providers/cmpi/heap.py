"""The garbage collector of a CIM server's provider process, set as the embedded server sets
its own (issue 10 item 12, stop 25).

The embedded server loads every provider module at start, then takes the
long-lived objects out of the cyclic collector (``gc.freeze()``: the class
repository and the modules, some 200,000 objects) and makes young collections
rarer (``gc.set_threshold(10000, 10, 10)``, ``cimom/server.py``
``_preload``).  Inside sfcb or OpenPegasus the same objects live in the
provider process's interpreter, which cmpi-bindings starts with Python's
defaults: a full collection falling inside a request scans all of them
(0.15 s of a 0.35 s enumeration of every RASD of 1000 guests in one process;
the py-spy samples of stop 23 and 24 blamed them on whatever frame allocated,
the mapping views' ``_index`` 7-10%), and an enumeration whose request scope
keeps every domain's parsed XML for the later subclass calls
(:mod:`.sharing`) promotes enough objects to the old generation to trigger
one every request or two.  The embedded server lets each domain go after
writing it, so it never meets this.

:func:`settle` does what ``_preload`` does, once per provider loaded (sfcb and
Pegasus load a provider's MIs when it is first called): the default schema
loaded, the heap collected (the first time the whole heap; later loads scan only
what they added, the rest is frozen), frozen, the thresholds of the embedded server.
``KVM_PROVIDERS_CMPI_GC=0`` in the CIM server's environment leaves the
collector as the interpreter has it.  Frozen objects are still freed when no
longer referenced; only reference cycles among them are never collected (the
modules and the schema live as long as the process anyway).

:func:`trim` gives the C heap's free memory back after a large call, in OpenPegasus'
provider agent and sfcb's provider process (:data:`TRIM_SERVERS`).  cimprovagt serves
every CMPI call in a thread of its own, and glibc gives each thread a malloc arena of its own (up to
8 per core): the SCMOInstances of a call's instances, freed when the call ends,
stay in that arena's heap, and the next call's thread often gets another
arena.  An enumeration of every RASD of 1000 guests (16 subclass calls at
once) grew the agent by 40 MB per request, 184 to 643 MB over 20 requests,
flat at 159 MB with ``MALLOC_ARENA_MAX=1`` and at 163-167 MB with a
``malloc_trim(0)`` after each call; the Python heap stayed the same size
throughout (pgleak25, stop 25).  A call that handed the server fewer than
:data:`TRIM_MIN` objects (a GetInstance, an up-call) does not trim: the walk
over the arenas (0.2-0.8 ms, up to 80 ms when much is free) would cost more
than it gives back.  sfcb also serves each call on a thread of its own
(``processProviderInvocationRequestsThread``), and its provider process kept what a
request of 10,000 guests had freed: 0.9 GB after the first request whatever the
next ones needed (malloc: 130-160 MB in use, 620 MB free; issue 16, stop 26); 0.7 GB
with the trim, 0.3 GB with the trim and the values read ahead (.sharing).

The trim comes once a client request, when its last call ends (:func:`trim`, stop 27):
the calls of a request count what they made (:func:`count`), and the call that leaves
the request's shared scope last, with none of the parts the last such request got still
to come (:meth:`.sharing.ReadShare.request_over`), trims if they made :data:`TRIM_MIN`
or more together.  A call that is a request of its own (sharing off, a GetInstance)
trims as before, if it made that many.  ``KVM_PROVIDERS_CMPI_TRIM=0`` turns it off.

What a request frees but its answer does not need is freed after its last call has
returned (stop 28): the rows a later part made its instances from (:func:`later`;
the ``made`` generator freeing its 1000 rows at the end of each later call was 14% of
those calls in sfcb at 1000 guests) are kept until the request is over, then freed,
and the heap trimmed, by one worker thread (:class:`Worker`) while the server writes
the answer -- cmpi-bindings lets the GIL go when a call returns, and sfcb builds the
XML in its other processes, Pegasus in cimserver.  A request not over (an expected part
that never comes) hands its rows on to the next request's end, as its trim.  The
worker's queue is bounded (a full one: freed and trimmed in the call, as before);
the last terminating cleanup waits for it (:func:`flush`).  The cyclic collector is off
from the call that reads ahead until the request is over (:func:`hold_collector`): its
young collections scanned the rows kept for the later parts, alive until then (3 a
request at 1000 guests, a tenth of the provider's time in sfcb), and found some 60
objects of garbage a request; the worker turns it on again after freeing the rows.
``KVM_PROVIDERS_CMPI_LATER=0`` frees and trims in the calls and leaves the collector on.
"""

from __future__ import annotations

import atexit
import collections
import gc
import os
import threading
from typing import Any, Callable, Optional

from ..virt import malloc
from .templates import server_name

__all__ = ["settle", "THRESHOLD", "enabled", "trims", "count", "trim", "TRIM_MIN", "TRIM_SERVERS",
           "later", "later_enabled", "hold_collector", "flush", "Worker", "LATER_MAX"]

#: What the embedded server sets (cimom/server.py, _preload): fewer young collections,
#: each still cheap.
THRESHOLD = (10000, 10, 10)

_lock = threading.Lock()


def enabled() -> bool:
    """False if ``KVM_PROVIDERS_CMPI_GC=0`` asks to leave the collector alone."""
    return os.environ.get("KVM_PROVIDERS_CMPI_GC", "").strip() != "0"


def settle(load_schema: Callable[[], Any]) -> bool:
    """Freeze what a provider just loaded, as the embedded server does after loading its
    providers; `load_schema` loads the schema the provider uses first (a lazy load on
    the first request would leave it to every full collection).  Whether it did."""
    if not enabled():
        return False
    try:
        load_schema()
    except Exception:  # pylint: disable=broad-except
        pass                    # the provider's first request reports it
    with _lock:
        # Garbage frozen would never be collected.  Only the first collection of the
        # process scans the whole heap: what an earlier settle froze is not scanned.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*THRESHOLD)
    return True


#: The servers (``broker.name()``) whose provider process keeps freed memory in its threads'
#: arenas: OpenPegasus' cimprovagt, sfcb's provider process ("RequestHandler").
TRIM_SERVERS = frozenset({"Pegasus", "RequestHandler"})

#: CMPI objects a call made (instances, paths, values kept) from which the heap is trimmed
#: after it: a RASD subclass call of 1000 guests makes thousands, a GetInstance a few.
TRIM_MIN = 500


def _libc_trim() -> Optional[Callable[[int], int]]:
    """glibc's ``malloc_trim`` (None elsewhere: musl has none, nothing to do)."""
    return malloc.libc_trim()


#: ``malloc_trim`` of this process, looked up on first use (the tests replace it).
malloc_trim: Any = _libc_trim


def trims(broker: Any) -> bool:
    """Whether the provider process of `broker`'s server is trimmed after large requests."""
    if os.environ.get("KVM_PROVIDERS_CMPI_TRIM", "").strip() == "0":
        return False
    return server_name(broker) in TRIM_SERVERS


#: CMPI objects made by the calls since the last trim (or since the last request end that
#: did not trim: a small request's leftovers are nothing to give back).
_pending = 0


def count(made: int) -> None:
    """Count the `made` CMPI objects of a call that has released them, before it leaves its
    request's scope: the call that ends the request, however soon after, sees them."""
    global _pending  # pylint: disable=global-statement
    with _lock:
        _pending += made


def trim(made: int = 0, over: bool = True, trim_heap: bool = True) -> bool:
    """At the end of a call (`made`: CMPI objects it made not yet :func:`count`-ed): if it
    ended its client request (`over`: the last running call of its shared scope with no
    expected part still to come, :meth:`.sharing.ReadShare.request_over`; or a call of its
    own), give the C heap's free memory back to the system (every arena,
    ``malloc_trim(0)``) if the calls since the last trim made :data:`TRIM_MIN` or more
    (`trim_heap` False: the server's provider process is not trimmed, :func:`trims`), after the
    garbage kept for then (:func:`later`) is freed -- both by the worker after the call
    returned.  Whether it trimmed (or handed the trim to the worker).

    Once at the end of the request, not after each large call: OpenPegasus' subclass calls
    run at once, and a call trimming while the others still held their memory left the
    agent at 700 MB after a request of 10,000 guests (the last call to end, often a small
    one, never trimmed); sfcb's calls come one after the other, and a trim after each of
    an every-RASD request's 7 large calls cost some 6% of it at 1000 guests (the pages
    given back fault in again in the next call).  A request whose expected part never
    comes is not over: the next request's end trims for it."""
    global _pending  # pylint: disable=global-statement
    with _lock:
        _pending += made
        if not over:
            return False
        due, _pending = trim_heap and _pending >= TRIM_MIN, 0
        garbage = _later[:]
        _later.clear()
        held = _gc_off[0] == "held"
        if held:
            _gc_off[0] = "handed"
    if not due and not garbage and not held:
        return False
    if not _worker.put(garbage, due, held):
        del garbage[:]          # the queue full: freed and trimmed here, as before
        if held:
            _collector_on()
        return due and _trim_now()
    return due


def _trim_now() -> bool:
    global malloc_trim  # pylint: disable=global-statement
    if malloc_trim is _libc_trim:
        malloc_trim = _libc_trim()
    if malloc_trim is None:
        return False
    malloc_trim(0)
    return True


#: What the calls of the requests not over yet no longer need (:func:`later`).
_later: list = []

#: Objects :func:`later` keeps at most (a request's later parts hand it one each: 15 for an
#: enumeration of every RASD); more are freed where they are (requests never over).
LATER_MAX = 256


def later_enabled() -> bool:
    """False if ``KVM_PROVIDERS_CMPI_LATER=0`` asks to free everything in the calls."""
    return os.environ.get("KVM_PROVIDERS_CMPI_LATER", "").strip() != "0"


_LATER = later_enabled()


#: The cyclic collector turned off by :func:`hold_collector`: [None] not by us, ["held"] for
#: a request not over yet, ["handed"] to the worker to turn on (unless held again first).
_gc_off: list = [None]


def hold_collector() -> None:
    """Turn the cyclic collector off until the request of the running call is over (the
    worker turns it on again after freeing what the request kept for then, :func:`trim`):
    the rows a call reads ahead for the parts to come (10,000 containers or more at 1000
    guests) are alive until then, and every young collection meanwhile scans them in the
    calls (3 a request, 8-10 ms in one process with the free fakes) for no garbage.
    Nothing if turned off (``KVM_PROVIDERS_CMPI_LATER=0``, ``KVM_PROVIDERS_CMPI_GC=0``) or
    the collector is off already but not by us."""
    if not _LATER or not enabled():
        return
    with _lock:
        if _gc_off[0] == "handed":
            _gc_off[0] = "held"         # the worker has not turned it on yet: it stays off
        elif _gc_off[0] is None and gc.isenabled():
            gc.disable()
            _gc_off[0] = "held"


def _collector_on() -> None:
    """The worker (or a call, without it): the collector on again, unless a request held it
    again since its last request ended."""
    with _lock:
        if _gc_off[0] == "handed":
            gc.enable()
            _gc_off[0] = None


def later(obj: Any) -> None:
    """Keep `obj`, which the running call no longer needs once it returns (the rows it
    makes its instances from), until its request is over: the worker frees it then,
    while the server writes the answer (:func:`trim`).  Nothing kept if turned off or
    :data:`LATER_MAX` are kept (the caller's reference frees it)."""
    if not _LATER:
        return
    with _lock:
        if len(_later) < LATER_MAX:
            _later.append(obj)


class Worker:
    """One daemon thread that frees what requests handed over and trims the heap after
    them, in the order handed over; started on first use (and again in a forked child)."""

    #: Hand-overs waiting at most; one more is done in the call (:meth:`put` False).
    QUEUE_MAX = 4

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._jobs: collections.deque = collections.deque()
        self._busy = False
        self._thread: Optional[threading.Thread] = None
        self._stopping = False
        #: Hand-overs done (tests).
        self.done = 0

    def put(self, garbage: list, due: bool, collector: bool = False) -> bool:
        """Free `garbage` (its items), turn the cyclic collector on if `collector`, and trim
        if `due`, in the worker; False if the worker cannot take it (stopped, its queue
        full, no thread)."""
        with self._cond:
            if self._stopping or len(self._jobs) >= self.QUEUE_MAX:
                return False
            if self._thread is None or not self._thread.is_alive():
                thread = threading.Thread(target=self._run, name="kvm-providers-heap",
                                          daemon=True)
                try:
                    thread.start()
                except RuntimeError:            # (interpreter shutting down)
                    return False
                self._thread = thread
            self._jobs.append((garbage, due, collector))
            self._cond.notify_all()
            return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    self._cond.wait()
                if not self._jobs:
                    return
                garbage, due, collector = self._jobs.popleft()
                self._busy = True
            try:
                del garbage[:]
                if collector:
                    _collector_on()
                if due:
                    _trim_now()
            except Exception:  # pylint: disable=broad-except
                pass            # (a trim that failed: nothing to give back)
            finally:
                del garbage
                with self._cond:
                    self._busy = False
                    self.done += 1
                    self._cond.notify_all()

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until everything handed over is done; whether it is."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._jobs and not self._busy, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Finish what was handed over and end the thread (interpreter shutdown: the thread
        must not run Python while the interpreter finalises); later hand-overs are done
        in the calls."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def forked(self) -> None:
        """In a forked child: no thread, nothing handed over (the parent's to do)."""
        self._cond = threading.Condition(threading.Lock())
        self._jobs = collections.deque()
        self._busy = False
        self._thread = None
        self._stopping = False


_worker = Worker()
atexit.register(_worker.stop)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_worker.forked)


def flush(timeout: Optional[float] = None) -> bool:
    """Wait until the worker has freed and trimmed what the requests ended so far handed
    over (a terminating cleanup; tests).  Whether it has, within `timeout` seconds."""
    return _worker.flush(timeout)
