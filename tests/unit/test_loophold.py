"""virt.loophold: runs of calls to a daemon hold libvirt's event loop thread out of
``poll`` (issue 16).  The gate's behaviour with real threads: no wait when nothing holds
it, a wait while a hold is on and for LINGER after the last, never longer than MAX_PARK,
holds from several threads counted."""

from __future__ import annotations

import threading
import time

import pytest

from kvm_providers.virt import loophold as L


@pytest.fixture(autouse=True)
def quiet_gate(monkeypatch):
    """A gate of this test's own (no hold left over from elsewhere), short linger."""
    monkeypatch.setattr(L, "_cond", threading.Condition())
    monkeypatch.setattr(L, "_holds", 0)
    monkeypatch.setattr(L, "_released", float("-inf"))
    monkeypatch.setattr(L, "_wakes_at", float("-inf"))
    monkeypatch.setattr(L, "LINGER", 0.05)
    monkeypatch.setattr(L, "MAX_PARK", 60.0)


def _waiter() -> tuple[threading.Thread, threading.Event]:
    """A thread running wait_unheld() once, as the loop thread does; its end event."""
    done = threading.Event()

    def run():
        L.wait_unheld()
        done.set()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, done


def test_an_unheld_loop_does_not_wait():
    t0 = time.monotonic()
    for _ in range(1000):
        L.wait_unheld()
    assert not L.held()
    assert time.monotonic() - t0 < 5.0      # 1000 waits that are none


def test_the_loop_waits_while_held_and_for_the_linger():
    with L.loop_held():
        assert L.held()
        t, done = _waiter()
        assert not done.wait(0.3), "the loop ran while held"
    released = time.monotonic()
    assert L.held()                         # the linger: the next batch comes within it
    assert done.wait(30), "the loop stayed parked after the holds ended"
    assert time.monotonic() - released >= L.LINGER * 0.9
    t.join(5)
    time.sleep(L.LINGER * 1.5)
    assert not L.held()


def test_holds_from_several_threads_are_counted():
    first, second = threading.Event(), threading.Event()
    stop_first = threading.Event()

    def hold_until(flag, started):
        with L.loop_held():
            started.set()
            flag.wait(30)
    a = threading.Thread(target=hold_until, args=(stop_first, first), daemon=True)
    a.start()
    assert first.wait(10)
    with L.loop_held():
        with L.loop_held():                 # nested in one thread
            second.set()
        t, done = _waiter()
        stop_first.set()
        a.join(10)
        assert not done.wait(0.3), "the loop ran while one hold was still on"
    assert done.wait(30)
    t.join(5)


def test_a_long_hold_parks_the_loop_at_most_max_park(monkeypatch):
    """Events and callbacks are late by at most MAX_PARK, however long a hold lasts."""
    monkeypatch.setattr(L, "MAX_PARK", 0.2)
    with L.loop_held():
        t0 = time.monotonic()
        t, done = _waiter()
        assert done.wait(30), "the loop stayed parked beyond MAX_PARK"
        assert time.monotonic() - t0 >= 0.15
        t.join(5)
        assert L.held()


def test_a_hold_ends_with_an_exception():
    with pytest.raises(RuntimeError):
        with L.loop_held():
            raise RuntimeError("a call failed")
    assert L._holds == 0


class _CountingCondition(threading.Condition):
    """A Condition counting the waits that returned (each a wake-up of the waiter)."""

    def __init__(self):
        super().__init__()
        self.woken = 0

    def wait(self, timeout=None):
        try:
            return super().wait(timeout)
        finally:
            self.woken += 1


def test_holds_following_each_other_do_not_wake_the_parked_loop_each(monkeypatch):
    """Stop 24: a run of short holds (small requests following each other, each ending
    within the linger of the one before) wakes the parked loop thread a bounded number of
    times, not once per hold (each wake-up was a context switch and a GIL hand-off on the
    request's path: 50 holds woke it some 50 times before); it still runs once the holds
    are over (within two lingers of the last one)."""
    cond = _CountingCondition()
    monkeypatch.setattr(L, "_cond", cond)
    monkeypatch.setattr(L, "LINGER", 2.0)      # every gap below is far inside it
    with L.loop_held():
        t, done = _waiter()
        deadline = time.monotonic() + 30
        while L._wakes_at == float("-inf") and time.monotonic() < deadline:
            time.sleep(0.01)                    # the waiter is parked (held)
        assert L._wakes_at > time.monotonic() + 10
    for _ in range(50):
        with L.loop_held():
            pass
        time.sleep(0.002)
    released = time.monotonic()
    assert not done.wait(0.5), "the loop ran within the linger"
    assert done.wait(30), "the loop stayed parked after the holds ended"
    assert time.monotonic() - released < 2 * L.LINGER + 10
    t.join(5)
    assert cond.woken <= 5, cond.woken
