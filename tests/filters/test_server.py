"""Network filters through the real embedded server with pywbem, on a private
privileged libvirtd: every class enumerated and got, associations both ways, filter
lists created and deleted, refusals with clear CIM errors, XML preserved."""

from __future__ import annotations

import libvirt
import pytest
from lxml import etree
from pywbem import CIMError, CIMInstance, CIMInstanceName
import pywbem

from .conftest import GUEST, NIC1, NIC2, NIC3, RNIC1, RUNNING
from .support import without

pytestmark = pytest.mark.libvirtd

RULE_CLASSES = ("KVM_Hdr8021Filter", "KVM_IPHeadersFilter", "KVM_FilterEntry")


@pytest.fixture(scope="module")
def w(server):
    return server.conn()


def _libvirt_filters(conn) -> dict[str, tuple[str, etree._Element]]:
    out = {}
    for f in conn.listAllNWFilters(0):
        out[f.name()] = (f.UUIDString(), etree.fromstring(f.XMLDesc(0)))
    return out


def _list_path(w, name: str) -> CIMInstanceName:
    return next(p for p in w.EnumerateInstanceNames("KVM_FilterList") if p["Name"] == name)


def _port_path(w, mac: str) -> CIMInstanceName:
    return next(p for p in w.EnumerateInstanceNames("KVM_NetworkPort")
                if p["DeviceID"] == f"{GUEST}/{mac}")


def test_filter_lists_are_libvirts(w, conn):
    lv = _libvirt_filters(conn)
    insts = w.EnumerateInstances("KVM_FilterList")
    assert sorted(i["Name"] for i in insts) == sorted(lv)
    for inst in insts:
        uuid, root = lv[inst["Name"]]
        assert inst["InstanceID"] == uuid
        assert inst["SystemCreationClassName"] == "KVM_HostSystem"
        assert inst["Direction"] == 0
        got = w.GetInstance(inst.path)
        assert got["InstanceID"] == uuid and got["Priority"] == inst["Priority"]
    names = w.EnumerateInstanceNames("KVM_FilterList")
    assert sorted(p["Name"] for p in names) == sorted(lv)
    assert w.GetInstance(_list_path(w, "no-ip-spoofing"))["Priority"] == -710


def test_every_rule_is_an_instance(w, conn):
    lv = _libvirt_filters(conn)
    want = {f"{name}:{i}" for name, (_u, root) in lv.items()
            for i, _r in enumerate(root.iterfind("rule"))}
    got = {}
    for cls in RULE_CLASSES:
        for inst in w.EnumerateInstances(cls):
            assert inst.classname == cls
            got[inst["Name"]] = inst
    assert set(got) == want
    # spot checks against the shipped XML: no-ip-spoofing's first rule
    first = got["no-ip-spoofing:0"]
    assert first.classname == "KVM_IPHeadersFilter"
    assert (first["Action"], first["Direction"], first["Priority"],
            first["HdrIPVersion"], first["HdrProtocolID"]) == (4, 2, 100, 4, 17)
    assert list(first["HdrSrcAddress"]) == [0, 0, 0, 8, 0, 0, 0, 0]
    for name in ("no-ip-spoofing:0", "no-ip-spoofing:2", "allow-arp:0"):
        inst = got[name]
        again = w.GetInstance(inst.path)
        assert {k: v for k, v in again.items()} == {k: v for k, v in inst.items()}


def test_bad_rule_and_list_paths_are_not_found(w):
    base = _list_path(w, "no-ip-spoofing")
    for cls, name in (("KVM_IPHeadersFilter", "no-ip-spoofing:9"),
                      ("KVM_Hdr8021Filter", "no-ip-spoofing:0"),     # wrong class
                      ("KVM_IPHeadersFilter", "no-ip-spoofing"),
                      ("KVM_FilterList", "kvmp-no-such")):
        kb = dict(base.keybindings, CreationClassName=cls, Name=name)
        with pytest.raises(CIMError) as e:
            w.GetInstance(CIMInstanceName(cls, kb, namespace="root/virt"))
        assert e.value.status_code == pywbem.CIM_ERR_NOT_FOUND


def test_entries_in_filter_list_both_ways(w, conn):
    lv = _libvirt_filters(conn)
    for name in ("clean-traffic", "no-ip-spoofing", "allow-dhcp"):
        lp = _list_path(w, name)
        parts = w.AssociatorNames(lp, AssocClass="KVM_EntriesInFilterList",
                                  ResultClass="CIM_FilterEntryBase")
        assert sorted(p["Name"] for p in parts) == \
            sorted(f"{name}:{i}" for i in range(len(lv[name][1].findall("rule"))))
        for p in parts:
            back = w.AssociatorNames(p, AssocClass="KVM_EntriesInFilterList")
            assert [b["Name"] for b in back] == [name]
    refs = w.References(_list_path(w, "no-ip-spoofing"), ResultClass="KVM_EntriesInFilterList")
    assert refs and all(r["EntrySequence"] == 0 for r in refs)


