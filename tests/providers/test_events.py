"""The libvirt layer's domain events (kvm_providers.virt.events), with libvirt's test
driver: plain data from libvirt's event loop, registered again after a reconnection,
nothing after close()."""

from __future__ import annotations

import threading
import time

import libvirt

from kvm_providers.virt import events
from tests.providers.test_layer import FlakyOpener

XML = "<domain type='test'><name>{name}</name><memory>1024</memory>" \
      "<os><type>hvm</type></os></domain>"


class Recorder:
    """Events and connections as a subscriber sees them (from libvirt's threads)."""

    def __init__(self):
        self.events: list[events.DomainEvent] = []
        self.connected: list[str] = []
        self.cond = threading.Condition()

    def on_event(self, ev):
        assert threading.current_thread().name == "libvirt-event-loop"
        with self.cond:
            self.events.append(ev)
            self.cond.notify_all()

    def on_connect(self, host):
        with self.cond:
            self.connected.append(host.label)
            self.cond.notify_all()

    def wait(self, cond, timeout=10.0):
        with self.cond:
            return self.cond.wait_for(lambda: cond(self), timeout)

    def seen(self, name):
        return [(e.kind, e.detail) for e in self.events if e.name == name]


def test_lifecycle_events_as_plain_data(layer, node_uri):
    mgr = layer(node_uri)
    host = mgr.hosts[0]
    rec = Recorder()
    sub = events.subscribe(mgr, rec.on_event, rec.on_connect)
    try:
        assert rec.connected == [host.label]          # at once: the host is up
        conn = host.conn()
        dom = conn.defineXML(XML.format(name="ev1"))
        dom.create()
        dom.destroy()
        dom.undefine()
        assert rec.wait(lambda r: len(r.seen("ev1")) >= 4), rec.events
        evs = [e for e in rec.events if e.name == "ev1"]
        assert [e.event for e in evs] == [events.EVENT_DEFINED, events.EVENT_STARTED,
                                          events.EVENT_STOPPED, events.EVENT_UNDEFINED]
        assert {e.host for e in evs} == {host}
        assert {e.uuid for e in evs} == {dom.UUIDString()}
        assert not evs[0].definition_changed             # added, not updated
        dom = conn.defineXML(XML.format(name="ev2"))
        conn.defineXML(XML.format(name="ev2").replace(
            "<memory>1024", f"<uuid>{dom.UUIDString()}</uuid><memory>2048"))   # updated
        assert rec.wait(lambda r: len(r.seen("ev2")) >= 2), rec.events
        added, updated = [e for e in rec.events if e.name == "ev2"][:2]
        assert (added.definition_changed, updated.definition_changed) == (False, True)
    finally:
        sub.close()
    before = len(rec.events)
    host.conn().lookupByName("ev2").undefine()
    # The undefine's event would arrive within the event loop's next iterations.
    time.sleep(0.5)
    assert len(rec.events) == before


def test_events_are_registered_again_after_a_reconnection(layer, node_uri):
    opener = FlakyOpener(node_uri)
    mgr = layer(node_uri, opener=opener, backoff=(0.05, 0.2), retry_wait=0.5)
    host = mgr.hosts[0]
    assert mgr.wait_connected(10)
    rec = Recorder()
    sub = events.subscribe(host, rec.on_event, rec.on_connect)
    try:
        assert rec.connected == [host.label]
        host.lost(host.conn(), "simulated loss")
        assert rec.wait(lambda r: len(r.connected) == 2), rec.connected
        assert rec.wait(lambda _r: host.is_up)
        host.conn().defineXML(XML.format(name="after"))
        assert rec.wait(lambda r: r.seen("after")), rec.events
        assert rec.seen("after")[0][0] == "defined"
    finally:
        sub.close()


def test_a_failing_subscriber_does_not_stop_the_events(layer, node_uri):
    mgr = layer(node_uri)
    host = mgr.hosts[0]
    rec = Recorder()
    calls = []

    def on_event(ev):
        calls.append(ev.name)
        if ev.name == "bad":
            raise RuntimeError("subscriber bug")
        rec.on_event(ev)
    sub = events.subscribe(mgr, on_event)
    try:
        conn = host.conn()
        conn.defineXML(XML.format(name="bad"))
        conn.defineXML(XML.format(name="good"))
        assert rec.wait(lambda r: r.seen("good")), calls
        assert calls[:2] == ["bad", "good"]
    finally:
        sub.close()


def test_event_names():
    assert events.event_name(libvirt.VIR_DOMAIN_EVENT_CRASHED) == "crashed"
    assert events.event_name(99) == 99
