"""The CMPI side of the adapter: what cmpi-bindings' ``libpy3CmpiProvider.so`` calls.

cmpi-bindings (``src/cmpi_provider.c`` + ``src/target_python.c``) imports the
module ``cmpi_pywbem_bindings`` once per CIM server process and calls
``get_cmpi_proxy_provider(miname, broker, ctx)`` once per MI it creates
(instance, method, association, indication MI of one provider name).  It then
calls methods of the returned object by name, with SWIG proxies of the CMPI
objects, and expects from each a tuple ``(rc, message)``: ``rc`` an int (a
CMPI_RC code), ``message`` None or **bytes** (SWIG 4 maps ``PyString_AsString``
to ``PyBytes_AsString`` under Python 3: a ``str`` message would be dropped and
leave a Python error pending).  A Python exception escaping to cmpi-bindings
loses its text (its traceback formatter imports Python 2's ``StringIO``), so
nothing escapes: CIMErrors become their status and description, any other
exception CIM_ERR_FAILED via :func:`kvm_providers.provider.to_cim_error`, with
the traceback in the CIM server's log.

Calls and arguments, in cmpi-bindings' order::

    enum_instance_names(ctx, rslt, objname)
    enum_instances(ctx, rslt, objname, plist)
    get_instance(ctx, rslt, objname, plist)
    create_instance(ctx, rslt, objname, newinst)
    set_instance(ctx, rslt, objname, newinst, plist)
    delete_instance(ctx, rslt, objname)
    exec_query(ctx, rslt, objname, query, lang)
    associator_names(ctx, rslt, objname, assocClass, resultClass, role, resultRole)
    associators(ctx, rslt, objname, assocClass, resultClass, role, resultRole, plist)
    reference_names(ctx, rslt, objname, resultClass, role)
    references(ctx, rslt, objname, resultClass, role, plist)
    invoke_method(ctx, rslt, objname, method, inargs, outargs)
    authorize_filter(ctx, filter, className, classPath, owner)
    activate_filter(ctx, filter, className, classPath, firstActivation)
    deactivate_filter(ctx, filter, className, classPath, lastActivation)
    must_poll(ctx, filter, className, classPath)
    enable_indications(ctx)
    disable_indications(ctx)
    cleanup(ctx, terminating)

Provider modules are loaded with :class:`kvm_providers.provider.ProviderProxy`
and called through its ``MI_*`` entry points, exactly as the embedded server
does, each call inside :func:`kvm_providers.provider.request_scope`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from typing import Any, Callable, Optional

import pywbem
from pywbem import CIMInstance, CIMInstanceName

from ..provider import ProviderProxy, request_scope, to_cim_error
from ..provider._fastcim import iter_keybindings
from . import ahead, channel, direct, heap, loader, templates
from .convert import Converter, cim_error_from_cmpi
from .ahead import class_part as _class_part
from .direct import CMPIForm
from .env import CMPIEnvironment, install_log_handler, set_local_provider_lookup
from .sharing import Call, share

__all__ = ["CMPIProxyProvider", "FailedProvider", "get_cmpi_proxy_provider", "resolve_module",
           "local_provider", "PYCIM_DIR", "reset"]

LOG = logging.getLogger("kvm_providers.cmpi")

#: Where cmpi-bindings' provider modules live (one shim per registered provider name).
PYCIM_DIR = "/usr/lib/pycim"

# cmpidt.h codes the adapter needs even when ``cmpi`` cannot be imported.
_RC_FAILED = 1
_RC_NOT_SUPPORTED = 7
_RC_NEVER_UNLOAD = 51

_proxies: dict[str, "CMPIProxyProvider"] = {}
# Every object ever handed to cmpi-bindings stays referenced here: its
# TargetCleanup releases them without holding the GIL, and a release that
# frees the object aborts the process ("PyThreadState_Get: the function must
# be called with the GIL held").
_kept: list[Any] = []
_lock = threading.RLock()


def resolve_module(miname: str, pycim_dir: Optional[str] = None) -> str:
    """The provider module for a CMPI provider (MI) name, as ProviderProxy loads it.

    * an absolute path (``.py`` added if missing): that file;
    * ``<pycim_dir>/<miname>.py`` if it exists (our shims, or another pack's module);
    * a provider name from the registration table: its module;
    * otherwise `miname` as a dotted module name.
    """
    if miname.startswith("/"):
        return miname if miname.endswith(".py") else miname + ".py"
    pycim = os.path.join(pycim_dir or PYCIM_DIR, miname + ".py")
    if os.path.isfile(pycim):
        return pycim
    try:
        from ..registry import registrations
        for reg in registrations():
            if reg.provider_name == miname:
                return reg.module
    except Exception:  # pylint: disable=broad-except
        LOG.debug("registration table unavailable:\n%s", traceback.format_exc())
    return miname


def _cmpi_module():
    return loader.import_cmpi()


_routes_cache: Optional[dict[tuple[str, str], str]] = None


def _routes() -> dict[tuple[str, str], str]:
    """{(namespace, class), lower case: provider (MI) name} of the registration table."""
    global _routes_cache  # pylint: disable=global-statement
    if _routes_cache is None:
        routes: dict[tuple[str, str], str] = {}
        try:
            from ..registry import registrations
            for reg in registrations():
                for ns in reg.namespaces:
                    routes[(ns.lower(), reg.classname.lower())] = reg.provider_name
        except Exception:  # pylint: disable=broad-except
            LOG.debug("registration table unavailable:\n%s", traceback.format_exc())
        _routes_cache = routes
    return _routes_cache


def local_provider(namespace: Optional[str], classname: str) -> Optional["CMPIProxyProvider"]:
    """The MI of this process to which the CIM server routes `classname` in `namespace`.

    None unless the registration table names a provider for the class and
    the server has created that MI in this process already: then an up-call
    for the class would come back here through the server (sfcb runs the
    whole group, Pegasus the whole module, in one process), and the handle
    calls the MI directly instead (see CMPICIMOMHandle.GetInstance).
    """
    if not namespace:
        return None
    miname = _routes().get((namespace.strip("/").lower(), classname.lower()))
    if miname is None:
        return None
    with _lock:
        prox = _proxies.get(miname)
    return prox if isinstance(prox, CMPIProxyProvider) else None


set_local_provider_lookup(local_provider)


def get_cmpi_proxy_provider(miname: str, broker, ctx, cmpi=None):
    """Entry point called by cmpi-bindings for every MI it creates.

    One proxy per MI name, shared by the instance, method, association and
    indication MIs of that name; each creation is counted so that the module
    is shut down with the last terminating ``cleanup``.

    Never raises: cmpi-bindings cannot show a Python 3 exception (its
    traceback formatter imports ``StringIO``).  If ``cmpi`` cannot be imported
    or the provider module cannot be loaded, the cause goes to the CIM
    server's log (and stderr, syslog) and the MI is a :class:`FailedProvider`
    that answers every call with that cause.
    """
    if miname == loader.PIN_MINAME:
        # The MI that keeps cmpi-bindings from finalising Python (loader.pin_interpreter).
        return _keep(FailedProvider(miname, "not a provider", rc=_RC_NOT_SUPPORTED))
    if cmpi is None:
        try:
            cmpi = _cmpi_module()
        except loader.CmpiImportError as exc:
            text = str(exc)
            loader.report(f"provider {miname}: {text}", broker, miname)
            failed = _keep(FailedProvider(miname, text.splitlines()[0]))
            loader.pin_interpreter(broker, ctx)     # needs no cmpi
            return failed
    # Objects cmpi-bindings wrapped before ``cmpi`` was imported are bare
    # SwigPyObjects without methods: give them their proxy class.
    broker = loader.rewrap(broker, cmpi.CMPIBroker)
    ctx = loader.rewrap(ctx, cmpi.CMPIContext)
    with _lock:
        prox = _proxies.get(miname)
        if prox is None:
            try:
                prox = CMPIProxyProvider(miname, broker, ctx, cmpi=cmpi)
            except BaseException as exc:  # pylint: disable=broad-except
                text = f"loading provider {miname} failed:\n{traceback.format_exc()}"
                LOG.error("%s", text)
                try:
                    broker.LogMessage(cmpi.CMPI_SEV_ERROR, miname, text)
                except Exception:  # pylint: disable=broad-except
                    loader.report(text, broker, miname)
                prox = _keep(FailedProvider(
                    miname, f"loading provider {miname} failed: {type(exc).__name__}: {exc}"))
            else:
                _proxies[miname] = _keep(prox)
        else:
            prox.broker = broker
        if isinstance(prox, CMPIProxyProvider):
            prox.users += 1
    # Outside the lock: this creates an MI, which calls back in here.
    loader.pin_interpreter(broker, ctx)
    return prox


def _keep(obj):
    with _lock:
        if not any(o is obj for o in _kept):
            _kept.append(obj)
    return obj


def reset() -> None:
    """Forget every proxy (tests)."""
    with _lock:
        _proxies.clear()
        _kept.clear()
    loader.reset()


class FailedProvider:
    """The MI of a provider that could not be loaded: every call answers why.

    cmpi-bindings would report a failed ``get_cmpi_proxy_provider`` as "can't
    import StringIO"; this way the client gets the cause.
    """

    def __init__(self, miname: str, why: str, rc: int = _RC_FAILED):
        self.miname = miname
        self.why = why
        self.rc = rc

    def _fail(self, *args: Any):
        return (self.rc, _bytes(f"{self.miname}: {self.why}"))

    enum_instance_names = enum_instances = get_instance = create_instance = _fail
    set_instance = delete_instance = exec_query = associator_names = associators = _fail
    reference_names = references = invoke_method = authorize_filter = _fail
    activate_filter = deactivate_filter = must_poll = enable_indications = _fail
    disable_indications = _fail

    def cleanup(self, ctx, terminating):
        return (0, None) if terminating else (_RC_NEVER_UNLOAD, None)


#: KVM_PROVIDERS_CMPI_CALL_TRACE=FILE (in the CIM server's environment): one line per CMPI
#: call appended to FILE -- start and end (time.perf_counter, seconds), process, thread,
#: provider, operation, class -- to see where a request's time goes between the
#: server and the providers (docs/cmpi.md, "Cost inside the CIM servers").
_CALL_TRACE = os.environ.get("KVM_PROVIDERS_CMPI_CALL_TRACE", "")
#: ``KVM_PROVIDERS_CMPI_DIRECT=0`` in the CIM server's environment: every enumeration and
#: GetInstance through the instance models, none straight from the providers' values
#: (.direct) -- a fallback, and the A/B of the two paths in one installation (docs/cmpi.md).
_DIRECT = os.environ.get("KVM_PROVIDERS_CMPI_DIRECT", "").strip() != "0"


def _trace_call(start: float, miname: str, what: str, op: Optional[CIMInstanceName]) -> None:
    end = time.perf_counter()
    try:
        with open(_CALL_TRACE, "a", encoding="utf-8") as f:
            f.write(f"{start:.6f} {end:.6f} {os.getpid()} {threading.get_ident()} {miname} "
                    f"{what.replace(' ', '_')} {op.classname if op is not None else '-'}\n")
    except OSError:
        pass


def _no_request(op: CIMInstanceName) -> tuple:
    return ()


def _source(op: CIMInstanceName) -> tuple:
    """The source object of an association call as part of its request's identity (with
    the namespace beside it in :class:`.sharing.Call`): its class and key bindings as
    they came, not ``str(op)`` (pywbem's URI text: some 10 us per call)."""
    return (op.classname, op.host, tuple(iter_keybindings(op)))


def _frozen(props: Optional[list[str]]) -> Optional[tuple[str, ...]]:
    """A property list as a hashable value (part of a read call's identity)."""
    return None if props is None else tuple(p.lower() for p in props)


def _bytes(text: Any) -> bytes:
    if isinstance(text, bytes):
        return text
    return str(text).encode("utf-8", "replace")


class CMPIProxyProvider:
    """The object cmpi-bindings calls: one loaded provider module behind a CMPI MI name."""

    def __init__(self, miname: str, broker, ctx, cmpi=None, module: Optional[str] = None,
                 schema=None):
        self.cmpi = cmpi or _cmpi_module()
        self.miname = miname
        self.broker = broker
        self.users = 0
        # Whether the server's contexts carry sfcb's CMPISessionId (see _session).
        self._sessions = True
        # What a new instance of each class holds as NULL (Converter: not set again).
        self._fresh: dict = {}
        self.logger = logging.getLogger(f"kvm_providers.cmpi.{miname}")
        level = os.environ.get("KVM_PROVIDERS_CMPI_LOG_LEVEL", "INFO").upper()
        install_log_handler(self.cmpi, broker, getattr(logging, level, logging.INFO))
        self.module_spec = module or resolve_module(miname)
        env = self._env(ctx)
        with request_scope():
            self.proxy = ProviderProxy(env, self.module_spec, schema)
        # The loaded modules and the schema out of the collector, as the embedded server
        # takes them out after loading its providers (.heap).
        heap.settle(self._schema)
        # OpenPegasus' agent: a chunk of instances written to cimserver without waiting
        # for it to read (.channel)
        channel.widen()
        # OpenPegasus' agent, sfcb's provider process: the C heap trimmed at the end of a
        # large request (.heap.trim)
        self._trim = heap.trims(broker)
        # OpenPegasus: every path has a namespace ("" for none; Converter.ns_always)
        self._ns_always = templates.server_name(broker) == "Pegasus"

    # -- plumbing -------------------------------------------------------------

    def _env(self, ctx) -> CMPIEnvironment:
        return CMPIEnvironment(self.cmpi, self.broker, ctx, self.miname, self.logger)

    def _schema(self):
        if self.proxy.schema is not None:
            return self.proxy.schema
        from ..schema import default_schema
        return default_schema()

    def _error(self, exc: BaseException, what: str) -> tuple[int, bytes]:
        if isinstance(exc, self.cmpi.CMPIException):
            err = cim_error_from_cmpi(exc)
        else:
            err = to_cim_error(exc, self.logger, what=f"{self.miname} ({what})")
        code = int(err.status_code)
        if code < 1 or code > 17:
            code = pywbem.CIM_ERR_FAILED
        return code, _bytes(err.status_description or "")

    def _run(self, what: str, ctx, func: Callable[[CMPIEnvironment, Converter], Any],
             access: str = ""):
        """Run one CMPI call: env, converter, request scope, error mapping.

        `access` "write": it ends the shared read scope (:mod:`.sharing`);
        "": it neither shares nor ends it.  Read calls: :meth:`_read`.
        """
        start = time.perf_counter() if _CALL_TRACE else 0.0
        conv = Converter(self.cmpi, self.broker)
        scope = share.write() if access == "write" else request_scope()
        try:
            env = self._env(ctx)
            with scope:
                rc = func(env, conv)
            if isinstance(rc, tuple):
                return rc
            return (self.cmpi.CMPI_RC_OK, None)
        except BaseException as exc:  # pylint: disable=broad-except
            return self._error(exc, what)
        finally:
            conv.release()
            if _CALL_TRACE:
                _trace_call(start, self.miname, what, None)

    def _read(self, what: str, ctx, objname,
              func: Callable[[CMPIEnvironment, Converter, CIMInstanceName], Any],
              request: Callable[[CIMInstanceName], tuple],
              part: Optional[Callable[[CIMInstanceName], tuple]]):
        """Run one read CMPI call on the object path `objname`, in the request scope
        it shares with the other calls of its client request (:mod:`.sharing`).

        `request(op)`: what the calls of one client request have in common
        beyond the namespace and sfcb's session (property list, source object,
        filters); `part(op)`: what tells them apart (e.g. the class of a
        subclass call); `part` None: a server never splits this call.
        """
        start = time.perf_counter() if _CALL_TRACE else 0.0
        conv = Converter(self.cmpi, self.broker, self._fresh, self._ns_always)
        op = None
        try:
            op = self._path(conv, objname)
            call = Call(what, (self._session(ctx, conv), op.namespace) + request(op),
                        None if part is None else (self.miname,) + part(op))
            env = self._env(ctx)
            with share.read(call):
                try:
                    rc = func(env, conv, op)
                finally:
                    # Released and counted before the call leaves its request's scope: the
                    # call that ends the request trims what all of its calls freed (.heap).
                    if self._trim:
                        heap.count(conv.made())
                    conv.release()
            if isinstance(rc, tuple):
                return rc
            return (self.cmpi.CMPI_RC_OK, None)
        except BaseException as exc:  # pylint: disable=broad-except
            return self._error(exc, what)
        finally:
            over = share.request_over() is not False
            conv.release()      # a call that failed before its scope (else: nothing left)
            # (always: what the calls kept for after their request is freed then, .heap)
            heap.trim(0, over, self._trim)
            if _CALL_TRACE:
                _trace_call(start, self.miname, what, op)

    def _session(self, ctx, conv: Converter) -> Any:
        """sfcb's ``CMPISessionId`` of the call (one per client connection), else None.

        OpenPegasus passes none; once a context lacks it, it is not asked again.
        """
        if not self._sessions or ctx is None:
            return None
        try:
            data = ctx.get_entry("CMPISessionId")
            if data.type == self.cmpi.CMPI_uint32:      # what sfcb adds: read it directly
                return data.value.uint32
            return conv.from_data(data)[0]
        except Exception:  # pylint: disable=broad-except  (CMPIException: no such entry)
            self._sessions = False
            return None

    def _path(self, conv: Converter, objname) -> CIMInstanceName:
        return conv.to_path(objname)

    @staticmethod
    def _plist(plist) -> Optional[list[str]]:
        if plist is None:
            return None
        return [p.decode("utf-8") if isinstance(p, bytes) else str(p) for p in plist]

    def _return_paths(self, conv: Converter, rslt, paths) -> None:
        for path in paths:
            rslt.return_objectpath(conv.keep(conv.object_path(path)))
        rslt.done()

    def local_get_instance(self, ctx, path: CIMInstanceName, props) -> CIMInstance:
        """GetInstance for an up-call made in this process (see :func:`local_provider`).

        Runs in the caller's request scope, so what the caller read from
        libvirt is not read again; CIMErrors reach the caller as they would
        through the server.
        """
        inst = self.proxy.MI_getInstance(self._env(ctx), path, props)
        if inst.path is None:
            inst.path = path.copy()
        elif inst.path.namespace is None:
            inst.path.namespace = path.namespace
        return inst

    # -- instance MI ----------------------------------------------------------

    def _enum_paths(self, op: CIMInstanceName) -> list[CIMInstanceName]:
        """The class paths to enumerate for an enumeration of ``op.classname``.

        Both servers name one of this module's classes (sfcb replaces a
        superclass by the registered class, REPLACE_CN); an sfcb built with
        optimized enumeration passes the client's class, possibly a
        superclass: then every class of this module under it.
        """
        if op.classname.lower() in self.proxy.providers:
            return [op]
        out = []
        schema = self._schema()
        for cname in self.proxy.providers:
            try:
                spec = schema.spec(op.namespace, cname)
            except pywbem.CIMError:
                continue
            if spec.is_a(op.classname):
                out.append(CIMInstanceName(spec.name, namespace=op.namespace))
        return out or [op]        # none: the provider says NOT_SUPPORTED

    def enum_instance_names(self, ctx, rslt, objname):
        def run(env, conv, op):
            for cop in self._enum_paths(op):
                for path in self.proxy.MI_enumInstanceNames(env, cop):
                    rslt.return_objectpath(conv.keep(conv.object_path(path)))
            rslt.done()
        return self._read("EnumerateInstanceNames", ctx, objname, run, _no_request,
                          _class_part)

    def enum_instances(self, ctx, rslt, objname, plist):
        def run(env, conv, op):
            props = self._plist(plist)
            if not _DIRECT:
                for cop in self._enum_paths(op):
                    for inst in self.proxy.MI_enumInstances(env, cop, props):
                        rslt.return_instance(conv.keep(conv.instance(
                            inst, namespace=op.namespace, props=props)))
                rslt.done()
                return
            # As the embedded server enumerates: straight from the providers' values
            # where a provider offers it, else through its models (.direct).
            form = CMPIForm(conv, op.namespace, props)
            # (an item None: read ahead for a part to come; the rows an earlier call kept
            # for this one: made and returned in one loop, CMPIForm.send)
            form.send(self._enum_items(env, op, props, form), rslt)
            rslt.done()
        return self._read("EnumerateInstances", ctx, objname, run,
                          lambda op: (_frozen(self._plist(plist)),), _class_part)

    def _enum_items(self, env, op: CIMInstanceName, props: Optional[list[str]],
                    form: CMPIForm) -> Any:
        """The items of an enumeration call, made from what an earlier call of its request
        read ahead for it or read in one pass with the parts to come (.ahead)."""
        return ahead.enum_items(self, share, env, op, props, form)

    def get_instance(self, ctx, rslt, objname, plist):
        def run(env, conv, op):
            props = self._plist(plist)
            # Straight from the provider's values where it offers that, as the embedded
            # server answers (.direct), else through its model.
            cinst = direct.get_instance(self.proxy, env, conv, op, props) if _DIRECT else None
            if cinst is None:
                inst = self.proxy.MI_getInstance(env, op, props)
                cinst = conv.instance(inst, namespace=op.namespace, props=props)
            rslt.return_instance(conv.keep(cinst))
            rslt.done()
        # A client's GetInstance is one call: it shares a scope only as an up-call.
        return self._read("GetInstance", ctx, objname, run, _no_request, None)

    def create_instance(self, ctx, rslt, objname, newinst):
        def run(env, conv):
            ref = self._path(conv, objname)
            inst = conv.to_instance(newinst, path=ref)
            if not ref.keybindings:
                own = newinst.objectpath()
                if own is not None:
                    keys = conv.to_path(own).keybindings
                    inst.path = CIMInstanceName(ref.classname, keybindings=keys,
                                                namespace=ref.namespace)
            path = self.proxy.MI_createInstance(env, inst)
            if path.namespace is None:
                path.namespace = ref.namespace
            self._return_paths(conv, rslt, [path])
        return self._run("CreateInstance", ctx, run, "write")

    def set_instance(self, ctx, rslt, objname, newinst, plist):
        def run(env, conv):
            ref = self._path(conv, objname)
            inst = conv.to_instance(newinst, path=ref)
            self.proxy.MI_modifyInstance(env, inst, self._plist(plist))
            rslt.done()
        return self._run("ModifyInstance", ctx, run, "write")

    def delete_instance(self, ctx, rslt, objname):
        def run(env, conv):
            self.proxy.MI_deleteInstance(env, self._path(conv, objname))
            rslt.done()
        return self._run("DeleteInstance", ctx, run, "write")

    def exec_query(self, ctx, rslt, objname, query, lang):
        return (self.cmpi.CMPI_RC_ERR_NOT_SUPPORTED,
                _bytes(f"ExecQuery is not supported by {self.miname}"))

    # -- association MI -----------------------------------------------------

    def _assoc_classes(self, ns: str, requested: Optional[str]) -> list[str]:
        """The association classes of this module to run for AssocClass `requested`.

        Pegasus names the registered class; sfcb passes the client's
        AssocClass (or ResultClass for References), which may be None or a
        superclass such as CIM_Component.
        """
        names = list(self.proxy.providers)
        if requested and requested.lower() in self.proxy.providers:
            return [requested]
        schema = self._schema()
        out = []
        for cname in names:
            try:
                spec = schema.spec(ns, cname)
            except pywbem.CIMError:
                continue
            if not spec.is_association:
                continue
            if requested and not spec.is_a(requested):
                continue
            out.append(spec.name)
        return out

    def associator_names(self, ctx, rslt, objname, assocClass, resultClass, role,
                         resultRole):
        def run(env, conv, op):
            for acls in self._assoc_classes(op.namespace, assocClass):
                for path in self.proxy.MI_associatorNames(env, op, acls, resultClass, role,
                                                          resultRole):
                    rslt.return_objectpath(conv.keep(conv.object_path(path)))
            rslt.done()
        return self._read("AssociatorNames", ctx, objname, run,
                          lambda op: (_source(op), resultClass, role, resultRole),
                          lambda op: (assocClass,))

    def associators(self, ctx, rslt, objname, assocClass, resultClass, role, resultRole,
                    plist):
        def run(env, conv, op):
            props = self._plist(plist)
            for acls in self._assoc_classes(op.namespace, assocClass):
                for inst in self.proxy.MI_associators(env, op, acls, resultClass, role,
                                                      resultRole, props):
                    rslt.return_instance(conv.keep(conv.instance(inst, op.namespace,
                                                                 props=props)))
            rslt.done()
        return self._read("Associators", ctx, objname, run,
                          lambda op: (_source(op), resultClass, role, resultRole,
                                      _frozen(self._plist(plist))),
                          lambda op: (assocClass,))

    def reference_names(self, ctx, rslt, objname, resultClass, role):
        def run(env, conv, op):
            for acls in self._assoc_classes(op.namespace, resultClass):
                for path in self.proxy.MI_referenceNames(env, op, acls, role):
                    rslt.return_objectpath(conv.keep(conv.object_path(path)))
            rslt.done()
        return self._read("ReferenceNames", ctx, objname, run, lambda op: (_source(op), role),
                          lambda op: (resultClass,))

    def references(self, ctx, rslt, objname, resultClass, role, plist):
        def run(env, conv, op):
            props = self._plist(plist)
            for acls in self._assoc_classes(op.namespace, resultClass):
                for inst in self.proxy.MI_references(env, op, acls, role, props):
                    rslt.return_instance(conv.keep(conv.instance(inst, op.namespace,
                                                                 props=props)))
            rslt.done()
        return self._read("References", ctx, objname, run,
                          lambda op: (_source(op), role, _frozen(self._plist(plist))),
                          lambda op: (resultClass,))

    # -- method MI ------------------------------------------------------------

    def invoke_method(self, ctx, rslt, objname, method, inargs, outargs):
        def run(env, conv):
            op = self._path(conv, objname)
            params = conv.to_args(inargs, op.namespace)
            (rtype, rval), outs = self.proxy.MI_invokeMethod(env, op, method, params)
            if outargs is not None:
                conv.fill_args(outargs, outs)
            if rval is not None:
                cval, ctype = conv.value(rval, rtype, isinstance(rval, list))
                rslt.return_data(cval, ctype)
            rslt.done()
        return self._run(f"InvokeMethod {method}", ctx, run, "write")

    # -- indication MI --------------------------------------------------------

    @staticmethod
    def _filter(filt) -> Optional[str]:
        """The query of a CMPISelectExp (what providers get as `filter`)."""
        if filt is None:
            return None
        try:
            return filt.__str__()
        except Exception:  # pylint: disable=broad-except
            return None

    def _class_path(self, conv: Converter, class_path) -> Optional[CIMInstanceName]:
        return None if class_path is None else conv.to_path(class_path)

    def _indication_class(self, conv: Converter, className,
                          class_path) -> tuple[str, Optional[CIMInstanceName]]:
        """(class, class path) of a filter call as the providers expect them: the
        indication class of theirs the call is for.

        sfcb passes that class as both `className` and `classPath`; OpenPegasus
        passes the filter's FROM class as `className` for every call and the
        provider's own (sub)class it activates in `classPath` (one call per
        class: CMPIProviderManager::handleCreateSubscriptionRequest), so a
        filter on a superclass (`SELECT * FROM CIM_InstIndication`) activated
        nothing the providers knew.  The embedded server passes the provider's
        class, as sfcb does.
        """
        path = self._class_path(conv, class_path)
        if path is not None and path.classname:
            return path.classname, path
        return className, path

    def authorize_filter(self, ctx, filt, className, classPath, owner):
        def run(env, conv):
            cls, path = self._indication_class(conv, className, classPath)
            self.proxy.MI_authorizeFilter(env, self._filter(filt), cls, path, owner)
        return self._run("AuthorizeFilter", ctx, run)

    def activate_filter(self, ctx, filt, className, classPath, firstActivation):
        def run(env, conv):
            cls, path = self._indication_class(conv, className, classPath)
            self.proxy.MI_activateFilter(env, self._filter(filt), cls, path,
                                         bool(firstActivation))
        return self._run("ActivateFilter", ctx, run)

    def deactivate_filter(self, ctx, filt, className, classPath, lastActivation):
        def run(env, conv):
            cls, path = self._indication_class(conv, className, classPath)
            self.proxy.MI_deActivateFilter(env, self._filter(filt), cls, path,
                                           bool(lastActivation))
        return self._run("DeActivateFilter", ctx, run)

    def must_poll(self, ctx, filt, className, classPath):
        # Neither sfcb nor our providers poll; the providers deliver events themselves.
        return (self.cmpi.CMPI_RC_ERR_NOT_SUPPORTED, None)

    def enable_indications(self, ctx):
        return self._run("EnableIndications", ctx,
                         lambda env, conv: self.proxy.MI_enableIndications(env))

    def disable_indications(self, ctx):
        return self._run("DisableIndications", ctx,
                         lambda env, conv: self.proxy.MI_disableIndications(env))

    # -- unloading --------------------------------------------------------------

    def cleanup(self, ctx, terminating):
        """CMPI cleanup of one MI.

        Not terminating (the server asks whether it may unload, e.g. when the
        providers were idle): always ``CMPI_RC_NEVER_UNLOAD``.  The decision
        is not a module's: all providers share one interpreter, sfcb asks only
        the first provider of the library and then unloads every one of them,
        losing what the modules keep in memory (remembered RequestedState,
        running jobs), and cmpi-bindings' own unloading path aborts the
        process.  A module's ``can_unload`` is not consulted here.

        Terminating (server shutdown, ``cimprovider -d``): the module's
        ``shutdown(env)`` runs with the last MI of this name, and the proxy is
        forgotten so that a re-enabled provider loads afresh; it stays
        referenced (see ``_kept``) because cmpi-bindings releases it without
        the GIL.
        """
        if not terminating:
            return (getattr(self.cmpi, "CMPI_RC_NEVER_UNLOAD", _RC_NEVER_UNLOAD), None)

        def run(env, conv):
            with _lock:
                self.users = max(0, self.users - 1)
                last = self.users == 0
                if last and _proxies.get(self.miname) is self:
                    del _proxies[self.miname]
            if last:
                self.proxy.MI_shutdown(env)
                heap.flush(5.0)     # nothing of the heap's worker left running (.heap)
            return None
        return self._run("Cleanup", ctx, run)
