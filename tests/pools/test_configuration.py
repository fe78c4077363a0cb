"""The ResourcePoolConfigurationService through pywbem: networks and storage pools of
every type created and deleted on the daemon's test driver (checked with libvirt on
the same daemon); a directory pool and real raw and qcow2 volumes on its QEMU driver;
and what a failing step leaves behind: nothing."""

from __future__ import annotations

import os

import pytest
from lxml import etree
from pywbem import CIMError, CIMInstanceName, Uint64

from .support import NS, POOL_NAME, invoke, pool_ref, rasd, refused, service

pytestmark = pytest.mark.libvirtd


def _xml(obj):
    return etree.fromstring(obj.XMLDesc(0))


def _create_net(conn, name, **props):
    rv, out = invoke(conn, "CreateChildResourcePool", ElementName=name,
                     Settings=[rasd("NetPool", **props)],
                     ParentPool=[pool_ref("NetworkPool/0")])
    assert rv == 0
    assert out["Pool"]["InstanceID"] == f"NetworkPool/{name}"
    assert out["Pool"].classname == "KVM_NetworkPool"
    return out["Pool"]


@pytest.mark.parametrize("name,props,forward,ip,dhcp", [
    ("cimnat", {"ForwardMode": 1, "Address": "10.254.71.1", "Netmask": "255.255.255.0",
                "IPRangeStart": "10.254.71.100", "IPRangeEnd": "10.254.71.199"},
     "nat", ("10.254.71.1", "255.255.255.0"), ("10.254.71.100", "10.254.71.199")),
    ("cimroute", {"ForwardMode": 2, "Address": "10.254.72.1", "Netmask": "255.255.255.128",
                  "ForwardDevice": "eth9"},
     "route", ("10.254.72.1", "255.255.255.128"), None),
    ("cimiso", {"ForwardMode": 0, "Address": "10.254.73.1", "BridgeName": "kvmpiso0"},
     None, ("10.254.73.1", "255.255.255.0"), None),
    ("cimbr", {"ForwardMode": 3, "BridgeName": "kvmpbr9"}, "bridge", None, None),
    ("cimopen", {"ForwardMode": 4, "Address": "10.254.74.1", "Netmask": "255.255.255.0"},
     "open", ("10.254.74.1", "255.255.255.0"), None),
])
def test_networks_of_every_mode(tserver, daemon, name, props, forward, ip, dhcp):
    conn = tserver.conn()
    path = _create_net(conn, name, **props)
    try:
        net = daemon.test_conn.networkLookupByName(name)
        assert net.isActive()
        root = _xml(net)
        fwd = root.find("forward")
        assert (fwd.get("mode") if fwd is not None else None) == forward
        if props.get("ForwardDevice"):
            assert fwd.get("dev") == props["ForwardDevice"]
        if props.get("BridgeName"):
            assert root.find("bridge").get("name") == props["BridgeName"]
        ipel = root.find("ip")
        assert ((ipel.get("address"), ipel.get("netmask")) if ipel is not None else None) == ip
        rng = root.find("ip/dhcp/range")
        assert ((rng.get("start"), rng.get("end")) if rng is not None else None) == dhcp
        inst = conn.GetInstance(path)
        assert inst["ElementName"] == name and inst["Primordial"] is False
        kids = conn.AssociatorNames(pool_ref("NetworkPool/0"),
                                    AssocClass="KVM_ElementAllocatedFromPool")
        assert path["InstanceID"] in {k["InstanceID"] for k in kids}
    finally:
        rv, _ = invoke(conn, "DeleteResourcePool", Pool=path)
    assert rv == 0
    assert name not in {n.name() for n in daemon.test_conn.listAllNetworks()}
    with pytest.raises(CIMError) as err:
        conn.GetInstance(path)
    assert err.value.status_code == 6


