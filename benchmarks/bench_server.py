"""Benchmark of the embedded server itself (issue 2): throughput and latency of enumerations.

A synthetic provider (tests/testprov, class TST_Synthetic) returns N = 10,
100, 1000, 10000 instances of about 2 KB with 20 properties.  Measured, as
medians of several runs:

* server time: a prepared EnumerateInstances / EnumerateInstanceNames request
  sent over a kept-alive connection, timed from the request's first byte to the
  response's last byte, the response not parsed;
* end to end through pywbem (``WBEMConnection.EnumerateInstances``);
* pywbem's own parse time of the same response body (its SAX tuple tree and
  tuple parser), so that end to end minus parse is what the server and the
  transport add;
* the server's peak RSS (VmHWM).

    python benchmarks/bench_server.py [--runs 7] [--sizes 10,100,1000,10000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

import pywbem  # noqa: E402
from pywbem._tupleparse import TupleParser  # noqa: E402
from pywbem._tupletree import xml_to_tupletree_sax  # noqa: E402

from benchmarks._timing import imethod_request, median_time, post_time, write_json  # noqa: E402
from tests.support.server import start_server  # noqa: E402

NS = "test/testprov"
CLASS = "TST_Synthetic"

TARGETS = {
    "instances_per_second": 20000,      # server production rate, at least
    "server_time_1000": 0.1,            # s, EnumerateInstances of 1000, at most
    "e2e_minus_parse_1000": 0.1,        # s, pywbem end to end minus its own parse, at most
}


def server_time(host: str, port: int, op: str, runs: int) -> tuple[float, bytes]:
    """Median seconds from request sent to last response byte (unparsed); and a body."""
    body = imethod_request(NS, op, f'<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="{CLASS}"/>'
                                   '</IPARAMVALUE>')
    return post_time(host, port, NS, op, body, runs, op, timeout=300)


def parse_time(body: bytes, runs: int) -> float:
    """Median seconds pywbem takes to parse a response body into objects."""
    return median_time(lambda: TupleParser("bench").parse_cim(
        xml_to_tupletree_sax(body, "CIM-XML response")), runs)[0]


def pywbem_time(conn: pywbem.WBEMConnection, func: str, runs: int
                ) -> tuple[float, int, float]:
    """Median end-to-end seconds, the result count, and the median of (end to end
    minus pywbem's own parse of that same response), paired run by run so that
    the noise of the two does not add up."""
    times, extra = [], []
    n = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        result = getattr(conn, func)(CLASS)
        e2e = time.perf_counter() - t0
        times.append(e2e)
        n = len(result)
        extra.append(e2e - parse_time(conn.last_raw_reply, 1))
    return statistics.median(times), n, statistics.median(extra)


def peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def run(sizes: list[int], runs: int) -> dict:
    server = start_server(provider_modules=["tests.testprov"],
                          extra_args=["--log-level", "warning"])
    try:
        conn = server.conn(NS)
        results = []
        for n in sizes:
            r = max(3, runs if n <= 1000 else max(3, runs // 2))
            # The server alone: the provider serves instances built beforehand.
            conn.InvokeMethod("SetCount", CLASS, N=pywbem.Uint32(n), Prebuilt=True)
            conn.EnumerateInstances(CLASS)  # warm up (imports, caches)
            st_only, _ = server_time(server.host, server.port, "EnumerateInstances", r)
            # The whole pipeline: the provider builds every instance per request.
            conn.InvokeMethod("SetCount", CLASS, N=pywbem.Uint32(n), Prebuilt=False)
            conn.EnumerateInstances(CLASS)
            st_inst, body = server_time(server.host, server.port, "EnumerateInstances", r)
            st_names, _ = server_time(server.host, server.port, "EnumerateInstanceNames", r)
            pt = parse_time(body, r)
            e2e, count, e2e_minus_parse = pywbem_time(conn, "EnumerateInstances", r)
            e2e_names, _, _ = pywbem_time(conn, "EnumerateInstanceNames", r)
            if count != n:
                raise RuntimeError(f"expected {n} instances, got {count}")
            results.append({
                "n": n, "runs": r, "bytes": len(body),
                "bytes_per_instance": round(len(body) / n),
                "server_time_instances_s": st_inst, "server_time_names_s": st_names,
                "server_only_time_s": st_only, "server_only_instances_per_s": n / st_only,
                "pywbem_parse_s": pt, "pywbem_e2e_instances_s": e2e,
                "pywbem_e2e_names_s": e2e_names,
                "e2e_minus_parse_s": e2e_minus_parse,
                "server_instances_per_s": n / st_inst,
            })
        rss = peak_rss_kib(server.pid)
    finally:
        server.stop()
    big = [r for r in results if r["n"] >= 1000]

    def marginal(key: str) -> float:
        if len(big) >= 2:
            a, b = big[0], big[-1]
            return (b[key] - a[key]) / (b["n"] - a["n"])
        return results[-1][key] / results[-1]["n"]
    m_only = marginal("server_only_time_s")
    m_all = marginal("server_time_instances_s")
    return {"results": results, "server_peak_rss_kib": rss,
            "server_only_marginal_instances_per_s": 1.0 / m_only if m_only > 0 else None,
            "pipeline_marginal_instances_per_s": 1.0 / m_all if m_all > 0 else None}


def report(out: dict) -> list[str]:
    lines = ["embedded server: EnumerateInstances / EnumerateInstanceNames of TST_Synthetic "
             "(20 properties, medians)",
             f"{'N':>6} {'KB/inst':>7} {'server-only s':>13} {'server inst s':>13} "
             f"{'server names s':>14} {'pywbem e2e s':>12} {'pywbem parse s':>14} "
             f"{'e2e-parse s':>11}"]
    for r in out["results"]:
        lines.append(f"{r['n']:>6} {r['bytes_per_instance'] / 1024:>7.2f} "
                     f"{r['server_only_time_s']:>13.4f} "
                     f"{r['server_time_instances_s']:>13.4f} {r['server_time_names_s']:>14.4f} "
                     f"{r['pywbem_e2e_instances_s']:>12.4f} {r['pywbem_parse_s']:>14.4f} "
                     f"{r['e2e_minus_parse_s']:>11.4f}")
    lines.append("server-only: the provider serves prebuilt instances (dispatch, PropertyList, "
                 "serialization, HTTP); server inst: the provider builds each instance")
    lines.append(f"server production rate (marginal, N=1000 -> 10000): "
                 f"{out['server_only_marginal_instances_per_s']:.0f} instances/s server-only, "
                 f"{out['pipeline_marginal_instances_per_s']:.0f} instances/s with the provider "
                 f"building them (target >= {TARGETS['instances_per_second']})")
    k = {r["n"]: r for r in out["results"]}
    if 1000 in k:
        lines.append(f"server time, 1000 instances: {k[1000]['server_time_instances_s']:.4f} s "
                     f"(target <= {TARGETS['server_time_1000']})")
        lines.append(f"pywbem end to end minus its parse, 1000 instances: "
                     f"{k[1000]['e2e_minus_parse_s']:.4f} s "
                     f"(target <= {TARGETS['e2e_minus_parse_1000']})")
    lines.append(f"server peak RSS: {out['server_peak_rss_kib'] / 1024:.1f} MiB")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--sizes", default="10,100,1000,10000")
    p.add_argument("--json", help="write the results here as JSON")
    args = p.parse_args(argv)
    out = run([int(s) for s in args.sizes.split(",")], args.runs)
    print("\n".join(report(out)))
    if args.json:
        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
