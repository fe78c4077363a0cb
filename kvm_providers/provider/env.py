"""What a host gives a provider: the environment, its logger and the CIMOM handle.

The names and signatures follow cmpi-bindings' Python API (``env.get_logger()``,
``env.get_cimom_handle()``, ``BrokerCIMOMHandle``), so that providers written
for it read the same here.  Each host subclasses :class:`CIMOMHandle` and
:class:`ProviderEnvironment`: the embedded server calls its own dispatcher, the
CMPI adapter calls the CMPI broker.
"""

from __future__ import annotations

import abc
import logging
import traceback
from typing import Any, Iterator, Optional

import pywbem
from pywbem import CIMInstance, CIMInstanceName

from ..virt import errors as virt_errors
from ..virt.scope import current_scope, request_scope

__all__ = ["ProviderLogger", "CIMOMHandle", "ProviderEnvironment", "request_scope",
           "current_scope", "to_cim_error", "cim_error", "VIRT_ERROR_STATUS"]


class ProviderLogger:
    """The logger a provider gets from ``env.get_logger()``.

    Offers both the cmpi-bindings names (``log_debug``, ``log_warn``,
    ``trace_verbose`` ...) and the :mod:`logging` ones.  Hosts route it: the
    embedded server to Python logging, the CMPI adapter to the CIM server's
    log and trace facility.
    """

    def __init__(self, logger: logging.Logger):
        self._log = logger

    @property
    def logger(self) -> logging.Logger:
        return self._log

    # cmpi-bindings names
    def log_debug(self, msg: str) -> None:
        self._log.debug("%s", msg)

    def log_info(self, msg: str) -> None:
        self._log.info("%s", msg)

    def log_warn(self, msg: str) -> None:
        self._log.warning("%s", msg)

    def log_error(self, msg: str) -> None:
        self._log.error("%s", msg)

    def log_critical(self, msg: str) -> None:
        self._log.critical("%s", msg)

    def trace_verbose(self, component: str, msg: str) -> None:
        self._log.debug("[%s] %s", component, msg)

    def trace_info(self, component: str, msg: str) -> None:
        self._log.info("[%s] %s", component, msg)

    def trace_warn(self, component: str, msg: str) -> None:
        self._log.warning("[%s] %s", component, msg)

    def trace_critical(self, component: str, msg: str) -> None:
        self._log.critical("[%s] %s", component, msg)

    # logging names
    def debug(self, msg: str, *args: Any) -> None:
        self._log.debug(msg, *args)

    def info(self, msg: str, *args: Any) -> None:
        self._log.info(msg, *args)

    def warning(self, msg: str, *args: Any) -> None:
        self._log.warning(msg, *args)

    def error(self, msg: str, *args: Any) -> None:
        self._log.error(msg, *args)

    def exception(self, msg: str, *args: Any) -> None:
        self._log.exception(msg, *args)

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's name)
        return self._log.isEnabledFor(level)


class CIMOMHandle(abc.ABC):
    """Up-calls into the CIM server, from inside a provider.

    Signatures follow cmpi-bindings' ``BrokerCIMOMHandle``.  Results of
    enumerations are iterables.  Errors are raised as ``pywbem.CIMError``.
    """

    @abc.abstractmethod
    def EnumerateInstanceNames(self, ns: str, cn: str) -> Iterator[CIMInstanceName]:
        """Instance paths of class `cn` (and subclasses) in namespace `ns`."""

    @abc.abstractmethod
    def EnumerateInstances(self, ns: str, cn: str,
                           props: Optional[list[str]] = None) -> Iterator[CIMInstance]:
        """Instances (with paths) of class `cn` (and subclasses) in `ns`."""

    @abc.abstractmethod
    def GetInstance(self, path: CIMInstanceName,
                    props: Optional[list[str]] = None) -> CIMInstance:
        """The instance at `path`."""

    @abc.abstractmethod
    def Associators(self, path: CIMInstanceName, assocClass: Optional[str] = None,
                    resultClass: Optional[str] = None, role: Optional[str] = None,
                    resultRole: Optional[str] = None,
                    props: Optional[list[str]] = None) -> Iterator[CIMInstance]:
        """Instances associated with `path`."""

    @abc.abstractmethod
    def AssociatorNames(self, path: CIMInstanceName, assocClass: Optional[str] = None,
                        resultClass: Optional[str] = None, role: Optional[str] = None,
                        resultRole: Optional[str] = None) -> Iterator[CIMInstanceName]:
        """Paths of the instances associated with `path`."""

    @abc.abstractmethod
    def References(self, path: CIMInstanceName, resultClass: Optional[str] = None,
                   role: Optional[str] = None,
                   props: Optional[list[str]] = None) -> Iterator[CIMInstance]:
        """Association instances that refer to `path`."""

    @abc.abstractmethod
    def ReferenceNames(self, path: CIMInstanceName, resultClass: Optional[str] = None,
                       role: Optional[str] = None) -> Iterator[CIMInstanceName]:
        """Paths of the association instances that refer to `path`."""

    @abc.abstractmethod
    def InvokeMethod(self, path: CIMInstanceName | str, method: str,
                     **params: Any) -> tuple[Any, dict[str, Any]]:
        """Invoke `method` on `path`; returns (return value, {out param: value})."""

    @abc.abstractmethod
    def CreateInstance(self, instance: CIMInstance) -> CIMInstanceName:
        """Create `instance` (its path gives the namespace); returns its path."""

    @abc.abstractmethod
    def ModifyInstance(self, instance: CIMInstance,
                       props: Optional[list[str]] = None) -> None:
        """Modify the instance at ``instance.path``."""

    @abc.abstractmethod
    def DeleteInstance(self, path: CIMInstanceName) -> None:
        """Delete the instance at `path`."""

    @abc.abstractmethod
    def DeliverIndication(self, ns: str, instance: CIMInstance) -> None:
        """Hand an indication to the server, which delivers it to the subscribers."""

    @abc.abstractmethod
    def is_subclass(self, ns: str, super: str, sub: str) -> bool:  # noqa: A002
        """True if class `sub` is `super` or derives from it."""

    # Thread attachment (CMPI needs it for threads the provider starts itself;
    # the embedded server does not, so these default to no-ops).
    def PrepareAttachThread(self) -> "CIMOMHandle":
        """Call in the provider's thread before starting a new thread."""
        return self

    def AttachThread(self) -> None:  # noqa: B027 - a no-op by design, not abstract
        """Call first thing in a thread that the provider started."""

    def DetachThread(self) -> None:  # noqa: B027 - a no-op by design, not abstract
        """Call last thing in a thread that the provider started."""


