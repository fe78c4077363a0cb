"""The nwfilter libvirt layer on a private privileged libvirtd: listing, and edits that
lose nothing of a filter's or a domain's XML."""

from __future__ import annotations

import glob
import os

import libvirt
import pytest

from kvm_providers import model, virt
from kvm_providers.config import Config
from kvm_providers.virt import nwfilter as nf

from tests.fixtures.privileged_libvirtd import SHIPPED_FILTERS

from .conftest import GUEST, NIC1, NIC2, NIC3, RNIC1, RNIC2, RUNNING
from .support import ALL_RULES, without

# The layer finds a domain's interfaces by the device kinds, which it has none of its
# own: the CIM model declares them and installs them when imported (virt.devices.use_kinds).
assert model.kinds.KINDS

pytestmark = pytest.mark.libvirtd

SHIPPED = sorted(os.path.basename(p)[:-4] for p in glob.glob(f"{SHIPPED_FILTERS}/*.xml"))


@pytest.fixture(scope="module")
def host(daemon):
    cfg = Config()
    cfg.add_host(daemon.uri(), None, None)
    mgr = virt.configure(cfg.effective_hosts())
    assert mgr.wait_connected(20)
    yield mgr.hosts[0]
    virt.shutdown()


@pytest.fixture(scope="module")
def all_rules(conn):
    f = conn.nwfilterDefineXML(ALL_RULES)
    leaf = conn.nwfilterDefineXML("<filter name='kvmp-leaf'/>")
    yield f.name()
    for each in (f, leaf):
        each.undefine()


def test_lists_the_shipped_filters(host):
    assert len(SHIPPED) > 20
    names = nf.filter_names(host)
    assert set(SHIPPED) <= set(names)
    byname = {f.name: f for f in nf.list_filters(host)}
    ct = byname["clean-traffic"]
    assert "no-ip-spoofing" in ct.refs()
    assert ct.uuid == host.conn().nwfilterLookupByName("clean-traffic").UUIDString()
    assert nf.lookup_filter(host, "kvmp-no-such-filter") is None


@pytest.mark.parametrize("name", SHIPPED + ["kvmp-all-rules"])
def test_nesting_and_unnesting_keep_every_filter_unchanged(host, conn, all_rules, name):
    """Every shipped filter (and one with every rule kind): adding a reference changes
    nothing else; removing it again gives back libvirt's exact XML."""
    before = conn.nwfilterLookupByName(name).XMLDesc(0)
    nf.add_ref(host, name, "kvmp-leaf")
    during = conn.nwfilterLookupByName(name).XMLDesc(0)
    assert "<filterref filter='kvmp-leaf'/>" in during
    assert without(during, "filterref", filter="kvmp-leaf") == \
        without(before, "filterref", filter="kvmp-no-such")
    nf.remove_ref(host, name, "kvmp-leaf")
    assert conn.nwfilterLookupByName(name).XMLDesc(0) == before


def test_refused_reference_changes(host, all_rules):
    with pytest.raises(nf.FilterError) as e:
        nf.add_ref(host, "kvmp-all-rules", "allow-arp")
    assert e.value.kind == "exists"
    with pytest.raises(nf.FilterError) as e:
        nf.add_ref(host, "allow-arp", "kvmp-all-rules")     # kvmp-all-rules -> allow-arp
    assert e.value.kind == "loop"
    with pytest.raises(nf.FilterError) as e:
        nf.add_ref(host, "kvmp-leaf", "kvmp-leaf")
    assert e.value.kind == "loop"
    with pytest.raises(nf.FilterError) as e:
        nf.remove_ref(host, "kvmp-all-rules", "clean-traffic")
    assert e.value.kind == "not-found"
    with pytest.raises(nf.FilterError) as e:
        nf.add_ref(host, "kvmp-all-rules", "kvmp-no-such-filter")
    assert e.value.kind == "not-found"


def test_define_and_undefine(host, conn):
    with pytest.raises(nf.FilterError) as e:
        nf.define_filter(host, "kvmp-new", priority=-20)    # libvirt would drop it
    assert e.value.kind == "bad-value"
    made = nf.define_filter(host, "kvmp-new", priority=-20, chain="ipv4")
    try:
        assert (made.name, made.priority, made.rules(), made.refs()) == \
            ("kvmp-new", -20, [], [])
        assert conn.nwfilterLookupByName("kvmp-new").UUIDString() == made.uuid
        with pytest.raises(nf.FilterError) as e:
            nf.define_filter(host, "kvmp-new")
        assert e.value.kind == "exists"
    finally:
        nf.undefine_filter(host, "kvmp-new")
    with pytest.raises(libvirt.libvirtError):
        conn.nwfilterLookupByName("kvmp-new")
    with pytest.raises(nf.FilterError) as e:
        nf.undefine_filter(host, "kvmp-new")
    assert e.value.kind == "not-found"


