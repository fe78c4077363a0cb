"""The embedded server's indication service (DMTF DSP1054 Indications, DSP0200 export).

Two halves:

* :class:`IndicationManager` keeps the indication filters, listener
  destinations and subscriptions of the interop namespace, calls the
  indication providers' filter hooks when subscriptions come and go, matches
  every indication a provider delivers against the active subscriptions and
  exports it to the listeners (CIM-XML ``ExportIndication`` over HTTP or
  HTTPS), asynchronously: one bounded queue and one delivery thread per
  destination, in order, with the retries the CIM_IndicationService asks for.
  With a state directory it keeps all of that in one JSON file, so that
  subscriptions survive a restart.
* The builtin providers (ordinary :class:`~kvm_providers.provider.CIMProvider2`
  providers, like those of :mod:`.interop`) that clients use to manage them:
  CIM_IndicationFilter, CIM_ListenerDestinationCIMXML,
  CIM_IndicationHandlerCIMXML (the deprecated name old clients use),
  CIM_IndicationSubscription, CIM_IndicationService,
  CIM_IndicationServiceCapabilities and CIM_ElementCapabilities between the
  last two.

Provider side: indication provider modules are the ones registered with type
"indication" in the provider table.  A subscription becomes *active* when it
is created enabled (or enabled later); the first active subscription of a
filter activates the filter with every indication provider registered for
the filter's FROM class (or a subclass) in its source namespaces:
``MI_authorizeFilter``, then ``MI_activateFilter`` (``firstActivation`` when
no other filter is active for that class of that provider), then
``MI_enableIndications`` when it is the provider module's first active
filter.  The last active subscription of a filter going away reverses that
(``MI_deActivateFilter`` with ``lastActivation``, ``MI_disableIndications``).

See docs/indications.md for the behaviour seen by clients.
"""

from __future__ import annotations

import abc

import collections
import http.client
import ipaddress
import itertools
import json
import logging
import os
import re
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Optional
from urllib.parse import urlsplit

import pywbem
from pywbem import CIMDateTime, CIMError, CIMInstance, CIMInstanceName

from ..cimxml import writer as W
from ..cimxml.reader import CIMXMLError, parse_xml
from ..provider import (CIMProvider2, coerce, make_model, paths_equal, request_scope,
                        to_cim_error)
from ..schema import Schema
from .auth import user_in_group
from .interop import BRAND, INTEROP
from .wql import WQLQuery, parse_query

__all__ = ["IndicationManager", "ServiceSettings", "DestinationURL", "parse_destination",
           "export_request", "BUILTIN_CLASSES", "configure", "get_providers", "STATE_FILE",
           "AccessPolicy", "DestinationPolicy", "DestinationRefused"]

LOG = logging.getLogger("kvm_providers.cimom.indications")

FILTER_CLASS = "CIM_IndicationFilter"
DEST_CLASSES = ("CIM_ListenerDestinationCIMXML", "CIM_IndicationHandlerCIMXML")
SUB_CLASS = "CIM_IndicationSubscription"
SERVICE_CLASS = "CIM_IndicationService"
CAPS_CLASS = "CIM_IndicationServiceCapabilities"
SYSTEM_CCN = "CIM_ComputerSystem"
STATE_FILE = "indications.json"
_STATE_FORMAT = "kvm_providers-indications"
_STATE_VERSION = 1

#: Other names of the interop namespace (as the dispatcher knows them).
_NS_ALIASES = {"interop": INTEROP, "root/pg_interop": INTEROP}

# CIM_AbstractIndicationSubscription.SubscriptionState
STATE_ENABLED, STATE_DEGRADED, STATE_DISABLED = 2, 3, 4
# CIM_AbstractIndicationSubscription.OnFatalErrorPolicy
POLICY_OTHER, POLICY_IGNORE, POLICY_DISABLE, POLICY_REMOVE = 1, 2, 3, 4
# CIM_IndicationService.SubscriptionRemovalAction
REMOVAL_REMOVE, REMOVAL_DISABLE, REMOVAL_IGNORE = 2, 3, 4
# CIM_ListenerDestination.PersistenceType
PERSIST_OTHER, PERSIST_PERMANENT, PERSIST_TRANSIENT = 1, 2, 3

#: Limits published in CIM_IndicationServiceCapabilities and enforced.
MAX_DESTINATIONS = 256
MAX_SUBSCRIPTIONS = 1024
MAX_FILTERS = 1024
#: Seconds a delivery thread waits for a listener (connect, then response).
DELIVERY_TIMEOUT = 10.0
#: Seconds an idle delivery thread lingers before it ends (a new one starts on demand).
WORKER_IDLE = 30.0
_MAX_RESPONSE = 1 << 20


def _bad(msg: str) -> CIMError:
    return CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, msg)


def _now_dt() -> CIMDateTime:
    return CIMDateTime.now()


def _canonical_ns(schema: Schema, namespace: str) -> Optional[str]:
    """The schema's spelling of `namespace` (aliases resolved), or None."""
    ns = (namespace or "").strip().strip("/")
    ns = _NS_ALIASES.get(ns.lower(), ns)
    for known in schema.namespaces:
        if known.lower() == ns.lower():
            return known
    return None


