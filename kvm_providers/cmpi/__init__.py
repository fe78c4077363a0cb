"""The Python 3 CMPI adapter: kvm_providers inside sfcb and Pegasus.

cmpi-bindings' ``libpy3CmpiProvider.so`` embeds Python in the CIM server and
imports the top-level module ``cmpi_pywbem_bindings`` (shipped by this
project, see ``cmpi_pywbem_bindings.py``), which is :mod:`.adapter`'s
``get_cmpi_proxy_provider``.  The adapter converts CMPI objects to pywbem 1.x
and back (:mod:`.convert`), calls the provider modules through
:class:`kvm_providers.provider.ProviderProxy` like the embedded server does,
and gives providers the broker through ``env`` (:mod:`.env`).

This package does not import the SWIG module ``cmpi`` at import time, so
that it can be imported (and tested against a fake ``cmpi``) anywhere; the
top-level ``cmpi_pywbem_bindings`` imports it at once inside a CIM server,
with ``_cmpi`` taken from the server's own library (:mod:`.loader`).  See
docs/cmpi.md.
"""

from . import loader
from .adapter import CMPIProxyProvider, PYCIM_DIR, get_cmpi_proxy_provider, resolve_module
from .convert import Converter, cim_error_from_cmpi
from .env import CMPICIMOMHandle, CMPIEnvironment, CMPILogger, CMPILogHandler

__all__ = ["loader", "get_cmpi_proxy_provider", "CMPIProxyProvider", "resolve_module", "PYCIM_DIR",
           "Converter", "cim_error_from_cmpi", "CMPICIMOMHandle", "CMPIEnvironment",
           "CMPILogger", "CMPILogHandler"]
