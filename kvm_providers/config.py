"""Configuration shared by every host: libvirt hosts, and the embedded server's settings.

One TOML file (see docs/ARCHITECTURE.md).  Installed hosts read
``/etc/kvm-providers/kvm-providers.conf``; ``$KVM_PROVIDERS_CONFIG`` names
another file; the embedded server takes ``--config``.  Values are checked
here, so that a bad file stops a host at start with a message naming the
setting, never later with a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlparse

__all__ = ["HostConfig", "ServerConfig", "StorageConfig", "MonitoringConfig", "AlertRule",
           "Config", "ConfigError", "load_config",
           "DEFAULT_CONFIG_PATH", "family_for_uri", "parse_hostport", "is_privileged_uri",
           "AUTH_MODES", "DEFAULT_INDICATION_DESTINATIONS"]

DEFAULT_CONFIG_PATH = "/etc/kvm-providers/kvm-providers.conf"
DEFAULT_URI = "test:///default"

_FAMILY_BY_SCHEME = {"qemu": "KVM", "kvm": "KVM", "test": "KVM", "lxc": "LXC",
                     "xen": "Xen", "libxl": "Xen"}
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


#: [server] auth: how clients are authenticated.
AUTH_MODES = ("none", "file", "pam")
#: Where indications may be sent unless [server] indication_destinations says otherwise.
DEFAULT_INDICATION_DESTINATIONS = ("127.0.0.0/8", "::1")


class ConfigError(ValueError):
    """A configuration file or option is invalid; the message names the setting."""


def family_for_uri(uri: str) -> str:
    """The class family (KVM, LXC, Xen) for a libvirt URI ("qemu+ssh://h/system" -> KVM)."""
    scheme = urlparse(uri).scheme.split("+", 1)[0].lower()
    try:
        return _FAMILY_BY_SCHEME[scheme]
    except KeyError:
        raise ConfigError(f"libvirt URI {uri!r}: no class family for driver {scheme!r} "
                          f"(known: {', '.join(sorted(_FAMILY_BY_SCHEME))})") from None


def is_privileged_uri(uri: str) -> bool:
    """True if the libvirt URI gives control over more than the server user's own sandbox.

    Only libvirt's test driver (``test:///default``, ``test+unix:///...``: fake
    objects in memory) and a local per-user QEMU daemon (``qemu:///session``)
    are unprivileged; ``qemu:///system``, ``lxc:///system``, Xen, ``qemu:///embed``
    and every remote URI (``qemu+ssh://host/system`` ...) control real
    machines with the rights of libvirtd or of a remote account.
    """
    p = urlparse(uri)
    driver, _, transport = p.scheme.lower().partition("+")
    if p.hostname or transport in ("ssh", "tcp", "tls", "libssh", "libssh2"):
        return True
    if driver == "test":
        return False
    return not (driver in ("qemu", "kvm") and p.path.rstrip("/") == "/session")


def parse_hostport(text: str, what: str = "listen") -> tuple[str, int]:
    """'127.0.0.1:5988', '[::1]:5988' or ':5988' -> (host, port)."""
    m = re.match(r"^\[([^\]]+)\]:(\d+)$", text) or re.match(r"^([^:]*):(\d+)$", text)
    if not m:
        raise ConfigError(f"{what} address {text!r} is not HOST:PORT")
    host, port = m.group(1) or "0.0.0.0", int(m.group(2))
    if not 0 <= port <= 65535:
        raise ConfigError(f"{what} address {text!r}: port out of range")
    return host, port


@dataclass(frozen=True)
class HostConfig:
    """One libvirt host: its URI, the class family serving it and a label for keys.

    ``keepalive_interval`` / ``keepalive_count`` are libvirt's client keepalive
    (``virConnectSetKeepAlive``; interval 0, the default, turns it off: see
    docs/libvirt-layer.md); ``hang_timeout`` is how long (seconds) the host may
    leave calls unanswered before they fail and the connection is replaced.
    """

    uri: str
    family: str
    name: str
    keepalive_interval: int = 0
    keepalive_count: int = 3
    hang_timeout: float = 15.0

    @staticmethod
    def make(uri: str, family: Optional[str] = None, name: Optional[str] = None,
             **tuning: Any) -> "HostConfig":
        if not uri or not isinstance(uri, str):
            raise ConfigError("host: 'uri' is required")
        fam = family or family_for_uri(uri)
        if fam not in ("KVM", "LXC", "Xen"):
            raise ConfigError(f"host {uri!r}: family {fam!r} is not KVM, LXC or Xen")
        label = name or _default_label(uri)
        if not _LABEL_RE.match(label):
            raise ConfigError(f"host {uri!r}: name {label!r} may hold only letters, digits, "
                              "'.', '_' and '-'")
        for key, value in tuning.items():
            if key not in _HOST_TUNING:
                raise ConfigError(f"host {uri!r}: unknown setting {key}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or (key.startswith("keepalive") and not isinstance(value, int)):
                raise ConfigError(f"host {uri!r}: {key} = {value!r} has the wrong type")
            if value < 0 or (key == "hang_timeout" and value <= 0):
                raise ConfigError(f"host {uri!r}: {key} must be "
                                  f"{'positive' if key == 'hang_timeout' else '0 or more'}")
        return HostConfig(uri=uri, family=fam, name=label, **tuning)


#: Per-host settings of the connection supervision (kvm_providers.virt.connection).
_HOST_TUNING = ("keepalive_interval", "keepalive_count", "hang_timeout")


def _default_label(uri: str) -> str:
    p = urlparse(uri)
    base = (p.hostname or "localhost")
    path = p.path.strip("/").replace("/", "-") or p.scheme
    label = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{base}-{path}" if p.hostname else path)
    return label.strip("-") or "host"


@dataclass
class ServerConfig:
    """Settings of the embedded WBEM server."""

    listen: list[str] = field(default_factory=lambda: ["127.0.0.1:5988"])
    https_listen: list[str] = field(default_factory=list)
    cert: Optional[str] = None
    key: Optional[str] = None
    auth_file: Optional[str] = None
    insecure: bool = False
    log_level: str = "info"
    max_body: int = 16 * 1024 * 1024
    max_body_buffer: int = 256 * 1024 * 1024   # request bodies held at once, all connections
    idle_timeout: float = 30.0
    request_timeout: float = 60.0
    workers: int = 16
    max_connections: int = 1024
    max_connections_per_address: int = 64
    max_requests_per_address: int = 8      # requests of one address in workers at once
    header_timeout: float = 10.0           # TLS handshake / request head, from the first byte
    enumeration_timeout: float = 60.0      # default OperationTimeout of pull contexts
    max_enumeration_timeout: float = 600.0
    max_enumeration_contexts: int = 256
    max_enumeration_contexts_per_user: int = 32   # per client address when anonymous
    max_batch_requests: int = 100          # operations in one MULTIREQ
    max_batch_response: int = 32 * 1024 * 1024   # characters of XML answered to one MULTIREQ
    state_dir: Optional[str] = None        # indication subscriptions kept here (JSON)
    indication_cafile: Optional[str] = None  # CAs for HTTPS listeners (default: system's)
    # Networks (CIDR), addresses or host names indications may be sent to.
    indication_destinations: list[str] = field(
        default_factory=lambda: list(DEFAULT_INDICATION_DESTINATIONS))
    # Authentication: "none", "file" (auth_file) or "pam"; None: "file" when
    # auth_file is set, else "none".
    auth: Optional[str] = None
    pam_service: str = "kvm-cimom"
    pam_group: str = "kvm-cimom"           # "" lets every user PAM accepts in
    # Serving a privileged libvirt URI without authentication needs this (or insecure).
    allow_anonymous: bool = False
    # Users who see and manage every user's indication subscriptions.
    admin_users: list[str] = field(default_factory=list)
    admin_group: Optional[str] = None
    # Failed logins: lock a user out after login_max_failures failures in a row, an
    # address after login_max_failures_per_address, for login_lockout seconds,
    # doubled with each further failure up to login_max_lockout.
    login_max_failures: int = 5
    login_max_failures_per_address: int = 20
    login_lockout: float = 30.0
    login_max_lockout: float = 900.0

    def auth_mode(self) -> str:
        """The effective authentication mode ("none", "file" or "pam")."""
        return self.auth or ("file" if self.auth_file else "none")


#: Where host files clients name may be without a storage pool: libvirt's default pool
#: directory and its directory for kernels and initrds of direct boot.
DEFAULT_ALLOWED_PATHS = ("/var/lib/libvirt/images", "/var/lib/libvirt/boot")


@dataclass
class StorageConfig:
    """Host storage clients may use (``[storage]``): disk sources and new storage pools'
    directories must lie inside `allowed_paths`; disk sources may also lie inside any
    storage pool's target directory."""

    allowed_paths: list[str] = field(default_factory=lambda: list(DEFAULT_ALLOWED_PATHS))


# -- [monitoring] (issue 15; docs/monitoring.md) -------------------------------------------

#: Alerts raised from libvirt's own events and states, without a rule.
EVENT_ALERTS = ("io-error", "watchdog", "crash", "host-unreachable")
ALERT_SEVERITIES = ("information", "degraded", "minor", "major", "critical", "fatal")


@dataclass(frozen=True)
class AlertRule:
    """``[[monitoring.alert]]``: raise an alert while `metric` is above (or below) a
    threshold for `duration` seconds (``for``); cleared when it no longer is."""

    name: str
    metric: str
    above: Optional[float] = None
    below: Optional[float] = None
    duration: float = 0.0
    severity: str = "major"


@dataclass
class MonitoringConfig:
    """``[monitoring]``: the statistics collector and alerts."""

    interval: float = 15.0            # seconds between samples
    history: float = 3600.0           # seconds of history kept per metric
    events: list[str] = field(default_factory=lambda: list(EVENT_ALERTS))
    alerts: list[AlertRule] = field(default_factory=list)


def _monitoring_from(data: Any, path: str) -> MonitoringConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: [monitoring] must be a table")
    cfg = MonitoringConfig()
    for key, value in data.items():
        if key in ("interval", "history"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"{path}: [monitoring] {key} must be a positive number")
            setattr(cfg, key, float(value))
        elif key == "events":
            if not isinstance(value, list) or any(v not in EVENT_ALERTS for v in value):
                raise ConfigError(f"{path}: [monitoring] events must be a list of "
                                  f"{', '.join(EVENT_ALERTS)}")
            cfg.events = list(value)
        elif key == "alert":
            if not isinstance(value, list):
                raise ConfigError(f"{path}: alert rules are [[monitoring.alert]] tables")
            cfg.alerts = [_alert_from(r, f"{path}: [[monitoring.alert]] #{i + 1}")
                          for i, r in enumerate(value)]
        else:
            raise ConfigError(f"{path}: unknown setting [monitoring] {key}")
    if cfg.interval < 1:
        raise ConfigError(f"{path}: [monitoring] interval must be at least 1 second")
    if cfg.history < cfg.interval:
        raise ConfigError(f"{path}: [monitoring] history must be at least the interval")
    return cfg


def _alert_from(data: Any, where: str) -> AlertRule:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table")
    extra = set(data) - {"name", "metric", "above", "below", "for", "severity"}
    if extra:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(extra))}")
    name, metric = data.get("name"), data.get("metric")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: 'name' is required")
    if not isinstance(metric, str) or not metric:
        raise ConfigError(f"{where} ({name}): 'metric' is required")
    for key in ("above", "below", "for"):
        v = data.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ConfigError(f"{where} ({name}): {key} must be a number")
    if (data.get("above") is None) == (data.get("below") is None):
        raise ConfigError(f"{where} ({name}): give one of 'above' or 'below'")
    severity = data.get("severity", "major")
    if severity not in ALERT_SEVERITIES:
        raise ConfigError(f"{where} ({name}): severity must be one of "
                          f"{', '.join(ALERT_SEVERITIES)}")
    duration = float(data.get("for", 0.0))
    if duration < 0:
        raise ConfigError(f"{where} ({name}): 'for' must be 0 or more seconds")
    return AlertRule(name.strip(), metric, data.get("above"), data.get("below"), duration,
                     severity)