def _value(inst: CIMInstance, name: str, default: Any = None) -> Any:
    prop = inst.properties.get(name)
    return default if prop is None or prop.value is None else prop.value


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
        raise _bad("Destination is required: the URL of the CIM listener "
                   "(http://host:port or https://host:port)")
    raw = text.strip()
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", raw) is None:
        m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):(?!\d)", raw)
        if m:
            raise _bad(f"Destination {text!r}: scheme {m.group(1)!r} is not supported "
                       "(http, https)")
        raw = "http://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise _bad(f"Destination {text!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _bad(f"Destination {text!r}: scheme {parts.scheme!r} is not supported "
                   "(http, https)")
    if parts.username is not None or parts.password is not None:
        raise _bad(f"Destination {text!r}: credentials in the URL are not supported")
    host = parts.hostname
    if not host or not _HOST_RE.match(host):
        raise _bad(f"Destination {text!r} has no valid host")
    if port == 0:
        raise _bad(f"Destination {text!r}: port 0 is not a listener port")
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
            raise _bad(f"{what}: Destination {url}: host {url.host!r} cannot be resolved "
                       f"({getattr(exc, 'strerror', None) or exc})") from None
        addresses = []
        for info in infos:
            ip = _normalize_ip(str(info[4][0]))
            if ip not in addresses:
                addresses.append(ip)
        refused = [str(ip) for ip in addresses if not self.allows(ip)]
        if refused:
            shown = url.host if [url.host] == refused else f"{url.host} ({', '.join(refused)})"
            raise _bad(f"{what}: Destination {url} is not allowed: indications are sent "
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


#: The server itself (restoring its state, expiring subscriptions): sees everything.
_SYSTEM = object()


# -- the export message (DSP0200 / DSP0201) ------------------------------------------

def export_request(indication: CIMInstance, msg_id: str) -> bytes:
    """The CIM-XML body of an ExportIndication request carrying `indication`."""
    return ('<?xml version="1.0" encoding="utf-8" ?>\n'
            '<CIM CIMVERSION="2.0" DTDVERSION="2.4">'
            f'<MESSAGE ID="{W.attr(msg_id)}" PROTOCOLVERSION="1.0"><SIMPLEEXPREQ>'
            '<EXPMETHODCALL NAME="ExportIndication"><EXPPARAMVALUE NAME="NewIndication">'
            f'{W.instance_xml(indication)}'
            '</EXPPARAMVALUE></EXPMETHODCALL></SIMPLEEXPREQ></MESSAGE></CIM>').encode("utf-8")


class DeliveryError(Exception):
    """One attempt to export an indication failed; the message says why."""


def check_export_response(status: int, reason: str, headers: dict, body: bytes) -> None:
    """Raise DeliveryError unless this HTTP response acknowledges the export."""
    if status != 200:
        extra = headers.get("cimerror")
        raise DeliveryError(f"listener answered HTTP {status} {reason}"
                            + (f" ({extra})" if extra else ""))
    try:
        root = parse_xml(body)
    except CIMXMLError as exc:
        raise DeliveryError(f"listener answered no CIM-XML: {exc}") from None
    err = root.find(".//ERROR")
    if err is not None:
        raise DeliveryError(f"listener answered CIM error {err.get('CODE')}: "
                            f"{err.get('DESCRIPTION') or ''}".rstrip(": "))
    if root.find(".//EXPMETHODRESPONSE") is None:
        raise DeliveryError("listener answered without an EXPMETHODRESPONSE")


# -- records ----------------------------------------------------------------------------

@dataclass
class ServiceSettings:
    """The writable properties of CIM_IndicationService."""

    retry_attempts: int = 3           # DeliveryRetryAttempts
    retry_interval: int = 30          # DeliveryRetryInterval (seconds)
    removal_action: int = REMOVAL_IGNORE          # SubscriptionRemovalAction
    removal_interval: int = 86400     # SubscriptionRemovalTimeInterval (seconds)

    def to_json(self) -> dict:
        return {"DeliveryRetryAttempts": self.retry_attempts,
                "DeliveryRetryInterval": self.retry_interval,
                "SubscriptionRemovalAction": self.removal_action,
                "SubscriptionRemovalTimeInterval": self.removal_interval}


class _Named:
    """A record kept by its instance's Name (filters and destinations)."""

    inst: CIMInstance

    @property
    def name(self) -> str:
        return self.inst["Name"]

    @property
    def path(self) -> CIMInstanceName:
        return self.inst.path


@dataclass(eq=False)
class _Filter(_Named):
    inst: CIMInstance             # as clients see it (path in the interop namespace)
    query: WQLQuery
    source_ns: tuple[str, ...]    # canonical names
    owner: Optional[str]


@dataclass(eq=False)
class _Subscription:
    inst: CIMInstance
    filter: _Filter
    dest: "_Destination"
    owner: Optional[str]
    started: float                # time.time() of creation (SubscriptionStartTime)
    duration: Optional[int] = None

    @property
    def path(self) -> CIMInstanceName:
        return self.inst.path

    @property
    def state(self) -> int:
        return int(_value(self.inst, "SubscriptionState", STATE_ENABLED))

    @property
    def enabled(self) -> bool:
        return self.state in (STATE_ENABLED, STATE_DEGRADED)

    def expired(self, now: float) -> bool:
        return bool(self.duration) and now >= self.started + self.duration

    def label(self) -> str:
        return f"subscription of filter {self.filter.name!r} to destination {self.dest.name!r}"


@dataclass
class _Item:
    indication: CIMInstance
    sub: _Subscription
    body: Optional[bytes] = None


class _Destination(_Named):
    """A listener destination and its delivery queue and thread."""

    def __init__(self, mgr: "IndicationManager", inst: CIMInstance, url: DestinationURL,
                 owner: Optional[str], serial: int):
        self.mgr = mgr
        self.inst = inst
        self.url = url
        self.owner = owner
        self.context = f"{BRAND}:{mgr.hostname}#{serial}#{mgr.boot_id}"
        self.sequence = 0
        self.queue: collections.deque[_Item] = collections.deque()
        self.cond = threading.Condition()
        self.thread: Optional[threading.Thread] = None
        self.closed = False
        self.conn: Optional[http.client.HTTPConnection] = None
        self.conn_url: Optional[DestinationURL] = None
        self.failing_since: Optional[float] = None
        self.last_error: Optional[str] = None
        self.delivered = 0
        self.failed = 0
        self.overflowed = 0
        self._overflow_logged = 0     # overflowed count at the last log line
        self._overflow_log_time = 0.0

    # -- producer side (any thread; never blocks on the network) ---------------------

    def enqueue(self, indication: CIMInstance, sub: _Subscription, sequence: bool) -> None:
        """Queue `indication` (numbered if `sequence`); drops the oldest when full."""
        with self.cond:
            if self.closed:
                return
            if sequence:
                # DSP1054: numbered per destination in the order of delivery, so that
                # a listener can tell lost and duplicated indications.
                indication["SequenceContext"] = self.context
                indication["SequenceNumber"] = pywbem.Sint64(self.sequence)
                self.sequence = 0 if self.sequence >= 2 ** 63 - 1 else self.sequence + 1
            if len(self.queue) >= self.mgr.queue_size:
                self.queue.popleft()
                self.overflowed += 1
                now = time.monotonic()
                if self._overflow_logged == 0 or now - self._overflow_log_time >= 10.0:
                    LOG.warning("listener destination %r (%s): queue full (%d indications), "
                                "dropping the oldest (%d dropped so far)%s", self.name,
                                self.url, self.mgr.queue_size, self.overflowed,
                                f"; last error: {self.last_error}" if self.last_error else "")
                    self._overflow_logged = self.overflowed
                    self._overflow_log_time = now
            self.queue.append(_Item(indication, sub))
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, daemon=True,
                                               name=f"indication-delivery:{self.name}")
                self.thread.start()
            self.cond.notify()

    def close(self) -> list[_Item]:
        """Stop delivering; returns what was still queued."""
        with self.cond:
            self.closed = True
            left = list(self.queue)
            self.queue.clear()
            self.cond.notify_all()
        return left

    def pending(self) -> int:
        with self.cond:
            return len(self.queue)

    # -- the delivery thread --------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self.cond:
                deadline = time.monotonic() + WORKER_IDLE
                while not self.queue and not self.closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.cond.wait(left)
                if self.closed or not self.queue:
                    # Under the lock: a successor thread must not lose its connection.
                    self._disconnect()
                    self.thread = None
                    return
                item = self.queue.popleft()
            try:
                self._deliver(item)
            except Exception:  # pylint: disable=broad-except
                LOG.exception("delivery to listener destination %r failed", self.name)
                self._disconnect()

    def _deliver(self, item: _Item) -> None:
        settings = self.mgr.settings
        attempts = 1 + max(0, settings.retry_attempts)
        error = ""
        for attempt in range(attempts):
            if attempt:
                with self.cond:
                    self.cond.wait_for(lambda: self.closed, timeout=settings.retry_interval)
            if self.closed or not self.mgr.is_current(item.sub):
                return
            try:
                self._post(item)
            except DeliveryError as exc:
                error = str(exc)
                LOG.debug("indication to %s, attempt %d of %d: %s", self.url, attempt + 1,
                          attempts, error)
                continue
            self.delivered += 1
            if self.failing_since is not None:
                LOG.info("listener destination %r (%s) reachable again", self.name, self.url)
                self.failing_since = None
                self.last_error = None
                self.mgr.delivery_recovered(self)
            return
        self.failed += 1
        self.last_error = error
        now = time.time()
        if self.failing_since is None:
            self.failing_since = now
        LOG.warning("indication %s for %s dropped after %d attempt(s): %s",
                    item.indication.classname, item.sub.label(), attempts, error)
        self.mgr.delivery_failed(self, item.sub, now)

    def _connect(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self.url.secure:
            conn = http.client.HTTPSConnection(self.url.host, self.url.port,
                                               timeout=DELIVERY_TIMEOUT,
                                               context=self.mgr.ssl_context())
        else:
            conn = http.client.HTTPConnection(self.url.host, self.url.port,
                                              timeout=DELIVERY_TIMEOUT)
        # The TCP connection goes through the destination policy: the host name is
        # resolved again now and only an allowed address is connected to (a name
        # that was checked at creation may point elsewhere today).  http.client
        # opens its socket through this attribute; TLS (with the host name for SNI
        # and the certificate check) is layered on top as usual.
        url, policy = self.url, self.mgr.destination_policy
        conn._create_connection = (  # type: ignore[attr-defined]
            lambda _address, timeout=None, _source=None: policy.connect(url, timeout))
        return conn

    def _disconnect(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def _post(self, item: _Item) -> None:
        if item.body is None:
            item.body = export_request(item.indication, self.mgr.next_message_id())
        headers = {"Content-Type": 'application/xml; charset="utf-8"',
                   "CIMExport": "MethodRequest",
                   "CIMExportMethod": "ExportIndication",
                   "CIMProtocolVersion": "1.0",
                   "Content-Length": str(len(item.body))}
        # A kept-alive connection may have been closed by the listener: one fresh retry.
        for fresh in (False, True):
            if self.conn is not None and self.conn_url != self.url:
                self._disconnect()            # the destination was modified
            reused = self.conn is not None
            if self.conn is None:
                self.conn = self._connect()
                self.conn_url = self.url
            try:
                self.conn.request("POST", self.url.path, item.body, headers)
                resp = self.conn.getresponse()
                body = resp.read(_MAX_RESPONSE)
                hdrs = {k.lower(): v for k, v in resp.getheaders()}
                if resp.will_close:
                    self._disconnect()
                check_export_response(resp.status, resp.reason, hdrs, body)
                return
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as exc:
                self._disconnect()
                if reused and not fresh:
                    continue
                raise DeliveryError(f"{self.url}: connection lost: {exc}") from None
            except ssl.SSLError as exc:
                self._disconnect()
                raise DeliveryError(f"{self.url}: TLS failed: {exc}") from None
            except (OSError, http.client.HTTPException) as exc:
                self._disconnect()
                raise DeliveryError(f"{self.url}: {exc.__class__.__name__}: "
                                    f"{getattr(exc, 'strerror', None) or exc}") from None
            except DeliveryError:
                self._disconnect()
                raise


# -- the manager ------------------------------------------------------------------------

class IndicationManager:
    """Filters, listener destinations and subscriptions; matching and delivery.

    `state_dir`: keep the configuration there (JSON, written atomically) and
    restore it at start; None keeps it in memory only.  `cafile`: CA
    certificates (PEM) that HTTPS listeners' certificates are checked
    against (default: the system's).  `queue_size`: indications queued per
    destination before the oldest are dropped.  `access`: who sees which
    objects (default: no authentication, one anonymous owner);
    `destinations`: where indications may be sent (default: loopback only).

    The client-facing methods take the requesting `user` (None: the anonymous
    user of a server without authentication) and act only on what
    :class:`AccessPolicy` lets that user see.
    """

    def __init__(self, schema: Schema, hostname: str, state_dir: Optional[str] = None,
                 cafile: Optional[str] = None, queue_size: int = 10000,
                 access: Optional[AccessPolicy] = None,
                 destinations: Optional[DestinationPolicy] = None):
        self.schema = schema
        self.access = access or AccessPolicy()
        self.destination_policy = destinations or DestinationPolicy()
        self.hostname = hostname
        self.state_dir = state_dir
        self.cafile = cafile
        self.queue_size = max(1, queue_size)
        self.settings = ServiceSettings()
        self.boot_id = uuid.uuid4().hex[:12]
        self._ops = None
        self._mutex = threading.RLock()      # mutations and provider hooks, in order
        self._lock = threading.RLock()       # the data, briefly
        self._filters: dict[str, _Filter] = {}            # Name -> filter
        self._dests: dict[str, _Destination] = {}         # Name -> destination
        self._subs: list[_Subscription] = []
        self._active: tuple[_Subscription, ...] = ()      # what deliver() reads, lock-free
        self._activated: dict[str, list[tuple[str, str, str]]] = {}  # filter -> targets
        self._class_count: collections.Counter = collections.Counter()
        self._module_count: collections.Counter = collections.Counter()
        self._serial = itertools.count(1)
        self._msg_ids = itertools.count(1)
        self._ind_ids = itertools.count(1)
        self._ssl: Optional[ssl.SSLContext] = None
        self._stop = threading.Event()
        self._housekeeper: Optional[threading.Thread] = None
        self._loading = False
        self.received = 0
        self.matched = 0

    # -- life cycle --------------------------------------------------------------------

    def attach(self, ops) -> None:
        """Connect to the server's Operations (provider table) and load the saved state."""
        self._ops = ops
        if self.state_dir:
            self._load()

    def start(self) -> None:
        """Activate the restored subscriptions with their providers; start housekeeping."""
        with self._mutex:
            for sub in list(self._subs):
                if sub.enabled and sub.filter.name not in self._activated:
                    try:
                        self._activate(sub.filter, sub.owner)
                    except CIMError as exc:
                        LOG.error("restored %s: its indication providers failed to "
                                  "activate it: %s", sub.label(), exc.status_description)
            self._publish()
        self._housekeeper = threading.Thread(target=self._housekeeping, daemon=True,
                                             name="indication-housekeeping")
        self._housekeeper.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop delivering (what is still queued is dropped, and counted in the log)."""
        self._stop.set()
        with self._lock:
            dests = list(self._dests.values())
        left = 0
        threads = []
        for d in dests:
            left += len(d.close())
            if d.thread is not None:
                threads.append(d.thread)
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if left:
            LOG.warning("indication service stopped with %d undelivered indication(s)", left)

    def _housekeeping(self) -> None:
        while not self._stop.wait(1.0):
            now = time.time()
            expired = [s for s in self._active if s.expired(now)]
            for sub in expired:
                LOG.info("%s expired (SubscriptionDuration %s s): removed", sub.label(),
                         sub.duration)
                try:
                    self._remove_subscription(sub)
                except CIMError as exc:
                    LOG.error("removing expired %s failed: %s", sub.label(),
                              exc.status_description)

    # -- helpers --------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=self.cafile)
        return self._ssl

    def next_message_id(self) -> str:
        return str(next(self._msg_ids))

    def _publish(self) -> None:
        """Refresh the lock-free snapshot deliver() reads (call with the lock held)."""
        with self._lock:
            self._active = tuple(s for s in self._subs if s.enabled)

    def is_current(self, sub: _Subscription) -> bool:
        """True while `sub` exists and is enabled (delivery threads check it)."""
        return sub in self._active

    def _env(self, module: str, user: Optional[str]):
        return self._ops.env(module, user)

    # -- provider hooks ------------------------------------------------------------------

    def _targets(self, filt: _Filter) -> list[tuple[str, str, str]]:
        """(module, namespace, class) of the indication providers serving `filt`."""
        out: list[tuple[str, str, str]] = []
        if self._ops is None:
            return out
        for ns in filt.source_ns:
            if not self.schema.has_class(ns, filt.query.classname):
                continue
            for e in self._ops.table.subclasses(ns, filt.query.classname, "indication"):
                t = (e.module, e.namespace, e.classname)
                if t not in out:
                    out.append(t)
        return out

    def _activate(self, filt: _Filter, owner: Optional[str]) -> None:
        """Authorize and activate `filt` with its providers (call with the mutex held)."""
        targets = self._targets(filt)
        query = filt.query.text
        with request_scope():
            for module, ns, cn in targets:
                proxy = self._ops.table.proxy(module)
                try:
                    ok = proxy.MI_authorizeFilter(self._env(module, owner), query, cn,
                                                  CIMInstanceName(cn, namespace=ns),
                                                  owner or "")
                except Exception as exc:  # pylint: disable=broad-except
                    raise to_cim_error(exc, LOG, f"indication provider {module} "
                                                 "(AuthorizeFilter)") from None
                if ok is False:
                    raise CIMError(pywbem.CIM_ERR_ACCESS_DENIED,
                                   f"Indication provider {module} refuses filter "
                                   f"{filt.name!r} for class {cn} in namespace {ns}")
            done: list[tuple[str, str, str]] = []
            for t in targets:
                module, ns, cn = t
                try:
                    proxy = self._ops.table.proxy(module)
                    env = self._env(module, owner)
                    proxy.MI_activateFilter(env, query, cn, CIMInstanceName(cn, namespace=ns),
                                            self._class_count[t] == 0)
                    self._class_count[t] += 1
                    self._module_count[module] += 1
                    done.append(t)
                    if self._module_count[module] == 1:
                        proxy.MI_enableIndications(env)
                except Exception as exc:  # pylint: disable=broad-except
                    err = to_cim_error(exc, LOG, f"indication provider {module} "
                                                 "(ActivateFilter)")
                    self._deactivate_targets(filt, done, owner)
                    raise err from None
        self._activated[filt.name] = targets

    def _deactivate(self, filt: _Filter, owner: Optional[str]) -> None:
        targets = self._activated.pop(filt.name, None)
        if targets:
            with request_scope():
                self._deactivate_targets(filt, targets, owner)

    def _deactivate_targets(self, filt: _Filter, targets: list, owner: Optional[str]) -> None:
        # Errors are logged, not raised: the subscription goes away regardless.
        for t in reversed(targets):
            module, ns, cn = t
            self._class_count[t] -= 1
            last = self._class_count[t] <= 0
            if last:
                del self._class_count[t]
            self._module_count[module] -= 1
            disable = self._module_count[module] <= 0
            if disable:
                del self._module_count[module]
            env = self._env(module, owner)
            try:
                self._ops.table.proxy(module).MI_deActivateFilter(
                    env, filt.query.text, cn, CIMInstanceName(cn, namespace=ns), last)
            except Exception as exc:  # pylint: disable=broad-except
                to_cim_error(exc, LOG, f"indication provider {module} (DeActivateFilter)")
            if disable:
                try:
                    self._ops.table.proxy(module).MI_disableIndications(env)
                except Exception as exc:  # pylint: disable=broad-except
                    to_cim_error(exc, LOG, f"indication provider {module} "
                                           "(DisableIndications)")

    def _sync_activation(self, filt: _Filter, owner: Optional[str]) -> None:
        """Activate or deactivate `filt` to match its enabled subscriptions (mutex held)."""
        wanted = any(s.enabled for s in self._subs if s.filter is filt)
        if wanted and filt.name not in self._activated:
            self._activate(filt, owner)
        elif not wanted and filt.name in self._activated:
            self._deactivate(filt, owner)

    # -- filters --------------------------------------------------------------------------

    def _key_defaults(self, inst: CIMInstance, classname: str, what: str) -> None:
        ccn = _value(inst, "CreationClassName")
        if ccn is not None and ccn.lower() != classname.lower():
            raise _bad(f"CreationClassName {ccn!r} of a new {what} must be {classname}")
        inst["CreationClassName"] = classname
        if _value(inst, "SystemCreationClassName") is None:
            inst["SystemCreationClassName"] = SYSTEM_CCN
        if _value(inst, "SystemName") is None:
            inst["SystemName"] = self.hostname
        name = _value(inst, "Name")
        if name is None or (isinstance(name, str) and not name.strip()):
            inst["Name"] = f"{BRAND}:{what.replace(' ', '')}:{uuid.uuid4()}"

    def _path_of(self, inst: CIMInstance, classname: str) -> CIMInstanceName:
        keys = self.schema.spec(INTEROP, classname).key_names
        return CIMInstanceName(classname, namespace=INTEROP,
                               keybindings=[(k, inst[k]) for k in keys])

    def _build_filter(self, inst: CIMInstance, owner: Optional[str]) -> _Filter:
        """Check a filter and complete it; CIM errors name what is wrong."""
        self._key_defaults(inst, FILTER_CLASS, "filter")
        query_text = _value(inst, "Query")
        language = _value(inst, "QueryLanguage")
        if not isinstance(query_text, str) or not query_text.strip():
            raise _bad(f"Filter {inst['Name']!r}: Query is required")
        if not isinstance(language, str) or not language.strip():
            raise _bad(f"Filter {inst['Name']!r}: QueryLanguage is required "
                       "(WQL or DMTF:CQL)")
        if _value(inst, "TemplateVariable"):
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                           f"Filter {inst['Name']!r}: TemplateVariable (DMTF:CQLT) is not "
                           "supported")
        source_ns = self._source_namespaces(inst)
        schema = self.schema

        def is_subclass(sub: str, sup: str) -> bool:
            return any(schema.has_class(ns, sub) and schema.is_subclass(ns, sub, sup)
                       for ns in source_ns)
        query = parse_query(language, query_text, is_subclass)
        for ns in source_ns:
            if not schema.has_class(ns, query.classname):
                raise CIMError(pywbem.CIM_ERR_INVALID_QUERY,
                               f"Filter {inst['Name']!r}: class {query.classname!r} of the "
                               f"query does not exist in source namespace {ns}")
            spec = schema.spec(ns, query.classname)
            if not (spec.is_indication or spec.is_a("CIM_Indication")):
                raise CIMError(pywbem.CIM_ERR_INVALID_QUERY,
                               f"Filter {inst['Name']!r}: class {spec.name} of the query is "
                               "not an indication class")
            for prop in (query.select or []) + query.where_props:
                if prop.lower() not in spec.props:
                    raise CIMError(pywbem.CIM_ERR_INVALID_QUERY,
                                   f"Filter {inst['Name']!r}: indication class {spec.name} "
                                   f"has no property {prop!r}")
        inst["SourceNamespaces"] = list(source_ns)
        if _value(inst, "IndividualSubscriptionSupported") is None:
            inst["IndividualSubscriptionSupported"] = True
        inst.path = self._path_of(inst, FILTER_CLASS)
        return _Filter(inst, query, tuple(source_ns), owner)

    def _source_namespaces(self, inst: CIMInstance) -> list[str]:
        given = _value(inst, "SourceNamespaces")
        single = _value(inst, "SourceNamespace")
        names = list(given) if given else ([single] if single else [INTEROP])
        out: list[str] = []
        for ns in names:
            canon = _canonical_ns(self.schema, ns) if isinstance(ns, str) else None
            if canon is None:
                raise _bad(f"Filter {inst['Name']!r}: source namespace {ns!r} does not exist "
                           f"(namespaces: {', '.join(self.schema.namespaces)})")
            if canon not in out:
                out.append(canon)
        if given and single:
            canon = _canonical_ns(self.schema, single)
            if canon not in out:
                raise _bad(f"Filter {inst['Name']!r}: SourceNamespace {single!r} is not one of "
                           f"SourceNamespaces {list(given)}")
        return out

    def create_filter(self, inst: CIMInstance, owner: Optional[str]) -> CIMInstance:
        """CreateInstance of CIM_IndicationFilter."""
        inst = inst.copy()
        with self._mutex:
            filt = self._build_filter(inst, owner)
            with self._lock:
                if filt.name in self._filters:
                    raise CIMError(pywbem.CIM_ERR_ALREADY_EXISTS,
                                   f"An indication filter named {filt.name!r} already exists")
                if len(self._filters) >= MAX_FILTERS:
                    raise CIMError(pywbem.CIM_ERR_FAILED,
                                   f"Too many indication filters (at most {MAX_FILTERS})")
                self._filters[filt.name] = filt
                self._save_or_undo(lambda: self._filters.pop(filt.name, None))
        LOG.info("indication filter %r created: %s (%s) on %s", filt.name, filt.query.text,
                 inst["QueryLanguage"], ", ".join(filt.source_ns))
        return filt.inst.copy()

    def modify_filter(self, inst: CIMInstance, owner: Optional[str]) -> None:
        """ModifyInstance of CIM_IndicationFilter (the query only while unsubscribed)."""
        with self._mutex:
            old = self._find_filter(inst.path, user=owner)
            new = self._build_filter(_merged(old, inst), old.owner)
            changed = [p for p in ("Query", "QueryLanguage", "SourceNamespaces",
                                   "SourceNamespace", "IndividualSubscriptionSupported")
                       if _value(new.inst, p) != _value(old.inst, p)]
            users = [s for s in self._subs if s.filter is old]
            if changed and users:
                raise CIMError(pywbem.CIM_ERR_FAILED,
                               f"Indication filter {old.name!r} is used by "
                               f"{_names(users)}; {', '.join(changed)} cannot change while "
                               "it is subscribed to")
            with self._lock:
                self._filters[old.name] = new
                for s in users:
                    s.filter = new
                self._save_or_undo(lambda: self._undo_filter(old, new, users))

    def _undo_filter(self, old: _Filter, new: _Filter, users: list) -> None:
        self._filters[old.name] = old
        for s in users:
            s.filter = old

    def delete_filter(self, path: CIMInstanceName, user: Optional[str] = None) -> None:
        """DeleteInstance of CIM_IndicationFilter; CIM_ERR_FAILED while subscribed to."""
        with self._mutex:
            filt = self._find_filter(path, user=user)
            self._delete_unused(self._filters, filt, "Indication filter")
        LOG.info("indication filter %r deleted", filt.name)

    def _find_filter(self, path: CIMInstanceName, what: str = "", user: Any = None) -> _Filter:
        filt = self._lookup(self._filters, path, FILTER_CLASS, user)
        if filt is None:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND if not what else
                           pywbem.CIM_ERR_INVALID_PARAMETER,
                           f"{what}Indication filter {_show(path)} does not exist")
        return filt

    def _delete_unused(self, table: dict, rec: _Named, label: str) -> None:
        """Remove `rec` from `table` and save; CIM_ERR_FAILED while subscribed to (mutex
        held)."""
        users = [s for s in self._subs if rec in (s.filter, s.dest)]
        if users:
            raise CIMError(pywbem.CIM_ERR_FAILED,
                           f"{label} {rec.name!r} cannot be deleted: it is used by "
                           f"{_names(users)}")
        with self._lock:
            del table[rec.name]
            self._save_or_undo(lambda: table.__setitem__(rec.name, rec))

    def _lookup(self, table: dict, path: Any, classname: str, user: Any):
        """The record that `path` names (namespace aliases and key case tolerated), if
        `user` may see it (_SYSTEM: the server itself, sees everything)."""
        if not isinstance(path, CIMInstanceName):
            return None
        if path.namespace and _canonical_ns(self.schema, path.namespace) != INTEROP:
            return None
        keys = {k.lower(): v for k, v in path.keybindings.items()}
        with self._lock:
            rec = table.get(keys.get("name"))
            if rec is None:
                return None
            if path.classname.lower() != rec.path.classname.lower() and \
                    not self.schema.is_subclass(INTEROP, rec.path.classname, path.classname):
                return None
            for k, v in rec.path.keybindings.items():
                given = keys.get(k.lower())
                if given is None:
                    return None
                if k.lower() in ("systemname", "creationclassname", "systemcreationclassname"):
                    if str(given).lower() != str(v).lower():
                        return None
                elif given != v:
                    return None
            if user is not _SYSTEM and not self.access.may_access(user, rec.owner):
                return None
            return rec

    def filters(self, user: Optional[str] = None) -> list[CIMInstance]:
        """The filters `user` may see."""
        with self._lock:
            return [f.inst.copy() for f in self._filters.values()
                    if self.access.may_access(user, f.owner)]

    def get_filter(self, path: CIMInstanceName,
                   user: Optional[str] = None) -> Optional[CIMInstance]:
        filt = self._lookup(self._filters, path, FILTER_CLASS, user)
        return None if filt is None else filt.inst.copy()

    # -- destinations -------------------------------------------------------------------

    def _build_destination(self, inst: CIMInstance, classname: str, owner: Optional[str],
                           check_address: bool = True) -> tuple[CIMInstance, DestinationURL]:
        self._key_defaults(inst, classname, "listener destination")
        url = parse_destination(_value(inst, "Destination"))
        protocol = _value(inst, "Protocol")
        if protocol is None:
            inst["Protocol"] = pywbem.Uint16(2)
        elif int(protocol) != 2:
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                           f"Listener destination {inst['Name']!r}: Protocol {protocol} is not "
                           "supported (2, CIM-XML)")
        persistence = _value(inst, "PersistenceType")
        if persistence is None:
            inst["PersistenceType"] = pywbem.Uint16(PERSIST_PERMANENT)
        elif int(persistence) not in (PERSIST_OTHER, PERSIST_PERMANENT, PERSIST_TRANSIENT):
            raise _bad(f"Listener destination {inst['Name']!r}: PersistenceType "
                       f"{persistence} is not 1 (Other), 2 (Permanent) or 3 (Transient)")
        if classname == "CIM_IndicationHandlerCIMXML" and _value(inst, "Owner") is None \
                and owner:
            inst["Owner"] = owner
        if check_address:
            # Last: the other checks need no name resolution.
            self.destination_policy.check(url, f"Listener destination {inst['Name']!r}")
        inst.path = self._path_of(inst, classname)
        return inst, url

    def create_destination(self, inst: CIMInstance, owner: Optional[str]) -> CIMInstance:
        """CreateInstance of CIM_ListenerDestinationCIMXML / CIM_IndicationHandlerCIMXML."""
        inst = inst.copy()
        classname = next(c for c in DEST_CLASSES if c.lower() == inst.classname.lower())
        with self._mutex:
            inst, url = self._build_destination(inst, classname, owner)
            with self._lock:
                if inst["Name"] in self._dests:
                    raise CIMError(pywbem.CIM_ERR_ALREADY_EXISTS,
                                   f"A listener destination named {inst['Name']!r} already "
                                   "exists")
                if len(self._dests) >= MAX_DESTINATIONS:
                    raise CIMError(pywbem.CIM_ERR_FAILED, f"Too many listener destinations "
                                                          f"(at most {MAX_DESTINATIONS})")
                dest = _Destination(self, inst, url, owner, next(self._serial))
                self._dests[dest.name] = dest
                self._save_or_undo(lambda: self._dests.pop(dest.name, None))
        LOG.info("listener destination %r created: %s", dest.name, url)
        return dest.inst.copy()

    def modify_destination(self, inst: CIMInstance, owner: Optional[str]) -> None:
        """ModifyInstance of a listener destination (Destination, PersistenceType, ...)."""
        with self._mutex:
            dest = self._find_dest(inst.path, user=owner)
            merged = _merged(dest, inst)
            # The address is checked when it changes (an unchanged one was checked
            # before, and is checked again at every connection).
            merged, url = self._build_destination(
                merged, dest.path.classname, dest.owner,
                check_address=_value(merged, "Destination") != _value(dest.inst, "Destination"))
            with self._lock:
                old_inst, old_url = dest.inst, dest.url
                dest.inst, dest.url = merged, url
                self._save_or_undo(lambda: _restore_dest(dest, old_inst, old_url))
            if url != old_url:
                LOG.info("listener destination %r now points to %s", dest.name, url)

    def delete_destination(self, path: CIMInstanceName, user: Optional[str] = None) -> None:
        """DeleteInstance of a listener destination; CIM_ERR_FAILED while subscribed to."""
        with self._mutex:
            dest = self._find_dest(path, user=user)
            self._delete_unused(self._dests, dest, "Listener destination")
            dest.close()
        LOG.info("listener destination %r deleted", dest.name)

    def _find_dest(self, path: CIMInstanceName, what: str = "",
                   user: Any = None) -> _Destination:
        dest = self._lookup(self._dests, path, "CIM_ListenerDestination", user)
        if dest is None:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND if not what else
                           pywbem.CIM_ERR_INVALID_PARAMETER,
                           f"{what}Listener destination {_show(path)} does not exist")
        return dest

    def destinations(self, classname: str, user: Optional[str] = None) -> list[CIMInstance]:
        """The destinations of class `classname` that `user` may see."""
        with self._lock:
            return [d.inst.copy() for d in self._dests.values()
                    if d.path.classname.lower() == classname.lower() and
                    self.access.may_access(user, d.owner)]

    def get_destination(self, path: CIMInstanceName,
                        user: Optional[str] = None) -> Optional[CIMInstance]:
        dest = self._lookup(self._dests, path, "CIM_ListenerDestination", user)
        return None if dest is None else dest.inst.copy()

    # -- subscriptions ----------------------------------------------------------------

    def _sub_instance(self, sub: _Subscription) -> CIMInstance:
        inst = sub.inst.copy()
        if sub.duration:
            left = max(0, int(sub.started + sub.duration - time.time()))
            inst["SubscriptionTimeRemaining"] = pywbem.Uint64(left)
        return inst

    def subscriptions(self, user: Optional[str] = None) -> list[CIMInstance]:
        """The subscriptions `user` may see."""
        with self._lock:
            return [self._sub_instance(s) for s in self._subs
                    if self.access.may_access(user, s.owner)]

    def get_subscription(self, path: CIMInstanceName,
                         user: Optional[str] = None) -> Optional[CIMInstance]:
        sub = self._lookup_sub(path, user)
        return None if sub is None else self._sub_instance(sub)

    def _lookup_sub(self, path: Any, user: Any) -> Optional[_Subscription]:
        if not isinstance(path, CIMInstanceName):
            return None
        if path.namespace and _canonical_ns(self.schema, path.namespace) != INTEROP:
            return None
        keys = {k.lower(): v for k, v in path.keybindings.items()}
        # The subscription's own owner decides (an administrator's subscription may
        # use a user's filter): the filter and destination are found as the server.
        filt = self._lookup(self._filters, keys.get("filter"), FILTER_CLASS, _SYSTEM)
        dest = self._lookup(self._dests, keys.get("handler"), "CIM_ListenerDestination",
                            _SYSTEM)
        if filt is None or dest is None:
            return None
        with self._lock:
            for s in self._subs:
                if s.filter is filt and s.dest is dest:
                    return s if user is _SYSTEM or self.access.may_access(user, s.owner) \
                        else None
        return None

    def create_subscription(self, inst: CIMInstance, owner: Optional[str],
                            started: Optional[float] = None, activate: bool = True
                            ) -> CIMInstance:
        """CreateInstance of CIM_IndicationSubscription: check, activate, keep.

        The filter and the destination must be ones `owner` may see (their own,
        or any for an administrator): a user cannot have indications of another
        user's filter sent anywhere, nor send theirs to another user's listener.
        """
        inst = inst.copy()
        # Restoring the saved state: the owners were checked when it was created.
        who: Any = _SYSTEM if self._loading else owner
        with self._mutex:
            fref, href = _value(inst, "Filter"), _value(inst, "Handler")
            if fref is None:
                raise _bad("Subscription: Filter (the indication filter reference) is "
                           "required")
            if href is None:
                raise _bad("Subscription: Handler (the listener destination reference) is "
                           "required")
            filt = self._find_filter(fref, "Subscription: ", who)
            dest = self._find_dest(href, "Subscription: ", who)
            if _value(filt.inst, "IndividualSubscriptionSupported") is False:
                raise _bad(f"Subscription: indication filter {filt.name!r} does not allow "
                           "individual subscriptions (IndividualSubscriptionSupported is "
                           "false)")
            with self._lock:
                for s in self._subs:
                    if s.filter is filt and s.dest is dest:
                        raise CIMError(pywbem.CIM_ERR_ALREADY_EXISTS,
                                       f"A subscription of filter {filt.name!r} to "
                                       f"destination {dest.name!r} already exists")
                if len(self._subs) >= MAX_SUBSCRIPTIONS:
                    raise CIMError(pywbem.CIM_ERR_FAILED, f"Too many subscriptions (at "
                                                          f"most {MAX_SUBSCRIPTIONS})")
            _check_sub_settings(inst, creating=True)
            now = time.time()
            started = started or now
            inst["SubscriptionState"] = pywbem.Uint16(_value(inst, "SubscriptionState",
                                                             STATE_ENABLED))
            inst["OnFatalErrorPolicy"] = pywbem.Uint16(_value(inst, "OnFatalErrorPolicy",
                                                              POLICY_IGNORE))
            inst["RepeatNotificationPolicy"] = pywbem.Uint16(2)      # None
            inst["SubscriptionStartTime"] = CIMDateTime.fromtimestamp(started)
            if _value(inst, "TimeOfLastStateChange") is None:
                inst["TimeOfLastStateChange"] = CIMDateTime.fromtimestamp(started)
            duration = _value(inst, "SubscriptionDuration")
            # Canonical references (interop namespace, declared key spelling): the
            # association operations compare them with the paths clients give.
            inst["Filter"] = filt.path.copy()
            inst["Handler"] = dest.path.copy()
            inst.path = CIMInstanceName(SUB_CLASS, namespace=INTEROP, keybindings=[
                ("Filter", filt.path.copy()), ("Handler", dest.path.copy())])
            sub = _Subscription(inst, filt, dest, owner, started,
                                int(duration) if duration else None)
            with self._lock:
                self._subs.append(sub)
            try:
                if activate and sub.enabled:
                    self._sync_activation(filt, owner)
            except CIMError:
                with self._lock:
                    self._subs.remove(sub)
                raise
            with self._lock:
                self._save_or_undo(lambda: self._undo_new_sub(sub))
                self._publish()
        LOG.info("%s created%s", sub.label(), "" if sub.enabled else " (disabled)")
        return self._sub_instance(sub)

    def _undo_new_sub(self, sub: _Subscription) -> None:
        self._subs.remove(sub)
        self._publish()
        self._sync_activation(sub.filter, sub.owner)

    def modify_subscription(self, inst: CIMInstance, owner: Optional[str]) -> None:
        """ModifyInstance of a subscription: SubscriptionState, SubscriptionDuration, ..."""
        with self._mutex:
            sub = self._lookup_sub(inst.path, owner)
            if sub is None:
                raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                               f"Subscription {_show(inst.path)} does not exist")
            _check_sub_settings(inst, creating=False, current=sub.inst)
            old_inst, old_duration, old_started = sub.inst, sub.duration, sub.started
            new = sub.inst.copy()
            for name in ("SubscriptionState", "SubscriptionDuration", "SubscriptionInfo",
                         "OnFatalErrorPolicy", "OtherOnFatalErrorPolicy",
                         "FailureTriggerTimeInterval", "OtherSubscriptionState"):
                if name in inst.properties:
                    new.properties[name] = inst.properties[name].copy()
            if new.properties.get("SubscriptionState") is not None and \
                    _value(new, "SubscriptionState") is None:
                new["SubscriptionState"] = pywbem.Uint16(STATE_ENABLED)
            was_enabled = sub.enabled
            if _value(new, "SubscriptionState") == STATE_ENABLED and \
                    _value(old_inst, "SubscriptionState") == STATE_DEGRADED:
                new["SubscriptionState"] = pywbem.Uint16(STATE_DEGRADED)  # still failing
            with self._lock:
                sub.inst = new
                if "SubscriptionDuration" in inst.properties:
                    d = _value(new, "SubscriptionDuration")
                    sub.duration = int(d) if d else None
                    sub.started = time.time()      # the duration counts from now
                if sub.enabled != was_enabled:
                    new["TimeOfLastStateChange"] = _now_dt()
            try:
                self._sync_activation(sub.filter, owner)
            except CIMError:
                with self._lock:
                    sub.inst, sub.duration, sub.started = old_inst, old_duration, old_started
                raise
            with self._lock:
                self._save_or_undo(lambda: self._undo_modify(sub, old_inst, old_duration,
                                                             old_started))
                self._publish()

    def _undo_modify(self, sub, old_inst, old_duration, old_started) -> None:
        sub.inst, sub.duration, sub.started = old_inst, old_duration, old_started
        self._publish()
        self._sync_activation(sub.filter, sub.owner)

    def delete_subscription(self, path: CIMInstanceName, user: Optional[str] = None) -> None:
        """DeleteInstance of a subscription: deactivates its filter if it was the last."""
        with self._mutex:
            sub = self._lookup_sub(path, user)
            if sub is None:
                raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                               f"Subscription {_show(path)} does not exist")
            self._remove_subscription(sub)
        LOG.info("%s deleted", sub.label())

    def _remove_subscription(self, sub: _Subscription) -> None:
        with self._mutex:
            with self._lock:
                if sub not in self._subs:
                    return
                self._subs.remove(sub)
                self._publish()
            self._sync_activation(sub.filter, sub.owner)
            # Unsaved, the subscription is gone from memory but comes back after a restart.
            self._save_or_log()

    # -- delivery outcomes (called by delivery threads) -------------------------------

    def delivery_failed(self, dest: _Destination, sub: _Subscription, now: float) -> None:
        """An indication could not be delivered: degrade, and apply the failure policies."""
        with self._mutex:
            with self._lock:
                users = [s for s in self._subs if s.dest is dest]
                for s in users:
                    if s.state == STATE_ENABLED:
                        _set_state(s, STATE_DEGRADED)
            failing_for = now - (dest.failing_since or now)
            victims: list[tuple[_Subscription, int, str]] = []
            svc = self.settings
            if svc.removal_action in (REMOVAL_REMOVE, REMOVAL_DISABLE) and \
                    failing_for >= svc.removal_interval:
                why = (f"SubscriptionRemovalAction after {int(failing_for)} s of failed "
                       "deliveries")
                victims += [(s, POLICY_REMOVE if svc.removal_action == REMOVAL_REMOVE
                             else POLICY_DISABLE, why) for s in users]
            policy = int(_value(sub.inst, "OnFatalErrorPolicy", POLICY_IGNORE))
            trigger = int(_value(sub.inst, "FailureTriggerTimeInterval", 0) or 0)
            if policy in (POLICY_DISABLE, POLICY_REMOVE) and failing_for >= trigger and \
                    not any(v[0] is sub for v in victims):
                victims.append((sub, policy, "its OnFatalErrorPolicy"))
            for s, action, why in victims:
                if s not in self._subs:
                    continue
                if action == POLICY_REMOVE:
                    LOG.warning("%s removed (%s)", s.label(), why)
                    self._remove_subscription(s)
                elif s.enabled:
                    LOG.warning("%s disabled (%s)", s.label(), why)
                    with self._lock:
                        _set_state(s, STATE_DISABLED)
                        self._publish()
                    self._sync_activation(s.filter, s.owner)
                    self._save_or_log()

    def delivery_recovered(self, dest: _Destination) -> None:
        with self._lock:
            for s in self._subs:
                if s.dest is dest and s.state == STATE_DEGRADED:
                    _set_state(s, STATE_ENABLED)

    # -- the service ------------------------------------------------------------------

    def modify_service(self, inst: CIMInstance) -> None:
        """ModifyInstance of CIM_IndicationService: the delivery and removal settings."""
        with self._mutex:
            new = ServiceSettings(**vars(self.settings))
            current = service_properties(self)
            spec = self.schema.spec(INTEROP, inst.classname) \
                if self.schema.has_class(INTEROP, inst.classname) else None
            for name, prop in inst.properties.items():
                v = prop.value
                low = name.lower()
                if low == "deliveryretryattempts":
                    if v is None or not 0 <= int(v) <= 1000:
                        raise _bad(f"DeliveryRetryAttempts {_txt(v)} is not in 0..1000")
                    new.retry_attempts = int(v)
                elif low == "deliveryretryinterval":
                    if v is None or not 0 <= int(v) <= 86400:
                        raise _bad(f"DeliveryRetryInterval {_txt(v)} is not in 0..86400 seconds")
                    new.retry_interval = int(v)
                elif low == "subscriptionremovalaction":
                    if v is None or int(v) not in (REMOVAL_REMOVE, REMOVAL_DISABLE,
                                                   REMOVAL_IGNORE):
                        raise _bad(f"SubscriptionRemovalAction {_txt(v)} is not 2 (Remove), "
                                   "3 (Disable) or 4 (Ignore)")
                    new.removal_action = int(v)
                elif low == "subscriptionremovaltimeinterval":
                    if v is None:
                        raise _bad("SubscriptionRemovalTimeInterval cannot be NULL")
                    new.removal_interval = int(v)
                elif low not in current and (v is None or (
                        spec is not None and low in spec.props
                        and _same(spec.props[low].default, v))):
                    # Read tolerantly: NULL, or the class default the instance was
                    # completed with, is "not given".
                    continue
                elif not _same(current[low][1] if low in current else None, v):
                    # Unchanged values of the other properties are accepted, so that a
                    # client can send back the instance it got with one value changed.
                    raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                                   f"CIM_IndicationService.{name} cannot be modified "
                                   "(settable: DeliveryRetryAttempts, DeliveryRetryInterval, "
                                   "SubscriptionRemovalAction, "
                                   "SubscriptionRemovalTimeInterval)")
            with self._lock:
                old, self.settings = self.settings, new
                self._save_or_undo(lambda: setattr(self, "settings", old))
        LOG.info("indication service settings: %s", new)

    # -- delivery (providers' DeliverIndication) -------------------------------------

    def deliver(self, namespace: str, indication: CIMInstance) -> None:
        """Match an indication against the active subscriptions and queue it for export.

        Called in the provider's thread; returns at once (delivery runs in
        the destinations' threads).  Errors in the indication itself (unknown
        namespace or class, not an indication, ill-typed properties) are
        raised to the provider as CIM errors.
        """
        ns = _canonical_ns(self.schema, namespace)
        if ns is None:
            raise CIMError(pywbem.CIM_ERR_INVALID_NAMESPACE,
                           f"DeliverIndication: namespace {namespace!r} does not exist")
        if not isinstance(indication, CIMInstance):
            raise _bad(f"DeliverIndication: {type(indication).__name__} is not an instance")
        if not self.schema.has_class(ns, indication.classname):
            raise CIMError(pywbem.CIM_ERR_INVALID_CLASS,
                           f"DeliverIndication: class {indication.classname!r} does not "
                           f"exist in namespace {ns}")
        spec = self.schema.spec(ns, indication.classname)
        if not (spec.is_indication or spec.is_a("CIM_Indication")):
            raise _bad(f"DeliverIndication: {spec.name} is not an indication class")
        # A typed model of the class: values get their declared types, and copies
        # (one per matching subscription) are cheap.
        inst = make_model(ns, spec.name, schema=self.schema)
        inst.path = None
        for name, prop in indication.properties.items():
            pspec = spec.props.get(name.lower())
            if pspec is None:
                raise _bad(f"DeliverIndication: class {spec.name} has no property {name!r}")
            try:
                inst[pspec.name] = prop.value
            except (ValueError, TypeError) as exc:
                raise _bad(f"DeliverIndication: {spec.name}.{pspec.name}: {exc}") from None
        if "indicationtime" in spec.props and _value(inst, "IndicationTime") is None:
            inst["IndicationTime"] = _now_dt()
        if "indicationidentifier" in spec.props and \
                _value(inst, "IndicationIdentifier") is None:
            inst["IndicationIdentifier"] = f"{BRAND}:{self.boot_id}:{next(self._ind_ids)}"
        has_filter_name = "indicationfiltername" in spec.props
        has_seq = "sequencecontext" in spec.props and "sequencenumber" in spec.props
        self.received += 1
        now = time.time()
        for sub in self._active:
            filt = sub.filter
            if ns not in filt.source_ns or sub.expired(now):
                continue
            if not spec.is_a(filt.query.classname):
                continue
            try:
                if not filt.query.matches(inst):
                    continue
            except Exception as exc:  # pylint: disable=broad-except
                LOG.warning("filter %r: evaluating its query on %s failed: %s", filt.name,
                            spec.name, exc)
                continue
            out = inst.copy()
            if has_filter_name and _value(out, "IndicationFilterName") is None:
                out["IndicationFilterName"] = filt.name
            filt.query.project(out)
            self.matched += 1
            # Sequence numbers are added after the projection: they number deliveries.
            sub.dest.enqueue(out, sub, has_seq)

    # -- statistics --------------------------------------------------------------------

    def stats(self) -> dict:
        """Counters (for tests, benchmarks and the log)."""
        with self._lock:
            dests = {d.name: {"url": str(d.url), "delivered": d.delivered, "failed": d.failed,
                              "overflowed": d.overflowed, "queued": d.pending(),
                              "last_error": d.last_error}
                     for d in self._dests.values()}
            return {"received": self.received, "matched": self.matched,
                    "filters": len(self._filters), "subscriptions": len(self._subs),
                    "active": len(self._active), "destinations": dests}

    # -- persistence -------------------------------------------------------------------

    @property
    def state_path(self) -> Optional[str]:
        return os.path.join(self.state_dir, STATE_FILE) if self.state_dir else None

    def _save_or_undo(self, undo) -> None:
        """Save the state (lock held); on failure undo the change and fail the request."""
        try:
            self._save()
        except OSError as exc:
            undo()
            raise CIMError(pywbem.CIM_ERR_FAILED,
                           f"Cannot save the indication subscriptions to {self.state_path}: "
                           f"{exc.strerror or exc}") from None

    def _save_or_log(self) -> None:
        """Save the state after a change that stands even if it cannot be saved."""
        with self._lock:
            try:
                self._save()
            except OSError as exc:
                LOG.error("cannot save the indication state: %s", exc)

    def _save(self) -> None:
        path = self.state_path
        if path is None or self._loading:
            return
        data = {"format": _STATE_FORMAT, "version": _STATE_VERSION,
                "service": self.settings.to_json(),
                "filters": [{"owner": f.owner, "instance": _encode_instance(f.inst)}
                            for f in self._filters.values()],
                "destinations": [{"owner": d.owner, "instance": _encode_instance(d.inst)}
                                 for d in self._dests.values()],
                "subscriptions": [{"owner": s.owner, "started": s.started,
                                   "instance": _encode_instance(_persistent_sub(s))}
                                  for s in self._subs]}
        text = json.dumps(data, indent=1, sort_keys=True)
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        try:
            dfd = os.open(self.state_dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass

    def _load(self) -> None:
        path = self.state_path
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            self._set_aside(path, f"cannot be read: {exc}")
            return
        if not isinstance(data, dict) or data.get("format") != _STATE_FORMAT or \
                data.get("version") != _STATE_VERSION:
            self._set_aside(path, "is not an indication state file of this version")
            return
        svc = data.get("service") or {}
        try:
            self.settings = ServiceSettings(
                retry_attempts=int(svc.get("DeliveryRetryAttempts", 3)),
                retry_interval=int(svc.get("DeliveryRetryInterval", 30)),
                removal_action=int(svc.get("SubscriptionRemovalAction", REMOVAL_IGNORE)),
                removal_interval=int(svc.get("SubscriptionRemovalTimeInterval", 86400)))
        except (TypeError, ValueError) as exc:
            LOG.error("%s: bad service settings (%s); defaults used", path, exc)
        restored = [0, 0, 0]
        self._loading = True
        try:
            self._restore(data, path, restored)
        finally:
            self._loading = False
        LOG.info("restored %d indication filter(s), %d listener destination(s) and %d "
                 "subscription(s) from %s", *restored, path)

    def _restore(self, data: dict, path: str, restored: list[int]) -> None:
        for entry in data.get("filters") or []:
            try:
                inst = _decode_instance(self.schema, entry["instance"])
                filt = self._build_filter(inst, entry.get("owner"))
                self._filters[filt.name] = filt
                restored[0] += 1
            except (CIMError, KeyError, TypeError, ValueError) as exc:
                LOG.error("%s: indication filter not restored: %s", path, _why(exc))
        for entry in data.get("destinations") or []:
            try:
                inst = _decode_instance(self.schema, entry["instance"])
                classname = next(c for c in DEST_CLASSES if c.lower() == inst.classname.lower())
                # Not resolved now (the network may not be up at boot): checked at
                # every connection instead, so a destination is never lost to DNS.
                inst, url = self._build_destination(inst, classname, entry.get("owner"),
                                                    check_address=False)
                dest = _Destination(self, inst, url, entry.get("owner"), next(self._serial))
                self._dests[dest.name] = dest
                restored[1] += 1
            except (CIMError, KeyError, TypeError, ValueError, StopIteration) as exc:
                LOG.error("%s: listener destination not restored: %s", path, _why(exc))
        for entry in data.get("subscriptions") or []:
            try:
                inst = _decode_instance(self.schema, entry["instance"])
                self.create_subscription(inst, entry.get("owner"),
                                         started=float(entry.get("started") or time.time()),
                                         activate=False)
                restored[2] += 1
            except (CIMError, KeyError, TypeError, ValueError) as exc:
                LOG.error("%s: subscription not restored: %s", path, _why(exc))

    @staticmethod
    def _set_aside(path: str, why: str) -> None:
        bad = f"{path}.bad-{int(time.time())}"
        try:
            os.replace(path, bad)
            LOG.error("%s %s; moved to %s, starting without subscriptions", path, why, bad)
        except OSError as exc:
            LOG.error("%s %s (and cannot be moved aside: %s); starting without "
                      "subscriptions", path, why, exc)


def _merged(rec: _Named, inst: CIMInstance) -> CIMInstance:
    """`rec`'s instance with the properties of `inst` (ModifyInstance), keys unchanged."""
    merged = rec.inst.copy()
    for name, prop in inst.properties.items():
        merged.properties[name] = prop.copy()
    for key in rec.path.keybindings:
        merged[key] = rec.inst[key]
    return merged


def _restore_dest(dest: _Destination, inst: CIMInstance, url: DestinationURL) -> None:
    dest.inst, dest.url = inst, url


def _set_state(sub: _Subscription, state: int) -> None:
    inst = sub.inst.copy()
    inst["SubscriptionState"] = pywbem.Uint16(state)
    inst["TimeOfLastStateChange"] = _now_dt()
    sub.inst = inst


def _persistent_sub(sub: _Subscription) -> CIMInstance:
    """The subscription as saved: a degraded state is a runtime fact, not a setting."""
    if sub.state != STATE_DEGRADED:
        return sub.inst
    inst = sub.inst.copy()
    inst["SubscriptionState"] = pywbem.Uint16(STATE_ENABLED)
    return inst


def _check_sub_settings(inst: CIMInstance, creating: bool,
                        current: Optional[CIMInstance] = None) -> None:
    """Check the settable properties of a subscription (create or modify)."""
    state = _value(inst, "SubscriptionState")
    if state is not None and int(state) not in (STATE_ENABLED, STATE_DISABLED) and \
            not (current is not None and int(state) == _value(current, "SubscriptionState")):
        raise _bad(f"SubscriptionState {state} cannot be requested (2 Enabled or "
                   "4 Disabled)")
    policy = _value(inst, "OnFatalErrorPolicy")
    if policy is not None and int(policy) not in (POLICY_OTHER, POLICY_IGNORE, POLICY_DISABLE,
                                                  POLICY_REMOVE):
        raise _bad(f"OnFatalErrorPolicy {policy} is not 1 (Other), 2 (Ignore), 3 (Disable) "
                   "or 4 (Remove)")
    repeat = _value(inst, "RepeatNotificationPolicy")
    if creating and repeat is not None and int(repeat) not in (0, 2):
        raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                       f"RepeatNotificationPolicy {repeat} is not supported (2, None)")
    if not creating and current is not None:
        for name in ("RepeatNotificationPolicy", "RepeatNotificationInterval",
                     "RepeatNotificationGap", "RepeatNotificationCount",
                     "OtherRepeatNotificationPolicy"):
            if name in inst.properties and not _same(_value(inst, name),
                                                     _value(current, name)):
                raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                               f"CIM_IndicationSubscription.{name} cannot be modified")


