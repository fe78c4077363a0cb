"""One answer per question (issue 11, item 5): where a host is, what it is called, whether
it answers.

* one locality check (:attr:`Host.is_local`, :attr:`Host.files_local`) that every caller
  asks;
* no invented host names: a host whose name libvirt cannot tell is not named after this
  machine (and that name is not a key);
* HealthState / OperationalStatus / CommunicationStatus of the per-host elements say
  whether the host answers.

The hosts are libvirt's test driver; a host that is away is the real connection layer
with an opener that fails (as libvirt.open does when the daemon is gone), a remote host
is a remote-looking URI opened on the test driver.
"""

from __future__ import annotations

import logging
import os
import time

import libvirt
import pytest
from pywbem import CIMError, CIMInstanceName

from kvm_providers.provider import cim_error, request_scope
from kvm_providers.virt import connection as vconn
from kvm_providers.virt import domain as vdomain
from kvm_providers.model import settings as vsettings
from kvm_providers.virt import validate as vvalidate
from kvm_providers.virt.errors import VirtError
from kvm_providers.config import HostConfig
from tests.providers.harness import Harness

NS = "root/virt"


# -- 1. where a host is ---------------------------------------------------------------------

@pytest.mark.parametrize("uri,local,files", [
    ("qemu:///system", True, True),
    ("qemu:///session", True, True),
    ("qemu+unix:///system?socket=/run/x/libvirt-sock", True, True),
    ("qemu:///session?socket=/tmp/d/run/libvirt/libvirt-sock", True, True),
    ("qemu:///embed?root=/tmp/emb", True, True),
    ("lxc:///", True, True),
    ("lxc:///system", True, True),
    ("test:///default", True, False),
    ("test+unix:///default?socket=/tmp/s", True, False),
    ("qemu+ssh://localhost/system", True, True),
    ("qemu+tcp://127.0.0.1/system", True, True),
    ("qemu+tcp://[::1]/system", True, True),
    ("qemu+ssh://lab1.example.com/system", False, False),
    ("qemu://lab1/system", False, False),
    ("qemu+tls://10.1.2.3/system", False, False),
    ("qemu+ssh://root@lab1:2222/system", False, False),
    ("test+tcp://lab1/default", False, False),
    ("qemu+ext:///system?command=/opt/tunnel", False, False),
])
def test_locality_of_uris(uri, local, files):
    assert vconn.uri_is_local(uri) is local
    assert vconn.uri_files_local(uri) is files


class _Down:
    """An opener for hosts that never connect (only their URI matters here)."""

    def __call__(self, uri):
        raise libvirt.libvirtError("not connected in this test")


@pytest.mark.parametrize("uri", ["qemu+unix:///system?socket=/run/x/sock", "qemu:///system",
                                 "test:///default", "qemu+ssh://lab1/system",
                                 "qemu+ssh://localhost/system"])
def test_every_caller_gets_the_same_answer(uri):
    """settings (image format, disk checks), validate (symbolic links) and the domain
    model (disk capacity) asked two diverging questions: qemu+unix was local to one and
    remote to the other."""
    host = vconn.Host(HostConfig.make(uri, name="h"), opener=_Down(), first_wait=0)
    try:
        assert host.files_local == vconn.uri_files_local(uri)
        assert vsettings.host_is_local(host) is host.files_local
        assert vvalidate._local(host) is host.files_local
        assert host.is_local == vconn.uri_is_local(uri)
    finally:
        host.close()


