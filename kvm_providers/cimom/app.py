"""The CIM-over-HTTP application (DSP0200): HTTP requests in, CIM-XML responses out.

Checks what DSP0200 asks of a CIM server at the HTTP level: POST or M-POST
(with its ``Man`` extension header and prefixed headers) to ``/cimom``; the
CIMOperation, CIMMethod, CIMObject (and CIMBatch) headers, which must agree
with the body; Basic authentication when configured.  Protocol errors are
answered 400 with the ``CIMError`` header; errors of the operation itself are
answered 200 with an ERROR element.  With ``TE: trailers`` the response is
streamed (chunked) and an error found midway is reported in the
CIMStatusCode/CIMStatusCodeDescription trailers.
"""

from __future__ import annotations

import logging
import re
import time
import urllib.parse
from contextlib import closing
from typing import Generator, Iterator, Optional

from pywbem import CIMError

from ..cimxml import writer as W
from ..cimxml.reader import CIMXMLError, Request, parse_request
from ..provider import request_scope, to_cim_error
from ..config import Config, ConfigError, is_privileged_uri
from .auth import BasicAuthenticator
from .dispatcher import Dispatcher
from .http import HTTPRequest, HTTPResponse, StreamAborted, iter_bytes

__all__ = ["CIMApp", "startup_checks"]

LOG = logging.getLogger("kvm_providers.cimom")
_MAN_RE = re.compile(r'^\s*"?http://www\.dmtf\.org/cim/mapping\.http/v1\.0"?\s*;\s*ns\s*=\s*'
                     r"(\d+)\s*$", re.I)
_XML_TYPES = ("application/xml", "text/xml")


def startup_checks(config: Config) -> None:
    """Refuse configurations that would hand the host to anyone who can connect.

    A privileged libvirt URI (``qemu:///system``, LXC, Xen, any remote host:
    see :func:`~kvm_providers.config.is_privileged_uri`) served without
    authentication lets every local user (and, listening elsewhere, everyone
    on the network) control the host's machines with libvirtd's rights, so
    it needs authentication, loopback included, unless ``allow_anonymous``
    (``--allow-anonymous``) or ``insecure`` says otherwise.
    """
    srv = config.server
    if srv.auth_mode() != "none" or srv.allow_anonymous or srv.insecure:
        return
    privileged = [h.uri for h in config.effective_hosts() if is_privileged_uri(h.uri)]
    if privileged:
        raise ConfigError(
            f"refusing to serve {', '.join(privileged)} without authentication: anyone who "
            "can connect (every local user, even on loopback) would control the host's "
            "virtual machines.  Configure authentication ([server] auth = \"pam\", or "
            "auth_file / --auth-file), or accept the risk with allow_anonymous = true "
            "(--allow-anonymous)")


def _cim_error_response(status: int, kind: str, message: str,
                        extra: Optional[list] = None) -> HTTPResponse:
    return HTTPResponse(status, [("CIMError", kind), ("Content-Type", "text/plain")] +
                        (extra or []), f"{message}\n".encode())


def _path_of(target: str) -> str:
    """The path of a request target (what nearly every client sends, as is)."""
    return target if target == "/cimom" else urllib.parse.urlsplit(target).path


