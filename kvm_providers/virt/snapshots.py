"""Snapshots of domains, over libvirt's snapshot API (no CIM; docs/snapshots.md).

* :func:`list_snapshots` / :func:`get_snapshot`: the snapshots of a domain
  as :class:`Snapshot` values (name, parent, state, creation time, where the
  memory and disks are kept, the domain definition at snapshot time as a
  :class:`.domain.DomainXML`), memoized per request; :func:`iter_snapshots`
  the same for a single pass that lets go of each domain's snapshots once
  the caller moves on (enumerations); :func:`snapshot_names` the names
  alone (no snapshot XML).  One listing per domain and request serves all
  three.

  What libvirt asks per domain: ``listAllSnapshots`` (libvirt has no call
  for the snapshots of many domains; in an enumeration only the domains
  that have snapshots are asked, :func:`.domain.may_have_snapshots`) and
  ``snapshotCurrent``; per snapshot one ``virDomainSnapshotGetXMLDesc``
  (the listing gives names only: the XML is a call of its own - in process
  on the test driver, an RPC through libvirtd).  The definitions of a
  domain's snapshots are parsed once per distinct text: snapshots taken
  without a configuration change share one parsed definition.
* :func:`plan_create` decides *how* a snapshot of the requested type can be
  taken on this domain now, before anything is done: internal (memory and
  disks inside the qcow2 images) where every disk is qcow2 and the guest has
  no pflash firmware; external (a memory file and qcow2 overlays next to the
  images) where internal is impossible.  What cannot be done at all raises
  :class:`SnapshotNotSupported` naming the reason.
* :func:`create`, :func:`revert`, :func:`delete` do it, holding the domain's
  lock (:func:`.lifecycle.domain_lock`): snapshot operations and every other
  change of one guest are serialized.

Errors: :class:`SnapshotNotSupported` (libvirt on this host cannot: e.g.
reverting an external snapshot before libvirt 9.9), :class:`SnapshotInvalid`
(a bad name, a state in which the operation is impossible),
:class:`SnapshotNotFound` (``LookupError``).  Other libvirt failures are
raised as the host's ``guard`` raises them.
"""

from __future__ import annotations

import logging
import os
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

import libvirt
from lxml import etree

from . import jobs as vjobs
from .connection import manager, unwrap
from .errors import DomainNotFound
from .domain import DomainRef, DomainXML, lookup_now, may_have_snapshots
from .query import parse_xml, request_memo
from .scope import current_scope, only_pass
from .edit import invalidate
from .lifecycle import domain_lock, driver_name
from .loophold import loop_held
from .validate import BadName, check_name

__all__ = ["Snapshot", "CreatePlan", "SnapshotError", "SnapshotNotSupported",
           "SnapshotInvalid", "SnapshotNotFound", "list_snapshots", "get_snapshot",
           "plan_create", "create", "revert", "delete", "FULL", "DISK", "VENDOR_RUNNING",
           "VENDOR_HALT", "TYPES", "libvirt_version", "external_files", "remove_files",
           "snapshot_names", "iter_snapshots"]

# Snapshot types (CreateSnapshot's SnapshotType; 32768 and 32769 are libvirt-cim's
# vendor values: a snapshot with the guest going on, and one that stops it).
FULL = 2
DISK = 3
VENDOR_RUNNING = 32768
VENDOR_HALT = 32769
TYPES = (FULL, DISK, VENDOR_RUNNING, VENDOR_HALT)

_NOT_SUPPORTED = {libvirt.VIR_ERR_CONFIG_UNSUPPORTED, libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
                  libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED}
_INVALID = {libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_ERR_INVALID_ARG,
            libvirt.VIR_ERR_XML_ERROR}
LOG = logging.getLogger(__name__)
#: libvirt reverts external snapshots from this version on (9.9.0).
EXTERNAL_REVERT_VERSION = 9009000


class SnapshotError(Exception):
    """Base of the snapshot errors."""