def test_disk_capacity_of_a_local_socket_uri_reads_the_file(tmp_path):
    """qemu+unix:///... is this machine: a disk file outside any pool is sized here
    (the domain model used to call it remote and report no capacity)."""
    from kvm_providers.virt import validate
    img = tmp_path / "disk.img"
    img.write_bytes(b"\0" * 12345)
    from kvm_providers.config import StorageConfig
    validate.configure_storage(StorageConfig(allowed_paths=[str(tmp_path)]))
    opener = lambda _uri: libvirt.open("test:///default")  # noqa: E731
    host = vconn.Host(HostConfig.make("qemu+unix:///system?socket=/nonexistent", name="u",
                                      family="KVM"), opener=opener)
    try:
        deadline = time.monotonic() + 10
        while not host.is_up and time.monotonic() < deadline:
            time.sleep(0.02)
        from lxml import etree
        disk = etree.fromstring(f"<disk type='file' device='disk'><source file='{img}'/>"
                                "<target dev='vda'/></disk>")

        class Doc:
            pass
        doc = Doc()
        doc.host = host
        ctx = vdomain.DeviceContext(doc)
        with request_scope():
            assert ctx.disk_capacity(disk) == 12345
    finally:
        host.close()
        validate.configure_storage(None)


# -- 3. no invented host names ------------------------------------------------------------

@pytest.fixture
def no_hostname(monkeypatch):
    """libvirt cannot tell the host name (a driver without virConnectGetHostname)."""
    def fail(self):
        raise libvirt.libvirtError("this driver cannot tell the host name (simulated)")
    monkeypatch.setattr(libvirt.virConnect, "getHostname", fail)


def _wait_up(mgr):
    assert mgr.wait_connected(10), "hosts did not connect"


def _host_systems(h):
    return h.EnumerateInstances(NS, "KVM_HostSystem")


def test_remote_host_without_a_name_is_not_named_after_this_machine(layer, no_hostname):
    mgr = layer("test+tcp://lab1.example.invalid/default", names={0: "lab1"},
                opener=lambda _uri: libvirt.open("test:///default"))
    _wait_up(mgr)
    h = Harness()
    [hs] = _host_systems(h)
    me = os.uname().nodename
    assert hs["Name"] == "lab1.example.invalid"
    assert hs["Name"] != me and hs["ElementName"] == "lab1.example.invalid"
    assert "could not tell the host name" in hs["Description"]
    assert "simulated" in hs["Description"]
    # the services name the same system, and the name leads back to the host
    [vsms] = h.EnumerateInstances(NS, "KVM_VirtualSystemManagementService")
    assert vsms["SystemName"] == "lab1.example.invalid"
    got = h.GetInstance(CIMInstanceName("KVM_HostSystem", {"CreationClassName": "KVM_HostSystem",
                                                           "Name": "lab1.example.invalid"},
                                        namespace=NS))
    assert got["Name"] == "lab1.example.invalid"
    with pytest.raises(CIMError) as err:
        h.GetInstance(CIMInstanceName("KVM_HostSystem", {"CreationClassName": "KVM_HostSystem",
                                                         "Name": me}, namespace=NS))
    assert err.value.status_code == 6


def test_two_remote_hosts_without_names_stay_apart(layer, no_hostname):
    opener = lambda _uri: libvirt.open("test:///default")  # noqa: E731
    mgr = layer("test+tcp://lab1.example.invalid/default", "test+tcp://lab2.example.invalid/default",
                names={0: "lab1", 1: "lab2"}, opener=opener)
    _wait_up(mgr)
    names = sorted(hs["Name"] for hs in _host_systems(Harness()))
    assert names == ["lab1:lab1.example.invalid", "lab2:lab2.example.invalid"]


