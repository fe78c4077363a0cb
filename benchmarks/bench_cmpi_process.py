"""The providers' side of sfcb and OpenPegasus in one process (issue 10 item 12, stop 25).

The embedded server's enumeration path against the CMPI adapter's, over the same
libvirt test-driver node (benchmark guests, tests/fixtures/generate.py), with the
fake broker of tests/cmpi (fake_cmpi) whose calls are made nearly free (what a
server does in C -- set_property, return_instance, new strings and instances,
clone -- is not the providers' Python):

* ``emb``: the embedded server's EnumerateInstances (``Operations.enum_instances_xml``
  with its response form: every RASD class of the module in one call), with the
  collector as the embedded server sets it (heap frozen, thresholds 10000, 10, 10);
* ``sfcb``, ``peg``: the adapter called as each server calls it (one
  ``enum_instances`` per registered subclass, sfcb's and Pegasus' broker fakes:
  sfcb's reused templates, Pegasus' copies), with the collector as the adapter
  leaves it after loading its providers.

Each (tree, path) runs in a process of its own, as each server's provider process
does: no collection is forced between requests, so full collections fall where
they fall.  The request scope of each CMPI request is dropped at its end (its
documents freed in its own time).  Process CPU per request, median (min-max) of
``--rounds`` requests per process, runs interleaved over ``--trees`` (A/B of code
versions: directories holding a checkout each), the ratio to the embedded path of
the same tree and run.  For the CMPI paths also the CPU per instance of the subclass
calls after the first (which reads everything and keeps the rows of the others: they
make their instances from those rows), median (min-max) of every request.

    python benchmarks/bench_cmpi_process.py [--guests 1000] [--runs 2] [--rounds 6]
        [--trees DIR,DIR] [--ops rasd,disk,vssd] [--python PY] [--json FILE]

``--python /usr/bin/python3`` runs the workers under another interpreter (Debian's,
with its python3-lxml and python3-libvirt, as the servers run the providers;
PYTHONPATH must then give it pywbem).  Hold /work/scratch/coord/bench.lock (or the
machine's equivalent) while it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NS = "root/virt"
RASD = "CIM_ResourceAllocationSettingData"
OPS = {"rasd": RASD, "disk": "KVM_DiskResourceAllocationSettingData",
       "vssd": "KVM_VirtualSystemSettingData"}
PATHS = ("emb", "sfcb", "peg")


# -- worker: one tree, one path ------------------------------------------------------------

def _free_fake(F: Any, templates: Any) -> None:
    """The fake's calls that a server makes in C, made (nearly) free."""
    class FreeValue:
        __slots__ = ("uint8", "uint16", "uint32", "uint64", "sint8", "sint16", "sint32",
                     "sint64", "real32", "real64", "boolean", "char16", "string", "chars",
                     "array", "dateTime", "inst", "ref", "args", "filter", "Enum")

    class FreeCopier:
        def __init__(self, cmpi: Any = None):
            pass

        def clone(self, cinst: Any, box: Any) -> Any:
            new = object.__new__(type(cinst))
            new.__dict__.update(cinst.__dict__)
            new._owned = True
            return new

        def release(self, cinst: Any) -> None:
            cinst._released = True

    F.CMPIValue = FreeValue
    F.CMPIInstance.set_property = lambda self, name, value, ctype: None
    F.CMPIObjectPath.add_key = lambda self, name, value, ctype: None
    F.CMPIArray.set = lambda self, index, value, ctype: None
    F.CMPIResult.return_instance = lambda self, inst: self.instances.append(inst)
    F.CMPIResult.return_objectpath = lambda self, path: self.paths.append(path)
    F.CMPIBroker.new_string = lambda self, s: F.CMPIString(s)
    templates.copier_of = FreeCopier
    try:
        from kvm_providers.cmpi import chars   # pylint: disable=import-outside-toplevel
    except ImportError:         # a checkout before stop 27: strings through CMPIStrings
        return
    # the stand-in CMPIString as in a server (ctypes), its function table none
    chars.text_value_of = lambda conv: chars.TextValue(conv.cmpi, 0)


