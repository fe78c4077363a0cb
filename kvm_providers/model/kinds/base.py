"""The CIM side of a device kind: :class:`DeviceKind` (and its pool, :class:`PoolKind`, and
limits, :class:`Limits`), and the mapping fields every device RASD shares.

A kind module (``model/kinds/disk.py`` ...) declares the libvirt facts of its
kind, ``ELEMENT`` (a :class:`~kvm_providers.virt.elements.ElementKind`: XML
elements, device ids, skeleton), and one :class:`DeviceKind` named ``KIND``
around it; the registry (:mod:`kvm_providers.model.kinds`) lists them.  The generic code (settings, limits, pools, allocation, manage, the
providers) reads everything kind-specific from here and has no per-kind
branches.

This module imports nothing of the libvirt layer but the element kind type, the
mapping field types (:mod:`kvm_providers.virt.mapping`) and the client property
values (:mod:`kvm_providers.virt.props`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from ...virt.devices import parent_devid
from ...virt.keys import device_id
from ...virt.mapping import AttrNames, Computed, Const, Field, Table
from ...virt.elements import ElementKind
from ...virt.props import Props

if TYPE_CHECKING:
    from ...virt.connection import Host
    from ...virt.domain import DomainXML

__all__ = ["DeviceKind", "PoolKind", "Limits", "LimitEnv", "BuildEnv", "ChangeEnv", "LiveOp",
           "COMMON_DEVICE", "no_id", "other_type_table", "container_guest"]


@dataclass(frozen=True)
class Limits:
    """The advertised limits of one kind of resource on one host (see limits.py)."""

    kind: str
    minimum: Optional[int] = None
    maximum: Optional[int] = None
    default: Optional[int] = None
    increment: Optional[int] = None
    units: Optional[str] = None
    values: dict[str, tuple[Any, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class LimitEnv:
    """What a kind's limits hook may look at: the host's facts, computed once per host."""

    conn_type: str                       # virConnectGetType(): 'QEMU', 'Test', 'LXC' ...
    domcaps: Any                         # parsed domain capabilities, or None
    max_vcpus: Optional[int]
    max_memory_kib: Optional[int]

    def enum(self, path: str, name: str, fallback: tuple[str, ...]) -> tuple[str, ...]:
        """The values of enum `name` under `path` of the domain capabilities, else
        `fallback` (drivers without domain capabilities: test driver, LXC)."""
        dc = self.domcaps
        if dc is None:
            return fallback
        node = dc.find(path)
        if node is None or node.get("supported") == "no":
            return fallback
        vals = tuple(v.text for v in node.iterfind(f"enum[@name='{name}']/value") if v.text)
        return vals or fallback


@dataclass
class BuildEnv:
    """What a kind's builder of a new device may use (settings.new_device makes it)."""

    host: "Host"
    family: str
    doc: "DomainXML"
    where: str
    taken_macs: Mapping[str, str]
    #: check(kind, {property: value}): raise InvalidSetting for values outside the limits.
    check: Callable[["DeviceKind", Mapping[str, Any]], None]

    @property
    def kvm(self) -> bool:
        return self.family.upper() == "KVM"


@dataclass
class ChangeEnv:
    """What a kind's hooks for changing a domain's settings may use (manage.py makes it).

    The generic comparing and writing of client settings (settings.py) comes
    as functions: settings.py consumes the kinds registry, so the kinds cannot
    import it.
    """

    host: "Host"
    family: str
    doc: "DomainXML"                 # the persistent definition being edited
    where: str                       # where the RASD was in the request
    name: str                        # the domain's name
    #: MAC (lower case) -> the domain that has it, on the host (read when first used).
    taken_macs: Mapping[str, str]
    #: diff(table, element, props) -> {property: value} of what differs (InvalidSetting
    #: for a differing property that cannot be written).
    diff: Callable[[Mapping[str, Field], Any, Props], dict[str, Any]]
    #: write(table, element, changes): write what diff gave.
    write: Callable[[Mapping[str, Field], Any, Mapping[str, Any]], None]
    #: check(kind name, {property: value}, suffix=""): InvalidSetting for values outside
    #: the limits (suffix: appended to the description, e.g. " (KiB)").
    check: Callable[..., None]
    #: What the client could see (the live definition of a running system; else `doc`).
    reference: Optional["DomainXML"] = None
    #: The running system's live definition (None: not running, or a new system).
    live: Optional["DomainXML"] = None
    #: A new system (DefineSystem): every given value counts, not only differing ones.
    new: bool = False


