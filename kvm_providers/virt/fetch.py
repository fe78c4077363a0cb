"""Reading many things of a libvirt daemon ahead of their use, in lanes (issue 16, stop 23).

:func:`read_ahead` hands the items of a list (domains whose XML an enumeration reads)
to a few *lanes*: each lane is one hop at a time on a helper of the connection
(:meth:`.connection.Host.submit`), fetching a block of consecutive items one call after
the other.  The caller gets the results in the items' order; whenever it takes one, the
lanes whose hop is done are handed their next block at once, so the helpers keep
fetching while the caller works, up to `ahead` items beyond what it has taken.

Why lanes and not batches: the batches before (the whole next window of documents,
shared by the helpers, asked for when the caller started on the current one) left every
helper idle from the end of its share until the caller had taken the whole window and
the slowest helper was done; once the caller's own work per DiskRASD had shrunk, it
waited for the XML 20-25 % of an enumeration of 1000 guests through libvirtd.  A lane
never waits for another, and at most `lanes` calls are in flight (libvirtd serves 5
calls of a client at once by default: more would only queue there).

Every wait is a :meth:`.link.Pending.result`: the host's deadline holds (a hung daemon
fails the request within ``hang_timeout``), and what a hop raises is raised to the
caller at the item it belongs to the block of, never before the items ahead of it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Optional, Sequence, TypeVar

from .connection import Host
from .link import Pending

__all__ = ["read_ahead"]

T = TypeVar("T")


class _Lane:
    """One lane: its block in flight (items ``start:end``, the hop's Pending)."""

    __slots__ = ("start", "end", "pending")

    def __init__(self) -> None:
        self.start = self.end = 0
        self.pending: Optional[Pending] = None


class _Raise:
    """What a lane's hop raised, in place of its block's first result."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException):
        self.exc = exc


def read_ahead(host: Host, on: Any, items: Sequence[T],
               fetch: Callable[[list[T]], list[Any]], *, lanes: int, ahead: int,
               first: int = 1, block_max: int = 32) -> Iterator[tuple[T, Any]]:
    """(item, result) for each of `items`, in order; ``fetch(block)`` returns the results
    of a block of consecutive items (a list as long as the block) and runs on a helper
    of `on`'s connection, one hop per block.

    Blocks start at `first` items and double up to `block_max` (the first results come
    at once; later ones in few hand-offs); at most `lanes` hops run at a time, and at
    most `ahead` items are asked for beyond those the caller has taken.  An exception
    raised by a hop (or by the wait for it: the host hung or lost) is raised when the
    caller comes to the first item of its block.
    """
    n = len(items)
    results: dict[int, Any] = {}
    pool = [_Lane() for _ in range(max(1, min(lanes, n)))]
    nxt = 0              # first item not handed to a lane yet
    size = max(1, first)
    taken = 0            # items the caller has taken

    def assign(lane: _Lane) -> None:
        nonlocal nxt, size
        lane.pending = None
        if nxt >= n:
            return
        if nxt > taken and nxt - taken + size > ahead:
            return      # wait for room for a whole block: small ones cost hand-offs
        end = min(n, nxt + size)
        lane.start, lane.end = nxt, end
        lane.pending = host.submit(fetch, list(items[nxt:end]), on=on)
        nxt = end
        size = min(size * 2, max(block_max, 1))

    def collect(lane: _Lane) -> None:
        pending = lane.pending
        assert pending is not None
        start = lane.start
        lane.pending = None
        try:
            values = pending.result()
        except Exception as exc:  # pylint: disable=broad-except
            results[start] = _Raise(exc)    # raised when the caller comes to the block
            return
        for i, value in enumerate(values):
            results[start + i] = value

    for lane in pool:
        assign(lane)
    while taken < n:
        if taken not in results:
            owner = next(lane for lane in pool
                         if lane.pending is not None and lane.start <= taken < lane.end)
            collect(owner)
            assign(owner)
        value = results.pop(taken)
        if type(value) is _Raise:
            raise value.exc
        taken += 1
        # Lanes done meanwhile get their next block now (no waiting: done() only looks).
        for lane in pool:
            if lane.pending is None:
                if nxt < n:
                    assign(lane)
            elif lane.pending.done():
                collect(lane)
                assign(lane)
        yield items[taken - 1], value
