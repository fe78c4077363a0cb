"""A test provider package, loaded by the server with --provider-module tests.testprov."""

import os

NS = "test/testprov"
_HERE = os.path.dirname(os.path.abspath(__file__))

#: Extra MOF per namespace (the CIM schema subset comes first automatically).
MOF = {NS: [os.path.join(_HERE, "testprov.mof")]}

#: (class, provider module, provider types, namespaces)
REGISTRATIONS = [
    ("TST_Widget", "tests.testprov.provider", ("instance", "method"), [NS]),
    ("TST_Gadget", "tests.testprov.provider", ("instance", "method"), [NS]),
    ("TST_WidgetLink", "tests.testprov.provider", ("instance", "association"), [NS]),
    ("TST_Synthetic", "tests.testprov.provider", ("instance", "method"), [NS]),
]