class SnapshotNotSupported(SnapshotError):
    """libvirt on this host cannot do it (the message says why)."""


class SnapshotInvalid(SnapshotError, ValueError):
    """A bad parameter, or a state in which the operation is impossible."""


class SnapshotNotFound(SnapshotError, LookupError):
    """No such snapshot."""


@dataclass(frozen=True)
class Snapshot:
    """One snapshot of a domain, as libvirt describes it."""

    name: str
    parent: Optional[str]
    state: str                    # running, paused, shutoff, disk-snapshot ...
    created: int                  # seconds since the epoch
    description: Optional[str]
    memory: str                   # internal, external, no
    disks: tuple[tuple[str, str], ...]   # (target, internal | external | no)
    domain: Any = field(repr=False, compare=False)   # the <domain> element (or None)
    current: bool = False
    files: tuple[str, ...] = ()   # files of an external snapshot (memory, overlays)
    #: The definition at snapshot time (inactive), shared by the snapshots of one
    #: domain whose definitions are the same text; None if libvirt stored none.
    doc: Optional[DomainXML] = field(default=None, repr=False, compare=False)

    @property
    def location(self) -> str:
        """'internal', 'external' or 'mixed' (memory and disks together)."""
        kinds = {k for _, k in self.disks if k in ("internal", "external")}
        if self.memory in ("internal", "external"):
            kinds.add(self.memory)
        if len(kinds) > 1:
            return "mixed"
        return kinds.pop() if kinds else "internal"

    @property
    def external(self) -> bool:
        return self.location != "internal"

    @property
    def with_memory(self) -> bool:
        return self.memory in ("internal", "external")


def external_files(ref: DomainRef) -> list[str]:
    """The files libvirt made for the domain's external snapshots (memory files, overlay
    images), asked of libvirt now; [] for a driver without snapshots."""
    with ref.host.guard(f"listing the snapshots of {ref.name!r}"):
        try:
            snaps = ref.dom.listAllSnapshots(0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() in _NOT_SUPPORTED:
                return []
            raise
        out: list[str] = []
        for s in snaps:
            out.extend(_parse(ref, s, None).files)
        return out


def remove_files(ref: DomainRef, files: list[str]) -> None:
    """Remove snapshot files after their domain was destroyed (DestroySystem), on a host
    whose files are this machine's; what cannot be removed is logged, not raised."""
    if not getattr(ref.host, "files_local", False):
        return
    for path in files:
        try:
            if os.path.isfile(path) and not os.path.islink(path):
                os.unlink(path)
        except OSError as exc:
            LOG.warning("snapshot file %s of %r not removed: %s", path, ref.name, exc)


def libvirt_version(ref: DomainRef) -> int:
    """The host's libvirt version (major * 1000000 + minor * 1000 + micro)."""
    return int(ref.host.info("libversion", lambda conn: conn.getLibVersion()))


def _version_text(v: int) -> str:
    return f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}"


#: Where the <domain> element of a snapshot's XML starts (not <domainsnapshot>).
_DOMAIN_START = re.compile(r"<domain[\s>/]")


def _split(text: str) -> tuple[str, Optional[str]]:
    """(the snapshot's XML without its <domain> element, that element's text or None).

    libvirt writes one <domain> in a <domainsnapshot> and none inside it (text
    never holds a literal "<"), so the element runs from its start tag to the
    first "</domain>" after it."""
    m = _DOMAIN_START.search(text, 1)
    if m is None:
        return text, None
    end = text.find("</domain>", m.start())
    if end < 0:
        return text, None
    end += len("</domain>")
    return text[:m.start()] + text[end:], text[m.start():end]


def _xml_text(snap: Any) -> str:
    return snap.getXMLDesc(libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE)


