"""The domain model: domains of a host, their state, and their XML parsed once per request.

Everything here memoizes in the request scope
(:func:`kvm_providers.virt.scope.current_scope`), keyed by host and
connection generation, so that one CIM request touches libvirt as little as
possible however many providers and up-calls it runs through:

* :func:`list_domains` - one ``listAllDomains`` per request; names and UUIDs
  come from the domain objects without further calls;
* :func:`domain_state`, :func:`autostart`, :func:`has_managed_save` - in a
  request that listed the domains, one bulk call for all of them
  (``getAllDomainStats(STATE)``, ``listAllDomains(AUTOSTART / MANAGEDSAVE)``);
  for a single domain, one call for it;
* :func:`domain_xml` - ``virDomainGetXMLDesc`` and an lxml parse, once per
  domain and request; :func:`iter_domain_xml` and :func:`prefetch_xml` fetch many
  ahead on a helper thread (one call after the other) when the connection goes
  through a daemon.

:class:`DomainXML` is the parsed document.  It is a thin index over the
lxml tree: settings (RASDs) and logical devices are views of the elements,
and writes (issue 4) change the tree *in place* through the mapping tables
(:mod:`kvm_providers.virt.mapping`), then serialize it with
:meth:`DomainXML.tostring`.  Nothing is ever regenerated from a partial
model: what the mapping does not know survives.

Outside a request scope nothing is memoized (every call asks libvirt).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Iterator, Optional

import libvirt
from lxml import etree

from .scope import current_scope, only_pass
from . import keys
from .connection import DomainNotFound, Host, HostUnavailable
from .link import Guarded, link_of, names_domain, unwrap
from .errors import LibvirtFailed
from .loophold import loop_held
from .devices import LogicalDevice, Setting, logical_devices, scan_settings, scanned_kinds
from .mapping import View
from .disk_facts import DiskFacts
from .query import if_supported, parse_xml, request_memo, storage_pools

__all__ = ["DomainRef", "DomainXML", "DeviceContext", "list_domains", "lookup_domain",
           "domain_state", "autostart", "has_managed_save", "may_have_snapshots", "domain_xml", "prefetch_xml",
           "iter_domain_xml", "state_and_saved", "lookup_with_state", "lookup_with_xml",
           "unparsed_xml",
           "storage_pools", "XML_FLAGS", "parse_xml"]

LOG = logging.getLogger(__name__)

_NO_DOMAIN = getattr(libvirt, "VIR_ERR_NO_DOMAIN", 42)

#: Flags for reading domain XML: secure (passwords present, so that writes keep
#: them and Password can say whether one is set).  Read-only connections
#: cannot use it; then the layer falls back to 0.
XML_FLAGS = getattr(libvirt, "VIR_DOMAIN_XML_SECURE", 1)
XML_INACTIVE = getattr(libvirt, "VIR_DOMAIN_XML_INACTIVE", 2)

class DomainRef:
    """A domain of a host: libvirt object, name and UUID (no XML)."""

    __slots__ = ("host", "dom", "name", "uuid")

    def __init__(self, host: Host, dom: Any, name: str, uuid: str):
        self.host, self.dom, self.name, self.uuid = host, dom, name, uuid

    def __repr__(self) -> str:
        return f"<DomainRef {self.host.label}:{self.name}>"


# -- listing and lookup --------------------------------------------------------------

def list_domains(host: Host) -> list[DomainRef]:
    """All domains of `host` (active and inactive), sorted by name; once per request."""
    key = ("virt.domains", host.label, host.generation)

    def compute() -> list[DomainRef]:
        conn = host.conn()
        with host.guard("listing domains"):
            doms = conn.listAllDomains(0)
            refs = [DomainRef(host, d, (r := unwrap(d)).name(), r.UUIDString()) for d in doms]
        refs.sort(key=lambda r: r.name)
        return refs

    refs = request_memo(key, compute)
    scope = current_scope()
    if scope is not None:
        scope.setdefault(("virt.listed", host.label, host.generation), True)
    return refs


def _listed(host: Host) -> bool:
    scope = current_scope()
    return scope is not None and ("virt.listed", host.label, host.generation) in scope


def lookup_domain(host: Host, name: str) -> Optional[DomainRef]:
    """The domain named `name`, or None."""
    if _listed(host):
        idx = request_memo(("virt.byname", host.label, host.generation),
                    lambda: {r.name: r for r in list_domains(host)})
        return idx.get(name)
    return request_memo(("virt.lookup", host.label, host.generation, name),
                 lambda: lookup_now(host, name))


def lookup_now(host: Host, name: str) -> Optional[DomainRef]:
    """The domain named `name` asked of libvirt now (no memo), or None."""
    conn = host.conn()
    try:
        with host.guard(f"looking up domain {name!r}"):
            d = conn.lookupByName(name)
            return DomainRef(host, d, d.name(), d.UUIDString())
    except DomainNotFound:
        return None


# -- state -----------------------------------------------------------------------------

def _bulk_states(host: Host) -> Optional[dict[str, tuple[int, int]]]:
    def compute():
        stats = if_supported(host, "getting domain states",
                              lambda c: c.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE, 0))
        if stats is None:
            return None
        return {d.UUIDString(): (s.get("state.state", 0), s.get("state.reason", 0))
                for d, s in stats}
    return request_memo(("virt.states", host.label, host.generation), compute)


def domain_state(ref: DomainRef) -> tuple[int, int]:
    """(libvirt state, reason) of a domain; raises DomainNotFound if it went away."""
    host = ref.host
    if _listed(host):
        states = _bulk_states(host)
        if states is not None and ref.uuid in states:
            return states[ref.uuid]

    def compute():
        with host.guard(f"getting the state of {ref.name!r}"):
            st = ref.dom.state(0)
        return st[0], st[1]
    return request_memo(("virt.state", host.label, host.generation, ref.uuid), compute)


def _bulk_flag_set(host: Host, flag: int, what: str) -> Optional[set[str]]:
    def compute():
        doms = if_supported(host, what, lambda c: c.listAllDomains(flag))
        return None if doms is None else {d.UUIDString() for d in doms}
    return request_memo(("virt.flagset", host.label, host.generation, flag), compute)


def may_have_snapshots(ref: DomainRef) -> bool:
    """False when the domain certainly has no snapshots, known without a call per domain.

    In a request that has listed the host's domains (an enumeration), one
    ``listAllDomains(HAS_SNAPSHOT)`` answers for every domain, so that listing the
    snapshots of each domain costs a libvirt call only for those that have some
    (enumerating VSSDs lists snapshot VSSDs too).  Otherwise True: the caller asks
    the domain itself, one call, cheaper than listing the host's domains."""
    host = ref.host
    flag = getattr(libvirt, "VIR_CONNECT_LIST_DOMAINS_HAS_SNAPSHOT", None)
    if flag is None or not _listed(host):
        return True
    s = _bulk_flag_set(host, flag, "listing the domains with snapshots")
    return s is None or ref.uuid in s


