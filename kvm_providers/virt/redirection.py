"""Remote consoles (KVM redirection, DSP1076) of domains: the VNC and SPICE access points.

Each ``<graphics type='vnc'>`` or ``<graphics type='spice'>`` of a domain is
one :class:`AccessPoint`: protocol, listen address, port (the one libvirt
assigned, read from the live XML of a running domain), whether it listens on
IPv6 only, and its session state:

* ``INACTIVE`` - nothing listens (the domain is not running, or its port is
  not assigned);
* ``AVAILABLE`` - the listener is up and no client is connected;
* ``ACTIVE`` - a client is connected (``session`` is the client's port).

A listener and its clients can only be seen for hosts whose processes run on
this machine (a local ``qemu``/``kvm`` URI): there the TCP table of the kernel
(``/proc/net/tcp``, ``/proc/net/tcp6``) is read once per request.  For other
hosts (remote URIs, the test driver) a running domain with a port counts as
listening, without sessions.

The ``name`` of an access point is libvirt-cim's KVMRedirectionSAP Name,
``"<port>:<session>"`` (session -1 inactive, 0 available, else the client
port), prefixed with the device id for every device but the first VNC one
(``"spice:5901:0"``), so that names stay unique in a domain with several
consoles.  :func:`parse_name` reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

from .scope import current_scope
from .connection import Host
from .domain import DomainRef, DomainXML, domain_state
from .netaddr import is_ipv6_only
from .uris import uri_driver

__all__ = ["AccessPoint", "INACTIVE", "AVAILABLE", "ACTIVE", "REDIRECTION_TYPES",
           "access_points", "access_point", "parse_name", "listen_address", "sessions_visible",
           "tcp_sockets"]

INACTIVE, AVAILABLE, ACTIVE = "inactive", "available", "active"

#: Graphics types that are remote consoles (a network listener a client connects to).
REDIRECTION_TYPES = ("vnc", "spice")

# libvirt states of a domain whose QEMU process exists (running, blocked, paused,
# shutting down, pmsuspended): its console listener is up.
_PROCESS_STATES = {1, 2, 3, 4, 7}

_TCP_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
_ESTABLISHED, _LISTEN = "01", "0A"


@dataclass(frozen=True)
class AccessPoint:
    """One remote console of a domain."""

    domain: str
    devid: str                    # the graphics device id ('vnc', 'spice', 'vnc#2')
    protocol: str                 # graphics type: 'vnc' or 'spice'
    listen: Optional[str]         # listen address as libvirt has it (IPv6 without brackets)
    socket: Optional[str]         # UNIX socket path instead of a TCP listener
    port: int                     # TCP port, -1 if none is assigned
    ipv6_only: Optional[bool]
    state: str                    # INACTIVE, AVAILABLE or ACTIVE
    session: int                  # -1 inactive, 0 available, else the client's TCP port

    @property
    def name(self) -> str:
        base = f"{self.port}:{self.session}"
        return base if self.devid == "vnc" else f"{self.devid}:{base}"


def parse_name(name: Any) -> Optional[tuple[str, int, int]]:
    """(devid, port, session) of an access point name, or None if it is not one."""
    if not isinstance(name, str):
        return None
    parts = name.rsplit(":", 2)
    if len(parts) == 2:
        devid, port, session = "vnc", parts[0], parts[1]
    elif len(parts) == 3 and parts[0]:
        devid, port, session = parts
    else:
        return None
    try:
        return devid, int(port), int(session)
    except ValueError:
        return None


# -- addresses ------------------------------------------------------------------------

def listen_address(el: Any) -> tuple[Optional[str], Optional[str]]:
    """(listen address, UNIX socket) of a <graphics> element; libvirt writes the address
    in the attribute and in <listen type='address'>, a socket only in <listen>."""
    addr = el.get("listen")
    sock = None
    for node in el.findall("listen"):
        ltype = node.get("type")
        if ltype == "socket" and node.get("socket"):
            sock = node.get("socket")
        elif addr is None and node.get("address"):
            addr = node.get("address")
    return (addr.strip("[]") if addr else None), sock


# -- sessions ---------------------------------------------------------------------------

def sessions_visible(host: Host) -> bool:
    """True if the host's QEMU processes run on this machine (their sockets are in our
    kernel's TCP table): a qemu/kvm host that is this machine (:attr:`Host.is_local`, the
    package's one answer: ``qemu+ssh://localhost/system`` is this machine too)."""
    return host.is_local and uri_driver(host.uri) in ("qemu", "kvm")


def _parse_tcp_table(text: str) -> Iterable[tuple[int, int, str]]:
    """(local port, remote port, state) of each socket line of /proc/net/tcp{,6}."""
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        try:
            lport = int(fields[1].rsplit(":", 1)[1], 16)
            rport = int(fields[2].rsplit(":", 1)[1], 16)
        except (IndexError, ValueError):
            continue
        yield lport, rport, fields[3].upper()


def tcp_sockets() -> tuple[frozenset[int], dict[int, int]]:
    """(listening ports, {local port: lowest client port} of established connections) of
    this machine's network namespace; memoized per request."""
    scope = current_scope()
    if scope is not None and "virt.tcp" in scope:
        return scope["virt.tcp"]
    listening: set[int] = set()
    clients: dict[int, int] = {}
    for path in _TCP_TABLES:
        try:
            with open(path, encoding="ascii", errors="replace") as f:
                text = f.read()
        except OSError:
            continue          # no IPv6 in this kernel, or no /proc: nothing seen
        for lport, rport, st in _parse_tcp_table(text):
            if st == _LISTEN:
                listening.add(lport)
            elif st == _ESTABLISHED and rport:
                clients[lport] = min(rport, clients.get(lport, rport))
    out = (frozenset(listening), clients)
    if scope is not None:
        scope["virt.tcp"] = out
    return out


# -- access points ----------------------------------------------------------------------

def _port(el: Any) -> int:
    for attr in ("port", "tlsPort"):
        try:
            port = int(el.get(attr) or -1)
        except ValueError:
            continue
        if 0 < port < 65536:
            return port
    return -1


def _running(ref: DomainRef) -> bool:
    return domain_state(ref)[0] in _PROCESS_STATES


def access_points(doc: DomainXML) -> list[AccessPoint]:
    """The remote consoles of a domain (from its current XML), in device order."""
    out: list[AccessPoint] = []
    running: Optional[bool] = None
    for setting in doc.settings_of("graphics"):
        el = setting.element
        gtype = el.get("type")
        if gtype not in REDIRECTION_TYPES:
            continue
        if running is None:
            running = _running(doc.ref)
        listen, sock = listen_address(el)
        port = _port(el)
        if not running or (port < 0 and sock is None):
            state, session = INACTIVE, -1
        elif port > 0 and sessions_visible(doc.host):
            listening, clients = tcp_sockets()
            if port in clients:
                state, session = ACTIVE, clients[port]
            elif port in listening:
                state, session = AVAILABLE, 0
            else:
                state, session = INACTIVE, -1
        else:
            state, session = AVAILABLE, 0
        out.append(AccessPoint(doc.name, setting.devid, gtype, listen, sock, port,
                               is_ipv6_only(listen), state, session))
    return out


def access_point(doc: DomainXML, name: Any) -> Optional[AccessPoint]:
    """The access point of `doc` whose name is exactly `name`, or None."""
    hit = parse_name(name)
    if hit is None:
        return None
    for ap in access_points(doc):
        if ap.devid == hit[0]:
            return ap if ap.name == name else None
    return None
