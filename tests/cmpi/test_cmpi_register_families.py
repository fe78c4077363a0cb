"""kvm-providers-register registers only the class families of the configured hosts.

A CIM server calls the provider of every registered subclass for an enumeration
of a superclass, also when the provider has nothing for it: with all three
families registered, an enumeration of CIM_ResourceAllocationSettingData was 42
provider calls in sfcb and OpenPegasus, 28 of them for LXC and Xen classes no
host serves (issue 10 item 12; docs/cmpi.md "Cost inside the CIM servers").
"""

import os

import pytest

from kvm_providers.registry import registrar, table
from kvm_providers.registry.files import PEGASUS_MODULE

from tests.cmpi import test_cmpi_registration as registration
from tests.cmpi.test_cmpi_registration import (parse_pegasus, parse_reg, peg_args, read_log,
                                               run_register, sfcb_args, tree)

# the fixtures of the registration tests: a small installed tree, stand-in sfcb and Pegasus
data_dir = registration.data_dir
sfcb = registration.sfcb
pegasus = registration.pegasus


@pytest.fixture
def profiled(data_dir, monkeypatch):
    """The small table and two central classes of profiles (System Virtualization,
    Virtual System): Pegasus gets PG_ProviderProfileCapabilities and
    PG_ProviderReferencedProfiles for them."""
    monkeypatch.setattr(table, "TABLE", registration.SMALL + [
        table.Entry("{P}_HostSystem", "thing", (table.INSTANCE,)),
        table.Entry("{P}_ComputerSystem", "thing", (table.INSTANCE,))])
    return data_dir


def configure(tmp_path, monkeypatch, *uris):
    """The providers' configuration: a [[host]] per URI (none: the default)."""
    conf = tmp_path / "kvm-providers.conf"
    conf.write_text("".join(f'[[host]]\nuri = "{u}"\n' for u in uris))
    monkeypatch.setenv("KVM_PROVIDERS_CONFIG", str(conf))
    return conf


def staged_classes(sfcb_root):
    reg = (sfcb_root / "stage" / "regs" / "kvm_providers.reg").read_text()
    return sorted(parse_reg(reg))


def test_configured_families(tmp_path, monkeypatch):
    configure(tmp_path, monkeypatch, "qemu+ssh://h/system", "test:///default")
    assert registrar.configured_families() == ["KVM"]
    configure(tmp_path, monkeypatch, "xen:///system", "lxc:///")
    assert registrar.configured_families() == ["LXC", "Xen"]
    # no host configured: the providers serve the test driver, a KVM host
    configure(tmp_path, monkeypatch)
    assert registrar.configured_families() == ["KVM"]
    # a configuration the providers cannot read: every family (the providers would fail
    # anyway; registration must not be the thing that hides a family)
    (tmp_path / "kvm-providers.conf").write_text("[[host]]\nuri = 3\n")
    assert registrar.configured_families() is None


def test_sfcb_registers_the_configured_families_only(tmp_path, capsys, data_dir, sfcb,
                                                      monkeypatch):
    args = sfcb_args(tmp_path, data_dir)
    before = tree(sfcb / "stage")
    configure(tmp_path, monkeypatch, "qemu:///system")
    rc, out = run_register(*args, capsys=capsys)
    assert rc == 0, out
    assert staged_classes(sfcb) == ["KVM_RegisteredProfile", "KVM_Thing", "KVM_ThingAssoc",
                                    "KVM_ThingIndication"]
    provreg = (sfcb / "registration" / "providerRegister").read_text()
    assert "[KVM_Thing]" in provreg and "LXC_Thing" not in provreg
    # run again: current, nothing restaged
    rebuilds = sum(c.startswith("sfcbrepos -f -s ") for c in read_log(sfcb))
    assert run_register(*args, capsys=capsys)[0] == 0
    assert sum(c.startswith("sfcbrepos -f -s ") for c in read_log(sfcb)) == rebuilds
    # a host of another family configured: registering again adds its classes
    configure(tmp_path, monkeypatch, "qemu:///system", "lxc:///")
    assert run_register(*args, capsys=capsys)[0] == 0
    assert staged_classes(sfcb) == ["KVM_RegisteredProfile", "KVM_Thing", "KVM_ThingAssoc",
                                    "KVM_ThingIndication", "LXC_RegisteredProfile",
                                    "LXC_Thing", "LXC_ThingAssoc"]
    # --families names them instead of the configuration
    assert run_register("--families", "all", *args, capsys=capsys)[0] == 0
    assert staged_classes(sfcb) == sorted(r.classname for r in table.registrations())
    assert run_register("--families", "xen", *args, capsys=capsys)[0] == 0
    assert staged_classes(sfcb) == ["KVM_ThingIndication", "Xen_RegisteredProfile",
                                    "Xen_Thing", "Xen_ThingAssoc"]
    rc, out = run_register("--unregister", *args, capsys=capsys)
    assert rc == 0, out
    assert tree(sfcb / "stage") == before
    assert not (tmp_path / "work").exists()


