"""The filter classes on libvirt's test driver, which has no nwfilter driver: empty
answers and a clear error, in-process (no daemon)."""

from __future__ import annotations

import pytest
import pywbem
from pywbem import CIMError, CIMInstance

from kvm_providers import virt
from kvm_providers.config import Config

from tests.providers.harness import MODEL_MODULES, Harness

NS = "root/virt"
MODULES = MODEL_MODULES | frozenset({"kvm_providers.providers.filter_lists",
                                     "kvm_providers.providers.filter_associations"})


@pytest.fixture
def h():
    cfg = Config()
    cfg.add_host("test:///default", None, None)
    mgr = virt.configure(cfg.effective_hosts())
    assert mgr.wait_connected(10)
    yield Harness(MODULES)
    virt.shutdown()


def test_no_filters_and_a_clear_refusal(h):
    for cls in ("KVM_FilterList", "KVM_Hdr8021Filter", "KVM_IPHeadersFilter",
                "KVM_FilterEntry", "KVM_EntriesInFilterList", "KVM_NestedFilterList",
                "KVM_AppliedFilterList", "KVM_HostedFilterList"):
        assert h.EnumerateInstanceNames(NS, cls) == []
    host = h.EnumerateInstanceNames(NS, "KVM_HostSystem")[0]
    assert h.AssociatorNames(host, "KVM_HostedFilterList") == []
    port = h.EnumerateInstanceNames(NS, "KVM_NetworkPort")[0]
    assert h.AssociatorNames(port, "KVM_AppliedFilterList") == []
    inst = CIMInstance("KVM_FilterList", {"Name": "f"})
    inst.path = pywbem.CIMInstanceName("KVM_FilterList", namespace=NS)
    with pytest.raises(CIMError) as e:
        h.classes[(NS, "kvm_filterlist")][1].MI_createInstance(h.env, inst)
    assert e.value.status_code == pywbem.CIM_ERR_NOT_SUPPORTED
    assert "no network filters" in e.value.status_description
