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
  interop namespace, ``root/PG_InterOp`` or ``root/interop`` by build): one
  ``PG_ProviderModule`` (InterfaceType "CMPI", InterfaceVersion "2.0.0",
  Location "py3CmpiProvider"), one ``PG_Provider`` per provider name, one
  ``PG_ProviderCapabilities`` per class outside the interop namespace, and the
  profiles (DSP1033) the way Pegasus' interop provider takes them: one
  ``PG_ProviderProfileCapabilities`` per profile (ConformingElements: its
  central classes) and one ``PG_ProviderReferencedProfiles`` for the profiles
  that System Virtualization references.  Pegasus' interop provider owns
  CIM_RegisteredProfile, CIM_ReferencedProfile and CIM_ElementConformsToProfile
  (it answers "Class not supported by Interop Provider" for a provider's
  subclass), so the project's own profile registration classes are not
  registered with Pegasus; the text does not depend on the interop namespace.
* ``pycim/<provider name>.py``: the cmpi-bindings provider modules, installed
  in /usr/lib/pycim/; each imports its module from the installed package.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Iterable, Optional

from .table import (ASSOCIATION, INDICATION, INSTANCE, INTEROP_NS, METHOD, VIRT_NS,
                    Registration, registrations)

if TYPE_CHECKING:
    from ..virt.profiles import Profile

__all__ = ["registration_files", "sfcb_reg", "pegasus_mof", "pegasus_registrations",
           "pegasus_profiles", "pycim_shims", "shim_source", "PEGASUS_MODULE",
           "PEGASUS_PROVIDER_TYPES", "CMPI_LOCATION", "PEGASUS_INTEROP_NS",
           "PEGASUS_INTEROP_NAMESPACES", "PROFILE_REGISTRATION_MODULES"]

#: cmpi-bindings' Python 3 provider library (libpy3CmpiProvider.so).
CMPI_LOCATION = "py3CmpiProvider"
#: The one Pegasus provider module holding all our providers.
PEGASUS_MODULE = "kvm_providers_Module"
#: PG_ProviderCapabilities.ProviderType values.
PEGASUS_PROVIDER_TYPES = {INSTANCE: 2, ASSOCIATION: 3, INDICATION: 4, METHOD: 5}
#: Pegasus' classic interop namespace (the build's PEGASUS_INTEROP_NAMESPACE).
PEGASUS_INTEROP_NS = "root/PG_InterOp"
#: The interop namespaces a Pegasus build may have, most common first.
PEGASUS_INTEROP_NAMESPACES = ("root/PG_InterOp", "root/interop", "interop")
#: Provider modules of the DSP1033 classes (RegisteredProfile, ReferencedProfile,
#: ElementConformsToProfile): Pegasus' interop provider serves these classes
#: itself from PG_ProviderProfileCapabilities, so they are not registered there.
PROFILE_REGISTRATION_MODULES = frozenset({"registered_profile", "referenced_profile",
                                          "element_conforms_to_profile"})

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


def pegasus_registrations(regs: Optional[Iterable[Registration]] = None
                          ) -> list[Registration]:
    """The registrations Pegasus gets: all but the profile registration classes
    (and nothing in the interop namespace, which Pegasus' interop provider owns)."""
    regs = registrations() if regs is None else list(regs)
    out = []
    for reg in regs:
        if reg.short_module in PROFILE_REGISTRATION_MODULES:
            continue
        namespaces = tuple(ns for ns in reg.namespaces if ns != INTEROP_NS)
        if namespaces:
            out.append(replace(reg, namespaces=namespaces))
    return out


def _mof_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _mof_list(items: Iterable[str]) -> str:
    return "{" + ", ".join(_mof_str(i) for i in items) + "}"


def pegasus_profiles(regs: Optional[Iterable[Registration]] = None
                     ) -> list[tuple[Profile, str, list[str]]]:
    """[(profile, provider name, conforming classes)], one per profile name and version.

    Pegasus makes one PG_RegisteredProfile per organization, name and version;
    the central classes of every family (and of profiles that share a name,
    such as the three Generic Device Resource Virtualization ones) are the
    profile's ConformingElements, all served by the provider of the central
    class.  Profiles whose central class is not registered are left out.
    """
    from ..virt.profiles import PROFILES
    regs = registrations() if regs is None else list(regs)
    served: dict[str, list[Registration]] = {}
    for reg in regs:
        if reg.family and VIRT_NS in reg.namespaces:
            served.setdefault(reg.classname[len(reg.family) + 1:], []).append(reg)
    out: dict[tuple[str, str, str], tuple[Profile, str, list[str]]] = {}
    for prof in PROFILES:
        for reg in served.get(prof.central_class or "", []):
            key = (prof.name, prof.version, reg.provider_name)
            entry = out.setdefault(key, (prof, reg.provider_name, []))
            if reg.classname not in entry[2]:
                entry[2].append(reg.classname)
    return list(out.values())


def _profile_id(prof: Profile) -> str:
    return "kvm_providers:" + prof.name.replace(" ", "") + "-" + prof.version


