"""Registration files (sfcb .reg, Pegasus MOF, pycim shims) and kvm-providers-register."""

import json
import os
import subprocess
import sys

import pytest
from pywbem import MOFCompiler, MOFWBEMConnection

from kvm_providers.registry import table
from kvm_providers.registry.files import (CMPI_LOCATION, PEGASUS_INTEROP_NS, PEGASUS_MODULE,
                                          PROFILE_REGISTRATION_MODULES, pegasus_mof,
                                          pycim_shims, registration_files, sfcb_reg)
from kvm_providers.registry.mofdeps import SchemaSubset, parse_classes, schema_class_names
from kvm_providers.registry import pegasus as pegasus_registrar
from kvm_providers.registry import register
from kvm_providers.registry.register import flatten_mof, main, read_tool_default

from tests.support.pegasus_stub import install_pegasus_stubs
from tests.support.sfcb_stub import install_sfcb_stubs, repository_classes

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))

SMALL = [
    table.Entry("{P}_Thing", "thing", (table.INSTANCE, table.METHOD)),
    table.Entry("{P}_ThingAssoc", "thing_assoc", (table.ASSOCIATION, table.INSTANCE)),
    table.Entry("{P}_RegisteredProfile", "profiles", (table.INSTANCE,),
                namespaces=(table.INTEROP_NS, table.VIRT_NS)),
    table.Entry("KVM_ThingIndication", "thing", (table.INDICATION,)),
]
PEG_TYPES = {"instance": 2, "association": 3, "indication": 4, "method": 5}


def parse_reg(text: str) -> dict[str, dict[str, str]]:
    """sfcb's .reg format: [Class] sections of 'key: value' lines."""
    out: dict[str, dict[str, str]] = {}
    cur = None
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("[") and s.endswith("]"):
            cur = s[1:-1]
            assert cur not in out, f"class {cur} registered twice"
            out[cur] = {}
            continue
        key, _, value = s.partition(":")
        assert cur is not None and value, line
        out[cur][key.strip()] = value.strip()
    return out


PG_CLASSES = """
Qualifier Key : boolean = false, Scope(property, reference), Flavor(DisableOverride, ToSubclass);
class PG_ProviderModule { [Key] string Name; string Vendor; string Version;
    string InterfaceType; string InterfaceVersion; string Location; };
class PG_Provider { [Key] string ProviderModuleName; [Key] string Name; };
class PG_ProviderCapabilities { [Key] string ProviderModuleName; [Key] string ProviderName;
    [Key] string CapabilityID; string ClassName; string Namespaces[]; uint16 ProviderType[];
    string SupportedProperties[]; string SupportedMethods[]; };
class PG_ProviderProfileCapabilities { [Key] string ProviderModuleName;
    [Key] string ProviderName; [Key] string CapabilityID; uint16 RegisteredProfile;
    uint16 RegisteredSubProfiles[]; string ProfileVersion; string OtherRegisteredProfile;
    string OtherProfileOrganization; string ConformingElements[]; };
class PG_ProviderReferencedProfiles { [Key] string ProviderModuleName;
    [Key] string ProviderName; [Key] string CapabilityID; uint16 RegisteredProfiles[];
    uint16 DependentProfiles[]; string RegisteredProfileVersions[];
    string DependentProfileVersions[]; string OtherRegisteredProfiles[];
    string OtherDependentProfiles[]; string OtherRegisteredProfileOrganizations[];
    string OtherDependentProfileOrganizations[]; };
"""


def parse_pegasus(text: str):
    """Compile the registration MOF against PG_ class definitions: {class: [instances]}."""
    handle = MOFWBEMConnection()
    comp = MOFCompiler(handle=handle, verbose=False, log_func=lambda m: None)
    comp.compile_string(PG_CLASSES, PEGASUS_INTEROP_NS)
    comp.compile_string(text, PEGASUS_INTEROP_NS)
    out: dict[str, list] = {}
    for inst in handle.instances[PEGASUS_INTEROP_NS]:
        out.setdefault(inst.classname, []).append(inst)
    return out


def check_against(regs, reg_text, peg_text, shims):
    sections = parse_reg(reg_text)
    assert sorted(sections) == sorted(r.classname for r in regs), "every class once"
    for r in regs:
        sec = sections[r.classname]
        assert sec["provider"] == r.provider_name
        assert sec["location"] == CMPI_LOCATION == "py3CmpiProvider"
        assert sec["group"] == "kvm_providers"
        assert sorted(sec["type"].split()) == sorted(r.types)
        assert sec["namespace"].split() == list(r.namespaces)
    peg = parse_pegasus(peg_text)
    (module,) = peg["PG_ProviderModule"]
    assert (module["Name"], module["InterfaceType"], module["InterfaceVersion"],
            module["Location"]) == (PEGASUS_MODULE, "CMPI", "2.0.0", "py3CmpiProvider")
    # Pegasus: every class but the profile registration ones, outside the interop namespace
    peg_regs = [r for r in regs if r.short_module not in PROFILE_REGISTRATION_MODULES
                and set(r.namespaces) - {table.INTEROP_NS}]
    assert sorted(p["Name"] for p in peg["PG_Provider"]) == \
        sorted({r.provider_name for r in peg_regs})
    assert all(p["ProviderModuleName"] == PEGASUS_MODULE for p in peg["PG_Provider"])
    caps = {c["ClassName"]: c for c in peg.get("PG_ProviderCapabilities", [])}
    assert len(caps) == len(peg.get("PG_ProviderCapabilities", [])) == len(peg_regs)
    assert len({c["CapabilityID"] for c in caps.values()}) == len(caps)
    for r in peg_regs:
        cap = caps[r.classname]
        assert cap["ProviderName"] == r.provider_name
        assert sorted(cap["ProviderType"]) == sorted(PEG_TYPES[t] for t in r.types)
        assert cap["Namespaces"] == [ns for ns in r.namespaces if ns != table.INTEROP_NS]
    names = sorted({r.provider_name for r in regs})
    assert sorted(shims) == sorted(f"{n}.py" for n in names)
    for r in regs:
        text = shims[f"{r.provider_name}.py"]
        compile(text, r.provider_name, "exec")
        assert f"import_module({r.module!r})" in text


