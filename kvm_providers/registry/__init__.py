"""The declarative registry: which provider module serves which class, where, how.

This one table generates the embedded server's dispatch table, the sfcb
``.reg`` file and the Pegasus registration MOF, so that they cannot drift
apart.  Entries are written once per class family template: ``{P}`` stands for
the family prefix (``KVM``, ``LXC``, ``Xen``) and is expanded by
:func:`registrations`.

To add a provider: write the module under ``kvm_providers/providers/``, its
classes in ``mof/``, and add its entries to ``TABLE`` in ``table.py``.
"""

from .table import (ASSOCIATION, FAMILIES, INDICATION, INSTANCE, INTEROP_NS, METHOD,
                    TABLE, VIRT_NS, Entry, Registration, dispatch_table, registrations)

__all__ = ["Entry", "Registration", "TABLE", "FAMILIES", "registrations", "dispatch_table",
           "INSTANCE", "ASSOCIATION", "METHOD", "INDICATION", "VIRT_NS", "INTEROP_NS"]
