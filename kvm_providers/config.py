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

__all__ = ["HostConfig", "ServerConfig", "Config", "ConfigError", "load_config",
           "DEFAULT_CONFIG_PATH", "family_for_uri", "parse_hostport"]

DEFAULT_CONFIG_PATH = "/etc/kvm-providers/kvm-providers.conf"
DEFAULT_URI = "test:///default"

_FAMILY_BY_SCHEME = {"qemu": "KVM", "kvm": "KVM", "test": "KVM", "lxc": "LXC",
                     "xen": "Xen", "libxl": "Xen"}
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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
    idle_timeout: float = 30.0
    request_timeout: float = 60.0
    workers: int = 16
    max_connections: int = 256
    enumeration_timeout: float = 60.0      # default OperationTimeout of pull contexts
    max_enumeration_timeout: float = 600.0
    max_enumeration_contexts: int = 256
    state_dir: Optional[str] = None        # indication subscriptions kept here (JSON)
    indication_cafile: Optional[str] = None  # CAs for HTTPS listeners (default: system's)


@dataclass
class Config:
    """The whole configuration."""

    server: ServerConfig = field(default_factory=ServerConfig)
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
    "insecure": bool, "log_level": str, "max_body": int, "idle_timeout": (int, float),
    "request_timeout": (int, float), "workers": int, "max_connections": int,
    "enumeration_timeout": (int, float), "max_enumeration_timeout": (int, float),
    "max_enumeration_contexts": int, "state_dir": str, "indication_cafile": str,
}


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
    for key in ("max_body", "workers", "max_connections", "max_enumeration_contexts"):
        if getattr(cfg, key) <= 0:
            raise ConfigError(f"{path}: [server] {key} must be positive")
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
    unknown = set(data) - {"server", "host"}
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")
    cfg = Config(server=_server_from(data.get("server", {}), path))
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
