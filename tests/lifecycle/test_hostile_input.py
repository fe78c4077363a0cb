"""Hostile input to the VirtualSystemManagementService on a private libvirtd (issue 9).

The methods run in process through the provider interface, against the QEMU
driver of a private libvirtd (tests/fixtures/libvirtd.py) that holds a
defined guest.  Every refused name must leave the daemon's configuration
directory byte for byte as it was: a domain named ``..`` made libvirt's
cleanup unlink ``snapshot/../*.xml``, every domain's definition.
"""

from __future__ import annotations

import hashlib
import os
import subprocess

import libvirt
import pytest
import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName

from kvm_providers import virt
from kvm_providers.config import StorageConfig

from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available

from .conftest import Lifecycle, configure, vssd_path

pytestmark = [pytest.mark.libvirtd,
              pytest.mark.skipif(not libvirtd_available(), reason="libvirtd is not installed")]

INVALID = pywbem.CIM_ERR_INVALID_PARAMETER

VICTIM_XML = """<domain type='qemu'>
  <name>victim</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices>
</domain>"""

#: (name, words the error must contain besides the property's name)
BAD_NAMES = [
    ("..", ["'..'", "directories"]),
    (".", ["'.'", "directories"]),
    ("a/b", ["'a/b'", "'/'"]),
    ("bad\nname", ["control character", "U+000A"]),
    ("bad\x01name", ["control character", "U+0001"]),
    ("x" * 1000, ["too long", "1000 bytes"]),
    ("", ["empty"]),
]
BAD_IDS = ["dotdot", "dot", "slash", "newline", "ctrl-a", "1000-chars", "empty"]


def tree_digest(top: str) -> dict[str, str]:
    """{relative path: sha256 of the file, 'dir' or 'link -> target'} of everything under top."""
    out: dict[str, str] = {}
    for root, dirs, files in os.walk(top):
        for d in dirs:
            p = os.path.join(root, d)
            out[os.path.relpath(p, top)] = f"link -> {os.readlink(p)}" if os.path.islink(p) \
                else "dir"
        for f in files:
            p = os.path.join(root, f)
            if os.path.islink(p):
                out[os.path.relpath(p, top)] = f"link -> {os.readlink(p)}"
                continue
            with open(p, "rb") as fh:
                out[os.path.relpath(p, top)] = hashlib.sha256(fh.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def daemon():
    d = PrivateLibvirtd().start()
    try:
        conn = libvirt.open(d.uri("qemu"))
        conn.defineXML(VICTIM_XML)
        conn.close()
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def qlc(harness, daemon, storage):
    """The management methods in process on the daemon's QEMU driver."""
    mgr = configure(daemon.uri("qemu"))
    yield Lifecycle(harness, mgr)
    virt.shutdown()


def refused(lc: Lifecycle, method: str, words: list[str], **params) -> str:
    try:
        rv, out = lc.invoke(lc.service(), method, **params)
    except CIMError as exc:
        assert exc.status_code == INVALID, (exc.status_code, exc.status_description)
        for w in words:
            assert w in exc.status_description, (w, exc.status_description)
        return exc.status_description
    raise AssertionError(f"{method} was accepted: {rv} {out}")


@pytest.mark.parametrize("name,words", BAD_NAMES, ids=BAD_IDS)
def test_refused_names_leave_the_configuration_untouched(daemon, qlc, name, words):
    config = os.path.join(daemon.workdir, "config")
    before = tree_digest(config)
    assert any(p.endswith("victim.xml") for p in before), before
    for prop in ("VirtualSystemIdentifier", "ElementName"):
        refused(qlc, "DefineSystem", ["SystemSettings", prop] + words,
                SystemSettings=CIMInstance("KVM_VirtualSystemSettingData", {prop: name}))
        assert tree_digest(config) == before
    # a clone of an existing system under that name
    refused(qlc, "DefineSystem", ["SystemSettings", "VirtualSystemIdentifier"] + words,
            SystemSettings=CIMInstance("KVM_VirtualSystemSettingData",
                                       {"VirtualSystemIdentifier": name}),
            ReferenceConfiguration=vssd_path("victim"))
    assert tree_digest(config) == before
    assert [d.name() for d in qlc.conn.listAllDomains()] == ["victim"]


def test_a_plain_name_is_still_accepted(daemon, qlc):
    name = "ok-name_1.2 with blanks"
    rv, out = qlc.invoke(qlc.service(), "DefineSystem",
                         SystemSettings=CIMInstance("KVM_VirtualSystemSettingData",
                                                    {"VirtualSystemIdentifier": name}))
    assert rv == 0 and out["ResultingSystem"]["Name"] == name
    rv, _ = qlc.invoke(qlc.service(), "DestroySystem", AffectedSystem=CIMInstanceName(
        "KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem", "Name": name},
        namespace="root/virt"))
    assert rv == 0


