"""A benchmark script of ``benchmarks/`` loaded as a module (the directory is no package),
for tests of its pure parts (verdicts, option handling, readers)."""

from __future__ import annotations

import importlib.util
import os
from types import ModuleType

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` executed as a fresh module named `name`."""
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(TOP, "benchmarks", f"{name}.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
