"""The DSP2013 use cases of resource pools and allocation (5.1.4 to 5.1.8), end to end
through pywbem against kvm-cimom serving a private libvirtd's QEMU driver: a
directory pool of real volumes, a guest using one of them.  Every answer is
checked against libvirt."""

from __future__ import annotations

import os

import libvirt
import pytest
from lxml import etree
from pywbem import CIMError, WBEMServer

from tests.support.server import own_profiles

from .support import NS, POOL_NAME, by_id, expected_pool_ids, pool_ref

pytestmark = pytest.mark.libvirtd


@pytest.fixture(scope="module")
def qserver(scenario_server, daemon):
    """kvm-cimom serving the daemon's QEMU driver, or the --wbem-url server (serving
    --wbem-libvirt-uri, where the daemon fixture made the pool and the guest)."""
    return scenario_server(hosts=[daemon.uri("qemu")])

DSP1042 = "CIM:DSP1042-SystemVirtualization-1.0.0"


def _host(conn):
    server = WBEMServer(conn)
    sv = server.get_selected_profiles("DMTF", "System Virtualization")[0]
    return server.get_central_instances(sv.path)[0]


def _domains_xml(lv):
    return [etree.fromstring(d.XMLDesc(0)) for d in lv.listAllDomains()]


def _mem_kib(root):
    from kvm_providers.model.kinds.mem import TABLE as MEM
    return MEM["Reservation"].read(root)


def test_uc_5_1_4_supported_resource_types(qserver):
    """The profiles scoped by System Virtualization, their central instances, and the
    resource types those represent."""
    if not own_profiles(qserver):
        pytest.skip("the profiles' InstanceIDs (one per device kind, libvirt-cim's) are the "
                    "providers' own; OpenPegasus' interop provider makes one RegisteredProfile "
                    "per profile name and version with its own InstanceIDs")
    conn = qserver.conn()
    server = WBEMServer(conn)
    sv = server.get_selected_profiles("DMTF", "System Virtualization")[0]
    scoped = conn.AssociatorNames(sv.path, AssocClass="CIM_ReferencedProfile",
                                  ResultRole="Antecedent")
    names = {p["InstanceID"] for p in scoped}
    for iid in ("CIM:DSP1041-ResourceAllocation-1.1.0c_d",
                "CIM:DSP1043-AllocationCapabilities-1.0.0a",
                "CIM:DSP1045-MemoryResourceVirtualization-1.0.0",
                "CIM:DSP1059-GenericDeviceResourceVirtualization-1.0.0_n"):
        assert iid in names
    types: dict[str, set] = {}
    for prof in scoped:
        central = server.get_central_instances(prof)
        insts = [conn.GetInstance(p) for p in central]
        types[prof["InstanceID"]] = {i["ResourceType"] for i in insts if "ResourceType" in i}
    # each device profile's central instances are pools of its resource type
    assert types["CIM:DSP1059-GenericDeviceResourceVirtualization-1.0.0_d"] == {17}
    assert types["CIM:DSP1059-GenericDeviceResourceVirtualization-1.0.0_n"] == {10}
    assert types["CIM:DSP1059-GenericDeviceResourceVirtualization-1.0.0_p"] == {3}
    assert types["CIM:DSP1045-MemoryResourceVirtualization-1.0.0"] == {4}
    assert types["CIM:DSP1041-ResourceAllocation-1.1.0c_m"] == {4}
    # the allocation capabilities cover every resource type a virtual system can get
    assert types["CIM:DSP1043-AllocationCapabilities-1.0.0a"] == {1, 3, 4, 10, 13, 17, 24}
    dsp1041_d = server.get_central_instances(
        next(p for p in scoped if p["InstanceID"].endswith("1.1.0c_d")))
    assert {p["InstanceID"] for p in dsp1041_d} == {"DiskPool/0", f"DiskPool/{POOL_NAME}"}
    # and from the implementing instances back to their profiles
    back = conn.AssociatorNames(pool_ref(f"DiskPool/{POOL_NAME}"),
                                AssocClass="CIM_ElementConformsToProfile")
    assert {p["InstanceID"] for p in back} == {
        "CIM:DSP1059-GenericDeviceResourceVirtualization-1.0.0_d",
        "CIM:DSP1041-ResourceAllocation-1.1.0c_d"}
    back = conn.AssociatorNames(pool_ref("MemoryPool/0"),
                                AssocClass="CIM_ElementConformsToProfile")
    assert {p["InstanceID"] for p in back} == {
        "CIM:DSP1045-MemoryResourceVirtualization-1.0.0", "CIM:DSP1041-ResourceAllocation-1.1.0c_m"}
    back = conn.AssociatorNames(pool_ref("DiskPool/0", "KVM_AllocationCapabilities"),
                                AssocClass="CIM_ElementConformsToProfile")
    assert [p["InstanceID"] for p in back] == ["CIM:DSP1043-AllocationCapabilities-1.0.0a"]