def pegasus_mof(regs: Optional[Iterable[Registration]] = None, version: str = "",
                module_group: Optional[str] = None) -> str:
    """The Pegasus registration MOF for `regs` (default: the table).  `module_group`: the
    provider module's ModuleGroupName (what ``cimprovider -g`` sets; "CIMServer" loads the
    module into cimserver's own process), None for none: the package registers none, and
    kvm-providers-register keeps the one an administrator set when it registers again."""
    from ..virt.profiles import PROFILE_BY_ID
    regs = registrations() if regs is None else list(regs)
    if not version:
        from .._version import __version__ as version
    out = ["// Pegasus provider registration for kvm_providers.", f"// {_HEADER}",
           "// Compile into Pegasus' interop namespace (root/PG_InterOp or root/interop)",
           "// with kvm-providers-register, which finds that namespace, or by hand:",
           "// cimmof -n root/PG_InterOp kvm_providers.peg.mof",
           "",
           "instance of PG_ProviderModule",
           "{",
           f"    Name = {_mof_str(PEGASUS_MODULE)};",
           f"    Location = {_mof_str(CMPI_LOCATION)};",
           '    Vendor = "kvm_providers";',
           f"    Version = {_mof_str(version)};",
           '    InterfaceType = "CMPI";',
           '    InterfaceVersion = "2.0.0";']
    if module_group is not None:
        out.append(f"    ModuleGroupName = {_mof_str(module_group)};")
    out += ["};", ""]
    peg_regs = pegasus_registrations(regs)
    providers: list[str] = []
    for reg in peg_regs:
        if reg.provider_name not in providers:
            providers.append(reg.provider_name)
    for name in providers:
        out += ["instance of PG_Provider",
                "{",
                f"    Name = {_mof_str(name)};",
                f"    ProviderModuleName = {_mof_str(PEGASUS_MODULE)};",
                "};",
                ""]
    for reg in peg_regs:
        types = ", ".join(str(PEGASUS_PROVIDER_TYPES[t]) for t in _types(reg))
        out += ["instance of PG_ProviderCapabilities",
                "{",
                f"    CapabilityID = {_mof_str(reg.classname)};",
                f"    ProviderModuleName = {_mof_str(PEGASUS_MODULE)};",
                f"    ProviderName = {_mof_str(reg.provider_name)};",
                f"    ClassName = {_mof_str(reg.classname)};",
                f"    Namespaces = {_mof_list(reg.namespaces)};",
                f"    ProviderType = {{{types}}};   // {', '.join(_types(reg))}",
                "    SupportedProperties = NULL;",
                "    SupportedMethods = NULL;",
                "};",
                ""]
    profiles = pegasus_profiles(peg_regs)
    for prof, provider, conforming in profiles:
        # RegisteredProfile 0 (Other) with the DMTF names: Pegasus maps the
        # organization "DMTF" to RegisteredOrganization 2 and builds the
        # InstanceID "DMTF+<name>+<version>".
        out += ["instance of PG_ProviderProfileCapabilities",
                "{",
                f"    CapabilityID = {_mof_str(_profile_id(prof))};",
                f"    ProviderModuleName = {_mof_str(PEGASUS_MODULE)};",
                f"    ProviderName = {_mof_str(provider)};",
                "    RegisteredProfile = 0;   // Other",
                # Required (NULL fails the registration): an empty array, right after
                # an integer, because Pegasus' cimmof types "{}" as the literal before
                "    RegisteredSubProfiles = {};",
                f"    OtherRegisteredProfile = {_mof_str(prof.name)};",
                # DMTF's, or the project's own (the snapshot profile, issue 13)
                f"    OtherProfileOrganization = {_mof_str(prof.other_organization or 'DMTF')};",
                f"    ProfileVersion = {_mof_str(prof.version)};",
                f"    ConformingElements = {_mof_list(conforming)};",
                "};",
                ""]
    # ReferencedProfile: Antecedent = the referenced (scoped) profile, Dependent =
    # the one referencing it (DSP1033), as the project's own provider answers.
    pairs: list[tuple[Profile, Profile]] = []
    registered = {(p.name, p.version) for p, _, _ in profiles}
    for prof, _provider, _ in profiles:
        scoping = PROFILE_BY_ID.get(prof.scoping or "")
        if scoping is None or (scoping.name, scoping.version) not in registered:
            continue
        if all((a.name, a.version) != (prof.name, prof.version) for a, _ in pairs):
            pairs.append((prof, scoping))
    if pairs:
        provider = next(pr for p, pr, _ in profiles
                        if (p.name, p.version) == (pairs[0][1].name, pairs[0][1].version))
        out += ["instance of PG_ProviderReferencedProfiles",
                "{",
                '    CapabilityID = "kvm_providers:ReferencedProfiles";',
                f"    ProviderModuleName = {_mof_str(PEGASUS_MODULE)};",
                f"    ProviderName = {_mof_str(provider)};",
                f"    RegisteredProfiles = {{{', '.join('0' for _ in pairs)}}};",
                f"    RegisteredProfileVersions = {_mof_list(a.version for a, _ in pairs)};",
                f"    OtherRegisteredProfiles = {_mof_list(a.name for a, _ in pairs)};",
                f"    OtherRegisteredProfileOrganizations = "
                f"{_mof_list(a.other_organization or 'DMTF' for a, _ in pairs)};",
                f"    DependentProfiles = {{{', '.join('0' for _ in pairs)}}};",
                f"    DependentProfileVersions = {_mof_list(d.version for _, d in pairs)};",
                f"    OtherDependentProfiles = {_mof_list(d.name for _, d in pairs)};",
                f"    OtherDependentProfileOrganizations = "
                f"{_mof_list(d.other_organization or 'DMTF' for _, d in pairs)};",
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
