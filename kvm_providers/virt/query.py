"""Low-level queries of the libvirt layer, shared by its modules: the request memo,
calls a driver may not support, safe XML parsing, and the host's storage pools.

It imports nothing of the layer but the connection, so that every other module
(domain, validate, pools, nwfilter, ...) can use it without import cycles.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import libvirt
from lxml import etree

from .scope import current_scope
from .connection import STORAGE_GONE, Host

__all__ = ["parse_xml", "request_memo", "if_supported", "storage_pools"]

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
