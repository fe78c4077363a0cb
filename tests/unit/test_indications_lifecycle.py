"""The lifecycle indication watcher's decisions, with a fake CIMOM handle and hosts.

What reaches the listener end to end (libvirt events through a private
libvirtd) is in tests/system/test_indications_lifecycle.py; here the
watcher's logic is driven directly: which indication, with which source and
previous instance, for which event and which re-reading.
"""

import libvirt
import pytest
import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName, Uint16

from kvm_providers.providers import lifecycle_indications as L

DEFINED, UNDEFINED, STARTED, STOPPED = (libvirt.VIR_DOMAIN_EVENT_DEFINED,
                                        libvirt.VIR_DOMAIN_EVENT_UNDEFINED,
                                        libvirt.VIR_DOMAIN_EVENT_STARTED,
                                        libvirt.VIR_DOMAIN_EVENT_STOPPED)


class FakeHost:
    def __init__(self, label="h1", family="KVM"):
        self.label, self.family, self.qualified, self.is_up = label, family, False, True


class FakeManager:
    def __init__(self, *hosts):
        self.hosts = list(hosts)

    def for_family(self, family):
        return [h for h in self.hosts if h.family == family]

    def host(self, label):
        return next((h for h in self.hosts if h.label == label), None)

    def add_connect_hook(self, hook):
        pass

    def remove_connect_hook(self, hook):
        pass


class FakeHandle:
    """Domains as ComputerSystem instances in a dict; deliveries recorded."""

    def __init__(self):
        self.domains: dict[str, int] = {}       # name -> EnabledState
        self.delivered = []
        self.fail = False

    def _inst(self, name):
        path = CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                      "Name": name}, namespace="root/virt")
        return CIMInstance("KVM_ComputerSystem", path=path, properties={
            "CreationClassName": "KVM_ComputerSystem", "Name": name,
            "EnabledState": Uint16(self.domains[name])})

    def GetInstance(self, path, props=None):
        if self.fail:
            raise CIMError(pywbem.CIM_ERR_FAILED, "libvirt host 'h1' is unreachable")
        if path["Name"] not in self.domains:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND, f"Instance not found: {path}")
        return self._inst(path["Name"])

    def EnumerateInstances(self, ns, cn, props=None):
        if self.fail:
            raise CIMError(pywbem.CIM_ERR_FAILED, "libvirt host 'h1' is unreachable")
        return [self._inst(n) for n in sorted(self.domains)]

    def DeliverIndication(self, ns, inst):
        assert ns == "root/virt"
        self.delivered.append(inst)

    def AttachThread(self):
        pass

    def DetachThread(self):
        pass


@pytest.fixture
def world(monkeypatch):
    host = FakeHost()
    monkeypatch.setattr(L, "manager", lambda: FakeManager(host))
    handle = FakeHandle()
    handle.domains = {"a": 3}
    watcher = L._Watcher(handle)
    for base in (L.CREATED, L.DELETED, L.MODIFIED):
        L.activate_filter(None, "SELECT ...", "root/virt", f"KVM_{base}", True)
    watcher._sync(host)                       # the first reading fills the cache only
    yield watcher, handle, host
    L._active.clear()


def summary(inst):
    src = inst["SourceInstance"]
    prev = inst.properties.get("PreviousInstance")
    return (inst.classname.replace("KVM_ComputerSystem", "").replace("Indication", ""),
            src["Name"], src["EnabledState"], None if prev is None else prev.value["EnabledState"])


def test_first_reading_is_silent_and_events_report_changes(world):
    watcher, handle, host = world
    assert handle.delivered == [] and watcher.known[("h1", "a")]["EnabledState"] == 3
    handle.domains["b"] = 3
    watcher._event(host, "b", DEFINED, 0)
    handle.domains["b"] = 2
    watcher._event(host, "b", STARTED, 0)
    watcher._event(host, "b", STARTED, 0)          # nothing changed: nothing sent
    watcher._event(host, "b", DEFINED, 1)          # definition updated: settings changed
    del handle.domains["b"]
    watcher._event(host, "b", UNDEFINED, 0)
    watcher._event(host, "b", STOPPED, 0)          # already gone: nothing more
    assert [summary(i) for i in handle.delivered] == [
        ("Created", "b", 3, None), ("Modified", "b", 2, 3), ("Modified", "b", 2, 2),
        ("Deleted", "b", 2, None)]
    ind = handle.delivered[1]
    assert ind["SourceInstanceModelPath"] == \
        '/root/virt:KVM_ComputerSystem.CreationClassName="KVM_ComputerSystem",Name="b"'
    assert ind.properties["SourceInstance"].embedded_object == "instance"


