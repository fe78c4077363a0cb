"""Parsing HTTP/1.1 requests as their bytes arrive (the reactor's, and a lingering
worker's, reading of :mod:`kvm_providers.cimom.http`): the request line and headers,
Content-Length and chunked bodies, with the transport's limits on each.

Split out of http.py; the state of a request being read is in its
:class:`~.httpmsg.Connection`, so parsing resumes where it stopped whichever thread
reads the next bytes.
"""

from __future__ import annotations

import re
import time
from typing import Callable, Optional

from .httpmsg import Connection, HTTPError, HTTPRequest, content_length

__all__ = ["parse_request", "MAX_HEADER_BYTES", "MAX_HEADERS"]

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 128

_CHUNK_SIZE_RE = re.compile(rb"[0-9A-Fa-f]{1,16}")


def parse_request(conn: Connection, max_body: int,
                  reserve: Callable[[Connection, int], None]) -> Optional[HTTPRequest]:
    """The request complete in ``conn.rbuf``, or None while it is not.

    Raises HTTPError for a request that cannot be answered (400, 411, 413, 431, 501,
    505, and 503 when `reserve` refuses the body's bytes).  `reserve(conn, size)` holds
    `size` bytes of the server's body budget for the request.
    """
    buf = conn.rbuf
    if conn.head is None:
        # Tolerate stray CRLF between requests.
        n = len(buf) - len(buf.lstrip(b"\r\n"))
        if n:
            del buf[:n]
        if not buf:
            return None
        if conn.started is None:
            conn.started = time.monotonic()
        end = buf.find(b"\r\n\r\n")
        if end < 0 or end > MAX_HEADER_BYTES:
            if len(buf) > MAX_HEADER_BYTES:
                raise HTTPError(431, "request headers too large")
            return None
        head = bytes(buf[:end]).decode("iso-8859-1")
        del buf[:end + 4]
        _parse_head(conn, head, max_body, reserve)
    method, target, version, headers = conn.head  # type: ignore[misc]
    if conn.chunked:
        if not _parse_chunks(conn, max_body, reserve):
            return None
        body = bytes(conn.chunk_body)
    else:
        if len(buf) < conn.body_len:
            return None
        body = bytes(buf[:conn.body_len])
        del buf[:conn.body_len]
    conn.reset()
    return HTTPRequest(method, target, version, headers, body, conn.peer, conn.secure)

def _parse_head(conn: Connection, head: str, max_body: int,
                reserve: Callable[[Connection, int], None]) -> None:
    lines = head.split("\r\n")
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
        value = value.strip(" \t")    # only SP and HTAB are whitespace here (RFC 9110)
        headers[lname] = f"{headers[lname]}, {value}" if lname in headers else value
    te = headers.get("transfer-encoding", "").lower()
    if te:
        if te != "chunked":
            raise HTTPError(501, f"unsupported Transfer-Encoding {te[:40]!r}")
        conn.chunked = True
    elif "content-length" in headers:
        conn.body_len = content_length(headers["content-length"], max_body)
        reserve(conn, conn.body_len)
    elif method in ("POST", "M-POST"):
        raise HTTPError(411, "POST without Content-Length or chunked body")
    conn.head = (method, target, version, headers)
    if headers.get("expect", "").lower() == "100-continue" and version == "HTTP/1.1":
        # Written before the response (by the reactor, or first thing by the worker).
        conn.wbuf += b"HTTP/1.1 100 Continue\r\n\r\n"

def _parse_chunks(conn: Connection, max_body: int,
                  reserve: Callable[[Connection, int], None]) -> bool:
    """Move the chunks that have arrived into ``conn.chunk_body``; True when complete."""
    buf = conn.rbuf
    while True:
        if conn.in_trailers:
            # Trailer section: header lines up to the empty line, not used.
            i = buf.find(b"\r\n")
            if i < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    raise HTTPError(431, "request trailers too large")
                return False
            line = bytes(buf[:i])
            del buf[:i + 2]
            if not line:
                return True
            continue
        if conn.chunk_need < 0:
            i = buf.find(b"\r\n")
            if i < 0:
                if len(buf) > 4096:
                    raise HTTPError(400, "malformed chunk size line")
                return False
            size_text = bytes(buf[:i]).split(b";", 1)[0].rstrip(b" \t")  # BWS before ";"
            del buf[:i + 2]
            if not _CHUNK_SIZE_RE.fullmatch(size_text):
                raise HTTPError(400, f"malformed chunk size {size_text[:20]!r}")
            size = int(size_text, 16)
            if size == 0:
                conn.in_trailers = True
                continue
            if len(conn.chunk_body) + size > max_body:
                raise HTTPError(413, f"request body over the limit of {max_body} "
                                     "bytes")
            reserve(conn, size)
            conn.chunk_need = size
        if len(buf) < conn.chunk_need + 2:
            return False
        if buf[conn.chunk_need:conn.chunk_need + 2] != b"\r\n":
            raise HTTPError(400, "chunk not terminated by CRLF")
        conn.chunk_body += buf[:conn.chunk_need]
        del buf[:conn.chunk_need + 2]
        conn.chunk_need = -1
