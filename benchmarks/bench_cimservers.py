"""Cost of the providers inside a CIM server (sfcb, OpenPegasus) against the embedded server
(issue 10 item 12, issue 16): the same operations on the same libvirt data, timed in both.

The script starts the embedded server itself on a libvirt test-driver node file
with N guests of the benchmark shape (tests/fixtures/generate.py), and talks
to the CIM server at ``--url``, which must serve the *same* node file: its
providers' ``[[host]] uri`` (``/etc/kvm-providers/kvm-providers.conf``) must be
``test://<node file>``.  The node files are written to ``--node-dir``
(``node-<N>.xml``) before anything is measured; point the CIM server at one
and measure that size, e.g.::

    python benchmarks/bench_cimservers.py --node-dir /srv/bench --write-nodes --sizes 4,1000
    # set uri = "test:///srv/bench/node-4.xml" in kvm-providers.conf, then
    python benchmarks/bench_cimservers.py --url http://127.0.0.1:5988 \\
        --node-dir /srv/bench --sizes 4

``--setup-cmd 'CMD {node} {n}'`` runs CMD (through the shell) before each size
instead, to reconfigure the CIM server for that node file.  The script only
talks to the URL: it never starts, configures or registers a CIM server.
Before measuring, it checks that both servers see the same guests (the names
of KVM_ComputerSystem).

Operations (namespace ``--namespace``, default root/virt):
EnumerateInstanceNames / EnumerateInstances KVM_ComputerSystem,
EnumerateInstances KVM_VirtualSystemSettingData, EnumerateInstances
CIM_ResourceAllocationSettingData (every RASD, DeepInheritance), EnumerateInstances
KVM_DiskResourceAllocationSettingData, GetInstance of one KVM_ComputerSystem,
AssociatorNames / Associators of that system through KVM_SystemDevice.
Each is timed like benchmarks/bench_model.py, after one warm-up call, the runs
of the two servers taking turns (both up at once: the load of a shared
machine weighs on both alike; ``--one-after-the-other`` measures the
embedded server first, then the URL):

* server: a prepared CIM-XML request over a kept-alive connection, from its
  first byte sent to the response's last byte received (not parsed);
* quickack: the same request on a connection of its own whose socket has
  ``TCP_QUICKACK`` set again before every read (Linux): the client ACKs each
  segment at once instead of after the kernel's delayed-ACK timer (40 ms), so
  a server that writes its response in several small pieces on a socket
  without ``TCP_NODELAY`` (sfcb: Nagle holds the last piece until the
  previous one is ACKed) is timed by its own work, not by the two TCP
  stacks waiting for each other;
* pywbem: end to end with pywbem (request, response, parse into objects).

It prints, per N, median, min and max of each, the ratio CIM server /
embedded server of the medians (goal: at most 2), and the load average
before and after.  Without ``--url`` only the
embedded server is measured.

    python benchmarks/bench_cimservers.py [--url URL] [--user U --password P]
        [--namespace root/virt] [--sizes 4,1000] [--runs 7] [--node-dir DIR]
        [--setup-cmd CMD] [--label sfcb] [--no-embedded] [--json FILE]
        [--ops REGEX] [--te] [--no-pywbem]

Every RASD of 10,000 guests inside sfcb (issue 16 "Also"; sfcb answers it only in
chunks): ``--sizes 10000 --ops 'RASD \\(all\\)' --te --no-pywbem --big-runs 5``.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Optional
from urllib.parse import urlparse

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

import pywbem  # noqa: E402
from pywbem import CIMInstanceName  # noqa: E402

from benchmarks._timing import imethod_request, write_json  # noqa: E402
from tests.fixtures.generate import write_node  # noqa: E402

#: The goal of issue 10 item 12 / issue 16: a CIM server within this factor of the embedded one.
GOAL_RATIO = 2.0


class Operation:
    """One benchmarked operation: its raw CIM-XML request and its pywbem call."""

    def __init__(self, name: str, method: str, params: str,
                 call: Callable[[pywbem.WBEMConnection], Any], ns: str):
        self.name, self.method = name, method
        self.body = imethod_request(ns, method, params)
        self.call = call


def _cls(cn: str) -> str:
    return f'<CLASSNAME NAME="{cn}"/>'


def _instname(path: CIMInstanceName) -> str:
    p = path.copy()
    p.namespace = None
    p.host = None
    return p.tocimxmlstr()


def _ei(cn: str) -> str:
    # DeepInheritance true: a client asking for a superclass wants every subclass's instances.
    return (f'<IPARAMVALUE NAME="ClassName">{_cls(cn)}</IPARAMVALUE>'
            '<IPARAMVALUE NAME="DeepInheritance"><VALUE>TRUE</VALUE></IPARAMVALUE>')


def operations(ns: str, cs: CIMInstanceName) -> list[Operation]:
    """The operations, in the order they are measured and printed."""
    assoc = (f'<IPARAMVALUE NAME="ObjectName">{_instname(cs)}</IPARAMVALUE>'
             f'<IPARAMVALUE NAME="AssocClass">{_cls("KVM_SystemDevice")}</IPARAMVALUE>')
    return [
        Operation("EnumerateInstanceNames ComputerSystem", "EnumerateInstanceNames",
                  f'<IPARAMVALUE NAME="ClassName">{_cls("KVM_ComputerSystem")}</IPARAMVALUE>',
                  lambda c: c.EnumerateInstanceNames("KVM_ComputerSystem", ns), ns),
        Operation("EnumerateInstances ComputerSystem", "EnumerateInstances",
                  _ei("KVM_ComputerSystem"),
                  lambda c: c.EnumerateInstances("KVM_ComputerSystem", ns,
                                                 DeepInheritance=True), ns),
        Operation("EnumerateInstances VSSD", "EnumerateInstances",
                  _ei("KVM_VirtualSystemSettingData"),
                  lambda c: c.EnumerateInstances("KVM_VirtualSystemSettingData", ns,
                                                 DeepInheritance=True), ns),
        Operation("EnumerateInstances RASD (all)", "EnumerateInstances",
                  _ei("CIM_ResourceAllocationSettingData"),
                  lambda c: c.EnumerateInstances("CIM_ResourceAllocationSettingData", ns,
                                                 DeepInheritance=True), ns),
        Operation("EnumerateInstances DiskRASD", "EnumerateInstances",
                  _ei("KVM_DiskResourceAllocationSettingData"),
                  lambda c: c.EnumerateInstances("KVM_DiskResourceAllocationSettingData", ns,
                                                 DeepInheritance=True), ns),
        Operation("GetInstance ComputerSystem", "GetInstance",
                  f'<IPARAMVALUE NAME="InstanceName">{_instname(cs)}</IPARAMVALUE>',
                  lambda c: c.GetInstance(cs), ns),
        Operation("AssociatorNames SystemDevice", "AssociatorNames", assoc,
                  lambda c: c.AssociatorNames(cs, AssocClass="KVM_SystemDevice"), ns),
        Operation("Associators SystemDevice", "Associators", assoc,
                  lambda c: c.Associators(cs, AssocClass="KVM_SystemDevice"), ns),
    ]


def selected(ops: list[Operation], only: Optional[str]) -> list[Operation]:
    """The operations whose name `only` (a regular expression) finds; all without it."""
    if not only:
        return ops
    pick = [op for op in ops if re.search(only, op.name)]
    if not pick:
        raise ValueError(f"--ops {only!r} matches none of: {', '.join(o.name for o in ops)}")
    return pick


class Target:
    """A WBEM server to measure: URL, credentials, namespace."""

    def __init__(self, label: str, url: str, ns: str, creds: Optional[tuple[str, str]] = None,
                 timeout: float = 900.0, te: bool = False):
        self.label, self.url, self.ns, self.creds, self.timeout = label, url, ns, creds, timeout
        #: send ``TE: trailers`` with the prepared requests (the server may answer in chunks)
        self.te = te
        u = urlparse(url)
        self.https = u.scheme == "https"
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (5989 if self.https else 5988)

    def conn(self) -> pywbem.WBEMConnection:
        return pywbem.WBEMConnection(self.url, self.creds, default_namespace=self.ns,
                                     timeout=self.timeout, no_verification=True)

    def http(self) -> http.client.HTTPConnection:
        if self.https:
            import ssl
            ctxt = ssl.create_default_context()
            ctxt.check_hostname = False
            ctxt.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=ctxt)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def headers(self, method: str) -> dict[str, str]:
        h = {"Content-Type": 'application/xml; charset="utf-8"',
             "CIMOperation": "MethodCall", "CIMMethod": method,
             "CIMObject": self.ns.replace("/", "%2F")}
        if self.creds:
            token = base64.b64encode(f"{self.creds[0]}:{self.creds[1]}".encode()).decode()
            h["Authorization"] = f"Basic {token}"
        if self.te:
            h["TE"] = "trailers"
        return h


def timed_request(target: Target, conn: http.client.HTTPConnection,
                  op: Operation) -> tuple[float, int]:
    """Seconds from the prepared request's first byte sent to the response's last byte
    received on `conn` (kept alive, unparsed); and the response size."""
    headers = target.headers(op.method)
    t0 = time.perf_counter()
    conn.request("POST", "/cimom", op.body, headers)
    resp = conn.getresponse()
    data = resp.read()
    took = time.perf_counter() - t0
    if resp.status != 200 or b"<ERROR" in data[:3000]:
        raise RuntimeError(f"{target.label}: {op.name} failed: {resp.status} {data[:600]!r}")
    return took, len(data)


class _Closed(RuntimeError):
    """The server closed the connection before the response was complete."""


def _read_http_response(sock: socket.socket,
                        quickack: bool) -> tuple[int, bytearray, dict[str, str]]:
    """(status, body, header fields) of one HTTP/1.1 response read from `sock`; with
    `quickack`, ``TCP_QUICKACK`` is set before every ``recv`` (the kernel clears it by
    itself).  What is read is appended to one bytearray and taken from its front (neither
    copies what came before: ``bytes +=`` per read and a slice per chunk made reading a
    245 MB chunked answer quadratic, the client slower than the servers it timed)."""
    buf = bytearray()

    def more() -> None:
        if quickack:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = sock.recv(262144)
        if not chunk:
            raise _Closed("connection closed in the middle of a response")
        buf.extend(chunk)

    while (end := buf.find(b"\r\n\r\n")) < 0:
        more()
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    del buf[:end + 4]
    status = int(lines[0].split()[1])
    fields = {k.strip().lower(): v.strip() for k, _s, v in
              (line.partition(":") for line in lines[1:])}
    if fields.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            while (eol := buf.find(b"\r\n")) < 0:
                more()
            size = int(bytes(buf[:eol]).split(b";")[0], 16)
            del buf[:eol + 2]
            if size == 0:
                # trailers (sfcb sends CIMStatusCode there) up to the empty line
                while not (buf.startswith(b"\r\n") or b"\r\n\r\n" in buf):
                    more()
                return status, body, fields
            while len(buf) < size + 2:
                more()
            body += buf[:size]
            del buf[:size + 2]
    length = int(fields.get("content-length", "0"))
    while len(buf) < length:
        more()
    del buf[length:]
    return status, buf, fields


class QuickAckConnection:
    """A kept-alive HTTP connection whose every read first sets ``TCP_QUICKACK``
    (None of :meth:`open` where the socket option or plain HTTP is missing)."""

    def __init__(self, target: Target):
        self.target = target
        self.sock = self._connect()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.target.host, self.target.port),
                                        timeout=self.target.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    @classmethod
    def open(cls, target: Target) -> Optional["QuickAckConnection"]:
        if target.https or not hasattr(socket, "TCP_QUICKACK"):
            return None
        return cls(target)

    def timed(self, op: Operation) -> float:
        """Seconds of the prepared request as :func:`timed_request` measures them."""
        t = self.target
        head = "".join(f"{k}: {v}\r\n" for k, v in t.headers(op.method).items())
        req = (f"POST /cimom HTTP/1.1\r\nHost: {t.host}:{t.port}\r\n{head}"
               f"Content-Length: {len(op.body)}\r\n\r\n").encode("latin-1") + op.body
        try:
            t0 = time.perf_counter()
            self.sock.sendall(req)
            status, body, fields = _read_http_response(self.sock, True)
        except (ConnectionError, _Closed):
            # the server closed the kept-alive connection without saying so: again on a
            # new one (timed from the new request)
            self.sock.close()
            self.sock = self._connect()
            t0 = time.perf_counter()
            self.sock.sendall(req)
            status, body, fields = _read_http_response(self.sock, True)
        took = time.perf_counter() - t0
        if fields.get("connection", "").lower() == "close":
            # (sfcb closes a kept-alive connection after keepaliveMaxRequest requests)
            self.sock.close()
            self.sock = self._connect()
        if status != 200 or b"<ERROR" in body[:3000]:
            raise RuntimeError(f"{t.label}: {op.name} failed: {status} {body[:600]!r}")
        return took

    def close(self) -> None:
        self.sock.close()


def quickack_times(target: Target, op: Operation, runs: int) -> list[float]:
    """Seconds of `runs` prepared requests on one :class:`QuickAckConnection` (none
    where it cannot be made)."""
    qc = QuickAckConnection.open(target)
    if qc is None:
        return []
    try:
        return [qc.timed(op) for _ in range(runs)]
    finally:
        qc.close()


def server_times(target: Target, op: Operation, runs: int) -> tuple[list[float], int]:
    """Seconds from the prepared request's first byte sent to the response's last byte
    received, over one kept-alive connection (unparsed); and the response size."""
    conn = target.http()
    times, size = [], 0
    try:
        for _ in range(runs):
            took, size = timed_request(target, conn, op)
            times.append(took)
    finally:
        conn.close()
    return times, size


def pywbem_times(conn: pywbem.WBEMConnection, op: Operation, runs: int) -> tuple[list[float], int]:
    """Seconds of the pywbem call, end to end; and the number of objects returned."""
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = op.call(conn)
        times.append(time.perf_counter() - t0)
    return times, len(result) if isinstance(result, list) else 1


def _stats(times: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "runs": len(times)}


def guest_names(target: Target) -> list[str]:
    return sorted(str(p["Name"]) for p in
                  target.conn().EnumerateInstanceNames("KVM_ComputerSystem", target.ns))


def measure(target: Target, n: int, runs: int, big_runs: int, only: Optional[str] = None,
            e2e: bool = True) -> dict[str, Any]:
    """Every operation (`only`: those it selects) on `target` (serving a node of `n`
    guests); `e2e` False: no pywbem column (a response of 10,000 guests takes pywbem
    minutes to parse)."""
    conn = target.conn()
    names = guest_names(target)
    if not names:
        raise RuntimeError(f"{target.label}: no KVM_ComputerSystem: is it serving the node?")
    cs = CIMInstanceName("KVM_ComputerSystem",
                         {"CreationClassName": "KVM_ComputerSystem", "Name": names[0]},
                         namespace=target.ns)
    out: dict[str, Any] = {"n": n, "guests": len(names), "ops": {},
                           "load_before": os.getloadavg()}
    for op in selected(operations(target.ns, cs), only):
        _warm_up(target, conn, op, e2e)
        r = big_runs if n >= 500 and "RASD" in op.name else runs
        st, size = server_times(target, op, r)
        qa = quickack_times(target, op, r)
        ends, count = pywbem_times(conn, op, r) if e2e else ([], 0)
        out["ops"][op.name] = {"server": _stats(st), "count": count, "bytes": size}
        if ends:
            out["ops"][op.name]["pywbem"] = _stats(ends)
        if qa:
            out["ops"][op.name]["quickack"] = _stats(qa)
        print(f"    {target.label} N={n} {op.name}: server {statistics.median(st):.4f} s"
              + (f", pywbem {statistics.median(ends):.4f} s ({count})" if ends else ""),
              flush=True)
    out["load_after"] = os.getloadavg()
    return out


def _warm_up(target: Target, conn: pywbem.WBEMConnection, op: Operation, e2e: bool) -> None:
    """One call of `op` before it is timed (imports, the first provider load): through
    pywbem, or (`e2e` False) as a prepared request."""
    if e2e:
        op.call(conn)
        return
    http_conn = target.http()
    try:
        timed_request(target, http_conn, op)
    finally:
        http_conn.close()


def measure_alternating(targets: list[Target], n: int, runs: int, big_runs: int,
                        only: Optional[str] = None, e2e: bool = True) -> list[dict[str, Any]]:
    """Every operation on every target (serving the same node of `n` guests), their runs
    taking turns: on a machine shared with other work, the load of the moment weighs on
    each target alike, and the ratio of the medians compares like with like."""
    names = [guest_names(t) for t in targets]
    if not names[0]:
        raise RuntimeError(f"{targets[0].label}: no KVM_ComputerSystem")
    for t, got in zip(targets[1:], names[1:], strict=True):
        if got != names[0]:
            raise RuntimeError(f"{t.label} serves {len(got)} guests, {targets[0].label} "
                               f"{len(names[0])}: not the same node file")
    cs = CIMInstanceName("KVM_ComputerSystem",
                         {"CreationClassName": "KVM_ComputerSystem", "Name": names[0][0]},
                         namespace=targets[0].ns)
    load = os.getloadavg()
    outs: list[dict[str, Any]] = [{"n": n, "guests": len(got), "ops": {}, "load_before": load}
                                  for got in names]
    conns = [t.conn() for t in targets]
    for op in selected(operations(targets[0].ns, cs), only):
        for t, c in zip(targets, conns, strict=True):
            _warm_up(t, c, op, e2e)
        r = big_runs if n >= 500 and "RASD" in op.name else runs
        st: list[list[float]] = [[] for _ in targets]
        ends: list[list[float]] = [[] for _ in targets]
        sizes, counts = [0] * len(targets), [0] * len(targets)
        https = [t.http() for t in targets]
        try:
            for _ in range(r):
                for i, t in enumerate(targets):
                    took, sizes[i] = timed_request(t, https[i], op)
                    st[i].append(took)
        finally:
            for h in https:
                h.close()
        qa: list[list[float]] = [[] for _ in targets]
        qcs = [QuickAckConnection.open(t) for t in targets]
        try:
            for _ in range(r):
                for i, qc in enumerate(qcs):
                    if qc is not None:
                        qa[i].append(qc.timed(op))
        finally:
            for qc in qcs:
                if qc is not None:
                    qc.close()
        for _ in range(r if e2e else 0):
            for i, c in enumerate(conns):
                t0 = time.perf_counter()
                result = op.call(c)
                ends[i].append(time.perf_counter() - t0)
                counts[i] = len(result) if isinstance(result, list) else 1
        for i, t in enumerate(targets):
            outs[i]["ops"][op.name] = {"server": _stats(st[i]), "count": counts[i],
                                       "bytes": sizes[i]}
            if ends[i]:
                outs[i]["ops"][op.name]["pywbem"] = _stats(ends[i])
            if qa[i]:
                outs[i]["ops"][op.name]["quickack"] = _stats(qa[i])
            print(f"    {t.label} N={n} {op.name}: server {statistics.median(st[i]):.4f} s"
                  + (f", pywbem {statistics.median(ends[i]):.4f} s ({counts[i]})"
                     if ends[i] else ""), flush=True)
    load = os.getloadavg()
    for out in outs:
        out["load_after"] = load
    return outs


def run_embedded(node: str, n: int, runs: int, big_runs: int, ns: str, only: Optional[str] = None,
                 e2e: bool = True, te: bool = False) -> dict[str, Any]:
    from tests.support.server import start_server
    server = start_server(hosts=[f"test://{node}"], extra_args=["--log-level", "warning"])
    try:
        return measure(Target("embedded", server.url, ns, te=te), n, runs, big_runs, only, e2e)
    finally:
        server.stop()


def _kinds(per: dict[str, Any], cols: list[str], name: str) -> list[str]:
    """The timings every column has for operation `name` (quickack where measured)."""
    kinds = ["server", "quickack", "pywbem"]
    return [k for k in kinds if all(k in per[c]["ops"][name] for c in cols)]


def report(results: dict[str, Any], label: str) -> list[str]:
    """The table: per size, per operation, the timings of both servers and the ratios."""
    lines = [f"seconds: median [min-max]; server = request's first byte sent to the response's "
             f"last byte received (unparsed), quickack = the same with TCP_QUICKACK on the "
             f"client's socket, pywbem = end to end; ratio = {label} / embedded "
             f"(goal <= {GOAL_RATIO:g})"]
    for n, per in sorted(results.items(), key=lambda kv: int(kv[0])):
        emb, other = per.get("embedded"), per.get(label)
        cols = [c for c in ("embedded", label) if per.get(c)]
        loads = "; ".join(f"{c} {per[c].get('load_before', ('?',) * 3)[0]:.2f} -> "
                          f"{per[c].get('load_after', ('?',) * 3)[0]:.2f}"
                          for c in cols if "load_before" in per[c])
        lines.append(f"\nN={n} guests (load average, 1 min: {loads or '?'})")
        any_ref = emb or other
        for name in any_ref["ops"]:
            o = any_ref["ops"][name]
            kinds = _kinds(per, cols, name)
            lines.append(f"{name} ({o['count']})" if o["count"] else name)
            for kind in kinds:
                row = f"  {kind:<9}"
                for c in cols:
                    s = per[c]["ops"][name][kind]
                    row += f"  {c:>9} {s['median']:>8.4f} [{s['min']:.4f}-{s['max']:.4f}]"
                if emb and other:
                    r = other["ops"][name][kind]["median"] / emb["ops"][name][kind]["median"]
                    row += f"  ratio {r:5.2f}" + ("" if r <= GOAL_RATIO else "  > goal")
                lines.append(row)
    return lines


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="the CIM server to compare (e.g. http://127.0.0.1:5988)")
    p.add_argument("--label", default="cimserver", help="its name in the table")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--namespace", default="root/virt")
    p.add_argument("--sizes", default="4,1000")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--big-runs", type=int, default=5,
                   help="runs of the RASD enumerations at N >= 500")
    p.add_argument("--node-dir", help="where node-<N>.xml are (written if missing); "
                   "default: a temporary directory (only usable without --url)")
    p.add_argument("--write-nodes", action="store_true",
                   help="only write the node files into --node-dir, measure nothing")
    p.add_argument("--setup-cmd", help="shell command run before measuring the URL at each "
                   "size; {node} and {n} are replaced")
    p.add_argument("--no-embedded", action="store_true", help="measure only the URL")
    p.add_argument("--embedded-url",
                   help="an embedded server already running on the node of the one size "
                        "measured, instead of one started here on 127.0.0.1: to measure "
                        "both servers across the same network link (e.g. from a network "
                        "namespace over a veth; docs/cmpi.md, stop 30)")
    p.add_argument("--one-after-the-other", action="store_true",
                   help="measure the embedded server, then the URL (default: their runs "
                   "take turns, both servers up)")
    p.add_argument("--ops", metavar="REGEX",
                   help="only the operations whose name this regular expression finds "
                        "(e.g. 'RASD \\(all\\)')")
    p.add_argument("--te", action="store_true",
                   help="send 'TE: trailers' with the prepared requests (server and quickack "
                        "columns): sfcb then answers in chunks, and without them it cannot "
                        "answer every RASD of 10,000 guests (maxMsgLen; docs/cmpi.md)")
    p.add_argument("--no-pywbem", action="store_true",
                   help="no end-to-end pywbem column (warm-up by a prepared request): at "
                        "10,000 guests pywbem parses every RASD for minutes")
    p.add_argument("--json", help="write the results here as JSON")
    args = p.parse_args(argv)
    e2e = not args.no_pywbem
    try:
        selected(operations(args.namespace, CIMInstanceName(
            "KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem", "Name": "-"},
            namespace=args.namespace)), args.ops)
    except (ValueError, re.error) as exc:
        p.error(str(exc))
    sizes = [int(s) for s in args.sizes.split(",")]
    creds = (args.user, args.password or "") if args.user else None
    if args.url and not args.node_dir:
        p.error("--url needs --node-dir: the CIM server must read the same node file")
    if args.embedded_url and (len(sizes) != 1 or not args.url or args.no_embedded
                              or args.one_after_the_other):
        p.error("--embedded-url needs --url, one size, and the two servers taking turns")
    tmp = None
    node_dir = args.node_dir
    if node_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-cimservers-")
        node_dir = tmp.name
    os.makedirs(node_dir, exist_ok=True)
    nodes = {}
    for n in sizes:
        path = os.path.join(node_dir, f"node-{n}.xml")
        if not os.path.exists(path) or args.write_nodes:
            write_node(path, n)
        nodes[n] = path
    if args.write_nodes:
        print("\n".join(f"N={n}: test://{path}" for n, path in nodes.items()))
        return 0
    results: dict[str, Any] = {}
    try:
        for n in sizes:
            per: dict[str, Any] = results.setdefault(str(n), {})
            if args.url and not args.no_embedded and not args.one_after_the_other:
                if args.setup_cmd:
                    subprocess.run(args.setup_cmd.format(node=nodes[n], n=n), shell=True,
                                   check=True)
                server = None
                if args.embedded_url:
                    url = args.embedded_url
                    emb = guest_names(Target("embedded", url, args.namespace))
                    if len(emb) != n:
                        raise RuntimeError(f"the embedded server at {url} serves {len(emb)} "
                                           f"guests, not {n}: not the node of N={n}")
                else:
                    from tests.support.server import start_server
                    server = start_server(hosts=[f"test://{nodes[n]}"],
                                          extra_args=["--log-level", "warning"])
                    url = server.url
                try:
                    per["embedded"], per[args.label] = measure_alternating(
                        [Target("embedded", url, args.namespace, te=args.te),
                         Target(args.label, args.url, args.namespace, creds, te=args.te)],
                        n, args.runs, args.big_runs, args.ops, e2e)
                finally:
                    if server is not None:
                        server.stop()
                continue
            if not args.no_embedded:
                per["embedded"] = run_embedded(nodes[n], n, args.runs, args.big_runs,
                                               args.namespace, args.ops, e2e, args.te)
            if args.url:
                if args.setup_cmd:
                    subprocess.run(args.setup_cmd.format(node=nodes[n], n=n), shell=True,
                                   check=True)
                target = Target(args.label, args.url, args.namespace, creds, te=args.te)
                got = guest_names(target)
                if per.get("embedded") and len(got) != per["embedded"]["guests"]:
                    raise RuntimeError(
                        f"{args.label} serves {len(got)} guests, the embedded server "
                        f"{per['embedded']['guests']}: not the same node file")
                per[args.label] = measure(target, n, args.runs, args.big_runs, args.ops, e2e)
    finally:
        if tmp is not None:
            tmp.cleanup()
    print("\n".join(report(results, args.label)))
    if args.json:
        write_json(args.json, {"url": args.url, "label": args.label, "sizes": sizes,
                               "runs": args.runs, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