def _parse(ref: DomainRef, snap: Any, current: Optional[str],
           defs: Optional[dict[str, DomainXML]] = None, text: Optional[str] = None,
           parse: Callable[[str], Any] = parse_xml) -> Snapshot:
    """The Snapshot of libvirt snapshot object `snap`: one getXMLDesc (none when its
    `text` was fetched ahead; `snap` is then the snapshot object or its name).

    `defs` ({definition text: DomainXML}) holds the definitions of the domain's
    snapshots parsed so far: a snapshot whose definition is the same text gets
    the same parsed document (snapshots taken without a configuration change
    mostly are), so that it is parsed and read once.  `parse` parses the definition
    (domain_facts: a partial tree for an enumeration)."""
    if text is None:
        text = _xml_text(snap)
    head, dom_text = _split(text)
    doc: Optional[DomainXML] = None
    try:
        root = parse_xml(head)
        if dom_text is not None:
            doc = defs.get(dom_text) if defs is not None else None
            if doc is None:
                doc = DomainXML(ref, parse(dom_text), True)
                if defs is not None:
                    defs[dom_text] = doc
    except etree.XMLSyntaxError:
        # Not the shape above (e.g. a namespace declared outside <domain>): the whole.
        root = parse_xml(text)
        el = root.find("domain")
        doc = DomainXML(ref, el, True) if el is not None else None
    # One pass over the snapshot's elements (each find() walks lxml's ElementPath: a
    # dozen of them cost more than the rest of the snapshot's parse).
    first: dict[Any, Any] = {}
    disk_els: list[Any] = []
    for child in root:
        if child.tag == "disks":
            disk_els.extend(d for d in child if d.tag == "disk")
        elif child.tag not in first:
            first[child.tag] = child

    def text_of(tag: str) -> Optional[str]:
        el = first.get(tag)
        return None if el is None else (el.text or "")

    mem = first.get("memory")
    disks = tuple((d.get("name", ""), d.get("snapshot", "internal")) for d in disk_els)
    name = text_of("name") or (snap if isinstance(snap, str) else snap.getName())
    files = [mem.get("file")] if mem is not None and mem.get("snapshot") == "external" else []
    files += [d.find("source").get("file") for d in disk_els
              if d.get("snapshot") == "external" and d.find("source") is not None]
    parent = first.get("parent")
    return Snapshot(name=name, parent=parent.findtext("name") if parent is not None else None,
                    files=tuple(f for f in files if f),
                    state=text_of("state") or "",
                    created=int(text_of("creationTime") or 0),
                    description=text_of("description"),
                    memory=mem.get("snapshot", "no") if mem is not None else "no",
                    disks=disks, domain=doc.root if doc is not None else None,
                    current=name == current, doc=doc)


def _listing(ref: DomainRef) -> list[Any]:
    """The domain's libvirt snapshot objects, parents before children (one
    listAllSnapshots per domain and request, shared by names and snapshots)."""
    def compute() -> list[Any]:
        with ref.host.guard(f"listing the snapshots of {ref.name!r}"):
            try:
                return list(ref.dom.listAllSnapshots(
                    libvirt.VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL))
            except libvirt.libvirtError as exc:
                if exc.get_error_code() in _NOT_SUPPORTED:
                    return []        # a driver without snapshots has none
                raise
    if not may_have_snapshots(ref):
        return []
    return request_memo(_listing_key(ref), compute)


def _listing_key(ref: DomainRef) -> tuple:
    return ("virt.snapshot_objs", ref.host.label, ref.host.generation, ref.uuid)


def _snapshots_key(ref: DomainRef) -> tuple:
    return ("virt.snapshots", ref.host.label, ref.host.generation, ref.uuid)


#: Snapshot XML fetched ahead through a daemon: this many calls at once, one less than
#: the requests libvirtd serves one client at a time (max_client_requests, 5 by
#: default).  Measured for snapshots (issue 13, 1000 guests x 5 snapshots): 4 in flight
#: took 2.45 s against 3.16 s one at a time.  Domain XML is read one call at a time in
#: batches instead (domain.XML_READ_AHEAD: there, calls in flight cost more CPU than they
#: saved).
SNAPSHOT_READ_AHEAD = 4


