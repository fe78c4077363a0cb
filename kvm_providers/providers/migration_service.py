"""{P}_VirtualSystemMigrationService, {P}_VirtualSystemMigrationCapabilities and
{P}_VirtualSystemMigrationSettingData (DSP1081 Virtual System Migration): one of each
per host.

* Service keys as libvirt-cim's: Name "MigrationService", SystemName the host
  system's Name.  Methods (on the class path or an instance path, as
  libvirt-cim's clients invoke them):
  ``MigrateVirtualSystemToHost(ComputerSystem, DestinationHost, MigrationSettingData,
  NewSystemSettingData, NewResourceSettingData[])`` -> Job,
  ``MigrateVirtualSystemToSystem(ComputerSystem, DestinationSystem, ...)`` -> Job,
  NewComputerSystem, and the two ``CheckVirtualSystemIsMigratableTo*`` -> 0 with
  IsMigratable; our vendor method ``CheckVirtualSystemMigration`` runs the same
  checks and answers every reason it cannot, too (Reasons[]).
* DestinationHost: a host this server manages (its label or its HostSystem Name),
  a host name or IP address (reached with TransportType, SSH by default, as
  libvirt-cim), or a libvirt URI; validated by :func:`virt.migration.destination_uri`.
  DestinationSystem: a {P}_HostSystem of this server; the guest's instances then
  appear under that host.  NewResourceSettingData: Disk RASDs of the guest whose
  Address is the disk's new path on the destination (with a storage copy).
* A migration is checked first (:mod:`kvm_providers.virt.migration_check`): if any
  reason is found, the method fails with CIM_ERR_FAILED listing them and nothing has
  changed.  Bad parameters are CIM_ERR_INVALID_PARAMETER naming them; a guest that
  does not exist CIM_ERR_NOT_FOUND.
* Capabilities InstanceID "MigrationCapabilities": the checks are synchronous, the
  migrations asynchronous; destination formats host name, IPv4, IPv6.
* Setting data InstanceID "MigrationSettingData": the defaults (MigrationType 2
  live, Priority 0, TransportType 2 SSH, libvirt-cim's) and our properties'.

See docs/migration.md.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Optional

import pywbem
from pywbem import CIMError, CIMInstanceName, Uint16, Uint32

from kvm_providers.cimxml.embedded import EmbeddedInstanceError, decode_embedded_instance
from kvm_providers.virt import jobs as vjobs
from kvm_providers.virt import keys, lookup_domain, manager
from kvm_providers.virt import migration as vmig
from kvm_providers.virt.connection import Host
from kvm_providers.virt.errors import VirtError
from kvm_providers.virt.lifecycle import domain_lock
from kvm_providers.virt.migration_check import check as run_checks

from .common import ENABLED_AND_OK, PerHostProvider, fill, providers_for
from .common.jobs import register_job_class, start_job
from .common.migration_paths import MS_NAME, MSC_ID, MSD_ID, ms_keys, msc_id, msd_id
from .common.paths import cs_path, host_of_path, host_system_name

__all__ = ["MigrationServiceProvider", "MigrationCapabilitiesProvider",
           "MigrationSettingDataProvider", "get_providers", "Request", "BANDWIDTH_UNITS"]

LOG = logging.getLogger(__name__)

_COMPLETED = Uint32(0)

#: BandwidthUnit (DSP0004 programmatic units) -> MiB/s per unit (libvirt's unit).
BANDWIDTH_UNITS = {
    "byte / second * 2^20": 1.0, "megabyte / second": 1.0,
    "byte / second * 2^30": 1024.0,
    "byte / second * 2^10": 1 / 1024,
    "bit / second * 10^6": 1e6 / 8 / 2 ** 20,
    "bit / second * 10^9": 1e9 / 8 / 2 ** 20,
}
DEFAULT_BANDWIDTH_UNIT = "byte / second * 2^20"

# CIM_VirtualSystemMigrationCapabilities values.
SYNC_METHODS = [Uint16(4), Uint16(5)]          # the two checks
ASYNC_METHODS = [Uint16(2), Uint16(3)]         # the two migrations
DEST_FORMATS = [Uint16(2), Uint16(3), Uint16(4)]   # host name, IPv4, IPv6


def _bad(where: str, why: str) -> CIMError:
    return CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, f"{where}: {why}")


def _cim_error(exc: vmig.MigrationError, what: str) -> CIMError:
    code = {"invalid": pywbem.CIM_ERR_INVALID_PARAMETER, "not_found": pywbem.CIM_ERR_NOT_FOUND,
            "unsupported": pywbem.CIM_ERR_NOT_SUPPORTED}.get(exc.kind, pywbem.CIM_ERR_FAILED)
    return CIMError(code, f"{what}: {exc.message}")


class Request:
    """A checked migration request: the guest, its host, the destination, the settings."""

    def __init__(self, source: Host, domain: str, settings: vmig.Settings,
                 dest_uri: str, dest_label: str, dest_host: Optional[Host]):
        self.source = source
        self.domain = domain
        self.settings = settings
        self.dest_uri = dest_uri            # how this process reaches the destination
        self.peer_uri = vmig.peer_uri(dest_uri)   # how the source's libvirtd reaches it
        self.dest_label = dest_label
        self.dest_host = dest_host          # a host this server manages, or None

    def reasons(self) -> list[str]:
        """Every reason the migration cannot work (the checks; nothing changes)."""
        if self.dest_host is self.source:
            return [f"destination {self.dest_label} is the source host itself"]
        source_conn = self.source.conn()
        dest = None
        error = None
        opened = False
        if self.dest_host is not None:
            try:
                dest = self.dest_host.conn()
            except VirtError as exc:
                error = exc.message
        else:
            try:
                dest = vmig.open_connection(self.dest_uri)
                opened = True
            except vmig.MigrationError as exc:
                error = exc.message
        try:
            return run_checks(source_conn, self.domain, dest, self.settings, self.dest_label,
                              error)
        finally:
            if opened and dest is not None:
                try:
                    dest.close()
                except Exception:  # pylint: disable=broad-except
                    LOG.debug("closing the destination connection failed", exc_info=True)


def _msd_settings(value: Any, ns: Optional[str]) -> vmig.Settings:
    """Settings from the MigrationSettingData parameter (an embedded instance; NULL
    properties are not given)."""
    s = vmig.Settings()
    if value is None or (isinstance(value, str) and not value.strip()):
        return s
    if isinstance(value, pywbem.CIMInstance):
        inst = value
    else:
        try:
            inst = decode_embedded_instance(value, ns or "root/virt")
        except EmbeddedInstanceError as exc:
            raise _bad("MigrationSettingData", str(exc)) from None
    if not inst.classname.lower().endswith("virtualsystemmigrationsettingdata"):
        raise _bad("MigrationSettingData", f"{inst.classname} is not a "
                                           f"VirtualSystemMigrationSettingData")
    props = {k.lower(): v for k, v in inst.properties.items() if v.value is not None}

    def get(name: str, kind: type, default: Any = None) -> Any:
        p = props.get(name.lower())
        if p is None:
            return default
        v = p.value
        if kind is bool:
            if not isinstance(v, bool):
                raise _bad(f"MigrationSettingData.{name}", f"{v!r} is not a boolean")
            return v
        if kind is int:
            if isinstance(v, bool) or not isinstance(v, int):
                raise _bad(f"MigrationSettingData.{name}", f"{v!r} is not an integer")
            return int(v)
        if kind is list:
            vals = v if isinstance(v, list) else [v]
            if not all(isinstance(x, str) for x in vals):
                raise _bad(f"MigrationSettingData.{name}", f"{v!r} is not a list of strings")
            return [str(x).strip().lower() for x in vals if str(x).strip()]
        if not isinstance(v, str):
            raise _bad(f"MigrationSettingData.{name}", f"{v!r} is not a string")
        return v
    s.type = get("MigrationType", int, s.type)
    s.priority = get("Priority", int, 0)
    s.transport = get("TransportType", int, s.transport)
    bandwidth = get("Bandwidth", int)
    if bandwidth is not None:
        unit = (get("BandwidthUnit", str) or DEFAULT_BANDWIDTH_UNIT).strip().lower()
        factor = BANDWIDTH_UNITS.get(" ".join(unit.split()))
        if factor is None:
            raise _bad("MigrationSettingData.BandwidthUnit",
                       f"{unit!r} is not one of {', '.join(BANDWIDTH_UNITS)}")
        # libvirt takes whole MiB/s: round up, so that a small limit stays a limit.
        s.bandwidth_mib = max(1, int(-(-bandwidth * factor // 1))) if bandwidth > 0 else 0
    s.max_downtime_ms = get("MaxDowntime", int)
    s.compression = get("CompressionMethods", list, [])
    s.compression_level = get("CompressionLevel", int)
    s.parallel_connections = get("ParallelConnections", int)
    s.auto_converge = get("AutoConverge", bool, False)
    s.postcopy = get("PostCopy", bool, False)
    s.encrypt_stream = get("EncryptStream", bool, False)
    s.storage_copy = get("StorageCopy", int, vmig.STORAGE_NONE)
    s.persist = get("PersistOnDestination", bool, True)
    s.undefine_source = get("UndefineSource", bool, True)
    s.unsafe = get("Unsafe", bool, False)
    try:
        s.validate()
    except vmig.MigrationError as exc:
        raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, exc.message) from None
    return s


class MigrationServiceProvider(PerHostProvider):
    """{P}_VirtualSystemMigrationService."""

    def host_keys(self, host, classname):
        return ms_keys(host, classname)

    def _fill(self, inst, model, host):
        fill(inst, model, {
            "ElementName": MS_NAME,
            "Caption": "Virtual System Migration Service",
            "Description": "Migrates virtual systems of this host to other hosts (libvirt, "
                           "peer to peer)",
            **ENABLED_AND_OK,
            "Started": True,
        })

    # -- parameters ------------------------------------------------------------------

    def _guest(self, family: str, service_host: Optional[Host], path: Any) -> tuple[Host, str]:
        if not isinstance(path, CIMInstanceName):
            raise _bad("ComputerSystem", "is missing (a reference to a ComputerSystem)")
        if keys.family_of_class(path.classname) != family or \
                not path.classname.lower().endswith("_computersystem"):
            raise _bad("ComputerSystem", f"{path.classname} is not a {family}_ComputerSystem")
        name = path.keybindings.get("Name")
        hit = keys.parse_cs_name(family, name) if isinstance(name, str) else None
        if hit is None or lookup_domain(*hit) is None:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                           f"ComputerSystem: no virtual system {name!r}")
        host, domain = hit
        if service_host is not None and service_host is not host:
            raise _bad("ComputerSystem", f"is a system of host {host.label!r}, not of the "
                                         f"service's host {service_host.label!r}")
        return host, domain

    def _managed_host(self, family: str, text: str) -> Optional[Host]:
        """The configured host a DestinationHost names by label or HostSystem Name."""
        for host in manager().for_family(family):
            if text == host.label:
                return host
            try:
                if text == host_system_name(host):
                    return host
            except VirtError:
                continue
        return None

    def _request(self, object_name: Any, params: dict[str, Any], to_system: bool) -> Request:
        family = self.family(object_name.classname)
        service_host = self._service_host(object_name)
        source, domain = self._guest(family, service_host, params.get("computersystem"))
        settings = _msd_settings(params.get("migrationsettingdata"), object_name.namespace)
        if not _empty(params.get("newsystemsettingdata")):
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                           "NewSystemSettingData: changing the virtual system's settings while "
                           "it migrates is not supported (change them before or after)")
        settings.disk_paths = _new_disk_paths(family, source, domain,
                                              params.get("newresourcesettingdata"),
                                              object_name.namespace)
        if settings.disk_paths:
            try:
                settings.validate()
            except vmig.MigrationError as exc:
                raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, exc.message) from None
        if to_system:
            path = params.get("destinationsystem")
            if not isinstance(path, CIMInstanceName):
                raise _bad("DestinationSystem", "is missing (a reference to a HostSystem)")
            if keys.family_of_class(path.classname) != family or \
                    not path.classname.lower().endswith("_hostsystem"):
                raise _bad("DestinationSystem", f"{path.classname} is not a {family}_HostSystem")
            dest_host = host_of_path(path, family)
            if dest_host is None:
                raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                               f"DestinationSystem: {path.keybindings.get('Name')!r} is no host "
                               f"this server manages")
            return Request(source, domain, settings, dest_host.uri, dest_host.label, dest_host)
        text = params.get("destinationhost")
        dest_host = self._managed_host(family, text) if isinstance(text, str) else None
        if dest_host is not None:
            return Request(source, domain, settings, dest_host.uri, dest_host.label, dest_host)
        try:
            uri = vmig.destination_uri(text, family, settings.transport)
        except vmig.MigrationError as exc:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, exc.message) from None
        return Request(source, domain, settings, uri, uri, None)

    # -- methods ---------------------------------------------------------------------

    def _check(self, env, object_name, params, to_system):
        req = self._request(object_name, params, to_system)
        try:
            reasons = req.reasons()
        except vmig.MigrationError as exc:
            raise _cim_error(exc, "CheckVirtualSystemIsMigratable") from None
        env.get_logger().log_info(f"migration check of {req.domain!r} to {req.dest_label}: "
                                  f"{'; '.join(reasons) or 'migratable'}")
        return _COMPLETED, {"IsMigratable": not reasons, "Reasons": reasons}

    def cim_method_checkvirtualsystemismigratabletohost(self, env, object_name, **params):
        """CheckVirtualSystemIsMigratableToHost(ComputerSystem, DestinationHost, ...)
        -> IsMigratable."""
        rv, out = self._check(env, object_name, _params(params), False)
        return rv, {"IsMigratable": out["IsMigratable"]}

    def cim_method_checkvirtualsystemismigratabletosystem(self, env, object_name, **params):
        """CheckVirtualSystemIsMigratableToSystem(ComputerSystem, DestinationSystem, ...)
        -> IsMigratable."""
        rv, out = self._check(env, object_name, _params(params), True)
        return rv, {"IsMigratable": out["IsMigratable"]}

    def cim_method_checkvirtualsystemmigration(self, env, object_name, **params):
        """CheckVirtualSystemMigration(ComputerSystem, DestinationHost | DestinationSystem,
        MigrationSettingData) -> IsMigratable, Reasons[] (our vendor method)."""
        p = _params(params)
        has_host = not _empty(p.get("destinationhost"))
        has_system = not _empty(p.get("destinationsystem"))
        if has_host == has_system:
            raise _bad("DestinationHost", "give either DestinationHost or DestinationSystem")
        return self._check(env, object_name, p, has_system)

    def _migrate(self, env, object_name, params, to_system):
        method = "MigrateVirtualSystemToSystem" if to_system else "MigrateVirtualSystemToHost"
        req = self._request(object_name, params, to_system)
        out: dict[str, Any] = {}
        if req.dest_host is not None and to_system:
            out["NewComputerSystem"] = cs_path(req.dest_host, req.domain)
        return launch(env, method, req, out)

    def cim_method_migratevirtualsystemtohost(self, env, object_name, **params):
        """MigrateVirtualSystemToHost(ComputerSystem, DestinationHost, MigrationSettingData,
        NewSystemSettingData, NewResourceSettingData[]) -> Job."""
        return self._migrate(env, object_name, _params(params), False)

    def cim_method_migratevirtualsystemtosystem(self, env, object_name, **params):
        """MigrateVirtualSystemToSystem(ComputerSystem, DestinationSystem, ...)
        -> NewComputerSystem, Job."""
        return self._migrate(env, object_name, _params(params), True)


def _new_disk_paths(family: str, source: Host, domain: str, values: Any,
                    ns: Optional[str]) -> dict[str, str]:
    """{target dev: new path} from NewResourceSettingData: Disk RASDs of the guest whose
    Address is the disk's path on the destination (their other properties are not used:
    nothing else of a device changes on the way)."""
    if _empty(values):
        return {}
    out: dict[str, str] = {}
    for i, value in enumerate(values if isinstance(values, list) else [values]):
        where = f"NewResourceSettingData[{i}]"
        if _empty(value):
            continue
        if isinstance(value, pywbem.CIMInstance):
            inst = value
        else:
            try:
                inst = decode_embedded_instance(value, ns or "root/virt")
            except EmbeddedInstanceError as exc:
                raise _bad(where, str(exc)) from None
        if inst.classname.lower() != f"{family}_DiskResourceAllocationSettingData".lower():
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                           f"{where}: only a disk's path (a {family}_DiskResourceAllocation"
                           f"SettingData's Address) can change in a migration, not a "
                           f"{inst.classname}")
        iid = inst.get("InstanceID")
        hit = keys.parse_device_id(family, iid) if isinstance(iid, str) else None
        if hit is None or hit[0] is not source or hit[1] != domain:
            raise _bad(where, f"InstanceID {iid!r} is not a disk of the migrating system "
                              f"{domain!r}")
        address = inst.get("Address")
        if not isinstance(address, str) or not address.strip():
            raise _bad(f"{where}.Address", "is missing (the disk's path on the destination)")
        out[hit[2]] = address.strip()
    return out


def _empty(value: Any) -> bool:
    """A parameter not given: NULL, a blank string or an empty array (tolerant reading)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list) and all(_empty(v) for v in value)


