"""Holding libvirt's event loop still during runs of calls to a daemon (issue 16).

With libvirt's default event loop registered (:func:`.connection.ensure_event_loop`), every
call on a connection to a daemon makes libvirt's client switch the socket's watch in the
loop off (the calling thread does the I/O itself) and on again; each switch wakes the loop
thread when it sits in ``poll`` inside ``virEventRunDefaultImpl``, and each wake brings that
thread back to Python for the GIL and the next iteration: 2-3 wakes per call, thousands per
enumeration, each a hand-off of the GIL and a context switch.  Measured with 1000
``XMLDesc`` one after the other on a private libvirtd (2 cores, load 2-4): 68-150 ms of
CPU and 200-330 ms wall with the loop polling, 26 ms and 104 ms with it parked - what the
same calls cost in a process without an event loop.

libvirt wakes the loop only when it polls (GLib wakes a context only while a thread polls
it), so a loop thread waiting outside libvirt is not woken at all.  A run of calls
(:func:`loop_held`: the domain XML read ahead of an enumeration) therefore holds the loop:
while a hold is on, and for :data:`LINGER` seconds after the last one ends (the next batch
of a run starts within it), the loop thread waits here before its next iteration
(:func:`wait_unheld`), never longer than :data:`MAX_PARK` at a time.  Events, close
callbacks and keepalive are late by at most that; the calls themselves never need the
loop (the calling thread does their I/O).  The end of a hold wakes the parked thread
only when it would otherwise sleep beyond twice the linger, so that a run of small
requests (one hold each) does not wake it once per request: it then runs again within
``2 * LINGER`` of the last hold's end, and at the latest after :data:`MAX_PARK`.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

__all__ = ["loop_held", "held", "wait_unheld", "LINGER", "MAX_PARK"]

#: Seconds the loop stays parked after the last hold ends: the gap between two batches of
#: a run is far shorter (the next batch is asked for as soon as the last one is back).
LINGER = 0.05
#: The longest the loop waits at a time, held or not: events and callbacks are late by at
#: most this (then one iteration runs, and the loop parks again if still held).
MAX_PARK = 0.5

_cond = threading.Condition()
_holds = 0
_released = float("-inf")   # time.monotonic() when the last hold ended
#: When the parked loop thread looks again by itself (time.monotonic(); -inf: not
#: parked): a hold that ends wakes it only if that is later than its linger allows.
_wakes_at = float("-inf")


@contextmanager
def loop_held() -> Iterator[None]:
    """Keep libvirt's event loop out of ``poll`` while the block runs calls (nestable,
    from any number of threads)."""
    global _holds, _released
    with _cond:
        _holds += 1
    try:
        yield
    finally:
        with _cond:
            _holds -= 1
            _released = time.monotonic()
            # From "held" to the linger: the parked loop thread is woken to wait for the
            # linger only if it would otherwise sleep well beyond it (it parked for up to
            # MAX_PARK while held).  Once it waits for a linger, the holds of requests
            # following each other (each ending within the linger) do not wake it again:
            # one wake-up of that thread per request was a context switch and a GIL
            # hand-off on the request's own path (issue 16).
            if not _holds and _wakes_at > _released + 2 * LINGER:
                _cond.notify_all()


def held() -> bool:
    """True while the loop would wait (a hold on, or within LINGER of the last one)."""
    return bool(_holds) or time.monotonic() - _released < LINGER


def wait_unheld() -> None:
    """Run by the loop thread before each iteration: returns at once unless the loop is
    held, else when the holds are over (plus LINGER) or after MAX_PARK."""
    if not held():          # the common case, without the lock
        return
    global _wakes_at
    deadline = time.monotonic() + MAX_PARK
    with _cond:
        try:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return
                if _holds:
                    wait = deadline - now
                else:
                    wait = min(_released + LINGER, deadline) - now
                    if wait <= 0:
                        return
                _wakes_at = now + wait
                _cond.wait(wait)
        finally:
            _wakes_at = float("-inf")
