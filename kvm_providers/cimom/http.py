"""HTTP/1.1 transport of the embedded server (DSP0200's HTTP part, minus CIM semantics).

One reactor thread owns the listening sockets and every *idle* keep-alive
connection; a bounded pool of worker threads serves requests.  A connection
is handed to a worker when a request starts to arrive and handed back to the
reactor when the response is written, so idle clients cost no worker.  The
reactor closes connections idle longer than ``idle_timeout``; a request whose
headers and body do not arrive within ``request_timeout`` is dropped; bodies
over ``max_body`` are refused with 413; beyond ``max_connections`` new
connections are answered 503 and closed.

The CIM application behind it sees :class:`HTTPRequest` objects and answers
:class:`HTTPResponse` objects (see :mod:`kvm_providers.cimom.app`).
"""

from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional

__all__ = ["HTTPRequest", "HTTPResponse", "HTTPServer", "Listener", "HTTPError"]

LOG = logging.getLogger("kvm_providers.cimom.http")

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 128
_REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 401: "Unauthorized",
            403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            406: "Not Acceptable", 408: "Request Timeout", 411: "Length Required",
            413: "Payload Too Large", 415: "Unsupported Media Type",
            431: "Request Header Fields Too Large", 500: "Internal Server Error",
            501: "Not Implemented", 503: "Service Unavailable",
            505: "HTTP Version Not Supported"}