def _params(params: dict[str, Any]) -> dict[str, Any]:
    """{lower-case parameter name without 'param_': value}."""
    return {k[len("param_"):].lower() if k.startswith("param_") else k.lower(): v
            for k, v in params.items()}


# One migration per guest at a time: a second request for the same guest waits in its
# job (the first one decides what the second finds).
_guest_locks: dict[tuple[str, str], threading.Lock] = {}
_guest_locks_lock = threading.Lock()


def _guest_lock(req: Request) -> threading.Lock:
    with _guest_locks_lock:
        return _guest_locks.setdefault((req.source.label, req.domain), threading.Lock())


for _op in ("MigrateVirtualSystemToHost", "MigrateVirtualSystemToSystem"):
    register_job_class(_op, "MigrationJob")


def launch(env: Any, method: str, req: Request, out: dict[str, Any]) -> tuple[Any, dict]:
    """Check (synchronously: what cannot work is an error, before any job exists), then
    start the migration as a {P}_MigrationJob: (4096, {"Job": path, **out})."""
    ref = lookup_domain(req.source, req.domain)
    if ref is None:
        raise CIMError(pywbem.CIM_ERR_NOT_FOUND, f"ComputerSystem: no virtual system "
                                                 f"{req.domain!r}")
    try:
        reasons = req.reasons()
    except vmig.MigrationError as exc:
        raise _cim_error(exc, method) from None
    if reasons:
        raise CIMError(pywbem.CIM_ERR_FAILED,
                       f"{method}: {req.domain!r} cannot migrate to {req.dest_label}: "
                       + "; ".join(reasons))

    def work(ctx: vjobs.JobContext) -> dict[str, Any]:
        # The guest's change lock (DefineSystem, Modify..., RequestStateChange take it):
        # changes of other clients wait until the guest has moved, then find it gone.
        with _guest_lock(req), domain_lock(ref):
            try:
                again = req.reasons()
                if again:       # changed since the method answered
                    raise vmig.MigrationError("refused", "; ".join(again))
                vmig.run(req.source.uri, req.domain, req.peer_uri, req.settings,
                         report=ctx, dest_uri=req.dest_uri)
            except vmig.MigrationError as exc:
                raise exc.job_failure() from None
        LOG.info("%s: %r moved to %s", method, req.domain, req.dest_label)
        return {"destination": req.dest_label}

    return start_job(method, req.source, work,
                     description=f"{req.settings.type_name} migration of {req.domain!r} to "
                                 f"{req.dest_label}",
                     domain=req.domain, owner="VirtualSystemMigrationService",
                     resolver=vmig.RESOLVER,
                     params={"domain": req.domain, "source_uri": req.source.uri,
                             "dest_uri": req.dest_uri},
                     out=out)


