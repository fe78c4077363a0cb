"""The disk kind: a ``<disk>`` or ``<filesystem>`` (devid: target dev, a filesystem's target
dir), DiskRASD, LogicalDisk, the DiskPool (primordial, and one per libvirt storage pool)."""

from __future__ import annotations

import os
import re
import stat
from typing import Any, Optional

from lxml import etree

from ...schema.valuemaps import (CIM_ManagedSystemElement, CIM_ResourceAllocationSettingData,
                                 P_DiskResourceAllocationSettingData)
from ...virt.connection import Host
from ...virt.mapping import Attr, Computed, Const, Exists, Field, NotWritable, OneItemList
from ...virt.props import InvalidSetting, Props, host_is_local, host_path, image_format, pool_id_name
from ...virt.query import prefetch_storage, storage_pools
from ...virt.units import MIB
from ...virt.volumes import has_volume
from ...virt.elements import ElementKind
from .base import COMMON_DEVICE, BuildEnv, ChangeEnv, DeviceKind, LimitEnv, Limits, PoolKind

__all__ = ["KIND", "ELEMENT", "DISK", "FILESYSTEM"]


# -- the libvirt facts (the ElementKind the libvirt layer scans with) -----------------


def _devid(el: Any) -> Optional[str]:
    """A disk's target dev, a filesystem's target dir."""
    # The first <target> child as find() gives it, without ElementPath (1.8 against 0.6
    # us): every scan of a domain asks each device's id (issue 16).
    tgt = next(el.iterchildren("target"), None)
    if tgt is None:
        return None
    return tgt.get("dir") if el.tag == "filesystem" else tgt.get("dev")


ELEMENT = ElementKind("disk", ("disk", "filesystem"), _devid, skeleton="<disk device='disk'/>")


_RT = CIM_ResourceAllocationSettingData.ResourceType
_COMMON_DEVICE = COMMON_DEVICE

_EMULATED = P_DiskResourceAllocationSettingData.EmulatedType


_DISK_DEVICE = {"disk": _EMULATED.Disk, "cdrom": _EMULATED.CDROM, "floppy": _EMULATED.floppy,
                "lun": _EMULATED.lun}


_SOURCE_ATTR = {"file": "file", "block": "dev", "dir": "dir", "network": "name",
                "volume": "volume"}


def _disk_source(el, ctx=None):
    src = el.find("source")
    if el.tag == "filesystem":
        if src is None:
            return None
        for a in ("dir", "file", "dev", "name"):
            v = src.get(a)
            if v is not None:
                return v
        return None
    if src is None:
        return "" if el.get("device") == "cdrom" else None
    attr = _SOURCE_ATTR.get(el.get("type") or "file")
    if attr is not None and src.get(attr) is not None:
        return src.get(attr)
    for a in ("file", "dev", "dir", "name", "volume"):
        v = src.get(a)
        if v is not None:
            return v
    return None


def _write_disk_source(el, value, ctx):
    if el.tag == "filesystem":
        attr = {"mount": "dir", "file": "file", "block": "dev"}.get(el.get("type") or "mount",
                                                                      "dir")
    else:
        attr = _SOURCE_ATTR.get(el.get("type") or "file", "file")
    if value in (None, ""):
        src = el.find("source")
        if src is not None:
            el.remove(src)
        return
    src = el.find("source")
    if src is None:
        src = etree.Element("source")
        tgt = el.find("target")
        if tgt is not None:
            tgt.addprevious(src)
        else:
            el.append(src)
    src.set(attr, str(value))


def _emulated_type(el, ctx=None):
    if el.tag == "filesystem":
        return _EMULATED.filesystem
    return _DISK_DEVICE.get(el.get("device") or "disk", _EMULATED.Disk)


