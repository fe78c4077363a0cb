"""Guarded hops of small requests (issue 16): the dependent libvirt calls of one
operation in ONE hand-off to a helper of the connection, with one deadline.

Each hand-off to a helper costs more than a call's own round trip to libvirtd
(thread wake-ups both ways), so a GetInstance of a ComputerSystem asks the lookup
and the state in one hop (:func:`lookup_with_state`), and an association from a
ComputerSystem reads the domain's XML with the lookup of its source check
(:func:`lookup_with_xml`).  Inside a hop the raw libvirt objects are called: the
hop runs counted in the connection as a whole, so the proxy's work per call
(:class:`~.link.Guarded`) would only delay the waiting request.  A hung daemon
fails the request within ``hang_timeout`` as any guarded call does
(:meth:`~.link.Link.wait`).  Split out of domain.py (stop 21).
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import libvirt
from lxml import etree

from .connection import DomainNotFound, Host, HostUnavailable
from .domain import (XML_FLAGS, XML_INACTIVE, DomainRef, DomainXML, domain_state,
                     domains_listed, has_managed_save, lookup_domain, xml_key)
from .link import Guarded, link_of, unwrap
from .query import parse_xml
from .scope import current_scope

__all__ = ["state_and_saved", "lookup_with_state", "lookup_with_xml"]

LOG = logging.getLogger(__name__)

_NO_DOMAIN = getattr(libvirt, "VIR_ERR_NO_DOMAIN", 42)


def state_and_saved(ref: DomainRef) -> tuple[int, bool]:
    """(libvirt state, whether the domain is shut off with a managed save image): what
    a ComputerSystem's state properties need (:func:`domain_state`,
    :func:`has_managed_save`).

    For one domain through a daemon (a GetInstance), both are asked in one guarded hop
    (:func:`_ask_state`): one hand-off to a helper of the connection, the save image
    asked only of a domain that is shut off.
    """
    host = ref.host
    scope = current_scope()
    skey = ("virt.state", host.label, host.generation, ref.uuid)
    mkey = ("virt.managedsave", host.label, host.generation, ref.uuid)
    if scope is None or host.in_process or domains_listed(host) or skey in scope or mkey in scope:
        state = domain_state(ref)[0]
        return state, state == libvirt.VIR_DOMAIN_SHUTOFF and has_managed_save(ref)
    answer = host.submit(_ask_state, ref.dom, on=ref.dom).result()
    return _keep_state(scope, ref, *answer)


def lookup_with_state(host: Host, name: str, ahead: bool = False
                      ) -> Optional[tuple[DomainRef, int, bool]]:
    """(domain, libvirt state, saved) of the domain named `name` (see
    :func:`state_and_saved`), or None if there is no such domain (or it went away
    between the calls): what a GetInstance of a ComputerSystem reads.

    Through a daemon, the lookup and what :func:`_ask_state` asks are ONE guarded hop
    (one hand-off to a helper of the connection, one deadline; issue 16: a hand-off
    costs more than the call's round trip), with the errors of :func:`lookup_domain`
    and :func:`state_and_saved`, which answer elsewhere (in-process drivers, a request
    that listed the domains or looked this one up already).  `ahead`: only start the hop
    (kept in the request scope for the call that waits for it) and return None."""
    scope = current_scope()
    lkey = ("virt.lookup", host.label, host.generation, name)
    if scope is None or host.in_process or domains_listed(host) or lkey in scope:
        if ahead:
            return None
        ref = lookup_domain(host, name)
        if ref is None:
            return None
        try:
            state, saved = state_and_saved(ref)
        except DomainNotFound:
            return None
        return ref, state, saved
    akey = ("virt.ahead", host.label, host.generation, name)
    if ahead:
        if akey not in scope:
            try:
                conn = host.conn()
                scope[akey] = host.submit(_state_hop, host, conn, name, on=conn)
            except HostUnavailable:
                pass        # the request's own call fails as it would have
        return None
    pending = scope.pop(akey, None)
    if pending is None:
        conn = host.conn()
        pending = host.submit(_state_hop, host, conn, name, on=conn)
    first, *answer = pending.result()
    if isinstance(first, libvirt.libvirtError):
        err = host.translate(first, f"looking up domain {name!r}")
        if not isinstance(err, DomainNotFound):
            raise err
        scope[lkey] = None
        return None
    scope[lkey] = first
    try:
        state, saved = _keep_state(scope, first, *answer)
    except DomainNotFound:
        return None
    return first, state, saved


def _state_hop(host: Host, conn: Any, name: str) -> tuple[Any, ...]:
    # On a helper, counted in the connection as a whole: the raw objects are called
    # (no proxy work per call); errors come back as values, translated by the waiter.
    found = _lookup_raw(host, conn, name)
    return (found,) if not isinstance(found, DomainRef) else (found,) + _ask_state(found.dom)


def _lookup_raw(host: Host, conn: Any, name: str) -> Any:
    """Inside a hop: domain `name`'s DomainRef, or the lookup's (tagged) libvirt error."""
    link = link_of(conn)
    try:
        dom = unwrap(conn).lookupByName(name)
    except libvirt.libvirtError as exc:
        exc.kvmp_link = link   # type: ignore[attr-defined]
        return exc
    return DomainRef(host, Guarded(dom, link) if link else dom, dom.name(), dom.UUIDString())


def _ask_state(dom: Any) -> tuple[Any, Any]:
    """(state or its error, hasManagedSaveImage() or its error, None if not asked): the
    calls of :func:`state_and_saved`, made one after the other on a helper.

    An inactive domain is shut off: libvirt gives it the id -1 (``virDomainGetID``, read
    from the domain object that the lookup or listing just returned: no call) and the
    state SHUTOFF, so its state is known without ``state()`` (reason None: not asked);
    only whether it has a managed save image is asked.  An active domain's state is
    asked; it has no image to ask about (only a shut-off domain is "saved").  Calls the
    raw object behind `dom` (the hop is counted in the connection), tagging errors."""
    link, raw = link_of(dom), unwrap(dom)
    if raw.ID() == -1:
        st: Any = (libvirt.VIR_DOMAIN_SHUTOFF, None)
    else:
        try:
            st = raw.state(0)
        except libvirt.libvirtError as exc:
            exc.kvmp_link = link   # type: ignore[attr-defined]
            return exc, None
        if st[0] != libvirt.VIR_DOMAIN_SHUTOFF:
            return st, None
    try:
        return st, raw.hasManagedSaveImage(0)
    except libvirt.libvirtError as exc:
        exc.kvmp_link = link   # type: ignore[attr-defined]
        return st, exc


def _keep_state(scope: dict, ref: DomainRef, st: Any, image: Any) -> tuple[int, bool]:
    """Translate and memoize what :func:`_ask_state` answered; (state, saved)."""
    host = ref.host
    if isinstance(st, libvirt.libvirtError):
        raise host.translate(st, f"getting the state of {ref.name!r}")
    if isinstance(image, libvirt.libvirtError):
        err = host.translate(image, f"checking the save image of {ref.name!r}")
        if isinstance(err, (DomainNotFound, HostUnavailable)):
            raise err   # a hung or lost host fails the request, never reports "no image"
        # a driver without managed save (LXC): no image
        LOG.debug("libvirt host %s: %s", host.label, err)
        image = False
    if st[1] is not None:    # the reason too: domain_state() may use it
        scope[("virt.state", host.label, host.generation, ref.uuid)] = (st[0], st[1])
    if image is not None:
        scope[("virt.managedsave", host.label, host.generation, ref.uuid)] = bool(image)
    return st[0], st[0] == libvirt.VIR_DOMAIN_SHUTOFF and bool(image)

# -- XML -------------------------------------------------------------------------------

def lookup_with_xml(host: Host, name: str, inactive: bool = False) -> None:
    """Read ahead what a request will read of the domain named `name`: its lookup and its
    XML, through a daemon in ONE guarded hop (``lookupByName`` then ``XMLDesc`` on one
    helper, one deadline), into the request scope, so that :func:`lookup_domain` and
    :func:`domain_xml` find them there (issue 16: an association from a
    ComputerSystem checks its source - the lookup - and then reads the domain's XML:
    two hops before).

    Answers nothing and raises nothing: a domain that does not exist is memoized as
    such (as :func:`lookup_domain` memoizes it); any other failure leaves the scope as
    it was, so that the request's own calls fail as they would have.  Does nothing
    outside a request scope, for in-process drivers, or when the request has listed
    the domains or looked this one up already.
    """
    scope = current_scope()
    lkey = ("virt.lookup", host.label, host.generation, name)
    if scope is None or host.in_process or domains_listed(host) or lkey in scope:
        return
    flags = (0 if host.xml_secure_denied else XML_FLAGS) | (XML_INACTIVE if inactive else 0)
    try:
        conn = host.conn()
    except HostUnavailable:
        return

    def hop() -> tuple[Any, Any]:
        # On a helper (see lookup_with_state): errors come back as values.
        ref = _lookup_raw(host, conn, name)
        if not isinstance(ref, DomainRef):
            return ref, None
        try:
            return ref, unwrap(ref.dom).XMLDesc(flags)
        except libvirt.libvirtError:
            return ref, None     # asked again by domain_xml(), which raises as before

    try:
        found, text = host.submit(hop, on=conn).result()
    except HostUnavailable:
        return
    if isinstance(found, libvirt.libvirtError):
        if found.get_error_code() == _NO_DOMAIN:
            scope[lkey] = None
        return
    scope[lkey] = found
    if text is not None:
        try:
            scope[xml_key(found, inactive)] = DomainXML(found, parse_xml(text), inactive)
        except etree.XMLSyntaxError:
            pass
