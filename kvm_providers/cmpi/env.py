"""The broker, as providers see it through ``env`` inside sfcb and Pegasus.

* :class:`CMPIEnvironment` is the ``env`` of every call: its logger writes to
  the CIM server's log and trace facility, its CIMOM handle makes up-calls
  through the CMPI broker, its context values are the CMPI context's entries.
* :class:`CMPICIMOMHandle` implements :class:`kvm_providers.provider.CIMOMHandle`
  over ``CMPIBroker``: enumerations, GetInstance, associations, InvokeMethod,
  Create/Modify/DeleteInstance, DeliverIndication and the thread attachment
  calls a provider needs for threads it starts itself (PrepareAttachThread in
  the calling thread, AttachThread first and DetachThread last in the new one).
* :class:`CMPILogHandler` routes Python logging (the ``kvm_providers`` logger
  tree, which includes provider tracebacks) to ``CMLogMessage``.
"""

from __future__ import annotations

import logging
import syslog
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

import pywbem
from pywbem import CIMClassName, CIMInstance, CIMInstanceName

from ..provider import CIMOMHandle, ProviderEnvironment, ProviderLogger
from .convert import Converter, cim_error_from_cmpi, plist_bytes
from .sharing import released

__all__ = ["CMPIEnvironment", "CMPICIMOMHandle", "CMPILogger", "CMPILogHandler",
           "install_log_handler"]

_SYSLOG_PRI = {logging.ERROR: syslog.LOG_ERR, logging.WARNING: syslog.LOG_WARNING,
               logging.INFO: syslog.LOG_INFO, logging.DEBUG: syslog.LOG_DEBUG}


def _severity(cmpi, level: int) -> int:
    if level >= logging.ERROR:
        return cmpi.CMPI_SEV_ERROR
    if level >= logging.WARNING:
        return cmpi.CMPI_SEV_WARNING
    if level >= logging.INFO:
        return cmpi.CMPI_SEV_INFO
    return cmpi.CMPI_DEV_DEBUG


def _syslog(ident: str, level: int, msg: str) -> None:
    pri = _SYSLOG_PRI.get(level - level % 10 if level < 50 else logging.ERROR, syslog.LOG_ERR)
    try:
        syslog.syslog(syslog.LOG_DAEMON | pri, f"{ident}: {msg}")
    except Exception:  # pylint: disable=broad-except
        pass



def _no_local_provider(namespace: Optional[str], classname: str) -> Any:
    return None


#: Finds the MI of this process that serves a class (the adapter registers it, see
#: set_local_provider_lookup; the handle does not import the adapter, which imports it).
_local_provider: Callable[[Optional[str], str], Any] = _no_local_provider


def set_local_provider_lookup(func: Callable[[Optional[str], str], Any]) -> None:
    """Register the adapter's lookup of in-process MIs (adapter.local_provider)."""
    global _local_provider
    _local_provider = func

class CMPILogHandler(logging.Handler):
    """A logging handler that writes to the CIM server's log (CMLogMessage).

    Falls back to syslog when the broker refuses (e.g. CMPI_RC_ERR_NOT_SUPPORTED).
    The broker may be replaced (:meth:`set_broker`) when the CIM server hands
    the provider a new one.
    """

    def __init__(self, cmpi, broker, ident: str = "kvm_providers"):
        super().__init__()
        self.cmpi = cmpi
        self.broker = broker
        self.ident = ident

    def set_broker(self, cmpi, broker) -> None:
        self.cmpi, self.broker = cmpi, broker

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
        except Exception:  # pylint: disable=broad-except
            msg = str(record.msg)
        try:
            self.broker.LogMessage(_severity(self.cmpi, record.levelno), record.name, msg)
        except Exception:  # pylint: disable=broad-except
            _syslog(self.ident, record.levelno, f"{record.name}: {msg}")


_HANDLER: Optional[CMPILogHandler] = None


def install_log_handler(cmpi, broker, level: int = logging.INFO) -> CMPILogHandler:
    """Route the ``kvm_providers`` logger tree to the CIM server (once per process)."""
    global _HANDLER  # pylint: disable=global-statement
    if _HANDLER is None:
        _HANDLER = CMPILogHandler(cmpi, broker)
        _HANDLER.setFormatter(logging.Formatter("%(message)s"))
        root = logging.getLogger("kvm_providers")
        root.addHandler(_HANDLER)
        if root.level == logging.NOTSET or root.level > level:
            root.setLevel(level)
    else:
        _HANDLER.set_broker(cmpi, broker)
    return _HANDLER