def _write_emulated_type(el, value, ctx):
    if value is None:
        return
    value = int(value)
    if el.tag == "filesystem" or value == _EMULATED.filesystem:
        if value != _emulated_type(el):
            raise NotWritable("EmulatedType cannot change between filesystem and disk")
        return
    rev = {v: k for k, v in _DISK_DEVICE.items()}
    if value not in rev:
        raise ValueError(f"EmulatedType {value} is not one of {sorted(rev)}")
    el.set("device", rev[value])


def _pool_id(el, ctx):
    return None if ctx is None else ctx.disk_pool_id(el)


def _disk_capacity(el, ctx):
    return None if ctx is None else ctx.disk_capacity(el)


#: The source (<source file|dev|dir|name>, a filesystem's <source dir>): Address, and
#: HostResource as a list of it.
_ADDRESS = Computed(_disk_source, _write_disk_source)


#: {P}_DiskResourceAllocationSettingData for <disk>.
DISK: dict[str, Field] = {
    "ResourceType": Const(_RT.Disk_Drive),
    "Address": _ADDRESS,
    "HostResource": OneItemList(_ADDRESS),
    "VirtualDevice": Attr("target", "dev"),
    "BusType": Attr("target", "bus"),
    "EmulatedType": Computed(_emulated_type, _write_emulated_type),  # disk@device
    "DriverName": Attr("driver", "name"),
    "DriverType": Attr("driver", "type"),
    "DriverCache": Attr("driver", "cache"),
    "readonly": Exists("readonly"),
    "shareable": Exists("shareable"),
    "rawio": Attr("", "rawio"),
    "sgio": Attr("", "sgio"),
    "VirtualQuantity": Computed(_disk_capacity),                  # capacity of the image
    "AllocationUnits": Const("Bytes"),
    "VirtualQuantityUnits": Const("byte"),
    "PoolID": Computed(_pool_id),
    **_COMMON_DEVICE,
}


#: {P}_DiskResourceAllocationSettingData for <filesystem> (LXC mounts, virtiofs).
FILESYSTEM: dict[str, Field] = {
    "ResourceType": Const(_RT.Disk_Drive),
    "Address": _ADDRESS,
    "HostResource": OneItemList(_ADDRESS),
    "VirtualDevice": Attr("target", "dir"),
    "MountPoint": Attr("target", "dir"),
    "EmulatedType": Computed(_emulated_type, _write_emulated_type),
    "DriverType": Attr("driver", "type"),
    "AccessMode": Attr("", "accessmode"),
    "readonly": Exists("readonly"),
    "AllocationUnits": Const("Bytes"),
    "VirtualQuantityUnits": Const("byte"),
    **_COMMON_DEVICE,
}


def _disk_name(el, ctx=None):
    tgt = el.find("target")
    if tgt is None:
        return None
    return tgt.get("dir") if el.tag == "filesystem" else tgt.get("dev")



def _id_from_props(props: Props) -> Optional[str]:
    v = props.get_("VirtualDevice") or props.get_("MountPoint")
    return str(v) if v else None


# -- a new disk ------------------------------------------------------------------------

def _bus_for_target(dev: str) -> Optional[str]:
    for prefix, bus in (("vd", "virtio"), ("sd", "scsi"), ("hd", "ide"), ("fd", "fdc"),
                        ("xvd", "xen"), ("ubd", "uml")):
        if dev.startswith(prefix):
            return bus
    return None


def _pool_of_path(host: Host, path: str) -> Optional[tuple[str, Any]]:
    parent = os.path.dirname(path).rstrip("/")
    for name, target, obj in storage_pools(host):
        if target and target == parent:
            return name, obj
    return None


