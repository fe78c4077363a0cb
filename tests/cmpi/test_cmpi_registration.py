"""Registration files (sfcb .reg, Pegasus MOF, pycim shims) and kvm-providers-register."""

import os
import subprocess
import sys

import pytest
from pywbem import MOFCompiler, MOFWBEMConnection

from kvm_providers.registry import table
from kvm_providers.registry.files import (CMPI_LOCATION, PEGASUS_INTEROP_NS, PEGASUS_MODULE,
                                          pegasus_mof, pycim_shims, registration_files,
                                          sfcb_reg)
from kvm_providers.registry.register import flatten_mof, main

from tests.support.sfcb_stub import install_sfcb_stubs

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
    names = sorted({r.provider_name for r in regs})
    assert sorted(p["Name"] for p in peg["PG_Provider"]) == names
    assert all(p["ProviderModuleName"] == PEGASUS_MODULE for p in peg["PG_Provider"])
    caps = {c["ClassName"]: c for c in peg.get("PG_ProviderCapabilities", [])}
    assert len(caps) == len(peg.get("PG_ProviderCapabilities", [])) == len(regs)
    assert len({c["CapabilityID"] for c in caps.values()}) == len(caps)
    for r in regs:
        cap = caps[r.classname]
        assert cap["ProviderName"] == r.provider_name
        assert sorted(cap["ProviderType"]) == sorted(PEG_TYPES[t] for t in r.types)
        want_ns = list(r.namespaces)
        if table.INTEROP_NS in want_ns:
            want_ns.append(PEGASUS_INTEROP_NS)
        assert cap["Namespaces"] == want_ns
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


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A small installed tree: share/kvm-providers/{mof,registration}, for the SMALL table."""
    monkeypatch.setattr(table, "TABLE", SMALL)
    d = tmp_path / "share"
    (d / "mof" / "cim").mkdir(parents=True)
    (d / "mof" / "virt").mkdir()
    (d / "mof" / "interop").mkdir()
    (d / "mof" / "cim" / "schema.mof").write_text("class CIM_ManagedElement { };\n")
    (d / "mof" / "virt" / "virt.mof").write_text(
        '#pragma include ("cim/schema.mof")\n#pragma include ("KVM.mof")\n')
    (d / "mof" / "virt" / "KVM.mof").write_text(
        "class KVM_Thing : CIM_ManagedElement { };\nclass KVM_Other { };\n")
    (d / "mof" / "interop" / "interop.mof").write_text(
        "class KVM_RegisteredProfile : CIM_RegisteredProfile { };\n")
    (d / "registration").mkdir()
    for rel, text in registration_files(table.registrations(SMALL)).items():
        p = d / "registration" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return d


def test_flatten_mof_leaves_out_the_schema(data_dir):
    text = flatten_mof(str(data_dir / "mof" / "virt" / "virt.mof"), str(data_dir / "mof"))
    assert "class KVM_Thing" in text and "class CIM_ManagedElement" not in text
    assert "#pragma include" not in text


def run_register(*args, capsys):
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_no_cim_server_is_success(monkeypatch, capsys, data_dir):
    monkeypatch.setenv("PATH", "/nonexistent")
    rc, out = run_register("--data-dir", str(data_dir), capsys=capsys)
    assert rc == 0 and "no CIM server" in out


def test_dry_run_sfcb_prints_every_command(capsys, data_dir, tmp_path):
    work = tmp_path / "work"
    rc, out = run_register("--dry-run", "--server", "sfcb", "--data-dir", str(data_dir),
                           "--work-dir", str(work), "--pycim-dir", str(tmp_path / "pycim"),
                           capsys=capsys)
    assert rc == 0, out
    reg = str(data_dir / "registration" / "kvm_providers.reg")
    assert f"sfcbstage -n root/virt -r {reg} {work}/kvm_providers-virt.mof " \
        f"{work}/kvm_providers-interop.mof" in out
    assert f"sfcbstage -n root/interop {work}/kvm_providers-interop.mof" in out
    assert "sfcbrepos -f" in out
    assert f"write {tmp_path}/pycim/kvm_providers_thing.py" in out
    assert not work.exists() and not (tmp_path / "pycim").exists()   # nothing written
    rc, out = run_register("--dry-run", "--unregister", "--server", "sfcb", "--data-dir",
                           str(data_dir), "--work-dir", str(work), capsys=capsys)
    assert "sfcbunstage -n root/virt -r kvm_providers.reg kvm_providers-virt.mof " \
        "kvm_providers-interop.mof" in out
    assert "sfcbunstage -n root/interop kvm_providers-interop.mof" in out


def test_dry_run_pegasus_prints_every_command(capsys, data_dir, tmp_path):
    work = tmp_path / "work"
    rc, out = run_register("--dry-run", "--server", "pegasus", "--data-dir", str(data_dir),
                           "--work-dir", str(work), "--no-shims", capsys=capsys)
    assert rc == 0, out
    assert "cimmof -uc -aE -n root/virt" in out and "CIM_Schema.mof" in out
    assert f"cimmof -uc -aE -n root/virt {work}/kvm_providers-virt.mof" in out
    assert f"cimmof -uc -aE -n root/virt {work}/kvm_providers-interop.mof" in out
    assert f"cimmof -uc -aE -n root/PG_InterOp {work}/kvm_providers-interop.mof" in out
    assert f"cimprovider -r -m {PEGASUS_MODULE}" in out
    assert f"cimmof -n root/PG_InterOp {data_dir}/registration/kvm_providers.peg.mof" in out
    assert "pycim" not in out
    rc, out = run_register("--dry-run", "--unregister", "--server", "pegasus",
                           "--data-dir", str(data_dir), "--work-dir", str(work),
                           "--no-shims", capsys=capsys)
    assert f"cimprovider -r -m {PEGASUS_MODULE}" in out
    assert "cimcli dc KVM_Other -n root/virt" in out
    assert "cimcli dc KVM_RegisteredProfile -n root/PG_InterOp" in out


def test_register_with_stub_sfcb_is_idempotent(tmp_path, monkeypatch, capsys, data_dir):
    bindir, stage, log = tmp_path / "bin", tmp_path / "stage", tmp_path / "log"
    install_sfcb_stubs(bindir, log, stage)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    common = ["--data-dir", str(data_dir), "--work-dir", str(tmp_path / "work"),
              "--pycim-dir", str(tmp_path / "pycim"), "--sfcb-stage-dir", str(stage),
              "--no-restart"]
    for _ in range(2):
        rc, out = run_register(*common, capsys=capsys)
        assert rc == 0, out
        assert sorted(os.listdir(stage / "mofs" / "root" / "virt")) == [
            "kvm_providers-interop.mof", "kvm_providers-virt.mof"]
        assert os.listdir(stage / "mofs" / "root" / "interop") == ["kvm_providers-interop.mof"]
        assert os.listdir(stage / "regs") == ["kvm_providers.reg"]
        assert sorted(os.listdir(tmp_path / "pycim")) == [
            "kvm_providers_profiles.py", "kvm_providers_thing.py",
            "kvm_providers_thing_assoc.py"]
    for _ in range(2):
        rc, out = run_register("--unregister", *common, capsys=capsys)
        assert rc == 0, out
        assert os.listdir(stage / "mofs" / "root" / "virt") == []
        assert os.listdir(stage / "regs") == []
        assert os.listdir(tmp_path / "pycim") == []
    calls = log.read_text().splitlines()
    assert calls.count("sfcbrepos -f") == 3      # 2 registrations, 1 real unregistration


def test_console_script_entry():
    out = subprocess.run([sys.executable, "-m", "kvm_providers.registry.register", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--dry-run" in out and "--unregister" in out