@dataclass
class Config:
    """The whole configuration."""

    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    hosts: list[HostConfig] = field(default_factory=list)

    def add_host(self, uri: str, family: Optional[str] = None,
                 name: Optional[str] = None, **tuning: Any) -> HostConfig:
        host = HostConfig.make(uri, family, name, **tuning)
        if any(h.uri == host.uri for h in self.hosts):
            return next(h for h in self.hosts if h.uri == host.uri)
        taken = {h.name for h in self.hosts}
        if host.name in taken:
            if name:
                raise ConfigError(f"host name {name!r} is used twice")
            i = 2
            while f"{host.name}-{i}" in taken:
                i += 1
            host = dataclasses.replace(host, name=f"{host.name}-{i}")
        self.hosts.append(host)
        return host

    def effective_hosts(self) -> list[HostConfig]:
        """The configured hosts, or the test driver when none is configured."""
        return list(self.hosts) or [HostConfig.make(DEFAULT_URI)]


_SERVER_TYPES: dict[str, Any] = {
    "listen": list, "https_listen": list, "cert": str, "key": str, "auth_file": str,
    "insecure": bool, "log_level": str, "max_body": int, "max_body_buffer": int,
    "idle_timeout": (int, float),
    "request_timeout": (int, float), "workers": int, "max_connections": int,
    "max_connections_per_address": int, "header_timeout": (int, float),
    "max_requests_per_address": int,
    "enumeration_timeout": (int, float), "max_enumeration_timeout": (int, float),
    "max_enumeration_contexts": int, "state_dir": str, "indication_cafile": str,
    "max_batch_requests": int, "max_batch_response": int,
    "max_enumeration_contexts_per_user": int,
    "indication_destinations": list, "auth": str, "pam_service": str, "pam_group": str,
    "allow_anonymous": bool, "admin_users": list, "admin_group": str,
    "login_max_failures": int, "login_max_failures_per_address": int,
    "login_lockout": (int, float), "login_max_lockout": (int, float),
}


