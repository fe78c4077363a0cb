"""Export of indications to CIM-XML listeners (DSP0200 ExportIndication over HTTP(S)).

Every listener destination (:class:`Destination`) has one bounded queue and
one delivery thread, started on demand and ended when idle: indications to
one listener go in order, never blocking the provider that delivered them.
A delivery is retried as the CIM_IndicationService's DeliveryRetryAttempts
and DeliveryRetryInterval say; its outcome is reported back to the service
(:class:`DeliveryService`), which degrades, disables or removes subscriptions
by their policies.  Connections go through the :class:`.policy.DestinationPolicy`
(the listener's host is resolved again and checked at every connection).

:func:`typed_indication` checks an indication a provider delivers and gives
it its class's declared types, before it is matched against the filters.
"""

from __future__ import annotations

import collections
import http.client
import logging
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import pywbem
from pywbem import CIMError, CIMInstance

from ...cimxml import writer as W
from ...cimxml.reader import CIMXMLError, parse_xml
from ...provider import make_model
from ...schema import Schema
from ..names import BRAND
from .model import Named, ServiceSettings, Subscription, bad, canonical_ns, now_dt, value
from .policy import DestinationPolicy, DestinationURL

__all__ = ["export_request", "DeliveryError", "check_export_response", "Item",
           "DeliveryService", "Destination", "typed_indication"]

LOG = logging.getLogger("kvm_providers.cimom.indications")

#: Seconds a delivery thread waits for a listener (connect, then response).
DELIVERY_TIMEOUT = 10.0
#: Seconds an idle delivery thread lingers before it ends (a new one starts on demand).
WORKER_IDLE = 30.0
_MAX_RESPONSE = 1 << 20


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


@dataclass
class Item:
    """An indication queued for one subscription's destination."""

    indication: CIMInstance
    sub: Subscription
    body: Optional[bytes] = None


class DeliveryService(Protocol):
    """What a :class:`Destination` needs of the indication service."""

    hostname: str
    boot_id: str
    queue_size: int
    settings: ServiceSettings
    destination_policy: DestinationPolicy

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context HTTPS listeners are checked with."""

    def next_message_id(self) -> str:
        """A new CIM-XML message id."""

    def is_current(self, sub: Subscription) -> bool:
        """True while `sub` exists and is enabled."""

    def delivery_failed(self, dest: "Destination", sub: Subscription, now: float) -> None:
        """An indication to `dest` for `sub` could not be delivered."""

    def delivery_recovered(self, dest: "Destination") -> None:
        """`dest` is reachable again after failures."""


class Destination(Named):
    """A listener destination and its delivery queue and thread."""

    def __init__(self, mgr: DeliveryService, inst: CIMInstance, url: DestinationURL,
                 owner: Optional[str], serial: int):
        self.mgr = mgr
        self.inst = inst
        self.url = url
        self.owner = owner
        self.context = f"{BRAND}:{mgr.hostname}#{serial}#{mgr.boot_id}"
        self.sequence = 0
        self.queue: collections.deque[Item] = collections.deque()
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

    def enqueue(self, indication: CIMInstance, sub: Subscription, sequence: bool) -> None:
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
            self.queue.append(Item(indication, sub))
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, daemon=True,
                                               name=f"indication-delivery:{self.name}")
                self.thread.start()
            self.cond.notify()

    def close(self) -> list[Item]:
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

    def _deliver(self, item: Item) -> None:
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

    def _post(self, item: Item) -> None:
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



# -- what providers deliver ------------------------------------------------------------

def typed_indication(schema: Schema, namespace: str, indication: CIMInstance,
                     identifier: Callable[[], str]) -> tuple:
    """(namespace, class spec, instance) of an indication a provider delivers.

    The instance is a typed model of its class (values get their declared
    types, and copies, one per matching subscription, are cheap), with
    IndicationTime and IndicationIdentifier (from `identifier`) filled in
    when the class has them and the provider left them NULL.  Errors in the
    indication itself (unknown namespace or class, not an indication,
    ill-typed properties) are CIM errors for the provider.
    """
    ns = canonical_ns(schema, namespace)
    if ns is None:
        raise CIMError(pywbem.CIM_ERR_INVALID_NAMESPACE,
                       f"DeliverIndication: namespace {namespace!r} does not exist")
    if not isinstance(indication, CIMInstance):
        raise bad(f"DeliverIndication: {type(indication).__name__} is not an instance")
    if not schema.has_class(ns, indication.classname):
        raise CIMError(pywbem.CIM_ERR_INVALID_CLASS,
                       f"DeliverIndication: class {indication.classname!r} does not "
                       f"exist in namespace {ns}")
    spec = schema.spec(ns, indication.classname)
    if not (spec.is_indication or spec.is_a("CIM_Indication")):
        raise bad(f"DeliverIndication: {spec.name} is not an indication class")
    inst = make_model(ns, spec.name, schema=schema)
    inst.path = None
    for name, prop in indication.properties.items():
        pspec = spec.props.get(name.lower())
        if pspec is None:
            raise bad(f"DeliverIndication: class {spec.name} has no property {name!r}")
        try:
            inst[pspec.name] = prop.value
        except (ValueError, TypeError) as exc:
            raise bad(f"DeliverIndication: {spec.name}.{pspec.name}: {exc}") from None
    if "indicationtime" in spec.props and value(inst, "IndicationTime") is None:
        inst["IndicationTime"] = now_dt()
    if "indicationidentifier" in spec.props and \
            value(inst, "IndicationIdentifier") is None:
        inst["IndicationIdentifier"] = identifier()
    return ns, spec, inst