def _new_disk_source(host: Host, props: Props, where: str, el: Any) -> None:
    """Set type and <source> of a new disk from Address and PoolID, checking they exist."""
    address = props.get_("Address")
    pool_id = props.get_("PoolID")
    pool_name = None
    if pool_id:
        pool_name = pool_id_name(pool_id, "DiskPool", "pool", where)
        if pool_name != "0":
            pools = {n: o for n, _t, o in storage_pools(host)}
            if pool_name not in pools:
                raise InvalidSetting(where, f"PoolID {pool_id!r}: there is no storage pool "
                                            f"{pool_name!r}")
        else:
            pool_name = None           # the primordial pool: any path
    emulated = int(props.get_("EmulatedType", 0) or 0)
    if address in (None, ""):
        if emulated in (1, 2):
            return                     # an empty CD-ROM or floppy drive
        raise InvalidSetting(where, "Address (the disk's source) is missing")
    address = str(address)
    if pool_name and not address.startswith("/"):
        pools = {n: o for n, _t, o in storage_pools(host)}
        if not has_volume(host, pools[pool_name], address, address):
            raise InvalidSetting(where, f"Address {address!r}: pool {pool_name!r} has no "
                                        f"volume of that name")
        el.set("type", "volume")
        src = etree.Element("source", pool=pool_name, volume=address)
        el.insert(0, src)
        return
    if not address.startswith("/"):
        raise InvalidSetting(where, f"Address {address!r} is not an absolute path (or a volume "
                                    f"name with a PoolID)")
    # Before anything looks at the path: nothing outside storage is used or even stat()ed.
    address = host_path(host, address, where)
    in_pool = _pool_of_path(host, address)
    if pool_name and (in_pool is None or in_pool[0] != pool_name):
        raise InvalidSetting(where, f"Address {address!r} is not in pool {pool_name!r}")
    dtype = "file"
    if in_pool is not None:
        if not has_volume(host, in_pool[1], os.path.basename(address), address):
            raise InvalidSetting(where, f"Address {address!r}: pool {in_pool[0]!r} has no such "
                                        f"volume")
    elif host_is_local(host) and emulated in (0, 4):
        try:
            st = os.stat(address)
        except OSError as exc:
            raise InvalidSetting(where, f"Address {address!r} cannot be used: "
                                        f"{exc.strerror}") from None
        if stat.S_ISBLK(st.st_mode):
            dtype = "block"
    el.set("type", dtype)
    src = etree.Element("source")
    src.set("dev" if dtype == "block" else "file", address)
    el.insert(0, src)


def _build(env: BuildEnv, el: Any, p: Props) -> Any:
    """Defaults: bus from the target name; driver qemu with the image format for KVM.
    EmulatedType 3 (or MountPoint for LXC): a <filesystem> mount."""
    host, where, family = env.host, env.where, env.family
    if p.get_("EmulatedType") == 3 or (family.upper() == "LXC" and p.has("MountPoint")):
        el = etree.fromstring("<filesystem type='mount'/>")
        if not (p.get_("MountPoint") or p.get_("VirtualDevice")):
            raise InvalidSetting(where, "MountPoint (the target directory) is missing")
        if not p.get_("Address"):
            raise InvalidSetting(where, "Address (the source directory) is missing")
        etree.SubElement(el, "source", dir=host_path(host, p.get_("Address"), where))
        etree.SubElement(el, "target", dir=str(p.get_("MountPoint") or
                                               p.get_("VirtualDevice")))
        p.pop_("Address")
        p.pop_("MountPoint")
        p.pop_("VirtualDevice")
        return el
    dev = p.get_("VirtualDevice")
    if not dev or not re.match(r"^[a-z]+[a-z0-9]*$", str(dev)):
        raise InvalidSetting(where, f"VirtualDevice {dev!r} is missing or not a device "
                                    f"name such as vda")
    emulated = p.get_("EmulatedType", 0)
    if emulated not in (0, 1, 2, 4):
        raise InvalidSetting(where, f"EmulatedType {emulated!r} is not one of 0 (disk), "
                                    f"1 (CD-ROM), 2 (floppy), 3 (file system), 4 (LUN)")
    bus = p.get_("BusType") or _bus_for_target(str(dev))
    if bus is None:
        raise InvalidSetting(where, f"BusType is missing and VirtualDevice {dev!r} "
                                    f"does not imply one")
    p.put("BusType", bus)
    _new_disk_source(host, p, where, el)
    p.pop_("Address")
    if env.kvm and not p.has("DriverName"):
        p.put("DriverName", "qemu")
    if env.kvm and not p.has("DriverType"):
        src = el.find("source")
        path = src.get("file") if src is not None else None
        p.put("DriverType", image_format(host, path) or "raw")
    return el