class ProviderEnvironment:
    """The ``env`` argument of every provider call."""

    def __init__(self, logger: ProviderLogger, handle: Optional[CIMOMHandle] = None,
                 user: Optional[str] = None, context: Optional[dict[str, Any]] = None):
        self._logger = logger
        self._handle = handle
        self._user = user
        self._context = dict(context or {})

    def get_logger(self) -> ProviderLogger:
        """The logger to use for this call."""
        return self._logger

    def get_cimom_handle(self) -> CIMOMHandle:
        """The up-call handle; raises CIM_ERR_FAILED if the host has none."""
        if self._handle is None:
            raise pywbem.CIMError(pywbem.CIM_ERR_FAILED, "This host offers no CIMOM handle")
        return self._handle

    def get_user_name(self) -> Optional[str]:
        """The authenticated user of the request, if the host knows it."""
        return self._user

    def get_context_value(self, key: str, default: Any = None) -> Any:
        """A value of the invocation context (e.g. 'CMPIPrincipal')."""
        return self._context.get(key, default)

    def set_context_value(self, key: str, value: Any) -> None:
        self._context[key] = value


# -- request scope ------------------------------------------------------------
# A host opens a scope around each operation it serves.  The libvirt layer keeps
# per-request memos in it (kvm_providers.virt.scope, where it lives: the layer is
# what uses it), e.g. the parsed XML of a domain, so that one request fetches
# each domain once however many providers and up-calls it goes through.
# request_scope and current_scope are that module's functions.


# -- errors -------------------------------------------------------------------
# The one place where the libvirt layer's errors (kvm_providers.virt.errors, no
# CIM in them) become CIM errors: the provider proxy translates whatever a
# provider call raises through cim_error(), and to_cim_error() (every host's
# last resort) does too, so every client sees the same status codes and texts.

#: CIM status code of each `reason` of the libvirt layer's errors.  A reason not listed
#: takes the status of the nearest error class whose own reason is listed (a subclass of
#: NotFound with a reason of its own is still NOT_FOUND); the rest (conflict - in use -,
#: host-unavailable - the description names the host -, libvirt-failed, failed) is
#: CIM_ERR_FAILED.
VIRT_ERROR_STATUS: dict[str, int] = {
    "not-found": pywbem.CIM_ERR_NOT_FOUND,
    "no-domain": pywbem.CIM_ERR_NOT_FOUND,
    "invalid-setting": pywbem.CIM_ERR_INVALID_PARAMETER,
    "already-exists": pywbem.CIM_ERR_ALREADY_EXISTS,
    "not-supported": pywbem.CIM_ERR_NOT_SUPPORTED,
}


def cim_error(exc: BaseException) -> Optional[pywbem.CIMError]:
    """The CIMError a client gets for `exc`: itself for a CIMError, the translation of a
    libvirt layer error (status by its `reason`, its text as the description), else None."""
    if isinstance(exc, pywbem.CIMError):
        return exc
    if isinstance(exc, virt_errors.VirtError):
        status = VIRT_ERROR_STATUS.get(exc.reason)
        if status is None:
            status = next((VIRT_ERROR_STATUS[r] for r in
                           (c.__dict__.get("reason") for c in type(exc).__mro__)
                           if r in VIRT_ERROR_STATUS), pywbem.CIM_ERR_FAILED)
        err = pywbem.CIMError(status, str(exc))
        err.__cause__ = exc
        return err
    return None


def to_cim_error(exc: BaseException, logger: Optional[logging.Logger] = None,
                 what: str = "provider") -> pywbem.CIMError:
    """Turn any exception from a provider into a CIMError.

    CIMErrors pass through, the libvirt layer's errors are translated
    (:func:`cim_error`).  Anything else is a provider fault: the traceback
    goes to the log and the client gets CIM_ERR_FAILED naming the exception.
    """
    err = cim_error(exc)
    if err is not None:
        return err
    log = logger or logging.getLogger("kvm_providers")
    log.error("%s raised %s: %s\n%s", what, type(exc).__name__, exc,
              "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    return pywbem.CIMError(pywbem.CIM_ERR_FAILED,
                           f"Internal error in {what}: {type(exc).__name__}: {exc}")
