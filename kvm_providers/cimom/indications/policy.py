"""Who may see which indication objects, and where indications may be sent.

* :class:`AccessPolicy`: every filter, destination and subscription belongs
  to the user who created it; only that user and the administrators see it.
* :func:`parse_destination` and :class:`DestinationPolicy`: the listener
  URLs clients give, and the networks and hosts indications may go to (the
  server must not be made to POST wherever a client says: an SSRF guard),
  checked when a destination is created or modified and again at every
  connection the delivery makes.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Optional
from urllib.parse import urlsplit

from ..auth import user_in_group
from .model import bad

__all__ = ["DestinationURL", "parse_destination", "DestinationRefused", "DestinationPolicy",
           "AccessPolicy"]


# -- destination URLs -------------------------------------------------------------

@dataclass(frozen=True)
class DestinationURL:
    """A parsed listener URL (CIM_ListenerDestinationCIMXML.Destination)."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def secure(self) -> bool:
        return self.scheme == "https"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}"


_HOST_RE = re.compile(r"^[A-Za-z0-9._-]+$|^[0-9A-Fa-f:.]+$")


def parse_destination(text: Any) -> DestinationURL:
    """Parse a listener destination URL; CIM_ERR_INVALID_PARAMETER naming what is wrong.

    ``http://host:port/path`` or ``https://...``.  Without a scheme, http is
    assumed (as CIM_ListenerDestinationCIMXML.Destination says); without a
    port, 80 or 443.
    """
    if not isinstance(text, str) or not text.strip():
        raise bad("Destination is required: the URL of the CIM listener "
                  "(http://host:port or https://host:port)")
    raw = text.strip()
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", raw) is None:
        m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):(?!\d)", raw)
        if m:
            raise bad(f"Destination {text!r}: scheme {m.group(1)!r} is not supported "
                      "(http, https)")
        raw = "http://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise bad(f"Destination {text!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise bad(f"Destination {text!r}: scheme {parts.scheme!r} is not supported "
                  "(http, https)")
    if parts.username is not None or parts.password is not None:
        raise bad(f"Destination {text!r}: credentials in the URL are not supported")
    host = parts.hostname
    if not host or not _HOST_RE.match(host):
        raise bad(f"Destination {text!r} has no valid host")
    if port == 0:
        raise bad(f"Destination {text!r}: port 0 is not a listener port")
    if port is None:
        port = 443 if scheme == "https" else 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return DestinationURL(scheme, host, port, path)


# -- where indications may go (SSRF guard) --------------------------------------------

class DestinationRefused(OSError):
    """A listener address is not allowed by ``[server] indication_destinations``."""


def _normalize_ip(text: str) -> "ipaddress.IPv4Address | ipaddress.IPv6Address":
    """An address as compared with the allowed networks (IPv4-mapped IPv6 as IPv4)."""
    ip = ipaddress.ip_address(text)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class DestinationPolicy:
    """The addresses indications may be sent to: a server must not be made to POST to
    whatever a client names (cloud metadata services, the private network, its own
    neighbours' admin interfaces).

    `allowed`: networks (``10.1.0.0/16``), addresses and host names (whose
    addresses, resolved at each check, are then allowed).  Addresses are
    compared in their canonical form, whatever spelling the URL used
    (``0x7f000001``, ``2130706433``, ``0177.0.0.1`` and ``::ffff:127.0.0.1``
    are all 127.0.0.1): host names are resolved with getaddrinfo, IPv4-mapped
    IPv6 addresses count as their IPv4 address.  A destination is checked when
    it is created or its URL modified (every address its host resolves to must
    be allowed) and again at every connection (only allowed addresses are
    connected to, and the connected peer is checked), so that a name that
    resolves elsewhere later (DNS rebinding) gains nothing.
    """

    def __init__(self, allowed: Iterable[str] = ("127.0.0.0/8", "::1")):
        self.entries = [str(a).strip() for a in allowed]
        self.networks: list = []
        self.hosts: list[str] = []
        for entry in self.entries:
            try:
                net = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                if not _HOST_RE.match(entry) or ":" in entry:
                    raise ValueError(f"indication_destinations: {entry!r} is neither a "
                                     "network, an address nor a host name") from None
                self.hosts.append(entry.lower())
                continue
            if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96 and \
                    net.network_address.ipv4_mapped is not None:
                net = ipaddress.ip_network(f"{net.network_address.ipv4_mapped}/"
                                           f"{net.prefixlen - 96}")
            self.networks.append(net)

    def allows(self, ip) -> bool:
        """True if the (normalized) address `ip` is in an allowed network or host."""
        if any(ip.version == net.version and ip in net for net in self.networks):
            return True
        for host in self.hosts:
            try:
                if ip in {_normalize_ip(str(a[4][0])) for a in
                          socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}:
                    return True
            except (OSError, ValueError):
                continue
        return False

    @staticmethod
    def resolve(host: str, port: int) -> list:
        """getaddrinfo for a TCP connection (raises OSError)."""
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)

    def check(self, url: "DestinationURL", what: str) -> None:
        """CIM_ERR_INVALID_PARAMETER unless every address of `url`'s host is allowed."""
        try:
            infos = self.resolve(url.host, url.port)
        except OSError as exc:
            raise bad(f"{what}: Destination {url}: host {url.host!r} cannot be resolved "
                      f"({getattr(exc, 'strerror', None) or exc})") from None
        addresses = []
        for info in infos:
            ip = _normalize_ip(str(info[4][0]))
            if ip not in addresses:
                addresses.append(ip)
        refused = [str(ip) for ip in addresses if not self.allows(ip)]
        if refused:
            shown = url.host if [url.host] == refused else f"{url.host} ({', '.join(refused)})"
            raise bad(f"{what}: Destination {url} is not allowed: indications are sent "
                      f"only to the networks and hosts of [server] indication_destinations "
                      f"({', '.join(self.entries) or 'none'}), and {shown} is not among "
                      "them")

    def connect(self, url: "DestinationURL", timeout: Optional[float]) -> socket.socket:
        """A TCP connection to an allowed address of `url` (DestinationRefused if none)."""
        refused: list[str] = []
        error: Optional[OSError] = None
        for family, socktype, proto, _canon, sockaddr in self.resolve(url.host, url.port):
            if not self.allows(_normalize_ip(str(sockaddr[0]))):
                refused.append(str(sockaddr[0]))
                continue
            sock = socket.socket(family, socktype, proto)
            try:
                sock.settimeout(timeout)
                sock.connect(sockaddr)
                peer = sock.getpeername()[0]
                if not self.allows(_normalize_ip(peer)):
                    refused.append(peer)
                    sock.close()
                    continue
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        if error is not None:
            raise error
        raise DestinationRefused(f"{url.host} resolves to {', '.join(refused) or 'nothing'}, "
                                 "not allowed by [server] indication_destinations")


