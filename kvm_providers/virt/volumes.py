"""Storage volumes in libvirt terms: listing a storage pool's volumes, looking one up,
reading its size and format, creating and deleting it, and which domains use it.

The CIM model (:mod:`kvm_providers.model.poolconfig`) makes StorageVolume instances
and checks the client's settings; here every volume is plain values: ``(name, path,
virStorageVol)``.  Failures are the layer's errors naming the host; a volume deleted
meanwhile reads as None.
"""

from __future__ import annotations

import posixpath
from typing import Any, Optional

import libvirt

from .connection import STORAGE_GONE, Host
from .pools import FILE_POOL_TYPES, PoolObject, disk_users, pool_xml
from .query import parse_xml

__all__ = ["VolumeFacts", "list_volumes", "volume_sizes", "volume_format",
           "lookup_by_path", "lookup_by_name", "has_volume", "create", "delete",
           "volume_users"]

#: (name, path, virStorageVol) of a volume.
VolumeFacts = tuple[str, str, Any]


def list_volumes(p: PoolObject) -> list[VolumeFacts]:
    """The volumes of an active storage pool, by name (file pools: paths without a call
    per volume); [] for a pool that is not active."""
    if not p.obj.isActive():
        return []
    try:
        vols = p.obj.listAllVolumes(0)
    except libvirt.libvirtError as exc:
        raise p.host.translate(exc, f"listing the volumes of {p.name!r}") from None
    root = pool_xml(p)
    target = root.findtext("target/path") if root is not None else None
    files = root is not None and root.get("type") in FILE_POOL_TYPES and target
    out = []
    for v in vols:
        name = v.name()
        path = posixpath.join(target, name) if files and target else \
            p.host.ask(f"reading the path of volume {name!r}", v.path, absent=STORAGE_GONE)
        if path is None:
            continue       # deleted since the listing
        out.append((name, path, v))
    out.sort(key=lambda vol: vol[0])
    return out


def volume_sizes(host: Host, path: str, vol: Any) -> Optional[tuple[int, int]]:
    """(capacity, allocation) of a volume in bytes; None if it was deleted (or its pool
    stopped) meanwhile.  A lost or hung host fails (HostUnavailable), as does any other
    failure (LibvirtFailed naming the host): never an empty answer."""
    info = host.ask(f"reading the size of volume {path!r}", vol.info, absent=STORAGE_GONE)
    return None if info is None else (int(info[1]), int(info[2]))


def volume_format(host: Host, path: str, vol: Any) -> Optional[str]:
    """The format of a volume (``raw``, ``qcow2`` ...; None if its XML names none, or it
    was deleted meanwhile), failing as :func:`volume_sizes` does."""
    text = host.ask(f"reading the XML of volume {path!r}", vol.XMLDesc, 0,
                    absent=STORAGE_GONE)
    if text is None:
        return None
    f = parse_xml(text).find("target/format")
    return f.get("type") if f is not None else None


def lookup_by_path(host: Host, path: str) -> Optional[tuple[str, Any, VolumeFacts]]:
    """(storage pool name, virStoragePool, the volume) of the volume at `path`, or None."""
    conn = host.conn()
    try:
        vol = conn.storageVolLookupByPath(path)
        pobj = vol.storagePoolLookupByVolume()
        return pobj.name(), pobj, (vol.name(), vol.path(), vol)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() in (getattr(libvirt, "VIR_ERR_NO_STORAGE_VOL", 50),
                                    getattr(libvirt, "VIR_ERR_NO_STORAGE_POOL", 49),
                                    getattr(libvirt, "VIR_ERR_INVALID_ARG", 8)):
            return None
        raise host.translate(exc, f"looking up volume {path!r}") from None


def lookup_by_name(p: PoolObject, name: str) -> Optional[VolumeFacts]:
    """The volume `name` of storage pool `p`, or None."""
    try:
        v = p.obj.storageVolLookupByName(name)
        return v.name(), v.path(), v
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == getattr(libvirt, "VIR_ERR_NO_STORAGE_VOL", 50):
            return None
        raise p.host.translate(exc, f"looking up volume {name!r}") from None


def has_volume(host: Host, pool: Any, name: str, label: str) -> bool:
    """Whether storage pool `pool` (a virStoragePool) has a volume `name`; `label` names it
    in errors (a host lost or a call that failed: the layer's errors, never False)."""
    return host.ask(f"looking up volume {label!r}", pool.storageVolLookupByName, name,
                    absent=STORAGE_GONE) is not None


def create(p: PoolObject, name: str, xml: str) -> VolumeFacts:
    """Create a volume from its XML in storage pool `p` (one ``virStorageVolCreateXML``:
    libvirt removes a volume it failed to create)."""
    with p.host.guard(f"creating volume {name!r} in storage pool {p.name!r}"):
        v = p.obj.createXML(xml, 0)
        return v.name(), v.path(), v


def delete(host: Host, path: str, vol: Any) -> None:
    """Delete a volume."""
    with host.guard(f"deleting volume {path!r}"):
        vol.delete(0)


def volume_users(host: Host, pool_name: str, name: str, path: str) -> list[str]:
    """Names of the domains with a disk on the volume (by path, or by pool and name)."""
    return disk_users(host, lambda src: (src.get("file") or src.get("dev")) == path or
                      (src.get("pool") == pool_name and src.get("volume") == name))
