"""The VirtualSystemManagementService methods on the test driver: what they do, their
defaults, both kinds of paths, and a negative test for every validation rule (each
also checks that nothing changed)."""

from __future__ import annotations

import libvirt
import pytest
from lxml import etree
from pywbem import CIMError, CIMInstance, CIMInstanceName, Uint16, Uint64

from kvm_providers.providers.common import capabilities
from kvm_providers.model import limits

from .conftest import NS, c14n, cs_path, rasd, rasd_path, vssd, vssd_path


def _define(lc, name="new1", *rasds, class_path=True, **vprops):
    return lc.invoke(lc.service(class_path), "DefineSystem",
                     SystemSettings=vssd(VirtualSystemIdentifier=name, **vprops),
                     ResourceSettings=list(rasds))


def test_define_with_host_defaults_and_default_devices(lc):
    rc, out = _define(lc, "new1", rasd("Mem", VirtualQuantity=Uint64(256),
                                       AllocationUnits="MegaBytes"),
                      rasd("Proc", VirtualQuantity=Uint64(2)),
                      rasd("Disk", VirtualDevice="vda", Address="/srv/new1.img"),
                      rasd("Net", NetworkType="network"))
    assert rc == 0
    assert out["ResultingSystem"] == cs_path("new1")
    root = etree.fromstring(lc.xml("new1"))
    caps = etree.fromstring(lc.conn.getCapabilities())
    guest = caps.xpath("guest[os_type='hvm']")[0]
    assert root.get("type") == guest.find("arch/domain").get("type")        # test
    assert root.find("os/type").get("arch") == guest.find("arch").get("name")
    assert root.findtext("devices/emulator") == guest.findtext("arch/emulator")
    assert root.findtext("memory") == root.findtext("currentMemory") == str(256 * 1024)
    assert root.findtext("vcpu") == "2"
    assert root.xpath("devices/disk/target/@bus") == ["virtio"]
    mac = root.find("devices/interface/mac").get("address")
    assert mac.startswith("52:54:00:")
    assert root.find("devices/interface/source").get("network") == "default"
    # libvirt-cim's defaults (its clients count devices): VNC on loopback with an
    # automatic port and a PS/2 mouse, nothing else (no console, no tablet)
    g = root.find("devices/graphics")
    assert (g.get("type"), g.get("listen"), g.get("autoport")) == ("vnc", "127.0.0.1", "yes")
    assert [(i.get("type"), i.get("bus")) for i in root.iterfind("devices/input")] \
        == [("mouse", "ps2")]
    assert root.find("devices/console") is None and root.find("devices/serial") is None
    assert lc.get(cs_path("new1"))["EnabledState"] == 3


def test_define_minimal_and_on_an_instance_path(lc):
    rc, out = _define(lc, "tiny", class_path=False)
    assert rc == 0
    root = etree.fromstring(lc.xml("tiny"))
    assert root.findtext("memory") == str(limits.DEFAULT_MEMORY_KIB)
    assert root.findtext("vcpu") == "1"


def test_define_memory_units_and_autostart(lc):
    rc, _ = _define(lc, "units", rasd("Mem", VirtualQuantity=Uint64(128 * 1024 * 1024)),
                    AutoStart=Uint16(1))
    assert rc == 0                                  # without units: bytes, as libvirt-cim
    dom = lc.conn.lookupByName("units")
    assert dom.maxMemory() == 128 * 1024 and dom.autostart() == 1


def test_define_from_reference_configuration_overrides_devices(lc):
    rc, out = lc.invoke(lc.service(), "DefineSystem",
                        SystemSettings=vssd(VirtualSystemIdentifier="copy", Notes=["a copy"]),
                        ResourceSettings=[rasd("Disk", VirtualDevice="vda",
                                               Address="/var/lib/libvirt/images/spare.img")],
                        ReferenceConfiguration=vssd_path("uefi"))
    assert rc == 0
    root = etree.fromstring(lc.xml("copy"))
    assert root.xpath("devices/disk[target/@dev='vda']/source")[0].get("file") == \
        "/var/lib/libvirt/images/spare.img"
    assert root.findtext("description") == "a copy"
    assert root.find("os/loader") is not None and root.find("cputune/vcpupin") is not None