def test_every_key_naming_a_host_without_a_name_leads_back_to_it(layer, no_hostname):
    """The host system's Name, and every SystemName naming it (services, filter lists and
    rules, volumes), is made by one function and parsed by one: the filter classes
    compared it with the name libvirt reads, and lost every filter of such a host."""
    from kvm_providers.providers.common import filter_paths, paths, pool_paths
    mgr = layer("test+tcp://lab1.example.invalid/default", names={0: "lab1"},
                opener=lambda _uri: libvirt.open("test:///default"))
    _wait_up(mgr)
    [host] = mgr.hosts
    name = paths.host_system_name(host)
    assert name == "lab1.example.invalid"
    with request_scope():
        assert paths.host_of_path(paths.host_path(host), "KVM") is host
        assert paths.host_of_system_name("KVM", name) is host
        for cls in ("KVM_FilterList", "KVM_IPHeadersFilter"):
            kb = filter_paths.filter_keys(host, cls, "clean-traffic")
            assert kb["SystemName"] == name
            assert filter_paths.host_of_keys(kb, cls, "KVM") is host
        assert pool_paths.same_host_system(name, host)
        for other in (os.uname().nodename, "lab1", None, 7):
            assert paths.host_of_system_name("KVM", other) is None
            assert filter_paths.host_of_keys({**kb, "SystemName": other}, cls, "KVM") is None


def test_local_host_without_a_name_is_this_machine(layer, no_hostname):
    """For a host that is this machine, its node name is no guess (libvirt falls back to
    it too); the instance still says the name was not read."""
    mgr = layer("test:///default")
    _wait_up(mgr)
    [hs] = _host_systems(Harness())
    assert hs["Name"] == os.uname().nodename
    assert "this machine" in hs["Description"]


def test_host_with_a_name_is_named_by_libvirt(layer):
    mgr = layer("test+tcp://lab1.example.invalid/default",
                opener=lambda _uri: libvirt.open("test:///default"))
    _wait_up(mgr)
    [hs] = _host_systems(Harness())
    assert hs["Name"] == libvirt.open("test:///default").getHostname()
    assert hs["Description"] is None


# -- 4. status that reflects reachability ------------------------------------------------------

class Switch:
    """Opens the test driver, or fails (as libvirt.open does when libvirtd is gone)."""

    def __init__(self):
        self.down = False

    def __call__(self, uri):
        if self.down:
            raise libvirt.libvirtError("Failed to connect socket: Connection refused (simulated)")
        return libvirt.open("test:///default")


def _status(inst):
    return (inst["HealthState"], list(inst["OperationalStatus"]), inst["CommunicationStatus"])


PER_HOST = ("KVM_HostSystem", "KVM_VirtualSystemManagementService",
            "KVM_ResourcePoolConfigurationService")


def test_per_host_elements_say_whether_the_host_answers(layer):
    switch = Switch()
    mgr = layer("test+unix:///default?socket=/nonexistent", names={0: "away"}, opener=switch,
                backoff=(0.05, 0.2), retry_wait=0.3)
    _wait_up(mgr)
    h = Harness(modules=None)
    for cls in PER_HOST:
        [inst] = h.EnumerateInstances(NS, cls)
        assert _status(inst) == (5, [2], 2), cls
        assert inst["StatusDescriptions"] is None
    host = mgr.hosts[0]
    switch.down = True
    host.lost(None, "libvirt closed the connection (end of file) (simulated)")
    for cls in PER_HOST:
        [inst] = h.EnumerateInstances(NS, cls)   # still listed: the keys are known
        assert _status(inst) == (20, [13], 3), cls
        [why] = inst["StatusDescriptions"]
        assert "'away'" in why and "not reachable" in why
        got = h.GetInstance(inst.path)
        assert _status(got) == (20, [13], 3)
    # pools need the host to be listed: the request fails, naming it
    with pytest.raises(CIMError) as err:
        h.EnumerateInstances(NS, "KVM_DiskPool")
    assert err.value.status_code == 1 and "'away'" in err.value.status_description
    switch.down = False
    deadline = time.monotonic() + 10
    while not host.is_up and time.monotonic() < deadline:
        time.sleep(0.02)
    for cls in PER_HOST:
        [inst] = h.EnumerateInstances(NS, cls)
        assert _status(inst) == (5, [2], 2), cls