def test_undefined_before_libvirtd_removed_the_domain_is_looked_at_again(world, monkeypatch):
    """libvirtd's QEMU driver queues a migrated guest's "undefined" event before it
    removes the domain: a watcher that looks it up at once still finds it.  The lookup
    is repeated (bounded) until it is gone, and the deletion reported (seen in the
    two-host migration test: no Deleted indication from the source host)."""
    watcher, handle, host = world
    monkeypatch.setattr(L, "RECHECK_DELAY", 0.01)
    watcher._event(host, "a", UNDEFINED, 0)          # still there: nothing yet
    assert handle.delivered == []
    job = watcher.jobs.get(timeout=10)               # the lookup again, queued
    assert job[:5] == ("event", host, "a", UNDEFINED, 0) and job[5] == 1
    del handle.domains["a"]                          # now libvirtd has removed it
    watcher._event(*job[1:])
    assert [summary(i) for i in handle.delivered] == [("Deleted", "a", 3, None)]
    # A domain that stays (a running guest made transient) is looked at RECHECKS times.
    handle.domains["c"] = 2
    watcher._event(host, "c", DEFINED, 0)
    tries = 0
    job = ("event", host, "c", UNDEFINED, 0)
    while True:
        watcher._event(*job[1:])
        try:
            job = watcher.jobs.get(timeout=1)
        except Exception:                            # queue.Empty: no more lookups
            break
        tries += 1
        assert tries <= L.RECHECKS
    assert tries == L.RECHECKS


def test_a_reading_that_fails_is_tried_again(world, monkeypatch):
    """A domain removed while it is being read fails the GetInstance (CIM_ERR_FAILED):
    the event is handled again shortly, and the deletion reported (before, the event
    was dropped)."""
    watcher, handle, host = world
    monkeypatch.setattr(L, "RECHECK_DELAY", 0.01)
    handle.fail = True
    watcher._event(host, "a", UNDEFINED, 0)
    assert handle.delivered == []
    job = watcher.jobs.get(timeout=10)
    assert job[:5] == ("event", host, "a", UNDEFINED, 0) and job[5] == 1
    handle.fail = False
    del handle.domains["a"]
    watcher._event(*job[1:])
    assert [summary(i) for i in handle.delivered] == [("Deleted", "a", 3, None)]


def test_rereading_after_a_reconnection_reports_the_differences(world):
    watcher, handle, host = world
    handle.domains = {"a": 2, "new": 3}            # a started, new defined, while away
    watcher._sync(host)
    assert sorted(summary(i) for i in handle.delivered) == [
        ("Created", "new", 3, None), ("Modified", "a", 2, 3)]
    handle.delivered.clear()
    handle.domains = {"new": 3}
    watcher._sync(host)
    assert [summary(i) for i in handle.delivered] == [("Deleted", "a", 2, None)]


def test_unreachable_host_changes_nothing(world):
    watcher, handle, host = world
    handle.fail = True
    handle.domains["a"] = 2
    watcher._event(host, "a", STARTED, 0)
    watcher._sync(host)
    assert handle.delivered == [] and watcher.known[("h1", "a")]["EnabledState"] == 3
    handle.fail = False
    watcher._sync(host)                            # the reconnection's reading catches up
    assert [summary(i) for i in handle.delivered] == [("Modified", "a", 2, 3)]


def test_only_activated_classes_are_delivered(world):
    watcher, handle, host = world
    L.deactivate_filter(None, "SELECT ...", "root/virt", f"KVM_{L.MODIFIED}", True)
    handle.domains["a"] = 2
    watcher._event(host, "a", STARTED, 0)
    assert handle.delivered == []
    assert watcher.known[("h1", "a")]["EnabledState"] == 2    # the cache still follows
    handle.domains["a"] = 3
    L.activate_filter(None, "SELECT ...", "root/virt", f"KVM_{L.MODIFIED}", True)
    watcher._event(host, "a", STOPPED, 1)
    assert [summary(i) for i in handle.delivered] == [("Modified", "a", 3, 2)]


def test_full_queue_makes_the_host_read_again(world, caplog):
    watcher, handle, host = world
    watcher.jobs = L.queue.Queue(1)
    handle.domains.update({"a": 2, "z": 3})
    watcher._put(("event", host, "a", STARTED, 0))
    watcher._put(("event", host, "z", DEFINED, 0))   # does not fit: lost
    assert watcher.overflowed == {"h1"}
    assert "too many domain events queued" in caplog.text
    watcher.thread.start()
    try:
        deadline = L.threading.Event()
        for _ in range(200):
            if len(handle.delivered) == 2:
                break
            deadline.wait(0.01)
    finally:
        watcher.stop()
    # The event that fitted, then the host read again once the queue was empty.
    assert [summary(i) for i in handle.delivered] == [("Modified", "a", 2, 3),
                                                      ("Created", "z", 3, None)]
    assert watcher.overflowed == set()