def _current_name(ref: DomainRef) -> Optional[str]:
    try:
        return ref.dom.snapshotCurrent(0).getName()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
            raise
        return None


def _read(ref: DomainRef, parse: Callable[[str], Any] = parse_xml) -> list[Snapshot]:
    objs = _listing(ref)
    if not objs:
        return []
    texts: list[Optional[str]] = [None] * len(objs)
    with ref.host.guard(f"listing the snapshots of {ref.name!r}"):
        if len(objs) > 1 and not ref.host.in_process:
            # through a daemon each call is a round trip: the current snapshot and the
            # snapshots' XML asked for together, SNAPSHOT_READ_AHEAD at a time
            # (libvirt releases the GIL during the calls), instead of one after the other
            calls = [ref.host.submit(_current_name, ref, on=ref.dom)]
            for start in range(0, len(objs), SNAPSHOT_READ_AHEAD):
                part = [(i, ref.host.submit(_xml_text, objs[i], on=ref.dom))
                        for i in range(start, min(start + SNAPSHOT_READ_AHEAD, len(objs)))]
                for i, fut in part:
                    texts[i] = fut.result()
            current = calls[0].result()
        else:
            current = _current_name(ref)
        defs: dict[str, DomainXML] = {}
        return [_parse(ref, s, current, defs, t, parse)
                for s, t in zip(objs, texts, strict=True)]


def _fetch_domain(ref: DomainRef) -> tuple[list[str], Optional[str], list[str]]:
    """A domain's snapshot names, current snapshot and snapshot XML texts, asked of the
    raw libvirt objects: run by :meth:`.connection.Host.submit` (on a helper of the
    connection through a daemon, inline for in-process drivers), which counts the
    whole function in the connection, so that its 2 + N calls cost one hop and no
    proxy work per call (issue 13).  The snapshot objects are let go here: freeing one
    waits on the connection (5000 of them cost the enumerating thread a third of a
    second).  Through a daemon the calls hold the event loop still (:mod:`.loophold`)."""
    if ref.host.in_process:
        return _fetch_calls(ref)
    with loop_held():
        return _fetch_calls(ref)


def _fetch_calls(ref: DomainRef) -> tuple[list[str], Optional[str], list[str]]:
    dom = unwrap(ref.dom)
    try:
        objs = list(dom.listAllSnapshots(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL))
    except libvirt.libvirtError as exc:
        if exc.get_error_code() in _NOT_SUPPORTED:
            return [], None, []
        raise
    if not objs:
        return [], None, []
    names = [o.getName() for o in objs]
    flags = libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE
    texts = [o.getXMLDesc(flags) for o in objs]
    try:
        current: Optional[str] = dom.snapshotCurrent(0).getName()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
            raise
        current = None
    del objs
    return names, current, texts


def list_snapshots(ref: DomainRef) -> list[Snapshot]:
    """The domain's snapshots, parents before children (memoized per request)."""
    return request_memo(_snapshots_key(ref), lambda: _read(ref))


def iter_snapshots(refs: list[DomainRef], release: bool = False,
                   parse: Optional[Callable[[str], Any]] = None
                   ) -> Iterator[tuple[DomainRef, list[Snapshot]]]:
    """(domain, its snapshots) of each domain of `refs` that has some, in order.

    As :func:`list_snapshots`; with `release` (a caller making the request's only
    pass over these domains, an enumeration) the snapshots this loop read are
    forgotten once the caller moves on to the next domain, so that a pass over
    thousands of snapshots holds those of one domain, not all of them (the
    snapshots the request had before stay).  `parse`: the definitions' parser
    (domain_facts: partial trees; snapshots read with it are not kept)."""
    scope = current_scope()
    release = release and only_pass(scope)       # kept for the other parts of a request
    if scope is None or not refs:
        for ref in refs:
            key = _snapshots_key(ref)
            fresh = release and scope is not None and key not in scope
            snaps = list_snapshots(ref) if parse is None else _read(ref, parse)
            if snaps:
                yield ref, snaps
            if fresh and scope is not None:
                scope.pop(key, None)
        return
    yield from _iter_ahead(scope, [r for r in refs if may_have_snapshots(r)], release,
                           parse)


