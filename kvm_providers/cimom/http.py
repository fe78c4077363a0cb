"""HTTP/1.1 transport of the embedded server (DSP0200's HTTP part, minus CIM semantics).

One reactor thread (selectors) owns the listening sockets and every
connection while a request is being *read*: it accepts, runs TLS handshakes
(non-blocking), reads and parses request heads and bodies.  Only a complete
request goes to the bounded pool of worker threads, which runs the
application and writes the response, then hands a kept-alive connection back
to the reactor.  So idle, slow and trickling clients cost no worker; what
they can hold is bounded by these limits:

- ``idle_timeout``: a connection with no request under way (fresh, or
  between requests) is closed after this long;
- ``header_timeout``: a TLS handshake, and a request's head from its first
  byte, must complete within this (else 408 and close: slowloris);
- ``request_timeout``: the whole request, body included, within this;
- ``max_body`` (413), 64 KiB and 128 lines of headers (431);
- ``max_connections_per_address``: open connections of one client address
  (more are answered 503);
- ``max_requests_per_address``: requests of one client address in workers
  at once (more wait in the reactor, in order), so that one client's slow
  requests or slowly read responses cannot hold every worker;
- ``max_body_buffer``: request bodies held at once, all connections
  together (503 past it);
- ``max_connections``: all connections; at the limit the longest-idle
  connection is closed to make room, and only when none is idle is the new
  one answered 503.

A worker that has answered on a kept-alive connection waits a moment
(``LINGER``, 2 ms) for the client's next request before handing the
connection back, if the server has other workers to spare and no other
request of that client waits: a client that sends its requests one after
the other (most scripts) so skips the hand-offs to the reactor and back, a
thread wake-up each (issue 16).  A request that does not arrive whole by then
is read by the reactor as any other.

The CIM application behind it sees :class:`HTTPRequest` objects and answers
:class:`HTTPResponse` objects (see :mod:`kvm_providers.cimom.app`); those, and the
state of a connection, are in :mod:`kvm_providers.cimom.httpmsg`.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import select
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Callable, Optional

from .httpmsg import (Connection, HTTPError, HTTPRequest, HTTPResponse, Listener,
                      StreamAborted, iter_bytes)
from .httpparse import parse_request

__all__ = ["HTTPRequest", "HTTPResponse", "HTTPServer", "Listener", "HTTPError",
           "StreamAborted", "client_address", "iter_bytes"]

LOG = logging.getLogger("kvm_providers.cimom.http")

_REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 401: "Unauthorized",
            403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            406: "Not Acceptable", 408: "Request Timeout", 411: "Length Required",
            413: "Payload Too Large", 415: "Unsupported Media Type",
            431: "Request Header Fields Too Large", 500: "Internal Server Error",
            501: "Not Implemented", 503: "Service Unavailable",
            505: "HTTP Version Not Supported"}


_CLIENT: ContextVar[Optional[str]] = ContextVar("cimom_client_address", default=None)


def client_address() -> Optional[str]:
    """The address of the client whose request is being served here (None elsewhere).

    What is owned per client when there is no authenticated user (pull
    contexts) is owned by this address.
    """
    return _CLIENT.get()


#: Seconds a worker that answered on a kept-alive connection waits for its next request
#: (see the module documentation).  Short: the worker is held, idle, that long at most.
LINGER = 0.002


def _readable(sock: socket.socket, timeout: float) -> bool:
    """True if `sock` has something to read (or was closed) within `timeout` seconds."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(timeout * 1000.0))