def test_network_without_address_gets_the_default_templates_subnet(tserver, daemon):
    conn = tserver.conn()
    ac = pool_ref("NetworkPool/0", "KVM_AllocationCapabilities")
    default = next(conn.GetInstance(r["PartComponent"]) for r in conn.References(
        ac, ResultClass="KVM_SettingsDefineCapabilities") if r["ValueRole"] == 0)
    path = _create_net(conn, "cimdefault")       # ForwardMode defaults to NAT
    try:
        root = _xml(daemon.test_conn.networkLookupByName("cimdefault"))
        assert root.find("forward").get("mode") == "nat"
        assert root.find("ip").get("address") == default["Address"]
        assert root.find("ip/dhcp/range").get("start") == default["IPRangeStart"]
        # the next default is another subnet, free again
        again = next(conn.GetInstance(r["PartComponent"]) for r in conn.References(
            ac, ResultClass="KVM_SettingsDefineCapabilities") if r["ValueRole"] == 0)
        assert again["Address"] != default["Address"]
    finally:
        invoke(conn, "DeleteResourcePool", Pool=path)


STORAGE_POOLS = [
    (1, {"Path": "/srv/cimtest/dir1"}, "dir", {"target/path": "/srv/cimtest/dir1"}),
    (2, {"Path": "/srv/cimtest/fs1", "DevicePaths": ["/dev/vdz1"], "SourceFormat": "ext4"},
     "fs", {"source/device@path": "/dev/vdz1", "source/format@type": "ext4"}),
    (3, {"Path": "/srv/cimtest/nfs1", "Host": "nfs.example.com",
         "SourceDirectory": "/export/vm", "SourceFormat": "nfs"},
     "netfs", {"source/host@name": "nfs.example.com", "source/dir@path": "/export/vm"}),
    (4, {"Path": "/dev", "DevicePaths": ["/dev/vdz"]}, "disk",
     {"source/device@path": "/dev/vdz"}),
    (5, {"Host": "192.0.2.10:3260", "DevicePaths": ["iqn.2013-06.com.example:target0"]},
     "iscsi", {"source/host@name": "192.0.2.10", "source/host@port": "3260",
               "source/device@path": "iqn.2013-06.com.example:target0",
               "target/path": "/dev/disk/by-path"}),
    (6, {"SourceName": "vgcim", "DevicePaths": ["/dev/vdy1", "/dev/vdy2"]}, "logical",
     {"source/name": "vgcim", "target/path": "/dev/vgcim"}),
    (7, {"AdapterName": "host3"}, "scsi", {"source/adapter@name": "host3"}),
    (8, {}, "mpath", {"target/path": "/dev/mapper"}),
    (9, {"Host": "mon1.example.com", "SourceName": "rbdpool"}, "rbd",
     {"source/host@name": "mon1.example.com", "source/name": "rbdpool"}),
    (10, {"Host": "gluster.example.com", "SourceName": "gv0"}, "gluster",
     {"source/name": "gv0", "source/dir@path": "/"}),
    (11, {"SourceName": "tank"}, "zfs", {"source/name": "tank"}),
    (12, {"Host": "192.0.2.11", "DevicePaths": ["iqn.2013-06.com.example:target1"],
          "InitiatorIQN": "iqn.2013-06.com.example:initiator"}, "iscsi-direct",
     {"source/initiator/iqn@name": "iqn.2013-06.com.example:initiator"}),
    (13, {"Path": "/srv/cimtest/vz", "SourceName": "cluster1"}, "vstorage",
     {"source/name": "cluster1"}),
]


@pytest.mark.parametrize("ptype,props,lvtype,expect", STORAGE_POOLS,
                         ids=[p[2] for p in STORAGE_POOLS])
def test_storage_pools_of_every_type(tserver, daemon, ptype, props, lvtype, expect):
    conn = tserver.conn()
    name = f"cim{lvtype.replace('-', '')}"
    rv, out = invoke(conn, "CreateChildResourcePool", ElementName=name,
                     Settings=[rasd("DiskPool", Type=ptype, **props)])
    assert rv == 0 and out["Pool"]["InstanceID"] == f"DiskPool/{name}"
    try:
        pool = daemon.test_conn.storagePoolLookupByName(name)
        assert pool.isActive()
        root = _xml(pool)
        assert root.get("type") == lvtype
        for where, value in expect.items():
            path, _, attr = where.partition("@")
            el = root.find(path)
            assert el is not None, where
            assert (el.get(attr) if attr else el.text) == value, where
        inst = conn.GetInstance(out["Pool"])
        assert inst["ResourceSubType"] == lvtype
    finally:
        rv, _ = invoke(conn, "DeleteResourcePool", Pool=out["Pool"])
    assert rv == 0
    assert name not in {p.name() for p in daemon.test_conn.listAllStoragePools()}


