"""The DSP2013 use cases of the virtual system model, end to end with pywbem.

DSP2013 (System Virtualization white paper), section 5, against the embedded
server serving the fixture node -- or, with ``--wbem-url``, against a WBEM
server whose providers serve it (``test:///<checkout>/tests/fixtures/node_devices.xml``
in their configuration, or the libvirt named by ``--wbem-libvirt-uri``); every
answer is checked against libvirt.
"""

from __future__ import annotations

import libvirt
import pytest
from pywbem import WBEMServer

from tests.support.server import own_profiles

from . import expected as X
from .conftest import NODE_URI

pytestmark = pytest.mark.usefixtures("node_server")


@pytest.fixture(scope="module")
def node_server(scenario_server):
    """kvm-cimom serving the fixture node, or the --wbem-url server."""
    return scenario_server(hosts=[NODE_URI])


@pytest.fixture(scope="module")
def lv(wbem_target):
    """libvirt's own view of what the server serves."""
    conn = libvirt.open((wbem_target and wbem_target.libvirt_uri) or NODE_URI)
    yield conn
    conn.close()

DSP1042 = "CIM:DSP1042-SystemVirtualization-1.0.0"
DSP1057 = "CIM:DSP1057-VirtualSystem-1.0.0a"


def _profile(server, name):
    profs = server.get_selected_profiles(registered_org="DMTF", registered_name=name)
    assert len(profs) == 1, [p.path for p in profs]
    return profs[0]


def _host(server):
    return server.get_central_instances(_profile(server, "System Virtualization").path)[0]


def test_uc_5_1_1_discover_implementation(node_server):
    """A client discovers the implementation by following profile registration."""
    server = WBEMServer(node_server.conn())
    assert server.interop_ns in ("interop", "root/interop", "root/PG_InterOp")
    assert "root/virt" in server.namespaces
    sv = _profile(server, "System Virtualization")
    assert sv["RegisteredVersion"] == "1.0.0"
    vs = _profile(server, "Virtual System")
    assert vs["RegisteredVersion"] == "1.0.0a"
    # the Virtual System profile is referenced by (scoped by) System Virtualization
    scoping = server.conn.Associators(vs.path, AssocClass="CIM_ReferencedProfile",
                                      ResultRole="Dependent")
    assert [(p["RegisteredName"], p["RegisteredVersion"]) for p in scoping] == [
        ("System Virtualization", "1.0.0")]
    if own_profiles(node_server):
        # libvirt-cim's InstanceIDs (OpenPegasus' interop provider makes its own)
        assert (sv["InstanceID"], vs["InstanceID"]) == (DSP1042, DSP1057)
        assert [p["InstanceID"] for p in scoping] == [DSP1042]


def test_uc_5_1_2_discover_host_system(node_server, lv):
    """Host systems are the central instances of the System Virtualization profile."""
    conn = node_server.conn()
    server = WBEMServer(conn)
    hosts = server.get_central_instances(_profile(server, "System Virtualization").path)
    assert len(hosts) == 1
    host = conn.GetInstance(hosts[0])
    assert host.classname == "KVM_HostSystem"
    assert host["Name"] == lv.getHostname()
    # and the virtual systems are the central instances of Virtual System
    vss = server.get_central_instances(_profile(server, "Virtual System").path)
    assert {p["Name"] for p in vss} == {d.name() for d in lv.listAllDomains()}


def test_uc_5_1_3_determine_capabilities(node_server):
    """From the host system, ElementCapabilities leads to the management capabilities."""
    from kvm_providers.providers.common import capabilities
    conn = node_server.conn()
    host = _host(WBEMServer(conn))
    caps = conn.Associators(host, AssocClass="CIM_ElementCapabilities",
                            ResultClass="CIM_VirtualSystemManagementCapabilities")
    assert len(caps) == 1
    c = caps[0]
    assert c["VirtualSystemTypesSupported"] == ["KVM"]
    assert (c.get("SynchronousMethodsSupported") or []) == \
        capabilities.synchronous_methods_supported()
    assert (c.get("AsynchronousMethodsSupported") or []) == \
        capabilities.asynchronous_methods_supported()