def worker(args: argparse.Namespace) -> None:
    import gc

    sys.path[:0] = [args.tree, os.path.join(args.tree, "tests", "cmpi")]
    import fake_cmpi as F
    sys.modules["cmpi"] = F
    F.SWIG_TYPES_READY = True
    from kvm_providers import virt
    from kvm_providers.cimom.providers import (Operations, ProviderEntry, ProviderTable,
                                               make_env_factory)
    from kvm_providers.cimxml import writer as W
    from kvm_providers.cmpi import adapter, loader, templates
    from kvm_providers.config import Config
    from kvm_providers.model.kinds import KINDS
    from kvm_providers.provider import request_scope
    from kvm_providers.registry import registrations
    from kvm_providers.schema import default_schema

    loader.raw_broker_log = F.raw_log
    _free_fake(F, templates)
    rasds = [f"KVM_{k.rasd_class}" for k in KINDS]
    cfg = Config()
    cfg.add_host(f"test://{args.node}", None, None)
    assert virt.configure(cfg.effective_hosts()).wait_connected(60), "host did not connect"
    schema = default_schema()
    ops = args.ops.split(",")

    def classes(op: str) -> list[str]:
        return rasds if OPS[op] == RASD else [OPS[op]]

    def module_of(cn: str) -> str:
        return next(r.module for r in registrations()
                    if r.classname.lower() == cn.lower() and NS in r.namespaces)

    if args.path == "emb":
        entries = [ProviderEntry(r.classname, r.module, r.types, ns) for r in registrations()
                   for ns in r.namespaces if schema.has_namespace(ns)
                   and schema.has_class(ns, r.classname)]
        ops_ref: list = []
        table = Operations(ProviderTable(schema, entries, make_env_factory(ops_ref)))
        ops_ref.append(table)

        def request(op: str) -> int:
            form = W.InstanceForm("VALUE.NAMEDINSTANCE", NS)
            with request_scope():
                return sum(1 for _ in table.enum_instances_xml(NS, OPS[op], None, True,
                                                               None, form))
    else:
        broker = F.CMPIBroker(name="Pegasus" if args.path == "peg" else "RequestHandler")
        for cls in schema.all_classes(NS):
            broker.declare(cls)
        ctx = broker.context()
        provs: dict[str, Any] = {}
        for op in ops:
            for cn in classes(op):
                mod = module_of(cn)
                if mod not in provs:
                    provs[mod] = adapter.CMPIProxyProvider(
                        "kvm_providers_" + mod.rsplit(".", 1)[1], broker, ctx, cmpi=F,
                        module=mod)
                broker.register(cn, provs[mod], superclass=RASD if OPS[op] == RASD else None)

        def request(op: str) -> int:
            n = 0
            calls = []
            for cn in sorted(classes(op), key=str.lower):     # one call per subclass
                rslt = F.CMPIResult._new()
                t0 = time.process_time()
                rc = F.target_call(broker._provider(cn), "enum_instances",
                                   broker.call_context(ctx), rslt,
                                   broker.new_object_path(NS, cn), None)
                calls.append((time.process_time() - t0, len(rslt.instances)))
                assert rc == (0, None), rc
                n += len(rslt.instances)
            adapter.share.drop()
            if len(calls) > 1:
                # the calls after the first (the one that reads: the longest) make their
                # instances from rows kept for them: their CPU per instance (stop 28)
                first = max(range(len(calls)), key=lambda i: calls[i][0])
                rest = [c for i, c in enumerate(calls) if i != first]
                later.append(sum(c[0] for c in rest) / max(1, sum(c[1] for c in rest)) * 1e6)
            return n
    later: list[float] = []     # us per instance of the calls made from rows (above)
    counts = {op: request(op) for op in ops}         # warm-up: plans, readers, templates
    if args.path == "emb":
        # the embedded server's _preload
        gc.collect()
        gc.freeze()
        gc.set_threshold(10000, 10, 10)
    elif not args.real_fake_instances:
        # the adapter knows by now what a new instance holds NULL: the server's new
        # instance (C there) made free too
        def new_instance(self: Any, path: Any, allow_null_ns: Any) -> Any:
            inst = F.CMPIInstance._new(path, None)
            inst._server = self._name
            return inst
        F.CMPIBroker.new_instance = new_instance
    out: dict[str, Any] = {"counts": counts, "python": sys.version.split()[0],
                           "gc": [gc.get_freeze_count() > 0, list(gc.get_threshold())]}
    for op in ops:
        times = []
        later.clear()
        for _ in range(args.rounds):
            t0 = time.process_time()
            request(op)
            times.append((time.process_time() - t0) * 1000)
        out[op] = times
        out[op + "/later_us"] = list(later)
    virt.shutdown()
    print(json.dumps(out))


# -- driver --------------------------------------------------------------------------------

def main(argv: Any = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--guests", type=int, default=1000)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--trees", default=TOP, help="checkouts to compare, comma-separated")
    p.add_argument("--ops", default="rasd,disk,vssd")
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--json", default="")
    p.add_argument("--real-fake-instances", action="store_true",
                   help="keep the fake's new_instance (a Python loop over the class)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tree", help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    p.add_argument("--node", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    sys.path.insert(0, TOP)
    from tests.fixtures.generate import write_node
    trees = [os.path.abspath(t) for t in args.trees.split(",")]
    ops = args.ops.split(",")
    res: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        node = write_node(os.path.join(tmp, "node.xml"), args.guests)
        print(f"load {os.getloadavg()[0]:.1f}", flush=True)
        for _run in range(args.runs):
            for tree in trees:
                for path in PATHS:
                    cmd = [args.python, os.path.abspath(__file__), "--worker", "--tree", tree,
                           "--path", path, "--node", node, "--rounds", str(args.rounds),
                           "--ops", args.ops]
                    if args.real_fake_instances:
                        cmd.append("--real-fake-instances")
                    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
                    got = json.loads(done.stdout.strip().splitlines()[-1])
                    res.setdefault(tree, {}).setdefault(path, []).append(got)
        print(f"load {os.getloadavg()[0]:.1f}; python {got['python']} ({args.python})")
    summary: dict = {}
    for op in ops:
        for tree in trees:
            runs = res[tree]
            for path in PATHS:
                meds = [statistics.median(r[op]) for r in runs[path]]
                allv = [x for r in runs[path] for x in r[op]]
                ratio = statistics.median(
                    m / statistics.median(e[op]) for m, e in zip(meds, runs["emb"], strict=True))
                n = runs[path][0]["counts"][op]
                summary[f"{op}/{path}/{tree}"] = {"median": statistics.median(meds),
                                                  "min": min(allv), "max": max(allv),
                                                  "ratio": ratio, "instances": n}
                lat = [x for r in runs[path] for x in r.get(op + "/later_us", [])]
                if lat:
                    summary[f"{op}/{path}/{tree}"]["later_us"] = statistics.median(lat)
                print(f"{op:5s} {path:5s} {os.path.basename(tree):14s} n={n:6d} "
                      f"{statistics.median(meds):7.1f} ({min(allv):.1f}-{max(allv):.1f}) ms"
                      f"  x{ratio:.2f}" + (f"; calls from rows {statistics.median(lat):.2f} "
                                           f"({min(lat):.2f}-{max(lat):.2f}) us/instance"
                                           if lat else ""))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "summary": summary, "raw": res}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
