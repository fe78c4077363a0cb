"""Bad input to the ResourcePoolConfigurationService: each kind gets a clear CIM error
naming what is wrong, and libvirt is left exactly as it was (no network, pool or
volume defined, created or removed)."""

from __future__ import annotations

import os

import pytest
from pywbem import CIMInstanceName, Uint64

from .support import NS, POOL_NAME, pool_ref, rasd, refused

pytestmark = pytest.mark.libvirtd

INVALID, NOT_FOUND, FAILED = 4, 6, 1


def _state(lv):
    """Everything a method could change: networks, pools, volumes (and whether active)."""
    nets = {(n.name(), n.isActive()) for n in lv.listAllNetworks()}
    pools = {(p.name(), p.isActive()) for p in lv.listAllStoragePools()}
    vols = {(p.name(), v) for p in lv.listAllStoragePools() if p.isActive()
            for v in p.listVolumes()}
    return nets, pools, vols


@pytest.fixture
def unchanged(daemon):
    """Asserts after the test that neither driver of the daemon changed."""
    before = (_state(daemon.conn), _state(daemon.test_conn))
    yield
    assert (_state(daemon.conn), _state(daemon.test_conn)) == before


def net(conn, name, words, status=INVALID, parent="NetworkPool/0", **props):
    return refused(conn, "CreateChildResourcePool", status, *words, ElementName=name,
                   Settings=[rasd("NetPool", **props)], ParentPool=[pool_ref(parent)])


def dpool(conn, name, words, status=INVALID, **props):
    return refused(conn, "CreateChildResourcePool", status, *words, ElementName=name,
                   Settings=[rasd("DiskPool", **props)])


# -- existing names ----------------------------------------------------------------------------

@pytest.mark.usefixtures("unchanged")
def test_existing_names(tserver, qserver):
    t, q = tserver.conn(), qserver.conn()
    net(t, "default", ["ElementName", "'default'", "exists"], ForwardMode=0,
        Address="10.254.80.1")
    dpool(t, "default-pool", ["ElementName", "'default-pool'", "exists"], Type=1,
          Path="/srv/cimtest/x")
    dpool(q, POOL_NAME, ["ElementName", "exists"], Type=1, Path="/tmp/kvmp-x")
    refused(q, "CreateResourceInPool", INVALID, "VolumeName", "'data.raw'",
            Pool=pool_ref(f"DiskPool/{POOL_NAME}"),
            Settings=rasd("StorageVolume", VolumeName="data.raw", Capacity=4096))
    net(t, "0", ["primordial"], ForwardMode=0)


# -- bad paths -----------------------------------------------------------------------------------

@pytest.mark.usefixtures("unchanged")
def test_bad_paths(tserver, qserver, daemon):
    t, q = tserver.conn(), qserver.conn()
    dpool(t, "cimbad", ["Path", "absolute"], Type=1, Path="relative/dir")
    dpool(t, "cimbad", ["Path", "'..'"], Type=1, Path="/srv/../etc")
    dpool(t, "cimbad", ["Path is required"], Type=1)
    dpool(t, "cimbad", ["DevicePaths", "exactly one"], Type=2, Path="/srv/cimtest/f")
    dpool(t, "cimbad", ["DevicePaths[0]", "absolute"], Type=2, Path="/srv/cimtest/f",
          DevicePaths=["vdb1"])
    dpool(t, "cimbad", ["SourceDirectory", "absolute"], Type=3, Path="/srv/cimtest/n",
          Host="nfs.example.com", SourceDirectory="export")
    dpool(t, "cimbad", ["Path", "no target path"], Type=9, Host="mon1", SourceName="p",
          Path="/srv/x")
    # a target another pool has, a file where a directory should be (this machine's host)
    dpool(q, "cimbad", ["Path", "target of storage pool", POOL_NAME], Type=1,
          Path=daemon.images)
    afile = os.path.join(daemon.workdir, "libvirtd.log")
    dpool(q, "cimbad", ["Path", "not a directory"], Type=1, Path=afile)
    # a volume Path outside its pool
    refused(q, "CreateResourceInPool", INVALID, "Path", "not in storage pool",
            Pool=pool_ref(f"DiskPool/{POOL_NAME}"),
            Settings=rasd("StorageVolume", VolumeName="v.raw", Capacity=4096, Path="/etc"))
    refused(q, "CreateResourceInPool", INVALID, "VolumeName", "'/'",
            Pool=pool_ref(f"DiskPool/{POOL_NAME}"),
            Settings=rasd("StorageVolume", VolumeName="../v.raw", Capacity=4096))


# -- bad addresses ---------------------------------------------------------------------------------