def autostart(ref: DomainRef) -> bool:
    """Whether the domain starts with the host."""
    host = ref.host
    if _listed(host):
        s = _bulk_flag_set(host, libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART, "listing autostart")
        if s is not None:
            return ref.uuid in s

    def compute():
        with host.guard(f"getting autostart of {ref.name!r}"):
            return bool(ref.dom.autostart())
    return request_memo(("virt.autostart", host.label, host.generation, ref.uuid), compute)


def has_managed_save(ref: DomainRef) -> bool:
    """Whether the domain has a managed save image (CIM 'saved' state)."""
    host = ref.host
    if _listed(host):
        s = _bulk_flag_set(host, libvirt.VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE,
                           "listing saved domains")
        if s is not None:
            return ref.uuid in s

    def compute():
        try:
            with host.guard(f"checking the save image of {ref.name!r}"):
                return bool(ref.dom.hasManagedSaveImage(0))
        except LibvirtFailed as exc:
            # a driver without managed save (LXC): no image.  A hung or lost host
            # (HostUnavailable) and a domain gone fail the request, never report "no image"
            LOG.debug("libvirt host %s: %s", host.label, exc)
            return False
    return request_memo(("virt.managedsave", host.label, host.generation, ref.uuid), compute)



def _held_hop(host: Host, func: Any, *args: Any, on: Any) -> Any:
    """``host.submit(func, *args, on=on).result()`` with libvirt's event loop held out of
    poll meanwhile: a small request's one hop wakes no loop thread per call
    (:mod:`.loophold`)."""
    with loop_held():
        return host.submit(func, *args, on=on).result()


