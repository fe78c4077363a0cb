"""The libvirt layer on its own: keys, device kinds, mapping tables (read and write),
editing in place, per-request memoization, connection supervision."""

from __future__ import annotations

import threading
import time

import libvirt
import pytest
from lxml import etree

from kvm_providers.config import HostConfig
from kvm_providers.provider import request_scope
from kvm_providers.virt import (DomainNotFound, HostUnavailable, domain_state, domain_xml, edit,
                                keys, list_domains, lookup_domain, mapping)
from kvm_providers.providers.common import states
from kvm_providers.model.kinds import KIND_BY_NAME, kind_for_class
from kvm_providers.model import settings
from kvm_providers.model.settings import InvalidSetting, Props, new_device
from kvm_providers.model.vssd import VSSD
from kvm_providers.virt.domain import parse_xml


def c14n(el) -> bytes:
    return etree.tostring(el, method="c14n")


# -- keys ---------------------------------------------------------------------------

def test_keys_single_host_are_libvirt_cims(layer, node_uri):
    mgr = layer(node_uri)
    host = mgr.hosts[0]
    assert not host.qualified
    assert keys.cs_name(host, "vm1") == "vm1"
    assert keys.vssd_id(host, "vm1") == "KVM:vm1"
    assert keys.device_id(host, "vm1", "vda") == "vm1/vda"
    assert keys.vsmc_id(host) == "ManagementCapabilities"
    assert keys.parse_cs_name("KVM", "vm1") == (host, "vm1")
    assert keys.parse_cs_name("LXC", "vm1") is None          # no LXC host
    assert keys.parse_vssd_id("KVM", "KVM:a:b") == (host, "a:b")
    assert keys.parse_vssd_id("KVM", "LXC:vm1") is None
    assert keys.parse_device_id("KVM", "vm1/controller:usb:0") == (host, "vm1", "controller:usb:0")
    assert keys.parse_device_id("KVM", "vm1/dir/with/slash") == (host, "vm1", "dir/with/slash")
    assert keys.parse_device_id("KVM", "novm") is None


def test_keys_several_hosts_carry_the_label(layer, tmp_path):
    from tests.fixtures.generate import write_node
    a = write_node(str(tmp_path / "a.xml"), 1)
    b = write_node(str(tmp_path / "b.xml"), 1)
    mgr = layer("test://" + a, "test://" + b, names={0: "lab1", 1: "lab2"})
    h1, h2 = mgr.hosts
    assert h1.qualified and h2.qualified
    assert keys.cs_name(h1, "vm:1") == "lab1:vm:1"
    assert keys.vssd_id(h2, "vm1") == "KVM:lab2:vm1"
    assert keys.device_id(h1, "a:b", "vda") == "lab1:a:b/vda"
    assert keys.parse_cs_name("KVM", "lab2:vm:1") == (h2, "vm:1")
    assert keys.parse_device_id("KVM", "lab1:a:b/vda") == (h1, "a:b", "vda")
    assert keys.parse_vssd_id("KVM", "KVM:lab1:x") == (h1, "x")
    assert keys.parse_cs_name("KVM", "nolabel") is None
    assert keys.parse_cs_name("KVM", "lab3:vm1") is None
    assert keys.host_name(h1, "h.example") != keys.host_name(h2, "h.example")


def test_kind_for_class():
    assert kind_for_class("KVM_LogicalDisk") == (KIND_BY_NAME["disk"], "device")
    assert kind_for_class("LXC_NetResourceAllocationSettingData") == (KIND_BY_NAME["net"],
                                                                       "rasd")
    assert kind_for_class("KVM_ComputerSystem") == (None, "")


# -- the domain model against libvirt's own view ---------------------------------------

def test_settings_and_devices_match_libvirt(layer, node_uri, lv):
    mgr = layer(node_uri)
    host = mgr.hosts[0]
    with request_scope():
        refs = list_domains(host)
        assert [r.name for r in refs] == sorted(d.name() for d in lv.listAllDomains())
        for ref in refs:
            dom = lv.lookupByName(ref.name)
            assert ref.uuid == dom.UUIDString()
            assert domain_state(ref) == tuple(dom.state())
            root = etree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE))
            doc = domain_xml(ref)
            by_kind = {}
            for s in doc.settings():
                by_kind.setdefault(s.kind.name, []).append(s)
            assert len(by_kind.get("disk", [])) == len(root.xpath(
                "devices/disk | devices/filesystem"))
            assert len(by_kind.get("net", [])) == len(root.xpath("devices/interface"))
            assert len(by_kind.get("graphics", [])) == len(root.xpath("devices/graphics"))
            assert len(by_kind.get("input", [])) == len(root.xpath("devices/input"))
            assert len(by_kind.get("console", [])) == len(root.xpath("devices/console"))
            assert len(by_kind.get("controller", [])) == len(root.xpath("devices/controller"))
            ids = [s.devid for s in doc.settings()]
            assert len(ids) == len(set(ids)), ids
            info = dom.info()      # state, maxMem KiB, memory KiB, vcpus, cpu time
            ctx = doc.context()
            proc = doc.setting("proc")
            assert proc.read("VirtualQuantity", ctx) == info[3]
            assert len(doc.devices_of("proc")) == info[3]
            mem = doc.setting("mem")
            assert mem.read("Limit", ctx) == info[1]
            assert mem.read("VirtualQuantity", ctx) == info[2]
            macs = sorted(root.xpath("devices/interface/mac/@address"))
            assert sorted(s.read("Address") for s in by_kind.get("net", [])) == macs


