"""Creating and deleting pools and storage volumes (the ResourcePoolConfigurationService):
the client's settings checked and turned into libvirt XML, applied through the libvirt
layer (:mod:`kvm_providers.virt.pools`, :mod:`kvm_providers.virt.volumes`).

Every operation validates everything it was given before it touches
libvirt, and undoes what it did when a later step fails, so that nothing
is left half created:

* a network: define, start; a start that fails undefines it again;
* a storage pool: define, build the target directory (dir, fs, netfs only:
  building other types would format devices), start, set autostart; a
  failing step destroys and undefines it, and removes the target directory
  if it was created here (only known for hosts whose files are this
  machine's);
* a storage volume: one ``virStorageVolCreateXML`` (libvirt removes a volume
  it failed to create).

Deleting refuses what is in use: a storage pool holding a disk of a
defined virtual system, a network an interface is connected to, a volume
that is a disk.  Storage pools are destroyed and undefined, never deleted
(their data stays where it is).

Errors: :class:`InvalidSettings` (a bad parameter: the message names the
property and what is allowed), :class:`InUse`, and libvirt's own errors as
``CIM_ERR_FAILED`` naming the host (raised by ``Host.guard``).
"""

from __future__ import annotations

import ipaddress
import os
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from lxml import etree

from ..virt import pools as vpools
from ..virt import volumes as vvolumes
from ..virt.connection import Host
from ..virt.edit import invalidate
from ..virt.errors import Conflict, VirtError
from ..virt.pools import FILE_POOL_TYPES
from ..virt.query import storage_pools
from ..virt.units import CIM_UNIT_NAMES, cim_unit_bytes
from ..virt.validate import BadName, PathNotAllowed, check_host_path, check_name
from .allocation import FORWARD_MODES, STORAGE_POOL_TYPES, VOLUME_FORMATS, pool_type_support
from .pools import DISK, NET, PRIMORDIAL, Pool, lookup_pool, storage_pool_xml

__all__ = ["InvalidSettings", "InUse", "create_network", "create_storage_pool", "delete_pool",
           "create_volume", "delete_volume", "refresh_pool", "find_volume", "Volume",
           "volumes", "volume_of_path", "network_definition", "storage_pool_definition"]

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")
_IQN = re.compile(r"^(iqn\.\d{4}-\d{2}\.[^\s]+|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16,32})$")
_WWN = re.compile(r"^(0x)?[0-9A-Fa-f]{16}$")
_BRIDGE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")   # a Linux interface name


class InvalidSettings(VirtError, ValueError):
    """A parameter or setting that cannot be used (reason invalid-setting)."""

    reason = "invalid-setting"


class InUse(Conflict, RuntimeError):
    """A pool or volume that something still uses (the message says what)."""


# -- checks ----------------------------------------------------------------------------------

def _name(what: str, value: Any) -> str:
    try:
        check_name(value, what)
    except BadName as exc:
        raise InvalidSettings(str(exc)) from None
    if value == PRIMORDIAL:
        raise InvalidSettings(f"{what} {value!r}: '0' names the primordial pool")
    return value


def _str(props: Mapping[str, Any], name: str) -> Optional[str]:
    v = props.get(name)
    if v is None:
        return None
    if not isinstance(v, str):
        raise InvalidSettings(f"{name} {v!r} must be a string")
    v = v.strip()
    return v or None


def _abs_path(name: str, value: Optional[str], required: bool = True) -> Optional[str]:
    if value is None:
        if required:
            raise InvalidSettings(f"{name} is required")
        return None
    norm = posixpath.normpath(value)
    if not value.startswith("/") or ".." in value.split("/") or "\x00" in value:
        raise InvalidSettings(f"{name} {value!r} must be an absolute path without '..'")
    return norm


