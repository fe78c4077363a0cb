"""Can a virtual system migrate to a destination?  Every reason it cannot, changing
nothing (DSP1081 CheckVirtualSystemIsMigratable*; also run before every migration).

What is checked, each failure one reason in the answer:

* the destination answers, and is not the source host itself (host UUIDs);
* the guest's state suits the migration type (live, resume and restart need a
  running guest; offline one that is shut off);
* no virtual system of the guest's name or UUID exists on the destination;
* the destination has the guest's emulator, architecture, machine type and
  virtualization type (its domain capabilities), and the guest's features
  that the capabilities list;
* the destination's hypervisor runs the guest's CPU (``compareHypervisorCPU``);
* every libvirt network the guest's interfaces use exists and is active there;
* every disk: with a storage copy, the destination holds the volume or has a
  storage pool on its directory (libvirt creates the copy's file there); without
  one, a storage pool of the destination holds the disk's file (shared storage).
  Read-only disks are never copied: they must be there in any case.

The only thing touched on the destination is the contents list of a storage
pool on the directory of a disk (``refresh``), so that a disk file made since
the pool last looked is found.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

import libvirt
from lxml import etree

from .migration import (MIGRATE_LIVE, MIGRATE_OTHER, MIGRATE_RESTART, MIGRATE_RESUME,
                        STORAGE_NONE, MigrationError, Settings)

__all__ = ["check", "guest_of"]

LOG = logging.getLogger(__name__)


def _msg(exc: libvirt.libvirtError) -> str:
    return exc.get_error_message() or str(exc)


def guest_of(conn: Any, name: str) -> Any:
    """The domain `name` of `conn`; MigrationError('not_found') if there is none."""
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            raise MigrationError("not_found", f"no virtual system {name!r}") from None
        raise MigrationError("failed", f"cannot look up {name!r}: {_msg(exc)}") from None


def _host_uuid(conn: Any) -> Optional[str]:
    try:
        return etree.fromstring(conn.getCapabilities().encode()).findtext("host/uuid")
    except (libvirt.libvirtError, etree.XMLSyntaxError):
        return None


def check(source: Any, name: str, dest: Optional[Any], settings: Settings,
          dest_label: str, dest_error: Optional[str] = None) -> list[str]:
    """Every reason `name` (a domain of the connection `source`) cannot migrate to the
    connection `dest` with `settings`; [] if none was found.

    `dest` None means the destination did not answer (`dest_error` says why).
    Raises MigrationError('not_found') if the guest does not exist.
    """
    dom = guest_of(source, name)
    reasons: list[str] = []
    try:
        active = bool(dom.isActive())
        xml = dom.XMLDesc(0)
    except libvirt.libvirtError as exc:
        raise MigrationError("failed", f"cannot read {name!r}: {_msg(exc)}") from None
    root = etree.fromstring(xml.encode())
    if settings.type in (MIGRATE_LIVE, MIGRATE_RESUME, MIGRATE_RESTART) and not active:
        reasons.append(f"the guest is not running: a {settings.type_name} migration needs a "
                       f"running guest (use MigrationType 1, offline)")
    if settings.type == MIGRATE_OTHER and active:
        reasons.append("the guest is running: an offline migration needs a guest that is "
                       "shut off (use MigrationType 2, live)")
    if dest is None:
        reasons.append(f"destination {dest_label} is not reachable: {dest_error}")
        return reasons
    src_uuid, dst_uuid = _host_uuid(source), _host_uuid(dest)
    if src_uuid and src_uuid == dst_uuid:
        reasons.append(f"destination {dest_label} is the source host itself (host UUID "
                       f"{src_uuid})")
        return reasons
    reasons += _name_free(dest, name, root.findtext("uuid") or "")
    reasons += _platform(dest, root)
    reasons += _networks(dest, root)
    reasons += _storage(dest, root, settings)
    devs = {t.get("dev") for t in root.iterfind("devices/disk/target")}
    for dev in sorted(set(settings.disk_paths) - devs):
        reasons.append(f"the guest has no disk {dev} (NewResourceSettingData)")
    return reasons


def _name_free(dest: Any, name: str, uuid: str) -> list[str]:
    out = []
    try:
        dest.lookupByName(name)
        out.append(f"a virtual system named {name!r} exists on the destination")
    except libvirt.libvirtError:
        pass
    if uuid:
        try:
            other = dest.lookupByUUIDString(uuid)
            if other.name() != name:
                out.append(f"virtual system {other.name()!r} on the destination has the "
                           f"guest's UUID {uuid}")
        except libvirt.libvirtError:
            pass
    return out


def _platform(dest: Any, root: Any) -> list[str]:
    """Emulator, arch, machine, virt type, features and CPU, from the destination's
    domain capabilities and CPU comparison."""
    out: list[str] = []
    emulator = root.findtext("devices/emulator")
    ostype = root.find("os/type")
    arch = ostype.get("arch") if ostype is not None else None
    machine = ostype.get("machine") if ostype is not None else None
    virttype = root.get("type")
    try:
        caps = etree.fromstring(dest.getDomainCapabilities(emulator, arch, machine,
                                                           virttype, 0).encode())
    except libvirt.libvirtError as exc:
        return [f"the destination cannot run the guest's platform (emulator {emulator}, "
                f"arch {arch}, machine {machine}, type {virttype}): {_msg(exc)}"]
    feats = caps.find("features")
    for feat in root.iterfind("features/*"):
        known = feats.find(feat.tag) if feats is not None else None
        if known is not None and known.get("supported") == "no":
            out.append(f"the destination does not support the guest's feature {feat.tag!r}")
    cpu = root.find("cpu")
    if cpu is not None and cpu.get("mode") != "host-passthrough" and \
            (cpu.find("model") is not None or cpu.get("mode") == "host-model"):
        try:
            res = dest.compareHypervisorCPU(emulator, arch, machine, virttype,
                                            etree.tostring(cpu, encoding="unicode"),
                                            libvirt.VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE)
            if res == libvirt.VIR_CPU_COMPARE_INCOMPATIBLE:
                out.append("the guest's CPU is incompatible with the destination's hypervisor")
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_CPU_INCOMPATIBLE:
                out.append(f"the guest's CPU is incompatible with the destination's "
                           f"hypervisor: {_msg(exc)}")
            elif exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                out.append(f"the destination cannot compare the guest's CPU: {_msg(exc)}")
    elif cpu is not None and cpu.get("mode") == "host-passthrough":
        LOG.info("guest CPU is host-passthrough: the hosts' CPUs must match; not compared")
    return out


def _networks(dest: Any, root: Any) -> list[str]:
    out: list[str] = []
    for iface in root.iterfind("devices/interface[@type='network']"):
        net = iface.find("source")
        name = net.get("network") if net is not None else None
        if not name:
            continue
        try:
            n = dest.networkLookupByName(name)
        except libvirt.libvirtError:
            out.append(f"network {name!r} of the guest's interface does not exist on the "
                       f"destination")
            continue
        try:
            if not n.isActive():
                out.append(f"network {name!r} is not active on the destination")
        except libvirt.libvirtError as exc:
            out.append(f"network {name!r} on the destination: {_msg(exc)}")
    return out


def _pools_by_dir(dest: Any) -> dict[str, Any]:
    """{target directory: active pool} of the destination."""
    out: dict[str, Any] = {}
    try:
        pools = dest.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE)
    except libvirt.libvirtError:
        return out
    for pool in pools:
        try:
            path = etree.fromstring(pool.XMLDesc(0).encode()).findtext("target/path")
        except (libvirt.libvirtError, etree.XMLSyntaxError):
            continue
        if path:
            out[os.path.normpath(path)] = pool
    return out


def _storage(dest: Any, root: Any, settings: Settings) -> list[str]:
    out: list[str] = []
    pools: Optional[dict[str, Any]] = None
    refreshed: set[str] = set()
    for disk in root.iterfind("devices/disk"):
        src = disk.find("source")
        if src is None:
            continue                    # an empty CD-ROM drive
        target = disk.find("target")
        dev = target.get("dev", "?") if target is not None else "?"
        readonly = disk.find("readonly") is not None or disk.find("shareable") is not None
        copied = settings.storage_copy != STORAGE_NONE and not readonly
        dtype = disk.get("type")
        if dtype == "volume":
            pname, vname = src.get("pool"), src.get("volume")
            try:
                pool = dest.storagePoolLookupByName(pname)
            except libvirt.libvirtError:
                out.append(f"disk {dev}: storage pool {pname!r} does not exist on the "
                           f"destination")
                continue
            if not copied:
                try:
                    pool.storageVolLookupByName(vname)
                except libvirt.libvirtError:
                    out.append(f"disk {dev}: volume {vname!r} of pool {pname!r} is not on the "
                               f"destination, and no storage copy was requested")
            continue
        if dtype not in ("file", "block"):
            continue                    # network storage: the same for every host
        path = src.get("file") if dtype == "file" else src.get("dev")
        if not path:
            continue
        path = settings.disk_paths.get(dev, path)       # a new path on the destination
        if pools is None:
            pools = _pools_by_dir(dest)
        directory = os.path.dirname(os.path.normpath(path))
        pool = pools.get(directory)
        if pool is not None and directory not in refreshed:
            refreshed.add(directory)
            try:
                pool.refresh(0)
            except libvirt.libvirtError as exc:
                LOG.debug("refresh of the destination's pool on %s: %s", directory, exc)
        try:
            dest.storageVolLookupByPath(path)
            present = True
        except libvirt.libvirtError:
            present = False
        if present:
            continue
        if copied:
            if pool is None:
                out.append(f"disk {dev} ({path}): the destination has no storage pool on "
                           f"{directory} to copy it into")
        elif readonly and settings.storage_copy != STORAGE_NONE:
            out.append(f"disk {dev} ({path}) is read-only (never copied) and not on the "
                       f"destination")
        else:
            out.append(f"disk {dev} ({path}) is not on the destination (no storage pool there "
                       f"holds it), and no storage copy was requested")
    return out
