"""Low-level queries of the libvirt layer, shared by its modules: the request memo,
calls a driver may not support, safe XML parsing, and the host's storage pools.

It imports nothing of the layer but the connection, so that every other module
(domain, validate, pools, nwfilter, ...) can use it without import cycles.
"""

from __future__ import annotations

import bisect
import os
import stat
import threading
import time
from typing import Any, Callable, Collection, Optional

import libvirt
from lxml import etree

from .scope import current_scope
from .connection import STORAGE_GONE, Host
from .errors import VirtError
from .link import Guarded, Pending, link_of, unwrap
from .loophold import loop_held

__all__ = ["parse_xml", "request_memo", "if_supported", "storage_pools", "pool_volumes",
           "pool_volume_keys", "prefetch_storage",
           "volume_capacity", "VolumeSizes"]

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
#: The helpers' own (a parser is used by one thread at a time: lxml locks it).
_SIDE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


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
    """[(pool name, target path, pool object)] of the host (once per request).

    The answers of :func:`prefetch_storage`, when the request started it, else asked
    now; either way each libvirt error means what it meant when asked here."""
    def compute() -> list[tuple[str, Optional[str], Any]]:
        ahead = scope.pop(_ahead_key(host), None) if scope is not None else None
        got: Optional[_Ahead] = ahead.result() if ahead is not None else None
        if got is not None and scope is not None:
            scope[_got_key(host)] = got     # the volume names and stamps, for later
        if got is None:
            pools = if_supported(host, "listing storage pools",
                                 lambda c: c.listAllStoragePools(0))
            items = [(p, p.name(), None) for p in pools or []]
        else:
            pools = if_supported(host, "listing storage pools", lambda _c: _answer(got.pools))
            link = link_of(host.conn())
            items = [(Guarded(p, link) if link is not None else p, n, x)
                     for p, n, x in pools or []]
        out = []
        for p, name, xml in items:
            # A pool undefined since the listing has no path; any other failure fails
            # the request (a pool without its path would hide the disks in it).
            text = host.ask(f"reading the XML of storage pool {name!r}",
                            p.XMLDesc if xml is None else _answer, 0 if xml is None else xml,
                            absent=STORAGE_GONE)
            root = parse_xml(text) if text is not None else None
            path = root.findtext("target/path") if root is not None else None
            out.append((name, path.rstrip("/") if path else None, p))
            if root is not None and root.get("type") in _FILE_POOLS and path and \
                    path.rstrip("/") and scope is not None:
                scope[("virt.filepool", host.label, host.generation, name)] = path
        return out
    scope = current_scope()
    return request_memo(("virt.pools", host.label, host.generation), compute)


def _answer(value: Any) -> Any:
    """`value`, or raised if it is the exception a call ended with."""
    if isinstance(value, BaseException):
        raise value
    return value


class _Ahead:
    """What :func:`prefetch_storage` read on a helper: the pools (raw object, name and XML
    text or the libvirt error of each read), or the listing's error; per file pool the
    names of its volumes (or the error) and, by target path, the stamps of its
    directory's files (being taken on another helper: ``result()``)."""

    __slots__ = ("pools", "names", "stamps")

    def __init__(self) -> None:
        self.pools: Any = []
        self.names: dict[str, Any] = {}
        self.stamps: dict[str, Pending] = {}


def _ahead_key(host: Host) -> tuple:
    return ("virt.storageahead", host.label, host.generation)


def _got_key(host: Host) -> tuple:
    return ("virt.storagegot", host.label, host.generation)


def _got(scope: Optional[dict], host: Host) -> Optional[_Ahead]:
    return scope.get(_got_key(host)) if scope is not None else None