class CMPILogger(ProviderLogger):
    """``env.get_logger()`` inside a CIM server.

    ``log_*`` (and the :mod:`logging` names) go to the server's log through
    ``CMLogMessage`` with the MI name as message id, ``trace_*`` to its trace
    facility through ``CMTraceMessage`` (cmpi-bindings falls back to the log
    where the server has no tracing).
    """

    def __init__(self, cmpi, broker, miname: str, logger: logging.Logger):
        super().__init__(logger)
        self.cmpi = cmpi
        self.broker = broker
        self.miname = miname

    def _emit(self, level: int, msg: str) -> None:
        try:
            self.broker.LogMessage(_severity(self.cmpi, level), self.miname, str(msg))
        except Exception:  # pylint: disable=broad-except
            _syslog(self.miname, level, str(msg))

    def _emit_trace(self, level: int, component: str, msg: str) -> None:
        try:
            self.broker.TraceMessage(level, component, str(msg))
        except Exception:  # pylint: disable=broad-except
            self._emit(logging.DEBUG, f"{component}: {msg}")

    def log_debug(self, msg: str) -> None:
        self._emit(logging.DEBUG, msg)

    def log_info(self, msg: str) -> None:
        self._emit(logging.INFO, msg)

    def log_warn(self, msg: str) -> None:
        self._emit(logging.WARNING, msg)

    def log_error(self, msg: str) -> None:
        self._emit(logging.ERROR, msg)

    def log_critical(self, msg: str) -> None:
        self._emit(logging.CRITICAL, msg)

    def trace_verbose(self, component: str, msg: str) -> None:
        self._emit_trace(self.cmpi.CMPI_LEV_VERBOSE, component, msg)

    def trace_info(self, component: str, msg: str) -> None:
        self._emit_trace(self.cmpi.CMPI_LEV_INFO, component, msg)

    def trace_warn(self, component: str, msg: str) -> None:
        self._emit_trace(self.cmpi.CMPI_LEV_WARNING, component, msg)

    def trace_critical(self, component: str, msg: str) -> None:
        self._emit_trace(self.cmpi.CMPI_LEV_WARNING, component, msg)

    def debug(self, msg: str, *args: Any) -> None:
        self._emit(logging.DEBUG, msg % args if args else msg)

    def info(self, msg: str, *args: Any) -> None:
        self._emit(logging.INFO, msg % args if args else msg)

    def warning(self, msg: str, *args: Any) -> None:
        self._emit(logging.WARNING, msg % args if args else msg)

    def error(self, msg: str, *args: Any) -> None:
        self._emit(logging.ERROR, msg % args if args else msg)

    def exception(self, msg: str, *args: Any) -> None:
        import traceback
        text = msg % args if args else msg
        self._emit(logging.ERROR, f"{text}\n{traceback.format_exc()}")


#: The broker's read up-calls -> the CMPI operation the server serves them with.
_UPCALLS = {"enumInstanceNames": "EnumerateInstanceNames", "enumInstances": "EnumerateInstances",
            "getInstance": "GetInstance", "associators": "Associators",
            "associatorNames": "AssociatorNames", "references": "References",
            "referenceNames": "ReferenceNames"}