def test_uc_5_1_5_resource_pools_and_constituents(qserver, daemon):
    """HostedResourcePool from the host to every pool; the storage pool's volumes are
    its constituent resources (CIM_Component)."""
    conn = qserver.conn()
    host = _host(conn)
    pools = conn.Associators(host, AssocClass="CIM_HostedResourcePool")
    assert {p["InstanceID"] for p in pools} == expected_pool_ids(daemon.conn)
    assert all(p.path.namespace == NS for p in pools)
    prim = {p["InstanceID"] for p in pools if p["Primordial"]}
    assert prim == {"ProcessorPool/0", "MemoryPool/0", "DiskPool/0", "NetworkPool/0",
                    "GraphicsPool/0", "InputPool/0", "ControllerPool/0"}
    up = conn.AssociatorNames(pool_ref(f"DiskPool/{POOL_NAME}"),
                              AssocClass="CIM_HostedResourcePool")
    assert [p["Name"] for p in up] == [host["Name"]]
    vols = conn.Associators(pool_ref(f"DiskPool/{POOL_NAME}"), AssocClass="CIM_Component",
                            ResultClass="CIM_LogicalDevice")
    lvpool = daemon.conn.storagePoolLookupByName(POOL_NAME)
    assert {v["DeviceID"] for v in vols} == {v.path() for v in lvpool.listAllVolumes()}
    by_name = {v["ElementName"]: v for v in vols}
    assert by_name["root.qcow2"]["Format"] == "qcow2"
    assert by_name["data.raw"]["NumberOfBlocks"] * by_name["data.raw"]["BlockSize"] == \
        lvpool.storageVolLookupByName("data.raw").info()[1]
    assert all(v["SystemName"] == host["Name"] for v in vols)
    back = conn.AssociatorNames(vols[0].path, AssocClass="CIM_Component")
    assert [p["InstanceID"] for p in back] == [f"DiskPool/{POOL_NAME}"]


def test_uc_5_1_6_capacity_and_allocation(qserver, daemon):
    """Capacity and Reserved of each pool, from libvirt; Reserved follows every define,
    modify and destroy of a virtual system."""
    conn = qserver.conn()
    lv = daemon.conn

    def pools():
        return by_id(conn.EnumerateInstances("CIM_ResourcePool"))

    p = pools()
    info = lv.getInfo()
    assert p["ProcessorPool/0"]["Capacity"] == info[2]
    assert p["ProcessorPool/0"]["AllocationUnits"] == "count"
    assert p["MemoryPool/0"]["Capacity"] == info[1] * 1024
    assert p["MemoryPool/0"]["AllocationUnits"] == "byte*2^10"
    spool = lv.storagePoolLookupByName(POOL_NAME).info()
    assert (p[f"DiskPool/{POOL_NAME}"]["Capacity"], p[f"DiskPool/{POOL_NAME}"]["Reserved"]) \
        == (spool[1] >> 20, spool[2] >> 20)
    assert p[f"DiskPool/{POOL_NAME}"]["AllocationUnits"] == "byte*2^20"
    assert p["DiskPool/0"]["Capacity"] == sum(
        sp.info()[1] >> 20 for sp in lv.listAllStoragePools() if sp.isActive())

    def reserved():
        q = pools()
        return (q["ProcessorPool/0"]["Reserved"], q["MemoryPool/0"]["Reserved"],
                q["GraphicsPool/0"]["Reserved"], q["InputPool/0"]["Reserved"])

    def expect():
        roots = _domains_xml(lv)
        from kvm_providers.model.kinds.proc import TABLE as PROC
        return (sum(PROC["VirtualQuantity"].read(r) for r in roots),
                sum(_mem_kib(r) for r in roots),
                sum(len(r.findall("devices/graphics")) for r in roots),
                sum(len(r.findall("devices/input")) for r in roots))

    before = reserved()
    assert before == expect()
    xml = ("<domain type='qemu'><name>reserve1</name><memory unit='MiB'>96</memory>"
           "<vcpu>3</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>"
           "<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>"
           "<graphics type='vnc' autoport='yes'/></devices></domain>")
    dom = lv.defineXML(xml)                                          # define
    try:
        after = reserved()
        assert after == expect()
        assert after[0] == before[0] + 3 and after[1] == before[1] + 96 * 1024
        assert after[2] == before[2] + 1
        root = etree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))   # modify
        root.find("vcpu").text = "1"
        for tag in ("memory", "currentMemory"):
            root.find(tag).set("unit", "MiB")
            root.find(tag).text = "64"
        dom = lv.defineXML(etree.tostring(root, encoding="unicode"))
        assert reserved() == expect()
        assert reserved()[:2] == (before[0] + 1, before[1] + 64 * 1024)
    finally:
        dom.undefine()                                               # destroy
    assert reserved() == before


