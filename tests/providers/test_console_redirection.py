"""KVM redirection (DSP1076) end to end through the embedded server and pywbem on the
fixture node: the console redirection service and its capabilities, one access point
per VNC/SPICE console cross-checked against the domain XML, HostedAccessPoint and
ServiceAccessBySAP both ways, ElementCapabilities, HostedService, the DSP1076 profile;
and the IPv6 listen address round trip (graphics RASD Address, IsIPv6Only,
DisplayController, access point) on test:///default."""

from __future__ import annotations

import pytest
from lxml import etree
from pywbem import CIMError, CIMInstance, CIMInstanceName, Uint16

from tests.support.server import start_server

NS = "root/virt"
CRS = "KVM_ConsoleRedirectionService"
CRSC = "KVM_ConsoleRedirectionServiceCapabilities"
SAP = "KVM_KVMRedirectionSAP"
DSP1076 = "CIM:DSP1076-KVMRedirection-1.0.0"


def expected_saps(lv) -> dict[tuple[str, str], dict]:
    """{(domain, Name): expected properties} read from libvirt's own XML: one access
    point per <graphics type='vnc|spice'>; nothing listens on the test driver unless
    the domain runs and has a port."""
    out = {}
    for dom in lv.listAllDomains():
        root = etree.fromstring(dom.XMLDesc(0))
        seen: dict[str, int] = {}
        for g in root.findall("devices/graphics"):
            gtype = g.get("type")
            seen[gtype] = seen.get(gtype, 0) + 1
            devid = gtype if seen[gtype] == 1 else f"{gtype}#{seen[gtype]}"
            if gtype not in ("vnc", "spice"):
                continue
            port = int(g.get("port") or -1)
            port = port if port > 0 else -1
            listening = dom.isActive() and port > 0
            session = 0 if listening else -1
            name = f"{port}:{session}" if devid == "vnc" else f"{devid}:{port}:{session}"
            listen = g.get("listen") or g.find("listen").get("address")
            out[(dom.name(), name)] = {
                "KVMProtocol": 4 if gtype == "vnc" else 1,
                "OtherKVMProtocol": None if gtype == "vnc" else "SPICE",
                "EnabledState": 6 if listening else 3,
                "ListenAddress": listen,
                "ListenPort": port if port > 0 else None,
                "IsIPv6Only": ":" in listen and listen != "::",
                "ElementName": name,
                "RequestedState": 12,
            }
    return out


def crs_path(conn) -> CIMInstanceName:
    return conn.EnumerateInstanceNames(CRS)[0]


def test_service_and_capabilities(conn, lv):
    host = conn.EnumerateInstanceNames("KVM_HostSystem")[0]
    svcs = conn.EnumerateInstances(CRS)
    assert len(svcs) == 1
    svc = svcs[0]
    assert dict(svc.path.keybindings) == {
        "CreationClassName": CRS, "Name": "ConsoleRedirectionService",
        "SystemCreationClassName": "KVM_HostSystem", "SystemName": lv.getHostname()}
    assert (svc["ElementName"], svc["RedirectionServiceType"], svc["SharingMode"],
            svc["MaxCurrentEnabledSAPs"], svc["EnabledState"], svc["RequestedState"]) == \
        ("ConsoleRedirectionService", [3], 3, 65535, 2, 12)
    assert conn.GetInstance(svc.path)["SharingMode"] == 3
    caps = conn.EnumerateInstances(CRSC)
    assert [(c["InstanceID"], c["ElementName"], c["SharingModeSupported"],
             c["ElementNameEditSupported"]) for c in caps] == \
        [("ConsoleRedirectionCapabilities", "ConsoleRedirectionCapabilities", [3], False)]
    assert conn.GetInstance(caps[0].path)["InstanceID"] == "ConsoleRedirectionCapabilities"
    # ElementCapabilities: service <-> capabilities, host -> capabilities, and back
    assert [p.classname for p in conn.AssociatorNames(
        svc.path, AssocClass="KVM_ElementCapabilities")] == [CRSC]
    assert CRSC in [p.classname for p in conn.AssociatorNames(
        host, AssocClass="KVM_ElementCapabilities")]
    assert {p.classname for p in conn.AssociatorNames(
        caps[0].path, AssocClass="KVM_ElementCapabilities")} == {"KVM_HostSystem", CRS}
    # HostedService both ways
    assert CRS in [p.classname for p in conn.AssociatorNames(
        host, AssocClass="KVM_HostedService")]
    assert [p["Name"] for p in conn.AssociatorNames(
        svc.path, AssocClass="KVM_HostedService")] == [host["Name"]]
    # not found, other families
    bad = svc.path.copy()
    bad["SystemName"] = "elsewhere"
    with pytest.raises(CIMError) as err:
        conn.GetInstance(bad)
    assert err.value.status_code == 6
    assert conn.EnumerateInstanceNames("LXC_ConsoleRedirectionService") == []
    assert conn.EnumerateInstanceNames("Xen_ConsoleRedirectionServiceCapabilities") == []