def _iter_ahead(scope: Any, refs: list[DomainRef], release: bool,
                parse: Optional[Callable[[str], Any]] = None
                ) -> Iterator[tuple[DomainRef, list[Snapshot]]]:
    """iter_snapshots in a request: through a daemon the snapshots of SNAPSHOT_READ_AHEAD
    domains are fetched at once on the connection's helpers (listing, current
    snapshot, XML: one round trip after the other inside a domain, domains side by
    side), while this thread parses and the caller builds instances (issue 13: 5000
    snapshots were 7000 round trips one after the other).  In-process drivers run the
    same fetch inline, one counted section per domain (:func:`_fetch_domain`)."""
    pending: deque = deque()
    todo = iter(refs)

    def refill() -> None:
        while len(pending) < SNAPSHOT_READ_AHEAD:
            ref = next(todo, None)
            if ref is None:
                return
            key = _snapshots_key(ref)
            pending.append((ref, key, None if key in scope
                            else ref.host.submit(_fetch_domain, ref, on=ref.dom)))

    refill()
    while pending:
        ref, key, fut = pending.popleft()
        refill()
        if fut is None:
            snaps = scope.get(key) or []
        else:
            try:
                names, current, texts = fut.result()
            except libvirt.libvirtError as exc:
                err = ref.host.translate(exc, f"listing the snapshots of {ref.name!r}")
                if isinstance(err, DomainNotFound):
                    continue
                raise err from exc
            defs: dict[str, DomainXML] = {}
            snaps = [_parse(ref, n, current, defs, t, parse or parse_xml)
                     for n, t in zip(names, texts, strict=True)]
            if parse is None:
                scope[key] = snaps
        if snaps:
            yield ref, snaps
        if release and fut is not None:
            scope.pop(key, None)


def snapshot_names(ref: DomainRef) -> list[str]:
    """The names of the domain's snapshots, parents before children, without their XML
    (names are local to the snapshot objects: the domain's one listing call)."""
    return [str(s.getName()) for s in _listing(ref)]


def get_snapshot(ref: DomainRef, name: str) -> Optional[Snapshot]:
    """The snapshot `name` of the domain, or None."""
    for snap in list_snapshots(ref):
        if snap.name == name:
            return snap
    return None


# -- creating ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class CreatePlan:
    """How a snapshot will be taken: the XML and flags for libvirt, and why."""

    xml: str
    flags: int
    location: str          # internal | external
    memory: bool           # memory state included
    reason: str            # why this location (for the job's description and the docs)
    name: Optional[str]
    files: tuple[str, ...] = ()    # files libvirt will create (external snapshots)


def _disks(root: Any) -> list[tuple[str, Optional[str], Optional[str], bool]]:
    """(target, format, source file, snapshot-able) of the domain's disks."""
    out = []
    for disk in root.findall("devices/disk"):
        target = disk.find("target")
        dev = target.get("dev") if target is not None else None
        if not dev:
            continue
        drv = disk.find("driver")
        fmt = drv.get("type") if drv is not None else None
        src = disk.find("source")
        path = None
        if src is not None:
            path = src.get("file") or src.get("dev") or src.get("volume")
        ok = disk.get("device", "disk") in ("disk", "lun") and disk.find("readonly") is None \
            and path is not None
        out.append((dev, fmt, path, ok))
    return out