# -- Emulator -----------------------------------------------------------------------------

def _offered(conn) -> list[str]:
    from lxml import etree
    caps = etree.fromstring(conn.getCapabilities())
    return sorted(set(caps.xpath("guest/arch/emulator/text()|guest/arch/domain/emulator/text()")))


def _emulator_cases(lc: Lifecycle, name: str) -> None:
    """/bin/sh refused (the definition unchanged, nothing defined); an offered one accepted."""
    offered = _offered(lc.conn)
    assert offered and "/bin/sh" not in offered
    before = lc.xml(name)
    refused(lc, "ModifySystemSettings", ["SystemSettings", "Emulator", "'/bin/sh'",
                                         "not an emulator this host offers", offered[0]],
            SystemSettings=CIMInstance("KVM_VirtualSystemSettingData",
                                       {"InstanceID": f"KVM:{name}", "Emulator": "/bin/sh"}))
    assert lc.xml(name) == before
    domains = sorted(d.name() for d in lc.conn.listAllDomains())
    refused(lc, "DefineSystem", ["SystemSettings", "Emulator", "'/bin/sh'"],
            SystemSettings=CIMInstance("KVM_VirtualSystemSettingData", {
                "VirtualSystemIdentifier": "shell", "Emulator": "/bin/sh"}))
    assert sorted(d.name() for d in lc.conn.listAllDomains()) == domains
    rv, _ = lc.invoke(lc.service(), "ModifySystemSettings", SystemSettings=CIMInstance(
        "KVM_VirtualSystemSettingData", {"InstanceID": f"KVM:{name}",
                                         "Emulator": offered[-1]}))
    assert rv == 0
    from lxml import etree
    assert etree.fromstring(lc.xml(name)).findtext("devices/emulator") == offered[-1]


def test_emulator_must_be_offered_qemu(qlc):
    _emulator_cases(qlc, "victim")


def test_emulator_must_be_offered_test_driver(lc):
    _emulator_cases(lc, lc.conn.listAllDomains()[0].name())


# -- host paths -------------------------------------------------------------------------------

@pytest.fixture
def allowed(daemon, storage):
    """[storage] allowed_paths = <daemon>/allowed, holding a qcow2 and a raw image and a
    symbolic link to /etc/passwd."""
    top = os.path.join(daemon.workdir, "allowed")
    if not os.path.isdir(top):
        os.makedirs(top)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", f"{top}/a.qcow2", "8M"],
                       check=True)
        with open(f"{top}/b.raw", "wb") as f:
            f.truncate(1 << 20)
        os.symlink("/etc/passwd", f"{top}/link.img")
        os.chmod(top, 0o755)
    storage(StorageConfig(allowed_paths=[top]))
    return top


def _disk(**props) -> CIMInstance:
    return CIMInstance("KVM_DiskResourceAllocationSettingData", props)


def _same_refusals(texts: dict[str, str]) -> None:
    """The refusals differ by nothing but the path the client sent."""
    shapes = {t.replace(repr(p), "<path>") for p, t in texts.items()}
    assert len(shapes) == 1, texts
    assert "not inside the storage this service may use" in shapes.pop()