def test_full_domain_values(layer, node_uri, lv):
    mgr = layer(node_uri)
    host = mgr.hosts[0]
    with request_scope():
        doc = domain_xml(lookup_domain(host, "full"))
        ctx = doc.context()

        def props(devid):
            s = doc.setting(devid)
            assert s is not None, f"no setting {devid}: {[x.devid for x in doc.settings()]}"
            return {k: f.read(s.element, ctx) for k, f in s.table.items()}

        vda = props("vda")
        assert vda["Address"] == "/var/lib/libvirt/images/full-root.qcow2"
        assert vda["EmulatedType"] == 0 and vda["BusType"] == "virtio"
        assert (vda["DriverName"], vda["DriverType"], vda["DriverCache"]) == \
            ("qemu", "qcow2", "writeback")
        assert vda["PoolID"] == "DiskPool/images"
        vol = lv.storageVolLookupByPath("/var/lib/libvirt/images/full-root.qcow2")
        assert vda["VirtualQuantity"] == vol.info()[1]
        assert props("vdb")["shareable"] is True
        cd = props("sdc")
        assert cd["EmulatedType"] == 1 and cd["readonly"] is True and cd["Address"] == ""
        assert cd["Parent"] == "full/controller:sata:0"
        assert props("fda")["EmulatedType"] == 2
        lun = props("sda")
        assert lun["EmulatedType"] == 4 and lun["rawio"] == "yes"
        assert lun["Address"] == "/dev/sdz" and lun["Parent"] == "full/controller:scsi:0"
        assert props("vdc")["Address"] == "rbdpool/image1"
        fs = props("hostshare")
        assert fs["EmulatedType"] == 3 and fs["Address"] == "/srv/share"
        net = props("52:54:00:aa:00:01")
        assert (net["NetworkType"], net["NetworkName"], net["PoolID"]) == \
            ("network", "default", "NetworkPool/default")
        assert (net["Reservation"], net["Limit"], net["FilterRef"]) == (1000, 5000,
                                                                        "clean-traffic")
        assert props("52:54:00:aa:00:02")["VSIManagerID"] == "11"
        direct = props("52:54:00:aa:00:03")
        assert (direct["SourceDevice"], direct["NetworkMode"]) == ("eth0", "vepa")
        vnc = props("vnc")
        assert vnc["Address"] == "0.0.0.0:5901" and vnc["KeyMap"] == "de"
        assert vnc["Password"] == "********"
        assert props("spice")["Address"] == "127.0.0.1:-1"
        assert props("tablet:usb")["Caption"] == "USB Tablet"
        assert props("tablet:usb#2")["BusType"] == "usb"
        assert props("keyboard:ps2")["ResourceSubType"] == "keyboard"
        con = props("charconsole:1")
        assert con["SourceType"] == 8 and con["BindURL"] == "telnet://127.0.0.1:4555"
        assert con["TargetType"] == "virtio"
        vs = props("controller:virtio-serial:0")
        assert (vs["Ports"], vs["Vectors"]) == ("16", "4")
        assert props("controller:scsi:0")["Queues"] == "4"
        assert props("proc")["Weight"] == 2048
        vssd = {k: f.read(doc.root, ctx) for k, f in VSSD.items()}
        assert vssd["BootDevices"] == ["hd", "cdrom", "network"]
        assert vssd["ClockOffset"] == 1 and vssd["AutomaticRecoveryAction"] == 123
        assert vssd["Notes"] == ["All the devices\nsecond line"]
        assert vssd["Machine"] == "pc-q35-7.2" and vssd["EnablePAE"] is True
        assert vssd["AutoStart"] == int(lv.lookupByName("full").autostart())