def test_filters_in_use_are_not_undefined(host, conn):
    """libvirt itself undefines a filter that an inactive guest or another filter uses
    (it checks running guests only): the layer refuses."""
    with pytest.raises(nf.FilterError) as e:
        nf.undefine_filter(host, "clean-traffic")       # the guest's first NIC
    assert e.value.kind == "in-use" and NIC1 in str(e.value) and GUEST in str(e.value)
    with pytest.raises(nf.FilterError) as e:
        nf.undefine_filter(host, "no-ip-spoofing")      # nested in clean-traffic
    assert e.value.kind == "in-use" and "clean-traffic" in str(e.value)
    assert "clean-traffic" in conn.listNWFilters() and "no-ip-spoofing" in conn.listNWFilters()


def test_nic_filter_edits_keep_the_domain(host, conn):
    dom = conn.lookupByName(GUEST)
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
    before = dom.XMLDesc(flags)
    ref = virt.lookup_domain(host, GUEST)
    # replace the first NIC's filter: its parameters stay
    nf.set_nic_filter(ref, NIC1, "allow-arp")
    after = dom.XMLDesc(flags)
    assert "<filterref filter='allow-arp'>" in after and "value='10.0.0.7'" in after
    assert after.replace("'allow-arp'", "'clean-traffic'") == before
    nf.set_nic_filter(ref, NIC1, "clean-traffic")
    assert dom.XMLDesc(flags) == before
    # add one to the second NIC and take it away again
    nf.set_nic_filter(ref, NIC2, "allow-dhcp")
    assert nf.nic_filter(virt.lookup_domain(host, GUEST), NIC2, inactive=True) == "allow-dhcp"
    with pytest.raises(nf.FilterError) as e:
        nf.clear_nic_filter(ref, NIC2, "allow-arp")
    assert e.value.kind == "not-found"
    nf.clear_nic_filter(ref, NIC2, "allow-dhcp")
    assert dom.XMLDesc(flags) == before
    # libvirt drops a filter on a user-mode interface without an error: refused
    with pytest.raises(nf.FilterError) as e:
        nf.set_nic_filter(ref, NIC3, "allow-arp")
    assert e.value.kind == "bad-value" and "'user'" in str(e.value)
    assert dom.XMLDesc(flags) == before
    with pytest.raises(nf.FilterError) as e:
        nf.set_nic_filter(ref, "52:54:00:99:99:99", "allow-arp")
    assert e.value.kind == "not-found"
    with pytest.raises(nf.FilterError) as e:
        nf.set_nic_filter(ref, NIC2, "kvmp-no-such-filter")
    assert e.value.kind == "not-found"


def _iface_filter(xml: str, mac: str):
    from lxml import etree
    root = etree.fromstring(xml)
    for iface in root.iterfind("devices/interface"):
        if iface.find("mac").get("address") == mac:
            ref = iface.find("filterref")
            return None if ref is None else (ref.get("filter"),
                                             [p.get("name") for p in ref.iterfind("parameter")])
    raise AssertionError(f"no interface {mac}")


def test_running_guest_gets_the_filter_live_and_persistently(host, conn):
    dom = conn.lookupByName(RUNNING)
    assert dom.isActive()
    inactive = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
    before = dom.XMLDesc(inactive)
    ref = virt.lookup_domain(host, RUNNING)
    nf.set_nic_filter(ref, RNIC1, "allow-arp")
    assert _iface_filter(dom.XMLDesc(0), RNIC1) == ("allow-arp", [])
    assert _iface_filter(dom.XMLDesc(inactive), RNIC1) == ("allow-arp", [])
    nf.clear_nic_filter(ref, RNIC1, "allow-arp")
    assert _iface_filter(dom.XMLDesc(0), RNIC1) is None
    assert dom.XMLDesc(inactive) == before


def test_a_filter_only_the_running_guest_applies_is_in_use(host, conn):
    """A filter applied to the live interface only (not in the definition): still in use."""
    dom = conn.lookupByName(RUNNING)
    nf.define_filter(host, "kvmp-live-only")
    try:
        live = dom.XMLDesc(0)
        start = live.index(f"<mac address='{RNIC2}'/>")
        begin = live.rindex("<interface", 0, start)
        end = live.index("</interface>", start) + len("</interface>")
        iface = live[begin:end].replace("</interface>",
                                        "<filterref filter='kvmp-live-only'/></interface>")
        dom.updateDeviceFlags(iface, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        assert _iface_filter(dom.XMLDesc(0), RNIC2) == ("kvmp-live-only", [])
        assert _iface_filter(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), RNIC2) is None
        with pytest.raises(nf.FilterError) as e:
            nf.undefine_filter(host, "kvmp-live-only")
        assert e.value.kind == "in-use" and RNIC2 in str(e.value)
        # the persistent definition has no filter there: refused, and nothing changed
        with pytest.raises(nf.FilterError):
            nf.clear_nic_filter(virt.lookup_domain(host, RUNNING), RNIC2, "kvmp-live-only")
        dom.updateDeviceFlags(live[begin:end], libvirt.VIR_DOMAIN_AFFECT_LIVE)
    finally:
        nf.undefine_filter(host, "kvmp-live-only")
