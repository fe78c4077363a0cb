"""The device kinds added as one module each (issue 11 item 1): TPM, watchdog and random
number generator, end to end on libvirt's test driver.

Each is read (RASD and logical device), defined with DefineSystem, added,
modified and removed with the VirtualSystemManagementService, as its own
RASD class and as a generic CIM_ResourceAllocationSettingData with
ResourceType 1 and OtherResourceType (libvirt-cim's convention for devices
DMTF has no ResourceType for).  What the mapping does not model survives a
modify; values outside the kind's limits are refused with nothing changed.
"""

from __future__ import annotations

import pytest
from lxml import etree
from pywbem import CIMError, CIMInstance, Uint16, Uint64

from .conftest import NS, c14n, rasd, vssd, vssd_path

#: A guest with one of each, with attributes and elements the mapping does not model.
GUEST = """<domain type='test'><name>kinds</name><memory>65536</memory><vcpu>1</vcpu>
<os><type>hvm</type></os><devices>
<tpm model='tpm-crb'><backend type='emulator' version='2.0' persistent_state='yes'/></tpm>
<watchdog model='ib700' action='pause'/>
<rng model='virtio'><rate bytes='1234' period='2000'/>
<backend model='random'>/dev/random</backend>
<address type='pci' domain='0x0000' bus='0x00' slot='0x09' function='0x0'/></rng>
</devices></domain>"""


def _rasd(cls: str, **props):
    return rasd(cls, **props)


def _generic(other: str, **props):
    return CIMInstance("CIM_ResourceAllocationSettingData",
                       {"ResourceType": Uint16(1), "OtherResourceType": other, **props})


def _define_guest(lc):
    lc.conn.defineXML(GUEST)


def _devices(lc, cls: str) -> set[str]:
    return {p["DeviceID"] for p in lc.h.EnumerateInstanceNames(NS, f"KVM_{cls}")}


def test_read_as_rasds_and_devices(lc):
    _define_guest(lc)
    rasds = lc.rasds("kinds")
    tpm, wd, rng = rasds["kinds/tpm"], rasds["kinds/watchdog"], rasds["kinds/rng"]
    assert tpm.classname == "KVM_TPMResourceAllocationSettingData"
    assert (tpm["ResourceType"], tpm["OtherResourceType"], tpm["ResourceSubType"],
            tpm["BackendType"], tpm["BackendVersion"]) == (1, "tpm", "tpm-crb", "emulator",
                                                           "2.0")
    assert wd.classname == "KVM_WatchdogResourceAllocationSettingData"
    assert (wd["ResourceType"], wd["OtherResourceType"], wd["ResourceSubType"],
            wd["Action"]) == (1, "watchdog", "ib700", "pause")
    assert rng.classname == "KVM_RNGResourceAllocationSettingData"
    assert (rng["ResourceType"], rng["OtherResourceType"], rng["ResourceSubType"],
            rng["BackendModel"], rng["BackendSource"], rng["RateBytes"],
            rng["RatePeriod"]) == (1, "rng", "virtio", "random", "/dev/random", 1234, 2000)
    assert "slot" in rng["AddressProperties"]
    assert "kinds/tpm" in _devices(lc, "TPM")
    assert "kinds/watchdog" in _devices(lc, "Watchdog")
    assert "kinds/rng" in _devices(lc, "RandomNumberGenerator")


def test_define_system_with_each_kind_and_its_defaults(lc):
    rc, _ = lc.invoke(lc.service(True), "DefineSystem",
                      SystemSettings=vssd(VirtualSystemIdentifier="k2"),
                      ResourceSettings=[_rasd("Mem", VirtualQuantity=Uint64(64),
                                              AllocationUnits="MegaBytes"),
                                        _rasd("TPM"), _rasd("Watchdog"), _rasd("RNG")])
    assert rc == 0
    root = etree.fromstring(lc.xml("k2"))
    tpm = root.find("devices/tpm")
    assert (tpm.get("model"), tpm.find("backend").get("type"),
            tpm.find("backend").get("version")) == ("tpm-tis", "emulator", "2.0")
    wd = root.find("devices/watchdog")
    assert (wd.get("model"), wd.get("action")) == ("i6300esb", "reset")
    rng = root.find("devices/rng")
    assert (rng.get("model"), rng.find("backend").get("model"),
            rng.findtext("backend")) == ("virtio", "random", "/dev/urandom")
    assert {"k2/tpm", "k2/watchdog", "k2/rng"} <= set(lc.rasds("k2"))


