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

import os
import time

import libvirt
import pytest
from pywbem import CIMError, CIMInstanceName

from kvm_providers.provider import request_scope
from kvm_providers.virt import connection as vconn
from kvm_providers.virt import domain as vdomain
from kvm_providers.virt import settings as vsettings
from kvm_providers.virt import validate as vvalidate
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


def test_host_never_reached_fails_the_request(layer):
    switch = Switch()
    switch.down = True
    layer("test+unix:///default?socket=/nonexistent", names={0: "never"}, opener=switch,
          first_wait=2.0, retry_wait=0.3)
    with pytest.raises(CIMError) as err:
        Harness().EnumerateInstances(NS, "KVM_HostSystem")
    assert err.value.status_code == 1 and "'never'" in err.value.status_description