def _txt(v: Any) -> str:
    """A value for a message: pywbem's numbers without their repr noise."""
    return "NULL" if v is None else repr(v) if isinstance(v, str) else str(v)


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    try:
        return a == b or str(a) == str(b)
    except Exception:  # pylint: disable=broad-except
        return False


def _names(subs: list[_Subscription]) -> str:
    return ", ".join(f"the subscription of filter {s.filter.name!r} to destination "
                     f"{s.dest.name!r}" for s in subs)


def _show(path: Any) -> str:
    if isinstance(path, CIMInstanceName):
        try:
            return path.to_wbem_uri()
        except Exception:  # pylint: disable=broad-except
            return str(path)
    return repr(path)


def _why(exc: BaseException) -> str:
    return exc.status_description if isinstance(exc, CIMError) else f"{type(exc).__name__}: " \
                                                                      f"{exc}"


# -- JSON encoding of instances (state file) ------------------------------------------------

def _encode_value(v: Any) -> Any:
    if isinstance(v, list):
        return [_encode_value(x) for x in v]
    if isinstance(v, CIMInstanceName):
        return {"ref": v.to_wbem_uri()}
    if isinstance(v, CIMDateTime):
        return str(v)
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    return str(v)


def _encode_instance(inst: CIMInstance) -> dict:
    return {"classname": inst.classname,
            "properties": {name: _encode_value(p.value)
                           for name, p in inst.properties.items() if p.value is not None}}