def test_destroy_system(lc):
    dom = lc.conn.lookupByName("tuned")
    dom.managedSave(0)
    rc, _ = lc.invoke(lc.service(), "DestroySystem", AffectedSystem=cs_path("tuned"))
    assert rc == 0
    assert "tuned" not in [d.name() for d in lc.conn.listAllDomains()]
    # the storage stays: the pool still has its volumes
    assert len(lc.conn.storagePoolLookupByName("images").listAllVolumes()) == 3


def test_destroy_running_system_on_instance_path(lc):
    lc.conn.lookupByName("uefi").create()
    rc, _ = lc.invoke(lc.service(False), "DestroySystem", AffectedSystem=cs_path("uefi"))
    assert rc == 0
    with pytest.raises(libvirt.libvirtError):
        lc.conn.lookupByName("uefi")


def test_modify_system_settings_autostart_boot_order_features(lc):
    inst = lc.get(vssd_path("uefi"))
    inst["AutoStart"] = Uint16(1)
    inst["BootDevices"] = ["cdrom", "hd"]
    inst["EnableACPI"] = True
    inst["AutomaticShutdownAction"] = Uint16(3)
    rc, _ = lc.invoke(lc.service(True), "ModifySystemSettings", SystemSettings=inst)
    assert rc == 0
    root = etree.fromstring(lc.xml("uefi"))
    assert root.xpath("os/boot/@dev") == ["cdrom", "hd"]
    assert root.find("features/acpi") is not None
    assert root.findtext("on_poweroff") == "restart"
    assert lc.conn.lookupByName("uefi").autostart() == 1
    again = lc.get(vssd_path("uefi"))                 # shut off: reads the definition
    assert again["AutoStart"] == 1 and again["BootDevices"] == ["cdrom", "hd"]


def test_modify_system_settings_by_name(lc):
    rc, _ = lc.invoke(lc.service(), "ModifySystemSettings", SystemSettings=vssd(
        VirtualSystemIdentifier="plain", Notes=["by name"]))
    assert rc == 0
    assert etree.fromstring(lc.xml("plain")).findtext("description") == "by name"


def test_add_modify_remove_every_rasd_type(lc):
    lc.conn.lookupByName("plain").destroy()          # shut off: RASDs show the definition
    rc, out = lc.invoke(lc.service(), "AddResourceSettings", AffectedConfiguration=vssd_path(
        "plain"), ResourceSettings=[
        rasd("Disk", VirtualDevice="hdc", EmulatedType=Uint16(1)),
        rasd("Disk", VirtualDevice="vdc", Address="/var/lib/libvirt/images/spare.img",
             PoolID="DiskPool/images"),
        rasd("Disk", VirtualDevice="vdd", Address="data.img", PoolID="DiskPool/images"),
        rasd("Net", NetworkType="bridge", NetworkName="br0", ResourceSubType="e1000"),
        rasd("Net", NetworkType="direct", SourceDevice="eth0", NetworkMode="vepa"),
        rasd("Graphics", ResourceSubType="spice", Address="127.0.0.1:5930"),
        rasd("Input", ResourceSubType="tablet"),
        rasd("Console", SourceType=Uint16(8), BindURL="telnet://127.0.0.1:4556"),
        rasd("Controller", ResourceSubType="scsi", Model="virtio-scsi")])
    assert rc == 0
    ids = [p["InstanceID"] for p in out["ResultingResourceSettings"]]
    assert ids[:3] == ["plain/hdc", "plain/vdc", "plain/vdd"]
    assert ids[5:] == ["plain/spice", "plain/tablet:usb", "plain/charconsole:0",
                       "plain/controller:scsi:0"]
    root = etree.fromstring(lc.xml("plain"))
    assert root.xpath("devices/disk[target/@dev='hdc']")[0].get("device") == "cdrom"
    vdd = root.xpath("devices/disk[target/@dev='vdd']")[0]
    assert vdd.get("type") == "volume" and vdd.find("source").get("pool") == "images"
    direct = root.find("devices/interface[@type='direct']/source")
    assert (direct.get("dev"), direct.get("mode")) == ("eth0", "vepa")
    spice = root.find("devices/graphics[@type='spice']")
    assert (spice.get("port"), spice.get("autoport")) == ("5930", "no")
    con = root.find("devices/console")
    assert con.get("type") == "tcp" and con.find("source").get("service") == "4556"
    rasds = lc.rasds("plain")
    for iid in ids:
        assert iid in rasds, iid
    # modify each kind
    changed = []
    for iid, prop, value in (("plain/vdc", "DriverCache", "none"),
                             ("plain/spice", "KeyMap", "de"),
                             ("plain/tablet:usb", "BusType", "virtio"),
                             ("plain/charconsole:0", "BindURL", "telnet://127.0.0.1:4557"),
                             ("plain/controller:scsi:0", "Model", "lsilogic")):
        inst = rasds[iid]
        inst[prop] = value
        changed.append(inst)
    rc, out = lc.invoke(lc.service(), "ModifyResourceSettings", ResourceSettings=changed)
    assert rc == 0
    assert [p["InstanceID"] for p in out["ResultingResourceSettings"]] == \
        ["plain/vdc", "plain/spice", "plain/tablet:virtio", "plain/charconsole:0",
         "plain/controller:scsi:0"]
    rasds = lc.rasds("plain")
    assert rasds["plain/vdc"]["DriverCache"] == "none"
    assert rasds["plain/spice"]["KeyMap"] == "de"
    assert rasds["plain/charconsole:0"]["BindURL"] == "telnet://127.0.0.1:4557"
    assert rasds["plain/controller:scsi:0"]["Model"] == "lsilogic"
    rc, _ = lc.invoke(lc.service(), "RemoveResourceSettings",
                      ResourceSettings=[rasds[i].path for i in rasds if i not in (
                          "plain/proc", "plain/mem")])
    assert rc == 0
    assert set(lc.rasds("plain")) == {"plain/proc", "plain/mem"}