class HTTPError(Exception):
    """A transport-level failure answered with `status` (and then the connection closes)."""

    def __init__(self, status: int, message: str, headers: Optional[list] = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or []


@dataclass
class HTTPRequest:
    """A request as the application sees it.  Header names are lower-case."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes
    peer: tuple
    secure: bool

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        return self.headers.get(name.lower(), default)


@dataclass
class HTTPResponse:
    """A response.  `chunks` (with `trailers`, called after the last chunk) streams a body."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    chunks: Optional[Iterator[bytes]] = None
    trailers: Optional[Callable[[], list[tuple[str, str]]]] = None
    close: bool = False


@dataclass
class Listener:
    """An address to listen on, plain or TLS."""

    host: str
    port: int
    ssl_context: Optional[ssl.SSLContext] = None

    @property
    def secure(self) -> bool:
        return self.ssl_context is not None


class _Conn:
    __slots__ = ("sock", "peer", "secure", "rbuf", "last", "handshaken", "listener")

    def __init__(self, sock, peer, listener: Listener):
        self.sock = sock
        self.peer = peer
        self.listener = listener
        self.secure = listener.secure
        self.rbuf = bytearray()
        self.last = time.monotonic()
        self.handshaken = not listener.secure

    def pending(self) -> bool:
        """Bytes already buffered (pipelined request or TLS records read ahead)."""
        if self.rbuf:
            return True
        return self.secure and self.handshaken and self.sock.pending() > 0


class HTTPServer:
    """The transport: listeners, reactor, worker pool."""

    def __init__(self, app: Callable[[HTTPRequest], HTTPResponse], listeners: list[Listener],
                 workers: int = 16, max_connections: int = 256, idle_timeout: float = 30.0,
                 request_timeout: float = 60.0, max_body: int = 16 * 1024 * 1024):
        self.app = app
        self.listeners = listeners
        self.workers = workers
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self.max_body = max_body
        self._socks: list[tuple[socket.socket, Listener]] = []
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._parked: list[_Conn] = []
        self._parked_lock = threading.Lock()
        self._idle: dict[int, _Conn] = {}
        self._nconns = 0
        self._count_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cimom-worker")
        self._running = False
        self._reactor: Optional[threading.Thread] = None
        self.addresses: list[tuple[str, int, bool]] = []

    # -- life cycle ---------------------------------------------------------

    def bind(self) -> None:
        """Open the listening sockets (port 0 picks a free port; see ``addresses``)."""
        for lst in self.listeners:
            family = socket.AF_INET6 if ":" in lst.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((lst.host, lst.port))
            sock.listen(128)
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
            self._sel.register(sock, selectors.EVENT_READ, ("listen", lst))
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
        for conn in parked + list(self._idle.values()):
            self._close(conn)
        self._idle.clear()
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

    # -- reactor --------------------------------------------------------------

    def _run(self) -> None:
        next_sweep = time.monotonic() + 1.0
        while self._running:
            try:
                events = self._sel.select(timeout=1.0)
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise
            for key, _mask in events:
                kind, data = key.data
                if kind == "listen":
                    self._accept(key.fileobj, data)
                elif kind == "wake":
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                else:
                    self._sel.unregister(key.fileobj)
                    self._idle.pop(key.fileobj.fileno(), None)
                    self._dispatch(data)
            with self._parked_lock:
                parked, self._parked = self._parked, []
            for conn in parked:
                if not self._running:
                    self._close(conn)
                    continue
                try:
                    self._sel.register(conn.sock, selectors.EVENT_READ, ("conn", conn))
                    self._idle[conn.sock.fileno()] = conn
                except (ValueError, OSError):
                    self._close(conn)
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + 1.0
                for fd, conn in list(self._idle.items()):
                    if now - conn.last > self.idle_timeout:
                        self._idle.pop(fd, None)
                        try:
                            self._sel.unregister(conn.sock)
                        except (KeyError, ValueError):
                            pass
                        self._close(conn)
        for sock, _lst in self._socks:
            try:
                self._sel.unregister(sock)
            except (KeyError, ValueError):
                pass

    def _accept(self, lsock: socket.socket, lst: Listener) -> None:
        while True:
            try:
                sock, peer = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                LOG.warning("accept failed: %s", exc)
                return
            with self._count_lock:
                over = self._nconns >= self.max_connections
                if not over:
                    self._nconns += 1
            if over:
                LOG.warning("refusing connection from %s: %d connections open", peer[0],
                            self.max_connections)
                self._refuse(sock, lst)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if lst.ssl_context is not None:
                sock.setblocking(True)
                sock = lst.ssl_context.wrap_socket(sock, server_side=True,
                                                   do_handshake_on_connect=False)
            conn = _Conn(sock, peer, lst)
            self._dispatch(conn)

    def _refuse(self, sock: socket.socket, lst: Listener) -> None:
        try:
            if lst.ssl_context is None:
                sock.setblocking(True)
                sock.settimeout(1.0)
                sock.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\nRetry-After: 1\r\n\r\n")
        except OSError:
            pass
        finally:
            sock.close()

    def _dispatch(self, conn: _Conn) -> None:
        try:
            self._pool.submit(self._serve, conn)
        except RuntimeError:  # pool shut down
            self._close(conn)

    def _park(self, conn: _Conn) -> None:
        conn.last = time.monotonic()
        with self._parked_lock:
            self._parked.append(conn)
        self._wake()

    def _close(self, conn: _Conn) -> None:
        try:
            conn.sock.close()
        except OSError:
            pass
        with self._count_lock:
            self._nconns -= 1

    # -- worker side ----------------------------------------------------------

    def _serve(self, conn: _Conn) -> None:
        sock = conn.sock
        try:
            sock.settimeout(self.request_timeout)
            if not conn.handshaken:
                sock.do_handshake()
                conn.handshaken = True
            while True:
                req = self._read_request(conn)
                if req is None:
                    self._close(conn)
                    return
                keep = self._respond(conn, req)
                if not keep or not self._running:
                    self._close(conn)
                    return
                if not conn.pending():
                    self._park(conn)
                    return
        except HTTPError as exc:
            LOG.info("HTTP %d to %s: %s", exc.status, conn.peer[0], exc)
            self._send_error(conn, exc)
            self._close(conn)
        except (socket.timeout, TimeoutError):
            LOG.info("request from %s timed out", conn.peer[0])
            self._close(conn)
        except ssl.SSLError as exc:
            LOG.info("TLS error with %s: %s", conn.peer[0], exc)
            self._close(conn)
        except (ConnectionError, OSError) as exc:
            LOG.debug("connection to %s lost: %s", conn.peer[0], exc)
            self._close(conn)
        except Exception:  # pylint: disable=broad-except
            LOG.exception("unexpected error serving %s", conn.peer[0])
            self._close(conn)

    def _recv(self, conn: _Conn, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HTTPError(408, "request not received in time")
        conn.sock.settimeout(remaining)
        try:
            data = conn.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            raise HTTPError(408, "request not received in time") from None
        if not data:
            return False
        conn.rbuf += data
        return True

    def _read_request(self, conn: _Conn) -> Optional[HTTPRequest]:
        deadline = time.monotonic() + self.request_timeout
        buf = conn.rbuf
        # Headers.
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(buf) > MAX_HEADER_BYTES:
                raise HTTPError(431, "request headers too large")
            if not self._recv(conn, deadline):
                if buf.strip():
                    raise HTTPError(400, "connection closed inside the request headers")
                return None
            buf = conn.rbuf
        head = bytes(buf[:end]).decode("iso-8859-1")
        del buf[:end + 4]
        lines = head.split("\r\n")
        while lines and not lines[0]:  # tolerate stray CRLF between requests
            lines.pop(0)
        if not lines:
            raise HTTPError(400, "empty request")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            raise HTTPError(400, f"malformed request line {lines[0][:80]!r}")
        method, target, version = parts
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise HTTPError(505, f"unsupported HTTP version {version[:20]!r}")
        headers: dict[str, str] = {}
        if len(lines) - 1 > MAX_HEADERS:
            raise HTTPError(431, "too many request headers")
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise HTTPError(400, f"malformed header line {line[:80]!r}")
            lname = name.lower()
            value = value.strip()
            headers[lname] = f"{headers[lname]}, {value}" if lname in headers else value
        # Body.
        te = headers.get("transfer-encoding", "").lower()
        if headers.get("expect", "").lower() == "100-continue" and version == "HTTP/1.1":
            cl = headers.get("content-length")
            if cl and cl.isdigit() and int(cl) > self.max_body:
                raise HTTPError(413, f"request body of {cl} bytes is over the limit "
                                     f"of {self.max_body}")
            conn.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if te:
            if te != "chunked":
                raise HTTPError(501, f"unsupported Transfer-Encoding {te!r}")
            body = self._read_chunked(conn, deadline)
        elif "content-length" in headers:
            cl = headers["content-length"]
            if not cl.isdigit():
                raise HTTPError(400, f"invalid Content-Length {cl!r}")
            length = int(cl)
            if length > self.max_body:
                raise HTTPError(413, f"request body of {length} bytes is over the limit "
                                     f"of {self.max_body}")
            while len(conn.rbuf) < length:
                if not self._recv(conn, deadline):
                    raise HTTPError(400, "connection closed inside the request body")
            body = bytes(conn.rbuf[:length])
            del conn.rbuf[:length]
        else:
            if method in ("POST", "M-POST"):
                raise HTTPError(411, "POST without Content-Length or chunked body")
            body = b""
        return HTTPRequest(method, target, version, headers, body, conn.peer, conn.secure)

    def _read_chunked(self, conn: _Conn, deadline: float) -> bytes:
        out = bytearray()
        while True:
            while b"\r\n" not in conn.rbuf:
                if len(conn.rbuf) > 4096:
                    raise HTTPError(400, "malformed chunk size line")
                if not self._recv(conn, deadline):
                    raise HTTPError(400, "connection closed inside a chunked body")
            line_end = conn.rbuf.find(b"\r\n")
            size_text = bytes(conn.rbuf[:line_end]).split(b";", 1)[0].strip()
            del conn.rbuf[:line_end + 2]
            try:
                size = int(size_text, 16)
            except ValueError:
                raise HTTPError(400, f"malformed chunk size {size_text[:20]!r}") from None
            if size == 0:
                # Trailer section: skip header lines up to the empty line.
                while True:
                    while b"\r\n" not in conn.rbuf:
                        if len(conn.rbuf) > MAX_HEADER_BYTES:
                            raise HTTPError(431, "request trailers too large")
                        if not self._recv(conn, deadline):
                            raise HTTPError(400, "connection closed inside the trailers")
                    i = conn.rbuf.find(b"\r\n")
                    line = bytes(conn.rbuf[:i])
                    del conn.rbuf[:i + 2]
                    if not line:
                        return bytes(out)
            if len(out) + size > self.max_body:
                raise HTTPError(413, f"request body over the limit of {self.max_body} bytes")
            while len(conn.rbuf) < size + 2:
                if not self._recv(conn, deadline):
                    raise HTTPError(400, "connection closed inside a chunk")
            if conn.rbuf[size:size + 2] != b"\r\n":
                raise HTTPError(400, "chunk not terminated by CRLF")
            out += conn.rbuf[:size]
            del conn.rbuf[:size + 2]

    def _respond(self, conn: _Conn, req: HTTPRequest) -> bool:
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
        sock.settimeout(self.request_timeout)
        if resp.chunks is None:
            head.append(f"Content-Length: {len(resp.body)}")
            data = ("\r\n".join(head) + "\r\n\r\n").encode("iso-8859-1")
            sock.sendall(data + resp.body if len(resp.body) < 65536 else data)
            if len(resp.body) >= 65536:
                sock.sendall(resp.body)
            return keep
        head.append("Transfer-Encoding: chunked")
        if resp.trailers is not None:
            head.append("Trailer: CIMStatusCode, CIMStatusCodeDescription")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("iso-8859-1"))
        for chunk in resp.chunks:
            if chunk:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        tail = b"0\r\n"
        if resp.trailers is not None:
            for k, v in resp.trailers():
                tail += f"{k}: {v}\r\n".encode("iso-8859-1")
        sock.sendall(tail + b"\r\n")
        return keep

    def _send_error(self, conn: _Conn, exc: HTTPError) -> None:
        body = f"{exc}\n".encode()
        head = [f"HTTP/1.1 {exc.status} {_REASONS.get(exc.status, 'Error')}",
                "Content-Type: text/plain", f"Content-Length: {len(body)}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in exc.headers]
        try:
            conn.sock.settimeout(2.0)
            conn.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        except OSError:
            pass


def iter_bytes(parts: Iterable[str], size: int = 65536) -> Iterator[bytes]:
    """Group text parts into byte chunks of about `size` bytes."""
    buf: list[str] = []
    n = 0
    for part in parts:
        buf.append(part)
        n += len(part)
        if n >= size:
            yield "".join(buf).encode("utf-8")
            buf, n = [], 0
    if buf:
        yield "".join(buf).encode("utf-8")
