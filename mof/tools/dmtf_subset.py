#!/usr/bin/env python3
"""Write mof/cim/*.mof: the subset of the DMTF CIM schema that kvm_providers uses.

The files in mof/cim are derived from the DMTF CIM Schema (Final MOF release,
plus the Experimental release for the few classes that exist only there).
This tool reads such a release, takes the classes listed in GROUPS below
together with everything they depend on (superclasses, classes named by
references and by EmbeddedInstance qualifiers), shortens every Description to
its first sentence, drops MappingStrings, and writes the classes in dependency
order, grouped in a handful of files, each with the DMTF attribution header.

    python mof/tools/dmtf_subset.py --final DIR --experimental DIR [--out mof/cim]

DIR is the directory holding ``qualifiers.mof`` and the package directories
(``Core/``, ``System/``, ...), e.g. the ``DMTF`` directory of
``cim_schema_2.41.0Final-MOFs.zip``.  Run it again after adding a class to
GROUPS; ``tests/unit/test_mof.py`` checks what the project needs of the
result.  See docs/schema.md.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import sys

from pywbem import MOFCompiler, MOFWBEMConnection

SCHEMA_VERSION = "2.41.0"

#: Output files, in include order, and the classes each must carry.  Classes
#: pulled in as dependencies go to the first group whose listed classes need
#: them (checked: a file never depends on a later one).
GROUPS: list[tuple[str, str, list[str]]] = [
    ("core.mof", "Core model: managed elements, settings, capabilities, "
     "services, jobs, errors and the basic associations", [
        "CIM_ManagedElement", "CIM_ManagedSystemElement", "CIM_LogicalElement",
        "CIM_EnabledLogicalElement", "CIM_System", "CIM_Service",
        "CIM_ServiceAccessPoint", "CIM_RemoteServiceAccessPoint",
        "CIM_SettingData", "CIM_Capabilities",
        "CIM_EnabledLogicalElementCapabilities",
        "CIM_Job", "CIM_ConcreteJob", "CIM_Error",
        "CIM_Dependency", "CIM_ConcreteDependency", "CIM_Component",
        "CIM_ConcreteComponent", "CIM_SystemComponent",
        "CIM_HostedDependency", "CIM_HostedService", "CIM_HostedAccessPoint",
        "CIM_ServiceAccessBySAP", "CIM_SAPAvailableForElement",
        "CIM_ElementCapabilities", "CIM_ElementSettingData",
        "CIM_SettingsDefineState", "CIM_SettingsDefineCapabilities",
        "CIM_ServiceAffectsElement",
        "CIM_AffectedJobElement", "CIM_OwningJobElement",
    ]),
    ("system.mof", "Systems and logical devices", [
        "CIM_ComputerSystem", "CIM_VirtualComputerSystem",
        "CIM_LogicalDevice", "CIM_SystemDevice",
        "CIM_Processor", "CIM_StorageExtent", "CIM_Memory", "CIM_LogicalDisk",
        "CIM_LogicalPort", "CIM_NetworkPort", "CIM_EthernetPort",
        "CIM_Controller", "CIM_DisplayController",
        "CIM_UserDevice", "CIM_PointingDevice",
    ]),
    ("virtualization.mof", "Resource allocation, resource pools and "
     "virtual systems (DSP1041, DSP1042, DSP1043, DSP1057, DSP1081, "
     "virtual system snapshots)", [
        "CIM_ResourceAllocationSettingData", "CIM_StorageAllocationSettingData",
        "CIM_EthernetPortAllocationSettingData",
        "CIM_VirtualSystemSettingData", "CIM_VirtualSystemSettingDataComponent",
        "CIM_ResourcePool", "CIM_HostedResourcePool",
        "CIM_ElementAllocatedFromPool", "CIM_ResourceAllocationFromPool",
        "CIM_AllocationCapabilities",
        "CIM_ResourcePoolConfigurationService",
        "CIM_ResourcePoolConfigurationCapabilities",
        "CIM_VirtualSystemManagementService",
        "CIM_VirtualSystemManagementCapabilities",
        "CIM_VirtualSystemMigrationService",
        "CIM_VirtualSystemMigrationCapabilities",
        "CIM_VirtualSystemMigrationSettingData",
        "CIM_VirtualSystemSnapshotService",
        "CIM_VirtualSystemSnapshotServiceCapabilities",
        "CIM_VirtualSystemSnapshotCapabilities",
        "CIM_SnapshotOfVirtualSystem", "CIM_MostCurrentSnapshotInBranch",
        "CIM_LastAppliedSnapshot",
    ]),
    ("network.mof", "Redirection (DSP1076 KVM Redirection), switch service "
     "and traffic filters", [
        "CIM_RedirectionService", "CIM_RedirectionServiceCapabilities",
        "CIM_KVMRedirectionSAP", "CIM_TextRedirectionSAP",
        "CIM_SwitchService",
        "CIM_FilterList", "CIM_FilterEntryBase", "CIM_FilterEntry",
        "CIM_Hdr8021Filter", "CIM_IPHeadersFilter",
        "CIM_EntriesInFilterList", "CIM_HostedFilterList",
    ]),
    ("interop.mof", "Profile registration (DSP1033) and the WBEM server "
     "(DSP1054 object manager)", [
        "CIM_RegisteredProfile", "CIM_RegisteredSubProfile",
        "CIM_ElementConformsToProfile", "CIM_ReferencedProfile",
        "CIM_WBEMService", "CIM_ObjectManager", "CIM_Namespace",
        "CIM_NamespaceInManager", "CIM_ObjectManagerCommunicationMechanism",
        "CIM_CIMXMLCommunicationMechanism", "CIM_CommMechanismForManager",
    ]),
    ("event.mof", "Indications and indication subscriptions (DSP1054)", [
        "CIM_Indication", "CIM_InstIndication", "CIM_InstCreation",
        "CIM_InstDeletion", "CIM_InstModification", "CIM_InstMethodCall",
        "CIM_ProcessIndication", "CIM_AlertIndication",
        "CIM_IndicationFilter", "CIM_ListenerDestination",
        "CIM_ListenerDestinationCIMXML", "CIM_IndicationHandler",
        "CIM_IndicationHandlerCIMXML", "CIM_IndicationSubscription",
        "CIM_IndicationService", "CIM_IndicationServiceCapabilities",
    ]),
    ("metrics.mof", "Base metrics (DSP1053)", [
        "CIM_BaseMetricDefinition", "CIM_BaseMetricValue",
        "CIM_MetricDefForME", "CIM_MetricInstance", "CIM_MetricForME",
        "CIM_MetricService", "CIM_MetricServiceCapabilities",
    ]),
]

#: Qualifiers dropped from class elements (long, and of no use to clients).
DROP_QUALIFIERS = {"mappingstrings"}

HEADER = """\
// {title}
//
// Derived from the DMTF CIM Schema version {version} ({release}).
// Copyright (c) DMTF (Distributed Management Task Force, Inc.).
// All rights reserved.  DMTF specifications and documents may be reproduced
// by members and non-members, provided that correct attribution is given;
// used here under those DMTF license terms.  Descriptions are shortened to
// their first sentence and MappingStrings are left out; names, types, keys,
// value maps and the other qualifiers are DMTF's.
//
// Written by mof/tools/dmtf_subset.py (see docs/schema.md).
"""


class Recorder(MOFWBEMConnection):
    """A MOF compiler handle that remembers each class as written in the MOF."""

    def __init__(self):
        super().__init__()
        self.raw = {}
        self.order = []

    def CreateClass(self, *args, **kwargs):
        cc = args[0] if args else kwargs["NewClass"]
        raw = copy.deepcopy(cc)
        super().CreateClass(*args, **kwargs)
        if cc.classname.lower() not in self.raw:
            self.order.append(cc.classname)
        self.raw[cc.classname.lower()] = raw

    def order_index(self, name: str) -> int:
        low = [c.lower() for c in self.order]
        return low.index(name.lower())


_SENTENCE_END = re.compile(r"[.!?](?=\s+[^a-z\s])")
_CLAUSE_END = re.compile(r"[.!?:;](?=\s)")


def first_sentence(text: str, limit: int = 250) -> str:
    """The first sentence of a DMTF description (or its first clause if long)."""
    text = " ".join(text.split())
    m = _SENTENCE_END.search(text)
    out = text[:m.end()] if m else text
    if len(out) > limit:
        m = _CLAUSE_END.search(out, 20)
        if m and m.start() < len(out) - 1:
            out = out[:m.start()] + "."
    return out


def trim_qualifiers(quals):
    for name in list(quals):
        q = quals[name]
        if name.lower() in DROP_QUALIFIERS:
            del quals[name]
        elif name.lower() == "description" and isinstance(q.value, str):
            q.value = first_sentence(q.value)


def trim_class(cls):
    cls = copy.deepcopy(cls)
    trim_qualifiers(cls.qualifiers)
    for p in cls.properties.values():
        trim_qualifiers(p.qualifiers)
    for m in cls.methods.values():
        trim_qualifiers(m.qualifiers)
        for prm in m.parameters.values():
            trim_qualifiers(prm.qualifiers)
    return cls


def dependencies(cls) -> set[str]:
    deps = set()
    if cls.superclass:
        deps.add(cls.superclass.lower())
    objs = list(cls.properties.values())
    for m in cls.methods.values():
        objs += list(m.parameters.values())
    for o in objs:
        if o.type == "reference" and o.reference_class:
            deps.add(o.reference_class.lower())
        ei = o.qualifiers.get("EmbeddedInstance")
        if ei is not None and ei.value:
            deps.add(ei.value.lower())
    deps.discard(cls.classname.lower())
    return deps


def used_qualifiers(classes) -> set[str]:
    used = set()
    for cls in classes:
        used.update(q.lower() for q in cls.qualifiers)
        for p in cls.properties.values():
            used.update(q.lower() for q in p.qualifiers)
        for m in cls.methods.values():
            used.update(q.lower() for q in m.qualifiers)
            for prm in m.parameters.values():
                used.update(q.lower() for q in prm.qualifiers)
    return used


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--final", required=True)
    ap.add_argument("--experimental", required=True)
    ap.add_argument("--out", default=os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cim"))
    ap.add_argument("--version", default=SCHEMA_VERSION)
    args = ap.parse_args(argv)

    handle = Recorder()
    comp = MOFCompiler(handle=handle, search_paths=[args.final, args.experimental],
                       verbose=False, log_func=lambda m: None)
    ns = "root/dmtf"
    comp.compile_file(os.path.join(args.final, "qualifiers.mof"), ns)
    comp.compile_file(os.path.join(args.final, "qualifiers_optional.mof"), ns)
    standard = set()
    with open(os.path.join(args.final, "qualifiers.mof"), encoding="utf-8") as f:
        standard = {m.lower() for m in re.findall(r"^Qualifier\s+(\w+)", f.read(), re.M)}

    experimental = set()
    for _, _, names in GROUPS:
        for name in names:
            if name.lower() in handle.raw:
                continue
            path = comp.find_mof(name)
            if path is None:
                print(f"not in the DMTF schema: {name}", file=sys.stderr)
                return 1
            comp.compile_file(path, ns)
    exp_dir = os.path.abspath(args.experimental) + os.sep
    for name in handle.order:
        if os.path.abspath(comp.find_mof(name)).startswith(exp_dir):
            experimental.add(name.lower())

    # Classes found only in the Experimental release go to their own file, so
    # that a CIM server with a Final schema can load just those.
    group_names = [g[0] for g in GROUPS] + ["experimental.mof"]
    titles = [g[1] for g in GROUPS] + [
        "Classes that the DMTF publishes only in the Experimental release"]
    exp_index = len(GROUPS)

    # Assign classes to groups: listed ones where listed, dependencies to the
    # earliest group that needs them.
    raw = handle.raw
    group_of: dict[str, int] = {}
    listed: list[str] = []
    for gi, (_, _, names) in enumerate(GROUPS):
        for name in names:
            k = name.lower()
            listed.append(k)
            group_of.setdefault(k, exp_index if k in experimental else gi)
    changed = True
    while changed:
        changed = False
        for k in [c.lower() for c in handle.order]:
            if k not in group_of:
                continue
            for dep in dependencies(raw[k]):
                want = exp_index if dep in experimental else group_of[k]
                if dep not in group_of or group_of[dep] > want:
                    group_of[dep] = want
                    changed = True
    missing = [c for c in handle.order if c.lower() not in group_of]
    assert not missing, missing
    for k, gi in group_of.items():
        for dep in dependencies(raw[k]):
            if group_of[dep] > gi:
                print(f"{k} in {group_names[gi]} depends on {dep} in a later file",
                      file=sys.stderr)
                return 1

    # Order: the listed order, each class preceded by what it depends on.
    placed: set[str] = set()
    per_group: dict[int, list[str]] = {i: [] for i in range(len(group_names))}

    def place(k: str) -> None:
        if k in placed:
            return
        placed.add(k)
        for dep in sorted(dependencies(raw[k]), key=lambda d: handle.order_index(d)):
            place(dep)
        per_group[group_of[k]].append(raw[k].classname)

    for k in listed:
        place(k)
    for c in handle.order:
        place(c.lower())
    files = [(group_names[i], titles[i], per_group[i]) for i in range(len(group_names))
             if per_group[i]]

    classes = [trim_class(raw[c.lower()]) for _, _, cs in files for c in cs]
    used = used_qualifiers(classes)
    quals = [q for q in handle.qualifiers[ns].values()
             if q.name.lower() in standard or q.name.lower() in used]

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "qualifiers.mof"), "w", encoding="utf-8") as f:
        f.write(HEADER.format(title="Qualifier declarations: the DSP0004 standard "
                              "qualifiers and the optional qualifiers the classes use",
                              version=args.version, release="Final"))
        f.write("\n")
        for q in quals:
            f.write(q.tomof())
            f.write("\n")
    count = 0
    for fname, title, ordered in files:
        with open(os.path.join(args.out, fname), "w", encoding="utf-8") as f:
            release = "Experimental" if fname == "experimental.mof" else "Final"
            f.write(HEADER.format(title=title, version=args.version, release=release))
            if fname == "experimental.mof":
                f.write("//\n// These classes carry the Experimental qualifier.  CIM servers "
                        "whose\n// schema lacks them need this file before the project's "
                        "classes.\n")
            for c in ordered:
                f.write("\n")
                f.write(trim_class(raw[c.lower()]).tomof())
                count += 1
    with open(os.path.join(args.out, "schema.mof"), "w", encoding="utf-8") as f:
        f.write(HEADER.format(title="The CIM schema subset of kvm_providers: entry file",
                              version=args.version,
                              release="Final, and Experimental for experimental.mof"))
        f.write("\n#pragma locale (\"en_US\")\n")
        f.write('#pragma include ("qualifiers.mof")\n')
        for fname, _, ordered in files:
            f.write(f'#pragma include ("{fname}")    // {len(ordered)} classes\n')
    print(f"{count} classes, {len(quals)} qualifier declarations -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
