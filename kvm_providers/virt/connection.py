"""Connections: one long-lived, thread-safe libvirt connection per configured host.

A :class:`Host` owns the connection to one libvirt URI and keeps it alive:

* it is opened in the background by a supervisor thread when the host is
  configured, and reopened with exponential backoff whenever libvirt closes
  or loses it (close callback, keepalive timeout, a call failing with a dead
  connection);
* while it is away, :meth:`Host.conn` fails *fast* with ``CIM_ERR_FAILED``
  naming the host: a request waits at most ``retry_wait`` seconds for a
  reconnection attempt it triggers itself (``first_wait`` for the very first
  connection after start), never for a hung hypervisor;
* libvirt connections are thread-safe, so every request thread shares the
  one connection (the Python binding releases the GIL during calls).

The process-wide set of hosts is a :class:`ConnectionManager`.  The
embedded server installs it at start with :func:`configure`
(``configure(config.effective_hosts())``); other hosts (sfcb, Pegasus)
get it lazily from the configuration file on first use (:func:`manager`).

libvirt's default event loop runs in one daemon thread of the process
(:func:`ensure_event_loop`); it drives keepalive and close callbacks, and is
where domain event callbacks will run too.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Sequence

import libvirt
import pywbem

from ..config import HostConfig, load_config

__all__ = ["Host", "ConnectionManager", "HostUnavailable", "DomainNotFound", "configure",
           "manager", "is_configured", "shutdown", "ensure_event_loop"]

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

# Silence libvirt's default error printing to stderr; errors reach us as exceptions.
try:
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
except Exception:  # pragma: no cover - very old bindings
    pass


class HostUnavailable(pywbem.CIMError):
    """The libvirt host cannot be reached now (CIM_ERR_FAILED naming the host)."""

    def __init__(self, host: "Host", reason: str):
        super().__init__(pywbem.CIM_ERR_FAILED,
                         f"libvirt host {host.label!r} ({host.uri}) is not reachable: {reason}")
        self.host = host


class DomainNotFound(Exception):
    """A domain vanished (or never existed); providers turn it into NOT_FOUND or skip it."""


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
    """

    def __init__(self, config: HostConfig, qualified: bool = False, *,
                 keepalive: tuple[int, int] = (5, 3),
                 backoff: tuple[float, float] = (0.25, 8.0),
                 first_wait: float = 10.0, retry_wait: float = 1.0,
                 opener: Optional[Callable[[str], Any]] = None):
        self.config = config
        self.label = config.name
        self.uri = config.uri
        self.family = config.family
        self.qualified = qualified
        self.keepalive = keepalive
        self.backoff_min, self.backoff_max = backoff
        self.first_wait = first_wait
        self.retry_wait = retry_wait
        self._opener = opener or libvirt.open
        self._cond = threading.Condition()
        self._conn: Any = None
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

    def conn(self) -> Any:
        """The live libvirt connection; raises :class:`HostUnavailable` fast if there is none.

        Never connected yet: waits for the first attempt (at most
        ``first_wait``).  Connection lost: triggers an immediate attempt
        (unless one ran in the last ``min_retry`` seconds) and waits for it
        at most ``retry_wait`` seconds.
        """
        conn = self._conn
        if conn is not None and self._state == _UP:
            return conn
        with self._cond:
            if self._state != _UP and self._attempts == 0:
                self._cond.wait_for(lambda: self._attempts > 0 or self._state in (_UP, _CLOSED),
                                    self.first_wait)
            if self._state == _DOWN:
                target = None
                if self._in_flight:
                    target = self._attempts + 1
                elif time.monotonic() - self._last_attempt >= self.min_retry:
                    self._kick = True
                    self._cond.notify_all()
                    target = self._attempts + 1
                if target is not None:
                    self._cond.wait_for(lambda: self._attempts >= target
                                        or self._state in (_UP, _CLOSED), self.retry_wait)
            if self._state == _UP and self._conn is not None:
                return self._conn
            if self._state == _CLOSED:
                raise HostUnavailable(self, "the connection manager was shut down")
            raise HostUnavailable(self, self._last_error)

    def lost(self, conn: Any = None, reason: str = "connection lost") -> None:
        """Mark the connection as lost (if `conn` is still the current one) and reconnect."""
        with self._cond:
            if self._state == _CLOSED:
                return
            if conn is not None and conn is not self._conn:
                return
            if self._state == _UP:
                LOG.warning("libvirt host %s (%s): %s; reconnecting", self.label, self.uri,
                            reason)
            old, self._conn = self._conn, None
            self._state = _DOWN
            self._last_error = reason
            self._delay = self.backoff_min
            self._kick = True
            self._cond.notify_all()
        if old is not None:
            self._dispose_later(old)

    def close(self) -> None:
        """Stop supervising and close the connection."""
        with self._cond:
            old, self._conn = self._conn, None
            self._state = _CLOSED
            self._cond.notify_all()
        if old is not None:
            self._dispose(old)

    # -- connect hooks ----------------------------------------------------------

    def add_connect_hook(self, hook: Callable[["Host", Any], None]) -> None:
        """Call ``hook(host, conn)`` for every connection of this host.

        At once if the host is up, then after every reconnection, from the
        supervisor thread.  For what lives per connection, such as libvirt
        domain event callbacks.  Exceptions are logged.
        """
        with self._cond:
            self._hooks.append(hook)
            conn = self._conn if self._state == _UP else None
        if conn is not None:
            self._run_hooks([hook], conn)

    def remove_connect_hook(self, hook: Callable[["Host", Any], None]) -> None:
        with self._cond:
            if hook in self._hooks:
                self._hooks.remove(hook)

    def _run_hooks(self, hooks: list, conn: Any) -> None:
        for hook in hooks:
            try:
                hook(self, conn)
            except Exception:  # pylint: disable=broad-except
                LOG.exception("libvirt host %s: connect hook %r failed", self.label, hook)

    # -- calls ------------------------------------------------------------------

    @contextmanager
    def guard(self, what: str = "libvirt call") -> Iterator[None]:
        """Translate libvirt errors raised inside the block.

        * the domain does not exist: :class:`DomainNotFound`;
        * the connection is dead: mark it lost, raise :class:`HostUnavailable`;
        * anything else: ``CIM_ERR_FAILED`` naming the host and `what`.
        """
        try:
            yield
        except libvirt.libvirtError as exc:
            raise self.translate(exc, what) from None

    def translate(self, exc: "libvirt.libvirtError", what: str) -> BaseException:
        code = exc.get_error_code()
        msg = exc.get_error_message() or str(exc)
        if code == _NO_DOMAIN:
            return DomainNotFound(msg)
        conn = self._conn
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
            self.lost(conn, msg)
            return HostUnavailable(self, msg)
        return pywbem.CIMError(pywbem.CIM_ERR_FAILED,
                               f"libvirt host {self.label!r}: {what} failed: {msg}")

    def call(self, what: str, func: Callable[..., Any], *args: Any) -> Any:
        """``func(*args)`` under :meth:`guard`."""
        with self.guard(what):
            return func(*args)

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

    # -- supervision ----------------------------------------------------------

    def _dispose_later(self, conn: Any) -> None:
        """Close a lost connection from a short-lived thread.

        `lost` may run inside libvirt's close callback, on the event loop
        thread: closing the connection there would wait for that very loop.
        """
        threading.Thread(target=self._dispose, args=(conn,), daemon=True,
                         name=f"libvirt-close-{self.label}").start()

    def _dispose(self, conn: Any) -> None:
        try:
            conn.unregisterCloseCallback()
        except Exception:  # pylint: disable=broad-except
            pass
        try:
            conn.close()
        except Exception:  # pylint: disable=broad-except
            pass

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
        if self.keepalive and self.keepalive[0] > 0:
            try:
                conn.setKeepAlive(*self.keepalive)
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
                if self._state == _CLOSED:
                    if conn is not None:
                        self._dispose(conn)
                    return
                if conn is not None:
                    hooks = list(self._hooks)
                    self._conn = conn
                    self.generation += 1
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
            if hooks:
                self._run_hooks(hooks, conn)


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
    supervision (``keepalive=(interval, count)``, ``backoff=(min, max)``,
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
