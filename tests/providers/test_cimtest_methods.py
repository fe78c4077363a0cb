"""The management methods as libvirt-cim's clients call them, and what they expect back
(libvirt-cim's status codes and words, where DSP0200 allows them; docs/compat.md,
"cimtest: the management and pool configuration services").

Each test mirrors a test of libvirt-cim's suite (cimtest): it sends the same request
through the real embedded server with pywbem and checks what that test checks.
"""

from __future__ import annotations

import pywbem
import pytest
from pywbem import CIMInstanceName

NS = "root/virt"
VSSD_MOF = ('instance of KVM_VirtualSystemSettingData { VirtualSystemIdentifier = '
            '"cimtest_never_defined"; ElementName = "cimtest_never_defined"; };')


def _error(call, *args, **kwargs) -> tuple[int, str]:
    with pytest.raises(pywbem.CIMError) as info:
        call(*args, **kwargs)
    return info.value.status_code, info.value.status_description


def _vsms(conn) -> CIMInstanceName:
    return conn.EnumerateInstanceNames("KVM_VirtualSystemManagementService", namespace=NS)[0]


def _domains(conn) -> list[str]:
    return sorted(p["Name"] for p in conn.EnumerateInstanceNames("KVM_ComputerSystem",
                                                                 namespace=NS))


@pytest.mark.parametrize("param, params", [
    # VirtualSystemManagementService/03_definesystem_ess
    ("SystemSettings", {"SystemSettings": "wrong", "ResourceSettings": []}),
    # 04_definesystem_ers
    ("ResourceSettings", {"SystemSettings": VSSD_MOF, "ResourceSettings": ["wrong"]}),
    # an embedded CIM-XML object that is not well-formed
    ("SystemSettings", {"SystemSettings": "<INSTANCE CLASSNAME='KVM_VirtualSystemSettingData'>",
                        "ResourceSettings": []}),
])
def test_define_system_text_that_is_no_instance(conn, param, params):
    """Text that is no instance where an embedded instance is due: CIM_ERR_FAILED
    "Unable to parse embedded object" (libvirt-cim's answer), naming the parameter;
    nothing is defined."""
    before = _domains(conn)
    code, desc = _error(conn.InvokeMethod, "DefineSystem", _vsms(conn), **params)
    assert code == pywbem.CIM_ERR_FAILED
    assert "Unable to parse embedded object" in desc
    assert f"Parameter {param} of method DefineSystem" in desc
    assert _domains(conn) == before


def test_add_resource_settings_text_that_is_no_instance(conn):
    """VirtualSystemManagementService/07_addresource_neg: MOF text that does not
    parse in ResourceSettings[] of AddResourceSettings."""
    vssd = conn.EnumerateInstanceNames("KVM_VirtualSystemSettingData", namespace=NS)[0]
    code, desc = _error(conn.InvokeMethod, "AddResourceSettings", _vsms(conn),
                        AffectedConfiguration=vssd,
                        ResourceSettings=["instance of what ever { dd = 3; //\\ ]&"])
    assert code == pywbem.CIM_ERR_FAILED
    assert "Unable to parse embedded object" in desc


def test_an_instance_that_does_not_fit_its_class_stays_invalid_parameter(conn):
    """An embedded instance that parses but names no class of the namespace is still
    CIM_ERR_INVALID_PARAMETER: only text that is no instance at all is libvirt-cim's
    parse failure."""
    code, desc = _error(conn.InvokeMethod, "DefineSystem", _vsms(conn),
                        SystemSettings="instance of KVM_NoSuchClass { X = 1; };",
                        ResourceSettings=[])
    assert code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert "KVM_NoSuchClass" in desc


def test_destroy_system_that_does_not_exist(conn):
    """VirtualSystemManagementService/05_destroysystem_neg: CIM_ERR_NOT_FOUND with
    libvirt-cim's words for a reference without Name and for a domain that does not
    exist; nothing is destroyed."""
    before = _domains(conn)
    noname = CIMInstanceName("KVM_ComputerSystem",
                             keybindings={"CreationClassName": "KVM_ComputerSystem"})
    code, desc = _error(conn.InvokeMethod, "DestroySystem", _vsms(conn),
                        AffectedSystem=noname)
    assert code == pywbem.CIM_ERR_NOT_FOUND
    assert "Unable to retrieve domain name: Error 0" in desc
    missing = CIMInstanceName("KVM_ComputerSystem",
                              keybindings={"CreationClassName": "KVM_ComputerSystem",
                                           "Name": "##@@!!cimtest_domain"})
    code, desc = _error(conn.InvokeMethod, "DestroySystem", _vsms(conn),
                        AffectedSystem=missing)
    assert code == pywbem.CIM_ERR_NOT_FOUND
    assert "Referenced domain `##@@!!cimtest_domain' does not exist: Domain not found" \
        in desc
    assert _domains(conn) == before


@pytest.mark.parametrize("net, words", [
    ('NetworkType = "bridge";', "No Network bridge name specified"),
    ('NetworkType = "bridge"; NetworkName = "";', "Bridge name is empty"),
    ('NetworkType = "network"; PoolID = "NetworkPool/";', "Network not found"),
])
def test_define_system_nic_without_its_network(conn, net, words):
    """VirtualSystemManagementService/19_definenetwork_ers: a NIC on a bridge without a
    name, or on the network '', is CIM_ERR_FAILED with libvirt-cim's (or libvirt's)
    words; nothing is defined.  (A named network the host lacks is taken:
    tests/pools/test_missing_network.py.)"""
    before = _domains(conn)
    nic = ('instance of KVM_NetResourceAllocationSettingData { ResourceType = 10; '
           f'Address = "88:aa:bb:cc:ee:ff"; {net} }};')
    code, desc = _error(conn.InvokeMethod, "DefineSystem", _vsms(conn),
                        SystemSettings=VSSD_MOF, ResourceSettings=[nic])
    assert code == pywbem.CIM_ERR_FAILED, desc
    assert words in desc and "ResourceSettings[0]" in desc
    assert _domains(conn) == before