# -- who may see what ----------------------------------------------------------------------

class AccessPolicy:
    """Who may see and change which filters, destinations and subscriptions.

    Every object belongs to the user who created it; only that user and the
    administrators (`admin_users`, members of `admin_group`) see it, in every
    operation (enumerations and association traversals included).  Another
    user's object is answered as if it did not exist (CIM_ERR_NOT_FOUND, or
    CIM_ERR_INVALID_PARAMETER when a subscription names it), so that names
    and existence are not revealed.  With `authenticated` False (the server
    has no authentication) every request comes from the same anonymous user:
    there is one owner, who sees everything, as before there were owners.
    """

    GROUP_CACHE_SECONDS = 60.0

    def __init__(self, admin_users: Iterable[str] = (), admin_group: Optional[str] = None,
                 authenticated: bool = False):
        self.admin_users = frozenset(admin_users)
        self.admin_group = admin_group or None
        self.authenticated = authenticated
        self._groups: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def is_admin(self, user: Optional[str]) -> bool:
        """True if `user` may see every user's objects."""
        if user is None:
            return not self.authenticated
        if user in self.admin_users:
            return True
        if self.admin_group is None:
            return False
        now = time.monotonic()
        with self._lock:
            hit = self._groups.get(user)
            if hit is not None and hit[0] > now:
                return hit[1]
        member = user_in_group(user, self.admin_group)
        with self._lock:
            if len(self._groups) > 10000:
                self._groups.clear()
            self._groups[user] = (now + self.GROUP_CACHE_SECONDS, member)
        return member

    def may_access(self, user: Optional[str], owner: Optional[str]) -> bool:
        """True if `user` may see and change an object that `owner` created."""
        if not self.authenticated:
            return True
        if user is not None and user == owner:
            return True
        return self.is_admin(user)

