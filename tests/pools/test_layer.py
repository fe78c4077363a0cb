"""The pool classes in an in-process host of the provider interface (no daemon): what
AllocationCapabilities and SettingsDefineCapabilities cost (nothing per volume),
PropertyList, the RASD PoolIDs agreeing with the pool associations, template ids
that never shadow devices, and host-qualified ids with several hosts."""

from __future__ import annotations

import libvirt
import pytest
from pywbem import CIMError, CIMInstance, CIMInstanceName, Uint16

from kvm_providers import virt
from kvm_providers.config import Config, StorageConfig
from kvm_providers.provider import request_scope
from kvm_providers.virt import validate
from kvm_providers.model.allocation import lookup_template

from tests.providers.harness import MODEL_MODULES, Harness
from tests.support.libvirt_calls import count_libvirt_calls

from .support import node_with_volumes

NS = "root/virt"

#: The model's provider modules and this issue's (not the indication providers, whose
#: event threads would make libvirt calls of their own).
POOL_MODULES = MODEL_MODULES | frozenset(
    f"kvm_providers.providers.{m}" for m in (
        "resource_pools", "storage_volume", "allocation_capabilities", "pool_settings",
        "pool_configuration", "hosted_resource_pool", "element_allocated_from_pool",
        "resource_allocation_from_pool", "settings_define_capabilities",
        "concrete_component"))


@pytest.fixture
def configure():
    validate.configure_storage(StorageConfig(allowed_paths=["/srv"]))  # the test driver's
    def run(*uris, names=None):
        cfg = Config()
        for i, uri in enumerate(uris):
            cfg.add_host(uri, None, (names or {}).get(i))
        mgr = virt.configure(cfg.effective_hosts())
        assert mgr.wait_connected(10)
        return Harness(POOL_MODULES)
    yield run
    virt.shutdown()
    validate.configure_storage(None)


@pytest.fixture
def calls(monkeypatch):
    """Counts libvirt calls by class and name."""
    return count_libvirt_calls(monkeypatch, {
        libvirt.virStoragePool: ("listAllVolumes", "listVolumes", "numOfVolumes",
                                 "storageVolLookupByName", "info", "XMLDesc", "refresh"),
        libvirt.virStorageVol: ("info", "XMLDesc", "path"),
        libvirt.virDomain: ("XMLDesc",),
        libvirt.virConnect: ("listAllStoragePools", "listAllNetworks", "storageVolLookupByPath",
                             "getDomainCapabilities", "getCapabilities")}, qualified=True)


def invoke(h, path, method, **params):
    """InvokeMethod through the provider interface, as a host does it."""
    _, proxy = h.classes[(NS, path.classname.lower())]
    with request_scope():
        (_t, rv), out = proxy.MI_invokeMethod(h.env, path, method, params)
    return rv, {k: v[1] for k, v in out.items()}


def _ac_and_sdc(h):
    acs = h.EnumerateInstances(NS, "KVM_AllocationCapabilities")
    sdc = h.EnumerateInstances(NS, "KVM_SettingsDefineCapabilities")
    return acs, sdc


def test_capabilities_cost_nothing_per_volume(configure, calls, tmp_path):
    """The same templates and the same libvirt calls with 0 and 400 volumes in a pool."""
    seen = {}
    for volumes in (0, 400):
        h = configure(node_with_volumes(str(tmp_path / f"node{volumes}.xml"), volumes))
        _ac_and_sdc(h)                          # warm: per-connection facts
        calls.clear()
        acs, sdc = _ac_and_sdc(h)
        assert len(acs) == 9                    # one per pool, none of the host
        assert {a["InstanceID"] for a in acs} >= {"DiskPool/bulk", "DiskPool/0"}
        per_volume = [k for k in calls if k.startswith("virStorageVol") or "Volume" in k
                      or k.endswith("storageVolLookupByPath")]
        assert per_volume == []
        # two requests: pools listed once each, one XML and info per storage pool
        assert calls["virConnect.listAllStoragePools"] == 2
        assert calls["virStoragePool.XMLDesc"] <= 2 * 2
        assert calls["virDomain.XMLDesc"] == 0
        assert calls["virConnect.getDomainCapabilities"] == 0
        templates = sorted(r["PartComponent"]["InstanceID"] for r in sdc)
        seen[volumes] = (templates, dict(calls))
    assert seen[0] == seen[400]