def test_capabilities_list_the_methods(lc):
    from kvm_providers.providers.management_service import ManagementServiceProvider
    for m in capabilities.VSMS_SYNCHRONOUS_METHODS + capabilities.VSMS_ASYNCHRONOUS_METHODS:
        assert callable(getattr(ManagementServiceProvider, f"cim_method_{m.lower()}"))
    vsmc = lc.h.EnumerateInstances(NS, "KVM_VirtualSystemManagementCapabilities")[0]
    assert sorted(vsmc["SynchronousMethodsSupported"]) == [2, 3, 5, 6, 7, 10]


# -- validation: one negative test per rule; nothing changes -----------------------------

def _refused(lc, path, method, needle, code=4, **params):
    before = {d.name(): c14n(d.XMLDesc(3)) for d in lc.conn.listAllDomains()}
    with pytest.raises(CIMError) as exc:
        lc.invoke(path, method, **params)
    assert exc.value.status_code == code, exc.value
    for n in needle if isinstance(needle, tuple) else (needle,):
        assert n in exc.value.status_description, exc.value.status_description
    after = {d.name(): c14n(d.XMLDesc(3)) for d in lc.conn.listAllDomains()}
    assert after == before
    return exc.value


def test_missing_parameters(lc):
    svc = lc.service()
    _refused(lc, svc, "DefineSystem", "SystemSettings")
    _refused(lc, svc, "DestroySystem", "AffectedSystem")
    _refused(lc, svc, "AddResourceSettings", "AffectedConfiguration",
             ResourceSettings=[rasd("Input")])
    _refused(lc, svc, "AddResourceSettings", "ResourceSettings",
             AffectedConfiguration=vssd_path("plain"))
    _refused(lc, svc, "ModifyResourceSettings", "ResourceSettings")
    _refused(lc, svc, "RemoveResourceSettings", "ResourceSettings")
    _refused(lc, svc, "ModifySystemSettings", "SystemSettings")


def test_missing_properties(lc):
    svc = lc.service()
    _refused(lc, svc, "DefineSystem", "VirtualSystemIdentifier",
             SystemSettings=vssd(Notes=["no name"]))
    _refused(lc, svc, "AddResourceSettings", ("ResourceSettings[0]", "VirtualDevice"),
             AffectedConfiguration=vssd_path("plain"),
             ResourceSettings=[rasd("Disk", Address="/srv/x.img")])
    # libvirt-cim's words and CIM_ERR_FAILED (cimtest VirtualSystemManagementService/19)
    _refused(lc, svc, "AddResourceSettings", ("ResourceSettings[1]", "NetworkName", "bridge",
                                              "No Network bridge name specified"), code=1,
             AffectedConfiguration=vssd_path("plain"),
             ResourceSettings=[rasd("Input"), rasd("Net", NetworkType="bridge")])
    _refused(lc, svc, "ModifyResourceSettings", "InstanceID",
             ResourceSettings=[rasd("Disk", DriverCache="none")])


