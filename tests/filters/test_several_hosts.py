"""Filter lists with several hosts of one family: keys name the host (SystemName and
InstanceID host-qualified), each host's filters stay its own.  In-process providers
over the private privileged libvirtd and libvirt's test driver (no filters)."""

from __future__ import annotations

import pytest
import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName

from kvm_providers import virt
from kvm_providers.config import Config

from tests.providers.harness import MODEL_MODULES, Harness

pytestmark = pytest.mark.libvirtd

NS = "root/virt"
MODULES = MODEL_MODULES | frozenset({"kvm_providers.providers.filter_lists",
                                     "kvm_providers.providers.filter_associations"})


@pytest.fixture
def h(daemon):
    cfg = Config()
    cfg.add_host(daemon.uri(), None, "priv")
    cfg.add_host("test:///default", None, "tst")
    mgr = virt.configure(cfg.effective_hosts())
    assert mgr.wait_connected(20)
    yield Harness(MODULES)
    virt.shutdown()


def test_keys_name_the_host(h, conn):
    names = h.EnumerateInstanceNames(NS, "KVM_FilterList")
    assert sorted(p["Name"] for p in names) == sorted(conn.listNWFilters())
    assert {p["SystemName"].split(":", 1)[0] for p in names} == {"priv"}
    ct = next(p for p in names if p["Name"] == "clean-traffic")
    inst = h.GetInstance(ct)
    assert inst["InstanceID"] == "priv:" + conn.nwfilterLookupByName("clean-traffic").UUIDString()
    rules = h.AssociatorNames(ct, "KVM_EntriesInFilterList")
    assert rules and all(r["SystemName"] == ct["SystemName"] for r in rules)
    hosts = h.AssociatorNames(ct, "KVM_HostedFilterList")
    assert [p["Name"] for p in hosts] == [ct["SystemName"]]
    # the same filter name under the other host's SystemName is no instance
    tst = next(p for p in h.EnumerateInstanceNames(NS, "KVM_HostSystem")
               if p["Name"].startswith("tst:"))
    other = CIMInstanceName("KVM_FilterList", dict(ct.keybindings, SystemName=tst["Name"]),
                            namespace=NS)
    with pytest.raises(CIMError) as e:
        h.GetInstance(other)
    assert e.value.status_code == pywbem.CIM_ERR_NOT_FOUND


def test_a_new_list_needs_its_host(h):
    proxy = h.classes[(NS, "kvm_filterlist")][1]

    def create(props):
        inst = CIMInstance("KVM_FilterList", props)
        inst.path = CIMInstanceName("KVM_FilterList", namespace=NS)
        return proxy.MI_createInstance(h.env, inst)

    with pytest.raises(CIMError) as e:
        create({"Name": "kvmp-two"})
    assert e.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert "SystemName" in e.value.status_description
    priv = next(p for p in h.EnumerateInstanceNames(NS, "KVM_HostSystem")
                if p["Name"].startswith("priv:"))
    path = create({"Name": "kvmp-two", "SystemName": priv["Name"]})
    try:
        assert path["SystemName"] == priv["Name"]
        assert h.GetInstance(path)["Name"] == "kvmp-two"
    finally:
        h.classes[(NS, "kvm_filterlist")][1].MI_deleteInstance(h.env, path)