def test_uc_5_1_9_locate_virtual_systems_of_host(node_server, lv):
    """The virtual systems are associated to the host through HostedDependency."""
    conn = node_server.conn()
    host = _host(WBEMServer(conn))
    vss = conn.Associators(host, AssocClass="CIM_HostedDependency",
                           ResultClass="CIM_ComputerSystem")
    assert {v["Name"] for v in vss} == {d.name() for d in lv.listAllDomains()}
    # (CIM_HostedService and CIM_HostedAccessPoint derive from CIM_HostedDependency:
    # without ResultClass the host's services and console access points come too)
    others = conn.AssociatorNames(host, AssocClass="CIM_HostedDependency")
    assert {p.classname for p in others} == {"KVM_ComputerSystem",
                                             "KVM_VirtualSystemManagementService",
                                             "KVM_ResourcePoolConfigurationService",
                                             "KVM_ConsoleRedirectionService",
                                             "KVM_VirtualSystemMigrationService",
                                             "KVM_VirtualSystemSnapshotService",
                                             "KVM_KVMRedirectionSAP"}
    assert all(v.classname == "KVM_ComputerSystem" for v in vss)


def test_uc_5_2_2_virtual_system_state(node_server, lv):
    """EnabledState of the system, and its VSSD through SettingsDefineState."""
    conn = node_server.conn()
    host = _host(WBEMServer(conn))
    for vs in conn.Associators(host, AssocClass="CIM_HostedDependency",
                               ResultClass="CIM_ComputerSystem"):
        dom = lv.lookupByName(vs["Name"])
        assert vs["EnabledState"] == X.enabled_state(dom), vs["Name"]
        vssd = conn.Associators(vs.path, AssocClass="CIM_SettingsDefineState",
                                ResultClass="CIM_VirtualSystemSettingData")
        assert len(vssd) == 1
        assert vssd[0]["VirtualSystemIdentifier"] == dom.name()
        assert vssd[0]["UUID"] == dom.UUIDString()


def test_uc_5_2_3_defined_configuration(node_server, lv):
    """System -> SettingsDefineState -> VSSD -> ElementSettingData -> defined VSSD
    -> VirtualSystemSettingDataComponent -> the RASDs of the configuration."""
    conn = node_server.conn()
    host = _host(WBEMServer(conn))
    for vs in conn.AssociatorNames(host, AssocClass="CIM_HostedDependency",
                                   ResultClass="CIM_ComputerSystem"):
        dom = lv.lookupByName(vs["Name"])
        state_vssd = conn.AssociatorNames(vs, AssocClass="CIM_SettingsDefineState")[0]
        esd = conn.References(state_vssd, ResultClass="CIM_ElementSettingData",
                              Role="ManagedElement")
        assert len(esd) == 1 and esd[0]["IsDefault"] == 1
        defined = esd[0]["SettingData"]
        rasds = conn.Associators(defined, AssocClass="CIM_VirtualSystemSettingDataComponent",
                                 ResultClass="CIM_ResourceAllocationSettingData")
        assert {(r.classname, r["InstanceID"]) for r in rasds} == X.rasds(dom)
        by_type = {}
        for r in rasds:
            by_type.setdefault(r["ResourceType"], []).append(r)
        info = dom.info()
        assert [r["VirtualQuantity"] for r in by_type[3]] == [info[3]]
        assert [r["VirtualQuantity"] for r in by_type[4]] == [info[2]]


def test_uc_5_2_4_virtual_system_structure(node_server, lv):
    """System -> SystemDevice -> devices -> SettingsDefineState -> RASD
    -> ElementSettingData -> persistent RASD."""
    conn = node_server.conn()
    dom = lv.lookupByName("full")
    vs = next(p for p in conn.EnumerateInstanceNames("KVM_ComputerSystem")
              if p["Name"] == "full")
    devices = conn.Associators(vs, AssocClass="CIM_SystemDevice")
    assert {(d.classname, d["DeviceID"]) for d in devices} == X.devices(dom)
    rasd_ids = {i for _, i in X.rasds(dom)}
    for dev in devices:
        rasd = conn.Associators(dev.path, AssocClass="CIM_SettingsDefineState",
                                ResultClass="CIM_ResourceAllocationSettingData")
        assert len(rasd) == 1, dev.path
        assert rasd[0]["InstanceID"] in rasd_ids
        persistent = conn.References(rasd[0].path, ResultClass="CIM_ElementSettingData",
                                     Role="ManagedElement")
        assert [p["SettingData"]["InstanceID"] for p in persistent] == \
            [rasd[0]["InstanceID"]]
    kinds = {d.classname for d in devices}
    assert kinds >= {"KVM_Processor", "KVM_Memory", "KVM_LogicalDisk", "KVM_NetworkPort",
                     "KVM_DisplayController", "KVM_PointingDevice", "KVM_Controller",
                     "KVM_ConsoleDisplayController"}
