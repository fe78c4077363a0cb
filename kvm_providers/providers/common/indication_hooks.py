"""What the indication provider modules share: the count of active filters per indication
class, and the embedded-instance property an indication carries.

The CIM server calls each module's ``activate_filter`` / ``deactivate_filter``; the
modules keep per class how many filters want it, so that they build only the
indications somebody receives (lifecycle, job, migration-job and alert indications).
"""

from __future__ import annotations

import threading
from collections import Counter

import pywbem
from pywbem import CIMInstance

__all__ = ["ActiveFilters", "embedded_property"]


class ActiveFilters:
    """How many active filters want each indication class (class names case-insensitive)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: Counter = Counter()

    def activate(self, classname: str) -> None:
        """A filter for `classname` became active."""
        with self._lock:
            self._count[classname.lower()] += 1

    def deactivate(self, classname: str, last_activation: bool) -> None:
        """A filter for `classname` went away (`last_activation`: it was the last one)."""
        key = classname.lower()
        with self._lock:
            self._count[key] -= 1
            if self._count[key] <= 0 or last_activation:
                del self._count[key]

    def get(self, classname: str) -> int:
        """The number of active filters for `classname` (0: nobody wants it)."""
        return self._count.get(classname.lower(), 0)

    def clear(self) -> None:
        """No filter is active any more (indications disabled)."""
        with self._lock:
            self._count.clear()


def embedded_property(name: str, inst: CIMInstance) -> pywbem.CIMProperty:
    """Property `name` holding `inst` as an embedded instance (SourceInstance, ...)."""
    return pywbem.CIMProperty(name, inst, type="string", embedded_object="instance")