def test_directory_pool_and_real_volumes(qserver, daemon):
    """A directory pool on the QEMU driver, raw and qcow2 volumes in it, deleted again."""
    conn = qserver.conn()
    target = os.path.join(daemon.workdir, "cimpool")
    rv, out = invoke(conn, "CreateChildResourcePool", ElementName="cimpool",
                     Settings=[rasd("DiskPool", Type=1, Path=target, Autostart=1)],
                     ParentPool=[pool_ref("DiskPool/0")])
    assert rv == 0
    ppath = out["Pool"]
    lvpool = daemon.conn.storagePoolLookupByName("cimpool")
    try:
        assert lvpool.isActive() and lvpool.autostart() == 1 and os.path.isdir(target)
        made = []
        for vname, fmt, cap, units in (("a.raw", 1, 4, "MegaBytes"),
                                       ("b.qcow2", 2, 16 << 20, "Bytes")):
            rv, out = invoke(conn, "CreateResourceInPool", Pool=ppath,
                             Settings=rasd("StorageVolume", VolumeName=vname, FormatType=fmt,
                                           Capacity=cap, AllocationUnits=units))
            assert rv == 0
            res = out["Resource"]
            assert res.classname == "KVM_StorageVolumeResourceAllocationSettingData"
            assert res["InstanceID"] == os.path.join(target, vname)
            made.append(conn.GetInstance(res))
        a, b = made
        vol = lvpool.storageVolLookupByName("a.raw")
        assert vol.info()[1] == 4 << 20 == a["Capacity"]
        assert _xml(vol).find("target/format").get("type") == "raw" and a["FormatType"] == 1
        vol = lvpool.storageVolLookupByName("b.qcow2")
        assert _xml(vol).find("target/format").get("type") == "qcow2" and b["FormatType"] == 2
        assert vol.info()[1] == 16 << 20
        with open(os.path.join(target, "b.qcow2"), "rb") as f:
            assert f.read(4) == b"QFI\xfb"                # a real qcow2 image
        assert a["PoolID"] == "DiskPool/cimpool" and a["Address"] == a["Path"]
        # the pool's constituents
        vols = conn.AssociatorNames(ppath, AssocClass="KVM_ConcreteComponent")
        assert sorted(v["DeviceID"] for v in vols) == [a["Path"], b["Path"]]
        # a file made outside libvirt appears after RefreshResourcesInPool
        with open(os.path.join(target, "outside.img"), "wb") as f:
            f.write(b"\0" * 4096)
        rv, _ = invoke(conn, "RefreshResourcesInPool", Pool=ppath)
        assert rv == 0 and "outside.img" in lvpool.listVolumes()
        # delete: by the instance CreateResourceInPool returned, by Address (libvirt-cim's
        # clients), by VolumeName
        rv, _ = invoke(conn, "DeleteResourceInPool", Pool=ppath, Resource=a)
        assert rv == 0
        rv, _ = invoke(conn, "DeleteResourceInPool", Pool=ppath,
                       Resource=rasd("Disk", Address=b["Path"]))
        assert rv == 0
        rv, _ = invoke(conn, "DeleteResourceInPool", Pool=ppath,
                       Resource=rasd("StorageVolume", VolumeName="outside.img"))
        assert rv == 0
        assert lvpool.listVolumes() == [] and os.listdir(target) == []
    finally:
        rv, _ = invoke(conn, "DeleteResourcePool", Pool=ppath)
    assert rv == 0
    assert "cimpool" not in [p.name() for p in daemon.conn.listAllStoragePools()]
    assert os.path.isdir(target)                    # undefined, its data left alone