def test_property_list_and_reserved(configure, calls, tmp_path):
    h = configure(node_with_volumes(str(tmp_path / "node.xml"), 2, domains=4))
    calls.clear()
    pools = h.EnumerateInstances(NS, "KVM_MemoryPool", ["Capacity"])
    assert calls["virDomain.XMLDesc"] == 0 and set(pools[0].properties) == {"InstanceID",
                                                                            "Capacity"}
    names = h.EnumerateInstanceNames(NS, "CIM_ResourcePool")
    assert calls["virDomain.XMLDesc"] == 0 and calls["virStoragePool.info"] == 0
    assert len(names) == 9
    mem = h.EnumerateInstances(NS, "KVM_MemoryPool", ["Reserved"])[0]
    assert calls["virDomain.XMLDesc"] == 4                  # one per domain
    conn = virt.manager().hosts[0].conn()
    total = sum(d.info()[2] for d in conn.listAllDomains())
    assert mem["Reserved"] == total


def test_rasd_pool_ids_agree_with_the_associations(configure, node_uri):
    h = configure(node_uri)
    rasds = h.EnumerateInstances(NS, "CIM_ResourceAllocationSettingData")
    pools = {p["InstanceID"]: p for p in h.EnumerateInstances(NS, "CIM_ResourcePool")}
    for r in rasds:
        up = h.AssociatorNames(r.path, "KVM_ResourceAllocationFromPool")
        got = [p["InstanceID"] for p in up]
        want = [r["PoolID"]] if r.get("PoolID") in pools else []
        assert got == want, r["InstanceID"]
        if r.classname.endswith("ConsoleResourceAllocationSettingData"):
            assert got == []                       # consoles come from no pool
    assert {r["PoolID"] for r in rasds if r.classname.endswith(
        ("GraphicsResourceAllocationSettingData", "InputResourceAllocationSettingData",
         "ControllerResourceAllocationSettingData"))} == \
        {"GraphicsPool/0", "InputPool/0", "ControllerPool/0"}
    # every RASD associated from a pool names it back
    for iid, pool in pools.items():
        for r in h.Associators(pool.path, "KVM_ResourceAllocationFromPool"):
            up = h.AssociatorNames(r.path, "KVM_ResourceAllocationFromPool")
            assert [p["InstanceID"] for p in up] == [iid]
    # Reserved of the graphics pool counts its devices
    devs = h.AssociatorNames(pools["GraphicsPool/0"].path, "KVM_ElementAllocatedFromPool")
    assert len(devs) == pools["GraphicsPool/0"]["Reserved"]


@pytest.fixture(scope="session")
def node_uri():
    import os
    return "test://" + os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "fixtures", "node_devices.xml")


def test_template_ids_never_shadow_devices(configure, node_uri):
    h = configure(node_uri)
    with request_scope():
        assert lookup_template("KVM", "full/vda") is None
        assert lookup_template("KVM", "full/tablet:usb#2") is None      # a duplicate device
        assert lookup_template("KVM", "DiskPool/nosuch#Default") is None
        assert lookup_template("KVM", "DiskPool/images#Nonsense") is None
        assert lookup_template("LXC", "DiskPool/images#Default") is None
        t = lookup_template("KVM", "DiskPool/images#Default")
    assert t.rasd_class == "DiskResourceAllocationSettingData"
    tablet2 = CIMInstanceName("KVM_InputResourceAllocationSettingData",
                              {"InstanceID": "full/tablet:usb#2"}, namespace=NS)
    assert h.GetInstance(tablet2)["ResourceSubType"] == "tablet"
    tmpl = CIMInstanceName("KVM_DiskResourceAllocationSettingData",
                           {"InstanceID": "DiskPool/images#Default"}, namespace=NS)
    assert h.GetInstance(tmpl)["PoolID"] == "DiskPool/images"
    wrong = CIMInstanceName("KVM_NetResourceAllocationSettingData",
                            {"InstanceID": "DiskPool/images#Default"}, namespace=NS)
    with pytest.raises(CIMError) as err:
        h.GetInstance(wrong)
    assert err.value.status_code == 6


