"""Benchmark of issue 16: large enumerations against libvirt's own floor, streaming, memory.

Two parts, each measured as median, min and max of several rounds:

``libvirtd``: a private libvirtd with N (default 1000) defined guests of the
benchmark shape (tests/fixtures/generate.py) whose disks are volumes of a
directory storage pool (the case of a managed host).  Every round measures,
one right after the other so that the machine's load is alike:

* the floor: ``listAllDomains`` + ``XMLDesc`` of every guest over one open
  connection (libvirt-python in this process), which no server can beat;
* server time (a prepared request over a kept-alive connection, from its
  first byte to the response's last byte, unparsed) of EnumerateInstances of
  every RASD (CIM_ResourceAllocationSettingData), of KVM_DiskRASD, of
  KVM_VirtualSystemSettingData; GetInstance of one KVM_ComputerSystem and
  AssociatorNames through KVM_SystemDevice (these two as the median of 30
  calls per round);
* the first batch of 100 of an OpenEnumerateInstances over every RASD (then
  CloseEnumeration), and the time to the first byte of the every-RASD
  EnumerateInstances sent without ``TE: trailers`` (as pywbem sends it).

The ratio to the floor (median / median of the floor) is printed beside each.
The server's CPU seconds per large request (from /proc) are printed too: on a
machine shared with other work they vary less than its wall-clock time.

``test``: libvirt's test driver with 1,000 and M (default 10,000) guests: every
RASD (server time, and the floor of the test driver in this process), the
server's peak RSS (VmHWM: the driver's loading of its node included) and its peak
while serving (VmHWM reset once the host answers), and its RSS after `--repeat` (25)
such requests; beside them the RSS of a bare Python process holding only the test
driver with the same node (opened, every domain's XML read once), before and after
glibc's ``malloc_trim`` (the server gives the freed node document back, stop 31): what
the in-process driver alone costs, which the server's figures include.

The load average (1 min) is printed at the start and the end of each part: other
work on the machine slows every figure but the ratios to the floor.

    python benchmarks/bench_scale.py [--guests 1000] [--big 10000] [--runs 5]
        [--repeat 25] [--parts libvirtd,test,testd] [--json FILE] [--raw-small]

``testd`` (not in the default parts): the test part's M guests served by a private
libvirtd instead of inside the server, for the server's own RSS (the in-process test
driver holds the whole node parsed: 354 MiB of the server's at 10,000 guests).

``--raw-small``: the small requests also over a raw socket, in extra columns (http.client
spends 0.15-0.2 ms of each on its own side).
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
from typing import Any, Callable, Optional

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from pywbem import CIMInstanceName  # noqa: E402

from benchmarks._timing import imethod_request, write_json  # noqa: E402
from tests.fixtures.generate import bench_domain_xml, write_node  # noqa: E402
from tests.support.server import start_server  # noqa: E402

NS = "root/virt"

#: The goals of issue 16 (seconds; ratio to the floor), at N = 1000 on libvirtd.
GOALS = {
    "all RASDs": (0.5, 3.0),
    "DiskRASDs": (0.25, 1.5),
    "VSSDs": (0.2, 1.3),
    "GetInstance ComputerSystem": (0.0008, None),
    "AssociatorNames SystemDevice": (0.0010, None),
    "OpenEnumerateInstances first 100": (0.05, None),
    "first byte all RASDs (no TE)": (0.1, None),
}
GOAL_BIG_S = 2.0           # every RASD of 10,000 test-driver guests
GOAL_RSS_MIB = 400.0       # peak RSS serving that, and flat after --repeat requests


def _cls(cn: str) -> str:
    return f'<CLASSNAME NAME="{cn}"/>'


def _ei(cn: str) -> bytes:
    return imethod_request(NS, "EnumerateInstances",
                           f'<IPARAMVALUE NAME="ClassName">{_cls(cn)}</IPARAMVALUE>'
                           '<IPARAMVALUE NAME="DeepInheritance"><VALUE>TRUE</VALUE>'
                           '</IPARAMVALUE>')


def _instname(path: CIMInstanceName) -> str:
    p = path.copy()
    p.namespace = None
    p.host = None
    return p.tocimxmlstr()


class Client:
    """One kept-alive HTTP connection to the server, sending prepared requests."""

    def __init__(self, server: Any):
        self.conn = http.client.HTTPConnection(server.host, server.port, timeout=900)

    def post(self, method: str, body: bytes, te: bool = False) -> tuple[float, float, bytes]:
        """(seconds to the response head, seconds to its last byte, body)."""
        headers = {"Content-Type": 'application/xml; charset="utf-8"',
                   "CIMOperation": "MethodCall", "CIMMethod": method, "CIMObject": "root%2Fvirt"}
        if te:
            headers["TE"] = "trailers"
        t0 = time.perf_counter()
        self.conn.request("POST", "/cimom", body, headers)
        resp = self.conn.getresponse()
        t_head = time.perf_counter() - t0
        data = resp.read()
        t_all = time.perf_counter() - t0
        if resp.status != 200 or b"<ERROR" in data[:3000]:
            raise RuntimeError(f"{method} failed: {resp.status} {data[:600]!r}")
        return t_head, t_all, data

    def close(self) -> None:
        self.conn.close()


# -- small17 (stop 21): the small requests over a raw socket as well (--raw-small) -----------
# http.client spends 0.15-0.2 ms of each small request on its own side (building the
# request, parsing the response head); with --raw-small each round also times the same
# prepared requests written and read on a plain socket (Content-Length framing, nothing
# parsed), in extra columns "... (raw socket)": the server's share of the figures above.

RAW_SMALL = False


class RawClient:
    """One kept-alive plain socket to the server, sending prepared requests."""

    def __init__(self, server: Any):
        import socket
        self.sock = socket.create_connection((server.host, server.port), timeout=900)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def post(self, method: str, body: bytes) -> float:
        """Seconds from the request's first byte sent to the response's last received."""
        data = (f"POST /cimom HTTP/1.1\r\nHost: bench\r\nContent-Type: application/xml; "
                f'charset="utf-8"\r\nCIMOperation: MethodCall\r\nCIMMethod: {method}\r\n'
                f"CIMObject: root%2Fvirt\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body
        t0 = time.perf_counter()
        self.sock.sendall(data)
        buf = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"{method}: connection closed")
            buf += chunk
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", buf[:end])
                if m is None:
                    raise RuntimeError(f"{method}: no Content-Length in {buf[:end]!r}")
                if len(buf) >= end + 4 + int(m.group(1)):
                    t = time.perf_counter() - t0
                    if not buf.startswith(b"HTTP/1.1 200") or b"<ERROR" in buf[:3000]:
                        raise RuntimeError(f"{method} failed: {buf[:600]!r}")
                    return t

    def close(self) -> None:
        self.sock.close()


def _raw_small(server: Any, small: dict[str, tuple[str, bytes]],
               times: dict[str, list[float]]) -> None:
    """One round of the small requests over a raw socket (median of 30 each)."""
    raw = RawClient(server)
    try:
        for name, (method, body) in small.items():
            raw.post(method, body)          # its connection's first request
            times.setdefault(f"{name} (raw socket)", []).append(
                statistics.median(raw.post(method, body) for _ in range(30)))
    finally:
        raw.close()

# -- end of small17's block ---------------------------------------------------------------


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values)}


def floor_time(uri: str) -> Callable[[], float]:
    """A function timing libvirt's floor over one connection opened once."""
    import libvirt
    conn = libvirt.open(uri)

    def run() -> float:
        t0 = time.perf_counter()
        for d in conn.listAllDomains(0):
            d.XMLDesc(0)
        return time.perf_counter() - t0
    return run


