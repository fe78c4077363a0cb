"""Benchmark of the snapshot model (issue 13) through the embedded server.

libvirt's test driver with a node file of N guests (the benchmark shape of
bench_model.py) with S snapshots each (a chain, each holding the guest's
definition, as libvirt stores snapshots), default N = 1000, S = 5:

* EnumerateInstances of KVM_VirtualSystemSnapshotSettingData (every snapshot
  VSSD, filled from the snapshot's definition): target <= 0.5 s server time;
* AssociatorNames / Associators of one guest over KVM_SnapshotOfVirtualSystem
  (one guest's snapshots): target <= 10 ms server time;
* EnumerateInstanceNames of the snapshots, for comparison;
* for comparison in the same run: EnumerateInstances of
  KVM_VirtualSystemSettingData on the same node (the systems' VSSDs and the
  snapshot VSSDs), and on a second server over the same guests without
  snapshots (the systems' own VSSDs alone).

By default every snapshot holds the guest's definition unchanged (as when a
guest is snapshotted without changing its configuration); with --distinct
each snapshot's definition differs from the others (its memory size), so that
no two snapshot VSSDs share a definition (the worst case).

Server time: the prepared CIM-XML request sent over a kept-alive connection,
from its first byte to the response's last byte (median, min and max of
--runs runs; the load average is reported with them), and the server
process's CPU time per request (median; its threads' /proc schedstat), which
on a shared, loaded machine says more than the wall time.

    python benchmarks/bench_snapshots.py [--guests 1000] [--snapshots 5] [--runs 7]
                                         [--distinct] [--libvirtd] [--json FILE]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import statistics
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from pywbem import CIMInstanceName  # noqa: E402

from benchmarks._timing import imethod_request, write_json  # noqa: E402
from tests.fixtures.generate import _NODE_HEAD, bench_domain_xml  # noqa: E402
from tests.support.server import start_server  # noqa: E402

NS = "root/virt"
TARGETS = {"EnumerateInstances snapshot VSSD": 0.5,
           "AssociatorNames SnapshotOfVirtualSystem (one guest)": 0.010,
           "Associators SnapshotOfVirtualSystem (one guest)": 0.010}


def _domain_with_snapshots(i: int, snapshots: int, distinct: bool = False) -> str:
    """A test-driver domain with a chain of snapshots (test:domainsnapshot elements);
    `distinct`: each snapshot's definition has a memory size of its own."""
    xml = bench_domain_xml(i, state=1 if i % 2 == 0 else 5)
    plain = re.sub(r"\s*<test:runstate>.*?</test:runstate>", "", xml)
    plain = plain.replace(" xmlns:test='http://libvirt.org/schemas/domain/test/1.0'", "")
    snaps = []
    for s in range(snapshots):
        if distinct:
            plain = re.sub(r"<memory unit='KiB'>\d+</memory>",
                           f"<memory unit='KiB'>{1048576 + 1024 * (s + 1)}</memory>", plain)
        parent = f"<parent><name>snap{s - 1}</name></parent>" if s else ""
        snaps.append(f"<test:domainsnapshot><name>snap{s}</name>"
                     f"<state>{'running' if i % 2 == 0 else 'shutoff'}</state>{parent}"
                     f"<creationTime>{1700000000 + s}</creationTime>"
                     f"{plain}<active>{1 if s == snapshots - 1 else 0}</active>"
                     f"</test:domainsnapshot>")
    return _insert(xml, "".join(snaps))


def _insert(xml: str, extra: str) -> str:
    head, _sep, tail = xml.rpartition("</domain>")
    return f"{head}{extra}</domain>{tail}"


def write_node(path: str, guests: int, snapshots: int, distinct: bool = False) -> str:
    """A test-driver node file of `guests` guests with `snapshots` snapshots each."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(_NODE_HEAD)
        for i in range(guests):
            f.write(_domain_with_snapshots(i, snapshots, distinct) if snapshots
                    else bench_domain_xml(i, state=1 if i % 2 == 0 else 5))
            f.write("\n")
        f.write("</node>\n")
    return path


def _classname(cn: str) -> str:
    return f'<CLASSNAME NAME="{cn}"/>'


def _instname(path: CIMInstanceName) -> str:
    p = path.copy()
    p.namespace = None
    return p.tocimxmlstr()


def _cpu(pid: int) -> float:
    """CPU seconds the process's threads have run so far (/proc schedstat, ns precision;
    0.0 where there is none)."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat", encoding="ascii") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass       # a thread that ended meanwhile
    except OSError:
        return 0.0
    return total / 1e9


