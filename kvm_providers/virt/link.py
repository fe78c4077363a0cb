"""Calls inside one libvirt connection: :class:`Link` (a connection and the threads
inside calls on it, with their deadline), :class:`Guarded` (the proxy every libvirt
object a host hands out is wrapped in), :class:`Call` (a call handed to a helper
thread) and :class:`Pending` (a call started on a helper thread, as the layer
hands it out).

Why calls are counted, run on helper threads and waited for with a deadline:
see :mod:`kvm_providers.virt.connection` (module docstring) and
docs/libvirt-layer.md, "Connection life cycle".  Split out of connection.py
(issue 11); :class:`~.connection.Host` owns the links.
"""

from __future__ import annotations

import _thread
import logging
import queue
import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Optional

import libvirt

from .errors import HostUnavailable
from .uris import in_process_uri

if TYPE_CHECKING:
    from .connection import Host

__all__ = ["Link", "Guarded", "Call", "Pending", "unwrap", "link_of", "names_domain",
           "HELPERS_PER_LINK", "KNOWN_DOMAINS"]

LOG = logging.getLogger(__name__)

# -- calls inside a connection ----------------------------------------------------

#: Methods of libvirt objects that read fields of the Python/C object and never
#: talk to the daemon: called directly, without a helper thread.
_LOCAL_METHODS = frozenset({
    "name", "UUID", "UUIDString", "ID", "key", "getName", "connect", "c_pointer",
    "isAlive", "registerCloseCallback", "unregisterCloseCallback", "setKeepAlive",
})

#: The libvirt classes whose objects belong to a connection (wrapped by Guarded).
_LIBVIRT_CLASSES: tuple = tuple(
    getattr(libvirt, n) for n in (
        "virConnect", "virDomain", "virDomainSnapshot", "virDomainCheckpoint", "virInterface",
        "virNWFilter", "virNWFilterBinding", "virNetwork", "virNetworkPort", "virNodeDevice",
        "virSecret", "virStoragePool", "virStorageVol", "virStream")
    if hasattr(libvirt, n))

#: Helper threads per link: libvirtd serves 5 calls of one client at a time by
#: default (max_client_requests), so more would only queue in the daemon.
HELPERS_PER_LINK = 16

#: Domains a link remembers by name (:meth:`Link.remember_domain`): the oldest are
#: forgotten beyond this (each holds a reference on the connection's virConnect).
KNOWN_DOMAINS = 4096

#: Characters libvirt escapes in a domain's name in its XML: such names are not
#: remembered (:func:`names_domain` compares the text as written).
_XML_SPECIAL = frozenset("<>&'\"")


def names_domain(text: str, name: str, dom_id: int) -> bool:
    """Whether `text`, a domain's live XML as libvirt writes it (``<domain type='kvm'
    id='7'>`` for a running domain, no id for one that is not; ``<name>`` its first
    element), is that of the domain named `name` with the id `dom_id` (-1: not running):
    the check of a remembered domain (:meth:`Link.remember_domain`)."""
    end = text.find(">")
    at = text.find("<name>", end)
    if end < 0 or at < 0 or text[end + 1:at].strip():
        return False
    head = text[:end]
    i = head.find(" id='")
    try:
        xml_id = int(head[i + 5:head.index("'", i + 5)]) if i >= 0 else -1
    except ValueError:
        return False
    at += 6
    return xml_id == dom_id and text.startswith(name, at) and \
        text.startswith("</name>", at + len(name))

class _HelperFlag(threading.local):
    """Set in helper threads: libvirt calls made there run inline (the waiting thread
    already watches the deadline).  False by default as a class attribute: a
    ``getattr(local, name, False)`` that misses raises and catches an AttributeError
    inside, which cost more than the rest of a call's bookkeeping."""

    active = False


_in_helper = _HelperFlag()


def unwrap(obj: Any) -> Any:
    """The libvirt object behind a :class:`Guarded` proxy (anything else unchanged)."""
    return obj._lv_obj if isinstance(obj, Guarded) else obj


def link_of(obj: Any) -> Optional["Link"]:
    """The :class:`Link` a :class:`Guarded` proxy's calls go through (None for anything
    else): code running inside a hop (:meth:`.connection.Host.submit`) calls the raw
    objects and tags their errors and results with it."""
    return obj._lv_link if isinstance(obj, Guarded) else None


#: Result types that are never libvirt objects (most results: XML text, numbers, flags).
_PLAIN = frozenset({str, int, bool, bytes, float, type(None)})


