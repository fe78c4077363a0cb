"""Facts of a libvirt host beyond its domains' XML: its name, hypervisor and libvirt
versions (cached per connection), and whether it answers now (per request).

Split out of :mod:`.domain` (which keeps the domains themselves); what the
HostSystem, the services' SystemName and the health values of every element read.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

import libvirt

from .connection import Host, HostUnavailable, uri_host
from .query import request_memo

__all__ = ["host_facts", "system_hostname", "host_reachable", "version_string"]


def host_facts(host: Host) -> dict[str, Any]:
    """Hostname, hypervisor type and version, libvirt version (cached per connection).

    ``hostname`` is what ``virConnectGetHostname`` says, or None where the host cannot
    tell (``hostname_error`` then says why): never a name made up here.  A lost or hung
    connection fails (HostUnavailable), it is not a fact of the host.

    While the host cannot be asked, the facts read through an earlier connection (so
    that its instances keep their keys while it is away; they are the facts it had when
    it last answered); HostUnavailable if it never answered.
    """
    def ask(what: str, call: Callable[[], Any]) -> tuple[Any, Optional[str]]:
        try:
            return call(), None
        except libvirt.libvirtError as exc:
            err = host.translate(exc, what)
            if isinstance(err, HostUnavailable):
                raise err from None
            return None, str(err)

    def compute(conn):
        facts: dict[str, Any] = {}
        facts["hostname"], facts["hostname_error"] = ask("reading the host name",
                                                         conn.getHostname)
        hv_type, _ = ask("reading the hypervisor type", conn.getType)
        facts["hv_type"] = hv_type or "Unknown"
        hv_version, _ = ask("reading the hypervisor version", conn.getVersion)
        facts["hv_version"] = hv_version or 0
        lib_version, _ = ask("reading the libvirt version", conn.getLibVersion)
        facts["lib_version"] = lib_version or 0
        return facts
    try:
        return host.info("facts", compute)
    except HostUnavailable:
        last = host.last_info("facts")
        if last is None:
            raise
        return last


def system_hostname(host: Host) -> str:
    """The name the host's HostSystem (and its services' SystemName) is keyed by.

    The host name libvirt reports.  Where libvirt cannot tell it: for a host that is this
    machine (:attr:`Host.is_local`), this machine's node name - what libvirt itself falls
    back to -; for a remote host, the host name of its URI as configured (how this
    service reaches it): never this machine's name, which would name one host after
    another.  :func:`host_facts` says whether the name was read (``hostname`` None).
    """
    facts = host_facts(host)
    name = facts["hostname"]
    if name:
        return str(name)
    if host.is_local:
        return os.uname().nodename
    return uri_host(host.uri) or host.label


def host_reachable(host: Host) -> Optional[str]:
    """None if `host` answers now, else why not (the description of the HostUnavailable
    error, naming the host).  Asks libvirt once per request (``getLibVersion``, a
    high-priority call that a live libvirtd answers even when busy): a host that hangs
    makes this wait at most its ``hang_timeout``; one known to be away answers at once."""
    def compute() -> Optional[str]:
        try:
            conn = host.conn()
            with host.guard("asking the libvirt version"):
                conn.getLibVersion()
        except HostUnavailable as exc:
            return str(exc)
        return None
    return request_memo(("virt.reachable", host.label), compute)


def version_string(v: int) -> str:
    """A libvirt version number (major * 1,000,000 + minor * 1000 + release) as text."""
    return f"{v // 1000000}.{(v % 1000000) // 1000}.{v % 1000}"