def _classes_with_status(h):
    """Every KVM class served in root/virt that has HealthState or OperationalStatus."""
    from kvm_providers.registry.table import TABLE
    names = {e.classname.replace("{P}", "KVM") for e in TABLE
             if "instance" in e.types and NS in e.namespaces}
    return sorted(n for n in names if n.startswith("KVM_") and
                  {"healthstate", "operationalstatus"} & set(h.schema.spec(NS, n).props))


def test_nothing_of_an_unreachable_host_is_reported_ok(layer):
    """Walks every class with a status: once the host is away, an element of it is either
    listed with the host's status (HealthState 20, OperationalStatus [13]) or the request
    fails naming the host - never a constant 'OK' (pools, services, devices, systems)."""
    switch = Switch()
    mgr = layer("test+unix:///default?socket=/nonexistent", names={0: "away"}, opener=switch,
                backoff=(0.05, 0.2), retry_wait=0.3)
    _wait_up(mgr)
    h = Harness(modules=None)
    classes = _classes_with_status(h)
    assert {"KVM_HostSystem", "KVM_DiskPool", "KVM_ComputerSystem",
            "KVM_VirtualSystemSnapshotService", "KVM_LogicalDisk"} <= set(classes)
    paths = {cn: [i.path for i in h.EnumerateInstances(NS, cn)] for cn in classes}
    assert paths["KVM_DiskPool"] and paths["KVM_ComputerSystem"]
    switch.down = True
    mgr.hosts[0].lost(None, "libvirt closed the connection (simulated)")
    listed = set()

    def check(call, cn):
        try:
            got = call()
        except CIMError as err:
            assert err.status_code == 1 and "'away'" in err.status_description, (cn, err)
            return
        for inst in got if isinstance(got, list) else [got]:
            listed.add(cn)
            if "HealthState" in inst:
                assert inst["HealthState"] == 20, (cn, inst["HealthState"])
            if "OperationalStatus" in inst:
                assert list(inst["OperationalStatus"]) == [13], (cn, inst["OperationalStatus"])
    for cn in classes:
        check(lambda: h.EnumerateInstances(NS, cn), cn)  # noqa: B023 (called at once)
        for path in paths[cn]:
            check(lambda: h.GetInstance(path), cn)  # noqa: B023 (called at once)
    # the per-host services and the host system itself are still listed, as away
    assert {"KVM_HostSystem", "KVM_VirtualSystemManagementService",
            "KVM_VirtualSystemSnapshotService"} <= listed


def test_keys_survive_a_reconnection_that_read_nothing(layer):
    """Up, then reconnected (a new connection whose facts were never read), then away:
    the host keeps the name it had, and is listed as away."""
    switch = Switch()
    mgr = layer("test+unix:///default?socket=/nonexistent", names={0: "away"}, opener=switch,
                backoff=(0.05, 0.2), retry_wait=0.3)
    _wait_up(mgr)
    host = mgr.hosts[0]
    h = Harness(modules=None)
    [before] = _host_systems(h)
    gen = host.generation
    host.lost(None, "simulated loss")
    deadline = time.monotonic() + 10
    while (not host.is_up or host.generation == gen) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert host.generation > gen
    switch.down = True
    host.lost(None, "simulated loss")
    [after] = _host_systems(h)
    assert after["Name"] == before["Name"]
    assert _status(after) == (20, [13], 3)
    [vsms] = h.EnumerateInstances(NS, "KVM_VirtualSystemManagementService")
    assert vsms["SystemName"] == before["Name"] and _status(vsms) == (20, [13], 3)


def test_host_never_reached_fails_the_request(layer):
    switch = Switch()
    switch.down = True
    layer("test+unix:///default?socket=/nonexistent", names={0: "never"}, opener=switch,
          first_wait=2.0, retry_wait=0.3)
    with pytest.raises(CIMError) as err:
        Harness().EnumerateInstances(NS, "KVM_HostSystem")
    assert err.value.status_code == 1 and "'never'" in err.value.status_description