def _wrap(value: Any, link: "Link") -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, _LIBVIRT_CLASSES):
        return Guarded(value, link)
    if isinstance(value, list):
        return [_wrap(v, link) for v in value]
    if isinstance(value, tuple):
        return tuple(_wrap(v, link) for v in value)
    return value


class Guarded:
    """A libvirt object (connection, domain, pool ...) whose calls go through its :class:`Link`.

    Attribute reads and the few local methods (name, UUIDString ...) go
    straight to the object; every other method call is counted in the link
    (so that the connection is not closed under it) and, through a daemon,
    waited for with the host's deadline.  Objects returned by a call are
    wrapped too; proxies passed as arguments are unwrapped.
    """

    __slots__ = ("_lv_obj", "_lv_link")

    def __init__(self, obj: Any, link: "Link"):
        self._lv_obj = obj
        self._lv_link = link

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._lv_obj, name)
        if name in _LOCAL_METHODS or not callable(attr):
            return attr
        # ``Link.call(link, attr, *args)`` as ONE object built in C: every libvirt call
        # through a proxy reads its method here, and a closure per read (function, cells,
        # __name__) cost more than the call's bookkeeping (issue 16).  The method is read
        # from the object at each access, so that a method patched on the class (tests
        # counting calls) is what runs.
        return partial(Link.call, self._lv_link, attr)

    def __eq__(self, other: object) -> bool:
        return self._lv_obj is unwrap(other)

    def __hash__(self) -> int:
        return id(self._lv_obj)

    def __repr__(self) -> str:
        return f"<Guarded {self._lv_obj!r} gen {self._lv_link.generation}>"


class Call:
    """A function handed to a helper thread, then its outcome.

    The waiting thread blocks on ``gate``, a bare lock held from the start and released
    when the call is done, or to wake the waiter early (its link retired): one lock per
    call instead of a Future, its condition, an Event and a done-callback, which made
    the hand-off back to the waiter cost some 20 us more (issue 16).  ``done`` tells the
    two wake-ups apart.
    """

    __slots__ = ("fn", "value", "exc", "done", "gate")

    def __init__(self, fn: Callable[[], Any]):
        self.fn: Optional[Callable[[], Any]] = fn
        self.value: Any = None
        self.exc: Optional[BaseException] = None
        self.done = False
        self.gate = _thread.allocate_lock()
        self.gate.acquire()

    def run(self) -> None:
        """Run the function (in a helper thread) and wake the waiter."""
        fn, self.fn = self.fn, None   # no reference to libvirt objects once done
        try:
            assert fn is not None
            self.value = fn()
        except BaseException as exc:  # pylint: disable=broad-except
            self.exc = exc
        self.done = True
        self.wake()

    def wake(self) -> None:
        """Let the waiter look (again): the call is done, or its link was retired."""
        try:
            self.gate.release()
        except RuntimeError:
            pass    # released already and not taken again: the waiter will look anyway

    def result(self) -> Any:
        """The outcome of a done call: its value, or its exception raised."""
        if self.exc is not None:
            raise self.exc
        return self.value


class _Helpers:
    """Daemon threads that run one link's libvirt calls.

    Not a ThreadPoolExecutor: its threads are joined at interpreter exit,
    and a thread stuck in a call to a hung daemon would then hold the
    process forever.  Threads start on demand, up to `limit`, and end when
    the link is disposed.
    """

    def __init__(self, name: str, limit: int):
        self._name = name
        self._limit = limit
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._queued = 0
        self._closed = False

    def submit(self, fn: Callable[[], Any]) -> Call:
        call = Call(fn)
        with self._lock:
            if self._closed:
                raise RuntimeError("helpers closed")
            self._queue.put(call)
            self._queued += 1
            # More work waiting than idle threads (a burst of XML fetches): one more.
            if self._queued > self._idle and self._threads < self._limit:
                self._threads += 1
                threading.Thread(target=self._work, daemon=True,
                                 name=f"{self._name}-{self._threads}").start()
        return call

    def close(self) -> None:
        with self._lock:
            self._closed = True
            n = self._threads
        for _ in range(n):
            self._queue.put(None)

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._queue.get()
            with self._lock:
                self._idle -= 1
                if item is not None:
                    self._queued -= 1
            if item is None:
                return
            item.run()
            del item    # drop references to libvirt objects before waiting again


