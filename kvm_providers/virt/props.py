"""Client property values (and :class:`~.errors.InvalidSetting` for bad ones), shared by the generic settings code
(:mod:`kvm_providers.model.settings`) and the device kinds (:mod:`kvm_providers.model.kinds`).

Moved out of settings.py (issue 11): the kinds' builders of new devices need
them, and settings.py consumes the kinds registry, so they live below both.
"""

from __future__ import annotations

import random
import re
from typing import Any, Mapping, Optional

from .connection import Host
from .errors import InvalidSetting
from .validate import PathNotAllowed, check_host_path

__all__ = ["InvalidSetting", "Props", "MAC_RE", "UUID_RE", "same_value", "random_mac", "image_format", "host_path", "host_is_local",
           "pool_id_name", "owner"]


MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")


class Props(dict):
    """Property values keyed by lower-case name, NULLs left out; `.names` keeps the spelling.

    `.defaults` holds the class defaults of the instance's class ({lower-case
    name: value}), to tell a value the client asks for from one a CIM server
    filled in.
    """

    def __init__(self, values: Optional[Mapping[str, Any]] = None,
                 defaults: Optional[Mapping[str, Any]] = None):
        super().__init__()
        self.names: dict[str, str] = {}
        self.defaults: dict[str, Any] = dict(defaults if defaults is not None
                                             else getattr(values, "defaults", {}))
        for k, v in dict(values or {}).items():
            if v is not None:
                self[k.lower()] = v
                self.names[k.lower()] = k

    def get_(self, name: str, default: Any = None) -> Any:
        return self.get(name.lower(), default)

    def has(self, name: str) -> bool:
        return name.lower() in self

    def pop_(self, name: str) -> Any:
        self.names.pop(name.lower(), None)
        return self.pop(name.lower(), None)

    def put(self, name: str, value: Any) -> None:
        if value is None:
            self.pop_(name)
        else:
            self[name.lower()] = value
            self.names[name.lower()] = name

    def is_default(self, name: str) -> bool:
        """True if the property's value is the class default (so may be a server's filler)."""
        key = name.lower()
        return key in self and key in self.defaults and _same(self[key], self.defaults[key])

    def explicit(self, name: str) -> Any:
        """The value of a property the client cannot set, None if absent or the class default."""
        return None if self.is_default(name) else self.get(name.lower())


def _norm(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)


def _same(a: Any, b: Any) -> bool:
    na, nb = _norm(a), _norm(b)
    if na == nb:
        return True
    # "" / [] (remove) against nothing there
    if na in ("", []) and nb in (None, "", []):
        return True
    if isinstance(na, str) and isinstance(nb, int) or isinstance(na, int) and isinstance(nb, str):
        return str(na) == str(nb)
    return False


def random_mac(taken: Any, family: str = "KVM") -> str:
    """A MAC not in `taken`: 52:54:00 (QEMU's prefix) or 00:16:3e (Xen's), random tail."""
    prefix = "00:16:3e" if family.upper() == "XEN" else "52:54:00"
    rng = random.SystemRandom()
    for _ in range(1000):
        mac = f"{prefix}:{rng.randrange(256):02x}:{rng.randrange(256):02x}:{rng.randrange(256):02x}"
        if mac not in taken:
            return mac
    raise RuntimeError("no free MAC address found")


def _disk_format(path: str) -> str:
    """qcow2 if the local file starts with the qcow2 magic, else raw."""
    try:
        with open(path, "rb") as f:
            return "qcow2" if f.read(4) == b"QFI\xfb" else "raw"
    except OSError:
        return "raw"


def image_format(host: Host, path: Optional[str]) -> Optional[str]:
    """The driver type of a disk image read from the file, where the host's files are this
    machine's; None where it cannot be read here (a new disk then gets raw)."""
    return _disk_format(path) if path and host_is_local(host) else None


def host_path(host: Host, value: Any, where: str, prop: str = "Address") -> str:
    """A host path a client gave (disk source, shared directory), normalised, if it lies in
    the storage this service may use (:func:`validate.check_host_path`); else InvalidSetting
    that reads the same whether or not the path exists."""
    try:
        return check_host_path(host, value, prop)
    except PathNotAllowed as exc:
        raise InvalidSetting(where, str(exc)) from None


def host_is_local(host: Host) -> bool:
    """True if the host's files are this machine's files (so paths can be checked here):
    :attr:`Host.files_local`, the layer's one answer."""
    return host.files_local


def pool_id_name(pool_id: Any, prefix: str, what: str, where: str) -> str:
    """The <name> of a PoolID '<prefix>/<name>' ('0': the primordial pool)."""
    text = str(pool_id)
    if not text.startswith(f"{prefix}/") or len(text) <= len(prefix) + 1:
        raise InvalidSetting(where, f"PoolID {pool_id!r} is not a {prefix}/<{what}> id")
    return text.split("/", 1)[1]


def owner(macs: Any, mac: str) -> str:
    if isinstance(macs, dict):
        return repr(macs.get(mac))
    return "another device"



#: Public name of the comparison the settings code uses ("does the client's value say
#: what the XML says?").
same_value = _same