def _host(name: str, value: Optional[str]) -> tuple[str, Optional[int]]:
    if value is None:
        raise InvalidSettings(f"{name} is required (the source host name or address)")
    host, port = value, None
    m = re.match(r"^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$", value) or \
        re.match(r"^([^:]+):(\d+)$", value)
    if m:
        host, port = m.group(1), int(m.group(2)) if m.group(2) else None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.match(host):
            raise InvalidSettings(f"{name} {value!r} is not a host name or address") from None
    if port is not None and not 0 < port < 65536:
        raise InvalidSettings(f"{name} {value!r}: port out of range")
    return host, port


def _flag(props: Mapping[str, Any], name: str) -> bool:
    v = props.get(name)
    if v in (None, 0, False):
        return False
    if v in (1, True):
        return True
    raise InvalidSettings(f"{name} {v!r} must be 0 or 1")


def _int(props: Mapping[str, Any], name: str) -> Optional[int]:
    v = props.get(name)
    if v is None:
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        raise InvalidSettings(f"{name} {v!r} is not a number") from None


def _sub(parent: Any, tag: str, text: Optional[str] = None, **attrs: Any) -> Any:
    el = etree.SubElement(parent, tag, {k: str(v) for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = text
    return el


def _xml(root: Any) -> str:
    return etree.tostring(root, encoding="unicode", pretty_print=True)


# -- networks ---------------------------------------------------------------------------------

def _parse_ipv4(name: str, value: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise InvalidSettings(f"{name} {value!r} is not an IPv4 address") from None


def _ipv4(name: str, value: Optional[str]) -> Optional[ipaddress.IPv4Address]:
    return None if value is None else _parse_ipv4(name, value)


def network_definition(host: Host, name: str, props: Mapping[str, Any]) -> str:
    """The network XML for a NetPoolRASD's properties, after checking them all.

    ForwardMode 0 isolated, 1 NAT, 2 routed (these three get an IPv4 network:
    Address and Netmask, and DHCP when IPRangeStart and IPRangeEnd are
    given; without Address, the Default template's free 192.168.N.0/24 with
    DHCP), 3 a bridge of the host (BridgeName, no addresses), 4 open.
    """
    from .allocation import free_subnet
    _name("ElementName (the network name)", name)
    mode_v = _int(props, "ForwardMode")
    mode_v = 1 if mode_v is None else mode_v
    if mode_v not in FORWARD_MODES:
        raise InvalidSettings(f"ForwardMode {mode_v} is not one of "
                              f"{', '.join(map(str, FORWARD_MODES))} "
                              "(0 isolated, 1 NAT, 2 routed, 3 bridge, 4 open)")
    mode = FORWARD_MODES[mode_v]
    bridge = _str(props, "BridgeName")
    fdev = _str(props, "ForwardDevice")
    addr_s, mask_s = _str(props, "Address"), _str(props, "Netmask")
    start_s, end_s = _str(props, "IPRangeStart"), _str(props, "IPRangeEnd")
    if bridge is not None and not _BRIDGE.match(bridge):
        raise InvalidSettings(f"BridgeName {bridge!r} is not an interface name "
                              "(at most 15 letters, digits, '_', '.', ':', '-')")
    if fdev is not None and not _BRIDGE.match(fdev):
        raise InvalidSettings(f"ForwardDevice {fdev!r} is not an interface name")
    root = etree.Element("network")
    _sub(root, "name", name)
    if mode == "bridge":
        if bridge is None:
            raise InvalidSettings("ForwardMode 3 (bridge) needs BridgeName, the host bridge "
                                  "to join")
        if any(v is not None for v in (addr_s, mask_s, start_s, end_s, fdev)):
            raise InvalidSettings("ForwardMode 3 (bridge) takes no Address, Netmask, "
                                  "IPRange or ForwardDevice: the host bridge has them")
        _sub(root, "forward", mode="bridge")
        _sub(root, "bridge", name=bridge)
        return _xml(root)
    if fdev is not None and mode not in ("nat", "route"):
        raise InvalidSettings("ForwardDevice is only used with ForwardMode 1 (NAT) or "
                              "2 (routed)")
    if mode is not None:
        _sub(root, "forward", mode=mode, dev=fdev)
    if bridge is not None:
        owner = vpools.network_bridges(host).get(bridge)
        if owner is not None:
            raise InvalidSettings(f"BridgeName {bridge!r} is the bridge of network {owner!r}")
        _sub(root, "bridge", name=bridge)
    addr: ipaddress.IPv4Address
    start: Optional[ipaddress.IPv4Address]
    end: Optional[ipaddress.IPv4Address]
    if addr_s is None:
        if mask_s or start_s or end_s:
            raise InvalidSettings("Netmask and IPRangeStart/IPRangeEnd need Address")
        subnet = free_subnet(host)
        if subnet is None:
            raise InvalidSettings("Address is required: no free 192.168.N.0/24 is left")
        hosts = list(subnet.hosts())
        addr, net = hosts[0], subnet
        start, end = hosts[1], hosts[-1]
    else:
        addr = _parse_ipv4("Address", addr_s)
        try:
            net = ipaddress.IPv4Network(f"{addr}/{mask_s or '255.255.255.0'}", strict=False)
        except ValueError:
            raise InvalidSettings(f"Netmask {mask_s!r} is not an IPv4 netmask") from None
        if mask_s is not None and mask_s.count(".") != 3:
            raise InvalidSettings(f"Netmask {mask_s!r} is not a dotted IPv4 netmask")
        if net.prefixlen > 30 or addr in (net.network_address, net.broadcast_address):
            raise InvalidSettings(f"Address {addr} with Netmask {net.netmask} leaves no "
                                  "room for hosts (it is the network or broadcast address, "
                                  "or the network is smaller than /30)")
        if addr.is_loopback or addr.is_multicast or addr.is_unspecified or addr.is_link_local:
            raise InvalidSettings(f"Address {addr} cannot be a network's address")
        start, end = _ipv4("IPRangeStart", start_s), _ipv4("IPRangeEnd", end_s)
        if (start is None) != (end is None):
            raise InvalidSettings("IPRangeStart and IPRangeEnd come together (the DHCP range)")
        if start is not None and end is not None:
            for what, ip in (("IPRangeStart", start), ("IPRangeEnd", end)):
                if ip not in net or ip in (net.network_address, net.broadcast_address):
                    raise InvalidSettings(f"{what} {ip} is not a host address of {net}")
            if int(start) > int(end):
                raise InvalidSettings(f"IPRangeStart {start} is after IPRangeEnd {end}")
            if int(start) <= int(addr) <= int(end):
                raise InvalidSettings(f"the DHCP range {start}-{end} contains the network's "
                                      f"own Address {addr}")
    for other, subnet in vpools.network_subnets(host):
        if subnet.overlaps(net):
            raise InvalidSettings(f"Address {addr}/{net.prefixlen} overlaps {subnet} of "
                                  f"network {other!r}")
    ip = _sub(root, "ip", address=str(addr), netmask=str(net.netmask))
    if start is not None:
        _sub(_sub(ip, "dhcp"), "range", start=str(start), end=str(end))
    return _xml(root)


def create_network(host: Host, name: str, props: Mapping[str, Any]) -> Pool:
    """Define and start a network; undefined again if it cannot start."""
    host.conn()     # a host that cannot be reached fails first, before the checks
    _name("ElementName (the network name)", name)
    if lookup_pool(host, NET, name) is not None:
        raise InvalidSettings(f"ElementName {name!r}: a network of that name exists")
    xml = network_definition(host, name, props)
    try:
        net = vpools.define_network(host, name, xml)
    finally:
        _forget(host)
    return Pool(host, NET, name, net)


# -- storage pools ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _PoolPlan:
    xml: str
    ptype: str
    target: Optional[str]
    autostart: bool


_DEFAULT_TARGET = {"iscsi": "/dev/disk/by-path", "scsi": "/dev/disk/by-path",
                   "mpath": "/dev/mapper", "disk": "/dev"}


def storage_pool_definition(host: Host, name: str, props: Mapping[str, Any]) -> _PoolPlan:
    """The storage pool XML for a DiskPoolRASD's properties, after checking them all."""
    _name("ElementName (the storage pool name)", name)
    tval = _int(props, "Type")
    if tval is None:
        raise InvalidSettings("Type is required (the storage pool type: "
                              + ", ".join(f"{k} {v}" for k, v in STORAGE_POOL_TYPES.items())
                              + ")")
    ptype = STORAGE_POOL_TYPES.get(tval)
    support = pool_type_support(host)
    if ptype is None or ptype not in support:
        have = ", ".join(f"{k} {v}" for k, v in STORAGE_POOL_TYPES.items() if v in support)
        raise InvalidSettings(f"Type {tval} is not a storage pool type this host supports "
                              f"({have})")
    autostart = _flag(props, "Autostart")
    path = _abs_path("Path", _str(props, "Path"), required=False)
    devs = props.get("DevicePaths") or []
    if isinstance(devs, str):
        devs = [devs]
    devs = [d.strip() for d in devs if isinstance(d, str) and d.strip()]
    host_s, srcdir = _str(props, "Host"), _str(props, "SourceDirectory")
    srcname, srcfmt = _str(props, "SourceName"), _str(props, "SourceFormat")
    adapter, wwpn, wwnn = _str(props, "AdapterName"), _str(props, "PortName"), \
        _str(props, "NodeName")
    initiator = _str(props, "InitiatorIQN")
    if srcfmt is not None and support[ptype]["source"] and srcfmt not in support[ptype]["source"]:
        raise InvalidSettings(f"SourceFormat {srcfmt!r} is not a {ptype} source format "
                              f"({', '.join(support[ptype]['source'])})")

    def one_device(absolute: bool = True) -> str:
        if len(devs) != 1:
            raise InvalidSettings(f"DevicePaths: a {ptype} pool takes exactly one device "
                                  f"(got {len(devs)})")
        if absolute:
            _abs_path("DevicePaths[0]", devs[0])
        return devs[0]

    root = etree.Element("pool", type=ptype)
    _sub(root, "name", name)
    src = _sub(root, "source")
    if ptype in ("dir", "fs", "netfs", "vstorage"):
        _abs_path("Path", path)
    if ptype == "fs":
        _sub(src, "device", path=one_device())
    elif ptype == "disk":
        _sub(src, "device", path=one_device())
    elif ptype == "logical":
        for d in devs:
            _sub(src, "device", path=_abs_path("DevicePaths", d))
        if srcname is not None:
            _sub(src, "name", srcname)
    elif ptype == "netfs":
        h, port = _host("Host", host_s)
        _sub(src, "host", name=h, port=port)
        _sub(src, "dir", path=_abs_path("SourceDirectory", srcdir))
    elif ptype in ("iscsi", "iscsi-direct"):
        h, port = _host("Host", host_s)
        _sub(src, "host", name=h, port=port)
        target_iqn = one_device(absolute=False)
        if not _IQN.match(target_iqn):
            raise InvalidSettings(f"DevicePaths[0] {target_iqn!r}: an {ptype} pool's device "
                                  "is the target IQN (iqn.YYYY-MM.domain:name)")
        _sub(src, "device", path=target_iqn)
        if ptype == "iscsi-direct" and initiator is None:
            raise InvalidSettings("InitiatorIQN is required for an iscsi-direct pool")
        if initiator is not None:
            if not _IQN.match(initiator):
                raise InvalidSettings(f"InitiatorIQN {initiator!r} is not an IQN")
            _sub(_sub(src, "initiator"), "iqn", name=initiator)
    elif ptype == "scsi":
        if adapter is not None:
            if not re.match(r"^scsi_host\d+$|^host\d+$", adapter):
                raise InvalidSettings(f"AdapterName {adapter!r} is not a SCSI host (hostN)")
            _sub(src, "adapter", type="scsi_host", name=adapter)
        elif wwpn is not None and wwnn is not None:
            for what, v in (("PortName", wwpn), ("NodeName", wwnn)):
                if not _WWN.match(v):
                    raise InvalidSettings(f"{what} {v!r} is not a world wide name "
                                          "(16 hexadecimal digits)")
            _sub(src, "adapter", type="fc_host", wwnn=wwnn, wwpn=wwpn)
        else:
            raise InvalidSettings("a scsi pool needs AdapterName, or PortName and NodeName "
                                  "(a vHBA)")
    elif ptype in ("rbd", "gluster"):
        h, port = _host("Host", host_s)
        _sub(src, "host", name=h, port=port)
        if srcname is None:
            raise InvalidSettings(f"SourceName is required for a {ptype} pool (the "
                                  f"{'RBD pool' if ptype == 'rbd' else 'Gluster volume'})")
        if ptype == "gluster":
            _sub(src, "dir", path=_abs_path("SourceDirectory", srcdir, required=False) or "/")
        _sub(src, "name", srcname)
    elif ptype in ("zfs", "vstorage"):
        if srcname is None:
            raise InvalidSettings(f"SourceName is required for a {ptype} pool")
        for d in devs:
            _sub(src, "device", path=_abs_path("DevicePaths", d))
        _sub(src, "name", srcname)
    if srcfmt is not None and ptype in ("fs", "netfs", "disk", "logical"):
        _sub(src, "format", type=srcfmt)
    if len(src) == 0:
        root.remove(src)
    if ptype in ("rbd", "gluster", "iscsi-direct", "zfs"):
        if path is not None:
            raise InvalidSettings(f"Path: a {ptype} pool has no target path")
        target = None
    else:
        target = path or _DEFAULT_TARGET.get(ptype)
        if ptype == "logical" and target is None:
            target = f"/dev/{srcname or name}"
        _sub(_sub(root, "target"), "path", target)
    # Every host path of the pool must lie in allowed storage: its volumes can be
    # deleted (DeleteResourceInPool) and used as disks by any client.
    checks = [("Path" if path else f"Path (the default target of {ptype} pools)", target)]
    checks += [(f"DevicePaths[{i}]", d) for i, d in enumerate(devs) if d.startswith("/")]
    for what, value in checks:
        if value is not None:
            try:
                check_host_path(host, value, what, pools=False)
            except PathNotAllowed as exc:
                raise InvalidSettings(str(exc)) from None
    return _PoolPlan(_xml(root), ptype, target, autostart)


def _check_pool_unique(host: Host, name: str, target: Optional[str]) -> None:
    for other, tpath, _obj in storage_pools(host):
        if other == name:
            raise InvalidSettings(f"ElementName {name!r}: a storage pool of that name exists")
        if target and tpath and tpath.rstrip("/") == target.rstrip("/") and \
                target not in _DEFAULT_TARGET.values():
            raise InvalidSettings(f"Path {target!r} is the target of storage pool {other!r}")


def create_storage_pool(host: Host, name: str, props: Mapping[str, Any]) -> Pool:
    """Define, build (directories only), start and (if asked) autostart a storage pool."""
    host.conn()     # a host that cannot be reached fails first, before the checks
    plan = storage_pool_definition(host, name, props)
    _check_pool_unique(host, name, plan.target)
    if host.files_local and plan.ptype in ("dir", "fs", "netfs") and plan.target:
        if os.path.lexists(plan.target) and not os.path.isdir(plan.target):
            raise InvalidSettings(f"Path {plan.target!r} exists and is not a directory")
    try:
        pool = vpools.define_storage_pool(host, name, plan.xml, plan.ptype, plan.target,
                                          plan.autostart)
    finally:
        _forget(host)
    return Pool(host, DISK, name, pool)


# -- who uses what --------------------------------------------------------------------------------

def _names(users: list[str]) -> str:
    return ", ".join(repr(u) for u in users[:5]) + (" ..." if len(users) > 5 else "")


def delete_pool(pool: Pool) -> None:
    """Stop and undefine a storage pool or network nothing uses (its data stays)."""
    host = pool.host
    if pool.primordial or not pool.kind.libvirt_backed:
        raise InvalidSettings(f"Pool {pool.pool_id}: a primordial pool cannot be deleted")
    users = vpools.users(pool.libvirt)
    if users:
        what = "disks" if pool.kind is DISK else "network interfaces"
        raise InUse(f"{pool.pool_id} is in use: {what} of virtual system(s) {_names(users)}")
    vpools.undefine(pool.libvirt)
    _forget(host)


def refresh_pool(pool: Pool) -> None:
    """Rescan a storage pool's volumes (changes made outside libvirt)."""
    if pool.kind is not DISK or pool.primordial:
        raise InvalidSettings(f"Pool {pool.pool_id}: only storage pools can be refreshed")
    if not vpools.is_running(pool.libvirt):
        raise InvalidSettings(f"Pool {pool.pool_id} is not active")
    vpools.refresh(pool.libvirt)
    _forget(pool.host)


# -- volumes ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Volume:
    """A storage volume: its pool, name, path and libvirt object."""

    pool: Pool
    name: str
    path: str
    obj: Any


def volumes(pool: Pool) -> list[Volume]:
    """The volumes of an active storage pool (file pools: paths without a call per volume)."""
    if pool.kind is not DISK or pool.primordial or pool.obj is None:
        return []
    return [Volume(pool, name, path, obj) for name, path, obj in
            vvolumes.list_volumes(pool.libvirt)]


def volume_sizes(vol: Volume) -> Optional[tuple[int, int]]:
    """(capacity, allocation) of a volume in bytes; None if it was deleted (or its pool
    stopped) meanwhile.  A lost or hung host fails (HostUnavailable), as does any other
    failure (CIM_ERR_FAILED naming the host): never an empty answer."""
    return vvolumes.volume_sizes(vol.pool.host, vol.path, vol.obj)


def volume_format(vol: Volume) -> Optional[str]:
    """The format of a volume (``raw``, ``qcow2`` ...; None if its XML names none, or it
    was deleted meanwhile), failing as :func:`volume_sizes` does."""
    return vvolumes.volume_format(vol.pool.host, vol.path, vol.obj)


def volume_of_path(host: Host, path: str) -> Optional[Volume]:
    """The volume whose path is `path`, or None."""
    if not isinstance(path, str) or not path:
        return None
    hit = vvolumes.lookup_by_path(host, path)
    if hit is None:
        return None
    pool_name, pool_obj, (name, vpath, obj) = hit
    return Volume(Pool(host, DISK, pool_name, pool_obj), name, vpath, obj)


def find_volume(pool: Pool, name: Optional[str] = None, path: Optional[str] = None
                ) -> Optional[Volume]:
    """A volume of `pool` by name or path, or None."""
    if path is not None:
        vol = volume_of_path(pool.host, path)
        return vol if vol is not None and vol.pool.name == pool.name else None
    if name is None:
        return None
    hit = vvolumes.lookup_by_name(pool.libvirt, name)
    return None if hit is None else Volume(pool, *hit)


def _bytes(props: Mapping[str, Any], name: str, units: Optional[str]) -> Optional[int]:
    n = _int(props, name)
    if n is None:
        return None
    if n < 0:
        raise InvalidSettings(f"{name} {n} is negative")
    factor = cim_unit_bytes(units) if units else 1
    if factor is None:
        raise InvalidSettings(f"AllocationUnits {units!r} is not a unit of bytes "
                              f"({CIM_UNIT_NAMES})")
    return n * factor


def create_volume(pool: Pool, props: Mapping[str, Any]) -> Volume:
    """Create a storage volume from StorageVolumeRASD properties in an active storage pool.

    VolumeName and Capacity are required; FormatType 1 raw (default) or 2
    qcow2 (file pools only); AllocationQuantity the space to allocate now
    (default 0: sparse); AllocationUnits the unit of both (default Bytes);
    Path, if given, must be the pool's target path or the volume's path.
    """
    return make_volume(pool, prepare_volume(pool, props))


def prepare_volume(pool: Pool, props: Mapping[str, Any]) -> tuple[str, int, str]:
    """Check a volume's settings (as :func:`create_volume`); (name, bytes to allocate, XML)
    for :func:`make_volume`, which does the long part (a job, when it allocates)."""
    if pool.kind is not DISK or pool.primordial:
        raise InvalidSettings(f"Pool {pool.pool_id}: volumes are created in storage pools "
                              "(DiskPool/<name>)")
    host = pool.host
    name = _name("VolumeName", props.get("VolumeName"))
    units = _str(props, "AllocationUnits")
    capacity = _bytes(props, "Capacity", units)
    if capacity is None or capacity <= 0:
        raise InvalidSettings("Capacity is required and must be positive")
    alloc = _bytes(props, "AllocationQuantity", units) or 0
    if alloc > capacity:
        raise InvalidSettings(f"AllocationQuantity {alloc} exceeds Capacity {capacity} (bytes)")
    root = storage_pool_xml(pool)
    ptype = root.get("type") if root is not None else None
    target = (root.findtext("target/path") or "").rstrip("/") if root is not None else ""
    fmt_v = _int(props, "FormatType")
    fmt_v = 1 if fmt_v is None else fmt_v
    fmts = pool_type_support(host).get(ptype or "", {}).get("volume", ("raw",))
    if fmt_v not in VOLUME_FORMATS or VOLUME_FORMATS[fmt_v] not in fmts:
        ok = [f"{k} {v}" for k, v in VOLUME_FORMATS.items() if v in fmts]
        raise InvalidSettings(f"FormatType {fmt_v} is not a volume format of {ptype} pool "
                              f"{pool.name!r} ({', '.join(ok)})")
    path = _str(props, "Path")
    if path is not None and target and path.rstrip("/") not in \
            (target, posixpath.join(target, name)):
        raise InvalidSettings(f"Path {path!r} is not in storage pool {pool.name!r} "
                              f"(its path is {target!r})")
    if not vpools.is_running(pool.libvirt):
        raise InvalidSettings(f"Pool {pool.pool_id} is not active")
    if find_volume(pool, name=name) is not None:
        raise InvalidSettings(f"VolumeName {name!r}: pool {pool.name!r} has a volume of "
                              "that name")
    available = vpools.space_available(pool.libvirt)
    if alloc > available:
        raise InvalidSettings(f"AllocationQuantity {alloc} exceeds the space available in "
                              f"pool {pool.name!r} ({available} bytes)")
    vol = etree.Element("volume")
    _sub(vol, "name", name)
    _sub(vol, "capacity", str(capacity), unit="bytes")
    _sub(vol, "allocation", str(alloc), unit="bytes")
    if ptype in FILE_POOL_TYPES:
        _sub(_sub(vol, "target"), "format", type=VOLUME_FORMATS[fmt_v])
    return name, alloc, _xml(vol)


def make_volume(pool: Pool, prepared: tuple[str, int, str]) -> Volume:
    """Create the volume :func:`prepare_volume` checked."""
    name, _alloc, xml = prepared
    result = Volume(pool, *vvolumes.create(pool.libvirt, name, xml))
    _forget(pool.host)
    return result


def delete_volume(vol: Volume) -> None:
    """Delete a volume that is no disk of any virtual system."""
    host = vol.pool.host
    users = vvolumes.volume_users(host, vol.pool.name, vol.name, vol.path)
    if users:
        raise InUse(f"volume {vol.path!r} is in use: a disk of virtual system(s) "
                    f"{_names(users)}")
    vvolumes.delete(host, vol.path, vol.obj)
    _forget(host)


def _forget(host: Host) -> None:
    """Drop this request's memos of the host: pools and volumes changed."""
    invalidate(host)