def _small_ops(cs: CIMInstanceName) -> dict[str, tuple[str, bytes]]:
    assoc = (f'<IPARAMVALUE NAME="ObjectName">{_instname(cs)}</IPARAMVALUE>'
             f'<IPARAMVALUE NAME="AssocClass">{_cls("KVM_SystemDevice")}</IPARAMVALUE>')
    return {
        "GetInstance ComputerSystem": (
            "GetInstance", imethod_request(NS, "GetInstance", '<IPARAMVALUE NAME="InstanceName">'
                                           f'{_instname(cs)}</IPARAMVALUE>')),
        "AssociatorNames SystemDevice": (
            "AssociatorNames", imethod_request(NS, "AssociatorNames", assoc)),
    }


_CTX_RE = re.compile(rb'NAME="EnumerationContext"[^>]*><VALUE>([^<]*)</VALUE>')


def first_pull_batch(client: Client) -> float:
    """Seconds of an OpenEnumerateInstances(every RASD, MaxObjectCount=100); closes it."""
    body = imethod_request(NS, "OpenEnumerateInstances",
                           '<IPARAMVALUE NAME="ClassName">'
                           f'{_cls("CIM_ResourceAllocationSettingData")}</IPARAMVALUE>'
                           '<IPARAMVALUE NAME="MaxObjectCount"><VALUE>100</VALUE></IPARAMVALUE>')
    _, t, data = client.post("OpenEnumerateInstances", body)
    if data.count(b"<VALUE.INSTANCEWITHPATH>") != 100:
        raise RuntimeError("the first pull batch does not hold 100 instances")
    m = _CTX_RE.search(data)
    if m and m.group(1):
        client.post("CloseEnumeration", imethod_request(
            NS, "CloseEnumeration", '<IPARAMVALUE NAME="EnumerationContext"><VALUE>'
            f'{m.group(1).decode()}</VALUE></IPARAMVALUE>'))
    return t


