"""Guarded hops of small requests, counted rather than timed (issue 16).

Through a daemon every libvirt call runs on a helper thread of the connection while the
request waits with a deadline (kvm_providers/virt/link.py); each hand-off costs more than
the call's own round trip to libvirtd.  These tests count the hand-offs (``Link.submit``)
and the libvirt calls of the small operations, and check that one hop still keeps the
deadline: a hung daemon fails the request, never the process.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import libvirt
import pytest
from pywbem import CIMError, CIMInstanceName

from kvm_providers.providers.system_device import SystemDeviceProvider
from kvm_providers.virt import link as link_module
from tests.support.libvirt_calls import count_libvirt_calls

from .harness import Harness

VIRT = "root/virt"
pytestmark = pytest.mark.libvirtd


def _cs(name: str) -> CIMInstanceName:
    return CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                  "Name": name}, namespace=VIRT)


@pytest.fixture
def hops(monkeypatch) -> Counter:
    """Counts the hand-offs to a connection's helper threads (``Link.submit``)."""
    counter: Counter = Counter()
    real = link_module.Link.submit

    def counting(self, func, *args, **kwargs):
        counter["hops"] += 1
        return real(self, func, *args, **kwargs)
    monkeypatch.setattr(link_module.Link, "submit", counting)
    return counter


@pytest.fixture
def calls(monkeypatch) -> Counter:
    return count_libvirt_calls(monkeypatch, {
        libvirt.virConnect: ("lookupByName", "listAllDomains"),
        libvirt.virDomain: ("state", "hasManagedSaveImage", "XMLDesc", "info")},
        qualified=True)


def test_getinstance_of_a_system_is_one_guarded_hop(layer, daemon, hops, calls):
    """GetInstance of a ComputerSystem through libvirtd: the lookup and the managed save
    image in one hand-off to a helper, each call once; the state of an inactive domain
    (id -1, known from the lookup) is not asked: shut off.  The answer is that of a
    shut-off guest without an image."""
    layer(daemon.uri("qemu"))
    h = Harness()
    h.GetInstance(_cs("guest0001"))      # warm up: loading, the host's facts
    hops.clear()
    calls.clear()
    cs = h.GetInstance(_cs("guest0000"))
    assert cs["EnabledState"] == 3 and cs["ElementName"] == "guest0000"
    assert cs["OperationalStatus"] == [15]    # Dormant
    assert hops["hops"] == 1
    assert dict(calls) == {"virConnect.lookupByName": 1, "virDomain.hasManagedSaveImage": 1}


def test_getinstance_of_a_missing_system_is_one_hop_and_not_found(layer, daemon, hops,
                                                                   calls):
    """A ComputerSystem whose domain does not exist: CIM_ERR_NOT_FOUND with libvirt-cim's
    words; the lookup is the only call of the GetInstance (the error's diagnosis of which
    key is wrong lists the domains, as before)."""
    layer(daemon.uri("qemu"))
    h = Harness()
    h.GetInstance(_cs("guest0001"))
    hops.clear()
    calls.clear()
    with pytest.raises(CIMError) as exc:
        h.GetInstance(_cs("nosuch"))
    assert exc.value.status_code == 6     # CIM_ERR_NOT_FOUND
    assert "Referenced domain `nosuch' does not exist" in exc.value.status_description
    assert calls["virConnect.lookupByName"] == 1
    assert calls["virDomain.state"] == calls["virDomain.hasManagedSaveImage"] == 0
    assert hops["hops"] == 1 + calls["virConnect.listAllDomains"]


def test_getinstance_with_a_property_list_without_state_asks_no_state(layer, daemon, hops,
                                                                       calls):
    """Only what the PropertyList needs: ElementName alone is the lookup (one hop)."""
    layer(daemon.uri("qemu"))
    h = Harness()
    h.GetInstance(_cs("guest0001"))
    hops.clear()
    calls.clear()
    cs = h.GetInstance(_cs("guest0000"), ["ElementName"])
    assert cs["ElementName"] == "guest0000" and "EnabledState" not in cs
    assert hops["hops"] == 1
    assert dict(calls) == {"virConnect.lookupByName": 1}


def _names(paths) -> set[str]:
    return {str(p) for p in paths}


def test_associators_of_a_system_read_its_xml_with_the_source_check(layer, daemon, hops,
                                                                     calls, monkeypatch):
    """AssociatorNames SystemDevice from a ComputerSystem: the source check's lookup and
    the domain's XML in one hop (each call once), and the same answer as with the
    check and the read one after the other (the read-ahead switched off: two hops)."""
    layer(daemon.uri("qemu"))
    h = Harness()
    h.AssociatorNames(_cs("guest0001"), "KVM_SystemDevice")
    hops.clear()
    calls.clear()
    got = h.AssociatorNames(_cs("guest0000"), "KVM_SystemDevice")
    assert hops["hops"] == 1
    assert dict(calls) == {"virConnect.lookupByName": 1, "virDomain.XMLDesc": 1}
    monkeypatch.setattr(SystemDeviceProvider, "read_ahead_source", lambda self, path: None)
    hops.clear()
    before = h.AssociatorNames(_cs("guest0000"), "KVM_SystemDevice")
    assert hops["hops"] == 2
    assert got and _names(got) == _names(before)


@pytest.mark.parametrize("ccn", ["KVM_ComputerSystem", "KVM_Other"])
def test_associators_of_a_missing_system_fail_as_before(layer, daemon, hops, calls,
                                                        monkeypatch, ccn):
    """A source that names no domain (or another class): the same CIM error with and
    without the read-ahead (the source check's, CIM_ERR_NOT_FOUND)."""
    layer(daemon.uri("qemu"))
    h = Harness()
    path = _cs("nosuch")
    path.keybindings["CreationClassName"] = ccn

    def error() -> tuple[int, str]:
        with pytest.raises(CIMError) as exc:
            h.AssociatorNames(path, "KVM_SystemDevice")
        return exc.value.status_code, exc.value.status_description
    now = error()
    assert calls["virDomain.XMLDesc"] == 0
    monkeypatch.setattr(SystemDeviceProvider, "read_ahead_source", lambda self, p: None)
    assert now == error()
    assert now[0] == 6


def test_one_hop_keeps_the_deadline_of_a_hung_daemon(layer, daemon):
    """The three calls of a GetInstance in one hop still have the host's deadline: with
    the daemon frozen, the request fails with CIM_ERR_FAILED naming the host within
    hang_timeout (and some slack), and succeeds again once the daemon is back."""
    hang = 2.0
    layer(daemon.uri("qemu"), hang_timeout=hang)
    h = Harness()
    assert h.GetInstance(_cs("guest0000"))["EnabledState"] == 3
    os.kill(daemon.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises(CIMError) as exc:
            h.GetInstance(_cs("guest0000"))
        took = time.monotonic() - t0
        t1 = time.monotonic()
        with pytest.raises(CIMError) as exc2:
            h.AssociatorNames(_cs("guest0001"), "KVM_SystemDevice")
        took2 = time.monotonic() - t1
    finally:
        os.kill(daemon.pid, signal.SIGCONT)
    assert exc2.value.status_code == 1 and took2 < hang + 8.0, took2
    assert exc.value.status_code == 1     # CIM_ERR_FAILED
    assert "session" in exc.value.status_description or "libvirt" in \
        exc.value.status_description.lower()
    assert took < hang + 8.0, took
    deadline = time.monotonic() + 30
    while True:
        try:
            assert h.GetInstance(_cs("guest0000"))["EnabledState"] == 3
            break
        except CIMError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
