"""Low-level queries of the libvirt layer, shared by its modules: the request memo,
calls a driver may not support, safe XML parsing, and the host's storage pools.

It imports nothing of the layer but the connection, so that every other module
(domain, validate, pools, nwfilter, ...) can use it without import cycles.
"""

from __future__ import annotations

import bisect
from collections import deque
from typing import Any, Callable, Optional

import libvirt
from lxml import etree

from .scope import current_scope
from .connection import STORAGE_GONE, Host

__all__ = ["parse_xml", "request_memo", "if_supported", "storage_pools", "pool_volumes",
           "volume_capacity"]

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def parse_xml(text: str) -> Any:
    """Parse libvirt XML text into an lxml element."""
    return etree.fromstring(text.encode("utf-8") if isinstance(text, str) else text, _PARSER)


def request_memo(key: tuple, compute: Callable[[], Any]) -> Any:
    """compute() once per request for `key` (every call outside a request computes)."""
    scope = current_scope()
    if scope is None:
        return compute()
    try:
        return scope[key]
    except KeyError:
        value = scope[key] = compute()
        return value


def if_supported(host: Host, what: str, call: Callable[[Any], Any]) -> Any:
    """call(connection); None if the driver does not support it (other errors translated)."""
    conn = host.conn()
    try:
        return call(conn)
    except libvirt.libvirtError as exc:
        if Host.unsupported(exc):
            return None
        raise host.translate(exc, what) from None


def storage_pools(host: Host) -> list[tuple[str, Optional[str], Any]]:
    """[(pool name, target path, pool object)] of the host (once per request)."""
    def compute():
        pools = if_supported(host, "listing storage pools", lambda c: c.listAllStoragePools(0))
        out = []
        for p in pools or []:
            # A pool undefined since the listing has no path; any other failure fails
            # the request (a pool without its path would hide the disks in it).
            text = host.ask(f"reading the XML of storage pool {p.name()!r}", p.XMLDesc, 0,
                            absent=STORAGE_GONE)
            path = parse_xml(text).findtext("target/path") if text is not None else None
            out.append((p.name(), path.rstrip("/") if path else None, p))
        return out
    return request_memo(("virt.pools", host.label, host.generation), compute)


def pool_volumes(host: Host, name: str, pool: Any) -> dict[str, Any]:
    """{volume key: volume object} of storage pool `name` (`pool`: its object), once per
    request.

    One ``listAllVolumes`` per pool instead of a ``storageVolLookupByPath`` per disk
    (issue 16: those lookups, one RPC each and one after another, were half of a disk
    enumeration through libvirtd).  A volume's key and name come with the listing
    (no further call); in file-based pools (dir, fs, netfs) the key is the volume's
    path.  A pool gone or inactive since it was listed has no volumes here; callers
    fall back to a lookup by path for what the index does not hold.
    """
    def compute() -> dict[str, Any]:
        vols = host.ask(f"listing the volumes of storage pool {name!r}",
                        pool.listAllVolumes, 0, absent=STORAGE_GONE)
        return {v.key(): v for v in vols or ()}
    return request_memo(("virt.poolvolumes", host.label, host.generation, name), compute)


#: Capacities asked of one pool in one request before the rest are fetched in batches:
#: a single GetInstance asks one, an enumeration asks every disk.
VOLUME_BULK_AFTER = 4
#: Volumes fetched together past that: the asked one and its neighbours in path order
#: (domains are listed by name, and disk paths mostly carry their domain's name), so
#: that the first instances of an enumeration need not wait for the whole pool.
VOLUME_BATCH = 64
#: Volume infos in flight at once: libvirtd serves 5 calls of one client at a time
#: (max_client_requests); one is left for the request's other calls.
VOLUME_READ_AHEAD = 4


def volume_capacity(host: Host, name: str, pool: Any, path: str) -> Optional[int]:
    """Capacity in bytes of the volume at `path` in storage pool `name` (`pool`: its
    object), or None if the pool's listing has no volume there (the caller may still
    look it up by path) or it went away.

    A request asking for more than VOLUME_BULK_AFTER volumes of a pool (an
    enumeration of disks) gets the capacities VOLUME_BATCH at a time - the one asked
    and the volumes after it in path order - VOLUME_READ_AHEAD calls in flight on the
    connection's helpers, instead of one call after another (issue 16).
    """
    state: dict = request_memo(("virt.volcap", host.label, host.generation, name),
                               lambda: {"asked": 0, "order": None, "caps": {}})
    caps: dict[str, Optional[int]] = state["caps"]
    if path in caps:
        return caps[path]
    vols = pool_volumes(host, name, pool)
    vol = vols.get(path)
    if vol is None:
        return None
    state["asked"] += 1
    if state["asked"] <= VOLUME_BULK_AFTER or host.in_process:
        info = host.ask(f"reading storage volume {path!r}", vol.info, absent=STORAGE_GONE)
        caps[path] = int(info[1]) if info else None
        return caps[path]
    if state["order"] is None:
        state["order"] = sorted(vols)
    order = state["order"]
    start = bisect.bisect_left(order, path)
    batch = [path] + [k for k in order[start + 1:start + VOLUME_BATCH] if k not in caps]
    _fetch_capacities(host, vols, batch, caps)
    return caps.get(path)


def _fetch_capacities(host: Host, vols: dict[str, Any], keys: list[str],
                      caps: dict[str, Optional[int]]) -> None:
    """caps[key] = capacity (None if gone) of each volume of `keys`, VOLUME_READ_AHEAD
    calls in flight."""
    def fetch(v: Any) -> Any:
        try:
            return v.info()
        except libvirt.libvirtError as exc:
            return exc

    todo = deque(keys)
    pending: deque = deque()
    while todo or pending:
        while todo and len(pending) < VOLUME_READ_AHEAD:
            key = todo.popleft()
            pending.append((key, host.submit(fetch, vols[key], on=vols[key])))
        key, fut = pending.popleft()
        info = fut.result()
        if isinstance(info, libvirt.libvirtError):
            # Gone since the listing: no capacity; anything else fails the request.
            host.ask(f"reading storage volume {key!r}", _reraise, info, absent=STORAGE_GONE)
            info = None
        caps[key] = int(info[1]) if info else None


def _reraise(exc: BaseException) -> None:
    raise exc
