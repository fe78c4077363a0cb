"""Migration of virtual systems between libvirt hosts (DSP1081), without CIM.

The providers (``kvm_providers/providers/migration_service.py``) turn CIM
parameters into the plain values here and :class:`MigrationError` into CIM
errors; this module knows libvirt only.

* :class:`Settings`: what a client asks (migration type, bandwidth, storage copy,
  ...), checked by :meth:`Settings.validate`, turned into libvirt's flags and
  typed parameters by :meth:`Settings.flags` / :meth:`Settings.params`.
* :func:`destination_uri`: the libvirt URI of a destination a client names (a
  host name, an address or a libvirt URI), validated: nothing a client sends is
  ever passed to a shell or a command, and URI parameters that make libvirt run
  programs (``command``, ``netcat``, the ``ext`` transport) are refused.
* :func:`peer_uri`: the URI by which the *source* libvirtd reaches the
  destination (peer to peer): a URI local to this machine gets the ``unix``
  transport, or the source daemon would open its own driver.
* :func:`check` (:mod:`.migration_check`): every reason a migration cannot work,
  changing nothing.
* :func:`run`: the migration itself, in the caller's thread, reporting progress
  and cancellable; ``migrateToURI3`` peer to peer.

A migration has its own libvirt connections (the source's, and for a restart
migration the destination's): ``migrateToURI3`` blocks for as long as the
migration lasts, far longer than the supervised connections of
:mod:`.connection` let a call run before they call the host hung.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

import libvirt
from lxml import etree

from . import jobs as vjobs
from .errors import VirtError

__all__ = ["MigrationError", "JOB_KINDS", "Settings", "RESOLVER", "resolve", "MIGRATE_OTHER", "MIGRATE_LIVE", "MIGRATE_RESUME",
           "MIGRATE_RESTART", "OFFLINE", "TRANSPORTS", "STORAGE_NONE", "STORAGE_FULL",
           "STORAGE_INCREMENTAL", "COMPRESSION_METHODS", "destination_uri", "peer_uri",
           "open_connection", "run", "Progress", "NoProgress", "rewrite_disk_paths", "percent_of", "RESTART_SHUTDOWN_TIMEOUT"]

LOG = logging.getLogger(__name__)

# CIM_VirtualSystemMigrationSettingData.MigrationType (libvirt-cim's meanings).
MIGRATE_OTHER = 1       # libvirt-cim: offline - a guest that is shut off moves its definition
MIGRATE_LIVE = 2        # the guest runs on while its memory is copied
MIGRATE_RESUME = 3      # the guest is paused while it moves, resumed on the destination
MIGRATE_RESTART = 4     # the guest is shut down, moved, started on the destination
OFFLINE = MIGRATE_OTHER
TYPE_NAMES = {MIGRATE_OTHER: "offline", MIGRATE_LIVE: "live", MIGRATE_RESUME: "resume",
              MIGRATE_RESTART: "restart"}

# TransportType (DMTF values; 32768 is libvirt-cim's UNIX) -> libvirt URI transport.
TRANSPORTS = {2: "ssh", 3: "tls", 4: "tls", 5: "tcp", 6: "unix", 32768: "unix"}
DEFAULT_TRANSPORT = 2        # SSH, libvirt-cim's default

STORAGE_NONE = 0             # shared storage: nothing copied
STORAGE_FULL = 1             # copy every writable disk (VIR_MIGRATE_NON_SHARED_DISK)
STORAGE_INCREMENTAL = 2      # copy the top layer only (VIR_MIGRATE_NON_SHARED_INC)

COMPRESSION_METHODS = ("xbzrle", "mt", "zlib", "zstd")

#: Seconds a restart migration waits for the guest to shut down (libvirt-cim's 120).
RESTART_SHUTDOWN_TIMEOUT = 120.0

# Limits of what clients may ask (libvirt would take more, no host can use it).
MAX_BANDWIDTH_MIB = 1 << 20          # MiB/s
MAX_DOWNTIME_MS = 3_600_000
MAX_PARALLEL = 255
MAX_DEST_LEN = 1024


#: MigrationError kind -> the libvirt layer's error reason (virt/errors.py).
_REASONS = {"invalid": "invalid-setting", "not_found": "not-found",
            "unsupported": "not-supported"}
#: MigrationError kind -> the job model's error kind (virt/jobs.py).
JOB_KINDS = {"invalid": vjobs.ERR_INVALID, "not_found": vjobs.ERR_NOT_FOUND,
             "unsupported": vjobs.ERR_NOT_SUPPORTED, "cancelled": vjobs.ERR_CANCELLED}


class MigrationError(VirtError):
    """Why a migration cannot be done or failed.

    ``kind`` says what the provider answers: ``invalid`` (a bad parameter),
    ``not_found`` (no such guest or host), ``refused`` (the checks found
    reasons, listed in ``reasons``), ``unsupported``, ``failed`` (libvirt
    failed), ``cancelled``.  ``reason`` is the layer's (virt/errors.py).
    """

    def __init__(self, kind: str, message: str, reasons: Optional[list[str]] = None):
        super().__init__(message, _REASONS.get(kind, "failed"))
        self.kind = kind
        self.reasons = list(reasons or [])

    def job_failure(self) -> vjobs.JobFailed:
        """The same failure for a job (virt/jobs.py)."""
        return vjobs.JobFailed(self.message, JOB_KINDS.get(self.kind, vjobs.ERR_FAILED))


@dataclass
class Settings:
    """A migration's settings (CIM_VirtualSystemMigrationSettingData and our properties)."""

    type: int = MIGRATE_LIVE
    priority: int = 0
    transport: int = DEFAULT_TRANSPORT
    bandwidth_mib: Optional[int] = None       # MiB/s; None: unlimited
    max_downtime_ms: Optional[int] = None
    compression: list[str] = field(default_factory=list)
    compression_level: Optional[int] = None
    parallel_connections: Optional[int] = None
    auto_converge: bool = False
    postcopy: bool = False
    encrypt_stream: bool = False              # VIR_MIGRATE_TLS (QEMU's stream over TLS)
    storage_copy: int = STORAGE_NONE
    persist: bool = True                      # defined on the destination afterwards
    undefine_source: bool = True              # no longer defined on the source afterwards
    unsafe: bool = False                      # VIR_MIGRATE_UNSAFE: libvirt's storage checks off
    #: New paths of disks on the destination (target dev -> path), with a storage copy.
    disk_paths: dict[str, str] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.type == MIGRATE_LIVE

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, str(self.type))

    def validate(self) -> None:
        """Raise MigrationError('invalid', naming the property) for what cannot be had."""
        def bad(prop: str, why: str) -> MigrationError:
            return MigrationError("invalid", f"MigrationSettingData.{prop}: {why}")
        if self.type not in TYPE_NAMES:
            raise bad("MigrationType", f"{self.type} is not 1 (offline), 2 (live), 3 (resume) "
                                       f"or 4 (restart)")
        if self.transport not in TRANSPORTS:
            raise bad("TransportType", f"{self.transport} is not 2 (SSH), 3 (TLS), 4 (TLS "
                                       f"strict), 5 (TCP), 6 (IPC) or 32768 (UNIX)")
        if self.bandwidth_mib is not None and not 0 < self.bandwidth_mib <= MAX_BANDWIDTH_MIB:
            raise bad("Bandwidth", f"{self.bandwidth_mib} MiB/s is not within 1 .. "
                                   f"{MAX_BANDWIDTH_MIB}")
        if self.max_downtime_ms is not None and not 0 < self.max_downtime_ms <= MAX_DOWNTIME_MS:
            raise bad("MaxDowntime", f"{self.max_downtime_ms} ms is not within 1 .. "
                                     f"{MAX_DOWNTIME_MS}")
        for method in self.compression:
            if method not in COMPRESSION_METHODS:
                raise bad("CompressionMethods", f"{method!r} is not one of "
                                                f"{', '.join(COMPRESSION_METHODS)}")
        if self.compression_level is not None:
            top = 22 if "zstd" in self.compression else 9
            if not self.compression or not set(self.compression) & {"mt", "zlib", "zstd"}:
                raise bad("CompressionLevel", "needs a compression method with levels "
                                              "(mt, zlib or zstd)")
            if not 0 <= self.compression_level <= top:
                raise bad("CompressionLevel", f"{self.compression_level} is not within 0 .. {top}")
        if self.parallel_connections is not None and \
                not 1 <= self.parallel_connections <= MAX_PARALLEL:
            raise bad("ParallelConnections", f"{self.parallel_connections} is not within 1 .. "
                                             f"{MAX_PARALLEL}")
        if self.storage_copy not in (STORAGE_NONE, STORAGE_FULL, STORAGE_INCREMENTAL):
            raise bad("StorageCopy", f"{self.storage_copy} is not 0 (none), 1 (full) or "
                                     f"2 (incremental)")
        if self.type in (MIGRATE_OTHER, MIGRATE_RESTART):
            # Offline migration moves the definition only (libvirt copies no storage then).
            if self.storage_copy != STORAGE_NONE:
                raise bad("StorageCopy", f"a {self.type_name} migration copies no storage "
                                         f"(libvirt's offline migration moves the definition)")
            if not self.persist:
                raise bad("PersistOnDestination", f"a {self.type_name} migration defines the "
                                                  f"guest on the destination")
        if self.postcopy and self.type != MIGRATE_LIVE:
            raise bad("PostCopy", "post-copy needs a live migration")
        if self.disk_paths:
            if self.storage_copy == STORAGE_NONE or self.type not in (MIGRATE_LIVE,
                                                                      MIGRATE_RESUME):
                raise MigrationError("invalid", "NewResourceSettingData: a disk gets a new "
                                                "path only with a storage copy (StorageCopy 1 "
                                                "or 2) of a live or resume migration")
            for dev, path in self.disk_paths.items():
                if not _SAFE_PATH.match(path) or ".." in path.split("/") or len(path) > 4096:
                    raise MigrationError("invalid", f"NewResourceSettingData: the new path "
                                                    f"{path!r} of disk {dev} is not an absolute "
                                                    f"path of plain characters")

    def flags(self) -> int:
        """libvirt's migration flags (always peer to peer: the source daemon does the work)."""
        f = libvirt.VIR_MIGRATE_PEER2PEER
        if self.type in (MIGRATE_OTHER, MIGRATE_RESTART):
            f |= libvirt.VIR_MIGRATE_OFFLINE
        elif self.type == MIGRATE_LIVE:
            f |= libvirt.VIR_MIGRATE_LIVE
        if self.persist:
            f |= libvirt.VIR_MIGRATE_PERSIST_DEST
        if self.undefine_source:
            f |= libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
        if self.storage_copy == STORAGE_FULL:
            f |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
        elif self.storage_copy == STORAGE_INCREMENTAL:
            f |= libvirt.VIR_MIGRATE_NON_SHARED_INC
        if self.compression:
            f |= libvirt.VIR_MIGRATE_COMPRESSED
        if self.parallel_connections:
            f |= libvirt.VIR_MIGRATE_PARALLEL
        if self.auto_converge:
            f |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
        if self.postcopy:
            f |= libvirt.VIR_MIGRATE_POSTCOPY
        if self.encrypt_stream:
            f |= libvirt.VIR_MIGRATE_TLS
        if self.unsafe:
            f |= libvirt.VIR_MIGRATE_UNSAFE
        return f

    def params(self) -> dict[str, Any]:
        """libvirt's typed migration parameters (migrateToURI3)."""
        p: dict[str, Any] = {}
        if self.bandwidth_mib is not None:
            p[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = self.bandwidth_mib
        if self.compression:
            # A list: the binding sends one typed parameter per method.
            p[libvirt.VIR_MIGRATE_PARAM_COMPRESSION] = list(self.compression)
            if self.compression_level is not None:
                for method, key in (("mt", libvirt.VIR_MIGRATE_PARAM_COMPRESSION_MT_LEVEL),
                                    ("zlib", "compression.zlib.level"),
                                    ("zstd", "compression.zstd.level")):
                    if method in self.compression:
                        p[key] = self.compression_level
        if self.parallel_connections:
            p[libvirt.VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS] = self.parallel_connections
        return p


# -- destinations ------------------------------------------------------------------

_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_SCHEMES = {"KVM": ("qemu", "test"), "LXC": ("lxc",), "Xen": ("xen", "libxl")}
_URI_TRANSPORTS = ("", "tcp", "tls", "ssh", "libssh", "libssh2", "unix")
# URI parameters a client may give: none of them makes libvirt run a program
# (``command``, ``netcat``, ``proxy`` and the ext transport do, so they are refused).
_URI_PARAMS = ("socket", "no_verify", "no_tty", "pkipath", "known_hosts_verify", "mode")
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+-]*$")