# Used where the driver publishes no domain capabilities (test driver, LXC).
_DISK_BUSES = ("virtio", "scsi", "sata", "ide", "usb", "fdc", "sd", "xen")


def _limits(env: LimitEnv) -> Limits:
    return Limits("disk", units="Bytes", values={
        "BusType": env.enum("devices/disk", "bus", _DISK_BUSES),
        "EmulatedType": (_EMULATED.Disk, _EMULATED.CDROM, _EMULATED.floppy,
                         _EMULATED.filesystem, _EMULATED.lun)})


# -- a changed disk ----------------------------------------------------------------------

def _unique(el: Any) -> Optional[tuple[Any, str]]:
    """Two disks (or file systems) of a domain cannot share a target."""
    key = _devid(el)
    if not key:
        return None
    prop = "MountPoint" if el.tag == "filesystem" else "VirtualDevice"
    return key, f"{prop} {key!r} is already used by another device of"


def _check_change(env: ChangeEnv, el: Any, changes: dict[str, Any]) -> None:
    """A new source of an existing disk: a host path inside the storage this service may
    use, existing, with the format of the new image."""
    if "Address" not in changes or not changes["Address"]:
        return
    if el.tag == "filesystem" or el.get("type", "file") in ("file", "block", "dir"):
        # a host path: inside storage (checked before it is looked at), then it must exist
        path = changes["Address"] = host_path(env.host, changes["Address"], env.where)
        # A removable medium (CD-ROM, floppy) may name an image that is not there yet, as
        # in libvirt and libvirt-cim (the path is still inside the storage this service
        # may use); starting or changing a running guest then fails in libvirt.
        removable = el.tag == "disk" and el.get("device") in ("cdrom", "floppy")
        if host_is_local(env.host) and not removable and not os.path.exists(path):
            raise InvalidSetting(env.where, f"Address {path!r} does not exist")
        if el.tag == "disk" and el.get("type", "file") == "file" and \
                "DriverType" not in changes and \
                (el.find("driver") is not None or env.family.upper() == "KVM"):
            # as for a new disk: the format of the new image, not the old one's
            fmt = image_format(env.host, path)
            if fmt is not None and fmt != DISK["DriverType"].read(el):
                changes["DriverType"] = fmt


def _allocated(el: Any, ctx: Any) -> Optional[str]:
    """The storage pool a disk's source lives in (a ``<source pool=>`` or a file in a
    pool's target directory); filesystems come from no pool."""
    if el.tag != "disk":
        return None
    hit = ctx.disk_pool(el)
    return hit[0] if hit and hit[0] != "0" else None


KIND = DeviceKind(
    ELEMENT, "DiskResourceAllocationSettingData", "LogicalDisk", _RT.Disk_Drive,
    {"disk": DISK, "filesystem": FILESYSTEM, "*": DISK},
    device_table={"Name": Computed(_disk_name),
                  "HealthState": Const(CIM_ManagedSystemElement.HealthState.OK)},
    alias_types=(14, 15, 16, 31),
    build=_build,
    id_from_props=_id_from_props,
    special=frozenset({"poolid", "virtualquantity", "allocationunits", "hostresource"}),
    limits=_limits,
    unique=_unique,
    check_change=_check_change,
    prefetch=prefetch_storage,
    pool=PoolKind("disk", "DiskPool", 17, MIB, "Storage pools of the host", "Disk",
                  sharing=2, request_types=4, libvirt_backed=True, allocated=_allocated))
