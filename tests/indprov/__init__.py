"""Indication test provider package: --provider-module tests.indprov.

Namespace test/indprov holds two indication classes served by an indication
provider (IPT_Alert, IPT_Change), one indication class no provider registers
(IPT_Unserved), and IPT_Control, whose static methods make the provider
deliver indications from a thread of its own and report the filter hooks the
server called.
"""

import os

NS = "test/indprov"
_HERE = os.path.dirname(os.path.abspath(__file__))

#: Extra MOF per namespace (the CIM schema subset comes first automatically).
MOF = {NS: [os.path.join(_HERE, "indprov.mof")]}

#: (class, provider module, provider types, namespaces)
REGISTRATIONS = [
    ("IPT_Alert", "tests.indprov.provider", ("indication",), [NS]),
    ("IPT_Change", "tests.indprov.provider", ("indication",), [NS]),
    ("IPT_Control", "tests.indprov.provider", ("instance", "method"), [NS]),
]