def _valid_hostname(name: str) -> bool:
    if len(name) > 253:
        return False
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    labels = name.rstrip(".").split(".")
    return all(_LABEL.match(label) for label in labels) and not labels[-1].isdigit()


def destination_uri(text: Any, family: str, transport: int = DEFAULT_TRANSPORT) -> str:
    """The libvirt URI of the destination a client names.

    `text` is a host name, an IPv4 or IPv6 address (then the URI is
    ``<driver>+<transport>://<host>/system``, the transport from TransportType,
    as libvirt-cim builds it) or a libvirt URI of the family's driver.  Raises
    MigrationError('invalid') naming what is wrong; the answer contains only
    what was checked here.
    """
    if not isinstance(text, str) or not text.strip():
        raise MigrationError("invalid", "DestinationHost is missing or empty")
    text = text.strip()
    if len(text) > MAX_DEST_LEN or any(ord(c) < 0x21 or ord(c) == 0x7f for c in text):
        raise MigrationError("invalid", "DestinationHost is too long or has blanks or "
                                        "control characters")
    drivers = _SCHEMES.get(family, ())
    if "://" not in text:
        host = text[1:-1] if text.startswith("[") and text.endswith("]") else text
        if not _valid_hostname(host):
            raise MigrationError("invalid", f"DestinationHost {text!r} is neither a host name, "
                                            f"an IP address nor a libvirt URI")
        tport = TRANSPORTS.get(transport)
        if tport is None:
            raise MigrationError("invalid", f"MigrationSettingData.TransportType {transport} "
                                            f"is not supported")
        if tport == "unix":
            raise MigrationError("invalid", "MigrationSettingData.TransportType UNIX/IPC needs "
                                            "a libvirt URI naming the socket, not a host name")
        netloc = f"[{host}]" if ":" in host else host
        suffix = "?no_verify=1" if transport == 3 else ""     # libvirt-cim's TLS (not strict)
        return f"{drivers[0]}+{tport}://{netloc}/system{suffix}"
    try:
        u = urllib.parse.urlsplit(text)
        port = u.port
    except ValueError as exc:
        raise MigrationError("invalid", f"DestinationHost {text!r}: {exc}") from None
    driver, _, tport = u.scheme.partition("+")
    if driver not in drivers or tport not in _URI_TRANSPORTS:
        raise MigrationError("invalid", f"DestinationHost {text!r}: the scheme must be one of "
                                        f"{', '.join(drivers)} with a transport of "
                                        f"{', '.join(t for t in _URI_TRANSPORTS if t)}")
    if u.username is not None or u.password is not None or u.fragment:
        raise MigrationError("invalid", f"DestinationHost {text!r}: no user, password or "
                                        f"fragment in the URI")
    if u.hostname and not _valid_hostname(u.hostname):
        raise MigrationError("invalid", f"DestinationHost {text!r}: bad host name")
    if port is not None and not 0 < port < 65536:
        raise MigrationError("invalid", f"DestinationHost {text!r}: bad port")
    if driver == "qemu" and u.path not in ("/system", "/session"):
        raise MigrationError("invalid", f"DestinationHost {text!r}: the path must be /system "
                                        f"or /session")
    for key, values in urllib.parse.parse_qs(u.query, keep_blank_values=True,
                                             strict_parsing=False).items():
        if key not in _URI_PARAMS or len(values) != 1:
            raise MigrationError("invalid", f"DestinationHost {text!r}: URI parameter {key!r} "
                                            f"is not allowed (allowed: {', '.join(_URI_PARAMS)})")
        value = values[0]
        if key in ("socket", "pkipath") and (not _SAFE_PATH.match(value) or ".." in value):
            raise MigrationError("invalid", f"DestinationHost {text!r}: {key} must be an "
                                            f"absolute path of plain characters")
        if key not in ("socket", "pkipath") and not re.match(r"^[A-Za-z0-9_-]{0,32}$", value):
            raise MigrationError("invalid", f"DestinationHost {text!r}: bad value of {key}")
    if tport == "unix" and u.hostname:
        raise MigrationError("invalid", f"DestinationHost {text!r}: a unix transport names no "
                                        f"host")
    return text


