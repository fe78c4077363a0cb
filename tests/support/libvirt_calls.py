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
