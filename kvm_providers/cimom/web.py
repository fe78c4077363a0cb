"""The embedded server's web routes (issue 15): ``/metrics`` and the live view.

:class:`WebApp` sits in front of the CIM application (:class:`~.app.CIMApp`):
``GET /metrics`` (Prometheus text format), ``GET /live`` (the live page,
:mod:`.webpage`) and its JSON (``/live/api/overview``, ``/live/api/history``)
are answered here; every other request goes to the CIM application.  The same
authentication as CIM operations applies (HTTP Basic against the server's
authenticator; 401 without it).

Every request is counted and timed here, per operation (the CIMMethod header
of a CIM request, the route of a web request): ``kvmp_cimom_requests_total``
(labels operation, status) and ``kvmp_cimom_request_duration_seconds`` (a
histogram by operation, until the last byte of a streamed response is made).

The statistics come from the collector (:mod:`kvm_providers.virt.stats`, the
one the CIM metric classes read), started by the first scrape if nobody
started it yet.  The exposition is prometheus_client's (its own registry per
server, never the library's global one).
"""

from __future__ import annotations

import json
import logging
import math
import time
import urllib.parse
from typing import Any, Callable, Iterator, Optional

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from ..virt import stats
from ..virt.statsdefs import METRICS, STATE_NAMES
from .auth import BasicAuthenticator
from .http import HTTPRequest, HTTPResponse
from . import webpage

__all__ = ["WebApp", "StatsExporter"]

LOG = logging.getLogger("kvm_providers.cimom")

#: Distinct operation labels kept; past it, further names count as "other" (a client
#: choosing CIMMethod header values must not grow the metrics without bound).
MAX_OPERATIONS = 256
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0, 60.0)
_LABELS = {"host": ["host"], "domain": ["host", "domain"], "disk": ["host", "domain", "device"],
           "nic": ["host", "domain", "device"]}
#: Wait at most this long for the first sample when a scrape starts the collector.
FIRST_SAMPLE_WAIT = 10.0


def _split_key(key: str) -> list[str]:
    """'disk:vm1/vda' -> ['vm1', 'vda']; 'domain:vm1' -> ['vm1']; 'host' -> []."""
    kind, _, rest = key.partition(":")
    if kind in ("disk", "nic"):
        dom, _, dev = rest.rpartition("/")
        return [dom, dev]
    return [rest] if rest else []


def sampled() -> stats.Collector:
    """The process's collector, once it has a first round."""
    col = stats.collector()
    col.wait_round(FIRST_SAMPLE_WAIT)
    return col


class StatsExporter:
    """A prometheus_client collector: the statistics collector's last round as
    metric families (the same metrics as the DSP1053 classes, in base units)."""

    def describe(self) -> list:
        return []            # nothing until scraped (the registry must not sample at start)

    def collect(self) -> Iterator[Any]:
        col = sampled()
        fams: dict[str, Any] = {}
        for m in METRICS:
            cls = CounterMetricFamily if m.id == "cpu_time" else GaugeMetricFamily
            fams[m.id] = cls(m.prom, f"{m.help} ({m.units})", labels=_LABELS[m.kind])
        up = GaugeMetricFamily("kvmp_host_up", "1 if the last sample of the libvirt host "
                               "succeeded, else 0", labels=["host"])
        count = GaugeMetricFamily("kvmp_host_domains", "Domains of the host (last sample)",
                                  labels=["host"])
        last = GaugeMetricFamily("kvmp_host_last_sample_timestamp_seconds",
                                 "Time of the host's last successful sample", labels=["host"])
        state = GaugeMetricFamily(
            "kvmp_domain_state", "libvirt state of the domain: " + ", ".join(
                f"{k} {v}" for k, v in STATE_NAMES.items()), labels=["host", "domain"])
        for h in col.hosts():
            up.add_metric([h.label], 1.0 if h.up else 0.0)
            count.add_metric([h.label], float(h.domains))
            if h.last_sample is not None:
                last.add_metric([h.label], h.last_sample)
            for d in col.domains(h.label):
                state.add_metric([h.label, d.name], float(d.state))
            _t, latest = col.latest_all(h.label)
            for key, vals in latest.items():
                labels = [h.label] + _split_key(key)
                for mid, v in vals.items():
                    fam = fams.get(mid)
                    if fam is not None and not math.isnan(v):
                        fam.add_metric(labels, v)
        yield up
        yield count
        yield last
        yield state
        yield from fams.values()