class Link:
    """One libvirt connection of a host and the calls inside it.

    ``users`` counts the threads inside a call on the connection (helpers,
    inline callers, connect hooks, probes).  Once retired (lost, hung, host
    closed) a link admits no new call, and its ``virConnect`` is closed when
    ``users`` drops to 0 - never while a thread is inside it.
    """

    def __init__(self, host: "Host", conn: Any, generation: int):
        self.host = host
        self.conn = conn
        self.generation = generation
        self.inline = in_process_uri(host.uri)
        self.lock = threading.Lock()
        # One item per thread inside a call (see enter): a list, whose append and pop
        # are atomic under the GIL, so that counting a call takes no lock.
        self._inside: list[None] = []
        self.last_progress = time.monotonic()
        self.retired: Optional[str] = None
        self.disposed = False
        self.probing = False
        self.waiters: set[Call] = set()
        # Raw virDomain objects a lookup by name returned on this connection, by name:
        # a later read of the same domain asks the daemon by the object's UUID without
        # looking it up again, and checks what it reads (see remember_domain).
        self.known: dict[str, Any] = {}
        self.proxy = Guarded(conn, self)
        self._helpers: Optional[_Helpers] = None

    def __repr__(self) -> str:
        return (f"<Link {self.host.label} gen {self.generation} users {self.users}"
                f"{' retired' if self.retired else ''}>")

    # -- counting ---------------------------------------------------------------
    #
    # Every libvirt call is counted (enter, leave), so the common case takes no lock
    # (issue 16: two lock round trips per call were a tenth of an in-process call's
    # bookkeeping).  What the lock guarded - the connection is never closed while a
    # thread is inside, and closed exactly once - holds by the order of the steps:
    # enter counts itself BEFORE it looks at ``retired``, and retire() sets ``retired``
    # BEFORE it looks at the count (each step atomic under the GIL), so either retire()
    # sees the new user (and leaves the closing to the last leave) or the new user sees
    # ``retired`` and backs out through leave.  Who closes is decided under the lock,
    # with ``disposed``, only once the link is retired.

    @property
    def users(self) -> int:
        """The threads inside a call on the connection now."""
        return len(self._inside)

    def enter(self, admit_retired: bool = False) -> None:
        """One more thread inside the connection; HostUnavailable if it is retired."""
        inside = self._inside
        if not inside:
            self.last_progress = time.monotonic()   # a busy period starts
        inside.append(None)
        if self.retired is not None and not admit_retired:
            self.leave()
            raise HostUnavailable(self.host, self.retired)

    def leave(self) -> None:
        """A thread left the connection (its call finished: progress)."""
        self._inside.pop()
        self.last_progress = time.monotonic()
        if self.retired is not None:
            self._dispose_if_unused()

    def retire(self, reason: str) -> None:
        """No new calls; close the connection once the last one has left."""
        with self.lock:
            if self.retired is None:
                self.retired = reason
            waiters = list(self.waiters)
        self.known = {}     # no domain object keeps the retired connection open
        for call in waiters:
            call.wake()
        self._dispose_if_unused()

    def _dispose_if_unused(self) -> None:
        """Close the (retired) connection if no thread is inside it; once."""
        with self.lock:
            dispose = not self._inside and not self.disposed
            if dispose:
                self.disposed = True
        if dispose:
            self.host._dispose_later(self)

    # -- domains known by name ----------------------------------------------------------

    def remember_domain(self, name: str, dom: Any) -> None:
        """Keep `dom` (a raw virDomain that ``lookupByName(name)`` returned on this link)
        for :meth:`known_domain`.

        A call on a remembered object names the domain by its UUID, so the daemon answers
        for that domain or fails with VIR_ERR_NO_DOMAIN; the object's name and id are
        those of the lookup, and may be stale since (a rename, a start or stop): its user
        checks them against what the call read (:func:`.domain.lookup_with_xml` against
        the XML's name and id) and looks the domain up again when they differ (issue 16:
        the lookup was half of an AssociatorNames' calls)."""
        if self.retired is not None or _XML_SPECIAL.intersection(name):
            return      # retired; or a name its XML writes otherwise (names_domain)
        known = self.known
        if name not in known and len(known) >= KNOWN_DOMAINS:
            try:
                del known[next(iter(known))]    # the oldest: dicts keep insertion order
            except (StopIteration, KeyError, RuntimeError):
                pass    # changed by another thread meanwhile: nothing to make room for
        known[name] = dom
        if self.retired is not None:
            self.known = {}     # retired meanwhile (retire() may have missed this one)

    def known_domain(self, name: str) -> Any:
        """The raw virDomain remembered for `name` (:meth:`remember_domain`), or None."""
        return self.known.get(name)

    def forget_domain(self, name: str) -> None:
        """Forget `name`'s object: it no longer names the domain (or its read failed)."""
        self.known.pop(name, None)

    # -- calls --------------------------------------------------------------------

    def call(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``func(*args, **kwargs)`` inside the connection; results wrapped (see Guarded).

        Every method call through a :class:`Guarded` proxy runs here, so the common case
        (no proxy among the arguments, a plain result) builds nothing on its way.
        """
        # Proxies passed as arguments are rare (a domain for a migration, a volume for
        # a clone): checked in C (no generator) and without building anything when
        # there are none.
        if args and Guarded in map(type, args):
            args = tuple(unwrap(a) for a in args)
        if kwargs:
            kwargs = {k: unwrap(v) for k, v in kwargs.items()}
        if self.inline or _in_helper.active:
            self.enter()
            try:
                result = func(*args, **kwargs)
            except libvirt.libvirtError as exc:
                exc.kvmp_link = self  # type: ignore[attr-defined]
                raise
            finally:
                self.leave()
        else:
            result = self.wait(self.submit(func, *args, **kwargs))
        return result if type(result) in _PLAIN else _wrap(result, self)

    def submit(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Call:
        """Run ``func(*args, **kwargs)`` on a helper thread of the link; its :class:`Call`."""
        with self.lock:
            if self.retired is not None:
                raise HostUnavailable(self.host, self.retired)
            if self._helpers is None:
                self._helpers = _Helpers(f"libvirt-{self.host.label}-{self.generation}",
                                         HELPERS_PER_LINK)
            helpers = self._helpers

        def run() -> Any:
            self.enter()
            _in_helper.active = True
            try:
                return func(*args, **kwargs)
            except libvirt.libvirtError as exc:
                exc.kvmp_link = self  # type: ignore[attr-defined]
                raise
            finally:
                _in_helper.active = False
                self.leave()
        try:
            return helpers.submit(run)
        except RuntimeError:
            raise HostUnavailable(self.host, self.retired or "connection closed") from None

    def wait(self, call: Call) -> Any:
        """The result of a submitted call, waited for with the host's deadline.

        Fails with HostUnavailable when the link is retired meanwhile, or
        when nothing inside it has finished for ``hang_timeout`` seconds
        (counted from the later of this call's start and the last finished
        call); a probe is sent at half-time so that a slow call on a live
        daemon does not look like a hang.
        """
        if call.done:
            return call.result()
        hang = self.host.hang_timeout
        started = time.monotonic()
        with self.lock:
            self.waiters.add(call)
        try:
            while True:
                if call.done:
                    return call.result()
                if self.retired is not None:
                    raise HostUnavailable(self.host, self.retired)
                now = time.monotonic()
                idle = now - max(self.last_progress, started)
                if idle >= hang:
                    self.host._hung(self, idle)
                    continue   # retired now: raises above (unless the call just finished)
                if idle >= hang / 2:
                    self._probe()
                    call.gate.acquire(timeout=hang - idle)
                else:
                    call.gate.acquire(timeout=hang / 2 - idle)
        finally:
            with self.lock:
                self.waiters.discard(call)

    def _probe(self) -> None:
        """Ask the daemon something cheap (once at a time): an answer is progress."""
        with self.lock:
            if self.probing or self.retired is not None:
                return
            self.probing = True

        def probe() -> None:
            try:
                self.enter()
            except HostUnavailable:
                return
            try:
                self.conn.getLibVersion()   # high priority in libvirtd: answered even when busy
            except Exception:  # pylint: disable=broad-except
                pass   # an error is an answer too; a dead connection is reported elsewhere
            finally:
                self.probing = False
                self.leave()
        threading.Thread(target=probe, daemon=True,
                         name=f"libvirt-probe-{self.host.label}").start()

    def close_helpers(self) -> None:
        with self.lock:
            helpers, self._helpers = self._helpers, None
        if helpers is not None:
            helpers.close()


class Pending:
    """A libvirt call running on a helper thread (:meth:`Host.submit`)."""

    __slots__ = ("_link", "_fut", "_value", "_exc")

    def __init__(self, link: Optional[Link], fut: Optional[Call] = None,
                 value: Any = None, exc: Optional[BaseException] = None):
        self._link, self._fut, self._value, self._exc = link, fut, value, exc

    def result(self) -> Any:
        """The call's result (or its exception), waited for with the host's deadline."""
        if self._fut is not None and self._link is not None:
            return self._link.wait(self._fut)
        if self._exc is not None:
            raise self._exc
        return self._value
