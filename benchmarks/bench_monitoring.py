"""Benchmark of the monitoring data path (issue 15).

1. Collection cost for 1000 guests against the goal "at most 1 % of one core at the
   default 15 s interval" (150 ms of CPU per round):

   * ``test-driver``: the real round (kvm_providers.virt.stats.Collector.collect_once)
     against a libvirt test-driver host of 1000 domains (tests/fixtures/generate.py,
     every other one running).  The test driver runs inside this process, so the
     round's thread CPU time includes libvirt's own work.  The test driver reports
     only the state group, so this part measures the call and the bookkeeping;
   * ``qemu-shaped``: the same round fed with 1000 records of the shape libvirt's QEMU
     driver returns for the benchmark guests (2 vCPUs, 2 disks, 2 NICs, balloon
     statistics: 92 fields per domain, counters growing from round to round), so that
     parsing, rates and history rings for 17 metrics x 5 elements per guest are paid
     in full.  libvirtd's own work for getAllDomainStats is not in this figure (it runs
     in the daemon, not in the providers' process).

2. GetSummaryInformation for 10 test-driver hosts x G guests (G = 100 and 1000 by
   default): server time (from a complete request to the last byte of its response
   made: the server's own request histogram at /metrics), the server process's CPU
   time per request (all threads, /proc: robust on a loaded machine, where wall
   times measure the other processes too) and the client's round trip (response
   read, not parsed), to check the goal "10,000 guests across 10 hosts in <= 1 s"
   and linearity.

    python benchmarks/bench_monitoring.py [--runs 5] [--json PATH] [--skip-summary]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from benchmarks._timing import write_json  # noqa: E402
from tests.support.server import start_server  # noqa: E402
from kvm_providers import virt  # noqa: E402
from kvm_providers.config import HostConfig  # noqa: E402
from kvm_providers.virt import stats  # noqa: E402
from tests.fixtures.generate import write_node  # noqa: E402

BUDGET = 0.01 * 15.0        # 1 % of one core at the default interval


class _FakeDom:
    """A domain object as getAllDomainStats returns it: name() and UUIDString() only."""

    def __init__(self, i: int):
        self._name = f"guest{i:04d}"
        self._uuid = f"6b766d00-0000-0000-0000-{i:012d}"

    def name(self) -> str:
        return self._name

    def UUIDString(self) -> str:  # noqa: N802 - libvirt's name
        return self._uuid


def qemu_record(i: int, r: int) -> dict:
    """One QEMU-driver record of a benchmark guest in round `r` (counters grow)."""
    rec = {"state.state": 1, "state.reason": 1, "cpu.time": (r + 1) * 7_000_000_000 + i,
           "cpu.user": r * 5_000_000_000, "cpu.system": r * 2_000_000_000,
           "balloon.current": 1048576, "balloon.maximum": 1048576,
           "balloon.swap_in": 0, "balloon.swap_out": 0, "balloon.major_fault": 10,
           "balloon.minor_fault": 1000, "balloon.unused": 500000,
           "balloon.available": 1000000, "balloon.usable": 600000,
           "balloon.last-update": 1700000000 + r * 15, "balloon.disk_caches": 20000,
           "balloon.rss": 300000, "vcpu.current": 2, "vcpu.maximum": 2,
           "net.count": 2, "block.count": 2}
    for v in range(2):
        rec.update({f"vcpu.{v}.state": 1, f"vcpu.{v}.time": r * 3_000_000_000,
                    f"vcpu.{v}.wait": 0, f"vcpu.{v}.halted": "no"})
    for n in range(2):
        p = f"net.{n}."
        rec.update({p + "name": f"vnet{2 * i + n}", p + "rx.bytes": r * 150_000,
                    p + "rx.pkts": r * 100, p + "rx.errs": 0, p + "rx.drop": 0,
                    p + "tx.bytes": r * 90_000, p + "tx.pkts": r * 80, p + "tx.errs": 0,
                    p + "tx.drop": 0})
    for b in range(2):
        p = f"block.{b}."
        rec.update({p + "name": f"vd{'ab'[b]}", p + "path": f"/var/lib/img/g{i}-{b}.qcow2",
                    p + "rd.reqs": r * 40, p + "rd.bytes": r * 4_000_000, p + "rd.times": r,
                    p + "wr.reqs": r * 30, p + "wr.bytes": r * 3_000_000, p + "wr.times": r,
                    p + "fl.reqs": r, p + "fl.times": r, p + "allocation": 1 << 20,
                    p + "capacity": 8 << 30, p + "physical": 1 << 20})
    return rec


class _QemuShapedHost:
    """A connection whose getAllDomainStats answers `n` QEMU-shaped records."""

    def __init__(self, n: int):
        self.doms = [_FakeDom(i) for i in range(n)]
        self.round = 0

    def getAllDomainStats(self, _groups: int, _flags: int) -> list:  # noqa: N802
        self.round += 1
        return [(d, qemu_record(i, self.round)) for i, d in enumerate(self.doms)]

    def getCPUStats(self, _cpu: int, _flags: int) -> dict:  # noqa: N802
        return {"kernel": self.round * 10**9, "user": self.round * 2 * 10**9,
                "idle": self.round * 5 * 10**9, "iowait": 0}

    def getMemoryStats(self, _cell: int, _flags: int) -> dict:  # noqa: N802
        return {"total": 16 << 20, "free": 4 << 20, "buffers": 1 << 20, "cached": 2 << 20}

    def getInfo(self) -> list:  # noqa: N802
        return ["x86_64", 16384, 8, 2400, 1, 1, 8, 1]


class _HostShim:
    """What the collector uses of a virt Host, around a prepared connection."""

    def __init__(self, conn):
        self.label, self.uri, self.family = "bench", "qemu:///bench", "KVM"
        self.in_process, self.generation, self._conn = True, 1, conn

    def conn(self):
        return self._conn

    def info(self, _key, compute):
        return compute(self._conn)

    @staticmethod
    def unsupported(_exc) -> bool:
        return False


def _rounds(col: stats.Collector, runs: int, dt: float = 15.0) -> list[float]:
    """Thread CPU seconds of `runs` rounds (simulated sample times `dt` apart)."""
    out = []
    t = time.time()
    for k in range(runs):
        cpu0 = time.thread_time()
        col.collect_once(now=t + k * dt)
        out.append(time.thread_time() - cpu0)
    return out


def bench_collection(runs: int, guests: int) -> dict:
    res: dict = {"guests": guests, "budget_s": BUDGET}
    with tempfile.TemporaryDirectory() as tmp:
        node = write_node(os.path.join(tmp, "node.xml"), guests)
        virt.configure([HostConfig.make("test://" + node)])
        virt.manager().wait_connected(60)
        col = stats.Collector(stats.Settings())
        col.collect_once()                      # warm up (first connection facts)
        cpu = _rounds(col, runs)
        virt.shutdown()
    res["test_driver_cpu_s"] = statistics.median(cpu)
    res["test_driver_core_percent"] = 100 * res["test_driver_cpu_s"] / 15.0
    host = _HostShim(_QemuShapedHost(guests))
    col = stats.Collector(stats.Settings(), hosts=lambda: [host])
    _rounds(col, 2)                             # rings and rates set up
    cpu = _rounds(col, runs)
    res["qemu_shaped_cpu_s"] = statistics.median(cpu)
    res["qemu_shaped_core_percent"] = 100 * res["qemu_shaped_cpu_s"] / 15.0
    res["qemu_shaped_metric_values"] = sum(len(v) for v in col.latest_all("bench")[1].values())
    return res


def _summary_request(cls: str = "KVM_VirtualSystemManagementService") -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0">'
            f'<MESSAGE ID="1" PROTOCOLVERSION="1.0"><SIMPLEREQ>'
            f'<METHODCALL NAME="GetSummaryInformation"><LOCALCLASSPATH><LOCALNAMESPACEPATH>'
            f'<NAMESPACE NAME="root"/><NAMESPACE NAME="virt"/></LOCALNAMESPACEPATH>'
            f'<CLASSNAME NAME="{cls}"/></LOCALCLASSPATH></METHODCALL>'
            f'</SIMPLEREQ></MESSAGE></CIM>').encode()


def _post(host: str, port: int, body: bytes, runs: int) -> tuple[list[float], bytes]:
    import http.client
    conn = http.client.HTTPConnection(host, port, timeout=600)
    headers = {"Content-Type": 'application/xml; charset="utf-8"', "CIMOperation": "MethodCall",
               "CIMMethod": "GetSummaryInformation",
               "CIMObject": "root%2Fvirt%3AKVM_VirtualSystemManagementService"}
    times, data = [], b""
    for _ in range(runs):
        t0 = time.perf_counter()
        conn.request("POST", "/cimom", body, headers)
        resp = conn.getresponse()
        data = resp.read()
        times.append(time.perf_counter() - t0)
        if resp.status != 200 or b"<ERROR" in data[:3000]:
            raise RuntimeError(f"GetSummaryInformation failed: {resp.status} {data[:600]!r}")
    conn.close()
    return times, data


def bench_summary(runs: int, hosts: int, guests_list: list[int]) -> list[dict]:
    """GetSummaryInformation (NULL, NULL) of `hosts` test-driver hosts of G guests each,
    through the real server: the median round trip of the raw request (response read
    but not parsed) and the server's own time for it (its /metrics histogram)."""
    out = []
    for guests in guests_list:
        with tempfile.TemporaryDirectory() as tmp:
            uris = ["test://" + write_node(os.path.join(tmp, f"node{h}.xml"), guests)
                    for h in range(hosts)]
            srv = start_server(hosts=uris, timeout=300)
            try:
                _post(srv.host, srv.port, _summary_request(), 1)      # collector started
                before = _server_seconds(srv)
                cpu0 = _process_cpu(srv.pid)
                times, data = _post(srv.host, srv.port, _summary_request(), runs)
                cpu = (_process_cpu(srv.pid) - cpu0) / runs
                after = _server_seconds(srv)
            finally:
                srv.stop()
        server_s = None if before is None or after is None or after[1] == before[1] \
            else (after[0] - before[0]) / (after[1] - before[1])
        n = data.count(b"SummaryInformation") // 2
        res = {"hosts": hosts, "guests_per_host": guests, "systems": hosts * guests,
               "round_trip_s": statistics.median(times), "response_bytes": len(data),
               "instances": data.count(b"INSTANCE CLASSNAME") or n}
        res["server_cpu_s"] = cpu
        if server_s is not None:
            res["server_s_mean"] = server_s
        out.append(res)
    return out


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_seconds(srv) -> "tuple[float, float] | None":
    """(sum, count) of the server's time for GetSummaryInformation requests, from its
    own request histogram at /metrics."""
    import urllib.request
    try:
        text = urllib.request.urlopen(f"{srv.url}/metrics", timeout=60).read().decode()
    except OSError:
        return None
    total = count = None
    for line in text.splitlines():
        if 'operation="GetSummaryInformation"' not in line:
            continue
        if line.startswith("kvmp_cimom_request_duration_seconds_sum"):
            total = float(line.rsplit(" ", 1)[1])
        elif line.startswith("kvmp_cimom_request_duration_seconds_count"):
            count = float(line.rsplit(" ", 1)[1])
    return None if count is None or total is None else (total, count)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--guests", type=int, default=1000)
    ap.add_argument("--json", default=None)
    ap.add_argument("--skip-summary", action="store_true")
    ap.add_argument("--summary-hosts", type=int, default=10)
    ap.add_argument("--summary-guests", default="100,1000")
    args = ap.parse_args(argv)
    col = bench_collection(args.runs, args.guests)
    print(f"collection, {col['guests']} guests, one round (CPU, median of {args.runs}):")
    print(f"  test driver : {col['test_driver_cpu_s'] * 1000:7.1f} ms = "
          f"{col['test_driver_core_percent']:.2f} % of one core at 15 s")
    print(f"  QEMU-shaped : {col['qemu_shaped_cpu_s'] * 1000:7.1f} ms = "
          f"{col['qemu_shaped_core_percent']:.2f} % of one core at 15 s "
          f"({col['qemu_shaped_metric_values']} values per round)")
    print(f"  goal        : <= {BUDGET * 1000:.0f} ms (1 % of one core)")
    results: dict = {"collection": col}
    ok = max(col["test_driver_cpu_s"], col["qemu_shaped_cpu_s"]) <= BUDGET
    if not args.skip_summary:
        guests = [int(g) for g in args.summary_guests.split(",")]
        summ = bench_summary(args.runs, args.summary_hosts, guests)
        results["summary"] = summ
        print(f"GetSummaryInformation(NULL, NULL), {args.summary_hosts} test-driver hosts "
              f"(median of {args.runs}):")
        for r in summ:
            srv_t = r.get("server_s_mean")
            print(f"  {r['systems']:6d} systems: round trip {r['round_trip_s'] * 1000:8.1f} ms, "
                  f"server {'-' if srv_t is None else f'{srv_t * 1000:8.1f} ms'} "
                  f"(CPU {r['server_cpu_s'] * 1000:7.1f} ms), "
                  f"{r['response_bytes'] / 1e6:.1f} MB, "
                  f"{r['round_trip_s'] / r['systems'] * 1e6:.1f} us per system")
        big = summ[-1]
        ok = ok and min(big.get("server_s_mean", big["round_trip_s"]), big["server_cpu_s"]) <= 1.0
    if args.json:
        write_json(args.json, results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
