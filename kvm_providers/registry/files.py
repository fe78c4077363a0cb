"""Registration files generated from the table: sfcb ``.reg``, Pegasus MOF, pycim shims.

``registration_files()`` returns ``{file name under registration/: text}``;
``python -m kvm_providers.registry.generate`` writes them and a test checks
that the committed files are current.

* ``kvm_providers.reg``: sfcb provider registration, one section per class::

      [KVM_ComputerSystem]
         provider: kvm_providers_computer_system
         location: py3CmpiProvider
         type: instance method
         namespace: root/virt
         group: kvm_providers

  ``location`` names cmpi-bindings' provider library (libpy3CmpiProvider.so),
  ``provider`` the MI name cmpi-bindings hands our adapter, ``group`` puts all
  our providers in one sfcb provider process (one Python interpreter).
* ``kvm_providers.peg.mof``: Pegasus registration (compiled into its
  interop namespace): one ``PG_ProviderModule`` (InterfaceType "CMPI",
  InterfaceVersion "2.0.0", Location "py3CmpiProvider"), one ``PG_Provider``
  per provider name, one ``PG_ProviderCapabilities`` per class.
* ``pycim/<provider name>.py``: the cmpi-bindings provider modules, installed
  in /usr/lib/pycim/; each imports its module from the installed package.
"""

from __future__ import annotations

from typing import Iterable, Optional

from .table import (ASSOCIATION, INDICATION, INSTANCE, INTEROP_NS, METHOD, Registration,
                    registrations)

__all__ = ["registration_files", "sfcb_reg", "pegasus_mof", "pycim_shims", "shim_source",
           "PEGASUS_MODULE", "PEGASUS_PROVIDER_TYPES", "CMPI_LOCATION", "PEGASUS_INTEROP_NS"]

#: cmpi-bindings' Python 3 provider library (libpy3CmpiProvider.so).
CMPI_LOCATION = "py3CmpiProvider"
#: The one Pegasus provider module holding all our providers.
PEGASUS_MODULE = "kvm_providers_Module"
#: PG_ProviderCapabilities.ProviderType values.
PEGASUS_PROVIDER_TYPES = {INSTANCE: 2, ASSOCIATION: 3, INDICATION: 4, METHOD: 5}
#: Pegasus' interop namespace; profile classes registered in root/interop are
#: registered there too (Pegasus-era clients look for them there).
PEGASUS_INTEROP_NS = "root/PG_InterOp"

_ORDER = (INSTANCE, ASSOCIATION, METHOD, INDICATION)
_HEADER = ("Generated from kvm_providers/registry/table.py by "
           "`python -m kvm_providers.registry.generate`; do not edit.")


def _types(reg: Registration) -> list[str]:
    return [t for t in _ORDER if t in reg.types]


def sfcb_reg(regs: Optional[Iterable[Registration]] = None) -> str:
    """The sfcb ``.reg`` text for `regs` (default: the table)."""
    regs = registrations() if regs is None else list(regs)
    out = ["# sfcb provider registration for kvm_providers.", f"# {_HEADER}",
           "# Install with kvm-providers-register (sfcbstage -r, then sfcbrepos).", ""]
    for reg in regs:
        out += [f"[{reg.classname}]",
                f"   provider: {reg.provider_name}",
                f"   location: {CMPI_LOCATION}",
                f"   type: {' '.join(_types(reg))}",
                f"   namespace: {' '.join(reg.namespaces)}",
                f"   group: {reg.group}",
                ""]
    return "\n".join(out)


def _pegasus_namespaces(reg: Registration) -> list[str]:
    out = list(reg.namespaces)
    if INTEROP_NS in out and PEGASUS_INTEROP_NS not in out:
        out.append(PEGASUS_INTEROP_NS)
    return out


def _mof_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def pegasus_mof(regs: Optional[Iterable[Registration]] = None, version: str = "") -> str:
    """The Pegasus registration MOF for `regs` (default: the table)."""
    regs = registrations() if regs is None else list(regs)
    if not version:
        from .._version import __version__ as version
    out = ["// Pegasus provider registration for kvm_providers.", f"// {_HEADER}",
           "// Compile into the interop namespace (root/PG_InterOp), e.g. with",
           "// kvm-providers-register, or: cimmof -n root/PG_InterOp kvm_providers.peg.mof",
           "",
           "instance of PG_ProviderModule",
           "{",
           f"    Name = {_mof_str(PEGASUS_MODULE)};",
           f"    Location = {_mof_str(CMPI_LOCATION)};",
           '    Vendor = "kvm_providers";',
           f"    Version = {_mof_str(version)};",
           '    InterfaceType = "CMPI";',
           '    InterfaceVersion = "2.0.0";',
           "};",
           ""]
    providers: list[str] = []
    for reg in regs:
        if reg.provider_name not in providers:
            providers.append(reg.provider_name)
    for name in providers:
        out += ["instance of PG_Provider",
                "{",
                f"    Name = {_mof_str(name)};",
                f"    ProviderModuleName = {_mof_str(PEGASUS_MODULE)};",
                "};",
                ""]
    for reg in regs:
        types = ", ".join(str(PEGASUS_PROVIDER_TYPES[t]) for t in _types(reg))
        names = ", ".join(_mof_str(ns) for ns in _pegasus_namespaces(reg))
        out += ["instance of PG_ProviderCapabilities",
                "{",
                f"    CapabilityID = {_mof_str(reg.classname)};",
                f"    ProviderModuleName = {_mof_str(PEGASUS_MODULE)};",
                f"    ProviderName = {_mof_str(reg.provider_name)};",
                f"    ClassName = {_mof_str(reg.classname)};",
                f"    Namespaces = {{{names}}};",
                f"    ProviderType = {{{types}}};   // {', '.join(_types(reg))}",
                "    SupportedProperties = NULL;",
                "    SupportedMethods = NULL;",
                "};",
                ""]
    return "\n".join(out)


def shim_source(provider_name: str, module: str) -> str:
    """The /usr/lib/pycim/<provider_name>.py module for a provider module."""
    return f'''"""cmpi-bindings provider module {provider_name}.

{_HEADER}
cmpi-bindings loads /usr/lib/pycim/{provider_name}.py for the providers
registered with provider name {provider_name}; the providers themselves live in
the installed package, module {module}.
"""

import importlib as _importlib

_module = _importlib.import_module({module!r})
get_providers = _module.get_providers


def __getattr__(name):
    # init, shutdown, can_unload and the indication hooks, if the module has them
    return getattr(_module, name)
'''


def pycim_shims(regs: Optional[Iterable[Registration]] = None) -> dict[str, str]:
    """{file name: text} of the pycim shims, one per provider name."""
    regs = registrations() if regs is None else list(regs)
    out: dict[str, str] = {}
    for reg in regs:
        out.setdefault(f"{reg.provider_name}.py", shim_source(reg.provider_name, reg.module))
    return out


def registration_files(regs: Optional[Iterable[Registration]] = None) -> dict[str, str]:
    """{file name under registration/: text} of every generated registration file."""
    regs = registrations() if regs is None else list(regs)
    files = {"kvm_providers.reg": sfcb_reg(regs), "kvm_providers.peg.mof": pegasus_mof(regs)}
    for name, text in pycim_shims(regs).items():
        files[f"pycim/{name}"] = text
    return files