def peer_uri(uri: str) -> str:
    """The URI by which a source libvirtd on this machine reaches the host at `uri`.

    Inside a daemon a URI without a transport and a host opens that daemon's own
    driver, never another daemon: a local URI therefore gets the ``unix``
    transport (its ``socket`` parameter, if any, kept).
    """
    u = urllib.parse.urlsplit(uri)
    if "+" in u.scheme or u.netloc:
        return uri
    return f"{u.scheme}+unix://{u.path}" + (f"?{u.query}" if u.query else "")


def open_connection(uri: str, timeout: float = 30.0) -> Any:
    """A new libvirt connection to `uri`, opened in a helper thread so that a destination
    that does not answer fails after `timeout` seconds instead of holding the caller.
    Raises MigrationError('failed') naming the URI."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["conn"] = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            box["error"] = exc.get_error_message() or str(exc)
        if box.get("abandoned") and "conn" in box:
            try:
                box["conn"].close()
            except libvirt.libvirtError:
                pass
    t = threading.Thread(target=work, daemon=True, name="migration-open")
    t.start()
    t.join(timeout)
    if t.is_alive():
        box["abandoned"] = True
        raise MigrationError("failed", f"destination {uri} did not answer within {timeout:g} s")
    if "error" in box:
        raise MigrationError("failed", f"cannot connect to {uri}: {box['error']}")
    return box["conn"]


# -- running a migration -----------------------------------------------------------

class Progress(Protocol):
    """What :func:`run` reports to: the job model's context (virt/jobs.py JobContext)
    has this shape, so that a job's context is passed as it is."""

    @property
    def cancelled(self) -> bool:
        """True once a stop was asked for."""

    def progress(self, percent: Optional[int], phase: Optional[str] = None) -> None:
        """Measured progress, 0-100."""

    def set_abort(self, fn: Optional[Callable[[], None]]) -> None:
        """How to cancel what runs now (None: it cannot be cancelled)."""