def test_small_table():
    regs = table.registrations(SMALL)
    assert len(regs) == 3 * 3 + 1
    check_against(regs, sfcb_reg(regs), pegasus_mof(regs, version="1.2.3"), pycim_shims(regs))
    files = registration_files(regs)
    assert set(files) >= {"kvm_providers.reg", "kvm_providers.peg.mof",
                          "pycim/kvm_providers_thing.py"}


def test_the_real_table():
    regs = table.registrations()
    check_against(regs, sfcb_reg(regs), pegasus_mof(regs), pycim_shims(regs))


def test_pegasus_gets_the_profiles_as_profile_capabilities():
    """Pegasus' interop provider serves CIM_RegisteredProfile (and ReferencedProfile,
    ElementConformsToProfile) itself and refuses a provider's subclass ("Class not
    supported by Interop Provider"): the registration MOF declares the profiles in
    PG_ProviderProfileCapabilities (central classes as ConformingElements) and
    PG_ProviderReferencedProfiles, and registers no class in an interop namespace."""
    from kvm_providers.virt.profiles import PROFILE_BY_ID, PROFILES
    regs = table.registrations()
    peg = parse_pegasus(pegasus_mof(regs))
    for cap in peg["PG_ProviderCapabilities"]:
        assert not {"root/interop", "root/PG_InterOp", "interop"} & set(cap["Namespaces"])
        assert not cap["ClassName"].endswith(("_RegisteredProfile", "_ReferencedProfile",
                                              "_ElementConformsToProfile")), cap["ClassName"]
    served = {c["ClassName"]: c["ProviderName"] for c in peg["PG_ProviderCapabilities"]}
    profs = {(p["OtherRegisteredProfile"], p["ProfileVersion"]): p
             for p in peg["PG_ProviderProfileCapabilities"]}
    assert len(profs) == len(peg["PG_ProviderProfileCapabilities"])   # one per profile
    assert set(profs) == {(p.name, p.version) for p in PROFILES}
    for prof in PROFILES:
        cap = profs[(prof.name, prof.version)]
        assert cap["RegisteredProfile"] == 0
        # DMTF's profiles, and the project's own snapshot profile (issue 13)
        assert cap["OtherProfileOrganization"] == (prof.other_organization or "DMTF")
        for fam in table.FAMILIES:
            assert f"{fam}_{prof.central_class}" in cap["ConformingElements"]
        # the provider named serves the conforming classes in root/virt
        assert {served[c] for c in cap["ConformingElements"]} == {cap["ProviderName"]}
    # Pegasus' cimmof types an empty array "{}" like the literal parsed before it: the
    # uint16 RegisteredSubProfiles (Required: NULL fails) must follow an integer
    text = pegasus_mof(regs)
    assert text.count("RegisteredSubProfiles = {};") == len(profs)
    assert text.count("RegisteredProfile = 0;   // Other\n    RegisteredSubProfiles = {};") \
        == len(profs)
    for prof in PROFILES:
        assert profs[(prof.name, prof.version)]["RegisteredSubProfiles"] == []
    (refs,) = peg["PG_ProviderReferencedProfiles"]
    pairs = set(zip(refs["OtherRegisteredProfiles"], refs["RegisteredProfileVersions"],
                    refs["OtherDependentProfiles"], refs["DependentProfileVersions"],
                    strict=True))
    want = set()
    for p in PROFILES:
        if p.scoping:
            s = PROFILE_BY_ID[p.scoping]
            want.add((p.name, p.version, s.name, s.version))
    assert pairs == want and len(refs["RegisteredProfiles"]) == len(want)
    assert refs["RegisteredProfiles"] == refs["DependentProfiles"] == [0] * len(want)


def test_committed_registration_files_are_current():
    files = registration_files()
    for rel, text in files.items():
        path = os.path.join(TOP, "registration", rel)
        with open(path, encoding="utf-8") as f:
            assert f.read() == text, f"registration/{rel} is stale: run `make generate`"
    extra = sorted(set(f"pycim/{n}" for n in os.listdir(os.path.join(TOP, "registration",
                                                                       "pycim")))
                   - set(files) - {"pycim/__pycache__"})
    assert extra == [], f"registration/{extra} belong to no provider of the table: remove them"


