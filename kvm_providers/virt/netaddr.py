"""Listen addresses of consoles: IPv6 literals in 'host:port' text, and whether an
address is IPv6 only.  Shared by the graphics mapping and the KVM redirection model."""

from __future__ import annotations

import functools
import ipaddress
from typing import Any, Optional

__all__ = ["format_hostport", "split_hostport", "is_ipv6_only", "is_ipv6"]


def format_hostport(host: str, port: Any) -> str:
    """'host:port', with an IPv6 literal in brackets ('[::1]:5900', not '::1:5900',
    which cannot be split again)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def split_hostport(value: str) -> tuple[Optional[str], Optional[str]]:
    """'127.0.0.1:5900' / '[::1]:5900' / '[::1]' / ':5900' / '0.0.0.0' / '::1' ->
    (host without brackets, port); None for a part that is not there."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host or None, (rest[1:] or None) if rest.startswith(":") else None
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        return host or None, port or None
    return value or None, None       # a bare IPv6 literal has no port


def _ip(address: Optional[str]) -> Any:
    if not address:
        return None
    try:
        return ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return None


def is_ipv6(address: Optional[str]) -> bool:
    """True if `address` is an IPv6 literal (with or without brackets)."""
    ip = _ip(address)
    return ip is not None and ip.version == 6


def is_ipv6_only(address: Optional[str]) -> Optional[bool]:
    """Whether a listener on `address` accepts IPv6 clients only: True for an IPv6
    literal other than '::' (which accepts IPv4 too on Linux), False for an IPv4
    literal or '::', None for a host name or no address."""
    if type(address) is str:
        # Remembered per text (issue 16, stop 23: ipaddress's parse was 20 us of every
        # graphics RASD; the guests of a host listen on a handful of addresses).
        return _ipv6_only_of(address)
    return _ipv6_only(address)


def _ipv6_only(address: Optional[str]) -> Optional[bool]:
    ip = _ip(address)
    if ip is None:
        return None
    return ip.version == 6 and not ip.is_unspecified


_ipv6_only_of = functools.lru_cache(maxsize=256)(_ipv6_only)