def test_network_that_cannot_start_is_undefined_again(qserver, daemon):
    """The unprivileged daemon defines the network but cannot create its bridge."""
    conn = qserver.conn()
    before = [n.name() for n in daemon.conn.listAllNetworks()]
    msg = refused(conn, "CreateChildResourcePool", 1, "cimnostart",
                  ElementName="cimnostart",
                  Settings=[rasd("NetPool", ForwardMode=0, Address="10.254.75.1")])
    assert "starting network" in msg
    assert [n.name() for n in daemon.conn.listAllNetworks()] == before


def test_storage_pool_that_cannot_start_is_undone(qserver, daemon):
    """A file system pool whose device does not exist: built (its directory made), not
    started; it is undefined and the directory it made removed."""
    conn = qserver.conn()
    target = os.path.join(daemon.workdir, "cimfs")
    before = [p.name() for p in daemon.conn.listAllStoragePools()]
    refused(conn, "CreateChildResourcePool", 1, "cimfs", ElementName="cimfs",
            Settings=[rasd("DiskPool", Type=2, Path=target,
                           DevicePaths=["/dev/kvmp-no-such-device"])])
    assert [p.name() for p in daemon.conn.listAllStoragePools()] == before
    assert not os.path.exists(target)


@pytest.mark.filterwarnings("ignore::pywbem.MissingKeybindingsWarning")
def test_class_path_and_capabilities(qserver, daemon):
    conn = qserver.conn()
    svc = service(conn)
    assert svc["Name"] == "RPCS" and svc["SystemCreationClassName"] == "KVM_HostSystem"
    host = conn.EnumerateInstanceNames("KVM_HostSystem")[0]
    assert svc["SystemName"] == host["Name"]
    assert dict(svc.keybindings) in [dict(p.keybindings) for p in conn.AssociatorNames(
        host, AssocClass="KVM_HostedService")]
    caps = conn.Associators(svc, AssocClass="KVM_ElementCapabilities")
    assert [(c.classname, c["InstanceID"]) for c in caps] == \
        [("KVM_ResourcePoolConfigurationCapabilities", "RPCC")]
    assert caps[0]["SynchronousMethodsSupported"] == [3, 4, 32768, 32769, 32770]
    # CreateResourceInPool with an AllocationQuantity returns a job (docs/jobs.md)
    assert caps[0]["AsynchronousMethodsSupported"] == [32768]
    # exactly those: the methods libvirt-cim refused are CIM_ERR_NOT_SUPPORTED, as there
    # (cimtest ResourcePoolConfigurationService/03, 06), with or without parameters; the
    # one it did not know either is not implemented
    for method, params in (("CreateResourcePool", {}), ("AddResourcesToResourcePool", {}),
                           ("RemoveResourcesFromResourcePool", {}),
                           ("CreateResourcePool", {"ElementName": "x"})):
        with pytest.raises(CIMError) as err:
            conn.InvokeMethod(method, svc, **params)
        assert err.value.status_code == 7, method
        assert f"{method} is not supported" in err.value.status_description
    with pytest.raises(CIMError) as err:
        conn.InvokeMethod("ChangeParentResourcePool", svc)
    assert err.value.status_code == 16
    # libvirt-cim's clients invoke on the class path
    cls = CIMInstanceName("KVM_ResourcePoolConfigurationService", namespace=NS)
    rv, out = conn.InvokeMethod("CreateResourceInPool", cls, Pool=pool_ref(f"DiskPool/{POOL_NAME}"),
                                Settings=rasd("StorageVolume", VolumeName="viaclass.raw",
                                              Capacity=Uint64(65536)))
    assert rv == 0
    rv, _ = conn.InvokeMethod("DeleteResourceInPool", cls, Pool=pool_ref(f"DiskPool/{POOL_NAME}"),
                              Resource=conn.GetInstance(out["Resource"]))
    assert rv == 0
    assert "viaclass.raw" not in daemon.conn.storagePoolLookupByName(POOL_NAME).listVolumes()