def test_alert_of_a_host_never_reached_is_delivered_without_a_name(layer, caplog):
    """The host-unreachable alert of a host that never answered has no name to give: the
    indication goes out without SystemName and AlertingManagedElement (it caught only
    CIMError, and the libvirt layer's HostUnavailable lost the alert)."""
    from kvm_providers.providers.alert_indications import indication_of
    from kvm_providers.virt.alerts import Alert
    switch = Switch()
    switch.down = True
    mgr = layer("test+unix:///default?socket=/nonexistent", names={0: "never"}, opener=switch,
                first_wait=0.2, retry_wait=0.3)
    host = mgr.hosts[0]
    caplog.set_level(logging.INFO, logger="kvm_providers.providers.alert_indications")
    alert = Alert(host.label, "host", "host-unreachable", "host-unreachable", True, "major",
                  "libvirt host 'never' is not reachable", time.time())
    with request_scope():
        ind = indication_of(alert)
    assert ind is not None and ind["AlertType"] == 2 and ind["PerceivedSeverity"] == 5
    assert ind["SystemCreationClassName"] == "KVM_HostSystem"
    assert "SystemName" not in ind and "AlertingManagedElement" not in ind
    assert "no SystemName" in caplog.text and "not reachable" in caplog.text   # why, logged


# -- 5. failures fail the request, naming the host: no blank properties ---------------------

VOL_XML = ("<volume><name>oneanswer.img</name><capacity unit='bytes'>1048576</capacity>"
           "<target><format type='raw'/></target></volume>")
HANG = 1.0     # hang_timeout of the hung host (s)


@pytest.fixture
def volume():
    """A volume in the test driver's default-pool (test:///default is one per process)."""
    c = libvirt.open("test:///default")
    pool = c.storagePoolLookupByName("default-pool")
    vol = pool.createXML(VOL_XML, 0)
    yield vol.path()
    vol.delete(0)
    c.close()


@pytest.fixture
def hung_layer(layer):
    """One host behind a daemon-like connection (calls on helper threads, with the
    deadline), whose libvirt is the test driver; returns the manager."""
    mgr = layer("test+tcp://hung.invalid/default", names={0: "hung"},
                opener=lambda _uri: libvirt.open("test:///default"), hang_timeout=HANG,
                backoff=(0.05, 0.2), retry_wait=0.3)
    assert mgr.wait_connected(10)
    assert not mgr.hosts[0].in_process
    return mgr


def _hang(monkeypatch, cls, name):
    """`cls.name` blocks longer than the host's hang_timeout, and so does the layer's
    probe (getLibVersion): a libvirtd that stopped answering.  Both answer later."""
    for c, n in ((cls, name), (libvirt.virConnect, "getLibVersion")):
        orig = getattr(c, n)

        def slow(self, *args, _orig=orig):
            time.sleep(HANG * 3)
            return _orig(self, *args)
        monkeypatch.setattr(c, n, slow)


def _dead_connection_error(*_args):
    """Raise the error libvirt raises on a connection that is gone (a real one)."""
    c = libvirt.open("test:///default")
    c.close()
    c.getType()


def _assert_fails_naming_host(call, label="'hung'"):
    with pytest.raises(CIMError) as err:
        call()
    assert err.value.status_code == 1, err.value
    assert label in err.value.status_description
    return err.value.status_description


@pytest.mark.parametrize("method", ["info", "XMLDesc"])
def test_storage_volumes_of_a_hung_host_fail(hung_layer, volume, monkeypatch, method):
    h = Harness(modules=None)
    [vol] = [v for v in h.EnumerateInstances(NS, "KVM_StorageVolume") if v["Name"] == volume]
    assert vol["NumberOfBlocks"] == 1048576 and vol["Format"] == "raw"
    _hang(monkeypatch, libvirt.virStorageVol, method)
    why = _assert_fails_naming_host(lambda: h.EnumerateInstances(NS, "KVM_StorageVolume"))
    assert "did not answer" in why


