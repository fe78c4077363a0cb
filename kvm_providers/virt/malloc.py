"""The process's C heap: giving glibc's free memory back to the system.

glibc keeps what a thread freed in that thread's malloc arena, and another thread's
allocations never reuse it.  libvirt's in-process drivers (``test://`` with a node
file) parse the whole node when the connection opens, in the thread that opens it
(:class:`.connection.Host`'s supervisor), and free the document at once: at 10,000
guests some 200 MB stay free in that arena for the life of the process, on top of
what the requests' threads use (the peak of OpenPegasus' provider agent and sfcb's
provider process was that and the first request's own growth; stop 31).
:func:`trim` gives it back.  The CMPI adapter's per-request trim
(``kvm_providers.cmpi.heap``) uses the same function.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Callable, Optional

__all__ = ["libc_trim", "trim"]

_lock = threading.Lock()
_fn: Optional[Callable[[int], int]] = None
_looked_up = False


def libc_trim() -> Optional[Callable[[int], int]]:
    """glibc's ``malloc_trim`` (None where the C library has none: musl; nothing to do)."""
    global _fn, _looked_up  # pylint: disable=global-statement
    with _lock:
        if not _looked_up:
            _looked_up = True
            try:
                fn = ctypes.CDLL(None).malloc_trim
            except (OSError, AttributeError):
                fn = None
            if fn is not None:
                fn.argtypes = [ctypes.c_size_t]
                fn.restype = ctypes.c_int
            _fn = fn
        return _fn


def trim() -> bool:
    """Give the free memory of every arena back (``malloc_trim(0)``); whether it could."""
    fn = libc_trim()
    if fn is None:
        return False
    fn(0)
    return True