def test_states_and_saved_domains(layer, node_uri, lv):
    mgr = layer(node_uri)
    host = mgr.hosts[0]
    with request_scope():
        for ref in list_domains(host):
            st = domain_state(ref)[0]
            saved = lv.lookupByName(ref.name).hasManagedSaveImage()
            want = {1: 2, 3: 9, 5: 6 if saved else 3, 6: 3}[st]
            assert states.enabled_state(st, bool(saved)) == want
    assert states.enabled_state(states.SHUTDOWN) == 4
    assert states.enabled_state(states.NOSTATE) == 0


# -- writes ---------------------------------------------------------------------------

def test_applying_read_values_changes_nothing(layer, node_uri):
    """Read every writable property of every setting and write it back: same XML."""
    mgr = layer(node_uri)
    with request_scope():
        for ref in list_domains(mgr.hosts[0]):
            doc = edit.editable(ref)
            before = c14n(doc.root)
            ctx = doc.context()
            for s in doc.settings():
                values = {k: f.read(s.element, ctx) for k, f in s.table.items() if f.writable}
                mapping.apply_props(s.table, s.element, values, ctx)
            values = {k: f.read(doc.root, ctx) for k, f in VSSD.items() if f.writable}
            mapping.apply_props(VSSD, doc.root, values, ctx)
            assert c14n(doc.root) == before, ref.name


PRESERVED = ["metadata", "title", "os/loader", "os/nvram", "cputune/vcpupin", "on_reboot",
             "seclabel", "devices/serial", "devices/channel", "devices/hostdev",
             "devices/video", "devices/sound", "devices/watchdog", "devices/rng",
             "devices/memballoon", "devices/disk[@type='network']",
             "devices/graphics[@type='spice']", "devices/interface/virtualport",
             "devices/interface/bandwidth", "devices/interface/filterref"]


def test_edit_define_preserves_what_the_mapping_does_not_know(layer, node_uri):
    mgr = layer(node_uri)
    host = mgr.hosts[0]
    with request_scope():
        ref = lookup_domain(host, "full")
        doc = edit.editable(ref)
        old = {p: [c14n(e) for e in doc.root.xpath(p)] for p in PRESERVED}
        assert all(old.values()), [p for p, v in old.items() if not v]
        assert settings.apply_system(doc, {"AutomaticRecoveryAction": 3, "EnableACPI": False,
                                       "BootDevices": ["cdrom", "hd"],
                                       "VirtualSystemType": "ignored (not mapped)"})
        settings.apply_setting(doc, doc.setting("vda"), {"DriverCache": "none",
                                                     "ResourceType": 17})
        with pytest.raises(mapping.NotWritable):
            mapping.apply_props(doc.setting("vda").table, doc.setting("vda").element,
                                {"ResourceType": 10}, skip_unwritable=False)
        settings.apply_setting(doc, doc.setting("mem"), {"VirtualQuantity": 524288})
        # The one builder of new devices (the management service's): kinds/disk.py.
        el = new_device(host, "KVM", doc, KIND_BY_NAME["disk"],
                        Props({"Address": "/var/lib/libvirt/images/data.img",
                               "VirtualDevice": "vdz", "BusType": "virtio",
                               "DriverType": "raw"}), "test", {})
        edit.append_device(doc, KIND_BY_NAME["disk"], el)
        assert edit.setting_of(doc, el).devid == "vdz"
        assert edit.remove_setting(doc, "52:54:00:aa:00:04")
        assert not edit.remove_setting(doc, "nothing")
        edit.define(doc)
    # A fresh look through libvirt, in a new request.
    with request_scope():
        ref = lookup_domain(host, "full")
        root = parse_xml(ref.dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE |
                                         libvirt.VIR_DOMAIN_XML_INACTIVE))
        for p, items in old.items():
            assert [c14n(e) for e in root.xpath(p)] == items, f"{p} changed"
        assert root.findtext("on_crash") == "restart"
        assert root.find("features/acpi") is None
        assert root.xpath("os/boot/@dev") == ["cdrom", "hd"]
        assert root.xpath("devices/disk[target/@dev='vda']/driver/@cache") == ["none"]
        assert root.findtext("currentMemory") == "524288"
        assert root.xpath("devices/disk[target/@dev='vdz']/source/@file") == \
            ["/var/lib/libvirt/images/data.img"]
        assert not root.xpath("devices/interface[mac/@address='52:54:00:aa:00:04']")
        assert root.xpath("devices/graphics[@type='vnc']/@passwd") == ["secret"]


def test_adding_processor_settings_is_refused(layer, node_uri):
    mgr = layer(node_uri)
    with request_scope():
        doc = edit.editable(lookup_domain(mgr.hosts[0], "paused"))
        with pytest.raises(InvalidSetting, match="cannot be added"):
            new_device(mgr.hosts[0], "KVM", doc, KIND_BY_NAME["proc"], Props({}), "test", {})


# -- memoization: one XML fetch per domain and request ---------------------------------