def test_invalid_properties(lc):
    svc = lc.service()
    _refused(lc, svc, "DefineSystem", ("UUID", "'not-a-uuid'"),
             SystemSettings=vssd(VirtualSystemIdentifier="x", UUID="not-a-uuid"))
    _refused(lc, svc, "DefineSystem", ("VirtualSystemIdentifier", "'a/b'"),
             SystemSettings=vssd(VirtualSystemIdentifier="a/b"))
    _refused(lc, svc, "DefineSystem", ("VirtualSystemType", "'Xen'"),
             SystemSettings=vssd(VirtualSystemIdentifier="x", VirtualSystemType="Xen"))
    _refused(lc, svc, "AddResourceSettings", ("Address", "'52:54:zz:00:00:01'"),
             AffectedConfiguration=vssd_path("plain"),
             ResourceSettings=[rasd("Net", Address="52:54:zz:00:00:01")])
    _refused(lc, svc, "AddResourceSettings", ("NetworkType", "'token-ring'"),
             AffectedConfiguration=vssd_path("plain"),
             ResourceSettings=[rasd("Net", NetworkType="token-ring")])
    _refused(lc, svc, "DefineSystem", ("AllocationUnits", "'Furlongs'"),
             SystemSettings=vssd(VirtualSystemIdentifier="x"), ResourceSettings=[rasd(
                 "Mem", VirtualQuantity=Uint64(1), AllocationUnits="Furlongs")])
    inst = lc.get(vssd_path("plain"))
    inst["AutomaticRecoveryAction"] = Uint16(77)
    _refused(lc, svc, "ModifySystemSettings", ("AutomaticRecoveryAction", "77"),
             SystemSettings=inst)
    inst = lc.get(vssd_path("plain"))
    inst["ElementName"] = "renamed"
    _refused(lc, svc, "ModifySystemSettings", ("ElementName", "renaming"), SystemSettings=inst)
    disk = lc.rasds("plain")["plain/hda"]
    disk["ResourceType"] = Uint16(10)
    _refused(lc, svc, "ModifyResourceSettings", ("ResourceType", "10"), ResourceSettings=[disk])
    gfx = lc.rasds("plain")["plain/vnc"]
    gfx["Address"] = "127.0.0.1:99999"
    _refused(lc, svc, "ModifyResourceSettings", ("Address", "99999"), ResourceSettings=[gfx])


def test_unknown_rasd_types(lc):
    svc = lc.service()
    generic = CIMInstance("CIM_ResourceAllocationSettingData", {"ResourceType": Uint16(99)})
    _refused(lc, svc, "AddResourceSettings", ("ResourceType", "99"),
             AffectedConfiguration=vssd_path("plain"), ResourceSettings=[generic])
    _refused(lc, svc, "AddResourceSettings", ("LXC_DiskResourceAllocationSettingData", "LXC"),
             AffectedConfiguration=vssd_path("plain"),
             ResourceSettings=[CIMInstance("LXC_DiskResourceAllocationSettingData",
                                           {"VirtualDevice": "vdx", "Address": "/srv/x"})])
    _refused(lc, svc, "AddResourceSettings", ("KVM_NoSuchRASD",),
             AffectedConfiguration=vssd_path("plain"),
             ResourceSettings=["instance of KVM_NoSuchRASD { InstanceID = \"x\"; };"])
    _refused(lc, svc, "AddResourceSettings", ("cannot be added",),
             AffectedConfiguration=vssd_path("plain"),
             ResourceSettings=[rasd("Proc", VirtualQuantity=Uint64(2))])
    _refused(lc, svc, "RemoveResourceSettings", ("cannot be removed",),
             ResourceSettings=[rasd_path("Mem", "plain/mem")])


def test_generic_rasd_by_resource_type_is_accepted(lc):
    generic = CIMInstance("CIM_ResourceAllocationSettingData", {
        "ResourceType": Uint16(13), "ResourceSubType": "tablet"})
    rc, out = lc.invoke(lc.service(), "AddResourceSettings",
                        AffectedConfiguration=vssd_path("plain"), ResourceSettings=[generic])
    assert rc == 0 and out["ResultingResourceSettings"][0]["InstanceID"] == "plain/tablet:usb"