class NoProgress:
    """A :class:`Progress` that reports nowhere and is never cancelled."""

    cancelled = False

    def progress(self, percent: Optional[int], phase: Optional[str] = None) -> None:
        pass

    def set_abort(self, fn: Optional[Callable[[], None]]) -> None:
        pass


def percent_of(stats: dict[str, Any]) -> Optional[tuple[int, str]]:
    """(percent, phase) from virDomainGetJobStats, or None if it says nothing yet.

    ``data_*`` cover memory and storage together; the phase is ``disk`` while
    storage is still being copied (libvirt copies it first), else ``memory``
    with the pass number (later passes resend what the guest dirtied).
    """
    if not stats or stats.get("type", 0) == libvirt.VIR_DOMAIN_JOB_NONE:
        return None
    total = stats.get("data_total") or (stats.get("memory_total", 0) + stats.get("disk_total", 0))
    if not total:
        return None
    remaining = stats.get("data_remaining")
    if remaining is None:
        remaining = stats.get("memory_remaining", 0) + stats.get("disk_remaining", 0)
    pct = int(100 * (total - remaining) / total)
    if stats.get("disk_remaining"):
        phase = "disk"
    else:
        phase = f"memory (pass {stats.get('memory_iteration', 1) or 1})"
    return max(0, min(99, pct)), phase