def test_volume_settings_of_a_lost_host_fail(hung_layer, volume, monkeypatch):
    h = Harness(modules=None)
    path = CIMInstanceName("KVM_StorageVolumeResourceAllocationSettingData",
                           {"InstanceID": volume}, namespace=NS)
    got = h.GetInstance(path)
    assert got["Capacity"] == 1048576 and got["FormatType"] is not None
    monkeypatch.setattr(libvirt.virStorageVol, "info", _dead_connection_error)
    _assert_fails_naming_host(lambda: h.GetInstance(path))


def test_disk_pools_of_a_hung_host_fail(hung_layer, monkeypatch):
    h = Harness(modules=None)
    pools = {p["InstanceID"]: p for p in h.EnumerateInstances(NS, "KVM_DiskPool")}
    assert pools["DiskPool/default-pool"]["Autostart"] is not None
    assert _status(pools["DiskPool/default-pool"]) == (5, [2], 2)
    _hang(monkeypatch, libvirt.virStoragePool, "autostart")
    _assert_fails_naming_host(lambda: h.EnumerateInstances(NS, "KVM_DiskPool"))


def test_pool_list_with_a_lost_connection_fails(hung_layer, monkeypatch):
    """A storage pool whose XML could not be read used to lose its path (and the disks in
    it their PoolID) silently."""
    monkeypatch.setattr(libvirt.virStoragePool, "XMLDesc", _dead_connection_error)
    _assert_fails_naming_host(lambda: Harness(modules=None).EnumerateInstances(
        NS, "KVM_DiskPool"))


def test_a_volume_that_went_away_is_no_failure(hung_layer, volume, monkeypatch):
    """'Not found' keeps its meaning: a volume deleted between listing and reading."""
    def gone(self, *args):
        self.storagePoolLookupByVolume().storageVolLookupByName("no-such-volume")
    monkeypatch.setattr(libvirt.virStorageVol, "info", gone)
    vols = Harness(modules=None).EnumerateInstances(NS, "KVM_StorageVolume")
    [vol] = [v for v in vols if v["Name"] == volume]
    assert vol["NumberOfBlocks"] is None


def test_a_stopped_pool_is_stopped_not_failed(layer):
    c = libvirt.open("test:///default")
    pool = c.storagePoolLookupByName("default-pool")
    mgr = layer("test:///default")
    _wait_up(mgr)
    pool.destroy()
    try:
        pools = {p["InstanceID"]: p for p in
                 Harness(modules=None).EnumerateInstances(NS, "KVM_DiskPool")}
        assert _status(pools["DiskPool/default-pool"]) == (5, [10], 2)
    finally:
        pool.create(0)
        c.close()


def test_checking_a_client_setting_on_a_lost_host_fails_as_such(hung_layer, monkeypatch):
    """Finding the network of a NIC that names none (the host's default) on a host whose
    connection is gone fails naming the host, not as "the host has no network"; a named
    network is taken as named, whether or not the host has it (as libvirt and
    libvirt-cim take it, docs/compat.md), and the network '' is libvirt's "Network not
    found" (CIM_ERR_FAILED)."""
    host = hung_layer.hosts[0]
    with request_scope():
        assert vsettings.network_name(host, vsettings.Props({}), "NetRASD") == "default"
        assert vsettings.network_name(host, vsettings.Props({"NetworkName": "nonet"}),
                                      "NetRASD") == "nonet"
        with pytest.raises(VirtError) as err:
            vsettings.network_name(host, vsettings.Props({"PoolID": "NetworkPool/"}),
                                   "NetRASD")
        assert "Network not found" in str(err.value)
        assert cim_error(err.value).status_code == 1     # what a client gets
    monkeypatch.setattr(libvirt.virConnect, "listAllNetworks", _dead_connection_error)
    with request_scope():
        _assert_fails_naming_host(lambda: _as_client_sees(
            lambda: vsettings.network_name(host, vsettings.Props({}), "NetRASD")))