def check_server(cfg: ServerConfig, where: str) -> None:
    """Check the values of the settings that the types alone do not check."""
    if cfg.auth is not None and cfg.auth not in AUTH_MODES:
        raise ConfigError(f"{where}: [server] auth = {cfg.auth!r} is not one of "
                          f"{', '.join(AUTH_MODES)}")
    if cfg.auth_mode() == "file" and not cfg.auth_file:
        raise ConfigError(f"{where}: [server] auth = \"file\" needs auth_file")
    if cfg.auth_mode() == "pam" and not cfg.pam_service.strip():
        raise ConfigError(f"{where}: [server] pam_service is empty")
    for key in ("indication_destinations", "admin_users"):
        if not all(isinstance(v, str) and v.strip() for v in getattr(cfg, key)):
            raise ConfigError(f"{where}: [server] {key} must be a list of non-empty strings")
    for key in ("login_max_failures", "login_max_failures_per_address"):
        if getattr(cfg, key) <= 0:
            raise ConfigError(f"{where}: [server] {key} must be positive")
    if not 0 < cfg.login_lockout <= cfg.login_max_lockout:
        raise ConfigError(f"{where}: [server] login_lockout must be positive and at most "
                          "login_max_lockout")


def _server_from(data: dict, path: str) -> ServerConfig:
    cfg = ServerConfig()
    for key, value in data.items():
        want = _SERVER_TYPES.get(key)
        if want is None:
            raise ConfigError(f"{path}: unknown setting [server] {key}")
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ConfigError(f"{path}: [server] {key} = {value!r} has the wrong type")
        if key in ("listen", "https_listen"):
            for item in value:
                if not isinstance(item, str):
                    raise ConfigError(f"{path}: [server] {key} must be a list of strings")
                parse_hostport(item, key)
        setattr(cfg, key, value)
    for key in ("max_body", "max_body_buffer", "workers", "max_connections",
                "max_connections_per_address", "max_requests_per_address",
                "max_enumeration_contexts", "header_timeout", "idle_timeout",
                "request_timeout", "max_batch_requests", "max_batch_response",
                "max_enumeration_contexts_per_user"):
        if getattr(cfg, key) <= 0:
            raise ConfigError(f"{path}: [server] {key} must be positive")
    check_server(cfg, path)
    return cfg