@pytest.mark.usefixtures("unchanged")
def test_bad_addresses(tserver):
    t = tserver.conn()
    net(t, "cimbad", ["Address", "'300.1.2.3'"], ForwardMode=1, Address="300.1.2.3")
    net(t, "cimbad", ["Netmask", "'255.0.255.0'"], ForwardMode=1, Address="10.254.81.1",
        Netmask="255.0.255.0")
    net(t, "cimbad", ["IPRangeStart", "10.254.82.5", "not a host address of"],
        ForwardMode=1, Address="10.254.81.1", IPRangeStart="10.254.82.5",
        IPRangeEnd="10.254.82.9")
    net(t, "cimbad", ["IPRangeStart", "after IPRangeEnd"], ForwardMode=1,
        Address="10.254.81.1", IPRangeStart="10.254.81.90", IPRangeEnd="10.254.81.10")
    net(t, "cimbad", ["DHCP range", "own Address"], ForwardMode=1, Address="10.254.81.50",
        IPRangeStart="10.254.81.10", IPRangeEnd="10.254.81.90")
    net(t, "cimbad", ["IPRangeStart and IPRangeEnd"], ForwardMode=1, Address="10.254.81.1",
        IPRangeStart="10.254.81.10")
    net(t, "cimbad", ["network or broadcast"], ForwardMode=1, Address="10.254.81.0")
    net(t, "cimbad", ["overlaps", "'default'"], ForwardMode=1, Address="192.168.122.77",
        Netmask="255.255.0.0")
    net(t, "cimbad", ["bridge", "no Address"], ForwardMode=3, BridgeName="br7",
        Address="10.254.81.1")
    net(t, "cimbad", ["BridgeName"], ForwardMode=3)
    net(t, "cimbad", ["BridgeName", "interface name"], ForwardMode=0, Address="10.254.81.1",
        BridgeName="this-name-is-far-too-long")
    net(t, "cimbad", ["BridgeName", "'virbr0'", "'default'"], ForwardMode=0,
        Address="10.254.81.1", BridgeName="virbr0")
    net(t, "cimbad", ["ForwardMode 9"], ForwardMode=9)
    net(t, "cimbad", ["ForwardDevice"], ForwardMode=0, Address="10.254.81.1",
        ForwardDevice="eth0")
    dpool(t, "cimbad", ["Host", "'not a host!'"], Type=3, Path="/srv/cimtest/n",
          Host="not a host!", SourceDirectory="/e")
    dpool(t, "cimbad", ["target IQN"], Type=5, Host="192.0.2.1", DevicePaths=["target0"])
    dpool(t, "cimbad", ["InitiatorIQN is required"], Type=12, Host="192.0.2.1",
          DevicePaths=["iqn.2013-06.com.example:t"])
    dpool(t, "cimbad", ["PortName", "world wide name"], Type=7, PortName="xyz",
          NodeName="20000000c9831b4b")


# -- pools that do not exist, pools of the wrong kind ---------------------------------------------

@pytest.mark.usefixtures("unchanged")
def test_pools_that_do_not_exist(tserver, qserver):
    t, q = tserver.conn(), qserver.conn()
    refused(t, "DeleteResourcePool", NOT_FOUND, "'DiskPool/nosuch'", "does not exist",
            Pool=pool_ref("DiskPool/nosuch"))
    refused(t, "DeleteResourcePool", NOT_FOUND, "'NetworkPool/nosuch'",
            Pool=pool_ref("NetworkPool/nosuch"))
    refused(q, "CreateResourceInPool", NOT_FOUND, "'DiskPool/nosuch'",
            Pool=pool_ref("DiskPool/nosuch"),
            Settings=rasd("StorageVolume", VolumeName="v.raw", Capacity=4096))
    refused(q, "DeleteResourceInPool", NOT_FOUND, "no volume 'nosuch.raw'",
            Pool=pool_ref(f"DiskPool/{POOL_NAME}"),
            Resource=rasd("StorageVolume", VolumeName="nosuch.raw"))
    refused(q, "DeleteResourceInPool", NOT_FOUND, "Address",
            Pool=pool_ref(f"DiskPool/{POOL_NAME}"),
            Resource=rasd("Disk", Address="/nonexistent/x.img"))
    refused(t, "RefreshResourcesInPool", NOT_FOUND, "does not exist",
            Pool=pool_ref("DiskPool/nosuch"))
    # wrong kinds and ids
    net(t, "cimbad", ["ParentPool[0]", "child of NetworkPool/0"], parent="DiskPool/0",
        ForwardMode=0)
    refused(t, "DeleteResourcePool", INVALID, "primordial", Pool=pool_ref("DiskPool/0"))
    refused(t, "DeleteResourcePool", INVALID, "InstanceID",
            Pool=pool_ref("NetworkPool/default", "KVM_DiskPool"))
    refused(t, "DeleteResourcePool", INVALID, "Pool", "is required")
    refused(t, "DeleteResourcePool", INVALID, "LXC_DiskPool",
            Pool=pool_ref("DiskPool/default-pool", "LXC_DiskPool"))
    refused(q, "CreateResourceInPool", INVALID, "volumes are created in storage pools",
            Pool=pool_ref("DiskPool/0"),
            Settings=rasd("StorageVolume", VolumeName="v.raw", Capacity=4096))