def state_and_saved(ref: DomainRef) -> tuple[int, bool]:
    """(libvirt state, whether the domain is shut off with a managed save image): what
    a ComputerSystem's state properties need (:func:`domain_state`,
    :func:`has_managed_save`).

    For one domain through a daemon (a GetInstance), both are asked in one guarded hop
    (:func:`_ask_state`): one hand-off to a helper of the connection, the save image
    asked only of a domain that is shut off."""
    host = ref.host
    scope = current_scope()
    skey = ("virt.state", host.label, host.generation, ref.uuid)
    mkey = ("virt.managedsave", host.label, host.generation, ref.uuid)
    if scope is None or host.in_process or _listed(host) or skey in scope or mkey in scope:
        state = domain_state(ref)[0]
        return state, state == libvirt.VIR_DOMAIN_SHUTOFF and has_managed_save(ref)
    answer = _held_hop(host, _ask_state, ref.dom, on=ref.dom)
    return _keep_state(scope, ref, *answer)


def lookup_with_state(host: Host, name: str) -> Optional[tuple[DomainRef, int, bool]]:
    """(domain, libvirt state, saved) of the domain named `name` (see
    :func:`state_and_saved`), or None if there is no such domain (or it went away
    between the calls): what a GetInstance of a ComputerSystem reads.

    Through a daemon, the lookup and what :func:`_ask_state` asks are ONE guarded hop
    (one hand-off to a helper of the connection, one deadline; issue 16: a hand-off
    costs more than the call's round trip), with the errors of :func:`lookup_domain`
    and :func:`state_and_saved`, which answer elsewhere (in-process drivers, a request
    that listed the domains or looked this one up already)."""
    scope = current_scope()
    lkey = ("virt.lookup", host.label, host.generation, name)
    if scope is None or host.in_process or _listed(host) or lkey in scope:
        ref = lookup_domain(host, name)
        if ref is None:
            return None
        try:
            state, saved = state_and_saved(ref)
        except DomainNotFound:
            return None
        return ref, state, saved
    conn = host.conn()

    def hop() -> tuple[Any, ...]:
        # On a helper, counted in the connection as a whole: the raw objects are called
        # (no proxy work per call); errors come back as values, translated here.
        found = _lookup_raw(host, conn, name)
        if not isinstance(found, DomainRef):
            return (found,)
        return (found,) + _ask_state(found.dom)

    first, *answer = _held_hop(host, hop, on=conn)
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


def _lookup_raw(host: Host, conn: Any, name: str) -> Any:
    """Inside a hop: domain `name`'s DomainRef, or the lookup's (tagged) libvirt error.
    The domain is remembered by its link (:meth:`.link.Link.remember_domain`)."""
    link = link_of(conn)
    try:
        dom = unwrap(conn).lookupByName(name)
    except libvirt.libvirtError as exc:
        exc.kvmp_link = link   # type: ignore[attr-defined]
        return exc
    if link is None:
        return DomainRef(host, dom, dom.name(), dom.UUIDString())
    link.remember_domain(name, dom)
    return DomainRef(host, Guarded(dom, link), dom.name(), dom.UUIDString())


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

def fetch_xml_text(ref: DomainRef, flags: int, raw: bool = False) -> str:
    host = ref.host
    if host.xml_secure_denied:
        flags &= ~XML_FLAGS
    dom = unwrap(ref.dom) if raw else ref.dom
    try:
        return dom.XMLDesc(flags)
    except libvirt.libvirtError as exc:
        if flags & XML_FLAGS and exc.get_error_code() == getattr(
                libvirt, "VIR_ERR_OPERATION_DENIED", 55):
            host.xml_secure_denied = True  # read-only connection
            return dom.XMLDesc(flags & ~XML_FLAGS)
        raise


