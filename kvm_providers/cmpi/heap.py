"""The garbage collector of a CIM server's provider process, set as the embedded server sets
its own (issue 10 item 12, stop 25).

The embedded server loads every provider module at start, then takes the
long-lived objects out of the cyclic collector (``gc.freeze()``: the class
repository and the modules, some 200,000 objects) and makes young collections
rarer (``gc.set_threshold(10000, 10, 10)``, ``cimom/server.py``
``_preload``).  Inside sfcb or OpenPegasus the same objects live in the
provider process's interpreter, which cmpi-bindings starts with Python's
defaults: a full collection falling inside a request scans all of them
(0.15 s of a 0.35 s enumeration of every RASD of 1000 guests in one process;
the py-spy samples of stop 23 and 24 blamed them on whatever frame allocated,
the mapping views' ``_index`` 7-10%), and an enumeration whose request scope
keeps every domain's parsed XML for the later subclass calls
(:mod:`.sharing`) promotes enough objects to the old generation to trigger
one every request or two.  The embedded server lets each domain go after
writing it, so it never meets this.

:func:`settle` does what ``_preload`` does, once per provider loaded (sfcb and
Pegasus load a provider's MIs when it is first called): the default schema
loaded, the heap collected (the first time the whole heap; later loads scan only
what they added, the rest is frozen), frozen, the thresholds of the embedded server.
``KVM_PROVIDERS_CMPI_GC=0`` in the CIM server's environment leaves the
collector as the interpreter has it.  Frozen objects are still freed when no
longer referenced; only reference cycles among them are never collected (the
modules and the schema live as long as the process anyway).
"""

from __future__ import annotations

import gc
import os
import threading
from typing import Any, Callable

__all__ = ["settle", "THRESHOLD", "enabled"]

#: What the embedded server sets (cimom/server.py, _preload): fewer young collections,
#: each still cheap.
THRESHOLD = (10000, 10, 10)

_lock = threading.Lock()


def enabled() -> bool:
    """False if ``KVM_PROVIDERS_CMPI_GC=0`` asks to leave the collector alone."""
    return os.environ.get("KVM_PROVIDERS_CMPI_GC", "").strip() != "0"


def settle(load_schema: Callable[[], Any]) -> bool:
    """Freeze what a provider just loaded, as the embedded server does after loading its
    providers; `load_schema` loads the schema the provider uses first (a lazy load on
    the first request would leave it to every full collection).  Whether it did."""
    if not enabled():
        return False
    try:
        load_schema()
    except Exception:  # pylint: disable=broad-except
        pass                    # the provider's first request reports it
    with _lock:
        # Garbage frozen would never be collected.  Only the first collection of the
        # process scans the whole heap: what an earlier settle froze is not scanned.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*THRESHOLD)
    return True
