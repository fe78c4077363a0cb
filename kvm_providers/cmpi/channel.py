"""OpenPegasus' provider agent: its pipe to cimserver made large enough for a chunk of
instances (issue 10 item 12, stop 28, helper gil28).

OpenPegasus runs the providers of a module in a provider agent (``cimprovagt``), which
talks to cimserver through two anonymous pipes whose ends it gets on its command line
(``cimprovagt <0|1: set the user> <read fd> <write fd> <user> <module>``,
``cimprovagt.cpp``).  An enumeration's instances go
to cimserver in chunks, written by the thread of the CMPI call that returns them, as it
returns them (``deliver``); cimserver reads each chunk in a thread of its own and writes
its XML.  A pipe holds 64 KiB (Linux's default): a chunk of RASD instances is larger, so
the call's thread blocks in ``write`` until cimserver has read the start of it, every
chunk -- while that call holds its request's shared scope (:mod:`.sharing`), so no other
part of the request runs either.  At 1000 guests (every RASD, ~9000 instances) the
agent's threads blocked ~420 times a request in ``pipe_write``, ~30 ms in all (scheduler
trace, main f00e3d9; the request 270-290 ms, the embedded server's 127 ms).

:func:`widen` sets the agent's write pipe to :data:`DEFAULT_SIZE` (1 MiB, Linux's
``pipe-max-size`` for a process without ``CAP_SYS_RESOURCE``) once, when the first
provider is loaded in the process.  cimserver reads the same bytes as before, in the same
order; only how far the agent may run ahead of its reading changes.  Nothing is done
outside cimprovagt (sfcb's provider processes, the tests), for an fd that is not a
pipe opened for writing, or for a pipe already that large; a refusal (``EPERM``: the
user's pipe pages over ``pipe-user-pages-soft``) leaves the pipe as it was.
``KVM_PROVIDERS_CMPI_PIPE`` sets the size in bytes (``0``: leave the pipe alone).
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
import threading
from typing import Callable, Optional

__all__ = ["widen", "agent_write_fd", "command_line", "reset", "DEFAULT_SIZE", "AGENT"]

LOG = logging.getLogger("kvm_providers.cmpi")

#: The write pipe's size set in the provider agent (bytes).
DEFAULT_SIZE = 1 << 20
#: The program name of OpenPegasus' provider agent.
AGENT = "cimprovagt"

# fcntl's F_SETPIPE_SZ / F_GETPIPE_SZ (Linux; named in fcntl from Python 3.10).
_SET = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_GET = getattr(fcntl, "F_GETPIPE_SZ", 1032)

_done = False
_lock = threading.Lock()


def command_line() -> list[str]:
    """This process's command line (cmpi-bindings' interpreter has no ``sys.argv`` of
    the server's)."""
    try:
        with open("/proc/self/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def agent_write_fd(argv: list[str]) -> Optional[int]:
    """The fd cimprovagt writes to cimserver through, from its command line `argv`; None
    if `argv` is not OpenPegasus' provider agent's."""
    if not argv or not os.path.basename(argv[0]).startswith(AGENT):
        return None             # (cimprovagt32: a 32-bit agent's, the same arguments)
    args = argv[1:]
    if len(args) != 5 or args[0] not in ("0", "1") or \
            not (args[1].isdigit() and args[2].isdigit()):
        return None
    return int(args[2])


def _size_from_env() -> int:
    text = os.environ.get("KVM_PROVIDERS_CMPI_PIPE", "").strip()
    try:
        return max(0, int(text)) if text else DEFAULT_SIZE
    except ValueError:
        return DEFAULT_SIZE


def widen(cmdline: Optional[Callable[[], list[str]]] = None) -> Optional[int]:
    """Once per process: in OpenPegasus' provider agent, its pipe to cimserver set to hold
    :data:`DEFAULT_SIZE` (or ``$KVM_PROVIDERS_CMPI_PIPE``) bytes.  The pipe's size
    after, None where nothing was done.  `cmdline`: the process's command line
    (:func:`command_line`)."""
    global _done  # pylint: disable=global-statement
    with _lock:
        if _done:
            return None
        _done = True
    size = _size_from_env()
    fd = agent_write_fd((cmdline or command_line)()) if size else None
    if fd is None:
        return None
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode) or \
                fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != os.O_WRONLY:
            return None
        if fcntl.fcntl(fd, _GET) >= size:
            return None
        got = fcntl.fcntl(fd, _SET, size)
    except OSError as exc:
        LOG.debug("the agent's pipe to cimserver (fd %d) left as it is: %s", fd, exc)
        return None
    LOG.debug("the agent's pipe to cimserver (fd %d): %d bytes", fd, got)
    return got


def reset() -> None:
    """Forget that :func:`widen` ran (tests)."""
    global _done  # pylint: disable=global-statement
    with _lock:
        _done = False