def test_access_points_match_the_domain_xml(conn, lv):
    want = expected_saps(lv)
    assert len(want) == 2      # the fixture's running guest has a VNC and a SPICE console
    insts = conn.EnumerateInstances(SAP)
    got = {(i["SystemName"], i["Name"]): i for i in insts}
    assert set(got) == set(want)
    for key, props in want.items():
        inst = got[key]
        assert inst["SystemCreationClassName"] == "KVM_ComputerSystem"
        assert inst["CreationClassName"] == SAP
        for name, value in props.items():
            assert inst[name] == value, (key, name)
        again = conn.GetInstance(inst.path)
        assert {k: again[k] for k in props} == {k: inst[k] for k in props}
    names = conn.EnumerateInstanceNames(SAP)
    assert {(p["SystemName"], p["Name"]) for p in names} == set(want)
    # the running guest's fixed VNC port listens; its SPICE console has no port yet
    assert got[("full", "5901:0")]["EnabledState"] == 6
    assert got[("full", "spice:-1:-1")]["EnabledState"] == 3
    only = conn.GetInstance(got[("full", "5901:0")].path, PropertyList=["KVMProtocol"])
    assert only["KVMProtocol"] == 4 and only.get("ListenAddress") is None


@pytest.mark.parametrize("key,value", [
    ("CreationClassName", "KVM_DisplayController"),
    ("SystemCreationClassName", "KVM_HostSystem"),
    ("SystemName", "no-such-vm"),
    ("Name", "invalid_nameport"),
    ("Name", "5901:4711"),            # a session that is not there
    ("Name", "spice:5901:0"),          # the SPICE console has no such port
])
def test_access_point_not_found(conn, key, value):
    path = CIMInstanceName(SAP, {"CreationClassName": SAP, "Name": "5901:0",
                                 "SystemCreationClassName": "KVM_ComputerSystem",
                                 "SystemName": "full"}, namespace=NS)
    assert conn.GetInstance(path)["Name"] == "5901:0"
    path[key] = value
    with pytest.raises(CIMError) as err:
        conn.GetInstance(path)
    assert err.value.status_code == 6
    assert f"No such instance ({key})" in err.value.status_description


def test_hosted_access_point_both_ways(conn, lv):
    host = conn.EnumerateInstanceNames("KVM_HostSystem")[0]
    saps = conn.EnumerateInstanceNames(SAP)
    fwd = conn.AssociatorNames(host, AssocClass="KVM_HostedAccessPoint")
    assert sorted(str(p["Name"]) for p in fwd) == sorted(str(p["Name"]) for p in saps)
    assert all(p.classname == SAP for p in fwd)
    full = conn.Associators(host, AssocClass="KVM_HostedAccessPoint", ResultClass=SAP)
    assert {i["Name"]: i["KVMProtocol"] for i in full} == {"5901:0": 4, "spice:-1:-1": 1}
    for sap in saps:
        back = conn.AssociatorNames(sap, AssocClass="KVM_HostedAccessPoint")
        assert [(p.classname, p["Name"]) for p in back] == \
            [("KVM_HostSystem", lv.getHostname())]
        refs = conn.References(sap, ResultClass="KVM_HostedAccessPoint", Role="Dependent")
        assert len(refs) == 1 and refs[0]["Antecedent"]["Name"] == lv.getHostname()
        assert conn.References(sap, ResultClass="KVM_HostedAccessPoint",
                               Role="Antecedent") == []
    insts = conn.EnumerateInstances("KVM_HostedAccessPoint")
    assert len(insts) == len(saps)
    assert conn.GetInstance(insts[0].path)["Dependent"] == insts[0]["Dependent"]