def test_nested_filter_lists_both_ways(w, conn):
    lv = _libvirt_filters(conn)
    ct = _list_path(w, "clean-traffic")
    children = w.AssociatorNames(ct, AssocClass="KVM_NestedFilterList", Role="Antecedent")
    assert [p["Name"] for p in children] == \
        [r.get("filter") for r in lv["clean-traffic"][1].iterfind("filterref")]
    parents = w.AssociatorNames(_list_path(w, "no-ip-spoofing"),
                                AssocClass="KVM_NestedFilterList", Role="Dependent")
    assert sorted(p["Name"] for p in parents) == \
        sorted(n for n, (_u, r) in lv.items()
               if "no-ip-spoofing" in [x.get("filter") for x in r.iterfind("filterref")])
    assert "clean-traffic" in [p["Name"] for p in parents]
    # without a role: both directions (DSP0200), libvirt-cim gave children only
    both = w.AssociatorNames(_list_path(w, "no-ip-spoofing"), AssocClass="KVM_NestedFilterList")
    assert sorted(p["Name"] for p in both) == sorted(p["Name"] for p in parents)


def test_hosted_filter_list_both_ways(w, conn):
    host = w.EnumerateInstanceNames("KVM_HostSystem")[0]
    lists = w.AssociatorNames(host, AssocClass="KVM_HostedFilterList")
    assert sorted(p["Name"] for p in lists) == sorted(conn.listNWFilters())
    back = w.AssociatorNames(_list_path(w, "allow-arp"), AssocClass="KVM_HostedFilterList")
    assert [b["Name"] for b in back] == [host["Name"]]


def test_applied_filter_list_both_ways(w):
    nic1 = _port_path(w, NIC1)
    got = w.AssociatorNames(nic1, AssocClass="KVM_AppliedFilterList")
    assert [p["Name"] for p in got] == ["clean-traffic"]
    ports = w.AssociatorNames(_list_path(w, "clean-traffic"), AssocClass="KVM_AppliedFilterList")
    assert [p["DeviceID"] for p in ports] == [f"{GUEST}/{NIC1}"]
    assert w.AssociatorNames(_port_path(w, NIC2), AssocClass="KVM_AppliedFilterList") == []
    inst = w.EnumerateInstances("KVM_AppliedFilterList")
    assert [(i["Antecedent"]["DeviceID"], i["Dependent"]["Name"]) for i in inst] == \
        [(f"{GUEST}/{NIC1}", "clean-traffic")]


def test_create_nest_apply_and_delete(w, conn):
    """libvirt-cim's sequence (cimtest FilterList/03_create): a new list, clean-traffic
    nested in it, the list applied to a NIC; then everything taken back."""
    dom = conn.lookupByName(GUEST)
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
    dom_before = dom.XMLDesc(flags)
    path = w.CreateInstance(CIMInstance("KVM_FilterList", {"Name": "kvmp-created"}))
    try:
        assert path["Name"] == "kvmp-created" and path.classname == "KVM_FilterList"
        inst = w.GetInstance(path)
        assert inst["InstanceID"] == conn.nwfilterLookupByName("kvmp-created").UUIDString()
        with pytest.raises(CIMError) as e:
            w.CreateInstance(CIMInstance("KVM_FilterList", {"Name": "kvmp-created"}))
        assert e.value.status_code == pywbem.CIM_ERR_ALREADY_EXISTS

        ct = _list_path(w, "clean-traffic")
        nested = w.CreateInstance(CIMInstance("KVM_NestedFilterList",
                                              {"Antecedent": path, "Dependent": ct}))
        xml = conn.nwfilterLookupByName("kvmp-created").XMLDesc(0)
        assert "<filterref filter='clean-traffic'/>" in xml
        assert w.GetInstance(nested)["Dependent"]["Name"] == "clean-traffic"
        with pytest.raises(CIMError) as e:     # clean-traffic -> ... must not reach back
            w.CreateInstance(CIMInstance("KVM_NestedFilterList",
                                         {"Antecedent": ct, "Dependent": path}))
        assert e.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
        assert "loop" in e.value.status_description

        applied = w.CreateInstance(CIMInstance("KVM_AppliedFilterList",
                                               {"Antecedent": _port_path(w, NIC2),
                                                "Dependent": path}))
        assert "kvmp-created" in dom.XMLDesc(flags)
        got = w.AssociatorNames(_port_path(w, NIC2), AssocClass="KVM_AppliedFilterList")
        assert [p["Name"] for p in got] == ["kvmp-created"]

        # in use by a NIC: refused, naming the user
        with pytest.raises(CIMError) as e:
            w.DeleteInstance(path)
        assert e.value.status_code == pywbem.CIM_ERR_FAILED
        assert "in use" in e.value.status_description and NIC2 in e.value.status_description
        w.DeleteInstance(applied)
        assert dom.XMLDesc(flags) == dom_before
        # clean-traffic is nested in kvmp-created (and applied to NIC1): refused
        with pytest.raises(CIMError) as e:
            w.DeleteInstance(ct)
        assert "kvmp-created" in e.value.status_description
        w.DeleteInstance(nested)
        assert "filterref" not in conn.nwfilterLookupByName("kvmp-created").XMLDesc(0)
        with pytest.raises(CIMError) as e:
            w.DeleteInstance(nested)
        assert e.value.status_code == pywbem.CIM_ERR_NOT_FOUND
    finally:
        w.DeleteInstance(path)
    assert "kvmp-created" not in conn.listNWFilters()
    with pytest.raises(CIMError) as e:
        w.DeleteInstance(path)
    assert e.value.status_code == pywbem.CIM_ERR_NOT_FOUND