def plan_create(ref: DomainRef, snapshot_type: int, name: Optional[str] = None,
                description: Optional[str] = None) -> CreatePlan:
    """How to take a snapshot of type `snapshot_type` now; raises if it cannot be taken."""
    if snapshot_type not in TYPES:
        raise SnapshotNotSupported(f"SnapshotType {snapshot_type} is not supported (2 Full, "
                                   f"3 Disk, 32768, 32769)")
    if name is not None:
        try:
            name = check_name(name, "snapshot name")
        except BadName as exc:
            raise SnapshotInvalid(str(exc)) from None
        if get_snapshot(ref, name) is not None:
            raise SnapshotInvalid(f"{ref.name!r} has a snapshot named {name!r} already")
    with ref.host.guard(f"reading {ref.name!r} for a snapshot"):
        active = bool(ref.dom.isActive())
        root = etree.fromstring(ref.dom.XMLDesc(0).encode())
    if snapshot_type == VENDOR_HALT and not active:
        raise SnapshotInvalid(f"{ref.name!r} is not running: SnapshotType 32769 (snapshot "
                              "and stop) needs a running system")
    disks = _disks(root)
    pflash = any(ld.get("type") == "pflash" for ld in root.findall("os/loader"))
    raw = [dev for dev, fmt, _p, ok in disks if ok and fmt != "qcow2"]
    want_memory = active and snapshot_type != DISK
    internal_possible = not raw and not pflash and not (active and snapshot_type == DISK)
    test_driver = driver_name(ref.host) == "TEST"
    if test_driver:
        # libvirt's test driver keeps every snapshot as metadata (it has no images)
        internal_possible, raw, pflash = True, [], False
    flags = 0
    if snapshot_type == VENDOR_HALT:
        flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_HALT
    el = etree.Element("domainsnapshot")
    if name is not None:
        etree.SubElement(el, "name").text = name
    if description:
        etree.SubElement(el, "description").text = description
    files: list[str] = []
    if internal_possible:
        location = "internal"
        reason = "the test driver's snapshots are metadata" if test_driver else \
            "every disk is qcow2" if disks else "the system has no disk"
    else:
        location = "external"
        why = []
        if raw:
            why.append(f"disk(s) {', '.join(raw)} are not qcow2")
        if pflash:
            why.append("the system boots UEFI firmware from pflash")
        if active and snapshot_type == DISK:
            why.append("a disk-only snapshot of a running system")
        reason = "; ".join(why)
        label = name or "snapshot"
        if want_memory:
            first = next((p for _d, _f, p, ok in disks if ok and p and os.path.isabs(p)), None)
            if first is None:
                raise SnapshotNotSupported(f"an external snapshot of {ref.name!r} needs a "
                                           "file disk to put its memory file next to")
            mem = os.path.join(os.path.dirname(first), f"{ref.name}.{label}.mem")
            etree.SubElement(el, "memory", snapshot="external", file=mem)
            files.append(mem)
        else:
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
        dl = etree.SubElement(el, "disks")
        for dev, _fmt, path, ok in disks:
            etree.SubElement(dl, "disk", name=dev, snapshot="external" if ok else "no")
            if ok and path:
                files.append(f"{path}.{label}")
    return CreatePlan(xml=etree.tostring(el, encoding="unicode"), flags=flags,
                      location=location, memory=want_memory, reason=reason, name=name,
                      files=tuple(files))


def _call(ref: DomainRef, what: str, func: Callable[[], Any]) -> Any:
    """A snapshot call: libvirt's "cannot" and "not now" as snapshot errors."""
    try:
        return func()
    except libvirt.libvirtError as exc:
        code = exc.get_error_code()
        msg = exc.get_error_message() or str(exc)
        if code in _NOT_SUPPORTED:
            raise SnapshotNotSupported(f"{what}: libvirt {_version_text(libvirt_version(ref))} "
                                       f"on host {ref.host.label!r}: {msg}") from None
        if code == libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
            raise SnapshotNotFound(f"{what}: {msg}") from None
        if code in _INVALID:
            raise SnapshotInvalid(f"{what}: {msg}") from None
        raise ref.host.translate(exc, what) from None
    finally:
        invalidate(ref.host, ref.uuid)


