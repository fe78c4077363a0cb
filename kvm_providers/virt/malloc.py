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
import functools
from typing import Callable, Optional

__all__ = ["libc_trim", "trim"]


@functools.cache
def libc_trim() -> Optional[Callable[[int], int]]:
    """glibc's ``malloc_trim`` (None where the C library has none: musl; nothing to do),
    looked up once."""
    try:
        fn = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def trim() -> bool:
    """Give the free memory of every arena back (``malloc_trim(0)``); whether it could."""
    fn = libc_trim()
    if fn is None:
        return False
    fn(0)
    return True