OUTSIDE = ["/etc/shadow", "/etc/kvmp-no-such-file", "/dev/sda", "/dev/kvmp-no-such-device",
           "/var/lib/libvirt/images/../../../../etc/passwd"]


def test_disk_sources_outside_storage_are_refused_alike(qlc, allowed):
    config = os.path.join(os.path.dirname(allowed), "config")
    before, xml = tree_digest(config), qlc.xml("victim")
    vssd = vssd_path("victim")
    texts = {}
    for path in OUTSIDE + [f"{allowed}/link.img", f"{allowed}/../config/x.img"]:
        texts[path] = refused(qlc, "AddResourceSettings", ["ResourceSettings[0]", "Address"],
                              AffectedConfiguration=vssd,
                              ResourceSettings=[_disk(VirtualDevice="vdb", Address=path)])
    _same_refusals(texts)
    # a host directory shared with the guest, and the source of a new system's disk
    refused(qlc, "AddResourceSettings", ["Address", "not inside the storage"],
            AffectedConfiguration=vssd, ResourceSettings=[CIMInstance(
                "KVM_DiskResourceAllocationSettingData",
                {"EmulatedType": pywbem.Uint16(3), "Address": "/", "MountPoint": "/host"})])
    refused(qlc, "DefineSystem", ["ResourceSettings[0]", "Address", "'/etc/shadow'"],
            SystemSettings=CIMInstance("KVM_VirtualSystemSettingData",
                                       {"VirtualSystemIdentifier": "thief"}),
            ResourceSettings=[_disk(VirtualDevice="vda", Address="/etc/shadow")])
    assert qlc.xml("victim") == xml and tree_digest(config) == before
    assert [d.name() for d in qlc.conn.listAllDomains()] == ["victim"]


def test_changed_disk_source_inside_storage_and_its_format(qlc, allowed):
    vssd = vssd_path("victim")
    rv, out = qlc.invoke(qlc.service(), "AddResourceSettings", AffectedConfiguration=vssd,
                         ResourceSettings=[_disk(VirtualDevice="vdb",
                                                 Address=f"{allowed}/a.qcow2")])
    assert rv == 0
    try:
        def driver_type():
            from lxml import etree
            return etree.fromstring(qlc.xml("victim")).xpath(
                "devices/disk[target/@dev='vdb']/driver/@type")
        assert driver_type() == ["qcow2"]
        path = out["ResultingResourceSettings"][0]
        # the client reads the setting, changes the source to a raw image, sends it all back
        disk = qlc.get(path)
        disk["Address"] = f"{allowed}/b.raw"
        rv, _ = qlc.invoke(qlc.service(), "ModifyResourceSettings", ResourceSettings=[disk])
        assert rv == 0
        assert driver_type() == ["raw"], "the raw image would be read as qcow2"
        xml = qlc.xml("victim")
        texts = {}
        for bad in OUTSIDE + [f"{allowed}/link.img"]:
            disk = qlc.get(path)
            disk["Address"] = bad
            texts[bad] = refused(qlc, "ModifyResourceSettings", ["ResourceSettings[0]"],
                                 ResourceSettings=[disk])
        _same_refusals(texts)
        assert qlc.xml("victim") == xml
    finally:
        qlc.invoke(qlc.service(), "RemoveResourceSettings", ResourceSettings=[
            out["ResultingResourceSettings"][0]])


# -- smaller defects (test driver, the corpus) ---------------------------------------------------

NUMA_XML = """<domain type='test'>
  <name>numa</name>
  <memory unit='KiB'>524288</memory>
  <currentMemory unit='KiB'>262144</currentMemory>
  <vcpu>2</vcpu>
  <os><type arch='i686'>hvm</type></os>
  <cpu><numa><cell id='0' cpus='0' memory='262144' unit='KiB'/>
             <cell id='1' cpus='1' memory='262144' unit='KiB'/></numa></cpu>
  <devices/>
</domain>"""


