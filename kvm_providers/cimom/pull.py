"""Enumeration contexts of the DSP0200 pull operations.

An Open operation starts the enumeration and delivers its first
MaxObjectCount objects; the context keeps the rest *unproduced*: a generator
of serialized objects that Pull operations advance by their own
MaxObjectCount (plus one object read ahead, which tells whether the sequence
ends).  So the first batch costs what its objects cost, not the whole
enumeration, and a context holds one batch at most, not every serialized
object (issue 16).  EnumerationCount produces the rest to count it.  An error
of the enumeration in a Pull is that Pull's answer and closes the context
(ContinueOnError is not supported).

A context expires OperationTimeout seconds after its last response (an
abandoned enumeration), and is closed when its last object is delivered or by
CloseEnumeration; closing it ends its generator (releasing what the providers
hold).  Context ids are random, and a context can only be used by its owner
(the authenticated user, or the client address when the server has no
authentication: see :func:`owner_of`), so that one client cannot pull
another's results.  Each owner may hold at most ``max_per_owner`` contexts, so
that one client cannot take the whole server-wide pool of ``max_contexts`` and
lock everyone else's pull operations out for up to the maximum
OperationTimeout.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional

import pywbem
from pywbem import CIMError

__all__ = ["EnumerationContext", "PullManager", "owner_of", "INSTANCES_WITH_PATH", "PATHS",
           "INSTANCES"]

INSTANCES_WITH_PATH = "PullInstancesWithPath"
PATHS = "PullInstancePaths"
INSTANCES = "PullInstances"


def owner_of(user: Optional[str], address: Optional[str]) -> str:
    """Who a context belongs to: the authenticated user, else the client's address."""
    if user is not None:
        return f"user {user}"
    return f"address {address}" if address else "anonymous"


@dataclass
class EnumerationContext:
    """The undelivered rest of an enumeration: objects read ahead, then a generator."""

    ctx_id: str
    namespace: str
    pull_op: str                   # the only pull operation valid for it
    ahead: deque                   # serialized fragments produced, not yet delivered
    source: Optional[Iterator[str]]  # the rest, produced on demand (None: exhausted)
    timeout: float
    owner: Optional[str]           # see owner_of()
    expires: float = 0.0
    busy: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, count: int) -> tuple[list[str], bool]:
        """The next `count` fragments, and whether the sequence ends with them (one more
        is read ahead to know).  Errors of the enumeration are raised."""
        out: list[str] = []
        ahead = self.ahead
        while len(out) < count and ahead:
            out.append(ahead.popleft())
        source = self.source
        if source is not None:
            try:
                while len(out) < count:
                    out.append(next(source))
                if not ahead:
                    ahead.append(next(source))
            except StopIteration:
                self.source = None
        return out, not ahead and self.source is None

    def remaining(self) -> int:
        """How many fragments are not delivered yet (produces them all)."""
        if self.source is not None:
            self.ahead.extend(self.source)
            self.source = None
        return len(self.ahead)

    def end(self) -> None:
        """Drop what is left; end the generator (its providers release what they hold)."""
        source, self.source = self.source, None
        self.ahead.clear()
        close = getattr(source, "close", None)
        if close is not None:
            close()


