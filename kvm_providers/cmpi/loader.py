"""cmpi-bindings' SWIG module ``cmpi`` inside a CIM server: finding it, importing it, pinning it.

cmpi-bindings' ``libpy3CmpiProvider.so`` holds both the CMPI provider code and
the SWIG wrappers of the module ``cmpi`` (``PyInit__cmpi``).  What this
module deals with (see docs/cmpi.md, "Inside a CIM server"):

* **Which ``_cmpi``.**  ``cmpi.py`` imports ``_cmpi``.  Only the very library
  the CIM server loaded works as ``_cmpi``: SWIG's type table lives in that
  library, and the server's copy is initialised only when *its*
  ``PyInit__cmpi`` runs.  A copy of the file (or a separately built
  ``_cmpi.so``) initialises its own table, and everything the server wraps
  stays a bare ``SwigPyObject``.  Python 3 builds of cmpi-bindings install no
  ``_cmpi`` at all.  :func:`import_cmpi` therefore finds the loaded library
  that exports ``PyInit__cmpi`` in ``/proc/self/maps`` and loads it as
  ``_cmpi`` from that path (``dlopen`` of an already loaded file returns the
  same handle), before ``import cmpi``.
* **When.**  cmpi-bindings wraps the broker and context it passes to
  ``get_cmpi_proxy_provider`` right after importing ``cmpi_pywbem_bindings``.
  Objects wrapped before ``cmpi`` was imported are bare ``SwigPyObject``\\ s:
  ``cmpi_pywbem_bindings`` imports ``cmpi`` at its own import, and
  :func:`rewrap` turns a bare object that arrives anyway into its proxy.
* **Failures.**  A failed import is reported with its real cause on stderr,
  in syslog and, once a broker is known, in the CIM server's log through the
  broker's ``logMessage`` (called through ctypes: without ``cmpi`` the broker
  has no Python methods).  cmpi-bindings itself would only say "can't import
  StringIO".
* **Unloading.**  cmpi-bindings' ``TargetCleanup`` calls ``Py_Finalize``
  after ``PyEval_AcquireLock`` without a thread state when its count of MIs
  drops to zero, which aborts the process under Python 3.11.
  :func:`pin_interpreter` creates one MI through the library's own factory
  ``_Generic_Create_InstanceMI`` that no server knows of, so the count never
  drops to zero.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.machinery
import importlib.util
import mmap
import os
import sys
import syslog
import threading
import traceback
from typing import Any, Callable, Optional

__all__ = ["import_cmpi", "find_cmpi_extension", "mapped_libraries", "rewrap", "is_bare",
           "report", "last_error", "pin_interpreter", "PIN_MINAME", "CmpiImportError"]

#: The symbol only the library that carries cmpi-bindings' SWIG wrappers exports.
PYINIT = b"PyInit__cmpi"
#: The MI name of the MI that keeps cmpi-bindings' interpreter from being finalised.
PIN_MINAME = "kvm_providers_interpreter_pin"
#: Files larger than this are not searched for PYINIT.
_MAX_SCAN = 256 * 1024 * 1024

_lock = threading.RLock()
_error: list[Optional[str]] = [None]      # the text of the last failed import
_pinned: list[Optional[bool]] = [None]  # None: not tried yet


class CmpiImportError(ImportError):
    """``cmpi`` cannot be imported; the message says why (with the traceback)."""


# -- finding the library ----------------------------------------------------------


def mapped_libraries(maps: str = "/proc/self/maps") -> list[str]:
    """The shared objects mapped into this process, in the order of ``maps``."""
    out: list[str] = []
    seen: set[str] = set()
    try:
        with open(maps, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.rstrip("\n").split(None, 5)
                if len(parts) < 6:
                    continue
                path = parts[5]
                if not path.startswith("/") or path.endswith(" (deleted)") or path in seen:
                    continue
                seen.add(path)
                if ".so" in os.path.basename(path):
                    out.append(path)
    except OSError:
        return []
    return out


def _exports_pyinit(path: str) -> bool:
    """Whether `path` holds the name ``PyInit__cmpi`` (its dynamic symbol table does)."""
    try:
        if os.path.getsize(path) > _MAX_SCAN:
            return False
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return mm.find(PYINIT + b"\0") >= 0
    except (OSError, ValueError):
        return False


def find_cmpi_extension(maps: str = "/proc/self/maps") -> Optional[str]:
    """The loaded library that carries ``PyInit__cmpi`` (libpy3CmpiProvider.so), or None.

    Libraries named like cmpi-bindings' (``*CmpiProvider*``, ``_cmpi*``) are
    looked at first; the others only if none of those has the symbol.
    """
    libs = mapped_libraries(maps)

    def likely(path: str) -> bool:
        base = os.path.basename(path).lower()
        return "cmpiprovider" in base or base.startswith("_cmpi")

    for path in [p for p in libs if likely(p)] + [p for p in libs if not likely(p)]:
        if _exports_pyinit(path):
            return path
    return None


def _load_extension(name: str, path: str):
    """Import the extension module `name` from `path` (same file: same dlopen handle)."""
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader, origin=path)
    if spec is None:  # pragma: no cover (spec_from_loader always gives one here)
        raise ImportError(f"no module spec for {name} from {path}")
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules[name] = module
    return module


# -- importing cmpi -------------------------------------------------------------------


def import_cmpi(maps: str = "/proc/self/maps"):
    """cmpi-bindings' module ``cmpi``, with ``_cmpi`` taken from the loaded library.

    Raises :class:`CmpiImportError` (reported on stderr and in syslog) if it
    cannot be imported; a later call tries again.
    """
    module = sys.modules.get("cmpi")
    if module is not None:
        return module
    with _lock:
        module = sys.modules.get("cmpi")
        if module is not None:
            return module
        where = None
        try:
            loaded = sys.modules.get("_cmpi")
            if loaded is None:
                where = find_cmpi_extension(maps)
                if where is not None:
                    _load_extension("_cmpi", where)
            else:                   # from an earlier attempt (then cmpi.py failed)
                where = getattr(loaded, "__file__", None)
            module = importlib.import_module("cmpi")
        except Exception as exc:  # pylint: disable=broad-except
            origin = f"_cmpi from {where}" if where else \
                "no loaded library exports PyInit__cmpi; _cmpi from sys.path"
            text = (f"cannot import cmpi-bindings' module cmpi ({origin}): "
                    f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            _error[0] = text
            report(text)
            raise CmpiImportError(text) from exc
        _error[0] = None
        return module


def last_error() -> Optional[str]:
    """The text of the last failed :func:`import_cmpi`, or None."""
    return _error[0]


# -- bare SWIG objects ----------------------------------------------------------------


def is_bare(obj: Any) -> bool:
    """Whether `obj` is a bare ``SwigPyObject`` (wrapped before ``cmpi`` was imported)."""
    return type(obj).__name__ == "SwigPyObject"


def rewrap(obj: Any, cls: Any) -> Any:
    """`obj` as an instance of the SWIG proxy class `cls` (``cmpi.CMPIBroker`` ...).

    A proxy is an object whose ``this`` is the ``SwigPyObject`` (that is what
    SWIG's ``SWIG_Python_NewShadowInstance`` makes); the SWIG wrappers take the
    pointer from ``this``.  Anything that is not a bare SwigPyObject is
    returned unchanged.
    """
    if obj is None or isinstance(obj, cls) or not is_bare(obj):
        return obj
    proxy = cls.__new__(cls)
    proxy.this = obj
    return proxy


def pointer_of(obj: Any) -> Optional[int]:
    """The C pointer of a SWIG object (proxy or bare), or None."""
    this = obj if is_bare(obj) else getattr(obj, "this", None)
    if this is None:
        return None
    try:
        return int(this)
    except (TypeError, ValueError):
        return None


# -- reporting --------------------------------------------------------------------------


class _CMPIStatus(ctypes.Structure):
    _fields_ = [("rc", ctypes.c_int), ("msg", ctypes.c_void_p)]


class _CMPIBrokerEncFT(ctypes.Structure):
    # cmpift.h, struct _CMPIBrokerEncFT, up to logMessage (CMPI 1.0 and later).
    _fields_ = [("ftVersion", ctypes.c_int)] + [
        (name, ctypes.c_void_p) for name in (
            "newInstance", "newObjectPath", "newArgs", "newString", "newArray",
            "newDateTime", "newDateTimeFromBinary", "newDateTimeFromChars",
            "newSelectExp", "classPathIsA", "toString", "isOfType", "getType",
            "getMessage", "logMessage")]


class _CMPIBroker(ctypes.Structure):
    _fields_ = [("hdl", ctypes.c_void_p), ("bft", ctypes.c_void_p),
                ("eft", ctypes.POINTER(_CMPIBrokerEncFT)), ("xft", ctypes.c_void_p)]


_LOG_MESSAGE = ctypes.CFUNCTYPE(_CMPIStatus, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p,
                                ctypes.c_char_p, ctypes.c_void_p)


def _ctypes_log(ptr: int, severity: int, msg_id: str, text: str) -> bool:
    """CMLogMessage(broker, severity, id, text, NULL) on a CMPIBroker pointer."""
    broker = _CMPIBroker.from_address(ptr)
    if not broker.eft:
        return False
    eft = broker.eft.contents
    if eft.ftVersion < 100 or not eft.logMessage:
        return False
    status = _LOG_MESSAGE(eft.logMessage)(ptr, severity, msg_id.encode("utf-8", "replace"),
                                          text.encode("utf-8", "replace"), None)
    return status.rc == 0


#: How a message reaches the server's log without ``cmpi`` (the tests' fake replaces it).
raw_broker_log: Callable[[int, int, str, str], bool] = _ctypes_log


def report(text: str, broker: Any = None, msg_id: str = "kvm_providers") -> bool:
    """Report a failure of the adapter itself: stderr, syslog and the server's log.

    `broker` is a CMPIBroker (proxy or bare) or None.  Returns whether the
    server's log took the message (sfcb's does not: it has no CMLogMessage).
    """
    try:
        sys.stderr.write(f"{msg_id}: {text}\n")
        sys.stderr.flush()
    except Exception:  # pylint: disable=broad-except
        pass
    try:
        for line in text.splitlines()[:40]:
            syslog.syslog(syslog.LOG_DAEMON | syslog.LOG_ERR, f"{msg_id}: {line}")
    except Exception:  # pylint: disable=broad-except
        pass
    if broker is None:
        return False
    ptr = pointer_of(broker)
    if not ptr:
        return False
    try:
        return bool(raw_broker_log(ptr, 1, msg_id, text))   # CMPI_SEV_ERROR
    except Exception:  # pylint: disable=broad-except
        return False


# -- keeping the interpreter -------------------------------------------------------------


def _ctypes_create_mi(broker_ptr: int, ctx_ptr: Optional[int], miname: str) -> bool:
    """Call the library's ``_Generic_Create_InstanceMI(broker, ctx, miname, &status)``."""
    module = sys.modules.get("_cmpi")
    path = getattr(module, "__file__", None) or find_cmpi_extension()
    if not path:
        return False
    lib = ctypes.CDLL(path)              # the loaded library: same handle, same statics
    try:
        func = lib._Generic_Create_InstanceMI  # pylint: disable=protected-access
    except AttributeError:
        return False
    func.restype = ctypes.c_void_p
    func.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p,
                     ctypes.POINTER(_CMPIStatus)]
    status = _CMPIStatus()
    mi = func(broker_ptr, ctx_ptr, miname.encode(), ctypes.byref(status))
    return bool(mi)