def _decode_instance(schema: Schema, data: dict) -> CIMInstance:
    classname = data["classname"]
    spec = schema.spec(INTEROP, classname)
    inst = CIMInstance(spec.name)
    for name, value in (data.get("properties") or {}).items():
        pspec = spec.props.get(name.lower())
        if pspec is None:
            continue
        if pspec.type == "reference":
            value = CIMInstanceName.from_wbem_uri(value["ref"])
        else:
            value = coerce(pspec.type, pspec.is_array, value)
        inst[pspec.name] = pywbem.CIMProperty(pspec.name, value, type=pspec.type,
                                              is_array=pspec.is_array,
                                              reference_class=pspec.reference_class)
    inst.path = CIMInstanceName(spec.name, namespace=INTEROP)
    return inst


# -- the builtin providers -------------------------------------------------------------------

_manager: Optional[IndicationManager] = None


def configure(manager: IndicationManager) -> None:
    """Called by the server before the builtin providers are loaded."""
    global _manager
    _manager = manager


def _mgr() -> IndicationManager:
    if _manager is None:
        raise CIMError(pywbem.CIM_ERR_FAILED, "the indication service is not running")
    return _manager


def _fill(model, inst: CIMInstance, keys_only: bool):
    """A copy of the model filled from a stored instance (keys only, or what is wanted)."""
    out = model.copy()
    keys = {k.lower() for k in model.spec.key_names}
    for name, prop in inst.properties.items():
        if keys_only and name.lower() not in keys:
            continue
        if name in out:
            out[name] = prop.value
    out.path = inst.path.copy()
    return out


