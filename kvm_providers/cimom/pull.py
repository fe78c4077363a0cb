"""Enumeration contexts of the DSP0200 pull operations.

An Open operation runs the whole enumeration, serializes each object once,
and keeps the fragments not yet delivered in a context; Pull operations hand
out the next MaxObjectCount of them.  A context expires OperationTimeout
seconds after its last response (an abandoned enumeration), and is closed
when its last object is delivered or by CloseEnumeration.  Context ids are
random, and a context can only be used by its owner (the authenticated user,
or the client address when the server has no authentication: see
:func:`owner_of`), so that one client cannot pull another's results.  Each
owner may hold at most ``max_per_owner`` contexts, so that one client cannot
take the whole server-wide pool of ``max_contexts`` and lock everyone else's
pull operations out for up to the maximum OperationTimeout.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

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
    """The undelivered rest of an enumeration."""

    ctx_id: str
    namespace: str
    pull_op: str                   # the only pull operation valid for it
    items: list[str]               # serialized fragments
    timeout: float
    owner: Optional[str]           # see owner_of()
    pos: int = 0
    expires: float = 0.0
    busy: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def remaining(self) -> int:
        return len(self.items) - self.pos


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
            dead = [k for k, c in self._ctx.items() if not c.busy and c.expires < now]
            for k in dead:
                del self._ctx[k]
        return len(dead)

    def open(self, namespace: str, pull_op: str, items: list[str], timeout: float,
             max_count: int, owner: Optional[str]) -> tuple[list[str], str, bool]:
        """Deliver the first `max_count` items; returns (items, context id, end of sequence).

        `owner` (see :func:`owner_of`) is the only one who may use the context.
        """
        self.sweep()
        first = items[:max_count]
        if len(items) <= max_count:
            return first, "", True
        ctx = EnumerationContext(secrets.token_hex(16), namespace, pull_op, items, timeout,
                                 owner, pos=max_count)
        with self._lock:
            mine = sum(1 for c in self._ctx.values() if c.owner == owner)
            if mine >= self.max_per_owner:
                raise CIMError(pywbem.CIM_ERR_SERVER_LIMITS_EXCEEDED,
                               f"{mine} enumeration contexts of {owner or 'this client'} are "
                               f"open, the limit per user (or client address) is "
                               f"{self.max_per_owner}: close or finish some first")
            if len(self._ctx) >= self.max_contexts:
                raise CIMError(pywbem.CIM_ERR_SERVER_LIMITS_EXCEEDED,
                               f"too many open enumeration contexts ({self.max_contexts}); "
                               "close or finish some first")
            ctx.expires = time.monotonic() + timeout
            self._ctx[ctx.ctx_id] = ctx
        return first, ctx.ctx_id, False

    def _take(self, ctx_id: str, namespace: str, owner: Optional[str]) -> EnumerationContext:
        with self._lock:
            ctx = self._ctx.get(ctx_id or "")
            if ctx is None or ctx.expires < time.monotonic() and not ctx.busy:
                if ctx is not None:
                    del self._ctx[ctx_id]
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

    def pull(self, ctx_id: str, namespace: str, pull_op: str, max_count: int,
             owner: Optional[str]) -> tuple[list[str], str, bool]:
        """The next `max_count` items of a context: (items, context id, end of sequence)."""
        ctx = self._take(ctx_id, namespace, owner)
        try:
            if ctx.pull_op != pull_op:
                raise CIMError(pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT,
                               f"enumeration context {ctx_id!r} was opened for "
                               f"{ctx.pull_op}, not {pull_op}")
            chunk = ctx.items[ctx.pos:ctx.pos + max_count]
            ctx.pos += len(chunk)
            end = ctx.remaining == 0
            ctx.expires = time.monotonic() + ctx.timeout
        finally:
            ctx.busy = False
        if end:
            with self._lock:
                self._ctx.pop(ctx_id, None)
        return chunk, ctx_id, end

    def close(self, ctx_id: str, namespace: str, owner: Optional[str]) -> None:
        """CloseEnumeration."""
        self._take(ctx_id, namespace, owner)
        with self._lock:
            self._ctx.pop(ctx_id, None)

    def count(self, ctx_id: str, namespace: str, owner: Optional[str]) -> int:
        """EnumerationCount: the number of objects not yet delivered."""
        ctx = self._take(ctx_id, namespace, owner)
        try:
            ctx.expires = time.monotonic() + ctx.timeout
            return ctx.remaining
        finally:
            ctx.busy = False
