"""The request scope: per-request memos of the libvirt layer.

A host opens a scope around each operation it serves (the provider side:
:func:`kvm_providers.provider.request_scope` is this function); the layer keeps
per-request memos in it, e.g. the parsed XML of a domain, so that one request
fetches each domain once however many providers and up-calls it goes through.
Outside a scope nothing is memoized.

It lives in the libvirt layer because the layer is what uses it; the provider
interface only opens and closes it.  It imports nothing of the package.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator, Optional

__all__ = ["request_scope", "current_scope", "IN_PARTS", "only_pass"]

#: The key of a scope entry (value True) by which a host says that it serves the
#: scope's request in several calls, each a part of it (a CIM server calls the
#: provider once per subclass of an enumerated class, and the calls share one
#: scope): no pass over the data is then the request's only one, and a pass that
#: would let go of what it read (``release``) keeps it for the other parts.
IN_PARTS = "virt.scope.in-parts"

_scope: contextvars.ContextVar[Optional[dict]] = contextvars.ContextVar(
    "kvm_providers_request_scope", default=None)


@contextlib.contextmanager
def request_scope(shared: Optional[dict] = None) -> Iterator[dict]:
    """Open a request scope (re-entrant: nested calls share the outer scope).

    `shared`: use this dict as the scope instead of a new one - a host that
    serves one client request in several calls (a CIM server calling the
    provider once per subclass) lets those calls share their memos.
    """
    outer = _scope.get()
    if outer is not None:
        yield outer
        return
    scope: dict = {} if shared is None else shared
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def current_scope() -> Optional[dict]:
    """The dict of the current request scope, or None outside one."""
    return _scope.get()


def only_pass(scope: Optional[dict]) -> bool:
    """Whether a pass over the data in `scope` may let go of what it reads: the
    request comes whole (see :data:`IN_PARTS`)."""
    return scope is None or not scope.get(IN_PARTS)