def _mem(lc, name):
    return lc.rasds(name)[f"{name}/mem"]


def test_memory_limit_of_a_system_with_numa_cells(lc):
    from lxml import etree
    lc.conn.defineXML(NUMA_XML)
    before = lc.xml("numa")
    mem = _mem(lc, "numa")
    mem["Limit"] = pywbem.Uint64(1024 * 1024 * 1024)
    mem["AllocationUnits"] = "Bytes"
    mem["VirtualQuantity"] = None
    mem["Reservation"] = None
    refused(lc, "ModifyResourceSettings", ["ResourceSettings[0]", "Limit", "NUMA cells",
                                           "524288 KiB"], ResourceSettings=[mem])
    mem = _mem(lc, "numa")
    mem["VirtualQuantity"] = pywbem.Uint64(768)
    mem["Limit"] = None
    mem["Reservation"] = None
    mem["AllocationUnits"] = "MegaBytes"
    refused(lc, "ModifyResourceSettings", ["VirtualQuantity", "cannot be raised", "NUMA cells"],
            ResourceSettings=[mem])
    assert lc.xml("numa") == before
    # within the cells' memory, the current size still changes
    mem["VirtualQuantity"] = pywbem.Uint64(384)
    rv, _ = lc.invoke(lc.service(), "ModifyResourceSettings", ResourceSettings=[mem])
    assert rv == 0
    root = etree.fromstring(lc.xml("numa"))
    assert root.findtext("currentMemory") == str(384 * 1024)
    assert root.findtext("memory") == "524288"


def test_define_refuses_a_second_memory_or_processor_setting(lc):
    from .conftest import rasd
    domains = sorted(d.name() for d in lc.conn.listAllDomains())
    mib = {"AllocationUnits": "MegaBytes"}
    for cls, a, b in (("Mem", {"VirtualQuantity": pywbem.Uint64(256), **mib},
                       {"VirtualQuantity": pywbem.Uint64(512), **mib}),
                      ("Proc", {"VirtualQuantity": pywbem.Uint64(1)},
                       {"VirtualQuantity": pywbem.Uint64(2)})):
        refused(lc, "DefineSystem", ["ResourceSettings[1]", f"a second {cls}Resource",
                                     "exactly one", "ResourceSettings[0]"],
                SystemSettings=CIMInstance("KVM_VirtualSystemSettingData",
                                           {"VirtualSystemIdentifier": "twice"}),
                ResourceSettings=[rasd(cls, **a), rasd(cls, **b)])
    assert sorted(d.name() for d in lc.conn.listAllDomains()) == domains
    # the same setting twice in one ModifyResourceSettings
    name = domains[0]
    before = lc.xml(name)
    m1, m2 = _mem(lc, name), _mem(lc, name)
    m1["VirtualQuantity"], m2["VirtualQuantity"] = pywbem.Uint64(64 << 20), \
        pywbem.Uint64(96 << 20)
    m1["AllocationUnits"] = m2["AllocationUnits"] = "Bytes"
    m1["Limit"] = m2["Limit"] = m1["Reservation"] = m2["Reservation"] = None
    refused(lc, "ModifyResourceSettings", ["ResourceSettings[1]", "same setting",
                                           "ResourceSettings[0]"], ResourceSettings=[m1, m2])
    assert lc.xml(name) == before


def test_mac_check_fails_when_a_definition_cannot_be_read(lc, monkeypatch):
    """libvirt failing to give one domain's XML must fail the request, not skip its MACs.
    (libvirt cannot be made to fail XMLDesc on demand: the failure is injected into the
    real binding, as libvirt raises it.)"""
    from .conftest import rasd
    names = sorted(d.name() for d in lc.conn.listAllDomains())
    target, other = names[0], names[1]
    before = lc.xml(target)
    real = libvirt.virDomain.XMLDesc

    def failing(self, flags=0):
        if self.name() == other:
            raise libvirt.libvirtError("simulated: cannot read the definition")
        return real(self, flags)
    monkeypatch.setattr(libvirt.virDomain, "XMLDesc", failing)
    with pytest.raises(CIMError) as exc:
        lc.invoke(lc.service(), "AddResourceSettings", AffectedConfiguration=vssd_path(target),
                  ResourceSettings=[rasd("Net", NetworkType="network",
                                         Address="52:54:00:9e:00:01")])
    assert exc.value.status_code == pywbem.CIM_ERR_FAILED, exc.value
    assert "cannot read the definition" in exc.value.status_description
    monkeypatch.undo()
    assert lc.xml(target) == before


