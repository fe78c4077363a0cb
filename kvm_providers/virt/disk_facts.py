"""Disk facts of a domain's devices: the storage pool a disk lives in and its capacity.

The part of :class:`kvm_providers.virt.domain.DeviceContext` that asks the host's
storage (pools and volumes, memoized per request), kept apart from the domain model
so that each stays a module of its own size.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import libvirt

from .connection import Host
from .mapping import View
from .query import request_memo, storage_pools, volume_capacity

__all__ = ["DiskFacts"]


def pool_index(host: Host) -> tuple[dict, dict]:
    """({target path: (name, pool)}, {name: pool}) of the host's storage pools (per request)."""
    def compute():
        pools = storage_pools(host)
        return ({t: (n, o) for n, t, o in pools if t}, {n: o for n, _t, o in pools})
    return request_memo(("virt.poolindex", host.label, host.generation), compute)


class DiskFacts:
    """The disk fields' questions to the host: a disk's pool and its capacity.

    The base of DeviceContext, which sets ``host``, ``_pools`` (the request's pool
    index, asked once per context rather than twice per disk) and ``_last`` (None)."""

    __slots__ = ("host", "_pools", "_last")
    host: Host
    _pools: Optional[tuple[dict, dict]]
    #: (View, pool hit) of the disk whose capacity was read last: its PoolID, read next
    #: (the tables' order), takes the pool from there instead of finding it again (issue
    #: 16, stop 24).  Views only: a View reads its element as it was when indexed, so the
    #: hit is as current as the View; plain elements (write paths) look again.
    _last: Optional[tuple[Any, Optional[tuple[str, Any]]]]

    def disk_pool(self, el) -> Optional[tuple[str, Any]]:
        """(pool name, pool object or None) of a disk element, if it lives in a pool."""
        src = el.find("source")
        if src is None:
            return None
        return self._source_pool(src)

    def _source_pool(self, src) -> Optional[tuple[str, Any]]:
        pools = self._pools
        if pools is None:
            pools = self._pools = pool_index(self.host)
        by_target, by_name = pools
        pool = src.get("pool")
        if pool:
            return pool, by_name.get(pool)
        path = src.get("file") or src.get("dev")
        if not path or not by_target:
            return None
        # os.path.dirname(path).rstrip("/"), without its Python-level steps
        return by_target.get(path.rpartition("/")[0].rstrip("/"))

    def disk_pool_id(self, el) -> Optional[str]:
        if el.tag != "disk":
            return None
        last = self._last
        hit = last[1] if last is not None and last[0] is el else self.disk_pool(el)
        return f"DiskPool/{hit[0]}" if hit else None

    def disk_capacity(self, el) -> Optional[int]:
        """Capacity in bytes of a disk's image: its storage volume, or the local file."""
        if el.tag != "disk":
            return None
        src = el.find("source")
        if src is None:
            return None
        host = self.host
        hit = self._source_pool(src)
        if type(el) is View:
            self._last = (el, hit)
        path = src.get("file") or src.get("dev")
        volume = src.get("volume")
        if hit is not None and hit[1] is not None and path and not volume:
            # A file of a pool (an enumeration's every disk): the pool's sizes are
            # memoized per request by volume_capacity itself, so no memo of its own here
            # (its key and closure per disk were a tenth of the disk's time).
            try:
                size = volume_capacity(host, hit[0], hit[1], path)
            except libvirt.libvirtError:
                size = None
            if size is not None:
                return size
        if hit is None and not (path and host.files_local):
            return None
        key = ("virt.capacity", host.label, host.generation, volume, path)

        def compute():
            if hit is not None:
                try:
                    if volume and hit[1] is not None:
                        vol = hit[1].storageVolLookupByName(volume)
                    else:
                        # The pool's volumes listed once, not a lookup per disk (issue 16).
                        size = volume_capacity(host, hit[0], hit[1], path) \
                            if hit[1] is not None and path else None
                        if size is not None:
                            return size
                        vol = host.conn().storageVolLookupByPath(path)
                    return int(vol.info()[1])
                except libvirt.libvirtError:
                    pass
            if path and host.files_local:
                # only inside the storage clients may use: the size of any other file
                # would tell a client that it exists and how big it is
                from .validate import PathNotAllowed, check_host_path
                try:
                    check_host_path(host, path, "Address", volumes=False)
                    return os.stat(path).st_size
                except (OSError, PathNotAllowed):
                    return None
            return None
        return request_memo(key, compute)