def test_duplicates(lc):
    svc = lc.service()
    _refused(lc, svc, "DefineSystem", ("VirtualSystemIdentifier", "'plain'"),
             SystemSettings=vssd(VirtualSystemIdentifier="plain"))
    _refused(lc, svc, "DefineSystem", ("UUID", "'c0c0c0c0-0000-4000-8000-000000000002'",
                                       "tuned"),
             SystemSettings=vssd(VirtualSystemIdentifier="x",
                                 UUID="c0c0c0c0-0000-4000-8000-000000000002"))
    _refused(lc, svc, "AddResourceSettings", ("'52:54:00:c0:00:11'", "tuned"),
             AffectedConfiguration=vssd_path("plain"),
             ResourceSettings=[rasd("Net", Address="52:54:00:c0:00:11")])
    _refused(lc, svc, "AddResourceSettings", ("ResourceSettings[1]", "'52:54:00:c0:ff:07'"),
             AffectedConfiguration=vssd_path("plain"),
             ResourceSettings=[rasd("Net", Address="52:54:00:c0:ff:07"),
                               rasd("Net", Address="52:54:00:c0:ff:07")])
    _refused(lc, svc, "AddResourceSettings", ("VirtualDevice", "'hda'"),
             AffectedConfiguration=vssd_path("plain"),
             ResourceSettings=[rasd("Disk", VirtualDevice="hda", Address="/srv/y.img")])
    _refused(lc, svc, "AddResourceSettings", ("controller", "usb"),
             AffectedConfiguration=vssd_path("uefi"),
             ResourceSettings=[rasd("Controller", ResourceSubType="usb", Index=Uint64(0))])
    disk = lc.rasds("uefi")["uefi/vdb"]
    disk["VirtualDevice"] = "vda"
    _refused(lc, svc, "ModifyResourceSettings", ("VirtualDevice", "'vda'"),
             ResourceSettings=[disk])


def test_missing_pools_and_networks(lc):
    svc = lc.service()
    _refused(lc, svc, "AddResourceSettings", ("PoolID", "'DiskPool/nopool'"),
             AffectedConfiguration=vssd_path("plain"),
             ResourceSettings=[rasd("Disk", VirtualDevice="vdq", Address="x.img",
                                    PoolID="DiskPool/nopool")])
    _refused(lc, svc, "AddResourceSettings", ("'nosuch.img'", "images"),
             AffectedConfiguration=vssd_path("plain"),
             ResourceSettings=[rasd("Disk", VirtualDevice="vdq", Address="nosuch.img",
                                    PoolID="DiskPool/images")])
    _refused(lc, svc, "AddResourceSettings", ("/var/lib/libvirt/images/nosuch.img", "images"),
             AffectedConfiguration=vssd_path("plain"),
             ResourceSettings=[rasd("Disk", VirtualDevice="vdq",
                                    Address="/var/lib/libvirt/images/nosuch.img")])
    # The network '' is libvirt's "Network not found", CIM_ERR_FAILED, as libvirt-cim's
    # clients get it (cimtest VirtualSystemManagementService/19); a named network the
    # host lacks is taken (test_nic_on_a_network_the_host_lacks).
    _refused(lc, svc, "AddResourceSettings", ("PoolID", "'NetworkPool/'", "Network not found"),
             code=1, AffectedConfiguration=vssd_path("plain"),
             ResourceSettings=[rasd("Net", NetworkType="network", PoolID="NetworkPool/")])


