"""Storage pools and virtual networks in libvirt terms: listing and reading them, defining,
starting, stopping and undefining them, and which domains use them.

The CIM model (:mod:`kvm_providers.model.pools`, :mod:`kvm_providers.model.poolconfig`)
makes resource pools of them (DiskPool, NetworkPool, their InstanceIDs and
properties) and checks the client's settings; everything here is plain libvirt
and takes plain values.  Reads are memoized per request (:func:`request_memo`)
and fail (the host lost or hung, a call that failed) naming the host, never
with an empty answer; a pool or network that went away reads as None.
Storage volumes: :mod:`kvm_providers.virt.volumes`.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

import libvirt

from .connection import ANY_ERROR, NETWORK_GONE, STORAGE_GONE, DomainNotFound, Host
from .domain import domain_xml, list_domains
from .query import if_supported, parse_xml, request_memo

__all__ = ["PoolObject", "FILE_POOL_TYPES", "networks", "pool_xml", "storage_pool_info",
           "running_storage_info", "autostart", "is_active", "network_subnets",
           "network_bridges", "define_network", "define_storage_pool", "undefine",
           "refresh", "domain_roots", "disk_users", "users", "is_running",
           "space_available", "network_names", "network_exists", "pool_type_support"]

LOG = logging.getLogger(__name__)

#: Storage pool types whose volumes are files in the pool's target directory.
FILE_POOL_TYPES = frozenset({"dir", "fs", "netfs", "gluster", "vstorage"})


@dataclass(frozen=True)
class PoolObject:
    """A storage pool (virStoragePool) or a virtual network (virNetwork) of a host."""

    host: Host
    name: str
    #: The libvirt object (None: not looked up).
    obj: Any
    #: True for a virtual network, False for a storage pool.
    network: bool
    #: How error messages name it ("" = ``network 'default'``; the model gives its pool
    #: id, ``DiskPool/default``).
    label: str = ""

    @property
    def what(self) -> str:
        """``network`` or ``storage pool``, for messages."""
        return "network" if self.network else "storage pool"

    @property
    def described(self) -> str:
        """The label, or ``network 'default'``."""
        return self.label or f"{self.what} {self.name!r}"


# -- listing and reading ----------------------------------------------------------------------

def networks(host: Host) -> list[tuple[str, Any]]:
    """[(network name, virNetwork)] of the host, sorted by name (once per request)."""
    def compute() -> list[tuple[str, Any]]:
        nets = if_supported(host, "listing networks", lambda c: c.listAllNetworks(0)) or []
        return sorted(((n.name(), n) for n in nets), key=lambda t: t[0])
    return request_memo(("virt.networks", host.label, host.generation), compute)


def _ask(p: PoolObject, tag: str, what: str, call: Callable[[Any], Any], failed: Any = None,
         ident: Optional[tuple] = None) -> Any:
    """call(the pool's libvirt object), once per request (memo key: `tag`, the host,
    `ident` or the pool's name); `failed` if libvirt says the pool went away.  Any other
    failure (the host lost or hung, a call that failed) fails the request, naming the
    host and `what`: never an empty answer."""
    host = p.host

    def compute() -> Any:
        return host.ask(f"{what} of {p.described}", call, p.obj,
                        absent=STORAGE_GONE | NETWORK_GONE, default=failed)
    return request_memo((tag, host.label, host.generation, *(ident or (p.name,))), compute)


def _ident(p: PoolObject) -> tuple[str, str]:
    # a storage pool and a network may share a name
    return ("net" if p.network else "disk", p.name)


def pool_xml(p: PoolObject) -> Optional[Any]:
    """The parsed XML of a storage pool or network (None if it went away), once per
    request."""
    return _ask(p, "virt.netxml" if p.network else "virt.poolxml", "reading the XML",
                lambda obj: parse_xml(obj.XMLDesc(0)))


def storage_pool_info(p: PoolObject) -> Optional[list[int]]:
    """virStoragePoolGetInfo of a storage pool ([state, capacity, allocation, available])."""
    return _ask(p, "virt.poolinfo", "reading the size", lambda obj: list(obj.info()))


def running_storage_info(p: PoolObject) -> Optional[list[int]]:
    """:func:`storage_pool_info` of a running storage pool; None if it is not running."""
    info = storage_pool_info(p)
    if not info or info[0] != getattr(libvirt, "VIR_STORAGE_POOL_RUNNING", 2):
        return None
    return info


def autostart(p: PoolObject) -> Optional[bool]:
    """Whether a storage pool or network starts with the host (None if it went away)."""
    return _ask(p, "virt.poolautostart", "reading autostart",
                lambda obj: bool(obj.autostart()), None, _ident(p))


def is_active(p: PoolObject) -> bool:
    """Whether a storage pool is running or a network is started, once per request."""
    return _ask(p, "virt.poolactive", "asking whether it runs",
                lambda obj: bool(obj.isActive()), False, _ident(p))


def is_running(p: PoolObject) -> bool:
    """Whether the pool runs now (asked again, not memoized: before changing it)."""
    return bool(p.obj.isActive())


def space_available(p: PoolObject) -> int:
    """Bytes a running storage pool has available now (not memoized)."""
    return int(p.obj.info()[3])


def network_names(host: Host) -> list[str]:
    """The names of the host's networks, asked now (not memoized)."""
    conn = host.conn()
    with host.guard("listing networks"):
        return [n.name() for n in conn.listAllNetworks(0)]


def network_exists(host: Host, name: str) -> bool:
    """Whether the host has a network `name` (asked now)."""
    conn = host.conn()
    return host.ask(f"looking up network {name!r}", conn.networkLookupByName, str(name),
                    absent=NETWORK_GONE) is not None


def pool_type_support(host: Host, types: Iterable[str]
                      ) -> dict[str, dict[str, tuple[str, ...]]]:
    """{storage pool type: {'source': source formats, 'volume': volume formats}} of the
    `types` the host's storage driver supports (virConnectGetStoragePoolCapabilities,
    asked once per connection; every one of `types`, with raw and qcow2 volumes in file
    pools, for drivers that cannot say, e.g. the test driver)."""
    wanted = tuple(types)

    def compute(conn: Any) -> dict[str, dict[str, tuple[str, ...]]]:
        # Drivers that cannot say get libvirt's list; a lost or hung host fails instead
        # of being cached as such a driver.
        text = host.ask("getting the storage pool capabilities",
                        conn.getStoragePoolCapabilities, 0, absent=ANY_ERROR)
        if text is None:
            return {t: {"source": (), "volume": ("raw", "qcow2") if t in FILE_POOL_TYPES
                        else ("raw",)} for t in wanted}
        root = parse_xml(text)
        out = {}
        for p in root.iterfind("pool"):
            if p.get("supported") != "yes" or p.get("type") not in wanted:
                continue
            src = tuple(v.text for v in p.iterfind(
                "poolOptions/enum[@name='sourceFormatType']/value") if v.text)
            vol = tuple(v.text for v in p.iterfind(
                "volOptions/enum[@name='targetFormatType']/value")
                if v.text and v.text not in ("none", "dir"))
            out[p.get("type")] = {"source": src, "volume": vol or ("raw",)}
        return out
    return host.info("pooltypes", compute)


def network_subnets(host: Host, skip: Optional[str] = None
                    ) -> list[tuple[str, ipaddress.IPv4Network]]:
    """[(network name, IPv4 network)] of the host's networks' IPv4 addresses (but
    network `skip`'s)."""
    out = []
    for name, obj in networks(host):
        if name == skip:
            continue
        root = pool_xml(PoolObject(host, name, obj, True))
        for ip in (root.iterfind("ip") if root is not None else ()):
            addr = ip.get("address")
            if not addr or ":" in addr:
                continue
            try:
                out.append((name, ipaddress.IPv4Network(
                    f"{addr}/{ip.get('netmask') or ip.get('prefix') or 24}", strict=False)))
            except ValueError:
                continue
    return out


def network_bridges(host: Host) -> dict[str, str]:
    """{bridge name: network name} of the host's networks."""
    out = {}
    for name, obj in networks(host):
        root = pool_xml(PoolObject(host, name, obj, True))
        br = root.find("bridge") if root is not None else None
        if br is not None and br.get("name"):
            out[br.get("name")] = name
    return out


# -- changes ---------------------------------------------------------------------------------

def rollback(host: Host, what: str, *steps: Callable[[], Any]) -> None:
    """Run undo steps, logging (not raising) their failures: the first error is what counts."""
    for step in steps:
        try:
            step()
        except Exception as exc:  # pylint: disable=broad-except
            LOG.warning("libvirt host %s: undoing %s: %s", host.label, what, exc)


def define_network(host: Host, name: str, xml: str) -> Any:
    """Define and start a network (virNetwork); undefined again if it cannot start."""
    conn = host.conn()
    with host.guard(f"defining network {name!r}"):
        net = conn.networkDefineXML(xml)
    try:
        with host.guard(f"starting network {name!r}"):
            net.create()
    except BaseException:
        rollback(host, f"network {name!r}", net.undefine)
        raise
    return net


def define_storage_pool(host: Host, name: str, xml: str, ptype: str, target: Optional[str],
                        start_with_host: bool) -> Any:
    """Define, build (dir, fs, netfs only: building other types would format devices),
    start and (if `start_with_host`) autostart a storage pool (virStoragePool).  A failing
    step destroys and undefines it again, and removes the target directory if it was
    made here (only known on hosts whose files are this machine's).  The caller has
    checked that `target`, if it exists, is a directory."""
    conn = host.conn()
    made_dir = False
    if host.files_local and ptype in ("dir", "fs", "netfs") and target:
        made_dir = not os.path.lexists(target)
    with host.guard(f"defining storage pool {name!r}"):
        pool = conn.storagePoolDefineXML(xml, 0)
    try:
        if ptype in ("dir", "fs", "netfs"):
            # Flags 0: for these types building only makes the target directory.
            with host.guard(f"building storage pool {name!r}"):
                pool.build(0)
        with host.guard(f"starting storage pool {name!r}"):
            pool.create(0)
        if start_with_host:
            with host.guard(f"setting autostart of storage pool {name!r}"):
                pool.setAutostart(1)
    except BaseException:
        steps: list[Callable[[], Any]] = [lambda: pool.isActive() and pool.destroy()]
        if made_dir and target:
            new_dir = target

            def remove_new_dir() -> None:
                if os.path.isdir(new_dir) and not os.listdir(new_dir):
                    os.rmdir(new_dir)
            steps.append(remove_new_dir)
        steps.append(pool.undefine)
        rollback(host, f"storage pool {name!r}", *steps)
        raise
    return pool


def undefine(p: PoolObject) -> None:
    """Stop (if it runs) and undefine a storage pool or network (a storage pool's data
    stays where it is)."""
    host, obj = p.host, p.obj
    with host.guard(f"stopping {p.what} {p.name!r}"):
        if obj.isActive():
            obj.destroy()
    with host.guard(f"undefining {p.what} {p.name!r}"):
        obj.undefine()


def refresh(p: PoolObject) -> None:
    """Rescan a storage pool's volumes (changes made outside libvirt)."""
    with p.host.guard(f"refreshing storage pool {p.name!r}"):
        p.obj.refresh(0)


# -- who uses what ---------------------------------------------------------------------------

def domain_roots(host: Host) -> Iterator[tuple[str, Any]]:
    """(domain name, parsed XML) of every definition of every domain (live and persistent)."""
    for ref in list_domains(host):
        try:
            docs = [domain_xml(ref)]
            if ref.dom.isActive() and ref.dom.isPersistent():
                docs.append(domain_xml(ref, inactive=True))
        except (DomainNotFound, libvirt.libvirtError):
            continue
        for doc in docs:
            yield ref.name, doc.root


def disk_users(host: Host, match: Callable[[Any], bool]) -> list[str]:
    """Names of the domains with a disk whose ``<source>`` `match` accepts."""
    found: list[str] = []
    for dname, root in domain_roots(host):
        for disk in root.iterfind("devices/disk"):
            src = disk.find("source")
            if src is not None and match(src) and dname not in found:
                found.append(dname)
    return found


def users(p: PoolObject) -> list[str]:
    """Names of the domains using a storage pool (a disk in it: ``<source pool=>`` or a
    file in its target directory) or a network (an interface on it or on its bridge)."""
    host = p.host
    if not p.network:
        root = pool_xml(p)
        target = (root.findtext("target/path") or "").rstrip("/") if root is not None else ""

        def match(src: Any) -> bool:
            if src.get("pool") == p.name:
                return True
            path = src.get("file") or src.get("dev")
            return bool(target and path and os.path.dirname(path).rstrip("/") == target)
        return disk_users(host, match)
    root = pool_xml(p)
    br = root.find("bridge") if root is not None else None
    bridge = br.get("name") if br is not None else None
    found: list[str] = []
    for dname, droot in domain_roots(host):
        for nic in droot.iterfind("devices/interface"):
            src = nic.find("source")
            if src is None:
                continue
            if (nic.get("type") == "network" and src.get("network") == p.name) or \
                    (bridge and nic.get("type") == "bridge" and src.get("bridge") == bridge):
                if dname not in found:
                    found.append(dname)
    return found