class WebApp:
    """The HTTP application of the embedded server: web routes, then CIM."""

    def __init__(self, cim: Callable[[HTTPRequest], HTTPResponse],
                 authenticator: Optional[BasicAuthenticator] = None):
        self.cim = cim
        self.auth = authenticator
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter("kvmp_cimom_requests", "Requests answered, by operation "
                                "(CIMMethod, or the web route) and HTTP status",
                                ["operation", "status"], registry=self.registry)
        self.latency = Histogram("kvmp_cimom_request_duration_seconds",
                                 "Time from a complete request to the last byte of its "
                                 "response made, by operation", ["operation"],
                                 buckets=_BUCKETS, registry=self.registry)
        self.registry.register(StatsExporter())
        self._operations: set[str] = set()
        self._labelled: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._routes: dict[str, Callable[[HTTPRequest], HTTPResponse]] = {
            "/metrics": self._metrics,
            "/live": self._page,
            "/live/api/overview": self._overview,
            "/live/api/history": self._history,
        }

    # -- dispatch and accounting --------------------------------------------------------------

    def __call__(self, req: HTTPRequest) -> HTTPResponse:
        started = time.perf_counter()
        target = req.target
        path = target if target == "/cimom" else urllib.parse.urlsplit(target).path
        route = self._routes.get(path.rstrip("/") or "/")
        if route is not None and req.method in ("GET", "HEAD"):
            op = path.rstrip("/")
            resp = self._denied(req) or self._safely(route, req)
            if req.method == "HEAD":
                resp.body = b""
        elif route is not None:
            op = path.rstrip("/")
            resp = HTTPResponse(405, [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")],
                                f"{op} answers GET\n".encode())
        else:
            op = self._operation(req)
            resp = self.cim(req)
        return self._account(op, resp, started)

    def _operation(self, req: HTTPRequest) -> str:
        name = None
        for k, v in req.headers.items():
            if k == "cimmethod" or k.endswith("-cimmethod"):
                name = urllib.parse.unquote(v).strip()
                break
        if name is None:
            name = "batch" if any(k.endswith("cimbatch") for k in req.headers) else "none"
        if name not in self._operations:
            if len(self._operations) >= MAX_OPERATIONS or len(name) > 64 \
                    or not name.replace("_", "").isalnum():
                return "other"
            self._operations.add(name)
        return name

    def _series(self, op: str, status: int) -> tuple[Any, Any]:
        """(latency histogram, request counter) of (operation, status), kept: labels() costs
        twice the observation itself on every small request."""
        key = (op, status)
        hit = self._labelled.get(key)
        if hit is None:
            hit = (self.latency.labels(op), self.requests.labels(op, str(status)))
            if len(self._labelled) < 4 * MAX_OPERATIONS:    # operations are bounded
                self._labelled[key] = hit
        return hit

    def _account(self, op: str, resp: HTTPResponse, started: float) -> HTTPResponse:
        latency, count = self._series(op, resp.status)
        if resp.chunks is None:
            latency.observe(time.perf_counter() - started)
            count.inc()
            return resp
        inner = resp.chunks

        def timed() -> Iterator[bytes]:
            try:
                yield from inner
            finally:
                latency.observe(time.perf_counter() - started)
                count.inc()
        resp.chunks = timed()
        return resp

    def _denied(self, req: HTTPRequest) -> Optional[HTTPResponse]:
        """401 unless the request carries valid credentials (when the server has any)."""
        if self.auth is None:
            return None
        user = self.auth.check(req.header("authorization"), req.peer[0] if req.peer else None)
        if user is not None:
            return None
        return HTTPResponse(401, [("WWW-Authenticate", 'Basic realm="kvm_providers"'),
                                  ("Content-Type", "text/plain")], b"authentication required\n")

    @staticmethod
    def _safely(route: Callable[[HTTPRequest], HTTPResponse], req: HTTPRequest) -> HTTPResponse:
        try:
            return route(req)
        except ValueError as exc:
            return HTTPResponse(400, [("Content-Type", "text/plain")], f"{exc}\n".encode())
        except Exception:  # pylint: disable=broad-except
            LOG.exception("web route %s failed", req.target[:100])
            return HTTPResponse(500, [("Content-Type", "text/plain")], b"internal error\n")

    # -- routes -------------------------------------------------------------------------------

    def _metrics(self, req: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(200, [("Content-Type", CONTENT_TYPE_LATEST)],
                            generate_latest(self.registry))

    @staticmethod
    def _json(data: Any) -> HTTPResponse:
        return HTTPResponse(200, [("Content-Type", "application/json"),
                                  ("Cache-Control", "no-store")],
                            json.dumps(data, separators=(",", ":"), allow_nan=False).encode())

    def _page(self, req: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(200, [("Content-Type", "text/html; charset=utf-8"),
                                  ("Cache-Control", "no-store"),
                                  ("Content-Security-Policy",
                                   "default-src 'self'; script-src 'unsafe-inline'; "
                                   "style-src 'unsafe-inline'")],
                            webpage.PAGE.encode())

    def _overview(self, req: HTTPRequest) -> HTTPResponse:
        return self._json(webpage.overview(sampled()))

    def _history(self, req: HTTPRequest) -> HTTPResponse:
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(req.target).query)
        host = (q.get("host") or [""])[0]
        key = (q.get("key") or [""])[0]
        if not host or not key or len(key) > 1024:
            raise ValueError("history needs host= and key= (an element: host, domain:NAME)")
        return self._json(webpage.history(sampled(), host, key))