class CMPICIMOMHandle(CIMOMHandle):
    """Up-calls through the CMPI broker, for one CMPI context.

    A handle is bound to the context of the call that made it; a thread the
    provider starts gets its own through :meth:`PrepareAttachThread`.
    """

    def __init__(self, cmpi, broker, ctx):
        self.cmpi = cmpi
        self.broker = broker
        self.ctx = ctx

    # -- plumbing -------------------------------------------------------------

    @contextmanager
    def _conv(self) -> Iterator[Converter]:
        """A converter for one up-call, released (with what it keeps) afterwards."""
        conv = Converter(self.cmpi, self.broker)
        try:
            yield conv
        finally:
            conv.release()

    def _call(self, func: Callable, *args: Any) -> Any:
        try:
            # The server may serve an up-call with another call of this request;
            # a read up-call's CMPI call then joins the caller's request scope.
            with released(_UPCALLS.get(getattr(func, "__name__", ""))):
                return func(*args)
        except self.cmpi.CMPIException as exc:
            raise cim_error_from_cmpi(exc) from None

    def _call_plist(self, func: Callable, args: tuple, props) -> Any:
        """Call with a property list, as bytes (SWIG 4 + Python 3) or else as str."""
        try:
            return self._call(func, *args, plist_bytes(props))
        except TypeError:
            if props is None:
                raise
            return self._call(func, *args, [str(p) for p in props])

    def _drain(self, enum, conv: Converter, want_instance: bool) -> list:
        out = []
        while enum is not None and self._call(enum.hasNext):
            data = self._call(enum.next)
            if want_instance:
                inst = data.value.inst
                if inst is not None:
                    out.append(conv.to_instance(inst))
            else:
                ref = data.value.ref
                if ref is not None:
                    out.append(conv.to_path(ref))
        return out

    # -- instances ------------------------------------------------------------

    def EnumerateInstanceNames(self, ns: str, cn: str) -> Iterator[CIMInstanceName]:
        with self._conv() as conv:
            cop = self._call(self.broker.new_object_path, ns, cn)
            enum = self._call(self.broker.enumInstanceNames, self.ctx, cop)
            return iter(self._drain(enum, conv, False))

    def EnumerateInstances(self, ns: str, cn: str, props=None) -> Iterator[CIMInstance]:
        with self._conv() as conv:
            cop = self._call(self.broker.new_object_path, ns, cn)
            enum = self._call_plist(self.broker.enumInstances, (self.ctx, cop), props)
            return iter(self._drain(enum, conv, True))

    def GetInstance(self, path: CIMInstanceName, props=None) -> CIMInstance:
        # A class of a provider the server runs in this very process (e.g. the
        # devices an Associators request fetches, one up-call each): calling it
        # directly spares the round trip through the server and the conversion
        # of the instance to CMPI and back, and shares the caller's request scope.
        local = _local_provider(path.namespace, path.classname)
        if local is not None:
            return local.local_get_instance(self.ctx, path, props)
        with self._conv() as conv:
            cop = conv.keep(conv.object_path(path))
            cinst = self._call_plist(self.broker.getInstance, (self.ctx, cop), props)
            if cinst is None:
                raise pywbem.CIMError(pywbem.CIM_ERR_NOT_FOUND, f"Instance not found: {path}")
            inst = conv.to_instance(cinst)
            if inst.path is not None and inst.path.namespace is None:
                inst.path.namespace = path.namespace
            return inst

    @staticmethod
    def _instance_args(conv: Converter, instance: CIMInstance, op: str) -> tuple[Any, Any]:
        """CMPI (object path, instance) of `instance` for Create/ModifyInstance."""
        if instance.path is None or not instance.path.namespace:
            raise pywbem.CIMError(pywbem.CIM_ERR_INVALID_NAMESPACE,
                                  f"{op} needs an instance path with a namespace")
        return conv.keep(conv.object_path(instance.path)), conv.keep(conv.instance(instance))

    def CreateInstance(self, instance: CIMInstance) -> CIMInstanceName:
        with self._conv() as conv:
            cop, cinst = self._instance_args(conv, instance, "CreateInstance")
            cpath = self._call(self.broker.createInstance, self.ctx, cop, cinst)
            if cpath is None:
                return instance.path.copy()
            path = conv.to_path(cpath)
            if path.namespace is None:
                path.namespace = instance.path.namespace
            return path

    def ModifyInstance(self, instance: CIMInstance, props=None) -> None:
        with self._conv() as conv:
            cop, cinst = self._instance_args(conv, instance, "ModifyInstance")
            self._call_plist(self.broker.modifyInstance, (self.ctx, cop, cinst), props)

    def DeleteInstance(self, path: CIMInstanceName) -> None:
        with self._conv() as conv:
            cop = conv.keep(conv.object_path(path))
            self._call(self.broker.deleteInstance, self.ctx, cop)

    # -- associations -------------------------------------------------------

    def Associators(self, path, assocClass=None, resultClass=None, role=None,
                    resultRole=None, props=None) -> Iterator[CIMInstance]:
        with self._conv() as conv:
            cop = conv.keep(conv.object_path(path))
            enum = self._call_plist(self.broker.associators,
                                    (self.ctx, cop, assocClass, resultClass, role,
                                     resultRole), props)
            return iter(self._drain(enum, conv, True))

    def AssociatorNames(self, path, assocClass=None, resultClass=None, role=None,
                        resultRole=None) -> Iterator[CIMInstanceName]:
        with self._conv() as conv:
            cop = conv.keep(conv.object_path(path))
            enum = self._call(self.broker.associatorNames, self.ctx, cop, assocClass,
                              resultClass, role, resultRole)
            return iter(self._drain(enum, conv, False))

    def References(self, path, resultClass=None, role=None,
                   props=None) -> Iterator[CIMInstance]:
        with self._conv() as conv:
            cop = conv.keep(conv.object_path(path))
            enum = self._call_plist(self.broker.references,
                                    (self.ctx, cop, resultClass, role), props)
            return iter(self._drain(enum, conv, True))

    def ReferenceNames(self, path, resultClass=None, role=None) -> Iterator[CIMInstanceName]:
        with self._conv() as conv:
            cop = conv.keep(conv.object_path(path))
            enum = self._call(self.broker.referenceNames, self.ctx, cop, resultClass, role)
            return iter(self._drain(enum, conv, False))

    # -- methods ----------------------------------------------------------------

    def InvokeMethod(self, path, method: str, **params: Any) -> tuple[Any, dict[str, Any]]:
        if isinstance(path, str):
            raise pywbem.CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                                  "InvokeMethod needs a CIMInstanceName or CIMClassName")
        if not isinstance(path, (CIMInstanceName, CIMClassName)):
            raise pywbem.CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                                  f"InvokeMethod on {path!r}: not an object path")
        if not path.namespace:
            raise pywbem.CIMError(pywbem.CIM_ERR_INVALID_NAMESPACE,
                                  "InvokeMethod needs a path with a namespace")
        with self._conv() as conv:
            cop = conv.keep(conv.object_path(path))
            inargs = conv.keep(self._call(self.broker.new_args))
            conv.fill_args(inargs, params)
            outargs = conv.keep(self._call(self.broker.new_args))
            data = self._call(self.broker.invokeMethod, self.ctx, cop, method, inargs, outargs)
            rval, _t, _a = conv.from_data(data)
            return rval, conv.to_args(outargs)

    # -- indications and classes --------------------------------------------

    def DeliverIndication(self, ns: str, instance: CIMInstance) -> None:
        """Hand an indication to the CIM server.

        Both servers need the namespace on the indication's path. Pegasus
        refuses an indication without one; sfcb 1.3 (brokerUpc.c) asks the
        indication for its object path to match it against each active
        filter's FROM class, and an instance without keys -- every
        indication -- gets that path only when sfcb finds its class in the
        instance's namespace: with none the path is NULL and the provider
        process dies (SIGSEGV in CMClassPathIsA; the NULL namespace that
        cmpi-bindings' upstream adapter sends for sblim bug 2185410).
        """
        inst = instance.copy()
        if inst.path is None:
            inst.path = CIMInstanceName(inst.classname)
        inst.path.namespace = inst.path.namespace or ns
        with self._conv() as conv:
            cinst = conv.keep(conv.instance(inst))
            self._call(self.broker.deliverIndication, self.ctx, ns, cinst)

    def is_subclass(self, ns: str, super: str, sub: str) -> bool:  # noqa: A002
        with self._conv():
            cop = self._call(self.broker.new_object_path, ns, sub)
            return bool(self._call(self.broker.classPathIsA, cop, super))

    # -- threads ------------------------------------------------------------------

    def PrepareAttachThread(self) -> "CMPICIMOMHandle":
        """A handle for a new thread (call in the provider's own thread)."""
        new_ctx = self._call(self.broker.prepareAttachThread, self.ctx)
        return CMPICIMOMHandle(self.cmpi, self.broker, new_ctx)

    def AttachThread(self) -> None:
        self._call(self.broker.attachThread, self.ctx)

    def DetachThread(self) -> None:
        self._call(self.broker.detachThread, self.ctx)


