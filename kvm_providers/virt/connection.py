"""Connections: one long-lived, thread-safe libvirt connection per configured host.

A :class:`Host` owns the connection to one libvirt URI and keeps it alive:

* it is opened in the background by a supervisor thread when the host is
  configured, and reopened with exponential backoff whenever libvirt closes
  or loses it (close callback: end of file, keepalive timeout; a call failing
  with a dead connection) or stops answering (``hang_timeout``, below);
* while it is away, :meth:`Host.conn` fails *fast* with
  :class:`~.errors.HostUnavailable` naming the host: a request waits at most ``retry_wait`` seconds for a
  reconnection attempt it triggers itself (``first_wait`` for the very first
  connection after start), never for a hung hypervisor;
* libvirt connections are thread-safe, so every request thread shares the
  one connection (the Python binding releases the GIL during calls).

A hung or vanished libvirtd fails requests, never the process:

* Each connection is a :class:`Link` that counts the calls inside it.  A lost
  connection is *retired* (new requests get the next connection, a
  generation-based hand-off) and ``virConnectClose`` runs only once the last
  call has left it: closing a ``virConnect`` while another thread is inside a
  call on it frees the RPC client under that thread (a SIGSEGV when the
  daemon answers).
* :meth:`Host.conn` hands out a :class:`Guarded` proxy of the connection;
  every object it returns (domains, pools, volumes ...) is wrapped too.
  Through a daemon, each libvirt call runs on a helper thread of the link
  and the calling thread waits for it *with a deadline*: a call blocked on a
  hung daemon cannot be interrupted, but its caller can stop waiting.  When
  no call on the link has finished for ``hang_timeout`` seconds (a probe,
  ``getLibVersion`` - a high-priority RPC in libvirtd - is sent at
  half-time, so that one long call such as a managed save on a live daemon
  does not count as a hang), every waiter fails with ``HostUnavailable``
  naming the host, the link is retired and the supervisor opens a new
  connection; the calls stuck in the old one keep only its helper threads,
  and it is closed when they return.
* libvirt's client keepalive is off unless configured
  (``keepalive_interval``): with libvirt 9.0, a keepalive timeout fails only
  the one thread that holds the connection's I/O, closes the socket under
  the other threads blocked in calls on it (they stay in ``poll`` until the
  daemon answers), and the process dies with SIGSEGV when it does.  The
  deadline above does what keepalive was meant to do, without closing a
  connection that calls are inside.
* In-process drivers (``test://``, ``qemu:///embed``) cannot hang on a
  daemon: their calls run inline (and are counted all the same).

The process-wide set of hosts is a :class:`ConnectionManager`.  The
embedded server installs it at start with :func:`configure`
(``configure(config.effective_hosts())``); other hosts (sfcb, Pegasus)
get it lazily from the configuration file on first use (:func:`manager`).

libvirt's default event loop runs in one daemon thread of the process
(:func:`ensure_event_loop`); it drives keepalive and close callbacks, and is
where domain event callbacks run (:mod:`.events`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Collection, Optional, Sequence

import libvirt

from ..config import HostConfig, load_config
from .errors import DomainNotFound, HostUnavailable, LibvirtFailed, VirtError
from .link import Guarded, Link, Pending, unwrap
from .loophold import wait_unheld
from . import malloc
from .uris import in_process_uri, uri_files_local, uri_host, uri_is_local

__all__ = ["Host", "Guard", "Link", "Guarded", "Pending", "ConnectionManager", "HostUnavailable",
           "DomainNotFound", "configure", "manager", "is_configured", "shutdown",
           "ensure_event_loop", "in_process_uri", "STORAGE_GONE", "NETWORK_GONE", "ANY_ERROR",
           "uri_is_local", "uri_files_local", "uri_host",
           "unwrap"]

LOG = logging.getLogger(__name__)

# libvirt error codes that mean "the connection is gone" rather than "the call failed".
_DEAD_CODES = {
    getattr(libvirt, "VIR_ERR_SYSTEM_ERROR", 38),
    getattr(libvirt, "VIR_ERR_RPC", 39),
    getattr(libvirt, "VIR_ERR_NO_CONNECT", 5),
    getattr(libvirt, "VIR_ERR_INVALID_CONN", 19),
    getattr(libvirt, "VIR_ERR_AUTH_FAILED", 45),
}
_SYSTEM_ERROR = getattr(libvirt, "VIR_ERR_SYSTEM_ERROR", 38)
_FROM_RPC = getattr(libvirt, "VIR_FROM_RPC", 7)
_NO_DOMAIN = getattr(libvirt, "VIR_ERR_NO_DOMAIN", 42)
_NO_SUPPORT = {getattr(libvirt, "VIR_ERR_NO_SUPPORT", 3),
               getattr(libvirt, "VIR_ERR_ARGUMENT_UNSUPPORTED", 74)}

#: libvirt error codes that mean "that object is not there (any more)": a storage pool
#: or volume undefined between listing and asking, a volume of a pool that stopped.
STORAGE_GONE = frozenset({getattr(libvirt, "VIR_ERR_NO_STORAGE_POOL", 49),
                          getattr(libvirt, "VIR_ERR_NO_STORAGE_VOL", 50),
                          getattr(libvirt, "VIR_ERR_OPERATION_INVALID", 55)})
#: ... a virtual network undefined meanwhile.
NETWORK_GONE = frozenset({getattr(libvirt, "VIR_ERR_NO_NETWORK", 43)})
#: ask(..., absent=ANY_ERROR): every error of the call but a lost or hung host.
ANY_ERROR = None

# Silence libvirt's default error printing to stderr; errors reach us as exceptions.
try:
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
except Exception:  # pragma: no cover - very old bindings
    pass


# -- the event loop ------------------------------------------------------------

_loop_lock = threading.Lock()
_loop_thread: Optional[threading.Thread] = None


def ensure_event_loop() -> None:
    """Register libvirt's default event loop and run it in a daemon thread (once).

    Must run before connections are opened so that keepalive and close
    callbacks work on them.  Idempotent; safe from any thread.
    """
    global _loop_thread
    if _loop_thread is not None:
        return
    with _loop_lock:
        if _loop_thread is not None:
            return
        try:
            libvirt.virEventRegisterDefaultImpl()
        except libvirt.libvirtError as exc:  # already registered elsewhere in the process
            LOG.debug("libvirt event loop already registered: %s", exc)

        def run() -> None:
            while True:
                try:
                    wait_unheld()   # parked while runs of calls hold it (loophold)
                    libvirt.virEventRunDefaultImpl()
                except Exception:  # pragma: no cover - keep the loop alive
                    LOG.exception("libvirt event loop iteration failed")
                    time.sleep(0.1)

        t = threading.Thread(target=run, name="libvirt-event-loop", daemon=True)
        t.start()
        _loop_thread = t


# -- one host --------------------------------------------------------------------

_UP, _DOWN, _CONNECTING, _CLOSED = "up", "down", "connecting", "closed"


class Host:
    """A configured libvirt host and its supervised connection.

    Attributes used by the rest of the layer: ``label`` (the configured
    name), ``uri``, ``family`` (class family prefix: KVM, LXC, Xen),
    ``qualified`` (True when several hosts are configured: keys then carry the
    label, see :mod:`kvm_providers.virt.keys`), ``generation`` (increments at
    every new connection; per-request memos are keyed by it).

    Tuning (keyword arguments; defaults from the host's configuration):
    ``keepalive=(interval, count)`` for ``virConnectSetKeepAlive`` (interval 0:
    off, the default; see the module documentation),
    ``hang_timeout`` (seconds without any call finishing before the calls in
    flight fail and the connection is replaced), ``backoff=(min, max)`` of
    reconnection attempts, ``first_wait`` and ``retry_wait`` (how long
    :meth:`conn` waits for a connection attempt).
    """

    def __init__(self, config: HostConfig, qualified: bool = False, *,
                 keepalive: Optional[tuple[int, int]] = None,
                 hang_timeout: Optional[float] = None,
                 backoff: tuple[float, float] = (0.25, 8.0),
                 first_wait: float = 10.0, retry_wait: float = 1.0,
                 opener: Optional[Callable[[str], Any]] = None):
        self.config = config
        self.label = config.name
        self.uri = config.uri
        # Asked on every small request (lookup_with_state): parse the URI once.
        self._in_process = in_process_uri(self.uri)
        self.family = config.family
        self.qualified = qualified
        self._local = uri_is_local(config.uri)
        self._files_local = uri_files_local(config.uri)
        self.keepalive = keepalive if keepalive is not None else (
            getattr(config, "keepalive_interval", 0), getattr(config, "keepalive_count", 3))
        self.hang_timeout = float(hang_timeout if hang_timeout is not None
                                  else getattr(config, "hang_timeout", 15.0))
        self.backoff_min, self.backoff_max = backoff
        self.first_wait = first_wait
        self.retry_wait = retry_wait
        self._opener = opener or libvirt.open
        self._cond = threading.Condition()
        self._link: Optional[Link] = None
        self._state = _CONNECTING
        self._ever_up = False
        self._attempts = 0
        self._last_attempt = 0.0
        self._last_error = "not connected yet"
        self._kick = False
        self._in_flight = False
        self.min_retry = 0.5
        self._delay = self.backoff_min
        self.generation = 0
        # Set when the connection refuses secure (password-bearing) domain XML, as a
        # read-only connection does: the layer then asks for plain XML at once.
        self.xml_secure_denied = False
        self._info: dict[str, Any] = {}
        self._hooks: list[Callable[["Host", Any], None]] = []
        self._thread = threading.Thread(target=self._supervise, daemon=True,
                                        name=f"libvirt-host-{self.label}")
        self._thread.start()

    def __repr__(self) -> str:
        return f"<Host {self.label} {self.uri} {self.family} {self._state}>"

    # -- state ------------------------------------------------------------------

    @property
    def is_up(self) -> bool:
        return self._state == _UP

    @property
    def state(self) -> str:
        """'up', 'down', 'connecting' or 'closed'."""
        return self._state

    @property
    def last_error(self) -> str:
        return self._last_error

    @property
    def is_local(self) -> bool:
        """True if the host is this machine (:func:`uri_is_local`)."""
        return self._local

    @property
    def files_local(self) -> bool:
        """True if the host's paths are this machine's files, so that they can be checked
        (and sized, and their symbolic links resolved) here (:func:`uri_files_local`)."""
        return self._files_local

    @property
    def in_process(self) -> bool:
        """True if the driver runs in this process (test://, qemu:///embed): no daemon."""
        return self._in_process

    @property
    def _conn(self) -> Any:
        """The raw virConnect of the current link (None while down)."""
        link = self._link
        return link.conn if link is not None else None

    def conn(self) -> Any:
        """The live connection (a :class:`Guarded` virConnect); :class:`HostUnavailable` if none.

        Never connected yet: waits for the first attempt (at most
        ``first_wait``).  Connection lost: triggers an immediate attempt
        (unless one ran in the last ``min_retry`` seconds) and waits for it
        at most ``retry_wait`` seconds.
        """
        link = self._link
        if link is not None and self._state == _UP and link.retired is None:
            return link.proxy
        with self._cond:
            if self._state != _UP and self._attempts == 0:
                self._cond.wait_for(lambda: self._attempts > 0 or self._state in (_UP, _CLOSED),
                                    self.first_wait)
            if self._state == _DOWN:
                target = None
                if self._in_flight:
                    # An attempt that has run for retry_wait already is stuck on a
                    # hung daemon: waiting for it again would only hold the caller.
                    if time.monotonic() - self._last_attempt < self.retry_wait:
                        target = self._attempts + 1
                elif time.monotonic() - self._last_attempt >= self.min_retry:
                    self._kick = True
                    self._cond.notify_all()
                    target = self._attempts + 1
                if target is not None:
                    self._cond.wait_for(lambda: self._attempts >= target
                                        or self._state in (_UP, _CLOSED), self.retry_wait)
            if self._state == _UP and self._link is not None:
                return self._link.proxy
            if self._state == _CLOSED:
                raise HostUnavailable(self, "the connection manager was shut down")
            raise HostUnavailable(self, self._last_error)

    def lost(self, conn: Any = None, reason: str = "connection lost") -> None:
        """Mark the connection as lost (if `conn` is still the current one) and reconnect.

        `conn` may be the raw virConnect, its :class:`Guarded` proxy or its
        :class:`Link`; None means the current connection.  The connection is
        retired: closed once no thread is inside a call on it.
        """
        with self._cond:
            if self._state == _CLOSED:
                return
            link = self._link
            if conn is not None and link is not None and not (
                    conn is link or unwrap(conn) is link.conn):
                return
            if self._state == _UP:
                LOG.warning("libvirt host %s (%s): %s; reconnecting", self.label, self.uri,
                            reason)
            self._link = None
            self._state = _DOWN
            self._last_error = reason
            self._delay = self.backoff_min
            self._kick = True
            self._cond.notify_all()
        if link is not None:
            link.retire(reason)

    def _hung(self, link: Link, idle: float) -> None:
        """Nothing finished in `link` for `idle` seconds: fail its calls, use a new connection."""
        reason = (f"libvirt did not answer for {idle:.0f} s (hang_timeout "
                  f"{self.hang_timeout:g} s)")
        with self._cond:
            current = self._link is link
        if current:
            self.lost(link, reason)
        else:
            link.retire(reason)

    def close(self) -> None:
        """Stop supervising; the connection is closed once no call is inside it."""
        with self._cond:
            link, self._link = self._link, None
            self._state = _CLOSED
            self._cond.notify_all()
        if link is not None:
            link.retire("the connection manager was shut down")

    # -- connect hooks ----------------------------------------------------------

    def add_connect_hook(self, hook: Callable[["Host", Any], None]) -> None:
        """Call ``hook(host, conn)`` for every connection of this host.

        At once if the host is up, then after every reconnection, from the
        supervisor thread.  For what lives per connection, such as libvirt
        domain event callbacks.  `conn` is the raw virConnect; the hook runs
        counted in the connection.  Exceptions are logged.
        """
        with self._cond:
            self._hooks.append(hook)
            link = self._link if self._state == _UP else None
        if link is not None:
            self._run_hooks([hook], link)

    def remove_connect_hook(self, hook: Callable[["Host", Any], None]) -> None:
        with self._cond:
            if hook in self._hooks:
                self._hooks.remove(hook)

    def _run_hooks(self, hooks: list, link: Link) -> None:
        try:
            link.enter()
        except HostUnavailable:
            return   # lost already; the next connection runs the hooks
        try:
            for hook in hooks:
                try:
                    hook(self, link.conn)
                except Exception:  # pylint: disable=broad-except
                    LOG.exception("libvirt host %s: connect hook %r failed", self.label, hook)
        finally:
            link.leave()

    # -- calls ------------------------------------------------------------------

    def guard(self, what: str = "libvirt call") -> "Guard":
        """Translate libvirt errors raised inside the block (``with host.guard(what):``).

        * the domain does not exist: :class:`DomainNotFound`;
        * the connection is dead: mark it lost, raise :class:`HostUnavailable`;
        * anything else: :class:`~.errors.LibvirtFailed` naming the host and `what`.
        """
        return Guard(self, what)

    def translate(self, exc: "libvirt.libvirtError", what: str) -> VirtError:
        """The layer's error for a libvirt error of a call that did `what`."""
        code = exc.get_error_code()
        msg = exc.get_error_message() or str(exc)
        if code == _NO_DOMAIN:
            return DomainNotFound(msg)
        # The connection the call failed in (a call of an older, retired
        # connection must not condemn the current one).
        link = getattr(exc, "kvmp_link", None) or self._link
        conn = link.conn if link is not None else None
        dead = code in _DEAD_CODES
        if code == _SYSTEM_ERROR and exc.get_error_domain() != _FROM_RPC:
            # An OS error of the operation (a bridge that cannot be made, a file that
            # is missing), not of the transport: the connection may well be fine.
            dead = False
        if not dead and conn is not None:
            try:
                dead = not conn.isAlive()
            except libvirt.libvirtError:
                dead = True
        if dead or conn is None:
            if link is not None:
                self.lost(link, msg)
            return HostUnavailable(self, msg)
        return LibvirtFailed(self, what, msg, code)

    def call(self, what: str, func: Callable[..., Any], *args: Any) -> Any:
        """``func(*args)``, its libvirt errors translated as :meth:`guard` does."""
        try:
            return func(*args)
        except libvirt.libvirtError as exc:
            raise self.translate(exc, what) from None

    def ask(self, what: str, func: Callable[..., Any], *args: Any,
            absent: Optional[Collection[int]] = frozenset(), default: Any = None) -> Any:
        """``func(*args)``; `default` where libvirt's answer means "not there".

        `absent` lists the libvirt error codes that mean the thing asked about does not
        exist (any more) - :data:`STORAGE_GONE`, :data:`NETWORK_GONE`, or
        :data:`ANY_ERROR` for facts a driver may not have.  Every other error is raised as
        :meth:`guard` raises it (the host lost or hung: :class:`HostUnavailable`; else
        LibvirtFailed naming the host and `what`), never turned into an empty answer.
        """
        try:
            return func(*args)
        except libvirt.libvirtError as exc:
            err = self.translate(exc, what)
            if isinstance(err, HostUnavailable):
                raise err from None
            if absent is ANY_ERROR or exc.get_error_code() in absent:
                LOG.debug("libvirt host %s: %s: %s", self.label, what, exc)
                return default
            raise err from None

    def submit(self, func: Callable[..., Any], *args: Any, on: Any = None) -> Pending:
        """Start ``func(*args)`` on a helper thread of a connection; ``.result()`` waits for it.

        `on` is a :class:`Guarded` object whose connection runs the call (by
        default the current one).  Libvirt calls inside `func` run in that
        thread directly.  In-process drivers run `func` here, at once.  The
        caller waits with the host's deadline (:meth:`Link.wait`).

        Either way `func` runs counted in the connection (it is not closed under
        it), so it may call the raw libvirt objects behind the proxies
        (:func:`unwrap`): one operation's dependent calls in ONE hop and without
        the proxy's work per call.  A libvirt error raised out of `func` is tagged
        with its connection for :meth:`translate`.  Progress towards the deadline
        is counted when `func` returns (or when the probe sent at half the
        deadline is answered), not per call inside it.
        """
        link = on._lv_link if isinstance(on, Guarded) else None
        if link is None:
            link = self.conn()._lv_link
        if link.inline:
            # Counted in the link as the helper counts it: `func` may call the raw
            # libvirt objects (unwrap) to spare the proxy's per-call work.
            try:
                link.enter()
                try:
                    return Pending(None, value=func(*args))
                finally:
                    link.leave()
            except libvirt.libvirtError as exc:
                exc.kvmp_link = link  # type: ignore[attr-defined]
                return Pending(None, exc=exc)
            except Exception as exc:  # pylint: disable=broad-except
                return Pending(None, exc=exc)
        return Pending(link, link.submit(func, *args))

    @staticmethod
    def unsupported(exc: BaseException) -> bool:
        """True if a libvirt error says the driver does not support the call."""
        return isinstance(exc, libvirt.libvirtError) and exc.get_error_code() in _NO_SUPPORT

    def info(self, key: str, compute: Callable[[Any], Any]) -> Any:
        """A per-connection cached fact (hostname, hypervisor version ...)."""
        gen = self.generation
        hit = self._info.get(key)
        if hit is not None and hit[0] == gen:
            return hit[1]
        conn = self.conn()
        with self.guard(key):
            value = compute(conn)
        self._info[key] = (gen, value)
        return value

    def last_info(self, key: str) -> Any:
        """The value :meth:`info` last computed for `key`, of whichever connection (None if
        never): what was known of the host while it cannot be asked."""
        hit = self._info.get(key)
        return None if hit is None else hit[1]

    # -- supervision ----------------------------------------------------------

    def _dispose_later(self, link: Link) -> None:
        """Close a retired connection from a short-lived thread.

        The last user may leave on libvirt's event loop thread (close
        callback) or in a request: closing there could wait for that very
        loop, or for a daemon that does not answer.
        """
        threading.Thread(target=self._dispose, args=(link,), daemon=True,
                         name=f"libvirt-close-{self.label}").start()

    def _dispose(self, link: Link) -> None:
        link.close_helpers()
        conn = link.conn
        try:
            conn.unregisterCloseCallback()
        except Exception:  # pylint: disable=broad-except
            pass
        try:
            conn.close()
        except Exception:  # pylint: disable=broad-except
            pass
        LOG.debug("libvirt host %s: connection of generation %d closed", self.label,
                  link.generation)

    def _on_close(self, conn: Any, reason: int, _opaque: Any) -> None:
        names = {0: "error", 1: "end of file", 2: "keepalive timeout", 3: "client closed"}
        self.lost(conn, f"libvirt closed the connection ({names.get(reason, reason)})")

    def _open(self) -> Any:
        conn = self._opener(self.uri)
        if conn is None:  # old bindings return None instead of raising
            raise libvirt.libvirtError(f"cannot open {self.uri}")
        try:
            conn.registerCloseCallback(self._on_close, None)
        except (libvirt.libvirtError, AttributeError):
            pass  # drivers without close callbacks (test://): nothing to watch
        if self._in_process:
            # The driver parsed its whole node in this thread and freed the document:
            # glibc keeps it in this thread's arena, which no request's thread reuses
            # (about 200 MB at 10,000 guests; .malloc).
            malloc.trim()
        else:
            interval, count = self.keepalive or (0, 0)
            try:
                # interval 0: no keepalive messages from this side (libvirt may
                # default to sending them).
                conn.setKeepAlive(interval if interval > 0 else 0, count if interval > 0 else 0)
            except (libvirt.libvirtError, AttributeError):
                pass
        return conn

    def _supervise(self) -> None:
        while True:
            with self._cond:
                while self._state == _UP:
                    self._cond.wait()
                if self._state == _CLOSED:
                    return
                if self._attempts and not self._kick:
                    self._cond.wait_for(lambda: self._kick or self._state in (_CLOSED, _UP),
                                        self._delay)
                    if self._state in (_CLOSED, _UP):
                        continue
                self._kick = False
                self._in_flight = True
                self._last_attempt = time.monotonic()
            try:
                conn = self._open()
                error = None
            except Exception as exc:  # pylint: disable=broad-except
                conn, error = None, (exc.get_error_message()
                                     if isinstance(exc, libvirt.libvirtError)
                                     and exc.get_error_message() else str(exc))
            with self._cond:
                self._attempts += 1
                self._in_flight = False
                hooks: list = []
                link = None
                if self._state == _CLOSED:
                    if conn is not None:
                        self._dispose(Link(self, conn, self.generation + 1))
                    return
                if conn is not None:
                    hooks = list(self._hooks)
                    self.generation += 1
                    link = self._link = Link(self, conn, self.generation)
                    self._state = _UP
                    self._delay = self.backoff_min
                    if self._ever_up:
                        LOG.warning("libvirt host %s (%s): reconnected", self.label, self.uri)
                    else:
                        LOG.info("libvirt host %s (%s): connected", self.label, self.uri)
                    self._ever_up = True
                else:
                    if self._state != _DOWN or self._last_error != error:
                        LOG.warning("libvirt host %s (%s): cannot connect: %s", self.label,
                                    self.uri, error)
                    self._state = _DOWN
                    self._last_error = error or "cannot connect"
                    self._delay = min(self._delay * 2, self.backoff_max) \
                        if self._attempts > 1 else self.backoff_min
                self._cond.notify_all()
            if hooks and link is not None:
                self._run_hooks(hooks, link)


class Guard:
    """What :meth:`Host.guard` returns: a context manager that raises the layer's error
    (:meth:`Host.translate`) for a libvirt error raised inside its block.

    A small class rather than a ``contextlib.contextmanager`` generator: a guard wraps
    every libvirt read of a request (one per domain in an enumeration), and the
    generator, its context manager object and the two resumptions cost more than the
    call they guarded in an in-process driver (issue 16).
    """

    __slots__ = ("host", "what")

    def __init__(self, host: Host, what: str):
        self.host = host
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: Optional[type], exc: Optional[BaseException], _tb: Any) -> None:
        # Returns None: anything else (or nothing) passes through, never swallowed.
        if isinstance(exc, libvirt.libvirtError):
            raise self.host.translate(exc, self.what) from None


# -- the set of hosts ------------------------------------------------------------

class ConnectionManager:
    """All configured hosts of the process."""

    def __init__(self, hosts: Sequence[HostConfig], **host_options: Any):
        if not hosts:
            raise ValueError("no libvirt host configured")
        labels = [h.name for h in hosts]
        dup = {x for x in labels if labels.count(x) > 1}
        if dup:
            raise ValueError(f"host label(s) used twice: {', '.join(sorted(dup))}")
        ensure_event_loop()
        qualified = len(hosts) > 1
        self.hosts: list[Host] = [Host(h, qualified, **host_options) for h in hosts]
        self._by_label = {h.label: h for h in self.hosts}
        self._by_family: dict[str, list[Host]] = {}
        for h in self.hosts:
            self._by_family.setdefault(h.family.lower(), []).append(h)

    @property
    def qualified(self) -> bool:
        """True when several hosts are configured (keys carry host labels)."""
        return len(self.hosts) > 1

    def host(self, label: str) -> Optional[Host]:
        return self._by_label.get(label)

    def for_family(self, family: str) -> list[Host]:
        """The hosts served by class family `family` ('KVM', 'LXC', 'Xen'; any case)."""
        return self._by_family.get(family.lower(), [])

    def families(self) -> list[str]:
        """The families that have at least one host, in configuration order."""
        out: list[str] = []
        for h in self.hosts:
            if h.family not in out:
                out.append(h.family)
        return out

    def add_connect_hook(self, hook: Callable[[Host, Any], None]) -> None:
        """:meth:`Host.add_connect_hook` on every host."""
        for h in self.hosts:
            h.add_connect_hook(hook)

    def remove_connect_hook(self, hook: Callable[[Host, Any], None]) -> None:
        for h in self.hosts:
            h.remove_connect_hook(hook)

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """Wait until every host is up (tests, server start); True if they are."""
        deadline = time.monotonic() + timeout
        for h in self.hosts:
            while not h.is_up and time.monotonic() < deadline:
                time.sleep(0.01)
        return all(h.is_up for h in self.hosts)

    def close(self) -> None:
        for h in self.hosts:
            h.close()


_manager: Optional[ConnectionManager] = None
_manager_lock = threading.Lock()


def configure(hosts: Sequence[HostConfig], **host_options: Any) -> ConnectionManager:
    """Install the process-wide hosts (the embedded server calls this at start).

    Replaces (and closes) a previous configuration.  `host_options` tune the
    supervision of every host, over what the host configurations say
    (``keepalive=(interval, count)``, ``hang_timeout``, ``backoff=(min, max)``,
    ``first_wait``, ``retry_wait``).
    """
    global _manager
    new = ConnectionManager(list(hosts), **host_options)
    with _manager_lock:
        old, _manager = _manager, new
    if old is not None:
        old.close()
    return new


def manager() -> ConnectionManager:
    """The process-wide hosts; configured from the configuration file on first use."""
    global _manager
    mgr = _manager
    if mgr is not None:
        return mgr
    with _manager_lock:
        if _manager is None:
            _manager = ConnectionManager(load_config().effective_hosts())
        return _manager


def is_configured() -> bool:
    return _manager is not None


def shutdown() -> None:
    """Close every connection (server stop, provider unload)."""
    global _manager
    with _manager_lock:
        old, _manager = _manager, None
    if old is not None:
        old.close()
