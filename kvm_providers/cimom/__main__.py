"""kvm-cimom: the embedded WBEM server (also ``python -m kvm_providers.cimom``)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Optional

from ..config import Config, ConfigError, check_server, load_config, parse_hostport


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kvm-cimom",
        description="Embedded WBEM server (CIM-XML over HTTP/HTTPS) hosting the kvm_providers "
                    "CIM providers for libvirt.")
    p.add_argument("--listen", action="append", metavar="HOST:PORT",
                   help="plain HTTP address (repeatable; default 127.0.0.1:5988)")
    p.add_argument("--https-listen", action="append", metavar="HOST:PORT",
                   help="HTTPS address (repeatable); needs --cert and --key")
    p.add_argument("--cert", help="TLS certificate (PEM)")
    p.add_argument("--key", help="TLS private key (PEM)")
    p.add_argument("--libvirt-uri", action="append", metavar="URI",
                   help="libvirt host to manage (repeatable; default test:///default)")
    p.add_argument("--config", help="configuration file (TOML)")
    p.add_argument("--auth-file", help="credentials file for HTTP Basic authentication "
                                       "(manage with python -m kvm_providers.cimom.auth)")
    p.add_argument("--auth", choices=["none", "file", "pam"],
                   help="how clients authenticate (default: file with --auth-file, else "
                        "none); pam: the system's users in the PAM service kvm-cimom")
    p.add_argument("--allow-anonymous", action="store_true",
                   help="serve a privileged libvirt URI (qemu:///system, remote hosts) "
                        "without authentication")
    p.add_argument("--insecure", action="store_true",
                   help="allow non-loopback listening without TLS and authentication "
                        "(implies --allow-anonymous)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                   help="log level (default info)")
    p.add_argument("--max-body", type=int, metavar="BYTES", help="largest request body")
    p.add_argument("--idle-timeout", type=float, metavar="SECONDS",
                   help="close idle keep-alive connections after this long")
    p.add_argument("--workers", type=int, help="worker threads")
    p.add_argument("--port-file", help="write 'scheme host port' lines here once listening")
    p.add_argument("--state-dir", metavar="DIR",
                   help="keep indication subscriptions here across restarts (default: none)")
    p.add_argument("--provider-module", action="append", default=[], metavar="MODULE",
                   help="extra provider registrations (MODULE.REGISTRATIONS, MODULE.MOF); "
                        "for tests and development")
    return p


def build_config(args: argparse.Namespace):
    """The configuration: the file (if any), then the command line on top."""
    # Without --config (or $KVM_PROVIDERS_CONFIG) the defaults apply: `make run`
    # must not pick up an installed system configuration.
    path = args.config or os.environ.get("KVM_PROVIDERS_CONFIG")
    cfg = load_config(path, required=True) if path else Config()
    srv = cfg.server
    if args.listen or args.https_listen:
        # Addresses given on the command line replace the configured ones: an
        # HTTPS-only command line opens no plain HTTP port.
        srv.listen = list(args.listen or [])
        srv.https_listen = list(args.https_listen or [])
    for addr in srv.listen:
        parse_hostport(addr, "--listen")
    for addr in srv.https_listen:
        parse_hostport(addr, "--https-listen")
    for attr in ("cert", "key", "auth_file", "auth", "log_level", "max_body", "idle_timeout",
                 "workers", "state_dir"):
        value = getattr(args, attr)
        if value is not None:
            setattr(srv, attr, value)
    if args.insecure:
        srv.insecure = True
    if args.allow_anonymous:
        srv.allow_anonymous = True
    check_server(srv, "command line")
    if srv.max_body <= 0 or srv.workers <= 0:
        raise ConfigError("--max-body and --workers must be positive")
    for uri in args.libvirt_uri or []:
        cfg.add_host(uri)
    return cfg


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = build_config(args)
    except ConfigError as exc:
        print(f"kvm-cimom: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=getattr(logging, cfg.server.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .server import CIMServer  # imported late: loads the schema and libvirt
    try:
        server = CIMServer(cfg, extra_modules=args.provider_module)
        server.start()
    except ConfigError as exc:
        print(f"kvm-cimom: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"kvm-cimom: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 1
    hosts = ", ".join(f"{h.uri} ({h.family})" for h in cfg.effective_hosts())
    for host, port, secure in server.addresses:
        print(f"kvm-cimom: serving {'https' if secure else 'http'}://"
              f"{f'[{host}]' if ':' in host else host}:{port}/cimom for {hosts}",
              file=sys.stderr, flush=True)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for host, port, secure in server.addresses:
                f.write(f"{'https' if secure else 'http'} {host} {port}\n")
        os.replace(tmp, args.port_file)

    done = threading.Event()

    def on_signal(signum, _frame):
        logging.getLogger("kvm_providers.cimom").info("signal %d: stopping", signum)
        done.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not done.wait(3600):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