class _StoreProvider(CIMProvider2, abc.ABC):
    """Common plumbing: instances from the manager's lists; clients create, modify and
    delete them with the manager's ``create_<kind>``, ``modify_<kind>`` and
    ``delete_<kind>``."""

    _kind: str     # "filter", "destination" or "subscription"

    @abc.abstractmethod
    def _list(self, classname: str, user: Optional[str]) -> list[CIMInstance]:
        """The stored instances of `classname` that `user` may see."""

    @abc.abstractmethod
    def _get(self, path: CIMInstanceName, user: Optional[str]) -> Optional[CIMInstance]:
        """The stored instance at `path`, or None (also when `user` may not see it)."""

    def enum_instances(self, env, model, keys_only) -> Iterator:
        for inst in self._list(model.classname, env.get_user_name()):
            yield _fill(model, inst, keys_only)

    def get_instance(self, env, model):
        inst = self._get(model.path, env.get_user_name())
        return None if inst is None else _fill(model, inst, False)

    def set_instance(self, env, instance, modify_existing):
        if modify_existing:
            getattr(_mgr(), f"modify_{self._kind}")(instance, env.get_user_name())
            return instance
        return getattr(_mgr(), f"create_{self._kind}")(instance, env.get_user_name())

    def delete_instance(self, env, instance_name):
        getattr(_mgr(), f"delete_{self._kind}")(instance_name, env.get_user_name())