def _follow(dom: Any, report: Progress, stop: threading.Event, postcopy: bool) -> None:
    """Poll the migration's statistics every 0.5 s until `stop`; switch to post-copy
    after the first full pass when asked to."""
    switched = False
    while not stop.wait(0.5):
        try:
            stats = dom.jobStats()
        except libvirt.libvirtError:
            continue
        got = percent_of(stats)
        if got is not None:
            report.progress(*got)
        if postcopy and not switched and stats.get("memory_iteration", 0) >= 2:
            try:
                dom.migrateStartPostCopy()
                switched = True
            except libvirt.libvirtError as exc:
                LOG.debug("post-copy switch refused: %s", exc)


def _libvirt_message(exc: libvirt.libvirtError) -> str:
    return exc.get_error_message() or str(exc)


def run(source_uri: str, domain: str, dest_peer_uri: str, settings: Settings,
        report: Optional[Progress] = None, dest_uri: Optional[str] = None,
        shutdown_timeout: float = RESTART_SHUTDOWN_TIMEOUT) -> None:
    """Migrate `domain` of the host at `source_uri` to `dest_peer_uri` (as the source
    daemon reaches it).  Blocks until done.  A failed or cancelled migration leaves
    the guest on the source as libvirt leaves it: running, defined, unchanged.

    `dest_uri` (how this process reaches the destination) is needed by a restart
    migration, which starts the guest there.  Raises MigrationError: ``cancelled``
    when a stop was asked for, else ``failed`` with libvirt's message.
    """
    report = report or NoProgress()
    settings.validate()
    conn = open_connection(source_uri)
    try:
        try:
            dom = conn.lookupByName(domain)
        except libvirt.libvirtError as exc:
            raise MigrationError("not_found", f"no virtual system {domain!r} on the source: "
                                              f"{_libvirt_message(exc)}") from None
        if settings.type == MIGRATE_RESTART:
            _shut_down(dom, report, shutdown_timeout)
        flags = settings.flags()
        params = settings.params()
        if settings.disk_paths:
            params.update(_new_paths_params(dom, settings))
        if settings.max_downtime_ms is not None and settings.type != MIGRATE_RESTART:
            # Set before the migration starts: libvirt keeps it for the domain's next job.
            try:
                dom.migrateSetMaxDowntime(settings.max_downtime_ms, 0)
            except libvirt.libvirtError as exc:
                raise MigrationError("failed", f"cannot set the maximum downtime: "
                                               f"{_libvirt_message(exc)}") from None
        offline = bool(flags & libvirt.VIR_MIGRATE_OFFLINE)
        report.set_abort(None if offline else dom.abortJob)
        if report.cancelled:
            raise MigrationError("cancelled", "the migration was cancelled before it started")
        stop = threading.Event()
        follower = None
        if not offline:
            follower = threading.Thread(target=_follow, args=(dom, report, stop,
                                                              settings.postcopy),
                                        daemon=True, name="migration-progress")
            follower.start()
        LOG.info("migrating %s (%s) to %s, flags %#x", domain, settings.type_name,
                 dest_peer_uri, flags)
        try:
            dom.migrateToURI3(dest_peer_uri, params, flags)
        except libvirt.libvirtError as exc:
            if report.cancelled or exc.get_error_code() == libvirt.VIR_ERR_OPERATION_ABORTED:
                raise MigrationError("cancelled", f"the migration was cancelled: "
                                                  f"{_libvirt_message(exc)}") from None
            raise MigrationError("failed", f"libvirt: {_libvirt_message(exc)}") from None
        finally:
            report.set_abort(None)
            stop.set()
            if follower is not None:
                follower.join(5)
        if settings.type == MIGRATE_RESTART:
            _start_on(dest_uri or dest_peer_uri, domain)
    finally:
        try:
            conn.close()
        except libvirt.libvirtError:
            pass


