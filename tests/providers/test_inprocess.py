"""The providers in an in-process host of the provider interface (ProviderProxy and a
CIMOMHandle), and what one operation costs libvirt."""

from __future__ import annotations

import libvirt
import pytest
from pywbem import CIMInstanceName

from kvm_providers.registry import registrations

from tests.support.libvirt_calls import count_libvirt_calls

from .harness import MODEL_MODULES, Harness

VIRT, INTEROP = "root/virt", "root/interop"


@pytest.fixture
def harness(layer, node_uri):
    layer(node_uri)
    return Harness()


@pytest.fixture
def calls(monkeypatch):
    """Counts libvirt calls by name."""
    return count_libvirt_calls(monkeypatch, {
        libvirt.virDomain: ("XMLDesc", "state", "autostart", "hasManagedSaveImage", "info"),
        libvirt.virConnect: ("listAllDomains", "getAllDomainStats", "lookupByName",
                             "listAllStoragePools")})


def test_every_registered_class_has_a_provider(harness):
    regs = [r for r in registrations() if r.module in MODEL_MODULES]
    assert {r.module for r in regs} == MODEL_MODULES
    for reg in regs:
        for ns in reg.namespaces:
            name, proxy = harness.classes[(ns, reg.classname.lower())]
            assert proxy.provider_for(name) is not None


def test_names_only_needs_no_xml(harness, calls, lv):
    n = len(lv.listAllDomains())
    calls.clear()
    names = harness.EnumerateInstanceNames(VIRT, "KVM_ComputerSystem")
    assert len(names) == n
    assert calls["XMLDesc"] == 0 and calls["listAllDomains"] == 1
    assert calls["getAllDomainStats"] == 0 and calls["state"] == 0


def test_enumerate_computer_systems_bulk_calls(harness, calls, lv):
    n = len(lv.listAllDomains())
    calls.clear()
    insts = harness.EnumerateInstances(VIRT, "KVM_ComputerSystem")
    assert len(insts) == n
    assert calls["XMLDesc"] == 0
    assert calls["getAllDomainStats"] == 1 and calls["state"] == 0
    assert calls["hasManagedSaveImage"] == 0
    calls.clear()
    harness.EnumerateInstances(VIRT, "KVM_ComputerSystem", ["UUID"])
    assert calls["getAllDomainStats"] == 0 and calls["listAllDomains"] == 1


def test_all_rasds_one_xml_per_domain(harness, calls, lv):
    n = len(lv.listAllDomains())
    calls.clear()
    rasds = harness.EnumerateInstances(VIRT, "CIM_ResourceAllocationSettingData")
    assert len(rasds) > 30
    assert calls["XMLDesc"] == n
    assert calls["listAllDomains"] == 1
    assert calls["listAllStoragePools"] <= 1


def test_associators_fetch_the_xml_once(harness, calls):
    cs = CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                "Name": "full"}, namespace=VIRT)
    devices = harness.Associators(cs, "KVM_SystemDevice")
    assert len(devices) > 20
    assert all(d.path is not None for d in devices)
    assert calls["XMLDesc"] == 1 and calls["lookupByName"] == 1
    calls.clear()
    names = harness.AssociatorNames(cs, "KVM_SystemDevice")
    assert len(names) == len(devices) and calls["XMLDesc"] == 1


def test_property_list_computes_nothing_else(harness, calls):
    insts = harness.EnumerateInstances(VIRT, "KVM_VirtualSystemSettingData", ["UUID"])
    assert all(set(i.properties) <= {"InstanceID", "UUID"} for i in insts)
    assert calls["autostart"] == 0 and calls["listAllDomains"] == 1  # no autostart list


def test_central_instances_of_profiles_without_providers(harness):
    prof = CIMInstanceName("KVM_RegisteredProfile",
                           {"InstanceID": "CIM:DSP1059-GenericDeviceResourceVirtualization-1.0.0_d"},
                           namespace=INTEROP)
    assert harness.AssociatorNames(prof, "KVM_ElementConformsToProfile") == []
    sv = CIMInstanceName("KVM_RegisteredProfile",
                         {"InstanceID": "CIM:DSP1042-SystemVirtualization-1.0.0"},
                         namespace=INTEROP)
    hosts = harness.AssociatorNames(sv, "KVM_ElementConformsToProfile")
    assert [h.classname for h in hosts] == ["KVM_HostSystem"]