def test_uc_5_1_7_resources_allocated_from_pool(qserver, daemon):
    """ElementAllocatedFromPool to the devices, ResourceAllocationFromPool to the RASDs."""
    conn = qserver.conn()
    disk_pool = pool_ref(f"DiskPool/{POOL_NAME}")
    devs = conn.Associators(disk_pool, AssocClass="CIM_ElementAllocatedFromPool",
                            ResultClass="CIM_LogicalDevice")
    assert [(d.classname, d["DeviceID"]) for d in devs] == [("KVM_LogicalDisk", "pooluser/vda")]
    rasds = conn.Associators(disk_pool, AssocClass="CIM_ResourceAllocationFromPool")
    assert [(r.classname, r["InstanceID"], r["PoolID"]) for r in rasds] == \
        [("KVM_DiskResourceAllocationSettingData", "pooluser/vda", f"DiskPool/{POOL_NAME}")]
    assert rasds[0]["Address"] == os.path.join(daemon.images, "root.qcow2")
    # processors: one device per vCPU of every defined system, one RASD per system
    lv = daemon.conn
    cpus = conn.AssociatorNames(pool_ref("ProcessorPool/0"),
                                AssocClass="CIM_ElementAllocatedFromPool")
    assert len(cpus) == sum(d.info()[3] for d in lv.listAllDomains())
    mem = conn.Associators(pool_ref("MemoryPool/0"), AssocClass="CIM_ResourceAllocationFromPool")
    assert {m["InstanceID"] for m in mem} == {f"{d.name()}/mem" for d in lv.listAllDomains()}
    assert all(m["PoolID"] == "MemoryPool/0" for m in mem)
    # and back: from a device and a RASD to its pool
    up = conn.AssociatorNames(devs[0].path, AssocClass="CIM_ElementAllocatedFromPool")
    assert [p["InstanceID"] for p in up] == [f"DiskPool/{POOL_NAME}"]
    up = conn.AssociatorNames(rasds[0].path, AssocClass="CIM_ResourceAllocationFromPool")
    assert [p["InstanceID"] for p in up] == [f"DiskPool/{POOL_NAME}"]
    # storage pools are allocated from the primordial DiskPool/0
    kids = conn.AssociatorNames(pool_ref("DiskPool/0"), AssocClass="CIM_ElementAllocatedFromPool",
                                ResultRole="Dependent")
    assert {k["InstanceID"] for k in kids} == {f"DiskPool/{p.name()}"
                                               for p in lv.listAllStoragePools()}


def _templates(conn, ac):
    refs = conn.References(ac, ResultClass="CIM_SettingsDefineCapabilities")
    out = {}
    for r in refs:
        t = conn.GetInstance(r["PartComponent"])
        out[t["InstanceID"].split("#", 1)[1]] = (r["ValueRole"], r["ValueRange"], t)
    return out


