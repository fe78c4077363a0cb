"""Request-scope memos shared by the read calls a CIM server makes for one client request.

A CIM server splits one client request into several CMPI calls: sfcb and
OpenPegasus call the provider once per registered subclass for an
enumeration of a superclass (CIM_ResourceAllocationSettingData: eight RASD
classes, one provider), and an Associators request makes one GetInstance
up-call per associated instance, each served by another CMPI call.  The
embedded server serves such a request in one request scope, where every
domain's XML is fetched and parsed once (:mod:`kvm_providers.virt.domain`);
with one scope per CMPI call, each subclass call would list the domains and
fetch and parse the XML of every domain again.

CMPI gives no request identity, so read calls that follow each other closely
share one scope (:class:`ReadShare`): a call joins the current shared scope
if it is younger than ``max_age`` seconds and a call was running, or ended,
less than ``idle`` seconds ago; otherwise it starts a new one.  Writes
(CreateInstance, ModifyInstance, DeleteInstance, InvokeMethod) never share:
each has a scope of its own and ends the shared one before and after it runs,
so a read after a write through the providers sees the change at once.  A
change made outside the providers (virsh, another management tool) shows in
the read calls that start ``max_age`` seconds later at the latest.

The calls that share a scope run one at a time (the scope's lock), as the
embedded server runs the parts of one request: both servers issue the
subclass calls of an enumeration concurrently, and concurrent calls would
each compute what the first one is computing (the memos are filled when a
computation ends), and make every SWIG call of the conversion, which
releases the GIL, wait for it again behind the other calls.  A call that
waits on the CIM server (an up-call, :func:`released`) lets the others run
meanwhile: the server may serve the up-call with another call of the same
scope.

``$KVM_PROVIDERS_CMPI_SHARE`` sets ``max_age`` (seconds, default 2; ``0``
turns sharing off: one scope per CMPI call).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Callable, Iterator, Optional

from ..provider import request_scope

__all__ = ["ReadShare", "share", "released", "DEFAULT_MAX_AGE", "IDLE", "LOCK_WAIT"]

LOG = logging.getLogger("kvm_providers.cmpi")

#: How long a shared scope serves new calls at most (seconds).
DEFAULT_MAX_AGE = 2.0
#: A shared scope ends when no call has run for this long (seconds): a CIM server
#: issues the calls of one request back to back.
IDLE = 0.5
#: A call waits this long at most for the other calls of its scope, then runs
#: beside them (a safety valve: it never deadlocks on the scope).
LOCK_WAIT = 10.0

# The shared scope whose lock this thread holds (None: none).
_held = threading.local()


def _max_age_from_env() -> float:
    text = os.environ.get("KVM_PROVIDERS_CMPI_SHARE", "")
    try:
        value = float(text) if text.strip() else DEFAULT_MAX_AGE
    except ValueError:
        value = DEFAULT_MAX_AGE
    return max(0.0, value)


class _Shared:
    __slots__ = ("memo", "created", "last", "active", "lock")

    def __init__(self, now: float):
        self.memo: dict = {}
        self.created = now
        self.last = now
        self.active = 0
        self.lock = threading.Lock()


@contextlib.contextmanager
def released() -> Iterator[None]:
    """Let the other calls of this thread's shared scope run while it waits on the server."""
    cur = getattr(_held, "scope", None)
    if cur is None:
        yield
        return
    _held.scope = None
    cur.lock.release()
    try:
        yield
    finally:
        cur.lock.acquire()
        _held.scope = cur


class ReadShare:
    """The scope shared by close read calls of one process (see the module doc)."""

    def __init__(self, max_age: Optional[float] = None, idle: float = IDLE,
                 clock: Callable[[], float] = time.monotonic):
        self.max_age = _max_age_from_env() if max_age is None else max_age
        self.idle = idle
        self.clock = clock
        self._lock = threading.Lock()
        self._current: Optional[_Shared] = None
        #: Calls that gave up waiting for their scope (LOCK_WAIT) and ran beside it.
        self.timeouts = 0

    def _join(self) -> Optional[_Shared]:
        if self.max_age <= 0:
            return None
        now = self.clock()
        with self._lock:
            cur = self._current
            if cur is None or now - cur.created > self.max_age or \
                    (cur.active == 0 and now - cur.last > self.idle):
                cur = self._current = _Shared(now)
            cur.active += 1
            cur.last = now
            return cur

    def _leave(self, cur: _Shared) -> None:
        with self._lock:
            cur.active -= 1
            cur.last = self.clock()

    def drop(self) -> None:
        """End the shared scope: the next read call starts a new one."""
        with self._lock:
            self._current = None

    @contextlib.contextmanager
    def read(self) -> Iterator[dict]:
        """The request scope of a read call: the shared one if it is still current."""
        cur = self._join()
        if cur is None:
            with request_scope() as scope:
                yield scope
            return
        outer = getattr(_held, "scope", None)
        locked = cur.lock.acquire(timeout=LOCK_WAIT)
        if not locked:
            with self._lock:
                self.timeouts += 1
            LOG.warning("a CMPI call waited %.0f s for the calls it shares its request "
                        "scope with; it runs beside them", LOCK_WAIT)
        _held.scope = cur if locked else None
        try:
            with request_scope(cur.memo) as scope:
                yield scope
        finally:
            _held.scope = outer
            if locked:
                cur.lock.release()
            self._leave(cur)

    @contextlib.contextmanager
    def write(self) -> Iterator[dict]:
        """The request scope of a write call: its own, the shared one ended around it."""
        self.drop()
        try:
            with request_scope() as scope:
                yield scope
        finally:
            self.drop()


#: The process's share, used by every CMPI MI of the adapter.
share = ReadShare()
