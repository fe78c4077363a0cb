"""What the embedded server's HTTP transport and its application exchange, and the state of
one client connection: :class:`HTTPRequest` in, :class:`HTTPResponse` out (a body, or
chunks streamed), the errors either side raises, the request body's framing checks.

The transport itself (reactor, workers, limits) is :mod:`kvm_providers.cimom.http`,
which re-exports these names.
"""

from __future__ import annotations

import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Callable, Generator, Iterable, Iterator, Optional

__all__ = ["HTTPRequest", "HTTPResponse", "Listener", "HTTPError", "StreamAborted",
           "Connection", "content_length", "iter_bytes"]


class StreamAborted(Exception):
    """Raised by a streamed response's chunks: the answer cannot be completed.

    The connection is closed without the terminating chunk, so that the client sees
    an incomplete response (not a complete-looking, shortened one).
    """


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


class Connection:
    """One client connection.  Owned by the reactor, or by one worker while it answers."""

    __slots__ = ("sock", "fd", "peer", "addr", "listener", "secure", "rbuf", "accepted",
                 "last", "started", "handshaken", "head", "body_len", "chunked", "chunk_body",
                 "chunk_need", "in_trailers", "wbuf", "close_after_write", "mask", "closed",
                 "reserved", "error")

    def __init__(self, sock, peer, listener: Listener):
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = peer
        self.addr = peer[0]
        self.listener = listener
        self.secure = listener.secure
        self.rbuf = bytearray()
        self.accepted = self.last = time.monotonic()
        self.started: Optional[float] = None     # first byte of the request being read
        self.handshaken = not listener.secure
        self.head: Optional[tuple[str, str, str, dict[str, str]]] = None
        self.body_len = 0
        self.chunked = False
        self.chunk_body = bytearray()
        self.chunk_need = -1                      # -1: waiting for a chunk-size line
        self.in_trailers = False
        self.wbuf = bytearray()                   # bytes the reactor still has to write
        self.close_after_write = False
        self.mask = 0                             # selector events registered (0: none)
        self.closed = False
        self.reserved = 0                         # bytes of max_body_buffer held for its body
        self.error: Optional[HTTPError] = None    # a request a worker found malformed

    def reset(self) -> None:
        """Forget the request just read (the connection goes on with the next one)."""
        self.started = None
        self.head = None
        self.body_len = 0
        self.chunked = False
        self.chunk_body = bytearray()
        self.chunk_need = -1
        self.in_trailers = False

    @property
    def idle(self) -> bool:
        """Between requests: nothing read of a next request, nothing to write."""
        return self.head is None and not self.rbuf and not self.wbuf and self.started is None


_CL_RE = re.compile(rb"[0-9]+")


def content_length(value: str, max_body: int) -> int:
    """The value of a Content-Length header (duplicates already joined with ', ').

    Only ASCII digits are a length: Python's int() also takes '+5', ' 5', '5_0'
    and other scripts' digits ('²' passes str.isdigit() and then fails int()),
    and a list of differing values is ambiguous framing (RFC 9110, 8.6).
    """
    values = {v.strip(" \t") for v in value.split(",")}
    if len(values) != 1:
        raise HTTPError(400, f"conflicting Content-Length values {value[:80]!r}")
    text = values.pop().encode("iso-8859-1")
    if not _CL_RE.fullmatch(text):
        raise HTTPError(400, f"invalid Content-Length {value[:80]!r}")
    text = text.lstrip(b"0") or b"0"
    if len(text) > 18:   # before int(): 4300 digits and more make int() itself fail
        raise HTTPError(413, f"request body of {text[:20].decode()}... bytes is over the "
                             f"limit of {max_body}")
    length = int(text)
    if length > max_body:
        raise HTTPError(413, f"request body of {length} bytes is over the limit of {max_body}")
    return length


def iter_bytes(parts: Iterable[str], size: int = 65536) -> Generator[bytes, None, None]:
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
