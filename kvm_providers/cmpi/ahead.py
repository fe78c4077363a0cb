"""An enumeration call's items, read ahead for the parts of its request to come (.sharing).

A CIM server asks one provider once per registered subclass for an enumeration of a
superclass.  The first call of such a request reads, in its one pass over the domains,
the values of the classes the later calls will ask for, and keeps them as rows in the
request scope (:func:`.sharing.one_pass`, :meth:`.direct.CMPIForm.defer`); the later
calls make their instances from those rows (:meth:`.direct.CMPIForm.made`) without a
document.  Which classes come is known from the last request begun by the same part
(:meth:`.sharing.ReadShare.parts_ahead`); for the first request of its kind it is
guessed from the parts so far (:func:`.sharing.classes_to_come`, stop 27).

`mi` below is the adapter's :class:`.adapter.CMPIProxyProvider` of the call (its
``miname``, ``proxy``, ``_schema()`` and ``_enum_paths()``); `share` the adapter's
:class:`.sharing.ReadShare` (passed in: the tests replace the adapter's).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional

import pywbem
from pywbem import CIMInstanceName

from ..provider import current_scope
from . import heap
from .direct import CMPIForm
from .sharing import ReadShare, classes_to_come, one_pass, rows_key

__all__ = ["enum_items", "class_part"]


def class_part(op: CIMInstanceName) -> tuple:
    """The part of an enumeration request a subclass call is: its class."""
    return (op.classname.lower(),)


def enum_items(mi: Any, share: ReadShare, env: Any, op: CIMInstanceName,
               props: Optional[list[str]], form: CMPIForm) -> Any:
    """The items of an enumeration call of `mi` for class path `op`: made from what an
    earlier call of its request read ahead for it, if one did; else read, in one pass
    with the classes of this provider that the request's parts to come will ask for,
    whose rows are kept in the request scope for them."""
    part = (mi.miname,) + class_part(op)
    scope = current_scope()
    rows = None if scope is None else scope.pop(rows_key(part), None)
    if rows is not None:
        # Freed after the request's last call, by the heap's worker while the server
        # writes the answer, not by this call (.heap.later: 14% of the later calls, sfcb).
        heap.later(rows)
        return form.made(rows)
    paths = mi._enum_paths(op)              # pylint: disable=protected-access
    if scope is None:
        return mi.proxy.MI_enumInstancesXml(env, paths, props, form)
    ahead = _ahead(mi, share, op, scope)
    so_far = None if ahead else share.parts_so_far(mi.miname)
    if so_far is not None:
        # No parts predicted (the first request of its kind): keep no document for
        # parts that may come (410 MB at 10,000 guests); from a second part on, read
        # ahead for the classes the server must still ask (stop 27).
        ahead = _guess(mi, op, so_far, scope)
    elif not ahead:
        return mi.proxy.MI_enumInstancesXml(env, paths, props, form)
    return _read_ahead(mi, env, paths, ahead, props, form, scope)


def _guess(mi: Any, op: CIMInstanceName, so_far: tuple[list, frozenset],
           scope: dict) -> list[CIMInstanceName]:
    """The class paths of `mi`'s provider the server still asks for in this request
    (``sharing.classes_to_come`` of its parts so far) but those begun or read ahead for."""
    mine = {p[1] for p in so_far[0] if len(p) == 2} | {op.classname.lower()}
    if len(mine) < 2:
        return []               # (one class so far: no look-ups)
    prov = mi.proxy.providers.get(op.classname.lower())
    specs = {}
    for cname, other in mi.proxy.providers.items():
        if other is prov:
            with contextlib.suppress(pywbem.CIMError):
                specs[cname.lower()] = mi._schema().spec(  # pylint: disable=protected-access
                    op.namespace, cname)
    return [CIMInstanceName(specs[lc].name, namespace=op.namespace)
            for lc in classes_to_come({c: v.ancestry for c, v in specs.items()}, mine)
            if lc != op.classname.lower() and (mi.miname, lc) not in so_far[1]
            and rows_key((mi.miname, lc)) not in scope]


def _ahead(mi: Any, share: ReadShare, op: CIMInstanceName,
           scope: dict) -> list[CIMInstanceName]:
    """The class paths of the parts to come that `mi`'s provider serves and that no call
    read ahead for yet."""
    prov = mi.proxy.providers.get(op.classname.lower())
    if prov is None:
        return []
    return [CIMInstanceName(p[1], namespace=op.namespace)
            for p in share.parts_ahead(mi.miname)
            if len(p) == 2 and mi.proxy.providers.get(p[1]) is prov
            and rows_key(p) not in scope]


def _read_ahead(mi: Any, env: Any, paths: list[CIMInstanceName],
                ahead: list[CIMInstanceName], props: Optional[list[str]], form: CMPIForm,
                scope: dict) -> Iterator[Any]:
    kept = form.defer(p.classname for p in ahead)
    heap.hold_collector()       # (the rows live until the request is over: .heap)
    with one_pass(scope):
        yield from mi.proxy.MI_enumInstancesXml(env, paths + ahead, props, form)
    # Only a whole pass: a part to come must not answer from half of one.
    for path in ahead:
        scope[rows_key((mi.miname, path.classname.lower()))] = kept[path.classname.lower()]