class CMPIEnvironment(ProviderEnvironment):
    """``env`` inside sfcb or Pegasus: logger, CIMOM handle and context of one call."""

    def __init__(self, cmpi, broker, ctx, miname: str, logger: logging.Logger):
        handle = CMPICIMOMHandle(cmpi, broker, ctx) if ctx is not None else None
        super().__init__(CMPILogger(cmpi, broker, miname, logger), handle)
        self.cmpi = cmpi
        self.broker = broker
        self.ctx = ctx
        self.miname = miname

    def get_context_value(self, key: str, default: Any = None) -> Any:
        if key in self._context:
            return self._context[key]
        if self.ctx is None:
            return default
        conv = Converter(self.cmpi, self.broker)
        try:
            data = self.ctx.get_entry(key)
            value, _t, _a = conv.from_data(data)
            return default if value is None else value
        except Exception:  # pylint: disable=broad-except  (CMPIException: no such entry)
            return default
        finally:
            conv.release()

    def get_context(self) -> dict[str, Any]:
        """Every entry of the CMPI invocation context."""
        out: dict[str, Any] = {}
        if self.ctx is None:
            return out
        conv = Converter(self.cmpi, self.broker)
        try:
            for i in range(self.ctx.get_entry_count()):
                entry = self.ctx.get_entry_at(i)
                if entry is None:
                    continue
                name, data = entry
                out[name] = conv.from_data(data)[0]
        finally:
            conv.release()
        out.update(self._context)
        return out

    def get_user_name(self) -> Optional[str]:
        if self._user is None:
            user = self.get_context_value("CMPIPrincipal")
            self._user = user or None
        return self._user