def _raise_fd_limit(need: int) -> int:
    """Raise the soft limit of open files towards `need`; returns the soft limit now."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return need
    if soft == resource.RLIM_INFINITY or soft >= need:
        return need
    new = need if hard == resource.RLIM_INFINITY else min(need, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    except (OSError, ValueError):
        return soft
    return new


class HTTPServer:
    """The transport: listeners, the reactor (all socket reads), the worker pool."""

    def __init__(self, app: Callable[[HTTPRequest], HTTPResponse], listeners: list[Listener],
                 workers: int = 16, max_connections: int = 1024, idle_timeout: float = 30.0,
                 request_timeout: float = 60.0, max_body: int = 16 * 1024 * 1024,
                 header_timeout: float = 10.0, max_connections_per_address: int = 64,
                 max_body_buffer: int = 256 * 1024 * 1024, max_requests_per_address: int = 8):
        self.app = app
        self.listeners = listeners
        self.workers = workers
        self.max_connections = max_connections
        self.max_connections_per_address = max_connections_per_address
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self.header_timeout = min(header_timeout, request_timeout)
        self.max_body = max_body
        self.max_body_buffer = max(max_body_buffer, max_body)
        self._reserved = 0
        self._socks: list[tuple[socket.socket, Listener]] = []
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._parked: list[Connection] = []
        self._finished: list[str] = []            # addresses whose request a worker finished
        self.max_requests_per_address = max(1, max_requests_per_address)
        self._inflight: dict[str, int] = {}       # requests in workers, per address (reactor's)
        self._queued: dict[str, deque[tuple[Connection, HTTPRequest]]] = {}
        self._parked_lock = threading.Lock()
        self._conns: dict[int, Connection] = {}        # held by the reactor, by fd
        self._nconns = 0
        self._per_addr: dict[str, int] = {}
        self._count_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cimom-worker")
        self._busy = 0                            # requests in workers, all addresses
        self.linger = LINGER
        self._running = False
        self._reactor: Optional[threading.Thread] = None
        self.addresses: list[tuple[str, int, bool]] = []

    # -- life cycle ---------------------------------------------------------

    def bind(self) -> None:
        """Open the listening sockets (port 0 picks a free port; see ``addresses``)."""
        # Every connection is a file descriptor; room for the listeners, libvirt
        # connections, log and state files besides.
        need = self.max_connections + 256
        have = _raise_fd_limit(need)
        if have < need:
            self.max_connections = max(16, have - 256)
            LOG.warning("open files limited to %d: at most %d connections", have,
                        self.max_connections)
        for lst in self.listeners:
            family = socket.AF_INET6 if ":" in lst.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((lst.host, lst.port))
            sock.listen(1024)
            sock.setblocking(False)
            self._socks.append((sock, lst))
            host, port = sock.getsockname()[:2]
            self.addresses.append((host, port, lst.secure))

    def start(self) -> None:
        """Start serving (binds first if needed)."""
        if not self._socks:
            self.bind()
        self._running = True
        for sock, lst in self._socks:
            self._sel.register(sock, selectors.EVENT_READ, ("listen", (sock, lst)))
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._reactor = threading.Thread(target=self._run, name="cimom-reactor", daemon=True)
        self._reactor.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let running requests finish, close every connection."""
        if not self._running:
            return
        self._running = False
        self._wake()
        if self._reactor is not None:
            self._reactor.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._parked_lock:
            parked, self._parked = self._parked, []
        queued = [conn for q in self._queued.values() for conn, _req in q]
        self._queued.clear()
        for conn in parked + queued + list(self._conns.values()):
            self._close(conn)
        self._conns.clear()
        for sock, _lst in self._socks:
            try:
                sock.close()
            except OSError:
                pass
        self._socks.clear()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    # -- reactor: accepting, TLS handshakes, reading requests --------------------

    def _run(self) -> None:
        next_sweep = time.monotonic() + 0.5
        while self._running:
            try:
                events = self._sel.select(timeout=0.5)
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise
            for key, mask in events:
                kind, data = key.data
                try:
                    if kind == "listen":
                        self._accept(*data)
                    elif kind == "wake":
                        self._drain_wake()
                    else:
                        held = self._conns.get(data.fd)
                        if held is not None and held is data:   # not closed meanwhile
                            self._on_event(held, mask)
                except Exception:  # pylint: disable=broad-except
                    # The reactor must survive anything one connection does.
                    LOG.exception("reactor error")
                    if kind == "conn":
                        self._drop(data)
            with self._parked_lock:
                parked, self._parked = self._parked, []
                finished, self._finished = self._finished, []
            for conn in parked:
                try:
                    self._resume(conn)
                except Exception:  # pylint: disable=broad-except
                    LOG.exception("reactor error")
                    self._drop(conn)
            for addr in finished:
                self._request_done(addr)
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + 0.5
                self._sweep(now)
        for sock, _lst in self._socks:
            try:
                self._sel.unregister(sock)
            except (KeyError, ValueError):
                pass

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _accept(self, lsock: socket.socket, lst: Listener) -> None:
        for _ in range(256):          # then let the other connections have their turn
            try:
                sock, peer = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                LOG.warning("accept failed: %s", exc)
                return
            addr = peer[0]
            refusal = self._admit(addr)
            if refusal:
                LOG.warning("refusing connection from %s: %s", addr, refusal)
                self._refuse(sock, lst, refusal)
                continue
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if lst.ssl_context is not None:
                    # The handshake runs in the reactor, non-blocking (see _handshake).
                    sock = lst.ssl_context.wrap_socket(sock, server_side=True,
                                                       do_handshake_on_connect=False)
                conn = Connection(sock, peer, lst)
            except (OSError, ValueError) as exc:
                LOG.info("connection from %s failed: %s", addr, exc)
                sock.close()
                self._release(addr)
                continue
            self._conns[conn.fd] = conn
            self._watch(conn, selectors.EVENT_READ)

    def _admit(self, addr: str) -> str:
        """Count a new connection from `addr`; returns why it is refused, or ''."""
        with self._count_lock:
            if self._per_addr.get(addr, 0) >= self.max_connections_per_address:
                return (f"{self.max_connections_per_address} connections from this address "
                        "are open")
            full = self._nconns >= self.max_connections
        if full and not self._evict_idle():
            return f"{self.max_connections} connections are open"
        with self._count_lock:
            self._nconns += 1
            self._per_addr[addr] = self._per_addr.get(addr, 0) + 1
        return ""

    def _evict_idle(self) -> bool:
        """At the connection limit: close the longest-idle connection to make room.

        Idle connections (between requests, or connected and silent) cost the
        client nothing to keep, so they must not lock others out; connections
        with a request under way are never evicted.
        """
        victim: Optional[Connection] = None
        for conn in self._conns.values():
            if (conn.idle or not conn.handshaken) and \
                    (victim is None or conn.last < victim.last):
                victim = conn
        if victim is None:
            return False
        LOG.info("closing idle connection from %s to make room", victim.addr)
        self._drop(victim)
        return True

    def _refuse(self, sock: socket.socket, lst: Listener, why: str) -> None:
        try:
            if lst.ssl_context is None:   # over TLS an answer would need a handshake first
                sock.setblocking(False)
                body = f"{why}\n".encode()
                sock.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                          b"Content-Length: %d\r\nConnection: close\r\nRetry-After: 1\r\n\r\n%s"
                          % (len(body), body))
        except OSError:
            pass
        finally:
            sock.close()

    def _watch(self, conn: Connection, mask: int) -> None:
        """Have the selector report `mask` events of `conn` (0: none)."""
        if mask == conn.mask:
            return
        if conn.mask == 0:
            self._sel.register(conn.sock, mask, ("conn", conn))
        elif mask == 0:
            self._sel.unregister(conn.sock)
        else:
            self._sel.modify(conn.sock, mask, ("conn", conn))
        conn.mask = mask

    def _drop(self, conn: Connection) -> None:
        """Close a connection the reactor holds."""
        self._conns.pop(conn.fd, None)
        if conn.mask:
            try:
                self._sel.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass
            conn.mask = 0
        self._close(conn)

    def _release(self, addr: str) -> None:
        with self._count_lock:
            self._nconns -= 1
            left = self._per_addr.get(addr, 1) - 1
            if left > 0:
                self._per_addr[addr] = left
            else:
                self._per_addr.pop(addr, None)

    def _reserve(self, conn: Connection, size: int) -> None:
        """Hold `size` bytes of the body budget for `conn`'s request, or answer 503.

        The reactor reads bodies of every connection at once; this bounds the
        memory they take together (each is also at most max_body).
        """
        with self._count_lock:
            if self._reserved + size > self.max_body_buffer:
                busy = True
            else:
                busy = False
                self._reserved += size
                conn.reserved += size
        if busy:
            raise HTTPError(503, f"the server is receiving too many request bodies at once "
                                 f"(max_body_buffer {self.max_body_buffer} bytes); retry",
                            [("Retry-After", "1")])

    def _unreserve(self, conn: Connection) -> None:
        with self._count_lock:
            self._reserved -= conn.reserved
            conn.reserved = 0

    def _close(self, conn: Connection) -> None:
        if conn.closed:
            return
        conn.closed = True
        self._unreserve(conn)
        try:
            conn.sock.close()
        except OSError:
            pass
        self._release(conn.addr)

    def _on_event(self, conn: Connection, mask: int) -> None:
        if conn.wbuf and not self._flush(conn):
            return
        if conn.close_after_write:      # an error answer still being written
            self._watch(conn, selectors.EVENT_WRITE)
            return
        if not conn.handshaken:
            self._handshake(conn)
            if not conn.handshaken:
                return
        self._read(conn)

    @staticmethod
    def _interest(conn: Connection) -> int:
        """READ while a request is read, WRITE while the reactor has bytes to write."""
        mask = selectors.EVENT_WRITE if conn.wbuf else 0
        if not conn.close_after_write:
            mask |= selectors.EVENT_READ
        return mask

    def _handshake(self, conn: Connection) -> None:
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(conn, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._watch(conn, selectors.EVENT_WRITE)
            return
        except (ssl.SSLError, OSError) as exc:
            LOG.info("TLS error with %s: %s", conn.addr, exc)
            self._drop(conn)
            return
        conn.handshaken = True
        conn.last = time.monotonic()
        self._watch(conn, selectors.EVENT_READ)

    def _read(self, conn: Connection) -> None:
        """Read what has arrived; hand a complete request to a worker."""
        while True:
            try:
                req = self._parse(conn)
            except HTTPError as exc:
                self._answer_error(conn, exc)
                return
            if req is not None:
                self._watch(conn, 0)   # the worker owns the socket until it parks it
                self._conns.pop(conn.fd, None)
                self._start(conn, req)
                return
            if conn.wbuf and not self._flush(conn):   # 100 Continue
                return
            try:
                data = conn.sock.recv(65536)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                self._watch(conn, self._interest(conn))
                return
            except ssl.SSLWantWriteError:
                self._watch(conn, selectors.EVENT_WRITE)
                return
            except (ssl.SSLError, OSError) as exc:
                LOG.debug("connection to %s lost: %s", conn.addr, exc)
                self._drop(conn)
                return
            if not data:
                if conn.head is not None or conn.rbuf.strip():
                    self._answer_error(conn, HTTPError(400, "connection closed inside the "
                                                            "request"))
                else:
                    self._drop(conn)
                return
            conn.last = time.monotonic()
            conn.rbuf += data

    def _start(self, conn: Connection, req: HTTPRequest) -> None:
        """Give a complete request to a worker, unless its address has enough of them.

        A client that makes its requests slow to serve (responses it reads
        slowly, long operations) so holds at most max_requests_per_address
        workers; its further requests wait here, in order, costing no worker.
        """
        addr = conn.addr
        if self._inflight.get(addr, 0) >= self.max_requests_per_address:
            self._queued.setdefault(addr, deque()).append((conn, req))
            return
        self._inflight[addr] = self._inflight.get(addr, 0) + 1
        try:
            self._pool.submit(self._serve, conn, req)
        except RuntimeError:   # pool shut down
            self._close(conn)
            self._request_done(addr)

    def _request_done(self, addr: str) -> None:
        left = self._inflight.get(addr, 1) - 1
        if left > 0:
            self._inflight[addr] = left
        else:
            self._inflight.pop(addr, None)
        queue = self._queued.get(addr)
        if queue:
            conn, req = queue.popleft()
            if not queue:
                del self._queued[addr]
            self._start(conn, req)

    def _resume(self, conn: Connection) -> None:
        """A worker answered and keeps the connection: read the next request."""
        if not self._running:
            self._close(conn)
            return
        try:
            if conn.sock.gettimeout() != 0.0:   # a plain socket is non-blocking still
                conn.sock.setblocking(False)
        except OSError:
            self._close(conn)
            return
        conn.last = time.monotonic()
        self._conns[conn.fd] = conn
        if conn.error is not None:   # a malformed request a lingering worker read
            exc, conn.error = conn.error, None
            self._answer_error(conn, exc)
            return
        # A pipelined request may be buffered already (here or inside TLS).
        self._read(conn)

    def _sweep(self, now: float) -> None:
        """Enforce the deadlines of the connections the reactor holds."""
        for conn in list(self._conns.values()):
            if conn.wbuf:
                if now - conn.last > 5.0:        # an error answer nobody reads
                    self._drop(conn)
            elif not conn.handshaken:
                if now - conn.accepted > self.header_timeout:
                    LOG.info("TLS handshake with %s timed out", conn.addr)
                    self._drop(conn)
            elif conn.started is None:
                if now - conn.last > self.idle_timeout:
                    self._drop(conn)
            elif conn.head is None and now - conn.started > self.header_timeout:
                LOG.info("request headers from %s not received in time", conn.addr)
                self._answer_error(conn, HTTPError(408, "request headers not received in "
                                                        "time"))
            elif now - conn.started > self.request_timeout:
                LOG.info("request from %s not received in time", conn.addr)
                self._answer_error(conn, HTTPError(408, "request not received in time"))

    # -- reactor: writing (100 Continue, error answers) ----------------------------

    def _answer_error(self, conn: Connection, exc: HTTPError) -> None:
        """Answer a transport error and close (written by the reactor, non-blocking)."""
        LOG.info("HTTP %d to %s: %s", exc.status, conn.addr, exc)
        body = f"{exc}\n".encode()
        head = [f"HTTP/1.1 {exc.status} {_REASONS.get(exc.status, 'Error')}",
                "Content-Type: text/plain", f"Content-Length: {len(body)}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in exc.headers]
        conn.rbuf.clear()
        conn.reset()
        self._unreserve(conn)
        conn.wbuf += ("\r\n".join(head) + "\r\n\r\n").encode("iso-8859-1") + body
        conn.close_after_write = True
        conn.last = time.monotonic()
        if conn.handshaken:
            self._flush(conn)
        else:
            self._drop(conn)
        # The caller returns to the selector now; _flush set the interest if needed.

    def _flush(self, conn: Connection) -> bool:
        """Write what the socket takes of ``conn.wbuf``; False if the connection is gone."""
        while conn.wbuf:
            try:
                n = conn.sock.send(conn.wbuf)
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError,
                    ssl.SSLWantReadError):
                self._watch(conn, self._interest(conn))
                return True
            except (ssl.SSLError, OSError):
                self._drop(conn)
                return False
            del conn.wbuf[:n]
        if conn.close_after_write:
            self._drop(conn)
            return False
        return True

    # -- request parsing (incremental: called again as bytes arrive) ------------------

    def _parse(self, conn: Connection) -> Optional[HTTPRequest]:
        """The request complete in ``conn.rbuf``, or None while it is not
        (:func:`.httpparse.parse_request`)."""
        return parse_request(conn, self.max_body, self._reserve)

    # -- worker side: run the application, write its response -------------------------

    def _serve(self, conn: Connection, req: Optional[HTTPRequest]) -> None:
        sock = conn.sock
        token = _CLIENT.set(conn.addr)
        with self._count_lock:
            self._busy += 1
        try:
            if isinstance(sock, ssl.SSLSocket):
                # TLS: in timeout mode throughout (a non-blocking TLS write must be
                # retried as it was, which _send does not do).  A plain socket stays
                # non-blocking, as the reactor has it (_send, _linger: issue 16).
                sock.settimeout(self.request_timeout)
            while req is not None:
                if conn.wbuf:        # a 100 Continue not written yet
                    self._send(sock, conn.wbuf)
                    conn.wbuf.clear()
                keep = self._respond(conn, req)
                self._unreserve(conn)     # before the reactor may read the next request
                if not (keep and self._running):
                    self._close(conn)
                    return
                req = self._linger(conn)
            if conn.closed:
                return
            self._park(conn)
        except (socket.timeout, TimeoutError):
            LOG.info("response to %s not taken in time", conn.addr)
            self._close(conn)
        except ssl.SSLError as exc:
            LOG.info("TLS error with %s: %s", conn.addr, exc)
            self._close(conn)
        except (ConnectionError, OSError) as exc:
            LOG.debug("connection to %s lost: %s", conn.addr, exc)
            self._close(conn)
        except Exception:  # pylint: disable=broad-except
            LOG.exception("unexpected error serving %s", conn.addr)
            self._close(conn)
        finally:
            with self._count_lock:
                self._busy -= 1
            _CLIENT.reset(token)
            with self._parked_lock:
                self._finished.append(conn.addr)
            self._wake()

    def _linger(self, conn: Connection) -> Optional[HTTPRequest]:
        """The connection's next request, if it arrives whole within ``linger`` seconds;
        None to hand the connection back to the reactor (closed if the client closed).

        Only while another worker is free and no other request of the client's address
        waits for one (the reactor's queue, read here without its thread: a stale
        answer costs at most one linger), so that lingering never holds up other work.
        What was read of an incomplete request stays in the connection for the reactor;
        a malformed one is answered by the reactor (``conn.error``).
        """
        if self.linger <= 0 or self._busy >= self.workers or self._queued.get(conn.addr):
            return None
        sock = conn.sock
        plain = sock.gettimeout() == 0.0    # non-blocking (_serve): poll, then read
        deadline = time.monotonic() + self.linger
        need_read = not conn.rbuf     # a pipelined request may be there already
        while True:
            if need_read:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    return None
                if plain:
                    # One poll and one read: a socket in timeout mode would cost two
                    # ioctl(FIONBIO) for the timeouts and a poll of its own.
                    if not _readable(sock, wait):
                        return None
                    try:
                        data = sock.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue    # woken without data after all: wait again
                else:
                    sock.settimeout(wait)   # in timeout mode: no system call
                    try:
                        data = sock.recv(65536)
                    except (socket.timeout, TimeoutError, ssl.SSLWantReadError):
                        return None
                    finally:
                        sock.settimeout(self.request_timeout)
                if not data:
                    if conn.head is not None or conn.rbuf.strip():
                        conn.error = HTTPError(400, "connection closed inside the request")
                    else:
                        self._close(conn)
                    return None
                conn.last = time.monotonic()
                conn.rbuf += data
            try:
                req = self._parse(conn)
            except HTTPError as exc:
                conn.error = exc
                return None
            if req is not None or conn.wbuf:   # whole; or a 100 Continue to write
                return req
            need_read = True

    def _park(self, conn: Connection) -> None:
        with self._parked_lock:
            self._parked.append(conn)
        self._wake()

    def _respond(self, conn: Connection, req: HTTPRequest) -> bool:
        """Run the application and write its response; returns keep-alive."""
        conn_hdr = req.headers.get("connection", "").lower()
        keep = ("close" not in conn_hdr) if req.version == "HTTP/1.1" \
            else ("keep-alive" in conn_hdr)
        try:
            resp = self.app(req)
        except HTTPError as exc:
            resp = HTTPResponse(exc.status, list(exc.headers) + [("Content-Type", "text/plain")],
                                f"{exc}\n".encode(), close=exc.status >= 500)
        except Exception:  # pylint: disable=broad-except
            LOG.exception("application error")
            resp = HTTPResponse(500, [("Content-Type", "text/plain")], b"internal error\n",
                                close=True)
        keep = keep and not resp.close
        head = [f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Status')}"]
        head += [f"{k}: {v}" for k, v in resp.headers]
        if not keep:
            head.append("Connection: close")
        elif req.version == "HTTP/1.0":
            head.append("Connection: keep-alive")
        sock = conn.sock
        send = self._send
        if resp.chunks is None:
            head.append(f"Content-Length: {len(resp.body)}")
            data = ("\r\n".join(head) + "\r\n\r\n").encode("iso-8859-1")
            send(sock, data + resp.body if len(resp.body) < 65536 else data)
            if len(resp.body) >= 65536:
                send(sock, resp.body)
            return keep
        head.append("Transfer-Encoding: chunked")
        if resp.trailers is not None:
            head.append("Trailer: CIMStatusCode, CIMStatusCodeDescription")
        send(sock, ("\r\n".join(head) + "\r\n\r\n").encode("iso-8859-1"))
        try:
            for chunk in resp.chunks:
                if chunk:
                    send(sock, b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except StreamAborted as exc:
            LOG.info("response to %s aborted midway: %s", conn.addr, exc)
            return False
        finally:
            close = getattr(resp.chunks, "close", None)
            if close is not None:
                close()     # a generator's cleanup (its request scope) runs now
        tail = b"0\r\n"
        if resp.trailers is not None:
            for k, v in resp.trailers():
                tail += f"{k}: {v}\r\n".encode("iso-8859-1")
        send(sock, tail + b"\r\n")
        return keep

    def _send(self, sock: socket.socket, data: bytes | bytearray) -> None:
        """``sendall`` for a worker, within ``request_timeout``.  A non-blocking socket
        (plain TCP: how the worker keeps it) is written at once, without the poll a
        socket in timeout mode makes before each send; what it does not take at once
        (a client that reads slowly) is written in timeout mode, as before."""
        if sock.gettimeout() != 0.0:
            sock.sendall(data)
            return
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent >= len(data):
            return
        sock.settimeout(self.request_timeout)
        try:
            sock.sendall(memoryview(data)[sent:])
        finally:
            sock.setblocking(False)
