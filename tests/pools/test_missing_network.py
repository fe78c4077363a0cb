"""A NIC on a network the host does not have (yet), as libvirt-cim's clients define it
(cimtest ResourceAllocationFromPool/05_RAPF_err, VirtualSystemManagementService/19):
taken into the definition as libvirt and libvirt-cim take it; starting the guest then
fails with libvirt's "Network not found" (CIM_ERR_FAILED), and nothing else changes
(docs/compat.md).

Runs on the private libvirtd's QEMU driver (the start fails in libvirt before QEMU runs).
"""

from __future__ import annotations

import pytest
from lxml import etree
from pywbem import CIMError, CIMInstance, CIMInstanceName, Uint16

NS = "root/virt"
NAME = "netless"

GUEST = f"""<domain type='qemu'>
  <name>{NAME}</name>
  <memory unit='KiB'>65536</memory>
  <os><type arch='x86_64'>hvm</type></os>
  <devices/>
</domain>"""


@pytest.fixture
def guest(daemon):
    dom = daemon.conn.defineXML(GUEST)
    yield dom
    if dom.isActive():
        dom.destroy()
    dom.undefine()


def test_nic_on_a_network_the_host_lacks(qserver, daemon, guest):
    conn = qserver.conn()
    svc = conn.EnumerateInstanceNames("KVM_VirtualSystemManagementService", namespace=NS)[0]
    vssd = CIMInstanceName("KVM_VirtualSystemSettingData", {"InstanceID": f"KVM:{NAME}"},
                           namespace=NS)
    nic = CIMInstance("KVM_NetResourceAllocationSettingData", {
        "ResourceType": Uint16(10), "NetworkType": "network",
        "PoolID": "NetworkPool/wrong-int", "Address": "00:11:22:33:44:aa"})
    rv, out = conn.InvokeMethod("AddResourceSettings", svc, AffectedConfiguration=vssd,
                                ResourceSettings=[nic])
    assert rv == 0
    src = etree.fromstring(guest.XMLDesc(0)).find("devices/interface/source")
    assert src.get("network") == "wrong-int"
    rasd = conn.GetInstance(CIMInstanceName(
        "KVM_NetResourceAllocationSettingData", {"InstanceID": f"{NAME}/00:11:22:33:44:aa"},
        namespace=NS))
    assert rasd["PoolID"] == "NetworkPool/wrong-int"
    cs = CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                "Name": NAME}, namespace=NS)
    with pytest.raises(CIMError) as err:
        conn.InvokeMethod("RequestStateChange", cs, RequestedState=Uint16(2))
    assert err.value.status_code == 1
    assert "Network not found" in err.value.status_description
    assert not guest.isActive()