def create(ref: DomainRef, plan: CreatePlan) -> str:
    """Take the snapshot (blocking; call it in a job); its name."""
    with domain_lock(ref):
        snap = _call(ref, f"creating a snapshot of {ref.name!r}",
                     lambda: ref.dom.snapshotCreateXML(plan.xml, plan.flags))
        return str(snap.getName())


def _lookup(ref: DomainRef, name: str) -> Any:
    return _call(ref, f"snapshot {name!r} of {ref.name!r}",
                 lambda: ref.dom.snapshotLookupByName(name, 0))


def check_revert(ref: DomainRef, snap: Snapshot) -> None:
    """Raise SnapshotNotSupported if libvirt on the host cannot revert to `snap`."""
    if snap.external and libvirt_version(ref) < EXTERNAL_REVERT_VERSION:
        raise SnapshotNotSupported(
            f"snapshot {snap.name!r} of {ref.name!r} is external: reverting external "
            f"snapshots needs libvirt {_version_text(EXTERNAL_REVERT_VERSION)}, host "
            f"{ref.host.label!r} has {_version_text(libvirt_version(ref))}")


def revert(ref: DomainRef, name: str) -> None:
    """Revert the domain to snapshot `name`: its definition becomes the snapshot's, its
    state the snapshot's state (blocking)."""
    with domain_lock(ref):
        snap = get_snapshot_now(ref, name)
        check_revert(ref, snap)
        obj = _lookup(ref, name)
        _call(ref, f"reverting {ref.name!r} to snapshot {name!r}",
              lambda: ref.dom.revertToSnapshot(obj, 0))


def get_snapshot_now(ref: DomainRef, name: str) -> Snapshot:
    """The snapshot asked of libvirt now (no request memo); SnapshotNotFound if none."""
    obj = _lookup(ref, name)
    current = None
    try:
        current = ref.dom.snapshotCurrent(0).getName()
    except libvirt.libvirtError:
        pass
    return _parse(ref, obj, current)


def delete(ref: DomainRef, name: str, children: bool = False) -> list[str]:
    """Delete snapshot `name` (its children are re-parented to its parent), or with
    `children` the whole subtree; the names deleted."""
    with domain_lock(ref):
        obj = _lookup(ref, name)
        gone = [name]
        if children:
            gone += [c.getName() for c in _call(
                ref, f"listing the children of snapshot {name!r}",
                lambda: obj.listAllChildren(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_DESCENDANTS))]
        # libvirt merges the overlays of external snapshots it deletes, but leaves their
        # memory files: those go too
        memory = [f for n in gone for f in _memory_files(ref, n)]
        flags = libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN if children else 0
        _call(ref, f"deleting snapshot {name!r} of {ref.name!r}", lambda: obj.delete(flags))
        remove_files(ref, memory)
        return gone


def _memory_files(ref: DomainRef, name: str) -> list[str]:
    try:
        snap = get_snapshot_now(ref, name)
    except SnapshotError:
        return []
    return [f for f in snap.files if f.endswith(".mem")] if snap.memory == "external" else []


def _resolve_create(ctx: vjobs.JobContext) -> dict:
    """A CreateSnapshot job that ran while the server stopped: the snapshot exists (done)
    or not (failed)."""
    job = ctx.job
    host = manager().host(job.host)
    ref = lookup_now(host, job.domain) if host is not None and job.domain else None
    name = job.params.get("snapshot")
    if ref is None or not isinstance(name, str):
        raise vjobs.JobFailed("the server restarted while the job ran, and the system is "
                              "gone: the outcome cannot be known", vjobs.ERR_UNKNOWN)
    try:
        get_snapshot_now(ref, name)
    except SnapshotNotFound:
        raise vjobs.JobFailed(f"snapshot {name!r} was not made (the server restarted while "
                              "the job ran)") from None
    return {"snapshot": name}


#: The resolver name CreateSnapshot jobs give (virt.jobs.register_resolver).
CREATE_RESOLVER = "snapshot-create"
vjobs.register_resolver(CREATE_RESOLVER, _resolve_create)
