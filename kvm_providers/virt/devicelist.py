"""The logical devices of one domain for a small request, without parsing XML that was
parsed before (issue 16, stop 23).

An AssociatorNames SystemDevice from a ComputerSystem reads the domain's XML (one call,
:func:`.domain.lookup_with_xml`) and answers a path per logical device.  The device list
is a function of the XML text alone (:func:`.devices.scan_settings` and
:func:`.devices.logical_devices` read nothing else), and parsing and scanning the text
were the larger part of such a request's own work (0.1-0.15 ms of its 0.6 ms in the
server: lxml's parse of some 5 KB, the settings, the devices).  So the list made from a
text is kept with that text, per domain: a request whose read returns the same text,
character for character, takes the list kept and parses nothing; any other text (an
edited, started, stopped domain) is parsed and scanned as before.  The XML is still read
by every request: what is kept never stands in for libvirt's answer, only for work done
on an identical one.

Only :data:`KEPT` domains are kept (the oldest forgotten first), keyed by host,
connection generation and UUID.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

from .connection import DomainNotFound, Host
from .domain import DomainRef, domain_xml, lookup_domain, lookup_with_xml, unparsed_xml

__all__ = ["read_ahead", "domain_devices", "Device", "KEPT"]

#: Domains whose device list is kept with its text.
KEPT = 256


class Device(NamedTuple):
    """A logical device as a device list keeps it: what its path is made of."""

    kind: Any       # the installed kind (.devices): its model's device class
    devid: str


# (host label, connection generation, domain UUID) -> (XML text, its devices)
_kept: dict[tuple, tuple[str, tuple[Device, ...]]] = {}


def read_ahead(host: Host, name: str) -> Optional[DomainRef]:
    """:func:`.domain.lookup_with_xml` of domain `name`, its XML kept as text for
    :func:`domain_devices` (parsed only if a list kept for the same text is lacking)."""
    return lookup_with_xml(host, name, parse=False)


def domain_devices(host: Host, name: str) -> Optional[tuple[Any, ...]]:
    """The logical devices (``.kind``, ``.devid``) of domain `name` in document order as
    :meth:`.domain.DomainXML.devices` lists them, or None if there is no such domain."""
    ref = lookup_domain(host, name)
    if ref is None:
        return None
    text = unparsed_xml(ref)
    key = (host.label, host.generation, ref.uuid)
    if text is not None:
        kept = _kept.get(key)
        if kept is not None and kept[0] == text:
            return kept[1]
    try:
        doc = domain_xml(ref)
    except DomainNotFound:
        return None
    devices = tuple(doc.devices())
    if text is not None:
        # The document was made from this text just now (unparsed_xml): nothing edited.
        _keep(key, text, tuple(Device(d.kind, d.devid) for d in devices))
    return devices


def _keep(key: tuple, text: str, devices: tuple[Device, ...]) -> None:
    if key not in _kept and len(_kept) >= KEPT:
        try:
            del _kept[next(iter(_kept))]
        except (StopIteration, KeyError, RuntimeError):
            pass    # changed by another request meanwhile
    _kept.pop(key, None)        # re-inserted: the newest
    _kept[key] = (text, devices)
