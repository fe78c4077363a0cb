"""Run the benchmarks (`make bench`): every benchmarks/bench_*.py, one after another.

    python benchmarks/run.py                 # all
    python benchmarks/run.py server model    # some (bench_server.py, bench_model.py)

Each benchmark prints its figures (medians of several runs) and writes them as
JSON to benchmarks/results/<name>.json.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv: list[str]) -> int:
    names = sorted(f[len("bench_"):-3] for f in os.listdir(HERE)
                   if f.startswith("bench_") and f.endswith(".py") and
                   not f.startswith("bench_model_"))
    wanted = argv or names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(names)}")
        return 2
    failed = []
    for name in wanted:
        spec = importlib.util.spec_from_file_location(f"bench_{name}",
                                                      os.path.join(HERE, f"bench_{name}.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        print(f"\n=== {name} ===", flush=True)
        t0 = time.monotonic()
        rc = mod.main(["--json", os.path.join(HERE, "results", f"{name}.json")])
        print(f"({name}: {time.monotonic() - t0:.0f} s)", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