class CIMApp:
    """Callable HTTP application serving CIM operations through a Dispatcher."""

    def __init__(self, dispatcher: Dispatcher,
                 authenticator: Optional[BasicAuthenticator] = None):
        self.dispatcher = dispatcher
        self.auth = authenticator

    def __call__(self, req: HTTPRequest) -> HTTPResponse:
        started = time.perf_counter()
        if req.method not in ("POST", "M-POST"):
            return HTTPResponse(405, [("Allow", "POST, M-POST"), ("Content-Type", "text/plain")],
                                b"CIM operations are POSTed to /cimom\n")
        path = _path_of(req.target)
        if path.rstrip("/").lower() != "/cimom":
            return HTTPResponse(404, [("Content-Type", "text/plain")],
                                f"no CIM service at {path[:100]}; use /cimom\n".encode())
        prefix = ""
        if req.method == "M-POST":
            m = _MAN_RE.match(req.header("man", "") or "")
            if not m:
                return HTTPResponse(501, [("Content-Type", "text/plain")],
                                    b"M-POST needs Man: http://www.dmtf.org/cim/mapping.http/"
                                    b"v1.0 ; ns=NN\n")
            prefix = m.group(1) + "-"

        def h(name: str) -> Optional[str]:
            return req.header(prefix + name) if prefix else req.header(name)

        user = None
        if self.auth is not None:
            # The client address feeds the per-address login throttle.
            user = self.auth.check(req.header("authorization"),
                                   req.peer[0] if req.peer else None)
            if user is None:
                return HTTPResponse(401, [("WWW-Authenticate", 'Basic realm="kvm_providers"'),
                                          ("Content-Type", "text/plain")],
                                    b"authentication required\n")
        if h("cimexport") is not None:
            return _cim_error_response(400, "unsupported-operation",
                                       "export requests go to a CIM listener, not a server")
        operation = (h("cimoperation") or "").strip()
        if operation.lower() != "methodcall":
            return _cim_error_response(400, "unsupported-operation",
                                       f"CIMOperation header must be MethodCall, "
                                       f"got {operation!r}")
        ctype = (req.header("content-type") or "application/xml").split(";")[0].strip().lower()
        if ctype not in _XML_TYPES:
            return _cim_error_response(400, "request-not-valid",
                                       f"Content-Type {ctype!r} is not application/xml")
        try:
            requests, multi = parse_request(req.body)
        except CIMXMLError as exc:
            LOG.info("bad request from %s: %s", req.peer[0], exc)
            return _cim_error_response(400, exc.kind or "request-not-valid", str(exc))
        mismatch = self._check_headers(h, requests, multi)
        if mismatch:
            LOG.info("header mismatch from %s: %s", req.peer[0], mismatch)
            return _cim_error_response(400, "header-mismatch", mismatch)

        headers = [("Content-Type", 'application/xml; charset="utf-8"')]
        if prefix:
            headers += [("Ext", ""), (f"{prefix}CIMOperation", "MethodResponse")]
        else:
            headers.append(("CIMOperation", "MethodResponse"))
        first = requests[0]
        stream = "trailers" in (req.header("te") or "").lower()
        if stream:
            status: dict = {}
            chunks = iter_bytes(self._stream(requests, multi, user, status))
            return HTTPResponse(200, headers, chunks=chunks,
                                trailers=lambda: self._trailers(status))
        if not multi and req.version == "HTTP/1.1":
            return self._chunked(first, user, headers)
        body = "".join(self._collect(requests, multi, user))
        LOG.debug("%s %s %s in %.1f ms (%d bytes)", req.peer[0], first.name, first.namespace,
                  (time.perf_counter() - started) * 1000, len(body))
        return HTTPResponse(200, headers, body.encode("utf-8"))

    def _chunked(self, req: Request, user: Optional[str],
                 headers: list[tuple[str, str]]) -> HTTPResponse:
        """One operation for a client without ``TE: trailers``, streamed once it is large.

        The answer is produced in 64 KiB chunks: an answer of one chunk goes out with
        Content-Length, as before; a larger one is sent chunked from its second chunk on
        (the first byte of a 90 MB enumeration after some 100 instances, not after all of
        them, and never the whole text in memory).  An error before that is answered
        like any failed operation (an ERROR element).  An error after it cannot be
        reported in the answer any more: without trailers DSP0200 offers no place for
        it, so the connection is closed without the terminating chunk and the client sees
        a truncated response (an incomplete chunked body), never a complete-looking one
        (docs/embedded-server.md, "HTTP").
        """
        state = {"sent": False}
        chunks = iter_bytes(self._single(req, user, state))
        try:
            ready = [next(chunks, b""), next(chunks, b"")]
        except _FailedEarly as early:
            body = "".join([W.message_head(req.msg_id, req.protocol_version), "<SIMPLERSP>",
                            _error_element(req, early.error), "</SIMPLERSP>",
                            W.message_tail()])
            return HTTPResponse(200, headers, body.encode("utf-8"))
        if not ready[1]:
            return HTTPResponse(200, headers, ready[0])
        state["sent"] = True

        def stream() -> Iterator[bytes]:
            try:
                yield from ready
                ready.clear()
                yield from chunks
            finally:
                chunks.close()      # an unfinished operation's scope ends here
        return HTTPResponse(200, headers, chunks=stream())

    def _single(self, req: Request, user: Optional[str], state: dict) -> Iterator[str]:
        """The response document of one operation, as text parts; an error midway raises
        _FailedEarly before `state["sent"]`, StreamAborted after."""
        yield W.message_head(req.msg_id, req.protocol_version)
        yield "<SIMPLERSP>"
        with request_scope():
            try:
                yield from self._one(req, user)
            except Exception as exc:  # pylint: disable=broad-except
                err = exc if isinstance(exc, CIMError) else \
                    to_cim_error(exc, LOG, f"operation {req.name}")
                if not state["sent"]:
                    raise _FailedEarly(err) from None
                LOG.warning("%s in %s failed after its answer started (closing the "
                            "connection): %s", req.name, req.namespace, _desc(err))
                raise StreamAborted(_desc(err)) from None
        yield "</SIMPLERSP>"
        yield W.message_tail()

    # -- header checks --------------------------------------------------------------

    @staticmethod
    def _check_headers(h, requests: list[Request], multi: bool) -> Optional[str]:
        if multi:
            if h("cimbatch") is None:
                return "a MULTIREQ needs the CIMBatch header"
            return None
        req = requests[0]
        method = urllib.parse.unquote(h("cimmethod") or "").strip()
        if not method:
            return "CIMMethod header missing"
        if method.lower() != req.name.lower():
            return f"CIMMethod header {method!r} does not match the request's {req.name!r}"
        obj = urllib.parse.unquote(h("cimobject") or "").strip()
        if not obj:
            return "CIMObject header missing"
        if req.error:
            return None
        if req.intrinsic:
            if obj.strip("/").lower() != req.namespace.strip("/").lower():
                return (f"CIMObject header {obj!r} does not match the request's namespace "
                        f"{req.namespace!r}")
        else:
            ns, _, rest = obj.partition(":")
            cls = re.split(r"[.=]", rest, maxsplit=1)[0] if rest else ""
            target = req.target
            if target is None:
                return "a method call without a target object"
            if ns.strip("/").lower() != (target.namespace or "").strip("/").lower() or \
                    (cls and cls.lower() != target.classname.lower()):
                return (f"CIMObject header {obj!r} does not match the request's object "
                        f"{target.namespace}:{target.classname}")
        return None

    # -- running operations ------------------------------------------------------------

    def _one(self, req: Request, user: Optional[str]) -> Generator[str, None, None]:
        """Response element parts for one request; errors become ERROR elements."""
        tag = "IMETHODRESPONSE" if req.intrinsic else "METHODRESPONSE"
        name = W.attr(req.name)
        try:
            if req.error:
                raise CIMError(req.error_status, req.error)
            parts = self.dispatcher.execute(req, user)
            first = next(parts, None)  # runs the operation up to its first output
        except CIMError as exc:
            LOG.info("%s in %s: %s", req.name, req.namespace, exc)
            yield f'<{tag} NAME="{name}">{W.error_xml(exc.status_code, _desc(exc))}</{tag}>'
            return
        except Exception as exc:  # pylint: disable=broad-except
            err = to_cim_error(exc, LOG, f"operation {req.name}")
            yield f'<{tag} NAME="{name}">{W.error_xml(err.status_code, _desc(err))}</{tag}>'
            return
        if first is not None:
            yield first
        yield from parts

    def _collect(self, requests: list[Request], multi: bool, user: Optional[str]) -> list[str]:
        out = [W.message_head(requests[0].msg_id, requests[0].protocol_version),
               "<MULTIRSP>" if multi else "<SIMPLERSP>"]
        budget = self.dispatcher.batch_budget(len(requests)) if multi else None
        for req in requests:
            with request_scope():
                parts: list[str] = []
                try:
                    if budget is not None and budget.refused is not None:
                        parts = [_error_element(req, budget.refused)]
                    else:
                        with closing(self._one(req, user)) as gen:
                            for part in gen:
                                parts.append(part)
                                if budget is not None and budget.spend(len(part)):
                                    # Over the batch's limit: drop what this one produced.
                                    parts = [_error_element(req, budget.refused)]
                                    break
                except CIMError as exc:
                    parts = [_error_element(req, exc)]
                except Exception as exc:  # pylint: disable=broad-except
                    parts = [_error_element(req, to_cim_error(exc, LOG, f"operation {req.name}"))]
            out.extend(["<SIMPLERSP>"] if multi else [])
            out.extend(parts)
            out.extend(["</SIMPLERSP>"] if multi else [])
        out.append("</MULTIRSP>" if multi else "</SIMPLERSP>")
        out.append(W.message_tail())
        return out

    def _stream(self, requests: list[Request], multi: bool, user: Optional[str],
                status: dict) -> Iterator[str]:
        yield W.message_head(requests[0].msg_id, requests[0].protocol_version)
        yield "<MULTIRSP>" if multi else "<SIMPLERSP>"
        budget = self.dispatcher.batch_budget(len(requests)) if multi else None
        for req in requests:
            with request_scope():
                if multi:
                    yield "<SIMPLERSP>"
                if budget is not None and budget.refused is not None:
                    # What was sent is sent: a streamed batch stops between operations.
                    yield _error_element(req, budget.refused)
                    yield "</SIMPLERSP>"
                    continue
                try:
                    for part in self._one(req, user):
                        if budget is not None:
                            budget.spend(len(part))
                        yield part
                except CIMError as exc:
                    status["error"] = exc
                    return
                except Exception as exc:  # pylint: disable=broad-except
                    status["error"] = to_cim_error(exc, LOG, f"operation {req.name}")
                    return
                if multi:
                    yield "</SIMPLERSP>"
        yield "</MULTIRSP>" if multi else "</SIMPLERSP>"
        yield W.message_tail()

    @staticmethod
    def _trailers(status: dict) -> list[tuple[str, str]]:
        err = status.get("error")
        if err is None:
            return [("CIMStatusCode", "0")]
        return [("CIMStatusCode", str(err.status_code)),
                ("CIMStatusCodeDescription", urllib.parse.quote(_desc(err)))]


class _FailedEarly(Exception):
    """An operation failed before any of its answer was sent: answer with its error."""

    def __init__(self, error: CIMError):
        super().__init__(str(error))
        self.error = error


def _desc(exc: CIMError) -> str:
    return exc.status_description or exc.status_code_name


def _error_element(req: Request, exc: CIMError) -> str:
    tag = "IMETHODRESPONSE" if req.intrinsic else "METHODRESPONSE"
    return f'<{tag} NAME="{W.attr(req.name)}">{W.error_xml(exc.status_code, _desc(exc))}</{tag}>'