def test_kernel_and_console_files_outside_storage_are_refused(qlc, allowed):
    """Kernel and Ramdisk (read and relabelled for the guest), console files and sockets
    (opened by libvirtd): host paths like disk sources."""
    from .conftest import rasd
    before = qlc.xml("victim")
    vssd = vssd_path("victim")
    for prop in ("Kernel", "Ramdisk"):
        refused(qlc, "ModifySystemSettings", ["SystemSettings", prop, "'/etc/shadow'",
                                              "not inside the storage"],
                SystemSettings=CIMInstance("KVM_VirtualSystemSettingData", {
                    "InstanceID": "KVM:victim", prop: "/etc/shadow"}))
        refused(qlc, "DefineSystem", ["SystemSettings", prop, "not inside the storage"],
                SystemSettings=CIMInstance("KVM_VirtualSystemSettingData", {
                    "VirtualSystemIdentifier": "thief", prop: "/etc/shadow"}))
    for props, prop in (({"SourceType": pywbem.Uint16(4), "SourcePath": "/etc/passwd"},
                         "SourcePath"),
                        ({"SourceType": pywbem.Uint16(9),
                          "SourcePath": "/run/libvirt/libvirt-sock"}, "SourcePath"),
                        ({"ConnectURL": "file:///run/libvirt/libvirt-sock"}, "ConnectURL")):
        refused(qlc, "AddResourceSettings", ["ResourceSettings[0]", prop,
                                             "not inside the storage"],
                AffectedConfiguration=vssd, ResourceSettings=[rasd("Console", **props)])
    assert qlc.xml("victim") == before
    assert [d.name() for d in qlc.conn.listAllDomains()] == ["victim"]
    # inside storage: accepted
    rv, _ = qlc.invoke(qlc.service(), "ModifySystemSettings", SystemSettings=CIMInstance(
        "KVM_VirtualSystemSettingData", {"InstanceID": "KVM:victim",
                                         "Kernel": f"{allowed}/b.raw"}))
    assert rv == 0 and f"<kernel>{allowed}/b.raw</kernel>" in qlc.xml("victim")
    rv, _ = qlc.invoke(qlc.service(), "ModifySystemSettings", SystemSettings=CIMInstance(
        "KVM_VirtualSystemSettingData", {"InstanceID": "KVM:victim", "Kernel": ""}))
    assert rv == 0 and "<kernel>" not in qlc.xml("victim")


def test_disk_size_reported_only_inside_storage(qlc, allowed):
    """A disk the administrator defined on a host file outside storage: its RASD does not
    tell how big the file is (nor, by a NULL for missing files only, that it exists)."""
    disks = "".join(
        f"<disk type='file' device='disk'><source file='{p}'/><target dev='{d}' bus='virtio'/>"
        f"</disk>" for d, p in (("vda", "/etc/passwd"), ("vdb", f"{allowed}/b.raw"),
                                ("vdc", "/etc/kvmp-no-such-file")))
    qlc.conn.defineXML(VICTIM_XML.replace("victim", "admin").replace(
        "<devices>", "<devices>" + disks))
    try:
        rasds = qlc.rasds("admin")
        assert rasds["admin/vdb"]["VirtualQuantity"] == 1 << 20
        assert rasds["admin/vda"]["VirtualQuantity"] is None
        assert rasds["admin/vdc"]["VirtualQuantity"] is None
    finally:
        qlc.conn.lookupByName("admin").undefine()