def prefetch_storage(host: Host) -> None:
    """Start reading, on a helper of the connection, what the disks of an enumeration
    will ask of the host's storage (issue 16, stop 24): the pools and their XML and, for
    each file-based pool, the stamps of its directory's files and (while sizes are kept)
    the names of its volumes.  Called before the domains are listed, these calls run
    while the domains are listed and their first XML is read, instead of one after the
    other at the first disk while the request's thread waits (8-20 ms through libvirtd
    with 2000 volumes).  :func:`storage_pools`, :func:`pool_volume_keys` and
    :func:`volume_capacity` take the answers (each error as if asked then); nothing is
    started outside a request, for in-process drivers, or when the request has the
    pools already."""
    scope = current_scope()
    key = _ahead_key(host)
    if scope is None or host.in_process or key in scope or \
            ("virt.pools", host.label, host.generation) in scope:
        return
    try:
        sizes = volume_sizes(host)
        conn = host.conn()
        scope[key] = host.submit(_read_ahead, unwrap(conn), link_of(conn), sizes is not None,
                                 sizes is not None and sizes.kept(), on=conn)
    except VirtError:
        return      # the host is away: the request's own calls say so


def _read_ahead(conn: Any, link: Any, stamps: bool, names: bool) -> _Ahead:
    """The calls of :func:`prefetch_storage`, on a helper; libvirt errors are kept (tagged
    with their connection, as a hop's are) for the request to meet where it asks."""
    got = _Ahead()

    def kept(exc: libvirt.libvirtError) -> libvirt.libvirtError:
        exc.kvmp_link = link  # type: ignore[attr-defined]
        return exc
    with loop_held():
        try:
            pools = conn.listAllStoragePools(0)
        except libvirt.libvirtError as exc:
            got.pools = kept(exc)
            return got
        for p in pools:
            name = p.name()
            try:
                text = p.XMLDesc(0)
            except libvirt.libvirtError as exc:
                got.pools.append((p, name, kept(exc)))
                continue
            got.pools.append((p, name, text))
            try:
                root = etree.fromstring(text.encode("utf-8"), _SIDE_PARSER)
            except etree.XMLSyntaxError:
                continue        # the request's own parse fails it
            target = (root.findtext("target/path") or "").rstrip("/")
            if root.get("type") not in _FILE_POOLS or not target:
                continue
            if stamps:
                # On another helper, while the names are listed here (not one after the
                # other); volume_capacity waits for them as for its own walk.
                got.stamps[target] = Pending(link, link.submit(_stamp_dir, target)) \
                    if link is not None else Pending(None, value=_stamp_dir(target))
            if names:
                try:
                    got.names[name] = p.listVolumes()
                except libvirt.libvirtError as exc:
                    got.names[name] = kept(exc)
    return got


#: Pool types whose volumes are the files of the target directory, keyed by their path:
#: libvirt's file system backend makes each volume's key "<target path>/<name>".
_FILE_POOLS = frozenset({"dir", "fs", "netfs"})


def pool_volume_keys(host: Host, name: str, pool: Any) -> Collection[str]:
    """The volume keys of storage pool `name` (`pool`: its proxy), once per request,
    without the volume objects where they are not needed (issue 16, stop 23).

    For a file-based pool (its target path as libvirt formats the keys, seen in
    :func:`storage_pools`) of a host whose sizes were kept before (:class:`VolumeSizes`
    holds some: the volumes' sizes will mostly need no call), the keys come from the
    volume names (``listVolumes``: 2-3 ms for 2000 volumes through libvirtd, against
    5-12 ms for ``listAllVolumes`` and its 2000 objects); :func:`pool_volumes` lists the
    objects only if a size must be asked.  Otherwise the keys of :func:`pool_volumes`.
    """
    scope = current_scope()
    target = scope.get(("virt.filepool", host.label, host.generation, name)) \
        if scope is not None else None
    objects = scope.get(("virt.poolvolumes", host.label, host.generation, name)) \
        if scope is not None else None
    sizes = volume_sizes(host) if target is not None and objects is None else None
    if sizes is None or not sizes.kept():
        return pool_volumes(host, name, pool)

    def listing() -> frozenset[str]:
        return frozenset(f"{target}/{n}" for n in unwrap(pool).listVolumes())

    def compute() -> frozenset[str]:
        got = _got(scope, host)
        ahead = got.names.pop(name, None) if got is not None else None
        if ahead is not None:       # read by prefetch_storage
            keys = host.ask(f"listing the volumes of storage pool {name!r}", _answer,
                            ahead, absent=STORAGE_GONE)
            return frozenset(f"{target}/{n}" for n in keys or ())
        keys = host.ask(f"listing the volumes of storage pool {name!r}",
                        lambda: host.submit(listing, on=pool).result(), absent=STORAGE_GONE)
        return keys or frozenset()
    return request_memo(("virt.poolvolumekeys", host.label, host.generation, name), compute)