def test_several_hosts_qualify_every_id(configure, tmp_path):
    a = node_with_volumes(str(tmp_path / "a.xml"), 2)
    b = node_with_volumes(str(tmp_path / "b.xml"), 3)
    h = configure(a, b, names={0: "lab1", 1: "lab2"})
    pools = h.EnumerateInstanceNames(NS, "KVM_DiskPool")
    assert sorted(p["InstanceID"] for p in pools) == [
        "lab1:DiskPool/0", "lab1:DiskPool/bulk", "lab2:DiskPool/0", "lab2:DiskPool/bulk"]
    by_id = {p["InstanceID"]: p for p in pools}       # (primordial pools are listed last)
    inst = h.GetInstance(by_id["lab1:DiskPool/bulk"])
    assert inst["PoolID"] == "DiskPool/bulk"          # as the RASDs of that host say
    acs = {a["InstanceID"] for a in h.EnumerateInstanceNames(NS, "KVM_AllocationCapabilities")}
    assert {"lab1:DiskPool/0", "lab2:DiskPool/0", "lab2:DiskPool/bulk"} <= acs
    assert all(i.split(":", 1)[0] in ("lab1", "lab2") for i in acs)
    ac = CIMInstanceName("KVM_AllocationCapabilities", {"InstanceID": "lab2:DiskPool/bulk"},
                         namespace=NS)
    parts = h.AssociatorNames(ac, "KVM_SettingsDefineCapabilities")
    assert parts and all(p["InstanceID"].startswith("lab2:DiskPool/bulk#") for p in parts)
    rpcc = sorted(p["InstanceID"] for p in h.EnumerateInstanceNames(
        NS, "KVM_ResourcePoolConfigurationCapabilities"))
    assert rpcc == ["lab1:RPCC", "lab2:RPCC"]
    vols = h.AssociatorNames(by_id["lab2:DiskPool/bulk"], "KVM_ConcreteComponent")
    assert len(vols) == 3 and all(v["SystemName"].startswith("lab2:") for v in vols)
    # a class path is ambiguous with two hosts: ParentPool says which one
    cls = CIMInstanceName("KVM_ResourcePoolConfigurationService", namespace=NS)
    settings = [CIMInstance("KVM_DiskPoolResourceAllocationSettingData",
                            properties={"Type": Uint16(1), "Path": "/srv/x"})]
    with pytest.raises(CIMError) as err:
        invoke(h, cls, "CreateChildResourcePool", ElementName="p2", Settings=settings)
    assert err.value.status_code == 4 and "several hosts" in err.value.status_description
    rv, out = invoke(h, cls, "CreateChildResourcePool", ElementName="p2",
                             Settings=settings,
                             ParentPool=[CIMInstanceName("KVM_DiskPool",
                                                         {"InstanceID": "lab2:DiskPool/0"},
                                                         namespace=NS)])
    assert out["Pool"]["InstanceID"] == "lab2:DiskPool/p2"
    names = {p["InstanceID"] for p in h.EnumerateInstanceNames(NS, "KVM_DiskPool")}
    assert "lab2:DiskPool/p2" in names and "lab1:DiskPool/p2" not in names


def test_service_affects_the_pools_it_manages(configure, node_uri):
    h = configure(node_uri)
    svc = h.EnumerateInstanceNames(NS, "KVM_ResourcePoolConfigurationService")[0]
    refs = h.References(svc, "KVM_ServiceAffectsElement")
    assert sorted(r["AffectedElement"]["InstanceID"] for r in refs) == [
        "DiskPool/0", "DiskPool/images", "NetworkPool/0", "NetworkPool/default"]
    assert all(r["ElementEffects"] == [5] for r in refs)
    back = h.AssociatorNames(refs[1]["AffectedElement"], "KVM_ServiceAffectsElement")
    assert [b["Name"] for b in back] == ["RPCS"]