def lookup_with_xml(host: Host, name: str, inactive: bool = False,
                    parse: bool = True) -> Optional[DomainRef]:
    """Read ahead what a request will read of the domain named `name`: its lookup and its
    XML, through a daemon in ONE guarded hop (``lookupByName`` then ``XMLDesc`` on one
    helper, one deadline), into the request scope, so that :func:`lookup_domain` and
    :func:`domain_xml` find them there (issue 16: an association from a
    ComputerSystem checks its source - the lookup - and then reads the domain's XML:
    two hops before).

    Raises nothing: a domain that does not exist is memoized as such (as
    :func:`lookup_domain` memoizes it); any other failure leaves the scope as it was,
    so that the request's own calls fail as they would have.  Does nothing outside a
    request scope, for in-process drivers, or when the request has listed the domains
    or looked this one up already.  Returns the domain if the request's lookup of it
    (made here or before) found it, else None (no such domain, or not read: a failure,
    or nothing done), so that a caller may take a domain found for its existence; only
    the request's own calls tell a failure from a domain that does not exist.

    `parse` False: the text is kept unparsed (:func:`unparsed_xml`) until
    :func:`domain_xml` is asked for the document (:mod:`.devicelist`)."""
    scope = current_scope()
    lkey = ("virt.lookup", host.label, host.generation, name)
    if scope is None or host.in_process or _listed(host):
        return None
    if lkey in scope:
        return scope[lkey]
    flags = (0 if host.xml_secure_denied else XML_FLAGS) | (XML_INACTIVE if inactive else 0)
    try:
        conn = host.conn()
    except HostUnavailable:
        return None

    link = link_of(conn)
    # A domain this connection looked up by name before: its XML asked by its UUID, in
    # one call instead of two; taken only if the XML still names it with the object's id
    # (else renamed, restarted or gone: looked up again, in the same hop).  Only the live
    # XML tells the id (an inactive domain's id is -1).
    known = None if inactive or link is None else link.known_domain(name)

    def hop() -> tuple[Any, Any]:
        # On a helper (see lookup_with_state): errors come back as values.
        if known is not None and link is not None:
            try:
                text = known.XMLDesc(flags)
            except libvirt.libvirtError:
                text = None
            if text is not None and names_domain(text, name, known.ID()):
                return DomainRef(host, Guarded(known, link), name, known.UUIDString()), text
            link.forget_domain(name)
        ref = _lookup_raw(host, conn, name)
        if not isinstance(ref, DomainRef):
            return ref, None
        try:
            return ref, unwrap(ref.dom).XMLDesc(flags)
        except libvirt.libvirtError:
            return ref, None     # asked again by domain_xml(), which raises as before

    try:
        found, text = _held_hop(host, hop, on=conn)
    except HostUnavailable:
        return None
    if isinstance(found, libvirt.libvirtError):
        if found.get_error_code() == _NO_DOMAIN:
            scope[lkey] = None
        return None
    scope[lkey] = found
    if text is not None and not parse:
        scope[_text_key(found, inactive)] = text
    elif text is not None:
        try:
            scope[_xml_key(found, inactive)] = DomainXML(found, parse_xml(text), inactive)
        except etree.XMLSyntaxError:
            pass
    return found


def _xml_key(ref: DomainRef, inactive: bool) -> tuple:
    return ("virt.xml", ref.host.label, ref.host.generation, ref.uuid, inactive)


def _text_key(ref: DomainRef, inactive: bool) -> tuple:
    return ("virt.xmltext", ref.host.label, ref.host.generation, ref.uuid, inactive)


def unparsed_xml(ref: DomainRef, inactive: bool = False) -> Optional[str]:
    """The XML text of `ref` that ``lookup_with_xml(parse=False)`` read in this request,
    while the request has no document of `ref` (:func:`domain_xml` makes it from that
    text, and then this is None; so is it beside a document read otherwise)."""
    scope = current_scope()
    if scope is None or _xml_key(ref, inactive) in scope:
        return None
    return scope.get(_text_key(ref, inactive))


def domain_xml(ref: DomainRef, inactive: bool = False,
               parse: Optional[Callable[[str], Any]] = None) -> "DomainXML":
    """The parsed XML of a domain (its current definition; `inactive`: the persistent one).

    `parse`: another parser (domain_facts: a partial tree), whose document is not kept.
    Raises DomainNotFound if the domain went away."""
    # The request memo written out (not request_memo with a closure): this runs once
    # per domain of an enumeration, and a closure, a second scope look-up and the
    # KeyError of each miss were a good part of an in-process fetch's wrapping (issue
    # 16, stop 24).  `parse`'s documents are not kept.
    scope = current_scope()
    key = _xml_key(ref, inactive)
    if scope is not None:
        kept = scope.get(key)
        if kept is not None:
            return kept
    # The text read ahead unparsed (lookup_with_xml): the document's, once.
    text = None if scope is None else (scope.get if parse else scope.pop)(
        _text_key(ref, inactive), None)
    if text is None:
        flags = XML_FLAGS | (XML_INACTIVE if inactive else 0)
        # Host.guard's translation, without building the guard and its text for
        # every domain of an in-process enumeration (one fetch each, issue 16).
        try:
            text = fetch_xml_text(ref, flags)
        except libvirt.libvirtError as exc:
            raise ref.host.translate(
                exc, f"getting the XML of domain {ref.name!r}") from None
    doc = DomainXML(ref, (parse or parse_xml)(text), inactive)
    if parse is None and scope is not None:
        scope[key] = doc
    return doc