def test_shim_forwards_to_the_module(tmp_path, monkeypatch):
    mod = tmp_path / "shimtarget.py"
    mod.write_text("def get_providers(env):\n    return {'X': env}\n"
                   "def can_unload(env):\n    return False\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from kvm_providers.registry.files import shim_source
    shim = tmp_path / "kvm_providers_shimtarget.py"
    shim.write_text(shim_source("kvm_providers_shimtarget", "shimtarget"))
    from kvm_providers.provider import load_provider_module
    loaded = load_provider_module(str(shim))
    assert loaded.get_providers(1) == {"X": 1}
    assert loaded.can_unload(None) is False
    assert getattr(loaded, "shutdown", None) is None


# -- flattening and the register command --------------------------------------------

SUBSET = {
    "schema.mof": '#pragma include ("qualifiers.mof")\n#pragma include ("core.mof")\n'
                  '#pragma include ("experimental.mof")\n',
    "qualifiers.mof": "Qualifier Key : boolean = false, Scope(property, reference);\n"
                      "Qualifier Experimental : boolean = false, Scope(any);\n",
    "core.mof": """// DMTF subset: Final classes
   [Abstract, Description ( "root" )]
class CIM_ManagedElement {
      [Key] string InstanceID;
};

class CIM_RegisteredProfile : CIM_ManagedElement {
   string RegisteredName;
};

   [Association]
class CIM_Dependency {
   CIM_ManagedElement REF Antecedent;
   CIM_ManagedElement REF Dependent;
};
""",
    "experimental.mof": """// DMTF subset: Experimental classes
   [Experimental ( true ), Description ( "a class not in the DMTF Final schema" )]
class CIM_Migration : CIM_ManagedElement {
   uint32 Migrate(CIM_ManagedElement REF Target);
};

   [Association, Experimental ( true )]
class CIM_MigrationDependency : CIM_Dependency {
   CIM_Migration REF Antecedent;
   CIM_ManagedElement REF Dependent;
};
""",
}
# the CIM server's own schema (DMTF zip layout): the Final classes only
SERVER_SCHEMA = {
    "CIM_Schema.mof": '#pragma include ("DMTF/Core/CIM_ManagedElement.mof")\n'
                      '#pragma include ("DMTF/Interop/CIM_RegisteredProfile.mof")\n'
                      '#pragma include ("DMTF/Core/CIM_Dependency.mof")\n',
    "DMTF/Core/CIM_ManagedElement.mof": "class CIM_ManagedElement {\n   string X;\n};\n",
    "DMTF/Interop/CIM_RegisteredProfile.mof":
        "class CIM_RegisteredProfile : CIM_ManagedElement {\n};\n",
    "DMTF/Core/CIM_Dependency.mof":
        "   [Association]\nclass CIM_Dependency {\n   CIM_ManagedElement REF Antecedent;\n"
        "   CIM_ManagedElement REF Dependent;\n};\n",
}


def write_tree(top, files):
    for rel, text in files.items():
        p = top / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A small installed tree: share/kvm-providers/{mof,registration}, for the SMALL table:
    KVM_Thing derives from CIM_Migration, which only the Experimental schema has."""
    monkeypatch.setattr(table, "TABLE", SMALL)
    d = tmp_path / "share"
    write_tree(d / "mof" / "cim", SUBSET)
    write_tree(d / "mof" / "virt", {
        "virt.mof": '#pragma include ("cim/schema.mof")\n#pragma include ("KVM.mof")\n',
        "KVM.mof": "class KVM_Thing : CIM_Migration { };\nclass KVM_Other { };\n"
                   "   [Association]\nclass KVM_ThingAssoc : CIM_MigrationDependency {\n"
                   "   KVM_Thing REF Antecedent;\n};\n"})
    write_tree(d / "mof" / "interop", {
        "interop.mof": "class KVM_RegisteredProfile : CIM_RegisteredProfile { };\n"})
    for rel, text in registration_files(table.registrations(SMALL)).items():
        write_tree(d / "registration", {rel: text})
    # hosts of every family (whatever this machine's kvm-providers.conf says): all registered
    conf = tmp_path / "kvm-providers.conf"
    conf.write_text("".join(f'[[host]]\nuri = "{u}"\n'
                            for u in ("qemu:///system", "lxc:///", "xen:///")))
    monkeypatch.setenv("KVM_PROVIDERS_CONFIG", str(conf))
    return d


@pytest.fixture
def sfcb(tmp_path, monkeypatch):
    """Stand-in sfcb tools on PATH, sfcb's schema in the DMTF layout."""
    root = tmp_path / "sfcb"
    bindir, stage, log = root / "bin", root / "stage", root / "log"
    write_tree(root / "CIM", SERVER_SCHEMA)
    install_sfcb_stubs(bindir, log, stage)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    return root


def test_flatten_mof_leaves_out_the_schema(data_dir):
    text = flatten_mof(str(data_dir / "mof" / "virt" / "virt.mof"), str(data_dir / "mof"))
    assert "class KVM_Thing" in text and "class CIM_ManagedElement" not in text
    assert "#pragma include" not in text


def test_schema_classes_and_what_is_missing(data_dir, tmp_path):
    write_tree(tmp_path / "srv", SERVER_SCHEMA)
    have = schema_class_names(str(tmp_path / "srv" / "CIM_Schema.mof"))
    assert have == {"cim_managedelement", "cim_registeredprofile", "cim_dependency"}
    own = parse_classes(flatten_mof(str(data_dir / "mof" / "virt" / "virt.mof"),
                                    str(data_dir / "mof")))
    assert [(c.name, c.superclass) for c in own] == [
        ("KVM_Thing", "CIM_Migration"), ("KVM_Other", None),
        ("KVM_ThingAssoc", "CIM_MigrationDependency")]
    subset = SchemaSubset(str(data_dir / "mof" / "cim"))
    missing = subset.missing(own, have)
    # the superclasses the server lacks, every class after what it needs
    assert [c.name for c in missing] == ["CIM_Migration", "CIM_MigrationDependency"]
    assert "   [Experimental ( true )" in missing[0].text
    assert "class CIM_Migration : CIM_ManagedElement {" in missing[0].text
    assert missing[0].text.rstrip().endswith("};")
    assert [c.name for c in subset.missing(own, have | {"cim_migration"})] == \
        ["CIM_MigrationDependency"]
    assert [c.name for c in subset.missing(own, set())] == [
        "CIM_ManagedElement", "CIM_Migration", "CIM_Dependency", "CIM_MigrationDependency"]


def test_the_projects_classes_need_only_the_experimental_ones_from_a_final_schema(tmp_path):
    """The real MOF against the DMTF 2.41 Final schema's class list: what is missing is
    exactly what the issue found missing (the Experimental classes)."""
    from kvm_providers.registry.register import Registrar
    reg = Registrar(TOP)
    own = parse_classes(reg.own_mof("virt") + reg.own_mof("interop"))
    subset = reg.subset()
    every = {c.lower() for c in subset.classes}
    experimental = {n for n, c in subset.classes.items() if "Experimental" in c.text}
    assert {c.name for c in subset.missing(own, every - experimental)} == {
        "CIM_VirtualSystemMigrationService", "CIM_VirtualSystemMigrationCapabilities",
        "CIM_MostCurrentSnapshotInBranch"}
    assert subset.missing(own, every) == []


def run_register(*args, capsys):
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out + out.err


def sfcb_args(tmp_path, data_dir):
    return ["--server", "sfcb", "--data-dir", str(data_dir), "--work-dir",
            str(tmp_path / "work"), "--pycim-dir", str(tmp_path / "pycim"),
            "--state-file", str(tmp_path / "state.json"), "--no-restart"]


def tree(path):
    """{relative path: bytes} of every file under path."""
    out = {}
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = f.read()
    return out


def read_log(root):
    log = root / "log"
    return log.read_text().splitlines() if log.exists() else []


def test_no_cim_server_is_success(monkeypatch, capsys, data_dir):
    monkeypatch.setenv("PATH", "/nonexistent")
    rc, out = run_register("--data-dir", str(data_dir), capsys=capsys)
    assert rc == 0 and "no CIM server" in out


def test_dry_run_sfcb_prints_every_command(capsys, data_dir, tmp_path, sfcb):
    rc, out = run_register("--dry-run", *sfcb_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 0, out
    work, stage = tmp_path / "work" / "sfcb", sfcb / "stage"
    reg = str(data_dir / "registration" / "kvm_providers.reg")
    assert f"sfcbstage -n root/virt -s {stage} -r {reg} {work}/root/virt/kvm_providers-virt.mof" \
        f" {work}/root/virt/kvm_providers-interop.mof " \
        f"{work}/root/virt/kvm_providers-schema.mof" in out
    assert f"sfcbstage -n root/interop -s {stage} " \
        f"{work}/root/interop/kvm_providers-interop.mof\n" in out
    assert "sfcbrepos -f" in out
    assert f"write {tmp_path}/pycim/kvm_providers_thing.py" in out
    assert not (tmp_path / "work").exists() and not (tmp_path / "pycim").exists()
    assert not (tmp_path / "state.json").exists()
    rc, out = run_register("--dry-run", "--unregister", *sfcb_args(tmp_path, data_dir),
                           capsys=capsys)
    assert f"sfcbunstage -n root/interop -s {stage} -r kvm_providers.reg " \
        "kvm_providers-interop.mof" in out
    assert f"sfcbunstage -n root/virt -s {stage} kvm_providers-interop.mof " \
        "kvm_providers-virt.mof" in out
    assert read_log(sfcb) == []


def test_sfcb_registration_adds_the_superclasses_the_schema_lacks(tmp_path, capsys, data_dir,
                                                                   sfcb):
    """sfcbrepos compiles every staged namespace against sfcb's CIM_Schema.mof: the
    classes the project derives from that only the Experimental schema has are staged
    from the project's subset, only for the namespace that needs them, and only those."""
    rc, out = run_register(*sfcb_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 0, out
    virt = repository_classes(sfcb / "registration", "root/virt")
    interop = repository_classes(sfcb / "registration", "root/interop")
    assert sorted(virt) == sorted(["CIM_ManagedElement", "CIM_RegisteredProfile",
                                   "CIM_Dependency", "CIM_Migration",
                                   "CIM_MigrationDependency", "KVM_Thing", "KVM_Other",
                                   "KVM_ThingAssoc", "KVM_RegisteredProfile"])
    assert sorted(interop) == sorted(["CIM_ManagedElement", "CIM_RegisteredProfile",
                                      "CIM_Dependency", "KVM_RegisteredProfile"])
    assert "[KVM_Thing]" in (sfcb / "registration" / "providerRegister").read_text()


def test_sfcb_schema_with_the_classes_gets_none_twice(tmp_path, capsys, data_dir, sfcb):
    """A schema that has the Experimental classes (or another package that staged
    them) gets none of them again: sfcbmof refuses a redefinition."""
    (sfcb / "CIM" / "CIM_Schema.mof").write_text(
        (sfcb / "CIM" / "CIM_Schema.mof").read_text() +
        '#pragma include ("DMTF/Exp.mof")\n')
    (sfcb / "CIM" / "DMTF" / "Exp.mof").write_text(
        "class CIM_Migration : CIM_ManagedElement {\n};\n")
    (sfcb / "stage" / "mofs" / "root" / "virt").mkdir(parents=True)
    (sfcb / "stage" / "mofs" / "root" / "virt" / "other.mof").write_text(
        "   [Association]\nclass CIM_MigrationDependency : CIM_Dependency {\n};\n")
    rc, out = run_register(*sfcb_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 0, out
    assert sorted(os.listdir(sfcb / "stage" / "mofs" / "root" / "virt")) == [
        "kvm_providers-interop.mof", "kvm_providers-virt.mof", "other.mof"]


def test_sfcb_register_is_idempotent_and_unregister_leaves_sfcb_as_before(
        tmp_path, capsys, data_dir, sfcb):
    args = sfcb_args(tmp_path, data_dir)
    # the package ships two of the shims itself: they are not the tool's to remove
    pycim = tmp_path / "pycim"
    pycim.mkdir()
    shipped = pycim_shims(table.registrations(SMALL))
    for name in ("kvm_providers_thing.py", "kvm_providers_profiles.py"):
        (pycim / name).write_text(shipped[name])
    (pycim / "other_vendor.py").write_text("# someone else's provider\n")
    before = tree(sfcb / "stage")
    for _ in range(2):
        rc, out = run_register(*args, capsys=capsys)
        assert rc == 0, out
        assert sorted(os.listdir(sfcb / "stage" / "mofs" / "root" / "virt")) == [
            "kvm_providers-interop.mof", "kvm_providers-schema.mof", "kvm_providers-virt.mof"]
        assert os.listdir(sfcb / "stage" / "mofs" / "root" / "interop") == [
            "kvm_providers-interop.mof"]
        assert os.listdir(sfcb / "stage" / "regs") == ["kvm_providers.reg"]
        assert sorted(os.listdir(pycim)) == [
            "kvm_providers_profiles.py", "kvm_providers_thing.py",
            "kvm_providers_thing_assoc.py", "other_vendor.py"]
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["sfcb"]["shims"] == [str(pycim / "kvm_providers_thing_assoc.py")]
    for _ in range(2):
        rc, out = run_register("--unregister", *args, capsys=capsys)
        assert rc == 0, out
        assert tree(sfcb / "stage") == before
        assert repository_classes(sfcb / "registration", "root/virt") == []
        assert sorted(os.listdir(pycim)) == [
            "kvm_providers_profiles.py", "kvm_providers_thing.py", "other_vendor.py"]
        assert not (tmp_path / "state.json").exists()
        assert not (tmp_path / "work").exists()
    calls = read_log(sfcb)
    # the second registration found the staged one current: no rebuild (nor restart)
    assert sum(c.startswith("sfcbrepos -f -s ") for c in calls) == 2   # 1 registration, 1 removal
    assert sum(c.startswith("sfcbstage") for c in calls) == 2          # root/virt, root/interop


def test_sfcb_upgrade_restages_what_changed(tmp_path, capsys, data_dir, sfcb):
    args = sfcb_args(tmp_path, data_dir)
    assert run_register(*args, capsys=capsys)[0] == 0
    with open(data_dir / "mof" / "virt" / "KVM.mof", "a") as f:
        f.write("class KVM_New : KVM_Other { };\n")
    assert run_register(*args, capsys=capsys)[0] == 0
    assert "KVM_New" in repository_classes(sfcb / "registration", "root/virt")
    assert sum(c.startswith("sfcbrepos -f -s ") for c in read_log(sfcb)) == 2


def test_sfcb_failed_registration_is_rolled_back(tmp_path, capsys, data_dir, sfcb):
    """sfcbrepos failing (here: a class nobody defines) puts the staging area back as it
    was and rebuilds the repository from it; a retry fails the same way."""
    (sfcb / "stage" / "mofs" / "root" / "virt").mkdir(parents=True)
    (sfcb / "stage" / "mofs" / "root" / "virt" / "other.mof").write_text(
        "class Other_Thing : CIM_ManagedElement {\n};\n")
    with open(data_dir / "mof" / "virt" / "KVM.mof", "a") as f:
        f.write("class KVM_Broken : CIM_Nowhere { };\n")
    before = tree(sfcb / "stage")
    for _ in range(2):
        rc, out = run_register(*sfcb_args(tmp_path, data_dir), capsys=capsys)
        assert rc == 1
        assert "CIM_Nowhere was referenced but never defined" in out, out
        assert "staging area is back as it was" in out
        assert tree(sfcb / "stage") == before
        assert repository_classes(sfcb / "registration", "root/virt") == [
            "CIM_ManagedElement", "CIM_RegisteredProfile", "CIM_Dependency", "Other_Thing"]
        assert not (tmp_path / "state.json").exists()
        assert not (tmp_path / "pycim").exists()


def test_sfcb_failed_unregistration_fails_loudly(tmp_path, capsys, data_dir, sfcb):
    args = sfcb_args(tmp_path, data_dir)
    assert run_register(*args, capsys=capsys)[0] == 0
    registered = tree(sfcb / "stage")
    os.rename(sfcb / "CIM" / "CIM_Schema.mof", sfcb / "CIM" / "moved.mof")
    rc, out = run_register("--unregister", *args, capsys=capsys)
    assert rc == 1 and "unregistering failed" in out and "unregistered" not in out
    assert tree(sfcb / "stage") == registered          # still registered, as it was
    assert (tmp_path / "state.json").exists()
    os.rename(sfcb / "CIM" / "moved.mof", sfcb / "CIM" / "CIM_Schema.mof")
    rc, out = run_register("--unregister", *args, capsys=capsys)
    assert rc == 0, out
    assert not os.listdir(sfcb / "stage" / "mofs" / "root" / "virt")


def test_sfcb_unregister_without_state_file_removes_an_older_registration(
        tmp_path, capsys, data_dir, sfcb):
    """A registration by an older kvm-providers (no state file) is found by its files."""
    stage = sfcb / "stage"
    for ns in ("root/virt", "root/interop"):
        (stage / "mofs" / ns).mkdir(parents=True)
        (stage / "mofs" / ns / "kvm_providers-interop.mof").write_text(
            "class KVM_RegisteredProfile : CIM_RegisteredProfile { };\n")
    (stage / "regs").mkdir()
    (stage / "regs" / "kvm_providers.reg").write_text("[KVM_Thing]\n")
    rc, out = run_register("--unregister", *sfcb_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 0, out
    assert tree(stage / "mofs") == {} and tree(stage / "regs") == {}


def test_sfcb_paths_come_from_the_installed_tools(tmp_path, data_dir, sfcb):
    assert read_tool_default("sfcbstage", "stagingdir") == str(sfcb / "stage")
    assert read_tool_default("sfcbrepos", "cimschemadir") == str(sfcb / "CIM")


def test_sfcb_without_schema_says_where_it_is_wanted(tmp_path, capsys, data_dir, sfcb):
    os.unlink(sfcb / "CIM" / "CIM_Schema.mof")
    rc, out = run_register(*sfcb_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 1 and f"{sfcb}/CIM/CIM_Schema.mof is missing" in out
    assert not (sfcb / "stage" / "regs").exists()


# -- Pegasus -----------------------------------------------------------------------------

PEG_SCHEMA = (("CIM_ManagedElement", None), ("CIM_RegisteredProfile", "CIM_ManagedElement"),
              ("CIM_Dependency", None))


@pytest.fixture
def pegasus(tmp_path, monkeypatch, request):
    """Stand-in Pegasus tools on PATH; the interop namespace as the build names it."""
    interop = getattr(request, "param", "root/PG_InterOp")
    root = tmp_path / "pegasus"
    repo = install_pegasus_stubs(root / "bin", root / "log", root, interop=interop,
                                 schema=PEG_SCHEMA)
    monkeypatch.setenv("PATH", f"{root / 'bin'}:/usr/bin:/bin")
    # the stand-in is the only Pegasus: not a real one's schema (installed, or the
    # PEGASUS_ROOT of a cimserver running on this machine)
    monkeypatch.delenv("PEGASUS_ROOT", raising=False)
    monkeypatch.setattr(pegasus_registrar, "PEGASUS_SCHEMA_GLOBS", [])
    monkeypatch.setattr(register.Registrar, "_cimserver_env", staticmethod(lambda name: []))
    repo.interop = interop
    repo.root = root
    return repo


def peg_args(tmp_path, data_dir, *extra):
    return ["--server", "pegasus", "--data-dir", str(data_dir), "--work-dir",
            str(tmp_path / "work"), "--no-shims", "--state-file",
            str(tmp_path / "state.json"), *extra]


def peg_snapshot(repo):
    data = repo.data()
    return ({ns: repo.classes(ns) for ns in repo.namespaces()}, dict(repo.modules()),
            {ns: sorted(q) for ns, q in data["quals"].items() if q})


@pytest.mark.parametrize("pegasus", ["root/PG_InterOp", "root/interop"], indirect=True)
def test_pegasus_register_and_unregister(tmp_path, capsys, data_dir, pegasus):
    """The interop namespace is the running server's (no root/PG_InterOp made on a
    root/interop build); root/virt is created with the classes kvm_providers needs,
    the Experimental superclasses included; unregistering removes it again."""
    before = peg_snapshot(pegasus)
    for _ in range(2):
        rc, out = run_register(*peg_args(tmp_path, data_dir), capsys=capsys)
        assert rc == 0, out
        assert sorted(pegasus.namespaces()) == sorted([pegasus.interop, "root/cimv2",
                                                       "root/virt"])
        # (the subset's qualifier declarations first: cimmof needs them)
        assert "Key" in pegasus.data()["quals"]["root/virt"]
        assert pegasus.classes("root/virt") == {
            "CIM_ManagedElement", "CIM_RegisteredProfile", "CIM_Dependency", "CIM_Migration",
            "CIM_MigrationDependency", "KVM_Thing", "KVM_Other", "KVM_ThingAssoc",
            "KVM_RegisteredProfile"}
        assert pegasus.modules()[PEGASUS_MODULE]["ns"] == pegasus.interop
    calls = (pegasus.root / "log").read_text().splitlines()
    assert sum(c.startswith("cimprovider -r") for c in calls) == 0   # current: left alone
    for _ in range(2):
        rc, out = run_register("--unregister", *peg_args(tmp_path, data_dir), capsys=capsys)
        assert rc == 0, out
        assert peg_snapshot(pegasus) == before
        assert not (tmp_path / "state.json").exists()
        assert not (tmp_path / "work").exists()


def test_pegasus_register_in_existing_namespace_with_its_schema(tmp_path, capsys, data_dir,
                                                                 pegasus):
    """root/virt made with the server's schema file; the classes that schema lacks come
    from the subset; unregistering deletes what registration created, namespace too."""
    schema = tmp_path / "CIM241" / "CIM_Schema.mof"
    schema.parent.mkdir()
    schema.write_text("".join(f"class {c}" + (f" : {s}" if s else "") + " {\n};\n"
                              for c, s in PEG_SCHEMA))
    before = peg_snapshot(pegasus)
    rc, out = run_register(*peg_args(tmp_path, data_dir, "--cim-schema", str(schema)),
                           capsys=capsys)
    assert rc == 0, out
    log = (pegasus.root / "log").read_text()
    assert f"cimmof -uc -aE -n root/virt -I{schema.parent} {schema}" in log
    assert "kvm_providers-schema.mof" in log
    assert {"CIM_Migration", "KVM_Thing"} <= pegasus.classes("root/virt")
    rc, out = run_register("--unregister", *peg_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 0, out
    assert peg_snapshot(pegasus) == before


def test_pegasus_schema_is_the_newest_final_one(tmp_path, capsys, data_dir, pegasus,
                                               monkeypatch):
    """OpenPegasus keeps several schemas (CIM2131 is 2.13.1, CIM241 2.41, and the
    Experimental one): root/virt gets the newest Final one; deleting the namespace
    takes associations before the classes they refer to."""
    root = tmp_path / "pegasus-src"
    for name in ("CIM2131", "CIM241", "CIMExperimental241", "CIM29"):
        (root / "Schemas" / name).mkdir(parents=True)
        (root / "Schemas" / name / "CIM_Schema.mof").write_text(
            "Qualifier Association : boolean = false, Scope(association);\n"
            "class CIM_ManagedElement {\n};\n   [Association]\nclass CIM_Dependency {\n"
            "   CIM_ManagedElement REF Antecedent;\n   CIM_ManagedElement REF Dependent;\n};\n"
            "class CIM_RegisteredProfile : CIM_ManagedElement {\n};\n"
            "class CIM_Other : CIM_ManagedElement {\n};\n"
            "   [Association]\nclass CIM_Zzz {\n   CIM_Other REF A;\n};\n")
    monkeypatch.setenv("PEGASUS_ROOT", str(root))
    before = peg_snapshot(pegasus)
    rc, out = run_register(*peg_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 0, out
    log = (pegasus.root / "log").read_text()
    assert f"-I{root}/Schemas/CIM241 {root}/Schemas/CIM241/CIM_Schema.mof" in log
    assert "CIM_Zzz" in pegasus.classes("root/virt")
    assert pegasus.data()["quals"]["root/virt"] == ["Association"]
    rc, out = run_register("--unregister", *peg_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 0, out
    assert peg_snapshot(pegasus) == before


def test_pegasus_unregister_removes_an_older_registration(tmp_path, capsys, data_dir,
                                                           pegasus):
    """An older version (no state file) compiled the profile classes into the interop
    namespace too and registered the module: all of it goes."""
    before = peg_snapshot(pegasus)
    mof = tmp_path / "old.mof"
    mof.write_text("class CIM_ManagedElement {\n};\nclass CIM_RegisteredProfile : "
                   "CIM_ManagedElement {\n};\nclass CIM_Migration : CIM_ManagedElement {\n};\n"
                   "class KVM_Thing : CIM_Migration {\n};\nclass KVM_Other {\n};\n"
                   "class KVM_RegisteredProfile : CIM_RegisteredProfile {\n};\n")
    subprocess.run(["cimmof", "-n", "root/virt", str(mof)], check=True)
    prof = tmp_path / "prof.mof"
    prof.write_text("class CIM_ManagedElement {\n};\nclass CIM_RegisteredProfile : "
                    "CIM_ManagedElement {\n};\n"
                    "class KVM_RegisteredProfile : CIM_RegisteredProfile {\n};\n")
    subprocess.run(["cimmof", "-uc", "-n", pegasus.interop, str(prof)], check=True)
    subprocess.run(["cimmof", "-n", pegasus.interop,
                    str(data_dir / "registration" / "kvm_providers.peg.mof")], check=True)
    rc, out = run_register("--unregister", *peg_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 0, out
    assert PEGASUS_MODULE not in pegasus.modules()
    assert "KVM_RegisteredProfile" not in pegasus.classes(pegasus.interop)
    assert not {"KVM_Thing", "KVM_Other", "KVM_RegisteredProfile"} & \
        pegasus.classes("root/virt")
    assert pegasus.classes(pegasus.interop) == before[0][pegasus.interop] | {
        "CIM_ManagedElement", "CIM_RegisteredProfile"}


def test_pegasus_keeps_a_namespace_it_did_not_create(tmp_path, capsys, data_dir, pegasus):
    state = peg_args(tmp_path, data_dir)
    # root/virt exists (another product's), with CIM_Migration already
    schema = tmp_path / "s.mof"
    schema.write_text("class CIM_ManagedElement {\n};\nclass CIM_Dependency {\n};\n"
                      "class CIM_RegisteredProfile : CIM_ManagedElement {\n};\n"
                      "class CIM_Migration : CIM_ManagedElement {\n};\n"
                      "class Other_Class : CIM_ManagedElement {\n};\n")
    subprocess.run(["cimmof", "-n", "root/virt", str(schema)], check=True)
    before = peg_snapshot(pegasus)
    rc, out = run_register(*state, capsys=capsys)
    assert rc == 0, out
    assert "CIM_MigrationDependency" in pegasus.classes("root/virt")
    rc, out = run_register("--unregister", *state, capsys=capsys)
    assert rc == 0, out
    assert peg_snapshot(pegasus) == before


def test_pegasus_failed_registration_is_rolled_back(tmp_path, capsys, data_dir, pegasus):
    """The provider registration failing undoes the classes and the namespace this run
    made; a retry behaves the same; on upgrade the previous registration comes back."""
    before = peg_snapshot(pegasus)
    pegasus.fail_on("kvm_providers.peg.mof")
    for _ in range(2):
        rc, out = run_register(*peg_args(tmp_path, data_dir), capsys=capsys)
        assert rc == 1 and "injected failure" in out and "has been undone" in out, out
        assert peg_snapshot(pegasus) == before
        assert not (tmp_path / "state.json").exists()
    pegasus.fail_on(None)
    assert run_register(*peg_args(tmp_path, data_dir), capsys=capsys)[0] == 0
    registered = peg_snapshot(pegasus)
    # an upgrade (new class, new registration) whose registration fails: the old is back
    with open(data_dir / "mof" / "virt" / "KVM.mof", "a") as f:
        f.write("class KVM_New : KVM_Other { };\n")
    copy = tmp_path / "work" / "pegasus" / "kvm_providers.peg.mof"
    copy.write_text(copy.read_text() + "// older\n")
    pegasus.fail_on("kvm_providers.peg.mof.new")
    rc, out = run_register(*peg_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 1, out
    assert peg_snapshot(pegasus) == registered
    pegasus.fail_on(None)


def test_pegasus_not_running_says_start_it(tmp_path, capsys, data_dir, pegasus):
    pegasus.set_down(True)
    rc, out = run_register(*peg_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 1 and "start cimserver" in out and "does not answer" in out
    # nothing registered: removing the package is not blocked
    assert run_register("--unregister", *peg_args(tmp_path, data_dir), capsys=capsys)[0] == 0
    pegasus.set_down(False)
    assert run_register(*peg_args(tmp_path, data_dir), capsys=capsys)[0] == 0
    pegasus.set_down(True)
    # registered: unregistering needs the server, and says so
    rc, out = run_register("--unregister", *peg_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 1 and "start cimserver" in out
    assert (tmp_path / "state.json").exists()


def test_pegasus_agent_dying_on_module_removal(tmp_path, capsys, data_dir, pegasus):
    """OpenPegasus 2.14 + cmpi-bindings: stopping the module can kill its provider agent
    ("Lost connection with cimprovagt"); the module is stopped then and removing it again
    works: unregistering and re-registering (upgrade) go through."""
    assert run_register(*peg_args(tmp_path, data_dir), capsys=capsys)[0] == 0
    with open(data_dir / "mof" / "virt" / "KVM.mof", "a") as f:
        f.write("class KVM_New : KVM_Other { };\n")
    (tmp_path / "work" / "pegasus" / "kvm_providers.peg.mof").write_text("// older\n")
    pegasus.agent_crashes()
    rc, out = run_register(*peg_args(tmp_path, data_dir), capsys=capsys)   # upgrade
    assert rc == 0, out
    assert PEGASUS_MODULE in pegasus.modules()
    pegasus.agent_crashes()
    rc, out = run_register("--unregister", *peg_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 0, out
    assert pegasus.modules() == {} and "root/virt" not in pegasus.namespaces()


def test_pegasus_failed_module_removal_fails_loudly(tmp_path, capsys, data_dir, pegasus):
    """A cimprovider -r that fails is an error, and the classes stay (the providers
    would be left without them)."""
    assert run_register(*peg_args(tmp_path, data_dir), capsys=capsys)[0] == 0
    registered = peg_snapshot(pegasus)
    cimprovider = pegasus.root / "bin" / "cimprovider"
    text = cimprovider.read_text()
    cimprovider.write_text(text.replace('    if "-r" in args:\n',
                                        '    if "-r" in args:\n        sys.exit(4)\n'))
    rc, out = run_register("--unregister", *peg_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 1 and "nothing else was removed" in out
    assert peg_snapshot(pegasus) == registered
    cimprovider.write_text(text)
    assert run_register("--unregister", *peg_args(tmp_path, data_dir), capsys=capsys)[0] == 0


def test_dry_run_pegasus_prints_every_command(capsys, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    work = tmp_path / "work" / "pegasus"
    rc, out = run_register("--dry-run", *peg_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 0, out
    assert f"cimmof -uc -aE -n root/virt {work}/root_virt-kvm_providers-virt.mof" in out
    assert f"cimmof -n root/PG_InterOp {work}/kvm_providers.peg.mof.new" in out
    assert "pycim" not in out
    rc, out = run_register("--dry-run", "--unregister", *peg_args(tmp_path, data_dir),
                           capsys=capsys)
    assert f"cimprovider -r -m {PEGASUS_MODULE}" in out
    assert "cimcli dc KVM_Other -n root/virt" in out


def test_console_script_entry():
    out = subprocess.run([sys.executable, "-m", "kvm_providers.registry.register", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--dry-run" in out and "--unregister" in out