def pool_volumes(host: Host, name: str, pool: Any) -> dict[str, Any]:
    """{volume key: raw libvirt volume object} of storage pool `name` (`pool`: its proxy),
    once per request.

    One ``listAllVolumes`` per pool instead of a ``storageVolLookupByPath`` per disk
    (issue 16: those lookups, one RPC each and one after another, were half of a disk
    enumeration through libvirtd).  A volume's key and name come with the listing
    (no further call); in file-based pools (dir, fs, netfs) the key is the volume's
    path.  The listing and the keys are read in ONE hop on a helper of the connection,
    and the volumes stay raw objects (no proxy, no proxied ``key()`` per volume: 2000
    of them cost some 5 % of a DiskRASD enumeration of 1000 guests, stop 23): calls on
    them go through :func:`_volume_call` or run inside a hop.  A pool gone or inactive
    since it was listed has no volumes here; callers fall back to a lookup by path for
    what the index does not hold.
    """
    def listing() -> dict[str, Any]:
        return {v.key(): v for v in unwrap(pool).listAllVolumes(0)}

    def compute() -> dict[str, Any]:
        vols = host.ask(f"listing the volumes of storage pool {name!r}",
                        lambda: host.submit(listing, on=pool).result(), absent=STORAGE_GONE)
        return vols or {}
    return request_memo(("virt.poolvolumes", host.label, host.generation, name), compute)


def _volume_call(pool: Any, vol: Any, method: str) -> Any:
    """``vol.method()`` for a raw volume of :func:`pool_volumes`, through the link of its
    pool's proxy (counted, with the host's deadline) as a proxy's call would be."""
    link = link_of(pool)
    return getattr(Guarded(vol, link) if link is not None else vol, method)()


#: Capacities asked of one pool in one request before the rest are fetched in batches:
#: a single GetInstance asks one, an enumeration asks every disk.
VOLUME_BULK_AFTER = 4
#: Volumes fetched together past that: the asked one and its neighbours in path order
#: (domains are listed by name, and disk paths mostly carry their domain's name), so
#: that the first instances of an enumeration need not wait for the whole pool.
VOLUME_BATCH = 64