def prefetch_xml(refs: Iterable[DomainRef], inactive: bool = False) -> None:
    """Fetch and parse the XML of many domains into the request scope.

    Through a daemon the fetches run ahead on a helper thread of the connection
    (:func:`iter_domain_xml`); for in-process drivers they run inline.  Domains that
    vanished meanwhile are skipped (domain_xml raises DomainNotFound for them later)."""
    scope = current_scope()
    if scope is None:
        return
    todo = [r for r in refs if _xml_key(r, inactive) not in scope]
    if len(todo) < 8 or todo[0].host.in_process:
        return  # domain_xml() fetches them one by one as they are needed
    # Fetched XML_READ_AHEAD ahead, parsed and kept in the request scope; vanished
    # domains are skipped.
    for _doc in iter_domain_xml(todo, inactive):
        pass


#: XML fetched ahead through a daemon: the documents of the next batch are fetched while
#: the caller works on those of the current one.  The first batch is a single document, so
#: that the first instances go out at once; then XML_READ_AHEAD, twice as many each time up
#: to XML_READ_AHEAD_MAX (a batch is a hand-off between threads).  A batch is fetched by
#: XML_FETCHERS helpers side by side (one call at a time each; libvirtd serves 5 calls of
#: a client at once by default), the event loop held still meanwhile (virt.loophold:
#: without that, calls in flight side by side woke it tens of times per call).
XML_READ_AHEAD = 8
XML_READ_AHEAD_MAX = 128
XML_FETCHERS = 4


def iter_domain_xml(refs: list[DomainRef], inactive: bool = False,
                    window: int = XML_READ_AHEAD, release: bool = False,
                    parse: Optional[Callable[[str], Any]] = None) -> Iterator["DomainXML"]:
    """The parsed XML of each domain of `refs`, in order; vanished domains are skipped.

    Through a daemon, the next `window` documents are fetched on a helper of the
    connection, one call after the other, while the caller works on the documents
    already there (fetching, parsing and building instances overlap); in-process
    drivers inline (_iter_in_process).  Documents are memoized in the request scope like
    :func:`domain_xml`; with `release` (a caller that makes the request's only pass
    over these domains), those this loop parsed are forgotten once the caller moves on
    to the next, so that a pass over 10,000 domains holds a few documents, not all of
    them (issue 16).  Documents the request had before stay, and all of them when the
    request comes in parts (virt.scope.IN_PARTS).  `parse`: as domain_xml's.
    """
    scope = current_scope()
    release = release and only_pass(scope)
    if scope is not None and len(refs) > 1 and refs[0].host.in_process:
        yield from _iter_in_process(refs, inactive, release, parse, scope)
        return
    if scope is None or not refs or refs[0].host.in_process:
        for ref in refs:
            key = _xml_key(ref, inactive)
            fresh = release and scope is not None and key not in scope
            try:
                parsed = domain_xml(ref, inactive, parse)
            except DomainNotFound:
                continue
            yield parsed
            if fresh and scope is not None:
                scope.pop(key, None)
        return
    flags = XML_FLAGS | (XML_INACTIVE if inactive else 0)

    # The helper only fetches (libvirt releases the GIL during the call); the
    # documents are parsed here: parsing in the helpers costs more in GIL
    # hand-offs than it saves.  The helpers are the connection's (Host.submit):
    # a hung host holds only its own threads, and the wait has its deadline.
    def fetch(batch: list[DomainRef]) -> dict[tuple, tuple[Optional[str], Any]]:
        out: dict[tuple, tuple[Optional[str], Any]] = {}
        with loop_held():       # no event-loop wake-ups per call (virt.loophold)
            for ref in batch:
                try:
                    out[_xml_key(ref, inactive)] = (fetch_xml_text(ref, flags, True), None)
                except libvirt.libvirtError as exc:
                    out[_xml_key(ref, inactive)] = (None, exc)
        return out

    todo = iter(refs)

    def start(size: int) -> Optional[tuple[list, Any]]:
        """Submit the fetch of the next `size` documents not in the scope yet."""
        batch: list[DomainRef] = []
        while len(batch) < size:
            ref = next(todo, None)
            if ref is None:
                break
            batch.append(ref)
        if not batch:
            return None
        missing = [r for r in batch if _xml_key(r, inactive) not in scope]
        n = min(XML_FETCHERS, len(missing))
        return batch, [batch[0].host.submit(fetch, missing[i::n], on=batch[0].dom)
                       for i in range(n)]

    current = start(1)
    while current is not None:
        batch, futs = current
        fetched: dict[tuple, tuple[Optional[str], Any]] = {}
        for fut in futs:
            fetched.update(fut.result())
        current = start(max(1, window))   # after this batch's calls
        window = min(window * 2, max(window, XML_READ_AHEAD_MAX))
        for ref in batch:
            key = _xml_key(ref, inactive)
            doc = scope.get(key)
            if doc is not None:
                yield doc
                continue
            if key not in fetched:
                # In the scope when the batch started, let go since: fetched again.
                try:
                    yield domain_xml(ref, inactive, parse)
                except DomainNotFound:
                    pass
                continue
            doc = _parsed(ref, fetched[key], inactive, parse, scope, key)
            if doc is None:
                continue
            yield doc
            if release:
                scope.pop(key, None)