@dataclass(frozen=True)
class LiveOp:
    """A change to make to the running system, and its undo if a later step fails: calls
    made by the libvirt layer (:func:`kvm_providers.virt.edit.set_vcpus_live` ...)."""

    what: str
    do: Callable[[Any], Any]
    undo: Optional[Callable[[Any], Any]] = None


@dataclass(frozen=True)
class PoolKind:
    """The resource pool a kind of device is allocated from (DSP1041)."""

    name: str                           # the device kind allocated from it
    classname: str                      # class without family prefix ('DiskPool')
    resource_type: int
    units: str                          # AllocationUnits (DSP0004 programmatic units)
    caption: str                        # Caption / ElementName of the primordial pool
    host_ac: str                        # 'Disk': InstanceID Host/Disk of its capabilities
    sharing: int                        # CIM_AllocationCapabilities.SharingMode
    request_types: int = 3              # RequestTypesSupported (3 general, 4 specific)
    other_resource_type: Optional[str] = None
    libvirt_backed: bool = False        # one pool per libvirt object besides the primordial one
    #: (element, ctx) -> the name of the pool a device is allocated from, None for none;
    #: None here: every device comes from the primordial pool.
    allocated: Optional[Callable[[Any, Any], Optional[str]]] = field(default=None,
                                                                     compare=False)
    #: The RASD property whose value a setting takes from the pool (Reserved is their
    #: sum); None: each device takes one.
    reserves: Optional[str] = None
    #: host_capacity(host capabilities) -> Capacity of the primordial pool from the
    #: host's capabilities (hostcaps.HostCaps); None: from libvirt objects, or unbounded.
    host_capacity: Optional[Callable[[Any], Optional[int]]] = field(default=None,
                                                                    compare=False)


def no_id(props: Props) -> Optional[str]:
    """A kind whose device id the RASD's properties do not name."""
    return None


