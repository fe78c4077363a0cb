"""The first request of its kind: no parsed documents kept for the parts to come (issue 16
"Also", stop 27).

A CIM server splits an enumeration of a superclass into one CMPI call per subclass
(sfcb one after the other, OpenPegasus all at once).  Where the last request begun by the
same part is known, the first call reads ahead for the parts it got (test_cmpi_cost,
test_cmpi_read_ahead).  The first request of a kind has nothing to predict from: before,
its scope kept every domain's parsed document for the parts that might come (410 MB of
libxml2 heap at 10,000 guests, sfcb's whole peak 921 MB).  Now its first call lets its
documents go as a lone request does, and the next part of the same provider reads ahead,
in one more pass, for the classes the server still asks (those under the lowest class
common to the parts so far): no document is kept at any time, and a request of one class
reads ahead for nothing.  Counted, not timed.
"""

from __future__ import annotations

import threading

import pytest

import fake_cmpi

from kvm_providers.cmpi import sharing

from tests.cmpi import test_cmpi_cost as cost
from tests.cmpi.test_cmpi_cost import (GUESTS, RASD_CLASSES, _answer_of, _kept_documents,
                                       _kept_rows, _part, _server)

# test_cmpi_cost's fixtures: the test clock, libvirt calls counted, instances built
clock, counts, built = cost.clock, cost.counts, cost.built

F = fake_cmpi
ORDER = sorted(RASD_CLASSES, key=str.lower)          # as the fake brokers call them
DISK = "KVM_DiskResourceAllocationSettingData"


def _alone(broker, ctx, prox, clock) -> dict:
    """Each class's answer in a request of its own (each a lone first request)."""
    out = {}
    for cn in ORDER:
        clock.now += 10
        out[cn] = _answer_of(broker, _part(broker, ctx, prox, cn))
    return out


@pytest.mark.parametrize("server", ["Pegasus", "RequestHandler"])
def test_the_first_request_keeps_no_document(fake, node, clock, counts, server):
    """The first enumeration of every RASD, its parts one after the other (sfcb's order):
    no parsed document is kept after any part (before: every domain's, from the first part
    on); the second part reads ahead for the others (one more pass, once), which make their
    instances from rows; the same answer as each class alone."""
    broker, ctx, prox = _server(server, RASD_CLASSES)
    got = {}
    for i, cn in enumerate(ORDER):
        got[cn] = _answer_of(broker, _part(broker, ctx, prox, cn))
        assert _kept_documents() == 0, f"documents kept after part {i + 1} ({cn})"
        if i == 1:
            after_second = dict(counts)
    assert counts["listAllDomains"] == 1                    # one request scope
    assert counts["XMLDesc"] == counts["parse"] == 2 * GUESTS
    assert dict(counts) == after_second                     # the later parts read nothing
    assert _kept_rows() == 0
    # The next request of the kind reads ahead from its first part: one pass.
    clock.now += 10
    counts.clear()
    for cn in ORDER:
        _part(broker, ctx, prox, cn)
    assert counts["XMLDesc"] == GUESTS and _kept_documents() == 0
    assert got == _alone(broker, ctx, prox, clock)


def test_the_first_request_called_at_once_keeps_no_document(fake, node, clock, counts):
    """OpenPegasus' order: the parts of the first request come at once.  Whichever runs
    first reads ahead for the parts joined by then (else lets its documents go); at most
    one more pass, no document kept; the same answers as each class alone."""
    broker, ctx, prox = _server("Pegasus", RASD_CLASSES)
    got: dict = {}
    start = threading.Barrier(len(ORDER))

    def call(cn):
        start.wait()
        got[cn] = _answer_of(broker, _part(broker, ctx, prox, cn))
    threads = [threading.Thread(target=call, args=(cn,)) for cn in ORDER]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(got) == len(ORDER)
    assert counts["listAllDomains"] == 1
    assert GUESTS <= counts["XMLDesc"] <= 2 * GUESTS
    assert _kept_documents() == 0 and _kept_rows() == 0
    assert got == _alone(broker, ctx, prox, clock)


@pytest.mark.parametrize("server", ["Pegasus", "RequestHandler"])
def test_a_lone_first_request_reads_ahead_for_nothing(fake, node, clock, counts, built,
                                                      server):
    """The first request of one class alone: one pass, its documents let go, nothing read
    for classes that are not asked (no rows left behind)."""
    broker, ctx, prox = _server(server, RASD_CLASSES)
    assert _part(broker, ctx, prox, DISK)
    assert counts["XMLDesc"] == GUESTS
    assert _kept_documents() == 0 and _kept_rows() == 0
    assert set(built) == {DISK}


def test_classes_to_come():
    """The lowest class common to the parts so far, and every class of the provider under
    it; nothing to guess from one class."""
    anc = {
        "kvm_disk": ("kvm_disk", "kvm_rasd", "cim_rasd", "cim_settingdata"),
        "kvm_mem": ("kvm_mem", "kvm_rasd", "cim_rasd", "cim_settingdata"),
        "kvm_console": ("kvm_console", "kvm_char", "kvm_rasd", "cim_rasd", "cim_settingdata"),
        "kvm_serial": ("kvm_serial", "kvm_char", "kvm_rasd", "cim_rasd", "cim_settingdata"),
        "lxc_disk": ("lxc_disk", "lxc_rasd", "cim_rasd", "cim_settingdata"),
    }
    come = sharing.classes_to_come
    assert come(anc, {"kvm_disk"}) == []
    assert sorted(come(anc, {"kvm_disk", "kvm_mem"})) == ["kvm_console", "kvm_disk", "kvm_mem",
                                                          "kvm_serial"]
    assert sorted(come(anc, {"kvm_console", "kvm_serial"})) == ["kvm_console", "kvm_serial"]
    assert sorted(come(anc, {"kvm_disk", "lxc_disk"})) == sorted(anc)
    assert come(anc, {"kvm_disk", "other"}) == []