def measure_libvirtd(server: Any, uri: str, n: int, runs: int) -> dict[str, Any]:
    """Every operation of the libvirtd part, `runs` rounds, each with its floor."""
    load0 = os.getloadavg()
    floor = floor_time(uri)
    client = Client(server)
    cs = CIMInstanceName("KVM_ComputerSystem",
                         {"CreationClassName": "KVM_ComputerSystem", "Name": "guest0000"})
    big = {"all RASDs": ("EnumerateInstances", _ei("CIM_ResourceAllocationSettingData")),
           "DiskRASDs": ("EnumerateInstances", _ei("KVM_DiskResourceAllocationSettingData")),
           "VSSDs": ("EnumerateInstances", _ei("KVM_VirtualSystemSettingData"))}
    small = _small_ops(cs)
    times: dict[str, list[float]] = {k: [] for k in ["floor", *big,
                                                     *(f"{b} (server CPU)" for b in big),
                                                     *small,
                                                     "OpenEnumerateInstances first 100",
                                                     "first byte all RASDs (no TE)"]}
    sizes: dict[str, int] = {}
    for method, body in list(big.values()) + list(small.values()):
        client.post(method, body)               # warm up
    floor()
    for r in range(runs):
        times["floor"].append(floor())
        for name, (method, body) in big.items():
            c0 = cpu_seconds(server.pid)
            _, t, data = client.post(method, body)
            times[name].append(t)
            times[f"{name} (server CPU)"].append(cpu_seconds(server.pid) - c0)
            sizes[name] = len(data)
        for name, (method, body) in small.items():
            times[name].append(statistics.median(client.post(method, body)[1]
                                                 for _ in range(30)))
        if RAW_SMALL:
            _raw_small(server, small, times)
        times["OpenEnumerateInstances first 100"].append(first_pull_batch(client))
        head, _, _ = client.post(*big["all RASDs"])
        times["first byte all RASDs (no TE)"].append(head)
        print(f"    round {r + 1}/{runs}: floor {times['floor'][-1]:.3f} s, all RASDs "
              f"{times['all RASDs'][-1]:.3f} s", flush=True)
    client.close()
    return {"n": n, "load_start": load0, "load": os.getloadavg(), "bytes": sizes,
            "ops": {k: _stats(v) for k, v in times.items()}}


