"""The collector of a CIM server's provider process after a provider loads (issue 10 item 12,
stop 25): the loaded modules and the schema frozen, the embedded server's thresholds, as
the embedded server sets them after loading its providers (kvm_providers.cmpi.heap).
Counted (objects a full collection scans, garbage left), never timed."""

from __future__ import annotations

import gc
import weakref

import pytest

import fake_cmpi

from kvm_providers.cmpi import adapter, heap
from kvm_providers.schema import default_schema

F = fake_cmpi
NS = "root/virt"
MODULE = "kvm_providers.providers.resource_allocation"


@pytest.fixture
def collector(monkeypatch):
    """The collector as a fresh interpreter has it (nothing frozen, Python's thresholds),
    restored afterwards; the adapter allowed to set it."""
    monkeypatch.delenv("KVM_PROVIDERS_CMPI_GC", raising=False)
    saved = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    yield
    gc.unfreeze()
    gc.set_threshold(*saved)


class _Cycle:
    """A reference cycle (garbage only the cyclic collector frees)."""

    def __init__(self):
        self.me = self


def _load(broker=None):
    broker = broker or F.CMPIBroker()
    return adapter.CMPIProxyProvider("kvm_providers_resource_allocation", broker,
                                     broker.context(), cmpi=F, module=MODULE)


def test_a_loaded_provider_is_out_of_the_collector(fake, collector):
    """After a provider loads, a full collection scans neither its objects nor the
    schema's (before: every one of them, in every full collection inside a request),
    young collections come every 10,000 allocations, and the garbage there was is
    freed, not frozen."""
    garbage = _Cycle()
    dead = weakref.ref(garbage)
    del garbage
    prox = _load()
    scanned = {id(o) for o in gc.get_objects()}
    cls = default_schema().get_class(NS, "KVM_DiskResourceAllocationSettingData")
    assert id(prox.proxy) not in scanned and id(prox) not in scanned
    assert id(default_schema()) not in scanned and id(cls) not in scanned
    assert len(scanned) < gc.get_freeze_count() // 10
    assert gc.get_threshold() == heap.THRESHOLD
    assert dead() is None


def test_a_second_provider_freezes_what_it_added(fake, collector):
    _load()
    frozen = gc.get_freeze_count()
    second = _load(F.CMPIBroker(name="Pegasus"))
    assert gc.get_freeze_count() > frozen
    assert id(second.proxy) not in {id(o) for o in gc.get_objects()}


def test_the_collector_left_alone_on_request(fake, collector, monkeypatch):
    """``KVM_PROVIDERS_CMPI_GC=0``: nothing frozen, the interpreter's thresholds."""
    monkeypatch.setenv("KVM_PROVIDERS_CMPI_GC", "0")
    prox = _load()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == (700, 10, 10)
    assert id(prox.proxy) in {id(o) for o in gc.get_objects()}
