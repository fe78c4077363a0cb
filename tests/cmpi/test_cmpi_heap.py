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


# -- the C heap of OpenPegasus' agent trimmed after large calls (pgleak25) ------------------

GUESTS = 12


@pytest.fixture
def trimmed(monkeypatch):
    """[objects made by each call that trimmed]: malloc_trim replaced by a counter, a
    threshold the small node reaches with its larger subclass calls only."""
    monkeypatch.delenv("KVM_PROVIDERS_CMPI_TRIM", raising=False)
    # (raising=False: before the trim the test fails on what it counts, not here)
    monkeypatch.setattr(heap, "TRIM_MIN", GUESTS * 2, raising=False)
    out: list = []
    real = getattr(heap, "trim", lambda made: False)

    def trim(made):
        done = real(made)
        if done:
            out.append(made)
        return done
    monkeypatch.setattr(heap, "trim", trim, raising=False)
    monkeypatch.setattr(heap, "malloc_trim", lambda pad: 1, raising=False)
    return out


def _every_rasd(server: str, requests: int) -> list:
    from tests.cmpi.test_cmpi_cost import RASD_CLASSES, _enumerate, _server
    broker, ctx, _prox = _server(server, RASD_CLASSES)
    return [len(_enumerate(broker, ctx)) for _ in range(requests)]


def test_pegasus_agent_heap_trimmed_after_each_large_call(fake, node, trimmed):
    """OpenPegasus' cimprovagt serves each subclass call in a thread of its own, whose
    malloc arena keeps the freed SCMOInstances (184 -> 643 MB over 20 enumerations of
    every RASD of 1000 guests): every call that made TRIM_MIN objects or more trims the
    C heap, every request again; the small subclass calls do not."""
    sizes = _every_rasd("Pegasus", 3)
    assert sizes[0] > GUESTS * 4 and sizes == sizes[:1] * 3
    assert trimmed and len(trimmed) % 3 == 0, trimmed
    assert min(trimmed) >= heap.TRIM_MIN
    # the calls that trimmed made most of the instances; the rest made fewer each
    assert len(trimmed) // 3 < 16


def test_sfcb_provider_process_trimmed_after_each_large_call(fake, node, trimmed):
    """sfcb serves each call on a thread of its own too: its provider process kept 0.6 GB
    freed by an enumeration of every RASD of 10,000 guests (0.9 GB from the first
    request on, 0.3 GB trimmed): the large calls trim, the small ones do not."""
    sizes = _every_rasd("RequestHandler", 3)
    assert sizes[0] > GUESTS * 4 and sizes == sizes[:1] * 3
    assert trimmed and len(trimmed) % 3 == 0, trimmed
    assert min(trimmed) >= heap.TRIM_MIN and len(trimmed) // 3 < 16


@pytest.mark.parametrize("server", ["RequestHandler", "Pegasus"])
def test_no_trim_when_turned_off(fake, node, trimmed, monkeypatch, server):
    """``KVM_PROVIDERS_CMPI_TRIM=0``."""
    monkeypatch.setenv("KVM_PROVIDERS_CMPI_TRIM", "0")
    _every_rasd(server, 2)
    assert trimmed == []


def test_trim_threshold_and_libc(monkeypatch):
    calls: list = []
    monkeypatch.setattr(heap, "malloc_trim", calls.append)
    assert not heap.trim(heap.TRIM_MIN - 1) and calls == []
    assert heap.trim(heap.TRIM_MIN) and calls == [0]
    assert heap._libc_trim() is not None        # glibc (the servers' platform here)