def run_libvirtd(n: int, runs: int) -> dict[str, Any]:
    import libvirt

    from tests.fixtures.libvirtd import PrivateLibvirtd
    daemon = PrivateLibvirtd().start()
    try:
        uri = daemon.uri("qemu")
        lv = libvirt.open(uri)
        images = os.path.join(daemon.workdir, "images")
        os.makedirs(images, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(images, daemon.uid, daemon.gid)
        pool = lv.storagePoolDefineXML(
            f"<pool type='dir'><name>images</name><target><path>{images}</path></target>"
            "</pool>", 0)
        pool.create(0)
        t0 = time.monotonic()
        for i in range(n):
            name = f"guest{i:04d}"
            for vol in (f"{name}-a.qcow2", f"{name}-b.img"):
                pool.createXML(f"<volume><name>{vol}</name><capacity>1073741824</capacity>"
                               "<allocation>0</allocation><target><format type='raw'/>"
                               "</target></volume>", 0)
            lv.defineXML(bench_domain_xml(i, dtype="qemu", image_dir=images))
        lv.close()
        print(f"  libvirtd: {n} guests and {2 * n} volumes defined "
              f"({time.monotonic() - t0:.1f} s)", flush=True)
        server = start_server(hosts=[uri], extra_args=["--log-level", "warning"])
        try:
            return measure_libvirtd(server, uri, n, runs)
        finally:
            server.stop()
    finally:
        daemon.cleanup()


def run_test_daemon(n: int, runs: int, repeat: int) -> list[dict[str, Any]]:
    """The test part with N guests behind a private libvirtd (the ``testd`` part)."""
    from tests.fixtures.libvirtd import PrivateLibvirtd
    daemon = PrivateLibvirtd().start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as workdir:
            os.chmod(workdir, 0o755)     # the daemon's user reads the node file
            return run_test([n], runs, repeat, workdir, socket=daemon.socket)
    finally:
        daemon.cleanup()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used (its time on a loaded machine)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_hwm(pid: int) -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS; whether the kernel let us."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _wait_connected(client: Client, timeout: float = 300.0) -> None:
    """Wait until the server's libvirt host answers (a test driver of 10,000 guests takes
    a while to load its node file)."""
    body = imethod_request(NS, "EnumerateInstanceNames",
                           f'<IPARAMVALUE NAME="ClassName">{_cls("KVM_ComputerSystem")}'
                           '</IPARAMVALUE>')
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.post("EnumerateInstanceNames", body)
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


_DRIVER_ALONE = """
import sys, libvirt
conn = libvirt.open("test://" + sys.argv[1])
for d in conn.listAllDomains(0):
    d.XMLDesc(0)
for line in open("/proc/self/status"):
    if line.startswith(("VmRSS:", "VmHWM:")):
        print(line.split()[0], line.split()[1])
# what the driver holds, its freed node document given back (as the server does)
import ctypes
ctypes.CDLL(None).malloc_trim(0)
for line in open("/proc/self/status"):
    if line.startswith("VmRSS:"):
        print("VmRSStrimmed:", line.split()[1])
"""


def driver_alone_kib(node: str) -> dict[str, int]:
    """{'VmRSS:', 'VmHWM:'} (KiB) of a bare Python process holding only libvirt's test
    driver with `node` open (every domain's XML read once)."""
    import subprocess
    out = subprocess.run([sys.executable, "-c", _DRIVER_ALONE, node], check=True,
                         capture_output=True, text=True, timeout=600).stdout
    return {k: int(v) for k, v in (line.split() for line in out.splitlines())}


def run_test(sizes: list[int], runs: int, repeat: int, workdir: str,
             socket: Optional[str] = None) -> list[dict[str, Any]]:
    """The test part; with `socket` (a libvirtd's) the test driver is served by that daemon
    (``test+unix://<node>?socket=...``), so that the server's RSS is its own."""
    out = []
    for n in sizes:
        node = write_node(os.path.join(workdir, f"node-{n}.xml"), n)
        alone = {} if socket else driver_alone_kib(node)
        uri = f"test+unix://{node}?socket={socket}" if socket else f"test://{node}"
        load0 = os.getloadavg()
        floor = floor_time(uri)
        server = start_server(hosts=[uri], extra_args=["--log-level", "warning"])
        try:
            client = Client(server)
            body = _ei("CIM_ResourceAllocationSettingData")
            _wait_connected(client)
            rss0 = _status_kib(server.pid, "VmRSS")
            hwm0 = _status_kib(server.pid, "VmHWM")
            # The peak while serving, without the driver's loading of its node (before
            # any request): "5" to clear_refs resets the process's VmHWM.
            reset = _reset_hwm(server.pid)
            client.post("EnumerateInstances", body)      # warm up
            floors, times, cpu = [], [], []
            for _ in range(runs):
                floors.append(floor())
                c0 = cpu_seconds(server.pid)
                times.append(client.post("EnumerateInstances", body)[1])
                cpu.append(cpu_seconds(server.pid) - c0)
            rss_runs = _status_kib(server.pid, "VmRSS")
            for _ in range(max(0, repeat - runs - 1)):
                client.post("EnumerateInstances", body)
            client.close()
            hwm = _status_kib(server.pid, "VmHWM")
            res = {"n": n, "via_daemon": bool(socket), "load_start": load0,
                   "load": os.getloadavg(),
                   "floor": _stats(floors),
                   "driver_alone_rss_kib": alone.get("VmRSS:", 0),
                   "all RASDs": _stats(times), "server_cpu": _stats(cpu),
                   "rss_start_kib": rss0,
                   "rss_after_runs_kib": rss_runs,
                   "rss_after_repeat_kib": _status_kib(server.pid, "VmRSS"),
                   "peak_rss_kib": max(hwm0, hwm),
                   "peak_serving_kib": hwm if reset else 0,
                   "driver_alone_trimmed_kib": alone.get("VmRSStrimmed:", 0),
                   "requests": max(repeat, runs + 1)}
        finally:
            server.stop()
        out.append(res)
        print(f"  test driver{' (libvirtd)' if socket else ''} N={n}: all RASDs {res['all RASDs']['median']:.3f} s, "
              f"floor {res['floor']['median']:.3f} s, peak RSS "
              f"{res['peak_rss_kib'] / 1024:.0f} MiB", flush=True)
    return out


def _fmt(s: dict[str, float], floor: float) -> str:
    unit, k = ("ms", 1000.0) if s["median"] < 0.1 else ("s", 1.0)
    return (f"{s['median'] * k:9.4f} {unit:<2} [{s['min'] * k:.4f}-{s['max'] * k:.4f}]"
            f"  x{s['median'] / floor:6.2f} floor")


def report(out: dict[str, Any]) -> list[str]:
    lines = []
    lv = out.get("libvirtd")
    if lv:
        floor = lv["ops"]["floor"]["median"]
        lines.append(f"\nlibvirtd, N={lv['n']} guests (load average 1 min at the start "
                     f"{lv.get('load_start', (0.0,))[0]:.2f}, at the end "
                     f"{', '.join(f'{x:.2f}' for x in lv['load'])}): median [min-max], "
                     "ratio to the floor's median")
        for name, s in lv["ops"].items():
            goal = GOALS.get(name)
            mark = ""
            if goal:
                ok = s["median"] <= goal[0] and (goal[1] is None or s["median"] / floor
                                                 <= goal[1])
                mark = f"  goal <= {goal[0]:g} s" + (f", <= {goal[1]:g}x" if goal[1] else "") \
                    + ("  ok" if ok else "  MISSED")
            lines.append(f"  {name:<36}{_fmt(s, floor)}{mark}")
    for res in out.get("test", []):
        f = res["floor"]["median"]
        s = res["all RASDs"]
        c = res["server_cpu"]
        where = "test driver in a libvirtd" if res.get("via_daemon") else "test driver"
        lines.append(f"\n{where}, N={res['n']} (load {res.get('load_start', (0.0,))[0]:.2f}"
                     f" -> {res['load'][0]:.2f}): all RASDs "
                     f"{_fmt(s, f)} (floor {f:.3f} s); server CPU {c['median']:.3f} s "
                     f"[{c['min']:.3f}-{c['max']:.3f}]")
        lines.append(f"  RSS: start {res['rss_start_kib'] / 1024:.0f} MiB, peak "
                     f"{res['peak_rss_kib'] / 1024:.0f} MiB, after the timed runs "
                     f"{res['rss_after_runs_kib'] / 1024:.0f} MiB, after {res['requests']} "
                     f"requests {res['rss_after_repeat_kib'] / 1024:.0f} MiB"
                     + ("" if res.get("via_daemon") else
                        f"; the test driver alone (bare Python) "
                        f"{res.get('driver_alone_rss_kib', 0) / 1024:.0f} MiB, its freed "
                        f"memory given back "
                        f"{res.get('driver_alone_trimmed_kib', 0) / 1024:.0f} MiB")
                     + (f"; peak while serving (from the first request on) "
                        f"{res['peak_serving_kib'] / 1024:.0f} MiB"
                        if res.get("peak_serving_kib") else ""))
    tests = [t for t in out.get("test", []) if not t.get("via_daemon")]
    if len(tests) >= 2:
        a, b = tests[0], tests[-1]
        per_a = a["all RASDs"]["median"] / a["n"]
        per_b = b["all RASDs"]["median"] / b["n"]
        lines.append(f"per guest: {per_a * 1e6:.0f} us at {a['n']}, {per_b * 1e6:.0f} us at "
                     f"{b['n']} ({(per_b / per_a - 1) * 100:+.0f} %); goal at {b['n']}: "
                     f"<= {GOAL_BIG_S} s, peak RSS <= {GOAL_RSS_MIB:g} MiB and flat")
        lines.append(_big_verdict(b))
    return lines


def _big_verdict(res: dict[str, Any]) -> str:
    """The goal of the largest test node judged: its time, the peak while serving (the
    driver's loading of its node before the first request left out, where the kernel
    let the peak be reset), and the RSS after every request: under the bound and no
    higher than after the timed requests."""
    t = res["all RASDs"]["median"]
    peak = (res.get("peak_serving_kib") or res["peak_rss_kib"]) / 1024
    after = res["rss_after_repeat_kib"] / 1024
    # flat: the last request leaves no more than the timed ones did (a MiB of slack)
    flat = after <= res["rss_after_runs_kib"] / 1024 + 1
    ok = t <= GOAL_BIG_S and peak <= GOAL_RSS_MIB and after <= GOAL_RSS_MIB and flat
    return (f"  N={res['n']}: {t:.3f} s, peak while serving {peak:.0f} MiB, after "
            f"{res['requests']} requests {after:.0f} MiB" + ("  ok" if ok else "  MISSED"))


def main(argv: Any = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--guests", type=int, default=1000)
    p.add_argument("--big", type=int, default=10000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--repeat", type=int, default=25)
    p.add_argument("--parts", default="libvirtd,test")
    p.add_argument("--json", help="write the results here as JSON")
    p.add_argument("--raw-small", action="store_true",
                   help="also time the small requests over a raw socket (small17's block)")
    args = p.parse_args(argv)
    global RAW_SMALL
    RAW_SMALL = args.raw_small
    parts = args.parts.split(",")
    out: dict[str, Any] = {"runs": args.runs}
    if "libvirtd" in parts:
        out["libvirtd"] = run_libvirtd(args.guests, args.runs)
    if "test" in parts:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as workdir:
            out["test"] = run_test(sorted({args.guests, args.big}), args.runs, args.repeat,
                                   workdir)
    if "testd" in parts:
        out["test"] = out.get("test", []) + run_test_daemon(args.big, args.runs, args.repeat)
    print("\n".join(report(out)))
    if args.json:
        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
