"""How an enumeration reads its domains' XML through a daemon (issue 16, virt.domain
iter_domain_xml and virt.loophold): libvirt's event loop thread is not woken per call
(it was 2-3 times per XMLDesc, each wake a hand-off of the GIL), and the XML comes in
few growing batches (each batch is a hand-off between the request's thread and the
helpers), the first of one document.  Counted, not timed; the calls in flight:
test_cost.test_enumerations_through_a_daemon_keep_few_calls_in_flight."""

from __future__ import annotations

import libvirt
import pytest

from kvm_providers.virt import domain as vdomain
from kvm_providers.virt.connection import Host

from .harness import Harness
from .test_cost import _bench_daemon

VIRT = "root/virt"


@pytest.mark.libvirtd
def _count_loop_iterations(monkeypatch) -> list:
    """A list that gets an item per iteration of libvirt's event loop thread from now
    on (the loop thread looks virEventRunDefaultImpl up at each iteration)."""
    loops: list = []
    real_run = libvirt.virEventRunDefaultImpl

    def counting_run():
        loops.append(1)
        return real_run()
    monkeypatch.setattr(libvirt, "virEventRunDefaultImpl", counting_run)
    return loops


def test_enumerations_through_a_daemon_leave_the_event_loop_asleep(layer, monkeypatch):
    n = 60
    with _bench_daemon(n, lambda i: 1 << 20) as (d, _lv, _pool):
        layer(d.uri("qemu"))
        h = Harness()
        assert len(h.EnumerateInstances(VIRT, "KVM_VirtualSystemSettingData")) == n  # warm

        loops = _count_loop_iterations(monkeypatch)
        batches: list[int] = []
        real_submit = Host.submit

        def counting_submit(self, func, *args, **kwargs):
            if getattr(func, "__qualname__", "") == "iter_domain_xml.<locals>.fetch":
                batches.append(len(args[0]))
            return real_submit(self, func, *args, **kwargs)
        monkeypatch.setattr(Host, "submit", counting_submit)

        for cls in ("KVM_VirtualSystemSettingData", "KVM_DiskResourceAllocationSettingData"):
            loops.clear()
            batches.clear()
            assert len(h.EnumerateInstances(VIRT, cls)) in (n, 2 * n)
            # Before: 2-3 iterations per call (150 for 60 domains); now the loop is
            # held out of poll while the calls run (a few iterations: the first call's
            # wake-up, and one per MAX_PARK on a very slow machine).
            assert len(loops) < n // 3, (cls, len(loops))
            # One document first, then growing batches (1, 8, 16, 32, the rest), each
            # shared by at most XML_FETCHERS helpers: 5 rounds of hand-offs (9 before).
            assert sum(batches) == n and batches[0] == 1, batches
            assert len(batches) <= 1 + 4 * vdomain.XML_FETCHERS, batches
            assert max(batches) <= vdomain.XML_READ_AHEAD_MAX


@pytest.mark.libvirtd
def test_snapshot_reads_through_a_daemon_leave_the_event_loop_asleep(layer, monkeypatch):
    """The snapshots of the guests (listing, XML, current snapshot: 2 + N calls per
    domain, 4 domains side by side) read ahead through libvirtd with the loop held
    (virt.snapshots iter_snapshots, as the snapshot VSSD enumeration reads them)."""
    import os

    from kvm_providers.provider import request_scope
    from kvm_providers.virt.snapshots import iter_snapshots
    from tests.fixtures.generate import _NODE_HEAD
    from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available

    from .test_cost import _GUESTS, _guest
    if not libvirtd_available():
        pytest.skip("libvirtd not installed")
    d = PrivateLibvirtd().start()
    try:
        path = os.path.join(d.workdir, "snapshots.xml")    # the daemon's user reads it
        with open(path, "w", encoding="utf-8") as f:
            f.write(_NODE_HEAD + "".join(_guest(i) + "\n" for i in range(_GUESTS))
                    + "</node>\n")
        os.chmod(path, 0o644)
        host = layer(f"test+unix://{path}?socket={d.socket}").hosts[0]
        loops = _count_loop_iterations(monkeypatch)
        for _ in range(3):
            with request_scope():
                got = [(ref.name, len(snaps)) for ref, snaps in
                       iter_snapshots(vdomain.list_domains(host), release=True)]
            assert got == [("guest0000", 3), ("guest0001", 3), ("guest0003", 1),
                           ("guest0004", 2)]
        # 3 x 21 calls: 3,469 iterations before (4 domains' calls side by side woke
        # the polling loop tens of times each); now the first call's wake-up of each.
        assert len(loops) < 20, len(loops)
    finally:
        d.cleanup()