# -- in use ---------------------------------------------------------------------------------------

@pytest.mark.usefixtures("unchanged")
def test_in_use(tserver, qserver, daemon):
    t, q = tserver.conn(), qserver.conn()
    used = os.path.join(daemon.images, "root.qcow2")
    refused(q, "DeleteResourceInPool", FAILED, "in use", "'pooluser'",
            Pool=pool_ref(f"DiskPool/{POOL_NAME}"), Resource=rasd("Disk", Address=used))
    vol = CIMInstanceName("KVM_StorageVolumeResourceAllocationSettingData",
                          {"InstanceID": used}, namespace=NS)
    refused(q, "DeleteResourceInPool", FAILED, "in use",
            Pool=pool_ref(f"DiskPool/{POOL_NAME}"), Resource=q.GetInstance(vol))
    refused(q, "DeleteResourcePool", FAILED, f"DiskPool/{POOL_NAME} is in use", "'pooluser'",
            Pool=pool_ref(f"DiskPool/{POOL_NAME}"))
    # the test driver's guest 'test' is on network 'default'
    refused(t, "DeleteResourcePool", FAILED, "NetworkPool/default is in use", "'test'",
            Pool=pool_ref("NetworkPool/default"))


# -- settings that cannot be used ----------------------------------------------------------

@pytest.mark.usefixtures("unchanged")
def test_bad_settings(tserver, qserver):
    t, q = tserver.conn(), qserver.conn()
    refused(t, "CreateChildResourcePool", INVALID, "ElementName", "required",
            Settings=[rasd("NetPool", ForwardMode=0)])
    refused(t, "CreateChildResourcePool", INVALID, "exactly one", "got 2", ElementName="x",
            Settings=[rasd("NetPool"), rasd("NetPool")])
    refused(t, "CreateChildResourcePool", INVALID, "exactly one", "got 0", ElementName="x")
    refused(t, "CreateChildResourcePool", INVALID, "KVM_DiskResourceAllocationSettingData",
            ElementName="x", Settings=[rasd("Disk", Address="/a")])
    refused(t, "CreateChildResourcePool", INVALID, "Settings", ElementName="x",
            Settings=["instance of KVM_NoSuchClass { };"])
    dpool(t, "cimbad", ["Type 99", "supports"], Type=99)
    dpool(t, "cimbad", ["Type is required"])
    dpool(t, "cimbad", ["Autostart"], Type=1, Path="/srv/cimtest/a", Autostart=5)
    dpool(q, "cimbad", ["SourceFormat", "'nfs4x'", "ext4"], Type=2, Path="/srv/cimtest/f",
          DevicePaths=["/dev/vdb1"], SourceFormat="nfs4x")
    dpool(t, "cimbad/x", ["ElementName", "'/'"], Type=1, Path="/srv/cimtest/x")
    vpool = pool_ref(f"DiskPool/{POOL_NAME}")
    refused(q, "CreateResourceInPool", INVALID, "Capacity", "positive", Pool=vpool,
            Settings=rasd("StorageVolume", VolumeName="v.raw", Capacity=0))
    refused(q, "CreateResourceInPool", INVALID, "Capacity", Pool=vpool,
            Settings=rasd("StorageVolume", VolumeName="v.raw"))
    refused(q, "CreateResourceInPool", INVALID, "AllocationQuantity", "exceeds Capacity",
            Pool=vpool, Settings=rasd("StorageVolume", VolumeName="v.raw", Capacity=4096,
                                      AllocationQuantity=8192))
    refused(q, "CreateResourceInPool", INVALID, "FormatType 7", Pool=vpool,
            Settings=rasd("StorageVolume", VolumeName="v.raw", Capacity=4096, FormatType=7))
    refused(q, "CreateResourceInPool", INVALID, "AllocationUnits", "'parsecs'", Pool=vpool,
            Settings=rasd("StorageVolume", VolumeName="v.raw", Capacity=4096,
                          AllocationUnits="parsecs"))
    refused(q, "CreateResourceInPool", INVALID, "StorageVolumeResourceAllocationSettingData",
            Pool=vpool, Settings=rasd("Disk", Address="/x"))
    refused(q, "CreateResourceInPool", INVALID, "AllocationQuantity", "space available",
            Pool=vpool, Settings=rasd("StorageVolume", VolumeName="huge.raw",
                                      Capacity=Uint64(1 << 60), AllocationQuantity=1 << 60))
    refused(q, "DeleteResourceInPool", INVALID, "names no volume", Pool=vpool,
            Resource=rasd("StorageVolume"))
