"""Benchmark of the snapshot model (issue 13) through the embedded server.

libvirt's test driver with a node file of N guests (the benchmark shape of
bench_model.py) with S snapshots each (a chain, each holding the guest's
definition, as libvirt stores snapshots), default N = 1000, S = 5:

* EnumerateInstances of KVM_VirtualSystemSnapshotSettingData (every snapshot
  VSSD, filled from the snapshot's definition): target <= 0.5 s server time;
* AssociatorNames / Associators of one guest over KVM_SnapshotOfVirtualSystem
  (one guest's snapshots): target <= 10 ms server time;
* EnumerateInstanceNames of the snapshots, for comparison.

Server time: the prepared CIM-XML request sent over a kept-alive connection,
from its first byte to the response's last byte (medians of --runs runs).

    python benchmarks/bench_snapshots.py [--guests 1000] [--snapshots 5] [--runs 7]
                                         [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from pywbem import CIMInstanceName  # noqa: E402

from benchmarks._timing import imethod_request, post_time, write_json  # noqa: E402
from tests.fixtures.generate import _NODE_HEAD, bench_domain_xml  # noqa: E402
from tests.support.server import start_server  # noqa: E402

NS = "root/virt"
TARGETS = {"EnumerateInstances snapshot VSSD": 0.5,
           "AssociatorNames SnapshotOfVirtualSystem (one guest)": 0.010,
           "Associators SnapshotOfVirtualSystem (one guest)": 0.010}


def _domain_with_snapshots(i: int, snapshots: int) -> str:
    """A test-driver domain with a chain of snapshots (test:domainsnapshot elements)."""
    xml = bench_domain_xml(i, state=1 if i % 2 == 0 else 5)
    plain = re.sub(r"\s*<test:runstate>.*?</test:runstate>", "", xml)
    plain = plain.replace(" xmlns:test='http://libvirt.org/schemas/domain/test/1.0'", "")
    snaps = []
    for s in range(snapshots):
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


def write_node(path: str, guests: int, snapshots: int) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(_NODE_HEAD)
        for i in range(guests):
            f.write(_domain_with_snapshots(i, snapshots))
            f.write("\n")
        f.write("</node>\n")
    return path


def _classname(cn: str) -> str:
    return f'<CLASSNAME NAME="{cn}"/>'


def _instname(path: CIMInstanceName) -> str:
    p = path.copy()
    p.namespace = None
    return p.tocimxmlstr()


def run(guests: int, snapshots: int, runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-snap-") as workdir:
        node = write_node(os.path.join(workdir, "node.xml"), guests, snapshots)
        server = start_server(hosts=[f"test://{node}"], extra_args=["--log-level", "warning"])
        try:
            conn = server.conn(NS, timeout=600)
            cs = CIMInstanceName("KVM_ComputerSystem", {"CreationClassName":
                                                        "KVM_ComputerSystem",
                                                        "Name": "guest0000"})
            count = len(conn.EnumerateInstanceNames("KVM_VirtualSystemSnapshotSettingData"))
            one = len(conn.AssociatorNames(cs.copy(), AssocClass="KVM_SnapshotOfVirtualSystem"))
            ops = {
                "EnumerateInstanceNames snapshot VSSD": ("EnumerateInstanceNames",
                    f'<IPARAMVALUE NAME="ClassName">'
                    f'{_classname("KVM_VirtualSystemSnapshotSettingData")}</IPARAMVALUE>'),
                "EnumerateInstances snapshot VSSD": ("EnumerateInstances",
                    f'<IPARAMVALUE NAME="ClassName">'
                    f'{_classname("KVM_VirtualSystemSnapshotSettingData")}</IPARAMVALUE>'),
                "AssociatorNames SnapshotOfVirtualSystem (one guest)": ("AssociatorNames",
                    f'<IPARAMVALUE NAME="ObjectName">{_instname(cs)}</IPARAMVALUE>'
                    f'<IPARAMVALUE NAME="AssocClass">'
                    f'{_classname("KVM_SnapshotOfVirtualSystem")}</IPARAMVALUE>'),
                "Associators SnapshotOfVirtualSystem (one guest)": ("Associators",
                    f'<IPARAMVALUE NAME="ObjectName">{_instname(cs)}</IPARAMVALUE>'
                    f'<IPARAMVALUE NAME="AssocClass">'
                    f'{_classname("KVM_SnapshotOfVirtualSystem")}</IPARAMVALUE>'),
            }
            out = {"guests": guests, "snapshots_each": snapshots, "snapshots": count,
                   "of_one_guest": one, "runs": runs, "ops": {}}
            for name, (method, params) in ops.items():
                body = imethod_request(NS, method, params)
                post_time(server.host, server.port, NS, method, body, 1, name, 600)  # warm
                median, data = post_time(server.host, server.port, NS, method, body, runs,
                                         name, 600)
                out["ops"][name] = {"server_s": median, "bytes": len(data)}
            return out
        finally:
            server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--guests", type=int, default=1000)
    ap.add_argument("--snapshots", type=int, default=5)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", default=os.path.join(TOP, "benchmarks", "results",
                                                   "snapshots.json"))
    args = ap.parse_args()
    out = run(args.guests, args.snapshots, args.runs)
    ok = out["snapshots"] == args.guests * args.snapshots and \
        out["of_one_guest"] == args.snapshots
    print(f"{out['guests']} guests x {out['snapshots_each']} snapshots: "
          f"{out['snapshots']} snapshot VSSDs, {out['of_one_guest']} of one guest")
    for name, r in out["ops"].items():
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            verdict = "ok" if r["server_s"] <= target else "OVER TARGET"
            ok = ok and r["server_s"] <= target
        print(f"  {name:55s} {r['server_s'] * 1000:9.1f} ms  {r['bytes']:>10d} B  "
              f"{'(target %g ms) ' % (target * 1000) if target else ''}{verdict}")
    out["ok"] = ok
    write_json(args.json, out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
