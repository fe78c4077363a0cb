"""The embedded WBEM server: schema, providers, dispatcher, HTTP(S) listeners, wired together."""

from __future__ import annotations

import gc
import importlib
import ipaddress
import logging
import socket
import ssl
import threading
from typing import Iterable, Optional

from pywbem import CIMError

from ..config import Config, ConfigError, parse_hostport
from ..registry import registrations
from ..schema import NAMESPACE_MOF, Schema, load_schema, set_default_schema
from . import indications, interop
from .app import CIMApp, startup_checks
from .auth import make_authenticator
from .dispatcher import Dispatcher
from .http import HTTPServer, Listener
from .providers import Operations, ProviderEntry, ProviderTable, make_env_factory
from .pull import PullManager
from .web import WebApp

__all__ = ["CIMServer", "is_loopback"]

LOG = logging.getLogger("kvm_providers.cimom")


def is_loopback(host: str) -> bool:
    """True for addresses that only this machine can reach."""
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(ai[4][0]).is_loopback
                       for ai in socket.getaddrinfo(host, None))
        except (socket.gaierror, ValueError):
            return False


class CIMServer:
    """One embedded server instance (start/stop; usable in-process by tests)."""

    def __init__(self, config: Config, extra_modules: Iterable[str] = (),
                 schema: Optional[Schema] = None, hostname: Optional[str] = None):
        self.config = config
        srv = config.server
        self._check_security()
        extras = [importlib.import_module(m) for m in extra_modules]
        layout = {ns: list(files) for ns, files in NAMESPACE_MOF.items()}
        for mod in extras:
            for ns, files in getattr(mod, "MOF", {}).items():
                layout.setdefault(ns, [NAMESPACE_MOF["root/cimv2"][0]]).extend(files)
        self.schema = schema or load_schema(layout=layout)
        set_default_schema(self.schema)
        self.hostname = hostname or socket.gethostname()
        self._configure_libvirt()
        try:
            auth = make_authenticator(srv)
        except (OSError, ValueError) as exc:
            what = (f"credentials file {srv.auth_file}" if srv.auth_mode() == "file"
                    else f"PAM authentication (service {srv.pam_service})")
            raise ConfigError(f"{what}: {getattr(exc, 'strerror', None) or exc}") from None

        # 'interop' (DSP1033's name for the interop namespace) is answered as an alias
        # of root/interop; it is listed too, since clients that find the interop
        # namespace under that name (pywbem tries it first) expect to see it.
        interop.configure(interop.ServerInfo(hostname=self.hostname,
                                             namespaces=self.schema.namespaces + ["interop"],
                                             auth=auth is not None))
        try:
            destinations = indications.DestinationPolicy(srv.indication_destinations)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.indications = indications.IndicationManager(
            self.schema, self.hostname, state_dir=srv.state_dir, cafile=srv.indication_cafile,
            access=indications.AccessPolicy(srv.admin_users, srv.admin_group,
                                            authenticated=auth is not None),
            destinations=destinations)
        indications.configure(self.indications)
        entries = list(self._entries(extras))
        ops_ref: list = []
        self.table = ProviderTable(self.schema, entries,
                                   make_env_factory(ops_ref, self.indications.deliver))
        self.ops = Operations(self.table)
        ops_ref.append(self.ops)
        self.indications.attach(self.ops)
        self.pull = PullManager(srv.max_enumeration_contexts, srv.enumeration_timeout,
                                srv.max_enumeration_timeout,
                                max_per_owner=srv.max_enumeration_contexts_per_user)
        self.dispatcher = Dispatcher(self.ops, self.pull, self.hostname,
                                     max_batch_requests=srv.max_batch_requests,
                                     max_batch_response=srv.max_batch_response)
        self.app = CIMApp(self.dispatcher, auth)
        # /metrics and the live view in front of CIM (issue 15: cimom/web.py)
        self.web = WebApp(self.app, auth)
        self.http = HTTPServer(self.web, self._listeners(), workers=srv.workers,
                               max_connections=srv.max_connections,
                               idle_timeout=srv.idle_timeout,
                               request_timeout=srv.request_timeout, max_body=srv.max_body,
                               header_timeout=srv.header_timeout,
                               max_connections_per_address=srv.max_connections_per_address,
                               max_body_buffer=srv.max_body_buffer,
                               max_requests_per_address=srv.max_requests_per_address)
        self._stop = threading.Event()
        self._housekeeper: Optional[threading.Thread] = None

    # -- construction helpers -------------------------------------------------------

    def _check_security(self) -> None:
        srv = self.config.server
        startup_checks(self.config)
        if srv.insecure:
            return
        for addr in srv.listen:
            host, _port = parse_hostport(addr, "listen")
            if not is_loopback(host):
                raise ConfigError(f"refusing to serve plain HTTP on {addr}, which is not a "
                                  "loopback address: use --https-listen with --auth-file, "
                                  "or --insecure")
        for addr in srv.https_listen:
            host, _port = parse_hostport(addr, "https_listen")
            if not is_loopback(host) and srv.auth_mode() == "none":
                raise ConfigError(f"refusing to serve {addr} without authentication: "
                                  "give --auth-file, or --insecure")
        if srv.https_listen and not (srv.cert and srv.key):
            raise ConfigError("--https-listen needs --cert and --key")

    def _configure_libvirt(self) -> None:
        try:
            virt = importlib.import_module("kvm_providers.virt")
        except ImportError:
            return
        configure = getattr(virt, "configure", None)
        if configure is not None:
            configure(self.config.effective_hosts())
            # the [storage] section of this server's configuration, not the installed one
            importlib.import_module("kvm_providers.virt.validate").configure_storage(
                self.config.storage)
            # jobs: finished ones are kept in the state directory across restarts
            importlib.import_module("kvm_providers.virt.jobs").configure(
                self.config.server.state_dir)
            # monitoring (issue 15): the collector's interval and history, the alert rules
            mon = self.config.monitoring
            stats = importlib.import_module("kvm_providers.virt.stats")
            stats.configure(stats.Settings(mon.interval, mon.history))
            try:
                importlib.import_module("kvm_providers.virt.alerts").configure(mon)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None

    def _entries(self, extras) -> Iterable[ProviderEntry]:
        schema = self.schema
        for reg in registrations():
            for ns in reg.namespaces:
                if schema.has_namespace(ns) and schema.has_class(ns, reg.classname):
                    yield ProviderEntry(reg.classname, reg.module, reg.types, ns)
                else:
                    LOG.warning("registered class %s is not defined in namespace %s; "
                                "not served", reg.classname, ns)
        for name, types, _cls in interop.BUILTIN_CLASSES:
            if schema.has_class(interop.INTEROP, name):
                yield ProviderEntry(name, interop.__name__, types, interop.INTEROP)
        for name, types in indications.iter_builtin(schema):
            yield ProviderEntry(name, indications.providers.__name__, types, interop.INTEROP)
        for mod in extras:
            for classname, module, types, namespaces in getattr(mod, "REGISTRATIONS", []):
                for ns in namespaces:
                    yield ProviderEntry(classname, module, tuple(types), ns)

    def _listeners(self) -> list[Listener]:
        srv = self.config.server
        out = [Listener(*parse_hostport(a, "listen")) for a in srv.listen]
        if srv.https_listen:
            if not srv.cert or not srv.key:
                raise ConfigError("https_listen needs cert and key")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            try:
                ctx.load_cert_chain(srv.cert, srv.key)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"cannot load certificate {srv.cert} / key {srv.key}: "
                                  f"{exc}") from None
            out += [Listener(*parse_hostport(a, "https_listen"), ssl_context=ctx)
                    for a in srv.https_listen]
        return out

    # -- life cycle -----------------------------------------------------------------------

    @property
    def addresses(self) -> list[tuple[str, int, bool]]:
        """(host, port, secure) of every listener, once bound."""
        return self.http.addresses

    def start(self) -> None:
        self.http.bind()
        self._preload()
        self.indications.start()
        self.http.start()
        self._housekeeper = threading.Thread(target=self._housekeeping, daemon=True,
                                             name="cimom-housekeeping")
        self._housekeeper.start()
        for host, port, secure in self.addresses:
            LOG.info("listening on %s://%s:%d/cimom", "https" if secure else "http",
                     f"[{host}]" if ":" in host else host, port)
        if self.addresses:
            host, port, secure = self.addresses[0]
            LOG.info("live view at %s://%s:%d/live, Prometheus metrics at /metrics",
                     "https" if secure else "http", f"[{host}]" if ":" in host else host, port)

    def _preload(self) -> None:
        """Load every provider module now, then take the long-lived objects out of GC.

        The class repository and the provider modules are some 200,000
        objects that live as long as the server; a full cyclic collection
        falling inside a request would scan them all (0.15-0.3 s).  Frozen,
        the collector only looks at what requests create.
        """
        for module in sorted({e.module for ns in self.schema.namespaces
                              for e in self.table.entries(ns)}):
            try:
                self.table.proxy(module)
            except CIMError as exc:
                LOG.error("%s", exc.status_description)
        gc.collect()
        gc.freeze()
        gc.set_threshold(10000, 10, 10)   # fewer young collections, each still cheap

    def _housekeeping(self) -> None:
        while not self._stop.wait(5.0):
            try:
                self.pull.sweep()
            except Exception:  # pylint: disable=broad-except
                LOG.exception("housekeeping failed")

    def stop(self) -> None:
        """Stop listening, finish running requests, shut the providers down."""
        self._stop.set()
        self.http.stop()
        self.indications.stop()
        for proxy in self.table.loaded():
            try:
                proxy.MI_shutdown(self.ops.env(proxy.name, None))
            except Exception:  # pylint: disable=broad-except
                LOG.exception("shutdown of provider module %s failed", proxy.name)
        set_default_schema(None)
