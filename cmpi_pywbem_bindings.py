"""cmpi-bindings' Python entry module, for Python 3 and pywbem 1.x.

cmpi-bindings' ``libpy3CmpiProvider.so`` (the provider library that sfcb and
Pegasus load for providers registered with location ``py3CmpiProvider``)
imports this module by name and calls ``get_cmpi_proxy_provider(miname,
broker, ctx)``.  It must be importable by the system ``python3`` without
PYTHONPATH (cmpi-bindings starts an isolated interpreter), which is why it is
installed as a top-level module next to the ``kvm_providers`` package.

Importing it imports cmpi-bindings' SWIG module ``cmpi`` at once: cmpi-bindings
wraps the broker for the first ``get_cmpi_proxy_provider`` right after this
import, and only objects wrapped after ``cmpi`` was imported are proxies with
methods.  Nothing raised here reaches cmpi-bindings (it would report "can't
import StringIO"): failures are reported with their cause on stderr, in
syslog and, through the broker, in the CIM server's log, and every MI then
answers with the cause.

The implementation is :mod:`kvm_providers.cmpi`; see docs/cmpi.md.
"""

import importlib.util
import os
import sys
import traceback


def _standalone_loader():
    """kvm_providers/cmpi/loader.py, loaded without the package (which needs pywbem)."""
    name = "kvm_providers.cmpi.loader"
    if name in sys.modules:
        return sys.modules[name]
    try:
        pkg = importlib.util.find_spec("kvm_providers")
        for base in (pkg.submodule_search_locations or []) if pkg else []:
            path = os.path.join(base, "cmpi", "loader.py")
            if os.path.isfile(path):
                spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[name]
                    raise
                return module
    except Exception:  # pylint: disable=broad-except
        sys.stderr.write("cmpi_pywbem_bindings: " + traceback.format_exc())
    return None


_loader = _standalone_loader()
if _loader is not None:
    try:
        _loader.import_cmpi()
    except ImportError:
        pass        # reported; get_cmpi_proxy_provider tells the server's log and the client

try:
    from kvm_providers.cmpi.adapter import CMPIProxyProvider, get_cmpi_proxy_provider
except Exception:  # pylint: disable=broad-except
    _WHY = f"cannot import kvm_providers' CMPI adapter: {traceback.format_exc()}"
    if _loader is not None:
        _loader.report(_WHY)
    else:
        sys.stderr.write(f"cmpi_pywbem_bindings: {_WHY}\n")

    class CMPIProxyProvider:  # type: ignore[no-redef]
        """Stands in for the adapter that could not be imported: every call answers why."""

        def __init__(self, miname):
            self.miname = miname

        def __getattr__(self, name):
            if name.startswith("_"):
                raise AttributeError(name)
            first = _WHY.splitlines()[0]

            def fail(*args):
                if name == "cleanup":
                    return (0, None) if args[-1] else (51, None)   # CMPI_RC_NEVER_UNLOAD
                return (1, f"{self.miname}: {first}".encode("utf-8", "replace"))
            return fail

    _FAILED: list = []

    def get_cmpi_proxy_provider(miname, broker, ctx):  # type: ignore[misc]
        """cmpi-bindings' entry point when the adapter cannot be imported."""
        if _loader is not None:
            _loader.report(f"provider {miname}: {_WHY}", broker, miname)
        prov = CMPIProxyProvider(miname)
        _FAILED.append(prov)        # cmpi-bindings releases it without the GIL
        return prov

__all__ = ["get_cmpi_proxy_provider", "CMPIProxyProvider"]
