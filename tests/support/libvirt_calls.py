"""Counting the libvirt calls an operation makes (tests of what operations cost)."""

from __future__ import annotations

from collections import Counter
from typing import Iterable

__all__ = ["count_libvirt_calls"]


def count_libvirt_calls(monkeypatch, methods: dict[type, Iterable[str]],
                        qualified: bool = False) -> Counter:
    """Wrap the libvirt `methods` ({class: method names}) to count their calls, keyed by
    name, or by 'Class.name' if `qualified`; `monkeypatch` undoes it after the test."""
    counter: Counter = Counter()

    def wrap(cls, name):
        real = getattr(cls, name)
        key = f"{cls.__name__}.{name}" if qualified else name

        def counting(self, *args, **kwargs):
            counter[key] += 1
            return real(self, *args, **kwargs)
        monkeypatch.setattr(cls, name, counting)
    for cls, names in methods.items():
        for name in names:
            wrap(cls, name)
    return counter


def track_in_flight(monkeypatch, methods: Iterable[tuple[type, str]],
                    delay: float) -> dict[str, int]:
    """Make each of `methods` (pairs of libvirt class and method name) last at least
    `delay` seconds and count them: the returned dict holds ``now`` (calls running),
    ``most`` (the most seen running at once, any of them) and ``calls`` (calls made).
    The delay lets calls made side by side overlap whatever the machine's load, so a
    test can assert how many a path keeps in flight."""
    import threading
    import time

    lock = threading.Lock()
    state = {"now": 0, "most": 0, "calls": 0}

    def wrap(real):
        def tracked(self, *args, **kwargs):
            with lock:
                state["now"] += 1
                state["calls"] += 1
                state["most"] = max(state["most"], state["now"])
            try:
                time.sleep(delay)
                return real(self, *args, **kwargs)
            finally:
                with lock:
                    state["now"] -= 1
        return tracked

    for cls, name in methods:
        monkeypatch.setattr(cls, name, wrap(getattr(cls, name)))
    return state