def test_service_access_by_sap_both_ways(conn):
    svc = crs_path(conn)
    saps = conn.EnumerateInstanceNames(SAP)
    fwd = conn.AssociatorNames(svc, AssocClass="KVM_ServiceAccessBySAP")
    assert sorted(p["Name"] for p in fwd) == sorted(p["Name"] for p in saps)
    for sap in saps:
        back = conn.Associators(sap, AssocClass="KVM_ServiceAccessBySAP")
        assert [(i.classname, i["Name"]) for i in back] == [(CRS, "ConsoleRedirectionService")]
    names = conn.ReferenceNames(svc, ResultClass="KVM_ServiceAccessBySAP")
    assert len(names) == len(saps)
    insts = conn.EnumerateInstances("KVM_ServiceAccessBySAP")
    assert {i["Dependent"]["Name"] for i in insts} == {p["Name"] for p in saps}
    gone = insts[0].path.copy()
    dep = gone["Dependent"].copy()
    dep["Name"] = "1:0"
    gone["Dependent"] = dep
    with pytest.raises(CIMError) as err:
        conn.GetInstance(gone)
    assert err.value.status_code == 6


def test_dsp1076_profile(conn, iconn, lv):
    profs = {p["InstanceID"]: p for p in iconn.EnumerateInstances("KVM_RegisteredProfile")}
    prof = profs[DSP1076]
    assert (prof["RegisteredOrganization"], prof["RegisteredName"],
            prof["RegisteredVersion"]) == (2, "KVM Redirection", "1.0.0")
    up = iconn.AssociatorNames(prof.path, AssocClass="KVM_ReferencedProfile",
                               ResultRole="Dependent")
    assert [p["InstanceID"] for p in up] == ["CIM:DSP1042-SystemVirtualization-1.0.0"]
    central = iconn.AssociatorNames(prof.path, AssocClass="KVM_ElementConformsToProfile")
    assert [(p.classname, p.namespace, p["SystemName"]) for p in central] == \
        [(CRS, "root/virt", lv.getHostname())]
    back = conn.AssociatorNames(crs_path(conn), AssocClass="KVM_ElementConformsToProfile")
    assert [p["InstanceID"] for p in back] == [DSP1076]


# -- IPv6 listen addresses: the round trip through the graphics RASD -------------------------

@pytest.fixture(scope="module")
def default_server():
    server = start_server(hosts=["test:///default"])
    yield server
    server.stop()


def _service(conn) -> CIMInstanceName:
    return conn.EnumerateInstanceNames("KVM_VirtualSystemManagementService")[0]


def _define(conn, name, **gprops):
    svc = _service(conn)
    vssd = CIMInstance("KVM_VirtualSystemSettingData", {"VirtualSystemIdentifier": name})
    grasd = CIMInstance("KVM_GraphicsResourceAllocationSettingData",
                        {"ResourceSubType": "vnc", **gprops})
    rv, out = conn.InvokeMethod("DefineSystem", svc, SystemSettings=vssd.tomof(),
                                ResourceSettings=[grasd.tomof()])
    assert rv == 0
    return out["ResultingSystem"]


def _graphics(conn, name):
    grasd = conn.GetInstance(CIMInstanceName(
        "KVM_GraphicsResourceAllocationSettingData", {"InstanceID": f"{name}/vnc"},
        namespace=NS))
    dc = conn.GetInstance(CIMInstanceName("KVM_DisplayController", {
        "SystemCreationClassName": "KVM_ComputerSystem", "SystemName": name,
        "CreationClassName": "KVM_DisplayController", "DeviceID": f"{name}/vnc"},
        namespace=NS))
    sap = [i for i in conn.EnumerateInstances(SAP) if i["SystemName"] == name]
    return grasd, dc, sap


_V6_CASES = [
    ("[::1]:5905", None, "[::1]:5905", True),          # bracketed IPv6 with a port
    ("[::1]", None, "[::1]:-1", True),                 # no port: automatic
    ("::1", None, "[::1]:-1", True),                   # bare IPv6 literal
    (None, True, "[::1]:-1", True),                    # no address: IsIPv6Only picks ::1
    (None, False, "127.0.0.1:-1", False),
    (None, None, "127.0.0.1:-1", False),
    ("127.0.0.1:5906", True, "127.0.0.1:5906", False),  # an address given wins (libvirt-cim)
    ("[::]:5907", None, "[::]:5907", False),            # '::' takes IPv4 clients too
]


