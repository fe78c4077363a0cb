"""The object paths a call returns, one CMPIObjectPath per class reused (issue 10 item 12, stop 26).

An AssociatorNames of one ComputerSystem through KVM_SystemDevice returns 11
paths, an EnumerateInstanceNames of KVM_ComputerSystem one per guest; each was a
new CMPIObjectPath (``new_object_path``: in OpenPegasus a class lookup and a
new SCMOInstance) with every key added (``add_key``, a SWIG call and the
server's key lookup by name) -- 4 keys for a device, of which only DeviceID
(and CreationClassName between device classes) differs from the path before.
In Pegasus' agent that conversion was a sixth of an AssociatorNames call.

Both servers take a copy of a returned path at once: sfcb serialises it into
the response (``__rft_returnObjectPath``: ``getSerializedObjectPath``),
OpenPegasus keeps a reference to its SCMOInstance and copies it on the next
write (``SCMOInstance::setKeyBinding`` calls ``_copyOnWrite``).  So a call
keeps one path per namespace, class, host and key names, and for each path it
returns sets only the keys whose values differ from those the path holds
(``add_key`` replaces a key's value in both servers: sfcb's
``ClObjectPathAddKey``, Pegasus' ``setKeyBinding``, as the instances' paths of
:meth:`kvm_providers.cmpi.convert.Converter._instance_path` rely on already).
The paths the server receives are those made before: the same keys, values,
types and order (``tests/cmpi/test_cmpi_small_calls.py``).
"""

from __future__ import annotations

from typing import Any, Optional

from pywbem import CIMInstanceName

from ..provider._fastcim import iter_keybindings
from .plan import INT_CLASSES

__all__ = ["ReturnedPaths"]

#: Key value types whose equality is identity of the value the server gets (a reference
#: key compares its class name case-insensitively: always set again).
_EXACT = frozenset((str, bool, int, *INT_CLASSES.values()))


class ReturnedPaths:
    """The paths one call hands to ``return_objectpath`` (see the module doc): `conv`
    is the call's Converter, which keeps every path it makes until it is released."""

    __slots__ = ("conv", "_slots")

    def __init__(self, conv: Any):
        self.conv = conv
        #: {(namespace, class, host, key names): [CMPIObjectPath, its key values]}
        self._slots: dict[tuple, list] = {}

    def path(self, path: Any, namespace: Optional[str] = None) -> Any:
        """The CMPIObjectPath to return for `path` (a CIMInstanceName, or a class path:
        a new one), valid until the next call of this method."""
        conv = self.conv
        if type(path) is not CIMInstanceName:
            return conv.keep(conv.object_path(path, namespace))
        keys = tuple(iter_keybindings(path))
        ident = (path.namespace or namespace, path.classname, path.host,
                 tuple(name for name, _v in keys))
        slot = self._slots.get(ident)
        if slot is None:
            cop = conv.keep(conv.object_path(path, namespace))
            self._slots[ident] = [cop, [value for _n, value in keys]]
            return cop
        cop, was = slot
        changed = []
        for i, (name, value) in enumerate(keys):
            old = was[i]
            # unchanged: the same object, or an equal string or number of the same type
            if value is not old and not (type(value) is type(old) and type(value) in _EXACT
                                         and value == old):
                changed.append((name, value))
                was[i] = value
        if changed:
            conv._add_keys(cop, path.classname, changed)   # pylint: disable=protected-access
        return cop