def _as_client_sees(call):
    """call(), with the libvirt layer's errors translated as the provider side does."""
    try:
        return call()
    except VirtError as exc:
        raise cim_error(exc) from exc


# -- a real libvirtd that stops, and one that hangs ------------------------------------------

@pytest.mark.libvirtd
def test_status_and_failures_with_a_real_daemon(layer):
    import signal

    from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available
    if not libvirtd_available():
        pytest.skip("libvirtd not installed")
    d = PrivateLibvirtd().start()
    try:
        # kept open: the daemon's test:///default lives while a connection holds it
        c = libvirt.open(d.uri("test"))
        c.storagePoolLookupByName("default-pool").createXML(VOL_XML, 0)
        mgr = layer(d.uri("test"), names={0: "daemon"}, hang_timeout=2.0,
                    backoff=(0.05, 0.5), retry_wait=0.5)
        host = mgr.hosts[0]
        h = Harness(modules=None)
        [hs] = _host_systems(h)
        assert _status(hs) == (5, [2], 2)
        vols = h.EnumerateInstances(NS, "KVM_StorageVolume")
        assert any(v["NumberOfBlocks"] == 1048576 for v in vols), vols

        # frozen: the pool's and volumes' requests fail naming the host, within a bound
        os.kill(d.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            why = _assert_fails_naming_host(
                lambda: h.EnumerateInstances(NS, "KVM_StorageVolume"), "'daemon'")
            assert time.monotonic() - t0 < 2.0 * 4
            assert "not reachable" in why
            [hs] = _host_systems(h)        # its keys are known: listed, as away
            assert _status(hs) == (20, [13], 3)
        finally:
            os.kill(d.pid, signal.SIGCONT)

        # stopped: the same, and the host comes back by itself
        d.stop()
        [hs] = _host_systems(h)
        assert _status(hs) == (20, [13], 3)
        assert "'daemon'" in hs["StatusDescriptions"][0]
        _assert_fails_naming_host(lambda: h.EnumerateInstances(NS, "KVM_DiskPool"),
                                  "'daemon'")
        d.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            [hs] = _host_systems(h)
            if _status(hs) == (5, [2], 2):
                break
            time.sleep(0.2)
        assert _status(hs) == (5, [2], 2) and host.is_up
    finally:
        if d.pid is not None:
            try:
                os.kill(d.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        d.cleanup()


# -- a driver's "not supported" is an answer, a fault is not ----------------------------------

def test_managed_save_of_a_driver_without_it_is_no_image_and_a_fault_fails(layer, monkeypatch,
                                                                            caplog):
    """has_managed_save turned every exception into 'no image' without a word: a driver
    that cannot say (libvirt's 'not supported') still is 'no image', logged; an error of
    this code is not hidden as an answer (the request fails with it, logged by the
    provider interface)."""
    mgr = layer("test:///default")
    _wait_up(mgr)
    host = mgr.hosts[0]
    ref = vdomain.lookup_now(host, "test")
    caplog.set_level(logging.DEBUG, logger="kvm_providers.virt.domain")

    def unsupported(self, flags):
        c = libvirt.open("test:///default")
        try:
            c.listAllNWFilters(0)          # a call the test driver does not support
        finally:
            c.close()
    monkeypatch.setattr(libvirt.virDomain, "hasManagedSaveImage", unsupported)
    assert vdomain.has_managed_save(ref) is False
    assert "not supported" in caplog.text

    def broken(self, flags):
        raise TypeError("a fault of this code (simulated)")
    monkeypatch.setattr(libvirt.virDomain, "hasManagedSaveImage", broken)
    with pytest.raises(TypeError):
        vdomain.has_managed_save(ref)