def rewrite_disk_paths(xml: str, paths: dict[str, str]) -> str:
    """The domain XML with the sources of the disks `paths` names (target dev -> path)
    replaced; MigrationError('invalid') for a target the guest does not have."""
    root = etree.fromstring(xml.encode())
    seen = set()
    for disk in root.iterfind("devices/disk"):
        target = disk.find("target")
        dev = target.get("dev") if target is not None else None
        if dev not in paths:
            continue
        src = disk.find("source")
        if disk.get("type") != "file" or src is None:
            raise MigrationError("invalid", f"NewResourceSettingData: disk {dev} is not a file "
                                            f"disk: only a file disk gets a new path")
        src.set("file", paths[dev])
        seen.add(dev)
    missing = sorted(set(paths) - seen)
    if missing:
        raise MigrationError("invalid", f"NewResourceSettingData: the guest has no disk "
                                        f"{', '.join(missing)}")
    return etree.tostring(root, encoding="unicode")


def _new_paths_params(dom: Any, settings: Settings) -> dict[str, str]:
    """VIR_MIGRATE_PARAM_DEST_XML (and PERSIST_XML) with the disks' new paths."""
    flags = libvirt.VIR_DOMAIN_XML_SECURE | libvirt.VIR_DOMAIN_XML_MIGRATABLE
    try:
        live = dom.XMLDesc(flags)
        persistent = dom.XMLDesc(flags | libvirt.VIR_DOMAIN_XML_INACTIVE) \
            if settings.persist and dom.isPersistent() else None
    except libvirt.libvirtError as exc:
        raise MigrationError("failed", f"cannot read the guest's definition: "
                                       f"{_libvirt_message(exc)}") from None
    out = {libvirt.VIR_MIGRATE_PARAM_DEST_XML: rewrite_disk_paths(live, settings.disk_paths)}
    if persistent is not None:
        out[libvirt.VIR_MIGRATE_PARAM_PERSIST_XML] = rewrite_disk_paths(persistent,
                                                                      settings.disk_paths)
    return out