class FilterProvider(_StoreProvider):
    """CIM_IndicationFilter: created, modified and deleted by clients."""

    _kind = "filter"

    def _list(self, classname, user):
        return _mgr().filters(user)

    def _get(self, path, user):
        return _mgr().get_filter(path, user)


class DestinationProvider(_StoreProvider):
    """CIM_ListenerDestinationCIMXML and CIM_IndicationHandlerCIMXML."""

    _kind = "destination"

    def _list(self, classname, user):
        return _mgr().destinations(classname, user)

    def _get(self, path, user):
        inst = _mgr().get_destination(path, user)
        if inst is not None and inst.classname.lower() != path.classname.lower():
            return None
        return inst


class SubscriptionProvider(_StoreProvider):
    """CIM_IndicationSubscription (an association of a filter and a destination)."""

    _kind = "subscription"

    def _list(self, classname, user):
        return _mgr().subscriptions(user)

    def _get(self, path, user):
        return _mgr().get_subscription(path, user)

    def references(self, env, object_name, model, result_class_name, role, result_role,
                   keys_only):
        return self.simple_refs(env, object_name, model, result_class_name, role,
                                result_role, keys_only)


def service_path(hostname: str) -> CIMInstanceName:
    """The path of the server's CIM_IndicationService instance."""
    return CIMInstanceName(SERVICE_CLASS, namespace=INTEROP, keybindings=[
        ("SystemCreationClassName", SYSTEM_CCN), ("SystemName", hostname),
        ("CreationClassName", SERVICE_CLASS), ("Name", f"{BRAND}:IndicationService")])