def test_values_outside_the_allocation_limits(lc):
    svc = lc.service()
    lim = limits.allocation_limits(lc.host)
    proc = lc.rasds("plain")["plain/proc"]
    proc["VirtualQuantity"] = Uint64(lim["proc"].maximum + 1)
    _refused(lc, svc, "ModifyResourceSettings", ("VirtualQuantity", "maximum"),
             ResourceSettings=[proc])
    proc["VirtualQuantity"] = Uint64(0)
    _refused(lc, svc, "ModifyResourceSettings", ("VirtualQuantity", "minimum"),
             ResourceSettings=[proc])
    mem = lc.rasds("plain")["plain/mem"]
    mem["VirtualQuantity"] = Uint64(lim["mem"].maximum + 1024)
    mem["Limit"] = Uint64(lim["mem"].maximum + 1024)
    _refused(lc, svc, "ModifyResourceSettings", ("VirtualQuantity", "maximum"),
             ResourceSettings=[mem])
    mem = lc.rasds("plain")["plain/mem"]
    mem["VirtualQuantity"] = Uint64(1024)
    _refused(lc, svc, "ModifyResourceSettings", ("VirtualQuantity", "1024", "minimum"),
             ResourceSettings=[mem])
    mem["VirtualQuantity"] = Uint64(lim["mem"].minimum + 1)
    _refused(lc, svc, "ModifyResourceSettings", ("multiple",), ResourceSettings=[mem])
    _refused(lc, svc, "AddResourceSettings", ("BusType", "'parallel'"),
             AffectedConfiguration=vssd_path("plain"),
             ResourceSettings=[rasd("Disk", VirtualDevice="vdq", Address="/srv/q.img",
                                    BusType="parallel")])
    _refused(lc, svc, "AddResourceSettings", ("ResourceSubType", "'rdp'"),
             AffectedConfiguration=vssd_path("plain"),
             ResourceSettings=[rasd("Graphics", ResourceSubType="rdp")])


def test_targets_that_do_not_exist(lc):
    svc = lc.service()
    _refused(lc, svc, "DestroySystem", "'nosuch'", code=6, AffectedSystem=cs_path("nosuch"))
    _refused(lc, svc, "AddResourceSettings", "KVM:nosuch", code=6,
             AffectedConfiguration=vssd_path("nosuch"), ResourceSettings=[rasd("Input")])
    _refused(lc, svc, "RemoveResourceSettings", "'vdq'", code=6,
             ResourceSettings=[rasd_path("Disk", "plain/vdq")])
    _refused(lc, svc, "ModifyResourceSettings", "'nosuch'", code=6,
             ResourceSettings=[rasd("Disk", InstanceID="nosuch/vda", DriverCache="none")])
    _refused(lc, svc, "DefineSystem", "KVM:nosuch", code=6,
             SystemSettings=vssd(VirtualSystemIdentifier="c"),
             ReferenceConfiguration=vssd_path("nosuch"))
    _refused(lc, CIMInstanceName("KVM_VirtualSystemManagementService",
                                 {"CreationClassName": "KVM_VirtualSystemManagementService",
                                  "Name": "Other Service", "SystemName": "x",
                                  "SystemCreationClassName": "KVM_HostSystem"}, namespace=NS),
             "DestroySystem", "no such service", code=6, AffectedSystem=cs_path("plain"))


def test_a_failure_half_way_undoes_everything(lc, monkeypatch):
    """libvirt refuses the definition after the first of two domains was changed."""
    import libvirt
    real = libvirt.virConnect.defineXML
    calls = []

    def flaky(self, xml):
        calls.append(xml)
        if len(calls) == 2:
            raise libvirt.libvirtError("simulated failure")
        return real(self, xml)
    before = {n: c14n(lc.xml(n)) for n in ("plain", "uefi")}
    a = lc.rasds("plain")["plain/hda"]
    a["DriverCache"] = "none"
    b = lc.rasds("uefi")["uefi/vda"]
    b["DriverCache"] = "writeback"
    monkeypatch.setattr(libvirt.virConnect, "defineXML", flaky)
    with pytest.raises(CIMError) as exc:
        lc.invoke(lc.service(), "ModifyResourceSettings", ResourceSettings=[a, b])
    assert exc.value.status_code == 1 and "simulated failure" in exc.value.status_description
    monkeypatch.undo()
    assert {n: c14n(lc.xml(n)) for n in ("plain", "uefi")} == before


def test_concurrent_changes_to_one_domain_lose_nothing(lc):
    """Eight clients add a disk each to one system at once: all eight are there (the
    read-modify-define of each request is serialized), and other systems are not held up."""
    import threading
    errors = []

    def add(i):
        try:
            rc, _ = lc.invoke(lc.service(), "AddResourceSettings",
                              AffectedConfiguration=vssd_path("uefi"),
                              ResourceSettings=[rasd("Disk", VirtualDevice=f"vd{'lmnopqrs'[i]}",
                                                     Address=f"/srv/c{i}.img")])
            assert rc == 0
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    targets = etree.fromstring(lc.xml("uefi")).xpath("devices/disk/target/@dev")
    assert {f"vd{c}" for c in "lmnopqrs"} <= set(targets)