def _parsed(ref: DomainRef, got: tuple, inactive: bool, parse: Optional[Callable[[str], Any]],
            scope: dict, key: tuple) -> Optional["DomainXML"]:
    """The document of a fetched ``(text, None)``, kept unless `parse`; None for ``(None,
    error)`` of a domain gone meanwhile, any other error raised as the layer's."""
    text, exc = got
    if text is None:
        err = ref.host.translate(exc, f"getting the XML of domain {ref.name!r}")
        if isinstance(err, DomainNotFound):
            return None
        raise err
    doc = DomainXML(ref, (parse or parse_xml)(text), inactive)
    if parse is None:
        scope[key] = doc
    return doc


#: Texts of an in-process driver's domains fetched at once by iter_domain_xml.
IN_PROCESS_BATCH = 32


def _fetch_texts(refs: list[DomainRef], which: list[int], flags: int) -> dict[int, tuple]:
    """{i: (text, None) or (None, libvirt error)} of refs[i] for each i of `which`."""
    out: dict[int, tuple] = {}
    for i in which:
        try:
            out[i] = (fetch_xml_text(refs[i], flags, True), None)
        except libvirt.libvirtError as exc:
            out[i] = (None, exc)
    return out


def _iter_in_process(refs: list[DomainRef], inactive: bool, release: bool,
                     parse: Optional[Callable[[str], Any]], scope: dict) -> Iterator["DomainXML"]:
    """:func:`iter_domain_xml` of an in-process driver in a request: the texts of the
    next :data:`IN_PROCESS_BATCH` domains fetched in one hop (Host.submit: here, at
    once, counted in the connection once; the raw objects' XMLDesc without the proxy's
    bookkeeping per call, issue 16), parsed as the caller asks for them.  What the
    request has (a document, a text read ahead unparsed) comes from domain_xml."""
    flags = XML_FLAGS | (XML_INACTIVE if inactive else 0)
    host = refs[0].host
    for start in range(0, len(refs), IN_PROCESS_BATCH):
        batch = refs[start:start + IN_PROCESS_BATCH]
        keys: list[tuple] = []
        todo: list[int] = []
        for i, ref in enumerate(batch):
            keys.append(_xml_key(ref, inactive))
            if keys[i] not in scope and _text_key(ref, inactive) not in scope:
                todo.append(i)
        fetched = host.submit(_fetch_texts, batch, todo, flags, on=batch[0].dom).result() \
            if todo else {}
        for i, ref in enumerate(batch):
            key, got = keys[i], fetched.get(i)
            doc = scope.get(key)
            if doc is not None:
                yield doc
                continue
            if got is None:
                # Let go since the batch began, or a text read ahead: domain_xml's.
                try:
                    doc = domain_xml(ref, inactive, parse)
                except DomainNotFound:
                    continue
            else:
                doc = _parsed(ref, got, inactive, parse, scope, key)
                if doc is None:
                    continue
            yield doc
            if release:
                scope.pop(key, None)


