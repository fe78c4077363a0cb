"""Where a libvirt host is, decided from its URI: this machine or another, whether its
paths are this machine's files, whether libvirt runs its driver in this process.

One answer per question for the whole package (:attr:`Host.is_local`,
:attr:`Host.files_local`, :attr:`Host.in_process` ask these); split out of
connection.py (issue 11).
"""

from __future__ import annotations

from typing import Optional
from urllib.parse import urlparse

__all__ = ["in_process_uri", "uri_driver", "uri_host", "uri_is_local", "uri_files_local"]


def in_process_uri(uri: str) -> bool:
    """True if libvirt runs the driver of `uri` inside this process (test://, qemu:///embed)."""
    p = urlparse(uri)
    if "+" in p.scheme or p.hostname:
        return False
    return p.scheme == "test" or p.path.startswith("/embed")


# -- where a host is -------------------------------------------------------------------
# The one answer to "is this host this machine" (and "are its paths this machine's
# files"): every caller asks Host.is_local / Host.files_local, never the URI itself.

#: Host names in a URI that still mean this machine.
_THIS_MACHINE = frozenset({"localhost", "localhost.localdomain", "localhost6",
                           "ip6-localhost", "::1"})
#: Transports that may lead anywhere, whatever the URI's host part says.
_ELSEWHERE_TRANSPORTS = frozenset({"ext"})


def uri_host(uri: str) -> Optional[str]:
    """The host name a libvirt URI names (``qemu+ssh://lab1/system`` -> ``lab1``), or None."""
    try:
        return urlparse(uri).hostname or None
    except ValueError:
        return None


def uri_is_local(uri: str) -> bool:
    """True if the libvirt host of `uri` is this machine.

    Local: URIs without a host part (``qemu:///system``, ``qemu:///session``,
    ``qemu+unix:///system?socket=...``, ``qemu:///embed?root=...``, ``lxc:///``,
    ``test:///default``, ``test+unix:///...``) and URIs whose host part names this
    machine by a loopback name or address (``qemu+ssh://localhost/system``,
    ``qemu+tcp://127.0.0.1/system``).  Remote: any other host name, and the ``ext``
    transport (its command may lead anywhere).  The machine's own name in a URI
    counts as remote: it may resolve elsewhere (a cluster alias), and a remote
    answer is the safe one (paths are then not looked at here).
    """
    try:
        p = urlparse(uri)
        host = (p.hostname or "").lower()
    except ValueError:
        return False
    transport = p.scheme.lower().partition("+")[2]
    if transport in _ELSEWHERE_TRANSPORTS:
        return False
    return not host or host in _THIS_MACHINE or host.startswith("127.")


def uri_driver(uri: str) -> str:
    """The libvirt driver a URI names (``qemu+ssh://lab1/system`` -> ``qemu``)."""
    return urlparse(uri).scheme.lower().partition("+")[0]


def uri_files_local(uri: str) -> bool:
    """True if the paths a host of `uri` uses are this machine's files: a local host
    (:func:`uri_is_local`) other than libvirt's test driver, whose paths are no files."""
    return uri_driver(uri) != "test" and uri_is_local(uri)