class PullManager:
    """The open enumeration contexts of a server."""

    def __init__(self, max_contexts: int = 256, default_timeout: float = 60.0,
                 max_timeout: float = 600.0, max_per_owner: int = 32):
        self.max_contexts = max_contexts
        self.max_per_owner = max_per_owner
        self.default_timeout = default_timeout
        self.max_timeout = max_timeout
        self._ctx: dict[str, EnumerationContext] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._ctx)

    def check_timeout(self, timeout: Optional[int]) -> float:
        """The OperationTimeout to use; CIM_ERR_INVALID_OPERATION_TIMEOUT if refused."""
        if timeout is None:
            return self.default_timeout
        if timeout == 0:
            raise CIMError(pywbem.CIM_ERR_INVALID_OPERATION_TIMEOUT,
                           "OperationTimeout 0 (never expire) is not supported; "
                           f"use 1 to {int(self.max_timeout)} seconds")
        if timeout > self.max_timeout:
            raise CIMError(pywbem.CIM_ERR_INVALID_OPERATION_TIMEOUT,
                           f"OperationTimeout {timeout} is over the maximum of "
                           f"{int(self.max_timeout)} seconds")
        return float(timeout)

    def sweep(self) -> int:
        """Drop expired contexts; returns how many."""
        now = time.monotonic()
        with self._lock:
            dead = [c for c in self._ctx.values() if not c.busy and c.expires < now]
            for c in dead:
                del self._ctx[c.ctx_id]
        for c in dead:
            c.end()
        return len(dead)

    def open(self, namespace: str, pull_op: str, items: Iterable[str], timeout: float,
             max_count: int, owner: Optional[str]) -> tuple[list[str], str, bool]:
        """Deliver the first `max_count` items; returns (items, context id, end of sequence).

        `items` is produced on demand: only the first batch (and one item more) here,
        the rest by later pulls.  `owner` (see :func:`owner_of`) is the only one who
        may use the context.
        """
        self.sweep()
        ctx = EnumerationContext(secrets.token_hex(16), namespace, pull_op, deque(),
                                 iter(items), timeout, owner)
        # Errors of the enumeration's start (a bad class, a failing host) are the
        # Open operation's answer, before any context exists.
        try:
            first, end = ctx.take(max_count)
        except BaseException:
            ctx.end()
            raise
        if end:
            return first, "", True
        with self._lock:
            mine = sum(1 for c in self._ctx.values() if c.owner == owner)
            refused = None
            if mine >= self.max_per_owner:
                refused = CIMError(pywbem.CIM_ERR_SERVER_LIMITS_EXCEEDED,
                                   f"{mine} enumeration contexts of {owner or 'this client'} "
                                   f"are open, the limit per user (or client address) is "
                                   f"{self.max_per_owner}: close or finish some first")
            elif len(self._ctx) >= self.max_contexts:
                refused = CIMError(pywbem.CIM_ERR_SERVER_LIMITS_EXCEEDED,
                                   f"too many open enumeration contexts ({self.max_contexts}); "
                                   "close or finish some first")
            else:
                ctx.expires = time.monotonic() + timeout
                self._ctx[ctx.ctx_id] = ctx
        if refused is not None:
            ctx.end()
            raise refused
        return first, ctx.ctx_id, False

    def _take(self, ctx_id: str, namespace: str, owner: Optional[str]) -> EnumerationContext:
        with self._lock:
            ctx = self._ctx.get(ctx_id or "")
            if ctx is None or ctx.expires < time.monotonic() and not ctx.busy:
                if ctx is not None:
                    del self._ctx[ctx_id]
                    ctx.end()
                raise CIMError(pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT,
                               f"enumeration context {ctx_id!r} does not exist "
                               "(finished, closed or expired)")
            if ctx.namespace.lower() != namespace.lower():
                raise CIMError(pywbem.CIM_ERR_INVALID_NAMESPACE,
                               f"enumeration context {ctx_id!r} belongs to namespace "
                               f"{ctx.namespace}, not {namespace}")
            if ctx.owner != owner:
                raise CIMError(pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT,
                               f"enumeration context {ctx_id!r} belongs to another user "
                               "(or client address)")
            if ctx.busy:
                raise CIMError(pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT,
                               f"enumeration context {ctx_id!r} is in use by another request")
            ctx.busy = True
            return ctx

    def _drop(self, ctx: EnumerationContext) -> None:
        with self._lock:
            if self._ctx.get(ctx.ctx_id) is ctx:
                del self._ctx[ctx.ctx_id]
        ctx.end()

    def pull(self, ctx_id: str, namespace: str, pull_op: str, max_count: int,
             owner: Optional[str]) -> tuple[list[str], str, bool]:
        """The next `max_count` items of a context: (items, context id, end of sequence).

        An error of the enumeration is raised and closes the context.
        """
        ctx = self._take(ctx_id, namespace, owner)
        try:
            if ctx.pull_op != pull_op:
                raise CIMError(pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT,
                               f"enumeration context {ctx_id!r} was opened for "
                               f"{ctx.pull_op}, not {pull_op}")
            try:
                chunk, end = ctx.take(max_count)
            except BaseException:
                self._drop(ctx)
                raise
            ctx.expires = time.monotonic() + ctx.timeout
        finally:
            ctx.busy = False
        if end:
            self._drop(ctx)
        return chunk, ctx_id, end

    def close(self, ctx_id: str, namespace: str, owner: Optional[str]) -> None:
        """CloseEnumeration."""
        self._drop(self._take(ctx_id, namespace, owner))

    def count(self, ctx_id: str, namespace: str, owner: Optional[str]) -> int:
        """EnumerationCount: the number of objects not yet delivered."""
        ctx = self._take(ctx_id, namespace, owner)
        try:
            try:
                n = ctx.remaining()
            except BaseException:
                self._drop(ctx)
                raise
            ctx.expires = time.monotonic() + ctx.timeout
            return n
        finally:
            ctx.busy = False