class VolumeSizes:
    """Capacities of a host's file volumes kept across requests, each with the file's
    stamp (inode, size, modification and change times) when it was read.

    libvirt has no bulk call for volume sizes and no volume events: each size is a
    ``virStorageVolGetInfo``, which libvirtd answers by reading the image again (issue
    16: 2000 of them were half of a disk enumeration's time).  For a host whose paths
    are this machine's files (:attr:`Host.files_local`), a size read earlier still holds
    while ``stat`` finds the file unchanged: a resize (through libvirt or not) writes
    the file, a volume deleted and made again is another inode.  Like git's index,
    a size read while the file's change time was under :data:`VolumeSizes.SETTLE`
    seconds old is not kept (a write in the same clock tick would leave the stamp
    alike).  Kept per connection (:meth:`Host.info`: a reconnection starts afresh)
    and bounded; anything not a regular file, or not readable here, is asked of
    libvirt every request, as are the volumes of other hosts.
    """

    #: Seconds a file must have been left alone for its size to be kept.
    SETTLE = 2.0
    #: Sizes kept per host at most (then the cache starts afresh).
    LIMIT = 200_000

    def __init__(self) -> None:
        self._sizes: dict[str, tuple[tuple, int]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def stamp(path: str) -> Optional[tuple]:
        """The stamp of a regular file at `path`; None if there is none (or no access)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def kept(self) -> bool:
        """True if any size is kept (a request before read sizes that stay valid)."""
        return bool(self._sizes)

    def get(self, path: str, stamp: Optional[tuple]) -> Optional[int]:
        """The size kept for `path` if its file still has `stamp`, else None."""
        if stamp is None:
            return None
        hit = self._sizes.get(path)
        return hit[1] if hit is not None and hit[0] == stamp else None

    def put(self, path: str, stamp: Optional[tuple], size: Optional[int]) -> None:
        """Keep `size`, read while the file had `stamp` (taken before the read)."""
        if stamp is None or size is None or time.time_ns() - stamp[3] < self.SETTLE * 1e9:
            return
        with self._lock:
            if len(self._sizes) >= self.LIMIT:
                self._sizes.clear()
            self._sizes[path] = (stamp, size)


def volume_sizes(host: Host) -> Optional[VolumeSizes]:
    """The :class:`VolumeSizes` of `host`'s connection, or None where its volumes are no
    files of this machine."""
    if not host.files_local:
        return None
    return host.info("volume sizes", lambda _conn: VolumeSizes())


def volume_capacity(host: Host, name: str, pool: Any, path: str) -> Optional[int]:
    """Capacity in bytes of the volume at `path` in storage pool `name` (`pool`: its
    object), or None if the pool's listing has no volume there (the caller may still
    look it up by path) or it went away.

    A size read before and whose file is unchanged is taken from :class:`VolumeSizes`
    (no call).  A request asking for more than VOLUME_BULK_AFTER volumes of a pool
    (an enumeration of disks) gets the others VOLUME_BATCH at a time - the one asked
    and the volumes after it in path order - in one task on a helper of the connection
    (issue 16).
    """
    skey = ("virt.volcap", host.label, host.generation, name)
    scope = current_scope()
    state: Optional[dict] = scope.get(skey) if scope is not None else None
    if state is None:
        # Not request_memo's call and closure: this runs for every disk of an enumeration.
        state = request_memo(skey, lambda: {"asked": 0, "order": None, "caps": {},
                                            "sizes": volume_sizes(host), "stamps": {},
                                            "stamped": 0, "walk": False})
    caps: dict[str, Optional[int]] = state["caps"]
    if path in caps:
        return caps[path]
    if state["walk"] is False:
        state["walk"] = None
        if state["sizes"] is not None and not host.in_process and scope is not None and \
                scope.get(("virt.listed", host.label, host.generation)):
            # A request that listed every domain walks them (an enumeration): the files
            # of this disk's directory are stamped on one helper while the pool's volumes
            # are listed on another, instead of one after the other (stop 23: 8-10 ms
            # each through libvirtd, 1000 guests); _stamp takes them.  Stamped already
            # if the request started prefetch_storage (stop 24).
            directory = path.rpartition("/")[0]
            got = _got(scope, host)
            ahead = got.stamps.pop(directory, None) if got is not None else None
            state["walk"] = host.submit(_stamp_dir, directory, on=pool) if ahead is None \
                else ahead
    vols = pool_volume_keys(host, name, pool)
    if path not in vols:
        return None
    sizes: Optional[VolumeSizes] = state["sizes"]
    stamp = _stamp(host, state, pool, vols, path) if sizes is not None else None
    if stamp is not None:
        kept = sizes.get(path, stamp)  # type: ignore[union-attr]
        if kept is not None:
            caps[path] = kept
            return kept
    state["asked"] += 1
    if state["asked"] <= VOLUME_BULK_AFTER or host.in_process:
        vol = pool_volumes(host, name, pool).get(path)
        info = host.ask(f"reading storage volume {path!r}", _volume_call, pool, vol, "info",
                        absent=STORAGE_GONE) if vol is not None else None
        caps[path] = int(info[1]) if info else None
        if sizes is not None:
            sizes.put(path, stamp, caps[path])
        return caps[path]
    if state["order"] is None:
        state["order"] = sorted(vols)
    order = state["order"]
    start = bisect.bisect_left(order, path)
    batch = [(path, stamp)]
    for key in order[start + 1:start + VOLUME_BATCH]:
        if key in caps:
            continue
        kstamp = _stamp(host, state, pool, vols, key) if sizes is not None else None
        kept = sizes.get(key, kstamp) if sizes is not None else None
        if kept is not None:
            caps[key] = kept
        else:
            batch.append((key, kstamp))
    _fetch_capacities(host, pool, pool_volumes(host, name, pool), [k for k, _ in batch], caps)
    if sizes is not None:
        for key, kstamp in batch:
            sizes.put(key, kstamp, caps.get(key))
    return caps.get(path)


def _stamp(host: Host, state: dict, pool: Any, vols: Collection[str], path: str
           ) -> Optional[tuple]:
    """The stamp (VolumeSizes.stamp) of the volume file at `path` for this request.

    Past VOLUME_BULK_AFTER files of a pool (an enumeration of disks), the files of the
    pool's listing not stamped yet are stamped together in one task on a helper of the
    connection, while the request's thread waits (issue 16, stop 22): a ``stat`` gives
    up the GIL, and taking it back on the request's thread, against the helpers that
    fetch the domains' XML meanwhile, cost some 14 % of a DiskRASD enumeration's time.
    Every stamp is still taken before the size it goes with is read (VolumeSizes.put)."""
    stamps: dict[str, Optional[tuple]] = state["stamps"]
    walk = state["walk"]
    if walk is not None and walk is not False:
        # The stamps of the directory, taken on a helper since the request's first disk.
        state["walk"] = None
        found: dict[str, Optional[tuple]] = walk.result()
        stamps.update(found)
        _take_kept(state, [k for k in vols if k in found])
    if path in stamps:
        return stamps[path]
    state["stamped"] += 1
    if state["stamped"] > VOLUME_BULK_AFTER and not host.in_process:
        todo = [k for k in vols if k not in stamps]
        stamps.update(host.submit(_stamp_all, todo, on=pool).result())
        _take_kept(state, todo)
        if path in stamps:
            return stamps[path]
    stamp = stamps[path] = VolumeSizes.stamp(path)
    return stamp


def _take_kept(state: dict, keys: list[str]) -> None:
    """The sizes kept for the files of `keys` found unchanged (stamped) become this
    request's at once, without a call (and without a stamp and a lookup each when their
    disks come)."""
    sizes: Optional[VolumeSizes] = state["sizes"]
    if sizes is None:
        return
    stamps: dict[str, Optional[tuple]] = state["stamps"]
    caps: dict[str, Optional[int]] = state["caps"]
    for key in keys:
        kept = sizes.get(key, stamps[key])
        if kept is not None and key not in caps:
            caps[key] = kept


def _stamp_dir(directory: str) -> dict[str, Optional[tuple]]:
    """{path: stamp} of the entries of `directory` ('' is the root), none if it cannot
    be read (the request's files are then stamped as they come)."""
    try:
        names = os.listdir(directory or "/")
    except OSError:
        return {}
    prefix = directory + "/"
    return _stamp_all([prefix + n for n in names])


def _stamp_all(paths: list[str]) -> dict[str, Optional[tuple]]:
    return {p: VolumeSizes.stamp(p) for p in paths}


def _fetch_capacities(host: Host, pool: Any, vols: dict[str, Any], keys: list[str],
                      caps: dict[str, Optional[int]]) -> None:
    """caps[key] = capacity (None if gone) of each volume of `keys`, asked one after the
    other on a helper of the connection (one call in flight beside the domains' XML read
    ahead), the event loop held still meanwhile (:mod:`.loophold`)."""
    def fetch() -> list[Any]:
        out: list[Any] = []
        with loop_held():
            for key in keys:
                vol = vols.get(key)     # None: listed by name, gone since (no object)
                try:
                    out.append(vol.info() if vol is not None else None)
                except libvirt.libvirtError as exc:
                    out.append(exc)
        return out

    infos = host.submit(fetch, on=pool).result() if keys else []
    for key, info in zip(keys, infos, strict=True):
        if isinstance(info, libvirt.libvirtError):
            # Gone since the listing: no capacity; anything else fails the request.
            host.ask(f"reading storage volume {key!r}", _reraise, info, absent=STORAGE_GONE)
            info = None
        caps[key] = int(info[1]) if info else None


def _reraise(exc: BaseException) -> None:
    raise exc
