"""kvm-providers-register keeps the provider module group an administrator gave OpenPegasus.

``cimprovider -g CIMServer -m kvm_providers_Module`` makes OpenPegasus load the providers
into cimserver's own process instead of a provider agent (docs/cmpi.md, "OpenPegasus: the
providers in cimserver's own process"). Registering again -- every upgrade does: the
registration names the package's version -- deletes the module and compiles it anew; on
OpenPegasus 2.14.4 that dropped the group, and the providers went back to an agent. Now the
group is read before and written into the new registration. The stand-in tools model what
2.14.4 does (tests/support/pegasus_stub.py: ``cimprovider -g``, ``cimcli gi`` of the module,
cimmof taking ModuleGroupName from the registration).
"""

import subprocess

from kvm_providers.registry.files import PEGASUS_MODULE, pegasus_mof

from tests.cmpi import test_cmpi_registration as registration
from tests.cmpi.test_cmpi_registration import peg_args, run_register

# the fixtures of the registration tests: a small installed tree, stand-in Pegasus
data_dir = registration.data_dir
pegasus = registration.pegasus


def set_group(pegasus, group):
    """What the administrator runs: ``cimprovider -g GROUP -m kvm_providers_Module``."""
    subprocess.run([str(pegasus.root / "bin" / "cimprovider"), "-g", group, "-m",
                    PEGASUS_MODULE], check=True, capture_output=True)


def older_registration(tmp_path):
    """The registration recorded as made by an older version: the next run is an upgrade."""
    copy = tmp_path / "work" / "pegasus" / "kvm_providers.peg.mof"
    copy.write_text(copy.read_text().replace('Version = "', 'Version = "0.0.'))


def removals(pegasus):
    return sum(c.startswith("cimprovider -r") for c in
               (pegasus.root / "log").read_text().splitlines())


def test_the_package_registers_no_group(tmp_path, capsys, data_dir, pegasus):
    assert run_register(*peg_args(tmp_path, data_dir), capsys=capsys)[0] == 0
    assert pegasus.modules()[PEGASUS_MODULE]["group"] is None
    copy = tmp_path / "work" / "pegasus" / "kvm_providers.peg.mof"
    assert "ModuleGroupName" not in copy.read_text()
    assert "ModuleGroupName" not in pegasus_mof()


def test_a_group_set_by_the_administrator_survives_an_upgrade(tmp_path, capsys, data_dir,
                                                             pegasus):
    assert run_register(*peg_args(tmp_path, data_dir), capsys=capsys)[0] == 0
    set_group(pegasus, "CIMServer")
    older_registration(tmp_path)
    rc, out = run_register(*peg_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 0, out
    assert removals(pegasus) == 1                       # the module was made anew ...
    assert pegasus.modules()[PEGASUS_MODULE]["group"] == "CIMServer"     # ... in its group
    copy = tmp_path / "work" / "pegasus" / "kvm_providers.peg.mof"
    assert '    ModuleGroupName = "CIMServer";\n' in copy.read_text()
    # current now: left alone
    assert run_register(*peg_args(tmp_path, data_dir), capsys=capsys)[0] == 0
    assert removals(pegasus) == 1
    # the group removed by the administrator (cimprovider -g ""): the next upgrade has none
    set_group(pegasus, "")
    older_registration(tmp_path)
    assert run_register(*peg_args(tmp_path, data_dir), capsys=capsys)[0] == 0
    assert removals(pegasus) == 2
    assert pegasus.modules()[PEGASUS_MODULE]["group"] is None
    assert "ModuleGroupName" not in copy.read_text()


def test_a_group_is_kept_character_for_character(tmp_path, capsys, data_dir, pegasus):
    """Quotes and backslashes: cimcli shows them escaped, the registration escapes them."""
    group = 'agents "b" \\c'
    assert run_register(*peg_args(tmp_path, data_dir), capsys=capsys)[0] == 0
    set_group(pegasus, group)
    older_registration(tmp_path)
    assert run_register(*peg_args(tmp_path, data_dir), capsys=capsys)[0] == 0
    assert pegasus.modules()[PEGASUS_MODULE]["group"] == group


def test_a_failed_upgrade_gives_the_module_its_group_back(tmp_path, capsys, data_dir,
                                                         pegasus):
    """The new registration fails to compile: the previous one comes back, in the group
    the administrator set after it was made."""
    assert run_register(*peg_args(tmp_path, data_dir), capsys=capsys)[0] == 0
    set_group(pegasus, "CIMServer")
    older_registration(tmp_path)
    pegasus.fail_on("kvm_providers.peg.mof.new")
    rc, out = run_register(*peg_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 1 and "has been undone" in out, out
    assert pegasus.modules()[PEGASUS_MODULE]["group"] == "CIMServer"
    pegasus.fail_on(None)