def test_one_xml_fetch_per_domain_and_request(layer, node_uri, monkeypatch):
    calls = []
    real = libvirt.virDomain.XMLDesc

    def counting(self, flags=0):
        calls.append(self.name())
        return real(self, flags)
    monkeypatch.setattr(libvirt.virDomain, "XMLDesc", counting)
    mgr = layer(node_uri)
    host = mgr.hosts[0]
    with request_scope():
        refs = list_domains(host)
        for _ in range(3):
            for r in refs:
                domain_xml(r).settings()
        assert sorted(calls) == sorted(r.name for r in refs)
    calls.clear()
    with request_scope():
        domain_xml(lookup_domain(host, "full"))
        domain_xml(lookup_domain(host, "full"))
    assert calls == ["full"]


def test_vanished_domain(layer, node_uri):
    mgr = layer(node_uri)
    host = mgr.hosts[0]
    with request_scope():
        assert lookup_domain(host, "no-such-domain") is None
        ref = lookup_domain(host, "stopped")
        ref.dom.undefine()
        with pytest.raises(DomainNotFound):
            domain_xml(ref)


# -- connection supervision -----------------------------------------------------------

class FlakyOpener:
    """Opens the test driver, or fails while `down` is set; counts attempts."""

    def __init__(self, uri):
        self.uri, self.down, self.attempts = uri, False, 0

    def __call__(self, uri):
        self.attempts += 1
        if self.down:
            raise libvirt.libvirtError("connection refused (simulated)")
        return libvirt.open(self.uri)


def test_host_unavailable_fails_fast_and_recovers(layer, node_uri):
    opener = FlakyOpener(node_uri)
    opener.down = True
    mgr = layer(node_uri, opener=opener, backoff=(0.05, 0.2), retry_wait=0.5)
    host = mgr.hosts[0]
    t0 = time.monotonic()
    with pytest.raises(HostUnavailable) as err:
        host.conn()
    assert time.monotonic() - t0 < 2.0
    assert err.value.reason == "host-unavailable" and host.label in str(err.value)
    assert "simulated" in str(err.value)
    opener.down = False
    deadline = time.monotonic() + 5
    while not host.is_up and time.monotonic() < deadline:
        time.sleep(0.02)
    assert host.is_up
    gen = host.generation
    c = host.conn()
    assert c.getType() == "TEST"
    # Lose the connection: requests fail fast while it is away, then it comes back.
    opener.down = True
    host.lost(c, "simulated loss")
    t0 = time.monotonic()
    with pytest.raises(HostUnavailable):
        with request_scope():
            list_domains(host)
    assert time.monotonic() - t0 < 2.0
    opener.down = False
    deadline = time.monotonic() + 5
    while not host.is_up and time.monotonic() < deadline:
        time.sleep(0.02)
    assert host.is_up and host.generation > gen
    with request_scope():
        assert list_domains(host)


def test_in_process_connection_gives_its_load_back(layer, node_uri, monkeypatch):
    """An in-process driver (test://) parses its node file when it opens, in the thread
    that opens it, and frees the document there: the C heap is trimmed once per
    connection opened (stop 31), and never for a daemon's connection."""
    from kvm_providers.virt import connection as vconn, malloc
    trims = []
    monkeypatch.setattr(malloc, "trim", lambda: trims.append(1) or True)
    opener = FlakyOpener(node_uri)
    mgr = layer(node_uri, opener=opener, backoff=(0.05, 0.2))
    assert mgr.wait_connected(5)
    host = mgr.hosts[0]
    assert len(trims) == 1 and opener.attempts == 1
    host.lost(host.conn(), "simulated loss")            # a reconnection opens again
    deadline = time.monotonic() + 5
    while (not host.is_up or opener.attempts < 2) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert host.is_up and len(trims) == 2
    # A daemon's URI (the connection itself faked by the test driver): no trim.
    remote = vconn.Host(HostConfig.make("qemu+tcp://127.0.0.1/system", name="r"),
                        opener=FlakyOpener(node_uri), first_wait=5)
    try:
        assert remote.conn().getType() == "TEST"
        assert len(trims) == 2
    finally:
        remote.close()


def test_trim_is_glibc_malloc_trim():
    """The trim is glibc's (this machine's C library) and can be called."""
    from kvm_providers.virt import malloc
    assert malloc.libc_trim() is not None
    assert malloc.trim() is True


def test_one_connection_shared_by_threads(layer, node_uri):
    opener = FlakyOpener(node_uri)
    mgr = layer(node_uri, opener=opener)
    mgr.wait_connected(5)
    host = mgr.hosts[0]
    errors = []

    def work():
        try:
            for _ in range(50):
                with request_scope():
                    for r in list_domains(host):
                        domain_xml(r).settings()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert opener.attempts == 1
