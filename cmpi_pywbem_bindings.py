"""cmpi-bindings' Python entry module, for Python 3 and pywbem 1.x.

cmpi-bindings' ``libpy3CmpiProvider.so`` (the provider library that sfcb and
Pegasus load for providers registered with location ``py3CmpiProvider``)
imports this module by name and calls ``get_cmpi_proxy_provider(miname,
broker, ctx)``.  It must be importable by the system ``python3`` without
PYTHONPATH (cmpi-bindings starts an isolated interpreter), which is why it is
installed as a top-level module next to the ``kvm_providers`` package.

The implementation is :mod:`kvm_providers.cmpi`; see docs/cmpi.md.
"""

from kvm_providers.cmpi.adapter import CMPIProxyProvider, get_cmpi_proxy_provider

__all__ = ["get_cmpi_proxy_provider", "CMPIProxyProvider"]