@pytest.mark.parametrize("name", ["", "..", "a/b", " lead", "tab\there", "x" * 300, None])
def test_bad_names_are_refused(w, conn, name):
    props = {} if name is None else {"Name": name}
    before = sorted(conn.listNWFilters())
    with pytest.raises(CIMError) as e:
        w.CreateInstance(CIMInstance("KVM_FilterList", props))
    assert e.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert "Name" in e.value.status_description
    assert sorted(conn.listNWFilters()) == before


def test_other_refused_creations(w, conn):
    before = sorted(conn.listNWFilters())
    for props in ({"Name": "kvmp-p", "Priority": pywbem.Sint16(-5)},
                  {"Name": "kvmp-p", "SystemName": "not-this-host"},
                  {"Name": "kvmp-p", "CreationClassName": "KVM_Other"}):
        with pytest.raises(CIMError) as e:
            w.CreateInstance(CIMInstance("KVM_FilterList", props))
        assert e.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    # a filter on a user-mode interface would be dropped by libvirt: refused
    with pytest.raises(CIMError) as e:
        w.CreateInstance(CIMInstance("KVM_AppliedFilterList",
                                     {"Antecedent": _port_path(w, NIC3),
                                      "Dependent": _list_path(w, "allow-arp")}))
    assert e.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    with pytest.raises(CIMError) as e:
        w.CreateInstance(CIMInstance("KVM_NestedFilterList",
                                     {"Antecedent": _list_path(w, "allow-arp")}))
    assert e.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    with pytest.raises(CIMError) as e:
        w.ModifyInstance(w.GetInstance(_list_path(w, "allow-arp")))
    assert e.value.status_code == pywbem.CIM_ERR_NOT_SUPPORTED
    assert sorted(conn.listNWFilters()) == before


def test_nesting_through_cim_keeps_the_filter(w, conn):
    """Every rule attribute of a shipped filter survives a NestedFilterList create and
    delete (libvirt-cim rewrote the filter from its parsed subset)."""
    leaf = w.CreateInstance(CIMInstance("KVM_FilterList", {"Name": "kvmp-leaf2"}))
    try:
        for name in ("clean-traffic-gateway", "allow-dhcp-server", "no-arp-ip-spoofing"):
            before = conn.nwfilterLookupByName(name).XMLDesc(0)
            nested = w.CreateInstance(CIMInstance(
                "KVM_NestedFilterList", {"Antecedent": _list_path(w, name), "Dependent": leaf}))
            during = conn.nwfilterLookupByName(name).XMLDesc(0)
            assert without(during, "filterref", filter="kvmp-leaf2") == \
                without(before, "filterref", filter="kvmp-none")
            w.DeleteInstance(nested)
            assert conn.nwfilterLookupByName(name).XMLDesc(0) == before
    finally:
        w.DeleteInstance(leaf)


def test_applied_to_a_running_guest_at_once(w, conn):
    """The running guest's interface gets the filter now (and in its definition)."""
    port = next(p for p in w.EnumerateInstanceNames("KVM_NetworkPort")
                if p["DeviceID"] == f"{RUNNING}/{RNIC1}")
    applied = w.CreateInstance(CIMInstance("KVM_AppliedFilterList",
                                           {"Antecedent": port,
                                            "Dependent": _list_path(w, "allow-dhcp")}))
    try:
        got = w.AssociatorNames(port, AssocClass="KVM_AppliedFilterList")
        assert [p["Name"] for p in got] == ["allow-dhcp"]
        assert "filterref filter='allow-dhcp'" in conn.lookupByName(RUNNING).XMLDesc(0)
        with pytest.raises(CIMError) as e:
            w.DeleteInstance(_list_path(w, "allow-dhcp"))
        assert RNIC1 in e.value.status_description
    finally:
        w.DeleteInstance(applied)
    assert w.AssociatorNames(port, AssocClass="KVM_AppliedFilterList") == []