def _shut_down(dom: Any, report: Progress, timeout: float) -> None:
    """Shut the guest down (ACPI) and wait until it is off; pressed again every 10 s (a
    guest may miss the first press while it boots)."""
    deadline = time.monotonic() + timeout
    last = 0.0
    report.progress(0, "shutting down")
    # Cancellable while it waits: the loop sees the request (the guest then stays shut
    # off on the source, defined as before).
    report.set_abort(lambda: None)
    while True:
        try:
            if not dom.isActive():
                return
            if time.monotonic() - last >= 10:
                dom.shutdown()
                last = time.monotonic()
        except libvirt.libvirtError as exc:
            if dom.isActive():
                raise MigrationError("failed", f"cannot shut the guest down: "
                                               f"{_libvirt_message(exc)}") from None
            return
        if report.cancelled:
            raise MigrationError("cancelled", "the restart migration was cancelled while the "
                                              "guest shut down")
        if time.monotonic() > deadline:
            raise MigrationError("failed", f"the guest did not shut down within {timeout:g} s")
        time.sleep(0.5)


def _start_on(uri: str, domain: str) -> None:
    conn = open_connection(uri)
    try:
        conn.lookupByName(domain).create()
    except libvirt.libvirtError as exc:
        raise MigrationError("failed", f"moved, but cannot start it on the destination: "
                                       f"{_libvirt_message(exc)}") from None
    finally:
        conn.close()


def guest_xml_root(xml: str) -> Any:
    """The parsed domain XML (a helper of the checks)."""
    return etree.fromstring(xml.encode())


#: The resolver name migration jobs give (virt.jobs.register_resolver).
RESOLVER = "migration"


def resolve(ctx: Any) -> dict[str, Any]:
    """The outcome of a migration job that ran while the server stopped: the guest is
    on the destination (done), or still on the source and not there (failed)."""
    p = ctx.job.params or {}
    domain, dest_uri, source_uri = p.get("domain"), p.get("dest_uri"), p.get("source_uri")
    if not (domain and dest_uri and source_uri):
        raise vjobs.JobFailed("the migration's parameters were not saved", vjobs.ERR_UNKNOWN)

    def present(uri: str) -> Optional[bool]:
        try:
            conn = open_connection(uri)
        except MigrationError:
            return None
        try:
            conn.lookupByName(domain)
            return True
        except libvirt.libvirtError:
            return False
        finally:
            conn.close()
    on_dest, on_source = present(dest_uri), present(source_uri)
    if on_dest:
        return {"destination": dest_uri}
    if on_dest is False and on_source:
        raise vjobs.JobFailed(f"the guest {domain!r} is still on the source",
                              vjobs.ERR_FAILED)
    raise vjobs.JobFailed("the server restarted while the migration ran; its outcome "
                          "cannot be known", vjobs.ERR_UNKNOWN)


vjobs.register_resolver(RESOLVER, resolve)