@dataclass(frozen=True, eq=False)
class DeviceKind:
    """One kind of virtual resource: everything the project knows about it."""

    #: The libvirt facts (name, XML tags, device ids, skeleton): the kind module's ELEMENT.
    element: ElementKind
    rasd_class: str                 # class name without family prefix
    device_class: Optional[str]     # logical device class without prefix
    resource_type: int
    tables: dict[str, Table]        # element tag ('*': any) -> mapping table of the RASD
    device_table: dict[str, Field] = field(default_factory=dict)  # logical device
    #: Writers of computed properties, replacing the read-only fields of `tables`.
    writers: dict[str, Field] = field(default_factory=dict)
    other_resource_type: Optional[str] = None
    #: libvirt-cim's vendor ResourceType (svpc_types.h) its clients send for this kind.
    vendor_type: Optional[int] = None
    #: Other ResourceTypes a generic CIM_ResourceAllocationSettingData of this kind has.
    alias_types: tuple[int, ...] = ()
    #: build(env, element, props): the kind's defaults and checks for a new device; it
    #: may replace the element (returns the one to use) and consumes the props it sets.
    build: Optional[Callable[[BuildEnv, Any, Props], Any]] = None
    #: The device id a RASD's properties name before an element exists.
    id_from_props: Callable[[Props], Optional[str]] = no_id
    #: Properties (lower case) the management code handles itself, not through a table.
    special: frozenset[str] = frozenset()
    #: check_changes(host, element, changes, where): checks of a new or changed device
    #: beyond the limits (e.g. host paths of a console).
    check_changes: Optional[Callable[["Host", Any, Mapping[str, Any], str], None]] = None
    #: limits(env) -> Limits of new or changed settings (None: no limits).
    limits: Optional[Callable[[LimitEnv], Limits]] = None
    pool: Optional[PoolKind] = None
    #: apply(env, props) -> [LiveOp]: a root-level kind's setting (tags == ()) applied to
    #: env.doc's <domain>, and the changes to make to the running system (env.live).
    apply: Optional[Callable[[ChangeEnv, Props], list[LiveOp]]] = None
    #: unique(element) -> (key, description) of what two devices of a domain may not
    #: share (a disk's target), None: nothing; the description is completed with the
    #: domain's name ("VirtualDevice 'vda' is already used by another device of").
    unique: Optional[Callable[[Any], Optional[tuple[Any, str]]]] = None
    #: prepare_change(env, element, props): a change to an existing device, before it is
    #: compared with the element (props rewritten in place, e.g. a PoolID into a name).
    prepare_change: Optional[Callable[[ChangeEnv, Any, Props], None]] = None
    #: check_change(env, element, changes): checks and normalised values of a change to
    #: an existing device, beyond the limits and check_changes (changes edited in place).
    check_change: Optional[Callable[[ChangeEnv, Any, dict[str, Any]], None]] = None
    #: prefetch(host): start reading (on a helper of the connection) the host facts an
    #: enumeration of this kind's settings will ask, before the domains are listed
    #: (the disks': virt.query.prefetch_storage; issue 16, stop 24).
    prefetch: Optional[Callable[["Host"], None]] = None

    # -- the libvirt facts, from the element kind --------------------------------------

    @property
    def name(self) -> str:
        """The kind's name ('disk'), the same in both layers."""
        return self.element.name

    @property
    def tags(self) -> tuple[str, ...]:
        """<devices> child element names; () for root-level kinds."""
        return self.element.tags

    @property
    def devid(self) -> Callable[[Any], Optional[str]]:
        """devid(element): the device id."""
        return self.element.devid

    @property
    def skeleton(self) -> Optional[str]:
        """The element a new device starts from; None: it cannot be added."""
        return self.element.skeleton

    @property
    def device_count(self) -> Optional[Callable[[Any], int]]:
        """device_count(element): several logical devices per setting; None: one."""
        return self.element.device_count

    @property
    def alias(self) -> Optional[Callable[[Any, Any], Optional[Any]]]:
        """alias(root, element): the element libvirt keeps in step with this one; None."""
        return self.element.alias

    @property
    def default(self) -> Optional[Callable[[Any, str, set[str]], Optional[str]]]:
        """default(root, family, given): XML of a new system's default device; None."""
        return self.element.default

    @property
    def clone(self) -> Optional[Callable[[Any, str, dict[str, str], str], None]]:
        """clone(element, family, taken, name): make a cloned system's device its own."""
        return self.element.clone

    @property
    def parent_of(self) -> Optional[Callable[[Any], Optional[str]]]:
        """parent_of(element): the id of this kind's device `element` hangs off; None."""
        return self.element.parent_of

    @property
    def root_level(self) -> bool:
        """True for kinds read from the <domain> root (proc, mem): exactly one per domain,
        never added or removed, only modified."""
        return self.element.root_level

    def table(self, element: Any) -> Table:
        """The mapping table for `element` (disk and filesystem differ)."""
        t = self.tables.get(element.tag)
        return t if t is not None else self.tables["*"]

    def all_properties(self) -> set[str]:
        out: set[str] = set()
        for t in self.tables.values():
            out.update(t)
        return out

    def new_element(self) -> Any:
        """A fresh element from the skeleton (ValueError for kinds that cannot be added)."""
        return self.element.new_element()


def _parent_controller(el, ctx):
    # ctx.parent_controller(el) in effect, through the libvirt layer's list of the parent
    # hooks (devices.parent_devid) instead of a walk over every kind per device.
    if ctx is None:
        return None
    doc = ctx.doc
    devid = parent_devid(el, doc.setting)
    return None if devid is None else device_id(ctx.host, doc.name, devid)


#: Fields of every RASD of a device element with an address.
COMMON_DEVICE: dict[str, Field] = {
    "AutomaticAllocation": Const(True),
    "Parent": Computed(_parent_controller),
    # mapping.AttrNames, not functions: read in place by the compiled table writers.
    "AddressProperties": AttrNames("address"),
    "AddressValues": AttrNames("address", values=True),
}


def other_type_table(other: str, rt_other: int = 1) -> dict[str, Field]:
    """ResourceType 1 (Other) with OtherResourceType `other`: libvirt-cim's convention for
    devices DMTF has no ResourceType for."""
    return {"ResourceType": Const(rt_other), "OtherResourceType": Const(other)}


def container_guest(root: Any, family: str) -> bool:
    """True for a container (LXC family, or an ``exe`` os type): its default devices differ."""
    return family.upper() == "LXC" or (root.findtext("os/type") or "").strip() == "exe"