class DomainXML:
    """A parsed domain definition with indexes of its settings and devices."""

    __slots__ = ("ref", "root", "inactive", "_settings", "_by_devid", "_by_kind", "_devices",
                 "_devices_by_id", "_root_view")

    def __init__(self, ref: DomainRef, root: Any, inactive: bool = False):
        self.ref, self.root, self.inactive = ref, root, inactive
        self._settings: Optional[list[Setting]] = None
        self._by_devid: Optional[dict[str, Setting]] = None
        self._by_kind: Optional[dict[str, list[Setting]]] = None
        self._devices: Optional[list[LogicalDevice]] = None
        self._devices_by_id: Optional[dict[tuple[str, str], LogicalDevice]] = None
        self._root_view: Any = None

    @property
    def host(self) -> Host:
        return self.ref.host

    @property
    def name(self) -> str:
        return self.ref.name

    def settings(self) -> list[Setting]:
        """Every setting (RASD) of the domain."""
        if self._settings is None:
            self._settings = scan_settings(self.root, root_view=self.root_view)
        return self._settings

    @property
    def root_view(self) -> Any:
        """A read cache (mapping.View) of the ``<domain>`` element."""
        if self._root_view is None:
            self._root_view = View(self.root)
        return self._root_view

    def settings_of(self, kind_name: str) -> list[Setting]:
        """The settings of one kind, in document order (a copy)."""
        return list(self.settings_by_kind().get(kind_name, ()))

    def settings_by_kind(self) -> dict[str, list[Setting]]:
        """{kind name: its settings in document order}, kinds without one left out: the
        index itself, not a copy (not to be changed; an enumeration of every RASD looks
        each kind up in it, issue 16)."""
        if self._by_kind is None:
            by_kind: dict[str, list[Setting]] = {}
            for s in self.settings():
                by_kind.setdefault(s.kind.name, []).append(s)
            self._by_kind = by_kind
        return self._by_kind

    def setting(self, devid: str) -> Optional[Setting]:
        if self._by_devid is None:
            self._by_devid = {s.devid: s for s in self.settings()}
        return self._by_devid.get(devid)

    def devices(self) -> list[LogicalDevice]:
        """Every logical device (one Processor per vCPU)."""
        if self._devices is None:
            self._devices = logical_devices(self.settings())
        return self._devices

    def devices_of(self, kind_name: str) -> list[LogicalDevice]:
        return [d for d in self.devices() if d.kind.name == kind_name]

    def device(self, kind_name: str, devid: str) -> Optional[LogicalDevice]:
        if self._devices_by_id is None:
            self._devices_by_id = {(d.kind.name, d.devid): d for d in self.devices()}
        return self._devices_by_id.get((kind_name, devid))

    def context(self) -> "DeviceContext":
        """The ctx argument the mapping fields get (host-level facts, memoized per request).

        A new one per call, not kept here: it holds the document, and a document holding
        it was a reference cycle, so that every domain of an enumeration (its tree, its
        settings, their elements: some 50 objects) outlived its use until a collection
        of the garbage collector found it (issue 16, stop 21: 5 to 6 collections of
        10,000 objects each per enumeration of 1000 guests, 30-80 ms)."""
        return DeviceContext(self)

    def invalidate(self) -> None:
        """Forget the indexes after the tree was edited (writes)."""
        self._settings = self._by_devid = self._by_kind = self._root_view = None
        self._devices = self._devices_by_id = None

    def tostring(self) -> str:
        """The (possibly edited) document as libvirt XML text."""
        return etree.tostring(self.root, encoding="unicode")


class DeviceContext(DiskFacts):
    """What mapping fields may ask beyond the element: host facts, pools, autostart."""

    __slots__ = ("doc",)

    def __init__(self, doc: DomainXML):
        self.doc = doc
        self.host = doc.host
        # The request's pool index, asked once per context rather than twice per disk
        # (PoolID and VirtualQuantity each ask the disk's pool; issue 16, stop 23).
        self._pools = None
        self._last = None

    def autostart(self) -> bool:
        return autostart(self.doc.ref)

    def parent_controller(self, el) -> Optional[str]:
        """InstanceID of the device `el` hangs off (its controller, from its <address>): the
        first setting of the domain a kind's ``parent_of`` names; None without one."""
        for kind in scanned_kinds():
            devid = kind.parent_of(el) if kind.parent_of is not None else None
            if devid is not None and self.doc.setting(devid) is not None:
                return keys.device_id(self.host, self.doc.name, devid)
        return None