def _service_path(mgr: IndicationManager) -> CIMInstanceName:
    return service_path(mgr.hostname)


def _caps_path() -> CIMInstanceName:
    return CIMInstanceName(CAPS_CLASS, namespace=INTEROP,
                           keybindings={"InstanceID": f"{BRAND}:IndicationServiceCapabilities"})


def service_properties(mgr: IndicationManager) -> dict[str, tuple[str, Any]]:
    """{lower-case name: (name, value)} of the CIM_IndicationService instance."""
    s = mgr.settings
    props = [
        ("ElementName", "Indication Service"),
        ("Caption", "kvm_providers indication service"),
        ("Description", "Delivers indications to CIM-XML listeners (DSP1054)"),
        ("FilterCreationEnabled", True),
        ("DeliveryRetryAttempts", pywbem.Uint16(s.retry_attempts)),
        ("DeliveryRetryInterval", pywbem.Uint32(s.retry_interval)),
        ("SubscriptionRemovalAction", pywbem.Uint16(s.removal_action)),
        ("SubscriptionRemovalTimeInterval", pywbem.Uint32(s.removal_interval)),
        ("EnabledState", pywbem.Uint16(2)),
        ("RequestedState", pywbem.Uint16(12)),
        ("EnabledDefault", pywbem.Uint16(2)),
        ("OperationalStatus", [pywbem.Uint16(2)]),
        ("HealthState", pywbem.Uint16(5)),
        ("Started", True),
    ]
    return {n.lower(): (n, v) for n, v in props}