class MigrationCapabilitiesProvider(PerHostProvider):
    """{P}_VirtualSystemMigrationCapabilities."""

    def host_keys(self, host, classname):
        return {"InstanceID": msc_id(host)}

    def _fill(self, inst, model, host):
        fill(inst, model, {
            "ElementName": MSC_ID,
            "SynchronousMethodsSupported": SYNC_METHODS,
            "AsynchronousMethodsSupported": ASYNC_METHODS,
            "DestinationHostFormatsSupported": DEST_FORMATS,
            "MigrationTypesSupported": [Uint16(t) for t in sorted(vmig.TYPE_NAMES)],
            "TransportTypesSupported": [Uint16(t) for t in sorted(vmig.TRANSPORTS)],
        })


class MigrationSettingDataProvider(PerHostProvider):
    """{P}_VirtualSystemMigrationSettingData: the defaults of a migration."""

    def host_keys(self, host, classname):
        return {"InstanceID": msd_id(host)}

    def _fill(self, inst, model, host):
        d = vmig.Settings()
        fill(inst, model, {
            "ElementName": MSD_ID,
            "MigrationType": Uint16(d.type),
            "Priority": Uint16(d.priority),
            "TransportType": Uint16(d.transport),
            "BandwidthUnit": DEFAULT_BANDWIDTH_UNIT,
            "CompressionMethods": [],
            "AutoConverge": d.auto_converge,
            "PostCopy": d.postcopy,
            "EncryptStream": d.encrypt_stream,
            "StorageCopy": Uint16(d.storage_copy),
            "PersistOnDestination": d.persist,
            "UndefineSource": d.undefine_source,
            "Unsafe": d.unsafe,
        })


def get_providers(env) -> dict[str, Any]:
    out = providers_for(MigrationServiceProvider(), "VirtualSystemMigrationService")
    out.update(providers_for(MigrationCapabilitiesProvider(),
                             "VirtualSystemMigrationCapabilities"))
    out.update(providers_for(MigrationSettingDataProvider(), "VirtualSystemMigrationSettingData"))
    return out