def test_pegasus_registers_the_configured_families_only(tmp_path, capsys, profiled, pegasus,
                                                        monkeypatch):
    data_dir = profiled
    configure(tmp_path, monkeypatch, "qemu:///system")
    rc, out = run_register(*peg_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 0, out
    text = (tmp_path / "work" / "pegasus" / "kvm_providers.peg.mof").read_text()
    caps = parse_pegasus(text)["PG_ProviderCapabilities"]
    assert sorted(c["ClassName"] for c in caps) == [
        "KVM_ComputerSystem", "KVM_HostSystem", "KVM_RegisteredProfile", "KVM_Thing",
        "KVM_ThingAssoc", "KVM_ThingIndication"]
    # another family configured: the module is registered anew with its classes
    configure(tmp_path, monkeypatch, "qemu:///system", "xen:///")
    rc, out = run_register(*peg_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 0, out
    text = (tmp_path / "work" / "pegasus" / "kvm_providers.peg.mof").read_text()
    caps = parse_pegasus(text)["PG_ProviderCapabilities"]
    assert sorted(c["ClassName"] for c in caps) == [
        "KVM_ComputerSystem", "KVM_HostSystem", "KVM_RegisteredProfile", "KVM_Thing",
        "KVM_ThingAssoc", "KVM_ThingIndication", "Xen_ComputerSystem", "Xen_HostSystem",
        "Xen_RegisteredProfile", "Xen_Thing", "Xen_ThingAssoc"]
    assert PEGASUS_MODULE in pegasus.modules()
    # the profiles Pegasus' interop provider answers name the registered classes only:
    # the ones of the first registration (cimprovider -r keeps them, cimmof does not
    # replace them) were removed
    assert conforming(pegasus) == {"KVM_ComputerSystem", "KVM_HostSystem",
                                   "Xen_ComputerSystem", "Xen_HostSystem"}
    assert run_register("--unregister", *peg_args(tmp_path, data_dir), capsys=capsys)[0] == 0
    assert PEGASUS_MODULE not in pegasus.modules()
    assert profile_paths(pegasus) == []


def profile_paths(repo):
    """The PG_ProviderProfileCapabilities / PG_ProviderReferencedProfiles in the stand-in."""
    return [p for insts in repo.profile_instances().values() for p in insts]


def conforming(repo):
    """Every ConformingElements class of the profile capabilities in the stand-in."""
    out: set = set()
    for insts in repo.profile_instances().values():
        for path, inst in insts.items():
            if path.startswith("PG_ProviderProfileCapabilities."):
                (cap,) = parse_pegasus(inst["mof"])["PG_ProviderProfileCapabilities"]
                out |= set(cap["ConformingElements"])
    return out


def test_pegasus_unregister_removes_the_profile_registration(tmp_path, capsys, profiled,
                                                              pegasus):
    data_dir = profiled
    """cimprovider -r removes the module, its providers and PG_ProviderCapabilities, not
    the PG_ProviderProfileCapabilities / PG_ProviderReferencedProfiles of the module:
    unregistering deletes those itself (and a registration those left behind)."""
    rc, out = run_register(*peg_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 0, out
    assert profile_paths(pegasus)
    assert run_register("--unregister", *peg_args(tmp_path, data_dir), capsys=capsys)[0] == 0
    assert profile_paths(pegasus) == []


@pytest.mark.parametrize("bad", ["kvm,vmware", ","])
def test_unknown_family_is_refused(tmp_path, capsys, data_dir, sfcb, bad):
    with pytest.raises(SystemExit) as exc:
        run_register("--families", bad, *sfcb_args(tmp_path, data_dir), capsys=capsys)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--families" in err and "not one of KVM, LXC, Xen" in err
    assert not os.path.exists(tmp_path / "work")


def test_unreadable_configuration_registers_every_family(tmp_path, capsys, data_dir, sfcb,
                                                         monkeypatch):
    conf = configure(tmp_path, monkeypatch)
    conf.write_text("[[host]]\nuri = 3\n")
    rc, out = run_register(*sfcb_args(tmp_path, data_dir), capsys=capsys)
    assert rc == 0, out
    assert "registering every class family" in out
    assert staged_classes(sfcb) == sorted(r.classname for r in table.registrations())
