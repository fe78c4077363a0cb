"""Request-scope memos shared by the CMPI calls a CIM server makes for one client request.

A CIM server splits one client request into several CMPI calls: sfcb and
OpenPegasus call the provider once per registered subclass for an
enumeration of a superclass (CIM_ResourcePool: 24 pool classes, KVM, LXC and
Xen, one provider; CIM_ResourceAllocationSettingData: eight RASD classes per
family), OpenPegasus calls an association provider once per association
class, and an Associators request may make one GetInstance up-call per
associated instance, each served by another CMPI call.  The embedded server
serves such a request in one request scope, where every domain's XML is
fetched and parsed once (:mod:`kvm_providers.virt.domain`); with one scope
per CMPI call, each subclass call would list the domains and fetch and parse
the XML of every domain again.

CMPI gives no request identity.  What the servers pass (traced in sfcb 1.3.18
and OpenPegasus 2.14.4): a new context for every call (Pegasus: one on the
calling thread's stack, so its address says nothing); sfcb adds
``CMPISessionId``, a number per client *connection* (the same for every
request on a kept-alive connection, and for the up-calls a provider makes);
sfcb issues the subclass calls one after the other (0.2-3 ms apart), Pegasus
all at once from as many threads.  So the calls of one request are
recognised by what they are (:class:`Call`): a read call joins the current
shared scope only if

* a call of the scope is running, or one ended less than ``idle`` (0.5 s) or
  as long as that call took ago (sfcb handles what a call returned before it
  makes the next call: at 1000 guests that is itself a second or more), and
  the scope is less than ``max_age`` (60 s) old -- a safety net: a scope
  cannot grow on its own anyway, every call that joins must be a part it has
  not served;
* no libvirt event has reported a change since the scope began
  (:func:`kvm_providers.virt.events.subscribe_changes`: domain lifecycle,
  devices, tunables, media; storage pool lifecycle and refresh; network
  lifecycle; a reconnection to the host) and no write ran;
* and either it is a *part* of the scope's request: the same operation with
  the same request parameters (sfcb session, namespace, property list; for
  associations the source object and filters) and a part (provider and class
  or association class) the scope has not served yet -- a CIM server never
  makes the same call twice for one request, so a repeated call is a new
  request; a GetInstance is never split, it never joins as a part --, or it
  is the up-call a call of the scope is waiting for (:func:`released`).
  A GetInstance that is no such up-call ends the shared scope and runs in a
  request scope of its own that no call joins (its own up-calls, which a
  provider of this process serves directly, :meth:`.env.CMPICIMOMHandle.GetInstance`,
  included): no shared scope's bookkeeping for the commonest small request.

A client request that repeats a request (the usual poll), or makes another
operation, or comes on another sfcb connection thus never reads from a scope
begun before it; a change another libvirt client made shows in the next
request unless that request is another part-like request of the same
operation (e.g. an enumeration of another class) within ``idle`` of the
previous one *and* libvirt has not reported the change yet.  The embedded
server reads a request in one scope too, however long it takes; so do the
calls of one request here (an enumeration of every RASD of 1000 guests takes
seconds: with a 2 s limit, as before, its later subclass calls read every
domain again).

Writes (CreateInstance, ModifyInstance, DeleteInstance, InvokeMethod) never
share: each has a scope of its own and ends the shared one before and after
it runs, so a read after a write through the providers sees the change at
once.

The calls that share a scope run one at a time (the scope's lock), as the
embedded server runs the parts of one request: Pegasus issues the subclass
calls concurrently, and concurrent calls would each compute what the first
one is computing (the memos are filled when a computation ends), and make
every SWIG call of the conversion, which releases the GIL, wait for it again
behind the other calls.  A call that waits on the CIM server (an up-call,
:func:`released`) lets the others run meanwhile: the server may serve the
up-call with another call of the same scope.

Keeping every domain's parsed XML for the later parts costs what the
embedded server never pays (it lets each document go once it has written it):
the documents of 1000 guests are tens of MB, allocated, kept, collected and
freed in bulk (in one process a lone EnumerateInstances of KVM_DiskRASD took
135 ms keeping them against 98 ms letting them go, the embedded server 68 ms;
issue 10 item 12, stop 25).  So a scope keeps them only where more parts are
expected: a scope begun by a call of the same operation and part as one
whose scope got no other part (a client enumerating KVM_DiskRASD alone, again
and again) lets its documents go as the embedded server does; if another
part joins after all, the scope keeps what is read from then on (that part
reads the documents again: one more pass, once), and the next scope begun
by that part keeps them from the start.  A part never seen first keeps them,
but for enumerations (below).

Where the parts to come are known -- those of the last request begun by the same
operation and part (:meth:`ReadShare.parts_ahead`) -- the documents are not
kept at all: the first call of a provider in the scope reads, in its one pass
over the domains, the values of the instances of its parts to come as well, and
keeps those instead (:data:`ROWS`, :func:`one_pass`; the adapter's
``enum_instances``).  The later parts make their instances from them without a
document.  At 10,000 guests the documents were 410 MB of C heap kept between
the parts and freed in bulk by the next request (sfcb's provider process 0.9 to
1.3 GB, issue 16); the values of every RASD are a fraction of that.  A part
that comes without its values (not expected, or a scope that got no pass)
reads the domains again, as a part after a lone first call does.

The first enumeration of its kind has no last request to go by
(:meth:`ReadShare.parts_so_far`: none begun by the same operation and part, or
that one got no other part).  Keeping the documents for the parts that may come
made the peak of that request (sfcb at 10,000 guests: 921 MB summed over its
processes, 410 MB of it libxml2's documents); reading ahead for every class of
the provider would read classes a lone request never asks for.  So its first
call lets its documents go as a lone call does, and the next call of the same
provider reads, in one more pass, the values of the classes the server still
asks for (:func:`classes_to_come`: those under the lowest class common to the
parts so far -- the client enumerated that class or one above it, and a server
asks for every class registered under it); the later parts make their instances
from those rows.  A request of one class reads nothing ahead; OpenPegasus' calls,
which join at once, let the first call read ahead for the parts joined by then.
The price is that one more pass, once per kind of request (stop 27).

``$KVM_PROVIDERS_CMPI_SHARE`` sets ``max_age`` (seconds, default 60; ``0``
turns sharing off: one scope per CMPI call).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterator, Optional

from .. import virt
from ..provider import request_scope
from ..virt import events
from ..virt.scope import IN_PARTS

__all__ = ["Call", "ReadShare", "share", "released", "one_pass", "rows_key", "ROWS",
           "classes_to_come", "DEFAULT_MAX_AGE", "IDLE", "LOCK_WAIT"]

LOG = logging.getLogger("kvm_providers.cmpi")

#: How long a shared scope serves new calls at most (seconds): a safety net (see the
#: module doc), above what one request of 1000 guests takes on a loaded machine.
DEFAULT_MAX_AGE = 60.0
#: A shared scope ends when no call has run for this long (seconds): a CIM server
#: issues the calls of one request back to back.
IDLE = 0.5
#: A call waits this long at most for the other calls of its scope, then runs
#: beside them (a safety valve: it never deadlocks on the scope).
LOCK_WAIT = 10.0

# The shared scope whose lock this thread holds (None: none).
_held = threading.local()

#: What ReadShare._join gives a call that shares with no other (a GetInstance that is not an
#: awaited up-call): it runs in a request scope of its own, as in a _Shared no call joins.
_OWN = object()


def _max_age_from_env() -> float:
    text = os.environ.get("KVM_PROVIDERS_CMPI_SHARE", "")
    try:
        value = float(text) if text.strip() else DEFAULT_MAX_AGE
    except ValueError:
        value = DEFAULT_MAX_AGE
    return max(0.0, value)


@dataclass(frozen=True)
class Call:
    """What a read call is, to tell the calls of one client request apart.

    ``op``: the CIM operation ("EnumerateInstances", "Associators", ...).
    ``request``: what every call of one client request has in common (sfcb's
    session, the namespace, the property list; for associations the source
    object and the filters).  ``part``: what tells the calls of one request
    apart (provider and class, provider and association class); None for an
    operation a server never splits (GetInstance).
    """

    op: str
    request: Hashable = None
    part: Hashable = None


#: Operations and first parts whose last scope's parts are remembered, at most.
_FIRSTS_KEPT = 4096

#: The first element of a scope key under which a call keeps what it read for a part to
#: come (:func:`rows_key`): the later part takes it from the scope instead of reading.
ROWS = "cmpi.sharing.rows"


def rows_key(part: Hashable) -> tuple:
    """The request-scope key of what was read ahead for `part` (a :class:`Call`'s part)."""
    return (ROWS, part)


#: Set in a scope while a call reads ahead (:func:`one_pass`): a part joining meanwhile
#: (OpenPegasus' calls come at once) does not make that pass keep its documents.
_AHEAD = "cmpi.sharing.reading-ahead"


def classes_to_come(ancestries: dict[str, tuple[str, ...]], seen: set[str]) -> list[str]:
    """The classes of `ancestries` ({folded name: its ancestry, the class first}: those a
    provider serves) that a request whose parts so far are the classes `seen` asks for:
    those under the lowest class common to `seen`.  The client enumerated that class or
    one above it (every part is under the client's class), and a server asks for each
    registered class under it.  None while `seen` is one class (maybe a lone class)."""
    if len(seen) < 2 or not seen <= ancestries.keys():
        return []
    first, *rest = [ancestries[c] for c in seen]
    top = next((c for c in first if all(c in a for a in rest)), None)
    return [c for c, a in ancestries.items() if top is not None and top in a]


@contextlib.contextmanager
def one_pass(scope: dict) -> Iterator[None]:
    """A pass over the data in `scope` that reads what the parts to come need as well: it
    lets go of the documents it reads, as the request's only pass does
    (virt.scope.IN_PARTS False meanwhile, whatever parts join)."""
    was = scope.get(IN_PARTS, False)
    scope[IN_PARTS] = False
    scope[_AHEAD] = True
    try:
        yield
    finally:
        scope.pop(_AHEAD, None)
        scope[IN_PARTS] = was


class _Shared:
    __slots__ = ("memo", "created", "last", "active", "lock", "op", "request", "parts",
                 "waiting", "span", "first", "expected", "begun")

    def __init__(self, now: float, call: Call, in_parts: bool = True,
                 expected: frozenset = frozenset()):
        # The calls of one request are parts of it: passes over the data keep what
        # they read for the other parts (virt.scope.IN_PARTS), unless no other part is
        # expected (ReadShare._expects_parts).
        self.memo: dict = {IN_PARTS: in_parts}
        #: (operation, part) of the call that began the scope (None: a call never split)
        self.first: Optional[tuple] = None if call.part is None else (call.op, call.part)
        self.created = now
        self.last = now
        self.active = 0
        self.lock = threading.Lock()
        self.op = call.op
        self.request = call.request
        self.parts: set = set()
        #: {operation: calls of this scope waiting for an up-call of it}
        self.waiting: dict[str, int] = {}
        #: How long the call that ended last took (seconds).
        self.span = 0.0
        #: The parts of the last scope begun by the same (operation, part): those expected.
        self.expected = expected
        #: The parts whose calls have run or are running (held the scope's lock).
        self.begun: set = set()


@contextlib.contextmanager
def released(upcall: Optional[str] = None) -> Iterator[None]:
    """Let the other calls of this thread's shared scope run while it waits on the server.

    `upcall`: the read operation asked of the server ("GetInstance", ...); the
    server may serve it with a CMPI call to this process, which then joins
    this scope (:meth:`ReadShare.read`).
    """
    cur = getattr(_held, "scope", None)
    if cur is None:
        yield
        return
    _held.scope = None
    if upcall:
        cur.waiting[upcall] = cur.waiting.get(upcall, 0) + 1
    cur.lock.release()
    try:
        yield
    finally:
        cur.lock.acquire()
        if upcall:
            cur.waiting[upcall] -= 1
        _held.scope = cur


class ReadShare:
    """The scope shared by the read calls of one client request (see the module doc)."""

    def __init__(self, max_age: Optional[float] = None, idle: float = IDLE,
                 clock: Callable[[], float] = time.monotonic, watch: bool = True):
        self.max_age = _max_age_from_env() if max_age is None else max_age
        self.idle = idle
        self.clock = clock
        self._lock = threading.Lock()
        self._current: Optional[_Shared] = None
        #: Calls that gave up waiting for their scope (LOCK_WAIT) and ran beside it.
        self.timeouts = 0
        #: libvirt change events (and reconnections) seen; each ended the shared scope.
        self.changes = 0
        self._watch = watch
        self._watched: Any = None
        self._subscription: Optional[events.ChangeEvents] = None
        self._watch_lock = threading.Lock()
        self._subscribing: Optional[int] = None
        #: {(operation, part): the parts of the last scope that call began} (see the
        #: module doc: whether a scope begun so keeps its documents for other parts, and
        #: which parts its first calls read ahead for).
        self._parts_after: dict[tuple, frozenset] = {}

    # -- libvirt's change events ------------------------------------------------------

    def watch(self) -> None:
        """Subscribe to the change events of the process's libvirt hosts (again if
        they were configured anew).  Nothing before the hosts are configured: the
        provider calls configure them on first use."""
        if not self._watch or not virt.is_configured():
            return
        mgr = virt.manager()
        if mgr is self._watched:
            return
        with self._watch_lock:
            if mgr is self._watched:
                return
            old, self._watched = self._subscription, mgr
            # The hosts that are up are reported as connected at once, in this
            # thread: not a reconnection (ending the scope now would only make
            # the other calls of this first request read libvirt again).
            self._subscribing = threading.get_ident()
            try:
                self._subscription = events.subscribe_changes(mgr, self._changed,
                                                              self._reconnected)
            finally:
                self._subscribing = None
        if old is not None:
            old.close()

    def close(self) -> None:
        """End the subscription (tests, shutdown)."""
        with self._watch_lock:
            sub, self._subscription, self._watched = self._subscription, None, None
        if sub is not None:
            sub.close()

    def _changed(self, ev: events.ChangeEvent) -> None:
        # libvirt's event loop thread: only drop the scope.
        LOG.debug("libvirt host %s: %s %s %s: shared read scope ended", ev.host.label,
                  ev.kind, ev.name, ev.what)
        with self._lock:
            self.changes += 1
            self._current = None

    def _reconnected(self, _host: Any) -> None:
        # Events of the time the connection was down are lost.
        if self._subscribing == threading.get_ident():
            return
        with self._lock:
            self.changes += 1
            self._current = None

    # -- scopes -------------------------------------------------------------------------

    def _fits(self, cur: _Shared, call: Call, now: float) -> bool:
        if now - cur.created > self.max_age or \
                (cur.active == 0 and now - cur.last > max(self.idle, cur.span)):
            return False
        if cur.waiting.get(call.op):
            return True         # the up-call a call of this scope waits for
        return call.part is not None and call.op == cur.op and call.request == cur.request \
            and call.part not in cur.parts

    def _join(self, call: Call) -> Any:
        if self.max_age <= 0:
            return None
        if call.part is None:
            # A call a server never splits (GetInstance) joins only as the up-call a call
            # of the current scope waits for; else it ends that scope, as a scope of its
            # own replaced it, and runs in a scope no other call can join (_OWN).
            with self._lock:
                old = self._current
                if old is None or not old.waiting.get(call.op):
                    self._current = None
                    own = True
                else:
                    own = False
            if own:
                del old                 # (what it kept freed outside the lock)
                return _OWN
        self.watch()
        now = self.clock()
        with self._lock:
            cur = self._current
            if cur is None or not self._fits(cur, call, now):
                got = None if call.part is None else \
                    self._parts_after.get((call.op, call.part))
                cur = self._current = _Shared(now, call, self._expects_parts(call),
                                              got or frozenset())
            cur.parts.add(call.part)
            if cur.first is not None:
                if len(cur.parts) > 1 and not cur.memo.get(_AHEAD):
                    # Another part after all: what is read from now on is kept.
                    cur.memo[IN_PARTS] = True
                if cur.first in self._parts_after or \
                        len(self._parts_after) < _FIRSTS_KEPT:
                    self._parts_after[cur.first] = frozenset(cur.parts)
            cur.active += 1
            cur.last = now
            return cur

    def _expects_parts(self, call: Call) -> bool:
        """Whether a scope begun by `call` is to keep what it reads for other parts: not
        if the last scope begun by the same operation and part got none (the module
        doc); a part never seen first, or a call a server never splits, keeps it."""
        if call.part is None:
            return True
        got = self._parts_after.get((call.op, call.part))
        return got is None or len(got) > 1

    def parts_ahead(self, owner: Hashable) -> list:
        """The parts the current call's shared scope is expected to get (those of the last
        request begun by the same operation and part) whose calls have not run yet and
        whose part begins with `owner` (a provider's MI name): what the call may read
        ahead for (the module doc).  Empty outside a shared scope held by this thread,
        for a scope begun by a call never split, or without such a last request."""
        cur = getattr(_held, "scope", None)
        if cur is None or not cur.expected:
            return []
        with self._lock:
            return [p for p in cur.expected if p not in cur.begun
                    and isinstance(p, tuple) and p and p[0] == owner]

    def parts_so_far(self, owner: Hashable) -> Optional[tuple[list, frozenset]]:
        """Where the current call's shared scope has no parts to come predicted (the first
        request begun by its first part, or one whose last such request got no other
        part): the parts of `owner` (a provider's MI name) the scope has got so far,
        running, ended or waiting for the scope (OpenPegasus' calls join at once), and
        the parts begun; the caller guesses the parts to come from them (the module
        doc).  None where :meth:`parts_ahead` has the last request's parts, outside a
        shared scope held by this thread, or for a scope begun by a call never split."""
        cur = getattr(_held, "scope", None)
        if cur is None or cur.first is None or len(cur.expected) > 1:
            return None
        with self._lock:
            return ([p for p in cur.parts if isinstance(p, tuple) and p and p[0] == owner],
                    frozenset(cur.begun))

    def _leave(self, cur: _Shared, began: float) -> bool:
        """The call ends; whether it ended its request (see :meth:`request_over`)."""
        with self._lock:
            cur.active -= 1
            cur.last = self.clock()
            cur.span = cur.last - began
            # Decided under the lock: of calls ending at once, one ends the request.  A
            # scope no longer current gets no new part; an up-call's part (None) comes only
            # while its caller runs.
            return cur.active == 0 and (cur is not self._current or all(
                p is None or p in cur.begun for p in cur.expected))

    @staticmethod
    def request_over() -> Optional[bool]:
        """Whether the read call this thread ran last (:meth:`read`) ended its client
        request: no other call of its shared scope running and none of the parts expected
        (those of the last request begun so, :meth:`parts_ahead`) still to come -- the
        time to give back what the request freed (:func:`.heap.trim`).  None if it had no
        shared scope (sharing off) or was asked already: a call that is a request of its
        own.  A part expected that never comes leaves its request not over: the next
        request's end counts for it."""
        over = getattr(_held, "over", None)
        _held.over = None
        return over

    def drop(self) -> None:
        """End the shared scope: the next read call starts a new one."""
        with self._lock:
            self._current = None

    @contextlib.contextmanager
    def read(self, call: Optional[Call] = None) -> Iterator[dict]:
        """The request scope of read call `call`: the shared one if `call` is part of
        its request (see the module doc), else a new shared one."""
        call = call or Call("read")
        cur = self._join(call)
        if cur is None or cur is _OWN:
            # (_OWN: what a scope of its own that no call joins is; no lock, no count)
            with request_scope(None if cur is None else {IN_PARTS: True}) as scope:
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
        if locked:
            with self._lock:
                cur.begun.add(call.part)
        began = self.clock()            # the call's own time, not its wait for the others
        try:
            with request_scope(cur.memo) as scope:
                yield scope
        finally:
            _held.scope = outer
            if locked:
                cur.lock.release()
            _held.over = self._leave(cur, began)

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