class ServiceProvider(CIMProvider2):
    """CIM_IndicationService: one instance; its delivery settings can be modified."""

    def enum_instances(self, env, model, keys_only) -> Iterator:
        mgr = _mgr()
        inst = model.copy()
        for k, v in _service_path(mgr).keybindings.items():
            inst[k] = v
        if not keys_only:
            for name, value in service_properties(mgr).values():
                inst[name] = value
        yield inst

    def set_instance(self, env, instance, modify_existing):
        if not modify_existing:
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                           "CIM_IndicationService instances cannot be created")
        mgr = _mgr()
        if not paths_equal(instance.path, _service_path(mgr)):
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                           f"Instance not found: {_show(instance.path)}")
        # The delivery and removal settings act on every user's subscriptions.
        if not mgr.access.is_admin(env.get_user_name()):
            raise CIMError(pywbem.CIM_ERR_ACCESS_DENIED,
                           "Only administrators ([server] admin_users, admin_group) may "
                           "modify the indication service's settings")
        props = instance.copy()
        for k in instance.path.keybindings:
            if k in props.properties:
                del props.properties[k]
        mgr.modify_service(props)
        return instance


class CapabilitiesProvider(CIMProvider2):
    """CIM_IndicationServiceCapabilities: what the service allows and supports."""

    def enum_instances(self, env, model, keys_only) -> Iterator:
        mgr = _mgr()
        inst = model.copy()
        inst["InstanceID"] = _caps_path()["InstanceID"]
        if not keys_only:
            inst["ElementName"] = "Indication Service Capabilities"
            inst["FilterCreationEnabledIsSettable"] = False
            inst["DeliveryRetryAttemptsIsSettable"] = True
            inst["DeliveryRetryIntervalIsSettable"] = True
            inst["SubscriptionRemovalActionIsSettable"] = True
            inst["SubscriptionRemovalTimeIntervalIsSettable"] = True
            inst["MaxListenerDestinations"] = MAX_DESTINATIONS
            inst["MaxActiveSubscriptions"] = MAX_SUBSCRIPTIONS
            inst["SubscriptionsPersisted"] = bool(mgr.state_dir)
        yield inst


class ElementCapabilitiesProvider(CIMProvider2):
    """CIM_ElementCapabilities: the indication service and its capabilities."""

    def enum_instances(self, env, model, keys_only) -> Iterator:
        inst = model.copy()
        inst["ManagedElement"] = _service_path(_mgr())
        inst["Capabilities"] = _caps_path()
        yield inst

    def references(self, env, object_name, model, result_class_name, role, result_role,
                   keys_only):
        return self.simple_refs(env, object_name, model, result_class_name, role,
                                result_role, keys_only)


#: (class, provider types, provider class) the server registers in the interop namespace.
BUILTIN_CLASSES = [
    (FILTER_CLASS, ("instance",), FilterProvider),
    ("CIM_ListenerDestinationCIMXML", ("instance",), DestinationProvider),
    ("CIM_IndicationHandlerCIMXML", ("instance",), DestinationProvider),
    (SUB_CLASS, ("instance", "association"), SubscriptionProvider),
    (SERVICE_CLASS, ("instance",), ServiceProvider),
    (CAPS_CLASS, ("instance",), CapabilitiesProvider),
    ("CIM_ElementCapabilities", ("instance", "association"), ElementCapabilitiesProvider),
]


def get_providers(env):
    """The provider module entry point."""
    return {name: cls() for name, _types, cls in BUILTIN_CLASSES}


def iter_builtin(schema: Schema) -> Iterable[tuple[str, tuple[str, ...]]]:
    """(class, types) of the builtin classes the schema defines in the interop namespace."""
    for name, types, _cls in BUILTIN_CLASSES:
        if schema.has_namespace(INTEROP) and schema.has_class(INTEROP, name):
            yield name, types
