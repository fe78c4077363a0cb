"""Benchmark of the allocation capabilities (issue 5): their cost does not grow with the
number of volumes in a storage pool.

A private libvirtd (tests/fixtures/libvirtd.py) serves a directory pool
``bench`` holding V volumes (V = 0 and 1000 by default: sparse files made in
the pool's directory, then a pool refresh), and kvm-cimom serves its QEMU
driver.  Measured through pywbem, as medians of several runs, for each V:

* EnumerateInstances of KVM_AllocationCapabilities;
* EnumerateInstances of KVM_SettingsDefineCapabilities (every AC and template);
* Associators of the pool's AllocationCapabilities through
  SettingsDefineCapabilities (GetInstance of each template);
* for contrast, EnumerateInstanceNames of KVM_StorageVolume, which does grow
  with V (so that flat figures above mean something).

The volume counts alternate from run to run (the pool is filled and emptied
between them), so that changes in the machine's load affect them alike.

    python benchmarks/bench_pools.py [--runs 7] [--volumes 0,1000] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

import libvirt  # noqa: E402
from pywbem import CIMInstanceName  # noqa: E402

from benchmarks._timing import write_json  # noqa: E402
from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available  # noqa: E402
from tests.support.server import start_server  # noqa: E402

POOL = "bench"
NS = "root/virt"
#: Largest accepted ratio of the AC/SDC medians with the most volumes to those with none
#: (differences below SLACK_S seconds are noise, whatever their ratio).
MAX_RATIO = 1.5
SLACK_S = 0.005


def _fill_pool(conn, directory: str, count: int) -> None:
    """Make the pool hold exactly `count` volumes (sparse 1 MiB files, then a refresh)."""
    pool = conn.storagePoolLookupByName(POOL)
    have = sorted(f for f in os.listdir(directory) if f.startswith("vol"))
    for name in have[count:]:
        os.unlink(os.path.join(directory, name))
    for i in range(len(have), count):
        with open(os.path.join(directory, f"vol{i:05d}.img"), "wb") as f:
            f.truncate(1 << 20)
    pool.refresh(0)
    assert pool.numOfVolumes() == count, (pool.numOfVolumes(), count)


def run(volumes: list[int], runs: int) -> dict:
    d = PrivateLibvirtd().start()
    server = None
    try:
        conn = libvirt.open(d.uri("qemu"))
        directory = os.path.join(d.workdir, POOL)
        pool = conn.storagePoolDefineXML(f"<pool type='dir'><name>{POOL}</name><target><path>"
                                         f"{directory}</path></target></pool>", 0)
        pool.build(0)
        pool.create(0)
        server = start_server(hosts=[d.uri("qemu")])
        cim = server.conn(NS)
        ac = CIMInstanceName("KVM_AllocationCapabilities", {"InstanceID": f"DiskPool/{POOL}"},
                             namespace=NS)
        cim.EnumerateInstances("KVM_SettingsDefineCapabilities")   # warm the host's facts
        ops = (("ac_enumerate", lambda: cim.EnumerateInstances("KVM_AllocationCapabilities")),
               ("sdc_enumerate",
                lambda: cim.EnumerateInstances("KVM_SettingsDefineCapabilities")),
               ("pool_templates",
                lambda: cim.Associators(ac, AssocClass="KVM_SettingsDefineCapabilities")),
               ("volume_names", lambda: cim.EnumerateInstanceNames("KVM_StorageVolume")))
        times: dict = {v: {name: [] for name, _ in ops} for v in volumes}
        counts: dict = {v: {} for v in volumes}
        # The volume counts alternate run by run, so that drift of the machine's load
        # affects them alike.
        for _ in range(runs):
            for v in volumes:
                _fill_pool(conn, directory, v)
                for name, func in ops:
                    t0 = time.perf_counter()
                    counts[v][name] = len(func())
                    times[v][name].append(time.perf_counter() - t0)
        out: dict = {"runs": runs, "volumes": {
            str(v): {name: {"median_s": round(statistics.median(times[v][name]), 4),
                            "count": counts[v][name]} for name, _ in ops}
            for v in volumes}}
        conn.close()
        return out
    finally:
        if server is not None:
            server.stop()
        d.cleanup()


def report(out: dict) -> tuple[list[str], bool]:
    lines = [f"medians of {out['runs']} runs (s), instances in parentheses"]
    names = ("ac_enumerate", "sdc_enumerate", "pool_templates", "volume_names")
    lines.append(f"{'volumes':>8} " + " ".join(f"{n:>22}" for n in names))
    for v, row in out["volumes"].items():
        lines.append(f"{v:>8} " + " ".join(
            f"{row[n]['median_s']:>14.4f} ({row[n]['count']:>5})" for n in names))
    sizes = list(out["volumes"])
    ok = True
    if len(sizes) > 1:
        lo, hi = out["volumes"][sizes[0]], out["volumes"][sizes[-1]]
        for n in names[:3]:
            same = lo[n]["count"] == hi[n]["count"]
            ratio = hi[n]["median_s"] / max(lo[n]["median_s"], 1e-6)
            good = same and (ratio <= MAX_RATIO or
                             hi[n]["median_s"] - lo[n]["median_s"] <= SLACK_S)
            ok &= good
            lines.append(f"{n}: {sizes[-1]} vs {sizes[0]} volumes: same instance count: {same}, "
                         f"time ratio {ratio:.2f} (at most {MAX_RATIO}) {'ok' if good else 'FAIL'}")
        ratio = hi["volume_names"]["median_s"] / max(lo["volume_names"]["median_s"], 1e-6)
        lines.append(f"volume_names (grows with the volumes, for contrast): ratio {ratio:.1f}")
    out["independent_of_volume_count"] = ok
    return lines, ok


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--volumes", default="0,1000")
    p.add_argument("--json", help="write the results here as JSON")
    args = p.parse_args(argv)
    if not libvirtd_available():
        print("libvirtd is not installed: skipped")
        return 0
    out = run([int(v) for v in args.volumes.split(",")], args.runs)
    lines, ok = report(out)
    print("\n".join(lines))
    if args.json:
        write_json(args.json, out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
