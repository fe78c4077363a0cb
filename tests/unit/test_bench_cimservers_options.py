"""bench_cimservers' selection of operations and its ``TE: trailers`` (stop 32: every RASD
of 10,000 guests inside sfcb, which answers it only in chunks, measured from the
repository's benchmark)."""

from __future__ import annotations

import importlib.util
import os

import pytest
from pywbem import CIMInstanceName

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _bench():
    spec = importlib.util.spec_from_file_location(
        "bench_cimservers", os.path.join(TOP, "benchmarks", "bench_cimservers.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _ops(mod):
    cs = CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                "Name": "guest0000"}, namespace="root/virt")
    return mod.operations("root/virt", cs)


def test_ops_selects_by_regular_expression():
    mod = _bench()
    ops = _ops(mod)
    assert mod.selected(ops, None) == ops
    assert [o.name for o in mod.selected(ops, r"RASD \(all\)")] == \
        ["EnumerateInstances RASD (all)"]
    assert [o.name for o in mod.selected(ops, "^Associator")] == \
        ["AssociatorNames SystemDevice", "Associators SystemDevice"]
    with pytest.raises(ValueError, match="matches none"):
        mod.selected(ops, "no such operation")


def test_te_asks_for_chunks_only_when_told():
    mod = _bench()
    plain = mod.Target("x", "http://127.0.0.1:5988", "root/virt")
    chunked = mod.Target("x", "http://127.0.0.1:5988", "root/virt", te=True)
    assert "TE" not in plain.headers("EnumerateInstances")
    assert chunked.headers("EnumerateInstances")["TE"] == "trailers"


def test_ops_that_match_nothing_are_refused_before_measuring(capsys):
    with pytest.raises(SystemExit) as exc:
        _bench().main(["--sizes", "4", "--ops", "nothing"])
    assert exc.value.code == 2
    assert "matches none" in capsys.readouterr().err