#: How the pin MI is created (the tests' model of cmpi-bindings replaces it).
create_instance_mi: Callable[[int, Optional[int], str], bool] = _ctypes_create_mi


def pin_interpreter(broker: Any, ctx: Any) -> bool:
    """Create the one MI that keeps cmpi-bindings' MI count above zero (once per process).

    Must be called from a provider call (never while cmpi-bindings imports
    ``cmpi_pywbem_bindings``: it holds its init mutex then).  Returns whether
    the interpreter is pinned.
    """
    with _lock:
        if _pinned[0] is not None:
            return bool(_pinned[0])
        _pinned[0] = True          # also while the nested creation calls back in
    ok = False
    why = ""
    try:
        bptr = pointer_of(broker)
        if bptr:
            ok = bool(create_instance_mi(bptr, pointer_of(ctx), PIN_MINAME))
        else:
            why = "the broker is not a SWIG object"
    except Exception as exc:  # pylint: disable=broad-except
        why = f"{type(exc).__name__}: {exc}"
    if not ok:
        _pinned[0] = False         # tried once; said why once
        report("cannot keep cmpi-bindings' interpreter loaded"
               + (f" ({why})" if why else " (no _Generic_Create_InstanceMI)")
               + ": the last unload of the providers will abort this process "
               "(cmpi-bindings' TargetCleanup finalises Python without the GIL)", broker)
    return ok


def reset() -> None:
    """Forget the pin and the last error (tests)."""
    with _lock:
        _pinned[0] = None
        _error[0] = None
