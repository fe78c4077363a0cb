"""AssociatorNames and Associators without an association instance per target (issue 16):
the same answers as from the built instances, for every association class of the
fixture node, from objects of every class that takes part, with and without Role,
ResultRole and ResultClass; and the instances are indeed not built.

The metric classes are left out: their values are samples taken while the test runs
(two passes would see different ones), and reading them starts the statistics
collector, which other tests expect not to be running."""

from __future__ import annotations

import pytest
from pywbem import CIMError

from kvm_providers.provider import request_scope
from kvm_providers.providers.common import assoc as assoc_module
from kvm_providers.virt import stats

from .harness import Harness

VIRT = "root/virt"


@pytest.fixture
def harness(layer, node_uri):
    layer(node_uri)
    yield Harness(modules=None)
    assert stats.current() is None     # nothing here reads metrics


def _sources(h: Harness) -> list:
    """A few objects of every instance class of root/virt (paths with namespace)."""
    out = []
    seen = set()
    for (ns, _), (name, _p) in sorted(h.classes.items()):
        if ns != VIRT or h.schema.spec(ns, name).is_association or name in seen \
                or "Metric" in name:
            continue
        seen.add(name)
        try:
            paths = h.EnumerateInstanceNames(ns, name)
        except CIMError:
            continue
        for p in [q for q in paths if q.classname == name][:2]:
            p.namespace = VIRT
            out.append(p)
    return out


def _answers(h: Harness, sources: list, assocs: list) -> list:
    out = []
    for src in sources:
        for assoc in assocs:
            for kw in ({}, {"role": "PartComponent"}, {"resultRole": "GroupComponent"},
                       {"resultClass": "CIM_ComputerSystem"}):
                try:
                    got = [str(p) for p in h.AssociatorNames(src, assoc, **kw)]
                except CIMError as exc:
                    got = [f"error {exc.status_code}"]
                out.append((str(src), assoc, tuple(kw.items()), got))
    return out


def test_associator_names_without_instances_answer_alike(harness, monkeypatch):
    h = harness
    sources = _sources(h)
    assocs = sorted({name for (ns, _), (name, _p) in h.classes.items()
                     if ns == VIRT and h.schema.spec(ns, name).is_association
                     and "Metric" not in name})
    assert len(sources) > 20 and len(assocs) > 10
    built = {"n": 0}
    real = assoc_module.AssociationProvider._instance

    def counting(self, *args, **kwargs):
        built["n"] += 1
        return real(self, *args, **kwargs)
    monkeypatch.setattr(assoc_module.AssociationProvider, "_instance", counting)
    now = _answers(h, sources, assocs)
    built_now = built["n"]
    # the instances built as before: associated_names() of the common base says None
    monkeypatch.setattr(assoc_module.AssociationProvider, "associated_names",
                        lambda self, *a: None)
    built["n"] = 0
    before = _answers(h, sources, assocs)
    assert sum(len(a[3]) for a in now) > 100
    assert now == before
    assert built_now < built["n"] / 4, (built_now, built["n"])


def test_system_devices_build_no_association_instance(harness, monkeypatch):
    """AssociatorNames SystemDevice from a system: a target path per device and nothing
    else (no association instance, no model copy)."""
    from pywbem import CIMInstanceName
    calls = {"n": 0}

    def counting(self, *args, **kwargs):
        calls["n"] += 1
        raise AssertionError("an association instance was built")
    cs = CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                "Name": "full"}, namespace=VIRT)
    with request_scope():
        want = harness.AssociatorNames(cs, "KVM_SystemDevice")
    monkeypatch.setattr(assoc_module.AssociationProvider, "_instance", counting)
    got = harness.AssociatorNames(cs, "KVM_SystemDevice")
    assert calls["n"] == 0 and len(got) > 5
    assert [str(p) for p in got] == [str(p) for p in want]
