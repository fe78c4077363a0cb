"""The registration table (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from ..model.kinds import KINDS

__all__ = ["Entry", "Registration", "TABLE", "FAMILIES", "registrations", "dispatch_table",
           "INSTANCE", "ASSOCIATION", "METHOD", "INDICATION", "VIRT_NS", "INTEROP_NS",
           "PROVIDER_PACKAGE"]

INSTANCE = "instance"
ASSOCIATION = "association"
METHOD = "method"
INDICATION = "indication"
PROVIDER_TYPES = (INSTANCE, ASSOCIATION, METHOD, INDICATION)

VIRT_NS = "root/virt"
INTEROP_NS = "root/interop"

#: Class families: prefix -> libvirt drivers whose hosts the family serves.
FAMILIES: dict[str, tuple[str, ...]] = {
    "KVM": ("qemu", "kvm", "test"),
    "LXC": ("lxc",),
    "Xen": ("xen", "libxl"),
}

#: Package holding the provider modules named in the table.
PROVIDER_PACKAGE = "kvm_providers.providers"


@dataclass(frozen=True)
class Entry:
    """A line of the table, before family expansion.

    ``classname`` may contain ``{P}`` (the family prefix); such an entry is
    expanded once per family (or per ``families`` if given).  ``module`` is
    the module name below ``kvm_providers.providers``.
    """

    classname: str
    module: str
    types: tuple[str, ...]
    namespaces: tuple[str, ...] = (VIRT_NS,)
    families: Optional[tuple[str, ...]] = None

    def __post_init__(self):
        bad = [t for t in self.types if t not in PROVIDER_TYPES]
        if bad:
            raise ValueError(f"{self.classname}: unknown provider type(s) {bad}")


@dataclass(frozen=True)
class Registration:
    """A concrete registration: one class, one module, its namespaces and types."""

    classname: str
    module: str              # dotted module path
    types: tuple[str, ...]
    namespaces: tuple[str, ...]
    family: Optional[str]

    @property
    def short_module(self) -> str:
        return self.module.rsplit(".", 1)[-1]

    @property
    def provider_name(self) -> str:
        """The CMPI provider (MI) name: cmpi-bindings loads /usr/lib/pycim/<name>.py."""
        return f"kvm_providers_{self.short_module}"

    @property
    def group(self) -> str:
        """sfcb provider group: all our providers share one process."""
        return "kvm_providers"


#: The table.  Provider work adds its classes here (one line per class).
TABLE: list[Entry] = [
    # -- virtual system model (issue 3): systems, settings, devices ---------------
    Entry("{P}_HostSystem", "host_system", (INSTANCE,)),
    Entry("{P}_ComputerSystem", "computer_system", (INSTANCE, METHOD)),
    Entry("{P}_VirtualSystemSettingData", "virtual_system_settings", (INSTANCE,)),
    # The RASD and logical device class of every device kind, from the kinds registry
    # (kvm_providers/model/kinds): a new kind needs no row here.
    *(Entry(f"{{P}}_{k.rasd_class}", "resource_allocation", (INSTANCE,)) for k in KINDS),
    *(Entry(f"{{P}}_{k.device_class}", "logical_devices", (INSTANCE,)) for k in KINDS
      if k.device_class),
    Entry("{P}_VirtualSystemManagementService", "management_service", (INSTANCE, METHOD)),
    Entry("{P}_VirtualSystemManagementCapabilities", "capabilities", (INSTANCE,)),
    Entry("{P}_EnabledLogicalElementCapabilities", "capabilities", (INSTANCE,)),
    # -- virtual system model (issue 3): associations -----------------------------
    Entry("{P}_SystemDevice", "system_device", (INSTANCE, ASSOCIATION)),
    Entry("{P}_VirtualSystemSettingDataComponent", "vssd_component", (INSTANCE, ASSOCIATION)),
    Entry("{P}_SettingsDefineState", "settings_define_state", (INSTANCE, ASSOCIATION)),
    Entry("{P}_ElementSettingData", "element_setting_data", (INSTANCE, ASSOCIATION)),
    Entry("{P}_HostedDependency", "hosted_dependency", (INSTANCE, ASSOCIATION)),
    Entry("{P}_HostedService", "hosted_service", (INSTANCE, ASSOCIATION)),
    Entry("{P}_ElementCapabilities", "element_capabilities", (INSTANCE, ASSOCIATION)),
    Entry("{P}_ServiceAffectsElement", "service_affects_element", (INSTANCE, ASSOCIATION)),
    # -- virtual system model (issue 3): profile registration (DSP1033) -----------
    Entry("{P}_RegisteredProfile", "registered_profile", (INSTANCE,), (INTEROP_NS,)),
    Entry("{P}_ReferencedProfile", "referenced_profile", (INSTANCE, ASSOCIATION),
          (INTEROP_NS,)),
    Entry("{P}_ElementConformsToProfile", "element_conforms_to_profile",
          (INSTANCE, ASSOCIATION), (INTEROP_NS, VIRT_NS)),
    # -- resource pools, allocation capabilities, pool configuration (issue 5) ------
    Entry("{P}_ProcessorPool", "resource_pools", (INSTANCE,)),
    Entry("{P}_MemoryPool", "resource_pools", (INSTANCE,)),
    Entry("{P}_DiskPool", "resource_pools", (INSTANCE,)),
    Entry("{P}_NetworkPool", "resource_pools", (INSTANCE,)),
    Entry("{P}_GraphicsPool", "resource_pools", (INSTANCE,)),
    Entry("{P}_InputPool", "resource_pools", (INSTANCE,)),
    Entry("{P}_ControllerPool", "resource_pools", (INSTANCE,)),
    Entry("{P}_StorageVolume", "storage_volume", (INSTANCE,)),
    Entry("{P}_AllocationCapabilities", "allocation_capabilities", (INSTANCE,)),
    Entry("{P}_DiskPoolResourceAllocationSettingData", "pool_settings", (INSTANCE,)),
    Entry("{P}_NetPoolResourceAllocationSettingData", "pool_settings", (INSTANCE,)),
    Entry("{P}_StorageVolumeResourceAllocationSettingData", "pool_settings", (INSTANCE,)),
    Entry("{P}_ResourcePoolConfigurationService", "pool_configuration", (INSTANCE, METHOD)),
    Entry("{P}_ResourcePoolConfigurationCapabilities", "pool_configuration", (INSTANCE,)),
    Entry("{P}_HostedResourcePool", "hosted_resource_pool", (INSTANCE, ASSOCIATION)),
    Entry("{P}_ElementAllocatedFromPool", "element_allocated_from_pool",
          (INSTANCE, ASSOCIATION)),
    Entry("{P}_ResourceAllocationFromPool", "resource_allocation_from_pool",
          (INSTANCE, ASSOCIATION)),
    Entry("{P}_SettingsDefineCapabilities", "settings_define_capabilities",
          (INSTANCE, ASSOCIATION)),
    Entry("{P}_ConcreteComponent", "concrete_component", (INSTANCE, ASSOCIATION)),
    # -- KVM redirection (DSP1076): remote consoles -----------------------------------
    Entry("{P}_ConsoleRedirectionService", "console_redirection", (INSTANCE,)),
    Entry("{P}_ConsoleRedirectionServiceCapabilities", "console_redirection", (INSTANCE,)),
    Entry("{P}_KVMRedirectionSAP", "redirection_sap", (INSTANCE,)),
    Entry("{P}_HostedAccessPoint", "hosted_access_point", (INSTANCE, ASSOCIATION)),
    Entry("{P}_ServiceAccessBySAP", "service_access_by_sap", (INSTANCE, ASSOCIATION)),
    # -- network filters (issue 12): libvirt nwfilters ------------------------------
    Entry("{P}_FilterList", "filter_lists", (INSTANCE,)),
    Entry("{P}_FilterEntry", "filter_lists", (INSTANCE,)),
    Entry("{P}_Hdr8021Filter", "filter_lists", (INSTANCE,)),
    Entry("{P}_IPHeadersFilter", "filter_lists", (INSTANCE,)),
    Entry("{P}_EntriesInFilterList", "filter_associations", (INSTANCE, ASSOCIATION)),
    Entry("{P}_NestedFilterList", "filter_associations", (INSTANCE, ASSOCIATION)),
    Entry("{P}_AppliedFilterList", "filter_associations", (INSTANCE, ASSOCIATION)),
    Entry("{P}_HostedFilterList", "filter_associations", (INSTANCE, ASSOCIATION)),
    # -- virtual system migration (DSP1081, issue 14) --------------------------------
    Entry("{P}_VirtualSystemMigrationService", "migration_service", (INSTANCE, METHOD)),
    Entry("{P}_VirtualSystemMigrationCapabilities", "migration_service", (INSTANCE,)),
    Entry("{P}_VirtualSystemMigrationSettingData", "migration_service", (INSTANCE,)),
    Entry("{P}_MigrationJob", "concrete_job", (INSTANCE, METHOD)),
    Entry("{P}_ComputerSystemMigrationJobCreatedIndication", "migration_indications",
          (INDICATION,)),
    Entry("{P}_ComputerSystemMigrationJobModifiedIndication", "migration_indications",
          (INDICATION,)),
    Entry("{P}_ComputerSystemMigrationJobDeletedIndication", "migration_indications",
          (INDICATION,)),
    # -- jobs (issue 13): long operations of the services ---------------------------
    Entry("{P}_ConcreteJob", "concrete_job", (INSTANCE, METHOD)),
    Entry("{P}_AffectedJobElement", "job_associations", (INSTANCE, ASSOCIATION)),
    Entry("{P}_OwningJobElement", "job_associations", (INSTANCE, ASSOCIATION)),
    Entry("CIM_InstCreation", "job_indications", (INDICATION,)),
    Entry("CIM_InstModification", "job_indications", (INDICATION,)),
    Entry("CIM_InstDeletion", "job_indications", (INDICATION,)),
    # -- snapshots (issue 13, DSP2013 5.2.8): libvirt snapshots ----------------------
    Entry("{P}_VirtualSystemSnapshotService", "snapshot_service", (INSTANCE, METHOD)),
    Entry("{P}_VirtualSystemSnapshotServiceCapabilities", "snapshot_service", (INSTANCE,)),
    Entry("{P}_VirtualSystemSnapshotCapabilities", "snapshot_service", (INSTANCE,)),
    Entry("{P}_VirtualSystemSnapshotSettingData", "snapshot_settings", (INSTANCE,)),
    Entry("{P}_SnapshotOfVirtualSystem", "snapshot_associations", (INSTANCE, ASSOCIATION)),
    Entry("{P}_MostCurrentSnapshotInBranch", "snapshot_associations",
          (INSTANCE, ASSOCIATION)),
    Entry("{P}_SnapshotDependency", "snapshot_associations", (INSTANCE, ASSOCIATION)),
    # -- lifecycle indications (from libvirt domain events) -------------------------
    Entry("{P}_ComputerSystemCreatedIndication", "lifecycle_indications", (INDICATION,)),
    Entry("{P}_ComputerSystemDeletedIndication", "lifecycle_indications", (INDICATION,)),
    Entry("{P}_ComputerSystemModifiedIndication", "lifecycle_indications", (INDICATION,)),
    Entry("{P}_ResourceAllocationSettingDataCreatedIndication", "lifecycle_indications",
          (INDICATION,)),
    Entry("{P}_ResourceAllocationSettingDataDeletedIndication", "lifecycle_indications",
          (INDICATION,)),
    Entry("{P}_ResourceAllocationSettingDataModifiedIndication", "lifecycle_indications",
          (INDICATION,)),
    # -- monitoring (issue 15): base metrics (DSP1053) ----------------------------------
    Entry("{P}_BaseMetricDefinition", "metrics", (INSTANCE,)),
    Entry("{P}_BaseMetricValue", "metrics", (INSTANCE,)),
    Entry("{P}_MetricService", "metrics", (INSTANCE, METHOD)),
    Entry("{P}_MetricDefForME", "metric_associations", (INSTANCE, ASSOCIATION)),
    Entry("{P}_MetricInstance", "metric_associations", (INSTANCE, ASSOCIATION)),
    Entry("{P}_MetricForME", "metric_associations", (INSTANCE, ASSOCIATION)),
    Entry("{P}_AlertIndication", "alert_indications", (INDICATION,)),
]


def registrations(table: Optional[Iterable[Entry]] = None,
                  families: Optional[Iterable[str]] = None) -> list[Registration]:
    """The table with family templates expanded, in table order."""
    fams = list(families) if families is not None else list(FAMILIES)
    out: list[Registration] = []
    seen: set[tuple[str, str]] = set()
    for entry in (TABLE if table is None else table):
        prefixes = [f for f in (entry.families or fams) if f in fams] \
            if "{P}" in entry.classname else [None]
        for fam in prefixes:
            cname = entry.classname.replace("{P}", fam) if fam else entry.classname
            for ns in entry.namespaces:
                if (ns, cname.lower()) in seen:
                    raise ValueError(f"class {cname} registered twice in {ns}")
                seen.add((ns, cname.lower()))
            out.append(Registration(
                classname=cname, module=f"{PROVIDER_PACKAGE}.{entry.module}",
                types=tuple(entry.types), namespaces=tuple(entry.namespaces), family=fam))
    return out


def dispatch_table(regs: Optional[Iterable[Registration]] = None
                   ) -> dict[tuple[str, str], Registration]:
    """{(namespace, lower-case class name): Registration} for the embedded server."""
    out: dict[tuple[str, str], Registration] = {}
    for reg in (registrations() if regs is None else regs):
        for ns in reg.namespaces:
            out[(ns, reg.classname.lower())] = reg
    return out