def test_uc_5_1_8_valid_settings(qserver, daemon):
    """From a pool and from the host, ElementCapabilities to AllocationCapabilities,
    SettingsDefineCapabilities to the templates: minimum, maximum, default, increment and
    the supported values, as the host's domain capabilities say."""
    conn = qserver.conn()
    lv = daemon.conn
    caps = etree.fromstring(lv.getDomainCapabilities(None, None, None, "qemu", 0))
    mem_ac = conn.AssociatorNames(pool_ref("MemoryPool/0"), AssocClass="CIM_ElementCapabilities")
    assert [a["InstanceID"] for a in mem_ac] == ["MemoryPool/0"]
    mem = _templates(conn, mem_ac[0])
    assert mem["Maximum"][:2] == (3, 2) and mem["Minimum"][:2] == (3, 1)
    assert mem["Increment"][:2] == (3, 3) and mem["Default"][:2] == (0, 0)
    assert mem["Maximum"][2]["VirtualQuantity"] == lv.getInfo()[1] * 1024
    assert mem["Default"][2]["AllocationUnits"] == "KiloBytes"
    assert mem["Minimum"][2]["VirtualQuantity"] <= mem["Default"][2]["VirtualQuantity"] <= \
        mem["Maximum"][2]["VirtualQuantity"]
    proc = _templates(conn, conn.AssociatorNames(pool_ref("ProcessorPool/0"),
                                                 AssocClass="CIM_ElementCapabilities")[0])
    assert proc["Maximum"][2]["VirtualQuantity"] == int(caps.find("vcpu").get("max"))
    assert proc["Minimum"][2]["VirtualQuantity"] == 1

    def points(tmpls, prop):
        # (a property a template does not set is absent, or NULL where the server
        # completes instances with every class property, as sfcb does)
        return {t[prop] for name, (role, rng, t) in tmpls.items()
                if name.startswith("Point ") and (role, rng) == (3, 0)
                and t.get(prop) is not None}

    def enum(path, name):
        return {v.text for v in caps.iterfind(f"{path}/enum[@name='{name}']/value")}

    disk = _templates(conn, pool_ref(f"DiskPool/{POOL_NAME}", "KVM_AllocationCapabilities"))
    assert points(disk, "BusType") == enum("devices/disk", "bus")
    assert all(t["PoolID"] == f"DiskPool/{POOL_NAME}" for _r, _g, t in disk.values())
    assert disk["Volume Point FormatType=2"][2]["FormatType"] == 2      # qcow2 in a dir pool
    spool = lv.storagePoolLookupByName(POOL_NAME)
    assert disk["Volume Maximum"][2]["Capacity"] == spool.info()[3]
    graphics = _templates(conn, pool_ref("GraphicsPool/0", "KVM_AllocationCapabilities"))
    assert points(graphics, "ResourceSubType") == enum("devices/graphics", "type")
    net = _templates(conn, pool_ref("NetworkPool/0", "KVM_AllocationCapabilities"))
    assert points(net, "ForwardMode") == {0, 1, 2, 3, 4}
    assert net["Default"][2].classname == "KVM_NetPoolResourceAllocationSettingData"
    # from the host: every pool's capabilities and no others (libvirt-cim's clients
    # count them against the pools), as many as an enumeration gives
    host = _host(conn)
    acs = conn.Associators(host, AssocClass="CIM_ElementCapabilities",
                           ResultClass="CIM_AllocationCapabilities")
    ids = {a["InstanceID"] for a in acs}
    assert ids == expected_pool_ids(lv)
    assert {a["InstanceID"] for a in conn.EnumerateInstanceNames(
        "KVM_AllocationCapabilities", namespace=NS)} == ids
    # the number of templates does not depend on the pool's volumes
    before = len(disk)
    vol = spool.createXML("<volume><name>extra.raw</name><capacity>1024</capacity></volume>", 0)
    try:
        assert len(_templates(conn, pool_ref(f"DiskPool/{POOL_NAME}",
                                             "KVM_AllocationCapabilities"))) == before
    finally:
        vol.delete(0)


def test_pool_instances_match_libvirt(qserver, daemon):
    """Every pool's properties and identity, compared with libvirt (one host: libvirt-cim's
    InstanceIDs)."""
    conn = qserver.conn()
    pools = by_id(conn.EnumerateInstances("CIM_ResourcePool"))
    dp = pools[f"DiskPool/{POOL_NAME}"]
    assert (dp.classname, dp["PoolID"], dp["Path"], dp["ResourceSubType"], dp["Primordial"]) == \
        ("KVM_DiskPool", f"DiskPool/{POOL_NAME}", daemon.images, "dir", False)
    assert dp["OperationalStatus"] == [2] and dp["Autostart"] == 0
    assert pools["ControllerPool/0"]["ResourceType"] == 1
    assert pools["ControllerPool/0"]["OtherResourceType"] == "controller"
    for iid, inst in pools.items():
        assert conn.GetInstance(inst.path)["InstanceID"] == iid
    # names only: no per-pool property is computed
    names = conn.EnumerateInstanceNames("CIM_ResourcePool")
    assert {p["InstanceID"] for p in names} == set(pools)
    with pytest.raises(CIMError) as err:
        conn.GetInstance(pool_ref("DiskPool/nosuchpool"))
    assert err.value.status_code == 6
