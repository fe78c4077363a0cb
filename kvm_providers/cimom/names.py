"""Names the server's own interop providers share (:mod:`.interop`, :mod:`.indications`).

A module of its own so that neither of the two imports the other: the
interop namespace, the brand in the keys of the server's own instances, and
the path of the indication service (the central instance of the Indications
profile, which :mod:`.interop` reports and :mod:`.indications` serves).
"""

from __future__ import annotations

from pywbem import CIMInstanceName

__all__ = ["INTEROP", "BRAND", "NAMESPACE_ALIASES", "SYSTEM_CCN", "SERVICE_CLASS",
           "service_path"]

INTEROP = "root/interop"
BRAND = "kvm_providers"
#: Other names clients use for the interop namespace.
NAMESPACE_ALIASES = {"interop": INTEROP, "root/pg_interop": INTEROP}
#: SystemCreationClassName of the server's own instances.
SYSTEM_CCN = "CIM_ComputerSystem"
SERVICE_CLASS = "CIM_IndicationService"


def service_path(hostname: str) -> CIMInstanceName:
    """The path of the server's CIM_IndicationService instance."""
    return CIMInstanceName(SERVICE_CLASS, namespace=INTEROP, keybindings=[
        ("SystemCreationClassName", SYSTEM_CCN), ("SystemName", hostname),
        ("CreationClassName", SERVICE_CLASS), ("Name", f"{BRAND}:IndicationService")])