@pytest.mark.parametrize("case", range(len(_V6_CASES)))
def test_ipv6_address_round_trip(default_server, case):
    address, ipv6_only, want_address, want_v6 = _V6_CASES[case]
    conn = default_server.conn()
    name = f"v6-{case}"
    props = {}
    if address is not None:
        props["Address"] = address
    if ipv6_only is not None:
        props["IsIPv6Only"] = ipv6_only
    cs = _define(conn, name, **props)
    try:
        grasd, dc, sap = _graphics(conn, name)
        assert grasd["Address"] == want_address
        assert grasd["IsIPv6Only"] is want_v6
        assert dc["VideoProcessor"] == f"vnc/{want_address}"
        host = want_address.rpartition(":")[0].strip("[]")
        port = want_address.rpartition(":")[2]
        assert len(sap) == 1
        assert sap[0]["ListenAddress"] == host
        assert sap[0]["IsIPv6Only"] is want_v6
        assert sap[0]["Name"] == f"{port}:-1" and sap[0]["EnabledState"] == 3
        # the Address read back parses again to the same listen address and port
        rv, _ = conn.InvokeMethod("ModifyResourceSettings", _service(conn),
                                  ResourceSettings=[grasd.tomof()])
        assert rv == 0
        assert _graphics(conn, name)[0]["Address"] == want_address
    finally:
        conn.InvokeMethod("DestroySystem", _service(conn), AffectedSystem=cs)


def test_is_ipv6_only_modify(default_server):
    conn = default_server.conn()
    svc = _service(conn)
    cs = _define(conn, "v6-modify")
    try:
        grasd = _graphics(conn, "v6-modify")[0]
        assert (grasd["Address"], grasd["IsIPv6Only"]) == ("127.0.0.1:-1", False)
        change = CIMInstance(grasd.classname, {"InstanceID": grasd["InstanceID"],
                                               "IsIPv6Only": True})
        rv, _ = conn.InvokeMethod("ModifyResourceSettings", svc,
                                  ResourceSettings=[change.tomof()])
        assert rv == 0
        grasd, dc, sap = _graphics(conn, "v6-modify")
        assert (grasd["Address"], grasd["IsIPv6Only"]) == ("[::1]:-1", True)
        assert sap[0]["ListenAddress"] == "::1" and sap[0]["IsIPv6Only"] is True
        change["IsIPv6Only"] = False
        rv, _ = conn.InvokeMethod("ModifyResourceSettings", svc,
                                  ResourceSettings=[change.tomof()])
        assert rv == 0
        assert _graphics(conn, "v6-modify")[0]["Address"] == "127.0.0.1:-1"
        # an address that is neither loopback is not silently replaced
        wide = CIMInstance(grasd.classname, {"InstanceID": grasd["InstanceID"],
                                             "Address": "0.0.0.0:5910"})
        rv, _ = conn.InvokeMethod("ModifyResourceSettings", svc,
                                  ResourceSettings=[wide.tomof()])
        assert rv == 0
        change["IsIPv6Only"] = True
        with pytest.raises(CIMError) as err:
            conn.InvokeMethod("ModifyResourceSettings", svc, ResourceSettings=[change.tomof()])
        assert err.value.status_code == 4
        assert "IsIPv6Only" in err.value.status_description
        assert _graphics(conn, "v6-modify")[0]["Address"] == "0.0.0.0:5910"
    finally:
        conn.InvokeMethod("DestroySystem", svc, AffectedSystem=cs)


def test_sdl_is_ipv6_only_is_full_screen(default_server):
    """libvirt-cim's reading of IsIPv6Only for SDL (its MOF): full screen."""
    conn = default_server.conn()
    svc = conn.EnumerateInstanceNames("KVM_VirtualSystemManagementService")[0]
    vssd = CIMInstance("KVM_VirtualSystemSettingData", {"VirtualSystemIdentifier": "sdl-fs"})
    grasd = CIMInstance("KVM_GraphicsResourceAllocationSettingData",
                        {"ResourceSubType": "sdl", "IsIPv6Only": True})
    rv, out = conn.InvokeMethod("DefineSystem", svc, SystemSettings=vssd.tomof(),
                                ResourceSettings=[grasd.tomof()])
    assert rv == 0
    try:
        got = conn.GetInstance(CIMInstanceName(
            "KVM_GraphicsResourceAllocationSettingData", {"InstanceID": "sdl-fs/sdl"},
            namespace=NS))
        assert got["IsIPv6Only"] is True
        assert [i for i in conn.EnumerateInstances(SAP) if i["SystemName"] == "sdl-fs"] == []
    finally:
        conn.InvokeMethod("DestroySystem", svc, AffectedSystem=out["ResultingSystem"])


def test_uint16_values_are_typed(conn):
    sap = conn.EnumerateInstances(SAP)[0]
    assert isinstance(sap["KVMProtocol"], Uint16) and isinstance(sap["EnabledState"], Uint16)