def _times(host: str, port: int, method: str, body: bytes, runs: int, what: str,
           pid: int = 0) -> tuple[list[float], list[float], bytes]:
    """Seconds of each of `runs` requests (one kept-alive connection, opened and warmed
    by one request first), the server's CPU seconds of each (process `pid`: on a loaded
    machine the wall time holds the waits for a core, the CPU time does not), and the
    last response body."""
    conn = http.client.HTTPConnection(host, port, timeout=600)
    headers = {"Content-Type": 'application/xml; charset="utf-8"',
               "CIMOperation": "MethodCall", "CIMMethod": method,
               "CIMObject": NS.replace("/", "%2F")}
    times: list[float] = []
    cpu: list[float] = []
    data = b""
    try:
        for i in range(runs + 1):
            c0 = _cpu(pid) if pid else 0.0
            t0 = time.perf_counter()
            conn.request("POST", "/cimom", body, headers)
            resp = conn.getresponse()
            data = resp.read()
            if i:                      # the first one warms up (module loading, caches)
                times.append(time.perf_counter() - t0)
                cpu.append(_cpu(pid) - c0 if pid else 0.0)
            if resp.status != 200 or b"<ERROR" in data[:3000]:
                raise RuntimeError(f"{what} failed: {resp.status} {data[:600]!r}")
    finally:
        conn.close()
    return times, cpu, data


def _figures(times: list[float], cpu: list[float], data: bytes) -> dict:
    return {"server_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "runs_s": times, "server_cpu_s": statistics.median(cpu), "cpu_s": cpu,
            "bytes": len(data), "instances": data.count(b"<INSTANCE ")}


def _ei(classname: str) -> tuple[str, str]:
    return ("EnumerateInstances",
            f'<IPARAMVALUE NAME="ClassName">{_classname(classname)}</IPARAMVALUE>')


def run(guests: int, snapshots: int, runs: int, distinct: bool = False,
        libvirtd: bool = False) -> dict:
    """The figures of one run: the snapshot node's server, then the plain node's.

    `libvirtd`: the test driver served by a private libvirtd (every libvirt call an
    RPC, as on a real host), not in the server's process."""
    daemon = None
    if libvirtd:
        from tests.fixtures.libvirtd import PrivateLibvirtd
        daemon = PrivateLibvirtd().start()
    try:
        return _run(guests, snapshots, runs, distinct, daemon)
    finally:
        if daemon is not None:
            daemon.stop()
            daemon.cleanup()