def _storage_from(data: Any, path: str) -> StorageConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: [storage] must be a table")
    cfg = StorageConfig()
    for key, value in data.items():
        if key != "allowed_paths":
            raise ConfigError(f"{path}: unknown setting [storage] {key}")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{path}: [storage] allowed_paths must be a list of strings")
        for v in value:
            if not v.startswith("/") or "\x00" in v:
                raise ConfigError(f"{path}: [storage] allowed_paths: {v!r} is not an absolute "
                                  "path")
        cfg.allowed_paths = list(value)
    return cfg


def load_config(path: Optional[str] = None, required: bool = False) -> Config:
    """Read the configuration.

    `path` None: ``$KVM_PROVIDERS_CONFIG`` or the default path, which may be
    absent (then the defaults apply) unless `required`.
    """
    if path is None:
        path = os.environ.get("KVM_PROVIDERS_CONFIG") or DEFAULT_CONFIG_PATH
        required = required or "KVM_PROVIDERS_CONFIG" in os.environ
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        if required:
            raise ConfigError(f"configuration file {path} does not exist") from None
        return Config()
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    unknown = set(data) - {"server", "host", "storage", "monitoring"}
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")
    cfg = Config(server=_server_from(data.get("server", {}), path),
                 storage=_storage_from(data.get("storage", {}), path),
                 monitoring=_monitoring_from(data.get("monitoring", {}), path))
    hosts = data.get("host", [])
    if not isinstance(hosts, list):
        raise ConfigError(f"{path}: hosts are given as [[host]] tables")
    for i, h in enumerate(hosts):
        extra = set(h) - {"uri", "family", "name", *_HOST_TUNING}
        if extra:
            raise ConfigError(f"{path}: host #{i + 1}: unknown setting(s) {', '.join(extra)}")
        cfg.add_host(h.get("uri", ""), h.get("family"), h.get("name"),
                     **{k: v for k, v in h.items() if k in _HOST_TUNING})
    return cfg
