"""Allocation capabilities (DSP1043): one per pool (as libvirt-cim), and the RASD templates that say what may be allocated (SettingsDefineCapabilities).

Everything here is computed from :func:`kvm_providers.model.limits.allocation_limits`
(the limits the VirtualSystemManagementService enforces: what is advertised
is what is accepted), from the storage pool capabilities of the host, and
from the pool itself (space available, target path).  Nothing depends on
the number of volumes in a pool: a pool of 1000 volumes has as many
templates as an empty one.

InstanceIDs (host-qualified with several hosts):

* AllocationCapabilities of a pool: the pool's InstanceID (libvirt-cim's),
  e.g. ``DiskPool/default``.
* a template: ``<capabilities InstanceID>#<name>``, the name being
  ``Default``, ``Minimum``, ``Maximum``, ``Increment`` (libvirt-cim's words,
  which its clients look for) or ``Point <Property>=<value>`` for one
  supported value of an enumerated property; templates of storage volumes
  (CreateResourceInPool) are prefixed ``Volume``.

A template is a :class:`Template`: RASD class (without family prefix),
property values, and the ValueRole / ValueRange / PropertyPolicy of its
SettingsDefineCapabilities association.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Optional

from ..schema.valuemaps import (CIM_ResourceAllocationSettingData,
                               P_DiskPoolResourceAllocationSettingData,
                               P_NetPoolResourceAllocationSettingData)
from ..virt import keys, mapping
from ..virt.connection import Host
from ..virt.pools import network_subnets
from ..virt.pools import pool_type_support as vpool_type_support
from .kinds import KINDS as DEVICE_KINDS
from .limits import Limits, allocation_limits
from .pools import (DISK, NET, Pool, PoolKind, is_active, list_pools, pool_from_id, pool_info,
                    storage_pool_xml)

_RT = CIM_ResourceAllocationSettingData.ResourceType
_FORWARD = P_NetPoolResourceAllocationSettingData.ForwardMode
_DIR = P_DiskPoolResourceAllocationSettingData.Type.Directory

__all__ = ["Capabilities", "Template", "host_capabilities", "lookup_capabilities",
           "templates", "lookup_template", "FORWARD_MODES", "STORAGE_POOL_TYPES",
           "VOLUME_FORMATS", "VOLUME_RESOURCE_TYPE", "pool_type_support", "free_subnet",
           "VALUE_ROLE", "VALUE_RANGE"]

#: CIM_SettingsDefineCapabilities.ValueRole / ValueRange values.
VALUE_ROLE = {"Default": 0, "Supported": 3}
VALUE_RANGE = {"Point": 0, "Minimums": 1, "Maximums": 2, "Increments": 3}

#: DiskPoolResourceAllocationSettingData.Type -> libvirt storage pool type.
#: 1..7 are libvirt-cim's values; 8.. this implementation's (mof/virt/templates).
STORAGE_POOL_TYPES: dict[int, str] = {
    1: "dir", 2: "fs", 3: "netfs", 4: "disk", 5: "iscsi", 6: "logical", 7: "scsi",
    8: "mpath", 9: "rbd", 10: "gluster", 11: "zfs", 12: "iscsi-direct", 13: "vstorage"}

#: StorageVolumeResourceAllocationSettingData.FormatType -> libvirt volume format.
VOLUME_FORMATS: dict[int, str] = {1: "raw", 2: "qcow2"}

#: ResourceType of StorageVolumeResourceAllocationSettingData: DMTF's "Storage Volume"
#: (libvirt-cim used its vendor value 32768).
VOLUME_RESOURCE_TYPE = 32

#: NetPoolResourceAllocationSettingData.ForwardMode -> libvirt <forward mode> (None: isolated).
FORWARD_MODES: dict[int, Optional[str]] = {0: None, 1: "nat", 2: "route", 3: "bridge",
                                           4: "open"}

# Per kind (kinds/<kind>.py): the RASD class and table, and
# how resources are shared (CIM_AllocationCapabilities.SharingMode) come from the
# kinds registry; only kinds with a pool have allocation capabilities.
_DEVICE_KIND = {k.name: k for k in DEVICE_KINDS}


@dataclass(frozen=True)
class Capabilities:
    """One {P}_AllocationCapabilities: of a pool, or of the host for one kind."""

    host: Host
    kind: PoolKind
    pool: Optional[Pool]            # None: the host's capabilities for `kind`

    @property
    def instance_id(self) -> str:
        if self.pool is not None:
            return self.pool.instance_id
        return keys.qualify(self.host, f"Host/{self.kind.host_ac}")

    @property
    def element_name(self) -> str:
        if self.pool is not None:
            return f"Allocation capabilities of {self.pool.pool_id}"
        return f"{self.kind.host_ac} allocation capabilities of the host"

    def properties(self) -> dict[str, Any]:
        """The non-key properties of the instance (values or zero-argument callables)."""
        k = self.kind
        pool = self.pool

        def sub():     # the storage pool type; asked only when ResourceSubType is wanted
            if pool is None or k is not DISK or pool.primordial:
                return None
            root = storage_pool_xml(pool)
            return root.get("type") if root is not None else None
        return {
            "ElementName": self.element_name,
            "ResourceType": k.resource_type,
            "OtherResourceType": k.other_resource_type,
            "ResourceSubType": sub,
            # A disk request may name a specific volume (Address); other kinds are general.
            "RequestTypesSupported": k.request_types,
            "SharingMode": k.sharing,
        }


@dataclass(frozen=True)
class Template:
    """A RASD template of an AllocationCapabilities (a SettingsDefineCapabilities target)."""

    instance_id: str
    rasd_class: str                  # without family prefix
    value_role: int
    value_range: int
    props: dict[str, Any] = field(default_factory=dict)
    property_policy: int = 0         # Independent

    def classname(self, family: str) -> str:
        return f"{family}_{self.rasd_class}"


# -- capabilities ---------------------------------------------------------------------------

def host_capabilities(host: Host) -> list[Capabilities]:
    """The host's AllocationCapabilities: one per resource pool (libvirt-cim's set).

    There are no capabilities of the host apart from its pools' (libvirt-cim had
    none, and its clients count them against the pools: docs/compat.md,
    "Allocation capabilities"); the primordial pools' describe each kind.
    """
    return [Capabilities(host, p.kind, p) for p in list_pools(host)]


def lookup_capabilities(family: Optional[str], instance_id: Any) -> Optional[Capabilities]:
    """The existing AllocationCapabilities an InstanceID names (a pool's), or None."""
    hit = keys.parse_qualified(family, instance_id)
    if hit is None:
        return None
    host, _rest = hit
    pool = pool_from_id(family, instance_id)
    return Capabilities(host, pool.kind, pool) if pool is not None else None


# -- templates -----------------------------------------------------------------------------

def pool_type_support(host: Host) -> dict[str, dict[str, tuple[str, ...]]]:
    """{libvirt pool type: {'source': source formats, 'volume': volume formats}} the host's
    storage driver supports, of the types a DiskPoolRASD's Type names
    (:func:`kvm_providers.virt.pools.pool_type_support`)."""
    return vpool_type_support(host, STORAGE_POOL_TYPES.values())


def _used_subnets(host: Host) -> list[ipaddress.IPv4Network]:
    return [net for _name, net in network_subnets(host)]


def free_subnet(host: Host) -> Optional[ipaddress.IPv4Network]:
    """The first 192.168.N.0/24 (N from 100) that no virtual network of the host uses."""
    used = _used_subnets(host)
    for n in range(100, 255):
        net = ipaddress.IPv4Network(f"192.168.{n}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    return None


class _Builder:
    def __init__(self, ac: Capabilities):
        self.ac = ac
        self.out: list[Template] = []

    def add(self, rasd_class: str, name: str, role: str, range_: str,
            props: dict[str, Any]) -> None:
        self.out.append(Template(f"{self.ac.instance_id}#{name}", rasd_class,
                                 VALUE_ROLE[role], VALUE_RANGE[range_],
                                 {k: v for k, v in props.items() if v is not None}))


def _common(ac: Capabilities, kind_name: str) -> dict[str, Any]:
    table = _DEVICE_KIND[kind_name].tables["*"]
    const: dict[str, Any] = {}
    for name in ("ResourceType", "OtherResourceType", "AllocationUnits"):
        field = table.get(name)
        if isinstance(field, mapping.Const):
            const[name] = field.value
    if ac.pool is not None:
        const["PoolID"] = ac.pool.pool_id
    return const


def _device_templates(b: _Builder, ac: Capabilities, lim: Optional[Limits]) -> None:
    kind = ac.kind.name
    cls = _DEVICE_KIND[kind].rasd_class
    base = _common(ac, kind)
    default = dict(base)
    if kind == "net" and ac.pool is not None:
        default.update(NetworkType="network", NetworkName=ac.pool.name)
    ranges = []
    if lim is not None and lim.minimum is not None:
        quantity = ("VirtualQuantity", "Reservation", "Limit") if kind == "mem" \
            else ("VirtualQuantity",)
        if lim.default is not None:
            default.update({q: lim.default for q in quantity})
        ranges = [(word, {q: value for q in quantity})
                  for word, value in (("Minimum", lim.minimum), ("Maximum", lim.maximum),
                                      ("Increment", lim.increment)) if value is not None]
    b.add(cls, "Default", "Default", "Point", default)
    for word, values in ranges:
        b.add(cls, word, "Supported", word + "s", {**base, **values})
    for prop, points in (lim.values if lim is not None else {}).items():
        for v in points:
            b.add(cls, f"Point {prop}={v}", "Supported", "Point", {**base, prop: v})


def _volume_templates(b: _Builder, ac: Capabilities) -> None:
    pool = ac.pool
    if pool is None:  # volume templates belong to a storage pool's capabilities only
        return
    root = storage_pool_xml(pool)
    ptype = root.get("type") if root is not None else None
    support = pool_type_support(ac.host).get(ptype or "", {})
    formats = [k for k, v in VOLUME_FORMATS.items() if v in support.get("volume", ("raw",))]
    info = pool_info(pool) if is_active(pool) else None
    available = int(info[3]) if info else None
    base = {"ResourceType": VOLUME_RESOURCE_TYPE, "PoolID": pool.pool_id,
            "AllocationUnits": "Bytes",
            "Path": root.findtext("target/path") if root is not None else None}
    cls = "StorageVolumeResourceAllocationSettingData"
    b.add(cls, "Volume Default", "Default", "Point",
          {**base, "FormatType": formats[0] if formats else None, "AllocationQuantity": 0})
    b.add(cls, "Volume Minimum", "Supported", "Minimums",
          {**base, "Capacity": 1, "AllocationQuantity": 0})
    if available is not None:
        b.add(cls, "Volume Maximum", "Supported", "Maximums",
              {**base, "Capacity": available, "AllocationQuantity": available})
    b.add(cls, "Volume Increment", "Supported", "Increments",
          {**base, "Capacity": 1, "AllocationQuantity": 1})
    for f in formats:
        b.add(cls, f"Volume Point FormatType={f}", "Supported", "Point", {**base, "FormatType": f})


def _disk_pool_templates(b: _Builder, ac: Capabilities) -> None:
    if ac.pool is None:
        return
    support = pool_type_support(ac.host)
    types = [k for k, v in STORAGE_POOL_TYPES.items() if v in support]
    base = {"ResourceType": _RT.Disk_Drive, "PoolID": ac.pool.pool_id}
    cls = "DiskPoolResourceAllocationSettingData"
    b.add(cls, "Default", "Default", "Point",
          {**base, "Type": _DIR if _DIR in types else (types[0] if types else None),
           "Autostart": 0})
    for t in types:
        b.add(cls, f"Point Type={t}", "Supported", "Point", {**base, "Type": t})


def _net_pool_templates(b: _Builder, ac: Capabilities) -> None:
    if ac.pool is None:
        return
    base = {"ResourceType": _RT.Ethernet_Adapter, "PoolID": ac.pool.pool_id}
    cls = "NetPoolResourceAllocationSettingData"
    default = {**base, "ForwardMode": _FORWARD.NAT}
    subnet = free_subnet(ac.host)
    if subnet is not None:
        hosts = list(subnet.hosts())
        default.update(Address=str(hosts[0]), Netmask=str(subnet.netmask),
                       IPRangeStart=str(hosts[1]), IPRangeEnd=str(hosts[-1]))
    b.add(cls, "Default", "Default", "Point", default)
    for mode in FORWARD_MODES:
        b.add(cls, f"Point ForwardMode={mode}", "Supported", "Point",
              {**base, "ForwardMode": mode})


def templates(ac: Capabilities) -> list[Template]:
    """The RASD templates of `ac` (their number does not depend on pool contents)."""
    b = _Builder(ac)
    pool = ac.pool
    if pool is not None and pool.primordial and ac.kind is DISK:
        _disk_pool_templates(b, ac)
    elif pool is not None and pool.primordial and ac.kind is NET:
        _net_pool_templates(b, ac)
    else:
        lim = allocation_limits(ac.host).get(ac.kind.name)
        _device_templates(b, ac, lim)
        if pool is not None and ac.kind is DISK:
            _volume_templates(b, ac)
    return b.out


def lookup_template(family: Optional[str], instance_id: Any) -> Optional[Template]:
    """The template an InstanceID names (None if it names none, or its pool is gone)."""
    if not isinstance(instance_id, str) or "#" not in instance_id:
        return None
    ac_id, _sep, name = instance_id.rpartition("#")
    if not name or name.isdigit():   # '#2' ends duplicate device ids, never a template
        return None
    ac = lookup_capabilities(family, ac_id)
    if ac is None:
        return None
    for t in templates(ac):
        if t.instance_id == instance_id:
            return t
    return None