def _run(guests: int, snapshots: int, runs: int, distinct: bool, daemon) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-snap-") as tmp:
        # the daemon (another user) reads the node files from its own directory
        workdir = daemon.workdir if daemon is not None else tmp
        node = write_node(os.path.join(workdir, "node.xml"), guests, snapshots, distinct)
        plain = write_node(os.path.join(workdir, "plain.xml"), guests, 0)
        for f in (node, plain):
            os.chmod(f, 0o644)

        def uri(path: str) -> str:
            if daemon is None:
                return f"test://{path}"
            return f"test+unix://{path}?socket={daemon.socket}"
        out: dict = {"guests": guests, "snapshots_each": snapshots, "distinct": distinct,
                     "libvirtd": daemon is not None,
                     "runs": runs, "ops": {}, "load_before": os.getloadavg()}
        server = start_server(hosts=[uri(node)], extra_args=["--log-level", "warning"])
        try:
            conn = server.conn(NS, timeout=600)
            cs = CIMInstanceName("KVM_ComputerSystem", {"CreationClassName":
                                                        "KVM_ComputerSystem",
                                                        "Name": "guest0000"})
            out["snapshots"] = len(conn.EnumerateInstanceNames(
                "KVM_VirtualSystemSnapshotSettingData"))
            out["of_one_guest"] = len(conn.AssociatorNames(
                cs.copy(), AssocClass="KVM_SnapshotOfVirtualSystem"))
            ops = {
                "EnumerateInstanceNames snapshot VSSD": ("EnumerateInstanceNames",
                    f'<IPARAMVALUE NAME="ClassName">'
                    f'{_classname("KVM_VirtualSystemSnapshotSettingData")}</IPARAMVALUE>'),
                "EnumerateInstances snapshot VSSD": _ei("KVM_VirtualSystemSnapshotSettingData"),
                "EnumerateInstances every VSSD (systems' and snapshots')":
                    _ei("KVM_VirtualSystemSettingData"),
                "AssociatorNames SnapshotOfVirtualSystem (one guest)": ("AssociatorNames",
                    f'<IPARAMVALUE NAME="ObjectName">{_instname(cs)}</IPARAMVALUE>'
                    f'<IPARAMVALUE NAME="AssocClass">'
                    f'{_classname("KVM_SnapshotOfVirtualSystem")}</IPARAMVALUE>'),
                "Associators SnapshotOfVirtualSystem (one guest)": ("Associators",
                    f'<IPARAMVALUE NAME="ObjectName">{_instname(cs)}</IPARAMVALUE>'
                    f'<IPARAMVALUE NAME="AssocClass">'
                    f'{_classname("KVM_SnapshotOfVirtualSystem")}</IPARAMVALUE>'),
            }
            for name, (method, params) in ops.items():
                body = imethod_request(NS, method, params)
                out["ops"][name] = _figures(*_times(server.host, server.port, method, body,
                                                    runs, name, server.proc.pid))
        finally:
            server.stop()
        # The systems' own VSSDs alone: the same guests without snapshots.
        server = start_server(hosts=[uri(plain)], extra_args=["--log-level", "warning"])
        try:
            method, params = _ei("KVM_VirtualSystemSettingData")
            body = imethod_request(NS, method, params)
            out["ops"]["EnumerateInstances system VSSD (same guests, no snapshots)"] = \
                _figures(*_times(server.host, server.port, method, body, runs, "plain",
                                 server.proc.pid))
        finally:
            server.stop()
        out["load_after"] = os.getloadavg()
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--guests", type=int, default=1000)
    ap.add_argument("--snapshots", type=int, default=5)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--distinct", action="store_true",
                    help="every snapshot with a definition of its own")
    ap.add_argument("--libvirtd", action="store_true",
                    help="the test driver behind a private libvirtd (libvirt calls are RPCs)")
    ap.add_argument("--json", default=os.path.join(TOP, "benchmarks", "results",
                                                   "snapshots.json"))
    args = ap.parse_args()
    out = run(args.guests, args.snapshots, args.runs, args.distinct, args.libvirtd)
    ok = out["snapshots"] == args.guests * args.snapshots and \
        out["of_one_guest"] == args.snapshots
    print(f"{out['guests']} guests x {out['snapshots_each']} snapshots"
          f"{' (distinct definitions)' if out['distinct'] else ''}"
          f"{' through libvirtd' if out['libvirtd'] else ' in process'}: "
          f"{out['snapshots']} snapshot VSSDs, {out['of_one_guest']} of one guest; "
          f"load average {out['load_before'][0]:.1f} before, {out['load_after'][0]:.1f} after")
    for name, r in out["ops"].items():
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            verdict = "ok" if r["server_s"] <= target else "OVER TARGET"
            ok = ok and r["server_s"] <= target
        print(f"  {name:62s} {r['server_s'] * 1000:9.1f} ms (min {r['min_s'] * 1000:.1f}, "
              f"max {r['max_s'] * 1000:.1f}; CPU {r['server_cpu_s'] * 1000:.1f})  "
              f"{r['instances']:>5d} inst {r['bytes']:>10d} B  "
              f"{'(target %g ms) ' % (target * 1000) if target else ''}{verdict}")
    out["ok"] = ok
    write_json(args.json, out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
