"""Checks of the names and host paths clients send, before anything reaches libvirt.

One place for what every method that takes a name or a host path from a
client must refuse:

* :func:`check_name` -- the names of virtual systems, storage pools,
  networks and storage volumes.  libvirt keeps definitions in files named
  after them (``<config dir>/<name>.xml``, ``snapshot/<name>/``,
  ``<pool target>/<volume name>``) and builds paths from a name before it
  has validated it: a domain named ``..`` made libvirt's cleanup unlink
  ``snapshot/../*.xml``, every domain's definition.  So a name is refused
  unless it is a plain file name: not empty, not ``.`` or ``..``, no
  ``/``, no control or format characters, no surrounding blanks, and at most
  :data:`MAX_NAME_BYTES` bytes in UTF-8 (with libvirt's suffixes it must
  still fit a file name).
* :func:`check_host_path` -- disk sources and storage pool directories must
  lie inside the storage this service may use: the target directories of
  the host's storage pools, plus ``[storage] allowed_paths`` of the
  configuration (:func:`configure_storage`).  Paths are normalised (``..``)
  and, where the host's files are this machine's, symbolic links resolved
  before the check, and the refusal reads the same whether or not the path
  exists, so that it tells a client nothing about files outside storage.

Errors are :class:`BadName` and :class:`PathNotAllowed` (both ValueError);
the callers turn them into their CIM_ERR_INVALID_PARAMETER with the
parameter's name.
"""

from __future__ import annotations

import os
import posixpath
import threading
import unicodedata
from typing import Any, Optional

from ..config import StorageConfig
from .errors import VirtError

__all__ = ["BadName", "PathNotAllowed", "MAX_NAME_BYTES", "check_name", "show",
           "configure_storage", "storage_config", "allowed_roots", "check_host_path",
           "normalise_path"]

#: The longest name accepted, in bytes of UTF-8 (file names have at most 255).
MAX_NAME_BYTES = 200

#: Unicode categories refused in names: controls, format characters (invisible,
#: direction overrides), surrogates, line and paragraph separators.
_BAD_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


class BadName(VirtError, ValueError):
    """A name a client gave that cannot be used; the message names property and problem."""

    reason = "invalid-setting"


class PathNotAllowed(VirtError, ValueError):
    """A host path outside the storage this service may use."""

    reason = "invalid-setting"


def show(value: Any, limit: int = 60) -> str:
    """repr() of a client's value, shortened: error messages stay small whatever was sent."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(str(value))} characters)"


def check_name(value: Any, prop: str) -> str:
    """`value` if it can name a virtual system, pool, network or volume; else BadName."""
    if value is None or (isinstance(value, str) and value == ""):
        raise BadName(f"{prop} is empty: a name is required")
    if not isinstance(value, str):
        raise BadName(f"{prop} {show(value)} is not a string")
    if value in (".", ".."):
        raise BadName(f"{prop} {value!r} is not a name ('.' and '..' name directories)")
    if "/" in value:
        raise BadName(f"{prop} {show(value)} contains '/'")
    bad = next((c for c in value if unicodedata.category(c) in _BAD_CATEGORIES), None)
    if bad is not None:
        raise BadName(f"{prop} {show(value)} contains the control character "
                      f"U+{ord(bad):04X}")
    if value != value.strip():
        raise BadName(f"{prop} {show(value)} begins or ends with blanks")
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        raise BadName(f"{prop} {show(value)} is too long ({size} bytes in UTF-8, at most "
                      f"{MAX_NAME_BYTES})")
    return value


# -- host paths ----------------------------------------------------------------------------

_lock = threading.Lock()
_storage: Optional[StorageConfig] = None


def configure_storage(cfg: Optional[StorageConfig]) -> None:
    """Install the ``[storage]`` settings (the embedded server calls this at start; None:
    read the configuration file again on next use)."""
    global _storage
    with _lock:
        _storage = cfg


def storage_config() -> StorageConfig:
    """The ``[storage]`` settings: configured, else from the configuration file."""
    global _storage
    cfg = _storage
    if cfg is not None:
        return cfg
    from ..config import load_config
    with _lock:
        if _storage is None:
            _storage = load_config().storage
        return _storage


def normalise_path(path: str, local: bool) -> str:
    """`path` with '.', '..' and repeated '/' resolved; on a local host symbolic links too
    (libvirt would follow them)."""
    norm = posixpath.normpath(path)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    return os.path.realpath(norm) if local else norm


def _inside(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


def _local(host: Any) -> bool:
    """True if the host's files are this machine's (qemu:///system, qemu+unix://...): then
    symbolic links are resolved here as libvirtd will resolve them."""
    return bool(host.files_local)


def allowed_roots(host: Any, local: bool, pools: bool = True) -> list[str]:
    """The directories host paths may lie in, normalised like the paths checked against
    them: ``[storage] allowed_paths``, and with `pools` the target directories of the
    host's storage pools (not device directories such as /dev or /dev/mapper: a disk
    from those must be a volume of the pool)."""
    from .query import request_memo, storage_pools

    def compute() -> list[str]:
        roots = list(storage_config().allowed_paths)
        if pools:
            roots += [t for _n, t, _o in storage_pools(host)
                      if t and t.startswith("/") and not _inside(posixpath.normpath(t), "/dev")]
        return sorted({normalise_path(r, local) for r in roots})
    # once per request (every disk of every domain may be checked); dropped with the
    # host's other memos when a pool changes
    return request_memo(("virt.allowed_roots", host.label, host.generation, local, pools), compute)


#: libvirt's answers meaning "no volume has this path".
_NOT_A_VOLUME = {50, 49, 8}   # VIR_ERR_NO_STORAGE_VOL, VIR_ERR_NO_STORAGE_POOL, INVALID_ARG


def _is_volume(host: Any, path: str) -> bool:
    """True if `path` is a volume of one of the host's storage pools."""
    import libvirt
    try:
        host.conn().storageVolLookupByPath(path)
        return True
    except libvirt.libvirtError as exc:
        if exc.get_error_code() in _NOT_A_VOLUME:
            return False
        # the host failing is no answer: the request fails, nothing is allowed by default
        raise host.translate(exc, "looking up a storage volume") from None


def check_host_path(host: Any, path: Any, prop: str, pools: bool = True,
                    volumes: bool = True) -> str:
    """`path` normalised ('..', '.', '//' resolved; symbolic links kept, as libvirt will
    see them) if it lies inside allowed storage, else PathNotAllowed.

    Allowed: inside ``[storage] allowed_paths``; with `pools` also inside a
    storage pool's directory, or (with `volumes`) a volume of a storage pool.
    On hosts whose files are this machine's, symbolic links are resolved for the check
    (a link in a pool to /etc/shadow is refused).  The refusal is the same
    whether or not the path exists, and names only what the client sent.
    """
    if not isinstance(path, str) or not path.startswith("/") or "\x00" in path:
        raise PathNotAllowed(f"{prop} {show(path)} is not an absolute path")
    local = _local(host)
    lexical = normalise_path(path, False)
    resolved = normalise_path(path, local)
    if any(_inside(resolved, r) for r in allowed_roots(host, local, pools)):
        return lexical
    if pools and volumes and _is_volume(host, lexical) and \
            (resolved == lexical or _is_volume(host, resolved)):
        return lexical
    where = "storage pools and " if pools else ""
    raise PathNotAllowed(f"{prop} {show(path)} is not inside the storage this service may "
                         f"use ({where}[storage] allowed_paths)")
