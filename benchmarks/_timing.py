"""What the benchmarks share: raw CIM-XML requests timed on a kept-alive connection,
medians of repeated calls, and the JSON results file."""

from __future__ import annotations

import http.client
import json
import os
import statistics
import time
from typing import Any, Callable


def imethod_request(ns: str, method: str, params: str, msg_id: int = 1) -> bytes:
    """A CIM-XML intrinsic method call (`params`: its IPARAMVALUE elements)."""
    nspath = "".join(f'<NAMESPACE NAME="{p}"/>' for p in ns.split("/"))
    return (f'<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0">'
            f'<MESSAGE ID="{msg_id}" PROTOCOLVERSION="1.0"><SIMPLEREQ>'
            f'<IMETHODCALL NAME="{method}"><LOCALNAMESPACEPATH>{nspath}'
            f'</LOCALNAMESPACEPATH>{params}</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>').encode()


def post_time(host: str, port: int, ns: str, method: str, body: bytes, runs: int,
              what: str, timeout: float) -> tuple[float, bytes]:
    """Median seconds from a prepared request sent to the response's last byte (unparsed,
    over one kept-alive connection), and the last response body."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {"Content-Type": 'application/xml; charset="utf-8"',
               "CIMOperation": "MethodCall", "CIMMethod": method,
               "CIMObject": ns.replace("/", "%2F")}
    times = []
    data = b""
    for _ in range(runs):
        t0 = time.perf_counter()
        conn.request("POST", "/cimom", body, headers)
        resp = conn.getresponse()
        data = resp.read()
        times.append(time.perf_counter() - t0)
        if resp.status != 200 or b"<ERROR" in data[:3000]:
            raise RuntimeError(f"{what} failed: {resp.status} {data[:600]!r}")
    conn.close()
    return statistics.median(times), data


def median_time(func: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median seconds of `runs` calls of `func`, and the last call's result."""
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def write_json(path: str, out: Any) -> None:
    """Write the results to `path` (its directory made if need be)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