def test_add_modify_remove_each_kind_keeps_what_is_not_modelled(lc):
    _define_guest(lc)
    dom = lc.conn.lookupByName("kinds")
    # remove, then add back (generic RASDs: ResourceType 1 + OtherResourceType, and the
    # kind's own class for properties CIM_ResourceAllocationSettingData lacks)
    rasds = lc.rasds("kinds")
    rc, _ = lc.invoke(lc.service(), "RemoveResourceSettings",
                      ResourceSettings=[rasds[i].path for i in ("kinds/tpm", "kinds/watchdog",
                                                                "kinds/rng")])
    assert rc == 0
    root = etree.fromstring(lc.xml("kinds"))
    assert root.find("devices/tpm") is None and root.find("devices/watchdog") is None and \
        root.find("devices/rng") is None
    rc, out = lc.invoke(lc.service(), "AddResourceSettings",
                        AffectedConfiguration=vssd_path("kinds"), ResourceSettings=[
                            _generic("tpm", ResourceSubType="tpm-crb"),
                            _generic("watchdog", ResourceSubType="ib700"),
                            _rasd("RNG", RateBytes=Uint64(512), RatePeriod=Uint64(1000))])
    assert rc == 0
    assert [p["InstanceID"] for p in out["ResultingResourceSettings"]] == \
        ["kinds/tpm", "kinds/watchdog", "kinds/rng"]
    root = etree.fromstring(lc.xml("kinds"))
    assert root.find("devices/tpm").get("model") == "tpm-crb"
    assert root.find("devices/watchdog").get("model") == "ib700"
    assert root.find("devices/rng/rate").get("bytes") == "512"
    # modify each: only the property changed moves; unmodelled XML stays
    dom.undefine()
    lc.conn.defineXML(GUEST)
    rasds = lc.rasds("kinds")
    changed = []
    for iid, prop, value in (("kinds/tpm", "ResourceSubType", "tpm-tis"),
                             ("kinds/watchdog", "Action", "reset"),
                             ("kinds/rng", "RateBytes", Uint64(4096))):
        inst = rasds[iid]
        inst[prop] = value
        changed.append(inst)
    rc, _ = lc.invoke(lc.service(), "ModifyResourceSettings", ResourceSettings=changed)
    assert rc == 0
    root = etree.fromstring(lc.xml("kinds"))
    tpm = root.find("devices/tpm")
    assert tpm.get("model") == "tpm-tis"
    assert tpm.find("backend").get("persistent_state") == "yes"     # not modelled: kept
    wd = root.find("devices/watchdog")
    assert (wd.get("model"), wd.get("action")) == ("ib700", "reset")
    rng = root.find("devices/rng")
    assert (rng.find("rate").get("bytes"), rng.find("rate").get("period")) == ("4096", "2000")
    assert rng.findtext("backend") == "/dev/random"
    assert rng.find("address").get("slot") == "0x09"
    rasds = lc.rasds("kinds")
    assert rasds["kinds/tpm"]["ResourceSubType"] == "tpm-tis"
    assert rasds["kinds/watchdog"]["Action"] == "reset"
    assert rasds["kinds/rng"]["RateBytes"] == 4096


@pytest.mark.parametrize("cls,props,needle", [
    ("RNG", {"BackendSource": "/etc/shadow"}, "BackendSource"),
    ("Watchdog", {"Action": "explode"}, "Action"),
    ("TPM", {"BackendType": "nonsense"}, "BackendType"),
])
def test_values_outside_the_limits_are_refused_and_nothing_changes(lc, cls, props, needle):
    _define_guest(lc)
    before = c14n(lc.xml("kinds"))
    with pytest.raises(CIMError) as exc:
        lc.invoke(lc.service(), "AddResourceSettings", AffectedConfiguration=vssd_path("kinds"),
                  ResourceSettings=[_rasd(cls, **props)])
    assert exc.value.status_code == 4, exc.value
    assert needle in exc.value.status_description
    assert c14n(lc.xml("kinds")) == before


def test_a_tpm_device_path_is_not_writable(lc):
    _define_guest(lc)
    inst = lc.rasds("kinds")["kinds/tpm"]
    inst["DevicePath"] = "/dev/sda"
    before = c14n(lc.xml("kinds"))
    with pytest.raises(CIMError) as exc:
        lc.invoke(lc.service(), "ModifyResourceSettings", ResourceSettings=[inst])
    assert exc.value.status_code == 4 and "DevicePath" in exc.value.status_description
    assert c14n(lc.xml("kinds")) == before
